-- tensor.lua: the tensor type of cfx, a Lua object owning one libtorch tensor.
--
-- Methods are named as in PyTorch; dimensions and indices are 1-based (torch7's
-- convention) and negative dimensions count from the end (-1 is the last).  Index
-- tensors given to or returned by methods (index_select, gather, argmax, max, sort,
-- topk, cross_entropy targets) are 1-based too.  `t == u` is torch.equal (same shape
-- and values, a boolean); elementwise comparison is t:eq(u).
local core = require 'cfx.core'
local raise = core.raise
local ffi, C, check, options = core.ffi, core.C, core.check, core.options

local M = {}

local Tensor = {}         -- methods
local mt = {}
M.Tensor, M.mt = Tensor, mt

local out = ffi.new('cfx_tensor*[1]')    -- one out-slot reused by every call
local out2 = ffi.new('cfx_tensor*[1]')
local dbuf = ffi.new('int64_t[16]')      -- shape / dims arguments
local dbuf2 = ffi.new('int64_t[16]')
local pbuf = { ffi.new('int64_t[2]'), ffi.new('int64_t[2]'), ffi.new('int64_t[2]'),
  ffi.new('int64_t[2]') }
local dblbuf = ffi.new('double[1]')
local i64buf = ffi.new('int64_t[1]')
local intbuf = ffi.new('int[1]')
local free = C.cfx_tensor_free
local pressure = core.pressure
local MAXD = 16

-- A tensor is a cfx_lua_tensor box (one handle pointer) with this metatype; the box's
-- __gc frees the handle.  Wrap the handle just written to out[0] (or p).
local Box
local function wrap(p)
  local t = Box(p or out[0])
  pressure()
  return t
end
M.wrap = wrap

local function is_tensor(x) return ffi.istype(Box, x) end
M.is_tensor = is_tensor

-- The C handle of a tensor argument, or a clear error naming the argument.
local function H(x, what)
  if ffi.istype(Box, x) then return x.h end
  raise(('expected a tensor for %s, got %s'):format(what or 'argument', type(x)))
end

local function ndim(t) return C.cfx_tensor_ndim(t.h) end

-- 1-based (or negative) Lua dim -> 0-based C dim, checked against n dims.
local function cdim(d, n, what)
  if type(d) ~= 'number' or d % 1 ~= 0 then
    raise(('%s must be an integer dimension, got %s'):format(what or 'dim', tostring(d)))
  end
  local m = math.max(n, 1)
  if d >= 1 and d <= m then return d - 1 end
  if d < 0 and d >= -m then return d end
  raise(('%s %d out of range for a %d-d tensor (dims are 1-based; -1 is the last)')
    :format(what or 'dim', d, n))
end

-- A shape from a table {2, 3} or from varargs 2, 3 into buf; returns buf, n.
local function shape_arg(buf, first, ...)
  local src = type(first) == 'table' and first or { first, ... }
  if is_tensor(first) then src = first:shape() end
  local n = #src
  if n > MAXD then raise(('at most %d dimensions, got %d'):format(MAXD, n)) end
  for i = 1, n do
    local v = src[i]
    if type(v) ~= 'number' or v % 1 ~= 0 then
      raise(('shape entries must be integers, got %s at position %d'):format(tostring(v), i))
    end
    buf[i - 1] = v
  end
  return buf, n
end

-- Dims of a reduction: nil = all; a number or a table of numbers (1-based).
local function dims_arg(t, d)
  if d == nil then return nil, 0 end
  local n = ndim(t)
  if type(d) == 'number' then
    dbuf2[0] = cdim(d, n)
    return dbuf2, 1
  end
  for i = 1, #d do dbuf2[i - 1] = cdim(d[i], n) end
  return dbuf2, #d
end

-- A pair argument (number or {a, b}) into pbuf[k].
local function pair(k, v, what)
  if v == nil then return nil end
  local b = pbuf[k]
  if type(v) == 'number' then
    b[0], b[1] = v, v
  elseif type(v) == 'table' and #v == 2 then
    b[0], b[1] = v[1], v[2]
  else
    raise(('%s must be a number or a pair {a, b}, got %s'):format(what, tostring(v)))
  end
  return b
end
M.pair = pair


-- ---- creation ----------------------------------------------------------------------
local function creation_opts(opts, fname)
  local o = options(opts, { dtype = 'float32', device = 'cpu', requires_grad = false }, fname)
  return core.dtype_code(o.dtype), core.device_code(o.device), o.requires_grad
end

-- split (shape..., opts) varargs: a trailing table that is not a shape is options
local function shape_and_opts(...)
  local n = select('#', ...)
  local last = select(n, ...)
  if n >= 1 and type(last) == 'table' and not is_tensor(last) and (last[1] == nil) and
      (n > 1 or next(last) ~= nil) then
    if n == 1 then return {}, last end
    local shp = { ... }
    shp[n] = nil
    if n == 2 and type(shp[1]) == 'table' then shp = shp[1] end
    return shp, last
  end
  if n == 1 and type(last) == 'table' then return last, nil end
  return { ... }, nil
end

local function finish(t, rg)
  if rg then check(C.cfx_tensor_requires_grad_(t.h, 1)) end
  return t
end

for _, name in ipairs { 'empty', 'zeros', 'ones', 'rand', 'randn' } do
  local f = C['cfx_tensor_' .. name]
  M[name] = function(...)
    local shp, opts = shape_and_opts(...)
    local dt, dev, rg = creation_opts(opts, name)
    local buf, n = shape_arg(dbuf, shp)
    check(f(buf, n, dt, dev, out))
    return finish(wrap(), rg)
  end
end

function M.full(shp, value, opts)
  local dt, dev, rg = creation_opts(opts, 'full')
  local buf, n = shape_arg(dbuf, shp)
  check(C.cfx_tensor_full(buf, n, value, dt, dev, out))
  return finish(wrap(), rg)
end

