/* main.c - the glared command line: serve, db upgrade, scrub, verify,
 * console, check-types.
 *
 * Parses the command and its options, loads the configuration, fills in
 * install-relative defaults (types/ and lua/ next to the binary) and hands
 * over to the unit that does the work.
 */
#include "conf.h"
#include "log.h"
#include "server.h"
#include "tools.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: glared <command> [options]\n"
		"\n"
		"commands:\n"
		"  serve        serve the Glare v1 API  [--host H] [--port P]\n"
		"  db upgrade   create or migrate the metadata schema\n"
		"  scrub        purge artifacts left deleted  [--daemon]\n"
		"  verify       re-check external blobs  [--daemon] [--interval S]\n"
		"  console      Lua console  [-e CODE | SCRIPT [ARGS]] [--attach]\n"
		"  check-types  load types, print their schemas  [--types-path P]\n"
		"  version      print the version\n"
		"\n"
		"common options:\n"
		"  --config-file F   Glare INI configuration (default: none)\n");
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* types/ and lua/ live beside the binary in a source tree (./glared,
 * build/glared, build/asan/glared) or under ../share/glared when installed. */
static char *find_beside_binary(const char *sub)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	static const char *const ups[] = { "", "/..", "/../..",
					   "/../share/glared" };

	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
		snprintf(path, sizeof path, "%s%s/%s", exe, ups[i], sub);
		if (is_dir(path)) {
			char *r = realpath(path, NULL);
			if (r)
				return r;
		}
	}
	return NULL;
}

static void fill_paths(gl_conf *c)
{
	if (!c->types_path) {
		c->types_path = find_beside_binary("types");
		if (!c->types_path)
			c->types_path = strdup("/usr/share/glared/types");
	}
	if (!c->lua_path) {
		c->lua_path = find_beside_binary("lua");
		if (!c->lua_path)
			c->lua_path = strdup("/usr/share/glared/lua");
	}
}

int main(int argc, char **argv)
{
	const char *cmd, *config = NULL, *host = NULL, *types_path = NULL;
	int port = -1, i, nrest = 0, script_seen = 0;
	char **rest = calloc((size_t)argc + 1, sizeof *rest);
	char err[1024];
	gl_conf *conf;
	int rc;

	gl_log_init("glared", 0);
	if (argc < 2 || !rest) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("glared %s (%s)\n", GLARED_VERSION, LUA_RELEASE);
		return 0;
	}
	/* the console takes its own arguments after the script name */
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		/* after a console script's name, every argument is the
		 * script's own, even one that looks like ours */
		if (script_seen) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--config-file") && i + 1 < argc)
			config = argv[++i];
		else if (!strncmp(a, "--config-file=", 14))
			config = a + 14;
		else if (!strcmp(a, "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(a, "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(a, "--types-path") && i + 1 < argc)
			types_path = argv[++i];
		else {
			if (!strcmp(cmd, "console") && a[0] != '-' &&
			    !(nrest > 0 && (!strcmp(rest[nrest - 1], "-e") ||
					    !strcmp(rest[nrest - 1], "--timeout"))))
				script_seen = 1;
			rest[nrest++] = argv[i];
		}
	}
	conf = gl_conf_load(config, err, sizeof err);
	if (!conf) {
		fprintf(stderr, "glared: %s\n", err);
		free(rest);
		return 1;
	}
	if (types_path) {
		free(conf->types_path);
		conf->types_path = strdup(types_path);
	}
	fill_paths(conf);
	gl_log_set_debug(conf->debug);

	if (!strcmp(cmd, "serve")) {
		rc = gl_serve(conf, host, port);
	} else if (!strcmp(cmd, "db")) {
		if (nrest < 1 || strcmp(rest[0], "upgrade") != 0) {
			fprintf(stderr, "glared: usage: glared db upgrade "
					"--config-file F\n");
			rc = 2;
		} else {
			rc = gl_tool_db_upgrade(conf);
		}
	} else if (!strcmp(cmd, "check-types")) {
		rc = gl_tool_check_types(conf);
	} else if (!strcmp(cmd, "scrub")) {
		rc = gl_tool_scrub(conf, nrest, rest);
	} else if (!strcmp(cmd, "verify")) {
		rc = gl_tool_verify(conf, nrest, rest);
	} else if (!strcmp(cmd, "console")) {
		rc = gl_tool_console(conf, nrest, rest);
	} else {
		fprintf(stderr, "glared: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = 2;
	}
	gl_conf_free(conf);
	free(rest);
	return rc;
}
