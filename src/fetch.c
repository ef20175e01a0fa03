/* fetch.c - HTTP(S) fetches of external blobs inside the event loop
 * (see fetch.h).
 *
 * Transport: one gl_curlev (curlev.c, libcurl's multi interface on the
 * caller's libevent base) per gl_fetch; each job is one of its transfers.
 * This file adds the policy: the concurrency cap (extra jobs wait in
 * `queue`), limits, digests, error messages.
 *
 * Reentrancy (the rules are curlev.h's). User code runs in two places:
 *  - the data callback, from inside curl: there cancel only marks the job
 *    (curlev destroys it on the next pass), start and resume take effect on
 *    the next pass;
 *  - the done callback, called with curl idle, where anything but
 *    gl_fetch_free is fine and takes effect at once.
 *
 * Pausing. A data callback returning 1 has consumed its piece; write_cb
 * returns gl_curlev_pause and curl hands the piece over again on resume,
 * where gl_curlev_replayed says how much to skip, so each byte is hashed,
 * counted and delivered exactly once.
 *
 * SSRF guard: gl_netguard, applied in CURLOPT_OPENSOCKETFUNCTION to every
 * address curl connects to (each hop, each address of a name).
 */
#include "fetch.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "curlev.h"
#include "util.h"
#include "log.h"

#define FETCH_MAX_URL 2048
/* Bytes one loop turn may take from all transfers before yielding: ~3 ms
 * of hashing, so other requests see millisecond latencies meanwhile. */
#define TURN_BUDGET (1 << 20)
#define FETCH_BUFFER_SIZE (512L * 1024)
#define FETCH_USER_AGENT "glared/0.1"

/* ---- errors --- */

/* ---- network guard --- */

typedef struct cidr {
	int family;          /* AF_INET or AF_INET6 */
	unsigned char a[16]; /* network, 4 or 16 bytes */
	int prefix;
} cidr;

struct gl_netguard {
	cidr *v;
	int n;
};

typedef struct deny_range {
	const char *net; /* also the text shown in messages */
	int prefix;
	/* completes "address X is ..."; NULL: globally reachable, allowed */
	const char *label;
	int unwrap;      /* v6: the IPv4 address inside starts at this byte */
	const char *ref; /* where the range is defined */
} deny_range;

/* Every entry of the IANA IPv4 Special-Purpose Address Registry, plus
 * multicast. The rule: refuse what the registry marks not globally
 * reachable, let through what it marks globally reachable (those stay in
 * the table so the more specific entry wins over the block around it).
 * First match wins: most specific first where ranges nest. */
/* clang-format off */
static const deny_range deny4[] = {
	{ "0.0.0.0", 32, "the \"this host on this network\" address", 0,
	  "RFC 1122 3.2.1.3" },
	{ "0.0.0.0", 8, "in the \"this network\" block", 0, "RFC 791 3.2" },
	{ "10.0.0.0", 8, "in a private network", 0, "RFC 1918" },
	{ "100.64.0.0", 10, "in the carrier-grade NAT range", 0,
	  "RFC 6598 shared address space" },
	{ "127.0.0.0", 8, "loopback", 0, "RFC 1122 3.2.1.3" },
	{ "169.254.0.0", 16, "link-local", 0, "RFC 3927" },
	{ "172.16.0.0", 12, "in a private network", 0, "RFC 1918" },
	{ "192.0.0.0", 29, "in the IPv4 service continuity prefix", 0,
	  "RFC 7335" },
	{ "192.0.0.8", 32, "the IPv4 dummy address", 0, "RFC 7600" },
	{ "192.0.0.9", 32, NULL, 0, "RFC 7723 PCP anycast" },
	{ "192.0.0.10", 32, NULL, 0, "RFC 8155 TURN anycast" },
	{ "192.0.0.170", 32, "a NAT64/DNS64 discovery address", 0,
	  "RFC 8880, RFC 7050 2.2" },
	{ "192.0.0.171", 32, "a NAT64/DNS64 discovery address", 0,
	  "RFC 8880, RFC 7050 2.2" },
	{ "192.0.0.0", 24, "in the IETF protocol assignments block", 0,
	  "RFC 6890 2.1" },
	{ "192.0.2.0", 24, "in a documentation range", 0,
	  "RFC 5737 TEST-NET-1" },
	{ "192.31.196.0", 24, NULL, 0, "RFC 7535 AS112-v4" },
	{ "192.52.193.0", 24, NULL, 0, "RFC 7450 AMT" },
	{ "192.88.99.0", 24, "in the 6to4 relay anycast block", 0,
	  "RFC 7526, deprecated" },
	{ "192.168.0.0", 16, "in a private network", 0, "RFC 1918" },
	{ "192.175.48.0", 24, NULL, 0, "RFC 7534 AS112 direct delegation" },
	{ "198.18.0.0", 15, "in the benchmarking range", 0, "RFC 2544" },
	{ "198.51.100.0", 24, "in a documentation range", 0,
	  "RFC 5737 TEST-NET-2" },
	{ "203.0.113.0", 24, "in a documentation range", 0,
	  "RFC 5737 TEST-NET-3" },
	{ "224.0.0.0", 4, "multicast", 0,
	  "RFC 5771, the multicast registry" },
	{ "255.255.255.255", 32, "the broadcast address", 0,
	  "RFC 8190, RFC 919 7" },
	{ "240.0.0.0", 4, "in the reserved range", 0, "RFC 1112 4" },
};
/* clang-format on */

