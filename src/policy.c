/* policy.c - the oslo.policy rule language: parser, evaluator, rule files.
 *
 * Rules are parsed once (the defaults in gl_policy_new, overrides when a rule
 * or a file is set) into small expression trees, then walked per request
 * against the caller's gl_creds and a JSON target. Supported: the oslo text
 * syntax (@, !, role:, rule:, http(s): as deny, generic "left:right" checks
 * with %(key)s substitution, not > and > or, parentheses), the legacy
 * list-of-lists syntax, JSON policy files and the flat YAML subset that oslo
 * policy files use.
 *
 * Unlike oslo, which turns an unparsable rule into a silent deny, malformed
 * text is rejected with a message naming the rule and the offset, so an
 * operator's typo never quietly locks everybody out.
 *
 * Evaluation is bounded: at most POL_MAX_DEPTH rules sit on the rule:name
 * stack, and a reference cycle, a deeper chain or an exhausted step budget
 * aborts the whole check as a deny (oslo raises there), so no policy file
 * can overflow the stack or stall a request.
 *
 * Uses jansson (targets, JSON files, the legacy list syntax).
 */
#include "policy.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Limits, each far above what a real policy needs:
 * rules on the rule:name stack in one check; nested parentheses and 'not'
 * in one rule; node visits per check (a default rule takes about 10);
 * policy file bytes (real ones are a few KB). */
#define POL_MAX_DEPTH 32
#define POL_MAX_NEST 64
#define POL_EVAL_BUDGET 100000
#define POL_MAX_FILE (4u << 20)

/* ------------------------------------------------------------------------
 * Allocation and messages. The header promises "never NULL": out of memory
 * is fatal here, as everywhere in glared's core.
 * ---------------------------------------------------------------------- */

