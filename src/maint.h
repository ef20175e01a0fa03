/* maint.h - what a process does besides serving requests (maint.c):
 * heartbeats of its uploads and registrations, takeover of dead owners'
 * work, sweeps, running the gc and cleanup queues, start-up recovery.
 *
 * Called only by engine.c (start, stop, recover, maintain); it calls the
 * units below it (upload.c, location.c, gc.c), none of which calls it.
 *
 * Uses core.h.
 */
#ifndef GL_MAINT_H
#define GL_MAINT_H

#include "core.h"

/* Arm the maintenance timer (every upload_heartbeat seconds; the first
 * pass runs at once) and hook the S3 client's failed cleanups. */
int gl_maint_init(gl_engine *e, gl_err *err);
/* Stop: cleanups in flight stay queued for any node to run. */
void gl_maint_free(gl_engine *e);
/* Start-up: take over the work of dead owners, remove unused temp files,
 * release unreferenced data. */
int gl_maint_recover(gl_engine *e, gl_err *err);
/* Run a pass (heartbeats, takeover, sweeps, cleanups) as soon as the loop
 * runs (gl_engine_maintain). */
void gl_maint_soon(gl_engine *e);

#endif
