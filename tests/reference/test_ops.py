#!/usr/bin/python3
"""test_ops.py: every cfx tensor op against PyTorch (python3 + torch), forward and gradient.

    /usr/bin/python3 tests/reference/test_ops.py [-v] [-k SUBSTRING] [--keep]

Each case is a name, its inputs (drawn here from a seed derived from the name), a Lua
chunk over those inputs written with cfx's API, and a Python function computing the
same thing with torch (or a check from first principles where torch has nothing to
compare with: random numbers, dropout).  The inputs go to a temporary directory as raw
little-endian bytes with a manifest written as a Lua table; ops_driver.lua runs every
case in one Lua process and writes its results (raw bytes plus one JSON line per case);
reflib.py compares them with dtype-aware tolerances.  For differentiable cases the
driver also calls out:backward(g) with a random g drawn here, and the gradient of every
input that requires grad is compared too.

Conventions: Lua dims and indices are 1-based, so an index input (kind='index') is
stored 0-based for torch and 1-based for Lua, and index outputs are compared as
torch_result + 1.  A case with err=... passes when the Lua chunk raises an error
containing every given substring, starting with the case's own chunk name and line
(the caller's file:line); when it also has a Python function, torch must raise too.

The last line is `N passed, M failed`; the exit status is non-zero on any failure.
Set CFX_LUAJIT_CMD to run the driver with something other than plain luajit (see
run_lua.py), e.g. CFX_LUAJIT_CMD=build/cfx.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflib import DTYPES, TORCH_DTYPE, I, case, dtype_name, lua_lit, main, rng_for  # noqa: E402

# Known library bugs.  Each entry is a case that fails because cfx disagrees with
# PyTorch; the reason says how.  They are reported on every run but do not fail it, and
# one that starts passing fails the run until it is taken off the list.
# Known library bugs: case name -> what is wrong.  Reported, not counted; a case listed
# here that passes fails the run until it is taken off the list.
EXPECTED_FAILURES = {}

T = TORCH_DTYPE


def seq(*fns):
    """Run statements for their effect and return the last value (multi-statement refs)."""
    return fns[-1]


def without_grad(fn):
    with torch.no_grad():
        return fn()


def assert_(cond, msg=''):
    assert cond, msg


# ==== creation ====================================================================================
case('zeros_varargs', 'cfx.zeros(2, 3)', lambda: torch.zeros(2, 3))
case('zeros_table', "cfx.zeros({2, 3}, {dtype='int64'})", lambda: torch.zeros(2, 3, dtype=torch.int64))
case('zeros_varargs_opts', "cfx.zeros(2, 3, {dtype='float64'})", lambda: torch.zeros(2, 3, dtype=torch.float64))
case('zeros_0d', 'cfx.zeros({})', lambda: torch.zeros(()))
case('zeros_empty_dim', 'cfx.zeros(0, 3)', lambda: torch.zeros(0, 3))
for d in DTYPES:
    case('ones_' + d, "cfx.ones(3, 2, {dtype='%s'})" % d, lambda d=d: torch.ones(3, 2, dtype=T[d]))
case('full_float', 'cfx.full({2, 3}, 2.5)', lambda: torch.full((2, 3), 2.5))
case('full_int32', "cfx.full({4}, 7, {dtype='int32'})", lambda: torch.full((4,), 7, dtype=torch.int32))
case('full_negative_f64', "cfx.full({2, 2}, -0.125, {dtype='float64'})",
     lambda: torch.full((2, 2), -0.125, dtype=torch.float64))
case('full_bool', "cfx.full({3}, 1, {dtype='bool'})", lambda: torch.full((3,), True))
case('empty_shape_dtype', "local t = cfx.empty(3, 4, {dtype='float64'}) return t:shape(), t:dtype()",
     lambda: ([3, 4], 'float64'))
case('arange_stop', 'cfx.arange(5)', lambda: torch.arange(5))
case('arange_start_stop', 'cfx.arange(2, 9)', lambda: torch.arange(2, 9))
case('arange_step', 'cfx.arange(1, 10, 3)', lambda: torch.arange(1, 10, 3))
case('arange_negative_step', 'cfx.arange(10, 0, -2)', lambda: torch.arange(10, 0, -2))
case('arange_fractional', 'cfx.arange(0, 1, 0.1)', lambda: torch.arange(0, 1, 0.1))
case('arange_fractional_start', 'cfx.arange(0.5, 3)', lambda: torch.arange(0.5, 3))
case('arange_dtype', "cfx.arange(5, {dtype='float64'})", lambda: torch.arange(5, dtype=torch.float64))
case('arange_range_dtype', "cfx.arange(-3, 3, {dtype='int32'})", lambda: torch.arange(-3, 3, dtype=torch.int32))
case('arange_zero_step', 'cfx.arange(0, 3, 0)', err='step must be nonzero')
case('zeros_like', 'cfx.zeros_like(i)', lambda i: torch.zeros_like(i),
     i=I(2, 3, dtype='int32', kind='int', lo=-5, hi=5))
case('ones_like', 'cfx.ones_like(x)', lambda x: torch.ones_like(x), x=I(2, 3, dtype='float64'))
case('full_like', 'cfx.full_like(x, 3)', lambda x: torch.full_like(x, 3), x=I(4, 1), grad=False)
case('ones_like_opts', "cfx.ones_like(x, {dtype='int16'})", lambda x: torch.ones_like(x, dtype=torch.int16),
     x=I(2, 2), grad=False)
case('randn_like_shape', 'local t = cfx.randn_like(x) return t:shape(), t:dtype()',
     lambda x: ([3, 5], 'float64'), x=I(3, 5, dtype='float64'), grad=False)
case('rand_like_shape', 'local t = cfx.rand_like(x) return t:shape(), t:dtype()',
     lambda x: ([2, 7], 'float32'), x=I(2, 7), grad=False)
case('zeros_requires_grad', 'local t = cfx.zeros(2, {requires_grad=true}) return t:requires_grad(), t:is_leaf()',
     lambda: (True, True))
case('arange_requires_grad', "cfx.arange(0, 2, 0.5, {requires_grad=true}):requires_grad()", lambda: True)
case('zeros_unknown_option', "cfx.zeros(2, {dtyp='float32'})", err="unknown option 'dtyp'")
case('zeros_bad_dtype', "cfx.zeros(2, {dtype='float33'})", err='unknown dtype float33')
case('zeros_bad_shape', "cfx.zeros(2, 'x')", err='shape entries must be integers')


def check_rand(outs, ins):
    t, = outs
    assert list(t.shape) == [200, 500] and t.dtype == torch.float32, (t.shape, t.dtype)
    assert float(t.min()) >= 0 and float(t.max()) < 1, 'values outside [0, 1)'
    m, v = float(t.double().mean()), float(t.double().var())
    # 1e5 draws: the mean's standard error is 0.29/316 = 9e-4, the variance's ~2.4e-4
    assert abs(m - 0.5) < 0.005, 'mean %.4f, expected 0.5' % m
    assert abs(v - 1 / 12) < 0.0015, 'variance %.4f, expected 1/12' % v


def check_randn(outs, ins):
    t, = outs
    assert list(t.shape) == [200, 500] and t.dtype == torch.float64, (t.shape, t.dtype)
    m, s = float(t.mean()), float(t.std())
    assert abs(m) < 0.016, 'mean %.4f, expected 0' % m          # 5 standard errors
    assert abs(s - 1) < 0.012, 'std %.4f, expected 1' % s
    frac = float((t.abs() < 1).double().mean())
    assert abs(frac - 0.6827) < 0.008, 'P(|x| < 1) = %.4f, expected 0.6827' % frac


def check_randint(outs, ins):
    t, = outs
    assert t.dtype == torch.int64 and list(t.shape) == [1000], (t.dtype, t.shape)
    assert int(t.min()) == -3 and int(t.max()) == 4, 'range [%d, %d], expected [-3, 4]' % (t.min(), t.max())
    counts = torch.bincount(t + 3)
    assert int(counts.min()) > 80, 'uneven counts %s' % counts.tolist()


def check_randperm(outs, ins):
    t, = outs
    assert t.dtype == torch.int64
    assert torch.equal(t.sort().values, torch.arange(1, 51)), 'not a permutation of 1..50: %s' % t.tolist()
    assert not torch.equal(t, torch.arange(1, 51)), 'identity permutation'


case('rand_moments', 'cfx.manual_seed(11) return cfx.rand(200, 500)', check=check_rand)
case('randn_moments', "cfx.manual_seed(12) return cfx.randn({200, 500}, {dtype='float64'})", check=check_randn)
case('randint_range', 'cfx.manual_seed(13) return cfx.randint(-3, 5, {1000})', check=check_randint)
case('randint_dtype', "cfx.randint(0, 3, {4}, {dtype='int32'}):dtype()", lambda: 'int32')
case('randperm', 'cfx.manual_seed(14) return cfx.randperm(50)', check=check_randperm)
case('uniform_', 'cfx.manual_seed(15) local t = cfx.empty(20000):uniform_(-2, 3) return t:min():item() >= -2, '
     't:max():item() < 3, math.abs(t:mean():item() - 0.5) < 0.05', lambda: (True, True, True))
case('normal_', 'cfx.manual_seed(16) local t = cfx.empty(20000):normal_(3, 2) '
     'return math.abs(t:mean():item() - 3) < 0.05, math.abs(t:std():item() - 2) < 0.05', lambda: (True, True))
case('manual_seed_reproducible',
     'cfx.manual_seed(7) local a = cfx.randn(100) local b = cfx.randn(100) '
     'cfx.manual_seed(7) local c = cfx.randn(100) local d = cfx.randn(100) '
     'cfx.manual_seed(8) local e = cfx.randn(100) return a == c, b == d, a == b, a == e',
     lambda: (True, True, False, False))
case('manual_seed_rand_randint',
     'cfx.manual_seed(3) local a, b = cfx.rand(50), cfx.randint(0, 100, {50}) '
     'cfx.manual_seed(3) return a == cfx.rand(50), b == cfx.randint(0, 100, {50})', lambda: (True, True))
case('rng_state_replay',
     'cfx.manual_seed(5) cfx.randn(10) local s = cfx.get_rng_state() '
     'local a = cfx.rand(50) local b = cfx.randn(20) '
     'cfx.randn(1000) cfx.set_rng_state(s) local c = cfx.rand(50) local d = cfx.randn(20) '
     'return a == c, b == d, s:dtype(), s:dim()', lambda: (True, True, 'uint8', 1))
case('rng_state_is_a_copy',
     'local s = cfx.get_rng_state() local s2 = s:clone() cfx.rand(100) return s == s2, cfx.get_rng_state() == s',
     lambda: (True, False))
case('set_rng_state_bad', 'cfx.set_rng_state(cfx.zeros(3))', err='uint8')
case('manual_seed_bad', 'cfx.manual_seed(-1)', err='non-negative integer')

# ==== from data, copy out =========================================================================
_r = rng_for('tensor_data')
_d2 = np.round(_r.standard_normal((3, 4)), 4).tolist()
_d3 = np.round(_r.standard_normal((2, 3, 2)) * 100, 2).tolist()
_di = _r.integers(-1000, 1000, (2, 5)).tolist()
_db = (_r.random((2, 3)) < 0.5).tolist()
case('tensor_2d', 'cfx.tensor(%s)' % lua_lit(_d2), lambda: torch.tensor(_d2, dtype=torch.float32))
case('tensor_3d_f64', "cfx.tensor(%s, {dtype='float64'})" % lua_lit(_d3),
     lambda: torch.tensor(_d3, dtype=torch.float64))
case('tensor_int64', "cfx.tensor(%s, {dtype='int64'})" % lua_lit(_di), lambda: torch.tensor(_di))
case('tensor_bool_leaves', 'cfx.tensor(%s)' % lua_lit(_db), lambda: torch.tensor(_db))
case('tensor_1d', 'cfx.tensor({1.5, -2, 3})', lambda: torch.tensor([1.5, -2, 3]))
case('tensor_scalar', 'cfx.tensor(3.25)', lambda: torch.tensor(3.25))
case('tensor_scalar_int', "cfx.tensor(-7, {dtype='int32'})", lambda: torch.tensor(-7, dtype=torch.int32))
case('tensor_empty', 'cfx.tensor({})', lambda: torch.tensor([]))
case('tensor_requires_grad', 'cfx.tensor({1, 2}, {requires_grad=true}):requires_grad()', lambda: True)
case('tensor_of_tensor_copies', 'local y = cfx.tensor(x) y:fill_(0) return x, y',
     lambda x: (x, torch.zeros_like(x)), x=I(2, 3), grad=False)
case('tensor_ragged', 'cfx.tensor({{1, 2}, {3}})', err='ragged')
case('tensor_bad_leaf', "cfx.tensor({1, 'a'})", err='expected a number')
case('tensor_bad_type', "cfx.tensor('abc')", err='expected a number or a nested table')
case('totable_2d', 'x:totable()', lambda x: x.tolist(), x=I(3, 4), grad=False)
case('totable_3d_int', 'x:totable()', lambda x: x.tolist(), x=I(2, 2, 3, dtype='int64', kind='int', lo=-9, hi=9))
case('totable_bool', 'x:totable()', lambda x: x.tolist(), x=I(2, 3, dtype='bool', kind='bool'))
case('totable_0d', 'x:sum():totable()', lambda x: x.sum().item(), x=I(4, dtype='float64'), grad=False)
case('totable_bf16', 'x:totable()', lambda x: x.tolist(), x=I(5, dtype='bfloat16'), grad=False)
case('tolist_alias', 'x:tolist()', lambda x: x.tolist(), x=I(2, 2), grad=False)
case('item_float', 'x:sum():item()', lambda x: x.sum().item(), x=I(3, 3, dtype='float64'), grad=False)
case('item_int', 'x:sum():item()', lambda x: x.sum().item(), x=I(3, 3, dtype='int64', kind='int', lo=-100, hi=100))
case('item_bool', 'x[1]:item()', lambda x: x[0].item(),
     x=I(3, dtype='bool', kind='bool'))
case('item_not_one_element', 'x:item()', err='one-element', x=I(2, 2), grad=False)
_buf_code = ("local n = x:numel() * x:element_size() local buf = ffi.new('uint8_t[?]', n) x:copy_to(buf, n) "
             "return cfx.from_buffer(ffi.string(buf, n), x:shape(), x:dtype())")
for d in ['float32', 'float64', 'int32', 'uint8', 'bfloat16', 'bool']:
    kind = 'bool' if d == 'bool' else ('int' if d in ('int32', 'uint8') else 'randn')
    case('from_buffer_string_' + d, _buf_code, lambda x: x, x=I(3, 4, dtype=d, kind=kind, lo=0, hi=100),
         grad=False)
case('from_buffer_pointer', "cfx.from_buffer(x:data_ptr(), {2, 3}, 'float64')", lambda x: x,
     x=I(2, 3, dtype='float64'), grad=False)
case('from_buffer_ffi_array',
     "local b = ffi.new('int16_t[4]', {3, -1, 4, 1}) return cfx.from_buffer(b, {2, 2}, 'int16')",
     lambda: torch.tensor([[3, -1], [4, 1]], dtype=torch.int16))
case('from_buffer_copies',
     "local b = ffi.new('float[2]', {1, 2}) local t = cfx.from_buffer(b, {2}) b[0] = 9 return t",
     lambda: torch.tensor([1.0, 2.0]))
case('from_buffer_wrong_length', "cfx.from_buffer('abc', {2}, 'float32')",
     err='string holds 3 bytes, shape needs 8')
case('from_blob_shares', "local b = ffi.new('float[6]') for i = 0, 5 do b[i] = i * 0.5 end "
     "local t = cfx.from_blob(b, {2, 3}) b[0] = 42 local r = t:clone() t = nil collectgarbage() return r",
     lambda: torch.tensor([[42, 0.5, 1], [1.5, 2, 2.5]]))
case('from_blob_strides', "local b = ffi.new('double[6]') for i = 0, 5 do b[i] = i end "
     "local t = cfx.from_blob(b, {3, 2}, 'float64', nil, {1, 3}) local r = t:clone() t = nil collectgarbage() "
     "return r", lambda: torch.arange(6, dtype=torch.float64).reshape(2, 3).t())
case('copy_to_wrong_size', "local b = ffi.new('float[5]') x:copy_to(b, 20)", err='destination holds 20 bytes',
     x=I(2, 3), grad=False)
case('copy_to_noncontiguous', "local y = x:t() local b = ffi.new('float[6]') y:copy_to(b, 24) "
     "return {b[0], b[1], b[2], b[3], b[4], b[5]}", lambda x: x.t().reshape(-1).tolist(), x=I(2, 3), grad=False)
case('data_ptr', 'local p = x:data_ptr() return p[0], p[5], tostring(ffi.typeof(p))',
     lambda x: (x.reshape(-1)[0].item(), x.reshape(-1)[5].item(), 'ctype<double *>'), x=I(2, 3, dtype='float64'),
     grad=False)

# ==== queries =====================================================================================
case('shape', 'x:shape(), x:size(), x:sizes()', lambda x: ([2, 3, 4],) * 3, x=I(2, 3, 4), grad=False)
case('size_dim', 'x:size(2), x:size(1), x:size(3)', lambda x: (3, 2, 4), x=I(2, 3, 4), grad=False)
case('size_dim_negative', 'x:size(-1), x:size(-3)', lambda x: (4, 2), x=I(2, 3, 4), grad=False)
case('size_bad_dim', 'x:size(4)', err='dim 4 out of range', x=I(2, 3, 4), grad=False)
case('size_zero_dim', 'x:size(0)', err='1-based', x=I(2, 3, 4), grad=False)
case('stride', 'x:stride(), x:stride(1), x:stride(3)', lambda x: ([12, 4, 1], 12, 1), x=I(2, 3, 4), grad=False)
case('stride_dim_negative', 'x:stride(-1), x:stride(-2)', lambda x: (1, 4), x=I(2, 3, 4), grad=False)
case('stride_permuted', 'x:permute(3, 1, 2):stride()', lambda x: list(x.permute(2, 0, 1).stride()), x=I(2, 3, 4),
     grad=False)
case('stride_narrow', 'local y = x:narrow(2, 2, 2) return y:stride(), y:is_contiguous(), y:shape()',
     lambda x: (list(x.narrow(1, 1, 2).stride()), False, [2, 2, 4]), x=I(2, 3, 4), grad=False)
case('is_contiguous', 'x:is_contiguous(), x:transpose(1, 3):is_contiguous(), x:select(1, 1):is_contiguous()',
     lambda x: (True, False, True), x=I(2, 3, 4), grad=False)
case('dim_numel', 'x:dim(), x:ndim(), x:numel(), x:nelement(), #x, #x:sum()', lambda x: (3, 3, 24, 24, 2, 0),
     x=I(2, 3, 4), grad=False)
case('device', 'x:device()', lambda x: 'cpu', x=I(2), grad=False)
for d in DTYPES:
    case('dtype_' + d,
         "local t = cfx.zeros(1, {dtype='%s'}) return t:dtype(), t:element_size(), t:is_floating_point()" % d,
         lambda d=d: (d, torch.zeros(1, dtype=T[d]).element_size(), T[d].is_floating_point))
case('is_leaf_requires_grad',
     'local y = x * 2 return x:is_leaf(), x:requires_grad(), y:is_leaf(), y:requires_grad()',
     lambda x: (True, True, False, True), x=I(2, rg=True), grad=False)
case('tostring_small', 'tostring(x)', x=I(2, 3), grad=False,
     check=lambda o, i: seq(assert_(o[0].startswith('tensor float32 [2, 3] cpu\n'), o[0]),
                            assert_(len(o[0].split('\n')) == 3, o[0])))
case('tostring_large', 'tostring(x)', x=I(10, 10, dtype='int64', kind='int', lo=0, hi=9), grad=False,
     check=lambda o, i: assert_(o[0].startswith('tensor int64 [10, 10] cpu\n[') and 'mean' in o[0], o[0]))
case('tostring_requires_grad', 'tostring(x)', x=I(2, rg=True), grad=False,
     check=lambda o, i: assert_('requires_grad' in o[0].split('\n')[0], o[0]))
case('is_tensor', 'cfx.is_tensor(x), cfx.is_tensor({}), cfx.is_tensor(1)', lambda x: (True, False, False),
     x=I(1), grad=False)



# ==== conversion ==================================================================================
def _src(d):
    if d == 'bool':
        return I(3, 5, dtype='bool', kind='bool')
    if d in ('float16', 'float32', 'float64', 'bfloat16'):
        return I(3, 5, dtype=d, kind='uniform', lo=0, hi=100)   # in range of every target
    return I(3, 5, dtype=d, kind='int', lo=0, hi=100)


for s in DTYPES:
    for d in DTYPES:
        case('to_%s_%s' % (s, d), "x:to('%s')" % d, lambda x, d=d: x.to(T[d]), x=_src(s), grad=False)
case('to_table', "x:to{dtype='float64'}", lambda x: x.double(), x=I(2, 3))
case('to_other_tensor', 'x:to(y)', lambda x, y: x.to(y.dtype), x=I(2, 3),
     y=I(1, dtype='int32', kind='int', lo=0, hi=2),
     grad=False)
case('to_dtype_and_cpu', "x:to('float64', 'cpu')", lambda x: x.double(), x=I(2, 3))
case('to_copy', "local y = x:to{copy=true} y:fill_(0) return x", lambda x: x, x=I(2, 3), grad=False)
case('to_no_copy_same_dtype', "local y = x:to('float32') y:fill_(0) return x",
     lambda x: x.to(torch.float32).fill_(0),
     x=I(2, 3), grad=False)
case('to_bad_dtype', "x:to{dtype='float8'}", err='unknown dtype float8', x=I(2), grad=False)
case('to_unknown_option', "x:to{dtyp='float64'}", err="unknown option 'dtyp'", x=I(2), grad=False)
for m, d in [('float', 'float32'), ('double', 'float64'), ('half', 'float16'), ('bfloat16', 'bfloat16'),
             ('long', 'int64'), ('int', 'int32'), ('short', 'int16'), ('byte', 'uint8'), ('char', 'int8'),
             ('bool', 'bool')]:
    case('method_' + m, 'x:%s()' % m, lambda x, d=d: x.to(T[d]), x=I(2, 4, kind='uniform', lo=0, hi=50),
         grad=False)
case('type_as', 'x:type_as(y)', lambda x, y: x.type_as(y), x=I(3), y=I(1, dtype='float64'))
case('cpu', 'x:cpu()', lambda x: x, x=I(3), grad=False)
if not torch.cuda.is_available():   # libtorch here is CPU-only too (same Debian build)
    case('to_cuda_unavailable', "x:to('cuda')", err=['to: float32[3]', 'CUDA'], x=I(3), grad=False)
case('to_bad_device', "x:to('gpu')", err='unknown device gpu', x=I(3), grad=False)
case('to_grad_f32_f64', "x:to('float64')", lambda x: x.double(), x=I(3, 4))
case('to_grad_f64_bf16', "x:to('bfloat16')", lambda x: x.bfloat16(), x=I(3, 4, dtype='float64'))
case('contiguous', 'local y = x:transpose(1, 2):contiguous() return y, y:is_contiguous(), y:stride()',
     lambda x: seq(y := x.transpose(0, 1).contiguous(), (y, True, list(y.stride()))), x=I(3, 4, 2))
case('contiguous_returns_self', 'local b = x:clone() local y = b:contiguous() y:fill_(1) return b',
     lambda x: torch.ones_like(x), x=I(2, 3), grad=False)
case('clone', 'local y = x:clone() y:fill_(0) return x, y', lambda x: (x, torch.zeros_like(x)), x=I(2, 3),
     grad=False)
case('clone_grad', 'x:clone()', lambda x: x.clone(), x=I(2, 3))

# ==== views =======================================================================================
X = dict(x=I(2, 3, 4))
case('reshape_varargs', 'x:reshape(4, 6)', lambda x: x.reshape(4, 6), **X)
case('reshape_table_infer', 'x:reshape({6, -1})', lambda x: x.reshape(6, -1), **X)
case('reshape_flat', 'x:reshape(-1)', lambda x: x.reshape(-1), **X)
case('reshape_noncontiguous', 'x:transpose(1, 3):reshape(4, 6)', lambda x: x.transpose(0, 2).reshape(4, 6), **X)
case('reshape_bad', 'x:reshape(5, 5)', err=['reshape', 'float32[2, 3, 4]'], **X)
case('view', 'x:view(6, 4)', lambda x: x.view(6, 4), **X)
case('view_table', 'x:view({2, 12})', lambda x: x.view(2, 12), **X)
case('view_noncontiguous_error', 'x:transpose(1, 2):view(-1)', lambda x: x.transpose(0, 1).view(-1),
     err='view', **X)
case('view_as', 'x:view_as(y)', lambda x, y: x.view_as(y), x=I(2, 3, 4), y=I(4, 6, rg=False))
case('reshape_as', 'x:reshape_as(y)', lambda x, y: x.reshape_as(y), x=I(2, 3, 4), y=I(3, 8, rg=False))
case('permute_varargs', 'x:permute(3, 1, 2)', lambda x: x.permute(2, 0, 1), **X)
case('permute_table', 'x:permute({2, 3, 1})', lambda x: x.permute(1, 2, 0), **X)
case('permute_negative', 'x:permute(-1, -2, -3)', lambda x: x.permute(2, 1, 0), **X)
case('permute_module_fn', 'cfx.permute(x, 2, 1, 3)', lambda x: x.permute(1, 0, 2), **X)
case('transpose', 'x:transpose(1, 3)', lambda x: x.transpose(0, 2), **X)
case('transpose_negative', 'x:transpose(-1, -2)', lambda x: x.transpose(-1, -2), **X)
case('transpose_module_fn', 'cfx.transpose(x, 1, 2)', lambda x: x.transpose(0, 1), **X)
case('t_2d', 'm:t()', lambda m: m.t(), m=I(3, 5))
case('t_1d', 'v:t()', lambda v: v.t(), v=I(4))
case('t_3d_error', 'x:t()', err='<= 2 dimensions', **X)
case('narrow', 'x:narrow(2, 2, 2)', lambda x: x.narrow(1, 1, 2), **X)
case('narrow_last', 'x:narrow(-1, 1, 3)', lambda x: x.narrow(-1, 0, 3), **X)
case('narrow_empty', 'x:narrow(3, 5, 0)', lambda x: x.narrow(2, 4, 0), **X)
case('narrow_bad_start', 'x:narrow(2, 5, 1)', err='narrow: start 5 out of range', **X)
case('narrow_too_long', 'x:narrow(2, 2, 5)', err='narrow', **X)
case('select', 'x:select(1, 2)', lambda x: x.select(0, 1), **X)
case('select_negative', 'x:select(3, -1)', lambda x: x.select(2, -1), **X)
case('select_bad', 'x:select(2, 4)', err='select: index 4 out of range', **X)
case('select_zero', 'x:select(2, 0)', err='select: index 0 out of range', **X)
case('index_call', 'x[2]', lambda x: x[1], **X)
case('index_call_negative', 'x[-1][2]', lambda x: x[-1][1], **X)
case('index_call_zero', 'x[0]', err='index 0 out of range', **X)
case('index_select', 'x:index_select(2, idx)', lambda x, idx: x.index_select(1, idx), x=I(2, 3, 4),
     idx=I(5, dtype='int64', kind='index', hi=3))
case('index_select_int32', 'x:index_select(-1, idx)', lambda x, idx: x.index_select(-1, idx.long()), x=I(2, 3, 4),
     idx=I(6, dtype='int32', kind='index', hi=4))
case('index_select_out_of_range', 'x:index_select(1, cfx.tensor({1, 3}, {dtype="int64"}))', err='index_select',
     **X)
case('gather', 'x:gather(3, idx)', lambda x, idx: x.gather(2, idx), x=I(2, 3, 4),
     idx=I(2, 3, 5, dtype='int64', kind='index', hi=4))
case('gather_dim1', 'x:gather(1, idx)', lambda x, idx: x.gather(0, idx), x=I(4, 3),
     idx=I(2, 3, dtype='int64', kind='index', hi=4))
case('masked_fill', 'x:masked_fill(m, -1.5)', lambda x, m: x.masked_fill(m, -1.5), x=I(2, 3, 4),
     m=I(2, 3, 4, dtype='bool', kind='bool'))
case('masked_fill_broadcast', 'x:masked_fill(m, 0)', lambda x, m: x.masked_fill(m, 0), x=I(2, 3, 4),
     m=I(3, 1, dtype='bool', kind='bool'))
case('unsqueeze_first', 'x:unsqueeze(1)', lambda x: x.unsqueeze(0), **X)
case('unsqueeze_last', 'x:unsqueeze(4)', lambda x: x.unsqueeze(3), **X)
case('unsqueeze_negative', 'x:unsqueeze(-1)', lambda x: x.unsqueeze(-1), **X)
case('unsqueeze_middle', 'cfx.unsqueeze(x, 2)', lambda x: x.unsqueeze(1), **X)
case('unsqueeze_bad', 'x:unsqueeze(5)', err='out of range', **X)
Y = dict(y=I(2, 1, 3, 1))
case('squeeze_all', 'y:squeeze()', lambda y: y.squeeze(), **Y)
case('squeeze_dim', 'y:squeeze(2)', lambda y: y.squeeze(1), **Y)
case('squeeze_negative', 'y:squeeze(-1)', lambda y: y.squeeze(-1), **Y)
case('squeeze_noop', 'y:squeeze(1)', lambda y: y.squeeze(0), **Y)
case('squeeze_module_fn', 'cfx.squeeze(y)', lambda y: y.squeeze(), **Y)
case('expand', 'y:expand(2, 4, 3, 5)', lambda y: y.expand(2, 4, 3, 5), **Y)
case('expand_keep', 'y:expand(-1, 4, -1, 2)', lambda y: y.expand(-1, 4, -1, 2), **Y)
case('expand_table_new_dim', 'y:expand({6, 2, 2, 3, 2})', lambda y: y.expand(6, 2, 2, 3, 2), **Y)
case('expand_as', 'y:expand_as(z)', lambda y, z: y.expand_as(z), y=I(2, 1, 3, 1), z=I(2, 5, 3, 4, rg=False))
case('expand_bad', 'y:expand(3, 1, 3, 1)', err='expand', **Y)
case('repeat_', 'x:repeat_(2, 1, 2)', lambda x: x.repeat(2, 1, 2), **X)
case('repeat_keyword', "x['repeat'](x, 1, 2, 1, 1)", lambda x: x.repeat(1, 2, 1, 1), **X)
case('flatten_all', 'x:flatten()', lambda x: x.flatten(), **X)
case('flatten_from', 'x:flatten(2)', lambda x: x.flatten(1), **X)
case('flatten_range', 'x:flatten(1, 2)', lambda x: x.flatten(0, 1), **X)
case('flatten_negative', 'cfx.flatten(x, -2, -1)', lambda x: x.flatten(-2, -1), **X)
case('chunk', 'x:chunk(2, 3)', lambda x: list(x.chunk(2, 2)), **X)
case('chunk_uneven', 'x:chunk(2)', lambda x: list(x.chunk(2, 0)), x=I(5, 2))
case('split', 'x:split(2, 2)', lambda x: list(x.split(2, 1)), **X)
case('split_default_dim', 'x:split(2)', lambda x: list(x.split(2, 0)), x=I(5, 3))
case('split_negative_dim', 'x:split(2, -1)', lambda x: list(x.split(2, -1)), x=I(3, 5))
case('narrow_negative_dim_bad_start', 'x:narrow(-1, 6, 1)', err='narrow: start 6 out of range', x=I(3, 4))
case('chunk_grad', 'local a, b = unpack(x:chunk(2, 1)) return a * 2 + b',
     lambda x: x.chunk(2, 0)[0] * 2 + x.chunk(2, 0)[1],
     x=I(4, 3))


# Writing through a view changes the base, as in torch (and a copy does not).
def _fill(t, v):
    t.fill_(v)
    return t


W = dict(x=I(2, 3, 4), grad=False)
case('write_view', 'local b = x:clone() b:view(-1):narrow(1, 3, 4):fill_(9) return b',
     lambda x: seq(b := x.clone(), b.view(-1).narrow(0, 2, 4).fill_(9), b), **W)
case('write_reshape', 'local b = x:clone() b:reshape(6, 4)[2]:fill_(9) return b',
     lambda x: seq(b := x.clone(), b.reshape(6, 4)[1].fill_(9), b), **W)
case('write_permute', 'local b = x:clone() b:permute(3, 1, 2):select(1, 2):fill_(9) return b',
     lambda x: seq(b := x.clone(), b.permute(2, 0, 1)[1].fill_(9), b), **W)
case('write_transpose', 'local b = x:clone() b:transpose(1, 3):narrow(1, 1, 2):mul_(2) return b',
     lambda x: seq(b := x.clone(), b.transpose(0, 2).narrow(0, 0, 2).mul_(2), b), **W)
case('write_narrow', 'local b = x:clone() b:narrow(3, 2, 2):zero_() return b',
     lambda x: seq(b := x.clone(), b.narrow(2, 1, 2).zero_(), b), **W)
case('write_select', 'local b = x:clone() b:select(2, 3):add_(1) return b',
     lambda x: seq(b := x.clone(), b.select(1, 2).add_(1), b), **W)
case('write_newindex_number', 'local b = x:clone() b[1] = 5 return b',
     lambda x: seq(b := x.clone(), _fill(b[0], 5), b), **W)
case('write_newindex_tensor', 'local b = x:clone() b[2] = y return b',
     lambda x, y: seq(b := x.clone(), b[1].copy_(y), b), x=I(2, 3, 4), y=I(4), grad=False)
case('write_newindex_nested', 'local b = x:clone() b[2][3] = -1 return b',
     lambda x: seq(b := x.clone(), _fill(b[1][2], -1), b), **W)
case('write_unsqueeze', 'local b = x:clone() b:unsqueeze(1):select(1, 1):select(1, 1):fill_(3) return b',
     lambda x: seq(b := x.clone(), b.unsqueeze(0)[0][0].fill_(3), b), **W)
case('write_squeeze', 'local b = y:clone() b:squeeze():fill_(2) return b', lambda y: torch.full_like(y, 2),
     y=I(2, 1, 3, 1), grad=False)
case('write_expand_base', 'local b = cfx.zeros(3, 1) local e = b:expand(3, 4) b:fill_(2) return e',
     lambda: torch.full((3, 4), 2.0))
case('write_flatten', 'local b = x:clone() b:flatten():narrow(1, 1, 5):fill_(0) return b',
     lambda x: seq(b := x.clone(), b.flatten().narrow(0, 0, 5).fill_(0), b), **W)
case('write_detach', 'local b = x:clone() b:detach():fill_(1) return b', lambda x: torch.ones_like(x), **W)
case('write_index_select_is_copy',
     'local b = x:clone() b:index_select(1, cfx.tensor({2}, {dtype="int64"})):fill_(0) '
     'return b', lambda x: x, **W)
case('write_repeat_is_copy', 'local b = x:clone() b:repeat_(1, 1, 1):fill_(0) return b', lambda x: x, **W)
case('write_chunk', 'local b = x:clone() b:chunk(3, 2)[2]:fill_(7) return b',
     lambda x: seq(b := x.clone(), b.chunk(3, 1)[1].fill_(7), b), **W)

# ==== cat / stack =================================================================================
C3 = dict(a=I(2, 3, 4), b=I(2, 1, 4), c=I(2, 2, 4))
case('cat_dim2', 'cfx.cat({a, b, c}, 2)', lambda a, b, c: torch.cat([a, b, c], 1), **C3)
case('cat_default_dim', 'cfx.cat({a, b})', lambda a, b: torch.cat([a, b], 0), a=I(2, 3), b=I(4, 3))
case('cat_negative', 'cfx.cat({a, b}, -1)', lambda a, b: torch.cat([a, b], -1), a=I(2, 3), b=I(2, 5))
case('cat_one', 'cfx.cat({a}, 1)', lambda a: torch.cat([a], 0), a=I(2, 3))
case('cat_mixed_dtype', 'cfx.cat({a, b})', lambda a, b: torch.cat([a, b]), a=I(2, 3), b=I(1, 3, dtype='float64'))
case('cat_mismatch', 'cfx.cat({a, b}, 1)', lambda a, b: torch.cat([a, b], 0), err='cat', a=I(2, 3), b=I(2, 4))
case('cat_mismatch_names_shapes', 'cfx.cat({a, b}, 1)', err=['[2, 3]', '[2, 4]'], a=I(2, 3), b=I(2, 4))
case('cat_empty_list', 'cfx.cat({})', err='non-empty list')
case('cat_not_tensor', 'cfx.cat({a, 3})', err='element 2 is a number', a=I(2))
S3 = dict(a=I(2, 3), b=I(2, 3), c=I(2, 3))
case('stack_default', 'cfx.stack({a, b, c})', lambda a, b, c: torch.stack([a, b, c]), **S3)
case('stack_dim2', 'cfx.stack({a, b, c}, 2)', lambda a, b, c: torch.stack([a, b, c], 1), **S3)
case('stack_last', 'cfx.stack({a, b, c}, 3)', lambda a, b, c: torch.stack([a, b, c], 2), **S3)
case('stack_negative', 'cfx.stack({a, b}, -1)', lambda a, b: torch.stack([a, b], -1), a=I(2, 3), b=I(2, 3))
case('stack_mismatch', 'cfx.stack({a, b})', lambda a, b: torch.stack([a, b]), err='stack', a=I(2, 3), b=I(3, 2))

# ==== arithmetic ==================================================================================
B = dict(a=I(3, 1, 4), b=I(2, 4))
BP = dict(a=I(3, 1, 4), b=I(2, 4, kind='pos'))
case('op_add', 'a + b', lambda a, b: a + b, **B)
case('op_sub', 'a - b', lambda a, b: a - b, **B)
case('op_mul', 'a * b', lambda a, b: a * b, **B)
case('op_div', 'a / b', lambda a, b: a / b, **BP)
case('op_pow', 'b ^ a', lambda a, b: b ** a, **BP)
case('op_unm', '-a', lambda a: -a, a=I(3, 4))
case('op_add_scalar', 'a + 2.5', lambda a: a + 2.5, a=I(3, 4))
case('op_sub_scalar', 'a - 2.5', lambda a: a - 2.5, a=I(3, 4))
case('op_mul_scalar', 'a * 2.5', lambda a: a * 2.5, a=I(3, 4))
case('op_div_scalar', 'a / 2.5', lambda a: a / 2.5, a=I(3, 4))
case('op_pow_scalar_int', 'a ^ 2', lambda a: a ** 2, a=I(3, 4))
case('op_pow_scalar_half', 'a ^ 0.5', lambda a: a ** 0.5, a=I(3, 4, kind='pos'))
case('op_pow_scalar_neg', 'a ^ -1.5', lambda a: a ** -1.5, a=I(3, 4, kind='pos'))
case('op_scalar_add', '2.5 + a', lambda a: 2.5 + a, a=I(3, 4))
case('op_scalar_sub', '2.5 - a', lambda a: 2.5 - a, a=I(3, 4))
case('op_scalar_mul', '2.5 * a', lambda a: 2.5 * a, a=I(3, 4))
case('op_scalar_div', '2.5 / a', lambda a: 2.5 / a, a=I(3, 4, kind='pos'))
case('op_scalar_pow', '2 ^ a', lambda a: 2 ** a, a=I(3, 4))
case('op_scalar_pow_frac', '0.7 ^ a', lambda a: 0.7 ** a, a=I(3, 4))
case('op_chain', '(a * b - a / 3) * 2 + 1', lambda a, b: (a * b - a / 3) * 2 + 1, **B)
case('op_bad_operand', "a + 'x'", err='arithmetic on a tensor and a string', a=I(2))
case('op_shape_mismatch', 'a + b', lambda a, b: a + b, err=['[2, 3]', '[2, 4]'], a=I(2, 3), b=I(2, 4))
case('add_alpha', 'a:add(b, 2)', lambda a, b: torch.add(a, b, alpha=2), **B)
case('add_scalar_alpha', 'a:add(1.5, 2)', lambda a: a + 3.0, a=I(3, 4))
case('sub_alpha', 'a:sub(b, 0.5)', lambda a, b: torch.sub(a, b, alpha=0.5), **B)
case('sub_scalar_method', 'a:sub(1.5)', lambda a: a - 1.5, a=I(3, 4))
case('mul_method', 'a:mul(b)', lambda a, b: a.mul(b), **B)
case('mul_method_scalar', 'a:mul(3)', lambda a: a.mul(3), a=I(3, 4))
case('div_method', 'a:div(b)', lambda a, b: a.div(b), **BP)
case('div_method_scalar', 'a:div(4)', lambda a: a.div(4), a=I(3, 4))
case('pow_method', 'b:pow(a)', lambda a, b: b.pow(a), **BP)
case('pow_method_scalar', 'b:pow(2.5)', lambda b: b.pow(2.5), b=I(3, 4, kind='pos'))
case('pow_module_fn', 'cfx.pow(b, 3)', lambda b: b.pow(3), b=I(3, 4))
case('neg_module_fn', 'cfx.neg(b)', lambda b: -b, b=I(3, 4))
IJ = dict(i=I(3, 4, dtype='int64', kind='int', lo=-5, hi=6), j=I(3, 4, dtype='int64', kind='int', lo=1, hi=6))
case('int_add', 'i + j', lambda i, j: i + j, **IJ)
case('int_sub_scalar', 'i - 2', lambda i: i - 2, **IJ)
case('int_mul_scalar', 'i * 3', lambda i: i * 3, **IJ)
case('int_true_div', 'i / j', lambda i, j: i / j, **IJ)
case('int_div_scalar', 'i:div(2)', lambda i: i.div(2), **IJ)
case('int_add_fraction', 'i + 1.5', lambda i: i + 1.5, **IJ)
case('int_mul_fraction', 'i * 0.25', lambda i: i * 0.25, **IJ)
case('int_pow', 'j ^ 2', lambda j: j ** 2, **IJ)
case('int_neg', '-i', lambda i: -i, **IJ)
case('int32_plus_float32', 'i + x', lambda i, x: i + x, i=I(3, 4, dtype='int32', kind='int', lo=-5, hi=5),
     x=I(3, 4))
case('uint8_plus_int8', 'u + s', lambda u, s: u + s, u=I(5, dtype='uint8', kind='int', lo=0, hi=100),
     s=I(5, dtype='int8', kind='int', lo=-100, hi=100))
case('bool_plus_int', 'b + i', lambda b, i: b + i, b=I(5, dtype='bool', kind='bool'),
     i=I(5, dtype='int64', kind='int', lo=0, hi=9))
case('f32_plus_f64', 'x + y', lambda x, y: x + y, x=I(3, 4), y=I(3, 4, dtype='float64'))
case('f32_plus_0d_f64', 'x + y', lambda x, y: x + y, x=I(3, 4), y=I(dtype='float64'))
case('f64_arith', 'x * y + x / (y * y + 1)', lambda x, y: x * y + x / (y * y + 1), x=I(3, 4, dtype='float64'),
     y=I(3, 4, dtype='float64'))
case('bf16_arith', 'x * y + x', lambda x, y: x * y + x, x=I(3, 4, dtype='bfloat16'), y=I(3, 4, dtype='bfloat16'))
case('f16_arith', 'x * y - x', lambda x, y: x * y - x, x=I(3, 4, dtype='float16'), y=I(3, 4, dtype='float16'))

# ---- in place -----------------------------------------------------------------------------
A4 = dict(a=I(3, 4), b=I(4), grad=False)
case('add_', 'local y = a:clone() local r = y:add_(b) return y, rawequal(r, y)', lambda a, b: (a + b, True), **A4)
case('add_alpha_', 'local y = a:clone() y:add_(b, -2) return y', lambda a, b: a.clone().add_(b, alpha=-2), **A4)
case('add_scalar_', 'local y = a:clone() y:add_(1.5) return y', lambda a: a + 1.5, a=I(3, 4), grad=False)
case('add_scalar_alpha_', 'local y = a:clone() y:add_(1.5, 2) return y', lambda a: a + 3, a=I(3, 4), grad=False)
case('sub_', 'local y = a:clone() y:sub_(b) return y', lambda a, b: a - b, **A4)
case('sub_alpha_', 'local y = a:clone() y:sub_(b, 3) return y', lambda a, b: a.clone().sub_(b, alpha=3), **A4)
case('sub_scalar_', 'local y = a:clone() y:sub_(0.5) return y', lambda a: a - 0.5, a=I(3, 4), grad=False)
case('sub_scalar_alpha_', 'local y = a:clone() y:sub_(0.5, 4) return y', lambda a: a - 2, a=I(3, 4), grad=False)
case('mul_', 'local y = a:clone() y:mul_(b) return y', lambda a, b: a * b, **A4)
case('mul_scalar_', 'local y = a:clone() y:mul_(-3) return y', lambda a: a * -3, a=I(3, 4), grad=False)
case('div_', 'local y = a:clone() y:div_(b) return y', lambda a, b: a / b, a=I(3, 4), b=I(4, kind='pos'),
     grad=False)
case('div_scalar_', 'local y = a:clone() y:div_(8) return y', lambda a: a / 8, a=I(3, 4), grad=False)
case('addcmul_', 'local y = a:clone() y:addcmul_(b, c, 0.5) return y',
     lambda a, b, c: a.clone().addcmul_(b, c, value=0.5), a=I(3, 4), b=I(3, 4), c=I(4), grad=False)
case('addcmul_default', 'local y = a:clone() y:addcmul_(b, c) return y', lambda a, b, c: a + b * c,
     a=I(3, 4), b=I(3, 4), c=I(3, 4), grad=False)
case('addcdiv_', 'local y = a:clone() y:addcdiv_(b, c, -2) return y',
     lambda a, b, c: a.clone().addcdiv_(b, c, value=-2), a=I(3, 4), b=I(3, 4), c=I(3, 4, kind='pos'), grad=False)
case('addcdiv_default', 'local y = a:clone() y:addcdiv_(b, c) return y', lambda a, b, c: a + b / c,
     a=I(3, 4), b=I(3, 4), c=I(3, 4, kind='pos'), grad=False)
case('lerp_', 'local y = a:clone() y:lerp_(b, 0.3) return y', lambda a, b: a.clone().lerp_(b, 0.3),
     a=I(3, 4), b=I(3, 4), grad=False)
case('lerp_broadcast', 'local y = a:clone() y:lerp_(b, 0.75) return y', lambda a, b: a.clone().lerp_(b, 0.75),
     **A4)
case('clamp_', 'local y = a:clone() y:clamp_(-0.5, 0.5) return y', lambda a: a.clamp(-0.5, 0.5), a=I(3, 4),
     grad=False)
case('clamp_min_only_', 'local y = a:clone() y:clamp_(0) return y', lambda a: a.clamp(min=0), a=I(3, 4),
     grad=False)
case('clamp_max_only_', 'local y = a:clone() y:clamp_(nil, 0.1) return y', lambda a: a.clamp(max=0.1), a=I(3, 4),
     grad=False)
case('fill_', 'local y = a:clone() y:fill_(3.5) return y', lambda a: torch.full_like(a, 3.5), a=I(3, 4),
     grad=False)
case('fill_int', 'local y = i:clone() y:fill_(-7) return y', lambda i: torch.full_like(i, -7),
     i=I(3, dtype='int16', kind='int', lo=0, hi=5))
case('fill_bool', 'local y = b:clone() y:fill_(1) return y', lambda b: torch.ones_like(b),
     b=I(4, dtype='bool', kind='bool'))
case('zero_', 'local y = a:clone() y:zero_() return y', lambda a: torch.zeros_like(a), a=I(3, 4), grad=False)
case('copy_', 'local y = a:clone() y:copy_(b) return y', lambda a, b: b.expand(3, 4), **A4)
case('copy_convert', 'local y = a:clone() y:copy_(d) return y', lambda a, d: d.float(), a=I(3, 4),
     d=I(3, 4, dtype='float64'), grad=False)
case('copy_from_int', 'local y = a:clone() y:copy_(i) return y', lambda a, i: i.float(), a=I(3, 4),
     i=I(3, 4, dtype='int32', kind='int', lo=-9, hi=9), grad=False)
case('copy_bad_shape', 'local y = a:clone() y:copy_(b)', lambda a, b: a.clone().copy_(b),
     err=['copy_', '[3, 4]', '[5]'], a=I(3, 4), b=I(5), grad=False)
case('inplace_int_float_scalar', 'local y = i:clone() y:add_(1.5)', lambda i: i.clone().add_(1.5),
     err="can't be cast", i=I(3, dtype='int64', kind='int', lo=0, hi=5))
case('inplace_leaf_requires_grad', 'a:add_(1)', lambda a: a.add_(1), err='leaf', a=I(3, rg=True))
case('inplace_autograd', 'local y = a * 1 y:mul_(b) y:add_(c, 2) y:div_(2) y:sub_(a) return y',
     lambda a, b, c: seq(y := a * 1, y.mul_(b), y.add_(c, alpha=2), y.div_(2), y.sub_(a), y),
     a=I(3, 4), b=I(3, 4), c=I(4))
case('inplace_autograd_scalar', 'local y = a * 1 y:mul_(3) y:add_(2) y:clamp_(-1, 1) return y',
     lambda a: seq(y := a * 1, y.mul_(3), y.add_(2), y.clamp_(-1, 1), y), a=I(3, 4))

# ==== comparisons, where, clamp, min/max ==========================================================
TI = dict(x=I(3, 4, kind='ties', lo=-2, hi=3), y=I(3, 4, kind='ties', lo=-2, hi=3))
for op in ['eq', 'ne', 'lt', 'le', 'gt', 'ge']:
    case('cmp_' + op, 'x:%s(y)' % op, lambda x, y, op=op: getattr(x, op)(y), **TI)
    case('cmp_%s_scalar' % op, 'x:%s(1)' % op, lambda x, op=op: getattr(x, op)(1), **TI)
    case('cmp_%s_broadcast' % op, 'x:%s(z)' % op, lambda x, z, op=op: getattr(x, op)(z),
         x=I(3, 4, kind='ties', lo=-2, hi=3), z=I(4, kind='ties', lo=-2, hi=3))
case('cmp_int_float', 'i:lt(x)', lambda i, x: i.lt(x), i=I(3, 4, dtype='int32', kind='int', lo=-2, hi=2),
     x=I(3, 4))
case('cmp_fractional_scalar', 'x:gt(0.5)', lambda x: x.gt(0.5), x=I(3, 4))
case('equal_dtypes', 'x == x:double(), x:equal(x:double())', lambda x: (torch.equal(x, x.double()),) * 2,
     x=I(3, 4, kind='ties', lo=-2, hi=3), grad=False)
case('equal_op', 'x == x:clone(), x == y, x == x:reshape(4, 3), x:equal(x:clone()), cfx.equal(x, y)',
     lambda x, y: (True, False, False, True, False), x=I(3, 4), y=I(3, 4))
case('allclose', 'x:allclose(x + 1e-7), x:allclose(x + 1e-2), x:allclose(x + 1e-2, 0, 0.1), cfx.allclose(x, x)',
     lambda x: (torch.allclose(x, x + 1e-7), torch.allclose(x, x + 1e-2), torch.allclose(x, x + 1e-2, 0, 0.1),
                True),
     x=I(3, 4), grad=False)
WH = dict(c=I(3, 4, dtype='bool', kind='bool'), a=I(3, 4), b=I(3, 4))
case('where', 'cfx.where(c, a, b)', lambda c, a, b: torch.where(c, a, b), **WH)
case('where_broadcast', 'cfx.where(c, a, b)', lambda c, a, b: torch.where(c, a, b),
     c=I(3, 1, dtype='bool', kind='bool'), a=I(1, 4), b=I(3, 4))
case('where_scalar_other', 'cfx.where(c, a, 0)', lambda c, a: torch.where(c, a, torch.tensor(0.0)), **WH)
case('where_scalar_input', 'cfx.where(c, 1.5, b)', lambda c, b: torch.where(c, torch.tensor(1.5), b), **WH)
case('where_method', 'a:where(c, b)', lambda c, a, b: a.where(c, b), **WH)
case('where_two_scalars', 'cfx.where(c, 1.5, -2)', lambda c: torch.where(c, 1.5, -2), **WH)
case('clamp_both', 'a:clamp(-0.5, 0.5)', lambda a: a.clamp(-0.5, 0.5), a=I(3, 4))
case('clamp_min', 'a:clamp(-0.5)', lambda a: a.clamp(min=-0.5), a=I(3, 4))
case('clamp_max', 'a:clamp(nil, 0.5)', lambda a: a.clamp(max=0.5), a=I(3, 4))
case('clamp_min_method', 'a:clamp_min(0)', lambda a: a.clamp_min(0), a=I(3, 4))
case('clamp_max_method', 'a:clamp_max(0.2)', lambda a: a.clamp_max(0.2), a=I(3, 4))
case('clamp_module_fn', 'cfx.clamp(a, -1, 1)', lambda a: a.clamp(-1, 1), a=I(3, 4))
case('clamp_int', 'i:clamp(-2, 3)', lambda i: i.clamp(-2, 3), i=I(3, 4, dtype='int64', kind='int', lo=-9, hi=9))
case('clamp_none', 'a:clamp()', err='give a min, a max or both', a=I(3))
case('maximum', 'a:maximum(b)', lambda a, b: torch.maximum(a, b), **B)
case('minimum', 'a:minimum(b)', lambda a, b: torch.minimum(a, b), **B)
case('max_elementwise', 'a:max(b)', lambda a, b: torch.maximum(a, b), **B)
case('min_elementwise', 'a:min(b)', lambda a, b: torch.minimum(a, b), **B)
case('maximum_scalar', 'a:maximum(0)', lambda a: torch.maximum(a, torch.tensor(0.0)), a=I(3, 4))
case('maximum_module_fn', 'cfx.maximum(a, b), cfx.minimum(a, b)',
     lambda a, b: (torch.maximum(a, b), torch.minimum(a, b)), **B)
L2 = dict(p=I(3, 4, dtype='bool', kind='bool'), q=I(3, 4, dtype='bool', kind='bool'))
case('logical_and', 'p:logical_and(q)', lambda p, q: p.logical_and(q), **L2)
case('logical_or', 'p:logical_or(q)', lambda p, q: p.logical_or(q), **L2)
case('logical_not', 'p:logical_not()', lambda p: p.logical_not(), **L2)
case('logical_and_float', 'x:logical_and(y)', lambda x, y: x.logical_and(y), x=I(3, 4, kind='ties', lo=0, hi=2),
     y=I(3, 4, kind='ties', lo=0, hi=2))
case('isnan', 'x:isnan()', lambda x: x.isnan(), x=I(4, 5, kind='special'))
case('isfinite', 'x:isfinite()', lambda x: x.isfinite(), x=I(4, 5, kind='special'))
case('special_values_propagate', 'x * 2 + 1', lambda x: x * 2 + 1, x=I(4, 5, kind='special'), grad=False)


# ==== unary =======================================================================================
def torch_unary(name):
    return F.silu if name == 'silu' else getattr(torch, name)


UNARY = {  # name: input kind
    'neg': 'randn', 'exp': 'randn', 'log': 'pos', 'log1p': 'pos', 'sqrt': 'pos', 'rsqrt': 'pos', 'abs': 'randn',
    'sign': 'randn', 'floor': 'randn', 'ceil': 'randn', 'round': 'randn', 'sin': 'randn', 'cos': 'randn',
    'tanh': 'randn', 'sigmoid': 'randn', 'erf': 'randn', 'reciprocal': 'pos', 'square': 'randn', 'relu': 'randn',
    'silu': 'randn',
}
for name, kind in UNARY.items():
    case('unary_' + name, 'x:%s()' % name, lambda x, name=name: torch_unary(name)(x),
         x=I(4, 5, kind=kind, scale=2.0))
for name in ['exp', 'tanh', 'sigmoid', 'sqrt', 'log']:
    kind = UNARY[name]
    case('unary_f64_' + name, 'x:%s()' % name, lambda x, name=name: getattr(torch, name)(x),
         x=I(4, 5, dtype='float64', kind=kind))
    case('unary_bf16_' + name, 'x:%s()' % name, lambda x, name=name: getattr(torch, name)(x),
         x=I(4, 5, dtype='bfloat16', kind=kind))
for name in ['exp', 'log', 'sqrt', 'abs', 'tanh', 'sigmoid', 'erf', 'neg', 'relu']:
    case('module_fn_' + name, 'cfx.%s(x)' % name, lambda x, name=name: getattr(torch, name)(x),
         x=I(3, 4, kind=UNARY[name]))
case('round_half', 'x:round()', lambda x: torch.round(x), x=I(8, kind='fn', fn=lambda r, s: np.arange(8) - 3.5))
case('abs_int', 'i:abs()', lambda i: i.abs(), i=I(6, dtype='int32', kind='int', lo=-9, hi=9))
case('neg_int', 'i:neg()', lambda i: i.neg(), i=I(6, dtype='int64', kind='int', lo=-9, hi=9))
case('sqrt_int', 'i:sqrt()', lambda i: i.sqrt(), i=I(6, dtype='int64', kind='int', lo=0, hi=9))
case('log_negative_nan', 'x:log()', lambda x: x.log(), x=I(6), grad=False)
case('prod', 'x:prod()', lambda x: x.prod(), x=I(3, 4, kind='uniform', lo=0.5, hi=1.5))
case('prod_int', 'i:prod()', lambda i: i.prod(), i=I(5, dtype='int32', kind='int', lo=1, hi=5))
case('relu_F', 'F.relu(x)', lambda x: F.relu(x), x=I(3, 4))
case('silu_F', 'F.silu(x)', lambda x: F.silu(x), x=I(3, 4))
case('sigmoid_F', 'F.sigmoid(x)', lambda x: torch.sigmoid(x), x=I(3, 4))
case('tanh_F', 'F.tanh(x)', lambda x: torch.tanh(x), x=I(3, 4))
case('gelu_method', 'x:gelu()', lambda x: F.gelu(x), x=I(4, 5, scale=2))
case('gelu_method_tanh', "x:gelu('tanh')", lambda x: F.gelu(x, approximate='tanh'), x=I(4, 5, scale=2))
case('gelu_F', 'F.gelu(x)', lambda x: F.gelu(x), x=I(4, 5, scale=2))
case('gelu_F_none', "F.gelu(x, {approximate='none'})", lambda x: F.gelu(x, approximate='none'), x=I(4, 5))
case('gelu_F_tanh', "F.gelu(x, {approximate='tanh'})", lambda x: F.gelu(x, approximate='tanh'), x=I(4, 5, scale=2))
case('gelu_f64', 'x:gelu()', lambda x: F.gelu(x), x=I(4, 5, dtype='float64'))
case('gelu_bf16', 'x:gelu()', lambda x: F.gelu(x), x=I(4, 5, dtype='bfloat16'))
case('gelu_F_f64_tanh', "F.gelu(x, {approximate='tanh'})", lambda x: F.gelu(x, approximate='tanh'),
     x=I(4, 5, dtype='float64'))
case('gelu_tanh_differs', "(F.gelu(x, {approximate='tanh'}) - F.gelu(x)):abs():max():item() > 1e-4",
     lambda x: True, x=I(100, scale=2), grad=False)
case('gelu_bad', "F.gelu(x, {approximate='fast'})", err="approximate must be 'none' or 'tanh'", x=I(3))
case('gelu_unknown_option', "F.gelu(x, {aproximate='tanh'})", err="unknown option 'aproximate'", x=I(3))

# ==== reductions ==================================================================================
R = dict(x=I(3, 4, 5))
case('sum_all', 'x:sum()', lambda x: x.sum(), **R)
case('sum_dim', 'x:sum(2)', lambda x: x.sum(1), **R)
case('sum_dims', 'x:sum({1, 3})', lambda x: x.sum((0, 2)), **R)
case('sum_keepdim', 'x:sum(-1, true)', lambda x: x.sum(-1, keepdim=True), **R)
case('sum_all_keepdim', 'x:sum(nil, true)', lambda x: x.sum((0, 1, 2), keepdim=True), **R)
case('sum_module_fn', 'cfx.sum(x, 1)', lambda x: x.sum(0), **R)
case('sum_int32', 'i:sum(), i:sum(1)', lambda i: (i.sum(), i.sum(0)),
     i=I(3, 4, dtype='int32', kind='int', lo=-9, hi=9))
case('sum_bool', 'b:sum()', lambda b: b.sum(), b=I(20, dtype='bool', kind='bool'))
case('sum_bad_dim', 'x:sum(4)', err='dim 4 out of range', **R)
case('sum_zero_dim', 'x:sum(0)', err='1-based', **R)
case('mean_all', 'x:mean()', lambda x: x.mean(), **R)
case('mean_dim', 'x:mean(3)', lambda x: x.mean(2), **R)
case('mean_dims_keepdim', 'x:mean({1, 2}, true)', lambda x: x.mean((0, 1), keepdim=True), **R)
case('mean_module_fn', 'cfx.mean(x, -1)', lambda x: x.mean(-1), **R)
case('mean_int_error', 'i:mean()', lambda i: i.mean(), err='mean', i=I(3, dtype='int64', kind='int', lo=0, hi=3))
case('var_all', 'x:var()', lambda x: x.var(), **R)
case('var_dim', 'x:var(2)', lambda x: x.var(1), **R)
case('var_biased', 'x:var(2, false, 0)', lambda x: torch.var(x, 1, correction=0), **R)
case('var_keepdim_dims', 'x:var({1, 3}, true)', lambda x: x.var((0, 2), keepdim=True), **R)
case('var_correction_2', 'x:var(-1, false, 2)', lambda x: torch.var(x, -1, correction=2), **R)
case('std_correction_2', 'x:std(2, true, 2)', lambda x: torch.std(x, 1, correction=2, keepdim=True), **R)
case('var_correction_3_all', 'x:var(nil, false, 3)', lambda x: torch.var(x, (0, 1, 2), correction=3), **R)
case('std_all', 'x:std()', lambda x: x.std(), **R)
case('std_dim_keepdim', 'x:std(1, true)', lambda x: x.std(0, keepdim=True), **R)
case('std_biased', 'x:std(nil, false, 0)', lambda x: torch.std(x, unbiased=False), **R)
case('std_f64', 'x:std(2)', lambda x: x.std(1), x=I(3, 4, 5, dtype='float64'))
D = dict(x=I(3, 4, 5, kind='distinct'))
case('max_all', 'x:max()', lambda x: x.max(), **D)
case('min_all', 'x:min()', lambda x: x.min(), **D)
case('max_dim', 'x:max(2)', lambda x: (x.max(1).values, x.max(1).indices + 1), **D)
case('max_dim_keepdim', 'x:max(-1, true)', lambda x: (x.max(-1, True).values, x.max(-1, True).indices + 1), **D)
case('min_dim', 'x:min(1)', lambda x: (x.min(0).values, x.min(0).indices + 1), **D)
case('min_dim_keepdim', 'x:min(3, true)', lambda x: (x.min(2, True).values, x.min(2, True).indices + 1), **D)
case('max_module_fn', 'cfx.max(x, 3)', lambda x: (x.max(2).values, x.max(2).indices + 1), **D)
case('max_int', 'i:max(), i:max(1)', lambda i: (i.max(), i.max(0).values, i.max(0).indices + 1),
     i=I(4, 5, dtype='int32', kind='fn', fn=lambda r, s: r.permutation(20).reshape(s)))
case('argmax_all', 'x:argmax()', lambda x: x.argmax() + 1, **D)
case('argmin_all', 'x:argmin()', lambda x: x.argmin() + 1, **D)
case('argmax_dim', 'x:argmax(2)', lambda x: x.argmax(1) + 1, **D)
case('argmax_keepdim', 'x:argmax(-1, true)', lambda x: x.argmax(-1, keepdim=True) + 1, **D)
case('argmin_dim', 'x:argmin(1)', lambda x: x.argmin(0) + 1, **D)
case('argmax_module_fn', 'cfx.argmax(x, 3)', lambda x: x.argmax(2) + 1, **D)
case('argmax_ties_first', 'x:argmax(2)', lambda x: x.argmax(1) + 1,
     x=I(2, 6, kind='fn', fn=lambda r, s: np.array([[0, 3, 1, 3, 3, 2], [5, 5, 0, 0, 1, 5]])))
case('topk', 'x:topk(3)', lambda x: (x.topk(3).values, x.topk(3).indices + 1), **D)
case('topk_dim', 'x:topk(2, 1)', lambda x: (x.topk(2, 0).values, x.topk(2, 0).indices + 1), **D)
case('topk_smallest', 'x:topk(2, 2, false)', lambda x: (x.topk(2, 1, largest=False).values,
                                                        x.topk(2, 1, largest=False).indices + 1), **D)
case('topk_unsorted',
     'local v, i = x:topk(3, -1, true, false) local s, j = v:sort(-1, true) return s, i:gather(3, j)',
     lambda x: (x.topk(3).values, x.topk(3).indices + 1), **D)
case('topk_module_fn', 'cfx.topk(x, 1, 2)', lambda x: (x.topk(1, 1).values, x.topk(1, 1).indices + 1), **D)
case('topk_too_many', 'x:topk(9)', lambda x: x.topk(9), err='topk', **D)
case('sort_default', 'x:sort()', lambda x: (x.sort().values, x.sort().indices + 1), **D)
case('sort_dim', 'x:sort(1)', lambda x: (x.sort(0).values, x.sort(0).indices + 1), **D)
case('sort_descending', 'x:sort(2, true)', lambda x: (x.sort(1, True).values, x.sort(1, True).indices + 1), **D)
case('sort_module_fn', 'cfx.sort(x, -1, true)', lambda x: (x.sort(-1, True).values, x.sort(-1, True).indices + 1),
     **D)
case('sort_stable_ties', 'x:sort(-1, false, true)',
     lambda x: (x.sort(stable=True).values, x.sort(stable=True).indices + 1), x=I(3, 10, kind='ties', lo=0, hi=3))
case('sort_stable_ties_descending', 'x:sort(2, true, true)',
     lambda x: (x.sort(dim=1, descending=True, stable=True).values,
                x.sort(dim=1, descending=True, stable=True).indices + 1),
     x=I(3, 10, kind='ties', lo=0, hi=3))
case('argsort', 'x:argsort()', lambda x: x.sort(stable=True).indices + 1, x=I(3, 10, kind='ties', lo=0, hi=3))
case('argsort_descending', 'x:argsort(1, true)', lambda x: x.sort(dim=0, descending=True, stable=True).indices + 1,
     x=I(6, 3, kind='ties', lo=0, hi=3))
case('sort_int', 'i:sort()', lambda i: (i.sort(stable=True).values, i.sort(stable=True).indices + 1),
     i=I(12, dtype='int64', kind='fn', fn=lambda r, s: r.permutation(12)))
# The same ops without the gradient: values and 1-based indices.
for name, lua, py in [
        ('max_dim', 'x:max(2)', lambda x: (x.max(1).values, x.max(1).indices + 1)),
        ('min_dim_keepdim', 'x:min(3, true)', lambda x: (x.min(2, True).values, x.min(2, True).indices + 1)),
        ('topk', 'x:topk(3)', lambda x: (x.topk(3).values, x.topk(3).indices + 1)),
        ('topk_smallest', 'x:topk(2, 2, false)', lambda x: (x.topk(2, 1, largest=False).values,
                                                             x.topk(2, 1, largest=False).indices + 1)),
        ('sort_dim', 'x:sort(1)', lambda x: (x.sort(0).values, x.sort(0).indices + 1)),
        ('sort_descending', 'x:sort(2, true)', lambda x: (x.sort(1, True).values, x.sort(1, True).indices + 1))]:
    case(name + '_forward', lua, py, grad=False, **D)
case('norm_default', 'x:norm()', lambda x: torch.norm(x), **R)
case('norm_p1_dim', 'x:norm(1, 2)', lambda x: torch.norm(x, p=1, dim=1), **R)
case('norm_p2_dims', 'x:norm(2, {1, 3})', lambda x: torch.norm(x, p=2, dim=(0, 2)), **R)
case('norm_inf_keepdim', 'x:norm(math.huge, -1, true)',
     lambda x: torch.norm(x, p=float('inf'), dim=-1, keepdim=True), **D)
case('norm_p3', 'x:norm(3, 1)', lambda x: torch.norm(x, p=3, dim=0), **R)
case('logsumexp_dim', 'x:logsumexp(2)', lambda x: x.logsumexp(1), **R)
case('logsumexp_dims_keepdim', 'x:logsumexp({1, 3}, true)', lambda x: x.logsumexp((0, 2), keepdim=True), **R)
case('logsumexp_all', 'x:logsumexp()', lambda x: x.logsumexp((0, 1, 2)), **R)
case('logsumexp_large', 'x:logsumexp(1)', lambda x: x.logsumexp(0), x=I(4, 3, scale=100))
case('cumsum', 'x:cumsum(2)', lambda x: x.cumsum(1), **R)
case('cumsum_last', 'x:cumsum(-1)', lambda x: x.cumsum(-1), **R)
case('cumsum_int', 'i:cumsum(1)', lambda i: i.cumsum(0), i=I(6, dtype='int32', kind='int', lo=-9, hi=9))
case('reduce_f64', 'x:sum(1), x:mean(2), x:var(3), x:logsumexp(1)',
     lambda x: (x.sum(0), x.mean(1), x.var(2), x.logsumexp(0)), x=I(3, 4, 5, dtype='float64'))
case('reduce_bf16', 'x:sum(2)', lambda x: x.sum(1), x=I(3, 8, dtype='bfloat16'))

# ==== linear algebra ==============================================================================
case('matmul_2d', 'a:matmul(b)', lambda a, b: a @ b, a=I(3, 4), b=I(4, 5))
case('matmul_1d_1d', 'a:matmul(b)', lambda a, b: a @ b, a=I(4), b=I(4))
case('matmul_1d_2d', 'a:matmul(b)', lambda a, b: a @ b, a=I(4), b=I(4, 5))
case('matmul_2d_1d', 'a:matmul(b)', lambda a, b: a @ b, a=I(3, 4), b=I(4))
case('matmul_batched', 'a:matmul(b)', lambda a, b: a @ b, a=I(2, 3, 4), b=I(2, 4, 5))
case('matmul_broadcast', 'a:matmul(b)', lambda a, b: a @ b, a=I(2, 1, 3, 4), b=I(5, 4, 2))
case('matmul_3d_2d', 'cfx.matmul(a, b)', lambda a, b: a @ b, a=I(2, 3, 4), b=I(4, 5))
case('matmul_f64', 'a:matmul(b)', lambda a, b: a @ b, a=I(3, 4, dtype='float64'), b=I(4, 5, dtype='float64'))
case('matmul_bf16', 'a:matmul(b)', lambda a, b: a @ b, a=I(3, 4, dtype='bfloat16'), b=I(4, 5, dtype='bfloat16'),
     tol=2)
case('matmul_bf16_large', 'a:matmul(b)', lambda a, b: a @ b, a=I(64, 256, dtype='bfloat16'),
     b=I(256, 64, dtype='bfloat16'),
     tol=2, grad=False)
case('matmul_mismatch', 'a:matmul(b)', lambda a, b: a @ b, err=['matmul', '[3, 4]', '[5, 4]'], a=I(3, 4),
     b=I(5, 4))
case('mm', 'a:mm(b)', lambda a, b: a.mm(b), a=I(3, 4), b=I(4, 5))
case('mm_module_fn', 'cfx.mm(a, b)', lambda a, b: a.mm(b), a=I(3, 4), b=I(4, 2))
case('mm_3d_error', 'a:mm(b)', lambda a, b: a.mm(b), err='mm', a=I(2, 3, 4), b=I(4, 5))
case('bmm', 'a:bmm(b)', lambda a, b: a.bmm(b), a=I(2, 3, 4), b=I(2, 4, 5))
case('bmm_module_fn', 'cfx.bmm(a, b)', lambda a, b: a.bmm(b), a=I(3, 2, 4), b=I(3, 4, 2))
case('linear', 'F.linear(x, w, b)', lambda x, w, b: F.linear(x, w, b), x=I(4, 5), w=I(3, 5), b=I(3))
case('linear_nobias', 'F.linear(x, w)', lambda x, w: F.linear(x, w), x=I(4, 5), w=I(3, 5))
case('linear_3d', 'F.linear(x, w, b)', lambda x, w, b: F.linear(x, w, b), x=I(2, 4, 5), w=I(3, 5), b=I(3))
case('linear_mismatch', 'F.linear(x, w)', lambda x, w: F.linear(x, w), err=['linear', '[4, 5]', '[3, 6]'],
     x=I(4, 5), w=I(3, 6))
case('addmm', 'c:addmm(a, b)', lambda c, a, b: torch.addmm(c, a, b), c=I(3, 5), a=I(3, 4), b=I(4, 5))
case('addmm_beta_alpha', 'c:addmm(a, b, 0.5, 2)', lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2),
     c=I(3, 5), a=I(3, 4), b=I(4, 5))
case('addmm_broadcast', 'c:addmm(a, b, 1, -1)', lambda c, a, b: torch.addmm(c, a, b, alpha=-1), c=I(5), a=I(3, 4),
     b=I(4, 5))

# ==== convolution =================================================================================
CONV2D = [  # name, Lua options, torch keyword arguments, weight shape, with bias
    ('', '', {}, (6, 4, 3, 3), True),
    ('_stride', '{stride=2}', dict(stride=2), (6, 4, 3, 3), True),
    ('_padding', '{padding=1}', dict(padding=1), (6, 4, 3, 3), True),
    ('_padding_pair', '{padding={1, 2}}', dict(padding=(1, 2)), (6, 4, 3, 3), True),
    ('_stride_pair', '{stride={2, 1}}', dict(stride=(2, 1)), (6, 4, 3, 3), True),
    ('_dilation', '{dilation=2}', dict(dilation=2), (6, 4, 3, 3), True),
    ('_groups', '{groups=2}', dict(groups=2), (6, 2, 3, 3), True),
    ('_depthwise', '{groups=4, padding=1}', dict(groups=4, padding=1), (4, 1, 3, 3), True),
    ('_rect_kernel', '{padding={1, 0}}', dict(padding=(1, 0)), (6, 4, 3, 2), True),
    ('_everything', '{stride=2, padding=2, dilation=2, groups=2}', dict(stride=2, padding=2, dilation=2, groups=2),
     (6, 2, 3, 3), True),
    ('_nobias', '', {}, (6, 4, 3, 3), False),
    ('_nobias_opts', '{stride=2}', dict(stride=2), (6, 4, 3, 3), False),
]
# float32 is what models use; float64 takes libtorch's other (non-oneDNN) path, so the
# option plumbing stays covered whatever happens to the float32 kernels.
for dt, tol in [('float32', 10), ('float64', 1)]:
    sfx = '' if dt == 'float32' else '_f64'
    for name, lopts, kw, wshape, bias in CONV2D:
        args = 'x, w' + (', b' if bias else '') + (', ' + lopts if lopts else '')
        ins = dict(x=I(2, 4, 9, 9, dtype=dt), w=I(*wshape, dtype=dt))
        if bias:
            ins['b'] = I(wshape[0], dtype=dt)
        if bias:
            ref = lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw)  # noqa: E731
        else:
            ref = lambda x, w, kw=kw: F.conv2d(x, w, **kw)  # noqa: E731
        case('conv2d' + name + sfx, 'F.conv2d(%s)' % args, ref, tol=tol, **ins)
case('conv2d_bf16', 'F.conv2d(x, w)', lambda x, w: F.conv2d(x, w), x=I(1, 4, 9, 9, dtype='bfloat16'),
     w=I(6, 4, 3, 3, dtype='bfloat16'), grad=False)
case('conv2d_nil_bias_opts_f64', 'F.conv2d(x, w, nil, {padding=1})', lambda x, w: F.conv2d(x, w, padding=1),
     x=I(2, 4, 9, 9, dtype='float64'), w=I(6, 4, 3, 3, dtype='float64'))
case('conv2d_nil_bias_opts', 'F.conv2d(x, w, nil, {padding=1})', lambda x, w: F.conv2d(x, w, padding=1), tol=10,
     x=I(2, 4, 9, 9), w=I(6, 4, 3, 3))
CV = dict(x=I(2, 4, 9, 9), w=I(6, 4, 3, 3), b=I(6))
case('conv2d_unknown_option', 'F.conv2d(x, w, b, {strides=2})', err="conv2d: unknown option 'strides'", **CV)
case('conv2d_bad_channels', 'F.conv2d(x, w)', lambda x, w: F.conv2d(x, w),
     err=['conv2d', '[2, 3, 9, 9]', '[6, 4, 3, 3]'],
     x=I(2, 3, 9, 9), w=I(6, 4, 3, 3))
case('conv2d_bad_pair', 'F.conv2d(x, w, b, {stride={1, 2, 3}})', err='stride must be a number or a pair', **CV)
CT = dict(x=I(2, 4, 5, 5), w=I(4, 3, 3, 3), b=I(3))
case('conv_transpose2d', 'F.conv_transpose2d(x, w, b)', lambda x, w, b: F.conv_transpose2d(x, w, b), tol=10, **CT)
case('conv_transpose2d_stride', 'F.conv_transpose2d(x, w, b, {stride=2})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2), tol=10, **CT)
case('conv_transpose2d_output_padding', 'F.conv_transpose2d(x, w, b, {stride=2, padding=1, output_padding=1})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), tol=10, **CT)
case('conv_transpose2d_output_padding_pair', 'F.conv_transpose2d(x, w, b, {stride={2, 3}, output_padding={1, 2}})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), output_padding=(1, 2)), tol=10, **CT)
case('conv_transpose2d_groups', 'F.conv_transpose2d(x, w, b, {groups=2, stride=2})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, groups=2, stride=2), tol=10,
     x=I(2, 4, 5, 5), w=I(4, 3, 3, 3), b=I(6))
case('conv_transpose2d_dilation', 'F.conv_transpose2d(x, w, b, {dilation=2, padding=1})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, dilation=2, padding=1), tol=10, **CT)
case('conv_transpose2d_nobias', 'F.conv_transpose2d(x, w, {stride=2, output_padding=1})',
     lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1), tol=10, x=I(2, 4, 5, 5), w=I(4, 3, 3, 3))
case('conv_transpose2d_bad_output_padding', 'F.conv_transpose2d(x, w, b, {output_padding=1})',
     lambda x, w, b: F.conv_transpose2d(x, w, b, output_padding=1), err='conv_transpose2d', **CT)

# ==== pooling =====================================================================================
P = dict(x=I(2, 3, 9, 8, kind='distinct'))
case('max_pool2d', 'F.max_pool2d(x, 2)', lambda x: F.max_pool2d(x, 2), **P)
case('max_pool2d_stride', 'F.max_pool2d(x, 3, {stride=2})', lambda x: F.max_pool2d(x, 3, stride=2), **P)
case('max_pool2d_padding', 'F.max_pool2d(x, 3, {stride=2, padding=1})', lambda x: F.max_pool2d(x, 3, 2, 1), **P)
case('max_pool2d_pairs', 'F.max_pool2d(x, {3, 2}, {stride={2, 1}})', lambda x: F.max_pool2d(x, (3, 2), (2, 1)),
     **P)
case('max_pool2d_dilation', 'F.max_pool2d(x, 2, {dilation=2, stride=1})',
     lambda x: F.max_pool2d(x, 2, stride=1, dilation=2), **P)
case('max_pool2d_ceil', 'F.max_pool2d(x, 2, {ceil_mode=true})', lambda x: F.max_pool2d(x, 2, ceil_mode=True), **P)
case('max_pool2d_3d_input', 'F.max_pool2d(x, 2)', lambda x: F.max_pool2d(x, 2), x=I(3, 6, 6, kind='distinct'))
case('max_pool2d_unknown_option', 'F.max_pool2d(x, 2, {strid=1})', err="unknown option 'strid'", **P)
case('avg_pool2d', 'F.avg_pool2d(x, 2)', lambda x: F.avg_pool2d(x, 2), **P)
case('avg_pool2d_padding', 'F.avg_pool2d(x, 3, {stride=2, padding=1})', lambda x: F.avg_pool2d(x, 3, 2, 1), **P)
case('avg_pool2d_exclude_pad', 'F.avg_pool2d(x, 3, {stride=2, padding=1, count_include_pad=false})',
     lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), **P)
case('avg_pool2d_ceil', 'F.avg_pool2d(x, 2, {ceil_mode=true})', lambda x: F.avg_pool2d(x, 2, ceil_mode=True), **P)
case('avg_pool2d_pairs', 'F.avg_pool2d(x, {2, 3}, {stride={1, 2}})', lambda x: F.avg_pool2d(x, (2, 3), (1, 2)),
     **P)
case('adaptive_avg_pool2d_1', 'F.adaptive_avg_pool2d(x, 1)', lambda x: F.adaptive_avg_pool2d(x, 1), **P)
case('adaptive_avg_pool2d_pair', 'F.adaptive_avg_pool2d(x, {4, 3})', lambda x: F.adaptive_avg_pool2d(x, (4, 3)),
     **P)
case('adaptive_avg_pool2d_uneven', 'F.adaptive_avg_pool2d(x, 5)', lambda x: F.adaptive_avg_pool2d(x, 5), **P)
case('adaptive_avg_pool2d_up', 'F.adaptive_avg_pool2d(x, {10, 11})', lambda x: F.adaptive_avg_pool2d(x, (10, 11)),
     **P)
case('adaptive_max_pool2d_1', 'F.adaptive_max_pool2d(x, 1)', lambda x: F.adaptive_max_pool2d(x, 1), **P)
case('adaptive_max_pool2d_pair', 'F.adaptive_max_pool2d(x, {4, 3})', lambda x: F.adaptive_max_pool2d(x, (4, 3)),
     **P)
case('adaptive_max_pool2d_uneven', 'F.adaptive_max_pool2d(x, 5)', lambda x: F.adaptive_max_pool2d(x, 5), **P)

# ==== normalization ===============================================================================
case('layer_norm', 'F.layer_norm(x, 6, w, b)', lambda x, w, b: F.layer_norm(x, (6,), w, b), x=I(2, 5, 6), w=I(6),
     b=I(6))
case('layer_norm_2d_shape', 'F.layer_norm(x, {5, 6}, w, b)', lambda x, w, b: F.layer_norm(x, (5, 6), w, b),
     x=I(2, 5, 6), w=I(5, 6), b=I(5, 6))
case('layer_norm_no_affine', 'F.layer_norm(x, {6})', lambda x: F.layer_norm(x, (6,)), x=I(2, 5, 6))
case('layer_norm_eps', 'F.layer_norm(x, 6, w, nil, 0.1)', lambda x, w: F.layer_norm(x, (6,), w, None, 0.1),
     x=I(2, 5, 6), w=I(6))
case('layer_norm_f64', 'F.layer_norm(x, 6, w, b)', lambda x, w, b: F.layer_norm(x, (6,), w, b),
     x=I(2, 5, 6, dtype='float64'), w=I(6, dtype='float64'), b=I(6, dtype='float64'))
case('layer_norm_bad_shape', 'F.layer_norm(x, 5)', lambda x: F.layer_norm(x, (5,)), err='layer_norm', x=I(2, 5, 6))
def bn_train(x, rm, rv, w=None, b=None, **kw):
    """Training-mode batch norm on copies of the running stats: (y, new mean, new var)."""
    m, v = rm.clone(), rv.clone()
    return F.batch_norm(x, m, v, w, b, training=True, **kw), m, v


BN = dict(x=I(4, 3, 5, 5), rm=I(3, rg=False), rv=I(3, kind='pos', rg=False), w=I(3), b=I(3))
BN_LUA = 'local m, v = rm:clone(), rv:clone() local y = F.batch_norm(%s) return y, m, v'
case('batch_norm_train', BN_LUA % 'x, m, v, w, b, true, 0.2',
     lambda x, rm, rv, w, b: bn_train(x, rm, rv, w, b, momentum=0.2), **BN)
case('batch_norm_train_default_momentum', BN_LUA % 'x, m, v, w, b, true', bn_train, **BN)
case('batch_norm_train_eps', BN_LUA % 'x, m, v, nil, nil, true, 0.5, 0.01',
     lambda x, rm, rv: bn_train(x, rm, rv, momentum=0.5, eps=0.01),
     x=I(4, 3, 5, 5), rm=I(3, rg=False), rv=I(3, kind='pos', rg=False))
case('batch_norm_train_2d', BN_LUA % 'x, m, v, w, b, true', bn_train,
     x=I(8, 3), rm=I(3, rg=False), rv=I(3, kind='pos', rg=False), w=I(3), b=I(3))
case('batch_norm_train_no_stats', 'F.batch_norm(x, nil, nil, w, b, true)',
     lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x=I(4, 3, 5, 5), w=I(3), b=I(3))
case('batch_norm_eval', 'F.batch_norm(x, rm, rv, w, b)', lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b),
     **BN)
case('batch_norm_eval_keeps_stats', BN_LUA % 'x, m, v, w, b, false',
     lambda x, rm, rv, w, b: (F.batch_norm(x, rm, rv, w, b), rm, rv), **BN)
case('batch_norm_eval_no_stats', 'F.batch_norm(x, nil, nil, w, b)', err='evaluation mode needs', x=I(4, 3, 5, 5),
     w=I(3), b=I(3))
case('group_norm', 'F.group_norm(x, 3, w, b)', lambda x, w, b: F.group_norm(x, 3, w, b), x=I(2, 6, 4, 4), w=I(6),
     b=I(6))
case('group_norm_no_affine', 'F.group_norm(x, 2)', lambda x: F.group_norm(x, 2), x=I(2, 6, 4, 4))
case('group_norm_eps', 'F.group_norm(x, 6, w, b, 0.5)', lambda x, w, b: F.group_norm(x, 6, w, b, 0.5),
     x=I(2, 6, 3, 3), w=I(6), b=I(6))
case('group_norm_3d', 'F.group_norm(x, 1)', lambda x: F.group_norm(x, 1), x=I(3, 4, 7))
case('group_norm_bad_groups', 'F.group_norm(x, 4)', lambda x: F.group_norm(x, 4), err='group_norm',
     x=I(2, 6, 4, 4))

# ==== softmax =====================================================================================
case('softmax', 'x:softmax(2)', lambda x: x.softmax(1), x=I(3, 4, 5))
case('softmax_F_last', 'F.softmax(x, -1)', lambda x: F.softmax(x, -1), x=I(3, 4, 5, scale=5))
case('softmax_module_fn', 'cfx.softmax(x, 1)', lambda x: x.softmax(0), x=I(3, 4, 5))
case('log_softmax', 'x:log_softmax(1)', lambda x: x.log_softmax(0), x=I(3, 4, 5))
case('log_softmax_F', 'F.log_softmax(x, -1)', lambda x: F.log_softmax(x, -1), x=I(3, 4, 5, scale=20))
case('log_softmax_module_fn', 'cfx.log_softmax(x, 3)', lambda x: x.log_softmax(2), x=I(3, 4, 5))
case('softmax_f64', 'x:softmax(-1)', lambda x: x.softmax(-1), x=I(3, 7, dtype='float64'))
case('softmax_bf16', 'x:softmax(-1)', lambda x: x.softmax(-1), x=I(3, 7, dtype='bfloat16'))
case('softmax_bad_dim', 'x:softmax(3)', err='dim 3 out of range', x=I(3, 4))
case('softmax_F_bad_dim', 'F.softmax(x, 3)', err='dim 3 out of range', x=I(3, 4))
case('softmax_F_missing_dim', 'F.softmax(x)', err='dim', x=I(3, 4))



# ==== dropout =====================================================================================
def check_dropout(p):
    def chk(outs, ins):
        y = outs[0]
        zero = float((y == 0).double().mean())
        assert abs(zero - p) < 0.01, 'fraction zeroed %.4f, expected %.2f' % (zero, p)
        kept = y[y != 0]
        want = torch.full_like(kept, 1 / (1 - p))
        assert torch.allclose(kept, want, rtol=1e-6), \
            'survivors %s, expected %g' % (kept.unique()[:5].tolist(), 1 / (1 - p))
        if len(outs) > 1:   # the gradient of sum(y) is the mask scaled: y itself, since x is ones
            assert torch.equal(outs[1], y), 'gradient is not mask / (1 - p)'
    return chk


case('dropout_p0_identity', 'F.dropout(x, 0)', lambda x: x, x=I(4, 5))
case('dropout_eval_identity', 'F.dropout(x, 0.5, false)', lambda x: x, x=I(4, 5))
case('dropout_eval_is_same_values', 'local y = F.dropout(x, 0.9, false) return y == x', lambda x: True, x=I(50),
     grad=False)
case('dropout_train_p03', 'cfx.manual_seed(21) return F.dropout(cfx.ones(100000), 0.3)', check=check_dropout(0.3))
case('dropout_train_default_p', 'cfx.manual_seed(22) return F.dropout(cfx.ones(100000))', check=check_dropout(0.5))
case('dropout_train_grad', 'cfx.manual_seed(23) local x = cfx.ones(20000, {requires_grad=true}) '
     'local y = F.dropout(x, 0.4) y:sum():backward() return y, x:grad()', check=check_dropout(0.4))
case('dropout_p1', 'F.dropout(x, 1)', lambda x: torch.zeros_like(x), x=I(4, 5), grad=False)
case('dropout_bad_p', 'F.dropout(x, 1.5)', err='p must be in [0, 1]', x=I(4))
case('dropout_f64', 'cfx.manual_seed(24) return F.dropout(cfx.ones(100000, {dtype="float64"}), 0.2)',
     check=check_dropout(0.2))



# ==== scaled dot-product attention ================================================================
def sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v, scale = 1/sqrt(d) unless given."""
    s = scale if scale is not None else 1 / math.sqrt(q.shape[-1])
    a = q @ k.transpose(-2, -1) * s
    if causal:
        keep = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        a = a.masked_fill(~keep, float('-inf'))
    if mask is not None:
        a = a.masked_fill(~mask, float('-inf')) if mask.dtype == torch.bool else a + mask
    return torch.softmax(a, -1) @ v


