/* test_s3.c - unit tests for s3.c.
 *
 * Always: part size math, key encoding, parsing of sample S3 answers
 * (CreateMultipartUpload, ListMultipartUploads, Error), the error mapping,
 * a request to a closed port (503, S3 unavailable), and a fixture server
 * in a thread (canned answers, recorded requests) for the wire format,
 * retries, a completion that fails inside its 200, and the first error
 * of an upload winning over later ones.
 *
 * With a real endpoint (GLARED_S3_ENDPOINT, GLARED_S3_REGION,
 * GLARED_S3_BUCKET, GLARED_S3_ACCESS_KEY, GLARED_S3_SECRET_KEY; see
 * scripts/s3.sh): a multipart upload of 17 MiB in 3 parts from a temp file
 * read back byte-identical (whole, a Range across parts, with pauses),
 * aborts that leave no upload behind, gl_s3_abort_stale, HEAD/DELETE, 404
 * and 403 mapping, odd keys, an empty object, cancellation from inside
 * callbacks. Without one those cases are reported as skipped. Every case
 * works under its own key prefix, so runs do not meet.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "s3.h"

#define MiB (1024LL * 1024)
#define GiB (1024LL * MiB)

/* ---- part size --- */

UNIT_TEST(part_size_limits)
{
	int64_t sizes[] = { 0,        1,          5 * MiB,    17 * MiB,
			    80 * GiB, 1000 * GiB, 1024 * GiB, 5 * 1024 * GiB };

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		int64_t p = gl_s3_part_size(sizes[i], 1000 * GiB);
		CHECK(p >= 5 * MiB);
		CHECK(p <= 5 * GiB);
		CHECK(p % MiB == 0);
		CHECK((sizes[i] + p - 1) / p <= 10000);
	}
	/* the brief's case: 1000 GiB in at most 10,000 parts */
	CHECK((1000 * GiB + gl_s3_part_size(1000 * GiB, 0) - 1) /
		      gl_s3_part_size(1000 * GiB, 0) <=
	      10000);
	/* small objects: 8 MiB parts, so 17 MiB is 3 parts */
	CHECK_INT(gl_s3_part_size(17 * MiB, 1000 * GiB), 8 * MiB);
	/* unknown size: sized for the largest allowed blob */
	CHECK_INT(gl_s3_part_size(-1, 1000 * GiB),
		  gl_s3_part_size(1000 * GiB, 0));
	CHECK(gl_s3_part_size(-1, 1000 * GiB) * 10000 >= 1000 * GiB);
	/* no limit at all: S3's largest object (5 TiB) must fit */
	CHECK(gl_s3_part_size(-1, 0) * 10000 >= 5 * 1024 * GiB);
	/* beyond 5 TiB the part stays within S3's 5 GiB */
	CHECK(gl_s3_part_size(100 * 1024 * GiB, 0) <= 5 * GiB);
}

/* ---- key encoding --- */

static int enc_is(const char *in, int keep, const char *want)
{
	char *e = gl_s3_encode(in, keep);
	int ok = e && !strcmp(e, want);

	if (!ok)
		snprintf(unit_msg, sizeof unit_msg,
			 "encode \"%s\" -> \"%s\", "
			 "want \"%s\"",
			 in, e ? e : "(null)", want);
	free(e);
	return ok;
}

UNIT_TEST(key_encoding)
{
	CHECK(enc_is("abcXYZ019-._~", 1, "abcXYZ019-._~"));
	CHECK(enc_is("a/b/c", 1, "a/b/c"));
	CHECK(enc_is("a/b/c", 0, "a%2Fb%2Fc"));
	CHECK(enc_is("a b+c", 1, "a%20b%2Bc"));
	/* upper-case hex, as SigV4's canonical form needs */
	CHECK(enc_is("=&?#%*", 1, "%3D%26%3F%23%25%2A"));
	CHECK(enc_is("caf\xc3\xa9", 1, "caf%C3%A9"));
	CHECK(enc_is("", 1, ""));
	/* dots stay (curl keeps them: CURLOPT_PATH_AS_IS) */
	CHECK(enc_is("a/../b/./c", 1, "a/../b/./c"));
	CHECK(enc_is("2~AbC-d_e.F", 0, "2~AbC-d_e.F"));
}

/* ---- XML --- */

