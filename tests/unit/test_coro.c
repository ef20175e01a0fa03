/* test_coro.c - unit tests for coro.c: switching and interleaving, the
 * nesting rules, wake-ups from a real libevent loop, gl_coro_go's inline
 * cases, misuse that must abort, a stack overflow that must land on the
 * guard page, and (under AddressSanitizer) that ASan sees coroutine
 * stacks: a real overflow of a local is reported, while the switches
 * themselves (this whole suite) report nothing.
 */
#include "unit.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "coro.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* what the coroutines did, in order */
static char trace[128];

static void note(char c)
{
	size_t n = strlen(trace);

	if (n + 1 < sizeof trace) {
		trace[n] = c;
		trace[n + 1] = '\0';
	}
}

static void three_steps(void *arg)
{
	const char *s = arg;

	note(s[0]);
	gl_coro_yield();
	note(s[1]);
	gl_coro_yield();
	note(s[2]);
}

UNIT_TEST(switch_and_interleave)
{
	gl_coro *a, *b;
	int live = gl_coro_live();

	trace[0] = '\0';
	a = gl_coro_new(three_steps, "abc", 0);
	b = gl_coro_new(three_steps, "xyz", 0);
	CHECK(a && b);
	CHECK_INT(gl_coro_live(), live + 2);
	CHECK(gl_coro_self() == NULL);
	CHECK_INT(gl_coro_resume(a), 1);
	CHECK_INT(gl_coro_resume(b), 1);
	note('-');
	CHECK_INT(gl_coro_resume(a), 1);
	CHECK_INT(gl_coro_resume(b), 1);
	CHECK_INT(gl_coro_resume(b), 0); /* b is gone */
	CHECK_INT(gl_coro_resume(a), 0);
	CHECK_STR(trace, "ax-byzc");
	CHECK_INT(gl_coro_live(), live);
}

/* Locals survive on each stack across switches; many of them. */
static void count_up(void *arg)
{
	int *out = arg;
	volatile int acc = 0;
	char pad[2048];

	memset(pad, 7, sizeof pad);
	for (int i = 0; i < 1000; i++) {
		acc += pad[i % (int)sizeof pad];
		gl_coro_yield();
	}
	*out = acc;
}

UNIT_TEST(locals_survive_many_switches)
{
	int r1 = 0, r2 = 0, n = 0;
	gl_coro *a = gl_coro_new(count_up, &r1, 0);
	gl_coro *b = gl_coro_new(count_up, &r2, 64 * 1024);
	int ra = 1, rb = 1;

	CHECK(a && b);
	while ((ra || rb) && n++ < 5000) {
		if (ra)
			ra = gl_coro_resume(a);
		if (rb)
			rb = gl_coro_resume(b);
	}
	CHECK_INT(r1, 7000);
	CHECK_INT(r2, 7000);
}

/* Nesting: a coroutine resumes another; that one's yield goes back to it,
 * not to the main stack; later the main stack resumes the inner one
 * directly, and its yield comes back to the main stack. */
static gl_coro *inner;

static void outer_fn(void *arg)
{
	note('O');
	CHECK_INT(gl_coro_resume(inner), 1); /* inner yields to us */
	note('o');
	CHECK(gl_coro_self() != NULL && gl_coro_self() != inner);
	gl_coro_yield();
	note('E');
}

static void inner_fn(void *arg)
{
	note('I');
	gl_coro_yield();
	note('i');
	gl_coro_yield();
	note('e');
}

UNIT_TEST(nesting_yields_to_the_resumer)
{
	gl_coro *outer;

	trace[0] = '\0';
	inner = gl_coro_new(inner_fn, NULL, 0);
	outer = gl_coro_new(outer_fn, NULL, 0);
	CHECK(inner && outer);
	CHECK_INT(gl_coro_resume(outer), 1);
	CHECK_STR(trace, "OIo");
	CHECK_INT(gl_coro_resume(inner), 1); /* now its resumer is main */
	CHECK_STR(trace, "OIoi");
	CHECK_INT(gl_coro_resume(outer), 0);
	CHECK_INT(gl_coro_resume(inner), 0);
	CHECK_STR(trace, "OIoiEe");
}

