-- functional.lua: cfx.F, the stateless neural-network ops, named and ordered as
-- torch.nn.functional.  Options go in one table after the tensors; unknown keys are
-- an error.  Class targets (cross_entropy) are 1-based.
local core = require 'cfx.core'
local raise = core.raise
local tensor = require 'cfx.tensor'
local ffi, C, check = core.ffi, core.C, core.check
local wrap, options, pair, is_tensor = tensor.wrap, core.options, tensor.pair, tensor.is_tensor

local F = {}
local out = ffi.new('cfx_tensor*[1]')
local sbuf = ffi.new('int64_t[16]')
local scalebuf = ffi.new('double[2]')

-- Copy a list of integers into sbuf, refusing more than it holds.
local function fill_sbuf(list, what, fname)
  if #list > 16 then raise(('%s: at most 16 entries in %s, got %d'):format(fname, what, #list)) end
  for i = 1, #list do sbuf[i - 1] = list[i] end
  return sbuf, #list
end

local function H(x, what)
  if is_tensor(x) then return x.h end
  raise(('expected a tensor for %s, got %s'):format(what, type(x)))
end
local function Hopt(x, what)
  if x == nil then return nil end
  return H(x, what)
end

local reductions = { none = 0, mean = 1, sum = 2 }
local function reduction(r, fname)
  local code = reductions[r or 'mean']
  if not code then
    raise(("%s: reduction must be 'none', 'mean' or 'sum', got %s"):format(fname, tostring(r)))
  end
  return code
end

-- F.linear(x, weight [, bias])
function F.linear(x, w, b)
  check(C.cfx_tensor_linear(H(x, 'input'), H(w, 'weight'), Hopt(b, 'bias'), out))
  return wrap(out[0])
end

-- F.conv2d(x, weight [, bias] [, {stride=1, padding=0, dilation=1, groups=1}])
function F.conv2d(x, w, b, opts)
  if type(b) == 'table' and not is_tensor(b) then b, opts = nil, b end
  local o = options(opts, { stride = 1, padding = 0, dilation = 1, groups = 1 }, 'conv2d')
  check(C.cfx_tensor_conv2d(H(x, 'input'), H(w, 'weight'), Hopt(b, 'bias'), pair(1, o.stride, 'stride'),
    pair(2, o.padding, 'padding'), pair(3, o.dilation, 'dilation'), o.groups, out))
  return wrap(out[0])
end

-- F.conv_transpose2d(x, weight [, bias] [, {stride, padding, output_padding, groups, dilation}])
function F.conv_transpose2d(x, w, b, opts)
  if type(b) == 'table' and not is_tensor(b) then b, opts = nil, b end
  local o = options(opts, { stride = 1, padding = 0, output_padding = 0, groups = 1, dilation = 1 },
    'conv_transpose2d')
  check(C.cfx_tensor_conv_transpose2d(H(x, 'input'), H(w, 'weight'), Hopt(b, 'bias'),
    pair(1, o.stride, 'stride'), pair(2, o.padding, 'padding'), pair(3, o.output_padding, 'output_padding'),
    o.groups, pair(4, o.dilation, 'dilation'), out))
  return wrap(out[0])
end

-- F.max_pool2d(x, kernel_size [, {stride=kernel_size, padding=0, dilation=1, ceil_mode=false}])
function F.max_pool2d(x, k, opts)
  local o = options(opts, { ['?stride'] = true, padding = 0, dilation = 1, ceil_mode = false }, 'max_pool2d')
  check(C.cfx_tensor_max_pool2d(H(x, 'input'), pair(1, k, 'kernel_size'), pair(2, o.stride, 'stride'),
    pair(3, o.padding, 'padding'), pair(4, o.dilation, 'dilation'), o.ceil_mode and 1 or 0, out))
  return wrap(out[0])
end

-- F.avg_pool2d(x, kernel_size [, {stride=kernel_size, padding=0, ceil_mode=false, count_include_pad=true}])
function F.avg_pool2d(x, k, opts)
  local o = options(opts, { ['?stride'] = true, padding = 0, ceil_mode = false, count_include_pad = true },
    'avg_pool2d')
  check(C.cfx_tensor_avg_pool2d(H(x, 'input'), pair(1, k, 'kernel_size'), pair(2, o.stride, 'stride'),
    pair(3, o.padding, 'padding'), o.ceil_mode and 1 or 0, o.count_include_pad and 1 or 0, out))
  return wrap(out[0])
end

function F.adaptive_avg_pool2d(x, size)
  check(C.cfx_tensor_adaptive_avg_pool2d(H(x, 'input'), pair(1, size, 'output_size'), out))
  return wrap(out[0])
end
function F.adaptive_max_pool2d(x, size)
  check(C.cfx_tensor_adaptive_max_pool2d(H(x, 'input'), pair(1, size, 'output_size'), out))
  return wrap(out[0])
end

-- F.layer_norm(x, normalized_shape [, weight [, bias [, eps=1e-5]]])
function F.layer_norm(x, shape, w, b, eps)
  if type(shape) == 'number' then shape = { shape } end
  local buf, n = fill_sbuf(shape, 'normalized_shape', 'layer_norm')
  check(C.cfx_tensor_layer_norm(H(x, 'input'), buf, n, Hopt(w, 'weight'), Hopt(b, 'bias'), eps or 1e-5, out))
  return wrap(out[0])
end

-- F.batch_norm(x, running_mean, running_var [, weight [, bias [, training=false [, momentum=0.1 [, eps=1e-5]]]]])
-- Running statistics are updated in place when training.
function F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
  check(C.cfx_tensor_batch_norm(H(x, 'input'), Hopt(w, 'weight'), Hopt(b, 'bias'), Hopt(rm, 'running_mean'),
    Hopt(rv, 'running_var'), training and 1 or 0, momentum or 0.1, eps or 1e-5, out))
  return wrap(out[0])
