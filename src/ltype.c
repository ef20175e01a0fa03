/* ltype.c - the sandboxed Lua type runtime (see ltype.h and
 * docs/lua-runtime.md).
 *
 * One lua_State per type per worker. A state's globals belong to its own
 * copy of the trusted library in lua/glare (read once per load from
 * lua_path, regular files only); the type file and its hooks only ever
 * run in the allow-listed environments that library builds, and once the
 * file has declared its type the library seals what it built (read-only
 * tables, file-level locals put back after every call). The C side adds
 * what Lua cannot do for itself:
 *  - a capped allocator per state (lua_memory_limit), so a type can only
 *    ever exhaust its own memory;
 *  - one budget per request (gl_lreq) in instructions, from a count hook
 *    that, once the budget is spent, fires on every instruction so a
 *    script's own pcall cannot swallow the error, and in wall time, from
 *    the monotonic clock read by the same hook; the C functions of
 *    lsafe.c charge the work the hook cannot see to the same budget;
 *  - text-only chunks, no C modules, no finalizers (setmetatable refuses
 *    __gc and the library never hands its metatables out), so lua_close
 *    never runs type code;
 *  - Lua <-> JSON conversion with raw access only, a depth, node and size
 *    budget and cycle detection (ljson.c);
 *  - the mapping of errors: refusals are 4xx with the type's message,
 *    anything else a 500 without file names, logged in full.
 *
 * Functions that touch a Lua stack carry the Lua manual's note
 * [-o, +p, x]: pops o values, pushes p, and x says what it may raise
 * (- nothing, m a memory error, e any error, v an error on purpose).
 */
#include "ltype.h"
#include "coro.h"
#include "ljson.h"
#include "log.h"
#include "lsafe.h"
#include "metrics.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define MAX_TYPE_FILE (1 << 20)
#define MAX_LIB_FILE (1 << 20)
#define HOOK_EVERY 1000
/* declaring a type may take this many times a request's budget */
#define LOAD_STEPS_FACTOR 100
#define LOAD_TIME_FACTOR 10
/* a call that left this much garbage behind gets a full collection */
#define GC_SLACK (8u << 20)

typedef struct libsrc {
	char *name, *src;
	size_t len;
	char *bc; /* compiled by the first state that loaded it */
	size_t bclen, bccap;
} libsrc;

typedef struct gl_tstate {
	gl_lsafe_host host; /* first: what lua_getextraspace points at */
	lua_State *L;
	gl_types *ts;
	char chunk[300]; /* "types/x.lua", for messages */
	size_t mem_used, mem_cap, mem_sealed;
	int mem_refused; /* the cap refused an allocation this call */
	int rt_ref, boxes_ref, nboxes;
	gl_ljson lj;
	/* the call in progress */
	gl_lreq *rq;
	int64_t steps_limit, ns_limit, t0, deadline;
	int spent;       /* 1: instructions, 2: time */
	int loading;     /* declaring the type (budget wording) */
	char where[160]; /* where the budget ran out */
	/* pre_upload's blob.read */
	const char *read_path;
	int64_t read_left, read_end;
} gl_tstate;

struct gl_types {
	int refs;
	gl_type *types;
	gl_tstate **states; /* states[i] runs types[i] */
	int ntypes;
	char *lua_path;
	libsrc *lib; /* library sources, read once per load */
	int nlib;
	size_t mem_cap;
	int64_t steps_limit, ns_limit;
};

static gl_tstate *state_of(lua_State *L)
{
	return *(gl_tstate **)lua_getextraspace(L);
}

static gl_tstate *type_state(gl_types *ts, const gl_type *t)
{
	return ts->states[t - ts->types];
}

static int64_t mono_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- the capped allocator and the budget -------------------------------- */

static void *cap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	gl_tstate *st = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		st->mem_used -= old;
		return NULL;
	}
	/* refuse only growth past the cap; shrinking always succeeds */
	if (nsize > old && st->mem_used + (nsize - old) > st->mem_cap) {
		st->mem_refused = 1;
		return NULL;
	}
	void *np = realloc(ptr, nsize);
	if (np)
		st->mem_used = st->mem_used - old + nsize;
	return np;
}

static void budget_hook(lua_State *L, lua_Debug *ar);

/* [-0, +0, v] Raise if the request's budget is spent. Once spent, the hook fires on
 * every instruction, so an inner pcall cannot catch the error and carry
 * on: the first instruction after it raises again. */