/* Every entry of the IANA IPv6 Special-Purpose Address Registry, plus
 * multicast, deprecated site-local, and the forms that carry an IPv4
 * address in a fixed place (unwrap: that address is judged by deny4).
 * ISATAP interface identifiers can follow any prefix: guard_judge checks
 * them apart. Same rule and order as deny4. */
static const deny_range deny6[] = {
	{ "::", 128, "the unspecified address", 0, "RFC 4291 2.5.2" },
	{ "::1", 128, "loopback", 0, "RFC 4291 2.5.3" },
	{ "::ffff:0:0", 96, "IPv4-mapped", 12, "RFC 4291 2.5.5.2" },
	{ "::ffff:0:0:0", 96, "IPv4-translated", 12, "RFC 2765 2.1, SIIT" },
	{ "::", 96, "IPv4-compatible", 12, "RFC 4291 2.5.5.1, deprecated" },
	{ "64:ff9b::", 96, "NAT64", 12, "RFC 6052 2.1" },
	/* where the IPv4 part of a local-use NAT64 address sits depends on
	 * the operator's prefix length, so it cannot be unwrapped */
	{ "64:ff9b:1::", 48, "in the local-use NAT64 range", 0, "RFC 8215" },
	{ "100::", 64, "in the discard-only range", 0, "RFC 6666" },
	{ "100:0:0:1::", 64, "in the dummy IPv6 prefix", 0, "RFC 9780" },
	/* the Teredo client address is obfuscated; refuse the range */
	{ "2001::", 32, "a Teredo address", 0, "RFC 4380, RFC 8190" },
	{ "2001:1::1", 128, NULL, 0, "RFC 7723 PCP anycast" },
	{ "2001:1::2", 128, NULL, 0, "RFC 8155 TURN anycast" },
	{ "2001:1::3", 128, NULL, 0, "RFC 9665 DNS-SD SRP anycast" },
	{ "2001:2::", 48, "in the benchmarking range", 0, "RFC 5180" },
	{ "2001:3::", 32, NULL, 0, "RFC 7450 AMT" },
	{ "2001:4:112::", 48, NULL, 0, "RFC 7535 AS112-v6" },
	{ "2001:10::", 28, "in the deprecated ORCHID range", 0, "RFC 4843" },
	{ "2001:20::", 28, NULL, 0, "RFC 7343 ORCHIDv2" },
	{ "2001:30::", 28, NULL, 0, "RFC 9374 DET prefix" },
	{ "2001::", 23, "in the IETF protocol assignments block", 0,
	  "RFC 2928" },
	{ "2001:db8::", 32, "in a documentation range", 0, "RFC 3849" },
	{ "2002::", 16, "6to4", 2, "RFC 3056" },
	{ "2620:4f:8000::", 48, NULL, 0, "RFC 7534 AS112 direct delegation" },
	{ "3fff::", 20, "in a documentation range", 0, "RFC 9637" },
	{ "5f00::", 16, "in the SRv6 SID block", 0, "RFC 9602" },
	{ "fc00::", 7, "in a unique-local network", 0, "RFC 4193, RFC 8190" },
	{ "fe80::", 10, "link-local", 0, "RFC 4291 2.5.6" },
	{ "fec0::", 10, "site-local", 0, "RFC 3879, deprecated" },
	{ "ff00::", 8, "multicast", 0, "RFC 4291 2.7" },
};

/* First `prefix` bits of a and b equal? */
static int prefix_match(const unsigned char *a, const unsigned char *b,
			int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full))
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static const deny_range *deny_lookup(const deny_range *t, size_t n, int af,
				     const unsigned char *a)
{
	unsigned char net[16];

	for (size_t i = 0; i < n; i++) {
		/* the tables are constant and valid; parse on use, it is
		 * cheap next to a connect() */
		if (inet_pton(af, t[i].net, net) == 1 &&
		    prefix_match(a, net, t[i].prefix))
			return &t[i];
	}
	return NULL;
}

