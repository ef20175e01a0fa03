/* jlimits.h - the cheap limits a JSON document from a client meets before
 * any real work is spent on it.
 *
 * Three stages, each before the work it protects:
 *   gl_jlimits_scan   the raw body, before the parser builds anything:
 *                     nesting depth and number of values counted on the
 *                     bytes, and no U+0000 escape in a string;
 *   gl_jlimits_check  a parsed document (what the console or a hook hands
 *                     over, or a body): the same limits on the tree, and no
 *                     U+0000 in any string or key;
 *   gl_jlimits_field  one field value against its type's declared limits
 *                     (max_items, max_keys, max_length of strings, items
 *                     and keys), counted in C before the type runtime
 *                     coerces it, so an oversized value costs a count, not
 *                     a Lua conversion.
 * All refusals are 400 BadRequest. U+0000 is refused everywhere because no
 * store can keep it in every column (sqlite text binds cut at it,
 * PostgreSQL text refuses it) and a value must read back as it was written.
 *
 * Used by api.c (bodies) and the engine (create, update, locations,
 * quotas). Uses jansson, type.h (field limits), util.c.
 */
#ifndef GL_JLIMITS_H
#define GL_JLIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "conf.h"
#include "err.h"
#include "type.h"

/* The most max_json_depth may be (the raw scan keeps one byte per level). */
#define GL_JSON_DEPTH_MAX 256

typedef struct gl_jlimits {
	int max_depth;      /* lists and dicts nested in one another */
	int64_t max_values; /* values in one document */
} gl_jlimits;

/* The limits of the configuration (max_json_depth, max_json_values). */
void gl_jlimits_of(const gl_conf *c, gl_jlimits *l);

int gl_jlimits_scan(const char *p, size_t n, const gl_jlimits *l, gl_err *err);
/* what: how the message names the document ("The request body"). */
int gl_jlimits_check(const json_t *v, const gl_jlimits *l, const char *what,
		     gl_err *err);
int gl_jlimits_field(const gl_type *t, const gl_field *f, const json_t *v,
		     gl_err *err);

#endif
