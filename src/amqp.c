/* amqp.c - the RabbitMQ publisher thread (see amqp.h).
 *
 * Threads and what they own:
 *  - the loop: gl_amqp_send appends to `inbox` and pokes `wake_fd`; the
 *    `done_ev` event drains `done` (finished messages) and reports them;
 *  - the publisher thread: the connection, and the messages it took from
 *    the inbox until they are finished (`flight`, and `pubs`: one entry
 *    per basic.publish, in delivery-tag order, waiting for its confirm).
 * `mu` guards inbox, done, the counters and the flags; nothing else is
 * shared. The thread sleeps in poll() on its socket and wake_fd, at most
 * a second, so librabbitmq gets to send heartbeats while idle.
 */
#include "amqp.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#define CHANNEL 1
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

/* ---- transport URL ----------------------------------------------------- */

static char *pct_dup(const char *s, size_t n, gl_err *err, const char *what)
{
	char *out = gl_pct_decode(s, n, 0);

	if (!out)
		gl_fail(err, 500, "ConfigError",
			"transport_url: malformed percent-escape in the %s",
			what);
	return out;
}

static int parse_host(const char *s, size_t n, gl_amqp_host *h, gl_err *err)
{
	const char *at = NULL, *hp, *end = s + n, *colon;
	char port[8];

	for (const char *p = s; p < end; p++)
		if (*p == '@')
			at = p;
	if (at) {
		const char *c = memchr(s, ':', (size_t)(at - s));
		size_t ulen = c ? (size_t)(c - s) : (size_t)(at - s);
		if (!(h->user = pct_dup(s, ulen, err, "user name")))
			return -1;
		if (c && !(h->pass = pct_dup(c + 1, (size_t)(at - c - 1), err,
					     "password")))
			return -1;
		hp = at + 1;
	} else {
		hp = s;
	}
	if (hp < end && *hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		if (!rb)
			return gl_fail(err, 500, "ConfigError",
				       "transport_url: unterminated [IPv6] host");
		h->host = gl_xmalloc((size_t)(rb - hp));
		memcpy(h->host, hp + 1, (size_t)(rb - hp - 1));
		h->host[rb - hp - 1] = '\0';
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && !colon)
			return gl_fail(err, 500, "ConfigError",
				       "transport_url: junk after [IPv6] host");
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		size_t hl = colon ? (size_t)(colon - hp) : (size_t)(end - hp);
		if (!(h->host = pct_dup(hp, hl, err, "host")))
			return -1;
	}
	if (!h->host[0])
		return gl_fail(err, 500, "ConfigError",
			       "transport_url: a host is empty");
	h->port = 5672;
	if (colon) {
		size_t pl = (size_t)(end - colon - 1);
		char *e;
		long v;
		if (pl == 0 || pl >= sizeof port)
			return gl_fail(err, 500, "ConfigError",
				       "transport_url: bad port of host %s",
				       h->host);
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
		v = strtol(port, &e, 10);
		if (*e || v < 1 || v > 65535)
			return gl_fail(err, 500, "ConfigError",
				       "transport_url: bad port of host %s",
				       h->host);
		h->port = (int)v;
	}
	if (!h->user)
		h->user = gl_xstrdup("guest");
	if (!h->pass)
		h->pass = gl_xstrdup("guest");
	return 0;
}

