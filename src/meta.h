/* meta.h - the metadata store: artifacts, blob records, quotas.
 *
 * A narrow interface the engine uses; sqlite3 (meta_sqlite.c) is the
 * embedded default and PostgreSQL (meta_pg.c) serves scale-out, both behind
 * the dispatcher in meta.c with the same semantics. The store knows the artifact *layout* (which fields are base
 * columns, which go to the typed property table, which are blobs) from the
 * gl_type, but no *rules*: visibility, lifecycle and quotas are the
 * engine's. Every write happens inside gl_meta_begin/commit, a write
 * transaction that excludes other writers (sqlite: BEGIN IMMEDIATE), so a
 * read-check-write sequence inside it is atomic across worker processes.
 *
 * Artifacts cross this interface as jansson objects in API shape:
 *   base fields   id name owner status visibility version description
 *                 display_type_name tags metadata created_at updated_at
 *                 activated_at (ISO-8601 strings, "…Z") [type_name for all]
 *   custom fields their JSON values (null/absent = not set)
 *   blob fields   a blob object, or null; folders an object key -> blob
 * A blob object has the API keys (url size md5 sha1 sha256 external status
 * content_type) plus internal ones the engine strips from output:
 *   "store" ("file", "database", "external", ...), "location" (store key),
 *   "reserved" (bytes reserved while saving), "node", "incarnation",
 *   "heartbeat" (the owner of a saving record, owner.h), "prev" (the record
 *   a re-upload replaces, restored on failure), "temp" (temp file path),
 *   "verified_at", "verify_status" ("ok" | "changed" | "gone" | "error"),
 *   "verify_error".
 * Plus the internal artifact key "revision" (bumped on every write).
 *
 * Uses jansson and type.h (field layout).
 */
#ifndef GL_META_H
#define GL_META_H

#include <stdint.h>
#include <jansson.h>

#include "conf.h"
#include "err.h"
#include "type.h"

typedef struct gl_meta gl_meta;

/* Open the store named by [database] connection (sqlite:///PATH,
 * sqlite:////abs/path, a bare path, or postgresql://user:pass@host:port/db). An empty database gets the current
 * schema; an older one needs `glared db upgrade` (error says so). */
gl_meta *gl_meta_open(const gl_conf *conf, int upgrade, gl_err *err);
void gl_meta_close(gl_meta *m);
/* The worker's loop is ending: calls of coroutines waiting for the
 * database fail now with 503 (and later ones at once), so every coroutine
 * runs to its end; calls from the main stack still work, blocking.
 * Nothing to do for stores that never wait (sqlite). */
void gl_meta_stop(gl_meta *m);
int gl_meta_schema_version(gl_meta *m);
/* The file a sqlite [database] connection names (malloc'ed; backups). */
char *gl_meta_sqlite_path(const char *conn, gl_err *err);

/* ---- transactions -------------------------------------------------------- */
int gl_meta_begin(gl_meta *m, gl_err *err); /* write transaction */
int gl_meta_commit(gl_meta *m, gl_err *err);
void gl_meta_rollback(gl_meta *m);

/* ---- artifacts ------------------------------------------------------------ */

/* Semver sort key of a version (see docs/lua-runtime.md version_key). */
typedef struct gl_vkey {
	int64_t prefix;
	const char *suffix;
	const char *meta;
} gl_vkey;

/* Load one artifact with its blobs. type NULL: any type (the "all" view;
 * the object then carries type_name). Returns 0, 1 not found, -1 error. */
int gl_meta_get(gl_meta *m, const gl_type *type, const char *id, json_t **af,
		gl_err *err);

/* Write the artifact's row, tags and property rows (not its blobs).
 * insert: a new row (id must be unused, else 409 Conflict). Otherwise the
 * row is replaced only if its revision still equals af.revision, else 409
 * Conflict (changed or deleted meanwhile). The stored revision becomes
 * af.revision + 1 (the caller's object is updated). 0 ok, -1 error. */
int gl_meta_put(gl_meta *m, const gl_type *type, json_t *af, const gl_vkey *vk,
		int insert, gl_err *err);

/* Delete the artifact row with its tags, properties and blob records. */
int gl_meta_delete(gl_meta *m, const char *id, gl_err *err);

/* Artifacts in status "deleted" whose updated_at is before before_us
 * (the scrubber): array of {id, type_name}, oldest first, at most limit. */
int gl_meta_deleted(gl_meta *m, int64_t before_us, int limit, json_t **out,
		    gl_err *err);

/* Set status/updated_at only (delayed delete, scrubber). */
int gl_meta_set_status(gl_meta *m, const char *id, const char *status,
		       gl_err *err);

