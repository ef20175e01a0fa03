/* owner.c - this process's identity and the ownership rule (owner.h). */
#include "owner.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static gl_self self;

const gl_self *gl_self_get(void)
{
	unsigned char b[16];
	size_t got = 0;

	if (self.pid == (long)getpid())
		return &self;
	/* first use, or a forked child: a new incarnation */
	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* no randomness: identities could collide */
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(self.incarnation + 2 * i, 3, "%02x", b[i]);
	snprintf(self.host, sizeof self.host, "localhost");
	gethostname(self.host, sizeof self.host - 1);
	self.host[sizeof self.host - 1] = '\0';
	self.pid = (long)getpid();
	snprintf(self.node, sizeof self.node, "%s:%ld", self.host, self.pid);
	return &self;
}

void gl_owner_stamp(json_t *rec)
{
	const gl_self *me = gl_self_get();

	json_object_set_new(rec, "node", json_string(me->node));
	json_object_set_new(rec, "incarnation", json_string(me->incarnation));
	json_object_set_new(rec, "heartbeat", json_integer(gl_now_us()));
}

int gl_owner_same_host(const gl_self *me, const char *node)
{
	const char *colon = node ? strrchr(node, ':') : NULL;
	size_t n = colon ? (size_t)(colon - node) : 0;

	return colon && n == strlen(me->host) && !strncmp(node, me->host, n);
}

gl_owner_verdict gl_owner_judge(const gl_self *me, const json_t *rec,
				int still_mine, int64_t now_us,
				int64_t takeover_after_us)
{
	const char *node = json_string_value(json_object_get(rec, "node"));
	const char *inc = json_string_value(
		json_object_get(rec, "incarnation"));
	json_t *hb = json_object_get(rec, "heartbeat");
	char *end;
	long pid;

	/* 1. our own, whatever the heartbeat says; or let go of: rule 4 */
	if (inc && !strcmp(inc, me->incarnation)) {
		if (still_mine)
			return GL_OWNER_MINE;
	} else if (gl_owner_same_host(me, node)) {
		const char *colon = strrchr(node, ':');

		errno = 0;
		pid = strtol(colon + 1, &end, 10);
		if (!errno && end != colon + 1 && !*end && pid > 0) {
			/* 2. our pid, another incarnation: a predecessor */
			if (pid == me->pid)
				return GL_OWNER_DEAD;
			/* 3. a process of this host that is gone */
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
				return GL_OWNER_DEAD;
		}
	}
	/* 4. alive, elsewhere or unknown: the heartbeat decides */
	if (!json_is_integer(hb) ||
	    now_us - json_integer_value(hb) > takeover_after_us)
		return GL_OWNER_STALE;
	return GL_OWNER_LIVE;
}

int gl_owner_may_take_over(gl_owner_verdict v)
{
	return v == GL_OWNER_DEAD || v == GL_OWNER_STALE;
}