/* gl_coro_go: a plain call while coroutines are off and inside one; a new
 * coroutine (running until its first yield) on the main stack. */
static gl_coro *seen;

static void record_self(void *arg)
{
	seen = gl_coro_self();
	if (arg)
		gl_coro_yield();
}

static void go_inside(void *arg)
{
	gl_coro *me = gl_coro_self();

	gl_coro_go(record_self, NULL);
	*(int *)arg = seen == me;
}

static void go_resume_later(void *arg)
{
	*(gl_coro **)arg = gl_coro_self();
	gl_coro_yield();
	note('L');
}

UNIT_TEST(go_inline_or_new)
{
	struct event_base *base = event_base_new();
	int same = 0, live = gl_coro_live();
	gl_coro *c = NULL;

	CHECK(base);
	gl_coro_enable(NULL);
	gl_coro_go(record_self, NULL);
	CHECK(seen == NULL); /* off: a plain call */
	gl_coro_enable(base);
	CHECK(gl_coro_enabled());
	gl_coro_go(record_self, NULL);
	CHECK(seen != NULL);
	CHECK_INT(gl_coro_live(), live);
	gl_coro_go(go_inside, &same);
	CHECK(same);
	trace[0] = '\0';
	gl_coro_go(go_resume_later, &c);
	CHECK(c != NULL);
	CHECK_INT(gl_coro_live(), live + 1);
	CHECK_INT(gl_coro_resume(c), 0);
	CHECK_STR(trace, "L");
	gl_coro_enable(NULL);
	event_base_free(base);
}

/* Wake-ups come from the loop, once however often asked; a direct resume
 * first cancels the pending one. */
static void wait_twice(void *arg)
{
	note('a');
	gl_coro_yield();
	note('b');
	gl_coro_yield();
	note('c');
}

UNIT_TEST(wake_from_the_loop)
{
	struct event_base *base = event_base_new();
	gl_coro *c;

	CHECK(base);
	gl_coro_enable(base);
	trace[0] = '\0';
	c = gl_coro_new(wait_twice, NULL, 0);
	CHECK(c);
	CHECK_INT(gl_coro_resume(c), 1);
	gl_coro_wake(c);
	gl_coro_wake(c);
	CHECK_STR(trace, "a"); /* not before the loop runs */
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK_STR(trace, "ab");
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK_STR(trace, "ab"); /* once */
	gl_coro_wake(c);
	CHECK_INT(gl_coro_resume(c), 0); /* cancels the wake */
	CHECK_STR(trace, "abc");
	event_base_loop(base, EVLOOP_NONBLOCK);
	gl_coro_enable(NULL);
	event_base_free(base);
}

/* ---- what must abort or fault: in a child process -------------------- */

/* Run fn in a child; its wait status. stderr_out (optional): what the
 * child wrote to stderr. */
static int in_child(void (*fn)(void), char *stderr_out, size_t n)
{
	int p[2], st = -1;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 2);
		fn();
		_exit(0);
	}
	close(p[1]);
	if (stderr_out) {
		size_t got = 0;
		ssize_t k;

		while (got + 1 < n &&
		       (k = read(p[0], stderr_out + got, n - 1 - got)) > 0)
			got += (size_t)k;
		stderr_out[got] = '\0';
	} else {
		char sink[256];
		while (read(p[0], sink, sizeof sink) > 0)
			;
	}
	close(p[0]);
	waitpid(pid, &st, 0);
	return st;
}

