/* test_jwt.c - JWT / JWK / JWKS checks (jwt.c) and the token cache
 * (idcache.c). Keys are made here with OpenSSL, tokens signed here, and
 * every refusal path is walked: bad base64url, oversized or malformed
 * parts, refused algorithms, wrong keys and curves, truncated signatures,
 * keys that must never enter a key set. */
#include "unit.h"

#include "idcache.h"
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

/* ---- keys, key sets and tokens made for the tests ------------------------ */

static EVP_PKEY *rsa_a, *rsa_b, *rsa_small, *ec256, *ec256_b, *ec384;

static void make_keys(void)
{
	if (rsa_a)
		return;
	rsa_a = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec256_b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
}

static char *bn_b64(EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[600];
	int n;

	if (!EVP_PKEY_get_bn_param(k, param, &bn))
		return NULL;
	n = pad ? pad : BN_num_bytes(bn);
	BN_bn2binpad(bn, buf, n);
	BN_free(bn);
	return gl_b64url_encode(buf, (size_t)n);
}

/* One JWK member as JSON text ("extra" is spliced in verbatim). */
static char *jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
	char *out = malloc(4096), *a, *b;

	if (EVP_PKEY_is_a(k, "RSA")) {
		a = bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0);
		b = bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0);
		snprintf(out, 4096,
			 "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\","
			 "\"e\":\"%s\"%s}",
			 kid, a, b, extra ? extra : "");
	} else {
		int bits = EVP_PKEY_get_bits(k), sz = (bits + 7) / 8;
		a = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, sz);
		b = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, sz);
		snprintf(out, 4096,
			 "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\","
			 "\"x\":\"%s\",\"y\":\"%s\"%s}",
			 kid, bits == 256 ? "P-256" : "P-384", a, b,
			 extra ? extra : "");
	}
	free(a);
	free(b);
	return out;
}

static gl_jwks *jwks_of(const char *members)
{
	char doc[32768];
	char why[200];

	snprintf(doc, sizeof doc, "{\"keys\":[%s]}", members);
	return gl_jwks_parse(doc, strlen(doc), why, sizeof why);
}

/* The standard set: rsa_a as "r1", ec256 as "e1", ec384 as "e3". */
static gl_jwks *std_set(void)
{
	char *a = jwk(rsa_a, "r1", NULL), *b = jwk(ec256, "e1", NULL);
	char *c = jwk(ec384, "e3", NULL), all[12000];
	gl_jwks *s;

	snprintf(all, sizeof all, "%s,%s,%s", a, b, c);
	s = jwks_of(all);
	free(a);
	free(b);
	free(c);
	return s;
}

static unsigned char *sign(EVP_PKEY *k, const char *alg, const char *in,
			   size_t *len)
{
	const char *md = !strcmp(alg + 2, "384") ? "SHA384" : "SHA256";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx;
	unsigned char *sig;
	size_t n = 0;

	EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, k, NULL);
	if (alg[0] == 'P') {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	}
	EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)in, strlen(in));
	sig = malloc(n);
	EVP_DigestSign(ctx, sig, &n, (const unsigned char *)in, strlen(in));
	EVP_MD_CTX_free(ctx);
	if (alg[0] == 'E') {
		size_t coord = !strcmp(alg, "ES384") ? 48 : 32, rn;
		unsigned char *raw = gl_ecdsa_der_to_raw(sig, n, coord, &rn);
		free(sig);
		sig = raw;
		n = rn;
	}
	*len = n;
	return sig;
}

/* header.claims.signature, signed by k with alg (the header's own alg
 * may say otherwise: hdr is the JSON text). */
