/* lsafe.c - sandbox replacements for C library functions whose work the
 * instruction count cannot see (see lsafe.h).
 *
 * The replacements (s_*, t_*) use the stack as the stock functions they
 * replace (Lua manual, section 6); the helpers that touch a stack carry
 * the manual's note [-o, +p, x]: pops o values, pushes p, and x says what
 * may be raised (- nothing, m a memory error, e any error, v an error on
 * purpose, such as a spent budget).
 */
#include "lsafe.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#define MAX_CAPTURES 32
#define MAX_DEPTH 200     /* nested matcher calls ("pattern too complex") */
#define CHARGE_EVERY 4096 /* matcher steps between two charges */
#define CAP_OPEN (-1)
#define CAP_POS (-2)

static gl_lsafe_host *host_of(lua_State *L)
{
	return *(gl_lsafe_host **)lua_getextraspace(L);
}

void gl_lsafe_charge(lua_State *L, int64_t steps)
{
	gl_lsafe_host *h = host_of(L);

	if (h && h->charge)
		h->charge(L, steps);
}

/* ---- the random generator (xoshiro256**) ------------------------------------ */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_rand(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

void gl_lsafe_seed(uint64_t rng[4], uint64_t seed)
{
	/* splitmix64 spreads one word over the four */
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		rng[i] = z ^ (z >> 31);
	}
}

static int s_random(lua_State *L)
{
	gl_lsafe_host *h = host_of(L);
	static uint64_t fallback[4] = { 1, 2, 3, 4 };
	uint64_t *s = h ? h->rng : fallback;
	uint64_t r = next_rand(s), span, mask;
	lua_Integer lo, hi;

	switch (lua_gettop(L)) {
	case 0:
		lua_pushnumber(L, (lua_Number)(r >> 11) * 0x1.0p-53);
		return 1;
	case 1:
		lo = 1;
		hi = luaL_checkinteger(L, 1);
		if (hi == 0) { /* every integer */
			lua_pushinteger(L, (lua_Integer)r);
			return 1;
		}
		break;
	case 2:
		lo = luaL_checkinteger(L, 1);
		hi = luaL_checkinteger(L, 2);
		break;
	default:
		return luaL_error(L, "wrong number of arguments");
	}
	luaL_argcheck(L, lo <= hi, lua_gettop(L), "interval is empty");
	/* uniform in [lo, hi]: draw within the smallest 2^b - 1 >= span,
	 * reject what falls above span */
	span = (uint64_t)hi - (uint64_t)lo;
	mask = span;
	for (int sh = 1; sh < 64; sh <<= 1)
		mask |= mask >> sh;
	while ((r &= mask) > span)
		r = next_rand(s);
	lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
	return 1;
}

static int s_clock(lua_State *L)
{
	gl_lsafe_host *h = host_of(L);

	lua_pushnumber(L, h && h->clock ? h->clock(L) : 0.0);
	return 1;
}

/* ---- tostring and string.format without addresses ---------------------------- */

/* A table's or function's address changes with what earlier requests
 * allocated: printed, it would carry information from one request to the
 * next. Such values print as their __name, or their type, only. */
static int by_reference(int t)
{
	return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA ||
	       t == LUA_TTHREAD || t == LUA_TLIGHTUSERDATA;
}

/* [-0, +1, m] */
static void push_safe_string(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (by_reference(lua_type(L, idx))) {
		if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
			lua_pop(L, 1);
		} else {
			int t = luaL_getmetafield(L, idx, "__name");
			if (t == LUA_TSTRING)
				return;
			if (t != LUA_TNIL)
				lua_pop(L, 1);
			lua_pushstring(L, luaL_typename(L, idx));
			return;
		}
	}
	luaL_tolstring(L, idx, NULL);
}

static int s_tostring(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	push_safe_string(L, 1);
	return 1;
}

/* string.format: the stock function (upvalue 1), with %p refused and the
 * arguments of %s that would print an address replaced by their type. */
