/* health.h - checks of a running engine's parts: the database, each blob
 * store and the Lua type runtime. `GET /healthcheck?detailed=true` and
 * `glared check-config` both use them.
 *
 * Each check does real work (a query, a temp file written and removed, a
 * request to S3, a call into the Lua state) and reports
 * {"class": PART, "reason": "OK" | what failed, "details": ...}.
 *
 * Used by api.c and cli.c. Uses core.h (engine internals), meta.h, store.h,
 * s3.h, ltype.h.
 */
#ifndef GL_HEALTH_H
#define GL_HEALTH_H

#include <jansson.h>

#include "conf.h"
#include "engine.h"

/* Appends one report per part to reasons (an array). Returns the number
 * of parts that failed; *first_bad names the first (static string). */
int gl_health_check(gl_engine *e, json_t *reasons, const char **first_bad);

/* `glared check-config`: 0 when everything start-up needs is there. */
int gl_check_config(gl_conf *conf);

#endif
