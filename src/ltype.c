/* ltype.c - the sandboxed Lua type runtime (see ltype.h and
 * docs/lua-runtime.md).
 *
 * One lua_State per type set. The state's own globals belong to the
 * trusted library in lua/glare (loaded with require from lua_path); type
 * files and hooks only ever run in the allow-listed environments that
 * library builds. The C side adds what Lua cannot do for itself:
 *  - a capped allocator (lua_memory_limit for the whole state): growth past
 *    the cap fails, which Lua turns into a memory error inside the call;
 *  - an instruction budget per call (lua_instruction_limit) from a count
 *    hook that, once over budget, fires on every instruction so a script's
 *    own pcall cannot swallow the error;
 *  - text-only chunks (the library loads with mode "t"; C never loads
 *    bytecode), no C modules (package.cpath emptied, loadlib removed), and
 *    the VM-wide string metatable pointed at the library's capped string
 *    functions and hidden;
 *  - Lua <-> JSON conversion over jansson with raw table access only (a
 *    hostile __index/__pairs never runs here), integers kept as integers,
 *    a depth limit, and every conversion inside a protected call.
 */
#include "ltype.h"
#include "coro.h"
#include "ljson.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define MAX_TYPE_FILE (1 << 20)
#define HOOK_EVERY 1000

struct gl_types {
	int refs;
	lua_State *L;
	size_t mem_used, mem_cap;
	int64_t steps, budget;
	int64_t hook_budget;     /* lua_instruction_limit */
	gl_type *types;
	int ntypes;
	int rt_ref;          /* glare.runtime */
	gl_ljson lj;         /* null sentinel and marker metatables */
	/* pre_upload's blob.read */
	const char *read_path;
	int64_t read_left, read_end;
};

static gl_types *current_set;

/* ---- the capped allocator and the budget hook ------------------------------ */

static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	gl_types *ts = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		ts->mem_used -= old;
		return NULL;
	}
	/* refuse only growth past the cap; shrinking always succeeds */
	if (nsize > old && ts->mem_used + (nsize - old) > ts->mem_cap)
		return NULL;
	void *np = realloc(ptr, nsize);
	if (np)
		ts->mem_used = ts->mem_used - old + nsize;
	return np;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	gl_types *ts = *(gl_types **)lua_getextraspace(L);

	ts->steps += HOOK_EVERY;
	if (ts->steps > ts->budget) {
		/* from now on every instruction raises, so an inner pcall
		 * cannot catch the error and carry on */
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
		ts->steps = ts->budget + 1;
		luaL_error(L, "instruction budget of %I exceeded",
			   (lua_Integer)ts->budget);
	}
}

static void arm(gl_types *ts, int64_t budget)
{
	ts->steps = 0;
	ts->budget = budget;
	lua_sethook(ts->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static int at_panic(lua_State *L)
{
	gl_error("lua: unprotected error: %s",
		 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
	abort();
	return 0;
}

/* ---- protected calls ------------------------------------------------------------ */

/* Everything that touches the state runs inside one lua_pcall of a C
 * function, so a memory error or a runaway script unwinds to here and
 * never to the panic handler. */
typedef struct pcall_ctx {
	gl_types *ts;
	int (*fn)(lua_State *L, struct pcall_ctx *c);
	/* in */
	const gl_type *t;
	const char *s1, *s2, *s3;
	const json_t *j1, *j2, *j3, *j4;
	int flag;
	/* out */
	json_t *out;
	char *str;
	int64_t i64;
	int status;          /* for hook failures: 4xx */
	char msg[1024];
} pcall_ctx;

static int trampoline(lua_State *L)
{
	pcall_ctx *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	return c->fn(L, c);
}

static int traceback(lua_State *L)
{
	const char *m = lua_tostring(L, 1);
	if (!m) {
		if (lua_type(L, 1) == LUA_TTABLE) {
			lua_getfield(L, 1, "message");
			m = lua_tostring(L, -1);
		}
		if (!m)
			m = "(error object is not a string)";
	}
	luaL_traceback(L, L, m, 1);
	return 1;
}

static int run(pcall_ctx *c, int64_t budget, gl_err *err, const char *what)
{
	gl_types *ts = c->ts;
	lua_State *L = ts->L;
	int base = lua_gettop(L), rc;

	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, trampoline);
	lua_pushlightuserdata(L, c);
	arm(ts, budget);
	/* a call into Lua never spans a yield: the state (and its budget)
	 * is the worker's, shared by every request's coroutine */
	gl_coro_noyield_enter();
	rc = lua_pcall(L, 1, 0, base + 1);
	gl_coro_noyield_leave();
	lua_sethook(L, NULL, 0, 0);
	gl_metrics_lua(rc != LUA_OK, rc != LUA_OK && ts->steps > ts->budget,
		       rc == LUA_ERRMEM);
	if (rc != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		char first[1024];
		snprintf(first, sizeof first, "%s", m ? m : "?");
		/* the first line for clients; the traceback for the log */
		first[strcspn(first, "\n")] = '\0';
		gl_warn("lua: %s: %s", what, m ? m : "?");
		lua_settop(L, base);
		if (rc == LUA_ERRMEM)
			return gl_fail(err, 500, "LuaError",
				       "%s: the type runtime ran out of its "
				       "memory budget", what);
		return gl_fail(err, 500, "LuaError", "%s: %s", what, first);
	}
	lua_settop(L, base);
	return 0;
}

/* push runtime[name] */
static void push_rt(lua_State *L, gl_types *ts, const char *name)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, ts->rt_ref);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
}

