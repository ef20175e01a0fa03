/* log.c - process-wide logging to stderr or [DEFAULT] log_file, as text
 * or one JSON object per line (see log.h). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "glared";
static int debug_on;
static enum gl_log_level min_level = GL_LOG_DEBUG;
static int json_on;
static char *log_path;
static const char *const level_names[] = { "debug", "info", "warning",
					   "error" };

void gl_log_init(const char *prog, int debug)
{
	if (prog)
		prog_name = prog;
	debug_on = debug;
	/* line buffered so lines from several workers do not interleave */
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void gl_log_set_debug(int debug)
{
	debug_on = debug;
}
void gl_log_set_min(enum gl_log_level lvl)
{
	min_level = lvl;
}
int gl_log_debug_enabled(void)
{
	return debug_on;
}

/* The file takes stderr's place, so whatever writes there (a sanitizer,
 * a library) lands in the same file. */
static int open_file(const char *path, gl_err *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return gl_fail(err, 500, NULL, "log_file %s: %s", path,
			       strerror(errno));
	if (fd != STDERR_FILENO) {
		if (dup2(fd, STDERR_FILENO) < 0) {
			gl_fail(err, 500, NULL, "log_file %s: %s", path,
				strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

int gl_log_configure(const char *file, int json, gl_err *err)
{
	json_on = json;
	if (!file || !*file)
		return 0;
	if (open_file(file, err) < 0)
		return -1;
	free(log_path);
	log_path = strdup(file);
	return 0;
}

int gl_log_reopen(void)
{
	gl_err err;

	if (!log_path)
		return 0;
	if (open_file(log_path, &err) < 0) {
		/* keep writing to the old file: better than nowhere */
		gl_error("reopen: %s", err.msg);
		return -1;
	}
	return 0;
}

static void emit(char *line, size_t n, size_t cap)
{
	if (n > cap - 2)
		n = cap - 2;
	line[n++] = '\n';
	/* one write per line: atomic for lines below PIPE_BUF on pipes, and
	 * O_APPEND keeps the workers' lines whole in a file */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}

static size_t stamp(char *ts, size_t len)
{
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, len, "%Y-%m-%dT%H:%M:%S", &tm);
	return n + (size_t)snprintf(ts + n, len - n, ".%03ldZ",
				    now.tv_nsec / 1000000);
}

/* Append s as a JSON string (quoted, escaped) at *n, within cap. */
static void jstr(char *out, size_t *n, size_t cap, const char *s)
{
	size_t i = *n;

	if (i < cap)
		out[i++] = '"';
	for (; s && *s && i + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[i++] = '\\';
			out[i++] = (char)ch;
		} else if (ch < 0x20) {
			i += (size_t)snprintf(out + i, cap - i, "\\u%04x", ch);
		} else {
			out[i++] = (char)ch;
		}
	}
	if (i < cap)
		out[i++] = '"';
	*n = i;
}

/* The object's first members, without a trailing comma. */
static void json_head(char *line, size_t *n, size_t cap, const char *level)
{
	char ts[40];

	stamp(ts, sizeof ts);
	*n = (size_t)snprintf(line, cap,
			      "{\"time\": \"%s\", \"level\": \"%s\", "
			      "\"program\": \"%s\", \"pid\": %d",
			      ts, level, prog_name, (int)getpid());
}

/* Append ', "key": "value"' at *n, never past cap. */
static void jfield(char *out, size_t *n, size_t cap, const char *key,
		   const char *value)
{
	if (*n + strlen(key) + 8 >= cap)
		return;
	*n += (size_t)snprintf(out + *n, cap - *n, ", \"%s\": ", key);
	jstr(out, n, cap, value);
}

void gl_log(enum gl_log_level lvl, const char *fmt, ...)
{
	char line[4096], msg[3800], ts[40];
	va_list ap;
	size_t n;

	if ((lvl == GL_LOG_DEBUG && !debug_on) || lvl < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (json_on) {
		json_head(line, &n, sizeof line - 2, level_names[lvl]);
		jfield(line, &n, sizeof line - 3, "message", msg);
		line[n++] = '}';
	} else {
		stamp(ts, sizeof ts);
		n = (size_t)snprintf(line, sizeof line, "%s %s[%d] %s: %s", ts,
				     prog_name, (int)getpid(),
				     level_names[lvl], msg);
		if (n >= sizeof line)
			n = sizeof line - 1;
	}
	emit(line, n, sizeof line);
}

void gl_log_access(const gl_access *a)
{
	char line[4096], ts[40], path[1100];
	size_t n;

	if (GL_LOG_INFO < min_level)
		return;
	snprintf(path, sizeof path, "%.*s",
		 a->target_len > 1024 ? 1024 : (int)a->target_len, a->target);
	if (json_on) {
		json_head(line, &n, sizeof line - 2, "info");
		jfield(line, &n, sizeof line - 3, "message", "access");
		jfield(line, &n, sizeof line - 3, "client", a->client);
		jfield(line, &n, sizeof line - 3, "user_id", a->user);
		jfield(line, &n, sizeof line - 3, "project_id", a->project);
		jfield(line, &n, sizeof line - 3, "method", a->method);
		jfield(line, &n, sizeof line - 3, "path", path);
		jfield(line, &n, sizeof line - 3, "route", a->route);
		n += (size_t)snprintf(line + n, sizeof line - 3 - n,
				      ", \"status\": %d, \"bytes\": %lld, "
				      "\"received\": %lld, \"duration_ms\": "
				      "%.1f, \"aborted\": %s",
				      a->status, (long long)a->bytes,
				      (long long)a->received, a->ms,
				      a->aborted ? "true" : "false");
		if (n > sizeof line - 3)
			n = sizeof line - 3;
		jfield(line, &n, sizeof line - 3, "request_id", a->request_id);
		line[n++] = '}';
	} else {
		stamp(ts, sizeof ts);
		n = (size_t)snprintf(line, sizeof line,
				     "%s %s[%d] info: access: %s %s %d %lldB "
				     "%.1fms %s client=%s user=%s project=%s "
				     "received=%lldB%s",
				     ts, prog_name, (int)getpid(), a->method,
				     path, a->status, (long long)a->bytes,
				     a->ms, a->request_id, a->client, a->user,
				     a->project, (long long)a->received,
				     a->aborted ? " aborted" : "");
		if (n >= sizeof line)
			n = sizeof line - 1;
	}
	emit(line, n, sizeof line);
}
