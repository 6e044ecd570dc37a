#!/usr/bin/python3
"""results_log.py: what logging results costs a training loop, cfx.results vs h5py.

    /usr/bin/python3 bench/results_log.py [--steps N] [--repeats R] [--runs 50 --rows 3000 --preds 10000]

The Lua half (bench/results_log.lua, started as tests/reference/run_lua.py does;
CFX_LUAJIT_CMD=build/cfx to use the cfx program) times run:scalars of one row of six
scalars per step, with the default flush every 10 s and with a flush after every step,
and the flush and the load of a file of RUNS runs x ROWS train rows + PREDS predictions
each.  The Python half does what a user of h5py would do instead: one resizable
(chunked) compound dataset of the same six columns, resized and written per step,
with no flush, and with f.flush() after every step (which, unlike cfx's flush, leaves a
file that a kill during the write can corrupt).  Best and median of R timings; files in
a temporary directory (on the same filesystem as /tmp; pass --dir to choose).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import machine  # noqa: E402

DT = np.dtype([('step', '<i8'), ('epoch', '<i8'), ('loss', '<f8'), ('lr', '<f8'), ('images_per_s', '<f8'),
               ('grad_norm', '<f8')])


def h5py_side(d, steps, repeats, flush):
    times = []
    for rep in range(repeats):
        path = os.path.join(d, 'h5py_%d.h5' % rep)
        with h5py.File(path, 'w') as f:
            g = f.create_group('runs/r')
            ds = g.create_dataset('train', shape=(0,), maxshape=(None,), chunks=(1024,), dtype=DT)
            row = np.zeros((), DT)
            t0 = time.perf_counter()
            for s in range(1, steps + 1):
                row['step'], row['epoch'], row['loss'] = s, s // 1000, 1 / s
                row['lr'], row['images_per_s'], row['grad_norm'] = 2e-5 * s / steps, 812.5, 0.25 + 1 / s
                ds.resize((s,))
                ds[s - 1] = row
                if flush:
                    f.flush()
            times.append((time.perf_counter() - t0) / steps * 1e6)
        os.remove(path)
    times.sort()
    return times[0], statistics.median(times)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=200000)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--runs', type=int, default=50)
    ap.add_argument('--rows', type=int, default=3000)
    ap.add_argument('--preds', type=int, default=10000)
    ap.add_argument('--dir', default=None)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        script = os.path.join(ROOT, 'bench', 'results_log.lua')
        largs = [d, str(a.steps), str(a.repeats), str(a.runs), str(a.rows), str(a.preds)]
        print('machine: ' + machine('h5py %s (HDF5 %s)' % (h5py.__version__, h5py.version.hdf5_version)))
        print('command: /usr/bin/python3 bench/results_log.py ' + ' '.join(argv))
        print('lua side: ' + run_lua.describe_command(script, *largs))
        proc = subprocess.run(run_lua.lua_command(script, *largs), env=run_lua.lua_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print('the Lua side failed (exit %d):\n%s' % (proc.returncode, proc.stderr))
            return 1
        lua = {}
        for line in proc.stdout.splitlines():
            name, best, med = line.split('\t')
            lua[name] = (float(best), float(med))
        hsteps = max(1000, a.steps // 10)
        h_plain = h5py_side(d, hsteps, a.repeats, False)
        h_flush = h5py_side(d, max(200, a.steps // 500), a.repeats, True)
    n_flush = max(200, a.steps // 500)
    print('best (median) of %d timings' % a.repeats)
    print()
    print('| per training step: one row of 6 scalars | us per step |')
    print('|---|---:|')
    print('| cfx `run:scalars` (flush every 10 s), %d steps | %.2f (%.2f) |' % ((a.steps,) + lua['append_us']))
    print('| h5py: resize + write a row of a chunked compound dataset, %d steps | %.2f (%.2f) |'
          % ((hsteps,) + h_plain))
    print('| cfx `run:scalars` with flush_every = 0 (durable file every step), %d steps | %.0f (%.0f) |'
          % ((n_flush,) + lua['append_flush_us']))
    print('| h5py: resize + write + `f.flush()` every step, %d steps | %.0f (%.0f) |' % ((n_flush,) + h_flush))
    print()
    print('| a file of %d runs x %d train rows + %d predictions each (%.1f MB) | ms |'
          % (a.runs, a.rows, a.preds, lua['big_file_mb'][0]))
    print('|---|---:|')
    print('| cfx flush (write all, fsync, rename, fsync dir) | %.1f (%.1f) |' % lua['big_flush_ms'])
    print('| cfx open (read-only: loads everything) | %.1f (%.1f) |' % lua['big_open_ms'])
    best = lua['big_flush_ms'][0]
    print()
    print('Amortised: with the default 10 s interval, that flush adds %.0f us per 10 s, %.3f%% of the time.'
          % (best * 1e3, best / 100))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
