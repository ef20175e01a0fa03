/* auth.c - request context by flavor, token cache, waits (see auth.h). */
#include "auth.h"
#include "idcache.h"
#include "keystone.h"
#include "log.h"
#include "oidc.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REFUSED_TTL 10 /* s a refused token is remembered */
#define MAX_TOKEN 16384

static const char msg_401[] =
	"The request you have made requires authentication.";
static const char msg_503[] =
	"The identity service is unavailable, try again later.";

enum flavor { F_TRUSTED, F_NOAUTH, F_KEYSTONE, F_KEYCLOAK };

/* One token being checked, and the requests waiting for the verdict. */
typedef struct job {
	gl_auth *a;
	unsigned char key[GL_TOKEN_KEY_LEN];
	char tag[16];
	gl_ks_check *ks;
	gl_oidc_job *oj;
	gl_auth_wait *waiters;
	struct job *prev, *next;
} job;

struct gl_auth_wait {
	job *j;
	gl_ctx *ctx;
	const gl_policy *pol;
	gl_auth_fn cb;
	void *arg;
	gl_auth_wait *prev, *next;
};

struct gl_auth {
	const gl_conf *conf;
	enum flavor flavor;
	gl_keystone *ks;
	gl_oidc *oidc;
	gl_idcache *cache;
	int cache_time;
	char *challenge;
	job *jobs;
};

/* ---- the test flavors ------------------------------------------------------- */

/* Identity values go into policy checks, JSON for Lua hooks, records
 * (owner) and logs: each is checked here, where it enters. */
#define MAX_IDENTITY 255 /* bytes of a user id, project id or role */
#define MAX_ROLES 64

/* 0 if s is a usable identity value, else -1 with a 400 naming what. */
static int check_identity(const char *what, const char *s, gl_err *err)
{
	size_t n = s ? strlen(s) : 0;

	if (!s)
		return 0;
	if (n > MAX_IDENTITY)
		return gl_fail(err, 400, "BadRequest",
			       "The %s is longer than "
			       "%d bytes",
			       what, MAX_IDENTITY);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return gl_fail(err, 400, "BadRequest",
				       "The %s contains "
				       "a control character",
				       what);
	if (!gl_utf8_valid(s, n, 1))
		return gl_fail(err, 400, "BadRequest",
			       "The %s is not valid "
			       "UTF-8",
			       what);
	return 0;
}

static int check_ctx(const gl_ctx *ctx, const char *where, gl_err *err)
{
	char what[64];

	snprintf(what, sizeof what, "user id %s", where);
	if (check_identity(what, ctx->user_id, err) < 0)
		return -1;
	snprintf(what, sizeof what, "project id %s", where);
	if (check_identity(what, ctx->project_id, err) < 0)
		return -1;
	if (ctx->nroles > MAX_ROLES)
		return gl_fail(err, 400, "BadRequest", "More than %d roles %s",
			       MAX_ROLES, where);
	snprintf(what, sizeof what, "role %s", where);
	for (size_t i = 0; i < ctx->nroles; i++)
		if (check_identity(what, ctx->roles[i], err) < 0)
			return -1;
	return 0;
}

static char *dup_trim(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

static void add_role(gl_ctx *ctx, const char *r)
{
	char **nr = realloc(ctx->roles, sizeof *nr * (ctx->nroles + 1));
	char *d = strdup(r);

	if (!nr || !d) {
		free(d);
		if (nr)
			ctx->roles = nr;
		return;
	}
	ctx->roles = nr;
	ctx->roles[ctx->nroles++] = d;
}

static void set_roles(gl_ctx *ctx, const char *roles)
{
	const char *p = roles;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *r = dup_trim(p, n);
		if (r && *r)
			add_role(ctx, r);
		free(r);
		p = comma ? comma + 1 : NULL;
	}
}

static int anonymous(const gl_conf *conf, gl_ctx *ctx, gl_err *err)
{
	if (!conf->allow_anonymous_access)
		return gl_fail(err, 401, "Unauthorized",
			       "Authentication required");
	ctx->anonymous = 1;
	ctx->read_only = 1;
	return 0;
}

