-- Schema generation (docs/glare-contract.md "Schemas"), key by key for
-- sample_artifact and images,
-- and draft-04 structure for every stock type.
local json = require("glare.json")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

local BLOB = '"properties":{"content_type":{"type":"string"},"external":{"type":"boolean"},'
  .. '"md5":{"type":["string","null"]},"sha1":{"type":["string","null"]},'
  .. '"sha256":{"type":["string","null"]},"size":{"type":["number","null"]},'
  .. '"status":{"enum":["saving","active"],"type":"string"},'
  .. '"verification":{"additionalProperties":false,"description":"Last check of an external '
  .. "blob's data at its URL: ok, changed (other bytes) or gone (no longer there), or error "
  .. '(the check could not be made; an earlier changed or gone stands).","properties":{'
  .. '"checked_at":{"format":"date-time","type":"string"},"detail":{"type":"string"},'
  .. '"status":{"enum":["ok","changed","gone","error"],"type":"string"}},'
  .. '"required":["status","checked_at"],"type":"object"}},'
  .. '"required":["size","md5","sha1","sha256","external","status","content_type"]'
local BLOB_SCHEMA = '{"additionalProperties":false,' .. BLOB .. ',"type":["object","null"]}'
local UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
local NUM_OPS = '["eq","neq","in","gt","gte","lt","lte"]'
local STR_OPS = '["eq","neq","in"]'

-- Expected field schemas without their "description" (checked separately).
local function without_description(s)
  local c = {}
  for k, v in pairs(s) do if k ~= "description" then c[k] = v end end
  return setmetatable(c, getmetatable(s))
end

local function check_fields(T, expected)
  local s = runtime.schema(T)
  for name, want in pairs(expected) do
    local got = s.properties[name]
    assert.is_table(got, name)
    assert.equal(want, H.encode(without_description(got)), name)
    local F = T.by_name[name]
    if F.description ~= "" then
      assert.equal(F.description, got.description, name)
    else
      assert.is_nil(got.description, name)
    end
  end
end

local BASE = {
  id = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,"pattern":"' .. UUID
    .. '","readOnly":true,"sortable":true,"type":"string"}',
  name = '{"filter_ops":["like","eq","neq","in"],"glareType":"String","maxLength":255,"minLength":1,'
    .. '"required_on_activate":false,"sortable":true,"type":"string"}',
  owner = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,"readOnly":true,'
    .. '"required_on_activate":false,"sortable":true,"type":"string"}',
  status = '{"default":"drafted","enum":["drafted","active","deactivated","deleted"],"filter_ops":'
    .. STR_OPS .. ',"glareType":"String","mutable":true,"sortable":true,"type":"string"}',
  created_at = '{"filter_ops":["lt","gt"],"format":"date-time","glareType":"DateTime",'
    .. '"readOnly":true,"sortable":true,"type":"string"}',
  updated_at = '{"filter_ops":["lt","gt"],"format":"date-time","glareType":"DateTime",'
    .. '"mutable":true,"readOnly":true,"sortable":true,"type":"string"}',
  activated_at = '{"filter_ops":["lt","gt"],"format":"date-time","glareType":"DateTime",'
    .. '"readOnly":true,"required_on_activate":false,"sortable":true,"type":["string","null"]}',
  description = '{"default":"","filter_ops":[],"glareType":"String","maxLength":4096,"mutable":true,'
    .. '"required_on_activate":false,"type":["string","null"]}',
  tags = '{"default":[],"filter_ops":[],"glareType":"StringList","items":{"maxLength":255,'
    .. '"minLength":1,"pattern":"^[^,/]+$","type":"string"},"maxItems":255,"mutable":true,'
    .. '"required_on_activate":false,"type":["array","null"],"uniqueItems":true}',
  metadata = '{"additionalProperties":{"maxLength":255,"minLength":1,"type":"string"},"default":{},'
    .. '"filter_ops":' .. STR_OPS .. ',"glareType":"StringDict","maxProperties":255,'
    .. '"required_on_activate":false,"type":["object","null"]}',
  visibility = '{"default":"private","enum":["private","public"],"filter_ops":' .. STR_OPS
    .. ',"glareType":"String","mutable":true,"sortable":true,"type":"string"}',
  version = '{"default":"0.0.0","filter_ops":' .. NUM_OPS .. ',"glareType":"String","pattern":'
    .. '"/^([0-9]+)\\\\.([0-9]+)\\\\.([0-9]+)(?:-([0-9A-Za-z-]+(?:\\\\.[0-9A-Za-z-]+)*))?'
    .. '(?:\\\\+[0-9A-Za-z-]+)?$/","required_on_activate":false,"sortable":true,"type":"string"}',
  display_type_name = '{"filter_ops":["like","eq","neq","in"],"glareType":"String","maxLength":255,'
    .. '"readOnly":true,"sortable":true,"type":["string","null"]}',
}

