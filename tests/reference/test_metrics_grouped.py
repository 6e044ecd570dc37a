"""cfx.metrics.by_group / accuracy / summarize / by_architecture against an independent
implementation of the paper's protocol written here from its description:

  per generator: its fakes against the reals of its evaluation group (the reals stored
  under the same generator, as in the official <generator>/<real|fake>/ layout; when a
  generator has no reals of its own, every real of the evaluation set), AP and ROC AUC
  with scikit-learn, accuracy at 0.5 (score > 0.5 predicts fake); the summary is the
  unweighted mean over generators whose metric is defined (a group with one class only
  is excluded, not counted as -1 as in the official code); per architecture, the
  unweighted mean over its generators.

Scores carry heavy ties; one case has 10^6 scores and 2000 generators.
"""
import json
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
local function read(name, n, dtype)
  local f = assert(io.open(dir .. '/' .. name, 'rb'))
  local t = cfx.from_buffer(f:read('*a'), { n }, dtype)
  f:close()
  return t
end
local out = assert(io.open(dir .. '/out.jsonl', 'w'))
for line in io.lines(dir .. '/cases.txt') do
  local name, n, ng = line:match('^(%S+) (%d+) (%d+)$')
  n, ng = tonumber(n), tonumber(ng)
  local s = read(name .. '.scores', n, 'float64')
  local l = read(name .. '.labels', n, 'uint8')
  local g = read(name .. '.groups', n, 'int64')
  local arch = {}
  for i = 1, ng do arch[i] = 'A' .. (i % 3) end
  local t0 = os.clock()
  local rows = cfx.metrics.by_group(s, l, g, { architectures = arch })
  local secs = os.clock() - t0
  local acc, acc_r, acc_f = cfx.metrics.accuracy(s, l)
  local summary = cfx.metrics.summarize(rows)
  local by_arch = cfx.metrics.by_architecture(rows)
  local function num(x) return x == nil and 'null' or ('%.17g'):format(x) end
  local parts = {}
  for _, r in ipairs(rows) do
    parts[#parts + 1] = ('[%d,%d,%d,%s,%s,%s,%s,%s]'):format(r.group, r.n_real, r.n_fake, num(r.ap), num(r.auroc),
      num(r.acc), num(r.acc_real), num(r.acc_fake))
  end
  local archs = {}
  for _, a in ipairs(by_arch) do archs[#archs + 1] = ('["%s",%d,%s,%s]'):format(a.architecture, a.n_generators, num(a.ap), num(a.acc)) end
  out:write(('{"name":"%s","rows":[%s],"acc":[%s,%s,%s],"mean_ap":%s,"mean_acc":%s,"mean_auroc":%s,"arch":[%s],"secs":%.3f}\n'):format(
    name, table.concat(parts, ','), num(acc), num(acc_r), num(acc_f), num(summary.mean_ap), num(summary.mean_acc),
    num(summary.mean_auroc), table.concat(archs, ','), secs))
end
out:close()
"""


def reference(s, y, g, ng):
    """The protocol, from its description (group ids 1..ng)."""
    rows = []
    all_reals = s[y == 0]
    for k in range(1, ng + 1):
        fakes = s[(g == k) & (y == 1)]
        if len(fakes) == 0:
            continue
        own = s[(g == k) & (y == 0)]
        reals = own if len(own) else all_reals
        if len(reals):
            yy = np.r_[np.ones(len(fakes)), np.zeros(len(reals))]
            ss = np.r_[fakes, reals]
            ap, auc = average_precision_score(yy, ss), roc_auc_score(yy, ss)
            acc = ((fakes > 0.5).sum() + (reals <= 0.5).sum()) / (len(fakes) + len(reals))
            acc_real = (reals <= 0.5).mean()
        else:
            ap = auc = acc_real = None
            acc = (fakes > 0.5).mean()
        rows.append((k, len(reals), len(fakes), ap, auc, acc, acc_real, (fakes > 0.5).mean()))
    return rows


def close(a, b, tol=1e-12):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def main():
    rng = np.random.default_rng(1)
    cases = {}
    for k in range(12):
        ng = int(rng.integers(2, 40))
        n = int(rng.integers(50, 4000))
        levels = [3, 10, 100, None][k % 4]
        s = rng.random(n)
        if levels:
            s = np.round(s * levels) / levels
        g = rng.integers(1, ng + 1, n)
        y = (rng.random(n) < 0.5).astype(np.uint8)
        if k % 2:  # shared pool: reals live in their own groups (like real sources)
            real_groups = rng.integers(1, 4, n)
            g = np.where(y == 0, real_groups, np.maximum(g, 4) if ng >= 4 else g)
        if k == 5:  # a group of fakes only and no reals anywhere near it
            y[g == 2] = 1
        cases[f'case{k}'] = (s, y, g.astype(np.int64), int(g.max()))
    big_n, big_g = 1_000_000, 2000
    s = np.round(rng.random(big_n) * 1000) / 1000
    g = rng.integers(1, big_g + 1, big_n).astype(np.int64)
    y = (rng.random(big_n) < 0.3 + 0.4 * s).astype(np.uint8)
    cases['million'] = (s, y, g, big_g)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        with open(f'{d}/cases.txt', 'w') as f:
            for name, (s, y, g, ng) in cases.items():
                s.astype('<f8').tofile(f'{d}/{name}.scores')
                y.tofile(f'{d}/{name}.labels')
                g.astype('<i8').tofile(f'{d}/{name}.groups')
                f.write(f'{name} {len(s)} {ng}\n')
        with open(f'{d}/driver.lua', 'w') as f:
            f.write(DRIVER)
        subprocess.run(lua_command(f'{d}/driver.lua', d), check=True, env=lua_env())
        got = {}
        for line in open(f'{d}/out.jsonl'):
            r = json.loads(line)
            got[r['name']] = r
    for name, (s, y, g, ng) in cases.items():
        r = got[name]
        ref = reference(s, y, g, ng)
        problems = []
        if len(ref) != len(r['rows']):
            problems.append(f'{len(r["rows"])} groups, expected {len(ref)}')
        for a, b in zip(r['rows'], ref):
            if a[0] != b[0] or a[1] != b[1] or a[2] != b[2] or not all(close(x, z) for x, z in zip(a[3:], b[3:])):
                problems.append(f'group {b[0]}: got {a}, expected {b}')
        acc = ((s > 0.5) == (y == 1)).mean()
        if not (close(r['acc'][0], acc) and close(r['acc'][1], (s[y == 0] <= 0.5).mean())
                and close(r['acc'][2], (s[y == 1] > 0.5).mean())):
            problems.append(f'accuracy {r["acc"]}')
        aps = [b[3] for b in ref if b[3] is not None]
        if not close(r['mean_ap'], float(np.mean(aps)) if aps else None, 1e-12):
            problems.append(f'mean AP {r["mean_ap"]} vs {np.mean(aps)}')
        accs = [b[5] for b in ref]
        if not close(r['mean_acc'], float(np.mean(accs)), 1e-12):
            problems.append(f'mean acc {r["mean_acc"]} vs {np.mean(accs)}')
        for arch_name, n_gen, ap, acc_a in r['arch']:
            members = [b for b in ref if f'A{b[0] % 3}' == arch_name]
            m_aps = [b[3] for b in members if b[3] is not None]
            if n_gen != len(members) or not close(ap, float(np.mean(m_aps)) if m_aps else None):
                problems.append(f'architecture {arch_name}')
        if name == 'million':
            print(f'10^6 scores, 2000 generators: per-generator metrics in {r["secs"]:.3f} s of CPU')
        if problems:
            failed += 1
            print('FAIL', name, '; '.join(problems[:3]))
        else:
            passed += 1
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
