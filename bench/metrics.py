#!/usr/bin/python3
"""metrics.py: average precision, ROC AUC and the per-generator protocol on 10^6 scores,
cfx vs scikit-learn, in one run.

    /usr/bin/python3 bench/metrics.py [--n 1000000] [--generators 1000] [--repeats 3]

Scores are rounded to 1000 levels (heavy ties), labels drawn with a score-dependent
rate, generators uniform.  cfx runs in a child (bench/metrics.lua through
tests/reference/run_lua.py; CFX_LUAJIT_CMD=build/cfx for the cfx program) on the same
arrays, written to files; sklearn runs here.  Best of R wall-clock timings each.
Per generator, sklearn is called once per generator on its own images (what a user
would write); cfx.metrics.by_group does all generators in one call.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import best  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1_000_000)
    ap.add_argument('--generators', type=int, default=1000)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    s = np.round(rng.random(a.n) * 1000) / 1000
    y = (rng.random(a.n) < 0.2 + 0.6 * s).astype(np.uint8)
    g = rng.integers(1, a.generators + 1, a.n).astype(np.int64)
    with tempfile.TemporaryDirectory() as d:
        s.astype('<f8').tofile(f'{d}/s')
        y.tofile(f'{d}/y')
        g.astype('<i8').tofile(f'{d}/g')
        out = subprocess.run(run_lua.lua_command(os.path.join(ROOT, 'bench', 'metrics.lua'), d, str(a.n),
                                                 str(a.repeats)),
                             env=run_lua.lua_env(), capture_output=True, text=True, check=True).stdout
    cfx = dict(line.split() for line in out.strip().splitlines())
    sk_ap, _ = best(lambda: average_precision_score(y, s), a.repeats)
    sk_auc, _ = best(lambda: roc_auc_score(y, s), a.repeats)
    order = np.argsort(g, kind='stable')
    bounds = np.searchsorted(g[order], np.arange(1, a.generators + 2))

    def per_generator():
        for k in range(a.generators):
            idx = order[bounds[k]:bounds[k + 1]]
            if 0 < y[idx].sum() < len(idx):
                average_precision_score(y[idx], s[idx])
    sk_group, _ = best(per_generator, 1)
    print(f'{a.n} scores, 1000 tie levels, {a.generators} generators; best of {a.repeats} (wall clock)\n')
    print('| metric | cfx (s) | scikit-learn (s) | speed-up |')
    print('|---|---:|---:|---:|')
    for name, c, k in [('average precision', float(cfx['ap']), sk_ap), ('ROC AUC', float(cfx['auc']), sk_auc),
                       (f'AP per generator ({a.generators})', float(cfx['group']), sk_group)]:
        print(f'| {name} | {c:.3f} | {k:.3f} | {k / c:.1f}x |')


if __name__ == '__main__':
    main()