static int aborted(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void yield_on_main(void)
{
	gl_coro_yield();
}

static void yield_in_noyield_fn(void *arg)
{
	gl_coro_noyield_enter();
	gl_coro_yield();
}

static void yield_in_noyield(void)
{
	gl_coro *c = gl_coro_new(yield_in_noyield_fn, NULL, 0);

	if (c)
		gl_coro_resume(c);
}

static gl_coro *self_ref;

static void resume_self_fn(void *arg)
{
	gl_coro_resume(self_ref);
}

static void resume_running(void)
{
	self_ref = gl_coro_new(resume_self_fn, NULL, 0);
	if (self_ref)
		gl_coro_resume(self_ref);
}

UNIT_TEST(misuse_aborts)
{
	char out[4096];

	CHECK(aborted(in_child(yield_on_main, out, sizeof out)));
	CHECK(strstr(out, "yield outside a coroutine"));
	CHECK(aborted(in_child(yield_in_noyield, out, sizeof out)));
	CHECK(strstr(out, "no-yield section"));
	CHECK(aborted(in_child(resume_running, out, sizeof out)));
	CHECK(strstr(out, "resume of a running"));
	/* balanced sections are fine */
	gl_coro_noyield_enter();
	gl_coro_noyield_enter();
	gl_coro_noyield_leave();
	gl_coro_noyield_leave();
}

/* Recursing without end on a coroutine stack faults on its guard page
 * (checked by the fault address, on an alternate signal stack). */
static uintptr_t guard_lo, guard_hi;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	_exit(a >= guard_lo && a < guard_hi ? 42 : 43);
}

static int deep(int n)
{
	volatile char frame[512];

	if (n < 0)
		return 0;
	frame[0] = (char)n;
	frame[511] = (char)n;
	return deep(n + 1) + frame[0] + frame[511];
}

static void recurse_fn(void *arg)
{
	*(int *)arg = deep(0);
}

static void overflow(void)
{
	static char alt[64 * 1024];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
	struct sigaction sa;
	int r;
	gl_coro *c = gl_coro_new(recurse_fn, &r, 64 * 1024);

	if (!c)
		_exit(2);
	gl_coro_guard(c, &guard_lo, &guard_hi);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	if (sigaltstack(&ss, NULL) < 0 || sigaction(SIGSEGV, &sa, NULL) < 0)
		_exit(3);
	gl_coro_resume(c);
	_exit(4); /* never */
}

UNIT_TEST(stack_overflow_hits_the_guard_page)
{
	int st = in_child(overflow, NULL, 0);

	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), 42);
}

/* Under ASan: an overflow of a local on a coroutine stack is reported as
 * what it is (UBSan would see it first; this one is ASan's). */
__attribute__((no_sanitize("undefined"))) static void smash_fn(void *arg)
{
	volatile char buf[16];
	volatile char *p = buf;
	int i = 16 + *(int *)arg;

	p[i] = 1;
	buf[0] = buf[1];
}

static void smash(void)
{
	int zero = 0;
	gl_coro *c = gl_coro_new(smash_fn, &zero, 0);

	if (c)
		gl_coro_resume(c);
}

UNIT_TEST(asan_sees_coroutine_stacks)
{
	char out[8192];
	int st;

	if (!UNDER_ASAN)
		UNIT_SKIP("not an ASan build (make asan runs it)");
	st = in_child(smash, out, sizeof out);
	CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
	if (!strstr(out, "stack-buffer-overflow"))
		fprintf(stderr, "%s", out);
	CHECK(strstr(out, "stack-buffer-overflow"));
	CHECK(!strstr(out, "False positive"));
}

UNIT_SUITE(coro, UNIT_CASE(switch_and_interleave),
	   UNIT_CASE(locals_survive_many_switches),
	   UNIT_CASE(nesting_yields_to_the_resumer),
	   UNIT_CASE(go_inline_or_new), UNIT_CASE(wake_from_the_loop),
	   UNIT_CASE(misuse_aborts),
	   UNIT_CASE(stack_overflow_hits_the_guard_page),
	   UNIT_CASE(asan_sees_coroutine_stacks));
