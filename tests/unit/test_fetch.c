/* test_fetch.c - unit tests for fetch.c: the SSRF network guard, and real
 * fetches inside a libevent loop against a fixture HTTP server that runs in
 * this process (a blocking accept thread on 127.0.0.1, one thread per
 * connection, canned responses by path).
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "digest.h"
#include "fetch.h"

/* ---- netguard --- */

/* Builds a sockaddr for a textual v4/v6 address. */
static const struct sockaddr *mkaddr(const char *s,
				     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(80);
		return (struct sockaddr *)ss;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(80);
		return (struct sockaddr *)ss;
	}
	return NULL;
}

static gl_netguard *guard_of(const char *const *nets, int n, gl_err *err)
{
	gl_strlist l = { (char **)nets, n };
	return gl_netguard_new(&l, err);
}

typedef struct gcase {
	const char *addr;
	int ok;
	const char *why; /* substring of the refusal, or NULL */
} gcase;

/* One block per entry of the IANA special-purpose registries (and the
 * multicast / site-local ranges): an address inside with the refusal it
 * must get (or "allowed" for the globally reachable entries), and the
 * neighbours just outside where the entry is a boundary of its own. */
/* clang-format off */
static const gcase deny_cases[] = {
	/* 0.0.0.0/32 this host, RFC 1122 */
	{ "0.0.0.0", 0, "\"this host on this network\" address (0.0.0.0/32)" },
	/* 0.0.0.0/8 this network, RFC 791 */
	{ "0.0.0.1", 0, "\"this network\" block (0.0.0.0/8)" },
	{ "0.255.255.255", 0, "(0.0.0.0/8)" },
	{ "1.0.0.0", 1, NULL },
	/* 10/8 private, RFC 1918 */
	{ "10.1.2.3", 0, "address 10.1.2.3 is in a private network (10.0.0.0/8)" },
	{ "9.255.255.255", 1, NULL },
	{ "11.0.0.0", 1, NULL },
	/* 100.64/10 shared address space, RFC 6598 */
	{ "100.64.0.0", 0, "carrier-grade NAT range (100.64.0.0/10)" },
	{ "100.127.255.255", 0, "(100.64.0.0/10)" },
	{ "100.63.255.255", 1, NULL },
	{ "100.128.0.0", 1, NULL },
	/* 127/8 loopback, RFC 1122 */
	{ "127.0.0.1", 0, "is loopback (127.0.0.0/8)" },
	{ "127.255.255.254", 0, "(127.0.0.0/8)" },
	{ "126.255.255.255", 1, NULL },
	{ "128.0.0.0", 1, NULL },
	/* 169.254/16 link-local, RFC 3927 */
	{ "169.254.169.254", 0, "link-local (169.254.0.0/16)" },
	{ "169.253.255.255", 1, NULL },
	{ "169.255.0.0", 1, NULL },
	/* 172.16/12 private, RFC 1918 */
	{ "172.16.0.1", 0, "private network (172.16.0.0/12)" },
	{ "172.31.255.255", 0, "(172.16.0.0/12)" },
	{ "172.15.255.255", 1, NULL },
	{ "172.32.0.0", 1, NULL },
	/* 192.0.0.0/29 IPv4 service continuity, RFC 7335 */
	{ "192.0.0.1", 0, "service continuity prefix (192.0.0.0/29)" },
	{ "192.0.0.7", 0, "(192.0.0.0/29)" },
	/* 192.0.0.8/32 dummy, RFC 7600 */
	{ "192.0.0.8", 0, "the IPv4 dummy address (192.0.0.8/32)" },
	/* 192.0.0.9/32 PCP anycast, 192.0.0.10/32 TURN anycast: global */
	{ "192.0.0.9", 1, NULL },
	{ "192.0.0.10", 1, NULL },
	/* 192.0.0.170/32, .171/32 NAT64/DNS64 discovery, RFC 8880 */
	{ "192.0.0.170", 0, "NAT64/DNS64 discovery address (192.0.0.170/32)" },
	{ "192.0.0.171", 0, "(192.0.0.171/32)" },
	/* 192.0.0.0/24 IETF protocol assignments, RFC 6890 */
	{ "192.0.0.11", 0, "IETF protocol assignments block (192.0.0.0/24)" },
	{ "192.0.0.255", 0, "(192.0.0.0/24)" },
	{ "191.255.255.255", 1, NULL },
	{ "192.0.1.1", 1, NULL },
	/* 192.0.2.0/24 TEST-NET-1, RFC 5737 */
	{ "192.0.2.1", 0, "documentation range (192.0.2.0/24)" },
	{ "192.0.3.0", 1, NULL },
	/* 192.31.196.0/24 AS112-v4, 192.52.193.0/24 AMT: global */
	{ "192.31.196.1", 1, NULL },
	{ "192.52.193.1", 1, NULL },
	/* 192.88.99.0/24 6to4 relay anycast, RFC 7526 */
	{ "192.88.99.1", 0, "6to4 relay anycast block (192.88.99.0/24)" },
	{ "192.88.98.255", 1, NULL },
	{ "192.88.100.0", 1, NULL },
	/* 192.168/16 private, RFC 1918 */
	{ "192.168.1.1", 0, "private network (192.168.0.0/16)" },
	{ "192.167.255.255", 1, NULL },
	{ "192.169.0.0", 1, NULL },
	/* 192.175.48.0/24 AS112 direct delegation: global */
	{ "192.175.48.1", 1, NULL },
	/* 198.18/15 benchmarking, RFC 2544 */
	{ "198.18.0.0", 0, "benchmarking range (198.18.0.0/15)" },
	{ "198.19.255.255", 0, "(198.18.0.0/15)" },
	{ "198.17.255.255", 1, NULL },
	{ "198.20.0.0", 1, NULL },
	/* 198.51.100/24 TEST-NET-2, 203.0.113/24 TEST-NET-3, RFC 5737 */
	{ "198.51.100.7", 0, "documentation range (198.51.100.0/24)" },
	{ "198.51.101.0", 1, NULL },
	{ "203.0.113.9", 0, "documentation range (203.0.113.0/24)" },
	{ "203.0.112.255", 1, NULL },
	{ "203.0.114.0", 1, NULL },
	/* 224/4 multicast, 240/4 reserved, limited broadcast */
	{ "224.0.0.1", 0, "multicast (224.0.0.0/4)" },
	{ "239.255.255.255", 0, "(224.0.0.0/4)" },
	{ "223.255.255.255", 1, NULL },
	{ "240.0.0.1", 0, "reserved range (240.0.0.0/4)" },
	{ "255.255.255.254", 0, "(240.0.0.0/4)" },
	{ "255.255.255.255", 0, "broadcast address (255.255.255.255/32)" },
	/* public */
	{ "8.8.8.8", 1, NULL },
	{ "1.1.1.1", 1, NULL },

	/* ::/128, ::1/128, RFC 4291 */
	{ "::", 0, "unspecified address (::/128)" },
	{ "::1", 0, "address ::1 is loopback (::1/128)" },
	/* 64:ff9b:1::/48 local-use NAT64, RFC 8215 */
	{ "64:ff9b:1::1", 0, "local-use NAT64 range (64:ff9b:1::/48)" },
	{ "64:ff9b:1:ffff::1", 0, "(64:ff9b:1::/48)" },
	{ "64:ff9b:2::1", 1, NULL },
	/* 100::/64 discard-only, RFC 6666 */
	{ "100::1", 0, "discard-only range (100::/64)" },
	/* 100:0:0:1::/64 dummy prefix, RFC 9780 */
	{ "100:0:0:1::5", 0, "dummy IPv6 prefix (100:0:0:1::/64)" },
	{ "100:0:0:2::", 1, NULL },
	/* 2001::/32 Teredo, RFC 4380 */
	{ "2001:0:4136:e378:8000:63bf:3fff:fdd2", 0, "Teredo address (2001::/32)" },
	/* 2001:1::1, ::2, ::3 anycast: global */
	{ "2001:1::1", 1, NULL },
	{ "2001:1::2", 1, NULL },
	{ "2001:1::3", 1, NULL },
	{ "2001:1::4", 0, "IETF protocol assignments block (2001::/23)" },
	/* 2001:2::/48 benchmarking, RFC 5180 */
	{ "2001:2::1", 0, "benchmarking range (2001:2::/48)" },
	{ "2001:2:1::1", 0, "(2001::/23)" },
	/* 2001:3::/32 AMT, 2001:4:112::/48 AS112-v6: global */
	{ "2001:3::1", 1, NULL },
	{ "2001:4:112::1", 1, NULL },
	{ "2001:4:113::1", 0, "(2001::/23)" },
	/* 2001:10::/28 deprecated ORCHID, RFC 4843 */
	{ "2001:10::1", 0, "deprecated ORCHID range (2001:10::/28)" },
	/* 2001:20::/28 ORCHIDv2, 2001:30::/28 DETs: global */
	{ "2001:20::1", 1, NULL },
	{ "2001:30::1", 1, NULL },
	/* 2001::/23 IETF protocol assignments, RFC 2928 */
	{ "2001:1ff:ffff::1", 0, "(2001::/23)" },
	{ "2001:200::1", 1, NULL },
	/* 2001:db8::/32 documentation, RFC 3849 */
	{ "2001:db8::1", 0, "documentation range (2001:db8::/32)" },
	{ "2001:db9::1", 1, NULL },
	/* 2620:4f:8000::/48 AS112 direct delegation: global */
	{ "2620:4f:8000::1", 1, NULL },
	/* 3fff::/20 documentation, RFC 9637 */
	{ "3fff::1", 0, "documentation range (3fff::/20)" },
	{ "3fff:fff::1", 0, "(3fff::/20)" },
	{ "3fff:1000::1", 1, NULL },
	/* 5f00::/16 SRv6 SIDs, RFC 9602 */
	{ "5f00:1::1", 0, "SRv6 SID block (5f00::/16)" },
	{ "5f01::1", 1, NULL },
	/* fc00::/7 unique-local, RFC 4193 */
	{ "fc00::1", 0, "(fc00::/7)" },
	{ "fdff:ffff::1", 0, "(fc00::/7)" },
	{ "fbff:ffff::1", 1, NULL },
	{ "fe00::1", 1, NULL },
	/* fe80::/10 link-local, RFC 4291 */
	{ "fe80::1", 0, "link-local (fe80::/10)" },
	{ "febf:ffff::1", 0, "(fe80::/10)" },
	/* fec0::/10 site-local, RFC 3879 */
	{ "fec0::1", 0, "site-local (fec0::/10)" },
	{ "feff::1", 0, "(fec0::/10)" },
	/* ff00::/8 multicast */
	{ "ff02::1", 0, "multicast (ff00::/8)" },
	/* public */
	{ "2606:4700::1111", 1, NULL },
	{ "2a00:1450:4001::200e", 1, NULL },
};
/* clang-format on */

