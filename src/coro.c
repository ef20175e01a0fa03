/* coro.c - coroutines for a worker's event loop (see coro.h).
 *
 * Every context, the main stack included, is a gl_coro; `cur` is the one
 * running. A resume records the resumer as the coroutine's caller and
 * switches; a yield or the end of the function switches back to that
 * caller. Stacks of the default size are kept in a small cache, so a
 * request costs no mmap once the worker is warm.
 */
#include "coro.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#define CACHE_MAX 32

struct gl_coro {
	ucontext_t uc;
	gl_coro *caller; /* the context that resumed it */
	gl_coro_fn fn;
	void *arg;
	char *map; /* guard page, then the stack */
	size_t map_len;
	int active; /* running, or resuming another (on the chain) */
	int done;
	struct event *wake;
	gl_coro *next; /* the cache */
	/* AddressSanitizer's view: the fake stack while switched away, and
	 * the stack's bounds (the main stack's are learnt at a switch) */
	void *fake;
	const void *lo;
	size_t size;
};

static gl_coro main_ctx = { .active = 1 };
static gl_coro *cur = &main_ctx;
static struct event_base *wake_base;
static int live, noyield;
static gl_coro *cache;
static int ncached;

static void die(const char *what)
{
	gl_error("coroutine: %s", what);
	abort();
}

static size_t page_size(void)
{
	static size_t page;

	if (!page) {
		long p = sysconf(_SC_PAGESIZE);
		page = p > 0 ? (size_t)p : 4096;
	}
	return page;
}

static void unpoison(gl_coro *c)
{
#ifdef CORO_ASAN
	/* frames that never returned (a finished coroutine's entry) leave
	 * red zones behind in the shadow memory */
	ASAN_UNPOISON_MEMORY_REGION(c->map + page_size(),
				    c->map_len - page_size());
#else
	(void)c;
#endif
}

static void unmap(gl_coro *c)
{
	unpoison(c);
	if (c->wake)
		event_free(c->wake);
	munmap(c->map, c->map_len);
	free(c);
}

void gl_coro_enable(struct event_base *base)
{
	if (base != wake_base)
		while (cache) { /* wake events belong to the old loop */
			gl_coro *c = cache;
			cache = c->next;
			ncached--;
			unmap(c);
		}
	wake_base = base;
}

int gl_coro_enabled(void)
{
	return wake_base != NULL;
}

struct event_base *gl_coro_base(void)
{
	return wake_base;
}

gl_coro *gl_coro_self(void)
{
	return cur == &main_ctx ? NULL : cur;
}

int gl_coro_live(void)
{
	return live;
}

void gl_coro_guard(const gl_coro *c, uintptr_t *lo, uintptr_t *hi)
{
	*lo = (uintptr_t)c->map;
	*hi = (uintptr_t)c->map + page_size();
}

void gl_coro_noyield_enter(void)
{
	noyield++;
}

void gl_coro_noyield_leave(void)
{
	if (noyield <= 0)
		die("unbalanced no-yield section");
	noyield--;
}

/* Save the running context in from and continue in to; returns when a
 * switch comes back to from. AddressSanitizer is told of both ends; with
 * learn, of the bounds of the stack that switched back (from's caller: a
 * yield may be resumed by another context each time, and the main stack's
 * bounds are known only this way). Under ASan not with swapcontext: its
 * interceptor prints a warning into the log (which must stay one JSON
 * object a line with use_json) and clears the target stack's shadow
 * behind the annotations' back; getcontext and setcontext do the same
 * switch unseen. */
static void switch_to(gl_coro *from, gl_coro *to, int learn)
{
#ifdef CORO_ASAN
	volatile int back = 0;

	__sanitizer_start_switch_fiber(&from->fake, to->lo, to->size);
	if (getcontext(&from->uc) < 0)
		die("getcontext failed");
	if (!back) {
		back = 1;
		setcontext(&to->uc);
		die("setcontext returned");
	}
	__sanitizer_finish_switch_fiber(from->fake,
					learn ? &from->caller->lo : NULL,
					learn ? &from->caller->size : NULL);
#else
	(void)learn;
	if (swapcontext(&from->uc, &to->uc) < 0)
		die("swapcontext failed");
#endif
}

/* The first code a coroutine runs, on its own stack. */
static void entry(void)
{
	gl_coro *c = cur, *to;

#ifdef CORO_ASAN
	__sanitizer_finish_switch_fiber(NULL, &c->caller->lo,
					&c->caller->size);
#endif
	c->fn(c->arg);
	c->done = 1;
	c->active = 0;
	to = c->caller;
	cur = to;
#ifdef CORO_ASAN
	/* NULL: this stack is done with, its fake frames can go */
	__sanitizer_start_switch_fiber(NULL, to->lo, to->size);
#endif
	setcontext(&to->uc);
	die("setcontext returned");
}