/* ---- loading ------------------------------------------------------------------- */

const char *gl_kind_name(gl_kind k)
{
	static const char *const n[] = { "String", "Integer", "Float",
					 "Boolean", "Version", "Link", "Blob",
					 "Folder", "List", "Dict", "DateTime" };
	return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

static int kind_of(const char *s, gl_kind *k)
{
	for (int i = GK_STRING; i <= GK_DATETIME; i++)
		if (s && !strcmp(s, gl_kind_name((gl_kind)i))) {
			*k = (gl_kind)i;
			return 0;
		}
	return -1;
}

static const char *const op_names[] = { "eq", "neq", "lt", "lte", "gt",
					"gte", "in", "like", NULL };

unsigned gl_op_from_name(const char *name)
{
	for (int i = 0; op_names[i]; i++)
		if (!strcmp(op_names[i], name))
			return 1u << i;
	return 0;
}

const char *gl_op_name(unsigned op)
{
	for (int i = 0; op_names[i]; i++)
		if (op == 1u << i)
			return op_names[i];
	return "?";
}

static const char *const hook_names[GL_HOOK_COUNT] = {
	"pre_create", "post_create", "pre_update", "post_update",
	"pre_activate", "post_activate", "pre_reactivate", "post_reactivate",
	"pre_deactivate", "post_deactivate", "pre_publish", "post_publish",
	"pre_upload", "post_upload", "pre_add_location", "post_add_location",
	"pre_download", "post_download", "pre_delete", "post_delete",
};

static int get_bool(lua_State *L, int idx, const char *k)
{
	int b;
	lua_getfield(L, idx, k);
	b = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return b;
}

static int64_t get_int(lua_State *L, int idx, const char *k, int64_t def)
{
	int64_t v = def;
	lua_getfield(L, idx, k);
	if (lua_isinteger(L, -1))
		v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

static char *get_str(lua_State *L, int idx, const char *k)
{
	char *s = NULL;
	lua_getfield(L, idx, k);
	if (lua_type(L, -1) == LUA_TSTRING)
		s = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	return s;
}

/* Copy the compiled type at the top of the stack into t. Raises on a
 * malformed compiled table (a library bug). [-0, +0, e] */
static void import_type(lua_State *L, gl_types *ts, gl_type *t)
{
	int T = lua_gettop(L);
	char msg[256];

	t->name = get_str(L, T, "name");
	t->display_name = get_str(L, T, "display_name");
	t->version = get_str(L, T, "version");
	if (!t->version)
		t->version = strdup("1.0");
	lua_getfield(L, T, "to_dict");
	t->has_to_dict = lua_isfunction(L, -1);
	lua_getfield(L, T, "format_all");
	t->has_format_all = lua_isfunction(L, -1);
	lua_pop(L, 2);
	lua_getfield(L, T, "hooks");
	if (lua_istable(L, -1))
		for (int h = 0; h < GL_HOOK_COUNT; h++) {
			lua_getfield(L, -1, hook_names[h]);
			if (lua_isfunction(L, -1))
				t->hooks |= 1u << h;
			lua_pop(L, 1);
		}
	lua_pop(L, 1);

	lua_getfield(L, T, "fields");
	luaL_checktype(L, -1, LUA_TTABLE);
	t->nfields = (int)lua_rawlen(L, -1);
	t->fields = calloc((size_t)t->nfields, sizeof *t->fields);
	if (!t->fields)
		luaL_error(L, "out of memory");
	for (int i = 0; i < t->nfields; i++) {
		gl_field *f = &t->fields[i];
		int F;
		char *kind, *elem;

		lua_rawgeti(L, -1, i + 1);
		F = lua_gettop(L);
		f->name = get_str(L, F, "name");
		kind = get_str(L, F, "kind");
		elem = get_str(L, F, "element");
		if (!f->name || kind_of(kind, &f->kind) < 0) {
			free(kind);
			free(elem);
			luaL_error(L, "type %s: field %d has no name or kind",
				   t->name, i + 1);
		}
		if (elem && kind_of(elem, &f->elem) < 0)
			f->elem = GK_STRING;
		free(kind);
		free(elem);
		f->base = get_bool(L, F, "base");
		f->system = get_bool(L, F, "system");
		f->mutable_ = get_bool(L, F, "mutable");
		f->required_on_activate = get_bool(L, F, "required_on_activate");
		f->sortable = get_bool(L, F, "sortable");
		f->nullable = get_bool(L, F, "nullable");
		f->same_sha256 = get_bool(L, F, "same_sha256");
		lua_getfield(L, F, "select_location");
		f->select_location = lua_isfunction(L, -1);
		lua_pop(L, 1);
		f->max_blob_size = get_int(L, F, "max_blob_size", 10485760);
		f->max_folder_size = get_int(L, F, "max_folder_size", 2673868800LL);
		f->max_key_length = (int)get_int(L, F, "max_key_length", 255);
		f->max_keys = (int)get_int(L, F, "max_keys", 255);
		lua_getfield(L, F, "default");
		if (!lua_isnil(L, -1)) {
			f->def = gl_ljson_to(L, &ts->lj, -1, msg, sizeof msg);
			if (!f->def)
				luaL_error(L, "type %s: field %s: default: %s",
					   t->name, f->name, msg);
		}
		lua_pop(L, 1);
		lua_getfield(L, F, "filter_ops");
		if (lua_istable(L, -1)) {
			lua_Unsigned n = lua_rawlen(L, -1);
			for (lua_Unsigned k = 1; k <= n; k++) {
				lua_rawgeti(L, -1, (lua_Integer)k);
				if (lua_type(L, -1) == LUA_TSTRING)
					f->filter_ops |=
						gl_op_from_name(lua_tostring(L, -1));
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 2); /* filter_ops, F */
	}
	lua_pop(L, 1); /* fields */
	lua_pushvalue(L, T);
	t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static int log_sink(lua_State *L)
{
	const char *level = luaL_optstring(L, 1, "info");
	const char *msg = luaL_optstring(L, 2, "");
	const char *tn = luaL_optstring(L, 3, "-");
	enum gl_log_level lv = GL_LOG_INFO;

	if (!strcasecmp(level, "debug"))
		lv = GL_LOG_DEBUG;
	else if (!strncasecmp(level, "warn", 4))
		lv = GL_LOG_WARN;
	else if (!strcasecmp(level, "error"))
		lv = GL_LOG_ERROR;
	gl_log(lv, "type %s: %s%s%s", tn,
	       strcasecmp(level, "hook") ? "" : "hook ", msg, "");
	return 0;
}

/* Read a whole type file (small, bounded). */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || st.st_size > MAX_TYPE_FILE) {
		snprintf(err, errlen, "%.900s: missing or larger than %d bytes", path,
			 MAX_TYPE_FILE);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(buf);
		snprintf(err, errlen, "%.900s: read failed", path);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

typedef struct load_args {
	const gl_conf *conf;
	char **names;
	int nnames;
} load_args;

/* The part of loading that runs inside the protected call. */
static int p_load(lua_State *L, pcall_ctx *c)
{
	gl_types *ts = c->ts;
	const load_args *la = (const load_args *)c->j1;
	const gl_conf *conf = la->conf;
	char path[4096], err[1024];

	luaL_openlibs(L);
	/* library modules from lua_path only; no C modules ever */
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", conf->lua_path,
			conf->lua_path);
	lua_setfield(L, -2, "path");
	lua_pushstring(L, "");
	lua_setfield(L, -2, "cpath");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	lua_getfield(L, -1, "searchers");
	for (int i = 3; i <= 4; i++) {
		lua_pushnil(L);
		lua_rawseti(L, -2, i);
	}
	lua_pop(L, 2);

	lua_getglobal(L, "require");
	lua_pushstring(L, "glare.runtime");
	lua_call(L, 1, 1);
	ts->rt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getglobal(L, "require");
	lua_pushstring(L, "glare.json");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "null");
	ts->lj.null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "array_mt");
	ts->lj.amt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "object_mt");
	ts->lj.omt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	push_rt(L, ts, "set_log_sink");
	lua_pushcfunction(L, log_sink);
	lua_call(L, 1, 0);
	lua_getglobal(L, "require");
	lua_pushstring(L, "glare.sandbox");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "protect_string_metatable");
	lua_call(L, 0, 0);
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushstring(L, "glare.loader");
	lua_call(L, 1, 1);
	int loader = lua_gettop(L);

	/* what trusted code no longer needs once the library is in */
	static const char *const drop[] = { "dofile", "loadfile", "debug",
					    "collectgarbage", NULL };
	for (int i = 0; drop[i]; i++) {
		lua_pushnil(L);
		lua_setglobal(L, drop[i]);
	}

	ts->ntypes = 0;
	ts->types = calloc((size_t)la->nnames + 1, sizeof *ts->types);
	if (!ts->types)
		luaL_error(L, "out of memory");
	for (int i = 0; i < la->nnames; i++) {
		const char *name = la->names[i];
		char chunk[512];
		size_t len;
		char *src;
		const gl_type_conf *tc = gl_conf_type(conf, name);

		snprintf(path, sizeof path, "%s/%s.lua", conf->types_path, name);
		snprintf(chunk, sizeof chunk, "types/%s.lua", name);
		src = slurp(path, &len, err, sizeof err);
		if (!src)
			luaL_error(L, "artifact type %s: %s", name, err);
		lua_getfield(L, loader, "load");
		lua_pushlstring(L, src, len);
		free(src);
		lua_pushstring(L, chunk);
		lua_createtable(L, 0, 1);
		if (tc->raw) {
			gl_ljson_push(L, &ts->lj, tc->raw);
			lua_setfield(L, -2, "options");
		}
		lua_call(L, 3, 2);
		if (lua_isnil(L, -2))
			luaL_error(L, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		import_type(L, ts, &ts->types[ts->ntypes]);
		lua_pop(L, 1);
		if (!ts->types[ts->ntypes].name ||
		    strcmp(ts->types[ts->ntypes].name, name) != 0)
			luaL_error(L, "%s: declares type '%s', expected '%s' "
				   "(the file name)", chunk,
				   ts->types[ts->ntypes].name
					   ? ts->types[ts->ntypes].name : "?",
				   name);
		ts->ntypes++;
	}
	lua_getfield(L, loader, "all_type");
	lua_call(L, 0, 1);
	import_type(L, ts, &ts->types[ts->ntypes]);
	ts->types[ts->ntypes].is_all = 1;
	/* on the all type, type_name is a column like the base fields */
	for (int i = 0; i < ts->types[ts->ntypes].nfields; i++)
		if (!strcmp(ts->types[ts->ntypes].fields[i].name, "type_name"))
			ts->types[ts->ntypes].fields[i].base = 1;
	ts->ntypes++;
	lua_pop(L, 2);
	return 0;
}

