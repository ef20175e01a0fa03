/* access.h - what happens when an HTTP request is over: the access log
 * line and the request metrics.
 *
 * The client address is the peer's, or, when the peer is one of
 * [DEFAULT] trusted_proxies, the last address in X-Forwarded-For that is
 * not itself a trusted proxy (a client cannot forge its way past the
 * proxies in front of glared).
 *
 * Used by server.c (gl_http_server_on_complete). Uses http.c, log.c,
 * metrics.c, fetch.c (network lists).
 */
#ifndef GL_ACCESS_H
#define GL_ACCESS_H

#include "conf.h"
#include "http.h"

/* arg: the worker's gl_conf */
void gl_access_complete(gl_http_req *r, void *arg);

/* The client address of r as above, into out. */
void gl_access_client(const gl_conf *conf, gl_http_req *r, char *out,
		      size_t len);

#endif