-- cfx.randint(low, high, shape [, opts]): integers in [low, high); default int64.
function M.randint(low, high, shp, opts)
  local o = options(opts, { dtype = 'int64', device = 'cpu' }, 'randint')
  local buf, n = shape_arg(dbuf, shp)
  check(C.cfx_tensor_randint(low, high, buf, n, core.dtype_code(o.dtype),
    core.device_code(o.device), out))
  return wrap()
end

-- cfx.randperm(n): a random permutation of 1..n (1-based, int64).
function M.randperm(n, opts)
  local o = options(opts, { dtype = 'int64', device = 'cpu' }, 'randperm')
  check(C.cfx_tensor_randperm(n, core.dtype_code(o.dtype), core.device_code(o.device), out))
  local p = wrap()
  check(C.cfx_tensor_add_scalar_(p.h, 1))
  return p
end

-- cfx.arange(stop) / arange(start, stop [, step] [, opts]): start, start+step, ... < stop,
-- as PyTorch (values, not indices).  Default dtype: int64 if all arguments are
-- integers, else float32.
function M.arange(a, b, c, d)
  local start, stop, step, opts
  if type(b) ~= 'number' then start, stop, step, opts = 0, a, 1, b
  elseif type(c) ~= 'number' then start, stop, step, opts = a, b, 1, c
  else start, stop, step, opts = a, b, c, d end
  local integral = start % 1 == 0 and stop % 1 == 0 and step % 1 == 0
  local o = options(opts, { dtype = integral and 'int64' or 'float32', device = 'cpu',
    requires_grad = false }, 'arange')
  check(C.cfx_tensor_arange(start, stop, step, core.dtype_code(o.dtype),
    core.device_code(o.device), out))
  return finish(wrap(), o.requires_grad)
end

