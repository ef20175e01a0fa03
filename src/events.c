/* events.c - the outbox: emitting events, claiming and delivering them
 * (see events.h).
 *
 * The outbox body of a row is the event as it was emitted:
 *   {"event_id", "event_type", "time" (microseconds), "payload"}
 * and each sink shapes its message from it when it delivers:
 *   RabbitMQ  oslo.messaging's notification: {message_id, publisher_id,
 *             event_type, priority, payload, timestamp, _unique_id}, bare
 *             (driver messaging, "1.0") or inside the 2.0 envelope
 *             {"oslo.version": "2.0", "oslo.message": "<json>"}
 *             (messagingv2). The payload's times are datetimes on
 *             Glare's side, serialized as oslo.messaging serializes them:
 *             by kombu's JSON encoder in 1.0 ("...T..:..:..[.ffffff]Z"),
 *             by oslo.serialization in 2.0 ("...T..:..:...ffffff");
 *             timestamp is str(utcnow()) ("YYYY-MM-DD HH:MM:SS[.ffffff]").
 *             message_id is the event id and _unique_id its hex, so a
 *             redelivery is recognisably the same message.
 *   webhook   the payload's keys plus event_type, event_id and time
 *             (ISO-8601 with microseconds and Z).
 *
 * Every statement here is written once for both stores (gl_meta_exec).
 */
#include "events.h"
#include "amqp.h"
#include "coro.h"
#include "fetch.h"
#include "log.h"
#include "owner.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CLAIM_BATCH 256
#define PRUNE_EVERY_US (60 * 1000000LL)
#define AMQP_RETRY_US 1000000LL
#define IN_CHUNK 16       /* seq IN ($1..$16) */
#define COALESCE_US 20000 /* see kick() */

/* clang-format off */
static const char *const known_actions[] = {
	"create", "update", "upload", "activate", "publish", "deactivate",
	"reactivate", "set_location", "delete_blob", "delete", "set_quotas",
	"verify_changed", "verify_gone", "verify_restored", NULL
};
/* clang-format on */

int gl_events_known(const char *action)
{
	for (int i = 0; known_actions[i]; i++)
		if (!strcmp(known_actions[i], action))
			return 1;
	return 0;
}

/* ---- SQL ------------------------------------------------------------------
 * $n placeholders and CASTs: the same text on SQLite and PostgreSQL. */

/* One row per sink: each matching subscription, and the notifier ($10).
 * Subscriptions hold their events as ",a,b," (",*," for all). */
static const char emit_sql[] =
	"INSERT INTO outbox (event_id, event_type, sink, subscription_id,"
	" created_at, body, next_at)"
	" SELECT $1, $2, 'webhook', s.id, CAST($3 AS BIGINT), $4,"
	" CAST($3 AS BIGINT) FROM subscriptions s"
	" WHERE (s.all_projects = 1 OR s.owner = $5"
	" OR CAST($6 AS INTEGER) = 1)"
	" AND (s.events = ',*,' OR s.events LIKE ('%,' || CAST($7 AS TEXT)"
	" || ',%'))"
	" AND (s.type_name IS NULL OR s.type_name = $8)"
	" AND (s.artifact_id IS NULL OR s.artifact_id = $9)"
	" UNION ALL SELECT $1, $2, 'amqp', NULL, CAST($3 AS BIGINT), $4,"
	" CAST($3 AS BIGINT) WHERE CAST($10 AS INTEGER) = 1";

#define DUE(sink, now)                                                        \
	" state = 'pending' AND sink = " sink " AND next_at <= CAST(" now     \
	" AS BIGINT)"                                                         \
	" AND (claim_until IS NULL OR claim_until < CAST(" now " AS BIGINT))"

/* A cheap look before the write that claims (no write lock when idle). */
static const char probe_sql[] =
	"SELECT seq FROM outbox WHERE" DUE("$1", "$2") " LIMIT 1";

/* clang-format off */
static const char claim_sql[] =
	"UPDATE outbox SET claimed_by = $1, claim_until = CAST($2 AS BIGINT),"
	" attempts = attempts + 1"
	" WHERE seq IN (SELECT seq FROM outbox WHERE" DUE("$3", "$4")
	" ORDER BY seq LIMIT CAST($5 AS BIGINT))"
	" RETURNING seq, event_id, event_type, subscription_id, body,"
	" attempts, created_at";
/* clang-format on */

static const char delete_sql[] =
	"DELETE FROM outbox WHERE seq IN ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
	" $10, $11, $12, $13, $14, $15, $16)";

static const char retry_sql[] =
	"UPDATE outbox SET claimed_by = NULL, claim_until = NULL,"
	" next_at = CAST($2 AS BIGINT), last_at = CAST($3 AS BIGINT),"
	" last_error = $4 WHERE seq = $1 AND state = 'pending'";

static const char hook_done_sql[] =
	"UPDATE outbox SET state = $2, next_at = CAST($3 AS BIGINT),"
	" done_at = CAST($4 AS BIGINT), last_at = CAST($5 AS BIGINT),"
	" last_code = CAST($6 AS INTEGER), last_error = $7,"
	" claimed_by = NULL, claim_until = NULL WHERE seq = $1";

static const char sub_target_sql[] =
	"SELECT url, secret FROM subscriptions WHERE id = $1";

