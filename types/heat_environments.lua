--- Heat environments: parameter values and resource mappings that adapt a
-- Heat template to a particular deployment.
return glare.type {
  name = "heat_environments",
  display_name = "Heat Environments",
  version = "1.0",
  fields = {
    { environment = glare.Blob { required_on_activate = true,
        description = "The environment document (YAML)." } },
  },
}