static int allowed(const gl_netguard *g, int af, const unsigned char *a)
{
	if (!g)
		return 0;
	for (int i = 0; i < g->n; i++)
		if (g->v[i].family == af &&
		    prefix_match(a, g->v[i].a, g->v[i].prefix))
			return 1;
	return 0;
}

/* Parse "addr[/prefix]" into c. */
static int parse_cidr(const char *s, cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof *c);
	if (inet_pton(AF_INET, buf, c->a) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->a) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c->prefix = max;
	if (slash) {
		const char *p = slash + 1;
		int v = 0;
		if (!*p || strlen(p) > 3)
			return -1;
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			v = v * 10 + (*p - '0');
		}
		if (v > max)
			return -1;
		c->prefix = v;
	}
	/* host bits are ignored: "10.1.2.3/8" means 10.0.0.0/8 */
	for (int bit = c->prefix; bit < max; bit++)
		c->a[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
	return 0;
}

gl_netguard *gl_netguard_new(const gl_strlist *allow, gl_err *err)
{
	gl_netguard *g = calloc(1, sizeof *g);
	int n = allow ? allow->n : 0;

	if (!g)
		goto oom;
	if (n) {
		g->v = calloc((size_t)n, sizeof *g->v);
		if (!g->v)
			goto oom;
	}
	for (int i = 0; i < n; i++) {
		const char *s = allow->v[i] ? allow->v[i] : "";
		if (parse_cidr(s, &g->v[i]) != 0) {
			gl_fail(err, 400, NULL,
				"invalid network '%s' in the allowed networks "
				"(expected an IP address or CIDR such as "
				"127.0.0.1/32)",
				s);
			gl_netguard_free(g);
			return NULL;
		}
		g->n++;
	}
	return g;
oom:
	free(g);
	gl_fail(err, 500, NULL, "out of memory");
	return NULL;
}

void gl_netguard_free(gl_netguard *g)
{
	if (!g)
		return;
	free(g->v);
	free(g);
}

int gl_netguard_allows(const gl_netguard *g, const char *addr)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, addr, a) == 1)
		return allowed(g, AF_INET, a);
	if (inet_pton(AF_INET6, addr, a) == 1)
		return allowed(g, AF_INET6, a);
	return 0;
}

/* The verdict on one address, with the parts both message styles need. */
typedef struct verdict {
	char addr[INET6_ADDRSTRLEN + INET_ADDRSTRLEN + 32];
	const char *label; /* NULL when allowed */
	const char *net;
	int prefix;
} verdict;

/* Judge an IPv4 address found inside an IPv6 one: 1 allowed, else 0 and
 * the verdict names both. */
static int judge_inner(const gl_netguard *g, const char *v6txt,
		       const char *kind, const unsigned char *v4, verdict *v)
{
	char v4txt[INET_ADDRSTRLEN];
	const deny_range *d;

	if (allowed(g, AF_INET, v4))
		return 1;
	d = deny_lookup(deny4, sizeof deny4 / sizeof deny4[0], AF_INET, v4);
	if (!d || !d->label)
		return 1;
	inet_ntop(AF_INET, v4, v4txt, sizeof v4txt);
	snprintf(v->addr, sizeof v->addr, "%s (%s %s)", v6txt, kind, v4txt);
	v->label = d->label;
	v->net = d->net;
	v->prefix = d->prefix;
	return 0;
}

/* An ISATAP interface identifier (RFC 5214 6.1): 0000:5efe or, with the
 * u and g bits, 0100/0200/0300:5efe, then an IPv4 address. It can follow
 * any prefix, and an ISATAP interface on this host would reach that IPv4
 * address. */
static int isatap(const unsigned char *a)
{
	return (a[8] & 0xfc) == 0 && a[9] == 0 && a[10] == 0x5e &&
	       a[11] == 0xfe;
}

static int guard_judge(const gl_netguard *g, const struct sockaddr *sa,
		       verdict *v)
{
	const deny_range *d;

	memset(v, 0, sizeof *v);
	if (!sa) {
		snprintf(v->addr, sizeof v->addr, "(none)");
		v->label = "not an IP address";
		return 0;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		const unsigned char *a = (const unsigned char *)&s4->sin_addr;

		inet_ntop(AF_INET, a, v->addr, sizeof v->addr);
		if (allowed(g, AF_INET, a))
			return 1;
		d = deny_lookup(deny4, sizeof deny4 / sizeof deny4[0], AF_INET,
				a);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = s6->sin6_addr.s6_addr;
		char txt[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, a, txt, sizeof txt);
		snprintf(v->addr, sizeof v->addr, "%s", txt);
		if (allowed(g, AF_INET6, a))
			return 1;
		d = deny_lookup(deny6, sizeof deny6 / sizeof deny6[0],
				AF_INET6, a);
		/* forms that reach an IPv4 address: judge that address, and
		 * every one inside if there are two (6to4 + ISATAP) */
		if (d && d->unwrap) {
			if (!judge_inner(g, txt, d->label, a + d->unwrap, v))
				return 0;
			d = NULL;
		}
		if ((!d || !d->label) && isatap(a) &&
		    !judge_inner(g, txt, "ISATAP", a + 12, v))
			return 0;
	} else {
		snprintf(v->addr, sizeof v->addr, "of family %d",
			 (int)sa->sa_family);
		v->label = "not an IP address";
		return 0;
	}
	if (!d || !d->label)
		return 1;
	v->label = d->label;
	v->net = d->net;
	v->prefix = d->prefix;
	return 0;
}

