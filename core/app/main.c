/* main.c: the cfx program, a LuaJIT host (modelled on luajit.c and lua.c).
 *
 *   cfx SCRIPT [args...]      run a script (arg and ... as with luajit)
 *   cfx -e CODE ... [SCRIPT]  run code, then the script if any
 *   cfx -i [SCRIPT]           run the script, then the REPL (repl.c, lua/cfx/repl.lua)
 *   cfx COMMAND [args...]     run require('cfx.cli.' .. COMMAND)(args)
 *   cfx                       REPL on a terminal; stdin as a script otherwise
 *
 * Before any user code runs the host sets the Lua path so that `require 'cfx'` finds
 * the library, and registers package.loaded['cfx.host'] (see open_host below).  It
 * does not load the cfx library itself: `cfx -e ''` starts as fast as luajit does.
 *
 * Signals.  SIGINT interrupts the running Lua code the way luajit.c does: the handler
 * sets a debug hook (lua_sethook is async-signal-safe in LuaJIT) and the hook raises
 * the error "interrupted!" at the next call, return or instruction the *interpreter*
 * executes.  A handler cannot raise a Lua error itself: it would longjmp out of
 * arbitrary C code.  Limitation of LuaJIT: machine code of a compiled trace never
 * checks hooks, so a hot loop that the JIT compiled whole and that never leaves its
 * trace (`while true do end`, `while true do local t = {} end`, a loop calling a small
 * Lua function that gets inlined) does not see the first ^C.  Loops that call
 * something the JIT does not compile (os.clock, io.*, most of the standard library's
 * C functions), or that contain inner loops, return to the interpreter often and
 * stop at once.  Hence the escalation: in a script the second ^C kills the process
 * (luajit's behaviour); in the REPL the second ^C prints a warning and the third
 * kills.  When a script dies of an uncaught interrupt, cfx prints the traceback and
 * then re-raises SIGINT with its default action, so a calling shell sees "killed by
 * SIGINT" (status 130) and stops a `for` loop of runs, as it would for any program.
 *
 * SIGUSR1 and SIGTERM only record the signal (Slurm sends them before a time limit or
 * a preemption): Lua polls it with cfx.host.signal(), and a trainer checkpoints and
 * returns.  A script that ends normally while the signal is still pending (not cleared)
 * exits with CFX_EXIT_REQUEUE (75), so a batch script requeues it.  A second SIGTERM
 * while the first is still pending (not cleared) terminates the process, so a script
 * that never polls can still be stopped with `kill` twice.
 * All handlers use SA_RESTART while Lua code runs so that C code in libcfx (file
 * reads, libtorch, HDF5) never sees EINTR.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* readlink, realpath, SA_RESTART, clock_gettime */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "app.h"
#include "cfx/common.h" /* CFX_EXIT_REQUEUE (the program does not link libcfx) */

#ifndef CFX_VERSION_STRING
#define CFX_VERSION_STRING "unknown"
#endif
#ifndef CFX_LUA_BUILD_DIR
#define CFX_LUA_BUILD_DIR ""
#endif
#ifndef CFX_LUA_INSTALL_DIR
#define CFX_LUA_INSTALL_DIR ""
#endif
#ifndef CFX_LIB_BUILD_PATH
#define CFX_LIB_BUILD_PATH ""
#endif
#ifndef CFX_LIB_INSTALL_PATH
#define CFX_LIB_INSTALL_PATH ""
#endif

#define PROGNAME "cfx"

/* The subcommands of DESIGN.md ("The cfx program").  Each is a Lua module
 * lua/cfx/cli/NAME.lua returning function(args) -> exit status. */
