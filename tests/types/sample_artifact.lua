--- Test type exercising every field flavour, validator and output hook; the
-- functional tests are written against it.
local String, Integer, Float, Boolean = glare.String, glare.Integer, glare.Float, glare.Boolean
local Link, List, Dict, Blob = glare.Link, glare.List, glare.Dict, glare.Blob

-- Output post-processing (Glare's overridden to_dict / format_all): tag
-- every artifact with its name in upper case.
local function add_meta_information(af)
  if type(af.name) == "string" then
    af.__some_meta_information__ = af.name:upper()
  end
  return af
end

return glare.type {
  name = "sample_artifact",
  display_name = "Sample Artifact",
  version = "1.0",
  fields = {
    { blob = Blob { mutable = true, description = "A blob that may be replaced after activation." } },
    { small_blob = Blob { max_blob_size = 10, mutable = true,
        description = "A blob of at most 10 bytes." } },
    { link1 = Link { description = "A link to another artifact or a URL." } },
    { link2 = Link { description = "Another link." } },
    { bool1 = Boolean { default = false, filter_ops = { "eq" } } },
    { bool2 = Boolean { default = false, filter_ops = { "eq" } } },
    { int1 = Integer { sortable = true } },
    { int2 = Integer { sortable = true } },
    { float1 = Float { sortable = true } },
    { float2 = Float { sortable = true } },
    { str1 = String { sortable = true, filter_ops = { "like", "eq", "neq", "in" } } },
    { list_of_str = List { of = String, filter_ops = { "eq", "in" } } },
    { list_of_int = List { of = Integer, filter_ops = { "eq", "in" } } },
    { dict_of_str = Dict { of = String, filter_ops = { "eq", "in" } } },
    { dict_of_int = Dict { of = Integer, filter_ops = { "eq", "in" } } },
    { dict_of_links = Dict { of = Link, mutable = true, filter_ops = { "eq" } } },
    { list_of_links = List { of = Link, mutable = true, filter_ops = { "eq" } } },
    { dict_of_blobs = glare.Folder { max_folder_size = 2000, max_key_length = 1000,
        description = "Named blobs, 2000 bytes in total, keys up to 1000 characters." } },
    { string_mutable = String { mutable = true } },
    { string_regex = String { pattern = "^([0-9a-fA-F]){8}$",
        description = "Eight hexadecimal digits." } },
    { string_required = String { required_on_activate = true } },
    { string_validators = String { allowed_values = { "aa", "bb", "ccccccccccc" }, max_length = 10 } },
    { int_validators = Integer { min = 10, max = 20 } },
    { list_validators = List { of = String, max_items = 3, unique = true, filter_ops = {} } },
    -- no default: unset, it reads null (not {})
    { dict_validators = Dict { of = String, max_keys = 3, filter_ops = {},
        default = glare.json.null, allowed_keys = { "abc", "def", "ghi", "jkl" } } },
    { system_attribute = String { system = true, sortable = true, default = "default",
        required_on_activate = true } },
    { metadata_attribute = String { default = "default", required_on_activate = true,
        metadata = { metadata1 = "value1", metadata2 = "blahblahblah" },
        description = "Carries metadata in its schema." } },
  },

  hooks = {
    -- Reject uploads whose content is exactly "invalid_data". Only a blob
    -- of that size is read, so large uploads cost nothing here.
    pre_upload = function(ctx, af, field, key, blob)
      if blob.size == #"invalid_data" and blob.read(0, blob.size) == "invalid_data" then
        glare.fail(400, "Invalid data: sample_artifact refuses the content 'invalid_data'")
      end
    end,
  },

  to_dict = add_meta_information,
  format_all = add_meta_information,
}
