/* conf.c - Glare INI options: defaults, file, environment (see conf.h). */
#include "conf.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_STR, K_INT, K_INT64, K_BOOL, K_LIST };

typedef struct opt {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
	const char *def;
	int64_t min, max; /* for integers */
} opt;

#define O(sec, nm, k, field, d, ...)                                          \
	{                                                                     \
		sec, nm, k, offsetof(gl_conf, field), d, __VA_ARGS__          \
	}
#define ANY INT64_MIN, INT64_MAX
/* loading a type may take 100x the request budget (ltype.c): keep the
 * products in range */
#define HOOK_FACTOR 1000

/* Every option glared reads. Names and defaults follow Glare where Glare
 * has the option; the rest are glared's own. */
/* clang-format off */
static const opt options[] = {
	O("DEFAULT", "bind_host", K_STR, bind_host, "0.0.0.0", ANY),
	O("DEFAULT", "bind_port", K_INT, bind_port, "9494", 0, 65535),
	O("DEFAULT", "workers", K_INT, workers, "1", 0, 256),
	O("DEFAULT", "enabled_artifact_types", K_LIST, enabled_artifact_types,
	  "heat_templates,heat_environments,murano_packages,tosca_templates,images",
	  ANY),
	O("DEFAULT", "custom_artifact_types_modules", K_LIST,
	  custom_artifact_types_modules, "", ANY),
	O("DEFAULT", "types_path", K_STR, types_path, NULL, ANY),
	O("DEFAULT", "lua_path", K_STR, lua_path, NULL, ANY),
	O("DEFAULT", "max_uploaded_data", K_INT64, max_uploaded_data, "-1", -1,
	  INT64_MAX),
	O("DEFAULT", "max_artifact_number", K_INT64, max_artifact_number, "-1",
	  -1, INT64_MAX),
	O("DEFAULT", "delayed_delete", K_BOOL, delayed_delete, "false", ANY),
	O("DEFAULT", "allow_anonymous_access", K_BOOL, allow_anonymous_access,
	  "false", ANY),
	O("DEFAULT", "default_api_limit", K_INT, default_api_limit, "25", 0,
	  INT_MAX),
	O("DEFAULT", "max_api_limit", K_INT, max_api_limit, "1000", 0, INT_MAX),
	O("DEFAULT", "debug", K_BOOL, debug, "false", ANY),
	O("DEFAULT", "max_header_line", K_INT, max_header_line, "16384", 256,
	  1 << 20),
	O("DEFAULT", "max_header_size", K_INT, max_header_size, "65536", 1024,
	  1 << 22),
	O("DEFAULT", "http_keepalive", K_BOOL, http_keepalive, "true", ANY),
	O("DEFAULT", "client_socket_timeout", K_INT, client_socket_timeout,
	  "900", 0, INT_MAX),
	O("DEFAULT", "header_timeout", K_INT, header_timeout, "60", 1, INT_MAX),
	O("DEFAULT", "first_byte_timeout", K_INT, first_byte_timeout, "10", 1,
	  INT_MAX),
	O("DEFAULT", "max_connections", K_INT, max_connections, "1024", 1,
	  1 << 20),
	O("DEFAULT", "max_connections_per_client", K_INT,
	  max_connections_per_client, "256", 0, 1 << 20),
	O("DEFAULT", "shutdown_timeout", K_INT, shutdown_timeout, "30", 0,
	  INT_MAX),
	O("DEFAULT", "max_json_body", K_INT64, max_json_body, "16777216", 1024,
	  INT64_MAX),
	O("DEFAULT", "max_json_depth", K_INT, max_json_depth, "32", 2, 256),
	O("DEFAULT", "max_json_values", K_INT64, max_json_values, "20000", 64,
	  INT64_MAX),
	O("DEFAULT", "max_patch_operations", K_INT, max_patch_operations,
	  "1000", 1, INT_MAX),
	O("DEFAULT", "lua_memory_limit", K_INT64, lua_memory_limit, "67108864",
	  1 << 20, INT64_MAX),
	O("DEFAULT", "lua_instruction_limit", K_INT64, lua_instruction_limit,
	  "10000000", 1000, INT64_MAX / (HOOK_FACTOR)),
	O("DEFAULT", "lua_time_limit", K_INT64, lua_time_limit, "1000", 1,
	  INT64_MAX / 1000000 / (HOOK_FACTOR)),
	O("DEFAULT", "admin_socket", K_STR, admin_socket, NULL, ANY),
	O("DEFAULT", "log_file", K_STR, log_file, NULL, ANY),
	O("DEFAULT", "use_json", K_BOOL, use_json, "false", ANY),
	O("DEFAULT", "trusted_proxies", K_LIST, trusted_proxies, "", ANY),
	O("DEFAULT", "metrics_access", K_STR, metrics_access, "loopback", ANY),
	O("DEFAULT", "external_location_verification", K_STR,
	  external_location_verification, "fetch", ANY),
	O("DEFAULT", "external_location_allowed_networks", K_LIST,
	  external_location_allowed_networks, "", ANY),
	O("DEFAULT", "fetch_connect_timeout", K_INT, fetch_connect_timeout, "10",
	  1, INT_MAX),
	O("DEFAULT", "fetch_timeout", K_INT, fetch_timeout, "3600", 1, INT_MAX),
	O("DEFAULT", "fetch_low_speed_limit", K_INT, fetch_low_speed_limit,
	  "1024", 0, INT_MAX),
	O("DEFAULT", "fetch_low_speed_time", K_INT, fetch_low_speed_time, "30",
	  0, INT_MAX),
	O("DEFAULT", "fetch_max_redirects", K_INT, fetch_max_redirects, "5", 0,
	  50),
	O("DEFAULT", "fetch_max_concurrent", K_INT, fetch_max_concurrent, "8",
	  1, 4096),
	O("DEFAULT", "upload_heartbeat", K_INT, upload_heartbeat, "30", 1,
	  INT_MAX),
	O("DEFAULT", "upload_takeover_after", K_INT, upload_takeover_after,
	  "300", 3, INT_MAX),
	O("DEFAULT", "transport_url", K_STR, transport_url, NULL, ANY),
	O("DEFAULT", "glare_publisher_id", K_STR, glare_publisher_id,
	  "artifact.localhost", ANY),
	O("DEFAULT", "control_exchange", K_STR, control_exchange, "glare",
	  ANY),
	O("oslo_messaging_notifications", "driver", K_LIST,
	  notification_driver, "", ANY),
	O("oslo_messaging_notifications", "transport_url", K_STR,
	  notification_transport_url, NULL, ANY),
	O("oslo_messaging_notifications", "topics", K_LIST,
	  notification_topics, "notifications", ANY),
	O("oslo_messaging_rabbit", "amqp_durable_queues", K_BOOL,
	  amqp_durable_queues, "false", ANY),
	O("oslo_messaging_rabbit", "amqp_auto_delete", K_BOOL,
	  amqp_auto_delete, "false", ANY),
	O("oslo_messaging_rabbit", "heartbeat_timeout_threshold", K_INT,
	  rabbit_heartbeat, "60", 0, 3600),
	O("events", "deliver", K_BOOL, events_deliver, "true", ANY),
	O("events", "poll_interval", K_INT, events_poll_interval, "1", 1, 3600),
	O("events", "claim_timeout", K_INT, events_claim_timeout, "60", 5,
	  86400),
	O("events", "webhook_timeout", K_INT, webhook_timeout, "10", 1, 600),
	O("events", "webhook_max_concurrent", K_INT, webhook_max_concurrent,
	  "16", 1, 1024),
	O("events", "webhook_retry_period", K_INT, webhook_retry_period,
	  "86400", 0, INT_MAX),
	O("events", "retry_initial_delay_ms", K_INT, events_retry_initial_ms,
	  "1000", 10, INT_MAX),
	O("events", "retry_max_delay_ms", K_INT, events_retry_max_ms,
	  "300000", 10, INT_MAX),
	O("events", "delivered_retention", K_INT, events_delivered_retention,
	  "86400", 0, INT_MAX),
	O("events", "failed_retention", K_INT, events_failed_retention,
	  "604800", 0, INT_MAX),
	O("events", "max_age", K_INT, events_max_age, "604800", 60, INT_MAX),
	O("events", "max_subscriptions", K_INT, max_subscriptions, "100", 0,
	  INT_MAX),
	O("events", "amqp_queue_size", K_INT, amqp_queue_size, "512", 1,
	  1 << 20),
	O("events", "amqp_confirm_timeout", K_INT, amqp_confirm_timeout, "30",
	  1, 3600),
	O("events", "amqp_connect_timeout", K_INT, amqp_connect_timeout, "5",
	  1, 600),
	O("paste_deploy", "flavor", K_STR, flavor, "", ANY),
	O("keystone_authtoken", "www_authenticate_uri", K_STR,
	  ks_www_authenticate_uri, NULL, ANY),
	O("keystone_authtoken", "auth_uri", K_STR, ks_auth_uri, NULL, ANY),
	O("keystone_authtoken", "auth_url", K_STR, ks_auth_url, NULL, ANY),
	O("keystone_authtoken", "auth_type", K_STR, ks_auth_type, NULL, ANY),
	O("keystone_authtoken", "username", K_STR, ks_username, NULL, ANY),
	O("keystone_authtoken", "password", K_STR, ks_password, NULL, ANY),
	O("keystone_authtoken", "project_name", K_STR, ks_project_name, NULL,
	  ANY),
	O("keystone_authtoken", "user_domain_name", K_STR, ks_user_domain_name,
	  NULL, ANY),
	O("keystone_authtoken", "user_domain_id", K_STR, ks_user_domain_id,
	  NULL, ANY),
	O("keystone_authtoken", "project_domain_name", K_STR,
	  ks_project_domain_name, NULL, ANY),
	O("keystone_authtoken", "project_domain_id", K_STR,
	  ks_project_domain_id, NULL, ANY),
	O("keystone_authtoken", "region_name", K_STR, ks_region_name, NULL,
	  ANY),
	O("keystone_authtoken", "interface", K_STR, ks_interface, "internal",
	  ANY),
	O("keystone_authtoken", "token_cache_time", K_INT, ks_token_cache_time,
	  "300", -1, INT_MAX),
	O("keystone_authtoken", "token_cache_size", K_INT, ks_token_cache_size,
	  "10000", 0, 1 << 24),
	O("keystone_authtoken", "cafile", K_STR, ks_cafile, NULL, ANY),
	O("keystone_authtoken", "certfile", K_STR, ks_certfile, NULL, ANY),
	O("keystone_authtoken", "keyfile", K_STR, ks_keyfile, NULL, ANY),
	O("keystone_authtoken", "insecure", K_BOOL, ks_insecure, "false", ANY),
	O("keystone_authtoken", "http_connect_timeout", K_INT,
	  ks_http_connect_timeout, "10", 1, 3600),
	O("keystone_authtoken", "http_request_max_retries", K_INT,
	  ks_http_request_max_retries, "3", 0, 100),
	O("keycloak_oidc", "auth_url", K_STR, kc_auth_url,
	  "http://127.0.0.1:8080/auth", ANY),
	O("keycloak_oidc", "user_info_endpoint_url", K_STR,
	  kc_user_info_endpoint_url,
	  "/realms/%s/protocol/openid-connect/userinfo", ANY),
	O("keycloak_oidc", "token_cache_time", K_INT, kc_token_cache_time, "60",
	  -1, INT_MAX),
	O("keycloak_oidc", "token_cache_size", K_INT, kc_token_cache_size,
	  "10000", 0, 1 << 24),
	O("keycloak_oidc", "cafile", K_STR, kc_cafile, NULL, ANY),
	O("keycloak_oidc", "certfile", K_STR, kc_certfile, NULL, ANY),
	O("keycloak_oidc", "keyfile", K_STR, kc_keyfile, NULL, ANY),
	O("keycloak_oidc", "insecure", K_BOOL, kc_insecure, "false", ANY),
	O("keycloak_oidc", "audience", K_STR, kc_audience, NULL, ANY),
	O("keycloak_oidc", "leeway", K_INT, kc_leeway, "30", 0, 3600),
	O("keycloak_oidc", "use_userinfo", K_BOOL, kc_use_userinfo, "false",
	  ANY),
	O("keycloak_oidc", "jwks_cache_time", K_INT, kc_jwks_cache_time,
	  "3600", 1, INT_MAX),
	O("keycloak_oidc", "jwks_refetch_interval", K_INT,
	  kc_jwks_refetch_interval, "10", 0, 86400),
	O("keycloak_oidc", "http_connect_timeout", K_INT,
	  kc_http_connect_timeout, "10", 1, 3600),
	O("database", "connection", K_STR, db_connection,
	  "sqlite:////var/lib/glare/glare.db", ANY),
	O("database", "max_pool_size", K_INT, db_max_pool_size, "5", 1, 1000),
	O("database", "blocking_queries", K_BOOL, db_blocking_queries, "false",
	  ANY),
	O("database", "sqlite_durability", K_STR, sqlite_durability, "group",
	  ANY),
	O("glance_store", "filesystem_store_datadir", K_STR,
	  filesystem_store_datadir, "/var/lib/glare/artifacts", ANY),
	O("glance_store", "default_store", K_STR, default_store, "file", ANY),
	O("glance_store", "s3_store_host", K_STR, s3_store_host, NULL, ANY),
	O("glance_store", "s3_store_region", K_STR, s3_store_region, "us-east-1",
	  ANY),
	O("glance_store", "s3_store_bucket", K_STR, s3_store_bucket, NULL, ANY),
	O("glance_store", "s3_store_access_key", K_STR, s3_store_access_key,
	  NULL, ANY),
	O("glance_store", "s3_store_secret_key", K_STR, s3_store_secret_key,
	  NULL, ANY),
	O("glance_store", "s3_store_prefix", K_STR, s3_store_prefix, "glared/",
	  ANY),
	O("glance_store", "s3_store_timeout", K_INT, s3_store_timeout, "300", 1,
	  INT_MAX),
	O("oslo_policy", "policy_file", K_STR, policy_file, NULL, ANY),
	O("healthcheck", "disable_by_file_path", K_STR,
	  healthcheck_disable_file, "/etc/glare/healthcheck_disable", ANY),
	O("scrubber", "scrub_time", K_INT, scrub_time, "0", 0, INT_MAX),
	O("scrubber", "scrub_pool_size", K_INT, scrub_pool_size, "1", 1, 1000),
	O("scrubber", "wakeup_time", K_INT, wakeup_time, "300", 1, INT_MAX),
};

