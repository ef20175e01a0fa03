/* metrics.c - shared per-worker counters and their exposition (see
 * metrics.h). */
#include "metrics.h"
#include "util.h"

#include <dirent.h>
#include <http_parser.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* clang-format off */
static const char *const route_names[GL_ROUTE_COUNT] = {
	"-", "unmatched", "/", "/versions", "/healthcheck", "/metrics",
	"/schemas", "/schemas/{type}", "/artifacts/{type}",
	"/artifacts/{type}/{id}", "/artifacts/{type}/{id}/{field}",
	"/artifacts/{type}/{id}/{field}/{key}", "/quotas", "/project-quotas",
	"/project-quotas/{project}", "/subscriptions", "/subscriptions/{id}",
	"/subscriptions/{id}/deliveries",
};
/* clang-format on */

const char *gl_metrics_route_name(int route)
{
	return route >= 0 && route < GL_ROUTE_COUNT ? route_names[route] : "-";
}

#define NMETHODS 8
static const char *const method_names[NMETHODS] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
};

/* The statuses glared answers with; anything else counts as "other". */
/* clang-format off */
static const short status_codes[] = {
	100, 200, 201, 202, 204, 206, 300, 301, 302, 304, 307, 400, 401,
	403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
	423, 424, 429, 431, 499, 500, 501, 502, 503, 504, 505,
};
/* clang-format on */
#define NSTATUS (sizeof status_codes / sizeof status_codes[0] + 1)

/* Latency bucket bounds in seconds (the last bucket is +Inf). */
/* clang-format off */
static const double bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
/* clang-format on */
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

/* clang-format off */
static const char *const fetch_outcomes[GL_FETCH_NOUTCOMES] = {
	"ok", "error", "too_large", "cancelled"
};
/* clang-format on */
#define NVERIFY 4
/* clang-format off */
static const char *const verify_outcomes[NVERIFY] = {
	"ok", "changed", "gone", "error"
};
/* clang-format on */
#define NFAULT 3
static const char *const fault_parts[NFAULT] = { "database", "store",
						 "other" };

typedef struct slot {
	pid_t pid;
	uint64_t requests[GL_ROUTE_COUNT][NMETHODS][NSTATUS];
	uint64_t buckets[GL_ROUTE_COUNT][NBOUNDS + 1];
	uint64_t dur_us[GL_ROUTE_COUNT];
	uint64_t received[GL_ROUTE_COUNT], sent[GL_ROUTE_COUNT];
	uint64_t upload_bytes, download_bytes;
	int64_t uploads, fetches; /* gauges: this worker's share */
	uint64_t fetch[GL_FETCH_NOUTCOMES], fetch_bytes;
	uint64_t verify[NVERIFY];
	uint64_t lua_calls, lua_errors, lua_budget, lua_memory;
	uint64_t faults[NFAULT];
} slot;

typedef struct region {
	pid_t master;
	int nslots;
	slot slots[];
} region;

static region *shared;
static slot private_slot;
static slot *mine = &private_slot;

#define ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

int gl_metrics_init(int nworkers)
{
	size_t size;
	void *p;

	if (nworkers < 1)
		nworkers = 1;
	size = sizeof(region) + sizeof(slot) * (size_t)nworkers;
	/* untouched pages of idle slots cost no memory */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	shared = p;
	shared->master = getpid();
	shared->nslots = nworkers;
	gl_metrics_worker(0);
	return 0;
}

void gl_metrics_worker(int idx)
{
	if (!shared || idx < 0 || idx >= shared->nslots)
		return;
	mine = &shared->slots[idx];
	__atomic_store_n(&mine->pid, getpid(), __ATOMIC_RELAXED);
	/* a dead predecessor's in-flight work died with it */
	__atomic_store_n(&mine->uploads, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&mine->fetches, 0, __ATOMIC_RELAXED);
}

static int method_index(int m)
{
	switch (m) {
	case HTTP_GET:
		return 0;
	case HTTP_HEAD:
		return 1;
	case HTTP_POST:
		return 2;
	case HTTP_PUT:
		return 3;
	case HTTP_PATCH:
		return 4;
	case HTTP_DELETE:
		return 5;
	case HTTP_OPTIONS:
		return 6;
	default:
		return 7;
	}
}