static const char drop_row_sql[] = "DELETE FROM outbox WHERE seq = $1";

static const char prune_done_sql[] =
	"DELETE FROM outbox WHERE state <> 'pending' AND state = $1"
	" AND done_at < CAST($2 AS BIGINT)";

static const char expire_sql[] =
	"UPDATE outbox SET state = 'failed', done_at = CAST($1 AS BIGINT),"
	" last_error = $2, claimed_by = NULL, claim_until = NULL"
	" WHERE state = 'pending' AND created_at < CAST($3 AS BIGINT)";

static const char claimers_sql[] =
	"SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL";

static const char release_sql[] =
	"UPDATE outbox SET claimed_by = NULL, claim_until = NULL"
	" WHERE claimed_by = $1";

/* ---- state ------------------------------------------------------------------ */

typedef struct hook {
	struct hook *next;
	gl_events *ev;
	int64_t seq, created_us;
	int attempts;
	gl_fetch_job *fj;
} hook;

struct gl_events {
	const gl_conf *conf;
	gl_meta *meta;
	struct event_base *base;
	char node[160]; /* "host:pid incarnation": our claims */
	int v1, v2;     /* notification formats to publish */
	int amqp_on;    /* the notifier is a sink */
	gl_amqp_conf amqp_conf;
	/* delivery (gl_events_start) */
	int started;
	struct event *tick, *kick, *flush, *wake;
	int64_t wake_at; /* when `wake` fires, 0 if not armed */
	/* the timers' database work runs in coroutines (coro.h), one pass
	 * and one flush at a time; a pass asked for meanwhile runs after */
	int passing, flushing, pass_again;
	gl_amqp *amqp;
	gl_fetch *hooks;
	hook *inflight;
	int nhooks;
	int64_t next_prune_us;
	uint64_t rnd;
	/* publisher outcomes waiting to be written */
	json_t *acked;  /* seqs to delete */
	json_t *failed; /* [seq, why] to retry */
	/* rows claimed, delivered once durable (see pass()) */
	int holding, held_more;
	json_t *held_amqp, *held_hooks;
	int undurable; /* the store lost durability: deliver no more */
};

gl_meta *gl_events_meta(gl_events *ev)
{
	return ev->meta;
}
const gl_conf *gl_events_conf(gl_events *ev)
{
	return ev->conf;
}

/* ---- times as the sinks show them ---------------------------------------- */

static void split_time(int64_t us, struct tm *tm, int *frac)
{
	time_t s = (time_t)(us / 1000000);
	*frac = (int)(us % 1000000);
	if (*frac < 0) {
		*frac += 1000000;
		s--;
	}
	gmtime_r(&s, tm);
}

/* oslo.serialization's datetime: %Y-%m-%dT%H:%M:%S.%f */
static void oslo_time(int64_t us, char out[64])
{
	struct tm tm;
	int frac;

	split_time(us, &tm, &frac);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06d",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, frac);
}

/* Python's str(datetime): the fraction only when it is not zero;
 * sep ' ' (str) or 'T' (isoformat) */
