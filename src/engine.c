/* engine.c - the engine's life cycle: it opens the type runtime, the
 * metadata store, the blob store and the outbox, starts and stops the
 * maintenance, and hands the pieces to the layers above.
 */
#include "engine_priv.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>

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
	if (gl_blob_engine_init(e, err) < 0)
		goto fail;
	return e;
fail:
	gl_engine_free(e);
	return NULL;
}

void gl_engine_free(gl_engine *e)
{
	if (!e)
		return;
	gl_blob_engine_free(e);
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

struct event_base *gl_engine_base(gl_engine *e) { return e->base; }
struct gl_events *gl_engine_events(gl_engine *e) { return e->events; }

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

const gl_conf *gl_engine_conf(gl_engine *e) { return e->conf; }
