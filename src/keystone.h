/* keystone.h - validating user tokens with Keystone v3, as auth_token does.
 *
 * glared logs in to Keystone itself (password method, project scope, the
 * [keystone_authtoken] username / password / project_name / *_domain_*
 * options) and asks `GET /v3/auth/tokens?nocatalog` with its own token in
 * X-Auth-Token and the user's in X-Subject-Token. The answer becomes a
 * gl_ident: user, project (id and name), domains, role names (Keystone has
 * expanded implied roles already) and the token's expiry.
 *
 * Where the checks go: the identity endpoint of the catalog glared's own
 * login returns (service type "identity", the `interface` option, default
 * internal, in region_name when set), as auth_token does; auth_url when
 * the catalog has none. glared's token is renewed in the background once
 * three quarters of its life are over, and at once when Keystone answers
 * a check with 401 (then the check is retried once).
 *
 * Outcomes: an identity; a refusal (404: bad, expired or revoked; the
 * caller answers 401 and may remember it briefly); or unavailable
 * (connection failures after http_request_max_retries attempts, timeouts,
 * 5xx, glared's own login refused: the caller answers 503). Everything is
 * asynchronous on the worker's event loop; a slow Keystone holds up only
 * the requests waiting for it.
 *
 * Used by auth.c. Uses idhttp.c, idcache.c (gl_ident), jansson, conf.c.
 */
#ifndef GL_KEYSTONE_H
#define GL_KEYSTONE_H

#include <stddef.h>

#include <event2/event.h>

#include "conf.h"
#include "err.h"
#include "idcache.h"

typedef struct gl_keystone gl_keystone;
typedef struct gl_ks_check gl_ks_check;

/* A check ended: id (the callee takes it) or err (401 refused, 503
 * unavailable). Called from the event loop, never from inside
 * gl_keystone_check. */
typedef void (*gl_ks_fn)(void *arg, gl_ident *id, const gl_err *err);

/* NULL with err filled when the options are incomplete or wrong. */
gl_keystone *gl_keystone_new(const gl_conf *conf, struct event_base *base,
			     gl_err *err);
/* In-flight checks end without callbacks. */
void gl_keystone_free(gl_keystone *k);

/* Start checking tok (tag: its log tag). NULL when out of memory. */
gl_ks_check *gl_keystone_check(gl_keystone *k, const char *tok,
			       const char *tag, gl_ks_fn cb, void *arg);
/* No callback will come. */
void gl_keystone_cancel(gl_ks_check *c);

/* Normalise an identity URL to its v3 root: "http://h:5000",
 * "http://h:5000/" and "http://h:5000/v3/" all give "http://h:5000/v3". */
char *gl_keystone_v3_url(const char *url);

#endif
