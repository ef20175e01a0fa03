/* keystone.c - Keystone v3 token checks on the event loop (see keystone.h).
 *
 * State: glared's own token (svc_*), at most one login in flight, and the
 * checks: each is either waiting for a login (`waiting`) or has a request
 * out (`req`). Every check is also on the `all` list so freeing the
 * module can drop it without callbacks. */
#include "keystone.h"
#include "idhttp.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#define KS_MAX_BODY (1u << 20)       /* a token without catalog is ~1 KiB */
#define KS_LOGIN_MAX_BODY (8u << 20) /* glared's own, with the catalog */
#define KS_TIMEOUT 30                /* s for one exchange */
#define KS_MIN_LEFT                                                           \
	10 /* s: glared's token is not used closer
				  * than this (or an eighth of its life)
				  * to its end */

struct gl_ks_check {
	gl_keystone *k;
	char *tok;
	char tag[16];
	gl_ks_fn cb;
	void *arg;
	gl_idhttp_req *req;
	int attempts;      /* connection-level tries of the current call */
	int reauthed;      /* Keystone said 401 once: glared logged in anew */
	unsigned sent_gen; /* the service token the request carried */
	int waiting;       /* on k->waiting, for a login */
	gl_ks_check *prev, *next; /* k->all */
	gl_ks_check *wnext;       /* k->waiting */
};

struct gl_keystone {
	gl_idhttp *http;
	char *auth_v3;  /* auth_url's v3 root: logins */
	char *check_v3; /* where checks go (catalog or auth_v3) */
	char *login_body;
	char *interface, *region;
	int max_retries;
	/* glared's own token; its times on glared's clock (Keystone's
	 * lifetime counted from the login request), so a skew between
	 * the two clocks cannot make it look expired or everlasting */
	char *svc_token;
	time_t svc_issued, svc_expires;
	unsigned svc_gen; /* counts logins */
	gl_idhttp_req *login;
	time_t login_sent; /* the token is no older than this */
	int login_attempts;
	gl_ks_check *all;
	gl_ks_check *waiting, **waiting_tail;
};

static void start_login(gl_keystone *k);
static void send_check(gl_ks_check *c);

static int svc_usable(const gl_keystone *k, time_t now)
{
	time_t left = (k->svc_expires - k->svc_issued) / 8;

	if (left > KS_MIN_LEFT)
		left = KS_MIN_LEFT;
	return k->svc_token && now < k->svc_expires - left;
}

char *gl_keystone_v3_url(const char *url)
{
	size_t n = strlen(url);
	char *out;

	while (n && url[n - 1] == '/')
		n--;
	if (n >= 3 && !strncmp(url + n - 3, "/v3", 3))
		return strndup(url, n);
	out = malloc(n + 4);
	if (out) {
		memcpy(out, url, n);
		memcpy(out + n, "/v3", 4);
	}
	return out;
}

/* ---- checks ----------------------------------------------------------------- */

static void check_free(gl_ks_check *c)
{
	gl_keystone *k = c->k;

	if (c->req)
		gl_idhttp_cancel(c->req);
	if (c->waiting) {
		gl_ks_check **pp = &k->waiting;
		while (*pp && *pp != c)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = c->wnext;
		k->waiting_tail = &k->waiting;
		for (gl_ks_check *w = k->waiting; w; w = w->wnext)
			k->waiting_tail = &w->wnext;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		k->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->tok) {
		/* the credential does not linger in freed memory */
		memset(c->tok, 0, strlen(c->tok));
		free(c->tok);
	}
	free(c);
}

/* Report and forget the check. */
static void check_end(gl_ks_check *c, gl_ident *id, int status,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void check_end(gl_ks_check *c, gl_ident *id, int status,
		      const char *fmt, ...)
{
	gl_ks_fn cb = c->cb;
	void *arg = c->arg;
	gl_err err = { .status = status };
	va_list ap;

	c->req = NULL;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(err.msg, sizeof err.msg, fmt, ap);
		va_end(ap);
	}
	check_free(c);
	cb(arg, id, id ? NULL : &err);
}

