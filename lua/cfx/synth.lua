-- synth.lua: cfx.synth, a synthetic Community-Forensics-shaped dataset, so that every
-- experiment runs end to end on a CPU without downloading anything.
--
-- Real images come from procedural "real sources" (COCO-, FFHQ- and LandscapesHQ-like
-- scenes: shapes, faces, horizons; LAION, web-scale, a mixture of those and abstract
-- content of its own; all with full-resolution sensor noise).  Each generator re-synthesizes real-like content of
-- one source from a low-resolution version through a small random-weight decoder of its
-- architecture family, which leaves a fingerprint:
--   GAN         transposed convolutions, stride 2 (checkerboard traces)
--   LatDiff     a 4x or 8x "latent" decoded by nearest or bilinear upsampling + 3x3 convs
--   PixDiff     pixel-space bilinear upsampling plus colour-correlated noise
--   other       a stride-4 transposed convolution (blocky) after a blur
-- and then the output processing of its pipeline: resampling from a smaller side,
-- sharpening, a JPEG compression inside the pipeline, each with its own parameters.
-- Subsets follow the dataset: "systematic" generators are fine-tunes of twelve LatDiff
-- base models (the base's decoder moved by a perturbation of log-uniform size, each
-- with processing of its own), "manual" ones are independent models of diverse
-- families, "commercial" ones are latent or pixel decoders behind an API that always
-- compresses (architecture 'Commercial').  Every generator also adds the same kind of
-- fine noise the reals carry, so that telling them apart needs the fingerprint, not the
-- absence of detail.  docs/data.md says which effect of the paper each choice carries.
--
-- Sizes and formats are drawn from one distribution for both classes unless a
-- confound is asked for ('size': reals larger; 'format': reals JPEG, fakes PNG).
-- Train and eval stores share no generator (they share base models).  Deterministic
-- from the seed.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local image = require 'cfx.image'
local data = require 'cfx.data'
local raise = core.raise

local M = {}

-- The model of the data: a store written by another version of it is made again by the
-- studies that made it (cfx.study.data); bump it when the images a seed gives change.
M.version = 2

M.real_sources = { 'LAION', 'COCO', 'FFHQ', 'LandscapesHQ' }

-- ---- real sources ------------------------------------------------------------------------
local function grid(n, S)
  local y = tensor.arange(S, { dtype = 'float32' }):view(1, 1, S, 1):expand(n, 1, S, S) / (S - 1)
  local x = tensor.arange(S, { dtype = 'float32' }):view(1, 1, 1, S):expand(n, 1, S, S) / (S - 1)
  return x, y
end

-- Smooth random fields: octaves of noise at S/16 .. S/2, upsampled bilinearly.
local function octaves(n, c, S, amps)
  local acc = tensor.zeros(n, c, S, S)
  local res = 2
  for _, a in ipairs(amps) do
    if a ~= 0 then
      local r = math.min(res, S)
      acc = acc + F.interpolate(tensor.randn(n, c, r, r), { size = { S, S }, mode = 'bilinear' }) * a
    end
    res = res * 2
  end
  return acc
end

local function rand_col(n, lo, hi) return tensor.rand(n, 3, 1, 1) * (hi - lo) + lo end

