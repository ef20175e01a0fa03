/* oidc.c - OIDC tokens, realm key sets, userinfo (see oidc.h).
 *
 * A check is evaluated synchronously whenever the realm's keys are at
 * hand. It waits only for a key set fetch (first use, or an unknown kid
 * within the rate limit) or for the userinfo call; after a fetch it is
 * evaluated once more without permission to wait again, so no token can
 * loop. */
#include "oidc.h"
#include "idhttp.h"
#include "jwt.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define MAX_REALMS 16
#define MAX_REALM_NAME 255
#define OIDC_MAX_BODY (1u << 20)
#define OIDC_TIMEOUT 30

typedef struct realm {
	gl_oidc *o;
	char *iss, *name;
	gl_jwks *jwks;
	/* monotonic seconds (mono()): the rate limit must hold to the
	 * fraction, and wall-clock jumps must not lift it */
	double fetched;  /* when jwks arrived */
	double last_try; /* when the last fetch started; 0 never */
	double used;
	int fail_status; /* the last fetch: 0 fine, 401 no realm, 503 */
	char fail_why[300];
	gl_idhttp_req *req;
	gl_oidc_job *waiting;
} realm;

struct gl_oidc_job {
	gl_oidc *o;
	char *tok;
	char tag[16];
	gl_oidc_fn cb;
	void *arg;
	realm *r;                 /* waiting for r's fetch */
	gl_idhttp_req *req;       /* userinfo */
	gl_ident *id;             /* signature fine, userinfo pending */
	gl_oidc_job *prev, *next; /* o->all */
	gl_oidc_job *wnext;       /* r->waiting */
};

struct gl_oidc {
	gl_idhttp *http;
	char *auth_url; /* without trailing '/' */
	char *userinfo; /* endpoint, "%s" for the realm */
	char *audience;
	long leeway;
	int use_userinfo;
	int jwks_cache_time, refetch_interval;
	realm realms[MAX_REALMS];
	int nrealms;
	/* fetches for realms not in realms[]: the per-realm limit cannot see
	 * tokens that name a new realm each, so these draw on a budget of
	 * their own (MAX_REALMS at once, then one per refetch_interval) */
	double new_credit, new_credit_at;
	gl_oidc_job *all;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9 + 1; /* never 0 */
}