static void add_name(char ***names, int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp((*names)[i], name))
			return;
	char **nn = realloc(*names, sizeof *nn * (size_t)(*n + 1));
	if (!nn)
		return;
	*names = nn;
	(*names)[(*n)++] = strdup(name);
}

static void types_free(gl_types *ts)
{
	for (int i = 0; i < ts->ntypes; i++) {
		gl_type *t = &ts->types[i];
		for (int k = 0; k < t->nfields; k++) {
			free(t->fields[k].name);
			json_decref(t->fields[k].def);
		}
		free(t->fields);
		free(t->name);
		free(t->display_name);
		free(t->version);
	}
	free(ts->types);
	if (ts->L)
		lua_close(ts->L);
	if (current_set == ts)
		current_set = NULL;
	free(ts);
}

gl_types *gl_types_load(const gl_conf *conf, gl_err *err)
{
	gl_types *ts = calloc(1, sizeof *ts);
	load_args la = { conf, NULL, 0 };
	pcall_ctx c = { 0 };
	int rc;

	if (!ts) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	ts->refs = 1;
	ts->mem_cap = (size_t)conf->lua_memory_limit;
	ts->hook_budget = conf->lua_instruction_limit;
	ts->L = lua_newstate(cap_alloc, ts);
	if (!ts->L) {
		free(ts);
		gl_fail(err, 500, NULL, "cannot create a Lua state");
		return NULL;
	}
	lua_atpanic(ts->L, at_panic);
	/* request garbage dies young: the generational collector keeps up
	 * without the full steps an incremental cycle would take per call
	 * (a forced step per call measured ~40% of a create's CPU) */
	lua_gc(ts->L, LUA_GCGEN, 0, 0);
	*(gl_types **)lua_getextraspace(ts->L) = ts;

	/* enabled types, then custom modules: a.b.c names file c.lua */
	for (int i = 0; i < conf->enabled_artifact_types.n; i++)
		if (strcmp(conf->enabled_artifact_types.v[i], "all") != 0)
			add_name(&la.names, &la.nnames,
				 conf->enabled_artifact_types.v[i]);
	for (int i = 0; i < conf->custom_artifact_types_modules.n; i++) {
		const char *m = conf->custom_artifact_types_modules.v[i];
		const char *dot = strrchr(m, '.');
		add_name(&la.names, &la.nnames, dot ? dot + 1 : m);
	}
	c.ts = ts;
	c.fn = p_load;
	c.j1 = (const json_t *)&la;
	/* a type file gets the load budget of 100 hook calls */
	rc = run(&c, conf->lua_instruction_limit * 100, err, "loading types");
	for (int i = 0; i < la.nnames; i++)
		free(la.names[i]);
	free(la.names);
	if (rc < 0) {
		/* the library's message is already precise: drop the prefix */
		const char *p = strstr(err->msg, "loading types: ");
		if (p == err->msg)
			memmove(err->msg, err->msg + 15, strlen(err->msg + 15) + 1);
		err->status = 500;
		types_free(ts);
		return NULL;
	}
	if (!current_set)
		current_set = ts;
	return ts;
}

