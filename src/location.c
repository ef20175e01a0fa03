/* location.c - blobs at a URL: external locations (fetched, verified
 * against every checksum the client supplied, then recorded) and internal
 * ones (imported: an upload whose body comes from the URL), trust mode,
 * deleting an external blob, and the heartbeat of registrations in flight
 * (location.h).
 *
 * Registering an external location is a "saving" record like an upload's
 * (upload.c), with a fetch (fetch.c) in place of the request body: nothing
 * is recorded unless the bytes were received in full and match every
 * checksum the client supplied. Calls upload.c for imports; nothing calls
 * back.
 */
#include "blob.h"
#include "core.h"
#include "coro.h"
#include "fetch.h"
#include "location.h"
#include "log.h"
#include "owner.h"
#include "upload.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- locations ------------------------------------------------------------------ */

typedef struct gl_location_job {
	struct gl_location_job *next;
	gl_engine *e;
	const gl_ctx *ctx;
	gl_target tg;
	char *id, *field, *key, *url;
	char md5[33], sha1[41], sha256[65]; /* supplied, "" if none */
	int internal;         /* import into our store, as an upload */
	gl_upload *u;         /* internal: the upload the bytes feed */
	gl_upload *finishing; /* internal: the upload being finished */
	gl_err werr;          /* internal: why the upload refused bytes */
	json_t *prev;
	gl_fetch_job *fj;
	gl_upload_done_fn done;
	void *arg;
	/* fetch_done's coroutine is at work: a cancel only detaches */
	int completing;
	/* the heartbeat holds jobs across its waits: job_free then leaves
	 * the memory to the last hold */
	int holds, gone;
} gl_location_job;

