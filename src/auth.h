/* auth.h - the request context: who is calling.
 *
 * Two flavors, as Glare's paste pipelines ([paste_deploy] flavor):
 *  - "" (default, Glare's trusted auth): X-Auth-Token "user:project:roles";
 *    project "none" means anonymous;
 *  - "noauth": trust X-Identity-Status: Confirmed plus X-User-Id,
 *    X-Project-Id (or X-Tenant-Id) and X-Roles set by a front proxy.
 * Anything else is anonymous: read-only and public-only when
 * allow_anonymous_access is on, 401 otherwise.
 *
 * Used by api.c; uses http.c (headers), policy.c (admin rule), conf.c.
 */
#ifndef GL_AUTH_H
#define GL_AUTH_H

#include "conf.h"
#include "err.h"
#include "http.h"
#include "ltype.h"
#include "policy.h"

typedef struct gl_ctx {
	char *user_id;
	char *project_id;
	char **roles;
	size_t nroles;
	int is_admin;
	int read_only;
	int anonymous;
	char request_id[48];
	gl_lreq lua;          /* what the request has spent in Lua */
} gl_ctx;

/* The request's Lua account. Accounting is not part of who is calling, so
 * it is kept up to date through a const context (contexts are never const
 * objects). */
gl_lreq *gl_ctx_lua(const gl_ctx *ctx);
/* Start a new account (the console: one per command). */
void gl_ctx_lua_reset(gl_ctx *ctx);

/* Fill ctx from the request. 0, or -1 with err (401). */
int gl_auth_context(const gl_conf *conf, const gl_policy *pol,
		    gl_http_req *req, gl_ctx *ctx, gl_err *err);
/* An admin context for internal work (scrubber, console). */
void gl_ctx_admin(gl_ctx *ctx, const char *who);
void gl_ctx_free(gl_ctx *ctx);
/* Borrowing view for policy checks. */
void gl_ctx_creds(const gl_ctx *ctx, gl_creds *out);

#endif
