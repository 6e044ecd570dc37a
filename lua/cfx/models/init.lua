-- cfx.models: a registry of backbones with timm's names, parameter names and forward
-- semantics, so a timm checkpoint saved as safetensors loads with strict matching.
--   local model = cfx.models.create('vit_small_patch16_224', {pretrained = 'vit_s16.safetensors'})
-- The classifier is a Linear to num_classes (1 by default: one logit, real vs fake).
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local safetensors = require 'cfx.safetensors'
local vit = require 'cfx.models.vit'
local convnext = require 'cfx.models.convnext'
local resnet = require 'cfx.models.resnet'
local listing = require('cfx.nn.module').listing
local raise = core.raise

local M = { vit = vit, convnext = convnext, resnet = resnet }

-- name -> {builder, default config, description}
local registry = {}
M.registry = registry

-- cfx.models.register(name, builder, cfg [, description]): builder(opts) -> module.
function M.register(name, builder, cfg, description)
  registry[name] = { builder = builder, cfg = cfg, description = description or '' }
end

local function vit_entry(name, cfg, desc) M.register(name, vit.VisionTransformer, cfg, desc) end
vit_entry('vit_small_patch16_224', { img_size = 224, patch_size = 16, embed_dim = 384, depth = 12, num_heads = 6 },
  'ViT-S/16 at 224 (the paper\'s backbone)')
vit_entry('vit_small_patch16_384', { img_size = 384, patch_size = 16, embed_dim = 384, depth = 12, num_heads = 6 },
  'ViT-S/16 at 384 (the paper\'s main model)')
vit_entry('vit_base_patch16_224', { img_size = 224, patch_size = 16, embed_dim = 768, depth = 12, num_heads = 12 },
  'ViT-B/16 at 224')
vit_entry('vit_tiny_patch16_224', { img_size = 224, patch_size = 16, embed_dim = 192, depth = 12, num_heads = 3 },
  'ViT-Ti/16 at 224')
vit_entry('vit_micro_patch8_64', { img_size = 64, patch_size = 8, embed_dim = 96, depth = 4, num_heads = 3 },
  'CPU preset: ViT with patch 8, width 96, depth 4 at 64 px')

local function convnext_entry(name, cfg, desc) M.register(name, convnext.ConvNeXt, cfg, desc) end
convnext_entry('convnext_small', { depths = { 3, 3, 27, 3 }, dims = { 96, 192, 384, 768 } }, 'ConvNeXt-S')
convnext_entry('convnext_tiny', { depths = { 3, 3, 9, 3 }, dims = { 96, 192, 384, 768 } }, 'ConvNeXt-T')
convnext_entry('convnext_micro', { depths = { 1, 1, 2, 1 }, dims = { 24, 48, 96, 192 }, img_size = 64 },
  'CPU preset: ConvNeXt with widths 24..192, depths 1,1,2,1')

local function resnet_entry(name, cfg, desc) M.register(name, resnet.ResNet, cfg, desc) end
resnet_entry('resnet50', { block = 'bottleneck', layers = { 3, 4, 6, 3 } }, 'ResNet-50')
resnet_entry('resnet18', { block = 'basic', layers = { 2, 2, 2, 2 } }, 'ResNet-18')
resnet_entry('resnet_micro', { block = 'bottleneck', layers = { 1, 1, 1, 1 }, stem_width = 16,
  widths = { 16, 32, 64, 128 }, img_size = 64 }, 'CPU preset: bottleneck ResNet, one block per stage, widths 16..128')

