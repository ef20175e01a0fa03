/* admin.c - the admin socket: console sessions inside a worker (see
 * admin.h for the protocol).
 *
 * Each session owns a console state (console.c) bound to the worker's
 * engine. A "run" becomes a coroutine of that state, resumed from the
 * event loop:
 *  - a count hook checks the clock every HOOK_EVERY instructions, so a
 *    runaway chunk stops at its deadline; once stopped, the hook fires on
 *    every instruction so the chunk's own pcall cannot swallow the error
 *    (the type runtime's budget trick);
 *  - the same hook peeks at the socket every POLL_US for a cancel message
 *    or a closed client, since nothing else reads while the chunk runs;
 *  - a glare.* call that needs the loop yields; console.c calls wake() when
 *    its result is there and the coroutine resumes from a zero-delay event
 *    (never from inside the engine's own callback).
 *  - the same hook yields back to the event loop once a slice of SLICE_US
 *    has run (when the chunk's own thread can yield there), and the run
 *    continues from a zero-delay timer: a long command shares the worker
 *    with HTTP traffic instead of stalling it until its deadline;
 * Every Lua call made here from C is protected: lua_resume, or lua_pcall of
 * a small p_* function, because a session's state is memory-capped and any
 * allocation may fail.
 */
#include "admin.h"
#include "api.h"
#include "console.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <lauxlib.h>

#define HOOK_EVERY 10000
#define POLL_US 100000
#define SLICE_US 10000
#define MAX_SESSIONS 16

typedef struct session session;

struct gl_admin {
	gl_app *app;
	char *path;
	int fd;
	struct event *ev;
	dev_t dev;
	ino_t ino;
	session *list;
	int nsess;
};

enum stop { GO, CANCELLED, TIMED_OUT };

struct session {
	gl_admin *a;
	session *next;
	struct bufferevent *bev;
	gl_console *c;
	struct event *resume;
	struct event *slice; /* the next slice of a long run */
	int id;
	/* the request being read: its header, waiting for the payload */
	json_t *req;
	size_t need;
	/* the run in progress */
	int busy;
	lua_State *co;
	int co_ref;
	int print;
	int timeout_s;
	int64_t deadline, next_poll, slice_end;
	int sliced; /* the run yielded at the end of a slice */
	enum stop stop;
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- replies ------------------------------------------------------------ */

static void reply(session *s, int ok, const char *out, size_t nout,
		  const char *err, size_t nerr, int timeout)
{
	json_t *h = json_pack("{s:b, s:I, s:I}", "ok", ok, "output",
			      (json_int_t)nout, "error", (json_int_t)nerr);
	char *line;

	if (timeout)
		json_object_set_new(h, "timeout", json_true());
	line = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	if (!line)
		return;
	bufferevent_write(s->bev, line, strlen(line));
	bufferevent_write(s->bev, "\n", 1);
	if (nout)
		bufferevent_write(s->bev, out, nout);
	if (nerr)
		bufferevent_write(s->bev, err, nerr);
	free(line);
}

static void reply_error(session *s, const char *msg)
{
	size_t n;
	const char *out = gl_console_output(s->c, &n);
	reply(s, 0, out, n, msg, strlen(msg), 0);
	gl_console_output_reset(s->c);
}

/* ---- protected helpers -------------------------------------------------- */

typedef struct prep {
	const char *code, *name, *script;
	size_t len;
	json_t *args;
	lua_State *co;
	int ref;
	int nargs;
} prep;

/* A thread with the chunk loaded, `arg` set for scripts and the args
 * pushed; a syntax error comes back as the string result. */
static int p_prepare(lua_State *L)
{
	prep *p = lua_touserdata(L, 1);
	size_t i;
	json_t *v;

	p->co = lua_newthread(L);
	p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	if (luaL_loadbufferx(p->co, p->code, p->len, p->name, "t") != LUA_OK) {
		lua_xmove(p->co, L, 1);
		return 1;
	}
	if (!p->script) {
		/* the same closure: its _ENV becomes the session's */
		lua_pushvalue(p->co, -1);
		lua_xmove(p->co, L, 1);
		gl_console_prepare_chunk(L, -1);
		lua_pop(L, 1);
		return 0;
	}
	lua_createtable(L, (int)json_array_size(p->args), 1);
	lua_pushstring(L, p->script);
	lua_rawseti(L, -2, 0);
	luaL_checkstack(p->co, (int)json_array_size(p->args) + 1, "arguments");
	json_array_foreach(p->args, i, v) {
		const char *a = json_string_value(v);
		lua_pushstring(L, a ? a : "");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
		lua_pushstring(p->co, a ? a : "");
		p->nargs++;
	}
	lua_setglobal(L, "arg");
	return 0;
}

/* (thread[, message]) -> message + traceback of the thread, without the
 * console's own bottom frames. Without a message: the error on the
 * thread's top, through __tostring as lua.c's msghandler does. */
static int p_errmsg(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);
	const char *msg = lua_tostring(L, 2);
	size_t n;
	const char *s;
	static const char tail[] = "\n\t[C]: in ?";

