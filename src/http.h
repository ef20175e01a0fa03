/* http.h - HTTP/1.1 server connections on libevent bufferevents + http-parser.
 *
 * evhttp in libevent 2.1 buffers whole request bodies before its handlers run
 * (docs/design-notes.md "Streaming request bodies"), and blobs here can be
 * 1000 GiB, so this unit owns
 * the connection: it parses with http-parser, hands the request head to a
 * dispatch callback before any body byte is read, streams the body to a
 * consumer piece by piece with backpressure, and writes responses from
 * memory, from a file (sendfile), or as a stream.
 *
 * Per connection one request is served at a time; pipelined requests wait in
 * the input buffer until the previous response is complete, so responses go
 * out in order and memory stays bounded (read high-water mark).
 *
 * The head is held to RFC 9112 where a lenient reading could let a request
 * mean one thing here and another to a proxy in front: obs-fold, bare CR,
 * whitespace in or before a field name, characters outside the token set,
 * a value that is not UTF-8, a missing or repeated Host, CL/TE ambiguity,
 * HTTP major versions other than 1 are all refused with a 4xx/505 (and the
 * connection closed); an HTTP/1.0 request with Transfer-Encoding is served
 * and the connection closed after it (RFC 9112 6.1). Trailer fields are
 * read (counted against the head limits) and dropped.
 *
 * Connection slots: a connection must send its first byte within
 * first_byte_timeout of accept or it is closed; connections with no request
 * in progress (fresh or keep-alive) are idle and give their slot to a new
 * connection when the server (max_conns) or the client's address
 * (max_conns_per_client; IPv6 per /64) is at its cap, oldest idle first;
 * only when no idle one can go is the new connection refused with 503.
 *
 * Contract for the dispatch callback: for a request with a body it must,
 * before returning, either reply (the body is then discarded, or the
 * connection closed if the body is large), accept the body with
 * gl_http_body_accept(), or defer the decision and take one of the first
 * two later. Two ways defer, and they compose (a request may be under
 * both at once): a body hold (gl_http_body_hold: the handler waits for
 * something outside the request, a token check or a durable commit) and a
 * pin (gl_http_hold: the handler's code goes on in a coroutine). While
 * either is out nothing more is parsed; a pin also keeps the connection
 * (a client that leaves is noticed at the last release), and a client
 * that half-closes after its whole request is answered, then closed. A
 * request with no decision once nothing defers it any more
 * (gl_http_undecided) gets a 500, never a hang. A request without a body
 * may be answered later.
 * After a reply is complete (gl_http_reply*, gl_http_reply_end or
 * gl_http_reply_abort) the request belongs to this unit again and the
 * handler must not touch it; if the connection dies first, the close
 * callback (gl_http_on_close) is the handler's last contact with the request.
 *
 * Used by api.c. Uses libevent (bufferevents, listeners, evkeyvalq),
 * http-parser, log.c.
 */
#ifndef GL_HTTP_H
#define GL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>

#include "err.h"

struct sockaddr;

typedef struct gl_http_server gl_http_server;
typedef struct gl_http_req gl_http_req;

typedef struct gl_http_limits {
	size_t max_header_line; /* one header line, name + value (16384) */
	size_t max_header_size; /* the whole request head (65536) */
	size_t max_url;         /* the request target (16384) */
	int max_headers;        /* header fields in one head (100) */
	int client_timeout; /* s of silence allowed while reading/writing */
	int header_timeout; /* s allowed for one request head to arrive */
	int first_byte_timeout;   /* s from accept to the first byte (10) */
	int keepalive;            /* 0: close after every response */
	int max_conns;            /* over this, idle ones yield, else 503 */
	int max_conns_per_client; /* same, per client address; 0: no cap */
	size_t max_discard;       /* body bytes skipped after an early reply */
} gl_http_limits;

void gl_http_limits_default(gl_http_limits *lim);

