/* fuzz_jlimits.c - libFuzzer harness for the raw body scan (jlimits.c).
 *
 * The scan counts values and depth on bytes, before the parser builds
 * anything; it must agree with the tree: for every input jansson parses,
 * the scan accepts it exactly when gl_jlimits_check accepts the parsed
 * tree under the same limits, and it refuses every document holding
 * U+0000. (Duplicate keys are left out: the text has more values than
 * the tree keeps, and the scan counts the text.) Byte 0 picks the limits,
 * the rest is the body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jlimits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gl_jlimits lim;
	gl_err e1 = { 0 }, e2 = { 0 };
	json_t *j;
	int s, t;

	if (size < 1)
		return 0;
	lim.max_depth = 1 + data[0] % 8;
	lim.max_values = 1 + data[0] / 8 % 32;
	s = gl_jlimits_scan((const char *)data + 1, size - 1, &lim, &e1);
	j = json_loadb((const char *)data + 1, size - 1,
		       JSON_DECODE_ANY | JSON_ALLOW_NUL |
			       JSON_REJECT_DUPLICATES,
		       NULL);
	if (!j)
		return 0;
	t = gl_jlimits_check(j, &lim, "x", &e2);
	json_decref(j);
	if ((s < 0) != (t < 0)) {
		fprintf(stderr, "fuzz_jlimits: scan %d (%s), tree %d (%s)\n",
			s, e1.msg, t, e2.msg);
		abort();
	}
	return 0;
}
