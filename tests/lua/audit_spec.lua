-- audit_spec.lua: the audit flags an injected confound and stays quiet on clean data;
-- it finds images shared between stores.
local cfx = require 'cfx'
local audit = require 'cfx.audit'

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute('mkdir -p ' .. d)
  return d
end

describe('cfx.audit', function()
  local clean, sized, formatted = tmpdir(), tmpdir(), tmpdir()
  local base = { train_generators = 30, eval_generators = 4, per_generator = 10, size = 32, seed = 1 }
  local function make(dir, confound)
    local o = { out = dir, confound = confound }
    for k, v in pairs(base) do o[k] = v end
    cfx.synth.generate(o)
  end
  make(clean, false)
  make(sized, 'size')
  make(formatted, 'format')

  it('stays quiet on clean synthetic data', function()
    local r = audit.store(cfx.data.open(clean .. '/train.h5'))
    assert.same({}, r.flagged)
    assert.is_true(r.features.size.score < 0.6)
    assert.is_true(r.features.format.score < 0.6)
  end)

  it('flags an injected size confound', function()
    local r = audit.store(cfx.data.open(sized .. '/train.h5'))
    assert.is_true(r.features.size.flagged)
    assert.is_true(r.features.size.score > 0.99)
    assert.is_false(r.features.format.flagged)
    assert.matches('size', audit.format(r))
  end)

  it('flags an injected format confound', function()
    local r = audit.store(cfx.data.open(formatted .. '/train.h5'))
    assert.is_true(r.features.format.flagged)
    assert.is_false(r.features.size.flagged)
  end)

  it('finds images present in two stores', function()
    local a = cfx.data.open(clean .. '/train.h5')
    local path = clean .. '/copy.h5'
    local w = cfx.data.writer(path)
    local g = w:generator('x', 'GAN', 'manual')
    w:add { bytes = a:bytes(5), label = 1, generator = g, name = 'copied' }
    w:add { bytes = cfx.image.encode_png(cfx.zeros(8, 8, 3, { dtype = 'uint8' })), label = 1, generator = g, name = 'new' }
    w:finish()
    local d = audit.duplicates { a, cfx.data.open(path) }
    assert.equal(1, #d)
    assert.equal(5, d[1].a.index)
    assert.equal('copied', d[1].b.name)
  end)
end)
