-- iterations.lua: Fig. 13 of the paper.  One run per subset of training generators,
-- evaluated on unseen generators every `eval_every` steps along training: AP rises, then
-- flattens.  The curve is the run's table curve/<dataset> (step, mean_ap, mean_acc).
--
--   cfx experiments/iterations.lua               # cpu preset
--   cfx experiments/iterations.lua preset=paper
local cfx = require 'cfx'

return cfx.study {
  name = 'iterations',
  paper = 'Fig. 13',
  description = 'AP on unseen generators along training',
  presets = { cpu = { k = 32, steps = 400, eval_every = 50, checkpoint_every = 50 },
    paper = { k = 3333, steps = 52000, eval_every = 4000, checkpoint_every = 4000 } },
  vary = { subset = 'subset_ids' },
  fit = function(cfg, run, model, view, study)
    local loader = cfx.data.loader { view = view, batch = cfg.batch, workers = cfg.workers, seed = cfg.seed + cfg.subset,
      augment = study.preprocess(cfg, true) }
    local curve = 'curve/' .. cfg.dataset
    local r = run:fit { model = model, loader = loader, steps = cfg.steps, accumulate = cfg.accumulate,
      optim = cfx.optim.AdamW { params = model, lr = cfg.lr, weight_decay = cfg.weight_decay },
      schedule = cfx.optim.cosine { warmup = cfg.warmup, total = cfg.steps }, clip = cfg.clip,
      precision = cfg.precision, progress = false,
      eval = { every = cfg.eval_every, fn = function(m, step)
        local t = study.evaluate(cfg, run, m, study)
        run.log_run:truncate(curve, 'step', step - 1) -- a resumed run rewrites what follows its checkpoint
        run.log_run:scalars(curve, { step = step, mean_ap = t.summary.mean_ap or 0 / 0, mean_acc = t.summary.mean_acc or 0 / 0 })
      end } }
    loader:close()
    return r
  end,
  report = { by = {} },
}
