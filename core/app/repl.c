/* repl.c: the interactive loop of the cfx program -- libedit plumbing only.
 *
 * Reading a line, history and the completion callback live here; everything about
 * Lua (is the chunk complete, evaluate it, print the values, the timing, which names
 * complete a word) is a session object of lua/cfx/repl.lua, so the two stay small
 * and the logic is testable from Lua.  The loop:
 *
 *   session = require('cfx.repl').new{tty = ...};  session:start()
 *   repeat line = readline(more and ">> " or "cfx> ")
 *          more = session:feed(line)             -- SIGINT mode RUNNING
 *   until end of input;  session:finish()
 *
 * With stdin and stdout on a terminal, lines come from libedit (line editing,
 * persistent history, TAB completion); otherwise from a plain getline() on stdin, so
 * `cfx -i < commands.lua` works line by line without terminal handling (no prompts
 * unless stdin is a terminal).
 *
 * ^C at the prompt.  libedit (rl_catch_signals, its default) catches SIGINT while it
 * reads, puts the terminal back and re-sends the signal to our handler (main.c,
 * PROMPT mode: it only records it).  Our rl_getc_function sees the record and returns
 * EOF, so readline() returns; whatever it returns then (NULL or the partial line) is
 * discarded and a fresh prompt is shown, as a shell does.  SIGTERM likewise ends the
 * REPL.  The plain reader gets EINTR from read(2) (PROMPT mode installs the handler
 * without SA_RESTART) and does the same; it uses stdio, shared with io.read, so it
 * cannot poll the descriptor: a ^C that lands in the instant before it blocks counts
 * only at the next line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getline, strdup */
#endif

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>
#include <unistd.h>

#include <editline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#include "app.h"

#define HISTORY_MAX 1000 /* lines kept in memory and in the history file */

static lua_State *replL;            /* for the completion callback */
static int session_ref = LUA_NOREF; /* registry ref of the Lua session object */
static char *history_path;          /* NULL: no history file */
static char *history_last;          /* last line added, to skip repeats */

/* Push session[method] and session: ready for arguments and cfx__docall(L, n+1, r). */
static void push_method(lua_State *L, const char *method) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, session_ref);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);
}

/* ---- history ------------------------------------------------------------------- */

static void history_open(void) {
  const char *env = getenv("CFX_HISTORY");
  stifle_history(HISTORY_MAX);
  if (env != NULL) {
    if (env[0] == '\0') /* CFX_HISTORY= : keep no file */
      return;
    history_path = strdup(env);
  } else {
    const char *home = getenv("HOME");
    size_t n;
    if (home == NULL || home[0] == '\0') return;
    n = strlen(home) + sizeof "/.cfx_history";
    history_path = (char *)malloc(n);
    if (history_path != NULL) snprintf(history_path, n, "%s/.cfx_history", home);
  }
  if (history_path == NULL) return;
  {
    /* Private, like a shell's history: it may hold paths and tokens. */
    int fd = open(history_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  }
  read_history(history_path);
  if (history_length > 0) {
    HIST_ENTRY *last = history_get(history_base + history_length - 1);
    if (last != NULL && last->line != NULL) history_last = strdup(last->line);
  }
}

static void history_add(const char *line) {
  static int warned;
  const char *p = line;
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\0' || (history_last != NULL && strcmp(history_last, line) == 0)) return;
  add_history(line);
  free(history_last);
  history_last = strdup(line);
  /* Saved after every line (at most HISTORY_MAX lines, cheap) so that nothing is lost
   * when the session ends by os.exit(), a crash or a hang-up. */
  if (history_path != NULL && write_history(history_path) != 0 && !warned) {
    warned = 1;
    fprintf(stderr, "cfx: warning: cannot write the history file %s\n", history_path);
  }
}

static void history_close(void) {
  free(history_path);
  free(history_last);
  history_path = history_last = NULL;
}

/* ---- completion ------------------------------------------------------------------ */

static int comp_ref = LUA_NOREF; /* the candidate list while libedit asks for it */
static int comp_n, comp_i;

static char *comp_generator(const char *text, int state) {
  lua_State *L = replL;
  (void)text; /* the Lua side already filtered by it */
  if (state == 0) comp_i = 0;
  while (comp_i < comp_n) {
    const char *s;
    char *r = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, comp_ref);
    lua_rawgeti(L, -1, ++comp_i);
    s = lua_tostring(L, -1);
    if (s != NULL) r = strdup(s); /* libedit frees the matches */
    lua_pop(L, 2);
    if (r != NULL) return r;
  }
  return NULL;
}

/* The byte offset of character `nchars` of a multibyte string: libedit reports the
 * cursor in characters, rl_line_buffer is bytes. */
