/* api_subscriptions.c - handlers of the webhook subscriptions API:
 *   POST   /subscriptions                   create
 *   GET    /subscriptions                   list (own project; admins all)
 *   GET    /subscriptions/{id}              show
 *   DELETE /subscriptions/{id}              delete
 *   GET    /subscriptions/{id}/deliveries   recent deliveries (?limit=)
 * Request shape here; rules and storage in subscriptions.c. */
#include "api.h"
#include "engine.h"
#include "events.h"

#include <stdlib.h>
#include <string.h>

#define EV(ar) gl_engine_events((ar)->app->engine)
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* type and artifact_id must name what the caller can see */
static int check_targets(gl_api_req *ar, json_t *body, gl_err *err)
{
	const char *type = json_string_value(json_object_get(body, "type"));
	const char *aid = json_string_value(
		json_object_get(body, "artifact_id"));
	json_t *out = NULL;

	if (type && !strcmp(type, "all")) {
		json_object_del(body, "type"); /* every type */
		type = NULL;
	}
	if (type &&
	    gl_art_schemas(ar->app->engine, &ar->ctx, type, &out, err) < 0)
		return -1;
	json_decref(out);
	out = NULL;
	if (aid && gl_art_show(ar->app->engine, &ar->ctx, "all", aid, &out,
			       err) < 0) {
		if (err->status != 404)
			return -1;
		return gl_fail(err, 400, "BadRequest",
			       "artifact_id %s is not an artifact you can see",
			       aid);
	}
	json_decref(out);
	return 0;
}

static void create_body(gl_api_req *ar, json_t *body)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = 0;

	if (json_is_object(body))
		rc = check_targets(ar, body, &err);
	if (rc == 0)
		rc = gl_subscription_create(EV(ar), ar->app->policy, &ar->ctx,
					    body, &out, &err);
	gl_api_reply_result(ar, rc, 201, out, &err);
}

void gl_h_subscription_create(gl_api_req *ar)
{
	if (gl_api_require_media(ar, "application/json") < 0)
		return;
	gl_api_read_json(ar, create_body);
}

void gl_h_subscription_list(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_subscription_list(EV(ar), ar->app->policy, &ar->ctx, &out,
				      &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_subscription_show(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_subscription_show(EV(ar), ar->app->policy, &ar->ctx,
				      ar->id, &out, &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}

void gl_h_subscription_delete(gl_api_req *ar)
{
	gl_err err = { 0 };
	int rc = gl_subscription_delete(EV(ar), ar->app->policy, &ar->ctx,
					ar->id, &err);
	gl_api_reply_result(ar, rc, 204, NULL, &err);
}

void gl_h_subscription_deliveries(gl_api_req *ar)
{
	const char *l = gl_api_query_get(ar, "limit");
	json_t *out = NULL;
	gl_err err = { 0 };
	long limit = DEFAULT_LIMIT;
	char *end;
	int rc;

	if (l) {
		limit = strtol(l, &end, 10);
		if (!*l || *end || limit < 1 || limit > MAX_LIMIT) {
			gl_api_fail(ar, 400, "BadRequest",
				    "limit must be an integer from 1 to %d",
				    MAX_LIMIT);
			return;
		}
	}
	rc = gl_subscription_deliveries(EV(ar), ar->app->policy, &ar->ctx,
					ar->id, (int)limit, &out, &err);
	gl_api_reply_result(ar, rc, 200, out, &err);
}
