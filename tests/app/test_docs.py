#!/usr/bin/python3
"""test_docs.py: every runnable example of README.md and docs/*.md, run as a user would.

    CFX_BIN=build/cfx /usr/bin/python3 tests/app/test_docs.py [-v] [PAGE...]

The pages are read in order (README.md, then docs/*.md sorted), and their fenced blocks
run in one scratch directory, as a user following the docs in a project directory would:

- ```lua: a chunk run by the cfx program (`local cfx = require 'cfx'` is in scope, as
  in the REPL). `print(...)  --> TEXT` checks that the print shows TEXT; a `-->` on a
  line without a print is an error, so every shown value is a checked one.
- ```sh: a script run by bash -e; `cfx` and `build/cfx` are the program under test.
  A block (```sh or plain ```) whose lines start with `$ ` is a transcript: each
  command runs and its output (stdout and stderr) must match the lines below it; it
  must exit 0, or N when the command ends with the comment `# exits N`.
- ```python: run by /usr/bin/python3.
- Expected output (a transcript, a `-->`, or a plain block marked `output`) matches the
  actual output line by line with runs of spaces collapsed and blank lines ignored; a
  line `...` stands for any number of lines and `...` inside a line for any text.

An HTML comment on the line before a fence changes what happens to the block:

    <!-- docs-test: skip (REASON) -->   not run (real data, a GPU, a cluster, minutes);
                                        printed as skipped with the reason
    <!-- docs-test: setup -->           run first, before any page (the shared data)
    <!-- docs-test: continues -->       a ```lua block that goes on from the previous one
                                        (its locals); they run as one chunk
    <!-- docs-test: output -->          a plain block: the output of the previous block
    <!-- docs-test: file NAME -->       the block is the contents of the file NAME

Every ```lua, ```sh and ```python block is run unless marked skip; other blocks
(diagrams, formats) are text.  The scratch directory holds `data/synth` (made by the
README's setup block: `cfx synth --out data/synth`), `photo.jpg` (128 x 96), and links
to experiments/ and to the program as build/cfx.  The figure docs/img/augment_grid.png
must be what docs/augment_grid.lua draws.

Environment: CFX_BIN (the program), CFX_DOCS_THREADS (libtorch threads, 1 by default),
CFX_DOCS_REUSE_DATA=DIR (while editing docs: use DIR as data/ instead of running the
setup).  Page names as arguments (`data`, `README`) run those pages only.
"""
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
TIMEOUT = 300
ALL_PAGES = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))
PAGES = list(ALL_PAGES)  # the pages to test (all, or those named on the command line)
RUNNABLE = {'lua', 'sh', 'python'}
DIRECTIVE = re.compile(r'^<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->\s*$')


class Block:
    def __init__(self, page, line, lang, text, directive, arg):
        self.page, self.line, self.lang, self.text = page, line, lang, text
        self.directive, self.arg = directive, arg
        self.output = None  # the expected output shown in an `output` block after it
        self.group = None  # continuing ```lua blocks, for the first of them

    @property
    def where(self):
        return f'{self.page.relative_to(ROOT)}:{self.line}'

    def transcript(self):
        lines = [l for l in self.text.splitlines() if l.strip()]
        return bool(lines) and lines[0].startswith('$ ')