static int status_index(int status)
{
	static unsigned char idx[600];
	static int ready;

	if (!ready) {
		memset(idx, NSTATUS - 1, sizeof idx);
		for (size_t i = 0; i < NSTATUS - 1; i++)
			idx[status_codes[i]] = (unsigned char)i;
		ready = 1;
	}
	return status >= 0 && status < 600 ? idx[status] : (int)NSTATUS - 1;
}

void gl_metrics_request(int route, int method, int status, double ms,
			int64_t received, int64_t sent)
{
	double s = ms / 1000;
	size_t b = 0;

	if (route < 0 || route >= GL_ROUTE_COUNT)
		route = GL_ROUTE_NONE;
	while (b < NBOUNDS && s > bounds[b])
		b++;
	ADD(mine->requests[route][method_index(method)][status_index(status)],
	    1);
	ADD(mine->buckets[route][b], 1);
	ADD(mine->dur_us[route], (uint64_t)(ms * 1000));
	if (received > 0)
		ADD(mine->received[route], (uint64_t)received);
	if (sent > 0)
		ADD(mine->sent[route], (uint64_t)sent);
	if (route == GL_ROUTE_BLOB || route == GL_ROUTE_BLOB_KEY) {
		if (method == HTTP_PUT && received > 0)
			ADD(mine->upload_bytes, (uint64_t)received);
		if (method == HTTP_GET && sent > 0)
			ADD(mine->download_bytes, (uint64_t)sent);
	}
}

void gl_metrics_uploads(int delta)
{
	ADD(mine->uploads, delta);
}
void gl_metrics_fetch_started(void)
{
	ADD(mine->fetches, 1);
}
void gl_metrics_fetch_ended(void)
{
	ADD(mine->fetches, -1);
}

void gl_metrics_fetch_outcome(enum gl_fetch_outcome o, int64_t bytes)
{
	if ((unsigned)o < GL_FETCH_NOUTCOMES)
		ADD(mine->fetch[o], 1);
	if (bytes > 0)
		ADD(mine->fetch_bytes, (uint64_t)bytes);
}

void gl_metrics_verify(const char *status)
{
	for (int i = 0; i < NVERIFY; i++)
		if (!strcmp(status, verify_outcomes[i])) {
			ADD(mine->verify[i], 1);
			return;
		}
}

void gl_metrics_lua(int failed, int budget_hit, int out_of_memory)
{
	ADD(mine->lua_calls, 1);
	if (failed)
		ADD(mine->lua_errors, 1);
	if (budget_hit)
		ADD(mine->lua_budget, 1);
	if (out_of_memory)
		ADD(mine->lua_memory, 1);
}

void gl_metrics_fault(const char *type, const char *msg)
{
	int part = 2;

	if ((type && !strcmp(type, "StoreError")) ||
	    (msg && (!strncmp(msg, "S3", 2) || strstr(msg, "store"))))
		part = 1;
	else if (msg &&
		 (!strncmp(msg, "DBError", 7) || strstr(msg, "database")))
		part = 0;
	ADD(mine->faults[part], 1);
}

/* ---- exposition ----------------------------------------------------------- */

static int nslots(void)
{
	return shared ? shared->nslots : 1;
}
static slot *slot_at(int i)
{
	return shared ? &shared->slots[i] : mine;
}

#define SUM(expr)                                                             \
	({                                                                    \
		uint64_t _t = 0;                                              \
		for (int _i = 0; _i < nslots(); _i++) {                       \
			slot *S = slot_at(_i);                                \
			_t += GET(expr);                                      \
		}                                                             \
		_t;                                                           \
	})
#define SUMI(expr)                                                            \
	({                                                                    \
		int64_t _t = 0;                                               \
		for (int _i = 0; _i < nslots(); _i++) {                       \
			slot *S = slot_at(_i);                                \
			_t += GET(expr);                                      \
		}                                                             \
		_t;                                                           \
	})