static char *token_with(EVP_PKEY *k, const char *alg, const char *hdr,
			const char *claims)
{
	char *h = gl_b64url_encode((const unsigned char *)hdr, strlen(hdr));
	char *c = gl_b64url_encode((const unsigned char *)claims,
				   strlen(claims));
	char *in = malloc(strlen(h) + strlen(c) + 2), *s, *tok;
	unsigned char *sig;
	size_t n;

	sprintf(in, "%s.%s", h, c);
	sig = sign(k, alg, in, &n);
	s = gl_b64url_encode(sig, n);
	tok = malloc(strlen(in) + strlen(s) + 2);
	sprintf(tok, "%s.%s", in, s);
	free(h);
	free(c);
	free(in);
	free(s);
	free(sig);
	return tok;
}

static const char claims_ok[] =
	"{\"iss\":\"http://kc/realms/demo\",\"sub\":\"u1\",\"exp\":2000000000,"
	"\"iat\":1000000000}";

static char *token(EVP_PKEY *k, const char *alg, const char *kid)
{
	char hdr[200];

	if (kid)
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}",
			 alg, kid);
	else
		snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\"}", alg);
	return token_with(k, alg, hdr, claims_ok);
}

/* Parse + verify: GL_JWT_OK / BAD / NO_KEY, or 9 when parsing failed. */
static int check(const char *tok, const gl_jwks *set, char *why, size_t n)
{
	gl_jwt t;
	int rc;

	why[0] = '\0';
	if (gl_jwt_parse(tok, strlen(tok), &t, why, n) < 0)
		return 9;
	rc = gl_jwt_verify(&t, set, why, n);
	gl_jwt_free(&t);
	return rc;
}

/* ---- base64url --------------------------------------------------------- */

static int dec_is(const char *in, const char *want)
{
	size_t n;
	unsigned char *out = gl_b64url_decode(in, strlen(in), &n);
	int ok;

	if (!want)
		ok = out == NULL;
	else
		ok = out && n == strlen(want) && !memcmp(out, want, n);
	free(out);
	return ok;
}

UNIT_TEST(b64url_vectors)
{
	CHECK(dec_is("", ""));
	CHECK(dec_is("Zg", "f"));
	CHECK(dec_is("Zm8", "fo"));
	CHECK(dec_is("Zm9v", "foo"));
	CHECK(dec_is("Zm9vYg", "foob"));
	CHECK(dec_is("-_-_", "\xfb\xff\xbf"));
}

UNIT_TEST(b64url_refuses_bad_input)
{
	CHECK(dec_is("Z", NULL)); /* 1 mod 4: no such encoding */
	CHECK(dec_is("Zm9vY", NULL));
	CHECK(dec_is("Zm9v=", NULL)); /* padding is not base64url */
	CHECK(dec_is("Zg==", NULL));
	CHECK(dec_is("Zm+v", NULL)); /* the standard alphabet */
	CHECK(dec_is("Zm/v", NULL));
	CHECK(dec_is("Zm 9v", NULL)); /* OpenSSL would skip blanks */
	CHECK(dec_is("Zm9v\n", NULL));
	CHECK(dec_is("Zm\x80v", NULL));
	{
		size_t n;
		/* an embedded NUL ends nothing: it is a bad character */
		CHECK(gl_b64url_decode("Zm\0v", 4, &n) == NULL);
	}
}

UNIT_TEST(b64url_round_trips)
{
	unsigned char buf[200];

	for (size_t len = 0; len < sizeof buf; len++) {
		char *e;
		unsigned char *d;
		size_t n;

		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(i * 37 + len);
		e = gl_b64url_encode(buf, len);
		CHECK(e && !strpbrk(e, "+/="));
		d = gl_b64url_decode(e, strlen(e), &n);
		CHECK(d && n == len && !memcmp(d, buf, len));
		free(e);
		free(d);
	}
}

/* ---- ECDSA signature forms ----------------------------------------------- */

