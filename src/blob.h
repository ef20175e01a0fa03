/* blob.h - a blob of a loaded artifact (blob.c): resolving field[/key],
 * the bytes it may hold, the store of a type, the same_sha256 rule,
 * putting back a replaced record. Shared by upload.c, download.c and
 * location.c; private to the engine's units.
 *
 * Uses core.h.
 */
#ifndef GL_BLOB_H
#define GL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* Checksum names and their lengths in hex digits: md5, sha1, sha256. */
extern const char *const gl_blob_sum_names[3];
extern const size_t gl_blob_sum_len[3];

/* A blob (field[/key]) of a loaded artifact. */
typedef struct gl_target {
	gl_af af;
	const gl_field *f;
	const char *field;
	const char *key; /* NULL for a plain blob */
	json_t *cur;     /* current record (borrowed from af.doc) or NULL */
} gl_target;

void gl_target_clear(gl_target *tg);
json_t *gl_blob_record(const json_t *doc, const gl_field *f, const char *key);
/* Resolve field/key on a loaded artifact (the 400s of E8/E11 in
 * docs/glare-contract.md "Status codes by endpoint"). */
int gl_blob_resolve(gl_target *tg, const char *field, const char *key,
		    int has_key, int need_key, gl_err *err);
/* Bytes the blob may hold: field limit, folder space, quotas (inside the
 * write transaction so concurrent uploads cannot take the same bytes). */
int gl_blob_allowed(gl_engine *e, const gl_target *tg, const json_t *doc,
		    int64_t *limit, char *why, size_t whylen, gl_err *err);
/* "file", "database" or "s3" for a type. */
const char *gl_blob_store_of(gl_engine *e, const gl_type *t);
/* A same_sha256 folder takes only copies of one blob. */
int gl_blob_same_sha_ok(const gl_target *tg, const json_t *doc,
			const char *sha, gl_err *err);
/* Put back the record an upload or fetch replaced (or drop the new key). */
int gl_blob_restore_prev(gl_engine *e, const char *id, const char *field,
			 const char *key, const json_t *prev, gl_err *err);

#endif
