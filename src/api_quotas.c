/* api_quotas.c - handlers for the dynamic quotas API (E13-E16 of
 * docs/glare-contract.md "Endpoints"). */
#include "api.h"
#include "engine.h"

#define E(ar) ((ar)->app->engine)

static void set_body(gl_api_req *ar, json_t *body)
{
	gl_err err = { 0 };
	int rc = gl_quota_set(E(ar), &ar->ctx, body, &err);

	gl_api_reply_result(ar, rc, 200, json_null(), &err);
}

void gl_h_quotas_put(gl_api_req *ar)
{
	if (gl_api_require_media(ar, "application/json") < 0)
		return;
	gl_api_read_json(ar, set_body);
}

void gl_h_quotas_get(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_quota_list(E(ar), &ar->ctx, &out, &err);

	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_project_quotas(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_quota_project(E(ar), &ar->ctx, ar->project, &out, &err);

	gl_api_reply_result(ar, rc, 200, out, &err);
}