__attribute__((noreturn)) static void oom(void)
{
	fputs("glared: policy: out of memory\n", stderr);
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* A growable byte string, for YAML scalars and %(key)s expansion. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (n >= SIZE_MAX / 2 - b->len)
		oom(); /* the doubling below would overflow */
	if (!b->s || b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

/* Never NULL, so an empty scalar is "" and not a missing value. */
static char *sb_take(struct sbuf *b)
{
	char *s = b->s ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

static int is_blank(int c)
{
	return c == ' ' || c == '\t';
}

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

/* ------------------------------------------------------------------------
 * Expression trees
 * ---------------------------------------------------------------------- */

enum node_kind {
	N_TRUE,
	N_FALSE,
	N_NOT,
	N_AND,
	N_OR,
	N_ROLE,
	N_RULE,
	N_GENERIC,
	N_HTTP, /* parsed for compatibility, always denies */
};

/* What the left side of a generic check names. */
/* clang-format off */
enum attr {
	A_LITERAL,    /* 'public', "x", True, 42: compared as text */
	A_USER_ID,
	A_PROJECT_ID,
	A_IS_ADMIN,   /* creds->is_admin rendered "True"/"False" */
	A_ROLES,      /* any role equal (case-sensitive, as oslo) */
	A_USER_DOMAIN_ID,
	A_PROJECT_DOMAIN_ID,
	A_OTHER,      /* a credential we do not have: never matches */
};
/* clang-format on */

struct node {
	enum node_kind kind;
	enum attr attr; /* N_GENERIC */
	int subst;      /* right contains '%': expand against the target */
	char *left;     /* N_GENERIC + A_LITERAL: the literal's text */
	char *right;    /* N_ROLE/N_GENERIC: template; N_RULE: rule name */
	size_t nkids;
	struct node **kids; /* N_NOT: one; N_AND/N_OR: nkids */
};

static struct node *node_new(enum node_kind kind)
{
	struct node *n = xcalloc(1, sizeof *n);

	n->kind = kind;
	return n;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->left);
	free(n->right);
	free(n);
}

static void node_add(struct node *n, struct node *kid)
{
	n->kids = xrealloc(n->kids, (n->nkids + 1) * sizeof *n->kids);
	n->kids[n->nkids++] = kid;
}

/* A one-operand and/or is just the operand. */
static struct node *node_unwrap(struct node *n)
{
	struct node *k;

	if ((n->kind != N_AND && n->kind != N_OR) || n->nkids != 1)
		return n;
	k = n->kids[0];
	n->nkids = 0;
	node_free(n);
	return k;
}

/* ------------------------------------------------------------------------
 * Text rule parser: tokenizer + recursive descent
 *
 *   or   := and { "or" and }
 *   and  := not { "and" not }
 *   not  := "not" not | "(" or ")" | check
 *
 * Tokens split at whitespace and at parentheses, except inside a %(key)s
 * substitution or a quoted part of a check (a quote opens only at the start
 * of a word or right after its first ':'), so "(role:a)and(role:b)" and
 * "'a b':%(x)s" both tokenize as meant. and/or/not are keywords only in
 * lowercase, as in oslo.
 * ---------------------------------------------------------------------- */

enum tok_kind { T_END, T_WORD, T_AND, T_OR, T_NOT, T_LP, T_RP };

struct tok {
	enum tok_kind kind;
	size_t off, len;
};

struct parser {
	const char *s;
	size_t slen;
	struct tok *toks;
	size_t ntoks, pos;
	gl_err *err; /* the first error */
	int failed;
};

__attribute__((format(printf, 2, 3))) static void perr(struct parser *ps,
						       const char *f, ...)
{
	va_list ap;

	if (ps->failed)
		return;
	ps->failed = 1;
	va_start(ap, f);
	gl_vfail(ps->err, 500, NULL, f, ap);
	va_end(ap);
}

static void tok_add(struct parser *ps, enum tok_kind kind, size_t off,
		    size_t len)
{
	ps->toks = xrealloc(ps->toks, (ps->ntoks + 1) * sizeof *ps->toks);
	ps->toks[ps->ntoks].kind = kind;
	ps->toks[ps->ntoks].off = off;
	ps->toks[ps->ntoks].len = len;
	ps->ntoks++;
}

static int word_is(const char *w, size_t n, const char *kw)
{
	return n == strlen(kw) && memcmp(w, kw, n) == 0;
}

static int tokenize(struct parser *ps)
{
	const char *s = ps->s;
	size_t i = 0, n = ps->slen;

	while (i < n) {
		size_t j, colon = SIZE_MAX;

		if (is_space((unsigned char)s[i])) {
			i++;
			continue;
		}
		if (s[i] == '(' || s[i] == ')') {
			tok_add(ps, s[i] == '(' ? T_LP : T_RP, i, 1);
			i++;
			continue;
		}
		for (j = i; j < n; j++) {
			char c = s[j];
			const char *e;
			int part_start = j == i ||
					 (colon != SIZE_MAX && j == colon + 1);

			if (is_space((unsigned char)c) || c == '(' || c == ')')
				break;
			if ((c == '\'' || c == '"') && part_start) {
				e = memchr(s + j + 1, c, n - j - 1);
				if (!e) {
					perr(ps,
					     "unterminated quote at "
					     "offset %zu",
					     j);
					return -1;
				}
				j = (size_t)(e - s);
				continue;
			}
			if (c == '%' && j + 1 < n && s[j + 1] == '(') {
				e = memchr(s + j + 2, ')', n - j - 2);
				if (!e) {
					perr(ps,
					     "unterminated substitution at "
					     "offset %zu",
					     j);
					return -1;
				}
				j = (size_t)(e - s);
				continue;
			}
			if (c == ':' && colon == SIZE_MAX)
				colon = j;
		}
		if (word_is(s + i, j - i, "and"))
			tok_add(ps, T_AND, i, j - i);
		else if (word_is(s + i, j - i, "or"))
			tok_add(ps, T_OR, i, j - i);
		else if (word_is(s + i, j - i, "not"))
			tok_add(ps, T_NOT, i, j - i);
		else
			tok_add(ps, T_WORD, i, j - i);
		i = j;
	}
	tok_add(ps, T_END, n, 0);
	return 0;
}

static const struct tok *cur(const struct parser *ps)
{
	return &ps->toks[ps->pos];
}

/* Checks a match template: only %(name)s and %% may follow a '%'. */
static int check_template(struct parser *ps, const char *r, size_t rlen,
			  size_t roff)
{
	for (size_t i = 0; i < rlen; i++) {
		const char *e;

		if (r[i] != '%')
			continue;
		if (i + 1 < rlen && r[i + 1] == '%') {
			i++;
			continue;
		}
		if (i + 1 < rlen && r[i + 1] == '(') {
			e = memchr(r + i + 2, ')', rlen - i - 2);
			if (e && e > r + i + 2 && (size_t)(e - r) + 1 < rlen &&
			    e[1] == 's') {
				i = (size_t)(e - r) + 1;
				continue;
			}
		}
		perr(ps,
		     "bad substitution at offset %zu (use %%(name)s, or "
		     "%%%% for a literal '%%')",
		     roff + i);
		return -1;
	}
	return 0;
}

/* A left side that Python's literal_eval would accept: oslo compares
 * str(literal) with the match instead of looking up a credential. */
static int is_bare_literal(const char *l)
{
	const char *d = l;

	if (!strcmp(l, "True") || !strcmp(l, "False") || !strcmp(l, "None"))
		return 1;
	if (*d == '-')
		d++;
	if (!*d || (*d == '0' && d[1]))
		return 0;
	for (; *d; d++)
		if (!isdigit((unsigned char)*d))
			return 0;
	return 1;
}

static struct node *parse_check(struct parser *ps, const struct tok *t)
{
	const char *w = ps->s + t->off, *r, *q;
	size_t len = t->len, sep, rlen, roff;
	struct node *n;
	char *left;

	if (len == 1 && w[0] == '@')
		return node_new(N_TRUE);
	if (len == 1 && w[0] == '!')
		return node_new(N_FALSE);
	if (w[0] == '\'' || w[0] == '"') {
		/* the tokenizer guarantees the closing quote */
		q = memchr(w + 1, w[0], len - 1);
		sep = (size_t)(q - w) + 1;
		if (sep >= len || w[sep] != ':')
			goto malformed;
	} else {
		q = memchr(w, ':', len);
		if (!q) {
			perr(ps, "unknown token '%.*s' at offset %zu",
			     (int)len, w, t->off);
			return NULL;
		}
		sep = (size_t)(q - w);
	}
	if (sep == 0 || sep + 1 >= len)
		goto malformed;
	r = w + sep + 1;
	rlen = len - sep - 1;
	roff = t->off + sep + 1;
	left = xstrndup(w, sep);

	if (!strcmp(left, "http") || !strcmp(left, "https")) {
		free(left);
		return node_new(N_HTTP);
	}
	if (r[0] == '\'' || r[0] == '"') {
		q = rlen > 1 ? memchr(r + 1, r[0], rlen - 1) : NULL;
		if (!q || q != r + rlen - 1) {
			free(left);
			perr(ps,
			     "malformed quoted string in '%.*s' at offset "
			     "%zu",
			     (int)len, w, roff);
			return NULL;
		}
		r++;
		rlen -= 2;
		roff++;
	}

	if (!strcmp(left, "rule")) {
		free(left);
		if (rlen == 0)
			goto malformed;
		n = node_new(N_RULE);
		n->right = xstrndup(r, rlen);
		return n;
	}
	if (check_template(ps, r, rlen, roff)) {
		free(left);
		return NULL;
	}
	if (!strcmp(left, "role")) {
		free(left);
		n = node_new(N_ROLE);
	} else {
		n = node_new(N_GENERIC);
		if (left[0] == '\'' || left[0] == '"') {
			n->attr = A_LITERAL;
			n->left = xstrndup(left + 1, sep - 2);
			free(left);
		} else if (is_bare_literal(left)) {
			n->attr = A_LITERAL;
			n->left = left;
		} else {
			n->attr = !strcmp(left, "user_id")      ? A_USER_ID
				  : !strcmp(left, "project_id") ? A_PROJECT_ID
				  : !strcmp(left, "is_admin")   ? A_IS_ADMIN
				  : !strcmp(left, "roles")      ? A_ROLES
				  : !strcmp(left, "user_domain_id")
					  ? A_USER_DOMAIN_ID
				  : !strcmp(left, "project_domain_id")
					  ? A_PROJECT_DOMAIN_ID
					  : A_OTHER;
			free(left);
		}
	}
	n->right = xstrndup(r, rlen);
	n->subst = memchr(r, '%', rlen) != NULL;
	return n;

malformed:
	perr(ps, "malformed check '%.*s' at offset %zu", (int)len, w, t->off);
	return NULL;
}

/* Called where an operand was expected but cur() cannot start one; picks
 * the message that points at the real mistake. */
static void missing_operand(struct parser *ps)
{
	const struct tok *t = cur(ps);
	const struct tok *prev = ps->pos ? &ps->toks[ps->pos - 1] : NULL;

	if (prev &&
	    (prev->kind == T_AND || prev->kind == T_OR || prev->kind == T_NOT))
		perr(ps, "missing operand after '%.*s' at offset %zu",
		     (int)prev->len, ps->s + prev->off, prev->off);
	else if (prev && prev->kind == T_LP && t->kind == T_END)
		perr(ps, "unbalanced parenthesis at offset %zu", prev->off);
	else if (t->kind == T_AND || t->kind == T_OR)
		perr(ps, "missing operand before '%.*s' at offset %zu",
		     (int)t->len, ps->s + t->off, t->off);
	else if (t->kind == T_RP)
		perr(ps, "unbalanced parenthesis at offset %zu", t->off);
	else
		perr(ps, "missing operand at offset %zu", t->off);
}

static struct node *parse_or(struct parser *ps, int nest);

static struct node *parse_not(struct parser *ps, int nest)
{
	const struct tok *t = cur(ps);
	struct node *n, *k;
	size_t lp;

	switch (t->kind) {
	case T_NOT:
	case T_LP:
		/* bounded so a hostile rule cannot overflow the C stack */
		if (nest >= POL_MAX_NEST) {
			perr(ps, "nesting deeper than %d at offset %zu",
			     POL_MAX_NEST, t->off);
			return NULL;
		}
		if (t->kind == T_NOT) {
			ps->pos++;
			k = parse_not(ps, nest + 1);
			if (!k)
				return NULL;
			n = node_new(N_NOT);
			node_add(n, k);
			return n;
		}
		lp = ps->pos++;
		if (cur(ps)->kind == T_RP) {
			perr(ps, "empty parentheses at offset %zu",
			     ps->toks[lp].off);
			return NULL;
		}
		k = parse_or(ps, nest + 1);
		if (!k)
			return NULL;
		/* parse_or stops only at ')' or the end */
		if (cur(ps)->kind != T_RP) {
			node_free(k);
			perr(ps, "unbalanced parenthesis at offset %zu",
			     ps->toks[lp].off);
			return NULL;
		}
		ps->pos++;
		return k;
	case T_WORD:
		ps->pos++;
		return parse_check(ps, t);
	default:
		missing_operand(ps);
		return NULL;
	}
}

static struct node *parse_and(struct parser *ps, int nest)
{
	struct node *n = node_new(N_AND), *k;

	for (;;) {
		const struct tok *t;

		k = parse_not(ps, nest);
		if (!k)
			goto fail;
		node_add(n, k);
		t = cur(ps);
		if (t->kind == T_WORD || t->kind == T_LP || t->kind == T_NOT) {
			perr(ps,
			     "expected 'and' or 'or' before '%.*s' at "
			     "offset %zu",
			     (int)t->len, ps->s + t->off, t->off);
			goto fail;
		}
		if (t->kind != T_AND)
			return node_unwrap(n);
		ps->pos++;
	}
fail:
	node_free(n);
	return NULL;
}

static struct node *parse_or(struct parser *ps, int nest)
{
	struct node *n = node_new(N_OR), *k;

	for (;;) {
		k = parse_and(ps, nest);
		if (!k) {
			node_free(n);
			return NULL;
		}
		node_add(n, k);
		if (cur(ps)->kind != T_OR)
			return node_unwrap(n);
		ps->pos++;
	}
}

/* Parses oslo text syntax (no list syntax). Returns the tree, or NULL with
 * err holding a bare message (no rule name). */
static struct node *parse_expr(const char *text, gl_err *err)
{
	struct parser ps = { .s = text, .slen = strlen(text), .err = err };
	size_t b = 0, e = ps.slen;
	struct node *n = NULL;

	while (b < e && is_space((unsigned char)text[b]))
		b++;
	while (e > b && is_space((unsigned char)text[e - 1]))
		e--;
	/* "" (everyone) is written literally in some policy documents */
	if (b == e || (e - b == 2 && (text[b] == '"' || text[b] == '\'') &&
		       text[b + 1] == text[b]))
		return node_new(N_TRUE);

	if (tokenize(&ps) == 0) {
		n = parse_or(&ps, 0);
		if (n && cur(&ps)->kind != T_END) {
			/* only a stray ')' can stop parse_or early */
			perr(&ps, "unbalanced parenthesis at offset %zu",
			     cur(&ps)->off);
			node_free(n);
			n = NULL;
		}
	}
	free(ps.toks);
	if (!n && !ps.failed)
		gl_fail(err, 500, NULL, "invalid rule");
	return n;
}

/* The legacy syntax: a list of lists of rule strings = OR of ANDs. As in
 * oslo, [] allows, an inner bare string is a one-item list, empty inner
 * lists are skipped, and nothing left means deny. */
static struct node *parse_list(const char *name, const json_t *arr,
			       gl_err *err)
{
	struct node *anyof, *allof, *k;
	const json_t *inner, *item;
	size_t i, j, nitems;
	gl_err m;

	if (!json_is_array(arr)) {
		gl_fail(err, 500, NULL, "policy rule '%s': expected a list",
			name);
		return NULL;
	}
	if (json_array_size(arr) == 0)
		return node_new(N_TRUE);
	anyof = node_new(N_OR);
	json_array_foreach(arr, i, inner) {
		if (json_is_array(inner) && json_array_size(inner) == 0)
			continue;
		if (!json_is_array(inner) && !json_is_string(inner)) {
			gl_fail(err, 500, NULL,
				"policy rule '%s': list item [%zu] must be "
				"a string or a list of strings",
				name, i);
			goto fail;
		}
		nitems = json_is_array(inner) ? json_array_size(inner) : 1;
		allof = node_new(N_AND);
		node_add(anyof, allof);
		for (j = 0; j < nitems; j++) {
			item = json_is_array(inner) ? json_array_get(inner, j)
						    : inner;
			if (!json_is_string(item)) {
				gl_fail(err, 500, NULL,
					"policy rule '%s': list item "
					"[%zu][%zu] must be a string",
					name, i, j);
				goto fail;
			}
			k = parse_expr(json_string_value(item), &m);
			if (!k) {
				gl_fail(err, 500, NULL,
					"policy rule '%s': list "
					"item [%zu][%zu]: %s",
					name, i, j, m.msg);
				goto fail;
			}
			node_add(allof, k);
		}
		anyof->kids[anyof->nkids - 1] = node_unwrap(allof);
	}
	if (anyof->nkids == 0) {
		node_free(anyof);
		return node_new(N_FALSE);
	}
	return node_unwrap(anyof);
fail:
	node_free(anyof);
	return NULL;
}

/* Parses one rule's text: oslo syntax, or the list syntax when the text is
 * a JSON array (no text rule can start with '['). On error returns NULL
 * with err = "policy rule '<name>': ...". */
static struct node *parse_rule(const char *name, const char *text, gl_err *err)
{
	const char *t = text ? text : "";
	struct node *n;
	json_error_t je;
	json_t *arr;
	gl_err m;

	while (is_space((unsigned char)*t))
		t++;
	if (*t == '[') {
		arr = json_loads(t, 0, &je);
		if (!arr) {
			gl_fail(err, 500, NULL,
				"policy rule '%s': invalid list syntax: %s",
				name, je.text);
			return NULL;
		}
		n = parse_list(name, arr, err);
		json_decref(arr);
		return n;
	}
	n = parse_expr(text ? text : "", &m);
	if (!n)
		gl_fail(err, 500, NULL, "policy rule '%s': %s", name, m.msg);
	return n;
}

/* ------------------------------------------------------------------------
 * The rule table: sorted by name for bsearch-style lookup.
 * ---------------------------------------------------------------------- */

struct rule {
	char *name;
	struct node *root;
};

struct gl_policy {
	struct rule *rules;
	size_t n, cap;
};

/* Index of name, or where it would be inserted (*found = 0). */
static size_t rule_pos(const gl_policy *p, const char *name, int *found)
{
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->rules[mid].name, name);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static const struct rule *rule_find(const gl_policy *p, const char *name)
{
	int found;
	size_t i = rule_pos(p, name, &found);

	return found ? &p->rules[i] : NULL;
}

/* Takes ownership of name and root. */
static void rule_put(gl_policy *p, char *name, struct node *root)
{
	int found;
	size_t i = rule_pos(p, name, &found);

	if (found) {
		free(name);
		node_free(p->rules[i].root);
		p->rules[i].root = root;
		return;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 32;
		p->rules = xrealloc(p->rules, p->cap * sizeof *p->rules);
	}
	memmove(&p->rules[i + 1], &p->rules[i], (p->n - i) * sizeof *p->rules);
	p->rules[i].name = name;
	p->rules[i].root = root;
	p->n++;
}

/* Glare's default rules (docs/glare-contract.md "Policy rules"), with one
 * deliberate difference: upload, set_location and delete_blob also carry
 * the update_public clause
 * of artifact:update, so the content of a public artifact (a mutable blob
 * of it) changes only by an admin's hand, like its fields. A policy file
 * setting these three to "rule:admin_or_owner" restores Glare's rules. */
static const struct {
	const char *name, *rule;
} defaults[] = {
	{ "context_is_admin", "role:admin" },
	{ "admin_or_owner", "is_admin:True or project_id:%(owner)s" },
	{ "artifact:type_list", "" },
	{ "artifact:create", "" },
	{ "artifact:update_public",
	  "'public':%(visibility)s and rule:context_is_admin "
	  "or not 'public':%(visibility)s" },
	{ "artifact:update",
	  "rule:admin_or_owner and rule:artifact:update_public" },
	{ "artifact:activate", "rule:admin_or_owner" },
	{ "artifact:reactivate", "rule:context_is_admin" },
	{ "artifact:deactivate", "rule:context_is_admin" },
	{ "artifact:publish", "rule:context_is_admin" },
	{ "artifact:get", "" },
	{ "artifact:get_any_artifact", "rule:context_is_admin" },
	{ "artifact:list", "" },
	{ "artifact:list_all_artifacts", "rule:context_is_admin" },
	{ "artifact:delete_public",
	  "'public':%(visibility)s and rule:context_is_admin "
	  "or not 'public':%(visibility)s" },
	{ "artifact:delete_deactivated",
	  "'deactivated':%(status)s and rule:context_is_admin "
	  "or not 'deactivated':%(status)s" },
	{ "artifact:delete",
	  "rule:admin_or_owner and rule:artifact:delete_public "
	  "and rule:artifact:delete_deactivated" },
	{ "artifact:set_location",
	  "rule:admin_or_owner and rule:artifact:update_public" },
	{ "artifact:set_internal_location", "rule:context_is_admin" },
	{ "artifact:upload",
	  "rule:admin_or_owner and rule:artifact:update_public" },
	{ "artifact:download_deactivated",
	  "'deactivated':%(status)s and rule:context_is_admin "
	  "or not 'deactivated':%(status)s" },
	{ "artifact:download",
	  "rule:admin_or_owner and rule:artifact:download_deactivated" },
	{ "artifact:download_from_any_artifact", "rule:context_is_admin" },
	{ "artifact:delete_blob",
	  "rule:admin_or_owner and rule:artifact:update_public" },
	{ "artifact:set_quotas", "rule:context_is_admin" },
	{ "artifact:list_all_quotas", "rule:context_is_admin" },
	{ "artifact:list_project_quotas",
	  "project_id:%(project_id)s or rule:context_is_admin" },
	/* webhook subscriptions (glared's own, after Glare's style) */
	{ "subscription:create", "" },
	{ "subscription:list", "" },
	{ "subscription:list_all", "rule:context_is_admin" },
	{ "subscription:get", "rule:admin_or_owner" },
	{ "subscription:delete", "rule:admin_or_owner" },
	{ "subscription:deliveries", "rule:admin_or_owner" },
	{ "subscription:all_projects", "rule:context_is_admin" },
};

gl_policy *gl_policy_new(void)
{
	gl_policy *p = xcalloc(1, sizeof *p);

	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
		gl_err err;
		struct node *n = parse_rule(defaults[i].name, defaults[i].rule,
					    &err);

		if (!n) { /* a bug in the table above, not a runtime case */
			fprintf(stderr, "glared: default %s\n", err.msg);
			abort();
		}
		rule_put(p, xstrdup(defaults[i].name), n);
	}
	return p;
}

void gl_policy_free(gl_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->rules[i].name);
		node_free(p->rules[i].root);
	}
	free(p->rules);
	free(p);
}

