/* art.c - the artifact operations: schemas, show, create, update
 * (JSON-patch with the lifecycle and visibility transitions), delete,
 * scrub (art.h).
 *
 * Each operation follows the same shape: load what it needs (outside any
 * transaction; WAL readers do not block), check rules and run the type's
 * pre-hooks, then write inside one write transaction that re-checks what
 * a concurrent writer could have changed (revision, name/version scope,
 * quotas, saving blobs), and run post-hooks after the commit.
 */
#include "art.h"
#include "core.h"
#include "gc.h"
#include "jlimits.h"
#include "jpatch.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* clang-format off */
static const char *const base_fields[] = {
	"id", "name", "owner", "status", "visibility", "version",
	"description", "display_type_name", "created_at", "updated_at",
	"activated_at", "tags", "metadata", NULL
};
/* clang-format on */

/* ---- schemas --------------------------------------------------------------- */

int gl_art_schemas(gl_engine *e, const gl_ctx *ctx, const char *type,
		   json_t **out, gl_err *err)
{
	gl_types *ts;
	json_t *all;

	if (gl_core_policy(e, ctx, "artifact:type_list", NULL, err) < 0)
		return -1;
	all = json_object();
	if (type) {
		const gl_type *t;
		if (gl_core_type(e, type, &ts, &t, err) < 0) {
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

int gl_art_show(gl_engine *e, const gl_ctx *ctx, const char *type,
		const char *id, json_t **out, gl_err *err)
{
	gl_af af;

	if (gl_core_policy(e, ctx, "artifact:get", NULL, err) < 0)
		return -1;
	if (gl_core_load(e, ctx, type, id, 0, &af, err) < 0)
		return -1;
	*out = gl_core_output(e, ctx, af.ts, af.type, af.doc, err);
	gl_af_clear(&af);
	return *out ? 0 : -1;
}

int gl_art_show_text(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, gl_sb *out, gl_err *err)
{
	gl_af af;
	int rc;

	if (gl_core_policy(e, ctx, "artifact:get", NULL, err) < 0)
		return -1;
	if (gl_core_load(e, ctx, type, id, 0, &af, err) < 0)
		return -1;
	rc = gl_core_output_text(e, ctx, af.ts, af.type, af.doc, out, err);
	gl_af_clear(&af);
	return rc;
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
				       "string",
				       field);
		if (!gl_utf8_valid(json_string_value(v), json_string_length(v),
				   0))
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s': 4-byte UTF-8 characters are "
				       "not allowed",
				       field);
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
		gl_err why;
		if (gl_url_check(s, json_string_length(v), &why) < 0)
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s': link %.200s: %s", field, s,
				       why.msg);
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
	if (gl_core_load(e, ctx, "all", id + 1, 0, &target, err) < 0)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s': link %s does not point to an "
			       "artifact you can see",
			       field, s);
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
		     const gl_type *t, json_t *doc, const char *name,
		     json_t *v, gl_err *err)
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
		if (gl_core_quota(e, project, "max_artifact_number", scopes[i],
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
			json_object_set_new(doc, f->name,
					    json_deep_copy(f->def));
		} else if ((!v || json_is_null(v)) && !f->nullable) {
			return gl_fail(err, 400, "BadRequest",
				       "Type: %s. Field: %s. Exception: a value "
				       "is required (the field is not nullable "
				       "and has no default)",
				       t->name, f->name);
		}
	}
	return 0;
}

static int create_allowed(gl_engine *e, const gl_ctx *ctx, const gl_type *t,
			  gl_err *err)
{
	if (t->is_all)
		return gl_fail(err, 403, "Forbidden",
			       "Artifacts cannot be created through the all type");
	if (ctx->read_only || ctx->anonymous || !ctx->project_id)
		return gl_fail(err, 403, "Forbidden",
			       "Creating artifacts is forbidden to anonymous "
			       "users");
	return gl_core_policy(e, ctx, "artifact:create", NULL, err);
}

int gl_art_precheck_create(gl_engine *e, const gl_ctx *ctx, const char *type,
			   gl_err *err)
{
	gl_types *ts;
	const gl_type *t;
	int rc;

	if (gl_core_type(e, type, &ts, &t, err) < 0)
		return -1;
	rc = create_allowed(e, ctx, t, err);
	gl_types_unref(ts);
	return rc;
}

