/* console.h - the operator console: a trusted Lua 5.4 state with the
 * glare.* API bound to an engine (console.c), and the `glared console`
 * front end (console_front.c).
 *
 * One gl_console is one Lua state with the full standard library plus the
 * glare table (docs/console.md). Every glare.* call goes through the
 * engine's operations (gl_art_*, gl_upload_*, gl_download_*,
 * gl_location_*, gl_quota_*) with an admin context, so the same rules apply
 * as for HTTP requests. Two homes:
 *  - direct: `glared console` builds its own engine on the configured
 *    database and stores and runs the REPL, -e chunks or a script;
 *  - server: admin.c gives each admin-socket session its own gl_console
 *    bound to the worker's live engine (`glared console --attach`). There,
 *    print output is captured for the reply, and calls that wait for the
 *    event loop (locations, external fetches) yield the running coroutine
 *    instead of spinning a nested loop.
 *
 * Used by tools.c (direct mode) and admin.c (server mode). Uses engine.h
 * (and the operation headers it brings), status.h, ljson.h, Lua 5.4,
 * jansson, libevent and libedit.
 */
#ifndef GL_CONSOLE_H
#define GL_CONSOLE_H

#include <signal.h>
#include <stddef.h>

#include <lua.h>

#include "conf.h"
#include "engine.h"
#include "err.h"

typedef struct gl_console gl_console;

/* ---- the console state ------------------------------------------------- */

/* server != 0: running inside a worker (capture output, yield to wait,
 * cap memory, no os.exit / io.read). NULL + err on failure. */
gl_console *gl_console_new(gl_engine *e, int server, gl_err *err);
void gl_console_free(gl_console *c);
lua_State *gl_console_lua(gl_console *c);
gl_console *gl_console_of(lua_State *L);

/* Act as project p (still admin): the owner of what it creates; direct
 * mode's --project, so a bulk load (bench/meta.py) owns its artifacts as
 * the API's users would. 0, or -1 out of memory. */
int gl_console_set_project(gl_console *c, const char *p);

/* Per-console pointer for the host (admin.c's session). */
void gl_console_set_user(gl_console *c, void *user);
void *gl_console_user(gl_console *c);

/* Server mode: the captured print output since the last reset. */
const char *gl_console_output(gl_console *c, size_t *len);
void gl_console_output_reset(gl_console *c);

/* [-n, +1, e] lua_CFunction: format its arguments as the REPL prints
 * results (strings raw, tables as JSON with indent 2 or a Lua-like
 * rendering, tab-separated) and return the text. Call it protected. */
int gl_console_format_values(lua_State *L);

/* Server mode waits: a glare.* call that needs the event loop yields the
 * coroutine it runs in (which must be the thread set here; other
 * coroutines get an error). When the awaited result arrives, wake(arg) is
 * called from the event loop: resume the thread then, with no arguments. */
void gl_console_set_thread(gl_console *c, lua_State *co);
void gl_console_set_wake(gl_console *c, void (*wake)(void *arg), void *arg);
/* 1 if the last yield of the thread was a glare.* wait. */
int gl_console_waiting(const gl_console *c);
/* Abandon the pending wait (session closed, cancelled): nothing is kept
 * and wake is not called. The thread must not be resumed afterwards. */
void gl_console_cancel_wait(gl_console *c);

/* Session locals: give a loaded chunk (at idx) the session environment,
 * where names an earlier chunk declared `local` still resolve; and from a
 * LUA_HOOKRET hook, keep the locals of that chunk as it returns. */
void gl_console_prepare_chunk(lua_State *L, int idx);
void gl_console_keep_locals(lua_State *L, lua_Debug *ar);
/* [-0, +1, -] Push the function that lists the names of the session
 * locals (a table of name = true) or nil; returns its Lua type. */
int gl_console_push_local_names(lua_State *L);

/* The name of the i-th glare.* function (0-based), NULL past the last. */
const char *gl_console_api_name(int i);

/* Ctrl-C in direct mode: set by the front end's SIGINT handler; waits and
 * long copies of glare.* calls give up when they see it. */
extern volatile sig_atomic_t gl_console_interrupted;

/* ---- the command (console_front.c) ------------------------------------------ */

typedef struct gl_console_opts {
	const char *exec[16]; /* -e chunks, in order */
	int nexec;
	int interactive;     /* -i: the REPL after -e / script */
	int attach;          /* --attach[=PATH] */
	const char *socket;  /* PATH of --attach=PATH, else from conf */
	int timeout;         /* --timeout S (attach mode) */
	const char *project; /* --project P (direct mode) or NULL */
	const char *script;  /* SCRIPT or "-" (stdin) */
	char **args;         /* script arguments */
	int nargs;
} gl_console_opts;

/* Direct mode on an engine the caller built. Returns the exit status. */
int gl_console_run_direct(gl_conf *conf, gl_engine *e,
			  const gl_console_opts *o);
/* --attach: the same front end, each chunk run by the server. */
int gl_console_run_attached(gl_conf *conf, const gl_console_opts *o);

#endif
