/* jtext.c - JSON text into a gl_sb (see jtext.h). */
#include "jtext.h"

#include <stdio.h>
#include <string.h>

/* Any byte of w below 0x20, a quote or a backslash? (May say yes for a
 * clean word after a borrow; never no for one that is not clean.) */
static inline int special8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL,
		       high = 0x8080808080808080ULL;
	uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');

	return ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
		 ((bs - ones) & ~bs)) &
		high) != 0;
}

void gl_jtext_str(gl_sb *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n,
			    *run = p;

	gl_jtext_raw(b, "\"", 1);
	while (p < end) {
		char esc[6];
		const char *e = esc;
		size_t el = 2;
		uint64_t w;

		/* eight clean bytes at a time: most text has nothing to
		 * escape */
		while (end - p >= 8) {
			memcpy(&w, p, 8);
			if (special8(w))
				break;
			p += 8;
		}
		if (p == end)
			break;
		if (*p >= 0x20 && *p != '"' && *p != '\\') {
			p++;
			continue;
		}
		if (p > run)
			gl_jtext_raw(b, (const char *)run, (size_t)(p - run));
		run = p + 1;
		switch (*p) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			el = 6;
		}
		gl_jtext_raw(b, e, el);
		p++;
	}
	if (p > run)
		gl_jtext_raw(b, (const char *)run, (size_t)(p - run));
	gl_jtext_raw(b, "\"", 1);
}

void gl_jtext_int(gl_sb *b, int64_t v)
{
	char s[24], *p = s + sizeof s;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	gl_jtext_raw(b, p, (size_t)(s + sizeof s - p));
}

void gl_jtext_real(gl_sb *b, double v)
{
	char s[40], *e;
	int n = snprintf(s, sizeof s - 3, "%.17g", v);

	if (n < 0 || (size_t)n >= sizeof s - 3)
		n = 0; /* cannot happen with %.17g: 24 bytes at most */
	/* as jansson: a real never reads back as an integer ... */
	if (!strchr(s, '.') && !strchr(s, 'e')) {
		memcpy(s + n, ".0", 3);
		n += 2;
	}
	/* ... and its exponent has no '+' and no leading zeros */
	e = strchr(s, 'e');
	if (e) {
		char *start = e + 1, *end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(s + n - end) + 1);
			n -= (int)(end - start);
		}
	}
	gl_jtext_raw(b, s, (size_t)n);
}

void gl_jtext_key(gl_sb *b, const char *k, size_t n, int first)
{
	if (!first)
		gl_jtext_raw(b, ", ", 2);
	gl_jtext_str(b, k, n);
	gl_jtext_raw(b, ": ", 2);
}

void gl_jtext_value(gl_sb *b, const json_t *j)
{
	size_t i;
	const char *k;
	size_t kl;
	json_t *v;
	int first = 1;

	switch (j ? json_typeof(j) : JSON_NULL) {
	case JSON_NULL:
		gl_jtext_raw(b, "null", 4);
		break;
	case JSON_TRUE:
		gl_jtext_raw(b, "true", 4);
		break;
	case JSON_FALSE:
		gl_jtext_raw(b, "false", 5);
		break;
	case JSON_INTEGER:
		gl_jtext_int(b, (int64_t)json_integer_value(j));
		break;
	case JSON_REAL:
		gl_jtext_real(b, json_real_value(j));
		break;
	case JSON_STRING:
		gl_jtext_str(b, json_string_value(j), json_string_length(j));
		break;
	case JSON_ARRAY:
		gl_jtext_raw(b, "[", 1);
		json_array_foreach(j, i, v) {
			if (i)
				gl_jtext_raw(b, ", ", 2);
			gl_jtext_value(b, v);
		}
		gl_jtext_raw(b, "]", 1);
		break;
	case JSON_OBJECT:
		gl_jtext_raw(b, "{", 1);
		json_object_keylen_foreach((json_t *)j, k, kl, v)
		{
			gl_jtext_key(b, k, kl, first);
			first = 0;
			gl_jtext_value(b, v);
		}
		gl_jtext_raw(b, "}", 1);
		break;
	}
}
