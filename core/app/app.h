/* app.h: internals shared by the two halves of the cfx program.
 *
 * main.c is the LuaJIT host: argument handling, Lua paths, the `cfx.host` module,
 * signal handlers, running scripts and subcommands.  repl.c is the interactive loop
 * (libedit plumbing only; evaluation, printing and completion live in
 * lua/cfx/repl.lua).  Nothing here is public API.  Every function below is called
 * from the main thread, the one running Lua (libcfx may run threads of its own; the
 * signal handlers only touch sig_atomic_t records, the hook and the wake-up pipe).
 */
#ifndef CFX_APP_H
#define CFX_APP_H

#include <lua.h>

/* What a SIGINT does; the handler reads this (see main.c for the details). */
enum cfx__sigint_mode {
  CFX__SIGINT_SCRIPT = 0, /* interrupt the chunk; a second ^C kills (as luajit) */
  CFX__SIGINT_RUNNING,    /* REPL command: interrupt it; 2nd ^C warns, 3rd kills */
  CFX__SIGINT_PROMPT      /* REPL prompt: only record it (the line is discarded) */
};

/* Switch the SIGINT behaviour.  Leaving RUNNING also removes an interrupt hook that
 * was set but never fired, so it cannot hit the next command. */
void cfx__sigint_set_mode(lua_State *L, int mode);

/* Return 1 (and clear the record) if a SIGINT arrived in PROMPT mode, else 0. */
int cfx__sigint_take(void);

/* Like cfx__sigint_take but leaves the record. */
int cfx__sigint_pending(void);

/* The read end of a pipe that the handlers write a byte to whenever they record a
 * signal (-1 if it could not be made): poll it with the input so that no signal is
 * missed.  cfx__signal_wakeup_drain empties it. */
int cfx__signal_wakeup_fd(void);
void cfx__signal_wakeup_drain(void);

/* The pending flag signal: 0, SIGUSR1 or SIGTERM (what cfx.host.signal() reports). */
int cfx__signal_pending(void);

/* Die the way the default action of `sig` would (so a parent shell sees "killed by
 * signal"), after flushing stdio. */
void cfx__die_by_signal(int sig);

/* Call the function below its `nargs` arguments on the stack in protected mode with a
 * traceback message handler.  SIGINT interrupts it.  On error the message (with
 * traceback) is left on the stack and LUA_ERR* returned. */
int cfx__docall(lua_State *L, int nargs, int nresults);

/* Print the error message on top of the stack as "cfx: MESSAGE" to stderr, pop it. */
void cfx__report(lua_State *L);

/* Run the REPL until end of input.  `stdin_tty`: stdin is a terminal (banner,
 * prompts; with stdout a terminal too, libedit: editing, history, completion).
 * Returns the process exit status. */
int cfx__repl_run(lua_State *L, int stdin_tty);

#endif