static void job_unlink(gl_engine *e, gl_location_job *j)
{
	for (gl_location_job **p = &e->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
}

static void job_mem_free(gl_location_job *j);

static void job_free(gl_location_job *j)
{
	if (j->u)
		gl_upload_abort(j->u);
	j->u = NULL;
	if (j->finishing)
		gl_upload_detach(j->finishing); /* it ends without us */
	j->finishing = NULL;
	j->gone = 1;
	if (!j->holds)
		job_mem_free(j);
}

static void job_mem_free(gl_location_job *j)
{
	json_decref(j->prev);
	gl_target_clear(&j->tg);
	free(j->id);
	free(j->field);
	free(j->key);
	free(j->url);
	free(j);
}

static void job_restore(gl_location_job *j)
{
	gl_err err = { 0 };
	gl_engine *e = j->e;
	if (j->internal)
		return; /* the upload restores its own record */
	if (gl_meta_begin(e->meta, &err) == 0) {
		if (gl_blob_restore_prev(e, j->id, j->field, j->key, j->prev,
					 &err) == 0 &&
		    gl_meta_commit(e->meta, &err) == 0)
			return;
		gl_meta_rollback(e->meta);
	}
	gl_error("location %s/%s: cannot drop the placeholder: %s", j->id,
		 j->field, err.msg);
}

/* A registration nobody waits for any more: its fetch stops, its
 * placeholder goes, nothing of it is kept. Out of the list first: the
 * restore may wait for the database. */
static void job_drop(gl_location_job *j)
{
	if (j->fj)
		gl_fetch_cancel(j->fj);
	j->fj = NULL;
	job_unlink(j->e, j);
	job_restore(j);
	job_free(j);
}

static void job_finish(gl_location_job *j, json_t *af, const gl_err *err)
{
	gl_upload_done_fn done = j->done;
	void *arg = j->arg;

	job_unlink(j->e, j);
	job_free(j);
	if (done) /* NULL: the caller left (gl_location_cancel) */
		done(arg, af, err);
	json_decref(af);
}

static void job_fail(gl_location_job *j, const gl_err *err)
{
	job_restore(j);
	job_finish(j, NULL, err);
}

static int fetch_data(void *arg, const char *data, size_t len)
{
	gl_location_job *j = arg;
	int rc;

	if (!j->internal)
		return 0;
	/* the bytes of an internal location go into the store as an
	 * upload's would: same limits, same stores, same records */
	rc = gl_upload_write(j->u, data, len, &j->werr);
	return rc < 0 ? -1 : rc; /* 1: the store is behind, pause */
}

static void import_resume(void *arg)
{
	gl_location_job *j = arg;
	if (j->fj)
		gl_fetch_resume(j->fj);
}

static void import_done(void *arg, json_t *af, const gl_err *err)
{
	gl_location_job *j = arg;
	json_t *fresh = NULL, *args, *out = NULL;
	gl_err e2 = { 0 };

	j->u = NULL;
	j->finishing = NULL;
	if (!af) {
		job_finish(j, NULL, err);
		return;
	}
	if (!j->ctx) {
		/* detached: nobody waits for the answer (nor its hook) */
	} else if (gl_core_reread(j->e, j->tg.af.type, j->id, "was deleted",
				  &fresh, &e2) == 0) {
		args = gl_core_blob_args(j->field, j->key, NULL);
		if (gl_core_hook(j->e, j->tg.af.ts, j->tg.af.type,
				 GL_HOOK_POST_ADD_LOCATION, j->ctx, fresh,
				 args, NULL, &e2) == 0)
			out = json_incref(af);
		json_decref(args);
	}
	json_decref(fresh);
	job_finish(j, out, out ? NULL : &e2);
}

static void fetch_done_run(void *arg);
static void fetch_done_steps(gl_location_job *j, const gl_fetch_result *res);

/* The fetch ended: the rest is database work, in a coroutine. */
typedef struct fetch_end {
	gl_location_job *j;
	gl_fetch_result res;
} fetch_end;

static void fetch_done(void *arg, const gl_fetch_result *res)
{
	fetch_end *fe = gl_xmalloc(sizeof *fe);

	fe->j = arg;
	fe->res = *res;
	fe->j->completing = 1;
	gl_coro_go(fetch_done_run, fe);
}

static void fetch_done_run(void *arg)
{
	fetch_end *fe = arg;

	fetch_done_steps(fe->j, &fe->res);
	free(fe);
}

static void fetch_done_steps(gl_location_job *j, const gl_fetch_result *res)
{
	gl_engine *e = j->e;
	gl_err err = { 0 };
	json_t *rec = NULL, *fresh = NULL, *cur, *af = NULL, *args;
	const gl_type *t = j->tg.af.type;
	char ct[256];
	int in_tx = 0;
	const char *given[] = { j->md5, j->sha1, j->sha256 };
	const char *got[] = { res->digest.md5, res->digest.sha1,
			      res->digest.sha256 };

	j->fj = NULL;
	if (j->internal && j->werr.status) {
		job_fail(j,
			 &j->werr); /* the upload's own refusal (413, ...) */
		return;
	}
	if (!res->ok) {
		err = res->err;
		if (!err.status)
			gl_fail(&err, 400, "BadRequest", "fetching %s failed",
				j->url);
		job_fail(j, &err);
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (given[i][0] && strcasecmp(given[i], got[i]) != 0) {
			gl_fail(&err, 400, "BadRequest",
				"%s mismatch for %s: supplied %s, computed %s",
				gl_blob_sum_names[i], j->url, given[i],
				got[i]);
			job_fail(j, &err);
			return;
		}
	}
	if (j->internal) {
		gl_upload *u = j->u;
		gl_upload_set_content_type(u, res->content_type);
		j->u = NULL;
		j->finishing =
			u; /* import_done may run before finish returns */
		if (gl_upload_finish(u, import_done, j, &err) < 0) {
			j->finishing = NULL;
			job_finish(j, NULL, &err);
		}
		return;
	}
	gl_media_type(res->content_type, ct, sizeof ct);
	if (gl_meta_begin(e->meta, &err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_core_reread(e, t, j->id, "was deleted", &fresh, &err) < 0)
		goto fail;
	cur = gl_blob_record(fresh, j->tg.f, j->key);
	if (!cur || !gl_streq(gl_json_str(cur, "status"), "saving") ||
	    !gl_streq(gl_json_str(cur, "url"), j->url)) {
		gl_fail(&err, 409, "Conflict",
			"The location of %s was changed meanwhile", j->field);
		goto fail_noprev;
	}
	if (gl_blob_same_sha_ok(&j->tg, fresh, res->digest.sha256, &err) < 0)
		goto fail;
	rec = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s?, s:s, s:s, s:s, "
			"s:I, s:s}",
			"status", "active", "size", (json_int_t)res->size,
			"md5", got[0], "sha1", got[1], "sha256", got[2],
			"external", 1, "content_type", ct[0] ? ct : NULL,
			"url", j->url, "store", "external", "location", j->url,
			"verified_at", (json_int_t)gl_now_us(),
			"verify_status", "ok");
	if (gl_meta_blob_set(e->meta, j->id, j->field, j->key ? j->key : "",
			     rec, &err) < 0 ||
	    gl_events_emit(e->events, "set_location", t->name, fresh, NULL,
			   &err) < 0 ||
	    gl_meta_commit(e->meta, &err) < 0)
		goto fail;
	in_tx = 0;
	gl_info("location %s registered for %s/%s%s%s: %lld bytes sha256 %s",
		j->url, j->id, j->field, j->key ? "/" : "",
		j->key ? j->key : "", (long long)res->size, got[2]);
	json_decref(fresh);
	fresh = NULL;
	if (!j->ctx) {
		/* detached: nobody waits for the answer (nor its hook) */
	} else if (gl_core_reread(e, t, j->id, "was deleted", &fresh, &err) ==
		   0) {
		args = gl_core_blob_args(j->field, j->key, NULL);
		if (gl_core_hook(e, j->tg.af.ts, t, GL_HOOK_POST_ADD_LOCATION,
				 j->ctx, fresh, args, NULL, &err) == 0)
			af = gl_core_output(e, j->ctx, j->tg.af.ts, t, fresh,
					    &err);
		json_decref(args);
	}
	json_decref(rec);
	json_decref(fresh);
	job_finish(j, af, af ? NULL : &err);
	return;
fail:
	if (in_tx) {
		gl_meta_rollback(e->meta);
		in_tx = 0;
	}
	json_decref(rec);
	json_decref(fresh);
	job_fail(j, &err);
	return;
fail_noprev:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(rec);
	json_decref(fresh);
	job_finish(j, NULL, &err);
}

/* clang-format off */
static const char *const restricted_schemes[] = { "file", "filesystem",
						  "swift+config", "sql", NULL };
static const char *const other_schemes[] = {
	"swift", "swift+http", "swift+https", "rbd", "sheepdog", "cinder",
	"vsphere", NULL
};
/* clang-format on */

static int scheme_in(const char *url, const char *const *list)
{
	for (int i = 0; list[i]; i++) {
		size_t n = strlen(list[i]);
		if (!strncasecmp(url, list[i], n) &&
		    !strncmp(url + n, "://", 3))
			return 1;
	}
	return 0;
}

static int is_http_url(const char *url)
{
	return !strncasecmp(url, "http://", 7) ||
	       !strncasecmp(url, "https://", 8);
}

/* The location body: an object with a 'url' and nothing unexpected (400
 * otherwise); sets j->internal from location_type. */
static int loc_body(gl_engine *e, const json_t *body, gl_location_job *j,
		    const char **url_out, gl_err *err)
{
	const char *url, *lt, *k;
	json_t *v;

	if (!json_is_object(body))
		return gl_fail(err, 400, "BadRequest",
			       "A location must be a JSON object with a 'url'");
	if (gl_core_json_ok(e, body, "The location", err) < 0)
		return -1;
	json_object_foreach((json_t *)body, k, v)
		if (strcmp(k, "url") && strcmp(k, "md5") &&
		    strcmp(k, "sha1") && strcmp(k, "sha256") &&
		    strcmp(k, "location_type"))
			return gl_fail(err, 400, "BadRequest",
				       "Unexpected key '%s' in the location",
				       k);
	url = gl_json_str(body, "url");
	if (!url || !*url)
		return gl_fail(err, 400, "BadRequest",
			       "The location needs a 'url'");
	if (strlen(url) > GL_URL_MAX)
		return gl_fail(err, 400, "BadRequest",
			       "The location URL is longer than %d characters",
			       GL_URL_MAX);
	lt = json_object_get(body, "location_type")
		     ? gl_json_str(body, "location_type")
		     : "external";
	if (!lt || (strcmp(lt, "external") && strcmp(lt, "internal")))
		return gl_fail(err, 400, "BadRequest",
			       "location_type must be 'external' or 'internal'");
	j->internal = !strcmp(lt, "internal");
	*url_out = url;
	return 0;
}

/* The URL's scheme for the kind of location, and the URL checks every
 * stored, redirected-to or fetched URL passes. */
static int loc_url_ok(const char *url, int internal, gl_err *err)
{
	gl_err why;

	if (internal) {
		if (scheme_in(url, restricted_schemes))
			return gl_fail(err, 403, "Forbidden",
				       "Internal locations with this scheme "
				       "are not allowed: %s",
				       url);
		if (!is_http_url(url))
			return gl_fail(err, 400, "BadRequest",
				       scheme_in(url, other_schemes)
					       ? "No store of glared serves the "
						 "scheme of %s"
					       : "Unknown scheme in %s",
				       url);
	} else if (!is_http_url(url)) {
		return gl_fail(err, 400, "BadRequest",
			       "External locations must be http or https "
			       "URLs: %.200s",
			       url);
	}
	if (gl_url_check(url, strlen(url), &why) < 0)
		return gl_fail(err, 400, "BadRequest",
			       "Invalid location URL: %s", why.msg);
	return 0;
}

/* The checksums the client gave, into j (trust mode too: a checksum is
 * stored, compared and sent in headers, so it must be one). */
static int loc_sums(const json_t *body, gl_location_job *j, gl_err *err)
{
	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(body, gl_blob_sum_names[i]);
		const char *s;

		if (!v || json_is_null(v))
			continue;
		s = json_string_value(v);
		if (!s)
			return gl_fail(err, 400, "BadRequest",
				       "%s must be a string",
				       gl_blob_sum_names[i]);
		if (!gl_hex_valid(s, json_string_length(v),
				  gl_blob_sum_len[i]))
			return gl_fail(err, 400, "BadRequest",
				       "%s must be %zu hexadecimal digits",
				       gl_blob_sum_names[i],
				       gl_blob_sum_len[i]);
		snprintf(i == 0   ? j->md5
			 : i == 1 ? j->sha1
				  : j->sha256,
			 gl_blob_sum_len[i] + 1, "%s", s);
	}
	return 0;
}

