"""reflib.py: the machinery of test_ops.py (inputs, manifest, driver, comparison).

See test_ops.py for what the suite does; this module holds everything but the cases.
"""
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_lua  # noqa: E402

DTYPES = ['uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32', 'float64', 'bool',
          'bfloat16']
TORCH_DTYPE = {n: getattr(torch, n) for n in DTYPES}
FLOAT_DTYPES = {'float16', 'float32', 'float64', 'bfloat16'}
# (rtol, atol) per dtype; atol is scaled by max(1, max|reference|).
TOLERANCE = {'float64': (1e-10, 1e-12), 'float32': (1e-5, 1e-6), 'float16': (2e-3, 2e-3),
             'bfloat16': (1.6e-2, 1.6e-2)}
GRAD_TOL = 10.0   # gradients go through more arithmetic than the forward pass


def dtype_name(dt):
    return str(dt).replace('torch.', '')


# ---- inputs --------------------------------------------------------------------------
class In:
    """An input: shape, dtype, how to draw it, whether it requires grad (None: if float)."""

    def __init__(self, shape, dtype='float32', kind='randn', lo=None, hi=None, rg=None, fn=None,
                 scale=1.0):
        self.shape, self.dtype, self.kind = tuple(shape), dtype, kind
        self.lo, self.hi, self.rg, self.fn, self.scale = lo, hi, rg, fn, scale

    def draw(self, rng):
        """-> (torch tensor for the reference, torch tensor whose bytes Lua reads)."""
        shape, k = self.shape, self.kind
        n = int(np.prod(shape)) if shape else 1
        if k == 'randn':
            a = rng.standard_normal(shape) * self.scale
        elif k == 'uniform':
            a = rng.uniform(self.lo, self.hi, shape)
        elif k == 'pos':          # away from zero, for log, sqrt, division
            a = rng.uniform(0.5, 2.0, shape)
        elif k in ('int', 'ties'):
            a = rng.integers(self.lo, self.hi, shape)
        elif k == 'index':
            a = rng.integers(0, self.hi, shape)
        elif k == 'bool':
            a = rng.random(shape) < 0.5
        elif k == 'distinct':     # no ties: max/sort/topk and their gradients are unambiguous
            a = (rng.permutation(n).reshape(shape) - n / 2) * (4.0 / n) + rng.uniform(0, 1e-3, shape)
        elif k == 'special':      # finite values with nan, inf and -inf mixed in
            a = rng.standard_normal(shape)
            flat = a.reshape(-1)
            pick = rng.permutation(n)
            flat[pick[0::5]] = np.nan
            flat[pick[1::7]] = np.inf
            flat[pick[2::9]] = -np.inf
        elif k == 'fn':
            a = self.fn(rng, shape)
        else:
            raise ValueError('unknown input kind ' + k)
        a = np.asarray(a)
        t = torch.from_numpy(np.ascontiguousarray(a)).to(TORCH_DTYPE[self.dtype]).reshape(shape)
        lua = t + 1 if k == 'index' else t
        return t, lua

    def requires_grad(self, case_grad):
        if self.rg is not None:
            return self.rg
        return case_grad and self.dtype in FLOAT_DTYPES and self.kind != 'index'


def I(*shape, **kw):
    return In(shape, **kw)


def to_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


NP_DTYPE = {'uint8': np.uint8, 'int8': np.int8, 'int16': np.int16, 'int32': np.int32,
            'int64': np.int64, 'float16': np.float16, 'float32': np.float32,
            'float64': np.float64, 'bool': np.bool_, 'bfloat16': np.int16}


def from_bytes(path, dtype, shape):
    with open(path, 'rb') as f:
        b = f.read()
    a = np.frombuffer(b, dtype=NP_DTYPE[dtype]).copy()
    t = torch.from_numpy(a)
    if dtype == 'bfloat16':
        t = t.view(torch.bfloat16)
    return t.reshape(shape)


# ---- cases ------------------------------------------------------------------------------
class Case:
    def __init__(self, name, lua, py, inputs, grad, tol, check, err, loc):
        self.name, self.py, self.inputs = name, py, inputs
        self.lua = lua    # an expression, or a chunk with `return` (the driver tells which)
        self.grad, self.tol, self.check, self.err, self.loc = grad, tol, check, err, loc


CASES = []


def case(name, lua, py=None, *, grad=True, tol=1.0, check=None, err=None, loc=True, **inputs):
    """Register a case.  lua: an expression or a chunk with `return`; py: a function of
    the inputs (by name) returning the expected value(s) (a tuple = several results);
    check(outs, ins): extra assertions; err: substring(s) the Lua error must contain;
    loc: whether that error must start with the case's file:line."""
    if py is None and check is None and err is None:
        raise ValueError('case %s has nothing to compare with' % name)
    CASES.append(Case(name, lua, py, inputs, grad, tol, check, err, loc))


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def lua_lit(v):
    """A Python value as a Lua literal (nested lists -> tables)."""
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (list, tuple)):
        return '{' + ', '.join(lua_lit(x) for x in v) + '}'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, str):
        return lua_str(v)
    raise TypeError(type(v))


