/* test_policy.c - unit tests for policy.c: the default Glare rules, the
 * oslo.policy rule language, and JSON/YAML policy files.
 */
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

#include "policy.h"

/* ---- callers ------------------------------------------------------------ */

static const char *const admin_roles[] = { "admin", "member" };
static const char *const member_roles[] = { "member" };

/* is_admin as the API layer would set it from gl_policy_is_admin */
static const gl_creds admin = {
	"u-adm", "p-adm", admin_roles, 2, 1, NULL, NULL
};
static const gl_creds owner = { "u-own", "p-own", member_roles, 1,
				0,       NULL,    NULL };
static const gl_creds other = { "u-oth", "p-oth", member_roles, 1,
				0,       NULL,    NULL };
static const gl_creds anon = { NULL, NULL, NULL, 0, 0, NULL, NULL };

/* An artifact of project p-own. */
static json_t *art(const char *visibility, const char *status)
{
	return json_pack("{s:s, s:s, s:s}", "owner", "p-own", "visibility",
			 visibility, "status", status);
}

static int chk(const gl_policy *p, const char *rule, const gl_creds *c,
	       const json_t *t)
{
	return gl_policy_check(p, rule, c, t);
}

/* Sets rule "t" and checks it for c against target t (may be NULL). */
static int eval_rule(const char *rule, const gl_creds *c, const json_t *t)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	int v;

	if (gl_policy_set_rule(p, "t", rule, &err) != 0) {
		fprintf(stderr, "unexpected parse error: %s\n", err.msg);
		gl_policy_free(p);
		return -1;
	}
	v = gl_policy_check(p, "t", c, t);
	gl_policy_free(p);
	return v;
}

/* Creds holding just the given roles. */
static gl_creds with_roles(const char *const *roles, size_t n)
{
	gl_creds c = { "u", "p", roles, n, 0, NULL, NULL };
	return c;
}

/* Returns the error message of setting rule text (malloc'ed), or NULL if it
 * parsed. */
static char *parse_err(const char *rule)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };

	if (gl_policy_set_rule(p, "artifact:create", rule, &err) == 0) {
		gl_policy_free(p);
		return NULL;
	}
	gl_policy_free(p);
	return strdup(err.msg[0] ? err.msg : "(no message)");
}

static int err_is(const char *rule, const char *want)
{
	char *e = parse_err(rule);
	int ok = e && strcmp(e, want) == 0;

	if (!ok)
		fprintf(stderr, "rule %s: got \"%s\", want \"%s\"\n", rule,
			e ? e : "(parsed)", want);
	free(e);
	return ok;
}

