-- models/vit.lua: timm's VisionTransformer (class token, learned absolute position
-- embeddings, pre-norm blocks), with timm's parameter names and initialisation.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local nn = require 'cfx.nn'
local raise = core.raise

local M = {}

-- PatchEmbed: Conv2d(in_chans, embed_dim, patch, stride=patch), flattened to {B, N, D}.
local PatchEmbed = nn.class('PatchEmbed')
function PatchEmbed:__init(img_size, patch_size, in_chans, embed_dim)
  if img_size % patch_size ~= 0 then
    raise(('vit: img_size %d is not a multiple of patch_size %d'):format(img_size, patch_size))
  end
  self.img_size, self.patch_size = img_size, patch_size
  self.grid_size = img_size / patch_size
  self.num_patches = self.grid_size * self.grid_size
  self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, { stride = patch_size })
  self.norm = nn.Identity()
end
function PatchEmbed:forward(x)
  if x:dim() ~= 4 or x:size(3) ~= self.img_size or x:size(4) ~= self.img_size then
    raise(('vit: expected images {B, C, %d, %d}, got {%s} (create the model with img_size=%s)'):format(
      self.img_size, self.img_size, table.concat(x:shape(), ', '), x:dim() == 4 and tostring(x:size(3)) or '?'), 3)
  end
  x = self.proj(x):flatten(3):transpose(2, 3)
  return self.norm(x)
end
function PatchEmbed:extra_repr() return ('img_size=%d, patch_size=%d'):format(self.img_size, self.patch_size) end

local Block = nn.class('Block')
function Block:__init(dim, heads, mlp_ratio, qkv_bias, drop_path)
  self.norm1 = nn.LayerNorm(dim, { eps = 1e-6 })
  self.attn = nn.Attention(dim, { num_heads = heads, qkv_bias = qkv_bias })
  self.ls1 = nn.Identity()
  self.drop_path1 = nn.DropPath(drop_path)
  self.norm2 = nn.LayerNorm(dim, { eps = 1e-6 })
  self.mlp = nn.Mlp(dim, { hidden_features = math.floor(dim * mlp_ratio) })
  self.ls2 = nn.Identity()
  self.drop_path2 = nn.DropPath(drop_path)
end
function Block:forward(x)
  x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
  return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
end

local VisionTransformer = nn.class('VisionTransformer')
M.VisionTransformer = VisionTransformer

local defaults = { img_size = 224, patch_size = 16, in_chans = 3, num_classes = 1, embed_dim = 768, depth = 12,
  num_heads = 12, mlp_ratio = 4, qkv_bias = true, drop_rate = 0, pos_drop_rate = 0, drop_path_rate = 0 }
M.defaults = defaults

function VisionTransformer:__init(opts)
  local o = core.options(opts, defaults, 'VisionTransformer')
  self.cfg = o
  self.num_classes, self.embed_dim, self.num_features = o.num_classes, o.embed_dim, o.embed_dim
  self.num_prefix_tokens = 1
  self.patch_embed = PatchEmbed(o.img_size, o.patch_size, o.in_chans, o.embed_dim)
  self:register_parameter('cls_token', tensor.zeros(1, 1, o.embed_dim))
  self:register_parameter('pos_embed', tensor.zeros(1, self.patch_embed.num_patches + 1, o.embed_dim))
  self.pos_drop = nn.Dropout(o.pos_drop_rate)
  local blocks = {}
  for i = 1, o.depth do
    -- stochastic depth rises linearly over the blocks, as timm
    local dpr = o.depth > 1 and o.drop_path_rate * (i - 1) / (o.depth - 1) or o.drop_path_rate
    blocks[i] = Block(o.embed_dim, o.num_heads, o.mlp_ratio, o.qkv_bias, dpr)
  end
  self.blocks = nn.Sequential(blocks)
  self.norm = nn.LayerNorm(o.embed_dim, { eps = 1e-6 })
  self.fc_norm = nn.Identity()
  self.head_drop = nn.Dropout(o.drop_rate)
  self.head = o.num_classes > 0 and nn.Linear(o.embed_dim, o.num_classes) or nn.Identity()
  self:init_weights()
