/* walsync.c - group commit for the SQLite store (see walsync.h).
 *
 * Why this is as durable as synchronous=FULL for every commit whose
 * waiter was told ok (docs/storage.md, "Durable commits"): with FULL,
 * SQLite fsyncs the WAL at the end of each COMMIT, after writing its
 * frames. Here the frames are written the same way (write(2), in
 * order), and a waiter is released only by an fdatasync of the WAL file
 * that started after the commit returned, so the same bytes have reached
 * the disk. fdatasync is per inode, so the thread's own descriptor covers
 * frames written through any other one, by any worker process. The
 * subtleties:
 *   - a checkpoint may copy the frames into the database file and a later
 *     writer may restart the WAL over them before the sync: SQLite syncs
 *     the database file before it marks frames as copied, and syncs the
 *     new WAL header before writing over old frames (also with NORMAL),
 *     so the commit is durable in the database file by then;
 *   - the WAL file is only removed when the last connection closes, after
 *     a full checkpoint that synced the database; the thread's checkpoint
 *     connection stays open, and a sync finding another inode at the path
 *     reopens it (a missing WAL means nothing is left to sync);
 *   - padding the WAL to a sector boundary, the other thing FULL does at
 *     a commit, is off on Linux anyway (the unix VFS assumes powersafe
 *     overwrite).
 * What differs: a commit is visible to readers (of every worker) before
 * it is durable; a reader may thus see, and report, a change whose writer
 * has not been answered yet and that a power loss in between would undo.
 *
 * Syncs are started on a zero timer after a commit, so the requests the
 * loop has already read commit before the sync starts and share it; the
 * commits made while one runs start the next as soon as it ends.
 */
#include "walsync.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* WAL pages after which a checkpoint is due: SQLite's auto-checkpoint. */
#define CKPT_PAGES 1000

typedef struct waiter {
	void (*fn)(void *arg, int ok);
	void *arg;
	uint64_t seq;
	struct waiter *next;
} waiter;

struct gl_walsync {
	struct event_base *base;
	sqlite3 *db; /* the loop's connection (hooks only) */
	char *path, *wal_path;
	/* loop side */
	uint64_t committed; /* commits made */
	uint64_t durable;   /* commits covered by a finished sync */
	uint64_t inflight;  /* target of the sync running, 0: none */
	int failed;         /* errno of a failed sync: no durability */
	waiter *waiters;    /* oldest first */
	waiter **tail;
	struct event *kick;    /* zero timer: start a sync */
	struct event *done_ev; /* efd readable: a sync ended */
	int efd;
	/* shared, under mu */
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t req;      /* sync requested up to */
	uint64_t thr_done; /* synced up to */
	int thr_err;       /* errno of the last sync, 0 ok */
	int ckpt;          /* a checkpoint is due */
	int quit;
	/* the thread's own */
	int fd;        /* the WAL */
	sqlite3 *ckdb; /* for checkpoints */
};

/* ---- the thread ------------------------------------------------------------ */

/* fdatasync of the WAL through a descriptor of our own, reopened when the
 * path names another file than the one we hold. */
static int sync_wal(gl_walsync *w)
{
	struct stat held, now;

	if (stat(w->wal_path, &now) != 0)
		return errno == ENOENT ? 0 : errno;
	if (w->fd >= 0 &&
	    (fstat(w->fd, &held) != 0 || held.st_ino != now.st_ino ||
	     held.st_dev != now.st_dev)) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->fd < 0) {
		w->fd = open(w->wal_path, O_RDONLY | O_CLOEXEC);
		if (w->fd < 0)
			return errno == ENOENT ? 0 : errno;
	}
	return fdatasync(w->fd) ? errno : 0;
}