def _bool_mask(r, shape):
    m = r.random(shape) < 0.6
    m[..., 0] = True       # every query attends to something
    return m


QKV = dict(q=I(2, 3, 5, 8), k=I(2, 3, 6, 8), v=I(2, 3, 6, 7))
case('sdpa', 'F.scaled_dot_product_attention(q, k, v)', sdpa_ref, tol=5, **QKV)
case('sdpa_bool_mask', 'F.scaled_dot_product_attention(q, k, v, {attn_mask=m})',
     lambda q, k, v, m: sdpa_ref(q, k, v, m), tol=5, m=I(5, 6, dtype='bool', kind='fn', fn=_bool_mask), **QKV)
case('sdpa_bool_mask_batched', 'F.scaled_dot_product_attention(q, k, v, {attn_mask=m})',
     lambda q, k, v, m: sdpa_ref(q, k, v, m), tol=5,
     m=I(2, 1, 5, 6, dtype='bool', kind='fn', fn=_bool_mask), **QKV)
case('sdpa_float_mask', 'F.scaled_dot_product_attention(q, k, v, {attn_mask=m})',
     lambda q, k, v, m: sdpa_ref(q, k, v, m), tol=5, m=I(2, 1, 5, 6), **QKV)
case('sdpa_causal', 'F.scaled_dot_product_attention(q, k, v, {is_causal=true})',
     lambda q, k, v: sdpa_ref(q, k, v, causal=True), tol=5, q=I(2, 3, 5, 8), k=I(2, 3, 5, 8), v=I(2, 3, 5, 4))
