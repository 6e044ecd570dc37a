-- diversity.lua: Fig. 5a of the paper.  Detectors trained on the systematically
-- collected generators (community fine-tunes of a few latent-diffusion bases), on the
-- manually collected ones (diverse architectures), or on both, with the same image
-- budget, and evaluated on commercial generators that none of them saw.  Manual should
-- beat systematic; both should be best.
--
--   cfx experiments/diversity.lua               # cpu preset
--   cfx experiments/diversity.lua preset=paper
local cfx = require 'cfx'

return cfx.study {
  name = 'diversity',
  paper = 'Fig. 5a',
  description = 'systematic vs manual vs both training generators, evaluated on commercial generators',
  presets = {
    cpu = { train_sets = { 'systematic', 'manual', 'systematic,manual' }, eval_subsets = 'commercial', k = 0 },
    paper = { train_sets = { 'systematic', 'manual', 'systematic,manual' }, eval_subsets = 'commercial', k = 0 },
  },
  vary = { train_subsets = 'train_sets', subset = 'subset_ids' },
  -- the eval store's generators of eval_subsets ('' for all), every real dealt among them
  evaluate = function(cfg, run, model, study)
    local store = cfx.data.open(cfg.eval_store)
    local subsets = {}
    for s in cfg.eval_subsets:gmatch('[^,]+') do subsets[#subsets + 1] = s end
    local view = store:select { subsets = #subsets > 0 and subsets or nil, reals = 'all' }
    if view:counts().fake == 0 then
      error(('%s holds no generator of the subsets %s (eval_subsets=)'):format(cfg.eval_store, cfg.eval_subsets), 0)
    end
    local ev = cfx.eval.run { model = model, view = view, preprocess = study.preprocess(cfg, false), batch = 128,
      workers = cfg.workers, precision = cfg.precision }
    local t = run:evaluate(cfg.dataset, ev)
    store:close()
    return t
  end,
  report = { by = { 'train_subsets' } },
}
