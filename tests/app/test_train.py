#!/usr/bin/python3
"""Checkpoint/resume of cfx.train.fit with real processes.

A training run killed with SIGKILL at random moments (a real process, no simulated
flag) and resumed from its checkpoints must end with bitwise the same weights and the
same per-step losses as an uninterrupted run; on SIGUSR1 cfx.train.fit checkpoints and
returns (the plain script goes on after it), and the cfx program exits with status 75
(requeue) since the signal is still pending, or 0 when the script cleared it; a
checkpoint of another configuration is refused.

Run:  /usr/bin/python3 tests/app/test_train.py   (from the repo root; CFX_BIN defaults
to build/cfx).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
DRIVER = str(ROOT / 'tests' / 'app' / 'train_driver.lua')
STEPS = 30
LR = 2e-3


def env():
    e = dict(os.environ)
    e['CFX_THREADS'] = '1'  # the same thread count in every run
    return e


def read_losses(prefix):
    return [float.fromhex(line) for line in Path(str(prefix) + '.losses').read_text().split()]


class TrainResume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix='cfx_train_'))
        r = subprocess.run([CFX, 'synth', '--out', str(cls.dir / 'data'), '--train-generators', '6',
                            '--eval-generators', '2', '--per-generator', '12', '--size', '64', '--seed', '3'],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        cls.store = str(cls.dir / 'data' / 'train.h5')
        # the reference: one uninterrupted run
        cls.ref = cls.dir / 'ref'
        r = cls.run_driver(cls.dir / 'ref_ckpt', cls.ref)
        assert r.returncode == 0, r.stderr
        cls.ref_losses = read_losses(cls.ref)
        cls.ref_weights = Path(str(cls.ref) + '.safetensors').read_bytes()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def command(cls, ckdir, out, lr=LR, *extra):
        return [CFX, DRIVER, cls.store, str(ckdir), str(out), str(STEPS), repr(lr), *extra]

    @classmethod
    def run_driver(cls, ckdir, out, lr=LR):
        return subprocess.run(cls.command(ckdir, out, lr), capture_output=True, text=True, env=env(), timeout=300)

    def assert_same_as_reference(self, out):
        self.assertEqual(read_losses(out), self.ref_losses)
        self.assertEqual(len(self.ref_losses), STEPS)
        self.assertEqual(Path(str(out) + '.safetensors').read_bytes(), self.ref_weights,
                         'final weights differ from the uninterrupted run')

    def test_reference_run_learns_something(self):
        # losses are finite and not all equal (the run really trained)
        self.assertTrue(all(x == x for x in self.ref_losses))
        self.assertGreater(len(set(self.ref_losses)), STEPS // 2)

    def test_kill_9_and_resume_is_bitwise_identical(self):
        rng = random.Random(int(os.environ.get('CFX_TEST_SEED', '0')) or None)
        for trial in range(2):
            ck, out = self.dir / f'kill{trial}_ckpt', self.dir / f'kill{trial}'
            kills = 0
            # kill the run at random moments after its first checkpoints, twice
            for _ in range(2):
                p = subprocess.Popen(self.command(ck, out), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env())
                deadline = time.time() + 120
                while time.time() < deadline and p.poll() is None:
                    have = sorted(ck.glob('step_*.safetensors')) if ck.exists() else []
                    newest = int(have[-1].name[5:13]) if have else 0
                    if 5 * (kills + 1) <= newest < STEPS - 5:
                        time.sleep(rng.uniform(0.0, 0.4))
                        break
                    time.sleep(0.01)
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    kills += 1
                else:
                    p.wait()
            self.assertGreaterEqual(kills, 1, 'the run finished before it could be killed')
            r = self.run_driver(ck, out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('resumed from', r.stderr)
            self.assert_same_as_reference(out)
            # a killed writer's temporary file is removed on resume; only checkpoints remain
            for f in ck.glob('*'):
                self.assertRegex(f.name, r'^step_\d{8}\.safetensors$', 'stray file in the checkpoint dir')

    def usr1(self, ck, out, *extra):
        """Start the driver, send SIGUSR1 after its first checkpoint: (returncode, stdout, stderr, step)."""
        p = subprocess.Popen(self.command(ck, out, LR, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env(), text=True)
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            if ck.exists() and any(ck.glob('step_*.safetensors')):
                break
            time.sleep(0.01)
        p.send_signal(signal.SIGUSR1)
        stdout, err = p.communicate(timeout=120)
        self.assertIn('SIGUSR1 at step', err)
        step = int(err.split('SIGUSR1 at step ')[1].split(':')[0])
        self.assertLess(step, STEPS)
        self.assertTrue((ck / f'step_{step:08d}.safetensors').exists(), err)
        return p.returncode, stdout, err, step

    def test_sigusr1_checkpoints_and_exits_75(self):
        ck, out = self.dir / 'usr1_ckpt', self.dir / 'usr1'
        code, stdout, err, step = self.usr1(ck, out)
        # fit returned: the script went on after it (saved, printed) ...
        self.assertIn(f'done step={step} resumed_from=nil interrupted=USR1\n', stdout)
        # ... and ended with the signal pending: the cfx program's requeue status
        self.assertEqual(code, 75, err)
        r = self.run_driver(ck, out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f'(step {step})', r.stderr)
        self.assert_same_as_reference(out)

    def test_fit_returns_on_sigusr1_and_a_script_that_clears_it_exits_0(self):
        ck, out = self.dir / 'usr1_clear_ckpt', self.dir / 'usr1_clear'
        code, stdout, err, step = self.usr1(ck, out, '5', 'clear')
        self.assertEqual(code, 0, err)
        self.assertEqual(stdout, f'done step={step} resumed_from=nil interrupted=USR1\ncleared USR1\n')
        # the weights it saved are those of the checkpoint: a resumed run still ends bitwise the same
        r = self.run_driver(ck, out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f'(step {step})', r.stderr)
        self.assert_same_as_reference(out)

    def test_checkpoint_of_another_configuration_is_refused(self):
        ck = self.dir / 'ref_ckpt'  # written by the reference run with LR
        r = self.run_driver(ck, self.dir / 'other', lr=LR * 2)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('another configuration', r.stderr)
        self.assertIn(str(ck), r.stderr)


class Pretrain(unittest.TestCase):
    def test_cfx_pretrain_writes_a_backbone_that_loads_with_a_fresh_head(self):
        d = Path(tempfile.mkdtemp(prefix='cfx_pretrain_'))
        try:
            out = d / 'w' / 'vit.safetensors'
            r = subprocess.run([CFX, 'pretrain', '--out', str(out), '--steps', '6', '--per-source', '24',
                                '--batch', '16', '--workers', '1'], capture_output=True, text=True, env=env(),
                               timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('cfx pretrain: wrote ' + str(out), r.stdout)
            self.assertTrue((d / 'w' / 'vit.pool.h5').exists())
            check = d / 'check.lua'
            check.write_text(
                "local cfx = require 'cfx'\n"
                f"local m = cfx.models.create('vit_micro_patch8_64', {{pretrained = '{out}'}})\n"
                "print(table.concat(m.pretrained_report.dropped, ','), m.head.weight:shape()[1])\n")
            r = subprocess.run([CFX, str(check)], capture_output=True, text=True, env=env(), timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.split(), ['head.weight,head.bias', '1'])
            r = subprocess.run([CFX, 'pretrain'], capture_output=True, text=True, env=env(), timeout=60)
            self.assertEqual(r.returncode, 2)
            self.assertIn('--out', r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    unittest.main(verbosity=2)
