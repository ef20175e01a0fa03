/* util.c - ids, time, text and memory helpers (see util.h). */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/rand.h>

void gl_uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof b) != 1) {
		/* the CSPRNG failing is not something to paper over */
		abort();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

int gl_is_uuid(const char *s)
{
	static const int dash[] = { 8, 13, 18, 23 };
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

int64_t gl_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gl_iso8601(int64_t us, char out[32])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void put_digits(char *p, unsigned v, int w)
{
	while (w--) {
		p[w] = (char)('0' + v % 10);
		v /= 10;
	}
}

void gl_iso8601_us(int64_t us, char out[40])
{
	time_t t = (time_t)(us / 1000000);
	int frac = (int)(us % 1000000);
	struct tm tm;
	char base[32];

	/* every row of a listing has three of these: the calendar by
	 * arithmetic (days to civil date, proleptic Gregorian, 1970-9999)
	 * instead of gmtime_r + strftime + snprintf; the same text */
	if (us >= 0 && us < 253402300800LL * 1000000) {
		int64_t days = t / 86400, z = days + 719468;
		unsigned sod = (unsigned)(t % 86400);
		int64_t era = z / 146097;
		unsigned doe = (unsigned)(z - era * 146097);
		unsigned yoe = (doe - doe / 1460 + doe / 36524 -
				doe / 146096) /
			       365;
		unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
		unsigned mp = (5 * doy + 2) / 153;
		unsigned d = doy - (153 * mp + 2) / 5 + 1;
		unsigned m = mp < 10 ? mp + 3 : mp - 9;
		unsigned y = (unsigned)(yoe + era * 400) + (m <= 2);

		memcpy(out, "0000-00-00T00:00:00", 19);
		put_digits(out, y, 4);
		put_digits(out + 5, m, 2);
		put_digits(out + 8, d, 2);
		put_digits(out + 11, sod / 3600, 2);
		put_digits(out + 14, sod / 60 % 60, 2);
		put_digits(out + 17, sod % 60, 2);
		if (frac) {
			out[19] = '.';
			put_digits(out + 20, (unsigned)frac, 6);
			memcpy(out + 26, "Z", 2);
		} else {
			memcpy(out + 19, "Z", 2);
		}
		return;
	}
	gmtime_r(&t, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(out, 40, "%.19s.%06dZ", base, frac);
	else
		snprintf(out, 40, "%.19sZ", base);
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

int gl_utc_seconds(int y, int mo, int d, int h, int mi, int s, int64_t *t)
{
	struct tm tm = { 0 };

	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    s > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	*t = (int64_t)timegm(&tm);
	return 0;
}

int gl_parse_iso8601(const char *s, int64_t *us)
{
	const char *p = s;
	int64_t t;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac_us = 0, off = 0;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				int scale = 100000;
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p)) {
					frac_us += (*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1, oh, om = 0;
			p++;
			if (digits(&p, 2, &oh))
				return -1;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) && digits(&p, 2, &om))
				return -1;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p != '\0')
		return -1;
	if (gl_utc_seconds(y, mo, d, h, mi, sec, &t) < 0)
		return -1;
	*us = (t - off) * 1000000 + frac_us;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *gl_pct_decode(const char *s, size_t len, int plus_is_space)
{
	char *out = malloc(len + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len ||
			    (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus_is_space) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

char *gl_pct_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' ||
		    ch == '~') {
			*o++ = (char)ch;
		} else {
			*o++ = '%';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		}
	}
	*o = '\0';
	return out;
}

void gl_media_type(const char *ct, char *out, size_t len)
{
	size_t n = 0;
	if (!len)
		return;
	if (!ct)
		ct = "";
	while (isspace((unsigned char)*ct))
		ct++;
	for (; *ct && *ct != ';' && n + 1 < len; ct++)
		out[n++] = (char)tolower((unsigned char)*ct);
	while (n && isspace((unsigned char)out[n - 1]))
		n--;
	out[n] = '\0';
}

/* Bytes of the valid UTF-8 sequence at s (n bytes available): 1 to 4, or
 * 0 when it is not one (bad lead or continuation byte, truncated, overlong,
 * surrogate, above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t k;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		k = 1, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		k = 2, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		k = 3, cp = c & 0x07;
	else
		return 0;
	if (k >= n)
		return 0;
	for (size_t i = 1; i <= k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
	    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

int gl_utf8_valid(const char *str, size_t len, int allow_4byte)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seq(s + i, len - i);
		if (n == 0 || (n == 4 && !allow_4byte))
			return 0;
		i += n;
	}
	return 1;
}

char *gl_utf8_repair(const char *str, size_t len, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)str;
	char *out = malloc(len * 3 + 1), *o = out;
	size_t i = 0, n;

	if (!out)
		return NULL;
	while (i < len) {
		n = utf8_seq(s + i, len - i);
		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
		} else {
			memcpy(o, s + i, n);
			o += n;
			i += n;
		}
	}
	*o = '\0';
	if (outlen)
		*outlen = (size_t)(o - out);
	return out;
}

const char *gl_json_str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

json_t *gl_json_text(const char *s)
{
	json_t *j;
	char *fixed;
	size_t n;

	if (!s)
		return json_null();
	n = strlen(s);
	if ((j = json_stringn(s, n)))
		return j;
	if (!(fixed = gl_utf8_repair(s, n, &n)))
		gl_oom();
	j = json_stringn(fixed, n);
	free(fixed);
	if (!j)
		gl_oom();
	return j;
}

size_t gl_utf8_chars(const char *str, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)str[i] & 0xc0) != 0x80;
	return n;
}

int gl_hex_valid(const char *s, size_t len, size_t want)
{
	if (len != want)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int gl_url_check(const char *url, size_t len, gl_err *err)
{
	const char *host;
	size_t i;

	if (len == 0)
		return gl_fail(err, 400, "BadRequest", "the URL is empty");
	if (len > GL_URL_MAX)
		return gl_fail(err, 400, "BadRequest",
			       "the URL is longer than %d characters",
			       GL_URL_MAX);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f)
			return gl_fail(err, 400, "BadRequest",
				       "the URL has a %s at byte %zu: "
				       "percent-encode it",
				       c == ' ' ? "space"
				       : c < 0x20 || c == 0x7f
					       ? "control character"
					       : "non-ASCII byte",
				       i);
	}
	if (!strncasecmp(url, "http://", 7))
		host = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		host = url + 8;
	else
		return gl_fail(err, 400, "BadRequest",
			       "only http and https URLs are allowed");
	if (!*host || *host == '/' || *host == '?' || *host == '#')
		return gl_fail(err, 400, "BadRequest", "the URL has no host");
	return 0;
}

int gl_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

int gl_byte_range_valid(const char *r)
{
	const char *dash = strchr(r, '-');

	if (!dash || strchr(dash + 1, '-') || (dash == r && !dash[1]))
		return 0;
	for (const char *p = r; *p; p++)
		if (p != dash && !isdigit((unsigned char)*p))
			return 0;
	return 1;
}

void gl_oom(void)
{
	fputs("glared: out of memory\n", stderr);
	abort();
}

void *gl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		gl_oom();
	return p;
}

void *gl_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		gl_oom();
	return p;
}

void *gl_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		gl_oom();
	return p;
}

char *gl_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		gl_oom();
	return d;
}

/* Room for n more bytes and the NUL; doubling keeps appends amortised O(1). */
static void sb_room(gl_sb *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = gl_xrealloc(b->p, b->cap);
	}
}