static int s_format(lua_State *L)
{
	size_t len;
	const char *f = luaL_checklstring(L, 1, &len), *end = f + len;
	int top = lua_gettop(L), arg = 1;

	while (f < end) {
		if (*f++ != '%')
			continue;
		if (f < end && *f == '%') {
			f++;
			continue;
		}
		while (f < end && *f && strchr("-+ #0123456789.", *f))
			f++;
		if (f >= end)
			break; /* the stock function reports it */
		arg++;
		if (*f == 'p')
			return luaL_error(L,
					  "invalid conversion '%%p' to 'format' "
					  "(addresses are not available in the "
					  "sandbox)");
		if (*f == 's' && arg <= top &&
		    by_reference(lua_type(L, arg))) {
			push_safe_string(L, arg);
			lua_replace(L, arg);
		}
		f++;
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	if (lua_pcall(L, top, 1, 0) != LUA_OK) {
		/* the stock function's errors carry no position: add the
		 * caller's, as a direct call would have */
		if (lua_type(L, -1) == LUA_TSTRING) {
			luaL_where(L, 1);
			lua_insert(L, -2);
			lua_concat(L, 2);
		}
		return lua_error(L);
	}
	return 1;
}

/* ---- string.rep ----------------------------------------------------------------- */

static int s_rep(lua_State *L)
{
	size_t l, lsep;
	const char *s = luaL_checklstring(L, 1, &l);
	lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &lsep);
	luaL_Buffer b;
	uint64_t total;
	char *p;

	if (n <= 0 || (l == 0 && lsep == 0)) {
		/* the stock function would loop n times to make "" */
		lua_pushliteral(L, "");
		return 1;
	}
	if ((uint64_t)n > GL_LSAFE_MAX_REP ||
	    (total = (uint64_t)l * (uint64_t)n +
		     (uint64_t)lsep * (uint64_t)(n - 1)) > GL_LSAFE_MAX_REP) {
		char size[64];
		snprintf(size, sizeof size, "%.0f",
			 (double)l * (double)n +
				 (double)lsep * ((double)n - 1));
		return luaL_error(L,
				  "string.rep: result of %s bytes is above "
				  "the sandbox limit of %d",
				  size, GL_LSAFE_MAX_REP);
	}
	gl_lsafe_charge(L, 1 + (int64_t)total / 64);
	p = luaL_buffinitsize(L, &b, (size_t)total);
	for (lua_Integer i = 0; i < n; i++) {
		memcpy(p, s, l);
		p += l;
		if (lsep && i + 1 < n) {
			memcpy(p, sep, lsep);
			p += lsep;
		}
	}
	luaL_pushresultsize(&b, (size_t)total);
	return 1;
}

/* ---- the pattern matcher ---------------------------------------------------------- */

typedef struct mstate {
	lua_State *L;
	const char *s0, *send; /* subject */
	const char *pend;      /* end of the pattern */
	int depth;
	int ncap;
	struct {
		const char *at;
		ptrdiff_t len; /* CAP_OPEN, CAP_POS or a length */
	} cap[MAX_CAPTURES];
	int64_t work; /* steps not charged yet */
} mstate;

/* [-0, +0, v] add n matcher steps, charged every CHARGE_EVERY */
static void work(mstate *ms, int64_t n)
{
	ms->work += n;
	if (ms->work >= CHARGE_EVERY) {
		int64_t w = ms->work;
		ms->work = 0;
		gl_lsafe_charge(ms->L, w);
	}
}

/* [-0, +0, v] charge the steps not charged yet */
static void settle(mstate *ms)
{
	if (ms->work) {
		int64_t w = ms->work;
		ms->work = 0;
		gl_lsafe_charge(ms->L, w);
	}
}