static void checkpoint(gl_walsync *w)
{
	int rc;

	if (!w->ckdb) {
		rc = sqlite3_open_v2(w->path, &w->ckdb,
				     SQLITE_OPEN_READWRITE |
					     SQLITE_OPEN_NOMUTEX,
				     NULL);
		/* NORMAL: the checkpoint syncs the WAL before copying and the
		 * database after (which the WAL restart relies on) */
		if (rc != SQLITE_OK ||
		    sqlite3_exec(w->ckdb, "PRAGMA synchronous = NORMAL", NULL,
				 NULL, NULL) != SQLITE_OK) {
			gl_warn("walsync: checkpoint connection: %s",
				w->ckdb ? sqlite3_errmsg(w->ckdb)
					: sqlite3_errstr(rc));
			sqlite3_close(w->ckdb);
			w->ckdb = NULL;
			return;
		}
	}
	/* PASSIVE never waits for readers or writers; what it could not copy
	 * is copied by the next one */
	rc = sqlite3_wal_checkpoint_v2(w->ckdb, NULL,
				       SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		gl_warn("walsync: checkpoint: %s", sqlite3_errmsg(w->ckdb));
}

static void *thread_main(void *arg)
{
	gl_walsync *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->quit && w->req == w->thr_done && !w->ckpt)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->req != w->thr_done) {
			uint64_t target = w->req;
			int e;

			pthread_mutex_unlock(&w->mu);
			e = sync_wal(w);
			pthread_mutex_lock(&w->mu);
			w->thr_done = target;
			w->thr_err = e;
			if (write(w->efd, &one, sizeof one) < 0)
				gl_warn("walsync: eventfd: %s",
					strerror(errno));
			continue;
		}
		if (w->ckpt) {
			w->ckpt = 0;
			pthread_mutex_unlock(&w->mu);
			checkpoint(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->quit)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the loop ------------------------------------------------------------- */

static void request_sync(gl_walsync *w)
{
	if (w->inflight || w->committed == w->durable || w->failed)
		return;
	w->inflight = w->committed;
	pthread_mutex_lock(&w->mu);
	w->req = w->inflight;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Call the waiters whose commits are durable (all of them, ok = 0, after
 * a failure). A callback may wait again or cancel: the list is unlinked
 * first. */
static void release(gl_walsync *w)
{
	waiter *done = NULL, **dt = &done, *x;

	while (w->waiters && (w->failed || w->waiters->seq <= w->durable)) {
		x = w->waiters;
		w->waiters = x->next;
		x->next = NULL;
		*dt = x;
		dt = &x->next;
	}
	if (!w->waiters)
		w->tail = &w->waiters;
	while (done) {
		x = done;
		done = x->next;
		x->fn(x->arg, !w->failed);
		free(x);
	}
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	gl_walsync *w = arg;

	release(w); /* gl_walsync_now may have covered some */
	request_sync(w);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	gl_walsync *w = arg;
	uint64_t n, done;
	int e;

	if (read(w->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		gl_warn("walsync: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	done = w->thr_done;
	e = w->thr_err;
	pthread_mutex_unlock(&w->mu);
	if (!w->inflight || done < w->inflight)
		return;
	w->inflight = 0;
	if (e && !w->failed) {
		w->failed = e;
		gl_error("walsync: fdatasync of %s failed: %s; commits are no"
			 " longer durable, write requests fail until glared"
			 " restarts",
			 w->wal_path, strerror(e));
	}
	if (!e && done > w->durable)
		w->durable = done;
	release(w);
	/* the commits made meanwhile share the next sync */
	request_sync(w);
}

static int on_commit(void *arg)
{
	gl_walsync *w = arg;
	const struct timeval zero = { 0, 0 };

	w->committed++;
	if (!w->inflight && !evtimer_pending(w->kick, NULL))
		evtimer_add(w->kick, &zero);
	return 0; /* let it commit */
}

static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
	gl_walsync *w = arg;

	if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&w->mu);
		if (!w->ckpt) {
			w->ckpt = 1;
			pthread_cond_signal(&w->cv);
		}
		pthread_mutex_unlock(&w->mu);
	}
	return SQLITE_OK;
}

gl_walsync *gl_walsync_new(struct event_base *base, sqlite3 *db,
			   const char *path, gl_err *err)
{
	gl_walsync *w = gl_xcalloc(1, sizeof *w);
	size_t n = strlen(path);
	sigset_t all, old;
	int rc;

	w->base = base;
	w->db = db;
	w->path = gl_xstrdup(path);
	w->wal_path = gl_xmalloc(n + 5);
	memcpy(w->wal_path, path, n);
	memcpy(w->wal_path + n, "-wal", 5);
	w->tail = &w->waiters;
	w->fd = -1;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		gl_fail(err, 500, NULL, "walsync: eventfd: %s",
			strerror(errno));
		goto fail;
	}
	w->kick = evtimer_new(base, on_kick, w);
	w->done_ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_done, w);
	if (!w->kick || !w->done_ev || event_add(w->done_ev, NULL)) {
		gl_fail(err, 500, NULL, "walsync: cannot register events");
		goto fail;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* signals (TERM, HUP, ...) stay with the loop's thread: the syncer
	 * starts with all of them blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thr, NULL, thread_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		gl_fail(err, 500, NULL, "walsync: cannot start the thread");
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		goto fail;
	}
	if (sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL,
			 NULL) != SQLITE_OK) {
		gl_fail(err, 500, NULL, "walsync: %s", sqlite3_errmsg(db));
		w->db = NULL;
		gl_walsync_free(w);
		return NULL;
	}
	sqlite3_commit_hook(db, on_commit, w);
	sqlite3_wal_hook(db, on_wal, w); /* replaces the auto-checkpoint */
	return w;
