#!/usr/bin/python3
"""The notebooks of notebooks/ on results files that the real study scripts write.

- every study of experiments/ runs its cpu preset through the cfx program (CFX_BIN, default
  build/cfx) with tiny settings, as a user would: one shared synthetic dataset of 8 + 4
  generators (made by the first study, reused by the others), 4 steps, two subsets where
  the figure has error bars (alignment on two small stores of its own whose generators carry
  content sources, as in tests/app/test_studies.py); two scripts at a time, one libtorch
  thread each;
- every notebook executes headless (`jupyter nbconvert --to notebook --execute`) with
  CFX_RESULTS pointing at its study's file and CFX_FIGDIR at a temporary folder (two at a
  time), failing on any error; the PNGs each one saves are read back (size, not blank), and
  what it printed is checked against the file read with h5py directly: the mean +- SE
  tables, and what each figure draws (the line `figure NAME: [...]` that cfxresults.save
  prints: axes, lines, bars, bands, images per panel);
- notebooks/cfxresults.py agrees with h5py read directly (runs, per-generator and
  per-architecture rows, the mean +- SE of the summaries, predictions, curves, other tables,
  array groups);
- a partly written file (a run still training without eval tables, one without a train
  table, an empty run group) is read with the missing parts left out and said, and the
  scaling notebook still draws from it; a file that is not a results file is one clear error.

Without jupyter nbconvert or ipykernel it prints SKIP (and fails under CI=true).

Run:  /usr/bin/python3 tests/app/test_notebooks.py   (from the repo root).
"""
import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
NOTEBOOKS = ROOT / 'notebooks'
TINY = ['synth_train_generators=8', 'synth_eval_generators=4', 'synth_per_generator=16', 'budget=32', 'steps=4',
        'batch=8', 'workers=1', 'checkpoint_every=4']
CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
PARALLEL = 2          # scripts and notebooks at a time


def studies(d):
    """study -> its tiny arguments (after the shared stores and TINY); d: the test's folder."""
    data = d / 'data'
    return {
        'scaling_models': ['k_min=2', 'k_max=4', 'k_count=2', 'subset_ids=1,2'],
        'backbones': ['k=4', 'subset_ids=1'],          # bars without error bars: one subset
        'num_images': ['k=4', 'budgets=16,32', 'many_k=4', 'few_k=2', 'subset_ids=1,2'],
        # the tiny eval store need not hold a commercial generator: every one (as test_studies)
        'diversity': ['k=4', 'eval_subsets=', 'subset_ids=1,2'],
        'frozen_vs_finetuned': ['k=4', 'pretrain_steps=2', 'pretrain_pool=16', f'pretrained_dir={d}/pretrained',
                                'subset_ids=1'],
        'robustness': ['k=4', 'subset_ids=1,2'],
        'iterations': ['k=4', 'eval_every=2', 'subset_ids=1,2'],
        'cross_dataset': ['k=4', 'subset_ids=1,2', f'eval_sets=gan_others={data}/gan_others.h5,'
                          f'commercial_jpeg={data}/commercial_jpeg.h5', 'cross_generators=2', 'cross_per_generator=8'],
        'attribution': ['k=0', 'max_embeddings=40'],
        'alignment': [f'train_store={d}/alignment_data/train.h5', f'eval_store={d}/alignment_data/eval.h5', 'k=0',
                      'synth_train_generators=0', 'subset_ids=1,2'],
    }