static int refuse(gl_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(gl_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	memset(err, 0, sizeof *err);
	err->status = status;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- realms and their key sets ---------------------------------------- */

static void fetch_done(void *arg, const gl_idhttp_resp *resp);

static void realm_clear(realm *r)
{
	gl_jwks_free(r->jwks);
	free(r->iss);
	free(r->name);
	memset(r, 0, sizeof *r);
}

/* May a realm glared does not know yet be looked up now? */
static int new_realm_allowed(gl_oidc *o, double now)
{
	if (o->refetch_interval <= 0)
		return 1;
	o->new_credit += (now - o->new_credit_at) / o->refetch_interval;
	if (o->new_credit > MAX_REALMS)
		o->new_credit = MAX_REALMS;
	o->new_credit_at = now;
	if (o->new_credit < 1)
		return 0;
	o->new_credit -= 1;
	return 1;
}

/* The realm of iss; NULL when it is new and may not be looked up now. */
static realm *realm_get(gl_oidc *o, const char *iss, const char *name,
			double now)
{
	realm *r = NULL;

	for (int i = 0; i < o->nrealms; i++)
		if (!strcmp(o->realms[i].iss, iss)) {
			r = &o->realms[i];
			goto found;
		}
	if (!new_realm_allowed(o, now)) {
		gl_info("oidc: realm %s not looked up: too many new realms of "
			"late",
			name);
		return NULL;
	}
	if (o->nrealms < MAX_REALMS) {
		r = &o->realms[o->nrealms++];
	} else {
		/* the least recently used realm that nothing waits on, one
		 * without keys first: realms named by garbage tokens (the
		 * issuer has none such) push out each other, not the ones in
		 * use */
		for (int i = 0; i < o->nrealms; i++) {
			realm *c = &o->realms[i];
			if (c->req || c->waiting)
				continue;
			if (!r || (!c->jwks && r->jwks) ||
			    (!c->jwks == !r->jwks && c->used < r->used))
				r = c;
		}
		if (!r) {
			o->new_credit += 1; /* not spent */
			return NULL;
		}
		gl_info("oidc: forgetting realm %s (more than %d in use)",
			r->name, MAX_REALMS);
		realm_clear(r);
	}
	r->o = o;
	r->iss = gl_xstrdup(iss);
	r->name = gl_xstrdup(name);
found:
	r->used = now;
	return r;
}

static void start_fetch(realm *r, double now)
{
	gl_sb url = { 0 };
	static const char *const hdrs[] = { "Accept: application/json", NULL };

	r->last_try = now;
	gl_sb_addf(&url, "%s/protocol/openid-connect/certs", r->iss);
	r->req = gl_idhttp_start(r->o->http, url.p, hdrs, NULL, OIDC_MAX_BODY,
				 fetch_done, r);
	gl_debug("oidc: fetching the key set of realm %s", r->name);
	gl_sb_free(&url);
	if (!r->req) {
		r->fail_status = 503;
		snprintf(r->fail_why, sizeof r->fail_why, "out of memory");
	}
}

/* ---- one token ----------------------------------------------------------- */

/* iss = <auth_url>/realms/<name>: the realm's name, else NULL. */
static const char *realm_of(const gl_oidc *o, const char *iss)
{
	size_t n = strlen(o->auth_url);
	const char *name;

	if (strncmp(iss, o->auth_url, n) != 0 ||
	    strncmp(iss + n, "/realms/", 8) != 0)
		return NULL;
	name = iss + n + 8;
	if (!*name || strlen(name) > MAX_REALM_NAME || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return NULL;
	/* one path segment, so the key set is fetched from the realm
	 * itself and not from a neighbour or a query */
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '?' || *p == '#' ||
		    (unsigned char)*p <= 0x20 || *p == 0x7f)
			return NULL;
	return name;
}

static int audience_ok(const gl_oidc *o, json_t *claims)
{
	json_t *aud = json_object_get(claims, "aud"), *a;
	const char *azp = json_string_value(json_object_get(claims, "azp"));
	size_t i;

	if (!o->audience)
		return 1;
	if (json_is_string(aud) &&
	    !strcmp(json_string_value(aud), o->audience))
		return 1;
	json_array_foreach(aud, i, a)
		if (json_is_string(a) &&
		    !strcmp(json_string_value(a), o->audience))
			return 1;
	return azp && !strcmp(azp, o->audience);
}

static gl_ident *ident_from(const gl_jwt *t, const char *realm_name)
{
	gl_ident *id = gl_ident_new();
	json_t *roles = json_object_get(json_object_get(t->claims,
							"realm_access"),
					"roles"),
	       *r;
	const char *s;
	size_t i;

	id->user_id = gl_xstrdup(
		json_string_value(json_object_get(t->claims, "sub")));
	if ((s = json_string_value(
		     json_object_get(t->claims, "preferred_username"))))
		id->user_name = gl_xstrdup(s);
	id->project_id = gl_xstrdup(realm_name);
	id->project_name = gl_xstrdup(realm_name);
	json_array_foreach(roles, i, r)
		if (json_is_string(r))
			gl_ident_add_role(id, json_string_value(r));
	id->expires = (time_t)json_number_value(
		json_object_get(t->claims, "exp"));
	return id;
}

/* 0 identity, -1 refused / unavailable (err), 1 wait for *wait's fetch. */
static int evaluate(gl_oidc *o, const char *tok, gl_ident **out, gl_err *err,
		    realm **wait, int may_wait)
{
	double now = mono();
	gl_jwt_rules rules = { .now = time(NULL), .leeway = o->leeway };
	gl_jwt t;
	char why[200];
	const char *iss, *name;
	realm *r;
	int rc, stale;

	if (gl_jwt_parse(tok, strlen(tok), &t, why, sizeof why) < 0)
		return refuse(err, 401, "%s", why);
	iss = json_string_value(json_object_get(t.claims, "iss"));
	if (!iss || !(name = realm_of(o, iss))) {
		rc = refuse(err, 401, "issuer is not a realm under auth_url");
		goto out;
	}
	if (gl_jwt_check_times(&t, &rules, why, sizeof why) < 0) {
		rc = refuse(err, 401, "%s", why);
		goto out;
	}
	if (!json_is_string(json_object_get(t.claims, "sub"))) {
		rc = refuse(err, 401, "no sub claim");
		goto out;
	}
	if (!audience_ok(o, t.claims)) {
		rc = refuse(err, 401, "audience is not %s", o->audience);
		goto out;
	}
	r = realm_get(o, iss, name, now);
	if (!r) {
		rc = refuse(err, 503, "too many new realms at once");
		goto out;
	}
	stale = !r->jwks || now - r->fetched >= o->jwks_cache_time;
	if (stale && !r->req &&
	    (!r->last_try || now - r->last_try >= o->refetch_interval))
		start_fetch(r, now);
	if (!r->jwks) {
		if (r->req && may_wait) {
			*wait = r;
			rc = 1;
		} else {
			rc = refuse(err, r->fail_status == 401 ? 401 : 503,
				    "realm %s: %s", r->name,
				    r->fail_why[0] ? r->fail_why
						   : "no key set yet");
		}
		goto out;
	}
	switch (gl_jwt_verify(&t, r->jwks, why, sizeof why)) {
	case GL_JWT_OK:
		*out = ident_from(&t, name);
		rc = 0;
		break;
	case GL_JWT_NO_KEY:
		if (may_wait && !r->req &&
		    now - r->last_try >= o->refetch_interval)
			start_fetch(r, now);
		if (may_wait && r->req) {
			*wait = r;
			rc = 1;
			break;
		}
		rc = refuse(err, 401,
			    "%s (key set of realm %s fetched %.0f s "
			    "ago)",
			    why, r->name, now - r->fetched);
		break;
	default:
		rc = refuse(err, 401, "%s", why);
		break;
	}
out:
	gl_jwt_free(&t);
	return rc;
}

/* ---- checks that wait --------------------------------------------------------- */

static void check_free(gl_oidc_job *c)
{
	gl_oidc *o = c->o;

	if (c->r) {
		gl_oidc_job **pp = &c->r->waiting;
		while (*pp && *pp != c)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = c->wnext;
	}
	if (c->req)
		gl_idhttp_cancel(c->req);
	if (c->prev)
		c->prev->next = c->next;
	else
		o->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gl_ident_free(c->id);
	if (c->tok) {
		memset(c->tok, 0, strlen(c->tok));
		free(c->tok);
	}
	free(c);
}

static void finish(gl_oidc_job *c, gl_ident *id, const gl_err *err)
{
	gl_oidc_fn cb = c->cb;
	void *arg = c->arg;

	c->req = NULL;
	check_free(c);
	cb(arg, id, err);
}

static void userinfo_done(void *arg, const gl_idhttp_resp *r)
{
	gl_oidc_job *c = arg;
	gl_ident *id = c->id;
	gl_err err;
	json_t *j;
	const char *sub;

	c->req = NULL;
	if (r->rc != CURLE_OK) {
		refuse(&err, 503, "userinfo unreachable: %s", r->error);
	} else if (r->status == 401 || r->status == 403) {
		refuse(&err, 401, "userinfo refused the token (%ld)",
		       r->status);
	} else if (r->status != 200) {
		refuse(&err, 503, "userinfo answered %ld", r->status);
	} else {
		j = json_loadb(r->body, r->len, 0, NULL);
		sub = json_string_value(json_object_get(j, "sub"));
		if (sub && strcmp(sub, id->user_id) != 0)
			refuse(&err, 401, "userinfo names another subject");
		else
			err.status = 0;
		json_decref(j);
	}
	if (err.status) {
		finish(c, NULL, &err);
		return;
	}
	c->id = NULL;
	finish(c, id, NULL);
}

/* The userinfo endpoint of a realm: the "%s" of the option replaced by
 * its name (plain substitution: the option is no format string). */
static char *userinfo_url(const gl_oidc *o, const char *realm_name)
{
	const char *f = o->userinfo, *pct = strstr(f, "%s");
	gl_sb b = { 0 };

	if (strncmp(f, "http://", 7) && strncmp(f, "https://", 8))
		gl_sb_add(&b, o->auth_url);
	if (pct) {
		gl_sb_addn(&b, f, (size_t)(pct - f));
		gl_sb_add(&b, realm_name);
		gl_sb_add(&b, pct + 2);
	} else {
		gl_sb_add(&b, f);
	}
	return b.p;
}

static void start_userinfo(gl_oidc_job *c)
{
	gl_sb auth = { 0 };
	const char *hdrs[3];
	char *url = userinfo_url(c->o, c->id->project_id);
	gl_err err;

	gl_sb_addf(&auth, "Authorization: Bearer %s", c->tok);
	hdrs[0] = auth.p;
	hdrs[1] = "Accept: application/json";
	hdrs[2] = NULL;
	c->req = gl_idhttp_start(c->o->http, url, hdrs, NULL, OIDC_MAX_BODY,
				 userinfo_done, c);
	memset(auth.p, 0, auth.len);
	gl_sb_free(&auth);
	free(url);
	if (!c->req) {
		refuse(&err, 503, "out of memory");
		finish(c, NULL, &err);
	}
}

static void fetch_done(void *arg, const gl_idhttp_resp *resp)
{
	realm *r = arg;
	gl_oidc *o = r->o;
	char why[200] = "";
	gl_jwks *set = NULL;

	r->req = NULL;
	if (resp->rc != CURLE_OK) {
		r->fail_status = 503;
		snprintf(r->fail_why, sizeof r->fail_why,
			 "issuer unreachable: %s", resp->error);
	} else if (resp->status == 404) {
		r->fail_status = 401;
		snprintf(r->fail_why, sizeof r->fail_why,
			 "the issuer has no such realm");
	} else if (resp->status != 200) {
		r->fail_status = 503;
		snprintf(r->fail_why, sizeof r->fail_why,
			 "the issuer's key set answered %ld", resp->status);
	} else if (!(set = gl_jwks_parse(resp->body, resp->len, why,
					 sizeof why)) ||
		   set->n == 0) {
		r->fail_status = 503;
		snprintf(r->fail_why, sizeof r->fail_why,
			 "the issuer's key set is unusable: %s",
			 set ? "no signing key" : why);
		gl_jwks_free(set);
		set = NULL;
	}
	if (set) {
		gl_info("oidc: realm %s: key set with %d signing key(s) (%d "
			"skipped)",
			r->name, set->n, set->skipped);
		gl_jwks_free(r->jwks);
		r->jwks = set;
		r->fetched = mono();
		r->fail_status = 0;
		r->fail_why[0] = '\0';
	} else {
		gl_warn("oidc: realm %s: %s%s", r->name, r->fail_why,
			r->jwks ? " (the cached key set stays in use)" : "");
	}
	/* everyone waiting is decided now, without waiting again */
	while (r->waiting) {
		gl_oidc_job *c = r->waiting;
		gl_ident *id = NULL;
		gl_err err;
		realm *w = NULL;

		r->waiting = c->wnext;
		c->r = NULL;
		c->wnext = NULL;
		if (evaluate(o, c->tok, &id, &err, &w, 0) < 0) {
			finish(c, NULL, &err);
		} else if (o->use_userinfo) {
			c->id = id;
			start_userinfo(c);
		} else {
			finish(c, id, NULL);
		}
	}
}

static gl_oidc_job *check_new(gl_oidc *o, const char *tok, const char *tag,
			      gl_oidc_fn cb, void *arg)
{
	gl_oidc_job *c = gl_xcalloc(1, sizeof *c);

	c->o = o;
	c->tok = gl_xstrdup(tok);
	snprintf(c->tag, sizeof c->tag, "%s", tag);
	c->cb = cb;
	c->arg = arg;
	c->next = o->all;
	if (o->all)
		o->all->prev = c;
	o->all = c;
	return c;
}

int gl_oidc_check(gl_oidc *o, const char *tok, const char *tag, gl_ident **id,
		  gl_err *err, gl_oidc_fn cb, void *arg, gl_oidc_job **check)
{
	realm *wait = NULL;
	gl_oidc_job *c;
	int rc = evaluate(o, tok, id, err, &wait, 1);

	if (rc < 0 || (rc == 0 && !o->use_userinfo))
		return rc;
	c = check_new(o, tok, tag, cb, arg);
	*check = c;
	if (rc == 0) {
		c->id = *id;
		*id = NULL;
		start_userinfo(c);
		return 1;
	}
	c->r = wait;
	c->wnext = wait->waiting;
	wait->waiting = c;
	return 1;
}

void gl_oidc_cancel(gl_oidc_job *c)
{
	if (c)
		check_free(c);
}

/* ---- setup ------------------------------------------------------------------ */

gl_oidc *gl_oidc_new(const gl_conf *conf, struct event_base *base, gl_err *err)
{
	gl_oidc *o;
	gl_idhttp_opts opts = {
		.cafile = conf->kc_cafile,
		.certfile = conf->kc_certfile,
		.keyfile = conf->kc_keyfile,
		.insecure = conf->kc_insecure,
		.connect_timeout = conf->kc_http_connect_timeout,
		.timeout = OIDC_TIMEOUT,
	};
	const char *u = conf->kc_auth_url;
	size_t n;

	if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) {
		gl_fail(err, 500, NULL,
			"[keycloak_oidc] auth_url must be the "
			"issuer's http:// or https:// URL");
		return NULL;
	}
	o = gl_xcalloc(1, sizeof *o);
	n = strlen(u);
	while (n && u[n - 1] == '/')
		n--;
	o->auth_url = gl_xmalloc(n + 1);
	memcpy(o->auth_url, u, n);
	o->auth_url[n] = '\0';
	o->userinfo = gl_xstrdup(conf->kc_user_info_endpoint_url
					 ? conf->kc_user_info_endpoint_url
					 : "");
	o->audience = conf->kc_audience && *conf->kc_audience
			      ? gl_xstrdup(conf->kc_audience)
			      : NULL;
	o->leeway = conf->kc_leeway;
	o->use_userinfo = conf->kc_use_userinfo;
	o->jwks_cache_time = conf->kc_jwks_cache_time;
	o->refetch_interval = conf->kc_jwks_refetch_interval;
	o->new_credit = MAX_REALMS;
	o->new_credit_at = mono();
	o->http = gl_idhttp_new(base, &opts);
	if (!o->http) {
		gl_fail(err, 500, NULL, "cannot set up the OIDC client");
		gl_oidc_free(o);
		return NULL;
	}
	return o;
}

void gl_oidc_free(gl_oidc *o)
{
	if (!o)
		return;
	while (o->all)
		check_free(o->all);
	for (int i = 0; i < o->nrealms; i++) {
		if (o->realms[i].req)
			gl_idhttp_cancel(o->realms[i].req);
		realm_clear(&o->realms[i]);
	}
	gl_idhttp_free(o->http);
	free(o->auth_url);
	free(o->userinfo);
	free(o->audience);
	free(o);
}