end

-- timm's default ('') initialisation: trunc_normal(.02) position embedding and Linear
-- weights, zero biases, a near-zero class token; convolutions keep PyTorch's default.
function VisionTransformer:init_weights()
  nn.init.trunc_normal_(self.pos_embed, { std = 0.02 })
  nn.init.normal_(self.cls_token, 0, 1e-6)
  for _, m in self:named_modules() do
    if m.__name == 'Linear' then
      nn.init.trunc_normal_(m.weight, { std = 0.02 })
      if m.bias then nn.init.zeros_(m.bias) end
    end
  end
end

function VisionTransformer:forward_features(x)
  x = self.patch_embed(x)
  local B = x:size(1)
  x = tensor.cat({ self.cls_token:expand(B, -1, -1), x }, 2)
  x = self.pos_drop(x + self.pos_embed)
  x = self.blocks(x)
  return self.norm(x)
end

-- forward_head(features [, pre_logits]): the class token, then the classifier (or the
-- pooled embedding {B, D} with pre_logits=true).
function VisionTransformer:forward_head(x, pre_logits)
  x = self.fc_norm(x:select(2, 1))
  x = self.head_drop(x)
  if pre_logits then return x end
  return self.head(x)
end

function VisionTransformer:forward(x) return self:forward_head(self:forward_features(x)) end

-- get_classifier(): the classifier module (timm's): head.  reset_classifier(n): a
-- fresh one of n outputs (0: none, forward gives the pooled features).
function VisionTransformer:get_classifier() return self.head end

function VisionTransformer:reset_classifier(num_classes)
  self.num_classes = num_classes
  self.head = num_classes > 0 and nn.Linear(self.embed_dim, num_classes) or nn.Identity()
  if num_classes > 0 then
    nn.init.trunc_normal_(self.head.weight, { std = 0.02 })
    nn.init.zeros_(self.head.bias)
  end
end

-- Parameters timm excludes from weight decay besides biases and norms.
function VisionTransformer:no_weight_decay() return { pos_embed = true, cls_token = true } end
VisionTransformer.classifier_names = { 'head.weight', 'head.bias' }

function VisionTransformer:extra_repr()
  local o = self.cfg
  return ('img_size=%d, patch_size=%d, embed_dim=%d, depth=%d, num_heads=%d, num_classes=%d'):format(o.img_size,
    o.patch_size, o.embed_dim, o.depth, o.num_heads, o.num_classes)
end

-- Resample an absolute position embedding {1, prefix + g*g, D} to a new grid (bicubic,
-- antialiased, as timm's resample_abs_pos_embed).
function M.resample_pos_embed(pe, new_grid, num_prefix)
  num_prefix = num_prefix or 1
  local n, d = pe:size(2), pe:size(3)
  local old = math.floor(math.sqrt(n - num_prefix) + 0.5)
  if old * old ~= n - num_prefix then
    raise(('resample_pos_embed: %d position tokens after %d prefix tokens are not a square grid'):format(
      n - num_prefix, num_prefix))
  end
  if old == new_grid then return pe end
  local prefix = pe:narrow(2, 1, num_prefix)
  local grid = pe:narrow(2, num_prefix + 1, n - num_prefix):reshape(1, old, old, d):permute(1, 4, 2, 3)
  grid = F.interpolate(grid:float(), { size = { new_grid, new_grid }, mode = 'bicubic', antialias = true })
  grid = grid:permute(1, 3, 4, 2):reshape(1, new_grid * new_grid, d):to(pe:dtype())
  return tensor.cat({ prefix, grid }, 2)
end

-- Adapt a timm checkpoint to this model: position embeddings of another image size
-- are resampled to this model's grid.
function VisionTransformer:checkpoint_filter(sd)
  local pe = sd.pos_embed
  if pe and tensor.is_tensor(pe) and pe:dim() == 3 and pe:size(2) ~= self.pos_embed:size(2) then
    sd.pos_embed = M.resample_pos_embed(pe, self.patch_embed.grid_size, self.num_prefix_tokens)
  end
  return sd
end

return M