UNIT_TEST(ecdsa_der_raw_conversion)
{
	const char *msg = "signing input";
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[80], *raw, *back, junk[81];
	size_t n = sizeof der, rn, bn;

	make_keys();
	EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, ec256, NULL);
	CHECK(EVP_DigestSign(ctx, der, &n, (const unsigned char *)msg,
			     strlen(msg)) == 1);
	EVP_MD_CTX_free(ctx);
	raw = gl_ecdsa_der_to_raw(der, n, 32, &rn);
	CHECK(raw && rn == 64);
	back = gl_ecdsa_raw_to_der(raw, rn, &bn);
	/* DER is canonical: the same bytes come back */
	CHECK(back && bn == n && !memcmp(back, der, n));
	free(back);
	/* r and s do not fit 16-byte coordinates (P-256 values) */
	CHECK(gl_ecdsa_der_to_raw(der, n, 16, &bn) == NULL);
	/* trailing bytes after the DER value, or a truncated one */
	memcpy(junk, der, n);
	junk[n] = 0;
	CHECK(gl_ecdsa_der_to_raw(junk, n + 1, 32, &rn) == NULL);
	CHECK(gl_ecdsa_der_to_raw(der, n - 1, 32, &rn) == NULL);
	CHECK(gl_ecdsa_der_to_raw(der, 0, 32, &rn) == NULL);
	/* raw forms that are not r||s */
	CHECK(gl_ecdsa_raw_to_der(raw, 63, &bn) == NULL);
	CHECK(gl_ecdsa_raw_to_der(raw, 0, &bn) == NULL);
	CHECK(gl_ecdsa_raw_to_der(raw, 200, &bn) == NULL);
	free(raw);
}

/* ---- tokens ------------------------------------------------------------- */

UNIT_TEST(valid_tokens_verify)
{
	static const char *const algs[][3] = {
		{ "RS256", "r1", "rsa" }, { "PS256", "r1", "rsa" },
		{ "ES256", "e1", "ec" },  { "ES384", "e3", "ec384" },
		{ "RS384", "r1", "rsa" },
	};
	gl_jwks *set;
	char why[200];

	make_keys();
	set = std_set();
	CHECK(set && set->n == 3 && set->skipped == 0);
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
		EVP_PKEY *k = !strcmp(algs[i][2], "rsa")  ? rsa_a
			      : !strcmp(algs[i][2], "ec") ? ec256
							  : ec384;
		char *t = token(k, algs[i][0], algs[i][1]);
		int rc = check(t, set, why, sizeof why);
		free(t);
		if (rc != GL_JWT_OK) {
			gl_jwks_free(set);
			CHECK_STR(why, "(verified)");
		}
	}
	gl_jwks_free(set);
}

UNIT_TEST(wrong_key_and_unknown_kid)
{
	gl_jwks *set;
	char why[200], *t;

	make_keys();
	set = std_set();
	/* a stranger's key under a known kid */
	t = token(rsa_b, "RS256", "r1");
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	free(t);
	t = token(ec256_b, "ES256", "e1");
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	CHECK_STR(why, "bad signature");
	free(t);
	/* a kid the set does not have: the caller may refetch */
	t = token(rsa_a, "RS256", "r9");
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_NO_KEY);
	free(t);
	/* RSA signature under the EC key's kid */
	t = token(rsa_a, "RS256", "e1");
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	free(t);
	/* PKCS#1 signature presented as PSS: the header is signed too, so
	 * rewrite the header and keep the signature */
	{
		char *good = token(rsa_a, "RS256", "r1"),
		     *sig = strrchr(good, '.');
		const char *ph = "{\"alg\":\"PS256\",\"kid\":\"r1\"}";
		char *h = gl_b64url_encode((const unsigned char *)ph,
					   strlen(ph));
		char *rest = strchr(good, '.'), forged[4096];

		snprintf(forged, sizeof forged, "%s%.*s%s", h,
			 (int)(sig - rest), rest, sig);
		CHECK_INT(check(forged, set, why, sizeof why), GL_JWT_BAD);
		free(h);
		free(good);
	}
	gl_jwks_free(set);
}