def parse(page):
    """The fenced blocks of a page, with the directive just above each."""
    blocks, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r'^```(\w*)\s*$', lines[i])
        if not m:
            i += 1
            continue
        start, lang = i + 1, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith('```'):
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        d = DIRECTIVE.match(lines[k]) if k >= 0 else None
        directive, arg = (d.group(1), d.group(2)) if d else (None, '')
        if directive and directive not in ('skip', 'setup', 'continues', 'output', 'file'):
            raise ValueError(f'{page}:{k + 1}: unknown docs-test directive {directive!r}')
        if directive == 'skip' and not re.match(r'^\(.+\)$', arg):
            raise ValueError(f'{page}:{k + 1}: docs-test: skip needs a reason in parentheses')
        blocks.append(Block(page, start + 1, lang, '\n'.join(lines[start:j]), directive, arg))
        i = j + 1
    # attach outputs and continuations to the blocks they belong to
    out = []
    for b in blocks:
        if b.directive == 'output':
            if not out:
                raise ValueError(f'{b.where}: an output block with no block before it')
            out[-1].output = b.text
        elif b.directive == 'continues':
            first = next((p for p in reversed(out) if p.lang == 'lua'), None)
            if b.lang != 'lua' or first is None:
                raise ValueError(f'{b.where}: only a ```lua block after another can continue it')
            if first.group is None:
                first.group = [first]
            first.group.append(b)
        else:
            out.append(b)
    return out


# ---- matching output ------------------------------------------------------------------
def norm(lines):
    return [' '.join(l.split()) for l in lines if l.strip()]


def line_matches(pattern, actual):
    if '...' not in pattern:
        return pattern == actual
    rx = '.*'.join(re.escape(p) for p in pattern.split('...'))
    return re.fullmatch(rx, actual) is not None


def matches(expected, actual):
    """expected and actual as lists of normalised lines; '...' lines match any run."""
    e, a = expected, actual
    memo = {}

    def m(i, j):
        if (i, j) in memo:
            return memo[i, j]
        if i == len(e):
            r = j == len(a)
        elif e[i] == '...':
            r = any(m(i + 1, k) for k in range(j, len(a) + 1))
        else:
            r = j < len(a) and line_matches(e[i], a[j]) and m(i + 1, j + 1)
        memo[i, j] = r
        return r

    return m(0, 0)


def diff(expected, actual):
    return ('expected:\n' + ''.join(f'    {l}\n' for l in expected) +
            'got:\n' + ''.join(f'    {l}\n' for l in actual))


# ---- running ----------------------------------------------------------------------------
PRINT_CHECK = re.compile(r'^(\s*)print\((.*)\)\s*-->\s?(.*?)\s*$')

# Runs chunk files one after another in one cfx process; each chunk's output is
# delimited on both streams, and its checks appended to a file.
DRIVER = r'''
local checks = assert(io.open(arg[1], 'a'))
function __doc_check(id, ...)
  local n, parts = select('#', ...), {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local s = table.concat(parts, '\t')
  checks:write(id, '\t', (s:gsub('\\', '\\\\'):gsub('\n', '\\n')), '\n')
  checks:flush()
  print(...)
end
for i = 2, #arg do
  local path, name = arg[i]:match('^(.-)=(.*)$')
  io.stdout:write('\n@@docs-block ', i - 1, '\n') io.stdout:flush()
  io.stderr:write('\n@@docs-block ', i - 1, '\n') io.stderr:flush()
  local f = assert(io.open(path))
  local chunk, err = loadstring(f:read('*a'), '@' .. name)
  f:close()
  local ok = chunk ~= nil
  if chunk then ok, err = xpcall(chunk, debug.traceback) end
  io.stdout:flush()
  if not ok then io.stderr:write('\n@@docs-error ', tostring(err), '\n') end
  io.stderr:flush()
end
'''


