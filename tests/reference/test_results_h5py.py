"""Results files as an outside reader sees them.  This test makes the values (numpy),
has cfx write them through cfx.results (a Lua driver run by the cfx program), then
reads the file with h5py, visiting every group and dataset: the layout of
docs/results.md, plain names and types (compound tables of int64/float64/UTF-8
strings, numeric arrays, scalar attributes), and every value.  pandas, when it is
installed, must turn each table into a DataFrame with one line.  Then the other way:
a run h5py annotates survives cfx rewriting the file; h5py-made files that are not
results files (no cfx_format, another cfx_version) are refused with their name; and
`cfx collect DIR` merges task files as h5py sees the result."""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from run_lua import ROOT, lua_command, lua_env  # noqa: E402

try:
    import pandas as pd
except ImportError:  # Debian's python3-pandas is optional here
    pd = None

CFX_BIN = os.environ.get('CFX_BIN') or os.path.join(ROOT, 'build', 'cfx')
from tally import check, summary  # noqa: E402


def run_lua(tmp, name, source, *args, ok=True):
    script = os.path.join(tmp, name)
    with open(script, 'w') as f:
        f.write(source)
    p = subprocess.run(lua_command(script, *args), env=lua_env(), capture_output=True, text=True)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f'{name} failed')
    return p


def text(v):
    return v.decode() if isinstance(v, bytes) else v


N_STEPS, N_PRED, DIM = 750, 4000, 12
GENERATORS = [('biggan', 'GAN'), ('sd-1.5', 'LatDiff'), ('midjourney-v5', 'Commercial'), ('déjà-vu', 'other')]


def train_rows():
    s = np.arange(1, N_STEPS + 1)
    return {'step': s, 'epoch': (s - 1) // 100, 'loss': 1.0 / (s + 1), 'lr': 2e-5 * np.minimum(1.0, s / 20.0),
            'images_per_s': 1000.0 + s}


def write_main(tmp, path):
    rng = np.random.default_rng(7)
    score = rng.random(N_PRED, dtype=np.float32)
    label = (rng.random(N_PRED) < 0.5).astype(np.uint8)
    gen = rng.integers(0, len(GENERATORS), N_PRED).astype(np.int32)
    emb = rng.standard_normal((N_PRED, DIM)).astype(np.float32)
    for name, a in [('score', score), ('label', label), ('gen', gen), ('emb', emb)]:
        a.tofile(os.path.join(tmp, name + '.bin'))
    ap = rng.random(len(GENERATORS))
    ap[1] = 1.0  # an integral AP must still be float64
    eval_rows = []
    for k, (g, a) in enumerate(GENERATORS):
        eval_rows.append({'generator': g, 'architecture': a, 'n_real': 100 + k, 'n_fake': 50 * k,
                          'ap': float(ap[k]), 'acc': 0.5 + k / 10, 'acc_real': 0.25 * k, 'acc_fake': 1 - 0.25 * k,
                          'auroc': 0.9 - k / 100})
    lua_rows = ',\n'.join('{' + ', '.join(f'{k} = {json.dumps(v, ensure_ascii=False) if isinstance(v, str) else repr(v)}'
                                          for k, v in r.items()) + '}' for r in eval_rows)
    source = f"""
local cfx = require 'cfx'
local function bin(name, shape, dtype)
  local f = assert(io.open({tmp!r} .. '/' .. name .. '.bin', 'rb'))
  local s = f:read('*a')
  f:close()
  return cfx.from_buffer(s, shape, dtype)
end
local log = cfx.results.open({path!r})
local run = log:run('k=3,subset=1', {{ config = {{ k = 3, lr = 2e-5, model = 'tiny' }}, experiment = 'scaling_models',
  preset = 'cpu', seed = 11, host = 'node-7', start_time = 1700000000, slurm_job_id = '4242' }})
for s = 1, {N_STEPS} do
  run:scalars('train', {{ step = s, epoch = math.floor((s - 1) / 100), loss = 1 / (s + 1),
    lr = 2e-5 * math.min(1, s / 20), images_per_s = 1000 + s }})
end
run:table('eval/synth_eval', {{ {lua_rows} }}, {{ mean_ap = 0.75, mean_acc = 0.65, n_groups = {len(GENERATORS)},
  reals = 'shared' }})
run:arrays('predictions/synth_eval', {{ score = bin('score', {{ {N_PRED} }}, 'float32'),
  label = bin('label', {{ {N_PRED} }}, 'uint8'), generator = bin('gen', {{ {N_PRED} }}, 'int32'),
  embeddings = bin('emb', {{ {N_PRED}, {DIM} }}, 'float32') }})
run:set {{ status = 'done', end_time = 1700000100 }}
log:run('k=10,subset=1', {{ status = 'running' }}):scalars('train', {{ step = 1, loss = 0.7, lr = 0, images_per_s = 10 }})
log:close()
"""
    run_lua(tmp, 'write.lua', source)
    return score, label, gen, emb, eval_rows