UNIT_TEST(kid_less_tokens)
{
	char *a, *b, both[9000], why[200], *t;
	gl_jwks *one, *two;

	make_keys();
	a = jwk(rsa_a, "r1", NULL);
	b = jwk(rsa_b, "r2", NULL);
	one = jwks_of(a);
	snprintf(both, sizeof both, "%s,%s", a, b);
	two = jwks_of(both);
	t = token(rsa_a, "RS256", NULL);
	/* the only RSA key of the set: that one */
	CHECK_INT(check(t, one, why, sizeof why), GL_JWT_OK);
	/* two candidates: no guessing */
	CHECK_INT(check(t, two, why, sizeof why), GL_JWT_BAD);
	free(t);
	gl_jwks_free(one);
	gl_jwks_free(two);
	free(a);
	free(b);
}

UNIT_TEST(refused_algorithms)
{
	/* clang-format off */
	static const char *const hdrs[] = {
		"{\"alg\":\"none\"}", "{\"alg\":\"None\"}",
		"{\"alg\":\"HS256\",\"kid\":\"r1\"}", "{\"alg\":\"HS512\"}",
		"{\"alg\":\"RS256 \"}", "{\"alg\":\"rs256\"}", "{\"alg\":1}",
		"{\"kid\":\"r1\"}", "{\"alg\":\"EdDSA\"}",
		"{\"alg\":\"RS256\",\"crit\":[\"exp\"]}",
		"{\"alg\":\"RS256\",\"kid\":7}",
	};
	/* clang-format on */
	char *c = gl_b64url_encode((const unsigned char *)claims_ok,
				   strlen(claims_ok));
	char tok[1024], why[200];
	gl_jwt t;

	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
		char *h = gl_b64url_encode((const unsigned char *)hdrs[i],
					   strlen(hdrs[i]));
		snprintf(tok, sizeof tok, "%s.%s.c2lnbmF0dXJl", h, c);
		free(h);
		if (gl_jwt_parse(tok, strlen(tok), &t, why, sizeof why) == 0) {
			gl_jwt_free(&t);
			free(c);
			CHECK_STR(hdrs[i], "(refused)");
		}
	}
	free(c);
}

UNIT_TEST(malformed_and_huge_tokens)
{
	char *good, *big, why[200];
	const char *dot;
	gl_jwt t;
	size_t n;

	make_keys();
	good = token(rsa_a, "RS256", "r1");
	dot = strchr(good, '.');
	/* shape */
	CHECK(gl_jwt_parse("", 0, &t, why, sizeof why) < 0);
	CHECK(gl_jwt_parse("a.b", 3, &t, why, sizeof why) < 0);
	CHECK(gl_jwt_parse("a.b.c.d", 7, &t, why, sizeof why) < 0);
	CHECK(gl_jwt_parse("..", 2, &t, why, sizeof why) < 0);
	/* no signature */
	n = (size_t)(strrchr(good, '.') - good) + 1;
	CHECK(gl_jwt_parse(good, n, &t, why, sizeof why) < 0);
	CHECK_STR(why, "no signature");
	/* a header over the limit, even if well-formed */
	big = malloc(GL_JWT_MAX_LEN + 100);
	{
		char hdr[3000];
		char *h;
		memset(hdr, 0, sizeof hdr);
		strcpy(hdr, "{\"alg\":\"RS256\",\"x\":\"");
		memset(hdr + strlen(hdr), 'y', 1800);
		strcat(hdr, "\"}");
		h = gl_b64url_encode((const unsigned char *)hdr, strlen(hdr));
		snprintf(big, GL_JWT_MAX_LEN + 100, "%s%s", h, dot);
		free(h);
	}
	CHECK(gl_jwt_parse(big, strlen(big), &t, why, sizeof why) < 0);
	CHECK_PREFIX(why, "JOSE header of");
	/* a token over the limit */
	memset(big, 'A', GL_JWT_MAX_LEN + 1);
	big[10] = '.';
	big[20] = '.';
	CHECK(gl_jwt_parse(big, GL_JWT_MAX_LEN + 1, &t, why, sizeof why) < 0);
	free(big);
	/* header and payload must be JSON objects, without duplicates */
	{
		/* clang-format off */
		static const char *const bad_claims[] = {
			"[1,2]", "\"str\"", "{\"sub\":\"a\",\"sub\":\"b\"}",
			"{\"sub\":", "",
		};
		/* clang-format on */
		char *h = gl_b64url_encode((const unsigned char
						    *)"{\"alg\":\"RS256\"}",
					   15);
		for (size_t i = 0; i < 5; i++) {
			char *c = gl_b64url_encode((const unsigned char *)
							   bad_claims[i],
						   strlen(bad_claims[i]));
			char tok[512];
			int rc;
			snprintf(tok, sizeof tok, "%s.%s.c2ln", h, c);
			free(c);
			rc = gl_jwt_parse(tok, strlen(tok), &t, why,
					  sizeof why);
			if (rc == 0)
				gl_jwt_free(&t);
			CHECK(rc < 0);
		}
		free(h);
	}
	/* base64url damage in each part */
	{
		char tok[4096];
		snprintf(tok, sizeof tok, "%s", good);
		tok[2] = '+';
		CHECK(gl_jwt_parse(tok, strlen(tok), &t, why, sizeof why) < 0);
		snprintf(tok, sizeof tok, "%s", good);
		tok[strlen(tok) - 3] = '=';
		CHECK(gl_jwt_parse(tok, strlen(tok), &t, why, sizeof why) < 0);
	}
	free(good);
}