static int in_class(int c, int cl)
{
	int r;

	switch (tolower(cl)) {
	case 'a':
		r = isalpha(c);
		break;
	case 'c':
		r = iscntrl(c);
		break;
	case 'd':
		r = isdigit(c);
		break;
	case 'g':
		r = isgraph(c);
		break;
	case 'l':
		r = islower(c);
		break;
	case 'p':
		r = ispunct(c);
		break;
	case 's':
		r = isspace(c);
		break;
	case 'u':
		r = isupper(c);
		break;
	case 'w':
		r = isalnum(c);
		break;
	case 'x':
		r = isxdigit(c);
		break;
	case 'z':
		r = c == 0;
		break; /* deprecated, still in 5.4 */
	default:
		return cl == c; /* %x for a non-letter x: x itself */
	}
	if (isupper(cl))
		r = !r;
	return r != 0;
}

/* c in the set [ ... ] that starts at p ('[') and closes at close (']') */
static int in_set(int c, const char *p, const char *close)
{
	int yes = 1;

	p++;
	if (*p == '^') {
		yes = 0;
		p++;
	}
	while (p < close) {
		if (*p == '%' && p + 1 < close) {
			if (in_class(c, (unsigned char)p[1]))
				return yes;
			p += 2;
		} else if (p + 2 < close && p[1] == '-') {
			if ((unsigned char)p[0] <= c &&
			    c <= (unsigned char)p[2])
				return yes;
			p += 3;
		} else {
			if ((unsigned char)*p == c)
				return yes;
			p++;
		}
	}
	return !yes;
}

/* End of the single-character class at p. */
static const char *item_end(mstate *ms, const char *p)
{
	char c = *p++;

	if (c == '%') {
		if (p >= ms->pend)
			luaL_error(ms->L,
				   "malformed pattern (ends with '%%')");
		return p + 1;
	}
	if (c == '[') {
		if (p < ms->pend && *p == '^')
			p++;
		/* the first character is a member even if it is ']' */
		do {
			if (p >= ms->pend)
				luaL_error(ms->L,
					   "malformed pattern (missing ']')");
			if (*p++ == '%' && p < ms->pend)
				p++;
		} while (p >= ms->pend || *p != ']');
		return p + 1;
	}
	return p;
}

/* Does the item p..ep match the character at s? */
static int item_matches(mstate *ms, const char *s, const char *p,
			const char *ep)
{
	int c;

	if (s >= ms->send)
		return 0;
	c = (unsigned char)*s;
	switch (*p) {
	case '.':
		return 1;
	case '%':
		return in_class(c, (unsigned char)p[1]);
	case '[':
		return in_set(c, p, ep - 1);
	default:
		return (unsigned char)*p == c;
	}
}

static const char *do_match(mstate *ms, const char *s, const char *p);

/* item* and item+ (greedy): the longest run first, then shorter ones */
static const char *greedy(mstate *ms, const char *s, const char *p,
			  const char *ep)
{
	ptrdiff_t n = 0;

	while (item_matches(ms, s + n, p, ep))
		n++;
	work(ms, n);
	for (; n >= 0; n--) {
		const char *r = do_match(ms, s + n, ep + 1);
		if (r)
			return r;
	}
	return NULL;
}

/* item- (lazy): the shortest run first */
static const char *lazy(mstate *ms, const char *s, const char *p,
			const char *ep)
{
	for (;;) {
		const char *r = do_match(ms, s, ep + 1);
		if (r)
			return r;
		if (!item_matches(ms, s, p, ep))
			return NULL;
		s++;
	}
}

static const char *open_capture(mstate *ms, const char *s, const char *p,
				ptrdiff_t what)
{
	const char *r;

	if (ms->ncap >= MAX_CAPTURES)
		luaL_error(ms->L, "too many captures");
	ms->cap[ms->ncap].at = s;
	ms->cap[ms->ncap].len = what;
	ms->ncap++;
	r = do_match(ms, s, p);
	if (!r)
		ms->ncap--;
	return r;
}

static const char *close_capture(mstate *ms, const char *s, const char *p)
{
	int i;
	const char *r;

	for (i = ms->ncap - 1; i >= 0; i--)
		if (ms->cap[i].len == CAP_OPEN)
			break;
	if (i < 0)
		luaL_error(ms->L, "invalid pattern capture");
	ms->cap[i].len = s - ms->cap[i].at;
	r = do_match(ms, s, p);
	if (!r)
		ms->cap[i].len = CAP_OPEN;
	return r;
}

