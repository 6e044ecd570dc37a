-- synth.lua: cfx.synth, a synthetic Community-Forensics-shaped dataset, so that every
-- experiment runs end to end on a CPU without downloading anything.
--
-- Real images come from procedural "real sources" (LAION-, COCO-, FFHQ- and
-- LandscapesHQ-like scenes: smooth multi-scale content, shapes, faces, horizons, with
-- full-resolution sensor noise).  Each generator re-synthesizes real-like content of
-- one source from a low-resolution version through a small random-weight upsampling
-- network of its architecture family, which leaves a fingerprint:
--   GAN         transposed convolutions, stride 2 (checkerboard traces)
--   LatDiff     an 8x "latent" decoded by nearest upsampling + 3x3 convs + SiLU
--   PixDiff     pixel-space bilinear upsampling plus colour-correlated noise
--   Commercial  a latent decoder whose output is always re-encoded as JPEG
--   other       a stride-4 transposed convolution (blocky) after a blur
-- Subsets follow the dataset: "systematic" generators are close variants of a few base
-- models of one family (base weights + a small perturbation), "manual" ones are
-- independent models of diverse families, "commercial" ones are Commercial.  Every
-- generator also adds the same kind of fine noise the reals carry, so that telling
-- them apart needs the fingerprint, not the absence of detail.
--
-- Sizes and formats are drawn from one distribution for both classes unless a
-- confound is asked for ('size': reals larger; 'format': reals JPEG, fakes PNG).
-- Train and eval stores share no generator.  Deterministic from the seed.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local image = require 'cfx.image'
local data = require 'cfx.data'
local raise = core.raise

local M = {}

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
local function scenes(source, n, S)
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
  else -- LAION: colourful smooth content
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
local C_CH = 8 -- channels of the generator networks

local function weights(shape, scale)
  return tensor.randn(shape) * (scale / math.sqrt(shape[2] * shape[3] * shape[4]))
end