/* Writes text to a fresh temp file; returns its malloc'ed path. */
static char *tmpfile_with(const char *text)
{
	char *path = strdup("/tmp/test_policy_XXXXXX");
	int fd = mkstemp(path);
	size_t n = strlen(text);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/* Loads text as a policy file into p; returns the result, *err as set. */
static int load_text(gl_policy *p, const char *text, gl_err *err)
{
	char *path = tmpfile_with(text);
	int rc;

	if (!path)
		return -2;
	rc = gl_policy_load_file(p, path, err);
	unlink(path);
	free(path);
	return rc;
}

/* ---- default rules --------------------------------------------------- */

UNIT_TEST(defaults_open_rules)
{
	static const char *const open[] = { "artifact:type_list",
					    "artifact:create", "artifact:get",
					    "artifact:list" };
	gl_policy *p = gl_policy_new();
	json_t *t = art("private", "active");
	int ok = 1;

	for (size_t i = 0; i < 4; i++) {
		ok &= chk(p, open[i], &admin, t) == 1;
		ok &= chk(p, open[i], &owner, t) == 1;
		ok &= chk(p, open[i], &other, t) == 1;
		ok &= chk(p, open[i], &anon, NULL) == 1;
	}
	json_decref(t);
	gl_policy_free(p);
	CHECK(ok);
}

UNIT_TEST(defaults_admin_only_rules)
{
	/* clang-format off */
	static const char *const adm[] = {
		"artifact:reactivate", "artifact:deactivate",
		"artifact:publish", "artifact:get_any_artifact",
		"artifact:list_all_artifacts",
		"artifact:set_internal_location",
		"artifact:download_from_any_artifact", "artifact:set_quotas",
		"artifact:list_all_quotas", "context_is_admin",
	};
	/* clang-format on */
	gl_policy *p = gl_policy_new();
	json_t *t = art("private", "active");
	size_t bad = 0;

	for (size_t i = 0; i < sizeof adm / sizeof adm[0]; i++) {
		if (chk(p, adm[i], &admin, t) != 1 ||
		    chk(p, adm[i], &owner, t) != 0 ||
		    chk(p, adm[i], &other, t) != 0 ||
		    chk(p, adm[i], &anon, t) != 0) {
			fprintf(stderr, "admin-only rule %s wrong\n", adm[i]);
			bad++;
		}
	}
	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(bad, 0);
}

UNIT_TEST(defaults_admin_or_owner_rules)
{
	static const char *const ao[] = {
		"admin_or_owner", "artifact:activate", "artifact:set_location",
		"artifact:upload", "artifact:delete_blob"
	};
	gl_policy *p = gl_policy_new();
	json_t *t = art("private", "drafted");
	size_t bad = 0;

	for (size_t i = 0; i < sizeof ao / sizeof ao[0]; i++) {
		if (chk(p, ao[i], &admin, t) != 1 ||
		    chk(p, ao[i], &owner, t) != 1 ||
		    chk(p, ao[i], &other, t) != 0 ||
		    chk(p, ao[i], &anon, t) != 0) {
			fprintf(stderr, "owner rule %s wrong\n", ao[i]);
			bad++;
		}
	}
	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(bad, 0);
}

/* Glared's difference from Glare: blob content of a public artifact is
 * changed only by an admin, like its fields (artifact:update). */
static const char *const blob_rules[] = { "artifact:upload",
					  "artifact:set_location",
					  "artifact:delete_blob" };

UNIT_TEST(defaults_blob_rules_public_need_admin)
{
	gl_policy *p = gl_policy_new();
	json_t *pub = art("public", "active");
	size_t bad = 0;

	for (size_t i = 0; i < 3; i++) {
		if (chk(p, blob_rules[i], &admin, pub) != 1 ||
		    chk(p, blob_rules[i], &owner, pub) != 0 ||
		    chk(p, blob_rules[i], &other, pub) != 0 ||
		    chk(p, blob_rules[i], &anon, pub) != 0) {
			fprintf(stderr, "public blob rule %s wrong\n",
				blob_rules[i]);
			bad++;
		}
	}
	json_decref(pub);
	gl_policy_free(p);
	CHECK_INT(bad, 0);
}

UNIT_TEST(policy_file_restores_glare_blob_rules)
{
	gl_policy *p = gl_policy_new();
	json_t *pub = art("public", "active");
	gl_err err = { 0 };
	size_t bad = 0;
	int rc = load_text(p,
			   "artifact:upload: rule:admin_or_owner\n"
			   "artifact:set_location: rule:admin_or_owner\n"
			   "artifact:delete_blob: rule:admin_or_owner\n",
			   &err);

	for (size_t i = 0; rc == 0 && i < 3; i++) {
		if (chk(p, blob_rules[i], &owner, pub) != 1 ||
		    chk(p, blob_rules[i], &other, pub) != 0) {
			fprintf(stderr, "restored rule %s wrong\n",
				blob_rules[i]);
			bad++;
		}
	}
	json_decref(pub);
	gl_policy_free(p);
	CHECK_INT(rc, 0);
	CHECK_INT(bad, 0);
}

UNIT_TEST(defaults_update_private)
{
	gl_policy *p = gl_policy_new();
	json_t *t = art("private", "active");
	int a = chk(p, "artifact:update", &admin, t);
	int o = chk(p, "artifact:update", &owner, t);
	int x = chk(p, "artifact:update", &other, t);
	int n = chk(p, "artifact:update", &anon, t);

	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(a, 1);
	CHECK_INT(o, 1);
	CHECK_INT(x, 0);
	CHECK_INT(n, 0);
}

UNIT_TEST(defaults_update_public_needs_admin)
{
	gl_policy *p = gl_policy_new();
	json_t *t = art("public", "active");
	int a = chk(p, "artifact:update", &admin, t);
	int o = chk(p, "artifact:update", &owner, t);
	int x = chk(p, "artifact:update", &other, t);
	int helper_owner = chk(p, "artifact:update_public", &owner, t);

	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(a, 1);
	CHECK_INT(o, 0); /* owner cannot change own public artifact */
	CHECK_INT(x, 0);
	CHECK_INT(helper_owner, 0);
}

UNIT_TEST(defaults_delete)
{
	gl_policy *p = gl_policy_new();
	json_t *priv = art("private", "drafted");
	json_t *pub = art("public", "active");
	json_t *deact = art("private", "deactivated");
	int r[7];

	r[0] = chk(p, "artifact:delete", &owner, priv);
	r[1] = chk(p, "artifact:delete", &other, priv);
	r[2] = chk(p, "artifact:delete", &owner, pub);
	r[3] = chk(p, "artifact:delete", &admin, pub);
	r[4] = chk(p, "artifact:delete", &owner, deact);
	r[5] = chk(p, "artifact:delete", &admin, deact);
	r[6] = chk(p, "artifact:delete", &anon, priv);
	json_decref(priv);
	json_decref(pub);
	json_decref(deact);
	gl_policy_free(p);
	CHECK_INT(r[0], 1);
	CHECK_INT(r[1], 0);
	CHECK_INT(r[2], 0);
	CHECK_INT(r[3], 1);
	CHECK_INT(r[4], 0);
	CHECK_INT(r[5], 1);
	CHECK_INT(r[6], 0);
}

UNIT_TEST(defaults_download)
{
	gl_policy *p = gl_policy_new();
	json_t *act = art("private", "active");
	json_t *pub = art("public", "active");
	json_t *deact = art("public", "deactivated");
	int r[6];

	r[0] = chk(p, "artifact:download", &owner, act);
	r[1] = chk(p, "artifact:download", &owner, deact);
	r[2] = chk(p, "artifact:download", &admin, deact);
	/* other projects cannot download even public blobs
	 * (docs/glare-contract.md "Policy rules") */
	r[3] = chk(p, "artifact:download", &other, pub);
	r[4] = chk(p, "artifact:download_deactivated", &owner, act);
	r[5] = chk(p, "artifact:download", &anon, pub);
	json_decref(act);
	json_decref(pub);
	json_decref(deact);
	gl_policy_free(p);
	CHECK_INT(r[0], 1);
	CHECK_INT(r[1], 0);
	CHECK_INT(r[2], 1);
	CHECK_INT(r[3], 0);
	CHECK_INT(r[4], 1);
	CHECK_INT(r[5], 0);
}

UNIT_TEST(defaults_list_project_quotas)
{
	gl_policy *p = gl_policy_new();
	json_t *mine = json_pack("{s:s}", "project_id", "p-own");
	json_t *empty = json_object();
	int r[5];

	r[0] = chk(p, "artifact:list_project_quotas", &owner, mine);
	r[1] = chk(p, "artifact:list_project_quotas", &other, mine);
	r[2] = chk(p, "artifact:list_project_quotas", &admin, mine);
	r[3] = chk(p, "artifact:list_project_quotas", &anon, mine);
	r[4] = chk(p, "artifact:list_project_quotas", &owner, empty);
	json_decref(mine);
	json_decref(empty);
	gl_policy_free(p);
	CHECK_INT(r[0], 1);
	CHECK_INT(r[1], 0);
	CHECK_INT(r[2], 1);
	CHECK_INT(r[3], 0);
	CHECK_INT(r[4], 0);
}

UNIT_TEST(is_admin_from_roles)
{
	static const char *const up[] = { "ADMIN" };
	static const char *const cap[] = { "Admin" };
	static const char *const near[] = { "admins", "dmin" };
	gl_policy *p = gl_policy_new();
	gl_creds fake = owner;
	gl_creds c1 = with_roles(up, 1), c2 = with_roles(cap, 1),
		 c3 = with_roles(near, 2);
	int r[7];

	fake.is_admin = 1; /* must be ignored: only roles count */
	r[0] = gl_policy_is_admin(p, &admin);
	r[1] = gl_policy_is_admin(p, &c1);
	r[2] = gl_policy_is_admin(p, &c2);
	r[3] = gl_policy_is_admin(p, &owner);
	r[4] = gl_policy_is_admin(p, &anon);
	r[5] = gl_policy_is_admin(p, &fake);
	r[6] = gl_policy_is_admin(p, &c3);
	/* even when context_is_admin itself reads the flag */
	gl_policy_set_rule(p, "context_is_admin",
			   "role:admin or is_admin:True", NULL);
	r[3] |= gl_policy_is_admin(p, &fake);
	gl_policy_free(p);
	CHECK_INT(r[0], 1);
	CHECK_INT(r[1], 1);
	CHECK_INT(r[2], 1);
	CHECK_INT(r[3], 0);
	CHECK_INT(r[4], 0);
	CHECK_INT(r[5], 0);
	CHECK_INT(r[6], 0);
}

UNIT_TEST(check_uses_creds_is_admin_flag)
{
	gl_policy *p = gl_policy_new();
	json_t *t = art("private", "active");
	gl_creds flagged = other;
	int r[3];

	flagged.is_admin = 1;
	/* is_admin:True reads the flag ... */
	r[0] = chk(p, "admin_or_owner", &flagged, t);
	r[1] = chk(p, "artifact:upload", &flagged, t);
	/* ... while role:admin still looks at the roles */
	r[2] = chk(p, "artifact:publish", &flagged, t);
	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(r[0], 1);
	CHECK_INT(r[1], 1);
	CHECK_INT(r[2], 0);
}

UNIT_TEST(unknown_rule_denies)
{
	gl_policy *p = gl_policy_new();
	int r0 = chk(p, "artifact:no_such_rule", &admin, NULL);
	int r1 = chk(p, "", &admin, NULL);
	int r2, r3;
	gl_err err = { 0 };

	gl_policy_set_rule(p, "t", "rule:missing or role:member", &err);
	r2 = chk(p, "t", &admin, NULL);
	r3 = chk(p, "t", &anon, NULL);
	gl_policy_free(p);
	CHECK(!err.msg[0]);
	CHECK_INT(r0, 0);
	CHECK_INT(r1, 0);
	CHECK_INT(r2, 1); /* the unknown reference alone is false */
	CHECK_INT(r3, 0);
}

UNIT_TEST(null_creds_are_anonymous)
{
	gl_policy *p = gl_policy_new();
	int r0 = chk(p, "artifact:get", NULL, NULL);
	int r1 = chk(p, "artifact:publish", NULL, NULL);
	int r2 = gl_policy_is_admin(p, NULL);

	gl_policy_free(p);
	CHECK_INT(r0, 1);
	CHECK_INT(r1, 0);
	CHECK_INT(r2, 0);
}

/* ---- the rule language --------------------------------------------------- */

UNIT_TEST(always_allow_and_deny)
{
	CHECK_INT(eval_rule("", &anon, NULL), 1);
	CHECK_INT(eval_rule("   \t ", &anon, NULL), 1);
	CHECK_INT(eval_rule("@", &anon, NULL), 1);
	CHECK_INT(eval_rule("\"\"", &anon, NULL), 1);
	CHECK_INT(eval_rule("''", &anon, NULL), 1);
	CHECK_INT(eval_rule(NULL, &anon, NULL), 1);
	CHECK_INT(eval_rule("!", &admin, NULL), 0);
	CHECK_INT(eval_rule("not !", &anon, NULL), 1);
	CHECK_INT(eval_rule("not @", &admin, NULL), 0);
}

UNIT_TEST(role_case_insensitive)
{
	static const char *const r[] = { "Su_Role" };
	gl_creds c = with_roles(r, 1);

	CHECK_INT(eval_rule("role:su_role", &c, NULL), 1);
	CHECK_INT(eval_rule("role:SU_ROLE", &c, NULL), 1);
	CHECK_INT(eval_rule("role:Admin", &admin, NULL), 1);
	CHECK_INT(eval_rule("role:su", &c, NULL), 0);
	CHECK_INT(eval_rule("role:su_role", &anon, NULL), 0);
}

UNIT_TEST(precedence_not_and_or)
{
	static const char *const a[] = { "a" }, *const b[] = { "b" },
				 *const ab[] = { "a", "b" },
				 *const bc[] = { "b", "c" };
	gl_creds ca = with_roles(a, 1), cb = with_roles(b, 1),
		 cab = with_roles(ab, 2), cbc = with_roles(bc, 2);

	/* a or (b and c) */
	CHECK_INT(eval_rule("role:a or role:b and role:c", &ca, NULL), 1);
	CHECK_INT(eval_rule("role:a or role:b and role:c", &cb, NULL), 0);
	CHECK_INT(eval_rule("role:a or role:b and role:c", &cbc, NULL), 1);
	/* (b and c) or a: the same, written the other way round */
	CHECK_INT(eval_rule("role:b and role:c or role:a", &ca, NULL), 1);
	/* (not a) and b */
	CHECK_INT(eval_rule("not role:a and role:b", &cb, NULL), 1);
	CHECK_INT(eval_rule("not role:a and role:b", &cab, NULL), 0);
	CHECK_INT(eval_rule("not role:b and role:c", &ca, NULL), 0);
	/* (not a) or b */
	CHECK_INT(eval_rule("not role:a or role:b", &cab, NULL), 1);
	CHECK_INT(eval_rule("not role:a or role:c", &cab, NULL), 0);
	CHECK_INT(eval_rule("not not role:a", &ca, NULL), 1);
}

UNIT_TEST(parentheses_and_nesting)
{
	static const char *const a[] = { "a" }, *const ac[] = { "a", "c" };
	gl_creds ca = with_roles(a, 1), cac = with_roles(ac, 2);

	CHECK_INT(eval_rule("(role:a or role:b) and role:c", &ca, NULL), 0);
	CHECK_INT(eval_rule("(role:a or role:b) and role:c", &cac, NULL), 1);
	CHECK_INT(eval_rule("not (role:a and role:c)", &cac, NULL), 0);
	CHECK_INT(eval_rule("not (role:a and role:c)", &ca, NULL), 1);
	CHECK_INT(eval_rule("((((role:a))))", &ca, NULL), 1);
	CHECK_INT(eval_rule("(role:x or (role:y or (role:a and (@))))", &ca,
			    NULL),
		  1);
	/* no blanks needed around parentheses */
	CHECK_INT(eval_rule("(role:a)and(role:c)", &cac, NULL), 1);
	CHECK_INT(eval_rule("not(role:a)", &ca, NULL), 0);
}

UNIT_TEST(whitespace_insensitive)
{
	static const char *const ab[] = { "a", "b" };
	gl_creds c = with_roles(ab, 2);

	CHECK_INT(eval_rule("  role:a\tand\n role:b  ", &c, NULL), 1);
	CHECK_INT(eval_rule("( role:a )  or\r\n( role:z )", &c, NULL), 1);
}

UNIT_TEST(quoted_literals)
{
	json_t *t = json_pack("{s:s, s:s}", "visibility", "public", "name",
			      "a b");

	CHECK_INT(eval_rule("'public':%(visibility)s", &anon, t), 1);
	CHECK_INT(eval_rule("\"public\":%(visibility)s", &anon, t), 1);
	CHECK_INT(eval_rule("'private':%(visibility)s", &anon, t), 0);
	CHECK_INT(eval_rule("not 'private':%(visibility)s", &anon, t), 1);
	/* a quoted literal may hold blanks and ':' */
	CHECK_INT(eval_rule("'a b':%(name)s", &anon, t), 1);
	CHECK_INT(eval_rule("'x:y':'x:y'", &anon, t), 1);
	/* quoted right side */
	CHECK_INT(eval_rule("user_id:'u-own'", &owner, NULL), 1);
	CHECK_INT(eval_rule("role:\"member\"", &owner, NULL), 1);
	/* bare Python literals on the left compare as text */
	CHECK_INT(eval_rule("True:True", &anon, NULL), 1);
	CHECK_INT(eval_rule("42:%(n)s", &anon, NULL), 0);
	json_decref(t);
}

UNIT_TEST(substitution_values)
{
	json_t *t = json_pack("{s:s, s:b, s:b, s:I, s:n, s:f, s:s}", "owner",
			      "p-own", "flag", 1, "off", 0, "n",
			      (json_int_t)42, "z", "r", 1.5, "role", "MEMBER");

	CHECK_INT(eval_rule("project_id:%(owner)s", &owner, t), 1);
	CHECK_INT(eval_rule("project_id:%(owner)s", &other, t), 0);
	CHECK_INT(eval_rule("project_id:%(owner)s", &anon, t), 0);
	CHECK_INT(eval_rule("'True':%(flag)s", &anon, t), 1);
	CHECK_INT(eval_rule("'False':%(off)s", &anon, t), 1);
	CHECK_INT(eval_rule("'42':%(n)s", &anon, t), 1);
	CHECK_INT(eval_rule("42:%(n)s", &anon, t), 1);
	CHECK_INT(eval_rule("'None':%(z)s", &anon, t), 1);
	/* a real has no agreed text form: false */
	CHECK_INT(eval_rule("'1.5':%(r)s", &anon, t), 0);
	/* substitution inside a longer match, and %% */
	CHECK_INT(eval_rule("project_id:p-%(n)s", &anon, t), 0);
	CHECK_INT(eval_rule("'p-42':p-%(n)s", &anon, t), 1);
	CHECK_INT(eval_rule("'5%':5%%", &anon, t), 1);
	/* role: substitutes too, still case-insensitively */
	CHECK_INT(eval_rule("role:%(role)s", &owner, t), 1);
	json_decref(t);
}

UNIT_TEST(substitution_missing_key_is_false)
{
	json_t *t = json_pack("{s:s}", "owner", "p-own");
	json_t *arr = json_array();

	CHECK_INT(eval_rule("project_id:%(missing)s", &owner, t), 0);
	CHECK_INT(eval_rule("project_id:%(owner)s", &owner, NULL), 0);
	CHECK_INT(eval_rule("project_id:%(owner)s", &owner, arr), 0);
	CHECK_INT(eval_rule("role:%(missing)s", &admin, t), 0);
	/* a false check negated is true, as in oslo */
	CHECK_INT(eval_rule("not project_id:%(missing)s", &owner, t), 1);
	json_decref(t);
	json_decref(arr);
}

UNIT_TEST(missing_visibility_follows_oslo)
{
	/* 'public':%(visibility)s is false without the key, so the "not"
	 * branch lets a non-admin owner through */
	gl_policy *p = gl_policy_new();
	json_t *t = json_pack("{s:s}", "owner", "p-own");
	int r0 = chk(p, "artifact:update", &owner, t);
	int r1 = chk(p, "artifact:update", &other, t);

	json_decref(t);
	gl_policy_free(p);
	CHECK_INT(r0, 1);
	CHECK_INT(r1, 0);
}

UNIT_TEST(generic_credential_checks)
{
	static const char *const r[] = { "reader", "Writer" };
	gl_creds c = { "u1", "p1", r, 2, 0, NULL, NULL };
	gl_creds a = c;

	a.is_admin = 1;
	CHECK_INT(eval_rule("user_id:u1", &c, NULL), 1);
	CHECK_INT(eval_rule("user_id:u2", &c, NULL), 0);
	CHECK_INT(eval_rule("project_id:p1", &c, NULL), 1);
	CHECK_INT(eval_rule("roles:reader", &c, NULL), 1);
	CHECK_INT(eval_rule("roles:Writer", &c, NULL), 1);
	/* only role: folds case; a generic check compares exactly */
	CHECK_INT(eval_rule("roles:writer", &c, NULL), 0);
	CHECK_INT(eval_rule("is_admin:True", &c, NULL), 0);
	CHECK_INT(eval_rule("is_admin:False", &c, NULL), 1);
	CHECK_INT(eval_rule("is_admin:True", &a, NULL), 1);
	/* a credential we do not carry never matches */
	CHECK_INT(eval_rule("domain_id:u1", &c, NULL), 0);
	CHECK_INT(eval_rule("user_id:u1", &anon, NULL), 0);
}

/* Keystone's domains (flavor = keystone) are credentials rules can name */
UNIT_TEST(domain_credential_checks)
{
	static const char *const r[] = { "member" };
	gl_creds c = { "u1", "p1", r, 1, 0, "dom-u", "dom-p" };
	gl_creds none = { "u1", "p1", r, 1, 0, NULL, NULL };

	CHECK_INT(eval_rule("user_domain_id:dom-u", &c, NULL), 1);
	CHECK_INT(eval_rule("user_domain_id:dom-p", &c, NULL), 0);
	CHECK_INT(eval_rule("project_domain_id:dom-p", &c, NULL), 1);
	CHECK_INT(eval_rule("project_domain_id:dom-u", &c, NULL), 0);
	/* the trusted flavors carry no domains: never a match */
	CHECK_INT(eval_rule("project_domain_id:dom-p", &none, NULL), 0);
}

UNIT_TEST(rule_references)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	int rc = gl_policy_set_rule(p, "my:rule",
				    "rule:context_is_admin or rule:other",
				    &err);
	int rc2 = gl_policy_set_rule(p, "other", "user_id:u-own", &err);
	int r0 = chk(p, "my:rule", &admin, NULL);
	int r1 = chk(p, "my:rule", &owner, NULL);
	int r2 = chk(p, "my:rule", &other, NULL);
	/* changing a referenced rule changes every rule using it */
	int rc3 = gl_policy_set_rule(p, "context_is_admin", "role:boss", &err);
	int r3 = chk(p, "artifact:publish", &admin, NULL);
	int r4 = gl_policy_is_admin(p, &admin);

	gl_policy_free(p);
	CHECK_INT(rc, 0);
	CHECK_INT(rc2, 0);
	CHECK_INT(rc3, 0);
	CHECK_INT(r0, 1);
	CHECK_INT(r1, 1);
	CHECK_INT(r2, 0);
	CHECK_INT(r3, 0);
	CHECK_INT(r4, 0);
}