static const char *balance(mstate *ms, const char *s, const char *p)
{
	int open, close, depth = 1;
	const char *start = s;

	if (p + 1 >= ms->pend)
		luaL_error(ms->L,
			   "malformed pattern (missing arguments to '%%b')");
	open = (unsigned char)p[0];
	close = (unsigned char)p[1];
	if (s >= ms->send || (unsigned char)*s != open)
		return NULL;
	while (++s < ms->send) {
		int c = (unsigned char)*s;
		if (c == close) {
			if (--depth == 0) {
				work(ms, s - start);
				return s + 1;
			}
		} else if (c == open) {
			depth++;
		}
	}
	work(ms, s - start);
	return NULL;
}

static const char *backref(mstate *ms, const char *s, int digit)
{
	int i = digit - '1';
	ptrdiff_t len;

	if (i < 0 || i >= ms->ncap || ms->cap[i].len == CAP_OPEN)
		luaL_error(ms->L, "invalid capture index %%%d", i + 1);
	len = ms->cap[i].len;
	if (len < 0) /* a position capture never matches text */
		return NULL;
	work(ms, 1 + len / 16);
	if (ms->send - s >= len && memcmp(ms->cap[i].at, s, (size_t)len) == 0)
		return s + len;
	return NULL;
}

static const char *do_match(mstate *ms, const char *s, const char *p)
{
	if (++ms->depth > MAX_DEPTH)
		luaL_error(ms->L, "pattern too complex");
	for (;;) {
		const char *ep;

		work(ms, 1);
		if (p >= ms->pend)
			break;
		if (*p == '(') {
			if (p + 1 < ms->pend && p[1] == ')')
				s = open_capture(ms, s, p + 2, CAP_POS);
			else
				s = open_capture(ms, s, p + 1, CAP_OPEN);
			break;
		}
		if (*p == ')') {
			s = close_capture(ms, s, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == ms->pend) {
			if (s != ms->send)
				s = NULL;
			break;
		}
		if (*p == '%' && p + 1 < ms->pend) {
			int d = (unsigned char)p[1];
			if (d == 'b') {
				s = balance(ms, s, p + 2);
				if (!s)
					break;
				p += 4;
				continue;
			}
			if (d == 'f') {
				int before, here;
				p += 2;
				if (p >= ms->pend || *p != '[')
					luaL_error(ms->L,
						   "missing '[' after '%%f' "
						   "in pattern");
				ep = item_end(ms, p);
				before = s == ms->s0 ? 0
						     : (unsigned char)s[-1];
				here = s < ms->send ? (unsigned char)*s : 0;
				if (in_set(before, p, ep - 1) ||
				    !in_set(here, p, ep - 1)) {
					s = NULL;
					break;
				}
				p = ep;
				continue;
			}
			if (isdigit(d)) {
				s = backref(ms, s, d);
				if (!s)
					break;
				p += 2;
				continue;
			}
		}
		/* a single-character item, maybe with a quantifier */
		ep = item_end(ms, p);
		if (!item_matches(ms, s, p, ep)) {
			if (ep < ms->pend &&
			    (*ep == '*' || *ep == '?' || *ep == '-')) {
				p = ep + 1; /* zero occurrences are fine */
				continue;
			}
			s = NULL;
			break;
		}
		if (ep < ms->pend && *ep == '?') {
			const char *r = do_match(ms, s + 1, ep + 1);
			if (r) {
				s = r;
				break;
			}
			p = ep + 1;
			continue;
		}
		if (ep < ms->pend && *ep == '+') {
			s = greedy(ms, s + 1, p, ep);
			break;
		}
		if (ep < ms->pend && *ep == '*') {
			s = greedy(ms, s, p, ep);
			break;
		}
		if (ep < ms->pend && *ep == '-') {
			s = lazy(ms, s, p, ep);
			break;
		}
		s++;
		p = ep;
	}
	ms->depth--;
	return s;
}

static void ms_init(mstate *ms, lua_State *L, const char *s, size_t ls,
		    const char *p, size_t lp)
{
	ms->L = L;
	ms->s0 = s;
	ms->send = s + ls;
	ms->pend = p + lp;
	ms->depth = 0;
	ms->ncap = 0;
	ms->work = 0;
}

static void ms_reset(mstate *ms)
{
	ms->depth = 0;
	ms->ncap = 0;
}

/* [-0, +1, m] Push capture i of the match s..e; with no captures, i == 0
 * is the whole match. */
static void push_capture(mstate *ms, int i, const char *s, const char *e)
{
	if (i >= ms->ncap) {
		if (i != 0)
			luaL_error(ms->L, "invalid capture index %%%d", i + 1);
		lua_pushlstring(ms->L, s, (size_t)(e - s));
		return;
	}
	if (ms->cap[i].len == CAP_OPEN)
		luaL_error(ms->L, "unfinished capture");
	if (ms->cap[i].len == CAP_POS)
		lua_pushinteger(ms->L, ms->cap[i].at - ms->s0 + 1);
	else
		lua_pushlstring(ms->L, ms->cap[i].at, (size_t)ms->cap[i].len);
}

/* [-0, +n, m] Push every capture (the whole match when there is none and
 * s != NULL); returns n. */
static int push_captures(mstate *ms, const char *s, const char *e)
{
	int n = (ms->ncap == 0 && s) ? 1 : ms->ncap;

	luaL_checkstack(ms->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		push_capture(ms, i, s, e);
	return n;
}

/* A 1-based start position (negative: from the end) as an offset + 1. */
static size_t start_pos(lua_Integer pos, size_t len)
{
	if (pos > 0)
		return (size_t)pos;
	if (pos == 0 || pos < -(lua_Integer)len)
		return 1;
	return len + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++)
		if (strchr("^$*+?.([%-", p[i]) && p[i])
			return 1;
	return 0;
}

/* [-(2|3|4), +(1|n), v] string.find (find) or string.match */
static int find_or_match(lua_State *L, int find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_pos(luaL_optinteger(L, 3, 1), ls);
	mstate ms;
	int anchor;
	const char *s1;

	if (init > ls + 1) {
		luaL_pushfail(L);
		return 1;
	}
	if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
		const char *at = NULL;
		gl_lsafe_charge(L, 1 + (int64_t)(ls - init + 1) / 16);
		if (lp == 0)
			at = s + init - 1;
		else if (lp <= ls - init + 1)
			at = memmem(s + init - 1, ls - init + 1, p, lp);
		if (!at) {
			luaL_pushfail(L);
			return 1;
		}
		lua_pushinteger(L, at - s + 1);
		lua_pushinteger(L, at - s + (lua_Integer)lp);
		return 2;
	}
	anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	ms_init(&ms, L, s, ls, p, lp);
	s1 = s + init - 1;
	do {
		const char *e;
		ms_reset(&ms);
		e = do_match(&ms, s1, p);
		if (e) {
			settle(&ms);
			if (find) {
				lua_pushinteger(L, s1 - s + 1);
				lua_pushinteger(L, e - s);
				return push_captures(&ms, NULL, NULL) + 2;
			}
			return push_captures(&ms, s1, e);
		}
	} while (s1++ < ms.send && !anchor);
	settle(&ms);
	luaL_pushfail(L);
	return 1;
}

