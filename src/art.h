/* art.h - the artifact operations (art.c) and the listing (art_list.c):
 * schemas, list, show, create, update, delete, scrub.
 *
 * Every call checks visibility, policy, the type's rules and hooks, and
 * returns 0 or -1 with err filled (status, Glare exception name, message);
 * results are new JSON references in API shape.
 *
 * Uses ctx.h, err.h, jansson.
 */
#ifndef GL_ART_H
#define GL_ART_H

#include <jansson.h>

#include "ctx.h"
#include "err.h"
#include "util.h"

typedef struct gl_engine gl_engine;

/* type NULL: {"schemas": {...every type...}}; else {"schemas": {type: ...}} */
int gl_art_schemas(gl_engine *e, const gl_ctx *ctx, const char *type,
		   json_t **out, gl_err *err);

/* A query parameter, percent-decoded (the list endpoint's filters). */
typedef struct gl_kv {
	const char *name, *value;
} gl_kv;

/* The list response body: {type_name, artifacts, first, schema,
 * total_count[, next]}. */
int gl_art_list(gl_engine *e, const gl_ctx *ctx, const char *type,
		const gl_kv *query, int nquery, json_t **out, gl_err *err);
/* The same body as JSON text appended to out (what the API's dump of
 * gl_art_list's value gives, byte for byte; out as it was on -1). */
int gl_art_list_text(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const gl_kv *query, int nquery, gl_sb *out, gl_err *err);
int gl_art_show(gl_engine *e, const gl_ctx *ctx, const char *type,
		const char *id, json_t **out, gl_err *err);
/* The same as JSON text appended to out (what the API's dump of
 * gl_art_show's value gives, byte for byte; out as it was on -1). */
int gl_art_show_text(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, gl_sb *out, gl_err *err);
/* The checks of create / update that need no body, so the API can answer
 * them before the client sends it (Expect: 100-continue). */
int gl_art_precheck_create(gl_engine *e, const gl_ctx *ctx, const char *type,
			   gl_err *err);
int gl_art_precheck_update(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, gl_err *err);
int gl_art_create(gl_engine *e, const gl_ctx *ctx, const char *type,
		  const json_t *body, json_t **out, gl_err *err);
/* patch: a JSON-patch array (RFC 6902). */
int gl_art_update(gl_engine *e, const gl_ctx *ctx, const char *type,
		  const char *id, const json_t *patch, json_t **out,
		  gl_err *err);
int gl_art_delete(gl_engine *e, const gl_ctx *ctx, const char *type,
		  const char *id, gl_err *err);
/* Purge artifacts deleted (delayed) at least min_age_s seconds ago, at
 * most limit per call. Returns the number purged, or -1. */
int gl_art_scrub(gl_engine *e, int min_age_s, int limit, gl_err *err);

#endif
