/* test_engine.c - the engine's answers when the metadata store fails in
 * the middle of an operation.
 *
 * A real engine (the stock images type, sqlite in a temp dir) runs every
 * step against the real store; only the store's artifact read and write
 * are wrapped: the wrapper passes each call through to the sqlite backend,
 * except the one armed call, which fails as a database error does (500
 * DBError), or (put_race) is preceded by a real write of the same row.
 * sqlite offers no way to make one read inside a write transaction fail on
 * demand (a lock fails the BEGIN before it, a read-only file only the
 * writes after it), hence the wrapper; nothing else is replaced.
 *
 * The store's error must reach the caller as it is: not a 409 "changed
 * meanwhile" or a 404 "not found", which tell the client to do something
 * else than retry, and never a -1 without an error.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core.h"
#include "engine.h"
#include "meta_backend.h"
#include "unit_engine.h"

typedef unit_engine fx;

static const struct gl_meta_ops *real_ops;
static struct gl_meta_ops faulty_ops;
static int get_calls, fail_at, put_mode;

enum { PUT_PASS, PUT_FAIL, PUT_RACE };

static int faulty_get(gl_meta *m, const gl_type *type, const char *id,
		      json_t **af, gl_err *err)
{
	if (++get_calls == fail_at)
		return gl_fail(err, 500, NULL, "DBError: injected fault");
	return real_ops->get(m, type, id, af, err);
}

static int faulty_put(gl_meta *m, const gl_type *type, json_t *af,
		      const gl_vkey *vk, int insert, gl_err *err)
{
	const char *id = json_string_value(json_object_get(af, "id"));

	if (put_mode == PUT_FAIL)
		return gl_fail(err, 500, NULL, "DBError: injected fault");
	/* another writer got there first: the row's revision moves on */
	if (put_mode == PUT_RACE &&
	    real_ops->set_status(m, id,
				 json_string_value(
					 json_object_get(af, "status")),
				 err) < 0)
		return -1;
	return real_ops->put(m, type, af, vk, insert, err);
}

/* Fail the n-th artifact read from now on (0: none; get_calls keeps the
 * count of the armed stretch). */
static void arm(fx *f, int n)
{
	if (n)
		get_calls = 0;
	fail_at = n;
	if (!real_ops) {
		real_ops = f->e->meta->ops;
		faulty_ops = *real_ops;
		faulty_ops.get = faulty_get;
		faulty_ops.put = faulty_put;
	}
	f->e->meta->ops = n || put_mode ? &faulty_ops : real_ops;
}

static void arm_put(fx *f, int mode)
{
	put_mode = mode;
	arm(f, 0);
}

static gl_engine *fx_open(fx *f)
{
	return unit_engine_open(f, "images");
}

static void fx_close(fx *f)
{
	if (real_ops && f->e)
		f->e->meta->ops = real_ops;
	real_ops = NULL;
	unit_engine_close(f);
}

/* A drafted image that may be activated; its id into id. */
static int new_image(fx *f, char *id, size_t idlen)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "name", "img",
				 "container_format", "bare", "disk_format",
				 "raw");
	json_t *out = NULL;
	int rc = gl_art_create(f->e, &f->ctx, "images", body, &out, &f->err);

	json_decref(body);
	if (rc == 0)
		snprintf(id, idlen, "%s",
			 json_string_value(json_object_get(out, "id")));
	json_decref(out);
	return rc;
}

static const char *status_of(fx *f, const char *id)
{
	static char st[32];
	json_t *out = NULL;

	st[0] = 0;
	if (gl_art_show(f->e, &f->ctx, "images", id, &out, &f->err) == 0)
		snprintf(st, sizeof st, "%s",
			 json_string_value(json_object_get(out, "status")));
	json_decref(out);
	return st;
}

/* Activation re-reads the artifact inside its write transaction (uploads
 * in progress hold it back); that read failing was a 409. */
UNIT_TEST(update_store_error_is_500)
{
	fx f;
	char id[64];
	json_t *patch, *out = NULL;
	int rc;

	CHECK(fx_open(&f));
	CHECK(new_image(&f, id, sizeof id) == 0);
	patch = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path",
			  "/status", "value", "active");
	arm(&f, 2); /* the first read is the load */
	memset(&f.err, 0, sizeof f.err);
	rc = gl_art_update(f.e, &f.ctx, "images", id, patch, &out, &f.err);
	arm(&f, 0);
	CHECK_INT(rc, -1);
	CHECK(out == NULL);
	CHECK_INT(get_calls, 2);
	CHECK_INT(f.err.status, 500);
	CHECK_STR(f.err.msg, "DBError: injected fault");
	/* nothing changed; and the same patch then works */
	CHECK_STR(status_of(&f, id), "drafted");
	CHECK(gl_art_update(f.e, &f.ctx, "images", id, patch, &out, &f.err) ==
	      0);
	CHECK_STR(json_string_value(json_object_get(out, "status")), "active");
	json_decref(out);
	json_decref(patch);
	fx_close(&f);
}

