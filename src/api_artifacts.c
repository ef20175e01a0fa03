/* api_artifacts.c - handlers for schemas and artifacts (E1-E7, E17 of
 * docs/glare-contract.md "Endpoints"): request shape and media types
 * here, every rule in the engine. */
#include "api.h"
#include "engine.h"

#include <stdlib.h>

#define E(ar) ((ar)->app->engine)

void gl_h_schemas(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_art_schemas(E(ar), &ar->ctx, NULL, &out, &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_schema(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_art_schemas(E(ar), &ar->ctx, ar->type, &out, &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_list(gl_api_req *ar)
{
	gl_kv *kv = calloc((size_t)ar->nquery + 1, sizeof *kv);
	gl_sb out = { 0 };
	gl_err err = { 0 };
	int rc;

	if (!kv) {
		gl_api_fail(ar, 500, NULL, "out of memory");
		return;
	}
	for (int i = 0; i < ar->nquery; i++) {
		kv[i].name = ar->query[i].name;
		kv[i].value = ar->query[i].value;
	}
	rc = gl_art_list_text(E(ar), &ar->ctx, ar->type, kv, ar->nquery, &out,
			      &err);
	free(kv);
	if (rc < 0) {
		gl_sb_free(&out);
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_api_reply_json_text(ar, 200, out.p);
}

static void create_body(gl_api_req *ar, json_t *body)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_art_create(E(ar), &ar->ctx, ar->type, body, &out, &err);
	gl_api_reply_result(ar, rc, 201, out, &err);
}

/* Glare judges the body before the type or the artifact: an unparsable
 * body is 400 wherever it goes. A client waiting for "100 Continue" has
 * sent no body yet, so what needs none is answered first: it need not
 * send the body to learn that the type does not exist. */
static int waits_for_continue(gl_api_req *ar)
{
	return gl_http_header(ar->http, "Expect") != NULL;
}

void gl_h_create(gl_api_req *ar)
{
	gl_err err = { 0 };

	if (gl_api_require_media(ar, "application/json") < 0)
		return;
	if (waits_for_continue(ar) &&
	    gl_art_precheck_create(E(ar), &ar->ctx, ar->type, &err) < 0) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_api_read_json(ar, create_body);
}

void gl_h_show(gl_api_req *ar)
{
	gl_sb out = { 0 };
	gl_err err = { 0 };

	if (gl_art_show_text(E(ar), &ar->ctx, ar->type, ar->id, &out, &err) <
	    0) {
		gl_sb_free(&out);
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_api_reply_json_text(ar, 200, out.p);
}

static void update_body(gl_api_req *ar, json_t *patch)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_art_update(E(ar), &ar->ctx, ar->type, ar->id, patch, &out,
			       &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_update(gl_api_req *ar)
{
	gl_err err = { 0 };

	if (gl_api_require_media(ar, "application/json-patch+json") < 0)
		return;
	if (waits_for_continue(ar) &&
	    gl_art_precheck_update(E(ar), &ar->ctx, ar->type, ar->id, &err) <
		    0) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_api_read_json(ar, update_body);
}

void gl_h_delete(gl_api_req *ar)
{
	gl_err err = { 0 };
	int rc = gl_art_delete(E(ar), &ar->ctx, ar->type, ar->id, &err);
	gl_api_reply_result(ar, rc, 204, NULL, &err);
}
