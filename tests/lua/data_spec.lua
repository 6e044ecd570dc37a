-- data_spec.lua: stores from Lua, selection views, and the loader's determinism
-- (worker counts, resume), shapes and failure accounting.
local cfx = require 'cfx'

local tmp = os.tmpname()
os.remove(tmp)
os.execute('mkdir -p ' .. tmp)

-- A store of 20 generators x 12 fakes + 240 reals, small JPEGs, one broken entry.
local path = tmp .. '/s.h5'
local payload = {}
do
  cfx.manual_seed(1)
  local w = cfx.data.writer(path)
  local coco = w:generator('COCO', 'real', 'real')
  local ffhq = w:generator('FFHQ', 'real', 'real')
  local gens = {}
  for g = 1, 20 do
    gens[g] = w:generator(('gen%02d'):format(g), g <= 10 and 'LatDiff' or 'GAN', g % 2 == 0 and 'manual' or 'systematic')
  end
  local i = 0
  for g = 1, 20 do
    for _ = 1, 12 do
      i = i + 1
      payload[i] = cfx.image.encode_jpeg(cfx.randint(0, 256, { 40, 48, 3 }, { dtype = 'uint8' }), 90)
      w:add { bytes = payload[i], label = 1, generator = gens[g], name = 'fake' .. i }
      i = i + 1
      payload[i] = cfx.image.encode_png(cfx.randint(0, 256, { 40, 40, 3 }, { dtype = 'uint8' }))
      w:add { bytes = payload[i], label = 0, generator = i % 4 == 0 and ffhq or coco, name = 'real' .. i }
    end
  end
  w:add { bytes = 'not an image', label = 1, generator = gens[1], name = 'broken', probe = false }
  w:finish()
end
local store = cfx.data.open(path)

describe('a store', function()
  it('returns every image byte for byte, with its metadata', function()
    assert.equal(481, store:count())
    for i = 1, 480 do assert.equal(payload[i], store:bytes(i)) end
    local m = store:meta(1)
    assert.same({ 48, 40, 'jpeg', 1, 'fake1' }, { m.width, m.height, m.format, m.label, m.name })
    assert.equal('png', store:meta(2).format)
    assert.same({ 40, 48, 3 }, store:image(1):shape())
    local g = store:generator(store:generator_id(1))
    assert.same({ 'gen01', 'LatDiff', 'systematic' }, { g.name, g.architecture, g.subset })
  end)
  it('names the image when it cannot decode it', function()
    local ok, e = pcall(store.image, store, 481)
    assert.is_false(ok)
    assert.matches("image 481 %(broken%)", e)
  end)
  it('describes itself', function()
    local info = store:info()
    assert.equal(240, info.real)
    assert.equal(241, info.fake)
    assert.equal(121, info.architectures.LatDiff.fake)
    assert.equal(12, info.generators.gen05.fake)
  end)
  it('refuses a bad index and a bad path with the path in the message', function()
    assert.has_error(function() store:bytes(0) end)
    local ok, e = pcall(cfx.data.open, tmp .. '/none.h5')
    assert.matches('none%.h5', e)
  end)
  it('once closed, refuses every use with a clear error, its views too, and closes again quietly', function()
    local s = cfx.data.open(path)
    local v = s:select { k = 2, seed = 1 }
    s:close()
    s:close()
    assert.matches('%(closed%)', tostring(s))
    for _, use in ipairs {
      function() return s:count() end, function() return s:bytes(1) end, function() return s:info() end,
      function() return v:select { k = 1 } end, function() return v:counts() end,
    } do
      local ok, e = pcall(use)
      assert.is_false(ok)
      assert.matches('s%.h5: the store is closed', e)
    end
  end)
end)