int gl_amqp_parse_url(const char *url, gl_amqp_conf *c, gl_err *err)
{
	const char *rest, *slash, *q, *p;
	size_t nl;

	if (!url || strncmp(url, "rabbit://", 9) != 0) {
		const char *colon = url ? strstr(url, "://") : NULL;
		return gl_fail(err, 500, "ConfigError",
			       "transport_url: glared publishes to RabbitMQ "
			       "(rabbit://...), not %.*s",
			       colon ? (int)(colon - url) : 0,
			       colon ? url : "");
	}
	rest = url + 9;
	q = strchr(rest, '?');
	if (q && q[1])
		return gl_fail(err, 500, "ConfigError",
			       "transport_url: options after '?' are not "
			       "supported by glared");
	slash = strchr(rest, '/');
	if (slash && q && q < slash)
		slash = NULL;
	nl = slash ? (size_t)(slash - rest)
	     : q   ? (size_t)(q - rest)
		   : strlen(rest);
	if (nl == 0)
		return gl_fail(err, 500, "ConfigError",
			       "transport_url: no host");
	for (p = rest;;) {
		const char *comma = memchr(p, ',', (size_t)(rest + nl - p));
		size_t n = comma ? (size_t)(comma - p)
				 : (size_t)(rest + nl - p);
		c->hosts = gl_xrealloc(c->hosts,
				       sizeof *c->hosts *
					       (size_t)(c->nhosts + 1));
		memset(&c->hosts[c->nhosts], 0, sizeof *c->hosts);
		c->nhosts++;
		if (parse_host(p, n, &c->hosts[c->nhosts - 1], err) < 0)
			return -1;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (slash) {
		size_t vl = q ? (size_t)(q - slash - 1) : strlen(slash + 1);
		if (!(c->vhost = pct_dup(slash + 1, vl, err, "virtual host")))
			return -1;
	}
	if (!c->vhost || !c->vhost[0]) {
		free(c->vhost);
		c->vhost = gl_xstrdup("/");
	}
	return 0;
}

void gl_amqp_conf_clear(gl_amqp_conf *c)
{
	for (int i = 0; i < c->nhosts; i++) {
		free(c->hosts[i].host);
		free(c->hosts[i].user);
		free(c->hosts[i].pass);
	}
	free(c->hosts);
	for (int i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->vhost);
	free(c->exchange);
	memset(c, 0, sizeof *c);
}

static void conf_copy(gl_amqp_conf *dst, const gl_amqp_conf *src)
{
	*dst = *src;
	dst->hosts = gl_xcalloc((size_t)src->nhosts, sizeof *dst->hosts);
	for (int i = 0; i < src->nhosts; i++) {
		dst->hosts[i].host = gl_xstrdup(src->hosts[i].host);
		dst->hosts[i].user = gl_xstrdup(src->hosts[i].user);
		dst->hosts[i].pass = gl_xstrdup(src->hosts[i].pass);
		dst->hosts[i].port = src->hosts[i].port;
	}
	dst->keys = gl_xcalloc((size_t)src->nkeys + 1, sizeof *dst->keys);
	for (int i = 0; i < src->nkeys; i++)
		dst->keys[i] = gl_xstrdup(src->keys[i]);
	dst->vhost = gl_xstrdup(src->vhost);
	dst->exchange = gl_xstrdup(src->exchange);
}

/* ---- state ----------------------------------------------------------------- */

typedef struct msg {
	struct msg *next, *prev;
	int64_t id;
	char **bodies;
	int nbodies;
	int pending; /* publishes waiting for their confirm */
	int failed;
	int64_t sent_us;
	char why[256];
} msg;

typedef struct pub {
	uint64_t tag;
	msg *m;
} pub;

struct gl_amqp {
	gl_amqp_conf c;
	struct event_base *base;
	gl_amqp_result_fn on_result;
	void *arg;
	pthread_t th;
	int started;
	pthread_mutex_t mu;
	/* guarded by mu */
	msg *inbox, *inbox_tail;
	msg *done, *done_tail;
	int queued; /* in the inbox or in flight */
	int connected;
	int ready; /* connected since the last report */
	int stop;
	/* eventfds */
	int wake_fd; /* loop -> thread */
	int done_fd; /* thread -> loop */
	struct event *done_ev;
	/* the thread's own */
	amqp_connection_state_t conn;
	uint64_t next_tag;
	msg *flight;
	pub *pubs;
	size_t npubs, cappubs;
	int host_idx;
	unsigned seed;
	int64_t last_warn_us;
};

static void msg_free(msg *m)
{
	for (int i = 0; i < m->nbodies; i++)
		free(m->bodies[i]);
	free(m->bodies);
	free(m);
}

static void poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof one) < 0) {
		/* the counter is full: the reader is awake anyway */
	}
}

/* ---- the thread: finishing messages --------------------------------------- */

static void flight_unlink(gl_amqp *a, msg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		a->flight = m->next;
	if (m->next)
		m->next->prev = m->prev;
	m->next = m->prev = NULL;
}