case('sdpa_causal_rect', 'F.scaled_dot_product_attention(q, k, v, {is_causal=true})',
     lambda q, k, v: sdpa_ref(q, k, v, causal=True), tol=5, **QKV)
case('sdpa_scale', 'F.scaled_dot_product_attention(q, k, v, {scale=0.3})',
     lambda q, k, v: sdpa_ref(q, k, v, scale=0.3), tol=5, **QKV)
case('sdpa_3d', 'F.scaled_dot_product_attention(q, k, v)', sdpa_ref, tol=5, q=I(4, 5, 8), k=I(4, 6, 8),
     v=I(4, 6, 8))
case('sdpa_f64_mask', 'F.scaled_dot_product_attention(q, k, v, {attn_mask=m, is_causal=true})',
     lambda q, k, v, m: sdpa_ref(q, k, v, m, causal=True), q=I(2, 5, 4, dtype='float64'),
     k=I(2, 5, 4, dtype='float64'), v=I(2, 5, 4, dtype='float64'), m=I(5, 5, dtype='float64'))
case('sdpa_dropout_shape', 'cfx.manual_seed(3) local o = F.scaled_dot_product_attention(q, k, v, {dropout_p=0.5}) '
     'return o:shape()', lambda q, k, v: [2, 3, 5, 7], grad=False, **QKV)
