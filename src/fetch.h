/* fetch.h - HTTP(S) fetches of external blobs inside the event loop.
 *
 * libcurl's multi interface driven by the worker's libevent loop (socket
 * and timer callbacks), so a multi-GB fetch never blocks other requests.
 * Every byte goes through md5 + sha1 + sha256 (digest.c); nothing is
 * stored. Limits: connect/total timeouts, a low-speed cut-off, a redirect
 * cap, a byte cap enforced while the bytes arrive (curl 7.88 only checks a
 * declared size), a cap on concurrent fetches (extra jobs queue).
 *
 * SSRF guard: the address of every connection curl makes (each address of a
 * name, each redirect hop, whatever DNS said at that moment) is checked in
 * CURLOPT_OPENSOCKETFUNCTION before connecting. Every range the IANA
 * special-purpose registries mark not globally reachable (loopback,
 * private, link-local, CGNAT, documentation, benchmarking, ...), multicast
 * and Teredo are refused, and the IPv4-mapped / -compatible / -translated,
 * NAT64, 6to4 and ISATAP forms are judged by the IPv4 address inside,
 * unless an allow-list CIDR covers them. Only http and https,
 * also for redirects; proxies from the environment are ignored.
 *
 * Used by the engine (location registration, proxy downloads) and the
 * verifier. Uses libcurl, libevent, digest.c, conf.c.
 */
#ifndef GL_FETCH_H
#define GL_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "conf.h"
#include "digest.h"
#include "err.h"

typedef struct gl_fetch gl_fetch;
typedef struct gl_fetch_job gl_fetch_job;

/* ---- network guard (exposed for tests and the console) ----------------- */
typedef struct gl_netguard gl_netguard;
/* Parse a list of CIDRs ("127.0.0.1/32", "10.0.0.0/8", "::1/128", a bare
 * address means /32 or /128). NULL + err on a malformed entry. */
gl_netguard *gl_netguard_new(const gl_strlist *allowed, gl_err *err);
void gl_netguard_free(gl_netguard *g);
/* 1 if the address (text form) is in one of g's networks. */
int gl_netguard_allows(const gl_netguard *g, const char *addr);
/* 1 if connecting to this address is allowed, 0 if refused (and why). */
int gl_netguard_check(const gl_netguard *g, const struct sockaddr *sa,
		      char *why, size_t whylen);

/* http or https, at most 2048 bytes, and curl can parse it (400 + err
 * otherwise); host_out (optional) receives its host ("[v6]" bracketed). */
int gl_fetch_check_url(const char *url, char *host_out, size_t hostlen,
		       gl_err *err);

/* ---- fetches -------------------------------------------------------------- */

typedef struct gl_fetch_opts {
	int64_t max_bytes; /* -1: no cap; exceeding it fails with 413 */
	const char *range; /* NULL, or "a-b" for a Range request */
	/* conditional GET (the verifier): a 304 answer ends the fetch with
	 * ok = 0 and http_status = 304 */
	const char *if_none_match;
	const char *if_modified_since;
	/* a POST (webhooks): the body (copied) and extra request headers,
	 * "Name: value", NULL-terminated */
	const char *post;
	size_t post_len;
	const char *const *headers;
	int timeout;      /* seconds; 0: fetch_timeout */
	int no_redirects; /* a 3xx answer is the result */
} gl_fetch_opts;

typedef struct gl_fetch_result {
	int ok;                 /* 1: all bytes received */
	int http_status;        /* final response status, 0 if none */
	int64_t size;           /* bytes received */
	gl_digest_hex digest;   /* valid when ok */
	char content_type[256]; /* remote Content-Type, "" if none */
	char etag[256];
	char last_modified[64];
	gl_err err; /* when !ok: 400 with the cause (DNS,
				   * refused, timeout, HTTP status >= 400,
				   * too many redirects, blocked address),
				   * 413 over max_bytes, 499 aborted */
} gl_fetch_result;

/* Streaming consumer (optional): called with each piece in order. Return
 * 0 to continue, 1 to pause (resume with gl_fetch_resume), -1 to abort
 * (the done callback then reports err 499 "aborted"). */
typedef int (*gl_fetch_data_fn)(void *arg, const char *data, size_t len);
/* Called exactly once per job unless cancelled; the job is freed after. */
typedef void (*gl_fetch_done_fn)(void *arg, const gl_fetch_result *res);

gl_fetch *gl_fetch_new(struct event_base *base, const gl_conf *conf,
		       gl_err *err);
void gl_fetch_free(gl_fetch *f); /* cancels every job (no callbacks) */

/* Start (or queue) a GET of url. Returns NULL + err for an invalid URL
 * (not http/https, too long, malformed). */
gl_fetch_job *gl_fetch_start(gl_fetch *f, const char *url,
			     const gl_fetch_opts *opts,
			     gl_fetch_data_fn on_data,
			     gl_fetch_done_fn on_done, void *arg, gl_err *err);
void gl_fetch_cancel(gl_fetch_job *j); /* no callback afterwards */
void gl_fetch_resume(gl_fetch_job *j);
int gl_fetch_active(const gl_fetch *f);

/* Blocking fetch for tools (verify, console): runs a private loop. */
int gl_fetch_sync(const gl_conf *conf, const char *url,
		  const gl_fetch_opts *opts, gl_fetch_result *res);

#endif
