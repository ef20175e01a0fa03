/* digest.c - md5 + sha1 + sha256 in one pass (see digest.h). */
#include "digest.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

struct gl_digest {
	EVP_MD_CTX *ctx[3];
	int64_t bytes;
};

static EVP_MD *algs[3];

static void fetch_algs(void)
{
	static const char *const names[3] = { "MD5", "SHA1", "SHA256" };
	for (int i = 0; i < 3; i++) {
		if (!algs[i])
			algs[i] = EVP_MD_fetch(NULL, names[i], NULL);
		if (!algs[i]) {
			/* a crypto library without these cannot run glared */
			fprintf(stderr, "glared: OpenSSL lacks %s\n", names[i]);
			abort();
		}
	}
}

gl_digest *gl_digest_new(void)
{
	gl_digest *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	fetch_algs();
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

void gl_digest_reset(gl_digest *d)
{
	for (int i = 0; i < 3; i++)
		EVP_DigestInit_ex2(d->ctx[i], algs[i], NULL);
	d->bytes = 0;
}

void gl_digest_update(gl_digest *d, const void *data, size_t len)
{
	for (int i = 0; i < 3; i++)
		EVP_DigestUpdate(d->ctx[i], data, len);
	d->bytes += (int64_t)len;
}

static void hex(const unsigned char *b, unsigned n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = h[b[i] >> 4];
		out[2 * i + 1] = h[b[i] & 15];
	}
	out[2 * n] = '\0';
}

void gl_digest_final(gl_digest *d, gl_digest_hex *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n;
	char *dst[3] = { out->md5, out->sha1, out->sha256 };

	for (int i = 0; i < 3; i++) {
		EVP_DigestFinal_ex(d->ctx[i], md, &n);
		hex(md, n, dst[i]);
	}
}

int64_t gl_digest_bytes(const gl_digest *d) { return d->bytes; }

void gl_digest_free(gl_digest *d)
{
	if (!d)
		return;
	for (int i = 0; i < 3; i++)
		EVP_MD_CTX_free(d->ctx[i]);
	free(d);
}
