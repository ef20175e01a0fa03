/* subscriptions.c - webhook subscriptions: create, list, show, delete,
 * and the recent deliveries of one (see events.h; the HTTP side is
 * api_subscriptions.c).
 *
 * A subscription belongs to the project that created it and is visible
 * to it (admins see all). Its events are kept as ",a,b," (",*," for all)
 * so the outbox's emit statement matches them with one LIKE on either
 * store. Secrets are stored to sign deliveries and never shown again.
 * Policy rules subscription:* (policy.c) decide each call;
 * subscription:all_projects whether a new subscription receives the
 * events of every project's artifacts (default: admins).
 */
#include "events.h"
#include "fetch.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 32
#define MAX_SECRET 512

#define SUB_COLS                                                              \
	"id, owner, all_projects, url, events, secret, type_name,"            \
	" artifact_id, created_at"

static const char insert_sql[] =
	"INSERT INTO subscriptions (" SUB_COLS ") VALUES ($1, $2,"
	" CAST($3 AS INTEGER), $4, $5, $6, $7, $8, CAST($9 AS BIGINT))";
static const char count_sql[] =
	"SELECT count(*) FROM subscriptions WHERE owner = $1";
/* clang-format off */
static const char get_sql[] =
	"SELECT " SUB_COLS " FROM subscriptions WHERE id = $1";
static const char list_own_sql[] =
	"SELECT " SUB_COLS " FROM subscriptions WHERE owner = $1"
	" ORDER BY created_at, id";
/* clang-format on */
static const char list_all_sql[] =
	"SELECT " SUB_COLS " FROM subscriptions ORDER BY created_at, id";
static const char delete_sql[] = "DELETE FROM subscriptions WHERE id = $1";
static const char delete_rows_sql[] =
	"DELETE FROM outbox WHERE subscription_id = $1";
static const char deliveries_sql[] =
	"SELECT seq, event_id, event_type, state, attempts, created_at,"
	" last_at, last_code, last_error, done_at, next_at FROM outbox"
	" WHERE subscription_id = $1 ORDER BY seq DESC"
	" LIMIT CAST($2 AS BIGINT)";

enum {
	S_ID,
	S_OWNER,
	S_ALL,
	S_URL,
	S_EVENTS,
	S_SECRET,
	S_TYPE,
	S_AID,
	S_CREATED
};

static const char *col_str(const json_t *row, size_t i)
{
	return json_string_value(json_array_get(row, i));
}

static json_t *time_or_null(const json_t *v)
{
	char ts[32];

	if (!json_is_integer(v))
		return json_null();
	gl_iso8601(json_integer_value(v), ts);
	return json_string(ts);
}

static json_t *str_or_null(const json_t *v)
{
	return json_is_string(v) ? json_incref((json_t *)v) : json_null();
}

/* A row as the API shows it (no secret). */
static json_t *shape(const json_t *row)
{
	json_t *events = json_array();
	const char *ev = col_str(row, S_EVENTS), *p;

	for (p = ev ? ev + 1 : NULL; p && *p;) {
		const char *c = strchr(p, ',');
		if (!c)
			break;
		if (c > p)
			json_array_append_new(events,
					      json_stringn(p,
							   (size_t)(c - p)));
		p = c + 1;
	}
	return json_pack("{s:O, s:O, s:o, s:O, s:o, s:o, s:b, s:b, s:o}", "id",
			 json_array_get(row, S_ID), "owner",
			 json_array_get(row, S_OWNER), "events", events, "url",
			 json_array_get(row, S_URL), "type",
			 str_or_null(json_array_get(row, S_TYPE)),
			 "artifact_id",
			 str_or_null(json_array_get(row, S_AID)),
			 "all_projects",
			 json_integer_value(json_array_get(row, S_ALL)) != 0,
			 "has_secret",
			 col_str(row, S_SECRET) && *col_str(row, S_SECRET),
			 "created_at",
			 time_or_null(json_array_get(row, S_CREATED)));
}

