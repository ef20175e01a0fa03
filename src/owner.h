/* owner.h - who this process is, and when the unfinished work of another
 * process may be taken over.
 *
 * Work in progress (an upload, a location being fetched) is a "saving"
 * blob record that names its owner: `node` ("host:pid", readable by
 * people and by records of older versions), `incarnation` (128 random
 * bits drawn when the process started, hex) and `heartbeat` (microseconds,
 * refreshed every upload_heartbeat seconds while the owner works).
 *
 * THE OWNERSHIP RULE (the only place it is decided; docs/storage.md,
 * "Uploads in progress and their owners"):
 *
 *   1. A record carrying this process's incarnation that the process
 *      still works on is never taken over, however old its heartbeat (the
 *      owner is alive by definition; it fails its own work if it must).
 *      One it let go of without restoring it (the database refused the
 *      restore) falls under rule 4: taken back once its heartbeat, which
 *      nobody refreshes any more, is stale.
 *   2. A record of this host whose incarnation differs but whose pid is
 *      this pid was written by a dead predecessor (pids are reused; the
 *      incarnation is not): taken over at once.
 *   3. A record of this host whose pid is not alive (kill(pid, 0) fails
 *      with ESRCH) is a dead process's: taken over at once.
 *   4. Anything else - another live process of this host (a sibling
 *      worker, another glared), another host, or a record without a
 *      readable owner - only once its heartbeat is older than
 *      upload_takeover_after (a hung owner, a node that died or lost the
 *      database). A record with no heartbeat at all counts as stale.
 *
 * Host names must be unique among the processes sharing a database (true
 * of machines, containers and pods alike); two hosts of one name would see
 * each other's live pids as rule 3 does not expect.
 */
#ifndef GL_OWNER_H
#define GL_OWNER_H

#include <stdint.h>
#include <jansson.h>

typedef struct gl_self {
	long pid;
	char host[64];
	char incarnation[33]; /* hex of 16 random bytes */
	char node[96];        /* "host:pid" */
} gl_self;

/* This process. Drawn on first use and again in a forked child (a child is
 * a new incarnation: it does not own its parent's work). */
const gl_self *gl_self_get(void);

/* Record this process as the owner of a saving record (node, incarnation,
 * heartbeat = now). */
void gl_owner_stamp(json_t *rec);

/* clang-format off */
typedef enum gl_owner_verdict {
	GL_OWNER_MINE,          /* rule 1: never */
	GL_OWNER_DEAD,          /* rules 2 and 3: at once */
	GL_OWNER_STALE,         /* rule 4, heartbeat too old: now */
	GL_OWNER_LIVE,          /* rule 4, heartbeat fresh: not yet */
} gl_owner_verdict;
/* clang-format on */

/* Judge a saving record by the rule above at time now_us; still_mine: the
 * judging process has the work in progress (its uploads, its location
 * registrations). */
gl_owner_verdict gl_owner_judge(const gl_self *self, const json_t *rec,
				int still_mine, int64_t now_us,
				int64_t takeover_after_us);

/* Is a record's `node` ("host:pid") of this process's host? */
int gl_owner_same_host(const gl_self *self, const char *node);

/* 1 if the verdict lets the caller take the record over. */
int gl_owner_may_take_over(gl_owner_verdict v);

#endif
