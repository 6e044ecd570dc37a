-- pretrain.lua: cfx.pretrain, the stand-in for ImageNet pretraining on the CPU preset.
--
-- The paper fine-tunes (or probes) backbones pretrained on ImageNet: features of image
-- content, learnt without any fake image.  Without downloads, cfx makes the analogue
-- from synthetic data: a pool of real images only (cfx.synth.write_reals, a seed
-- disjoint from the experiment data's), and a backbone trained to classify their
-- content source (LAION-, COCO-, FFHQ-, LandscapesHQ-like scenes) with cross-entropy
-- under the paper's RandAugment.  The weights are saved as safetensors with timm's
-- names; loading them with cfx.models.create(name, {pretrained = path}) drops the
-- 4-class head (as timm drops ImageNet's 1000-class one) and keeps the backbone, so
-- frozen-vs-fine-tuned comparisons have a real, content-trained backbone to start from.
--   cfx pretrain --model vit_micro_patch8_64 --out data/pretrained/vit_micro_patch8_64.safetensors
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local fs = require 'cfx.fs'
local augment = require 'cfx.augment'
local safetensors = require 'cfx.safetensors'
local models = require 'cfx.models'
local optim = require 'cfx.optim'
local data = require 'cfx.data'
local train = require 'cfx.train'
local synth = require 'cfx.synth'
local raise = core.raise

local M = {}

M.defaults = { model = 'vit_micro_patch8_64', out = false, pool = false, per_source = 1000, size = 64, steps = 400,
  batch = 64, lr = 1e-3, weight_decay = 0.05, seed = 1000, workers = 2, progress = 'auto' }

-- cfx.pretrain.run{model=, out=, pool=out..'.pool.h5', per_source=1000, size=64, steps=400,
--   batch=64, lr=1e-3, weight_decay=0.05, seed=1000, workers=2} -> out, {accuracy=, losses=};
-- or, when SIGUSR1/SIGTERM stopped the training (it keeps no checkpoint), nil,
-- {interrupted = 'USR1'|'TERM', losses=} and nothing written.
function M.run(opts)
  local o = core.options(opts, M.defaults, 'cfx.pretrain.run')
  if type(o.out) ~= 'string' then raise('cfx.pretrain.run: give out = the .safetensors path to write') end
  local dir = o.out:match('^(.*)/[^/]*$')
  if dir and dir ~= '' then fs.mkdirs(dir) end
  local pool = o.pool or (o.out:gsub('%.safetensors$', '') .. '.pool.h5')
  if not fs.exists(pool) then
    synth.write_reals(pool, { per_source = o.per_source, size = o.size, seed = o.seed })
  end
  local store = data.open(pool)
  local classes = #synth.real_sources
  tensor.manual_seed(o.seed)
  local model = models.create(o.model, { num_classes = classes })
  local crop = o.size
  local loader = data.loader { store = store, batch = o.batch, workers = o.workers, seed = o.seed,
    augment = augment.randaugment { crop = crop } }
  local r = train.fit { model = model, loader = loader, steps = o.steps, progress = o.progress,
    optim = optim.AdamW { params = model, lr = o.lr, weight_decay = o.weight_decay },
    schedule = optim.cosine { warmup = 0.1, total = o.steps }, clip = 1.0,
    loss = function(logits, b) return F.cross_entropy(logits:float(), b.generators) end }
  loader:close()
  if r.interrupted then return nil, { interrupted = r.interrupted, losses = r.losses } end
  -- training accuracy on one pass of the pool, centre crops (how well content is told apart)
  model:eval()
  local el = data.loader { store = store, batch = 128, workers = o.workers, shuffle = false,
    augment = augment.eval { resize = false, crop = crop }, max_batches = math.ceil(store:all().n / 128) }
  local right, total = 0, 0
  tensor.no_grad(function()
    for b in el:batches() do
      local pred = model(augment.normalize(b.images)):argmax(2):view(-1) -- 1-based, as generator ids
      right = right + pred:eq(b.generators):sum():item()
      total = total + b.images:size(1)
    end
  end)
  safetensors.save(o.out, model:state_dict(), { model = o.model, task = 'cfx pretrain: real-source classification',
    classes = table.concat(synth.real_sources, ','), steps = tostring(o.steps) })
  return o.out, { accuracy = right / math.max(total, 1), losses = r.losses }
end

return M