/* Options of Glare we accept silently because glared has no use for them
 * (the service works without them), so old configs load without noise. */
static const char *const glare_only[] = {
	"DEFAULT:backlog", "DEFAULT:tcp_keepidle", "DEFAULT:log_dir", "DEFAULT:use_stderr", "DEFAULT:verbose",
	"DEFAULT:public_endpoint", "DEFAULT:digest_algorithm",
	"DEFAULT:cert_file", "DEFAULT:key_file", "DEFAULT:ca_file",
	"paste_deploy:config_file", "scrubber:daemon",
	"glance_store:stores", NULL
};

static const char *const type_keys[] = {
	"max_uploaded_data", "max_artifact_number", "delayed_delete",
	"default_store", "external_download",
	"external_location_verification", "external_location_check_interval",
	"external_location_rehash_interval", NULL
};
/* clang-format on */

/* A configuration error: gl_fail with the status of a server that cannot
 * start (the message is all a caller shows). */
static int failf(gl_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int failf(gl_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gl_vfail(err, 500, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int gl_conf_parse_bool(const char *s, int *out)
{
	static const char *t[] = { "1", "t", "true", "on", "y", "yes" };
	static const char *f[] = { "0", "f", "false", "off", "n", "no" };
	for (size_t i = 0; i < 6; i++) {
		if (!strcasecmp(s, t[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, f[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int gl_conf_parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static void strlist_free(gl_strlist *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int strlist_parse(gl_strlist *l, const char *s)
{
	char *dup = strdup(s), *save = NULL, *tok;
	if (!dup)
		return -1;
	strlist_free(l);
	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		size_t n = strlen(tok);
		while (n && isspace((unsigned char)tok[n - 1]))
			tok[--n] = '\0';
		if (!n)
			continue;
		char **nv = realloc(l->v, sizeof *nv * (l->n + 1));
		if (!nv) {
			free(dup);
			return -1;
		}
		l->v = nv;
		l->v[l->n++] = strdup(tok);
	}
	free(dup);
	return 0;
}

static int set_opt(gl_conf *c, const opt *o, const char *val,
		   const char *where, gl_err *err)
{
	char *base = (char *)c;
	int64_t v;
	int b;

	switch (o->kind) {
	case K_STR: {
		char **p = (char **)(base + o->off);
		free(*p);
		*p = val ? strdup(val) : NULL;
		return 0;
	}
	case K_LIST:
		return strlist_parse((gl_strlist *)(base + o->off),
				     val ? val : "");
	case K_BOOL:
		if (gl_conf_parse_bool(val, &b) < 0)
			return failf(err,
				     "%s: option [%s] %s: '%s' is not a boolean",
				     where, o->section, o->name, val);
		*(int *)(base + o->off) = b;
		return 0;
	case K_INT:
	case K_INT64:
		if (gl_conf_parse_int64(val, &v) < 0)
			return failf(err,
				     "%s: option [%s] %s: '%s' is not an integer",
				     where, o->section, o->name, val);
		if (v < o->min || v > o->max)
			return failf(err,
				     "%s: option [%s] %s: %lld is out of range "
				     "[%lld, %lld]",
				     where, o->section, o->name, (long long)v,
				     (long long)o->min, (long long)o->max);
		if (o->kind == K_INT)
			*(int *)(base + o->off) = (int)v;
		else
			*(int64_t *)(base + o->off) = v;
		return 0;
	}
	return 0;
}

static const opt *find_opt(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (!strcasecmp(options[i].section, section) &&
		    !strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

static int is_glare_only(const char *section, const char *name)
{
	char key[600];
	snprintf(key, sizeof key, "%.255s:%.255s", section, name);
	for (int i = 0; glare_only[i]; i++)
		if (!strcasecmp(glare_only[i], key))
			return 1;
	return 0;
}

/* Sections of Glare's own configs that glared has no use for: accepted
 * silently so an existing glare.conf loads without noise. */
/* clang-format off */
static const char *const glare_sections[] = {
	"oslo_middleware", "oslo_concurrency", "cors", "profiler",
	"matchmaker_redis", "glare", NULL
};
/* clang-format on */

/* Edit distance, for "did you mean" hints (names are short). */
static int distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = tolower((unsigned char)a[i - 1]) !=
				   tolower((unsigned char)b[j - 1]);
			int v = diag + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
		}
	}
	return row[lb];
}

static int known_section(const char *section)
{
	if (!strncmp(section, "artifact_type:", 14))
		return 1;
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		if (!strcasecmp(options[i].section, section))
			return 1;
	for (int i = 0; glare_sections[i]; i++)
		if (!strcasecmp(glare_sections[i], section))
			return 1;
	return 0;
}

/* The known section (or option of section) nearest to name, if close. */
static const char *nearest(const char *section, const char *name)
{
	const char *best = NULL;
	int bd = 99;

	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
		const char *cand = section ? options[i].name
					   : options[i].section;
		int d;
		if (section && strcasecmp(options[i].section, section))
			continue;
		d = distance(name, cand);
		if (d < bd) {
			bd = d;
			best = cand;
		}
	}
	if (!section && distance(name, "artifact_type:") < bd)
		best = "artifact_type:<name>",
		bd = distance(name, "artifact_type:");
	/* a third of the name may be wrong, at least one letter */
	return bd <= 1 || bd * 3 <= (int)strlen(name) ? best : NULL;
}

static void warn(gl_conf *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(gl_conf *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	gl_warn("%s", msg);
	c->warnings++;
}

static gl_type_conf *type_conf(gl_conf *c, const char *name)
{
	for (int i = 0; i < c->ntypes; i++)
		if (!strcmp(c->types[i].name, name))
			return &c->types[i];
	gl_type_conf *nt = realloc(c->types, sizeof *nt * (c->ntypes + 1));
	if (!nt)
		return NULL;
	c->types = nt;
	gl_type_conf *t = &c->types[c->ntypes++];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	t->max_uploaded_data = -1;
	t->max_artifact_number = -1;
	t->delayed_delete = -1;
	t->raw = json_object();
	return t;
}

static int set_type_opt(gl_type_conf *t, const char *key, const char *val,
			const char *where, gl_err *err)
{
	int64_t v;
	int b;

	json_object_set_new(t->raw, key, gl_json_text(val));
	if (!strcmp(key, "max_uploaded_data") ||
	    !strcmp(key, "max_artifact_number")) {
		if (gl_conf_parse_int64(val, &v) < 0 || v < -1)
			return failf(err,
				     "%s: option [artifact_type:%s] %s: '%s' is "
				     "not an integer >= -1",
				     where, t->name, key, val);
		if (key[4] == 'u')
			t->max_uploaded_data = v;
		else
			t->max_artifact_number = v;
	} else if (!strcmp(key, "delayed_delete")) {
		if (gl_conf_parse_bool(val, &b) < 0)
			return failf(err,
				     "%s: option [artifact_type:%s] %s: '%s' is "
				     "not a boolean",
				     where, t->name, key, val);
		t->delayed_delete = b;
	} else if (!strcmp(key, "default_store")) {
		free(t->default_store);
		t->default_store = strdup(val);
	} else if (!strcmp(key, "external_download")) {
		if (strcmp(val, "redirect") && strcmp(val, "proxy"))
			return failf(err,
				     "%s: option [artifact_type:%s] "
				     "external_download: '%s' is not one of "
				     "redirect, proxy",
				     where, t->name, val);
		free(t->external_download);
		t->external_download = strdup(val);
	} else if (!strcmp(key, "external_location_verification")) {
		if (strcmp(val, "fetch") && strcmp(val, "trust"))
			return failf(err,
				     "%s: option [artifact_type:%s] "
				     "external_location_verification: '%s' is "
				     "not one of fetch, trust",
				     where, t->name, val);
		free(t->external_location_verification);
		t->external_location_verification = strdup(val);
	} else if (!strcmp(key, "external_location_check_interval") ||
		   !strcmp(key, "external_location_rehash_interval")) {
		if (gl_conf_parse_int64(val, &v) < 0 || v < 0 || v > INT_MAX)
			return failf(err,
				     "%s: option [artifact_type:%s] %s: '%s' is "
				     "not a number of seconds",
				     where, t->name, key, val);
		if (strstr(key, "_check_"))
			t->external_location_check_interval = (int)v;
		else
			t->external_location_rehash_interval = (int)v;
	}
	/* other keys are type-specific; the type runtime checks them */
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int apply(gl_conf *c, const char *section, const char *key,
		 const char *val, const char *where, gl_err *err)
{
	const opt *o;

	if (!strncmp(section, "artifact_type:", 14)) {
		gl_type_conf *t = type_conf(c, section + 14);
		if (!t)
			return failf(err, "out of memory");
		return set_type_opt(t, key, val, where, err);
	}
	if (!known_section(section))
		return 0; /* warned once at the section header */
	o = find_opt(section, key);
	if (!o) {
		const char *hint = nearest(section, key);
		if (!is_glare_only(section, key))
			warn(c, "%s: unknown option [%s] %s ignored%s%s%s",
			     where, section, key,
			     hint ? " (did you mean " : "", hint ? hint : "",
			     hint ? "?)" : "");
		return 0;
	}
	return set_opt(c, o, val, where, err);
}

static int load_file(gl_conf *c, const char *path, gl_err *err)
{
	FILE *f = fopen(path, "r");
	char line[8192], section[256] = "DEFAULT", where[512];
	int lineno = 0;

	if (!f)
		return failf(err, "cannot open config file %s: %s", path,
			     strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *s, *eq;
		lineno++;
		snprintf(where, sizeof where, "%s:%d", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			fclose(f);
			return failf(err, "%s: line too long", where);
		}
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (!end || end[1] != '\0' || end == s + 1) {
				fclose(f);
				return failf(err,
					     "%s: malformed section header '%s'",
					     where, s);
			}
			*end = '\0';
			snprintf(section, sizeof section, "%s", trim(s + 1));
			if (!known_section(section)) {
				const char *hint = nearest(NULL, section);
				warn(c,
				     "%s: unknown section [%s] ignored%s%s%s",
				     where, section,
				     hint ? " (did you mean [" : "",
				     hint ? hint : "", hint ? "]?)" : "");
			}
			continue;
		}
		eq = strpbrk(s, "=:");
		if (!eq) {
			fclose(f);
			return failf(err,
				     "%s: expected 'option = value', got '%s'",
				     where, s);
		}
		*eq = '\0';
		char *key = trim(s), *val = trim(eq + 1);
		if (!*key) {
			fclose(f);
			return failf(err, "%s: empty option name", where);
		}
		if (apply(c, section, key, val, where, err) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static void env_name(char *out, size_t len, const char *section,
		     const char *name)
{
	size_t n = (size_t)snprintf(out, len, "GLARED_%s_%s", section, name);
	for (size_t i = 0; i < n && i < len; i++) {
		unsigned char ch = (unsigned char)out[i];
		out[i] = (ch == ':' || ch == '-' || ch == '.')
				 ? '_'
				 : (char)toupper(ch);
	}
}

static int load_env(gl_conf *c, gl_err *err)
{
	char name[256];

	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
		const char *v;
		env_name(name, sizeof name, options[i].section,
			 options[i].name);
		v = getenv(name);
		if (v && set_opt(c, &options[i], v, name, err) < 0)
			return -1;
	}
	for (int t = 0; t < c->ntypes; t++) {
		for (int k = 0; type_keys[k]; k++) {
			char sec[300];
			const char *v;
			snprintf(sec, sizeof sec, "artifact_type:%s",
				 c->types[t].name);
			env_name(name, sizeof name, sec, type_keys[k]);
			v = getenv(name);
			if (v && set_type_opt(&c->types[t], type_keys[k], v,
					      name, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* dir/rel, or NULL when rel needs no change (absolute, empty, no dir). */
static char *join(const char *dir, const char *rel)
{
	char *out;

	if (!dir || !rel || !*rel || rel[0] == '/')
		return NULL;
	if (asprintf(&out, "%s/%s", dir, rel) < 0)
		return NULL;
	return out;
}

static void resolve(const char *dir, char **p)
{
	char *j = join(dir, *p);
	if (j) {
		free(*p);
		*p = j;
	}
}

/* resolve() for each element of a ':'-separated search list */
static void resolve_list(const char *dir, char **p)
{
	char *out = NULL, *save = NULL, *copy;
	size_t len = 0;
	FILE *f;

	if (!dir || !*p || !strchr(*p, ':')) {
		resolve(dir, p);
		return;
	}
	copy = strdup(*p);
	f = open_memstream(&out, &len);
	if (!copy || !f) {
		free(copy);
		if (f)
			fclose(f);
		free(out);
		return;
	}
	for (char *e = strtok_r(copy, ":", &save); e;
	     e = strtok_r(NULL, ":", &save)) {
		char *j = join(dir, e);
		fprintf(f, "%s%s", out && len ? ":" : "", j ? j : e);
		fflush(f);
		free(j);
	}
	fclose(f);
	free(copy);
	if (out) {
		free(*p);
		*p = out;
	}
}

/* Relative paths in a config file are relative to its directory, so a
 * server never depends on the directory it was started from. */
static void resolve_paths(gl_conf *c)
{
	char *db = c->db_connection;

	if (!c->dir)
		return;
	resolve(c->dir, &c->filesystem_store_datadir);
	resolve_list(c->dir, &c->types_path);
	resolve(c->dir, &c->lua_path);
	resolve(c->dir, &c->policy_file);
	resolve(c->dir, &c->log_file);
	resolve(c->dir, &c->healthcheck_disable_file);
	resolve(c->dir, &c->admin_socket);
	resolve(c->dir, &c->ks_cafile);
	resolve(c->dir, &c->ks_certfile);
	resolve(c->dir, &c->ks_keyfile);
	resolve(c->dir, &c->kc_cafile);
	resolve(c->dir, &c->kc_certfile);
	resolve(c->dir, &c->kc_keyfile);
	if (!db)
		return;
	if (!strncmp(db, "sqlite:///", 10) && db[10] != '/' && db[10]) {
		/* sqlite:///rel -> sqlite:////dir/rel */
		char *n;
		if (asprintf(&n, "sqlite:///%s/%s", c->dir, db + 10) >= 0) {
			free(c->db_connection);
			c->db_connection = n;
		}
	} else if (!strstr(db, "://") && strcmp(db, ":memory:") != 0) {
		resolve(c->dir, &c->db_connection);
	}
}

gl_conf *gl_conf_load(const char *path, gl_err *err)
{
	gl_conf *c = calloc(1, sizeof *c);

	if (!c) {
		failf(err, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
		if (options[i].kind != K_STR && !options[i].def)
			continue;
		if (set_opt(c, &options[i], options[i].def, "default", err) <
		    0)
			goto fail;
	}
	if (path) {
		char *real = realpath(path, NULL);
		c->path = strdup(path);
		if (real) {
			char *slash = strrchr(real, '/');
			if (slash == real)
				slash[1] = '\0';
			else if (slash)
				*slash = '\0';
			c->dir = real;
		}
		if (load_file(c, path, err) < 0)
			goto fail;
	}
	if (load_env(c, err) < 0)
		goto fail;
	resolve_paths(c);
	if (strcmp(c->metrics_access, "loopback") &&
	    strcmp(c->metrics_access, "admin") &&
	    strcmp(c->metrics_access, "open")) {
		failf(err,
		      "option [DEFAULT] metrics_access: '%s' is not one of "
		      "loopback, admin, open",
		      c->metrics_access);
		goto fail;
	}
	if (strcmp(c->flavor, "") && strcmp(c->flavor, "trusted-auth") &&
	    strcmp(c->flavor, "noauth") && strcmp(c->flavor, "keystone") &&
	    strcmp(c->flavor, "keycloak")) {
		failf(err,
		      "option [paste_deploy] flavor: '%s' is not one of "
		      "keystone, keycloak, noauth, trusted-auth (or empty)",
		      c->flavor);
		goto fail;
	}
	if (strcmp(c->external_location_verification, "fetch") &&
	    strcmp(c->external_location_verification, "trust")) {
		failf(err,
		      "option [DEFAULT] external_location_verification: '%s' is "
		      "not one of fetch, trust",
		      c->external_location_verification);
		goto fail;
	}
	if (c->upload_takeover_after <= 2 * c->upload_heartbeat) {
		failf(err,
		      "option [DEFAULT] upload_takeover_after (%d) must exceed "
		      "twice upload_heartbeat (%d)",
		      c->upload_takeover_after, c->upload_heartbeat);
		goto fail;
	}
	if (c->max_api_limit < c->default_api_limit) {
		failf(err,
		      "option [DEFAULT] default_api_limit (%d) exceeds "
		      "max_api_limit (%d)",
		      c->default_api_limit, c->max_api_limit);
		goto fail;
	}
	return c;
fail:
	gl_conf_free(c);
	return NULL;
}

void gl_conf_free(gl_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
		char *base = (char *)c;
		if (options[i].kind == K_STR)
			free(*(char **)(base + options[i].off));
		else if (options[i].kind == K_LIST)
			strlist_free((gl_strlist *)(base + options[i].off));
	}
	for (int i = 0; i < c->ntypes; i++) {
		free(c->types[i].name);
		free(c->types[i].default_store);
		free(c->types[i].external_download);
		free(c->types[i].external_location_verification);
		json_decref(c->types[i].raw);
	}
	free(c->types);
	free(c->path);
	free(c->dir);
	free(c);
}

const gl_type_conf *gl_conf_type(const gl_conf *c, const char *type)
{
	static gl_type_conf none = {
		.name = "",
		.max_uploaded_data = -1,
		.max_artifact_number = -1,
		.delayed_delete = -1,
	};
	for (int i = 0; i < c->ntypes; i++)
		if (!strcmp(c->types[i].name, type))
			return &c->types[i];
	return &none;
}
