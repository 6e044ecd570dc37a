-- robustness.lua: Fig. 7 of the paper.  One detector trained with the paper's
-- augmentation and one without (random crops only), each evaluated on unseen generators
-- under test-time perturbations at several levels: JPEG quality, Gaussian blur (sigma,
-- pixels), rotation and shear (degrees), resizing and padding (fractions of the side).
-- With augmentation, AP should fall less as a perturbation grows.
--
--   cfx experiments/robustness.lua               # cpu preset
--   cfx experiments/robustness.lua preset=paper
local cfx = require 'cfx'

-- perturbation kind -> levels (the clean evaluation is 'clean')
local levels = { jpeg = { 90, 70, 50 }, blur = { 0.5, 1, 2 }, rotate = { 5, 10, 15 }, resize = { 0.25, 0.5 },
  pad = { 0.05, 0.1 }, shear = { 5, 10, 15 } }
local kinds = { 'jpeg', 'blur', 'rotate', 'resize', 'pad', 'shear' }

return cfx.study {
  name = 'robustness',
  paper = 'Fig. 7',
  description = 'AP under test-time JPEG, blur, rotation, resize, padding and shear, trained with and without augmentation',
  presets = { cpu = { k = 16, augmentations = { 'paper', 'none' } }, paper = { k = 1000, augmentations = { 'paper', 'none' } } },
  vary = { augmentation = 'augmentations', subset = 'subset_ids' },
  preprocess = function(cfg, train)
    if train and cfg.augmentation == 'none' then return cfx.augment.randaugment { crop = cfg.img_size, n_max = 0 } end
    return cfx.study.preprocess(cfg, train)
  end,
  -- the clean evaluation as the study's dataset, then one dataset per perturbation level
  evaluate = function(cfg, run, model, study)
    local store = cfx.data.open(cfg.eval_store)
    local function score(name, perturb)
      local ev = cfx.eval.run { model = model, store = store, preprocess = study.preprocess(cfg, false), perturb = perturb,
        batch = 128, workers = cfg.workers, precision = cfg.precision }
      return run:evaluate(name, ev, { predictions = false })
    end
    local clean = score(cfg.dataset)
    for _, kind in ipairs(kinds) do
      for _, level in ipairs(levels[kind]) do score(('%s@%g'):format(kind, level), { kind = kind, level = level }) end
    end
    store:close()
    return clean
  end,
  -- mean AP +- SE per perturbation level, with and without augmentation
  summarize = function(rows, cfg)
    print(('\nrobustness (%s preset): mean AP on %s under test-time perturbations'):format(cfg.preset, cfg.eval_store))
    print(('%-12s %18s %18s'):format('perturbation', 'with augmentation', 'without'))
    local names = { cfg.dataset }
    for _, kind in ipairs(kinds) do
      for _, level in ipairs(levels[kind]) do names[#names + 1] = ('%s@%g'):format(kind, level) end
    end
    for _, name in ipairs(names) do
      local cells = {}
      for _, aug in ipairs { 'paper', 'none' } do
        local vals = {}
        for _, row in ipairs(rows) do
          if row.point.augmentation == aug and row.summary[name] then vals[#vals + 1] = row.summary[name].mean_ap end
        end
        local m, se = cfx.metrics.mean_se(vals)
        cells[#cells + 1] = ('%.3f +- %.3f'):format(m or 0 / 0, se or 0)
      end
      print(('%-12s %18s %18s'):format(name == cfg.dataset and 'clean' or name, cells[1], cells[2]))
    end
  end,
}
