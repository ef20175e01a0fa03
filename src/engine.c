/* engine.c - artifact rules: create, show, update (JSON-patch with the
 * lifecycle and visibility transitions), delete, scrub, quotas, schemas.
 *
 * Each operation follows the same shape: load what it needs (outside any
 * transaction; WAL readers do not block), check rules and run the type's
 * pre-hooks, then write inside one write transaction that re-checks what
 * a concurrent writer could have changed (revision, name/version scope,
 * quotas, saving blobs), and run post-hooks after the commit.
 */
#include "engine_priv.h"
#include "jlimits.h"
#include "jpatch.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const base_fields[] = {
	"id", "name", "owner", "status", "visibility", "version",
	"description", "display_type_name", "created_at", "updated_at",
	"activated_at", "tags", "metadata", NULL
};

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- life cycle of the engine ------------------------------------------- */

gl_engine *gl_engine_new(gl_conf *conf, gl_policy *pol,
			 struct event_base *base, gl_err *err)
{
	gl_engine *e = calloc(1, sizeof *e);

	if (!e) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	e->conf = conf;
	e->policy = pol;
	e->base = base;
	e->types = gl_types_load(conf, err);
	if (!e->types)
		goto fail;
	e->meta = gl_meta_open(conf, 0, err);
	if (!e->meta)
		goto fail;
	e->store = gl_store_open(conf->filesystem_store_datadir, err);
	if (!e->store)
		goto fail;
	e->events = gl_events_new(conf, e->meta, base, err);
	if (!e->events)
		goto fail;
	if (gl_blob_engine_init(e, err) < 0)
		goto fail;
	return e;
fail:
	gl_engine_free(e);
	return NULL;
}

void gl_engine_stop(gl_engine *e)
{
	if (e)
		gl_meta_stop(e->meta);
}

void gl_engine_free(gl_engine *e)
{
	if (!e)
		return;
	gl_blob_engine_free(e);
	gl_events_free(e->events);
	if (e->types)
		gl_types_unref(e->types);
	gl_meta_close(e->meta);
	if (e->store)
		gl_store_close(e->store);
	free(e);
}

int gl_engine_reload_types(gl_engine *e, gl_err *err)
{
	gl_types *nt = gl_types_load(e->conf, err);
	if (!nt)
		return -1;
	/* requests in flight hold their own reference to the old set */
	gl_types_unref(e->types);
	e->types = nt;
	return 0;
}

int gl_engine_recover(gl_engine *e, gl_err *err)
{
	return gl_maint_recover(e, err);
}

struct event_base *gl_engine_base(gl_engine *e) { return e->base; }
struct gl_events *gl_engine_events(gl_engine *e) { return e->events; }

int gl_engine_attach_loop(gl_engine *e, gl_err *err)
{
	return gl_meta_attach_loop(e->meta, e->base, err);
}

int gl_engine_when_durable(gl_engine *e, void (*fn)(void *arg, int ok),
			   void *arg)
{
	return gl_meta_when_durable(e->meta, fn, arg);
}

void gl_engine_durable_cancel(gl_engine *e, void *arg)
{
	gl_meta_durable_cancel(e->meta, arg);
}

const gl_conf *gl_engine_conf(gl_engine *e) { return e->conf; }

/* ---- shared helpers ------------------------------------------------------ */

void gl_af_clear(gl_af *af)
{
	json_decref(af->doc);
	if (af->ts)
		gl_types_unref(af->ts);
	memset(af, 0, sizeof *af);
}

int gl_engine_type(gl_engine *e, const char *name, gl_types **ts,
		   const gl_type **t, gl_err *err)
{
	*ts = gl_types_ref(e->types);
	*t = gl_types_find(*ts, name);
	if (!*t) {
		gl_types_unref(*ts);
		*ts = NULL;
		return gl_fail(err, 404, "TypeNotFound",
			       "Artifact type %s not found", name);
	}
	return 0;
}

json_t *gl_engine_ctx_json(const gl_ctx *ctx)
{
	json_t *roles = json_array();
	for (size_t i = 0; i < ctx->nroles; i++)
		json_array_append_new(roles, gl_json_text(ctx->roles[i]));
	return json_pack("{s:s?, s:s?, s:o, s:b, s:b, s:s}", "user_id",
			 ctx->user_id, "project_id", ctx->project_id, "roles",
			 roles, "is_admin", ctx->is_admin, "read_only",
			 ctx->read_only, "request_id", ctx->request_id);
}

json_t *gl_engine_target(const json_t *doc)
{
	json_t *t = json_object();
	static const char *const keys[] = { "owner", "visibility", "status",
					    "id", "name", NULL };
	for (int i = 0; keys[i]; i++) {
		const char *v = sget(doc, keys[i]);
		if (v)
			json_object_set_new(t, keys[i], gl_json_text(v));
	}
	if (sget(doc, "owner"))
		json_object_set_new(t, "project_id",
				    gl_json_text(sget(doc, "owner")));
	return t;
}

static int policy_ok(gl_engine *e, const gl_ctx *ctx, const char *rule,
		     const json_t *target)
{
	gl_creds cr;
	gl_ctx_creds(ctx, &cr);
	return gl_policy_check(e->policy, rule, &cr, target);
}

int gl_engine_policy(gl_engine *e, const gl_ctx *ctx, const char *rule,
		     const json_t *doc, gl_err *err)
{
	json_t *target = doc ? gl_engine_target(doc) : json_object();
	int ok;

	if (ctx->project_id && !json_object_get(target, "project_id"))
		json_object_set_new(target, "project_id",
				    gl_json_text(ctx->project_id));
	ok = policy_ok(e, ctx, rule, target);
	json_decref(target);
	if (!ok)
		return gl_fail(err, 403, "PolicyException",
			       "Policy check for %s failed with user "
			       "credentials.", rule);
	return 0;
}

int gl_engine_load(gl_engine *e, const gl_ctx *ctx, const char *type,
		   const char *id, int rw, gl_af *af, gl_err *err)
{
	const char *owner, *vis;
	int rc, visible;

	memset(af, 0, sizeof *af);
	if (gl_engine_type(e, type, &af->ts, &af->type, err) < 0)
		return -1;
	rc = gl_meta_get(e->meta, af->type->is_all ? NULL : af->type, id,
			 &af->doc, err);
	if (rc < 0)
		goto fail;
	if (rc > 0)
		goto notfound;
	owner = sget(af->doc, "owner");
	vis = sget(af->doc, "visibility");
	if (ctx->is_admin) {
		visible = 1;
	} else if (ctx->anonymous) {
		visible = !rw && gl_streq(vis, "public");
	} else {
		visible = gl_streq(owner, ctx->project_id) ||
			  gl_streq(vis, "public");
		if (!visible && !rw) {
			json_t *t = gl_engine_target(af->doc);
			visible = policy_ok(e, ctx, "artifact:get_any_artifact",
					    t);
			json_decref(t);
		}
	}
	if (!visible)
		goto notfound;
	return 0;
notfound:
	gl_fail(err, 404, "ArtifactNotFound", "Artifact with id=%s not found",
		id);
fail:
	gl_af_clear(af);
	return -1;
}

