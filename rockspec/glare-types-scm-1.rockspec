-- glare-types: the pure-Lua type runtime of glared, packaged so that type
-- authors can load and test their artifact type files offline.
--
--   luarocks make rockspec/glare-types-scm-1.rockspec     (from the repo root)
--   busted --lua=lua5.4                                   (runs tests/lua)
rockspec_format = "3.0"
package = "glare-types"
version = "scm-1"

source = {
  url = "git+https://glared.invalid/glared.git",
  branch = "main",
}

description = {
  summary = "Artifact type DSL, coercion, validators and JSON schemas of glared (Glare v1 API)",
  detailed = [[
glared is an artifact repository server implementing the OpenStack Glare v1
API; its C core loads artifact type definitions written in Lua 5.4. This rock
is the pure-Lua half: the declarative type DSL (glare.type, glare.String, ...),
Glare-compatible value coercion and validators, JSON-schema generation, the
metaschema that checks type files, and the sandboxed loader. It depends on
nothing but the Lua 5.4 standard library, so a type author can load a type
file and run its busted specs without the server.
]],
  homepage = "https://glared.invalid/",
  issues_url = "https://glared.invalid/issues",
  license = "Apache-2.0",
  maintainer = "glared developers",
  labels = { "openstack", "glare", "artifacts", "schema", "sandbox" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

build = {
  type = "builtin",
  modules = {
    ["glare.json"] = "lua/glare/json.lua",
    ["glare.util"] = "lua/glare/util.lua",
    ["glare.regex"] = "lua/glare/regex.lua",
    ["glare.semver"] = "lua/glare/semver.lua",
    ["glare.validators"] = "lua/glare/validators.lua",
    ["glare.fields"] = "lua/glare/fields.lua",
    ["glare.hooks"] = "lua/glare/hooks.lua",
    ["glare.typedefs"] = "lua/glare/typedefs.lua",
    ["glare.metaschema"] = "lua/glare/metaschema.lua",
    ["glare.compile"] = "lua/glare/compile.lua",
    ["glare.schema"] = "lua/glare/schema.lua",
    ["glare.sandbox"] = "lua/glare/sandbox.lua",
    ["glare.runtime"] = "lua/glare/runtime.lua",
    ["glare.loader"] = "lua/glare/loader.lua",
  },
  copy_directories = { "types", "docs" },
}

test_dependencies = {
  "busted >= 2.1",
}

test = {
  type = "busted",
  flags = { "--lua=lua5.4" },
}