/* Is (type, name, version) taken in a scope? owner != NULL: that owner's
 * private artifacts; owner == NULL: public artifacts. Deleted artifacts and
 * exclude_id do not count. Version equality is on (prefix, suffix, meta).
 * Returns 1 taken, 0 free, -1 error. */
int gl_meta_scope_taken(gl_meta *m, const char *type_name, const char *name,
			const gl_vkey *vk, const char *owner,
			const char *exclude_id, gl_err *err);

/* Artifacts owned by a project (all statuses), optionally of one type. */
int gl_meta_count_artifacts(gl_meta *m, const char *owner,
			    const char *type_name, int64_t *n, gl_err *err);
/* Bytes of blob data of a project: sizes of active blobs plus reservations
 * of saving ones, optionally of one type. */
int gl_meta_used_bytes(gl_meta *m, const char *owner, const char *type_name,
		       int64_t *n, gl_err *err);

/* ---- blob records ------------------------------------------------------------
 * key is "" for a plain blob field, the dict key for a folder entry. */
int gl_meta_blob_set(gl_meta *m, const char *artifact_id, const char *field,
		     const char *key, const json_t *blob, gl_err *err);
int gl_meta_blob_delete(gl_meta *m, const char *artifact_id, const char *field,
			const char *key, gl_err *err);
/* How many blob records use this stored object (content addressing). */
int gl_meta_blob_refs(gl_meta *m, const char *store, const char *location,
		      int64_t *n, gl_err *err);
/* Every blob record in "saving" state: array of
 * {artifact_id, type_name, field, key, blob}. */
int gl_meta_saving_blobs(gl_meta *m, json_t **out, gl_err *err);
/* External blobs, least recently verified first: array of
 * {artifact_id, type_name, field, key, blob}, at most limit. */
int gl_meta_external_blobs(gl_meta *m, int limit, json_t **out, gl_err *err);

/* Stored objects waiting for a reference check before removal (a blob
 * released its data). The engine drains the queue in its own transaction. */
int gl_meta_gc_push(gl_meta *m, const char *store, const char *location,
		    gl_err *err);
int gl_meta_gc_list(gl_meta *m, int limit, json_t **out, gl_err *err);
int gl_meta_gc_pop(gl_meta *m, const char *store, const char *location,
		   gl_err *err);

/* The cleanup queue: work that must get done even if it fails at first,
 * retried with backoff by whichever node runs maintenance (maint.c) until
 * it succeeds. An entry is (kind, target, arg): "s3_abort" (target the S3
 * key, arg the multipart upload id) or "s3_delete" (target the S3 key, arg
 * ""). next_at (microseconds): not tried before then.
 * put: attempts 0 queues the entry unless it is queued already (its
 *   retry schedule stays); attempts > 0 records a failed try: insert, or
 *   update attempts, next_at and error (queued_at stays).
 * due: entries with next_at <= now_us, soonest first, at most limit:
 *   array of {kind, target, arg, attempts, next_at, queued_at, error}.
 * claim: move next_at from seen_next_at to until_us; 1 if this call did,
 *   0 if it was moved (claimed) or removed meanwhile.
 * del: remove the entry (no error if there is none). */
int gl_meta_cleanup_put(gl_meta *m, const char *kind, const char *target,
			const char *arg, int attempts, int64_t next_at,
			const char *error, gl_err *err);
int gl_meta_cleanup_due(gl_meta *m, int64_t now_us, int limit, json_t **out,
			gl_err *err);
int gl_meta_cleanup_claim(gl_meta *m, const char *kind, const char *target,
			  const char *arg, int64_t seen_next_at,
			  int64_t until_us, gl_err *err);
int gl_meta_cleanup_del(gl_meta *m, const char *kind, const char *target,
			const char *arg, gl_err *err);

/* ---- durability (docs/storage.md, "Durable commits") ----------------------
 * SQLite with [database] sqlite_durability = group (the default): once the
 * store is attached to the worker's event loop, gl_meta_commit returns
 * before its commit is durable, and a syncer thread makes the commits
 * durable many at a time. A reply that acknowledges a write waits for
 * gl_meta_when_durable. PostgreSQL commits are durable when they return
 * (these calls do nothing there), as are sqlite's when not attached. */
/* Bulk loading (the console's glare.batch, bench/load.lua): on = 1 opens
 * one write transaction in which each later begin / commit / rollback is
 * a savepoint, so a failed write still undoes itself alone; on = 0 commits
 * the whole (-1: it was rolled back), on = -1 rolls the whole back. Thousands of creates then write each B-tree page they share once
 * instead of once per create (the WAL of one create is ~60 pages). SQLite
 * only, not attached to a loop: 400 otherwise. */