gl_types *gl_types_ref(gl_types *t)
{
	t->refs++;
	return t;
}

void gl_types_unref(gl_types *t)
{
	if (t && --t->refs == 0)
		types_free(t);
}

gl_types *gl_types_current(void) { return current_set; }
void gl_types_set_current(gl_types *t) { current_set = t; }

const gl_type *gl_types_find(const gl_types *ts, const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < ts->ntypes; i++)
		if (!strcmp(ts->types[i].name, name))
			return &ts->types[i];
	return NULL;
}

int gl_types_count(const gl_types *t) { return t->ntypes; }
const gl_type *gl_types_at(const gl_types *t, int i) { return &t->types[i]; }

const gl_field *gl_type_field(const gl_type *t, const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < t->nfields; i++)
		if (!strcmp(t->fields[i].name, name))
			return &t->fields[i];
	return NULL;
}

/* ---- runtime calls ------------------------------------------------------------ */

/* Results "v" or "nil, msg" at the top two slots after a call returning 2
 * values: convert to c->out, or c->msg + status 400. */
static void take_result(lua_State *L, pcall_ctx *c)
{
	char m[256];
	if (lua_isnil(L, -2)) {
		snprintf(c->msg, sizeof c->msg, "%s",
			 lua_tostring(L, -1) ? lua_tostring(L, -1) : "invalid value");
		c->status = 400;
		return;
	}
	c->out = gl_ljson_to(L, &c->ts->lj, -2, m, sizeof m);
	if (!c->out) {
		snprintf(c->msg, sizeof c->msg, "%s", m);
		c->status = 400;
	}
}