/* A message is over: hand it to the loop. */
static void finish(gl_amqp *a, msg *m)
{
	flight_unlink(a, m);
	pthread_mutex_lock(&a->mu);
	m->next = NULL;
	if (a->done_tail)
		a->done_tail->next = m;
	else
		a->done = m;
	a->done_tail = m;
	a->queued--;
	pthread_mutex_unlock(&a->mu);
	poke(a->done_fd);
}

__attribute__((format(printf, 2, 3))) static void
warn_rate(gl_amqp *a, const char *fmt, ...)
{
	int64_t now = gl_now_us();
	char line[600];
	va_list ap;

	/* one line a minute while the broker stays away */
	if (now - a->last_warn_us < 60 * 1000000LL)
		return;
	a->last_warn_us = now;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	gl_warn("%s", line);
}

/* The connection is gone: every message in flight failed. */
static void drop(gl_amqp *a, const char *why)
{
	if (a->conn) {
		amqp_destroy_connection(a->conn);
		a->conn = NULL;
	}
	pthread_mutex_lock(&a->mu);
	a->connected = 0;
	pthread_mutex_unlock(&a->mu);
	a->npubs = 0;
	while (a->flight) {
		msg *m = a->flight;
		m->failed = 1;
		snprintf(m->why, sizeof m->why, "%s", why);
		finish(a, m);
	}
	a->last_warn_us = 0;
	warn_rate(a, "notifications: RabbitMQ: %s; reconnecting", why);
}

/* Confirms: tag alone, or every tag up to it (multiple). */
static void confirm(gl_amqp *a, uint64_t tag, int multiple, int ok)
{
	size_t i, keep = 0;

	for (i = 0; i < a->npubs; i++) {
		pub *p = &a->pubs[i];
		if (p->tag == tag || (multiple && p->tag < tag)) {
			msg *m = p->m;
			if (!ok) {
				m->failed = 1;
				snprintf(m->why, sizeof m->why,
					 "the broker refused the message "
					 "(basic.nack)");
			}
			if (--m->pending == 0)
				finish(a, m);
		} else {
			a->pubs[keep++] = *p;
		}
	}
	a->npubs = keep;
}

/* ---- the thread: the connection ------------------------------------------- */

static void reply_why(amqp_rpc_reply_t r, char *out, size_t n)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(out, n, "ok");
		return;
	case AMQP_RESPONSE_NONE:
		snprintf(out, n, "no reply from the broker");
		return;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(out, n, "%s", amqp_error_string2(r.library_error));
		return;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			snprintf(out, n,
				 "connection closed by the broker: %d "
				 "%.*s",
				 m->reply_code, (int)m->reply_text.len,
				 (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(out, n,
				 "channel closed by the broker: %d %.*s",
				 m->reply_code, (int)m->reply_text.len,
				 (const char *)m->reply_text.bytes);
		} else {
			snprintf(out, n, "broker error (method %08x)",
				 (unsigned)r.reply.id);
		}
		return;
	}
	snprintf(out, n, "unknown reply");
}

/* The broker's reply to the last RPC: 0 ok, -1 refused (err). */
static int rpc_check(gl_amqp *a, const char *what, gl_err *err)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
	char tmp[200];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	reply_why(r, tmp, sizeof tmp);
	return gl_fail(err, 503, NULL, "%s: %s", what, tmp);
}

/* Connect to the next host, log in, open the channel in confirm mode,
 * declare what oslo.messaging's notifier declares. */
