/* unit_engine.h - a real engine for a unit case: the shipped types plus
 * tests/types (the ones named are enabled), sqlite and blob files in a
 * fresh temp dir, an admin context. Run from the repository's root (as
 * `make unit` does). */
#ifndef GL_UNIT_ENGINE_H
#define GL_UNIT_ENGINE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core.h"
#include "engine.h"
#include "unit.h"

typedef struct unit_engine {
	char dir[64];
	char conf_path[128];
	gl_conf *conf;
	gl_policy *pol;
	struct event_base *base;
	gl_engine *e;
	gl_ctx ctx;
	gl_err err;
} unit_engine;

/* The engine, or NULL (f->err may say why); unit_engine_close either way. */
static inline gl_engine *unit_engine_open(unit_engine *f, const char *types)
{
	char cwd[512];
	FILE *fp;

	memset(f, 0, sizeof *f);
	if (!getcwd(cwd, sizeof cwd))
		return NULL;
	snprintf(f->dir, sizeof f->dir, "/tmp/glengine.XXXXXX");
	if (!mkdtemp(f->dir))
		return NULL;
	snprintf(f->conf_path, sizeof f->conf_path, "%s/glared.conf", f->dir);
	fp = fopen(f->conf_path, "w");
	if (!fp)
		return NULL;
	fprintf(fp,
		"[DEFAULT]\n"
		"enabled_artifact_types = %s\n"
		"types_path = %s/types:%s/tests/types\n"
		"lua_path = %s/lua\n"
		"[database]\n"
		"connection = sqlite:///%s/glare.db\n"
		"[glance_store]\n"
		"filesystem_store_datadir = %s/blobs\n",
		types, cwd, cwd, cwd, f->dir, f->dir);
	fclose(fp);
	f->conf = gl_conf_load(f->conf_path, &f->err);
	if (!f->conf)
		return NULL;
	f->pol = gl_policy_new();
	f->base = event_base_new();
	f->e = gl_engine_new(f->conf, f->pol, f->base, &f->err);
	gl_ctx_admin(&f->ctx, "test");
	return f->e;
}

static inline void unit_engine_close(unit_engine *f)
{
	gl_engine_free(f->e);
	gl_ctx_free(&f->ctx);
	if (f->base)
		event_base_free(f->base);
	gl_policy_free(f->pol);
	gl_conf_free(f->conf);
	if (f->dir[0])
		unit_rm_tree(f->dir);
}

#endif
