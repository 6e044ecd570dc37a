#!/usr/bin/python3
"""Bad input end to end: the cfx program run as a user would, on bad files, bad values, a
full disk, missing stores, files of another version or configuration.  Each expected error
prints one message naming the file (no Lua stack traceback) and exits non-zero;
CFX_TRACEBACK=1 brings the traceback back, and a bug (a Lua error that is not one of cfx's
expected errors) keeps its traceback.

Run:  CFX_BIN=build/cfx /usr/bin/python3 tests/app/test_errors.py   (from the repo root).
The full-disk tests mount a small tmpfs (root only; skipped where mount is refused).
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
TIMEOUT = 120

# A tiny experiment: a micro ResNet trained for a few steps on STORE, with a checkpoint at
# every step.  EXP_FAIL=1 makes its run fail after training (a bug of the script's own:
# the run is marked failed and its checkpoints stay, to resume from).
EXPERIMENT = '''
local cfx = require 'cfx'
return cfx.experiment {
  name = 'tiny',
  presets = { cpu = { store = 'STORE', weights = '', steps = 2, checkpoint_every = 1, seed = 1, device = 'cpu' } },
  run = function(cfg, run)
    local store = cfx.data.open(cfg.store)
    cfx.manual_seed(cfg.seed)
    local model = cfx.models.create('resnet_micro', { pretrained = cfg.weights ~= '' and cfg.weights or nil })
    local loader = cfx.data.loader { store = store, batch = 4, workers = 1, seed = 1,
      augment = cfx.augment.eval { crop = 32 } }
    run:fit { model = model, loader = loader, steps = cfg.steps, progress = false,
      optim = cfx.optim.AdamW { params = model, lr = 1e-3 } }
    if os.getenv('EXP_FAIL') then local t = nil; return t.boom end
    run.summary.ok = 1
  end,
}
'''


def run(args, env=None, cwd=None):
    e = dict(os.environ)
    e.setdefault('CFX_THREADS', '1')
    e.pop('CFX_TRACEBACK', None)
    e.update(env or {})
    return subprocess.run([CFX] + [str(a) for a in args], capture_output=True, text=True, env=e, cwd=cwd,
                          timeout=TIMEOUT)


def has_h5py():
    try:
        import h5py  # noqa: F401
        return True
    except ImportError:
        return False


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.top = Path(tempfile.mkdtemp(prefix='cfx_errors_'))
        cls.data = cls.top / 'data'
        r = run(['synth', '--out', cls.data, '--train-generators', 2, '--eval-generators', 2,
                 '--per-generator', 4, '--size', 32])
        assert r.returncode == 0, r.stderr
        cls.store = cls.data / 'train.h5'
        cls.exp = cls.top / 'exp.lua'
        cls.exp.write_text(EXPERIMENT.replace('STORE', str(cls.store)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.top, ignore_errors=True)

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix='case_', dir=self.top))

    def one_message(self, r, *needles):
        """The run failed with one message (lines other than the runner's '[i/n] point'
        progress), holding every needle, and no traceback.  Returns the message."""
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('stack traceback', r.stderr)
        lines = [l for l in r.stderr.splitlines() if not l.startswith('[')]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith('cfx'), r.stderr)
        for n in needles:
            self.assertIn(str(n), lines[0])
        self.assertTrue(r.stderr.endswith(lines[0] + '\n'), r.stderr)
        return lines[0]

    def traceback(self, r, *needles):
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn('stack traceback:', r.stderr)
        for n in needles:
            self.assertIn(str(n), r.stderr)

    def experiment(self, *args, env=None):
        return run([self.exp, '--out', self.dir / 'out'] + list(args), env=env)

    def truncated_store(self):
        p = self.dir / 'cut.h5'
        p.write_bytes(self.store.read_bytes()[:3000])
        return p

    def mount_tmpfs(self, size):
        d = self.dir / 'disk'
        d.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)], capture_output=True)
        if r.returncode != 0:
            self.skipTest(f'cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}')
        self.addCleanup(subprocess.run, ['umount', str(d)])
        return d


class Scripts(Base):
    """A plain user script."""

    def test_truncated_store(self):
        cut = self.truncated_store()
        s = self.dir / 'open.lua'
        s.write_text(f"local cfx = require 'cfx'\nlocal st = cfx.data.open('{cut}')\n")
        m = self.one_message(run([s]), cut, 'truncated', '3000 bytes', 'copy it again')
        self.assertIn(f'{s}:2:', m)  # the user's line, not one inside cfx
        self.assertNotIn('H5Fopen', m)
        self.traceback(run([s], env={'CFX_TRACEBACK': '1'}), cut, f'{s}:2: in main chunk', "in function 'open'")

    def test_missing_store(self):
        self.one_message(run(['-e', "require('cfx').data.open('nothere.h5')"]), 'nothere.h5',
                         'No such file', 'cfx synth')

    def test_bad_value(self):
        self.one_message(run(['-e', "require('cfx').randn(2, 3):to('gpu')"]), "unknown device gpu")

    def test_bug_keeps_its_traceback(self):
        s = self.dir / 'bug.lua'
        s.write_text("local cfx = require 'cfx'\nlocal function f(t) return t.x.y end\nf({})\n")
        r = run([s])
        self.traceback(r, f'{s}:2: attempt to index', f"{s}:2: in function 'f'")
        # the user's own error() is not one of cfx's: its traceback stays
        self.traceback(run(['-e', "error('mine')"]), 'mine')


class Data(Base):
    def test_info_truncated_store(self):
        cut = self.truncated_store()
        self.one_message(run(['data', 'info', cut]), cut, 'truncated')

    def test_info_missing_store(self):
        self.one_message(run(['data', 'info', self.dir / 'none.h5']), self.dir / 'none.h5', 'No such file')

    def test_info_not_a_store(self):
        self.one_message(run(['data', 'audit', '/etc/passwd']), '/etc/passwd', 'not an HDF5 file')

    @unittest.skipUnless(has_h5py(), 'needs h5py')
    def test_store_of_another_version(self):
        import h5py
        p = self.dir / 'v99.h5'
        shutil.copy(self.store, p)
        with h5py.File(p, 'r+') as f:
            f.attrs['cfx_version'] = 99
        self.one_message(run(['data', 'info', p]), p, 'format version 99', 're-import')


class Commands(Base):
    def test_synth_out_under_a_file(self):
        r = run(['synth', '--out', '/etc/passwd/x', '--train-generators', 2, '--eval-generators', 2])
        self.one_message(r, '/etc/passwd/x', 'Not a directory')
        self.traceback(run(['synth', '--out', '/etc/passwd/x'], env={'CFX_TRACEBACK': '1'}), "in function 'mkdirs'")

    def test_synth_full_disk(self):
        disk = self.mount_tmpfs('40k')
        r = run(['synth', '--out', disk / 's', '--train-generators', 2, '--eval-generators', 2,
                 '--per-generator', 4, '--size', 32])
        self.one_message(r, disk / 's' / 'train.h5', 'No space left on device', 'free some space')
        self.assertEqual(os.listdir(disk / 's'), [])  # no temporary file left behind

    def test_pretrain_full_disk(self):
        disk = self.mount_tmpfs('100k')
        r = run(['pretrain', '--out', disk / 'w.safetensors', '--steps', 1, '--per-source', 4, '--batch', 4,
                 '--workers', 1])
        self.one_message(r, disk, 'No space left on device', 'free some space')


class Experiments(Base):
    """`cfx SCRIPT` of an experiment, run by the runner."""

    def test_missing_store(self):
        self.one_message(self.experiment(f'store={self.dir}/none.h5'), f'{self.dir}/none.h5', 'No such file')

    def test_truncated_store(self):
        cut = self.truncated_store()
        r = self.experiment(f'store={cut}')
        m = self.one_message(r, cut, 'truncated')
        self.traceback(self.experiment(f'store={cut}', env={'CFX_TRACEBACK': '1'}), cut)
        if has_h5py():  # the run is marked failed, with the message
            import h5py
            with h5py.File(self.dir / 'out' / 'tiny-cpu.h5', 'r') as f:
                a = f['runs/all'].attrs
                self.assertEqual(a['status'], 'failed')
                self.assertIn(str(cut), a['error'])
                self.assertTrue(m.endswith(a['error'].split(': ', 1)[1]), (m, a['error']))

    def test_bad_value(self):
        r = self.experiment('steps=abc')
        self.assertEqual(r.returncode, 2)
        self.one_message(r, "steps: expected a number, got 'abc'")

    def test_weights_not_safetensors(self):
        self.one_message(self.experiment('weights=/etc/passwd'), '/etc/passwd', 'not a safetensors file',
                         'pretrained weights must be a .safetensors file')

    def test_results_file_not_hdf5(self):
        (self.dir / 'out').mkdir()
        res = self.dir / 'out' / 'tiny-cpu.h5'
        res.write_text('not a results file\n')
        self.one_message(self.experiment(), res, 'not a cfx results file', 'move it aside')

    def test_results_file_truncated(self):
        self.assertEqual(self.experiment().returncode, 0)
        res = self.dir / 'out' / 'tiny-cpu.h5'
        res.write_bytes(res.read_bytes()[:2000])
        self.one_message(self.experiment(), res, 'the results file is truncated', '2000 bytes')

    def failed_run_with_checkpoints(self):
        r = self.experiment(env={'EXP_FAIL': '1'})
        # a bug in the script's run: its traceback stays
        self.traceback(r, "attempt to index local 't'")
        ck = self.dir / 'out' / 'checkpoints' / 'cpu' / 'all'
        self.assertTrue(sorted(ck.glob('step_*.safetensors')), r.stderr)
        return sorted(ck.glob('step_*.safetensors'))[-1]

    def test_checkpoint_of_another_version(self):
        latest = self.failed_run_with_checkpoints()
        b = latest.read_bytes()
        n = struct.unpack('<Q', b[:8])[0]
        header = json.loads(b[8:8 + n])
        header['__metadata__']['version'] = '99'
        h = json.dumps(header).encode()
        h += b' ' * (-len(h) % 8)
        latest.write_bytes(struct.pack('<Q', len(h)) + h + b[8 + n:])
        self.one_message(self.experiment(), latest, 'checkpoint version 99', 'move its directory aside')

    def test_checkpoint_of_another_config(self):
        self.failed_run_with_checkpoints()
        r = self.experiment('steps=3')
        self.assertEqual(r.returncode, 2)
        self.one_message(r, self.dir / 'out' / 'tiny-cpu.h5', 'another configuration', 'steps', '--force')

    def test_full_disk_writing_a_checkpoint(self):
        disk = self.mount_tmpfs('1m')  # room for the results file, not for a 6 MB checkpoint
        r = run([self.exp, '--out', disk / 'out'])
        self.one_message(r, disk / 'out' / 'checkpoints', 'No space left on device', 'free some space')
        res = disk / 'out' / 'tiny-cpu.h5'
        # the results file is intact and says why the run failed
        r2 = run(['-e', f"local r = require('cfx').results.open('{res}', {{readonly = true}}):run('all'):get()\n"
                        "print(r.status, r.error)"])
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertTrue(r2.stdout.startswith('failed\t'), r2.stdout)
        self.assertIn('No space left on device', r2.stdout)
        self.assertEqual([p.name for p in (disk / 'out' / 'checkpoints' / 'cpu' / 'all').iterdir()], [])

    def test_full_disk_writing_the_results(self):
        disk = self.mount_tmpfs('12k')
        self.assertEqual(subprocess.run(['dd', 'if=/dev/zero', f'of={disk}/fill', 'bs=1k', 'count=64'],
                                        capture_output=True).returncode, 1)  # full: dd fails
        r = run([self.exp, '--out', disk / 'out'])
        self.one_message(r, disk / 'out' / 'tiny-cpu.h5', 'cannot write the results file', 'No space left on device',
                         'free some space')


if __name__ == '__main__':
    unittest.main(verbosity=2)