static int s_find(lua_State *L)
{
	return find_or_match(L, 1);
}
static int s_match(lua_State *L)
{
	return find_or_match(L, 0);
}

/* gmatch: the iterator's state lives in a userdata (upvalue 3), next to
 * the subject and pattern strings that keep its pointers valid */
typedef struct gmstate {
	mstate ms;
	const char *p;    /* the pattern */
	const char *at;   /* where the next search starts */
	const char *last; /* end of the last match */
	int over;
} gmstate;

static int gmatch_next(lua_State *L)
{
	gmstate *g = lua_touserdata(L, lua_upvalueindex(3));

	g->ms.L = L;
	for (const char *s = g->at; !g->over && s <= g->ms.send; s++) {
		const char *e;
		ms_reset(&g->ms);
		e = do_match(&g->ms, s, g->p);
		if (e && e != g->last) {
			g->at = g->last = e;
			settle(&g->ms);
			return push_captures(&g->ms, s, e);
		}
	}
	settle(&g->ms);
	g->over = 1;
	return 0;
}

static int s_gmatch(lua_State *L)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_pos(luaL_optinteger(L, 3, 1), ls);
	gmstate *g;

	lua_settop(L, 2);
	g = lua_newuserdatauv(L, sizeof *g, 0);
	ms_init(&g->ms, L, s, ls, p, lp);
	g->p = p;
	g->last = NULL;
	/* a start past the end matches nothing, not even "" */
	g->over = init - 1 > ls;
	g->at = g->over ? s + ls : s + init - 1;
	lua_pushcclosure(L, gmatch_next, 3);
	return 1;
}