static int p_coerce(lua_State *L, pcall_ctx *c)
{
	push_rt(L, c->ts, c->flag >= 0 ? "coerce_filter" : "coerce");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
	lua_pushstring(L, c->s1);
	if (c->flag >= 0) {
		lua_pushstring(L, c->s2);
		lua_pushboolean(L, c->flag);
		lua_call(L, 4, 2);
	} else {
		gl_ljson_push(L, &c->ts->lj, c->j1);
		lua_call(L, 3, 2);
	}
	take_result(L, c);
	return 0;
}

static int finish(pcall_ctx *c, int rc, gl_err *err)
{
	if (rc < 0)
		return -1;
	if (c->status)
		return gl_fail(err, c->status, c->status == 400 ? "BadRequest"
								 : NULL,
			       "%s", c->msg);
	return 0;
}

int gl_types_coerce(gl_types *ts, const gl_type *t, const char *field,
		    json_t *in, json_t **out, gl_err *err)
{
	pcall_ctx c = { .ts = ts, .fn = p_coerce, .t = t, .s1 = field, .j1 = in,
			.flag = -1 };
	/* custom validators are type code: same budget as hooks */
	int rc = run(&c, ts->hook_budget, err, "coercion");
	if (finish(&c, rc, err) < 0) {
		json_decref(c.out);
		return -1;
	}
	*out = c.out;
	return 0;
}

