-- nn/layers.lua: the layers of cfx.nn, with PyTorch's parameter names, shapes and
-- default initialisation.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local module = require 'cfx.nn.module'
local init = require 'cfx.nn.initializers'
local raise = core.raise

local class, options = module.class, core.options
local L = {}

local function positive_int(v, what, fname)
  if type(v) ~= 'number' or v < 1 or v % 1 ~= 0 then
    raise(('%s: %s must be a positive integer, got %s'):format(fname, what, tostring(v)))
  end
  return v
end

local function dtype_opt(o) return { dtype = o.dtype or 'float32', device = o.device or 'cpu' } end

-- PyTorch's default for Linear and Conv: kaiming_uniform(a=sqrt(5)) weights, i.e.
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same range.
local function reset_linear_like(self)
  init.kaiming_uniform_(self.weight, { a = math.sqrt(5) })
  if self.bias then
    local fin = init.fans(self.weight)
    local bound = fin > 0 and 1 / math.sqrt(fin) or 0
    init.uniform_(self.bias, -bound, bound)
  end
end

-- ---- Linear ----------------------------------------------------------------------------
-- nn.Linear(in_features, out_features [, {bias=true, dtype=, device=}])
L.Linear = class('Linear')
function L.Linear:__init(fin, fout, opts)
  local o = options(opts, { bias = true, ['?dtype'] = true, ['?device'] = true }, 'nn.Linear')
  self.in_features = positive_int(fin, 'in_features', 'nn.Linear')
  self.out_features = positive_int(fout, 'out_features', 'nn.Linear')
  self:register_parameter('weight', tensor.empty(fout, fin, dtype_opt(o)))
  self:register_parameter('bias', o.bias and tensor.empty(fout, dtype_opt(o)) or nil)
  self:reset_parameters()
end
L.Linear.reset_parameters = reset_linear_like
function L.Linear:forward(x) return F.linear(x, self.weight, self.bias) end
function L.Linear:extra_repr()
  return ('in_features=%d, out_features=%d, bias=%s'):format(self.in_features, self.out_features,
    tostring(self.bias ~= nil))
end

-- ---- Conv2d ----------------------------------------------------------------------------
-- nn.Conv2d(in, out, kernel_size [, {stride=1, padding=0, dilation=1, groups=1, bias=true}])
L.Conv2d = class('Conv2d')
function L.Conv2d:__init(cin, cout, k, opts)
  local o = options(opts, { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true,
    ['?dtype'] = true, ['?device'] = true }, 'nn.Conv2d')
  positive_int(cin, 'in_channels', 'nn.Conv2d')
  positive_int(cout, 'out_channels', 'nn.Conv2d')
  positive_int(o.groups, 'groups', 'nn.Conv2d')
  if cin % o.groups ~= 0 or cout % o.groups ~= 0 then
    raise(('nn.Conv2d: in_channels (%d) and out_channels (%d) must be divisible by groups (%d)'):format(cin, cout,
      o.groups))
  end
  local kk = type(k) == 'table' and { k[1], k[2] } or { k, k }
  positive_int(kk[1], 'kernel_size', 'nn.Conv2d')
  positive_int(kk[2], 'kernel_size', 'nn.Conv2d')
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, kk[1] == kk[2] and kk[1] or kk
  self.stride, self.padding, self.dilation, self.groups = o.stride, o.padding, o.dilation, o.groups
  self.conv_opts = { stride = o.stride, padding = o.padding, dilation = o.dilation, groups = o.groups }
  self:register_parameter('weight', tensor.empty(cout, cin / o.groups, kk[1], kk[2], dtype_opt(o)))
  self:register_parameter('bias', o.bias and tensor.empty(cout, dtype_opt(o)) or nil)
  self:reset_parameters()
