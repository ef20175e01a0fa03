/* test_http.c - the HTTP layer on its own: a server on an event loop in a
 * thread, a raw socket client in the test. The 2 GiB cases are the
 * streaming proof: the body goes through the layer (Content-Length and
 * chunked) while the process's peak RSS stays under 32 MB. */
#include "unit.h"

#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

typedef struct srv {
	struct event_base *base;
	gl_http_server *http;
	pthread_t th;
	int port;
	int64_t received;
	int pause_every; /* exercise backpressure: pause, resume on a timer */
	struct event *resume_ev;
	gl_http_req *paused_req;
} srv;

static int on_data(gl_http_req *r, const char *d, size_t n, void *arg)
{
	srv *s = arg;
	static int calls;
	s->received += (int64_t)n;
	if (s->pause_every && ++calls % s->pause_every == 0) {
		struct timeval tv = { 0, 1000 };
		s->paused_req = r;
		evtimer_add(s->resume_ev, &tv);
		return GL_HTTP_BODY_PAUSE;
	}
	return GL_HTTP_BODY_OK;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	srv *s = arg;
	if (s->paused_req)
		gl_http_body_resume(s->paused_req);
	s->paused_req = NULL;
}

static void on_done(gl_http_req *r, void *arg)
{
	srv *s = arg;
	char body[64];
	int n = snprintf(body, sizeof body, "%lld", (long long)s->received);
	gl_http_reply(r, 200, body, (size_t)n);
}

static void dispatch(gl_http_req *r, void *arg)
{
	srv *s = arg;
	s->received = 0;
	if (gl_http_has_body(r))
		gl_http_body_accept(r, on_data, on_done, s);
	else
		gl_http_reply(r, 204, NULL, 0);
}

static void on_error(gl_http_req *r, int status, const char *msg, void *arg)
{
	gl_http_reply(r, status, msg, strlen(msg));
}

static void *loop(void *arg)
{
	srv *s = arg;
	event_base_dispatch(s->base);
	return NULL;
}

static int srv_start(srv *s)
{
	gl_http_limits lim;
	gl_err err;

	memset(s, 0, sizeof *s);
	s->base = event_base_new();
	gl_http_limits_default(&lim);
	s->http = gl_http_server_new(s->base, &lim, dispatch, on_error, s);
	if (gl_http_server_listen(s->http, "127.0.0.1", 0, 0, &err))
		return -1;
	s->port = gl_http_server_port(s->http);
	s->resume_ev = evtimer_new(s->base, resume_cb, s);
	return pthread_create(&s->th, NULL, loop, s);
}

static void srv_stop(srv *s)
{
	event_base_loopbreak(s->base);
	/* wake the loop so it sees the break */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)s->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	connect(fd, (struct sockaddr *)&a, sizeof a);
	close(fd);
	pthread_join(s->th, NULL);
	event_free(s->resume_ev);
	gl_http_server_free(s->http);
	event_base_free(s->base);
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_response(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		char *body = strstr(buf, "\r\n\r\n");
		char *cl = strstr(buf, "Content-Length: ");
		if (body && cl &&
		    (size_t)(buf + got - body - 4) >= (size_t)atol(cl + 16))
			break;
	}
	buf[got] = '\0';
	return (int)got;
}

#define GIB2 (2LL << 30)

