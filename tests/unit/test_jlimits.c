/* test_jlimits.c - unit tests for jlimits.c (the cheap limits on client
 * JSON: the raw scan, the tree check, a field's declared limits) and the
 * text checks they and the blob code rely on (util.c: UTF-8 repair and
 * counting, checksums, URLs).
 */
#include "unit.h"

#include <string.h>

#include "jlimits.h"
#include "util.h"

static const gl_jlimits LIM = { .max_depth = 4, .max_values = 10 };

static int scan(const char *text, gl_err *err)
{
	memset(err, 0, sizeof *err);
	return gl_jlimits_scan(text, strlen(text), &LIM, err);
}

/* The scan counts exactly what the parsed tree holds (valid JSON). */
static int64_t tree_values(const char *text)
{
	gl_jlimits l = { .max_depth = 100 };
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	gl_err err;

	/* the smallest max_values the tree check accepts */
	for (l.max_values = 1; l.max_values < 1000; l.max_values++)
		if (gl_jlimits_check(j, &l, "x", &err) == 0)
			break;
	json_decref(j);
	return l.max_values;
}

static int64_t scan_values(const char *text)
{
	gl_jlimits l = { .max_depth = 100 };
	gl_err err;

	for (l.max_values = 1; l.max_values < 1000; l.max_values++)
		if (gl_jlimits_scan(text, strlen(text), &l, &err) == 0)
			break;
	return l.max_values;
}

UNIT_TEST(scan_counts_like_the_tree)
{
	/* clang-format off */
	static const char *const docs[] = {
		"1", "[]", "{}", "[1, 2, 3]", "{\"a\": 1, \"b\": [true, null]}",
		"[[], {}, [[]], \"x,y\", {\"k,\": \"[\"}]",
		"{\"a\": {\"b\": {\"c\": []}}, \"d\": \"\\\"]\"}",
		" [ 1 , [ 2 , { \"x\" : -3.5e2 } ] ] ",
	};
	/* clang-format on */

	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
		CHECK_INT(scan_values(docs[i]), tree_values(docs[i]));
}

UNIT_TEST(scan_limits)
{
	gl_err err;

	CHECK(scan("[1,2,3,4,5,6,7,8,9]", &err) == 0); /* 10 values */
	CHECK(scan("[1,2,3,4,5,6,7,8,9,10]", &err) < 0);
	CHECK_INT(err.status, 400);
	CHECK(strstr(err.msg, "more than 10 values"));
	/* keys are not values; strings hide their commas and brackets */
	CHECK(scan("{\"a\":1,\"b\":2,\"c\":3,\"d\":[\"[,,,,,,,,,,,]\"]}",
		   &err) == 0);
	CHECK(scan("[[[[1]]]]", &err) == 0); /* depth 4 */
	CHECK(scan("[[[[[1]]]]]", &err) < 0);
	CHECK(strstr(err.msg, "deeper than 4 levels"));
	CHECK(scan("{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", &err) < 0);
	/* U+0000 in a string, not an escaped backslash before "u0000" */
	CHECK(scan("[\"a\\u0000b\"]", &err) < 0);
	CHECK(strstr(err.msg, "U+0000"));
	CHECK(scan("{\"k\\u0000\":1}", &err) < 0);
	CHECK(scan("[\"a\\\\u0000b\"]", &err) == 0);
	CHECK(scan("[\"\\u00001\"]", &err) < 0);
	/* unterminated input is for the parser to refuse; no overrun */
	CHECK(scan("[\"abc\\", &err) == 0);
	CHECK(scan("[\"\\u000", &err) == 0);
}

UNIT_TEST(tree_check)
{
	gl_err err = { 0 };
	json_t *j = json_pack("{s:[s#]}", "a", "x\0y", (size_t)3);

	CHECK(j);
	CHECK(gl_jlimits_check(j, &LIM, "The body", &err) < 0);
	CHECK_STR(err.msg, "The body has a string with U+0000, which is not "
			   "allowed");
	json_decref(j);
	j = json_object();
	json_object_setn_new(j, "k\0", 2, json_true());
	CHECK(gl_jlimits_check(j, &LIM, "The body", &err) < 0);
	CHECK(strstr(err.msg, "key with U+0000"));
	json_decref(j);
	j = json_loads("[[[[[1]]]]]", 0, NULL);
	CHECK(gl_jlimits_check(j, &LIM, "The body", &err) < 0);
	CHECK(strstr(err.msg, "deeper than 4"));
	json_decref(j);
	j = json_loads("[1,2,3,4,5,6,7,8,9,10]", 0, NULL);
	CHECK(gl_jlimits_check(j, &LIM, "The body", &err) < 0);
	CHECK(strstr(err.msg, "more than 10 values"));
	json_decref(j);
	j = json_loads("{\"a\":[[[\"x\"]]]}", 0, NULL);
	CHECK(gl_jlimits_check(j, &LIM, "The body", &err) == 0);
	json_decref(j);
}