static void wait_for_login(gl_ks_check *c)
{
	gl_keystone *k = c->k;

	c->waiting = 1;
	c->wnext = NULL;
	*k->waiting_tail = c;
	k->waiting_tail = &c->wnext;
	if (!k->login)
		start_login(k);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static char *jdup(json_t *o, const char *key)
{
	const char *s = jstr(o, key);
	return s ? gl_xstrdup(s) : NULL;
}

static int parse_time(const char *s, time_t *out)
{
	int64_t us;

	if (!s || gl_parse_iso8601(s, &us) < 0)
		return -1;
	*out = (time_t)(us / 1000000);
	return 0;
}

/* Keystone's token document -> identity. NULL with why. */
static gl_ident *ident_from(const char *body, size_t len, char *why,
			    size_t whylen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *tok = json_object_get(root, "token");
	json_t *user = json_object_get(tok, "user");
	json_t *proj = json_object_get(tok, "project");
	json_t *roles = json_object_get(tok, "roles"), *r;
	gl_ident *id = NULL;
	size_t i;

	if (!json_is_object(tok) || !json_is_object(user) ||
	    !jstr(user, "id")) {
		snprintf(why, whylen, "Keystone's answer has no token/user");
		goto out;
	}
	id = gl_ident_new();
	if (parse_time(jstr(tok, "expires_at"), &id->expires) < 0) {
		snprintf(why, whylen, "Keystone's answer has no expires_at");
		gl_ident_free(id);
		id = NULL;
		goto out;
	}
	id->user_id = jdup(user, "id");
	id->user_name = jdup(user, "name");
	id->user_domain_id = jdup(json_object_get(user, "domain"), "id");
	id->user_domain_name = jdup(json_object_get(user, "domain"), "name");
	if (json_is_object(proj)) {
		id->project_id = jdup(proj, "id");
		id->project_name = jdup(proj, "name");
		id->project_domain_id = jdup(json_object_get(proj, "domain"),
					     "id");
		id->project_domain_name = jdup(json_object_get(proj, "domain"),
					       "name");
	}
	json_array_foreach(roles, i, r) {
		const char *name = jstr(r, "name");
		if (name)
			gl_ident_add_role(id, name);
	}
out:
	json_decref(root);
	return id;
}

static int retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return 1;
	default:
		return 0;
	}
}

static void check_done(void *arg, const gl_idhttp_resp *r)
{
	gl_ks_check *c = arg;
	gl_keystone *k = c->k;
	char why[256];
	gl_ident *id;

	c->req = NULL;
	if (r->rc != CURLE_OK) {
		if (retryable(r->rc) && c->attempts <= k->max_retries) {
			gl_info("keystone: retrying the check of token %s: %s",
				c->tag, r->error);
			send_check(c);
			return;
		}
		check_end(c, NULL, 503, "Keystone unreachable: %s", r->error);
		return;
	}
	switch (r->status) {
	case 200:
	case 203:
		id = ident_from(r->body, r->len, why, sizeof why);
		if (!id) {
			check_end(c, NULL, 503, "%s", why);
			return;
		}
		if (id->expires <= time(NULL)) {
			gl_ident_free(id);
			check_end(c, NULL, 401, "expired");
			return;
		}
		check_end(c, id, 0, NULL);
		return;
	case 404:
		check_end(c, NULL, 401,
			  "Keystone does not know it (bad, "
			  "expired or revoked)");
		return;
	case 401:
		/* glared's own token ended early (revoked): log in anew once */
		if (!c->reauthed) {
			c->reauthed = 1;
			c->attempts = 0;
			if (c->sent_gen == k->svc_gen && k->svc_token) {
				gl_warn("keystone: glared's service token was "
					"refused, logging in again");
				free(k->svc_token);
				k->svc_token = NULL;
			}
			if (svc_usable(k, time(NULL)))
				send_check(
					c); /* a newer login came meanwhile */
			else
				wait_for_login(c);
			return;
		}
		check_end(c, NULL, 503,
			  "Keystone refused glared's service "
			  "token twice");
		return;
	case 403:
		gl_error("keystone: glared's user may not check tokens (give "
			 "it the service or admin role)");
		check_end(c, NULL, 503,
			  "Keystone forbids glared to check "
			  "tokens");
		return;
	case 400:
		check_end(c, NULL, 401, "Keystone says 400 (malformed token)");
		return;
	default:
		check_end(c, NULL, 503, "Keystone answered %ld", r->status);
		return;
	}
}

static void send_check(gl_ks_check *c)
{
	gl_keystone *k = c->k;
	gl_sb url = { 0 }, h1 = { 0 }, h2 = { 0 };
	const char *hdrs[4];

	c->attempts++;
	c->sent_gen = k->svc_gen;
	gl_sb_addf(&url, "%s/auth/tokens?nocatalog", k->check_v3);
	gl_sb_addf(&h1, "X-Auth-Token: %s", k->svc_token);
	gl_sb_addf(&h2, "X-Subject-Token: %s", c->tok);
	hdrs[0] = h1.p;
	hdrs[1] = h2.p;
	hdrs[2] = "Accept: application/json";
	hdrs[3] = NULL;
	c->req = gl_idhttp_start(k->http, url.p, hdrs, NULL, KS_MAX_BODY,
				 check_done, c);
	memset(h2.p, 0, h2.len);
	gl_sb_free(&url);
	gl_sb_free(&h1);
	gl_sb_free(&h2);
	if (!c->req) {
		/* out of memory: report from the loop, not from here */
		c->attempts = k->max_retries + 1;
		wait_for_login(c); /* login_done reports it */
	}
}

