/* console_front.c - the `glared console` front end (see console.h and
 * docs/console.md): lua.c's REPL (the `return` prefix for expressions,
 * "<eof>" marking an incomplete statement, a message handler with a
 * traceback, Ctrl-C through a hook set from the signal handler) over
 * libedit with history and tab completion, -e chunks and scripts, run
 * here on a console state of console.c (direct) or by the server over the
 * admin socket (--attach; protocol in admin.h).
 */
#include "console.h"
#include "admin.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>
#include <lualib.h>

/* Ctrl-C: the handler sets gl_console_interrupted and, as lua.c's
 * laction, a hook on the state that is running a chunk. */
static lua_State *volatile hook_target;

#define HISTORY_MAX 1000
#define PROMPT1 "glared> "
#define PROMPT2 "glared>> "

static void ret_hook(lua_State *L, lua_Debug *ar)
{
	if (ar->event == LUA_HOOKRET)
		gl_console_keep_locals(L, ar);
}

/* The attach client's connection: blocking I/O with a poll loop, so a
 * Ctrl-C turns into a cancel message while a reply is awaited. */
typedef struct client {
	int fd;
	char buf[65536];
	size_t off, len;
	int cancel_sent;
	int timeout;
} client;

typedef struct front {
	gl_conf *conf;
	const gl_console_opts *o;
	lua_State *L;  /* compiles; in direct mode also runs */
	gl_console *c; /* direct mode */
	client *cl;    /* attach mode */
	int repl;      /* in the REPL: errors without the program name */
	int tty;       /* reading a terminal (libedit, history) */
	int failed;
	int status; /* exit status */
	char *hist;
	const char *where; /* for the banner */
} front;

