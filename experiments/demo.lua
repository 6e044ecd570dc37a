-- demo.lua: a first look at cfx: tensors, then a
-- tiny MLP trained with autograd on a two-class toy problem (two interleaved
-- spirals), in plain cfx tensor ops.  Run it with `build/cfx experiments/demo.lua`.
local cfx = require 'cfx'
local F = cfx.F

cfx.manual_seed(0)
print(('cfx %s  (libtorch via %s, %d threads)'):format(cfx.version, cfx.lib_path, cfx.threads()))

print('\n-- tensors --------------------------------------------------------------')
local a = cfx.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
print('a =', a)
print('a:sum(2) =', a:sum(2))
print('a:matmul(a:t()) =', a:matmul(a:t()))
local ok, err = pcall(function() return a + cfx.ones(2, 4) end)
print('a + ones(2, 4) ->', ok and 'ok' or err)

print('\n-- a tiny MLP on two spirals -------------------------------------------')
-- Data: n points per class on two spirals, with noise.
local n = 256
local t = cfx.rand(n) * 3 * math.pi + 0.5
local function spiral(phase)
  local x = (t * (t + phase):cos()):unsqueeze(2)
  local y = (t * (t + phase):sin()):unsqueeze(2)
  return cfx.cat({ x, y }, 2) / 10 + cfx.randn(n, 2) * 0.03
end
local X = cfx.cat { spiral(0), spiral(math.pi) }
local Y = cfx.cat { cfx.zeros(n), cfx.ones(n) }

-- Parameters, initialised like torch.nn.Linear (uniform +-1/sqrt(fan_in)).
local function linear(fan_in, fan_out)
  local bound = 1 / math.sqrt(fan_in)
  return cfx.empty(fan_out, fan_in):uniform_(-bound, bound):requires_grad_(),
      cfx.empty(fan_out):uniform_(-bound, bound):requires_grad_()
end
local w1, b1 = linear(2, 64)
local w2, b2 = linear(64, 64)
local w3, b3 = linear(64, 1)
local params = { w1, b1, w2, b2, w3, b3 }

local function model(x)
  local h = F.linear(x, w1, b1):relu()
  h = F.linear(h, w2, b2):relu()
  return F.linear(h, w3, b3):squeeze(2)
end

-- Adam, written out with in-place ops.
local lr, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-8
local m, v = {}, {}
for i, p in ipairs(params) do m[i], v[i] = cfx.zeros_like(p), cfx.zeros_like(p) end

local start = os.clock()
for step = 1, 400 do
  local loss = F.binary_cross_entropy_with_logits(model(X), Y)
  for _, p in ipairs(params) do p:zero_grad() end
  loss:backward()
  cfx.no_grad(function()
    for i, p in ipairs(params) do
      local g = p:grad()
      m[i]:lerp_(g, 1 - beta1)
      v[i]:mul_(beta2):addcmul_(g, g, 1 - beta2)
      local mhat = m[i] / (1 - beta1 ^ step)
      local vhat = v[i] / (1 - beta2 ^ step)
      p:addcdiv_(mhat, vhat:sqrt() + eps, -lr)
    end
  end)
  if step == 1 or step % 100 == 0 then
    local acc = cfx.no_grad(function()
      return ((model(X):sigmoid():gt(0.5)):float():eq(Y)):float():mean():item()
    end)
    print(('step %4d  loss %.4f  train accuracy %.3f'):format(step, loss:item(), acc))
  end
end
print(('trained in %.2f s of CPU time; live tensor memory %.1f MB')
  :format(os.clock() - start, cfx.memory().live / 2 ^ 20))