# Two small stores whose systematic generators carry content sources (LAION and others), for
# the alignment study (the tiny synthetic stores need not hold fakes of both sources).
ALIGNMENT_STORES = """
local cfx = require 'cfx'
local d = arg[1]
cfx.manual_seed(0)
for _, s in ipairs { { 'train', { 'LAION', 'COCO', 'LAION', 'FFHQ', 'LAION', 'LandscapesHQ' } },
    { 'eval', { 'LAION', 'COCO', 'LAION', 'FFHQ' } } } do
  local w = cfx.data.writer(d .. '/' .. s[1] .. '.h5')
  w:attr('pairing', 'deal')
  local png = function() return cfx.image.encode_png(cfx.randint(0, 256, { 64, 64, 3 }, { dtype = 'uint8' })) end
  for _, src in ipairs { 'LAION', 'COCO', 'FFHQ', 'LandscapesHQ' } do
    local id = w:generator(src, 'real', 'real')
    for j = 1, s[1] == 'train' and 32 or 12 do w:add { bytes = png(), label = 0, generator = id, name = src .. j } end
  end
  for g, src in ipairs(s[2]) do
    local id = w:generator(s[1] .. '-sd-' .. g, 'LatDiff', 'systematic', src)
    for j = 1, 8 do w:add { bytes = png(), label = 1, generator = id, name = g .. '-' .. j } end
  end
  local id = w:generator(s[1] .. '-gan', 'GAN', 'manual')
  for j = 1, 8 do w:add { bytes = png(), label = 1, generator = id, name = 'gan-' .. j } end
  w:finish()
end
"""

# notebook -> the study whose file it reads
NOTEBOOK_STUDY = {'scaling_models.ipynb': 'scaling_models', 'backbones.ipynb': 'backbones',
                  'num_images.ipynb': 'num_images', 'diversity.ipynb': 'diversity',
                  'frozen_vs_finetuned.ipynb': 'frozen_vs_finetuned', 'robustness.ipynb': 'robustness',
                  'iterations.ipynb': 'iterations', 'cross_dataset.ipynb': 'cross_dataset',
                  'attribution.ipynb': 'attribution', 'alignment.ipynb': 'alignment',
                  'training_curves.ipynb': 'backbones', 'index.ipynb': 'scaling_models'}


