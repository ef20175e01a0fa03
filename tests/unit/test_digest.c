/* test_digest.c - the three digests, inline and on the helper threads,
 * against OpenSSL's one-shot functions over the same bytes. */
#include "unit.h"

#include "digest.h"

#include <pthread.h>
#include <signal.h>
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
		gl_digest_update(d, buf + off,
				 n - off < piece ? n - off : piece);
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

UNIT_TEST(empty_input)
{
	CHECK(same(0, 1));
}
UNIT_TEST(small_inline)
{
	CHECK(same(1000, 7));
}
UNIT_TEST(threshold_crossing)
{
	CHECK(same((4 << 20) + 3, 65537));
}
UNIT_TEST(large_async_odd_pieces)
{
	CHECK(same(50u << 20, 100003));
}
UNIT_TEST(large_async_big_pieces)
{
	CHECK(same(40u << 20, 3u << 20));
}

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

/* ---- thread start failure and the threads' signal mask ---------------- */

static int creates;   /* calls of the seam */
static int fail_from; /* the nth call (1-based) and later fail */
static int sigint_blocked = -1;

static int failing_create(pthread_t *t, const pthread_attr_t *a,
			  void *(*fn)(void *), void *arg)
{
	if (++creates >= fail_from)
		return 11; /* EAGAIN, as when the process is out of threads */
	return pthread_create(t, a, fn, arg);
}

typedef struct tramp {
	void *(*fn)(void *);
	void *arg;
} tramp;

static void *record_mask(void *p)
{
	tramp t = *(tramp *)p;
	sigset_t cur;

	free(p);
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	__atomic_store_n(&sigint_blocked, sigismember(&cur, SIGINT),
			 __ATOMIC_SEQ_CST);
	return t.fn(t.arg);
}

static int wrapping_create(pthread_t *th, const pthread_attr_t *a,
			   void *(*fn)(void *), void *arg)
{
	tramp *t = malloc(sizeof *t);
	int rc;

	if (!t)
		return 12;
	t->fn = fn;
	t->arg = arg;
	creates++;
	rc = pthread_create(th, a, record_mask, t);
	if (rc)
		free(t);
	return rc;
}

/* Hash 3 x 12 MiB in 1 MiB pieces with thread start failing from the nth
 * call: the digests stay right, the seam is called once per digest (no
 * retry per update), nothing leaks (LeakSanitizer under make asan). */
static int fallback_case(int nth, int *calls)
{
	int ok;

	gl_digest_thread_create = failing_create;
	creates = 0;
	fail_from = nth;
	ok = same(12u << 20, 1u << 20) && same(12u << 20, 1u << 20) &&
	     same(12u << 20, 1u << 20);
	gl_digest_thread_create = pthread_create;
	*calls = creates;
	return ok;
}

UNIT_TEST(thread_start_fails_first)
{
	int calls, ok = fallback_case(1, &calls);
	CHECK(ok);
	CHECK_INT(calls, 3); /* one attempt per digest */
}

UNIT_TEST(thread_start_fails_second)
{
	/* the first hasher runs and must be stopped and joined */
	int calls, ok = fallback_case(2, &calls);
	CHECK(ok);
	CHECK_INT(calls, 2 + 1 + 1);
}

UNIT_TEST(failed_start_retried_after_reset)
{
	gl_digest *d = gl_digest_new();
	unsigned char *buf = calloc(1, 6u << 20);
	gl_digest_hex a, b;
	int after_fail;

	gl_digest_thread_create = failing_create;
	creates = 0;
	fail_from = 1;
	for (int i = 0; i < 4; i++)
		gl_digest_update(d, buf, 6u << 20);
	gl_digest_final(d, &a);
	after_fail = creates;
	gl_digest_thread_create = pthread_create;
	gl_digest_reset(d);
	for (int i = 0; i < 4; i++)
		gl_digest_update(d, buf, 6u << 20);
	gl_digest_final(d, &b);
	gl_digest_free(d);
	free(buf);
	CHECK_INT(after_fail, 1);
	CHECK_STR(a.sha256, b.sha256);
	CHECK_STR(a.md5, b.md5);
}

UNIT_TEST(threads_block_signals)
{
	gl_digest *d = gl_digest_new();
	unsigned char *buf = calloc(1, 8u << 20);
	sigset_t mine;
	int blocked, started;

	gl_digest_thread_create = wrapping_create;
	creates = 0;
	sigint_blocked = -1;
	gl_digest_update(d, buf, 8u << 20);
	gl_digest_free(d); /* joins: the hashers have recorded their mask */
	gl_digest_thread_create = pthread_create;
	free(buf);
	started = creates;
	blocked = __atomic_load_n(&sigint_blocked, __ATOMIC_SEQ_CST);
	pthread_sigmask(SIG_SETMASK, NULL, &mine);
	CHECK_INT(started, 2);
	CHECK_INT(blocked, 1);
	CHECK_INT(sigismember(&mine, SIGINT),
		  0); /* the caller's mask is back */
}

UNIT_SUITE(digest, UNIT_CASE(empty_input), UNIT_CASE(small_inline),
	   UNIT_CASE(threshold_crossing), UNIT_CASE(large_async_odd_pieces),
	   UNIT_CASE(large_async_big_pieces), UNIT_CASE(reset_after_async),
	   UNIT_CASE(free_without_final), UNIT_CASE(thread_start_fails_first),
	   UNIT_CASE(thread_start_fails_second),
	   UNIT_CASE(failed_start_retried_after_reset),
	   UNIT_CASE(threads_block_signals));
