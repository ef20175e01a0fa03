/* access.c - the access log line and request metrics (see access.h). */
#include "access.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include <http_parser.h>

/* The trusted proxies of the configuration this worker serves. */
static gl_netguard *proxies(const gl_conf *conf)
{
	static const gl_conf *for_conf;
	static gl_netguard *g;

	if (for_conf != conf) {
		gl_err err = { 0 };
		gl_netguard_free(g);
		g = conf->trusted_proxies.n
			    ? gl_netguard_new(&conf->trusted_proxies, &err)
			    : NULL;
		if (conf->trusted_proxies.n && !g)
			gl_error("trusted_proxies: %s", err.msg);
		for_conf = conf;
	}
	return g;
}

void gl_access_client(const gl_conf *conf, gl_http_req *r, char *out,
		      size_t len)
{
	const char *peer = gl_http_peer(r);
	const gl_netguard *g = proxies(conf);
	const char *xff;
	char buf[1024];

	snprintf(out, len, "%s", peer && *peer ? peer : "-");
	if (!g || !gl_netguard_allows(g, out))
		return;
	xff = gl_http_header(r, "X-Forwarded-For");
	if (!xff)
		return;
	snprintf(buf, sizeof buf, "%s", xff);
	/* right to left: the first hop that is not a trusted proxy */
	for (;;) {
		char *comma = strrchr(buf, ',');
		char *hop = comma ? comma + 1 : buf;
		while (*hop == ' ' || *hop == '\t')
			hop++;
		hop[strcspn(hop, " \t")] = '\0';
		if (*hop) {
			snprintf(out, len, "%.64s", hop);
			if (!gl_netguard_allows(g, hop))
				return;
		}
		if (!comma)
			return;
		*comma = '\0';
	}
}

void gl_access_complete(gl_http_req *r, void *arg)
{
	const gl_conf *conf = arg;
	gl_http_note *note = gl_http_note_of(r);
	int method = gl_http_method_id(r);
	const char *target = gl_http_target(r);
	char client[80];
	gl_access a;

	gl_access_client(conf, r, client, sizeof client);
	memset(&a, 0, sizeof a);
	a.client = client;
	a.user = note->user[0] ? note->user : "-";
	a.project = note->project[0] ? note->project : "-";
	a.method = method >= 0 ? http_method_str(method) : "-";
	a.target = *target ? target : "-";
	a.target_len = strlen(a.target);
	a.route = gl_metrics_route_name(note->route);
	a.request_id = gl_http_request_id(r)[0] ? gl_http_request_id(r) : "-";
	a.status = gl_http_status(r);
	a.aborted = gl_http_aborted(r);
	a.bytes = gl_http_resp_bytes(r);
	a.received = gl_http_body_received(r);
	a.ms = gl_http_elapsed_ms(r);
	gl_log_access(&a);
	gl_metrics_request(note->route, method, a.status, a.ms, a.received,
			   a.bytes);
	if (note->uploading) {
		note->uploading = 0;
		gl_metrics_uploads(-1);
	}
}
