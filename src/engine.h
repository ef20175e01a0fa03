/* engine.h - artifact rules: lifecycle, visibility, immutability,
 * uniqueness, quotas, hooks; blob upload/download/location pipelines.
 *
 * The engine is the only place that decides whether a change is allowed.
 * The HTTP API and the console both call it with a request context, so
 * there is no back door around validation or lifecycle. It owns the
 * worker's type runtime (ltype.c), metadata store (meta.h), blob store
 * (store.c) and fetcher (fetch.c).
 *
 * Every call returns 0 (or a documented positive value) on success and -1
 * with err filled (status, Glare exception name, message) on failure.
 * Results are new JSON references in API shape (internal blob keys
 * stripped, URLs synthesised, the type's output hook applied).
 */
#ifndef GL_ENGINE_H
#define GL_ENGINE_H

#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "conf.h"
#include "digest.h"
#include "err.h"
#include "policy.h"

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

/* ---- schemas and artifacts -------------------------------------------------- */

/* type NULL: {"schemas": {...every type...}}; else {"schemas": {type: ...}} */
int gl_engine_schemas(gl_engine *e, const gl_ctx *ctx, const char *type,
		      json_t **out, gl_err *err);

/* A query parameter, percent-decoded (the list endpoint's filters). */
typedef struct gl_kv {
	const char *name, *value;
} gl_kv;

/* The list response body: {type_name, artifacts, first, schema,
 * total_count[, next]}. */
int gl_engine_list(gl_engine *e, const gl_ctx *ctx, const char *type,
		   const gl_kv *query, int nquery, json_t **out, gl_err *err);
int gl_engine_show(gl_engine *e, const gl_ctx *ctx, const char *type,
		   const char *id, json_t **out, gl_err *err);
/* The checks of create / update that need no body, so the API can answer
 * them before the client sends it (Expect: 100-continue). */
int gl_engine_precheck_create(gl_engine *e, const gl_ctx *ctx,
			      const char *type, gl_err *err);
int gl_engine_precheck_update(gl_engine *e, const gl_ctx *ctx,
			      const char *type, const char *id, gl_err *err);
int gl_engine_create(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const json_t *body, json_t **out, gl_err *err);
/* patch: a JSON-patch array (RFC 6902). */
int gl_engine_update(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, const json_t *patch, json_t **out,
		     gl_err *err);
int gl_engine_delete(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, gl_err *err);
/* Purge artifacts deleted (delayed) at least min_age_s seconds ago, at
 * most limit per call. Returns the number purged, or -1. */
int gl_engine_scrub(gl_engine *e, int min_age_s, int limit, gl_err *err);

/* ---- quotas --------------------------------------------------------------- */
int gl_engine_set_quotas(gl_engine *e, const gl_ctx *ctx, const json_t *body,
			 gl_err *err);
int gl_engine_list_quotas(gl_engine *e, const gl_ctx *ctx, json_t **out,
			  gl_err *err);
/* project NULL: the caller's project. */
int gl_engine_project_quotas(gl_engine *e, const gl_ctx *ctx,
			     const char *project, json_t **out, gl_err *err);

/* ---- blob uploads (streaming) ---------------------------------------------------
 * begin: every check that can fail before the body does (visibility,
 * policy, field kind, change rules, saving conflict, size limits from the
 * declared length, quotas) and the "saving" placeholder. write: bytes as
 * they come; 0, 1 = taken but pause the body until the resume callback
 * runs (the store is behind), -1 with 413 once a limit is passed. finish:
 * size checks, type hook, store, commit; done(arg, artifact, err) reports
 * the end (maybe before finish returns); -1 when it failed at once (done is
 * then not called). Either way the upload is gone after finish. detach:
 * the caller went away during finish; no callback. abort: restore the
 * previous state. */
typedef struct gl_upload gl_upload;

gl_upload *gl_engine_upload_begin(gl_engine *e, const gl_ctx *ctx,
				  const char *type, const char *id,
				  const char *field, const char *key,
				  int has_key, const char *content_type,
				  int64_t content_length, gl_err *err);
