/* jwt.h - JSON Web Tokens signed by an OIDC issuer, checked locally.
 *
 * The keycloak flavor (oidc.c) takes the issuer's word only through its
 * signature: a token is split and decoded here, its signature verified
 * with OpenSSL 3 against a key of the realm's JWKS, and its time claims
 * checked. Nothing here talks to the network or keeps state, so every
 * function can be unit-tested and fuzzed on its own.
 *
 * Algorithms: RS256/384/512 (PKCS#1 v1.5), PS256/384/512 (PSS, salt =
 * digest length) and ES256/384/512 (P-256/384/521, raw r||s signatures as
 * JWS requires, converted to DER for OpenSSL). "none" and the HMAC family
 * are refused whatever the key set holds: an HS256 token "signed" with the
 * issuer's public key must never verify. RSA keys under 2048 bits and EC
 * points off their curve are refused when the key set is read.
 *
 * Base64url, big numbers, key construction (OSSL_PARAM_BLD) and the
 * signature checks are OpenSSL's; JSON is jansson's (duplicate members
 * refused, so no two readers can see different claims).
 *
 * Used by oidc.c. Uses OpenSSL and jansson.
 */
#ifndef GL_JWT_H
#define GL_JWT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#define GL_JWT_MAX_LEN 16384   /* a whole token */
#define GL_JWT_MAX_HEADER 2048 /* its encoded header */
#define GL_JWKS_MAX_KEYS 64

enum gl_jwt_kty { GL_KTY_RSA = 1, GL_KTY_EC };

typedef struct gl_jwk {
	char *kid; /* may be NULL */
	char *alg; /* the key's own "alg", may be NULL */
	enum gl_jwt_kty kty;
	int bits; /* RSA modulus or EC field size */
	EVP_PKEY *pkey;
} gl_jwk;

typedef struct gl_jwks {
	gl_jwk *keys;
	int n;
	int skipped; /* members that were not usable signing keys */
} gl_jwks;

typedef struct gl_jwt {
	json_t *header;    /* the decoded JOSE header */
	json_t *claims;    /* the decoded payload */
	const char *alg;   /* borrowed from header */
	const char *kid;   /* borrowed from header, may be NULL */
	const char *input; /* the signing input "header.payload" (borrowed */
	size_t input_len;  /* from the token passed to gl_jwt_parse) */
	unsigned char *sig;
	size_t sig_len;
} gl_jwt;

/* What the caller requires of the claims. */
typedef struct gl_jwt_rules {
	time_t now;
	long leeway; /* seconds of clock skew tolerated */
} gl_jwt_rules;

/* Result of gl_jwt_verify. */
enum { GL_JWT_OK = 0, GL_JWT_BAD = -1, GL_JWT_NO_KEY = -2 };

/* base64url without padding (padding is tolerated). Returns a malloc'ed
 * buffer (NUL-terminated for convenience) and its length in *out_len, or
 * NULL for a character outside the alphabet or an impossible length. */
unsigned char *gl_b64url_decode(const char *s, size_t len, size_t *out_len);
/* Encode n bytes, no padding; malloc'ed, NUL-terminated. */
char *gl_b64url_encode(const unsigned char *p, size_t n);

/* JWS raw r||s (2 * coord bytes) <-> DER ECDSA-Sig-Value. Both return a
 * malloc'ed buffer and its length, or NULL. der_to_raw pads r and s to
 * coord bytes (and refuses values that do not fit). */
unsigned char *gl_ecdsa_raw_to_der(const unsigned char *raw, size_t n,
				   size_t *out_len);
unsigned char *gl_ecdsa_der_to_raw(const unsigned char *der, size_t n,
				   size_t coord, size_t *out_len);

/* Split and decode a compact JWS; checks its shape, the header (an
 * object with a supported "alg", no "crit") and that the payload is a JSON
 * object. The signature is not checked yet. 0, or -1 with why. t borrows
 * from tok, which must outlive it. */
int gl_jwt_parse(const char *tok, size_t len, gl_jwt *t, char *why,
		 size_t whylen);
void gl_jwt_free(gl_jwt *t);

/* Verify t's signature with the key of set that t names (kid), or with the
 * only key that fits t's alg when t names none. GL_JWT_NO_KEY: no key of
 * that kid (a rotated key set may have it: refetch); GL_JWT_BAD: a key
 * was found and the signature or the key's type is wrong. */
int gl_jwt_verify(const gl_jwt *t, const gl_jwks *set, char *why,
		  size_t whylen);

/* exp (required), nbf and iat (if present) against r->now +- leeway. */
int gl_jwt_check_times(const gl_jwt *t, const gl_jwt_rules *r, char *why,
		       size_t whylen);

/* Read a JWKS document ({"keys": [...]}). Keys that are not usable for
 * signatures (other kty, "use": "enc", bad or weak numbers, points off the
 * curve) are skipped and counted. NULL with why if the document itself is
 * malformed. */
gl_jwks *gl_jwks_parse(const char *json, size_t len, char *why, size_t whylen);
void gl_jwks_free(gl_jwks *set);
const gl_jwk *gl_jwks_find(const gl_jwks *set, const char *kid);

#endif
