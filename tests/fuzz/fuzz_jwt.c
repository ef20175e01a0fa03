/* fuzz_jwt.c - libFuzzer harness for jwt.c: tokens and key sets.
 *
 * The first byte picks the target: 'K' feeds the rest to the key set
 * parser, anything else parses the rest as a token, verifies it against
 * a fixed key set (one RSA and one P-256 key; seeds in
 * tests/fuzz/corpus/jwt/ are tokens of those keys) and checks its times.
 * Nothing may crash, leak or read out of bounds; a verified token can only
 * come from the seeds' keys.
 *
 * `make fuzz` builds it (build/fuzz/fuzz_jwt); `make asan` runs it for
 * FUZZ_SECONDS; by hand: build/fuzz/fuzz_jwt tests/fuzz/corpus/jwt
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_doc[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fz-rsa\",\"use\":\"sig\",\"n\":\"4M"
	"IxxHSTxoZx10Cq3bMfGBay3hDppZO8WAMio7Bxw5zE2FXXRKcXFaIyHB"
	"_njVWhCS3qjM38g88iwphr9MHYN99QdtciX_871ewoYbOo6J3t1BZyxd"
	"39tuCTe7Zht5aBDQ20Ck0ygXXx56LKrz1QMJNQoXn1DQF9E9-MGUo1yk"
	"84Ll4hd0th5-x7SxHJmxybAf1pm1CogVosXl7cg1L9KgLHSR5F7VgKlW"
	"NTiFI_ln9rW8WOxGUIPzGgYC8fMQenmFh36mvp1V7TIyBgyVx7yKTzqD"
	"JJns4V4Rgbpr4Td6JPjW71FNNGtsXDfEPWRTNZ0PwbBPbXscNGhFCwFZ"
	"ADQw\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"fz-ec\",\"use\":\"sig\","
	"\"crv\":\"P-256\",\"x\":\"s3BpYiuH2FoKfryDndgtUUm6L63V1bwH2TMJF"
	"2II-wk\",\"y\":\"ldiIGyloAKCDLZzJqqfMbcCDBvA_xw4Tra61bV6q7wA"
	"\"}]}";

static gl_jwks *fixed_set(void)
{
	static gl_jwks *set;
	char why[200];

	if (!set)
		set = gl_jwks_parse(jwks_doc, strlen(jwks_doc), why,
				    sizeof why);
	if (!set || set->n != 2)
		abort(); /* the harness itself is broken */
	return set;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[200];

	if (size == 0)
		return 0;
	if (data[0] == 'K') {
		gl_jwks_free(gl_jwks_parse((const char *)data + 1, size - 1,
					   why, sizeof why));
	} else {
		gl_jwt t;
		gl_jwt_rules r = { .now = 1800000000, .leeway = 30 };

		if (gl_jwt_parse((const char *)data + 1, size - 1, &t, why,
				 sizeof why) == 0) {
			gl_jwt_verify(&t, fixed_set(), why, sizeof why);
			gl_jwt_check_times(&t, &r, why, sizeof why);
			gl_jwt_free(&t);
		}
	}
	return 0;
}
