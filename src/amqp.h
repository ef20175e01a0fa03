/* amqp.h - publishing OpenStack notifications to RabbitMQ (AMQP 0-9-1),
 * the way oslo.messaging's rabbit driver does, off the event loop.
 *
 * librabbitmq's calls block, so each publisher owns one thread with one
 * connection. The loop hands it messages (a bounded queue and an eventfd)
 * and learns the outcome of each from publisher confirms (another eventfd
 * the loop watches): a message is done when the broker acked every copy
 * of it, and failed when one was nacked, the connection broke before the
 * acks came, or they did not come within confirm_timeout. The thread
 * reconnects with backoff, rotating through the hosts of the URL, and
 * declares the topic exchange, each "<topic>.info" queue and its binding
 * after every (re)connect, with oslo.messaging's flags (exchange and
 * queues non-durable and not auto-delete unless amqp_durable_queues /
 * amqp_auto_delete say otherwise), so nothing published before a
 * consumer arrives is dropped by the broker. Messages are published
 * persistent (delivery mode 2) as application/json, utf-8.
 *
 * The loop never blocks on the broker: while the thread has no
 * connection, gl_amqp_room is 0 and the caller keeps its events.
 *
 * Uses librabbitmq (rabbitmq-c), pthreads, libevent.
 */
#ifndef GL_AMQP_H
#define GL_AMQP_H

#include <stdint.h>

#include <event2/event.h>

#include "err.h"

typedef struct gl_amqp_host {
	char *host;
	int port;
	char *user, *pass;
} gl_amqp_host;

typedef struct gl_amqp_conf {
	gl_amqp_host *hosts;
	int nhosts;
	char *vhost;
	char *exchange; /* control_exchange */
	char **keys;    /* "<topic>.info": routing key and queue */
	int nkeys;
	int durable, auto_delete;
	int heartbeat;       /* seconds, 0 off */
	int connect_timeout; /* seconds: TCP connect, handshake, RPCs */
	int confirm_timeout; /* seconds an unacked message may wait */
	int queue_size;      /* messages queued or unconfirmed at most */
} gl_amqp_conf;

/* Parse an oslo.messaging transport URL:
 *   rabbit://[user[:pass]@]host[:port][,[user[:pass]@]host[:port]...]/[vhost]
 * (percent-escapes decoded, IPv6 hosts in brackets, port 5672, user and
 * password guest, vhost "/" when empty). Other schemes, and query
 * options glared does not implement, are refused. 0 or -1 + err (the
 * message never repeats a password). */
int gl_amqp_parse_url(const char *url, gl_amqp_conf *c, gl_err *err);
void gl_amqp_conf_clear(gl_amqp_conf *c);

typedef struct gl_amqp gl_amqp;

/* The outcome of message id: ok, or why not. In the loop. */
typedef void (*gl_amqp_result_fn)(void *arg, int64_t id, int ok,
				  const char *why);

/* Start the publisher thread (c is copied). NULL + err. */
gl_amqp *gl_amqp_new(const gl_amqp_conf *c, struct event_base *base,
		     gl_amqp_result_fn on_result, void *arg, gl_err *err);
/* Stop the thread and report the messages it finished; those not
 * confirmed yet are dropped without a report (their events stay in the
 * outbox). */
void gl_amqp_free(gl_amqp *a);

/* How many more messages the publisher takes now: 0 while it has no
 * connection or its queue is full. */
int gl_amqp_room(gl_amqp *a);
/* 1 while connected. */
int gl_amqp_connected(gl_amqp *a);
/* Queue message id: each of the n bodies (JSON texts, copied) is
 * published to every routing key. -1 when there is no room. */
int gl_amqp_send(gl_amqp *a, int64_t id, const char *const *bodies, int n);

#endif
