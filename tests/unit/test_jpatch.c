/* test_jpatch.c - unit tests for jpatch.c: RFC 6902 operations and the
 * bounded cost of a patch (operation cap, the budget of values and bytes
 * a patch may create, depth, the caller's check after each step).
 */
#include "unit.h"

#include <string.h>

#include "jpatch.h"

static json_t *J(const char *text)
{
	json_error_t e;
	return json_loads(text, JSON_DECODE_ANY, &e);
}

/* Apply patch text to doc text within lim; the result as compact JSON
 * text into out, or "ERR <message>". */
static const char *run(const char *doc, const char *patch,
		       const gl_jpatch_limits *lim, char *out, size_t n)
{
	json_t *d = J(doc), *p = J(patch);
	gl_err err = { 0 };
	char *s;

	if (!d || !p) {
		snprintf(out, n, "ERR bad test input");
	} else if (gl_jpatch_apply(d, p, lim, &err) < 0) {
		snprintf(out, n, "ERR %d %.400s", err.status, err.msg);
	} else {
		s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS |
					  JSON_ENCODE_ANY);
		snprintf(out, n, "%s", s);
		free(s);
	}
	json_decref(d);
	json_decref(p);
	return out;
}

/* got == want, quoted with bounds (the expressions are long) */
#define CHECK_SAME(got, want)                                                 \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		if (strcmp(g_, w_) != 0) {                                    \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg,                   \
				 "%s:%d: \"%.200s\" vs \"%.200s\"", __FILE__, \
				 __LINE__, g_, w_);                           \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_RUN(doc, patch, want)                                           \
	do {                                                                  \
		char o_[512];                                                 \
		CHECK_SAME(run(doc, patch, NULL, o_, sizeof o_), want);       \
	} while (0)

#define CHECK_FAILS(doc, patch, lim, part)                                    \
	do {                                                                  \
		char o_[512];                                                 \
		run(doc, patch, lim, o_, sizeof o_);                          \
		if (strncmp(o_, "ERR 400", 7) != 0 || !strstr(o_, part)) {    \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg,                   \
				 "%s:%d: got \"%.300s\", want 400 with "      \
				 "\"%.100s\"",                                \
				 __FILE__, __LINE__, o_, part);               \
			return;                                               \
		}                                                             \
	} while (0)

UNIT_TEST(operations)
{
	CHECK_RUN("{\"a\":1}",
		  "[{\"op\":\"add\",\"path\":\"/b\",\"value\":[1]}]",
		  "{\"a\":1,\"b\":[1]}");
	CHECK_RUN("{\"a\":[1,2]}",
		  "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3},"
		  "{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0}]",
		  "{\"a\":[0,1,2,3]}");
	CHECK_RUN("{\"a\":[1,2],\"b\":{\"c\":1}}",
		  "[{\"op\":\"remove\",\"path\":\"/a/0\"},"
		  "{\"op\":\"replace\",\"path\":\"/b/c\",\"value\":\"x\"}]",
		  "{\"a\":[2],\"b\":{\"c\":\"x\"}}");
	CHECK_RUN("{\"a\":{\"x\":[1]},\"b\":{}}",
		  "[{\"op\":\"move\",\"from\":\"/a/x\",\"path\":\"/b/y\"},"
		  "{\"op\":\"copy\",\"from\":\"/b\",\"path\":\"/c\"},"
		  "{\"op\":\"test\",\"path\":\"/c/y/0\",\"value\":1}]",
		  "{\"a\":{},\"b\":{\"y\":[1]},\"c\":{\"y\":[1]}}");
	/* "~1" is "/", "~0" is "~" */
	CHECK_RUN("{\"a/b\":1,\"c~d\":2}",
		  "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},"
		  "{\"op\":\"remove\",\"path\":\"/c~0d\"}]",
		  "{\"a/b\":3}");
	/* a move to its own place changes nothing */
	CHECK_RUN("{\"a\":[1,2,3]}",
		  "[{\"op\":\"move\",\"from\":\"/a/2\",\"path\":\"/a/2\"}]",
		  "{\"a\":[1,2,3]}");
	/* a copy is a copy: changing it leaves the source alone */
	CHECK_RUN("{\"a\":[1]}",
		  "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
		  "{\"op\":\"add\",\"path\":\"/b/-\",\"value\":2}]",
		  "{\"a\":[1],\"b\":[1,2]}");
}

UNIT_TEST(errors)
{
	CHECK_FAILS("{}", "{}", NULL, "list of operations");
	CHECK_FAILS("{}", "[1]", NULL, "not an object");
	CHECK_FAILS("{}", "[{\"op\":\"nope\",\"path\":\"/a\"}]", NULL,
		    "unknown op");
	CHECK_FAILS("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL,
		    "'value' is missing");
	CHECK_FAILS("{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
		    NULL, "invalid path");
	CHECK_FAILS("{}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", NULL,
		    "does not exist");
	CHECK_FAILS("{\"a\":[1]}",
		    "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":1}]", NULL,
		    "out of range");
	CHECK_FAILS("{\"a\":[1]}",
		    "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":1}]", NULL,
		    "out of range");
	CHECK_FAILS("{\"a\":{\"b\":1}}",
		    "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]",
		    NULL, "into itself");
	CHECK_FAILS("{\"a\":1}",
		    "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", NULL,
		    "Test of '/a' failed");
	CHECK_FAILS("{\"a\":1}",
		    "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":2}]", NULL,
		    "does not point into a list or a dict");
	CHECK_FAILS("{}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":1}]",
		    NULL, "Invalid escape");
}