static int connect_one(gl_amqp *a, gl_err *err)
{
	const gl_amqp_host *h = &a->c.hosts[a->host_idx++ % a->c.nhosts];
	struct timeval tv = { a->c.connect_timeout, 0 };
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	amqp_bytes_t ex = amqp_cstring_bytes(a->c.exchange);
	char tmp[200];
	int rc;

	a->conn = amqp_new_connection();
	if (!a->conn) {
		gl_fail(err, 503, NULL, "out of memory");
		return -1;
	}
	amqp_set_handshake_timeout(a->conn, &tv);
	amqp_set_rpc_timeout(a->conn, &tv);
	sock = amqp_tcp_socket_new(a->conn);
	if (!sock) {
		gl_fail(err, 503, NULL, "out of memory");
		goto fail;
	}
	rc = amqp_socket_open_noblock(sock, h->host, h->port, &tv);
	if (rc != AMQP_STATUS_OK) {
		gl_fail(err, 503, NULL, "cannot connect to %s:%d: %s", h->host,
			h->port, amqp_error_string2(rc));
		goto fail;
	}
	r = amqp_login(a->conn, a->c.vhost, 0, AMQP_DEFAULT_FRAME_SIZE,
		       a->c.heartbeat, AMQP_SASL_METHOD_PLAIN, h->user,
		       h->pass);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		reply_why(r, tmp, sizeof tmp);
		gl_fail(err, 503, NULL, "logging in to %s:%d as %s: %s",
			h->host, h->port, h->user, tmp);
		goto fail;
	}
	amqp_channel_open(a->conn, CHANNEL);
	if (rpc_check(a, "opening a channel", err) < 0)
		goto fail;
	amqp_confirm_select(a->conn, CHANNEL);
	if (rpc_check(a, "confirm.select", err) < 0)
		goto fail;
	amqp_exchange_declare(a->conn, CHANNEL, ex,
			      amqp_cstring_bytes("topic"), 0, a->c.durable,
			      a->c.auto_delete, 0, amqp_empty_table);
	if (rpc_check(a, "declaring the exchange", err) < 0)
		goto fail;
	for (int i = 0; i < a->c.nkeys; i++) {
		amqp_bytes_t k = amqp_cstring_bytes(a->c.keys[i]);
		amqp_queue_declare(a->conn, CHANNEL, k, 0, a->c.durable, 0,
				   a->c.auto_delete, amqp_empty_table);
		if (rpc_check(a, "declaring a queue", err) < 0)
			goto fail;
		amqp_queue_bind(a->conn, CHANNEL, k, ex, k, amqp_empty_table);
		if (rpc_check(a, "binding a queue", err) < 0)
			goto fail;
	}
	a->next_tag = 1; /* confirm.select numbers from 1 on the channel */
	gl_info("notifications: connected to RabbitMQ at %s:%d", h->host,
		h->port);
	return 0;
fail:
	amqp_destroy_connection(a->conn);
	a->conn = NULL;
	return -1;
}

static int publish(gl_amqp *a, msg *m, gl_err *err)
{
	amqp_basic_properties_t props;

	memset(&props, 0, sizeof props);
	/* the properties kombu sets for oslo.messaging, headers included
	 * (an empty table) */
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
		       AMQP_BASIC_CONTENT_ENCODING_FLAG |
		       AMQP_BASIC_HEADERS_FLAG |
		       AMQP_BASIC_DELIVERY_MODE_FLAG |
		       AMQP_BASIC_PRIORITY_FLAG;
	props.headers = amqp_empty_table;
	props.content_type = amqp_cstring_bytes("application/json");
	props.content_encoding = amqp_cstring_bytes("utf-8");
	props.delivery_mode = 2; /* persistent */
	props.priority = 0;
	m->sent_us = gl_now_us();
	for (int b = 0; b < m->nbodies; b++) {
		for (int k = 0; k < a->c.nkeys; k++) {
			int rc = amqp_basic_publish(a->conn, CHANNEL,
						    amqp_cstring_bytes(
							    a->c.exchange),
						    amqp_cstring_bytes(
							    a->c.keys[k]),
						    0, 0, &props,
						    amqp_cstring_bytes(
							    m->bodies[b]));
			if (rc != AMQP_STATUS_OK) {
				gl_fail(err, 503, NULL, "publishing: %s",
					amqp_error_string2(rc));
				return -1;
			}
			if (a->npubs == a->cappubs) {
				a->cappubs = a->cappubs ? a->cappubs * 2 : 64;
				a->pubs = gl_xrealloc(a->pubs,
						      a->cappubs *
							      sizeof *a->pubs);
			}
			a->pubs[a->npubs++] = (pub){ a->next_tag++, m };
			m->pending++;
		}
	}
	return 0;
}