	if (!msg) {
		lua_settop(L, 1);
		lua_xmove(co, L, 1);
		msg = lua_tostring(L, 2);
		if (!msg) {
			if (luaL_callmeta(L, 2, "__tostring") &&
			    lua_type(L, -1) == LUA_TSTRING)
				return 1;
			msg = lua_pushfstring(L,
					      "(error object is a %s value)",
					      luaL_typename(L, 2));
		}
	}
	luaL_traceback(L, co, msg, 0);
	s = lua_tolstring(L, -1, &n);
	while (n >= sizeof tail - 1 &&
	       !memcmp(s + n - (sizeof tail - 1), tail, sizeof tail - 1))
		n -= sizeof tail - 1;
	lua_pushlstring(L, s, n);
	return 1;
}

/* (thread) -> the thread's results formatted as the REPL prints them */
static int p_format(lua_State *L)
{
	lua_State *co = lua_tothread(L, 1);
	int n = lua_gettop(co);

	luaL_checkstack(L, n + 2, "results");
	lua_pushcfunction(L, gl_console_format_values);
	lua_xmove(co, L, n);
	lua_call(L, n, 1);
	return 1;
}

/* ---- running chunks ----------------------------------------------------- */

/* 1 if the client asked to cancel or went away. Nothing reads the socket
 * while a chunk runs, so look without consuming: the cancel message is
 * skipped later as one that arrived when nothing ran. */
static int peer_cancelled(session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char buf[512];
	ssize_t n;

	if (evbuffer_search(in, "\"cancel\"", 8, NULL).pos >= 0)
		return 1;
	n = recv(bufferevent_getfd(s->bev), buf, sizeof buf,
		 MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 1;
	return n > 0 && memmem(buf, (size_t)n, "\"cancel\"", 8) != NULL;
}

static void admin_hook(lua_State *L, lua_Debug *ar)
{
	session *s = gl_console_user(gl_console_of(L));

	if (ar->event == LUA_HOOKRET) {
		gl_console_keep_locals(L, ar);
		return;
	}
	if (!s || !s->busy)
		return;
	if (s->stop == GO) {
		int64_t now = mono_us();
		if (now > s->deadline) {
			s->stop = TIMED_OUT;
		} else if (now >= s->next_poll) {
			s->next_poll = now + POLL_US;
			if (peer_cancelled(s))
				s->stop = CANCELLED;
		}
		if (s->stop == GO) {
			/* only the run's own thread: a yield inside the
			 * chunk's coroutines would be taken for theirs */
			if (now >= s->slice_end && L == s->co &&
			    lua_isyieldable(L)) {
				s->sliced = 1;
				lua_yield(L, 0);
			}
			return;
		}
	}
	/* from now on every instruction raises */
	lua_sethook(L, admin_hook, LUA_MASKCOUNT, 1);
	if (s->stop == TIMED_OUT)
		luaL_error(L,
			   "timeout: the chunk ran longer than %d s (attach "
			   "mode; raise the limit with --timeout)",
			   s->timeout_s);
	luaL_error(L, "interrupted!");
}

static void end_run(session *s)
{
	lua_State *L = gl_console_lua(s->c);

	luaL_unref(L, LUA_REGISTRYINDEX, s->co_ref);
	s->co = NULL;
	s->co_ref = LUA_NOREF;
	s->busy = 0;
	gl_console_set_thread(s->c, NULL);
	gl_console_output_reset(s->c);
	lua_settop(L, 0);
	/* the thread is garbage now; collect step by step, as usual */
}

/* The run ended with status (not a wait): reply and forget the thread. */
static void finish(session *s, int status)
{
	lua_State *L = gl_console_lua(s->c);
	size_t nout, n;
	const char *out;

	lua_settop(L, 0);
	if (status == LUA_OK) {
		out = gl_console_output(s->c, &nout);
		if (s->print && lua_gettop(s->co) > 0) {
			lua_pushcfunction(L, p_format);
			lua_pushthread(s->co);
			lua_xmove(s->co, L, 1);
			if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
				/* output, then the results, then a newline */
				const char *r = lua_tolstring(L, -1, &n);
				char *all = malloc(nout + n + 1);
				if (all) {
					memcpy(all, out, nout);
					memcpy(all + nout, r, n);
					all[nout + n] = '\n';
					reply(s, 1, all, nout + n + 1, NULL, 0,
					      0);
					free(all);
					end_run(s);
					return;
				}
			}
			reply_error(s, lua_type(L, -1) == LUA_TSTRING
					       ? lua_tostring(L, -1)
					       : "cannot format the results");
			end_run(s);
			return;
		}
		reply(s, 1, out, nout, NULL, 0, 0);
		end_run(s);
		return;
	}
	lua_pushcfunction(L, p_errmsg);
	lua_pushthread(s->co);
	lua_xmove(s->co, L, 1);
	if (status == LUA_YIELD)
		lua_pushliteral(L, "attempt to yield from the console's main "
				   "chunk");
	else
		lua_pushnil(L);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
		/* no room even for the message: the state is at its cap */
		lua_settop(L, 0);
		lua_gc(L, LUA_GCCOLLECT);
		reply_error(s,
			    status == LUA_ERRMEM
				    ? "not enough memory: an attached session "
				      "may use 256 MiB; release what the "
				      "globals hold (x = nil) or reconnect"
				    : "the chunk failed (and so did its error "
				      "message)");
	} else {
		const char *msg = lua_tolstring(L, -1, &n);
		out = gl_console_output(s->c, &nout);
		reply(s, 0, out, nout, msg, n, s->stop == TIMED_OUT);
	}
	gl_console_output_reset(s->c);
	end_run(s);
}

