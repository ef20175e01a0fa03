/* blob.c - a blob of a loaded artifact: resolving field[/key], the bytes
 * it may hold (field limit, folder space, quotas), the store a type
 * writes to, the same_sha256 rule, and putting back a replaced record
 * (blob.h). Shared by uploads, downloads and locations.
 */
#include "blob.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Checksum names and their lengths in hex digits: md5, sha1, sha256. */
const char *const gl_blob_sum_names[3] = { "md5", "sha1", "sha256" };
const size_t gl_blob_sum_len[3] = { 32, 40, 64 };

/* ---- shared checks ------------------------------------------------------- */

void gl_target_clear(gl_target *tg)
{
	gl_af_clear(&tg->af);
	memset(tg, 0, sizeof *tg);
}

json_t *gl_blob_record(const json_t *doc, const gl_field *f, const char *key)
{
	json_t *v = json_object_get(doc, f->name);
	if (!json_is_object(v))
		return NULL;
	if (f->kind == GK_FOLDER)
		return json_object_get(v, key);
	return v;
}

/* Resolve field/key on a loaded artifact (the 400s of E8/E11 in
 * docs/glare-contract.md "Status codes by endpoint"). */
int gl_blob_resolve(gl_target *tg, const char *field, const char *key,
		    int has_key, int need_key, gl_err *err)
{
	const gl_type *t = tg->af.type;

	tg->field = field;
	tg->f = gl_type_field(t, field);
	if (!tg->f)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown field '%s' for artifact type %s",
			       field, t->name);
	if (tg->f->kind != GK_BLOB && tg->f->kind != GK_FOLDER)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s' is not a blob field", field);
	if (tg->f->kind == GK_BLOB && has_key)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s' is a blob, not a blob dict: no key "
			       "expected",
			       field);
	if (tg->f->kind == GK_FOLDER) {
		if (!has_key || !key || !*key) {
			if (need_key)
				return gl_fail(err, 400, "BadRequest",
					       "Field '%s' is a blob dict: a key "
					       "is required",
					       field);
		} else {
			size_t n = strlen(key);
			if (n < 1 || (int)n > tg->f->max_key_length)
				return gl_fail(err, 400, "BadRequest",
					       "Key of '%s' must have 1 to %d "
					       "characters",
					       field, tg->f->max_key_length);
			if (!gl_utf8_valid(key, n, 0))
				return gl_fail(err, 400, "BadRequest",
					       "Key of '%s' is not valid UTF-8 "
					       "(4-byte characters are not "
					       "allowed)",
					       field);
			tg->key = key;
		}
	}
	tg->cur = tg->key || tg->f->kind == GK_BLOB
			  ? gl_blob_record(tg->af.doc, tg->f, tg->key)
			  : NULL;
	return 0;
}

/* Bytes this blob may hold: field limit, folder space, quotas. Inside the
 * write transaction so concurrent uploads cannot both take the last
 * bytes. */
int gl_blob_allowed(gl_engine *e, const gl_target *tg, const json_t *doc,
		    int64_t *limit, char *why, size_t whylen, gl_err *err)
{
	const gl_field *f = tg->f;
	const char *owner = gl_json_str(doc, "owner");
	const char *scopes[2] = { NULL, tg->af.type->name };
	int64_t cur_size = 0;
	json_t *cur = gl_blob_record(doc, f, tg->key);

	if (cur)
		cur_size = json_integer_value(
			json_object_get(cur,
					gl_streq(gl_json_str(cur, "status"),
						 "saving")
						? "reserved"
						: "size"));
	*limit = f->max_blob_size;
	snprintf(why, whylen,
		 "the maximum blob size of field '%s' (%lld bytes)", f->name,
		 (long long)f->max_blob_size);
	if (f->kind == GK_FOLDER) {
		int64_t used = 0;
		json_t *folder = json_object_get(doc, f->name), *b;
		const char *k;
		json_object_foreach(folder, k, b) {
			if (tg->key && !strcmp(k, tg->key))
				continue;
			used += json_integer_value(
				json_object_get(b,
						gl_streq(gl_json_str(b,
								     "status"),
							 "saving")
							? "reserved"
							: "size"));
		}
		if (f->max_folder_size - used < *limit) {
			*limit = f->max_folder_size - used;
			snprintf(why, whylen,
				 "the space left in blob dict '%s' (%lld of %lld "
				 "bytes)",
				 f->name, (long long)*limit,
				 (long long)f->max_folder_size);
		}
	}
	for (int i = 0; i < 2; i++) {
		int64_t q, used;
		if (gl_core_quota(e, owner, "max_uploaded_data", scopes[i], &q,
				  err) < 0)
			return -1;
		if (q < 0)
			continue;
		if (gl_meta_used_bytes(e->meta, owner, scopes[i], &used, err) <
		    0)
			return -1;
		used -= cur_size; /* the data being replaced is released */
		if (q - used < *limit) {
			*limit = q - used;
			snprintf(why, whylen,
				 "the uploaded data quota%s%s of project %s "
				 "(%lld bytes left)",
				 scopes[i] ? " for type " : "",
				 scopes[i] ? scopes[i] : "", owner,
				 (long long)(*limit < 0 ? 0 : *limit));
		}
	}
	return 0;
}

const char *gl_blob_store_of(gl_engine *e, const gl_type *t)
{
	const gl_type_conf *tc = gl_conf_type(e->conf, t->name);
	const char *s = tc->default_store ? tc->default_store
					  : e->conf->default_store;
	if (!strcasecmp(s, "database") || !strcasecmp(s, "sql"))
		return "database";
	if (!strcasecmp(s, "s3"))
		return "s3";
	return "file";
}

/* The folder demands one sha256 for all its blobs (mirrors). */
int gl_blob_same_sha_ok(const gl_target *tg, const json_t *doc,
			const char *sha, gl_err *err)
{
	json_t *folder, *b;
	const char *k;

	if (tg->f->kind != GK_FOLDER || !tg->f->same_sha256)
		return 0;
	folder = json_object_get(doc, tg->f->name);
	json_object_foreach(folder, k, b) {
		const char *s = gl_json_str(b, "sha256");
		if (tg->key && !strcmp(k, tg->key))
			continue;
		if (!gl_streq(gl_json_str(b, "status"), "active") || !s)
			continue;
		if (strcmp(s, sha) != 0)
			return gl_fail(err, 409, "Conflict",
				       "Blob dict '%s' holds copies of one blob: "
				       "key '%s' has sha256 %s, this one %s",
				       tg->f->name, k, s, sha);
	}
	return 0;
}

/* Put back the record an upload or fetch replaced (or drop the new key). */
int gl_blob_restore_prev(gl_engine *e, const char *id, const char *field,
			 const char *key, const json_t *prev, gl_err *err)
{
	if (json_is_object(prev))
		return gl_meta_blob_set(e->meta, id, field, key ? key : "",
					prev, err);
	return gl_meta_blob_delete(e->meta, id, field, key ? key : "", err);
}
