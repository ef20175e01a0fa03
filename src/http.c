/* http.c - HTTP/1.1 server connections on bufferevents + http-parser.
 *
 * See http.h for the contract. The shape of a connection:
 *
 *   read cb -> conn_parse(): feed buffered input to http_parser_execute
 *     on_message_begin     new request, head timer armed
 *     on_url/on_header_*   accumulate, enforce size limits
 *     on_headers_complete  validate framing, dispatch to the handler
 *     on_body              to the handler's consumer (or discarded)
 *     on_message_complete  body done; parsing stops until the response is
 *                          complete and written (pipelining stays ordered)
 *   write cb -> drain callbacks for streamed responses, request completion
 *
 * Nothing that frees the connection runs inside a parser callback or inside
 * a handler's call into this unit: such paths set flags and "kick" the
 * connection (a zero-delay event), and only top-level libevent callbacks
 * free. That keeps handlers free to reply from anywhere. (One exception:
 * an idle connection evicted for a new one is freed from the accept path,
 * where none of its callbacks can be running.)
 *
 * http-parser is lenient where RFC 9112 is strict (it takes "Name : v" and
 * folded lines), so head_scan() reads the raw head bytes before the parser
 * does, and header_done() checks each field as it completes.
 */
#include "http.h"
#include "log.h"
#include "status.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <http_parser.h>

/* Input read ahead of the parser is capped here: a slow consumer stalls the
 * socket (TCP backpressure) instead of growing memory. */
#define READ_HIGH_WATER (256 * 1024)
/* libevent reads/writes 16 KiB per callback by default; 256 KiB measured
 * ~5-10% faster for multi-GB bodies at no memory cost
 * (docs/design-notes.md "Streaming request bodies"). */
#define MAX_SINGLE_IO (256 * 1024)
/* Streamed responses are fed again once the output is below this. */
#define OUT_LOW_WATER (256 * 1024)
/* After an early reply to an unread body, keep reading (and dropping) for
 * this long so the client sees the reply instead of a reset. */
#define LINGER_SECONDS 2

enum resp_state { RESP_NONE, RESP_STREAMING, RESP_DONE };

struct conn;

/* Connections per client address (IPv6: per /64, what one host is
 * usually given). */
struct peer {
	LIST_ENTRY(peer) link;
	int family;
	unsigned char addr[16];
	int nconns;
};
#define PEER_BUCKETS 256

struct gl_http_server {
	struct event_base *base;
	struct evconnlistener *lis;
	gl_http_limits lim;
	gl_http_dispatch_fn dispatch;
	gl_http_error_fn on_error;
	void *arg;
	TAILQ_HEAD(conn_list, conn) conns;
	/* connections with no request in progress, longest idle first */
	TAILQ_HEAD(idle_list, conn) idle;
	LIST_HEAD(peer_list, peer) peers[PEER_BUCKETS];
	int nconns;
	time_t refuse_logged; /* refusals are logged once a second */
	int refused;
	int port;
	int shutting_down;
	void (*shutdown_done)(void *);
	void *shutdown_arg;
	gl_http_complete_fn on_complete; /* access log and metrics */
	void *complete_arg;
};

struct gl_http_req {
	struct conn *c;
	int method;
	int http_major, http_minor;
	gl_sb target;
	char *path, *query;
	struct evkeyvalq headers;
	int64_t content_length;
	int chunked, has_body, expect_continue, keepalive;
	int n_content_length, n_transfer_encoding, n_host, nheaders;
	int bad_te;
	int64_t cl_value; /* Content-Length as read here; -1 malformed */
	int head_done;    /* later header callbacks are trailer fields */
	/* header accumulation: http-parser may split names and values */
	gl_sb hname, hval;
	int in_value;
	/* body */
	gl_http_body_fn on_data;
	gl_http_done_fn on_done;
	void *body_arg;
	int body_accepted, body_paused, body_aborted;
	int body_held; /* the handler will decide later */
	int64_t body_received, discarded;
	int msg_done;
	/* response */
	struct evkeyvalq out_headers;
	int status;
	enum resp_state resp;
	int resp_chunked, resp_aborted;
	int64_t resp_bytes;
	gl_http_done_fn on_close, on_drain;
	void *close_arg, *drain_arg;
	char request_id[64];
	struct timespec t0;
	gl_http_note note; /* the handler's words for the access log */
};

struct conn {
	TAILQ_ENTRY(conn) link;
	TAILQ_ENTRY(conn) idle_link;
	int idle; /* on srv->idle */
	struct peer *peer;
	gl_http_server *srv;
	struct bufferevent *bev;
	http_parser parser;
	gl_http_req *req;
	char peer_name[INET6_ADDRSTRLEN];
	int peer_port;
	size_t head_bytes;
	int head_status; /* limit breached while parsing the head */
	const char *head_msg;
	int stop_parse;  /* never parse again on this connection */
	int unread;      /* the client may still be sending: linger */
	int close_after; /* close once the current response is written */
	int closing;     /* flushing output, then linger/close */
	int lingering;
	int want_free;
	int in_callback;  /* depth of top-level callbacks on this conn */
	int msg_boundary; /* a message ended: scan the next head */
	int scan_state;   /* head_scan() */
	int scan_lines;
	size_t scanned;    /* input bytes head_scan() has seen */
	int held;          /* gl_http_hold: a handler's coroutine is out */
	int parse_blocked; /* parsing waits for the last release */
	struct event *head_timer, *kick, *linger_timer;
};

static void conn_parse(struct conn *c);
static void conn_kick(struct conn *c);
static void conn_leave(struct conn *c);

/* ---- small helpers ------------------------------------------------------ */

void gl_http_limits_default(gl_http_limits *lim)
{
	lim->max_header_line = 16384;
	lim->max_header_size = 65536;
	lim->max_url = 16384;
	lim->max_headers = 100;
	lim->client_timeout = 900;
	lim->header_timeout = 60;
	lim->first_byte_timeout = 10;
	lim->keepalive = 1;
	lim->max_conns = 1024;
	lim->max_conns_per_client = 256;
	lim->max_discard = 65536;
}

