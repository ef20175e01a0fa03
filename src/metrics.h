/* metrics.h - the server's counters and `GET /metrics` (Prometheus text
 * exposition format 0.0.4).
 *
 * Workers are separate processes (SO_REUSEPORT), so the counters live in
 * one shared anonymous mapping the master creates before it forks: one
 * slot per worker index, written only by that worker with relaxed atomic
 * adds (no lock, no system call per request) and summed over every slot
 * by whichever worker answers /metrics. A restarted worker continues its
 * slot, so counters never go backwards. Label values come from fixed
 * tables (route templates, methods, known status codes, outcomes), never
 * from request data: the number of series is bounded.
 *
 * Used by server.c (init, worker index), access.c (requests), api.c
 * (routes, faults, /metrics), fetch.c, download.c and ltype.c (one hook call
 * each). A process that never called gl_metrics_init (the offline tools)
 * counts into a private slot nobody reads.
 */
#ifndef GL_METRICS_H
#define GL_METRICS_H

#include <stdint.h>
#include <sys/types.h>

/* Route templates: the label of every request. */
/* clang-format off */
enum gl_route {
	GL_ROUTE_NONE,          /* rejected before routing (bad framing) */
	GL_ROUTE_UNMATCHED,     /* no route: 404 / 501 */
	GL_ROUTE_ROOT,
	GL_ROUTE_VERSIONS,
	GL_ROUTE_HEALTHCHECK,
	GL_ROUTE_METRICS,
	GL_ROUTE_SCHEMAS,
	GL_ROUTE_SCHEMA,
	GL_ROUTE_LIST,
	GL_ROUTE_ARTIFACT,
	GL_ROUTE_BLOB,
	GL_ROUTE_BLOB_KEY,
	GL_ROUTE_QUOTAS,
	GL_ROUTE_PROJECT_QUOTAS,
	GL_ROUTE_PROJECT_QUOTA,
	GL_ROUTE_SUBSCRIPTIONS,
	GL_ROUTE_SUBSCRIPTION,
	GL_ROUTE_SUBSCRIPTION_DELIVERIES,
	GL_ROUTE_COUNT
};
/* clang-format on */

const char *gl_metrics_route_name(int route);

/* Master, before forking: room for nworkers slots (>= 1). */
int gl_metrics_init(int nworkers);
/* In a worker: count into slot idx from now on. */
void gl_metrics_worker(int idx);

/* One finished request. method: enum http_method or -1. */
void gl_metrics_request(int route, int method, int status, double ms,
			int64_t received, int64_t sent);
/* Blob uploads in flight (+1 when a PUT starts streaming, -1 when done). */
void gl_metrics_uploads(int delta);
/* 5xx replies by the part that failed: "database", "store" or "other". */
void gl_metrics_fault(const char *type, const char *msg);

/* External fetches: started (in flight +1), ended (-1), and outcome. */
enum gl_fetch_outcome {
	GL_FETCH_OK,
	GL_FETCH_ERROR,
	GL_FETCH_TOO_LARGE,
	GL_FETCH_CANCELLED,
	GL_FETCH_NOUTCOMES
};
void gl_metrics_fetch_started(void);
void gl_metrics_fetch_ended(void);
void gl_metrics_fetch_outcome(enum gl_fetch_outcome o, int64_t bytes);
/* External blob verifications: status "ok", "changed", "gone", "error". */
void gl_metrics_verify(const char *status);
/* One call into the type runtime: failed, and why. */
void gl_metrics_lua(int failed, int budget_hit, int out_of_memory);

/* The exposition text (malloc'ed), summed over every worker. */
char *gl_metrics_render(size_t *len);

#endif
