--- Murano packages: application catalog packages (applications and the
-- class libraries they build on).
local String, List = glare.String, glare.List

return glare.type {
  name = "murano_packages",
  display_name = "Murano packages",
  version = "1.0",
  fields = {
    { package = glare.Blob { max_blob_size = 104857600,
        description = "The package archive (zip, up to 100 MiB)." } },
    { type = String { allowed_values = { "Application", "Library" },
        default = "Application", required_on_activate = true,
        description = "Application (deployable on its own) or Library (used by applications)." } },
    { display_name = String { mutable = true, required_on_activate = true,
        description = "Package name as shown to catalog users." } },
    { categories = List { of = String, mutable = true, required_on_activate = true,
        description = "Catalog categories the package is listed under." } },
    { class_definitions = List { of = String, unique = true, required_on_activate = true,
        description = "Fully qualified names of the MuranoPL classes the package defines." } },
    { inherits = glare.Dict { of = String, required_on_activate = true,
        description = "Parent classes of the package's classes, by class name." } },
    { keywords = List { of = String, mutable = true, required_on_activate = true,
        description = "Words to find the package by in the catalog." } },
    { dependencies = List { of = glare.Link,
        description = "Packages this one needs (links to murano_packages artifacts)." } },
  },
}