static int stream(srv *s, int chunked, int64_t total, char *resp, size_t rlen)
{
	static char buf[1 << 20];
	int fd = dial(s->port);
	char head[256];
	int64_t left = total;

	if (fd < 0)
		return -1;
	memset(buf, 'z', sizeof buf);
	snprintf(head, sizeof head, "PUT /x HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n",
		 chunked ? "Transfer-Encoding: chunked" : "");
	if (!chunked)
		snprintf(head, sizeof head,
			 "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: %lld"
			 "\r\n\r\n",
			 (long long)total);
	if (send_all(fd, head, strlen(head)))
		goto fail;
	while (left > 0) {
		size_t n = left > (int64_t)sizeof buf ? sizeof buf
						      : (size_t)left;
		if (chunked) {
			char cl[32];
			snprintf(cl, sizeof cl, "%zx\r\n", n);
			if (send_all(fd, cl, strlen(cl)))
				goto fail;
		}
		if (send_all(fd, buf, n))
			goto fail;
		if (chunked && send_all(fd, "\r\n", 2))
			goto fail;
		left -= (int64_t)n;
	}
	if (chunked && send_all(fd, "0\r\n\r\n", 5))
		goto fail;
	read_response(fd, resp, rlen);
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

/* Run in a fresh process (re-exec): its peak RSS is the layer's own. */
static void stream_child(int chunked)
{
	srv s;
	char resp[1024], want[64];
	CHECK(srv_start(&s) == 0);
	CHECK(stream(&s, chunked, GIB2, resp, sizeof resp) == 0);
	snprintf(want, sizeof want, "\r\n\r\n%lld", GIB2);
	CHECK(strstr(resp, "HTTP/1.1 200 OK") == resp);
	CHECK(strstr(resp, want) != NULL);
	srv_stop(&s);
}

UNIT_TEST(child_stream_cl)
{
	stream_child(0);
}
UNIT_TEST(child_stream_chunked)
{
	stream_child(1);
}

static int run_child(const char *name, long *rss_kb)
{
	pid_t pid = fork();
	int st;
	struct rusage ru;

	if (pid == 0) {
		setenv("UNIT_ONLY", name, 1);
		execl("/proc/self/exe", "unit-tests", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
		return -1;
	*rss_kb = ru.ru_maxrss;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

UNIT_TEST(stream_2gib_content_length)
{
	long rss;
	CHECK(run_child("http.child_stream_cl", &rss) == 0);
	if (!getenv("GLARED_ASAN"))
		CHECK(rss < 32 * 1024);
}

UNIT_TEST(stream_2gib_chunked)
{
	long rss;
	CHECK(run_child("http.child_stream_chunked", &rss) == 0);
	if (!getenv("GLARED_ASAN"))
		CHECK(rss < 32 * 1024);
}

UNIT_TEST(backpressure_pauses_keep_every_byte)
{
	srv s;
	char resp[1024], want[64];
	int64_t total = 16LL << 20;
	CHECK(srv_start(&s) == 0);
	s.pause_every = 17;
	CHECK(stream(&s, 1, total, resp, sizeof resp) == 0);
	snprintf(want, sizeof want, "\r\n\r\n%lld", (long long)total);
	CHECK(strstr(resp, want) != NULL);
	s.pause_every = 5;
	CHECK(stream(&s, 0, total, resp, sizeof resp) == 0);
	CHECK(strstr(resp, want) != NULL);
	srv_stop(&s);
}

UNIT_TEST(pipelined_bodies_in_order)
{
	srv s;
	char resp[4096];
	const char req[] =
		"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
		"PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\n\r\n"
		"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	int fd;
	size_t got = 0;
	CHECK(srv_start(&s) == 0);
	fd = dial(s.port);
	CHECK(fd >= 0);
	CHECK(send_all(fd, req, sizeof req - 1) == 0);
	for (;;) {
		ssize_t n = read(fd, resp + got, sizeof resp - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	close(fd);
	srv_stop(&s);
	char *p1 = strstr(resp, "200 OK"), *p2, *p3;
	CHECK(p1 != NULL);
	p2 = strstr(p1 + 1, "200 OK");
	CHECK(p2 != NULL);
	p3 = strstr(p2 + 1, "204 No Content");
	CHECK(p3 != NULL);
	CHECK(strstr(p1, "\r\n\r\n3") != NULL);
	CHECK(strstr(p2, "\r\n\r\n5") != NULL);
}

/* ---- the head checks over split reads (a bufferevent pair, no socket) ---
 * The raw head scan keeps its state between reads: a request gets the same
 * answer whole and one byte at a time. */

static void pair_dispatch(gl_http_req *r, void *arg)
{
	if (gl_http_has_body(r))
		gl_http_body_accept(r, on_data, on_done, arg);
	else
		gl_http_reply(r, 204, NULL, 0);
}

/* The status line's code of the first response to input fed in pieces of
 * `piece` bytes. */
static int status_when_split(const char *in, size_t piece)
{
	struct event_base *b = event_base_new();
	struct bufferevent *pair[2];
	gl_http_limits lim;
	gl_http_server *hs;
	srv s = { 0 };
	size_t n = strlen(in);
	char out[64] = "";
	int code = -1;

	gl_http_limits_default(&lim);
	hs = gl_http_server_new(b, &lim, pair_dispatch, on_error, &s);
	if (bufferevent_pair_new(b,
				 BEV_OPT_CLOSE_ON_FREE |
					 BEV_OPT_DEFER_CALLBACKS,
				 pair) < 0)
		return -2;
	gl_http_server_adopt(hs, pair[0], NULL);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	for (size_t off = 0; off < n; off += piece) {
		bufferevent_write(pair[1], in + off,
				  n - off < piece ? n - off : piece);
		for (int i = 0; i < 4; i++)
			event_base_loop(b, EVLOOP_NONBLOCK);
	}
	for (int i = 0; i < 8; i++)
		event_base_loop(b, EVLOOP_NONBLOCK);
	bufferevent_read(pair[1], out, sizeof out - 1);
	if (!strncmp(out, "HTTP/1.1 ", 9))
		code = atoi(out + 9);
	bufferevent_free(pair[1]);
	gl_http_server_free(hs);
	event_base_free(b);
	return code;
}

UNIT_TEST(head_checks_hold_over_split_reads)
{
	static const struct {
		const char *in;
		int status;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 204 },
		{ "\r\nGET / HTTP/1.1\nHost: x\n\n", 204 },
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
		  "\r\n",
		  200 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX: 1\r\n 2\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\rX: 1\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n\rX", 400 },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encodingx: 1\r\n\r\n",
		  400 },
		/* a body that looks like a folded line is a body */
		{ "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
		  "\n x\r",
		  200 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t piece = 1; piece <= 7; piece += 3) {
			int got = status_when_split(cases[i].in, piece);
			if (got != cases[i].status) {
				unit_failed = 1;
				snprintf(unit_msg, sizeof unit_msg,
					 "case %zu in %zu-byte pieces: %d, want "
					 "%d",
					 i, piece, got, cases[i].status);
				return;
			}
		}
	}
}

UNIT_SUITE(http, UNIT_CASE(head_checks_hold_over_split_reads),
	   UNIT_CASE(pipelined_bodies_in_order),
	   UNIT_CASE(backpressure_pauses_keep_every_byte),
	   UNIT_CASE(stream_2gib_content_length),
	   UNIT_CASE(stream_2gib_chunked), UNIT_CASE(child_stream_cl),
	   UNIT_CASE(child_stream_chunked));
