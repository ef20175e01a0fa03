/* art_list.c - GET /artifacts/{type}: Glare's list query language
 * (docs/glare-contract.md "Listing")
 * parsed into a gl_list_query for the meta store, and the list response
 * with its first/next links.
 *
 * Filter values are coerced by the type runtime exactly like field values,
 * so `visibility=blabla` or `int1=abc` are 400s, not empty lists.
 */
#include "art.h"
#include "core.h"
#include "jtext.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILTERS 64
#define MAX_SORTS 8

typedef struct lq {
	gl_filter filters[MAX_FILTERS];
	int nfilters;
	gl_sort sorts[MAX_SORTS];
	int nsorts;
	char *vbufs[MAX_FILTERS * 2]; /* version key strings to free */
	int nvbufs;
} lq;

static void lq_free(lq *q)
{
	for (int i = 0; i < q->nfilters; i++) {
		free(q->filters[i].key);
		json_decref(q->filters[i].values);
		free(q->filters[i].vkeys);
	}
	for (int i = 0; i < q->nvbufs; i++)
		free(q->vbufs[i]);
}

/* clang-format off */
static const char *const op_names[] = { "eq", "neq", "lt", "lte", "gt",
					"gte", "in", "like", NULL };
/* clang-format on */

static unsigned op_bit(const char *s)
{
	for (int i = 0; op_names[i]; i++)
		if (!strcmp(op_names[i], s))
			return 1u << i;
	return 0;
}

/* "[combiner:][op:]value" (docs/glare-contract.md "Filter values"). */
static int split_op(const char *expr, int *or_group, unsigned *op,
		    const char **value, gl_err *err)
{
	const char *c1 = strchr(expr, ':'), *rest = expr;
	int64_t us;
	char word[16];

	*or_group = 0;
	*op = GL_OP_EQ;
	*value = expr;
	if (!c1)
		return 0;
	/* combiner? */
	if ((c1 - expr == 3 && !strncmp(expr, "and", 3)) ||
	    (c1 - expr == 2 && !strncmp(expr, "or", 2))) {
		*or_group = expr[0] == 'o';
		rest = c1 + 1;
		*value = rest;
		c1 = strchr(rest, ':');
		if (!c1)
			return 0;
	}
	/* an ISO-8601 datetime keeps its colons */
	if (gl_parse_iso8601(rest, &us) == 0)
		return 0;
	if ((size_t)(c1 - rest) >= sizeof word)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown filter operator in '%s'", expr);
	memcpy(word, rest, (size_t)(c1 - rest));
	word[c1 - rest] = '\0';
	*op = op_bit(word);
	if (!*op)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown filter operator '%s' in '%s'", word,
			       expr);
	*value = c1 + 1;
	return 0;
}

/* Comma-separated values for "in"; double quotes protect commas, \" is a
 * quote inside them. */
static json_t *split_values(const char *v, gl_err *err)
{
	json_t *out = json_array();
	size_t n = strlen(v), i = 0;
	char *buf = malloc(n + 1);

	if (!buf) {
		json_decref(out);
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	while (i <= n) {
		size_t o = 0;
		if (v[i] == '"') {
			i++;
			while (i < n && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < n &&
				    v[i + 1] == '"')
					i++;
				buf[o++] = v[i++];
			}
			if (i >= n) {
				gl_fail(err, 400, "BadRequest",
					"Invalid filter value %s: the quote is "
					"not closed",
					v);
				goto fail;
			}
			i++; /* closing quote */
			if (i < n && v[i] != ',') {
				gl_fail(err, 400, "BadRequest",
					"Invalid filter value %s: no comma "
					"after the closing quote",
					v);
				goto fail;
			}
		} else {
			while (i < n && v[i] != ',') {
				if (v[i] == '"') {
					gl_fail(err, 400, "BadRequest",
						"Invalid filter value %s: no "
						"comma before the opening quote",
						v);
					goto fail;
				}
				buf[o++] = v[i++];
			}
		}
		buf[o] = '\0';
		json_array_append_new(out, gl_json_text(buf));
		if (i >= n)
			break;
		i++; /* comma */
		if (i == n) {
			json_array_append_new(out, json_string(""));
			break;
		}
	}
	free(buf);
	return out;
fail:
	free(buf);
	json_decref(out);
	return NULL;
}