/* A field as the type runtime would copy it out of Lua. */
static const gl_type TY = { .name = "t" };

UNIT_TEST(field_limits)
{
	gl_field str = { .name = "s",
			 .kind = GK_STRING,
			 .max_length = 3,
			 .max_items = -1,
			 .elem_max_length = -1 };
	gl_field list = { .name = "l",
			  .kind = GK_LIST,
			  .elem = GK_STRING,
			  .max_items = 2,
			  .elem_max_length = 2,
			  .max_length = -1 };
	gl_field dict = { .name = "d",
			  .kind = GK_DICT,
			  .elem = GK_STRING,
			  .max_keys = 2,
			  .max_key_length = 2,
			  .elem_max_length = 1,
			  .max_items = -1,
			  .max_length = -1 };
	gl_field ints = { .name = "i",
			  .kind = GK_LIST,
			  .elem = GK_INTEGER,
			  .max_items = 1,
			  .elem_max_length = -1,
			  .max_length = -1 };
	gl_err err = { 0 };
	json_t *v;

#define FIELD(f, text)                                                        \
	gl_jlimits_field(&TY, &(f),                                           \
			 v = json_loads(text, JSON_DECODE_ANY, NULL), &err)
	/* characters, not bytes, as the type runtime counts */
	CHECK(FIELD(str, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"") == 0);
	json_decref(v);
	CHECK(FIELD(str, "\"abcd\"") < 0);
	json_decref(v);
	CHECK_STR(err.msg, "Type: t. Field: s. Exception: String length must "
			   "be at most 3 (got 4)");
	CHECK(FIELD(str, "12345") == 0); /* not a string: Lua's to judge */
	json_decref(v);
	CHECK(FIELD(list, "[\"a\", \"bb\"]") == 0);
	json_decref(v);
	CHECK(FIELD(list, "[\"a\", \"b\", \"c\"]") < 0);
	json_decref(v);
	CHECK_STR(err.msg, "Type: t. Field: l. Exception: List must have at "
			   "most 2 items (got 3)");
	CHECK(FIELD(list, "[\"a\", \"bbb\"]") < 0);
	json_decref(v);
	CHECK(strstr(err.msg, "item 1: String length must be at most 2"));
	CHECK(FIELD(ints, "[1, 2]") < 0);
	json_decref(v);
	CHECK(strstr(err.msg, "at most 1 item (got 2)"));
	CHECK(FIELD(dict, "{\"a\": \"x\", \"bb\": \"y\"}") == 0);
	json_decref(v);
	CHECK(FIELD(dict, "{\"a\": \"x\", \"b\": \"y\", \"c\": \"z\"}") < 0);
	json_decref(v);
	CHECK(strstr(err.msg, "Dict must have at most 2 keys (got 3)"));
	CHECK(FIELD(dict, "{\"abc\": \"x\"}") < 0);
	json_decref(v);
	CHECK(strstr(err.msg, "Dict key 'abc' is longer than 2 characters"));
	CHECK(FIELD(dict, "{\"a\": \"xy\"}") < 0);
	json_decref(v);
	CHECK(strstr(err.msg, "key 'a': String length must be at most 1"));
#undef FIELD
}

