/* digest.h - md5 + sha1 + sha256 of a byte stream in one pass.
 *
 * Every blob byte that enters glared (upload, external fetch, proxy
 * download, re-verification) goes through one of these. The EVP_MD objects
 * are fetched once per process (tech-notes §5: implicit fetches cost more
 * and take locks). Uses OpenSSL 3 EVP.
 */
#ifndef GL_DIGEST_H
#define GL_DIGEST_H

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

#endif