gl_ks_check *gl_keystone_check(gl_keystone *k, const char *tok,
			       const char *tag, gl_ks_fn cb, void *arg)
{
	gl_ks_check *c = calloc(1, sizeof *c);
	time_t now = time(NULL);

	if (!c || !(c->tok = strdup(tok))) {
		free(c);
		return NULL;
	}
	c->k = k;
	snprintf(c->tag, sizeof c->tag, "%s", tag);
	c->cb = cb;
	c->arg = arg;
	c->next = k->all;
	if (k->all)
		k->all->prev = c;
	k->all = c;
	if (!svc_usable(k, now)) {
		wait_for_login(c);
		return c;
	}
	/* past three quarters of its life: a fresh one, in the background */
	if (!k->login &&
	    now >= k->svc_issued + (k->svc_expires - k->svc_issued) * 3 / 4)
		start_login(k);
	send_check(c);
	return c;
}

void gl_keystone_cancel(gl_ks_check *c)
{
	if (c)
		check_free(c);
}

/* ---- glared's own login ----------------------------------------------------- */

/* The identity endpoint of the catalog for our interface and region. */
static char *catalog_identity(const gl_keystone *k, json_t *catalog)
{
	size_t i, j;
	json_t *svc, *ep;

	json_array_foreach(catalog, i, svc) {
		const char *type = jstr(svc, "type");
		if (!type || strcmp(type, "identity") != 0)
			continue;
		json_array_foreach(json_object_get(svc, "endpoints"), j, ep) {
			const char *itf = jstr(ep, "interface");
			const char *reg = jstr(ep, "region_id");
			const char *url = jstr(ep, "url");

			if (!reg)
				reg = jstr(ep, "region");
			if (!url || !itf || strcmp(itf, k->interface) != 0)
				continue;
			if (k->region && (!reg || strcmp(reg, k->region) != 0))
				continue;
			if (strncmp(url, "http://", 7) &&
			    strncmp(url, "https://", 8))
				continue;
			return gl_keystone_v3_url(url);
		}
	}
	return NULL;
}

/* Every check waiting for a login goes on, or ends with err_fmt. */
static void release_waiting(gl_keystone *k, const char *failure)
{
	while (k->waiting) {
		gl_ks_check *c = k->waiting;

		k->waiting = c->wnext;
		if (!k->waiting)
			k->waiting_tail = &k->waiting;
		c->waiting = 0;
		c->wnext = NULL;
		if (failure || c->attempts > k->max_retries)
			check_end(c, NULL, 503, "%s",
				  failure ? failure : "out of memory");
		else
			send_check(c);
	}
}

static void login_done(void *arg, const gl_idhttp_resp *r)
{
	gl_keystone *k = arg;
	json_t *root, *tok;
	time_t issued, expires;
	char msg[300];
	char *url;

	k->login = NULL;
	if (r->rc != CURLE_OK && retryable(r->rc) &&
	    k->login_attempts <= k->max_retries) {
		start_login(k);
		return;
	}
	k->login_attempts = 0;
	if (r->rc != CURLE_OK) {
		snprintf(msg, sizeof msg, "Keystone unreachable: %s",
			 r->error);
		gl_warn("keystone: glared cannot log in: %s", msg);
		release_waiting(k, msg);
		return;
	}
	if (r->status != 201 || !r->subject_token) {
		snprintf(msg, sizeof msg,
			 "glared's Keystone login answered %ld", r->status);
		if (r->status == 401)
			gl_error("keystone: glared's credentials ([keystone_"
				 "authtoken] username/password/project) are "
				 "refused");
		else
			gl_warn("keystone: %s", msg);
		release_waiting(k, msg);
		return;
	}
	root = json_loadb(r->body, r->len, 0, NULL);
	tok = json_object_get(root, "token");
	if (parse_time(jstr(tok, "expires_at"), &expires) < 0) {
		json_decref(root);
		release_waiting(k,
				"glared's Keystone login has no expires_at");
		return;
	}
	if (parse_time(jstr(tok, "issued_at"), &issued) < 0)
		issued = time(NULL); /* then the clocks had better agree */
	url = catalog_identity(k, json_object_get(tok, "catalog"));
	if (url && (!k->check_v3 || strcmp(url, k->check_v3) != 0))
		gl_info("keystone: checking tokens at %s (%s endpoint of the "
			"catalog)",
			url, k->interface);
	if (url) {
		free(k->check_v3);
		k->check_v3 = url;
	}
	json_decref(root);
	free(k->svc_token);
	k->svc_token = gl_xstrdup(r->subject_token);
	k->svc_issued = k->login_sent;
	k->svc_expires = k->login_sent + (expires - issued);
	k->svc_gen++;
	gl_info("keystone: glared logged in, service token valid for %lld s",
		(long long)(expires - issued));
	release_waiting(k,
			svc_usable(k, time(NULL))
				? NULL
				: "glared's Keystone token is too short-lived");
}

