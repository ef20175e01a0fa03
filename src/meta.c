/* meta.c - the metadata store dispatcher (see meta.h, meta_backend.h).
 *
 * gl_meta_open picks the backend from the scheme of [database]
 * connection: postgresql:// or postgres:// is PostgreSQL (meta_pg.c);
 * sqlite://, a bare path, or any other URL goes to meta_sqlite.c, which
 * knows its own forms and refuses unknown schemes. Every other gl_meta_*
 * call is a plain jump through the store's ops table, so the engine never
 * knows which database it talks to.
 */
#include "meta_backend.h"

#include <string.h>

static int has_scheme(const char *s, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncmp(s, scheme, n) == 0 && strncmp(s + n, "://", 3) == 0;
}

gl_meta *gl_meta_open(const gl_conf *conf, int upgrade, gl_err *err)
{
	const char *conn = conf ? conf->db_connection : NULL;

	if (!conn || !*conn) {
		gl_fail(err, 500, NULL, "[database] connection is not set");
		return NULL;
	}
	if (has_scheme(conn, "postgresql") || has_scheme(conn, "postgres"))
		return gl_meta_pg_open(conn, conf, upgrade, err);
	return gl_meta_sqlite_open(conn, upgrade, conf->sqlite_durability,
				   err);
}

int gl_meta_attach_loop(gl_meta *m, struct event_base *base, gl_err *err)
{
	return m->ops->attach_loop ? m->ops->attach_loop(m, base, err) : 0;
}

int gl_meta_batch(gl_meta *m, int on, gl_err *err)
{
	if (!m->ops->batch) {
		gl_fail(err, 400, NULL, "batches need the sqlite store");
		return -1;
	}
	return m->ops->batch(m, on, err);
}

int gl_meta_when_durable(gl_meta *m, void (*fn)(void *arg, int ok), void *arg)
{
	return m->ops->when_durable ? m->ops->when_durable(m, fn, arg) : 0;
}

void gl_meta_durable_cancel(gl_meta *m, void *arg)
{
	if (m->ops->durable_cancel)
		m->ops->durable_cancel(m, arg);
}

int gl_meta_sync(gl_meta *m, gl_err *err)
{
	return m->ops->sync ? m->ops->sync(m, err) : 0;
}

void gl_meta_close(gl_meta *m)
{
	if (m)
		m->ops->close(m);
}

void gl_meta_stop(gl_meta *m)
{
	if (m && m->ops->stop)
		m->ops->stop(m);
}

int gl_meta_schema_version(gl_meta *m)
{
	return m->ops->schema_version(m);
}

int gl_meta_begin(gl_meta *m, gl_err *err)
{
	return m->ops->begin(m, err);
}

int gl_meta_commit(gl_meta *m, gl_err *err)
{
	return m->ops->commit(m, err);
}

void gl_meta_rollback(gl_meta *m)
{
	m->ops->rollback(m);
}

int gl_meta_get(gl_meta *m, const gl_type *type, const char *id, json_t **af,
		gl_err *err)
{
	return m->ops->get(m, type, id, af, err);
}

int gl_meta_put(gl_meta *m, const gl_type *type, json_t *af, const gl_vkey *vk,
		int insert, gl_err *err)
{
	int rc = m->ops->put(m, type, af, vk, insert, err);

	if (rc > 0)
		return gl_fail(err, 409, "Conflict",
			       "Artifact %s was changed by a concurrent request",
			       json_string_value(json_object_get(af, "id")));
	return rc;
}

int gl_meta_delete(gl_meta *m, const char *id, gl_err *err)
{
	return m->ops->del(m, id, err);
}

int gl_meta_deleted(gl_meta *m, int64_t before_us, int limit, json_t **out,
		    gl_err *err)
{
	return m->ops->deleted(m, before_us, limit, out, err);
}

int gl_meta_set_status(gl_meta *m, const char *id, const char *status,
		       gl_err *err)
{
	return m->ops->set_status(m, id, status, err);
}

int gl_meta_scope_taken(gl_meta *m, const char *type_name, const char *name,
			const gl_vkey *vk, const char *owner,
			const char *exclude_id, gl_err *err)
{
	return m->ops->scope_taken(m, type_name, name, vk, owner, exclude_id,
				   err);
}

int gl_meta_count_artifacts(gl_meta *m, const char *owner,
			    const char *type_name, int64_t *n, gl_err *err)
{
	return m->ops->count_artifacts(m, owner, type_name, n, err);
}

