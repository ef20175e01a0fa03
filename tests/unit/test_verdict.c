/* test_verdict.c - unit tests for gl_download_verdict (blob.c): what the
 * fetched bytes of an external blob say against its record. Only bytes
 * that were read and differ make a change; a fetch that failed or was
 * refused has no verdict, whatever the record holds.
 */
#include "unit.h"

#include <string.h>

#include "digest.h"
#include "engine.h"

static const char *const MD5 = "00112233445566778899aabbccddeeff";
static const char *const SHA256 =
	"0011223344556677889900112233445566778899001122334455667788990011";

static gl_download rec(int64_t size, const char *md5, const char *sha256)
{
	gl_download dl;

	memset(&dl, 0, sizeof dl);
	dl.size = size;
	snprintf(dl.md5, sizeof dl.md5, "%s", md5 ? md5 : "");
	snprintf(dl.sha256, sizeof dl.sha256, "%s", sha256 ? sha256 : "");
	return dl;
}

static gl_digest_hex digest(const char *md5, const char *sha256)
{
	gl_digest_hex h;

	memset(&h, 0, sizeof h);
	snprintf(h.md5, sizeof h.md5, "%s", md5);
	snprintf(h.sha1, sizeof h.sha1, "%s", "");
	snprintf(h.sha256, sizeof h.sha256, "%s", sha256);
	return h;
}

UNIT_TEST(known_size)
{
	gl_download dl = rec(100, MD5, SHA256);
	gl_digest_hex same = digest(MD5, SHA256);
	gl_digest_hex other = digest(MD5,
				     "ff11223344556677889900112233445566778899"
				     "001122334455667788990011");
	char why[256];

	CHECK_INT(gl_download_verdict(&dl, 1, 100, &same, why, sizeof why), 0);
	/* a complete read of other bytes */
	CHECK_INT(gl_download_verdict(&dl, 1, 100, &other, why, sizeof why),
		  1);
	CHECK(strstr(why, "sha256 ff11"));
	CHECK_INT(gl_download_verdict(&dl, 1, 99, &same, why, sizeof why), 1);
	CHECK(strstr(why, "size 99, recorded 100"));
	/* more bytes than recorded were read: a change, complete or not */
	CHECK_INT(gl_download_verdict(&dl, 0, 101, &same, why, sizeof why), 1);
	CHECK(strstr(why, "more bytes than the recorded 100 (101 read)"));
	/* a transfer that broke off says nothing, even with other digests */
	CHECK_INT(gl_download_verdict(&dl, 0, 50, &other, why, sizeof why),
		  -1);
	CHECK_INT(gl_download_verdict(&dl, 0, 0, &other, why, sizeof why), -1);
	/* case does not matter in hex */
	{
		gl_digest_hex upper =
			digest("00112233445566778899AABBCCDDEEFF", SHA256);
		CHECK_INT(gl_download_verdict(&dl, 1, 100, &upper, why,
					      sizeof why),
			  0);
	}
}

UNIT_TEST(unknown_size)
{
	/* trust mode: checksums as said, no size */
	gl_download dl = rec(-1, MD5, SHA256);
	gl_digest_hex same = digest(MD5, SHA256);
	gl_digest_hex other_md5 = digest("ff112233445566778899aabbccddeeff",
					 SHA256);
	char why[256];

	CHECK_INT(gl_download_verdict(&dl, 1, 0, &same, why, sizeof why), 0);
	CHECK_INT(gl_download_verdict(&dl, 1, 123456, &same, why, sizeof why),
		  0);
	CHECK_INT(gl_download_verdict(&dl, 1, 10, &other_md5, why, sizeof why),
		  1);
	CHECK(strstr(why, "md5 ff11"));
	/* capped at the field's limit, refused, failed: no verdict */
	CHECK_INT(gl_download_verdict(&dl, 0, 10, &other_md5, why, sizeof why),
		  -1);
	/* nothing recorded to compare: the bytes are what they are */
	dl = rec(-1, NULL, NULL);
	CHECK_INT(gl_download_verdict(&dl, 1, 10, &other_md5, why, sizeof why),
		  0);
	/* an internal location taken on trust is never judged, even with
	 * checksums as given */
	dl = rec(5, MD5, SHA256);
	dl.trusted = 1;
	CHECK_INT(gl_download_verdict(&dl, 1, 10, &other_md5, why, sizeof why),
		  0);
	CHECK_INT(gl_download_verdict(&dl, 0, 10, &other_md5, why, sizeof why),
		  -1);
}

/* clang-format off */
UNIT_SUITE(verdict,
	UNIT_CASE(known_size),
	UNIT_CASE(unknown_size));
/* clang-format on */