static void lstop(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

static void on_sigint(int sig)
{
	int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
	lua_State *L = hook_target;

	gl_console_interrupted = 1;
	/* lua.c's laction: only a hook is set here; the hook raises */
	if (L)
		lua_sethook(L, lstop, flag, 1);
}

static void install_sigint(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocked read returns EINTR and sees the flag */
	sigaction(SIGINT, &sa, NULL);
}

/* Drop the "[C]: in ?" lines at the bottom of a traceback: they are the
 * console's own frames, not the operator's. */
static void trim_traceback(lua_State *L)
{
	size_t n;
	const char *s = lua_tolstring(L, -1, &n);
	static const char tail[] = "\n\t[C]: in ?";
	size_t tl = sizeof tail - 1;
	size_t end = n;

	while (end >= tl && !memcmp(s + end - tl, tail, tl))
		end -= tl;
	if (end != n) {
		lua_pushlstring(L, s, end);
		lua_remove(L, -2);
	}
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
				      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	trim_traceback(L);
	return 1;
}

static void report(front *f, const char *msg)
{
	fflush(stdout);
	if (f->repl)
		fprintf(stderr, "%s\n", msg);
	else
		fprintf(stderr, "glared: %s\n", msg);
	fflush(stderr);
}

/* [-n, +r] Run the function below its n arguments, Ctrl-C armed. */
static int docall(front *f, int narg, int nres)
{
	lua_State *L = f->L;
	int base = lua_gettop(L) - narg, st;

	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	gl_console_interrupted = 0;
	hook_target = L;
	if (f->c)
		lua_sethook(L, ret_hook, LUA_MASKRET, 0);
	st = lua_pcall(L, narg, nres, base);
	hook_target = NULL;
	lua_sethook(L, NULL, 0, 0);
	gl_console_interrupted = 0;
	lua_remove(L, base);
	return st;
}

/* ---- the attach client -------------------------------------------------- */

static int cl_fill(client *cl)
{
	if (cl->off > 0) {
		memmove(cl->buf, cl->buf + cl->off, cl->len - cl->off);
		cl->len -= cl->off;
		cl->off = 0;
	}
	for (;;) {
		struct pollfd p = { .fd = cl->fd, .events = POLLIN };
		ssize_t n;
		int r;

		if (gl_console_interrupted && !cl->cancel_sent) {
			static const char cancel[] = "{\"op\": \"cancel\"}\n";
			cl->cancel_sent = 1;
			gl_write_all(cl->fd, cancel, sizeof cancel - 1);
		}
		r = poll(&p, 1, 200);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		if (cl->len == sizeof cl->buf)
			return -1;
		n = read(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		cl->len += (size_t)n;
		return 0;
	}
}

/* A header line, parsed. NULL when the connection failed. */
static json_t *cl_header(client *cl)
{
	for (;;) {
		char *nl = memchr(cl->buf + cl->off, '\n', cl->len - cl->off);
		if (nl) {
			json_t *j = json_loadb(cl->buf + cl->off,
					       (size_t)(nl - cl->buf) -
						       cl->off,
					       0, NULL);
			cl->off = (size_t)(nl - cl->buf) + 1;
			return j;
		}
		if (cl_fill(cl) < 0)
			return NULL;
	}
}

/* n payload bytes to a file, or into *mem (malloc'ed, NUL-terminated). */
static int cl_payload(client *cl, size_t n, FILE *to, char **mem)
{
	size_t got = 0;

	if (mem) {
		*mem = malloc(n + 1);
		if (!*mem)
			return -1;
	}
	while (got < n) {
		size_t avail = cl->len - cl->off, take;
		if (!avail) {
			if (cl_fill(cl) < 0)
				return -1;
			continue;
		}
		take = avail < n - got ? avail : n - got;
		if (mem)
			memcpy(*mem + got, cl->buf + cl->off, take);
		else
			fwrite(cl->buf + cl->off, 1, take, to);
		cl->off += take;
		got += take;
	}
	if (mem)
		(*mem)[n] = '\0';
	return 0;
}

static int cl_connect(client *cl, const char *path, gl_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *hello;

	if (strlen(path) >= sizeof sa.sun_path)
		return gl_fail(err, 400, NULL, "socket path too long: %s",
			       path);
	strcpy(sa.sun_path, path);
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0 ||
	    connect(cl->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return gl_fail(err, 503, NULL,
			       "cannot connect to %s: %s (is the "
			       "server running with this admin_socket?)",
			       path, strerror(errno));
	hello = cl_header(cl);
	if (!hello || json_integer_value(json_object_get(hello, "protocol")) !=
			      GL_ADMIN_PROTOCOL) {
		const char *e = json_string_value(
			json_object_get(hello, "error"));
		gl_fail(err, 502, NULL, "%s: %s", path,
			e ? e
			  : "not a glared admin socket (or another protocol "
			    "version)");
		json_decref(hello);
		return -1;
	}
	json_decref(hello);
	return 0;
}

/* Send a chunk, print the reply. 0 ok, 1 the chunk failed, -1 the
 * connection is gone. */
static int cl_run(front *f, const char *code, size_t len, const char *name,
		  int print, const char *script, char **args, int nargs)
{
	client *cl = f->cl;
	json_t *req = json_pack("{s:s, s:I, s:s, s:b, s:i}", "op", "run",
				"length", (json_int_t)len, "name", name,
				"print", print, "timeout", cl->timeout);
	json_t *rep, *a;
	char *hdr, *err = NULL;
	size_t nout, nerr;
	int ok, rc;

	if (!req) {
		report(f, "cannot encode the request (chunk name not UTF-8?)");
		return 1;
	}
	if (script) {
		a = json_array();
		for (int i = 0; i < nargs; i++)
			if (json_array_append_new(a, json_string(args[i])) < 0)
				break;
		if (json_array_size(a) < (size_t)nargs ||
		    json_object_set_new(req, "script", json_string(script))) {
			json_decref(a);
			json_decref(req);
			report(f, "cannot encode the request (script name or "
				  "argument not UTF-8?)");
			return 1;
		}
		json_object_set_new(req, "args", a);
	}
	hdr = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	gl_console_interrupted = 0;
	cl->cancel_sent = 0;
	rc = !hdr || gl_write_all(cl->fd, hdr, strlen(hdr)) < 0 ||
	     gl_write_all(cl->fd, "\n", 1) < 0 ||
	     gl_write_all(cl->fd, code, len) < 0;
	free(hdr);
	if (rc) {
		report(f, "the server closed the admin connection");
		return -1;
	}
	rep = cl_header(cl);
	if (!rep) {
		report(f, "the server closed the admin connection");
		return -1;
	}
	ok = json_is_true(json_object_get(rep, "ok"));
	nout = (size_t)json_integer_value(json_object_get(rep, "output"));
	nerr = (size_t)json_integer_value(json_object_get(rep, "error"));
	json_decref(rep);
	if (cl_payload(cl, nout, stdout, NULL) < 0 ||
	    cl_payload(cl, nerr, NULL, &err) < 0) {
		free(err);
		report(f, "the server closed the admin connection");
		return -1;
	}
	fflush(stdout);
	if (!ok)
		report(f, err);
	free(err);
	gl_console_interrupted = 0;
	return ok ? 0 : 1;
}

/* ---- running chunks ----------------------------------------------------- */

/* Run a chunk here or on the server. print: show the results as the REPL
 * does. script/args: set `arg` and pass the args as `...`. Returns 0, or
 * 1 after reporting the error. */
static int run_chunk(front *f, const char *code, size_t len, const char *name,
		     int print, const char *script, char **args, int nargs)
{
	lua_State *L = f->L;
	int st, base, n;

	if (f->cl) {
		int rc = cl_run(f, code, len, name, print, script, args,
				nargs);
		if (rc < 0)
			f->status = 1;
		return rc ? 1 : 0;
	}
	base = lua_gettop(L);
	st = luaL_loadbufferx(L, code, len, name, "t");
	if (st == LUA_OK && !script)
		gl_console_prepare_chunk(L, -1);
	if (st == LUA_OK) {
		if (script) {
			lua_createtable(L, nargs, 1);
			lua_pushstring(L, script);
			lua_rawseti(L, -2, 0);
			for (int i = 0; i < nargs; i++) {
				lua_pushstring(L, args[i]);
				lua_rawseti(L, -2, i + 1);
			}
			lua_setglobal(L, "arg");
			luaL_checkstack(L, nargs, "too many arguments");
			for (int i = 0; i < nargs; i++)
				lua_pushstring(L, args[i]);
		}
		st = docall(f, script ? nargs : 0, LUA_MULTRET);
	}
	if (st != LUA_OK) {
		report(f, lua_tostring(L, -1));
		lua_settop(L, base);
		return 1;
	}
	n = lua_gettop(L) - base;
	if (print && n > 0) {
		lua_pushcfunction(L, gl_console_format_values);
		lua_insert(L, base + 1);
		if (lua_pcall(L, n, 1, 0) != LUA_OK) {
			report(f, lua_tostring(L, -1));
			lua_settop(L, base);
			return 1;
		}
		fwrite(lua_tostring(L, -1), 1, lua_rawlen(L, -1), stdout);
		fputc('\n', stdout);
	}
	fflush(stdout);
	lua_settop(L, base);
	return 0;
}

/* ---- the REPL ----------------------------------------------------------- */

static void history_open(front *f)
{
	const char *h = getenv("GLARED_HISTORY"), *home = getenv("HOME");

	if (h && *h)
		f->hist = strdup(h);
	else if (home && *home &&
		 asprintf(&f->hist, "%s/.glared_history", home) < 0)
		f->hist = NULL;
	using_history();
	stifle_history(HISTORY_MAX);
	if (f->hist)
		read_history(f->hist);
}

static void history_add(front *f, const char *line)
{
	HIST_ENTRY *last;

	if (!*line)
		return;
	last = history_length > 0
		       ? history_get(history_base + history_length - 1)
		       : NULL;
	if (last && last->line && !strcmp(last->line, line))
		return;
	add_history(line);
	if (!f->hist)
		return;
	/* written each time: an os.exit() or a kill loses nothing; the
	 * history may hold secrets, so owner only */
	if (write_history(f->hist) == 0) {
		struct stat st;
		/* GLARED_HISTORY=/dev/null turns history off: leave
		 * anything but a regular file alone */
		if (stat(f->hist, &st) == 0 && S_ISREG(st.st_mode))
			chmod(f->hist, 0600);
	}
}

/* [-0, +1] Read a line and push it. 1 ok, 0 end of input, -1 Ctrl-C. */
static int pushline(front *f, int first)
{
	lua_State *L = f->L;
	const char *prompt = first ? PROMPT1 : PROMPT2;
	char *line = NULL;
	size_t len;

	gl_console_interrupted = 0;
	if (f->tty) {
		line = readline(prompt);
		if (!line) {
			if (!gl_console_interrupted)
				return 0;
			fputc('\n', stdout);
			fflush(stdout);
			return -1;
		}
		history_add(f, line);
	} else {
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0) {
			free(line);
			if (gl_console_interrupted)
				return -1;
			return 0;
		}
	}
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	lua_pushlstring(L, line, len);
	free(line);
	return 1;
}

/* The line on top as an expression: "return <line>;" replaces it if that
 * compiles (then the values print, as in lua.c). */
static int addreturn(lua_State *L)
{
	const char *line = lua_tostring(L, -1);
	const char *ret = lua_pushfstring(L, "return %s;", line);

	if (luaL_loadbufferx(L, ret, strlen(ret), "=stdin", "t") == LUA_OK) {
		lua_pop(L, 1);
		lua_remove(L, -2);
		return 1;
	}
	lua_pop(L, 2);
	return 0;
}

/* A syntax error that ends at "<eof>" only wants more lines. */
static int incomplete(lua_State *L, int status)
{
	static const char mark[] = "<eof>";
	size_t n, ml = sizeof mark - 1;
	const char *msg;

	if (status != LUA_ERRSYNTAX)
		return 0;
	msg = lua_tolstring(L, -1, &n);
	if (n >= ml && !strcmp(msg + n - ml, mark)) {
		lua_pop(L, 1);
		return 1;
	}
	return 0;
}

/* Read continuation lines until the statement on top is complete. LUA_OK
 * (the statement on top), a syntax error (message above the statement),
 * or -1 for Ctrl-C / end of input in the middle. */
static int multiline(front *f)
{
	lua_State *L = f->L;

	for (;;) {
		size_t len;
		const char *b = lua_tolstring(L, -1, &len);
		int st = luaL_loadbufferx(L, b, len, "=stdin", "t"), r;

		if (st == LUA_OK) {
			lua_pop(L, 1);
			return LUA_OK;
		}
		if (!incomplete(L, st))
			return st;
		r = pushline(f, 0);
		if (r <= 0) {
			if (r == 0)
				report(f, "incomplete statement at the end of "
					  "the input");
			return -1;
		}
		lua_pushliteral(L, "\n");
		lua_insert(L, -2);
		lua_concat(L, 3);
	}
}

enum { CMD_NONE, CMD_HELP, CMD_EXIT };

/* The REPL's own words, alone on a line: help, exit, quit. */
static int repl_command(const char *line)
{
	char w[16];
	size_t n;

	while (*line == ' ' || *line == '\t')
		line++;
	n = strcspn(line, " \t");
	if (n >= sizeof w || line[n + strspn(line + n, " \t")])
		return CMD_NONE;
	memcpy(w, line, n);
	w[n] = '\0';
	if (!strcmp(w, "help") || !strcmp(w, "help()") || !strcmp(w, "?"))
		return CMD_HELP;
	if (!strcmp(w, "exit") || !strcmp(w, "quit") || !strcmp(w, "exit()") ||
	    !strcmp(w, "quit()"))
		return CMD_EXIT;
	return CMD_NONE;
}

/* ---- Tab completion: Lua globals, session locals, and table members
 * (glare.*) of the word before the cursor, instead of file names. In
 * attach mode the names come from a local state that knows the glare.*
 * API by name (the values live in the server). */
static front *completing;
static char **cands;
static size_t ncands;

static void cands_clear(void)
{
	for (size_t i = 0; i < ncands; i++)
		free(cands[i]);
	free(cands);
	cands = NULL;
	ncands = 0;
}

static void cand_add(const char *prefix, const char *key, int is_fn)
{
	char **n = realloc(cands, sizeof *n * (ncands + 1));
	if (!n)
		return;
	cands = n;
	if (asprintf(&cands[ncands], "%s%s%s", prefix, key,
		     is_fn ? "(" : "") >= 0)
		ncands++;
}

/* Add the string keys of the table on top that start with part. */
static void cands_from(lua_State *L, const char *prefix, const char *part)
{
	size_t pl = strlen(part);

	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING) {
			const char *k = lua_tostring(L, -2);
			if (!strncmp(k, part, pl) && strcmp(k, "_ENV"))
				cand_add(prefix, k, lua_isfunction(L, -1));
		}
		lua_pop(L, 1);
	}
}

