/* api.h - the Glare v1 HTTP API: negotiation, auth, routing, JSON I/O.
 *
 * api.c receives every request head from http.c and runs Glare's middleware
 * order: request id, healthcheck, version documents and negotiation (before
 * auth), authentication (which may wait for a token check on the event
 * loop, the request's body unread meanwhile), then the router (404 / 405 +
 * Allow / 501) and the endpoint handler. Handlers live in api_artifacts.c,
 * api_blobs.c, api_quotas.c and api_subscriptions.c and answer through the
 * helpers below, so every error leaves in Glare's fault format with the
 * request id and version headers.
 *
 * Uses http.c, auth.c, policy.c, fault.c, conf.c and jansson.
 */
#ifndef GL_API_H
#define GL_API_H

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "conf.h"
#include "err.h"
#include "http.h"
#include "policy.h"

struct gl_engine;

/* Everything a worker serves with. */
typedef struct gl_app {
	gl_conf *conf;
	gl_policy *policy;
	struct event_base *base;
	struct gl_engine *engine;
	gl_auth *auth;
} gl_app;

typedef struct gl_qparam {
	char *name, *value; /* percent-decoded */
} gl_qparam;

typedef struct gl_api_req gl_api_req;
typedef void (*gl_api_json_fn)(gl_api_req *ar, json_t *body);

struct gl_api_req {
	gl_app *app;
	gl_http_req *http;
	gl_ctx ctx;
	int ver_minor; /* negotiated 1.x */
	int ver_set;   /* the client asked for a version */
	/* route parameters, percent-decoded */
	char *type, *id, *field, *key, *project;
	int has_key;
	gl_qparam *query;
	int nquery;
	/* JSON body accumulation */
	struct evbuffer *body;
	gl_api_json_fn body_cb;
	json_t *body_json; /* parsed, on its way to body_cb */
	int done;
	gl_auth_wait *auth_wait; /* the token check this request waits for */
	void (*next)(gl_api_req *ar); /* what runs once the caller is known */
	int *freed;                   /* set to 1 when the request is freed */
	void *handler_data; /* owned by the handler; freed via cleanup */
	void (*cleanup)(gl_api_req *ar);
	/* a reply waiting for its commits to be durable (group commit) */
	int held_status; /* 0: none */
	char *held_body;
	const char *held_ctype;
};

/* Plug the API into an HTTP server's callbacks. */
void gl_api_dispatch(gl_http_req *req, void *app);
void gl_api_http_error(gl_http_req *req, int status, const char *msg,
		       void *app);

/* ---- replies (each frees the gl_api_req) ---------------------------------- */
void gl_api_reply_json(gl_api_req *ar, int status, json_t *body); /* steals */
/* A JSON body already written as text (application/json); takes text. */
void gl_api_reply_json_text(gl_api_req *ar, int status, char *text);
void gl_api_reply_fault(gl_api_req *ar, const gl_err *err);
void gl_api_fail(gl_api_req *ar, int status, const char *type, const char *fmt,
		 ...) __attribute__((format(printf, 4, 5)));
void gl_api_reply_empty(gl_api_req *ar, int status);
/* A handler's end: the fault of err when rc < 0, else status with out
 * (steals it; 204 sends no body). */
void gl_api_reply_result(gl_api_req *ar, int rc, int status, json_t *out,
			 const gl_err *err);
/* For handlers that reply through http.c themselves (blob downloads). */
void gl_api_add_common_headers(gl_api_req *ar);
void gl_api_finish(gl_api_req *ar);

/* Run fn(ar) in a coroutine (coro.h), holding the request's connection
 * until fn returns: every step of a request that may reach the metadata
 * store starts here, so a wait for PostgreSQL lets the worker go on. fn
 * runs at once, up to its first wait. */
void gl_api_go(gl_api_req *ar, void (*fn)(gl_api_req *ar));

/* Read the request body as JSON (media type already checked by caller),
 * then call cb with the parsed value (NULL never: errors are answered). */
void gl_api_read_json(gl_api_req *ar, gl_api_json_fn cb);

/* 1 if allowed; otherwise replies 403 "Policy check for <rule> failed ..."
 * and returns 0. target may be NULL. */
int gl_api_policy(gl_api_req *ar, const char *rule, const json_t *target);

/* Content-Type check: 0 ok, else replied (400 missing / 415 other). */
int gl_api_require_media(gl_api_req *ar, const char *media);

const char *gl_api_query_get(const gl_api_req *ar, const char *name);

/* Per-endpoint handlers (api_*.c). */
void gl_h_schemas(gl_api_req *ar);
void gl_h_schema(gl_api_req *ar);
void gl_h_list(gl_api_req *ar);
void gl_h_create(gl_api_req *ar);
void gl_h_show(gl_api_req *ar);
void gl_h_update(gl_api_req *ar);
void gl_h_delete(gl_api_req *ar);
void gl_h_blob_get(gl_api_req *ar);
void gl_h_blob_put(gl_api_req *ar);
void gl_h_blob_delete(gl_api_req *ar);
void gl_h_quotas_get(gl_api_req *ar);
void gl_h_quotas_put(gl_api_req *ar);
void gl_h_project_quotas(gl_api_req *ar);
void gl_h_subscription_create(gl_api_req *ar);
void gl_h_subscription_list(gl_api_req *ar);
void gl_h_subscription_show(gl_api_req *ar);
void gl_h_subscription_delete(gl_api_req *ar);
void gl_h_subscription_deliveries(gl_api_req *ar);

#endif