def load_reader():
    spec = importlib.util.spec_from_file_location('cfxresults', NOTEBOOKS / 'cfxresults.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def have_nbconvert():
    try:
        r = subprocess.run(['jupyter', 'nbconvert', '--version'], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f'jupyter nbconvert is not runnable ({e})'
    if r.returncode != 0:
        return f'jupyter nbconvert --version failed: {r.stderr.strip()[-300:]}'
    if importlib.util.find_spec('ipykernel') is None:
        return 'python3-ipykernel is not installed'
    return None


# ---- the file read with h5py alone, for the expected numbers -------------------------------------
def h5_summaries(path):
    """[(run id, config, dataset, the eval table's attributes)] of every done run."""
    out = []
    with h5py.File(path, 'r') as f:
        for rid, g in f['runs'].items():
            if g.attrs.get('status') != 'done' or 'eval' not in g:
                continue
            cfg = json.loads(g.attrs['config'])
            for ds, t in g['eval'].items():
                out.append((rid, cfg, ds, dict(t.attrs)))
    return out


def mean_of(path, metric='mean_ap', dataset=None, **where):
    """(mean, SE) over the done runs whose config matches `where`, on `dataset` (default: any)."""
    v = [a[metric] for _, cfg, ds, a in h5_summaries(path)
         if (dataset is None or ds == dataset) and all(cfg.get(k) == x for k, x in where.items())]
    assert v, f'no runs of {where} on {dataset} in {path}'
    return float(np.mean(v)), (float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0)


def pm(m_se):
    return f'{m_se[0]:.3f} +- {m_se[1]:.3f}'


class Notebooks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = have_nbconvert()
        if missing:
            if CI:
                raise RuntimeError(f'CI=true and {missing}')
            raise unittest.SkipTest(missing)
        cls.t0 = time.time()
        cls.dir = Path(tempfile.mkdtemp(prefix='cfx_nb_'))
        cls.figdir = cls.dir / 'figures'
        cls.data = cls.dir / 'data'
        cls.reader = load_reader()
        cls.seconds = {}
        args = studies(cls.dir)
        # scaling_models draws subsets 1..subsets where its preset has that key (else subset_ids)
        lst = cls.cfx('experiments/scaling_models.lua', '--list')
        assert lst.returncode == 0, lst.stderr[-3000:]
        if re.search(r'^  subsets +\d', lst.stdout, re.M):
            args['scaling_models'].append('subsets=2')
        (cls.dir / 'alignment_data').mkdir()
        (cls.dir / 'alignment_stores.lua').write_text(ALIGNMENT_STORES)
        r = cls.cfx(str(cls.dir / 'alignment_stores.lua'), str(cls.dir / 'alignment_data'))
        assert r.returncode == 0, r.stderr[-3000:]
        # the first study makes the shared synthetic stores; the others then run two at a time
        first, *rest = args
        cls.run_study(first, args[first])
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            for name, fut in [(n, pool.submit(cls.run_study, n, args[n])) for n in rest]:
                fut.result()
        cls.results = {n: cls.dir / n / f'{n}-cpu.h5' for n in args}
        cls.seconds_scripts = time.time() - cls.t0
        # every notebook on its study's file, two at a time; each test checks its own
        t1 = time.time()
        names = sorted(p.name for p in NOTEBOOKS.glob('*.ipynb'))
        cls.unknown = [n for n in names if n not in NOTEBOOK_STUDY]
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            futs = {n: pool.submit(cls.execute_nb, n, cls.results[NOTEBOOK_STUDY[n]], cls.dir / f'fig-{n[:-6]}')
                    for n in names if n in NOTEBOOK_STUDY}
            cls.partial = cls.partly_written()
            for n in ('scaling_models.ipynb', 'training_curves.ipynb'):
                futs[f'{n} (partial)'] = pool.submit(cls.execute_nb, n, cls.partial, cls.dir / 'fig-partial')
            cls.executed = {n: f.result() for n, f in futs.items()}
        cls.seconds_notebooks = time.time() - t1

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, 'dir'):
            scripts = ', '.join(f'{n} {s:.0f} s' for n, s in cls.seconds.items())
            nbs = ', '.join(f'{n.replace(".ipynb", "")} {e["seconds"]:.0f} s'
                            for n, e in getattr(cls, 'executed', {}).items())
            print(f'\ntest_notebooks: scripts {getattr(cls, "seconds_scripts", 0):.0f} s ({scripts}); notebooks '
                  f'{getattr(cls, "seconds_notebooks", 0):.0f} s ({nbs}); total {time.time() - cls.t0:.0f} s',
                  flush=True)
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def cfx(cls, script, *args):
        env = dict(os.environ, CFX_THREADS='1')
        return subprocess.run([CFX, str(ROOT / script), *args], capture_output=True, text=True, timeout=600,
                              env=env, cwd=ROOT)

    @classmethod
    def run_study(cls, name, extra):
        t0 = time.time()
        stores = [f'train_store={cls.data}/train.h5', f'eval_store={cls.data}/eval.h5']
        r = cls.cfx(f'experiments/{name}.lua', *stores, *TINY, *extra, '--out', str(cls.dir / name))
        assert r.returncode == 0, f'experiments/{name}.lua failed:\n{r.stderr[-3000:]}'
        cls.seconds[name] = time.time() - t0

    @classmethod
    def execute_nb(cls, notebook, results, figdir):
        """Run notebooks/<notebook> headless on `results`: {returncode, stderr (nbconvert's), nb, seconds}."""
        import nbformat
        out = Path(tempfile.mkdtemp(prefix=Path(notebook).stem + '-', dir=cls.dir))
        env = dict(os.environ, CFX_RESULTS=str(results), CFX_FIGDIR=str(figdir),
                   JUPYTER_RUNTIME_DIR=str(cls.dir / 'jupyter-runtime'), IPYTHONDIR=str(cls.dir / 'ipython'),
                   MPLCONFIGDIR=str(cls.dir / 'mpl'), MPLBACKEND='agg', PYDEVD_DISABLE_FILE_VALIDATION='1')
        t0 = time.time()
        r = subprocess.run(['jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--output-dir', str(out),
                            '--ExecutePreprocessor.timeout=300', str(NOTEBOOKS / notebook)],
                           capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
        nb = nbformat.read(out / notebook, as_version=4) if r.returncode == 0 else None
        return {'returncode': r.returncode, 'stderr': r.stderr, 'nb': nb, 'seconds': time.time() - t0,
                'results': results, 'figdir': figdir}

    def executed_nb(self, notebook):
        """The executed notebook (asserting it ran without an error) and its cells' stderr."""
        e = self.executed[notebook]
        self.assertEqual(e['returncode'], 0, f'{notebook} on {e["results"]} failed:\n{e["stderr"][-4000:]}')
        nb = e['nb']
        errors = [o for c in nb.cells for o in c.get('outputs', []) if o.get('output_type') == 'error']
        self.assertEqual(errors, [])
        stderr = ''.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', [])
                         if o.get('output_type') == 'stream' and o.get('name') == 'stderr')
        return nb, stderr

    def assert_figure(self, path):
        import matplotlib.image as mpimg
        self.assertTrue(path.exists(), f'{path} was not written')
        img = mpimg.imread(path)
        self.assertGreater(img.shape[0], 200)
        self.assertGreater(img.shape[1], 300)
        self.assertGreater(float(img[..., :3].std()), 0.02, f'{path} is blank')

    @staticmethod
    def text(nb):
        return ''.join(o.get('text', '') + json.dumps(o.get('data', {}).get('text/plain', ''))
                       for c in nb.cells for o in c.get('outputs', []))

    def figures(self, notebook):
        """{png name: [per-axes dict]} from the notebook's 'figure NAME: [...]' lines; every PNG checked."""
        nb, _ = self.executed_nb(notebook)
        out = {}
        for line in self.text(nb).splitlines():
            m = re.match(r'figure (\S+\.png): (\[.*\])$', line)
            if m:
                out[m.group(1)] = json.loads(m.group(2))
                self.assert_figure(self.executed[notebook]['figdir'] / m.group(1))
        self.assertTrue(out, f'{notebook} saved no figure')
        return out

    # ---- the notebooks --------------------------------------------------------------------------
    def test_every_notebook_is_run_here(self):
        self.assertEqual(self.unknown, [], 'notebooks this test does not know: add them to NOTEBOOK_STUDY')

    def test_index(self):
        nb, _ = self.executed_nb('index.ipynb')
        src = ''.join(c.source for c in nb.cells)
        for name in ('CFX_RESULTS', 'CFX_FIGDIR'):
            self.assertIn(name, src)
        for p in NOTEBOOKS.glob('*.ipynb'):       # every other notebook of the folder is named in the index
            if p.name != 'index.ipynb':
                self.assertIn(f'[{p.name}]({p.name})', src)
                study = NOTEBOOK_STUDY.get(p.name)
                if p.name != 'training_curves.ipynb':
                    self.assertIn(f'experiments/{study}.lua', src)
                    self.assertIn(p.name, self.text(nb))      # and in its table of results files

    def test_scaling_models(self):
        figs = self.figures('scaling_models.ipynb')
        path = self.results['scaling_models']
        text = self.text(self.executed_nb('scaling_models.ipynb')[0])
        # the printed change from the smallest k to the largest is the one h5py gives
        self.assertIn(f'mean AP {pm(mean_of(path, k=2))} at k=2 -> {pm(mean_of(path, k=4))} at k=4', text)
        scaling = figs['scaling_models-cpu_scaling.png']
        self.assertEqual([(a['lines'], a['bands']) for a in scaling], [(1, 1), (1, 1)])   # AP and acc, SE bands
        # Fig. 3: per architecture, from the per-generator rows (h5py: mean per run, then over subsets)
        per = {}
        with h5py.File(path, 'r') as f:
            for g in f['runs'].values():
                k = json.loads(g.attrs['config'])['k']
                rows = g['eval/synth'][()]
                for a in set(rows['architecture']):
                    per.setdefault((a.decode(), k), []).append(float(np.nanmean(rows['ap'][rows['architecture'] == a])))
        archs = sorted({a for a, _ in per})
        arch_fig = figs['scaling_models-cpu_per_arch.png']
        self.assertEqual(len(arch_fig), 2 * len(archs))                 # AP and accuracy panels per architecture
        self.assertTrue(all(a['lines'] == 1 and a['bands'] == 1 for a in arch_fig))
        self.assertEqual(sorted(a['title'].split(' (')[0] for a in arch_fig[:len(archs)]), archs)
        for a in archs:
            v = per[(a, 4)]
            se = np.std(v, ddof=1) / np.sqrt(len(v))
            self.assertIn(f'k=4 {np.mean(v):.3f} +- {se:.3f}', re.search(rf'cpu/synth {a}: AP (.*)', text).group(1))
        self.assertIn('agree with the eval_arch tables of 4 runs: largest |difference| in AP 0', text)

    def test_backbones(self):
        figs = self.figures('backbones.ipynb')
        bars = figs['backbones-cpu_bars.png']
        self.assertEqual([a['bars'] for a in bars], [3, 3])            # three backbones, AP and accuracy
        self.assertIn('backbones-cpu_per_arch.png', figs)

    def test_training_curves(self):
        figs = self.figures('training_curves.ipynb')
        self.assertIn('backbones-cpu_training.png', figs)
        # one subset of each backbone: only the model varies
        self.assertRegex(self.text(self.executed_nb('training_curves.ipynb')[0]), r'varied across runs: model\n')

    def test_num_images(self):
        figs = self.figures('num_images.ipynb')
        path = self.results['num_images']
        text = self.text(self.executed_nb('num_images.ipynb')[0])
        for budget in (16, 32):
            for source in ('many', 'few'):
                m_se = mean_of(path, budget=budget, source=source)
                self.assertIn(f'budget {budget:>8} {source:<6} mean AP {pm(m_se)}', text)
        fig = figs['num_images-cpu_budget.png']
        self.assertEqual([(a['lines'], a['bands']) for a in fig], [(2, 2), (2, 2)])   # many and few, with SE bands
        d = mean_of(path, budget=16, source='many')[0] - mean_of(path, budget=16, source='few')[0]
        self.assertIn(f'budget 16: many - few: AP {d:+.3f}', text)

    def test_diversity(self):
        figs = self.figures('diversity.ipynb')
        path = self.results['diversity']
        text = self.text(self.executed_nb('diversity.ipynb')[0])
        for s, label in (('systematic', 'systematic'), ('manual', 'manual'),
                         ('systematic,manual', 'systematic + manual')):
            self.assertIn(f'{label:<24} mean AP {pm(mean_of(path, train_subsets=s))}', text)
        self.assertEqual([a['bars'] for a in figs['diversity-cpu_bars.png']], [3, 3])
        self.assertEqual(figs['diversity-cpu_per_generator.png'][0]['images'], 1)     # the heat map
        self.assertIn('evaluated on every evaluation generator', text)

    def test_frozen_vs_finetuned(self):
        figs = self.figures('frozen_vs_finetuned.ipynb')
        path = self.results['frozen_vs_finetuned']
        text = self.text(self.executed_nb('frozen_vs_finetuned.ipynb')[0])
        for model in ('vit_micro_patch8_64', 'convnext_micro'):
            for mode in ('finetune', 'frozen'):
                self.assertIn(f'{model:<28} {mode:<9} mean AP {pm(mean_of(path, model=model, mode=mode))}', text)
            self.assertIn(f'{model}: finetune - frozen: AP ', text)
        # 2 backbones x 2 modes, AP and accuracy
        self.assertEqual([a['bars'] for a in figs['frozen_vs_finetuned-cpu_bars.png']], [4, 4])

    def test_robustness(self):
        figs = self.figures('robustness.ipynb')
        path = self.results['robustness']
        text = self.text(self.executed_nb('robustness.ipynb')[0])
        fig = figs['robustness-cpu_perturbations.png']
        self.assertEqual([a['title'] for a in fig], ['jpeg', 'blur', 'rotate', 'resize', 'pad', 'shear'])
        self.assertTrue(all(a['lines'] == 2 and a['bands'] == 2 for a in fig))      # with and without augmentation
        for ds, name in (('synth', 'synth'), ('jpeg@50', 'jpeg@50'), ('shear@15', 'shear@15')):
            cells = [pm(mean_of(path, dataset=ds, augmentation=a)) for a in ('paper', 'none')]
            self.assertRegex(text, rf'  {re.escape(name)} +{re.escape(cells[0])} +{re.escape(cells[1])}')

    def test_iterations(self):
        figs = self.figures('iterations.ipynb')
        text = self.text(self.executed_nb('iterations.ipynb')[0])
        ap = {}
        with h5py.File(self.results['iterations'], 'r') as f:
            for g in f['runs'].values():
                for row in g['curve/synth'][()]:
                    ap.setdefault(int(row['step']), []).append(float(row['mean_ap']))
        self.assertEqual(sorted(ap), [2, 4])
        m_se = {s: (np.mean(v), np.std(v, ddof=1) / np.sqrt(len(v))) for s, v in ap.items()}
        self.assertIn(f'mean AP {pm(m_se[2])} at step 2 -> {pm(m_se[4])} at step 4', text)
        self.assertEqual([(a['lines'], a['bands']) for a in figs['iterations-cpu_curve.png']], [(1, 1), (1, 1)])

    def test_cross_dataset(self):
        figs = self.figures('cross_dataset.ipynb')
        path = self.results['cross_dataset']
        text = self.text(self.executed_nb('cross_dataset.ipynb')[0])
        sets = ['synth', 'gan_others', 'commercial_jpeg']
        self.assertRegex(text, r'cpu mAP +' + ' +'.join(sets))
        for metric in ('mean_ap', 'mean_acc'):
            self.assertRegex(text, r'mean \+- SE +' + ' +'.join(re.escape(pm(mean_of(path, metric, s))) for s in sets))
        self.assertEqual([a['bars'] for a in figs['cross_dataset-cpu_sets.png']], [3, 3])
        with h5py.File(path, 'r') as f:
            n_gen = [len(next(iter(f['runs'].values()))['eval'][s]) for s in sets]
        self.assertEqual([a['bars'] for a in figs['cross_dataset-cpu_per_generator.png']], n_gen)

    def test_attribution(self):
        figs = self.figures('attribution.ipynb')
        text = self.text(self.executed_nb('attribution.ipynb')[0])
        with h5py.File(self.results['attribution'], 'r') as f:
            g = f['runs/subset=1']
            counts = g['confusion/synth/counts'][()]
            true_types = json.loads(g['confusion/synth'].attrs['true_types'])
            emb_types = json.loads(g['embeddings/synth'].attrs['types'])
            sample = g['embeddings/synth/type'][()]
            present = sorted(set(sample))
            acc = g['attribution/synth'].attrs['accuracy_known']
        self.assertIn(f'accuracy on known types {acc:.3f}', text)
        for t, row in zip(true_types, counts):        # the printed confusion counts are the file's
            self.assertRegex(text, rf'\n{re.escape(t)} +' + ' +'.join(str(int(c)) for c in row) + r'\n')
        self.assertEqual(figs['attribution-cpu_confusion.png'][0]['images'], 1)
        tsne = figs['attribution-cpu_tsne.png']
        self.assertEqual(tsne[0]['scatters'], len(present))       # one colour per generator type in the sample
        self.assertIn(f't-SNE map of {len(sample)} embeddings: ' +
                      ', '.join(f'{emb_types[i - 1]} {int((sample == i).sum())}' for i in present), text)

    def test_alignment(self):
        figs = self.figures('alignment.ipynb')
        path = self.results['alignment']
        text = self.text(self.executed_nb('alignment.ipynb')[0])
        for r in ('LAION', 'others'):
            cells = [pm(mean_of(path, dataset=ds, reals=r)) for ds in ('synth@F=LAION', 'synth@F=others', 'synth')]
            self.assertRegex(text, rf'  {r} +' + r' \(\d\.\d+\) +'.join(re.escape(c) for c in cells))
        fig = figs['alignment-cpu_bars.png']
        self.assertEqual([a['bars'] for a in fig], [6, 6])        # 2 training reals x 3 evaluations, AP and acc

    @classmethod
    def partly_written(cls):
        """A copy of the scaling file with a run still training (no eval yet), a run without a
        train table and an empty run group."""
        part = cls.dir / 'partial' / 'scaling_models-cpu.h5'
        part.parent.mkdir()
        shutil.copy(cls.results['scaling_models'], part)
        with h5py.File(part, 'r+') as f:
            runs = f['runs']
            for node in ('eval', 'eval_arch', 'predictions'):
                del runs['k=4,subset=2'][node]
            runs['k=4,subset=2'].attrs['status'] = 'running'
            del runs['k=4,subset=2'].attrs['summary']
            del runs['k=2,subset=1']['train']
            runs.create_group('k=99,subset=1')
        return part

    def test_a_partly_written_file(self):
        """Read with the missing parts left out and said; the notebooks still draw from it."""
        part, cr = self.partial, self.reader
        all_runs = cr.runs(part)
        self.assertEqual(len(all_runs), 5)
        summ = cr.summaries(part)                       # done runs with summaries
        self.assertEqual(sorted(summ['run']), ['k=2,subset=1', 'k=2,subset=2', 'k=4,subset=1'])
        self.assertEqual(sorted(cr.summaries(part, status=None)['run'].unique()), sorted(summ['run']))
        self.assertEqual(sorted(cr.train(part)['run'].unique()), ['k=2,subset=2', 'k=4,subset=1', 'k=4,subset=2'])
        self.assertEqual(cr.evals(part, status=None)['run'].nunique(), 3)
        self.assertIsNone(cr.predictions(part, 'k=4,subset=2'))
        _, stderr = self.executed_nb('scaling_models.ipynb (partial)')
        self.assertIn("2 run(s) left out, not done: (no status): k=99,subset=1; running: k=4,subset=2", stderr)
        self.assert_figure(self.dir / 'fig-partial' / 'scaling_models-cpu_scaling.png')
        _, stderr = self.executed_nb('training_curves.ipynb (partial)')
        self.assertIn("run 'k=2,subset=1' (done) has no train table; left out", stderr)
        self.assert_figure(self.dir / 'fig-partial' / 'scaling_models-cpu_training.png')

    def test_not_a_results_file(self):
        cr = self.reader
        with self.assertRaisesRegex(ValueError, 'not a cfx results file'):
            cr.runs(self.data / 'eval.h5')              # a packed store
        with self.assertRaisesRegex(FileNotFoundError, 'no such results file'):
            cr.runs(self.dir / 'nothing.h5')
        junk = self.dir / 'junk.h5'
        junk.write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0' * 100)
        with self.assertRaisesRegex(ValueError, 'not a readable HDF5 file'):
            cr.runs(junk)

    # ---- the reader against h5py ----------------------------------------------------------------
    def test_reader_agrees_with_h5py(self):
        cr = self.reader
        path = self.results['scaling_models']
        runs = cr.runs(path)
        with h5py.File(path, 'r') as f:
            ids = list(f['runs'])
            n_gen = {rid: len(f['runs'][rid]['eval/synth']) for rid in ids}
            n_arch = {rid: len(f['runs'][rid]['eval_arch/synth']) for rid in ids}
            steps = {rid: len(f['runs'][rid]['train']) for rid in ids}
            p = f['runs'][ids[0]]['predictions/synth']
            score, label = p['score'][()], p['label'][()]
        self.assertEqual(list(runs['run']), ids)
        self.assertEqual(sorted(set(runs['k'])), [2, 4])
        self.assertTrue((runs['status'] == 'done').all())
        self.assertIn('synth/mean_ap', runs.columns)
        self.assertEqual(cr.datasets(path), ['synth'])
        evals = cr.evals(path)
        self.assertEqual(len(evals), sum(n_gen.values()))
        self.assertEqual({'generator', 'architecture', 'ap', 'acc', 'auroc', 'k', 'subset', 'dataset'} - set(evals),
                         set())
        self.assertEqual(len(cr.eval_arch(path)), sum(n_arch.values()))
        self.assertEqual(len(cr.train(path)), sum(steps.values()))
        pred = cr.predictions(path, ids[0], 'synth')
        np.testing.assert_array_equal(pred['score'].to_numpy(), score)
        np.testing.assert_array_equal(pred['label'].to_numpy(), label)
        # generator names from the eval store: every fake's generator has an eval table row
        fakes = set(pred[pred['label'] == 1]['generator_name'])
        self.assertEqual(fakes, set(evals[evals['run'] == ids[0]]['generator']))
        # mean +- SE over subsets, as cfx.metrics.mean_se (sample sd / sqrt(n))
        table = cr.mean_se(cr.summaries(path), ['k'], ['mean_ap', 'mean_acc']).set_index('k')
        for k in (2, 4):
            m, se = mean_of(path, k=k)
            self.assertAlmostEqual(table.loc[k, 'mean_ap'], m, places=12)
            self.assertAlmostEqual(table.loc[k, 'mean_ap_se'], se, places=12)
            self.assertEqual(table.loc[k, 'n'], 2)
        # the run summaries' nested per-architecture means are flattened columns
        summ = cr.summaries(path)
        self.assertTrue(any(c.startswith('architectures.') and c.endswith('.ap') for c in summ.columns))
        # one value: no SE
        one = cr.mean_se(summ, ['run'], 'mean_ap')
        self.assertTrue(one['mean_ap_se'].isna().all())
        b = cr.mean_se(cr.summaries(self.results['backbones']), 'model').set_index('model')
        self.assertEqual(sorted(b.index), sorted(set(cr.runs(self.results['backbones'])['model'])))
        self.assertTrue((b['n'] == 1).all() and b['mean_ap_se'].isna().all())

    def test_reader_on_the_other_tables(self):
        cr = self.reader
        # curve/<dataset>: iterations
        along = cr.curves(self.results['iterations'])
        with h5py.File(self.results['iterations'], 'r') as f:
            n = sum(len(g['curve/synth']) for g in f['runs'].values())
        self.assertEqual(len(along), n)
        self.assertEqual({'step', 'mean_ap', 'mean_acc', 'subset', 'dataset'} - set(along), set())
        # a study's own tables, their attributes, and array groups: attribution
        path = self.results['attribution']
        per_type = cr.tables(path, 'attribution')
        about = cr.table_attrs(path, 'attribution')
        data, attrs = cr.arrays(path, 'subset=1', 'confusion/synth')
        with h5py.File(path, 'r') as f:
            t = f['runs/subset=1/attribution/synth']
            self.assertEqual(list(per_type['type']), [x.decode() for x in t['type']])
            self.assertEqual(about.loc[0, 'accuracy_known'], t.attrs['accuracy_known'])
            self.assertEqual(about.loc[0, 'known_types'], json.loads(t.attrs['known_types']))   # JSON lists decoded
            self.assertEqual(about.loc[0, 'summary.k'], t.attrs['k'])       # the kNN's k beside the config's k
            self.assertEqual(about.loc[0, 'k'], 0)
            np.testing.assert_array_equal(data['counts'], f['runs/subset=1/confusion/synth/counts'][()])
        self.assertEqual(attrs['true_types'], list(per_type['type']))
        self.assertIsNone(cr.arrays(path, 'subset=1', 'nothing/synth'))
        # a summary key named as a config key: the config's value stays (alignment's reals)
        summ = cr.summaries(self.results['alignment'])
        self.assertEqual(sorted(set(summ['reals'])), ['LAION', 'others'])
        self.assertIn('summary.reals', summ.columns)              # the protocol's rule, kept apart
        self.assertEqual(cr.perturbation('jpeg@50'), ('jpeg', 50.0))
        self.assertEqual(cr.perturbation('synth', 'synth'), ('clean', None))
        self.assertIsNone(cr.perturbation('synth@F=LAION'))


if __name__ == '__main__':
    unittest.main(verbosity=2)
