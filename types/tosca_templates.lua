--- TOSCA templates: service topologies described in the OASIS TOSCA
-- language.
return glare.type {
  name = "tosca_templates",
  display_name = "TOSCA Templates",
  version = "1.0",
  fields = {
    { template_format = glare.String { required_on_activate = true,
        description = "Dialect and version of the template, e.g. tosca_simple_yaml_1_0." } },
    { template = glare.Blob { required_on_activate = true,
        description = "The TOSCA template document." } },
  },
}
