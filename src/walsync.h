/* walsync.h - group commit for the SQLite store: commits made durable by
 * a syncer thread, many at a time (docs/storage.md, "Durable commits").
 *
 * The worker's connection runs with synchronous=NORMAL: a COMMIT writes
 * its WAL frames (write(2) into the page cache) and returns without an
 * fsync. This unit counts those commits and makes them durable with
 * fdatasync(2) of the WAL file, on a thread of its own, so the event loop
 * never waits for the disk: every commit made before a sync starts is
 * durable when it ends, and the commits made while it runs share the next
 * one. A caller that must not answer before its commit is durable (a
 * write request's reply) waits with gl_walsync_wait. The same thread runs
 * the WAL checkpoints (PASSIVE, on its own connection) that SQLite would
 * otherwise run inside a commit on the loop.
 *
 * Loop-side calls (everything but the thread itself) come from the one
 * event-loop thread. Uses sqlite3, libevent, pthreads, log.c.
 */
#ifndef GL_WALSYNC_H
#define GL_WALSYNC_H

#include <event2/event.h>
#include <sqlite3.h>

#include "err.h"

typedef struct gl_walsync gl_walsync;

/* Take over durability and checkpoints of db (the database file at
 * path, in WAL mode): db is switched to synchronous=NORMAL, its commits
 * are counted (commit hook) and SQLite's auto-checkpoint is replaced by
 * the thread's. NULL + err on failure (db is then unchanged). */
gl_walsync *gl_walsync_new(struct event_base *base, sqlite3 *db,
			   const char *path, gl_err *err);
/* Make every commit durable (blocking), stop the thread, release db's
 * hooks. Waiters are dropped without a call: call this after the
 * requests are gone. */
void gl_walsync_free(gl_walsync *w);

/* fn(arg, ok) runs on the loop once every commit made so far is
 * durable (ok = 1), or the sync failed (ok = 0: the commit may be lost;
 * the store gives no durability any more until a restart). Returns 0
 * when they already are (fn is not called), 1 when fn will be, -1 when
 * durability failed earlier (fn is not called). */
int gl_walsync_wait(gl_walsync *w, void (*fn)(void *arg, int ok), void *arg);
/* Forget the waits of arg (its request went away). */
void gl_walsync_cancel(gl_walsync *w, void *arg);
/* Block until every commit made so far is durable (before an action that
 * depends on a commit and cannot be undone, e.g. removing blob data whose
 * last reference the commit removed). 0, or -1 + err. */
int gl_walsync_now(gl_walsync *w, gl_err *err);

#endif
