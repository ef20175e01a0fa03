/* server.c - `glared serve`: master, workers, signals (see server.h).
 *
 * Processes. With workers = 1 the process serves itself; with more, a
 * master forks the workers, restarts one that dies and forwards SIGTERM,
 * SIGINT and SIGHUP. Workers share the port with SO_REUSEPORT.
 *
 * A worker never outlives its master: it asks the kernel for SIGTERM when
 * the master dies (PR_SET_PDEATHSIG, set right after fork; the master may
 * have died before that, which getppid() tells) and then stops as on any
 * SIGTERM, finishing or aborting its requests within shutdown_timeout.
 *
 * The port is glared's alone: before recovery and before any worker
 * starts, the address is bound once without SO_REUSEPORT. That fails
 * while anything else listens there - workers left by an earlier master
 * (say one killed before this rule existed), or another server - and
 * glared then refuses to start, naming the port, instead of sharing it
 * with processes that serve another configuration.
 */
#include "server.h"
#include "access.h"
#include "admin.h"
#include "api.h"
#include "coro.h"
#include "engine.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

typedef struct worker {
	gl_app app;
	gl_http_server *http;
	gl_admin *admin;
	struct event *sig_term, *sig_int, *sig_hup, *force;
	int stopping;
} worker;

static void stop_done(void *arg)
{
	worker *w = arg;
	event_base_loopbreak(w->app.base);
}

static void force_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	worker *w = arg;
	gl_warn("shutdown: %d connection(s) still open after %d s, closing",
		gl_http_server_nconns(w->http), w->app.conf->shutdown_timeout);
	event_base_loopbreak(w->app.base);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	worker *w = arg;
	struct timeval tv = { w->app.conf->shutdown_timeout, 0 };

	if (w->stopping) {
		/* a second signal: stop now */
		event_base_loopbreak(w->app.base);
		return;
	}
	w->stopping = 1;
	gl_info("signal %d: stop accepting, finishing in-flight requests",
		(int)sig);
	w->force = evtimer_new(w->app.base, force_stop_cb, w);
	if (w->force)
		evtimer_add(w->force, &tv);
	gl_http_server_shutdown(w->http, stop_done, w);
}

/* A worker listens (and the tests see the server up) before its SIGHUP
 * handler is in; a SIGHUP then (a log rotation, a reload) would kill it
 * with the default action and leave the port to the other workers until
 * the master's restart. So a worker starts with SIGHUP blocked and takes
 * it once its handler is in: a reopen that came meanwhile happens then.
 * (Threads started meanwhile keep it blocked: it is the loop's.) */