/* What the last check of an external blob found (blob.c's record_verify
 * writes it, with the verify_* event of the same outcome), in the shape
 * docs/types.md documents; nothing before the first check. */
static void blob_verification(json_t *o, const json_t *blob)
{
	const char *st = sget(blob, "verify_status");
	json_t *at = json_object_get(blob, "verified_at"), *v;
	char ts[32];

	if (!st || !json_is_integer(at))
		return;
	gl_iso8601(json_integer_value(at), ts);
	v = json_pack("{s:s, s:s}", "status", st, "checked_at", ts);
	if (strcmp(st, "ok") != 0 && sget(blob, "verify_error"))
		json_object_set(v, "detail", json_object_get(blob, "verify_error"));
	json_object_set_new(o, "verification", v);
}

json_t *gl_engine_blob_output(const gl_type *t, const char *id,
			      const char *field, const char *key,
			      const json_t *blob)
{
	static const char *const keys[] = { "size", "md5", "sha1", "sha256",
					    "status", "content_type", NULL };
	json_t *o = json_object();
	int external = json_is_true(json_object_get(blob, "external"));
	char url[4096];

	if (external) {
		json_object_set(o, "url", json_object_get(blob, "url"));
	} else {
		if (key)
			snprintf(url, sizeof url, "/artifacts/%s/%s/%s/%s",
				 t->name, id, field, key);
		else
			snprintf(url, sizeof url, "/artifacts/%s/%s/%s",
				 t->name, id, field);
		json_object_set_new(o, "url", gl_json_text(url));
	}
	for (int i = 0; keys[i]; i++) {
		json_t *v = json_object_get(blob, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	json_object_set_new(o, "external", json_boolean(external));
	/* the size of a blob being saved is its reservation: show null */
	if (gl_streq(sget(blob, "status"), "saving"))
		json_object_set(o, "size", json_null());
	if (external)
		blob_verification(o, blob);
	return o;
}

/* The artifact in API shape, before the type's output hook. */
static json_t *plain_output(const gl_type *t, const json_t *doc)
{
	json_t *out = json_object();
	const char *id = sget(doc, "id");

	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);

		if (f->kind == GK_BLOB) {
			json_object_set_new(out, f->name,
					    json_is_object(v)
						    ? gl_engine_blob_output(
							      t, id, f->name,
							      NULL, v)
						    : json_null());
		} else if (f->kind == GK_FOLDER) {
			json_t *fo = json_object(), *b;
			const char *k;
			if (json_is_object(v))
				json_object_foreach(v, k, b)
					json_object_set_new(
						fo, k,
						gl_engine_blob_output(
							t, id, f->name, k, b));
			json_object_set_new(out, f->name, fo);
		} else if (v && f->kind == GK_DATETIME && json_is_string(v) &&
			   strchr(json_string_value(v), '.')) {
			/* stored with microseconds, shown to the second */
			char ts[40];
			snprintf(ts, sizeof ts, "%.19sZ", json_string_value(v));
			json_object_set_new(out, f->name, gl_json_text(ts));
		} else if (v) {
			json_object_set(out, f->name, v);
		} else {
			json_object_set_new(out, f->name,
					    f->def ? json_deep_copy(f->def)
						   : json_null());
		}
	}
	if (t->is_all && sget(doc, "type_name"))
		json_object_set(out, "type_name", json_object_get(doc, "type_name"));
	return out;
}

json_t *gl_engine_output(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
			 const gl_type *t, const json_t *doc, gl_err *err)
{
	json_t *out;

	if (t->is_all) {
		/* formatted by the artifact's own type */
		const gl_type *rt = gl_types_find(ts, sget(doc, "type_name"));
		out = plain_output(t, doc);
		if (out && rt && rt->has_format_all)
			out = gl_types_output(ts, gl_ctx_lua(ctx), rt, out, 1,
					      err);
	} else {
		out = plain_output(t, doc);
		if (out && t->has_to_dict)
			out = gl_types_output(ts, gl_ctx_lua(ctx), t, out, 0,
					      err);
	}
	if (!out && !err->status)
		gl_fail(err, 500, NULL, "out of memory");
	return out;
}

json_t *gl_engine_blob_args(const char *field, const char *key,
			    const json_t *extra)
{
	json_t *a = json_array();

	if (!a)
		gl_oom();
	json_array_append_new(a, gl_json_text(field));
	json_array_append_new(a, gl_json_text(key));
	if (extra)
		json_array_append(a, (json_t *)extra);
	return a;
}

int gl_engine_hook(gl_engine *e, gl_types *ts, const gl_type *t,
		   enum gl_hook h, const gl_ctx *ctx, const json_t *doc,
		   const json_t *args, json_t **af_out, gl_err *err)
{
	json_t *cj, *af;
	int rc;

	if (af_out)
		*af_out = NULL;
	if (!(t->hooks & (1u << h)))
		return 0;
	cj = gl_engine_ctx_json(ctx);
	af = plain_output(t, doc);
	rc = gl_types_hook(ts, gl_ctx_lua(ctx), t, h, cj, af, args, af_out,
			   err);
	json_decref(cj);
	json_decref(af);
	return rc;
}

int gl_engine_json_ok(gl_engine *e, const json_t *v, const char *what,
		      gl_err *err)
{
	gl_jlimits lim;

	gl_jlimits_of(e->conf, &lim);
	return gl_jlimits_check(v, &lim, what, err);
}

/* The change rules (docs/glare-contract.md "Change rules") for an artifact
 * going from status before
 * to status after in one request: a field may change when the artifact
 * ends drafted or active, an immutable one only while it was drafted (set
 * and activate in one PATCH). */
static int change_rule(const gl_type *t, const char *before,
		       const char *after, const char *field, gl_err *err)
{
	const gl_field *f = gl_type_field(t, field);

	if (!f)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown field '%s' for artifact type %s", field,
			       t->name);
	if (!gl_streq(after, "drafted") && !gl_streq(after, "active"))
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change fields of an artifact in "
			       "status '%s'", after ? after : "?");
	if (f->system)
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change system field '%s'", field);
	if (!gl_streq(before, "drafted") && !f->mutable_)
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change immutable field '%s' of an "
			       "active artifact", field);
	return 0;
}

int gl_engine_change_allowed(const gl_type *t, const json_t *doc,
			     const char *field, gl_err *err)
{
	const char *st = sget(doc, "status");
	return change_rule(t, st, st, field, err);
}

int gl_engine_vkey(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		   const char *version, gl_vkey *vk, char **suffix, char **meta,
		   gl_err *err)
{
	if (gl_types_version_key(ts, gl_ctx_lua(ctx), version, &vk->prefix,
				 suffix, meta, err) < 0)
		return -1;
	vk->suffix = *suffix;
	vk->meta = *meta;
	return 0;
}

int gl_engine_quota(gl_engine *e, const char *project, const char *name,
		    const char *type, int64_t *limit, gl_err *err)
{
	char qname[512];
	json_t *q = NULL, *v;
	const gl_type_conf *tc = type ? gl_conf_type(e->conf, type) : NULL;

	if (type)
		snprintf(qname, sizeof qname, "%s:%s", name, type);
	else
		snprintf(qname, sizeof qname, "%s", name);
	if (project && gl_meta_quotas_get(e->meta, project, &q, err) < 0)
		return -1;
	v = q ? json_object_get(json_object_get(q, project), qname) : NULL;
	if (json_is_integer(v)) {
		*limit = json_integer_value(v);
	} else if (!strcmp(name, "max_artifact_number")) {
		*limit = tc ? tc->max_artifact_number : e->conf->max_artifact_number;
	} else {
		*limit = tc ? tc->max_uploaded_data : e->conf->max_uploaded_data;
	}
	json_decref(q);
	return 0;
}