static size_t byte_offset(const char *s, int nchars) {
  mbstate_t st;
  size_t off = 0, len = strlen(s);
  memset(&st, 0, sizeof st);
  for (int i = 0; i < nchars && off < len; i++) {
    size_t k = mbrlen(s + off, len - off, &st);
    if (k == (size_t)-1 || k == (size_t)-2) { /* invalid: count bytes */
      memset(&st, 0, sizeof st);
      k = 1;
    }
    off += k == 0 ? 1 : k;
  }
  return off;
}

/* File names for a string literal whose text so far is `path`.  libedit replaces
 * only `text`, the tail of `path` after the last word-break character ('/' is one:
 * Lua's division), so that much of each file name is cut off the front. */
static char **complete_file(const char *path, const char *text) {
  struct stat st;
  size_t plen = strlen(path), tlen = strlen(text);
  size_t skip = plen >= tlen ? plen - tlen : 0;
  char **m = rl_completion_matches(path, rl_filename_completion_function);
  if (m == NULL) return NULL;
  /* A single directory: go on into it (libedit's readline API would not).  One match
   * is {match, NULL} in GNU readline, {common prefix, match, NULL} in libedit. */
  if (m[0] != NULL && (m[1] == NULL || m[2] == NULL) && stat(m[0], &st) == 0 && S_ISDIR(st.st_mode))
    rl_completion_append_character = '/';
  for (char **p = m; *p != NULL; p++) {
    size_t n = strlen(*p);
    memmove(*p, *p + (skip < n ? skip : n), n - (skip < n ? skip : n) + 1);
  }
  return m;
}

/* rl_attempted_completion_function: ask session:complete(line_before_cursor, word),
 * which returns the full words that complete `text`, or, inside a string literal,
 * the literal's text so far (completed as a file name). */
static char **complete(const char *text, int start, int end) {
  lua_State *L = replL;
  int top = lua_gettop(L);
  char **matches = NULL;
  const char *line = rl_line_buffer != NULL ? rl_line_buffer : "";
  (void)start;
  rl_attempted_completion_over = 1; /* never libedit's own file name completion */
  rl_completion_append_character = '\0';
  push_method(L, "complete");
  lua_pushlstring(L, line, byte_offset(line, end));
  lua_pushstring(L, text);
  if (cfx__docall(L, 3, 1) == LUA_OK) {
    if (lua_istable(L, -1)) {
      comp_n = (int)lua_objlen(L, -1);
      comp_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      if (comp_n > 0) matches = rl_completion_matches(text, comp_generator);
      luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
      comp_ref = LUA_NOREF;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      matches = complete_file(lua_tostring(L, -1), text);
    }
  }
  /* An error in completion must not disturb the line being edited: drop it. */
  lua_settop(L, top);
  return matches;
}

/* One byte of terminal input, or 0 when a ^C or SIGTERM is recorded or at end of
 * input.  Besides stdin it waits on the signal handlers' wake-up pipe (main.c): a
 * signal that lands between the check of the records and the wait, or that the
 * kernel delivers to another thread (libtorch starts some), still ends the wait.
 * With a plain read(2) it would count only after the next Enter, and that line would
 * be thrown away. */
static int read_byte(char *out) {
  int wake = cfx__signal_wakeup_fd();
  for (;;) {
    struct pollfd pfd[2] = {{STDIN_FILENO, POLLIN, 0}, {wake, POLLIN, 0}};
    ssize_t n;
    if (cfx__sigint_pending() || cfx__signal_pending() == SIGTERM) return 0;
    if (poll(pfd, wake >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue; /* a signal: look at the records again */
      return 0;
    }
    if (wake >= 0 && pfd[1].revents != 0) cfx__signal_wakeup_drain();
    if (pfd[0].revents == 0) continue;
    n = read(STDIN_FILENO, out, 1);
    if (n == 1) return 1;
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) return 0;
  }
}

/* rl_getc_function: the next character for libedit.  Its readline wrapper takes the
 * int as a whole wide character, so multibyte (UTF-8) input is decoded here, as
 * libedit's own reader would do.  EOF ends readline(). */
static int repl_getc(FILE *f) {
  mbstate_t st;
  (void)f; /* old libedits pass NULL */
  memset(&st, 0, sizeof st);
  for (;;) {
    char byte;
    wchar_t wc;
    size_t k;
    if (!read_byte(&byte)) return EOF;
    k = mbrtowc(&wc, &byte, 1, &st);
    if (k == (size_t)-2) continue;                   /* more bytes of this character to come */
    if (k == (size_t)-1) return (unsigned char)byte; /* not valid in the locale: the byte as is */
    return (int)wc;
  }
}

