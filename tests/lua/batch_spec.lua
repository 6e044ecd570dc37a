-- Specs of cfx.batch (lua/cfx/batch.lua): device settings, pinned memory, and the
-- per-batch path that cfx.train.fit and cfx.eval.run share.  This machine's libtorch
-- is CPU-only (Debian's); the CUDA branches run where a GPU is visible.
local cfx = require 'cfx'
local batch = require 'cfx.batch' -- (not exported as cfx.batch: init.lua is the library's surface)

local cuda = cfx.cuda.is_available()

local dir = os.tmpname()
os.remove(dir)
teardown(function() os.execute(("rm -rf '%s'"):format(dir)) end)

local function fake_batch(n)
  cfx.manual_seed(11)
  return { images = (cfx.rand(n, 3, 8, 8) * 255):to('uint8'), labels = cfx.tensor({ 1, 0, 1, 1 }, { dtype = 'uint8' }) }
end

describe('cfx.batch.device', function()
  it("resolves 'auto' to CUDA where there is a GPU, else the CPU", function()
    assert.equals(cuda and 'cuda:0' or 'cpu', batch.device('auto'))
    assert.equals('cpu', batch.device('cpu'))
  end)

  it('refuses a device this build or node lacks with one message naming the value and the way out', function()
    if cuda then
      local n = cfx.cuda.device_count()
      assert.equals('cuda:0', batch.device('cuda'))
      local ok, e = pcall(batch.device, 'cuda:' .. n, 'exp')
      assert.is_false(ok)
      assert.matches(("exp: device='cuda:%d' but %d CUDA device"):format(n, n), e, 1, true)
      return
    end
    for _, spec in ipairs { 'cuda', 'cuda:1' } do
      local ok, e = pcall(batch.device, spec, 'scaling_models')
      assert.is_false(ok)
      -- Debian's libtorch has no CUDA at all; a CUDA build without a visible GPU says so instead
      local why = cfx.C.cfx_cuda_is_built() == 0 and 'but this libtorch build has no CUDA' or 'but no CUDA device is visible'
      assert.matches(("scaling_models: device='%s' %s (cfx.cuda.is_available() is false"):format(spec, why), e, 1, true)
      assert.matches("use device='cpu' or 'auto'", e, 1, true)
    end
  end)

  it('refuses a value that is no device, naming it', function()
    for _, spec in ipairs { 'gpu', 'cuda:x', 3 } do
      local ok, e = pcall(batch.device, spec, 'exp')
      assert.is_false(ok)
      assert.matches("exp: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got " ..
        (type(spec) == 'string' and ("'" .. spec .. "'") or tostring(spec)), e, 1, true)
    end
  end)
end)

describe('pin_memory', function()
  it('pins a CPU tensor where CUDA is visible, and is a no-op returning the tensor itself elsewhere', function()
    local t = cfx.arange(0, 12, 1, { dtype = 'int64' }):view(3, 4)
    local p = t:pin_memory()
    assert.is_true(cfx.equal(t, p))
    assert.same({ 3, 4 }, p:shape())
    assert.equals('int64', p:dtype())
    assert.equals('cpu', p:device())
    if cuda then
      assert.is_true(p:is_pinned())
      assert.is_false(t:is_pinned())
      assert.is_false(p:is_same(t))
      -- and the non-blocking copy from it lands intact
      assert.is_true(cfx.equal(p:to { device = 'cuda', non_blocking = true }:cpu(), t))
    else
      assert.is_true(p:is_same(t)) -- the same tensor, not a copy: nothing was pinned
      assert.is_false(p:is_pinned())
      t:add_(1) -- shares t's memory
      assert.equals(1, p:view(-1):totable()[1])
    end
  end)
end)

describe('cfx.batch.runner', function()
  it('gives fn the normalised images and {B, 1} float labels on the device', function()
    local b = fake_batch(4)
    local step = batch.runner { device = 'cpu', who = 'test' }
    local x, y, bb = step(b, function(x, y, bb) return x, y, bb end)
    assert.equals(b, bb)
    assert.equals('float32', x:dtype())
    -- (x / 255 - mean) / std, written out
    local mean, std = cfx.tensor(cfx.augment.imagenet_mean):view(1, 3, 1, 1), cfx.tensor(cfx.augment.imagenet_std):view(1, 3, 1, 1)
    assert.is_true(cfx.allclose(x, ((b.images:double() / 255 - mean:double()) / std:double()):float(), 1e-5, 1e-6))
    assert.same({ { 1 }, { 0 }, { 1 }, { 1 } }, y:totable())
    assert.equals('float32', y:dtype())
    local _, y2 = batch.runner { device = 'cpu', labels = false }(b, function(a, c) return a, c end)
    assert.is_nil(y2)
  end)

  it('runs fn under bf16 autocast and leaves the region even when fn fails', function()
    local b = fake_batch(4)
    local step = batch.runner { device = 'cpu', precision = 'bf16', who = 'test' }
    local w = cfx.randn(1, 3 * 8 * 8)
    local inside, dt = step(b, function(x)
      return cfx.is_autocast_enabled('cpu'), cfx.F.linear(x:flatten(2), w):dtype()
    end)
    assert.is_true(inside)
    assert.equals('bfloat16', dt) -- linear autocasts to bf16 on CPU
    assert.is_false(cfx.is_autocast_enabled('cpu'))
    local ok, e = pcall(step, b, function() error('boom', 0) end)
    assert.is_false(ok)
    assert.equals('boom', e)
    assert.is_false(cfx.is_autocast_enabled('cpu'))
    -- fp32: no autocast
    assert.is_false(batch.runner { device = 'cpu' }(b, function() return cfx.is_autocast_enabled('cpu') end))
  end)

  it('accepts the precisions training accepts, fp16 on CUDA only', function()
    local ok, e = pcall(batch.runner, { device = 'cpu', precision = 'fp8', who = 'w' })
    assert.is_false(ok)
    assert.matches("w: precision must be 'fp32', 'bf16' or 'fp16', got fp8", e, 1, true)
    ok, e = pcall(batch.runner, { device = 'cpu', precision = 'fp16', who = 'w' })
    assert.is_false(ok)
    assert.matches("w: fp16 autocast needs a CUDA device (libtorch's CPU autocast supports bf16 only): " ..
      "use precision='bf16'", e, 1, true)
    ok, e = pcall(batch.runner, { device = 'auto' })
    assert.is_false(ok)
    assert.matches('needs a resolved device', e, 1, true)
  end)
end)

describe('cfx.eval.run precision (the same path as training)', function()
  local _, eval_path = cfx.synth.generate { out = dir, train_generators = 2, eval_generators = 3, per_generator = 8,
    size = 32, seed = 3 }
  local Pool = cfx.nn.class('Pool')
  function Pool:__init() self.fc = cfx.nn.Linear(3, 1) end
  function Pool:forward(x) return self.fc(x:mean({ 3, 4 })) end
  local function run(model, precision)
    return cfx.eval.run { model = model, store = cfx.data.open(eval_path), batch = 8, workers = 1, precision = precision,
      preprocess = cfx.augment.eval { resize = false, crop = 32 } }
  end

  it('refuses fp16 on the CPU with training\'s message, and scores in bf16 close to fp32', function()
    cfx.manual_seed(5)
    local m = Pool()
    local ok, e = pcall(run, m, 'fp16') -- the model is on the CPU, wherever this runs
    assert.is_false(ok)
    assert.matches("cfx.eval.run: fp16 autocast needs a CUDA device (libtorch's CPU autocast supports bf16 only): " ..
      "use precision='bf16'", e, 1, true)
    ok, e = pcall(run, m, 'fp64')
    assert.is_false(ok)
    assert.matches("cfx.eval.run: precision must be 'fp32', 'bf16' or 'fp16', got fp64", e, 1, true)
    local a, b = run(m, 'fp32'), run(m, 'bf16')
    assert.equals(a.scores:numel(), b.scores:numel())
    assert.is_true(a.scores:numel() > 0)
    assert.is_true(cfx.equal(a.indices, b.indices))
    -- bf16 keeps 8 bits of mantissa: logits agree to about 1e-2 relative, not exactly
    assert.is_false(cfx.equal(a.logits, b.logits)) -- autocast did run
    local diff = (a.logits - b.logits):abs():max():item()
    assert.is_true(diff < 0.05 * math.max(1, a.logits:abs():max():item()), 'max |fp32 - bf16| ' .. diff)
  end)
end)
