-- Specs of cfx.nn (lua/cfx/nn/*.lua): the Module base, layers, initialisation.
-- Expected values come from the definitions (PyTorch's documented formulas), not
-- from cfx output.
local cfx = require 'cfx'
local nn = cfx.nn

local function shape(t) return table.concat(t:shape(), 'x') end

describe('nn.Module', function()
  local Net = nn.class('Net')
  function Net:__init()
    self.fc1 = nn.Linear(4, 8)
    self.act = nn.ReLU()
    self.fc2 = nn.Linear(8, 2, { bias = false })
    self:register_parameter('scale', cfx.ones(2))
    self:register_buffer('count', cfx.zeros({}, { dtype = 'int64' }))
    self:register_buffer('scratch', cfx.zeros(3), false)
  end
  function Net:forward(x) return self.fc2(self.act(self.fc1(x))) * self.scale end

  it('registers children, parameters and buffers in order with dotted names', function()
    local net = Net()
    local names = {}
    for name, p in net:named_parameters() do names[#names + 1] = name .. ':' .. shape(p) end
    assert.same({ 'scale:2', 'fc1.weight:8x4', 'fc1.bias:8', 'fc2.weight:2x8' }, names)
    local sd = net:state_dict()
    assert.is_not_nil(sd.count)
    assert.is_nil(sd.scratch) -- non-persistent buffer
    assert.is_nil(sd['fc2.bias']) -- bias=false
    assert.equals(4 * 8 + 8 + 8 * 2 + 2, net:num_parameters())
  end)

  it('calls forward through __call and gives the right shape', function()
    assert.same({ 5, 2 }, Net()(cfx.randn(5, 4)):shape())
  end)

  it('load_state_dict copies values in place and keeps tensor identity', function()
    local a, b = Net(), Net()
    local w = b.fc1.weight
    b:load_state_dict(a:state_dict())
    assert.is_true(w:is_same(b.fc1.weight))
    assert.is_true(cfx.equal(a.fc1.weight, b.fc1.weight))
    assert.is_true(b.fc1.weight:requires_grad())
  end)

  it('load_state_dict names missing, unexpected and mismatched keys, and changes nothing', function()
    local net = Net()
    local before = net.fc1.weight:clone()
    local sd = {}
    for k, v in pairs(Net():state_dict()) do sd[k] = v end
    sd['fc1.bias'] = nil
    sd['extra.weight'] = cfx.zeros(1)
    sd['fc1.weight'] = cfx.zeros(4, 8)
    local ok, err = pcall(net.load_state_dict, net, sd)
    assert.is_false(ok)
    assert.matches('fc1%.weight %(checkpoint {4, 8}, model {8, 4}%)', err)
    assert.matches('missing keys: fc1%.bias', err)
    assert.matches('unexpected keys: extra%.weight', err)
    assert.is_true(cfx.equal(before, net.fc1.weight))
    -- non-strict: missing and unexpected are reported, not errors (shapes still are)
    sd['fc1.weight'] = cfx.zeros(8, 4)
    local r = net:load_state_dict(sd, { strict = false })
    assert.same({ 'fc1.bias' }, r.missing)
    assert.same({ 'extra.weight' }, r.unexpected)
    assert.equals(0, net.fc1.weight:abs():sum():item())
  end)

  it('freezes and unfreezes by Lua pattern; a pattern matching nothing is an error', function()
    local net = Net()
    assert.equals(2, net:freeze('^fc1%.'))
    assert.is_false(net.fc1.weight:requires_grad())
    assert.is_true(net.fc2.weight:requires_grad())
    assert.equals(8 * 2 + 2, net:num_parameters { trainable = true })
    assert.has_error(function() net:freeze('^nope') end)
    net:unfreeze()
    assert.equals(net:num_parameters(), net:num_parameters { trainable = true })
  end)

  it('train() and eval() reach every descendant', function()
    local net = Net()
    net:eval()
    assert.is_false(net.fc1.training)
    net:train()
    assert.is_true(net.fc2.training)
  end)

  it('to(dtype) converts floating parameters and buffers, not integer ones', function()
    local net = Net():to('float64')
    assert.equals('float64', net.fc1.weight:dtype())
    assert.is_true(net.fc1.weight:requires_grad())
    assert.equals('int64', net.count:dtype())
    assert.equals('float64', net:state_dict()['fc1.weight']:dtype())
    assert.has_error(function() net:to('int32') end)
  end)

  it('assigning a module registers it; a field that hides a method is refused', function()
    local m = Net()
    m.extra = nn.Linear(2, 2)
    assert.is_not_nil(m:state_dict()['extra.weight'])
    assert.has_error(function() m:register_parameter('forward', cfx.zeros(1)) end)
    assert.has_error(function() m:register_parameter('a.b', cfx.zeros(1)) end)
  end)

  it('prints a tree with parameter counts and collapses repeated children', function()
    local seq = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU())
    local s = tostring(seq)
    assert.matches('%(0%-2%): 3 x Linear%(in_features=3, out_features=3, bias=true%)  12', s)
    assert.matches('%(3%): ReLU%(%)', s)
    assert.matches('^Sequential%(%)  36', s)
  end)

  it('Sequential children are named 0.. and indexed 1..', function()
    local a, b = nn.Linear(2, 3), nn.Linear(3, 1)
    local seq = nn.Sequential { a, b }
    assert.equals(a, seq[1])
    assert.equals(b, seq[2])
    assert.equals(2, seq:len())
    assert.is_not_nil(seq:state_dict()['1.weight'])
  end)

  it('unknown options are errors that list the known ones', function()
    local ok, err = pcall(nn.Linear, 2, 3, { biass = false })
    assert.is_false(ok)
    assert.matches("unknown option 'biass'", err)
    assert.matches('bias', err)
  end)
end)

describe('nn layers', function()
  it('Linear and Conv2d draw weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in))', function()
    cfx.manual_seed(0)
    local l = nn.Linear(400, 300)
    local bound = 1 / math.sqrt(400)
    assert.is_true(l.weight:abs():max():item() <= bound)
    -- the standard deviation of U(-b, b) is b / sqrt(3)
    assert.is_true(math.abs(l.weight:std():item() - bound / math.sqrt(3)) < 0.02 * bound)
    assert.is_true(l.bias:abs():max():item() <= bound)
    local c = nn.Conv2d(16, 8, 3, { groups = 2 })
    assert.same({ 8, 8, 3, 3 }, c.weight:shape())
    assert.is_true(c.weight:abs():max():item() <= 1 / math.sqrt(8 * 9))
  end)

  it('Linear computes x W^T + b', function()
    local l = nn.Linear(2, 1)
    cfx.no_grad(function()
      l.weight:copy_(cfx.tensor { { 2, -1 } })
      l.bias:fill_(0.5)
    end)
    assert.same({ { 2 * 3 - 4 + 0.5 } }, l(cfx.tensor { { 3, 4 } }):totable())
  end)

  it('BatchNorm2d updates running statistics with momentum and the unbiased variance', function()
    local bn = nn.BatchNorm2d(1, { momentum = 0.1 })
    local x = cfx.tensor { 1, 2, 3, 6 }:view(4, 1, 1, 1)
    bn(x)
    -- mean 3, unbiased variance ((4 + 1 + 0 + 9) / 3)
    assert.is_true(math.abs(bn.running_mean:item() - 0.1 * 3) < 1e-6)
    assert.is_true(math.abs(bn.running_var:item() - (0.9 + 0.1 * 14 / 3)) < 1e-6)
    assert.equals(1, bn.num_batches_tracked:item())
    bn:eval()
    local y = bn(x)
    local expect = (1 - 0.3) / math.sqrt(0.9 + 0.1 * 14 / 3 + 1e-5)
    assert.is_true(math.abs(y:view(-1):totable()[1] - expect) < 1e-5)
    assert.equals(1, bn.num_batches_tracked:item())
  end)

  it('LayerNorm2d normalises over channels at each pixel', function()
    local ln = nn.LayerNorm2d(3, { eps = 0 })
    local y = ln(cfx.randn(2, 3, 4, 5))
    assert.is_true(y:mean(2):abs():max():item() < 1e-5)
    assert.is_true((y:var(2, false, 0) - 1):abs():max():item() < 1e-4)
  end)

  it('DropPath keeps or drops whole samples and rescales the kept ones', function()
    local dp = nn.DropPath(0.5)
    local x = cfx.ones(200, 3, 2)
    local y = dp(x)
    local per = y:sum({ 2, 3 }):totable()
    local kept = 0
    for _, v in ipairs(per) do
      assert.is_true(v == 0 or math.abs(v - 12) < 1e-6) -- 6 elements * 2
      if v ~= 0 then kept = kept + 1 end
    end
    assert.is_true(kept > 60 and kept < 140)
    dp:eval()
    assert.is_true(cfx.equal(dp(x), x))
  end)

  it('Attention equals softmax(q k^T / sqrt(d)) v written out by hand', function()
    cfx.manual_seed(3)
    local a = nn.Attention(8, { num_heads = 2, qkv_bias = true })
    local x = cfx.randn(1, 5, 8)
    local qkv = x:matmul(a.qkv.weight:t()) + a.qkv.bias
    local heads = {}
    for h = 1, 2 do
      local q = qkv:narrow(3, (h - 1) * 4 + 1, 4)
      local k = qkv:narrow(3, 8 + (h - 1) * 4 + 1, 4)
      local v = qkv:narrow(3, 16 + (h - 1) * 4 + 1, 4)
      heads[h] = (q:matmul(k:transpose(2, 3)) / 2):softmax(-1):matmul(v)
    end
    local expect = cfx.cat(heads, 3):matmul(a.proj.weight:t()) + a.proj.bias
    assert.is_true((a(x) - expect):abs():max():item() < 1e-5)
  end)

  it('trunc_normal_ stays inside [a, b]', function()
    local t = nn.init.trunc_normal_(cfx.empty(10000), { std = 1, a = -0.5, b = 1 })
    assert.is_true(t:min():item() >= -0.5)
    assert.is_true(t:max():item() <= 1)
  end)
end)
