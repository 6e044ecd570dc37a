-- store_sources_spec.lua: each generator's content source (/generators/source): the
-- writer's 4th argument, store:generators() and info(), the mismatch error, and
-- select{sources=} combined with the other filters.  (A store without the dataset at
-- all is tests/c/test_store.c's test_sources.)
local cfx = require 'cfx'

local tmp = os.tmpname()
os.remove(tmp)
os.execute('mkdir -p ' .. tmp)

local png = cfx.image.encode_png(cfx.randint(0, 256, { 8, 8, 3 }, { dtype = 'uint8' }))

-- Reals from LAION and COCO; fakes of 6 generators: sources LAION, COCO or unknown.
local path = tmp .. '/src.h5'
local specs = {
  { 'sd-l1', 'LatDiff', 'systematic', 'LAION' }, { 'sd-l2', 'LatDiff', 'systematic', 'LAION' },
  { 'sd-c1', 'LatDiff', 'systematic', 'COCO' }, { 'gan-c', 'GAN', 'manual', 'COCO' },
  { 'gan-l', 'GAN', 'manual', 'LAION' }, { 'mystery', 'GAN', 'manual' },
}
do
  local w = cfx.data.writer(path)
  local real = { LAION = w:generator('LAION', 'real', 'real'), COCO = w:generator('COCO', 'real', 'real') }
  for _, s in ipairs(specs) do
    local id = w:generator(s[1], s[2], s[3], s[4])
    assert(w:generator(s[1], s[2], s[3], s[4]) == id)   -- again, the same fields
    assert(w:generator(s[1], s[2], s[3]) == id)         -- no source given: agrees
    for j = 1, 5 do w:add { bytes = png, label = 1, generator = id, name = s[1] .. j } end
  end
  for j = 1, 10 do w:add { bytes = png, label = 0, generator = j % 2 == 0 and real.LAION or real.COCO, name = 'r' .. j } end
  w:finish()
end
local store = cfx.data.open(path)

describe('generator sources', function()
  it('are written and read back, empty when unknown', function()
    local by = {}
    for _, g in ipairs(store:generators()) do by[g.name] = g.source end
    assert.same({ LAION = '', COCO = '', ['sd-l1'] = 'LAION', ['sd-l2'] = 'LAION', ['sd-c1'] = 'COCO',
      ['gan-c'] = 'COCO', ['gan-l'] = 'LAION', mystery = '' }, by)
    local info = store:info()
    assert.same({ LAION = { real = 0, fake = 15 }, COCO = { real = 0, fake = 10 } }, info.sources)
    assert.equal('COCO', info.generators['gan-c'].source)
  end)
  it('are empty in a store written without them', function()
    local p = tmp .. '/none.h5'
    local w = cfx.data.writer(p)
    w:add { bytes = png, label = 1, generator = w:generator('g', 'GAN', 'manual'), name = 'x' }
    w:finish()
    local s = cfx.data.open(p)
    assert.equal('', s:generator(1).source)
    assert.same({}, s:info().sources)
    assert.equal(1, s:select { sources = { '' } }:counts().fake)
    assert.equal(0, s:select { sources = { 'LAION' } }:counts().fake)
    s:close()
  end)
  it('may not differ for one generator: the error names both', function()
    local w = cfx.data.writer(tmp .. '/bad.h5')
    w:generator('sd', 'LatDiff', 'systematic', 'LAION')
    local ok, e = pcall(w.generator, w, 'sd', 'LatDiff', 'systematic', 'COCO')
    assert.is_false(ok)
    assert.matches("'sd'", e)
    assert.matches("'LAION' then 'COCO'", e)
    ok, e = pcall(w.generator, w, 'sd', 'LatDiff', 'systematic', 3)
    assert.is_false(ok)
    assert.matches('source must be a string', e)
  end)
  it('select{sources=} keeps the fakes of those generators, with the other filters', function()
    local v = store:select { sources = { 'LAION' }, reals = 'none' }
    assert.same({ 'gan-l', 'sd-l1', 'sd-l2' }, v:generator_names())
    assert.same({ 'sd-c1' }, store:select { sources = 'COCO', subsets = 'systematic', reals = 'none' }:generator_names())
    assert.same({ 'gan-l' }, store:select { sources = { 'LAION' }, architectures = { 'GAN' } }:generator_names())
    local four = store:select { sources = { 'LAION', 'COCO' }, k = 4, seed = 1 }:generator_names()
    assert.equal(4, #four)
    for _, name in ipairs(four) do assert.is_not.equal('mystery', name) end
    -- reals follow reals=/real_sources=, not sources=
    local c = store:select { sources = { 'COCO' }, real_sources = { 'LAION' } }:counts()
    assert.same({ 10, 5 }, { c.fake, c.real })
    -- views compose
    local laion = store:select { sources = { 'LAION' } }
    assert.same({ 'sd-l1', 'sd-l2' }, laion:select { subsets = { 'systematic' } }:generator_names())
  end)
  teardown(function()
    store:close()
    os.execute('rm -rf ' .. tmp)
  end)
end)