int gl_meta_used_bytes(gl_meta *m, const char *owner, const char *type_name,
		       int64_t *n, gl_err *err)
{
	return m->ops->used_bytes(m, owner, type_name, n, err);
}

int gl_meta_blob_set(gl_meta *m, const char *artifact_id, const char *field,
		     const char *key, const json_t *blob, gl_err *err)
{
	/* a record that failed to build (NULL) must not read as "no blob":
	 * only JSON null deletes */
	if (!blob)
		return gl_fail(err, 500, NULL,
			       "the record of blob %s could not "
			       "be built",
			       field);
	return m->ops->blob_set(m, artifact_id, field, key, blob, err);
}

int gl_meta_blob_delete(gl_meta *m, const char *artifact_id, const char *field,
			const char *key, gl_err *err)
{
	return m->ops->blob_delete(m, artifact_id, field, key, err);
}

int gl_meta_blob_refs(gl_meta *m, const char *store, const char *location,
		      int64_t *n, gl_err *err)
{
	return m->ops->blob_refs(m, store, location, n, err);
}

int gl_meta_saving_blobs(gl_meta *m, json_t **out, gl_err *err)
{
	return m->ops->saving_blobs(m, out, err);
}

int gl_meta_external_blobs(gl_meta *m, int limit, json_t **out, gl_err *err)
{
	return m->ops->external_blobs(m, limit, out, err);
}

int gl_meta_gc_push(gl_meta *m, const char *store, const char *location,
		    gl_err *err)
{
	return m->ops->gc_push(m, store, location, err);
}

int gl_meta_gc_list(gl_meta *m, int limit, json_t **out, gl_err *err)
{
	return m->ops->gc_list(m, limit, out, err);
}

int gl_meta_gc_pop(gl_meta *m, const char *store, const char *location,
		   gl_err *err)
{
	return m->ops->gc_pop(m, store, location, err);
}

int gl_meta_cleanup_put(gl_meta *m, const char *kind, const char *target,
			const char *arg, int attempts, int64_t next_at,
			const char *error, gl_err *err)
{
	return m->ops->cleanup_put(m, kind, target, arg, attempts, next_at,
				   error, err);
}

int gl_meta_cleanup_due(gl_meta *m, int64_t now_us, int limit, json_t **out,
			gl_err *err)
{
	return m->ops->cleanup_due(m, now_us, limit, out, err);
}

int gl_meta_cleanup_claim(gl_meta *m, const char *kind, const char *target,
			  const char *arg, int64_t seen_next_at,
			  int64_t until_us, gl_err *err)
{
	return m->ops->cleanup_claim(m, kind, target, arg, seen_next_at,
				     until_us, err);
}

int gl_meta_cleanup_del(gl_meta *m, const char *kind, const char *target,
			const char *arg, gl_err *err)
{
	return m->ops->cleanup_del(m, kind, target, arg, err);
}

int gl_meta_list(gl_meta *m, const gl_list_query *q, json_t **artifacts,
		 int64_t *total, gl_err *err)
{
	return m->ops->list(m, q, artifacts, total, err);
}

int gl_meta_quotas_set(gl_meta *m, const json_t *projects, gl_err *err)
{
	return m->ops->quotas_set(m, projects, err);
}

int gl_meta_quotas_get(gl_meta *m, const char *project, json_t **out,
		       gl_err *err)
{
	return m->ops->quotas_get(m, project, out, err);
}

int gl_meta_data_put_file(gl_meta *m, const char *location, int fd,
			  int64_t size, gl_err *err)
{
	return m->ops->data_put_file(m, location, fd, size, err);
}

int64_t gl_meta_data_read(gl_meta *m, const char *location, int64_t off,
			  void *buf, int64_t len, gl_err *err)
{
	return m->ops->data_read(m, location, off, buf, len, err);
}

int gl_meta_data_exists(gl_meta *m, const char *location, gl_err *err)
{
	return m->ops->data_exists(m, location, err);
}

int gl_meta_data_delete(gl_meta *m, const char *location, gl_err *err)
{
	return m->ops->data_delete(m, location, err);
}

int gl_meta_exec(gl_meta *m, const char *sql, const json_t *args,
		 json_t **rows, int64_t *changed, gl_err *err)
{
	return m->ops->exec(m, sql, args, rows, changed, err);
}