static const struct {
  const char *name, *args, *what;
} commands[] = {
    {"synth", "...", "make a synthetic Community-Forensics-shaped dataset"},
    {"data", "import|info|audit ...", "import parquet shards or folders; describe; audit"},
    {"pretrain", "--out FILE ...", "train a stand-in 'pretrained' backbone on synthetic reals"},
    {"sweep", "SCRIPT --local -j N | --slurm ...", "run an experiment's grid as tasks"},
    {"status", "DIR", "follow a sweep's progress"},
    {"collect", "DIR", "merge a sweep's results"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: cfx [options] [SCRIPT [args...]]\n"
          "       cfx COMMAND [args...]\n"
          "\n"
          "Run a Lua script with the cfx library at hand, or work interactively.\n"
          "\n"
          "Modes:\n"
          "  cfx                  REPL when stdin is a terminal, else run stdin as a script\n"
          "  cfx SCRIPT [args]    run SCRIPT; it sees arg[0]=SCRIPT, arg[1..] and ...\n"
          "  cfx -e CODE          run CODE (repeatable, in order, before SCRIPT)\n"
          "  cfx -i [SCRIPT]      run SCRIPT, then start the REPL (also after an error)\n"
          "  cfx -                run stdin as a script\n"
          "\n"
          "Options:\n"
          "  -e CODE        run the Lua code CODE\n"
          "  -i             enter the REPL after running the script and -e code\n"
          "  -v, --version  print the version and exit\n"
          "  -h, --help     print this help and exit\n"
          "  --             stop handling options\n"
          "\n"
          "Commands:\n");
  for (int i = 0; i < NCOMMANDS; i++) {
    char head[64];
    snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].args);
    fprintf(f, "  %-40s %s\n", head, commands[i].what);
  }
  fprintf(f,
          "\n"
          "Environment:\n"
          "  CFX_LUA_PATH   directory holding cfx/init.lua (default: the build tree's or\n"
          "                 the installed lua/ directory)\n"
          "  CFX_LIB        path of libcfx.so (default: next to the lua/ directory chosen)\n"
          "  CFX_HISTORY    REPL history file (default ~/.cfx_history; empty: none)\n"
          "\n"
          "Signals: ^C interrupts the running code (a script exits with status 130, the\n"
          "REPL returns to its prompt); SIGUSR1 and SIGTERM are recorded for the code to\n"
          "poll with require('cfx.host').signal(); a second SIGTERM terminates.\n"
          "See docs/repl.md.\n");
}

static void print_version(void) {
  printf(PROGNAME " " CFX_VERSION_STRING " (" LUAJIT_VERSION ")\n");
}

/* ---- signals ------------------------------------------------------------------- */

static lua_State *globalL; /* the state the SIGINT handler hooks */
static volatile sig_atomic_t sigint_mode = CFX__SIGINT_SCRIPT;
static volatile sig_atomic_t sigint_count;     /* ^C received while RUNNING */
static volatile sig_atomic_t sigint_at_prompt; /* ^C received in PROMPT mode */
static volatile sig_atomic_t flag_signal;      /* 0, SIGUSR1 or SIGTERM */
static volatile sig_atomic_t interrupted;      /* lstop raised "interrupted!" */
static int sigint_ignored;                     /* SIGINT was SIG_IGN at start */
static int wakeup_pipe[2] = {-1, -1};          /* the handlers write, the REPL polls */

static void set_handler(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
}

static void write_stderr(const char *s) /* async-signal-safe */
{
  ssize_t r = write(STDERR_FILENO, s, strlen(s));
  (void)r;
}

static void wake_up(void) /* async-signal-safe */
{
  if (wakeup_pipe[1] >= 0) {
    ssize_t r = write(wakeup_pipe[1], "", 1); /* full pipe (EAGAIN): awake anyway */
    (void)r;
  }
}

/* The hook: runs in normal (not signal) context, at a point where the VM may raise. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  interrupted = 1;
  luaL_error(L, "interrupted!");
}

static void hook_interrupt(void) {
  if (globalL != NULL) lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void on_sigint(int sig) {
  int saved_errno = errno;
  switch (sigint_mode) {
    case CFX__SIGINT_PROMPT:
      sigint_at_prompt = 1;
      wake_up();
      break;
    case CFX__SIGINT_RUNNING:
      if (sigint_count == 0) {
        sigint_count = 1;
        hook_interrupt();
      } else if (sigint_count == 1) {
        sigint_count = 2;
        hook_interrupt(); /* the code may have caught the first one and gone on */
        write_stderr("\n" PROGNAME
                     ": still running (a JIT-compiled loop or a long C call "
                     "does not see ^C); press ^C again to quit " PROGNAME "\n");
      } else {
        set_handler(sig, SIG_DFL, 0);
        raise(sig); /* delivered when this handler returns */
      }
      break;
    default: /* CFX__SIGINT_SCRIPT: as luajit.c, the second ^C is not caught */
      set_handler(sig, SIG_DFL, 0);
      hook_interrupt();
      break;
  }
  errno = saved_errno;
}

