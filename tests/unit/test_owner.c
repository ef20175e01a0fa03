/* test_owner.c - the ownership rule (owner.h) on real processes: this one,
 * a child that is still running and one that has exited. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "owner.h"
#include "unit.h"
#include "util.h"

#define SEC 1000000LL
#define AFTER (300 * SEC)

/* A saving record of owner host:pid (NULL: no node), incarnation inc (NULL:
 * none, as older versions wrote), heartbeat age_s seconds ago (< 0: none). */
static json_t *rec(const char *host, long pid, const char *inc, int64_t now,
		   int age_s)
{
	json_t *r = json_pack("{s:s}", "status", "saving");
	char node[128];

	if (host) {
		snprintf(node, sizeof node, "%s:%ld", host, pid);
		json_object_set_new(r, "node", json_string(node));
	}
	if (inc)
		json_object_set_new(r, "incarnation", json_string(inc));
	if (age_s >= 0)
		json_object_set_new(r, "heartbeat",
				    json_integer(now - age_s * SEC));
	return r;
}

/* Judged by a process that works on the record when it is its own. */
static gl_owner_verdict judge(json_t *r, int64_t now)
{
	gl_owner_verdict v = gl_owner_judge(gl_self_get(), r, 1, now, AFTER);
	json_decref(r);
	return v;
}

/* Judged by a process that works on nothing of the kind. */
static gl_owner_verdict judge_idle(json_t *r, int64_t now)
{
	gl_owner_verdict v = gl_owner_judge(gl_self_get(), r, 0, now, AFTER);
	json_decref(r);
	return v;
}

/* A pid that belonged to a process and no longer does. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

UNIT_TEST(self_identity)
{
	const gl_self *me = gl_self_get();
	char node[128];

	CHECK_INT(me->pid, getpid());
	CHECK_INT(strlen(me->incarnation), 32);
	CHECK(strspn(me->incarnation, "0123456789abcdef") == 32);
	snprintf(node, sizeof node, "%s:%ld", me->host, me->pid);
	CHECK_STR(me->node, node);
	CHECK(gl_self_get() == me); /* stable within the process */
}

UNIT_TEST(forked_child_is_a_new_incarnation)
{
	char mine[33], theirs[40] = "";
	int fds[2];
	pid_t pid;
	ssize_t n;

	snprintf(mine, sizeof mine, "%s", gl_self_get()->incarnation);
	CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		const gl_self *c = gl_self_get();
		char buf[40];
		int len = snprintf(buf, sizeof buf, "%s", c->incarnation);
		if (c->pid != (long)getpid())
			len = 0;
		_exit(write(fds[1], buf, (size_t)len) == len ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], theirs, sizeof theirs - 1);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	CHECK_INT(n, 32);
	CHECK(strcmp(theirs, mine) != 0);
	CHECK_STR(gl_self_get()->incarnation, mine); /* ours unchanged */
}

UNIT_TEST(stamp)
{
	json_t *r = json_object();
	int64_t before = gl_now_us();

	gl_owner_stamp(r);
	CHECK_STR(json_string_value(json_object_get(r, "node")),
		  gl_self_get()->node);
	CHECK_STR(json_string_value(json_object_get(r, "incarnation")),
		  gl_self_get()->incarnation);
	CHECK(json_integer_value(json_object_get(r, "heartbeat")) >= before);
	CHECK_INT(judge(r, gl_now_us()), GL_OWNER_MINE);
}

/* Rule 1: this process's own work, however old its heartbeat (the bug:
 * the periodic pass rolled back the running worker's long uploads). */
UNIT_TEST(own_work_is_never_taken)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();

	CHECK_INT(judge(rec(me->host, me->pid, me->incarnation, now, 0), now),
		  GL_OWNER_MINE);
	CHECK_INT(judge(rec(me->host, me->pid, me->incarnation, now, 3600),
			now),
		  GL_OWNER_MINE);
	CHECK_INT(judge(rec(me->host, me->pid, me->incarnation, now, -1), now),
		  GL_OWNER_MINE);
	CHECK(!gl_owner_may_take_over(GL_OWNER_MINE));
}

/* Rule 1, second half: a record of ours we let go of (its restore failed)
 * is taken back once nobody refreshes it, not at once (it may be about to
 * be restored) and not never (it would stay saving forever). */
UNIT_TEST(own_work_let_go_of_waits_for_stale_heartbeat)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();

	CHECK_INT(judge_idle(rec(me->host, me->pid, me->incarnation, now, 10),
			     now),
		  GL_OWNER_LIVE);
	CHECK_INT(judge_idle(rec(me->host, me->pid, me->incarnation, now, 301),
			     now),
		  GL_OWNER_STALE);
	/* what another process works on is not ours because we are idle */
	CHECK_INT(judge_idle(rec("elsewhere", 1, "dd", now, 10), now),
		  GL_OWNER_LIVE);
	CHECK_INT(judge_idle(rec(me->host, dead_pid(), "dd", now, 10), now),
		  GL_OWNER_DEAD);
}

/* Rule 2: this host and pid, another incarnation (or none, an older
 * version's record): a dead predecessor whose pid came back. */
