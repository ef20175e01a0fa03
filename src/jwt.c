/* jwt.c - JWS compact tokens, JWK sets, local signature checks (see jwt.h). */
#include "jwt.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

typedef struct alg_info {
	const char *name;
	enum gl_jwt_kty kty;
	const char *md;
	int pss;
	const char *crv; /* EC: the JWK curve name */
} alg_info;

static const alg_info algs[] = {
	{ "RS256", GL_KTY_RSA, "SHA256", 0, NULL },
	{ "RS384", GL_KTY_RSA, "SHA384", 0, NULL },
	{ "RS512", GL_KTY_RSA, "SHA512", 0, NULL },
	{ "PS256", GL_KTY_RSA, "SHA256", 1, NULL },
	{ "PS384", GL_KTY_RSA, "SHA384", 1, NULL },
	{ "PS512", GL_KTY_RSA, "SHA512", 1, NULL },
	{ "ES256", GL_KTY_EC, "SHA256", 0, "P-256" },
	{ "ES384", GL_KTY_EC, "SHA384", 0, "P-384" },
	{ "ES512", GL_KTY_EC, "SHA512", 0, "P-521" },
};

typedef struct curve_info {
	const char *crv;   /* JWK name */
	const char *group; /* OpenSSL group name */
	int bits;
	size_t coord; /* bytes per coordinate */
} curve_info;

static const curve_info curves[] = {
	{ "P-256", "prime256v1", 256, 32 },
	{ "P-384", "secp384r1", 384, 48 },
	{ "P-521", "secp521r1", 521, 66 },
};

#define MIN_RSA_BITS 2048

static int why_set(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A short printable copy of a value taken from a token, for messages. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s && *s && i + 1 < len; s++)
		buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	buf[i] = '\0';
	return buf;
}

static const alg_info *find_alg(const char *name)
{
	for (size_t i = 0; name && i < sizeof algs / sizeof algs[0]; i++)
		if (!strcmp(algs[i].name, name))
			return &algs[i];
	return NULL;
}

static const curve_info *find_curve(const char *crv)
{
	for (size_t i = 0; crv && i < sizeof curves / sizeof curves[0]; i++)
		if (!strcmp(curves[i].crv, crv))
			return &curves[i];
	return NULL;
}

/* ---- base64url ------------------------------------------------------------ */

unsigned char *gl_b64url_decode(const char *s, size_t len, size_t *out_len)
{
	size_t pad = (4 - len % 4) % 4;
	unsigned char *out;
	char *std;
	int got;

	if (len % 4 == 1 || len > INT_MAX / 2)
		return NULL;
	std = malloc(len + pad + 1);
	out = malloc((len + pad) / 4 * 3 + 1);
	if (!std || !out)
		goto fail;
	/* only the url-safe alphabet: EVP_DecodeBlock would skip blanks */
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9'))
			std[i] = c;
		else if (c == '-')
			std[i] = '+';
		else if (c == '_')
			std[i] = '/';
		else
			goto fail;
	}
	memset(std + len, '=', pad);
	got = EVP_DecodeBlock(out, (unsigned char *)std, (int)(len + pad));
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (got < 0 || (size_t)got < pad)
		goto fail;
	got -= (int)pad;
	out[got] = '\0';
	*out_len = (size_t)got;
	free(std);
	return out;
fail:
	free(std);
	free(out);
	return NULL;
}

char *gl_b64url_encode(const unsigned char *p, size_t n)
{
	char *out;
	int len;

	if (n > INT_MAX / 2)
		return NULL;
	out = malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (int i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

/* ---- ECDSA signature forms ---------------------------------------------- */

unsigned char *gl_ecdsa_raw_to_der(const unsigned char *raw, size_t n,
				   size_t *out_len)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *out = NULL, *p;
	int len;

	if (n == 0 || n % 2 || n > 2 * 66)
		return NULL;
	r = BN_bin2bn(raw, (int)(n / 2), NULL);
	s = BN_bin2bn(raw + n / 2, (int)(n / 2), NULL);
	sig = ECDSA_SIG_new();
	if (!r || !s || !sig || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	len = i2d_ECDSA_SIG(sig, NULL);
	if (len <= 0 || !(out = malloc((size_t)len)))
		goto out;
	p = out;
	if (i2d_ECDSA_SIG(sig, &p) != len) {
		free(out);
		out = NULL;
		goto out;
	}
	*out_len = (size_t)len;
out:
	ECDSA_SIG_free(sig);
	return out;
}

unsigned char *gl_ecdsa_der_to_raw(const unsigned char *der, size_t n,
				   size_t coord, size_t *out_len)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	unsigned char *out = NULL;
	ECDSA_SIG *sig;

	if (n > LONG_MAX || coord == 0 || coord > 66)
		return NULL;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)n);
	if (!sig || p != der + n)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_num_bytes(r) > (int)coord || BN_num_bytes(s) > (int)coord)
		goto out;
	out = malloc(2 * coord);
	if (!out)
		goto out;
	BN_bn2binpad(r, out, (int)coord);
	BN_bn2binpad(s, out + coord, (int)coord);
	*out_len = 2 * coord;
