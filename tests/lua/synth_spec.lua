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

  it('rejects bad options', function()
    assert.has_error(function() cfx.synth.generate { out = tmpdir(), confound = 'colour' } end)
    assert.has_error(function() cfx.synth.generate { out = tmpdir(), size = 30 } end)
  end)
end)