static int allowed(const gl_policy *pol, const gl_ctx *ctx, const char *rule,
		   const char *owner)
{
	gl_creds cr;
	json_t *t = json_object();
	int ok;

	if (owner) {
		json_object_set_new(t, "owner", json_string(owner));
		json_object_set_new(t, "project_id", json_string(owner));
	}
	gl_ctx_creds(ctx, &cr);
	ok = gl_policy_check(pol, rule, &cr, t);
	json_decref(t);
	return ok;
}

static int deny(const char *rule, gl_err *err)
{
	return gl_fail(err, 403, "PolicyException",
		       "Policy check for %s failed with user credentials.",
		       rule);
}

/* ---- validation ------------------------------------------------------------ */

/* What fetch.c accepts, and not an address the SSRF guard refuses
 * (names are judged at every delivery, whatever they resolve to then). */
static int check_url(const gl_conf *conf, const char *url, gl_err *err)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	const struct sockaddr *sa = NULL;
	char h[300], why[300];
	size_t n;
	gl_netguard *g;
	int ok;

	if (gl_fetch_check_url(url, h, sizeof h, err) < 0) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		return gl_fail(err, 400, "BadRequest", "Webhook URL: %s", msg);
	}
	/* a literal address: judge it now (brackets off for v6) */
	n = strlen(h);
	if (n > 2 && h[0] == '[' && h[n - 1] == ']') {
		memmove(h, h + 1, n - 2);
		h[n - 2] = '\0';
	}
	if (inet_pton(AF_INET, h, &s4.sin_addr) == 1)
		sa = (const struct sockaddr *)&s4;
	else if (inet_pton(AF_INET6, h, &s6.sin6_addr) == 1)
		sa = (const struct sockaddr *)&s6;
	if (!sa)
		return 0;
	g = gl_netguard_new(&conf->external_location_allowed_networks, err);
	if (!g)
		return -1;
	ok = gl_netguard_check(g, sa, why, sizeof why);
	gl_netguard_free(g);
	if (!ok)
		return gl_fail(err, 400, "BadRequest",
			       "Webhooks cannot be sent there: %s", why);
	return 0;
}

/* events -> ",a,b," (short names; "*" alone for all). */
static char *events_text(const json_t *events, gl_err *err)
{
	gl_sb sb = { 0 };
	json_t *seen = json_object(), *v;
	size_t i;

	if (!json_is_array(events) || json_array_size(events) == 0 ||
	    json_array_size(events) > MAX_EVENTS) {
		gl_fail(err, 400, "BadRequest",
			"'events' must be a list of 1 to %d event types",
			MAX_EVENTS);
		goto fail;
	}
	json_array_foreach(events, i, v) {
		const char *s = json_string_value(v);
		if (s && !strncmp(s, "artifact.artifact:", 18))
			s += 18;
		if (!s || (strcmp(s, "*") && !gl_events_known(s))) {
			gl_fail(err, 400, "BadRequest",
				"Unknown event type %s%s%s: expected \"*\" or "
				"one of create, update, upload, activate, "
				"publish, deactivate, reactivate, "
				"set_location, delete_blob, delete, "
				"set_quotas, verify_changed, verify_gone, "
				"verify_restored",
				s ? "'" : "", s ? s : "(not a string)",
				s ? "'" : "");
			goto fail;
		}
		if (!strcmp(s, "*")) {
			gl_sb_reset(&sb);
			gl_sb_add(&sb, ",*,");
			break;
		}
		if (json_object_get(seen, s))
			continue;
		json_object_set_new(seen, s, json_true());
		gl_sb_addf(&sb, "%s%s,", sb.len ? "" : ",", s);
	}
	json_decref(seen);
	return sb.p;
fail:
	json_decref(seen);
	gl_sb_free(&sb);
	return NULL;
}

static int opt_string(const json_t *body, const char *k, size_t max,
		      const char **out, gl_err *err)
{
	json_t *v = json_object_get(body, k);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) < 1 ||
	    json_string_length(v) > max)
		return gl_fail(err, 400, "BadRequest",
			       "'%s' must be a string of 1 to %zu characters",
			       k, max);
	*out = json_string_value(v);
	return 0;
}

/* ---- the calls ------------------------------------------------------------------ */

