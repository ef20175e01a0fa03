/* health.c - checks of the engine's parts (see health.h). */
#include "health.h"
#include "auth.h"
#include "core.h"
#include "engine.h"
#include "log.h"
#include "ltype.h"
#include "meta.h"
#include "policy.h"
#include "s3.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int report(json_t *reasons, const char *cls, const gl_err *err,
		  double t0, json_t *details)
{
	json_t *r = json_object();

	json_object_set_new(r, "class", json_string(cls));
	/* a backend's message (a database error) may be any bytes */
	json_object_set_new(r, "reason", gl_json_text(err ? err->msg : "OK"));
	if (!details)
		details = json_object();
	json_object_set_new(details, "us",
			    json_integer(
				    (json_int_t)((now_ms() - t0) * 1000)));
	json_object_set_new(r, "details", details);
	json_array_append_new(reasons, r);
	return err ? 1 : 0;
}

/* A real query: a cheap count that touches the artifacts table. */
static int check_db(gl_engine *e, json_t *reasons)
{
	gl_err err = { 0 };
	double t0 = now_ms();
	int64_t n = 0;
	const char *db = e->conf->db_connection;
	json_t *d = json_pack("{s:s, s:i}", "backend",
			      db && !strncmp(db, "postgres", 8) ? "postgresql"
								: "sqlite",
			      "schema_version",
			      gl_meta_schema_version(e->meta));

	if (gl_meta_count_artifacts(e->meta, "-healthcheck-", NULL, &n, &err) <
	    0)
		return report(reasons, "database", &err, t0, d);
	return report(reasons, "database", NULL, t0, d);
}

/* The local directory: a temp file written, synced and removed. Uploads
 * stage there even when blobs end up in S3. */
static int check_file_store(gl_engine *e, json_t *reasons)
{
	gl_err err = { 0 };
	gl_store_tmp t;
	double t0 = now_ms();
	struct statvfs sv;
	json_t *d = json_pack("{s:s}", "path", gl_store_dir(e->store));

	if (statvfs(gl_store_dir(e->store), &sv) == 0)
		json_object_set_new(d, "free_bytes",
				    json_integer((json_int_t)sv.f_bavail *
						 (json_int_t)sv.f_frsize));
	if (gl_store_tmp_create(e->store, &t, &err) < 0)
		return report(reasons, "store:file", &err, t0, d);
	if (gl_store_tmp_write(&t, "healthcheck", 11, &err) < 0 ||
	    gl_store_tmp_sync(&t, &err) < 0) {
		gl_store_tmp_discard(&t);
		return report(reasons, "store:file", &err, t0, d);
	}
	gl_store_tmp_discard(&t);
	return report(reasons, "store:file", NULL, t0, d);
}

/* S3: a HEAD of a key nobody writes; "not found" proves the endpoint,
 * the credentials and the bucket. */
static int check_s3(gl_engine *e, json_t *reasons)
{
	gl_err err = { 0 };
	double t0 = now_ms();
	json_t *d = json_pack("{s:s?, s:s?}", "endpoint",
			      e->conf->s3_store_host, "bucket",
			      e->conf->s3_store_bucket);

	if (gl_s3_head(e->s3, "healthcheck-probe", NULL, &err) < 0 &&
	    err.status != 404)
		return report(reasons, "store:s3", &err, t0, d);
	return report(reasons, "store:s3", NULL, t0, d);
}

/* A call into the type runtime (the library's own code, in the state of
 * the `all` meta-type). */
static int check_lua(gl_engine *e, json_t *reasons)
{
	gl_err err = { 0 };
	double t0 = now_ms();
	int64_t prefix = 0;
	char *suffix = NULL, *meta = NULL;
	json_t *d = json_pack("{s:i}", "types", gl_types_count(e->types) - 1);
	int rc = gl_types_version_key(e->types, NULL, "1.2.3-rc.1", &prefix,
				      &suffix, &meta, &err);

	free(suffix);
	free(meta);
	if (rc < 0)
		return report(reasons, "lua", &err, t0, d);
	if (prefix == 0) {
		gl_fail(&err, 500, NULL,
			"the Lua runtime gave a wrong answer");
		return report(reasons, "lua", &err, t0, d);
	}
	return report(reasons, "lua", NULL, t0, d);
}