int gl_netguard_check(const gl_netguard *g, const struct sockaddr *sa,
		      char *why, size_t whylen)
{
	verdict v;
	int ok = guard_judge(g, sa, &v);

	if (!ok && why && whylen) {
		if (v.net)
			snprintf(why, whylen, "address %s is %s (%s/%d)",
				 v.addr, v.label, v.net, v.prefix);
		else
			snprintf(why, whylen, "address %s is %s", v.addr,
				 v.label);
	}
	return ok;
}

/* ---- fetcher state --- */

typedef struct job_list {
	gl_fetch_job *head, *tail;
	int n;
} job_list;

struct gl_fetch {
	gl_curlev *ev;
	gl_netguard *guard;
	job_list active;   /* handed to curlev (until it reports) */
	job_list queue;    /* waiting for a slot, FIFO */
	size_t turn_bytes; /* bytes delivered in this loop turn */
	/* copied from the conf: it may be reloaded under us */
	int connect_timeout, timeout, low_speed_limit, low_speed_time;
	int max_redirects, max_concurrent;
};

struct gl_fetch_job {
	gl_fetch *f;
	gl_fetch_job *prev, *next; /* in f->active or f->queue */
	job_list *list;
	CURL *easy;
	gl_curlev_xfer x;
	char *range;
	char *post; /* POST body, owned */
	struct curl_slist *headers;
	int64_t max_bytes;
	gl_fetch_data_fn on_data;
	gl_fetch_done_fn on_done;
	void *arg;
	gl_digest *dg;
	int64_t bytes; /* digested and delivered */
	unsigned too_big : 1;
	unsigned aborted : 1;
	unsigned http_failed : 1;
	unsigned in_done : 1;
	char reason[64];   /* reason phrase of the last status line */
	char refused[320]; /* first address the guard refused */
	char errbuf[CURL_ERROR_SIZE];
	gl_fetch_result res;
};

static void jl_push(job_list *l, gl_fetch_job *j)
{
	j->prev = l->tail;
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
	j->list = l;
}

static void jl_remove(gl_fetch_job *j)
{
	job_list *l = j->list;

	if (!l)
		return;
	if (j->prev)
		j->prev->next = j->next;
	else
		l->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		l->tail = j->prev;
	l->n--;
	j->prev = j->next = NULL;
	j->list = NULL;
}

/* Free a job without calling back (outside curl, or never handed over). */
static void job_destroy(gl_fetch_job *j)
{
	gl_metrics_fetch_ended();
	gl_curlev_detach(&j->x);
	jl_remove(j);
	if (j->easy)
		curl_easy_cleanup(j->easy);
	gl_digest_free(j->dg);
	free(j->range);
	free(j->post);
	curl_slist_free_all(j->headers);
	free(j);
}

/* Move queued jobs into free slots (from inside curl, curlev adds them on
 * the next pass). Also curlev's idle callback: finished jobs free slots. */
static void start_queued(void *arg)
{
	gl_fetch *f = arg;

	while (f->queue.head && f->active.n < f->max_concurrent) {
		gl_fetch_job *j = f->queue.head;

		jl_remove(j);
		jl_push(&f->active, j);
		gl_curlev_add(&j->x);
	}
}

/* ---- result and error mapping --- */

/* Host (and port) of the URL curl was working on, for messages: never the
 * whole URL, which may carry credentials. */
static void current_host(gl_fetch_job *j, char *out, size_t len)
{
	char *url = NULL;

	curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &url);
	gl_curl_url_host(url, "the remote host", out, len);
}

static void url_scheme(gl_fetch_job *j, char *out, size_t len)
{
	char *url = NULL, *scheme = NULL;
	CURLU *u;

	out[0] = '\0';
	curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &url);
	if (!url || !(u = curl_url()))
		return;
	/* the scheme is not one curl supports here: parse it anyway */
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ==
		    CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
		snprintf(out, len, "%s", scheme);
	curl_free(scheme);
	curl_url_cleanup(u);
}

