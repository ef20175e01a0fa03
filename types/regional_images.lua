--- Regional images: one image kept in several regions. The `locations`
-- folder holds a copy per region, keyed by region name; all copies must be
-- the same bytes (same sha256), and a download picks the copy for the
-- region the client names in its `X-Region` header.
local String = glare.String

return glare.type {
  name = "regional_images",
  display_name = "Regional Images",
  version = "1.0",
  fields = {
    { disk_format = String {
        allowed_values = { "raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso" },
        required_on_activate = true,
        description = "Format of the disk image." } },
    { locations = glare.Folder {
        same_sha256 = true, max_key_length = 64,
        max_blob_size = 1073741824000, max_folder_size = 1073741824000 * 16,
        description = "Copies of the image, one per region, keyed by region name.",
        -- Choose the copy to serve: the region the client asks for when we
        -- have it, else the default region, else let the server decide.
        select_location = function(ctx, af, folder, request)
          local wanted = request.headers and request.headers["x-region"]
          if wanted and folder[wanted] ~= nil then return wanted end
          local fallback = glare.options.default_region
          if folder[fallback] ~= nil then return fallback end
          return nil
        end,
    } },
  },
  options = {
    { default_region = { type = "string", default = "RegionOne",
        description = "Region served when the client names none, or one without a copy." } },
  },
}
