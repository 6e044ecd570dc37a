-- nn/initializers.lua: cfx.nn.init, parameter initialisation as torch.nn.init (and timm's
-- trunc_normal_).  Every function fills the tensor in place without recording autograd
-- and returns it.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local module = require 'cfx.nn.module'
local raise = core.raise

local M = {}
local no_grad = module.no_grad

-- fan_in, fan_out of a weight {out, in, k...} as torch.nn.init._calculate_fan_in_and_fan_out
function M.fans(t)
  local shp = t:shape()
  if #shp < 2 then raise(('init: fan in and fan out need at least 2 dimensions, got %d'):format(#shp)) end
  local receptive = 1
  for i = 3, #shp do receptive = receptive * shp[i] end
  return shp[2] * receptive, shp[1] * receptive
end

local function gain(nonlinearity, a)
  if nonlinearity == 'relu' then return math.sqrt(2) end
  if nonlinearity == 'leaky_relu' then return math.sqrt(2 / (1 + (a or 0.01) ^ 2)) end
  if nonlinearity == 'tanh' then return 5 / 3 end
  if nonlinearity == 'linear' or nonlinearity == 'sigmoid' or nonlinearity:match('^conv') then return 1 end
  raise(('init: unknown nonlinearity %s'):format(tostring(nonlinearity)))
end
M.calculate_gain = gain

function M.uniform_(t, a, b)
  no_grad(function() t:uniform_(a or 0, b or 1) end)
  return t
end
function M.normal_(t, mean, std)
  no_grad(function() t:normal_(mean or 0, std or 1) end)
  return t
end
function M.constant_(t, v)
  no_grad(function() t:fill_(v) end)
  return t
end
function M.zeros_(t) return M.constant_(t, 0) end
function M.ones_(t) return M.constant_(t, 1) end

-- trunc_normal_(t [, {mean=0, std=1, a=-2, b=2}]): normal samples, those outside [a, b]
-- drawn again until none is (an exact truncated normal; torch uses the inverse CDF).
function M.trunc_normal_(t, opts)
  local o = core.options(opts, { mean = 0, std = 1, a = -2, b = 2 }, 'trunc_normal_')
  if not (o.a < o.b) then raise(('trunc_normal_: need a < b, got a=%g b=%g'):format(o.a, o.b)) end
  no_grad(function()
    t:normal_(o.mean, o.std)
    for _ = 1, 1000 do
      local bad = t:lt(o.a):logical_or(t:gt(o.b))
      if bad:sum():item() == 0 then return end
      local fresh = tensor.empty(t:shape(), { dtype = t:dtype() }):normal_(o.mean, o.std)
      t:copy_(tensor.where(bad, fresh, t))
    end
    raise(('trunc_normal_: [%g, %g] is too far from the mean %g for rejection sampling'):format(o.a, o.b, o.mean))
  end)
  return t
end

local function fan(t, mode)
  local fin, fout = M.fans(t)
  if mode == 'fan_in' then return fin end
  if mode == 'fan_out' then return fout end
  raise(("init: mode must be 'fan_in' or 'fan_out', got %s"):format(tostring(mode)))
end

-- kaiming_uniform_(t [, {a=0, mode='fan_in', nonlinearity='leaky_relu'}])
function M.kaiming_uniform_(t, opts)
  local o = core.options(opts, { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' }, 'kaiming_uniform_')
  local std = gain(o.nonlinearity, o.a) / math.sqrt(fan(t, o.mode))
  local bound = math.sqrt(3) * std
  return M.uniform_(t, -bound, bound)
end
function M.kaiming_normal_(t, opts)
  local o = core.options(opts, { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' }, 'kaiming_normal_')
  return M.normal_(t, 0, gain(o.nonlinearity, o.a) / math.sqrt(fan(t, o.mode)))
end
function M.xavier_uniform_(t, g)
  local fin, fout = M.fans(t)
  local bound = (g or 1) * math.sqrt(6 / (fin + fout))
  return M.uniform_(t, -bound, bound)
end
function M.xavier_normal_(t, g)
  local fin, fout = M.fans(t)
  return M.normal_(t, 0, (g or 1) * math.sqrt(2 / (fin + fout)))
end
-- lecun_normal_: truncated normal with variance 1 / fan_in (timm's jax-style init).
function M.lecun_normal_(t)
  local fin = M.fans(t)
  -- a standard normal truncated to [-2, 2] has std 0.87962566103423978
  local s = math.sqrt(1 / fin) / 0.87962566103423978
  return M.trunc_normal_(t, { std = s, a = -2 * s, b = 2 * s })
end

return M
