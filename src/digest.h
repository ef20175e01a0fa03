/* digest.h - md5 + sha1 + sha256 of a byte stream in one pass.
 *
 * Every blob byte that enters glared (upload, external fetch, proxy
 * download, re-verification) goes through one of these. The EVP_MD objects
 * are fetched once per process (implicit fetches cost more and take locks:
 * docs/design-notes.md "Hashing"). Past a few MiB the hashing moves to two helper threads
 * that block every signal; if they cannot start, hashing stays inline for
 * that digest (until reset) without retrying. Uses OpenSSL 3 EVP, pthreads.
 */
#ifndef GL_DIGEST_H
#define GL_DIGEST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gl_digest gl_digest;

typedef struct gl_digest_hex {
	char md5[33];
	char sha1[41];
	char sha256[65];
} gl_digest_hex;

gl_digest *gl_digest_new(void);
void gl_digest_update(gl_digest *d, const void *data, size_t len);
/* Finish and write lower-case hex digests; the object can be reset and
 * reused afterwards with gl_digest_reset. */
void gl_digest_final(gl_digest *d, gl_digest_hex *out);
void gl_digest_reset(gl_digest *d);
int64_t gl_digest_bytes(const gl_digest *d);
void gl_digest_free(gl_digest *d);

/* How the helper threads are started: pthread_create. A test swaps in a
 * failing or wrapping function to prove the inline fallback and the
 * threads' signal mask. Only while no digest is hashing. */
extern int (*gl_digest_thread_create)(pthread_t *, const pthread_attr_t *,
				      void *(*)(void *), void *);

#endif
