--- Heat templates: orchestration templates, with their nested templates and
-- the environments they are meant to be deployed with.
return glare.type {
  name = "heat_templates",
  display_name = "Heat Templates",
  version = "1.0",
  fields = {
    { environments = glare.Dict { of = glare.Link, mutable = true, required_on_activate = true,
        description = "Heat environments known to work with this template, by name "
          .. "(links to heat_environments artifacts)." } },
    { template = glare.Blob { required_on_activate = true,
        description = "The template document (HOT or CFN format)." } },
    { nested_templates = glare.Folder { required_on_activate = true,
        description = "Templates the main template refers to, keyed by the name it uses for them." } },
    { default_envs = glare.Dict { of = glare.String, mutable = true, required_on_activate = true,
        description = "Environments applied when a deployment names none, by name." } },
  },
}