static const char create_xml[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<InitiateMultipartUploadResult "
	"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Bucket>glared</Bucket>\n"
	"  <Key>p/blob&amp;1</Key>\n"
	"  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
	"</UploadId>\n"
	"</InitiateMultipartUploadResult>";

UNIT_TEST(xml_create_multipart)
{
	char *id = gl_s3_xml_text(create_xml, sizeof create_xml - 1,
				  "UploadId");
	char *key = gl_s3_xml_text(create_xml, sizeof create_xml - 1, "Key");
	char *none = gl_s3_xml_text(create_xml, sizeof create_xml - 1,
				    "Upload");

	CHECK_STR(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRz"
		      "IHVwbG9hZA");
	CHECK_STR(key, "p/blob&1");
	/* <UploadId> is not an <Upload> */
	CHECK(none == NULL);
	free(id);
	free(key);
	/* a cut answer has no value */
	CHECK(gl_s3_xml_text(create_xml, 150, "UploadId") == NULL);
	CHECK(gl_s3_xml_text(NULL, 0, "UploadId") == NULL);
}

static const char list_xml[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<ListMultipartUploadsResult "
	"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Bucket>glared</Bucket><KeyMarker></KeyMarker><UploadIdMarker/>"
	"<NextKeyMarker>p/c</NextKeyMarker>"
	"<NextUploadIdMarker>id-3</NextUploadIdMarker>"
	"<Prefix>p/</Prefix><MaxUploads>3</MaxUploads>"
	"<IsTruncated>true</IsTruncated>"
	"<Upload><Key>p/a</Key><UploadId>id-1</UploadId>"
	"<Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator>"
	"<StorageClass>STANDARD</StorageClass>"
	"<Initiated>2024-05-01T12:00:00.000Z</Initiated></Upload>\n"
	"<Upload>\n  <Key>p/b &lt;&#233;&#x41;&gt;</Key>\n"
	"  <UploadId>id-2</UploadId>\n"
	"  <Initiated>2024-05-01T12:00:01Z</Initiated>\n</Upload>"
	"<Upload><Key>p/c</Key><UploadId>id-3</UploadId>"
	"<Initiated>not a time</Initiated></Upload>"
	"<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>"
	"</ListMultipartUploadsResult>";

typedef struct seen {
	int n;
	char keys[4][64], ids[4][64];
	int64_t t[4];
} seen;

static int on_upload(void *arg, const char *key, const char *id,
		     int64_t initiated)
{
	seen *s = arg;

	if (s->n < 4) {
		snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
		snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
		s->t[s->n] = initiated;
	}
	s->n++;
	return 0;
}

UNIT_TEST(xml_list_uploads)
{
	seen sn = { 0 };
	char *nk = NULL, *ni = NULL;
	int trunc = 0;
	int n = gl_s3_parse_uploads(list_xml, sizeof list_xml - 1, on_upload,
				    &sn, &trunc, &nk, &ni);

	CHECK_INT(n, 3);
	CHECK_INT(sn.n, 3);
	CHECK_STR(sn.keys[0], "p/a");
	CHECK_STR(sn.ids[0], "id-1");
	CHECK_INT(sn.t[0], 1714564800);
	CHECK_STR(sn.keys[1], "p/b <\xc3\xa9"
			      "A>");
	CHECK_STR(sn.ids[1], "id-2");
	CHECK_INT(sn.t[1], 1714564801);
	CHECK_STR(sn.keys[2], "p/c");
	CHECK_INT(sn.t[2], -1);
	CHECK_INT(trunc, 1);
	CHECK_STR(nk, "p/c");
	CHECK_STR(ni, "id-3");
	free(nk);
	free(ni);
}

UNIT_TEST(xml_list_empty_and_bad)
{
	static const char empty[] =
		"<ListMultipartUploadsResult><Bucket>b</Bucket>"
		"<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
	static const char err[] = "<Error><Code>AccessDenied</Code></Error>";
	char *nk = (char *)"x", *ni = (char *)"x";
	int trunc = 1;

	CHECK_INT(gl_s3_parse_uploads(empty, sizeof empty - 1, on_upload, NULL,
				      &trunc, &nk, &ni),
		  0);
	CHECK_INT(trunc, 0);
	CHECK(nk == NULL && ni == NULL);
	CHECK_INT(gl_s3_parse_uploads(err, sizeof err - 1, on_upload, NULL,
				      &trunc, &nk, &ni),
		  -1);
}

UNIT_TEST(parse_time)
{
	CHECK_INT(gl_s3_parse_time("1970-01-01T00:00:00Z"), 0);
	CHECK_INT(gl_s3_parse_time("2024-05-01T12:00:00.123Z"), 1714564800);
	CHECK_INT(gl_s3_parse_time("2024-05-01T12:00:00"), 1714564800);
	CHECK_INT(gl_s3_parse_time("2024-13-01T12:00:00Z"), -1);
	CHECK_INT(gl_s3_parse_time("2024-05-01 12:00:00Z"), -1);
	CHECK_INT(gl_s3_parse_time("2024-05-01T12:00:00+02:00"), -1);
	CHECK_INT(gl_s3_parse_time(""), -1);
	CHECK_INT(gl_s3_parse_time(NULL), -1);
}

static void map(long status, const char *body, gl_err *e)
{
	memset(e, 0, sizeof *e);
	gl_s3_map_error(status, body, body ? strlen(body) : 0, "k1", e);
}

UNIT_TEST(error_mapping)
{
	gl_err e;

	map(404,
	    "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
	    "<Message>The specified key does not exist.</Message>"
	    "<Key>p/k1</Key><RequestId>tx1</RequestId></Error>",
	    &e);
	CHECK_INT(e.status, 404);
	CHECK_STR(e.type, "NotFound");
	CHECK_STR(e.msg, "S3 object 'k1' not found (NoSuchKey: The "
			 "specified key does not exist.)");
	map(404, NULL, &e); /* HEAD: no body */
	CHECK_INT(e.status, 404);
	CHECK_STR(e.msg, "S3 object 'k1' not found");
	map(404, "<Error><Code>NoSuchUpload</Code></Error>", &e);
	CHECK_INT(e.status, 404);
	CHECK_PREFIX(e.msg, "S3 multipart upload for 'k1' not found");
	map(404, "<Error><Code>NoSuchBucket</Code></Error>", &e);
	CHECK_INT(e.status, 500);
	map(403,
	    "<Error><Code>SignatureDoesNotMatch</Code><Message>The "
	    "request signature we calculated does not match</Message>"
	    "</Error>",
	    &e);
	CHECK_INT(e.status, 403);
	CHECK_STR(e.type, "Forbidden");
	CHECK_PREFIX(e.msg, "S3 access denied (SignatureDoesNotMatch: ");
	map(403, NULL, &e);
	CHECK_STR(e.msg, "S3 access denied");
	map(503,
	    "<Error><Code>SlowDown</Code><Message>Reduce your request "
	    "rate.</Message></Error>",
	    &e);
	CHECK_INT(e.status, 503);
	CHECK_STR(e.type, "ServiceUnavailable");
	CHECK_PREFIX(e.msg, "S3 unavailable: HTTP 503 (SlowDown: ");
	map(500, "<Error><Code>InternalError</Code></Error>", &e);
	CHECK_INT(e.status, 503);
	map(416, "<Error><Code>InvalidRange</Code></Error>", &e);
	CHECK_INT(e.status, 416);
	map(400, "<Error><Code>EntityTooLarge</Code></Error>", &e);
	CHECK_INT(e.status, 413);
	map(400,
	    "<Error><Code>EntityTooSmall</Code><Message>Your proposed "
	    "upload is smaller than the minimum allowed object size."
	    "</Message></Error>",
	    &e);
	CHECK_INT(e.status, 500);
	CHECK_STR(e.type, "GlareException");
	CHECK_PREFIX(e.msg, "S3 error: HTTP 400 for 'k1' (EntityTooSmall: ");
	/* an HTML error page from a proxy: status only */
	map(502, "<html><body>Bad Gateway</body></html>", &e);
	CHECK_INT(e.status, 503);
	CHECK_STR(e.msg, "S3 unavailable: HTTP 502");
}

/* ---- against a server --- */

typedef struct env {
	gl_s3_conf c;
	char prefix[96];
} env;

/* 1: the endpoint from the environment, with a fresh prefix; 0: none. */
static int get_env(env *v, const char *tag)
{
	v->c.endpoint = getenv("GLARED_S3_ENDPOINT");
	v->c.region = getenv("GLARED_S3_REGION");
	v->c.bucket = getenv("GLARED_S3_BUCKET");
	v->c.access_key = getenv("GLARED_S3_ACCESS_KEY");
	v->c.secret_key = getenv("GLARED_S3_SECRET_KEY");
	if (!v->c.endpoint || !*v->c.endpoint || !v->c.bucket ||
	    !v->c.access_key || !v->c.secret_key) {
		return 0;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(v->prefix, sizeof v->prefix, "unit-%ld-%ld-%d/%s/",
		 (long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(), tag);
	v->c.prefix = v->prefix;
	v->c.connect_timeout = 5;
	v->c.timeout = 30;
	return 1;
}

/* A loop and a client; *done set by callbacks ends run(). */
typedef struct rig {
	struct event_base *base;
	gl_s3 *s;
	struct event *guard;
	int timed_out;
} rig;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
	rig *r = arg;

	r->timed_out = 1;
	event_base_loopbreak(r->base);
}

static int rig_open(rig *r, const gl_s3_conf *c)
{
	gl_err err = { 0 };

	memset(r, 0, sizeof *r);
	r->base = event_base_new();
	if (!r->base)
		return -1;
	r->guard = evtimer_new(r->base, guard_cb, r);
	r->s = gl_s3_new(r->base, c, &err);
	if (!r->s)
		snprintf(unit_msg, sizeof unit_msg, "gl_s3_new: %.400s",
			 err.msg);
	return r->s ? 0 : -1;
}

static void rig_close(rig *r)
{
	gl_s3_free(r->s);
	if (r->guard)
		event_free(r->guard);
	if (r->base)
		event_base_free(r->base);
	r->s = NULL;
	r->guard = NULL;
	r->base = NULL;
}

/* Run the loop until *flag is set (or, flag NULL, until nothing is left
 * to do), 60 s at most. 0 if it got there. */
static int run(rig *r, const int *flag)
{
	struct timeval tv = { 60, 0 };

	r->timed_out = 0;
	evtimer_add(r->guard, &tv);
	while (!r->timed_out && (!flag || !*flag)) {
		/* only the guard left: everything else is done */
		if (!flag &&
		    event_base_get_num_events(r->base,
					      EVENT_BASE_COUNT_ADDED |
						      EVENT_BASE_COUNT_ACTIVE) <=
			    1)
			break;
		if (event_base_loop(r->base, EVLOOP_ONCE) != 0)
			break;
	}
	evtimer_del(r->guard);
	return r->timed_out ? -1 : 0;
}

/* Deterministic bytes for offset i of a test blob. */
static unsigned char byte_at(int64_t i)
{
	uint64_t x = (uint64_t)i / 8 * 0x9E3779B97F4A7C15ull + 12345;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (unsigned char)(x >> ((i % 8) * 8));
}

/* A temp file of n such bytes (unlinked; the fd keeps it). */
static int temp_blob(int64_t n)
{
	char path[] = "/tmp/glared-s3-test-XXXXXX";
	static unsigned char buf[1 << 20];
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	for (int64_t off = 0; off < n;) {
		size_t k = (size_t)(n - off < (int64_t)sizeof buf
					    ? n - off
					    : (int64_t)sizeof buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = byte_at(off + (int64_t)i);
		if (write(fd, buf, k) != (ssize_t)k) {
			close(fd);
			return -1;
		}
		off += (int64_t)k;
	}
	return fd;
}

/* Upload state for the tests. */
typedef struct up {
	gl_s3_upload *u;
	int ready, ready_ok, parts_done, parts_failed, done, done_ok;
	int abort_in_part_done;
	char id[256];
	gl_err err;
} up;

static void up_ready(void *arg, const char *id, const gl_err *err)
{
	up *t = arg;

	t->ready = 1;
	t->ready_ok = id != NULL && !err;
	if (id)
		snprintf(t->id, sizeof t->id, "%s", id);
	if (err)
		t->err = *err;
}

static void up_part(void *arg, const gl_err *err)
{
	up *t = arg;

	t->parts_done++;
	if (err) {
		t->parts_failed++;
		t->err = *err;
	}
	if (t->abort_in_part_done && t->u) {
		gl_s3_upload_abort(t->u);
		t->u = NULL;
	}
}

static void up_done(void *arg, const gl_err *err)
{
	up *t = arg;

	t->done = 1;
	t->done_ok = !err;
	if (err)
		t->err = *err;
	t->u = NULL; /* freed by the client */
}

/* Stream check: every byte must equal byte_at(start + position). */
typedef struct getck {
	int64_t start, got, total;
	int status, done, bad, pause_every, calls, cancel_at;
	gl_s3_get *g;
	rig *rg;
	struct event *resume_ev;
	gl_err err;
} getck;

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	getck *c = arg;

	gl_s3_get_resume(c->g);
}

static int get_data(void *arg, const char *p, size_t n)
{
	getck *c = arg;

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] !=
		    byte_at(c->start + c->got + (int64_t)i))
			c->bad = 1;
	c->got += (int64_t)n;
	c->calls++;
	if (c->cancel_at && c->calls == c->cancel_at) {
		gl_s3_get_cancel(c->g);
		c->done = 2; /* no done callback must follow */
		return 0;
	}
	if (c->pause_every && c->calls % c->pause_every == 0) {
		struct timeval tv = { 0, 2000 };
		evtimer_add(c->resume_ev, &tv);
		return 1;
	}
	return 0;
}

static void get_done(void *arg, int status, int64_t total, const gl_err *err)
{
	getck *c = arg;

	c->done = 1;
	c->status = status;
	c->total = total;
	if (err)
		c->err = *err;
}

static int get_check(rig *r, const char *key, const char *range, int64_t start,
		     int pause_every, getck *c)
{
	gl_err err = { 0 };

	memset(c, 0, sizeof *c);
	c->start = start;
	c->pause_every = pause_every;
	c->rg = r;
	c->resume_ev = evtimer_new(r->base, resume_cb, c);
	c->g = gl_s3_get_start(r->s, key, range, get_data, get_done, c, &err);
	if (!c->g) {
		event_free(c->resume_ev);
		snprintf(unit_msg, sizeof unit_msg, "get_start: %.400s",
			 err.msg);
		return -1;
	}
	int rc = run(r, &c->done);
	event_free(c->resume_ev);
	return rc;
}

/* Start an upload and wait for its id. */
static int up_start(rig *r, up *t, const char *key)
{
	gl_err err = { 0 };

	memset(t, 0, sizeof *t);
	t->u = gl_s3_upload_start(r->s, key, "application/x-test", up_ready, t,
				  &err);
	if (!t->u) {
		snprintf(unit_msg, sizeof unit_msg, "upload_start: %.400s",
			 err.msg);
		return -1;
	}
	if (run(r, &t->ready) != 0 || !t->ready_ok) {
		snprintf(unit_msg, sizeof unit_msg, "upload ready: %.400s",
			 t->err.msg);
		return -1;
	}
	return 0;
}

/* Uploads still open under the client's prefix: aborting all of them
 * (cutoff in the future) counts them. */
static int open_uploads(gl_s3 *s)
{
	gl_err err = { 0 };
	int n = gl_s3_abort_stale(s, -3600, &err);

	if (n < 0)
		snprintf(unit_msg, sizeof unit_msg, "abort_stale: %.400s",
			 err.msg);
	return n;
}

UNIT_TEST(real_multipart_roundtrip)
{
	env v;
	rig r;
	up t;
	getck c;
	gl_err err = { 0 };
	int64_t size = 17 * MiB + 12345, part, sz = -1;
	int fd, no = 0;

	if (!get_env(&v, "mp"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK((fd = temp_blob(size)) >= 0);
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK(up_start(&r, &t, "blob/17m") == 0);
	CHECK(gl_s3_upload_id(t.u) != NULL);
	CHECK_STR(gl_s3_upload_id(t.u), t.id);
	part = gl_s3_part_size(size, 1000 * GiB);
	CHECK_INT(part, 8 * MiB);
	/* all three in flight at once; complete is called before they end
	 * and waits for them */
	for (int64_t off = 0; off < size; off += part) {
		int64_t len = size - off < part ? size - off : part;
		CHECK(gl_s3_upload_part_fd(t.u, ++no, fd, off, len, up_part,
					   &t, &err) == 0);
	}
	CHECK_INT(no, 3);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
	CHECK(run(&r, &t.done) == 0);
	if (!t.done_ok)
		printf("  complete: %s\n", t.err.msg);
	CHECK(t.done_ok);
	CHECK_INT(t.parts_done, 3);
	CHECK_INT(t.parts_failed, 0);
	close(fd);

	CHECK(gl_s3_head(r.s, "blob/17m", &sz, &err) == 0);
	CHECK_INT(sz, size);
	/* whole object, byte-identical */
	CHECK(get_check(&r, "blob/17m", NULL, 0, 0, &c) == 0);
	CHECK(!c.err.status);
	CHECK_INT(c.status, 200);
	CHECK_INT(c.got, size);
	CHECK_INT(c.total, size);
	CHECK(!c.bad);
	/* a range across the first part boundary, with pauses */
	CHECK(get_check(&r, "blob/17m", "8000000-9000000", 8000000, 3, &c) ==
	      0);
	CHECK_INT(c.status, 206);
	CHECK_INT(c.got, 1000001);
	CHECK_INT(c.total, size);
	CHECK(!c.bad);
	/* the last bytes */
	CHECK(get_check(&r, "blob/17m", "-100", size - 100, 0, &c) == 0);
	CHECK_INT(c.status, 206);
	CHECK_INT(c.got, 100);
	CHECK(!c.bad);
	/* beyond the end */
	CHECK(get_check(&r, "blob/17m", "999999999-", 0, 0, &c) == 0);
	CHECK_INT(c.status, 416);
	CHECK_INT(c.err.status, 416);
	CHECK_INT(c.got, 0);

	CHECK(gl_s3_delete(r.s, "blob/17m", &err) == 0);
	CHECK(gl_s3_head(r.s, "blob/17m", &sz, &err) == -1);
	CHECK_INT(err.status, 404);
	CHECK_INT(open_uploads(r.s), 0);
	rig_close(&r);
}

UNIT_TEST(real_abort_leaves_nothing)
{
	env v;
	rig r;
	up t;
	gl_err err = { 0 };
	int fd;

	if (!get_env(&v, "abort"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK((fd = temp_blob(6 * MiB)) >= 0);
	CHECK(rig_open(&r, &v.c) == 0);

	/* abort with a part stored */
	CHECK(up_start(&r, &t, "blob/a") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 6 * MiB, up_part, &t,
				   &err) == 0);
	while (t.parts_done < 1)
		CHECK(run(&r, &t.parts_done) == 0);
	CHECK_INT(t.parts_failed, 0);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);

	/* abort while a part is being sent */
	CHECK(up_start(&r, &t, "blob/b") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 6 * MiB, up_part, &t,
				   &err) == 0);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(t.parts_done, 0); /* no callbacks after abort */

	/* abort before S3 even gave the id: aborted once it does */
	memset(&t, 0, sizeof t);
	t.u = gl_s3_upload_start(r.s, "blob/c", NULL, up_ready, &t, &err);
	CHECK(t.u != NULL);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(t.ready, 0);

	/* abort from inside part_done */
	CHECK(up_start(&r, &t, "blob/d") == 0);
	t.abort_in_part_done = 1;
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 6 * MiB, up_part, &t,
				   &err) == 0);
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(t.parts_done, 1);

	/* abort during the completion: the object is deleted again */
	CHECK(up_start(&r, &t, "blob/e") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 6 * MiB, up_part, &t,
				   &err) == 0);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(t.done, 0);

	close(fd);
	CHECK_INT(open_uploads(r.s), 0);
	CHECK(gl_s3_head(r.s, "blob/e", NULL, &err) == -1);
	CHECK_INT(err.status, 404);
	rig_close(&r);
}

