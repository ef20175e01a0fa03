/* quota.h - the quota API (quota.c): per-project limits on the number of
 * artifacts and the bytes uploaded, by type or in total. The limit in
 * effect for a check is core.c's.
 *
 * Uses ctx.h, err.h, jansson.
 */
#ifndef GL_QUOTA_H
#define GL_QUOTA_H

#include <jansson.h>

#include "ctx.h"
#include "err.h"

typedef struct gl_engine gl_engine;

int gl_quota_set(gl_engine *e, const gl_ctx *ctx, const json_t *body,
		 gl_err *err);
int gl_quota_list(gl_engine *e, const gl_ctx *ctx, json_t **out, gl_err *err);
/* project NULL: the caller's project. */
int gl_quota_project(gl_engine *e, const gl_ctx *ctx, const char *project,
		     json_t **out, gl_err *err);

#endif
