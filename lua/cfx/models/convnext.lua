-- models/convnext.lua: timm's ConvNeXt (depthwise 7x7 conv, channels-last LayerNorm,
-- MLP, layer scale), with timm's parameter names and initialisation.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local nn = require 'cfx.nn'

local M = {}

local Block = nn.class('ConvNeXtBlock')
function Block:__init(dim, drop_path, ls_init)
  self.conv_dw = nn.Conv2d(dim, dim, 7, { padding = 3, groups = dim })
  self.norm = nn.LayerNorm(dim, { eps = 1e-6 })
  self.mlp = nn.Mlp(dim, { hidden_features = 4 * dim })
  self:register_parameter('gamma', ls_init and tensor.full({ dim }, ls_init) or nil)
  self.shortcut = nn.Identity()
  self.drop_path = nn.DropPath(drop_path)
end
function Block:forward(x)
  local shortcut = x
  x = self.conv_dw(x):permute(1, 3, 4, 2)
  x = self.mlp(self.norm(x)):permute(1, 4, 2, 3)
  if self.gamma then x = x * self.gamma:reshape(1, -1, 1, 1) end
  return self.drop_path(x) + self.shortcut(shortcut)
end

local Stage = nn.class('ConvNeXtStage')
function Stage:__init(cin, cout, stride, depth, dprs, ls_init)
  if cin ~= cout or stride > 1 then
    self.downsample = nn.Sequential(nn.LayerNorm2d(cin, { eps = 1e-6 }), nn.Conv2d(cin, cout, stride, { stride = stride }))
  else
    self.downsample = nn.Identity()
  end
  local blocks = {}
  for i = 1, depth do blocks[i] = Block(cout, dprs[i], ls_init) end
  self.blocks = nn.Sequential(blocks)
end
function Stage:forward(x) return self.blocks(self.downsample(x)) end

-- NormMlpClassifierHead: average pool, LayerNorm2d, flatten, fc.
local Head = nn.class('NormMlpClassifierHead')
function Head:__init(dim, num_classes, drop_rate)
  self.norm = nn.LayerNorm2d(dim, { eps = 1e-6 })
  self.drop = nn.Dropout(drop_rate)
  self.fc = num_classes > 0 and nn.Linear(dim, num_classes) or nn.Identity()
end
function Head:forward(x, pre_logits)
  x = self.norm(x:mean({ 3, 4 }, true)):flatten(2)
  x = self.drop(x)
  if pre_logits then return x end
  return self.fc(x)
end

local ConvNeXt = nn.class('ConvNeXt')
M.ConvNeXt = ConvNeXt
M.defaults = { in_chans = 3, num_classes = 1, depths = { 3, 3, 9, 3 }, dims = { 96, 192, 384, 768 },
  ls_init_value = 1e-6, drop_rate = 0, drop_path_rate = 0, head_init_scale = 1, img_size = 224 }

function ConvNeXt:__init(opts)
  local o = core.options(opts, M.defaults, 'ConvNeXt')
  self.cfg = o
  self.num_classes, self.num_features = o.num_classes, o.dims[#o.dims]
  self.stem = nn.Sequential(nn.Conv2d(o.in_chans, o.dims[1], 4, { stride = 4 }), nn.LayerNorm2d(o.dims[1], { eps = 1e-6 }))
  local total = 0
  for _, d in ipairs(o.depths) do total = total + d end
  local stages, prev, k = {}, o.dims[1], 0
  for i, depth in ipairs(o.depths) do
    local dprs = {}
    for j = 1, depth do
      dprs[j] = total > 1 and o.drop_path_rate * k / (total - 1) or 0
      k = k + 1
    end
    stages[i] = Stage(prev, o.dims[i], i > 1 and 2 or 1, depth, dprs, o.ls_init_value)
    prev = o.dims[i]
  end
  self.stages = nn.Sequential(stages)
  self.norm_pre = nn.Identity()
  self.head = Head(prev, o.num_classes, o.drop_rate)
  self:init_weights()
end

-- timm's _init_weights: trunc_normal(.02) for convolutions and Linear layers, zero
-- biases; the classifier scaled by head_init_scale.
function ConvNeXt:init_weights()
  for name, m in self:named_modules() do
    if m.__name == 'Conv2d' or m.__name == 'Linear' then
      nn.init.trunc_normal_(m.weight, { std = 0.02 })
      if m.bias then nn.init.zeros_(m.bias) end
      if name:find('^head%.') and m.__name == 'Linear' and self.cfg.head_init_scale ~= 1 then
        nn.no_grad(function() m.weight:mul_(self.cfg.head_init_scale) end)
      end
    end
  end
end

function ConvNeXt:forward_features(x) return self.norm_pre(self.stages(self.stem(x))) end
function ConvNeXt:forward_head(x, pre_logits) return self.head(x, pre_logits) end
function ConvNeXt:forward(x) return self:forward_head(self:forward_features(x)) end

-- get_classifier(): the classifier module (timm's): head.fc.  reset_classifier(n): a
-- fresh one of n outputs (0: none).
function ConvNeXt:get_classifier() return self.head.fc end

function ConvNeXt:reset_classifier(num_classes)
  self.num_classes = num_classes
  self.head.fc = num_classes > 0 and nn.Linear(self.num_features, num_classes) or nn.Identity()
  if num_classes > 0 then
    nn.init.trunc_normal_(self.head.fc.weight, { std = 0.02 })
    nn.init.zeros_(self.head.fc.bias)
  end
end
ConvNeXt.classifier_names = { 'head.fc.weight', 'head.fc.bias' }

function ConvNeXt:extra_repr()
  return ('depths={%s}, dims={%s}, num_classes=%d'):format(table.concat(self.cfg.depths, ','),
    table.concat(self.cfg.dims, ','), self.cfg.num_classes)
end

return M
