/* admin.h - the admin socket: `glared console --attach` runs its chunks
 * inside a running server.
 *
 * When [DEFAULT] admin_socket is set, the first worker listens on that Unix
 * socket (mode 0600; peers must have the server's uid or be root). Each
 * connection is a session with its own trusted console Lua state
 * (console.c) bound to the worker's live engine, so it sees the types and
 * state the server serves with. A chunk runs inside the event loop as a
 * coroutine under a count hook with a deadline: past the time limit, or
 * when the client cancels, it stops with an error instead of blocking the
 * worker. glare.* calls that wait for the loop (external locations) yield,
 * and the loop keeps serving HTTP meanwhile.
 *
 * Protocol (version 1). Every message is one JSON header line, then the raw
 * payload bytes it announces (no UTF-8 or escaping concerns for code and
 * output):
 *   greeting   S: {"glared": VERSION, "protocol": 1, "pid": N}\n
 *   run        C: {"op": "run", "length": N, "name": CHUNKNAME,
 *                  "print": BOOL, "timeout": SECONDS,
 *                  "script": NAME, "args": [STRING...]}\n + N bytes of Lua
 *   cancel     C: {"op": "cancel"}\n  (interrupts the running chunk; no
 *                  reply of its own; ignored when nothing runs)
 *   reply      S: {"ok": BOOL, "output": N, "error": M[, "timeout": true]}\n
 *                  + N bytes of output (print, io.write, the printed
 *                  results when "print") + M bytes of error text
 * One run at a time per session; a second run before the reply closes the
 * session.
 *
 * Used by server.c (one call to start, one to free) and, for the constants,
 * by console_front.c (the client). Uses console.c, libevent, jansson.
 */
#ifndef GL_ADMIN_H
#define GL_ADMIN_H

#include <stddef.h>

#include "err.h"

#define GL_ADMIN_PROTOCOL 1
#define GL_ADMIN_MAX_LINE (64 << 10) /* a header line */
#define GL_ADMIN_MAX_CODE (16 << 20) /* a chunk */
#define GL_ADMIN_DEFAULT_TIMEOUT 10  /* seconds of Lua per run */
#define GL_ADMIN_MAX_TIMEOUT 600

struct gl_app;
typedef struct gl_admin gl_admin;

/* Listen on conf->admin_socket in app's loop. *out is NULL (and 0 is
 * returned) when no socket is configured. -1 with err filled when the
 * socket cannot be set up (path too long, in use by a live process, bind
 * failure); the caller logs it and serves HTTP without it. */
int gl_admin_start(struct gl_app *app, gl_admin **out, gl_err *err);
/* Close every session and the socket, and remove the socket file. NULL ok. */
void gl_admin_free(gl_admin *a);

#endif