class Runner:
    def __init__(self, work):
        self.work = work
        self.env = dict(os.environ)
        shim = work / '.bin'
        shim.mkdir()
        os.symlink(CFX, shim / 'cfx')
        (work / 'build').mkdir()
        os.symlink(CFX, work / 'build' / 'cfx')
        os.symlink(ROOT / 'experiments', work / 'experiments')
        self.env['PATH'] = f'{shim}:{self.env["PATH"]}'
        self.env['CFX_HISTORY'] = ''
        # one libtorch thread: on two loaded cores, two threads spin and run several times
        # slower (the examples' outputs do not depend on it)
        self.env['CFX_THREADS'] = os.environ.get('CFX_DOCS_THREADS', '1')
        (work / '.driver.lua').write_text(DRIVER)
        self.ids = itertools.count(1)  # chunk and check numbers (the setup runs in a thread)

    def proc(self, cmd, **kw):
        return subprocess.run(cmd, cwd=self.work, env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, **kw)

    def check_output(self, block, out):
        if block.output is not None:
            e, a = norm(block.output.splitlines()), norm(out.splitlines())
            if not matches(e, a):
                return f'{block.where}: the output differs from the block below it\n' + diff(e, a)
        return None

    def sh(self, block):
        if block.transcript():
            cmds, cur = [], None
            for l in block.text.splitlines():
                if l.startswith('$ '):
                    cur = [l[2:], []]
                    cmds.append(cur)
                else:
                    cur[1].append(l)
            for cmd, expected in cmds:
                r = subprocess.run(['bash', '-c', cmd], cwd=self.work, env=self.env, text=True,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=TIMEOUT)
                m = re.search(r'#\s*exits?\s+(\d+)\b', cmd)  # `$ cmd   # exits 1`: the status shown
                want = int(m.group(1)) if m else 0
                if r.returncode != want:
                    return f'{block.where}: `{cmd}` exited {r.returncode}, not {want}:\n{r.stdout}'
                e, a = norm(expected), norm(r.stdout.splitlines())
                if not matches(e, a):
                    return f'{block.where}: `{cmd}` printed something else\n' + diff(e, a)
            return None
        r = self.proc(['bash', '-e', '-o', 'pipefail', '-c', block.text])
        if r.returncode != 0:
            return f'{block.where}: the block exited {r.returncode}:\n{r.stdout}{r.stderr}'
        return self.check_output(block, r.stdout)

    def python(self, block):
        r = self.proc(['/usr/bin/python3', '-c', block.text])
        if r.returncode != 0:
            return f'{block.where}: the block exited {r.returncode}:\n{r.stdout}{r.stderr}'
        return self.check_output(block, r.stdout)

    def lua(self, blocks):
        """Runs the ```lua blocks (each with its continuations) in one cfx process;
        returns one error (or None) per block."""
        args, expect = [], []
        for b in blocks:
            group = b.group or [b]
            lines = ['local cfx = require "cfx"']  # line 1 of the page is never in a block
            for g in group:
                body = g.text.splitlines()
                while len(lines) < g.line - 1:
                    lines.append('')
                for k, l in enumerate(body):
                    m = PRINT_CHECK.match(l)
                    if m:
                        n = next(self.ids)
                        expect.append((n, b, g.line + k, m.group(3)))
                        l = f'{m.group(1)}__doc_check({n}, {m.group(2)})'
                    elif '-->' in l:
                        expect.append((None, b, g.line + k, l))
                    lines.append(l)
            chunk = self.work / f'.chunk{next(self.ids)}.lua'
            chunk.write_text('\n'.join(lines) + '\n')
            args.append(f'{chunk}={b.page.relative_to(ROOT)}')
        checks = self.work / f'.checks{next(self.ids)}'
        checks.write_text('')
        r = self.proc([CFX, str(self.work / '.driver.lua'), str(checks)] + args)
        outs = r.stdout.split('\n@@docs-block ')[1:]
        errs = r.stderr.split('\n@@docs-block ')[1:]
        got = {}
        for line in checks.read_text().splitlines():
            i, _, s = line.partition('\t')
            got[int(i)] = s.replace('\\n', '\n').replace('\\\\', '\\')
        results = []
        for i, b in enumerate(blocks):
            if i >= len(outs) or i >= len(errs):
                results.append(f'{b.where}: cfx stopped before this block (exit {r.returncode}):\n'
                               f'{r.stdout[-2000:]}{r.stderr[-4000:]}')
                continue
            out = outs[i].partition('\n')[2]
            err = errs[i].partition('\n')[2]
            problems = []
            if '\n@@docs-error ' in '\n' + err:
                problems.append(f'{b.where}: the block failed:\n{err.strip()}')
            for n, eb, line, text in expect:
                if eb is not b:
                    continue
                where = f'{b.page.relative_to(ROOT)}:{line}'
                if n is None:
                    problems.append(f'{where}: `-->` on a line without print(...): nothing checks it: {text.strip()}')
                elif n not in got:
                    if not problems:
                        problems.append(f'{where}: the print was not reached')
                else:
                    e, a = norm(text.splitlines()), norm(got[n].splitlines())
                    if not matches(e, a):
                        problems.append(f'{where}: print shows something else\n' + diff(e, a))
            if not problems:
                o = self.check_output(b, out)
                if o:
                    problems.append(o)
            results.append('\n'.join(problems) or None)
        return results

    def run_blocks(self, blocks, report, before=lambda blocks: None):
        """Runs blocks in order (consecutive ```lua blocks in one process); before(list of
        blocks) is called before they run, report(block, error or None, seconds) after."""
        i = 0
        while i < len(blocks):
            b = blocks[i]
            if b.lang == 'lua':
                j = i
                while j < len(blocks) and blocks[j].lang == 'lua':
                    j += 1
                before(blocks[i:j])
                t0 = time.time()
                errs = self.lua(blocks[i:j])
                dt = (time.time() - t0) / (j - i)
                for bb, e in zip(blocks[i:j], errs):
                    report(bb, e, dt)
                i = j
                continue
            before([b])
            t0 = time.time()
            if b.lang == 'sh' or (b.lang == '' and b.transcript()):
                e = self.sh(b)
            elif b.lang == 'python':
                e = self.python(b)
            else:
                e = None
            report(b, e, time.time() - t0)
            i += 1