static void http_date(char *buf, size_t len)
{
	static time_t cached_t;
	static char cached[64];
	time_t now = time(NULL);
	if (now != cached_t) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT",
			 &tm);
		cached_t = now;
	}
	snprintf(buf, len, "%s", cached);
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 +
	       (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* RFC 9110 5.6.2 token characters: a field name is nothing else (no
 * whitespace before the colon, none inside). */
static int tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* ---- request object ----------------------------------------------------- */

static gl_http_req *req_new(struct conn *c)
{
	gl_http_req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->c = c;
	TAILQ_INIT(&r->headers);
	TAILQ_INIT(&r->out_headers);
	r->content_length = -1;
	r->keepalive = 1;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	return r;
}

static void req_free(gl_http_req *r)
{
	if (!r)
		return;
	evhttp_clear_headers(&r->headers);
	evhttp_clear_headers(&r->out_headers);
	gl_sb_free(&r->target);
	gl_sb_free(&r->hname);
	gl_sb_free(&r->hval);
	free(r->path);
	free(r->query);
	free(r);
}

static void access_log(gl_http_req *r)
{
	const char *t = r->target.p ? r->target.p : "-";

	if (r->c->srv->on_complete) {
		r->c->srv->on_complete(r, r->c->srv->complete_arg);
		return;
	}
	gl_info("access: %s %.*s %d %lldB %.1fms %s%s",
		r->method >= 0 ? http_method_str(r->method) : "-",
		(int)(r->target.len > 1024 ? 1024 : r->target.len), t,
		r->status, (long long)r->resp_bytes, elapsed_ms(&r->t0),
		r->request_id[0] ? r->request_id : "-",
		r->resp_aborted ? " aborted" : "");
}

/* ---- accessors ---------------------------------------------------------- */

void gl_http_server_on_complete(gl_http_server *s, gl_http_complete_fn fn,
				void *arg)
{
	s->on_complete = fn;
	s->complete_arg = arg;
}
gl_http_note *gl_http_note_of(gl_http_req *r)
{
	return &r->note;
}
int gl_http_status(const gl_http_req *r)
{
	return r->status;
}
int64_t gl_http_resp_bytes(const gl_http_req *r)
{
	return r->resp_bytes;
}
int gl_http_aborted(const gl_http_req *r)
{
	return r->resp_aborted;
}
double gl_http_elapsed_ms(const gl_http_req *r)
{
	return elapsed_ms(&r->t0);
}

const char *gl_http_method(const gl_http_req *r)
{
	return http_method_str(r->method);
}
int gl_http_method_id(const gl_http_req *r)
{
	return r->method;
}
int gl_http_is_head(const gl_http_req *r)
{
	return r->method == HTTP_HEAD;
}
const char *gl_http_target(const gl_http_req *r)
{
	return r->target.p ? r->target.p : "";
}
const char *gl_http_path(const gl_http_req *r)
{
	return r->path ? r->path : "/";
}
const char *gl_http_query(const gl_http_req *r)
{
	return r->query;
}
const char *gl_http_header(const gl_http_req *r, const char *name)
{
	return evhttp_find_header(&r->headers, name);
}
struct evkeyvalq *gl_http_headers(gl_http_req *r)
{
	return &r->headers;
}
int64_t gl_http_content_length(const gl_http_req *r)
{
	return r->content_length;
}
int gl_http_has_body(const gl_http_req *r)
{
	return r->has_body;
}
int gl_http_is_chunked(const gl_http_req *r)
{
	return r->chunked;
}
const char *gl_http_peer(const gl_http_req *r)
{
	return r->c->peer_name;
}
int gl_http_peer_port(const gl_http_req *r)
{
	return r->c->peer_port;
}
int64_t gl_http_body_received(const gl_http_req *r)
{
	return r->body_received;
}
int gl_http_replied(const gl_http_req *r)
{
	return r->resp != RESP_NONE;
}

void gl_http_keep_headers(gl_http_req *r, const char *const *names)
{
	struct evkeyval *kv, *next;

	for (kv = TAILQ_FIRST(&r->out_headers); kv; kv = next) {
		int keep = 0;
		next = TAILQ_NEXT(kv, next);
		for (int i = 0; names && names[i] && !keep; i++)
			keep = !strcasecmp(kv->key, names[i]);
		if (!keep) {
			TAILQ_REMOVE(&r->out_headers, kv, next);
			free(kv->key);
			free(kv->value);
			free(kv);
		}
	}
}

void gl_http_set_request_id(gl_http_req *r, const char *id)
{
	snprintf(r->request_id, sizeof r->request_id, "%s", id);
}
const char *gl_http_request_id(const gl_http_req *r)
{
	return r->request_id;
}

void gl_http_on_close(gl_http_req *r, gl_http_done_fn fn, void *arg)
{
	r->on_close = fn;
	r->close_arg = arg;
}

void gl_http_on_drain(gl_http_req *r, gl_http_done_fn fn, void *arg)
{
	r->on_drain = fn;
	r->drain_arg = arg;
}

size_t gl_http_output_pending(const gl_http_req *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->c->bev));
}

/* ---- connection slots ------------------------------------------------------ */

static void idle_enter(struct conn *c)
{
	if (c->idle)
		return;
	TAILQ_INSERT_TAIL(&c->srv->idle, c, idle_link);
	c->idle = 1;
}

static void idle_leave(struct conn *c)
{
	if (!c->idle)
		return;
	TAILQ_REMOVE(&c->srv->idle, c, idle_link);
	c->idle = 0;
}

/* The counting key of a client address: IPv4 (also when IPv4-mapped), an
 * IPv6 /64, or one shared key for anything else. */
static void peer_key(const struct sockaddr *sa, int *family,
		     unsigned char addr[16])
{
	memset(addr, 0, 16);
	*family = 0;
	if (sa && sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
			*family = AF_INET;
			memcpy(addr, a + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a, 8);
		}
	}
}

static struct peer *peer_get(gl_http_server *s, const struct sockaddr *sa)
{
	unsigned char addr[16];
	unsigned h = 2166136261u;
	int family;
	struct peer *p;

	peer_key(sa, &family, addr);
	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	h %= PEER_BUCKETS;
	LIST_FOREACH(p, &s->peers[h], link)
	if (p->family == family && !memcmp(p->addr, addr, 16))
		break;
	if (!p) {
		p = calloc(1, sizeof *p);
		if (!p)
			return NULL;
		p->family = family;
		memcpy(p->addr, addr, 16);
		LIST_INSERT_HEAD(&s->peers[h], p, link);
	}
	p->nconns++;
	return p;
}

