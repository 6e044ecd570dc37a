-- scaling_models.lua: Fig. 1 and 3 of the paper.  Train on k randomly chosen generators
-- (k log-spaced from 3 up to all), several random subsets per k with the number of
-- training images fixed, and evaluate on generators never seen in training; report
-- mean AP / accuracy per run, per generator and per architecture.
--
--   cfx experiments/scaling_models.lua                   # cpu preset: synthetic data, ~10 min
--   cfx experiments/scaling_models.lua --list            # the grid
--   cfx experiments/scaling_models.lua preset=paper train_store=... eval_store=... pretrained=...
local cfx = require 'cfx'

-- k from k_min to k_max, about `count` values evenly spaced in log scale (integers, distinct).
local function log_spaced(k_min, k_max, count)
  local ks, seen = {}, {}
  for i = 0, count - 1 do
    local k = math.floor(math.exp(math.log(k_min) + (math.log(k_max) - math.log(k_min)) * i / math.max(count - 1, 1)) + 0.5)
    if not seen[k] then seen[k], ks[#ks + 1] = true, k end
  end
  return ks
end

-- The cpu preset's data (made on first use, remade when of an older store format) and the
-- preprocessing are the study layer's (cfx.study.data, cfx.study.preprocess).
local preprocess = cfx.study.preprocess

return cfx.experiment {
  name = 'scaling_models',
  description = 'number of training generators vs AP on unseen generators (Fig. 1, 3)',
  presets = {
    cpu = {
      train_store = 'data/synth_scaling/train.h5', eval_store = 'data/synth_scaling/eval.h5', dataset = 'synth',
      synth_train_generators = 64, synth_eval_generators = 32, synth_per_generator = 120, synth_seed = 0,
      model = 'resnet_micro', pretrained = '', img_size = 64, eval_resize = 0, n_max = 1,
      k_min = 3, k_max = 64, k_count = 4, subsets = 3, budget = 360,
      steps = 240, batch = 32, accumulate = 1, lr = 1e-3, weight_decay = 0.05, warmup = 0.1, clip = 1.0,
      precision = 'fp32', workers = 2, seed = 42, checkpoint_every = 80,
    },
    paper = {
      train_store = 'data/cf_train.h5', eval_store = 'data/cf_eval.h5', dataset = 'cf_eval',
      synth_train_generators = 0, synth_eval_generators = 0, synth_per_generator = 0, synth_seed = 0,
      model = 'vit_small_patch16_384', pretrained = 'weights/vit_small_patch16_384.augreg_in21k_ft_in1k.safetensors',
      img_size = 384, eval_resize = 440, n_max = 2,
      k_min = 3, k_max = 3333, k_count = 8, subsets = 10, budget = 50000,
      steps = 3000, batch = 64, accumulate = 8, lr = 2e-5, weight_decay = 1e-2, warmup = 0.2, clip = 1.0,
      precision = 'bf16', workers = 8, seed = 42, checkpoint_every = 500,
    },
  },

  grid = function(cfg)
    local points = {}
    for _, k in ipairs(log_spaced(cfg.k_min, cfg.k_max, cfg.k_count)) do
      for s = 1, cfg.subsets do points[#points + 1] = { k = k, subset = s } end
    end
    return points
  end,

  prepare = function(cfg) cfx.study.data(cfg) end,

  run = function(cfg, run)
    cfx.manual_seed(cfg.seed + cfg.subset)
    local train = cfx.data.open(cfg.train_store)
    -- k generators drawn with the subset's seed; the fake-image budget split evenly over
    -- them; as many reals as fakes
    local view = train:select { k = cfg.k, budget = cfg.budget, reals = 'balanced', seed = cfg.subset }
    -- on the run's device (cfg.device: 'auto' resolved) before its optimizer is built
    local model = cfx.models.create(cfg.model, { pretrained = cfg.pretrained ~= '' and cfg.pretrained or nil })
        :to(cfg.device)
    local loader = cfx.data.loader { view = view, batch = cfg.batch, workers = cfg.workers, seed = cfg.seed + cfg.subset,
      augment = preprocess(cfg, true) }
    local r = run:fit { model = model, loader = loader, steps = cfg.steps, accumulate = cfg.accumulate,
      optim = cfx.optim.AdamW { params = model, lr = cfg.lr, weight_decay = cfg.weight_decay },
      schedule = cfx.optim.cosine { warmup = cfg.warmup, total = cfg.steps }, clip = cfg.clip,
      precision = cfg.precision, progress = false }
    loader:close()
    if r.interrupted then return end
    local ev = cfx.eval.run { model = model, store = cfx.data.open(cfg.eval_store), preprocess = preprocess(cfg, false),
      batch = 128, workers = cfg.workers, precision = cfg.precision }
    local t = run:evaluate(cfg.dataset, ev)
    run:set { train_images = view.n, final_loss = r.losses[#r.losses] }
    io.stderr:write(('    k=%d subset=%d: mean AP %.3f, mean acc %.3f (%d train images)\n'):format(cfg.k, cfg.subset,
      t.summary.mean_ap or 0 / 0, t.summary.mean_acc or 0 / 0, view.n))
  end,

  -- The scaling table: k, mean AP +- standard error over subsets, mean accuracy.
  summarize = function(rows, cfg)
    local by_k, ks = {}, {}
    for _, row in ipairs(rows) do
      local k = row.point.k
      if not by_k[k] then by_k[k], ks[#ks + 1] = { ap = {}, acc = {} }, k end
      local s = row.summary[cfg.dataset] or {}
      table.insert(by_k[k].ap, s.mean_ap)
      table.insert(by_k[k].acc, s.mean_acc)
    end
    table.sort(ks)
    print(('\nscaling_models (%s preset): AP on %s, generators unseen in training'):format(cfg.preset, cfg.eval_store))
    print('     k   runs   mean AP +- SE     mean acc')
    for _, k in ipairs(ks) do
      local ap, se, n = cfx.metrics.mean_se(by_k[k].ap)
      local acc = cfx.metrics.mean_se(by_k[k].acc)
      print(('%6d   %4d   %.3f +- %.3f     %.3f'):format(k, n, ap or 0 / 0, se or 0, acc or 0 / 0))
    end
  end,
}
