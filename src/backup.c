/* backup.c - `glared backup` and `glared restore` (see backup.h). */
#include "backup.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "meta.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

/* blobs whose data is a file of the local store, by content address */
#define FILE_STORES "('file', 'filesystem')"

static int is_postgres(const char *conn)
{
	return conn && (!strncmp(conn, "postgresql://", 13) ||
			!strncmp(conn, "postgres://", 11));
}

static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = (size_t)snprintf(buf, sizeof buf, "%s", path);

	if (n >= sizeof buf)
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0750) < 0 && errno != EEXIST ? -1 : 0;
}

static int dir_empty_or_absent(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return errno == ENOENT;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* Copy one database to another file with the online backup API: a
 * consistent snapshot even while the server writes (one step holds one
 * read transaction from the first page to the last). */
static int db_copy(const char *from, const char *to, int readonly_src,
		   gl_err *err)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b;
	int rc;

	rc = sqlite3_open_v2(from, &src,
			     readonly_src ? SQLITE_OPEN_READONLY
					  : SQLITE_OPEN_READWRITE,
			     NULL);
	if (rc != SQLITE_OK) {
		gl_fail(err, 500, NULL, "open %s: %s", from,
			src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	rc = sqlite3_open_v2(to, &dst,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		gl_fail(err, 500, NULL, "open %s: %s", to,
			dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(dst, 10000);
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		gl_fail(err, 500, NULL, "backup %s: %s", to,
			sqlite3_errmsg(dst));
		rc = SQLITE_ERROR;
		goto out;
	}
	for (int tries = 0; tries < 100; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		sqlite3_sleep(100);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		gl_fail(err, 500, NULL, "copy %s to %s: %s", from, to,
			sqlite3_errmsg(dst));
		goto out;
	}
	rc = SQLITE_OK;
out:
	sqlite3_close(src);
	sqlite3_close(dst);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Copy a stored object, checking on the way that its bytes still hash to
 * its name (a backup of damaged data is worse than none). 0 ok, 1 the
 * source is gone, -1 failed (err). */
static int copy_object(const char *from, const char *to, const char *sha,
		       int64_t *bytes, gl_err *err)
{
	char tmp[PATH_MAX + 8], buf[1 << 16];
	int in, out, rc = -1;
	gl_digest *dg;
	gl_digest_hex hex;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		if (errno == ENOENT)
			return 1;
		gl_fail(err, 500, NULL, "open %s: %s", from, strerror(errno));
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.part", to);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		gl_fail(err, 500, NULL, "create %s: %s", tmp, strerror(errno));
		close(in);
		return -1;
	}
	dg = gl_digest_new();
	while ((n = read(in, buf, sizeof buf)) > 0) {
		gl_digest_update(dg, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n) {
			gl_fail(err, 500, NULL, "write %s: %s", tmp,
				strerror(errno));
			goto done;
		}
		*bytes += n;
	}
	if (n < 0) {
		gl_fail(err, 500, NULL, "read %s: %s", from, strerror(errno));
		goto done;
	}
	gl_digest_final(dg, &hex);
	if (sha && strcmp(hex.sha256, sha) != 0) {
		gl_fail(err, 500, NULL,
			"%s: content hashes to %s, not its name", from,
			hex.sha256);
		goto done;
	}
	if (fsync(out) < 0 || rename(tmp, to) < 0) {
		gl_fail(err, 500, NULL, "finish %s: %s", to, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	gl_digest_free(dg);
	close(in);
	close(out);
	if (rc)
		unlink(tmp);
	return rc;
}

static void object_path(char *out, size_t len, const char *root,
			const char *sha)
{
	snprintf(out, len, "%s/objects/%.2s/%s", root, sha, sha);
}

/* Every local object the database at path references; counts of blobs
 * kept elsewhere (S3) into *remote. */
static json_t *referenced(const char *path, int *remote, gl_err *err)
{
	static const char q[] =
		"SELECT location FROM blobs WHERE store IN " FILE_STORES
		" AND location IS NOT NULL"
		" UNION SELECT prev_location FROM blobs WHERE prev_store IN " FILE_STORES
		" AND prev_location IS NOT NULL";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	json_t *out = NULL;
	int rc;

	*remote = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
		gl_fail(err, 500, NULL, "read %s: %s", path,
			sqlite3_errmsg(db));
		goto out;
	}
	out = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(out,
				      json_string(
					      (const char *)
						      sqlite3_column_text(st,
									  0)));
	if (rc != SQLITE_DONE) {
		gl_fail(err, 500, NULL, "read %s: %s", path,
			sqlite3_errmsg(db));
		json_decref(out);
		out = NULL;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM blobs WHERE store = "
			       "'s3'",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		*remote = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* Copy the objects of list from root `from` to root `to`. Returns the
 * number missing at the source, or -1 (err). */
static int copy_objects(const json_t *list, const char *from, const char *to,
			int64_t *bytes, int *copied, gl_err *err)
{
	size_t i;
	json_t *v;
	int missing = 0;

	json_array_foreach(list, i, v) {
		const char *sha = json_string_value(v);
		char src[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
		struct stat st;
		int rc;

		if (!sha || !gl_store_valid_name(sha))
			continue; /* not a content address: nothing to copy */
		object_path(src, sizeof src, from, sha);
		object_path(dst, sizeof dst, to, sha);
		if (stat(dst, &st) == 0)
			continue; /* content-addressed: same name, same bytes */
		snprintf(dir, sizeof dir, "%s/objects/%.2s", to, sha);
		if (mkdirs(dir) < 0) {
			gl_fail(err, 500, NULL, "mkdir %s: %s", dir,
				strerror(errno));
			return -1;
		}
		rc = copy_object(src, dst, sha, bytes, err);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			gl_warn("backup: object %s is gone from the store",
				sha);
			missing++;
		} else {
			(*copied)++;
		}
	}
	return missing;
}

static int write_manifest(const char *dest, const gl_conf *conf, int objects,
			  int64_t bytes, int remote)
{
	char path[PATH_MAX], now[32];
	json_t *m;
	int rc;

	gl_iso8601(gl_now_us(), now);
	m = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:i, s:I, s:i}", "format",
		      "glared-backup-1", "glared", GLARED_VERSION, "config",
		      conf->path, "created_at", now, "database", "glare.db",
		      "objects", objects, "object_bytes", (json_int_t)bytes,
		      "s3_blobs_not_included", remote);
	snprintf(path, sizeof path, "%s/MANIFEST.json", dest);
	rc = json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(m);
	return rc;
}

int gl_backup(gl_conf *conf, const char *dest)
{
	char db_dst[PATH_MAX], blobs[PATH_MAX];
	gl_err err = { 0 };
	char *db_src;
	int rc = 1;

	if (is_postgres(conf->db_connection)) {
		fprintf(stderr,
			"glared backup: the database is PostgreSQL: use "
			"pg_dump (see docs/operations.md, \"Backup\"); "
			"this command backs up sqlite deployments\n");
		return 2;
	}
	db_src = gl_meta_sqlite_path(conf->db_connection, &err);
	if (!db_src) {
		fprintf(stderr, "glared backup: %s\n", err.msg);
		return 1;
	}
	if (access(db_src, R_OK) < 0) {
		fprintf(stderr, "glared backup: database %s: %s\n", db_src,
			strerror(errno));
		free(db_src);
		return 1;
	}
	if (!dir_empty_or_absent(dest)) {
		fprintf(stderr, "glared backup: %s exists and is not empty\n",
			dest);
		free(db_src);
		return 1;
	}
	snprintf(db_dst, sizeof db_dst, "%s/glare.db", dest);
	snprintf(blobs, sizeof blobs, "%s/blobs", dest);
	if (mkdirs(blobs) < 0) {
		fprintf(stderr, "glared backup: mkdir %s: %s\n", blobs,
			strerror(errno));
		free(db_src);
		return 1;
	}
	/* An artifact deleted between the snapshot and the copy of its
	 * object leaves the snapshot naming a removed object: snapshot
	 * again (the new one no longer names it). */
	for (int attempt = 1; attempt <= 5; attempt++) {
		int64_t bytes = 0;
		int copied = 0, remote = 0, missing;
		json_t *list;

		unlink(db_dst);
		if (db_copy(db_src, db_dst, 1, &err) < 0)
			break;
		list = referenced(db_dst, &remote, &err);
		if (!list)
			break;
		missing = copy_objects(list, conf->filesystem_store_datadir,
				       blobs, &bytes, &copied, &err);
		if (missing < 0) {
			json_decref(list);
			break;
		}
		if (missing > 0) {
			json_decref(list);
			gl_fail(&err, 500, NULL,
				"%d referenced object(s) "
				"kept disappearing from the store",
				missing);
			continue;
		}
		if (write_manifest(dest, conf, (int)json_array_size(list),
				   bytes, remote) < 0) {
			gl_fail(&err, 500, NULL,
				"cannot write %s/MANIFEST.json", dest);
			json_decref(list);
			break;
		}
		printf("backup of %s in %s: database and %zu object(s), %lld "
		       "byte(s) copied now\n",
		       db_src, dest, json_array_size(list), (long long)bytes);
		if (remote)
			printf("note: %d blob(s) live in S3 and are not in this "
			       "backup (see docs/operations.md)\n",
			       remote);
		json_decref(list);
		rc = 0;
		break;
	}
	if (rc)
		fprintf(stderr, "glared backup: %s\n", err.msg);
	free(db_src);
	return rc;
}

int gl_restore(gl_conf *conf, const char *src, int force)
{
	char db_src[PATH_MAX], blobs[PATH_MAX];
	char manifest[PATH_MAX];
	gl_err err = { 0 };
	json_t *list;
	struct stat st;
	int64_t bytes = 0;
	int copied = 0, remote = 0, missing, rc = 1;
	char *db_dst;

	if (is_postgres(conf->db_connection)) {
		fprintf(stderr, "glared restore: the database is PostgreSQL: "
				"use pg_restore (see docs/operations.md)\n");
		return 2;
	}
	snprintf(manifest, sizeof manifest, "%s/MANIFEST.json", src);
	snprintf(db_src, sizeof db_src, "%s/glare.db", src);
	snprintf(blobs, sizeof blobs, "%s/blobs", src);
	if (stat(manifest, &st) < 0 || stat(db_src, &st) < 0) {
		fprintf(stderr,
			"glared restore: %s is not a glared backup (no "
			"MANIFEST.json and glare.db)\n",
			src);
		return 1;
	}
	db_dst = gl_meta_sqlite_path(conf->db_connection, &err);
	if (!db_dst) {
		fprintf(stderr, "glared restore: %s\n", err.msg);
		return 1;
	}
	if (stat(db_dst, &st) == 0 && st.st_size > 0 && !force) {
		fprintf(stderr,
			"glared restore: database %s exists: stop the "
			"server and add --force to replace it\n",
			db_dst);
		free(db_dst);
		return 1;
	}
	list = referenced(db_src, &remote, &err);
	if (!list)
		goto out;
	/* objects first: the database must never name an absent object */
	if (mkdirs(conf->filesystem_store_datadir) < 0) {
		gl_fail(&err, 500, NULL, "mkdir %s: %s",
			conf->filesystem_store_datadir, strerror(errno));
		goto out;
	}
	missing = copy_objects(list, blobs, conf->filesystem_store_datadir,
			       &bytes, &copied, &err);
	if (missing != 0) {
		if (missing > 0)
			gl_fail(&err, 500, NULL,
				"%d object(s) missing from the "
				"backup",
				missing);
		goto out;
	}
	{
		char *slash = strrchr(db_dst, '/');
		if (slash && slash != db_dst) {
			*slash = '\0';
			if (mkdirs(db_dst) < 0) {
				gl_fail(&err, 500, NULL, "mkdir %s: %s",
					db_dst, strerror(errno));
				*slash = '/';
				goto out;
			}
			*slash = '/';
		}
	}
	if (db_copy(db_src, db_dst, 1, &err) < 0)
		goto out;
	printf("restored %s into %s: %zu object(s), %lld byte(s) copied\n",
	       src, db_dst, json_array_size(list), (long long)bytes);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "glared restore: %s\n", err.msg);
	json_decref(list);
	free(db_dst);
	return rc;
}