int gl_subscription_create(gl_events *ev, const gl_policy *pol,
			   const gl_ctx *ctx, const json_t *body, json_t **out,
			   gl_err *err)
{
	gl_meta *m = gl_events_meta(ev);
	const gl_conf *conf = gl_events_conf(ev);
	const char *url, *secret, *type, *aid, *k;
	json_t *v, *args, *rows = NULL;
	char id[37], *events = NULL;
	int all, in_tx = 0, rc = -1;

	if (ctx->anonymous || ctx->read_only || !ctx->project_id)
		return gl_fail(err, 403, "Forbidden",
			       "Anonymous users cannot subscribe");
	if (!allowed(pol, ctx, "subscription:create", NULL))
		return deny("subscription:create", err);
	if (!json_is_object(body))
		return gl_fail(err, 400, "BadRequest",
			       "A subscription must be a JSON object");
	json_object_foreach((json_t *)body, k, v)
		if (strcmp(k, "url") && strcmp(k, "events") &&
		    strcmp(k, "secret") && strcmp(k, "type") &&
		    strcmp(k, "artifact_id"))
			return gl_fail(err, 400, "BadRequest",
				       "Unexpected key '%s' in the subscription",
				       k);
	url = json_string_value(json_object_get(body, "url"));
	if (!url || !*url)
		return gl_fail(err, 400, "BadRequest",
			       "A subscription needs a 'url'");
	if (check_url(conf, url, err) < 0 ||
	    opt_string(body, "secret", MAX_SECRET, &secret, err) < 0 ||
	    opt_string(body, "type", 255, &type, err) < 0 ||
	    opt_string(body, "artifact_id", 255, &aid, err) < 0)
		return -1;
	if (!(events = events_text(json_object_get(body, "events"), err)))
		return -1;
	all = allowed(pol, ctx, "subscription:all_projects", NULL);
	gl_uuid4(id);
	if (gl_meta_begin(m, err) < 0)
		goto out;
	in_tx = 1;
	args = json_pack("[s]", ctx->project_id);
	rc = gl_meta_exec(m, count_sql, args, &rows, NULL, err);
	json_decref(args);
	if (rc < 0)
		goto out;
	rc = -1;
	if (json_integer_value(json_array_get(json_array_get(rows, 0), 0)) >=
	    conf->max_subscriptions) {
		gl_fail(err, 403, "Forbidden",
			"Maximum number of subscriptions (%d) reached for "
			"project %s",
			conf->max_subscriptions, ctx->project_id);
		goto out;
	}
	args = json_pack("[s, s, i, s, s, s?, s?, s?, I]", id, ctx->project_id,
			 all, url, events, secret, type, aid,
			 (json_int_t)gl_now_us());
	rc = gl_meta_exec(m, insert_sql, args, NULL, NULL, err);
	json_decref(args);
	if (rc < 0 || gl_meta_commit(m, err) < 0) {
		rc = -1;
		goto out;
	}
	in_tx = 0;
	rc = gl_subscription_show(ev, pol, ctx, id, out, err);
out:
	if (in_tx)
		gl_meta_rollback(m);
	json_decref(rows);
	free(events);
	return rc;
}

int gl_subscription_list(gl_events *ev, const gl_policy *pol,
			 const gl_ctx *ctx, json_t **out, gl_err *err)
{
	gl_meta *m = gl_events_meta(ev);
	int all = allowed(pol, ctx, "subscription:list_all", NULL);
	json_t *rows = NULL, *row, *list, *args;
	size_t i;
	int rc;

	if (!ctx->project_id && !all)
		return gl_fail(err, 403, "Forbidden",
			       "Anonymous users have no subscriptions");
	if (!allowed(pol, ctx, "subscription:list", NULL))
		return deny("subscription:list", err);
	args = all ? NULL : json_pack("[s]", ctx->project_id);
	rc = gl_meta_exec(m, all ? list_all_sql : list_own_sql, args, &rows,
			  NULL, err);
	json_decref(args);
	if (rc < 0)
		return -1;
	list = json_array();
	json_array_foreach(rows, i, row)
		json_array_append_new(list, shape(row));
	json_decref(rows);
	*out = json_pack("{s:o}", "subscriptions", list);
	return 0;
}

