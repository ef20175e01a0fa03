/* events.h - what happens to artifacts, told to the rest of the world:
 * OpenStack notifications on RabbitMQ (wire-compatible with Glare's) and
 * signed webhooks to subscribers, through a transactional outbox.
 *
 * Emitting. The engine calls gl_events_emit inside the write transaction
 * of the change an event describes, so the event exists exactly when the
 * change does. It writes one outbox row per sink: the notifier (when a
 * messaging driver and a transport URL are configured) and each webhook
 * subscription the event matches (its events, type, artifact, and the
 * artifacts its project may see: its own, public ones, or all for
 * subscriptions of admins). Nothing is sent from the request path.
 *
 * Delivering (gl_events_start, in each serve worker). A poll timer, and a
 * kick after every local emit, claim due rows: a test-and-set of their
 * claim (owner node, expiry) in one write statement, so with several
 * workers or nodes each row is taken by one of them; a claim whose owner
 * died expires (or is released at once when the owner was a dead process
 * of this host) and another worker takes the row over. Claimed rows are
 * delivered once their commit is durable (SQLite group commit makes
 * commits visible before that: see pass() in events.c). Delivery is at
 * least once: consumers dedupe by the event id (message_id on the bus,
 * event_id in webhooks).
 *  - RabbitMQ rows go to the publisher thread (amqp.c) while it is
 *    connected; a publisher confirm deletes the row, a failure releases
 *    it to be tried again a second later.
 *  - Webhook rows are POSTed through fetch.c (its SSRF guard, with
 *    external_location_allowed_networks, judges every connection of every
 *    attempt), signed with HMAC-SHA256 when the subscription has a
 *    secret. A 2xx marks the row delivered; otherwise it is retried with
 *    exponential backoff and jitter until webhook_retry_period has passed
 *    since the event, then marked failed.
 * Growth is bounded: delivered and failed rows are pruned after
 * delivered_retention / failed_retention seconds, pending rows older than
 * max_age are given up (failed).
 *
 * See docs/notifications.md. Uses meta.c (gl_meta_exec), amqp.c, fetch.c,
 * OpenSSL (HMAC), libevent, jansson.
 */
#ifndef GL_EVENTS_H
#define GL_EVENTS_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "ctx.h"
#include "conf.h"
#include "err.h"
#include "meta.h"
#include "policy.h"

typedef struct gl_events gl_events;

/* Read the notification options (a bad transport_url is an error here,
 * at start-up). This process (owner.h) owns the claims it makes. */
gl_events *gl_events_new(const gl_conf *conf, gl_meta *meta,
			 struct event_base *base, gl_err *err);
/* Stops delivering; claims of this process are released. */
void gl_events_free(gl_events *ev);

/* Deliver from this process (serve workers; [events] deliver = false
 * leaves that to other nodes). */
int gl_events_start(gl_events *ev, gl_err *err);

/* Record the event "artifact.artifact:<action>" inside the caller's write
 * transaction. doc: the artifact (meta shape) of type type_name, whose
 * Glare notification payload is sent (type, id, name, version, ...), or
 * NULL for a null payload (set_quotas). extra (may be NULL): more payload
 * keys (verification outcomes). -1 + err: the transaction must fail. */
int gl_events_emit(gl_events *ev, const char *action, const char *type_name,
		   const json_t *doc, const json_t *extra, gl_err *err);

/* The event types subscriptions may name (short forms: "create", ...). */
int gl_events_known(const char *action);

/* ---- webhook subscriptions (subscriptions.c; the /subscriptions API) ---- */

/* POST /subscriptions: {"url", "events": [...], "secret"?, "type"?,
 * "artifact_id"?}; *out is the subscription as shown. */
int gl_subscription_create(gl_events *ev, const gl_policy *pol,
			   const gl_ctx *ctx, const json_t *body, json_t **out,
			   gl_err *err);
/* {"subscriptions": [...]}: the caller's project's (admins: all). */
int gl_subscription_list(gl_events *ev, const gl_policy *pol,
			 const gl_ctx *ctx, json_t **out, gl_err *err);
int gl_subscription_show(gl_events *ev, const gl_policy *pol,
			 const gl_ctx *ctx, const char *id, json_t **out,
			 gl_err *err);
int gl_subscription_delete(gl_events *ev, const gl_policy *pol,
			   const gl_ctx *ctx, const char *id, gl_err *err);
/* {"deliveries": [...]}: its most recent deliveries, newest first, with
 * their state and last attempt. */
int gl_subscription_deliveries(gl_events *ev, const gl_policy *pol,
			       const gl_ctx *ctx, const char *id, int limit,
			       json_t **out, gl_err *err);

/* For subscriptions.c: the store and the settings. */
gl_meta *gl_events_meta(gl_events *ev);
const gl_conf *gl_events_conf(gl_events *ev);

#endif