-- The weights of a generator: a family's base model plus a perturbation (systematic),
-- or an independent draw (manual, commercial).  Drawn under its own seed.
local function make_net(family, base_seed, own_seed, variant_scale)
  local shapes
  if family == 'GAN' then
    shapes = { w0 = { C_CH, 3, 3, 3 }, t1 = { C_CH, C_CH, 3, 3 }, t2 = { C_CH, C_CH, 3, 3 }, out = { 3, C_CH, 3, 3 } }
  elseif family == 'LatDiff' or family == 'Commercial' then
    shapes = { w0 = { C_CH, 3, 3, 3 }, c1 = { C_CH, C_CH, 3, 3 }, c2 = { C_CH, C_CH, 3, 3 }, c3 = { C_CH, C_CH, 3, 3 },
      out = { 3, C_CH, 3, 3 } }
  elseif family == 'PixDiff' then
    shapes = { mix = { 3, 3, 1, 1 }, smooth = { 3, 1, 3, 3 }, c1 = { C_CH, 3, 3, 3 }, out = { 3, C_CH, 3, 3 } }
  else -- other
    shapes = { t = { 3, 3, 4, 4 } }
  end
  local names = {}
  for k in pairs(shapes) do names[#names + 1] = k end
  table.sort(names)
  local net = { family = family }
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

-- The generator's fingerprint for content x {n, 3, S, S}: (low-res content, artifact).
local function run_net(net, x, S)
  local fam = net.family
  if fam == 'GAN' then
    local low = pool(x, 4)
    local h = F.conv2d(low, net.w0, { padding = 1 }):relu()
    h = F.conv_transpose2d(h, net.t1, { stride = 2, padding = 1, output_padding = 1 }):relu()
    h = F.conv_transpose2d(h, net.t2, { stride = 2, padding = 1, output_padding = 1 }):relu()
    return low, F.conv2d(h, net.out, { padding = 1 })
  elseif fam == 'LatDiff' or fam == 'Commercial' then
    local low = pool(x, 8)
    local h = F.conv2d(low, net.w0, { padding = 1 }):silu()
    for _, k in ipairs { 'c1', 'c2', 'c3' } do
      h = F.conv2d(up(h, h:size(3) * 2, 'nearest'), net[k], { padding = 1 }):silu()
    end
    return low, F.conv2d(h, net.out, { padding = 1 })
  elseif fam == 'PixDiff' then
    local low = pool(x, 2)
    local noise = F.conv2d(tensor.randn(x:size(1), 3, S, S), net.mix)
    noise = F.conv2d(noise, net.smooth, { padding = 1, groups = 3 })
    local h = F.conv2d(up(low, S), net.c1, { padding = 1 }):relu()
    return low, noise + F.conv2d(h, net.out, { padding = 1 })
  else
    local low = pool(x, 4)
    local blurred = F.avg_pool2d(F.pad(low, { 1, 1, 1, 1 }, { mode = 'replicate' }), 3, { stride = 1 })
    return low, F.conv_transpose2d(blurred, net.t, { stride = 4 })
  end
end

-- n fakes {n, 3, S, S} in [0, 1] from generator spec g (see M.plan).
function M.fakes(g, n, S)
  local content = scenes(g.source, n, S)
  local low, art = run_net(g.net, content, S)
  art = art - art:mean({ 2, 3 }, true)
  art = art / (art:std() + 1e-6) * g.strength
  return (up(low, S) + art + sensor_noise(n, S, 0.03)):clamp(0, 1)
end

-- ---- the plan: which generators, in which split ---------------------------------------------
local manual_families = { 'GAN', 'GAN', 'PixDiff', 'LatDiff', 'other' }
local base_models = { LatDiff = { 'sd14', 'sd15', 'sd21', 'sdxl', 'kandinsky' } }

-- A deterministic list of generators: {name, architecture, subset, source, net, strength}.
function M.plan(total, seed)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, seed)
  local function ri(lo, hi) return tonumber(core.C.cfx_rng_int(rng, lo, hi)) end
  local function ru(lo, hi) return core.C.cfx_rng_uniform(rng, lo, hi) end
  local list = {}
  for g = 1, total do
    local u, subset, family, base = ru(0, 1), nil, nil, nil
    if u < 0.7 then
      subset, family = 'systematic', 'LatDiff'
      base = ri(1, #base_models.LatDiff)
    elseif u < 0.95 then
      subset, family = 'manual', manual_families[ri(1, #manual_families)]
    else
      subset, family = 'commercial', 'Commercial'
    end
    local source = family == 'GAN' and ri(1, 3) == 1 and 'FFHQ' or M.real_sources[ri(1, #M.real_sources)]
    local own = seed * 1000003 + g
    local name
    if subset == 'systematic' then
      name = ('%s-finetune-%04d'):format(base_models.LatDiff[base], g)
    else
      name = ('%s-%s-%04d'):format(family:lower(), subset, g)
    end
    list[g] = {
      name = name, architecture = family, subset = subset, source = source,
      net = make_net(family, subset == 'systematic' and (seed * 7919 + base) or own, own,
        subset == 'systematic' and 0.35 or 0),
      strength = ru(0.04, 0.09),
    }
  end
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

local function encode_all(w, imgs, class, gen_id, forms, name_prefix, force_jpeg, S)
  local u8 = (imgs * 255):round():byte()
  for j = 1, u8:size(1) do
    local f = forms[j]
    local t = u8[j]:permute(2, 3, 1):contiguous()
    if f.size ~= S then t = image.resize(t, { f.size, f.size }, { filter = 'bicubic' }) end
    local bytes
    if f.jpeg or force_jpeg then bytes = image.encode_jpeg(t, f.quality) else bytes = image.encode_png(t, 1) end
    w:add { bytes = bytes, label = class, generator = gen_id, name = ('%s-%05d'):format(name_prefix, j),
      width = f.size, height = f.size, format = (f.jpeg or force_jpeg) and 'jpeg' or 'png' }
  end
end

local function write_split(path, gens, o, split_seed, progress)
  local S = o.size
  local w = data.writer(path)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, split_seed)
  local ids = {}
  for _, src in ipairs(M.real_sources) do ids[src] = w:generator(src, 'real', 'real') end
  local per_source = {}
  for gi, g in ipairs(gens) do
    local id = w:generator(g.name, g.architecture, g.subset)
    core.C.cfx_manual_seed(split_seed * 65537 + gi)
    local imgs = M.fakes(g, o.per_generator, S)
    encode_all(w, imgs, 1, id, draw_formats(rng, o.per_generator, S, 1, o.confound, o.jpeg_fraction), g.name,
      g.architecture == 'Commercial', S)
    per_source[g.source] = (per_source[g.source] or 0) + o.per_generator
    if progress then progress(gi, #gens) end
  end
  -- as many reals as fakes, from the sources the fakes' content came from (aligned)
  for si, src in ipairs(M.real_sources) do
    local n = per_source[src] or 0
    local done = 0
    while done < n do
      local m = math.min(256, n - done)
      core.C.cfx_manual_seed(split_seed * 131071 + si * 4099 + done)
      encode_all(w, M.reals(src, m, S), 0, ids[src], draw_formats(rng, m, S, 0, o.confound, o.jpeg_fraction),
        ('%s-%d'):format(src, done), false, S)
      done = done + m
    end
  end
  w:attr('source', 'cfx synth')
  -- reals are kept under their sources, paired with no generator: evaluation deals them out
  w:attr('pairing', 'deal')
  w:attr('synth_options', ('seed=%d size=%d per_generator=%d confound=%s'):format(o.seed, S, o.per_generator,
    tostring(o.confound)))
  return w:finish()
end

-- cfx.synth.write_reals(path, {per_source=1000, size=64, seed=1000, jpeg_fraction=0.4}) -> path:
-- a store of reals only, each real source one "generator" (so generator ids 1..4 are
-- content classes): the pool of the pretraining stand-in (cfx.pretrain).  Use a seed
-- other than the experiment data's so the images are new.
function M.write_reals(path, opts)
  local o = core.options(opts, { per_source = 1000, size = 64, seed = 1000, jpeg_fraction = 0.4 }, 'synth.write_reals')
  local S = o.size
  local w = data.writer(path)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, o.seed)
  for si, src in ipairs(M.real_sources) do
    local id = w:generator(src, 'real', 'real')
    local done = 0
    while done < o.per_source do
      local m = math.min(256, o.per_source - done)
      core.C.cfx_manual_seed(o.seed * 131071 + si * 4099 + done)
      encode_all(w, M.reals(src, m, S), 0, id, draw_formats(rng, m, S, 0, false, o.jpeg_fraction),
        ('%s-%d'):format(src, done), false, S)
      done = done + m
    end
  end
  w:attr('source', 'cfx synth reals')
  return w:finish()
end

-- cfx.synth.generate{out='data/synth', train_generators=200, eval_generators=50,
--   per_generator=40, size=64, seed=0, confound=false|'size'|'format', jpeg_fraction=0.4}
-- -> paths of train.h5 and eval.h5 (disjoint generators).
function M.generate(opts)
  local o = core.options(opts, defaults, 'synth')
  if o.confound and o.confound ~= 'size' and o.confound ~= 'format' then
    raise(("synth: confound must be 'size' or 'format', got %s"):format(tostring(o.confound)))
  end
  if o.size < 16 or o.size % 8 ~= 0 then raise(('synth: size must be a multiple of 8 >= 16, got %s'):format(o.size)) end
  require('cfx.fs').mkdirs(o.out)
  local all = M.plan(o.train_generators + o.eval_generators, o.seed)
  local train, eval = {}, {}
  for i, g in ipairs(all) do
    if i <= o.train_generators then train[#train + 1] = g else eval[#eval + 1] = g end
  end
  local progress
  if o.progress and core.C.cfx_isatty(2) ~= 0 then
    local t0 = os.time()
    progress = function(i, n)
      if i % 25 == 0 or i == n then
        io.stderr:write(('\rsynth: %d/%d generators (%ds)'):format(i, n, os.time() - t0))
        if i == n then io.stderr:write('\n') end
      end
    end
  end
  local ptrain = write_split(o.out .. '/train.h5', train, o, o.seed * 2 + 1, progress)
  local peval = write_split(o.out .. '/eval.h5', eval, o, o.seed * 2 + 2, progress)
  return ptrain, peval
end

return M