/* Delete re-reads the artifact inside its write transaction; that read
 * failing was a 404. */
UNIT_TEST(delete_store_error_is_500)
{
	fx f;
	char id[64];
	int rc;

	CHECK(fx_open(&f));
	CHECK(new_image(&f, id, sizeof id) == 0);
	arm(&f, 2);
	memset(&f.err, 0, sizeof f.err);
	rc = gl_art_delete(f.e, &f.ctx, "images", id, &f.err);
	arm(&f, 0);
	CHECK_INT(rc, -1);
	CHECK_INT(get_calls, 2);
	CHECK_INT(f.err.status, 500);
	CHECK_STR(f.err.msg, "DBError: injected fault");
	CHECK_STR(status_of(&f, id), "drafted");
	CHECK(gl_art_delete(f.e, &f.ctx, "images", id, &f.err) == 0);
	CHECK(gl_art_show(f.e, &f.ctx, "images", id, &(json_t *){ NULL },
			  &f.err) == -1);
	CHECK_INT(f.err.status, 404);
	fx_close(&f);
}

/* The first read (the load) failing is the store's error too, not "not
 * found". */
UNIT_TEST(load_store_error_is_500)
{
	fx f;
	char id[64];
	int rc;

	CHECK(fx_open(&f));
	CHECK(new_image(&f, id, sizeof id) == 0);
	arm(&f, 1);
	memset(&f.err, 0, sizeof f.err);
	rc = gl_art_delete(f.e, &f.ctx, "images", id, &f.err);
	arm(&f, 0);
	CHECK_INT(rc, -1);
	CHECK_INT(f.err.status, 500);
	CHECK_STR(status_of(&f, id), "drafted");
	fx_close(&f);
}

/* A description patch of a new image with the store's write in mode; its
 * answer in f->err, the image's id into id. */
static int patch_with_put(fx *f, int mode, char *id, size_t idlen)
{
	json_t *patch, *out = NULL;
	int rc;

	if (new_image(f, id, idlen) < 0)
		return -2;
	patch = json_pack("[{s:s, s:s, s:s}]", "op", "replace", "path",
			  "/description", "value", "d");
	arm_put(f, mode);
	memset(&f->err, 0, sizeof f->err);
	rc = gl_art_update(f->e, &f->ctx, "images", id, patch, &out, &f->err);
	arm_put(f, PUT_PASS);
	json_decref(patch);
	json_decref(out);
	return rc;
}

/* The artifact write failing is the store's error, not the 409 a
 * concurrent change gets; nothing is written. */
UNIT_TEST(put_store_error_is_500)
{
	fx f;
	char id[64];
	json_t *out = NULL, *d = json_string("d");

	CHECK(fx_open(&f));
	CHECK_INT(patch_with_put(&f, PUT_FAIL, id, sizeof id), -1);
	CHECK_INT(f.err.status, 500);
	CHECK_STR(f.err.msg, "DBError: injected fault");
	CHECK(gl_art_show(f.e, &f.ctx, "images", id, &out, &f.err) == 0);
	CHECK(!json_equal(json_object_get(out, "description"), d));
	json_decref(out);
	json_decref(d);
	fx_close(&f);
}

/* A row changed between the read and the write is the 409 of the
 * revision check, with its message. */
UNIT_TEST(put_revision_race_is_409)
{
	fx f;
	char id[64], want[160];

	CHECK(fx_open(&f));
	CHECK_INT(patch_with_put(&f, PUT_RACE, id, sizeof id), -1);
	CHECK_INT(f.err.status, 409);
	CHECK_STR(f.err.type, "Conflict");
	snprintf(want, sizeof want,
		 "Artifact %s was changed by a concurrent request", id);
	CHECK_STR(f.err.msg, want);
	fx_close(&f);
}

/* clang-format off */
UNIT_SUITE(engine,
	UNIT_CASE(update_store_error_is_500),
	UNIT_CASE(delete_store_error_is_500),
	UNIT_CASE(load_store_error_is_500),
	UNIT_CASE(put_store_error_is_500),
	UNIT_CASE(put_revision_race_is_409));
/* clang-format on */
