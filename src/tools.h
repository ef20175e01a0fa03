/* tools.h - the offline commands: db upgrade, check-types, scrub, verify,
 * console. Each returns the process exit status.
 *
 * Used by cli.c. Uses engine.c, meta.h, ltype.c, console_front.c.
 */
#ifndef GL_TOOLS_H
#define GL_TOOLS_H

#include "conf.h"
#include "console.h"

int gl_tool_db_upgrade(gl_conf *conf);
/* files: type files to check instead of the configured ones (nfiles 0);
 * schemas: print their JSON schemas. */
int gl_tool_check_types(gl_conf *conf, int nfiles, char **files, int schemas);
int gl_tool_scrub(gl_conf *conf, int daemon);
/* min_age < 0: the interval as a daemon, else 0 */
int gl_tool_verify(gl_conf *conf, int daemon, int interval, int min_age);
int gl_tool_console(gl_conf *conf, const gl_console_opts *o);

#endif
