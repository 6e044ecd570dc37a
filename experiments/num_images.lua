-- num_images.lua: Fig. 4 of the paper.  The number of training images varied, spent
-- either on many generators drawn at random or on the few "popular" ones (the largest
-- generators of the store; ties broken at random by the subset's seed), 4 subsets each.
-- Many generators should beat a few at every budget, with the gap wider in accuracy
-- than in AP.
--
--   cfx experiments/num_images.lua               # cpu preset
--   cfx experiments/num_images.lua preset=paper
local cfx = require 'cfx'

return cfx.study {
  name = 'num_images',
  paper = 'Fig. 4',
  description = 'many generators with few images each vs few generators with many',
  presets = {
    cpu = { budgets = { 90, 180, 360 }, sources = { 'many', 'few' }, many_k = 32, few_k = 3, subset_ids = { 1, 2, 3, 4 } },
    paper = { budgets = { 10000, 30000, 100000 }, sources = { 'many', 'few' }, many_k = 1000, few_k = 10,
      subset_ids = { 1, 2, 3, 4 } },
  },
  vary = { budget = 'budgets', source = 'sources', subset = 'subset_ids' },
  train_view = function(cfg, store)
    if cfg.source == 'many' then
      return store:select { k = cfg.many_k, budget = cfg.budget, reals = 'balanced', seed = cfg.subset }
    end
    -- the few_k largest generators (by fake images), ties in a seeded order
    local info, sizes = store:info(), {}
    for name, g in pairs(info.generators) do
      if g.fake > 0 then sizes[#sizes + 1] = { name = name, n = g.fake } end
    end
    table.sort(sizes, function(a, b) return a.n > b.n or (a.n == b.n and a.name < b.name) end)
    local cut = sizes[math.min(cfg.few_k, #sizes)].n
    local tied, chosen = {}, {}
    for _, s in ipairs(sizes) do
      if s.n > cut then chosen[#chosen + 1] = s.name elseif s.n == cut then tied[#tied + 1] = s.name end
    end
    local pick = store:select { generators = tied, k = cfg.few_k - #chosen, reals = 'none', seed = cfg.subset }
    for _, name in ipairs(pick:generator_names()) do chosen[#chosen + 1] = name end
    return store:select { generators = chosen, budget = cfg.budget, reals = 'balanced', seed = cfg.subset }
  end,
  report = { by = { 'budget', 'source' } },
}
