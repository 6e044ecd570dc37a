#!/usr/bin/python3
"""startup.py: start-up time of cfx vs `python3 -c 'import torch'`.

    /usr/bin/python3 bench/startup.py [--runs N]

Times, in one run, the median (and min) wall time of N runs (default 11) of each of:

    cfx -e ''                     the host alone (LuaJIT, no libtorch)
    cfx -e 'require "cfx"'        the host + libcfx + libtorch + the Lua modules
    /usr/bin/python3 -c ''        baseline
    /usr/bin/python3 -c 'import torch'

cfx is $CFX_BIN, else build/cfx.  While that program does not exist yet the two cfx
rows fall back to plain luajit (package.path pointing at lua/, CFX_LIB at
build/libcfx.so), and the table says so.  Runs are interleaved (one of each command
per round) so that a burst of load on the machine hits every row alike.  Prints the
machine, the exact commands and a Markdown table.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'bench'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from op_overhead import machine  # noqa: E402


def commands():
    """[(label, argv, env)] and a note on what runs the cfx rows."""
    cfx = os.environ.get('CFX_BIN') or os.path.join(ROOT, 'build', 'cfx')
    env = dict(os.environ)
    if os.access(cfx, os.X_OK):
        note = 'cfx rows: %s' % cfx
        rows = [("cfx -e ''", [cfx, '-e', ''], env),
                ("cfx -e 'require \"cfx\"'", [cfx, '-e', 'require "cfx"'], env)]
    else:
        lua = os.path.join(ROOT, 'lua')
        setup = "package.path='%s/?.lua;%s/?/init.lua;'..package.path" % (lua, lua)
        lenv = run_lua.lua_env()
        note = ('%s does not exist yet: the cfx rows run plain luajit instead (CFX_LIB=%s, package.path set '
                'with -e)' % (cfx, lenv['CFX_LIB']))
        rows = [("luajit -e '' (for cfx -e '')", ['luajit', '-e', ''], lenv),
                ("luajit -e 'require \"cfx\"' (for cfx -e 'require \"cfx\"')",
                 ['luajit', '-e', setup + "; require 'cfx'"], lenv)]
    rows += [("python3 -c ''", ['/usr/bin/python3', '-c', ''], env),
             ("python3 -c 'import torch'", ['/usr/bin/python3', '-c', 'import torch'], env)]
    return rows, note


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=11)
    args = ap.parse_args(argv)
    rows, note = commands()
    print('machine: ' + machine())
    print('command: /usr/bin/python3 bench/startup.py --runs %d' % args.runs)
    print(note)
    for label, argv_, _ in rows:
        print('  %s:  %s' % (label, ' '.join(shlex.quote(a) for a in argv_)))
    times = {label: [] for label, _, _ in rows}
    for label, argv_, env in rows:       # one untimed run each: page cache, first-run effects
        subprocess.run(argv_, env=env, check=True, stdout=subprocess.DEVNULL)
    for _ in range(args.runs):
        for label, argv_, env in rows:
            t0 = time.perf_counter()
            subprocess.run(argv_, env=env, check=True, stdout=subprocess.DEVNULL)
            times[label].append(time.perf_counter() - t0)
    print()
    print('| command | median ms | min ms |')
    print('|---|---:|---:|')
    for label, _, _ in rows:
        t = times[label]
        print('| `%s` | %.0f | %.0f |' % (label, statistics.median(t) * 1e3, min(t) * 1e3))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
