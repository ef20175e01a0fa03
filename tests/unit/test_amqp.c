/* test_amqp.c - unit tests for amqp.c's transport URL parser (the forms
 * oslo.messaging accepts in transport_url) and the subscription policy
 * defaults. Publishing itself is tested black-box against a real RabbitMQ
 * (tests/http/test_14_notifications.py).
 */
#include "unit.h"

#include <stdlib.h>

#include "amqp.h"
#include "policy.h"

static int parse(const char *url, gl_amqp_conf *c, gl_err *err)
{
	memset(c, 0, sizeof *c);
	memset(err, 0, sizeof *err);
	return gl_amqp_parse_url(url, c, err);
}

UNIT_TEST(url_single_host)
{
	gl_amqp_conf c;
	gl_err err;

	CHECK_INT(parse("rabbit://u:p@127.0.0.1:5673/vh", &c, &err), 0);
	CHECK_INT(c.nhosts, 1);
	CHECK_STR(c.hosts[0].host, "127.0.0.1");
	CHECK_INT(c.hosts[0].port, 5673);
	CHECK_STR(c.hosts[0].user, "u");
	CHECK_STR(c.hosts[0].pass, "p");
	CHECK_STR(c.vhost, "vh");
	gl_amqp_conf_clear(&c);
	CHECK_INT(c.nhosts, 0);
}

UNIT_TEST(url_defaults)
{
	gl_amqp_conf c;
	gl_err err;

	/* no credentials, no port, no vhost: guest, 5672, "/" */
	CHECK_INT(parse("rabbit://broker", &c, &err), 0);
	CHECK_STR(c.hosts[0].host, "broker");
	CHECK_INT(c.hosts[0].port, 5672);
	CHECK_STR(c.hosts[0].user, "guest");
	CHECK_STR(c.hosts[0].pass, "guest");
	CHECK_STR(c.vhost, "/");
	gl_amqp_conf_clear(&c);
	CHECK_INT(parse("rabbit://broker:5672/", &c, &err), 0);
	CHECK_STR(c.vhost, "/");
	gl_amqp_conf_clear(&c);
	/* a user without a password */
	CHECK_INT(parse("rabbit://only@h/", &c, &err), 0);
	CHECK_STR(c.hosts[0].user, "only");
	CHECK_STR(c.hosts[0].pass, "guest");
	gl_amqp_conf_clear(&c);
}

UNIT_TEST(url_several_hosts)
{
	gl_amqp_conf c;
	gl_err err;

	CHECK_INT(parse("rabbit://a:1@h1:5001,b:2@h2,[::1]:5003/%2Fprod", &c,
			&err),
		  0);
	CHECK_INT(c.nhosts, 3);
	CHECK_STR(c.hosts[0].host, "h1");
	CHECK_INT(c.hosts[0].port, 5001);
	CHECK_STR(c.hosts[1].user, "b");
	CHECK_STR(c.hosts[1].pass, "2");
	CHECK_INT(c.hosts[1].port, 5672);
	CHECK_STR(c.hosts[2].host, "::1");
	CHECK_INT(c.hosts[2].port, 5003);
	CHECK_STR(c.hosts[2].user, "guest");
	CHECK_STR(c.vhost, "/prod");
	gl_amqp_conf_clear(&c);
}

UNIT_TEST(url_escapes)
{
	gl_amqp_conf c;
	gl_err err;

	/* a password with '@', ':' and '/' must be escaped, and is decoded */
	CHECK_INT(parse("rabbit://us%40er:p%3Aa%2Fss%40@h:1/v%20h", &c, &err),
		  0);
	CHECK_STR(c.hosts[0].user, "us@er");
	CHECK_STR(c.hosts[0].pass, "p:a/ss@");
	CHECK_STR(c.hosts[0].host, "h");
	CHECK_STR(c.vhost, "v h");
	gl_amqp_conf_clear(&c);
	/* an unescaped '@' in the password: the last '@' ends the userinfo */
	CHECK_INT(parse("rabbit://u:p@ss@h/", &c, &err), 0);
	CHECK_STR(c.hosts[0].pass, "p@ss");
	CHECK_STR(c.hosts[0].host, "h");
	gl_amqp_conf_clear(&c);
}

