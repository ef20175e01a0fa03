/* err.c - the error value (see err.h): filling it, and the Glare exception
 * name of a status. No dependencies, so every unit (tools, fetch, s3) can
 * report errors the same way without the API's fault formatting. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int gl_vfail(gl_err *e, int status, const char *type, const char *fmt,
	     va_list ap)
{
	if (!e)
		return -1;
	e->status = status;
	snprintf(e->type, sizeof e->type, "%s",
		 type ? type : gl_err_default_type(status));
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	return -1;
}

int gl_fail(gl_err *e, int status, const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gl_vfail(e, status, type, fmt, ap);
	va_end(ap);
	return -1;
}

const char *gl_err_default_type(int status)
{
	switch (status) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 406:
		return "NotAcceptable";
	case 408:
		return "RequestTimeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 412:
		return "PreconditionFailed";
	case 413:
		return "RequestEntityTooLarge";
	case 414:
		return "RequestURITooLong";
	case 415:
		return "UnsupportedMediaType";
	case 416:
		return "RequestRangeNotSatisfiable";
	case 417:
		return "ExpectationFailed";
	case 423:
		return "Locked";
	case 424:
		return "FailedDependency";
	case 431:
		return "RequestHeaderFieldsTooLarge";
	case 501:
		return "NotImplemented";
	case 503:
		return "ServiceUnavailable";
	default:
		return "GlareException";
	}
}