UNIT_TEST(recursion_cycle_denies)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	int r[4];

	gl_policy_set_rule(p, "a", "rule:b", &err);
	gl_policy_set_rule(p, "b", "rule:a", &err);
	gl_policy_set_rule(p, "self", "rule:self or @", &err);
	gl_policy_set_rule(p, "short", "@ or rule:short", &err);
	gl_policy_set_rule(p, "neg", "not rule:neg", &err);
	r[0] = chk(p, "a", &admin, NULL);
	r[1] = chk(p, "self", &admin, NULL);  /* a cycle taints the check */
	r[2] = chk(p, "short", &admin, NULL); /* never reached the cycle */
	r[3] = chk(p, "neg", &admin, NULL);   /* not cannot flip a cycle */
	gl_policy_free(p);
	CHECK(!err.msg[0]);
	CHECK_INT(r[0], 0);
	CHECK_INT(r[1], 0);
	CHECK_INT(r[2], 1);
	CHECK_INT(r[3], 0);
}

UNIT_TEST(rule_chain_depth_limit)
{
	gl_policy *p = gl_policy_new();
	char name[32], rule[40];
	int r32, r33;

	/* c0 -> c1 -> ... -> c32 = @ */
	for (int i = 0; i < 33; i++) {
		snprintf(name, sizeof name, "c%d", i);
		snprintf(rule, sizeof rule, "rule:c%d", i + 1);
		gl_policy_set_rule(p, name, i == 32 ? "@" : rule, NULL);
	}
	r32 = chk(p, "c1", &anon, NULL); /* 32 rules on the stack */
	r33 = chk(p, "c0", &anon, NULL); /* 33: over the limit */
	gl_policy_free(p);
	CHECK_INT(r32, 1);
	CHECK_INT(r33, 0);
}