UNIT_TEST(real_failed_part_aborts)
{
	env v;
	rig r;
	up t;
	gl_err err = { 0 };
	int fd;

	if (!get_env(&v, "fail"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK((fd = temp_blob(MiB)) >= 0);
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK(up_start(&r, &t, "blob/f") == 0);
	/* the file has 1 MiB, the part claims 2: a read error */
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 2 * MiB, up_part, &t,
				   &err) == 0);
	CHECK(run(&r, &t.parts_done) == 0);
	CHECK_INT(t.parts_failed, 1);
	CHECK_INT(t.err.status, 500);
	CHECK_PREFIX(t.err.msg, "the data for S3 object 'blob/f' ended");
	/* the first error stays: complete refuses with it */
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == -1);
	CHECK_PREFIX(err.msg, "the data for S3 object 'blob/f' ended");
	CHECK(gl_s3_upload_part_fd(t.u, 2, fd, 0, MiB, up_part, &t, &err) ==
	      -1);
	CHECK_PREFIX(err.msg, "the data for S3 object 'blob/f' ended");
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);

	/* parts too small for S3: complete fails, and aborts by itself */
	CHECK(up_start(&r, &t, "blob/g") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 1000, up_part, &t, &err) ==
	      0);
	CHECK(gl_s3_upload_part_fd(t.u, 2, fd, 0, 1000, up_part, &t, &err) ==
	      0);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
	CHECK(run(&r, &t.done) == 0);
	CHECK_INT(t.done_ok, 0);
	CHECK(t.err.status >= 400);
	CHECK(run(&r, NULL) == 0);
	close(fd);
	CHECK_INT(open_uploads(r.s), 0);
	rig_close(&r);
}