static void editline_open(void) {
  /* Lua's operators and brackets end a word; '.' and ':' do not, so "string.fo"
   * and "t:ad" are completed as a whole. */
  static char breaks[] = " \t\n\"'`@$><=;|&{}()[],+-*/%^~#";
  setlocale(LC_CTYPE, "");      /* UTF-8 input; only the character class category */
  rl_readline_name = "cfx";     /* for ~/.editrc */
  rl_getc_function = repl_getc; /* read before the first readline/using_history */
  rl_basic_word_break_characters = breaks;
  rl_completer_word_break_characters = breaks;
  rl_attempted_completion_function = complete;
  using_history();
  history_open();
}

/* ---- reading lines --------------------------------------------------------------- */

/* The line without its newline (malloc'd), or NULL at end of input or on ^C/SIGTERM
 * (the caller looks at the signal records). */
static char *read_plain(const char *prompt, int show_prompt) {
  char *buf = NULL;
  size_t cap = 0;
  ssize_t n;
  if (show_prompt) {
    fputs(prompt, stdout);
    fflush(stdout);
  }
  for (;;) {
    errno = 0;
    n = getline(&buf, &cap, stdin);
    if (n >= 0) break;
    if (errno == EINTR && !cfx__sigint_pending() && cfx__signal_pending() != SIGTERM) {
      clearerr(stdin);
      continue; /* some other signal: keep reading */
    }
    clearerr(stdin);
    free(buf);
    return NULL;
  }
  if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
  if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
  return buf;
}

/* ---- the loop -------------------------------------------------------------------- */

static int open_session(lua_State *L, int tty) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cfx.repl");
  if (cfx__docall(L, 1, 1) != LUA_OK) {
    cfx__report(L);
    fprintf(stderr, "cfx: cannot start the REPL (set CFX_LUA_PATH to the lua/ directory?)\n");
    return -1;
  }
  lua_getfield(L, -1, "new");
  lua_createtable(L, 0, 1);
  lua_pushboolean(L, tty);
  lua_setfield(L, -2, "tty");
  if (cfx__docall(L, 1, 1) != LUA_OK) {
    cfx__report(L);
    lua_pop(L, 1);
    return -1;
  }
  session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1); /* the module */
  return 0;
}

/* Call session:method(arg) with ^C interrupting it; report errors.  Returns the
 * boolean result (for feed: more input needed). */
static int session_call(lua_State *L, const char *method, const char *arg) {
  int status, result = 0;
  cfx__sigint_set_mode(L, CFX__SIGINT_RUNNING);
  push_method(L, method);
  if (arg != NULL) lua_pushstring(L, arg);
  status = cfx__docall(L, arg != NULL ? 2 : 1, 1);
  if (status == LUA_OK) {
    result = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else {
    /* The session catches errors of user code; this is an interrupt that hit the
     * REPL's own code (e.g. while printing a huge value) or a bug in it. */
    cfx__report(L);
    if (strcmp(method, "reset") != 0) session_call(L, "reset", NULL);
  }
  cfx__sigint_set_mode(L, CFX__SIGINT_PROMPT);
  fflush(stdout);
  fflush(stderr);
  return result;
}

int cfx__repl_run(lua_State *L, int stdin_tty) {
  int use_editline = stdin_tty && isatty(STDOUT_FILENO);
  int more = 0;

  replL = L;
  if (open_session(L, stdin_tty) != 0) return 1;
  session_call(L, "start", NULL); /* banner, require 'cfx' */
  if (use_editline) editline_open();

  for (;;) {
    char *line;
    if (cfx__signal_pending() == SIGTERM) { /* nobody handled it: honour it */
      fprintf(stderr, "\ncfx: terminated by SIGTERM\n");
      history_close();
      cfx__die_by_signal(SIGTERM);
    }
    cfx__sigint_set_mode(L, CFX__SIGINT_PROMPT);
    cfx__sigint_take(); /* a ^C that came between two prompts means nothing */
    if (use_editline)
      line = readline(more ? ">> " : "cfx> ");
    else
      line = read_plain(more ? ">> " : "cfx> ", stdin_tty);
    if (cfx__sigint_take()) { /* ^C at the prompt: drop the line (and the chunk) */
      free(line);
      if (stdin_tty) fputs("\n", stdout);
      if (more) session_call(L, "reset", NULL);
      more = 0;
      continue;
    }
    if (cfx__signal_pending() == SIGTERM) { /* ended the read: exit at the top */
      free(line);
      continue;
    }
    if (line == NULL) break; /* end of input (^D) */
    if (use_editline) history_add(line);
    more = session_call(L, "feed", line);
    free(line);
  }

  if (stdin_tty) fputs("\n", stdout); /* the shell's prompt starts on a line of its own */
  session_call(L, "finish", NULL);    /* reports an unfinished chunk */
  cfx__sigint_set_mode(L, CFX__SIGINT_RUNNING);
  luaL_unref(L, LUA_REGISTRYINDEX, session_ref);
  session_ref = LUA_NOREF;
  history_close();
  return 0;
}