UNIT_TEST(exponential_references_are_bounded)
{
	gl_policy *p = gl_policy_new();
	char name[32], rule[64];
	int r0, r1;

	/* d_i = d_{i+1} or d_{i+1}: 2^30 paths if nothing stopped it */
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof name, "d%d", i);
		snprintf(rule, sizeof rule, "rule:d%d or rule:d%d", i + 1,
			 i + 1);
		gl_policy_set_rule(p, name, rule, NULL);
	}
	gl_policy_set_rule(p, "d30", "!", NULL);
	r0 = chk(p, "d0", &admin, NULL); /* returns at once: step budget */
	gl_policy_set_rule(p, "d30", "@", NULL);
	r1 = chk(p, "d0", &admin, NULL); /* first path allows */
	gl_policy_free(p);
	CHECK_INT(r0, 0);
	CHECK_INT(r1, 1);
}

UNIT_TEST(http_checks_deny)
{
	CHECK_INT(eval_rule("http://example.com/check/%(owner)s", &admin,
			    NULL),
		  0);
	CHECK_INT(eval_rule("https://example.com:8443/x", &admin, NULL), 0);
	CHECK_INT(eval_rule("not http://example.com/", &admin, NULL), 1);
	CHECK_INT(eval_rule("http://x or @", &anon, NULL), 1);
}