static void py_time(int64_t us, char sep, const char *zone, char out[64])
{
	struct tm tm;
	int frac;
	int n;

	split_time(us, &tm, &frac);
	n = snprintf(out, 64, "%04d-%02d-%02d%c%02d:%02d:%02d",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, sep,
		     tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (frac)
		n += snprintf(out + n, 64 - (size_t)n, ".%06d", frac);
	snprintf(out + n, 64 - (size_t)n, "%s", zone);
}

/* A payload time (oslo form, or null) in kombu's form (1.0 messages). */
static json_t *kombu_time(const json_t *v)
{
	int64_t us;
	char buf[64];

	if (!json_is_string(v) || gl_parse_iso8601(json_string_value(v), &us))
		return json_incref((json_t *)v);
	py_time(us, 'T', "Z", buf);
	return json_string(buf);
}

static void hex_id(const char *uuid, char out[33])
{
	int k = 0;

	for (const char *p = uuid; *p && k < 32; p++)
		if (*p != '-')
			out[k++] = *p;
	out[k] = '\0';
}

/* ---- emitting -------------------------------------------------------------- */

static json_t *time_of(const json_t *doc, const char *k)
{
	json_t *v = json_object_get(doc, k);
	int64_t us;
	char buf[64];

	if (json_is_integer(v)) {
		us = json_integer_value(v);
	} else if (!json_is_string(v) ||
		   gl_parse_iso8601(json_string_value(v), &us) < 0) {
		return json_null();
	}
	oslo_time(us, buf);
	return json_string(buf);
}

/* Glare's Artifact.to_notification(), in its order. */
static json_t *payload_of(const char *type_name, const json_t *doc)
{
	json_t *p = json_object();
	static const char *const strs[] = { "id",      "description", "name",
					    "version", "visibility",  "status",
					    NULL };

	json_object_set_new(p, "type", json_string(type_name));
	for (int i = 0; strs[i]; i++) {
		json_t *v = json_object_get(doc, strs[i]);
		json_object_set_new(p, strs[i],
				    json_is_string(v) ? json_incref(v)
						      : json_null());
	}
	json_object_set_new(p, "created_at", time_of(doc, "created_at"));
	json_object_set_new(p, "updated_at", time_of(doc, "updated_at"));
	json_object_set_new(p, "activated_at", time_of(doc, "activated_at"));
	json_object_set(p, "owner",
			json_is_string(json_object_get(doc, "owner"))
				? json_object_get(doc, "owner")
				: json_null());
	return p;
}

/* A pass soon: a few milliseconds later, so that the events of
 * concurrent requests share one claim and one acknowledgement write
 * (each is a write transaction: under load, one per event would cost
 * the API more than the events themselves). */
static void kick(gl_events *ev)
{
	struct timeval tv = { 0, COALESCE_US };

	if (ev->started && ev->kick && !evtimer_pending(ev->kick, NULL))
		evtimer_add(ev->kick, &tv);
}

/* A pass on the next loop turn: more is due now (a backlog, a slot or
 * room that just became free). */
static void kick_now(gl_events *ev)
{
	if (ev->started && ev->kick)
		event_active(ev->kick, EV_TIMEOUT, 0);
}

int gl_events_emit(gl_events *ev, const char *action, const char *type_name,
		   const json_t *doc, const json_t *extra, gl_err *err)
{
	char id[37], etype[160];
	int64_t now = gl_now_us(), n = 0;
	json_t *payload, *body, *args;
	char *text;
	int rc;

	if (!ev)
		return 0;
	gl_uuid4(id);
	snprintf(etype, sizeof etype, "artifact.artifact:%s", action);
	payload = doc ? payload_of(type_name, doc) : json_null();
	if (doc && extra)
		json_object_update(payload, (json_t *)extra);
	body = json_pack("{s:s, s:s, s:I, s:o}", "event_id", id, "event_type",
			 etype, "time", (json_int_t)now, "payload", payload);
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		gl_oom();
	args = json_pack("[s, s, I, s, s?, i, s, s?, s?, i]", id, etype,
			 (json_int_t)now, text,
			 doc ? gl_json_str(doc, "owner") : NULL,
			 doc && gl_streq(gl_json_str(doc, "visibility"),
					 "public"),
			 action, doc ? type_name : NULL,
			 doc ? gl_json_str(doc, "id") : NULL, ev->amqp_on);
	rc = gl_meta_exec(ev->meta, emit_sql, args, NULL, &n, err);
	json_decref(args);
	json_decref(body);
	free(text);
	/* delivered after the commit: the kick runs on the next loop pass,
	 * when the caller's transaction is over (and pass() waits until
	 * that commit is durable) */
	if (rc == 0 && n > 0)
		kick(ev);
	return rc;
}

/* ---- delivery: helpers ---------------------------------------------------- */

static uint64_t next_rnd(gl_events *ev)
{
	/* xorshift64: jitter needs no more */
	ev->rnd ^= ev->rnd << 13;
	ev->rnd ^= ev->rnd >> 7;
	ev->rnd ^= ev->rnd << 17;
	return ev->rnd;
}

/* Exponential backoff with jitter (half fixed, half random). */
static int64_t backoff_us(gl_events *ev, int attempts)
{
	int64_t d = (int64_t)ev->conf->events_retry_initial_ms * 1000;
	int64_t cap = (int64_t)ev->conf->events_retry_max_ms * 1000;

	for (int i = 1; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	return d / 2 + (int64_t)(next_rnd(ev) % (uint64_t)(d / 2 + 1));
}

static void exec_warn(gl_events *ev, const char *sql, json_t *args,
		      const char *what)
{
	gl_err err = { 0 };

	if (gl_meta_exec(ev->meta, sql, args, NULL, NULL, &err) < 0)
		gl_warn("events: %s: %s", what, err.msg);
	json_decref(args);
}

/* Claim up to limit due rows of a sink: an array of rows
 * [seq, event_id, event_type, subscription_id, body, attempts,
 * created_at], by seq, or NULL. */
static json_t *claim(gl_events *ev, const char *sink, int limit, int64_t now)
{
	json_t *args, *rows = NULL;
	gl_err err = { 0 };

	args = json_pack("[s, I]", sink, (json_int_t)now);
	if (gl_meta_exec(ev->meta, probe_sql, args, &rows, NULL, &err) < 0) {
		gl_warn("events: looking for due events: %s", err.msg);
		json_decref(args);
		return NULL;
	}
	json_decref(args);
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return NULL;
	}
	json_decref(rows);
	rows = NULL;
	args = json_pack("[s, I, s, I, i]", ev->node,
			 (json_int_t)(now +
				      (int64_t)ev->conf->events_claim_timeout *
					      1000000),
			 sink, (json_int_t)now, limit);
	if (gl_meta_exec(ev->meta, claim_sql, args, &rows, NULL, &err) < 0) {
		gl_warn("events: claiming: %s", err.msg);
		rows = NULL;
	}
	json_decref(args);
	if (rows && json_array_size(rows) == 0) {
		/* taken by another worker since the probe */
		json_decref(rows);
		rows = NULL;
	}
	return rows;
}

static int64_t col_int(const json_t *row, size_t i)
{
	return json_integer_value(json_array_get(row, i));
}

static const char *col_str(const json_t *row, size_t i)
{
	return json_string_value(json_array_get(row, i));
}

/* ---- RabbitMQ --------------------------------------------------------------- */

/* The notification of an outbox body, in format 1.0 or 2.0. */
static char *notification(gl_events *ev, const json_t *body, int v2)
{
	const char *id = gl_json_str(body, "event_id");
	json_t *payload = json_object_get(body, "payload"), *p, *msg;
	char ts[64], uid[33];
	char *text;

	py_time(json_integer_value(json_object_get(body, "time")), ' ', "",
		ts);
	hex_id(id ? id : "", uid);
	if (!v2 && json_is_object(payload)) {
		/* kombu's datetimes */
		const char *k;
		json_t *v;
		p = json_object();
		json_object_foreach(payload, k, v)
			json_object_set_new(p, k,
					    (!strcmp(k, "created_at") ||
					     !strcmp(k, "updated_at") ||
					     !strcmp(k, "activated_at"))
						    ? kombu_time(v)
						    : json_incref(v));
	} else {
		p = json_incref(payload ? payload : json_null());
	}
	msg = json_pack("{s:s, s:s, s:O, s:s, s:o, s:s, s:s}", "message_id",
			id ? id : "", "publisher_id",
			ev->conf->glare_publisher_id, "event_type",
			json_object_get(body, "event_type"), "priority",
			"INFO", "payload", p, "timestamp", ts, "_unique_id",
			uid);
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (v2) {
		json_t *env = json_pack("{s:s, s:s}", "oslo.version", "2.0",
					"oslo.message", text);
		free(text);
		text = json_dumps(env, JSON_COMPACT);
		json_decref(env);
	}
	if (!text)
		gl_oom();
	return text;
}

/* A pass at least when a retry of ours is due (the poll timer is for
 * everyone's rows; a short backoff should not wait for it). */
static void wake_in(gl_events *ev, int64_t us)
{
	int64_t at = gl_now_us() + us + 2000;
	struct timeval tv;

	if (!ev->wake || (ev->wake_at && ev->wake_at <= at &&
			  evtimer_pending(ev->wake, NULL)))
		return;
	us = at - gl_now_us();
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	if (evtimer_add(ev->wake, &tv) == 0)
		ev->wake_at = at;
}

static void schedule_flush(gl_events *ev)
{
	struct timeval tv = { 0, COALESCE_US };

	if (ev->flush && !evtimer_pending(ev->flush, NULL))
		evtimer_add(ev->flush, &tv);
}

/* The publisher's outcome of message id (a seq), or -1: connected. */
static void amqp_result(void *arg, int64_t id, int ok, const char *why)
{
	gl_events *ev = arg;

	if (id < 0) {
		kick_now(ev);
		return;
	}
	if (ok)
		json_array_append_new(ev->acked, json_integer(id));
	else
		json_array_append_new(ev->failed,
				      json_pack("[I, s]", (json_int_t)id,
						why ? why : "failed"));
	schedule_flush(ev);
}

/* Write the publisher's outcomes: confirmed rows go, the others are
 * released to be tried again. One transaction. */
static void flush_run(gl_events *ev)
{
	size_t n = json_array_size(ev->acked), i;
	int64_t now = gl_now_us();
	gl_err err = { 0 };
	json_t *v;

	if (n == 0 && json_array_size(ev->failed) == 0)
		return;
	if (gl_meta_begin(ev->meta, &err) < 0)
		goto fail;
	for (i = 0; i < n; i += IN_CHUNK) {
		json_t *args = json_array();
		for (size_t k = 0; k < IN_CHUNK; k++)
			json_array_append_new(
				args,
				i + k < n
					? json_incref(json_array_get(ev->acked,
								     i + k))
					: json_null());
		int rc = gl_meta_exec(ev->meta, delete_sql, args, NULL, NULL,
				      &err);
		json_decref(args);
		if (rc < 0)
			goto rollback;
	}
	json_array_foreach(ev->failed, i, v) {
		json_t *args = json_pack("[O, I, I, O]", json_array_get(v, 0),
					 (json_int_t)(now + AMQP_RETRY_US),
					 (json_int_t)now,
					 json_array_get(v, 1));
		int rc = gl_meta_exec(ev->meta, retry_sql, args, NULL, NULL,
				      &err);
		json_decref(args);
		if (rc < 0)
			goto rollback;
	}
	if (gl_meta_commit(ev->meta, &err) < 0)
		goto rollback;
	if (json_array_size(ev->failed))
		wake_in(ev, AMQP_RETRY_US);
	json_array_clear(ev->acked);
	json_array_clear(ev->failed);
	kick_now(ev);
	return;
rollback:
	gl_meta_rollback(ev->meta);
fail:
	/* kept: written by the next flush (the claims hold meanwhile) */
	gl_warn("events: recording %zu published notification(s): %s", n,
		err.msg);
}

static void flush_co(void *arg)
{
	gl_events *ev = arg;

	ev->flushing = 1;
	flush_run(ev);
	ev->flushing = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_events *ev = arg;

	if (ev->flushing) /* outcomes that came meanwhile: next round */
		schedule_flush(ev);
	else
		gl_coro_go(flush_co, ev);
}

/* As many RabbitMQ rows as the publisher has room for, or NULL. */
static json_t *claim_amqp(gl_events *ev, int64_t now, int *more)
{
	int room = gl_amqp_room(ev->amqp), limit;
	json_t *rows;

	if (room <= 0)
		return NULL;
	limit = room < CLAIM_BATCH ? room : CLAIM_BATCH;
	rows = claim(ev, "amqp", limit, now);
	if (rows && (int)json_array_size(rows) == limit)
		*more = 1;
	return rows;
}

/* Hand claimed rows to the publisher (its room was judged at the claim
 * and has only grown since: nothing else sends). */
static void deliver_amqp(gl_events *ev, json_t *rows)
{
	json_t *row;
	size_t i;

	json_array_foreach(rows, i, row) {
		json_t *body = json_loads(col_str(row, 4) ? col_str(row, 4)
							  : "",
					  0, NULL);
		const char *bodies[2];
		char *texts[2] = { NULL, NULL };
		int nb = 0;

		if (!json_is_object(body)) {
			gl_warn("events: outbox row %lld is not an event; "
				"dropped",
				(long long)col_int(row, 0));
			json_array_append_new(ev->acked,
					      json_integer(col_int(row, 0)));
			json_decref(body);
			continue;
		}
		if (ev->v1)
			texts[nb++] = notification(ev, body, 0);
		if (ev->v2)
			texts[nb++] = notification(ev, body, 1);
		for (int k = 0; k < nb; k++)
			bodies[k] = texts[k];
		if (gl_amqp_send(ev->amqp, col_int(row, 0), bodies, nb) < 0)
			json_array_append_new(ev->failed,
					      json_pack("[I, s]",
							(json_int_t)col_int(row,
									    0),
							"publisher queue full"));
		for (int k = 0; k < nb; k++)
			free(texts[k]);
		json_decref(body);
	}
	if (json_array_size(ev->acked) || json_array_size(ev->failed))
		schedule_flush(ev);
}

/* ---- webhooks ------------------------------------------------------------------ */

static void hook_unlink(gl_events *ev, hook *h)
{
	for (hook **p = &ev->inflight; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			ev->nhooks--;
			return;
		}
}

/* Record an attempt: delivered (2xx), retried later, or failed for good. */
static void hook_record(gl_events *ev, int64_t seq, int64_t created_us,
			int attempts, int code, const char *why)
{
	int64_t now = gl_now_us();
	int ok = code >= 200 && code < 300;
	int give_up = !ok && now - created_us >=
				     (int64_t)ev->conf->webhook_retry_period *
					     1000000;
	const char *state = ok ? "delivered" : give_up ? "failed" : "pending";
	int64_t delay = ok || give_up ? 0 : backoff_us(ev, attempts);
	json_t *args;

	args = json_pack("[I, s, I, o?, I, i, s?]", (json_int_t)seq, state,
			 (json_int_t)(now + delay),
			 ok || give_up ? json_integer(now) : NULL,
			 (json_int_t)now, code, ok ? NULL : why);
	exec_warn(ev, hook_done_sql, args, "recording a webhook delivery");
	if (delay)
		wake_in(ev, delay);
	if (give_up)
		gl_warn("events: webhook delivery %lld given up after %d "
			"attempt(s): %s",
			(long long)seq, attempts, why ? why : "");
}

typedef struct hook_end {
	hook *h;
	gl_fetch_result res;
} hook_end;

static void hook_done_run(hook *h, const gl_fetch_result *res);

static void hook_done_co(void *arg)
{
	hook_end *he = arg;

	hook_done_run(he->h, &he->res);
	free(he);
}

/* The delivery's outcome is database work: in a coroutine. */
static void hook_done(void *arg, const gl_fetch_result *res)
{
	hook_end *he = gl_xmalloc(sizeof *he);

	he->h = arg;
	he->res = *res;
	gl_coro_go(hook_done_co, he);
}

static void hook_done_run(hook *h, const gl_fetch_result *res)
{
	gl_events *ev = h->ev;
	char why[sizeof res->err.msg];

	h->fj = NULL;
	hook_unlink(ev, h);
	if (res->http_status >= 200 && res->http_status < 300)
		why[0] = '\0';
	else
		snprintf(why, sizeof why, "%s",
			 res->err.msg[0] ? res->err.msg : "failed");
	hook_record(ev, h->seq, h->created_us, h->attempts, res->http_status,
		    why);
	free(h);
	kick_now(ev); /* a slot is free */
}

/* The webhook body: the payload's keys, event_type, event_id, time. */
static char *hook_body(const json_t *body)
{
	json_t *payload = json_object_get(body, "payload");
	json_t *out = json_is_object(payload) ? json_deep_copy(payload)
					      : json_object();
	char ts[64];
	char *text;

	py_time(json_integer_value(json_object_get(body, "time")), 'T', "Z",
		ts);
	/* a fraction always: one format for every event */
	if (!strchr(ts, '.')) {
		ts[strlen(ts) - 1] = '\0';
		strcat(ts, ".000000Z");
	}
	json_object_set(out, "event_type",
			json_object_get(body, "event_type"));
	json_object_set(out, "event_id", json_object_get(body, "event_id"));
	json_object_set_new(out, "time", json_string(ts));
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	if (!text)
		gl_oom();
	return text;
}

static void start_hook(gl_events *ev, const json_t *row)
{
	int64_t seq = col_int(row, 0);
	const char *sub = col_str(row, 3), *url, *secret;
	json_t *args, *subrows = NULL, *body;
	gl_err err = { 0 };
	char *text = NULL;
	char h_event[200], h_delivery[64], h_sig[200];
	const char *headers[5];
	int nh = 0;
	hook *h;

	args = json_pack("[s?]", sub);
	if (gl_meta_exec(ev->meta, sub_target_sql, args, &subrows, NULL,
			 &err) < 0) {
		json_decref(args);
		hook_record(ev, seq, col_int(row, 6), (int)col_int(row, 5), 0,
			    err.msg);
		return;
	}
	json_decref(args);
	if (json_array_size(subrows) == 0) {
		/* the subscription went away meanwhile */
		exec_warn(ev, drop_row_sql, json_pack("[I]", (json_int_t)seq),
			  "dropping a delivery");
		json_decref(subrows);
		return;
	}
	url = col_str(json_array_get(subrows, 0), 0);
	secret = col_str(json_array_get(subrows, 0), 1);
	body = json_loads(col_str(row, 4) ? col_str(row, 4) : "", 0, NULL);
	if (!json_is_object(body)) {
		exec_warn(ev, drop_row_sql, json_pack("[I]", (json_int_t)seq),
			  "dropping a malformed delivery");
		json_decref(body);
		json_decref(subrows);
		return;
	}
	text = hook_body(body);
	snprintf(h_event, sizeof h_event, "X-Glare-Event: %s",
		 col_str(row, 2) ? col_str(row, 2) : "");
	snprintf(h_delivery, sizeof h_delivery, "X-Glare-Delivery: %lld",
		 (long long)seq);
	headers[nh++] = "Content-Type: application/json";
	headers[nh++] = h_event;
	headers[nh++] = h_delivery;
	if (secret && *secret) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int mlen = 0;
		char mhex[2 * EVP_MAX_MD_SIZE + 1];
		HMAC(EVP_sha256(), secret, (int)strlen(secret),
		     (const unsigned char *)text, strlen(text), mac, &mlen);
		gl_hex(mac, mlen, mhex);
		snprintf(h_sig, sizeof h_sig, "X-Glare-Signature: sha256=%s",
			 mhex);
		headers[nh++] = h_sig;
	}
	headers[nh] = NULL;
	h = gl_xcalloc(1, sizeof *h);
	h->ev = ev;
	h->seq = seq;
	h->created_us = col_int(row, 6);
	h->attempts = (int)col_int(row, 5);
	{
		gl_fetch_opts fo = {
			.max_bytes = 65536,
			.post = text,
			.post_len = strlen(text),
			.headers = headers,
			.timeout = ev->conf->webhook_timeout,
			.no_redirects = 1,
		};
		h->fj = gl_fetch_start(ev->hooks, url, &fo, NULL, hook_done, h,
				       &err);
	}
	if (!h->fj) {
		hook_record(ev, seq, h->created_us, h->attempts, 0, err.msg);
		free(h);
	} else {
		h->next = ev->inflight;
		ev->inflight = h;
		ev->nhooks++;
	}
	free(text);
	json_decref(body);
	json_decref(subrows);
}