static int from_trusted_token(const gl_conf *conf, gl_http_req *req,
			      gl_ctx *ctx, gl_err *err)
{
	const char *tok = gl_http_header(req, "X-Auth-Token");
	const char *c1, *c2;
	char *tenant;

	if (!tok || !*tok)
		return gl_fail(err, 401, "Unauthorized",
			       "Auth token must be provided");
	while (isspace((unsigned char)*tok))
		tok++;
	c1 = strchr(tok, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || strchr(c2 + 1, ':'))
		return gl_fail(err, 401, "Unauthorized",
			       "Wrong auth token format. It must be "
			       "'user:tenant:roles'");
	tenant = dup_trim(c1 + 1, (size_t)(c2 - c1 - 1));
	if (!tenant || !*tenant) {
		free(tenant);
		return gl_fail(err, 401, "Unauthorized",
			       "Tenant must be specified in auth token. Format "
			       "of the token is 'user:tenant:roles'");
	}
	if (!strcasecmp(tenant, "none")) {
		free(tenant);
		return anonymous(conf, ctx, err);
	}
	ctx->project_id = tenant;
	ctx->user_id = dup_trim(tok, (size_t)(c1 - tok));
	set_roles(ctx, c2 + 1);
	return check_ctx(ctx, "in the auth token", err);
}

static int from_headers(const gl_conf *conf, gl_http_req *req, gl_ctx *ctx,
			gl_err *err)
{
	const char *st = gl_http_header(req, "X-Identity-Status");
	const char *user, *proj, *roles;

	if (!st || strcasecmp(st, "Confirmed") != 0)
		return anonymous(conf, ctx, err);
	user = gl_http_header(req, "X-User-Id");
	proj = gl_http_header(req, "X-Project-Id");
	if (!proj)
		proj = gl_http_header(req, "X-Tenant-Id");
	roles = gl_http_header(req, "X-Roles");
	if (user)
		ctx->user_id = strdup(user);
	if (proj && *proj)
		ctx->project_id = strdup(proj);
	if (roles)
		set_roles(ctx, roles);
	return check_ctx(ctx, "in the identity headers", err);
}

/* ---- contexts --------------------------------------------------------------- */

void gl_ctx_creds(const gl_ctx *ctx, gl_creds *out)
{
	out->user_id = ctx->user_id;
	out->project_id = ctx->project_id;
	out->user_domain_id = ctx->user_domain_id;
	out->project_domain_id = ctx->project_domain_id;
	out->roles = (const char *const *)ctx->roles;
	out->nroles = ctx->nroles;
	out->is_admin = ctx->is_admin;
}

