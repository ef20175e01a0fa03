/* curlev.h - libcurl's multi interface driven by a libevent loop.
 *
 * One gl_curlev wraps one curl multi handle on the caller's event_base the
 * way curl's multi-event.c example does it (docs/design-notes.md "libcurl
 * in the event loop"): curl says which
 * sockets to watch and when to wake it, our events call
 * curl_multi_socket_action, and finished transfers are reported. On top of
 * that it carries the rules that make it safe to run caller code from
 * inside curl, so the modules using it need not know them:
 *
 *  - "Inside curl" means inside curl_multi_socket_action or curl_easy_pause
 *    (the driver counts the depth). The owner's easy callbacks (write, read,
 *    header, opensocket...) and whatever user code they run are inside.
 *    curl refuses curl_multi_add_handle / _remove_handle there
 *    (CURLM_RECURSIVE_API_CALL), and freeing an easy handle there pulls it
 *    from under curl. So inside curl: gl_curlev_add only queues, cancel only
 *    marks, resume only sets a flag; a `deferred` event, run on the next
 *    loop pass with curl idle, does the real work.
 *  - The owner's `done` and `destroy` callbacks run outside curl (depth 0),
 *    where anything but gl_curlev_free is allowed and takes effect at once.
 *  - Pausing: a write callback that has consumed a piece but wants no more
 *    returns gl_curlev_pause(); curl keeps that piece (and what follows) and
 *    hands it over again after gl_curlev_resume(); gl_curlev_replayed()
 *    tells how much of the head of a piece was already consumed, so every
 *    byte is seen once. curl_easy_pause(CONT) replays through the write
 *    callback at once, which is why resume is deferred: callers of resume
 *    never see their callback reentered.
 *
 * Used by fetch.c (external blobs) and s3.c (the S3 client); each keeps its
 * own policy (queueing, retries, SSRF guard, signing) and its own lists.
 * Uses libcurl, libevent and err.h.
 */
#ifndef GL_CURLEV_H
#define GL_CURLEV_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "err.h"

typedef struct gl_curlev gl_curlev;

/* Callbacks from the driver to the module using it. */
typedef struct gl_curlev_ops {
	/* A transfer ended: rc is curl's result (CURLE_OK says nothing about
	 * the HTTP status), or the error that kept it from being added or
	 * resumed. Outside curl; the transfer is detached already, so the
	 * owner may free it or gl_curlev_add it again (a retry). */
	void (*done)(void *owner, CURLcode rc);
	/* Free a transfer cancelled from inside curl, now that curl is idle
	 * (detached already). No report: the owner cancelled it. */
	void (*destroy)(void *owner);
	/* Optional: the loop enters curl for a new turn (a socket or timer
	 * event, a deferred pass). fetch.c resets its per-turn byte budget. */
	void (*turn)(void *arg);
	/* Optional: outside curl, after finished transfers were reported
	 * (slots may be free). fetch.c starts queued jobs here. */
	void (*idle)(void *arg);
} gl_curlev_ops;

/* One transfer, embedded in the owner's own record (no allocation). The
 * fields belong to curlev.c; the owner uses the functions below. */
typedef struct gl_curlev_xfer {
	gl_curlev *ev;
	CURL *easy;
	void *owner;                        /* passed to done / destroy */
	struct gl_curlev_xfer *prev, *next; /* ev's attached transfers */
	size_t redeliver; /* bytes curl replays that were consumed */
	CURLcode fail_rc;
	unsigned attached : 1;    /* in ev's list: added, to be added, or to
				   * be reported as failed */
	unsigned in_multi : 1;    /* in the multi handle */
	unsigned add_pending : 1; /* gl_curlev_add came from inside curl */
	unsigned cancelled : 1;   /* waiting for `deferred` to destroy it */
	unsigned paused : 1;
	unsigned resume_pending : 1;
	unsigned fail_pending : 1; /* report fail_rc from `deferred` */
} gl_curlev_xfer;

/* curl_global_init, once per process, thread-safe; its result. */
CURLcode gl_curl_global_init(void);
/* The same as 0, or -1 with "cannot initialise libcurl: ..." in err. */
int gl_curl_init(gl_err *err);

/* "host" or "host:port" of url into out, for messages: never the whole
 * URL, which may carry credentials; dflt if url is NULL or unparsable. */
void gl_curl_url_host(const char *url, const char *dflt, char *out,
		      size_t len);

/* NULL if out of memory or curl could not be initialised. ops must outlive
 * the driver; arg goes to turn and idle. */
gl_curlev *gl_curlev_new(struct event_base *base, const gl_curlev_ops *ops,
			 void *arg);
/* Outside curl only. The owner frees its transfers first (any still
 * attached are only taken out of curl, without callbacks). */
void gl_curlev_free(gl_curlev *ev);

/* Bind x to ev, the easy handle and the owner, not yet attached. Sets
 * CURLOPT_PRIVATE (the driver's: owners must not set it). */
void gl_curlev_xfer_init(gl_curlev_xfer *x, gl_curlev *ev, CURL *easy,
			 void *owner);
/* Hand x to curl: at once outside curl, on the next pass inside. A failed
 * add is reported through done (CURLE_OUT_OF_MEMORY) on the next pass,
 * never from inside this call. No-op if x is attached already. */
void gl_curlev_add(gl_curlev_xfer *x);
/* Stop x without a report. Returns 0 when the owner must free it now: x
 * was not attached, or it was and curl is idle (x is detached). Returns 1
 * inside curl for an attached x: it is only marked (gl_curlev_cancelled
 * is 1 from now on and its easy callbacks must return an error, it may be
 * the one running) and ops->destroy frees it on the next pass. */
int gl_curlev_cancel(gl_curlev_xfer *x);
int gl_curlev_cancelled(const gl_curlev_xfer *x);
/* Take x out of curl without callbacks, for owners freeing it. Outside
 * curl only (or when x is not attached); no-op if not attached. */
void gl_curlev_detach(gl_curlev_xfer *x);

/* ---- pausing, from the write callback --------------------------------- */
/* How many bytes at the head of this n-byte piece were consumed before a
 * pause (curl hands them over again): skip them. */
size_t gl_curlev_replayed(gl_curlev_xfer *x, size_t n);
/* The n-byte piece was consumed but no more is wanted until
 * gl_curlev_resume: returns CURL_WRITEFUNC_PAUSE for the callback. */
size_t gl_curlev_pause(gl_curlev_xfer *x, size_t n);
/* Same, resuming on the next loop pass by itself: lets other events run
 * between the buffers of a fast transfer. */
size_t gl_curlev_yield(gl_curlev_xfer *x, size_t n);
/* Resume a paused x on the next pass (also from inside curl). No-op for a
 * transfer that is not attached or is cancelled. */
void gl_curlev_resume(gl_curlev_xfer *x);

#endif
