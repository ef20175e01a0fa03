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
#include "ctx.h"
#include "err.h"
#include "http.h"
#include "policy.h"

/* Fill ctx from the request. 0, or -1 with err (401). */
int gl_auth_context(const gl_conf *conf, const gl_policy *pol,
		    gl_http_req *req, gl_ctx *ctx, gl_err *err);

#endif