int gl_art_precheck_update(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, gl_err *err)
{
	gl_af af;
	int rc = -1;

	if (gl_core_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	if (af.type->is_all)
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be changed through the all type");
	else
		rc = gl_core_policy(e, ctx, "artifact:update", af.doc, err);
	gl_af_clear(&af);
	return rc;
}

int gl_art_create(gl_engine *e, const gl_ctx *ctx, const char *type,
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
	if (gl_core_json_ok(e, body, "The request body", err) < 0)
		return -1;
	if (gl_core_type(e, type, &ts, &t, err) < 0)
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
				"upload it",
				k);
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

	if (gl_core_hook(e, ts, t, GL_HOOK_PRE_CREATE, ctx, doc, NULL, &hooked,
			 err) < 0)
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
	if (gl_core_vkey(e, ctx, ts, gl_json_str(doc, "version"), &vk, &suffix,
			 &vmeta, err) < 0)
		goto out;

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	rc = gl_meta_scope_taken(e->meta, t->name, gl_json_str(doc, "name"),
				 &vk, ctx->project_id, NULL, err);
	if (rc < 0)
		goto out;
	if (rc > 0) {
		rc = gl_fail(err, 409, "Conflict",
			     "Artifact with name=%s and version=%s already "
			     "exists for this project",
			     gl_json_str(doc, "name"),
			     gl_json_str(doc, "version"));
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
	gl_info("artifact %s/%s created by %s", t->name, uuid,
		ctx->project_id);
	if (gl_core_hook(e, ts, t, GL_HOOK_POST_CREATE, ctx, doc, NULL, NULL,
			 err) < 0) {
		/* the artifact exists; report the hook's error (Glare does) */
		rc = -1;
		goto out;
	}
	*out = gl_core_output(e, ctx, ts, t, doc, err);
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
		const char *paths[2] = { gl_json_str(op, "path"),
					 gl_json_str(op, "from") };
		const char *opn = gl_json_str(op, "op");
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
					"PATCH; use the blob API",
					field);
				json_decref(toks);
				return -1;
			}
			if (json_array_size(toks) == 1 &&
			    (!strcmp(opn, "remove") ||
			     (p == 1 && !strcmp(opn, "move")))) {
				gl_fail(err, 400, "BadRequest",
					"Field '%s' cannot be removed; set it "
					"to null instead",
					field);
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
				json_array_append_new(names,
						      gl_json_text(field));
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
		    gl_streq(gl_json_str(v, "status"), "saving"))
			return 1;
		if (f->kind == GK_FOLDER && json_is_object(v))
			json_object_foreach(v, k, b)
				if (gl_streq(gl_json_str(b, "status"),
					     "saving"))
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
		if (!v && f->kind != GK_BLOB && f->def &&
		    !json_is_null(f->def))
			continue;
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
			 n ? ", " : "", f->name);
		n++;
	}
	return n;
}

/* After each patch operation the field it touched is still within its
 * type's limits (a patch cannot build what a body could not carry). */
static int patch_step(void *ctx, json_t *view, const char *field, gl_err *err)
{
	const gl_type *t = ctx;
	const gl_field *f = gl_type_field(t, field);
	json_t *v = json_object_get(view, field);

	return f && v ? gl_jlimits_field(t, f, v, err) : 0;
}

/* The limits of a patch on an artifact of type t (NULL: not known yet). */
static void patch_limits(gl_engine *e, const gl_type *t, gl_jpatch_limits *pl)
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
	const char *os = gl_json_str(old, "status"),
		   *ov = gl_json_str(old, "visibility");
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
						   ? A_REACTIVATE
						   : A_ACTIVATE;
		} else { /* deactivated */
			if (!strcmp(os, "drafted"))
				return gl_fail(err, 403, "Forbidden",
					       "A drafted artifact cannot be "
					       "deactivated");
			acts[(*nacts)++] = A_DEACTIVATE;
		}
	}
	ns = gl_json_str(nw, "status");
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
	    gl_core_policy(e, ctx, actions[A_ACTIVATE].rule, old, err) < 0)
		return -1;
	for (int i = 0; i < *nacts; i++)
		if (gl_core_policy(e, ctx, actions[acts[i]].rule, old, err) <
		    0)
			return -1;
	if (*nacts && (acts[0] == A_ACTIVATE) &&
	    missing_required(t, nw, miss, sizeof miss))
		return gl_fail(err, 403, "Forbidden",
			       "Artifact cannot be activated: required fields "
			       "are not set: %s",
			       miss);
	return 0;
}