UNIT_TEST(real_abort_stale)
{
	env v;
	rig r;
	up t;
	gl_err err = { 0 };
	char id[256];
	int fd;

	if (!get_env(&v, "stale"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK((fd = temp_blob(MiB)) >= 0);
	CHECK(rig_open(&r, &v.c) == 0);
	/* two uploads left behind, as by a node that died */
	for (int i = 0; i < 2; i++) {
		CHECK(up_start(&r, &t, i ? "s/2" : "s/1") == 0);
		CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, MiB, up_part, &t,
					   &err) == 0);
		CHECK(run(&r, &t.parts_done) == 0);
		snprintf(id, sizeof id, "%s", t.id);
	}
	rig_close(&r); /* frees the handles, aborts nothing */
	close(fd);

	CHECK(rig_open(&r, &v.c) == 0);
	/* too young */
	CHECK_INT(gl_s3_abort_stale(r.s, 3600, &err), 0);
	/* one by its id (the last one) */
	CHECK(gl_s3_abort_by_id(r.s, "s/2", id, &err) == 0);
	CHECK(gl_s3_abort_by_id(r.s, "s/2", id, &err) == -1);
	CHECK_INT(err.status, 404);
	/* the other as stale: Swift rounds Initiated up to the next second,
	 * so "older than -2 s" to take one started just now */
	CHECK_INT(gl_s3_abort_stale(r.s, -2, &err), 1);
	CHECK_INT(gl_s3_abort_stale(r.s, -2, &err), 0);
	rig_close(&r);
}