UNIT_TEST(truncated_signatures)
{
	gl_jwks *set;
	char *t, why[200];
	size_t n;

	make_keys();
	set = std_set();
	/* RSA: one base64url group (3 bytes) short */
	t = token(rsa_a, "RS256", "r1");
	n = strlen(t);
	t[n - 4] = '\0';
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	free(t);
	/* ES256: r||s must be exactly 64 bytes */
	t = token(ec256, "ES256", "e1");
	n = strlen(t);
	t[n - 4] = '\0';
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	CHECK_PREFIX(why, "ES256 signature of");
	free(t);
	/* ES256 with a DER signature (what OpenSSL emits, not JWS) */
	{
		const char *ph = "{\"alg\":\"ES256\",\"kid\":\"e1\"}";
		char *h = gl_b64url_encode((const unsigned char *)ph,
					   strlen(ph));
		char *c = gl_b64url_encode((const unsigned char *)claims_ok,
					   strlen(claims_ok));
		char in[2048], tok[4096], *s;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		unsigned char der[80];
		size_t dn = sizeof der;

		snprintf(in, sizeof in, "%s.%s", h, c);
		EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, ec256,
				      NULL);
		EVP_DigestSign(ctx, der, &dn, (unsigned char *)in, strlen(in));
		EVP_MD_CTX_free(ctx);
		s = gl_b64url_encode(der, dn);
		snprintf(tok, sizeof tok, "%s.%s", in, s);
		CHECK_INT(check(tok, set, why, sizeof why), GL_JWT_BAD);
		free(h);
		free(c);
		free(s);
	}
	/* all zeros of the right length */
	{
		unsigned char zero[64] = { 0 };
		char *good = token(ec256, "ES256", "e1"), tok[4096], *s;
		*strrchr(good, '.') = '\0';
		s = gl_b64url_encode(zero, sizeof zero);
		snprintf(tok, sizeof tok, "%s.%s", good, s);
		CHECK_INT(check(tok, set, why, sizeof why), GL_JWT_BAD);
		free(good);
		free(s);
	}
	gl_jwks_free(set);
}

