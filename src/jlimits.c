/* jlimits.c - cheap limits on client JSON before real work (see
 * jlimits.h). */
#include "jlimits.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void gl_jlimits_of(const gl_conf *c, gl_jlimits *l)
{
	l->max_depth = c->max_json_depth;
	l->max_values = c->max_json_values;
}

/* ---- raw bytes ------------------------------------------------------------ */

/* Skip the string whose opening quote is at p[*i]; 1 when it holds a
 * \u0000 escape. *i ends on the closing quote (or at n). */
static int skip_string(const char *p, size_t n, size_t *i)
{
	size_t k = *i + 1;
	int nul = 0;

	for (; k < n && p[k] != '"'; k++) {
		if (p[k] != '\\')
			continue;
		if (k + 5 < n && p[k + 1] == 'u' &&
		    !memcmp(p + k + 2, "0000", 4))
			nul = 1;
		k++; /* the escaped character */
	}
	*i = k;
	return nul;
}

/* Counts values as they start: after '[', ',' in a list, ':' and at the
 * top; keys are not values. Exact for valid JSON; whatever it says about
 * invalid JSON, the parser refuses that next. */
int gl_jlimits_scan(const char *p, size_t n, const gl_jlimits *l, gl_err *err)
{
	char open[GL_JSON_DEPTH_MAX];
	int depth = 0, expect = 1;
	int64_t values = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (expect && c != ']' && ++values > l->max_values)
			return gl_fail(err, 400, "BadRequest",
				       "The request body has more than %lld "
				       "values",
				       (long long)l->max_values);
		expect = 0;
		switch (c) {
		case '"':
			if (skip_string(p, n, &i))
				return gl_fail(err, 400, "BadRequest",
					       "The request body has a string "
					       "with U+0000, which is not "
					       "allowed");
			break;
		case '[':
		case '{':
			if (depth >= l->max_depth ||
			    depth >= GL_JSON_DEPTH_MAX)
				return gl_fail(err, 400, "BadRequest",
					       "The request body is nested "
					       "deeper than %d levels",
					       l->max_depth);
			open[depth++] = c;
			expect = c == '[';
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		case ':':
			expect = 1;
			break;
		case ',':
			expect = depth && open[depth - 1] == '[';
			break;
		default: /* inside a number or a literal */
			break;
		}
	}
	return 0;
}

/* ---- a parsed document -------------------------------------------------- */

static int has_nul(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static int check_tree(const json_t *v, int depth, const gl_jlimits *l,
		      int64_t *values, const char *what, gl_err *err)
{
	void *it;
	size_t i;
	json_t *x;

	if (++*values > l->max_values)
		return gl_fail(err, 400, "BadRequest",
			       "%s has more than %lld values", what,
			       (long long)l->max_values);
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (has_nul(json_string_value(v), json_string_length(v)))
			return gl_fail(err, 400, "BadRequest",
				       "%s has a string with U+0000, which is "
				       "not allowed",
				       what);
		return 0;
	case JSON_ARRAY:
	case JSON_OBJECT:
		if (depth >= l->max_depth)
			return gl_fail(err, 400, "BadRequest",
				       "%s is nested deeper than %d levels",
				       what, l->max_depth);
		break;
	default:
		return 0;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (check_tree(x, depth + 1, l, values, what, err) < 0)
				return -1;
		return 0;
	}
	for (it = json_object_iter((json_t *)v); it;
	     it = json_object_iter_next((json_t *)v, it)) {
		if (has_nul(json_object_iter_key(it),
			    json_object_iter_key_len(it)))
			return gl_fail(err, 400, "BadRequest",
				       "%s has a key with U+0000, which is not "
				       "allowed",
				       what);
		if (check_tree(json_object_iter_value(it), depth + 1, l,
			       values, what, err) < 0)
			return -1;
	}
	return 0;
}

int gl_jlimits_check(const json_t *v, const gl_jlimits *l, const char *what,
		     gl_err *err)
{
	int64_t values = 0;

	return check_tree(v, 0, l, &values, what, err);
}

/* ---- a field against its type's declared limits -------------------------- */

/* The messages are the type runtime's, so a client sees the same answer
 * whichever side refuses. */
#define FIELD_FAIL(t, f, err, fmt, ...)                                       \
	gl_fail(err, 400, "BadRequest",                                       \
		"Type: %s. Field: %s. Exception: " fmt, (t)->name, (f)->name, \
		__VA_ARGS__)

static const char *plural_s(long long n)
{
	return n == 1 ? "" : "s";
}

/* A string too long for max (characters), or 0. */
static size_t too_long(const json_t *s, int max)
{
	size_t n = json_string_length(s), c;

	if (max < 0 || !json_is_string(s) || n <= (size_t)max)
		return 0;
	c = gl_utf8_chars(json_string_value(s), n);
	return c > (size_t)max ? c : 0;
}

int gl_jlimits_field(const gl_type *t, const gl_field *f, const json_t *v,
		     gl_err *err)
{
	const char *k;
	json_t *x;
	size_t i, c;

	switch (f->kind) {
	case GK_STRING:
		if ((c = too_long(v, f->max_length)))
			return FIELD_FAIL(t, f, err,
					  "String length must be at "
					  "most %d (got %zu)",
					  f->max_length, c);
		return 0;
	case GK_LIST:
		if (!json_is_array(v))
			return 0;
		if (f->max_items >= 0 &&
		    json_array_size(v) > (size_t)f->max_items)
			return FIELD_FAIL(t, f, err,
					  "List must have at most %d "
					  "item%s (got %zu)",
					  f->max_items, plural_s(f->max_items),
					  json_array_size(v));
		if (f->elem != GK_STRING)
			return 0;
		json_array_foreach(v, i, x)
			if ((c = too_long(x, f->elem_max_length)))
				return FIELD_FAIL(t, f, err,
						  "item %zu: String "
						  "length must be at most %d "
						  "(got %zu)",
						  i, f->elem_max_length, c);
		return 0;
	case GK_DICT:
		if (!json_is_object(v))
			return 0;
		if (f->max_keys >= 0 &&
		    json_object_size(v) > (size_t)f->max_keys)
			return FIELD_FAIL(t, f, err,
					  "Dict must have at most %d "
					  "key%s (got %zu)",
					  f->max_keys, plural_s(f->max_keys),
					  json_object_size(v));
		json_object_foreach((json_t *)v, k, x) {
			size_t kl = strlen(k);
			if (f->max_key_length >= 0 &&
			    kl > (size_t)f->max_key_length &&
			    gl_utf8_chars(k, kl) > (size_t)f->max_key_length)
				return FIELD_FAIL(t, f, err,
						  "Dict key '%.57s' is "
						  "longer than %d character%s",
						  k, f->max_key_length,
						  plural_s(f->max_key_length));
			if (f->elem == GK_STRING &&
			    (c = too_long(x, f->elem_max_length)))
				return FIELD_FAIL(t, f, err,
						  "key '%.57s': String "
						  "length must be at most %d "
						  "(got %zu)",
						  k, f->elem_max_length, c);
		}
		return 0;
	default:
		return 0;
	}
}