static void peer_put(struct peer *p)
{
	if (p && --p->nconns == 0) {
		LIST_REMOVE(p, link);
		free(p);
	}
}

static void conn_free(struct conn *c);

/* Free the longest idle connection (of peer p, or any if p is NULL) to
 * make room for a new one. 1 if one went. */
static int evict_idle(gl_http_server *s, const struct peer *p)
{
	struct conn *c;

	TAILQ_FOREACH(c, &s->idle, idle_link)
	{
		if ((p && c->peer != p) || c->in_callback || c->want_free)
			continue;
		conn_free(c);
		return 1;
	}
	return 0;
}

/* ---- connection lifetime ------------------------------------------------ */

static void server_check_shutdown(gl_http_server *s)
{
	if (s->shutting_down && s->nconns == 0 && s->shutdown_done) {
		void (*done)(void *) = s->shutdown_done;
		s->shutdown_done = NULL;
		done(s->shutdown_arg);
	}
}

static void conn_free(struct conn *c)
{
	gl_http_server *s = c->srv;
	gl_http_req *r = c->req;

	c->req = NULL;
	if (r) {
		/* the handler still holds the request: last contact */
		if (r->resp != RESP_DONE && r->on_close)
			r->on_close(r, r->close_arg);
		if (r->resp == RESP_NONE)
			r->status =
				499; /* client went away; nginx's convention */
		if (r->method >= 0 || r->target.len)
			access_log(r);
		req_free(r);
	}
	if (c->head_timer)
		event_free(c->head_timer);
	if (c->kick)
		event_free(c->kick);
	if (c->linger_timer)
		event_free(c->linger_timer);
	bufferevent_free(c->bev);
	idle_leave(c);
	peer_put(c->peer);
	TAILQ_REMOVE(&s->conns, c, link);
	s->nconns--;
	free(c);
	server_check_shutdown(s);
}

/* Enter/leave bracket every top-level callback; the connection is freed on
 * the way out of the outermost one, never underneath a caller. */
static void conn_enter(struct conn *c)
{
	c->in_callback++;
}
static void conn_leave(struct conn *c)
{
	if (--c->in_callback == 0 && c->want_free)
		conn_free(c);
}

static void conn_kill(struct conn *c)
{
	c->want_free = 1;
	idle_leave(c);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->in_callback == 0)
		conn_kick(c);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	conn_kill(c);
	conn_leave(c);
}

/* All output written: half-close and drain what the client still sends,
 * briefly, so an early error reply is read rather than reset away. */
static void conn_start_linger(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	struct timeval tv = { LINGER_SECONDS, 0 };

	if (c->lingering)
		return;
	c->lingering = 1;
	if (!c->unread || fd < 0) {
		/* nothing unread is expected (or no socket): plain close */
		conn_kill(c);
		return;
	}
	shutdown(fd, SHUT_WR);
	c->linger_timer = evtimer_new(c->srv->base, linger_cb, c);
	if (!c->linger_timer) {
		conn_kill(c);
		return;
	}
	evtimer_add(c->linger_timer, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
}

/* Close once everything queued has been written. */
static void conn_close_when_flushed(struct conn *c)
{
	c->closing = 1;
	c->stop_parse = 1;
	idle_leave(c);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_start_linger(c);
	/* else the write callback sees the empty buffer */
}

/* ---- response writing ----------------------------------------------------- */

static int body_allowed(int status)
{
	return !(status == 204 || status == 304 ||
		 (status >= 100 && status < 200));
}

/* Decide, before the head is written, whether this connection can carry
 * another request after this response. */
static void reply_prepare(gl_http_req *r)
{
	struct conn *c = r->c;
	const gl_http_limits *lim = &c->srv->lim;

	if (!r->msg_done && r->has_body) {
		if (r->body_accepted || r->chunked || r->expect_continue ||
		    r->content_length > (int64_t)lim->max_discard) {
			/* the rest of the body is not worth reading */
			c->close_after = 1;
			c->stop_parse = 1;
			c->unread = 1;
		}
		/* else: small body, discarded as it arrives, keep-alive */
	}
	if (!r->keepalive || c->srv->shutting_down)
		c->close_after = 1;
}

static void write_head(gl_http_req *r, int status, int64_t len, int chunked)
{
	struct evbuffer *out = bufferevent_get_output(r->c->bev);
	struct evkeyval *kv;
	char date[64];

	r->status = status;
	http_date(date, sizeof date);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
			    gl_status_reason(status), date);
	TAILQ_FOREACH(kv, &r->out_headers, next)
	evbuffer_add_printf(out, "%s: %s\r\n", kv->key, kv->value);
	if (body_allowed(status)) {
		if (chunked)
			evbuffer_add_printf(out,
					    "Transfer-Encoding: chunked\r\n");
		else if (len >= 0)
			evbuffer_add_printf(out, "Content-Length: %lld\r\n",
					    (long long)len);
	}
	if (r->c->close_after)
		evbuffer_add_printf(out, "Connection: close\r\n");
	else if (r->http_major == 1 && r->http_minor == 0)
		evbuffer_add_printf(out, "Connection: keep-alive\r\n");
	evbuffer_add(out, "\r\n", 2);
}

static void reply_done(gl_http_req *r)
{
	r->resp = RESP_DONE;
	conn_kick(r->c);
}

/* The framing of a response is this unit's alone. */
static int framing_header(const char *name)
{
	return !strcasecmp(name, "Content-Length") ||
	       !strcasecmp(name, "Transfer-Encoding") ||
	       !strcasecmp(name, "Connection") || !strcasecmp(name, "Date");
}

/* A field line this unit will write: a token name, a value without
 * controls (no CR/LF: no injected line, no obs-fold). */
