"""cfx.metrics' calibration, operating-point and bootstrap functions against
scikit-learn, numpy and an independent implementation of the bootstrap written here.

  * brier (brier_score_loss), nll on logits (log_loss(y, expit(x)), and a stable
    logaddexp form out to logits of +-1000), calibration / ece (calibration_curve,
    'uniform' and 'quantile', with its binning for the counts), eer (the crossing of
    roc_curve's points joined linearly with FPR = 1 - TPR, and brentq on interp1d as
    the usual snippet finds it), tpr_at_fpr / fpr_at_tpr / threshold_at_fpr (the
    points of roc_curve(drop_intermediate=False): the largest TPR with FPR <= target,
    the smallest FPR with TPR >= target), balanced_accuracy (balanced_accuracy_score)
    and threshold_best_balanced (every distinct score tried), to 1e-9 and thresholds
    exactly, on random scores, scores rounded to 2 and 1 decimals (every calibration
    edge hit), all tied, one class, n = 1 and empty;
  * bootstrap: every replicate of a small case against the same resampling done here
    (the cfx_rng stream in Python, the draws in the order cfx/metrics.h documents, AP
    from scikit-learn on the resampled images), own reals, a shared pool and not
    nested; and the coverage of the 95 % interval of mAP and mean accuracy over
    datasets drawn from a process whose mean AP and accuracy are known.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy import integrate, optimize
from scipy.interpolate import interp1d
from scipy.special import expit
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, brier_score_loss, log_loss,
                             roc_curve)

sys.path.insert(0, os.path.dirname(__file__))
from run_lua import lua_command, lua_env  # noqa: E402

FPRS = [0.0, 0.01, 0.05, 0.1, 0.5, 1.0]
TPRS = [0.0, 0.5, 0.9, 0.95, 0.99, 1.0]
BINS = [(10, 'uniform'), (15, 'uniform'), (7, 'uniform'), (10, 'quantile'), (15, 'quantile'), (3, 'quantile')]

DRIVER = r"""
local cfx = require 'cfx'
local M = cfx.metrics
local dir = arg[1]
local function read(name, n, dtype)
  local f = assert(io.open(dir .. '/' .. name, 'rb'))
  local b = f:read('*a')
  f:close()
  if n == 0 then return cfx.empty(0, { dtype = dtype }) end
  return cfx.from_buffer(b, { n }, dtype)
end
local function num(x)
  if x ~= x then return 'NaN' elseif x == math.huge then return 'Infinity' elseif x == -math.huge then return '-Infinity' end
  return ('%.17g'):format(x)
