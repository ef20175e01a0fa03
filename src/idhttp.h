/* idhttp.h - small HTTP calls to identity services, in the event loop.
 *
 * Keystone (token validation, glared's own login) and an OIDC issuer (key
 * sets, userinfo) answer with small JSON documents; a request here is one
 * transfer on a gl_curlev (curlev.h) whose body is collected in memory up
 * to a cap and handed over whole. The URLs are the operator's (auth_url
 * and what Keystone's catalog names), not a client's, so they do not go
 * through fetch.c's SSRF guard; TLS follows the section's cafile /
 * certfile / keyfile / insecure options, environment proxies are ignored
 * and redirects are not followed.
 *
 * Completion callbacks run outside curl (curlev's done), never from inside
 * gl_idhttp_start; the request is freed right after its callback returns.
 *
 * Used by keystone.c and oidc.c. Uses curlev.c, libcurl, libevent.
 */
#ifndef GL_IDHTTP_H
#define GL_IDHTTP_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

typedef struct gl_idhttp gl_idhttp;
typedef struct gl_idhttp_req gl_idhttp_req;

typedef struct gl_idhttp_opts {
	const char *cafile, *certfile, *keyfile; /* NULL or "": not set */
	int insecure;         /* no certificate / host name checks */
	long connect_timeout; /* s; 0: curl's default */
	long timeout;         /* s for the whole exchange */
} gl_idhttp_opts;

typedef struct gl_idhttp_resp {
	CURLcode rc;       /* CURLE_OK: status and body are valid */
	const char *error; /* curl's message when rc != CURLE_OK */
	long status;
	const char *body; /* NUL-terminated; "" if none */
	size_t len;
	const char *subject_token; /* X-Subject-Token, or NULL */
} gl_idhttp_resp;

typedef void (*gl_idhttp_fn)(void *arg, const gl_idhttp_resp *r);

/* Copies o's strings. NULL if curl cannot be set up. */
gl_idhttp *gl_idhttp_new(struct event_base *base, const gl_idhttp_opts *o);
/* Cancels every request without callbacks. */
void gl_idhttp_free(gl_idhttp *h);

/* GET url, or POST body (application/json) when body is not NULL.
 * headers: NULL-terminated "Name: value" lines (copied). A body over
 * max_body bytes ends the request with CURLE_WRITE_ERROR. NULL when out of
 * memory (no callback then). */
gl_idhttp_req *gl_idhttp_start(gl_idhttp *h, const char *url,
			       const char *const *headers, const char *body,
			       size_t max_body, gl_idhttp_fn cb, void *arg);
/* No callback will come; safe from any callback but the request's own. */
void gl_idhttp_cancel(gl_idhttp_req *r);

#endif
