"""Crash safety of results files, with real processes.  A writer (results_kill_writer.lua,
run by the cfx program) logs runs the way the experiment runner does: a row per step,
a flush every 20 ms, checkpoints, eval tables and predictions, status 'done'.  This test
kills it with SIGKILL at random moments, 30 times, restarting it after each kill.  While
a writer runs, the test keeps opening the file with h5py: it must always open as a
complete results file (no partial file is ever visible at the path).  After each kill:
h5py opens the file; every run the writer reported done (it prints that after the
flush) is intact with all its rows, its eval table and its predictions; every run's
train rows are steps 1..m once each with the values the writer logs (no duplicates
after resuming, no gaps); and the next writer, which is cfx reading the file, checks
the same and removes the temporary files of the killed flush.  Finally a writer runs
to the end: every run is done and complete, and no temporary or lock file is left."""
import glob
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from run_lua import lua_command, lua_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WRITER = os.path.join(HERE, 'results_kill_writer.lua')
KILLS, RUNS, STEPS, NPRED = 30, 24, 200, 2000

from tally import check, summary  # noqa: E402


class Writer:
    """A writer process and the lines it printed."""

    def __init__(self, path, state):
        self.proc = subprocess.Popen(lua_command(WRITER, path, state, str(RUNS), str(STEPS)), env=lua_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def finish(self):
        self.proc.wait()
        self.reader.join()
        return self.proc.returncode, self.proc.stderr.read()


def poll_file(path):
    """Open the file as an outside reader would; True when it is a complete results file
    (or absent: before the first writer's first flush)."""
    if not os.path.exists(path):
        return True
    try:
        with h5py.File(path, 'r') as f:
            ok = f.attrs['cfx_format'] == 'results' and 'runs' in f
            for r in f['runs']:  # read every run's attributes and tables
                g = f[f'runs/{r}']
                dict(g.attrs)
                if 'train' in g:
                    g['train'][()]
            return ok
    except FileNotFoundError:
        return True  # renamed over between exists() and open(): the old inode is gone, fine
    except Exception as e:  # noqa: BLE001 - any failure to read is the failure we look for
        print('poll:', type(e).__name__, e)
        return False


def check_file(path, done):
    """The file after a kill, as h5py sees it."""
    try:
        f = h5py.File(path, 'r')
    except Exception as e:  # noqa: BLE001
        check(False, f'h5py opens the file after a kill: {e}')
        return 0
    with f:
        check(f.attrs['cfx_format'] == 'results', 'cfx_format after a kill')
        runs = list(f['runs'])
        for rid in runs:
            r = int(rid[3:])
            g = f[f'runs/{rid}']
            if 'train' not in g:
                continue
            t = g['train'][()]
            m = len(t)
            s = np.arange(1, m + 1)
            ok = (np.array_equal(t['step'], s) and np.array_equal(t['loss'], 1.0 / (s + r)) and
                  np.array_equal(t['lr'], s * 1e-4) and
                  all(p == (b'warmup' if i < 20 else b'main') for i, p in enumerate(t['phase'])))
            check(ok, f'{rid}: train rows are steps 1..{m} once each, with their values')
        for rid in done:
            g = f.get(f'runs/{rid}')
            ok = g is not None and g.attrs['status'] == 'done' and len(g['train']) == STEPS
            ok = ok and 'eval/synth' in g and len(g['eval/synth']) == 3
            if ok:
                i = np.arange(NPRED)
                p = g['predictions/synth']
                ok = (np.array_equal(p['score'][()], ((i % 97) / 97).astype(np.float32)) and
                      np.array_equal(p['label'][()], (i % 2).astype(np.uint8)) and
                      np.array_equal(p['generator'][()], (i % 5).astype(np.int32)))
            check(ok, f'{rid}, reported done before the kill, is intact')
        return sum(1 for rid in runs if f[f'runs/{rid}'].attrs.get('status') == 'done')


def main():
    rng = random.Random(int(os.environ.get('CFX_KILL_SEED', '12345')))
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'results.h5')
        state = os.path.join(tmp, 'state')
        os.makedirs(state)
        done = set()
        polls = mid_flush = 0
        progress = []
        existed = False
        for k in range(KILLS):
            w = Writer(path, state)
            # a third of the kills at any moment from the start (loading libcfx, opening
            # the file, removing stale files), the others while it logs: at a random time
            # after the writer has checked the file (startup takes ~1 s, more under load)
            early = k % 3 == 0
            deadline = time.time() + (rng.uniform(0.0, 1.5) if early else 30)
            started = None
            while time.time() < deadline and w.proc.poll() is None:
                if started is None and any(x.startswith('checked') for x in w.lines):
                    started = time.time()
                    if not early:
                        deadline = started + rng.uniform(0.0, 0.8)
                polls += 1
                check(poll_file(path), f'kill {k}: the file at the path is a complete results file')
                time.sleep(rng.uniform(0.0, 0.02))
            w.proc.kill()
            code, err = w.finish()
            bad = [x for x in w.lines if x.startswith('BAD')]
            check(not bad, f'kill {k}: the restarted writer (cfx) found the file as it should be: {bad}')
            check(code in (-9, 0), f'kill {k}: writer exited by the kill, not by an error ({code}): {err[-2000:]}')
            done |= {x.split()[1] for x in w.lines if x.startswith('done ')}
            tmps = glob.glob(path + '.*.tmp')
            mid_flush += bool(tmps)
            check(len(tmps) <= 1, f'kill {k}: at most the killed flush\'s temporary file is left: {tmps}')
            if os.path.exists(path) or existed:  # absent only before any writer created it
                existed = True
                progress.append(check_file(path, done))
            else:
                progress.append(0)
        # the last writer runs to the end
        w = Writer(path, state)
        code, err = w.finish()
        check(code == 0 and 'finished' in w.lines, f'the last writer finishes: {code} {err[-2000:]}')
        check(not [x for x in w.lines if x.startswith('BAD')], 'the last writer found the file as it should be')
        done |= {x.split()[1] for x in w.lines if x.startswith('done ')}
        every = {f'run{r:03d}' for r in range(1, RUNS + 1)}
        # (a writer killed between the flush of 'done' and its print leaves a run done
        # but unreported; the next writer skips it)
        check(done <= every, 'the writers reported only runs of the experiment')
        check(check_file(path, every) == RUNS, 'every run is done, complete, in the file')
        left = sorted(os.listdir(tmp))
        check(left == ['results.h5', 'state'], f'no temporary or lock file left: {left}')
        print(f'{KILLS} kills in {time.time() - t_start:.1f} s; {mid_flush} left a temporary file (killed inside '
              f'a flush); {polls} opens by h5py while writers ran, all complete; runs done after each kill: '
              f'{progress}')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