static void on_flag_signal(int sig) {
  int saved_errno = errno;
  if (sig == SIGTERM) {
    if (flag_signal == SIGTERM) { /* second SIGTERM: the sender insists */
      set_handler(sig, SIG_DFL, 0);
      raise(sig); /* delivered when this handler returns */
    }
    flag_signal = SIGTERM;
  } else if (flag_signal == 0) {
    flag_signal = sig; /* a pending SIGTERM is not downgraded to SIGUSR1 */
  }
  wake_up();
  errno = saved_errno;
}

static void install_signals(int mode) {
  struct sigaction old;
  if (wakeup_pipe[0] < 0 && pipe2(wakeup_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
    wakeup_pipe[0] = wakeup_pipe[1] = -1;
  sigaction(SIGINT, NULL, &old);
  /* A script started in the background by a non-interactive shell has SIGINT
   * ignored; keep it so (only the REPL insists on handling ^C). */
  sigint_ignored = (old.sa_handler == SIG_IGN);
  sigint_mode = mode;
  if (!sigint_ignored || mode != CFX__SIGINT_SCRIPT) set_handler(SIGINT, on_sigint, SA_RESTART);
  set_handler(SIGUSR1, on_flag_signal, SA_RESTART);
  set_handler(SIGTERM, on_flag_signal, SA_RESTART);
}

void cfx__sigint_set_mode(lua_State *L, int mode) {
  sigint_count = 0;
  sigint_mode = mode;
  if (mode == CFX__SIGINT_RUNNING) {
    interrupted = 0;
  } else if (L != NULL && lua_gethook(L) == lstop) {
    lua_sethook(L, NULL, 0, 0); /* a ^C that came as the command ended: drop it */
  }
  /* At the prompt a blocking read must return EINTR on ^C or SIGTERM (the plain
   * line reader relies on it; libedit installs its own handlers while it reads).
   * While code runs, system calls restart. */
  set_handler(SIGINT, on_sigint, mode == CFX__SIGINT_PROMPT ? 0 : SA_RESTART);
  set_handler(SIGTERM, on_flag_signal, mode == CFX__SIGINT_PROMPT ? 0 : SA_RESTART);
}

int cfx__sigint_take(void) {
  int r = sigint_at_prompt;
  sigint_at_prompt = 0;
  return r;
}

int cfx__sigint_pending(void) {
  return sigint_at_prompt;
}

int cfx__signal_wakeup_fd(void) {
  return wakeup_pipe[0];
}

void cfx__signal_wakeup_drain(void) {
  char buf[64];
  while (wakeup_pipe[0] >= 0 && read(wakeup_pipe[0], buf, sizeof buf) > 0) {
  }
}

int cfx__signal_pending(void) {
  return flag_signal;
}

void cfx__die_by_signal(int sig) {
  sigset_t set;
  fflush(NULL);
  set_handler(sig, SIG_DFL, 0);
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  _exit(128 + sig); /* not reached */
}

/* ---- running Lua code ---------------------------------------------------------- */

/* An expected error (lua/cfx/core.lua, "Expected errors"): a string that cfx.core's
 * raise recorded in package.loaded['cfx.core'].expected_errors, which maps it to the line
 * to show.  Pushes that line and returns 1, or pushes nothing and returns 0 (a bug, an
 * error of another kind, or CFX_TRACEBACK set to anything but "" or "0"). */
static int expected_error(lua_State *L, int idx) {
  const char *tb = getenv("CFX_TRACEBACK");
  int top = lua_gettop(L), found = 0;
  if (tb != NULL && tb[0] != '\0' && strcmp(tb, "0") != 0) return 0;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_pushliteral(L, "cfx.core");
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
      lua_pushliteral(L, "expected_errors");
      lua_rawget(L, -2);
      if (lua_istable(L, -1)) {
        lua_pushvalue(L, idx);
        lua_rawget(L, -2);
        found = lua_type(L, -1) == LUA_TSTRING;
      }
    }
  }
  if (found) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
  } else {
    lua_settop(L, top);
  }
  return found;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (expected_error(L, 1)) return 1; /* the message alone: no traceback */
  if (msg == NULL) { /* error(obj): use __tostring (tables, cdata) if it has one */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int cfx__docall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs; /* function index */
  int status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

void cfx__report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fflush(stdout);
  fprintf(stderr, PROGNAME ": %s\n", msg != NULL ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
}

static int report_status(lua_State *L, int status) {
  if (status != LUA_OK) cfx__report(L);
  return status;
}

static int dostring(lua_State *L, const char *code, const char *name) {
  int status = luaL_loadbuffer(L, code, strlen(code), name);
  if (status == LUA_OK) status = cfx__docall(L, 0, 0);
  return report_status(L, status);
}

/* Run a script file (NULL: stdin) with args[0..nargs-1] as its `...`.  A script that
 * returns an object with a __cfx_main method (an experiment: cfx.experiment{...}) is
 * then run by it: obj:__cfx_main({args...}), whose number result is the exit status
 * (*code; 0 otherwise). */
static int dofile_args(lua_State *L, const char *fname, char **args, int nargs, int *code) {
  *code = 0;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    luaL_checkstack(L, nargs + 3, "too many arguments to script");
    for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
    status = cfx__docall(L, nargs, 1);
  }
  if (status == LUA_OK) {
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "__cfx_main");
      if (lua_isfunction(L, -1)) {
        lua_pushvalue(L, -2);
        lua_createtable(L, nargs, 0);
        for (int i = 0; i < nargs; i++) {
          lua_pushstring(L, args[i]);
          lua_rawseti(L, -2, i + 1);
        }
        status = cfx__docall(L, 2, 1);
        if (status == LUA_OK && lua_isnumber(L, -1)) *code = (int)lua_tointeger(L, -1);
        if (status == LUA_OK) lua_pop(L, 1);
      }
      if (status == LUA_OK) lua_pop(L, 1);
    }
    if (status == LUA_OK) lua_pop(L, 1);
  }
  return report_status(L, status);
}