end
L.Conv2d.reset_parameters = reset_linear_like
function L.Conv2d:forward(x) return F.conv2d(x, self.weight, self.bias, self.conv_opts) end
function L.Conv2d:extra_repr()
  local function s(v) return type(v) == 'table' and ('(%d, %d)'):format(v[1], v[2]) or tostring(v) end
  local r = ('%d, %d, kernel_size=%s'):format(self.in_channels, self.out_channels, s(self.kernel_size))
  if s(self.stride) ~= '1' then r = r .. ', stride=' .. s(self.stride) end
  if s(self.padding) ~= '0' then r = r .. ', padding=' .. s(self.padding) end
  if s(self.dilation) ~= '1' then r = r .. ', dilation=' .. s(self.dilation) end
  if self.groups ~= 1 then r = r .. ', groups=' .. self.groups end
  if not self.bias then r = r .. ', bias=false' end
  return r
end

-- ---- normalisation -----------------------------------------------------------------------
-- nn.LayerNorm(normalized_shape [, {eps=1e-5, elementwise_affine=true, bias=true}])
L.LayerNorm = class('LayerNorm')
function L.LayerNorm:__init(shape, opts)
  local o = options(opts, { eps = 1e-5, elementwise_affine = true, bias = true, ['?dtype'] = true,
    ['?device'] = true }, 'nn.LayerNorm')
  self.normalized_shape = type(shape) == 'table' and shape or { shape }
  self.eps = o.eps
  if o.elementwise_affine then
    self:register_parameter('weight', tensor.ones(self.normalized_shape, dtype_opt(o)))
    self:register_parameter('bias', o.bias and tensor.zeros(self.normalized_shape, dtype_opt(o)) or nil)
  end
end
function L.LayerNorm:forward(x) return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps) end
function L.LayerNorm:extra_repr()
  return ('{%s}, eps=%g'):format(table.concat(self.normalized_shape, ', '), self.eps)
end

-- nn.LayerNorm2d(channels [, opts]): LayerNorm over the channels of an NCHW tensor
-- (timm's LayerNorm2d, used by ConvNeXt).
L.LayerNorm2d = class('LayerNorm2d', L.LayerNorm)
function L.LayerNorm2d:forward(x)
  x = x:permute(1, 3, 4, 2)
  x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
  return x:permute(1, 4, 2, 3)
end

-- nn.BatchNorm2d(num_features [, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true}])
L.BatchNorm2d = class('BatchNorm2d')
function L.BatchNorm2d:__init(n, opts)
  local o = options(opts, { eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true,
    ['?dtype'] = true, ['?device'] = true }, 'nn.BatchNorm2d')
  self.num_features, self.eps, self.momentum = positive_int(n, 'num_features', 'nn.BatchNorm2d'), o.eps, o.momentum
  if o.affine then
    self:register_parameter('weight', tensor.ones(n, dtype_opt(o)))
    self:register_parameter('bias', tensor.zeros(n, dtype_opt(o)))
  end
  if o.track_running_stats then
    self:register_buffer('running_mean', tensor.zeros(n, dtype_opt(o)))
    self:register_buffer('running_var', tensor.ones(n, dtype_opt(o)))
    self:register_buffer('num_batches_tracked', tensor.zeros({}, { dtype = 'int64', device = o.device or 'cpu' }))
  end
end
function L.BatchNorm2d:forward(x)
  if x:dim() ~= 4 then raise(('BatchNorm2d: expected a 4-d input {N, C, H, W}, got %d-d'):format(x:dim())) end
  local use_batch_stats = self.training or self.running_mean == nil
  if self.training and self.num_batches_tracked then
    module.no_grad(function() self.num_batches_tracked:add_(1) end)
  end
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats,
    self.momentum, self.eps)
end
function L.BatchNorm2d:extra_repr() return ('%d, eps=%g, momentum=%g'):format(self.num_features, self.eps, self.momentum) end