end

-- F.group_norm(x, num_groups [, weight [, bias [, eps=1e-5]]])
function F.group_norm(x, groups, w, b, eps)
  check(C.cfx_tensor_group_norm(H(x, 'input'), groups, Hopt(w, 'weight'), Hopt(b, 'bias'), eps or 1e-5, out))
  return wrap(out[0])
end

function F.softmax(x, dim) return x:softmax(dim) end
function F.log_softmax(x, dim) return x:log_softmax(dim) end
function F.relu(x) return x:relu() end
function F.silu(x) return x:silu() end
function F.sigmoid(x) return x:sigmoid() end
function F.tanh(x) return x:tanh() end
-- F.gelu(x [, {approximate='none'|'tanh'}])
function F.gelu(x, opts)
  local o = options(opts, { approximate = 'none' }, 'gelu')
  return x:gelu(o.approximate)
end

-- F.dropout(x [, p=0.5 [, training=true]])
function F.dropout(x, p, training)
  check(C.cfx_tensor_dropout(H(x, 'input'), p or 0.5, training == false and 0 or 1, out))
  return wrap(out[0])
end

-- F.scaled_dot_product_attention(q, k, v [, {attn_mask=, dropout_p=0, is_causal=false, scale=}])
-- attn_mask: bool (true = attend) or float (added to the scores).
function F.scaled_dot_product_attention(q, k, v, opts)
  local o = options(opts, { ['?attn_mask'] = true, dropout_p = 0, is_causal = false, ['?scale'] = true },
    'scaled_dot_product_attention')
  check(C.cfx_tensor_scaled_dot_product_attention(H(q, 'query'), H(k, 'key'), H(v, 'value'),
    Hopt(o.attn_mask, 'attn_mask'), o.dropout_p, o.is_causal and 1 or 0, o.scale or 0, out))
  return wrap(out[0])
end

-- F.binary_cross_entropy_with_logits(x, target [, {weight=, pos_weight=, reduction='mean'}])
function F.binary_cross_entropy_with_logits(x, target, opts)
  local o = options(opts, { ['?weight'] = true, ['?pos_weight'] = true, reduction = 'mean' },
    'binary_cross_entropy_with_logits')
  check(C.cfx_tensor_binary_cross_entropy_with_logits(H(x, 'input'), H(target, 'target'),
    Hopt(o.weight, 'weight'), Hopt(o.pos_weight, 'pos_weight'),
    reduction(o.reduction, 'binary_cross_entropy_with_logits'), out))
  return wrap(out[0])
end

-- F.cross_entropy(logits, target [, {reduction='mean'}]): target holds 1-based classes.
function F.cross_entropy(x, target, opts)
  local o = options(opts, { reduction = 'mean' }, 'cross_entropy')
  local t0 = target:long() - 1
  check(C.cfx_tensor_cross_entropy(H(x, 'input'), t0.h, reduction(o.reduction, 'cross_entropy'), out))
  return wrap(out[0])
end

function F.mse_loss(x, target, opts)
  local o = options(opts, { reduction = 'mean' }, 'mse_loss')
  check(C.cfx_tensor_mse_loss(H(x, 'input'), H(target, 'target'), reduction(o.reduction, 'mse_loss'), out))
  return wrap(out[0])
end

-- F.pad(x, pads [, {mode='constant', value=0}]): pads as torch: {last_lo, last_hi, prev_lo, ...}
local pad_modes = { constant = 0, reflect = 1, replicate = 2, circular = 3 }
function F.pad(x, pads, opts)
  local o = options(opts, { mode = 'constant', value = 0 }, 'pad')
  local mode = pad_modes[o.mode]
  if not mode then
    raise(("pad: mode must be constant, reflect, replicate or circular, got %s"):format(tostring(o.mode)))
  end
  local buf, n = fill_sbuf(pads, 'pads', 'pad')
  check(C.cfx_tensor_pad(H(x, 'input'), buf, n, mode, o.value, out))
  return wrap(out[0])
end

-- F.interpolate(x, {size=, scale_factor=, mode='nearest', align_corners=false, antialias=false})
local interp_modes = { nearest = 0, bilinear = 1, linear = 1, bicubic = 2, area = 3 }
function F.interpolate(x, opts)
  local o = options(opts, { ['?size'] = true, ['?scale_factor'] = true, mode = 'nearest',
    align_corners = false, antialias = false }, 'interpolate')
  local mode = interp_modes[o.mode]
  if not mode then
    raise(("interpolate: mode must be nearest, bilinear, bicubic or area, got %s"):format(tostring(o.mode)))
  end
  local shp = x:shape()
  local nsp = #shp - 2
  if nsp < 1 then raise('interpolate: input must be (N, C, spatial...)') end
  local size, scales = o.size, nil
  if size == nil then
    if o.scale_factor == nil then raise('interpolate: give size or scale_factor') end
    size, scales = {}, scalebuf
    for i = 1, math.min(nsp, 2) do
      local f = type(o.scale_factor) == 'table' and o.scale_factor[i] or o.scale_factor
      size[i] = math.floor(shp[i + 2] * f)
      scalebuf[i - 1] = f
    end
  elseif type(size) == 'number' then
    local s = size
    size = {}
    for i = 1, nsp do size[i] = s end
  end
  local buf, n = fill_sbuf(size, 'size', 'interpolate')
  check(C.cfx_tensor_interpolate(H(x, 'input'), buf, n, scales, mode, o.align_corners and 1 or 0,
    o.antialias and 1 or 0, out))
  return wrap(out[0])
end

return F
