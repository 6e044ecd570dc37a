#!/usr/bin/python3
"""selection.py: selecting training views and scoring with the paper's protocol at the
dataset's scale, cfx vs pandas + scikit-learn, in one run.

    /usr/bin/python3 bench/selection.py [--n 1000000] [--generators 1000] [--repeats 3]

A store of n index entries (half fakes over G generators, half reals from 4 sources;
CommunityForensics-Small has 556K, the full set 5.4M) is written once under /tmp by
bench/selection.lua, which then times, in the cfx program: opening it, three selections
(k=100 generators with a budget of 50,000 fakes and balanced reals; a seeded 90/10
split by image; 100 images per generator with balanced reals) and cfx.eval.tables over
a score for every image (per-generator AP, AUC and accuracy, reals dealt out).

The peer is what a user of the paper's code would write: the index as a pandas
DataFrame (loaded from the same store with h5py), the same selections with
groupby/sample, and sklearn's average_precision_score and roc_auc_score per generator.
Best of R wall-clock timings each.
"""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT + '/bench')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import best, machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1_000_000)
    ap.add_argument('--generators', type=int, default=1000)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    path = f'/tmp/cfx-bench-selection-{a.n}-{a.generators}.h5'
    out = subprocess.run(run_lua.lua_command(os.path.join(ROOT, 'bench', 'selection.lua'), path, str(a.n),
                                             str(a.generators), str(a.repeats)),
                         env=run_lua.lua_env(), capture_output=True, text=True, check=True).stdout
    cfx = {line.split()[0]: float(line.split()[1]) for line in out.strip().splitlines()}

    def load():
        with h5py.File(path, 'r') as f:
            gnames = f['generators/name'][:].astype(str)
            return pd.DataFrame({'label': f['images/label'][:], 'generator': f['images/generator'][:],
                                 'name': f['images/name'][:]}), gnames
    t_open, (df, gnames) = best(load, a.repeats)
    rng = np.random.default_rng(1)

    def sel_k_budget():
        fakes = df[df.label == 1]
        gens = rng.choice(np.sort(fakes.generator.unique()), size=min(100, a.generators), replace=False)
        chosen = fakes[fakes.generator.isin(gens)]
        per = 50000 // len(gens)
        f = chosen.groupby('generator', group_keys=False).apply(lambda x: x.sample(min(len(x), per), random_state=1))
        reals = df[df.label == 0]
        return pd.concat([f, reals.sample(min(len(reals), len(f)), random_state=1)]).sort_index()

    def sel_split():
        h = pd.util.hash_pandas_object(df.name, index=False).values % 1000000
        return df[h >= 100000]

    def sel_per_generator():
        fakes = df[df.label == 1]
        f = fakes.groupby('generator', group_keys=False).apply(lambda x: x.sample(min(len(x), 100), random_state=2))
        reals = df[df.label == 0]
        return pd.concat([f, reals.sample(len(f), random_state=2)]).sort_index()

    t_k, _ = best(sel_k_budget, a.repeats)
    t_split, _ = best(sel_split, a.repeats)
    t_per, _ = best(sel_per_generator, a.repeats)

    # the protocol: each generator's fakes against a disjoint share of the reals
    y = df.label.values
    s = np.round(rng.random(a.n) * 1000) / 1000 * 0.6 + y * 0.3
    fake_gen = df.generator.values
    real_idx = np.flatnonzero(y == 0)
    share = rng.permutation(real_idx)
    gens = np.unique(fake_gen[y == 1])
    group = fake_gen.copy()
    group[share] = gens[np.arange(len(share)) % len(gens)]

    def tables():
        order = np.argsort(group, kind='stable')
        bounds = np.searchsorted(group[order], np.append(gens, gens[-1] + 1))
        rows = []
        for k in range(len(gens)):
            idx = order[bounds[k]:bounds[k + 1]]
            rows.append((average_precision_score(y[idx], s[idx]), roc_auc_score(y[idx], s[idx]),
                         np.mean((s[idx] > 0.5) == (y[idx] == 1))))
        return rows
    t_tables, _ = best(tables, 1)

    print(f'{a.n} images ({a.n // 2} fakes over {a.generators} generators); best of {a.repeats} (wall clock);',
          machine())
    print()
    print('| step | cfx (s) | pandas + scikit-learn (s) | speed-up |')
    print('|---|---:|---:|---:|')
    for name, c, p in [('open the index', cfx['open'], t_open),
                       ('select k=100, budget=50000, balanced reals', cfx['select_k_budget'], t_k),
                       ('select a 90/10 split by image', cfx['select_split_image'], t_split),
                       ('select 100 per generator, balanced reals', cfx['select_per_generator'], t_per),
                       (f'protocol tables ({a.generators} generators)', cfx['eval_tables'], t_tables)]:
        print(f'| {name} | {c:.3f} | {p:.3f} | {p / c:.1f}x |')


if __name__ == '__main__':
    main()