static void timeout_error(gl_fetch_job *j, gl_err *e)
{
	gl_fetch *f = j->f;
	curl_off_t total = 0, conn = 0;
	char host[300];
	long secs;

	curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &total);
	curl_easy_getinfo(j->easy, CURLINFO_CONNECT_TIME_T, &conn);
	secs = (long)((total + 500000) / 1000000);
	current_host(j, host, sizeof host);
	if (strstr(j->errbuf, "too slow"))
		gl_fail(e, 400, NULL,
			"fetching from %s timed out after %ld s: less than %d "
			"bytes/s for %d s",
			host, secs, f->low_speed_limit, f->low_speed_time);
	else if (conn == 0)
		gl_fail(e, 400, NULL, "connecting to %s timed out after %ld s",
			host, secs);
	else
		gl_fail(e, 400, NULL,
			"fetching from %s timed out after %ld s (the limit is "
			"%d s)",
			host, secs, f->timeout);
}

static void map_error(gl_fetch_job *j, CURLcode rc, long status, gl_err *e)
{
	char host[300];
	long oserr = 0;

	if (j->aborted) {
		gl_fail(e, 499, NULL, "aborted");
		return;
	}
	if (j->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		gl_fail(e, 413, NULL,
			"external blob is larger than the allowed %lld "
			"bytes",
			(long long)j->max_bytes);
		return;
	}
	if (j->http_failed || rc == CURLE_OK) {
		gl_fail(e, 400, NULL, "remote server answered %ld%s%s", status,
			j->reason[0] ? " " : "", j->reason);
		return;
	}
	current_host(j, host, sizeof host);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		if (j->refused[0]) {
			gl_fail(e, 400, NULL, "refusing to connect to %s",
				j->refused);
			return;
		}
		curl_easy_getinfo(j->easy, CURLINFO_OS_ERRNO, &oserr);
		gl_fail(e, 400, NULL, "cannot connect to %s: %s", host,
			oserr ? strerror((int)oserr) : j->errbuf);
		return;
	case CURLE_COULDNT_RESOLVE_HOST: {
		/* the host alone, without the port */
		char *colon = strrchr(host, ':');
		if (colon && !strchr(colon, ']'))
			*colon = '\0';
		gl_fail(e, 400, NULL, "cannot resolve host %s", host);
		return;
	}
	case CURLE_OPERATION_TIMEDOUT:
		timeout_error(j, e);
		return;
	case CURLE_TOO_MANY_REDIRECTS:
		gl_fail(e, 400, NULL, "too many redirects (more than %d)",
			j->f->max_redirects);
		return;
	case CURLE_UNSUPPORTED_PROTOCOL: {
		/* the first URL was checked, so this is a redirect; curl's
		 * effective URL is its target (name the scheme only) */
		char scheme[32];
		url_scheme(j, scheme, sizeof scheme);
		gl_fail(e, 400, NULL,
			"remote server redirected to a%s%s URL, which "
			"is not http or https",
			scheme[0] ? " " : "", scheme);
		return;
	}
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
		gl_fail(e, 400, NULL, "TLS error with %s: %s", host,
			j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
		return;
	case CURLE_OUT_OF_MEMORY:
		gl_fail(e, 500, NULL, "out of memory while fetching from %s",
			host);
		return;
	default:
		gl_fail(e, 400, NULL, "fetching from %s failed: %s", host,
			j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
		return;
	}
}

/* A remote server's header value, kept only if it is printable ASCII:
 * it ends up in stored records and in our own response headers. */
static void copy_text(char *out, size_t len, const char *v)
{
	out[0] = '\0';
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return;
	snprintf(out, len, "%s", v);
}

static void copy_header(CURL *easy, const char *name, char *out, size_t len)
{
	struct curl_header *h = NULL;

	/* request -1: the last response, i.e. after the redirects */
	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) ==
		    CURLHE_OK &&
	    h && h->value)
		copy_text(out, len, h->value);
}

static void build_result(gl_fetch_job *j, CURLcode rc)
{
	gl_fetch_result *r = &j->res;
	long status = 0;
	char *ct = NULL;

	memset(r, 0, sizeof *r);
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	r->http_status = (int)status;
	r->size = j->bytes;
	if (curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct) ==
		    CURLE_OK &&
	    ct)
		copy_text(r->content_type, sizeof r->content_type, ct);
	copy_header(j->easy, "ETag", r->etag, sizeof r->etag);
	copy_header(j->easy, "Last-Modified", r->last_modified,
		    sizeof r->last_modified);
	if (rc == CURLE_OK && !j->http_failed && status >= 200 &&
	    status < 300) {
		r->ok = 1;
		gl_digest_final(j->dg, &r->digest);
		return;
	}
	map_error(j, rc, status, &r->err);
}

/* curlev's done: report and free a job. Outside curl: the callback may do
 * anything (start, cancel, resume other jobs) but free the fetcher. */
