-- study.lua: cfx.study, the layer the paper's study scripts stand on (on cfx.experiment).
-- A study names what it varies and overrides the stages it changes; the recipe every
-- study shares is here: the base presets (cpu: synthetic data made on first use, tiny
-- models; paper: the paper's Appendix C values), the grid from the varied values, the
-- default pipeline  data -> train view -> model -> fit -> evaluate -> record, and the
-- report (mean +- SE grouped by the varied keys over the subsets).  See docs/experiments.md.
--
--   return cfx.study {
--     name = 'backbones', paper = 'Fig. 5b',
--     presets = { cpu = { backbones = { 'vit_micro_patch8_64', 'convnext_micro' } } },
--     vary = { model = 'backbones', subset = 'subset_ids' },    -- lists, or config keys holding them
--     report = { by = { 'model' } },
--   }
local core = require 'cfx.core'
local experiment = require 'cfx.experiment'
local data = require 'cfx.data'
local models = require 'cfx.models'
local optim = require 'cfx.optim'
local augment = require 'cfx.augment'
local eval = require 'cfx.eval'
local metrics = require 'cfx.metrics'
local synth = require 'cfx.synth'
local fs = require 'cfx.fs'
local raise = core.raise

local M = {}

-- The base presets.  k = 0 trains on every generator the view's filters keep;
-- train_subsets = '' keeps every subset ('systematic,manual' keeps those).
M.presets = {
  cpu = {
    train_store = 'data/synth/train.h5', eval_store = 'data/synth/eval.h5', dataset = 'synth',
    synth_train_generators = 96, synth_eval_generators = 32, synth_per_generator = 120, synth_seed = 0,
    model = 'resnet_micro', pretrained = '', img_size = 64, eval_resize = 0, n_max = 1,
    train_subsets = '', k = 0, budget = 360, subset_ids = { 1, 2, 3 },
    steps = 240, batch = 32, accumulate = 1, lr = 1e-3, weight_decay = 0.05, warmup = 0.1, clip = 1.0,
    precision = 'fp32', workers = 2, seed = 42, checkpoint_every = 80,
  },
  paper = {
    train_store = 'data/cf_train.h5', eval_store = 'data/cf_eval.h5', dataset = 'cf_eval',
    synth_train_generators = 0, synth_eval_generators = 0, synth_per_generator = 0, synth_seed = 0,
    model = 'vit_small_patch16_384', pretrained = 'weights/vit_small_patch16_384.augreg_in21k_ft_in1k.safetensors',
    img_size = 384, eval_resize = 440, n_max = 2,
    train_subsets = '', k = 0, budget = 50000, subset_ids = { 1, 2, 3 },
    steps = 3000, batch = 64, accumulate = 8, lr = 2e-5, weight_decay = 1e-2, warmup = 0.2, clip = 1.0,
    precision = 'bf16', workers = 8, seed = 42, checkpoint_every = 500,
  },
}

local copy = core.copy
local function words(s)
  local r = {}
  for w in tostring(s):gmatch('[^,%s]+') do r[#r + 1] = w end
  return r
end

-- ---- the default stages ------------------------------------------------------------------
-- A synthetic store of an older store format, or made by cfx synth of another version of
-- the model of the data, is made again: cfx made it, cfx can remake it.
local function usable(path)
  if not fs.exists(path) then return false end
  local ok, store = pcall(data.open, path)
  if not ok then
    if not tostring(store):match('format version') then error(store, 0) end
    -- kept, not overwritten: it may be a store of the user's of that format
    local kept = path .. '.old-format'
    local moved, err = os.rename(path, kept)
    if not moved then raise(('%s is of an older store format and cannot be moved aside: %s'):format(path, err)) end
    io.stderr:write(('%s is of an older store format; making it again (the old one kept as %s)\n'):format(path, kept))
    return false
  end
  local version, made_by = store:attr('synth_version'), store:attr('source')
  store:close()
  -- a store cfx synth did not make is the user's: used as it is, never made again
  if made_by ~= 'cfx synth' then return true end
  if version ~= tostring(synth.version) then
    io.stderr:write(('%s was made by version %s of cfx synth, not %d; making it again\n'):format(path,
      tostring(version or 1), synth.version))
    return false
  end
  return true
end

-- data(cfg): the cpu preset's synthetic stores, made once (cfx synth) and reused.
function M.data(cfg)
  if cfg.synth_train_generators <= 0 then return end
  if usable(cfg.train_store) and usable(cfg.eval_store) then return end
  local dir = cfg.train_store:match('^(.*)/[^/]*$') or '.'
  io.stderr:write(('making the synthetic dataset in %s (once)\n'):format(dir))
  local train, ev = synth.generate { out = dir, train_generators = cfg.synth_train_generators,
    eval_generators = cfg.synth_eval_generators, per_generator = cfg.synth_per_generator, size = cfg.img_size,
    seed = cfg.synth_seed }
  if train ~= cfg.train_store or ev ~= cfg.eval_store then
    raise('train_store and eval_store must be <dir>/train.h5 and <dir>/eval.h5 for the synthetic data')
  end
end

-- preprocess(cfg, train): the paper's augmentation for training, resize + centre crop for evaluation.
function M.preprocess(cfg, train)
  if train then return augment.randaugment { crop = cfg.img_size, n_max = cfg.n_max } end
  if cfg.eval_resize > 0 then return augment.eval { resize = cfg.eval_resize, crop = cfg.img_size } end
  return augment.eval { resize = false, crop = cfg.img_size }
end

-- train_view(cfg, store): k generators (0: all) of the kept subsets drawn with the run's
-- subset id as seed, a fake budget filled exactly, as many reals as fakes.
function M.train_view(cfg, store)
  local subsets = cfg.train_subsets ~= '' and words(cfg.train_subsets) or nil
  return store:select { subsets = subsets, k = cfg.k > 0 and cfg.k or nil, budget = cfg.budget, reals = 'balanced',
    seed = cfg.subset or 1 }
end

-- model(cfg): the configured backbone with a one-logit head, on the run's device.
function M.model(cfg)
  return models.create(cfg.model, { pretrained = cfg.pretrained ~= '' and cfg.pretrained or nil }):to(cfg.device)
end

-- fit(cfg, run, model, view) -> fit's result: AdamW, cosine schedule with warm-up.
function M.fit(cfg, run, model, view, study)
  local loader = data.loader { view = view, batch = cfg.batch, workers = cfg.workers,
    seed = cfg.seed + (cfg.subset or 0), augment = study.preprocess(cfg, true) }
  local r = run:fit { model = model, loader = loader, steps = cfg.steps, accumulate = cfg.accumulate,
    optim = optim.AdamW { params = model, lr = cfg.lr, weight_decay = cfg.weight_decay },
    schedule = optim.cosine { warmup = cfg.warmup, total = cfg.steps }, clip = cfg.clip,
    precision = cfg.precision, progress = false }
  loader:close()
  return r
end

-- evaluate(cfg, run, model) -> the protocol's tables on cfg.eval_store (recorded as cfg.dataset).
function M.evaluate(cfg, run, model, study)
  local store = data.open(cfg.eval_store)
  local ev = eval.run { model = model, store = store, preprocess = study.preprocess(cfg, false), batch = 128,
    workers = cfg.workers, precision = cfg.precision }
  local t = run:evaluate(cfg.dataset, ev)
  store:close()
  return t
end

-- ---- reports ------------------------------------------------------------------------------
-- One line per distinct value of the `by` keys: runs, mean AP +- SE and mean accuracy
-- +- SE over the other keys (the subsets), from the summaries of `dataset`; with
-- `architecture`, of that architecture's generators only (summary.architectures).
function M.table(rows, by, dataset, architecture)
  local groups, order = {}, {}
  for _, row in ipairs(rows) do
    local key = {}
    for i, k in ipairs(by) do key[i] = tostring(row.point[k]) end
    local id = table.concat(key, '\t')
    if not groups[id] then groups[id], order[#order + 1] = { key = key, ap = {}, acc = {} }, id end
    local s = row.summary[dataset] or {}
    if architecture then s = (s.architectures or {})[architecture] or {} end
    table.insert(groups[id].ap, architecture and s.ap or s.mean_ap)
    table.insert(groups[id].acc, architecture and s.acc or s.mean_acc)
  end
  table.sort(order, function(a, b)
    local x, y = groups[a].key, groups[b].key
    for i = 1, #x do
      if x[i] ~= y[i] then
        local nx, ny = tonumber(x[i]), tonumber(y[i])
        if nx and ny then return nx < ny end
        return x[i] < y[i]
      end
    end
    return false
  end)
  local out = {}
  for _, id in ipairs(order) do
    local g = groups[id]
    local ap, ap_se, n = metrics.mean_se(g.ap)
    local acc, acc_se = metrics.mean_se(g.acc)
    out[#out + 1] = { key = g.key, runs = n, ap = ap, ap_se = ap_se, acc = acc, acc_se = acc_se }
  end
  return out
end

-- The architectures the runs' summaries of `dataset` hold, sorted.
local function architectures_of(rows, dataset)
  local seen, list = {}, {}
  for _, row in ipairs(rows) do
    for a in pairs((row.summary[dataset] or {}).architectures or {}) do
      if not seen[a] then seen[a], list[#list + 1] = true, a end
    end
  end
  table.sort(list)
  return list
end

local function print_table(by, rows, dataset, architecture)
  local head = {}
  for i, k in ipairs(by) do head[i] = ('%-20s'):format(k) end
  print(table.concat(head, ' ') .. '  runs   mean AP +- SE      mean acc +- SE')
  for _, r in ipairs(M.table(rows, by, dataset, architecture)) do
    local cells = {}
    for i, v in ipairs(r.key) do cells[i] = ('%-20s'):format(v) end
    print(('%s  %4d   %.3f +- %.3f     %.3f +- %.3f'):format(table.concat(cells, ' '), r.runs, r.ap or 0 / 0,
      r.ap_se or 0, r.acc or 0 / 0, r.acc_se or 0))
  end
end

-- report = {by = {keys}, per_architecture = true}: the table over all generators of the
-- evaluation, then (per_architecture) one table per architecture of its generators.
local function report(study, rows, cfg)
  local by = study.report.by or {}
  print(('\n%s (%s preset, %s): on %s'):format(study.name, cfg.preset, study.paper or '', cfg.eval_store))
  print_table(by, rows, cfg.dataset)
  if study.report.per_architecture then
    for _, a in ipairs(architectures_of(rows, cfg.dataset)) do
      print(('\n  %s generators only'):format(a))
      print_table(by, rows, cfg.dataset, a)
    end
  end
end

-- ---- the study ----------------------------------------------------------------------------
local stages = { 'data', 'preprocess', 'train_view', 'model', 'fit', 'evaluate' }
local known = { name = true, paper = true, description = true, presets = true, vary = true, grid = true,
  report = true, record = true, run = true, summarize = true }
for _, s in ipairs(stages) do known[s] = true end

-- cfx.study{name=, paper=, description=, presets={cpu={...}, paper={...}}, vary= | grid=,
--   data=, preprocess=, train_view=, model=, fit=, evaluate=, record=, run=,
--   report={by={keys}} | summarize=function(rows, cfg)} -> an experiment.
-- presets: overrides of M.presets of the same name (a new preset names its base with
-- base='cpu'); each stage defaults to M.<stage> and receives the study last, so an
-- override may call the defaults (study.preprocess, ...); run= replaces the whole pipeline.
function M.new(spec)
  if type(spec) ~= 'table' then raise('cfx.study: expected a table') end
  for k in pairs(spec) do
    if not known[k] then raise(("cfx.study: unknown field '%s'"):format(tostring(k))) end
  end
  local study = { name = spec.name, paper = spec.paper, report = spec.report or { by = {} } }
  for _, s in ipairs(stages) do study[s] = spec[s] or M[s] end
  local presets = {}
  for name, over in pairs(spec.presets or { cpu = {}, paper = {} }) do
    local base = M.presets[over.base or name]
    if not base then raise(("cfx.study %s: preset '%s' has no base (give base='cpu' or 'paper')"):format(
      tostring(spec.name), name)) end
    local cfg = copy(base)
    for k, v in pairs(over) do if k ~= 'base' then cfg[k] = v end end
    presets[name] = cfg
  end
  local run = spec.run or function(cfg, r)
    core.C.cfx_manual_seed(cfg.seed + (cfg.subset or 0))
    local store = data.open(cfg.train_store)
    local view = study.train_view(cfg, store, study)
    local model = study.model(cfg, study)
    local fitted = study.fit(cfg, r, model, view, study)
    if fitted.interrupted then return end
    local t = study.evaluate(cfg, r, model, study)
    r:set { train_images = view.n, final_loss = fitted.losses[#fitted.losses] }
    if spec.record then spec.record(cfg, r, { view = view, model = model, fit = fitted, tables = t }) end
    io.stderr:write(('    %s: mean AP %.3f, mean acc %.3f (%d train images)\n'):format(r.id,
      t.summary.mean_ap or 0 / 0, t.summary.mean_acc or 0 / 0, view.n))
    store:close()
  end
  return experiment.new {
    name = spec.name, description = spec.description or spec.paper, presets = presets,
    grid = spec.grid or spec.vary, run = run,
    prepare = function(cfg) study.data(cfg, study) end,
    summarize = spec.summarize or function(rows, cfg) report(study, rows, cfg) end,
  }
end

-- cfx.study{...} is cfx.study.new{...}; the default stages stay reachable as cfx.study.<stage>.
return setmetatable(M, { __call = function(_, spec) return M.new(spec) end })
