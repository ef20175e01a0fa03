/* fuzz_http.c - libFuzzer harness for the HTTP connection layer (http.c):
 * arbitrary bytes as one connection's input, in pieces, through the
 * parser glue, the head checks, body streaming (accepted, paused, aborted,
 * discarded after an early reply), pipelining, streamed and delayed
 * replies, and the connection's end.
 *
 * No sockets: the server adopts one end of a bufferevent pair; the harness
 * writes to the other end and drains what comes back. The first input byte
 * seeds the piece sizes, so the same request arrives split in many ways.
 * The handler below uses the request API the way api.c does, chosen by
 * the first letter of the path:
 *   /b  accept the body, reply when it is complete
 *   /p  accept the body, pause on each piece, resume on the next loop turn
 *   /a  accept the body, abort it at the first piece (413)
 *   /e  reply 400 at once without taking the body
 *   /s  stream a chunked (or close-delimited) reply
 *   /l  reply on the next loop turn
 *   /h  hold the body (as api.c does while a token is checked), accept it
 *       on the next loop turn
 *   /r  hold the body, reply 401 on the next loop turn
 *   other: reply 200 at once, echoing a request header as a header
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static gl_http_server *srv;
static struct event *later; /* deferred work for /p and /l */
static gl_http_req *paused_req, *late_req, *held_req;
static char held_mode;

static int on_data(gl_http_req *r, const char *d, size_t n, void *arg);
static void on_done(gl_http_req *r, void *arg);

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_http_req *p = paused_req, *l = late_req, *h = held_req;

	paused_req = late_req = held_req = NULL;
	if (h && held_mode == 'h')
		gl_http_body_accept(h, on_data, on_done, (void *)"b");
	else if (h)
		gl_http_reply(h, 401, "who", 3);
	if (p)
		gl_http_body_resume(p);
	if (l)
		gl_http_reply(l, 200, "late", 4);
}

static void arm_later(void)
{
	struct timeval now = { 0, 0 };
	evtimer_add(later, &now);
}

/* the connection died under a request we hold */
static void on_close(gl_http_req *r, void *arg)
{
	if (paused_req == r)
		paused_req = NULL;
	if (late_req == r)
		late_req = NULL;
	if (held_req == r)
		held_req = NULL;
}

static int on_data(gl_http_req *r, const char *d, size_t n, void *arg)
{
	char mode = *(const char *)arg;

	if (mode == 'a') {
		gl_http_set_header(r, "Content-Type", "application/json");
		gl_http_reply(r, 413, "{}", 2);
		return GL_HTTP_BODY_ABORT;
	}
	if (mode == 'p' && !paused_req) {
		paused_req = r;
		arm_later();
		return GL_HTTP_BODY_PAUSE;
	}
	return GL_HTTP_BODY_OK;
}

static void on_done(gl_http_req *r, void *arg)
{
	char body[32];
	int n = snprintf(body, sizeof body, "%lld",
			 (long long)gl_http_body_received(r));

	if (paused_req == r)
		paused_req = NULL;
	gl_http_reply(r, 200, body, (size_t)n);
}

static void dispatch(gl_http_req *r, void *arg)
{
	const char *path = gl_http_path(r);
	const char *echo = gl_http_header(r, "X-Echo");
	static const char modes[] = "bpaeslhr";
	const char *mode = strchr(modes, path[1] ? path[1] : '-');

	(void)gl_http_query(r);
	(void)gl_http_content_length(r);
	(void)gl_http_peer(r);
	gl_http_set_request_id(r, "fuzz");
	gl_http_on_close(r, on_close, NULL);
	if (echo)
		gl_http_set_header(r, "X-Echo", echo);
	gl_http_set_header(r, "X-Path", path);
	if (!mode || !*mode) {
		gl_http_reply(r, 200, "ok", 2);
		return;
	}
	switch (*mode) {
	case 'b':
	case 'p':
	case 'a':
		if (gl_http_has_body(r)) {
			gl_http_body_accept(r, on_data, on_done, (void *)mode);
			return;
		}
		gl_http_reply(r, 204, NULL, 0);
		return;
	case 'e':
		gl_http_reply(r, 400, "no", 2);
		return;
	case 's':
		gl_http_reply_start(r, 200, -1);
		gl_http_reply_data(r, "stream", 6);
		gl_http_reply_end(r);
		return;
	case 'h':
	case 'r':
		if (!held_req && gl_http_has_body(r)) {
			held_req = r;
			held_mode = *mode;
			gl_http_body_hold(r);
			arm_later();
			return;
		}
		gl_http_reply(r, 200, "now", 3);
		return;
	case 'l':
		if (!late_req && !gl_http_has_body(r)) {
			late_req = r;
			arm_later();
			return;
		}
		gl_http_reply(r, 200, "now", 3);
		return;
	}
}

static void on_error(gl_http_req *r, int status, const char *msg, void *arg)
{
	gl_http_set_header(r, "Content-Type", "text/plain");
	gl_http_reply(r, status, msg, strlen(msg));
}

static void setup(void)
{
	gl_http_limits lim;

	gl_log_set_min(GL_LOG_ERROR); /* millions of requests: errors only */
	base = event_base_new();
	gl_http_limits_default(&lim);
	/* small limits, so the fuzzer reaches them */
	lim.max_header_line = 512;
	lim.max_header_size = 2048;
	lim.max_url = 256;
	lim.max_headers = 16;
	lim.max_discard = 64;
	srv = gl_http_server_new(base, &lim, dispatch, on_error, NULL);
	later = evtimer_new(base, later_cb, NULL);
	if (!base || !srv || !later)
		abort();
}

static void turn(int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent *pair[2];
	uint32_t seed;
	size_t off = 1;

	if (!base)
		setup();
	if (size < 1)
		return 0;
	seed = data[0] * 2654435761u + 1;
	if (bufferevent_pair_new(base,
				 BEV_OPT_CLOSE_ON_FREE |
					 BEV_OPT_DEFER_CALLBACKS,
				 pair) < 0)
		abort();
	gl_http_server_adopt(srv, pair[0], NULL);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	while (off < size) {
		size_t piece;

		seed = seed * 1103515245u + 12345u;
		piece = 1 + (seed >> 16) % 97;
		if (piece > size - off)
			piece = size - off;
		bufferevent_write(pair[1], data + off, piece);
		off += piece;
		turn(3);
		evbuffer_drain(bufferevent_get_input(pair[1]), (size_t)-1);
	}
	turn(8);
	/* the client half-closes and reads on: whatever state the
	 * connection is in, it must answer what it owes and end */
	bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
	for (int i = 0; i < 64 && gl_http_server_nconns(srv) > 0; i++) {
		turn(1);
		evbuffer_drain(bufferevent_get_input(pair[1]), (size_t)-1);
	}
	if (gl_http_server_nconns(srv) > 0)
		abort(); /* a connection outlived its peer */
	bufferevent_free(pair[1]);
	turn(1);
	paused_req = late_req = held_req = NULL;
	return 0;
}
