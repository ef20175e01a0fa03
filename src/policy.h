/* policy.h - access-control rules in the oslo.policy language.
 *
 * Holds Glare's default rule set (docs/glare-contract.md "Policy rules")
 * and lets a policy file (JSON or
 * the YAML subset oslo.policy files use) override single rules. Rules are
 * parsed once into small expression trees; a check walks the tree against
 * the caller's credentials and the target artifact's attributes.
 *
 * Used by the API layer (api.c) and the engine (engine.c). Uses jansson.
 */
#ifndef GL_POLICY_H
#define GL_POLICY_H

#include <stddef.h>
#include <jansson.h>

#include "err.h"

/* The caller's credentials, as built by the auth layer. Borrowed pointers. */
typedef struct gl_creds {
	const char *user_id;    /* may be NULL (anonymous) */
	const char *project_id; /* may be NULL (anonymous) */
	const char *const *roles;
	size_t nroles;
	int is_admin; /* result of the "context_is_admin" rule */
	/* Keystone's domains of the user and of the project; may be NULL */
	const char *user_domain_id;
	const char *project_domain_id;
} gl_creds;

typedef struct gl_policy gl_policy;

/* A policy holding the default rules. Never NULL (aborts on OOM). */
gl_policy *gl_policy_new(void);
void gl_policy_free(gl_policy *p);

/* Override rules from a file (JSON object, or YAML "name: rule" lines).
 * Returns 0, or -1 with err filled and the policy unchanged: a file
 * either applies whole or not at all. */
int gl_policy_load_file(gl_policy *p, const char *path, gl_err *err);

/* Parse and set one rule (used by tests and the console). 0 or -1 + err
 * (err may be NULL). */
int gl_policy_set_rule(gl_policy *p, const char *name, const char *rule,
		       gl_err *err);

/* Evaluate rule `name` for creds against target (a JSON object whose string
 * members are the %(key)s substitutions; may be NULL). A rule that does not
 * exist denies. Returns 1 allow, 0 deny. */
int gl_policy_check(const gl_policy *p, const char *name, const gl_creds *c,
		    const json_t *target);

/* creds->is_admin is ignored here: evaluates "context_is_admin". */
int gl_policy_is_admin(const gl_policy *p, const gl_creds *c);

#endif
