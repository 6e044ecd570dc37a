-- alignment.lua: Fig. 6b of the paper.  Is it essential to pair the generated images
-- with the real data their prompts came from?  Two real sets R: LAION alone, or every
-- other real source.  Fakes of the systematic generators, each with the source F of its
-- content (the store's /generators/source): LAION or others.  Each run trains on the
-- fakes of both kinds (the fakes fixed) with the reals of R, and is scored on the eval
-- store's fakes of each F separately (datasets <dataset>@F=LAION, <dataset>@F=others)
-- as well as on the whole store.  The paper found every R x F pair within a margin.
-- fake_sets=LAION,others trains on the fakes of one F at a time instead (R x F pairs);
-- aligned_source= names another source to align with.
--
--   cfx experiments/alignment.lua               # cpu preset
--   cfx experiments/alignment.lua preset=paper
local cfx = require 'cfx'

local function words(s)
  local r = {}
  for w in tostring(s):gmatch('[^,%s]+') do r[#r + 1] = w end
  return r
end

-- The names behind a kind in a store ('others': every one but the aligned source; any
-- other kind: that name alone): of the real sources (generators holding reals) or of the
-- fakes' content sources (of generators in `subsets`), sorted.
local function names_of(store, kind, aligned, want, subsets)
  local keep, seen, r = {}, {}, {}
  for _, s in ipairs(subsets) do keep[s] = true end
  for name, g in pairs(store:info().generators) do
    local value
    if want == 'reals' then
      value = g.real > 0 and name
    else
      value = g.fake > 0 and g.source ~= '' and (#subsets == 0 or keep[g.subset]) and g.source
    end
    if value and not seen[value] and (kind == 'others' and value ~= aligned or value == kind) then
      seen[value], r[#r + 1] = true, value
    end
  end
  table.sort(r)
  if #r == 0 then
    error(('%s holds no %s %s (aligned_source=%s%s)%s'):format(store.path,
      want == 'reals' and 'reals from' or 'fakes of generators whose content source is', kind == 'others' and
      'another source' or kind, aligned, #subsets > 0 and (', subsets ' .. table.concat(subsets, ',')) or '',
      want == 'reals' and '' or ': a store says its generators\' sources in /generators/source (docs/data.md)'), 0)
  end
  return r
end

return cfx.study {
  name = 'alignment',
  paper = 'Fig. 6b',
  description = 'reals aligned with the fakes\' content source (LAION) vs other reals, scored per fake source',
  presets = {
    cpu = { real_sets = { 'LAION', 'others' }, fake_sets = { 'both' }, aligned_source = 'LAION',
      train_subsets = 'systematic', eval_subsets = 'systematic', k = 0 },
    paper = { real_sets = { 'LAION', 'others' }, fake_sets = { 'both' }, aligned_source = 'LAION',
      train_subsets = 'systematic', eval_subsets = 'systematic', k = 0 },
  },
  vary = { reals = 'real_sets', fakes = 'fake_sets', subset = 'subset_ids' },
  -- the stores (made first for the cpu preset), checked before any training: reals of both
  -- R, fakes of both F
  data = function(cfg)
    cfx.study.data(cfg)
    for _, p in ipairs { { cfg.train_store, cfg.train_subsets }, { cfg.eval_store, cfg.eval_subsets } } do
      local store = cfx.data.open(p[1])
      for _, kind in ipairs { cfg.aligned_source, 'others' } do
        names_of(store, kind, cfg.aligned_source, 'fakes', words(p[2]))
        if p[1] == cfg.train_store then names_of(store, kind, cfg.aligned_source, 'reals', {}) end
      end
      store:close()
    end
  end,
  -- fakes of F (both kinds, or one), reals of R only, as many as the fakes
  train_view = function(cfg, store)
    local subsets = words(cfg.train_subsets)
    local sources = {}
    for _, kind in ipairs(cfg.fakes == 'both' and { cfg.aligned_source, 'others' } or { cfg.fakes }) do
      for _, s in ipairs(names_of(store, kind, cfg.aligned_source, 'fakes', subsets)) do sources[#sources + 1] = s end
    end
    return store:select { subsets = #subsets > 0 and subsets or nil, sources = sources, k = cfg.k > 0 and cfg.k or nil,
      budget = cfg.budget, reals = 'balanced', real_sources = names_of(store, cfg.reals, cfg.aligned_source, 'reals', {}),
      seed = cfg.subset }
  end,
  -- the whole eval store as the study's dataset, then its fakes of each F (eval_subsets)
  -- with as many of its reals (the same ones in every run), so that each generator is
  -- scored against about as many reals as in the whole store
  evaluate = function(cfg, run, model, study)
    local store = cfx.data.open(cfg.eval_store)
    local subsets = words(cfg.eval_subsets)
    local function score(name, view)
      local ev = cfx.eval.run { model = model, view = view, preprocess = study.preprocess(cfg, false), batch = 128,
        workers = cfg.workers, precision = cfg.precision }
      return run:evaluate(name, ev, { predictions = name == cfg.dataset })
    end
    local all = score(cfg.dataset, store:all())
    for _, kind in ipairs { cfg.aligned_source, 'others' } do
      local sources = names_of(store, kind, cfg.aligned_source, 'fakes', subsets)
      score(('%s@F=%s'):format(cfg.dataset, kind),
        store:select { subsets = #subsets > 0 and subsets or nil, sources = sources, reals = 'balanced',
        seed = 0 })
    end
    store:close()
    return all
  end,
  -- R x F: mean AP +- SE and mean accuracy over the subsets
  summarize = function(rows, cfg)
    local a = cfg.aligned_source
    print(('\nalignment (%s preset, Fig. 6b): on %s, by the training reals R and the source F of the fakes')
      :format(cfg.preset, cfg.eval_store))
    local cols = { ('%s@F=%s'):format(cfg.dataset, a), ('%s@F=others'):format(cfg.dataset), cfg.dataset }
    print(('%-10s %-8s %-24s %-24s %-24s'):format('R', 'fakes', 'F=' .. a, 'F=others', 'all'))
    local cells, keys = {}, {}
    for j, ds in ipairs(cols) do
      for _, t in ipairs(cfx.study.table(rows, { 'reals', 'fakes' }, ds)) do
        local id = t.key[1] .. '\t' .. t.key[2]
        if not cells[id] then cells[id], keys[#keys + 1] = {}, t.key end
        cells[id][j] = ('%.3f +- %.3f (%.3f)'):format(t.ap or 0 / 0, t.ap_se or 0, t.acc or 0 / 0)
      end
    end
    for _, key in ipairs(keys) do
      local c = cells[key[1] .. '\t' .. key[2]]
      print(('%-10s %-8s %-24s %-24s %-24s'):format(key[1], key[2], c[1] or '-', c[2] or '-', c[3] or '-'))
    end
    print('cells: mean AP +- SE over the subsets (mean accuracy)')
  end,
}
