/* cli.c - the glared command line (see cli.h).
 *
 * Every command has its own getopt_long table and usage text. Options are
 * parsed completely before anything else happens: `--help` prints the
 * usage and exits 0, an unknown option or a missing or malformed value
 * exits 2 naming it; in both cases no configuration is read, no database
 * opened, nothing purged or served.
 */
#include "cli.h"
#include "admin.h"
#include "backup.h"
#include "conf.h"
#include "console.h"
#include "health.h"
#include "log.h"
#include "server.h"
#include "tools.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>

/* clang-format off */
enum {
	O_HELP = 'h',
	O_CONFIG = 256, O_HOST, O_PORT, O_TYPES, O_DAEMON, O_INTERVAL,
	O_MINAGE, O_SCHEMAS, O_ATTACH, O_TIMEOUT, O_FORCE, O_EXEC, O_INTER,
	O_PROJECT,
};

#define OPT_CONFIG { "config-file", required_argument, NULL, O_CONFIG }
#define OPT_HELP { "help", no_argument, NULL, O_HELP }
#define OPT_END { NULL, 0, NULL, 0 }
/* clang-format on */

typedef struct args {
	const char *config;
	const char *host;
	int port;
	const char *types_path;
	int daemon, interval, min_age, schemas, force;
	gl_console_opts con;
	char **pos; /* positional arguments */
	int npos;
} args;

typedef struct command command;
struct command {
	const char *name;
	const char *synopsis; /* after "glared NAME " */
	const char *summary;  /* one line for `glared --help` */
	const char *options;  /* the option lines of its usage */
	const char *shortopts;
	const struct option *longopts;
	int min_pos, max_pos; /* positional arguments; -1: any number */
	int (*run)(const command *cmd, args *a, gl_conf *conf);
};

/* ---- the option tables --------------------------------------------------- */

/* clang-format off */
static const struct option serve_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	OPT_END
};
/* clang-format on */
static const struct option plain_opts[] = { OPT_CONFIG, OPT_HELP, OPT_END };
/* clang-format off */
static const struct option scrub_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "daemon", no_argument, NULL, O_DAEMON },
	OPT_END
};
static const struct option verify_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "daemon", no_argument, NULL, O_DAEMON },
	{ "interval", required_argument, NULL, O_INTERVAL },
	{ "min-age", required_argument, NULL, O_MINAGE },
	OPT_END
};
static const struct option types_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "types-path", required_argument, NULL, O_TYPES },
	{ "schemas", no_argument, NULL, O_SCHEMAS },
	OPT_END
};
static const struct option console_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "attach", optional_argument, NULL, O_ATTACH },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "project", required_argument, NULL, O_PROJECT },
	OPT_END
};
static const struct option restore_opts[] = {
	OPT_CONFIG, OPT_HELP,
	{ "force", no_argument, NULL, O_FORCE },
	OPT_END
};

#define CONFIG_HELP \
	"  --config-file F   the Glare INI configuration (default: none, " \
	"built-in defaults)\n"
/* clang-format on */

/* ---- commands -------------------------------------------------------------- */

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

/* The long-running commands log where [DEFAULT] log_file says; the
 * others answer on the terminal. */