static void hup_mask(int how)
{
	sigset_t hup;

	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	sigprocmask(how, &hup, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	worker *w = arg;
	gl_err err = { 0 };

	gl_log_reopen();
	if (gl_engine_reload_types(w->app.engine, &err) < 0)
		gl_error("reload: type files rejected, old set keeps serving: %s",
			 err.msg);
	else
		gl_info("reload: type files reloaded");
}

static gl_policy *load_policy(const gl_conf *conf)
{
	gl_policy *p = gl_policy_new();
	gl_err err;

	if (conf->policy_file && *conf->policy_file &&
	    gl_policy_load_file(p, conf->policy_file, &err) < 0) {
		gl_error("policy file %s: %s", conf->policy_file, err.msg);
		gl_policy_free(p);
		return NULL;
	}
	return p;
}

/* One worker: its own loop, engine (db, Lua) and listener. */
static int run_worker(gl_conf *conf, const char *host, int port, int reuse,
		      int idx)
{
	worker w = { 0 };
	gl_http_limits lim;
	gl_err err = { 0 };
	int rc = 1;

	gl_metrics_worker(idx);
	w.app.conf = conf;
	w.app.base = event_base_new();
	w.app.policy = load_policy(conf);
	if (!w.app.base || !w.app.policy)
		goto out;
	w.app.engine = gl_engine_new(conf, w.app.policy, w.app.base, &err);
	if (!w.app.engine || gl_engine_attach_loop(w.app.engine, &err) < 0) {
		gl_error("%s", err.msg);
		goto out;
	}
	/* each worker delivers events (claims keep them from colliding) */
	if (gl_events_start(gl_engine_events(w.app.engine), &err) < 0) {
		gl_error("events: %s", err.msg);
		goto out;
	}
	w.app.auth = gl_auth_new(conf, w.app.base, &err);
	if (!w.app.auth) {
		gl_error("%s", err.msg);
		goto out;
	}
	/* requests run in coroutines from here on (api.c), so waits for
	 * PostgreSQL leave the loop free */
	gl_coro_enable(w.app.base);
	gl_http_limits_default(&lim);
	lim.max_header_line = (size_t)conf->max_header_line;
	lim.max_header_size = (size_t)conf->max_header_size;
	lim.client_timeout = conf->client_socket_timeout;
	lim.header_timeout = conf->header_timeout;
	lim.first_byte_timeout = conf->first_byte_timeout;
	lim.keepalive = conf->http_keepalive;
	lim.max_conns = conf->max_connections;
	lim.max_conns_per_client = conf->max_connections_per_client;
	w.http = gl_http_server_new(w.app.base, &lim, gl_api_dispatch,
				    gl_api_http_error, &w.app);
	if (w.http)
		gl_http_server_on_complete(w.http, gl_access_complete, conf);
	if (!w.http ||
	    gl_http_server_listen(w.http, host, port, reuse, &err)) {
		gl_error("%s", w.http ? err.msg : "out of memory");
		goto out;
	}
	/* the admin socket: one listener, in the first worker */
	if (idx == 0 && gl_admin_start(&w.app, &w.admin, &err) < 0)
		gl_error("admin socket: %s", err.msg);
	w.sig_term = evsignal_new(w.app.base, SIGTERM, on_stop_signal, &w);
	w.sig_int = evsignal_new(w.app.base, SIGINT, on_stop_signal, &w);
	w.sig_hup = evsignal_new(w.app.base, SIGHUP, on_hup, &w);
	evsignal_add(w.sig_term, NULL);
	evsignal_add(w.sig_int, NULL);
	evsignal_add(w.sig_hup, NULL);
	hup_mask(SIG_UNBLOCK); /* one that came meanwhile is handled now */
	gl_info("serving on %s:%d", host, gl_http_server_port(w.http));
	/* a worker that replaces a dead one takes over its work at once */
	gl_engine_maintain(w.app.engine);
	event_base_dispatch(w.app.base);
	rc = 0;
out:
	/* coroutines still waiting for the database (a forced stop, a
	 * timer's work) end now; what runs after, blocks */
	gl_engine_stop(w.app.engine);
	if (gl_coro_live() > 0)
		gl_warn("shutdown: %d coroutine(s) did not finish",
			gl_coro_live());
	else
		gl_coro_enable(NULL);
	gl_admin_free(w.admin);
	if (w.http)
		gl_http_server_free(w.http);
	if (w.sig_term)
		event_free(w.sig_term);
	if (w.sig_int)
		event_free(w.sig_int);
	if (w.sig_hup)
		event_free(w.sig_hup);
	if (w.force)
		event_free(w.force);
	gl_auth_free(w.app.auth);
	gl_engine_free(w.app.engine);
	gl_policy_free(w.app.policy);
	if (w.app.base)
		event_base_free(w.app.base);
	return rc;
}

/* ---- master ----------------------------------------------------------------- */

static volatile sig_atomic_t got_sig;

static void master_sig(int sig)
{
	got_sig = sig;
}

/* Bind once without SO_REUSEPORT (see the top): a busy port or a bad
 * address is reported here, before anything else happens. */
static int probe_bind(const char *host, int port)
{
	struct event_base *b = event_base_new();
	gl_http_limits lim;
	gl_http_server *s;
	gl_err err;
	int rc, e;

	gl_http_limits_default(&lim);
	s = gl_http_server_new(b, &lim, gl_api_dispatch, gl_api_http_error,
			       NULL);
	rc = gl_http_server_listen(s, host, port, 0, &err);
	e = errno;
	if (rc && e == EADDRINUSE)
		gl_error("%s: another process listens on port %d (workers "
			 "left by an earlier glared whose master was killed, "
			 "or another server); glared does not share its port: "
			 "stop that process first",
			 err.msg, port);
	else if (rc)
		gl_error("%s", err.msg);
	gl_http_server_free(s);
	event_base_free(b);
	return rc;
}

static pid_t spawn(gl_conf *conf, const char *host, int port, int idx)
{
	pid_t master = getpid(), pid;

	/* the worker starts with SIGHUP blocked (see hup_mask) */
	hup_mask(SIG_BLOCK);
	pid = fork();
	if (pid != 0)
		hup_mask(SIG_UNBLOCK);
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/* the master's death is our SIGTERM; if it died already,
		 * we were re-parented before asking */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
		    getppid() != master)
			_exit(1);
		_exit(run_worker(conf, host, port, 1, idx));
	}
	if (pid < 0)
		gl_error("fork worker %d: %s", idx, strerror(errno));
	return pid;
}

