/* fault.h - Glare's error body ("fault") format.
 *
 *   {"code": 404, "title": "Not Found", "explanation": "...",
 *    "error": {"message": "...", "type": "ArtifactNotFound"}}
 *
 * plus min_version/max_version on 406. Used by api.c; uses jansson and
 * http.c (reason phrases).
 */
#ifndef GL_FAULT_H
#define GL_FAULT_H

#include <jansson.h>
#include "err.h"

json_t *gl_fault_json(int status, const char *type, const char *message);
const char *gl_fault_explanation(int status);

#endif
