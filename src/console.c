/* console.c - the operator console's state (see console.h and
 * docs/console.md); the front end that drives it is console_front.c.
 *
 * Two parts:
 *  - the console state: a trusted Lua state with the full standard
 *    library, JSON <-> Lua conversion on the type runtime's rules (integers
 *    stay integers, glare.null stands for JSON null, decoded arrays and
 *    objects are marked so they encode back the same, raw table access
 *    only), and the glare.* functions, each a thin call into the engine
 *    with the console's admin context;
 *  - waits: the engine calls that complete through the event loop
 *    (external locations, fetching an external blob) run the loop until
 *    done in direct mode, and yield the session's coroutine in server mode
 *    (admin.c resumes it), so a worker never nests its own event loop.
 *
 * C values that outlive a possible Lua error (engine results, downloads,
 * waits) live in userdata with __gc, so a raised error never leaks them.
 */
#include "console.h"
#include "admin.h"
#include "status.h"
#include "ljson.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <lauxlib.h>
#include <lualib.h>

#define PIECE (1 << 20)                    /* upload / copy unit */
#define READ_MAX ((lua_Integer)64 << 20)   /* glare.read default cap */
#define SERVER_MEM_CAP ((size_t)256 << 20) /* one attached session */
#define OUTPUT_CAP ((size_t)16 << 20)      /* captured output per run */
#define BOX_MT "glare.jsonbox"
#define DL_MT "glare.download"
#define WAIT_MT "glare.wait"

enum { W_LOCATION, W_READ };

/* A glare.* call waiting for the event loop. A userdata on the calling
 * thread's stack: it survives the yield and is collected with the thread. */
typedef struct con_wait {
	gl_console *c;
	int kind;
	int done;
	/* W_LOCATION */
	gl_err err;
	json_t *af;
	/* W_READ: an external blob or an S3 object into a file, or into
	 * mem (the engine's reader judges the bytes) */
	gl_download *dl;
	gl_download_read *rd;
	int fd;
	const char *path; /* a string on the same stack */
	int64_t got;
	int werrno;
	int failed; /* err holds why the read ended */
	char *mem;
	int64_t memcap;
} con_wait;

struct gl_console {
	lua_State *L;
	gl_engine *e;
	gl_ctx ctx;
	int server;
	size_t mem, mem_cap;
	gl_ljson lj;
	int render_ref;
	/* server mode: captured output */
	gl_sb out;
	int out_cut;
	void *user;
	lua_State *thread;
	con_wait *wait;
	int yielded;
	void (*wake)(void *arg);
	void *wake_arg;
};

volatile sig_atomic_t gl_console_interrupted;

/* Every console command is a request of its own for the Lua budget. */
static const gl_ctx *cmd_ctx(gl_console *c)
{
	gl_ctx_lua_reset(&c->ctx);
	return &c->ctx;
}

static gl_console *con(lua_State *L)
{
	return *(gl_console **)lua_getextraspace(L);
}

gl_console *gl_console_of(lua_State *L)
{
	return con(L);
}

int gl_console_set_project(gl_console *c, const char *p)
{
	char *dup = strdup(p);

	if (!dup)
		return -1;
	free(c->ctx.project_id);
	c->ctx.project_id = dup;
	return 0;
}
lua_State *gl_console_lua(gl_console *c)
{
	return c->L;
}
void gl_console_set_user(gl_console *c, void *user)
{
	c->user = user;
}
void *gl_console_user(gl_console *c)
{
	return c->user;
}

/* ---- memory ------------------------------------------------------------- */

/* Uncapped in direct mode; an attached session must not be able to take
 * the worker's memory, so growth past the cap fails (a Lua memory error
 * inside the run). */
static void *con_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	gl_console *c = ud;
	size_t old = ptr ? osize : 0;
	void *np;

	if (nsize == 0) {
		free(ptr);
		c->mem -= old;
		return NULL;
	}
	if (nsize > old && c->mem + (nsize - old) > c->mem_cap)
		return NULL;
	np = realloc(ptr, nsize);
	if (np)
		c->mem = c->mem - old + nsize;
	return np;
}

static int at_panic(lua_State *L)
{
	gl_error("console: unprotected Lua error: %s",
		 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
	abort();
	return 0;
}

/* ---- owned C values in userdata ----------------------------------------- */

static int box_gc(lua_State *L)
{
	json_t **b = lua_touserdata(L, 1);
	json_decref(*b);
	*b = NULL;
	return 0;
}

/* [-0, +1, m] A slot for a JSON value, released when collected. */
static json_t **new_box(lua_State *L)
{
	json_t **b = lua_newuserdatauv(L, sizeof *b, 0);
	*b = NULL;
	luaL_setmetatable(L, BOX_MT);
	return b;
}

static int dl_gc(lua_State *L)
{
	gl_download_free(lua_touserdata(L, 1));
	return 0;
}

static gl_download *new_dl(lua_State *L)
{
	gl_download *dl = lua_newuserdatauv(L, sizeof *dl, 0);
	memset(dl, 0, sizeof *dl);
	dl->fd = -1;
	luaL_setmetatable(L, DL_MT);
	return dl;
}

static int wait_gc(lua_State *L)
{
	con_wait *w = lua_touserdata(L, 1);

	/* a wait collected mid-flight must not be called back */
	gl_download_read_cancel(w->rd);
	w->rd = NULL;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	json_decref(w->af);
	w->af = NULL;
	return 0;
}

static con_wait *new_wait(lua_State *L, int kind)
{
	con_wait *w = lua_newuserdatauv(L, sizeof *w, 0);
	memset(w, 0, sizeof *w);
	w->c = con(L);
	w->kind = kind;
	w->fd = -1;
	luaL_setmetatable(L, WAIT_MT);
	return w;
}

/* [-0, +1, m] Argument idx as JSON, owned by a box left on the stack. */
static json_t *arg_json(lua_State *L, int idx)
{
	gl_console *c = con(L);
	gl_err err;
	json_t **b = new_box(L);

	*b = gl_ljson_to(L, &c->lj, idx, &err);
	if (!*b)
		luaL_argerror(L, idx, err.msg);
	return *b;
}

/* The engine's error as a Lua error: "409 Conflict: <message>", with no
 * position prefix, so the status leads (glare.try reads it back); the
 * traceback tells where. */
static int raise_err(lua_State *L, const gl_err *err)
{
	int st = err->status ? err->status : 500;

	lua_pushfstring(L, "%d %s: %s", st, gl_status_reason(st), err->msg);
	return lua_error(L);
}

/* Push an engine result (owned by box b) and return 1. */
static int push_result(lua_State *L, json_t **b)
{
	gl_ljson_push(L, &con(L)->lj, *b);
	return 1;
}

/* ---- glare.*: schemas and artifacts ------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* glare.types() -> sorted list of type names */
static int api_types(lua_State *L)
{
	gl_console *c = con(L);
	gl_err err = { 0 };
	json_t **out = new_box(L), *s;
	const char **names, *k;
	json_t *v;
	size_t n = 0;

	if (gl_art_schemas(c->e, cmd_ctx(c), NULL, out, &err) < 0)
		return raise_err(L, &err);
	s = json_object_get(*out, "schemas");
	names = lua_newuserdatauv(L, (json_object_size(s) + 1) * sizeof *names,
				  0);
	json_object_foreach(s, k, v)
		names[n++] = k;
	qsort(names, n, sizeof *names, cmp_str);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, names[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->lj.amt_ref);
	lua_setmetatable(L, -2);
	return 1;
}

/* glare.schema([type]) -> one type's JSON schema, or {type: schema} */
static int api_schema(lua_State *L)
{
	gl_console *c = con(L);
	const char *type = luaL_optstring(L, 1, NULL);
	gl_err err = { 0 };
	json_t **out = new_box(L), *s;

	if (gl_art_schemas(c->e, cmd_ctx(c), type, out, &err) < 0)
		return raise_err(L, &err);
	s = json_object_get(*out, "schemas");
	if (type && json_object_get(s, type))
		s = json_object_get(s, type);
	gl_ljson_push(L, &c->lj, s ? s : *out);
	return 1;
}

/* Add one query parameter (two strings on top) to the pairs table at t. */
static void add_param(lua_State *L, int t)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	lua_rawseti(L, t, n + 2);
	lua_rawseti(L, t, n + 1);
}