UNIT_TEST(real_objects)
{
	/* characters that need encoding, and dots curl must not fold */
	/* clang-format off */
	static const char *keys[] = {
		"plain", "dir/a b+c%d&e=f?g#h", "caf\xc3\xa9/\xe2\x82\xac",
		"x/./y/../z", "semi;colon,comma'quote\"(paren)*!$@",
	};
	/* clang-format on */
	env v;
	rig r;
	gl_err err = { 0 };
	int64_t sz;

	if (!get_env(&v, "obj"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK(rig_open(&r, &v.c) == 0);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char data[64];
		int n = snprintf(data, sizeof data, "data %zu", i);

		int rc = gl_s3_put_small(r.s, keys[i], data, (size_t)n, &err);

		if (rc != 0)
			printf("  put '%s': %s\n", keys[i], err.msg);
		CHECK(rc == 0);
		sz = -1;
		CHECK(gl_s3_head(r.s, keys[i], &sz, &err) == 0);
		CHECK_INT(sz, n);
		CHECK(gl_s3_delete(r.s, keys[i], &err) == 0);
		CHECK(gl_s3_head(r.s, keys[i], &sz, &err) == -1);
		CHECK_INT(err.status, 404);
	}
	/* an empty object by put and by an upload without parts */
	CHECK(gl_s3_put_small(r.s, "empty1", "", 0, &err) == 0);
	CHECK(gl_s3_head(r.s, "empty1", &sz, &err) == 0);
	CHECK_INT(sz, 0);
	{
		up t;
		CHECK(up_start(&r, &t, "empty2") == 0);
		CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
		CHECK(run(&r, &t.done) == 0);
		if (!t.done_ok)
			printf("  empty upload: %s\n", t.err.msg);
		CHECK(t.done_ok);
		CHECK(gl_s3_head(r.s, "empty2", &sz, &err) == 0);
		CHECK_INT(sz, 0);
	}
	CHECK(gl_s3_delete(r.s, "empty1", &err) == 0);
	CHECK(gl_s3_delete(r.s, "empty2", &err) == 0);
	CHECK_INT(open_uploads(r.s), 0);
	rig_close(&r);
}

UNIT_TEST(real_not_found)
{
	env v;
	rig r;
	getck c;
	gl_err err = { 0 };

	if (!get_env(&v, "nf"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK(get_check(&r, "no/such/key", NULL, 0, 0, &c) == 0);
	CHECK_INT(c.status, 404);
	CHECK_INT(c.err.status, 404);
	CHECK_STR(c.err.type, "NotFound");
	CHECK_PREFIX(c.err.msg, "S3 object 'no/such/key' not found");
	CHECK_INT(c.got, 0);
	CHECK(gl_s3_head(r.s, "no/such/key", NULL, &err) == -1);
	CHECK_INT(err.status, 404);
	/* S3 answers a DELETE of a missing key with 204 */
	CHECK(gl_s3_delete(r.s, "no/such/key", &err) == 0);
	rig_close(&r);
}

UNIT_TEST(real_wrong_credentials)
{
	env v;
	rig r;
	up t;
	getck c;
	gl_err err = { 0 };

	if (!get_env(&v, "cred"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	v.c.secret_key = "not-the-secret";
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK(gl_s3_put_small(r.s, "k", "x", 1, &err) == -1);
	CHECK_INT(err.status, 403);
	CHECK_STR(err.type, "Forbidden");
	CHECK_PREFIX(err.msg, "S3 access denied");
	CHECK(get_check(&r, "k", NULL, 0, 0, &c) == 0);
	CHECK_INT(c.status, 403);
	CHECK_INT(c.err.status, 403);
	memset(&t, 0, sizeof t);
	t.u = gl_s3_upload_start(r.s, "k", NULL, up_ready, &t, &err);
	CHECK(t.u != NULL);
	CHECK(run(&r, &t.ready) == 0);
	CHECK_INT(t.ready_ok, 0);
	CHECK_INT(t.err.status, 403);
	CHECK(gl_s3_upload_id(t.u) == NULL);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	rig_close(&r);
}

UNIT_TEST(real_cancel_in_callback)
{
	env v;
	rig r;
	getck c;
	gl_err err = { 0 };
	static char data[300000];

	if (!get_env(&v, "cancel"))
		UNIT_SKIP("no S3 endpoint (GLARED_S3_ENDPOINT)");
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)byte_at((int64_t)i);
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK(gl_s3_put_small(r.s, "c", data, sizeof data, &err) == 0);
	memset(&c, 0, sizeof c);
	c.cancel_at = 1;
	c.resume_ev = evtimer_new(r.base, resume_cb, &c);
	c.g = gl_s3_get_start(r.s, "c", NULL, get_data, get_done, &c, &err);
	CHECK(c.g != NULL);
	CHECK(run(&r, NULL) == 0);
	event_free(c.resume_ev);
	CHECK_INT(c.done, 2); /* cancelled, and no done afterwards */
	CHECK(!c.bad);
	/* cancel right after start, before any loop pass */
	c.g = gl_s3_get_start(r.s, "c", "0-9", get_data, get_done, &c, &err);
	CHECK(c.g != NULL);
	gl_s3_get_cancel(c.g);
	c.done = 0;
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(c.done, 0);
	CHECK(gl_s3_delete(r.s, "c", &err) == 0);
	/* free with requests in flight (a GET, an upload with a part being
	 * sent): no callbacks, no leaks, and the upload stays on the server
	 * for gl_s3_abort_stale */
	{
		up t;
		int fd = temp_blob(100000);

		CHECK(fd >= 0);
		CHECK(up_start(&r, &t, "k") == 0);
		CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 100000, up_part, &t,
					   &err) == 0);
		memset(&c, 0, sizeof c);
		c.g = gl_s3_get_start(r.s, "c", NULL, get_data, get_done, &c,
				      &err);
		CHECK(c.g != NULL);
		event_base_loop(r.base, EVLOOP_NONBLOCK);
		rig_close(&r);
		close(fd);
		CHECK_INT(c.done, 0);
		CHECK_INT(t.parts_done, 0);
	}
	CHECK(rig_open(&r, &v.c) == 0);
	CHECK_INT(gl_s3_abort_stale(r.s, -3600, &err), 1);
	rig_close(&r);
}

/* ---- a fixture server: canned answers, recorded requests --- */

/* One answer; the server closes each connection after it. */
typedef struct canned {
	int status;
	const char *headers; /* extra header lines, each ending in \r\n */
	const char *body;
} canned;

typedef struct fx_req {
	char line[512];  /* "PUT /b/k?x=y HTTP/1.1" */
	char sha[80];    /* x-amz-content-sha256 */
	char auth[512];  /* Authorization */
	char ctype[128]; /* Content-Type */
	char body[1024]; /* the first bytes */
	long body_len;
	uint32_t body_sum;
} fx_req;

#define FX_MAX 16

typedef struct fx {
	int lfd, port;
	pthread_t th;
	const canned *script;
	int nscript;
	atomic_int served, stop;
	fx_req reqs[FX_MAX];
} fx;

static void header_value(const char *head, const char *name, char *out,
			 size_t len)
{
	size_t nl = strlen(name);

	out[0] = '\0';
	for (const char *p = head; (p = strstr(p, "\r\n")); p += 2) {
		if (strncasecmp(p + 2, name, nl) || p[2 + nl] != ':')
			continue;
		const char *v = p + 3 + nl, *e;
		while (*v == ' ')
			v++;
		e = strstr(v, "\r\n");
		snprintf(out, len, "%.*s", (int)(e ? e - v : (long)strlen(v)),
			 v);
		return;
	}
}

static void fx_serve(fx *f, int c)
{
	char head[16384];
	size_t n = 0;
	char *end = NULL, cl[32], expect[64];
	int i = atomic_load(&f->served);
	fx_req *rq = &f->reqs[i < FX_MAX ? i : FX_MAX - 1];
	const canned *a;
	char resp[4096];
	long want, got = 0;

	memset(rq, 0, sizeof *rq);
	while (n < sizeof head - 1 && !end) {
		ssize_t k = read(c, head + n, sizeof head - 1 - n);
		if (k <= 0)
			return;
		n += (size_t)k;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (!end)
		return;
	snprintf(rq->line, sizeof rq->line, "%.*s",
		 (int)(strstr(head, "\r\n") - head), head);
	end[2] = '\0'; /* keep the last header's \r\n */
	header_value(head, "x-amz-content-sha256", rq->sha, sizeof rq->sha);
	header_value(head, "Authorization", rq->auth, sizeof rq->auth);
	header_value(head, "Content-Type", rq->ctype, sizeof rq->ctype);
	header_value(head, "Content-Length", cl, sizeof cl);
	header_value(head, "Expect", expect, sizeof expect);
	want = atol(cl);
	if (expect[0] && write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return;
	/* body bytes that came with the head */
	for (char *p = end + 4; p < head + n && got < want; p++, got++) {
		if (got < (long)sizeof rq->body - 1)
			rq->body[got] = *p;
		rq->body_sum = rq->body_sum * 31 + (unsigned char)*p;
	}
	while (got < want) {
		char buf[65536];
		ssize_t k = read(c, buf, sizeof buf);
		if (k <= 0)
			break;
		for (ssize_t j = 0; j < k && got < want; j++, got++) {
			if (got < (long)sizeof rq->body - 1)
				rq->body[got] = buf[j];
			rq->body_sum = rq->body_sum * 31 +
				       (unsigned char)buf[j];
		}
	}
	rq->body_len = got;
	a = i < f->nscript ? &f->script[i]
			   : &(canned){ 500, NULL, "out of script" };
	atomic_fetch_add(&f->served, 1);
	n = (size_t)snprintf(resp, sizeof resp,
			     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			     "Connection: close\r\n%s\r\n%s",
			     a->status, a->body ? strlen(a->body) : 0,
			     a->headers ? a->headers : "",
			     a->body ? a->body : "");
	if (write(c, resp, n) < 0)
		return;
}

static void *fx_main(void *arg)
{
	fx *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd pf = { f->lfd, POLLIN, 0 };
		int c;

		if (poll(&pf, 1, 50) <= 0)
			continue;
		c = accept(f->lfd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = { 5, 0 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		fx_serve(f, c);
		close(c);
	}
	return NULL;
}

static int fx_start(fx *f, const canned *script, int n)
{
	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof a;

	memset(f, 0, sizeof *f);
	f->script = script;
	f->nscript = n;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) ||
	    listen(f->lfd, 16) ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &al))
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(&f->th, NULL, fx_main, f) ? -1 : 0;
}

static void fx_stop(fx *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->th, NULL);
	close(f->lfd);
}

/* A client of the fixture: bucket "bkt", prefix "pre/", a Swift-style
 * access key with a ':'. */
static int fx_rig(rig *r, fx *f, char *url, size_t len)
{
	gl_s3_conf c = { 0 };

	snprintf(url, len, "http://127.0.0.1:%d", f->port);
	c.endpoint = url;
	c.region = "eu-west-1";
	c.bucket = "bkt";
	c.prefix = "pre/";
	c.access_key = "acc:usr";
	c.secret_key = "sec";
	c.connect_timeout = 2;
	c.timeout = 5;
	return rig_open(r, &c);
}

static const canned wire_script[] = {
	{ 200, NULL, "" }, /* put_small */
	{ 200, NULL,
	  "<?xml version=\"1.0\"?><InitiateMultipartUploadResult>"
	  "<Bucket>bkt</Bucket><Key>pre/d/a b</Key>"
	  "<UploadId>a/b+c=</UploadId></InitiateMultipartUploadResult>" },
	{ 200, "ETag: \"e1\"\r\n", "" },
	{ 200, NULL,
	  "<CompleteMultipartUploadResult><ETag>\"x-1\"</ETag>"
	  "</CompleteMultipartUploadResult>" },
	{ 204, NULL, "" }, /* delete */
};

UNIT_TEST(wire_format)
{
	fx f;
	rig r;
	up t;
	gl_err err = { 0 };
	char url[64];
	int fd;

	CHECK(fx_start(&f, wire_script, 5) == 0);
	CHECK(fx_rig(&r, &f, url, sizeof url) == 0);
	CHECK((fd = temp_blob(1000)) >= 0);
	CHECK(gl_s3_put_small(r.s, "d/a b", "hello", 5, &err) == 0);
	CHECK(up_start(&r, &t, "d/a b") == 0);
	CHECK_STR(t.id, "a/b+c=");
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 1000, up_part, &t, &err) ==
	      0);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
	CHECK(run(&r, &t.done) == 0);
	CHECK(t.done_ok);
	CHECK(gl_s3_delete(r.s, "d/a b", &err) == 0);
	rig_close(&r);
	close(fd);
	fx_stop(&f);
	CHECK_INT(atomic_load(&f.served), 5);

	CHECK_STR(f.reqs[0].line, "PUT /bkt/pre/d/a%20b HTTP/1.1");
	CHECK_STR(f.reqs[0].sha, "UNSIGNED-PAYLOAD");
	CHECK_STR(f.reqs[0].body, "hello");
	/* signed with the whole key, ':' included, for the region */
	CHECK(!strncmp(f.reqs[0].auth, "AWS4-HMAC-SHA256 Credential=acc:usr/",
		       36));
	CHECK(strstr(f.reqs[0].auth, "/eu-west-1/s3/aws4_request") != NULL);
	CHECK(strstr(f.reqs[0].auth, "x-amz-content-sha256") != NULL);
	/* the canonical query: "uploads=", sorted, encoded */
	CHECK_STR(f.reqs[1].line, "POST /bkt/pre/d/a%20b?uploads= HTTP/1.1");
	CHECK_STR(f.reqs[1].ctype, "application/x-test");
	CHECK_INT(f.reqs[1].body_len, 0);
	CHECK_STR(f.reqs[2].line, "PUT /bkt/pre/d/a%20b?partNumber=1&"
				  "uploadId=a%2Fb%2Bc%3D HTTP/1.1");
	CHECK_INT(f.reqs[2].body_len, 1000);
	CHECK_STR(f.reqs[3].line,
		  "POST /bkt/pre/d/a%20b?uploadId=a%2Fb%2Bc%3D "
		  "HTTP/1.1");
	CHECK_STR(f.reqs[3].ctype, "application/xml");
	CHECK_STR(f.reqs[3].body,
		  "<CompleteMultipartUpload><Part><PartNumber>1"
		  "</PartNumber><ETag>&quot;e1&quot;</ETag></Part>"
		  "</CompleteMultipartUpload>");
	CHECK_STR(f.reqs[4].line, "DELETE /bkt/pre/d/a%20b HTTP/1.1");
}