/* Frames the broker sent: confirms, or the end of the connection. */
static int read_frames(gl_amqp *a, gl_err *err)
{
	for (;;) {
		amqp_frame_t f;
		struct timeval zero = { 0, 0 };
		int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			return 0;
		if (rc != AMQP_STATUS_OK) {
			gl_fail(err, 503, NULL, "%s", amqp_error_string2(rc));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *ack = f.payload.method.decoded;
			confirm(a, ack->delivery_tag, ack->multiple, 1);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *nack = f.payload.method.decoded;
			confirm(a, nack->delivery_tag, nack->multiple, 0);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD: {
			amqp_channel_close_t *c = f.payload.method.decoded;
			gl_fail(err, 503, NULL,
				"channel closed by the broker: %d %.*s",
				c->reply_code, (int)c->reply_text.len,
				(const char *)c->reply_text.bytes);
			return -1;
		}
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_connection_close_t *c = f.payload.method.decoded;
			gl_fail(err, 503, NULL,
				"connection closed by the broker: %d "
				"%.*s",
				c->reply_code, (int)c->reply_text.len,
				(const char *)c->reply_text.bytes);
			return -1;
		}
		default:
			break;
		}
		amqp_maybe_release_buffers(a->conn);
	}
}

static int stopping(gl_amqp *a)
{
	int s;

	pthread_mutex_lock(&a->mu);
	s = a->stop;
	pthread_mutex_unlock(&a->mu);
	return s;
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof v) < 0) {
		/* EAGAIN: nothing was pending */
	}
}

/* Sleep until the socket or wake_fd has something, at most ms. */
static void wait_io(gl_amqp *a, int ms)
{
	struct pollfd p[2] = { { a->wake_fd, POLLIN, 0 }, { -1, POLLIN, 0 } };

	if (a->conn) {
		if (amqp_frames_enqueued(a->conn) ||
		    amqp_data_in_buffer(a->conn))
			return;
		p[1].fd = amqp_get_sockfd(a->conn);
	}
	if (poll(p, 2, ms) > 0 && (p[0].revents & POLLIN))
		drain(a->wake_fd);
}

static void *run(void *arg)
{
	gl_amqp *a = arg;
	int backoff = BACKOFF_MIN_MS;
	int tick = a->c.heartbeat > 0 && a->c.heartbeat < 2 ? 500 : 1000;
	gl_err err;

	while (!stopping(a)) {
		msg *in;

		if (!a->conn) {
			if (connect_one(a, &err) < 0) {
				warn_rate(a,
					  "notifications: RabbitMQ "
					  "unreachable: %s; retrying",
					  err.msg);
				wait_io(a, backoff);
				/* exponential, with jitter so that many
				 * workers do not reconnect in lockstep */
				backoff = backoff * 2 > BACKOFF_MAX_MS
						  ? BACKOFF_MAX_MS
						  : backoff * 2;
				backoff = backoff / 2 +
					  (int)(rand_r(&a->seed) %
						(unsigned)(backoff / 2 + 1));
				continue;
			}
			backoff = BACKOFF_MIN_MS;
			a->last_warn_us = 0;
			pthread_mutex_lock(&a->mu);
			a->connected = 1;
			a->ready = 1;
			pthread_mutex_unlock(&a->mu);
			poke(a->done_fd);
		}
		pthread_mutex_lock(&a->mu);
		in = a->inbox;
		a->inbox = a->inbox_tail = NULL;
		pthread_mutex_unlock(&a->mu);
		while (in) {
			msg *m = in;
			in = in->next;
			m->next = a->flight;
			m->prev = NULL;
			if (a->flight)
				a->flight->prev = m;
			a->flight = m;
			if (!a->conn) {
				m->failed = 1;
				snprintf(m->why, sizeof m->why,
					 "connection lost");
				finish(a, m);
			} else if (publish(a, m, &err) < 0) {
				drop(a,
				     err.msg); /* m failed with the others */
			} else if (m->pending == 0) {
				finish(a, m); /* nothing to publish */
			}
		}
		if (!a->conn)
			continue;
		wait_io(a, tick);
		if (read_frames(a, &err) < 0) {
			drop(a, err.msg);
			continue;
		}
		/* a confirm that does not come means a dead connection */
		for (msg *m = a->flight; m; m = m->next) {
			if (gl_now_us() - m->sent_us >
			    (int64_t)a->c.confirm_timeout * 1000000) {
				drop(a, "no publisher confirm in time");
				break;
			}
		}
	}
	if (a->conn) {
		amqp_channel_close(a->conn, CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(a->conn);
		a->conn = NULL;
	}
	while (a->flight) {
		msg *m = a->flight;
		flight_unlink(a, m);
		msg_free(m);
	}
	return NULL;
}

/* ---- the loop's side --------------------------------------------------------- */

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_amqp *a = arg;
	msg *list;
	int ready;

	drain(a->done_fd);
	pthread_mutex_lock(&a->mu);
	list = a->done;
	a->done = a->done_tail = NULL;
	ready = a->ready;
	a->ready = 0;
	pthread_mutex_unlock(&a->mu);
	while (list) {
		msg *m = list;
		list = list->next;
		a->on_result(a->arg, m->id, !m->failed, m->why);
		msg_free(m);
	}
	if (ready)
		a->on_result(a->arg, -1, 1, NULL);
}

