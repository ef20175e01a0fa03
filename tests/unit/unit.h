/* unit.h - the tiny harness for glared's C unit tests.
 *
 * Each tests/unit/test_<area>.c defines its cases with UNIT_TEST(name) and
 * ends with a UNIT_SUITE(area, case, case, ...) table. tests/unit/main.c runs
 * every suite (or the ones named on the command line) and prints one
 * "ok"/"FAIL"/"skip" line per case, then "unit: N passed, N failed,
 * N skipped".
 *
 * A CHECK failure records file:line and the expression and aborts the case
 * (return), so a case stops at its first broken assumption. UNIT_SKIP
 * ends a case that cannot run here (a service it needs is absent): it is
 * counted as skipped, never as passed.
 */
#ifndef GL_UNIT_H
#define GL_UNIT_H

#include <stdio.h>
#include <string.h>

typedef struct unit_case {
	const char *name;
	void (*fn)(void);
} unit_case;

typedef struct unit_suite {
	const char *name;
	const unit_case *cases;
	int ncases;
} unit_suite;

/* set by CHECK on failure, by UNIT_SKIP on a skip; reset by the runner
 * before each case */
extern int unit_failed;
extern int unit_skipped;
extern char unit_msg[512];

/* End the case as skipped, with a printf-style reason. */
#define UNIT_SKIP(...)                                                        \
	do {                                                                  \
		unit_skipped = 1;                                             \
		snprintf(unit_msg, sizeof unit_msg, __VA_ARGS__);             \
		return;                                                       \
	} while (0)

#define UNIT_TEST(name) static void name(void)

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg, "%s:%d: %s",      \
				 __FILE__, __LINE__, #cond);                  \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                       \
			unit_failed = 1;                                       \
			snprintf(unit_msg, sizeof unit_msg,                    \
				 "%s:%d: %s == %s (\"%.200s\" vs \"%.200s\")", \
				 __FILE__, __LINE__, #a, #b,                   \
				 a_ ? a_ : "(null)", b_ ? b_ : "(null)");      \
			return;                                                \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                       \
	do {                                                                  \
		long long a_ = (long long)(a), b_ = (long long)(b);           \
		if (a_ != b_) {                                               \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg,                   \
				 "%s:%d: %s == %s (%lld vs %lld)", __FILE__,  \
				 __LINE__, #a, #b, a_, b_);                   \
			return;                                               \
		}                                                             \
	} while (0)

/* b is a prefix of a (error messages that end in details). */
#define CHECK_PREFIX(got, want)                                               \
	do {                                                                  \
		const char *g_ = (got), *w_ = (want);                         \
		if (strncmp(g_, w_, strlen(w_)) != 0) {                       \
			unit_failed = 1;                                      \
			snprintf(unit_msg, sizeof unit_msg,                   \
				 "%s:%d: got \"%.200s\", want \"%.200s...\"", \
				 __FILE__, __LINE__, g_, w_);                 \
			return;                                               \
		}                                                             \
	} while (0)

/* Remove dir and everything below it (a case's temp directory). */
void unit_rm_tree(const char *dir);

/* clang-format off */
#define UNIT_CASE(fn) { #fn, fn }
/* clang-format on */

#define UNIT_SUITE(sname, ...)                                                \
	static const unit_case sname##_cases[] = { __VA_ARGS__ };             \
	const unit_suite sname##_suite = { #sname, sname##_cases,             \
					   (int)(sizeof sname##_cases /       \
						 sizeof sname##_cases[0]) }

#endif