UNIT_TEST(netguard_deny_table)
{
	gl_err err;
	gl_netguard *g = guard_of(NULL, 0, &err);
	struct sockaddr_storage ss;
	char why[256];

	CHECK(g);
	for (size_t i = 0; i < sizeof deny_cases / sizeof deny_cases[0]; i++) {
		const gcase *c = &deny_cases[i];
		const struct sockaddr *sa = mkaddr(c->addr, &ss);
		why[0] = '\0';
		if (!sa ||
		    gl_netguard_check(g, sa, why, sizeof why) != c->ok ||
		    (c->why && !strstr(why, c->why))) {
			unit_failed = 1;
			snprintf(unit_msg, sizeof unit_msg,
				 "%s: expected %s, got why=\"%s\"", c->addr,
				 c->ok ? "allowed" : c->why, why);
			gl_netguard_free(g);
			return;
		}
	}
	gl_netguard_free(g);
}

/* clang-format off */
static const gcase wrapped_cases[] = {
	{ "::ffff:127.0.0.1", 0,
	  "address ::ffff:127.0.0.1 (IPv4-mapped 127.0.0.1) is loopback "
	  "(127.0.0.0/8)" },
	{ "::ffff:10.0.0.1", 0, "IPv4-mapped 10.0.0.1) is in a private network" },
	{ "::ffff:169.254.169.254", 0, "(169.254.0.0/16)" },
	{ "::ffff:8.8.8.8", 1, NULL },
	{ "::127.0.0.1", 0, "(IPv4-compatible 127.0.0.1) is loopback" },
	{ "::0.0.0.2", 0, "(0.0.0.0/8)" },
	{ "::8.8.8.8", 1, NULL },
	{ "64:ff9b::7f00:1", 0, "(NAT64 127.0.0.1) is loopback" },
	{ "64:ff9b::a9fe:a9fe", 0, "(169.254.0.0/16)" },
	{ "64:ff9b::808:808", 1, NULL },
	{ "2002:7f00:1::", 0, "(6to4 127.0.0.1) is loopback" },
	{ "2002:c0a8:101::1", 0, "(6to4 192.168.1.1)" },
	{ "2002:808:808::1", 1, NULL },
	{ "2001:0:7f00:1::", 0, "Teredo" },
	/* IPv4-translated ::ffff:0:0:0/96 (RFC 2765 SIIT) */
	{ "::ffff:0:127.0.0.1", 0,
	  "address ::ffff:0:7f00:1 (IPv4-translated 127.0.0.1) is loopback "
	  "(127.0.0.0/8)" },
	{ "::ffff:0:10.1.1.1", 0, "(IPv4-translated 10.1.1.1) is in a private" },
	{ "::ffff:0:8.8.8.8", 1, NULL },
	/* ISATAP interface identifiers (RFC 5214) after any prefix: local
	 * (0000:5efe) and universal (0200:5efe), u/g bit variants */
	{ "::5efe:127.0.0.1", 0, "(ISATAP 127.0.0.1) is loopback" },
	{ "::200:5efe:10.0.0.1", 0, "(ISATAP 10.0.0.1) is in a private" },
	{ "2a00:1450::5efe:169.254.169.254", 0, "(ISATAP 169.254.169.254)" },
	{ "2a00:1450::200:5efe:192.168.0.1", 0, "(ISATAP 192.168.0.1)" },
	{ "2a00:1450::100:5efe:127.0.0.1", 0, "(ISATAP 127.0.0.1)" },
	{ "2a00:1450::300:5efe:127.0.0.1", 0, "(ISATAP 127.0.0.1)" },
	{ "2a00:1450::200:5efe:8.8.8.8", 1, NULL },
	{ "2a00:1450::400:5efe:127.0.0.1", 1, NULL }, /* not ISATAP */
	/* a globally reachable entry does not hide an ISATAP identifier */
	{ "2001:3::5efe:127.0.0.1", 0, "(ISATAP 127.0.0.1)" },
	/* two IPv4 addresses inside (6to4 and ISATAP): each is judged */
	{ "2002:808:808::5efe:10.0.0.1", 0, "(ISATAP 10.0.0.1)" },
	{ "2002:a00:1::5efe:8.8.8.8", 0, "(6to4 10.0.0.1)" },
	{ "2002:808:808::5efe:8.8.4.4", 1, NULL },
	/* the prefix itself refused first */
	{ "fe80::5efe:8.8.8.8", 0, "link-local (fe80::/10)" },
};
/* clang-format on */