UNIT_TEST(url_refused)
{
	/* clang-format off */
	static const char *const bad[] = {
		"amqp://h/", "kafka://h:9092", "h:5672", "", "rabbit://",
		"rabbit:///vhost", "rabbit://h:0/", "rabbit://h:99999/",
		"rabbit://h:x/", "rabbit://h:/", "rabbit://[::1/",
		"rabbit://[::1]x/", "rabbit://h,/", "rabbit://u:p@:5672/",
		"rabbit://h/?ssl=1", "rabbit://u:%zz@h/",
		NULL
	};
	/* clang-format on */

	for (int i = 0; bad[i]; i++) {
		gl_amqp_conf c;
		gl_err err;
		int rc = parse(bad[i], &c, &err);
		gl_amqp_conf_clear(&c);
		if (rc != -1) {
			snprintf(unit_msg, sizeof unit_msg, "accepted %s",
				 bad[i]);
			unit_failed = 1;
			return;
		}
		CHECK_INT(err.status, 500);
		CHECK(strstr(err.msg, "transport_url") != NULL);
	}
}

UNIT_TEST(url_error_hides_password)
{
	gl_amqp_conf c;
	gl_err err;

	CHECK_INT(parse("rabbit://u:hunter2@h:bad/", &c, &err), -1);
	CHECK(strstr(err.msg, "hunter2") == NULL);
	gl_amqp_conf_clear(&c);
	CHECK_INT(parse("amqp://u:hunter2@h/", &c, &err), -1);
	CHECK(strstr(err.msg, "hunter2") == NULL);
	gl_amqp_conf_clear(&c);
}

static const char *const member_roles[] = { "member" };
static const char *const admin_roles[] = { "admin" };

UNIT_TEST(subscription_policy_defaults)
{
	gl_policy *p = gl_policy_new();
	gl_creds owner = { "u1", "p1", member_roles, 1, 0, NULL, NULL };
	gl_creds other = { "u2", "p2", member_roles, 1, 0, NULL, NULL };
	gl_creds admin = { "ua", "pa", admin_roles, 1, 1, NULL, NULL };
	json_t *t = json_pack("{s:s, s:s}", "owner", "p1", "project_id", "p1");

	CHECK(gl_policy_check(p, "subscription:create", &owner, NULL));
	CHECK(gl_policy_check(p, "subscription:get", &owner, t));
	CHECK(!gl_policy_check(p, "subscription:get", &other, t));
	CHECK(gl_policy_check(p, "subscription:get", &admin, t));
	CHECK(gl_policy_check(p, "subscription:delete", &owner, t));
	CHECK(!gl_policy_check(p, "subscription:delete", &other, t));
	CHECK(gl_policy_check(p, "subscription:deliveries", &owner, t));
	CHECK(!gl_policy_check(p, "subscription:deliveries", &other, t));
	CHECK(!gl_policy_check(p, "subscription:list_all", &owner, NULL));
	CHECK(gl_policy_check(p, "subscription:list_all", &admin, NULL));
	CHECK(!gl_policy_check(p, "subscription:all_projects", &owner, NULL));
	CHECK(gl_policy_check(p, "subscription:all_projects", &admin, NULL));
	json_decref(t);
	gl_policy_free(p);
}

/* clang-format off */
UNIT_SUITE(amqp,
	   UNIT_CASE(url_single_host),
	   UNIT_CASE(url_defaults),
	   UNIT_CASE(url_several_hosts),
	   UNIT_CASE(url_escapes),
	   UNIT_CASE(url_refused),
	   UNIT_CASE(url_error_hides_password),
	   UNIT_CASE(subscription_policy_defaults));
/* clang-format on */
