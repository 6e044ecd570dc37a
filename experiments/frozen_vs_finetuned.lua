-- frozen_vs_finetuned.lua: Fig. 6a of the paper.  A pretrained backbone, either frozen
-- with only a linear classifier trained on top (a linear probe) or fine-tuned end to end,
-- for a ViT and a ConvNeXt, on the same data and budget.  Fine-tuning should win: the
-- traces that tell generated images apart are not what content pretraining learnt.
--
-- The cpu preset's pretrained backbones come from `cfx pretrain` (content classification
-- on synthetic reals, a stand-in for ImageNet; made once, like the synthetic data); the
-- paper preset loads timm's weights.
--
--   cfx experiments/frozen_vs_finetuned.lua               # cpu preset
--   cfx experiments/frozen_vs_finetuned.lua preset=paper
local cfx = require 'cfx'

return cfx.study {
  name = 'frozen_vs_finetuned',
  paper = 'Fig. 6a',
  description = 'linear probe on a frozen pretrained backbone vs full fine-tuning',
  presets = {
    cpu = { k = 16, backbones = { 'vit_micro_patch8_64', 'convnext_micro' }, modes = { 'finetune', 'frozen' },
      pretrained_dir = 'data/pretrained', pretrain_steps = 400, pretrain_pool = 1000, probe_lr = 1e-2 },
    paper = { k = 1000, backbones = { 'vit_small_patch16_224', 'convnext_small' }, modes = { 'finetune', 'frozen' },
      img_size = 224, eval_resize = 256, pretrained_dir = 'weights', pretrain_steps = 0, pretrain_pool = 0,
      probe_lr = 1e-3 },
  },
  vary = { model = 'backbones', mode = 'modes', subset = 'subset_ids' },
  -- the synthetic data, and on the cpu preset each backbone's pretraining, once
  data = function(cfg)
    cfx.study.data(cfg)
    if cfg.pretrain_steps <= 0 then return end
    for _, name in ipairs(cfg.backbones) do
      local path = ('%s/%s.safetensors'):format(cfg.pretrained_dir, name)
      if not cfx.fs.exists(path) then
        io.stderr:write(('pretraining %s on synthetic reals (once): %s\n'):format(name, path))
        cfx.pretrain.run { model = name, out = path, steps = cfg.pretrain_steps, size = cfg.img_size,
          per_source = cfg.pretrain_pool, progress = false }
      end
    end
  end,
  model = function(cfg)
    -- <pretrained_dir>/<model>.safetensors: cfx pretrain's output, or timm's weights saved under the model's name
    local path = ('%s/%s.safetensors'):format(cfg.pretrained_dir, cfg.model)
    local m = cfx.models.create(cfg.model, { pretrained = path }):to(cfg.device)
    if cfg.mode == 'frozen' then
      m:freeze()
      m:get_classifier():unfreeze()
    end
    return m
  end,
  -- a linear probe trains with a larger learning rate, as probes do
  fit = function(cfg, run, model, view, study)
    local c = cfg
    if cfg.mode == 'frozen' then
      c = {}
      for k, v in pairs(cfg) do c[k] = v end
      c.lr = cfg.probe_lr
    end
    return cfx.study.fit(c, run, model, view, study)
  end,
  report = { by = { 'model', 'mode' } },
}