static void finish(void *arg, CURLcode rc)
{
	gl_fetch_job *j = arg;

	build_result(j, rc);
	gl_metrics_fetch_outcome(j->res.ok ? GL_FETCH_OK
				 : j->res.err.status == 413
					 ? GL_FETCH_TOO_LARGE
				 : j->res.err.status == 499
					 ? GL_FETCH_CANCELLED
					 : GL_FETCH_ERROR,
				 j->bytes);
	if (gl_log_debug_enabled()) {
		char *url = NULL, shown[300];
		double secs = 0;
		curl_easy_getinfo(j->easy, CURLINFO_EFFECTIVE_URL, &url);
		curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME, &secs);
		/* no user:password@ in the log */
		gl_conn_display(url, shown, sizeof shown);
		gl_debug("fetch: %s: %s, %lld bytes in %.3f s", shown,
			 j->res.ok ? "ok" : j->res.err.msg,
			 (long long)j->bytes, secs);
	}
	jl_remove(j);
	j->in_done = 1;
	if (j->on_done)
		j->on_done(j->arg, &j->res);
	j->list = NULL;
	job_destroy(j);
}

/* ---- curl callbacks --- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	gl_fetch_job *j = arg;
	size_t n = size * nmemb, skip = 0, fresh;
	long status = 0;
	int r;

	if (gl_curlev_cancelled(&j->x))
		return CURL_WRITEFUNC_ERROR;
	/* curl does not hand us the bodies of redirects it follows, so a
	 * body here belongs to the final response: an error page is not
	 * the blob */
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		j->http_failed = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	skip = gl_curlev_replayed(&j->x, n);
	if (skip == n)
		return n;
	fresh = n - skip;
	if (j->max_bytes >= 0 && j->bytes + (int64_t)fresh > j->max_bytes) {
		j->too_big = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	gl_digest_update(j->dg, ptr + skip, fresh);
	j->bytes += (int64_t)fresh;
	j->f->turn_bytes += fresh;
	r = j->on_data ? j->on_data(j->arg, ptr + skip, fresh) : 0;
	if (gl_curlev_cancelled(&j->x))
		return CURL_WRITEFUNC_ERROR;
	if (r < 0) {
		j->aborted = 1;
		return CURL_WRITEFUNC_ERROR;
	}
	if (r > 0)
		return gl_curlev_pause(&j->x, n);
	if (j->f->turn_bytes >= TURN_BUDGET)
		/* curl would go on reading (and we hashing) for up to ~100
		 * buffers in one socket_action: yield the loop to other
		 * requests and come back on the next pass */
		return gl_curlev_yield(&j->x, n);
	return n;
}