/* The global `arg`, exactly as luajit.c builds it: arg[0] is argv[argf], arguments
 * before it get negative indices, after it positive ones. */
static void create_arg_table(lua_State *L, char **argv, int argc, int argf) {
  lua_createtable(L, argc - argf, argf);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - argf);
  }
  lua_setglobal(L, "arg");
}

/* ---- paths and the cfx.host module ---------------------------------------------- */

struct paths {
  char exe[PATH_MAX];
  char lua_dir[PATH_MAX];
  char lib[PATH_MAX];
};

static int is_dir(const char *p) {
  struct stat st;
  return p[0] != '\0' && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return p[0] != '\0' && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void copy_str(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src);
}

static void dir_of(char *dst, size_t n, const char *path) {
  char *slash;
  copy_str(dst, n, path);
  slash = strrchr(dst, '/');
  if (slash == dst)
    slash[1] = '\0'; /* "/cfx" -> "/" */
  else if (slash != NULL)
    *slash = '\0';
  else
    copy_str(dst, n, ".");
}

/* Build-tree paths when this executable is the one in the build tree (it sits in the
 * directory of the built libcfx), else the install paths.  If the preferred location
 * does not exist and the other does, the other is used, so a copied or half-installed
 * binary still finds a library.  CFX_LUA_PATH and CFX_LIB override. */
/* An install path relative to the executable's directory (CMake passes them relative,
 * so that `cmake --install --prefix ANY` works), made absolute. */
static void install_path(char *dst, size_t n, const char *exe_dir, const char *rel) {
  if (rel[0] == '/' || rel[0] == '\0')
    copy_str(dst, n, rel);
  else
    snprintf(dst, n, "%s/%s", exe_dir, rel);
}