/* The list query: a query string ("name=x&sort=name:asc", as in the URL,
 * percent-encoded) or a table {name = "x", tags = {"a", "b"}, limit = 5}.
 * Returns a gl_kv array living in a userdata; the strings it points to are
 * kept in a table; both stay on the stack. */
typedef struct query_into {
	lua_State *L;
	int t;
} query_into;

/* [-0, +0, m] gl_query_parse's callback: one parameter into table t */
static int query_param(void *arg, char *k, char *v, gl_err *err)
{
	query_into *qi = arg;

	lua_pushstring(qi->L, k);
	lua_pushstring(qi->L, v);
	free(k);
	free(v);
	add_param(qi->L, qi->t);
	return 0;
}

static gl_kv *build_query(lua_State *L, int idx, int *nkv)
{
	int t, n;
	gl_kv *kv;

	lua_newtable(L);
	t = lua_gettop(L);
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *q = lua_tostring(L, idx);
		query_into qi = { L, t };
		gl_err err;

		if (gl_query_parse(*q == '?' ? q + 1 : q, query_param, &qi,
				   &err) < 0)
			luaL_error(L,
				   "malformed percent-encoding in the query "
				   "string");
	} else if (lua_type(L, idx) == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, idx)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				luaL_error(L, "query parameter names must be "
					      "strings");
			if (lua_type(L, -1) == LUA_TTABLE) {
				/* a repeated parameter: tags = {"a", "b"} */
				lua_Unsigned m = lua_rawlen(L, -1);
				for (lua_Unsigned i = 1; i <= m; i++) {
					lua_pushvalue(L, -2);
					lua_rawgeti(L, -2, (lua_Integer)i);
					luaL_tolstring(L, -1, NULL);
					lua_remove(L, -2);
					add_param(L, t);
				}
			} else {
				lua_pushvalue(L, -2);
				luaL_tolstring(L, -2, NULL);
				add_param(L, t);
			}
			lua_pop(L, 1);
		}
	} else if (!lua_isnoneornil(L, idx)) {
		luaL_typeerror(L, idx, "query string or table");
	}
	n = (int)(lua_rawlen(L, t) / 2);
	kv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *kv, 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, t, 2 * i + 1);
		kv[i].name = lua_tostring(L, -1);
		lua_pop(L, 1); /* still referenced by t */
		lua_rawgeti(L, t, 2 * i + 2);
		kv[i].value = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	*nkv = n;
	return kv;
}

/* glare.page(type, query) -> the list response {artifacts, total_count,
 * first, next, ...} */
static int api_page(lua_State *L)
{
	gl_console *c = con(L);
	const char *type = luaL_checkstring(L, 1);
	gl_err err = { 0 };
	json_t **out;
	gl_kv *kv;
	int n;

	lua_settop(L, 2); /* optional arguments in fixed slots */
	kv = build_query(L, 2, &n);
	out = new_box(L);
	if (gl_art_list(c->e, cmd_ctx(c), type, kv, n, out, &err) < 0)
		return raise_err(L, &err);
	return push_result(L, out);
}

/* glare.list(type, query) -> the artifacts of one page */
static int api_list(lua_State *L)
{
	api_page(L);
	lua_getfield(L, -1, "artifacts");
	return 1;
}

static int api_get(lua_State *L)
{
	gl_console *c = con(L);
	const char *type = luaL_checkstring(L, 1),
		   *id = luaL_checkstring(L, 2);
	gl_err err = { 0 };
	json_t **out = new_box(L);

	if (gl_art_show(c->e, cmd_ctx(c), type, id, out, &err) < 0)
		return raise_err(L, &err);
	return push_result(L, out);
}

/* glare.batch(fn, ...): fn(...) in one transaction (gl_meta_batch), its
 * results returned; an error in fn rolls all of it back and is raised
 * again. Direct mode only: a serving worker commits for its requests. */
static int api_batch(lua_State *L)
{
	gl_console *c = con(L);
	gl_err err = { 0 };

	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (c->server)
		return luaL_error(L, "glare.batch is for direct mode");
	if (gl_engine_batch(c->e, 1, &err) < 0)
		return raise_err(L, &err);
	if (lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0) != LUA_OK) {
		gl_engine_batch(c->e, -1, &err);
		return lua_error(L);
	}
	if (gl_engine_batch(c->e, 0, &err) < 0)
		return raise_err(L, &err);
	return lua_gettop(L);
}

static int api_create(lua_State *L)
{
	gl_console *c = con(L);
	const char *type = luaL_checkstring(L, 1);
	json_t *body, **out;
	gl_err err = { 0 };

	luaL_checktype(L, 2, LUA_TTABLE);
	body = arg_json(L, 2);
	if (!json_is_object(body))
		luaL_argerror(L, 2, "a table of field = value expected");
	out = new_box(L);
	if (gl_art_create(c->e, cmd_ctx(c), type, body, out, &err) < 0)
		return raise_err(L, &err);
	return push_result(L, out);
}

/* "/" + the field name escaped as a JSON pointer token (RFC 6901). */
static json_t *pointer(const char *name)
{
	size_t n = strlen(name);
	char *p = malloc(2 * n + 2), *q = p;
	json_t *s;

	if (!p)
		return NULL;
	*q++ = '/';
	for (; *name; name++) {
		if (*name == '~' || *name == '/') {
			*q++ = '~';
			*q++ = *name == '~' ? '0' : '1';
		} else {
			*q++ = *name;
		}
	}
	*q = '\0';
	s = gl_json_text(p);
	free(p);
	return s;
}

/* {field = value, ...} -> replace operations; a list is taken as the
 * JSON patch itself. */
static json_t *to_patch(const json_t *ch)
{
	json_t *patch, *v;
	const char *k;

	if (json_is_array(ch))
		return json_incref((json_t *)ch);
	patch = json_array();
	json_object_foreach((json_t *)ch, k, v)
		json_array_append_new(patch,
				      json_pack("{s:s, s:o, s:O}", "op",
						"replace", "path", pointer(k),
						"value", v));
	return patch;
}