static void head(gl_sb *b, const char *name, const char *type,
		 const char *help)
{
	gl_sb_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(gl_sb *b, const char *name, const char *type, const char *help,
		double v)
{
	head(b, name, type, help);
	gl_sb_addf(b, "%s %.17g\n", name, v);
}

/* A counter with one label over a fixed set of values: the slot's array
 * of counters at off, summed over the slots. skip_zero: leave out values
 * never counted (routes); outcomes always show. */
static void labelled(gl_sb *b, const char *name, const char *help,
		     const char *label, const char *const *values, int n,
		     size_t off, int skip_zero)
{
	head(b, name, "counter", help);
	for (int k = 0; k < n; k++) {
		uint64_t v = 0;
		for (int i = 0; i < nslots(); i++) {
			uint64_t *arr = (uint64_t *)((char *)slot_at(i) + off);
			v += GET(arr[k]);
		}
		if (v || !skip_zero)
			gl_sb_addf(b, "%s{%s=\"%s\"} %llu\n", name, label,
				   values[k], (unsigned long long)v);
	}
}

/* Process figures of one pid from /proc: cpu seconds, rss, vsize, fds,
 * start time (seconds since the epoch). */
typedef struct procfig {
	double cpu, start;
	uint64_t rss, vsize, fds;
} procfig;

static int read_proc(pid_t pid, procfig *f)
{
	char path[64], buf[2048], *p;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	static double boot;
	FILE *fp;
	size_t n;
	DIR *d;
	struct dirent *de;

	if (!boot) {
		fp = fopen("/proc/stat", "r");
		while (fp && fgets(buf, sizeof buf, fp))
			if (!strncmp(buf, "btime ", 6))
				boot = atof(buf + 6);
		if (fp)
			fclose(fp);
	}
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
			 &utime, &stime, &start, &vsize, &rss) != 5)
		return -1;
	f->cpu = (double)(utime + stime) / (double)tick;
	f->start = boot + (double)start / (double)tick;
	f->rss = (uint64_t)rss * (uint64_t)page;
	f->vsize = vsize;
	f->fds = 0;
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			f->fds++;
	if (d)
		closedir(d);
	return 0;
}

static void process_figures(gl_sb *b)
{
	procfig sum = { 0 }, f;
	double start = 0;
	pid_t master = shared ? shared->master : getpid();
	int workers = 0;

	if (read_proc(master, &f) == 0) {
		sum = f;
		start = f.start;
	}
	for (int i = 0; shared && i < nslots(); i++) {
		pid_t pid = GET(slot_at(i)->pid);
		if (pid <= 0 || pid == master || read_proc(pid, &f) < 0)
			continue;
		workers++;
		sum.cpu += f.cpu;
		sum.rss += f.rss;
		sum.vsize += f.vsize;
		sum.fds += f.fds;
	}
	one(b, "glared_workers", "gauge", "Worker processes serving.",
	    workers ? workers : 1);
	one(b, "process_cpu_seconds_total", "counter",
	    "User and system CPU time of the master and its workers.",
	    sum.cpu);
	one(b, "process_resident_memory_bytes", "gauge",
	    "Resident memory of the master and its workers.", (double)sum.rss);
	one(b, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory of the master and its workers.",
	    (double)sum.vsize);
	one(b, "process_open_fds", "gauge",
	    "Open file descriptors of the master and its workers.",
	    (double)sum.fds);
	one(b, "process_start_time_seconds", "gauge",
	    "Start time of the server since the epoch.", start);
}

