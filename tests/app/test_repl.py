#!/usr/bin/python3
"""Tests of the cfx REPL through a real pseudo-terminal (libedit line editing, ^C, TAB,
history), plus the Lua-level unit tests of lua/cfx/repl.lua (repl_unit.lua).

Run:  CFX_BIN=build/cfx /usr/bin/python3 tests/app/test_repl.py   (from the repo root;
CFX_BIN defaults to build/cfx there).
"""
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import fcntl
import termios
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
TIMEOUT = 15  # seconds for any one expected output; the whole file takes ~15 s

ANSI = re.compile(r'\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])')
PROMPT = 'cfx> '
MORE = '>> '
CTRL_C, CTRL_D, UP = '\x03', '\x04', '\x1b[A'


def clean(raw):
    """Terminal output as text: no escape sequences, carriage returns or bells."""
    return ANSI.sub('', raw.decode('utf-8', 'replace')).replace('\r', '').replace('\a', '')


class Term:
    """cfx on a pseudo-terminal that is its controlling terminal (so ^C is SIGINT)."""

    def __init__(self, args=(), env=None):
        e = dict(os.environ, TERM='xterm')
        e.update(env or {})
        pid, fd = pty.fork()
        if pid == 0:  # child
            try:
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it
                os.execve(CFX, [CFX] + list(args), e)
            finally:
                os._exit(127)
        self.pid, self.fd, self.raw, self.mark = pid, fd, b'', 0
        self.status = None
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b''
        if not data:
            raise EOFError
        self.raw += data
        return True

    def text(self):
        return clean(self.raw)

    def expect(self, pattern, timeout=TIMEOUT):
        """Wait until `pattern` (a regex) appears after the mark; return the text from
        the mark up to the end of the match and move the mark there."""
        rx = re.compile(pattern, re.S)
        end = time.time() + timeout
        while True:
            text = self.text()
            m = rx.search(text, self.mark)
            if m:
                seen, self.mark = text[self.mark:m.end()], m.end()
                return seen
            left = end - time.time()
            if left <= 0:
                raise AssertionError(f'timed out waiting for {pattern!r}; got:\n'
                                     f'{text[self.mark:]!r}')
            try:
                self._read(min(left, 0.2))
            except EOFError:
                raise AssertionError(f'cfx ended while waiting for {pattern!r}; got:\n'
                                     f'{text[self.mark:]!r}')

    def send(self, s):
        os.write(self.fd, s.encode())

    def prompt(self, prompt=PROMPT, timeout=TIMEOUT):
        """Wait for the prompt, then for libedit to switch the terminal to raw mode
        (it draws the prompt first): keys sent before would meet the cooked line
        discipline (echoed twice; ^D lost).  Returns the text up to the prompt."""
        seen = self.expect(re.escape(prompt) + '$', timeout)
        end = time.time() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            if time.time() > end:
                raise AssertionError('the terminal never left canonical mode')
            time.sleep(0.005)
        return seen

    def command(self, line, prompt=PROMPT):
        """Type a line and Enter; return what was printed before the next prompt, as
        lines, without the echo of the line itself."""
        self.send(line + '\r')
        self.expect(re.escape(line) + '\n')
        body = self.prompt(prompt)[:-len(prompt)]
        return body.splitlines()

    def wait(self, timeout=TIMEOUT):
        """The exit status as os.waitstatus_to_exitcode gives it (-N: killed by N)."""
        end = time.time() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                break
            if time.time() > end:
                raise AssertionError('cfx did not exit; output:\n' + self.text())
            try:
                self._read(0.05)
            except EOFError:
                time.sleep(0.02)
        return self.status

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


