/* api_blobs.c - handlers for blob upload (E8, E9), locations (E10),
 * download (E11) and external blob deletion (E12); the ids are those of
 * docs/glare-contract.md "Endpoints".
 *
 * Uploads stream: the engine checks everything it can from the request
 * head before the body is accepted (so "Expect: 100-continue" clients send
 * nothing when the answer is no), then every body piece goes straight into
 * the engine's upload. Downloads leave from the local store with sendfile,
 * from the database store in bounded pieces as the socket drains, or, for
 * external blobs, as a 301 or a verified proxy stream.
 */
#include "api.h"
#include "engine.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/queue.h>
#include <event2/keyvalq_struct.h>

#define E(ar) ((ar)->app->engine)
#define LOCATION_MEDIA "application/vnd+openstack.glare-custom-location+json"
#define DB_PIECE (64 * 1024)
#define OUT_MAX (4 << 20) /* stop feeding a response above this */

typedef struct blob_op {
	gl_api_req *ar;
	gl_upload *u;
	gl_upload *finishing; /* finish in progress (async stores) */
	int location_pending;
	gl_download dl;
	int64_t off, end;
	/* an outside blob (external URL, S3) */
	gl_download_read *rd;
	int paused;
	gl_err refused; /* why the upload took no more bytes */
	int feeding;    /* db_feed's coroutine is at work */
} blob_op;

static void op_cleanup(gl_api_req *ar)
{
	blob_op *op = ar->handler_data;

	if (!op)
		return;
	if (op->u)
		gl_upload_abort(op->u);
	if (op->finishing)
		gl_upload_detach(op->finishing); /* it ends without us */
	gl_download_read_cancel(op->rd);
	if (op->location_pending)
		gl_location_cancel(E(ar), ar);
	gl_download_free(&op->dl);
	free(op);
	ar->handler_data = NULL;
}

static blob_op *op_new(gl_api_req *ar)
{
	blob_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->ar = ar;
	op->dl.fd = -1;
	ar->handler_data = op;
	ar->cleanup = op_cleanup;
	return op;
}

/* ---- upload ------------------------------------------------------------------ */

static void up_resume(void *arg)
{
	gl_api_req *ar = arg;
	gl_http_body_resume(ar->http);
}

/* The previous record back (database work), then the refusal. */
static void up_refuse(gl_api_req *ar)
{
	blob_op *op = ar->handler_data;
	gl_upload *u = op->u;

	op->u = NULL;
	gl_upload_abort(u);
	gl_api_reply_fault(ar, &op->refused);
}

static int up_data(gl_http_req *r, const char *d, size_t n, void *arg)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;
	int rc = gl_upload_write(op->u, d, n, &op->refused);

	if (rc < 0) {
		gl_api_go(ar, up_refuse);
		return GL_HTTP_BODY_ABORT;
	}
	/* the store is behind (S3 parts): the socket waits, TCP pushes back */
	return rc > 0 ? GL_HTTP_BODY_PAUSE : GL_HTTP_BODY_OK;
}

static void up_finished(void *arg, json_t *af, const gl_err *err)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;

	op->finishing = NULL;
	if (af)
		gl_api_reply_json(ar, 200, json_incref(af));
	else
		gl_api_reply_fault(ar, err);
}

static void up_finish(gl_api_req *ar)
{
	blob_op *op = ar->handler_data;
	gl_upload *u = op->u;
	gl_err err = { 0 };

	op->u = NULL;
	/* up_finished may run before gl_upload_finish returns */
	op->finishing = u;
	if (gl_upload_finish(u, up_finished, ar, &err) < 0) {
		op->finishing = NULL;
		gl_api_reply_fault(ar, &err);
	}
}

static void up_done(gl_http_req *r, void *arg)
{
	gl_api_go(arg, up_finish);
}

static void loc_done(void *arg, json_t *af, const gl_err *err)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;

	op->location_pending = 0;
	if (af)
		gl_api_reply_json(ar, 200, json_incref(af));
	else
		gl_api_reply_fault(ar, err);
}

