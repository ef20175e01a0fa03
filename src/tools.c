/* tools.c - the offline commands: db upgrade, check-types, scrub, verify
 * (see tools.h). Each builds what it needs (engine, store, types) from the
 * configuration and runs in the foreground.
 */
#include "tools.h"
#include "console.h"
#include "engine.h"
#include "log.h"
#include "ltype.h"
#include "meta.h"
#include "policy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
	stop = sig;
}

int gl_tool_db_upgrade(gl_conf *conf)
{
	gl_err err = { 0 };
	gl_meta *m = gl_meta_open(conf, 1, &err);

	if (!m) {
		fprintf(stderr, "glared: %s\n", err.msg);
		return 1;
	}
	printf("database schema at version %d\n", gl_meta_schema_version(m));
	gl_meta_close(m);
	return 0;
}

/* One file: a copy of the configuration naming only it. */
static gl_types *load_file(const gl_conf *conf, const char *file, gl_err *err)
{
	gl_conf c = *conf;
	char *dir = strdup(file), *name, *dot, *slash;
	gl_strlist one;
	gl_types *ts;

	if (!dir) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	slash = strrchr(dir, '/');
	name = slash ? slash + 1 : dir;
	dot = strrchr(name, '.');
	if (!dot || strcmp(dot, ".lua") != 0) {
		gl_fail(err, 400, NULL, "%s: not a .lua type file", file);
		free(dir);
		return NULL;
	}
	*dot = '\0';
	one.v = &name;
	one.n = 1;
	c.enabled_artifact_types = one;
	c.custom_artifact_types_modules.n = 0;
	if (slash) {
		*slash = '\0';
		c.types_path = slash == dir ? "/" : dir;
	} else {
		c.types_path = ".";
	}
	ts = gl_types_load(&c, err);
	free(dir);
	return ts;
}

/* Add the schemas of ts to all; -1 (printed) if one cannot be made. */
static int add_schemas(json_t *all, gl_types *ts)
{
	for (int i = 0; i < gl_types_count(ts); i++) {
		const gl_type *t = gl_types_at(ts, i);
		gl_err err = { 0 };
		json_t *sch = gl_types_schema(ts, NULL, t, &err);
		if (!sch) {
			fprintf(stderr, "glared check-types: %s\n", err.msg);
			return -1;
		}
		json_object_set_new(all, t->name, sch);
	}
	return 0;
}

int gl_tool_check_types(gl_conf *conf, int nfiles, char **files, int schemas)
{
	json_t *all = json_object();
	int ok = 0, bad = 0;

	/* the runtime also logs a load error; here it is printed once */
	gl_log_set_min(GL_LOG_ERROR);

	if (nfiles == 0) {
		gl_err err = { 0 };
		gl_types *ts = gl_types_load(conf, &err);
		if (!ts) {
			fprintf(stderr, "glared check-types: %s\n", err.msg);
			json_decref(all);
			return 1;
		}
		ok = gl_types_count(ts) - 1; /* without the "all" type */
		if (add_schemas(all, ts) < 0)
			bad++;
		gl_types_unref(ts);
	}
	for (int i = 0; i < nfiles; i++) {
		gl_err err = { 0 };
		gl_types *ts = load_file(conf, files[i], &err);
		if (!ts) {
			fprintf(stderr, "glared check-types: %s\n", err.msg);
			bad++;
			continue;
		}
		if (add_schemas(all, ts) < 0)
			bad++;
		else
			ok++;
		gl_types_unref(ts);
	}
	if (schemas) {
		char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("%s\n", s ? s : "{}");
		free(s);
	}
	if (nfiles)
		printf("%d of %d type file(s) OK\n", ok, nfiles);
	else
		printf("%d type(s) OK from %s\n", ok, conf->types_path);
	json_decref(all);
	return bad ? 1 : 0;
}

typedef struct tool_env {
	struct event_base *base;
	gl_policy *pol;
	gl_engine *e;
} tool_env;

static void env_close(tool_env *te)
{
	gl_engine_free(te->e);
	gl_policy_free(te->pol);
	if (te->base)
		event_base_free(te->base);
}

/* An engine of the tool's own; on failure said on stderr and nothing is
 * left open. stoppable: SIGTERM and SIGINT end the tool's loop. */
static int env_open(gl_conf *conf, tool_env *te, int stoppable)
{
	gl_err err = { 0 };
	gl_err perr;

	memset(te, 0, sizeof *te);
	te->base = event_base_new();
	te->pol = gl_policy_new();
	if (conf->policy_file && *conf->policy_file &&
	    gl_policy_load_file(te->pol, conf->policy_file, &perr) < 0) {
		fprintf(stderr, "glared: policy: %s\n", perr.msg);
		env_close(te);
		return -1;
	}
	te->e = gl_engine_new(conf, te->pol, te->base, &err);
	if (!te->e) {
		fprintf(stderr, "glared: %s\n", err.msg);
		env_close(te);
		return -1;
	}
	if (stoppable) {
		signal(SIGTERM, on_stop);
		signal(SIGINT, on_stop);
	}
	return 0;
}

static void sleep_until_stop(int seconds)
{
	for (int i = 0; i < seconds && !stop; i++)
		sleep(1);
}

int gl_tool_scrub(gl_conf *conf, int daemon)
{
	tool_env te;
	int rc = 0;

	if (env_open(conf, &te, 1) < 0)
		return 1;
	do {
		gl_err err = { 0 };
		int n, total = 0;
		/* batches of scrub_pool_size until nothing is left */
		while (!stop &&
		       (n = gl_art_scrub(te.e, conf->scrub_time,
					 conf->scrub_pool_size, &err)) > 0)
			total += n;
		if (err.status) {
			gl_error("scrub: %s", err.msg);
			rc = 1;
		}
		gl_info("scrub: %d artifact(s) purged", total);
		if (daemon)
			sleep_until_stop(conf->wakeup_time);
	} while (daemon && !stop);
	env_close(&te);
	return rc;
}

int gl_tool_verify(gl_conf *conf, int daemon, int interval, int min_age)
{
	tool_env te;
	int rc = 0;

	/* a daemon (one per node, maybe several nodes) skips what any
	 * verifier checked within its own period */
	if (min_age < 0)
		min_age = daemon ? interval : 0;
	/* types with their own schedule are checked on it */
	for (int i = 0; i < conf->ntypes; i++) {
		int ci = conf->types[i].external_location_check_interval;
		if (ci > 0 && ci < interval)
			interval = ci;
	}
	if (env_open(conf, &te, 1) < 0)
		return 1;
	do {
		gl_err err = { 0 };
		int changed = 0;
		int n = gl_download_verify_external(te.e, 1000, min_age,
						    &changed, &err);
		if (n < 0) {
			gl_error("verify: %s", err.msg);
			rc = 1;
		} else {
			printf("verified %d external blob(s), %d changed or gone\n",
			       n, changed);
			fflush(stdout);
			if (changed && !daemon)
				rc = 3;
		}
		if (daemon)
			sleep_until_stop(interval);
	} while (daemon && !stop);
	env_close(&te);
	return rc;
}

int gl_tool_console(gl_conf *conf, const gl_console_opts *o)
{
	tool_env te;
	int rc;

	/* attached, the server's engine does the work: build none here */
	if (o->attach)
		return gl_console_run_attached(conf, o);
	/* the engine's info lines would interleave with the REPL */
	if (!conf->debug)
		gl_log_set_min(GL_LOG_WARN);
	if (env_open(conf, &te, 0) < 0)
		return 1;
	rc = gl_console_run_direct(conf, te.e, o);
	env_close(&te);
	return rc;
}