UNIT_TEST(predecessor_with_our_pid)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();

	CHECK_INT(judge(rec(me->host, me->pid,
			    "0123456789abcdef0123456789abcdef", now, 0),
			now),
		  GL_OWNER_DEAD);
	CHECK_INT(judge(rec(me->host, me->pid, NULL, now, 0), now),
		  GL_OWNER_DEAD);
	CHECK(gl_owner_may_take_over(GL_OWNER_DEAD));
}

/* Rule 3: a process of this host that is gone, however fresh its
 * heartbeat. */
UNIT_TEST(dead_process_of_this_host)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();
	pid_t gone = dead_pid();

	CHECK_INT(judge(rec(me->host, gone, "aa", now, 0), now),
		  GL_OWNER_DEAD);
	CHECK_INT(judge(rec(me->host, gone, NULL, now, 0), now),
		  GL_OWNER_DEAD);
}

/* Rule 4: a live sibling on this host waits for its heartbeat to go
 * stale. */
UNIT_TEST(live_sibling_waits_for_stale_heartbeat)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();
	pid_t sib = fork();

	if (sib == 0) {
		pause();
		_exit(0);
	}
	CHECK(sib > 0);
	{
		gl_owner_verdict fresh = judge(rec(me->host, sib, "bb", now,
						   1),
					       now);
		gl_owner_verdict edge = judge(rec(me->host, sib, "bb", now,
						  300),
					      now);
		gl_owner_verdict stale = judge(rec(me->host, sib, "bb", now,
						   301),
					       now);
		gl_owner_verdict none = judge(rec(me->host, sib, "bb", now,
						  -1),
					      now);
		kill(sib, SIGKILL);
		waitpid(sib, NULL, 0);
		CHECK_INT(fresh, GL_OWNER_LIVE);
		CHECK_INT(edge, GL_OWNER_LIVE);
		CHECK_INT(stale, GL_OWNER_STALE);
		CHECK_INT(none, GL_OWNER_STALE);
	}
	/* once it is gone, at once */
	CHECK_INT(judge(rec(me->host, sib, "bb", now, 1), now), GL_OWNER_DEAD);
	CHECK(!gl_owner_may_take_over(GL_OWNER_LIVE));
	CHECK(gl_owner_may_take_over(GL_OWNER_STALE));
}

/* Rule 4: another host's pids mean nothing here, not even ours. */
UNIT_TEST(other_host_waits_for_stale_heartbeat)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();
	char longer[80], shorter[80];

	CHECK_INT(judge(rec("elsewhere", me->pid, NULL, now, 10), now),
		  GL_OWNER_LIVE);
	CHECK_INT(judge(rec("elsewhere", dead_pid(), "cc", now, 10), now),
		  GL_OWNER_LIVE);
	CHECK_INT(judge(rec("elsewhere", me->pid, "cc", now, 400), now),
		  GL_OWNER_STALE);
	/* a host whose name merely starts or ends like ours */
	snprintf(longer, sizeof longer, "%sx", me->host);
	CHECK_INT(judge(rec(longer, me->pid, NULL, now, 10), now),
		  GL_OWNER_LIVE);
	snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(me->host) - 1,
		 me->host);
	CHECK_INT(judge(rec(shorter, me->pid, NULL, now, 10), now),
		  GL_OWNER_LIVE);
}

/* Records without a readable owner: only the heartbeat can tell. */
UNIT_TEST(unreadable_owner)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();
	json_t *r;

	CHECK_INT(judge(rec(NULL, 0, NULL, now, 10), now), GL_OWNER_LIVE);
	CHECK_INT(judge(rec(NULL, 0, NULL, now, -1), now), GL_OWNER_STALE);
	r = rec(NULL, 0, NULL, now, 10);
	json_object_set_new(r, "node", json_sprintf("%s:abc", me->host));
	CHECK_INT(judge(r, now), GL_OWNER_LIVE);
	r = rec(NULL, 0, NULL, now, 10);
	json_object_set_new(r, "node", json_sprintf("%s:-5", me->host));
	CHECK_INT(judge(r, now), GL_OWNER_LIVE);
	r = rec(NULL, 0, NULL, now, 10);
	json_object_set_new(r, "node", json_string(me->host)); /* no pid */
	CHECK_INT(judge(r, now), GL_OWNER_LIVE);
	r = rec(NULL, 0, NULL, now, 10);
	json_object_set_new(r, "node", json_integer(5));
	CHECK_INT(judge(r, now), GL_OWNER_LIVE);
}

UNIT_SUITE(owner, UNIT_CASE(self_identity),
	   UNIT_CASE(forked_child_is_a_new_incarnation), UNIT_CASE(stamp),
	   UNIT_CASE(own_work_is_never_taken),
	   UNIT_CASE(own_work_let_go_of_waits_for_stale_heartbeat),
	   UNIT_CASE(predecessor_with_our_pid),
	   UNIT_CASE(dead_process_of_this_host),
	   UNIT_CASE(live_sibling_waits_for_stale_heartbeat),
	   UNIT_CASE(other_host_waits_for_stale_heartbeat),
	   UNIT_CASE(unreadable_owner));
