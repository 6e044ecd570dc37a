-- Specs of cfx.optim (lua/cfx/optim.lua), from the update rules' definitions.
-- tests/reference/test_optim.py compares with torch.optim itself.
local cfx = require 'cfx'
local optim = cfx.optim

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * math.max(1, math.abs(b)) end

describe('cfx.optim', function()
  it('AdamW: the first step moves each weight by lr * g / (|g| + eps) after decay', function()
    local p = cfx.tensor({ 1.0, -2.0, 3.0 }, { dtype = 'float64' }):requires_grad_()
    local opt = optim.AdamW { params = { p }, lr = 0.1, weight_decay = 0.5, eps = 1e-8 }
    local g = { 0.3, -0.001, 2.0 }
    p:set_grad(cfx.tensor(g, { dtype = 'float64' }))
    opt:step()
    local v = p:detach():totable()
    for i, x0 in ipairs { 1.0, -2.0, 3.0 } do
      -- m_hat = g, v_hat = g^2 after bias correction: update = lr * g / (|g| + eps)
      local expect = x0 * (1 - 0.1 * 0.5) - 0.1 * g[i] / (math.abs(g[i]) + 1e-8)
      assert.is_true(close(v[i], expect, 1e-12), ('%d: %.17g vs %.17g'):format(i, v[i], expect))
    end
  end)

  it('AdamW on a module: no weight decay for 1-d parameters and no_weight_decay names', function()
    local m = cfx.models.create('vit_micro_patch8_64')
    local opt = optim.AdamW { params = m, lr = 1e-3, weight_decay = 0.1 }
    local decay, skip = opt.groups[1], opt.groups[2]
    assert.equals(0.1, decay.weight_decay)
    assert.equals(0, skip.weight_decay)
    for _, p in ipairs(decay.params) do assert.is_true(p:dim() >= 2) end
    local names = {}
    for _, n in ipairs(skip.names) do names[n] = true end
    assert.is_true(names.pos_embed and names.cls_token and names['blocks.0.norm1.weight'] and names['head.bias'])
    local off = optim.AdamW { params = m, lr = 1e-3, weight_decay = 0.1, filter_bias_and_bn = false }
    assert.equals(1, #off.groups)
  end)

  it('frozen parameters are not optimised; nothing trainable is an error', function()
    local m = cfx.nn.Linear(3, 1)
    m:freeze('weight')
    local opt = optim.AdamW { params = m }
    assert.equals(1, #opt:parameters())
    m:freeze()
    assert.has_error(function() optim.AdamW { params = m } end)
  end)

  it('SGD with momentum follows v = mu v + g, p = p - lr v', function()
    local p = cfx.tensor({ 1.0 }, { dtype = 'float64' }):requires_grad_()
    local opt = optim.SGD { params = { p }, lr = 0.1, momentum = 0.9 }
    local v, x = 0, 1.0
    for _, g in ipairs { 1.0, 0.5, -2.0 } do
      p:set_grad(cfx.tensor({ g }, { dtype = 'float64' }))
      opt:step()
      v = 0.9 * v + g
      x = x - 0.1 * v
      assert.is_true(close(p:detach():item(), x, 1e-14))
    end
  end)

  it('clip_grad_norm scales all gradients to the global max norm and returns the norm before', function()
    local a = cfx.zeros(2):requires_grad_()
    local b = cfx.zeros(1):requires_grad_()
    a:set_grad(cfx.tensor { 3, 0 })
    b:set_grad(cfx.tensor { 4 })
    local n = optim.clip_grad_norm({ a, b }, 1.0)
    assert.is_true(close(n, 5))
    local ga, gb = a:grad():totable(), b:grad():totable()
    assert.is_true(close(math.sqrt(ga[1] ^ 2 + ga[2] ^ 2 + gb[1] ^ 2), 1.0, 1e-5))
    assert.is_true(close(ga[1] / gb[1], 3 / 4))
    -- below the limit: unchanged (up to the 1e-6 of the formula)
    a:set_grad(cfx.tensor { 0.3, 0 })
    b:set_grad(cfx.tensor { 0.4 })
    assert.is_true(close(optim.clip_grad_norm({ a, b }, 1.0), 0.5))
    assert.is_true(close(a:grad():totable()[1], 0.3))
  end)

  it('cosine: linear warm-up to the base rate, then half a cosine to min_factor', function()
    local s = optim.cosine { total = 100, warmup = 0.2 }
    assert.equals(20, s.warmup)
    assert.is_true(close(s(1), 1 / 20))
    assert.is_true(close(s(20), 1))
    assert.is_true(close(s(60), 0.5)) -- halfway through the cosine part
    assert.is_true(close(s(100), 0))
    for i = 21, 100 do assert.is_true(s(i) <= s(i - 1)) end
    local t = optim.cosine { total = 10, warmup = 2, min_factor = 0.1 }
    assert.is_true(close(t(10), 0.1))
    assert.has_error(function() optim.cosine { total = 10, warmup = 20 } end)
    assert.has_error(function() optim.cosine { total = 10, warmup = 1.5 } end)
  end)

  it('state_dict round trip: a fresh optimizer continues identically', function()
    local function run(split)
      cfx.manual_seed(5)
      local p = cfx.randn(4, 3):requires_grad_()
      local opt = optim.AdamW { params = { p }, lr = 0.01 }
      for i = 1, 6 do
        if i == split then
          local st, meta = opt:state_dict()
          opt = optim.AdamW { params = { p }, lr = 0.01 }
          opt:load_state_dict(st, meta)
        end
        ((p * p):sum() + p:sum()):backward()
        opt:step()
        opt:zero_grad()
      end
      return p:detach()
    end
    assert.is_true(cfx.equal(run(0), run(4)))
  end)
end)