UNIT_TEST(legacy_list_syntax)
{
	static const char *const ab[] = { "a", "b" }, *const a[] = { "a" },
				 *const c[] = { "c" };
	gl_creds cab = with_roles(ab, 2), ca = with_roles(a, 1),
		 cc = with_roles(c, 1);
	const char *rule = "[[\"role:a\", \"role:b\"], [\"role:c\"]]";

	CHECK_INT(eval_rule(rule, &cab, NULL), 1);
	CHECK_INT(eval_rule(rule, &ca, NULL), 0);
	CHECK_INT(eval_rule(rule, &cc, NULL), 1);
	CHECK_INT(eval_rule(" [] ", &anon, NULL), 1);
	CHECK_INT(eval_rule("[[]]", &admin, NULL), 0); /* nothing left */
	CHECK_INT(eval_rule("[[], [\"role:c\"]]", &cc, NULL), 1);
	CHECK_INT(eval_rule("[\"role:a\"]", &ca, NULL), 1); /* bare string */
	/* items are full rules */
	CHECK_INT(eval_rule("[[\"role:x or role:a\", \"not role:b\"]]", &ca,
			    NULL),
		  1);
}

UNIT_TEST(legacy_list_malformed)
{
	char *e1 = parse_err("[[\"role:a\", 1]]");
	char *e2 = parse_err("[[\"role:a\"]");
	char *e3 = parse_err("[[\"role:a and\"]]");
	char *e4 = parse_err("[{}]");

	CHECK(e1 && e2 && e3 && e4);
	CHECK(strstr(e1, "policy rule 'artifact:create': list item [0][1] "
			 "must be a string"));
	CHECK(strstr(e2,
		     "policy rule 'artifact:create': invalid list syntax"));
	CHECK_STR(e3, "policy rule 'artifact:create': list item [0][0]: "
		      "missing operand after 'and' at offset 7");
	CHECK(strstr(e4, "list item [0] must be a string or a list"));
	free(e1);
	free(e2);
	free(e3);
	free(e4);
}