/* Remember the reason phrase of each status line; the last one is the
 * final response's. */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	gl_fetch_job *j = arg;
	size_t n = size * nitems, i = 0, k = 0;

	if (n < 5 || memcmp(buf, "HTTP/", 5))
		return n;
	while (i < n && buf[i] != ' ')
		i++;
	while (i < n && buf[i] == ' ')
		i++;
	while (i < n && isdigit((unsigned char)buf[i]))
		i++;
	while (i < n && buf[i] == ' ')
		i++;
	while (i < n && buf[i] != '\r' && buf[i] != '\n' &&
	       k + 1 < sizeof j->reason) {
		unsigned char c = (unsigned char)buf[i++];
		j->reason[k++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	j->reason[k] = '\0';
	return n;
}

static curl_socket_t opensocket_cb(void *arg, curlsocktype purpose,
				   struct curl_sockaddr *addr)
{
	gl_fetch_job *j = arg;
	verdict v;
	int fd;

	if (!guard_judge(j->f->guard, &addr->addr, &v)) {
		if (!j->refused[0]) {
			if (v.net)
				snprintf(j->refused, sizeof j->refused,
					 "%s: %s (%s/%d)", v.addr, v.label,
					 v.net, v.prefix);
			else
				snprintf(j->refused, sizeof j->refused,
					 "%s: %s", v.addr, v.label);
		}
		return CURL_SOCKET_BAD;
	}
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC,
		    addr->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* ---- public API --- */

/* curlev's turn: a new loop turn gets a fresh byte budget */
static void new_turn(void *arg)
{
	gl_fetch *f = arg;

	f->turn_bytes = 0;
}

static void destroy_cb(void *arg)
{
	job_destroy(arg);
}

static const gl_curlev_ops fetch_ops = {
	.done = finish,
	.destroy = destroy_cb,
	.turn = new_turn,
	.idle = start_queued,
};

gl_fetch *gl_fetch_new(struct event_base *base, const gl_conf *conf,
		       gl_err *err)
{
	gl_fetch *f;

	if (gl_curl_init(err) < 0)
		return NULL;
	f = calloc(1, sizeof *f);
	if (!f) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	f->connect_timeout = conf->fetch_connect_timeout;
	f->timeout = conf->fetch_timeout;
	f->low_speed_limit = conf->fetch_low_speed_limit;
	f->low_speed_time = conf->fetch_low_speed_time;
	f->max_redirects = conf->fetch_max_redirects;
	f->max_concurrent = conf->fetch_max_concurrent > 0
				    ? conf->fetch_max_concurrent
				    : 1;
	f->guard = gl_netguard_new(&conf->external_location_allowed_networks,
				   err);
	if (!f->guard)
		goto fail_quiet;
	f->ev = gl_curlev_new(base, &fetch_ops, f);
	if (f->ev)
		return f;
	gl_fail(err, 500, NULL, "out of memory");
fail_quiet:
	gl_fetch_free(f);
	return NULL;
}

void gl_fetch_free(gl_fetch *f)
{
	if (!f)
		return;
	while (f->active.head)
		job_destroy(f->active.head);
	while (f->queue.head)
		job_destroy(f->queue.head);
	gl_curlev_free(f->ev);
	gl_netguard_free(f->guard);
	free(f);
}

int gl_fetch_check_url(const char *url, char *host_out, size_t hostlen,
		       gl_err *err)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	int rc = -1;

	if (!url || !*url) {
		gl_fail(err, 400, NULL, "the URL is empty");
		return -1;
	}
	if (strlen(url) > FETCH_MAX_URL) {
		gl_fail(err, 400, NULL, "the URL is longer than %d characters",
			FETCH_MAX_URL);
		return -1;
	}
	u = curl_url();
	if (!u) {
		gl_fail(err, 500, NULL, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		gl_fail(err, 400, NULL, "'%.200s' is not a valid URL", url);
		goto out;
	}
	/* curl lower-cases the scheme */
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		gl_fail(err, 400, NULL,
			"only http and https URLs can be fetched, "
			"not %.32s",
			scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    !host[0]) {
		gl_fail(err, 400, NULL, "the URL '%.200s' has no host", url);
		goto out;
	}
	if (host_out && hostlen)
		snprintf(host_out, hostlen, "%s", host);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

static int add_header(gl_fetch_job *j, const char *name, const char *value)
{
	char line[1024];
	struct curl_slist *l;

	if (value)
		snprintf(line, sizeof line, "%s: %s", name, value);
	else
		snprintf(line, sizeof line, "%s", name);
	l = curl_slist_append(j->headers, line);
	if (!l)
		return -1;
	j->headers = l;
	return 0;
}

/* The request headers and body of opts (kept by the job). */
static int setup_request(gl_fetch_job *j, const gl_fetch_opts *o)
{
	if (!o)
		return 0;
	if (o->if_none_match && *o->if_none_match &&
	    add_header(j, "If-None-Match", o->if_none_match) < 0)
		return -1;
	if (o->if_modified_since && *o->if_modified_since &&
	    add_header(j, "If-Modified-Since", o->if_modified_since) < 0)
		return -1;
	for (int i = 0; o->headers && o->headers[i]; i++)
		if (add_header(j, o->headers[i], NULL) < 0)
			return -1;
	if (o->post) {
		/* no 100-continue round trip for a small body */
		if (add_header(j, "Expect:", NULL) < 0)
			return -1;
		j->post = malloc(o->post_len + 1);
		if (!j->post)
			return -1;
		memcpy(j->post, o->post, o->post_len);
		j->post[o->post_len] = '\0';
	}
	return 0;
}

static int setup_easy(gl_fetch *f, gl_fetch_job *j, const char *url,
		      const gl_fetch_opts *o)
{
	CURL *e = curl_easy_init();
	CURLcode rc = CURLE_OK;

	if (!e)
		return -1;
	j->easy = e;
	gl_curlev_xfer_init(&j->x, f->ev, e, j);
#define SET(opt, val)                                                         \
	do {                                                                  \
		if (rc == CURLE_OK)                                           \
			rc = curl_easy_setopt(e, opt, val);                   \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_ERRORBUFFER, j->errbuf);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, j);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, j);
	SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
	SET(CURLOPT_OPENSOCKETDATA, j);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_USERAGENT, FETCH_USER_AGENT);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, o && o->no_redirects ? 0L : 1L);
	SET(CURLOPT_MAXREDIRS, (long)f->max_redirects);
	/* no proxy from the environment: it would reroute the request and
	 * the guard would only see the proxy */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)f->connect_timeout * 1000L);
	SET(CURLOPT_TIMEOUT_MS,
	    (long)(o && o->timeout > 0 ? o->timeout : f->timeout) * 1000L);
	if (f->low_speed_limit > 0 && f->low_speed_time > 0) {
		SET(CURLOPT_LOW_SPEED_LIMIT, (long)f->low_speed_limit);
		SET(CURLOPT_LOW_SPEED_TIME, (long)f->low_speed_time);
	}
	SET(CURLOPT_BUFFERSIZE, FETCH_BUFFER_SIZE);
	/* one stream per transfer anyway; HTTP/1.1 keeps pause/resume
	 * simple (no h2 flow-control windows to fill while paused) */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* CURLOPT_ACCEPT_ENCODING stays unset: we hash the exact bytes */
	if (j->max_bytes >= 0)
		/* refuses a larger declared Content-Length up front; the
		 * write callback enforces it for undeclared sizes */
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->max_bytes);
	if (j->range)
		SET(CURLOPT_RANGE, j->range);
	if (j->headers)
		SET(CURLOPT_HTTPHEADER, j->headers);
	if (j->post) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->post_len);
		SET(CURLOPT_POSTFIELDS, j->post);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