static int add_values(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		      const gl_type *t, const gl_field *f, gl_filter *flt,
		      const char *value, int element, lq *q, gl_err *err)
{
	json_t *raw;
	size_t i;
	json_t *v;
	gl_kind kind = element ? f->elem : f->kind;

	if (flt->op == GL_OP_IN) {
		raw = split_values(value, err);
		if (!raw)
			return -1;
	} else {
		raw = json_pack("[s]", value);
		if (!raw)
			return gl_fail(err, 400, "BadRequest",
				       "Filter value of '%s' is not valid text",
				       f->name);
	}
	flt->values = json_array();
	if (kind == GK_VERSION)
		flt->vkeys = calloc(json_array_size(raw) + 1,
				    sizeof *flt->vkeys);
	json_array_foreach(raw, i, v) {
		const char *s = json_string_value(v);
		json_t *c = NULL;
		if (kind == GK_DATETIME) {
			int64_t us;
			if (gl_parse_iso8601(s, &us) < 0) {
				gl_fail(err, 400, "BadRequest",
					"Invalid datetime '%s' for field '%s'",
					s, f->name);
				json_decref(raw);
				return -1;
			}
			json_array_append_new(flt->values, json_integer(us));
			continue;
		}
		if (flt->op == GL_OP_LIKE) {
			/* patterns are not values: no coercion */
			json_array_append_new(flt->values, gl_json_text(s));
			continue;
		}
		if (gl_types_coerce_filter(ts, gl_ctx_lua(ctx), t, f->name, s,
					   element, &c, err) < 0) {
			json_decref(raw);
			return -1;
		}
		if (json_is_null(c)) {
			json_decref(c);
			json_decref(raw);
			return gl_fail(err, 400, "BadRequest",
				       "Filter value for '%s' cannot be null",
				       f->name);
		}
		if (kind == GK_VERSION) {
			char *suffix = NULL, *vmeta = NULL;
			if (q->nvbufs + 2 > (int)(sizeof q->vbufs /
						  sizeof q->vbufs[0]) ||
			    gl_core_vkey(e, ctx, ts, json_string_value(c),
					 &flt->vkeys[i], &suffix, &vmeta,
					 err) < 0) {
				free(suffix);
				free(vmeta);
				json_decref(c);
				json_decref(raw);
				if (!err->status)
					gl_fail(err, 400, "BadRequest",
						"Too many version filters");
				return -1;
			}
			q->vbufs[q->nvbufs++] = suffix;
			q->vbufs[q->nvbufs++] = vmeta;
		}
		json_array_append_new(flt->values, c);
	}
	json_decref(raw);
	return 0;
}

static int add_tags(const char *name, const char *value, lq *q, gl_err *err)
{
	int or_group = 0;
	const char *v = value;
	gl_filter *flt;
	json_t *tags;

	if (!strncmp(v, "and:", 4)) {
		v += 4;
	} else if (!strncmp(v, "or:", 3)) {
		v += 3;
		or_group = 1;
	}
	if (strchr(v, ':'))
		return gl_fail(err, 400, "BadRequest",
			       "Filter operators are not supported for %s",
			       name);
	if (!*v)
		return 0;
	tags = split_values(v, err);
	if (!tags)
		return -1;
	if (q->nfilters == MAX_FILTERS) {
		json_decref(tags);
		return gl_fail(err, 400, "BadRequest", "Too many filters");
	}
	flt = &q->filters[q->nfilters++];
	flt->kind = strcmp(name, "tags") ? GF_TAGS_ANY : GF_TAGS_ALL;
	flt->or_group = or_group;
	flt->op = GL_OP_IN;
	flt->values = tags;
	return 0;
}

