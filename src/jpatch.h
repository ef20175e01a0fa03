/* jpatch.h - JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) on jansson.
 *
 * Pure data manipulation: no Glare rules here (the engine checks which
 * fields an operation may touch before applying it). Errors are 400s.
 */
#ifndef GL_JPATCH_H
#define GL_JPATCH_H

#include <jansson.h>
#include "err.h"

/* Check the patch's shape: an array of objects with a known "op", a "path"
 * that is a JSON pointer other than "" and "/", "value" where needed and a
 * "from" for move/copy. */
int gl_jpatch_check(const json_t *patch, gl_err *err);

/* Split a pointer into unescaped tokens (new array of strings). */
json_t *gl_jpointer_split(const char *ptr, gl_err *err);

/* Apply every operation to doc in order. doc is modified in place; on
 * failure it may be partly modified, so patch a copy. */
int gl_jpatch_apply(json_t *doc, const json_t *patch, gl_err *err);

#endif