int gl_types_coerce_filter(gl_types *ts, const gl_type *t, const char *field,
			   const char *value, int element, json_t **out,
			   gl_err *err)
{
	pcall_ctx c = { .ts = ts, .fn = p_coerce, .t = t, .s1 = field,
			.s2 = value, .flag = element ? 1 : 0 };
	int rc = run(&c, ts->hook_budget, err, "filter coercion");
	if (finish(&c, rc, err) < 0) {
		json_decref(c.out);
		return -1;
	}
	*out = c.out;
	return 0;
}

static int p_vkey(lua_State *L, pcall_ctx *c)
{
	push_rt(L, c->ts, "version_key");
	lua_pushstring(L, c->s1);
	lua_call(L, 1, 3);
	if (!lua_isinteger(L, -3)) {
		snprintf(c->msg, sizeof c->msg, "invalid version '%s'", c->s1);
		c->status = 400;
		return 0;
	}
	c->i64 = lua_tointeger(L, -3);
	c->str = strdup(lua_tostring(L, -2) ? lua_tostring(L, -2) : "");
	c->s3 = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
	return 0;
}

int gl_types_version_key(gl_types *ts, const char *version, int64_t *prefix,
			 char **suffix, char **meta, gl_err *err)
{
	pcall_ctx c = { .ts = ts, .fn = p_vkey, .s1 = version ? version : "" };
	int rc = run(&c, INT64_MAX / 2, err, "version key");
	if (finish(&c, rc, err) < 0) {
		free(c.str);
		free((char *)c.s3);
		return -1;
	}
	/* the key is an unsigned bit pattern (major << 48 ...): flipping the
	 * sign bit makes signed comparison (SQL INTEGER) order it right */
	*prefix = (int64_t)((uint64_t)c.i64 ^ 0x8000000000000000ULL);
	*suffix = c.str;
	*meta = (char *)c.s3;
	return 0;
}

static int p_schema(lua_State *L, pcall_ctx *c)
{
	char m[256];
	push_rt(L, c->ts, "schema");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
	lua_call(L, 1, 1);
	c->out = gl_ljson_to(L, &c->ts->lj, -1, m, sizeof m);
	if (!c->out)
		luaL_error(L, "schema of %s: %s", c->t->name, m);
	return 0;
}

json_t *gl_types_schema(gl_types *ts, const gl_type *t)
{
	pcall_ctx c = { .ts = ts, .fn = p_schema, .t = t };
	gl_err err = { 0 };
	if (run(&c, INT64_MAX / 2, &err, "schema") < 0)
		return json_object();
	return c.out;
}