static int add_filter(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		      const gl_type *t, const char *name, const char *value,
		      lq *q, gl_err *err)
{
	const gl_field *f = gl_type_field(t, name);
	const char *dot = NULL, *val;
	char fname[256];
	gl_filter *flt;
	int or_group, element = 0;
	unsigned op;

	if (!strcmp(name, "tags") || !strcmp(name, "tags-any"))
		return add_tags(name, value, q, err);
	if (!f && (dot = strchr(name, '.')) != NULL &&
	    (size_t)(dot - name) < sizeof fname) {
		memcpy(fname, name, (size_t)(dot - name));
		fname[dot - name] = '\0';
		f = gl_type_field(t, fname);
		if (f && f->kind != GK_DICT)
			f = NULL;
	}
	if (!f)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown filter field '%s' for artifact type %s",
			       name, t->name);
	if (split_op(value, &or_group, &op, &val, err) < 0)
		return -1;
	if (q->nfilters == MAX_FILTERS)
		return gl_fail(err, 400, "BadRequest", "Too many filters");
	flt = &q->filters[q->nfilters];
	memset(flt, 0, sizeof *flt);
	flt->field = f;
	flt->op = op;
	flt->or_group = or_group;
	if (dot) {
		flt->kind = GF_DICT_VAL;
		flt->key = strdup(dot + 1);
		element = 1;
	} else if (f->kind == GK_DICT) {
		/* dict=key: presence of a key (eq) or of any of keys (in) */
		if (op != GL_OP_EQ && op != GL_OP_IN)
			return gl_fail(err, 400, "BadRequest",
				       "Only eq and in are supported for dict "
				       "field '%s'",
				       f->name);
		if (!(f->filter_ops & op))
			return gl_fail(err, 400, "BadRequest",
				       "Field '%s' cannot be filtered",
				       f->name);
		flt->kind = GF_DICT_KEY;
		flt->values = op == GL_OP_IN ? split_values(val, err)
					     : json_pack("[s]", val);
		if (!flt->values)
			return err->status ? -1
					   : gl_fail(err, 400, "BadRequest",
						     "Filter value of '%s' is "
						     "not valid text",
						     f->name);
		q->nfilters++;
		return 0;
	} else if (f->kind == GK_LIST) {
		flt->kind = GF_PROP;
		element = 1;
	} else {
		flt->kind = f->base ? GF_BASE : GF_PROP;
	}
	if (!(f->filter_ops & op)) {
		const char *opn = "?";
		for (int i = 0; op_names[i]; i++)
			if (op == 1u << i)
				opn = op_names[i];
		free(flt->key);
		flt->key = NULL;
		return gl_fail(err, 400, "BadRequest",
			       "Unsupported filter type '%s' for field '%s'",
			       opn, f->name);
	}
	q->nfilters++;
	return add_values(e, ctx, ts, t, f, flt, val, element, q, err);
}

static int add_sort_key(const gl_type *t, const char *spec, lq *q, int *custom,
			gl_err *err)
{
	char key[256];
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	const gl_field *f;
	int desc = 1;

	if (n == 0 || n >= sizeof key)
		return gl_fail(err, 400, "BadRequest", "Invalid sort key '%s'",
			       spec);
	memcpy(key, spec, n);
	key[n] = '\0';
	if (colon) {
		if (!strcmp(colon + 1, "asc"))
			desc = 0;
		else if (strcmp(colon + 1, "desc"))
			return gl_fail(err, 400, "BadRequest",
				       "Invalid sort direction '%s'",
				       colon + 1);
	}
	f = gl_type_field(t, key);
	if (!f || !f->sortable)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s' is not sortable", key);
	if (!f->base && !(t->is_all && !strcmp(key, "type_name"))) {
		if (++*custom > 1)
			return gl_fail(err, 400, "BadRequest",
				       "For performance sake it's not allowed "
				       "to sort by more than one custom field");
	}
	for (int i = 0; i < q->nsorts; i++)
		if (q->sorts[i].field == f)
			return gl_fail(err, 400, "BadRequest",
				       "Sort key '%s' given twice", key);
	if (q->nsorts == MAX_SORTS)
		return gl_fail(err, 400, "BadRequest", "Too many sort keys");
	q->sorts[q->nsorts].field = f;
	q->sorts[q->nsorts].desc = desc;
	q->nsorts++;
	return 0;
}

static int parse_sort(const gl_type *t, const char *s, lq *q, gl_err *err)
{
	int custom = 0;
	char *dup = strdup(s ? s : ""), *save = NULL, *tok;

	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (add_sort_key(t, tok, q, &custom, err) < 0) {
			free(dup);
			return -1;
		}
	}
	free(dup);
	/* tie-breakers: created_at desc, then id asc */
	static const char *const tb[] = { "created_at", "id" };
	for (int i = 0; i < 2; i++) {
		const gl_field *f = gl_type_field(t, tb[i]);
		int seen = 0;
		for (int j = 0; j < q->nsorts; j++)
			if (q->sorts[j].field == f)
				seen = 1;
		if (!seen && f && q->nsorts < MAX_SORTS) {
			q->sorts[q->nsorts].field = f;
			q->sorts[q->nsorts].desc = i == 0;
			q->nsorts++;
		}
	}
	return 0;
}