static void collect(lua_State *L, const char *text)
{
	const char *dot = strrchr(text, '.');
	const char *colon = strrchr(text, ':');
	const char *sep = colon > dot ? colon : dot;
	int top = lua_gettop(L);

	cands_clear();
	if (!lua_checkstack(L, 8))
		return;
	if (!sep) {
		lua_pushglobaltable(L);
		cands_from(L, "", text);
		lua_pop(L, 1);
		if (gl_console_push_local_names(L) == LUA_TFUNCTION &&
		    lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1))
			cands_from(L, "", text);
		lua_settop(L, top);
		return;
	}
	/* walk a.b.c from the globals; no metamethods run */
	{
		char path[256], prefix[260];
		size_t pl = (size_t)(sep - text);
		char *save = NULL, *tok;

		if (pl >= sizeof path)
			return;
		memcpy(path, text, pl);
		path[pl] = '\0';
		snprintf(prefix, sizeof prefix, "%.*s", (int)pl + 1, text);
		lua_pushglobaltable(L);
		for (tok = strtok_r(path, ".:", &save); tok;
		     tok = strtok_r(NULL, ".:", &save)) {
			if (!lua_istable(L, -1))
				break;
			lua_pushstring(L, tok);
			lua_rawget(L, -2);
			lua_remove(L, -2);
		}
		if (lua_istable(L, -1))
			cands_from(L, prefix, sep + 1);
		lua_settop(L, top);
	}
}