/* clang-format off */
static const canned retry_script[] = {
	/* GET: 503, then the data */
	{ 503, NULL, "<Error><Code>SlowDown</Code></Error>" },
	{ 200, NULL, "hello" },
	/* init: 500 is not retried (not idempotent) */
	{ 500, NULL, "<Error><Code>InternalError</Code></Error>" },
	/* init again, then a part: 500, then the same bytes again */
	{ 200, NULL, "<InitiateMultipartUploadResult><UploadId>u1</UploadId>"
		     "</InitiateMultipartUploadResult>" },
	{ 500, NULL, "" },
	{ 200, "ETag: \"e1\"\r\n", "" },
	/* complete: 200 but an error inside; then the abort it sends */
	{ 200, NULL, "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError"
		     "</Code><Message>We encountered an internal error."
		     "</Message></Error>" },
	{ 204, NULL, "" },
};
/* clang-format on */

UNIT_TEST(retries_and_errors)
{
	fx f;
	rig r;
	up t;
	getck c;
	gl_err err = { 0 };
	char url[64];
	int fd;

	CHECK(fx_start(&f, retry_script, 8) == 0);
	CHECK(fx_rig(&r, &f, url, sizeof url) == 0);
	CHECK((fd = temp_blob(3000)) >= 0);

	memset(&c, 0, sizeof c);
	c.start = 0;
	c.g = gl_s3_get_start(r.s, "g", NULL, get_data, get_done, &c, &err);
	CHECK(c.g != NULL);
	CHECK(run(&r, &c.done) == 0);
	CHECK_INT(c.status, 200);
	CHECK_INT(c.got, 5); /* the 503's body never reached on_data */
	CHECK_INT(c.total, 5);
	CHECK_INT(c.err.status, 0);

	memset(&t, 0, sizeof t);
	t.u = gl_s3_upload_start(r.s, "k", NULL, up_ready, &t, &err);
	CHECK(t.u != NULL);
	CHECK(run(&r, &t.ready) == 0);
	CHECK_INT(t.ready_ok, 0);
	CHECK_INT(t.err.status, 503);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);

	CHECK(up_start(&r, &t, "k") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 100, 2000, up_part, &t, &err) ==
	      0);
	CHECK(run(&r, &t.parts_done) == 0);
	CHECK_INT(t.parts_failed, 0);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == 0);
	CHECK(run(&r, &t.done) == 0);
	CHECK_INT(t.done_ok, 0);
	CHECK_INT(t.err.status, 503);
	CHECK_PREFIX(t.err.msg, "S3 unavailable: HTTP 500 (InternalError: ");
	CHECK(run(&r, NULL) == 0); /* the abort */
	rig_close(&r);
	close(fd);
	fx_stop(&f);
	CHECK_INT(atomic_load(&f.served), 8);
	CHECK_STR(f.reqs[0].line, "GET /bkt/pre/g HTTP/1.1");
	CHECK_STR(f.reqs[1].line, "GET /bkt/pre/g HTTP/1.1");
	CHECK_STR(f.reqs[2].line, "POST /bkt/pre/k?uploads= HTTP/1.1");
	CHECK_STR(f.reqs[3].line, "POST /bkt/pre/k?uploads= HTTP/1.1");
	/* the retried part carried the same 2000 bytes */
	CHECK_INT(f.reqs[4].body_len, 2000);
	CHECK_INT(f.reqs[5].body_len, 2000);
	CHECK_INT(f.reqs[4].body_sum, f.reqs[5].body_sum);
	CHECK_INT((unsigned char)f.reqs[5].body[0], byte_at(100));
	CHECK_STR(f.reqs[7].line, "DELETE /bkt/pre/k?uploadId=u1 HTTP/1.1");
}