/* As many webhook rows as there are free slots, or NULL. */
static json_t *claim_hooks(gl_events *ev, int64_t now, int *more)
{
	int slots = ev->conf->webhook_max_concurrent - ev->nhooks;
	json_t *rows;

	if (slots <= 0)
		return NULL;
	rows = claim(ev, "webhook", slots, now);
	if (rows && (int)json_array_size(rows) == slots)
		*more = 1;
	return rows;
}

/* Start claimed webhook rows (the slots judged at the claim have only
 * been freed since: nothing else starts one). */
static void deliver_hooks(gl_events *ev, json_t *rows)
{
	json_t *row;
	size_t i;

	if (!ev->hooks) {
		/* on first use: a worker without subscribers never pays for
		 * curl's start-up */
		gl_err err = { 0 };
		ev->hooks = gl_fetch_new(ev->base, ev->conf, &err);
		if (!ev->hooks) {
			gl_warn("events: webhooks: %s", err.msg);
			json_array_foreach(rows, i, row)
				hook_record(ev, col_int(row, 0),
					    col_int(row, 6),
					    (int)col_int(row, 5), 0, err.msg);
			return;
		}
	}
	json_array_foreach(rows, i, row)
		start_hook(ev, row);
}

/* ---- the dispatcher ------------------------------------------------------------ */