/* [-0, +0, e] Add gsub's replacement of the match s..e to b (a table or
 * function replacement runs with the match pushed and popped). */
static void add_replacement(mstate *ms, luaL_Buffer *b, const char *s,
			    const char *e, int kind)
{
	lua_State *L = ms->L;

	if (kind == LUA_TSTRING || kind == LUA_TNUMBER) {
		size_t l;
		const char *r = lua_tolstring(L, 3, &l), *end = r + l;
		while (r < end) {
			const char *pc = memchr(r, '%', (size_t)(end - r));
			if (!pc) {
				luaL_addlstring(b, r, (size_t)(end - r));
				break;
			}
			luaL_addlstring(b, r, (size_t)(pc - r));
			pc++;
			if (pc < end && *pc == '%') {
				luaL_addchar(b, '%');
			} else if (pc < end && isdigit((unsigned char)*pc)) {
				if (*pc == '0')
					luaL_addlstring(b, s, (size_t)(e - s));
				else {
					push_capture(ms, *pc - '1', s, e);
					luaL_tolstring(L, -1, NULL);
					lua_remove(L, -2);
					luaL_addvalue(b);
				}
			} else {
				luaL_error(L, "invalid use of '%%' in "
					      "replacement string");
			}
			r = pc + 1;
		}
		return;
	}
	if (kind == LUA_TFUNCTION) {
		int n;
		lua_pushvalue(L, 3);
		n = push_captures(ms, s, e);
		lua_call(L, n, 1);
	} else {
		push_capture(ms, 0, s, e);
		lua_gettable(L, 3);
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
	} else if (!lua_isstring(L, -1)) {
		luaL_error(L, "invalid replacement value (a %s)",
			   luaL_typename(L, -1));
	} else {
		luaL_addvalue(b);
	}
}

static int s_gsub(lua_State *L)
{
	size_t ls, lp;
	const char *src = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	const char *last = NULL;
	int kind = lua_type(L, 3);
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1), n = 0;
	int anchor = lp > 0 && *p == '^';
	mstate ms;
	luaL_Buffer b;

	luaL_argexpected(L,
			 kind == LUA_TNUMBER || kind == LUA_TSTRING ||
				 kind == LUA_TFUNCTION || kind == LUA_TTABLE,
			 3, "string/function/table");
	if (anchor) {
		p++;
		lp--;
	}
	luaL_buffinit(L, &b);
	ms_init(&ms, L, src, ls, p, lp);
	while (n < max) {
		const char *e;
		ms_reset(&ms);
		e = do_match(&ms, src, p);
		if (e && e != last) {
			n++;
			add_replacement(&ms, &b, src, e, kind);
			src = last = e;
		} else if (src < ms.send) {
			luaL_addchar(&b, *src++);
		} else {
			break;
		}
		if (anchor)
			break;
	}
	luaL_addlstring(&b, src, (size_t)(ms.send - src));
	work(&ms, (int64_t)luaL_bufflen(&b) / 16);
	settle(&ms);
	luaL_pushresult(&b);
	lua_pushinteger(L, n);
	return 2;
}

/* ---- the table library ------------------------------------------------------------- */