static char *form_encode(const char *s)
{
	/* like urlencode: space as '+', everything else outside the
	 * unreserved set percent-encoded */
	char *p = gl_pct_encode(s), *o, *r;
	if (!p)
		return NULL;
	for (r = o = p; *r; r++) {
		if (r[0] == '%' && r[1] == '2' && r[2] == '0') {
			*o++ = '+';
			r += 2;
		} else {
			*o++ = *r;
		}
	}
	*o = '\0';
	return p;
}

static json_t *link(const char *type, const gl_kv *qp, int nq,
		    const char *marker)
{
	size_t cap = 256, len;
	char *buf = malloc(cap);
	int first = 1;
	json_t *j;

	if (!buf)
		return json_null();
	len = (size_t)snprintf(buf, cap, "/artifacts/%s", type);
	for (int i = 0; i <= nq; i++) {
		const char *n, *v;
		char *en, *ev;
		if (i < nq) {
			if (!strcmp(qp[i].name, "marker"))
				continue;
			n = qp[i].name;
			v = qp[i].value;
		} else if (marker) {
			n = "marker";
			v = marker;
		} else {
			break;
		}
		en = form_encode(n);
		ev = form_encode(v);
		if (en && ev) {
			size_t need = len + strlen(en) + strlen(ev) + 3;
			if (need > cap) {
				char *nb;
				cap = need * 2;
				nb = realloc(buf, cap);
				if (!nb) {
					free(en);
					free(ev);
					break;
				}
				buf = nb;
			}
			len += (size_t)snprintf(buf + len, cap - len,
						"%c%s=%s", first ? '?' : '&',
						en, ev);
			first = 0;
		}
		free(en);
		free(ev);
	}
	j = gl_json_text(buf);
	free(buf);
	return j;
}

/* The body gl_art_list builds, in the order of its json_pack, as text. */
static int list_text(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		     const gl_type *t, const gl_kv *query, int nquery,
		     const json_t *page, int64_t total, int64_t limit,
		     gl_sb *b, gl_err *err)
{
	size_t i, n = json_array_size(page);
	json_t *a, *l;

	gl_jtext_raw(b, "{", 1);
	gl_jtext_key(b, "type_name", 9, 1);
	gl_jtext_str(b, t->name, strlen(t->name));
	gl_jtext_key(b, "artifacts", 9, 0);
	gl_jtext_raw(b, "[", 1);
	json_array_foreach(page, i, a) {
		if (i)
			gl_jtext_raw(b, ", ", 2);
		if (gl_core_output_text(e, ctx, ts, t, a, b, err) < 0)
			return -1;
	}
	gl_jtext_raw(b, "]", 1);
	gl_jtext_key(b, "first", 5, 0);
	l = link(t->name, query, nquery, NULL);
	gl_jtext_value(b, l);
	json_decref(l);
	gl_jtext_key(b, "schema", 6, 0);
	l = json_pack("s+", "/schemas/", t->name);
	gl_jtext_value(b, l);
	json_decref(l);
	gl_jtext_key(b, "total_count", 11, 0);
	gl_jtext_int(b, total);
	if (n > 0 && (int64_t)n == limit) {
		json_t *last = json_array_get(page, n - 1);
		gl_jtext_key(b, "next", 4, 0);
		l = link(t->name, query, nquery,
			 json_string_value(json_object_get(last, "id")));
		gl_jtext_value(b, l);
		json_decref(l);
	}
	gl_jtext_raw(b, "}", 1);
	return 0;
}

/* The listing as a jansson value (*out) or, text non-NULL, as the JSON
 * text of that value appended to text: rows written one after the other
 * into the one buffer (jtext.h), no tree per row. */