static void prune(gl_events *ev, int64_t now)
{
	const gl_conf *c = ev->conf;

	exec_warn(ev, prune_done_sql,
		  json_pack("[s, I]", "delivered",
			    (json_int_t)(now -
					 (int64_t)c->events_delivered_retention *
						 1000000)),
		  "pruning delivered events");
	exec_warn(ev, prune_done_sql,
		  json_pack("[s, I]", "failed",
			    (json_int_t)(now -
					 (int64_t)c->events_failed_retention *
						 1000000)),
		  "pruning failed deliveries");
	exec_warn(ev, expire_sql,
		  json_pack("[I, s, I]", (json_int_t)now,
			    "not delivered within [events] max_age",
			    (json_int_t)(now - (int64_t)c->events_max_age *
						       1000000)),
		  "expiring old events");
}

static void deliver(gl_events *ev, json_t *amqp_rows, json_t *hook_rows)
{
	if (amqp_rows)
		deliver_amqp(ev, amqp_rows);
	if (hook_rows)
		deliver_hooks(ev, hook_rows);
	json_decref(amqp_rows);
	json_decref(hook_rows);
}

static void lost_durability(gl_events *ev)
{
	ev->undurable = 1;
	gl_error("events: the database's commits are no longer durable:"
		 " this worker delivers no more events (its claims expire"
		 " and other workers take the rows over)");
}