static int field_ok(const char *name, const char *value)
{
	if (!*name)
		return 0;
	for (const char *p = name; *p; p++)
		if (!tchar((unsigned char)*p))
			return 0;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

void gl_http_set_header(gl_http_req *r, const char *name, const char *value)
{
	if (r->resp != RESP_NONE)
		return;
	if (framing_header(name) || !field_ok(name, value ? value : "")) {
		gl_warn("http: response header %s dropped", name);
		return;
	}
	/* evhttp_remove_header removes one match (any case) per call */
	while (evhttp_remove_header(&r->out_headers, name) == 0)
		;
	if (evhttp_add_header(&r->out_headers, name, value) < 0)
		gl_warn("http: dropped invalid response header %s", name);
}

static int reply_check(gl_http_req *r)
{
	if (r->resp != RESP_NONE) {
		gl_error("http: second reply to one request (%d) ignored",
			 r->status);
		return -1;
	}
	return 0;
}

void gl_http_reply(gl_http_req *r, int status, const void *body, size_t len)
{
	struct evbuffer *out;

	if (reply_check(r) < 0)
		return;
	reply_prepare(r);
	if (!body_allowed(status))
		len = 0;
	write_head(r, status, (int64_t)len, 0);
	out = bufferevent_get_output(r->c->bev);
	if (len && r->method != HTTP_HEAD) {
		evbuffer_add(out, body, len);
		r->resp_bytes = (int64_t)len;
	}
	reply_done(r);
}

void gl_http_reply_file(gl_http_req *r, int status, int fd, off_t off,
			off_t len)
{
	struct evbuffer *out;

	if (reply_check(r) < 0) {
		close(fd);
		return;
	}
	reply_prepare(r);
	write_head(r, status, (int64_t)len, 0);
	out = bufferevent_get_output(r->c->bev);
	/* a socket bufferevent's output drains to the fd, so this chain is
	 * written with sendfile, never mapped or copied
	 * (docs/design-notes.md "Downloads with sendfile") */
	if (r->method == HTTP_HEAD || len == 0) {
		close(fd);
	} else if (evbuffer_add_file(out, fd, off, len) < 0) {
		gl_error("http: evbuffer_add_file failed");
		close(fd);
		r->resp_aborted = 1;
		r->c->close_after = 1;
	} else {
		r->resp_bytes = (int64_t)len;
	}
	reply_done(r);
}

void gl_http_reply_start(gl_http_req *r, int status, int64_t len)
{
	if (reply_check(r) < 0)
		return;
	reply_prepare(r);
	r->resp_chunked = 0;
	if (len < 0 && r->method != HTTP_HEAD) {
		if (r->http_major == 1 && r->http_minor >= 1)
			r->resp_chunked = 1;
		else
			r->c->close_after = 1; /* HTTP/1.0: end = close */
	}
	write_head(r, status, len, r->resp_chunked);
	r->resp = RESP_STREAMING;
	bufferevent_setwatermark(r->c->bev, EV_WRITE, OUT_LOW_WATER, 0);
}

void gl_http_reply_data(gl_http_req *r, const void *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(r->c->bev);

	if (r->resp != RESP_STREAMING || len == 0 || r->method == HTTP_HEAD)
		return;
	if (r->resp_chunked) {
		evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add(out, data, len);
		evbuffer_add(out, "\r\n", 2);
	} else {
		evbuffer_add(out, data, len);
	}
	r->resp_bytes += (int64_t)len;
}

void gl_http_reply_end(gl_http_req *r)
{
	if (r->resp != RESP_STREAMING)
		return;
	if (r->resp_chunked && r->method != HTTP_HEAD)
		evbuffer_add(bufferevent_get_output(r->c->bev), "0\r\n\r\n",
			     5);
	bufferevent_setwatermark(r->c->bev, EV_WRITE, 0, 0);
	reply_done(r);
}

void gl_http_reply_abort(gl_http_req *r)
{
	if (r->resp == RESP_DONE)
		return;
	if (r->resp == RESP_NONE) {
		/* nothing sent yet: a bare close is the clearest signal */
		r->status = 500;
	}
	r->resp_aborted = 1;
	r->c->close_after = 1;
	r->c->stop_parse = 1;
	bufferevent_setwatermark(r->c->bev, EV_WRITE, 0, 0);
	reply_done(r);
}

/* ---- body ----------------------------------------------------------------- */

void gl_http_body_accept(gl_http_req *r, gl_http_body_fn on_data,
			 gl_http_done_fn on_done, void *arg)
{
	r->on_data = on_data;
	r->on_done = on_done;
	r->body_arg = arg;
	r->body_accepted = 1;
	if (r->expect_continue && r->resp == RESP_NONE) {
		/* the client waits for this before sending the body */
		evbuffer_add_printf(bufferevent_get_output(r->c->bev),
				    "HTTP/1.1 100 Continue\r\n\r\n");
	}
	/* a request without body completes through on_message_complete */
	if (r->body_held) {
		/* the parser stopped before the body: go on */
		r->body_held = 0;
		conn_kick(r->c);
	}
}

void gl_http_body_hold(gl_http_req *r)
{
	if (r->has_body && !r->body_accepted && r->resp == RESP_NONE)
		r->body_held = 1;
}

int gl_http_body_taken(const gl_http_req *r)
{
	return r->body_accepted;
}

/* The handler holds the body and has neither taken it nor replied. */
static int body_waits(const gl_http_req *r)
{
	return r->body_held && !r->body_accepted && r->resp == RESP_NONE;
}

void gl_http_body_unhold(gl_http_req *r)
{
	if (!r->body_held)
		return;
	r->body_held = 0;
	/* parsing goes on from the loop: the body waits for a decision
	 * made now, or for the release of a pin taken now */
	conn_kick(r->c);
}

/* The one judgement of a request left with no decision: a body neither
 * taken nor answered, and nothing out that will decide (no body hold, no
 * pin), on a connection still in use. */
int gl_http_undecided(const gl_http_req *r)
{
	const struct conn *c = r->c;

	return r->has_body && !r->body_accepted && r->resp == RESP_NONE &&
	       !r->body_held && !c->held && !c->stop_parse && !c->want_free;
}

/* Its verdict, from this unit: 500 rather than a connection that hangs. */
static void judge(struct conn *c, gl_http_req *r)
{
	if (!gl_http_undecided(r))
		return;
	gl_error("http: handler neither replied nor took the body of %s %s",
		 http_method_str(r->method), r->path);
	c->srv->on_error(r, 500, "Request not handled", c->srv->arg);
}

void gl_http_body_resume(gl_http_req *r)
{
	if (!r->body_paused)
		return;
	r->body_paused = 0;
	conn_kick(r->c);
}

/* ---- holding the request for a coroutine ------------------------------- */

gl_http_pin *gl_http_hold(gl_http_req *r)
{
	struct conn *c = r->c;

	c->held++;
	conn_enter(c);
	return (gl_http_pin *)c;
}

void gl_http_release(gl_http_pin *pin)
{
	struct conn *c = (struct conn *)pin;
	gl_http_req *r = c->req;

	c->held--;
	c->in_callback--;
	if (r)
		judge(c, r);
	/* the rest (parsing on, or freeing a connection the client left)
	 * happens from the loop, never on the releasing coroutine's stack */
	if (c->held == 0 && (c->want_free || c->parse_blocked)) {
		c->parse_blocked = 0;
		conn_kick(c);
	}
}

/* ---- parser callbacks ----------------------------------------------------- */

static int head_limit(struct conn *c, size_t add, size_t line)
{
	const gl_http_limits *lim = &c->srv->lim;

	c->head_bytes += add;
	if (c->head_bytes > lim->max_header_size) {
		c->head_status = 431;
		c->head_msg = "Request header fields too large";
		return -1;
	}
	if (line > lim->max_header_line) {
		c->head_status = 431;
		c->head_msg = "Header line too long";
		return -1;
	}
	return 0;
}

static void head_timer_cb(evutil_socket_t fd, short what, void *arg);

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;
	struct timeval tv = { c->srv->lim.header_timeout, 0 };

	idle_leave(c);
	c->req = req_new(c);
	if (!c->req)
		return -1;
	c->req->method = -1;
	c->head_bytes = 0;
	if (c->head_timer)
		evtimer_add(c->head_timer, &tv);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;

	if (r->target.len + len > c->srv->lim.max_url) {
		c->head_status = 414;
		c->head_msg = "Request-URI too long";
		return -1;
	}
	if (head_limit(c, len, 0) < 0 ||
	    gl_sb_try_addn(&r->target, at, len) < 0)
		return -1;
	return 0;
}