/* Resume the run's thread for one slice; fresh: a new deadline (a new
 * run, or back from a glare.* wait), else the slice continues the run. */
static void run_slice(session *s, int nargs, int fresh)
{
	lua_State *L = gl_console_lua(s->c);
	int64_t now = mono_us();
	int nres = 0, st;

	if (fresh) {
		s->stop = GO;
		s->deadline = now + (int64_t)s->timeout_s * 1000000;
	}
	s->next_poll = now + POLL_US;
	s->slice_end = now + SLICE_US;
	s->sliced = 0;
	lua_sethook(s->co, admin_hook, LUA_MASKCOUNT | LUA_MASKRET,
		    HOOK_EVERY);
	st = lua_resume(s->co, L, nargs, &nres);
	lua_sethook(s->co, NULL, 0, 0);
	if (st == LUA_YIELD && s->sliced) {
		static const struct timeval zero = { 0, 0 };
		lua_pop(s->co, nres);
		/* a timer, not event_active: sockets get their turn first */
		evtimer_add(s->slice, &zero);
		return;
	}
	if (st == LUA_YIELD && gl_console_waiting(s->c)) {
		/* the yielded values (none) are not results */
		lua_pop(s->co, nres);
		return;
	}
	finish(s, st);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg);
static void process_input(session *s);

static void start_run(session *s, json_t *req, const char *code, size_t len)
{
	lua_State *L = gl_console_lua(s->c);
	prep p = { 0 };
	json_t *t = json_object_get(req, "timeout");

	p.code = code;
	p.len = len;
	p.name = json_string_value(json_object_get(req, "name"));
	if (!p.name)
		p.name = "=admin";
	p.script = json_string_value(json_object_get(req, "script"));
	p.args = json_object_get(req, "args");
	p.ref = LUA_NOREF;
	s->print = json_is_true(json_object_get(req, "print"));
	s->timeout_s = json_is_integer(t) ? (int)json_integer_value(t)
					  : GL_ADMIN_DEFAULT_TIMEOUT;
	if (s->timeout_s < 1 || s->timeout_s > GL_ADMIN_MAX_TIMEOUT)
		s->timeout_s = GL_ADMIN_DEFAULT_TIMEOUT;
	gl_console_output_reset(s->c);
	lua_settop(L, 0);
	lua_pushcfunction(L, p_prepare);
	lua_pushlightuserdata(L, &p);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_isstring(L, -1)) {
		/* a syntax error, or no memory */
		reply_error(s, lua_isstring(L, -1) ? lua_tostring(L, -1)
						   : "cannot load the chunk");
		luaL_unref(L, LUA_REGISTRYINDEX, p.ref);
		lua_settop(L, 0);
		return;
	}
	lua_settop(L, 0);
	s->co = p.co;
	s->co_ref = p.ref;
	s->busy = 1;
	gl_console_set_thread(s->c, s->co);
	gl_debug("admin: session %d runs %zu bytes (%s)", s->id, len, p.name);
	run_slice(s, p.nargs, 1);
}