/* getcontext returns twice: kept apart from the caller's locals */
static int make_ctx(gl_coro *c)
{
	if (getcontext(&c->uc) < 0)
		return -1;
	c->uc.uc_stack.ss_sp = c->map + page_size();
	c->uc.uc_stack.ss_size = c->map_len - page_size();
	c->uc.uc_link = NULL;
	makecontext(&c->uc, entry, 0);
	return 0;
}

gl_coro *gl_coro_new(gl_coro_fn fn, void *arg, size_t stack_size)
{
	size_t page = page_size();
	gl_coro *c = NULL;

	if (!stack_size)
		stack_size = GL_CORO_STACK;
	stack_size = (stack_size + page - 1) / page * page;
	if (stack_size == GL_CORO_STACK && cache) {
		c = cache;
		cache = c->next;
		ncached--;
		unpoison(c);
	} else {
		c = calloc(1, sizeof *c);
		if (!c)
			return NULL;
		c->map_len = stack_size + page;
		c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				      MAP_STACK,
			      -1, 0);
		if (c->map == MAP_FAILED) {
			free(c);
			return NULL;
		}
		/* the stack grows down: the guard page is the lowest one */
		if (mprotect(c->map, page, PROT_NONE) < 0) {
			int e = errno;
			munmap(c->map, c->map_len);
			free(c);
			errno = e;
			return NULL;
		}
	}
	if (make_ctx(c) < 0) {
		unmap(c);
		return NULL;
	}
	c->fn = fn;
	c->arg = arg;
	c->caller = NULL;
	c->active = c->done = 0;
	c->fake = NULL;
	c->lo = c->map + page;
	c->size = c->map_len - page;
	live++;
	return c;
}

static void retire(gl_coro *c)
{
	live--;
	if (c->wake)
		event_del(c->wake);
	if (c->map_len == GL_CORO_STACK + page_size() && ncached < CACHE_MAX &&
	    (!c->wake || event_get_base(c->wake) == wake_base)) {
		c->next = cache;
		cache = c;
		ncached++;
		return;
	}
	unmap(c);
}

int gl_coro_resume(gl_coro *c)
{
	gl_coro *from = cur;

	if (c->active || c->done)
		die("resume of a running or finished coroutine");
	if (c->wake)
		event_del(c->wake);
	c->caller = from;
	c->active = 1;
	cur = c;
	switch_to(from, c, 0); /* back when c yields or ends */
	cur = from;
	if (c->done) {
		retire(c);
		return 0;
	}
	return 1;
}

void gl_coro_yield(void)
{
	gl_coro *c = cur, *to;

	if (c == &main_ctx)
		die("yield outside a coroutine");
	if (noyield)
		die("yield inside a no-yield section (a Lua call?)");
	to = c->caller;
	c->active = 0;
	cur = to;
	switch_to(c, to, 1); /* back when resumed */
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_coro_resume(arg);
}

void gl_coro_wake(gl_coro *c)
{
	if (!wake_base)
		die("wake without a loop");
	if (!c->wake) {
		c->wake = event_new(wake_base, -1, 0, wake_cb, c);
		if (!c->wake)
			die("out of memory");
	}
	if (!event_pending(c->wake, EV_TIMEOUT, NULL))
		event_active(c->wake, EV_TIMEOUT, 1);
}

void gl_coro_go(gl_coro_fn fn, void *arg)
{
	static int warned;
	gl_coro *c;

	if (!wake_base || cur != &main_ctx) {
		fn(arg);
		return;
	}
	c = gl_coro_new(fn, arg, 0);
	if (!c) {
		if (!warned++)
			gl_warn("coroutine: no stack (%s): database waits "
				"block the loop",
				strerror(errno));
		fn(arg);
		return;
	}
	gl_coro_resume(c);
}

typedef struct go_err {
	gl_coro_err_fn fn;
	void *arg;
	gl_err err;
	int failed;
} go_err;

static void go_err_run(void *arg)
{
	/* copied before the first wait: the caller's frame is gone after */
	go_err g = *(go_err *)arg;

	g.fn(g.arg, g.failed ? &g.err : NULL);
}

void gl_coro_go_err(gl_coro_err_fn fn, void *arg, const gl_err *err)
{
	go_err g = { .fn = fn, .arg = arg, .failed = err != NULL };

	if (err)
		g.err = *err;
	gl_coro_go(go_err_run, &g);
}
