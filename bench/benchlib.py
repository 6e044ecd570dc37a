"""benchlib.py: what every benchmark under bench/ prints about the machine it ran on, and its timer."""
import os
import platform
import time


def machine(extra=''):
    """'nproc N, CPU "model", platform, Python x.y.z' (+ ', ' + extra)."""
    model = 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    s = 'nproc %d, CPU "%s", %s, Python %s' % (os.cpu_count(), model, platform.platform(),
                                              platform.python_version())
    return s + (', ' + extra if extra else '')


def best(fn, repeats):
    """(the shortest of `repeats` wall-clock timings of fn(), fn's last result)."""
    b, r = float('inf'), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = fn()
        b = min(b, time.perf_counter() - t0)
    return b, r