int gl_policy_set_rule(gl_policy *p, const char *name, const char *rule,
		       gl_err *err)
{
	struct node *n;

	if (!name || !*name)
		return gl_fail(err, 500, NULL, "policy rule name is empty");
	n = parse_rule(name, rule, err);
	if (!n)
		return -1;
	rule_put(p, xstrdup(name), n);
	return 0;
}

/* ------------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------- */

struct ev {
	const gl_policy *p;
	const gl_creds *c;
	const json_t *target;
	const struct node *stack[POL_MAX_DEPTH]; /* rules being evaluated */
	int depth;
	long steps;
	int abort; /* cycle, depth or budget: the whole check denies */
};

/* Renders a target member the way Python's "%s" would; 0 if it has no
 * sensible text form (then the check is false, like a missing key). */
static int render(const json_t *v, struct sbuf *out)
{
	char num[32];

	switch (json_typeof(v)) {
	case JSON_STRING:
		sb_putn(out, json_string_value(v), json_string_length(v));
		return 1;
	case JSON_TRUE:
		sb_puts(out, "True");
		return 1;
	case JSON_FALSE:
		sb_puts(out, "False");
		return 1;
	case JSON_NULL:
		sb_puts(out, "None");
		return 1;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		sb_puts(out, num);
		return 1;
	default:
		return 0;
	}
}

