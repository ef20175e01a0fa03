/* meta_backend.h - what a metadata store backend provides (private to
 * meta.c and the backends; the engine sees only meta.h).
 *
 * A backend's connection struct begins with a `struct gl_meta` (the common
 * header), so meta.c can reach the ops table of any store through the one
 * opaque gl_meta pointer, and each backend converts the pointer back to its
 * own struct. Every op has exactly the semantics documented for the
 * gl_meta_* function of the same name in meta.h; meta.c only dispatches,
 * except put: a backend returns 1 when the revision check matched no row,
 * and meta.c turns that into the 409 the interface promises (one message).
 *
 * Backends: meta_sqlite.c (sqlite:// and bare paths), meta_pg.c
 * (postgresql:// and postgres://). What they have in common (row shaping,
 * parameter lists, the dialect-independent listing SQL) is written once,
 * in meta_sql.c (meta_sql.h).
 */
#ifndef GL_META_BACKEND_H
#define GL_META_BACKEND_H

#include "meta.h"

struct gl_meta_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(gl_meta *m);
	void (*stop)(gl_meta *m); /* optional: stores that never wait */
	int (*schema_version)(gl_meta *m);

	int (*begin)(gl_meta *m, gl_err *err);
	int (*commit)(gl_meta *m, gl_err *err);
	void (*rollback)(gl_meta *m);

	int (*get)(gl_meta *m, const gl_type *type, const char *id,
		   json_t **af, gl_err *err);
	int (*put)(gl_meta *m, const gl_type *type, json_t *af,
		   const gl_vkey *vk, int insert, gl_err *err);
	int (*del)(gl_meta *m, const char *id, gl_err *err);
	int (*deleted)(gl_meta *m, int64_t before_us, int limit, json_t **out,
		       gl_err *err);
	int (*set_status)(gl_meta *m, const char *id, const char *status,
			  gl_err *err);
	int (*scope_taken)(gl_meta *m, const char *type_name, const char *name,
			   const gl_vkey *vk, const char *owner,
			   const char *exclude_id, gl_err *err);
	int (*count_artifacts)(gl_meta *m, const char *owner,
			       const char *type_name, int64_t *n, gl_err *err);
	int (*used_bytes)(gl_meta *m, const char *owner, const char *type_name,
			  int64_t *n, gl_err *err);

	int (*blob_set)(gl_meta *m, const char *artifact_id, const char *field,
			const char *key, const json_t *blob, gl_err *err);
	int (*blob_delete)(gl_meta *m, const char *artifact_id,
			   const char *field, const char *key, gl_err *err);
	int (*blob_refs)(gl_meta *m, const char *store, const char *location,
			 int64_t *n, gl_err *err);
	int (*saving_blobs)(gl_meta *m, json_t **out, gl_err *err);
	int (*external_blobs)(gl_meta *m, int limit, json_t **out,
			      gl_err *err);

	int (*gc_push)(gl_meta *m, const char *store, const char *location,
		       gl_err *err);
	int (*gc_list)(gl_meta *m, int limit, json_t **out, gl_err *err);
	int (*gc_pop)(gl_meta *m, const char *store, const char *location,
		      gl_err *err);

	int (*cleanup_put)(gl_meta *m, const char *kind, const char *target,
			   const char *arg, int attempts, int64_t next_at,
			   const char *error, gl_err *err);
	int (*cleanup_due)(gl_meta *m, int64_t now_us, int limit, json_t **out,
			   gl_err *err);
	int (*cleanup_claim)(gl_meta *m, const char *kind, const char *target,
			     const char *arg, int64_t seen_next_at,
			     int64_t until_us, gl_err *err);
	int (*cleanup_del)(gl_meta *m, const char *kind, const char *target,
			   const char *arg, gl_err *err);

	int (*list)(gl_meta *m, const gl_list_query *q, json_t **artifacts,
		    int64_t *total, gl_err *err);

	int (*quotas_set)(gl_meta *m, const json_t *projects, gl_err *err);
	int (*quotas_get)(gl_meta *m, const char *project, json_t **out,
			  gl_err *err);

	int (*data_put_file)(gl_meta *m, const char *location, int fd,
			     int64_t size, gl_err *err);
	int64_t (*data_read)(gl_meta *m, const char *location, int64_t off,
			     void *buf, int64_t len, gl_err *err);
	int (*data_exists)(gl_meta *m, const char *location, gl_err *err);
	int (*data_delete)(gl_meta *m, const char *location, gl_err *err);

	int (*exec)(gl_meta *m, const char *sql, const json_t *args,
		    json_t **rows, int64_t *changed, gl_err *err);
	/* optional (NULL: commits are durable when they return) */
	int (*attach_loop)(gl_meta *m, struct event_base *base, gl_err *err);
	int (*when_durable)(gl_meta *m, void (*fn)(void *arg, int ok),
			    void *arg);
	void (*durable_cancel)(gl_meta *m, void *arg);
	int (*sync)(gl_meta *m, gl_err *err);
	/* optional (NULL: not offered) */
	int (*batch)(gl_meta *m, int on, gl_err *err);
};

/* The common header every backend's struct begins with. */
struct gl_meta {
	const struct gl_meta_ops *ops;
};

extern const struct gl_meta_ops gl_meta_sqlite_ops, gl_meta_pg_ops;

/* Open a store from the [database] connection string (the backend parses
 * its own URL form; see meta.h for upgrade). NULL + err on failure; the
 * error never repeats the URL, which may carry a password. */
gl_meta *gl_meta_sqlite_open(const char *conn, int upgrade,
			     const char *durability, gl_err *err);
gl_meta *gl_meta_pg_open(const char *conn, const gl_conf *conf, int upgrade,
			 gl_err *err);

#endif