def check_main(path, score, label, gen, emb, eval_rows):
    with h5py.File(path, 'r') as f:
        check(text(f.attrs['cfx_format']) == 'results', 'root cfx_format')
        check(f.attrs['cfx_version'] == 1 and f.attrs['cfx_version'].dtype == np.int64, 'root cfx_version int64')
        seen = []
        f.visititems(lambda name, obj: seen.append((name, type(obj).__name__)))
        want = {('runs', 'Group'), ('runs/k=3,subset=1', 'Group'), ('runs/k=3,subset=1/train', 'Dataset'),
                ('runs/k=3,subset=1/eval', 'Group'), ('runs/k=3,subset=1/eval/synth_eval', 'Dataset'),
                ('runs/k=3,subset=1/predictions', 'Group'), ('runs/k=3,subset=1/predictions/synth_eval', 'Group'),
                ('runs/k=10,subset=1', 'Group'), ('runs/k=10,subset=1/train', 'Dataset')}
        want |= {(f'runs/k=3,subset=1/predictions/synth_eval/{k}', 'Dataset')
                 for k in ('score', 'label', 'generator', 'embeddings')}
        check(set(seen) == want, f'every group and dataset, nothing else: {sorted(set(seen) ^ want)}')
        check(list(f['runs']) == ['k=3,subset=1', 'k=10,subset=1'], 'runs in creation order')
        run = f['runs/k=3,subset=1']
        a = run.attrs
        check(json.loads(a['config']) == {'k': 3, 'lr': 2e-5, 'model': 'tiny'}, 'config is JSON text')
        for k, v in [('experiment', 'scaling_models'), ('preset', 'cpu'), ('status', 'done'), ('host', 'node-7'),
                     ('slurm_job_id', '4242')]:
            check(isinstance(a[k], str) and a[k] == v, f'string attribute {k}')
        for k, v in [('seed', 11), ('start_time', 1700000000), ('end_time', 1700000100)]:
            check(a[k] == v and a[k].dtype == np.int64, f'int64 attribute {k}')
        check(isinstance(a['created'], str) and a['created'] <= a['updated'], 'created <= updated')
        # the train table: one compound dataset, a field per column
        t = run['train']
        check(t.ndim == 1 and t.dtype.names == ('step', 'epoch', 'loss', 'lr', 'images_per_s'), 'train columns')
        check([t.dtype[k] for k in t.dtype.names] == [np.dtype('<i8')] * 2 + [np.dtype('<f8')] * 3, 'train dtypes')
        rows = t[()]
        for k, v in train_rows().items():
            check(np.array_equal(rows[k], v), f'train column {k}')
        check(np.array_equal(t['loss'], 1.0 / (np.arange(1, N_STEPS + 1) + 1)), 'a column read by field name')
        # the eval table and its summary
        e = run['eval/synth_eval']
        names = ('generator', 'architecture', 'n_real', 'n_fake', 'ap', 'acc', 'acc_real', 'acc_fake', 'auroc')
        check(e.dtype.names == names, 'eval columns')
        check(h5py.check_string_dtype(e.dtype['generator']).encoding == 'utf-8', 'generator is a UTF-8 string')
        check(e.dtype['n_real'] == np.int64 and e.dtype['ap'] == np.float64, 'eval dtypes (ap float64 even at 1.0)')
        got = e[()]
        for i, r in enumerate(eval_rows):
            for k in names:
                v = got[k][i]
                check(text(v) == r[k] if isinstance(r[k], str) else v == r[k], f'eval row {i} {k}')
        s = dict(e.attrs)
        check(s == {'mean_ap': 0.75, 'mean_acc': 0.65, 'n_groups': 4, 'reals': 'shared'}, f'eval summary {s}')
        # predictions
        p = run['predictions/synth_eval']
        check(list(p) == ['score', 'label', 'generator', 'embeddings'], 'prediction arrays in order')
        for k, want_a in [('score', score), ('label', label), ('generator', gen), ('embeddings', emb)]:
            d = p[k]
            check(d.dtype == want_a.dtype and d.shape == want_a.shape, f'{k} dtype and shape')
            check(np.array_equal(d[()], want_a), f'{k} values')
        other = f['runs/k=10,subset=1']
        check(other.attrs['status'] == 'running' and other['train'].shape == (1,), 'the running run')
        if pd is not None:
            df = pd.DataFrame(run['train'][()])
            check(list(df.columns) == list(t.dtype.names) and len(df) == N_STEPS, 'pandas: train DataFrame')
            ev = pd.DataFrame(run['eval/synth_eval'][()])
            ev['generator'] = ev['generator'].str.decode('utf-8')
            check(list(ev['generator']) == [g for g, _ in GENERATORS], 'pandas: eval DataFrame, decoded names')
            pr = pd.DataFrame({k: p[k][()] for k in ('score', 'label', 'generator')})
            check(len(pr) == N_PRED, 'pandas: predictions DataFrame')