static int list(gl_engine *e, const gl_ctx *ctx, const char *type,
		const gl_kv *query, int nquery, json_t **out, gl_sb *text,
		gl_err *err)
{
	gl_types *ts = NULL;
	const gl_type *t;
	lq q;
	gl_list_query lqy;
	const char *sort = NULL, *marker = NULL, *limit_s = NULL;
	json_t *page = NULL, *arts, *a;
	int64_t total = 0, limit;
	int rc = -1;
	size_t i;

	memset(&q, 0, sizeof q);
	memset(&lqy, 0, sizeof lqy);
	if (gl_core_type(e, type, &ts, &t, err) < 0)
		return -1;
	if (gl_core_policy(e, ctx, "artifact:list", NULL, err) < 0)
		goto out;
	for (int k = 0; k < nquery; k++) {
		const char *n = query[k].name, *v = query[k].value;
		/* values become JSON strings and SQL text: UTF-8 only */
		if (!gl_utf8_valid(n, strlen(n), 1) ||
		    !gl_utf8_valid(v, strlen(v), 1)) {
			gl_fail(err, 400, "BadRequest",
				"Query parameter %d is not valid UTF-8",
				k + 1);
			goto out;
		}
		if (!strcmp(n, "limit"))
			limit_s = v;
		else if (!strcmp(n, "marker"))
			marker = v;
		else if (!strcmp(n, "sort"))
			sort = v;
		else if (!strcmp(n, "version") && !strcmp(v, "latest"))
			lqy.latest = 1;
		else if (add_filter(e, ctx, ts, t, n, v, &q, err) < 0)
			goto out;
	}
	limit = e->conf->default_api_limit;
	if (limit_s) {
		char *end;
		long long l = strtoll(limit_s, &end, 10);
		if (!*limit_s || *end || l < 0)
			goto badlimit;
		limit = l;
	}
	if (limit > e->conf->max_api_limit)
		limit = e->conf->max_api_limit;
	if (parse_sort(t, sort, &q, err) < 0)
		goto out;
	if (marker) {
		gl_af maf;
		if (gl_core_load(e, ctx, type, marker, 0, &maf, err) < 0)
			goto out;
		gl_af_clear(&maf);
	}

	lqy.type = t;
	lqy.type_name = t->is_all ? NULL : t->name;
	lqy.see_all = ctx->is_admin;
	if (!lqy.see_all && !ctx->anonymous) {
		json_t *tg = json_object();
		gl_creds cr;
		gl_ctx_creds(ctx, &cr);
		lqy.see_all = gl_policy_check(e->policy,
					      "artifact:list_all_artifacts",
					      &cr, tg);
		json_decref(tg);
	}
	lqy.public_only = ctx->anonymous;
	lqy.project = ctx->project_id;
	lqy.filters = q.filters;
	lqy.nfilters = q.nfilters;
	lqy.sorts = q.sorts;
	lqy.nsorts = q.nsorts;
	lqy.marker = marker;
	lqy.limit = (int)limit;
	if (gl_meta_list(e->meta, &lqy, &page, &total, err) < 0)
		goto out;

	if (text) {
		rc = list_text(e, ctx, ts, t, query, nquery, page, total,
			       limit, text, err);
		goto out;
	}
	arts = json_array();
	json_array_foreach(page, i, a) {
		json_t *o = gl_core_output(e, ctx, ts, t, a, err);
		if (!o) {
			json_decref(arts);
			goto out;
		}
		json_array_append_new(arts, o);
	}
	*out = json_pack("{s:s, s:o, s:o, s:s+, s:I}", "type_name", t->name,
			 "artifacts", arts, "first",
			 link(t->name, query, nquery, NULL), "schema",
			 "/schemas/", t->name, "total_count",
			 (json_int_t)total);
	if (!*out) {
		gl_fail(err, 500, NULL, "the listing could not be built");
		goto out;
	}
	if (json_array_size(page) > 0 &&
	    (int64_t)json_array_size(page) == limit) {
		json_t *last = json_array_get(page, json_array_size(page) - 1);
		json_object_set_new(*out, "next",
				    link(t->name, query, nquery,
					 json_string_value(
						 json_object_get(last, "id"))));
	}
	rc = 0;
	goto out;
badlimit:
	gl_fail(err, 400, "BadRequest",
		"limit must be a non-negative integer, not '%s'", limit_s);
out:
	json_decref(page);
	lq_free(&q);
	gl_types_unref(ts);
	return rc;
}

int gl_art_list(gl_engine *e, const gl_ctx *ctx, const char *type,
		const gl_kv *query, int nquery, json_t **out, gl_err *err)
{
	return list(e, ctx, type, query, nquery, out, NULL, err);
}

int gl_art_list_text(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const gl_kv *query, int nquery, gl_sb *out, gl_err *err)
{
	size_t start = out->len;
	int rc = list(e, ctx, type, query, nquery, NULL, out, err);

	if (rc < 0 && out->p) {
		out->len = start;
		out->p[start] = '\0';
	}
	return rc;
}