static int do_update(lua_State *L, const char *type, const char *id,
		     const json_t *patch)
{
	gl_console *c = con(L);
	gl_err err = { 0 };
	json_t **out = new_box(L);

	if (gl_art_update(c->e, cmd_ctx(c), type, id, patch, out, &err) < 0)
		return raise_err(L, &err);
	return push_result(L, out);
}

/* glare.update(type, id, {field = value} | {{op=..., path=..., ...}}) */
static int api_update(lua_State *L)
{
	const char *type = luaL_checkstring(L, 1),
		   *id = luaL_checkstring(L, 2);
	json_t *ch, **patch;

	luaL_checktype(L, 3, LUA_TTABLE);
	ch = arg_json(L, 3);
	patch = new_box(L);
	*patch = to_patch(ch);
	return do_update(L, type, id, *patch);
}

/* activate / deactivate / reactivate / publish: one replace operation,
 * path and value in the upvalues. */
static int api_transition(lua_State *L)
{
	const char *type = luaL_checkstring(L, 1),
		   *id = luaL_checkstring(L, 2);
	json_t **patch = new_box(L);

	*patch = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path",
			   lua_tostring(L, lua_upvalueindex(1)), "value",
			   lua_tostring(L, lua_upvalueindex(2)));
	return do_update(L, type, id, *patch);
}

