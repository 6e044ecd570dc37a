-- cross_dataset.lua: Table 2 of the paper.  One detector per training subset, evaluated
-- on every evaluation set listed: the study's own eval store (`dataset`) and the sets of
-- `eval_sets` (name=path pairs), each scored with the paper's protocol and recorded as
-- its own dataset (eval/<name>, eval_arch/<name>, predictions/<name>).  The report is
-- the table of mAP and mean accuracy, one column per set.
--
-- The cpu preset builds its extra sets once, in its data stage, with cfx.synth.eval_set
-- (generators of a seed other than the training data's, so bases too are new):
--   gan_others       GAN and "other" (blocky upsampler) fakes, reals of COCO and
--                    LandscapesHQ only (not, as in data/synth, the fakes' own sources)
--   commercial_jpeg  commercial fakes only, reals re-encoded as JPEG (quality 75)
-- The paper preset lists the real benchmarks, stores made by `cfx data import`
-- (docs/data.md: the layouts of Wang et al., Ojha et al., Synthbuster, GenImage), and the
-- Community Forensics eval set's Public variant beside the Comprehensive one (cf_eval).
--
--   cfx experiments/cross_dataset.lua               # cpu preset
--   cfx experiments/cross_dataset.lua preset=paper eval_sets=wang=data/wang.h5,synthbuster=data/synthbuster.h5
local cfx = require 'cfx'

-- how the cpu preset's extra sets are made (cfx.synth.eval_set options), by name
local recipes = {
  gan_others = { families = { 'GAN', 'other' }, real_sources = { 'COCO', 'LandscapesHQ' } },
  commercial_jpeg = { subsets = { 'commercial' }, real_jpeg = 75 },
}

-- eval_sets as {{name=, path=}, ...}, checked
local function sets(cfg)
  local list, seen = {}, { [cfg.dataset] = true }
  for _, item in ipairs(cfg.eval_sets) do
    local name, path = tostring(item):match('^([%w_%-%.@]+)=(.+)$')
    if not name then
      error(("eval_sets: '%s' is not name=path (a dataset name of letters, digits, _-.@, then the store)"):format(
        tostring(item)), 0)
    end
    if seen[name] then error(("eval_sets: dataset '%s' given twice (or it is the study's dataset)"):format(name), 0) end
    seen[name], list[#list + 1] = true, { name = name, path = path }
  end
  return list
end

-- a store that opens; one of an older store format counts as absent (cfx made it, cfx remakes it)
local function usable(path)
  if not cfx.fs.exists(path) then return false end
  local ok, store = pcall(cfx.data.open, path)
  if ok then store:close() return true end
  if not tostring(store):match('format version') then error(store, 0) end
  io.stderr:write(('%s is of an older store format; making it again\n'):format(path))
  return false
end

local function score(cfg, model, study, path)
  local store = cfx.data.open(path)
  local ev = cfx.eval.run { model = model, store = store, preprocess = study.preprocess(cfg, false), batch = 128,
    workers = cfg.workers, precision = cfg.precision }
  return ev, store
end

return cfx.study {
  name = 'cross_dataset',
  paper = 'Table 2',
  description = 'one detector per subset, mAP and mean accuracy on several evaluation sets',
  presets = {
    cpu = { eval_sets = { 'gan_others=data/synth_cross/gan_others.h5',
      'commercial_jpeg=data/synth_cross/commercial_jpeg.h5' }, cross_generators = 12, cross_per_generator = 60,
      cross_seed = 100 },
    paper = { eval_sets = { 'cf_public=data/cf_eval_public.h5', 'wang=data/wang.h5', 'ojha=data/ojha.h5',
      'synthbuster=data/synthbuster.h5', 'genimage=data/genimage.h5' }, cross_generators = 0, cross_per_generator = 0,
      cross_seed = 100 },
  },
  vary = { subset = 'subset_ids' },
  -- the study's stores, then every listed set: made when the preset is synthetic and a
  -- recipe has its name, else it must be there
  data = function(cfg)
    cfx.study.data(cfg)
    for i, s in ipairs(sets(cfg)) do
      if not usable(s.path) then
        local recipe = recipes[s.name]
        if cfg.synth_train_generators <= 0 or cfg.cross_generators <= 0 or not recipe then
          local names = {}
          for k in pairs(recipes) do names[#names + 1] = k end
          table.sort(names)
          error(('eval_sets: %s (dataset %s) does not exist: import it (cfx data import, docs/data.md)%s'):format(
            s.path, s.name, cfg.synth_train_generators > 0 and
            (', or name it one of the synthetic recipes (%s)'):format(table.concat(names, ', ')) or ''), 0)
        end
        io.stderr:write(('making the synthetic eval set %s in %s (once)\n'):format(s.name, s.path))
        cfx.synth.eval_set { out = s.path, generators = cfg.cross_generators, per_generator = cfg.cross_per_generator,
          size = cfg.img_size, seed = cfg.cross_seed + i, families = recipe.families, subsets = recipe.subsets,
          real_sources = recipe.real_sources, real_jpeg = recipe.real_jpeg }
      end
    end
  end,
  -- the study's eval store as cfg.dataset, then each listed set as its own dataset
  evaluate = function(cfg, run, model, study)
    local main = cfx.study.evaluate(cfg, run, model, study)
    run.log_run:set('eval/' .. cfg.dataset, { eval_store = cfg.eval_store })
    for _, s in ipairs(sets(cfg)) do
      local ev, store = score(cfg, model, study, s.path)
      local t = run:evaluate(s.name, ev)
      run.log_run:set('eval/' .. s.name, { eval_store = s.path })
      io.stderr:write(('    %s: mean AP %.3f, mean acc %.3f\n'):format(s.name, t.summary.mean_ap or 0 / 0,
        t.summary.mean_acc or 0 / 0))
      store:close()
    end
    return main
  end,
  -- Table 2: one row per run and the mean +- SE over them, one column per evaluation set
  summarize = function(rows, cfg)
    local names = { cfg.dataset }
    for _, s in ipairs(sets(cfg)) do names[#names + 1] = s.name end
    table.sort(rows, function(a, b) return (a.point.subset or 0) < (b.point.subset or 0) end)
    local w = 16
    for _, n in ipairs(names) do w = math.max(w, #n + 2) end
    print(('\ncross_dataset (%s preset, Table 2): detectors trained on %s, evaluated on %d sets'):format(cfg.preset,
      cfg.train_store, #names))
    for _, metric in ipairs { { 'mean_ap', 'mAP' }, { 'mean_acc', 'mAcc' } } do
      local head = { ('%-14s'):format(metric[2]) }
      for _, n in ipairs(names) do head[#head + 1] = ('%' .. w .. 's'):format(n) end
      print(table.concat(head, ' '))
      local per = {}
      for _, r in ipairs(rows) do
        local cells = { ('%-14s'):format(r.id) }
        for j, n in ipairs(names) do
          local v = (r.summary[n] or {})[metric[1]]
          per[j] = per[j] or {}
          table.insert(per[j], v)
          cells[#cells + 1] = ('%' .. w .. 's'):format(v and ('%.3f'):format(v) or '-')
        end
        print(table.concat(cells, ' '))
      end
      if #rows > 1 then
        local cells = { ('%-14s'):format('mean +- SE') }
        for j = 1, #names do
          local m, se = cfx.metrics.mean_se(per[j] or {})
          cells[#cells + 1] = ('%' .. w .. 's'):format(m and ('%.3f +- %.3f'):format(m, se or 0) or '-')
        end
        print(table.concat(cells, ' '))
      end
    end
  end,
}
