#!/usr/bin/python3
"""`cfx sweep` and `cfx status` with real processes (and a real Slurm where one can run).

Local sweeps (`--local -j N`) of a small experiment written here:
- every grid point runs as its own task (one results file each, a log each), N at a
  time with cpus/N libtorch threads; the task files are merged into the experiment's
  results file and its summary printed; h5py reads everything;
- a failing task: exit 1, its number, its log and its error on stderr, the others
  finish; `cfx status` names it (exit 3); `--tasks 3` reruns only it;
- SIGUSR1 to the sweep, or ^C to its process group: running tasks are told to stop
  (they sit in process groups of their own), the sweep exits 75, status shows them
  interrupted; the same command resumes and finishes;
- usage errors exit 2 with a message naming the problem;
- experiments/scaling_models.lua on a tiny grid through a sweep gives its summary table.

Slurm (`--slurm`): `--dry-run` writes a batch script that bash parses and that holds the
array, requeue and signal lines; with a real single-node Slurm (tests/app/slurm_cluster.py;
skipped when slurmctld/slurmd are not installed, except under CI=true): a sweep is
submitted, runs to the end and `cfx status` says so; a task told to stop with
`scancel --signal=USR1 --batch` exits 75, requeues itself, resumes and finishes.

Run:  /usr/bin/python3 tests/app/test_sweep.py   (from the repo root).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
sys.path.insert(0, str(Path(__file__).resolve().parent))

# A small experiment: point i waits `sleep` seconds of CPU (checking for a stop signal;
# 0.2 s once Slurm has restarted it), fails when i == fail_at, and reports value = 10 i,
# its libtorch thread count and Slurm's restart count.
TINY = r'''
local cfx = require 'cfx'
return cfx.experiment {
  name = 'tiny',
  presets = { cpu = { n = 4, fail_at = 0, sleep = 0.2, seed = 1 } },
  grid = function(cfg) local p = {} for i = 1, cfg.n do p[i] = { i = i } end return p end,
  run = function(cfg, run)
    if cfg.i == cfg.fail_at then error('task ' .. cfg.i .. ' fails on purpose') end
    local restarts = tonumber(os.getenv('SLURM_RESTART_COUNT') or '0')
    local sleep = restarts > 0 and 0.2 or cfg.sleep
    local t0 = os.clock()
    while os.clock() - t0 < sleep do
      if cfx.signal() then run.interrupted = cfx.signal() return end
    end
    run.summary = { value = cfg.i * 10, threads = cfx.threads(), restarts = restarts }
  end,
  summarize = function(rows, cfg)
    for _, r in ipairs(rows) do print(('summary %s value %d'):format(r.id, r.summary.value)) end
  end,
}
'''


def cpu_count():
    return len(os.sched_getaffinity(0))


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix='cfx_sweep_'))
        self.script = self.dir / 'tiny.lua'
        self.script.write_text(TINY)
        self.out = self.dir / 'out'

    def tearDown(self):
        # on a failure, show what the tasks logged (the logs go with the directory)
        result = getattr(self._outcome, 'result', None)
        if result is not None and any(t is self for t, _ in result.failures + result.errors):
            for log in sorted(self.dir.glob('out/logs/*.log')):
                sys.stderr.write('---- %s\n%s\n' % (log, log.read_text()[-3000:]))
        shutil.rmtree(self.dir, ignore_errors=True)

    def cfx(self, *args, timeout=300, env=None):
        e = dict(os.environ)
        e.pop('CFX_THREADS', None)
        e.update(env or {})
        return subprocess.run([CFX, *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=self.dir)

    def sweep(self, *args, **kw):
        return self.cfx('sweep', str(self.script), *args, '--out', str(self.out), **kw)

    def runs(self, path):
        with h5py.File(path, 'r') as f:
            return {name: dict(g.attrs) for name, g in f['runs'].items()}

    def task_file(self, i):
        return self.out / 'tasks' / ('tiny-cpu-task%04d.h5' % i)


class LocalSweep(Base):
    def test_runs_every_point_as_a_task_and_merges(self):
        r = self.sweep('n=5', '--local', '-j', '2')
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in range(1, 6):
            runs = self.runs(self.task_file(i))
            self.assertEqual(list(runs), ['i=%d' % i])
            self.assertEqual(runs['i=%d' % i]['status'], 'done')
            self.assertTrue((self.out / 'logs' / ('cpu-task%04d.log' % i)).exists())
        merged = self.runs(self.out / 'tiny-cpu.h5')
        self.assertEqual(sorted(merged), ['i=%d' % i for i in range(1, 6)])
        for i in range(1, 6):
            s = json.loads(merged['i=%d' % i]['summary'])
            self.assertEqual(s['value'], 10 * i)
            self.assertEqual(s['threads'], max(1, cpu_count() // 2))  # cpus / -j
            self.assertEqual(merged['i=%d' % i]['grid_index'], i)
        self.assertEqual([l for l in r.stdout.splitlines() if l.startswith('summary')],
                         ['summary i=%d value %d' % (i, 10 * i) for i in range(1, 6)])
        self.assertIn('results: %s' % (self.out / 'tiny-cpu.h5'), r.stdout)
        record = json.loads((self.out / 'sweep-cpu.json').read_text())
        self.assertEqual((record['experiment'], record['preset'], record['n_tasks'], record['mode'], record['args']),
                         ('tiny', 'cpu', 5, 'local', ['n=5']))
        st = self.cfx('status', str(self.out))
        self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
        self.assertIn("done 5", st.stdout)
        js = json.loads(self.cfx('status', str(self.out), '--json').stdout)
        self.assertEqual(js[0]['counts'], {'done': 5})
        # a second sweep skips the finished points (the tasks say so) and merges again
        again = self.sweep('n=5', '--local', '-j', '2')
        self.assertEqual(again.returncode, 0, again.stderr)
        log = (self.out / 'logs' / 'cpu-task0003.log').read_text()
        self.assertIn('done already, skipped', log)

    def test_a_changed_configuration_is_refused_before_any_task_starts(self):
        r = self.sweep('n=3', '--local', '-j', '2')
        self.assertEqual(r.returncode, 0, r.stderr)
        logs = {p.name: p.read_text() for p in (self.out / 'logs').glob('*.log')}
        # the same points with another value: their results are not this configuration's
        r = self.sweep('n=3', 'sleep=0.3', '--local', '-j', '2')
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('tiny-cpu-task0001.h5 already holds a run of this point made with another configuration '
                      '(i=1: sleep 0.2 there, 0.3 now)', r.stderr)
        self.assertIn('or --force', r.stderr)
        self.assertNotIn('summary', r.stdout)
        self.assertEqual({p.name: p.read_text() for p in (self.out / 'logs').glob('*.log')}, logs)  # nothing ran
        # a task left out of --tasks is not looked at; the merged file counts as one of the grid's
        r = self.sweep('n=3', 'sleep=0.3', '--local', '--tasks', '2')
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('(i=2: sleep 0.2 there, 0.3 now)', r.stderr)
        # --force: the tasks replace their runs, the merge meets the new configuration only
        r = self.sweep('n=3', 'sleep=0.3', '--local', '-j', '2', '--force')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('replacing run i=1 of %s (done, made with another configuration: sleep 0.2 there, 0.3 now)'
                      % self.task_file(1), (self.out / 'logs' / 'cpu-task0001.log').read_text())
        merged = self.runs(self.out / 'tiny-cpu.h5')
        self.assertEqual(sorted(merged), ['i=1', 'i=2', 'i=3'])
        for a in merged.values():
            self.assertEqual((a['status'], json.loads(a['config'])['sleep']), ('done', 0.3))
        self.assertEqual(len([l for l in r.stdout.splitlines() if l.startswith('summary')]), 3)
        # and runs of the old configuration elsewhere do not merge with these
        other = self.dir / 'other'
        r = self.cfx('sweep', str(self.script), 'n=3', '--local', '--tasks', '1', '--out', str(other))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cfx('collect', str(self.dir), '--out', str(self.dir / 'all.h5'))  # other/ sorts before out/
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("run 'i=1' is in %s/tiny-cpu.h5 and in %s/tiny-cpu.h5 with different configurations "
                      "(sleep 0.2 in the first, 0.3 in the second)" % (other, self.out), r.stderr)
        self.assertFalse((self.dir / 'all.h5').exists())

    def test_a_failing_task_is_named_and_can_be_rerun_alone(self):
        r = self.sweep('n=5', 'fail_at=3', '--local', '-j', '2')
        self.assertEqual(r.returncode, 1, r.stderr)
        log = self.out / 'logs' / 'cpu-task0003.log'
        self.assertIn('task 3 (i=3) FAILED with exit status 1', r.stderr)
        self.assertIn(str(log), r.stderr)
        self.assertIn('task 3 fails on purpose', r.stderr)
        self.assertIn('rerun them with --tasks 3', r.stderr)
        for i in (1, 2, 4, 5):
            self.assertEqual(self.runs(self.task_file(i))['i=%d' % i]['status'], 'done')
        self.assertFalse((self.out / 'tiny-cpu.h5').exists())  # nothing merged while a task failed
        st = self.cfx('status', str(self.out))
        self.assertEqual(st.returncode, 3)
        self.assertIn('done 4, failed 1', st.stdout)
        self.assertRegex(st.stdout, r'\n\s+3\s+failed\s+i=3 .*error: .*task 3 fails on purpose')
        again = self.sweep('n=5', '--local', '--tasks', '3')
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(sorted(self.runs(self.out / 'tiny-cpu.h5')), ['i=%d' % i for i in range(1, 6)])
        self.assertEqual(self.cfx('status', str(self.out)).returncode, 0)

    def test_usr1_stops_the_running_tasks_and_the_same_command_resumes(self):
        p = subprocess.Popen([CFX, 'sweep', str(self.script), 'n=4', 'sleep=60', '--local', '-j', '2', '--out',
                              str(self.out)], cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not all(self.task_file(i).exists() for i in (1, 2)):
                time.sleep(0.1)
            self.assertTrue(all(self.task_file(i).exists() for i in (1, 2)), 'the first two tasks did not start')
            t0 = time.time()
            p.send_signal(signal.SIGUSR1)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 75, err)
        self.assertLess(time.time() - t0, 20)
        self.assertIn('asking 2 running tasks to write a checkpoint and stop', err)
        st = self.cfx('status', str(self.out))
        self.assertIn('interrupted 2, not started 2', st.stdout)
        self.assertEqual(st.returncode, 3)
        r = self.sweep('n=4', '--local', '-j', '2')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('(was interrupted, resuming)', (self.out / 'logs' / 'cpu-task0001.log').read_text())
        self.assertEqual(self.cfx('status', str(self.out)).returncode, 0)

    def test_ctrl_c_checkpoints_the_tasks_instead_of_killing_them(self):
        # a terminal's ^C goes to the foreground process group: the sweep's, not its tasks'
        p = subprocess.Popen([CFX, 'sweep', str(self.script), 'n=3', 'sleep=60', '--local', '-j', '2', '--out',
                              str(self.out)], cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not all(self.task_file(i).exists() for i in (1, 2)):
                time.sleep(0.1)
            time.sleep(0.5)
            os.killpg(p.pid, signal.SIGINT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        self.assertEqual(p.returncode, 75, err)
        self.assertIn('cfx sweep: interrupted; asking 2 running tasks to write a checkpoint and stop', err)
        self.assertNotIn('FAILED', err)
        for i in (1, 2):
            self.assertEqual(self.runs(self.task_file(i))['i=%d' % i]['status'], 'interrupted')

    def test_usage_errors(self):
        cases = [
            (['--jobs', '2'], 'give one of --local and --slurm'),
            (['--local', '--slurm'], 'give one of --local and --slurm'),
            (['--local', 'nosuchkey=3'], "unknown key 'nosuchkey'"),
            (['--local', 'preset=gpu'], "unknown preset 'gpu'"),
            (['--local', 'n=abc'], 'n'),
            (['--local', '--tasks', '2-9'], 'task 9 but the grid has 4 points'),
            (['--local', '--tasks', 'x'], "'x' is not a task number"),
            (['--local', '-j', '0'], '-j must be at least 1'),
            (['--local', '--', '--time=10'], 'they need --slurm'),
            (['--slurm', '--dry-run', '--', '--array=1-3'], "would set sbatch's --array"),
            (['--slurm', '--dry-run', '--', '--out=x'], "would set sbatch's --output"),
            (['--slurm', '--dry-run', '--', '-o', 'x'], "would set sbatch's --output"),
        ]
        for args, msg in cases:
            r = self.sweep(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
            self.assertNotIn('traceback', r.stderr)
        (self.dir / 'plain.lua').write_text('return 42\n')
        r = self.cfx('sweep', str(self.dir / 'plain.lua'), '--local')
        self.assertEqual(r.returncode, 2)
        self.assertIn('not an experiment script', r.stderr)
        r = self.cfx('sweep', str(self.dir / 'missing.lua'), '--local')
        self.assertEqual(r.returncode, 2)
        self.assertIn('missing.lua', r.stderr)
        r = self.cfx('status', str(self.dir))
        self.assertEqual(r.returncode, 1)
        self.assertIn('no sweep recorded', r.stderr)

    def test_scaling_models_through_a_sweep(self):
        data = self.dir / 'data'
        args = [f'train_store={data}/train.h5', f'eval_store={data}/eval.h5', 'synth_train_generators=16',
                'synth_eval_generators=4', 'synth_per_generator=24', 'k_min=2', 'k_max=8', 'k_count=2',
                'subsets=1', 'budget=48', 'steps=12', 'batch=8', 'checkpoint_every=6', 'workers=1']
        # the synthetic data is made once by the sweep (the script's prepare), not by both tasks
        r = self.cfx('sweep', str(ROOT / 'experiments' / 'scaling_models.lua'), *args, '--local', '-j', '2',
                     '--out', str(self.out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('mean AP +- SE', r.stdout)
        self.assertEqual(r.stderr.count('making the synthetic dataset'), 1, r.stderr)
        for i in (1, 2):
            self.assertNotIn('making the synthetic dataset', (self.out / 'logs' / ('cpu-task%04d.log' % i)).read_text())
        runs = self.runs(self.out / 'scaling_models-cpu.h5')
        self.assertEqual(sorted(runs), ['k=2,subset=1', 'k=8,subset=1'])
        self.assertTrue(all(a['status'] == 'done' for a in runs.values()))


class SlurmScript(Base):
    def test_dry_run_writes_a_batch_script(self):
        r = self.cfx('sweep', str(self.script), 'n=3', '--slurm', '--dry-run', '--max-running', '2', '--grace', '300',
                     '--out', str(self.out), '--', '--time=00:10:00', '--cpus-per-task=2')
        self.assertEqual(r.returncode, 0, r.stderr)
        path = self.out / 'sweep-cpu.sbatch'
        text = path.read_text()
        for line in ['#SBATCH --array=1-3%2', '#SBATCH --requeue', '#SBATCH --signal=B:USR1@300',
                     '#SBATCH --open-mode=append', '#SBATCH --time=00:10:00', '#SBATCH --cpus-per-task=2',
                     '#SBATCH --output=%s/logs/cpu-%%A_%%a.log' % self.out]:
            self.assertIn(line + '\n', text)
        self.assertIn('%s %s n=3 --task "$SLURM_ARRAY_TASK_ID" --out %s &' % (CFX, self.script, self.out), text)
        self.assertEqual(subprocess.run(['bash', '-n', str(path)]).returncode, 0)
        self.assertIn('submit it with: sbatch %s' % path, r.stdout)
        r = self.sweep('n=3', '--slurm', '--dry-run', '--tasks', '1,3')
        self.assertIn('#SBATCH --array=1,3\n', path.read_text())


def slurm_available():
    try:
        import slurm_cluster
    except ImportError as e:
        return None, 'tests/app/slurm_cluster.py: %s' % e
    ok, why = slurm_cluster.available()
    return (slurm_cluster if ok else None), why


class RealSlurm(Base):
    @classmethod
    def setUpClass(cls):
        mod, why = slurm_available()
        if mod is None:
            if os.environ.get('CI') == 'true':
                raise AssertionError('CI must be able to run a Slurm cluster: %s' % why)
            raise unittest.SkipTest(why)
        cls.cluster_dir = Path(tempfile.mkdtemp(prefix='cfx_slurm_'))
        # cred_expire=5: a requeued task starts again about 7 s later instead of 121 s (starting
        # it sooner with `scontrol update StartTime=now` races the revoked credential of its
        # first run and can fail the launch)
        cls.cluster = mod.SlurmCluster(str(cls.cluster_dir), cred_expire=5)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        shutil.rmtree(cls.cluster_dir, ignore_errors=True)

    def slurm_cfx(self, *args, **kw):
        return self.cfx(*args, env=self.cluster.env(), **kw)

    def submit(self, *args):
        r = self.slurm_cfx('sweep', str(self.script), *args, '--slurm', '--out', str(self.out))
        self.assertEqual(r.returncode, 0, r.stderr)
        job = r.stdout.split('submitted job ')[1].split(':')[0]
        record = json.loads((self.out / 'sweep-cpu.json').read_text())
        self.assertEqual(record['slurm_jobs'][-1]['id'], job)
        return job

    def test_a_sweep_runs_to_the_end(self):
        job = self.submit('n=3')
        states = self.cluster.wait_job(job, timeout=120)
        self.assertEqual(states, {1: 'COMPLETED', 2: 'COMPLETED', 3: 'COMPLETED'})
        st = self.slurm_cfx('status', str(self.out))
        self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
        self.assertIn('done 3', st.stdout)
        self.assertIn('Slurm job %s' % job, st.stdout)
        c = self.cfx('collect', str(self.out))
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(sorted(self.runs(self.out / 'results.h5')), ['i=1', 'i=2', 'i=3'])

    def test_usr1_checkpoints_requeues_and_resumes(self):
        job = self.submit('n=1', 'sleep=3600')
        task = '%s_1' % job
        deadline = time.time() + 60
        while time.time() < deadline and not self.task_file(1).exists():
            time.sleep(0.2)
        self.assertTrue(self.task_file(1).exists(), 'the task did not start')
        st = self.slurm_cfx('status', str(self.out))
        self.assertIn('running', st.stdout)
        r = subprocess.run(['scancel', '--signal=USR1', '--batch', task], env=self.cluster.env(),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # the task writes its checkpoint, exits 75 and requeues itself; start it again at once
        deadline = time.time() + 60
        while time.time() < deadline:
            if any(t['state'] == 'PENDING' for t in self.cluster.squeue(job)):
                break
            time.sleep(0.2)
        self.assertEqual(self.runs(self.task_file(1))['i=1']['status'], 'interrupted')
        states = self.cluster.wait_job(job, timeout=120)
        logs = '\n'.join(p.read_text() for p in (self.out / 'logs').glob('*.log'))
        self.assertEqual(states.get(1), 'COMPLETED', (states, logs, self.cluster.jobcomp_records()))
        attrs = self.runs(self.task_file(1))['i=1']
        self.assertEqual(attrs['status'], 'done')
        self.assertEqual(json.loads(attrs['summary'])['restarts'], 1)
        log = next((self.out / 'logs').glob('cpu-%s_1.log' % job)).read_text()
        self.assertIn('checkpoint written, requeueing', log)
        self.assertIn('restart 1', log)
        self.assertIn('(was interrupted, resuming)', log)


if __name__ == '__main__':
    unittest.main(verbosity=2)