case('sdpa_unknown_option', 'F.scaled_dot_product_attention(q, k, v, {mask=1})', err="unknown option 'mask'",
     **QKV)

# ==== losses ======================================================================================
BC = dict(x=I(4, 5, scale=2), t=I(4, 5, kind='uniform', lo=0, hi=1, rg=False))
case('bce_logits_mean', 'F.binary_cross_entropy_with_logits(x, t)',
     lambda x, t: F.binary_cross_entropy_with_logits(x, t), **BC)
case('bce_logits_sum', "F.binary_cross_entropy_with_logits(x, t, {reduction='sum'})",
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction='sum'), **BC)
case('bce_logits_none', "F.binary_cross_entropy_with_logits(x, t, {reduction='none'})",
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction='none'), **BC)
case('bce_logits_weight', 'F.binary_cross_entropy_with_logits(x, t, {weight=wt})',
     lambda x, t, wt: F.binary_cross_entropy_with_logits(x, t, weight=wt), wt=I(5, kind='pos', rg=False), **BC)
case('bce_logits_pos_weight', "F.binary_cross_entropy_with_logits(x, t, {pos_weight=pw, reduction='sum'})",
     lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction='sum'),
     pw=I(5, kind='pos', rg=False), **BC)
case('bce_logits_both', "F.binary_cross_entropy_with_logits(x, t, {weight=wt, pos_weight=pw, reduction='none'})",
     lambda x, t, wt, pw: F.binary_cross_entropy_with_logits(x, t, weight=wt, pos_weight=pw, reduction='none'),
     wt=I(4, 1, kind='pos', rg=False), pw=I(5, kind='pos', rg=False), **BC)