UNIT_TEST(utf8_repair)
{
	size_t n;
	char *r = gl_utf8_repair("a\xff"
				 "b\xc3\xa9\xe2\x82",
				 7, &n);

	CHECK(r);
	/* each bad byte becomes U+FFFD; good sequences stay */
	CHECK_INT(n, 1 + 3 + 1 + 2 + 3 + 3);
	CHECK(!memcmp(r,
		      "a\xef\xbf\xbd"
		      "b\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd",
		      n));
	CHECK(gl_utf8_valid(r, n, 1));
	free(r);
	r = gl_utf8_repair("x\0y", 3, &n); /* NUL is valid UTF-8: kept */
	CHECK_INT(n, 3);
	CHECK(r[1] == '\0');
	free(r);
	/* overlong and surrogate forms are not UTF-8 */
	CHECK(!gl_utf8_valid("\xc0\xaf", 2, 1));
	CHECK(!gl_utf8_valid("\xed\xa0\x80", 3, 1));
	CHECK(gl_utf8_valid("\xf0\x9f\x98\x80", 4, 1));
	CHECK(!gl_utf8_valid("\xf0\x9f\x98\x80", 4, 0));
	CHECK_INT(gl_utf8_chars("a\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
}

UNIT_TEST(checksums_and_urls)
{
	gl_err uerr;

	CHECK(gl_hex_valid("0123456789abcdefABCDEF0123456789", 32, 32));
	CHECK(!gl_hex_valid("zz", 2, 32));
	CHECK(!gl_hex_valid("0123456789abcdef0123456789abcdeg", 32, 32));
	CHECK(!gl_hex_valid("0123456789abcdef0123456789abcdef0", 33, 32));
#define URL_OK(u) (gl_url_check(u, strlen(u), &uerr) == 0)
	CHECK(URL_OK("http://example.com/a?b=c#d"));
	CHECK(URL_OK("HTTPS://example.com"));
	CHECK(!URL_OK("ftp://example.com/x"));
	CHECK(!URL_OK("http://"));
	CHECK(!URL_OK("http:///path"));
	CHECK(!URL_OK("http://example.com/a b"));
	CHECK(strstr(uerr.msg, "space"));
	CHECK(!URL_OK("http://example.com/a\r\nSet-Cookie: x"));
	CHECK(strstr(uerr.msg, "control character"));
	CHECK(!URL_OK("http://example.com/\t"));
	CHECK(!URL_OK("http://example.com/\x7f"));
	CHECK(!URL_OK("http://ex\xc3\xa9.com/"));
	CHECK(!URL_OK(""));
	CHECK(gl_url_check("http://a/\0b", 11, &uerr) < 0);
	CHECK_INT(uerr.status, 400);
	{
		char u[GL_URL_MAX + 2];
		memset(u, 'a', sizeof u - 1);
		memcpy(u, "http://x/", 9);
		u[GL_URL_MAX] = '\0';
		CHECK(URL_OK(u));
		u[GL_URL_MAX] = 'a';
		u[GL_URL_MAX + 1] = '\0';
		CHECK(!URL_OK(u));
		CHECK(strstr(uerr.msg, "longer than"));
	}
#undef URL_OK
}

/* ISO-8601 times (filters, token expiry) and the civil-time check S3's
 * listing dates share with them. */
UNIT_TEST(iso8601_times)
{
	int64_t us = 0, t = 0;

	CHECK(gl_parse_iso8601("1970-01-01T00:00:00Z", &us) == 0);
	CHECK(us == 0);
	CHECK(gl_parse_iso8601("2024-05-01T12:00:00.5+02:00", &us) == 0);
	CHECK(us == (int64_t)(1714564800 - 7200) * 1000000 + 500000);
	CHECK(gl_parse_iso8601("2024-05-01", &us) == 0);
	CHECK(us == (int64_t)1714521600 * 1000000);
	CHECK(gl_parse_iso8601("2024-13-01T00:00:00Z", &us) < 0);
	CHECK(gl_parse_iso8601("2024-05-01T24:00:00Z", &us) < 0);
	CHECK(gl_parse_iso8601("2024-05-01T12:00:00Zx", &us) < 0);
	CHECK(gl_utc_seconds(2024, 5, 1, 12, 0, 0, &t) == 0);
	CHECK(t == 1714564800);
	CHECK(gl_utc_seconds(2024, 5, 32, 12, 0, 0, &t) < 0);
	CHECK(gl_utc_seconds(2024, 5, 1, 12, 60, 0, &t) < 0);
}

/* The growable string the HTTP parser, the S3 client and the console
 * output fill: always NUL-terminated, reset keeps the buffer. */
UNIT_TEST(sb_try_addn)
{
	gl_sb b = { 0 };
	char big[5000];

	CHECK(gl_sb_try_addn(&b, "ab", 2) == 0);
	CHECK(gl_sb_try_addn(&b, "cd", 1) == 0);
	CHECK_STR(b.p, "abc");
	CHECK(b.len == 3);
	memset(big, 'x', sizeof big);
	CHECK(gl_sb_try_addn(&b, big, sizeof big) == 0);
	CHECK(b.len == 3 + sizeof big);
	CHECK(b.p[b.len] == '\0');
	CHECK(b.cap > b.len);
	gl_sb_reset(&b);
	CHECK(b.len == 0 && b.p && b.p[0] == '\0');
	gl_sb_free(&b);
	CHECK(b.p == NULL && b.cap == 0);
}

/* clang-format off */
UNIT_SUITE(jlimits,
	UNIT_CASE(scan_counts_like_the_tree),
	UNIT_CASE(scan_limits),
	UNIT_CASE(tree_check),
	UNIT_CASE(field_limits),
	UNIT_CASE(utf8_repair),
	UNIT_CASE(checksums_and_urls),
	UNIT_CASE(iso8601_times),
	UNIT_CASE(sb_try_addn));
/* clang-format on */