char *gl_metrics_render(size_t *len)
{
	gl_sb b;

	memset(&b, 0, sizeof b);
	head(&b, "glared_build_info", "gauge", "The running version.");
	gl_sb_addf(&b, "glared_build_info{version=\"%s\"} 1\n",
		   GLARED_VERSION);

	head(&b, "glared_http_requests_total", "counter",
	     "HTTP requests by method, route template and status.");
	for (int r = 0; r < GL_ROUTE_COUNT; r++)
		for (int m = 0; m < NMETHODS; m++)
			for (size_t s = 0; s < NSTATUS; s++) {
				uint64_t v = SUM(S->requests[r][m][s]);
				char code[8];
				if (!v)
					continue;
				if (s < NSTATUS - 1)
					snprintf(code, sizeof code, "%d",
						 status_codes[s]);
				else
					snprintf(code, sizeof code, "other");
				gl_sb_addf(&b,
					   "glared_http_requests_total{"
					   "method=\"%s\",route=\"%s\","
					   "status=\"%s\"} %llu\n",
					   method_names[m], route_names[r],
					   code, (unsigned long long)v);
			}

	head(&b, "glared_http_request_duration_seconds", "histogram",
	     "Time from the request line to the last byte of the response, "
	     "by route template.");
	for (int r = 0; r < GL_ROUTE_COUNT; r++) {
		uint64_t cum = 0, bk[NBOUNDS + 1];
		for (size_t i = 0; i <= NBOUNDS; i++) {
			bk[i] = SUM(S->buckets[r][i]);
			cum += bk[i];
		}
		if (!cum)
			continue;
		cum = 0;
		for (size_t i = 0; i <= NBOUNDS; i++) {
			cum += bk[i];
			if (i < NBOUNDS)
				gl_sb_addf(&b,
					   "glared_http_request_duration_"
					   "seconds_bucket{route=\"%s\","
					   "le=\"%g\"} %llu\n",
					   route_names[r], bounds[i],
					   (unsigned long long)cum);
			else
				gl_sb_addf(&b,
					   "glared_http_request_duration_"
					   "seconds_bucket{route=\"%s\","
					   "le=\"+Inf\"} %llu\n",
					   route_names[r],
					   (unsigned long long)cum);
		}
		gl_sb_addf(&b,
			   "glared_http_request_duration_seconds_sum{"
			   "route=\"%s\"} %.6f\n",
			   route_names[r], (double)SUM(S->dur_us[r]) / 1e6);
		gl_sb_addf(&b,
			   "glared_http_request_duration_seconds_count{"
			   "route=\"%s\"} %llu\n",
			   route_names[r], (unsigned long long)cum);
	}

	labelled(&b, "glared_http_received_bytes_total",
		 "Request body bytes received, by route template.", "route",
		 route_names, GL_ROUTE_COUNT, offsetof(slot, received), 1);
	labelled(&b, "glared_http_sent_bytes_total",
		 "Response body bytes sent, by route template.", "route",
		 route_names, GL_ROUTE_COUNT, offsetof(slot, sent), 1);
	one(&b, "glared_blob_upload_bytes_total", "counter",
	    "Blob bytes received by uploads (PUT).",
	    (double)SUM(S->upload_bytes));
	one(&b, "glared_blob_download_bytes_total", "counter",
	    "Blob bytes sent by downloads (GET).",
	    (double)SUM(S->download_bytes));
	one(&b, "glared_uploads_in_flight", "gauge",
	    "Blob uploads receiving their body now.",
	    (double)SUMI(S->uploads));
	one(&b, "glared_fetches_in_flight", "gauge",
	    "External location fetches running or queued now.",
	    (double)SUMI(S->fetches));

	labelled(&b, "glared_external_fetches_total",
		 "External location fetches by outcome.", "outcome",
		 fetch_outcomes, GL_FETCH_NOUTCOMES, offsetof(slot, fetch), 0);
	one(&b, "glared_external_fetch_bytes_total", "counter",
	    "Bytes received by external location fetches.",
	    (double)SUM(S->fetch_bytes));
	labelled(&b, "glared_verifications_total",
		 "External blob verifications by outcome.", "outcome",
		 verify_outcomes, NVERIFY, offsetof(slot, verify), 0);

	one(&b, "glared_lua_calls_total", "counter",
	    "Calls into the type runtime (hooks, coercion, output).",
	    (double)SUM(S->lua_calls));
	one(&b, "glared_lua_errors_total", "counter",
	    "Calls into the type runtime that raised an error.",
	    (double)SUM(S->lua_errors));
	one(&b, "glared_lua_budget_exceeded_total", "counter",
	    "Calls stopped by lua_instruction_limit.",
	    (double)SUM(S->lua_budget));
	one(&b, "glared_lua_memory_exceeded_total", "counter",
	    "Calls stopped by lua_memory_limit.", (double)SUM(S->lua_memory));

	labelled(&b, "glared_faults_total",
		 "Server-side failures (5xx replies) by the part that failed.",
		 "component", fault_parts, NFAULT, offsetof(slot, faults), 0);
	process_figures(&b);
	*len = b.len;
	return b.p;
}
