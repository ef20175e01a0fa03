/* cli.h - the glared command line: one getopt_long table and usage text
 * per command (serve, db upgrade, scrub, verify, check-types,
 * check-config, console, backup, restore), `--help` and `--version`.
 *
 * Used by main.c. Uses conf.c, log.c, server.c, tools.c, backup.c.
 */
#ifndef GL_CLI_H
#define GL_CLI_H

/* Returns the process exit status: 0 ok, 1 failure, 2 usage error. */
int gl_cli_main(int argc, char **argv);

#endif
