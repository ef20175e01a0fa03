/* test_digest.c - the three digests, inline and on the helper threads,
 * against OpenSSL's one-shot functions over the same bytes. */
#include "unit.h"

#include "digest.h"

#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

static void oneshot(const char *alg, const unsigned char *p, size_t n,
		    char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len;
	static const char h[] = "0123456789abcdef";
	EVP_Digest(p, n, md, &len, EVP_get_digestbyname(alg), NULL);
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = h[md[i] >> 4];
		out[2 * i + 1] = h[md[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Feed n bytes in pieces of `piece` bytes (odd sizes cross the chunks). */
static int same(size_t n, size_t piece)
{
	unsigned char *buf = malloc(n ? n : 1);
	gl_digest *d = gl_digest_new();
	gl_digest_hex got;
	char want[3][65];
	uint32_t x = 2463534242u;
	int ok;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	for (size_t off = 0; off < n; off += piece)
		gl_digest_update(d, buf + off, n - off < piece ? n - off : piece);
	gl_digest_final(d, &got);
	oneshot("MD5", buf, n, want[0]);
	oneshot("SHA1", buf, n, want[1]);
	oneshot("SHA256", buf, n, want[2]);
	ok = !strcmp(got.md5, want[0]) && !strcmp(got.sha1, want[1]) &&
	     !strcmp(got.sha256, want[2]) && gl_digest_bytes(d) == (int64_t)n;
	gl_digest_free(d);
	free(buf);
	return ok;
}

UNIT_TEST(empty_input) { CHECK(same(0, 1)); }
UNIT_TEST(small_inline) { CHECK(same(1000, 7)); }
UNIT_TEST(threshold_crossing) { CHECK(same((4 << 20) + 3, 65537)); }
UNIT_TEST(large_async_odd_pieces) { CHECK(same(50u << 20, 100003)); }
UNIT_TEST(large_async_big_pieces) { CHECK(same(40u << 20, 3u << 20)); }

UNIT_TEST(reset_after_async)
{
	gl_digest *d = gl_digest_new();
	gl_digest_hex a, b;
	unsigned char *buf = calloc(1, 10u << 20);
	gl_digest_update(d, buf, 10u << 20);
	gl_digest_final(d, &a);
	gl_digest_reset(d);
	gl_digest_update(d, buf, 10u << 20);
	gl_digest_final(d, &b);
	free(buf);
	gl_digest_free(d);
	CHECK_STR(a.sha256, b.sha256);
	CHECK_STR(a.md5, b.md5);
}

UNIT_TEST(free_without_final)
{
	gl_digest *d = gl_digest_new();
	unsigned char *buf = calloc(1, 9u << 20);
	int64_t n;
	gl_digest_update(d, buf, 9u << 20);
	n = gl_digest_bytes(d);
	gl_digest_free(d); /* joins the hashers; no leak, no hang */
	free(buf);
	CHECK_INT(n, 9 << 20);
}

UNIT_SUITE(digest, UNIT_CASE(empty_input), UNIT_CASE(small_inline),
	   UNIT_CASE(threshold_crossing), UNIT_CASE(large_async_odd_pieces),
	   UNIT_CASE(large_async_big_pieces), UNIT_CASE(reset_after_async),
	   UNIT_CASE(free_without_final));