UNIT_TEST(netguard_wrapped_forms)
{
	gl_err err;
	gl_netguard *g = guard_of(NULL, 0, &err);
	struct sockaddr_storage ss;
	char why[256];

	CHECK(g);
	for (size_t i = 0; i < sizeof wrapped_cases / sizeof wrapped_cases[0];
	     i++) {
		const gcase *c = &wrapped_cases[i];
		const struct sockaddr *sa = mkaddr(c->addr, &ss);
		why[0] = '\0';
		if (!sa ||
		    gl_netguard_check(g, sa, why, sizeof why) != c->ok ||
		    (c->why && !strstr(why, c->why))) {
			unit_failed = 1;
			snprintf(unit_msg, sizeof unit_msg,
				 "%s: expected %s, got why=\"%s\"", c->addr,
				 c->ok ? "allowed" : c->why, why);
			gl_netguard_free(g);
			return;
		}
	}
	gl_netguard_free(g);
}

/* 1 if g allows s */
static int allows(const gl_netguard *g, const char *s)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = mkaddr(s, &ss);
	return sa && gl_netguard_check(g, sa, NULL, 0);
}

UNIT_TEST(netguard_allow_list)
{
	static const char *const one[] = { "127.0.0.1/32" };
	static const char *const several[] = { "10.0.0.0/8", "fd00::/8",
					       "192.168.1.7", "::1" };
	static const char *const hostbits[] = { "172.16.5.5/12" };
	gl_err err;
	gl_netguard *g = guard_of(one, 1, &err);

	CHECK(g);
	CHECK(allows(g, "127.0.0.1"));
	CHECK(allows(g, "::ffff:127.0.0.1"));
	CHECK(allows(g, "::127.0.0.1"));
	CHECK(allows(g, "64:ff9b::7f00:1"));
	CHECK(!allows(g, "127.0.0.2"));
	CHECK(!allows(g, "::ffff:127.0.0.2"));
	CHECK(!allows(g, "::1"));
	CHECK(!allows(g, "10.0.0.1"));
	CHECK(allows(g, "8.8.8.8"));
	gl_netguard_free(g);

	g = guard_of(several, 4, &err);
	CHECK(g);
	CHECK(allows(g, "10.200.3.4"));
	CHECK(allows(g, "fd00::5"));
	CHECK(!allows(g, "fc00::5"));
	CHECK(allows(g, "192.168.1.7"));
	CHECK(!allows(g, "192.168.1.8"));
	CHECK(allows(g, "::1"));
	CHECK(!allows(g, "127.0.0.1"));
	gl_netguard_free(g);

	/* host bits are masked off */
	g = guard_of(hostbits, 1, &err);
	CHECK(g);
	CHECK(allows(g, "172.31.0.1"));
	gl_netguard_free(g);

	/* NULL list: nothing extra allowed */
	g = gl_netguard_new(NULL, &err);
	CHECK(g);
	CHECK(!allows(g, "127.0.0.1"));
	CHECK(allows(g, "8.8.4.4"));
	gl_netguard_free(g);
}

UNIT_TEST(netguard_malformed_cidrs)
{
	/* clang-format off */
	static const char *const bad[] = {
		"10.0.0.0/33", "::1/129", "10.0.0/8", "abc", "10.0.0.0/",
		"/8", "10.0.0.0/8x", "10.0.0.0/-1", "", "10.0.0.0/+8",
		"10.0.0.0/8/8", "1.2.3.4.5", "fe80::1%eth0", "10.0.0.0 /8",
		"10.0.0.0/0008",
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *const one[] = { "127.0.0.1/32", bad[i] };
		gl_err err = { 0 };
		gl_netguard *g = guard_of(one, 2, &err);
		if (g) {
			gl_netguard_free(g);
			unit_failed = 1;
			snprintf(unit_msg, sizeof unit_msg,
				 "'%s' was accepted", bad[i]);
			return;
		}
		CHECK_INT(err.status, 400);
		CHECK(strstr(err.msg, bad[i]) != NULL);
	}
	static const char *const good[] = { "0.0.0.0/0", "::/0", "1.2.3.4",
					    "2001:db8::/32" };
	gl_err err;
	gl_netguard *g = guard_of(good, 4, &err);
	CHECK(g);
	gl_netguard_free(g);
}

UNIT_TEST(netguard_non_ip_family)
{
	static const char *const all[] = { "0.0.0.0/0", "::/0" };
	gl_err err;
	gl_netguard *g = guard_of(all, 2, &err);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char why[256] = "";

	CHECK(g);
	CHECK_INT(gl_netguard_check(g, (struct sockaddr *)&un, why,
				    sizeof why),
		  0);
	CHECK(strstr(why, "not an IP address") != NULL);
	CHECK(allows(g, "127.0.0.1")); /* /0 allows everything */
	gl_netguard_free(g);
}

/* ---- fixture HTTP server --- */

#define OK_BODY "The quick brown fox jumps over the lazy dog"
#define OK_MD5 "9e107d9d372bb6826bd81d3542a419d6"
#define OK_SHA1 "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
#define OK_SHA256                                                             \
	"d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
#define BIG_SIZE (5 * 1024 * 1024)
#define HUGE_SIZE (64LL * 1024 * 1024)
#define CLBIG_SIZE (2 * 1024 * 1024)
#define MAX_CONNS 128

static unsigned char pat(int64_t i)
{
	return (unsigned char)((i * 7) ^ (i >> 9) ^ (i >> 17));
}

static void fill_pat(unsigned char *b, int64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(off + (int64_t)i);
}

typedef struct fixture {
	int lfd, port;
	int stop[2]; /* readable once the server must stop */
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_t conns[MAX_CONNS];
	int nconns;
	char last_req[2048]; /* under mu */
	atomic_llong huge_sent;
} fixture;

typedef struct conn_arg {
	fixture *s;
	int fd;
} conn_arg;

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sendf(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sendf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return send_all(fd, buf, (size_t)n);
}

/* Sleep ms unless told to stop: 1 if stopping. */
static int nap(fixture *s, int ms)
{
	struct pollfd p = { s->stop[0], POLLIN, 0 };
	return poll(&p, 1, ms) > 0;
}

/* chunked body of `total` pattern bytes; returns bytes sent */
static int64_t send_chunked(fixture *s, int fd, int64_t total)
{
	static const size_t piece = 64 * 1024;
	unsigned char *buf = malloc(piece);
	int64_t off = 0;

	while (buf && off < total) {
		size_t n = (size_t)(total - off < (int64_t)piece
					    ? total - off
					    : (int64_t)piece);
		fill_pat(buf, off, n);
		if (sendf(fd, "%zx\r\n", n) || send_all(fd, buf, n) ||
		    send_all(fd, "\r\n", 2))
			break;
		off += (int64_t)n;
		if (nap(s, 0))
			break;
	}
	if (off == total)
		send_all(fd, "0\r\n\r\n", 5);
	free(buf);
	return off;
}