static void start_login(gl_keystone *k)
{
	gl_sb url = { 0 };
	static const char *const hdrs[] = { "Accept: application/json", NULL };

	k->login_attempts++;
	k->login_sent = time(NULL);
	gl_sb_addf(&url, "%s/auth/tokens", k->auth_v3);
	k->login = gl_idhttp_start(k->http, url.p, hdrs, k->login_body,
				   KS_LOGIN_MAX_BODY, login_done, k);
	gl_sb_free(&url);
	if (!k->login)
		gl_error("keystone: out of memory starting the login");
}

/* ---- setup ------------------------------------------------------------------ */

static json_t *domain(const char *name, const char *id)
{
	if (id && *id)
		return json_pack("{s:s}", "id", id);
	if (name && *name)
		return json_pack("{s:s}", "name", name);
	return json_pack("{s:s}", "id", "default");
}

static int nonempty(const char *s)
{
	return s && *s;
}

gl_keystone *gl_keystone_new(const gl_conf *conf, struct event_base *base,
			     gl_err *err)
{
	gl_keystone *k;
	gl_idhttp_opts o = {
		.cafile = conf->ks_cafile,
		.certfile = conf->ks_certfile,
		.keyfile = conf->ks_keyfile,
		.insecure = conf->ks_insecure,
		.connect_timeout = conf->ks_http_connect_timeout,
		.timeout = KS_TIMEOUT,
	};
	json_t *body;
	const char *at = conf->ks_auth_type;

	if (!nonempty(conf->ks_auth_url) ||
	    (strncmp(conf->ks_auth_url, "http://", 7) &&
	     strncmp(conf->ks_auth_url, "https://", 8))) {
		gl_fail(err, 500, NULL,
			"[keystone_authtoken] auth_url must "
			"be Keystone's http:// or https:// URL");
		return NULL;
	}
	if (nonempty(at) && strcmp(at, "password") &&
	    strcmp(at, "v3password")) {
		gl_fail(err, 500, NULL,
			"[keystone_authtoken] auth_type '%s' "
			"is not supported (password)",
			at);
		return NULL;
	}
	if (!nonempty(conf->ks_username) || !conf->ks_password ||
	    !nonempty(conf->ks_project_name)) {
		gl_fail(err, 500, NULL,
			"[keystone_authtoken] username, "
			"password and project_name are required");
		return NULL;
	}
	k = gl_xcalloc(1, sizeof *k);
	k->waiting_tail = &k->waiting;
	k->http = gl_idhttp_new(base, &o);
	k->auth_v3 = gl_keystone_v3_url(conf->ks_auth_url);
	k->check_v3 = gl_keystone_v3_url(conf->ks_auth_url);
	k->interface = gl_xstrdup(nonempty(conf->ks_interface)
					  ? conf->ks_interface
					  : "internal");
	k->region = nonempty(conf->ks_region_name)
			    ? gl_xstrdup(conf->ks_region_name)
			    : NULL;
	k->max_retries = conf->ks_http_request_max_retries;
	body = json_pack("{s:{s:{s:[s], s:{s:{s:s, s:s, s:o}}}, s:{s:{s:s, s:o}}}}",
			 "auth", "identity", "methods", "password", "password",
			 "user", "name", conf->ks_username, "password",
			 conf->ks_password, "domain",
			 domain(conf->ks_user_domain_name,
				conf->ks_user_domain_id),
			 "scope", "project", "name", conf->ks_project_name,
			 "domain",
			 domain(conf->ks_project_domain_name,
				conf->ks_project_domain_id));
	k->login_body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!k->http || !k->auth_v3 || !k->check_v3 || !k->login_body) {
		gl_fail(err, 500, NULL, "cannot set up the Keystone client");
		gl_keystone_free(k);
		return NULL;
	}
	return k;
}

void gl_keystone_free(gl_keystone *k)
{
	if (!k)
		return;
	while (k->all)
		check_free(k->all);
	if (k->login)
		gl_idhttp_cancel(k->login);
	gl_idhttp_free(k->http);
	if (k->svc_token) {
		memset(k->svc_token, 0, strlen(k->svc_token));
		free(k->svc_token);
	}
	if (k->login_body) {
		memset(k->login_body, 0, strlen(k->login_body));
		free(k->login_body);
	}
	free(k->auth_v3);
	free(k->check_v3);
	free(k->interface);
	free(k->region);
	free(k);
}
