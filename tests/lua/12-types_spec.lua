-- Every stock type loads, and declares its fields (docs/glare-contract.md
-- "Stock types").
local json = require("glare.json")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

-- Field summary: kind[/element] plus flags: R required_on_activate,
-- M mutable, S sortable, Y system.
local function summary(F)
  local s = F.kind .. (F.element and ("/" .. F.element) or "")
  local flags = (F.required_on_activate and "R" or "") .. (F.mutable and "M" or "")
    .. (F.sortable and "S" or "") .. (F.system and "Y" or "")
  return flags ~= "" and (s .. " " .. flags) or s
end

local function custom(T)
  local out = {}
  for _, F in ipairs(T.fields) do
    if not F.base then out[#out + 1] = F.name .. "=" .. summary(F) end
  end
  return table.concat(out, ", ")
end

describe("stock types", function()
  for _, name in ipairs(H.STOCK_TYPES) do
    it(name .. " loads, is named like its file and starts with an LDoc summary", function()
      local T = H.type(name)
      assert.equal(name, T.name)
      assert.is_string(T.display_name)
      local f = assert(io.open(H.type_path(name)))
      assert.matches("^%-%-%- %S", f:read("l"))
      f:close()
    end)
  end

  it("images", function()
    local T = H.type("images")
    assert.equal("Images", T.display_name)
    assert.equal("container_format=String R, disk_format=String R, min_ram=Integer, min_disk=Integer, "
      .. "image=Blob, kernel_id=String, ramdisk_id=String, instance_uuid=String, architecture=String, "
      .. "os_distro=String, os_version=String", custom(T))
    assert.equal(1073741824000, T.by_name.image.max_blob_size)
    assert.is_nil((runtime.coerce(T, "container_format", "tar")))
    assert.equal("qcow2", runtime.coerce(T, "disk_format", "qcow2"))
    assert.is_nil((runtime.coerce(T, "min_disk", -1)))
    assert.is_nil((runtime.coerce(T, "ramdisk_id", "not-a-uuid")))
  end)

  it("heat_templates", function()
    local T = H.type("heat_templates")
    assert.equal("Heat Templates", T.display_name)
    assert.equal("environments=Dict/Link RM, template=Blob R, nested_templates=Folder R, "
      .. "default_envs=Dict/String RM", custom(T))
  end)

  it("heat_environments", function()
    local T = H.type("heat_environments")
    assert.equal("Heat Environments", T.display_name)
    assert.equal("environment=Blob R", custom(T))
  end)

  it("murano_packages", function()
    local T = H.type("murano_packages")
    assert.equal("Murano packages", T.display_name)
    assert.equal("package=Blob, type=String R, display_name=String RM, categories=List/String RM, "
      .. "class_definitions=List/String R, inherits=Dict/String R, keywords=List/String RM, "
      .. "dependencies=List/Link", custom(T))
    assert.equal(104857600, T.by_name.package.max_blob_size)
    assert.equal("Application", T.by_name.type.default)
    assert.is_true(T.by_name.class_definitions._attrs.unique)
  end)

  it("tosca_templates", function()
    local T = H.type("tosca_templates")
    assert.equal("TOSCA Templates", T.display_name)
    assert.equal("template_format=String R, template=Blob R", custom(T))
  end)

  it("secrets", function()
    local T = H.type("secrets")
    assert.equal("1.0", T.version)
    assert.equal("payload=Blob R, payload_content_encoding=String, secret_type=String S, "
      .. "algorithm=String, bit_length=Integer S, mode=String", custom(T))
    assert.equal("base64", T.by_name.payload_content_encoding.default)
    assert.same({}, T.by_name.payload_content_encoding.filter_ops)
    assert.equal("opaque", T.by_name.secret_type.default)
    assert.same({ "eq" }, T.by_name.secret_type.filter_ops)
    assert.same({ "eq" }, T.by_name.algorithm.filter_ops)
    assert.same({ "eq" }, T.by_name.mode.filter_ops)
    assert.is_nil((runtime.coerce(T, "bit_length", 0)))
  end)

  it("sample_artifact", function()
    local T = H.type("sample_artifact")
    assert.equal("blob=Blob M, small_blob=Blob M, link1=Link, link2=Link, bool1=Boolean, "
      .. "bool2=Boolean, int1=Integer S, int2=Integer S, float1=Float S, float2=Float S, "
      .. "str1=String S, list_of_str=List/String, list_of_int=List/Integer, dict_of_str=Dict/String, "
      .. "dict_of_int=Dict/Integer, dict_of_links=Dict/Link M, list_of_links=List/Link M, "
      .. "dict_of_blobs=Folder, string_mutable=String M, string_regex=String, "
      .. "string_required=String R, string_validators=String, int_validators=Integer, "
      .. "list_validators=List/String, dict_validators=Dict/String, system_attribute=String RSY, "
      .. "metadata_attribute=String R", custom(T))
    local B = T.by_name
    assert.equal(10, B.small_blob.max_blob_size)
    assert.same({ 2000, 1000 }, { B.dict_of_blobs.max_folder_size, B.dict_of_blobs.max_key_length })
    assert.same({ false, false }, { B.bool1.default, B.bool2.default })
    assert.same({ "eq" }, B.bool1.filter_ops)
    assert.same({ "like", "eq", "neq", "in" }, B.str1.filter_ops)
    assert.same({ "eq", "in" }, B.dict_of_str.filter_ops)
    assert.same({ "eq", "in" }, B.dict_of_int.filter_ops)
    assert.same({ "eq" }, B.dict_of_links.filter_ops)
    assert.same({ "eq" }, B.list_of_links.filter_ops)
    assert.equal("default", B.system_attribute.default)
    assert.same({ metadata1 = "value1", metadata2 = "blahblahblah" }, B.metadata_attribute.metadata)
    assert.is_function(T.hooks.pre_upload)
    assert.is_function(T.to_dict)
    assert.is_function(T.format_all)
  end)

  it("hooks_artifact", function()
    local T = H.type("hooks_artifact")
    assert.equal("blob=Blob M, folder=Folder M", custom(T))
    local n = 0
    for _ in pairs(T.hooks) do n = n + 1 end
    assert.equal(20, n)
    assert.same({ { name = "temp_file_path", type = "string", default = "/tmp/glare_hooks",
      description = "Tag written with every hook record (Glare wrote files there)." } }, T.options)
  end)

  it("non_nullable_fields_artifact", function()
    local T = H.type("non_nullable_fields_artifact")
    local with, without = T.by_name.int_not_nullable_with_default, T.by_name.int_not_nullable_without_default
    assert.same({ false, 0 }, { with.nullable, with.default })
    assert.same({ false }, { without.nullable, without.default })
    assert.equal(0, runtime.coerce(T, with, json.null))
    assert.equal("Type: non_nullable_fields_artifact. Field: int_not_nullable_without_default. "
      .. "Exception: Field cannot be null", select(2, runtime.coerce(T, without, json.null)))
  end)

  it("regional_images", function()
    local T = H.type("regional_images")
    assert.equal("disk_format=String R, locations=Folder", custom(T))
    local L = T.by_name.locations
    assert.is_true(L.same_sha256)
    assert.is_function(L.select_location)
    assert.equal(64, L.max_key_length)
    assert.equal("RegionOne", T._option_values.default_region)
  end)
end)