static void respond(fixture *s, int fd, const char *path, const char *req)
{
	const char *close_hdr = "Connection: close\r\n";

	if (!strcmp(path, "/ok")) {
		const char *r = strstr(req, "\r\nRange: bytes=");
		int a, b;
		if (r && sscanf(r + 15, "%d-%d", &a, &b) == 2 && a <= b &&
		    b < (int)strlen(OK_BODY)) {
			sendf(fd,
			      "HTTP/1.1 206 Partial Content\r\n%s"
			      "Content-Length: %d\r\n"
			      "Content-Range: bytes %d-%d/%zu\r\n\r\n",
			      close_hdr, b - a + 1, a, b, strlen(OK_BODY));
			send_all(fd, &OK_BODY[a], (size_t)(b - a + 1));
			return;
		}
		sendf(fd,
		      "HTTP/1.1 200 OK\r\n%sContent-Type: text/plain\r\n"
		      "ETag: \"abc123\"\r\n"
		      "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
		      "Content-Length: %zu\r\n\r\n%s",
		      close_hdr, strlen(OK_BODY), OK_BODY);
	} else if (!strcmp(path, "/ct")) {
		sendf(fd,
		      "HTTP/1.1 200 OK\r\n%sContent-Type: image/png\r\n"
		      "Content-Length: 8\r\n\r\n",
		      close_hdr);
		send_all(fd, "\x89PNG\r\n\x1a\n", 8);
	} else if (!strcmp(path, "/big") || !strcmp(path, "/huge")) {
		int huge = !strcmp(path, "/huge");
		sendf(fd,
		      "HTTP/1.1 200 OK\r\n%s"
		      "Content-Type: application/octet-stream\r\n"
		      "Transfer-Encoding: chunked\r\n\r\n",
		      close_hdr);
		int64_t n = send_chunked(s, fd, huge ? HUGE_SIZE : BIG_SIZE);
		if (huge)
			atomic_store(&s->huge_sent, n);
	} else if (!strcmp(path, "/cl-big")) {
		unsigned char *buf = malloc(CLBIG_SIZE);
		sendf(fd, "HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n",
		      close_hdr, CLBIG_SIZE);
		if (buf) {
			fill_pat(buf, 0, CLBIG_SIZE);
			send_all(fd, buf, CLBIG_SIZE);
			free(buf);
		}
	} else if (!strcmp(path, "/slow")) {
		sendf(fd, "HTTP/1.1 200 OK\r\n%sContent-Length: 1000\r\n\r\n",
		      close_hdr);
		for (int i = 0; i < 1000; i++)
			if (nap(s, 250) || send_all(fd, "x", 1))
				break;
	} else if (!strcmp(path, "/drip")) {
		char buf[1024];
		memset(buf, 'd', sizeof buf);
		sendf(fd, "HTTP/1.1 200 OK\r\n%sContent-Length: 4096\r\n\r\n",
		      close_hdr);
		for (int i = 0; i < 4; i++)
			if ((i && nap(s, 50)) || send_all(fd, buf, sizeof buf))
				break;
	} else if (!strcmp(path, "/redir1")) {
		sendf(fd,
		      "HTTP/1.1 302 Found\r\n%sLocation: /ok\r\n"
		      "Content-Length: 5\r\n\r\nmoved",
		      close_hdr);
	} else if (!strcmp(path, "/loop")) {
		sendf(fd,
		      "HTTP/1.1 302 Found\r\n%sLocation: /loop\r\n"
		      "Content-Length: 0\r\n\r\n",
		      close_hdr);
	} else if (!strcmp(path, "/redir-private")) {
		sendf(fd,
		      "HTTP/1.1 302 Found\r\n%s"
		      "Location: http://127.0.0.2:%d/ok\r\n"
		      "Content-Length: 0\r\n\r\n",
		      close_hdr, s->port);
	} else if (!strcmp(path, "/redir-file")) {
		sendf(fd,
		      "HTTP/1.1 302 Found\r\n%s"
		      "Location: file:///etc/passwd\r\n"
		      "Content-Length: 0\r\n\r\n",
		      close_hdr);
	} else {
		sendf(fd,
		      "HTTP/1.1 404 Not Found\r\n%s"
		      "Content-Type: text/plain\r\nContent-Length: 9\r\n\r\n"
		      "not here\n",
		      close_hdr);
	}
}