/* ---- malformed rules --------------------------------------------------- */

UNIT_TEST(malformed_unbalanced_parens)
{
	CHECK(err_is("(role:admin or role:member",
		     "policy rule 'artifact:create': unbalanced parenthesis "
		     "at offset 0"));
	CHECK(err_is("role:a and (role:b or (role:c)",
		     "policy rule 'artifact:create': unbalanced parenthesis "
		     "at offset 11"));
	CHECK(err_is("role:admin) or @",
		     "policy rule 'artifact:create': unbalanced parenthesis "
		     "at offset 10"));
	CHECK(err_is(")",
		     "policy rule 'artifact:create': unbalanced parenthesis "
		     "at offset 0"));
	CHECK(err_is("role:a and (",
		     "policy rule 'artifact:create': unbalanced parenthesis "
		     "at offset 11"));
}

UNIT_TEST(malformed_dangling_operators)
{
	CHECK(err_is("role:a and",
		     "policy rule 'artifact:create': missing operand after "
		     "'and' at offset 7"));
	CHECK(err_is("or role:a",
		     "policy rule 'artifact:create': missing operand before "
		     "'or' at offset 0"));
	CHECK(err_is("not",
		     "policy rule 'artifact:create': missing operand after "
		     "'not' at offset 0"));
	CHECK(err_is("role:a and and role:b",
		     "policy rule 'artifact:create': missing operand after "
		     "'and' at offset 7"));
	CHECK(err_is("(or role:a)",
		     "policy rule 'artifact:create': missing operand before "
		     "'or' at offset 1"));
	CHECK(err_is("(role:a and)",
		     "policy rule 'artifact:create': missing operand after "
		     "'and' at offset 8"));
}

UNIT_TEST(malformed_operands)
{
	CHECK(err_is("()", "policy rule 'artifact:create': empty parentheses "
			   "at offset 0"));
	CHECK(err_is("role:a and ( )", "policy rule 'artifact:create': empty "
				       "parentheses at offset 11"));
	CHECK(err_is("admin", "policy rule 'artifact:create': unknown token "
			      "'admin' at offset 0"));
	/* keywords are lowercase only */
	CHECK(err_is("role:a AND role:b",
		     "policy rule 'artifact:create': expected 'and' or 'or' "
		     "before 'AND' at offset 7"));
	CHECK(err_is("role:a role:b",
		     "policy rule 'artifact:create': expected 'and' or 'or' "
		     "before 'role:b' at offset 7"));
	CHECK(err_is("role:a (@)",
		     "policy rule 'artifact:create': expected 'and' or 'or' "
		     "before '(' at offset 7"));
	CHECK(err_is("role:", "policy rule 'artifact:create': malformed check "
			      "'role:' at offset 0"));
	CHECK(err_is("@ or :x", "policy rule 'artifact:create': malformed "
				"check ':x' at offset 5"));
	CHECK(err_is("rule:''", "policy rule 'artifact:create': malformed "
				"check 'rule:''' at offset 0"));
}

UNIT_TEST(malformed_quotes_and_substitutions)
{
	CHECK(err_is("'public:%(visibility)s",
		     "policy rule 'artifact:create': unterminated quote at "
		     "offset 0"));
	CHECK(err_is("project_id:%(owner",
		     "policy rule 'artifact:create': unterminated "
		     "substitution at offset 11"));
	CHECK(err_is("project_id:%(owner)d",
		     "policy rule 'artifact:create': bad substitution at "
		     "offset 11 (use %(name)s, or %% for a literal '%')"));
	CHECK(err_is("role:%()s", "policy rule 'artifact:create': bad "
				  "substitution at offset 5 (use %(name)s, "
				  "or %% for a literal '%')"));
	CHECK(err_is("user_id:50%",
		     "policy rule 'artifact:create': bad substitution at "
		     "offset 10 (use %(name)s, or %% for a literal '%')"));
	CHECK(err_is("'public'x:y", "policy rule 'artifact:create': "
				    "malformed check ''public'x:y' at "
				    "offset 0"));
	CHECK(err_is("role:'a'b", "policy rule 'artifact:create': malformed "
				  "quoted string in 'role:'a'b' at offset 5"));
}

UNIT_TEST(nesting_limit)
{
	char deep[400], ok[400];
	char *e;
	int v;

	/* 64 levels parse; 65 are refused instead of recursing on */
	memset(ok, '(', 64);
	strcpy(ok + 64, "@");
	memset(ok + 65, ')', 64);
	ok[129] = '\0';
	v = eval_rule(ok, &anon, NULL);
	memset(deep, '(', 65);
	strcpy(deep + 65, "@");
	memset(deep + 66, ')', 65);
	deep[131] = '\0';
	e = parse_err(deep);
	CHECK_INT(v, 1);
	CHECK_STR(e, "policy rule 'artifact:create': nesting deeper than 64 "
		     "at offset 64");
	free(e);
	/* long flat chains are not nesting */
	{
		char *big = malloc(20000), *q = big;

		for (int i = 0; i < 1000; i++)
			q += sprintf(q, "%srole:r%d", i ? " or " : "", i);
		v = eval_rule(big, &admin, NULL);
		free(big);
		CHECK_INT(v, 0);
	}
}