/* What every flavor does once the identity is known. */
static void ctx_finish(gl_ctx *ctx, const gl_policy *pol)
{
	gl_creds cr;

	gl_ctx_creds(ctx, &cr);
	ctx->is_admin = !ctx->anonymous && gl_policy_is_admin(pol, &cr);
	/* a context without a project cannot own anything */
	if (!ctx->project_id && !ctx->is_admin)
		ctx->read_only = 1;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* 0, or -1 with a 400 when a value the identity service vouched for is
 * still unusable here (check_ctx's rules, as for the test flavors). */
static int ctx_from_ident(gl_ctx *ctx, const gl_ident *id,
			  const gl_policy *pol, gl_err *err)
{
	ctx->user_id = dup_or_null(id->user_id);
	ctx->user_name = dup_or_null(id->user_name);
	ctx->user_domain_id = dup_or_null(id->user_domain_id);
	ctx->project_id = dup_or_null(id->project_id);
	ctx->project_name = dup_or_null(id->project_name);
	ctx->project_domain_id = dup_or_null(id->project_domain_id);
	for (size_t i = 0; i < id->nroles; i++)
		add_role(ctx, id->roles[i]);
	if (check_ctx(ctx, "in the token", err) < 0)
		return -1;
	ctx_finish(ctx, pol);
	return 0;
}

void gl_ctx_admin(gl_ctx *ctx, const char *who)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->user_id = strdup(who);
	ctx->project_id = strdup(who);
	add_role(ctx, "admin");
	ctx->is_admin = 1;
}

gl_lreq *gl_ctx_lua(const gl_ctx *ctx)
{
	gl_lreq *rq = (gl_lreq *)&ctx->lua;

	rq->rid = ctx->request_id;
	return rq;
}

void gl_ctx_lua_reset(gl_ctx *ctx)
{
	memset(&ctx->lua, 0, sizeof ctx->lua);
}

void gl_ctx_free(gl_ctx *ctx)
{
	free(ctx->user_id);
	free(ctx->user_name);
	free(ctx->user_domain_id);
	free(ctx->project_id);
	free(ctx->project_name);
	free(ctx->project_domain_id);
	for (size_t i = 0; i < ctx->nroles; i++)
		free(ctx->roles[i]);
	free(ctx->roles);
	ctx->user_id = ctx->user_name = ctx->user_domain_id = NULL;
	ctx->project_id = ctx->project_name = ctx->project_domain_id = NULL;
	ctx->roles = NULL;
	ctx->nroles = 0;
}

/* ---- verdicts ----------------------------------------------------------------- */

static int refused(gl_err *err)
{
	return gl_fail(err, 401, "Unauthorized", "%s", msg_401);
}

static int unavailable(gl_err *err)
{
	return gl_fail(err, 503, "ServiceUnavailable", "%s", msg_503);
}

static void log_ident(const char *tag, const gl_ident *id)
{
	if (!gl_log_debug_enabled())
		return;
	gl_debug("auth: token %s: user %s (%s), project %s (%s), %zu role(s)",
		 tag, id->user_id, id->user_name ? id->user_name : "-",
		 id->project_id ? id->project_id : "-",
		 id->project_name ? id->project_name : "-", id->nroles);
}

/* Remember a verdict. id is taken over (NULL: refused with why). */
static void remember(gl_auth *a, const unsigned char *key, gl_ident *id,
		     const char *why)
{
	time_t now = time(NULL), until;

	if (a->cache_time <= 0) {
		gl_ident_free(id);
		return;
	}
	if (id) {
		until = now + a->cache_time;
		if (id->expires < until)
			until = id->expires;
		if (until <= now) {
			gl_ident_free(id);
			return;
		}
	} else {
		until = now + (a->cache_time < REFUSED_TTL ? a->cache_time
							   : REFUSED_TTL);
	}
	gl_idcache_put(a->cache, key, id, why, until);
}

static void job_unlink(job *j)
{
	gl_auth *a = j->a;

	if (j->prev)
		j->prev->next = j->next;
	else if (a->jobs == j)
		a->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

static void wait_unlink(gl_auth_wait *w)
{
	job *j = w->j;

	if (w->prev)
		w->prev->next = w->next;
	else if (j->waiters == w)
		j->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->j = NULL;
}

/* The backend decided: cache it, then tell every waiting request. */
static void job_done(void *arg, gl_ident *id, const gl_err *e)
{
	job *j = arg;
	gl_auth *a = j->a;
	gl_err err = { 0 };

	j->ks = NULL;
	j->oj = NULL;
	job_unlink(j);
	if (id) {
		log_ident(j->tag, id);
	} else if (e->status == 401) {
		gl_info("auth: token %s refused: %s", j->tag, e->msg);
		refused(&err);
	} else {
		gl_warn("auth: token %s not checked: %s", j->tag, e->msg);
		unavailable(&err);
	}
	/* a callback may cancel waiters still in the list: take one at a
	 * time from the head */
	while (j->waiters) {
		gl_auth_wait *w = j->waiters;
		gl_auth_fn cb = w->cb;
		void *cbarg = w->arg;

		gl_err bad = { 0 };
		int ok = 1;

		wait_unlink(w);
		if (id)
			ok = ctx_from_ident(w->ctx, id, w->pol, &bad) == 0;
		free(w);
		cb(cbarg, !id ? &err : ok ? NULL : &bad);
	}
	if (id || e->status == 401)
		remember(a, j->key, id, id ? NULL : e->msg);
	else
		gl_ident_free(id);
	free(j);
}

static job *job_find(gl_auth *a, const unsigned char *key)
{
	for (job *j = a->jobs; j; j = j->next)
		if (!memcmp(j->key, key, GL_TOKEN_KEY_LEN))
			return j;
	return NULL;
}

/* The token, or NULL. For keycloak also "Authorization: Bearer". */
static const char *token_of(const gl_auth *a, gl_http_req *req)
{
	const char *t = gl_http_header(req, "X-Auth-Token");
	const char *h;

	if (t && *t)
		return t;
	if (a->flavor != F_KEYCLOAK)
		return NULL;
	h = gl_http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* Tokens go into headers of our own requests: visible ASCII only. */
static int token_sane(const char *t)
{
	size_t n = 0;

	for (; *t; t++, n++)
		if (*t < 0x21 || *t > 0x7e || n >= MAX_TOKEN)
			return 0;
	return n > 0;
}

static int begin_real(gl_auth *a, const gl_policy *pol, gl_http_req *req,
		      gl_ctx *ctx, gl_auth_fn cb, void *arg,
		      gl_auth_wait **wait, gl_err *err)
{
	const char *tok = token_of(a, req), *why = NULL;
	unsigned char key[GL_TOKEN_KEY_LEN];
	const gl_ident *cached = NULL;
	gl_ident *id = NULL;
	gl_auth_wait *w;
	char tag[16];
	job *j;
	int rc;

	if (!tok) {
		if (a->conf->allow_anonymous_access) {
			anonymous(a->conf, ctx, err);
			ctx_finish(ctx, pol);
			return 0;
		}
		gl_debug("auth: request without a token");
		return refused(err);
	}
	if (!token_sane(tok)) {
		gl_info("auth: token refused: not a token (length or "
			"characters)");
		return refused(err);
	}
	gl_token_key(tok, strlen(tok), key);
	gl_token_tag(key, tag);
	switch (gl_idcache_get(a->cache, key, time(NULL), &cached, &why)) {
	case GL_IDC_VALID:
		return ctx_from_ident(ctx, cached, pol, err);
	case GL_IDC_REFUSED:
		gl_debug("auth: token %s refused (cached): %s", tag, why);
		return refused(err);
	default:
		break;
	}
	j = job_find(a, key);
	if (!j) {
		j = calloc(1, sizeof *j);
		if (!j)
			return unavailable(err);
		j->a = a;
		memcpy(j->key, key, sizeof key);
		memcpy(j->tag, tag, sizeof tag);
		if (a->flavor == F_KEYSTONE) {
			j->ks = gl_keystone_check(a->ks, tok, tag, job_done,
						  j);
			rc = j->ks ? 1 : -1;
			if (rc < 0)
				unavailable(err);
		} else {
			rc = gl_oidc_check(a->oidc, tok, tag, &id, err,
					   job_done, j, &j->oj);
		}
		if (rc <= 0) {
			/* decided at once (keycloak with the keys at hand) */
			free(j);
			if (rc == 0) {
				log_ident(tag, id);
				rc = ctx_from_ident(ctx, id, pol, err);
				remember(a, key, id, NULL);
				return rc;
			}
			if (err->status == 401) {
				gl_info("auth: token %s refused: %s", tag,
					err->msg);
				remember(a, key, NULL, err->msg);
				return refused(err);
			}
			gl_warn("auth: token %s not checked: %s", tag,
				err->msg);
			return unavailable(err);
		}
		j->next = a->jobs;
		if (a->jobs)
			a->jobs->prev = j;
		a->jobs = j;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return unavailable(err); /* the job goes on without us */
	w->j = j;
	w->ctx = ctx;
	w->pol = pol;
	w->cb = cb;
	w->arg = arg;
	w->next = j->waiters;
	if (j->waiters)
		j->waiters->prev = w;
	j->waiters = w;
	*wait = w;
	return 1;
}

int gl_auth_begin(gl_auth *a, const gl_policy *pol, gl_http_req *req,
		  gl_ctx *ctx, gl_auth_fn cb, void *arg, gl_auth_wait **wait,
		  gl_err *err)
{
	int rc;

	*wait = NULL;
	switch (a->flavor) {
	case F_KEYSTONE:
	case F_KEYCLOAK:
		return begin_real(a, pol, req, ctx, cb, arg, wait, err);
	case F_NOAUTH:
		rc = from_headers(a->conf, req, ctx, err);
		break;
	default:
		rc = from_trusted_token(a->conf, req, ctx, err);
		break;
	}
	if (rc < 0)
		return -1;
	ctx_finish(ctx, pol);
	return 0;
}

/* The job itself runs on: its verdict is cached for the next request. */
void gl_auth_cancel(gl_auth_wait *w)
{
	if (!w)
		return;
	if (w->j)
		wait_unlink(w);
	free(w);
}

const char *gl_auth_challenge(const gl_auth *a)
{
	return a ? a->challenge : NULL;
}

/* ---- setup -------------------------------------------------------------------- */

static enum flavor flavor_of(const char *f)
{
	if (!strcmp(f, "keystone"))
		return F_KEYSTONE;
	if (!strcmp(f, "keycloak"))
		return F_KEYCLOAK;
	if (!strcmp(f, "noauth"))
		return F_NOAUTH;
	return F_TRUSTED;
}

gl_auth *gl_auth_new(const gl_conf *conf, struct event_base *base, gl_err *err)
{
	gl_auth *a = gl_xcalloc(1, sizeof *a);
	const char *uri;
	gl_sb b = { 0 };

	a->conf = conf;
	a->flavor = flavor_of(conf->flavor);
	if (a->flavor == F_KEYSTONE) {
		a->ks = gl_keystone_new(conf, base, err);
		if (!a->ks)
			goto fail;
		a->cache_time = conf->ks_token_cache_time;
		a->cache = gl_idcache_new((size_t)conf->ks_token_cache_size);
		uri = conf->ks_www_authenticate_uri;
		if (!uri || !*uri)
			uri = conf->ks_auth_uri;
		if (!uri || !*uri)
			uri = conf->ks_auth_url;
		gl_sb_addf(&b, "Keystone uri=\"%s\"", uri);
		a->challenge = b.p;
	} else if (a->flavor == F_KEYCLOAK) {
		a->oidc = gl_oidc_new(conf, base, err);
		if (!a->oidc)
			goto fail;
		a->cache_time = conf->kc_token_cache_time;
		a->cache = gl_idcache_new((size_t)conf->kc_token_cache_size);
		a->challenge = gl_xstrdup("Bearer realm=\"glared\"");
	}
	return a;
fail:
	gl_auth_free(a);
	return NULL;
}

void gl_auth_free(gl_auth *a)
{
	if (!a)
		return;
	while (a->jobs) {
		job *j = a->jobs;

		job_unlink(j);
		while (j->waiters) {
			gl_auth_wait *w = j->waiters;
			wait_unlink(w);
			free(w);
		}
		gl_keystone_cancel(j->ks);
		gl_oidc_cancel(j->oj);
		free(j);
	}
	gl_keystone_free(a->ks);
	gl_oidc_free(a->oidc);
	gl_idcache_free(a->cache);
	free(a->challenge);
	free(a);
}

/* ---- exposure ------------------------------------------------------------------ */

static int loopback(const char *host)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!strcasecmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return 0;
}

int gl_auth_warn_exposure(const gl_conf *conf, const char *host)
{
	enum flavor f = flavor_of(conf->flavor);
	const char *what;

	if (f == F_KEYSTONE || f == F_KEYCLOAK || !host || loopback(host))
		return 0;
	what = f == F_NOAUTH
		       ? "flavor = noauth believes the X-User-Id / X-Project-Id / "
			 "X-Roles headers of every request"
		       : "the default flavor believes every X-Auth-Token of the form "
			 "user:project:roles";
	gl_warn("*****************************************************************");
	gl_warn("* INSECURE: listening on %s, not on loopback, and", host);
	gl_warn("* %s:", what);
	gl_warn("* anyone who can reach this port can call itself admin.");
	gl_warn("* Use [paste_deploy] flavor = keystone or keycloak, or serve");
	gl_warn("* only behind a proxy that sets these itself (docs/auth.md).");
	gl_warn("*****************************************************************");
	return 1;
}
