/* jpatch.c - JSON Patch / JSON Pointer (see jpatch.h). */
#include "jpatch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const gl_jpatch_limits gl_jpatch_defaults = {
	.max_ops = GL_JPATCH_MAX_OPS,
	.max_depth = GL_JPATCH_MAX_DEPTH,
	.max_values = GL_JPATCH_MAX_VALUES,
	.max_bytes = GL_JPATCH_MAX_BYTES,
};

static int is_op(const char *op)
{
	static const char *const ops[] = { "add",  "remove", "replace", "move",
					   "copy", "test",   NULL };
	for (int i = 0; ops[i]; i++)
		if (!strcmp(op, ops[i]))
			return 1;
	return 0;
}

json_t *gl_jpointer_split(const char *ptr, gl_err *err)
{
	json_t *toks = json_array();
	const char *p = ptr;

	if (*p != '/') {
		gl_fail(err, 400, "BadRequest",
			"Invalid JSON pointer '%.200s': it must start with "
			"'/'",
			ptr);
		json_decref(toks);
		return NULL;
	}
	while (*p == '/') {
		const char *start = ++p;
		size_t n = strcspn(start, "/");
		char *tok = malloc(n + 1), *o = tok;
		if (!tok) {
			json_decref(toks);
			gl_fail(err, 500, NULL, "out of memory");
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			if (start[i] == '~') {
				if (i + 1 < n && start[i + 1] == '0')
					*o++ = '~';
				else if (i + 1 < n && start[i + 1] == '1')
					*o++ = '/';
				else {
					free(tok);
					json_decref(toks);
					gl_fail(err, 400, "BadRequest",
						"Invalid escape in JSON pointer "
						"'%.200s'",
						ptr);
					return NULL;
				}
				i++;
			} else {
				*o++ = start[i];
			}
		}
		*o = '\0';
		/* a token that is not a JSON string would drop out of the
		 * list and the pointer would name its parent */
		if (json_array_append_new(toks, json_string(tok)) < 0) {
			free(tok);
			json_decref(toks);
			gl_fail(err, 400, "BadRequest",
				"Invalid JSON pointer '%.200s'", ptr);
			return NULL;
		}
		free(tok);
		p = start + n;
	}
	return toks;
}

int gl_jpatch_check(const json_t *patch, const gl_jpatch_limits *lim,
		    gl_err *err)
{
	size_t i;
	json_t *op;

	if (!lim)
		lim = &gl_jpatch_defaults;
	if (!json_is_array(patch))
		return gl_fail(err, 400, "BadRequest",
			       "JSON-patch must be a list of operations");
	if (json_array_size(patch) > (size_t)lim->max_ops)
		return gl_fail(err, 400, "BadRequest",
			       "The patch has %zu operations; at most %d are "
			       "allowed",
			       json_array_size(patch), lim->max_ops);
	json_array_foreach(patch, i, op) {
		const char *name, *path;
		if (!json_is_object(op))
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu of the patch is not an "
				       "object",
				       i);
		name = json_string_value(json_object_get(op, "op"));
		if (!name || !is_op(name))
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: unknown op '%.64s'", i,
				       name ? name : "(missing)");
		path = json_string_value(json_object_get(op, "path"));
		if (!path)
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: 'path' must be a string",
				       i);
		if (path[0] != '/' || path[1] == '\0' || path[1] == '/')
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: invalid path '%.200s'",
				       i, path);
		if ((!strcmp(name, "add") || !strcmp(name, "replace") ||
		     !strcmp(name, "test")) &&
		    !json_object_get(op, "value"))
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu (%s): 'value' is missing",
				       i, name);
		if (!strcmp(name, "move") || !strcmp(name, "copy")) {
			const char *from = json_string_value(
				json_object_get(op, "from"));
			if (!from || from[0] != '/' || from[1] == '\0')
				return gl_fail(err, 400, "BadRequest",
					       "Operation %zu (%s): invalid "
					       "'from'",
					       i, name);
		}
	}
	return 0;
}

/* Array index token: digits without leading zeros, or "-" (one past). */
static int parse_index(const char *tok, size_t size, int allow_end,
		       size_t *out)
{
	char *end;
	unsigned long long v;

	if (allow_end && !strcmp(tok, "-")) {
		*out = size;
		return 0;
	}
	if (!isdigit((unsigned char)tok[0]) || (tok[0] == '0' && tok[1]))
		return -1;
	v = strtoull(tok, &end, 10);
	if (*end || v > size || (!allow_end && v == size))
		return -1;
	*out = (size_t)v;
	return 0;
}

