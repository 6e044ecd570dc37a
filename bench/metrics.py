#!/usr/bin/python3
"""metrics.py: average precision, ROC AUC, the per-generator protocol, ECE, EER and the
bootstrap interval of mAP on 10^6 scores, cfx vs scikit-learn / numpy, in one run.

    /usr/bin/python3 bench/metrics.py [--n 1000000] [--generators 1000] [--repeats 3]
                                      [--resamples 1000] [--numpy-resamples 3]

Scores are rounded to 1000 levels (heavy ties), labels drawn with a score-dependent
rate, generators uniform.  cfx runs in a child (bench/metrics.lua through
tests/reference/run_lua.py; CFX_LUAJIT_CMD=build/cfx for the cfx program) on the same
arrays, written to files; sklearn runs here.  Best of R wall-clock timings each.
Per generator, sklearn is called once per generator on its own images (what a user
would write); cfx.metrics.by_group does all generators in one call.  ECE: 15 equal-width
bins, sklearn's calibration_curve plus the weighted sum; EER: roc_curve and the linear
crossing.  The bootstrap (nested: generators, then each one's fakes and reals) runs once
in cfx with --resamples; numpy's (the same resampling, vectorised: one lexsort per
resample) runs --numpy-resamples and is scaled to --resamples (said in the row).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import best  # noqa: E402


def ece_numpy(y, s, bins=15):
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins)
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], s), minlength=bins)
    return np.sum(counts[counts > 0] / len(s) * np.abs(prob_true - prob_pred))


def eer_numpy(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    d = fpr - (1 - tpr)
    k = int(np.argmax(d >= 0))
    return fpr[k] if d[k] == 0 else fpr[k - 1] + d[k - 1] / (d[k - 1] - d[k]) * (fpr[k] - fpr[k - 1])


def bootstrap_numpy(s, y, g, ngen, resamples, rng, thr=0.5):
    """mAP and mean accuracy per resample: generators drawn with replacement, each drawn
    one's fakes and own reals drawn with replacement, AP with ties per drawn slot."""
    order = np.lexsort((y, g))  # by generator, reals before fakes
    gs, ys, ss = g[order], y[order], s[order]
    start = np.searchsorted(gs, np.arange(1, ngen + 2))
    fstart = start[:-1] + np.bincount(gs - 1, weights=1 - ys, minlength=ngen).astype(np.int64)
    nreal, nfake = fstart - start[:-1], start[1:] - fstart
    maps = []
    for _ in range(resamples):
        units = rng.integers(0, ngen, ngen)
        sizes = nreal[units] + nfake[units]
        slot = np.repeat(np.arange(ngen), sizes)
        pos = np.arange(len(slot)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        is_fake = pos >= np.repeat(nreal[units], sizes)
        base = np.where(is_fake, np.repeat(fstart[units], sizes), np.repeat(start[:-1][units], sizes))
        width = np.where(is_fake, np.repeat(nfake[units], sizes), np.repeat(nreal[units], sizes))
        idx = base + (rng.random(len(slot)) * width).astype(np.int64)
        sc, lab = ss[idx], is_fake.astype(np.int64)
        o = np.lexsort((-sc, slot))
        sc, lab, sl = sc[o], lab[o], slot[o]
        tp, fp = np.cumsum(lab), np.cumsum(1 - lab)
        first = np.searchsorted(sl, np.arange(ngen))
        tp0 = np.r_[0, tp][first][sl]
        fp0 = np.r_[0, fp][first][sl]
        tp, fp = tp - tp0, fp - fp0  # within the slot
        end = np.r_[(sl[1:] != sl[:-1]) | (sc[1:] != sc[:-1]), True]
        te, fe, se = tp[end], fp[end], sl[end]
        prev = np.r_[0, te[:-1]]
        prev[np.r_[True, se[1:] != se[:-1]]] = 0
        ap = np.bincount(se, weights=(te - prev) * te / np.maximum(te + fe, 1), minlength=ngen) / nfake[units]
        acc = np.bincount(sl, weights=np.where(lab == 1, sc > thr, sc <= thr), minlength=ngen) / sizes
        maps.append((ap.mean(), acc.mean()))
    return np.array(maps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1_000_000)
    ap.add_argument('--generators', type=int, default=1000)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--resamples', type=int, default=1000)
    ap.add_argument('--numpy-resamples', type=int, default=3)
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
                                                 str(a.repeats), str(a.resamples)),
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
    sk_ece, _ = best(lambda: ece_numpy(y, s), a.repeats)
    sk_eer, _ = best(lambda: eer_numpy(y, s), a.repeats)
    np_boot, _ = best(lambda: bootstrap_numpy(s, y, g, a.generators, a.numpy_resamples, np.random.default_rng(0)), 1)
    np_boot *= a.resamples / a.numpy_resamples
    print(f'{a.n} scores, 1000 tie levels, {a.generators} generators; best of {a.repeats} (wall clock)\n')
    print('| metric | cfx (s) | scikit-learn (s) | speed-up |')
    print('|---|---:|---:|---:|')
    for name, c, k in [('average precision', float(cfx['ap']), sk_ap), ('ROC AUC', float(cfx['auc']), sk_auc),
                       (f'AP per generator ({a.generators})', float(cfx['group']), sk_group),
                       ('ECE (15 bins)', float(cfx['ece']), sk_ece), ('EER', float(cfx['eer']), sk_eer),
                       (f'bootstrap mAP + acc, {a.resamples} nested resamples (numpy: {a.numpy_resamples} scaled)',
                        float(cfx['bootstrap']), np_boot)]:
        print(f'| {name} | {c:.3f} | {k:.3f} | {k / c:.1f}x |')


if __name__ == '__main__':
    main()
