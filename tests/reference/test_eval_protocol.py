"""cfx's evaluation protocol on imported folder trees, against an independent
implementation written here from the layouts' own definitions.

For every layout `cfx data import` reads (generic, CNNDetection/UFD flat and with
categories, GenImage, Synthbuster with its shared RAISE reals, pooled and paired), this
test writes a tree of small PNGs whose file names carry the score a detector would give
them, imports it with the cfx program, and has cfx.eval.tables(r) (reals='auto') score
it.  Independently, Python walks the same tree and applies the protocol as the layout
defines it:

  generic <gen>/real|fake, CNNDetection <gen>/[<cat>/]0_real|1_fake, GenImage
  <gen>/val/nature|ai: a generator's fakes against the reals of its own folder (all its
  categories together); a generator folder without reals: against every real.
  Synthbuster: every generator re-made the same RAISE images, so each is scored against
  all of them; with --pairs SUB=GEN, the reals under RAISE/SUB are GEN's own.

Per generator, the counts, AP (scikit-learn's average_precision_score) and accuracy at
0.5 (score > 0.5 predicts generated) must agree, and so must the unweighted means.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from sklearn.metrics import average_precision_score

sys.path.insert(0, os.path.dirname(__file__))
from tally import check, summary  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CFX = os.environ.get('CFX_BIN', os.path.join(ROOT, 'build', 'cfx'))

DRIVER = r"""
local cfx = require 'cfx'
local store = cfx.data.open(arg[1])
local n = store:count()
local scores = {}
for i = 1, n do
  scores[i] = assert(tonumber(store:name(i):match('_([%d.]+)%.png$')), store:name(i))
end
local r = { scores = cfx.tensor(scores, { dtype = 'float64' }), labels = store:labels(),
  generators = store:generator_ids(), indices = cfx.arange(1, n + 1):long(), store = store, threshold = 0.5 }
