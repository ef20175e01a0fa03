/* status.h - HTTP status codes as data: the reason phrase of a status.
 *
 * A data-only unit, so layers below the HTTP server (the fault body, the
 * console's error messages) can name a status without including http.h.
 * Used by http.c, fault.c and console.c. No dependencies.
 */
#ifndef GL_STATUS_H
#define GL_STATUS_H

/* "Not Found" for 404; "Unknown" for a status without a phrase here. */
const char *gl_status_reason(int status);

#endif
