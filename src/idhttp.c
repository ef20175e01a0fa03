/* idhttp.c - small in-memory HTTP exchanges on curlev (see idhttp.h). */
#include "idhttp.h"
#include "curlev.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDHTTP_USER_AGENT "glared/" GLARED_VERSION
#define SUBJECT_MAX 8192

struct gl_idhttp_req {
	gl_idhttp *h;
	gl_curlev_xfer x;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url, *post;
	gl_sb body;
	size_t max_body;
	char *subject;
	char errbuf[CURL_ERROR_SIZE];
	gl_idhttp_fn cb;
	void *arg;
	gl_idhttp_req *prev, *next;
};

struct gl_idhttp {
	gl_curlev *ev;
	char *cafile, *certfile, *keyfile;
	int insecure;
	long connect_timeout, timeout;
	gl_idhttp_req *reqs;
};

static void req_free(gl_idhttp_req *r)
{
	gl_idhttp *h = r->h;

	gl_curlev_detach(&r->x);
	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	gl_sb_free(&r->body);
	free(r->subject);
	free(r->url);
	free(r->post);
	free(r);
}

static void done_cb(void *owner, CURLcode rc)
{
	gl_idhttp_req *r = owner;
	gl_idhttp_resp resp = { .rc = rc };

	if (rc == CURLE_OK) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE,
				  &resp.status);
	} else {
		resp.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
	}
	resp.body = r->body.p ? r->body.p : "";
	resp.len = r->body.len;
	resp.subject_token = r->subject;
	r->cb(r->arg, &resp);
	req_free(r);
}

static void destroy_cb(void *owner)
{
	req_free(owner);
}

static const gl_curlev_ops ops = {
	.done = done_cb,
	.destroy = destroy_cb,
};

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
	gl_idhttp_req *r = arg;

	if (gl_curlev_cancelled(&r->x) || r->body.len + n > r->max_body)
		return 0;
	gl_sb_addn(&r->body, p, n);
	return n;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	gl_idhttp_req *r = arg;
	static const char name[] = "X-Subject-Token:";
	size_t k = sizeof name - 1;

	if (n > k && !strncasecmp(p, name, k)) {
		const char *v = p + k, *end = p + n;

		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
				   end[-1] == ' ' || end[-1] == '\t'))
			end--;
		free(r->subject);
		r->subject = NULL;
		if (end > v && (size_t)(end - v) < SUBJECT_MAX)
			r->subject = strndup(v, (size_t)(end - v));
	}
	return n;
}

static int set_str(CURL *e, CURLoption o, const char *v)
{
	return v && *v ? curl_easy_setopt(e, o, v) != CURLE_OK : 0;
}

gl_idhttp_req *gl_idhttp_start(gl_idhttp *h, const char *url,
			       const char *const *headers, const char *body,
			       size_t max_body, gl_idhttp_fn cb, void *arg)
{
	gl_idhttp_req *r = calloc(1, sizeof *r);
	CURL *e;
	int bad = 0;

	if (!r)
		return NULL;
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	r->max_body = max_body;
	r->url = strdup(url);
	r->post = body ? strdup(body) : NULL;
	r->easy = e = curl_easy_init();
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	if (!r->url || (body && !r->post) || !e)
		goto fail;
	for (int i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(r->hdrs, headers[i]);
		if (!l)
			goto fail;
		r->hdrs = l;
	}
	if (body) {
		struct curl_slist *l =
			curl_slist_append(r->hdrs,
					  "Content-Type: application/json");
		if (!l)
			goto fail;
		r->hdrs = l;
	}
#define SET(o, v) bad |= curl_easy_setopt(e, o, v) != CURLE_OK
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_HTTPHEADER, r->hdrs);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, IDHTTP_USER_AGENT);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_TIMEOUT, h->timeout);
	if (h->connect_timeout > 0)
		SET(CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
	if (h->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (body) {
		SET(CURLOPT_POSTFIELDS, r->post);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(r->post));
	}
#undef SET
	bad |= set_str(e, CURLOPT_CAINFO, h->cafile);
	bad |= set_str(e, CURLOPT_SSLCERT, h->certfile);
	bad |= set_str(e, CURLOPT_SSLKEY, h->keyfile);
	if (bad)
		goto fail;
	gl_curlev_xfer_init(&r->x, h->ev, e, r);
	gl_curlev_add(&r->x);
	return r;
fail:
	req_free(r);
	return NULL;
}

void gl_idhttp_cancel(gl_idhttp_req *r)
{
	if (r && !gl_curlev_cancel(&r->x))
		req_free(r);
}

static char *dup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

gl_idhttp *gl_idhttp_new(struct event_base *base, const gl_idhttp_opts *o)
{
	gl_idhttp *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->ev = gl_curlev_new(base, &ops, h);
	h->cafile = dup_opt(o->cafile);
	h->certfile = dup_opt(o->certfile);
	h->keyfile = dup_opt(o->keyfile);
	h->insecure = o->insecure;
	h->connect_timeout = o->connect_timeout;
	h->timeout = o->timeout > 0 ? o->timeout : 30;
	if (!h->ev) {
		gl_idhttp_free(h);
		return NULL;
	}
	return h;
}

void gl_idhttp_free(gl_idhttp *h)
{
	if (!h)
		return;
	while (h->reqs)
		req_free(h->reqs);
	gl_curlev_free(h->ev);
	free(h->cafile);
	free(h->certfile);
	free(h->keyfile);
	free(h);
}