void gl_engine_gc(gl_engine *e)
{
	json_t *list = NULL, *it;
	size_t i;
	gl_err err = { 0 };
	int s3 = 0;

	if (gl_meta_gc_list(e->meta, 256, &list, &err) < 0 ||
	    json_array_size(list) == 0) {
		json_decref(list);
		return;
	}
	/* the reference check and the removal happen under the write lock,
	 * so no concurrent upload can commit a new reference in between;
	 * and the commits that dropped the last references are made durable
	 * first (group commit: gl_meta_sync), so none can come back */
	if (gl_meta_begin(e->meta, &err) < 0) {
		json_decref(list);
		return;
	}
	if (gl_meta_sync(e->meta, &err) < 0) {
		gl_warn("gc: %s", err.msg);
		gl_meta_rollback(e->meta);
		json_decref(list);
		return;
	}
	json_array_foreach(list, i, it) {
		const char *store = sget(it, "store"), *loc = sget(it, "location");
		int64_t refs = 0;
		if (gl_meta_blob_refs(e->meta, store, loc, &refs, &err) < 0)
			break;
		if (refs == 0) {
			if (gl_streq(store, "file"))
				gl_store_remove(e->store, loc, &err);
			else if (gl_streq(store, "database"))
				gl_meta_data_delete(e->meta, loc, &err);
			else if (gl_streq(store, "s3")) {
				/* the network call is the cleanup queue's
				 * (maint.c): S3 keys are never reused, so the
				 * delete may wait for it */
				if (gl_cleanup_queue(e, "s3_delete", loc, "", 0,
						     &err) < 0)
					break;
				s3 = 1;
			}
		}
		gl_meta_gc_pop(e->meta, store, loc, &err);
	}
	if (gl_meta_commit(e->meta, &err) < 0) {
		gl_warn("gc: %s", err.msg);
		gl_meta_rollback(e->meta);
		s3 = 0;
	}
	json_decref(list);
	if (s3)
		gl_cleanup_kick(e);
}

/* ---- schemas --------------------------------------------------------------- */

int gl_engine_schemas(gl_engine *e, const gl_ctx *ctx, const char *type,
		      json_t **out, gl_err *err)
{
	gl_types *ts;
	json_t *all;

	if (gl_engine_policy(e, ctx, "artifact:type_list", NULL, err) < 0)
		return -1;
	all = json_object();
	if (type) {
		const gl_type *t;
		if (gl_engine_type(e, type, &ts, &t, err) < 0) {
			json_decref(all);
			return -1;
		}
		json_t *sch = gl_types_schema(ts, gl_ctx_lua(ctx), t, err);
		if (!sch)
			goto fail;
		json_object_set_new(all, t->name, sch);
	} else {
		ts = gl_types_ref(e->types);
		for (int i = 0; i < gl_types_count(ts); i++) {
			const gl_type *t = gl_types_at(ts, i);
			json_t *sch = gl_types_schema(ts, gl_ctx_lua(ctx), t,
						      err);
			if (!sch)
				goto fail;
			json_object_set_new(all, t->name, sch);
		}
	}
	gl_types_unref(ts);
	*out = json_pack("{s:o}", "schemas", all);
	return 0;
fail:
	gl_types_unref(ts);
	json_decref(all);
	return -1;
}

/* ---- show ---------------------------------------------------------------- */

int gl_engine_show(gl_engine *e, const gl_ctx *ctx, const char *type,
		   const char *id, json_t **out, gl_err *err)
{
	gl_af af;

	if (gl_engine_policy(e, ctx, "artifact:get", NULL, err) < 0)
		return -1;
	if (gl_engine_load(e, ctx, type, id, 0, &af, err) < 0)
		return -1;
	*out = gl_engine_output(e, ctx, af.ts, af.type, af.doc, err);
	gl_af_clear(&af);
	return *out ? 0 : -1;
}

/* ---- create ---------------------------------------------------------------- */

static int is_base(const char *k)
{
	for (int i = 0; base_fields[i]; i++)
		if (!strcmp(base_fields[i], k))
			return 1;
	return 0;
}

/* UTF-8 in stored strings: valid, and no 4-byte sequences (Glare's
 * MySQL heritage; clients rely on the 400); no U+0000 (a hook's value
 * may carry one; see jlimits.h). */
static int check_strings(const json_t *v, const char *field, gl_err *err)
{
	size_t i;
	const char *k;
	json_t *x;

	if (json_is_string(v)) {
		if (memchr(json_string_value(v), '\0', json_string_length(v)))
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s': U+0000 is not allowed in a "
				       "string", field);
		if (!gl_utf8_valid(json_string_value(v), json_string_length(v), 0))
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s': 4-byte UTF-8 characters are "
				       "not allowed", field);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (check_strings(x, field, err) < 0)
				return -1;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			if (!gl_utf8_valid(k, strlen(k), 0))
				return gl_fail(err, 400, "BadRequest",
					       "Field '%s': 4-byte UTF-8 "
					       "characters are not allowed",
					       field);
			if (check_strings(x, field, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* An internal link must name an artifact the caller can see (external
 * http(s) links are not fetched: that would be an SSRF hole in every
 * PATCH; registration of external blobs has its own guarded fetch). */
static int check_link(gl_engine *e, const gl_ctx *ctx, const char *field,
		      const json_t *v, gl_err *err)
{
	const char *s = json_string_value(v), *id;
	gl_af target;
	char type[256];

	if (s && !strncasecmp(s, "http", 4)) {
		char why[128];
		if (gl_url_check(s, json_string_length(v), why, sizeof why) < 0)
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s': link %.200s: %s", field, s,
				       why);
		return 0;
	}
	if (!s || strncmp(s, "/artifacts/", 11) != 0)
		return 0;
	id = strchr(s + 11, '/');
	if (!id || id - (s + 11) >= (long)sizeof type)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s': link %s is not /artifacts/<type>/<id>",
			       field, s);
	snprintf(type, sizeof type, "%.*s", (int)(id - (s + 11)), s + 11);
	if (gl_engine_load(e, ctx, "all", id + 1, 0, &target, err) < 0)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s': link %s does not point to an "
			       "artifact you can see", field, s);
	gl_af_clear(&target);
	return 0;
}

static int check_links(gl_engine *e, const gl_ctx *ctx, const gl_field *f,
		       const json_t *v, gl_err *err)
{
	size_t i;
	const char *k;
	json_t *x;

	if (f->kind == GK_LINK)
		return check_link(e, ctx, f->name, v, err);
	if (f->elem != GK_LINK || (f->kind != GK_LIST && f->kind != GK_DICT))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (check_link(e, ctx, f->name, x, err) < 0)
				return -1;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x)
			if (check_link(e, ctx, f->name, x, err) < 0)
				return -1;
	}
	return 0;
}