static void claims_durable(void *arg, int ok)
{
	gl_events *ev = arg;
	json_t *a = ev->held_amqp, *h = ev->held_hooks;

	ev->holding = 0;
	ev->held_amqp = ev->held_hooks = NULL;
	if (!ok) {
		json_decref(a);
		json_decref(h);
		lost_durability(ev);
		return;
	}
	deliver(ev, a, h);
	/* passes skipped meanwhile (kicks, polls) are made up for: at once
	 * when a batch was full, else coalesced as after an emit */
	if (ev->held_more)
		kick_now(ev);
	else
		kick(ev);
}

/* A pass: prune now and then, claim what is due, deliver it.
 *
 * No event leaves before the commit that wrote it is durable. With
 * SQLite group commit (walsync.c) a commit is visible, to the claim of
 * any worker, before the syncer has made it durable; so the rows claimed
 * are delivered only once the claim's own commit is durable
 * (gl_meta_when_durable): that sync of the WAL started after the claim,
 * which read the rows, so it covers the frames of the commits that wrote
 * them, whichever process wrote them (fdatasync is per inode; frames a
 * checkpoint moved out of the WAL were synced into the database file
 * first). The kick after a local emit runs after the emitting commit,
 * but that commit need not be durable yet either: this wait covers it
 * too. Elsewhere a commit is durable before anyone can see it
 * (PostgreSQL; SQLite's FULL syncs the WAL before publishing the commit
 * in the WAL index), and gl_meta_when_durable answers at once. While
 * claimed rows wait, no pass claims more: the publisher's room and the
 * webhook slots judged at the claim stay true. */