-- nn.GroupNorm(num_groups, num_channels [, {eps=1e-5, affine=true}])
L.GroupNorm = class('GroupNorm')
function L.GroupNorm:__init(groups, channels, opts)
  local o = options(opts, { eps = 1e-5, affine = true, ['?dtype'] = true, ['?device'] = true }, 'nn.GroupNorm')
  if channels % groups ~= 0 then
    raise(('nn.GroupNorm: num_channels (%d) must be divisible by num_groups (%d)'):format(channels, groups))
  end
  self.num_groups, self.num_channels, self.eps = groups, channels, o.eps
  if o.affine then
    self:register_parameter('weight', tensor.ones(channels, dtype_opt(o)))
    self:register_parameter('bias', tensor.zeros(channels, dtype_opt(o)))
  end
end
function L.GroupNorm:forward(x) return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps) end
function L.GroupNorm:extra_repr() return ('%d, %d, eps=%g'):format(self.num_groups, self.num_channels, self.eps) end

-- ---- activations and regularisers ---------------------------------------------------------
L.Identity = class('Identity')
function L.Identity:forward(x) return x end

L.ReLU = class('ReLU')
function L.ReLU:forward(x) return x:relu() end

L.SiLU = class('SiLU')
function L.SiLU:forward(x) return x:silu() end

-- nn.GELU([{approximate='none'|'tanh'}])
L.GELU = class('GELU')
function L.GELU:__init(opts) self.approximate = options(opts, { approximate = 'none' }, 'nn.GELU').approximate end
function L.GELU:forward(x) return x:gelu(self.approximate) end
function L.GELU:extra_repr() return self.approximate ~= 'none' and ("approximate='%s'"):format(self.approximate) or '' end

local function probability(p, fname)
  if type(p) ~= 'number' or p < 0 or p > 1 then raise(('%s: p must be in [0, 1], got %s'):format(fname, tostring(p))) end
  return p
end

-- nn.Dropout([p=0.5])
L.Dropout = class('Dropout')
function L.Dropout:__init(p) self.p = probability(p or 0.5, 'nn.Dropout') end
function L.Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return F.dropout(x, self.p, true)
end
function L.Dropout:extra_repr() return ('p=%g'):format(self.p) end