/* The row of a subscription the caller may see (404 otherwise), and the
 * rule for what it wants to do with it (403). */
static json_t *load(gl_events *ev, const gl_policy *pol, const gl_ctx *ctx,
		    const char *id, const char *rule, gl_err *err)
{
	json_t *args = json_pack("[s]", id), *rows = NULL, *row;
	int rc = gl_meta_exec(gl_events_meta(ev), get_sql, args, &rows, NULL,
			      err);
	const char *owner;

	json_decref(args);
	if (rc < 0)
		return NULL;
	row = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	owner = row ? col_str(row, S_OWNER) : NULL;
	if (!row || (!gl_streq(owner, ctx->project_id) &&
		     !allowed(pol, ctx, "subscription:list_all", NULL))) {
		json_decref(row);
		gl_fail(err, 404, "NotFound", "Subscription %s not found", id);
		return NULL;
	}
	if (!allowed(pol, ctx, rule, owner)) {
		json_decref(row);
		deny(rule, err);
		return NULL;
	}
	return row;
}

int gl_subscription_show(gl_events *ev, const gl_policy *pol,
			 const gl_ctx *ctx, const char *id, json_t **out,
			 gl_err *err)
{
	json_t *row = load(ev, pol, ctx, id, "subscription:get", err);

	if (!row)
		return -1;
	*out = shape(row);
	json_decref(row);
	return 0;
}

int gl_subscription_delete(gl_events *ev, const gl_policy *pol,
			   const gl_ctx *ctx, const char *id, gl_err *err)
{
	gl_meta *m = gl_events_meta(ev);
	json_t *row = load(ev, pol, ctx, id, "subscription:delete", err);
	json_t *args;
	int rc = -1;

	if (!row)
		return -1;
	json_decref(row);
	if (gl_meta_begin(m, err) < 0)
		return -1;
	/* its deliveries, pending or past, go with it */
	args = json_pack("[s]", id);
	if (gl_meta_exec(m, delete_rows_sql, args, NULL, NULL, err) == 0 &&
	    gl_meta_exec(m, delete_sql, args, NULL, NULL, err) == 0 &&
	    gl_meta_commit(m, err) == 0)
		rc = 0;
	else
		gl_meta_rollback(m);
	json_decref(args);
	return rc;
}

int gl_subscription_deliveries(gl_events *ev, const gl_policy *pol,
			       const gl_ctx *ctx, const char *id, int limit,
			       json_t **out, gl_err *err)
{
	json_t *row = load(ev, pol, ctx, id, "subscription:deliveries", err);
	json_t *args, *rows = NULL, *r, *list;
	size_t i;
	int rc;

	if (!row)
		return -1;
	json_decref(row);
	args = json_pack("[s, i]", id, limit);
	rc = gl_meta_exec(gl_events_meta(ev), deliveries_sql, args, &rows,
			  NULL, err);
	json_decref(args);
	if (rc < 0)
		return -1;
	list = json_array();
	json_array_foreach(rows, i, r) {
		const char *state = col_str(r, 3);
		json_t *code = json_array_get(r, 7);
		json_array_append_new(
			list,
			json_pack("{s:O, s:O, s:O, s:O, s:O, s:o, s:o, s:o, s:o,"
				  " s:o, s:o}",
				  "id", json_array_get(r, 0), "event_id",
				  json_array_get(r, 1), "event_type",
				  json_array_get(r, 2), "status",
				  json_array_get(r, 3), "attempts",
				  json_array_get(r, 4), "created_at",
				  time_or_null(json_array_get(r, 5)),
				  "last_attempt_at",
				  time_or_null(json_array_get(r, 6)),
				  "last_status_code",
				  json_is_integer(code) &&
						  json_integer_value(code) > 0
					  ? json_incref(code)
					  : json_null(),
				  "last_error",
				  str_or_null(json_array_get(r, 8)),
				  "finished_at",
				  time_or_null(json_array_get(r, 9)),
				  "next_attempt_at",
				  gl_streq(state, "pending")
					  ? time_or_null(json_array_get(r, 10))
					  : json_null()));
	}
	json_decref(rows);
	*out = json_pack("{s:o}", "deliveries", list);
	return 0;
}
