/* digest.c - md5 + sha1 + sha256 in one pass (see digest.h).
 *
 * Small inputs are hashed inline. Past ASYNC_AFTER bytes the work moves to
 * two helper threads, one for md5 and one for sha1 + sha256 (the split
 * measured best here: ~1.8x one thread, capped by md5;
 * docs/design-notes.md "Hashing"), so
 * an upload or a fetch is no longer bound by one core hashing three times
 * while the event loop also moves the bytes. The caller's pieces are
 * copied into a small ring of chunks (RING x CHUNK bytes, bounded memory);
 * when the ring is full, update waits for the slower hasher, which is the
 * backpressure a caller would get from hashing inline anyway.
 */
#include "digest.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define ASYNC_AFTER (4 << 20)
#define CHUNK (256 << 10)
#define RING 16

typedef struct chunk {
	unsigned char *data;
	size_t len;
} chunk;

struct gl_digest {
	EVP_MD_CTX *ctx[3];
	int64_t bytes;
	/* async mode */
	int async;
	pthread_t th[2];
	pthread_mutex_t mu;
	pthread_cond_t work, space;
	chunk ring[RING];
	unsigned head;    /* chunks queued */
	unsigned tail[2]; /* chunks each hasher finished */
	size_t fill;      /* bytes in ring[head % RING] not yet queued */
	int stop;
	int inline_only; /* the threads could not start: no retry until reset */
};

int (*gl_digest_thread_create)(pthread_t *, const pthread_attr_t *,
			       void *(*)(void *), void *) = pthread_create;

typedef struct worker_arg {
	gl_digest *d;
	int id;
} worker_arg;

static EVP_MD *algs[3];
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void fetch_algs(void)
{
	static const char *const names[3] = { "MD5", "SHA1", "SHA256" };
	for (int i = 0; i < 3; i++) {
		algs[i] = EVP_MD_fetch(NULL, names[i], NULL);
		if (!algs[i]) {
			/* a crypto library without these cannot run glared */
			fprintf(stderr, "glared: OpenSSL lacks %s\n",
				names[i]);
			abort();
		}
	}
}

gl_digest *gl_digest_new(void)
{
	gl_digest *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	pthread_once(&algs_once, fetch_algs);
	for (int i = 0; i < 3; i++) {
		d->ctx[i] = EVP_MD_CTX_new();
		if (!d->ctx[i]) {
			gl_digest_free(d);
			return NULL;
		}
	}
	gl_digest_reset(d);
	return d;
}

/* ---- the helper threads ---------------------------------------------------- */

static unsigned slowest(const gl_digest *d)
{
	return d->tail[0] < d->tail[1] ? d->tail[0] : d->tail[1];
}