static int log_to_file(gl_conf *conf)
{
	gl_err err;

	if (gl_log_configure(conf->log_file, conf->use_json, &err) < 0) {
		fprintf(stderr, "glared: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int run_serve(const command *cmd, args *a, gl_conf *conf)
{
	if (log_to_file(conf) < 0)
		return 1;
	return gl_serve(conf, a->host, a->port);
}

static int run_db(const command *cmd, args *a, gl_conf *conf)
{
	return gl_tool_db_upgrade(conf);
}

static int run_scrub(const command *cmd, args *a, gl_conf *conf)
{
	if (log_to_file(conf) < 0)
		return 1;
	return gl_tool_scrub(conf, a->daemon);
}

static int run_verify(const command *cmd, args *a, gl_conf *conf)
{
	if (log_to_file(conf) < 0)
		return 1;
	return gl_tool_verify(conf, a->daemon, a->interval, a->min_age);
}

static int run_check_types(const command *cmd, args *a, gl_conf *conf)
{
	return gl_tool_check_types(conf, a->npos, a->pos, a->schemas);
}

static int run_console(const command *cmd, args *a, gl_conf *conf)
{
	if (a->npos > 0) {
		a->con.script = a->pos[0];
		a->con.args = a->pos + 1;
		a->con.nargs = a->npos - 1;
	}
	return gl_tool_console(conf, &a->con);
}

static int run_check_config(const command *cmd, args *a, gl_conf *conf)
{
	return gl_check_config(conf);
}

static int run_backup(const command *cmd, args *a, gl_conf *conf)
{
	return gl_backup(conf, a->pos[0]);
}

static int run_restore(const command *cmd, args *a, gl_conf *conf)
{
	return gl_restore(conf, a->pos[0], a->force);
}

/* clang-format off */
static const command commands[] = {
	{ "serve", "[--config-file F] [--host H] [--port P]",
	  "serve the Glare v1 API",
	  CONFIG_HELP
	  "  --host H          bind address (overrides [DEFAULT] bind_host)\n"
	  "  --port P          TCP port, 0..65535 (overrides [DEFAULT] "
	  "bind_port)\n",
	  ":h", serve_opts, 0, 0, run_serve },
	{ "db upgrade", "[--config-file F]",
	  "create or migrate the metadata schema",
	  CONFIG_HELP, ":h", plain_opts, 0, 0, run_db },
	{ "scrub", "[--config-file F] [--daemon]",
	  "purge artifacts left deleted (delayed_delete)",
	  CONFIG_HELP
	  "  -D, --daemon      keep running, a pass every [scrubber] "
	  "wakeup_time seconds\n",
	  ":hD", scrub_opts, 0, 0, run_scrub },
	{ "verify", "[--config-file F] [--daemon] [--interval S] [--min-age S]",
	  "re-check external blobs against their recorded checksums",
	  CONFIG_HELP
	  "  --daemon          keep running, a pass every --interval seconds\n"
	  "  --interval S      seconds between passes (default 3600)\n"
	  "  --min-age S       skip blobs verified within S seconds (default "
	  "0, or the interval with --daemon)\n",
	  ":h", verify_opts, 0, 0, run_verify },
	{ "check-types", "[--config-file F] [--types-path P] [--schemas] "
	  "[FILE...]",
	  "load the enabled type files (or FILEs) and report",
	  CONFIG_HELP
	  "  --types-path P    directory of the type files (overrides "
	  "[DEFAULT] types_path)\n"
	  "  --schemas         print the JSON schemas of the loaded types\n"
	  "  FILE...           type files to check instead of the enabled "
	  "types\n",
	  ":h", types_opts, 0, -1, run_check_types },
	{ "check-config", "[--config-file F]",
	  "validate the configuration as start-up would, and more",
	  CONFIG_HELP, ":h", plain_opts, 0, 0, run_check_config },
	{ "console", "[--config-file F] [-e CODE]... [-i] [--attach[=PATH]] "
	  "[--timeout S] [--project P] [SCRIPT [ARGS...]]",
	  "the Lua operator console (docs/console.md)",
	  CONFIG_HELP
	  "  -e CODE           run CODE (an expression prints its values); "
	  "repeatable\n"
	  "  -i                the REPL after -e / SCRIPT\n"
	  "  --attach[=PATH]   run in the server over its admin socket "
	  "([DEFAULT] admin_socket)\n"
	  "  --timeout S       attach mode: time limit per chunk in seconds "
	  "(default 10, at most 600)\n"
	  "  --project P       direct mode: create as project P (owner of new "
	  "artifacts;\n"
	  "                    default 'console')\n"
	  "  SCRIPT [ARGS...]  a Lua file ('-' for stdin); ARGS in arg[1..] "
	  "and ...\n"
	  "  Without -e or SCRIPT: the REPL (lines from stdin when it is not "
	  "a terminal).\n",
	  "+:he:i", console_opts, 0, -1, run_console },
	{ "backup", "[--config-file F] DEST",
	  "copy the database and the blobs it references to DEST (live)",
	  CONFIG_HELP
	  "  DEST              a new or empty directory\n",
	  ":h", plain_opts, 1, 1, run_backup },
	{ "restore", "[--config-file F] [--force] SRC",
	  "restore a backup into the configured database and store",
	  CONFIG_HELP
	  "  --force           replace an existing, non-empty database\n"
	  "  SRC               a directory written by `glared backup`\n",
	  ":h", restore_opts, 1, 1, run_restore },
};
/* clang-format on */

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: glared <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-13s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f, "  %-13s %s\n", "version", "print the version");
	fprintf(f, "\n`glared <command> --help` shows a command's options; "
		   "man glared(8) has them all.\n");
}

static void cmd_usage(const command *c, FILE *f)
{
	fprintf(f,
		"usage: glared %s %s\n%s.\n\noptions:\n%s"
		"  -h, --help        print this help and exit\n",
		c->name, c->synopsis, c->summary, c->options);
}

static int parse_int(const command *c, const char *opt, const char *v,
		     long min, long max, int *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max) {
		fprintf(stderr,
			"glared %s: option '%s' takes an integer in "
			"%ld..%ld, not '%s'\n",
			c->name, opt, min, max, v);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* The option getopt just rejected, as the user typed it. */
static void bad_option(const command *c, char **argv, int ind, int kind)
{
	const char *arg = ind > 0 ? argv[ind - 1] : "?";
	char shortname[3] = { '-', (char)optopt, 0 };
	const char *name = (optopt && optopt < 256 && strncmp(arg, "--", 2))
				   ? shortname
				   : arg;
	char clean[256];

	snprintf(clean, sizeof clean, "%.*s", (int)strcspn(name, "="), name);
	if (kind == ':')
		fprintf(stderr, "glared %s: option '%s' needs a value\n",
			c->name, clean);
	else if (optopt >= 256 && strchr(name, '='))
		fprintf(stderr, "glared %s: option '%s' takes no value\n",
			c->name, clean);
	else
		fprintf(stderr, "glared %s: unknown option '%s'\n", c->name,
			name);
	fprintf(stderr, "Try 'glared %s --help'.\n", c->name);
}

/* 0 parsed, else the exit status to return at once (help, usage error). */
static int parse(const command *c, int argc, char **argv, args *a)
{
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, c->shortopts, c->longopts,
				 NULL)) != -1) {
		switch (ch) {
		case O_HELP:
			cmd_usage(c, stdout);
			return 0;
		case O_CONFIG:
			a->config = optarg;
			break;
		case O_HOST:
			a->host = optarg;
			break;
		case O_PORT:
			if (parse_int(c, "--port", optarg, 0, 65535, &a->port))
				return 2;
			break;
		case O_TYPES:
			a->types_path = optarg;
			break;
		case O_DAEMON:
		case 'D':
			a->daemon = 1;
			break;
		case O_INTERVAL:
			if (parse_int(c, "--interval", optarg, 1, INT_MAX,
				      &a->interval))
				return 2;
			break;
		case O_MINAGE:
			if (parse_int(c, "--min-age", optarg, 0, INT_MAX,
				      &a->min_age))
				return 2;
			break;
		case O_SCHEMAS:
			a->schemas = 1;
			break;
		case O_FORCE:
			a->force = 1;
			break;
		case 'e':
			if (a->con.nexec == (int)(sizeof a->con.exec /
						  sizeof a->con.exec[0])) {
				fprintf(stderr,
					"glared console: at most %zu "
					"-e\n",
					sizeof a->con.exec /
						sizeof a->con.exec[0]);
				return 2;
			}
			a->con.exec[a->con.nexec++] = optarg;
			break;
		case 'i':
			a->con.interactive = 1;
			break;
		case O_ATTACH:
			a->con.attach = 1;
			if (optarg) {
				if (!*optarg) {
					fprintf(stderr,
						"glared console: "
						"--attach= needs a path\n");
					return 2;
				}
				a->con.socket = optarg;
			}
			break;
		case O_TIMEOUT:
			if (parse_int(c, "--timeout", optarg, 1,
				      GL_ADMIN_MAX_TIMEOUT, &a->con.timeout))
				return 2;
			break;
		case O_PROJECT:
			if (!*optarg || strlen(optarg) > 255) {
				fprintf(stderr, "glared console: --project "
						"needs a project id of 1 to "
						"255 bytes\n");
				return 2;
			}
			a->con.project = optarg;
			break;
		default:
			bad_option(c, argv, optind, ch);
			return 2;
		}
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	if (a->con.project && a->con.attach) {
		/* attached, the server's session acts as console-attach */
		fprintf(stderr,
			"glared console: --project is for direct mode, "
			"not --attach\n");
		return 2;
	}
	if (a->npos < c->min_pos ||
	    (c->max_pos >= 0 && a->npos > c->max_pos)) {
		if (a->npos > 0 && (c->max_pos >= 0 && a->npos > c->max_pos))
			fprintf(stderr,
				"glared %s: unexpected argument '%s'\n",
				c->name, a->pos[c->max_pos]);
		else
			fprintf(stderr, "glared %s: missing argument\n",
				c->name);
		fprintf(stderr, "usage: glared %s %s\n", c->name, c->synopsis);
		return 2;
	}
	return -1;
}