int gl_health_check(gl_engine *e, json_t *reasons, const char **first_bad)
{
	int bad = 0;
	size_t n0 = json_array_size(reasons);

	bad += check_db(e, reasons);
	bad += check_file_store(e, reasons);
	if (e->s3)
		bad += check_s3(e, reasons);
	bad += check_lua(e, reasons);
	*first_bad = NULL;
	for (size_t i = n0; i < json_array_size(reasons); i++) {
		json_t *r = json_array_get(reasons, i);
		if (strcmp(json_string_value(json_object_get(r, "reason")),
			   "OK")) {
			*first_bad = json_string_value(
				json_object_get(r, "class"));
			break;
		}
	}
	return bad;
}

/* ---- glared check-config ------------------------------------------------ */

static int problem(const char *what, const char *msg)
{
	fprintf(stderr, "glared check-config: %s: %s\n", what, msg);
	return 1;
}

int gl_check_config(gl_conf *conf)
{
	gl_err err = { 0 };
	gl_policy *pol;
	gl_types *ts;
	gl_meta *m;
	gl_engine *e;
	struct event_base *base;
	gl_err perr;
	json_t *reasons;
	const char *bad;
	int rc = 0;

	if (conf->warnings)
		return problem(conf->path ? conf->path : "configuration",
			       "warnings above (unknown sections or options)");
	/* every problem is reported below, once */
	gl_log_set_min(GL_LOG_ERROR);
	ts = gl_types_load(conf, &err);
	if (!ts)
		return problem("types", err.msg);
	printf("types: %d loaded from %s\n", gl_types_count(ts) - 1,
	       conf->types_path);
	gl_types_unref(ts);
	pol = gl_policy_new();
	if (conf->policy_file && *conf->policy_file &&
	    gl_policy_load_file(pol, conf->policy_file, &perr) < 0) {
		rc = problem("policy file", perr.msg);
		gl_policy_free(pol);
		return rc;
	}
	if (conf->policy_file && *conf->policy_file)
		printf("policy: %s\n", conf->policy_file);
	m = gl_meta_open(conf, 0, &err);
	if (!m) {
		gl_policy_free(pol);
		return problem("database", err.msg);
	}
	gl_meta_close(m);
	base = event_base_new();
	e = gl_engine_new(conf, pol, base, &err);
	if (!e) {
		rc = problem("engine", err.msg);
	} else {
		reasons = json_array();
		if (gl_health_check(e, reasons, &bad) > 0) {
			size_t i;
			json_t *r;
			json_array_foreach(reasons, i, r) {
				const char *why = json_string_value(
					json_object_get(r, "reason"));
				if (strcmp(why, "OK"))
					rc = problem(json_string_value(
							     json_object_get(
								     r,
								     "class")),
						     why);
			}
		} else {
			size_t i;
			json_t *r;
			json_array_foreach(reasons, i, r)
				printf("%s: OK\n",
				       json_string_value(
					       json_object_get(r, "class")));
		}
		json_decref(reasons);
		gl_engine_free(e);
	}
	{
		gl_err aerr;
		gl_auth *au = gl_auth_new(conf, base, &aerr);

		if (!au)
			rc = problem("identity", aerr.msg);
		else
			printf("identity: flavor %s\n",
			       *conf->flavor ? conf->flavor : "trusted-auth");
		gl_auth_free(au);
	}
	gl_policy_free(pol);
	event_base_free(base);
	if (rc == 0)
		printf("configuration OK\n");
	return rc;
}