/* [-0, +0, e] Tables only (the stock functions also take values with
 * __index/__len metamethods; a sandboxed type has no such values but
 * tables). */
static lua_Integer check_len(lua_State *L, int idx)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	return luaL_len(L, idx);
}

/* charge per table access (a get or set may run a metamethod), in
 * batches */
typedef struct meter {
	lua_State *L;
	int64_t n;
} meter;

/* [-0, +0, v] charge n steps of table work (tick: one; done: the rest) */
static void ticks(meter *m, int n)
{
	m->n += n;
	if (m->n >= 256) {
		gl_lsafe_charge(m->L, m->n);
		m->n = 0;
	}
}

static void tick(meter *m)
{
	ticks(m, 1);
}

static void done(meter *m)
{
	if (m->n)
		gl_lsafe_charge(m->L, m->n);
	m->n = 0;
}

static int t_concat(lua_State *L)
{
	lua_Integer last = check_len(L, 1);
	size_t lsep;
	const char *sep = luaL_optlstring(L, 2, "", &lsep);
	lua_Integer i = luaL_optinteger(L, 3, 1);
	meter m = { L, 0 };
	luaL_Buffer b;

	last = luaL_optinteger(L, 4, last);
	luaL_buffinit(L, &b);
	for (; i <= last; i++) {
		tick(&m);
		lua_geti(L, 1, i);
		if (!lua_isstring(L, -1))
			luaL_error(L,
				   "invalid value (%s) at index %I in table "
				   "for 'concat'",
				   luaL_typename(L, -1), (LUAI_UACINT)i);
		luaL_addvalue(&b);
		if (i != last)
			luaL_addlstring(&b, sep, lsep);
		if (i == LUA_MAXINTEGER)
			break;
	}
	m.n += (int64_t)luaL_bufflen(&b) / 64;
	done(&m);
	luaL_pushresult(&b);
	return 1;
}

static int t_insert(lua_State *L)
{
	lua_Integer e = check_len(L, 1), pos;
	meter m = { L, 0 };

	e = (lua_Integer)((lua_Unsigned)e + 1u);
	switch (lua_gettop(L)) {
	case 2:
		pos = e;
		break;
	case 3:
		pos = luaL_checkinteger(L, 2);
		luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
			      "position out of bounds");
		for (lua_Integer i = e; i > pos; i--) {
			ticks(&m, 2);
			lua_geti(L, 1, i - 1);
			lua_seti(L, 1, i);
		}
		break;
	default:
		return luaL_error(L, "wrong number of arguments to 'insert'");
	}
	done(&m);
	lua_seti(L, 1, pos);
	return 0;
}

static int t_remove(lua_State *L)
{
	lua_Integer size = check_len(L, 1);
	lua_Integer pos = luaL_optinteger(L, 2, size);
	meter m = { L, 0 };

	if (pos != size)
		/* argument #1, as the stock 5.4 function reports it */
		luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size,
			      1, "position out of bounds");
	lua_geti(L, 1, pos);
	for (; pos < size; pos++) {
		ticks(&m, 2);
		lua_geti(L, 1, pos + 1);
		lua_seti(L, 1, pos);
	}
	done(&m);
	lua_pushnil(L);
	lua_seti(L, 1, pos);
	return 1;
}

static int t_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2);
	lua_Integer e = luaL_checkinteger(L, 3);
	lua_Integer t = luaL_checkinteger(L, 4);
	int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
	meter m = { L, 0 };

	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, tt, LUA_TTABLE);
	if (e >= f) {
		lua_Integer n;
		luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3,
			      "too many elements to move");
		n = e - f + 1;
		luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4,
			      "destination wrap around");
		if (t > e || t <= f ||
		    (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
			for (lua_Integer i = 0; i < n; i++) {
				ticks(&m, 2);
				lua_geti(L, 1, f + i);
				lua_seti(L, tt, t + i);
			}
		} else {
			for (lua_Integer i = n - 1; i >= 0; i--) {
				ticks(&m, 2);
				lua_geti(L, 1, f + i);
				lua_seti(L, tt, t + i);
			}
		}
	}
	done(&m);
	lua_pushvalue(L, tt);
	return 1;
}