/* Coerce v for field f into doc (null: the field is unset). */
static int set_field(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		     const gl_type *t, json_t *doc, const char *name, json_t *v,
		     gl_err *err)
{
	json_t *c = NULL;
	const gl_field *f = gl_type_field(t, name);

	if (check_strings(v, name, err) < 0)
		return -1;
	/* sizes first, counted in C: Lua would convert all of it */
	if (f && gl_jlimits_field(t, f, v, err) < 0)
		return -1;
	if (gl_types_coerce(ts, gl_ctx_lua(ctx), t, name, v, &c, err) < 0)
		return -1;
	if (f && check_links(e, ctx, f, c, err) < 0) {
		json_decref(c);
		return -1;
	}
	if (json_is_null(c) && !is_base(name)) {
		/* unset custom field: reads show the default
		 * (docs/glare-contract.md "Field types and coercion") */
		json_object_del(doc, name);
		json_decref(c);
	} else {
		json_object_set_new(doc, name, c);
	}
	return 0;
}

static int check_quota_count(gl_engine *e, const char *project,
			     const char *type, gl_err *err)
{
	const char *scopes[2] = { NULL, type };

	for (int i = 0; i < 2; i++) {
		int64_t limit, n;
		if (gl_engine_quota(e, project, "max_artifact_number", scopes[i],
				    &limit, err) < 0)
			return -1;
		if (limit < 0)
			continue;
		if (gl_meta_count_artifacts(e->meta, project, scopes[i], &n,
					    err) < 0)
			return -1;
		if (n >= limit)
			return gl_fail(err, 403, "Forbidden",
				       "Maximum number of artifacts%s%s (%lld) "
				       "reached for project %s",
				       scopes[i] ? " of type " : "",
				       scopes[i] ? scopes[i] : "",
				       (long long)limit, project);
	}
	return 0;
}

static void stamp(json_t *doc, const char *key, int64_t us)
{
	char ts[40];
	gl_iso8601_us(us, ts);
	json_object_set_new(doc, key, gl_json_text(ts));
}

/* Apply defaults and check non-nullable fields. */
static int complete_doc(const gl_type *t, json_t *doc, gl_err *err)
{
	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);
		if (f->kind == GK_BLOB || f->kind == GK_FOLDER || f->base)
			continue;
		if ((!v || json_is_null(v)) && f->def) {
			json_object_set_new(doc, f->name, json_deep_copy(f->def));
		} else if ((!v || json_is_null(v)) && !f->nullable) {
			return gl_fail(err, 400, "BadRequest",
				       "Type: %s. Field: %s. Exception: a value "
				       "is required (the field is not nullable "
				       "and has no default)", t->name, f->name);
		}
	}
	return 0;
}

static int create_allowed(gl_engine *e, const gl_ctx *ctx,
			  const gl_type *t, gl_err *err)
{
	if (t->is_all)
		return gl_fail(err, 403, "Forbidden",
			       "Artifacts cannot be created through the all type");
	if (ctx->read_only || ctx->anonymous || !ctx->project_id)
		return gl_fail(err, 403, "Forbidden",
			       "Creating artifacts is forbidden to anonymous "
			       "users");
	return gl_engine_policy(e, ctx, "artifact:create", NULL, err);
}

int gl_engine_precheck_create(gl_engine *e, const gl_ctx *ctx,
			      const char *type, gl_err *err)
{
	gl_types *ts;
	const gl_type *t;
	int rc;

	if (gl_engine_type(e, type, &ts, &t, err) < 0)
		return -1;
	rc = create_allowed(e, ctx, t, err);
	gl_types_unref(ts);
	return rc;
}