static void *conn_main(void *arg)
{
	conn_arg *ca = arg;
	fixture *s = ca->s;
	int fd = ca->fd;
	char req[4096], path[512];
	size_t n = 0;

	free(ca);
	while (n + 1 < sizeof req) {
		struct pollfd p[2] = { { fd, POLLIN, 0 },
				       { s->stop[0], POLLIN, 0 } };
		if (poll(p, 2, 3000) <= 0 || p[1].revents)
			goto out;
		ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
		if (r <= 0)
			goto out;
		n += (size_t)r;
		req[n] = '\0';
		if (n >= 4 && memcmp(req, "GET ", 4)) {
			/* not HTTP (e.g. a TLS hello): answer junk */
			send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
			goto out;
		}
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	if (sscanf(req, "GET %511s", path) != 1)
		goto out;
	pthread_mutex_lock(&s->mu);
	snprintf(s->last_req, sizeof s->last_req, "%.2047s", req);
	pthread_mutex_unlock(&s->mu);
	respond(s, fd, path, req);
out:
	close(fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	fixture *s = arg;

	for (;;) {
		struct pollfd p[2] = { { s->lfd, POLLIN, 0 },
				       { s->stop[0], POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		conn_arg *ca = malloc(sizeof *ca);
		pthread_mutex_lock(&s->mu);
		if (!ca || s->nconns == MAX_CONNS) {
			pthread_mutex_unlock(&s->mu);
			free(ca);
			close(fd);
			continue;
		}
		ca->s = s;
		ca->fd = fd;
		if (pthread_create(&s->conns[s->nconns], NULL, conn_main,
				   ca)) {
			free(ca);
			close(fd);
		} else {
			s->nconns++;
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int fixture_start(fixture *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	int one = 1;

	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	if (pipe(s->stop))
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) ||
	    listen(s->lfd, 64) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen))
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->acceptor, NULL, accept_main, s) ? -1 : 0;
}

static void fixture_stop(fixture *s)
{
	if (write(s->stop[1], "x", 1) != 1)
		return;
	pthread_join(s->acceptor, NULL);
	for (int i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	pthread_mutex_destroy(&s->mu);
}

/* ---- test context --- */

typedef struct tctx {
	fixture srv;
	gl_conf *conf;
	struct event_base *base;
	gl_fetch *f;
} tctx;

static int tctx_init(tctx *t, const char *allow)
{
	gl_err err;

	memset(t, 0, sizeof *t);
	t->conf = gl_conf_load(NULL, &err);
	if (!t->conf)
		return -1;
	if (allow) {
		gl_strlist *l = &t->conf->external_location_allowed_networks;
		for (int i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		l->v = malloc(sizeof *l->v);
		l->v[0] = strdup(allow);
		l->n = 1;
	}
	t->base = event_base_new();
	if (!t->base)
		return -1;
	return fixture_start(&t->srv);
}

static void tctx_fini(tctx *t)
{
	gl_fetch_free(t->f);
	fixture_stop(&t->srv);
	event_base_free(t->base);
	gl_conf_free(t->conf);
}

static int mkf(tctx *t)
{
	gl_err err;
	t->f = gl_fetch_new(t->base, t->conf, &err);
	if (!t->f)
		fprintf(stderr, "gl_fetch_new: %s\n", err.msg);
	return t->f != NULL;
}

/* A case running with a fixture server and a loop; the body may CHECK and
 * return early, the wrapper still tears down. */
#define FETCH_CASE(name, allow)                                               \
	static void name##_body(tctx *t);                                     \
	UNIT_TEST(name)                                                       \
	{                                                                     \
		tctx t;                                                       \
		if (tctx_init(&t, allow) != 0) {                              \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg, "setup failed");  \
			return;                                               \
		}                                                             \
		name##_body(&t);                                              \
		tctx_fini(&t);                                                \
	}                                                                     \
	static void name##_body(tctx *t)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {}

/* Runs the loop until *flag >= want or secs pass; 1 if reached. */
static int run_until(tctx *t, const int *flag, int want, double secs)
{
	struct event *tick = event_new(t->base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = { 0, 10000 };
	double end = now() + secs;

	event_add(tick, &tv);
	while ((!flag || *flag < want) && now() < end)
		event_base_loop(t->base, EVLOOP_ONCE);
	event_free(tick);
	return !flag || *flag >= want;
}

/* ---- capturing callbacks --- */

typedef struct cap {
	tctx *t;
	gl_fetch_job *job;
	int done;
	gl_fetch_result res;
	int calls;
	int64_t seen;
	int64_t mismatch; /* with pattern: bytes that differ */
	int pattern;
	char text[256];
	size_t tlen;
	int pause_every;   /* pause on every Nth call ... */
	int resume_inside; /* ... resuming from inside the callback */
	int hold;          /* pause on the first call, never resume */
	int pauses;
	int cancel_at, abort_at; /* on the Nth call */
	gl_fetch_job *cancel_other;
	/* concurrency bookkeeping */
	int idx, started;
	int *running, *max_running, *order, *norder;
	/* start another fetch from a callback */
	const char *start_in_done, *start_in_data;
	struct cap *child;
} cap;

static void cap_done(void *arg, const gl_fetch_result *res);
static int cap_data(void *arg, const char *d, size_t n);

static gl_fetch_job *go(tctx *t, const char *path, const gl_fetch_opts *o,
			cap *c, int with_data)
{
	char url[256];
	gl_err err = { 0 };

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", t->srv.port, path);
	c->t = t;
	c->job = gl_fetch_start(t->f, url, o, with_data ? cap_data : NULL,
				cap_done, c, &err);
	if (!c->job)
		fprintf(stderr, "gl_fetch_start %s: %s\n", url, err.msg);
	return c->job;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	cap *c = arg;
	gl_fetch_resume(c->job);
}

static int cap_data(void *arg, const char *d, size_t n)
{
	cap *c = arg;

	c->calls++;
	if (c->running && !c->started) {
		c->started = 1;
		if (++*c->running > *c->max_running)
			*c->max_running = *c->running;
	}
	if (c->pattern) {
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)d[i] != pat(c->seen + (int64_t)i))
				c->mismatch++;
	} else {
		size_t k = n < sizeof c->text - 1 - c->tlen
				   ? n
				   : sizeof c->text - 1 - c->tlen;
		memcpy(c->text + c->tlen, d, k);
		c->tlen += k;
		c->text[c->tlen] = '\0';
	}
	c->seen += (int64_t)n;
	if (c->start_in_data && c->calls == 1)
		go(c->t, c->start_in_data, NULL, c->child, 0);
	if (c->cancel_other && c->calls == 1)
		gl_fetch_cancel(c->cancel_other);
	if (c->cancel_at && c->calls == c->cancel_at) {
		gl_fetch_cancel(c->job);
		return 0;
	}
	if (c->abort_at && c->calls == c->abort_at)
		return -1;
	if (c->hold) {
		c->pauses++;
		return 1;
	}
	if (c->pause_every && c->calls % c->pause_every == 0) {
		struct timeval tv = { 0, 1000 };
		c->pauses++;
		if (c->resume_inside)
			gl_fetch_resume(c->job);
		else
			event_base_once(c->t->base, -1, EV_TIMEOUT, resume_cb,
					c, &tv);
		return 1;
	}
	return 0;
}

static void cap_done(void *arg, const gl_fetch_result *res)
{
	cap *c = arg;

	c->res = *res;
	c->done++;
	if (c->running && c->started)
		(*c->running)--;
	if (c->order)
		c->order[(*c->norder)++] = c->idx;
	if (c->start_in_done)
		go(c->t, c->start_in_done, NULL, c->child, 0);
	/* the job is finished: both are no-ops now */
	gl_fetch_cancel(c->job);
	gl_fetch_resume(c->job);
}

static const gl_digest_hex *big_digest(void)
{
	static gl_digest_hex hex;
	static int have;
	if (!have) {
		unsigned char *b = malloc(BIG_SIZE);
		gl_digest *d = gl_digest_new();
		fill_pat(b, 0, BIG_SIZE);
		gl_digest_update(d, b, BIG_SIZE);
		gl_digest_final(d, &hex);
		gl_digest_free(d);
		free(b);
		have = 1;
	}
	return &hex;
}

#define NO_CAP (&(gl_fetch_opts){ .max_bytes = -1 })

/* ---- fetch cases --- */

FETCH_CASE(fetch_ok_digests_and_headers, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/ok", NO_CAP, &c, 0));
	CHECK_INT(gl_fetch_active(t->f), 1);
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK_INT(c.done, 1);
	CHECK(c.res.ok);
	CHECK_INT(c.res.http_status, 200);
	CHECK_INT(c.res.size, strlen(OK_BODY));
	CHECK_STR(c.res.digest.md5, OK_MD5);
	CHECK_STR(c.res.digest.sha1, OK_SHA1);
	CHECK_STR(c.res.digest.sha256, OK_SHA256);
	CHECK_STR(c.res.content_type, "text/plain");
	CHECK_STR(c.res.etag, "\"abc123\"");
	CHECK_STR(c.res.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
	CHECK_INT(gl_fetch_active(t->f), 0);
	/* what the server saw */
	pthread_mutex_lock(&t->srv.mu);
	int ua = strstr(t->srv.last_req, "\r\nUser-Agent: glared/0.1\r\n") !=
		 NULL;
	int ae = strcasestr(t->srv.last_req, "accept-encoding") != NULL;
	int ck = strcasestr(t->srv.last_req, "cookie") != NULL;
	pthread_mutex_unlock(&t->srv.mu);
	CHECK(ua);
	CHECK(!ae);
	CHECK(!ck);
}

FETCH_CASE(fetch_content_type, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/ct", NULL, &c, 0));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(c.res.ok);
	CHECK_STR(c.res.content_type, "image/png");
	CHECK_INT(c.res.size, 8);
	CHECK_STR(c.res.etag, "");
}

FETCH_CASE(fetch_data_callback_sees_exact_bytes, "127.0.0.1/32")
{
	cap c = { .pattern = 1 }, s = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/big", NO_CAP, &c, 1));
	CHECK(go(t, "/ok", NO_CAP, &s, 1));
	CHECK(run_until(t, &c.done, 1, 10));
	CHECK(run_until(t, &s.done, 1, 5));
	CHECK(c.res.ok);
	CHECK_INT(c.res.size, BIG_SIZE);
	CHECK_INT(c.seen, BIG_SIZE);
	CHECK_INT(c.mismatch, 0);
	CHECK_STR(c.res.digest.sha256, big_digest()->sha256);
	CHECK_STR(c.res.digest.sha1, big_digest()->sha1);
	CHECK_STR(c.res.digest.md5, big_digest()->md5);
	CHECK(s.res.ok);
	CHECK_STR(s.text, OK_BODY);
}

FETCH_CASE(fetch_range, "127.0.0.1/32")
{
	cap c = { 0 };
	gl_fetch_opts o = { .max_bytes = -1, .range = "4-8" };
	gl_err err;

	CHECK(mkf(t));
	CHECK(go(t, "/ok", &o, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(c.res.ok);
	CHECK_INT(c.res.http_status, 206);
	CHECK_STR(c.text, "quick");
	CHECK_INT(c.res.size, 5);
	o.range = "bytes=1-2";
	CHECK(!gl_fetch_start(t->f, "http://127.0.0.1/", &o, NULL, cap_done,
			      &c, &err));
	CHECK_INT(err.status, 400);
}

FETCH_CASE(fetch_max_bytes_undeclared, "127.0.0.1/32")
{
	cap c = { .pattern = 1 };
	gl_fetch_opts o = { .max_bytes = 1024 * 1024 };

	CHECK(mkf(t));
	CHECK(go(t, "/huge", &o, &c, 1));
	CHECK(run_until(t, &c.done, 1, 10));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 413);
	CHECK_STR(c.res.err.msg,
		  "external blob is larger than the allowed 1048576 bytes");
	CHECK(c.res.size <= 1024 * 1024);
	CHECK(c.seen <= 1024 * 1024);
	CHECK(c.seen > 0);
	CHECK_INT(c.mismatch, 0);
	/* the connection was dropped: the server could not send it all */
	fixture_stop(&t->srv);
	long long sent = atomic_load(&t->srv.huge_sent);
	CHECK(fixture_start(&t->srv) == 0);
	CHECK(sent < HUGE_SIZE / 2);
}

FETCH_CASE(fetch_max_bytes_declared, "127.0.0.1/32")
{
	cap c = { .pattern = 1 }, exact = { .pattern = 1 };
	gl_fetch_opts o = { .max_bytes = 1024 * 1024 },
		      o2 = { .max_bytes = CLBIG_SIZE };

	CHECK(mkf(t));
	CHECK(go(t, "/cl-big", &o, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 413);
	CHECK(strstr(c.res.err.msg, "larger than the allowed 1048576 bytes"));
	CHECK_INT(c.res.size, 0); /* refused before any body byte */
	CHECK_INT(c.seen, 0);
	/* exactly at the cap is fine */
	CHECK(go(t, "/cl-big", &o2, &exact, 1));
	CHECK(run_until(t, &exact.done, 1, 5));
	CHECK(exact.res.ok);
	CHECK_INT(exact.res.size, CLBIG_SIZE);
	CHECK_INT(exact.mismatch, 0);
}

FETCH_CASE(fetch_low_speed_timeout, "127.0.0.1/32")
{
	cap c = { 0 };

	t->conf->fetch_low_speed_limit = 1000;
	t->conf->fetch_low_speed_time = 1;
	CHECK(mkf(t));
	double t0 = now();
	CHECK(go(t, "/slow", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 6));
	CHECK(now() - t0 < 4);
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK(strstr(c.res.err.msg, "timed out after"));
	CHECK(strstr(c.res.err.msg, "less than 1000 bytes/s for 1 s"));
}

FETCH_CASE(fetch_total_timeout, "127.0.0.1/32")
{
	cap c = { 0 };

	t->conf->fetch_timeout = 1;
	t->conf->fetch_low_speed_limit = 0;
	CHECK(mkf(t));
	double t0 = now();
	CHECK(go(t, "/slow", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 6));
	CHECK(now() - t0 < 3);
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK(strstr(c.res.err.msg, "timed out after 1 s"));
	CHECK(c.seen >= 1);
}

FETCH_CASE(fetch_http_404, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/404", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.http_status, 404);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg, "remote server answered 404 Not Found");
	CHECK_INT(c.seen, 0); /* the error page is not handed on */
	CHECK_INT(c.res.size, 0);
}

FETCH_CASE(fetch_redirect_followed, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/redir1", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(c.res.ok);
	CHECK_INT(c.res.http_status, 200);
	CHECK_STR(c.text, OK_BODY); /* not the "moved" body of the 302 */
	CHECK_STR(c.res.digest.sha256, OK_SHA256);
	CHECK_STR(c.res.content_type, "text/plain");
	CHECK_STR(c.res.etag, "\"abc123\"");
}

FETCH_CASE(fetch_redirect_loop, "127.0.0.1/32")
{
	cap c = { 0 };

	t->conf->fetch_max_redirects = 3;
	CHECK(mkf(t));
	CHECK(go(t, "/loop", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg, "too many redirects (more than 3)");
}

FETCH_CASE(fetch_redirect_to_private_refused, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/redir-private", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg,
		  "refusing to connect to 127.0.0.2: loopback (127.0.0.0/8)");
}

FETCH_CASE(fetch_redirect_to_file_refused, "127.0.0.1/32")
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/redir-file", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg,
		  "remote server redirected to a file URL, which "
		  "is not http or https");
	CHECK_INT(c.seen, 0);
}

FETCH_CASE(fetch_invalid_urls, "127.0.0.1/32")
{
	/* clang-format off */
	static const char *const bad[] = {
		"ftp://127.0.0.1/x", "not a url", "", "file:///etc/passwd",
		"gopher://127.0.0.1/", "http://", "http://a b/",
		"dict://127.0.0.1:11211/stat", "//127.0.0.1/x",
	};
	/* clang-format on */
	char url[2100];
	gl_err err;
	cap c = { 0 };

	CHECK(mkf(t));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&err, 0, sizeof err);
		if (gl_fetch_start(t->f, bad[i], NULL, NULL, cap_done, &c,
				   &err) ||
		    err.status != 400) {
			unit_failed = 1;
			snprintf(unit_msg, sizeof unit_msg,
				 "'%s' was not rejected with 400", bad[i]);
			return;
		}
	}
	CHECK(!gl_fetch_start(t->f, NULL, NULL, NULL, cap_done, &c, &err));
	/* 2049 characters: too long; 2048: accepted */
	int n = snprintf(url, sizeof url, "http://127.0.0.1:%d/", t->srv.port);
	memset(url + n, 'a', 2049 - (size_t)n);
	url[2049] = '\0';
	memset(&err, 0, sizeof err);
	CHECK(!gl_fetch_start(t->f, url, NULL, NULL, cap_done, &c, &err));
	CHECK_INT(err.status, 400);
	CHECK(strstr(err.msg, "2048"));
	url[2048] = '\0';
	gl_fetch_job *j = gl_fetch_start(t->f, url, NULL, NULL, cap_done, &c,
					 &err);
	CHECK(j);
	gl_fetch_cancel(j);
	/* the scheme is case-insensitive */
	snprintf(url, sizeof url, "HTTP://127.0.0.1:%d/ok", t->srv.port);
	c.job = gl_fetch_start(t->f, url, NULL, NULL, cap_done, &c, &err);
	CHECK(c.job);
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(c.res.ok);
	CHECK_INT(c.done, 1);
	CHECK_INT(gl_fetch_active(t->f), 0);
}

FETCH_CASE(fetch_concurrency_cap, "127.0.0.1/32")
{
	cap c[3] = { { 0 } };
	int running = 0, max_running = 0, order[3], norder = 0, done = 0;

	t->conf->fetch_max_concurrent = 1;
	CHECK(mkf(t));
	for (int i = 0; i < 3; i++) {
		c[i].idx = i;
		c[i].running = &running;
		c[i].max_running = &max_running;
		c[i].order = order;
		c[i].norder = &norder;
		CHECK(go(t, "/drip", NULL, &c[i], 1));
	}
	CHECK_INT(gl_fetch_active(t->f), 3);
	CHECK(run_until(t, &norder, 3, 10));
	for (int i = 0; i < 3; i++) {
		CHECK(c[i].res.ok);
		CHECK_INT(c[i].res.size, 4096);
		CHECK_INT(order[i], i);
		done += c[i].done;
	}
	CHECK_INT(done, 3);
	CHECK_INT(max_running, 1);
	CHECK_INT(gl_fetch_active(t->f), 0);
}

FETCH_CASE(fetch_without_cap_runs_in_parallel, "127.0.0.1/32")
{
	cap c[3] = { { 0 } };
	int running = 0, max_running = 0, order[3], norder = 0;

	CHECK(mkf(t));
	for (int i = 0; i < 3; i++) {
		c[i].idx = i;
		c[i].running = &running;
		c[i].max_running = &max_running;
		c[i].order = order;
		c[i].norder = &norder;
		CHECK(go(t, "/drip", NULL, &c[i], 1));
	}
	CHECK(run_until(t, &norder, 3, 10));
	CHECK_INT(max_running, 3); /* so the capped case above means it */
}

FETCH_CASE(fetch_cancel_in_own_data_callback, "127.0.0.1/32")
{
	cap c = { .pattern = 1, .cancel_at = 2 };

	CHECK(mkf(t));
	CHECK(go(t, "/huge", NULL, &c, 1));
	CHECK(run_until(t, &c.calls, 2, 5));
	run_until(t, NULL, 0, 0.3);
	CHECK_INT(c.done, 0);
	CHECK_INT(c.calls, 2); /* nothing delivered after the cancel */
	CHECK_INT(gl_fetch_active(t->f), 0);
}

FETCH_CASE(fetch_cancel_from_outside, "127.0.0.1/32")
{
	cap c = { .pattern = 1, .hold = 1 };

	CHECK(mkf(t));
	CHECK(go(t, "/huge", NULL, &c, 1));
	CHECK(run_until(t, &c.calls, 1, 5));
	run_until(t, NULL, 0, 0.1);
	CHECK_INT(c.calls, 1); /* paused */
	gl_fetch_cancel(c.job);
	CHECK_INT(gl_fetch_active(t->f), 0);
	run_until(t, NULL, 0, 0.2);
	CHECK_INT(c.done, 0);
}

FETCH_CASE(fetch_cancel_queued_and_other, "127.0.0.1/32")
{
	cap a = { 0 }, b = { 0 }, x = { 0 }, y = { .pattern = 1 };

	t->conf->fetch_max_concurrent = 1;
	CHECK(mkf(t));
	CHECK(go(t, "/drip", NULL, &a, 1));
	CHECK(go(t, "/drip", NULL, &b, 1));
	CHECK_INT(gl_fetch_active(t->f), 2);
	gl_fetch_cancel(b.job); /* still queued */
	CHECK_INT(gl_fetch_active(t->f), 1);
	CHECK(run_until(t, &a.done, 1, 5));
	CHECK(a.res.ok);
	run_until(t, NULL, 0, 0.1);
	CHECK_INT(b.done, 0);
	/* a data callback cancelling another running job */
	gl_fetch_free(t->f);
	t->conf->fetch_max_concurrent = 8;
	CHECK(mkf(t));
	CHECK(go(t, "/huge", NULL, &y, 1));
	x.cancel_other = y.job;
	y.hold = 1;
	CHECK(run_until(t, &y.calls, 1, 5));
	CHECK(go(t, "/drip", NULL, &x, 1));
	CHECK(run_until(t, &x.done, 1, 5));
	CHECK(x.res.ok);
	run_until(t, NULL, 0, 0.1);
	CHECK_INT(y.done, 0);
	CHECK_INT(gl_fetch_active(t->f), 0);
}

FETCH_CASE(fetch_free_with_jobs_in_flight, "127.0.0.1/32")
{
	cap a = { .pattern = 1, .hold = 1 }, b = { 0 }, q = { 0 };

	t->conf->fetch_max_concurrent = 2;
	CHECK(mkf(t));
	CHECK(go(t, "/huge", NULL, &a, 1));
	CHECK(go(t, "/slow", NULL, &b, 1));
	CHECK(go(t, "/ok", NULL, &q, 1)); /* queued */
	CHECK(run_until(t, &a.calls, 1, 5));
	gl_fetch_free(t->f);
	t->f = NULL;
	run_until(t, NULL, 0, 0.1);
	CHECK_INT(a.done + b.done + q.done, 0);
}

FETCH_CASE(fetch_pause_resume_from_timer, "127.0.0.1/32")
{
	cap c = { .pattern = 1, .pause_every = 3 };

	CHECK(mkf(t));
	CHECK(go(t, "/big", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 10));
	CHECK(c.res.ok);
	CHECK(c.pauses > 5);
	CHECK_INT(c.res.size, BIG_SIZE);
	CHECK_INT(c.seen, BIG_SIZE);
	CHECK_INT(c.mismatch, 0);
	CHECK_STR(c.res.digest.sha256, big_digest()->sha256);
}

FETCH_CASE(fetch_pause_resume_inside_callback, "127.0.0.1/32")
{
	cap c = { .pattern = 1, .pause_every = 1, .resume_inside = 1 };
	gl_fetch_opts o = { .max_bytes = BIG_SIZE };

	CHECK(mkf(t));
	CHECK(go(t, "/big", &o, &c, 1));
	CHECK(run_until(t, &c.done, 1, 10));
	CHECK(c.res.ok);
	CHECK(c.pauses > 5);
	CHECK_INT(c.res.size, BIG_SIZE);
	CHECK_INT(c.seen, BIG_SIZE);
	CHECK_INT(c.mismatch, 0);
	CHECK_STR(c.res.digest.md5, big_digest()->md5);
}

FETCH_CASE(fetch_pause_then_limit, "127.0.0.1/32")
{
	/* bytes replayed after a pause must not count twice: a cap of exactly
	 * the size still passes, and a smaller one still fails */
	cap c = { .pattern = 1, .pause_every = 2 };
	gl_fetch_opts o = { .max_bytes = BIG_SIZE - 1 };

	CHECK(mkf(t));
	CHECK(go(t, "/big", &o, &c, 1));
	CHECK(run_until(t, &c.done, 1, 10));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 413);
	CHECK(c.seen < BIG_SIZE);
	CHECK_INT(c.mismatch, 0);
}

FETCH_CASE(fetch_abort_from_data, "127.0.0.1/32")
{
	cap c = { .pattern = 1, .abort_at = 2 };

	CHECK(mkf(t));
	CHECK(go(t, "/big", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 499);
	CHECK_STR(c.res.err.msg, "aborted");
	CHECK_INT(c.calls, 2);
}

FETCH_CASE(fetch_start_from_callbacks, "127.0.0.1/32")
{
	cap child1 = { 0 }, child2 = { 0 };
	cap a = { .start_in_done = "/ok", .child = &child1 };
	cap b = { .pattern = 1, .start_in_data = "/ct", .child = &child2 };

	CHECK(mkf(t));
	CHECK(go(t, "/ok", NULL, &a, 1));
	CHECK(go(t, "/big", NULL, &b, 1));
	CHECK(run_until(t, &child1.done, 1, 5));
	CHECK(run_until(t, &child2.done, 1, 5));
	CHECK(run_until(t, &b.done, 1, 10));
	CHECK(a.res.ok);
	CHECK(b.res.ok);
	CHECK(child1.res.ok);
	CHECK_STR(child1.res.digest.sha256, OK_SHA256);
	CHECK(child2.res.ok);
	CHECK_STR(child2.res.content_type, "image/png");
	CHECK_INT(gl_fetch_active(t->f), 0);
}

FETCH_CASE(fetch_loopback_refused_without_allow_list, NULL)
{
	cap c = { 0 };

	CHECK(mkf(t));
	CHECK(go(t, "/ok", NULL, &c, 1));
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg,
		  "refusing to connect to 127.0.0.1: loopback (127.0.0.0/8)");
	CHECK_INT(c.res.http_status, 0);
	/* localhost: every address it resolves to is refused */
	cap l = { 0 };
	char url[128];
	gl_err err;
	snprintf(url, sizeof url, "http://localhost:%d/ok", t->srv.port);
	l.job = gl_fetch_start(t->f, url, NULL, NULL, cap_done, &l, &err);
	CHECK(l.job);
	CHECK(run_until(t, &l.done, 1, 5));
	CHECK(!l.res.ok);
	CHECK(strstr(l.res.err.msg, "refusing to connect to "));
}

FETCH_CASE(fetch_connection_refused, "127.0.0.1/32")
{
	cap c = { 0 };
	char url[128];
	gl_err err;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port nobody listens on */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	close(fd);
	CHECK(mkf(t));
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
	c.job = gl_fetch_start(t->f, url, NULL, NULL, cap_done, &c, &err);
	CHECK(c.job);
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK(strstr(c.res.err.msg, "cannot connect to 127.0.0.1:"));
	CHECK(strstr(c.res.err.msg, "Connection refused"));
}

FETCH_CASE(fetch_dns_failure, "127.0.0.1/32")
{
	cap c = { 0 };
	gl_err err;

	CHECK(mkf(t));
	c.job = gl_fetch_start(t->f, "http://no-such-host.invalid/x", NULL,
			       NULL, cap_done, &c, &err);
	CHECK(c.job);
	CHECK(run_until(t, &c.done, 1, 12));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK_STR(c.res.err.msg, "cannot resolve host no-such-host.invalid");
}

FETCH_CASE(fetch_tls_error, "127.0.0.1/32")
{
	cap c = { 0 };
	char url[128];
	gl_err err;

	CHECK(mkf(t));
	snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", t->srv.port);
	c.job = gl_fetch_start(t->f, url, NULL, NULL, cap_done, &c, &err);
	CHECK(c.job);
	CHECK(run_until(t, &c.done, 1, 5));
	CHECK(!c.res.ok);
	CHECK_INT(c.res.err.status, 400);
	CHECK(strstr(c.res.err.msg, "TLS error with 127.0.0.1:"));
}

FETCH_CASE(fetch_sync, "127.0.0.1/32")
{
	gl_fetch_result r;
	char url[128];

	snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", t->srv.port);
	CHECK_INT(gl_fetch_sync(t->conf, url, NULL, &r), 0);
	CHECK(r.ok);
	CHECK_STR(r.digest.sha1, OK_SHA1);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/404", t->srv.port);
	CHECK_INT(gl_fetch_sync(t->conf, url, NULL, &r), -1);
	CHECK_STR(r.err.msg, "remote server answered 404 Not Found");
	CHECK_INT(gl_fetch_sync(t->conf, "ftp://x/", NULL, &r), -1);
	CHECK_INT(r.err.status, 400);
}

UNIT_TEST(fetch_new_rejects_bad_allow_list)
{
	gl_err e;
	gl_conf *conf = gl_conf_load(NULL, &e);
	struct event_base *base = event_base_new();
	gl_err err = { 0 };

	CHECK(conf && base);
	gl_strlist *l = &conf->external_location_allowed_networks;
	l->v = malloc(sizeof *l->v);
	l->v[0] = strdup("10.0.0.0/99");
	l->n = 1;
	gl_fetch *f = gl_fetch_new(base, conf, &err);
	gl_conf_free(conf);
	event_base_free(base);
	CHECK(!f);
	CHECK(strstr(err.msg, "10.0.0.0/99"));
}

/* clang-format off */
UNIT_SUITE(fetch,
	   UNIT_CASE(netguard_deny_table),
	   UNIT_CASE(netguard_wrapped_forms),
	   UNIT_CASE(netguard_allow_list),
	   UNIT_CASE(netguard_malformed_cidrs),
	   UNIT_CASE(netguard_non_ip_family),
	   UNIT_CASE(fetch_new_rejects_bad_allow_list),
	   UNIT_CASE(fetch_ok_digests_and_headers),
	   UNIT_CASE(fetch_content_type),
	   UNIT_CASE(fetch_data_callback_sees_exact_bytes),
	   UNIT_CASE(fetch_range),
	   UNIT_CASE(fetch_max_bytes_undeclared),
	   UNIT_CASE(fetch_max_bytes_declared),
	   UNIT_CASE(fetch_low_speed_timeout),
	   UNIT_CASE(fetch_total_timeout),
	   UNIT_CASE(fetch_http_404),
	   UNIT_CASE(fetch_redirect_followed),
	   UNIT_CASE(fetch_redirect_loop),
	   UNIT_CASE(fetch_redirect_to_private_refused),
	   UNIT_CASE(fetch_redirect_to_file_refused),
	   UNIT_CASE(fetch_invalid_urls),
	   UNIT_CASE(fetch_concurrency_cap),
	   UNIT_CASE(fetch_without_cap_runs_in_parallel),
	   UNIT_CASE(fetch_cancel_in_own_data_callback),
	   UNIT_CASE(fetch_cancel_from_outside),
	   UNIT_CASE(fetch_cancel_queued_and_other),
	   UNIT_CASE(fetch_free_with_jobs_in_flight),
	   UNIT_CASE(fetch_pause_resume_from_timer),
	   UNIT_CASE(fetch_pause_resume_inside_callback),
	   UNIT_CASE(fetch_pause_then_limit),
	   UNIT_CASE(fetch_abort_from_data),
	   UNIT_CASE(fetch_start_from_callbacks),
	   UNIT_CASE(fetch_loopback_refused_without_allow_list),
	   UNIT_CASE(fetch_connection_refused),
	   UNIT_CASE(fetch_dns_failure),
	   UNIT_CASE(fetch_tls_error),
	   UNIT_CASE(fetch_sync));
/* clang-format on */