static void loc_body(gl_api_req *ar, json_t *body)
{
	blob_op *op = ar->handler_data;
	gl_err err = { 0 };

	/* done may run before add_location returns: mark first */
	op->location_pending = 1;
	if (gl_location_add(E(ar), &ar->ctx, ar->type, ar->id, ar->field,
			    ar->key, ar->has_key, body, loc_done, ar,
			    &err) < 0) {
		op->location_pending = 0;
		gl_api_reply_fault(ar, &err);
	}
}

void gl_h_blob_put(gl_api_req *ar)
{
	const char *ct = gl_http_header(ar->http, "Content-Type");
	char mt[256];
	blob_op *op;
	gl_err err = { 0 };

	if (!ct) {
		gl_api_fail(ar, 400, "BadRequest",
			    "Content-Type must be specified");
		return;
	}
	op = op_new(ar);
	if (!op) {
		gl_api_fail(ar, 500, NULL, "out of memory");
		return;
	}
	gl_media_type(ct, mt, sizeof mt);
	if (!strcmp(mt, LOCATION_MEDIA)) {
		gl_api_read_json(ar, loc_body);
		return;
	}
	op->u = gl_upload_begin(E(ar), &ar->ctx, ar->type, ar->id, ar->field,
				ar->key, ar->has_key, ct,
				gl_http_content_length(ar->http), &err);
	if (!op->u) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	gl_upload_on_resume(op->u, up_resume, ar);
	gl_http_body_accept(ar->http, up_data, up_done, ar);
}

/* ---- download ---------------------------------------------------------------- */

static json_t *headers_json(gl_http_req *r)
{
	json_t *h = json_object();
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, gl_http_headers(r), next)
	{
		char name[256];
		size_t i;
		for (i = 0; kv->key[i] && i < sizeof name - 1; i++)
			name[i] = (char)tolower((unsigned char)kv->key[i]);
		name[i] = '\0';
		json_object_set_new(h, name, gl_json_text(kv->value));
	}
	return h;
}

/* The one Content-Type of a download's answer, set where it is sent (a
 * fault on the way brings its own): the blob's for its bytes (also on
 * 206, 304 and HEAD), application/json on Glare's 301 to external data. */
static void blob_ctype(gl_api_req *ar, const gl_download *dl)
{
	gl_http_set_header(ar->http, "Content-Type",
			   dl->content_type[0] ? dl->content_type
					       : "application/octet-stream");
}

static void checksum_headers(gl_api_req *ar, const gl_download *dl)
{
	gl_http_req *r = ar->http;

	if (dl->md5[0])
		gl_http_set_header(r, "Content-MD5", dl->md5);
	if (dl->sha1[0])
		gl_http_set_header(r, "X-Openstack-Glare-Content-SHA1",
				   dl->sha1);
	if (dl->sha256[0])
		gl_http_set_header(r, "X-Openstack-Glare-Content-SHA256",
				   dl->sha256);
}

static int etag_matches(const char *list, const char *etag)
{
	/* If-None-Match / If-Range: "*", or a list of (possibly weak)
	 * entity tags */
	const char *p = list;
	size_t n = strlen(etag);

	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (!strncmp(p, etag, n))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* Single "bytes=" range: 1 = range set, 0 = serve whole, -1 = 416. */
static int parse_range(const char *h, int64_t size, int64_t *a, int64_t *b)
{
	const char *p;
	char *end;
	long long x, y;

	if (strncasecmp(h, "bytes=", 6) != 0)
		return 0;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return 0; /* several ranges: the whole body is allowed */
	if (*p == '-') {
		y = strtoll(p + 1, &end, 10);
		if (end == p + 1 || *end || y < 0)
			return 0;
		if (y == 0 || size == 0)
			return -1;
		*a = y >= size ? 0 : size - y;
		*b = size - 1;
		return 1;
	}
	x = strtoll(p, &end, 10);
	if (end == p || *end != '-' || x < 0)
		return 0;
	p = end + 1;
	if (!*p) {
		y = size - 1;
	} else {
		y = strtoll(p, &end, 10);
		if (*end || y < x)
			return 0;
		if (y >= size)
			y = size - 1;
	}
	if (x >= size)
		return -1;
	*a = x;
	*b = y;
	return 1;
}

/* Pieces from the database store while the socket takes them: reads
 * wait for the database, so later rounds (on drain) run in a coroutine,
 * one at a time. */
static void db_feed(gl_http_req *r, void *arg)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;
	char *buf = malloc(DB_PIECE);
	gl_err err = { 0 };

	op->feeding = 1;
	if (!buf) {
		gl_http_reply_abort(r);
		gl_api_finish(ar);
		return;
	}
	while (op->off < op->end && gl_http_output_pending(r) < OUT_MAX) {
		int64_t want = op->end - op->off;
		int64_t n;
		if (want > DB_PIECE)
			want = DB_PIECE;
		n = gl_download_read_data(E(ar), op->dl.location, op->off, buf,
					  want, &err);
		if (n <= 0) {
			gl_error("download %s: database store read: %s",
				 ar->id, err.msg);
			free(buf);
			gl_http_reply_abort(r);
			gl_api_finish(ar);
			return;
		}
		gl_http_reply_data(r, buf, (size_t)n);
		op->off += n;
	}
	free(buf);
	if (op->off >= op->end) {
		gl_http_on_drain(r, NULL, NULL);
		gl_http_reply_end(r);
		gl_api_finish(ar);
		return;
	}
	op->feeding = 0;
}