static void pass(gl_events *ev)
{
	int64_t now = gl_now_us();
	json_t *amqp_rows = NULL, *hook_rows;
	int more = 0, rc;

	if (ev->holding || ev->undurable)
		return;
	if (now >= ev->next_prune_us) {
		prune(ev, now);
		ev->next_prune_us = now + PRUNE_EVERY_US +
				    (int64_t)(next_rnd(ev) % 10000000);
	}
	/* publisher outcomes a failed flush left behind */
	if (json_array_size(ev->acked) || json_array_size(ev->failed))
		schedule_flush(ev);
	if (ev->amqp)
		amqp_rows = claim_amqp(ev, now, &more);
	hook_rows = claim_hooks(ev, now, &more);
	if (!amqp_rows && !hook_rows)
		return;
	rc = gl_meta_when_durable(ev->meta, claims_durable, ev);
	if (rc > 0) {
		ev->holding = 1;
		ev->held_amqp = amqp_rows;
		ev->held_hooks = hook_rows;
		ev->held_more = more;
		return; /* claims_durable delivers, then kicks */
	}
	if (rc < 0) {
		json_decref(amqp_rows);
		json_decref(hook_rows);
		lost_durability(ev);
		return;
	}
	deliver(ev, amqp_rows, hook_rows);
	if (more)
		kick_now(ev);
}

static void pass_co(void *arg)
{
	gl_events *ev = arg;

	ev->passing = 1;
	do {
		ev->pass_again = 0;
		pass(ev);
	} while (ev->pass_again);
	ev->passing = 0;
}

static void pass_soon(gl_events *ev)
{
	if (ev->passing)
		ev->pass_again = 1;
	else
		gl_coro_go(pass_co, ev);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	pass_soon(arg);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_events *ev = arg;

	ev->wake_at = 0;
	pass_soon(ev);
}

/* Claims of processes of this host that are gone (owner.h's rules 2 and
 * 3: a dead pid, or this pid with another incarnation) are released at
 * once; other claims expire. A claim names its owner as
 * "host:pid incarnation". */
static void release_dead(gl_events *ev)
{
	const gl_self *me = gl_self_get();
	json_t *rows = NULL, *row;
	gl_err err = { 0 };
	size_t i;

	if (gl_meta_exec(ev->meta, claimers_sql, NULL, &rows, NULL, &err) <
	    0) {
		gl_warn("events: reading claims: %s", err.msg);
		return;
	}
	json_array_foreach(rows, i, row) {
		const char *who = col_str(row, 0), *colon, *inc;
		long pid;
		if (!who || !strcmp(who, ev->node) ||
		    !gl_owner_same_host(me, who) ||
		    !(colon = strrchr(who, ':')))
			continue;
		pid = strtol(colon + 1, NULL, 10);
		inc = strchr(colon, ' ');
		if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH) ||
		    (pid == me->pid &&
		     (!inc || strcmp(inc + 1, me->incarnation)))) {
			gl_info("events: releasing the claims of %s (gone)",
				who);
			exec_warn(ev, release_sql, json_pack("[s]", who),
				  "releasing claims");
		}
	}
	json_decref(rows);
}