int gl_upload_write(gl_upload *u, const void *data, size_t len, gl_err *err);
void gl_upload_on_resume(gl_upload *u, void (*fn)(void *), void *arg);
/* The Content-Type learnt after begin (a fetched location's). */
void gl_upload_set_content_type(gl_upload *u, const char *content_type);
typedef void (*gl_engine_done_fn)(void *arg, json_t *artifact,
				  const gl_err *err);
int gl_upload_finish(gl_upload *u, gl_engine_done_fn done, void *arg,
		     gl_err *err);
void gl_upload_detach(gl_upload *u);
void gl_upload_abort(gl_upload *u);

/* ---- downloads ---------------------------------------------------------- */

typedef struct gl_request_info {
	const char *method, *path, *remote_addr;
	json_t *headers; /* lower-case name -> value */
} gl_request_info;

enum gl_dl_kind { GL_DL_FILE, GL_DL_DATABASE, GL_DL_REDIRECT, GL_DL_PROXY,
		  GL_DL_S3 };

typedef struct gl_download {
	enum gl_dl_kind kind;
	int fd;                   /* GL_DL_FILE: open file, caller closes */
	char *url;                /* GL_DL_REDIRECT / GL_DL_PROXY */
	char *location;           /* GL_DL_DATABASE / GL_DL_S3: object key */
	int64_t size;             /* -1 unknown */
	int64_t max_size;         /* the field's limit (bounds a fetch of
				   * unknown size) */
	char content_type[256];
	char md5[33], sha1[41], sha256[65];
	char field[256];
	char *key;                /* the folder key served (selected) */
	char *artifact_id;
	int trusted;              /* GL_DL_PROXY: nothing to check the bytes
				   * against (internal location, trust mode) */
} gl_download;

int gl_engine_download(gl_engine *e, const gl_ctx *ctx, const char *type,
		       const char *id, const char *field, const char *key,
		       int has_key, const gl_request_info *ri,
		       gl_download *dl, gl_err *err);
void gl_download_free(gl_download *dl);
/* Database store reads for GL_DL_DATABASE. */
int64_t gl_engine_read_data(gl_engine *e, const char *location, int64_t off,
			    void *buf, int64_t len, gl_err *err);
/* What fetched bytes of an external blob say against dl's record (size,
 * checksums): 1 they differ (why says how), 0 they are the recorded ones,
 * -1 no verdict. Only bytes that were read and differ count: more bytes
 * than recorded, or a complete read of another size or checksum; a
 * fetch that failed or was refused (network, HTTP error, a cap reached
 * on a blob of unknown size) says nothing about them; bytes taken on
 * trust (dl->trusted) are never judged. complete: every byte was read (h
 * is then valid). */
int gl_external_verdict(const gl_download *dl, int complete, int64_t got,
			const gl_digest_hex *h, char *why, size_t whylen);
/* A proxied external download found different bytes: flag the blob. */
void gl_engine_flag_blob(gl_engine *e, const char *artifact_id,
			 const char *field, const char *key, const char *why);

/* ---- locations ------------------------------------------------------------- */

/* Register an external (fetched and verified) or internal location. The
 * result arrives through done (maybe before this returns). Returns -1 with
 * err if the request fails its pre-checks (done is then not called). */
int gl_engine_add_location(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, const char *field, const char *key,
			   int has_key, const json_t *body,
			   gl_engine_done_fn done, void *arg, gl_err *err);
/* Cancel a pending registration (client went away): nothing is kept. */
void gl_engine_cancel_location(gl_engine *e, void *arg);
int gl_engine_delete_blob(gl_engine *e, const gl_ctx *ctx, const char *type,
			  const char *id, const char *field, const char *key,
			  int has_key, json_t **out, gl_err *err);

/* ---- external re-verification ------------------------------------------------ */
/* Re-fetch up to limit external blobs (least recently verified first, none
 * verified in the last min_age_s seconds) and compare; returns the number
 * checked, or -1. Blocking (tools). */
int gl_engine_verify_external(gl_engine *e, int limit, int min_age_s,
			      int *changed, gl_err *err);

struct gl_fetch;
struct gl_s3;
/* The worker's fetcher (created on first use). */
struct gl_fetch *gl_engine_fetch(gl_engine *e, gl_err *err);
/* The S3 store's client, NULL when no store is S3. */
struct gl_s3 *gl_engine_s3(gl_engine *e);

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

#endif