local t = cfx.eval.tables(r)
local rows = {}
for _, g in ipairs(t.generators) do
  rows[#rows + 1] = { generator = g.generator, n_real = g.n_real, n_fake = g.n_fake, ap = g.ap or -1, acc = g.acc }
end
print(cfx.json.encode { rows = rows, mean_ap = t.summary.mean_ap, mean_acc = t.summary.mean_acc,
  reals = t.summary.reals, pairing = store:pairing() })
"""

rng = np.random.default_rng(7)
counter = [0]


def put(folder, n, fake):
    """n PNGs in folder; fakes score higher on average; scores rounded (ties)."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for _ in range(n):
        s = round(float(np.clip(rng.normal(0.62 if fake else 0.42, 0.2), 0.01, 0.99)), 2)
        counter[0] += 1
        name = f'im{counter[0]:05d}_{s:.2f}.png'
        px = rng.integers(0, 256, (6 + counter[0] % 5, 7, 3), dtype=np.uint8)
        Image.fromarray(px).save(os.path.join(folder, name))
        names.append(os.path.join(folder, name))
    return names


def score(path):
    return float(os.path.basename(path).rsplit('_', 1)[1][:-4])


def expected(groups, all_reals):
    """groups: {generator: (fake paths, own real paths)} -> {gen: (n_real, n_fake, ap, acc)}."""
    out = {}
    for g, (fakes, reals) in groups.items():
        negs = reals if reals else all_reals
        s = np.array([score(p) for p in fakes + negs])
        y = np.array([1] * len(fakes) + [0] * len(negs))
        ap = average_precision_score(y, s) if len(negs) and len(fakes) else -1
        acc = float(np.mean((s > 0.5) == (y == 1)))
        out[g] = (len(negs), len(fakes), ap, acc)
    return out


def run_cfx(tree, store, *flags):
    r = subprocess.run([CFX, 'data', 'import', tree, '--out', store, '--quiet', *flags], capture_output=True,
                       text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        return None
    with tempfile.NamedTemporaryFile('w', suffix='.lua', delete=False) as f:
        f.write(DRIVER)
    try:
        r = subprocess.run([CFX, f.name, store], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(case, got, want, reals):
    check(got is not None, f'{case}: imported and scored')
    if got is None:
        return
    rows = {r['generator']: r for r in got['rows']}
    check(sorted(rows) == sorted(want), f'{case}: generators {sorted(rows)} vs {sorted(want)}')
    for g, (nr, nf, ap, acc) in want.items():
        r = rows.get(g)
        if r is None:
            continue
        check(r['n_real'] == nr and r['n_fake'] == nf, f'{case}/{g}: counts {r["n_real"]}, {r["n_fake"]} vs {nr}, {nf}')
        check(abs(r['ap'] - ap) < 1e-12, f'{case}/{g}: AP {r["ap"]} vs sklearn {ap}')
        check(abs(r['acc'] - acc) < 1e-12, f'{case}/{g}: acc {r["acc"]} vs {acc}')
    aps = [v[2] for v in want.values() if v[2] >= 0]
    check(abs(got['mean_ap'] - float(np.mean(aps))) < 1e-12, f'{case}: mean AP {got["mean_ap"]} vs {np.mean(aps)}')
    check(abs(got['mean_acc'] - float(np.mean([v[3] for v in want.values()]))) < 1e-12, f'{case}: mean acc')
    check(got['reals'] == reals, f'{case}: reals paired as {got["reals"]}, expected {reals}')


def main():
    with tempfile.TemporaryDirectory() as tmp:
        # generic: <gen>/real|fake; "lonely" has fakes only (scored against every real)
        t = os.path.join(tmp, 'generic')
        groups = {}
        for g, (nr, nf) in {'progan': (5, 6), 'biggan': (3, 7), 'glide': (8, 4), 'lonely': (0, 5)}.items():
            groups[g] = (put(f'{t}/{g}/fake', nf, True), put(f'{t}/{g}/real', nr, False) if nr else [])
        all_reals = [p for _, r in groups.values() for p in r]
        compare('generic', run_cfx(t, f'{tmp}/generic.h5'), expected(groups, all_reals), 'own')

        # CNNDetection / UFD: flat generators and one with categories (reals of all its
        # categories together are its own)
        t = os.path.join(tmp, 'cnndet')
        groups = {}
        for g, (nr, nf) in {'biggan': (3, 4), 'crn': (6, 6), 'deepfake': (4, 9)}.items():
            groups[g] = (put(f'{t}/{g}/1_fake', nf, True), put(f'{t}/{g}/0_real', nr, False))
        fakes, reals = [], []
        for cat, (nr, nf) in {'car': (2, 3), 'cat': (4, 2), 'horse': (3, 3)}.items():
            fakes += put(f'{t}/progan/{cat}/1_fake', nf, True)
            reals += put(f'{t}/progan/{cat}/0_real', nr, False)
        groups['progan'] = (fakes, reals)
        all_reals = [p for _, r in groups.values() for p in r]
        compare('cnndetection', run_cfx(t, f'{tmp}/cnndet.h5'), expected(groups, all_reals), 'own')

        # GenImage: <gen>/{train,val}/{ai,nature}; the val split is imported
        t = os.path.join(tmp, 'genimage')
        groups = {}
        for g, (nr, nf) in {'ADM': (4, 5), 'Midjourney': (6, 3), 'VQDM': (2, 2)}.items():
            groups[g] = (put(f'{t}/{g}/val/ai', nf, True), put(f'{t}/{g}/val/nature', nr, False))
            put(f'{t}/{g}/train/ai', 2, True)
            put(f'{t}/{g}/train/nature', 2, False)
        all_reals = [p for _, r in groups.values() for p in r]
        compare('genimage', run_cfx(t, f'{tmp}/genimage.h5'), expected(groups, all_reals), 'own')

        # Synthbuster: generator folders of fakes; RAISE reals shared by all (pooled)
        t = os.path.join(tmp, 'synthbuster')
        raise_dir = os.path.join(tmp, 'RAISE')
        fakes = {g: put(f'{t}/{g}', nf, True) for g, nf in {'dalle3': 5, 'firefly': 4, 'sd2': 6}.items()}
        shared = put(f'{raise_dir}/a', 4, False) + put(f'{raise_dir}/b', 3, False) + put(raise_dir, 2, False)
        groups = {g: (f, []) for g, f in fakes.items()}
        got = run_cfx(t, f'{tmp}/sb.h5', '--reals', raise_dir)
        compare('synthbuster', got, expected(groups, shared), 'pool')
        check(got is not None and got['pairing'] == 'pool', 'synthbuster: the store records pairing pool')

        # Synthbuster with a pairing given by the user: RAISE/a is dalle3's, RAISE/b firefly's;
        # sd2 has none of its own and is scored against every real
        groups = {'dalle3': (fakes['dalle3'], shared[:4]), 'firefly': (fakes['firefly'], shared[4:7]),
                  'sd2': (fakes['sd2'], [])}
        got = run_cfx(t, f'{tmp}/sb_pairs.h5', '--reals', raise_dir, '--pairs', 'a=dalle3,b=firefly')
        compare('synthbuster --pairs', got, expected(groups, shared), 'own+pool')

        # a pairing that names no generator is refused with the name in the message
        r = subprocess.run([CFX, 'data', 'import', t, '--out', f'{tmp}/bad.h5', '--reals', raise_dir, '--pairs',
                            'a=nosuch'], capture_output=True, text=True)
        check(r.returncode != 0 and 'a=nosuch names no generator folder' in r.stderr,
              f'a bad --pairs is refused clearly: {r.stderr.strip()}')
        check(not os.path.exists(f'{tmp}/bad.h5'), 'nothing written for a bad --pairs')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