def runnable(b):
    return b.lang in RUNNABLE or (b.lang == '' and b.transcript())


# A block that reads the setup's data waits until the setup is done; the others run
# meanwhile (the setup is `cfx synth --out data/synth`, the bulk of the test's time).
NEEDS_SETUP = re.compile(r'\bdata/synth/')


def needs_setup(b):
    return any(NEEDS_SETUP.search(g.text) for g in (b.group or [b]))


def page_needs_setup(blocks):
    return any(runnable(b) and b.directive not in ('skip', 'setup', 'file') and needs_setup(b) for b in blocks)


class Docs(unittest.TestCase):
    """One test per page, all in one scratch directory: README.md and docs/*.md in reading
    order, except that the pages that read the setup's data come last."""

    @classmethod
    def setUpClass(cls):
        cls.work = Path(tempfile.mkdtemp(prefix='cfx_docs_'))
        cls.runner = Runner(cls.work)
        cls.pages = {p: parse(p) for p in ALL_PAGES}
        cls.skipped = []
        # files the examples read
        r = cls.runner.proc([CFX, '-e', '''
            local cfx = require 'cfx'
            local y = cfx.arange(96, {dtype = 'float32'}):view(96, 1):expand(96, 128)
            local x = cfx.arange(128, {dtype = 'float32'}):view(1, 128):expand(96, 128)
            local img = cfx.stack({x * 2, y * 2, (x + y)}, 3):clamp(0, 255):byte()
            cfx.image.save('photo.jpg', img)'''])
        assert r.returncode == 0, r.stderr
        for p in ALL_PAGES:
            for b in cls.pages[p]:
                if b.directive == 'file':
                    (cls.work / b.arg).write_text(b.text + '\n')
        setup = [b for p in ALL_PAGES for b in cls.pages[p] if b.directive == 'setup']
        cls.setup_errors = []

        def report(b, e, dt):
            print(f'  setup {b.where} {b.lang}: {"ok" if not e else "FAILED"} ({dt:.1f} s)', flush=True)
            if e:
                cls.setup_errors.append(e)
        reuse = os.environ.get('CFX_DOCS_REUSE_DATA')  # while editing docs: a data/ made before
        if reuse:
            os.symlink(os.path.abspath(reuse), cls.work / 'data')
            print(f'  setup: using {reuse} for data/', flush=True)
            setup = []
        cls.setup_done = threading.Event()

        def run_setup():
            t0 = time.time()
            try:
                cls.runner.run_blocks(setup, report)
            except Exception as e:  # noqa: BLE001 -- reported by every page that waits
                cls.setup_errors.append(f'setup: {e!r}')
            print(f'  setup: {time.time() - t0:.1f} s', flush=True)
            cls.setup_done.set()
        threading.Thread(target=run_setup, daemon=True).start()

    @classmethod
    def wait_setup(cls, blocks):
        if any(needs_setup(b) for b in blocks) and not cls.setup_done.is_set():
            t0 = time.time()
            cls.setup_done.wait()
            print(f'  (waited {time.time() - t0:.1f} s for the setup)', flush=True)
        if cls.setup_errors:
            raise AssertionError('setup failed:\n' + '\n'.join(cls.setup_errors))

    @classmethod
    def tearDownClass(cls):
        cls.setup_done.wait()
        shutil.rmtree(cls.work, ignore_errors=True)
        for where, reason in cls.skipped:
            print(f'  skipped {where}: {reason}')
        print(f'  {len(cls.skipped)} blocks skipped')

    def page(self, p):
        todo, errors = [], []
        for b in self.pages[p]:
            if b.directive in ('setup', 'file'):
                continue
            if b.directive == 'skip':
                if runnable(b):
                    self.skipped.append((b.where, b.arg[1:-1]))
                continue
            if runnable(b):
                todo.append(b)

        def report(b, e, dt):
            kind = 'transcript' if b.lang != 'lua' and b.transcript() else b.lang
            print(f'  {b.where} {kind}: {"ok" if not e else "FAILED"} ({dt:.1f} s)', flush=True)
            if e:
                errors.append(e)
        self.runner.run_blocks(todo, report, self.wait_setup)
        if errors:
            self.fail('\n\n'.join(errors))