fail:
	if (w->done_ev)
		event_free(w->done_ev);
	if (w->kick)
		event_free(w->kick);
	if (w->efd >= 0)
		close(w->efd);
	free(w->path);
	free(w->wal_path);
	free(w);
	return NULL;
}

int gl_walsync_now(gl_walsync *w, gl_err *err)
{
	uint64_t target = w->committed;
	int e;

	if (w->failed)
		return gl_fail(err, 500, NULL, "commits are not durable: %s",
			       strerror(w->failed));
	if (target == w->durable)
		return 0;
	/* the thread's descriptor is its own: sync through a fresh one */
	{
		int fd = open(w->wal_path, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			e = errno == ENOENT ? 0 : errno;
		else {
			e = fdatasync(fd) ? errno : 0;
			close(fd);
		}
	}
	if (e)
		return gl_fail(err, 500, NULL, "fdatasync of %s: %s",
			       w->wal_path, strerror(e));
	if (target > w->durable) {
		const struct timeval zero = { 0, 0 };

		w->durable = target;
		/* waiters are called from the loop, not from here */
		if (w->waiters && !evtimer_pending(w->kick, NULL))
			evtimer_add(w->kick, &zero);
	}
	return 0;
}

int gl_walsync_wait(gl_walsync *w, void (*fn)(void *arg, int ok), void *arg)
{
	waiter *x;

	if (w->failed)
		return -1;
	if (w->committed == w->durable)
		return 0;
	x = gl_xcalloc(1, sizeof *x);
	x->fn = fn;
	x->arg = arg;
	x->seq = w->committed;
	*w->tail = x;
	w->tail = &x->next;
	/* the commit started the zero timer (or a sync runs): the sync
	 * starts once the loop has read what else arrived */
	if (!w->inflight && !evtimer_pending(w->kick, NULL)) {
		const struct timeval zero = { 0, 0 };

		evtimer_add(w->kick, &zero);
	}
	return 1;
}

void gl_walsync_cancel(gl_walsync *w, void *arg)
{
	waiter **p = &w->waiters, *x;

	while ((x = *p)) {
		if (x->arg == arg) {
			*p = x->next;
			free(x);
		} else {
			p = &x->next;
		}
	}
	w->tail = &w->waiters;
	while (*w->tail)
		w->tail = &(*w->tail)->next;
}

void gl_walsync_free(gl_walsync *w)
{
	gl_err ignore;
	waiter *x;

	if (!w)
		return;
	if (w->db) {
		sqlite3_commit_hook(w->db, NULL, NULL);
		sqlite3_wal_hook(w->db, NULL, NULL);
		if (gl_walsync_now(w, &ignore) < 0)
			gl_error("walsync: %s", ignore.msg);
	}
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	while ((x = w->waiters)) {
		w->waiters = x->next;
		free(x);
	}
	if (w->fd >= 0)
		close(w->fd);
	sqlite3_close(w->ckdb);
	event_free(w->kick);
	event_free(w->done_ev);
	close(w->efd);
	free(w->path);
	free(w->wal_path);
	free(w);
}