static void resolve_paths(struct paths *p) {
  const char *env;
  int in_build = 0;
  char exe_dir[PATH_MAX] = ".", lua_install[PATH_MAX], lib_install[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", p->exe, sizeof p->exe - 1);
  p->exe[n > 0 ? n : 0] = '\0';
  if (n > 0) dir_of(exe_dir, sizeof exe_dir, p->exe);
  if (n > 0 && CFX_LIB_BUILD_PATH[0] != '\0') {
    char lib_dir[PATH_MAX], real_lib_dir[PATH_MAX];
    dir_of(lib_dir, sizeof lib_dir, CFX_LIB_BUILD_PATH);
    in_build = realpath(lib_dir, real_lib_dir) != NULL && strcmp(real_lib_dir, exe_dir) == 0;
  }
  install_path(lua_install, sizeof lua_install, exe_dir, CFX_LUA_INSTALL_DIR);
  install_path(lib_install, sizeof lib_install, exe_dir, CFX_LIB_INSTALL_PATH);
  {
    const char *first = in_build ? CFX_LUA_BUILD_DIR : lua_install;
    const char *second = in_build ? lua_install : CFX_LUA_BUILD_DIR;
    copy_str(p->lua_dir, sizeof p->lua_dir, is_dir(first) || !is_dir(second) ? first : second);
  }
  {
    const char *first = in_build ? CFX_LIB_BUILD_PATH : lib_install;
    const char *second = in_build ? lib_install : CFX_LIB_BUILD_PATH;
    copy_str(p->lib, sizeof p->lib, is_file(first) || !is_file(second) ? first : second);
  }
  if ((env = getenv("CFX_LUA_PATH")) != NULL && env[0] != '\0') copy_str(p->lua_dir, sizeof p->lua_dir, env);
  if ((env = getenv("CFX_LIB")) != NULL && env[0] != '\0') copy_str(p->lib, sizeof p->lib, env);
  /* "dir/" and "dir" alike */
  for (size_t len = strlen(p->lua_dir); len > 1 && p->lua_dir[len - 1] == '/'; len--)
    p->lua_dir[len - 1] = '\0';
}

static void prepend_lua_path(lua_State *L, const char *dir) {
  if (dir[0] == '\0') return;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static const char *signal_name(int sig) {
  return sig == SIGTERM ? "TERM" : sig == SIGUSR1 ? "USR1" : NULL;
}

/* cfx.host.signal() -> "USR1" | "TERM" | nil: the pending signal, left pending. */
static int host_signal(lua_State *L) {
  const char *name = signal_name(flag_signal);
  if (name != NULL)
    lua_pushstring(L, name);
  else
    lua_pushnil(L);
  return 1;
}

/* cfx.host.clear_signal() -> the name cleared or nil (atomically: a signal arriving
 * meanwhile is either returned here or stays pending, never lost). */
static int host_clear_signal(lua_State *L) {
  sigset_t set, old;
  int sig;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, &old);
  sig = flag_signal;
  flag_signal = 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (signal_name(sig) != NULL)
    lua_pushstring(L, signal_name(sig));
  else
    lua_pushnil(L);
  return 1;
}

/* cfx.host.clock() -> seconds of a monotonic clock (for timing; os.clock is CPU time). */
static int host_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

/* package.loaded['cfx.host'] = { version, lua_dir, lib_path, exe, interactive,
 *                                signal(), clear_signal(), clock() } */
static void open_host(lua_State *L, const struct paths *p, int interactive) {
  static const luaL_Reg funcs[] = {
      {"signal", host_signal},
      {"clear_signal", host_clear_signal},
      {"clock", host_clock},
      {NULL, NULL},
  };
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_createtable(L, 0, 8);
  luaL_setfuncs(L, funcs, 0);
  lua_pushliteral(L, CFX_VERSION_STRING);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, p->lua_dir);
  lua_setfield(L, -2, "lua_dir");
  lua_pushstring(L, p->lib);
  lua_setfield(L, -2, "lib_path");
  lua_pushstring(L, p->exe);
  lua_setfield(L, -2, "exe");
  lua_pushboolean(L, interactive);
  lua_setfield(L, -2, "interactive");
  lua_setfield(L, -2, "cfx.host");
  lua_pop(L, 1);
}

/* ---- subcommands --------------------------------------------------------------- */

