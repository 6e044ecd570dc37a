#!/usr/bin/python3
"""op_overhead.py: per-op call overhead of tiny tensor ops, cfx from Lua vs eager torch.

    /usr/bin/python3 bench/op_overhead.py [--iters N] [--repeats R]

One run measures both sides: the Lua half runs bench/op_overhead.lua in a child
process (started as tests/reference/run_lua.py does; CFX_LUAJIT_CMD=build/cfx to use
the cfx program), the Python half runs here with `import torch`.  Both use ONE
libtorch thread (cfx.threads(1) and torch.set_num_threads(1)) and the same ops on
the same shapes, N calls per timing (default 200,000), best and median of R timings
(default 5).  The ratio column compares the best timings.  Prints the machine, the
exact commands and a Markdown table of ns per op (docs/performance.md, "Tensors").
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import machine  # noqa: E402


def torch_side(iters, repeats):
    import torch
    torch.set_num_threads(1)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    a1, b1 = torch.randn(1), torch.randn(1)
    acc = torch.zeros(4, 4)

    def add(n):
        for _ in range(n):
            c = a + b
        return c

    def add1(n):
        for _ in range(n):
            c = a1 + b1
        return c

    def add_(n):
        for _ in range(n):
            acc.add_(b)
        return acc

    def tsum(n):
        for _ in range(n):
            s = a.sum()
        return s

    def mm(n):
        for _ in range(n):
            c = a.matmul(b)
        return c

    rows = []
    for name, fn in [('c = a + b (4x4)', add), ('c = a + b (1 element)', add1),
                     ('a:add_(b) (4x4, in place)', add_), ('s = t:sum() (4x4)', tsum),
                     ('c = a:matmul(b) (4x4)', mm)]:
        fn(min(iters, 20000))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(iters)
            times.append((time.perf_counter() - t0) / iters * 1e9)
            acc.zero_()
        times.sort()
        rows.append((name, times[0], statistics.median(times)))
    return rows, torch.__version__, torch.get_num_threads()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--iters', type=int, default=200000)
    ap.add_argument('--repeats', type=int, default=5)
    args = ap.parse_args(argv)
    script = os.path.join(ROOT, 'bench', 'op_overhead.lua')
    env = run_lua.lua_env()
    env['CFX_THREADS'] = '1'
    lua_cmd = run_lua.lua_command(script, str(args.iters), str(args.repeats))
    print('machine: ' + machine())
    print('command: /usr/bin/python3 bench/op_overhead.py --iters %d --repeats %d' % (args.iters, args.repeats))
    print('lua side: CFX_THREADS=1 ' + run_lua.describe_command(script, str(args.iters), str(args.repeats)))
    print('python side: in this process, import torch; torch.set_num_threads(1)')
    proc = subprocess.run(lua_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print('the Lua side failed (exit %d):\n%s' % (proc.returncode, proc.stderr))
        return 1
    lua = {}
    for line in proc.stdout.splitlines():
        name, best, med = line.split('\t')
        lua[name] = (float(best), float(med))
    rows, version, nthreads = torch_side(args.iters, args.repeats)
    print('torch %s, %d thread(s) on both sides; %d calls per timing, best (median) of %d timings'
          % (version, nthreads, args.iters, args.repeats))
    print()
    print('| op | cfx (Lua) ns/op | torch (Python) ns/op | cfx / torch |')
    print('|---|---:|---:|---:|')
    for name, best, med in rows:
        lb, lm = lua.pop(name)
        print('| `%s` | %.0f (%.0f) | %.0f (%.0f) | %.2f |' % (name, lb, lm, best, med, lb / best))
    for name, (lb, lm) in lua.items():     # Lua-only rows (the C ABI without Lua)
        print('| %s | %.0f (%.0f) | - | - |' % (name, lb, lm))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
