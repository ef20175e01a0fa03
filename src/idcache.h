/* idcache.h - who a token says the caller is, and the cache of answers.
 *
 * A gl_ident is what a validated token tells (Keystone's token body or an
 * OIDC token's claims). The cache keeps identities of valid tokens and,
 * briefly, the verdict on refused ones, so a busy client costs Keystone
 * one validation per token_cache_time instead of one per request.
 *
 * Keys are SHA-256 digests of the tokens: a token itself is never stored
 * (a memory dump or a debug print yields no usable credential), and the
 * first bytes of the digest make a stable tag for log lines. The cache is
 * bounded: at most `max` entries, the least recently used one goes first;
 * every entry carries an absolute wall-clock end (the caller picks it:
 * never past the token's own expiry) and a lookup past it is a miss.
 *
 * Used by auth.c, keystone.c and oidc.c. Uses OpenSSL (SHA-256).
 */
#ifndef GL_IDCACHE_H
#define GL_IDCACHE_H

#include <stddef.h>
#include <time.h>

#define GL_TOKEN_KEY_LEN 32

typedef struct gl_ident {
	char *user_id, *user_name, *user_domain_id, *user_domain_name;
	char *project_id, *project_name, *project_domain_id,
		*project_domain_name;
	char **roles;
	size_t nroles;
	time_t expires; /* the token's own end */
} gl_ident;

gl_ident *gl_ident_new(void); /* aborts when out of memory */
gl_ident *gl_ident_dup(const gl_ident *id);
void gl_ident_add_role(gl_ident *id, const char *role);
void gl_ident_free(gl_ident *id);

/* SHA-256 of the token, and "sha256:" + its first 8 hex digits for logs. */
void gl_token_key(const char *tok, size_t len,
		  unsigned char key[GL_TOKEN_KEY_LEN]);
void gl_token_tag(const unsigned char key[GL_TOKEN_KEY_LEN], char out[16]);

typedef struct gl_idcache gl_idcache;

gl_idcache *gl_idcache_new(size_t max); /* max 0: caches nothing */
void gl_idcache_free(gl_idcache *c);

enum { GL_IDC_MISS = 0, GL_IDC_VALID = 1, GL_IDC_REFUSED = 2 };
/* Look key up at wall-clock now. VALID: *id is the cached identity
 * (borrowed until the next call on c); REFUSED: *why is the reason the
 * token was refused; MISS: nothing, or an entry that ended (dropped). */
int gl_idcache_get(gl_idcache *c, const unsigned char *key, time_t now,
		   const gl_ident **id, const char **why);
/* Store the identity (taken over; NULL stores a refusal with why) until
 * the absolute time `until`. Replaces an entry of the same key. */
void gl_idcache_put(gl_idcache *c, const unsigned char *key, gl_ident *id,
		    const char *why, time_t until);
size_t gl_idcache_count(const gl_idcache *c);

#endif