typedef void (*gl_http_dispatch_fn)(gl_http_req *req, void *arg);
/* Protocol errors (bad request line, oversized head, ...): format and send
 * the error reply; the connection closes after it. */
typedef void (*gl_http_error_fn)(gl_http_req *req, int status, const char *msg,
				 void *arg);

gl_http_server *gl_http_server_new(struct event_base *base,
				   const gl_http_limits *lim,
				   gl_http_dispatch_fn dispatch,
				   gl_http_error_fn on_error, void *arg);
/* Bind and listen. reuseport lets several worker processes share the port.
 * Returns 0 or -1 with err filled (errno still says why a bind failed). */
int gl_http_server_listen(gl_http_server *s, const char *host, int port,
			  int reuseport, gl_err *err);
/* Serve a connection that already exists as a bufferevent (the server
 * takes it over and frees it); sa is the peer (NULL: "local"). Tests and
 * the fuzz harness feed one end of a bufferevent pair through this. */
void gl_http_server_adopt(gl_http_server *s, struct bufferevent *bev,
			  const struct sockaddr *sa);
/* Port actually bound (useful with port 0). */
int gl_http_server_port(const gl_http_server *s);
/* Stop accepting, close idle connections, and call done(arg) once no
 * request is in flight (at once if none). In-flight requests finish. */
void gl_http_server_shutdown(gl_http_server *s, void (*done)(void *),
			     void *arg);
/* Close everything now (after shutdown timed out, or at exit). */
void gl_http_server_free(gl_http_server *s);
int gl_http_server_nconns(const gl_http_server *s);

/* ---- the request --------------------------------------------------------- */

const char *gl_http_method(const gl_http_req *r); /* "GET" ... */
int gl_http_method_id(const gl_http_req *r);      /* enum http_method */
int gl_http_is_head(const gl_http_req *r);
const char *gl_http_target(const gl_http_req *r); /* raw request target */
const char *gl_http_path(const gl_http_req *r);   /* raw path, no query */
const char *gl_http_query(const gl_http_req *r);  /* raw query or NULL */
const char *gl_http_header(const gl_http_req *r, const char *name);
struct evkeyvalq *gl_http_headers(gl_http_req *r);
int64_t gl_http_content_length(const gl_http_req *r); /* -1: none/chunked */
int gl_http_has_body(const gl_http_req *r);
int gl_http_is_chunked(const gl_http_req *r);
const char *gl_http_peer(const gl_http_req *r); /* client address */
int gl_http_peer_port(const gl_http_req *r);

/* The request id used in the access log line (copied). */
void gl_http_set_request_id(gl_http_req *r, const char *id);
const char *gl_http_request_id(const gl_http_req *r);

/* ---- the body --------------------------------------------------------------
 * on_data gets the body in pieces as they arrive (data valid only during the
 * call). It returns GL_HTTP_BODY_OK, GL_HTTP_BODY_PAUSE (data taken, stop
 * reading until gl_http_body_resume) or GL_HTTP_BODY_ABORT (the handler has
 * replied or will reply with an error; the rest of the body is not read and
 * the connection closes after the reply). on_done runs once the whole body
 * arrived. "Expect: 100-continue" is answered here, not before. */
enum { GL_HTTP_BODY_OK = 0, GL_HTTP_BODY_PAUSE = 1, GL_HTTP_BODY_ABORT = -1 };
typedef int (*gl_http_body_fn)(gl_http_req *r, const char *data, size_t len,
			       void *arg);
typedef void (*gl_http_done_fn)(gl_http_req *r, void *arg);

void gl_http_body_accept(gl_http_req *r, gl_http_body_fn on_data,
			 gl_http_done_fn on_done, void *arg);
/* From the dispatch callback: the handler decides about the body later
 * (it waits for something, e.g. the token check). Not one body byte is
 * parsed, nor "100 Continue" sent, until gl_http_body_accept; a reply
 * instead discards or refuses the body as usual. */
