/* core.h - the engine's state and what every engine unit shares (core.c):
 * finding a type, loading an artifact the caller may see, policy checks,
 * the API shape of artifacts and blobs, hooks with their standard
 * arguments, the change rules of a field, quota limits, version keys.
 *
 * Private to the engine's units (art.c, art_list.c, quota.c, gc.c,
 * blob.c, upload.c, download.c, location.c, maint.c, engine.c); the layers
 * above see only engine.h and the units' own headers.
 *
 * Uses ctx.h, conf.h, policy.h, ltype.h, meta.h, store.h, events.h.
 */
#ifndef GL_CORE_H
#define GL_CORE_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "events.h"
#include "ltype.h"
#include "meta.h"
#include "policy.h"
#include "store.h"
#include "util.h"

typedef struct gl_engine gl_engine;

struct gl_location_job;
struct gl_cleanup_op;

struct gl_engine {
	gl_conf *conf;
	gl_policy *policy;
	struct event_base *base;
	gl_types *types; /* current set; requests take a reference */
	gl_meta *meta;
	gl_store *store;
	struct gl_fetch *fetch;       /* created on first use */
	struct gl_location_job *jobs; /* pending location registrations */
	struct gl_upload *uploads;    /* uploads in progress */
	struct gl_s3 *s3;             /* the S3 blob store, when configured */
	/* maintenance (maint.c) */
	struct event *maint;            /* heartbeat, takeover, cleanups */
	struct event *kick;             /* runs the cleanup queue soon */
	struct gl_cleanup_op *cleanups; /* cleanups in flight */
	int ncleanups;
	int ticks;              /* maintenance passes so far */
	struct gl_sweep *sweep; /* the stale-upload sweep in flight */
	gl_events *events;      /* the outbox (events.h) */
	int maint_busy;         /* its coroutine is still at work */
};

/* A loaded artifact with the type it belongs to. */
typedef struct gl_af {
	gl_types *ts; /* referenced */
	const gl_type *type;
	json_t *doc; /* as the meta store returns it */
} gl_af;

void gl_af_clear(gl_af *af);

/* Find a type (404 TypeNotFound). Takes a reference on the set. */
int gl_core_type(gl_engine *e, const char *name, gl_types **ts,
		 const gl_type **t, gl_err *err);
/* Load an artifact the caller may see (404 otherwise). rw: also require
 * the caller may write it, i.e. own project or admin (others get 404 for
 * private artifacts; policy decides about public ones). */
int gl_core_load(gl_engine *e, const gl_ctx *ctx, const char *type,
		 const char *id, int rw, gl_af *af, gl_err *err);
/* The artifact again, inside a write transaction or right after a commit:
 * 0 with *doc, or -1 with err - a store failure as the store reported it,
 * an artifact deleted meanwhile as 404 ArtifactNotFound "Artifact with
 * id=ID GONE" (gone: "not found", "was deleted"). Never a -1 without an
 * error, never a store failure taken for a missing artifact. */
int gl_core_reread(gl_engine *e, const gl_type *t, const char *id,
		   const char *gone, json_t **doc, gl_err *err);
/* Policy check against an artifact (403 "Policy check for ..."). */
int gl_core_policy(gl_engine *e, const gl_ctx *ctx, const char *rule,
		   const json_t *doc, gl_err *err);
/* The policy target of an artifact: owner, visibility, status, ... */
json_t *gl_core_target(const json_t *doc);
/* The hook view of a context. */
json_t *gl_core_ctx_json(const gl_ctx *ctx);
/* API shape of an artifact (new ref), after the type's to_dict or
 * format_all; NULL + err (500) when that fails. */
json_t *gl_core_output(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		       const gl_type *t, const json_t *doc, gl_err *err);
/* The same appended to b as JSON text (jtext.h), byte for byte what
 * the API's dump of gl_core_output gives; 0 or -1 + err. A type without
 * the hook is written straight from doc. */
int gl_core_output_text(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
			const gl_type *t, const json_t *doc, gl_sb *b,
			gl_err *err);
/* gl_core_plain_output as JSON text appended to b. */
void gl_core_plain_output_text(const gl_type *t, const json_t *doc, gl_sb *b);
/* API shape of a blob record. */
json_t *gl_core_blob_output(const gl_type *t, const char *id,
			    const char *field, const char *key,
			    const json_t *blob);
/* A document from a client (body, patch, location) within the JSON
 * limits of the configuration, no U+0000 in it (400 otherwise). */
int gl_core_json_ok(gl_engine *e, const json_t *v, const char *what,
		    gl_err *err);
/* The change rules for a field (400 unknown, 403 frozen/system/immutable;
 * docs/glare-contract.md "Change rules"). */
int gl_core_change_allowed(const gl_type *t, const json_t *doc,
			   const char *field, gl_err *err);
/* The arguments of a blob hook: [field, key or null] plus extra (if not
 * NULL). Never NULL: no hook runs without them (aborts out of memory). */
json_t *gl_core_blob_args(const char *field, const char *key,
			  const json_t *extra);
/* Run a hook with the standard arguments. */
int gl_core_hook(gl_engine *e, gl_types *ts, const gl_type *t, enum gl_hook h,
		 const gl_ctx *ctx, const json_t *doc, const json_t *args,
		 json_t **af_out, gl_err *err);
/* Quota limit in effect (-1 unlimited): project override, else config. */
int gl_core_quota(gl_engine *e, const char *project, const char *name,
		  const char *type, int64_t *limit, gl_err *err);
/* A policy rule holds for the caller against target (no error). */
int gl_core_policy_ok(gl_engine *e, const gl_ctx *ctx, const char *rule,
		      const json_t *target);
/* The API view of a doc before any type hook (shares doc's values). */
json_t *gl_core_plain_output(const gl_type *t, const json_t *doc);
/* May field change while the status goes from before to after (400
 * unknown, 403 frozen/system/immutable)? */
int gl_core_change_rule(const gl_type *t, const char *before,
			const char *after, const char *field, gl_err *err);
/* Version sort key of a doc's version. */
int gl_core_vkey(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		 const char *version, gl_vkey *vk, char **suffix, char **meta,
		 gl_err *err);

/* The worker's fetcher (created on first use). */
struct gl_fetch *gl_core_fetch(gl_engine *e, gl_err *err);

#endif
