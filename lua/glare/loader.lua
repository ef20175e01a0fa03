--- Loads type files: sandboxed declaration, metaschema check, compilation,
-- then the switch to the runtime API.
--
--   local T, err = loader.load(source, "types/images.lua")
--
-- 1. the text (mode "t" only: never bytecode) runs in a declaration
--    environment whose `glare` table is the DSL (glare.type, glare.String,
--    ... glare.typedefs, glare.json, glare.semver, glare.log);
-- 2. the returned definition is checked by glare.metaschema;
-- 3. it is compiled to the table of docs/lua-runtime.md;
-- 4. the type is sealed: every table the file built (its globals, its
--    file-level locals, the definition) becomes read-only, and the
--    file-level locals of its functions are recorded to be put back after
--    every call (sandbox.seal), so no request leaves anything for the next;
-- 5. the file's environment switches to the runtime API (glare.log,
--    glare.fail, glare.options, ...), read-only, so hooks defined in the
--    file see only what hooks may use;
-- 6. sandbox.self_check runs on that environment: a type whose sandbox
--    does not hold is refused.
local compile = require("glare.compile")
local json = require("glare.json")
local metaschema = require("glare.metaschema")
local runtime = require("glare.runtime")
local sandbox = require("glare.sandbox")
local semver = require("glare.semver")
local typedefs = require("glare.typedefs")
local fields = require("glare.fields")

local loader = {}

local type, pairs, pcall, tostring, load, error = type, pairs, pcall, tostring, load, error
local format = string.format

local RUNTIME_ONLY = { fail = true, options = true, type_name = true }

local DECL_JSON = runtime.json_api()
local DECL_SEMVER = runtime.semver_api()

-- The declaration `glare` table (read-only). `log` is bound to the file
-- being loaded.
local function declaration_api(log)
  local api = {
    type = function(def)
      if type(def) ~= "table" then
        error("glare.type expects a table: return glare.type { name = ..., fields = { ... } }", 2)
      end
      return def
    end,
    typedefs = typedefs,
    json = DECL_JSON,
    semver = DECL_SEMVER,
    log = log,
  }
  for _, kind in ipairs(fields.KINDS) do api[kind] = typedefs[kind] end
  return sandbox.view(api, "glare", {
    __index = function(_, k)
      if RUNTIME_ONLY[k] then
        error(format("glare.%s is part of the runtime API: use it inside hooks", k), 2)
      end
      error(format("glare.%s does not exist (field kinds: %s)", tostring(k),
        table.concat(fields.KINDS, ", ")), 2)
    end,
  })
end

local function error_text(err)
  if runtime.is_failure(err) then return err.message end
  if type(err) == "table" and type(err.message) == "string" then return err.message end
  return tostring(err)
end

--- Load a type from source text. `chunkname` names the file in messages
-- ("types/images.lua"; a leading '@' or '=' is accepted). `opts` may hold
-- `options` (config values for the type's options, see
-- runtime.configure) and `env` (extra declaration globals); for
-- compatibility any other key of `opts` is also added to the declaration
-- environment. Returns the compiled type, or `nil, message`.
function loader.load(source, chunkname, opts)
  opts = opts or {}
  if type(source) ~= "string" then return nil, "type source must be a string" end
  chunkname = chunkname or "=type"
  local display = chunkname:gsub("^[@=]", "")
  local lua_name = chunkname:find("^[@=]") and chunkname or "@" .. chunkname

  local T -- set once compiled; the log tag switches from file to type name
  local function log(level, ...) runtime.log(T and T.name or display, level, ...) end
  local base = sandbox.base(function(level, msg) log(level, msg) end)
  base.glare = declaration_api(log)
  for k, v in pairs(opts) do
    if k ~= "options" and k ~= "env" then base[k] = v end
  end
  for k, v in pairs(opts.env or {}) do base[k] = v end
  local env, ctl = sandbox.new_env(base)

  local chunk, err = load(source, lua_name, "t", env)
  if not chunk then
    -- syntax errors name the file; "attempt to load a binary chunk" does not
    if err:sub(1, #display) ~= display then err = display .. ": " .. err end
    return nil, err
  end
  local ok, def = pcall(chunk)
  if not ok then return nil, error_text(def) end

  ok, err = metaschema.check_noexc(def, display, compile.coerce_default)
  if not ok then return nil, err end
  T = compile.type(def)
  ok, err = runtime.configure(T, opts.options)
  if not ok then return nil, err end

  -- nothing the file built stays writable; its locals are put back after
  -- every call (run_hook & co, and the C core after any call)
  local roots = {}
  for k, v in pairs(ctl.globals()) do roots[#roots + 1] = { v, tostring(k) } end
  roots[#roots + 1] = { def, "the type definition" }
  ok, err = pcall(function()
    T._boxes = sandbox.seal(roots, lua_name, { env })
  end)
  if not ok then return nil, format("%s: %s", display, error_text(err)) end

  local rbase = sandbox.base(function(level, msg) log(level, msg) end)
  rbase.glare = runtime.api(T)
  ctl.switch(rbase)
  ok, err = sandbox.self_check(env, true)
  if not ok then return nil, format("%s: sandbox self-check failed: %s", display, err) end
  return T
end

--- Load a type file from disk (offline use: busted specs, tools).
function loader.load_file(path, opts)
  local io_ = io
  if not io_ then return nil, "load_file needs the io library" end
  local f, err = io_.open(path, "rb")
  if not f then return nil, err end
  local src = f:read("a")
  f:close()
  return loader.load(src, path, opts)
end

--- Load `dir/<name>.lua` for each name in `names`. Each file must declare
-- the type named like the file. `opts.options[name]` configures a type.
-- Returns `types` (name -> T, plus the list in `types[1..n]`) or
-- `nil, message` for the first failure.
function loader.load_types(dir, names, opts)
  opts = opts or {}
  local types = {}
  for i, name in ipairs(names) do
    local path = dir .. "/" .. name .. ".lua"
    local T, err = loader.load_file(path, { options = opts.options and opts.options[name] })
    if not T then return nil, err end
    if T.name ~= name then
      return nil, format("%s: declares type '%s' but the file is named %s.lua", path, T.name, name)
    end
    types[name] = T
    types[i] = T
  end
  return types
end

--- The `all` meta-type: base fields plus `type_name`, read-only, no hooks.
--- The `all` meta-type. No type file runs in its state, but the state
-- holds its own copy of the library: the sandbox self-check runs there
-- too, on the runtime environment a type file would get, so every state
-- of a set has passed it before the set serves. Returns the compiled
-- type, or `nil, message`.
function loader.all_type()
  local function nolog() end
  local env, ctl = sandbox.new_env(sandbox.base(nolog))
  ctl.switch(sandbox.base(nolog))
  local ok, err = sandbox.self_check(env, true)
  if not ok then return nil, "sandbox self-check failed: " .. err end
  return compile.type({
    name = "all", display_name = "All Artifacts", version = "1.0",
    fields = { { type_name = typedefs.type_name } },
  })
end

return loader