/* ... = name, args.  Returns the exit status, or -1 if there is no such module. */
static const char command_lua[] =
    "local name, args = ...\n"
    "local modname = 'cfx.cli.' .. name\n"
    "if package.loaded[modname] == nil and package.preload[modname] == nil\n"
    "   and package.searchpath(modname, package.path) == nil then\n"
    "  return -1\n"
    "end\n"
    "local main = require(modname)\n"
    "if type(main) ~= 'function' then\n"
    "  error(\"module '\" .. modname .. \"' returned a \" .. type(main) ..\n"
    "        ', expected function(args) -> exit status', 0)\n"
    "end\n"
    "local r = main(args)\n"
    "if r == nil or r == true then return 0 end\n"
    "if r == false then return 1 end\n"
    "if type(r) == 'number' and r >= 0 and r <= 255 and r % 1 == 0 then return r end\n"
    "error(modname .. ' returned ' .. tostring(r) ..\n"
    "      ', expected an exit status (integer 0..255, boolean or nil)', 0)\n";

static int is_command_word(const char *s) {
  if (!(s[0] >= 'a' && s[0] <= 'z')) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
  return 1;
}

static int known_command(const char *s) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, s) == 0) return 1;
  return 0;
}

static int run_command(lua_State *L, int argc, char **argv, int cmd, const char *lua_dir) {
  const char *name = argv[cmd];
  int status = luaL_loadbuffer(L, command_lua, sizeof command_lua - 1, "=(cfx command)");
  if (status == LUA_OK) {
    lua_pushstring(L, name);
    lua_createtable(L, argc - cmd - 1, 0);
    for (int i = cmd + 1; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - cmd);
    }
    status = cfx__docall(L, 2, 1);
  }
  if (status != LUA_OK) {
    cfx__report(L);
    if (interrupted) cfx__die_by_signal(SIGINT);
    return 1;
  }
  {
    int code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (code >= 0) return code;
  }
  if (known_command(name))
    fprintf(stderr, PROGNAME ": command '%s' is not available: no module 'cfx.cli.%s' in %s\n", name, name,
            lua_dir[0] ? lua_dir : "the Lua path");
  else
    fprintf(stderr,
            PROGNAME
            ": unknown command '%s' (and no file of that name); "
            "see '" PROGNAME " --help'\n",
            name);
  return 1;
}

/* ---- main ---------------------------------------------------------------------- */

enum { FLAG_EXEC = 1, FLAG_INTERACTIVE = 2, FLAG_VERSION = 4, FLAG_HELP = 8 };

struct smain {
  int argc;
  char **argv;
  int script; /* index of the script in argv, == argc if none */
  int cmd;    /* index of a subcommand name in argv, 0 if none */
  int flags;
  int status;
};

/* Returns the index of the first non-option argument (the script), or -1 after
 * printing a usage error. */
static int collect_args(int argc, char **argv, int *flags) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') /* SCRIPT or "-" (stdin) */
      return i;
    if (strcmp(a, "--") == 0) return i + 1;
    if (strcmp(a, "-i") == 0) {
      *flags |= FLAG_INTERACTIVE;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      *flags |= FLAG_VERSION;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *flags |= FLAG_HELP;
    } else if (strncmp(a, "-e", 2) == 0) { /* "-e CODE" or "-eCODE" */
      *flags |= FLAG_EXEC;
      if (a[2] == '\0' && ++i >= argc) {
        fprintf(stderr, PROGNAME ": option '-e' needs an argument\n");
        return -1;
      }
    } else {
      fprintf(stderr, PROGNAME ": unrecognized option '%s'\n", a);
      return -1;
    }
  }
  return i;
}

/* Run the -e chunks of argv[1..script-1] in order. */
static int run_exec_args(lua_State *L, char **argv, int script) {
  for (int i = 1; i < script; i++) {
    const char *a = argv[i];
    if (strncmp(a, "-e", 2) == 0) {
      const char *code = a[2] != '\0' ? a + 2 : argv[++i];
      int status = dostring(L, code, "=(command line)");
      if (status != LUA_OK) return status;
    }
  }
  return LUA_OK;
}