int gl_events_start(gl_events *ev, gl_err *err)
{
	struct timeval tv = { ev->conf->events_poll_interval, 0 };

	if (!ev->conf->events_deliver)
		return 0;
	ev->acked = json_array();
	ev->failed = json_array();
	ev->tick = event_new(ev->base, -1, EV_PERSIST, tick_cb, ev);
	ev->kick = evtimer_new(ev->base, tick_cb, ev);
	ev->flush = evtimer_new(ev->base, flush_cb, ev);
	ev->wake = evtimer_new(ev->base, wake_cb, ev);
	if (!ev->tick || !ev->kick || !ev->flush || !ev->wake ||
	    event_add(ev->tick, &tv) < 0)
		return gl_fail(err, 500, NULL, "cannot arm the event timers");
	if (ev->amqp_on) {
		ev->amqp = gl_amqp_new(&ev->amqp_conf, ev->base, amqp_result,
				       ev, err);
		if (!ev->amqp)
			return -1;
	}
	ev->started = 1;
	release_dead(ev);
	kick_now(ev);
	return 0;
}

/* ---- life cycle ------------------------------------------------------------------ */

static int setup_amqp(gl_events *ev, gl_err *err)
{
	const gl_conf *c = ev->conf;
	const char *url = c->notification_transport_url &&
					  *c->notification_transport_url
				  ? c->notification_transport_url
				  : c->transport_url;
	const gl_strlist *d = &c->notification_driver;

	for (int i = 0; i < d->n; i++) {
		if (!strcmp(d->v[i], "messaging"))
			ev->v1 = 1;
		else if (!strcmp(d->v[i], "messagingv2"))
			ev->v2 = 1;
		else if (strcmp(d->v[i], "noop") && strcmp(d->v[i], "log"))
			gl_warn("[oslo_messaging_notifications] driver %s: "
				"glared sends nothing for it",
				d->v[i]);
	}
	if (!ev->v1 && !ev->v2)
		return 0;
	if (!url || !*url) {
		gl_warn("[oslo_messaging_notifications] driver is set but no "
			"transport_url: no notifications are sent");
		ev->v1 = ev->v2 = 0;
		return 0;
	}
	if (c->notification_topics.n == 0) {
		gl_warn("[oslo_messaging_notifications] topics is empty: no "
			"notifications are sent");
		ev->v1 = ev->v2 = 0;
		return 0;
	}
	if (gl_amqp_parse_url(url, &ev->amqp_conf, err) < 0)
		return -1;
	ev->amqp_conf.exchange = gl_xstrdup(c->control_exchange);
	ev->amqp_conf.keys = gl_xcalloc((size_t)c->notification_topics.n,
					sizeof *ev->amqp_conf.keys);
	for (int i = 0; i < c->notification_topics.n; i++) {
		char k[512];
		snprintf(k, sizeof k, "%s.info", c->notification_topics.v[i]);
		ev->amqp_conf.keys[ev->amqp_conf.nkeys++] = gl_xstrdup(k);
	}
	ev->amqp_conf.durable = c->amqp_durable_queues;
	ev->amqp_conf.auto_delete = c->amqp_auto_delete;
	ev->amqp_conf.heartbeat = c->rabbit_heartbeat;
	ev->amqp_conf.connect_timeout = c->amqp_connect_timeout;
	ev->amqp_conf.confirm_timeout = c->amqp_confirm_timeout;
	ev->amqp_conf.queue_size = c->amqp_queue_size;
	ev->amqp_on = 1;
	return 0;
}

gl_events *gl_events_new(const gl_conf *conf, gl_meta *meta,
			 struct event_base *base, gl_err *err)
{
	gl_events *ev = gl_xcalloc(1, sizeof *ev);

	ev->conf = conf;
	ev->meta = meta;
	ev->base = base;
	snprintf(ev->node, sizeof ev->node, "%s %s", gl_self_get()->node,
		 gl_self_get()->incarnation);
	ev->rnd = (uint64_t)gl_now_us() ^ ((uint64_t)getpid() << 32) ^ 1;
	ev->next_prune_us = gl_now_us() + (int64_t)(next_rnd(ev) % 10000000);
	if (setup_amqp(ev, err) < 0) {
		gl_events_free(ev);
		return NULL;
	}
	return ev;
}

void gl_events_free(gl_events *ev)
{
	if (!ev)
		return;
	if (ev->holding) {
		/* never delivered: released with the other claims below */
		gl_meta_durable_cancel(ev->meta, ev);
		json_decref(ev->held_amqp);
		json_decref(ev->held_hooks);
		ev->holding = 0;
	}
	if (ev->amqp) {
		gl_amqp_free(ev->amqp);
		ev->amqp = NULL;
	}
	if (ev->started) {
		/* what the publisher confirmed is written; the rest, and the
		 * webhooks cut short, go back to the outbox at once */
		flush_run(ev);
		exec_warn(ev, release_sql, json_pack("[s]", ev->node),
			  "releasing claims");
	}
	while (ev->inflight) {
		hook *h = ev->inflight;
		ev->inflight = h->next;
		gl_fetch_cancel(h->fj);
		free(h);
	}
	if (ev->hooks)
		gl_fetch_free(ev->hooks);
	if (ev->tick)
		event_free(ev->tick);
	if (ev->kick)
		event_free(ev->kick);
	if (ev->flush)
		event_free(ev->flush);
	if (ev->wake)
		event_free(ev->wake);
	json_decref(ev->acked);
	json_decref(ev->failed);
	gl_amqp_conf_clear(&ev->amqp_conf);
	free(ev);
}