-- n images {n, 3, S, S} in [0, 1] of one source, without the sensor noise.
local scenes
-- LAION is web-scale: its images are of every kind, the other sources' scenes as well as
-- colourful abstract content of its own, in equal shares.  (Were it one kind of scene
-- apart from the others, content alone would tell LAION reals from fakes of another
-- source: a shortcut the real sources, which overlap in content, do not offer.)
local function web_scenes(n, S)
  local parts, kinds = {}, { 'web', 'COCO', 'FFHQ', 'LandscapesHQ' }
  for i, kind in ipairs(kinds) do
    local m = math.floor(n / #kinds) + (i <= n % #kinds and 1 or 0)
    if m > 0 then parts[#parts + 1] = scenes(kind, m, S) end
  end
  return tensor.cat(parts)
end

function scenes(source, n, S)
  if source == 'LAION' then return web_scenes(n, S) end
  local x, y = grid(n, S)
  local img
  if source == 'LandscapesHQ' then
    local horizon = tensor.rand(n, 1, 1, 1) * 0.4 + 0.35
    local wave = (x * (tensor.rand(n, 1, 1, 1) * 12 + 3)):sin() * 0.05
    local ground = y:gt(horizon + wave):float()
    local sky = rand_col(n, 0.4, 0.9) * (1 - y * 0.5)
    img = sky * (1 - ground) + rand_col(n, 0.1, 0.6) * ground + octaves(n, 3, S, { 0, 0.08, 0.06, 0.04 }) * ground
  elseif source == 'FFHQ' then
    local cx, cy = tensor.rand(n, 1, 1, 1) * 0.2 + 0.4, tensor.rand(n, 1, 1, 1) * 0.2 + 0.45
    local face = (((x - cx) / 0.28) ^ 2 + ((y - cy) / 0.36) ^ 2):lt(1):float()
    local hair = (((x - cx) / 0.33) ^ 2 + ((y - cy + 0.12) / 0.36) ^ 2):lt(1):float() * (1 - face)
    local skin = tensor.tensor { 0.85, 0.65, 0.55 }:view(1, 3, 1, 1) * (tensor.rand(n, 1, 1, 1) * 0.5 + 0.6)
    local bg = rand_col(n, 0.2, 0.8) + octaves(n, 3, S, { 0.1, 0.05, 0, 0 })
    img = bg * (1 - face - hair) + skin * face + rand_col(n, 0.0, 0.4) * hair
  elseif source == 'COCO' then
    img = rand_col(n, 0.2, 0.7) + octaves(n, 3, S, { 0.05, 0.08, 0.06, 0.03 })
    for _ = 1, 4 do
      local x0, y0 = tensor.rand(n, 1, 1, 1) * 0.8, tensor.rand(n, 1, 1, 1) * 0.8
      local w, h = tensor.rand(n, 1, 1, 1) * 0.4 + 0.1, tensor.rand(n, 1, 1, 1) * 0.4 + 0.1
      local m = x:ge(x0):logical_and(x:lt(x0 + w)):logical_and(y:ge(y0)):logical_and(y:lt(y0 + h)):float()
      img = img * (1 - m) + rand_col(n, 0, 1) * m
    end
  else -- 'web': colourful smooth content (LAION's own share)
    img = rand_col(n, 0.3, 0.7) + octaves(n, 3, S, { 0.25, 0.15, 0.08, 0.04 })
  end
  return img
end

-- The finest detail a real camera image has: per-pixel noise, slightly correlated.
local function sensor_noise(n, S, sigma)
  local k = tensor.tensor { { 0.05, 0.1, 0.05 }, { 0.1, 0.4, 0.1 }, { 0.05, 0.1, 0.05 } }:view(1, 1, 3, 3)
  local noise = F.conv2d(tensor.randn(n * 3, 1, S, S), k, { padding = 1 }):view(n, 3, S, S)
  return noise * (sigma / 0.48)
end

function M.reals(source, n, S)
  return (scenes(source, n, S) + sensor_noise(n, S, 0.03)):clamp(0, 1)
end

-- ---- generators ---------------------------------------------------------------------------
-- A generator is a decoder network (its family's shape, its own weights) followed by the
-- output processing of its pipeline.  Both are drawn from broad distributions, because in
-- the real dataset the thousands of systematic generators are community fine-tunes of a
-- dozen base models that differ less in architecture than in decoder weights, upsampling,
-- output resizing, sharpening, compression and strength: no handful of them covers the
-- rest, so a detector keeps gaining from more of them (the scaling effect).
local C_CH = 8 -- channels of the generator networks

local function weights(shape, scale)
  return tensor.randn(shape) * (scale / math.sqrt(shape[2] * shape[3] * shape[4]))
end

-- The shape of a decoder: family plus, for latent decoders, the latent factor (8x or 4x),
-- the upsampling mode and the activation.  Drawn per base model (systematic) or per
-- generator (manual, commercial).
local function draw_arch(family, ri, ru)
  local a = { family = family, act = ru(0, 1) < 0.6 and 'silu' or 'relu' }
  if family == 'LatDiff' then
    a.factor = ru(0, 1) < 0.75 and 8 or 4
    a.upmode = ru(0, 1) < 0.6 and 'nearest' or 'bilinear'
  end
  return a
end

local function shapes_of(arch)
  local f = arch.family
  if f == 'GAN' then
    return { w0 = { C_CH, 3, 3, 3 }, t1 = { C_CH, C_CH, 3, 3 }, t2 = { C_CH, C_CH, 3, 3 }, out = { 3, C_CH, 3, 3 } }
  elseif f == 'LatDiff' then
    local s = { w0 = { C_CH, 3, 3, 3 }, out = { 3, C_CH, 3, 3 } }
    for i = 1, math.floor(math.log(arch.factor) / math.log(2) + 0.5) do s['c' .. i] = { C_CH, C_CH, 3, 3 } end
    return s
  elseif f == 'PixDiff' then
    return { mix = { 3, 3, 1, 1 }, smooth = { 3, 1, 3, 3 }, c1 = { C_CH, 3, 3, 3 }, out = { 3, C_CH, 3, 3 } }
  end
  return { t = { 3, 3, 4, 4 } } -- other
end

-- The weights of a decoder: base weights (drawn under base_seed) plus, for a fine-tune,
-- a perturbation of relative size variant_scale (drawn under own_seed).
local function make_net(arch, base_seed, own_seed, variant_scale)
  local shapes, names = shapes_of(arch), {}
  for k in pairs(shapes) do names[#names + 1] = k end
  table.sort(names)
  local net = { arch = arch }
  core.C.cfx_manual_seed(base_seed)
  for _, k in ipairs(names) do net[k] = weights(shapes[k], 1.5) end
  if variant_scale > 0 then
    core.C.cfx_manual_seed(own_seed)
    for _, k in ipairs(names) do net[k] = net[k] + weights(shapes[k], 1.5 * variant_scale) end
  end
  return net
end

local function pool(x, f) return F.avg_pool2d(x, f) end
local function up(x, S, mode) return F.interpolate(x, { size = { S, S }, mode = mode or 'bilinear' }) end
local function act(h, name) if name == 'silu' then return h:silu() end return h:relu() end

-- The decoder's output for content x {n, 3, S, S}: (low-res content, artifact).
local function run_net(net, x, S)
  local a = net.arch
  if a.family == 'GAN' then
    local low = pool(x, 4)
    local h = act(F.conv2d(low, net.w0, { padding = 1 }), a.act)
    h = act(F.conv_transpose2d(h, net.t1, { stride = 2, padding = 1, output_padding = 1 }), a.act)
    h = act(F.conv_transpose2d(h, net.t2, { stride = 2, padding = 1, output_padding = 1 }), a.act)
    return low, F.conv2d(h, net.out, { padding = 1 })
  elseif a.family == 'LatDiff' then
    local low = pool(x, a.factor)
    local h = act(F.conv2d(low, net.w0, { padding = 1 }), a.act)
    local i = 1
    while net['c' .. i] do
      h = act(F.conv2d(up(h, h:size(3) * 2, a.upmode), net['c' .. i], { padding = 1 }), a.act)
      i = i + 1
    end
    return low, F.conv2d(h, net.out, { padding = 1 })
  elseif a.family == 'PixDiff' then
    local low = pool(x, 2)
    local noise = F.conv2d(tensor.randn(x:size(1), 3, S, S), net.mix)
    noise = F.conv2d(noise, net.smooth, { padding = 1, groups = 3 })
    local h = act(F.conv2d(up(low, S), net.c1, { padding = 1 }), a.act)
    return low, noise + F.conv2d(h, net.out, { padding = 1 })
  end
  local low = pool(x, 4)
  local blurred = F.avg_pool2d(F.pad(low, { 1, 1, 1, 1 }, { mode = 'replicate' }), 3, { stride = 1 })
  return low, F.conv_transpose2d(blurred, net.t, { stride = 4 })
end

local function blur3(x)
  return F.avg_pool2d(F.pad(x, { 1, 1, 1, 1 }, { mode = 'replicate' }), 3, { stride = 1 })
end

-- n fakes {n, 3, S, S} in [0, 1] from generator spec g (see M.plan): the decoder's
-- output at strength g.strength, then the pipeline's output processing (g.resize: made
-- at a fraction of the side and resampled back; g.sharpen: an unsharp mask), then the
-- same fine noise the reals carry.  g.jpeg (a compression inside the pipeline) is
-- applied when the image is encoded.
function M.fakes(g, n, S)
  local content = scenes(g.source, n, S)
  local low, art = run_net(g.net, content, S)
  art = art - art:mean({ 2, 3 }, true)
  art = art / (art:std() + 1e-6) * g.strength
  local img = up(low, S) + art
  if g.resize then
    local s = math.max(8, math.floor(S * g.resize + 0.5))
    img = up(F.interpolate(img, { size = { s, s }, mode = 'bilinear', antialias = true }), S, g.resize_mode)
  end
  if g.sharpen then img = img + (img - blur3(img)) * g.sharpen end
  return (img + sensor_noise(n, S, 0.03)):clamp(0, 1)
end

-- ---- the plan: which generators, in which split ---------------------------------------------
-- The systematic set: fine-tunes of these base models (latent decoders).
M.base_models = { 'sd14', 'sd15', 'sd20', 'sd21', 'sdxl', 'sdxl-turbo', 'ssd1b', 'kandinsky21', 'kandinsky22',
  'pixart', 'playground', 'wuerstchen' }
local manual_families = { 'GAN', 'GAN', 'PixDiff', 'LatDiff', 'other' }
local commercial_families = { 'LatDiff', 'PixDiff' }

-- The output processing of one generator's pipeline, drawn from broad distributions.
local function draw_processing(g, subset, ri, ru)
  g.strength = math.exp(ru(math.log(0.03), math.log(0.10)))
  if ru(0, 1) < 0.35 then
    g.resize = ru(0.55, 0.9)
    g.resize_mode = ({ 'bilinear', 'bicubic', 'nearest' })[ri(1, 3)]
  end
  if ru(0, 1) < 0.2 then g.sharpen = ru(0.3, 1.0) end
  if subset == 'commercial' then
    g.jpeg = ri(70, 90) -- behind an API: always compressed
  elseif ru(0, 1) < 0.25 then
    g.jpeg = ri(75, 95)
  end
end

-- The base models' decoder shapes for a seed (the same in every split).
local function base_archs(seed, rng, ri, ru)
  local bases = {}
  for b = 1, #M.base_models do
    core.C.cfx_rng_seed(rng, seed * 7919 + b)
    bases[b] = draw_arch('LatDiff', ri, ru)
  end
  return bases
end

-- Generator g of the plan of `seed`: {name, architecture, subset, source, family, base?,
-- net, strength, resize?, resize_mode?, sharpen?, jpeg?}, drawn under its own seed, so
-- it is the same whatever else is drawn.  The base models are the same in every split of
-- a seed: a training store and an evaluation store hold different fine-tunes of them.
function M.generator(g, seed)
  local rng = core.ffi.new('cfx_rng')
  local function ri(lo, hi) return tonumber(core.C.cfx_rng_int(rng, lo, hi)) end
  local function ru(lo, hi) return core.C.cfx_rng_uniform(rng, lo, hi) end
  local bases = base_archs(seed, rng, ri, ru)
  core.C.cfx_rng_seed(rng, seed * 1000003 + g)
  local u, subset, family, arch, base = ru(0, 1), nil, nil, nil, nil
  if u < 0.7 then
    subset, base = 'systematic', ri(1, #M.base_models)
    family, arch = 'LatDiff', bases[base]
  elseif u < 0.95 then
    subset, family = 'manual', manual_families[ri(1, #manual_families)]
  else
    subset, family = 'commercial', commercial_families[ri(1, #commercial_families)]
  end
  arch = arch or draw_arch(family, ri, ru)
  local source = family == 'GAN' and ri(1, 3) == 1 and 'FFHQ' or M.real_sources[ri(1, #M.real_sources)]
  local own = seed * 1000003 + g
  local spec = { subset = subset, source = source, family = family,
    architecture = subset == 'commercial' and 'Commercial' or family }
  if subset == 'systematic' then
    spec.name = ('%s-finetune-%04d'):format(M.base_models[base], g)
    spec.base = M.base_models[base]
    -- a fine-tune moves its base's decoder by anything from a little to a lot
    spec.net = make_net(arch, seed * 7919 + base, own, math.exp(ru(math.log(0.1), math.log(1.0))))
  else
    spec.name = ('%s-%s-%04d'):format(family:lower(), subset, g)
    spec.net = make_net(arch, own, own, 0)
  end
  draw_processing(spec, subset, ri, ru)
  return spec
end

-- Generators 1..total of the plan of `seed`.
function M.plan(total, seed)
  local list = {}
  for g = 1, total do list[g] = M.generator(g, seed) end
  return list
end

-- ---- writing stores -----------------------------------------------------------------------------
local defaults = {
  out = 'data/synth', train_generators = 200, eval_generators = 50, per_generator = 40, size = 64,
  seed = 0, confound = false, jpeg_fraction = 0.4, progress = true,
}

-- Draw the size and format of n images of one class.
local function draw_formats(rng, n, S, class, confound, jpeg_fraction)
  local r = {}
  for j = 1, n do
    local size = core.C.cfx_rng_uniform(rng, 0, 1) < 0.5 and S or math.floor(S * 1.25)
    local jpeg = core.C.cfx_rng_uniform(rng, 0, 1) < jpeg_fraction
    if confound == 'size' then size = class == 0 and S * 2 or S end
    if confound == 'format' then jpeg = class == 0 end
    r[j] = { size = size, jpeg = jpeg, quality = tonumber(core.C.cfx_rng_int(rng, 85, 95)) }
  end
  return r
end

-- Encode and add n images {n, 3, S, S}.  how: {class, generator, prefix, pipeline_jpeg=q
-- (compressed inside the pipeline, before any saving), always_jpeg=q (saved as JPEG at q
-- whatever the drawn format)}.
local function encode_all(w, imgs, forms, how, S)
  local u8 = (imgs * 255):round():byte()
  for j = 1, u8:size(1) do
    local f = forms[j]
    local t = u8[j]:permute(2, 3, 1):contiguous()
    if how.pipeline_jpeg then t = image.decode(image.encode_jpeg(t, how.pipeline_jpeg)) end
    if f.size ~= S then t = image.resize(t, { f.size, f.size }, { filter = 'bicubic' }) end
    local jpeg = f.jpeg or how.always_jpeg
    local bytes = jpeg and image.encode_jpeg(t, how.always_jpeg or f.quality) or image.encode_png(t, 1)
    w:add { bytes = bytes, label = how.class, generator = how.generator, name = ('%s-%05d'):format(how.prefix, j),
      width = f.size, height = f.size, format = jpeg and 'jpeg' or 'png' }
  end
end

-- A store of generators `gens` (per_generator fakes each) and as many reals: from the
-- sources the fakes' content came from (aligned), or spread evenly over real_sources.
local function write_split(path, gens, o, split_seed, progress, real_sources, real_jpeg)
  local S = o.size
  local w = data.writer(path)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, split_seed)
  local ids = {}
  for _, src in ipairs(M.real_sources) do ids[src] = w:generator(src, 'real', 'real') end
  local per_source = {}
  for gi, g in ipairs(gens) do
    local id = w:generator(g.name, g.architecture, g.subset, g.source)
    core.C.cfx_manual_seed(split_seed * 65537 + gi)
    local imgs = M.fakes(g, o.per_generator, S)
    encode_all(w, imgs, draw_formats(rng, o.per_generator, S, 1, o.confound, o.jpeg_fraction),
      { class = 1, generator = id, prefix = g.name, pipeline_jpeg = g.jpeg,
        always_jpeg = g.subset == 'commercial' and g.jpeg or nil }, S)
    per_source[g.source] = (per_source[g.source] or 0) + o.per_generator
    if progress then progress(gi, #gens) end
  end
  if real_sources then
    local total, each = #gens * o.per_generator, {}
    for i, src in ipairs(real_sources) do
      each[src] = math.floor(total / #real_sources) + (i <= total % #real_sources and 1 or 0)
    end
    per_source = each
  end
  for si, src in ipairs(M.real_sources) do
    local n = per_source[src] or 0
    local done = 0
    while done < n do
      local m = math.min(256, n - done)
      core.C.cfx_manual_seed(split_seed * 131071 + si * 4099 + done)
      encode_all(w, M.reals(src, m, S), draw_formats(rng, m, S, 0, o.confound, o.jpeg_fraction),
        { class = 0, generator = ids[src], prefix = ('%s-%d'):format(src, done), always_jpeg = real_jpeg }, S)
      done = done + m
    end
  end
  w:attr('source', 'cfx synth')
  w:attr('synth_version', tostring(M.version))
  -- reals are kept under their sources, paired with no generator: evaluation deals them out
  w:attr('pairing', 'deal')
  w:attr('synth_options', ('seed=%d size=%d per_generator=%d confound=%s'):format(o.seed, S, o.per_generator,
    tostring(o.confound)))
  return w:finish()
end

local function progress_meter(enabled)
  if not enabled or core.C.cfx_isatty(2) == 0 then return nil end
  local t0 = os.time()
  return function(i, n)
    if i % 25 == 0 or i == n then
      io.stderr:write(('\rsynth: %d/%d generators (%ds)'):format(i, n, os.time() - t0))
      if i == n then io.stderr:write('\n') end
    end
  end
end

local function check_size(S, what)
  if type(S) ~= 'number' or S < 16 or S % 8 ~= 0 then
    raise(('%s: size must be a multiple of 8 >= 16, got %s'):format(what, tostring(S)))
  end
end

-- cfx.synth.write_reals(path, {per_source=1000, size=64, seed=1000, jpeg_fraction=0.4}) -> path:
-- a store of reals only, each real source one "generator" (so generator ids 1..4 are
-- content classes): the pool of the pretraining stand-in (cfx.pretrain).  Use a seed
-- other than the experiment data's so the images are new.
function M.write_reals(path, opts)
  local o = core.options(opts, { per_source = 1000, size = 64, seed = 1000, jpeg_fraction = 0.4 }, 'synth.write_reals')
  local S = o.size
  check_size(S, 'synth.write_reals')
  local w = data.writer(path)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, o.seed)
  for si, src in ipairs(M.real_sources) do
    local id = w:generator(src, 'real', 'real')
    local done = 0
    while done < o.per_source do
      local m = math.min(256, o.per_source - done)
      core.C.cfx_manual_seed(o.seed * 131071 + si * 4099 + done)
      encode_all(w, M.reals(src, m, S), draw_formats(rng, m, S, 0, false, o.jpeg_fraction),
        { class = 0, generator = id, prefix = ('%s-%d'):format(src, done) }, S)
      done = done + m
    end
  end
  w:attr('source', 'cfx synth reals')
  return w:finish()
end

-- cfx.synth.generate{out='data/synth', train_generators=200, eval_generators=50,
--   per_generator=40, size=64, seed=0, confound=false|'size'|'format', jpeg_fraction=0.4}
-- -> paths of train.h5 and eval.h5 (disjoint generators, the same base models).
function M.generate(opts)
  local o = core.options(opts, defaults, 'synth')
  if o.confound and o.confound ~= 'size' and o.confound ~= 'format' then
    raise(("synth: confound must be 'size' or 'format', got %s"):format(tostring(o.confound)))
  end
  check_size(o.size, 'synth')
  require('cfx.fs').mkdirs(o.out)
  local all = M.plan(o.train_generators + o.eval_generators, o.seed)
  local train, eval = {}, {}
  for i, g in ipairs(all) do
    if i <= o.train_generators then train[#train + 1] = g else eval[#eval + 1] = g end
  end
  local progress = progress_meter(o.progress)
  local ptrain = write_split(o.out .. '/train.h5', train, o, o.seed * 2 + 1, progress)
  local peval = write_split(o.out .. '/eval.h5', eval, o, o.seed * 2 + 2, progress)
  return ptrain, peval
end

local function set_of(list, what)
  if list == nil then return nil end
  if type(list) == 'string' then list = { list } end
  if type(list) ~= 'table' or #list == 0 then raise(('synth.eval_set: %s must be a list of names'):format(what)) end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- cfx.synth.eval_set{out=PATH, generators=20, per_generator=40, size=64, seed=100,
--   families={'GAN',...}, subsets={'commercial',...}, real_sources={'COCO',...},
--   real_jpeg=quality, jpeg_fraction=0.4} -> PATH: an evaluation store built
-- differently from the default one, for cross-dataset tables: `generators` generators of
-- the given architecture families (the store's architecture names: GAN, LatDiff,
-- PixDiff, Commercial, other) and subsets, drawn from the plan of `seed` (use a seed
-- other than the training data's for generators never seen, bases included); as many
-- reals as fakes, spread over real_sources (default: the fakes' own sources), saved as
-- JPEG at real_jpeg when given.
function M.eval_set(opts)
  local o = core.options(opts, { out = true, generators = 20, per_generator = 40, size = 64, seed = 100,
    ['?families'] = true, ['?subsets'] = true, ['?real_sources'] = true, ['?real_jpeg'] = true,
    jpeg_fraction = 0.4, progress = true }, 'synth.eval_set')
  check_size(o.size, 'synth.eval_set')
  local fam, sub = set_of(o.families, 'families'), set_of(o.subsets, 'subsets')
  if o.real_sources then
    for _, s in ipairs(o.real_sources) do
      local known = false
      for _, r in ipairs(M.real_sources) do known = known or r == s end
      if not known then
        raise(('synth.eval_set: unknown real source %s (expected one of %s)'):format(tostring(s),
          table.concat(M.real_sources, ', ')))
      end
    end
  end
  if o.real_jpeg ~= nil and (type(o.real_jpeg) ~= 'number' or o.real_jpeg < 1 or o.real_jpeg > 100) then
    raise(('synth.eval_set: real_jpeg must be a JPEG quality 1..100, got %s'):format(tostring(o.real_jpeg)))
  end
  -- walk the plan until enough generators match (generator g does not depend on the total)
  local chosen, g, limit = {}, 0, o.generators * 200 + 1000
  while #chosen < o.generators do
    g = g + 1
    if g > limit then
      raise(('synth.eval_set: no %d generators of families %s and subsets %s in the first %d of the plan'):format(
        o.generators, table.concat(o.families or { 'any' }, ','), table.concat(o.subsets or { 'any' }, ','), limit))
    end
    local spec = M.generator(g, o.seed)
    if (not fam or fam[spec.architecture]) and (not sub or sub[spec.subset]) then chosen[#chosen + 1] = spec end
  end
  local dir = o.out:match('^(.*)/[^/]*$')
  if dir then require('cfx.fs').mkdirs(dir) end
  local wo = { size = o.size, per_generator = o.per_generator, seed = o.seed, confound = false,
    jpeg_fraction = o.jpeg_fraction }
  return write_split(o.out, chosen, wo, o.seed * 2 + 3, progress_meter(o.progress), o.real_sources, o.real_jpeg)
end

return M
