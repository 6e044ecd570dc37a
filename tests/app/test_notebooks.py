#!/usr/bin/python3
"""The notebooks of notebooks/ on results files that the real experiment scripts write.

- experiments/scaling_models.lua and experiments/backbones.lua run through the cfx program
  (CFX_BIN, default build/cfx) with tiny settings (a synthetic store of 8 + 4 generators,
  4 steps), as a user would run them;
- every notebook executes headless (`jupyter nbconvert --to notebook --execute`) with
  CFX_RESULTS pointing at those files and CFX_FIGDIR at a temporary folder, failing on any
  error; the PNGs each one saves are read back (size, not blank);
- notebooks/cfxresults.py agrees with h5py read directly (runs, per-generator and
  per-architecture rows, the mean +- SE of the summaries, predictions);
- a partly written file (a run still training without eval tables, one without a train
  table, an empty run group) is read with the missing parts left out and said, and the
  scaling notebook still draws from it; a file that is not a results file is one clear error.

Without jupyter nbconvert or ipykernel it prints SKIP (and fails under CI=true). When
experiments/backbones.lua or the study layer it stands on is missing or its --list fails,
the backbones part is skipped with the reason printed.

Run:  /usr/bin/python3 tests/app/test_notebooks.py   (from the repo root).
"""
import importlib.util
import json
import os
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
        'batch=8', 'workers=1']
CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


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
        stores = [f'train_store={cls.data}/train.h5', f'eval_store={cls.data}/eval.h5']
        r = cls.cfx('experiments/scaling_models.lua', *stores, *TINY, 'k_min=2', 'k_max=8', 'k_count=2',
                    '--out', str(cls.dir / 'scaling'))
        assert r.returncode == 0, r.stderr[-3000:]
        cls.scaling = cls.dir / 'scaling' / 'scaling_models-cpu.h5'
        cls.backbones, cls.backbones_skip = None, None
        script = ROOT / 'experiments' / 'backbones.lua'
        if not script.exists() or not (ROOT / 'lua' / 'cfx' / 'study.lua').exists():
            cls.backbones_skip = 'experiments/backbones.lua or lua/cfx/study.lua is not there yet'
        else:
            lst = cls.cfx('experiments/backbones.lua', '--list')
            if lst.returncode != 0:
                cls.backbones_skip = f'experiments/backbones.lua --list fails: {lst.stderr.strip()[-500:]}'
            else:
                # the stores of the scaling run; 4 of its 8 training generators, 2 subsets
                r = cls.cfx('experiments/backbones.lua', *stores, *TINY, 'k=4', 'subset_ids=1,2',
                            '--out', str(cls.dir / 'backbones'))
                assert r.returncode == 0, r.stderr[-3000:]
                cls.backbones = cls.dir / 'backbones' / 'backbones-cpu.h5'
        if cls.backbones_skip:
            print(f'\nSKIP backbones part: {cls.backbones_skip}', flush=True)
        cls.seconds_scripts = time.time() - cls.t0
        cls.executed = []

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, 'dir'):
            runs = ', '.join(f'{nb} {s:.0f} s' for nb, _, s in cls.executed)
            print(f'\ntest_notebooks: scripts {cls.seconds_scripts:.0f} s; notebooks: {runs}; '
                  f'total {time.time() - cls.t0:.0f} s', flush=True)
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def cfx(cls, script, *args):
        env = dict(os.environ, CFX_THREADS='1')
        return subprocess.run([CFX, str(ROOT / script), *args], capture_output=True, text=True, timeout=600,
                              env=env, cwd=ROOT)

    def execute(self, notebook, results, figdir=None):
        """Run notebooks/<notebook> headless on `results`; return (the executed notebook, its stderr)."""
        import nbformat
        out = Path(tempfile.mkdtemp(prefix=Path(notebook).stem + '-', dir=self.dir))
        env = dict(os.environ, CFX_RESULTS=str(results), CFX_FIGDIR=str(figdir or self.figdir),
                   JUPYTER_RUNTIME_DIR=str(self.dir / 'jupyter-runtime'), IPYTHONDIR=str(self.dir / 'ipython'),
                   MPLCONFIGDIR=str(self.dir / 'mpl'), MPLBACKEND='agg', PYDEVD_DISABLE_FILE_VALIDATION='1')
        t0 = time.time()
        r = subprocess.run(['jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--output-dir', str(out),
                            '--ExecutePreprocessor.timeout=300', str(NOTEBOOKS / notebook)],
                           capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
        self.assertEqual(r.returncode, 0, f'{notebook} on {results} failed:\n{r.stderr[-4000:]}')
        self.executed.append((notebook, str(results), time.time() - t0))
        nb = nbformat.read(out / notebook, as_version=4)
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

    # ---- the notebooks --------------------------------------------------------------------------
    def test_index(self):
        nb, _ = self.execute('index.ipynb', self.scaling)
        src = ''.join(c.source for c in nb.cells)
        for name in ('scaling_models.ipynb', 'backbones.ipynb', 'training_curves.ipynb', 'CFX_RESULTS',
                     'experiments/scaling_models.lua', 'experiments/backbones.lua'):
            self.assertIn(name, src)
        for p in NOTEBOOKS.glob('*.ipynb'):       # every other notebook of the folder is named in the index
            if p.name != 'index.ipynb':
                self.assertIn(p.name, src)

    def test_scaling_models(self):
        figdir = self.dir / 'fig-scaling'
        nb, _ = self.execute('scaling_models.ipynb', self.scaling, figdir)
        self.assert_figure(figdir / 'scaling_models-cpu_scaling.png')
        self.assert_figure(figdir / 'scaling_models-cpu_per_arch.png')
        # the printed change from the smallest k to the largest is the one h5py gives
        ap = self.mean_ap_by(self.scaling, 'k')
        self.assertIn(f'mean AP {np.mean(ap[2]):.3f} +- ', self.text(nb))
        self.assertIn(f'-> {np.mean(ap[8]):.3f} +- ', self.text(nb))

    def test_backbones(self):
        if self.backbones is None:
            self.skipTest(self.backbones_skip)
        figdir = self.dir / 'fig-backbones'
        self.execute('backbones.ipynb', self.backbones, figdir)
        self.assert_figure(figdir / 'backbones-cpu_bars.png')
        self.assert_figure(figdir / 'backbones-cpu_per_arch.png')

    def test_training_curves_of_any_file(self):
        # the backbones file here; the scaling file's (partly written) in test_a_partly_written_file
        figdir = self.dir / 'fig-training'
        results = self.backbones or self.scaling
        nb, _ = self.execute('training_curves.ipynb', results, figdir)
        self.assert_figure(figdir / f'{"backbones" if self.backbones else "scaling_models"}-cpu_training.png')
        self.assertIn('varied across runs: ' + ('model, subset' if self.backbones else 'k, subset'), self.text(nb))

    def test_a_partly_written_file(self):
        """A run still training (no eval yet), a run without a train table, an empty run group."""
        part = self.dir / 'partial' / 'scaling_models-cpu.h5'
        part.parent.mkdir()
        shutil.copy(self.scaling, part)
        with h5py.File(part, 'r+') as f:
            runs = f['runs']
            for node in ('eval', 'eval_arch', 'predictions'):
                del runs['k=8,subset=3'][node]
            runs['k=8,subset=3'].attrs['status'] = 'running'
            del runs['k=8,subset=3'].attrs['summary']
            del runs['k=2,subset=1']['train']
            runs.create_group('k=99,subset=1')
        cr = self.reader
        all_runs = cr.runs(part)
        self.assertEqual(len(all_runs), 7)
        summ = cr.summaries(part)                       # done runs with summaries
        self.assertEqual(sorted(summ['run']), ['k=2,subset=1', 'k=2,subset=2', 'k=2,subset=3', 'k=8,subset=1',
                                                'k=8,subset=2'])
        self.assertEqual(sorted(cr.summaries(part, status=None)['run'].unique()), sorted(summ['run']))
        self.assertEqual(sorted(cr.train(part)['run'].unique()),
                         ['k=2,subset=2', 'k=2,subset=3', 'k=8,subset=1', 'k=8,subset=2', 'k=8,subset=3'])
        self.assertEqual(cr.evals(part, status=None)['run'].nunique(), 5)
        self.assertIsNone(cr.predictions(part, 'k=8,subset=3'))
        figdir = self.dir / 'fig-partial'
        _, stderr = self.execute('scaling_models.ipynb', part, figdir)
        self.assertIn("2 run(s) left out, not done: (no status): k=99,subset=1; running: k=8,subset=3", stderr)
        self.assert_figure(figdir / 'scaling_models-cpu_scaling.png')
        _, stderr = self.execute('training_curves.ipynb', part, figdir)
        self.assertIn("run 'k=2,subset=1' (done) has no train table; left out", stderr)
        self.assert_figure(figdir / 'scaling_models-cpu_training.png')

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
    @staticmethod
    def mean_ap_by(path, key):
        out = {}
        with h5py.File(path, 'r') as f:
            for g in f['runs'].values():
                cfg = json.loads(g.attrs['config'])
                out.setdefault(cfg[key], []).append(json.loads(g.attrs['summary'])['synth']['mean_ap'])
        return out

    def test_reader_agrees_with_h5py(self):
        cr = self.reader
        runs = cr.runs(self.scaling)
        with h5py.File(self.scaling, 'r') as f:
            ids = list(f['runs'])
            n_gen = {rid: len(f['runs'][rid]['eval/synth']) for rid in ids}
            n_arch = {rid: len(f['runs'][rid]['eval_arch/synth']) for rid in ids}
            steps = {rid: len(f['runs'][rid]['train']) for rid in ids}
            p = f['runs'][ids[0]]['predictions/synth']
            score, label = p['score'][()], p['label'][()]
        self.assertEqual(list(runs['run']), ids)
        self.assertEqual(sorted(set(runs['k'])), [2, 8])
        self.assertTrue((runs['status'] == 'done').all())
        self.assertIn('synth/mean_ap', runs.columns)
        self.assertEqual(cr.datasets(self.scaling), ['synth'])
        evals = cr.evals(self.scaling)
        self.assertEqual(len(evals), sum(n_gen.values()))
        self.assertEqual({'generator', 'architecture', 'ap', 'acc', 'auroc', 'k', 'subset', 'dataset'} - set(evals),
                         set())
        self.assertEqual(len(cr.eval_arch(self.scaling)), sum(n_arch.values()))
        self.assertEqual(len(cr.train(self.scaling)), sum(steps.values()))
        pred = cr.predictions(self.scaling, ids[0], 'synth')
        np.testing.assert_array_equal(pred['score'].to_numpy(), score)
        np.testing.assert_array_equal(pred['label'].to_numpy(), label)
        # generator names from the eval store: every fake's generator has an eval table row
        fakes = set(pred[pred['label'] == 1]['generator_name'])
        self.assertEqual(fakes, set(evals[evals['run'] == ids[0]]['generator']))
        # mean +- SE over subsets, as cfx.metrics.mean_se (sample sd / sqrt(n))
        table = cr.mean_se(cr.summaries(self.scaling), ['k'], ['mean_ap', 'mean_acc']).set_index('k')
        for k, v in self.mean_ap_by(self.scaling, 'k').items():
            self.assertAlmostEqual(table.loc[k, 'mean_ap'], np.mean(v), places=12)
            self.assertAlmostEqual(table.loc[k, 'mean_ap_se'], np.std(v, ddof=1) / np.sqrt(len(v)), places=12)
            self.assertEqual(table.loc[k, 'n'], len(v))
        # one value: no SE
        one = cr.mean_se(cr.summaries(self.scaling), ['run'], 'mean_ap')
        self.assertTrue(one['mean_ap_se'].isna().all())
        if self.backbones is not None:
            b = cr.mean_se(cr.summaries(self.backbones), 'model').set_index('model')
            self.assertEqual(sorted(b.index), sorted(set(cr.runs(self.backbones)['model'])))
            self.assertTrue((b['n'] == 2).all())


if __name__ == '__main__':
    unittest.main(verbosity=2)
