/* engine.c - the engine's life cycle: it opens the type runtime, the
 * metadata store, the blob store and the outbox, starts and stops the
 * maintenance, and hands the pieces to the layers above.
 */
#include "core.h"
#include "engine.h"
#include "fetch.h"
#include "location.h"
#include "log.h"
#include "maint.h"
#include "s3.h"
#include "upload.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int stores_open(gl_engine *e, gl_err *err);
static void stores_close(gl_engine *e);

/* ---- life cycle of the engine ------------------------------------------- */

gl_engine *gl_engine_new(gl_conf *conf, gl_policy *pol,
			 struct event_base *base, gl_err *err)
{
	gl_engine *e = calloc(1, sizeof *e);

	if (!e) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	e->conf = conf;
	e->policy = pol;
	e->base = base;
	e->types = gl_types_load(conf, err);
	if (!e->types)
		goto fail;
	e->meta = gl_meta_open(conf, 0, err);
	if (!e->meta)
		goto fail;
	e->store = gl_store_open(conf->filesystem_store_datadir, err);
	if (!e->store)
		goto fail;
	e->events = gl_events_new(conf, e->meta, base, err);
	if (!e->events)
		goto fail;
	if (stores_open(e, err) < 0 || gl_maint_init(e, err) < 0)
		goto fail;
	return e;
fail:
	gl_engine_free(e);
	return NULL;
}

void gl_engine_stop(gl_engine *e)
{
	if (e)
		gl_meta_stop(e->meta);
}

void gl_engine_free(gl_engine *e)
{
	if (!e)
		return;
	/* work in flight first: registrations and uploads put their
	 * placeholders back, then the clients they used go. Registrations
	 * first: an import's job lets go of its upload, which the uploads'
	 * abort then frees (the other order leaves the job a freed one) */
	gl_location_free_all(e);
	gl_upload_abort_all(e);
	stores_close(e);
	gl_maint_free(e);
	gl_events_free(e->events);
	if (e->types)
		gl_types_unref(e->types);
	gl_meta_close(e->meta);
	if (e->store)
		gl_store_close(e->store);
	free(e);
}

int gl_engine_reload_types(gl_engine *e, gl_err *err)
{
	gl_types *nt = gl_types_load(e->conf, err);
	if (!nt)
		return -1;
	/* requests in flight hold their own reference to the old set */
	gl_types_unref(e->types);
	e->types = nt;
	return 0;
}

int gl_engine_recover(gl_engine *e, gl_err *err)
{
	return gl_maint_recover(e, err);
}

void gl_engine_maintain(gl_engine *e)
{
	gl_maint_soon(e);
}

struct event_base *gl_engine_base(gl_engine *e)
{
	return e->base;
}
struct gl_events *gl_engine_events(gl_engine *e)
{
	return e->events;
}

int gl_engine_batch(gl_engine *e, int on, gl_err *err)
{
	return gl_meta_batch(e->meta, on, err);
}

int gl_engine_attach_loop(gl_engine *e, gl_err *err)
{
	return gl_meta_attach_loop(e->meta, e->base, err);
}

int gl_engine_when_durable(gl_engine *e, void (*fn)(void *arg, int ok),
			   void *arg)
{
	return gl_meta_when_durable(e->meta, fn, arg);
}

void gl_engine_durable_cancel(gl_engine *e, void *arg)
{
	gl_meta_durable_cancel(e->meta, arg);
}

const gl_conf *gl_engine_conf(gl_engine *e)
{
	return e->conf;
}

/* ---- the blob stores ------------------------------------------------------ */

static int store_name_ok(const char *s)
{
	static const char *const ok[] = { "file", "filesystem", "database",
					  "sql",  "s3",         NULL };
	for (int i = 0; ok[i]; i++)
		if (!strcasecmp(s, ok[i]))
			return 1;
	return 0;
}

/* The S3 client, when a store in the configuration is S3. */
static int stores_open(gl_engine *e, gl_err *err)
{
	const gl_conf *c = e->conf;
	int want_s3 = !strcasecmp(c->default_store, "s3");

	if (!store_name_ok(c->default_store))
		return gl_fail(err, 500, "ConfigError",
			       "[glance_store] default_store = %s: glared serves "
			       "file, database and s3",
			       c->default_store);
	for (int i = 0; i < c->ntypes; i++) {
		const char *s = c->types[i].default_store;
		if (!s)
			continue;
		if (!store_name_ok(s))
			return gl_fail(err, 500, "ConfigError",
				       "[artifact_type:%s] default_store = %s: "
				       "glared serves file, database and s3",
				       c->types[i].name, s);
		want_s3 |= !strcasecmp(s, "s3");
	}
	if (want_s3) {
		gl_s3_conf sc = {
			.endpoint = c->s3_store_host,
			.region = c->s3_store_region,
			.bucket = c->s3_store_bucket,
			.access_key = c->s3_store_access_key,
			.secret_key = c->s3_store_secret_key,
			.prefix = c->s3_store_prefix,
			.connect_timeout = c->fetch_connect_timeout,
			.timeout = c->s3_store_timeout,
		};
		if (!sc.endpoint || !sc.bucket || !sc.access_key ||
		    !sc.secret_key)
			return gl_fail(err, 500, "ConfigError",
				       "the s3 store needs [glance_store] "
				       "s3_store_host, s3_store_bucket, "
				       "s3_store_access_key and "
				       "s3_store_secret_key");
		e->s3 = gl_s3_new(e->base, &sc, err);
		if (!e->s3)
			return -1;
	}
	return 0;
}

static void stores_close(gl_engine *e)
{
	if (e->fetch) {
		gl_fetch_free(e->fetch);
		e->fetch = NULL;
	}
	/* requests in flight are dropped; cleanups it could not send go to
	 * the cleanup queue (its hook) */
	if (e->s3)
		gl_s3_free(e->s3);
	e->s3 = NULL;
}
