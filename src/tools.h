/* tools.h - the offline commands: db upgrade, check-types, scrub, verify,
 * console. Each returns the process exit status.
 *
 * Used by main.c. Uses engine.c, meta.h, ltype.c, console.c.
 */
#ifndef GL_TOOLS_H
#define GL_TOOLS_H

#include "conf.h"

int gl_tool_db_upgrade(gl_conf *conf);
int gl_tool_check_types(gl_conf *conf);
int gl_tool_scrub(gl_conf *conf, int argc, char **argv);
int gl_tool_verify(gl_conf *conf, int argc, char **argv);
int gl_tool_console(gl_conf *conf, int argc, char **argv);

#endif