/* Expands a template checked by check_template. Returns a malloc'ed
 * string, or NULL when a key is missing from the target. */
static char *expand(const char *t, const json_t *target)
{
	struct sbuf b = { 0 };

	while (*t) {
		const char *pct = strchr(t, '%'), *close;
		char *key;
		const json_t *v;

		if (!pct) {
			sb_puts(&b, t);
			break;
		}
		sb_putn(&b, t, (size_t)(pct - t));
		if (pct[1] == '%') {
			sb_putc(&b, '%');
			t = pct + 2;
			continue;
		}
		close = strchr(pct + 2, ')');
		key = xstrndup(pct + 2, (size_t)(close - pct - 2));
		v = json_is_object(target) ? json_object_get(target, key)
					   : NULL;
		free(key);
		if (!v || !render(v, &b)) {
			free(b.s);
			return NULL;
		}
		t = close + 2; /* past ")s" */
	}
	return sb_take(&b);
}

static int streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int eval(struct ev *e, const struct node *n);

static int eval_rule(struct ev *e, const char *name)
{
	const struct rule *r = rule_find(e->p, name);
	int v;

	if (!r)
		return 0;
	if (e->depth >= POL_MAX_DEPTH) {
		e->abort = 1;
		return 0;
	}
	for (int i = 0; i < e->depth; i++) {
		if (e->stack[i] == r->root) {
			e->abort = 1;
			return 0;
		}
	}
	e->stack[e->depth++] = r->root;
	v = eval(e, r->root);
	e->depth--;
	return v;
}