out:
	ECDSA_SIG_free(sig);
	ERR_clear_error();
	return out;
}

/* ---- tokens ------------------------------------------------------------- */

static json_t *decode_object(const char *s, size_t len)
{
	size_t n;
	unsigned char *raw = gl_b64url_decode(s, len, &n);
	json_t *j;

	if (!raw)
		return NULL;
	/* two readers must never see two different claim sets */
	j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void gl_jwt_free(gl_jwt *t)
{
	json_decref(t->header);
	json_decref(t->claims);
	free(t->sig);
	memset(t, 0, sizeof *t);
}

int gl_jwt_parse(const char *tok, size_t len, gl_jwt *t, char *why,
		 size_t whylen)
{
	const char *d1, *d2, *end = tok + len;
	json_t *alg, *kid;
	char buf[32];

	memset(t, 0, sizeof *t);
	if (len == 0 || len > GL_JWT_MAX_LEN)
		return why_set(why, whylen, "token of %zu bytes", len);
	d1 = memchr(tok, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
		return why_set(why, whylen, "not a JWS compact token");
	if ((size_t)(d1 - tok) > GL_JWT_MAX_HEADER)
		return why_set(why, whylen, "JOSE header of %zu bytes",
			       (size_t)(d1 - tok));
	t->header = decode_object(tok, (size_t)(d1 - tok));
	if (!t->header) {
		why_set(why, whylen, "JOSE header is not base64url JSON");
		goto fail;
	}
	alg = json_object_get(t->header, "alg");
	if (!json_is_string(alg)) {
		why_set(why, whylen, "no alg in the JOSE header");
		goto fail;
	}
	t->alg = json_string_value(alg);
	if (!find_alg(t->alg)) {
		/* none, HS*, and anything this file does not implement */
		why_set(why, whylen, "alg %s refused",
			printable(t->alg, buf, sizeof buf));
		goto fail;
	}
	if (json_object_get(t->header, "crit")) {
		/* extensions we would have to understand (RFC 7515 4.1.11) */
		why_set(why, whylen, "JOSE header has crit");
		goto fail;
	}
	kid = json_object_get(t->header, "kid");
	if (kid && !json_is_string(kid)) {
		why_set(why, whylen, "kid is not a string");
		goto fail;
	}
	t->kid = kid ? json_string_value(kid) : NULL;
	t->claims = decode_object(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!t->claims) {
		why_set(why, whylen, "payload is not base64url JSON object");
		goto fail;
	}
	t->sig = gl_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), &t->sig_len);
	if (!t->sig || t->sig_len == 0) {
		why_set(why, whylen, "no signature");
		goto fail;
	}
	t->input = tok;
	t->input_len = (size_t)(d2 - tok);
	return 0;
fail:
	gl_jwt_free(t);
	return -1;
}

const gl_jwk *gl_jwks_find(const gl_jwks *set, const char *kid)
{
	for (int i = 0; set && kid && i < set->n; i++)
		if (set->keys[i].kid && !strcmp(set->keys[i].kid, kid))
			return &set->keys[i];
	return NULL;
}

/* The key a token without kid means: the only one of its type. */
static const gl_jwk *only_key(const gl_jwks *set, const alg_info *a,
			      int *several)
{
	const gl_jwk *k = NULL;

	*several = 0;
	for (int i = 0; set && i < set->n; i++) {
		if (set->keys[i].kty != a->kty)
			continue;
		if (k) {
			*several = 1;
			return NULL;
		}
		k = &set->keys[i];
	}
	return k;
}