int gl_engine_precheck_update(gl_engine *e, const gl_ctx *ctx,
			      const char *type, const char *id, gl_err *err)
{
	gl_af af;
	int rc = -1;

	if (gl_engine_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	if (af.type->is_all)
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be changed through the all type");
	else
		rc = gl_engine_policy(e, ctx, "artifact:update", af.doc, err);
	gl_af_clear(&af);
	return rc;
}

int gl_engine_create(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const json_t *body, json_t **out, gl_err *err)
{
	gl_types *ts = NULL;
	const gl_type *t;
	json_t *doc = NULL, *v, *hooked = NULL;
	const char *k;
	char uuid[37], *suffix = NULL, *vmeta = NULL;
	gl_vkey vk;
	int64_t now;
	int rc = -1, in_tx = 0;

	/* the body's shape first, as Glare's deserializer; its size too */
	if (!json_is_object(body))
		return gl_fail(err, 400, "BadRequest",
			       "Unexpected body type: a JSON object is expected");
	if (gl_engine_json_ok(e, body, "The request body", err) < 0)
		return -1;
	if (gl_engine_type(e, type, &ts, &t, err) < 0)
		return -1;
	if (create_allowed(e, ctx, t, err) < 0)
		goto out;
	/* keys that may never be given, then field rules, before values */
	json_object_foreach((json_t *)body, k, v) {
		const gl_field *f = gl_type_field(t, k);
		if (!strcmp(k, "status") || !strcmp(k, "visibility") ||
		    !strcmp(k, "display_type_name")) {
			gl_fail(err, 400, "BadRequest",
				"Field '%s' cannot be set at creation", k);
			goto out;
		}
		if (!f) {
			gl_fail(err, 400, "BadRequest",
				"Unknown field '%s' for artifact type %s", k,
				t->name);
			goto out;
		}
		if (f->system) {
			gl_fail(err, 403, "Forbidden",
				"Forbidden to specify system field '%s'", k);
			goto out;
		}
		if (f->kind == GK_BLOB || f->kind == GK_FOLDER) {
			gl_fail(err, 400, "BadRequest",
				"Blob field '%s' cannot be set at creation; "
				"upload it", k);
			goto out;
		}
	}
	v = json_object_get(body, "name");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		gl_fail(err, 400, "BadRequest",
			"Field 'name' is required and cannot be empty");
		goto out;
	}

	doc = json_object();
	json_object_foreach((json_t *)body, k, v)
		if (set_field(e, ctx, ts, t, doc, k, v, err) < 0)
			goto out;
	if (!json_object_get(doc, "version"))
		json_object_set_new(doc, "version", json_string("0.0.0"));
	if (complete_doc(t, doc, err) < 0)
		goto out;
	gl_uuid4(uuid);
	now = gl_now_us();
	json_object_set_new(doc, "id", gl_json_text(uuid));
	json_object_set_new(doc, "owner", gl_json_text(ctx->project_id));
	json_object_set_new(doc, "status", json_string("drafted"));
	json_object_set_new(doc, "visibility", json_string("private"));
	json_object_set_new(doc, "display_type_name",
			    t->display_name ? gl_json_text(t->display_name)
					    : json_null());
	stamp(doc, "created_at", now);
	stamp(doc, "updated_at", now);
	json_object_set_new(doc, "activated_at", json_null());
	if (!json_object_get(doc, "description"))
		json_object_set_new(doc, "description", json_string(""));
	if (!json_object_get(doc, "tags"))
		json_object_set_new(doc, "tags", json_array());
	if (!json_object_get(doc, "metadata"))
		json_object_set_new(doc, "metadata", json_object());

	if (gl_engine_hook(e, ts, t, GL_HOOK_PRE_CREATE, ctx, doc, NULL,
			   &hooked, err) < 0)
		goto out;
	if (hooked) {
		/* take what the hook changed in user fields, coerced again */
		json_object_foreach(hooked, k, v) {
			const gl_field *f = gl_type_field(t, k);
			if (!f || f->system || f->kind == GK_BLOB ||
			    f->kind == GK_FOLDER || !strcmp(k, "status") ||
			    !strcmp(k, "visibility"))
				continue;
			if (json_equal(v, json_object_get(doc, k)))
				continue;
			if (set_field(e, ctx, ts, t, doc, k, v, err) < 0)
				goto out;
		}
	}
	if (gl_engine_vkey(e, ctx, ts, sget(doc, "version"), &vk, &suffix,
			   &vmeta, err) < 0)
		goto out;

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	rc = gl_meta_scope_taken(e->meta, t->name, sget(doc, "name"), &vk,
				 ctx->project_id, NULL, err);
	if (rc < 0)
		goto out;
	if (rc > 0) {
		rc = gl_fail(err, 409, "Conflict",
			     "Artifact with name=%s and version=%s already "
			     "exists for this project", sget(doc, "name"),
			     sget(doc, "version"));
		goto out;
	}
	if (check_quota_count(e, ctx->project_id, t->name, err) < 0 ||
	    gl_meta_put(e->meta, t, doc, &vk, 1, err) < 0 ||
	    gl_events_emit(e->events, "create", t->name, doc, NULL, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0) {
		rc = -1;
		goto out;
	}
	in_tx = 0;
	rc = 0;
	gl_info("artifact %s/%s created by %s", t->name, uuid, ctx->project_id);
	if (gl_engine_hook(e, ts, t, GL_HOOK_POST_CREATE, ctx, doc, NULL, NULL,
			   err) < 0) {
		/* the artifact exists; report the hook's error (Glare does) */
		rc = -1;
		goto out;
	}
	*out = gl_engine_output(e, ctx, ts, t, doc, err);
	if (!*out)
		rc = -1;
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(hooked);
	json_decref(doc);
	free(suffix);
	free(vmeta);
	gl_types_unref(ts);
	return rc;
}

/* ---- update ------------------------------------------------------------------ */

enum action { A_ACTIVATE, A_REACTIVATE, A_DEACTIVATE, A_PUBLISH };

static const struct {
	const char *rule, *event;
	enum gl_hook pre, post;
} actions[] = {
	[A_ACTIVATE] = { "artifact:activate", "activate", GL_HOOK_PRE_ACTIVATE,
			 GL_HOOK_POST_ACTIVATE },
	[A_REACTIVATE] = { "artifact:reactivate", "reactivate",
			   GL_HOOK_PRE_REACTIVATE, GL_HOOK_POST_REACTIVATE },
	[A_DEACTIVATE] = { "artifact:deactivate", "deactivate",
			   GL_HOOK_PRE_DEACTIVATE, GL_HOOK_POST_DEACTIVATE },
	[A_PUBLISH] = { "artifact:publish", "publish", GL_HOOK_PRE_PUBLISH,
			GL_HOOK_POST_PUBLISH },
};

/* Which top-level fields a patch touches, in patch order; rejects the
 * operations Glare never allows before anything is applied. */
static int patch_fields(const gl_type *t, const json_t *patch,
			const gl_jpatch_limits *lim, json_t *names,
			gl_err *err)
{
	size_t i;
	json_t *op;

	if (gl_jpatch_check(patch, lim, err) < 0)
		return -1;
	json_array_foreach(patch, i, op) {
		const char *paths[2] = { sget(op, "path"), sget(op, "from") };
		const char *opn = sget(op, "op");
		for (int p = 0; p < 2; p++) {
			json_t *toks;
			const char *field;
			const gl_field *f;
			if (!paths[p])
				continue;
			toks = gl_jpointer_split(paths[p], err);
			if (!toks)
				return -1;
			field = json_string_value(json_array_get(toks, 0));
			f = gl_type_field(t, field);
			if (!f) {
				gl_fail(err, 400, "BadRequest",
					"Unknown field '%s' for artifact type %s",
					field, t->name);
				json_decref(toks);
				return -1;
			}
			if (f->kind == GK_BLOB || f->kind == GK_FOLDER) {
				gl_fail(err, 400, "BadRequest",
					"Blob field '%s' cannot be changed with "
					"PATCH; use the blob API", field);
				json_decref(toks);
				return -1;
			}
			if (json_array_size(toks) == 1 &&
			    (!strcmp(opn, "remove") ||
			     (p == 1 && !strcmp(opn, "move")))) {
				gl_fail(err, 400, "BadRequest",
					"Field '%s' cannot be removed; set it "
					"to null instead", field);
				json_decref(toks);
				return -1;
			}
			if (f->system) {
				gl_fail(err, 403, "Forbidden",
					"Forbidden to change system field '%s'",
					field);
				json_decref(toks);
				return -1;
			}
			int seen = 0;
			size_t j;
			json_t *n;
			json_array_foreach(names, j, n)
				if (!strcmp(json_string_value(n), field))
					seen = 1;
			if (!seen && strcmp(opn, "test") != 0)
				json_array_append_new(names, gl_json_text(field));
			json_decref(toks);
		}
	}
	return 0;
}

static int any_blob_saving(const gl_type *t, const json_t *doc)
{
	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name), *b;
		const char *k;
		if (f->kind == GK_BLOB && json_is_object(v) &&
		    gl_streq(sget(v, "status"), "saving"))
			return 1;
		if (f->kind == GK_FOLDER && json_is_object(v))
			json_object_foreach(v, k, b)
				if (gl_streq(sget(b, "status"), "saving"))
					return 1;
	}
	return 0;
}

/* Fields that must be set before activation (docs/glare-contract.md
 * "Status machine"). A folder's
 * default {} counts as set, as in Glare. */
static int missing_required(const gl_type *t, const json_t *doc, char *buf,
			    size_t len)
{
	int n = 0;

	buf[0] = '\0';
	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);
		if (!f->required_on_activate || f->kind == GK_FOLDER)
			continue;
		if (v && !json_is_null(v))
			continue;
		if (!v && f->kind != GK_BLOB && f->def && !json_is_null(f->def))
			continue;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
			 n ? ", " : "", f->name);
		n++;
	}
	return n;
}

/* After each patch operation the field it touched is still within its
 * type's limits (a patch cannot build what a body could not carry). */
static int patch_step(void *ctx, json_t *view, const char *field,
		      gl_err *err)
{
	const gl_type *t = ctx;
	const gl_field *f = gl_type_field(t, field);
	json_t *v = json_object_get(view, field);

	return f && v ? gl_jlimits_field(t, f, v, err) : 0;
}

/* The limits of a patch on an artifact of type t (NULL: not known yet). */
static void patch_limits(gl_engine *e, const gl_type *t,
			 gl_jpatch_limits *pl)
{
	pl->max_ops = e->conf->max_patch_operations;
	pl->max_depth = e->conf->max_json_depth;
	pl->max_values = e->conf->max_json_values;
	pl->max_bytes = e->conf->max_json_body;
	pl->check = t ? patch_step : NULL;
	pl->ctx = (void *)t;
}

