-- Specs of cfx.train.fit and cfx.checkpoint (lua/cfx/train.lua, checkpoint.lua).
-- Kill/resume with real processes is in tests/app/test_train.py.
local cfx = require 'cfx'

local dir = os.tmpname()
os.remove(dir)
cfx.fs.mkdirs(dir)
teardown(function() os.execute(("rm -rf '%s'"):format(dir)) end)

-- A tiny dataset, made once: 8 train and 6 held-out generators (disjoint).
local train_path, eval_path = cfx.synth.generate { out = dir .. '/data', train_generators = 16, eval_generators = 8,
  per_generator = 32, size = 64, seed = 5 }

local function loader(path, opts)
  local o = { store = cfx.data.open(path), batch = 32, workers = 1, seed = 1,
    augment = cfx.augment.eval { resize = false, crop = 64 } }
  for k, v in pairs(opts or {}) do o[k] = v end
  return cfx.data.loader(o)
end

-- A model whose logits become NaN from its n-th forward on.
local NanAfter = cfx.nn.class('NanAfter')
function NanAfter:__init(n)
  self.n, self.calls = n, 0
  self.fc = cfx.nn.Linear(3, 1)
end
function NanAfter:forward(x)
  self.calls = self.calls + 1
  local y = self.fc(x:mean({ 3, 4 }))
  if self.calls >= self.n then y = y * (0 / 0) end
  return y
end

