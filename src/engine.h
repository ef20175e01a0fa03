/* engine.h - the engine: artifact rules (lifecycle, visibility,
 * immutability, uniqueness, quotas, hooks) and the blob pipelines, seen
 * from the layers above; its life cycle (engine.c) is declared here, each
 * operation in its unit's header, all of which this one includes:
 *   art.h       schemas, list, show, create, update, delete, scrub
 *   quota.h     the quota API
 *   upload.h    streaming uploads
 *   download.h  downloads, the reader of outside bytes, re-verification
 *   location.h  external and internal locations, deleting external blobs
 * docs/architecture.md draws the units inside and their arrows.
 *
 * The engine is the only place that decides whether a change is allowed.
 * The HTTP API and the console both call it with a request context, so
 * there is no back door around validation or lifecycle. It owns the
 * worker's type runtime (ltype.c), metadata store (meta.h), blob stores
 * (store.c, s3.c) and fetcher (fetch.c).
 *
 * Every call returns 0 (or a documented positive value) on success and -1
 * with err filled (status, Glare exception name, message) on failure.
 * Results are new JSON references in API shape (internal blob keys
 * stripped, URLs synthesised, the type's output hook applied).
 */
#ifndef GL_ENGINE_H
#define GL_ENGINE_H

#include <event2/event.h>
#include <jansson.h>

#include "ctx.h"
#include "conf.h"
#include "err.h"
#include "policy.h"

#include "art.h"
#include "download.h"
#include "location.h"
#include "quota.h"
#include "upload.h"

typedef struct gl_engine gl_engine;

gl_engine *gl_engine_new(gl_conf *conf, gl_policy *pol,
			 struct event_base *base, gl_err *err);
void gl_engine_free(gl_engine *e);
/* The worker's loop has ended: work still waiting for the database (in
 * coroutines) fails and runs to its end now (gl_meta_stop). */
void gl_engine_stop(gl_engine *e);
/* SIGHUP / console: load a new type set and swap it in; on failure the
 * old set keeps serving. */
int gl_engine_reload_types(gl_engine *e, gl_err *err);
/* Start-up recovery: blobs left "saving" by a dead process, temp files,
 * unreferenced data. Run once before serving. */
int gl_engine_recover(gl_engine *e, gl_err *err);
/* Run a maintenance pass (heartbeats, takeover, sweeps, cleanups) as soon
 * as the loop runs: a worker starting takes over its dead predecessors'
 * work at once. */
void gl_engine_maintain(gl_engine *e);

/* The event outbox: serve workers start its delivery, the API manages
 * webhook subscriptions through it. */
struct gl_events *gl_engine_events(gl_engine *e);

struct event_base *gl_engine_base(gl_engine *e);
/* Group commit (gl_meta_attach_loop): a worker's engine commits without
 * waiting for the disk; a reply acknowledging a write waits for
 * gl_engine_when_durable (see gl_meta_when_durable for the returns). */
int gl_engine_attach_loop(gl_engine *e, gl_err *err);
int gl_engine_when_durable(gl_engine *e, void (*fn)(void *arg, int ok),
			   void *arg);
void gl_engine_durable_cancel(gl_engine *e, void *arg);
const gl_conf *gl_engine_conf(gl_engine *e);
/* gl_meta_batch on the engine's store (the console's glare.batch). */
int gl_engine_batch(gl_engine *e, int on, gl_err *err);

#endif