/* clang-format off */
static const canned first_error_script[] = {
	{ 200, NULL, "<InitiateMultipartUploadResult><UploadId>u1</UploadId>"
		     "</InitiateMultipartUploadResult>" },
	{ 403, NULL, "<Error><Code>AccessDenied</Code><Message>Access "
		     "Denied</Message></Error>" },
	/* the abort: 500, retried (idempotent) */
	{ 500, NULL, "" },
	{ 204, NULL, "" },
};
/* clang-format on */

UNIT_TEST(first_error_kept)
{
	fx f;
	rig r;
	up t;
	gl_err err = { 0 };
	char url[64];
	int fd;

	CHECK(fx_start(&f, first_error_script, 4) == 0);
	CHECK(fx_rig(&r, &f, url, sizeof url) == 0);
	CHECK((fd = temp_blob(100)) >= 0);
	CHECK(up_start(&r, &t, "k") == 0);
	CHECK(gl_s3_upload_part_fd(t.u, 1, fd, 0, 100, up_part, &t, &err) ==
	      0);
	CHECK(run(&r, &t.parts_done) == 0);
	CHECK_INT(t.err.status, 403);
	/* after a failure nothing more is sent: the first error comes back */
	CHECK(gl_s3_upload_part_fd(t.u, 2, fd, 0, 100, up_part, &t, &err) ==
	      -1);
	CHECK_INT(err.status, 403);
	CHECK(gl_s3_upload_complete(t.u, up_done, &t, &err) == -1);
	CHECK_INT(err.status, 403);
	CHECK_STR(err.msg, "S3 access denied (AccessDenied: Access Denied)");
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	rig_close(&r);
	close(fd);
	fx_stop(&f);
	CHECK_INT(atomic_load(&f.served), 4);
	CHECK_STR(f.reqs[2].line, "DELETE /bkt/pre/k?uploadId=u1 HTTP/1.1");
	CHECK_STR(f.reqs[3].line, "DELETE /bkt/pre/k?uploadId=u1 HTTP/1.1");
}

