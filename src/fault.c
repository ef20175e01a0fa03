/* fault.c - errors to Glare's fault JSON (see fault.h, err.h). */
#include "fault.h"
#include "status.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Our own one-line explanations of each status, in the spirit of the
 * generic text Glare's clients see in "explanation". */
const char *gl_fault_explanation(int status)
{
	switch (status) {
	case 300:
		return "The resource has several representations.";
	case 400:
		return "The request is malformed or otherwise incorrect.";
	case 401:
		return "The request lacks valid authentication credentials.";
	case 403:
		return "Access to this resource was denied.";
	case 404:
		return "The resource could not be found.";
	case 405:
		return "The method is not allowed for this resource.";
	case 406:
		return "No acceptable representation of the resource exists.";
	case 408:
		return "The request was not received in time.";
	case 409:
		return "The request conflicts with the current state of the resource.";
	case 410:
		return "The resource is no longer available.";
	case 411:
		return "A Content-Length header is required.";
	case 412:
		return "A precondition of the request failed.";
	case 413:
		return "The request body is larger than allowed.";
	case 414:
		return "The request target is longer than allowed.";
	case 415:
		return "The media type of the request is not supported.";
	case 416:
		return "The requested range cannot be satisfied.";
	case 417:
		return "The expectation given in the request cannot be met.";
	case 423:
		return "The resource is locked.";
	case 424:
		return "The request depended on an action that failed.";
	case 431:
		return "The request header fields are larger than allowed.";
	case 500:
		return "The server failed to carry out the request.";
	case 501:
		return "The server does not implement the requested method.";
	case 503:
		return "The service is temporarily unavailable.";
	case 505:
		return "The HTTP version of the request is not supported.";
	default:
		return "The request could not be completed.";
	}
}

json_t *gl_fault_json(int status, const char *type, const char *message)
{
	json_t *err = json_object(), *f = json_object();

	/* messages can quote client input: never lose them to bad UTF-8 */
	json_object_set_new(err, "message",
			    gl_json_text(message ? message : ""));
	json_object_set_new(err, "type",
			    gl_json_text(type ? type
					      : gl_err_default_type(status)));
	json_object_set_new(f, "code", json_integer(status));
	json_object_set_new(f, "title", json_string(gl_status_reason(status)));
	json_object_set_new(f, "explanation",
			    json_string(gl_fault_explanation(status)));
	json_object_set_new(f, "error", err);
	return f;
}
