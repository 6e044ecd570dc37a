"""A real single-node Slurm cluster (Debian's slurm-wlm 22.05 + munge) for tests.

Everything lives under one private directory: slurm.conf, the controller's state,
the node's spool, logs, pid files, the job-completion file and a private munged
with its own key and socket.  Nothing on the machine is shared with other test
runs: the daemons listen on TCP ports picked free for each cluster, and the
private munged (started as root with its own root-owned key, socket under the
work directory, named to Slurm with AuthInfo=socket=PATH) is stopped with the
cluster, so two clusters at once, or one left over from a killed run, do not
interfere.  Stdlib only; needs root.

    from slurm_cluster import SlurmCluster, available
    ok, why = available()
    with SlurmCluster(tmpdir) as c:
        jid = subprocess.run(['sbatch', '--parsable', '--array=1-3', script],
                             env=c.env(), capture_output=True, text=True,
                             check=True).stdout.strip().split(';')[0]
        states = c.wait_job(jid, timeout=30)    # {1: 'COMPLETED', 2: ..., 3: 'FAILED'}

Behaviour worth knowing (measured on slurm-wlm 22.05.8, Debian bookworm):
  * jobcomp/filetxt writes one line per job (array task) as it ends, key=value
    fields separated by single spaces, e.g. (one line):
      JobId=1 UserId=root(0) GroupId=root(0) Name=a.sh JobState=FAILED
      Partition=debug TimeLimit=525600 StartTime=2026-11-25T09:09:21
      EndTime=2026-11-25T09:09:21 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/x
      ReservationName= Tres=cpu=1,mem=24105M,node=1,billing=1 Account= QOS= WcKey=
      Cluster=unknown SubmitTime=2026-11-25T09:09:19 EligibleTime=2026-11-25T09:09:20
      ArrayJobId=1 ArrayTaskId=3 DerivedExitCode=0:0 ExitCode=3:0
    ArrayJobId/ArrayTaskId are there for array tasks only.  Every task gets a job id
    of its own; the task that runs last takes the array's id (JobId == ArrayJobId),
    so map lines to tasks by ArrayTaskId, never by JobId.  A requeued task first gets
    a line with JobState=PENDING (sic; not REQUEUED, ExitCode=0:0), then one more when
    it ends again; final_states/wait_job keep the last line of each task.
  * `scontrol requeue JOB_TASK` leaves the task pending with reason BeginTime for
    cred_expire+1 seconds (AuthInfo cred_expire, default 120: measured 121 s);
    `scontrol update JobId=JOB_TASK StartTime=now` starts it at once, but racily: a
    launch before the first run's credential has expired sometimes fails
    (JobState=FAILED, ExitCode=1:0, nothing in the log; seen 1 in 4 under load), so
    the tests shorten cred_expire instead.
    SlurmCluster(..., cred_expire=N) shortens the wait for every job
    (cred_expire=5: restarted about 7 s after the requeue).  The restarted task sees
    SLURM_RESTART_COUNT=1; without --open-mode=append its -o file starts afresh.
  * `scancel --signal=USR1 --batch JOB_TASK` reaches a bash batch script's trap at
    once if the script waits on its child in the background (`child & wait $!`).
  * `sbatch --signal=B:USR1@T` is sent by slurmctld's periodic time-limit check
    (about every 30 s), so it can come late: with --time=1 and @50 (due 10 s after
    the start) it came 29 s after the start.  Time limits are enforced the same way.

Processes: the daemons run with `setpriv --pdeathsig TERM`, so they die with the
Python process that started them; their environment carries CFX_SLURM_CLUSTER=<conf>
and CFX_SLURM_OWNER=<pid>.<start time>, which slurmstepd inherits.  stop() cancels
the cluster's jobs, stops the daemons by PID, and kills leftover slurmstepds (and
their jobs) found by that marker; start() first calls reap_stale(), which kills what
is left of clusters whose owner has died (a run killed midway).  Nothing is ever
found or killed by process name.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

DAEMONS = ('slurmctld', 'slurmd', 'munged')
CLIENTS = ('sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo', 'munge', 'unmunge')

# squeue states meaning "not finished yet" (everything but the final states)
_FINAL = {'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED',
          'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'REVOKED', 'SPECIAL_EXIT'}


def _which(name):
    return shutil.which(name) or next(
        (p for p in (f'/usr/sbin/{name}', f'/sbin/{name}') if os.access(p, os.X_OK)), None)


def available():
    """(True, '') when a cluster can be started here, else (False, reason)."""
    missing = [n for n in DAEMONS + CLIENTS if not _which(n)]
    if missing:
        return False, ('not installed: ' + ' '.join(missing) +
                       ' (Debian packages slurmctld slurmd slurm-client munge)')
    if os.geteuid() != 0:
        return False, 'must run as root (SlurmUser=root, munged with a root-owned key)'
    # slurmd 22.05 initialises its cgroup plugin even with proctrack/linuxproc and
    # task/none, and stops with "No filesystem mounted on /sys/fs/cgroup" without one
    # (seen in a chroot with only sysfs mounted)
    if not os.path.ismount('/sys/fs/cgroup'):
        return False, '/sys/fs/cgroup is not mounted (slurmd 22.05 will not start without it)'
    return True, ''


def _free_ports(n):
    """n distinct TCP ports that are free right now (bound to port 0, then closed)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('', 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _tail(path, n=40):
    try:
        with open(path, errors='replace') as f:
            lines = f.readlines()
    except OSError as e:
        return f'  ({path}: {e.strerror})\n'
    return ''.join('  ' + l for l in lines[-n:]) or f'  ({path}: empty)\n'


_FIELD = re.compile(r'(?:^| )([A-Za-z]+)=')


def parse_jobcomp_line(line):
    """One jobcomp/filetxt line -> dict of its key=value fields.

    Values may contain spaces (job names, work directories): a field runs to the
    next ' Key=' where Key is letters only."""
    line = line.rstrip('\n')
    marks = list(_FIELD.finditer(line))
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(line)
        out[m.group(1)] = line[m.end():end]
    return out


def _proc_start(pid):
    """(pid, start time in clock ticks) as a string: a PID that cannot be reused."""
    with open(f'/proc/{pid}/stat', 'rb') as f:
        stat = f.read()
    return f'{pid}.{int(stat[stat.rindex(b")") + 2:].split()[19])}'


def _scan():
    """{pid: (ppid, CFX_SLURM_CLUSTER or None, CFX_SLURM_OWNER or None)} for every
    process readable in /proc."""
    out = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open(f'/proc/{d}/stat', 'rb') as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b')') + 2:].split()[1])
            with open(f'/proc/{d}/environ', 'rb') as f:
                env = f.read()
        except (OSError, ValueError, IndexError):
            continue
        mark = owner = None
        if b'CFX_SLURM_' in env:
            for kv in env.split(b'\0'):
                if kv.startswith(b'CFX_SLURM_CLUSTER='):
                    mark = kv[18:].decode(errors='replace')
                elif kv.startswith(b'CFX_SLURM_OWNER='):
                    owner = kv[16:].decode(errors='replace')
        out[int(d)] = (ppid, mark, owner)
    return out


