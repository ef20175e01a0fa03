/* api_quotas.c - handlers for the dynamic quotas API (E13-E16 of
 * docs/glare-contract.md "Endpoints"). */
#include "api.h"
#include "engine.h"

#define E(ar) ((ar)->app->engine)

static void set_body(gl_api_req *ar, json_t *body)
{
	gl_err err = { 0 };
	if (gl_quota_set(E(ar), &ar->ctx, body, &err) < 0)
		gl_api_reply_fault(ar, &err);
	else
		gl_api_reply_json(ar, 200, json_null());
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
	if (gl_quota_list(E(ar), &ar->ctx, &out, &err) < 0)
		gl_api_reply_fault(ar, &err);
	else
		gl_api_reply_json(ar, 200, out);
}

void gl_h_project_quotas(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	if (gl_quota_project(E(ar), &ar->ctx, ar->project, &out,
				     &err) < 0)
		gl_api_reply_fault(ar, &err);
	else
		gl_api_reply_json(ar, 200, out);
}