-- Sorted list of registered names.
function M.list()
  local r = {}
  for name in pairs(registry) do r[#r + 1] = name end
  table.sort(r)
  return r
end

-- The input image size a model expects by default (e.g. 224, 384, 64).
function M.default_img_size(name)
  local e = registry[name]
  if not e then raise(('cfx.models: unknown model %s'):format(tostring(name))) end
  return e.cfg.img_size or 224
end

-- The tensors of a checkpoint file: a plain weights file, or the model part of a cfx
-- training checkpoint (keys 'model.*').
local function checkpoint_tensors(path)
  local ok, sd, meta = pcall(safetensors.load, path)
  if not ok then
    if not core.is_expected(sd) then error(sd, 0) end
    raise(('load_pretrained: %s; pretrained weights must be a .safetensors file (timm\'s, or one that ' ..
      'cfx pretrain or cfx.train.fit wrote)'):format((sd:gsub('^[^:]*:%d+: ', ''))))
  end
  if meta.format == 'cfx-checkpoint' then
    local r = {}
    for k, v in pairs(sd) do
      local name = k:match('^model%.(.*)$')
      if name then r[name] = v end
    end
    return r
  end
  return sd
end

-- cfx.models.load_pretrained(model, path [, {strict=true}]) -> {dropped=, missing=}.
-- Loads a safetensors file with timm's names.  The model's checkpoint_filter adapts
-- it (e.g. ViT position embeddings resampled to another image size); a classifier
-- whose shape differs from the model's (e.g. ImageNet's 1000 classes vs one logit) is
-- left out and keeps its fresh initialisation, as timm does.  Every other key must
-- match in name and shape (strict), otherwise the error lists the differences.
function M.load_pretrained(model, path, opts)
  local o = core.options(opts, { strict = true }, 'load_pretrained')
  local sd = checkpoint_tensors(path)
  if model.checkpoint_filter then sd = model:checkpoint_filter(sd) end
  local own = model:state_dict()
  local dropped, allowed_missing = {}, {}
  for _, name in ipairs(model.classifier_names or {}) do
    local v = sd[name]
    if own[name] and v and tensor.is_tensor(v) and table.concat(v:shape(), ',') ~= table.concat(own[name]:shape(), ',') then
      dropped[#dropped + 1] = name
      sd[name] = nil
    end
    if own[name] and sd[name] == nil then allowed_missing[name] = true end
    if not own[name] and v then -- num_classes=0: the checkpoint's classifier has no place
      dropped[#dropped + 1] = name
      sd[name] = nil
    end
  end
  local r = model:load_state_dict(sd, { strict = false, source = path })
  local missing = {}
  for _, name in ipairs(r.missing) do
    if not allowed_missing[name] then missing[#missing + 1] = name end
  end
  if o.strict and (#missing > 0 or #r.unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = 'missing keys: ' .. listing(missing) end
    if #r.unexpected > 0 then parts[#parts + 1] = 'unexpected keys: ' .. listing(r.unexpected) end
    raise(('load_pretrained: %s does not match %s: %s'):format(path, model.__name, table.concat(parts, '; ')))
  end
  return { dropped = dropped, missing = missing, unexpected = r.unexpected }
end

-- cfx.models.create(name [, opts]) -> model.  opts: num_classes (1), pretrained (a
-- safetensors path), img_size (ViT), drop_rate, drop_path_rate, and the architecture's
-- own options (embed_dim, depth, ..., see models/*.lua).  Unknown keys are an error.
function M.create(name, opts)
  local e = registry[name]
  if not e then
    raise(("cfx.models.create: unknown model '%s' (known: %s)"):format(tostring(name), table.concat(M.list(), ', ')))
  end
  opts = opts or {}
  if type(opts) ~= 'table' then raise('cfx.models.create: options must be a table') end
  local cfg = {}
  for k, v in pairs(e.cfg) do cfg[k] = v end
  local pretrained, strict = nil, true
  for k, v in pairs(opts) do
    if k == 'pretrained' then pretrained = v
    elseif k == 'strict' then strict = v
    else cfg[k] = v end
  end
  local ok, model = pcall(e.builder, cfg)
  if not ok then raise(('cfx.models.create(%s): %s'):format(name, tostring(model):gsub('^[^:]*:%d+: ', ''))) end
  rawset(model, 'model_name', name)
  if pretrained then
    if type(pretrained) ~= 'string' then raise('cfx.models.create: pretrained must be a path to a .safetensors file') end
    rawset(model, 'pretrained_report', M.load_pretrained(model, pretrained, { strict = strict }))
  end
  return model
end

return M