/* Trust mode (Glare's behaviour, for clients that need it): record what
 * was said, fetch nothing. An internal location is then served from its
 * URL through us (gl_download_open). Inside the transaction the caller
 * opened (*in_tx); the job finishes here when 0 is returned. */
static int loc_trust(gl_location_job *j, json_t *fresh, int *in_tx,
		     gl_err *err)
{
	gl_engine *e = j->e;
	json_t *rec, *af = NULL, *args;

	rec = json_pack("{s:s, s:n, s:s?, s:s?, s:s?, s:b, s:n, s:s, s:s, "
			"s:s}",
			"status", "active", "size", "md5",
			j->md5[0] ? j->md5 : NULL, "sha1",
			j->sha1[0] ? j->sha1 : NULL, "sha256",
			j->sha256[0] ? j->sha256 : NULL, "external",
			!j->internal, "content_type", "url", j->url, "store",
			"external", "location", j->url);
	if (gl_meta_blob_set(e->meta, j->id, j->field, j->key ? j->key : "",
			     rec, err) < 0 ||
	    gl_events_emit(e->events, "set_location", j->tg.af.type->name,
			   fresh, NULL, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0) {
		json_decref(rec);
		return -1;
	}
	*in_tx = 0;
	json_decref(rec);
	fresh = NULL;
	if (gl_core_reread(e, j->tg.af.type, j->id, "was deleted", &fresh,
			   err) < 0)
		return -1;
	args = gl_core_blob_args(j->field, j->key, NULL);
	if (gl_core_hook(e, j->tg.af.ts, j->tg.af.type,
			 GL_HOOK_POST_ADD_LOCATION, j->ctx, fresh, args, NULL,
			 err) == 0)
		af = gl_core_output(e, j->ctx, j->tg.af.ts, j->tg.af.type,
				    fresh, err);
	json_decref(args);
	json_decref(fresh);
	j->next = e->jobs;
	e->jobs = j;
	job_finish(j, af, af ? NULL : err);
	return 0;
}

/* An external location: reserve the space (the field limit, folder space
 * and quotas) with a "saving" placeholder, committed; *limit: the bytes
 * the fetch may bring. */
static int loc_reserve(gl_location_job *j, const json_t *fresh, int64_t *limit,
		       int *in_tx, gl_err *err)
{
	gl_engine *e = j->e;
	json_t *rec;
	char why[256];

	if (gl_blob_allowed(e, &j->tg, fresh, limit, why, sizeof why, err) < 0)
		return -1;
	if (*limit < 0)
		return gl_fail(err, 413, "RequestEntityTooLarge",
			       "No space left: %s", why);
	rec = json_pack("{s:s, s:I, s:I, s:b, s:s, s:s, s:s}", "status",
			"saving", "reserved", (json_int_t)*limit, "size",
			(json_int_t)*limit, "external", 1, "url", j->url,
			"store", "external", "temp", "");
	gl_owner_stamp(rec);
	if (gl_meta_blob_set(e->meta, j->id, j->field, j->key ? j->key : "",
			     rec, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0) {
		json_decref(rec);
		return -1;
	}
	*in_tx = 0;
	json_decref(rec);
	return 0;
}

/* An internal location is an upload whose body comes from the URL (the
 * upload enforces its own limits and restores its own record). */
static int loc_import_begin(gl_location_job *j, const char *type, int has_key,
			    gl_err *err)
{
	j->u = gl_upload_begin(j->e, j->ctx, type, j->id, j->field, j->key,
			       has_key, "application/octet-stream", -1, err);
	if (!j->u)
		return -1;
	gl_upload_set_event(j->u, "set_location");
	gl_upload_on_resume(j->u, import_resume, j);
	return 0;
}

/* Fetch the URL (at most limit bytes, -1: the upload's limits); the
 * placeholder goes again if the fetch cannot start. */
static int loc_fetch_start(gl_location_job *j, int64_t limit, gl_err *err)
{
	gl_engine *e = j->e;
	gl_fetch_opts fo = { .max_bytes = limit, .range = NULL };

	if (!gl_core_fetch(e, err)) {
		job_restore(j);
		return -1;
	}
	j->fj = gl_fetch_start(e->fetch, j->url, &fo, fetch_data, fetch_done,
			       j, err);
	if (!j->fj) {
		job_restore(j);
		return -1;
	}
	j->next = e->jobs;
	e->jobs = j;
	return 0;
}

/* Checks that need no transaction (body, visibility, policy, URL, field,
 * change rules, checksums, the pre hook), then one of three pipelines:
 * trust (record at once), external (placeholder, fetch, verify, record;
 * fetch_done) or internal (an upload fed by the fetch; import_done). */
int gl_location_add(gl_engine *e, const gl_ctx *ctx, const char *type,
		    const char *id, const char *field, const char *key,
		    int has_key, const json_t *body, gl_upload_done_fn done,
		    void *arg, gl_err *err)
{
	gl_location_job *j = calloc(1, sizeof *j);
	const char *url = NULL, *verification;
	json_t *fresh = NULL, *args;
	const gl_type_conf *tc;
	int64_t limit = -1;
	int in_tx = 0, rc;

	if (!j)
		return gl_fail(err, 500, NULL, "out of memory");
	j->e = e;
	j->ctx = ctx;
	j->done = done;
	j->arg = arg;
	if (loc_body(e, body, j, &url, err) < 0)
		goto fail;
	if (gl_core_load(e, ctx, type, id, 1, &j->tg.af, err) < 0)
		goto fail;
	if (gl_core_policy(e, ctx,
			   j->internal ? "artifact:set_internal_location"
				       : "artifact:set_location",
			   j->tg.af.doc, err) < 0)
		goto fail;
	if (loc_url_ok(url, j->internal, err) < 0)
		goto fail;
	j->id = strdup(id);
	j->field = strdup(field);
	j->key = key ? strdup(key) : NULL;
	j->url = strdup(url);
	if (gl_blob_resolve(&j->tg, j->field, j->key, has_key, 1, err) < 0)
		goto fail;
	if (gl_core_change_allowed(j->tg.af.type, j->tg.af.doc, field, err) <
	    0)
		goto fail;
	tc = gl_conf_type(e->conf, j->tg.af.type->name);
	verification = tc->external_location_verification
			       ? tc->external_location_verification
			       : e->conf->external_location_verification;
	if (loc_sums(body, j, err) < 0)
		goto fail;
	if (!j->internal && !strcmp(verification, "trust") && !j->md5[0]) {
		gl_fail(err, 400, "BadRequest",
			"An md5 checksum is required for external locations "
			"(trust mode)");
		goto fail;
	}
	args = gl_core_blob_args(field, j->key, body);
	rc = gl_core_hook(e, j->tg.af.ts, j->tg.af.type,
			  GL_HOOK_PRE_ADD_LOCATION, ctx, j->tg.af.doc, args,
			  NULL, err);
	json_decref(args);
	if (rc < 0)
		goto fail;

	if (gl_meta_begin(e->meta, err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_core_reread(e, j->tg.af.type, id, "not found", &fresh, err) < 0)
		goto fail;
	if (gl_blob_record(fresh, j->tg.f, j->key)) {
		gl_fail(err, 409, "Conflict",
			"Blob '%s%s%s' already has a value", field,
			j->key ? "/" : "", j->key ? j->key : "");
		goto fail;
	}
	if (!strcmp(verification, "trust")) {
		json_t *f = fresh;
		fresh = NULL;
		rc = loc_trust(j, f, &in_tx, err);
		json_decref(f);
		if (rc < 0)
			goto fail;
		return 0;
	}
	if (j->internal) {
		gl_meta_rollback(e->meta);
		in_tx = 0;
		if (loc_import_begin(j, type, has_key, err) < 0)
			goto fail;
	} else if (loc_reserve(j, fresh, &limit, &in_tx, err) < 0) {
		goto fail;
	}
	json_decref(fresh);
	fresh = NULL;
	if (loc_fetch_start(j, limit, err) < 0)
		goto fail;
	return 0;
fail:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	job_free(j);
	return -1;
}

static void drop_run(void *arg)
{
	job_drop(arg);
}

void gl_location_cancel(gl_engine *e, void *arg)
{
	for (gl_location_job *j = e->jobs; j; j = j->next) {
		if (j->arg != arg)
			continue;
		if (j->completing) {
			/* its coroutine finishes it for no one (the caller
			 * and its context are gone); an import's upload still
			 * ends in import_done, which frees the job */
			j->done = NULL;
			j->ctx = NULL;
			if (j->finishing)
				gl_upload_orphan(j->finishing);
			return;
		}
		j->ctx = NULL;
		gl_coro_go(drop_run, j); /* the restore is database work */
		return;
	}
}

int gl_location_delete_blob(gl_engine *e, const gl_ctx *ctx, const char *type,
			    const char *id, const char *field, const char *key,
			    int has_key, json_t **out, gl_err *err)
{
	gl_target tg;
	json_t *fresh = NULL;
	int rc = -1, in_tx = 0;

	memset(&tg, 0, sizeof tg);
	if (gl_core_load(e, ctx, type, id, 1, &tg.af, err) < 0)
		return -1;
	if (gl_core_policy(e, ctx, "artifact:delete_blob", tg.af.doc, err) < 0)
		goto out;
	if (gl_blob_resolve(&tg, field, key, has_key, 1, err) < 0)
		goto out;
	if (!tg.cur) {
		gl_fail(err, 404, "NotFound", "Blob '%s%s%s' is not set",
			field, tg.key ? "/" : "", tg.key ? tg.key : "");
		goto out;
	}
	if (!json_is_true(json_object_get(tg.cur, "external"))) {
		gl_fail(err, 403, "Forbidden",
			"Only blobs with an external location can be deleted; "
			"'%s' holds uploaded data",
			field);
		goto out;
	}
	if (gl_streq(gl_json_str(tg.cur, "status"), "saving")) {
		gl_fail(err, 409, "Conflict",
			"The location of '%s' is being registered", field);
		goto out;
	}
	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	if (gl_meta_blob_delete(e->meta, id, field, tg.key ? tg.key : "",
				err) < 0 ||
	    gl_events_emit(e->events, "delete_blob", tg.af.type->name,
			   tg.af.doc, NULL, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0)
		goto out;
	in_tx = 0;
	if (gl_core_reread(e, tg.af.type, id, "was deleted", &fresh, err) < 0)
		goto out;
	*out = gl_core_output(e, ctx, tg.af.ts, tg.af.type, fresh, err);
	rc = *out ? 0 : -1;
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	gl_target_clear(&tg);
	return rc;
}

/* ---- heartbeats ---------------------------------------------------------------- */

int gl_location_owns(gl_engine *e, const char *id, const char *field,
		     const char *key)
{
	for (gl_location_job *j = e->jobs; j; j = j->next)
		if (j->fj && gl_streq(j->id, id) &&
		    gl_streq(j->field, field) &&
		    gl_streq(j->key ? j->key : "", key ? key : ""))
			return 1;
	return 0;
}

static void job_beat(gl_engine *e, gl_location_job *j);

void gl_location_heartbeat_all(gl_engine *e)
{
	gl_location_job **all;
	size_t n = 0, k = 0;

	/* the list changes while the records are written: hold a copy */
	for (gl_location_job *j = e->jobs; j; j = j->next)
		n++;
	if (!n)
		return;
	all = gl_xcalloc(n, sizeof *all);
	for (gl_location_job *j = e->jobs; j; j = j->next) {
		j->holds++;
		all[k++] = j;
	}
	for (size_t i = 0; i < n; i++) {
		gl_location_job *j = all[i];

		if (!j->gone && j->fj)
			job_beat(e, j);
		if (--j->holds == 0 && j->gone)
			job_mem_free(j);
	}
	free(all);
}

static void job_beat(gl_engine *e, gl_location_job *j)
{
	json_t *doc = NULL, *cur, *rec;
	gl_err err = { 0 };

	if (gl_meta_begin(e->meta, &err) < 0)
		return;
	if (gl_meta_get(e->meta, j->tg.af.type, j->id, &doc, &err) == 0 &&
	    (cur = gl_blob_record(doc, j->tg.f, j->key)) != NULL &&
	    gl_streq(gl_json_str(cur, "status"), "saving") &&
	    gl_streq(gl_json_str(cur, "url"), j->url)) {
		rec = json_deep_copy(cur);
		json_object_set_new(rec, "heartbeat",
				    json_integer(gl_now_us()));
		if (gl_meta_blob_set(e->meta, j->id, j->field,
				     j->key ? j->key : "", rec, &err) == 0 &&
		    gl_meta_commit(e->meta, &err) == 0) {
			json_decref(rec);
			json_decref(doc);
			return;
		}
		json_decref(rec);
	}
	gl_meta_rollback(e->meta);
	json_decref(doc);
}

/* Stop: registrations in flight are dropped and their placeholders put
 * back. */
void gl_location_free_all(gl_engine *e)
{
	while (e->jobs)
		job_drop(e->jobs);
}