void gl_sb_addn(gl_sb *b, const char *s, size_t n)
{
	sb_room(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

int gl_sb_try_addn(gl_sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

void gl_sb_add(gl_sb *b, const char *s)
{
	gl_sb_addn(b, s, strlen(s));
}

void gl_sb_vaddf(gl_sb *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char probe[1]; /* gcc -O1 flags vsnprintf(NULL, 0, ...) falsely */
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(probe, sizeof probe, fmt, ap2);
	va_end(ap2);
	/* only a malformed format fails here: a bug, and there is no error
	 * channel to report it through */
	if (n < 0)
		abort();
	sb_room(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void gl_sb_addf(gl_sb *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gl_sb_vaddf(b, fmt, ap);
	va_end(ap);
}

void gl_sb_reset(gl_sb *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void gl_sb_free(gl_sb *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void gl_conn_display(const char *conn, char *out, size_t len)
{
	const char *scheme = conn ? strstr(conn, "://") : NULL;
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
	char *pw;

	if (!conn)
		snprintf(out, len, "-");
	else if (at && (!slash || at < slash))
		snprintf(out, len, "%.*s***@%s", (int)(scheme + 3 - conn),
			 conn, at + 1);
	else
		snprintf(out, len, "%s", conn);
	/* libpq also takes the password as a parameter */
	pw = strstr(out, "password=");
	if (pw)
		snprintf(pw + 9, len - (size_t)(pw + 9 - out), "***");
}

void gl_hex(const unsigned char *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int gl_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int gl_query_parse(const char *q, gl_query_fn fn, void *arg, gl_err *err)
{
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);

		if (n) {
			size_t kn = eq ? (size_t)(eq - q) : n;
			char *k = gl_pct_decode(q, kn, 1);
			char *v = eq ? gl_pct_decode(eq + 1, n - kn - 1, 1)
				     : strdup("");
			if (!k || !v) {
				free(k);
				free(v);
				return gl_fail(err, 400, NULL,
					       "Malformed "
					       "percent-encoding in the query "
					       "string");
			}
			if (fn(arg, k, v, err) < 0)
				return -1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}
