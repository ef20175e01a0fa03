-- Hooks of the stock types, called the way the C core calls them.
local json = require("glare.json")
local runtime = require("glare.runtime")
local metaschema = require("glare.metaschema")
local H = dofile("tests/lua/helpers.lua")

local CTX = { user_id = "u", project_id = "p", roles = { "member" }, is_admin = false, request_id = "req-1" }

-- A blob argument for pre_upload: read(offset, n) counts its calls.
local function blob_of(data)
  local b = { size = #data, md5 = "m", sha1 = "s1", sha256 = "s256", content_type = "application/octet-stream",
    reads = 0 }
  b.read = function(offset, n)
    b.reads = b.reads + 1
    return data:sub(offset + 1, offset + n)
  end
  return b
end

describe("hooks", function()
  describe("sample_artifact", function()
    local T = H.type("sample_artifact")

    it("pre_upload rejects exactly 'invalid_data' with a 400", function()
      local b = blob_of("invalid_data")
      assert.same({ false, 400, "Invalid data: sample_artifact refuses the content 'invalid_data'" },
        { runtime.run_hook(T, "pre_upload", CTX, { name = "a" }, "blob", nil, b) })
      assert.equal(1, b.reads)
    end)

    it("pre_upload accepts other content of the same size, reading it once", function()
      local b = blob_of("valid_data!!")
      assert.same({ true, nil }, { runtime.run_hook(T, "pre_upload", CTX, {}, "blob", nil, b) })
      assert.equal(1, b.reads)
    end)

    it("pre_upload does not read blobs of another size", function()
      local b = blob_of(("x"):rep(1000))
      assert.is_true((runtime.run_hook(T, "pre_upload", CTX, {}, "dict_of_blobs", "k", b)))
      assert.equal(0, b.reads)
    end)

    it("to_dict and format_all add __some_meta_information__ (the name upper-cased)", function()
      local af = json.object({ name = "art", version = "1.0.0" })
      assert.equal("ART", runtime.output(T, af).__some_meta_information__)
      assert.equal("ART", runtime.format_all(T, json.object({ name = "art" })).__some_meta_information__)
      assert.is_nil(runtime.output(T, json.object({ name = json.null })).__some_meta_information__)
    end)
  end)

  describe("hooks_artifact", function()
    local ARGS = {
      pre_update = { json.array() }, pre_upload = { "blob", nil, blob_of("x") },
      post_upload = { "blob", nil }, pre_add_location = { "blob", nil, { url = "http://x" } },
      post_add_location = { "blob", nil }, pre_download = { "blob", nil }, post_download = { "blob", nil },
    }

    it("defines every hook there is (the server's list, glare.hooks)", function()
      local T = H.type("hooks_artifact")
      local have, want = {}, {}
      for name in pairs(T.hooks) do have[#have + 1] = name end
      for _, name in ipairs(metaschema.HOOKS) do want[#want + 1] = name end
      table.sort(have)
      table.sort(want)
      assert.same(want, have)
    end)

    it("records every hook call through glare.log, with temp_file_path", function()
      local T = H.type("hooks_artifact", { options = { temp_file_path = "/var/tmp/rec" } })
      local records, restore = H.capture_log()
      for _, name in ipairs(metaschema.HOOKS) do
        assert.is_true((runtime.run_hook(T, name, CTX, json.object({ name = "h" }),
          table.unpack(ARGS[name] or {}))))
      end
      restore()
      assert.equal(#metaschema.HOOKS, #records)
      for i, name in ipairs(metaschema.HOOKS) do
        assert.same({ level = "hook", message = name .. " /var/tmp/rec", type = "hooks_artifact" }, records[i])
      end
    end)

    it("uses the default temp_file_path when unconfigured, and records select_location", function()
      local T = H.type("hooks_artifact")
      local records, restore = H.capture_log()
      runtime.run_hook(T, "post_create", CTX, {})
      local key = T.by_name.folder.select_location(CTX, {}, {}, { method = "GET", headers = {} })
      restore()
      assert.is_nil(key)
      assert.same({ "post_create /tmp/glare_hooks", "select_location /tmp/glare_hooks" },
        { records[1].message, records[2].message })
    end)
  end)

  describe("regional_images select_location", function()
    local blob = json.object({ size = 3, sha256 = "abc", status = "active", external = false })
    local function request(region)
      return { method = "GET", path = "/artifacts/regional_images/x/locations",
        headers = { ["x-region"] = region }, remote_addr = "127.0.0.1" }
    end

    it("picks the region named in X-Region when the folder has it", function()
      local T = H.type("regional_images")
      local sel = T.by_name.locations.select_location
      local folder = json.object({ RegionOne = blob, RegionTwo = blob })
      assert.equal("RegionTwo", sel(CTX, {}, folder, request("RegionTwo")))
    end)

    it("falls back to the default region when the header is absent or unknown", function()
      local T = H.type("regional_images")
      local sel = T.by_name.locations.select_location
      local folder = json.object({ RegionOne = blob, RegionTwo = blob })
      assert.equal("RegionOne", sel(CTX, {}, folder, request("Mars")))
      assert.equal("RegionOne", sel(CTX, {}, folder, { method = "GET", headers = {} }))
      assert.equal("RegionOne", sel(CTX, {}, folder, {}))
    end)

    it("returns nil when neither region has a copy", function()
      local T = H.type("regional_images")
      assert.is_nil(T.by_name.locations.select_location(CTX, {}, json.object({ RegionTwo = blob }), request("Mars")))
    end)

    it("honours a configured default_region", function()
      local T = H.type("regional_images", { options = { default_region = "RegionTwo" } })
      local folder = json.object({ RegionOne = blob, RegionTwo = blob })
      assert.equal("RegionTwo", T.by_name.locations.select_location(CTX, {}, folder, request(nil)))
    end)
  end)
end)