case('bce_logits_target_grad', 'F.binary_cross_entropy_with_logits(x, t)',
     lambda x, t: F.binary_cross_entropy_with_logits(x, t),
     x=I(4, 5), t=I(4, 5, kind='uniform', lo=0, hi=1, rg=True))
case('bce_logits_bad_reduction', "F.binary_cross_entropy_with_logits(x, t, {reduction='avg'})",
     err="reduction must be 'none', 'mean' or 'sum'", **BC)
CE = dict(x=I(6, 5), t=I(6, dtype='int64', kind='index', hi=5))
case('cross_entropy', 'F.cross_entropy(x, t)', lambda x, t: F.cross_entropy(x, t), **CE)
case('cross_entropy_sum', "F.cross_entropy(x, t, {reduction='sum'})",
     lambda x, t: F.cross_entropy(x, t, reduction='sum'), **CE)
case('cross_entropy_none', "F.cross_entropy(x, t, {reduction='none'})",
     lambda x, t: F.cross_entropy(x, t, reduction='none'), **CE)
case('cross_entropy_4d', 'F.cross_entropy(x, t)', lambda x, t: F.cross_entropy(x, t), x=I(2, 5, 3, 4),
     t=I(2, 3, 4, dtype='int64', kind='index', hi=5))
case('cross_entropy_int32_target', 'F.cross_entropy(x, t)', lambda x, t: F.cross_entropy(x, t.long()), x=I(6, 5),
     t=I(6, dtype='int32', kind='index', hi=5))