def lua_str(s):
    level = 0
    while (']' + '=' * level + ']') in s + ']':
        level += 1
    eq = '=' * level
    return '[' + eq + '[' + s + ']' + eq + ']'


# ---- comparison ----------------------------------------------------------------------
class Mismatch(Exception):
    pass


def normalize(v):
    if isinstance(v, torch.Size):
        return list(v)
    if isinstance(v, torch.dtype):
        return dtype_name(v)
    if isinstance(v, (list, tuple)) and not isinstance(v, torch.Tensor):
        return [normalize(x) for x in v]
    return v


def decode(v):
    if isinstance(v, dict) and 'tensor' in v:
        return from_bytes(v['tensor'], v['dtype'], v['shape'])
    if isinstance(v, dict):
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    if v == 'nan':
        return float('nan')
    if v == 'inf':
        return float('inf')
    if v == '-inf':
        return float('-inf')
    return v


def tol_for(dtype, case_tol, extra=1.0):
    if isinstance(case_tol, tuple):
        return case_tol[0] * extra, case_tol[1] * extra
    r, a = TOLERANCE[dtype]
    return r * case_tol * extra, a * case_tol * extra


def compare(got, ref, where, case_tol, extra=1.0):
    """Raise Mismatch naming `where` when got (decoded Lua) differs from ref (torch)."""
    if isinstance(ref, torch.Tensor):
        ref = ref.detach()
        if not isinstance(got, torch.Tensor):
            raise Mismatch('%s: expected a tensor, got %r' % (where, got))
        rd, gd = dtype_name(ref.dtype), dtype_name(got.dtype)
        if rd != gd:
            raise Mismatch('%s: dtype %s, expected %s' % (where, gd, rd))
        if list(got.shape) != list(ref.shape):
            raise Mismatch('%s: shape %s, expected %s' % (where, list(got.shape), list(ref.shape)))
        if got.numel() == 0:
            return
        if rd in FLOAT_DTYPES:
            g, r = got.double(), ref.double()
            gn, rn = torch.isnan(g), torch.isnan(r)
            if not torch.equal(gn, rn):
                raise Mismatch('%s: NaN at different places (%d vs %d expected)' %
                               (where, int(gn.sum()), int(rn.sum())))
            fin = torch.isfinite(r)
            inf = ~fin & ~rn
            if not torch.equal(g[inf], r[inf]):
                raise Mismatch('%s: infinities differ' % where)
            g, r = g[fin], r[fin]
            if r.numel() == 0:
                return
            rtol, atol = tol_for(rd, case_tol, extra)
            scale = max(1.0, float(r.abs().max()))
            err = (g - r).abs()
            bad = err > atol * scale + rtol * r.abs()
            if bool(bad.any()) or not bool(torch.isfinite(g).all()):
                raise Mismatch('%s: %d of %d elements differ, max abs error %.3g (rtol %.1g, atol %.1g x %.3g)'
                               % (where, int(bad.sum()), r.numel(), float(err.max()), rtol, atol, scale))
        elif not torch.equal(got, ref):
            diff = (got.long() - ref.long()).abs() if rd != 'bool' else (got != ref).long()
            raise Mismatch('%s: %d of %d elements differ (max abs error %d)' %
                           (where, int((got != ref).sum()), ref.numel(), int(diff.max())))
        return
    if isinstance(ref, bool) or ref is None or isinstance(ref, str):
        if got != ref or type(got) != type(ref):
            raise Mismatch('%s: got %r, expected %r' % (where, got, ref))
        return
    if isinstance(ref, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Mismatch('%s: got %r, expected the number %r' % (where, got, ref))
        if math.isnan(ref) and math.isnan(got):
            return
        if not math.isclose(got, ref, rel_tol=1e-6 * (case_tol if not isinstance(case_tol, tuple) else 1),
                            abs_tol=1e-7):
            raise Mismatch('%s: got %r, expected %r (abs error %.3g)' % (where, got, ref, abs(got - ref)))
        return
    if isinstance(ref, list):
        if not isinstance(got, list) or len(got) != len(ref):
            raise Mismatch('%s: got %r, expected a list of %d' % (where, short(got), len(ref)))
        for i, (g, r) in enumerate(zip(got, ref)):
            compare(g, r, '%s[%d]' % (where, i + 1), case_tol, extra)
        return
    raise Mismatch('%s: cannot compare with a reference of type %s' % (where, type(ref)))


def short(v):
    s = repr(v)
    return s if len(s) < 200 else s[:200] + '...'


# ---- running -------------------------------------------------------------------------------
class Prepared:
    pass


def prepare(c, index, tmp):
    """Draw inputs, write them, and compute the torch reference (outputs and grads)."""
    p = Prepared()
    p.case, p.index, p.problem = c, index, None
    rng = rng_for(c.name)
    p.ins, p.specs = {}, []
    for k, spec in c.inputs.items():
        t, lua = spec.draw(rng)
        path = os.path.join(tmp, 'in_%d_%s.bin' % (index, k))
        with open(path, 'wb') as f:
            f.write(to_bytes(lua))
        rg = spec.requires_grad(c.grad)
        p.specs.append({'name': k, 'file': path, 'dtype': spec.dtype, 'shape': list(spec.shape), 'rg': rg})
        p.ins[k] = t.clone().requires_grad_(rg)
    p.ref, p.ref_grads, p.grad_spec = None, None, None
    if c.py is None:
        return p
    # A shared input dict may hold more inputs than this reference uses: pass what it takes.
    params = inspect.signature(c.py).parameters
    if not any(q.kind == q.VAR_KEYWORD for q in params.values()):
        call_ins = {k: v for k, v in p.ins.items() if k in params}
    else:
        call_ins = p.ins
    if c.err is not None:      # the reference must fail too
        try:
            c.py(**call_ins)
        except Exception:
            return p
        p.problem = 'torch did not raise for an error case'
        return p
    try:
        out = c.py(**call_ins)
    except Exception as e:   # a broken case, not a cfx bug
        p.problem = 'reference raised %s: %s' % (type(e).__name__, e)
        return p
    outs = list(out) if isinstance(out, tuple) else [out]
    first = outs[0]
    if c.grad and isinstance(first, torch.Tensor) and first.requires_grad:
        g = torch.from_numpy(rng.standard_normal(tuple(first.shape))).to(first.dtype)
        path = os.path.join(tmp, 'grad_%d.bin' % index)
        with open(path, 'wb') as f:
            f.write(to_bytes(g))
        p.grad_spec = {'file': path, 'dtype': dtype_name(first.dtype), 'shape': list(first.shape)}
        first.backward(g)
        p.ref_grads = {k: t.grad for k, t in p.ins.items() if t.requires_grad}
    p.ref = [normalize(o.detach() if isinstance(o, torch.Tensor) else o) for o in outs]
    # Whether each tensor result takes part in autograd must agree too.
    p.ref_rg = [o.requires_grad if isinstance(o, torch.Tensor) else None for o in outs]
    return p


def write_manifest(prepared, tmp):
    lines = ['return {', '  dir = %s,' % lua_str(tmp), '  cases = {']
    for p in prepared:
        ins = ', '.join('{ name = %s, file = %s, dtype = %s, shape = %s, rg = %s }' % (
            lua_str(s['name']), lua_str(s['file']), lua_str(s['dtype']), lua_lit(s['shape']),
            lua_lit(s['rg'])) for s in p.specs)
        grad = 'nil'
        if p.grad_spec:
            g = p.grad_spec
            grad = '{ file = %s, dtype = %s, shape = %s }' % (lua_str(g['file']), lua_str(g['dtype']),
                                                              lua_lit(g['shape']))
        lines.append('    { name = %s, code = %s, inputs = { %s }, grad = %s },' % (
            lua_str(p.case.name), lua_str(p.case.lua), ins, grad))
    lines += ['  },', '}', '']
    path = os.path.join(tmp, 'manifest.lua')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path


def run_driver(manifest, results, n, verbose):
    """Run the driver over all cases; if it dies on a case, blame that case and go on
    with the next one.  If it cannot even start, every case fails with its message."""
    driver = os.path.join(HERE, 'ops_driver.lua')
    got, first = {}, 1
    while first <= n:
        cmd = run_lua.lua_command(driver, manifest, results, str(first))
        if verbose:
            print('$ ' + run_lua.describe_command(driver, manifest, results, str(first)))
        proc = subprocess.run(cmd, env=run_lua.lua_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=600)
        out = proc.stderr.decode(errors='replace') + proc.stdout.decode(errors='replace')
        # libtorch's C++ backtraces ("frame #N: ...") say nothing useful here
        tail = '\n'.join(l for l in out.splitlines() if l.strip() and not l.startswith('frame #'))[-600:]
        started = False
        if os.path.exists(results):
            with open(results) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        if r.get('start') == first:
                            started = True
                        elif 'start' not in r:
                            got[r['i']] = r
        if not started:
            print('the driver did not start (exit %d): %s' % (proc.returncode, tail))
            for i in range(first, n + 1):
                got[i] = {'i': i, 'ok': False, 'error': 'the driver did not start (see above)'}
            break
        last = max([i for i in got if i >= first], default=first - 1)
        if last >= n:
            break
        got[last + 1] = {'i': last + 1, 'ok': False, 'crashed': True,
                         'error': 'the driver died on this case (exit %d): %s' % (proc.returncode, tail)}
        first = last + 2
    return got


def evaluate(p, r):
    """None when the case passes, else a description of what is wrong."""
    c = p.case
    if p.problem:
        return 'broken case: ' + p.problem
    if r is None:
        return 'no result from the driver'
    if c.err is not None:
        if r['ok']:
            return 'expected an error containing %r, but the chunk succeeded' % (c.err,)
        msg = r['error']
        for s in ([c.err] if isinstance(c.err, str) else c.err):
            if s not in msg:
                return 'error message lacks %r: %s' % (s, msg)
        if c.loc and not re.match(re.escape(c.name) + r':\d+: ', msg):
            return 'error does not point at the caller (%s:LINE: ...): %s' % (c.name, msg)
        return None
    if not r['ok']:
        return 'Lua error: ' + r['error']
    outs = decode(r['outputs'])
    try:
        if p.ref is not None:
            if len(outs) != len(p.ref):
                return '%d results, expected %d: %s' % (len(outs), len(p.ref), short(outs))
            for i, (g, ref) in enumerate(zip(outs, p.ref)):
                compare(g, ref, 'output %d' % (i + 1), c.tol)
                raw = r['outputs'][i]
                if p.ref_rg[i] is not None and raw['requires_grad'] != p.ref_rg[i]:
                    return 'output %d: requires_grad is %s, torch says %s' % (i + 1, raw['requires_grad'],
                                                                               p.ref_rg[i])
        if p.ref_grads is not None:
            grads = decode(r['grads']) or {}
            for k, ref in p.ref_grads.items():
                if k not in grads:
                    return 'no gradient for %s (does it require grad in cfx?)' % k
                if ref is None:
                    if grads[k] is not None:
                        return 'grad of %s: expected none, got a tensor' % k
                    continue
                compare(grads[k], ref, 'grad of %s' % k, c.tol, GRAD_TOL)
        if c.check is not None:
            c.check(outs, p.ins)
    except Mismatch as e:
        return str(e)
    except AssertionError as e:
        return 'check failed: %s' % (e,)
    return None


def main(argv, expected_failures):
    verbose = '-v' in argv
    keep = '--keep' in argv
    pattern = argv[argv.index('-k') + 1] if '-k' in argv else None
    t0 = time.time()
    torch.manual_seed(0)
    warnings.simplefilter('ignore')     # torch's UserWarnings about the references themselves
    names = [c.name for c in CASES]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        print('duplicate case names: %s' % sorted(dup))
        return 2
    stale = set(expected_failures) - set(names)
    cases = [c for c in CASES if pattern is None or pattern in c.name]
    tmp = tempfile.mkdtemp(prefix='cfx_ref_')
    try:
        prepared = [prepare(c, i + 1, tmp) for i, c in enumerate(cases)]
        manifest = write_manifest(prepared, tmp)
        results = os.path.join(tmp, 'results.jsonl')
        t1 = time.time()
        got = run_driver(manifest, results, len(prepared), verbose)
        t2 = time.time()
        passed = failed = xfailed = 0
        for p in prepared:
            why = evaluate(p, got.get(p.index))
            name = p.case.name
            if name in expected_failures:
                if why is None:
                    failed += 1
                    print('XPASS %s: listed in EXPECTED_FAILURES (%s) but passes; remove it from the list'
                          % (name, expected_failures[name]))
                else:
                    xfailed += 1
                    print('xfail %s: %s' % (name, why.split('\n')[0][:160]))
            elif why is None:
                passed += 1
                if verbose:
                    print('ok   %s' % name)
            else:
                failed += 1
                print('FAIL %s: %s' % (name, why))
                print('     lua: %s' % p.case.lua.replace('\n', '\n          '))
    finally:
        if keep:
            print('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for n in sorted(stale):
        print('note: EXPECTED_FAILURES names %s, which is not a case' % n)
    ngrad = sum(1 for p in prepared if p.grad_spec)
    print('%d cases (%d with gradients, %d expecting errors); %d expected failures (known bugs, see '
          'EXPECTED_FAILURES in test_ops.py); torch %s; prepare %.1fs, driver %.1fs, total %.1fs'
          % (len(prepared), ngrad, sum(1 for p in prepared if p.case.err is not None), xfailed,
             torch.__version__, t1 - t0, t2 - t1, time.time() - t0))
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0