end
local function list(t) local p = {} for i, v in ipairs(t) do p[i] = num(v) end return '[' .. table.concat(p, ',') .. ']' end
local FPRS, TPRS = __FPRS__, __TPRS__
local BINS = __BINS__
local out = assert(io.open(dir .. '/out.jsonl', 'w'))
for line in io.lines(dir .. '/cases.txt') do
  local kind, name, n, a, b, c = line:match('^(%S+) (%S+) (%d+) ?(%S*) ?(%S*) ?(%S*)$')
  n = tonumber(n)
  if kind == 'metrics' then
    local p, x, y = read(name .. '.p', n, 'float64'), read(name .. '.x', n, 'float64'), read(name .. '.y', n, 'uint8')
    local parts = { ('"name":"%s"'):format(name) }
    local function put(k, v) parts[#parts + 1] = ('"%s":%s'):format(k, v) end
    put('brier', num(M.brier(p, y)))
    put('nll', num(M.nll(x, y)))
    local cal = {}
    for _, bs in ipairs(BINS) do
      local r = M.calibration(p, y, { bins = bs[1], strategy = bs[2] })
      local cnt, mp, fp, edges = {}, {}, {}, {}
      for i, row in ipairs(r.bins) do
        cnt[i], mp[i], fp[i], edges[i] = row.count, row.mean_prob or 0 / 0, row.frac_pos or 0 / 0, row.lo
      end
      edges[#edges + 1] = r.bins[#r.bins].hi
      cal[#cal + 1] = ('{"ece":%s,"count":%s,"mean_prob":%s,"frac_pos":%s,"edges":%s}'):format(num(r.ece), list(cnt),
        list(mp), list(fp), list(edges))
    end
    put('calibration', '[' .. table.concat(cal, ',') .. ']')
    local eer, eer_t = M.eer(p, y)
    put('eer', list { eer, eer_t })
    local tpr, thr, fpr = M.tpr_at_fpr(p, y, FPRS)
    put('tpr_at_fpr', ('[%s,%s,%s]'):format(list(tpr), list(thr), list(fpr)))
    local t1, f1, r1 = M.threshold_at_fpr(p, y, 0.05)
    put('threshold_at_fpr', list { t1, f1, r1 })
    local fpr2, thr2 = M.fpr_at_tpr(p, y, TPRS)
    put('fpr_at_tpr', ('[%s,%s]'):format(list(fpr2), list(thr2)))
    put('balanced', list { M.balanced_accuracy(p, y), M.balanced_accuracy(p, y, 0.3) })
    put('best_balanced', list { M.threshold_best_balanced(p, y) })
    out:write('{' .. table.concat(parts, ',') .. '}\n')
  elseif kind == 'boot' then
    local s, y, g = read(name .. '.s', n, 'float64'), read(name .. '.y', n, 'uint8'), read(name .. '.g', n, 'int64')
    local R, nested, seed = tonumber(a), b == 'nested', tonumber(c)
    local r = M.bootstrap { scores = s, labels = y, groups = g, resamples = R, nested = nested, seed = seed,
      replicates = true, threshold = 0.5 }
    local summary = M.summarize(M.by_group(s, y, g))
    out:write(('{"name":"%s","res":%s,"summary":%s,"map_reps":%s,"acc_reps":%s}\n'):format(name,
      list { r.map, r.map_lo, r.map_hi, r.map_se, r.acc, r.acc_lo, r.acc_hi, r.acc_se, r.n_generators },
      list { summary.mean_ap, summary.mean_acc }, list(r.map_replicates:totable()), list(r.acc_replicates:totable())))
  elseif kind == 'coverage' then
    -- datasets from the process: G generators, separation d ~ U(0.5, 2.5), nf fakes ~
    -- N(d, 1) and nr own reals ~ N(0, 1) each; threshold c
    local reps, G, nf, nr, c = n, tonumber(a), tonumber(b), tonumber(c), 0.8
    cfx.manual_seed(7)
    local function dataset(ng)
      local d = cfx.rand(ng, { dtype = 'float64' }) * 2 + 0.5
      local fk = cfx.randn(ng, nf, { dtype = 'float64' }) + d:reshape(ng, 1)
      local rl = cfx.randn(ng, nr, { dtype = 'float64' })
      local s = cfx.cat({ fk, rl }, 2):reshape(-1)
      local y = cfx.cat({ cfx.ones(ng, nf), cfx.zeros(ng, nr) }, 2):reshape(-1):to('uint8')
      local g = (cfx.arange(ng, { dtype = 'int64' }) + 1):reshape(ng, 1):expand(ng, nf + nr):contiguous():reshape(-1)
      return s, y, g
    end
    -- the truth: E[AP] of a generator at this design, by Monte Carlo over many generators
    local sumap, ntrue = 0, 0
    for _ = 1, 10 do
      local s, y, g = dataset(5000)
      local sm = M.summarize(M.by_group(s, y, g, { threshold = c }))
      sumap, ntrue = sumap + sm.mean_ap * sm.n_groups, ntrue + sm.n_groups
    end
    local rows = {}
    local t0 = os.clock()
    for _ = 1, reps do
      local s, y, g = dataset(G)
      local row = {}
      for _, nested in ipairs { true, false } do
        local r = M.bootstrap { scores = s, labels = y, groups = g, resamples = 500, nested = nested, threshold = c,
          seed = #rows }
        for _, k in ipairs { 'map', 'map_lo', 'map_hi', 'acc', 'acc_lo', 'acc_hi' } do row[#row + 1] = r[k] end
      end
      rows[#rows + 1] = list(row)
    end
    out:write(('{"name":"%s","true_ap":%s,"n_true":%d,"threshold":%s,"secs":%.3f,"rows":[%s]}\n'):format(name,
      num(sumap / ntrue), ntrue, num(c), os.clock() - t0, table.concat(rows, ',')))
  end
end
out:close()
"""


def lua_list(v):
    if isinstance(v, (list, tuple)):
        return '{' + ', '.join(lua_list(x) for x in v) + '}'
    if isinstance(v, str):
        return "'" + v + "'"
    return repr(v)


# ---- references -----------------------------------------------------------------------------
def cal_reference(p, y, nb, strategy):
    """calibration_curve, and its binning (its own lines) for the counts."""
    prob_true, prob_pred = calibration_curve(y, p, n_bins=nb, strategy=strategy)
    if strategy == 'quantile':
        bins = np.percentile(p, np.linspace(0, 1, nb + 1) * 100)
    else:
        bins = np.linspace(0.0, 1.0, nb + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], p), minlength=nb)
    nz = counts[counts != 0]
    ece = float(np.sum(nz / len(p) * np.abs(prob_true - prob_pred)))
    return prob_true, prob_pred, counts, ece, bins


def roc_points(p, y):
    """roc_curve's points and each one's threshold in cfx's rule (score > t): the next
    distinct score below the one roc_curve names, -inf for the last point."""
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    u = np.unique(p)[::-1]
    thr = np.r_[u, -np.inf]
    assert len(thr) == len(fpr)
    return fpr, tpr, thr


def eer_reference(fpr, tpr, thr):
    d = fpr - (1 - tpr)
    k = int(np.argmax(d >= 0))
    if d[k] == 0:
        return fpr[k], thr[k]
    f0, f1, d0, d1 = fpr[k - 1], fpr[k], d[k - 1], d[k]
    return f0 + d0 / (d0 - d1) * (f1 - f0), thr[k]


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol


def check_metrics(name, p, x, y, r):
    problems = []
    n = len(p)
    both = n > 0 and 0 < y.sum() < n

    def want(what, got, ref, tol=1e-9):
        if not close(got, ref, tol):
            problems.append(f'{what}: {got} vs {ref}')

    # calibration metrics: defined for one class too, nan when empty
    if n == 0:
        want('brier', r['brier'], float('nan'))
        want('nll', r['nll'], float('nan'))
        for c in r['calibration']:
            want('ece', c['ece'], float('nan'))
            if any(c['count']):
                problems.append('counts of an empty input')
    else:
        want('brier', r['brier'], brier_score_loss(y, p))
        stable = float(np.mean(np.logaddexp(0, np.where(y == 1, -x, x))))
        want('nll (logaddexp)', r['nll'], stable, 1e-12)
        if np.abs(x).max() < 30:
            want('nll (log_loss)', r['nll'], log_loss(y, expit(x), labels=[0, 1]))
        for (nb, strategy), c in zip(BINS, r['calibration']):
            pt, pp, counts, ece, bins = cal_reference(p, y, nb, strategy)
            got = np.array(c['count'])
            if not np.array_equal(got, counts):
                problems.append(f'{strategy} {nb} counts {got.tolist()} vs {counts.tolist()}')
                continue
            if not np.array_equal(np.array(c['edges'][1:-1]), bins[1:-1]):
                problems.append(f'{strategy} {nb} edges {c["edges"]} vs {bins.tolist()}')
            nz = got != 0
            for what, g_, ref in (('frac_pos', c['frac_pos'], pt), ('mean_prob', c['mean_prob'], pp)):
                g_ = np.array(g_)[nz]
                if len(g_) != len(ref) or np.abs(g_ - ref).max() > 1e-9:
                    problems.append(f'{strategy} {nb} {what} {g_.tolist()} vs {ref.tolist()}')
            if not np.all(np.isnan(np.array(c['mean_prob'])[~nz])):
                problems.append(f'{strategy} {nb}: an empty bin is not nan')
            want(f'ece {strategy} {nb}', c['ece'], ece)

    # operating points: nan with one class
    nan = float('nan')
    if not both:
        for v in [*r['eer'], *r['tpr_at_fpr'][0], *r['fpr_at_tpr'][0], *r['fpr_at_tpr'][1], *r['balanced'],
                  *r['best_balanced']]:
            want('one class', v, nan)
        if n > 0 and y.sum() == 0:  # reals only: the threshold is still defined, the TPR not
            reals = np.sort(p)
            for f, t in zip(FPRS, r['tpr_at_fpr'][1]):
                want(f'threshold at fpr {f} (reals only)', t, threshold_at_fpr_ref(reals, f), 0)
        return problems
    fpr, tpr, thr = roc_points(p, y)
    eer, eer_t = eer_reference(fpr, tpr, thr)
    want('eer', r['eer'][0], eer)
    want('eer threshold', r['eer'][1], eer_t, 0)
    # the usual snippet: brentq on the linearly interpolated curve
    bq = optimize.brentq(lambda v: 1.0 - v - interp1d(fpr, tpr)(v), 0.0, 1.0, xtol=1e-14)
    want('eer (brentq)', r['eer'][0], bq, 1e-9)
    reals = np.sort(p[y == 0])
    for i, f in enumerate(FPRS):
        k = int(np.nonzero(fpr <= f)[0][-1])  # the largest TPR with FPR <= f
        want(f'tpr at fpr {f}', r['tpr_at_fpr'][0][i], tpr[k])
        want(f'threshold at fpr {f}', r['tpr_at_fpr'][1][i], threshold_at_fpr_ref(reals, f), 0)
        want(f'fpr reached at {f}', r['tpr_at_fpr'][2][i], np.mean(p[y == 0] > r['tpr_at_fpr'][1][i]))
        want(f'tpr at its threshold {f}', r['tpr_at_fpr'][0][i], np.mean(p[y == 1] > r['tpr_at_fpr'][1][i]))
    want('threshold_at_fpr', r['threshold_at_fpr'][0], threshold_at_fpr_ref(reals, 0.05), 0)
    for i, t in enumerate(TPRS):
        k = int(np.nonzero(tpr >= t)[0][0])  # the smallest FPR with TPR >= t
        want(f'fpr at tpr {t}', r['fpr_at_tpr'][0][i], fpr[k])
        want(f'threshold at tpr {t}', r['fpr_at_tpr'][1][i], thr[k], 0)
    want('balanced 0.5', r['balanced'][0], balanced_accuracy_score(y, p > 0.5))
    want('balanced 0.3', r['balanced'][1], balanced_accuracy_score(y, p > 0.3))
    u = np.unique(p)
    fk, rl = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(fk) - np.searchsorted(fk, u, side='right')
    tn = np.searchsorted(rl, u, side='right')
    ba = (tn / len(rl) + tp / len(fk)) / 2
    best = int(np.argmax(ba))  # the lowest threshold of the best
    want('best balanced threshold', r['best_balanced'][0], u[best], 0)
    want('best balanced accuracy', r['best_balanced'][1], balanced_accuracy_score(y, p > u[best]))
    return problems


def threshold_at_fpr_ref(reals_sorted, f):
    """The lowest real score t with mean(reals > t) <= f (-inf when f >= 1)."""
    if len(reals_sorted) == 0:
        return float('nan')
    if f >= 1:
        return -math.inf
    for t in np.unique(reals_sorted):
        if np.mean(reals_sorted > t) <= f:
            return t
    raise AssertionError('unreachable')


# ---- the bootstrap, done here -----------------------------------------------------------------
MASK = (1 << 64) - 1


class Xoshiro:
    """cfx_rng (core/src/augment.c): xoshiro256** seeded by splitmix64."""

    def __init__(self, seed):
        x, self.s = seed & MASK, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        x = (s[1] * 5) & MASK
        result = ((((x << 7) | (x >> 57)) & MASK) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & MASK
        return result

    def below(self, m):
        return (self.next() * m) >> 64


def bootstrap_reference(s, y, g, R, nested, seed, thr=0.5):
    """The resampling of cfx/metrics.h, from its description: units = groups with fakes
    (increasing id), a unit's fakes against its own reals or else every real; per
    resample one index per real (nested, when a unit uses the pool), then per drawn unit:
    the unit, an index per fake, an index per own real (input order)."""
    units = [k for k in np.unique(g) if np.any((g == k) & (y == 1))]
    fakes = [s[(g == k) & (y == 1)] for k in units]
    own = [s[(g == k) & (y == 0)] for k in units]
    all_reals = s[y == 0]
    uses_pool = any(len(o) == 0 for o in own)

    def metrics(f, r):
        yy = np.r_[np.ones(len(f)), np.zeros(len(r))]
        ap = average_precision_score(yy, np.r_[f, r]) if len(r) else float('nan')
        return ap, ((f > thr).sum() + (r <= thr).sum()) / (len(f) + len(r))

    point = [metrics(f, o if len(o) else all_reals) for f, o in zip(fakes, own)]
    rng = Xoshiro(seed)
    U = len(units)
    maps, accs = [], []
    for _ in range(R):
        pool = all_reals
        if nested and uses_pool and len(all_reals):
            pool = all_reals[[rng.below(len(all_reals)) for _ in range(len(all_reals))]]
        aps, acs = [], []
        for _ in range(U):
            k = rng.below(U)
            if not nested:
                ap, ac = point[k]
            else:
                f = fakes[k][[rng.below(len(fakes[k])) for _ in range(len(fakes[k]))]]
                r = own[k][[rng.below(len(own[k])) for _ in range(len(own[k]))]] if len(own[k]) else pool
                ap, ac = metrics(f, r)
            aps.append(ap)
            acs.append(ac)
        maps.append(np.mean(aps))
        accs.append(np.mean(acs))
    maps, accs = np.array(maps), np.array(accs)
    q = [(1 - 0.95) / 2, (1 + 0.95) / 2]
    res = [np.mean([a for a, _ in point])]
    res += list(np.quantile(maps, q)) + [np.std(maps, ddof=1), np.mean([c for _, c in point])]
    res += list(np.quantile(accs, q)) + [np.std(accs, ddof=1), U]
    return res, maps, accs


def main():
    rng = np.random.default_rng(16)
    cases = {}

    def add(name, p, y, x=None):
        p = np.asarray(p, dtype=float)
        if x is None:
            x = rng.normal(0, 3, len(p))
        cases[name] = (p, np.asarray(x, dtype=float), np.asarray(y, dtype=np.uint8))

    for k in range(12):
        n = int(rng.integers(2, 3000))
        decimals = [None, 2, 1, 2][k % 4]
        q = rng.beta(2, 2, n)
        y = (rng.random(n) < q).astype(np.uint8)  # roughly calibrated
        p = np.clip(q + rng.normal(0, 0.15, n), 0, 1)
        x = rng.normal(0, 3, n)
        if decimals is not None:
            p, x = np.round(p, decimals), np.round(x, decimals - 1)
        y[0], y[-1] = 0, 1
        add(f'random{k}', p, y, x)
    add('all_tied', np.full(100, 0.5), np.arange(100) % 2, np.zeros(100))
    add('edges', np.repeat(np.linspace(0, 1, 11), 9), rng.integers(0, 2, 99))  # every uniform edge hit
    add('perfect', np.linspace(0, 1, 100), np.arange(100) >= 60)
    add('inverted', np.linspace(1, 0, 100), np.arange(100) >= 60)
    add('one_class_real', rng.random(50), np.zeros(50))
    add('one_class_fake', rng.random(50), np.ones(50))
    add('n1', [0.3], [1])
    add('n1_real', [0.3], [0])
    add('empty', [], [])
    add('extreme_logits', rng.random(6), [0, 1, 0, 1, 0, 1], [1000.0, -1000.0, -1000.0, 1000.0, 40.0, -40.0])
    big = rng.random(200_000)
    add('big', np.round(big, 2), (rng.random(200_000) < big).astype(np.uint8))

    boots = {}
    # own reals, heavy ties
    g = np.repeat(np.arange(1, 9), 30)
    s = np.round(rng.random(len(g)), 1)
    y = (rng.random(len(g)) < 0.3 + 0.4 * s).astype(np.uint8)
    y[::30], y[1::30] = 0, 1
    boots['own'] = (s, y, g, 200, True, 3)
    boots['own_flat'] = (s, y, g, 300, False, 4)
    # a shared pool: the reals in a group of their own (9), generators 1..6 fakes only,
    # generator 7 with reals of its own
    g2 = np.r_[np.repeat(np.arange(1, 7), 20), np.full(40, 9), np.full(15, 7)]
    y2 = np.r_[np.ones(120), np.zeros(40), (np.arange(15) % 3 == 0)].astype(np.uint8)
    s2 = np.round(rng.random(len(g2)) * 0.7 + 0.3 * y2, 2)
    boots['pool'] = (s2, y2, g2, 150, True, 5)

    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        with open(f'{d}/cases.txt', 'w') as f:
            for name, (p, x, y) in cases.items():
                p.astype('<f8').tofile(f'{d}/{name}.p')
                x.astype('<f8').tofile(f'{d}/{name}.x')
                y.tofile(f'{d}/{name}.y')
                f.write(f'metrics {name} {len(p)}\n')
            for name, (s, y, g, R, nested, seed) in boots.items():
                s.astype('<f8').tofile(f'{d}/{name}.s')
                y.tofile(f'{d}/{name}.y')
                g.astype('<i8').tofile(f'{d}/{name}.g')
                f.write(f'boot {name} {len(s)} {R} {"nested" if nested else "flat"} {seed}\n')
            f.write('coverage coverage 300 30 60 60\n')
        driver = (DRIVER.replace('__FPRS__', lua_list(FPRS)).replace('__TPRS__', lua_list(TPRS))
                  .replace('__BINS__', lua_list([list(b) for b in BINS])))
        with open(f'{d}/driver.lua', 'w') as f:
            f.write(driver)
        subprocess.run(lua_command(f'{d}/driver.lua', d), check=True, env=lua_env())
        got = {}
        for line in open(f'{d}/out.jsonl'):
            r = json.loads(line)
            got[r['name']] = r

    def report(name, problems):
        nonlocal passed, failed
        if problems:
            failed += 1
            print('FAIL', name, '; '.join(problems[:4]))
        else:
            passed += 1

    for name, (p, x, y) in cases.items():
        report(name, check_metrics(name, p, x, y, got[name]))

    for name, (s, y, g, R, nested, seed) in boots.items():
        r = got[name]
        ref, maps, accs = bootstrap_reference(s, y, g, R, nested, seed)
        problems = []
        for what, a, b in (('map replicates', r['map_reps'], maps), ('acc replicates', r['acc_reps'], accs)):
            if len(a) != len(b) or np.abs(np.array(a) - b).max() > 1e-12:
                problems.append(f'{what} differ (max {np.abs(np.array(a) - b).max():.3g})')
        labels = ['map', 'map_lo', 'map_hi', 'map_se', 'acc', 'acc_lo', 'acc_hi', 'acc_se', 'n_generators']
        for k, a, b in zip(labels, r['res'], ref):
            if not close(a, b, 1e-12):
                problems.append(f'{k} {a} vs {b}')
        if not (close(r['summary'][0], r['res'][0], 1e-12) and close(r['summary'][1], r['res'][4], 1e-12)):
            problems.append(f'point estimate {r["res"][0]} vs summarize {r["summary"]}')
        print(f'bootstrap {name} ({"nested" if nested else "generators only"}, {R} resamples): mAP {r["res"][0]:.4f} '
              f'[{r["res"][1]:.4f}, {r["res"][2]:.4f}], every replicate as computed here')
        report('bootstrap ' + name, problems)

    c = got['coverage']
    rows = np.array(c['rows'])
    thr = c['threshold']
    true_acc = integrate.quad(lambda dd: (norm.cdf(dd - thr) + norm.cdf(thr)) / 2, 0.5, 2.5)[0] / 2.0
    problems = []
    for off, what in ((0, 'nested'), (6, 'generators only')):
        cov_ap = np.mean((rows[:, off + 1] <= c['true_ap']) & (c['true_ap'] <= rows[:, off + 2]))
        cov_acc = np.mean((rows[:, off + 4] <= true_acc) & (true_acc <= rows[:, off + 5]))
        width = np.mean(rows[:, off + 2] - rows[:, off + 1])
        print(f'coverage of the 95 % interval ({what}, {len(rows)} datasets of 30 generators x 120 images, '
              f'500 resamples): mAP {cov_ap:.3f} (true {c["true_ap"]:.4f}, mean width {width:.3f}), '
              f'mean acc {cov_acc:.3f} (true {true_acc:.4f})')
        for k, v in (('mAP', cov_ap), ('acc', cov_acc)):
            if not 0.90 <= v <= 0.99:
                problems.append(f'{what} {k} coverage {v:.3f} outside [0.90, 0.99]')
    print(f'  ({2 * len(rows)} bootstraps in {c["secs"]:.2f} s of CPU; the true mean AP: E[AP] of one '
          f'generator at this design, Monte Carlo over {c["n_true"]} generators)')
    report('coverage', problems)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