int gl_art_update(gl_engine *e, const gl_ctx *ctx, const char *type,
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
	if (gl_core_json_ok(e, patch, "The patch", err) < 0 ||
	    gl_jpatch_check(patch, &pl, err) < 0)
		return -1;
	if (gl_core_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	t = af.type;
	patch_limits(e, t, &pl);
	if (t->is_all) {
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be changed through the all type");
		goto out;
	}
	if (gl_core_policy(e, ctx, "artifact:update", af.doc, err) < 0)
		goto out;
	names = json_array();
	if (patch_fields(t, patch, &pl, names, err) < 0)
		goto out;
	if (gl_core_hook(e, af.ts, t, GL_HOOK_PRE_UPDATE, ctx, af.doc, patch,
			 NULL, err) < 0)
		goto out;

	/* apply to a private copy of the API view (gl_core_plain_output shares the
	 * doc's values), then take back the touched fields */
	{
		json_t *plain = gl_core_plain_output(t, af.doc);
		view = json_deep_copy(plain);
		json_decref(plain);
	}
	if (gl_jpatch_apply(view, patch, &pl, err) < 0)
		goto out;
	doc = json_deep_copy(af.doc);
	/* judged on its result: an admin may reactivate and edit at once
	 * (a bad status is transition()'s to report) */
	st_after = gl_json_str(view, "status");
	if (!gl_streq(st_after, "drafted") && !gl_streq(st_after, "active") &&
	    !gl_streq(st_after, "deactivated"))
		st_after = gl_json_str(af.doc, "status");
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
		if (gl_core_change_rule(t, gl_json_str(af.doc, "status"),
					st_after, f, err) < 0)
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
	if (noop_act && gl_core_hook(e, af.ts, t, GL_HOOK_PRE_ACTIVATE, ctx,
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
		*out = gl_core_output(e, ctx, af.ts, t, af.doc, err);
		rc = *out ? 0 : -1;
		goto out;
	}
	for (int a = 0; a < nacts; a++)
		if (gl_core_hook(e, af.ts, t, actions[acts[a]].pre, ctx, doc,
				 NULL, NULL, err) < 0)
			goto out;
	if (nacts && (acts[0] == A_ACTIVATE || acts[0] == A_REACTIVATE))
		stamp(doc, "activated_at", gl_now_us());
	stamp(doc, "updated_at", gl_now_us());
	if (gl_core_vkey(e, ctx, af.ts, gl_json_str(doc, "version"), &vk,
			 &suffix, &vmeta, err) < 0)
		goto out;

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	{
		/* the name/version scope after the change: private (owner's)
		 * or public (everyone's) */
		int pub = gl_streq(gl_json_str(doc, "visibility"), "public");
		int scope_changed =
			!gl_streq(gl_json_str(doc, "name"),
				  gl_json_str(af.doc, "name")) ||
			!gl_streq(gl_json_str(doc, "version"),
				  gl_json_str(af.doc, "version")) ||
			pub != gl_streq(gl_json_str(af.doc, "visibility"),
					"public");
		if (scope_changed) {
			int taken =
				gl_meta_scope_taken(e->meta, t->name,
						    gl_json_str(doc, "name"),
						    &vk,
						    pub ? NULL
							: gl_json_str(doc,
								      "owner"),
						    id, err);
			if (taken < 0)
				goto out;
			if (taken) {
				gl_fail(err, 409, "Conflict",
					"Artifact with name=%s and version=%s "
					"already exists in the %s scope",
					gl_json_str(doc, "name"),
					gl_json_str(doc, "version"),
					pub ? "public" : "project");
				goto out;
			}
		}
	}
	if (nacts) {
		/* status changes wait for uploads in progress */
		json_t *fresh = NULL;
		int gone = gl_meta_get(e->meta, t, id, &fresh, err);
		if (gone > 0) /* gone meanwhile; a store error keeps its own */
			gl_fail(err, 409, "Conflict",
				"Artifact %s changed meanwhile", id);
		if (gone != 0)
			goto out;
		int saving = any_blob_saving(t, fresh);
		json_decref(fresh);
		if (saving) {
			gl_fail(err, 409, "Conflict",
				"Artifact %s has a blob being uploaded; try "
				"again when it is done",
				id);
			goto out;
		}
	}
	if (gl_meta_put(e->meta, t, doc, &vk, 0, err) < 0)
		goto out;
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
	if (changed && gl_core_hook(e, af.ts, t, GL_HOOK_POST_UPDATE, ctx, doc,
				    NULL, NULL, err) < 0)
		goto out;
	for (int a = 0; a < nacts; a++)
		if (gl_core_hook(e, af.ts, t, actions[acts[a]].post, ctx, doc,
				 NULL, NULL, err) < 0)
			goto out;
	*out = gl_core_output(e, ctx, af.ts, t, doc, err);
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
			if (gl_gc_release(e, v, err) < 0)
				return -1;
		} else if (f->kind == GK_FOLDER && json_is_object(v)) {
			json_object_foreach(v, k, b)
				if (gl_gc_release(e, b, err) < 0)
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

int gl_art_delete(gl_engine *e, const gl_ctx *ctx, const char *type,
		  const char *id, gl_err *err)
{
	gl_af af;
	json_t *fresh = NULL;
	int rc = -1, in_tx = 0, delayed;

	if (gl_core_load(e, ctx, type, id, 1, &af, err) < 0)
		return -1;
	if (af.type->is_all) {
		gl_fail(err, 403, "Forbidden",
			"Artifacts cannot be deleted through the all type");
		goto out;
	}
	if (gl_core_policy(e, ctx, "artifact:delete", af.doc, err) < 0)
		goto out;
	if (gl_core_hook(e, af.ts, af.type, GL_HOOK_PRE_DELETE, ctx, af.doc,
			 NULL, NULL, err) < 0)
		goto out;
	delayed = delayed_delete(e, af.type) &&
		  !gl_streq(gl_json_str(af.doc, "status"), "deleted");

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	if (gl_core_reread(e, af.type, id, "not found", &fresh, err) < 0)
		goto out;
	if (any_blob_saving(af.type, fresh)) {
		gl_fail(err, 409, "Conflict",
			"Artifact %s has a blob being uploaded; try again when "
			"it is done",
			id);
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
		gl_gc_run(e);
	gl_info("artifact %s/%s %s by %s", af.type->name, id,
		delayed ? "marked deleted" : "deleted",
		ctx->project_id ? ctx->project_id : "-");
	rc = gl_core_hook(e, af.ts, af.type, GL_HOOK_POST_DELETE, ctx, af.doc,
			  NULL, NULL, err);
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	gl_af_clear(&af);
	return rc;
}

int gl_art_scrub(gl_engine *e, int min_age_s, int limit, gl_err *err)
{
	json_t *list = NULL, *it;
	size_t i;
	int n = 0;
	gl_types *ts = gl_types_ref(e->types);

	if (gl_meta_deleted(e->meta,
			    gl_now_us() - (int64_t)min_age_s * 1000000, limit,
			    &list, err) < 0) {
		gl_types_unref(ts);
		return -1;
	}
	json_array_foreach(list, i, it) {
		const gl_type *t = gl_types_find(ts,
						 gl_json_str(it, "type_name"));
		json_t *doc = NULL;
		gl_err e2 = { 0 };
		if (!t) {
			gl_warn("scrub: artifact %s has unknown type %s; left",
				gl_json_str(it, "id"),
				gl_json_str(it, "type_name"));
			continue;
		}
		if (gl_meta_begin(e->meta, &e2) < 0)
			break;
		if (gl_meta_get(e->meta, t, gl_json_str(it, "id"), &doc,
				&e2) == 0 &&
		    gl_streq(gl_json_str(doc, "status"), "deleted") &&
		    purge(e, t, gl_json_str(it, "id"), doc, &e2) == 0 &&
		    gl_meta_commit(e->meta, &e2) == 0) {
			n++;
			gl_info("scrub: purged %s/%s", t->name,
				gl_json_str(it, "id"));
		} else {
			gl_meta_rollback(e->meta);
			if (e2.msg[0])
				gl_warn("scrub: %s: %s", gl_json_str(it, "id"),
					e2.msg);
		}
		json_decref(doc);
	}
	json_decref(list);
	gl_types_unref(ts);
	gl_gc_run(e);
	return n;
}
