/* core.c - what every engine unit shares: type lookup, loading an
 * artifact the caller may see, policy checks, the API shape of artifacts
 * and blobs, hooks with their standard arguments, the change rules of a
 * field, quota limits and version keys (core.h).
 */
#include "core.h"
#include "fetch.h"
#include "jlimits.h"
#include "jtext.h"
#include "ljson.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------ */

void gl_af_clear(gl_af *af)
{
	json_decref(af->doc);
	if (af->ts)
		gl_types_unref(af->ts);
	memset(af, 0, sizeof *af);
}

int gl_core_type(gl_engine *e, const char *name, gl_types **ts,
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

json_t *gl_core_ctx_json(const gl_ctx *ctx)
{
	json_t *roles = json_array();
	for (size_t i = 0; i < ctx->nroles; i++)
		json_array_append_new(roles, gl_json_text(ctx->roles[i]));
	return json_pack("{s:s?, s:s?, s:o, s:b, s:b, s:s}", "user_id",
			 ctx->user_id, "project_id", ctx->project_id, "roles",
			 roles, "is_admin", ctx->is_admin, "read_only",
			 ctx->read_only, "request_id", ctx->request_id);
}

json_t *gl_core_target(const json_t *doc)
{
	json_t *t = json_object();
	static const char *const keys[] = { "owner", "visibility", "status",
					    "id",    "name",       NULL };
	for (int i = 0; keys[i]; i++) {
		const char *v = gl_json_str(doc, keys[i]);
		if (v)
			json_object_set_new(t, keys[i], gl_json_text(v));
	}
	if (gl_json_str(doc, "owner"))
		json_object_set_new(t, "project_id",
				    gl_json_text(gl_json_str(doc, "owner")));
	return t;
}

int gl_core_policy_ok(gl_engine *e, const gl_ctx *ctx, const char *rule,
		      const json_t *target)
{
	gl_creds cr;
	gl_ctx_creds(ctx, &cr);
	return gl_policy_check(e->policy, rule, &cr, target);
}

int gl_core_policy(gl_engine *e, const gl_ctx *ctx, const char *rule,
		   const json_t *doc, gl_err *err)
{
	json_t *target = doc ? gl_core_target(doc) : json_object();
	int ok;

	if (ctx->project_id && !json_object_get(target, "project_id"))
		json_object_set_new(target, "project_id",
				    gl_json_text(ctx->project_id));
	ok = gl_core_policy_ok(e, ctx, rule, target);
	json_decref(target);
	if (!ok)
		return gl_fail(err, 403, "PolicyException",
			       "Policy check for %s failed with user "
			       "credentials.",
			       rule);
	return 0;
}

int gl_core_reread(gl_engine *e, const gl_type *t, const char *id,
		   const char *gone, json_t **doc, gl_err *err)
{
	int rc = gl_meta_get(e->meta, t, id, doc, err);

	if (rc > 0)
		gl_fail(err, 404, "ArtifactNotFound", "Artifact with id=%s %s",
			id, gone);
	return rc == 0 ? 0 : -1;
}

int gl_core_load(gl_engine *e, const gl_ctx *ctx, const char *type,
		 const char *id, int rw, gl_af *af, gl_err *err)
{
	const char *owner, *vis;
	int rc, visible;

	memset(af, 0, sizeof *af);
	if (gl_core_type(e, type, &af->ts, &af->type, err) < 0)
		return -1;
	rc = gl_meta_get(e->meta, af->type->is_all ? NULL : af->type, id,
			 &af->doc, err);
	if (rc < 0)
		goto fail;
	if (rc > 0)
		goto notfound;
	owner = gl_json_str(af->doc, "owner");
	vis = gl_json_str(af->doc, "visibility");
	if (ctx->is_admin) {
		visible = 1;
	} else if (ctx->anonymous) {
		visible = !rw && gl_streq(vis, "public");
	} else {
		visible = gl_streq(owner, ctx->project_id) ||
			  gl_streq(vis, "public");
		if (!visible && !rw) {
			json_t *t = gl_core_target(af->doc);
			visible = gl_core_policy_ok(e, ctx,
						    "artifact:get_any_artifact",
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

/* What the last check of an external blob found (download.c's record_verify
 * writes it, with the verify_* event of the same outcome), in the shape
 * docs/types.md documents; nothing before the first check. */
static void blob_verification(json_t *o, const json_t *blob)
{
	const char *st = gl_json_str(blob, "verify_status");
	json_t *at = json_object_get(blob, "verified_at"), *v;
	char ts[32];

	if (!st || !json_is_integer(at))
		return;
	gl_iso8601(json_integer_value(at), ts);
	v = json_pack("{s:s, s:s}", "status", st, "checked_at", ts);
	if (strcmp(st, "ok") != 0 && gl_json_str(blob, "verify_error"))
		json_object_set(v, "detail",
				json_object_get(blob, "verify_error"));
	json_object_set_new(o, "verification", v);
}

json_t *gl_core_blob_output(const gl_type *t, const char *id,
			    const char *field, const char *key,
			    const json_t *blob)
{
	static const char *const keys[] = { "size",   "md5",    "sha1",
					    "sha256", "status", "content_type",
					    NULL };
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
	if (gl_streq(gl_json_str(blob, "status"), "saving"))
		json_object_set(o, "size", json_null());
	if (external)
		blob_verification(o, blob);
	return o;
}

/* A folder's entries in API shape (v: the stored folder, or not one). */
static json_t *folder_output(const gl_type *t, const char *id,
			     const gl_field *f, const json_t *v)
{
	json_t *fo = json_object(), *b;
	const char *k;

	if (json_is_object(v))
		json_object_foreach((json_t *)v, k, b)
			json_object_set_new(fo, k,
					    gl_core_blob_output(t, id, f->name,
								k, b));
	return fo;
}

/* A time stored with microseconds is shown to the second: its text into
 * out (length returned), or 0 when v is not such a time. */
static size_t shown_time(const gl_field *f, const json_t *v, char out[40])
{
	const char *s = json_string_value(v);
	size_t n;

	if (f->kind != GK_DATETIME || !s || !strchr(s, '.'))
		return 0;
	n = strnlen(s, 19);
	memcpy(out, s, n);
	memcpy(out + n, "Z", 2);
	return n + 1;
}

/* The artifact in API shape, before the type's output hook. */
json_t *gl_core_plain_output(const gl_type *t, const json_t *doc)
{
	json_t *out = json_object();
	const char *id = gl_json_str(doc, "id");
	char ts[40];

	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);

		if (f->kind == GK_BLOB) {
			json_object_set_new(out, f->name,
					    json_is_object(v)
						    ? gl_core_blob_output(t,
									  id,
									  f->name,
									  NULL,
									  v)
						    : json_null());
		} else if (f->kind == GK_FOLDER) {
			json_object_set_new(out, f->name,
					    folder_output(t, id, f, v));
		} else if (shown_time(f, v, ts)) {
			json_object_set_new(out, f->name, gl_json_text(ts));
		} else if (v) {
			json_object_set(out, f->name, v);
		} else {
			json_object_set_new(out, f->name,
					    f->def ? json_deep_copy(f->def)
						   : json_null());
		}
	}
	if (t->is_all && gl_json_str(doc, "type_name"))
		json_object_set(out, "type_name",
				json_object_get(doc, "type_name"));
	return out;
}

/* gl_core_plain_output written as JSON text: no tree per artifact. */
void gl_core_plain_output_text(const gl_type *t, const json_t *doc, gl_sb *b)
{
	const char *id = gl_json_str(doc, "id");
	int has_type_name = 0;
	char ts[40];
	size_t n;

	gl_jtext_raw(b, "{", 1);
	for (int i = 0; i < t->nfields; i++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);

		gl_jtext_key(b, f->name, strlen(f->name), i == 0);
		has_type_name |= !strcmp(f->name, "type_name");
		if (f->kind == GK_BLOB) {
			json_t *o = json_is_object(v)
					    ? gl_core_blob_output(t, id,
								  f->name,
								  NULL, v)
					    : NULL;
			gl_jtext_value(b, o);
			json_decref(o);
		} else if (f->kind == GK_FOLDER) {
			json_t *fo = folder_output(t, id, f, v);
			gl_jtext_value(b, fo);
			json_decref(fo);
		} else if ((n = shown_time(f, v, ts))) {
			if (gl_utf8_valid(ts, n, 1)) {
				gl_jtext_str(b, ts, n);
			} else {
				json_t *r = gl_json_text(ts);
				gl_jtext_value(b, r);
				json_decref(r);
			}
		} else {
			gl_jtext_value(b, v ? v : f->def);
		}
	}
	if (t->is_all && !has_type_name && gl_json_str(doc, "type_name")) {
		gl_jtext_key(b, "type_name", 9, t->nfields == 0);
		gl_jtext_value(b, json_object_get(doc, "type_name"));
	}
	gl_jtext_raw(b, "}", 1);
}

/* gl_core_plain_output as members for the hook's argument (ljson.h): the
 * doc's values borrowed, what is built for the API (blobs, folders, a
 * repaired time) in owned[i]. The number of members. */
static int plain_members(const gl_type *t, const json_t *doc, gl_member *m,
			 json_t **owned)
{
	const char *id = gl_json_str(doc, "id");
	int n = 0, has_type_name = 0;
	size_t l;

	for (int i = 0; i < t->nfields; i++, n++) {
		const gl_field *f = &t->fields[i];
		json_t *v = json_object_get(doc, f->name);

		m[n].key = f->name;
		has_type_name |= !strcmp(f->name, "type_name");
		if (f->kind == GK_BLOB) {
			if (json_is_object(v))
				m[n].v = owned[n] =
					gl_core_blob_output(t, id, f->name,
							    NULL, v);
		} else if (f->kind == GK_FOLDER) {
			m[n].v = owned[n] = folder_output(t, id, f, v);
		} else if ((l = shown_time(f, v, m[n].text))) {
			if (gl_utf8_valid(m[n].text, l, 1)) {
				m[n].s = m[n].text;
				m[n].n = l;
			} else {
				m[n].v = owned[n] = gl_json_text(m[n].text);
			}
		} else {
			m[n].v = v ? v : f->def;
		}
	}
	if (t->is_all && !has_type_name && gl_json_str(doc, "type_name")) {
		m[n].key = "type_name";
		m[n].v = json_object_get(doc, "type_name");
		n++;
	}
	return n;
}

int gl_core_output_text(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
			const gl_type *t, const json_t *doc, gl_sb *b,
			gl_err *err)
{
	const gl_type *rt = NULL;
	gl_member *m;
	json_t **owned;
	int n, rc;

	(void)e;
	if (t->is_all) {
		rt = gl_types_find(ts, gl_json_str(doc, "type_name"));
		if (rt && !rt->has_format_all)
			rt = NULL;
	} else if (t->has_to_dict) {
		rt = t;
	}
	if (!rt) {
		gl_core_plain_output_text(t, doc, b);
		return 0;
	}
	m = gl_xcalloc((size_t)t->nfields + 1, sizeof *m);
	owned = gl_xcalloc((size_t)t->nfields + 1, sizeof *owned);
	n = plain_members(t, doc, m, owned);
	rc = gl_types_output_text(ts, gl_ctx_lua(ctx), rt, m, n, t->is_all, b,
				  err);
	for (int i = 0; i < n; i++)
		json_decref(owned[i]);
	free(owned);
	free(m);
	if (rc < 0)
		return err->status ? -1
				   : gl_fail(err, 500, NULL, "out of memory");
	return 0;
}

json_t *gl_core_output(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		       const gl_type *t, const json_t *doc, gl_err *err)
{
	json_t *out;

	if (t->is_all) {
		/* formatted by the artifact's own type */
		const gl_type *rt = gl_types_find(ts,
						  gl_json_str(doc,
							      "type_name"));
		out = gl_core_plain_output(t, doc);
		if (out && rt && rt->has_format_all)
			out = gl_types_output(ts, gl_ctx_lua(ctx), rt, out, 1,
					      err);
	} else {
		out = gl_core_plain_output(t, doc);
		if (out && t->has_to_dict)
			out = gl_types_output(ts, gl_ctx_lua(ctx), t, out, 0,
					      err);
	}
	if (!out && !err->status)
		gl_fail(err, 500, NULL, "out of memory");
	return out;
}

json_t *gl_core_blob_args(const char *field, const char *key,
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

int gl_core_hook(gl_engine *e, gl_types *ts, const gl_type *t, enum gl_hook h,
		 const gl_ctx *ctx, const json_t *doc, const json_t *args,
		 json_t **af_out, gl_err *err)
{
	json_t *cj, *af;
	int rc;

	if (af_out)
		*af_out = NULL;
	if (!(t->hooks & (1u << h)))
		return 0;
	cj = gl_core_ctx_json(ctx);
	af = gl_core_plain_output(t, doc);
	rc = gl_types_hook(ts, gl_ctx_lua(ctx), t, h, cj, af, args, af_out,
			   err);
	json_decref(cj);
	json_decref(af);
	return rc;
}

int gl_core_json_ok(gl_engine *e, const json_t *v, const char *what,
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
int gl_core_change_rule(const gl_type *t, const char *before,
			const char *after, const char *field, gl_err *err)
{
	const gl_field *f = gl_type_field(t, field);

	if (!f)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown field '%s' for artifact type %s",
			       field, t->name);
	if (!gl_streq(after, "drafted") && !gl_streq(after, "active"))
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change fields of an artifact in "
			       "status '%s'",
			       after ? after : "?");
	if (f->system)
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change system field '%s'", field);
	if (!gl_streq(before, "drafted") && !f->mutable_)
		return gl_fail(err, 403, "Forbidden",
			       "Forbidden to change immutable field '%s' of an "
			       "active artifact",
			       field);
	return 0;
}

int gl_core_change_allowed(const gl_type *t, const json_t *doc,
			   const char *field, gl_err *err)
{
	const char *st = gl_json_str(doc, "status");
	return gl_core_change_rule(t, st, st, field, err);
}

int gl_core_vkey(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
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

int gl_core_quota(gl_engine *e, const char *project, const char *name,
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
		*limit = tc ? tc->max_artifact_number
			    : e->conf->max_artifact_number;
	} else {
		*limit = tc ? tc->max_uploaded_data
			    : e->conf->max_uploaded_data;
	}
	json_decref(q);
	return 0;
}

gl_fetch *gl_core_fetch(gl_engine *e, gl_err *err)
{
	if (!e->fetch)
		e->fetch = gl_fetch_new(e->base, e->conf, err);
	return e->fetch;
}