static void db_feed_step(gl_api_req *ar)
{
	db_feed(ar->http, ar);
}

static void db_drain(gl_http_req *r, void *arg)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;

	if (!op->feeding)
		gl_api_go(ar, db_feed_step);
}

/* -- outside bytes (an external URL, the S3 store): the engine's reader
 * fetches, judges and flags; this only paces the socket --------------------- */

static void rd_resume(gl_http_req *r, void *arg)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;
	if (op->paused && op->rd && gl_http_output_pending(r) < OUT_MAX / 2) {
		op->paused = 0;
		gl_download_read_resume(op->rd);
	}
}

static int rd_data(void *arg, const char *d, size_t n)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;

	gl_http_reply_data(ar->http, d, n);
	if (gl_http_output_pending(ar->http) > OUT_MAX) {
		op->paused = 1;
		return 1;
	}
	return 0;
}

static void rd_done(void *arg, const gl_err *err)
{
	gl_api_req *ar = arg;
	blob_op *op = ar->handler_data;

	op->rd = NULL;
	gl_http_on_drain(ar->http, NULL, NULL);
	if (err) {
		/* the reader logged and flagged what it had to; the client
		 * must not take a broken body for a whole one */
		gl_error("download %s: %s", ar->id, err->msg);
		gl_http_reply_abort(ar->http);
	} else {
		gl_http_reply_end(ar->http);
	}
	gl_api_finish(ar);
}

/* Serve [op->off, op->end) of an outside blob (end -1: all of it). */
static void rd_stream(gl_api_req *ar, blob_op *op, int status, int64_t len)
{
	gl_err err = { 0 };

	op->rd = gl_download_read_start(E(ar), &op->dl, op->off, op->end,
					rd_data, rd_done, ar, &err);
	if (!op->rd) {
		if (op->dl.kind == GL_DL_S3) {
			/* the headers are out already */
			gl_error("download %s: %s", ar->id, err.msg);
			gl_http_reply_abort(ar->http);
			gl_api_finish(ar);
		} else {
			gl_api_reply_fault(ar, &err);
		}
		return;
	}
	if (op->dl.kind != GL_DL_S3) {
		blob_ctype(ar, &op->dl);
		gl_http_reply_start(ar->http, status, len);
	}
	gl_http_on_drain(ar->http, rd_resume, ar);
}

static void proxy_start(gl_api_req *ar, blob_op *op)
{
	op->off = 0;
	op->end = -1;
	rd_stream(ar, op, 200, op->dl.size);
}

static void s3_stream(gl_api_req *ar, blob_op *op, int status)
{
	gl_http_reply_start(ar->http, status, op->end - op->off);
	if (gl_http_is_head(ar->http) || op->end == op->off) {
		gl_http_reply_end(ar->http);
		gl_api_finish(ar);
		return;
	}
	rd_stream(ar, op, status, op->end - op->off);
}

