/* fuzz_filter.c - libFuzzer harness for the listing query language: the
 * filter, sort, limit and marker grammar of art_list.c, the type runtime's
 * coercion of filter values, and the SQL meta_sql.c and meta_sqlite.c
 * compile it to, run against a real in-memory sqlite store holding a few
 * artifacts.
 *
 * Input: byte 0 picks the type (sample_artifact or all), byte 1 the
 * caller (a member, an admin, anonymous), the rest is a query string
 * split like a request's ("&" between parameters, the first "=" between
 * name and value; no percent-decoding, so any byte reaches the parser).
 * A listing must answer 200 or a 4xx: a 5xx for a query is a bug (bad
 * SQL, a coercion the runtime did not expect), and aborts.
 *
 * The engine is set up once per process from the checkout's test types
 * (tests/types: sample_artifact) and Lua library (GLARED_ROOT, default the current directory); the file
 * store it opens is removed at once (a listing never touches it, and
 * libFuzzer may end the process without running exit handlers).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth.h"
#include "engine.h"
#include "log.h"

#define MAX_PARAMS 64

static gl_engine *engine;
static gl_ctx member, admin, anon;
static char dir[64];

/* The store made these two; nothing is ever written into them. */
static void cleanup(void)
{
	char p[96];

	snprintf(p, sizeof p, "%s/tmp", dir);
	rmdir(p);
	snprintf(p, sizeof p, "%s/objects", dir);
	rmdir(p);
	rmdir(dir);
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_filter: %s: %s\n", what, detail);
	exit(1);
}

static void create(const char *body)
{
	json_t *b = json_loads(body, 0, NULL), *out = NULL;
	gl_err err = { 0 };

	if (!b || gl_art_create(engine, &member, "sample_artifact", b, &out,
				&err) < 0)
		die("creating a fixture artifact", err.msg);
	json_decref(out);
	json_decref(b);
}

static void setup(void)
{
	const char *env = getenv("GLARED_ROOT");
	char root[PATH_MAX], conf_path[128];
	gl_conf *conf;
	gl_err e = { 0 };
	FILE *f;

	/* absolute: relative paths in a configuration are taken from its
	 * directory, a temporary one here */
	if (!realpath(env ? env : ".", root))
		die("GLARED_ROOT", env ? env : ".");
	snprintf(dir, sizeof dir, "/tmp/glfuzz.XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp", dir);
	snprintf(conf_path, sizeof conf_path, "%s/glare.conf", dir);
	f = fopen(conf_path, "w");
	if (!f)
		die("writing", conf_path);
	fprintf(f,
		"[DEFAULT]\nenabled_artifact_types = sample_artifact\n"
		"types_path = %s/tests/types\nlua_path = %s/lua\n"
		"[database]\nconnection = sqlite://\n"
		"[glance_store]\nfilesystem_store_datadir = %s\n",
		root, root, dir);
	fclose(f);
	gl_log_init("fuzz_filter", 0);
	gl_log_set_min(GL_LOG_ERROR);
	conf = gl_conf_load(conf_path, &e);
	unlink(conf_path);
	if (!conf)
		die("configuration", e.msg);
	engine = gl_engine_new(conf, gl_policy_new(), event_base_new(), &e);
	cleanup();
	if (!engine)
		die("engine", e.msg);

	member.user_id = strdup("user1");
	member.project_id = strdup("project1");
	member.roles = calloc(1, sizeof *member.roles);
	member.roles[0] = strdup("member");
	member.nroles = 1;
	gl_ctx_admin(&admin, "fuzz");
	anon.anonymous = 1;
	anon.read_only = 1;

	create("{\"name\": \"alpha\", \"version\": \"1.0.0\", \"str1\": \"linux\","
	       " \"int1\": 10, \"float1\": 1.5, \"bool1\": true,"
	       " \"list_of_str\": [\"x\", \"y\"], \"dict_of_str\": {\"k1\": \"a\"},"
	       " \"dict_of_int\": {\"k\": 3}, \"tags\": [\"t1\", \"t2\"],"
	       " \"metadata\": {\"m\": \"v\"}, \"link1\": \"http://a.example/x\"}");
	create("{\"name\": \"alpha\", \"version\": \"2.0.0-beta.1\","
	       " \"str1\": \"windows\", \"int1\": 20, \"list_of_int\": [1, 2]}");
	create("{\"name\": \"beta\", \"version\": \"0.1.0+build.5\","
	       " \"str1\": \"Lin%_x\", \"float1\": -2.25, \"tags\": [\"t3\"],"
	       " \"description\": \"\\u00e9t\\u00e9\"}");
	create("{\"name\": \"gamma\"}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { "sample_artifact", "all" };
	const gl_ctx *ctxs[] = { &member, &admin, &anon };
	gl_kv kv[MAX_PARAMS];
	char *q, *p, *amp;
	int n = 0, rc;
	json_t *out = NULL;
	gl_err err = { 0 };

	if (!engine)
		setup();
	if (size < 2)
		return 0;
	q = malloc(size - 1);
	memcpy(q, data + 2, size - 2);
	q[size - 2] = '\0';
	for (p = q; p && n < MAX_PARAMS; p = amp) {
		char *eq;
		amp = strchr(p, '&');
		if (amp)
			*amp++ = '\0';
		if (!*p)
			continue;
		eq = strchr(p, '=');
		if (eq)
			*eq++ = '\0';
		kv[n].name = p;
		kv[n].value = eq ? eq : "";
		n++;
	}
	rc = gl_art_list(engine, ctxs[data[1] % 3], types[data[0] % 2], kv, n,
			 &out, &err);
	if (rc < 0 && (err.status < 400 || err.status >= 500)) {
		fprintf(stderr, "fuzz_filter: status %d for a query: %s\n",
			err.status, err.msg);
		abort();
	}
	if (rc == 0 && !json_is_array(json_object_get(out, "artifacts"))) {
		fprintf(stderr, "fuzz_filter: a listing without artifacts\n");
		abort();
	}
	json_decref(out);
	free(q);
	return 0;
}