case('cross_entropy_f64', 'F.cross_entropy(x, t)', lambda x, t: F.cross_entropy(x, t), x=I(6, 5, dtype='float64'),
     t=I(6, dtype='int64', kind='index', hi=5))
case('cross_entropy_target_out_of_range', 'F.cross_entropy(x, t + 5)', err='cross_entropy', **CE)
case('cross_entropy_zero_target', 'F.cross_entropy(x, t * 0)', err='cross_entropy', **CE)
MS = dict(x=I(3, 4), y=I(3, 4))
case('mse_loss', 'F.mse_loss(x, y)', lambda x, y: F.mse_loss(x, y), **MS)
case('mse_loss_sum', "F.mse_loss(x, y, {reduction='sum'})", lambda x, y: F.mse_loss(x, y, reduction='sum'), **MS)
case('mse_loss_none', "F.mse_loss(x, y, {reduction='none'})", lambda x, y: F.mse_loss(x, y, reduction='none'),
     **MS)
case('mse_loss_unknown_option', "F.mse_loss(x, y, {reduce='sum'})", err="unknown option 'reduce'", **MS)

# ==== pad =========================================================================================
PD = dict(x=I(1, 2, 5, 6))
case('pad_constant_last', 'F.pad(x, {1, 2})', lambda x: F.pad(x, (1, 2)), **PD)
case('pad_constant_two', 'F.pad(x, {1, 2, 3, 0})', lambda x: F.pad(x, (1, 2, 3, 0)), **PD)
case('pad_constant_value', "F.pad(x, {1, 1, 1, 1}, {value=1.5})", lambda x: F.pad(x, (1, 1, 1, 1), value=1.5),
     **PD)
