/* api.c - Glare v1 request pipeline: id, healthcheck, versions, auth,
 * router, JSON I/O (see api.h). */
#include "api.h"
#include "access.h"
#include "coro.h"
#include "engine.h"
#include "fault.h"
#include "health.h"
#include "jlimits.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <http_parser.h>

#define VER_MIN 0 /* 1.0 */
#define VER_MAX 1 /* 1.1 */

/* Values taken from the path and the query, after percent-decoding, are
 * checked here, at the edge: UTF-8, no control character, bounded. Past
 * this point they go into JSON (jansson refuses bad UTF-8), SQL, Lua and
 * log lines. Lengths in bytes. */
#define MAX_PATH_NAME 255    /* type name, artifact id, field, project */
#define MAX_BLOB_KEY 4096    /* a type's max_key_length applies after */
#define MAX_QUERY_VALUE 8192 /* one query parameter, name or value */
#define MAX_QUERY_PARAMS 256

/* ---- request lifetime ----------------------------------------------------- */

static void ar_free(gl_api_req *ar)
{
	if (ar->freed)
		*ar->freed = 1;
	gl_auth_cancel(ar->auth_wait);
	if (ar->held_status) {
		gl_engine_durable_cancel(ar->app->engine, ar);
		free(ar->held_body);
	}
	if (ar->cleanup)
		ar->cleanup(ar);
	json_decref(ar->body_json);
	gl_ctx_free(&ar->ctx);
	free(ar->type);
	free(ar->id);
	free(ar->field);
	free(ar->key);
	free(ar->project);
	for (int i = 0; i < ar->nquery; i++) {
		free(ar->query[i].name);
		free(ar->query[i].value);
	}
	free(ar->query);
	if (ar->body)
		evbuffer_free(ar->body);
	free(ar);
}

void gl_api_finish(gl_api_req *ar)
{
	ar->done = 1;
	gl_http_on_close(ar->http, NULL, NULL);
	ar_free(ar);
}

/* the connection died under an unfinished request */
static void ar_on_close(gl_http_req *req, void *arg)
{
	gl_api_req *ar = arg;
	ar_free(ar);
}

void gl_api_add_common_headers(gl_api_req *ar)
{
	char v[32];

	gl_http_set_header(ar->http, "x-openstack-request-id",
			   ar->ctx.request_id);
	if (ar->ver_minor >= 0) {
		snprintf(v, sizeof v, "artifact 1.%d", ar->ver_minor);
		gl_http_set_header(ar->http, "OpenStack-API-Version", v);
		gl_http_set_header(ar->http, "Vary", "OpenStack-API-Version");
	}
}

/* ---- handlers in coroutines ---------------------------------------------
 * Every step of a request that may reach the metadata store runs in a
 * coroutine (coro.h), so a wait for PostgreSQL lets the worker serve
 * others. The request's connection is held meanwhile (gl_http_hold): a
 * client that leaves is noticed after the step, which finishes (its
 * transaction commits or rolls back as it would have) and answers no one.
 */

typedef struct api_step {
	gl_api_req *ar;
	void (*fn)(gl_api_req *ar);
	gl_http_pin *pin;
} api_step;

static void api_step_run(void *arg)
{
	api_step st = *(api_step *)arg; /* the starter's frame goes away */

	st.fn(st.ar); /* may free ar (a reply) */
	gl_http_release(st.pin);
}

void gl_api_go(gl_api_req *ar, void (*fn)(gl_api_req *ar))
{
	api_step st = { ar, fn, gl_http_hold(ar->http) };

	gl_coro_go(api_step_run, &st);
}

/* ---- replies ------------------------------------------------------------ */

/* Python-style separators, UTF-8 unescaped, floats round-trip; NULL when
 * out of memory */