static void *hasher(void *arg)
{
	worker_arg *wa = arg;
	gl_digest *d = wa->d;
	int id = wa->id;

	free(wa);
	pthread_mutex_lock(&d->mu);
	for (;;) {
		chunk *c;
		while (d->tail[id] == d->head && !d->stop)
			pthread_cond_wait(&d->work, &d->mu);
		if (d->tail[id] == d->head)
			break; /* stopped and drained */
		c = &d->ring[d->tail[id] % RING];
		pthread_mutex_unlock(&d->mu);
		if (id == 0) {
			EVP_DigestUpdate(d->ctx[0], c->data, c->len);
		} else {
			EVP_DigestUpdate(d->ctx[1], c->data, c->len);
			EVP_DigestUpdate(d->ctx[2], c->data, c->len);
		}
		pthread_mutex_lock(&d->mu);
		d->tail[id]++;
		pthread_cond_signal(&d->space);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static void free_ring(gl_digest *d)
{
	for (int i = 0; i < RING; i++) {
		free(d->ring[i].data);
		d->ring[i].data = NULL;
	}
}

/* Stop the hashers that are running (n of them) and wait for them. The flag
 * changes under the mutex with a broadcast, so a hasher between its check
 * and its wait cannot miss it. */
static void stop_threads(gl_digest *d, int n)
{
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_broadcast(&d->work);
	pthread_mutex_unlock(&d->mu);
	for (int i = 0; i < n; i++)
		pthread_join(d->th[i], NULL);
}

static void destroy_sync(gl_digest *d)
{
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->space);
	pthread_mutex_destroy(&d->mu);
}

/* 0: the hashers run. -1: they could not start; everything this one
 * allocated is released and the caller hashes inline. */
static int start_async(gl_digest *d)
{
	sigset_t all, old;
	int started = 0;

	for (int i = 0; i < RING; i++) {
		d->ring[i].data = malloc(CHUNK);
		if (!d->ring[i].data) {
			free_ring(d);
			return -1;
		}
	}
	if (pthread_mutex_init(&d->mu, NULL) != 0) {
		free_ring(d);
		return -1;
	}
	pthread_cond_init(&d->work, NULL);
	pthread_cond_init(&d->space, NULL);
	d->head = d->tail[0] = d->tail[1] = 0;
	d->fill = 0;
	d->stop = 0;
	/* the hashers inherit this mask: signals (the console's SIGINT, the
	 * server's TERM/HUP) are for the loop thread, never for them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; started < 2; started++) {
		worker_arg *wa = malloc(sizeof *wa);
		if (!wa)
			break;
		wa->d = d;
		wa->id = started;
		if (gl_digest_thread_create(&d->th[started], NULL, hasher,
					    wa) != 0) {
			free(wa);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started < 2) {
		stop_threads(d, started);
		destroy_sync(d);
		free_ring(d);
		return -1;
	}
	d->async = 1;
	return 0;
}

/* Hand the filling chunk to the hashers. Caller holds no lock. */
static void queue_fill(gl_digest *d)
{
	if (!d->fill)
		return;
	pthread_mutex_lock(&d->mu);
	d->ring[d->head % RING].len = d->fill;
	d->head++;
	d->fill = 0;
	pthread_cond_broadcast(&d->work);
	pthread_mutex_unlock(&d->mu);
}

static void stop_async(gl_digest *d)
{
	if (!d->async)
		return;
	queue_fill(d);
	stop_threads(d, 2);
	free_ring(d);
	destroy_sync(d);
	d->async = 0;
}

/* ---- the interface ------------------------------------------------------------ */

void gl_digest_reset(gl_digest *d)
{
	stop_async(d);
	for (int i = 0; i < 3; i++)
		EVP_DigestInit_ex2(d->ctx[i], algs[i], NULL);
	d->bytes = 0;
	d->inline_only = 0;
}

void gl_digest_update(gl_digest *d, const void *data, size_t len)
{
	const unsigned char *p = data;

	d->bytes += (int64_t)len;
	if (!d->async && !d->inline_only && d->bytes >= ASYNC_AFTER &&
	    start_async(d) < 0)
		d->inline_only = 1;
	if (!d->async) {
		for (int i = 0; i < 3; i++)
			EVP_DigestUpdate(d->ctx[i], data, len);
		return;
	}
	while (len) {
		size_t n;
		if (d->fill == 0) {
			/* wait for a free chunk: the slower hasher's pace */
			pthread_mutex_lock(&d->mu);
			while (d->head - slowest(d) >= RING)
				pthread_cond_wait(&d->space, &d->mu);
			pthread_mutex_unlock(&d->mu);
		}
		n = CHUNK - d->fill;
		if (n > len)
			n = len;
		memcpy(d->ring[d->head % RING].data + d->fill, p, n);
		d->fill += n;
		p += n;
		len -= n;
		if (d->fill == CHUNK)
			queue_fill(d);
	}
}

void gl_digest_final(gl_digest *d, gl_digest_hex *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n;
	char *dst[3] = { out->md5, out->sha1, out->sha256 };

	stop_async(d); /* the hashers finish what is queued first */
	for (int i = 0; i < 3; i++) {
		EVP_DigestFinal_ex(d->ctx[i], md, &n);
		gl_hex(md, n, dst[i]);
	}
}

int64_t gl_digest_bytes(const gl_digest *d)
{
	return d->bytes;
}

void gl_digest_free(gl_digest *d)
{
	if (!d)
		return;
	stop_async(d);
	for (int i = 0; i < 3; i++)
		EVP_MD_CTX_free(d->ctx[i]);
	free(d);
}
