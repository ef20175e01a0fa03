/* server.h - `glared serve`: the master process and its workers.
 *
 * workers <= 1 serves in the calling process. With workers = N the master
 * forks N workers that each bind the port with SO_REUSEPORT and run their
 * own event loop, database connection and Lua state; the master only
 * forwards signals (TERM/INT stop, HUP reloads types) and restarts a worker
 * that dies unexpectedly.
 *
 * Used by cli.c. Uses libevent, http.c, api.c, engine.c, conf.c.
 */
#ifndef GL_SERVER_H
#define GL_SERVER_H

#include "conf.h"

/* The start-up line: version, config, database (credentials masked),
 * stores, types, flavor, workers, bind address. */
void gl_serve_summary(const gl_conf *conf, const char *host, int port);

/* Returns the process exit status. */
int gl_serve(gl_conf *conf, const char *host, int port);

#endif