int gl_jwt_verify(const gl_jwt *t, const gl_jwks *set, char *why,
		  size_t whylen)
{
	const alg_info *a = find_alg(t->alg);
	const curve_info *c = a && a->crv ? find_curve(a->crv) : NULL;
	const gl_jwk *k;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *sig = t->sig;
	size_t sig_len = t->sig_len;
	char buf[48];
	int several, rc = GL_JWT_BAD;

	if (!a) {
		why_set(why, whylen, "alg refused");
		return GL_JWT_BAD;
	}
	if (t->kid) {
		k = gl_jwks_find(set, t->kid);
		if (!k) {
			why_set(why, whylen, "no key with kid %s",
				printable(t->kid, buf, sizeof buf));
			return GL_JWT_NO_KEY;
		}
	} else {
		k = only_key(set, a, &several);
		if (!k) {
			why_set(why, whylen,
				several ? "token names no key and "
					  "the key set has several"
					: "no key for %s",
				t->alg);
			return several ? GL_JWT_BAD : GL_JWT_NO_KEY;
		}
	}
	if (k->kty != a->kty) {
		why_set(why, whylen, "key %s is not a %s key",
			printable(k->kid, buf, sizeof buf), t->alg);
		return GL_JWT_BAD;
	}
	if (k->alg && strcmp(k->alg, t->alg) != 0) {
		why_set(why, whylen, "key is for %s, token says %s",
			printable(k->alg, buf, sizeof buf), t->alg);
		return GL_JWT_BAD;
	}
	if (c) {
		if (k->bits != c->bits) {
			why_set(why, whylen,
				"%s needs %s, the key is on a "
				"%d-bit curve",
				t->alg, c->crv, k->bits);
			return GL_JWT_BAD;
		}
		/* JWS carries r||s, OpenSSL verifies DER */
		if (sig_len != 2 * c->coord) {
			why_set(why, whylen, "%s signature of %zu bytes",
				t->alg, sig_len);
			return GL_JWT_BAD;
		}
		der = gl_ecdsa_raw_to_der(sig, sig_len, &sig_len);
		if (!der) {
			why_set(why, whylen, "malformed %s signature", t->alg);
			return GL_JWT_BAD;
		}
		sig = der;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestVerifyInit_ex(md, &pctx, a->md, NULL, NULL,
					   k->pkey, NULL) != 1) {
		why_set(why, whylen, "cannot set up %s verification", t->alg);
		goto out;
	}
	if (a->pss &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) !=
		     1)) {
		why_set(why, whylen, "cannot set up PSS");
		goto out;
	}
	if (EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)t->input,
			     t->input_len) != 1) {
		why_set(why, whylen, "bad signature");
		goto out;
	}
	rc = GL_JWT_OK;
out:
	EVP_MD_CTX_free(md);
	free(der);
	ERR_clear_error();
	return rc;
}

static int time_claim(const gl_jwt *t, const char *name, int required,
		      double *v, char *why, size_t whylen)
{
	json_t *j = json_object_get(t->claims, name);

	if (!j)
		return required ? why_set(why, whylen, "no %s claim", name)
				: 1;
	if (!json_is_number(j))
		return why_set(why, whylen, "%s is not a number", name);
	*v = json_number_value(j);
	return 0;
}

int gl_jwt_check_times(const gl_jwt *t, const gl_jwt_rules *r, char *why,
		       size_t whylen)
{
	double now = (double)r->now, lw = (double)r->leeway, v = 0;
	int rc;

	if ((rc = time_claim(t, "exp", 1, &v, why, whylen)) < 0)
		return -1;
	if (now > v + lw)
		return why_set(why, whylen, "expired %.0f s ago", now - v);
	if ((rc = time_claim(t, "nbf", 0, &v, why, whylen)) < 0)
		return -1;
	if (rc == 0 && now + lw < v)
		return why_set(why, whylen, "not valid for %.0f s yet",
			       v - now);
	if ((rc = time_claim(t, "iat", 0, &v, why, whylen)) < 0)
		return -1;
	if (rc == 0 && now + lw < v)
		return why_set(why, whylen, "issued %.0f s in the future",
			       v - now);
	return 0;
}

/* ---- key sets ------------------------------------------------------------- */

static BIGNUM *b64_bn(json_t *j)
{
	const char *s = json_string_value(j);
	unsigned char *raw;
	size_t n;
	BIGNUM *bn;

	if (!s || !*s)
		return NULL;
	raw = gl_b64url_decode(s, strlen(s), &n);
	if (!raw)
		return NULL;
	bn = n && n <= 2048 ? BN_bin2bn(raw, (int)n, NULL) : NULL;
	free(raw);
	return bn;
}