UNIT_TEST(set_rule_failure_keeps_old_rule)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 }, err2 = { 0 };
	int rc = gl_policy_set_rule(p, "artifact:create", "role:a and", &err);
	int v = chk(p, "artifact:create", &anon, NULL);
	int rc2 = gl_policy_set_rule(p, "", "@", &err2);
	int rc3 = gl_policy_set_rule(p, "artifact:create", "!", NULL);
	int v2 = chk(p, "artifact:create", &admin, NULL);

	gl_policy_free(p);
	CHECK_INT(rc, -1);
	CHECK(strstr(err.msg, "'artifact:create'"));
	CHECK_INT(v, 1); /* still the default "" */
	CHECK_INT(rc2, -1);
	CHECK_STR(err2.msg, "policy rule name is empty");
	CHECK_INT(rc3, 0);
	CHECK_INT(v2, 0);
}

/* ---- policy files ------------------------------------------------------ */

UNIT_TEST(json_file_overrides)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	static const char *const su[] = { "su_role" };
	gl_creds s = with_roles(su, 1);
	int rc = load_text(p,
			   "  {\n"
			   "  \"artifact:create\": \"role:su_role\",\n"
			   "  \"custom\": [[\"role:su_role\", \"@\"]],\n"
			   "  \"open\": []\n"
			   "}\n",
			   &err);

	CHECK_INT(rc, 0);
	CHECK(!err.msg[0]);
	CHECK_INT(chk(p, "artifact:create", &s, NULL), 1);
	CHECK_INT(chk(p, "artifact:create", &admin, NULL), 0);
	CHECK_INT(chk(p, "custom", &s, NULL), 1);
	CHECK_INT(chk(p, "custom", &owner, NULL), 0);
	CHECK_INT(chk(p, "open", &anon, NULL), 1);
	/* rules not in the file keep their defaults */
	CHECK_INT(chk(p, "artifact:publish", &admin, NULL), 1);
	gl_policy_free(p);
}

UNIT_TEST(json_file_errors_are_atomic)
{
	gl_policy *p = gl_policy_new();
	gl_err e1 = { 0 }, e2 = { 0 }, e3 = { 0 }, e4 = { 0 };
	int rc1 = load_text(p,
			    "{\"artifact:create\": \"!\",\n"
			    " \"artifact:get\": \"role:a or\"}\n",
			    &e1);
	int rc2 = load_text(p, "{\"artifact:create\": \"!\",\n \"x\": }\n",
			    &e2);
	int rc3 = load_text(p, "{\"artifact:create\": \"!\", \"x\": 5}", &e3);
	int rc4 = load_text(p, "{\"artifact:create\": \"!\", \"x\": [[5]]}",
			    &e4);
	int v = chk(p, "artifact:create", &anon, NULL);

	gl_policy_free(p);
	CHECK_INT(rc1, -1);
	CHECK_INT(rc2, -1);
	CHECK_INT(rc3, -1);
	CHECK_INT(rc4, -1);
	CHECK_INT(v, 1); /* the valid first rule was not applied */
	CHECK(strstr(e1.msg, ": policy rule 'artifact:get': missing operand "
			     "after 'or' at offset 7"));
	CHECK(strstr(e2.msg, ":2:") && strstr(e2.msg, "invalid JSON"));
	CHECK(strstr(e3.msg, "policy rule 'x': value must be a string or "
			     "a list"));
	CHECK(strstr(e4.msg, "policy rule 'x': list item [0][0]"));
}

UNIT_TEST(yaml_file_forms)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	static const char *const r[] = { "o'neil", "q\"r", "x" };
	gl_creds c = with_roles(r, 3);
	json_t *pub = art("public", "active");
	int rc =
		load_text(p,
			  "---\n"
			  "# Glare policy overrides\n"
			  "\n"
			  "\"artifact:create\": \"role:x and not role:y\"\n"
			  "'artifact:list': 'role:o''neil'   # quote doubled\n"
			  "artifact:get: role:x or role:z  # a trailing comment\n"
			  "artifact:delete : \"role:q\\\"r\"\n"
			  "artifact:upload: '@'\r\n"
			  "artifact:publish: \"\"\n"
			  "artifact:type_list:\n"
			  "artifact:update: [[\"role:x\"], [\"role:none\"]]\n"
			  "   # indented comment\n"
			  "pub: \"'public':%(visibility)s\"\n"
			  "esc: \"role:a\\\\b\"\n",
			  &err);

	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	CHECK_INT(rc, 0);
	CHECK_INT(chk(p, "artifact:create", &c, NULL), 1);
	CHECK_INT(chk(p, "artifact:create", &admin, NULL), 0);
	CHECK_INT(chk(p, "artifact:list", &c, NULL), 1);
	CHECK_INT(chk(p, "artifact:list", &admin, NULL), 0);
	CHECK_INT(chk(p, "artifact:get", &c, NULL), 1);
	CHECK_INT(chk(p, "artifact:get", &admin, NULL), 0);
	CHECK_INT(chk(p, "artifact:delete", &c, NULL), 1);
	CHECK_INT(chk(p, "artifact:upload", &anon, NULL), 1);
	CHECK_INT(chk(p, "artifact:publish", &anon, NULL), 1);
	CHECK_INT(chk(p, "artifact:type_list", &anon, NULL), 1);
	CHECK_INT(chk(p, "artifact:update", &c, NULL), 1);
	CHECK_INT(chk(p, "artifact:update", &admin, NULL), 0);
	CHECK_INT(chk(p, "pub", &anon, pub), 1);
	json_decref(pub);
	gl_policy_free(p);
}

UNIT_TEST(yaml_file_escapes_and_multiline)
{
	gl_policy *p = gl_policy_new();
	gl_err err = { 0 };
	static const char *const r1[] = { "a\\b" };
	static const char *const r2[] = { "b", "c" };
	gl_creds c1 = with_roles(r1, 1), c2 = with_roles(r2, 2);
	int rc = load_text(p,
			   "esc: \"role:a\\\\b\"\n"
			   "folded: \"role:a or\n"
			   "    role:b\"\n"
			   "plain: role:x or\n"
			   "  role:c   # why\n"
			   "next:\n"
			   "  role:c\n"
			   "after: '!'\n",
			   &err);

	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	CHECK_INT(rc, 0);
	CHECK_INT(chk(p, "esc", &c1, NULL), 1);
	CHECK_INT(chk(p, "folded", &c2, NULL), 1);
	CHECK_INT(chk(p, "folded", &c1, NULL), 0);
	CHECK_INT(chk(p, "plain", &c2, NULL), 1);
	CHECK_INT(chk(p, "next", &c2, NULL), 1);
	CHECK_INT(chk(p, "next", &c1, NULL), 0);
	CHECK_INT(chk(p, "after", &admin, NULL), 0);
	gl_policy_free(p);
}

