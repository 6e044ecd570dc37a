#!/usr/bin/python3
"""The experiment runner end to end with real processes: experiments/scaling_models.lua
on a reduced grid of synthetic data (made by the script on first use).

- the scaling effect: mean AP on held-out generators at the largest k beats the
  smallest k by a clear margin (averaged over subsets);
- a second invocation skips finished points; --list, typed overrides and usage errors;
- a changed configuration into the same results directory is refused, naming the keys,
  before any work (steps=100 after the 150-step runs does not print their table; stores
  elsewhere do not get the old table headed with the new path); --force replaces the
  old run and its checkpoints; `cfx collect` refuses one run id with two configurations;
- a run interrupted by SIGUSR1 exits 75 and resumes without duplicate training rows, to
  bitwise the losses of the uninterrupted run;
- --task writes one file per task and `cfx collect` merges them; h5py reads everything;
- device='auto' is recorded resolved ('cpu' here); device=cuda on a build or node without
  CUDA is one clear line and exit status 2, before any work.

Run:  /usr/bin/python3 tests/app/test_experiment.py   (from the repo root).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
SCRIPT = str(ROOT / 'experiments' / 'scaling_models.lua')
MARGIN = 0.03


class ScalingModels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix='cfx_exp_'))
        data = cls.dir / 'data'
        cls.common = [f'train_store={data}/train.h5', f'eval_store={data}/eval.h5', 'synth_train_generators=48',
                      'synth_eval_generators=12', 'synth_per_generator=60', 'k_max=24', 'k_count=2', 'subsets=2',
                      'budget=180', 'steps=150', 'checkpoint_every=50', 'workers=1']
        cls.out = cls.dir / 'out'
        t0 = time.time()
        cls.first = cls.cfx(*cls.common, '--out', str(cls.out))
        cls.seconds = time.time() - t0
        assert cls.first.returncode == 0, cls.first.stderr
        cls.results = cls.out / 'scaling_models-cpu.h5'
        probe = subprocess.run([CFX, '-e', "print(require('cfx').cuda.is_available() and 'cuda:0' or 'cpu')"],
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, probe.stderr
        cls.device = probe.stdout.strip()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def cfx(cls, *args, timeout=900):
        env = dict(os.environ, CFX_THREADS='1')
        return subprocess.run([CFX, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env)

    def runs(self, path=None):
        with h5py.File(path or self.results, 'r') as f:
            return {name: (dict(g.attrs), g['train'][()] if 'train' in g else None,
                           g['eval/synth'][()] if 'eval' in g and 'synth' in g['eval'] else None)
                    for name, g in f['runs'].items()}

    def test_scaling_effect_on_unseen_generators(self):
        runs = self.runs()
        self.assertEqual(sorted(runs), sorted(['k=3,subset=1', 'k=3,subset=2', 'k=24,subset=1', 'k=24,subset=2']))
        mean_ap = {}
        for name, (attrs, train, table) in runs.items():
            self.assertEqual(attrs['status'], 'done')
            self.assertEqual(list(train['step']), list(range(1, 151)))
            # the per-generator table: 12 held-out generators, AP recomputed from predictions
            self.assertEqual(len(table), 12)
            k = int(name.split(',')[0][2:])
            mean_ap.setdefault(k, []).append(float(np.nanmean(table['ap'])))
            summary = json.loads(attrs['summary'])['synth']
            self.assertAlmostEqual(summary['mean_ap'], float(np.nanmean(table['ap'])), places=12)
            # device='auto' (every preset's default), resolved once and recorded
            self.assertEqual(attrs['device'], self.device)
            self.assertEqual(json.loads(attrs['config'])['device'], self.device)
        small, large = np.mean(mean_ap[3]), np.mean(mean_ap[24])
        print(f'\nmean AP on unseen generators: k=3 {small:.3f} {mean_ap[3]}, k=24 {large:.3f} {mean_ap[24]} '
              f'(grid of 4 runs in {self.seconds:.0f} s)')
        self.assertGreater(large, small + MARGIN)
        self.assertIn('mean AP +- SE', self.first.stdout)

    def test_predictions_match_the_table(self):
        from sklearn.metrics import average_precision_score
        with h5py.File(self.results, 'r') as f:
            g = f['runs/k=24,subset=1']
            p = g['predictions/synth']
            score, label = p['score'][()], p['label'][()]
            self.assertEqual(score.dtype, np.float32)
            pooled = json.loads(g.attrs['summary'])['synth']['ap_all']
            self.assertAlmostEqual(pooled, average_precision_score(label, score.astype(np.float64)), places=5)

    def test_second_invocation_skips_finished_points(self):
        r = self.cfx(*self.common, '--out', str(self.out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count('done already, skipped'), 4)
        self.assertIn('mean AP +- SE', r.stdout)

    def with_setting(self, *settings):
        """self.common with some keys set otherwise."""
        keys = {s.split('=')[0] for s in settings}
        return [a for a in self.common if a.split('=')[0] not in keys] + list(settings)

    def test_a_changed_configuration_is_refused_before_any_work(self):
        before = self.runs()
        # the first example: fewer steps into the directory of the 150-step runs
        r = self.cfx(*self.with_setting('steps=100'), '--out', str(self.out))
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(f'{self.results} already holds 4 runs of these points made with another configuration', lines[0])
        self.assertIn('steps 150 there, 100 now', lines[0])
        self.assertIn('use another --out DIR for this configuration, or --force', lines[0])
        self.assertNotIn('mean AP', r.stdout)
        self.assertNotIn('done already', r.stderr)
        # the second: stores that do not exist; nothing is made there, no old table under their name
        elsewhere = self.dir / 'elsewhere'
        r = self.cfx(*self.with_setting(f'train_store={elsewhere}/train.h5', f'eval_store={elsewhere}/eval.h5'),
                     '--out', str(self.out))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'eval_store "{self.dir}/data/eval.h5" there, "{elsewhere}/eval.h5" now', r.stderr)
        self.assertIn(f'train_store "{self.dir}/data/train.h5" there, "{elsewhere}/train.h5" now', r.stderr)
        self.assertEqual(r.stdout, '')
        self.assertFalse(elsewhere.exists())
        # --task (what a sweep's task runs) meets the grid's runs too: they share the checkpoints
        r = self.cfx(*self.with_setting('steps=3'), '--task', '1', '--out', str(self.out))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{self.results} already holds a run of this point made with another configuration '
                      '(k=3,subset=1: steps 150 there, 3 now)', r.stderr)
        self.assertFalse((self.out / 'tasks').exists())
        # nothing was touched, and the device is not part of a run's identity
        self.assertEqual({k: v[0] for k, v in self.runs().items()}, {k: v[0] for k, v in before.items()})
        r = self.cfx(*self.common, 'device=cpu', '--out', str(self.out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count('done already, skipped'), 4)

    def test_force_replaces_a_run_of_another_configuration_and_collect_refuses_two(self):
        two = self.dir / 'two'
        out = two / 'a'
        task = out / 'tasks' / 'scaling_models-cpu-task0001.h5'
        ck = out / 'checkpoints' / 'cpu' / 'k=3,subset=1'
        r = self.cfx(*self.with_setting('steps=4', 'checkpoint_every=2'), '--task', '1', '--out', str(out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(f.name for f in ck.iterdir()), ['step_00000002.safetensors', 'step_00000004.safetensors'])
        r = self.cfx(*self.with_setting('steps=3', 'checkpoint_every=2'), '--task', '1', '--out', str(out))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f'{task} already holds a run of this point made with another configuration '
                      '(k=3,subset=1: steps 4 there, 3 now)', r.stderr)
        r = self.cfx(*self.with_setting('steps=3', 'checkpoint_every=2'), '--task', '1', '--out', str(out), '--force')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f'replacing run k=3,subset=1 of {task} (done, made with another configuration: steps 4 there, '
                      '3 now)', r.stderr)
        attrs, train, table = self.runs(task)['k=3,subset=1']
        self.assertEqual((attrs['status'], json.loads(attrs['config'])['steps']), ('done', 3))
        self.assertEqual(list(train['step']), [1, 2, 3])
        self.assertEqual(len(table), 12)
        # the old configuration's checkpoints went with it
        self.assertEqual(sorted(f.name for f in ck.iterdir()), ['step_00000002.safetensors', 'step_00000003.safetensors'])
        # the old configuration again, in a directory of its own: fine; but one collect of both
        # would hold two runs under one id
        r = self.cfx(*self.with_setting('steps=4', 'checkpoint_every=2'), '--task', '1', '--out', str(two / 'b'))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([CFX, 'collect', str(two), '--out', str(self.dir / 'two.h5')], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"cfx collect: run 'k=3,subset=1' is in {task} and in {two}/b/tasks/scaling_models-cpu-task0001.h5 "
                      'with different configurations (steps 3 in the first, 4 in the second)', r.stderr)
        self.assertFalse((self.dir / 'two.h5').exists())

    def test_list_and_usage_errors(self):
        r = self.cfx(*self.common, '--list')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('grid: 4 points', r.stdout)
        self.assertIn('k=24,subset=2', r.stdout)
        r = self.cfx('stpes=3')
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown key 'stpes'", r.stderr)
        self.assertIn('steps', r.stderr)
        r = self.cfx('steps=many')
        self.assertEqual(r.returncode, 2)
        self.assertIn("steps: expected a number, got 'many'", r.stderr)

    def test_device(self):
        r = self.cfx(*self.common, '--list')
        self.assertRegex(r.stdout, r'\n  device +auto\n')
        r = self.cfx(*self.common, 'device=gpu')
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "cfx: scaling_models: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'\n")
        if self.device != 'cpu':
            self.skipTest('CUDA is available here: device=cuda is not an error')
        out = self.dir / 'cuda'
        r = self.cfx(*self.common, 'device=cuda', '--out', str(out))
        self.assertEqual(r.returncode, 2, r.stderr)
        # one line naming the value and what there is; no traceback, no position in cfx's code
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r"^cfx: scaling_models: device='cuda' but (this libtorch build has no CUDA|"
                                   r"no CUDA device is visible) \(cfx\.cuda\.is_available\(\) is false")
        self.assertIn("use device='cpu' or 'auto'", lines[0])
        self.assertNotIn('traceback', r.stderr)
        self.assertNotIn('.lua:', r.stderr)
        self.assertFalse(out.exists())  # before any work: not even the results directory
        # --task (what a sweep's tasks run) fails the same way
        r = self.cfx(*self.common, 'device=cuda', '--task', '1', '--out', str(out))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr, lines[0] + '\n')

    def test_interrupted_run_resumes_without_duplicate_rows(self):
        out = self.dir / 'interrupted'
        args = [*self.common, 'k_count=1', 'subsets=1', 'steps=150', '--out', str(out)]
        env = dict(os.environ, CFX_THREADS='1')
        p = subprocess.Popen([CFX, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        ck = out / 'checkpoints' / 'cpu' / 'k=3,subset=1'
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            if ck.exists() and any(ck.glob('step_*.safetensors')):
                break
            time.sleep(0.02)
        p.send_signal(signal.SIGUSR1)
        _, err = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 75, err)
        attrs, train, _ = self.runs(out / 'scaling_models-cpu.h5')['k=3,subset=1']
        self.assertEqual(attrs['status'], 'interrupted')
        stopped = len(train)
        self.assertLess(stopped, 150)
        r = self.cfx(*args[:-2], '--out', str(out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('was interrupted, resuming', r.stderr)
        attrs, train, table = self.runs(out / 'scaling_models-cpu.h5')['k=3,subset=1']
        self.assertEqual(attrs['status'], 'done')
        self.assertEqual(list(train['step']), list(range(1, 151)))
        # bitwise the run that nothing interrupted (the grid's own k=3,subset=1: the same run,
        # k_count and subsets only choose the points)
        _, ref_train, ref_table = self.runs()['k=3,subset=1']
        self.assertEqual(list(train['loss']), list(ref_train['loss']))
        self.assertEqual(list(table['ap']), list(ref_table['ap']))

    def test_tasks_and_collect(self):
        out = self.dir / 'tasks'
        for task in (1, 3):
            r = self.cfx(*self.common, 'steps=5', '--task', str(task), '--out', str(out))
            self.assertEqual(r.returncode, 0, r.stderr)
        files = sorted((out / 'tasks').glob('*.h5'))
        self.assertEqual([f.name for f in files], ['scaling_models-cpu-task0001.h5', 'scaling_models-cpu-task0003.h5'])
        r = subprocess.run([CFX, 'collect', str(out)], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        merged = out / 'results.h5'
        self.assertEqual(sorted(self.runs(merged)), sorted(['k=3,subset=1', 'k=24,subset=1']))
        r = self.cfx(*self.common, '--task', '9', '--out', str(out))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('the grid has 4 points', r.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
