/* curlev.c - libcurl's multi interface on a libevent loop (see curlev.h).
 *
 * The driver keeps a list of the transfers it has to revisit (attached:
 * in the multi handle, waiting to be added, or waiting to be reported as
 * failed). Nothing is ever unlinked from that list while curl runs: inside
 * curl (depth > 0) cancel marks, add appends, resume sets a flag; only
 * `deferred` and callers outside curl unlink. That is what lets the
 * deferred pass walk the list while curl_easy_pause runs caller code.
 */
#include "curlev.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* One watched socket; curl keeps the pointer (curl_multi_assign). */
typedef struct ev_sock {
	struct event *ev;
	struct ev_sock *prev, *next;
} ev_sock;

struct gl_curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;    /* curl's timeout */
	struct event *deferred; /* work postponed out of curl */
	ev_sock *socks;         /* freed at the end if curl did not */
	gl_curlev_xfer *head, *tail;
	int depth; /* > 0 while inside curl */
	const gl_curlev_ops *ops;
	void *arg;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode gl_curl_global_init(void)
{
	pthread_once(&curl_once, curl_init_once);
	return curl_init_rc;
}

int gl_curl_init(gl_err *err)
{
	CURLcode rc = gl_curl_global_init();

	if (rc != CURLE_OK)
		return gl_fail(err, 500, NULL, "cannot initialise libcurl: %s",
			       curl_easy_strerror(rc));
	return 0;
}

void gl_curl_url_host(const char *url, const char *dflt, char *out, size_t len)
{
	char *host = NULL, *port = NULL;
	CURLU *u;

	snprintf(out, len, "%s", dflt);
	if (!url || !(u = curl_url()))
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
			snprintf(out, len, "%s:%s", host, port);
		else
			snprintf(out, len, "%s", host);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

static void kick(gl_curlev *ev)
{
	event_active(ev->deferred, 0, 0);
}

static void link_xfer(gl_curlev_xfer *x)
{
	gl_curlev *ev = x->ev;

	/* at the tail: the deferred pass treats transfers in start order */
	x->prev = ev->tail;
	x->next = NULL;
	if (ev->tail)
		ev->tail->next = x;
	else
		ev->head = x;
	ev->tail = x;
	x->attached = 1;
}

void gl_curlev_detach(gl_curlev_xfer *x)
{
	gl_curlev *ev = x->ev;

	if (!x->attached)
		return;
	if (x->in_multi)
		curl_multi_remove_handle(ev->multi, x->easy);
	if (x->prev)
		x->prev->next = x->next;
	else
		ev->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	else
		ev->tail = x->prev;
	x->prev = x->next = NULL;
	/* a transfer added again (a retry) starts from a clean state */
	x->redeliver = 0;
	x->fail_rc = CURLE_OK;
	x->attached = x->in_multi = x->add_pending = x->cancelled = 0;
	x->paused = x->resume_pending = x->fail_pending = 0;
}

/* Report x as ended (outside curl). The owner may free it. */
static void report(gl_curlev_xfer *x, CURLcode rc)
{
	void *owner = x->owner;

	gl_curlev_detach(x);
	x->ev->ops->done(owner, rc);
}

static void reap(gl_curlev_xfer *x)
{
	void *owner = x->owner;

	gl_curlev_detach(x);
	x->ev->ops->destroy(owner);
}

/* Outside curl: into the multi handle, or failed on the next pass. */
static void add_now(gl_curlev_xfer *x)
{
	x->add_pending = 0;
	if (curl_multi_add_handle(x->ev->multi, x->easy) == CURLM_OK) {
		x->in_multi = 1;
		return;
	}
	/* reported from `deferred`, not from inside the caller's add */
	x->fail_pending = 1;
	x->fail_rc = CURLE_OUT_OF_MEMORY;
	kick(x->ev);
}

/* Collect finished transfers (outside curl), then let the owner refill. */
static void read_info(gl_curlev *ev)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ev->multi, &left))) {
		gl_curlev_xfer *x = NULL;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		if (!x || x->cancelled)
			continue; /* `deferred` reaps it */
		/* the done callback may cancel others: curl drops their
		 * messages when they leave the multi handle, so the loop
		 * only ever sees live transfers */
		report(x, rc);
	}
	if (ev->ops->idle)
		ev->ops->idle(ev->arg);
}