/* A glare.* wait finished: resume from the loop, not from the engine's
 * callback that reported it. */
static void wake(void *arg)
{
	session *s = arg;
	event_active(s->resume, EV_TIMEOUT, 1);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	session *s = arg;

	if (!s->busy || !gl_console_waiting(s->c))
		return;
	run_slice(s, 0, 1);
	process_input(s);
}

static void slice_cb(evutil_socket_t fd, short what, void *arg)
{
	session *s = arg;

	if (!s->busy || gl_console_waiting(s->c))
		return;
	run_slice(s, 0, 0);
	if (!s->busy)
		process_input(s);
}

/* ---- sessions ----------------------------------------------------------- */

static void sess_free(session *s)
{
	gl_admin *a = s->a;
	session **pp;

	for (pp = &a->list; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	a->nsess--;
	gl_console_cancel_wait(s->c);
	gl_console_free(s->c);
	if (s->resume)
		event_free(s->resume);
	if (s->slice)
		event_free(s->slice);
	if (s->bev)
		bufferevent_free(s->bev);
	json_decref(s->req);
	gl_info("admin: console session %d closed", s->id);
	free(s);
}

/* A cancel while a glare.* call waits: drop the wait and the thread. */
static void cancel_wait(session *s)
{
	lua_State *L = gl_console_lua(s->c);
	size_t n, nout;

	gl_console_cancel_wait(s->c);
	lua_settop(L, 0);
	lua_pushcfunction(L, p_errmsg);
	lua_pushthread(s->co);
	lua_xmove(s->co, L, 1);
	lua_pushliteral(L, "interrupted!");
	if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
		const char *msg = lua_tolstring(L, -1, &n);
		const char *out = gl_console_output(s->c, &nout);
		reply(s, 0, out, nout, msg, n, 0);
	} else {
		reply_error(s, "interrupted!");
	}
	end_run(s);
}

/* Handle what the client sent. Returns -1 when the session was freed. */
static int handle(session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	for (;;) {
		if (!s->req) {
			size_t n;
			char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
			json_t *j;
			const char *op;

			if (!line) {
				if (evbuffer_get_length(in) >
				    GL_ADMIN_MAX_LINE)
					goto bad;
				return 0;
			}
			j = json_loadb(line, n, 0, NULL);
			free(line);
			op = json_string_value(json_object_get(j, "op"));
			if (op && !strcmp(op, "cancel")) {
				json_decref(j);
				if (s->busy && gl_console_waiting(s->c))
					cancel_wait(s);
				else if (s->busy && s->stop == GO)
					s->stop = CANCELLED; /* next slice */
				continue;
			}
			if (!op || strcmp(op, "run") ||
			    !json_is_integer(json_object_get(j, "length")) ||
			    json_integer_value(json_object_get(j, "length")) <
				    0 ||
			    json_integer_value(json_object_get(j, "length")) >
				    GL_ADMIN_MAX_CODE ||
			    s->busy) {
				json_decref(j);
				goto bad;
			}
			s->req = j;
			s->need = (size_t)json_integer_value(
				json_object_get(j, "length"));
		}
		if (evbuffer_get_length(in) < s->need)
			return 0;
		{
			json_t *req = s->req;
			char *code = malloc(s->need + 1);
			if (!code)
				goto bad;
			evbuffer_remove(in, code, s->need);
			code[s->need] = '\0';
			s->req = NULL;
			start_run(s, req, code, s->need);
			free(code);
			json_decref(req);
		}
		if (s->busy)
			return 0; /* waiting; input resumes after */
	}
bad:
	gl_warn("admin: session %d: protocol error, closing", s->id);
	sess_free(s);
	return -1;
}