describe('cfx.train.fit', function()
  it('trains a tiny model to a clearly better than chance AP on held-out generators', function()
    cfx.manual_seed(1)
    local model = cfx.models.create('resnet_micro')
    local steps = 200
    local r = cfx.train.fit { model = model, loader = loader(train_path), steps = steps, progress = false,
      optim = cfx.optim.AdamW { params = model, lr = 1e-3, weight_decay = 0.05 },
      schedule = cfx.optim.cosine { warmup = 0.1, total = steps }, clip = 1.0 }
    assert.equals(steps, #r.losses)
    model:eval()
    local ev = cfx.data.open(eval_path)
    local el = loader(eval_path, { shuffle = false, batch = 64, max_batches = math.ceil(ev:all().n / 64) })
    local scores, labels = {}, {}
    cfx.no_grad(function()
      for b in el:batches() do
        scores[#scores + 1] = model(cfx.augment.normalize(b.images)):view(-1):sigmoid()
        labels[#labels + 1] = b.labels
      end
    end)
    local ap = cfx.metrics.average_precision(cfx.cat(scores), cfx.cat(labels))
    print(('\nheld-out AP after %d steps: %.3f (chance 0.5)'):format(steps, ap))
    assert.is_true(ap > 0.62, 'AP ' .. ap)
  end)

  it('stops on a NaN loss with a message naming the step and the last good checkpoint', function()
    local ck = dir .. '/nan'
    local model = NanAfter(6)
    local before = {}
    local ok, err = pcall(cfx.train.fit, { model = model, loader = loader(train_path), steps = 10, progress = false,
      checkpoint = { dir = ck, every = 2 }, before_checkpoint = function(step) before[#before + 1] = step end })
    assert.same({ 2, 4 }, before) -- called before each checkpoint, none after the bad step
    assert.is_false(ok)
    assert.matches('the loss is nan at step 6; training stopped%. The last good checkpoint is ' ..
      cfx.checkpoint.path(ck, 4):gsub('%p', '%%%0'), err)
    assert.equals(cfx.checkpoint.path(ck, 4), cfx.checkpoint.latest(ck))
    ok, err = pcall(cfx.train.fit, { model = NanAfter(1), loader = loader(train_path), steps = 3, progress = false })
    assert.is_false(ok)
    assert.matches('No checkpoint was written', err)
  end)

  it('accumulates: one step over two batches of 32 equals one batch of 64', function()
    local function run(batch, acc)
      cfx.manual_seed(3)
      local m = NanAfter(1e9)
      local opt = cfx.optim.SGD { params = m, lr = 0.1 }
      cfx.train.fit { model = m, loader = loader(train_path, { batch = batch, shuffle = false }), steps = 1,
        accumulate = acc, optim = opt, progress = false }
      return m.fc.weight:detach()
    end
    local a, b = run(64, 1), run(32, 2)
    assert.is_true((a - b):abs():max():item() < 1e-6)
  end)

  it('loss scaling by a power of two changes nothing; overflowing steps are skipped', function()
    local function run(scaler)
      cfx.manual_seed(4)
      local m = cfx.models.create('resnet_micro')
      local skips = 0
      local r = cfx.train.fit { model = m, loader = loader(train_path, { shuffle = false }), steps = 4, progress = false,
        grad_scaler = scaler, clip = 1.0, log = function(rec) if rec.skipped then skips = skips + 1 end end }
      return r.losses, m.fc.weight:detach(), skips
    end
    local l0, w0 = run(false)
    local l1, w1, s1 = run({ init_scale = 1024 })
    assert.same(l0, l1)
    assert.is_true(cfx.equal(w0, w1))
    assert.equals(0, s1)
    -- 2^140 overflows float32: every step here is skipped (the scale halves each time)
    local l2, w2, s2 = run({ init_scale = 2 ^ 140 })
    assert.equals(4, s2)
    assert.equals(l0[1], l2[1])
    assert.is_false(cfx.equal(w0, w2))
  end)

  it('checks its options', function()
    local m = cfx.models.create('resnet_micro')
    local l = loader(train_path)
    local function err(opts)
      local o = { model = m, loader = l, steps = 1, progress = false }
      for k, v in pairs(opts) do o[k] = v end
      local ok, e = pcall(cfx.train.fit, o)
      assert.is_false(ok)
      return e
    end
    assert.matches("unknown option 'step'", err { step = 3 })
    assert.matches('steps must be a positive whole number', err { steps = 0 })
    assert.matches("precision must be 'fp32', 'bf16' or 'fp16'", err { precision = 'fp8' })
    assert.matches("use precision='bf16'", err { precision = 'fp16' })
    assert.matches('ran out of batches at step 2', err { steps = 3, loader = loader(train_path, { max_batches = 1 }) })
  end)

  it('trains in bf16 autocast', function()
    cfx.manual_seed(2)
    local m = cfx.models.create('vit_micro_patch8_64')
    local r = cfx.train.fit { model = m, loader = loader(train_path), steps = 3, precision = 'bf16', progress = false }
    for _, l in ipairs(r.losses) do assert.is_true(l == l and l > 0) end
    assert.equals('float32', m.head.weight:dtype())
  end)
end)

describe('cfx.checkpoint', function()
  it('saves model, optimizer, RNG and losses, and refuses other files', function()
    local m = cfx.nn.Linear(3, 2)
    local opt = cfx.optim.AdamW { params = m }
    m(cfx.randn(4, 3)):sum():backward()
    opt:step()
    local p = cfx.checkpoint.path(dir .. '/ck', 7)
    cfx.fs.mkdirs(dir .. '/ck')
    cfx.checkpoint.save(p, { model = m, optimizer = opt, losses = { 0.5, 0.25 }, header = { step = 7 } })
    local c = cfx.checkpoint.load(p)
    assert.equals(7, c.header.step)
    assert.same({ 0.5, 0.25 }, c.losses)
    assert.is_true(cfx.equal(c.model.weight, m.weight))
    assert.is_not_nil(c.optim['weight.exp_avg'])
    assert.equals('AdamW', c.header.optim.kind)
    assert.equals('uint8', c.rng:dtype())
    cfx.safetensors.save(dir .. '/plain.safetensors', m:state_dict())
    local ok, e = pcall(cfx.checkpoint.load, dir .. '/plain.safetensors')
    assert.is_false(ok)
    assert.matches('is not a cfx checkpoint', e)
    -- a training checkpoint loads as pretrained weights too (its model.* part)
    local ok2 = pcall(cfx.models.load_pretrained, cfx.nn.Linear(3, 2), p)
    assert.is_true(ok2)
  end)

  it("loads onto map_location (the model's device), and the optimizer resumes from the mapped state", function()
    cfx.manual_seed(8)
    local m = cfx.nn.Linear(3, 2)
    local opt = cfx.optim.AdamW { params = m, lr = 0.1 }
    local x = cfx.randn(4, 3)
    local function step(model, o)
      model(x):sum():backward()
      o:step()
      o:zero_grad()
    end
    step(m, opt)
    cfx.fs.mkdirs(dir .. '/map')
    local p = cfx.checkpoint.path(dir .. '/map', 1)
    cfx.checkpoint.save(p, { model = m, optimizer = opt, header = { step = 1 } })
    -- the file written from the model's device, read back onto it
    local device = m.weight:device()
    local c = cfx.checkpoint.load(p, { map_location = device })
    for _, part in ipairs { c.model, c.optim } do
      for name, t in pairs(part) do assert.equals(device, t:device(), name) end
    end
    assert.equals('cpu', c.rng:device()) -- the CPU generator's state stays where it belongs
    assert.is_true(cfx.equal(c.model.weight, m.weight))
    -- a second model and optimizer restored from it continue exactly as the first
    local m2 = cfx.nn.Linear(3, 2)
    local opt2 = cfx.optim.AdamW { params = m2, lr = 0.1 }
    m2:load_state_dict(c.model)
    opt2:load_state_dict(c.optim, c.header.optim)
    step(m, opt)
    step(m2, opt2)
    assert.is_true(cfx.equal(m.weight, m2.weight))
    assert.is_true(cfx.equal(opt.state.weight.exp_avg_sq, opt2.state.weight.exp_avg_sq))
    -- a map_location this build lacks is refused before the file is read
    if not cfx.cuda.is_available() then
      local ok, e = pcall(cfx.checkpoint.load, p, { map_location = 'cuda' })
      assert.is_false(ok)
      assert.matches("cfx.checkpoint.load: device='cuda' but ", e, 1, true)
      assert.matches("(cfx.cuda.is_available() is false", e, 1, true)
    end
    local ok, e = pcall(cfx.checkpoint.load, p, { device = 'cpu' })
    assert.is_false(ok)
    assert.matches("unknown option 'device'", e, 1, true)
  end)

  it('lists, prunes and finds the latest', function()
    local d = dir .. '/many'
    cfx.fs.mkdirs(d)
    for _, s in ipairs { 3, 10, 7 } do
      cfx.checkpoint.save(cfx.checkpoint.path(d, s), { header = { step = s } })
    end
    assert.equals(cfx.checkpoint.path(d, 10), cfx.checkpoint.latest(d))
    cfx.checkpoint.prune(d, 2)
    local steps = {}
    for _, e in ipairs(cfx.checkpoint.list(d)) do steps[#steps + 1] = e.step end
    assert.same({ 7, 10 }, steps)
    assert.is_nil(cfx.checkpoint.latest(dir .. '/absent'))
  end)
end)