int gl_meta_batch(gl_meta *m, int on, gl_err *err);
struct event_base;
int gl_meta_attach_loop(gl_meta *m, struct event_base *base, gl_err *err);
/* 0: every commit made so far is durable. 1: fn(arg, ok) runs on the loop
 * once they are (ok = 0: the sync failed, the commit may be lost). -1:
 * durability failed earlier (fn is not called). */
int gl_meta_when_durable(gl_meta *m, void (*fn)(void *arg, int ok), void *arg);
void gl_meta_durable_cancel(gl_meta *m, void *arg);
/* Block until every commit made so far is durable: before an action a
 * lost commit could not undo (removing data whose last reference the
 * commit dropped). */
int gl_meta_sync(gl_meta *m, gl_err *err);

/* ---- listing ---------------------------------------------------------------- */

/* clang-format off */
enum gl_filter_kind {
	GF_BASE,      /* base column (name, owner, version, created_at, ...) */
	GF_PROP,      /* custom scalar, or any element of a custom List */
	GF_DICT_KEY,  /* Dict has key (op eq) / any of keys (op in) */
	GF_DICT_VAL,  /* Dict entry `key` compared with op */
	GF_TAGS_ALL,  /* tags=a,b */
	GF_TAGS_ANY,  /* tags-any=a,b */
};
/* clang-format on */

typedef struct gl_filter {
	enum gl_filter_kind kind;
	int or_group;          /* 1: belongs to the OR group */
	const gl_field *field; /* NULL for tags filters */
	char *key;             /* GF_DICT_VAL */
	unsigned op;           /* GL_OP_* (one bit) */
	json_t *values;        /* array of coerced values (1 unless op in);
				* DateTime fields: integers (microseconds);
				* Boolean: true/false; version: strings */
	gl_vkey *vkeys;        /* version filters: one per value */
} gl_filter;

typedef struct gl_sort {
	const gl_field *field; /* base or custom scalar */
	int desc;
} gl_sort;

typedef struct gl_list_query {
	const gl_type *type;   /* the listed type (may be the all type) */
	const char *type_name; /* NULL for all */
	int see_all;           /* admin or list_all_artifacts */
	int public_only;       /* anonymous */
	const char *project;   /* own project (when !see_all) */
	const gl_filter *filters;
	int nfilters;
	const gl_sort *sorts; /* with tie-breakers already appended */
	int nsorts;
	const char *marker; /* id of the artifact to start after, or NULL
				   * (the engine checked it is visible) */
	int limit;
	int latest; /* version=latest */
} gl_list_query;

/* A page of artifacts (array, in order, each shaped as gl_meta_get returns
 * it, blobs included) and the total count of matches ignoring limit and
 * marker. */
int gl_meta_list(gl_meta *m, const gl_list_query *q, json_t **artifacts,
		 int64_t *total, gl_err *err);

/* ---- quotas -------------------------------------------------------------- */

/* Replace every quota of each listed project. projects: array of
 * {project_id, project_quotas: [{quota_name, quota_value}]}. */
int gl_meta_quotas_set(gl_meta *m, const json_t *projects, gl_err *err);
/* project NULL: all projects. Result: object project -> {name: value}. */
int gl_meta_quotas_get(gl_meta *m, const char *project, json_t **out,
		       gl_err *err);

/* ---- statements of other units ------------------------------------------------
 * The event outbox and the webhook subscriptions (events.c) keep their
 * SQL in their own unit, written once for both dialects: $1..$n
 * placeholders, CAST(.. AS BIGINT) where a parameter's type must be
 * spelled. sql must be a string constant: prepared statements are cached
 * by its address. args: a JSON array of scalars (integers, strings,
 * booleans as 0/1, null), or NULL. rows (optional): a new array with one
 * array per result row (integers, strings, null). changed (optional): rows
 * the statement wrote. A statement that does not start with SELECT is a
 * write: outside gl_meta_begin it runs in a write transaction of its own.
 * 0, or -1 + err. */
int gl_meta_exec(gl_meta *m, const char *sql, const json_t *args,
		 json_t **rows, int64_t *changed, gl_err *err);

/* ---- the "database" blob store (bytes inside the metadata DB) --------------- */
int gl_meta_data_put_file(gl_meta *m, const char *location, int fd,
			  int64_t size, gl_err *err);
/* Read up to len bytes at off; returns bytes read or -1. */
int64_t gl_meta_data_read(gl_meta *m, const char *location, int64_t off,
			  void *buf, int64_t len, gl_err *err);
int gl_meta_data_exists(gl_meta *m, const char *location, gl_err *err);
int gl_meta_data_delete(gl_meta *m, const char *location, gl_err *err);

#endif
