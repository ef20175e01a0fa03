/* s3.c - S3 client for blob data, in the worker's event loop (see s3.h).
 *
 * Transport. One gl_curlev per gl_s3 (curlev.c: libcurl's multi interface
 * on the caller's libevent base, shared with fetch.c); every request on the
 * loop is one of its transfers. The blocking helpers use one separate easy
 * handle and curl_easy_perform: they are for tools and tests, never the
 * loop.
 *
 * Signing. CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3" signs each request (again
 * on a retry). curl 7.88 takes the canonical URI and query exactly as
 * written, so we write them canonical ourselves: keys percent-encoded with
 * upper-case hex (RFC 3986 unreserved characters and '/' kept), query
 * parameters sorted by name, every parameter with '=' ("uploads="), and
 * CURLOPT_PATH_AS_IS so curl never rewrites "/./" or "//" in a key. The
 * payload is not hashed: `x-amz-content-sha256: UNSIGNED-PAYLOAD` (Swift's
 * s3api rejects requests without the header). User and password are set
 * apart because Swift access keys contain ':'.
 *
 * Requests. Every S3 call is an s3_req: method, URL, a body read by a
 * callback from memory or an fd range (pread, so a part is never held in
 * memory and a retry re-reads the same bytes), and either a small response
 * body collected for XML parsing or, for GET, data handed to the caller.
 * Idempotent requests are retried once after a connection error, a
 * timeout or a 5xx (a GET only while nothing was delivered yet).
 *
 * Reentrancy (the rules are curlev.h's). Caller code runs in two places:
 *  - a GET's data callback, inside curl: there a cancel only marks the
 *    request (curlev destroys it on the next pass), and new requests and
 *    resumes take effect on the next pass;
 *  - completion callbacks (ready, part_done, done), called with curl idle
 *    (depth 0), where anything but gl_s3_free is fine.
 * An upload counts the callbacks running on it (`busy`) so an abort from
 * inside one is carried out when the callback has returned.
 */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "curlev.h"
#include "log.h"
#include "util.h"

#define S3_MIN_PART (8LL << 20) /* ours; S3's floor is 5 MiB */
#define S3_MAX_PART (5LL << 30) /* S3's ceiling */
#define S3_MAX_PARTS 10000
#define S3_MAX_OBJECT (5LL << 40) /* S3's largest object */
#define S3_MAX_KEY 1024           /* bytes, prefix included */
#define S3_BODY_CAP (8u << 20)    /* collected XML answers */
#define S3_BUFFER_SIZE (512L * 1024)
#define S3_RETRY_DELAY_MS 250
#define S3_COMPLETE_TIMEOUT_FACTOR 10
#define S3_USER_AGENT "glared/0.1"

/* ---- errors --- */

/* ---- strings --- */

char *gl_s3_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~' || (keep_slash && *p == '/')) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* Strings (URLs, queries, the CompleteMultipartUpload document, decoded
 * XML text) grow in a gl_sb (util.c): small, and out of memory there
 * aborts, as everywhere the core builds text.
 *
 * Append s percent-encoded. */
static void sb_enc(gl_sb *b, const char *s, int keep_slash)
{
	char *e = gl_s3_encode(s, keep_slash);

	if (!e)
		gl_oom();
	gl_sb_add(b, e);
	free(e);
}

/* Append s with the XML special characters escaped. */
static void sb_xml(gl_sb *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			gl_sb_add(b, "&amp;");
			break;
		case '<':
			gl_sb_add(b, "&lt;");
			break;
		case '>':
			gl_sb_add(b, "&gt;");
			break;
		case '"':
			gl_sb_add(b, "&quot;");
			break;
		case '\'':
			gl_sb_add(b, "&apos;");
			break;
		default:
			gl_sb_addn(b, s, 1);
			break;
		}
	}
}

/* ---- XML: the few elements of S3's answers --- */

/* Find the next element <tag ...>…</tag> (or <tag/>) in p..end. S3's
 * answers have no CDATA, no nested element of the same name and no
 * namespace prefixes, so a scan for the names is enough; the character
 * after a name must end it, so <UploadId> is not <Upload>. Sets the
 * content span and returns the position after the element, or NULL. */
static const char *xml_elem(const char *p, const char *end, const char *tag,
			    const char **v, size_t *vlen)
{
	size_t tl = strlen(tag);

	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p)), *q, *gt;

		if (!lt)
			return NULL;
		p = lt + 1;
		if ((size_t)(end - p) <= tl || memcmp(p, tag, tl))
			continue;
		q = p + tl;
		if (*q != '>' && *q != '/' && !isspace((unsigned char)*q))
			continue;
		gt = memchr(q, '>', (size_t)(end - q));
		if (!gt)
			return NULL;
		if (gt[-1] == '/') {
			*v = gt + 1;
			*vlen = 0;
			return gt + 1;
		}
		for (const char *c = gt + 1; c < end;) {
			const char *cl = memmem(c, (size_t)(end - c), "</", 2);
			const char *r;

			if (!cl)
				return NULL;
			r = cl + 2;
			if ((size_t)(end - r) >= tl && !memcmp(r, tag, tl)) {
				r += tl;
				while (r < end && isspace((unsigned char)*r))
					r++;
				if (r < end && *r == '>') {
					*v = gt + 1;
					*vlen = (size_t)(cl - (gt + 1));
					return r + 1;
				}
			}
			c = cl + 2;
		}
		return NULL;
	}
	return NULL;
}