static int cand_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *complete_next(const char *text, int state)
{
	static size_t i;

	if (!completing)
		return NULL;
	if (state == 0) {
		collect(completing->L, text);
		qsort(cands, ncands, sizeof *cands, cand_cmp);
		i = 0;
	}
	while (i < ncands) {
		char *c = cands[i++];
		if (i < ncands && !strcmp(c, cands[i]))
			continue; /* a name both global and local */
		return strdup(c);
	}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)start;
	(void)end;
	/* no file names when nothing matches */
	rl_attempted_completion_over = 1;
	return rl_completion_matches(text, complete_next);
}

/* Attach mode: a local glare table with the API's names, so Tab knows
 * them; calling one here says where the real one runs. */
static int remote_only(lua_State *L)
{
	return luaL_error(L, "runs in the server");
}

static void remote_names(lua_State *L)
{
	static const char *const extra[] = {
		"try",        "all",        "pp",      "help", "activate",
		"deactivate", "reactivate", "publish", NULL
	};

	luaL_openlibs(L);
	lua_newtable(L);
	for (int i = 0; gl_console_api_name(i); i++) {
		lua_pushcfunction(L, remote_only);
		lua_setfield(L, -2, gl_console_api_name(i));
	}
	for (int i = 0; extra[i]; i++) {
		lua_pushcfunction(L, remote_only);
		lua_setfield(L, -2, extra[i]);
	}
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "null");
	lua_setglobal(L, "glare");
}