static int head_fail(struct conn *c, int status, const char *msg)
{
	c->head_status = status;
	c->head_msg = msg;
	return -1;
}

/* Content-Length as RFC 9110 8.6 writes it: digits only (the parser
 * already refused what it cannot read; this catches what it reads
 * differently). -1: malformed or beyond int64. */
static int64_t parse_cl(const char *v)
{
	int64_t n = 0;

	if (!*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n;
}

/* Host: uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2), possibly
 * empty; the characters of a reg-name, an IPv4 or an IP literal. */
static int host_valid(const char *h)
{
	for (; *h; h++) {
		unsigned char ch = (unsigned char)*h;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') ||
		      strchr("-._~!$&'()*+,;=%:[]", ch)))
			return 0;
	}
	return 1;
}

static int header_done(struct conn *c)
{
	gl_http_req *r = c->req;
	char *v = r->hval.p ? r->hval.p : "";
	size_t vlen = r->hval.len;

	r->in_value = 0;
	if (r->head_done) {
		/* a trailer field: read, counted against the head limits,
		 * never taken as framing or as a request header */
		gl_sb_reset(&r->hname);
		gl_sb_reset(&r->hval);
		return 0;
	}
	if (!r->hname.len)
		return head_fail(c, 400, "Empty header field name");
	for (size_t i = 0; i < r->hname.len; i++)
		if (!tchar((unsigned char)r->hname.p[i]))
			return head_fail(c, 400,
					 "Invalid character in a header "
					 "field name");
	/* optional whitespace after the value is not part of it */
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		v[--vlen] = '\0';
	for (size_t i = 0; i < vlen; i++) {
		unsigned char ch = (unsigned char)v[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return head_fail(c, 400,
					 "Invalid character in a header "
					 "field value");
	}
	if (!gl_utf8_valid(v, vlen, 1))
		return head_fail(c, 400,
				 "A header field value is not valid "
				 "UTF-8");
	if (++r->nheaders > c->srv->lim.max_headers)
		return head_fail(c, 431, "Too many header fields");
	if (!strcasecmp(r->hname.p, "content-length")) {
		r->n_content_length++;
		r->cl_value = parse_cl(v);
	} else if (!strcasecmp(r->hname.p, "transfer-encoding")) {
		r->n_transfer_encoding++;
		if (strcasecmp(v, "chunked") != 0)
			r->bad_te = 1;
	} else if (!strcasecmp(r->hname.p, "host")) {
		r->n_host++;
		if (!host_valid(v))
			return head_fail(c, 400, "Invalid Host header");
	}
	if (evhttp_add_header(&r->headers, r->hname.p, v) < 0)
		return head_fail(c, 400, "Invalid header value");
	gl_sb_reset(&r->hname);
	gl_sb_reset(&r->hval);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;

	if (r->in_value && header_done(c) < 0)
		return -1;
	if (gl_sb_try_addn(&r->hname, at, len) < 0)
		return -1;
	return head_limit(c, len, r->hname.len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;

	r->in_value = 1;
	if (gl_sb_try_addn(&r->hval, at, len) < 0)
		return -1;
	return head_limit(c, len, r->hname.len + r->hval.len);
}

static int split_target(gl_http_req *r)
{
	const char *t = r->target.p ? r->target.p : "";
	size_t plen;

	/* absolute-form (proxy style) targets are accepted: keep the path */
	if (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8)) {
		const char *s = strstr(t, "//") + 2;
		s += strcspn(s, "/?#");
		t = *s == '/' ? s : "/";
	}
	plen = strcspn(t, "?#");
	r->path = strndup(t, plen);
	if (t[plen] == '?') {
		r->query = strndup(t + plen + 1, strcspn(t + plen + 1, "#"));
		if (!r->query)
			return -1;
	}
	return r->path ? 0 : -1;
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;
	const char *expect;

	if (r->in_value && header_done(c) < 0)
		return -1;
	r->head_done = 1;
	evtimer_del(c->head_timer);
	r->method = p->method;
	r->http_major = p->http_major;
	r->http_minor = p->http_minor;
	r->chunked = (p->flags & F_CHUNKED) != 0;
	if (!r->chunked && p->content_length != ULLONG_MAX)
		r->content_length = (int64_t)p->content_length;
	r->has_body = r->chunked || r->content_length > 0;
	r->keepalive = http_should_keep_alive(p) && c->srv->lim.keepalive;

	if (p->http_major != 1)
		return head_fail(c, 505, "HTTP version not supported");
	/* framing that could smuggle a second request past a proxy */
	if (r->n_content_length > 1)
		return head_fail(c, 400, "Duplicate Content-Length");
	if (r->n_content_length && r->n_transfer_encoding)
		return head_fail(c, 400,
				 "Both Content-Length and "
				 "Transfer-Encoding");
	if (r->n_transfer_encoding > 1 || r->bad_te)
		return head_fail(c, 400, "Unsupported Transfer-Encoding");
	/* the parser's reading of the framing and ours must agree (it takes
	 * some names that are not Transfer-Encoding for it) */
	if ((r->n_transfer_encoding != 0) != (r->chunked != 0) ||
	    (r->n_transfer_encoding != 0) !=
		    (p->uses_transfer_encoding != 0) ||
	    (r->n_content_length && r->cl_value != r->content_length))
		return head_fail(c, 400, "Invalid message framing");
	if (r->n_host > 1)
		return head_fail(c, 400, "Duplicate Host header");
	if (!r->n_host && p->http_minor >= 1)
		return head_fail(c, 400, "Missing Host header");
	/* RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding is faulty framing:
	 * serve it, then close */
	if (r->chunked && p->http_minor == 0) {
		r->keepalive = 0;
		c->close_after = 1;
	}
	/* a URI is ASCII (RFC 3986 2); other bytes come percent-encoded */
	for (size_t i = 0; i < r->target.len; i++) {
		unsigned char ch = (unsigned char)r->target.p[i];
		if (ch <= 0x20 || ch >= 0x7f)
			return head_fail(c, 400,
					 "Invalid character in the "
					 "request target");
	}
	if (split_target(r) < 0)
		return -1;
	if (r->path[0] != '/')
		return head_fail(c, 400, "Invalid request target");
	expect = evhttp_find_header(&r->headers, "Expect");
	if (expect) {
		if (strcasecmp(expect, "100-continue") != 0)
			return head_fail(c, 417, "Unsupported expectation");
		if (r->http_major == 1 && r->http_minor >= 1 && r->has_body)
			r->expect_continue = 1;
	}

	c->srv->dispatch(r, c->srv->arg);

	if (c->held || body_waits(r)) {
		/* parse nothing more until the handler decides: it goes on in
		 * a coroutine (gl_http_release kicks), or holds the body */
		if (c->held)
			c->parse_blocked = 1;
		http_parser_pause(p, 1);
		return 0;
	}
	judge(c, r);
	if (c->stop_parse) {
		/* early reply to a body we will not read: stop here */
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;

	if (c->stop_parse) {
		http_parser_pause(p, 1);
		return 0;
	}
	r->body_received += (int64_t)len;
	if (r->body_accepted && !r->body_aborted && r->resp == RESP_NONE) {
		int rc = r->on_data(r, at, len, r->body_arg);
		if (rc == GL_HTTP_BODY_ABORT) {
			r->body_aborted = 1;
			c->close_after = 1;
			c->stop_parse = 1;
			c->unread = 1;
			http_parser_pause(p, 1);
		} else if (rc == GL_HTTP_BODY_PAUSE &&
			   !http_body_is_final(p)) {
			/* never pause on the final piece: message_complete
			 * would then wait for bytes that never come */
			r->body_paused = 1;
			http_parser_pause(p, 1);
		}
		return 0;
	}
	/* replied early: drop the body, within reason */
	r->discarded += (int64_t)len;
	if (r->discarded > (int64_t)c->srv->lim.max_discard) {
		c->close_after = 1;
		c->stop_parse = 1;
		c->unread = 1;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	gl_http_req *r = c->req;

	r->msg_done = 1;
	c->msg_boundary = 1;
	if (r->body_accepted && !r->body_aborted && r->on_done &&
	    r->resp == RESP_NONE)
		r->on_done(r, r->body_arg);
	/* parse nothing more until this request's response is written */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- the parse loop ------------------------------------------------------- */

/* The raw head, line by line, for what http-parser lets through: a CR not
 * followed by LF, obs-fold (a line starting with whitespace, RFC 9112 5.2),
 * whitespace between the request line and the first field (2.2). A lone
 * LF ends a line (2.2 allows it). Leading empty lines are skipped, as the
 * parser does. Body and trailers are not scanned. */
enum { SC_START, SC_LINE, SC_CR, SC_BOL, SC_BOL_CR, SC_BODY };

static const char *head_scan(struct conn *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n && c->scan_state != SC_BODY; i++) {
		char ch = p[i];

		switch (c->scan_state) {
		case SC_START:
			if (ch != '\r' && ch != '\n') {
				c->scan_state = SC_LINE;
				c->scan_lines = 0;
			}
			break;
		case SC_LINE:
			if (ch == '\r')
				c->scan_state = SC_CR;
			else if (ch == '\n')
				c->scan_state = SC_BOL;
			break;
		case SC_CR:
		case SC_BOL_CR:
			if (ch != '\n')
				return "Bare CR in the request head";
			c->scan_state = c->scan_state == SC_CR ? SC_BOL
							       : SC_BODY;
			break;
		case SC_BOL:
			if (ch == '\r') {
				c->scan_state = SC_BOL_CR;
			} else if (ch == '\n') {
				c->scan_state = SC_BODY;
			} else if (ch == ' ' || ch == '\t') {
				return c->scan_lines == 0
					       ? "Whitespace before the first "
						 "header field"
					       : "Obsolete line folding in a "
						 "header field";
			} else {
				c->scan_state = SC_LINE;
				c->scan_lines++;
			}
			break;
		}
	}
	return NULL;
}

static void parse_error(struct conn *c, enum http_errno e)
{
	int status = 400;
	const char *msg = http_errno_description(e);
	gl_http_req *r = c->req;

	if (c->head_status) {
		status = c->head_status;
		msg = c->head_msg;
	} else if (r && r->head_done && r->chunked &&
		   (e == HPE_HEADER_OVERFLOW ||
		    e == HPE_INVALID_CONTENT_LENGTH ||
		    e == HPE_INVALID_CHUNK_SIZE)) {
		/* the parser counts a chunk-size line (extensions included)
		 * like a head, and its size like a Content-Length */
		msg = e == HPE_HEADER_OVERFLOW
			      ? "Chunk-size line or trailer section too long"
			      : "Invalid chunk size";
	} else if (e == HPE_INVALID_METHOD) {
		status = 501;
		msg = "Unknown request method";
	} else if (e == HPE_HEADER_OVERFLOW) {
		status = 431;
		msg = "Request header fields too large";
	} else if (e == HPE_INVALID_VERSION) {
		status = 505;
		msg = "HTTP version not supported";
	} else if (e == HPE_UNEXPECTED_CONTENT_LENGTH ||
		   e == HPE_INVALID_CONTENT_LENGTH) {
		msg = "Invalid Content-Length";
	}
	c->stop_parse = 1;
	c->close_after = 1;
	c->unread = 1;
	idle_leave(c);
	if (!r) {
		r = c->req = req_new(c);
		if (!r) {
			conn_kill(c);
			return;
		}
		r->method = -1;
	}
	evtimer_del(c->head_timer);
	if (r->resp == RESP_NONE) {
		if (r->head_done && r->on_close) {
			/* dispatched: the handler holds the request (a body it
			 * streams, or a reply it will send later); as when the
			 * connection dies, this is its last contact */
			gl_http_done_fn fn = r->on_close;
			r->on_close = NULL;
			fn(r, r->close_arg);
		}
		if (r->resp == RESP_NONE)
			c->srv->on_error(r, status, msg, c->srv->arg);
	}
}

static void conn_finish_req(struct conn *c)
{
	gl_http_req *r = c->req;

	access_log(r);
	req_free(r);
	c->req = NULL;
	if (c->close_after || c->srv->shutting_down)
		conn_close_when_flushed(c);
	else
		idle_enter(c); /* until the next request's first byte */
}

static int req_complete(const struct conn *c)
{
	const gl_http_req *r = c->req;
	return r && r->resp == RESP_DONE && (r->msg_done || c->stop_parse) &&
	       evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

static void conn_parse(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		struct evbuffer_iovec v;
		size_t got;
		enum http_errno e;

		if (c->want_free || c->closing)
			return;
		if (c->held) {
			c->parse_blocked = 1; /* the release kicks */
			return;
		}
		if (c->req && req_complete(c)) {
			conn_finish_req(c);
			continue;
		}
		if (c->stop_parse)
			return;
		if (c->req && (c->req->msg_done || c->req->body_paused ||
			       body_waits(c->req)))
			return; /* waiting for the handler */
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		if (c->scanned < v.iov_len) {
			const char *bad = head_scan(c,
						    (char *)v.iov_base +
							    c->scanned,
						    v.iov_len - c->scanned);
			c->scanned = v.iov_len;
			if (bad) {
				c->head_status = 400;
				c->head_msg = bad;
				parse_error(c, HPE_UNKNOWN);
				continue;
			}
		}
		got = http_parser_execute(&c->parser, &parser_settings,
					  v.iov_base, v.iov_len);
		evbuffer_drain(in, got);
		c->scanned = c->scanned > got ? c->scanned - got : 0;
		if (c->msg_boundary) {
			/* what follows is the next request's head */
			c->msg_boundary = 0;
			c->scan_state = SC_START;
			c->scanned = 0;
		}
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			continue;
		}
		if (e != HPE_OK) {
			parse_error(c, e);
			continue;
		}
	}
}

/* ---- libevent callbacks --------------------------------------------------- */

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_enter(c);
	if (!c->want_free) {
		if (c->lingering) {
			/* nothing */
		} else if (c->closing) {
			if (evbuffer_get_length(
				    bufferevent_get_output(c->bev)) == 0)
				conn_start_linger(c);
		} else {
			conn_parse(c);
		}
	}
	conn_leave(c);
}

static void conn_kick(struct conn *c)
{
	event_active(c->kick, EV_TIMEOUT, 0);
}

/* Armed at accept (first_byte_timeout) and at each request's first byte
 * (header_timeout); the head completing disarms it. */
static void head_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_enter(c);
	if (!c->req && !c->closing) {
		/* not a byte since accept: nothing to answer */
		conn_kill(c);
	} else if (c->req && c->req->resp == RESP_NONE && !c->req->msg_done) {
		c->head_status = 408;
		c->head_msg = "Request head not received in time";
		parse_error(c, HPE_UNKNOWN);
		conn_kick(c);
	}
	conn_leave(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	conn_enter(c);
	if (c->lingering) {
		evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
	} else {
		conn_parse(c);
	}
	conn_leave(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	gl_http_req *r = c->req;

	conn_enter(c);
	if (r && r->resp == RESP_STREAMING && r->on_drain) {
		r->on_drain(r, r->drain_arg);
	} else if (c->closing && !c->lingering) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_start_linger(c);
	} else if (r && r->resp == RESP_DONE) {
		conn_parse(c);
	}
	conn_leave(c);
}

/* The whole request has arrived: its head and all of its body are parsed
 * or in the input buffer (a chunked body: never known before parsed). */
static int request_in(const struct conn *c)
{
	const gl_http_req *r = c->req;
	int64_t buffered = (int64_t)evbuffer_get_length(
		bufferevent_get_input(c->bev));

	if (r->msg_done || !r->has_body)
		return 1;
	return !r->chunked && r->body_received + buffered >= r->content_length;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	gl_http_req *r = c->req;

	conn_enter(c);
	if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_READING) && r &&
		    (r->msg_done || r->body_paused || r->body_held ||
		     r->resp != RESP_NONE || c->held) &&
		    !c->lingering) {
			/* the request is with the handler; silence is fine */
			bufferevent_enable(bev, EV_READ);
		} else {
			if (r && r->resp == RESP_NONE && !r->body_accepted &&
			    !c->closing) {
				/* idle or slow head: say why, then close */
				c->head_status = 408;
				c->head_msg = "Request timed out";
				parse_error(c, HPE_UNKNOWN);
				conn_kick(c);
			} else {
				conn_kill(c);
			}
		}
	} else if (what & BEV_EVENT_EOF) {
		if (c->lingering) {
			conn_kill(c);
		} else if (r && r->msg_done) {
			/* client half-closed after its request: answer it */
			c->close_after = 1;
			c->stop_parse = 1;
			bufferevent_disable(bev, EV_READ);
		} else if (r && (body_waits(r) || c->held) && request_in(c)) {
			/* half-closed after the whole request, which the
			 * handler still decides about (a body hold, a pin):
			 * the rest is parsed once it has; answer, then close */
			c->close_after = 1;
			bufferevent_disable(bev, EV_READ);
		} else {
			conn_kill(c);
		}
	} else if (what & BEV_EVENT_ERROR) {
		conn_kill(c);
	}
	conn_leave(c);
}

