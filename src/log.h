/* log.h - process-wide logging to stderr.
 *
 * One line per event: ISO time, program[pid], level, message. Access lines
 * (one per HTTP request) come through gl_log_access so their format stays
 * greppable. Used by every unit; uses nothing but libc.
 */
#ifndef GL_LOG_H
#define GL_LOG_H

enum gl_log_level { GL_LOG_DEBUG, GL_LOG_INFO, GL_LOG_WARN, GL_LOG_ERROR };

void gl_log_init(const char *prog, int debug);
void gl_log_set_debug(int debug);
/* Drop lines below lvl (the console keeps info lines off the REPL). */
void gl_log_set_min(enum gl_log_level lvl);
int gl_log_debug_enabled(void);

void gl_log(enum gl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define gl_debug(...) gl_log(GL_LOG_DEBUG, __VA_ARGS__)
#define gl_info(...) gl_log(GL_LOG_INFO, __VA_ARGS__)
#define gl_warn(...) gl_log(GL_LOG_WARN, __VA_ARGS__)
#define gl_error(...) gl_log(GL_LOG_ERROR, __VA_ARGS__)

#endif