static void completion_on(front *f)
{
	static char breaks[] = " \t\n\"\\'`@$><=;|&{(,)}[]+-*/%^~#";

	completing = f;
	rl_attempted_completion_function = complete;
	rl_completer_word_break_characters = breaks;
	rl_basic_word_break_characters = breaks;
	rl_completion_append_character = '\0';
	if (f->cl)
		remote_names(f->L);
}

static void repl(front *f)
{
	lua_State *L = f->L;
	int prev = f->repl;

	f->repl = 1;
	if (f->tty) {
		history_open(f);
		completion_on(f);
		printf("glared %s console (%s), %s. `help` lists the glare.* "
		       "API, Tab completes; `exit` or Ctrl-D exits.\n",
		       GLARED_VERSION, LUA_RELEASE, f->where);
		fflush(stdout);
	}
	for (;;) {
		size_t len;
		const char *code;
		int r;

		lua_settop(L, 0);
		r = pushline(f, 1);
		if (r == 0)
			break;
		if (r < 0)
			continue;
		if (!lua_rawlen(L, -1))
			continue;
		switch (repl_command(lua_tostring(L, -1))) {
		case CMD_EXIT:
			goto out;
		case CMD_HELP:
			lua_settop(L, 0);
			lua_pushliteral(L, "glare.help()");
			break;
		default:
			break;
		}
		if (!addreturn(L)) {
			int st = multiline(f);
			if (st < 0) {
				if (!f->tty && !gl_console_interrupted)
					f->failed = 1;
				continue;
			}
			if (st != LUA_OK) {
				report(f, lua_tostring(L, -1));
				f->failed = 1;
				continue;
			}
		}
		code = lua_tolstring(L, -1, &len);
		if (run_chunk(f, code, len, "=stdin", 1, NULL, NULL, 0))
			f->failed = 1;
		if (f->status)
			break; /* the server went away */
	}
out:
	lua_settop(L, 0);
	if (f->tty) {
		fputc('\n', stdout);
		fflush(stdout);
		completing = NULL;
		cands_clear();
	}
	f->repl = prev;
}