static void check_budget(lua_State *L, gl_tstate *st)
{
	if (!st->spent) {
		if (st->rq->steps > st->steps_limit)
			st->spent = 1;
		else if (mono_ns() > st->deadline)
			st->spent = 2;
		else
			return;
		/* where the type was: the first level with a line (level 0
		 * is the interrupted function in a hook, the charging C
		 * function, which has none, otherwise) */
		st->where[0] = '\0';
		for (int lv = 0; lv <= 3 && !st->where[0]; lv++) {
			luaL_where(L, lv);
			snprintf(st->where, sizeof st->where, "%s",
				 lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
	}
	if (st->spent == 1)
		luaL_error(L, "instruction budget of %I %s exceeded",
			   (lua_Integer)st->steps_limit,
			   st->loading ? "for loading" : "per request");
	luaL_error(L, "time budget of %I ms %s exceeded",
		   (lua_Integer)(st->ns_limit / 1000000),
		   st->loading ? "for loading" : "per request");
}

/* [-0, +0, v] The count hook: charge HOOK_EVERY steps. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
	gl_tstate *st = state_of(L);

	st->rq->steps += HOOK_EVERY;
	check_budget(L, st);
}

/* [-0, +0, v] lsafe.c's charge: C work the count hook cannot see. */
static void host_charge(lua_State *L, int64_t steps)
{
	gl_tstate *st = state_of(L);

	if (!st->rq)
		return;
	st->rq->steps += steps;
	check_budget(L, st);
}

/* [-0, +0, -] os.clock: the request's seconds in Lua so far. */
static double host_clock(lua_State *L)
{
	gl_tstate *st = state_of(L);

	if (!st->rq)
		return 0;
	return (double)(st->rq->ns + mono_ns() - st->t0) / 1e9;
}

/* A fresh seed for math.random per call, from a generator seeded once
 * per worker. */
static uint64_t next_seed(void)
{
	static uint64_t s;
	static int seeded;

	if (!seeded) {
		if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
			s = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
		seeded = 1;
	}
	s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* [-0, +0, -] Never reached (every call is protected): log, abort. */
static int at_panic(lua_State *L)
{
	gl_error("lua: unprotected error: %s",
		 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
	abort();
	return 0;
}

/* ---- protected calls ------------------------------------------------------ */

/* Everything that touches a state runs inside one lua_pcall of a C
 * function, so a memory error or a runaway script unwinds to here and
 * never to the panic handler. Each kind of call has a struct of its own
 * for its arguments and results whose first member is this outcome. */
typedef struct tcall {
	gl_tstate *st;
	int (*fn)(lua_State *L, struct tcall *c);
	int internal; /* a server-side failure: err.msg for the log */
	gl_err err;   /* without internal: a refusal (4xx, gl_fail) */
} tcall;

/* A server-side failure: the message is for the log only. */
static void internal(tcall *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void internal(tcall *c, const char *fmt, ...)
{
	va_list ap;

	c->internal = 1;
	va_start(ap, fmt);
	vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
	va_end(ap);
}

/* [-(any), +0, e] The protected body: runs c->fn on an empty stack. */
static int trampoline(lua_State *L)
{
	tcall *c = lua_touserdata(L, 1);
	lua_settop(L, 0);
	return c->fn(L, c);
}

/* [-1, +1, m] Message handler of run(): may run inside the count hook with hooks off,
 * so it runs no type code (raw access only, no __tostring). */
static int traceback(lua_State *L)
{
	const char *m = lua_tostring(L, 1);
	if (!m) {
		if (lua_type(L, 1) == LUA_TTABLE) {
			lua_pushliteral(L, "message");
			lua_rawget(L, 1);
			m = lua_type(L, -1) == LUA_TSTRING
				    ? lua_tostring(L, -1)
				    : NULL;
		}
		if (!m)
			m = "(error object is not a string)";
	}
	luaL_traceback(L, L, m, 1);
	return 1;
}

/* [-0, +0, -] Put back every file-level local (and _ENV) of the type's functions as
 * they were when the type was sealed: a hook may assign them during a
 * call, the next call never sees it. */
static void restore(gl_tstate *st)
{
	lua_State *L = st->L;

	if (!st->nboxes || !lua_checkstack(L, 4))
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, st->boxes_ref);
	for (int i = 0; i < st->nboxes; i++) {
		lua_Integer n;
		lua_rawgeti(L, -1, 3 * i + 1);
		lua_rawgeti(L, -2, 3 * i + 2);
		n = lua_tointeger(L, -1);
		lua_pop(L, 1);
		lua_rawgeti(L, -2, 3 * i + 3);
		if (!lua_setupvalue(L, -2, (int)n))
			lua_pop(L, 1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* Replace control characters so one hook record stays one log line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = *s == '\n' ? '|' : ' ';
}

/* [-0, +0, -] Run c->fn in st with the budget of rq (NULL: a budget of
 * its own). Returns 0, or -1 with c->internal set and the reason in
 * c->err.msg. */
static int run_limits(tcall *c, gl_lreq *rq, int64_t steps_limit,
		      int64_t ns_limit)
{
	gl_tstate *st = c->st;
	lua_State *L = st->L;
	gl_lreq own = { 0 };
	int base = lua_gettop(L), rc;
	int64_t now;

	if (!rq)
		rq = &own;
	if (rq->steps > steps_limit || rq->ns > ns_limit) {
		internal(c,
			 "the request's Lua budget (%lld instructions, "
			 "%lld ms) is spent",
			 (long long)steps_limit,
			 (long long)(ns_limit / 1000000));
		return -1;
	}
	st->rq = rq;
	st->steps_limit = steps_limit;
	st->ns_limit = ns_limit;
	st->spent = 0;
	st->mem_refused = 0;
	now = mono_ns();
	st->t0 = now;
	st->deadline = now + (ns_limit - rq->ns);
	gl_lsafe_seed(st->host.rng, next_seed());
	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, trampoline);
	lua_pushlightuserdata(L, c);
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
	/* a call into Lua never spans a yield: the state, its sealed
	 * upvalues and st->rq (this request's budget) are shared by every
	 * coroutine of the worker */
	gl_coro_noyield_enter();
	rc = lua_pcall(L, 1, 0, base + 1);
	gl_coro_noyield_leave();
	lua_sethook(L, NULL, 0, 0);
	rq->ns += mono_ns() - now;
	if (rc != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		const char *per = st->loading ? "for loading" : "per request";
		if (st->spent == 1)
			internal(c, "%sinstruction budget of %lld %s exceeded",
				 st->where, (long long)steps_limit, per);
		else if (st->spent)
			internal(c, "%stime budget of %lld ms %s exceeded",
				 st->where, (long long)(ns_limit / 1000000),
				 per);
		else if (rc == LUA_ERRMEM || st->mem_refused)
			internal(c, "memory limit of %zu bytes exceeded: %s",
				 st->mem_cap, m ? m : "?");
		else
			internal(c, "%s", m ? m : "?");
	} else if (c->internal && st->mem_refused &&
		   !strstr(c->err.msg, "memory limit")) {
		char m[sizeof c->err.msg];
		snprintf(m, sizeof m, "%s", c->err.msg);
		internal(c, "memory limit of %zu bytes exceeded: %.900s",
			 st->mem_cap, m);
	}
	gl_metrics_lua(rc != LUA_OK || c->internal, st->spent != 0,
		       rc == LUA_ERRMEM || st->mem_refused);
	lua_settop(L, base);
	restore(st);
	st->rq = NULL;
	if (st->mem_used > st->mem_sealed + GC_SLACK)
		lua_gc(L, LUA_GCCOLLECT);
	return rc == LUA_OK && !c->internal ? 0 : -1;
}

static int run(tcall *c, gl_lreq *rq)
{
	gl_types *ts = c->st->ts;
	return run_limits(c, rq, ts->steps_limit, ts->ns_limit);
}

/* The outcome of a call as gl_err: a refusal keeps its status and
 * message; a server-side failure is logged with its detail and answered
 * with a 500 that names what failed but no file. (A status outside 4xx
 * never reaches here: take_hook_failure makes it a server-side failure.) */
static int finish(tcall *c, int rc, gl_lreq *rq, const char *what, gl_err *err)
{
	const char *rid = rq && rq->rid && rq->rid[0] ? rq->rid : NULL;

	if (rc < 0 || c->internal) {
		one_line(c->err.msg);
		gl_error("request %s: %s failed: %s", rid ? rid : "-", what,
			 c->err.msg);
		if (rid)
			return gl_fail(err, 500, NULL,
				       "%s failed (internal "
				       "error; see the server log for request "
				       "%s)",
				       what, rid);
		return gl_fail(err, 500, NULL,
			       "%s failed (internal error; "
			       "see the server log)",
			       what);
	}
	if (c->err.status) {
		if (err)
			*err = c->err;
		return -1;
	}
	return 0;
}

/* [-0, +1, e] push runtime[name] */
static void push_rt(lua_State *L, gl_tstate *st, const char *name)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, st->rt_ref);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
}

/* ---- loading ------------------------------------------------------------------- */

static const char *kind_name(gl_kind k)
{
	static const char *const n[] = { "String",  "Integer", "Float",
					 "Boolean", "Version", "Link",
					 "Blob",    "Folder",  "List",
					 "Dict",    "DateTime" };
	return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

static int kind_of(const char *s, gl_kind *k)
{
	for (int i = GK_STRING; i <= GK_DATETIME; i++)
		if (s && !strcmp(s, kind_name((gl_kind)i))) {
			*k = (gl_kind)i;
			return 0;
		}
	return -1;
}

/* clang-format off */
static const char *const op_names[] = { "eq", "neq", "lt", "lte", "gt",
					"gte", "in", "like", NULL };
/* clang-format on */

/* 0 if unknown */
static unsigned op_from_name(const char *name)
{
	for (int i = 0; op_names[i]; i++)
		if (!strcmp(op_names[i], name))
			return 1u << i;
	return 0;
}

static const char *const hook_names[GL_HOOK_COUNT] = {
#define HOOK_NAME(up, low) #low,
	GL_HOOKS(HOOK_NAME)
#undef HOOK_NAME
};

/* [-0, +1, m] The hook names as a Lua list (the library's glare.hooks). */
static void push_hooks(lua_State *L)
{
	lua_createtable(L, GL_HOOK_COUNT, 0);
	for (int h = 0; h < GL_HOOK_COUNT; h++) {
		lua_pushstring(L, hook_names[h]);
		lua_rawseti(L, -2, h + 1);
	}
}

/* [-0, +0, e] t[k] of the table at idx, as a C value (get_str: malloc'ed
 * or NULL) */
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

/* The effective validator limits of a compiled field (its private _attrs
 * and _eattrs, implicit limits included) that C checks first. */
static int get_limit(lua_State *L, int idx, const char *k)
{
	int64_t v = get_int(L, idx, k, -1);
	return v > INT_MAX ? INT_MAX : v < 0 ? -1 : (int)v;
}

static void import_limits(lua_State *L, int F, gl_field *f)
{
	f->max_items = f->max_length = f->elem_max_length = -1;
	lua_getfield(L, F, "_attrs");
	if (lua_istable(L, -1)) {
		if (f->kind == GK_LIST)
			f->max_items = get_limit(L, -1, "max_items");
		if (f->kind == GK_STRING)
			f->max_length = get_limit(L, -1, "max_length");
		if (f->kind == GK_DICT) {
			f->max_keys = get_limit(L, -1, "max_keys");
			f->max_key_length = get_limit(L, -1, "max_key_length");
		}
	}
	lua_pop(L, 1);
	lua_getfield(L, F, "_eattrs");
	if (lua_istable(L, -1) && f->elem == GK_STRING)
		f->elem_max_length = get_limit(L, -1, "max_length");
	lua_pop(L, 1);
}

/* Copy the compiled type at the top of the stack into t. Raises on a
 * malformed compiled table (a library bug). [-0, +0, e] */
static void import_type(lua_State *L, gl_tstate *st, gl_type *t)
{
	int T = lua_gettop(L);
	gl_err e;

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
		f->required_on_activate = get_bool(L, F,
						   "required_on_activate");
		f->sortable = get_bool(L, F, "sortable");
		f->nullable = get_bool(L, F, "nullable");
		f->same_sha256 = get_bool(L, F, "same_sha256");
		lua_getfield(L, F, "select_location");
		f->select_location = lua_isfunction(L, -1);
		lua_pop(L, 1);
		f->max_blob_size = get_int(L, F, "max_blob_size", 10485760);
		f->max_folder_size = get_int(L, F, "max_folder_size",
					     2673868800LL);
		f->max_key_length = (int)get_int(L, F, "max_key_length", 255);
		f->max_keys = (int)get_int(L, F, "max_keys", 255);
		import_limits(L, F, f);
		lua_getfield(L, F, "default");
		if (!lua_isnil(L, -1)) {
			f->def = gl_ljson_to(L, &st->lj, -1, &e);
			if (!f->def)
				luaL_error(L, "type %s: field %s: default: %s",
					   t->name, f->name, e.msg);
		}
		lua_pop(L, 1);
		lua_getfield(L, F, "filter_ops");
		if (lua_istable(L, -1)) {
			lua_Unsigned n = lua_rawlen(L, -1);
			for (lua_Unsigned k = 1; k <= n; k++) {
				lua_rawgeti(L, -1, (lua_Integer)k);
				if (lua_type(L, -1) == LUA_TSTRING)
					f->filter_ops |= op_from_name(
						lua_tostring(L, -1));
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 2); /* filter_ops, F */
	}
	lua_pop(L, 1); /* fields */
	lua_pushvalue(L, T);
	t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* [-3, +0, m] log_sink(level, msg, type) behind glare.log and print: at
 * most GL_LOG_RECORDS records and GL_LOG_BYTES bytes per request, each
 * record cut at GL_LOG_RECORD_MAX bytes and kept on one line; one warning
 * says when records start to be dropped. */
static int log_sink(lua_State *L)
{
	gl_tstate *st = state_of(L);
	gl_lreq *rq = st->rq;
	size_t len;
	const char *level = luaL_optstring(L, 1, "info");
	const char *msg = luaL_optlstring(L, 2, "", &len);
	const char *tn = luaL_optstring(L, 3, "-");
	const char *rid = rq && rq->rid && rq->rid[0] ? rq->rid : "-";
	enum gl_log_level lv = GL_LOG_INFO;
	char buf[GL_LOG_RECORD_MAX + 4];
	size_t keep = len < GL_LOG_RECORD_MAX ? len : GL_LOG_RECORD_MAX;

	if (rq) {
		/* once records are dropped, every later one of the request is */
		if (rq->log_dropped || rq->log_records >= GL_LOG_RECORDS ||
		    rq->log_bytes + (int64_t)keep > GL_LOG_BYTES) {
			if (rq->log_dropped++ == 0)
				gl_warn("request %s: type %s: further log records "
					"of this request dropped (limit %d records, "
					"%d bytes)",
					rid, tn, GL_LOG_RECORDS, GL_LOG_BYTES);
			return 0;
		}
		rq->log_records++;
		rq->log_bytes += (int64_t)keep;
	}
	memcpy(buf, msg, keep);
	buf[keep] = '\0';
	if (keep < len)
		strcpy(buf + keep, "...");
	/* embedded NULs end the record: it is text for the log */
	one_line(buf);
	if (!strcasecmp(level, "debug"))
		lv = GL_LOG_DEBUG;
	else if (!strncasecmp(level, "warn", 4))
		lv = GL_LOG_WARN;
	else if (!strcasecmp(level, "error"))
		lv = GL_LOG_ERROR;
	gl_log(lv, "request %s: type %.100s: %s%s", rid, tn,
	       strcasecmp(level, "hook") ? "" : "hook ", buf);
	return 0;
}

/* Read a whole file: a regular file only, never blocking (a FIFO or a
 * device in types_path must not hang a reload), at most max bytes. */
static char *slurp(const char *path, size_t max, size_t *len, gl_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0) {
		gl_fail(err, 500, NULL, "%.900s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		gl_fail(err, 500, NULL, "%.900s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		gl_fail(err, 500, NULL, "%.900s: larger than %zu bytes", path,
			max);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		gl_fail(err, 500, NULL, "%.900s: read failed", path);
		return NULL;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* lua_dump hands the compiled chunk over in many small pieces: grow the
 * buffer geometrically */
static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
	libsrc *e = ud;

	if (e->bclen + sz > e->bccap) {
		size_t cap = e->bccap ? e->bccap : 16384;
		char *n;
		while (cap < e->bclen + sz)
			cap *= 2;
		n = realloc(e->bc, cap);
		if (!n)
			return 1;
		e->bc = n;
		e->bccap = cap;
	}
	memcpy(e->bc + e->bclen, p, sz);
	e->bclen += sz;
	return 0;
}

/* [-1, +2, v] package.searchers entry: library modules from lua_path, each file read
 * once per load and shared by the set's states. Only "glare.x" names. The
 * first state compiles the text; the others load that compiled form
 * (parsing the library was most of a state's start-up), never a binary
 * chunk from a file. */
static int lib_searcher(lua_State *L)
{
	gl_tstate *st = state_of(L);
	gl_types *ts = st->ts;
	const char *name = luaL_checkstring(L, 1);
	char path[4096];
	gl_err err;
	libsrc *e = NULL;

	if (strncmp(name, "glare.", 6) != 0 ||
	    strspn(name + 6, "abcdefghijklmnopqrstuvwxyz_") !=
		    strlen(name + 6)) {
		lua_pushfstring(L, "\n\tno library module '%s'", name);
		return 1;
	}
	snprintf(path, sizeof path, "%s/glare/%s.lua", ts->lua_path, name + 6);
	for (int i = 0; i < ts->nlib; i++)
		if (!strcmp(ts->lib[i].name, name))
			e = &ts->lib[i];
	if (!e) {
		libsrc *n = realloc(ts->lib,
				    sizeof *n * (size_t)(ts->nlib + 1));
		if (!n)
			return luaL_error(L, "out of memory");
		ts->lib = n;
		e = &ts->lib[ts->nlib];
		e->src = slurp(path, MAX_LIB_FILE, &e->len, &err);
		if (!e->src)
			return luaL_error(L, "%s", err.msg);
		e->bc = NULL;
		e->bclen = e->bccap = 0;
		e->name = strdup(name);
		if (!e->name) {
			free(e->src);
			return luaL_error(L, "out of memory");
		}
		ts->nlib++;
	}
	lua_pushfstring(L, "@%s", path);
	if (e->bc) {
		if (luaL_loadbufferx(L, e->bc, e->bclen, lua_tostring(L, -1),
				     "b") != LUA_OK)
			return lua_error(L);
	} else {
		if (luaL_loadbufferx(L, e->src, e->len, lua_tostring(L, -1),
				     "t") != LUA_OK)
			return lua_error(L);
		if (lua_dump(L, dump_writer, e, 0) != 0) {
			free(e->bc);
			e->bc = NULL;
			e->bclen = e->bccap = 0;
		}
	}
	lua_pushstring(L, path);
	return 2;
}

/* [-0, +1, e] require(name) */
static void require(lua_State *L, const char *name)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	lua_call(L, 1, 1);
}

/* [-0, +1, e] The library in a fresh state, leaving glare.loader on
 * top: stock libraries, the sandbox's C
 * replacements as glare.core (installed by glare.sandbox before the other
 * modules capture anything), then glare.runtime and glare.loader. */
static void setup_library(lua_State *L, gl_tstate *st)
{
	luaL_openlibs(L);
	lua_getglobal(L, "package");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	/* searchers: preload, then the library; never files or C modules */
	lua_getfield(L, -1, "searchers");
	lua_pushcfunction(L, lib_searcher);
	lua_rawseti(L, -2, 2);
	for (int i = 3; i <= 4; i++) {
		lua_pushnil(L);
		lua_rawseti(L, -2, i);
	}
	lua_pop(L, 1);
	lua_getfield(L, -1, "loaded");
	gl_lsafe_open(L);
	lua_setfield(L, -2, "glare.core");
	/* the server's list of hooks, not lua/glare/hooks.lua (a copy of it
	 * for offline use) */
	push_hooks(L);
	lua_setfield(L, -2, "glare.hooks");
	lua_pop(L, 2);

	require(L, "glare.sandbox");
	lua_getfield(L, -1, "FROZEN");
	st->lj.frozen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	require(L, "glare.runtime");
	st->rt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	require(L, "glare.json");
	lua_getfield(L, -1, "null");
	st->lj.null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "array_mt");
	st->lj.amt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "object_mt");
	st->lj.omt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	push_rt(L, st, "set_log_sink");
	lua_pushcfunction(L, log_sink);
	lua_call(L, 1, 0);
	require(L, "glare.loader");
	/* what trusted code no longer needs once the library is in */
	static const char *const drop[] = {
		"dofile", "loadfile", "load",    "debug",   "collectgarbage",
		"io",     "os",       "require", "package", NULL
	};
	for (int i = 0; drop[i]; i++) {
		lua_pushnil(L);
		lua_setglobal(L, drop[i]);
	}
}

typedef struct load_call {
	tcall c;
	const gl_conf *conf;
	const char *name; /* NULL: the `all` meta-type */
	gl_type *t;       /* filled in */
	int named;        /* the loader's message names the file */
} load_call;

/* types_path is a search list, directories separated by ':': the file
 * name.lua of the first directory that has one, else of the first
 * directory (so a missing file is reported there). */
static void type_file(const char *types_path, const char *name, char *path,
		      size_t size)
{
	const char *p = types_path;

	for (;;) {
		size_t n = strcspn(p, ":");
		snprintf(path, size, "%.*s/%s.lua", (int)n, p, name);
		if (access(path, F_OK) == 0)
			return;
		if (!p[n])
			break;
		p += n + 1;
	}
	snprintf(path, size, "%.*s/%s.lua", (int)strcspn(types_path, ":"),
		 types_path, name);
}

/* [-3, +1, -] The loader's "T" or "nil, message" at the top two slots
 * replace the loader table below them: T stays, or -1 with the message
 * (after "prefix: " when given) in c. */
static int take_declared(lua_State *L, load_call *la, const char *prefix)
{
	if (lua_isnil(L, -2)) {
		const char *m = lua_tostring(L, -1) ? lua_tostring(L, -1)
						    : "?";
		la->named = 1;
		internal(&la->c, "%s%s%s", prefix ? prefix : "",
			 prefix ? ": " : "", m);
		return -1;
	}
	lua_pop(L, 1);
	lua_replace(L, -2);
	return 0;
}

/* [-1, +1, e] Declare the type from its file: the loader table at the
 * top is replaced by the compiled type. -1 with the failure in c. */
static int declare_file(lua_State *L, load_call *la)
{
	gl_tstate *st = la->c.st;
	const gl_type_conf *tc = gl_conf_type(la->conf, la->name);
	char path[4096];
	gl_err e;
	size_t len;
	char *src;

	type_file(la->conf->types_path, la->name, path, sizeof path);
	src = slurp(path, MAX_TYPE_FILE, &len, &e);
	if (!src) {
		internal(&la->c, "artifact type %.100s: %.900s", la->name,
			 e.msg);
		return -1;
	}
	lua_getfield(L, -1, "load");
	lua_pushlstring(L, src, len);
	free(src);
	lua_pushstring(L, st->chunk);
	lua_createtable(L, 0, 1);
	if (tc->raw) {
		gl_ljson_push(L, &st->lj, tc->raw);
		lua_setfield(L, -2, "options");
	}
	lua_call(L, 3, 2);
	/* the loader's message names the file already */
	return take_declared(L, la, NULL);
}

/* [-1, +1, e] The `all` meta-type replaces the loader table at the top
 * (the library's own sandbox self-check runs first). -1 with the failure
 * in c. */
static int declare_all(lua_State *L, load_call *la)
{
	lua_getfield(L, -1, "all_type");
	lua_call(L, 0, 2);
	return take_declared(L, la, la->c.st->chunk);
}

/* [-1, +0, e] Take the compiled type at the top into la->t and keep its
 * sealed file-level locals for restore(). -1 with the failure in c. */
static int adopt_type(lua_State *L, load_call *la)
{
	gl_tstate *st = la->c.st;
	gl_type *t = la->t;

	import_type(L, st, t);
	if (la->name && (!t->name || strcmp(t->name, la->name) != 0)) {
		internal(&la->c,
			 "%s: declares type '%s', expected '%s' (the "
			 "file name)",
			 st->chunk, t->name ? t->name : "?", la->name);
		return -1;
	}
	if (!la->name)
		/* on the all type, type_name is a column like the base fields */
		for (int i = 0; i < t->nfields; i++)
			if (!strcmp(t->fields[i].name, "type_name"))
				t->fields[i].base = 1;
	lua_getfield(L, -1, "_boxes");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "n");
		st->nboxes = (int)(lua_tointeger(L, -1) / 3);
		lua_pop(L, 1);
		st->boxes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	} else {
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return 0;
}

/* [-0, +0, e] A fresh state: the sandboxed library, then the type. */
static int p_load(lua_State *L, tcall *c)
{
	load_call *la = (load_call *)c;

	setup_library(L, c->st);
	if ((la->name ? declare_file(L, la) : declare_all(L, la)) < 0)
		return 0;
	adopt_type(L, la);
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
		if (ts->states && ts->states[i]) {
			/* no finalizers can exist: closing runs no type code */
			if (ts->states[i]->L)
				lua_close(ts->states[i]->L);
			free(ts->states[i]);
		}
	}
	for (int i = 0; i < ts->nlib; i++) {
		free(ts->lib[i].name);
		free(ts->lib[i].src);
		free(ts->lib[i].bc);
	}
	free(ts->lib);
	free(ts->states);
	free(ts->types);
	free(ts->lua_path);
	free(ts);
}

static gl_tstate *state_new(gl_types *ts, const char *chunk)
{
	gl_tstate *st = calloc(1, sizeof *st);

	if (!st)
		return NULL;
	st->ts = ts;
	st->mem_cap = ts->mem_cap;
	st->host.charge = host_charge;
	st->host.clock = host_clock;
	st->rt_ref = st->boxes_ref = LUA_NOREF;
	st->lj.null_ref = st->lj.amt_ref = st->lj.omt_ref = LUA_NOREF;
	st->lj.frozen_ref = LUA_NOREF;
	snprintf(st->chunk, sizeof st->chunk, "%s", chunk);
	st->L = lua_newstate(cap_alloc, st);
	if (!st->L) {
		free(st);
		return NULL;
	}
	lua_atpanic(st->L, at_panic);
	/* request garbage dies young: the generational collector keeps up
	 * without the full steps an incremental cycle would take per call
	 * (a forced step per call measured ~40% of a create's CPU) */
	lua_gc(st->L, LUA_GCGEN, 0, 0);
	*(gl_tstate **)lua_getextraspace(st->L) = st;
	return st;
}

/* Load type `name` (NULL: the `all` meta-type) into a new state at
 * ts->states[i], declared within a multiple of the request budget. */
static int load_one(gl_types *ts, int i, const gl_conf *conf, const char *name,
		    gl_err *err)
{
	load_call la = { .conf = conf, .name = name, .t = &ts->types[i] };
	char chunk[300];
	gl_lreq rq = { 0 };
	gl_tstate *st;
	const char *m = la.c.err.msg;

	snprintf(chunk, sizeof chunk,
		 name ? "types/%s.lua" : "the library (type %s)",
		 name ? name : "all");
	st = ts->states[i] = state_new(ts, chunk);
	if (!st)
		return gl_fail(err, 500, NULL, "%s: cannot create a Lua state",
			       chunk);
	la.c.st = st;
	la.c.fn = p_load;
	st->loading = 1;
	if (run_limits(&la.c, &rq, ts->steps_limit * LOAD_STEPS_FACTOR,
		       ts->ns_limit * LOAD_TIME_FACTOR) < 0) {
		one_line(la.c.err.msg);
		/* the loader's messages name the file already */
		if ((la.named && !st->mem_refused) ||
		    !strncmp(m, chunk, strlen(chunk)) ||
		    !strncmp(m, "artifact type ", 14))
			return gl_fail(err, 500, NULL, "%s", m);
		return gl_fail(err, 500, NULL, "%s: %s while loading", chunk,
			       m);
	}
	if (!name)
		ts->types[i].is_all = 1;
	st->loading = 0;
	lua_gc(st->L, LUA_GCCOLLECT);
	st->mem_sealed = st->mem_used;
	return 0;
}

gl_types *gl_types_load(const gl_conf *conf, gl_err *err)
{
	gl_types *ts = calloc(1, sizeof *ts);
	char **names = NULL;
	int nnames = 0, rc = 0;

	if (!ts) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	ts->refs = 1;
	ts->mem_cap = (size_t)conf->lua_memory_limit;
	ts->steps_limit = conf->lua_instruction_limit;
	ts->ns_limit = conf->lua_time_limit * 1000000;
	ts->lua_path = strdup(conf->lua_path);
	/* enabled types, then custom modules: a.b.c names file c.lua */
	for (int i = 0; i < conf->enabled_artifact_types.n; i++)
		if (strcmp(conf->enabled_artifact_types.v[i], "all") != 0)
			add_name(&names, &nnames,
				 conf->enabled_artifact_types.v[i]);
	for (int i = 0; i < conf->custom_artifact_types_modules.n; i++) {
		const char *m = conf->custom_artifact_types_modules.v[i];
		const char *dot = strrchr(m, '.');
		add_name(&names, &nnames, dot ? dot + 1 : m);
	}
	ts->types = calloc((size_t)nnames + 1, sizeof *ts->types);
	ts->states = calloc((size_t)nnames + 1, sizeof *ts->states);
	if (!ts->types || !ts->states || !ts->lua_path) {
		rc = gl_fail(err, 500, NULL, "out of memory");
		goto out;
	}
	for (int i = 0; i <= nnames && rc == 0; i++) {
		rc = load_one(ts, i, conf, i < nnames ? names[i] : NULL, err);
		ts->ntypes = i + 1;
	}
out:
	for (int i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (rc < 0) {
		types_free(ts);
		return NULL;
	}
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

const gl_type *gl_types_find(const gl_types *ts, const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < ts->ntypes; i++)
		if (ts->types[i].name && !strcmp(ts->types[i].name, name))
			return &ts->types[i];
	return NULL;
}

int gl_types_count(const gl_types *t)
{
	return t->ntypes;
}
const gl_type *gl_types_at(const gl_types *t, int i)
{
	return &t->types[i];
}

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

/* [-0, +0, -] The value at idx as JSON (new reference); a value without a
 * JSON form is a server-side failure (NULL). */
static json_t *take_value(lua_State *L, tcall *c, int idx, const char *what)
{
	gl_err e;
	json_t *j = gl_ljson_to(L, &c->st->lj, idx, &e);

	if (!j)
		internal(c, "%s: %s", what, e.msg);
	return j;
}

/* [-0, +0, -] Results "v" or "nil, msg" at the top two slots: a data
 * error is a 400 with the library's message (NULL). */
static json_t *take_result(lua_State *L, tcall *c)
{
	if (lua_isnil(L, -2)) {
		gl_fail(&c->err, 400, NULL, "%s",
			lua_tostring(L, -1) ? lua_tostring(L, -1)
					    : "invalid value");
		return NULL;
	}
	return take_value(L, c, -2, "the coerced value");
}

/* Client JSON goes into Lua only within the conversion's depth. */
static int too_deep(tcall *c, const json_t *j, const char *what)
{
	if (gl_ljson_depth_ok(j))
		return 0;
	gl_fail(&c->err, 400, NULL, "%s%svalue nested deeper than %d levels",
		what ? what : "", what ? ": " : "", GL_LJSON_MAX_DEPTH);
	return 1;
}

typedef struct coerce_call {
	tcall c;
	const gl_type *t;
	const char *field;
	const json_t *in; /* coerce: a JSON value */
	const char *text; /* coerce_filter: query-string text */
	int element;      /* coerce_filter: to the element kind */
	json_t *out;
} coerce_call;

/* [-0, +0, e] runtime.coerce(T, field, value) */
static int p_coerce(lua_State *L, tcall *c)
{
	coerce_call *a = (coerce_call *)c;
	char what[512];

	snprintf(what, sizeof what, "Type: %s. Field: %s. Exception",
		 a->t->name, a->field);
	if (too_deep(c, a->in, what))
		return 0;
	push_rt(L, c->st, "coerce");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	lua_pushstring(L, a->field);
	gl_ljson_push(L, &c->st->lj, a->in);
	lua_call(L, 3, 2);
	a->out = take_result(L, c);
	return 0;
}

/* [-0, +0, e] runtime.coerce_filter(T, field, text, element) */
static int p_coerce_filter(lua_State *L, tcall *c)
{
	coerce_call *a = (coerce_call *)c;

	push_rt(L, c->st, "coerce_filter");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	lua_pushstring(L, a->field);
	lua_pushstring(L, a->text);
	lua_pushboolean(L, a->element);
	lua_call(L, 4, 2);
	a->out = take_result(L, c);
	return 0;
}

/* Run a coercion; its value into *out, or -1 with what failed. */
static int coerce_run(coerce_call *a, gl_lreq *rq, const char *what,
		      json_t **out, gl_err *err)
{
	int rc = run(&a->c, rq);

	if (finish(&a->c, rc, rq, what, err) < 0) {
		json_decref(a->out);
		return -1;
	}
	*out = a->out;
	return 0;
}

int gl_types_coerce(gl_types *ts, gl_lreq *rq, const gl_type *t,
		    const char *field, json_t *in, json_t **out, gl_err *err)
{
	coerce_call a = { .c = { .st = type_state(ts, t), .fn = p_coerce },
			  .t = t,
			  .field = field,
			  .in = in };
	char what[512];

	snprintf(what, sizeof what,
		 "Validation of field '%s' of artifact "
		 "type %s",
		 field, t->name);
	return coerce_run(&a, rq, what, out, err);
}

int gl_types_coerce_filter(gl_types *ts, gl_lreq *rq, const gl_type *t,
			   const char *field, const char *value, int element,
			   json_t **out, gl_err *err)
{
	coerce_call a = { .c = { .st = type_state(ts, t),
				 .fn = p_coerce_filter },
			  .t = t,
			  .field = field,
			  .text = value,
			  .element = element != 0 };
	char what[512];

	snprintf(what, sizeof what,
		 "Filter on field '%s' of artifact type "
		 "%s",
		 field, t->name);
	return coerce_run(&a, rq, what, out, err);
}

typedef struct vkey_call {
	tcall c;
	const char *version;
	int64_t key;         /* as runtime.version_key returns it */
	char *suffix, *meta; /* malloc'ed */
} vkey_call;

/* [-0, +0, e] runtime.version_key(version) */
static int p_vkey(lua_State *L, tcall *c)
{
	vkey_call *a = (vkey_call *)c;

	push_rt(L, c->st, "version_key");
	lua_pushstring(L, a->version);
	lua_call(L, 1, 3);
	if (!lua_isinteger(L, -3)) {
		gl_fail(&c->err, 400, NULL, "invalid version '%.200s'",
			a->version);
		return 0;
	}
	a->key = lua_tointeger(L, -3);
	a->suffix = strdup(lua_tostring(L, -2) ? lua_tostring(L, -2) : "");
	a->meta = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
	if (!a->suffix || !a->meta)
		luaL_error(L, "out of memory");
	return 0;
}

int gl_types_version_key(gl_types *ts, gl_lreq *rq, const char *version,
			 int64_t *prefix, char **suffix, char **meta,
			 gl_err *err)
{
	/* library code only: it runs in the `all` type's state */
	vkey_call a = { .c = { .st = ts->states[ts->ntypes - 1],
			       .fn = p_vkey },
			.version = version ? version : "" };
	int rc = run(&a.c, rq);

	if (finish(&a.c, rc, rq, "Version ordering", err) < 0) {
		free(a.suffix);
		free(a.meta);
		return -1;
	}
	/* the key is an unsigned bit pattern (major << 48 ...): flipping the
	 * sign bit makes signed comparison (SQL INTEGER) order it right */
	*prefix = (int64_t)((uint64_t)a.key ^ 0x8000000000000000ULL);
	*suffix = a.suffix;
	*meta = a.meta;
	return 0;
}

typedef struct schema_call {
	tcall c;
	const gl_type *t;
	json_t *out;
} schema_call;

/* [-0, +0, e] runtime.schema(T) */
static int p_schema(lua_State *L, tcall *c)
{
	schema_call *a = (schema_call *)c;

	push_rt(L, c->st, "schema");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	lua_call(L, 1, 1);
	a->out = take_value(L, c, -1, "the schema");
	return 0;
}

json_t *gl_types_schema(gl_types *ts, gl_lreq *rq, const gl_type *t,
			gl_err *err)
{
	schema_call a = { .c = { .st = type_state(ts, t), .fn = p_schema },
			  .t = t };
	char what[300];
	int rc = run(&a.c, rq);

	snprintf(what, sizeof what, "Schema of artifact type %s", t->name);
	if (finish(&a.c, rc, rq, what, err) < 0) {
		json_decref(a.out);
		return NULL;
	}
	return a.out;
}

typedef struct output_call {
	tcall c;
	const gl_type *t;
	const json_t *af;
	int format_all; /* format_all, not to_dict */
	json_t *out;
} output_call;

/* [-0, +0, -] after runtime.output's call: 1 (and the type's message
 * noted) if it returned nil, message, traceback */
static int output_failed(lua_State *L, tcall *c)
{
	const char *msg;

	if (!lua_isnil(L, -3))
		return 0;
	msg = lua_tostring(L, -1);
	if (!msg)
		msg = lua_tostring(L, -2);
	internal(c, "%s", msg ? msg : "?");
	return 1;
}

/* [-0, +0, e] to_dict / format_all: any failure is the type's
 * (runtime.output returns nil, message, traceback) */
static int p_output(lua_State *L, tcall *c)
{
	output_call *a = (output_call *)c;

	push_rt(L, c->st, a->format_all ? "format_all" : "output");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	gl_ljson_push(L, &c->st->lj, a->af);
	lua_call(L, 2, 3);
	if (output_failed(L, c))
		return 0;
	a->out = take_value(L, c, -3, "the artifact it returned");
	if (a->out && !json_is_object(a->out))
		internal(c, "it returned a %s, not an artifact (an object)",
			 json_is_array(a->out) ? "list" : "scalar");
	return 0;
}

typedef struct output_text_call {
	output_call o;
	const gl_member *m;
	int n;
	gl_sb *b;
} output_text_call;

/* [-0, +0, e] p_output, the result written as JSON text */
static int p_output_text(lua_State *L, tcall *c)
{
	output_text_call *a = (output_text_call *)c;
	size_t start = a->b->len;
	gl_err e;

	push_rt(L, c->st, a->o.format_all ? "format_all" : "output");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->o.t->ref);
	gl_ljson_push_members(L, &c->st->lj, a->m, a->n);
	lua_call(L, 2, 3);
	if (output_failed(L, c))
		return 0;
	if (gl_ljson_write(L, &c->st->lj, -3, a->b, &e) < 0) {
		internal(c, "the artifact it returned: %s", e.msg);
		return 0;
	}
	if (a->b->p[start] != '{') {
		internal(c, "it returned a %s, not an artifact (an object)",
			 a->b->p[start] == '[' ? "list" : "scalar");
		a->b->len = start;
		a->b->p[start] = '\0';
	}
	return 0;
}

int gl_types_output_text(gl_types *ts, gl_lreq *rq, const gl_type *t,
			 const gl_member *m, int n, int format_all, gl_sb *b,
			 gl_err *err)
{
	output_text_call a = { .o = { .c = { .st = type_state(ts, t),
					     .fn = p_output_text },
				      .t = t,
				      .format_all = format_all },
			       .m = m,
			       .n = n,
			       .b = b };
	size_t start = b->len;
	char what[300];
	int rc = run(&a.o.c, rq);

	snprintf(what, sizeof what, "%s of artifact type %s",
		 format_all ? "format_all" : "to_dict", t->name);
	if (finish(&a.o.c, rc, rq, what, err) < 0) {
		if (b->p) {
			b->len = start;
			b->p[start] = '\0';
		}
		return -1;
	}
	return 0;
}

json_t *gl_types_output(gl_types *ts, gl_lreq *rq, const gl_type *t,
			json_t *af, int format_all, gl_err *err)
{
	output_call a = { .c = { .st = type_state(ts, t), .fn = p_output },
			  .t = t,
			  .af = af,
			  .format_all = format_all };
	char what[300];
	int rc = run(&a.c, rq);

	json_decref(af);
	snprintf(what, sizeof what, "%s of artifact type %s",
		 format_all ? "format_all" : "to_dict", t->name);
	if (finish(&a.c, rc, rq, what, err) < 0) {
		json_decref(a.out);
		return NULL;
	}
	return a.out;
}

/* [-(2|3), +1, v] blob.read(offset, n) for pre_upload: bounded reads of
 * the temp file */
static int l_blob_read(lua_State *L)
{
	gl_tstate *st = state_of(L);
	int a = lua_istable(L, 1) ? 2 : 1; /* blob.read or blob:read */
	lua_Integer off = luaL_checkinteger(L, a);
	lua_Integer n = luaL_optinteger(L, a + 1, 65536);
	luaL_Buffer b;
	char *p;
	int fd;
	ssize_t got;

	if (!st->read_path)
		return luaL_error(L,
				  "blob.read is only valid during pre_upload");
	if (off < 0 || n < 0)
		return luaL_error(L,
				  "blob.read: offset and size must be >= 0");
	if (off > st->read_end || n > st->read_end - off)
		n = off >= st->read_end ? 0 : st->read_end - off;
	if (n > st->read_left)
		return luaL_error(L,
				  "blob.read: the hook may read at most "
				  "%I more bytes",
				  (lua_Integer)st->read_left);
	gl_lsafe_charge(L, 1 + n / 64);
	fd = open(st->read_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return luaL_error(L, "blob.read: %s", strerror(errno));
	p = luaL_buffinitsize(L, &b, (size_t)n);
	got = pread(fd, p, (size_t)n, (off_t)off);
	close(fd);
	if (got < 0)
		return luaL_error(L, "blob.read: %s", strerror(errno));
	st->read_left -= got;
	luaL_pushresultsize(&b, (size_t)got);
	return 1;
}

/* [-0, +0, -] The outcome of runtime.run_hook / run_select at the top
 * four slots: true, result | false, status, message, traceback. A 4xx is
 * the hook's refusal; any other status is a failure of the hook (server
 * side). 1 if the hook failed. */
static int take_hook_failure(lua_State *L, tcall *c)
{
	int status;

	if (lua_toboolean(L, -4))
		return 0;
	status = lua_isinteger(L, -3) ? (int)lua_tointeger(L, -3) : 500;
	if (status >= 400 && status <= 499) {
		gl_fail(&c->err, status, NULL, "%s",
			lua_tostring(L, -2) ? lua_tostring(L, -2) : "refused");
		return 1;
	}
	internal(c, "%s",
		 lua_tostring(L, -1)   ? lua_tostring(L, -1)
		 : lua_tostring(L, -2) ? lua_tostring(L, -2)
				       : "?");
	return 1;
}

typedef struct hook_call {
	tcall c;
	const gl_type *t;
	const char *hook; /* its name */
	const json_t *ctx, *af;
	const json_t *args; /* array of the extra arguments, or NULL */
	int want_af;        /* take the artifact the hook returns */
	json_t *out;
} hook_call;

/* [-0, +0, e] hook(ctx, af, args...) through runtime.run_hook */
static int p_hook(lua_State *L, tcall *c)
{
	hook_call *a = (hook_call *)c;
	size_t i, nargs = a->args ? json_array_size(a->args) : 0;
	json_t *v;

	if (too_deep(c, a->args, NULL))
		return 0;
	push_rt(L, c->st, "run_hook");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	lua_pushstring(L, a->hook);
	gl_ljson_push(L, &c->st->lj, a->ctx);
	gl_ljson_push(L, &c->st->lj, a->af);
	luaL_checkstack(L, (int)nargs + 4, "hook arguments");
	if (a->args)
		json_array_foreach(a->args, i, v)
			gl_ljson_push(L, &c->st->lj, v);
	if (c->st->read_path && nargs >= 3 && lua_istable(L, -1)) {
		/* pre_upload's blob gets its bounded reader */
		lua_pushstring(L, "read");
		lua_pushcfunction(L, l_blob_read);
		lua_rawset(L, -3);
	}
	lua_call(L, (int)nargs + 4, 4);
	if (take_hook_failure(L, c))
		return 0;
	if (a->want_af && lua_istable(L, -3))
		a->out = take_value(L, c, -3, "the artifact it returned");
	return 0;
}

int gl_types_hook(gl_types *ts, gl_lreq *rq, const gl_type *t, enum gl_hook h,
		  const json_t *ctx, const json_t *af, const json_t *args,
		  json_t **af_out, gl_err *err)
{
	hook_call a = { .c = { .st = type_state(ts, t), .fn = p_hook },
			.t = t,
			.hook = hook_names[h],
			.ctx = ctx,
			.af = af,
			.args = args,
			.want_af = af_out != NULL };
	char what[300];
	int rc;

	if (af_out)
		*af_out = NULL;
	if (!(t->hooks & (1u << h)))
		return 0;
	if (!ctx || !af)
		return gl_fail(err, 500, NULL,
			       "the arguments of hook %s of %s "
			       "could not be built",
			       hook_names[h], t->name);
	rc = run(&a.c, rq);
	snprintf(what, sizeof what, "Hook %s of artifact type %s",
		 hook_names[h], t->name);
	if (finish(&a.c, rc, rq, what, err) < 0) {
		json_decref(a.out);
		return -1;
	}
	if (af_out)
		*af_out = a.out;
	else
		json_decref(a.out);
	return 0;
}

int gl_types_hook_upload(gl_types *ts, gl_lreq *rq, const gl_type *t,
			 const json_t *ctx, const json_t *af,
			 const char *field, const char *key,
			 const json_t *blob, const char *path,
			 int64_t max_read, int64_t readable, gl_err *err)
{
	gl_tstate *st = type_state(ts, t);
	json_t *args;
	int rc;

	if (!(t->hooks & (1u << GL_HOOK_PRE_UPLOAD)))
		return 0;
	/* p_hook adds read() to the blob table while read_path is set */
	args = json_pack("[s, s?, O]", field, key, blob);
	if (!args)
		return gl_fail(err, 500, NULL,
			       "the arguments of hook pre_upload "
			       "of %s could not be built",
			       t->name);
	st->read_path = path;
	st->read_left = max_read;
	st->read_end = readable;
	rc = gl_types_hook(ts, rq, t, GL_HOOK_PRE_UPLOAD, ctx, af, args, NULL,
			   err);
	st->read_path = NULL;
	json_decref(args);
	return rc;
}

typedef struct select_call {
	tcall c;
	const gl_type *t;
	const char *field; /* the folder */
	const json_t *ctx, *af, *request;
	char *key; /* the key chosen (malloc'ed) or NULL */
} select_call;

/* [-0, +0, e] field.select_location through runtime.run_select */
static int p_select(lua_State *L, tcall *c)
{
	select_call *a = (select_call *)c;
	json_t *folder = json_object_get(a->af, a->field);

	push_rt(L, c->st, "run_select");
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ref);
	lua_pushstring(L, a->field);
	gl_ljson_push(L, &c->st->lj, a->ctx);
	gl_ljson_push(L, &c->st->lj, a->af);
	/* the folder's value: its blobs by key */
	if (folder) {
		gl_ljson_push(L, &c->st->lj, folder);
	} else {
		lua_newtable(L);
		lua_rawgeti(L, LUA_REGISTRYINDEX, c->st->lj.omt_ref);
		lua_setmetatable(L, -2);
	}
	gl_ljson_push(L, &c->st->lj, a->request);
	lua_call(L, 6, 4);
	if (take_hook_failure(L, c))
		return 0;
	if (lua_type(L, -3) == LUA_TSTRING) {
		a->key = strdup(lua_tostring(L, -3));
		if (!a->key)
			luaL_error(L, "out of memory");
	}
	return 0;
}

int gl_types_select_location(gl_types *ts, gl_lreq *rq, const gl_type *t,
			     const char *field, const json_t *ctx,
			     const json_t *af, const json_t *request,
			     char **key, gl_err *err)
{
	select_call a = { .c = { .st = type_state(ts, t), .fn = p_select },
			  .t = t,
			  .field = field,
			  .ctx = ctx,
			  .af = af,
			  .request = request };
	char what[512];
	int rc;

	*key = NULL;
	if (!ctx || !af || !request)
		return gl_fail(err, 500, NULL,
			       "the arguments of "
			       "select_location could not be built");
	rc = run(&a.c, rq);
	snprintf(what, sizeof what,
		 "select_location of field '%s' of "
		 "artifact type %s",
		 field, t->name);
	if (finish(&a.c, rc, rq, what, err) < 0) {
		free(a.key);
		return -1;
	}
	*key = a.key;
	return 0;
}