/* Status and visibility changes: allowed? which actions, in order?
 * *noop_activate: the patch asked for active on an active artifact (the
 * activate policy and pre-hook still run, nothing is written). */
static int transition(gl_engine *e, const gl_ctx *ctx, const gl_type *t,
		      const json_t *old, json_t *nw, int st_touched,
		      int vis_touched, int *acts, int *nacts,
		      int *noop_activate, gl_err *err)
{
	const char *os = sget(old, "status"), *ov = sget(old, "visibility");
	json_t *sv = json_object_get(nw, "status");
	json_t *vv = json_object_get(nw, "visibility");
	const char *ns, *nv;
	char miss[1024];

	*noop_activate = 0;
	if (st_touched) {
		if (!json_is_string(sv))
			return gl_fail(err, 400, "BadRequest",
				       "Status must be one of drafted, active, "
				       "deactivated");
		ns = json_string_value(sv);
		if (strcmp(ns, "drafted") && strcmp(ns, "active") &&
		    strcmp(ns, "deactivated") && strcmp(ns, "deleted"))
			return gl_fail(err, 400, "BadRequest",
				       "Unknown status '%s'", ns);
		if (!strcmp(ns, "deleted"))
			return gl_fail(err, 403, "Forbidden",
				       "Status 'deleted' cannot be set with "
				       "PATCH: use DELETE");
		if (!strcmp(os, "deleted"))
			return gl_fail(err, 403, "Forbidden",
				       "A deleted artifact cannot change");
		if (!strcmp(ns, os)) {
			*noop_activate = !strcmp(ns, "active");
		} else if (!strcmp(ns, "drafted")) {
			return gl_fail(err, 403, "Forbidden",
				       "An artifact cannot go back to drafted");
		} else if (!strcmp(ns, "active")) {
			acts[(*nacts)++] = !strcmp(os, "deactivated")
						   ? A_REACTIVATE : A_ACTIVATE;
		} else { /* deactivated */
			if (!strcmp(os, "drafted"))
				return gl_fail(err, 403, "Forbidden",
					       "A drafted artifact cannot be "
					       "deactivated");
			acts[(*nacts)++] = A_DEACTIVATE;
		}
	}
	ns = sget(nw, "status");
	if (vis_touched) {
		if (!json_is_string(vv) ||
		    (strcmp(json_string_value(vv), "private") &&
		     strcmp(json_string_value(vv), "public")))
			return gl_fail(err, 400, "BadRequest",
				       "Visibility must be 'private' or "
				       "'public'");
		nv = json_string_value(vv);
		if (strcmp(nv, ov) != 0) {
			if (!strcmp(nv, "private"))
				return gl_fail(err, 403, "Forbidden",
					       "A public artifact cannot be made "
					       "private");
			if (!gl_streq(ns, "active"))
				return gl_fail(err, 403, "Forbidden",
					       "Only active artifacts can be "
					       "published");
			acts[(*nacts)++] = A_PUBLISH;
		}
	}
	if (*noop_activate &&
	    gl_engine_policy(e, ctx, actions[A_ACTIVATE].rule, old, err) < 0)
		return -1;
	for (int i = 0; i < *nacts; i++)
		if (gl_engine_policy(e, ctx, actions[acts[i]].rule, old, err) < 0)
			return -1;
	if (*nacts && (acts[0] == A_ACTIVATE) &&
	    missing_required(t, nw, miss, sizeof miss))
		return gl_fail(err, 403, "Forbidden",
			       "Artifact cannot be activated: required fields "
			       "are not set: %s", miss);
	return 0;
}