/* Build a public key of `type` from params, then let OpenSSL check it. */
static EVP_PKEY *key_from(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY_CTX *chk = NULL;
	EVP_PKEY *pkey = NULL;

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!chk || EVP_PKEY_public_check(chk) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
	BIGNUM *n = b64_bn(json_object_get(jwk, "n"));
	BIGNUM *e = b64_bn(json_object_get(jwk, "e"));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pkey = NULL;

	if (n && e && bld &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pkey = key_from("RSA", bld);
	if (pkey && EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk, const curve_info *c)
{
	const char *xs = json_string_value(json_object_get(jwk, "x"));
	const char *ys = json_string_value(json_object_get(jwk, "y"));
	unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 66];
	size_t xn = 0, yn = 0;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (!xs || !ys)
		return NULL;
	x = gl_b64url_decode(xs, strlen(xs), &xn);
	y = gl_b64url_decode(ys, strlen(ys), &yn);
	/* RFC 7518 6.2.1.2: exactly the coordinate size, leading zeros kept */
	if (!x || !y || xn != c->coord || yn != c->coord)
		goto out;
	pub[0] = 0x04; /* uncompressed point */
	memcpy(pub + 1, x, xn);
	memcpy(pub + 1 + xn, y, yn);
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    c->group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
					     1 + 2 * c->coord))
		pkey = key_from("EC", bld);
out:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

static int parse_jwk(json_t *jwk, gl_jwk *k)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	json_t *use = json_object_get(jwk, "use");
	json_t *alg = json_object_get(jwk, "alg");
	json_t *kid = json_object_get(jwk, "kid");
	const alg_info *a = NULL;
	const curve_info *c = NULL;

	memset(k, 0, sizeof *k);
	if (!json_is_object(jwk) || !kty)
		return -1;
	if (use && (!json_is_string(use) ||
		    strcmp(json_string_value(use), "sig") != 0))
		return -1; /* encryption keys (Keycloak publishes one) */
	if (alg &&
	    !(json_is_string(alg) && (a = find_alg(json_string_value(alg)))))
		return -1;
	if (kid && !json_is_string(kid))
		return -1;
	if (!strcmp(kty, "RSA")) {
		if (a && a->kty != GL_KTY_RSA)
			return -1;
		k->kty = GL_KTY_RSA;
		k->pkey = rsa_key(jwk);
	} else if (!strcmp(kty, "EC")) {
		c = find_curve(json_string_value(json_object_get(jwk, "crv")));
		if (!c ||
		    (a && (a->kty != GL_KTY_EC || strcmp(a->crv, c->crv))))
			return -1;
		k->kty = GL_KTY_EC;
		k->pkey = ec_key(jwk, c);
	} else {
		return -1; /* oct (HMAC secrets) and anything else */
	}
	ERR_clear_error();
	if (!k->pkey)
		return -1;
	k->bits = c ? c->bits : EVP_PKEY_get_bits(k->pkey);
	k->kid = kid ? strdup(json_string_value(kid)) : NULL;
	k->alg = a ? strdup(a->name) : NULL;
	if ((kid && !k->kid) || (a && !k->alg)) {
		EVP_PKEY_free(k->pkey);
		free(k->kid);
		free(k->alg);
		return -1;
	}
	return 0;
}

gl_jwks *gl_jwks_parse(const char *json, size_t len, char *why, size_t whylen)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	json_t *keys = json_is_object(root) ? json_object_get(root, "keys")
					    : NULL;
	gl_jwks *set = NULL;
	size_t n, i;

	if (!root) {
		why_set(why, whylen, "not JSON: %s", je.text);
		goto out;
	}
	if (!json_is_array(keys)) {
		why_set(why, whylen, "no keys array");
		goto out;
	}
	n = json_array_size(keys);
	set = calloc(1, sizeof *set);
	if (set)
		set->keys = calloc(n && n < GL_JWKS_MAX_KEYS
					   ? n
					   : GL_JWKS_MAX_KEYS,
				   sizeof *set->keys);
	if (!set || !set->keys) {
		free(set);
		set = NULL;
		why_set(why, whylen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (set->n >= GL_JWKS_MAX_KEYS ||
		    parse_jwk(json_array_get(keys, i), &set->keys[set->n]) <
			    0) {
			set->skipped++;
			continue;
		}
		set->n++;
	}
out:
	json_decref(root);
	return set;
}

void gl_jwks_free(gl_jwks *set)
{
	if (!set)
		return;
	for (int i = 0; i < set->n; i++) {
		EVP_PKEY_free(set->keys[i].pkey);
		free(set->keys[i].kid);
		free(set->keys[i].alg);
	}
	free(set->keys);
	free(set);
}