case('pad_constant_negative', 'F.pad(x, {-1, 0, 0, -2})', lambda x: F.pad(x, (-1, 0, 0, -2)), **PD)
case('pad_constant_three_dims', 'F.pad(x, {1, 1, 0, 1, 1, 0})', lambda x: F.pad(x, (1, 1, 0, 1, 1, 0)), **PD)
case('pad_reflect', "F.pad(x, {2, 1, 1, 2}, {mode='reflect'})", lambda x: F.pad(x, (2, 1, 1, 2), mode='reflect'),
     **PD)
case('pad_reflect_3d', "F.pad(x, {2, 2}, {mode='reflect'})", lambda x: F.pad(x, (2, 2), mode='reflect'),
     x=I(2, 5, 6))
case('pad_replicate', "F.pad(x, {1, 1, 2, 2}, {mode='replicate'})",
     lambda x: F.pad(x, (1, 1, 2, 2), mode='replicate'), **PD)
case('pad_circular', "F.pad(x, {1, 2, 1, 1}, {mode='circular'})",
     lambda x: F.pad(x, (1, 2, 1, 1), mode='circular'), **PD)
case('pad_reflect_too_big', "F.pad(x, {6, 6}, {mode='reflect'})", lambda x: F.pad(x, (6, 6), mode='reflect'),
     err='pad', **PD)
case('pad_bad_mode', "F.pad(x, {1, 1}, {mode='mirror'})", err='pad: mode must be', **PD)
case('pad_odd_count', 'F.pad(x, {1, 1, 1})', err='even', **PD)

# ==== interpolate =================================================================================
IP = dict(x=I(1, 2, 5, 6))
case('interp_nearest_size', "F.interpolate(x, {size={7, 9}})", lambda x: F.interpolate(x, size=(7, 9)), **IP)
case('interp_nearest_scale2', "F.interpolate(x, {scale_factor=2})", lambda x: F.interpolate(x, scale_factor=2),
     **IP)
