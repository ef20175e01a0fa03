/* auth.h - the request context: who is calling, by [paste_deploy] flavor.
 *
 *  - keystone: X-Auth-Token is a Keystone token, checked by Keystone
 *    (keystone.c); the only identity source, client X-* identity headers
 *    are ignored. 401 answers carry WWW-Authenticate: Keystone uri="...".
 *  - keycloak: an OIDC access token (X-Auth-Token or Authorization:
 *    Bearer) whose signature is checked locally (oidc.c, jwt.c).
 *  - "" / trusted-auth (Glare's default, for tests and trusted proxies):
 *    X-Auth-Token "user:project:roles" is believed; project "none" means
 *    anonymous.
 *  - noauth (for tests and trusted proxies): X-Identity-Status: Confirmed
 *    plus X-User-Id, X-Project-Id (or X-Tenant-Id) and X-Roles are
 *    believed.
 * Without credentials a request is anonymous (read-only, public only)
 * when allow_anonymous_access is on, 401 otherwise.
 *
 * Verdicts of the real flavors are cached per worker (idcache.c, keyed by
 * the token's SHA-256): a valid token until min(token_cache_time, its own
 * expiry), a refused one for a few seconds. Several requests with the same
 * uncached token share one check. A check that needs the network leaves
 * the request waiting (gl_auth_begin returns 1) while the worker serves
 * others; its callback comes from the event loop.
 *
 * Tokens never reach a log line: "sha256:" and 8 hex digits of the token's
 * digest stand for it. Clients get a generic message; the log the reason.
 *
 * Used by api.c and server.c; uses keystone.c, oidc.c, idcache.c, http.c
 * (headers), policy.c (the admin rule), conf.c.
 */
#ifndef GL_AUTH_H
#define GL_AUTH_H

#include <event2/event.h>

#include "conf.h"
#include "ctx.h"
#include "err.h"
#include "http.h"
#include "policy.h"

typedef struct gl_auth gl_auth;
typedef struct gl_auth_wait gl_auth_wait;

/* A waiting request's verdict: err NULL when ctx is filled. */
typedef void (*gl_auth_fn)(void *arg, const gl_err *err);

/* Per worker (it owns network clients on base). NULL with err filled when
 * the flavor's options are wrong. */
gl_auth *gl_auth_new(const gl_conf *conf, struct event_base *base,
		     gl_err *err);
/* Waiting requests get no callback. */
void gl_auth_free(gl_auth *a);

/* Fill ctx for req. 0: done; -1: refused, err says how (401, or 503 when
 * the identity service is unavailable); 1: a check is on its way, cb(arg)
 * will come from the event loop unless gl_auth_cancel(*wait) first. */
int gl_auth_begin(gl_auth *a, const gl_policy *pol, gl_http_req *req,
		  gl_ctx *ctx, gl_auth_fn cb, void *arg, gl_auth_wait **wait,
		  gl_err *err);
void gl_auth_cancel(gl_auth_wait *w);

/* The WWW-Authenticate value for 401 answers, or NULL. */
const char *gl_auth_challenge(const gl_auth *a);

/* Start-up: shout when a flavor that believes what clients say about
 * themselves listens beyond loopback. Returns 1 if it warned. */
int gl_auth_warn_exposure(const gl_conf *conf, const char *host);

#endif