static int p_output(lua_State *L, pcall_ctx *c)
{
	push_rt(L, c->ts, c->flag ? "format_all" : "output");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
	gl_ljson_push(L, &c->ts->lj, c->j1);
	lua_call(L, 2, 2);
	take_result(L, c);
	return 0;
}

json_t *gl_types_output(gl_types *ts, const gl_type *t, json_t *af,
			int format_all)
{
	pcall_ctx c = { .ts = ts, .fn = p_output, .t = t, .j1 = af,
			.flag = format_all };
	gl_err err = { 0 };

	if (run(&c, INT64_MAX / 2, &err, format_all ? "format_all" : "to_dict") <
		    0 ||
	    c.status || !json_is_object(c.out)) {
		if (c.status)
			gl_warn("type %s: output hook: %s", t->name, c.msg);
		json_decref(c.out);
		return af; /* the plain artifact beats no answer */
	}
	json_decref(af);
	return c.out;
}

/* blob.read(offset, n) for pre_upload: bounded reads of the temp file */
static int l_blob_read(lua_State *L)
{
	gl_types *ts = *(gl_types **)lua_getextraspace(L);
	int a = lua_istable(L, 1) ? 2 : 1; /* blob.read or blob:read */
	lua_Integer off = luaL_checkinteger(L, a);
	lua_Integer n = luaL_optinteger(L, a + 1, 65536);
	luaL_Buffer b;
	char *p;
	int fd;
	ssize_t got;

	if (!ts->read_path)
		return luaL_error(L, "blob.read is only valid during pre_upload");
	if (off < 0 || n < 0)
		return luaL_error(L, "blob.read: offset and size must be >= 0");
	if (off + n > ts->read_end)
		n = off >= ts->read_end ? 0 : ts->read_end - off;
	if (n > ts->read_left)
		return luaL_error(L, "blob.read: the hook may read at most "
				  "%I more bytes", (lua_Integer)ts->read_left);
	fd = open(ts->read_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return luaL_error(L, "blob.read: %s", strerror(errno));
	p = luaL_buffinitsize(L, &b, (size_t)n);
	got = pread(fd, p, (size_t)n, (off_t)off);
	close(fd);
	if (got < 0)
		return luaL_error(L, "blob.read: %s", strerror(errno));
	ts->read_left -= got;
	luaL_pushresultsize(&b, (size_t)got);
	return 1;
}

/* hook(ctx, af, args...) through runtime.run_hook */
static int p_hook(lua_State *L, pcall_ctx *c)
{
	size_t i, nargs = c->j3 ? json_array_size(c->j3) : 0;
	json_t *v;

	push_rt(L, c->ts, "run_hook");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
	lua_pushstring(L, c->s1);
	gl_ljson_push(L, &c->ts->lj, c->j1);
	gl_ljson_push(L, &c->ts->lj, c->j2);
	luaL_checkstack(L, (int)nargs + 4, "hook arguments");
	if (c->j3)
		json_array_foreach(c->j3, i, v)
			gl_ljson_push(L, &c->ts->lj, v);
	if (c->ts->read_path && nargs >= 3 && lua_istable(L, -1)) {
		/* pre_upload's blob gets its bounded reader */
		lua_pushstring(L, "read");
		lua_pushcfunction(L, l_blob_read);
		lua_rawset(L, -3);
	}
	lua_call(L, (int)nargs + 4, 3);
	if (!lua_toboolean(L, -3)) {
		c->status = (int)luaL_optinteger(L, -2, 400);
		snprintf(c->msg, sizeof c->msg, "%s",
			 lua_tostring(L, -1) ? lua_tostring(L, -1)
					     : "hook failed");
		return 0;
	}
	if (c->flag && lua_istable(L, -2)) {
		char m[256];
		c->out = gl_ljson_to(L, &c->ts->lj, -2, m, sizeof m);
	}
	return 0;
}

int gl_types_hook(gl_types *ts, const gl_type *t, enum gl_hook h,
		  const json_t *ctx, const json_t *af, const json_t *args,
		  json_t **af_out, gl_err *err)
{
	pcall_ctx c = { .ts = ts, .fn = p_hook, .t = t, .s1 = hook_names[h],
			.j1 = ctx, .j2 = af, .j3 = args, .flag = af_out != NULL };
	char what[64];
	int rc;

	if (af_out)
		*af_out = NULL;
	if (!(t->hooks & (1u << h)))
		return 0;
	if (!ctx || !af)
		return gl_fail(err, 500, NULL, "the arguments of hook %s of %s "
			       "could not be built", hook_names[h], t->name);
	snprintf(what, sizeof what, "hook %s of %s", hook_names[h], t->name);
	rc = run(&c, ts->hook_budget, err, what);
	if (rc < 0) {
		/* runaway or out of memory: the hook failed, not the server */
		err->status = 400;
		snprintf(err->type, sizeof err->type, "BadRequest");
		return -1;
	}
	if (c.status) {
		json_decref(c.out);
		return gl_fail(err, c.status, c.status == 400 ? "BadRequest"
							      : NULL,
			       "%s", c.msg);
	}
	if (af_out)
		*af_out = c.out;
	else
		json_decref(c.out);
	return 0;
}

int gl_types_hook_upload(gl_types *ts, const gl_type *t, const json_t *ctx,
			 const json_t *af, const char *field, const char *key,
			 const json_t *blob, const char *path, int64_t max_read,
			 int64_t readable, gl_err *err)
{
	json_t *args;
	int rc;

	if (!(t->hooks & (1u << GL_HOOK_PRE_UPLOAD)))
		return 0;
	/* p_hook adds read() to the blob table while read_path is set */
	args = json_pack("[s, s?, O]", field, key, blob);
	if (!args)
		return gl_fail(err, 500, NULL, "the arguments of hook pre_upload "
			       "of %s could not be built", t->name);
	ts->read_path = path;
	ts->read_left = max_read;
	ts->read_end = readable;
	rc = gl_types_hook(ts, t, GL_HOOK_PRE_UPLOAD, ctx, af, args, NULL, err);
	ts->read_path = NULL;
	json_decref(args);
	return rc;
}

static int p_select(lua_State *L, pcall_ctx *c)
{
	int F;

	lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
	lua_getfield(L, -1, "by_name");
	lua_getfield(L, -1, c->s1);
	F = lua_gettop(L);
	lua_getfield(L, F, "select_location");
	if (!lua_isfunction(L, -1))
		return 0;
	gl_ljson_push(L, &c->ts->lj, c->j1);
	gl_ljson_push(L, &c->ts->lj, c->j2);
	/* the folder's value: its blobs by key */
	{
		json_t *folder = json_object_get(c->j2, c->s1);
		json_t *empty = json_object();
		gl_ljson_push(L, &c->ts->lj, folder ? folder : empty);
		json_decref(empty);
	}
	gl_ljson_push(L, &c->ts->lj, c->j3);
	if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
		push_rt(L, c->ts, "hook_error");
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->t->ref);
		lua_pushstring(L, "select_location");
		lua_pushvalue(L, -4);
		lua_call(L, 3, 2);
		c->status = (int)luaL_optinteger(L, -2, 400);
		snprintf(c->msg, sizeof c->msg, "%s",
			 lua_tostring(L, -1) ? lua_tostring(L, -1) : "failed");
		return 0;
	}
	if (lua_type(L, -1) == LUA_TSTRING)
		c->str = strdup(lua_tostring(L, -1));
	return 0;
}

int gl_types_select_location(gl_types *ts, const gl_type *t,
			     const char *field, const json_t *ctx,
			     const json_t *af, const json_t *request,
			     char **key, gl_err *err)
{
	pcall_ctx c = { .ts = ts, .fn = p_select, .t = t, .s1 = field,
			.j1 = ctx, .j2 = af, .j3 = request };
	int rc;

	*key = NULL;
	if (!ctx || !af || !request)
		return gl_fail(err, 500, NULL, "the arguments of "
			       "select_location could not be built");
	rc = run(&c, ts->hook_budget, err, "select_location");
	if (rc < 0) {
		err->status = 400;
		return -1;
	}
	if (c.status) {
		free(c.str);
		return gl_fail(err, c.status, NULL, "%s", c.msg);
	}
	*key = c.str;
	return 0;
}
