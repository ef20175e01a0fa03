/* jpatch.h - JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) on jansson.
 *
 * Pure data manipulation: no Glare rules here (the engine checks which
 * fields an operation may touch before applying it). Errors are 400s.
 *
 * A patch has a bounded cost whatever it says: it has at most max_ops
 * operations, and in all its add/replace/copy operations create at most
 * max_values values and max_bytes bytes of strings and keys (a copy of a
 * list into itself doubles it: without a budget 30 operations of 1.4 KB
 * would build a billion values). No operation may nest the document
 * deeper than max_depth. The caller's check runs after each operation, so
 * its own limits (a field's max_items, ...) hold at every step, not only
 * at the end. Each check happens before the work it bounds.
 */
#ifndef GL_JPATCH_H
#define GL_JPATCH_H

#include <stdint.h>
#include <jansson.h>
#include "err.h"

typedef struct gl_jpatch_limits {
	int max_ops;        /* operations in one patch */
	int max_depth;      /* lists and dicts nested in the document */
	int64_t max_values; /* values the operations may create in all */
	int64_t max_bytes;  /* bytes of strings and keys they may create */
	/* Called after each operation that changed doc, with the first
	 * token of its path ("" for none); -1 + err stops the patch. */
	int (*check)(void *ctx, json_t *doc, const char *field, gl_err *err);
	void *ctx;
} gl_jpatch_limits;

/* The defaults the fuzzer and tests use (the server takes conf.c's). */
#define GL_JPATCH_MAX_OPS 1000
#define GL_JPATCH_MAX_DEPTH 32
#define GL_JPATCH_MAX_VALUES 20000
#define GL_JPATCH_MAX_BYTES (16 << 20)
extern const gl_jpatch_limits gl_jpatch_defaults;

/* Check the patch's shape: an array of at most lim->max_ops objects with a
 * known "op", a "path" that is a JSON pointer other than "" and "/",
 * "value" where needed and a "from" for move/copy. lim NULL: defaults. */
int gl_jpatch_check(const json_t *patch, const gl_jpatch_limits *lim,
		    gl_err *err);

/* Split a pointer into unescaped tokens (new array of strings). */
json_t *gl_jpointer_split(const char *ptr, gl_err *err);

/* Apply every operation to doc in order, within lim (NULL: defaults).
 * doc is modified in place; on failure it may be partly modified, so
 * patch a copy. */
int gl_jpatch_apply(json_t *doc, const json_t *patch,
		    const gl_jpatch_limits *lim, gl_err *err);

#endif