static void put_utf8(gl_sb *b, unsigned long cp)
{
	char u[4];

	if (cp < 0x80) {
		u[0] = (char)cp;
		gl_sb_addn(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		gl_sb_addn(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		gl_sb_addn(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		gl_sb_addn(b, u, 4);
	}
}

/* Content of an element with the five entities and character references
 * decoded (keys may hold any character). malloc'd. */
static char *xml_decode(const char *v, size_t n)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {
		{ "amp;", '&' },  { "lt;", '<' },    { "gt;", '>' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	gl_sb b = { 0 };
	size_t i = 0;

	gl_sb_addn(&b, "", 0); /* "" for an empty element, not NULL */
	while (i < n) {
		const char *amp = memchr(v + i, '&', n - i);
		size_t k, rest;
		int done = 0;

		if (!amp) {
			gl_sb_addn(&b, v + i, n - i);
			break;
		}
		gl_sb_addn(&b, v + i, (size_t)(amp - (v + i)));
		i = (size_t)(amp - v) + 1;
		rest = n - i;
		for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
			size_t el = strlen(ents[k].name);
			if (rest >= el && !memcmp(v + i, ents[k].name, el)) {
				gl_sb_addn(&b, &ents[k].c, 1);
				i += el;
				done = 1;
				break;
			}
		}
		if (!done && rest >= 3 && v[i] == '#') {
			int hexa = v[i + 1] == 'x' || v[i + 1] == 'X';
			size_t j = i + 1 + (size_t)hexa;
			unsigned long cp = 0;
			int digits = 0;

			while (j < n && digits < 8 &&
			       (hexa ? isxdigit((unsigned char)v[j])
				     : isdigit((unsigned char)v[j]))) {
				int c = tolower((unsigned char)v[j]);
				int d = isdigit(c) ? c - '0' : c - 'a' + 10;

				cp = cp * (hexa ? 16 : 10) + (unsigned long)d;
				j++;
				digits++;
			}
			if (digits && j < n && v[j] == ';' && cp > 0 &&
			    cp <= 0x10ffff) {
				put_utf8(&b, cp);
				i = j + 1;
				done = 1;
			}
		}
		if (!done)
			gl_sb_addn(&b, "&", 1); /* not an entity: keep it */
	}
	return b.p;
}

char *gl_s3_xml_text(const char *xml, size_t len, const char *tag)
{
	const char *v;
	size_t vlen;

	if (!xml || !xml_elem(xml, xml + len, tag, &v, &vlen))
		return NULL;
	return xml_decode(v, vlen);
}

int64_t gl_s3_parse_time(const char *iso)
{
	int y, mo, d, h, mi, s, n = 0;
	int64_t t;

	if (!iso ||
	    sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
		   &n) != 6 ||
	    n != 19)
		return -1;
	iso += n;
	if (*iso == '.') /* fraction: ignored */
		for (iso++; isdigit((unsigned char)*iso); iso++)
			;
	if (strcmp(iso, "Z") && strcmp(iso, "+00:00") && *iso)
		return -1;
	if (gl_utc_seconds(y, mo, d, h, mi, s, &t) < 0)
		return -1;
	return t; /* -1 where timegm cannot answer */
}

int gl_s3_parse_uploads(const char *xml, size_t len, gl_s3_upload_fn fn,
			void *arg, int *truncated, char **next_key,
			char **next_upload_id)
{
	const char *end, *p, *v;
	size_t vlen;
	char *t;
	int n = 0;

	*truncated = 0;
	*next_key = NULL;
	*next_upload_id = NULL;
	if (!xml ||
	    !xml_elem(xml, xml + len, "ListMultipartUploadsResult", &v, &vlen))
		return -1;
	end = v + vlen;
	p = v;
	/* the markers and IsTruncated come before or after the uploads; they
	 * have names of their own, so searching the whole result is safe */
	t = gl_s3_xml_text(v, vlen, "IsTruncated");
	*truncated = t && !strcmp(t, "true");
	free(t);
	*next_key = gl_s3_xml_text(v, vlen, "NextKeyMarker");
	*next_upload_id = gl_s3_xml_text(v, vlen, "NextUploadIdMarker");
	while ((p = xml_elem(p, end, "Upload", &v, &vlen))) {
		char *key = gl_s3_xml_text(v, vlen, "Key");
		char *id = gl_s3_xml_text(v, vlen, "UploadId");
		char *init = gl_s3_xml_text(v, vlen, "Initiated");
		int stop = 0;

		if (key && id) {
			n++;
			if (fn)
				stop = fn(arg, key, id,
					  gl_s3_parse_time(init));
		}
		free(key);
		free(id);
		free(init);
		if (stop)
			break;
	}
	return n;
}

void gl_s3_map_error(long status, const char *body, size_t len,
		     const char *what, gl_err *e)
{
	char *code = gl_s3_xml_text(body, len, "Code");
	char *msg = gl_s3_xml_text(body, len, "Message");
	const char *c = code ? code : "", *m = msg ? msg : "";
	const char *sep = code && msg ? ": " : "";
	char detail[600];

	if (!what)
		what = "";
	if (code || msg)
		snprintf(detail, sizeof detail, " (%.100s%s%.400s)", c, sep,
			 m);
	else
		detail[0] = '\0';
	if (status == 404 && !strcmp(c, "NoSuchBucket"))
		/* a configuration error, not a missing blob */
		gl_fail(e, 500, NULL, "S3 bucket does not exist%s", detail);
	else if (status == 404 && !strcmp(c, "NoSuchUpload"))
		gl_fail(e, 404, NULL,
			"S3 multipart upload for '%.300s' not found%s", what,
			detail);
	else if (status == 404)
		gl_fail(e, 404, NULL, "S3 object '%.300s' not found%s", what,
			detail);
	else if (status == 401 || status == 403)
		gl_fail(e, 403, NULL, "S3 access denied%s", detail);
	else if (status == 416)
		gl_fail(e, 416, NULL,
			"S3: requested range not satisfiable for "
			"'%.300s'%s",
			what, detail);
	else if (!strcmp(c, "EntityTooLarge"))
		gl_fail(e, 413, NULL, "S3 refused '%.300s' as too large%s",
			what, detail);
	else if (status >= 500 || !strcmp(c, "SlowDown") ||
		 !strcmp(c, "InternalError") ||
		 !strcmp(c, "ServiceUnavailable"))
		gl_fail(e, 503, NULL, "S3 unavailable: HTTP %ld%s", status,
			detail);
	else
		gl_fail(e, 500, NULL, "S3 error: HTTP %ld for '%.300s'%s",
			status, what, detail);
	free(code);
	free(msg);
}

/* ---- part sizing --- */

int64_t gl_s3_part_size(int64_t size, int64_t max_size)
{
	int64_t part;

	if (size < 0)
		size = max_size;
	if (size <= 0 || size > S3_MAX_OBJECT)
		size = S3_MAX_OBJECT;
	/* the fewest parts of at least S3_MIN_PART; whole MiB, rounded up,
	 * so `size` fits in S3_MAX_PARTS parts */
	part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
	part = (part + (1LL << 20) - 1) & ~((1LL << 20) - 1);
	if (part < S3_MIN_PART)
		part = S3_MIN_PART;
	if (part > S3_MAX_PART)
		part = S3_MAX_PART;
	return part;
}

/* ---- client state --- */

typedef enum req_kind {
	K_INIT,     /* CreateMultipartUpload */
	K_PART,     /* UploadPart */
	K_COMPLETE, /* CompleteMultipartUpload */
	K_CLEANUP,  /* abort or delete after an abandoned upload */
	K_GET,      /* streamed GET */
	K_OP,       /* a one-shot asynchronous delete or abort */
	K_LIST,     /* a page of ListMultipartUploads, asynchronous */
	K_SYNC,     /* blocking helpers */
} req_kind;

typedef struct s3_req s3_req;

struct s3_req {
	gl_s3 *s;
	s3_req *prev, *next; /* s->reqs */
	req_kind kind;
	CURL *easy;
	gl_curlev_xfer x; /* not for K_SYNC */
	int borrowed;     /* easy is s->sync_easy */
	struct curl_slist *hdrs;
	char *url;
	char *what; /* the key, for messages */
	int idempotent;
	int attempts;
	/* request body: mem (if set) or fd at off..off+len */
	char *mem;
	int fd;
	int64_t off, len, pos;
	int read_errno, short_read;
	/* response */
	gl_sb body;        /* collected (not for a 2xx GET) */
	int64_t delivered; /* bytes given to on_data */
	int stopped;
	int in_done;
	struct event *retry_ev; /* pending: waits to be tried again */
	char errbuf[CURL_ERROR_SIZE];
	/* owner */
	void *owner; /* gl_s3_upload, gl_s3_get or s3_list */
	int part_no;
	int internal;       /* the empty part of an empty object */
	gl_s3_done_fn done; /* a part's or a K_OP's callback */
	void *arg;
};

struct gl_s3 {
	struct event_base *base;
	gl_curlev *ev;
	s3_req *reqs;
	gl_s3_upload *uploads;
	CURL *sync_easy;
	gl_s3_cleanup_fn cleanup_hook;
	void *cleanup_arg;
	char *endpoint, *bucket_url, *region, *sigv4, *access_key, *secret_key,
		*prefix, *bucket;
	int connect_timeout, timeout;
};

typedef struct part_rec {
	int no;
	char *etag;
} part_rec;

struct gl_s3_upload {
	gl_s3 *s;
	gl_s3_upload *prev, *next; /* s->uploads */
	char *key;                 /* relative, for messages */
	char *content_type;
	char *id;
	s3_req *init, *complete, *cleanup;
	int inflight;      /* caller's parts */
	int internal_part; /* the empty part of an empty object */
	part_rec *parts;
	int nparts, cap;
	int failed;
	gl_err first;   /* the first error, kept */
	int busy;       /* callbacks running on it */
	int completing; /* complete called, done not fired */
	int finished;   /* completed, done fired: free it */
	int abandoned;  /* aborted or failed: clean up, free */
	int completed;  /* ... but the object got stored */
	int cleanup_sent, in_done;
	gl_s3_ready_fn ready;
	gl_s3_done_fn done;
	void *ready_arg, *done_arg;
};

struct gl_s3_get {
	s3_req *r;
	gl_s3_data_fn on_data;
	gl_s3_get_done_fn done;
	void *arg;
};

/* An asynchronous listing of multipart uploads, page by page. */
typedef struct s3_list {
	gl_s3 *s;
	gl_s3_upload_fn each;
	gl_s3_done_fn done;
	void *arg;
	int pages;
	char *key_marker, *id_marker;
} s3_list;

static void list_push(gl_s3 *s, s3_req *r)
{
	r->prev = NULL;
	r->next = s->reqs;
	if (s->reqs)
		s->reqs->prev = r;
	s->reqs = r;
}

static void list_remove(gl_s3 *s, s3_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (s->reqs == r)
		s->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* Free a request without calling back. Outside curl, or when it is not
 * handed to curlev. */
static void req_destroy(s3_req *r)
{
	gl_curlev_detach(&r->x);
	list_remove(r->s, r);
	if (r->retry_ev)
		event_free(r->retry_ev);
	if (r->easy && !r->borrowed)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->what);
	free(r->mem);
	gl_sb_free(&r->body);
	free(r);
}

/* Forget a request: no callback will come from it. */
static void req_cancel(s3_req *r)
{
	if (!r || r->in_done || gl_curlev_cancelled(&r->x))
		return;
	r->owner = NULL;
	r->done = NULL;
	/* inside curl (maybe its own callbacks) curlev only marks it: the
	 * read/write callbacks refuse to go on and curlev frees it later; a
	 * request waiting for its retry is not curl's and goes at once */
	if (!gl_curlev_cancel(&r->x))
		req_destroy(r);
}

/* Hand a request to curl (curlev reports its end to req_finish). */
static void req_submit(s3_req *r)
{
	gl_curlev_add(&r->x);
}

/* ---- curl callbacks --- */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	s3_req *r = arg;
	size_t want = size * nitems;
	int64_t left = r->len - r->pos;
	ssize_t n;

	if (gl_curlev_cancelled(&r->x))
		return CURL_READFUNC_ABORT;
	if (left <= 0)
		return 0;
	if ((int64_t)want > left)
		want = (size_t)left;
	if (r->mem) {
		memcpy(buf, r->mem + r->pos, want);
		r->pos += (int64_t)want;
		return want;
	}
	/* a local spool file: pread does not block on the network, and
	 * the offset makes a retry read the very same bytes */
	do
		n = pread(r->fd, buf, want, (off_t)(r->off + r->pos));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->read_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (n == 0) {
		r->short_read = 1;
		return CURL_READFUNC_ABORT;
	}
	r->pos += n;
	return (size_t)n;
}

static int seek_cb(void *arg, curl_off_t offset, int origin)
{
	s3_req *r = arg;

	if (origin != SEEK_SET || offset < 0 || offset > r->len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->pos = offset;
	return CURL_SEEKFUNC_OK;
}

static void collect(s3_req *r, const char *p, size_t n)
{
	if (r->body.len + n > S3_BODY_CAP)
		n = r->body.len < S3_BODY_CAP ? S3_BODY_CAP - r->body.len : 0;
	if (!n)
		return;
	/* out of memory: the answer is cut; parsing will say so */
	(void)gl_sb_try_addn(&r->body, p, n);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	s3_req *r = arg;
	size_t n = size * nmemb, skip = 0;
	long status = 0;
	gl_s3_get *g;
	int rv;

	if (gl_curlev_cancelled(&r->x))
		return CURL_WRITEFUNC_ERROR;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (r->kind != K_GET || status < 200 || status > 299) {
		/* an XML answer or an error document: keep it for parsing */
		collect(r, ptr, n);
		return n;
	}
	g = r->owner;
	skip = gl_curlev_replayed(&r->x, n);
	if (skip == n)
		return n;
	r->delivered += (int64_t)(n - skip);
	if (!g || !g->on_data)
		return n;
	rv = g->on_data(g->arg, ptr + skip, n - skip);
	if (gl_curlev_cancelled(&r->x)) /* g may be gone */
		return CURL_WRITEFUNC_ERROR;
	if (rv < 0) {
		r->stopped = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	if (rv > 0)
		return gl_curlev_pause(&r->x, n);
	return n;
}

/* ---- building requests --- */

static char *url_of(gl_s3 *s, const char *key, const char *query)
{
	gl_sb b = { 0 };

	gl_sb_add(&b, s->bucket_url);
	if (key) {
		gl_sb_add(&b, "/");
		sb_enc(&b, s->prefix, 1);
		sb_enc(&b, key, 1);
	}
	if (query) {
		gl_sb_add(&b, "?");
		gl_sb_add(&b, query);
	}
	return b.p;
}

/* Keys: non-empty, and within S3's 1024 bytes with the prefix. */
static int check_key(gl_s3 *s, const char *key, gl_err *err)
{
	if (!key || !*key) {
		gl_fail(err, 500, NULL, "S3: empty object key");
		return -1;
	}
	if (strlen(s->prefix) + strlen(key) > S3_MAX_KEY) {
		gl_fail(err, 500, NULL, "S3: object key longer than %d bytes",
			S3_MAX_KEY);
		return -1;
	}
	return 0;
}

typedef struct req_spec {
	req_kind kind;
	const char *method;       /* GET HEAD PUT POST DELETE */
	const char *key;          /* relative; NULL: the bucket */
	const char *query;        /* canonical (sorted, encoded) */
	const char *content_type; /* PUT/POST */
	const char *range;
	int idempotent;
	int stream;   /* data transfer: stall limit, no total */
	long timeout; /* s, 0: the configured one */
} req_spec;

/* Set every option of r->easy for the spec. The body (mem/fd, len) is
 * already in r. */
static int req_setup(s3_req *r, const req_spec *sp)
{
	gl_s3 *s = r->s;
	CURL *e = r->easy;
	CURLcode rc = CURLE_OK;
	struct curl_slist *h = NULL, *t;
	char ct[300];
	int upload = !strcmp(sp->method, "PUT"),
	    post = !strcmp(sp->method, "POST");

#define ADDH(str)                                                             \
	do {                                                                  \
		t = curl_slist_append(h, str);                                \
		if (!t)                                                       \
			goto oom;                                             \
		h = t;                                                        \
	} while (0)
	ADDH("x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (upload || post) {
		/* curl's own "Expect: 100-continue" on parts stays: S3, RGW
		 * and Swift answer it, and a refused part is not sent in
		 * vain. (Removing it with "Expect:" breaks the signature:
		 * curl 7.88 signs the empty header it then leaves out.) */
		snprintf(ct, sizeof ct, "Content-Type: %s",
			 sp->content_type ? sp->content_type
					  : "application/octet-stream");
		ADDH(ct);
	}
#undef ADDH
	r->hdrs = h;
#define SET(opt, val)                                                         \
	do {                                                                  \
		if (rc == CURLE_OK)                                           \
			rc = curl_easy_setopt(e, opt, val);                   \
	} while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_HTTPHEADER, r->hdrs);
	SET(CURLOPT_AWS_SIGV4, s->sigv4);
	SET(CURLOPT_USERNAME, s->access_key);
	SET(CURLOPT_PASSWORD, s->secret_key);
	SET(CURLOPT_PATH_AS_IS, 1L);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, S3_USER_AGENT);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	/* S3 redirects (wrong region) would need a new signature anyway */
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* the store is configured explicitly: no proxy from the environment */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_BUFFERSIZE, S3_BUFFER_SIZE);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, S3_BUFFER_SIZE);
	SET(CURLOPT_CONNECTTIMEOUT, (long)s->connect_timeout);
	if (sp->stream) {
		/* a 1000 GiB download may take hours and pause for a slow
		 * client: give up only on a stall (curl does not count paused
		 * time as one) */
		SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
		SET(CURLOPT_LOW_SPEED_TIME, (long)s->timeout);
	} else {
		SET(CURLOPT_TIMEOUT,
		    sp->timeout ? sp->timeout : (long)s->timeout);
	}
	if (upload) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
	} else if (post) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	} else if (!strcmp(sp->method, "HEAD")) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(sp->method, "GET")) {
		SET(CURLOPT_CUSTOMREQUEST, sp->method);
	}
	if (upload || post) {
		SET(CURLOPT_READFUNCTION, read_cb);
		SET(CURLOPT_READDATA, r);
		SET(CURLOPT_SEEKFUNCTION, seek_cb);
		SET(CURLOPT_SEEKDATA, r);
	}
	if (sp->range)
		SET(CURLOPT_RANGE, sp->range);