/* ---- accepting ------------------------------------------------------------ */

/* Over a cap with no idle connection to give way: say so and close,
 * instead of leaving the client hanging in the accept queue. */
static void conn_refuse(struct conn *c, const char *why)
{
	gl_http_server *s = c->srv;
	time_t now = time(NULL);

	s->refused++;
	if (now != s->refuse_logged) {
		gl_warn("http: %s: refused %d connection(s), the last from %s",
			why, s->refused, c->peer_name);
		s->refuse_logged = now;
		s->refused = 0;
	}
	conn_enter(c);
	c->head_status = 503;
	c->head_msg = "Too many connections";
	parse_error(c, HPE_UNKNOWN);
	conn_leave(c);
}

void gl_http_server_adopt(gl_http_server *s, struct bufferevent *bev,
			  const struct sockaddr *sa)
{
	struct conn *c;
	struct timeval tv = { s->lim.client_timeout, 0 };
	struct timeval fb = { s->lim.first_byte_timeout, 0 };

	c = calloc(1, sizeof *c);
	if (!c) {
		bufferevent_free(bev);
		return;
	}
	c->srv = s;
	c->bev = bev;
	c->kick = event_new(s->base, -1, 0, kick_cb, c);
	c->head_timer = evtimer_new(s->base, head_timer_cb, c);
	c->peer = peer_get(s, sa);
	if (!c->kick || !c->head_timer || !c->peer) {
		bufferevent_free(bev);
		if (c->kick)
			event_free(c->kick);
		if (c->head_timer)
			event_free(c->head_timer);
		peer_put(c->peer);
		free(c);
		return;
	}
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, c->peer_name,
			  sizeof c->peer_name);
		c->peer_port = ntohs(in->sin_port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)
			sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, c->peer_name,
			  sizeof c->peer_name);
		c->peer_port = ntohs(in6->sin6_port);
	} else {
		snprintf(c->peer_name, sizeof c->peer_name, "local");
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;

	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
	bufferevent_set_max_single_read(c->bev, MAX_SINGLE_IO);
	bufferevent_set_max_single_write(c->bev, MAX_SINGLE_IO);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);

	/* at a cap, the longest idle connection gives way */
	if (s->lim.max_conns > 0 && s->nconns > s->lim.max_conns &&
	    !evict_idle(s, NULL)) {
		conn_refuse(c, "connection cap reached");
		return;
	}
	if (s->lim.max_conns_per_client > 0 &&
	    c->peer->nconns > s->lim.max_conns_per_client &&
	    !evict_idle(s, c->peer)) {
		conn_refuse(c, "per-client connection cap reached");
		return;
	}
	idle_enter(c);
	evtimer_add(c->head_timer, &fb);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	gl_http_server *s = arg;
	struct bufferevent *bev;
	int one = 1;

	bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	gl_http_server_adopt(s, bev, sa);
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: log and keep the listener alive */
	gl_error("http: accept: %s", evutil_socket_error_to_string(err));
}