UNIT_TEST(wrong_curve)
{
	gl_jwks *set;
	char *k384, why[200], *t;

	make_keys();
	k384 = jwk(ec384, "e1", NULL);
	/* kid e1 is a P-384 key; the token is ES256 */
	set = jwks_of(k384);
	CHECK(set && set->n == 1);
	t = token(ec256, "ES256", "e1");
	CHECK_INT(check(t, set, why, sizeof why), GL_JWT_BAD);
	CHECK(strstr(why, "curve") != NULL);
	free(t);
	gl_jwks_free(set);
	free(k384);
	/* a key announcing one curve with a point of another is refused */
	{
		char *k = jwk(ec384, "x", NULL), *p = strstr(k, "P-384");
		memcpy(p, "P-256", 5);
		set = jwks_of(k);
		CHECK(set && set->n == 0 && set->skipped == 1);
		gl_jwks_free(set);
		free(k);
	}
}

UNIT_TEST(key_sets_skip_unusable_keys)
{
	char *good, *small, *enc, *algmis, *algbad, *ec, *x, *offcurve;
	char members[20000], why[200];
	gl_jwks *set;

	make_keys();
	good = jwk(rsa_a, "ok", NULL);
	small = jwk(rsa_small, "small", NULL);
	enc = jwk(rsa_b, "enc", ",\"use\":\"enc\"");
	algmis = jwk(ec256, "mis", ",\"alg\":\"RS256\"");
	algbad = jwk(rsa_b, "oaep", ",\"alg\":\"RSA-OAEP\"");
	ec = jwk(ec256, "pt", NULL);
	/* a point off the curve: change one character of y */
	offcurve = strdup(ec);
	x = strstr(offcurve, "\"y\":\"") + 5;
	*x = *x == 'A' ? 'B' : 'A';
	snprintf(members, sizeof members,
		 "%s,%s,%s,%s,%s,%s,"
		 "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
		 "{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"},"
		 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
		 "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"},"
		 "{\"kty\":\"RSA\"}, 42, \"str\"",
		 good, small, enc, algmis, algbad, offcurve);
	set = jwks_of(members);
	CHECK(set != NULL);
	/* only the first one survives */
	CHECK_INT(set->n, 1);
	CHECK_INT(set->skipped, 12);
	CHECK(gl_jwks_find(set, "ok") != NULL);
	CHECK(gl_jwks_find(set, "small") == NULL);
	gl_jwks_free(set);
	/* documents that are no key sets */
	CHECK(gl_jwks_parse("", 0, why, sizeof why) == NULL);
	CHECK(gl_jwks_parse("[]", 2, why, sizeof why) == NULL);
	CHECK(gl_jwks_parse("{\"keys\":{}}", 11, why, sizeof why) == NULL);
	CHECK(gl_jwks_parse("{\"keys\":[],\"keys\":[]}", 21, why,
			    sizeof why) == NULL);
	set = gl_jwks_parse("{\"keys\":[]}", 11, why, sizeof why);
	CHECK(set && set->n == 0);
	gl_jwks_free(set);
	free(good);
	free(small);
	free(enc);
	free(algmis);
	free(algbad);
	free(ec);
	free(offcurve);
}

UNIT_TEST(key_set_size_is_bounded)
{
	char *one, *doc, why[200];
	size_t cap;
	gl_jwks *set;

	make_keys();
	one = jwk(ec256, "k", NULL);
	cap = (strlen(one) + 1) * 100 + 32;
	doc = malloc(cap);
	strcpy(doc, "{\"keys\":[");
	for (int i = 0; i < 100; i++) {
		strcat(doc, one);
		strcat(doc, i < 99 ? "," : "]}");
	}
	set = gl_jwks_parse(doc, strlen(doc), why, sizeof why);
	CHECK(set && set->n == GL_JWKS_MAX_KEYS && set->skipped == 36);
	gl_jwks_free(set);
	free(doc);
	free(one);
}

static int times_ok(const char *claims, time_t now, long leeway)
{
	char *tok = token_with(rsa_a, "RS256", "{\"alg\":\"RS256\"}", claims);
	gl_jwt_rules r = { .now = now, .leeway = leeway };
	char why[200];
	gl_jwt t;
	int rc;

	if (gl_jwt_parse(tok, strlen(tok), &t, why, sizeof why) < 0) {
		free(tok);
		return -9;
	}
	rc = gl_jwt_check_times(&t, &r, why, sizeof why);
	gl_jwt_free(&t);
	free(tok);
	return rc;
}