#undef SET
	return rc == CURLE_OK ? 0 : -1;
oom:
	curl_slist_free_all(h);
	return -1;
}

/* A request for the loop (or, kind K_SYNC, for curl_easy_perform on the
 * shared blocking handle). body: mem (taken over) or fd range. */
static s3_req *req_new(gl_s3 *s, const req_spec *sp, char *mem, int fd,
		       int64_t off, int64_t len, gl_err *err)
{
	s3_req *r = calloc(1, sizeof *r);

	if (!r) {
		free(mem);
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	r->s = s;
	r->kind = sp->kind;
	r->idempotent = sp->idempotent;
	r->mem = mem;
	r->fd = fd;
	r->off = off;
	r->len = len;
	list_push(s, r);
	if (sp->kind == K_SYNC) {
		r->easy = s->sync_easy;
		r->borrowed = 1;
		curl_easy_reset(r->easy);
	} else {
		r->easy = curl_easy_init();
		if (r->easy)
			gl_curlev_xfer_init(&r->x, s->ev, r->easy, r);
	}
	r->url = url_of(s, sp->key, sp->query);
	r->what = strdup(sp->key ? sp->key : s->bucket);
	if (!r->easy || !r->url || !r->what || req_setup(r, sp) != 0) {
		req_destroy(r);
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	return r;
}

/* Back to the state before the first attempt. */
static void req_reset(s3_req *r)
{
	r->pos = 0;
	gl_sb_reset(&r->body);
	r->delivered = 0;
	r->errbuf[0] = '\0';
	r->read_errno = 0;
	r->short_read = 0;
}

/* ---- outcome of one attempt --- */

/* 0 if the attempt succeeded; else err filled and *retry says whether
 * trying again could help. */
static int req_outcome(s3_req *r, CURLcode rc, long *statusp, gl_err *e,
		       int *retry)
{
	long status = 0;
	char host[300];

	*retry = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	*statusp = status;
	if (r->read_errno) {
		gl_fail(e, 500, NULL,
			"cannot read the data for S3 object '%.300s': "
			"%s",
			r->what, strerror(r->read_errno));
		return -1;
	}
	if (r->short_read) {
		gl_fail(e, 500, NULL,
			"the data for S3 object '%.300s' ended before "
			"%lld bytes",
			r->what, (long long)r->len);
		return -1;
	}
	if (r->stopped) {
		gl_fail(e, 499, NULL, "S3 download of '%.300s' stopped",
			r->what);
		return -1;
	}
	if (rc == CURLE_OUT_OF_MEMORY) {
		gl_fail(e, 500, NULL, "out of memory");
		return -1;
	}
	if (rc != CURLE_OK) {
		gl_curl_url_host(r->s->endpoint, "the S3 endpoint", host,
				 sizeof host);
		gl_fail(e, 503, NULL, "S3 unavailable: %s: %s", host,
			r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
		/* a GET whose data the caller already has cannot restart */
		*retry = r->delivered == 0 && !gl_curlev_cancelled(&r->x);
		return -1;
	}
	if (status >= 200 && status <= 299) {
		char *code;

		/* CompleteMultipartUpload can fail after its 200 (S3 sends
		 * the status before it knows): the body tells */
		if (r->kind != K_COMPLETE ||
		    !(code = gl_s3_xml_text(r->body.p, r->body.len, "Code")))
			return 0;
		free(code);
		gl_s3_map_error(500, r->body.p, r->body.len, r->what, e);
		return -1;
	}
	gl_s3_map_error(status, r->body.p, r->body.len, r->what, e);
	*retry = status >= 500;
	return -1;
}

static void upload_req_done(s3_req *r, long status, const gl_err *err);
static void get_req_done(s3_req *r, long status, const gl_err *err);
static void list_req_done(s3_req *r, const gl_err *err);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	s3_req *r = arg;

	/* a request waiting here is not curl's: a cancel freed it at once */
	req_reset(r);
	req_submit(r);
}

/* curlev's done: a transfer ended (outside curl). Retry once if it may
 * help, else report to the owner and free the request. */
static void req_finish(void *arg, CURLcode rc)
{
	s3_req *r = arg;
	gl_s3 *s = r->s;
	gl_err err;
	long status;
	int retry;

	memset(&err, 0, sizeof err);
	if (req_outcome(r, rc, &status, &err, &retry) != 0 && retry &&
	    r->idempotent && r->attempts == 0) {
		struct timeval tv = { 0, S3_RETRY_DELAY_MS * 1000 };

		r->attempts++;
		gl_warn("S3: retrying %s after: %s", r->what, err.msg);
		if (!r->retry_ev)
			r->retry_ev = evtimer_new(s->base, retry_cb, r);
		if (r->retry_ev && evtimer_add(r->retry_ev, &tv) == 0)
			return;
	}
	r->in_done = 1;
	if (r->kind == K_GET)
		get_req_done(r, status, err.status ? &err : NULL);
	else if (r->kind == K_OP && r->done)
		r->done(r->arg, err.status ? &err : NULL);
	else if (r->kind == K_LIST)
		list_req_done(r, err.status ? &err : NULL);
	else if (r->kind != K_OP)
		upload_req_done(r, status, err.status ? &err : NULL);
	req_destroy(r);
}

/* Blocking: run a K_SYNC request to its end (one retry). */
static int sync_run(s3_req *r, long *status, gl_err *err)
{
	int retry;

	for (;;) {
		CURLcode rc;

		req_reset(r);
		rc = curl_easy_perform(r->easy);
		if (req_outcome(r, rc, status, err, &retry) == 0)
			return 0;
		if (!retry || !r->idempotent || r->attempts > 0)
			return -1;
		r->attempts++;
		gl_warn("S3: retrying %s after: %s", r->what, err->msg);
		usleep(S3_RETRY_DELAY_MS * 1000);
	}
}

/* ---- multipart upload --- */

static void upload_free(gl_s3_upload *u)
{
	gl_s3 *s = u->s;

	if (u->prev)
		u->prev->next = u->next;
	else if (s->uploads == u)
		s->uploads = u->next;
	if (u->next)
		u->next->prev = u->prev;
	for (int i = 0; i < u->nparts; i++)
		free(u->parts[i].etag);
	free(u->parts);
	free(u->key);
	free(u->content_type);
	free(u->id);
	free(u);
}

static void upload_fail(gl_s3_upload *u, const gl_err *err)
{
	if (u->failed)
		return; /* the first error is the one that explains */
	u->failed = 1;
	u->first = *err;
}

static s3_req *upload_req(gl_s3_upload *u, req_kind kind, const char *method,
			  const char *query, char *mem, int fd, int64_t off,
			  int64_t len, gl_err *err)
{
	req_spec sp = { 0 };
	s3_req *r;

	sp.kind = kind;
	sp.method = method;
	sp.key = u->key;
	sp.query = query;
	sp.content_type = kind == K_INIT       ? u->content_type
			  : kind == K_COMPLETE ? "application/xml"
					       : NULL;
	sp.idempotent = kind == K_PART || kind == K_CLEANUP;
	sp.stream = kind == K_PART;
	if (kind == K_COMPLETE)
		/* assembling thousands of parts takes the server a while */
		sp.timeout = (long)u->s->timeout * S3_COMPLETE_TIMEOUT_FACTOR;
	r = req_new(u->s, &sp, mem, fd, off, len, err);
	if (r)
		r->owner = u;
	return r;
}

/* "partNumber=N&uploadId=ID": sorted, encoded (see the top). */
static char *id_query(const char *id, int part_no)
{
	char *e = gl_s3_encode(id, 0);
	gl_sb b = { 0 };

	if (!e)
		return NULL;
	if (part_no > 0)
		gl_sb_addf(&b, "partNumber=%d&", part_no);
	gl_sb_add(&b, "uploadId=");
	gl_sb_add(&b, e);
	free(e);
	return b.p;
}

static int part_cmp(const void *a, const void *b)
{
	const part_rec *x = a, *y = b;

	return (x->no > y->no) - (x->no < y->no);
}

static int record_part(gl_s3_upload *u, int no, const char *etag)
{
	char *dup = strdup(etag);

	if (!dup)
		return -1;
	for (int i = 0; i < u->nparts; i++) {
		if (u->parts[i].no == no) {
			/* a part sent again replaces the old one, as in S3 */
			free(u->parts[i].etag);
			u->parts[i].etag = dup;
			return 0;
		}
	}
	if (u->nparts == u->cap) {
		int cap = u->cap ? u->cap * 2 : 16;
		part_rec *np = realloc(u->parts, (size_t)cap * sizeof *np);

		if (!np) {
			free(dup);
			return -1;
		}
		u->parts = np;
		u->cap = cap;
	}
	u->parts[u->nparts].no = no;
	u->parts[u->nparts].etag = dup;
	u->nparts++;
	return 0;
}

static char *complete_doc(gl_s3_upload *u)
{
	gl_sb b = { 0 };

	qsort(u->parts, (size_t)u->nparts, sizeof *u->parts, part_cmp);
	gl_sb_add(&b, "<CompleteMultipartUpload>");
	for (int i = 0; i < u->nparts; i++) {
		gl_sb_addf(&b, "<Part><PartNumber>%d</PartNumber><ETag>",
			   u->parts[i].no);
		sb_xml(&b, u->parts[i].etag);
		gl_sb_add(&b, "</ETag></Part>");
	}
	gl_sb_add(&b, "</CompleteMultipartUpload>");
	return b.p;
}

static int send_part(gl_s3_upload *u, int part_no, int fd, int64_t off,
		     int64_t len, gl_s3_done_fn done, void *arg, int internal,
		     gl_err *err)
{
	char *q = id_query(u->id, part_no);
	s3_req *r;

	if (!q) {
		gl_fail(err, 500, NULL, "out of memory");
		return -1;
	}
	r = upload_req(u, K_PART, "PUT", q, NULL, fd, off, len, err);
	free(q);
	if (!r)
		return -1;
	r->part_no = part_no;
	r->internal = internal;
	r->done = done;
	r->arg = arg;
	req_submit(r);
	return 0;
}

/* Fire complete's done and end the handle: freed after a success,
 * aborted (detached, freed when that ends) after a failure. */
static void complete_finish(gl_s3_upload *u, const gl_err *err)
{
	gl_s3_done_fn done = u->done;

	u->completing = 0;
	u->done = NULL;
	u->ready = NULL;
	u->in_done = 1;
	u->busy++;
	if (done)
		done(u->done_arg, err);
	u->busy--;
	u->in_done = 0;
	if (err)
		u->abandoned = 1;
	else
		u->finished = 1;
}

/* The end of an abandoned upload: abort it on the server or, when it got
 * completed meanwhile, delete the object nobody will reference. */
static void send_cleanup(gl_s3_upload *u)
{
	gl_err err;
	char *q = NULL;

	u->cleanup_sent = 1;
	if (!u->completed && !(q = id_query(u->id, 0))) {
		gl_warn("S3: cannot abort the upload of %s: out of memory",
			u->key);
		return;
	}
	u->cleanup = upload_req(u, K_CLEANUP, "DELETE", q, NULL, -1, 0, 0,
				&err);
	free(q);
	if (u->cleanup)
		req_submit(u->cleanup);
	else if (u->s->cleanup_hook)
		u->s->cleanup_hook(u->s->cleanup_arg, u->key,
				   u->completed ? NULL : u->id, &err);
	else
		gl_warn("S3: cannot abort the upload of %s: %s", u->key,
			err.msg);
}

/* Send what completes the upload: the empty part of an empty object
 * first, then CompleteMultipartUpload. No callbacks. */
static int complete_send(gl_s3_upload *u, gl_err *err)
{
	char *doc, *q;

	if (u->nparts == 0) {
		/* S3 needs one part: an empty object is one empty part */
		if (send_part(u, 1, -1, 0, 0, NULL, NULL, 1, err) != 0)
			return -1;
		u->internal_part = 1;
		return 0;
	}
	doc = complete_doc(u);
	q = doc ? id_query(u->id, 0) : NULL;
	if (!q) {
		free(doc);
		gl_fail(err, 500, NULL, "out of memory");
		return -1;
	}
	u->complete = upload_req(u, K_COMPLETE, "POST", q, doc, -1, 0,
				 (int64_t)strlen(doc), err);
	free(q);
	if (!u->complete)
		return -1;
	req_submit(u->complete);
	return 0;
}

/* Move the upload on after an answer or an abort: never while a callback
 * on it runs (busy), and it calls back only from answers (depth 0). */
static void upload_settle(gl_s3_upload *u)
{
	gl_err err;

	if (u->busy)
		return;
	if (u->finished) {
		upload_free(u);
		return;
	}
	if (u->abandoned) {
		/* the init and completion answers say what exists on the
		 * server; wait for them */
		if (u->init || u->complete || u->inflight ||
		    u->internal_part || u->cleanup)
			return;
		if (u->id && !u->cleanup_sent) {
			send_cleanup(u);
			if (u->cleanup)
				return;
		}
		upload_free(u);
		return;
	}
	if (!u->completing || u->complete || u->inflight || u->internal_part)
		return;
	if (u->failed) {
		/* a part failed after complete was called */
		err = u->first;
		complete_finish(u, &err);
	} else if (complete_send(u, &err) != 0) {
		upload_fail(u, &err);
		complete_finish(u, &u->first);
	} else {
		return;
	}
	upload_settle(u);
}

/* A request of an upload ended (depth 0). */
static void upload_req_done(s3_req *r, long status, const gl_err *err)
{
	gl_s3_upload *u = r->owner;
	gl_err e;

	if (!u)
		return;
	switch (r->kind) {
	case K_INIT:
		u->init = NULL;
		if (!err) {
			u->id = gl_s3_xml_text(r->body.p, r->body.len,
					       "UploadId");
			if (!u->id || !*u->id) {
				free(u->id);
				u->id = NULL;
				gl_fail(&e, 500, NULL,
					"S3 did not return an upload "
					"id for '%.300s'",
					u->key);
				err = &e;
			}
		}
		if (err)
			upload_fail(u, err);
		if (!u->abandoned && u->ready) {
			u->busy++;
			u->ready(u->ready_arg, u->id, err);
			u->busy--;
		}
		break;
	case K_PART: {
		gl_s3_done_fn done = r->done;
		struct curl_header *h = NULL;

		if (r->internal)
			u->internal_part = 0;
		else
			u->inflight--;
		if (!err) {
			if (curl_easy_header(r->easy, "ETag", 0, CURLH_HEADER,
					     -1, &h) != CURLHE_OK ||
			    !h || !h->value || !*h->value) {
				gl_fail(&e, 500, NULL,
					"S3 returned no ETag for part "
					"%d of '%.300s'",
					r->part_no, u->key);
				err = &e;
			} else if (record_part(u, r->part_no, h->value) != 0) {
				gl_fail(&e, 500, NULL, "out of memory");
				err = &e;
			}
		}
		if (err)
			upload_fail(u, err);
		if (!u->abandoned && done) {
			u->busy++;
			done(r->arg, err);
			u->busy--;
		}
		break;
	}
	case K_COMPLETE:
		u->complete = NULL;
		if (u->abandoned) {
			/* the caller gave up during the completion: undo it */
			u->completed = !err;
			break;
		}
		if (err)
			upload_fail(u, err);
		/* the first error explains, even if this one came later */
		complete_finish(u, err ? &u->first : NULL);
		break;
	case K_CLEANUP:
		u->cleanup = NULL;
		if (u->s->cleanup_hook)
			/* the owner keeps a failed cleanup for later */
			u->s->cleanup_hook(u->s->cleanup_arg, u->key,
					   u->completed ? NULL : u->id, err);
		else if (err && err->status != 404)
			gl_warn("S3: cleaning up the upload of %s failed: %s",
				u->key, err->msg);
		break;
	default:
		break;
	}
	upload_settle(u);
}

gl_s3_upload *gl_s3_upload_start(gl_s3 *s, const char *key,
				 const char *content_type,
				 gl_s3_ready_fn ready, void *arg, gl_err *err)
{
	gl_s3_upload *u;

	if (check_key(s, key, err) != 0)
		return NULL;
	u = calloc(1, sizeof *u);
	if (!u || !(u->key = strdup(key)) ||
	    !(u->content_type = strdup(content_type && *content_type
					       ? content_type
					       : "application/octet-stream"))) {
		if (u)
			free(u->key);
		free(u);
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	u->s = s;
	u->ready = ready;
	u->ready_arg = arg;
	u->next = s->uploads;
	if (s->uploads)
		s->uploads->prev = u;
	s->uploads = u;
	u->init = upload_req(u, K_INIT, "POST", "uploads=", NULL, -1, 0, 0,
			     err);
	if (!u->init) {
		upload_free(u);
		return NULL;
	}
	req_submit(u->init);
	return u;
}

/* May parts still be sent / the upload be completed? Else err says why
 * (after a failed part, that part's error). */
static int upload_open(gl_s3_upload *u, gl_err *err)
{
	if (u->abandoned || u->completing || u->finished) {
		gl_fail(err, 500, NULL, "S3 upload of '%.300s' is finished",
			u->key);
		return -1;
	}
	if (u->failed) {
		*err = u->first;
		return -1;
	}
	if (!u->id) {
		gl_fail(err, 500, NULL,
			"S3 upload of '%.300s' is not started yet", u->key);
		return -1;
	}
	return 0;
}

int gl_s3_upload_part_fd(gl_s3_upload *u, int part_no, int fd, int64_t off,
			 int64_t len, gl_s3_done_fn part_done, void *arg,
			 gl_err *err)
{
	if (upload_open(u, err) != 0)
		return -1;
	if (part_no < 1 || part_no > S3_MAX_PARTS || off < 0 || len < 0 ||
	    len > S3_MAX_PART || (len > 0 && fd < 0)) {
		gl_fail(err, 500, NULL, "invalid S3 part %d (%lld bytes)",
			part_no, (long long)len);
		return -1;
	}
	if (u->inflight >= GL_S3_MAX_INFLIGHT) {
		gl_fail(err, 500, NULL, "more than %d S3 parts in flight",
			GL_S3_MAX_INFLIGHT);
		return -1;
	}
	if (send_part(u, part_no, fd, off, len, part_done, arg, 0, err) != 0)
		return -1;
	u->inflight++;
	return 0;
}

int gl_s3_upload_complete(gl_s3_upload *u, gl_s3_done_fn done, void *arg,
			  gl_err *err)
{
	if (upload_open(u, err) != 0)
		return -1;
	/* with parts in flight, the last part's answer sends it */
	if (!u->inflight && complete_send(u, err) != 0)
		return -1;
	u->completing = 1;
	u->done = done;
	u->done_arg = arg;
	return 0;
}

void gl_s3_upload_abort(gl_s3_upload *u)
{
	if (!u || u->abandoned || u->finished || u->in_done)
		return;
	u->abandoned = 1;
	u->completing = 0;
	u->ready = NULL;
	u->done = NULL;
	/* parts: stop sending (closing the connection makes the server drop
	 * a half-sent part); the init and completion answers are awaited,
	 * they say what exists on the server */
	for (s3_req *r = u->s->reqs, *next; r; r = next) {
		next = r->next;
		if (r->owner == u && r->kind == K_PART)
			req_cancel(r);
	}
	u->inflight = 0;
	u->internal_part = 0;
	/* inside curl (depth > 0) the cancelled parts leave the multi
	 * handle on the next pass, before the queued abort request starts */
	upload_settle(u);
}

const char *gl_s3_upload_id(const gl_s3_upload *u)
{
	return u ? u->id : NULL;
}

/* ---- GET --- */

/* The object's size from a 200's Content-Length or a 206's
 * "bytes a-b/total". */
static int64_t get_total(s3_req *r, long status)
{
	struct curl_header *h = NULL;
	curl_off_t cl = -1;

	if (status == 206) {
		const char *slash;

		if (curl_easy_header(r->easy, "Content-Range", 0, CURLH_HEADER,
				     -1, &h) != CURLHE_OK ||
		    !h || !h->value)
			return -1;
		slash = strchr(h->value, '/');
		if (!slash || !isdigit((unsigned char)slash[1]))
			return -1;
		return strtoll(slash + 1, NULL, 10);
	}
	if (status >= 200 && status <= 299 &&
	    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
			      &cl) == CURLE_OK)
		return cl;
	return -1;
}

static void get_req_done(s3_req *r, long status, const gl_err *err)
{
	gl_s3_get *g = r->owner;

	if (!g)
		return;
	r->owner = NULL;
	if (g->done)
		g->done(g->arg, (int)status, err ? -1 : get_total(r, status),
			err);
	free(g);
}

gl_s3_get *gl_s3_get_start(gl_s3 *s, const char *key, const char *range,
			   gl_s3_data_fn on_data, gl_s3_get_done_fn done,
			   void *arg, gl_err *err)
{
	req_spec sp = { 0 };
	gl_s3_get *g;

	if (check_key(s, key, err) != 0)
		return NULL;
	if (range && (strlen(range) > 40 || !gl_byte_range_valid(range))) {
		gl_fail(err, 400, NULL, "invalid byte range '%.64s'", range);
		return NULL;
	}
	g = calloc(1, sizeof *g);
	if (!g) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	g->on_data = on_data;
	g->done = done;
	g->arg = arg;
	sp.kind = K_GET;
	sp.method = "GET";
	sp.key = key;
	sp.idempotent = 1;
	sp.stream = 1;
	sp.range = range; /* curl copies it; "a-b", "a-", "-n" as they are */
	g->r = req_new(s, &sp, NULL, -1, 0, 0, err);
	if (!g->r) {
		free(g);
		return NULL;
	}
	g->r->owner = g;
	req_submit(g->r);
	return g;
}

void gl_s3_get_resume(gl_s3_get *g)
{
	if (!g || !g->r || g->r->in_done)
		return;
	gl_curlev_resume(&g->r->x);
}

void gl_s3_get_cancel(gl_s3_get *g)
{
	if (!g || !g->r || g->r->in_done)
		return;
	req_cancel(g->r);
	free(g);
}

/* ---- blocking helpers --- */

static int sync_simple(gl_s3 *s, const char *method, const char *key,
		       const char *query, const void *data, size_t len,
		       int64_t *size, gl_err *err)
{
	req_spec sp = { 0 };
	char *mem = NULL;
	s3_req *r;
	long status;
	int rc;

	if (key && check_key(s, key, err) != 0)
		return -1;
	if (len) {
		mem = malloc(len);
		if (!mem) {
			gl_fail(err, 500, NULL, "out of memory");
			return -1;
		}
		memcpy(mem, data, len);
	}
	sp.kind = K_SYNC;
	sp.method = method;
	sp.key = key;
	sp.query = query;
	/* a small PUT sends the same bytes again: idempotent too */
	sp.idempotent = 1;
	r = req_new(s, &sp, mem, -1, 0, (int64_t)len, err);
	if (!r)
		return -1;
	rc = sync_run(r, &status, err);
	if (rc == 0 && size) {
		curl_off_t cl = -1;
		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &cl);
		*size = cl;
	}
	req_destroy(r);
	return rc;
}

int gl_s3_delete(gl_s3 *s, const char *key, gl_err *err)
{
	return sync_simple(s, "DELETE", key, NULL, NULL, 0, NULL, err);
}

int gl_s3_head(gl_s3 *s, const char *key, int64_t *size, gl_err *err)
{
	int64_t sz = -1;
	int rc = sync_simple(s, "HEAD", key, NULL, NULL, 0, &sz, err);

	if (size)
		*size = sz;
	return rc;
}

int gl_s3_put_small(gl_s3 *s, const char *key, const void *data, size_t len,
		    gl_err *err)
{
	return sync_simple(s, "PUT", key, NULL, data, len, NULL, err);
}

/* Abort by the full key (with the prefix), as listings give it. */
static int abort_full(gl_s3 *s, const char *full_key, const char *id,
		      gl_err *err)
{
	size_t pl = strlen(s->prefix);
	char *q;
	int rc;

	if (strncmp(full_key, s->prefix, pl) || !full_key[pl]) {
		gl_fail(err, 500, NULL,
			"S3 key '%.300s' is outside the prefix", full_key);
		return -1;
	}
	q = id_query(id, 0);
	if (!q) {
		gl_fail(err, 500, NULL, "out of memory");
		return -1;
	}
	rc = sync_simple(s, "DELETE", full_key + pl, q, NULL, 0, NULL, err);
	free(q);
	return rc;
}

/* The query of AbortMultipartUpload, or NULL with err set. */
static char *abort_query(const char *upload_id, gl_err *err)
{
	char *q;

	if (!upload_id || !*upload_id) {
		gl_fail(err, 500, NULL, "S3: empty upload id");
		return NULL;
	}
	q = id_query(upload_id, 0);
	if (!q)
		gl_fail(err, 500, NULL, "out of memory");
	return q;
}

int gl_s3_abort_by_id(gl_s3 *s, const char *key, const char *upload_id,
		      gl_err *err)
{
	char *q = abort_query(upload_id, err);
	int rc;

	if (!q)
		return -1;
	rc = sync_simple(s, "DELETE", key, q, NULL, 0, NULL, err);
	free(q);
	return rc;
}

/* The query of a ListMultipartUploads page under the prefix: sorted by
 * name, as the canonical query must be. */
static char *uploads_query(gl_s3 *s, const char *key_marker,
			   const char *id_marker)
{
	gl_sb q = { 0 };

	if (key_marker) {
		gl_sb_add(&q, "key-marker=");
		sb_enc(&q, key_marker, 0);
		gl_sb_add(&q, "&");
	}
	gl_sb_add(&q, "prefix=");
	sb_enc(&q, s->prefix, 0);
	if (id_marker) {
		gl_sb_add(&q, "&upload-id-marker=");
		sb_enc(&q, id_marker, 0);
	}
	gl_sb_add(&q, "&uploads=");
	return q.p;
}

/* The next page's markers, or 0 when the listing is at its end (a server
 * repeating its markers would loop forever). Takes nk and ni. */
static int next_page(char **key_marker, char **id_marker, int truncated,
		     char *nk, char *ni)
{
	if (!truncated || !nk || !*nk ||
	    (*key_marker && !strcmp(nk, *key_marker) && ni && *id_marker &&
	     !strcmp(ni, *id_marker))) {
		free(nk);
		free(ni);
		return 0;
	}
	free(*key_marker);
	free(*id_marker);
	*key_marker = nk;
	*id_marker = ni;
	return 1;
}

typedef struct stale_ctx {
	gl_s3 *s;
	int64_t cutoff;
	int aborted, failed;
	gl_err *err;
} stale_ctx;

static int stale_one(void *arg, const char *key, const char *id,
		     int64_t initiated)
{
	stale_ctx *c = arg;
	gl_err e;

	if (initiated < 0 || initiated > c->cutoff)
		return 0;
	if (abort_full(c->s, key, id, &e) == 0) {
		c->aborted++;
		gl_info("S3: aborted the stale multipart upload of %s", key);
	} else if (e.status != 404) {
		/* gone meanwhile is fine; otherwise keep the first error and
		 * go on with the others */
		if (!c->failed)
			*c->err = e;
		c->failed = 1;
	}
	return 0;
}

int gl_s3_abort_stale(gl_s3 *s, int older_than_s, gl_err *err)
{
	stale_ctx c = { s, (int64_t)time(NULL) - older_than_s, 0, 0, err };
	char *key_marker = NULL, *id_marker = NULL;
	int rc = 0;

	for (int page = 0; page < 100000; page++) {
		req_spec sp = { 0 };
		char *nk = NULL, *ni = NULL, *body, *q;
		size_t blen;
		s3_req *r;
		long status;
		int truncated, n;

		q = uploads_query(s, key_marker, id_marker);
		sp.kind = K_SYNC;
		sp.method = "GET";
		sp.query = q;
		sp.idempotent = 1;
		r = req_new(s, &sp, NULL, -1, 0, 0, err);
		free(q);
		if (!r || sync_run(r, &status, err) != 0) {
			if (r)
				req_destroy(r);
			rc = -1;
			break;
		}
		/* the aborts reuse the blocking handle: free the request,
		 * keep its answer */
		body = r->body.p;
		blen = r->body.len;
		r->body = (gl_sb){ 0 };
		req_destroy(r);
		n = gl_s3_parse_uploads(body, blen, stale_one, &c, &truncated,
					&nk, &ni);
		free(body);
		if (n < 0) {
			free(nk);
			free(ni);
			gl_fail(err, 503, NULL,
				"S3 unavailable: cannot parse the "
				"list of multipart uploads");
			rc = -1;
			break;
		}
		if (!next_page(&key_marker, &id_marker, truncated, nk, ni))
			break;
	}
	free(key_marker);
	free(id_marker);
	if (rc != 0)
		return -1;
	return c.failed ? -1 : c.aborted;
}

/* ---- asynchronous one-shot requests --- */

void gl_s3_set_cleanup_hook(gl_s3 *s, gl_s3_cleanup_fn fn, void *arg)
{
	s->cleanup_hook = fn;
	s->cleanup_arg = arg;
}

static int op_start(gl_s3 *s, const char *method, const char *key,
		    const char *query, gl_s3_done_fn done, void *arg,
		    gl_err *err)
{
	req_spec sp = { 0 };
	s3_req *r;

	if (check_key(s, key, err) != 0)
		return -1;
	sp.kind = K_OP;
	sp.method = method;
	sp.key = key;
	sp.query = query;
	sp.idempotent = 1;
	r = req_new(s, &sp, NULL, -1, 0, 0, err);
	if (!r)
		return -1;
	r->done = done;
	r->arg = arg;
	req_submit(r);
	return 0;
}

int gl_s3_delete_async(gl_s3 *s, const char *key, gl_s3_done_fn done,
		       void *arg, gl_err *err)
{
	return op_start(s, "DELETE", key, NULL, done, arg, err);
}

int gl_s3_abort_async(gl_s3 *s, const char *key, const char *upload_id,
		      gl_s3_done_fn done, void *arg, gl_err *err)
{
	char *q = abort_query(upload_id, err);
	int rc;

	if (!q)
		return -1;
	rc = op_start(s, "DELETE", key, q, done, arg, err);
	free(q);
	return rc;
}

static void list_free(s3_list *l)
{
	free(l->key_marker);
	free(l->id_marker);
	free(l);
}

static int list_send(s3_list *l, gl_err *err)
{
	req_spec sp = { 0 };
	char *q = uploads_query(l->s, l->key_marker, l->id_marker);
	s3_req *r;

	sp.kind = K_LIST;
	sp.method = "GET";
	sp.query = q;
	sp.idempotent = 1;
	r = req_new(l->s, &sp, NULL, -1, 0, 0, err);
	free(q);
	if (!r)
		return -1;
	r->owner = l;
	req_submit(r);
	return 0;
}

/* Keys come relative to the prefix, as the callers name objects. */
static int list_each(void *arg, const char *key, const char *id,
		     int64_t initiated)
{
	s3_list *l = arg;
	size_t pl = strlen(l->s->prefix);

	if (strncmp(key, l->s->prefix, pl) || !key[pl])
		return 0;
	return l->each(l->arg, key + pl, id, initiated);
}

static void list_req_done(s3_req *r, const gl_err *err)
{
	s3_list *l = r->owner;
	char *nk = NULL, *ni = NULL;
	gl_err e = { 0 };
	int truncated = 0, n;

	r->owner = NULL;
	if (!l)
		return;
	if (!err) {
		n = gl_s3_parse_uploads(r->body.p, r->body.len, list_each, l,
					&truncated, &nk, &ni);
		if (n < 0) {
			gl_fail(&e, 503, NULL,
				"S3 unavailable: cannot parse the "
				"list of multipart uploads");
			err = &e;
		} else if (++l->pages < 100000 &&
			   next_page(&l->key_marker, &l->id_marker, truncated,
				     nk, ni)) {
			if (list_send(l, &e) == 0)
				return;
			err = &e;
		}
	}
	if (l->done)
		l->done(l->arg, err);
	list_free(l);
}

int gl_s3_list_uploads_async(gl_s3 *s, gl_s3_upload_fn each,
			     gl_s3_done_fn done, void *arg, gl_err *err)
{
	s3_list *l = calloc(1, sizeof *l);

	if (!l) {
		gl_fail(err, 500, NULL, "out of memory");
		return -1;
	}
	l->s = s;
	l->each = each;
	l->done = done;
	l->arg = arg;
	if (list_send(l, err) != 0) {
		list_free(l);
		return -1;
	}
	return 0;
}

/* ---- setup --- */

static void destroy_cb(void *arg)
{
	req_destroy(arg);
}

static const gl_curlev_ops s3_ops = {
	.done = req_finish,
	.destroy = destroy_cb,
};

static char *dup_or(const char *v, const char *dflt)
{
	return strdup(v && *v ? v : dflt);
}

gl_s3 *gl_s3_new(struct event_base *base, const gl_s3_conf *c, gl_err *err)
{
	gl_s3 *s;
	size_t n;
	gl_sb b = { 0 };

	if (gl_curl_init(err) < 0)
		return NULL;
	if (!c->endpoint || (strncmp(c->endpoint, "http://", 7) &&
			     strncmp(c->endpoint, "https://", 8))) {
		gl_fail(err, 500, NULL,
			"S3 endpoint must be an http:// or https:// "
			"URL");
		return NULL;
	}
	if (!c->bucket || !*c->bucket) {
		gl_fail(err, 500, NULL, "S3 bucket is not set");
		return NULL;
	}
	if (!c->access_key || !*c->access_key || !c->secret_key) {
		gl_fail(err, 500, NULL, "S3 credentials are not set");
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		goto oom;
	s->base = base;
	s->connect_timeout = c->connect_timeout > 0 ? c->connect_timeout : 10;
	s->timeout = c->timeout > 0 ? c->timeout : 60;
	s->endpoint = strdup(c->endpoint);
	if (!s->endpoint)
		goto oom;
	n = strlen(s->endpoint);
	while (n > 0 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	s->region = dup_or(c->region, "us-east-1");
	s->bucket = strdup(c->bucket);
	s->access_key = strdup(c->access_key);
	s->secret_key = strdup(c->secret_key);
	s->prefix = dup_or(c->prefix, "");
	if (!s->region || !s->bucket || !s->access_key || !s->secret_key ||
	    !s->prefix)
		goto oom;
	gl_sb_addf(&b, "aws:amz:%.100s:s3", s->region);
	s->sigv4 = b.p;
	b = (gl_sb){ 0 };
	gl_sb_add(&b, s->endpoint);
	gl_sb_add(&b, "/");
	sb_enc(&b, s->bucket, 0);
	s->bucket_url = b.p; /* s owns both strings now */
	s->ev = gl_curlev_new(base, &s3_ops, s);
	s->sync_easy = curl_easy_init();
	if (!s->ev || !s->sync_easy)
		goto oom;
	return s;
oom:
	gl_s3_free(s);
	gl_fail(err, 500, NULL, "out of memory");
	return NULL;
}

void gl_s3_free(gl_s3 *s)
{
	if (!s)
		return;
	/* cleanups that cannot be sent any more go to their owner, which
	 * keeps them for later (the process is stopping) */
	for (gl_s3_upload *u = s->uploads; u && s->cleanup_hook; u = u->next) {
		gl_err e = { 0 };

		if (!u->id || u->finished || (u->cleanup_sent && !u->cleanup))
			continue;
		gl_fail(&e, 503, NULL,
			"the cleanup of the S3 upload of %.300s "
			"was not sent: the process stopped",
			u->key);
		if (!u->completed)
			s->cleanup_hook(s->cleanup_arg, u->key, u->id, &e);
		if (u->complete || u->completed)
			/* the completion may have stored the object */
			s->cleanup_hook(s->cleanup_arg, u->key, NULL, &e);
	}
	/* no callbacks: gets and listings are freed with their requests,
	 * uploads below */
	while (s->reqs) {
		s3_req *r = s->reqs;

		if (r->kind == K_GET && r->owner)
			free(r->owner);
		if (r->kind == K_LIST && r->owner)
			list_free(r->owner);
		req_destroy(r);
	}
	while (s->uploads)
		upload_free(s->uploads);
	gl_curlev_free(s->ev);
	if (s->sync_easy)
		curl_easy_cleanup(s->sync_easy);
	free(s->endpoint);
	free(s->bucket_url);
	free(s->region);
	free(s->sigv4);
	free(s->access_key);
	free(s->secret_key);
	free(s->prefix);
	free(s->bucket);
	free(s);
}