static const command *find_command(int argc, char **argv, int *skip)
{
	*skip = 1;
	if (!strcmp(argv[1], "db")) {
		/* "db upgrade" is the only db command */
		if (argc > 2 && !strcmp(argv[2], "upgrade")) {
			*skip = 2;
			return &commands[1];
		}
		if (argc > 2 &&
		    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			*skip = 1;
			return &commands[1];
		}
		return NULL;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, argv[1]))
			return &commands[i];
	return NULL;
}

static void print_version(void)
{
	printf("glared %s (%s)\n", GLARED_VERSION, LUA_RELEASE);
}

int gl_cli_main(int argc, char **argv)
{
	const command *c;
	args a = { .port = -1, .interval = 3600, .min_age = -1 };
	gl_err err = { 0 };
	gl_conf *conf;
	int skip, rc;

	gl_log_init("glared", 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc > 2) {
			char *sub[] = { argv[0], argv[2],
					argc > 3 ? argv[3] : NULL, NULL };
			c = find_command(argc > 3 ? 3 : 2, sub, &skip);
			if (!c) {
				fprintf(stderr,
					"glared: unknown command '%s'\n",
					argv[2]);
				return 2;
			}
			cmd_usage(c, stdout);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version") ||
	    !strcmp(argv[1], "-V")) {
		if (argc > 2) {
			fprintf(stderr,
				"glared version: unexpected argument "
				"'%s'\n",
				argv[2]);
			return 2;
		}
		print_version();
		return 0;
	}
	c = find_command(argc, argv, &skip);
	if (!c) {
		if (!strcmp(argv[1], "db") && argc > 2)
			fprintf(stderr,
				"glared db: unknown subcommand '%s' "
				"(the one there is: upgrade)\n",
				argv[2]);
		else if (!strcmp(argv[1], "db"))
			fprintf(stderr, "glared db: missing subcommand "
					"(upgrade)\n");
		else
			fprintf(stderr, "glared: unknown command '%s'\n",
				argv[1]);
		usage(stderr);
		return 2;
	}
	/* getopt sees the command's own arguments, the command as argv[0] */
	rc = parse(c, argc - skip, argv + skip, &a);
	if (rc >= 0)
		return rc;

	conf = gl_conf_load(a.config, &err);
	if (!conf) {
		fprintf(stderr, "glared: %s\n", err.msg);
		return 1;
	}
	if (a.types_path) {
		free(conf->types_path);
		conf->types_path = strdup(a.types_path);
	}
	fill_paths(conf);
	gl_log_set_debug(conf->debug);
	rc = c->run(c, &a, conf);
	gl_conf_free(conf);
	return rc;
}