/* Copying a list into itself doubles it: 1.4 KB of patch would build
 * 2^30 values. The budget stops it after a few thousand, at once. */
UNIT_TEST(doubling_is_bounded)
{
	char patch[4096], out[512];
	size_t n = 0;

	n += (size_t)snprintf(patch + n, sizeof patch - n, "[");
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(patch + n, sizeof patch - n,
				      "%s{\"op\":\"copy\",\"from\":\"/l\","
				      "\"path\":\"/l/-\"}",
				      i ? "," : "");
	snprintf(patch + n, sizeof patch - n, "]");
	CHECK(strlen(patch) < 1500);
	run("{\"l\":[\"a\"]}", patch, NULL, out, sizeof out);
	CHECK_PREFIX(out, "ERR 400 Operation 1");
	CHECK(strstr(out, "more than 20000 values"));
}

UNIT_TEST(budgets)
{
	gl_jpatch_limits lim = gl_jpatch_defaults;

	/* values: a copy of 4 values into a budget of 6 fits once */
	lim.max_values = 6;
	CHECK_FAILS("{\"a\":[1,2,3]}",
		    "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
		    "{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"}]",
		    &lim,
		    "Operation 1: the patch would create more than 6 values");
	/* bytes of text: strings and keys */
	lim = gl_jpatch_defaults;
	lim.max_bytes = 10;
	CHECK_FAILS("{\"s\":\"12345678\"}",
		    "[{\"op\":\"copy\",\"from\":\"/s\",\"path\":\"/t\"},"
		    "{\"op\":\"copy\",\"from\":\"/s\",\"path\":\"/u\"}]",
		    &lim,
		    "Operation 1: the patch would create more than 10 bytes");
	CHECK_FAILS("{}",
		    "[{\"op\":\"add\",\"path\":\"/t\","
		    "\"value\":{\"0123456789x\":1}}]",
		    &lim, "10 bytes");
	/* depth: where a value lands counts, not only the value */
	lim = gl_jpatch_defaults;
	lim.max_depth = 3;
	CHECK_FAILS("{\"a\":{\"b\":{}}}",
		    "[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":[1]}]",
		    &lim, "deeper than 3 levels");
	CHECK_FAILS("{\"a\":{\"b\":{}},\"x\":[[1]]}",
		    "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/a/b/x\"}]",
		    &lim, "deeper than 3 levels");
	{
		char o[512];
		CHECK_SAME(run("{\"a\":{\"b\":{}}}",
			       "[{\"op\":\"add\",\"path\":\"/a/b/c\","
			       "\"value\":1}]",
			       &lim, o, sizeof o),
			   "{\"a\":{\"b\":{\"c\":1}}}");
	}
	/* operations */
	lim = gl_jpatch_defaults;
	lim.max_ops = 2;
	CHECK_FAILS("{}",
		    "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
		    "{\"op\":\"add\",\"path\":\"/b\",\"value\":1},"
		    "{\"op\":\"add\",\"path\":\"/c\",\"value\":1}]",
		    &lim, "3 operations; at most 2");
}

/* The caller's check runs after each changing step, with the field. */
static int at_most_two(void *ctx, json_t *doc, const char *field, gl_err *err)
{
	int *calls = ctx;

	(*calls)++;
	if (json_array_size(json_object_get(doc, field)) > 2)
		return gl_fail(err, 400, "BadRequest", "%s: too many", field);
	return 0;
}

UNIT_TEST(step_check)
{
	gl_jpatch_limits lim = gl_jpatch_defaults;
	int calls = 0;

	lim.check = at_most_two;
	lim.ctx = &calls;
	/* over the limit in the middle, back under it at the end: refused */
	CHECK_FAILS("{\"l\":[1,2]}",
		    "[{\"op\":\"add\",\"path\":\"/l/-\",\"value\":3},"
		    "{\"op\":\"remove\",\"path\":\"/l/0\"}]",
		    &lim, "l: too many");
	CHECK_INT(calls, 1);
	calls = 0;
	{
		char o[256];
		CHECK_SAME(run("{\"l\":[1,2]}",
			       "[{\"op\":\"remove\",\"path\":\"/l/0\"},"
			       "{\"op\":\"test\",\"path\":\"/l/0\",\"value\":2},"
			       "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":3}]",
			       &lim, o, sizeof o),
			   "{\"l\":[2,3]}");
	}
	CHECK_INT(calls, 2); /* not for test */
}

UNIT_TEST(pointer)
{
	gl_err err = { 0 };
	json_t *t = gl_jpointer_split("/a~1b/~0/", &err);

	CHECK(t);
	CHECK_INT(json_array_size(t), 3);
	CHECK_STR(json_string_value(json_array_get(t, 0)), "a/b");
	CHECK_STR(json_string_value(json_array_get(t, 1)), "~");
	CHECK_STR(json_string_value(json_array_get(t, 2)), "");
	json_decref(t);
	CHECK(!gl_jpointer_split("a", &err));
	CHECK(!gl_jpointer_split("/\xff", &err)); /* not from JSON */
}

/* clang-format off */
UNIT_SUITE(jpatch,
	UNIT_CASE(operations),
	UNIT_CASE(errors),
	UNIT_CASE(doubling_is_bounded),
	UNIT_CASE(budgets),
	UNIT_CASE(step_check),
	UNIT_CASE(pointer));
/* clang-format on */