UNIT_TEST(time_claims)
{
	make_keys();
	CHECK_INT(times_ok("{\"exp\":1000}", 900, 0), 0);
	CHECK_INT(times_ok("{\"exp\":1000}", 1001, 0), -1);
	CHECK_INT(times_ok("{\"exp\":1000}", 1030, 30), 0);
	CHECK_INT(times_ok("{\"exp\":1000}", 1031, 30), -1);
	CHECK_INT(times_ok("{\"exp\":1000.5}", 1000, 0), 0);
	CHECK_INT(times_ok("{}", 900, 0), -1);
	CHECK_INT(times_ok("{\"exp\":\"1000\"}", 900, 0), -1);
	CHECK_INT(times_ok("{\"exp\":null}", 900, 0), -1);
	CHECK_INT(times_ok("{\"exp\":2000,\"nbf\":1000}", 900, 0), -1);
	CHECK_INT(times_ok("{\"exp\":2000,\"nbf\":1000}", 990, 10), 0);
	CHECK_INT(times_ok("{\"exp\":2000,\"nbf\":\"x\"}", 1500, 0), -1);
	CHECK_INT(times_ok("{\"exp\":2000,\"iat\":1600}", 1500, 0), -1);
	CHECK_INT(times_ok("{\"exp\":2000,\"iat\":1600}", 1500, 100), 0);
	CHECK_INT(times_ok("{\"exp\":1e300}", 1500, 0), 0);
}

/* ---- the token cache -------------------------------------------------------- */

static gl_ident *ident(const char *user)
{
	gl_ident *id = gl_ident_new();

	id->user_id = strdup(user);
	id->project_id = strdup("p");
	gl_ident_add_role(id, "member");
	return id;
}

static void key_of(const char *tok, unsigned char k[GL_TOKEN_KEY_LEN])
{
	gl_token_key(tok, strlen(tok), k);
}

UNIT_TEST(cache_hits_misses_and_ends)
{
	gl_idcache *c = gl_idcache_new(10);
	unsigned char a[32], b[32];
	const gl_ident *id = NULL;
	const char *why = NULL;
	char tag[16];

	key_of("token-a", a);
	key_of("token-b", b);
	gl_token_tag(a, tag);
	CHECK(!strncmp(tag, "sha256:", 7) && strlen(tag) == 15);
	CHECK_INT(gl_idcache_get(c, a, 100, &id, &why), GL_IDC_MISS);
	gl_idcache_put(c, a, ident("ua"), NULL, 200);
	gl_idcache_put(c, b, NULL, "revoked", 150);
	CHECK_INT(gl_idcache_get(c, a, 199, &id, &why), GL_IDC_VALID);
	CHECK_STR(id->user_id, "ua");
	CHECK_INT(gl_idcache_get(c, b, 149, &id, &why), GL_IDC_REFUSED);
	CHECK_STR(why, "revoked");
	/* an entry is over at its end, and gone */
	CHECK_INT(gl_idcache_get(c, b, 150, &id, &why), GL_IDC_MISS);
	CHECK_INT(gl_idcache_count(c), 1);
	CHECK_INT(gl_idcache_get(c, a, 200, &id, &why), GL_IDC_MISS);
	CHECK_INT(gl_idcache_count(c), 0);
	/* replacing an entry */
	gl_idcache_put(c, a, ident("first"), NULL, 300);
	gl_idcache_put(c, a, ident("second"), NULL, 300);
	CHECK_INT(gl_idcache_count(c), 1);
	CHECK_INT(gl_idcache_get(c, a, 1, &id, &why), GL_IDC_VALID);
	CHECK_STR(id->user_id, "second");
	gl_idcache_free(c);
}