gl_amqp *gl_amqp_new(const gl_amqp_conf *c, struct event_base *base,
		     gl_amqp_result_fn on_result, void *arg, gl_err *err)
{
	gl_amqp *a = gl_xcalloc(1, sizeof *a);

	conf_copy(&a->c, c);
	a->base = base;
	a->on_result = on_result;
	a->arg = arg;
	a->seed = (unsigned)gl_now_us() ^ (unsigned)getpid();
	pthread_mutex_init(&a->mu, NULL);
	a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	a->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->wake_fd < 0 || a->done_fd < 0) {
		gl_fail(err, 500, NULL, "eventfd: %s", strerror(errno));
		goto fail;
	}
	a->done_ev = event_new(base, a->done_fd, EV_READ | EV_PERSIST, done_cb,
			       a);
	if (!a->done_ev || event_add(a->done_ev, NULL) < 0) {
		gl_fail(err, 500, NULL, "cannot watch the publisher");
		goto fail;
	}
	if (pthread_create(&a->th, NULL, run, a) != 0) {
		gl_fail(err, 500, NULL, "cannot start the publisher thread");
		goto fail;
	}
	a->started = 1;
	return a;
fail:
	gl_amqp_free(a);
	return NULL;
}

void gl_amqp_free(gl_amqp *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_mutex_unlock(&a->mu);
		poke(a->wake_fd);
		pthread_join(a->th, NULL);
		/* what was confirmed before the thread stopped */
		done_cb(-1, 0, a);
	}
	while (a->inbox) {
		msg *m = a->inbox;
		a->inbox = m->next;
		msg_free(m);
	}
	while (a->done) {
		msg *m = a->done;
		a->done = m->next;
		msg_free(m);
	}
	if (a->done_ev)
		event_free(a->done_ev);
	if (a->wake_fd >= 0)
		close(a->wake_fd);
	if (a->done_fd >= 0)
		close(a->done_fd);
	pthread_mutex_destroy(&a->mu);
	free(a->pubs);
	gl_amqp_conf_clear(&a->c);
	free(a);
}

int gl_amqp_room(gl_amqp *a)
{
	int room;

	pthread_mutex_lock(&a->mu);
	room = a->connected ? a->c.queue_size - a->queued : 0;
	pthread_mutex_unlock(&a->mu);
	return room > 0 ? room : 0;
}

int gl_amqp_connected(gl_amqp *a)
{
	int c;

	pthread_mutex_lock(&a->mu);
	c = a->connected;
	pthread_mutex_unlock(&a->mu);
	return c;
}

int gl_amqp_send(gl_amqp *a, int64_t id, const char *const *bodies, int n)
{
	msg *m;

	if (gl_amqp_room(a) <= 0)
		return -1;
	m = gl_xcalloc(1, sizeof *m);
	m->id = id;
	m->bodies = gl_xcalloc((size_t)n, sizeof *m->bodies);
	for (int i = 0; i < n; i++)
		m->bodies[i] = gl_xstrdup(bodies[i]);
	m->nbodies = n;
	pthread_mutex_lock(&a->mu);
	if (a->inbox_tail)
		a->inbox_tail->next = m;
	else
		a->inbox = m;
	a->inbox_tail = m;
	a->queued++;
	pthread_mutex_unlock(&a->mu);
	poke(a->wake_fd);
	return 0;
}
