-- Specs of cfx.eval (lua/cfx/eval.lua).  The grouped metrics themselves are checked
-- against scikit-learn in tests/reference/test_metrics_grouped.py.
local cfx = require 'cfx'

local dir = os.tmpname()
os.remove(dir)
teardown(function() os.execute(("rm -rf '%s'"):format(dir)) end)
local _, eval_path = cfx.synth.generate { out = dir, train_generators = 2, eval_generators = 6, per_generator = 10,
  size = 32, seed = 9 }

-- A model that scores every image with a fixed logit per generator (via its mean pixel).
local Const = cfx.nn.class('Const')
function Const:__init() self.fc = cfx.nn.Linear(3, 1) end
function Const:forward(x) return self.fc(x:mean({ 3, 4 })) end

describe('cfx.eval', function()
  it('runs over a store in eval mode and restores training mode', function()
    local m = Const()
    m:train()
    local store = cfx.data.open(eval_path)
    local r = cfx.eval.run { model = m, store = store, preprocess = cfx.augment.eval { resize = false, crop = 32 },
      batch = 16, workers = 1, embeddings = false }
    assert.is_true(m.training)
    assert.equals(store:count(), r.scores:numel())
    assert.is_true(r.scores:min():item() >= 0 and r.scores:max():item() <= 1)
    -- every store image exactly once
    local seen = {}
    for _, i in ipairs(r.indices:totable()) do seen[i] = (seen[i] or 0) + 1 end
    for i = 1, store:count() do assert.equals(1, seen[i]) end
  end)

  it('deals the reals kept apart to the generators in equal, disjoint shares', function()
    local store = cfx.data.open(eval_path)
    local r = cfx.eval.run { model = Const(), store = store, preprocess = cfx.augment.eval { resize = false, crop = 32 },
      workers = 1 }
    local t = cfx.eval.tables(r)
    assert.equals('deal', t.summary.reals)
    assert.equals(6, #t.generators)
    local total = 0
    for _, g in ipairs(t.generators) do
      assert.equals(10, g.n_fake)
      assert.equals(10, g.n_real) -- 60 reals over 6 generators
      total = total + g.n_real
    end
    assert.equals(60, total)
    local pool = cfx.eval.tables(r, { reals = 'pool' })
    for _, g in ipairs(pool.generators) do assert.equals(60, g.n_real) end
  end)

  it('refuses a store whose pairing attribute it does not know, naming the store and the value', function()
    local path = dir .. '/oddpairing.h5'
    local w = cfx.data.writer(path)
    local g, real = w:generator('g', 'GAN', 'manual'), w:generator('COCO', 'real', 'real')
    local png = cfx.image.encode_png(cfx.zeros(32, 32, 3, { dtype = 'uint8' }))
    for i = 1, 4 do w:add { bytes = png, label = i % 2, generator = i % 2 == 1 and g or real, name = 'i' .. i } end
    w:attr('pairing', 'shuffle')
    w:finish()
    local store = cfx.data.open(path)
    local r = cfx.eval.run { model = Const(), store = store, preprocess = cfx.augment.eval { resize = false, crop = 32 },
      workers = 1 }
    local ok, err = pcall(cfx.eval.tables, r)
    assert.is_false(ok)
    assert.matches("oddpairing.h5 has pairing 'shuffle'", err, 1, true)
    -- a rule given explicitly does not read the attribute: g's 2 fakes against both reals
    local t = cfx.eval.tables(r, { reals = 'pool' })
    assert.equals(1, #t.generators)
    assert.equals(2, t.generators[1].n_fake)
    assert.equals(2, t.generators[1].n_real)
  end)

  it('kNN attribution takes the majority of the k nearest by cosine', function()
    -- two clusters of directions; scale must not matter (cosine)
    local train = cfx.tensor { { 1, 0 }, { 2, 0.1 }, { 3, -0.1 }, { 0, 1 }, { 0.1, 5 }, { -0.1, 2 } }
    local tg = cfx.tensor({ 1, 1, 1, 2, 2, 2 }, { dtype = 'int64' })
    local test = cfx.tensor { { 10, 0.5 }, { 0.2, 0.3 }, { 0.3, 0.2 } }
    local acc, pred = cfx.eval.knn_attribution { train = { embeddings = train, generators = tg },
      test = { embeddings = test, generators = cfx.tensor({ 1, 2, 2 }, { dtype = 'int64' }) }, k = 3 }
    assert.same({ 1, 2, 1 }, pred:totable())
    assert.is_true(math.abs(acc - 2 / 3) < 1e-12)
  end)
end)