gl_http_server *gl_http_server_new(struct event_base *base,
				   const gl_http_limits *lim,
				   gl_http_dispatch_fn dispatch,
				   gl_http_error_fn on_error, void *arg)
{
	gl_http_server *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->base = base;
	s->lim = *lim;
	s->dispatch = dispatch;
	s->on_error = on_error;
	s->arg = arg;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->idle);
	for (int i = 0; i < PEER_BUCKETS; i++)
		LIST_INIT(&s->peers[i]);
	return s;
}

int gl_http_server_listen(gl_http_server *s, const char *host, int port,
			  int reuseport, gl_err *err)
{
	struct evutil_addrinfo hints = { 0 }, *res = NULL;
	char portstr[16];
	unsigned flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
			 LEV_OPT_CLOSE_ON_EXEC;
	int rc;

	if (reuseport)
		flags |= LEV_OPT_REUSEABLE_PORT;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
	snprintf(portstr, sizeof portstr, "%d", port);
	rc = evutil_getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0 || !res)
		return gl_fail(err, 500, NULL,
			       "cannot resolve bind_host '%s': %s", host,
			       evutil_gai_strerror(rc));
	s->lis = evconnlistener_new_bind(s->base, accept_cb, s, flags, 4096,
					 res->ai_addr, (int)res->ai_addrlen);
	evutil_freeaddrinfo(res);
	if (!s->lis) {
		int e = errno; /* the caller tells a busy port by it */
		gl_fail(err, 500, NULL, "cannot listen on %s:%d: %s", host,
			port, strerror(e));
		errno = e;
		return -1;
	}
	evconnlistener_set_error_cb(s->lis, accept_error_cb);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		evutil_socket_t fd = evconnlistener_get_fd(s->lis);
		s->port = port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				s->port = ntohs(
					((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				s->port = ntohs(((struct sockaddr_in6 *)&ss)
							->sin6_port);
		}
	}
	return 0;
}

int gl_http_server_port(const gl_http_server *s)
{
	return s->port;
}
int gl_http_server_nconns(const gl_http_server *s)
{
	return s->nconns;
}

void gl_http_server_shutdown(gl_http_server *s, void (*done)(void *),
			     void *arg)
{
	struct conn *c, *next;

	s->shutting_down = 1;
	s->shutdown_done = done;
	s->shutdown_arg = arg;
	/* close the socket, not just stop accepting: queued and new
	 * connections are refused instead of waiting on a dead listener */
	if (s->lis) {
		evconnlistener_free(s->lis);
		s->lis = NULL;
	}
	for (c = TAILQ_FIRST(&s->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_enter(c);
		if (!c->req)
			conn_kill(c); /* idle keep-alive connection */
		else
			c->close_after = 1;
		conn_leave(c);
	}
	server_check_shutdown(s);
}

void gl_http_server_free(gl_http_server *s)
{
	struct conn *c;

	if (!s)
		return;
	s->shutdown_done = NULL;
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		conn_free(c);
	if (s->lis)
		evconnlistener_free(s->lis);
	free(s);
}
