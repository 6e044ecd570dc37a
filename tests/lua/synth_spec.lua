-- synth_spec.lua: cfx synth is deterministic, balanced, keeps train and eval
-- generators disjoint, and covers the families and subsets.
local cfx = require 'cfx'

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute('mkdir -p ' .. d)
  return d
end

local function all_bytes(path)
  local s = cfx.data.open(path)
  local parts = {}
  for i = 1, s:count() do parts[i] = s:bytes(i) .. s:name(i) .. s:label(i) .. s:generator(s:generator_id(i)).name end
  return table.concat(parts, '|'), s
end

describe('cfx.synth', function()
  local opts = { train_generators = 12, eval_generators = 4, per_generator = 6, size = 32 }
  local a, b, c = tmpdir(), tmpdir(), tmpdir()
  for k, d in pairs { [a] = 3, [b] = 3, [c] = 4 } do
    local o = { out = k, seed = d }
    for key, v in pairs(opts) do o[key] = v end
    cfx.synth.generate(o)
  end

  it('is deterministic from the seed', function()
    local ta, sa = all_bytes(a .. '/train.h5')
    local tb = all_bytes(b .. '/train.h5')
    local tc = all_bytes(c .. '/train.h5')
    assert.is_true(ta == tb)
    assert.is_false(ta == tc)
    assert.equal(12 * 6 * 2, sa:count())
  end)

  it('balances the classes and keeps generators disjoint between train and eval', function()
    local tr, ev = cfx.data.open(a .. '/train.h5'), cfx.data.open(a .. '/eval.h5')
    local i1, i2 = tr:info(), ev:info()
    assert.equal(i1.real, i1.fake)
    assert.equal(4 * 6, i2.fake)
    local names = {}
    for name, g in pairs(i1.generators) do if g.fake > 0 then names[name] = true end end
    for name, g in pairs(i2.generators) do
      if g.fake > 0 then assert.is_nil(names[name], 'generator in both stores: ' .. name) end
    end
  end)

  it('makes decodable images of the asked size from known families', function()
    local s = cfx.data.open(a .. '/train.h5')
    local archs = {}
    for i = 1, s:count() do
      local img = s:image(i)
      assert.is_true(img:size(1) == 32 or img:size(1) == 40)
      archs[s:generator(s:generator_id(i)).architecture] = true
    end
    local families = { real = true, LatDiff = true, GAN = true, PixDiff = true, Commercial = true, other = true }
    for a_ in pairs(archs) do assert.is_true(families[a_], a_) end
    assert.is_true(archs.LatDiff and archs.real)
  end)

  it('records each fake generator\'s content source, one of the real sources', function()
    local s = cfx.data.open(a .. '/train.h5')
    local known = {}
    for _, r in ipairs(cfx.synth.real_sources) do known[r] = true end
    for _, g in ipairs(s:generators()) do
      if g.subset ~= 'real' then assert.is_true(known[g.source], g.name .. ': ' .. tostring(g.source)) end
    end
  end)

  it('draws train and eval fine-tunes of the same base models, each generator independent of the total', function()
    local plan = cfx.synth.plan(60, 3)
    local bases = { train = {}, eval = {} }
    for i, g in ipairs(plan) do
      if g.base then bases[i <= 40 and 'train' or 'eval'][g.base] = true end
    end
    local shared = 0
    for b in pairs(bases.eval) do if bases.train[b] then shared = shared + 1 end end
    assert.is_true(shared >= 3, 'bases shared between splits: ' .. shared)
    local g = cfx.synth.generator(37, 3)
    assert.equal(plan[37].name, g.name)
    assert.equal(plan[37].strength, g.strength)
    for _, x in ipairs(plan) do
      if x.subset == 'commercial' then assert.is_number(x.jpeg) end -- behind an API: always compressed
    end
  end)

  it('writes evaluation sets built differently: families, real sources, JPEG reals', function()
    local d = tmpdir()
    local p = cfx.synth.eval_set { out = d .. '/gan.h5', generators = 3, per_generator = 4, size = 32, seed = 5,
      families = { 'GAN' }, real_sources = { 'COCO', 'LandscapesHQ' }, real_jpeg = 70, progress = false }
    local s = cfx.data.open(p)
    local info = s:info()
    assert.equal(12, info.fake)
    assert.equal(12, info.real)
    for i = 1, s:count() do
      local G = s:generator(s:generator_id(i))
      if s:label(i) == 1 then assert.equal('GAN', G.architecture)
      else
        assert.is_true(G.name == 'COCO' or G.name == 'LandscapesHQ', G.name)
        assert.equal(0xFF, s:bytes(i):byte(1)) -- JPEG
      end
    end
    assert.has_error(function() cfx.synth.eval_set { out = d .. '/x.h5', real_sources = { 'ImageNet' } } end)
    assert.has_error(function() cfx.synth.eval_set { out = d .. '/x.h5', real_jpeg = 0 } end)
  end)

  it('rejects bad options', function()
    assert.has_error(function() cfx.synth.generate { out = tmpdir(), confound = 'colour' } end)
    assert.has_error(function() cfx.synth.generate { out = tmpdir(), size = 30 } end)
  end)
end)
