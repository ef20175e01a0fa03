/* util.h - small helpers shared by every layer: ids, time, text, memory
 * that aborts when it runs out, and a growable string.
 *
 * Uses OpenSSL's RAND_bytes for ids (not rand(): ids are guessable
 * otherwise) and libc.
 */
#ifndef GL_UTIL_H
#define GL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"

/* Random (version 4) UUID, lower-case canonical form, 36 chars + NUL. */
void gl_uuid4(char out[37]);
/* 1 if s is a canonical or upper-case 8-4-4-4-12 hex UUID. */
int gl_is_uuid(const char *s);

/* Wall clock in microseconds since the epoch. */
int64_t gl_now_us(void);
/* ISO-8601 with second precision and Z: 2017-08-03T10:20:30Z. */
void gl_iso8601(int64_t us, char out[32]);
/* Full precision for storage: ...:SS.ffffffZ (fraction only when not 0). */
void gl_iso8601_us(int64_t us, char out[40]);
/* Parse ISO-8601 (date, date+time, optional fraction, Z or +hh:mm) into
 * microseconds since the epoch. Returns 0 or -1. */
int gl_parse_iso8601(const char *s, int64_t *us);
/* Seconds since the epoch of a UTC civil time into *t (timegm's answer);
 * -1 if a field is out of range (month 1..12, day 1..31, hour to 23,
 * minute to 59, second to 60). */
int gl_utc_seconds(int y, int mo, int d, int h, int mi, int s, int64_t *t);

/* Percent-decode into a new string; "+" stays "+" (paths) unless
 * plus_is_space. Returns NULL on a malformed escape or an embedded NUL. */
char *gl_pct_decode(const char *s, size_t len, int plus_is_space);
/* Percent-encode for a query value (unreserved characters kept). */
char *gl_pct_encode(const char *s);

/* Media type without parameters, lower-cased, into out. */
void gl_media_type(const char *content_type, char *out, size_t len);

/* 1 if the UTF-8 string is valid and has no character above U+FFFF
 * (Glare refuses 4-byte sequences: MySQL utf8 legacy). */
int gl_utf8_valid(const char *s, size_t len, int allow_4byte);
/* A valid UTF-8 copy of s (malloc'ed, NUL-terminated; embedded NULs are
 * kept): each byte that does not start a valid sequence becomes U+FFFD.
 * For text read back from storage, which JSON must be able to carry.
 * NULL when out of memory. */
char *gl_utf8_repair(const char *s, size_t len, size_t *outlen);
/* Characters of valid UTF-8 (what a Lua type's max_length counts). */
size_t gl_utf8_chars(const char *s, size_t len);

/* 1 if s (len bytes) is exactly want hexadecimal digits (a checksum:
 * md5 32, sha1 40, sha256 64). */
int gl_hex_valid(const char *s, size_t len, size_t want);

/* A URL glared may store, redirect to or fetch: 1..GL_URL_MAX bytes of
 * printable ASCII (no space, no control character: it ends up in a
 * Location header), http:// or https:// and a host. 0, or -1 with the
 * reason in err (400 BadRequest; callers say which URL). */
#define GL_URL_MAX 2048
int gl_url_check(const char *url, size_t len, gl_err *err);

int gl_streq(const char *a, const char *b); /* NULL-safe strcmp == 0 */

/* The query-string parser of the API and the console: q split at '&'
 * into name=value pairs, each percent-decoded with '+' as a space; empty
 * pieces are skipped, a piece without '=' has the value "". fn gets each
 * pair as malloc'ed strings it owns and returns 0, or -1 with err filled
 * to stop. -1 + err (400) on a malformed percent-encoding. */
typedef int (*gl_query_fn)(void *arg, char *name, char *value, gl_err *err);
int gl_query_parse(const char *q, gl_query_fn fn, void *arg, gl_err *err);

/* Write all n bytes to fd (retrying short writes and EINTR); -1 + errno. */
int gl_write_all(int fd, const void *p, size_t n);

/* n bytes as 2n lower-case hex digits and a NUL into out. */
void gl_hex(const unsigned char *b, size_t n, char *out);

/* A JSON string of s that cannot fail: bytes that are not UTF-8 become
 * U+FFFD (jansson's json_string returns NULL for them, and a NULL that
 * reaches a record or a Lua call loses data or crashes); NULL s gives JSON
 * null. Aborts when out of memory, like gl_xmalloc. For text that is not
 * the client's to get exactly back (messages, derived values); values from
 * a request are validated at the edge instead. */
json_t *gl_json_text(const char *s);
/* The string member k of object o, or NULL (absent, not a string, o not
 * an object or NULL). */
const char *gl_json_str(const json_t *o, const char *k);

/* 1 if r is a byte range as a Range header and CURLOPT_RANGE take it
 * (without "bytes="): "a-b", "a-" or "-n" with decimal numbers. */
int gl_byte_range_valid(const char *r);

/* ---- memory that cannot fail ------------------------------------------------
 * For code whose callers have no use for an out-of-memory error (SQL text,
 * parameter lists): out of memory prints one line and aborts, as the core
 * does wherever it cannot report the failure. A size of 0 is allocated as
 * 1, so a NULL result always means failure. */
__attribute__((noreturn)) void gl_oom(void);
void *gl_xmalloc(size_t n);
void *gl_xcalloc(size_t n, size_t size);
void *gl_xrealloc(void *p, size_t n);
char *gl_xstrdup(const char *s);

/* ---- a growable string (aborts when out of memory) --------------------------
 * Zero-initialise (gl_sb b = { 0 }); p stays NULL until something is
 * added, and is always NUL-terminated after that. */
typedef struct gl_sb {
	char *p;
	size_t len, cap;
} gl_sb;

void gl_sb_addn(gl_sb *b, const char *s, size_t n);
/* The same without aborting: 0, or -1 out of memory (b unchanged). For
 * buffers a request or a peer fills, where a failure is answered. */
int gl_sb_try_addn(gl_sb *b, const char *s, size_t n);
void gl_sb_add(gl_sb *b, const char *s);
__attribute__((format(printf, 2, 3))) void gl_sb_addf(gl_sb *b,
						      const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void
gl_sb_vaddf(gl_sb *b, const char *fmt, va_list ap);
void gl_sb_reset(gl_sb *b); /* empty again; keeps the buffer */
void gl_sb_free(gl_sb *b);  /* frees the buffer; b is empty again */

/* A database connection string fit for logs: user:password@ and
 * password=... masked. */
void gl_conn_display(const char *conn, char *out, size_t len);

#endif