int gl_engine_update(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, const json_t *patch, json_t **out,
		     gl_err *err)
{
	gl_af af;
	gl_jpatch_limits pl;
	json_t *names = NULL, *view = NULL, *doc = NULL, *n;
	const gl_type *t;
	int acts[4], nacts = 0, rc = -1, in_tx = 0, changed = 0, noop_act;
	int st_touched = 0, vis_touched = 0;
	char *suffix = NULL, *vmeta = NULL;
	const char *st_after;
	gl_vkey vk;
	size_t i;

	/* a malformed or oversized patch is 400 before the artifact is
	 * looked up (and before the pre_update hook sees it) */
	patch_limits(e, NULL, &pl);
	if (gl_engine_json_ok(e, patch, "The patch", err) < 0 ||
	    gl_jpatch_check(patch, &pl, err) < 0)
		return -1;
	if (gl_engine_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	t = af.type;
	patch_limits(e, t, &pl);
	if (t->is_all) {
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be changed through the all type");
		goto out;
	}
	if (gl_engine_policy(e, ctx, "artifact:update", af.doc, err) < 0)
		goto out;
	names = json_array();
	if (patch_fields(t, patch, &pl, names, err) < 0)
		goto out;
	if (gl_engine_hook(e, af.ts, t, GL_HOOK_PRE_UPDATE, ctx, af.doc, patch,
			   NULL, err) < 0)
		goto out;

	/* apply to a private copy of the API view (plain_output shares the
	 * doc's values), then take back the touched fields */
	{
		json_t *plain = plain_output(t, af.doc);
		view = json_deep_copy(plain);
		json_decref(plain);
	}
	if (gl_jpatch_apply(view, patch, &pl, err) < 0)
		goto out;
	doc = json_deep_copy(af.doc);
	/* judged on its result: an admin may reactivate and edit at once
	 * (a bad status is transition()'s to report) */
	st_after = sget(view, "status");
	if (!gl_streq(st_after, "drafted") && !gl_streq(st_after, "active") &&
	    !gl_streq(st_after, "deactivated"))
		st_after = sget(af.doc, "status");
	json_array_foreach(names, i, n) {
		const char *f = json_string_value(n);
		json_t *nv = json_object_get(view, f);
		json_t *ov = json_object_get(af.doc, f);
		if (!strcmp(f, "status") || !strcmp(f, "visibility")) {
			if (f[0] == 's')
				st_touched = 1;
			else
				vis_touched = 1;
			json_object_set(doc, f, nv ? nv : json_null());
			continue;
		}
		if (change_rule(t, sget(af.doc, "status"), st_after, f, err) < 0)
			goto out;
		/* unchanged values are not re-validated (a later, stricter
		 * type version must not block unrelated edits) */
		if (nv && ov && json_equal(nv, ov))
			continue;
		if (set_field(e, ctx, af.ts, t, doc, f, nv ? nv : json_null(),
			      err) < 0)
			goto out;
	}
	if (complete_doc(t, doc, err) < 0)
		goto out;
	if (transition(e, ctx, t, af.doc, doc, st_touched, vis_touched, acts,
		       &nacts, &noop_act, err) < 0)
		goto out;
	if (noop_act && gl_engine_hook(e, af.ts, t, GL_HOOK_PRE_ACTIVATE, ctx,
				       doc, NULL, NULL, err) < 0)
		goto out;

	/* a no-op patch writes nothing and runs no post hooks; status and
	 * visibility changes are actions, with hooks of their own */
	json_array_foreach(names, i, n) {
		const char *f = json_string_value(n);
		if (!strcmp(f, "status") || !strcmp(f, "visibility"))
			continue;
		if (!json_equal(json_object_get(doc, f),
				json_object_get(af.doc, f)))
			changed = 1;
	}
	if (!changed && nacts == 0) {
		*out = gl_engine_output(e, ctx, af.ts, t, af.doc, err);
		rc = *out ? 0 : -1;
		goto out;
	}
	for (int a = 0; a < nacts; a++)
		if (gl_engine_hook(e, af.ts, t, actions[acts[a]].pre, ctx, doc,
				   NULL, NULL, err) < 0)
			goto out;
	if (nacts && (acts[0] == A_ACTIVATE || acts[0] == A_REACTIVATE))
		stamp(doc, "activated_at", gl_now_us());
	stamp(doc, "updated_at", gl_now_us());
	if (gl_engine_vkey(e, ctx, af.ts, sget(doc, "version"), &vk, &suffix,
			   &vmeta, err) < 0)
		goto out;

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	{
		/* the name/version scope after the change: private (owner's)
		 * or public (everyone's) */
		int pub = gl_streq(sget(doc, "visibility"), "public");
		int scope_changed =
			!gl_streq(sget(doc, "name"), sget(af.doc, "name")) ||
			!gl_streq(sget(doc, "version"), sget(af.doc, "version")) ||
			pub != gl_streq(sget(af.doc, "visibility"), "public");
		if (scope_changed) {
			int taken = gl_meta_scope_taken(
				e->meta, t->name, sget(doc, "name"), &vk,
				pub ? NULL : sget(doc, "owner"), id, err);
			if (taken < 0)
				goto out;
			if (taken) {
				gl_fail(err, 409, "Conflict",
					"Artifact with name=%s and version=%s "
					"already exists in the %s scope",
					sget(doc, "name"), sget(doc, "version"),
					pub ? "public" : "project");
				goto out;
			}
		}
	}
	if (nacts) {
		/* status changes wait for uploads in progress */
		json_t *fresh = NULL;
		if (gl_meta_get(e->meta, t, id, &fresh, err) != 0) {
			if (!fresh)
				gl_fail(err, 409, "Conflict",
					"Artifact %s changed meanwhile", id);
			goto out;
		}
		int saving = any_blob_saving(t, fresh);
		json_decref(fresh);
		if (saving) {
			gl_fail(err, 409, "Conflict",
				"Artifact %s has a blob being uploaded; try "
				"again when it is done", id);
			goto out;
		}
	}
	rc = gl_meta_put(e->meta, t, doc, &vk, 0, err);
	if (rc != 0) {
		if (rc > 0)
			gl_fail(err, 409, "Conflict",
				"Artifact %s was changed by a concurrent "
				"request", id);
		rc = -1;
		goto out;
	}
	rc = -1;
	/* Glare's notifications: update, then each lifecycle action */
	if (gl_events_emit(e->events, "update", t->name, doc, NULL, err) < 0)
		goto out;
	for (int a = 0; a < nacts; a++)
		if (gl_events_emit(e->events, actions[acts[a]].event, t->name,
				   doc, NULL, err) < 0)
			goto out;
	if (gl_meta_commit(e->meta, err) < 0)
		goto out;
	in_tx = 0;
	if (changed &&
	    gl_engine_hook(e, af.ts, t, GL_HOOK_POST_UPDATE, ctx, doc, NULL,
			   NULL, err) < 0)
		goto out;
	for (int a = 0; a < nacts; a++)
		if (gl_engine_hook(e, af.ts, t, actions[acts[a]].post, ctx, doc,
				   NULL, NULL, err) < 0)
			goto out;
	*out = gl_engine_output(e, ctx, af.ts, t, doc, err);
	rc = *out ? 0 : -1;
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(names);
	json_decref(view);
	json_decref(doc);
	free(suffix);
	free(vmeta);
	gl_af_clear(&af);
	return rc;
}

/* ---- delete ------------------------------------------------------------------ */

/* Remove the artifact row and release its stored data (no external data
 * is ever touched: those blobs are only records). Inside a transaction.
 * id is the one the row was found by: a damaged row's id may not read
 * back as stored. */
static int purge(gl_engine *e, const gl_type *t, const char *id,
		 const json_t *doc, gl_err *err)
{
	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name), *b;
		const char *k;
		if (f->kind == GK_BLOB && json_is_object(v)) {
			if (gl_blob_release(e, v, err) < 0)
				return -1;
		} else if (f->kind == GK_FOLDER && json_is_object(v)) {
			json_object_foreach(v, k, b)
				if (gl_blob_release(e, b, err) < 0)
					return -1;
		}
	}
	return gl_meta_delete(e->meta, id, err);
}

static int delayed_delete(gl_engine *e, const gl_type *t)
{
	const gl_type_conf *tc = gl_conf_type(e->conf, t->name);
	return tc->delayed_delete >= 0 ? tc->delayed_delete
				       : e->conf->delayed_delete;
}

