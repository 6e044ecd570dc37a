-- augment.lua: cfx.augment, the paper's RandAugment, evaluation preprocessing and
-- robustness perturbations as pipelines over uint8 {H, W, 3} image tensors, plus the
-- single ops.  The work happens in C (core/src/augment.c); see docs/augmentations.md.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local image = require 'cfx.image'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

local function range(v, what, fname)
  if type(v) ~= 'table' or type(v[1]) ~= 'number' or type(v[2]) ~= 'number' then
    raise(('%s: %s must be a range {lo, hi}, got %s'):format(fname, what, tostring(v)))
  end
  return v[1], v[2]
end

M.op_bits = {
  jpeg = C.CFX_AUG_JPEG, resize = C.CFX_AUG_RESIZE, crop = C.CFX_AUG_CROP, hflip = C.CFX_AUG_HFLIP,
  vflip = C.CFX_AUG_VFLIP, resized_crop = C.CFX_AUG_RESIZED_CROP, rotate = C.CFX_AUG_ROTATE,
  translate = C.CFX_AUG_TRANSLATE, shear = C.CFX_AUG_SHEAR, pad = C.CFX_AUG_PAD, cutout = C.CFX_AUG_CUTOUT,
}
M.perturb_kinds = { jpeg = 0, blur = 1, rotate = 2, resize = 3, pad = 4, shear = 5 }

-- ---- pipelines ---------------------------------------------------------------------------
local Pipeline = {}
Pipeline.__index = Pipeline

local function new_pipeline(stages)
  local box = ffi.new('cfx_augment*[1]')
  check(C.cfx_augment_new(box), 'augment')
  local p = setmetatable({ handle = ffi.gc(box[0], C.cfx_augment_free), stages = stages }, Pipeline)
  for _, s in ipairs(stages) do s.add(p.handle) end
  return p
end

local counter = 0
-- p:apply(img [, seed | {seed=, epoch=, index=}]) -> new uint8 {S, S, 3} tensor.  Without a
-- seed each call draws a fresh one (for looking at examples in the REPL).
function Pipeline:apply(t, seed)
  if type(seed) == 'table' then
    seed = M.seed(seed.seed or 0, seed.epoch or 0, seed.index or 0)
  elseif seed == nil then
    counter = counter + 1
    seed = M.seed(os.time(), counter, 0)
  end
  local img, keep = image.tensor_to_image(t, 'augment')
  local res = ffi.new('cfx_image')
  check(C.cfx_augment_apply(self.handle, img, seed, res), 'augment')
  local _ = keep
  return image.image_to_tensor(res)
end
Pipeline.__call = Pipeline.apply
function Pipeline:output_size() return C.cfx_augment_output_size(self.handle) end
function Pipeline:__tostring()
  local names = {}
  for i, s in ipairs(self.stages) do names[i] = s.name end
  return 'cfx.augment pipeline: ' .. table.concat(names, ' -> ')
end

-- The seed of one sample (a uint64 cdata): the same (run seed, epoch, index) always
-- gives the same augmentation, whatever the thread count.
function M.seed(run_seed, epoch, index)
  return C.cfx_augment_seed(run_seed, epoch or 0, index or 0)
end

local ra_defaults = {
  crop = 224, n_max = 2, ops = 'all', jpeg = { 75, 100 }, resize_max = 1.228, rrc_scale = { 0.9, 1.0 },
  rrc_ratio = { 3 / 4, 4 / 3 }, flip_p = 0.5, rotate = 15, translate = 0.1, shear = 15, pad = 0.05,
  cutout_p = 0.5, cutout = { 0.02, 0.06 },
}