def _with_descendants(pids, procs):
    out = set(pids)
    grew = True
    while grew:
        grew = False
        for pid, (pp, _, _) in procs.items():
            if pp in out and pid not in out:
                out.add(pid)
                grew = True
    return out


def reap_stale():
    """Kill what is left of clusters whose owning Python process has died (a test
    killed midway): the daemons normally die with it (setpriv --pdeathsig), but a
    slurmstepd and its job outlive slurmd.  Processes are found by the markers this
    module puts in the daemons' environment (CFX_SLURM_OWNER=<pid>.<start time>),
    never by name; clusters of live processes are left alone.  Returns the PIDs."""
    procs = _scan()
    alive = {}
    stale = set()
    for pid, (_, mark, owner) in procs.items():
        if mark is None or owner is None:
            continue
        if owner not in alive:
            try:
                alive[owner] = _proc_start(int(owner.split('.')[0])) == owner
            except (OSError, ValueError, IndexError):
                alive[owner] = False
        if not alive[owner]:
            stale.add(pid)
    stale = _with_descendants(stale, procs) - {os.getpid()}
    for pid in stale:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return sorted(stale)


class SlurmCluster:
    def __init__(self, workdir, cpus=None, cred_expire=None, extra_conf='',
                 cluster_name='cfxtest'):
        """workdir: where everything goes (created if missing).
        cpus: advertise this many CPUs on the node instead of the real count
              (SlurmdParameters=config_overrides), to run more tasks at once.
        cred_expire: seconds a requeued task waits (BeginTime) before it may start
              again; None keeps Slurm's default (120).
        extra_conf: lines appended to slurm.conf (later lines win)."""
        self.workdir = os.path.abspath(workdir)
        self.cpus = cpus
        self.cred_expire = cred_expire
        self.extra_conf = extra_conf
        self.cluster_name = cluster_name
        self.conf = os.path.join(self.workdir, 'slurm.conf')
        self.jobcomp = os.path.join(self.workdir, 'jobcomp.txt')
        self.logdir = os.path.join(self.workdir, 'log')
        self.procs = {}            # name -> Popen, in start order
        self._rundir = None        # sockets (munge, slurmstepd); short path
        self._own_rundir = False
        self.ctld_port = self.slurmd_port = None
        self.nodename = None

    # ---- lifecycle ------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self, timeout=60):
        ok, why = available()
        if not ok:
            raise RuntimeError('cannot start Slurm: ' + why)
        if self.procs:
            raise RuntimeError('cluster already started')
        deadline = time.monotonic() + timeout
        reap_stale()
        os.makedirs(self.workdir, exist_ok=True)
        for d in ('state', 'log'):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        self._make_rundir()
        try:
            self._start_munged(deadline)
            self._write_conf()
            self._spawn('slurmctld', ['slurmctld', '-D', '-c', '-i', '-f', self.conf])
            self._spawn('slurmd', ['slurmd', '-D', '-f', self.conf, '-N', self.nodename])
            self._wait_idle(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Cancel this cluster's jobs, stop its daemons by the PIDs started, and
        kill any job process (slurmstepd, batch script) left carrying this
        cluster's SLURM_CONF.  Safe to call more than once."""
        if not self.procs and not self._own_rundir:
            return
        ctld = self.procs.get('slurmctld')
        if ctld is not None and ctld.poll() is None:
            subprocess.run(['scancel', '--full', '--quiet', '--user=root'], env=self.env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=20, check=False)
            end = time.monotonic() + 10
            while time.monotonic() < end and self._job_procs():
                time.sleep(0.2)
        for name in ('slurmd', 'slurmctld', 'munged'):
            p = self.procs.get(name)
            if p is None:
                continue
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for pid in self._job_procs():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs.values():
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        self.procs = {}
        if self._own_rundir and self._rundir:
            shutil.rmtree(self._rundir, ignore_errors=True)
        self._own_rundir = False

    # ---- clients --------------------------------------------------------------------
    def env(self):
        """os.environ for clients of this cluster: SLURM_CONF set, and any inherited
        SLURM_*/SBATCH_*/SQUEUE_*/... variables (from an enclosing job) removed."""
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(('SLURM_', 'SBATCH_', 'SQUEUE_', 'SALLOC_', 'SRUN_',
                                  'SCONTROL_', 'SINFO_', 'SCANCEL_'))}
        e['SLURM_CONF'] = self.conf
        return e

    def run(self, args, check=True, timeout=30):
        """Run a client command against this cluster; returns CompletedProcess."""
        r = subprocess.run(args, env=self.env(), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f'{" ".join(args)} exited {r.returncode}: '
                               f'{r.stderr.strip() or r.stdout.strip()}')
        return r

    def sbatch(self, *args):
        """sbatch --parsable ARGS...; returns the job id (string)."""
        out = self.run(['sbatch', '--parsable', *args]).stdout.strip()
        return out.split(';')[0]

    def squeue(self, job_id):
        """The job's tasks still known to squeue (pending arrays expanded), as a list
        of {'id': 'JOB_TASK', 'array_task_id': int or None, 'state', 'reason'}."""
        r = self.run(['squeue', '-h', '-r', '-t', 'all', '-j', str(job_id),
                      '-o', '%i|%K|%T|%r'], check=False)
        rows = []
        for line in r.stdout.splitlines():
            parts = line.strip().split('|')
            if len(parts) != 4:
                continue
            jid, task, state, reason = parts
            rows.append({'id': jid,
                         'array_task_id': int(task) if task.isdigit() else None,
                         'state': state, 'reason': reason})
        return rows

    def jobcomp_records(self):
        """Every line of the jobcomp file, parsed, in order written."""
        try:
            with open(self.jobcomp, errors='replace') as f:
                return [parse_jobcomp_line(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def final_states(self, job_id):
        """{array_task_id: JobState} from the jobcomp file, last line per task.
        job_id is an array job id ('12'), one task ('12_3') or a plain job id; a
        plain (non-array) job is reported under the key None."""
        job_id = str(job_id)
        want_task = None
        if '_' in job_id:
            job_id, t = job_id.split('_', 1)
            want_task = int(t)
        out = {}
        for rec in self.jobcomp_records():
            if rec.get('ArrayJobId') == job_id and rec.get('ArrayTaskId', '').isdigit():
                task = int(rec['ArrayTaskId'])
                if want_task is None or task == want_task:
                    out[task] = rec.get('JobState', '')
            elif rec.get('JobId') == job_id and 'ArrayJobId' not in rec:
                out[None] = rec.get('JobState', '')
        return out

    def wait_job(self, job_id, timeout=60):
        """Wait until no task of job_id is pending/running (squeue), then return
        final_states(job_id): {array_task_id: 'COMPLETED' | 'FAILED' | ...}.
        Raises TimeoutError (with squeue's view) when it does not finish in time."""
        deadline = time.monotonic() + timeout
        seen = set()
        while True:
            rows = [r for r in self.squeue(job_id) if r['state'] not in _FINAL]
            seen.update(r['array_task_id'] for r in rows)
            if not rows:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f'job {job_id} not finished after {timeout}s: {rows}')
            time.sleep(0.3)
        # the jobcomp line is written as the job ends; give it a moment to appear
        while True:
            states = self.final_states(job_id)
            if states and seen <= set(states) and all(
                    v not in ('REQUEUED', 'PENDING', 'RUNNING') for v in states.values()):
                return states
            if time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def log_tails(self, n=40):
        """The last n lines of every daemon's log and stderr, for error messages."""
        parts = []
        for name in ('munged', 'slurmctld', 'slurmd'):
            for suffix in ('.log', '.stderr'):
                path = os.path.join(self.logdir, name + suffix)
                if os.path.exists(path):
                    parts.append(f'--- {path}\n{_tail(path, n)}')
        return ''.join(parts)

    # ---- internals ------------------------------------------------------------------
    def _make_rundir(self):
        # Unix socket paths are limited to 107 bytes; slurmd puts slurmstepd sockets
        # (NODE_JOBID.STEP) in its spool directory, munged its socket here.
        run = os.path.join(self.workdir, 'run')
        if len(run) > 60:
            import tempfile
            run = tempfile.mkdtemp(prefix='cfx-slurm-')
            self._own_rundir = True
        os.makedirs(os.path.join(run, 'spool'), exist_ok=True)
        munge = os.path.join(run, 'munge')
        os.makedirs(munge, exist_ok=True)
        # munged wants every directory above its socket searchable by everyone
        # (it only warns with --force, but the socket's own directory must be).
        os.chmod(munge, 0o755)
        self._rundir = run
        self.munge_socket = os.path.join(munge, 'munge.socket')

    def _spawn(self, name, argv, env=None):
        out = open(os.path.join(self.logdir, name + '.stderr'), 'ab')
        # setpriv --pdeathsig: the daemon gets SIGTERM if this Python process dies
        # (a test killed midway), so nothing outlives a run by more than a moment.
        pre = ['setpriv', '--pdeathsig', 'TERM', '--'] if _which('setpriv') else []
        exe = _which(argv[0])
        e = dict(self.env() if env is None else env, CFX_SLURM_CLUSTER=self.conf,
                 CFX_SLURM_OWNER=_proc_start(os.getpid()))
        p = subprocess.Popen(pre + [exe] + argv[1:], env=e, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        out.close()
        self.procs[name] = p
        return p

    def _munge_ok(self):
        try:
            m = subprocess.run(['munge', '-n', '--socket', self.munge_socket],
                               capture_output=True, timeout=5)
            if m.returncode != 0:
                return False
            u = subprocess.run(['unmunge', '--socket', self.munge_socket],
                               input=m.stdout, capture_output=True, timeout=5)
            return u.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _start_munged(self, deadline):
        d = os.path.dirname(self.munge_socket)
        key = os.path.join(d, 'munge.key')
        if not os.path.exists(key):
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, 'wb') as f:
                f.write(os.urandom(128))
        # --force: run although a directory above the socket is not world-searchable
        # (a mkdtemp directory is 0700); clients here are root.
        self._spawn('munged', ['munged', '-F', '--force', '--socket', self.munge_socket,
                               '--key-file', key,
                               '--log-file', os.path.join(self.logdir, 'munged.log'),
                               '--pid-file', os.path.join(d, 'munged.pid'),
                               '--seed-file', os.path.join(d, 'munged.seed')])
        while not self._munge_ok():
            if self.procs['munged'].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('munged did not come up\n' + self.log_tails())
            time.sleep(0.1)

    def _node_line(self):
        r = subprocess.run([_which('slurmd'), '-C'], capture_output=True, text=True,
                           timeout=30)
        line = next((l for l in r.stdout.splitlines() if l.startswith('NodeName=')), None)
        if line is None:
            raise RuntimeError(f'slurmd -C printed no NodeName line: {r.stdout}{r.stderr}')
        fields = [f for f in line.split() if not f.startswith('UpTime=')]
        self.nodename = fields[0].split('=', 1)[1]
        if self.cpus:
            # one socket, one thread per core: CPUs = cores
            fields = [f for f in fields if f.split('=')[0] not in (
                'CPUs', 'Boards', 'SocketsPerBoard', 'CoresPerSocket', 'ThreadsPerCore')]
            fields += [f'CPUs={self.cpus}', 'Boards=1', 'SocketsPerBoard=1',
                       f'CoresPerSocket={self.cpus}', 'ThreadsPerCore=1']
        return ' '.join(fields + ['NodeAddr=127.0.0.1', 'State=UNKNOWN'])

    def _write_conf(self):
        node = self._node_line()
        host = socket.gethostname().split('.')[0]
        self.ctld_port, self.slurmd_port = _free_ports(2)
        w, log = self.workdir, self.logdir
        auth = f'socket={self.munge_socket}'
        if self.cred_expire is not None:
            auth += f',cred_expire={int(self.cred_expire)}'
        lines = [
            '# written by tests/app/slurm_cluster.py for a private test cluster',
            f'ClusterName={self.cluster_name}',
            f'SlurmctldHost={host}(127.0.0.1)',
            f'SlurmctldPort={self.ctld_port}',
            f'SlurmdPort={self.slurmd_port}',
            'SlurmUser=root',
            'SlurmdUser=root',
            'AuthType=auth/munge',
            'CredType=cred/munge',
            f'AuthInfo={auth}',
            f'StateSaveLocation={w}/state',
            f'SlurmdSpoolDir={self._rundir}/spool',
            f'SlurmctldPidFile={self._rundir}/slurmctld.pid',
            f'SlurmdPidFile={self._rundir}/slurmd.pid',
            f'SlurmctldLogFile={log}/slurmctld.log',
            f'SlurmdLogFile={log}/slurmd.log',
            'SlurmctldDebug=info',
            'SlurmdDebug=info',
            'ProctrackType=proctrack/linuxproc',
            'TaskPlugin=task/none',
            'JobAcctGatherType=jobacct_gather/none',
            'AccountingStorageType=accounting_storage/none',
            'JobCompType=jobcomp/filetxt',
            f'JobCompLoc={self.jobcomp}',
            'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_Core',
            'SchedulerType=sched/backfill',
            'SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=0',
            'MpiDefault=none',
            'SwitchType=switch/none',
            'ReturnToService=2',
            'JobRequeue=1',
            'MinJobAge=2',
            'KillWait=5',
            'InactiveLimit=0',
            'SlurmctldTimeout=30',
            'SlurmdTimeout=30',
            'MessageTimeout=10',
            'PropagateResourceLimits=NONE',
            'MaxArraySize=100001',
        ]
        if self.cpus:
            lines.append('SlurmdParameters=config_overrides')
        lines += [
            node,
            f'PartitionName=debug Nodes={self.nodename} Default=YES MaxTime=INFINITE State=UP',
        ]
        if self.extra_conf:
            lines.append(self.extra_conf.rstrip('\n'))
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def _wait_idle(self, deadline):
        while True:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f'{name} exited with status {p.returncode}\n'
                                       + self.log_tails())
            r = subprocess.run(['sinfo', '-h', '-N', '-o', '%t'], env=self.env(),
                               capture_output=True, text=True, timeout=15)
            states = r.stdout.split()
            if r.returncode == 0 and states and all(s == 'idle' for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f'node not idle (sinfo: {r.stdout.strip()!r} '
                                   f'{r.stderr.strip()!r})\n' + self.log_tails())
            time.sleep(0.2)

    def _job_procs(self):
        """PIDs of this cluster's slurmstepds (they inherit slurmd's environment,
        marked CFX_SLURM_CLUSTER=<this slurm.conf>) and of all their descendants
        (the jobs), leaving out the daemons and their own children (slurmctld's
        slurmscriptd, slurmd's short-lived forks; slurmstepd is reparented away)."""
        daemons = {p.pid for p in self.procs.values()}
        procs = _scan()
        marked = {pid for pid, (pp, mark, _) in procs.items()
                  if mark == self.conf and pid not in daemons and pp not in daemons}
        return sorted(_with_descendants(marked, procs) - daemons)