static int eval_match(struct ev *e, const struct node *n, const char *m)
{
	const gl_creds *c = e->c;
	size_t i;

	if (n->kind == N_ROLE) {
		for (i = 0; i < c->nroles; i++)
			if (c->roles[i] && !strcasecmp(c->roles[i], m))
				return 1;
		return 0;
	}
	switch (n->attr) {
	case A_LITERAL:
		return streq(n->left, m);
	case A_USER_ID:
		return streq(c->user_id, m);
	case A_PROJECT_ID:
		return streq(c->project_id, m);
	case A_USER_DOMAIN_ID:
		return streq(c->user_domain_id, m);
	case A_PROJECT_DOMAIN_ID:
		return streq(c->project_domain_id, m);
	case A_IS_ADMIN:
		return streq(c->is_admin ? "True" : "False", m);
	case A_ROLES:
		for (i = 0; i < c->nroles; i++)
			if (streq(c->roles[i], m))
				return 1;
		return 0;
	default:
		return 0;
	}
}

static int eval(struct ev *e, const struct node *n)
{
	char *m;
	int v;

	if (e->abort)
		return 0;
	if (++e->steps > POL_EVAL_BUDGET) {
		e->abort = 1;
		return 0;
	}
	switch (n->kind) {
	case N_TRUE:
		return 1;
	case N_NOT:
		return !eval(e, n->kids[0]);
	case N_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if (!eval(e, n->kids[i]))
				return 0;
		return 1;
	case N_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if (eval(e, n->kids[i]))
				return 1;
		return 0;
	case N_RULE:
		return eval_rule(e, n->right);
	case N_ROLE:
	case N_GENERIC:
		if (!n->subst)
			return eval_match(e, n, n->right);
		m = expand(n->right, e->target);
		if (!m)
			return 0;
		v = eval_match(e, n, m);
		free(m);
		return v;
	default: /* N_FALSE, N_HTTP */
		return 0;
	}
}