-- nn.DropPath([p=0]): stochastic depth; each sample's residual branch is dropped with
-- probability p and the kept ones scaled by 1 / (1 - p) (timm's drop_path).
L.DropPath = class('DropPath')
function L.DropPath:__init(p) self.p = probability(p or 0, 'nn.DropPath') end
function L.DropPath:forward(x)
  if not self.training or self.p == 0 then return x end
  local keep = 1 - self.p
  local shape = { x:size(1) }
  for i = 2, x:dim() do shape[i] = 1 end
  local mask = tensor.rand(shape, { dtype = x:dtype(), device = x:device() }):lt(keep):to(x:dtype())
  if keep > 0 then mask = mask / keep end
  return x * mask
end
function L.DropPath:extra_repr() return ('p=%g'):format(self.p) end

-- ---- pooling ----------------------------------------------------------------------------------
-- nn.MaxPool2d(kernel_size [, {stride=kernel_size, padding=0}])
L.MaxPool2d = class('MaxPool2d')
function L.MaxPool2d:__init(k, opts)
  local o = options(opts, { ['?stride'] = true, padding = 0 }, 'nn.MaxPool2d')
  self.kernel_size, self.stride, self.padding = k, o.stride or k, o.padding
end
function L.MaxPool2d:forward(x)
  return F.max_pool2d(x, self.kernel_size, { stride = self.stride, padding = self.padding })
end
function L.MaxPool2d:extra_repr()
  return ('kernel_size=%s, stride=%s, padding=%s'):format(tostring(self.kernel_size), tostring(self.stride),
    tostring(self.padding))
end

-- nn.AdaptiveAvgPool2d(size)
L.AdaptiveAvgPool2d = class('AdaptiveAvgPool2d')
function L.AdaptiveAvgPool2d:__init(size) self.output_size = size end
function L.AdaptiveAvgPool2d:forward(x) return F.adaptive_avg_pool2d(x, self.output_size) end
function L.AdaptiveAvgPool2d:extra_repr() return 'output_size=' .. tostring(self.output_size) end

-- ---- containers ----------------------------------------------------------------------------
-- nn.Sequential(m1, m2, ...) or nn.Sequential{m1, m2, ...}: children named 0, 1, ...
L.Sequential = class('Sequential')
function L.Sequential:__init(...)
  local list = { ... }
  if #list == 1 and not module.is_module(list[1]) and type(list[1]) == 'table' then list = list[1] end
  for i, m in ipairs(list) do
    if not module.is_module(m) then raise(('nn.Sequential: element %d is not a module'):format(i)) end
    self:add_module(tostring(i - 1), m)
  end
end
function L.Sequential:forward(x)
  for _, m in self:named_children() do x = m(x) end
  return x
end
function L.Sequential:append(m) return self:add_module(tostring(#self._order.modules), m) end
-- Number of children (LuaJIT's # does not call __len on tables: use seq:len()).
function L.Sequential:len() return #self._order.modules end
L.Sequential.__len = L.Sequential.len

-- nn.ModuleList{...}: a list of modules (named 0, 1, ...) without a forward.
L.ModuleList = class('ModuleList', L.Sequential)
function L.ModuleList:forward() raise('ModuleList has no forward; call its elements') end

-- ---- transformer parts -------------------------------------------------------------------------
-- nn.Attention(dim [, {num_heads=8, qkv_bias=false, attn_drop=0, proj_drop=0}]): timm's
-- multi-head self-attention (parameters qkv and proj).  Input and output {B, N, dim}.
L.Attention = class('Attention')
function L.Attention:__init(dim, opts)
  local o = options(opts, { num_heads = 8, qkv_bias = false, attn_drop = 0, proj_drop = 0 }, 'nn.Attention')
  if dim % o.num_heads ~= 0 then
    raise(('nn.Attention: dim (%d) must be divisible by num_heads (%d)'):format(dim, o.num_heads))
  end
  self.dim, self.num_heads = dim, o.num_heads
  self.head_dim = dim / o.num_heads
  self.scale = self.head_dim ^ -0.5
  self.qkv = L.Linear(dim, dim * 3, { bias = o.qkv_bias })
  self.attn_drop = L.Dropout(o.attn_drop)
  self.proj = L.Linear(dim, dim)
  self.proj_drop = L.Dropout(o.proj_drop)
end
function L.Attention:forward(x)
  local B, N, Cc = x:size(1), x:size(2), x:size(3)
  local qkv = self.qkv(x):reshape(B, N, 3, self.num_heads, self.head_dim):permute(3, 1, 4, 2, 5)
  local q, k, v = qkv:select(1, 1), qkv:select(1, 2), qkv:select(1, 3)
  local attn = (q * self.scale):matmul(k:transpose(-2, -1)):softmax(-1)
  attn = self.attn_drop(attn)
  x = attn:matmul(v):transpose(2, 3):reshape(B, N, Cc)
  return self.proj_drop(self.proj(x))
end
function L.Attention:extra_repr() return ('dim=%d, num_heads=%d'):format(self.dim, self.num_heads) end
L.MultiheadSelfAttention = L.Attention

-- nn.Mlp(in_features [, {hidden_features=in, out_features=in, act=nn.GELU, drop=0, bias=true}]):
-- timm's Mlp (fc1, act, fc2).
L.Mlp = class('Mlp')
function L.Mlp:__init(fin, opts)
  local o = options(opts, { ['?hidden_features'] = true, ['?out_features'] = true, ['?act'] = true, drop = 0,
    bias = true }, 'nn.Mlp')
  local hidden, fout = o.hidden_features or fin, o.out_features or fin
  self.fc1 = L.Linear(fin, hidden, { bias = o.bias })
  self.act = (o.act or L.GELU)()
  self.drop1 = L.Dropout(o.drop)
  self.fc2 = L.Linear(hidden, fout, { bias = o.bias })
  self.drop2 = L.Dropout(o.drop)
end
function L.Mlp:forward(x) return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x))))) end
L.MLP = L.Mlp

return L