class Repl(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix='cfx_repl_'))
        self.terms = []

    def tearDown(self):
        for t in self.terms:
            t.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, args=(), history=''):
        t = Term(args, {'CFX_HISTORY': history})
        self.terms.append(t)
        t.prompt()
        return t

    def test_values_statements_and_silencing(self):
        t = self.start()
        self.assertIn('LuaJIT', t.text(), 'banner')
        self.assertEqual(t.command('1+1'), ['2'])
        self.assertEqual(t.command('=x'), ['nil'])
        self.assertEqual(t.command('x = 5;'), [])
        self.assertEqual(t.command('=x'), ['5'])
        self.assertEqual(t.command('x * 2;'), [], 'a trailing ; prints nothing')
        self.assertEqual(t.command('"a\\tb", {x, y = true}'), ['"a\\tb"\t{5, y = true}'])

    def test_cfx_is_preloaded(self):
        t = self.start()
        out = t.command('=type(cfx)')
        if out == ['nil']:  # libcfx not built or not found: one warning line, no error
            self.assertIn("cfx: warning: require 'cfx' failed", t.text())
        else:
            self.assertEqual(out, ['"table"'])

    def test_multiline_function(self):
        t = self.start()
        self.assertEqual(t.command('function f(a)', prompt=MORE), [])
        self.assertEqual(t.command('  return a * 2', prompt=MORE), [])
        self.assertEqual(t.command('end'), [])
        self.assertEqual(t.command('f(21)'), ['42'])

    def test_errors_leave_the_repl_alive(self):
        t = self.start()
        out = t.command('error("boom")')
        self.assertEqual(out[0], 'stdin:1: boom')
        self.assertIn('stack traceback:', out)
        out = t.command('x = = 1')
        self.assertEqual(out, ["stdin:1: unexpected symbol near '='"])
        self.assertEqual(t.command('=1 + 2'), ['3'])

    def test_ctrl_c_at_the_prompt_clears_the_line(self):
        t = self.start()
        t.send('abc')
        t.expect('abc')
        t.send(CTRL_C)
        t.prompt()
        self.assertEqual(t.command('=7'), ['7'], 'not "abc=7"')
        t.send('for i = 1, 3 do\r')
        t.prompt(MORE)
        t.send(CTRL_C)  # drops the incomplete chunk too
        t.prompt()
        self.assertEqual(t.command('=8'), ['8'])

    def test_ctrl_c_interrupts_a_running_command(self):
        t = self.start()
        t.send('while true do os.clock() end\r')
        time.sleep(0.5)
        t.send(CTRL_C)
        seen = t.prompt()
        self.assertIn('interrupted!', seen)
        self.assertEqual(t.command('=2 + 2'), ['4'])
        # a loop calling a Lua function that calls a C function the JIT does not
        # compile: the trace returns to the interpreter at each call
        t.command('function tick(n) local s = 0 for i = 1, n do s = s + os.clock() end return n end')
        t.send('while true do tick(10) end\r')
        time.sleep(0.5)
        t.send(CTRL_C)
        self.assertIn('interrupted!', t.prompt())
        self.assertEqual(t.command('=tick(3)'), ['3'])

    def test_ctrl_c_escalates_on_a_compiled_loop(self):
        # LuaJIT runs `while true do end` as a compiled trace that never returns to the
        # interpreter, so the interrupt hook cannot fire: the first ^C is not seen, the
        # second warns, the third ends cfx (killed by SIGINT).
        t = self.start()
        if t.command('=jit.status()')[0].startswith('false'):
            self.skipTest('the JIT is off: every loop sees the first ^C')
        t.send('while true do end\r')
        time.sleep(0.5)
        t.send(CTRL_C)
        time.sleep(0.5)
        t.send(CTRL_C)
        t.expect('still running.*press \\^C again to quit')
        t.send(CTRL_C)
        self.assertEqual(t.wait(), -signal.SIGINT)

    def test_tab_completes_fields(self):
        t = self.start()
        t.send('string.fo\t')
        t.expect('string.format')
        self.assertEqual(t.command("('%d!', 5)"), ['"5!"'])
        t.send('mytable = {alpha = 1, beta = 2}\r')
        t.prompt()
        t.send('=mytable.al\t')
        t.expect('mytable.alpha')
        t.send('\r')
        self.assertEqual(t.prompt().split('\n')[1:-1], ['1'])

    def test_history_persists_across_sessions(self):
        hist = str(self.dir / 'history')
        t = self.start(history=hist)
        t.command('hist_marker = 123')
        t.command('hist_marker = 123')  # a repeat is not stored twice
        t.command('other = 1')
        t.send(CTRL_D)
        self.assertEqual(t.wait(), 0)
        text = Path(hist).read_text()
        self.assertEqual(text.count('hist_marker'), 1, text)
        t = self.start(history=hist)
        t.send(UP + UP)  # other = 1, then hist_marker = 123
        t.expect('hist_marker')
        t.send('\r')
        t.prompt()
        self.assertEqual(t.command('=hist_marker'), ['123'])

    def test_history_is_capped_at_1000_lines(self):
        hist = self.dir / 'history'
        # libedit's history file: a cookie line, then one entry per line
        hist.write_text('_HiStOrY_V2_\n' + ''.join(f'v{i}=1\n' for i in range(1200)))
        t = self.start(history=str(hist))
        t.command('newest=1')
        t.send(CTRL_D)
        self.assertEqual(t.wait(), 0)
        entries = hist.read_text().splitlines()[1:]
        self.assertEqual(len(entries), 1000)
        self.assertEqual(entries[-1], 'newest=1')
        self.assertEqual(entries[0], 'v201=1', 'the oldest lines go first')
        self.assertEqual(os.stat(hist).st_mode & 0o777, 0o600)

    def test_slow_commands_print_their_time(self):
        t = self.start()
        out = t.command('local t = os.clock() while os.clock() - t < 1.2 do end')
        self.assertEqual(len(out), 1, out)
        self.assertRegex(out[0], r'^\(took 1\.\d\d s\)$')
        self.assertEqual(t.command('=1'), ['1'], 'fast commands print no time')

    def test_ctrl_d_exits_with_status_0(self):
        t = self.start()
        t.send(CTRL_D)
        self.assertEqual(t.wait(), 0)

    def test_os_exit(self):
        t = self.start()
        t.send('os.exit(3)\r')
        self.assertEqual(t.wait(), 3)

    def test_sigterm_at_the_prompt_ends_the_repl(self):
        t = self.start()
        os.kill(t.pid, signal.SIGUSR1)  # only recorded
        self.assertEqual(t.command('=require("cfx.host").signal()'), ['"USR1"'])
        os.kill(t.pid, signal.SIGTERM)
        self.assertEqual(t.wait(), -signal.SIGTERM)

    def test_interactive_after_a_script(self):
        script = self.dir / 's.lua'
        script.write_text('answer = 42\n')
        t = self.start(['-i', str(script)])
        self.assertEqual(t.command('=answer'), ['42'])


class ReplLua(unittest.TestCase):
    def test_repl_lua_unit_tests(self):
        r = subprocess.run([CFX, str(ROOT / 'tests/app/repl_unit.lua')], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r'\d+ tests, 0 failed')


if __name__ == '__main__':
    if not os.access(CFX, os.X_OK):
        sys.exit(f'test_repl: no cfx program at {CFX} (set CFX_BIN)')
    unittest.main(verbosity=2)