static int t_unpack(lua_State *L)
{
	lua_Integer i = luaL_optinteger(L, 2, 1), e;
	lua_Unsigned n;

	if (lua_isnoneornil(L, 3))
		e = check_len(L, 1);
	else
		e = luaL_checkinteger(L, 3);
	if (i > e)
		return 0;
	n = (lua_Unsigned)e - (lua_Unsigned)i;
	if (n >= (unsigned)INT_MAX || !lua_checkstack(L, (int)(++n)))
		return luaL_error(L, "too many results to unpack");
	gl_lsafe_charge(L, (int64_t)n);
	for (; i < e; i++)
		lua_geti(L, 1, i);
	lua_geti(L, 1, e);
	return (int)n;
}

/* table.sort: a heap sort in place, through the table's metamethods like
 * the stock function; every comparison and move is charged, and it
 * allocates nothing, so the budget (not memory) is what stops a hostile
 * length. */
/* [-0, +0, e] t[a] < t[b], by the comparator at 2 or by < */
static int less(lua_State *L, lua_Integer a, lua_Integer b, meter *m)
{
	int r;

	ticks(m, 2);
	if (!lua_isnil(L, 2)) {
		lua_pushvalue(L, 2);
		lua_geti(L, 1, a);
		lua_geti(L, 1, b);
		lua_call(L, 2, 1);
		r = lua_toboolean(L, -1);
		lua_pop(L, 1);
		return r;
	}
	lua_geti(L, 1, a);
	lua_geti(L, 1, b);
	r = lua_compare(L, -2, -1, LUA_OPLT);
	lua_pop(L, 2);
	return r;
}

/* [-0, +0, e] t[a], t[b] = t[b], t[a] */
static void swap(lua_State *L, lua_Integer a, lua_Integer b, meter *m)
{
	ticks(m, 4);
	lua_geti(L, 1, a);
	lua_geti(L, 1, b);
	lua_seti(L, 1, a);
	lua_seti(L, 1, b);
}

/* [-0, +0, e] sift t[root] down the heap t[1..n] */
static void sift(lua_State *L, lua_Integer root, lua_Integer n, meter *m)
{
	for (;;) {
		lua_Integer child = 2 * root, big = root;
		if (child <= n && less(L, big, child, m))
			big = child;
		if (child + 1 <= n && less(L, big, child + 1, m))
			big = child + 1;
		if (big == root)
			return;
		swap(L, root, big, m);
		root = big;
	}
}

static int t_sort(lua_State *L)
{
	lua_Integer n = check_len(L, 1);
	meter m = { L, 0 };

	if (n <= 1)
		return 0;
	luaL_argcheck(L, n < INT_MAX, 1, "array too big");
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	for (lua_Integer i = n / 2; i >= 1; i--)
		sift(L, i, n, &m);
	for (lua_Integer end = n; end > 1; end--) {
		swap(L, 1, end, &m);
		sift(L, 1, end - 1, &m);
	}
	done(&m);
	return 0;
}

/* ---- the module -------------------------------------------------------------------- */

int gl_lsafe_open(lua_State *L)
{
	/* clang-format off */
	static const luaL_Reg fns[] = {
		{ "rep", s_rep }, { "find", s_find }, { "match", s_match },
		{ "gmatch", s_gmatch }, { "gsub", s_gsub },
		{ "concat", t_concat }, { "insert", t_insert },
		{ "remove", t_remove }, { "move", t_move },
		{ "unpack", t_unpack }, { "sort", t_sort },
		{ "random", s_random }, { "clock", s_clock },
		{ "tostring", s_tostring }, { NULL, NULL }
	};
	/* clang-format on */

	luaL_newlib(L, fns);
	/* format wraps the stock one */
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "format");
	lua_remove(L, -2);
	lua_pushcclosure(L, s_format, 1);
	lua_setfield(L, -2, "format");
	return 1;
}