gl_fetch_job *gl_fetch_start(gl_fetch *f, const char *url,
			     const gl_fetch_opts *opts,
			     gl_fetch_data_fn on_data,
			     gl_fetch_done_fn on_done, void *arg, gl_err *err)
{
	gl_fetch_job *j;

	if (gl_fetch_check_url(url, NULL, 0, err) != 0)
		return NULL;
	if (opts && opts->range && !gl_byte_range_valid(opts->range)) {
		gl_fail(err, 400, NULL, "invalid byte range '%.64s'",
			opts->range);
		return NULL;
	}
	j = calloc(1, sizeof *j);
	if (!j)
		goto oom;
	j->f = f;
	j->max_bytes = opts ? opts->max_bytes : -1;
	j->on_data = on_data;
	j->on_done = on_done;
	j->arg = arg;
	j->dg = gl_digest_new();
	if (!j->dg)
		goto oom;
	if (opts && opts->range && !(j->range = strdup(opts->range)))
		goto oom;
	if (setup_request(j, opts) != 0 || setup_easy(f, j, url, opts) != 0)
		goto oom;
	jl_push(&f->queue, j);
	gl_metrics_fetch_started();
	start_queued(f);
	return j;
oom:
	if (j) {
		if (j->easy)
			curl_easy_cleanup(j->easy);
		gl_digest_free(j->dg);
		free(j->range);
		free(j->post);
		curl_slist_free_all(j->headers);
		free(j);
	}
	gl_fail(err, 500, NULL, "out of memory");
	return NULL;
}

void gl_fetch_cancel(gl_fetch_job *j)
{
	gl_fetch *f;

	if (!j || j->in_done || gl_curlev_cancelled(&j->x))
		return;
	f = j->f;
	j->on_data = NULL;
	j->on_done = NULL;
	gl_metrics_fetch_outcome(GL_FETCH_CANCELLED, j->bytes);
	/* inside curl (maybe this job's own data callback) curlev only
	 * marks it: write_cb refuses further data, curlev frees it later */
	if (gl_curlev_cancel(&j->x))
		return;
	job_destroy(j);
	start_queued(f);
}

void gl_fetch_resume(gl_fetch_job *j)
{
	if (!j || j->in_done)
		return;
	gl_curlev_resume(&j->x);
}

int gl_fetch_active(const gl_fetch *f)
{
	int n = f->queue.n;

	for (const gl_fetch_job *j = f->active.head; j; j = j->next)
		if (!gl_curlev_cancelled(&j->x))
			n++;
	return n;
}

/* ---- blocking wrapper --- */

typedef struct sync_ctx {
	gl_fetch_result *res;
	int done;
} sync_ctx;

static void sync_done(void *arg, const gl_fetch_result *res)
{
	sync_ctx *c = arg;

	*c->res = *res;
	c->done = 1;
}

int gl_fetch_sync(const gl_conf *conf, const char *url,
		  const gl_fetch_opts *opts, gl_fetch_result *res)
{
	struct event_base *base;
	gl_fetch *f = NULL;
	sync_ctx c = { res, 0 };

	memset(res, 0, sizeof *res);
	base = event_base_new();
	if (!base) {
		gl_fail(&res->err, 500, NULL, "cannot create an event loop");
		return -1;
	}
	f = gl_fetch_new(base, conf, &res->err);
	if (f &&
	    gl_fetch_start(f, url, opts, NULL, sync_done, &c, &res->err)) {
		while (!c.done)
			if (event_base_loop(base, EVLOOP_ONCE) != 0)
				break; /* nothing left to wait for */
		if (!c.done)
			gl_fail(&res->err, 500, NULL, "the fetch stalled");
	}
	gl_fetch_free(f);
	event_base_free(base);
	return res->ok ? 0 : -1;
}