static int pmain(lua_State *L) {
  struct smain *s = (struct smain *)lua_touserdata(L, 1);
  char **argv = s->argv;
  int interactive = (s->flags & FLAG_INTERACTIVE) != 0;
  int run_stdin = 0, status, code = 0;
  struct paths *paths;

  if (s->cmd == 0 && s->script == s->argc && !(s->flags & FLAG_EXEC) && !interactive) {
    if (isatty(STDIN_FILENO))
      interactive = 1;
    else
      run_stdin = 1;
  }

  globalL = L;
  lua_gc(L, LUA_GCSTOP, 0);
  luaL_openlibs(L);
  lua_gc(L, LUA_GCRESTART, -1);

  paths = (struct paths *)lua_newuserdata(L, sizeof *paths); /* freed with the state */
  resolve_paths(paths);
  prepend_lua_path(L, paths->lua_dir);
  open_host(L, paths, interactive);
  install_signals(interactive ? CFX__SIGINT_RUNNING : CFX__SIGINT_SCRIPT);

  if (s->cmd > 0) {
    create_arg_table(L, argv, s->argc, s->cmd);
    s->status = run_command(L, s->argc, argv, s->cmd, paths->lua_dir);
    return 0;
  }

  create_arg_table(L, argv, s->argc, s->script);
  status = run_exec_args(L, argv, s->script);
  if (status == LUA_OK && s->script < s->argc) {
    const char *fname = argv[s->script];
    if (strcmp(fname, "-") == 0 && strcmp(argv[s->script - 1], "--") != 0) fname = NULL; /* stdin */
    status = dofile_args(L, fname, argv + s->script + 1, s->argc - s->script - 1, &code);
  } else if (status == LUA_OK && run_stdin) {
    status = dofile_args(L, NULL, NULL, 0, &code);
  }

  if (interactive) {
    /* Like python -i: an error in the script still leads to the REPL, where its
     * globals can be inspected. */
    s->status = cfx__repl_run(L, isatty(STDIN_FILENO));
  } else if (status != LUA_OK) {
    if (interrupted) cfx__die_by_signal(SIGINT); /* see the comment at the top */
    s->status = 1;
  } else {
    s->status = code;
    /* asked to stop (USR1/TERM, still pending: cfx.train.fit checkpoints and returns, and
     * leaves it so) and ended normally: "try again", a batch script requeues it */
    if (code == 0 && flag_signal != 0) s->status = CFX_EXIT_REQUEUE;
  }
  return 0;
}

int main(int argc, char **argv) {
  /* Image pipelines allocate and free buffers of 0.1 to a few MB per image; glibc would
   * mmap each one and give it back to the kernel on free, page-faulting it in again for
   * the next image (about 1 ms per 512x512 image).  Keep such blocks in the heap. */
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);

  struct smain s;
  lua_State *L;
  int status;

  memset(&s, 0, sizeof s);
  s.argc = argc;
  s.argv = argv;
  if (argc < 1 || argv[0] == NULL) { /* execve with an empty argv */
    static char *fake[] = {PROGNAME, NULL};
    s.argc = argc = 1;
    s.argv = argv = fake;
  }

  /* `cfx synth ...`: a command, unless a file of that name is in the way (a
   * directory is not: the repository has a data/ next to `cfx data`). */
  if (argc > 1 && is_command_word(argv[1]) && !is_file(argv[1])) {
    s.cmd = 1;
    s.script = argc;
  } else {
    s.script = collect_args(argc, argv, &s.flags);
    if (s.script < 0) {
      fprintf(stderr, "Try '" PROGNAME " --help'.\n");
      return 2;
    }
  }
  if (s.flags & FLAG_HELP) {
    print_usage(stdout);
    return 0;
  }
  if (s.flags & FLAG_VERSION) {
    print_version();
    return 0;
  }

  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, PROGNAME ": cannot create the Lua state: not enough memory\n");
    return 1;
  }
  status = lua_cpcall(L, pmain, &s);
  if (status != LUA_OK) { /* an error outside any script: out of memory, ... */
    cfx__report(L);
    s.status = 1;
  }
  lua_close(L);
  globalL = NULL;
  return s.status;
}