int gl_policy_check(const gl_policy *p, const char *name, const gl_creds *c,
		    const json_t *target)
{
	static const gl_creds anonymous;
	struct ev e = { .p = p, .c = c ? c : &anonymous, .target = target };
	int v;

	if (!p || !name)
		return 0;
	v = eval_rule(&e, name);
	v = e.abort ? 0 : v;
	gl_debug("policy: %s %s for user %s project %s", name,
		 v ? "allowed" : "denied", e.c->user_id ? e.c->user_id : "-",
		 e.c->project_id ? e.c->project_id : "-");
	return v;
}

int gl_policy_is_admin(const gl_policy *p, const gl_creds *c)
{
	gl_creds nc = { 0 };

	if (c)
		nc = *c;
	nc.is_admin = 0;
	return gl_policy_check(p, "context_is_admin", &nc, NULL);
}

/* ------------------------------------------------------------------------
 * Policy files. Every rule is parsed into a staging list first and only a
 * fully valid file is applied, so a bad file leaves the policy as it was.
 * ---------------------------------------------------------------------- */

struct stage {
	struct rule *v;
	size_t n;
};

static void stage_add(struct stage *st, char *name, struct node *root)
{
	st->v = xrealloc(st->v, (st->n + 1) * sizeof *st->v);
	st->v[st->n].name = name;
	st->v[st->n].root = root;
	st->n++;
}

static void stage_free(struct stage *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].name);
		node_free(st->v[i].root);
	}
	free(st->v);
	st->v = NULL;
	st->n = 0;
}

/* In file order, so a later duplicate wins as in JSON and YAML. */
static void stage_apply(gl_policy *p, struct stage *st)
{
	for (size_t i = 0; i < st->n; i++)
		rule_put(p, st->v[i].name, st->v[i].root);
	free(st->v);
	st->v = NULL;
	st->n = 0;
}

static int read_file(const char *path, char **out, size_t *outlen, gl_err *err)
{
	FILE *f = fopen(path, "rb");
	struct sbuf b = { 0 };
	char chunk[8192];
	size_t got;

	if (!f) {
		gl_fail(err, 500, NULL, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + got > POL_MAX_FILE) {
			gl_fail(err, 500, NULL,
				"%s: policy file larger than %u bytes", path,
				POL_MAX_FILE);
			goto fail;
		}
		sb_putn(&b, chunk, got);
	}
	if (ferror(f)) {
		gl_fail(err, 500, NULL, "%s: read error: %s", path,
			strerror(errno));
		goto fail;
	}
	fclose(f);
	*outlen = b.len;
	*out = sb_take(&b);
	return 0;
fail:
	fclose(f);
	free(b.s);
	return -1;
}

