-- diversity.lua: Fig. 5a of the paper.  Detectors trained on the systematically
-- collected generators (community fine-tunes of a few latent-diffusion bases), on the
-- manually collected ones (diverse architectures), or on both, with the same image
-- budget, and evaluated on commercial generators that none of them saw.  Manual should
-- beat systematic; both should be best.
--
-- The cpu preset evaluates on a store of commercial generators of its own (made once
-- with cfx.synth.eval_set: the default eval store holds only one or two); the paper
-- preset on the eval store's commercial generators (eval_subsets=).
--
--   cfx experiments/diversity.lua               # cpu preset
--   cfx experiments/diversity.lua preset=paper
local cfx = require 'cfx'

return cfx.study {
  name = 'diversity',
  paper = 'Fig. 5a',
  description = 'systematic vs manual vs both training generators, evaluated on commercial generators',
  presets = {
    cpu = { train_sets = { 'systematic', 'manual', 'systematic,manual' }, eval_subsets = 'commercial', k = 0,
      commercial_store = 'data/synth/commercial.h5', commercial_generators = 12, commercial_seed = 100 },
    paper = { train_sets = { 'systematic', 'manual', 'systematic,manual' }, eval_subsets = 'commercial', k = 0,
      commercial_store = '', commercial_generators = 0, commercial_seed = 0 },
  },
  vary = { train_subsets = 'train_sets', subset = 'subset_ids' },
  data = function(cfg)
    cfx.study.data(cfg)
    if cfg.commercial_store ~= '' and cfg.commercial_generators > 0 and not cfx.fs.exists(cfg.commercial_store) then
      io.stderr:write(('making %d commercial generators in %s (once)\n'):format(cfg.commercial_generators,
        cfg.commercial_store))
      cfx.synth.eval_set { out = cfg.commercial_store, subsets = { 'commercial' }, generators = cfg.commercial_generators,
        per_generator = cfg.synth_per_generator, size = cfg.img_size, seed = cfg.commercial_seed }
    end
  end,
  -- the commercial store whole, or the eval store's generators of eval_subsets ('' for
  -- all); every real dealt among them
  evaluate = function(cfg, run, model, study)
    local path = cfg.commercial_store ~= '' and cfg.commercial_store or cfg.eval_store
    local store = cfx.data.open(path)
    local subsets = {}
    if path == cfg.eval_store then
      for s in cfg.eval_subsets:gmatch('[^,]+') do subsets[#subsets + 1] = s end
    end
    local view = store:select { subsets = #subsets > 0 and subsets or nil, reals = 'all' }
    if view:counts().fake == 0 then
      error(('%s holds no generator of the subsets %s (eval_subsets=)'):format(path, cfg.eval_subsets), 0)
    end
    local ev = cfx.eval.run { model = model, view = view, preprocess = study.preprocess(cfg, false), batch = 128,
      workers = cfg.workers, precision = cfg.precision }
    local t = run:evaluate(cfg.dataset, ev)
    store:close()
    return t
  end,
  report = { by = { 'train_subsets' } },
}
