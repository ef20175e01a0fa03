/* idcache.c - identities and a bounded LRU of token verdicts (idcache.h).
 *
 * A chained hash table over the digest (its first bytes are as good a hash
 * as any) plus a doubly linked recency list: get moves an entry to the
 * front, put evicts from the back when full. */
#include "idcache.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

gl_ident *gl_ident_new(void)
{
	return gl_xcalloc(1, sizeof(gl_ident));
}

static char *dup_or_null(const char *s)
{
	return s ? gl_xstrdup(s) : NULL;
}

gl_ident *gl_ident_dup(const gl_ident *src)
{
	gl_ident *id = gl_ident_new();

	id->user_id = dup_or_null(src->user_id);
	id->user_name = dup_or_null(src->user_name);
	id->user_domain_id = dup_or_null(src->user_domain_id);
	id->user_domain_name = dup_or_null(src->user_domain_name);
	id->project_id = dup_or_null(src->project_id);
	id->project_name = dup_or_null(src->project_name);
	id->project_domain_id = dup_or_null(src->project_domain_id);
	id->project_domain_name = dup_or_null(src->project_domain_name);
	for (size_t i = 0; i < src->nroles; i++)
		gl_ident_add_role(id, src->roles[i]);
	id->expires = src->expires;
	return id;
}

void gl_ident_add_role(gl_ident *id, const char *role)
{
	id->roles = gl_xrealloc(id->roles,
				sizeof *id->roles * (id->nroles + 1));
	id->roles[id->nroles++] = gl_xstrdup(role);
}

void gl_ident_free(gl_ident *id)
{
	if (!id)
		return;
	free(id->user_id);
	free(id->user_name);
	free(id->user_domain_id);
	free(id->user_domain_name);
	free(id->project_id);
	free(id->project_name);
	free(id->project_domain_id);
	free(id->project_domain_name);
	for (size_t i = 0; i < id->nroles; i++)
		free(id->roles[i]);
	free(id->roles);
	free(id);
}

void gl_token_key(const char *tok, size_t len,
		  unsigned char key[GL_TOKEN_KEY_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(tok, len, key, &n, EVP_sha256(), NULL) != 1)
		gl_oom(); /* SHA-256 only fails without memory */
}

void gl_token_tag(const unsigned char key[GL_TOKEN_KEY_LEN], char out[16])
{
	snprintf(out, 16, "sha256:%02x%02x%02x%02x", key[0], key[1], key[2],
		 key[3]);
}

/* ---- the cache -------------------------------------------------------------- */

typedef struct entry {
	unsigned char key[GL_TOKEN_KEY_LEN];
	gl_ident *id; /* NULL: a refusal */
	char *why;
	time_t until;
	struct entry *chain;       /* same bucket */
	struct entry *prev, *next; /* recency: head is the newest */
} entry;

struct gl_idcache {
	entry **buckets;
	size_t nbuckets, n, max;
	entry *head, *tail;
};

gl_idcache *gl_idcache_new(size_t max)
{
	gl_idcache *c = gl_xcalloc(1, sizeof *c);

	c->max = max;
	c->nbuckets = 16;
	while (c->nbuckets < max && c->nbuckets < ((size_t)1 << 24))
		c->nbuckets <<= 1;
	c->buckets = gl_xcalloc(c->nbuckets, sizeof *c->buckets);
	return c;
}

static size_t bucket_of(const gl_idcache *c, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof h);
	return (size_t)(h & (c->nbuckets - 1));
}

static void unlink_lru(gl_idcache *c, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(gl_idcache *c, entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static entry **find(gl_idcache *c, const unsigned char *key)
{
	entry **pp = &c->buckets[bucket_of(c, key)];

	while (*pp && memcmp((*pp)->key, key, GL_TOKEN_KEY_LEN) != 0)
		pp = &(*pp)->chain;
	return pp;
}

static void drop(gl_idcache *c, entry **pp)
{
	entry *e = *pp;

	*pp = e->chain;
	unlink_lru(c, e);
	gl_ident_free(e->id);
	free(e->why);
	free(e);
	c->n--;
}

int gl_idcache_get(gl_idcache *c, const unsigned char *key, time_t now,
		   const gl_ident **id, const char **why)
{
	entry **pp = find(c, key);
	entry *e = *pp;

	if (!e)
		return GL_IDC_MISS;
	if (now >= e->until) {
		drop(c, pp);
		return GL_IDC_MISS;
	}
	unlink_lru(c, e);
	push_front(c, e);
	if (!e->id) {
		*why = e->why ? e->why : "refused";
		return GL_IDC_REFUSED;
	}
	*id = e->id;
	return GL_IDC_VALID;
}

void gl_idcache_put(gl_idcache *c, const unsigned char *key, gl_ident *id,
		    const char *why, time_t until)
{
	entry **pp;
	entry *e;

	if (c->max == 0) {
		gl_ident_free(id);
		return;
	}
	pp = find(c, key);
	if (*pp)
		drop(c, pp);
	while (c->n >= c->max && c->tail)
		drop(c, find(c, c->tail->key));
	e = gl_xcalloc(1, sizeof *e);
	memcpy(e->key, key, GL_TOKEN_KEY_LEN);
	e->id = id;
	e->why = !id && why ? gl_xstrdup(why) : NULL;
	e->until = until;
	pp = &c->buckets[bucket_of(c, key)];
	e->chain = *pp;
	*pp = e;
	push_front(c, e);
	c->n++;
}

size_t gl_idcache_count(const gl_idcache *c)
{
	return c->n;
}

void gl_idcache_free(gl_idcache *c)
{
	if (!c)
		return;
	while (c->head)
		drop(c, find(c, c->head->key));
	free(c->buckets);
	free(c);
}
