/* quota.c - the quota API: setting, listing and showing the per-project
 * limits (quota.h); the limit in effect is core.c's.
 */
#include "core.h"
#include "quota.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
			if (strcmp(k, "project_id") &&
			    strcmp(k, "project_quotas"))
				return gl_fail(err, 400, "BadRequest",
					       "Unexpected key '%s' in quota "
					       "entry %zu",
					       k, i);
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
					       "':'",
					       name);
			if (json_integer_value(val) < -1)
				return gl_fail(err, 400, "BadRequest",
					       "quota_value must be >= -1");
		}
	}
	return 0;
}

int gl_quota_set(gl_engine *e, const gl_ctx *ctx, const json_t *body,
		 gl_err *err)
{
	if (gl_core_policy(e, ctx, "artifact:set_quotas", NULL, err) < 0 ||
	    gl_core_json_ok(e, body, "The request body", err) < 0 ||
	    check_quota_body(body, err) < 0)
		return -1;
	if (gl_meta_begin(e->meta, err) < 0)
		return -1;
	if (gl_meta_quotas_set(e->meta, body, err) < 0 ||
	    gl_events_emit(e->events, "set_quotas", NULL, NULL, NULL, err) <
		    0 ||
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
			snprintf(k, sizeof k, "max_artifact_number:%s",
				 tc->name);
			json_object_set_new(g, k,
					    json_integer(
						    tc->max_artifact_number));
		}
		if (tc->max_uploaded_data != -1) {
			snprintf(k, sizeof k, "max_uploaded_data:%s",
				 tc->name);
			json_object_set_new(g, k,
					    json_integer(
						    tc->max_uploaded_data));
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

int gl_quota_list(gl_engine *e, const gl_ctx *ctx, json_t **out, gl_err *err)
{
	json_t *all = NULL, *list, *v;
	const char *p;

	if (gl_core_policy(e, ctx, "artifact:list_all_quotas", NULL, err) <
		    0 ||
	    gl_meta_quotas_get(e->meta, NULL, &all, err) < 0)
		return -1;
	list = json_array();
	json_object_foreach(all, p, v)
		json_array_append_new(list,
				      json_pack("{s:s, s:o}", "project_id", p,
						"project_quotas",
						quota_list(v)));
	json_decref(all);
	*out = json_pack("{s:o, s:o}", "quotas", list, "global_quotas",
			 global_quotas(e));
	return 0;
}

int gl_quota_project(gl_engine *e, const gl_ctx *ctx, const char *project,
		     json_t **out, gl_err *err)
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
	ok = gl_core_policy_ok(e, ctx, "artifact:list_project_quotas", target);
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