UNIT_TEST(yaml_file_errors_name_the_line)
{
	gl_policy *p = gl_policy_new();
	gl_err e[7] = { 0 };
	int rc[7];

	rc[0] = load_text(p,
			  "artifact:create: '!'\n# ok\nthis is not a rule\n",
			  &e[0]);
	rc[1] = load_text(p, "artifact:create: '!'\n\nx: role:a and\n", &e[1]);
	rc[2] = load_text(p, "artifact:create: '!'\nx: \"role:a\n", &e[2]);
	rc[3] = load_text(p, "artifact:create: '!'\nx: 'a' b\n", &e[3]);
	rc[4] = load_text(p, "artifact:create: '!'\nx: |\n  role:a\n", &e[4]);
	rc[5] = load_text(p, "artifact:create: '!'\nx: \"\\q\"\n", &e[5]);
	rc[6] = load_text(p, "artifact:create: '!'\n\n  x: '@'\n", &e[6]);
	for (int i = 0; i < 7; i++)
		CHECK_INT(rc[i], -1);
	/* atomic: none of the files applied their first, valid rule */
	CHECK_INT(chk(p, "artifact:create", &anon, NULL), 1);
	gl_policy_free(p);
	CHECK(strstr(e[0].msg, ":3: expected 'name: rule'"));
	CHECK(strstr(e[1].msg,
		     ":3: policy rule 'x': missing operand after 'and' "
		     "at offset 7"));
	CHECK(strstr(e[2].msg, ":2: unterminated quoted string"));
	CHECK(strstr(e[3].msg, ":2: unexpected text after quoted value"));
	CHECK(strstr(e[4].msg, ":2: unsupported YAML syntax '|'"));
	CHECK(strstr(e[5].msg, ":2: unsupported escape '\\q'"));
	CHECK(strstr(e[6].msg, ":3: unexpected indentation"));
}

UNIT_TEST(file_misc)
{
	gl_policy *p = gl_policy_new();
	gl_err e1 = { 0 }, e2 = { 0 }, e3 = { 0 };
	int rc0 = load_text(p, "", &e1);
	int rc1 = load_text(p, "# only comments\n\n", &e1);
	int rc2 = gl_policy_load_file(p, "/nonexistent/policy.yaml", &e2);
	/* duplicates: the last one wins, as in JSON and YAML */
	int rc3 = load_text(p, "dup: '!'\ndup: '@'\n", &e3);
	int v = chk(p, "dup", &anon, NULL);
	int rc4 = load_text(p, "\xef\xbb\xbf{\"bom\": \"@\"}", &e3);
	int v2 = chk(p, "bom", &anon, NULL);
	int rc5 = load_text(p, "[\"role:a\"]\n", &e3);

	gl_policy_free(p);
	CHECK_INT(rc0, 0);
	CHECK_INT(rc1, 0);
	CHECK(!e1.msg[0]);
	CHECK_INT(rc2, -1);
	CHECK(strstr(e2.msg, "/nonexistent/policy.yaml: "));
	CHECK_INT(rc3, 0);
	CHECK_INT(v, 1);
	CHECK_INT(rc4, 0);
	CHECK_INT(v2, 1);
	CHECK_INT(rc5, -1); /* a top-level list is neither format */
	CHECK(strstr(e3.msg, ":1: expected 'name: rule'"));
}

/* clang-format off */
UNIT_SUITE(policy,
	   UNIT_CASE(defaults_open_rules),
	   UNIT_CASE(defaults_admin_only_rules),
	   UNIT_CASE(defaults_admin_or_owner_rules),
	   UNIT_CASE(defaults_blob_rules_public_need_admin),
	   UNIT_CASE(policy_file_restores_glare_blob_rules),
	   UNIT_CASE(defaults_update_private),
	   UNIT_CASE(defaults_update_public_needs_admin),
	   UNIT_CASE(defaults_delete),
	   UNIT_CASE(defaults_download),
	   UNIT_CASE(defaults_list_project_quotas),
	   UNIT_CASE(is_admin_from_roles),
	   UNIT_CASE(check_uses_creds_is_admin_flag),
	   UNIT_CASE(unknown_rule_denies),
	   UNIT_CASE(null_creds_are_anonymous),
	   UNIT_CASE(always_allow_and_deny),
	   UNIT_CASE(role_case_insensitive),
	   UNIT_CASE(precedence_not_and_or),
	   UNIT_CASE(parentheses_and_nesting),
	   UNIT_CASE(whitespace_insensitive),
	   UNIT_CASE(quoted_literals),
	   UNIT_CASE(substitution_values),
	   UNIT_CASE(substitution_missing_key_is_false),
	   UNIT_CASE(missing_visibility_follows_oslo),
	   UNIT_CASE(generic_credential_checks),
	   UNIT_CASE(domain_credential_checks),
	   UNIT_CASE(rule_references),
	   UNIT_CASE(recursion_cycle_denies),
	   UNIT_CASE(rule_chain_depth_limit),
	   UNIT_CASE(exponential_references_are_bounded),
	   UNIT_CASE(http_checks_deny),
	   UNIT_CASE(legacy_list_syntax),
	   UNIT_CASE(legacy_list_malformed),
	   UNIT_CASE(malformed_unbalanced_parens),
	   UNIT_CASE(malformed_dangling_operators),
	   UNIT_CASE(malformed_operands),
	   UNIT_CASE(malformed_quotes_and_substitutions),
	   UNIT_CASE(nesting_limit),
	   UNIT_CASE(set_rule_failure_keeps_old_rule),
	   UNIT_CASE(json_file_overrides),
	   UNIT_CASE(json_file_errors_are_atomic),
	   UNIT_CASE(yaml_file_forms),
	   UNIT_CASE(yaml_file_escapes_and_multiline),
	   UNIT_CASE(yaml_file_errors_name_the_line),
	   UNIT_CASE(file_misc));
/* clang-format on */