static void socket_action(gl_curlev *ev, curl_socket_t fd, int flags)
{
	int running = 0;

	if (ev->ops->turn)
		ev->ops->turn(ev->arg);
	ev->depth++;
	curl_multi_socket_action(ev->multi, fd, flags, &running);
	ev->depth--;
	read_info(ev);
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	int flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	socket_action(arg, fd, flags);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	socket_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks, or stop. */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
		   void *socketp)
{
	gl_curlev *ev = userp;
	ev_sock *es = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (es) {
			if (es->prev)
				es->prev->next = es->next;
			else
				ev->socks = es->next;
			if (es->next)
				es->next->prev = es->prev;
			/* may be the event being dispatched (curl removes a
			 * socket inside socket_action): libevent allows freeing
			 * an event from its own callback */
			event_free(es->ev);
			free(es);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (!es) {
		es = calloc(1, sizeof *es);
		if (!es)
			return -1;
		es->ev = event_new(ev->base, s, kind, sock_event_cb, ev);
		if (!es->ev) {
			free(es);
			return -1;
		}
		es->next = ev->socks;
		if (ev->socks)
			ev->socks->prev = es;
		ev->socks = es;
		curl_multi_assign(ev->multi, s, es);
	} else {
		event_del(es->ev);
		event_assign(es->ev, ev->base, s, kind, sock_event_cb, ev);
	}
	event_add(es->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION. Never calls socket_action itself (curl would
 * recurse); 0 ms means "on the next loop pass". */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	gl_curlev *ev = userp;

	if (timeout_ms < 0) {
		evtimer_del(ev->timer);
	} else {
		struct timeval tv = { timeout_ms / 1000,
				      (timeout_ms % 1000) * 1000 };
		evtimer_add(ev->timer, &tv);
	}
	return 0;
}

/* The work curl's callbacks could not do, in this order: destroy what was
 * cancelled, resume what was paused, report what failed, add what was
 * added, collect what finished. */
static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_curlev *ev = arg;
	gl_curlev_xfer *x, *next;
	int again;

	if (ev->ops->turn)
		ev->ops->turn(ev->arg); /* the replays below are a new turn */
	for (x = ev->head; x; x = next) {
		next = x->next;
		if (x->cancelled)
			reap(x);
	}
	/* curl_easy_pause replays held data through the write callback
	 * (caller code, at depth > 0): it may cancel (mark) or add (append),
	 * which leaves this walk intact */
	for (x = ev->head; x; x = x->next) {
		CURLcode rc;

		if (!x->resume_pending)
			continue;
		x->resume_pending = 0;
		if (!x->paused || x->cancelled || x->fail_pending ||
		    !x->in_multi)
			continue;
		x->paused = 0;
		ev->depth++;
		rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
		ev->depth--;
		if (rc != CURLE_OK && !x->cancelled) {
			/* the replay failed (a limit, the caller stopped):
			 * curl still runs the transfer, so end it here */
			x->fail_pending = 1;
			x->fail_rc = rc;
		}
	}
	/* reports run the owner's done callback, which may cancel or free
	 * anything: rescan from the head after each */
	do {
		again = 0;
		for (x = ev->head; x; x = x->next) {
			if (x->cancelled) {
				reap(x);
				again = 1;
				break;
			}
			if (x->fail_pending) {
				report(x, x->fail_rc);
				again = 1;
				break;
			}
		}
	} while (again);
	/* add_now never calls back (a failure waits for the next pass) */
	for (x = ev->head; x; x = x->next)
		if (x->add_pending)
			add_now(x);
	read_info(ev);
}

gl_curlev *gl_curlev_new(struct event_base *base, const gl_curlev_ops *ops,
			 void *arg)
{
	gl_curlev *ev;

	if (gl_curl_global_init() != CURLE_OK)
		return NULL;
	ev = calloc(1, sizeof *ev);
	if (!ev)
		return NULL;
	ev->base = base;
	ev->ops = ops;
	ev->arg = arg;
	ev->multi = curl_multi_init();
	ev->timer = evtimer_new(base, timer_event_cb, ev);
	ev->deferred = event_new(base, -1, 0, deferred_cb, ev);
	if (!ev->multi || !ev->timer || !ev->deferred) {
		gl_curlev_free(ev);
		return NULL;
	}
	curl_multi_setopt(ev->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(ev->multi, CURLMOPT_SOCKETDATA, ev);
	curl_multi_setopt(ev->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(ev->multi, CURLMOPT_TIMERDATA, ev);
	return ev;
}

void gl_curlev_free(gl_curlev *ev)
{
	if (!ev)
		return;
	while (ev->head)
		gl_curlev_detach(ev->head);
	if (ev->multi)
		curl_multi_cleanup(ev->multi);
	/* sockets curl closed without a CURL_POLL_REMOVE */
	while (ev->socks) {
		ev_sock *es = ev->socks;

		ev->socks = es->next;
		event_free(es->ev);
		free(es);
	}
	if (ev->timer)
		event_free(ev->timer);
	if (ev->deferred)
		event_free(ev->deferred);
	free(ev);
}

void gl_curlev_xfer_init(gl_curlev_xfer *x, gl_curlev *ev, CURL *easy,
			 void *owner)
{
	*x = (gl_curlev_xfer){ 0 };
	x->ev = ev;
	x->easy = easy;
	x->owner = owner;
	/* how read_info finds the transfer of a finished easy handle */
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
}

void gl_curlev_add(gl_curlev_xfer *x)
{
	if (x->attached)
		return;
	link_xfer(x);
	if (x->ev->depth > 0) {
		/* curl refuses curl_multi_add_handle from its callbacks */
		x->add_pending = 1;
		kick(x->ev);
		return;
	}
	add_now(x);
}

int gl_curlev_cancel(gl_curlev_xfer *x)
{
	if (!x->attached)
		return 0;
	if (x->ev->depth > 0) {
		/* maybe inside x's own callback: curl still uses x->easy */
		x->cancelled = 1;
		kick(x->ev);
		return 1;
	}
	gl_curlev_detach(x);
	return 0;
}

int gl_curlev_cancelled(const gl_curlev_xfer *x)
{
	return x->cancelled;
}

size_t gl_curlev_replayed(gl_curlev_xfer *x, size_t n)
{
	size_t skip = n < x->redeliver ? n : x->redeliver;

	x->redeliver -= skip;
	return skip;
}

size_t gl_curlev_pause(gl_curlev_xfer *x, size_t n)
{
	/* curl hands this whole piece (and the rest) over again on resume */
	x->paused = 1;
	x->redeliver = n;
	return CURL_WRITEFUNC_PAUSE;
}

size_t gl_curlev_yield(gl_curlev_xfer *x, size_t n)
{
	gl_curlev_resume(x);
	return gl_curlev_pause(x, n);
}

void gl_curlev_resume(gl_curlev_xfer *x)
{
	if (!x->attached || x->cancelled)
		return;
	/* curl_easy_pause replays held data through the write callback at
	 * once: from `deferred`, callers never see their callback reentered */
	x->resume_pending = 1;
	kick(x->ev);
}