static const char *tok_at(const json_t *toks, size_t i)
{
	return json_string_value(json_array_get(toks, i));
}

static const char *last_tok(const json_t *toks)
{
	return tok_at(toks, json_array_size(toks) - 1);
}

/* Walk to the parent of the last token. */
static json_t *parent_of(json_t *doc, const json_t *toks, const char *path,
			 gl_err *err)
{
	json_t *cur = doc;
	size_t n = json_array_size(toks);

	for (size_t i = 0; i + 1 < n; i++) {
		const char *t = tok_at(toks, i);
		size_t idx;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, t);
		} else if (json_is_array(cur)) {
			if (parse_index(t, json_array_size(cur), 0, &idx) < 0)
				cur = NULL;
			else
				cur = json_array_get(cur, idx);
		} else {
			cur = NULL;
		}
		if (!cur) {
			gl_fail(err, 400, "BadRequest",
				"Path '%.200s' does not exist", path);
			return NULL;
		}
	}
	return cur;
}

/* The value at path (borrowed), or NULL + err. */
static json_t *get_at(json_t *doc, const json_t *toks, const char *path,
		      gl_err *err)
{
	json_t *par = parent_of(doc, toks, path, err), *v = NULL;
	size_t idx;

	if (!par)
		return NULL;
	if (json_is_object(par))
		v = json_object_get(par, last_tok(toks));
	else if (json_is_array(par) &&
		 parse_index(last_tok(toks), json_array_size(par), 0, &idx) ==
			 0)
		v = json_array_get(par, idx);
	if (!v)
		gl_fail(err, 400, "BadRequest", "Path '%.200s' does not exist",
			path);
	return v;
}

/* mode: 'a'dd, 'r'eplace, 'd'elete (remove). value is taken (add,
 * replace); *removed receives what remove took out (new reference) when
 * removed is not NULL. */
static int op_at(json_t *doc, const json_t *toks, const char *path, char mode,
		 json_t *value, json_t **removed, gl_err *err)
{
	json_t *par = parent_of(doc, toks, path, err);
	const char *last = last_tok(toks);
	size_t idx;

	if (!par)
		goto fail;
	if (json_is_object(par)) {
		json_t *old = json_object_get(par, last);
		if (mode != 'a' && !old) {
			gl_fail(err, 400, "BadRequest",
				"Path '%.200s' does not exist", path);
			goto fail;
		}
		if (mode == 'd') {
			if (removed)
				*removed = json_incref(old);
			json_object_del(par, last);
		} else if (json_object_set_new(par, last, value) < 0) {
			value = NULL;
			gl_fail(err, 500, NULL, "out of memory");
			goto fail;
		}
	} else if (json_is_array(par)) {
		if (parse_index(last, json_array_size(par), mode == 'a',
				&idx) < 0) {
			gl_fail(err, 400, "BadRequest",
				"Index '%.64s' of '%.200s' is out of range",
				last, path);
			goto fail;
		}
		if (mode == 'd') {
			if (removed)
				*removed = json_incref(
					json_array_get(par, idx));
			json_array_remove(par, idx);
		} else if ((mode == 'a'
				    ? json_array_insert_new(par, idx, value)
				    : json_array_set_new(par, idx, value)) <
			   0) {
			value = NULL;
			gl_fail(err, 500, NULL, "out of memory");
			goto fail;
		}
	} else {
		gl_fail(err, 400, "BadRequest",
			"Path '%.200s' does not point into a list or a dict",
			path);
		goto fail;
	}
	return 0;
fail:
	json_decref(value);
	return -1;
}

/* What the operations of a patch created so far. */
typedef struct budget {
	const gl_jpatch_limits *lim;
	int64_t values, bytes;
} budget;

enum { OVER_VALUES = -1, OVER_BYTES = -2, OVER_DEPTH = -3 };

/* Count v into b: v sits inside `depth` lists and dicts. Stops at the
 * first limit passed, so the cost is bounded by the budget, not by v. */
static int measure(const json_t *v, int depth, budget *b)
{
	const char *k;
	json_t *x;
	void *it;
	size_t i;
	int rc;

	if (++b->values > b->lim->max_values)
		return OVER_VALUES;
	switch (json_typeof(v)) {
	case JSON_STRING:
		b->bytes += (int64_t)json_string_length(v);
		return b->bytes > b->lim->max_bytes ? OVER_BYTES : 0;
	case JSON_ARRAY:
		if (depth + 1 > b->lim->max_depth)
			return OVER_DEPTH;
		json_array_foreach(v, i, x)
			if ((rc = measure(x, depth + 1, b)) < 0)
				return rc;
		return 0;
	case JSON_OBJECT:
		if (depth + 1 > b->lim->max_depth)
			return OVER_DEPTH;
		for (it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			k = json_object_iter_key(it);
			b->bytes += (int64_t)strlen(k);
			if (b->bytes > b->lim->max_bytes)
				return OVER_BYTES;
			if ((rc = measure(json_object_iter_value(it),
					  depth + 1, b)) < 0)
				return rc;
		}
		return 0;
	default:
		return 0;
	}
}

