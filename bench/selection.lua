-- selection.lua: the cfx half of bench/selection.py (arguments: store path, n, generators, repeats).
-- Writes the store when it is missing (the layout of bench/selection.py's arrays), then
-- times opening it, three selections and the protocol's tables over n scores.
local cfx = require 'cfx'
local bench_dir = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') or 'bench'
local now = dofile(bench_dir .. '/clock.lua')()
local path, n, G, repeats = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])

-- image i (0-based): fake when i is even, of generator (i / 2) % G; reals from 4 sources
local function write()
  local w = cfx.data.writer(path)
  local src = {}
  for k = 1, 4 do src[k] = w:generator(({ 'COCO', 'FFHQ', 'LAION', 'LandscapesHQ' })[k], 'real', 'real') end
  local gen = {}
  for g = 0, G - 1 do gen[g] = w:generator(('model-%05d'):format(g), g % 10 == 0 and 'GAN' or 'LatDiff', 'systematic') end
  for i = 0, n - 1 do
    local fake = i % 2 == 0
    w:add { bytes = 'x', label = fake and 1 or 0, generator = fake and gen[(i / 2) % G] or src[i % 8 / 2 + 0.5],
      name = ('HFCF_small_%03d.parquet-row-%07d.png'):format(i % 186, i), probe = false, format = 'png' }
  end
  w:finish()
end
if not io.open(path) then local t0 = now(); write(); io.stderr:write(('wrote %s in %.1f s\n'):format(path, now() - t0)) end

local function best(fn)
  local b, r = math.huge, nil
  for _ = 1, repeats do
    local t0 = now()
    r = fn()
    b = math.min(b, now() - t0)
  end
  return b, r
end
local t_open, store = best(function() return cfx.data.open(path) end)
print('open', t_open, store:count())
local t, v = best(function() return store:select { k = math.min(100, G), budget = 50000, reals = 'balanced', seed = 1 } end)
print('select_k_budget', t, v:count())
t, v = best(function() return store:select { split = 'train', split_by = 'image', val_fraction = 0.1, seed = 1 } end)
print('select_split_image', t, v:count())
t, v = best(function() return store:select { per_generator = 100, reals = 'balanced', seed = 2 } end)
print('select_per_generator', t, v:count())
-- scores for every image: the protocol's tables (reals dealt out, as the store's pairing says)
local labels = store:labels()
local scores = (cfx.rand(n, { dtype = 'float64' }) * 1000):round() / 1000 * 0.6 + labels:double() * 0.3
local r = { scores = scores, labels = labels, generators = store:generator_ids(), indices = cfx.arange(1, n + 1):long(),
  store = store, threshold = 0.5 }
t = best(function() return cfx.eval.tables(r) end)
print('eval_tables', t, n)
