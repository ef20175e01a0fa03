/* oidc.h - the keycloak flavor: OIDC access tokens checked locally.
 *
 * A token is a JWT (jwt.c) whose issuer must lie under [keycloak_oidc]
 * auth_url: iss = <auth_url>/realms/<realm>. Its signature is verified
 * against that realm's key set (<iss>/protocol/openid-connect/certs),
 * fetched on first use, kept jwks_cache_time seconds (refreshed in the
 * background after that, the old set serving meanwhile), and fetched
 * again when a token names a kid the set lacks (key rotation) - at most
 * once per jwks_refetch_interval per realm, so garbage tokens cannot make
 * glared hammer the issuer. Realms are few: at most 16 are tracked.
 *
 * Claims: exp, nbf, iat within `leeway`; sub required; with `audience`
 * set, aud (string or list) must contain it or azp must equal it.
 * Identity, as Glare's keycloak middleware had it: user id = sub, user
 * name = preferred_username, project = the realm, roles =
 * realm_access.roles. With use_userinfo, the issuer's userinfo endpoint
 * must also accept the token (Glare's only check; off by default now that
 * the signature is verified).
 *
 * Outcomes: identity, refused (the caller answers 401) or unavailable
 * (key set or userinfo unreachable / 5xx: 503). A realm whose keys are
 * known answers at once, without the network.
 *
 * Used by auth.c. Uses jwt.c, idhttp.c, idcache.c (gl_ident), conf.c.
 */
#ifndef GL_OIDC_H
#define GL_OIDC_H

#include <stddef.h>

#include <event2/event.h>

#include "conf.h"
#include "err.h"
#include "idcache.h"

typedef struct gl_oidc gl_oidc;
typedef struct gl_oidc_job gl_oidc_job;

/* As gl_ks_fn: id (taken over) or err (401 / 503), from the loop. */
typedef void (*gl_oidc_fn)(void *arg, gl_ident *id, const gl_err *err);

gl_oidc *gl_oidc_new(const gl_conf *conf, struct event_base *base,
		     gl_err *err);
void gl_oidc_free(gl_oidc *o);

/* 0: *id is the identity now; -1: refused or unavailable now (err);
 * 1: the network is needed: cb comes later, *check cancels it. */
int gl_oidc_check(gl_oidc *o, const char *tok, const char *tag, gl_ident **id,
		  gl_err *err, gl_oidc_fn cb, void *arg, gl_oidc_job **check);
void gl_oidc_cancel(gl_oidc_job *c);

#endif
