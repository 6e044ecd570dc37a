-- models/resnet.lua: timm's (and torchvision's) ResNet: BasicBlock and Bottleneck (stride
-- on the 3x3 conv, "v1.5"), with their parameter names and timm's initialisation.
local core = require 'cfx.core'
local nn = require 'cfx.nn'

local M = {}

local function bn(c) return nn.BatchNorm2d(c) end

local BasicBlock = nn.class('BasicBlock')
BasicBlock.expansion = 1
function BasicBlock:__init(inplanes, planes, stride, downsample)
  self.conv1 = nn.Conv2d(inplanes, planes, 3, { stride = stride, padding = 1, bias = false })
  self.bn1 = bn(planes)
  self.act1 = nn.ReLU()
  self.conv2 = nn.Conv2d(planes, planes, 3, { padding = 1, bias = false })
  self.bn2 = bn(planes)
  self.act2 = nn.ReLU()
  if downsample then self.downsample = downsample end
end
function BasicBlock:forward(x)
  local shortcut = x
  x = self.act1(self.bn1(self.conv1(x)))
  x = self.bn2(self.conv2(x))
  if self.downsample then shortcut = self.downsample(shortcut) end
  return self.act2(x + shortcut)
end
function BasicBlock:zero_init_last() nn.init.zeros_(self.bn2.weight) end

local Bottleneck = nn.class('Bottleneck')
Bottleneck.expansion = 4
function Bottleneck:__init(inplanes, planes, stride, downsample)
  self.conv1 = nn.Conv2d(inplanes, planes, 1, { bias = false })
  self.bn1 = bn(planes)
  self.act1 = nn.ReLU()
  self.conv2 = nn.Conv2d(planes, planes, 3, { stride = stride, padding = 1, bias = false })
  self.bn2 = bn(planes)
  self.act2 = nn.ReLU()
  self.conv3 = nn.Conv2d(planes, planes * 4, 1, { bias = false })
  self.bn3 = bn(planes * 4)
  self.act3 = nn.ReLU()
  if downsample then self.downsample = downsample end
end
function Bottleneck:forward(x)
  local shortcut = x
  x = self.act1(self.bn1(self.conv1(x)))
  x = self.act2(self.bn2(self.conv2(x)))
  x = self.bn3(self.conv3(x))
  if self.downsample then shortcut = self.downsample(shortcut) end
  return self.act3(x + shortcut)
end
function Bottleneck:zero_init_last() nn.init.zeros_(self.bn3.weight) end

M.blocks = { basic = BasicBlock, bottleneck = Bottleneck }

local ResNet = nn.class('ResNet')
M.ResNet = ResNet
M.defaults = { block = 'bottleneck', layers = { 3, 4, 6, 3 }, stem_width = 64, widths = { 64, 128, 256, 512 },
  in_chans = 3, num_classes = 1, drop_rate = 0, zero_init_last = true, img_size = 224 }

function ResNet:__init(opts)
  local o = core.options(opts, M.defaults, 'ResNet')
  local block = M.blocks[o.block]
  if not block then error(("ResNet: block must be 'basic' or 'bottleneck', got %s"):format(tostring(o.block)), 3) end
  self.cfg = o
  self.conv1 = nn.Conv2d(o.in_chans, o.stem_width, 7, { stride = 2, padding = 3, bias = false })
  self.bn1 = bn(o.stem_width)
  self.act1 = nn.ReLU()
  self.maxpool = nn.MaxPool2d(3, { stride = 2, padding = 1 })
  local inplanes = o.stem_width
  for i, n in ipairs(o.layers) do
    local planes, stride = o.widths[i], i > 1 and 2 or 1
    local blocks = {}
    for j = 1, n do
      local s = j == 1 and stride or 1
      local ds
      if j == 1 and (s ~= 1 or inplanes ~= planes * block.expansion) then
        ds = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, { stride = s, bias = false }),
          bn(planes * block.expansion))
      end
      blocks[j] = block(inplanes, planes, s, ds)
      inplanes = planes * block.expansion
    end
    self['layer' .. i] = nn.Sequential(blocks)
  end
  self.num_features, self.num_classes = inplanes, o.num_classes
  self.drop = nn.Dropout(o.drop_rate)
  self.fc = o.num_classes > 0 and nn.Linear(inplanes, o.num_classes) or nn.Identity()
  self:init_weights()
end

-- timm's init_weights: kaiming_normal(fan_out, relu) convolutions; the last BatchNorm
-- of each residual branch starts at zero (zero_init_last).
function ResNet:init_weights()
  for _, m in self:named_modules() do
    if m.__name == 'Conv2d' then nn.init.kaiming_normal_(m.weight, { mode = 'fan_out', nonlinearity = 'relu' }) end
  end
  if self.cfg.zero_init_last then
    for _, m in self:named_modules() do
      if m.zero_init_last then m:zero_init_last() end
    end
  end
end

function ResNet:forward_features(x)
  x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
  for i = 1, #self.cfg.layers do x = self['layer' .. i](x) end
  return x
end
function ResNet:forward_head(x, pre_logits)
  x = self.drop(x:mean({ 3, 4 }))
  if pre_logits then return x end
  return self.fc(x)
end
function ResNet:forward(x) return self:forward_head(self:forward_features(x)) end

-- get_classifier(): the classifier module (timm's): fc.  reset_classifier(n): a fresh
-- one of n outputs (0: none).
function ResNet:get_classifier() return self.fc end

function ResNet:reset_classifier(num_classes)
  self.num_classes = num_classes
  self.fc = num_classes > 0 and nn.Linear(self.num_features, num_classes) or nn.Identity()
end
ResNet.classifier_names = { 'fc.weight', 'fc.bias' }

function ResNet:extra_repr()
  return ('block=%s, layers={%s}, num_classes=%d'):format(self.cfg.block, table.concat(self.cfg.layers, ','),
    self.cfg.num_classes)
end

return M