case('interp_nearest_down', "F.interpolate(x, {size=3})", lambda x: F.interpolate(x, size=3), **IP)
case('interp_bilinear', "F.interpolate(x, {size={8, 10}, mode='bilinear'})",
     lambda x: F.interpolate(x, size=(8, 10), mode='bilinear', align_corners=False), **IP)
case('interp_bilinear_align', "F.interpolate(x, {size={8, 10}, mode='bilinear', align_corners=true})",
     lambda x: F.interpolate(x, size=(8, 10), mode='bilinear', align_corners=True), **IP)
case('interp_bilinear_scale2', "F.interpolate(x, {scale_factor=2, mode='bilinear'})",
     lambda x: F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False), **IP)
case('interp_bilinear_down', "F.interpolate(x, {size={3, 4}, mode='bilinear'})",
     lambda x: F.interpolate(x, size=(3, 4), mode='bilinear', align_corners=False), **IP)
case('interp_bilinear_antialias', "F.interpolate(x, {size={3, 4}, mode='bilinear', antialias=true})",
     lambda x: F.interpolate(x, size=(3, 4), mode='bilinear', align_corners=False, antialias=True), **IP)
case('interp_bilinear_antialias_align',
     "F.interpolate(x, {size={2, 3}, mode='bilinear', antialias=true, align_corners=true})",
     lambda x: F.interpolate(x, size=(2, 3), mode='bilinear', align_corners=True, antialias=True), **IP)
case('interp_bicubic', "F.interpolate(x, {size={8, 9}, mode='bicubic'})",
     lambda x: F.interpolate(x, size=(8, 9), mode='bicubic', align_corners=False), **IP)
case('interp_bicubic_align', "F.interpolate(x, {size={8, 9}, mode='bicubic', align_corners=true})",
     lambda x: F.interpolate(x, size=(8, 9), mode='bicubic', align_corners=True), **IP)
case('interp_bicubic_antialias', "F.interpolate(x, {size={2, 3}, mode='bicubic', antialias=true})",
     lambda x: F.interpolate(x, size=(2, 3), mode='bicubic', align_corners=False, antialias=True), **IP)
case('interp_area', "F.interpolate(x, {size={3, 4}, mode='area'})",
     lambda x: F.interpolate(x, size=(3, 4), mode='area'), **IP)
case('interp_linear_1d', "F.interpolate(x, {size=11, mode='linear', align_corners=true})",
     lambda x: F.interpolate(x, size=11, mode='linear', align_corners=True), x=I(1, 2, 7))
case('interp_nearest_1d', "F.interpolate(x, {size=11})", lambda x: F.interpolate(x, size=11), x=I(1, 2, 7))
case('interp_nearest_scale_frac', "F.interpolate(x, {scale_factor=1.5})",
     lambda x: F.interpolate(x, scale_factor=1.5), **IP)
case('interp_bilinear_scale_frac', "F.interpolate(x, {scale_factor=1.5, mode='bilinear'})",
     lambda x: F.interpolate(x, scale_factor=1.5, mode='bilinear', align_corners=False), **IP)
case('interp_bilinear_scale_pair', "F.interpolate(x, {scale_factor={2, 3}, mode='bilinear'})",
     lambda x: F.interpolate(x, scale_factor=(2, 3), mode='bilinear', align_corners=False), **IP)
case('interp_no_size', "F.interpolate(x, {mode='bilinear'})", err='give size or scale_factor', **IP)
case('interp_bad_mode', "F.interpolate(x, {size=3, mode='trilinear'})", err='interpolate: mode must be', **IP)
case('interp_nearest_antialias', "F.interpolate(x, {size=3, antialias=true})", err='antialias', **IP)

# ==== autograd ====================================================================================
G = dict(x=I(3, 4, rg=True), grad=False)
case('backward_scalar', 'local y = (x * x):sum() y:backward() return x:grad()',
     lambda x: seq((x * x).sum().backward(), x.grad), **G)
case('backward_gradient', 'local y = x * x y:backward(g) return x:grad()',
     lambda x, g: seq((x * x).backward(g), x.grad), x=I(3, 4, rg=True), g=I(3, 4, rg=False), grad=False)
case('backward_accumulates',
     'local y = (x * 3):sum() y:backward() local z = (x * x):sum() z:backward() return x:grad()',
     lambda x: seq((x * 3).sum().backward(), (x * x).sum().backward(), x.grad), **G)
case('backward_retain_graph',
     'local y = (x * x):sum() y:backward({retain_graph=true}) y:backward() return x:grad()',
     lambda x: seq(y := (x * x).sum(), y.backward(retain_graph=True), y.backward(), x.grad), **G)
case('backward_twice_error', 'local y = (x:exp()):sum() y:backward() y:backward()',
     lambda x: seq(y := x.exp().sum(), y.backward(), y.backward()), err='second time', **G)
case('backward_nonscalar_error', 'local y = x * 2 y:backward()', err='a gradient is needed', **G)
case('backward_wrong_gradient_shape', 'local y = x * 2 y:backward(cfx.ones(4, 3))',
     lambda x: (x * 2).backward(torch.ones(4, 3)), err=['backward', '[4, 3]'], **G)
case('backward_no_grad_error', 'local y = cfx.zeros(2) y:backward()', err='does not require grad')
case('backward_unknown_option', 'local y = (x * 2):sum() y:backward({retain=true})',
     err="unknown option 'retain'", **G)
def _second_derivative(x):
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.sum().backward()
    return g.detach(), x.grad


case('backward_create_graph', 'local y = (x ^ 3):sum() y:backward({create_graph=true}) local g = x:grad() '
     'x:set_grad(nil) g:sum():backward() return g:detach(), x:grad()', _second_derivative, **G)
case('grad_none_before_backward', 'x:grad() == nil', lambda x: True, **G)
case('grad_of_non_leaf_is_nil', 'local y = x * 2 (y * 3):sum():backward() return y:grad() == nil', lambda x: True,
     **G)
case('zero_grad_none', 'x:sum():backward() x:zero_grad() return x:grad() == nil', lambda x: True, **G)
case('zero_grad_zeros', 'x:sum():backward() x:zero_grad(false) return x:grad()', lambda x: torch.zeros_like(x),
     **G)
case('zero_grad_then_accumulate',
     '(x * 5):sum():backward(); x:zero_grad(false); (x * x):sum():backward() return x:grad()',
     lambda x: seq((x * 5).sum().backward(), x.grad.zero_(), (x * x).sum().backward(), x.grad), **G)
case('set_grad', 'x:set_grad(cfx.ones(3, 4)) return x:grad()', lambda x: torch.ones(3, 4), **G)
case('detach', 'local d = (x * 2):detach() return d:requires_grad(), d:is_leaf(), d',
     lambda x: seq(d := (x * 2).detach(), (d.requires_grad, d.is_leaf, d)), **G)
case('detach_', 'local y = x * 2 y:detach_() return y:requires_grad(), y:is_leaf()', lambda x: (False, True), **G)
case('detach_cuts_graph', 'local y = x:detach() * x y:sum():backward() return x:grad()', lambda x: x.detach(), **G)
case('requires_grad_',
     'local t = cfx.zeros(3) local r = t:requires_grad_() return t:requires_grad(), rawequal(r, t)',
     lambda: (True, True))
case('requires_grad_false',
     'local t = cfx.zeros(3, {requires_grad=true}) t:requires_grad_(false) return t:requires_grad()',
     lambda: False)
case('int_requires_grad_error', "cfx.zeros(3, {dtype='int64'}):requires_grad_()", err='requires_grad')
case('no_grad',
     'local y = cfx.no_grad(function() return x * 2 end) return y:requires_grad(), cfx.is_grad_enabled()',
     lambda x: (False, True), **G)
case('no_grad_inside', 'return cfx.no_grad(function() return cfx.is_grad_enabled() end)', lambda: False)
case('no_grad_args_results', 'local a, b = cfx.no_grad(function(p, q) return p + q, p * q end, x, 2) '
     'return a, b, a:requires_grad()', lambda x: without_grad(lambda: (x + 2, x * 2, (x + 2).requires_grad)), **G)
case('enable_grad_inside_no_grad', 'return cfx.no_grad(function() local a = cfx.is_grad_enabled() '
     'local y = cfx.enable_grad(function() return x * 2 end) return y:requires_grad(), a, cfx.is_grad_enabled(), '
     '(x * 2):requires_grad() end)', lambda x: (True, False, False, False), **G)
case('no_grad_restores_after_error', "local ok, e = pcall(cfx.no_grad, function() error('boom') end) "
     'return ok, cfx.is_grad_enabled(), e:match("boom") ~= nil', lambda: (False, True, True))
case('no_grad_error_passthrough', "cfx.no_grad(function() return x + cfx.zeros(5) end)", err=['[3, 4]', '[5]'],
     **G)
case('no_grad_not_function', 'cfx.no_grad(3)', err='expected a function')
case('set_grad_enabled', 'local a = cfx.set_grad_enabled(false) local b = (x * 2):requires_grad() '
     'local c = cfx.set_grad_enabled(true) return a, b, c, (x * 2):requires_grad()',
     lambda x: (True, False, False, True),
     **G)
case('grad_through_views', 'local y = x:t():reshape(-1):narrow(1, 2, 6); (y * y):sum():backward() return x:grad()',
     lambda x: seq(y := x.t().reshape(-1).narrow(0, 1, 6), (y * y).sum().backward(), x.grad), **G)
case('grad_two_leaves', 'local z = (x * y):sum() z:backward() return x:grad(), y:grad()',
     lambda x, y: seq((x * y).sum().backward(), (x.grad, y.grad)),
     x=I(3, 4, rg=True), y=I(3, 4, rg=True), grad=False)



# ==== autocast ====================================================================================
def under_autocast(fn):
    def run(**kw):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return fn(**kw)
    return run


AC = dict(a=I(8, 16), b=I(16, 4))
case('autocast_matmul', "cfx.autocast({dtype='bfloat16'}, function() return a:matmul(b) end)",
     under_autocast(lambda a, b: a @ b), **AC)
case('autocast_default_dtype', "cfx.autocast({}, function() return a:matmul(b) end)",
     under_autocast(lambda a, b: a @ b), **AC)
case('autocast_matmul_large', "cfx.autocast({}, function() return a:matmul(b) end)",
     under_autocast(lambda a, b: a @ b),
     a=I(64, 256), b=I(256, 64), grad=False)
case('autocast_close_to_fp32', "cfx.autocast({dtype='bfloat16'}, function() return a:matmul(b) end):float()",
     lambda a, b: a @ b, tol=(0.03, 0.03), grad=False, **AC)
case('autocast_linear', "cfx.autocast({}, function() return F.linear(x, w, b) end)",
     under_autocast(lambda x, w, b: F.linear(x, w, b)), x=I(4, 8), w=I(3, 8), b=I(3), tol=1)
case('autocast_conv2d', "cfx.autocast({}, function() return F.conv2d(x, w, nil, {padding=1}) end)",
     under_autocast(lambda x, w: F.conv2d(x, w, padding=1)), x=I(1, 3, 6, 6), w=I(4, 3, 3, 3), tol=2)
case('autocast_fp32_ops_stay',
     "cfx.autocast({}, function() return (a:matmul(b)):softmax(1):dtype(), a:exp():dtype() end)",
     under_autocast(lambda a, b: (dtype_name((a @ b).softmax(1).dtype), dtype_name(a.exp().dtype))),
     grad=False, **AC)
case('autocast_outside',
     "cfx.autocast({}, function() end) return a:matmul(b):dtype(), cfx.is_autocast_enabled('cpu')",
     lambda a, b: ('float32', False), grad=False, **AC)
case('autocast_enabled_inside', "cfx.autocast({}, function() return cfx.is_autocast_enabled('cpu') end)",
     lambda: True)
case('autocast_disabled', "cfx.autocast({enabled=false}, function() return a:matmul(b) end)", lambda a, b: a @ b,
     **AC)
case('autocast_nested', "cfx.autocast({}, function() cfx.autocast({}, function() end) "
     "return a:matmul(b):dtype(), cfx.is_autocast_enabled('cpu') end)", lambda a, b: ('bfloat16', True),
     grad=False, **AC)
case('autocast_restores_after_error', "local ok = pcall(cfx.autocast, {}, function() error('x') end) "
     "return ok, cfx.is_autocast_enabled('cpu'), a:matmul(b):dtype()", lambda a, b: (False, False, 'float32'),
     grad=False, **AC)
case('autocast_enter_exit', "cfx.autocast_enter('cpu') local d = a:matmul(b):dtype() cfx.autocast_exit('cpu') "
     "return d, a:matmul(b):dtype()", lambda a, b: ('bfloat16', 'float32'), grad=False, **AC)
if not torch.cuda.is_available():
    case('autocast_cuda_unavailable', "cfx.autocast({device='cuda'}, function() end)", err='CUDA is not available')
case('autocast_float16_cpu', "cfx.autocast({dtype='float16'}, function() end)", err='bfloat16 only')
case('autocast_unknown_option', "cfx.autocast({dtyp='bfloat16'}, function() end)", err="unknown option 'dtyp'")

# ==== runtime =====================================================================================
case('threads',
     'local old = cfx.threads() local a = cfx.threads(1) local b = cfx.threads() local c = cfx.threads(2) '
     'cfx.threads(old) return a, b, c, cfx.threads() == old', lambda: (1, 1, 2, True))
case('threads_bad', 'cfx.threads(0)', err='positive integer')
case('cpu_count', 'cfx.cpu_count()', lambda: len(os.sched_getaffinity(0)))
case('memory_fields', 'local m = cfx.memory() return type(m.live), type(m.peak), m.live >= 0, m.peak >= m.live',
     lambda: ('number', 'number', True, True))
case('memory_counts_allocation', 'collectgarbage() local before = cfx.memory().live local t = cfx.empty(1000000) '
     'local after = cfx.memory().live t = nil collectgarbage() return after - before, cfx.memory().live <= before',
     lambda: (4000000, True))
case('version', 'type(cfx.version), cfx.version:match("^%d+%.%d+%.%d+$") ~= nil', lambda: ('string', True))
case('cuda_queries', 'type(cfx.cuda.is_available()), type(cfx.cuda.device_count())', lambda: ('boolean', 'number'))
case('no_globals', 'local before = {} for k in pairs(_G) do before[k] = true end local x = cfx.zeros(2) + 1 '
     'x:sum():item() local new = {} for k in pairs(_G) do if not before[k] then new[#new + 1] = k end end '
     'return new',
     lambda: [])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:], EXPECTED_FAILURES))
