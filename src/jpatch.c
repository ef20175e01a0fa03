/* jpatch.c - JSON Patch / JSON Pointer (see jpatch.h). */
#include "jpatch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_op(const char *op)
{
	static const char *const ops[] = { "add", "remove", "replace", "move",
					   "copy", "test", NULL };
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
			"Invalid JSON pointer '%s': it must start with '/'", ptr);
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
						"'%s'", ptr);
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
				"Invalid JSON pointer '%s'", ptr);
			return NULL;
		}
		free(tok);
		p = start + n;
	}
	return toks;
}

int gl_jpatch_check(const json_t *patch, gl_err *err)
{
	size_t i;
	json_t *op;

	if (!json_is_array(patch))
		return gl_fail(err, 400, "BadRequest",
			       "JSON-patch must be a list of operations");
	json_array_foreach(patch, i, op) {
		const char *name, *path;
		if (!json_is_object(op))
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu of the patch is not an "
				       "object", i);
		name = json_string_value(json_object_get(op, "op"));
		if (!name || !is_op(name))
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: unknown op '%s'", i,
				       name ? name : "(missing)");
		path = json_string_value(json_object_get(op, "path"));
		if (!path)
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: 'path' must be a string",
				       i);
		if (path[0] != '/' || path[1] == '\0' || path[1] == '/')
			return gl_fail(err, 400, "BadRequest",
				       "Operation %zu: invalid path '%s'", i,
				       path);
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
					       "'from'", i, name);
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

/* Walk to the parent of the last token. */
static json_t *parent_of(json_t *doc, json_t *toks, const char *path,
			 gl_err *err)
{
	json_t *cur = doc;
	size_t n = json_array_size(toks);

	for (size_t i = 0; i + 1 < n; i++) {
		const char *t = json_string_value(json_array_get(toks, i));
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
				"Path '%s' does not exist", path);
			return NULL;
		}
	}
	return cur;
}

static json_t *get_at(json_t *doc, const char *path, gl_err *err)
{
	json_t *toks = gl_jpointer_split(path, err), *par, *v = NULL;
	const char *last;
	size_t idx;

	if (!toks)
		return NULL;
	par = parent_of(doc, toks, path, err);
	if (par) {
		last = json_string_value(
			json_array_get(toks, json_array_size(toks) - 1));
		if (json_is_object(par))
			v = json_object_get(par, last);
		else if (json_is_array(par) &&
			 parse_index(last, json_array_size(par), 0, &idx) == 0)
			v = json_array_get(par, idx);
		if (!v)
			gl_fail(err, 400, "BadRequest",
				"Path '%s' does not exist", path);
	}
	json_decref(toks);
	return v;
}

/* mode: 'a'dd, 'r'eplace, 'd'elete (remove) */
static int op_at(json_t *doc, const char *path, char mode, json_t *value,
		 gl_err *err)
{
	json_t *toks = gl_jpointer_split(path, err), *par;
	const char *last;
	size_t idx;
	int rc = -1;

	if (!toks)
		return -1;
	par = parent_of(doc, toks, path, err);
	if (!par)
		goto out;
	last = json_string_value(json_array_get(toks, json_array_size(toks) - 1));
	if (json_is_object(par)) {
		int exists = json_object_get(par, last) != NULL;
		if (mode != 'a' && !exists) {
			gl_fail(err, 400, "BadRequest",
				"Path '%s' does not exist", path);
			goto out;
		}
		if (mode == 'd')
			json_object_del(par, last);
		else
			json_object_set_new(par, last, json_deep_copy(value));
	} else if (json_is_array(par)) {
		if (parse_index(last, json_array_size(par), mode == 'a',
				&idx) < 0) {
			gl_fail(err, 400, "BadRequest",
				"Index '%s' of '%s' is out of range", last, path);
			goto out;
		}
		if (mode == 'a')
			json_array_insert_new(par, idx, json_deep_copy(value));
		else if (mode == 'r')
			json_array_set_new(par, idx, json_deep_copy(value));
		else
			json_array_remove(par, idx);
	} else {
		gl_fail(err, 400, "BadRequest",
			"Path '%s' does not point into a list or a dict", path);
		goto out;
	}
	rc = 0;
out:
	json_decref(toks);
	return rc;
}

int gl_jpatch_apply(json_t *doc, const json_t *patch, gl_err *err)
{
	size_t i;
	json_t *op;

	if (gl_jpatch_check(patch, err) < 0)
		return -1;
	json_array_foreach(patch, i, op) {
		const char *name = json_string_value(json_object_get(op, "op"));
		const char *path = json_string_value(json_object_get(op, "path"));
		json_t *value = json_object_get(op, "value");
		const char *from = json_string_value(json_object_get(op, "from"));
		int rc = 0;

		if (!strcmp(name, "add")) {
			rc = op_at(doc, path, 'a', value, err);
		} else if (!strcmp(name, "replace")) {
			rc = op_at(doc, path, 'r', value, err);
		} else if (!strcmp(name, "remove")) {
			rc = op_at(doc, path, 'd', NULL, err);
		} else if (!strcmp(name, "test")) {
			json_t *cur = get_at(doc, path, err);
			if (!cur)
				rc = -1;
			else if (!json_equal(cur, value))
				rc = gl_fail(err, 400, "BadRequest",
					     "Test of '%s' failed", path);
		} else { /* move, copy */
			size_t fl = strlen(from);
			json_t *src = get_at(doc, from, err), *val;
			if (!src)
				return -1;
			if (!strcmp(name, "move") && !strncmp(path, from, fl) &&
			    (path[fl] == '/' || path[fl] == '\0') &&
			    strcmp(path, from) != 0)
				return gl_fail(err, 400, "BadRequest",
					       "Cannot move '%s' into itself",
					       from);
			val = json_deep_copy(src);
			if (!strcmp(name, "move"))
				rc = op_at(doc, from, 'd', NULL, err);
			if (rc == 0)
				rc = op_at(doc, path, 'a', val, err);
			json_decref(val);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}