/* Needs no server: a closed port on loopback. */
UNIT_TEST(unavailable)
{
	gl_s3_conf c = { 0 };
	rig r;
	getck g;
	up t;
	gl_err err = { 0 };

	c.endpoint = "http://127.0.0.1:1";
	c.bucket = "b";
	c.access_key = "a:b";
	c.secret_key = "s";
	c.connect_timeout = 2;
	c.timeout = 5;
	CHECK(rig_open(&r, &c) == 0);
	CHECK(gl_s3_head(r.s, "k", NULL, &err) == -1);
	CHECK_INT(err.status, 503);
	CHECK_STR(err.type, "ServiceUnavailable");
	CHECK_PREFIX(err.msg, "S3 unavailable: 127.0.0.1:1: ");
	CHECK(get_check(&r, "k", "0-1", 0, 0, &g) == 0);
	CHECK_INT(g.status, 0);
	CHECK_INT(g.err.status, 503);
	memset(&t, 0, sizeof t);
	t.u = gl_s3_upload_start(r.s, "k", NULL, up_ready, &t, &err);
	CHECK(t.u != NULL);
	CHECK(run(&r, &t.ready) == 0);
	CHECK_INT(t.err.status, 503);
	gl_s3_upload_abort(t.u);
	CHECK(run(&r, NULL) == 0);
	CHECK_INT(gl_s3_abort_stale(r.s, 0, &err), -1);
	CHECK_INT(err.status, 503);
	rig_close(&r);
}

UNIT_TEST(bad_arguments)
{
	gl_s3_conf c = { 0 };
	rig r;
	gl_err err = { 0 };

	c.endpoint = "ftp://x";
	c.bucket = "b";
	c.access_key = "a";
	c.secret_key = "s";
	CHECK(gl_s3_new(NULL, &c, &err) == NULL);
	CHECK_INT(err.status, 500);
	c.endpoint = "http://127.0.0.1:1/";
	c.bucket = "";
	CHECK(gl_s3_new(NULL, &c, &err) == NULL);
	c.bucket = "b";
	CHECK(rig_open(&r, &c) == 0);
	CHECK(gl_s3_get_start(r.s, "k", "1-2-3", get_data, get_done, NULL,
			      &err) == NULL);
	CHECK_INT(err.status, 400);
	CHECK(gl_s3_get_start(r.s, "", NULL, get_data, get_done, NULL, &err) ==
	      NULL);
	CHECK(gl_s3_upload_start(r.s, NULL, NULL, up_ready, NULL, &err) ==
	      NULL);
	rig_close(&r);
}

/* clang-format off */
UNIT_SUITE(s3,
	   UNIT_CASE(part_size_limits),
	   UNIT_CASE(key_encoding),
	   UNIT_CASE(xml_create_multipart),
	   UNIT_CASE(xml_list_uploads),
	   UNIT_CASE(xml_list_empty_and_bad),
	   UNIT_CASE(parse_time),
	   UNIT_CASE(error_mapping),
	   UNIT_CASE(unavailable),
	   UNIT_CASE(wire_format),
	   UNIT_CASE(retries_and_errors),
	   UNIT_CASE(first_error_kept),
	   UNIT_CASE(bad_arguments),
	   UNIT_CASE(real_multipart_roundtrip),
	   UNIT_CASE(real_abort_leaves_nothing),
	   UNIT_CASE(real_failed_part_aborts),
	   UNIT_CASE(real_abort_stale),
	   UNIT_CASE(real_objects),
	   UNIT_CASE(real_not_found),
	   UNIT_CASE(real_wrong_credentials),
	   UNIT_CASE(real_cancel_in_callback));
/* clang-format on */
