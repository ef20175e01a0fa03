/* coro.h - coroutines for a worker's event loop.
 *
 * A coroutine runs a function on a stack of its own, so code written as
 * plain sequential calls (the engine, which calls the metadata store
 * synchronously in many places) can stop in the middle of a call while it
 * waits for the database, let the event loop serve other requests, and
 * carry on where it stopped when the answer arrives. Only meta_pg.c waits
 * this way (docs/storage.md, "Waiting for PostgreSQL"); everything else
 * runs as before.
 *
 * Contract:
 *  - one process, one thread: the coroutines of a worker take turns, and
 *    exactly one context runs at a time (the loop's own stack, "main", or
 *    one coroutine);
 *  - gl_coro_resume switches from the running context into a suspended
 *    coroutine; the coroutine runs until it yields or returns, then the
 *    resumer continues. A coroutine may resume another one (nesting): a
 *    yield always goes back to the context that resumed it. Resuming the
 *    running coroutine, or one that is resuming someone (on the chain),
 *    aborts;
 *  - gl_coro_yield from the main stack aborts, and so does a yield inside
 *    a no-yield section (gl_coro_noyield_enter/leave; the Lua runtime
 *    brackets every call into Lua with one, so a Lua hook never spans a
 *    yield);
 *  - a coroutine that returns is gone: its stack goes back to a small
 *    cache, and whoever held its pointer must not use it again;
 *  - each stack is an mmap'd region with an inaccessible guard page below
 *    it: an overflow faults at once instead of writing over a neighbour;
 *  - under AddressSanitizer every switch is announced to it
 *    (__sanitizer_start/finish_switch_fiber), so its reports stay right.
 *
 * Coroutines are switched on only in the serving workers
 * (gl_coro_enable); the tools never enable them, so gl_coro_go is then a
 * plain call and every wait blocks.
 *
 * Uses glibc's ucontext (makecontext / swapcontext; getcontext /
 * setcontext under ASan), mmap, libevent (the wake-ups), log.c.
 */
#ifndef GL_CORO_H
#define GL_CORO_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "err.h"

typedef struct gl_coro gl_coro;
typedef void (*gl_coro_fn)(void *arg);
typedef void (*gl_coro_err_fn)(void *arg, const gl_err *err);

/* Stack size of every coroutine (plus the guard page). Whatever a
 * request does runs on it, Lua hooks included. Measured high-water marks
 * (-O2): a hook recursing through C functions until Lua refuses (its
 * limit of 200 nested C calls; gsub with a replacement function takes
 * ~2 KB a level) 424 KB; a request body nested 2,000 deep 228 KB (now
 * refused unparsed past max_json_depth, at most 256); the black-box suite
 * on PostgreSQL + S3 21 KB at most. 1 MiB is over twice the worst, costs
 * memory only for the pages touched (MAP_NORESERVE), and stays below the
 * size of a transparent huge page. Four times that under
 * AddressSanitizer, whose frames carry red zones. */
#if defined(__SANITIZE_ADDRESS__)
#define GL_CORO_STACK (4u << 20)
#else
#define GL_CORO_STACK (1u << 20)
#endif

/* Switch coroutines on for this process, with the loop that wakes them
 * (gl_coro_wake). NULL switches them off again (once none is alive). */
void gl_coro_enable(struct event_base *base);
int gl_coro_enabled(void);
/* That loop (NULL while off). */
struct event_base *gl_coro_base(void);

/* Run fn(arg) in a new coroutine, now: returns when it has finished or
 * first yields. Inside a coroutine, when coroutines are off, or when no
 * stack can be had, fn runs right here on the caller's stack. */
void gl_coro_go(gl_coro_fn fn, void *arg);
/* The same for a completion callback's work: fn(arg, err) with a copy of
 * *err (NULL stays NULL), which the caller need not keep. */
void gl_coro_go_err(gl_coro_err_fn fn, void *arg, const gl_err *err);

/* The lower level (gl_coro_go, the tests). new: a suspended coroutine that
 * will run fn(arg) on a stack of stack_size bytes (0: GL_CORO_STACK), or
 * NULL with errno. resume: run it until it yields (returns 1) or returns
 * (0; it is gone). */
gl_coro *gl_coro_new(gl_coro_fn fn, void *arg, size_t stack_size);
int gl_coro_resume(gl_coro *c);
void gl_coro_yield(void);
/* The running coroutine, NULL on the main stack. */
gl_coro *gl_coro_self(void);
/* Resume c from the event loop on its next turn (once, however often this
 * is called before then); a resume that happens first cancels it. */
void gl_coro_wake(gl_coro *c);

/* A section in which the running context must not yield (nests). */
void gl_coro_noyield_enter(void);
void gl_coro_noyield_leave(void);

/* Coroutines alive (suspended or running). */
int gl_coro_live(void);
/* The guard page of c: [*lo, *hi). */
void gl_coro_guard(const gl_coro *c, uintptr_t *lo, uintptr_t *hi);

#endif
