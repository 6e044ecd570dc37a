"""cfx.metrics against scikit-learn: average precision and ROC AUC on random scores
with heavy ties (scores rounded to a few levels), on all-distinct scores, on
degenerate inputs (one class only: undefined, nan), and on a million scores."""
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, os.path.dirname(__file__))
from run_lua import lua_command, lua_env  # noqa: E402

DRIVER = r"""
local cfx = require 'cfx'
local dir = arg[1]
local out = assert(io.open(dir .. '/out.txt', 'w'))
for line in io.lines(dir .. '/cases.txt') do
  local name, n = line:match('^(%S+) (%d+)$')
  n = tonumber(n)
  local f = assert(io.open(dir .. '/' .. name .. '.scores', 'rb'))
  local s = cfx.from_buffer(f:read('*a'), { n }, 'float64')
  f:close()
  f = assert(io.open(dir .. '/' .. name .. '.labels', 'rb'))
  local l = cfx.from_buffer(f:read('*a'), { n }, 'uint8')
  f:close()
  local t0 = os.clock()
  local ap = cfx.metrics.average_precision(s, l)
  local auc = cfx.metrics.roc_auc(s, l)
  out:write(('%s %.17g %.17g %.3f\n'):format(name, ap, auc, os.clock() - t0))
end
out:close()
"""


def main():
    rng = np.random.default_rng(0)
    cases = {}
    for k in range(20):
        n = int(rng.integers(2, 3000))
        levels = [2, 3, 5, 10, 50, None][k % 6]
        s = rng.random(n)
        if levels:
            s = np.round(s * levels) / levels  # heavy ties
        y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.uint8)
        y[0], y[-1] = 0, 1  # both classes present
        cases[f'random{k}'] = (s, y)
    cases['all_tied'] = (np.full(100, 0.5), (np.arange(100) % 2).astype(np.uint8))
    cases['perfect'] = (np.arange(100, dtype=float), (np.arange(100) >= 60).astype(np.uint8))
    cases['inverted'] = (-np.arange(100, dtype=float), (np.arange(100) >= 60).astype(np.uint8))
    cases['one_class_pos'] = (rng.random(50), np.ones(50, np.uint8))
    cases['one_class_neg'] = (rng.random(50), np.zeros(50, np.uint8))
    big = rng.random(1_000_000)
    cases['million'] = (np.round(big * 1000) / 1000, (rng.random(1_000_000) < big).astype(np.uint8))
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        with open(f'{d}/cases.txt', 'w') as f:
            for name, (s, y) in cases.items():
                s.astype('<f8').tofile(f'{d}/{name}.scores')
                y.tofile(f'{d}/{name}.labels')
                f.write(f'{name} {len(s)}\n')
        with open(f'{d}/driver.lua', 'w') as f:
            f.write(DRIVER)
        subprocess.run(lua_command(f'{d}/driver.lua', d), check=True, env=lua_env())
        got = {}
        for line in open(f'{d}/out.txt'):
            name, ap, auc, secs = line.split()
            got[name] = (float(ap), float(auc), float(secs))
    for name, (s, y) in cases.items():
        ap, auc, secs = got[name]
        if y.min() == y.max():
            ok = np.isnan(ap) and np.isnan(auc)
            detail = f'expected nan, got {ap} {auc}'
        else:
            ref_ap, ref_auc = average_precision_score(y, s), roc_auc_score(y, s)
            ok = abs(ap - ref_ap) < 1e-12 and abs(auc - ref_auc) < 1e-12
            detail = f'ap {ap} vs {ref_ap}, auc {auc} vs {ref_auc}'
        if name == 'million':
            print(f'million scores (1000 tie levels): AP and AUC together in {secs:.3f} s of CPU')
        if ok:
            passed += 1
        else:
            failed += 1
            print('FAIL', name, detail)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