UNIT_TEST(cache_evicts_least_recently_used)
{
	gl_idcache *c = gl_idcache_new(3);
	unsigned char k[5][32];
	const gl_ident *id;
	const char *why;
	char name[16];

	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "t%d", i);
		key_of(name, k[i]);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "u%d", i);
		gl_idcache_put(c, k[i], ident(name), NULL, 1000);
	}
	/* t0 used again: t1 is now the oldest */
	CHECK_INT(gl_idcache_get(c, k[0], 1, &id, &why), GL_IDC_VALID);
	gl_idcache_put(c, k[3], ident("u3"), NULL, 1000);
	CHECK_INT(gl_idcache_count(c), 3);
	CHECK_INT(gl_idcache_get(c, k[1], 1, &id, &why), GL_IDC_MISS);
	CHECK_INT(gl_idcache_get(c, k[0], 1, &id, &why), GL_IDC_VALID);
	CHECK_INT(gl_idcache_get(c, k[2], 1, &id, &why), GL_IDC_VALID);
	CHECK_INT(gl_idcache_get(c, k[3], 1, &id, &why), GL_IDC_VALID);
	gl_idcache_put(c, k[4], NULL, "bad", 1000);
	CHECK_INT(gl_idcache_count(c), 3);
	CHECK_INT(gl_idcache_get(c, k[0], 1, &id, &why), GL_IDC_MISS);
	gl_idcache_free(c);
	/* size 0 keeps nothing */
	c = gl_idcache_new(0);
	gl_idcache_put(c, k[0], ident("x"), NULL, 1000);
	CHECK_INT(gl_idcache_get(c, k[0], 1, &id, &why), GL_IDC_MISS);
	gl_idcache_free(c);
}

UNIT_TEST(cache_many_entries)
{
	gl_idcache *c = gl_idcache_new(1000);
	unsigned char k[32];
	const gl_ident *id;
	const char *why;
	char name[32];
	int hits = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "tok-%d", i);
		key_of(name, k);
		gl_idcache_put(c, k, ident(name), NULL, 1000);
	}
	CHECK_INT(gl_idcache_count(c), 1000);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof name, "tok-%d", i);
		key_of(name, k);
		if (gl_idcache_get(c, k, 1, &id, &why) == GL_IDC_VALID) {
			CHECK_STR(id->user_id, name);
			hits++;
		}
	}
	/* exactly the newest 1000 */
	CHECK_INT(hits, 1000);
	gl_idcache_free(c);
}

static void cleanup_keys(void)
{
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec256_b);
	EVP_PKEY_free(ec384);
	rsa_a = rsa_b = rsa_small = ec256 = ec256_b = ec384 = NULL;
}

UNIT_TEST(zz_free_keys)
{
	cleanup_keys();
	CHECK(rsa_a == NULL);
}

/* clang-format off */
UNIT_SUITE(jwt,
	   UNIT_CASE(b64url_vectors),
	   UNIT_CASE(b64url_refuses_bad_input),
	   UNIT_CASE(b64url_round_trips),
	   UNIT_CASE(ecdsa_der_raw_conversion),
	   UNIT_CASE(valid_tokens_verify),
	   UNIT_CASE(wrong_key_and_unknown_kid),
	   UNIT_CASE(kid_less_tokens),
	   UNIT_CASE(refused_algorithms),
	   UNIT_CASE(malformed_and_huge_tokens),
	   UNIT_CASE(truncated_signatures),
	   UNIT_CASE(wrong_curve),
	   UNIT_CASE(key_sets_skip_unusable_keys),
	   UNIT_CASE(key_set_size_is_bounded),
	   UNIT_CASE(time_claims),
	   UNIT_CASE(cache_hits_misses_and_ends),
	   UNIT_CASE(cache_evicts_least_recently_used),
	   UNIT_CASE(cache_many_entries),
	   UNIT_CASE(zz_free_keys));
/* clang-format on */