static int load_json(const char *path, const char *buf, size_t len,
		     struct stage *st, gl_err *err)
{
	json_error_t je;
	json_t *doc = json_loadb(buf, len, 0, &je), *val;
	const char *key;
	struct node *n;
	gl_err m;

	if (!doc) {
		gl_fail(err, 500, NULL, "%s:%d:%d: invalid JSON: %s", path,
			je.line, je.column, je.text);
		return -1;
	}
	if (!json_is_object(doc)) {
		gl_fail(err, 500, NULL,
			"%s: policy file must be a JSON object", path);
		goto fail;
	}
	json_object_foreach(doc, key, val) {
		m.msg[0] = '\0';
		if (!*key) {
			gl_fail(err, 500, NULL,
				"%s: policy rule name is empty", path);
			goto fail;
		}
		if (json_is_string(val))
			n = parse_rule(key, json_string_value(val), &m);
		else if (json_is_array(val))
			n = parse_list(key, val, &m);
		else
			n = NULL;
		if (!n && !m.msg[0])
			gl_fail(&m, 500, NULL,
				"policy rule '%s': value must "
				"be a string or a list",
				key);
		if (!n) {
			gl_fail(err, 500, NULL, "%s: %s", path, m.msg);
			goto fail;
		}
		stage_add(st, xstrdup(key), n);
	}
	json_decref(doc);
	return 0;
fail:
	json_decref(doc);
	return -1;
}

/* The YAML subset of oslo policy files: a flat mapping, one rule per line,
 * keys and values plain, 'single' ('' escapes a quote) or "double" (\" \\
 * \/ \n \t escapes) quoted, # comments, a leading "---". Quoted values may
 * span lines (a break folds into a space) and so may plain ones through
 * indented continuation lines. Anything else (block scalars, anchors,
 * nested mappings) is an error with its line number. */
struct yaml {
	const char *s, *path;
	size_t len, pos; /* pos: always at the start of a line between rules */
	unsigned line;
	gl_err *err;
};

__attribute__((format(printf, 3, 4))) static int
yerr(struct yaml *y, unsigned line, const char *f, ...)
{
	va_list ap;
	char m[sizeof y->err->msg];

	va_start(ap, f);
	vsnprintf(m, sizeof m, f, ap);
	va_end(ap);
	return gl_fail(y->err, 500, NULL, "%s:%u: %s", y->path, line, m);
}

/* End of the line starting at i: the '\n' or the end of the buffer. */
static size_t line_end(const struct yaml *y, size_t i)
{
	const char *nl = memchr(y->s + i, '\n', y->len - i);

	return nl ? (size_t)(nl - y->s) : y->len;
}

/* The same without a trailing '\r' and blanks. */
static size_t content_end(const struct yaml *y, size_t i)
{
	size_t e = line_end(y, i);

	while (e > i && (is_blank(y->s[e - 1]) || y->s[e - 1] == '\r'))
		e--;
	return e;
}

/* Moves y->pos to the start of the line after the one holding i. */
static void next_line(struct yaml *y, size_t i)
{
	size_t e = line_end(y, i);

	y->pos = e < y->len ? e + 1 : y->len;
	y->line++;
}

/* Reads the quoted scalar at *i (on its opening quote) into out. Keys are
 * single-line; values may fold line breaks. */
static int yaml_quoted(struct yaml *y, size_t *i, int multiline,
		       struct sbuf *out)
{
	const char *s = y->s;
	char q = s[*i];
	unsigned start = y->line;
	size_t j = *i + 1;

	for (;;) {
		char c;

		if (j >= y->len)
			return yerr(y, start, "unterminated quoted string");
		c = s[j];
		if (c == q) {
			if (q == '\'' && j + 1 < y->len && s[j + 1] == '\'') {
				sb_putc(out, '\'');
				j += 2;
				continue;
			}
			*i = j + 1;
			return 0;
		}
		if (c == '\n' ||
		    (c == '\r' && j + 1 < y->len && s[j + 1] == '\n')) {
			int empties = 0;

			if (!multiline)
				return yerr(y, start,
					    "unterminated quoted string");
			/* YAML folding: trailing and leading blanks go, a
			 * break becomes a space, each empty line a newline */
			while (out->len && is_blank(out->s[out->len - 1]))
				out->s[--out->len] = '\0';
			for (;;) {
				j += c == '\r' ? 2 : 1;
				y->line++;
				while (j < y->len && is_blank(s[j]))
					j++;
				c = j < y->len ? s[j] : '\0';
				if (c == '\n' ||
				    (c == '\r' && j + 1 < y->len &&
				     s[j + 1] == '\n'))
					empties++;
				else
					break;
			}
			if (empties)
				while (empties--)
					sb_putc(out, '\n');
			else
				sb_putc(out, ' ');
			continue;
		}
		if (c == '\\' && q == '"') {
			char d = j + 1 < y->len ? s[j + 1] : '\0';

			switch (d) {
			case '"':
			case '\\':
			case '/':
				sb_putc(out, d);
				break;
			case 'n':
				sb_putc(out, '\n');
				break;
			case 't':
				sb_putc(out, '\t');
				break;
			default:
				if (d == '\0' || d == '\n' || d == '\r')
					d = ' ';
				return yerr(y, y->line,
					    "unsupported escape '\\%c' in "
					    "double-quoted string",
					    d);
			}
			j += 2;
			continue;
		}
		sb_putc(out, c);
		j++;
	}
}

