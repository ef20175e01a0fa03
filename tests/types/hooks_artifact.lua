--- Test type recording every hook call, to check which hooks run and in
-- what order.
--
-- Glare's version wrote one temporary file per call under the configured
-- `temp_file_path`. Hooks have no file access here, so each call is logged
-- instead: `glare.log("hook", <hook name>, <temp_file_path>)`, i.e. a log
-- record of level "hook" whose message is "<hook name> <temp_file_path>".
local HOOKS = {
  "pre_create", "post_create", "pre_update", "post_update",
  "pre_activate", "post_activate", "pre_reactivate", "post_reactivate",
  "pre_deactivate", "post_deactivate", "pre_publish", "post_publish",
  "pre_upload", "post_upload", "pre_add_location", "post_add_location",
  "pre_download", "post_download", "pre_delete", "post_delete",
}

local function recorder(name)
  return function()
    glare.log("hook", name, glare.options.temp_file_path)
  end
end

local hooks = {}
for _, name in ipairs(HOOKS) do hooks[name] = recorder(name) end

return glare.type {
  name = "hooks_artifact",
  display_name = "Hooks Artifact",
  version = "1.0",
  fields = {
    { blob = glare.Blob { mutable = true, description = "Upload and download hooks are recorded for it." } },
    { folder = glare.Folder { mutable = true,
        description = "A folder; location selection is recorded too.",
        select_location = function(ctx, af, folder, request)
          glare.log("hook", "select_location", glare.options.temp_file_path)
          return nil
        end } },
  },
  hooks = hooks,
  options = {
    { temp_file_path = { type = "string", default = "/tmp/glare_hooks",
        description = "Tag written with every hook record (Glare wrote files there)." } },
  },
}