static char *dump_json(json_t *body)
{
	return json_dumps(body, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

static const char json_ct[] = "application/json; charset=UTF-8";

static void send_json(gl_http_req *req, int status, json_t *body,
		      const char *ctype)
{
	char *s = dump_json(body);

	gl_http_set_header(req, "Content-Type", ctype);
	if (!s) {
		static const char oops[] = "{\"code\": 500}";
		gl_http_reply(req, 500, oops, sizeof oops - 1);
		return;
	}
	gl_http_reply(req, status, s, strlen(s));
	free(s);
}

static json_t *fault_json(gl_http_req *req, int status, const char *type,
			  const char *msg)
{
	json_t *f = gl_fault_json(status, type, msg);

	if (status == 406) {
		json_object_set_new(f, "min_version", json_string("1.0"));
		json_object_set_new(f, "max_version", json_string("1.1"));
	}
	if (status >= 500) {
		gl_error("request %s failed: %d %s: %s",
			 gl_http_request_id(req), status, type ? type : "-",
			 msg);
		gl_metrics_fault(type, msg);
	}
	return f;
}

static void send_fault(gl_http_req *req, int status, const char *type,
		       const char *msg)
{
	json_t *f = fault_json(req, status, type, msg);

	send_json(req, status, f, json_ct);
	json_decref(f);
}

/* A held reply goes out: its request's commits are durable (ok), or the
 * sync failed and the write may be lost. */
static void release_reply(void *arg, int ok)
{
	gl_api_req *ar = arg;
	int status = ar->held_status;
	char *body = ar->held_body;

	ar->held_status = 0;
	ar->held_body = NULL;
	if (ok) {
		gl_http_set_header(ar->http, "Content-Type", ar->held_ctype);
		gl_http_reply(ar->http, status, body, body ? strlen(body) : 0);
	} else {
		send_fault(ar->http, 500, "InternalServerError",
			   "The change"
			   " may not be durable: the database could not be"
			   " synced");
	}
	free(body);
	gl_api_finish(ar);
}

/* Group commit: the reply to anything but a read waits until the commits
 * made so far are durable (gl_engine_when_durable), so no write is
 * acknowledged before it is. Takes body (NULL: none); 1 if held, 0 if
 * the reply may go now. */
static int hold_reply(gl_api_req *ar, int status, char *body, const char *ct)
{
	int m = gl_http_method_id(ar->http), rc;

	if (m == HTTP_GET || m == HTTP_HEAD || !ar->app->engine)
		return 0;
	rc = gl_engine_when_durable(ar->app->engine, release_reply, ar);
	if (rc == 0)
		return 0;
	/* an answer given before the body was taken (a refusal) waits too:
	 * the body stays unread until it goes, not judged "not handled" */
	if (rc > 0)
		gl_http_body_hold(ar->http);
	ar->held_status = status;
	ar->held_body = body;
	ar->held_ctype = ct;
	if (rc < 0)
		release_reply(ar, 0);
	return 1;
}

/* The reply (body s, taken; NULL: none), now or once durable. */
static void reply_text(gl_api_req *ar, int status, char *s, const char *ct)
{
	if (hold_reply(ar, status, s, ct))
		return;
	gl_http_set_header(ar->http, "Content-Type", ct);
	gl_http_reply(ar->http, status, s, s ? strlen(s) : 0);
	free(s);
	gl_api_finish(ar);
}

static void reply_value(gl_api_req *ar, int status, json_t *body,
			const char *ct)
{
	char *s = dump_json(body ? body : json_null());

	json_decref(body);
	if (!s) {
		static const char oops[] = "{\"code\": 500}";

		gl_http_set_header(ar->http, "Content-Type", ct);
		gl_http_reply(ar->http, 500, oops, sizeof oops - 1);
		gl_api_finish(ar);
		return;
	}
	reply_text(ar, status, s, ct);
}

void gl_api_reply_json(gl_api_req *ar, int status, json_t *body)
{
	const char *ct = json_ct;

	if (!strncmp(gl_http_path(ar->http), "/schemas", 8) && status == 200)
		ct = "application/schema+json; charset=UTF-8";
	gl_api_add_common_headers(ar);
	reply_value(ar, status, body, ct);
}

void gl_api_reply_json_text(gl_api_req *ar, int status, char *text)
{
	gl_api_add_common_headers(ar);
	reply_text(ar, status, text, json_ct);
}

void gl_api_reply_empty(gl_api_req *ar, int status)
{
	gl_api_add_common_headers(ar);
	/* clients read the header even without a body; Glare's (webob's)
	 * default */
	reply_text(ar, status, NULL, "text/html; charset=UTF-8");
}

void gl_api_reply_result(gl_api_req *ar, int rc, int status, json_t *out,
			 const gl_err *err)
{
	if (rc < 0)
		gl_api_reply_fault(ar, err);
	else if (status == 204)
		gl_api_reply_empty(ar, 204);
	else
		gl_api_reply_json(ar, status, out);
}

/* Headers a handler may set for its error reply (405, 416); any other
 * it set was for a success that did not happen. */
/* clang-format off */
static const char *const fault_headers[] = { "Allow", "Content-Range",
					     NULL };
/* clang-format on */

void gl_api_reply_fault(gl_api_req *ar, const gl_err *err)
{
	int status = err->status ? err->status : 500;
	const char *chal = gl_auth_challenge(ar->app->auth);

	gl_http_keep_headers(ar->http, fault_headers);
	if (status == 401 && chal)
		gl_http_set_header(ar->http, "WWW-Authenticate", chal);
	gl_api_add_common_headers(ar);
	reply_value(ar, status,
		    fault_json(ar->http, status,
			       err->type[0] ? err->type : NULL, err->msg),
		    json_ct);
}

void gl_api_fail(gl_api_req *ar, int status, const char *type, const char *fmt,
		 ...)
{
	gl_err e = { .status = status };
	va_list ap;

	snprintf(e.type, sizeof e.type, "%s",
		 type ? type : gl_err_default_type(status));
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	gl_api_reply_fault(ar, &e);
}

/* protocol errors from http.c: no api request exists yet */
void gl_api_http_error(gl_http_req *req, int status, const char *msg,
		       void *app)
{
	char uuid[37], id[48];

	if (!gl_http_request_id(req)[0]) {
		gl_uuid4(uuid);
		snprintf(id, sizeof id, "req-%s", uuid);
		gl_http_set_request_id(req, id);
	}
	gl_http_keep_headers(req, fault_headers);
	gl_http_set_header(req, "x-openstack-request-id",
			   gl_http_request_id(req));
	send_fault(req, status, gl_err_default_type(status), msg);
}

int gl_api_policy(gl_api_req *ar, const char *rule, const json_t *target)
{
	gl_creds cr;

	gl_ctx_creds(&ar->ctx, &cr);
	if (gl_policy_check(ar->app->policy, rule, &cr, target))
		return 1;
	gl_api_fail(ar, 403, "PolicyException",
		    "Policy check for %s failed with user credentials.", rule);
	return 0;
}

int gl_api_require_media(gl_api_req *ar, const char *media)
{
	const char *ct = gl_http_header(ar->http, "Content-Type");
	char mt[128];

	if (!ct) {
		gl_api_fail(ar, 400, "BadRequest",
			    "Content-Type must be specified");
		return -1;
	}
	gl_media_type(ct, mt, sizeof mt);
	if (strcmp(mt, media) != 0) {
		gl_api_fail(ar, 415, "UnsupportedMediaType",
			    "Unsupported Content-Type: %s (expected %s)", mt,
			    media);
		return -1;
	}
	return 0;
}

const char *gl_api_query_get(const gl_api_req *ar, const char *name)
{
	for (int i = 0; i < ar->nquery; i++)
		if (!strcmp(ar->query[i].name, name))
			return ar->query[i].value;
	return NULL;
}

/* ---- JSON bodies ---------------------------------------------------------- */

static int json_body_data(gl_http_req *req, const char *data, size_t len,
			  void *arg)
{
	gl_api_req *ar = arg;

	if ((int64_t)(evbuffer_get_length(ar->body) + len) >
	    ar->app->conf->max_json_body) {
		gl_api_fail(ar, 413, "RequestEntityTooLarge",
			    "The request body exceeds %lld bytes",
			    (long long)ar->app->conf->max_json_body);
		return GL_HTTP_BODY_ABORT;
	}
	evbuffer_add(ar->body, data, len);
	return GL_HTTP_BODY_OK;
}

static void json_body_step(gl_api_req *ar)
{
	json_t *j = ar->body_json;

	ar->body_json = NULL;
	ar->body_cb(ar, j); /* may free ar */
	json_decref(j);
}

static void json_body_done(gl_http_req *req, void *arg)
{
	gl_api_req *ar = arg;
	size_t len = evbuffer_get_length(ar->body);
	const char *p = (const char *)evbuffer_pullup(ar->body, -1);
	json_error_t je;
	json_t *j;

	gl_jlimits lim;
	gl_err err = { 0 };

	if (len == 0) {
		gl_api_fail(ar, 400, "BadRequest",
			    "Malformed JSON: empty body");
		return;
	}
	/* counted on the bytes before the parser builds a million values;
	 * U+0000 is refused for every body here (jlimits.h says why) */
	gl_jlimits_of(ar->app->conf, &lim);
	if (gl_jlimits_scan(p, len, &lim, &err) < 0) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	j = json_loadb(p, len, JSON_DECODE_ANY, &je);
	if (!j && json_error_code(&je) == json_error_null_character) {
		gl_api_fail(ar, 400, "BadRequest",
			    "The request body has a "
			    "string with U+0000, which is not allowed");
		return;
	}
	if (!j) {
		gl_api_fail(ar, 400, "BadRequest",
			    "Malformed JSON in request "
			    "body: %s",
			    je.text);
		return;
	}
	evbuffer_free(ar->body);
	ar->body = NULL;
	ar->body_json = j;
	gl_api_go(ar, json_body_step);
}

void gl_api_read_json(gl_api_req *ar, gl_api_json_fn cb)
{
	int64_t cl = gl_http_content_length(ar->http);

	if (cl > ar->app->conf->max_json_body) {
		gl_api_fail(ar, 413, "RequestEntityTooLarge",
			    "The request body exceeds %lld bytes",
			    (long long)ar->app->conf->max_json_body);
		return;
	}
	ar->body = evbuffer_new();
	ar->body_cb = cb;
	gl_http_body_accept(ar->http, json_body_data, json_body_done, ar);
}

/* NULL if s is acceptable text of at most max bytes, else why not (into
 * buf). */
static const char *text_problem(const char *s, size_t max, char *buf,
				size_t len)
{
	size_t n = strlen(s);

	if (n > max) {
		snprintf(buf, len, "longer than %zu bytes", max);
		return buf;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "contains a control character";
	if (!gl_utf8_valid(s, n, 1))
		return "not valid UTF-8";
	return NULL;
}

/* ---- query string --------------------------------------------------------- */

/* 0, or -1 with the reason in msg (the caller answers 400). */
/* gl_query_parse's callback: one parameter into ar->query, checked */
static int add_query_param(void *arg, char *k, char *v, gl_err *err)
{
	gl_api_req *ar = arg;
	gl_qparam *nq = realloc(ar->query, sizeof *nq * (ar->nquery + 1));
	const char *bad = NULL;
	char buf[64];
	int rc = -1;

	if (nq)
		ar->query = nq;
	if (!nq)
		gl_fail(err, 400, NULL,
			"Malformed percent-encoding in the "
			"query string");
	else if (ar->nquery >= MAX_QUERY_PARAMS)
		gl_fail(err, 400, NULL, "More than %d query parameters",
			MAX_QUERY_PARAMS);
	else if ((bad = text_problem(k, MAX_QUERY_VALUE, buf, sizeof buf)) ||
		 (bad = text_problem(v, MAX_QUERY_VALUE, buf, sizeof buf)))
		gl_fail(err, 400, NULL, "Invalid query parameter: %s", bad);
	else
		rc = 0;
	if (rc < 0) {
		free(k);
		free(v);
		return -1;
	}
	ar->query[ar->nquery].name = k;
	ar->query[ar->nquery].value = v;
	ar->nquery++;
	return 0;
}

static int parse_query(gl_api_req *ar, const char *q, gl_err *err)
{
	return gl_query_parse(q, add_query_param, ar, err);
}

/* ---- versions ------------------------------------------------------------- */

static json_t *version_obj(const char *v, const char *status)
{
	char id[16], mt[64];
	snprintf(id, sizeof id, "v%s", v);
	snprintf(mt, sizeof mt, "application/vnd.openstack.artifacts-%s", v);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}",
			 "id", id, "version", v, "min_version", "1.0",
			 "status", status, "media-type", mt, "links", "rel",
			 "describedby", "type", "text/html", "href",
			 "http://docs.openstack.org/");
}

static void reply_versions(gl_api_req *ar)
{
	json_t *doc = json_pack("{s:[o, o]}", "versions",
				version_obj("1.0", "STABLE"),
				version_obj("1.1", "EXPERIMENTAL"));
	ar->ver_minor = -1;
	gl_api_reply_json(ar, 300, doc);
}

/* Parse "X.Y" / "latest" into a minor version. 0 ok, -1 malformed (400),
 * -2 out of range (406). */
static int parse_version(const char *s, int *minor)
{
	const char *p = s;
	long maj, min;
	char *end;

	if (!strcasecmp(s, "latest")) {
		*minor = VER_MAX;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	maj = strtol(p, &end, 10);
	if (*end != '.')
		return -1;
	p = end + 1;
	if (!isdigit((unsigned char)*p) || (p[0] == '0' && p[1] != '\0'))
		return -1;
	min = strtol(p, &end, 10);
	if (*end != '\0')
		return -1;
	if (maj != 1 || min < VER_MIN || min > VER_MAX)
		return -2;
	*minor = (int)min;
	return 0;
}

static int negotiate(gl_api_req *ar)
{
	const char *acc = gl_http_header(ar->http, "Accept");
	const char *hdr = gl_http_header(ar->http, "OpenStack-API-Version");
	static const char pfx[] = "application/vnd.openstack.artifacts-";
	char ver[64] = "";
	int rc, minor;

	ar->ver_minor = VER_MIN;
	if (acc && !strncasecmp(acc, pfx, sizeof pfx - 1)) {
		snprintf(ver, sizeof ver, "%.*s",
			 (int)strcspn(acc + sizeof pfx - 1, ",; \t"),
			 acc + sizeof pfx - 1);
	} else if (hdr) {
		/* "artifact 1.1" possibly among other services, comma-separated */
		const char *p = hdr;
		while (p && *p) {
			while (*p == ' ' || *p == ',')
				p++;
			if (!strncasecmp(p, "artifact", 8) &&
			    (p[8] == ' ' || p[8] == '\t')) {
				p += 8;
				while (*p == ' ' || *p == '\t')
					p++;
				snprintf(ver, sizeof ver, "%.*s",
					 (int)strcspn(p, ", \t"), p);
				break;
			}
			p = strchr(p, ',');
		}
	}
	if (!ver[0])
		return 0;
	ar->ver_set = 1;
	rc = parse_version(ver, &minor);
	if (rc == -1) {
		ar->ver_minor = -1;
		gl_api_fail(ar, 400, "BadRequest",
			    "Version %s is not a valid API version: it must be "
			    "'latest' or 'X.Y'",
			    ver);
		return -1;
	}
	if (rc == -2) {
		ar->ver_minor = -1;
		gl_api_fail(ar, 406, "InvalidGlobalAPIVersion",
			    "Version %s is not supported by the API. Minimum "
			    "is 1.0 and maximum is 1.1.",
			    ver);
		return -1;
	}
	ar->ver_minor = minor;
	return 0;
}

/* The verdict of a token check came from the event loop. */
static void auth_done(void *arg, const gl_err *err)
{
	gl_api_req *ar = arg;
	gl_http_req *req = ar->http;
	int freed = 0;

	ar->auth_wait = NULL;
	if (err) {
		gl_api_reply_fault(ar, err);
		return;
	}
	/* the body waited for this verdict only: from here the handler
	 * decides, now or in a coroutine (whose last release judges) */
	gl_http_body_unhold(req);
	ar->freed = &freed;
	ar->next(ar);
	if (freed)
		return;
	ar->freed = NULL;
	/* what http.c judges after a dispatch, for the body held till now */
	if (gl_http_undecided(req)) {
		gl_error("api: handler neither replied nor took the body of "
			 "%s %s",
			 gl_http_method(req), gl_http_path(req));
		gl_api_fail(ar, 500, NULL, "Request not handled");
	}
}

/* Establish the caller (gl_auth_begin), then go on with next: at once, or
 * from the event loop once a token check is back. */
static void authenticate(gl_api_req *ar, void (*next)(gl_api_req *ar))
{
	gl_err err = { 0 };

	ar->next = next;
	switch (gl_auth_begin(ar->app->auth, ar->app->policy, ar->http,
			      &ar->ctx, auth_done, ar, &ar->auth_wait, &err)) {
	case 0:
		next(ar);
		return;
	case 1:
		/* a token check is out: not one body byte before its verdict */
		gl_http_body_hold(ar->http);
		return;
	default:
		gl_api_reply_fault(ar, &err);
		return;
	}
}

/* /metrics and the detailed healthcheck: [DEFAULT] metrics_access decides
 * who may read: anyone (open), loopback clients, or admins only. The peer
 * is the socket's (never X-Forwarded-For): a header cannot make a remote
 * client local. */
static int is_loopback(const char *peer)
{
	return !strncmp(peer, "127.", 4) || !strcmp(peer, "::1") ||
	       !strncmp(peer, "::ffff:127.", 11);
}

static int operator_open(gl_api_req *ar)
{
	const char *mode = ar->app->conf->metrics_access;

	return !strcmp(mode, "open") || (!strcmp(mode, "loopback") &&
					 is_loopback(gl_http_peer(ar->http)));
}

/* After authenticate(): 1 if the caller is an admin, else replied. */
static int operator_admin(gl_api_req *ar)
{
	if (ar->ctx.is_admin)
		return 1;
	gl_api_fail(ar, 403, "Forbidden",
		    "This is for admins (or loopback "
		    "clients): see metrics_access");
	return 0;
}

static void metrics_reply(gl_api_req *ar)
{
	size_t len;
	char *text = gl_metrics_render(&len);

	gl_http_set_header(ar->http, "x-openstack-request-id",
			   ar->ctx.request_id);
	gl_http_set_header(ar->http, "Content-Type",
			   "text/plain; version=0.0.4; charset=utf-8");
	gl_http_reply(ar->http, 200, text, len);
	free(text);
	gl_api_finish(ar);
}

static void metrics_admin(gl_api_req *ar)
{
	if (operator_admin(ar))
		metrics_reply(ar);
}

static void metrics(gl_api_req *ar)
{
	if (operator_open(ar))
		metrics_reply(ar);
	else
		authenticate(ar, metrics_admin);
}

static int disabled_by_file(gl_api_req *ar)
{
	struct stat st;
	const char *f = ar->app->conf->healthcheck_disable_file;

	return f && *f && stat(f, &st) == 0;
}

/* ?detailed=true (oslo.middleware's convention): every part checked,
 * as JSON; 503 names the first part that failed. */
static void healthcheck_detailed(gl_api_req *ar)
{
	json_t *doc = json_object(), *reasons = json_array(), *r;
	const char *f = ar->app->conf->healthcheck_disable_file;
	int down = disabled_by_file(ar);
	const char *bad = NULL;
	char now[40];
	int nbad;

	r = json_pack("{s:s, s:s, s:{s:s?}}", "class", "disable_by_file",
		      "reason", down ? "DISABLED BY FILE" : "OK", "details",
		      "path", f);
	json_array_append_new(reasons, r);
	nbad = gl_health_check(ar->app->engine, reasons, &bad);
	if (down)
		bad = "disable_by_file"; /* listed first */
	gl_iso8601(gl_now_us(), now);
	json_object_set_new(doc, "detailed", json_true());
	json_object_set_new(doc, "now", json_string(now));
	json_object_set_new(doc, "version", json_string(GLARED_VERSION));
	json_object_set_new(doc, "pid", json_integer(getpid()));
	json_object_set_new(doc, "reasons", reasons);
	if (bad) {
		char msg[160];
		snprintf(msg, sizeof msg, "%s failed", bad);
		json_object_set_new(doc, "failed", json_string(bad));
		json_object_set_new(doc, "message", json_string(msg));
	}
	ar->ver_minor = -1;
	gl_api_reply_json(ar, down || nbad ? 503 : 200, doc);
}

static void healthcheck_admin(gl_api_req *ar)
{
	if (operator_admin(ar))
		gl_api_go(ar, healthcheck_detailed); /* it reads the store */
}

static void healthcheck(gl_api_req *ar)
{
	int down = disabled_by_file(ar);
	const char *body = down ? "DISABLED BY FILE" : "OK";
	const char *q = gl_http_query(ar->http);
	gl_err err;

	/* a malformed query is ignored here: the probe answers anyway */
	if (q && parse_query(ar, q, &err) == 0) {
		const char *d = gl_api_query_get(ar, "detailed");
		int on = 0;
		if (d && gl_conf_parse_bool(d, &on) == 0 && on) {
			if (operator_open(ar))
				healthcheck_detailed(ar);
			else
				authenticate(ar, healthcheck_admin);
			return;
		}
	}
	gl_http_set_header(ar->http, "x-openstack-request-id",
			   ar->ctx.request_id);
	gl_http_set_header(ar->http, "Content-Type",
			   "text/plain; charset=UTF-8");
	gl_http_reply(ar->http, down ? 503 : 200, body, strlen(body));
	gl_api_finish(ar);
}

/* ---- router ----------------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_PATCH = 8, M_DELETE = 16 };

typedef void (*handler_fn)(gl_api_req *ar);

typedef struct route {
	unsigned methods;
	handler_fn get, post, put, patch, del;
	unsigned body_reject; /* methods whose requests must not have a body */
} route;

static const route r_schemas = { M_GET, gl_h_schemas, 0, 0, 0, 0, M_GET };
static const route r_schema = { M_GET, gl_h_schema, 0, 0, 0, 0, M_GET };
/* clang-format off */
static const route r_list = { M_GET | M_POST, gl_h_list, gl_h_create, 0, 0,
			      0, M_GET };
static const route r_artifact = { M_GET | M_PATCH | M_DELETE, gl_h_show, 0, 0,
				  gl_h_update, gl_h_delete,
				  M_GET | M_DELETE };
static const route r_blob = { M_GET | M_PUT | M_DELETE, gl_h_blob_get, 0,
			      gl_h_blob_put, 0, gl_h_blob_delete, M_GET };
static const route r_quotas = { M_GET | M_PUT, gl_h_quotas_get, 0,
				gl_h_quotas_put, 0, 0, M_GET };
static const route r_pquotas = { M_GET, gl_h_project_quotas, 0, 0, 0, 0,
				 M_GET };
static const route r_subs = { M_GET | M_POST, gl_h_subscription_list,
			      gl_h_subscription_create, 0, 0, 0, M_GET };
static const route r_sub = { M_GET | M_DELETE, gl_h_subscription_show, 0, 0,
			     0, gl_h_subscription_delete, M_GET | M_DELETE };
static const route r_sub_dl = { M_GET, gl_h_subscription_deliveries, 0, 0, 0,
				0, M_GET };
/* clang-format on */

static unsigned method_bit(int m)
{
	switch (m) {
	case HTTP_GET:
	case HTTP_HEAD:
		return M_GET;
	case HTTP_POST:
		return M_POST;
	case HTTP_PUT:
		return M_PUT;
	case HTTP_PATCH:
		return M_PATCH;
	case HTTP_DELETE:
		return M_DELETE;
	default:
		return 0;
	}
}

static void allow_header(char *buf, size_t len, unsigned m)
{
	buf[0] = '\0';
	if (m & M_GET)
		strncat(buf, "GET, HEAD, ", len - strlen(buf) - 1);
	if (m & M_POST)
		strncat(buf, "POST, ", len - strlen(buf) - 1);
	if (m & M_PUT)
		strncat(buf, "PUT, ", len - strlen(buf) - 1);
	if (m & M_PATCH)
		strncat(buf, "PATCH, ", len - strlen(buf) - 1);
	if (m & M_DELETE)
		strncat(buf, "DELETE, ", len - strlen(buf) - 1);
	if (strlen(buf) >= 2)
		buf[strlen(buf) - 2] = '\0';
}

/* Split the raw path into up to 4 decoded segments; the 4th of an
 * /artifacts path is the blob path (field[/key]) decoded as a whole. */
static const route *match(gl_api_req *ar, const char *path, int *bad)
{
	int *rt = &gl_http_note_of(ar->http)->route;
	const char *seg[4];
	size_t len[4];
	int n = 0;
	const char *p = path + 1; /* after the leading '/' */

	*bad = 0;
	while (n < 4) {
		const char *slash;
		if (n == 3 && !strncmp(path, "/artifacts/", 11)) {
			seg[n] = p;
			len[n] = strlen(p);
			n++;
			break;
		}
		slash = strchr(p, '/');
		seg[n] = p;
		len[n] = slash ? (size_t)(slash - p) : strlen(p);
		n++;
		if (!slash)
			break;
		p = slash + 1;
		if (n == 4)
			return NULL; /* too deep for anything but blobs */
	}
	for (int i = 0; i < n; i++)
		if (len[i] == 0 && !(i == n - 1 && i == 3))
			return NULL;

#define SEG(i, s) (len[i] == sizeof(s) - 1 && !memcmp(seg[i], s, len[i]))
#define DEC(i) gl_pct_decode(seg[i], len[i], 0)
	if (SEG(0, "schemas")) {
		if (n == 1) {
			*rt = GL_ROUTE_SCHEMAS;
			return &r_schemas;
		}
		if (n == 2) {
			*rt = GL_ROUTE_SCHEMA;
			if (!(ar->type = DEC(1)))
				*bad = 1;
			return &r_schema;
		}
		return NULL;
	}
	if (SEG(0, "quotas") && n == 1) {
		*rt = GL_ROUTE_QUOTAS;
		return &r_quotas;
	}
	if (SEG(0, "project-quotas")) {
		if (n == 1) {
			*rt = GL_ROUTE_PROJECT_QUOTAS;
			return &r_pquotas;
		}
		if (n == 2) {
			*rt = GL_ROUTE_PROJECT_QUOTA;
			if (!(ar->project = DEC(1)))
				*bad = 1;
			return &r_pquotas;
		}
		return NULL;
	}
	if (SEG(0, "subscriptions")) {
		if (n == 1) {
			*rt = GL_ROUTE_SUBSCRIPTIONS;
			return &r_subs;
		}
		if (!(ar->id = DEC(1)))
			*bad = 1;
		if (n == 2) {
			*rt = GL_ROUTE_SUBSCRIPTION;
			return &r_sub;
		}
		if (n != 3 || !SEG(2, "deliveries"))
			return NULL;
		*rt = GL_ROUTE_SUBSCRIPTION_DELIVERIES;
		return &r_sub_dl;
	}
	if (SEG(0, "artifacts") && n >= 2) {
		if (!(ar->type = DEC(1)))
			*bad = 1;
		if (n == 2) {
			*rt = GL_ROUTE_LIST;
			return &r_list;
		}
		if (!(ar->id = DEC(2)))
			*bad = 1;
		if (n == 3) {
			*rt = GL_ROUTE_ARTIFACT;
			return &r_artifact;
		}
		/* blob path: field[/key]; key may contain '/' */
		const char *slash = memchr(seg[3], '/', len[3]);
		size_t flen = slash ? (size_t)(slash - seg[3]) : len[3];
		if (!(ar->field = gl_pct_decode(seg[3], flen, 0)))
			*bad = 1;
		if (slash && slash + 1 < seg[3] + len[3]) {
			ar->has_key = 1;
			if (!(ar->key = gl_pct_decode(slash + 1,
						      len[3] - flen - 1, 0)))
				*bad = 1;
		}
		if (flen == 0) {
			*rt = GL_ROUTE_UNMATCHED;
			return NULL;
		}
		*rt = ar->has_key ? GL_ROUTE_BLOB_KEY : GL_ROUTE_BLOB;
		return &r_blob;
	}
#undef SEG
#undef DEC
	return NULL;
}

static int known_verb(int m)
{
	return method_bit(m) != 0;
}

static void route_request(gl_api_req *ar)
{
	const char *path = gl_http_path(ar->http);
	int m = gl_http_method_id(ar->http);
	unsigned bit = method_bit(m);
	const route *rt;
	handler_fn h = NULL;
	int bad;

	rt = match(ar, path, &bad);
	if (!rt) {
		if (!known_verb(m)) {
			gl_api_fail(ar, 501, "NotImplemented",
				    "Method %s is not implemented",
				    gl_http_method(ar->http));
			return;
		}
		gl_api_fail(ar, 404, "NotFound",
			    "The resource %s could not be "
			    "found",
			    path);
		return;
	}
	if (bad) {
		gl_api_fail(ar, 400, "BadRequest",
			    "Malformed percent-encoding in %s", path);
		return;
	}
	{
		static const char *const what[] = { "artifact type name",
						    "artifact id",
						    "blob field", "blob key",
						    "project id" };
		const char *v[] = { ar->type, ar->id, ar->field, ar->key,
				    ar->project };
		char buf[64];

		for (int i = 0; i < 5; i++) {
			const char *why =
				v[i] ? text_problem(v[i],
						    i == 3 ? MAX_BLOB_KEY
							   : MAX_PATH_NAME,
						    buf, sizeof buf)
				     : NULL;
			if (why) {
				gl_api_fail(ar, 400, "BadRequest",
					    "Invalid %s in the request path: "
					    "%s",
					    what[i], why);
				return;
			}
		}
	}
	if (!(rt->methods & bit)) {
		char allow[64];
		allow_header(allow, sizeof allow, rt->methods);
		gl_http_set_header(ar->http, "Allow", allow);
		gl_api_fail(ar, 405, "MethodNotAllowed",
			    "Method %s is not allowed for %s; allowed: %s",
			    gl_http_method(ar->http), path, allow);
		return;
	}
	if ((rt->body_reject & bit) && gl_http_has_body(ar->http)) {
		gl_api_fail(ar, 400, "BadRequest",
			    "A body is not expected with this request");
		return;
	}
	switch (bit) {
	case M_GET:
		h = rt->get;
		break;
	case M_POST:
		h = rt->post;
		break;
	case M_PUT:
		h = rt->put;
		break;
	case M_PATCH:
		h = rt->patch;
		break;
	case M_DELETE:
		h = rt->del;
		break;
	}
	if (rt == &r_blob && bit == M_PUT) {
		gl_http_note_of(ar->http)->uploading = 1;
		gl_metrics_uploads(1);
	}
	h(ar);
}

/* ---- dispatch --------------------------------------------------------------- */

/* The endpoints outside the router answer GET and HEAD only: 1 go on,
 * 0 answered 405. */
static int get_only(gl_api_req *ar, int route_id)
{
	gl_http_note_of(ar->http)->route = route_id;
	if (method_bit(gl_http_method_id(ar->http)) == M_GET)
		return 1;
	gl_http_set_header(ar->http, "Allow", "GET, HEAD");
	gl_api_fail(ar, 405, "MethodNotAllowed",
		    "Method %s is not allowed for %s",
		    gl_http_method(ar->http), gl_http_path(ar->http));
	return 0;
}

static void call(gl_api_req *ar, void (*fn)(gl_api_req *ar))
{
	fn(ar);
}

/* The API proper, once the caller is known: in a coroutine, since it
 * reaches the store. */
static void authenticated(gl_api_req *ar)
{
	gl_http_note *note = gl_http_note_of(ar->http);
	gl_err err = { 0 };

	snprintf(note->user, sizeof note->user, "%s",
		 ar->ctx.user_id ? ar->ctx.user_id : "");
	snprintf(note->project, sizeof note->project, "%s",
		 ar->ctx.project_id ? ar->ctx.project_id : "");
	if (parse_query(ar, gl_http_query(ar->http), &err) < 0) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_api_go(ar, route_request);
}

void gl_api_dispatch(gl_http_req *req, void *arg)
{
	gl_app *app = arg;
	gl_api_req *ar = calloc(1, sizeof *ar);
	const char *path = gl_http_path(req);
	char uuid[37];

	if (!ar) {
		gl_api_http_error(req, 500, "Out of memory", app);
		return;
	}
	ar->app = app;
	ar->http = req;
	ar->ver_minor = -1;
	gl_uuid4(uuid);
	snprintf(ar->ctx.request_id, sizeof ar->ctx.request_id, "req-%s",
		 uuid);
	gl_http_set_request_id(req, ar->ctx.request_id);
	gl_http_on_close(req, ar_on_close, ar);
	gl_http_note_of(req)->route = GL_ROUTE_UNMATCHED;

	if (!strcmp(path, "/metrics")) {
		if (get_only(ar, GL_ROUTE_METRICS))
			metrics(ar);
		return;
	}
	if (!strcmp(path, "/healthcheck")) {
		/* only ?detailed=true reads the database */
		if (get_only(ar, GL_ROUTE_HEALTHCHECK))
			(gl_http_query(req) ? gl_api_go : call)(ar,
								healthcheck);
		return;
	}
	if (!strcmp(path, "/") || !strcmp(path, "/versions")) {
		if (get_only(ar, path[1] ? GL_ROUTE_VERSIONS : GL_ROUTE_ROOT))
			reply_versions(ar);
		return;
	}
	if (negotiate(ar) < 0)
		return;
	authenticate(ar, authenticated);
}