/* Charge the value an operation puts at a path of ntoks tokens. */
static int charge(const json_t *v, size_t ntoks, budget *b, size_t op,
		  gl_err *err)
{
	switch (measure(v, (int)ntoks, b)) {
	case OVER_VALUES:
		return gl_fail(err, 400, "BadRequest",
			       "Operation %zu: the patch would create more "
			       "than %lld values",
			       op, (long long)b->lim->max_values);
	case OVER_BYTES:
		return gl_fail(err, 400, "BadRequest",
			       "Operation %zu: the patch would create more "
			       "than %lld bytes of text",
			       op, (long long)b->lim->max_bytes);
	case OVER_DEPTH:
		return gl_fail(err, 400, "BadRequest",
			       "Operation %zu: the document would be nested "
			       "deeper than %d levels",
			       op, b->lim->max_depth);
	}
	return 0;
}

static int apply_op(json_t *doc, const json_t *op, size_t i, budget *b,
		    gl_err *err)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	const char *from = json_string_value(json_object_get(op, "from"));
	json_t *value = json_object_get(op, "value");
	json_t *toks = gl_jpointer_split(path, err), *ftoks = NULL, *v = NULL;
	int rc = -1;

	if (!toks)
		return -1;
	if (!strcmp(name, "test")) {
		json_t *cur = get_at(doc, toks, path, err);
		if (cur && !json_equal(cur, value))
			gl_fail(err, 400, "BadRequest",
				"Test of '%.200s' failed", path);
		else if (cur)
			rc = 0;
		goto out;
	}
	if (!strcmp(name, "remove")) {
		rc = op_at(doc, toks, path, 'd', NULL, NULL, err);
		goto out;
	}
	if (!strcmp(name, "add") || !strcmp(name, "replace")) {
		if (charge(value, json_array_size(toks), b, i, err) < 0)
			goto out;
		if (!(v = json_deep_copy(value))) {
			gl_fail(err, 500, NULL, "out of memory");
			goto out;
		}
		rc = op_at(doc, toks, path, name[0], v, NULL, err);
		goto out;
	}
	/* move, copy */
	if (!(ftoks = gl_jpointer_split(from, err)))
		goto out;
	if (!(v = get_at(doc, ftoks, from, err)))
		goto out;
	if (!strcmp(name, "move")) {
		size_t fl = strlen(from);
		if (!strncmp(path, from, fl) && path[fl] == '/') {
			gl_fail(err, 400, "BadRequest",
				"Cannot move '%.200s' into itself", from);
			goto out;
		}
		/* the value changes place without a copy; it is charged as
		 * one all the same, which bounds the cost of checking the
		 * depth at its new place */
		if (charge(v, json_array_size(toks), b, i, err) < 0)
			goto out;
		v = NULL;
		if (op_at(doc, ftoks, from, 'd', NULL, &v, err) < 0)
			goto out;
		rc = op_at(doc, toks, path, 'a', v, NULL, err);
		goto out;
	}
	if (charge(v, json_array_size(toks), b, i, err) < 0)
		goto out;
	if (!(v = json_deep_copy(v))) {
		gl_fail(err, 500, NULL, "out of memory");
		goto out;
	}
	rc = op_at(doc, toks, path, 'a', v, NULL, err);
out:
	if (rc == 0 && strcmp(name, "test") != 0 && b->lim->check &&
	    b->lim->check(b->lim->ctx, doc, tok_at(toks, 0), err) < 0)
		rc = -1;
	json_decref(toks);
	json_decref(ftoks);
	return rc;
}

int gl_jpatch_apply(json_t *doc, const json_t *patch,
		    const gl_jpatch_limits *lim, gl_err *err)
{
	budget b = { .lim = lim ? lim : &gl_jpatch_defaults };
	size_t i;
	json_t *op;

	if (gl_jpatch_check(patch, b.lim, err) < 0)
		return -1;
	json_array_foreach(patch, i, op)
		if (apply_op(doc, op, i, &b, err) < 0)
			return -1;
	return 0;
}
