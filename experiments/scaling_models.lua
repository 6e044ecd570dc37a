-- scaling_models.lua: Fig. 1 and 3 of the paper.  Train on k of the systematically
-- collected generators (community fine-tunes of latent-diffusion bases: "we only use our
-- systematically collected latent diffusion models"), k log-spaced from k_min to k_max,
-- several random subsets per k, the number of training images fixed; evaluate on
-- generators of every architecture never seen in training, overall and per architecture.
-- AP should keep rising with k.
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

return cfx.study {
  name = 'scaling_models',
  paper = 'Fig. 1, 3',
  description = 'number of training generators vs AP on unseen generators (Fig. 1, 3)',
  presets = {
    cpu = { train_subsets = 'systematic', k_min = 3, k_max = 64, k_count = 4, subsets = 3, budget = 360 },
    paper = { train_subsets = 'systematic', k_min = 3, k_max = 3333, k_count = 8, subsets = 10, budget = 50000 },
  },
  -- every k with subsets 1..subsets: the subset seeds which k generators are drawn
  grid = function(cfg)
    local points = {}
    for _, k in ipairs(log_spaced(cfg.k_min, cfg.k_max, cfg.k_count)) do
      for s = 1, cfg.subsets do points[#points + 1] = { k = k, subset = s } end
    end
    return points
  end,
  report = { by = { 'k' }, per_architecture = true },
}