static void process_input(session *s)
{
	handle(s);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	process_input(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		sess_free(arg);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	gl_admin *a = arg;
	static int next_id;
	struct ucred cr;
	socklen_t crlen = sizeof cr;
	gl_err err = { 0 };
	session *s;
	char hello[160];
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* the socket file is 0600 already; the peer check also covers a
	 * socket path in a directory with looser rules */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
	    (cr.uid != geteuid() && cr.uid != 0)) {
		gl_warn("admin: refused a console from uid %d",
			crlen == sizeof cr ? (int)cr.uid : -1);
		close(fd);
		return;
	}
	if (a->nsess >= MAX_SESSIONS) {
		static const char busy[] =
			"{\"error\": \"too many console sessions\"}\n";
		ssize_t n = write(fd, busy, sizeof busy - 1);
		(void)n; /* closing anyway */
		close(fd);
		return;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		close(fd);
		return;
	}
	s->a = a;
	s->id = ++next_id;
	s->co_ref = LUA_NOREF;
	s->c = gl_console_new(a->app->engine, 1, &err);
	s->bev = bufferevent_socket_new(a->app->base, fd,
					BEV_OPT_CLOSE_ON_FREE);
	s->resume = event_new(a->app->base, -1, 0, resume_cb, s);
	s->slice = evtimer_new(a->app->base, slice_cb, s);
	s->next = a->list;
	a->list = s;
	a->nsess++;
	if (!s->c || !s->bev || !s->resume || !s->slice) {
		gl_error("admin: cannot open a console session: %s",
			 s->c ? "out of memory" : err.msg);
		if (!s->bev)
			close(fd);
		sess_free(s);
		return;
	}
	gl_console_set_user(s->c, s);
	gl_console_set_wake(s->c, wake, s);
	bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	snprintf(hello, sizeof hello,
		 "{\"glared\": \"%s\", \"protocol\": %d, \"pid\": %d}\n",
		 GLARED_VERSION, GL_ADMIN_PROTOCOL, (int)getpid());
	bufferevent_write(s->bev, hello, strlen(hello));
	gl_info("admin: console session %d attached (uid %d, pid %d)", s->id,
		(int)cr.uid, (int)cr.pid);
}

/* ---- the listener ------------------------------------------------------- */

/* A socket file left by a dead process is removed; one that answers
 * belongs to a live server and is left alone. */
static int clear_stale(const char *path, const struct sockaddr_un *sa,
		       gl_err *err)
{
	struct stat st;
	int fd, live;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return gl_fail(err, 500, NULL, "%s exists and is not a socket",
			       path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	live = fd >= 0 &&
	       connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
	if (fd >= 0)
		close(fd);
	if (live)
		return gl_fail(err, 500, NULL,
			       "%s is in use by another process", path);
	unlink(path);
	return 0;
}

int gl_admin_start(gl_app *app, gl_admin **out, gl_err *err)
{
	const char *path = app->conf->admin_socket;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	gl_admin *a;
	struct stat st;
	mode_t old;
	int fd, rc;

	*out = NULL;
	if (!path || !*path)
		return 0;
	if (strlen(path) >= sizeof sa.sun_path)
		return gl_fail(err, 500, NULL,
			       "admin_socket path longer than %zu"
			       " bytes: %s",
			       sizeof sa.sun_path - 1, path);
	strcpy(sa.sun_path, path);
	if (clear_stale(path, &sa, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return gl_fail(err, 500, NULL, "socket: %s", strerror(errno));
	/* created 0600 from the start: no window with a wider mode */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0 ||
	    stat(path, &st) < 0) {
		gl_fail(err, 500, NULL, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	a = calloc(1, sizeof *a);
	if (!a || !(a->path = strdup(path)) ||
	    !(a->ev = event_new(app->base, fd, EV_READ | EV_PERSIST, accept_cb,
				a))) {
		if (a)
			free(a->path);
		free(a);
		close(fd);
		unlink(path);
		return gl_fail(err, 500, NULL, "out of memory");
	}
	a->app = app;
	a->fd = fd;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	event_add(a->ev, NULL);
	gl_info("admin socket on %s", path);
	*out = a;
	return 0;
}

void gl_admin_free(gl_admin *a)
{
	struct stat st;

	if (!a)
		return;
	while (a->list)
		sess_free(a->list);
	event_free(a->ev);
	close(a->fd);
	/* remove the file only if it is still ours */
	if (stat(a->path, &st) == 0 && st.st_dev == a->dev &&
	    st.st_ino == a->ino)
		unlink(a->path);
	free(a->path);
	free(a);
}