-- Shape of a nested Lua table, checking that it is rectangular.
local function nested_shape(tbl)
  local shp = {}
  local x = tbl
  while type(x) == 'table' do
    shp[#shp + 1] = #x
    x = x[1]
  end
  return shp, type(x)
end

local function flatten_into(buf, tbl, shp, depth, pos, path)
  local n = shp[depth]
  if #tbl ~= n then
    raise(('cfx.tensor: ragged nested table: %s has %d entries, expected %d')
      :format(path, #tbl, n))
  end
  if depth == #shp then
    for i = 1, n do
      local v = tbl[i]
      if type(v) == 'boolean' then v = v and 1 or 0 end
      if type(v) ~= 'number' then
        raise(('cfx.tensor: %s[%d] is a %s, expected a number'):format(path, i, type(v)))
      end
      buf[pos] = v
      pos = pos + 1
    end
  else
    for i = 1, n do
      if type(tbl[i]) ~= 'table' then
        raise(('cfx.tensor: ragged nested table: %s[%d] is a %s, expected a table')
          :format(path, i, type(tbl[i])))
      end
      pos = flatten_into(buf, tbl[i], shp, depth + 1, pos, path .. '[' .. i .. ']')
    end
  end
  return pos
end

-- cfx.tensor(nested_table | number [, {dtype=, device=, requires_grad=}]).
-- Default dtype float32 (bool when the leaves are booleans).
function M.tensor(data, opts)
  if is_tensor(data) then return data:clone() end
  local shp, leaf
  if type(data) == 'number' or type(data) == 'boolean' then
    shp, leaf = {}, type(data)
    data = { data }
  elseif type(data) == 'table' then
    shp, leaf = nested_shape(data)
  else
    raise(('cfx.tensor: expected a number or a nested table of numbers, got %s'):format(type(data)))
  end
  local o = options(opts, { dtype = leaf == 'boolean' and 'bool' or 'float32', device = 'cpu',
    requires_grad = false }, 'cfx.tensor')
  local n = 1
  for i = 1, #shp do n = n * shp[i] end
  local buf = ffi.new('double[?]', math.max(n, 1))
  if #shp == 0 then
    local v = data[1]
    buf[0] = type(v) == 'boolean' and (v and 1 or 0) or v
  elseif n > 0 then
    flatten_into(buf, data, shp, 1, 0, 'data')
  end
  local b, nd = shape_arg(dbuf, shp)
  check(C.cfx_tensor_from_data(buf, b, nd, 7, out))
  local t = wrap()
  local dt, dev = core.dtype_code(o.dtype), core.device_code(o.device)
  if dt ~= 7 or dev ~= -1 then
    check(C.cfx_tensor_to(t.h, dt, dev, 0, 0, out))
    t = wrap()
  end
  return finish(t, o.requires_grad)
end

-- cfx.from_buffer(ptr, shape, dtype): a new CPU tensor holding a copy of the memory
-- at ptr (any FFI pointer or a Lua string).
function M.from_buffer(ptr, shp, dtype)
  local b, nd = shape_arg(dbuf, shp)
  local code = core.dtype_code(dtype or 'float32')
  if type(ptr) == 'string' then
    local n = C.cfx_dtype_size(code)
    for i = 0, nd - 1 do n = n * tonumber(b[i]) end
    if #ptr ~= n then
      raise(('from_buffer: string holds %d bytes, shape needs %d'):format(#ptr, n))
    end
  end
  check(C.cfx_tensor_from_data(ptr, b, nd, code, out))
  return wrap()
end

-- cfx.from_blob(ptr, shape, dtype [, release [, strides]]): a CPU tensor over the
-- caller's memory, without copy.  release (a C function pointer or nil) is called
-- with NULL once libtorch no longer uses the memory; the caller keeps ptr alive.
function M.from_blob(ptr, shp, dtype, release, strides)
  local b, nd = shape_arg(dbuf, shp)
  local s = nil
  if strides then s = shape_arg(dbuf2, strides) end
  check(C.cfx_tensor_from_blob(ptr, b, s, nd, core.dtype_code(dtype or 'float32'), release, nil, out))
  return wrap()
end

function M.zeros_like(t, opts) return M.zeros(t:shape(), opts or { dtype = t:dtype(), device = t:device() }) end
function M.ones_like(t, opts) return M.ones(t:shape(), opts or { dtype = t:dtype(), device = t:device() }) end
function M.full_like(t, v, opts) return M.full(t:shape(), v, opts or { dtype = t:dtype(), device = t:device() }) end
function M.rand_like(t) return M.rand(t:shape(), { dtype = t:dtype(), device = t:device() }) end
function M.randn_like(t) return M.randn(t:shape(), { dtype = t:dtype(), device = t:device() }) end

local function tensor_array(list, fname)
  if type(list) ~= 'table' or #list == 0 then
    raise(fname .. ': expected a non-empty list of tensors')
  end
  local arr = ffi.new('cfx_tensor*[?]', #list)
  for i = 1, #list do
    if not is_tensor(list[i]) then
      raise(('%s: element %d is a %s, expected a tensor'):format(fname, i, type(list[i])))
    end
    arr[i - 1] = list[i].h
  end
  return arr, #list
end

-- cfx.cat(list, dim=1), cfx.stack(list, dim=1)
function M.cat(list, dim)
  local arr, n = tensor_array(list, 'cat')
  check(C.cfx_tensor_cat(arr, n, cdim(dim or 1, ndim(list[1])), out))
  return wrap()
end
function M.stack(list, dim)
  local arr, n = tensor_array(list, 'stack')
  check(C.cfx_tensor_stack(arr, n, cdim(dim or 1, ndim(list[1]) + 1), out))
  return wrap()
end

-- ---- queries -------------------------------------------------------------------------
function Tensor:shape()
  local n = C.cfx_tensor_shape(H(self, 'self'), dbuf, MAXD)
  local s = {}
  for i = 1, n do s[i] = tonumber(dbuf[i - 1]) end
  return s
end
Tensor.sizes = Tensor.shape

-- cdim, made non-negative: an index into a shape or strides buffer.
local function cindex(d, n, what)
  local i = cdim(d, n, what)
  return i < 0 and i + n or i
end

function Tensor:size(d)
  if d == nil then return self:shape() end
  local n = C.cfx_tensor_shape(H(self, 'self'), dbuf, MAXD)
  return tonumber(dbuf[cindex(d, n)])
end

function Tensor:stride(d)
  local n = C.cfx_tensor_strides(H(self, 'self'), dbuf, MAXD)
  if d ~= nil then return tonumber(dbuf[cindex(d, n)]) end
  local s = {}
  for i = 1, n do s[i] = tonumber(dbuf[i - 1]) end
  return s
end

function Tensor:dim() return C.cfx_tensor_ndim(H(self, 'self')) end
Tensor.ndim = Tensor.dim
function Tensor:numel() return tonumber(C.cfx_tensor_numel(H(self, 'self'))) end
Tensor.nelement = Tensor.numel
function Tensor:dtype() return core.dtype_names[C.cfx_tensor_dtype(H(self, 'self'))] end
function Tensor:device() return core.device_name(C.cfx_tensor_device(H(self, 'self'))) end
function Tensor:is_contiguous() return C.cfx_tensor_is_contiguous(H(self, 'self')) ~= 0 end
function Tensor:requires_grad() return C.cfx_tensor_requires_grad(H(self, 'self')) ~= 0 end
function Tensor:is_leaf() return C.cfx_tensor_is_leaf(H(self, 'self')) ~= 0 end
function Tensor:is_floating_point() return core.float_dtypes[self:dtype()] == true end
function Tensor:element_size() return C.cfx_dtype_size(C.cfx_tensor_dtype(H(self, 'self'))) end
function Tensor:is_same(other) return C.cfx_tensor_is_same(H(self, 'self'), H(other, 'other')) ~= 0 end
function Tensor:is_pinned() return C.cfx_tensor_is_pinned(H(self, 'self')) ~= 0 end

function Tensor:item()
  local h = H(self, 'self')
  local dt = C.cfx_tensor_dtype(h)
  if dt == 8 then
    check(C.cfx_tensor_item(h, dblbuf))
    return dblbuf[0] ~= 0
  elseif dt <= 4 then
    check(C.cfx_tensor_item_int64(h, i64buf))
    return tonumber(i64buf[0])
  end
  check(C.cfx_tensor_item(h, dblbuf))
  return dblbuf[0]
end

-- Nested Lua tables of numbers (booleans for bool tensors); a 0-d tensor gives a number.
function Tensor:totable()
  local h = H(self, 'self')
  local isbool = C.cfx_tensor_dtype(h) == 8
  check(C.cfx_tensor_to(h, 7, -1, 0, 0, out))
  local d = ffi.gc(out[0], free)
  local n = tonumber(C.cfx_tensor_numel(d))
  local buf = ffi.new('double[?]', math.max(n, 1))
  check(C.cfx_tensor_copy_to(d, buf, n * 8))
  local shp = self:shape()
  local function conv(v) if isbool then return v ~= 0 end return v end
  if #shp == 0 then return conv(buf[0]) end
  local pos = 0
  local function build(depth)
    local r = {}
    if depth == #shp then
      for i = 1, shp[depth] do r[i] = conv(buf[pos]); pos = pos + 1 end
    else
      for i = 1, shp[depth] do r[i] = build(depth + 1) end
    end
    return r
  end
  return build(1)
end
Tensor.tolist = Tensor.totable

-- Copy the elements (row-major, the tensor's dtype) into a C buffer of nbytes.
function Tensor:copy_to(ptr, nbytes)
  check(C.cfx_tensor_copy_to(H(self, 'self'), ptr, nbytes))
end

-- Pointer to the first element of a CPU tensor, typed by dtype (e.g. float*).
local ctypes = { [0] = 'uint8_t*', 'int8_t*', 'int16_t*', 'int32_t*', 'int64_t*', 'uint16_t*',
  'float*', 'double*', 'bool*', 'uint16_t*' }
local vptr = ffi.new('void*[1]')
function Tensor:data_ptr()
  local h = H(self, 'self')
  check(C.cfx_tensor_data_ptr(h, vptr))
  return ffi.cast(ctypes[C.cfx_tensor_dtype(h)], vptr[0])
end

-- ---- conversion -------------------------------------------------------------------------
-- t:to('float64'), t:to('cuda'), t:to{dtype=, device=, non_blocking=, copy=}, t:to(other)
function Tensor:to(a, b)
  local h = H(self, 'self')
  local dt, dev, nb, cp = -1, C.cfx_tensor_device(h), 0, 0
  local function apply(v)
    if is_tensor(v) then
      dt, dev = C.cfx_tensor_dtype(v.h), C.cfx_tensor_device(v.h)
    elseif type(v) == 'table' then
      local o = options(v, { ['?dtype'] = true, ['?device'] = true, non_blocking = false, copy = false }, 'to')
      if o.dtype then dt = core.dtype_code(o.dtype) end
      if o.device then dev = core.device_code(o.device) end
      nb, cp = o.non_blocking and 1 or 0, o.copy and 1 or 0
    elseif type(v) == 'string' and core.dtype_codes[v] then
      dt = core.dtype_codes[v]
    elseif v ~= nil then
      dev = core.device_code(v)
    end
  end
  apply(a)
  apply(b)
  check(C.cfx_tensor_to(h, dt, dev, nb, cp, out))
  return wrap()
end
for name, dt in pairs { float = 'float32', double = 'float64', half = 'float16', bfloat16 = 'bfloat16',
  long = 'int64', int = 'int32', short = 'int16', byte = 'uint8', char = 'int8', bool = 'bool' } do
  local code = core.dtype_codes[dt]
  Tensor[name] = function(self)
    local h = H(self, 'self')
    check(C.cfx_tensor_to(h, code, C.cfx_tensor_device(h), 0, 0, out))
    return wrap()
  end
end
function Tensor:cpu() return self:to('cpu') end
-- t:pin_memory(): a copy in pinned memory, so that t:to{device=, non_blocking=true}
-- runs asynchronously; without a visible CUDA device, t itself (nothing to pin for).
function Tensor:pin_memory()
  check(C.cfx_tensor_pin_memory(H(self, 'self'), out))
  return wrap()
end
function Tensor:cuda(i) return self:to(i and ('cuda:' .. i) or 'cuda') end
function Tensor:type_as(other) return self:to(other:dtype()) end

-- ---- generated method families ---------------------------------------------------------
local function unary(name, cname)
  local f = C['cfx_tensor_' .. (cname or name)]
  Tensor[name] = function(self)
    check(f(H(self, 'self'), out))
    return wrap()
  end
end
for _, name in ipairs { 'neg', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'abs', 'sign', 'floor', 'ceil',
  'round', 'sin', 'cos', 'tanh', 'sigmoid', 'erf', 'reciprocal', 'square', 'relu', 'silu',
  'logical_not', 'isnan', 'isfinite', 'contiguous', 'clone', 'detach', 'prod' } do
  unary(name)
end

-- Binary ops accept a tensor or a number as the other operand.
local function binary(name, scalar_name)
  local ft = C['cfx_tensor_' .. name]
  local fs = C['cfx_tensor_' .. (scalar_name or name .. '_scalar')]
  Tensor[name] = function(self, other)
    local h = H(self, 'self')
    if type(other) == 'number' then
      check(fs(h, other, out))
    else
      check(ft(h, H(other, 'other'), out))
    end
    return wrap()
  end
end
for _, name in ipairs { 'mul', 'div', 'pow', 'eq', 'ne', 'lt', 'le', 'gt', 'ge' } do binary(name) end

local function tensor_of(x, like)
  if type(x) == 'number' or type(x) == 'boolean' then
    return M.full({}, type(x) == 'boolean' and (x and 1 or 0) or x,
      { dtype = like:dtype(), device = like:device() })
  end
  return x
end

for _, name in ipairs { 'maximum', 'minimum', 'logical_and', 'logical_or', 'matmul', 'mm', 'bmm' } do
  local f = C['cfx_tensor_' .. name]
  Tensor[name] = function(self, other)
    local h = H(self, 'self')
    check(f(h, H(tensor_of(other, self), 'other'), out))
    return wrap()
  end
end

-- t:add(other [, alpha]) = t + alpha * other;  t:sub(other [, alpha])
function Tensor:add(other, alpha)
  local h = H(self, 'self')
  if type(other) == 'number' then
    check(C.cfx_tensor_add_scalar(h, other * (alpha or 1), out))
  else
    check(C.cfx_tensor_add(h, H(other, 'other'), alpha or 1, out))
  end
  return wrap()
end
function Tensor:sub(other, alpha)
  local h = H(self, 'self')
  if type(other) == 'number' then
    check(C.cfx_tensor_sub_scalar(h, other * (alpha or 1), out))
  else
    check(C.cfx_tensor_sub(h, H(other, 'other'), alpha or 1, out))
  end
  return wrap()
end

-- ---- in place -------------------------------------------------------------------------
function Tensor:add_(other, alpha)
  local h = H(self, 'self')
  if type(other) == 'number' then check(C.cfx_tensor_add_scalar_(h, other * (alpha or 1)))
  else check(C.cfx_tensor_add_(h, H(other, 'other'), alpha or 1)) end
  return self
end
function Tensor:sub_(other, alpha)
  local h = H(self, 'self')
  if type(other) == 'number' then check(C.cfx_tensor_add_scalar_(h, -other * (alpha or 1)))
  else check(C.cfx_tensor_sub_(h, H(other, 'other'), alpha or 1)) end
  return self
end
-- t:mul_(other), t:div_(other): other a tensor or a number
for name, scalar_name in pairs { mul_ = 'mul_scalar_', div_ = 'div_scalar_' } do
  local ft, fs = C['cfx_tensor_' .. name], C['cfx_tensor_' .. scalar_name]
  Tensor[name] = function(self, other)
    local h = H(self, 'self')
    if type(other) == 'number' then check(fs(h, other)) else check(ft(h, H(other, 'other'))) end
    return self
  end
end
function Tensor:copy_(src)
  check(C.cfx_tensor_copy_(H(self, 'self'), H(src, 'src')))
  return self
end
function Tensor:fill_(v)
  check(C.cfx_tensor_fill_(H(self, 'self'), v))
  return self
end
function Tensor:zero_()
  check(C.cfx_tensor_zero_(H(self, 'self')))
  return self
end
function Tensor:addcmul_(a, b, value)
  check(C.cfx_tensor_addcmul_(H(self, 'self'), H(a, 'tensor1'), H(b, 'tensor2'), value or 1))
  return self
end
function Tensor:addcdiv_(a, b, value)
  check(C.cfx_tensor_addcdiv_(H(self, 'self'), H(a, 'tensor1'), H(b, 'tensor2'), value or 1))
  return self
end
function Tensor:lerp_(e, w)
  check(C.cfx_tensor_lerp_(H(self, 'self'), H(e, 'end'), w))
  return self
end
function Tensor:uniform_(lo, hi)
  check(C.cfx_tensor_uniform_(H(self, 'self'), lo or 0, hi or 1))
  return self
end
function Tensor:normal_(mean, std)
  check(C.cfx_tensor_normal_(H(self, 'self'), mean or 0, std or 1))
  return self
end

local function clamp_args(lo, hi)
  local which = 0
  if lo ~= nil then which = which + 1 end
  if hi ~= nil then which = which + 2 end
  return lo or 0, hi or 0, which
end
-- t:clamp(min, max); either may be nil.
function Tensor:clamp(lo, hi)
  local a, b, w = clamp_args(lo, hi)
  check(C.cfx_tensor_clamp(H(self, 'self'), a, b, w, out))
  return wrap()
end
function Tensor:clamp_(lo, hi)
  local a, b, w = clamp_args(lo, hi)
  check(C.cfx_tensor_clamp_(H(self, 'self'), a, b, w))
  return self
end
function Tensor:clamp_min(lo) return self:clamp(lo, nil) end
function Tensor:clamp_max(hi) return self:clamp(nil, hi) end

-- cfx.where(cond, a, b); t:where(cond, other) as PyTorch (t where cond, else other)
function M.where(cond, a, b)
  local like = is_tensor(a) and a or is_tensor(b) and b or M.empty({}, { device = core.device_name(
    C.cfx_tensor_device(H(cond, 'condition'))) })
  check(C.cfx_tensor_where(H(cond, 'condition'), H(tensor_of(a, like), 'input'),
    H(tensor_of(b, like), 'other'), out))
  return wrap()
end
function Tensor:where(cond, other) return M.where(cond, self, other) end

function Tensor:masked_fill(mask, value)
  check(C.cfx_tensor_masked_fill(H(self, 'self'), H(mask, 'mask'), value, out))
  return wrap()
end

function Tensor:gelu(approximate)
  local a = approximate == 'tanh' and 1 or 0
  if approximate ~= nil and approximate ~= 'tanh' and approximate ~= 'none' then
    raise(("gelu: approximate must be 'none' or 'tanh', got %s"):format(tostring(approximate)))
  end
  check(C.cfx_tensor_gelu(H(self, 'self'), a, out))
  return wrap()
end

-- ---- views ---------------------------------------------------------------------------
function Tensor:reshape(...)
  local b, n = shape_arg(dbuf, ...)
  check(C.cfx_tensor_reshape(H(self, 'self'), b, n, out))
  return wrap()
end
function Tensor:view(...)
  local b, n = shape_arg(dbuf, ...)
  check(C.cfx_tensor_view(H(self, 'self'), b, n, out))
  return wrap()
end
function Tensor:view_as(other) return self:view(other:shape()) end
function Tensor:reshape_as(other) return self:reshape(other:shape()) end
function Tensor:permute(...)
  local src = type(...) == 'table' and ... or { ... }
  local n = ndim(self)
  if #src > MAXD then raise(('permute: at most %d dimensions, got %d'):format(MAXD, #src)) end
  for i = 1, #src do dbuf[i - 1] = cdim(src[i], n) end
  check(C.cfx_tensor_permute(H(self, 'self'), dbuf, #src, out))
  return wrap()
end
function Tensor:transpose(d0, d1)
  local n = ndim(self)
  check(C.cfx_tensor_transpose(H(self, 'self'), cdim(d0, n, 'dim0'), cdim(d1, n, 'dim1'), out))
  return wrap()
end
function Tensor:t()
  if ndim(self) > 2 then raise('t() expects a tensor with <= 2 dimensions; use transpose') end
  if ndim(self) < 2 then return self end
  check(C.cfx_tensor_transpose(self.h, 0, 1, out))
  return wrap()
end
-- t:narrow(dim, start, length), start 1-based
function Tensor:narrow(d, start, length)
  local n = ndim(self)
  local size = self:size(d)
  if type(start) ~= 'number' or start < 1 or start > size + 1 then
    raise(('narrow: start %s out of range for a dimension of size %d (1-based)')
      :format(tostring(start), size))
  end
  check(C.cfx_tensor_narrow(self.h, cdim(d, n), start - 1, length, out))
  return wrap()
end
-- t:select(dim, i), i 1-based (negative counts from the end)
function Tensor:select(d, i)
  local n = ndim(self)
  local size = self:size(d)
  if type(i) ~= 'number' or i % 1 ~= 0 or i == 0 or i > size or i < -size then
    raise(('select: index %s out of range for a dimension of size %d (1-based)')
      :format(tostring(i), size))
  end
  check(C.cfx_tensor_select(self.h, cdim(d, n), i > 0 and i - 1 or i, out))
  return wrap()
end
-- 1-based index tensor -> 0-based int64 handle (kept alive by the returned object)
local function zero_based(index, what)
  local h = H(index, what)
  check(C.cfx_tensor_to(h, 4, C.cfx_tensor_device(h), 0, 0, out))
  local i = ffi.gc(out[0], free)
  check(C.cfx_tensor_sub_scalar(i, 1, out))
  return ffi.gc(out[0], free)
end
function Tensor:index_select(d, index)
  local idx = zero_based(index, 'index')
  check(C.cfx_tensor_index_select(H(self, 'self'), cdim(d, ndim(self)), idx, out))
  return wrap()
end
function Tensor:gather(d, index)
  local idx = zero_based(index, 'index')
  check(C.cfx_tensor_gather(H(self, 'self'), cdim(d, ndim(self)), idx, out))
  return wrap()
end
function Tensor:unsqueeze(d)
  check(C.cfx_tensor_unsqueeze(H(self, 'self'), cdim(d, ndim(self) + 1), out))
  return wrap()
end
function Tensor:squeeze(d)
  if d == nil then check(C.cfx_tensor_squeeze(H(self, 'self'), out))
  else check(C.cfx_tensor_squeeze_dim(H(self, 'self'), cdim(d, ndim(self)), out)) end
  return wrap()
end
function Tensor:expand(...)
  local b, n = shape_arg(dbuf, ...)
  check(C.cfx_tensor_expand(H(self, 'self'), b, n, out))
  return wrap()
end
function Tensor:expand_as(other) return self:expand(other:shape()) end
-- PyTorch's Tensor.repeat; `repeat` is a Lua keyword, so t:repeat_(...) or t['repeat'](t, ...)
local function repeat_(self, ...)
  local b, n = shape_arg(dbuf, ...)
  check(C.cfx_tensor_repeat(H(self, 'self'), b, n, out))
  return wrap()
end
Tensor['repeat'] = repeat_
Tensor.repeat_ = repeat_
function Tensor:flatten(s, e)
  local n = ndim(self)
  check(C.cfx_tensor_flatten(H(self, 'self'), cdim(s or 1, n, 'start_dim'), cdim(e or -1, n, 'end_dim'), out))
  return wrap()
end
-- t:chunk(n, dim=1) -> list of tensors
function Tensor:chunk(chunks, d)
  local arr = ffi.new('cfx_tensor*[?]', chunks)
  check(C.cfx_tensor_chunk(H(self, 'self'), chunks, cdim(d or 1, ndim(self)), arr, chunks, intbuf))
  local r = {}
  for i = 1, intbuf[0] do r[i] = wrap(arr[i - 1]) end
  return r
end
-- t:split(size, dim=1) -> list of tensors of `size` along dim (the last may be shorter)
function Tensor:split(size, d)
  d = d or 1
  local total, r = self:size(d), {}
  for s = 1, total, size do r[#r + 1] = self:narrow(d, s, math.min(size, total - s + 1)) end
  return r
end

-- ---- reductions -----------------------------------------------------------------------
for _, name in ipairs { 'sum', 'mean', 'logsumexp' } do
  local f = C['cfx_tensor_' .. name]
  Tensor[name] = function(self, d, keepdim)
    local b, n = dims_arg(self, d)
    check(f(H(self, 'self'), b, n, keepdim and 1 or 0, out))
    return wrap()
  end
end
-- t:var(dim, keepdim, correction=1), t:std(...): unbiased by default, as PyTorch
for _, name in ipairs { 'var', 'std' } do
  local f = C['cfx_tensor_' .. name]
  Tensor[name] = function(self, d, keepdim, correction)
    local b, n = dims_arg(self, d)
    check(f(H(self, 'self'), b, n, correction or 1, keepdim and 1 or 0, out))
    return wrap()
  end
end
function Tensor:norm(p, d, keepdim)
  local b, n = dims_arg(self, d)
  check(C.cfx_tensor_norm(H(self, 'self'), p or 2, b, n, keepdim and 1 or 0, out))
  return wrap()
end
function Tensor:cumsum(d)
  check(C.cfx_tensor_cumsum(H(self, 'self'), cdim(d, ndim(self)), out))
  return wrap()
end

-- 0-based indices -> 1-based, out of place: autograd may have saved t (max, sort...).
local function plus_one(t)
  check(C.cfx_tensor_add_scalar(t.h, 1, out))
  return wrap()
end
-- t:max() -> 0-d tensor; t:max(dim, keepdim) -> values, indices (1-based);
-- t:max(other) -> elementwise maximum
for _, name in ipairs { 'max', 'min' } do
  local fall, fdim = C['cfx_tensor_' .. name .. '_all'], C['cfx_tensor_' .. name]
  local elementwise = name == 'max' and Tensor.maximum or Tensor.minimum
  Tensor[name] = function(self, d, keepdim)
    local h = H(self, 'self')
    if d == nil then
      check(fall(h, out))
      return wrap()
    elseif is_tensor(d) then
      return elementwise(self, d)
    end
    check(fdim(h, cdim(d, ndim(self)), keepdim and 1 or 0, out, out2))
    local v, i = wrap(), wrap(out2[0])
    return v, plus_one(i)
  end
end
for _, name in ipairs { 'argmax', 'argmin' } do
  local fall, fdim = C['cfx_tensor_' .. name .. '_all'], C['cfx_tensor_' .. name]
  Tensor[name] = function(self, d, keepdim)
    local h = H(self, 'self')
    if d == nil then check(fall(h, out))
    else check(fdim(h, cdim(d, ndim(self)), keepdim and 1 or 0, out)) end
    return plus_one(wrap())
  end
end
-- t:topk(k, dim=-1, largest=true, sorted=true) -> values, indices (1-based)
function Tensor:topk(k, d, largest, sorted)
  check(C.cfx_tensor_topk(H(self, 'self'), k, cdim(d or -1, ndim(self)), largest == false and 0 or 1,
    sorted == false and 0 or 1, out, out2))
  local v, i = wrap(), wrap(out2[0])
  return v, plus_one(i)
end
-- t:sort(dim=-1, descending=false, stable=false) -> values, indices (1-based)
function Tensor:sort(d, descending, stable)
  check(C.cfx_tensor_sort(H(self, 'self'), cdim(d or -1, ndim(self)), descending and 1 or 0,
    stable and 1 or 0, out, out2))
  local v, i = wrap(), wrap(out2[0])
  return v, plus_one(i)
end
function Tensor:argsort(d, descending)
  local _, i = self:sort(d, descending, true)
  return i
end

function Tensor:equal(other)
  check(C.cfx_tensor_equal(H(self, 'self'), H(other, 'other'), intbuf))
  return intbuf[0] ~= 0
end
function Tensor:allclose(other, rtol, atol)
  check(C.cfx_tensor_allclose(H(self, 'self'), H(other, 'other'), rtol or 1e-5, atol or 1e-8, intbuf))
  return intbuf[0] ~= 0
end

-- t:addmm(a, b, beta=1, alpha=1) = beta * t + alpha * (a @ b)
function Tensor:addmm(a, b, beta, alpha)
  check(C.cfx_tensor_addmm(H(self, 'self'), H(a, 'mat1'), H(b, 'mat2'), beta or 1, alpha or 1, out))
  return wrap()
end

function Tensor:softmax(d)
  check(C.cfx_tensor_softmax(H(self, 'self'), cdim(d, ndim(self)), out))
  return wrap()
end
function Tensor:log_softmax(d)
  check(C.cfx_tensor_log_softmax(H(self, 'self'), cdim(d, ndim(self)), out))
  return wrap()
end

-- ---- autograd ---------------------------------------------------------------------------
function Tensor:requires_grad_(flag)
  check(C.cfx_tensor_requires_grad_(H(self, 'self'), flag == false and 0 or 1))
  return self
end
-- t:backward([gradient] [, {retain_graph=, create_graph=}])
function Tensor:backward(grad, opts)
  if type(grad) == 'table' and not is_tensor(grad) then grad, opts = nil, grad end
  local o = options(opts, { retain_graph = false, create_graph = false }, 'backward')
  check(C.cfx_tensor_backward(H(self, 'self'), grad and H(grad, 'gradient') or nil,
    o.retain_graph and 1 or 0, o.create_graph and 1 or 0))
end
-- The gradient, or nil when there is none.
function Tensor:grad()
  check(C.cfx_tensor_grad(H(self, 'self'), out))
  if out[0] == nil then return nil end
  return wrap()
end
function Tensor:set_grad(g)
  check(C.cfx_tensor_set_grad(H(self, 'self'), g and H(g, 'grad') or nil))
  return self
end
-- t:zero_grad(set_to_none=true)
function Tensor:zero_grad(set_to_none)
  check(C.cfx_tensor_zero_grad(H(self, 'self'), set_to_none == false and 0 or 1))
  return self
end
function Tensor:detach_()
  check(C.cfx_tensor_detach_(H(self, 'self')))
  return self
end

-- Release the handle (and the storage, unless a view shares it) now instead of at
-- the next collection.  The tensor is unusable afterwards: ops on it raise an error.
function Tensor:free()
  local h = self.h
  if h ~= nil then
    self.h = nil
    free(h)
  end
end

-- ---- printing -----------------------------------------------------------------------------
local function fmt_num(v, isint)
  if type(v) == 'boolean' then return tostring(v) end
  if isint then return string.format('%d', v) end
  if v ~= v then return 'nan' end
  if v == math.huge then return 'inf' elseif v == -math.huge then return '-inf' end
  local a = math.abs(v)
  if a ~= 0 and (a >= 1e5 or a < 1e-4) then return string.format('%.4e', v) end
  return string.format('%.4f', v)
end

local function header(t)
  local s = ('tensor %s [%s] %s'):format(t:dtype(), table.concat(t:shape(), ', '), t:device())
  if t:requires_grad() then s = s .. ' requires_grad' end
  return s
end

local PRINT_MAX = 64
function mt.__tostring(t)
  if t.h == nil then return 'tensor (freed)' end
  local n, dt = t:numel(), t:dtype()
  local isint = not core.float_dtypes[dt] and dt ~= 'bool'
  local head = header(t)
  if n == 0 then return head .. '\n[]' end
  local nd = t:dim()
  local d = t:detach()
  if n <= PRINT_MAX and nd <= 2 then
    local v = d:totable()
    if nd == 0 then return head .. '\n' .. fmt_num(v, isint) end
    if nd == 1 then v = { v } end
    local cells, width = {}, 0
    for i, row in ipairs(v) do
      cells[i] = {}
      for j, x in ipairs(row) do
        local s = fmt_num(x, isint)
        cells[i][j] = s
        width = math.max(width, #s)
      end
    end
    local lines = {}
    for i, row in ipairs(cells) do
      for j, s in ipairs(row) do row[j] = string.rep(' ', width - #s) .. s end
      lines[i] = table.concat(row, '  ')
    end
    return head .. '\n' .. table.concat(lines, '\n')
  end
  local flat = d:reshape(-1)
  local first = flat:narrow(1, 1, math.min(n, 6)):totable()
  for i, x in ipairs(first) do first[i] = fmt_num(x, isint) end
  local s = head .. '\n[' .. table.concat(first, ', ') .. (n > 6 and ', ...]' or ']')
  if dt ~= 'bool' then
    local f = flat:to('float64')
    s = s .. ('  min %s  max %s  mean %s'):format(fmt_num(f:min():item()), fmt_num(f:max():item()),
      fmt_num(f:mean():item()))
  end
  return s
end

-- ---- operators ---------------------------------------------------------------------------
local function operand(x)
  if ffi.istype(Box, x) then return x.h end
  raise(('arithmetic on a tensor and a %s'):format(type(x)))
end
function mt.__add(a, b)
  if type(a) == 'number' then check(C.cfx_tensor_add_scalar(operand(b), a, out))
  elseif type(b) == 'number' then check(C.cfx_tensor_add_scalar(operand(a), b, out))
  else check(C.cfx_tensor_add(operand(a), operand(b), 1, out)) end
  return wrap()
end
function mt.__sub(a, b)
  if type(a) == 'number' then check(C.cfx_tensor_rsub_scalar(operand(b), a, out))
  elseif type(b) == 'number' then check(C.cfx_tensor_sub_scalar(operand(a), b, out))
  else check(C.cfx_tensor_sub(operand(a), operand(b), 1, out)) end
  return wrap()
end
function mt.__mul(a, b)
  if type(a) == 'number' then check(C.cfx_tensor_mul_scalar(operand(b), a, out))
  elseif type(b) == 'number' then check(C.cfx_tensor_mul_scalar(operand(a), b, out))
  else check(C.cfx_tensor_mul(operand(a), operand(b), out)) end
  return wrap()
end
function mt.__div(a, b)
  if type(a) == 'number' then check(C.cfx_tensor_rdiv_scalar(operand(b), a, out))
  elseif type(b) == 'number' then check(C.cfx_tensor_div_scalar(operand(a), b, out))
  else check(C.cfx_tensor_div(operand(a), operand(b), out)) end
  return wrap()
end
function mt.__pow(a, b)
  if type(a) == 'number' then check(C.cfx_tensor_rpow_scalar(operand(b), a, out))
  elseif type(b) == 'number' then check(C.cfx_tensor_pow_scalar(operand(a), b, out))
  else check(C.cfx_tensor_pow(operand(a), operand(b), out)) end
  return wrap()
end
function mt.__unm(a)
  check(C.cfx_tensor_neg(operand(a), out))
  return wrap()
end
-- == is torch.equal: same shape and same values; false against a non-tensor.
function mt.__eq(a, b)
  if not (ffi.istype(Box, a) and ffi.istype(Box, b)) then return false end
  check(C.cfx_tensor_equal(a.h, b.h, intbuf))
  return intbuf[0] ~= 0
end
function mt.__len(t) return ndim(t) == 0 and 0 or t:size(1) end

-- t[i] selects along the first dimension (1-based); t.name finds methods.
function mt.__index(t, k)
  local m = Tensor[k]
  if m ~= nil then return m end
  if type(k) == 'number' then return t:select(1, k) end
  return nil
end
function mt.__newindex(t, k, v)
  if type(k) == 'number' then
    local s = t:select(1, k)
    if type(v) == 'number' then s:fill_(v) else s:copy_(v) end
    return
  end
  raise(("cannot set field '%s' on a tensor"):format(tostring(k)))
end

function mt.__gc(t)
  local h = t.h
  if h ~= nil then
    t.h = nil
    free(h)
  end
end

Box = ffi.metatype('cfx_lua_tensor', mt)
M.Box = Box

-- ---- the libtorch runtime: grad mode, autocast, random state, threads ------------------
-- init.lua exports these as cfx.no_grad, cfx.autocast, cfx.manual_seed, cfx.threads, ...;
-- they live here so that the modules above use them without requiring 'cfx'.

-- no_grad(fn, ...): fn(...) without recording operations for autograd.
function M.no_grad(fn, ...) return core.with_grad_mode(0, fn, ...) end
-- enable_grad(fn, ...): fn(...) with autograd on (inside a no_grad region).
function M.enable_grad(fn, ...) return core.with_grad_mode(1, fn, ...) end
function M.is_grad_enabled() return C.cfx_grad_is_enabled() ~= 0 end
-- Set grad mode for this thread; returns the previous mode.
function M.set_grad_enabled(flag) return C.cfx_grad_set_enabled(flag and 1 or 0) ~= 0 end

-- with_autocast(device_code, dtype_code, fn, ...): fn(...) inside one autocast region,
-- left however fn ends (codes as core.device_code / core.dtype_code give them).
function M.with_autocast(dev, dt, fn, ...)
  check(C.cfx_autocast_enter(dev, dt))
  local r = core.pack(pcall(fn, ...))
  check(C.cfx_autocast_exit(dev))
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

local function autocast_dtype(dev, dtype) return core.dtype_code(dtype or (dev < 0 and 'bfloat16' or 'float16')) end

-- autocast({device='cpu', dtype='bfloat16' (CPU) | 'float16' (CUDA), enabled=true}, fn, ...):
-- fn(...) in mixed precision.
function M.autocast(opts, fn, ...)
  local o = core.options(opts, { device = 'cpu', ['?dtype'] = true, enabled = true }, 'autocast')
  if not o.enabled then return fn(...) end
  local dev = core.device_code(o.device)
  return M.with_autocast(dev, autocast_dtype(dev, o.dtype), fn, ...)
end
function M.autocast_enter(device, dtype)
  local dev = core.device_code(device)
  check(C.cfx_autocast_enter(dev, autocast_dtype(dev, dtype)))
end
function M.autocast_exit(device) check(C.cfx_autocast_exit(core.device_code(device))) end
function M.is_autocast_enabled(device) return C.cfx_autocast_is_enabled(core.device_code(device)) ~= 0 end

-- manual_seed(n): seed libtorch's CPU generator and every CUDA one.
function M.manual_seed(seed)
  if type(seed) ~= 'number' or seed < 0 or seed % 1 ~= 0 then
    raise(('manual_seed: expected a non-negative integer, got %s'):format(tostring(seed)))
  end
  check(C.cfx_manual_seed(seed))
end
-- The CPU generator's state as a uint8 tensor, and back (for checkpoints).
function M.get_rng_state()
  check(C.cfx_get_rng_state(out))
  return wrap(out[0])
end
function M.set_rng_state(state)
  if not is_tensor(state) then raise('set_rng_state: expected a uint8 tensor') end
  check(C.cfx_set_rng_state(state.h))
end

-- threads([n]): set libtorch's intra-op threads (n >= 1); returns the number in use.
function M.threads(n)
  if n ~= nil then
    if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
      raise(('threads: expected a positive integer, got %s'):format(tostring(n)))
    end
    check(C.cfx_set_num_threads(n))
  end
  return C.cfx_get_num_threads()
end

-- default_threads([workers]) -> the one rule for libtorch's thread count: CFX_THREADS,
-- else OMP_NUM_THREADS (as libtorch users expect), else the CPUs this process may use
-- (its affinity mask, as Slurm sets it) less `workers` (loader threads that share them),
-- at least 1.  init.lua applies it once at load (workers 0: Debian's libtorch would start
-- with one thread); the experiment runner once per invocation, with its preset's workers.
function M.default_threads(workers)
  local n = tonumber(os.getenv('CFX_THREADS') or '') or tonumber(os.getenv('OMP_NUM_THREADS') or '')
  if n and n >= 1 then return math.floor(n) end
  return math.max(1, C.cfx_cpu_count() - (workers or 0))
end

-- Names of the methods, for the REPL's completion.
function M.fields()
  local r = {}
  for k in pairs(Tensor) do if type(k) == 'string' then r[#r + 1] = k end end
  table.sort(r)
  return r
end

return M
