/* conf.h - glared's configuration: Glare's own INI options.
 *
 * The file format and option names are Glare's (glare.conf), so existing
 * deployments carry over. Every known option is described once in a table
 * in conf.c (section, name, kind, default, help); unknown options are
 * ignored with a warning, malformed values stop start-up with a message
 * naming file, line and option. An environment variable
 * GLARED_<SECTION>_<OPTION> (upper case, ':' and '-' as '_') overrides one
 * option, e.g. GLARED_DEFAULT_BIND_PORT=9595.
 *
 * [artifact_type:<name>] sections keep their standard options typed and
 * every key also as a raw string, for the options a type file declares.
 *
 * Used by cli.c and every layer that needs settings. Uses jansson (raw
 * per-type options) and log.c.
 */
#ifndef GL_CONF_H
#define GL_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "err.h"

typedef struct gl_strlist {
	char **v;
	int n;
} gl_strlist;

typedef struct gl_type_conf {
	char *name;
	int64_t max_uploaded_data;            /* -1 unlimited */
	int64_t max_artifact_number;          /* -1 unlimited */
	int delayed_delete;                   /* -1: use [DEFAULT] */
	char *default_store;                  /* NULL: use [glance_store] */
	char *external_download;              /* "redirect" | "proxy" */
	char *external_location_verification; /* NULL: [DEFAULT] */
	/* watched external locations (glared verify): seconds between
	 * checks of a blob and between its full re-hashes; 0 unset */
	int external_location_check_interval;
	int external_location_rehash_interval;
	json_t *raw; /* every key of the section, as strings */
} gl_type_conf;

typedef struct gl_conf {
	char *path;
	char *dir;    /* the config file's directory (absolute) or NULL */
	int warnings; /* warnings while loading (check-config fails) */
	/* [DEFAULT] */
	char *bind_host;
	int bind_port;
	int workers;
	gl_strlist enabled_artifact_types;
	gl_strlist custom_artifact_types_modules;
	char *types_path;
	char *lua_path;
	int64_t max_uploaded_data;
	int64_t max_artifact_number;
	int delayed_delete;
	int allow_anonymous_access;
	int default_api_limit;
	int max_api_limit;
	int debug;
	int max_header_line;
	int max_header_size;
	int http_keepalive;
	int client_socket_timeout;
	int header_timeout;
	int first_byte_timeout;
	int max_connections;
	int max_connections_per_client;
	int shutdown_timeout;
	int64_t max_json_body;
	/* limits on client JSON checked before any work (docs/security.md) */
	int max_json_depth;
	int64_t max_json_values;
	int max_patch_operations;
	int64_t lua_memory_limit;
	int64_t lua_instruction_limit; /* per request, all types */
	int64_t lua_time_limit;        /* ms of Lua per request */
	char *admin_socket;
	/* logging and the operator's view */
	char *log_file;             /* NULL: stderr */
	int use_json;               /* one JSON object per log line */
	gl_strlist trusted_proxies; /* peers whose X-Forwarded-For counts */
	char *metrics_access;       /* loopback | admin | open */
	/* external locations */
	char *external_location_verification; /* fetch | trust */
	gl_strlist external_location_allowed_networks;
	int fetch_connect_timeout;
	int fetch_timeout;
	int fetch_low_speed_limit;
	int fetch_low_speed_time;
	int fetch_max_redirects;
	int fetch_max_concurrent;
	/* uploads in progress: heartbeat, and takeover by another node */
	int upload_heartbeat;
	int upload_takeover_after;
	/* notifications: oslo.messaging's options, as Glare reads them */
	char *transport_url; /* [DEFAULT] */
	char *glare_publisher_id;
	char *control_exchange;
	gl_strlist notification_driver; /* [oslo_messaging_notifications] */
	char *notification_transport_url;
	gl_strlist notification_topics;
	int amqp_durable_queues; /* [oslo_messaging_rabbit] */
	int amqp_auto_delete;
	int rabbit_heartbeat;
	/* [events]: the outbox, its delivery, webhooks (glared's own) */
	int events_deliver;
	int events_poll_interval;
	int events_claim_timeout;
	int webhook_timeout;
	int webhook_max_concurrent;
	int webhook_retry_period;
	int events_retry_initial_ms;
	int events_retry_max_ms;
	int events_delivered_retention;
	int events_failed_retention;
	int events_max_age;
	int max_subscriptions;
	int amqp_queue_size;
	int amqp_confirm_timeout;
	int amqp_connect_timeout;
	/* [paste_deploy] */
	char *flavor;
	/* [keystone_authtoken] (flavor = keystone), auth_token's names */
	char *ks_www_authenticate_uri;
	char *ks_auth_uri; /* the old name of the one above */
	char *ks_auth_url;
	char *ks_auth_type;
	char *ks_username;
	char *ks_password;
	char *ks_project_name;
	char *ks_user_domain_name;
	char *ks_user_domain_id;
	char *ks_project_domain_name;
	char *ks_project_domain_id;
	char *ks_region_name;
	char *ks_interface;      /* catalog interface checks go to */
	int ks_token_cache_time; /* s; <= 0 caches nothing */
	int ks_token_cache_size; /* entries (glared's) */
	char *ks_cafile;
	char *ks_certfile;
	char *ks_keyfile;
	int ks_insecure;
	int ks_http_connect_timeout;
	int ks_http_request_max_retries;
	/* [keycloak_oidc] (flavor = keycloak) */
	char *kc_auth_url;
	char *kc_user_info_endpoint_url;
	int kc_token_cache_time;
	int kc_token_cache_size;
	char *kc_cafile;
	char *kc_certfile;
	char *kc_keyfile;
	int kc_insecure;
	char *kc_audience;            /* glared's: required aud / azp */
	int kc_leeway;                /* glared's: clock skew, s */
	int kc_use_userinfo;          /* glared's: ask userinfo as Glare did */
	int kc_jwks_cache_time;       /* glared's: key set kept, s */
	int kc_jwks_refetch_interval; /* glared's: unknown-kid refetch gap */
	int kc_http_connect_timeout;
	/* [database] */
	char *db_connection;
	char *sqlite_durability; /* group | full | normal */
	int db_max_pool_size;    /* PostgreSQL connections per worker */
	int db_blocking_queries; /* wait for PostgreSQL on the loop */
	/* [glance_store] */
	char *filesystem_store_datadir;
	char *default_store;
	char *s3_store_host; /* endpoint URL, e.g. http://127.0.0.1:8080 */
	char *s3_store_region;
	char *s3_store_bucket;
	char *s3_store_access_key;
	char *s3_store_secret_key;
	char *s3_store_prefix; /* key prefix inside the bucket */
	int s3_store_timeout;
	/* [oslo_policy] */
	char *policy_file;
	/* [healthcheck] */
	char *healthcheck_disable_file;
	/* [scrubber] */
	int scrub_time;
	int scrub_pool_size;
	int wakeup_time;
	/* [artifact_type:<name>] */
	gl_type_conf *types;
	int ntypes;
} gl_conf;

/* Load defaults, then the file (NULL: defaults only), then the environment.
 * Returns NULL with err filled on a malformed file or value. */
gl_conf *gl_conf_load(const char *path, gl_err *err);
void gl_conf_free(gl_conf *c);

/* The per-type settings, or a static all-defaults entry. Never NULL. */
const gl_type_conf *gl_conf_type(const gl_conf *c, const char *type);

/* Helpers shared with the policy and quota parsers. */
int gl_conf_parse_bool(const char *s, int *out);
int gl_conf_parse_int64(const char *s, int64_t *out);

#endif