void gl_h_blob_get(gl_api_req *ar)
{
	blob_op *op = op_new(ar);
	gl_download *dl;
	gl_request_info ri;
	gl_err err = { 0 };
	char etag[80], cr[96];
	const char *inm, *range, *ifr;
	int64_t a = 0, b = -1;
	int status = 200, rr;

	if (!op) {
		gl_api_fail(ar, 500, NULL, "out of memory");
		return;
	}
	dl = &op->dl;
	ri.method = gl_http_method(ar->http);
	ri.path = gl_http_path(ar->http);
	ri.remote_addr = gl_http_peer(ar->http);
	ri.headers = headers_json(ar->http);
	rr = gl_download_open(E(ar), &ar->ctx, ar->type, ar->id, ar->field,
			      ar->key, ar->has_key, &ri, dl, &err);
	json_decref(ri.headers);
	if (rr < 0) {
		gl_api_reply_fault(ar, &err);
		return;
	}
	if (dl->kind == GL_DL_REDIRECT) {
		/* Glare's answer for external data: go there, with what we
		 * know about the bytes */
		gl_api_add_common_headers(ar);
		checksum_headers(ar, dl);
		gl_http_set_header(ar->http, "Location", dl->url);
		gl_http_set_header(ar->http, "Content-Type",
				   "application/json");
		gl_http_reply(ar->http, 301, NULL, 0);
		gl_api_finish(ar);
		return;
	}
	snprintf(etag, sizeof etag, "\"%s\"", dl->sha256);
	gl_api_add_common_headers(ar);
	checksum_headers(ar, dl);
	if (dl->sha256[0])
		gl_http_set_header(ar->http, "ETag", etag);
	if (dl->kind == GL_DL_PROXY) {
		if (gl_http_is_head(ar->http)) {
			blob_ctype(ar, dl);
			gl_http_reply_start(ar->http, 200, dl->size);
			gl_http_reply_end(ar->http);
			gl_api_finish(ar);
			return;
		}
		proxy_start(ar, op);
		return;
	}
	gl_http_set_header(ar->http, "Accept-Ranges", "bytes");
	inm = gl_http_header(ar->http, "If-None-Match");
	if (inm && dl->sha256[0] && etag_matches(inm, etag)) {
		blob_ctype(ar, dl);
		gl_http_reply(ar->http, 304, NULL, 0);
		gl_api_finish(ar);
		return;
	}
	range = gl_http_header(ar->http, "Range");
	ifr = gl_http_header(ar->http, "If-Range");
	if (range && (!ifr || etag_matches(ifr, etag))) {
		rr = parse_range(range, dl->size, &a, &b);
		if (rr < 0) {
			snprintf(cr, sizeof cr, "bytes */%lld",
				 (long long)dl->size);
			gl_http_set_header(ar->http, "Content-Range", cr);
			gl_api_fail(ar, 416, "RequestRangeNotSatisfiable",
				    "Range %s is outside the %lld bytes of the "
				    "blob",
				    range, (long long)dl->size);
			return;
		}
		if (rr > 0) {
			status = 206;
			snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld",
				 (long long)a, (long long)b,
				 (long long)dl->size);
			gl_http_set_header(ar->http, "Content-Range", cr);
		}
	}
	if (status == 200) {
		a = 0;
		b = dl->size - 1;
	}
	blob_ctype(ar, dl);
	if (dl->kind == GL_DL_FILE) {
		int fd = dl->fd;
		dl->fd = -1;
		gl_http_reply_file(ar->http, status, fd, (off_t)a,
				   (off_t)(b - a + 1));
		gl_api_finish(ar);
		return;
	}
	op->off = a;
	op->end = b + 1;
	if (dl->kind == GL_DL_S3) {
		s3_stream(ar, op, status);
		return;
	}
	/* database store: feed pieces as the socket drains */
	gl_http_reply_start(ar->http, status, b - a + 1);
	if (gl_http_is_head(ar->http)) {
		gl_http_reply_end(ar->http);
		gl_api_finish(ar);
		return;
	}
	gl_http_on_drain(ar->http, db_drain, ar);
	db_feed(ar->http, ar);
}

void gl_h_blob_delete(gl_api_req *ar)
{
	json_t *out = NULL;
	gl_err err = { 0 };
	int rc = gl_location_delete_blob(E(ar), &ar->ctx, ar->type, ar->id,
					 ar->field, ar->key, ar->has_key, &out,
					 &err);

	gl_api_reply_result(ar, rc, 200, out, &err);
}
