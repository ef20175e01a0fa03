/* log.h - process-wide logging to stderr or a file.
 *
 * One line per event: ISO time, program[pid], level, message; with
 * use_json one JSON object per line instead ({"time", "level", "program",
 * "pid", "message"}). Access lines (one per HTTP request) come through
 * gl_log_access so their format stays greppable. A log file takes stderr's
 * place (dup2) and is reopened by gl_log_reopen (SIGHUP, for logrotate).
 * Used by every unit; uses nothing but libc and err.c (gl_err).
 */
#ifndef GL_LOG_H
#define GL_LOG_H

#include <stddef.h>

#include "err.h"

enum gl_log_level { GL_LOG_DEBUG, GL_LOG_INFO, GL_LOG_WARN, GL_LOG_ERROR };

void gl_log_init(const char *prog, int debug);
void gl_log_set_debug(int debug);
/* Drop lines below lvl (the console keeps info lines off the REPL). */
void gl_log_set_min(enum gl_log_level lvl);
int gl_log_debug_enabled(void);
/* [DEFAULT] log_file (NULL: stay on stderr) and use_json. */
int gl_log_configure(const char *file, int json, gl_err *err);
/* Open the log file again under its name (after a rotation). */
int gl_log_reopen(void);

/* One finished HTTP request. Strings are never NULL ("-" when unknown). */
typedef struct gl_access {
	const char *client, *user, *project, *method, *target, *route;
	const char *request_id;
	size_t target_len;
	int status, aborted;
	long long bytes, received;
	double ms;
} gl_access;
void gl_log_access(const gl_access *a);

void gl_log(enum gl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define gl_debug(...) gl_log(GL_LOG_DEBUG, __VA_ARGS__)
#define gl_info(...) gl_log(GL_LOG_INFO, __VA_ARGS__)
#define gl_warn(...) gl_log(GL_LOG_WARN, __VA_ARGS__)
#define gl_error(...) gl_log(GL_LOG_ERROR, __VA_ARGS__)

#endif