static int run_master(gl_conf *conf, const char *host, int port)
{
	int n = conf->workers;
	pid_t *pids = calloc((size_t)n, sizeof *pids);
	time_t *started = calloc((size_t)n, sizeof *started);
	struct sigaction sa = { 0 };
	int alive = 0, stopping = 0;

	if (!pids || !started)
		return 1;
	sa.sa_handler = master_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = spawn(conf, host, port, i);
		started[i] = time(NULL);
		if (pids[i] > 0)
			alive++;
	}
	gl_info("master: %d workers on %s:%d", alive, host, port);
	while (alive > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);

		if (pid < 0 && errno == EINTR) {
			int sig = got_sig;
			got_sig = 0;
			if (sig == SIGTERM || sig == SIGINT)
				stopping = 1;
			if (sig == SIGHUP)
				gl_log_reopen();
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], sig);
			continue;
		}
		if (pid < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			pids[i] = 0;
			alive--;
			if (stopping)
				break;
			gl_error("worker %d (pid %d) died (%s %d), restarting",
				 i, (int)pid,
				 WIFSIGNALED(st) ? "signal" : "status",
				 WIFSIGNALED(st) ? WTERMSIG(st)
						 : WEXITSTATUS(st));
			/* a worker that cannot start would spin: back off */
			if (time(NULL) - started[i] < 2)
				sleep(1);
			pids[i] = spawn(conf, host, port, i);
			started[i] = time(NULL);
			if (pids[i] > 0)
				alive++;
		}
	}
	free(pids);
	free(started);
	gl_info("master: all workers stopped");
	return 0;
}

void gl_serve_summary(const gl_conf *conf, const char *host, int port)
{
	char db[512], types[512] = "";
	size_t n = 0;

	gl_conn_display(conf->db_connection, db, sizeof db);
	for (int i = 0; i < conf->enabled_artifact_types.n && n < sizeof types;
	     i++)
		n += (size_t)snprintf(types + n, sizeof types - n, "%s%s",
				      i ? "," : "",
				      conf->enabled_artifact_types.v[i]);
	gl_info("glared %s starting: config %s; database %s; store %s "
		"(files %s%s%s); types %s (from %s); flavor %s; workers %d; "
		"bind %s:%d",
		GLARED_VERSION, conf->path ? conf->path : "-", db,
		conf->default_store, conf->filesystem_store_datadir,
		conf->s3_store_host ? ", s3 " : "",
		conf->s3_store_host ? conf->s3_store_host : "", types,
		conf->types_path,
		conf->flavor && *conf->flavor ? conf->flavor : "trusted",
		conf->workers < 1 ? 1 : conf->workers, host, port);
}

int gl_serve(gl_conf *conf, const char *host, int port)
{
	const char *h = host ? host : conf->bind_host;
	int p = port >= 0 ? port : conf->bind_port;
	gl_err err = { 0 };

	gl_serve_summary(conf, h, p);
	gl_auth_warn_exposure(conf, h);
	if (probe_bind(h, p))
		return 1;
	/* recovery and checks once, before any worker serves */
	{
		gl_policy *pol = load_policy(conf);
		struct event_base *b = event_base_new();
		gl_engine *e = pol ? gl_engine_new(conf, pol, b, &err) : NULL;
		gl_auth *a = gl_auth_new(conf, b, &err);
		int rc = 0;

		if (!a) {
			gl_error("%s", err.msg);
			rc = -1;
		} else if (!pol) {
			rc = -1;
		} else if (!e) {
			gl_error("%s", err.msg);
			rc = -1;
		} else if (gl_engine_recover(e, &err) < 0) {
			gl_error("recovery: %s", err.msg);
			rc = -1;
		}
		gl_auth_free(a);
		gl_engine_free(e);
		gl_policy_free(pol);
		event_base_free(b);
		if (rc < 0)
			return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* before any fork: the workers inherit the shared counters */
	if (gl_metrics_init(conf->workers) < 0)
		gl_warn("metrics: no shared memory, /metrics shows one worker");
	if (conf->workers <= 1)
		return run_worker(conf, h, p, 0, 0); /* no port sharing */
	return run_master(conf, h, p);
}