void gl_http_body_hold(gl_http_req *r);
/* The wait a body hold was for is over (the token check's verdict): the
 * handler decides now, or pins the request and decides in a coroutine. */
void gl_http_body_unhold(gl_http_req *r);
/* 1 if the request has a body neither taken nor answered and nothing
 * defers the decision (no body hold, no pin): the handler broke the
 * contract above. */
int gl_http_undecided(const gl_http_req *r);
/* 1 once gl_http_body_accept was called. */
int gl_http_body_taken(const gl_http_req *r);
void gl_http_body_resume(gl_http_req *r);
int64_t gl_http_body_received(const gl_http_req *r);

/* Called if the connection is lost before the reply is complete. */
void gl_http_on_close(gl_http_req *r, gl_http_done_fn fn, void *arg);

/* A handler that goes on in a coroutine (api.c) may return to the loop
 * before it replied or took the body. Until the matching release, the
 * connection stays (a client that leaves is noticed, and its close
 * callback runs, after the release), nothing more is parsed, and the
 * "neither replied nor took the body" check waits (the last release
 * makes it, unless a body hold still defers). The pin outlives the
 * request: release it even after the reply. */
typedef struct gl_http_pin gl_http_pin;
gl_http_pin *gl_http_hold(gl_http_req *r);
void gl_http_release(gl_http_pin *pin);

/* ---- the response ----------------------------------------------------------
 * Headers are set before the reply starts; this is the one place that
 * decides them: a name set again (in any letter case) replaces the earlier
 * value, so no response repeats a header. Content-Length /
 * Transfer-Encoding, Connection and Date are written by this unit alone
 * (a handler's are dropped). HEAD requests get the headers of the would-be
 * response and no body. */
void gl_http_set_header(gl_http_req *r, const char *name, const char *value);
/* Drop every header set so far except the names listed (NULL-terminated),
 * e.g. before an error reply replaces a response under way. */
void gl_http_keep_headers(gl_http_req *r, const char *const *names);
int gl_http_replied(const gl_http_req *r);

/* Whole response from memory (copied). */
void gl_http_reply(gl_http_req *r, int status, const void *body, size_t len);
/* Response from a file range via sendfile; takes ownership of fd. */
void gl_http_reply_file(gl_http_req *r, int status, int fd, off_t off,
			off_t len);
/* Streamed response: len >= 0 sends Content-Length, -1 chunked (or close-
 * delimited for HTTP/1.0). Feed with gl_http_reply_data; gl_http_on_drain
 * tells when the output buffer has room again. */
void gl_http_reply_start(gl_http_req *r, int status, int64_t len);
void gl_http_reply_data(gl_http_req *r, const void *data, size_t len);
void gl_http_reply_end(gl_http_req *r);
/* Break the response off: the client sees a truncated body, never a
 * complete one. Used when streamed data turns out to be wrong. */
void gl_http_reply_abort(gl_http_req *r);
size_t gl_http_output_pending(const gl_http_req *r);
void gl_http_on_drain(gl_http_req *r, gl_http_done_fn fn, void *arg);

/* ---- completion: the access log and metrics --------------------------------
 * Called once per request when it is over (response written, failed, or
 * the client gone: status 499), instead of the built-in access line. */
typedef void (*gl_http_complete_fn)(gl_http_req *r, void *arg);
void gl_http_server_on_complete(gl_http_server *s, gl_http_complete_fn fn,
				void *arg);
/* What the handler learnt, for the access log (copied, bounded). */
typedef struct gl_http_note {
	int route;     /* the route template (metrics.h), 0 unknown */
	int uploading; /* counted as an upload in flight */
	char user[64], project[64];
} gl_http_note;
gl_http_note *gl_http_note_of(gl_http_req *r);
int gl_http_status(const gl_http_req *r);
int64_t gl_http_resp_bytes(const gl_http_req *r);
int gl_http_aborted(const gl_http_req *r);
double gl_http_elapsed_ms(const gl_http_req *r);

#endif
