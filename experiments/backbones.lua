-- backbones.lua: Fig. 5b of the paper.  The same training data and image budget for
-- every backbone: a ViT, a ConvNeXt and a ResNet, each fine-tuned end to end and
-- evaluated on generators never seen in training; mean AP +- SE over random subsets of
-- the training generators.
--
--   cfx experiments/backbones.lua                 # cpu preset: micro variants on synthetic data
--   cfx experiments/backbones.lua preset=paper pretrained_vit=... pretrained_convnext=...
local cfx = require 'cfx'

return cfx.study {
  name = 'backbones',
  paper = 'Fig. 5b',
  description = 'ViT vs ConvNeXt (and ResNet) on the same data and budget',
  presets = {
    cpu = { backbones = { 'vit_micro_patch8_64', 'convnext_micro', 'resnet_micro' }, k = 16,
      pretrained_vit = '', pretrained_convnext = '', pretrained_resnet = '' },
    paper = { backbones = { 'vit_small_patch16_224', 'convnext_small', 'resnet50' }, img_size = 224, eval_resize = 256,
      k = 1000, pretrained = '',
      pretrained_vit = 'weights/vit_small_patch16_224.augreg_in21k_ft_in1k.safetensors',
      pretrained_convnext = 'weights/convnext_small.fb_in22k_ft_in1k.safetensors',
      pretrained_resnet = 'weights/resnet50.a1_in1k.safetensors' },
  },
  vary = { model = 'backbones', subset = 'subset_ids' },
  -- each family starts from its own pretrained weights, when the preset names them
  model = function(cfg)
    local family = cfg.model:match('^(%a+)')
    local weights = cfg['pretrained_' .. family] or ''
    return cfx.models.create(cfg.model, { pretrained = weights ~= '' and weights or nil }):to(cfg.device)
  end,
  report = { by = { 'model' } },
}