describe('selection', function()
  it('draws k generators with a seed, nested as k grows', function()
    local small = store:select { k = 3, seed = 4, reals = 'none' }:generator_names()
    local large = store:select { k = 8, seed = 4, reals = 'none' }:generator_names()
    assert.equal(3, #small)
    assert.equal(8, #large)
    local set = {}
    for _, n in ipairs(large) do set[n] = true end
    for _, n in ipairs(small) do assert.is_true(set[n]) end
    assert.are_not.same(small, store:select { k = 3, seed = 5, reals = 'none' }:generator_names())
    assert.has_error(function() store:select { k = 50 } end)
  end)
  it('splits a budget evenly and balances reals', function()
    local c = store:select { k = 4, budget = 20, reals = 'balanced', seed = 1 }:counts()
    assert.same({ images = 40, real = 20, fake = 20, generators = 4 }, c)
    c = store:select { per_generator = 3, reals = 'none' }:counts()
    assert.equal(20 * 3, c.fake) -- 20 generators, 3 each (gen01 has 13 images, one broken)
  end)
  it('fills a budget exactly, taking what small generators lack from the larger ones', function()
    -- per_generator caps the 20 generators at 3 .. 12 images: gen g holds min(12, 2 + g % 11)
    local warned = {}
    local warn = cfx.data.warn
    cfx.data.warn = function(msg) warned[#warned + 1] = msg end
    local function count_by_gen(v)
      local by = {}
      for _, i in ipairs(v:indices()) do
        if store:label(i) == 1 then
          local g = store:generator(store:generator_id(i)).name
          by[g] = (by[g] or 0) + 1
        end
      end
      return by
    end
    -- 4 generators with 12 each can give 48: a budget of 46 is 12 + 12 + 11 + 11
    local v = store:select { k = 4, budget = 46, reals = 'balanced', seed = 2 }
    local c = v:counts()
    assert.same({ images = 92, real = 46, fake = 46, generators = 4 }, c)
    local shares = {}
    for _, n in pairs(count_by_gen(v)) do shares[#shares + 1] = n end
    table.sort(shares)
    assert.same({ 11, 11, 12, 12 }, shares)
    -- gen01 (broken entry included) has 13 fakes; with per_generator = 2 the others give
    -- 2 each and the budget is short: all 40 taken and one warning naming the numbers
    assert.equal(0, #warned)
    v = store:select { budget = 50, per_generator = 2, reals = 'none' }
    assert.equal(40, v:counts().fake)
    assert.equal(10, v.shortfall)
    assert.equal(1, #warned)
    assert.matches('budget=50', warned[1])
    assert.matches('hold only 40 fake images', warned[1])
    cfx.data.warn = warn
    assert.has_error(function() store:select { budget = -1 } end, 'select: budget must be a whole number of images >= 0, got -1')
  end)
  it('selects past LuaJIT\'s unpack limit: 30000 reals balanced against 9000 fakes', function()
    local big = tmp .. '/big.h5'
    local w = cfx.data.writer(big)
    local real_src = w:generator('COCO', 'real', 'real')
    local g = {}
    for k = 1, 3 do g[k] = w:generator('g' .. k, 'LatDiff', 'systematic') end
    for i = 1, 30000 do w:add { bytes = 'r', label = 0, generator = real_src, name = 'r' .. i, probe = false, format = 'png' } end
    -- g1 1000 fakes, g2 3000, g3 5000
    for i = 1, 9000 do
      w:add { bytes = 'f', label = 1, generator = g[i <= 1000 and 1 or i <= 4000 and 2 or 3], name = 'f' .. i,
        probe = false, format = 'png' }
    end
    w:finish()
    local s = cfx.data.open(big)
    local v = s:select { reals = 'balanced', budget = 8999, seed = 3 }
    assert.same({ images = 17998, real = 8999, fake = 8999, generators = 3 }, v:counts())
    -- an even share is 2999 or 3000: g1 gives its 1000, g2 all 3000 of the 3999 it is
    -- then asked, g3 the remaining 4999
    local by = { 0, 0, 0 }
    for _, i in ipairs(v:indices()) do
      if s:label(i) == 1 then by[s:generator_id(i) - 1] = by[s:generator_id(i) - 1] + 1 end
    end
    assert.same({ 1000, 3000, 4999 }, by)
    local idx = v:indices()
    for j = 2, #idx do assert.is_true(idx[j] > idx[j - 1]) end -- ascending, no repeats
    v = s:select { split = 'val', split_by = 'image', val_fraction = 0.5, seed = 1 }
    local c = v:counts()
    assert.is_true(c.real > 14000 and c.real < 16000 and c.fake > 4200 and c.fake < 4800)
    s:close()
  end)
  it('filters by architecture, subset, real source and label', function()
    assert.equal(10, store:select { architectures = { 'GAN' }, reals = 'none' }:counts().generators)
    assert.equal(5, store:select { architectures = 'GAN', subsets = 'manual', reals = 'none' }:counts().generators)
    assert.equal(120, store:select { real_sources = { 'FFHQ' }, labels = 0 }:counts().real) -- every other real
  end)
  it('keeps train and val generators disjoint when splitting by generator', function()
    local tr = store:select { split = 'train', val_fraction = 0.3, seed = 9 }
    local va = store:select { split = 'val', val_fraction = 0.3, seed = 9 }
    assert.equal(481, tr:count() + va:count())
    local seen = {}
    for _, n in ipairs(tr:generator_names()) do seen[n] = true end
    for _, n in ipairs(va:generator_names()) do assert.is_nil(seen[n]) end
    assert.is_true(#va:generator_names() > 0)
  end)
  it('composes: a selection of a selection', function()
    local v = store:select { architectures = 'LatDiff', reals = 'none' }:select { k = 2, seed = 3 }
    assert.equal(2, v:counts().generators)
    for _, n in ipairs(v:generator_names()) do assert.is_true(tonumber(n:sub(4)) <= 10) end
  end)
end)

describe('the loader', function()
  local aug = cfx.augment.randaugment { crop = 24 }
  local function fingerprints(opts)
    opts.store, opts.augment, opts.batch, opts.seed = store, aug, 16, 11
    local L = cfx.data.loader(opts)
    local r = {}
    for b in L:batches() do
      r[#r + 1] = ('%d:%d:%.0f:%d'):format(b.sequence, b.images:size(1), b.images:double():sum():item(),
        b.indices:sum():item())
    end
    return r, L
  end

  it('gives the same batches with 1 and 3 workers, and after resuming', function()
    local one = fingerprints { workers = 1, max_batches = 40 }
    local three = fingerprints { workers = 3, max_batches = 40 }
    local resumed = fingerprints { workers = 2, start = 17, max_batches = 23 }
    assert.equal(40, #one)
    assert.same(one, three)
    for j = 1, 23 do assert.equal(one[17 + j], resumed[j]) end
  end)

  it('makes uint8 NCHW batches with labels, 1-based generator ids and indices', function()
    local L = cfx.data.loader { view = store:select { k = 2, seed = 1 }, augment = cfx.augment.eval { resize = 32, crop = 28 },
      batch = 8, workers = 2, shuffle = false, max_batches = 1 }
    local b = L:next()
    assert.same({ 8, 3, 28, 28 }, b.images:shape())
    assert.equal('uint8', b.images:dtype())
    for j = 1, 8 do
      local i = b.indices[j]:item()
      assert.equal(store:label(i), b.labels[j]:item())
      assert.equal(store:generator_id(i), b.generators[j]:item())
    end
    assert.is_nil(L:next())
    assert.equal(0, L:state().position - 1)
  end)

  it('reshuffles each epoch and covers the view', function()
    local v = store:select { k = 2, seed = 1, reals = 'none' } -- 24 images
    local L = cfx.data.loader { view = v, augment = cfx.augment.eval { resize = 32, crop = 24 }, batch = 24, workers = 2,
      seed = 3, max_batches = 2 }
    local e1, e2 = L:next(), L:next()
    assert.same({ 0, 1 }, { e1.epoch, e2.epoch })
    assert.are_not.same(e1.indices:totable(), e2.indices:totable())
    assert.same(e1.indices:sort():totable(), e2.indices:sort():totable())
  end)

  it('leaves out, counts and names an image it cannot decode', function()
    local L = cfx.data.loader { store = store, augment = cfx.augment.eval { resize = 32, crop = 24 }, batch = 481,
      workers = 1, shuffle = false, max_batches = 1 }
    local b = L:next()
    assert.equal(480, b.images:size(1))
    local s = L:stats()
    assert.equal(1, s.failed)
    assert.equal(481, s.last_failed)
    assert.matches("image 'broken'", s.last_failure)
  end)

  it("leaves libtorch's thread count alone (the caller decides it)", function()
    local prev = cfx.threads()
    for _, n in ipairs { 1, 3 } do
      cfx.threads(n)
      for _, workers in ipairs { 1, 2 } do
        local L = cfx.data.loader { store = store, augment = aug, batch = 4, workers = workers, max_batches = 1 }
        L:next()
        L:close()
        assert.equal(n, cfx.threads())
      end
    end
    cfx.threads(prev)
    local ok, e = pcall(cfx.data.loader, { store = store, augment = aug, threads = 2 })
    assert.is_false(ok)
    assert.matches("unknown option 'threads'", e)
  end)

  it('rejects bad options clearly', function()
    local ok, e = pcall(cfx.data.loader, { store = store, augment = aug, batchsize = 3 })
    assert.matches("unknown option 'batchsize'", e)
    ok, e = pcall(cfx.data.loader, { store = store, augment = cfx.augment.perturb { kind = 'blur', level = 1 } })
    assert.matches('fixed size', e)
  end)
end)