static int api_delete(lua_State *L)
{
	gl_console *c = con(L);
	const char *type = luaL_checkstring(L, 1),
		   *id = luaL_checkstring(L, 2);
	gl_err err = { 0 };

	if (gl_art_delete(c->e, cmd_ctx(c), type, id, &err) < 0)
		return raise_err(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- glare.*: blobs ----------------------------------------------------- */

typedef struct blob_ref {
	const char *type, *id, *field, *key;
	int has_key;
} blob_ref;

/* (type, id, "field" | "field/key") from arguments first.. first+2, the
 * blob path of the HTTP API: the key is everything after the first '/'. */
static void check_blob_ref(lua_State *L, int first, blob_ref *r)
{
	const char *spec, *slash;

	r->type = luaL_checkstring(L, first);
	r->id = luaL_checkstring(L, first + 1);
	spec = luaL_checkstring(L, first + 2);
	slash = strchr(spec, '/');
	r->field = spec;
	r->key = NULL;
	r->has_key = 0;
	if (slash) {
		/* the field name lives on the stack from here on */
		r->field = lua_pushlstring(L, spec, (size_t)(slash - spec));
		if (slash[1]) {
			r->key = slash + 1;
			r->has_key = 1;
		}
	}
}

static int stop_requested(gl_console *c)
{
	return !c->server && gl_console_interrupted;
}

/* [-0, +1, m] Start a download the way GET /artifacts/.../field does. */
static gl_download *start_download(lua_State *L, const blob_ref *r,
				   gl_err *err)
{
	gl_console *c = con(L);
	gl_download *dl;
	gl_request_info ri;
	json_t **hdrs = new_box(L);
	const char *path;

	path = lua_pushfstring(L, "/artifacts/%s/%s/%s%s%s", r->type, r->id,
			       r->field, r->has_key ? "/" : "",
			       r->has_key ? r->key : "");
	*hdrs = json_object();
	ri.method = "GET";
	ri.path = path;
	ri.remote_addr = "console";
	ri.headers = *hdrs;
	dl = new_dl(L);
	if (gl_download_open(c->e, cmd_ctx(c), r->type, r->id, r->field,
			     r->key, r->has_key, &ri, dl, err) < 0)
		return NULL;
	return dl;
}

/* Copy a local-file or database-store blob into fd, or into mem. 0, or
 * -1 + err. */
static int copy_blob(gl_console *c, gl_download *dl, int fd, char *mem,
		     char *buf, gl_err *err)
{
	int64_t off = 0;

	while (dl->size < 0 || off < dl->size) {
		int64_t want = PIECE, n;

		if (stop_requested(c))
			return gl_fail(err, 500, NULL, "interrupted!");
		if (dl->size >= 0 && dl->size - off < want)
			want = dl->size - off;
		if (dl->kind == GL_DL_FILE) {
			n = read(dl->fd, buf, (size_t)want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return gl_fail(err, 500, NULL,
					       "cannot read the "
					       "blob: %s",
					       strerror(errno));
		} else {
			n = gl_download_read_data(c->e, dl->location, off, buf,
						  want, err);
			if (n < 0)
				return -1;
		}
		if (n == 0)
			break;
		if (mem)
			memcpy(mem + off, buf, (size_t)n);
		else if (gl_write_all(fd, buf, (size_t)n) < 0)
			return gl_fail(err, 500, NULL, "write: %s",
				       strerror(errno));
		off += n;
	}
	if (dl->size >= 0 && off != dl->size)
		return gl_fail(err, 500, NULL,
			       "the blob ended after %lld of "
			       "%lld bytes",
			       (long long)off, (long long)dl->size);
	return 0;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v && *v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

/* {path, size, content_type, md5, sha1, sha256[, url, external]} */
static void push_dl_info(lua_State *L, const gl_download *dl, const char *path,
			 int64_t size)
{
	gl_console *c = con(L);
	int ext = dl->kind == GL_DL_REDIRECT || dl->kind == GL_DL_PROXY;

	lua_createtable(L, 0, 8);
	set_str(L, "path", path);
	lua_pushinteger(L, size);
	lua_setfield(L, -2, "size");
	set_str(L, "content_type", dl->content_type);
	set_str(L, "md5", dl->md5);
	set_str(L, "sha1", dl->sha1);
	set_str(L, "sha256", dl->sha256);
	if (ext)
		set_str(L, "url", dl->url);
	lua_pushboolean(L, ext);
	lua_setfield(L, -2, "external");
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->lj.omt_ref);
	lua_setmetatable(L, -2);
}

/* ---- waits -------------------------------------------------------------- */

static void wake(con_wait *w)
{
	gl_console *c = w->c;

	w->done = 1;
	/* only a yielded thread needs waking; a result that arrives before
	 * the call returns is picked up right there */
	if (c->server && c->wait == w && c->yielded && c->wake)
		c->wake(c->wake_arg);
}

static void wait_cancel(con_wait *w)
{
	if (w->kind == W_LOCATION && !w->done)
		gl_location_cancel(w->c->e, w);
	if (w->kind == W_READ) {
		gl_download_read_cancel(w->rd);
		w->rd = NULL;
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		if (w->path)
			unlink(w->path);
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {}

/* Wait for w, then finish through k (also when the result is already
 * there). Direct mode runs the event loop here, waking every 100 ms to
 * notice Ctrl-C; server mode yields to admin.c, which resumes the thread
 * once wake() fires, and Lua then calls k. */
static int await(lua_State *L, con_wait *w, lua_KFunction k)
{
	gl_console *c = con(L);

	c->wait = w;
	if (w->done)
		return k(L, LUA_OK, (lua_KContext)w);
	if (!c->server) {
		struct event_base *base = gl_engine_base(c->e);
		struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb,
					       NULL);
		struct timeval tv = { 0, 100000 };

		if (tick)
			event_add(tick, &tv);
		while (!w->done && !gl_console_interrupted)
			event_base_loop(base, EVLOOP_ONCE);
		if (tick)
			event_free(tick);
		if (!w->done) {
			wait_cancel(w);
			c->wait = NULL;
			return luaL_error(L, "interrupted!");
		}
		return k(L, LUA_OK, (lua_KContext)w);
	}
	if (L != c->thread || !lua_isyieldable(L)) {
		wait_cancel(w);
		c->wait = NULL;
		return luaL_error(L,
				  "this call waits for the server's event "
				  "loop: in attach mode it cannot run inside a "
				  "coroutine or a callback from C (sort, "
				  "metamethods)");
	}
	c->yielded = 1;
	return lua_yieldk(L, 0, (lua_KContext)w, k);
}

static con_wait *wait_take(lua_State *L, lua_KContext ctx)
{
	gl_console *c = con(L);
	c->wait = NULL;
	c->yielded = 0;
	return (con_wait *)ctx;
}

static void loc_done(void *arg, json_t *af, const gl_err *err)
{
	con_wait *w = arg;

	if (af)
		w->af = json_incref(af);
	else
		w->err = *err;
	wake(w);
}

static int loc_finish(lua_State *L, int status, lua_KContext ctx)
{
	con_wait *w = wait_take(L, ctx);

	if (!w->af)
		return raise_err(L, &w->err);
	gl_ljson_push(L, &con(L)->lj, w->af);
	return 1;
}

static void upload_resumed(void *arg)
{
	*(int *)arg = 1;
}

/* The store asked to pause the upload (S3 parts behind): run the event
 * loop until it takes more. Direct mode only: attached, the server's own
 * loop cannot be run from inside one of its callbacks. */
static int wait_resume(gl_console *c, gl_upload *u)
{
	struct event_base *base = gl_engine_base(c->e);
	int resumed = 0;

	if (c->server)
		return -1;
	gl_upload_on_resume(u, upload_resumed, &resumed);
	while (!resumed && !gl_console_interrupted)
		event_base_loop(base, EVLOOP_ONCE);
	gl_upload_on_resume(u, NULL, NULL);
	return resumed ? 0 : -1;
}

/* glare.upload(type, id, "field[/key]", path [, content_type | {content_type}])
 * -> the artifact. The file is streamed in 1 MiB pieces. */
static int api_upload(lua_State *L)
{
	gl_console *c = con(L);
	blob_ref r;
	const char *path, *ct = "application/octet-stream";
	gl_err err = { 0 };
	gl_upload *u;
	struct stat st;
	char *buf;
	int fd, rc;
	con_wait *w;

	lua_settop(L, 5); /* optional arguments in fixed slots */
	check_blob_ref(L, 1, &r);
	path = luaL_checkstring(L, 4);
	if (lua_type(L, 5) == LUA_TSTRING) {
		ct = lua_tostring(L, 5);
	} else if (lua_type(L, 5) == LUA_TTABLE) {
		if (lua_getfield(L, 5, "content_type") == LUA_TSTRING)
			ct = lua_tostring(L, -1);
	}
	buf = lua_newuserdatauv(L, PIECE, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return luaL_error(L, "cannot open %s: %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return luaL_error(L, "%s is not a regular file", path);
	}
	u = gl_upload_begin(c->e, cmd_ctx(c), r.type, r.id, r.field, r.key,
			    r.has_key, ct, (int64_t)st.st_size, &err);
	if (!u) {
		close(fd);
		return raise_err(L, &err);
	}
	for (;;) {
		ssize_t n = read(fd, buf, PIECE);
		if (stop_requested(c) || (n < 0 && errno != EINTR)) {
			int e = errno;
			gl_upload_abort(u);
			close(fd);
			if (stop_requested(c))
				return luaL_error(L, "interrupted!");
			return luaL_error(L, "cannot read %s: %s", path,
					  strerror(e));
		}
		if (n < 0)
			continue;
		if (n == 0)
			break;
		rc = gl_upload_write(u, buf, (size_t)n, &err);
		if (rc < 0) {
			gl_upload_abort(u);
			close(fd);
			return raise_err(L, &err);
		}
		if (rc > 0 && wait_resume(c, u) < 0) {
			gl_upload_abort(u);
			close(fd);
			return luaL_error(L,
					  c->server
						  ? "this store takes uploads "
						    "asynchronously: upload in direct "
						    "mode (without --attach)"
						  : "interrupted!");
		}
	}
	close(fd);
	/* the end may be asynchronous (S3): wait like add_location */
	w = new_wait(L, W_LOCATION);
	if (gl_upload_finish(u, loc_done, w, &err) < 0)
		return raise_err(L, &err);
	return await(L, w, loc_finish);
}

/* glare.add_location(type, id, "field[/key]", url | {url=, md5=, sha1=,
 * sha256=, location_type=}) -> the artifact, once the data was fetched and
 * verified (or trusted). */
static int api_add_location(lua_State *L)
{
	gl_console *c = con(L);
	blob_ref r;
	json_t *body;
	con_wait *w;
	gl_err err = { 0 };

	lua_settop(L, 4); /* optional arguments in fixed slots */
	check_blob_ref(L, 1, &r);
	if (lua_type(L, 4) == LUA_TSTRING) {
		json_t **b = new_box(L);
		*b = json_pack("{s:s}", "url", lua_tostring(L, 4));
		if (!*b)
			luaL_argerror(L, 4, "the URL is not valid UTF-8");
		body = *b;
	} else {
		luaL_checktype(L, 4, LUA_TTABLE);
		body = arg_json(L, 4);
	}
	w = new_wait(L, W_LOCATION);
	if (gl_location_add(c->e, cmd_ctx(c), r.type, r.id, r.field, r.key,
			    r.has_key, body, loc_done, w, &err) < 0)
		return raise_err(L, &err);
	return await(L, w, loc_finish);
}

static int read_data(void *arg, const char *d, size_t n)
{
	con_wait *w = arg;

	if (w->mem) {
		if (w->got + (int64_t)n > w->memcap) {
			w->werrno = EFBIG;
			return -1;
		}
		memcpy(w->mem + w->got, d, n);
	} else if (gl_write_all(w->fd, d, n) < 0) {
		w->werrno = errno;
		return -1;
	}
	w->got += (int64_t)n;
	return 0;
}

static void read_done(void *arg, const gl_err *err)
{
	con_wait *w = arg;

	w->rd = NULL;
	w->failed = err != NULL;
	if (err)
		w->err = *err;
	wake(w);
}

/* The reader's errors as the console said them: an S3 store's plainly, a
 * fetch's (502 for a blob found changed and flagged) with its status. */
static int read_error(lua_State *L, const gl_download *dl, const gl_err *err)
{
	if (dl->kind == GL_DL_S3)
		return luaL_error(L, "%s", err->msg);
	return raise_err(L, err);
}

static int read_finish(lua_State *L, int status, lua_KContext ctx)
{
	con_wait *w = wait_take(L, ctx);
	gl_download *dl = w->dl;

	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->werrno || w->failed) {
		if (w->path)
			unlink(w->path);
		if (w->werrno)
			return luaL_error(L, "cannot write %s: %s",
					  w->path ? w->path : "into memory",
					  strerror(w->werrno));
		return read_error(L, dl, &w->err);
	}
	if (w->mem) {
		lua_pushlstring(L, w->mem, (size_t)w->got);
		return 1;
	}
	push_dl_info(L, dl, w->path, w->got);
	return 1;
}

/* An external blob (fetched) or an S3 object into the file at path, or
 * into mem (memcap bytes) when path is NULL: the engine's reader fetches
 * and judges, the bytes come here. */
static int read_to(lua_State *L, gl_download *dl, const char *path, char *mem,
		   int64_t memcap)
{
	gl_console *c = con(L);
	gl_err err = { 0 };
	con_wait *w;

	w = new_wait(L, W_READ);
	w->dl = dl;
	w->path = path;
	w->mem = mem;
	w->memcap = memcap;
	if (path) {
		w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0644);
		if (w->fd < 0)
			return luaL_error(L, "cannot create %s: %s", path,
					  strerror(errno));
	}
	w->rd = gl_download_read_start(c->e, dl, 0, -1, read_data, read_done,
				       w, &err);
	if (!w->rd) {
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		if (path)
			unlink(path);
		return read_error(L, dl, &err);
	}
	return await(L, w, read_finish);
}

/* glare.download(type, id, "field[/key]", path [, {fetch = true}]) ->
 * {path, size, sha256, ...}. External blobs: {url, external = true}
 * without writing, unless fetch is set (then fetched and verified). */
static int api_download(lua_State *L)
{
	gl_console *c = con(L);
	blob_ref r;
	const char *path;
	gl_download *dl;
	gl_err err = { 0 };
	char *buf;
	int fetch = 0, fd;

	lua_settop(L, 5); /* optional arguments in fixed slots */
	check_blob_ref(L, 1, &r);
	path = luaL_checkstring(L, 4);
	if (lua_type(L, 5) == LUA_TTABLE) {
		lua_getfield(L, 5, "fetch");
		fetch = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	dl = start_download(L, &r, &err);
	if (!dl)
		return raise_err(L, &err);
	if (dl->kind == GL_DL_REDIRECT || dl->kind == GL_DL_PROXY) {
		if (!fetch) {
			push_dl_info(L, dl, NULL, dl->size);
			return 1;
		}
		return read_to(L, dl, path, NULL, 0);
	}
	if (dl->kind == GL_DL_S3)
		return read_to(L, dl, path, NULL, 0);
	buf = lua_newuserdatauv(L, PIECE, 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return luaL_error(L, "cannot create %s: %s", path,
				  strerror(errno));
	if (copy_blob(c, dl, fd, NULL, buf, &err) < 0) {
		close(fd);
		unlink(path);
		return luaL_error(L, "%s", err.msg);
	}
	if (close(fd) < 0) {
		unlink(path);
		return luaL_error(L, "cannot write %s: %s", path,
				  strerror(errno));
	}
	push_dl_info(L, dl, path, dl->size);
	return 1;
}

/* glare.read(type, id, "field[/key]" [, max_bytes]) -> the bytes */
static int api_read(lua_State *L)
{
	gl_console *c = con(L);
	lua_Integer max = luaL_optinteger(L, 4, READ_MAX);
	blob_ref r;
	gl_download *dl;
	gl_err err = { 0 };
	char *buf, *mem;

	lua_settop(L, 4); /* optional arguments in fixed slots */
	check_blob_ref(L, 1, &r);
	dl = start_download(L, &r, &err);
	if (!dl)
		return raise_err(L, &err);
	if (dl->kind == GL_DL_REDIRECT || dl->kind == GL_DL_PROXY)
		return luaL_error(L,
				  "the blob is external (%s): use "
				  "glare.download(..., {fetch = true})",
				  dl->url);
	if (dl->size < 0 || dl->size > max)
		return luaL_error(L,
				  "the blob has %lld bytes, more than %lld "
				  "(pass a larger max_bytes or use glare.download)",
				  (long long)dl->size, (long long)max);
	mem = lua_newuserdatauv(L, (size_t)dl->size + 1, 0);
	if (dl->kind == GL_DL_S3)
		return read_to(L, dl, NULL, mem, dl->size);
	buf = lua_newuserdatauv(L, PIECE, 0);
	if (copy_blob(c, dl, -1, mem, buf, &err) < 0)
		return luaL_error(L, "%s", err.msg);
	lua_pushlstring(L, mem, (size_t)dl->size);
	return 1;
}

/* glare.delete_blob(type, id, "field[/key]") -> the artifact (external
 * blobs only, as DELETE on the blob URL) */
static int api_delete_blob(lua_State *L)
{
	gl_console *c = con(L);
	blob_ref r;
	gl_err err = { 0 };
	json_t **out;

	lua_settop(L, 3); /* optional arguments in fixed slots */
	check_blob_ref(L, 1, &r);
	out = new_box(L);
	if (gl_location_delete_blob(c->e, cmd_ctx(c), r.type, r.id, r.field,
				    r.key, r.has_key, out, &err) < 0)
		return raise_err(L, &err);
	return push_result(L, out);
}

/* glare.verify([limit]) -> {checked = n, changed = m} */
static int api_verify(lua_State *L)
{
	gl_console *c = con(L);
	lua_Integer limit = luaL_optinteger(L, 1, 1000);
	gl_err err = { 0 };
	int changed = 0, n;

	if (c->server)
		return luaL_error(L,
				  "glare.verify fetches every external blob "
				  "and would block the server: run it from a "
				  "direct console (without --attach) or with "
				  "`glared verify`");
	luaL_argcheck(L, limit > 0 && limit <= 1000000, 1, "out of range");
	n = gl_download_verify_external(c->e, (int)limit, 0, &changed, &err);
	if (n < 0)
		return raise_err(L, &err);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "checked");
	lua_pushinteger(L, changed);
	lua_setfield(L, -2, "changed");
	return 1;
}

/* ---- glare.*: quotas and administration --------------------------------- */

/* glare.quotas() -> {quotas = [...], global_quotas = {...}} (GET /quotas);
 * glare.quotas(project) -> {quota_name = value} in effect for project */
static int api_quotas(lua_State *L)
{
	gl_console *c = con(L);
	const char *project = luaL_optstring(L, 1, NULL);
	gl_err err = { 0 };
	json_t **out = new_box(L), *list, *q;
	size_t i;

	if (!project) {
		if (gl_quota_list(c->e, cmd_ctx(c), out, &err) < 0)
			return raise_err(L, &err);
		return push_result(L, out);
	}
	if (gl_quota_project(c->e, cmd_ctx(c), project, out, &err) < 0)
		return raise_err(L, &err);
	list = json_object_get(json_array_get(*out, 0), "project_quotas");
	lua_newtable(L);
	json_array_foreach(list, i, q) {
		const char *name = json_string_value(
			json_object_get(q, "quota_name"));
		if (!name)
			continue;
		gl_ljson_push(L, &c->lj, json_object_get(q, "quota_value"));
		lua_setfield(L, -2, name);
	}
	return 1;
}

/* glare.set_quotas(body) with body as PUT /quotas, or
 * glare.set_quotas(project, {quota_name = value}): replaces that project's
 * quotas. */
static int api_set_quotas(lua_State *L)
{
	gl_console *c = con(L);
	gl_err err = { 0 };
	json_t *body;

	if (lua_type(L, 1) == LUA_TSTRING) {
		json_t **b, *map, *list, *v;
		const char *k;
		luaL_checktype(L, 2, LUA_TTABLE);
		map = arg_json(L, 2);
		if (!json_is_object(map) &&
		    !(json_is_array(map) && !json_array_size(map)))
			luaL_argerror(L, 2,
				      "a table of quota_name = value "
				      "expected");
		b = new_box(L);
		list = json_array();
		*b = json_pack("[{s:s, s:o}]", "project_id",
			       lua_tostring(L, 1), "project_quotas", list);
		if (!*b)
			luaL_argerror(L, 1,
				      "the project id is not valid UTF-8");
		json_object_foreach(map, k, v)
			json_array_append_new(list,
					      json_pack("{s:s, s:O}",
							"quota_name", k,
							"quota_value", v));
		body = *b;
	} else {
		luaL_checktype(L, 1, LUA_TTABLE);
		body = arg_json(L, 1);
	}
	if (gl_quota_set(c->e, cmd_ctx(c), body, &err) < 0)
		return raise_err(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* glare.reload() -> true: load the type files again and swap them in. */
static int api_reload(lua_State *L)
{
	gl_err err = { 0 };

	if (gl_engine_reload_types(con(L)->e, &err) < 0)
		return raise_err(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* glare.scrub([min_age_s [, batch]]) -> number of artifacts purged */
static int api_scrub(lua_State *L)
{
	gl_console *c = con(L);
	const gl_conf *conf = gl_engine_conf(c->e);
	lua_Integer age = luaL_optinteger(L, 1, conf->scrub_time);
	lua_Integer batch = luaL_optinteger(L, 2, conf->scrub_pool_size);
	gl_err err = { 0 };
	lua_Integer total = 0;
	int n;

	luaL_argcheck(L, age >= 0 && age <= INT32_MAX, 1, "out of range");
	luaL_argcheck(L, batch > 0 && batch <= INT32_MAX, 2, "out of range");
	while ((n = gl_art_scrub(c->e, (int)age, (int)batch, &err)) > 0)
		total += n;
	if (n < 0)
		return raise_err(L, &err);
	lua_pushinteger(L, total);
	return 1;
}

/* ---- glare.*: JSON helpers ---------------------------------------------- */

/* glare.json(value [, pretty]) -> JSON text */
static int api_json(lua_State *L)
{
	size_t flags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(17);
	json_t *j;
	char *s;

	if (lua_toboolean(L, 2))
		flags |= JSON_INDENT(2) | JSON_SORT_KEYS;
	j = arg_json(L, 1);
	s = json_dumps(j, flags);
	if (!s)
		return luaL_error(L, "out of memory");
	lua_pushstring(L, s);
	free(s);
	return 1;
}

/* glare.decode(text) -> value (objects and arrays marked) */
static int api_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	json_error_t je;
	json_t **b = new_box(L);

	*b = json_loadb(s, n, JSON_DECODE_ANY, &je);
	if (!*b)
		return luaL_error(L, "invalid JSON at line %d column %d: %s",
				  je.line, je.column, je.text);
	return push_result(L, b);
}

static int mark(lua_State *L, int ref)
{
	if (lua_isnoneornil(L, 1))
		lua_newtable(L);
	else
		luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_setmetatable(L, 1);
	return 1;
}

static int api_array(lua_State *L)
{
	return mark(L, con(L)->lj.amt_ref);
}
static int api_object(lua_State *L)
{
	return mark(L, con(L)->lj.omt_ref);
}

/* ---- formatting and output ---------------------------------------------- */

/* [-0, +1, e] One value as the REPL shows it. */
static void format_one(gl_console *c, lua_State *L, int idx)
{
	gl_err err;
	json_t *j;
	char *s;

	if (lua_type(L, idx) == LUA_TSTRING) {
		lua_pushvalue(L, idx);
		return;
	}
	if (lua_type(L, idx) != LUA_TTABLE) {
		luaL_tolstring(L, idx, NULL);
		return;
	}
	/* an object with its own __tostring speaks for itself */
	if (!gl_ljson_is_null(L, &c->lj, idx) &&
	    !gl_ljson_marked(L, &c->lj, idx) &&
	    luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
		lua_pop(L, 1);
		luaL_tolstring(L, idx, NULL);
		return;
	}
	j = gl_ljson_to(L, &c->lj, idx, &err);
	if (j) {
		s = json_dumps(j, JSON_ENCODE_ANY | JSON_INDENT(2) |
					  JSON_SORT_KEYS |
					  JSON_REAL_PRECISION(14));
		json_decref(j);
		if (!s)
			luaL_error(L, "out of memory");
		lua_pushstring(L, s); /* may raise: s leaks only then */
		free(s);
		return;
	}
	/* not JSON (functions, mixed keys, cycles): the Lua-like rendering */
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->render_ref);
	lua_pushvalue(L, idx);
	lua_call(L, 1, 1);
}

int gl_console_format_values(lua_State *L)
{
	gl_console *c = con(L);
	int n = lua_gettop(L);
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		format_one(c, L, i);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 1;
}

static void out_add(gl_console *c, const char *s, size_t n)
{
	if (c->out_cut)
		return;
	if (c->out.len + n > OUTPUT_CAP) {
		static const char cut[] = "\n[output truncated]\n";
		n = OUTPUT_CAP - c->out.len;
		c->out_cut = 1;
		out_add(c, s, n);
		c->out_cut = 0;
		out_add(c, cut, sizeof cut - 1);
		c->out_cut = 1;
		return;
	}
	if (gl_sb_try_addn(&c->out, s, n) < 0)
		c->out_cut = 1;
}

const char *gl_console_output(gl_console *c, size_t *len)
{
	*len = c->out.len;
	return c->out.p ? c->out.p : "";
}

void gl_console_output_reset(gl_console *c)
{
	c->out_cut = 0;
	if (c->out.cap > (1 << 20))
		gl_sb_free(&c->out);
	else
		gl_sb_reset(&c->out);
}

/* Server mode print: the standard print, into the reply. */
static int con_print(lua_State *L)
{
	gl_console *c = con(L);
	int n = lua_gettop(L);

	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			out_add(c, "\t", 1);
		out_add(c, s, len);
		lua_pop(L, 1);
	}
	out_add(c, "\n", 1);
	return 0;
}

/* Server mode io.write (strings and numbers, as the standard one). */
static int con_write(lua_State *L)
{
	gl_console *c = con(L);
	int n = lua_gettop(L);

	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_checklstring(L, i, &len);
		out_add(c, s, len);
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int con_unavailable(lua_State *L)
{
	return luaL_error(L,
			  "%s is not available in attach mode (it would "
			  "act on the server process)",
			  lua_tostring(L, lua_upvalueindex(1)));
}

/* ---- the state ---------------------------------------------------------- */

/* The Lua half of glare.*: helpers that are plain Lua over the C calls,
 * and the renderer for values JSON cannot show. Trusted code, loaded once
 * per state. */
/* clang-format off */
static const char prelude[] =
"local glare, render_null = ...\n"
"local pack, unpack = table.pack, table.unpack\n"
"\n"
"function glare.try(fn, ...)\n"
"  local r = pack(pcall(fn, ...))\n"
"  if r[1] then return unpack(r, 2, r.n) end\n"
"  local msg = r[2]\n"
"  local status = type(msg) == 'string' and\n"
"    tonumber(msg:match('^(%d%d%d) ') or msg:match('^[^\\n]-:%d+: (%d%d%d) '))\n"
"  return nil, msg, status\n"
"end\n"
"\n"
"function glare.all(type_name, query)\n"
"  local out = glare.array()\n"
"  local q = query\n"
"  while true do\n"
"    local page = glare.page(type_name, q)\n"
"    for _, a in ipairs(page.artifacts) do out[#out + 1] = a end\n"
"    if type(page.next) ~= 'string' or #page.artifacts == 0 then\n"
"      return out\n"
"    end\n"
"    q = page.next:match('%?(.*)$') or ''\n"
"  end\n"
"end\n"
"\n"
"function glare.pp(...)\n"
"  print(glare.format(...))\n"
"end\n"
"\n"
"local function keyorder(a, b)\n"
"  local ta, tb = type(a), type(b)\n"
"  if ta ~= tb then return ta < tb end\n"
"  if ta == 'number' or ta == 'string' then return a < b end\n"
"  return tostring(a) < tostring(b)\n"
"end\n"
"\n"
"local function render(v, indent, seen)\n"
"  if type(v) == 'string' then return string.format('%q', v) end\n"
"  if type(v) ~= 'table' or rawequal(v, glare.null) then\n"
"    return tostring(v)\n"
"  end\n"
"  if seen[v] then return '<cycle>' end\n"
"  local keys = {}\n"
"  for k in next, v do keys[#keys + 1] = k end\n"
"  if #keys == 0 then return '{}' end\n"
"  table.sort(keys, keyorder)\n"
"  seen[v] = true\n"
"  local pad, n, parts = string.rep('  ', indent + 1), rawlen(v), {}\n"
"  for _, k in ipairs(keys) do\n"
"    local ks\n"
"    if math.type(k) == 'integer' and k >= 1 and k <= n then ks = ''\n"
"    elseif type(k) == 'string' and k:match('^[%a_][%w_]*$') then\n"
"      ks = k .. ' = '\n"
"    else ks = '[' .. render(k, indent + 1, seen) .. '] = ' end\n"
"    parts[#parts + 1] = pad .. ks .. render(rawget(v, k), indent + 1, seen)\n"
"  end\n"
"  seen[v] = nil\n"
"  return '{\\n' .. table.concat(parts, ',\\n') .. '\\n' ..\n"
"         string.rep('  ', indent) .. '}'\n"
"end\n"
"\n"
"local help = [==[\n"
"glare.types()                          type names\n"
"glare.schema([type])                   JSON schema(s)\n"
"glare.list(type [, query])             one page of artifacts\n"
"glare.page(type [, query])             the whole list response (next, total_count)\n"
"glare.all(type [, query])              every artifact, following the pages\n"
"glare.get(type, id)                    one artifact\n"
"glare.create(type, {field = value})    a new draft\n"
"glare.update(type, id, changes)        {field = value} or a JSON-patch list\n"
"glare.activate / deactivate / reactivate / publish (type, id)\n"
"glare.delete(type, id)\n"
"glare.upload(type, id, 'field[/key]', path [, content_type])\n"
"glare.download(type, id, 'field[/key]', path [, {fetch = true}])\n"
"glare.read(type, id, 'field[/key]' [, max_bytes])   the bytes as a string\n"
"glare.add_location(type, id, 'field[/key]', url | {url =, md5 =, ...})\n"
"glare.delete_blob(type, id, 'field[/key]')\n"
"glare.verify([limit])                  re-check external blobs (direct mode)\n"
"glare.quotas([project]) / glare.set_quotas(body | project, {name = value})\n"
"glare.reload()  glare.scrub([min_age [, batch]])\n"
"glare.try(fn, ...)                     results, or nil, message, status\n"
"glare.batch(fn, ...)                   fn in one transaction (direct, sqlite)\n"
"glare.null  glare.array(t)  glare.object(t)  glare.json(v [, pretty])\n"
"glare.decode(s)  glare.format(...)  glare.pp(...)\n"
"Query: a query string ('status=active&sort=name:asc') or a table\n"
"({status = 'active', tags = {'a', 'b'}}). Errors: '404 Not Found: ...'.\n"
"See docs/console.md.]==]\n"
"function glare.help() print(help) end\n"
"\n"
"return function(v) return render(v, 0, {}) end\n";

static const luaL_Reg api[] = {
	{ "types", api_types },
	{ "schema", api_schema },
	{ "list", api_list },
	{ "page", api_page },
	{ "get", api_get },
	{ "create", api_create },
	{ "batch", api_batch },
	{ "update", api_update },
	{ "delete", api_delete },
	{ "upload", api_upload },
	{ "download", api_download },
	{ "read", api_read },
	{ "add_location", api_add_location },
	{ "delete_blob", api_delete_blob },
	{ "verify", api_verify },
	{ "quotas", api_quotas },
	{ "set_quotas", api_set_quotas },
	{ "reload", api_reload },
	{ "scrub", api_scrub },
	{ "json", api_json },
	{ "decode", api_decode },
	{ "array", api_array },
	{ "object", api_object },
	{ "format", gl_console_format_values },
	{ NULL, NULL }
};
/* clang-format on */

const char *gl_console_api_name(int i)
{
	return i >= 0 && (size_t)i < sizeof api / sizeof api[0] ? api[i].name
								: NULL;
}

static const struct {
	const char *name, *path, *value;
} transitions[] = {
	{ "activate", "/status", "active" },
	{ "deactivate", "/status", "deactivated" },
	{ "reactivate", "/status", "active" },
	{ "publish", "/visibility", "public" },
};

/* ---- locals that outlive their line ----------------------------------------
 * Each line is its own chunk, so a `local` would die with it. Chunks get a
 * session environment instead of _G: names declared local by an earlier
 * chunk resolve to the values it left (and assignments update them),
 * everything else is the globals. The values are taken from the chunk's
 * frame by a return hook, when its locals are still in scope. */
/* clang-format off */
static const char session_env[] =
"local G, setmetatable = ...\n"
"local vals, declared = {}, {}\n"
"local env = setmetatable({}, {\n"
"  __index = function(_, k)\n"
"    if declared[k] then return vals[k] end\n"
"    return G[k]\n"
"  end,\n"
"  __newindex = function(_, k, v)\n"
"    if declared[k] then vals[k] = v else G[k] = v end\n"
"  end,\n"
"})\n"
"local function keep(k, v) declared[k] = true; vals[k] = v end\n"
"local function names() return declared end\n"
"return env, keep, names\n";
/* clang-format on */

#define ENV_KEY "glared.console.env"
#define KEEP_KEY "glared.console.keep"
#define NAMES_KEY "glared.console.names"
#define CHUNK_KEY "glared.console.chunk"

int gl_console_push_local_names(lua_State *L)
{
	return lua_getfield(L, LUA_REGISTRYINDEX, NAMES_KEY);
}

void gl_console_prepare_chunk(lua_State *L, int idx)
{
	const char *up;

	idx = lua_absindex(L, idx);
	if (lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		if (luaL_loadbufferx(L, session_env, sizeof session_env - 1,
				     "=session", "t") != LUA_OK)
			lua_error(L);
		lua_pushglobaltable(L);
		lua_getglobal(L, "setmetatable");
		lua_call(L, 2, 3);
		lua_setfield(L, LUA_REGISTRYINDEX, NAMES_KEY);
		lua_setfield(L, LUA_REGISTRYINDEX, KEEP_KEY);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, ENV_KEY);
	}
	up = lua_getupvalue(L, idx, 1);
	if (up && !strcmp(up, "_ENV")) {
		lua_pop(L, 1);
		lua_setupvalue(L, idx, 1);
	} else {
		lua_pop(L, up ? 2 : 1);
	}
	lua_pushvalue(L, idx);
	lua_setfield(L, LUA_REGISTRYINDEX, CHUNK_KEY);
}

void gl_console_keep_locals(lua_State *L, lua_Debug *ar)
{
	const char *name;
	int same;

	if (!lua_checkstack(L, 4) || !lua_getinfo(L, "f", ar))
		return;
	lua_getfield(L, LUA_REGISTRYINDEX, CHUNK_KEY);
	same = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	if (!same)
		return;
	for (int i = 1; (name = lua_getlocal(L, ar, i)); i++) {
		if (name[0] == '(') {
			lua_pop(L, 1);
			continue;
		}
		lua_getfield(L, LUA_REGISTRYINDEX, KEEP_KEY);
		lua_pushstring(L, name);
		lua_rotate(L, -3, 2);
		lua_call(L, 2, 0);
	}
}

static int new_mt(lua_State *L, const char *name)
{
	lua_newtable(L);
	lua_pushstring(L, name);
	lua_setfield(L, -2, "__name");
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void override(lua_State *L, const char *lib, const char *fn,
		     lua_CFunction f, const char *label)
{
	lua_getglobal(L, lib);
	if (label) {
		lua_pushstring(L, label);
		lua_pushcclosure(L, f, 1);
	} else {
		lua_pushcfunction(L, f);
	}
	lua_setfield(L, -2, fn);
	lua_pop(L, 1);
}

static int null_tostring(lua_State *L)
{
	lua_pushliteral(L, "null");
	return 1;
}

/* Build the state (inside lua_pcall). */
static int p_init(lua_State *L)
{
	gl_console *c = con(L);
	int glare;

	luaL_openlibs(L);
	luaL_newmetatable(L, BOX_MT);
	lua_pushcfunction(L, box_gc);
	lua_setfield(L, -2, "__gc");
	luaL_newmetatable(L, DL_MT);
	lua_pushcfunction(L, dl_gc);
	lua_setfield(L, -2, "__gc");
	luaL_newmetatable(L, WAIT_MT);
	lua_pushcfunction(L, wait_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 3);
	c->lj.amt_ref = new_mt(L, "glare.array");
	c->lj.omt_ref = new_mt(L, "glare.object");
	c->lj.frozen_ref = LUA_NOREF; /* no sandbox in the console */

	luaL_newlib(L, api);
	glare = lua_gettop(L);
	for (size_t i = 0; i < sizeof transitions / sizeof transitions[0];
	     i++) {
		lua_pushstring(L, transitions[i].path);
		lua_pushstring(L, transitions[i].value);
		lua_pushcclosure(L, api_transition, 2);
		lua_setfield(L, glare, transitions[i].name);
	}
	/* null: a unique table that prints as null */
	lua_newtable(L);
	lua_newtable(L);
	lua_pushcfunction(L, null_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "glare.null");
	lua_setfield(L, -2, "__name");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	c->lj.null_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_setfield(L, glare, "null");
	lua_pushstring(L, c->server ? "attach" : "direct");
	lua_setfield(L, glare, "mode");
	lua_pushinteger(L, (lua_Integer)getpid());
	lua_setfield(L, glare, "pid");
	lua_pushstring(L, GLARED_VERSION);
	lua_setfield(L, glare, "version");
	/* package.loaded.glare too, so tracebacks say 'glare.create' */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "loaded");
	lua_pushvalue(L, glare);
	lua_setfield(L, -2, "glare");
	lua_pop(L, 2);
	lua_pushvalue(L, glare);
	lua_setglobal(L, "glare");

	if (luaL_loadbufferx(L, prelude, sizeof prelude - 1, "=glare", "t"))
		return lua_error(L);
	lua_pushvalue(L, glare);
	lua_call(L, 1, 1);
	c->render_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	if (c->server) {
		lua_pushcfunction(L, con_print);
		lua_setglobal(L, "print");
		override(L, "io", "write", con_write, NULL);
		override(L, "io", "read", con_unavailable, "io.read");
		override(L, "os", "exit", con_unavailable, "os.exit");
		override(L, "debug", "debug", con_unavailable, "debug.debug");
	}
	return 0;
}

gl_console *gl_console_new(gl_engine *e, int server, gl_err *err)
{
	gl_console *c = calloc(1, sizeof *c);

	if (!c) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	c->e = e;
	c->server = server;
	c->mem_cap = server ? SERVER_MEM_CAP : SIZE_MAX;
	gl_ctx_admin(&c->ctx, server ? "console-attach" : "console");
	c->L = lua_newstate(con_alloc, c);
	if (!c->L) {
		gl_console_free(c);
		gl_fail(err, 500, NULL, "cannot create a Lua state");
		return NULL;
	}
	lua_atpanic(c->L, at_panic);
	*(gl_console **)lua_getextraspace(c->L) = c;
	lua_pushcfunction(c->L, p_init);
	if (lua_pcall(c->L, 0, 0, 0) != LUA_OK) {
		gl_fail(err, 500, NULL, "console: %s",
			lua_type(c->L, -1) == LUA_TSTRING
				? lua_tostring(c->L, -1)
				: "cannot initialise");
		gl_console_free(c);
		return NULL;
	}
	return c;
}

void gl_console_free(gl_console *c)
{
	if (!c)
		return;
	gl_console_cancel_wait(c);
	if (c->L)
		lua_close(c->L);
	gl_ctx_free(&c->ctx);
	gl_sb_free(&c->out);
	free(c);
}

void gl_console_set_thread(gl_console *c, lua_State *co)
{
	c->thread = co;
}

void gl_console_set_wake(gl_console *c, void (*fn)(void *arg), void *arg)
{
	c->wake = fn;
	c->wake_arg = arg;
}

int gl_console_waiting(const gl_console *c)
{
	return c->wait != NULL && c->yielded;
}

void gl_console_cancel_wait(gl_console *c)
{
	if (c->wait)
		wait_cancel(c->wait);
	c->wait = NULL;
	c->yielded = 0;
}
