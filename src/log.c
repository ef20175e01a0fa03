/* log.c - process-wide logging to stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "glared";
static int debug_on;
static enum gl_log_level min_level = GL_LOG_DEBUG;

void gl_log_init(const char *prog, int debug)
{
	if (prog)
		prog_name = prog;
	debug_on = debug;
	/* line buffered so lines from several workers do not interleave */
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void gl_log_set_debug(int debug) { debug_on = debug; }
void gl_log_set_min(enum gl_log_level lvl) { min_level = lvl; }
int gl_log_debug_enabled(void) { return debug_on; }

void gl_log(enum gl_log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	char line[4096], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if ((lvl == GL_LOG_DEBUG && !debug_on) || lvl < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof line, "%s.%03ldZ %s[%d] %s: ", ts,
		     now.tv_nsec / 1000000, prog_name, (int)getpid(),
		     names[lvl]);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof line)
		vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	/* one write per line: atomic for lines below PIPE_BUF on pipes */
	n = (int)strlen(line);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}