int gl_engine_delete(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, gl_err *err)
{
	gl_af af;
	json_t *fresh = NULL;
	int rc = -1, in_tx = 0, delayed;

	if (gl_engine_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	if (af.type->is_all) {
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be deleted through the all type");
		goto out;
	}
	if (gl_engine_policy(e, ctx, "artifact:delete", af.doc, err) < 0)
		goto out;
	if (gl_engine_hook(e, af.ts, af.type, GL_HOOK_PRE_DELETE, ctx, af.doc,
			   NULL, NULL, err) < 0)
		goto out;
	delayed = delayed_delete(e, af.type) &&
		  !gl_streq(sget(af.doc, "status"), "deleted");

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	if (gl_meta_get(e->meta, af.type, id, &fresh, err) != 0) {
		if (!fresh)
			gl_fail(err, 404, "ArtifactNotFound",
				"Artifact with id=%s not found", id);
		goto out;
	}
	if (any_blob_saving(af.type, fresh)) {
		gl_fail(err, 409, "Conflict",
			"Artifact %s has a blob being uploaded; try again when "
			"it is done", id);
		goto out;
	}
	if (delayed) {
		if (gl_meta_set_status(e->meta, id, "deleted", err) < 0)
			goto out;
	} else if (purge(e, af.type, id, fresh, err) < 0) {
		goto out;
	}
	/* the state before the deletion, as Glare sends it */
	if (gl_events_emit(e->events, "delete", af.type->name, fresh, NULL,
			   err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0)
		goto out;
	in_tx = 0;
	if (!delayed)
		gl_engine_gc(e);
	gl_info("artifact %s/%s %s by %s", af.type->name, id,
		delayed ? "marked deleted" : "deleted",
		ctx->project_id ? ctx->project_id : "-");
	rc = gl_engine_hook(e, af.ts, af.type, GL_HOOK_POST_DELETE, ctx,
			    af.doc, NULL, NULL, err);
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	gl_af_clear(&af);
	return rc;
}

int gl_engine_scrub(gl_engine *e, int min_age_s, int limit, gl_err *err)
{
	json_t *list = NULL, *it;
	size_t i;
	int n = 0;
	gl_types *ts = gl_types_ref(e->types);

	if (gl_meta_deleted(e->meta, gl_now_us() - (int64_t)min_age_s * 1000000,
			    limit, &list, err) < 0) {
		gl_types_unref(ts);
		return -1;
	}
	json_array_foreach(list, i, it) {
		const gl_type *t = gl_types_find(ts, sget(it, "type_name"));
		json_t *doc = NULL;
		gl_err e2 = { 0 };
		if (!t) {
			gl_warn("scrub: artifact %s has unknown type %s; left",
				sget(it, "id"), sget(it, "type_name"));
			continue;
		}
		if (gl_meta_begin(e->meta, &e2) < 0)
			break;
		if (gl_meta_get(e->meta, t, sget(it, "id"), &doc, &e2) == 0 &&
		    gl_streq(sget(doc, "status"), "deleted") &&
		    purge(e, t, sget(it, "id"), doc, &e2) == 0 &&
		    gl_meta_commit(e->meta, &e2) == 0) {
			n++;
			gl_info("scrub: purged %s/%s", t->name, sget(it, "id"));
		} else {
			gl_meta_rollback(e->meta);
			if (e2.msg[0])
				gl_warn("scrub: %s: %s", sget(it, "id"), e2.msg);
		}
		json_decref(doc);
	}
	json_decref(list);
	gl_types_unref(ts);
	gl_engine_gc(e);
	return n;
}

/* ---- quotas ------------------------------------------------------------------ */

static int check_quota_body(const json_t *body, gl_err *err)
{
	size_t i, j;
	json_t *p, *q;

	if (!json_is_array(body))
		return gl_fail(err, 400, "BadRequest",
			       "Quotas must be a list of projects");
	json_array_foreach(body, i, p) {
		const char *k;
		json_t *v, *pid = json_object_get(p, "project_id"),
			   *pq = json_object_get(p, "project_quotas");
		if (!json_is_object(p))
			return gl_fail(err, 400, "BadRequest",
				       "Quota entry %zu is not an object", i);
		json_object_foreach(p, k, v)
			if (strcmp(k, "project_id") && strcmp(k, "project_quotas"))
				return gl_fail(err, 400, "BadRequest",
					       "Unexpected key '%s' in quota "
					       "entry %zu", k, i);
		if (!json_is_string(pid) || json_string_length(pid) < 1 ||
		    json_string_length(pid) > 255)
			return gl_fail(err, 400, "BadRequest",
				       "project_id must be a string of 1 to 255 "
				       "characters");
		if (!json_is_array(pq))
			return gl_fail(err, 400, "BadRequest",
				       "project_quotas must be a list");
		json_array_foreach(pq, j, q) {
			json_t *n = json_object_get(q, "quota_name"),
			       *val = json_object_get(q, "quota_value");
			const char *name = json_string_value(n), *c;
			if (!json_is_object(q) || json_object_size(q) != 2 ||
			    !name || !json_is_integer(val))
				return gl_fail(err, 400, "BadRequest",
					       "Each quota is {\"quota_name\": "
					       "string, \"quota_value\": "
					       "integer}");
			if (strlen(name) < 1 || strlen(name) > 255)
				return gl_fail(err, 400, "BadRequest",
					       "quota_name must have 1 to 255 "
					       "characters");
			c = strchr(name, ':');
			if (c && strchr(c + 1, ':'))
				return gl_fail(err, 400, "BadRequest",
					       "quota_name '%s' has more than one "
					       "':'", name);
			if (json_integer_value(val) < -1)
				return gl_fail(err, 400, "BadRequest",
					       "quota_value must be >= -1");
		}
	}
	return 0;
}

int gl_engine_set_quotas(gl_engine *e, const gl_ctx *ctx, const json_t *body,
			 gl_err *err)
{
	if (gl_engine_policy(e, ctx, "artifact:set_quotas", NULL, err) < 0 ||
	    gl_engine_json_ok(e, body, "The request body", err) < 0 ||
	    check_quota_body(body, err) < 0)
		return -1;
	if (gl_meta_begin(e->meta, err) < 0)
		return -1;
	if (gl_meta_quotas_set(e->meta, body, err) < 0 ||
	    gl_events_emit(e->events, "set_quotas", NULL, NULL, NULL, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0) {
		gl_meta_rollback(e->meta);
		return -1;
	}
	return 0;
}

static json_t *global_quotas(gl_engine *e)
{
	json_t *g = json_object();
	char k[512];

	json_object_set_new(g, "max_artifact_number",
			    json_integer(e->conf->max_artifact_number));
	json_object_set_new(g, "max_uploaded_data",
			    json_integer(e->conf->max_uploaded_data));
	for (int i = 0; i < e->conf->ntypes; i++) {
		const gl_type_conf *tc = &e->conf->types[i];
		if (tc->max_artifact_number != -1) {
			snprintf(k, sizeof k, "max_artifact_number:%s", tc->name);
			json_object_set_new(g, k,
					    json_integer(tc->max_artifact_number));
		}
		if (tc->max_uploaded_data != -1) {
			snprintf(k, sizeof k, "max_uploaded_data:%s", tc->name);
			json_object_set_new(g, k,
					    json_integer(tc->max_uploaded_data));
		}
	}
	return g;
}

static json_t *quota_list(const json_t *obj)
{
	json_t *l = json_array(), *v;
	const char *k;
	json_object_foreach((json_t *)obj, k, v)
		json_array_append_new(l, json_pack("{s:s, s:O}", "quota_name",
						   k, "quota_value", v));
	return l;
}

int gl_engine_list_quotas(gl_engine *e, const gl_ctx *ctx, json_t **out,
			  gl_err *err)
{
	json_t *all = NULL, *list, *v;
	const char *p;

	if (gl_engine_policy(e, ctx, "artifact:list_all_quotas", NULL, err) < 0 ||
	    gl_meta_quotas_get(e->meta, NULL, &all, err) < 0)
		return -1;
	list = json_array();
	json_object_foreach(all, p, v)
		json_array_append_new(list, json_pack("{s:s, s:o}", "project_id",
						      p, "project_quotas",
						      quota_list(v)));
	json_decref(all);
	*out = json_pack("{s:o, s:o}", "quotas", list, "global_quotas",
			 global_quotas(e));
	return 0;
}

int gl_engine_project_quotas(gl_engine *e, const gl_ctx *ctx,
			     const char *project, json_t **out, gl_err *err)
{
	json_t *target, *q = NULL, *merged;
	int ok;

	if (!project)
		project = ctx->project_id;
	if (!project)
		return gl_fail(err, 403, "Forbidden",
			       "Anonymous users have no project quotas");
	target = json_pack("{s:s}", "project_id", project);
	if (!target)
		return gl_fail(err, 400, "BadRequest", "Invalid project id");
	ok = policy_ok(e, ctx, "artifact:list_project_quotas", target);
	json_decref(target);
	if (!ok)
		return gl_fail(err, 403, "PolicyException",
			       "Policy check for artifact:list_project_quotas "
			       "failed with user credentials.");
	if (gl_meta_quotas_get(e->meta, project, &q, err) < 0)
		return -1;
	merged = global_quotas(e);
	json_object_update(merged, json_object_get(q, project));
	json_decref(q);
	*out = json_pack("[{s:s, s:o}]", "project_id", project,
			 "project_quotas", quota_list(merged));
	json_decref(merged);
	return *out ? 0 : gl_fail(err, 500, NULL, "quotas could not be built");
}