/* A plain scalar from i to e, less a " #comment" and blanks. */
static void plain_piece(const struct yaml *y, size_t i, size_t e,
			struct sbuf *out)
{
	size_t k;

	for (k = i; k < e; k++)
		if (y->s[k] == '#' && (k == i || is_blank(y->s[k - 1])))
			break;
	while (k > i && is_blank(y->s[k - 1]))
		k--;
	sb_putn(out, y->s + i, k - i);
}

/* Parses the value that starts at i on the current line; leaves y->pos at
 * the line after the value. */
static int yaml_value(struct yaml *y, size_t i, struct sbuf *out)
{
	size_t e = content_end(y, i);

	while (i < e && is_blank(y->s[i]))
		i++;
	if (i < e && (y->s[i] == '"' || y->s[i] == '\'')) {
		if (yaml_quoted(y, &i, 1, out))
			return -1;
		e = content_end(y, i);
		while (i < e && is_blank(y->s[i]))
			i++;
		if (i < e && y->s[i] != '#')
			return yerr(y, y->line,
				    "unexpected text after quoted value");
		next_line(y, i);
		return 0;
	}
	if (i < e && strchr("|>&*{", y->s[i]))
		return yerr(y, y->line, "unsupported YAML syntax '%c'",
			    y->s[i]);
	plain_piece(y, i, e, out);
	next_line(y, i);
	/* indented continuation lines of a plain scalar */
	while (y->pos < y->len && is_blank(y->s[y->pos])) {
		size_t b = y->pos;

		e = content_end(y, b);
		while (b < e && is_blank(y->s[b]))
			b++;
		if (b == e || y->s[b] == '#')
			break;
		if (out->len)
			sb_putc(out, ' ');
		plain_piece(y, b, e, out);
		next_line(y, b);
	}
	return 0;
}

static int load_yaml(const char *path, const char *buf, size_t len,
		     struct stage *st, gl_err *err)
{
	struct yaml y = {
		.s = buf, .path = path, .len = len, .line = 1, .err = err
	};
	struct sbuf key = { 0 }, val = { 0 };

	while (y.pos < y.len) {
		size_t i = y.pos, e = content_end(&y, i), k, e2;
		unsigned kline = y.line;
		struct node *n;
		char *name, *text;
		gl_err m;

		while (i < e && is_blank(buf[i]))
			i++;
		if (i == e || buf[i] == '#') {
			next_line(&y, i);
			continue;
		}
		if (i > y.pos) {
			yerr(&y, y.line, "unexpected indentation");
			goto fail;
		}
		if (e - i == 3 && !memcmp(buf + i, "---", 3)) {
			next_line(&y, i);
			continue;
		}
		if (buf[i] == '"' || buf[i] == '\'') {
			if (yaml_quoted(&y, &i, 0, &key))
				goto fail;
			while (i < e && is_blank(buf[i]))
				i++;
			if (i >= e || buf[i] != ':') {
				yerr(&y, kline,
				     "expected ':' after the rule "
				     "name");
				goto fail;
			}
			k = i;
		} else {
			if (strchr("-[]{}?&*!|>%@`,", buf[i])) {
				yerr(&y, kline, "expected 'name: rule'");
				goto fail;
			}
			/* rule names contain ':', so only ": " ends one */
			for (k = i; k < e; k++)
				if (buf[k] == ':' &&
				    (k + 1 == e || is_blank(buf[k + 1])))
					break;
			if (k == e) {
				yerr(&y, kline, "expected 'name: rule'");
				goto fail;
			}
			/* "name : rule" is fine, "a # b: c" is a comment */
			plain_piece(&y, i, k, &key);
			e2 = k;
			while (e2 > i && is_blank(buf[e2 - 1]))
				e2--;
			if (key.len == 0 || key.len != e2 - i) {
				yerr(&y, kline, "expected 'name: rule'");
				goto fail;
			}
		}
		if (k + 1 < e && !is_blank(buf[k + 1])) {
			yerr(&y, kline, "expected a blank after ':'");
			goto fail;
		}
		name = sb_take(&key);
		if (!*name) {
			free(name);
			yerr(&y, kline, "policy rule name is empty");
			goto fail;
		}
		if (yaml_value(&y, k + 1, &val)) {
			free(name);
			goto fail;
		}
		text = sb_take(&val);
		n = parse_rule(name, text, &m);
		free(text);
		if (!n) {
			yerr(&y, kline, "%s", m.msg);
			free(name);
			goto fail;
		}
		stage_add(st, name, n);
	}
	return 0;
fail:
	free(key.s);
	free(val.s);
	return -1;
}

int gl_policy_load_file(gl_policy *p, const char *path, gl_err *err)
{
	struct stage st = { 0 };
	char *buf = NULL;
	size_t len = 0, bom = 0, i;
	int rc = -1;

	if (read_file(path, &buf, &len, err))
		goto done;
	if (memchr(buf, '\0', len)) {
		gl_fail(err, 500, NULL, "%s: policy file contains a NUL byte",
			path);
		goto done;
	}
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		bom = 3; /* a UTF-8 byte order mark, as some editors write */
	for (i = bom; i < len && is_space((unsigned char)buf[i]); i++)
		;
	if (i < len && buf[i] == '{')
		rc = load_json(path, buf + bom, len - bom, &st, err);
	else
		rc = load_yaml(path, buf + bom, len - bom, &st, err);
	if (rc == 0)
		stage_apply(p, &st);
done:
	stage_free(&st);
	free(buf);
	return rc;
}
