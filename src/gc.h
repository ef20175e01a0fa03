/* gc.h - releasing stored data no record refers to any more (gc.c).
 *
 * A blob record that goes away puts its stored object on the gc queue of
 * the metadata store (inside the same transaction); gl_gc_run removes
 * what nothing refers to any more, under the write lock. Work that needs
 * the network (S3 aborts and deletes) goes on the cleanup queue, which
 * maint.c runs. The operations (art.c, upload.c, ...) hand data over
 * here; maint.c only runs the queues, so no operation depends on it.
 * Private to the engine's units.
 *
 * Uses core.h.
 */
#ifndef GL_GC_H
#define GL_GC_H

#include "core.h"

/* Release stored data no record refers to any more (gc queue). */
void gl_gc_run(gl_engine *e);
/* Release a blob record's stored data (inside a transaction). */
int gl_gc_release(gl_engine *e, const json_t *blob, gl_err *err);
/* Queue a cleanup ("s3_abort" key id, "s3_delete" key "") to be tried
 * after delay_us, unless it is queued already; inside the caller's
 * transaction if one is open, so the intent is as durable as the change
 * that needs it. */
int gl_gc_cleanup_queue(gl_engine *e, const char *kind, const char *target,
			const char *arg, int64_t delay_us, gl_err *err);
/* Run the due cleanups soon (after the current callback returns). */
void gl_gc_cleanup_kick(gl_engine *e);

#endif