/* A file (or stdin for "-") as a chunk; a first line starting with '#'
 * (#!) is blanked, as luaL_loadfile does, keeping line numbers. */
static int run_script(front *f)
{
	const char *path = f->o->script;
	int is_stdin = !strcmp(path, "-");
	FILE *in = is_stdin ? stdin : fopen(path, "rb");
	char *buf = NULL, *name;
	size_t len = 0, cap = 0;
	int rc;

	if (!in) {
		fprintf(stderr, "glared: cannot open %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	for (;;) {
		size_t n;
		if (len + 65536 > cap) {
			char *p = realloc(buf, cap = cap ? cap * 2 : 131072);
			if (!p) {
				free(buf);
				fprintf(stderr, "glared: out of memory\n");
				return 1;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len, in);
		len += n;
		if (n == 0)
			break;
	}
	if (!is_stdin)
		fclose(in);
	if (len > 0 && buf[0] == '#') {
		size_t i = 0;
		while (i < len && buf[i] != '\n')
			buf[i++] = ' ';
		buf[0] = '-';
		if (len > 1)
			buf[1] = '-';
	}
	name = is_stdin ? strdup("=stdin") : NULL;
	if (!is_stdin && asprintf(&name, "@%s", path) < 0)
		name = NULL;
	rc = run_chunk(f, buf ? buf : "", len, name ? name : "=script", 0,
		       path, f->o->args, f->o->nargs);
	free(name);
	free(buf);
	return rc;
}

/* Everything runs inside one protected call, as lua.c's pmain. */
static int pmain(lua_State *L)
{
	front *f = lua_touserdata(L, 1);
	const gl_console_opts *o = f->o;

	lua_settop(L, 0);
	for (int i = 0; i < o->nexec; i++) {
		const char *code = o->exec[i];
		size_t len;
		/* as in the REPL: an expression is returned, and what the
		 * chunk returns prints */
		lua_pushstring(L, code);
		addreturn(L);
		code = lua_tolstring(L, -1, &len);
		if (run_chunk(f, code, len, "=(command line)", 1, NULL, NULL,
			      0)) {
			f->status = 1;
			return 0;
		}
		lua_settop(L, 0);
	}
	if (o->script && run_script(f)) {
		f->status = 1;
		return 0;
	}
	if (o->interactive || (!o->nexec && !o->script)) {
		f->tty = isatty(STDIN_FILENO);
		repl(f);
		/* typing at a terminal, mistakes are part of the work; piped
		 * input is automation: any failed chunk fails the run */
		if (!f->tty && f->failed && !f->status)
			f->status = 1;
	}
	return 0;
}

static int run_front(front *f)
{
	lua_State *L = f->L;

	install_sigint();
	lua_pushcfunction(L, pmain);
	lua_pushlightuserdata(L, f);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		fprintf(stderr, "glared: %s\n", lua_tostring(L, -1));
		f->status = 1;
	}
	signal(SIGINT, SIG_DFL);
	free(f->hist);
	return f->status;
}

int gl_console_run_direct(gl_conf *conf, gl_engine *e,
			  const gl_console_opts *o)
{
	front f = { .conf = conf, .o = o };
	gl_err err = { 0 };
	char where[512];
	int rc;

	f.c = gl_console_new(e, 0, &err);
	if (!f.c) {
		fprintf(stderr, "glared: %s\n", err.msg);
		return 1;
	}
	if (o->project && gl_console_set_project(f.c, o->project) < 0) {
		fprintf(stderr, "glared: out of memory\n");
		gl_console_free(f.c);
		return 1;
	}
	f.L = gl_console_lua(f.c);
	{
		char db[400];
		gl_conn_display(conf->db_connection, db, sizeof db);
		snprintf(where, sizeof where, "direct on %s", db);
	}
	f.where = where;
	rc = run_front(&f);
	gl_console_free(f.c);
	return rc;
}

int gl_console_run_attached(gl_conf *conf, const gl_console_opts *o)
{
	front f = { .conf = conf, .o = o };
	client *cl = calloc(1, sizeof *cl);
	const char *path = o->socket ? o->socket : conf->admin_socket;
	gl_err err;
	char where[512];
	int rc;

	if (!cl)
		return 1;
	if (!path || !*path) {
		fprintf(stderr,
			"glared: --attach needs [DEFAULT] admin_socket "
			"in the configuration (the server listens there) "
			"or --attach=PATH\n");
		free(cl);
		return 2;
	}
	cl->fd = -1;
	cl->timeout = o->timeout > 0 ? o->timeout : GL_ADMIN_DEFAULT_TIMEOUT;
	signal(SIGPIPE, SIG_IGN);
	if (cl_connect(cl, path, &err) < 0) {
		fprintf(stderr, "glared: %s\n", err.msg);
		if (cl->fd >= 0)
			close(cl->fd);
		free(cl);
		return 1;
	}
	/* a bare state only compiles (incomplete statements, `return`) */
	f.L = luaL_newstate();
	if (!f.L) {
		close(cl->fd);
		free(cl);
		return 1;
	}
	f.cl = cl;
	snprintf(where, sizeof where, "attached to %s", path);
	f.where = where;
	rc = run_front(&f);
	lua_close(f.L);
	close(cl->fd);
	free(cl);
	return rc;
}
