/* ctx.h - the request context (who is calling) as plain data.
 *
 * auth.c fills it from an HTTP request; the engine, the event outbox and
 * the console only read it, so they include this header and not the HTTP
 * layer's.
 *
 * Uses type.h (the Lua account), policy.h (credentials view).
 */
#ifndef GL_CTX_H
#define GL_CTX_H

#include <stddef.h>

#include "policy.h"
#include "type.h"

typedef struct gl_ctx {
	char *user_id;
	char *user_name;
	char *user_domain_id;
	char *project_id; /* owner of what the caller creates */
	char *project_name;
	char *project_domain_id;
	char **roles;
	size_t nroles;
	int is_admin;
	int read_only;
	int anonymous;
	char request_id[48];
	gl_lreq lua; /* what the request has spent in Lua */
} gl_ctx;

/* The request's Lua account. Accounting is not part of who is calling, so
 * it is kept up to date through a const context (contexts are never const
 * objects). */
gl_lreq *gl_ctx_lua(const gl_ctx *ctx);
/* Start a new account (the console: one per command). */
void gl_ctx_lua_reset(gl_ctx *ctx);

/* An admin context for internal work (scrubber, console). */
void gl_ctx_admin(gl_ctx *ctx, const char *who);
void gl_ctx_free(gl_ctx *ctx);
/* Borrowing view for policy checks. */
void gl_ctx_creds(const gl_ctx *ctx, gl_creds *out);

#endif
