/* auth.c - request context from trusted headers or token (see auth.h). */
#include "auth.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
		return gl_fail(err, 400, "BadRequest", "The %s is longer than "
			       "%d bytes", what, MAX_IDENTITY);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return gl_fail(err, 400, "BadRequest", "The %s contains "
				       "a control character", what);
	if (!gl_utf8_valid(s, n, 1))
		return gl_fail(err, 400, "BadRequest", "The %s is not valid "
			       "UTF-8", what);
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

static void set_roles(gl_ctx *ctx, const char *roles)
{
	const char *p = roles;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char *r = dup_trim(p, n);
		if (r && *r) {
			char **nr = realloc(ctx->roles,
					    sizeof *nr * (ctx->nroles + 1));
			if (nr) {
				ctx->roles = nr;
				ctx->roles[ctx->nroles++] = r;
				r = NULL;
			}
		}
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

static int from_token(const gl_conf *conf, gl_http_req *req, gl_ctx *ctx,
		      gl_err *err)
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

void gl_ctx_creds(const gl_ctx *ctx, gl_creds *out)
{
	out->user_id = ctx->user_id;
	out->project_id = ctx->project_id;
	out->roles = (const char *const *)ctx->roles;
	out->nroles = ctx->nroles;
	out->is_admin = ctx->is_admin;
}

int gl_auth_context(const gl_conf *conf, const gl_policy *pol,
		    gl_http_req *req, gl_ctx *ctx, gl_err *err)
{
	int rc;
	gl_creds cr;

	if (!strcasecmp(conf->flavor, "noauth"))
		rc = from_headers(conf, req, ctx, err);
	else
		rc = from_token(conf, req, ctx, err);
	if (rc < 0)
		return -1;
	gl_ctx_creds(ctx, &cr);
	ctx->is_admin = !ctx->anonymous && gl_policy_is_admin(pol, &cr);
	/* a context without a project cannot own anything */
	if (!ctx->project_id && !ctx->is_admin)
		ctx->read_only = 1;
	return 0;
}

void gl_ctx_admin(gl_ctx *ctx, const char *who)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->user_id = strdup(who);
	ctx->project_id = strdup(who);
	ctx->roles = calloc(1, sizeof *ctx->roles);
	if (ctx->roles) {
		ctx->roles[0] = strdup("admin");
		ctx->nroles = 1;
	}
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
	free(ctx->project_id);
	for (size_t i = 0; i < ctx->nroles; i++)
		free(ctx->roles[i]);
	free(ctx->roles);
	ctx->user_id = ctx->project_id = NULL;
	ctx->roles = NULL;
	ctx->nroles = 0;
}