local function randaugment_stage(opts)
  local o = core.options(opts, ra_defaults, 'randaugment')
  local c = ffi.new('cfx_randaugment_opts')
  C.cfx_randaugment_defaults(c)
  c.crop, c.n_max = o.crop, o.n_max
  if o.ops == 'all' then
    c.ops = C.CFX_AUG_ALL
  else
    if type(o.ops) ~= 'table' then raise("randaugment: ops must be 'all' or a list of op names") end
    local bits = 0
    for _, name in ipairs(o.ops) do
      local b = M.op_bits[name]
      if not b then
        local known = {}
        for k in pairs(M.op_bits) do known[#known + 1] = k end
        table.sort(known)
        raise(("randaugment: unknown op '%s' (known: %s)"):format(tostring(name), table.concat(known, ', ')))
      end
      bits = bit.bor(bits, b)
    end
    c.ops = bits
  end
  c.jpeg_min, c.jpeg_max = range(o.jpeg, 'jpeg', 'randaugment')
  c.resize_max = o.resize_max
  c.rrc_scale_min, c.rrc_scale_max = range(o.rrc_scale, 'rrc_scale', 'randaugment')
  c.rrc_ratio_min, c.rrc_ratio_max = range(o.rrc_ratio, 'rrc_ratio', 'randaugment')
  c.flip_p, c.rotate_max, c.translate_max, c.shear_max, c.pad_max = o.flip_p, o.rotate, o.translate, o.shear, o.pad
  c.cutout_p = o.cutout_p
  c.cutout_min, c.cutout_max = range(o.cutout, 'cutout', 'randaugment')
  return { name = ('randaugment(crop=%d, n_max=%d)'):format(o.crop, o.n_max), opts = o,
    add = function(h) check(C.cfx_augment_add_randaugment(h, c)) end }
end

local function eval_stage(opts)
  local o = core.options(opts, { resize = 256, crop = 224, filter = 'bilinear' }, 'eval')
  local resize = o.resize or 0
  if resize == false then resize = 0 end
  local filter = image.filters[o.filter]
  if not filter then raise(('eval: unknown filter %s'):format(tostring(o.filter))) end
  return { name = ('eval(resize=%d, crop=%d)'):format(resize, o.crop or 0), opts = o,
    add = function(h) check(C.cfx_augment_add_eval(h, resize, o.crop or 0, filter)) end }
end

local function perturb_stage(opts)
  local o = core.options(opts, { kind = 'jpeg', level = 0 }, 'perturb')
  local kind = M.perturb_kinds[o.kind]
  if not kind then
    raise(("perturb: unknown kind '%s' (known: jpeg, blur, rotate, resize, pad, shear)"):format(tostring(o.kind)))
  end
  return { name = ('perturb(%s=%g)'):format(o.kind, o.level), opts = o,
    add = function(h) check(C.cfx_augment_add_perturb(h, kind, o.level)) end }
end

-- cfx.augment.randaugment{crop=224, n_max=2, ops='all'|{names}, jpeg={75, 100},
--   resize_max=1.228, rrc_scale={0.9, 1}, rrc_ratio={3/4, 4/3}, flip_p=0.5, rotate=15,
--   translate=0.1, shear=15, pad=0.05, cutout_p=0.5, cutout={0.02, 0.06}}
function M.randaugment(opts) return new_pipeline { randaugment_stage(opts) } end
-- cfx.augment.eval{resize=256, crop=224, filter='bilinear'}; resize=false: crop only.
function M.eval(opts) return new_pipeline { eval_stage(opts) } end
-- cfx.augment.perturb{kind='jpeg'|'blur'|'rotate'|'resize'|'pad'|'shear', level=}
function M.perturb(opts) return new_pipeline { perturb_stage(opts) } end
-- cfx.augment.compose{pipeline, pipeline, ...}: their stages in order, e.g. a
-- perturbation then the evaluation preprocessing.
function M.compose(list)
  local stages = {}
  for i, p in ipairs(list) do
    if getmetatable(p) ~= Pipeline then raise(('compose: element %d is not a pipeline'):format(i)) end
    for _, s in ipairs(p.stages) do stages[#stages + 1] = s end
  end
  return new_pipeline(stages)
end

-- ---- single ops on one image tensor -------------------------------------------------------
local function op(fname, fn)
  return function(t, ...)
    local img, keep = image.tensor_to_image(t, fname)
    local res = ffi.new('cfx_image')
    check(fn(img, res, ...), fname)
    local _ = keep
    return image.image_to_tensor(res)
  end
end

local function rgb(fill)
  if fill == nil then return 0 end
  if type(fill) == 'number' then return fill end
  return bit.bor(bit.lshift(fill[1], 16), bit.lshift(fill[2], 8), fill[3])
end

M.hflip = op('hflip', function(img, res) return C.cfx_image_flip(img, 1, res) end)
M.vflip = op('vflip', function(img, res) return C.cfx_image_flip(img, 0, res) end)
-- crop(t, x, y, w, h [, fill]): x, y are 1-based
M.crop = op('crop', function(img, res, x, y, w, h, fill) return C.cfx_image_crop(img, x - 1, y - 1, w, h, rgb(fill), res) end)
M.center_crop = op('center_crop', function(img, res, w, h) return C.cfx_image_center_crop(img, w, h or w, res) end)
-- affine(t, {angle=0, translate={0, 0}, scale=1, shear={0, 0}, filter='bilinear', fill=0})
M.affine = op('affine', function(img, res, opts)
  local o = core.options(opts, { angle = 0, translate = { 0, 0 }, scale = 1, shear = { 0, 0 }, filter = 'bilinear',
    fill = 0 }, 'affine')
  local sh = type(o.shear) == 'number' and { o.shear, 0 } or o.shear
  return C.cfx_image_affine(img, o.angle, o.translate[1], o.translate[2], o.scale, sh[1], sh[2],
    image.filters[o.filter] or -1, rgb(o.fill), res)
end)
-- pad(t, {left, top, right, bottom} [, {fill=0, resize_back=false}])
M.pad = op('pad', function(img, res, p, opts)
  local o = core.options(opts, { fill = 0, resize_back = false }, 'pad')
  return C.cfx_image_pad(img, p[1], p[2], p[3], p[4], rgb(o.fill), o.resize_back and 1 or 0, res)
end)
M.cutout = op('cutout', function(img, res, x, y, w, h, fill) return C.cfx_image_cutout(img, x - 1, y - 1, w, h, rgb(fill), res) end)
M.gaussian_blur = op('gaussian_blur', function(img, res, sigma) return C.cfx_image_gaussian_blur(img, sigma, res) end)
M.jpeg = op('jpeg', function(img, res, quality) return C.cfx_image_jpeg_roundtrip(img, quality or 75, res) end)

-- ---- to the network -------------------------------------------------------------------------
M.imagenet_mean = { 0.485, 0.456, 0.406 }
M.imagenet_std = { 0.229, 0.224, 0.225 }

-- HWC uint8 image -> CHW uint8 tensor {3, H, W}.
function M.to_chw(t) return t:permute(3, 1, 2):contiguous() end

-- A uint8 batch {N, 3, H, W} (or one image {3, H, W}) -> float32, (x / 255 - mean) / std.
function M.normalize(x, mean, std)
  mean, std = mean or M.imagenet_mean, std or M.imagenet_std
  local shape = x:dim() == 4 and { 1, 3, 1, 1 } or { 3, 1, 1 }
  local m = tensor.tensor(mean):view(shape)
  local s = tensor.tensor(std):view(shape)
  return (x:float() / 255 - m) / s
end

-- normalizer(mean, std [, device]) -> function(x): M.normalize for uint8 batches
-- {N, 3, H, W} already on `device`, with the mean and std tensors made once there (for
-- loops over batches: the trainer, the evaluator).
function M.normalizer(mean, std, device)
  local m = tensor.tensor(mean or M.imagenet_mean):view(1, 3, 1, 1)
  local s = tensor.tensor(std or M.imagenet_std):view(1, 3, 1, 1)
  if device and device ~= 'cpu' then m, s = m:to(device), s:to(device) end
  return function(x) return (x:float() / 255 - m) / s end
end

return M
