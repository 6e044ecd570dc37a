"""Smoke test for tests/app/slurm_cluster.py: a real single-node Slurm in a temporary
directory runs a job array (exit codes reach the jobcomp file per array task), delivers
`scancel --signal=USR1 --batch` to a bash batch script, and restarts a task that
requeues itself.  Without Slurm installed (or not root) it prints SKIP and passes,
except under CI=true, where it fails: CI must have Slurm.

    /usr/bin/python3 tests/app/test_slurm_cluster.py
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slurm_cluster import SlurmCluster, available  # noqa: E402

passed = failed = 0


def check(cond, what, detail=''):
    global passed, failed
    if cond:
        passed += 1
        print(f'ok   {what}')
    else:
        failed += 1
        print(f'FAIL {what}' + (f': {detail}' if detail else ''))


def script(path, body):
    with open(path, 'w') as f:
        f.write('#!/bin/bash\n' + body)
    os.chmod(path, 0o755)
    return path


def wait_for(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def main():
    ok, why = available()
    if not ok:
        if os.environ.get('CI') == 'true':
            print(f'FAIL: Slurm is not usable here and CI=true: {why}')
            print('0 passed, 1 failed')
            return 1
        print(f'SKIP: {why}')
        print('0 passed, 0 failed (skipped)')
        return 0

    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix='cfx-slurm-test-')
    out = os.path.join(tmp, 'out')
    os.makedirs(out)
    cluster = SlurmCluster(os.path.join(tmp, 'cluster'), cred_expire=5)  # a requeued task restarts ~7 s later
    try:
        cluster.start(timeout=60)
        print(f'cluster up in {time.monotonic() - t0:.1f}s (slurm.conf {cluster.conf})')

        # 1. a 3-task array: every task writes its id, task 3 exits 3
        arr = script(os.path.join(tmp, 'array.sh'), f'''
echo "$SLURM_ARRAY_TASK_ID" > {out}/task.$SLURM_ARRAY_TASK_ID
[ "$SLURM_ARRAY_TASK_ID" = 3 ] && exit 3
exit 0
''')
        jid = cluster.sbatch('--array=1-3', '-o', f'{out}/array-%a.log', arr)
        states = cluster.wait_job(jid, timeout=30)
        for t in (1, 2, 3):
            p = f'{out}/task.{t}'
            check(os.path.exists(p) and open(p).read().strip() == str(t),
                  f'array task {t} wrote its id')
        check(states == {1: 'COMPLETED', 2: 'COMPLETED', 3: 'FAILED'},
              'wait_job: tasks 1,2 COMPLETED and 3 FAILED', repr(states))
        check(cluster.squeue(jid) == [] or all(
            r['state'] in ('COMPLETED', 'FAILED') for r in cluster.squeue(jid)),
              'squeue shows nothing pending or running after wait_job')

        # 2. USR1 to the batch script (the signal --signal=B:USR1@T sends before the limit)
        usr = script(os.path.join(tmp, 'usr1.sh'), f'''
trap 'echo got-usr1 > {out}/usr1.marker; kill $child 2>/dev/null; exit 0' USR1
sleep 120 & child=$!
touch {out}/usr1.started
wait $child
exit 7
''')
        jid = cluster.sbatch('--array=1', '-o', f'{out}/usr1-%a.log', usr)
        started = wait_for(lambda: os.path.exists(f'{out}/usr1.started'), 20)
        check(started, 'USR1 job started')
        cluster.run(['scancel', '--signal=USR1', '--batch', f'{jid}_1'])
        states = cluster.wait_job(jid, timeout=20)
        marker = f'{out}/usr1.marker'
        check(os.path.exists(marker) and open(marker).read().strip() == 'got-usr1',
              'scancel --signal=USR1 --batch reached the trap')
        check(states == {1: 'COMPLETED'}, 'USR1 job exited 0 from its trap', repr(states))

        # 3. a task that requeues itself, then runs again with SLURM_RESTART_COUNT=1
        req = script(os.path.join(tmp, 'requeue.sh'), f'''
if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
  sleep 120 & wait $!
  exit 9
fi
echo "$SLURM_RESTART_COUNT" > {out}/restart.count
exit 0
''')
        jid = cluster.sbatch('--array=1', '--open-mode=append', '-o', f'{out}/requeue-%a.log',
                             req)
        rows = wait_for(lambda: [r for r in cluster.squeue(jid)
                                 if r['state'] == 'PENDING' and r['reason'] == 'BeginTime'], 30)
        check(rows, 'requeued task pending with reason BeginTime', repr(cluster.squeue(jid)))
        # not `scontrol update StartTime=now`: starting it before the first run's credential has
        # expired sometimes fails the launch (FAILED, exit 1, no output)
        states = cluster.wait_job(jid, timeout=60)
        rc = f'{out}/restart.count'
        check(os.path.exists(rc) and open(rc).read().strip() == '1',
              'restarted task saw SLURM_RESTART_COUNT=1',
              open(rc).read() if os.path.exists(rc) else 'no file')
        check(states == {1: 'COMPLETED'}, 'requeued task COMPLETED on its restart',
              repr(states))
        recs = [r for r in cluster.jobcomp_records() if r.get('ArrayJobId') == jid]
        print('  jobcomp states of the requeued task, in order:',
              [r.get('JobState') for r in recs])
    except Exception as e:  # report, then clean up
        check(False, 'no exception', f'{type(e).__name__}: {e}')
        print(cluster.log_tails(20))
    finally:
        daemons = list(cluster.procs.values())
        cluster.stop()
        cluster.stop()  # idempotent
        leftover = [p.pid for p in daemons if p.poll() is None] + cluster._job_procs()
        check(daemons and not leftover,
              'stop() left no daemon or job process', repr(leftover))
    print(f'{passed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)')
    if failed == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f'kept {tmp} for inspection')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
