/* ltype.h - the sandboxed Lua type runtime, seen from C.
 *
 * Each enabled type file (types/NAME.lua) gets a lua_State of its own in
 * every worker, with its own copy of lua/glare (the type DSL library), its
 * own memory cap (custom allocator), text-only chunks and allow-listed
 * environments; once declared, everything the type built is sealed
 * read-only, so no request leaves anything behind for the next one. All
 * the Lua a request runs, in any type, shares one budget of instructions
 * and wall time (gl_lreq). The isolation model is in docs/lua-runtime.md.
 * After loading, every type's field list is copied into plain C structs
 * (gl_type / gl_field) so the engine and the SQL layer never call into Lua
 * for metadata; Lua runs only for coercion, schemas, output shaping and
 * hooks.
 *
 * A gl_types set is immutable once loaded and reference counted: a reload
 * (SIGHUP, console) loads and checks a complete new set, then swaps it in;
 * requests that started on the old set finish on it.
 *
 * Used by the engine, the API layer and the console. Uses Lua 5.4, jansson
 * (values cross the boundary as JSON: integers stay integers), conf.c.
 */
#ifndef GL_LTYPE_H
#define GL_LTYPE_H

#include <stdint.h>
#include <jansson.h>

#include "conf.h"
#include "err.h"
#include "type.h"
#include "util.h"

/* The hooks a type may define, in one list: the enum below, the names in
 * ltype.c and the library's glare.hooks (given to every state at start-up,
 * which metaschema checks type files against) all come from it;
 * lua/glare/hooks.lua, the same names for offline use of the library, is
 * generated from it by scripts/gen-hooks.sh. One entry per line. */
#define GL_HOOKS(X)                                                           \
	X(PRE_CREATE, pre_create)                                             \
	X(POST_CREATE, post_create)                                           \
	X(PRE_UPDATE, pre_update)                                             \
	X(POST_UPDATE, post_update)                                           \
	X(PRE_ACTIVATE, pre_activate)                                         \
	X(POST_ACTIVATE, post_activate)                                       \
	X(PRE_REACTIVATE, pre_reactivate)                                     \
	X(POST_REACTIVATE, post_reactivate)                                   \
	X(PRE_DEACTIVATE, pre_deactivate)                                     \
	X(POST_DEACTIVATE, post_deactivate)                                   \
	X(PRE_PUBLISH, pre_publish)                                           \
	X(POST_PUBLISH, post_publish)                                         \
	X(PRE_UPLOAD, pre_upload)                                             \
	X(POST_UPLOAD, post_upload)                                           \
	X(PRE_ADD_LOCATION, pre_add_location)                                 \
	X(POST_ADD_LOCATION, post_add_location)                               \
	X(PRE_DOWNLOAD, pre_download)                                         \
	X(POST_DOWNLOAD, post_download)                                       \
	X(PRE_DELETE, pre_delete)                                             \
	X(POST_DELETE, post_delete)

/* hooks, as a bit set (which ones a type defines) */
/* clang-format off */
enum gl_hook {
#define GL_HOOK_ENUM(up, low) GL_HOOK_##up,
	GL_HOOKS(GL_HOOK_ENUM)
#undef GL_HOOK_ENUM
	GL_HOOK_COUNT
};
/* clang-format on */

/* Load and check the library and every enabled type, each in its own
 * state, and run the sandbox self-check in each. NULL + err on failure,
 * the message naming the file ("types/x.lua: field 'a': ...",
 * "types/x.lua: memory limit of ... exceeded while loading"). */
gl_types *gl_types_load(const gl_conf *conf, gl_err *err);
gl_types *gl_types_ref(gl_types *t);
void gl_types_unref(gl_types *t);

const gl_type *gl_types_find(const gl_types *t, const char *name);
int gl_types_count(const gl_types *t);
const gl_type *gl_types_at(const gl_types *t, int i);
const gl_field *gl_type_field(const gl_type *t, const char *name);

/* Errors: input the type refuses is a 400 (or the 4xx a hook chose with
 * glare.fail) with the type's message. Anything else that goes wrong in
 * Lua (a runtime error in type code, a spent budget, the memory cap, a
 * result that has no JSON form) is the server's fault: a 500 whose
 * message names the type and the hook but no file, while the log gets
 * the Lua error with its file:line and the request id. */

/* Coerce and validate one field value (JSON in, JSON out, new ref). */
int gl_types_coerce(gl_types *ts, gl_lreq *rq, const gl_type *t,
		    const char *field, json_t *in, json_t **out, gl_err *err);
/* Coerce a filter value (a query-string string) to the field's kind, or its
 * element kind when element != 0. */
int gl_types_coerce_filter(gl_types *ts, gl_lreq *rq, const gl_type *t,
			   const char *field, const char *value, int element,
			   json_t **out, gl_err *err);
/* Semver sort key of a coerced version string. */
int gl_types_version_key(gl_types *ts, gl_lreq *rq, const char *version,
			 int64_t *prefix, char **suffix, char **meta,
			 gl_err *err);

/* JSON schema of one type (new ref), or NULL + err. */
json_t *gl_types_schema(gl_types *ts, gl_lreq *rq, const gl_type *t,
			gl_err *err);
/* Output shaping (to_dict / format_all); takes a reference to af and
 * returns one, or NULL + err (af released). */
json_t *gl_types_output(gl_types *ts, gl_lreq *rq, const gl_type *t,
			json_t *af, int format_all, gl_err *err);
/* The same for the artifact given as its n members (ljson.h; nothing
 * taken), the result appended to b as JSON text (jtext.h), exactly what
 * json_dumps of gl_types_output's value gives; 0 or -1 + err (b as it
 * was). */
struct gl_member;
int gl_types_output_text(gl_types *ts, gl_lreq *rq, const gl_type *t,
			 const struct gl_member *m, int n, int format_all,
			 gl_sb *b, gl_err *err);

/* Call a hook if the type defines it. args is a JSON array of the hook's
 * extra arguments (may be NULL). For hooks that may change the artifact
 * (pre_create), *af_out receives the new artifact (new ref) or NULL. */
int gl_types_hook(gl_types *ts, gl_lreq *rq, const gl_type *t, enum gl_hook h,
		  const json_t *ctx, const json_t *af, const json_t *args,
		  json_t **af_out, gl_err *err);

/* pre_upload: blob = {size, md5, sha1, sha256, content_type}; the hook's
 * blob.read(offset, n) reads the uploaded bytes from path, at most
 * max_read bytes in all, within the first `readable` bytes. */
int gl_types_hook_upload(gl_types *ts, gl_lreq *rq, const gl_type *t,
			 const json_t *ctx, const json_t *af,
			 const char *field, const char *key,
			 const json_t *blob, const char *path,
			 int64_t max_read, int64_t readable, gl_err *err);
/* A folder's select_location hook: *key = the chosen key (malloc'ed) or
 * NULL when the hook chose none. */
int gl_types_select_location(gl_types *ts, gl_lreq *rq, const gl_type *t,
			     const char *field, const json_t *ctx,
			     const json_t *af, const json_t *request,
			     char **key, gl_err *err);

#endif
