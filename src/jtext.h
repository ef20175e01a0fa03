/* jtext.h - JSON text written straight into a growable string, byte for
 * byte what the API's json_dumps(JSON_ENCODE_ANY |
 * JSON_REAL_PRECISION(17)) writes: ", " and ": " separators, objects in
 * their insertion order, UTF-8 unescaped, "\uXXXX" (upper-case hex) for
 * the other controls, reals with 17 significant digits and always a '.'
 * or an exponent. The list and show replies are built with it, one
 * buffer per reply instead of a jansson tree per row dumped at the end
 * (docs/benchmarks.md "CPU per request").
 *
 * Used by ljson.c (Lua values), core.c and art_list.c. Uses jansson.
 */
#ifndef GL_JTEXT_H
#define GL_JTEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

/* n bytes as they are; gl_sb_addn without the call when there is room
 * (most pieces are a few bytes). */
static inline void gl_jtext_raw(gl_sb *b, const char *s, size_t n)
{
	if (b->len + n < b->cap) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
		b->p[b->len] = '\0';
	} else {
		gl_sb_addn(b, s, n);
	}
}

/* A string (n bytes of valid UTF-8, NULs allowed) as a JSON string. */
void gl_jtext_str(gl_sb *b, const char *s, size_t n);
void gl_jtext_int(gl_sb *b, int64_t v);
/* A finite double, as jansson formats it. */
void gl_jtext_real(gl_sb *b, double v);
/* Any value (NULL is written as null). */
void gl_jtext_value(gl_sb *b, const json_t *j);
/* `"key": ` with the separator before it unless first. */
void gl_jtext_key(gl_sb *b, const char *k, size_t n, int first);

#endif