describe("schema", function()
  describe("sample_artifact", function()
    local T = H.type("sample_artifact")

    it("has the type-level keys", function()
      local s = runtime.schema(T)
      local props = s.properties
      s.properties = nil
      assert.equal('{"display_name":"Sample Artifact","name":"sample_artifact","required":["name"],'
        .. '"title":"Artifact type sample_artifact of version 1.0","type":"object","version":"1.0"}',
        H.encode(s))
      local n = 0
      for _ in pairs(props) do n = n + 1 end
      assert.equal(#T.fields, n)
    end)

    it("publishes the base fields exactly", function()
      check_fields(T, BASE)
    end)

    it("publishes every custom field exactly", function()
      check_fields(T, {
        blob = '{"additionalProperties":false,"filter_ops":[],"glareType":"Blob","mutable":true,'
          .. BLOB .. ',"required_on_activate":false,"type":["object","null"]}',
        small_blob = '{"additionalProperties":false,"filter_ops":[],"glareType":"Blob","mutable":true,'
          .. BLOB .. ',"required_on_activate":false,"type":["object","null"]}',
        link1 = '{"filter_ops":["eq","neq"],"glareType":"Link","required_on_activate":false,'
          .. '"type":["string","null"]}',
        bool1 = '{"default":false,"filter_ops":["eq"],"glareType":"Boolean",'
          .. '"required_on_activate":false,"type":["boolean","null"]}',
        int1 = '{"filter_ops":' .. NUM_OPS .. ',"glareType":"Integer","required_on_activate":false,'
          .. '"sortable":true,"type":["integer","null"]}',
        float2 = '{"filter_ops":' .. NUM_OPS .. ',"glareType":"Float","required_on_activate":false,'
          .. '"sortable":true,"type":["number","null"]}',
        str1 = '{"filter_ops":["like","eq","neq","in"],"glareType":"String","maxLength":255,'
          .. '"required_on_activate":false,"sortable":true,"type":["string","null"]}',
        list_of_str = '{"default":[],"filter_ops":["eq","in"],"glareType":"StringList",'
          .. '"items":{"maxLength":255,"type":"string"},"maxItems":255,"required_on_activate":false,'
          .. '"type":["array","null"]}',
        list_of_int = '{"default":[],"filter_ops":["eq","in"],"glareType":"IntegerList",'
          .. '"items":{"type":"integer"},"maxItems":255,"required_on_activate":false,'
          .. '"type":["array","null"]}',
        dict_of_str = '{"additionalProperties":{"maxLength":255,"type":"string"},"default":{},'
          .. '"filter_ops":["eq","in"],"glareType":"StringDict","maxProperties":255,'
          .. '"required_on_activate":false,"type":["object","null"]}',
        dict_of_int = '{"additionalProperties":{"type":"integer"},"default":{},'
          .. '"filter_ops":["eq","in"],"glareType":"IntegerDict","maxProperties":255,'
          .. '"required_on_activate":false,"type":["object","null"]}',
        dict_of_links = '{"additionalProperties":{"type":"string"},"default":{},"filter_ops":["eq"],'
          .. '"glareType":"LinkDict","maxProperties":255,"mutable":true,"required_on_activate":false,'
          .. '"type":["object","null"]}',
        list_of_links = '{"default":[],"filter_ops":["eq"],"glareType":"LinkList",'
          .. '"items":{"type":"string"},"maxItems":255,"mutable":true,"required_on_activate":false,'
          .. '"type":["array","null"]}',
        dict_of_blobs = '{"additionalProperties":' .. BLOB_SCHEMA .. ',"default":{},"filter_ops":[],'
          .. '"glareType":"BlobDict","maxProperties":255,"required_on_activate":false,'
          .. '"type":["object","null"]}',
        string_mutable = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,'
          .. '"mutable":true,"required_on_activate":false,"type":["string","null"]}',
        string_regex = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,'
          .. '"pattern":"^([0-9a-fA-F]){8}$","required_on_activate":false,"type":["string","null"]}',
        string_required = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,'
          .. '"type":["string","null"]}',
        string_validators = '{"enum":["aa","bb","ccccccccccc"],"filter_ops":' .. STR_OPS
          .. ',"glareType":"String","maxLength":10,"required_on_activate":false,'
          .. '"type":["string","null"]}',
        int_validators = '{"filter_ops":' .. NUM_OPS .. ',"glareType":"Integer","maximum":20,'
          .. '"minimum":10,"required_on_activate":false,"type":["integer","null"]}',
        list_validators = '{"default":[],"filter_ops":[],"glareType":"StringList",'
          .. '"items":{"maxLength":255,"type":"string"},"maxItems":3,"required_on_activate":false,'
          .. '"type":["array","null"],"uniqueItems":true}',
        dict_validators = '{"additionalProperties":false,"filter_ops":[]'
          .. ',"glareType":"StringDict","maxProperties":3,"properties":{'
          .. '"abc":{"maxLength":255,"type":["string","null"]},'
          .. '"def":{"maxLength":255,"type":["string","null"]},'
          .. '"ghi":{"maxLength":255,"type":["string","null"]},'
          .. '"jkl":{"maxLength":255,"type":["string","null"]}},'
          .. '"required_on_activate":false,"type":["object","null"]}',
        system_attribute = '{"default":"default","filter_ops":' .. STR_OPS .. ',"glareType":"String",'
          .. '"maxLength":255,"readOnly":true,"sortable":true,"type":["string","null"]}',
        metadata_attribute = '{"default":"default","filter_ops":' .. STR_OPS .. ',"glareType":"String",'
          .. '"maxLength":255,"metadata":{"metadata1":"value1","metadata2":"blahblahblah"},'
          .. '"type":["string","null"]}',
      })
    end)
  end)

  describe("images", function()
    local T = H.type("images")
    it("has the type-level keys", function()
      local s = runtime.schema(T)
      assert.same({ "images", "Images", "1.0", "Artifact type images of version 1.0" },
        { s.name, s.display_name, s.version, s.title })
    end)
    it("publishes the base fields exactly", function()
      check_fields(T, BASE)
    end)
    it("publishes every images field exactly", function()
      local str = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,'
        .. '"required_on_activate":false,"type":["string","null"]}'
      local uuid = '{"filter_ops":' .. STR_OPS .. ',"glareType":"String","maxLength":255,"pattern":"'
        .. UUID .. '","required_on_activate":false,"type":["string","null"]}'
      local int = '{"filter_ops":' .. NUM_OPS .. ',"glareType":"Integer","minimum":0,'
        .. '"required_on_activate":false,"type":["integer","null"]}'
      check_fields(T, {
        container_format = '{"enum":["ami","ari","aki","bare","ovf","ova","docker"],"filter_ops":'
          .. STR_OPS .. ',"glareType":"String","type":["string","null"]}',
        disk_format = '{"enum":["ami","ari","aki","vhd","vhdx","vmdk","raw","qcow2","vdi","iso"],'
          .. '"filter_ops":' .. STR_OPS .. ',"glareType":"String","type":["string","null"]}',
        min_ram = int, min_disk = int,
        image = '{"additionalProperties":false,"filter_ops":[],"glareType":"Blob",' .. BLOB
          .. ',"required_on_activate":false,"type":["object","null"]}',
        kernel_id = uuid, ramdisk_id = uuid,
        instance_uuid = str, architecture = str, os_distro = str, os_version = str,
      })
    end)
  end)

  describe("required_keys", function()
    it("become non-nullable properties and a draft-04 required list", function()
      local T = assert(H.load([[return glare.type { name = "rk", fields = {
        { d = glare.Dict { of = glare.Integer { min = 0 }, allowed_keys = { "a", "b" },
            required_keys = { "a" } } } } }]]))
      local s = runtime.schema(T).properties.d
      assert.equal('{"a":{"minimum":0,"type":"integer"},"b":{"minimum":0,"type":["integer","null"]}}',
        H.encode(s.properties))
      assert.equal('["a"]', H.encode(s.required))
    end)
  end)

  describe("every stock type", function()
    local function all_marked(v, path)
      if type(v) ~= "table" or v == json.null then return true end
      local mt = getmetatable(v)
      if mt ~= json.array_mt and mt ~= json.object_mt then return false, path end
      for k, x in pairs(v) do
        local ok, where = all_marked(x, path .. "." .. tostring(k))
        if not ok then return false, where end
      end
      return true
    end

    for _, name in ipairs(H.STOCK_TYPES) do
      it(name .. " publishes a draft-04 valid schema made of marked tables", function()
        local s = runtime.schema(H.type(name))
        local ok, errs = H.check_draft04(s)
        assert.is_true(ok, table.concat(errs or {}, "\n"))
        assert.is_true(all_marked(s, "$"))
      end)
    end

    it("the all meta-type too", function()
      local s = runtime.schema(require("glare.loader").all_type())
      assert.is_true((H.check_draft04(s)))
    end)

    it("the checker catches structural mistakes", function()
      local ok, errs = H.check_draft04(json.object({ type = "strin", required = json.array(),
        maxLength = -1, pattern = "(?=x)", properties = json.object({ a = 5 }) }))
      assert.is_false(ok)
      assert.equal(5, #errs)
    end)
  end)
end)
