/* util.h - small helpers shared by every layer: ids, time, text.
 *
 * Uses OpenSSL's RAND_bytes for ids (not rand(): ids are guessable
 * otherwise) and libc.
 */
#ifndef GL_UTIL_H
#define GL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

int gl_streq(const char *a, const char *b); /* NULL-safe strcmp == 0 */

#endif