def check_interop(tmp, path):
    # h5py annotates a run; cfx appends to it and rewrites the file; the note stays
    with h5py.File(path, 'r+') as f:
        f['runs/k=10,subset=1'].attrs['note'] = 'checked by hand'
        f['runs/k=10,subset=1'].attrs['weight'] = 0.5
    run_lua(tmp, 'append.lua', f"""
local cfx = require 'cfx'
local log = cfx.results.open({path!r})
local run = log:run('k=10,subset=1')
assert(run:get().note == 'checked by hand' and run:get().weight == 0.5)
run:scalars('train', {{ step = 2, loss = 0.6, lr = 1e-6, images_per_s = 11 }})
log:close()
""")
    with h5py.File(path, 'r') as f:
        r = f['runs/k=10,subset=1']
        check(r.attrs['note'] == 'checked by hand' and r.attrs['weight'] == 0.5, 'h5py attributes survive cfx')
        check(list(r['train']['step']) == [1, 2], 'appended after h5py touched the file')
        check(f['runs/k=3,subset=1/train'].shape == (N_STEPS,), 'other runs untouched')
    # files that are not results files, made by h5py, are refused with their name
    plain, newer, array_attr = (os.path.join(tmp, n) for n in ('plain.h5', 'newer.h5', 'array_attr.h5'))
    with h5py.File(plain, 'w') as f:
        f['x'] = np.arange(3)
    with h5py.File(newer, 'w') as f:
        f.attrs['cfx_format'] = 'results'
        f.attrs['cfx_version'] = 2
    with h5py.File(array_attr, 'w') as f:
        f.attrs['cfx_format'] = 'results'
        f.attrs['cfx_version'] = 1
        f.create_group('runs/r').attrs['v'] = np.arange(3)
    p = run_lua(tmp, 'refuse.lua', """
local cfx = require 'cfx'
for _, path in ipairs(arg) do
  local ok, e = pcall(cfx.results.open, path)
  print(ok and 'OK' or e)
end
""", plain, newer, array_attr)
    out = p.stdout.splitlines()
    check(len(out) == 3, 'three answers')
    if len(out) == 3:
        check('plain.h5: not a cfx results file (root attribute cfx_format is missing' in out[0], out[0])
        check('newer.h5: results format version 2, but this cfx' in out[1], out[1])
        check('array_attr.h5: /runs/r: attribute \'v\' is not a scalar string or number' in out[2], out[2])
    for q in (plain, newer, array_attr):
        check(not os.path.exists(q + '.lock'), 'no lock left by a refused open')


def check_collect(tmp):
    sweep = os.path.join(tmp, 'sweep')
    os.makedirs(os.path.join(sweep, 'tasks'))
    run_lua(tmp, 'tasks.lua', f"""
local cfx = require 'cfx'
local dir = {sweep!r} .. '/tasks'
for t = 1, 4 do
  local log = cfx.results.open(('%s/task%04d.h5'):format(dir, t))
  local run = log:run(('point%d'):format(t), {{ status = 'done', task = t }})
  for s = 1, 10 do run:scalars('train', {{ step = s, loss = t + s / 100 }}) end
  log:close()
end
-- task 2 ran again after a requeue and died: its first copy is the one to keep
local log = cfx.results.open(dir .. '/task0002-requeued.h5')
log:run('point2', {{ status = 'interrupted', task = 20 }}):scalars('train', {{ step = 1, loss = 9 }})
log:close()
""")
    with h5py.File(os.path.join(sweep, 'notes.h5'), 'w') as f:  # not a results file: skipped
        f['x'] = 1
    p = subprocess.run([CFX_BIN, 'collect', sweep], env=lua_env(), capture_output=True, text=True)
    check(p.returncode == 0, f'cfx collect exits 0: {p.stderr}')
    check('cfx collect: 4 runs from 5 files into ' in p.stdout, p.stdout)
    check("run 'point2' is in 2 files: kept " in p.stdout and 'task0002.h5 (status done' in p.stdout, p.stdout)
    check('skipped 1 .h5 file that is not a results file' in p.stderr and 'notes.h5' in p.stderr, p.stderr)
    with h5py.File(os.path.join(sweep, 'results.h5'), 'r') as f:
        check(sorted(f['runs']) == ['point1', 'point2', 'point3', 'point4'], 'merged runs')
        for t in range(1, 5):
            r = f[f'runs/point{t}']
            check(r.attrs['task'] == t and r.attrs['status'] == 'done', f'point{t} from its done copy')
            check(np.array_equal(r['train']['step'], np.arange(1, 11)) and
                  np.allclose(r['train']['loss'], t + np.arange(1, 11) / 100), f'point{t} train rows')


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'results.h5')
        check_main(path, *write_main(tmp, path))
        check_interop(tmp, path)
        check_collect(tmp)
    if pd is None:
        print('pandas is not installed: the DataFrame checks were skipped (h5py and numpy only)')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