class Figures(unittest.TestCase):
    def test_augment_grid_is_what_the_script_draws(self):
        """docs/img/augment_grid.png is what docs/augment_grid.lua draws today."""
        from PIL import Image, ImageChops
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, 'grid.png')
            r = subprocess.run([CFX, str(ROOT / 'docs' / 'augment_grid.lua'), out], capture_output=True,
                               text=True, timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            drawn = Image.open(out).convert('RGB')
            committed = Image.open(ROOT / 'docs' / 'img' / 'augment_grid.png').convert('RGB')
            self.assertEqual(drawn.size, committed.size)
            box = ImageChops.difference(drawn, committed).getbbox()
            self.assertIsNone(box, f'docs/img/augment_grid.png differs from what docs/augment_grid.lua draws '
                                   f'(in the box {box}): run cfx docs/augment_grid.lua and commit the image')


def add_tests():
    # the pages that need the setup's data last, so that the others run while it is made
    order = sorted(PAGES, key=lambda p: (page_needs_setup(parse(p)), ALL_PAGES.index(p)))
    for i, p in enumerate(order):
        name = f'test_{i:02d}_{p.stem.replace("-", "_")}'
        setattr(Docs, name, lambda self, p=p: self.page(p))


add_tests()

if __name__ == '__main__':
    if not os.access(CFX, os.X_OK):
        sys.exit(f'test_docs: no cfx program at {CFX} (set CFX_BIN)')
    want = [a for a in sys.argv[1:] if not a.startswith('-')]
    if want:  # page names: run those only
        PAGES[:] = [p for p in PAGES if p.name in want or p.stem in want]
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a.startswith('-')]
        for n in [n for n in dir(Docs) if n.startswith('test_')]:
            delattr(Docs, n)
        add_tests()
    unittest.main(verbosity=2)
