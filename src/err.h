/* err.h - the error value every layer below the API fills in.
 *
 * A failing function returns -1 and describes the failure in a gl_err: the
 * HTTP status it maps to, the Glare exception name clients see as
 * error.type (ArtifactNotFound, PolicyException, ...), and the message.
 * api.c turns it into Glare's fault JSON.
 */
#ifndef GL_ERR_H
#define GL_ERR_H

#include <stdarg.h>

typedef struct gl_err {
	int status;
	char type[48];
	char msg[1024];
} gl_err;

/* Fill e and return -1, so callers can `return gl_fail(...)`. */
int gl_fail(gl_err *e, int status, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The same with a va_list. */
int gl_vfail(gl_err *e, int status, const char *type, const char *fmt,
	     va_list ap) __attribute__((format(printf, 4, 0)));

/* Glare's exception name for a bare status (BadRequest, Forbidden, ...). */
const char *gl_err_default_type(int status);

#endif
