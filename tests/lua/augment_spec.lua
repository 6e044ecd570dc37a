-- augment_spec.lua: cfx.augment from Lua: pipelines (RandAugment, eval, perturb,
-- compose), per-sample seeding, the single ops and their argument checks, to_chw and
-- normalize.  Pixel agreement with torchvision/scipy/PIL is in
-- tests/reference/test_image.py; thread-count independence in tests/c/test_image.c.
local cfx = require 'cfx'
local A = cfx.augment

local function picture(h, w, seed)
  cfx.manual_seed(seed or 1)
  return cfx.randint(0, 256, { h, w, 3 }, { dtype = 'uint8' })
end

local function px(t, y, x) -- pixel (1-based) as {r, g, b}
  return t:narrow(1, y, 1):narrow(2, x, 1):reshape({ 3 }):totable()
end

describe('cfx.augment pipelines', function()
  local img = picture(300, 280, 3)

  it('randaugment gives crop x crop images, the same for the same seed', function()
    local p = A.randaugment {}
    assert.equal(224, p:output_size())
    local a = p:apply(img, { seed = 5, epoch = 1, index = 7 })
    assert.same({ 224, 224, 3 }, a:shape())
    assert.equal('uint8', a:dtype())
    assert.is_true(a:equal(p:apply(img, { seed = 5, epoch = 1, index = 7 })))
    assert.is_true(a:equal(p(img, A.seed(5, 1, 7)))) -- __call, explicit seed
    assert.is_false(a:equal(p:apply(img, { seed = 5, epoch = 1, index = 8 })))
    assert.is_false(a:equal(p:apply(img, { seed = 5, epoch = 2, index = 7 })))
    assert.is_false(a:equal(p:apply(img, { seed = 6, epoch = 1, index = 7 })))
    -- without a seed, each call draws a fresh one
    assert.is_false(p:apply(img):equal(p:apply(img)))
  end)

  it('the source image is never modified', function()
    local copy = img:clone()
    A.randaugment {}:apply(img, 1)
    A.perturb { kind = 'blur', level = 2 }:apply(img, 1)
    A.hflip(img)
    assert.is_true(img:equal(copy))
  end)

  it('randaugment options: op subsets, crop size, errors', function()
    local p = A.randaugment { crop = 64, ops = { 'hflip', 'vflip' }, n_max = 1 }
    assert.equal(64, p:output_size())
    local small = picture(64, 64, 4)
    -- only flips: every output is one of the four flips of the input
    local flips = { small, A.hflip(small), A.vflip(small), A.hflip(A.vflip(small)) }
    for i = 1, 12 do
      local out = p:apply(small, i)
      local found = false
      for _, f in ipairs(flips) do found = found or out:equal(f) end
      assert.is_true(found, 'output ' .. i .. ' is not a flip of the input')
    end
    -- an image smaller than the crop is resized up first
    assert.same({ 64, 64, 3 }, p:apply(picture(40, 50), 1):shape())
    local ok, err = pcall(A.randaugment, { ops = { 'hflip', 'twirl' } })
    assert.is_false(ok)
    assert.matches("unknown op 'twirl' %(known: crop, cutout, hflip, jpeg, pad, resize, resized_crop, rotate, shear, "
      .. 'translate, vflip%)', err)
    assert.matches('must be a range {lo, hi}', select(2, pcall(A.randaugment, { jpeg = 75 })))
    assert.matches('JPEG quality range 0..100', select(2, pcall(A.randaugment, { jpeg = { 0, 100 } })))
    assert.matches("unknown option 'rotation'", select(2, pcall(A.randaugment, { rotation = 3 })))
    assert.matches('resize_max', select(2, pcall(A.randaugment, { resize_max = 1 })))
  end)

  it('eval resizes the shorter side and centre-crops', function()
    local e = A.eval {}
    assert.equal(224, e:output_size())
    assert.same({ 224, 224, 3 }, e(picture(375, 500)):shape())
    assert.same({ 224, 224, 3 }, e(picture(100, 120)):shape()) -- upscaled
    local crop_only = A.eval { resize = false, crop = 100 }
    local t = picture(120, 140)
    -- 140 - 100 = 40, 120 - 100 = 20: offsets 20 and 10 (no .5 to round)
    assert.is_true(crop_only(t):equal(t:narrow(1, 11, 100):narrow(2, 21, 100)))
    assert.equal(0, A.eval { resize = 128, crop = false }:output_size())
    assert.same({ 128, 149, 3 }, A.eval { resize = 128, crop = false }(t):shape())
    assert.matches('unknown filter sinc', select(2, pcall(A.eval, { filter = 'sinc' })))
  end)

  it('perturb kinds, levels and their checks', function()
    local t = picture(60, 80)
    for kind, level in pairs { jpeg = 50, blur = 1.5, rotate = 10, resize = 0.2, pad = 0.1, shear = 8 } do
      local out = A.perturb { kind = kind, level = level }(t, 1)
      assert.same({ 60, 80, 3 }, out:shape(), kind)
      assert.is_false(out:equal(t), kind .. ' changed nothing')
    end
    assert.is_true(A.perturb { kind = 'blur', level = 0 }(t, 1):equal(t))
    assert.is_true(A.perturb { kind = 'blur', level = 1.5 }(t, 1):equal(A.gaussian_blur(t, 1.5)))
    assert.matches("unknown kind 'noise'", select(2, pcall(A.perturb, { kind = 'noise' })))
    assert.matches('quality must be 1..100', select(2, pcall(A.perturb, { kind = 'jpeg', level = 0 })))
    assert.matches('fraction must be in %[0, 1%)', select(2, pcall(A.perturb, { kind = 'pad', level = 1 })))
    assert.matches('sigma must be in %[0, 100%]', select(2, pcall(A.perturb, { kind = 'blur', level = -1 })))
  end)

  it('compose runs the stages in order', function()
    local t = picture(90, 120)
    local c = A.compose { A.perturb { kind = 'blur', level = 1 }, A.eval { resize = 64, crop = 48 } }
    assert.equal(48, c:output_size())
    assert.matches('perturb%(blur=1%) %-> eval%(resize=64, crop=48%)', tostring(c))
    local want = A.eval { resize = 64, crop = 48 }(A.gaussian_blur(t, 1), 9)
    assert.is_true(c(t, 9):equal(want))
    assert.matches('element 2 is not a pipeline', select(2, pcall(A.compose, { c, 'x' })))
  end)

  it('takes non-contiguous views and refuses what is not an image', function()
    local t = picture(40, 50)
    local view = t:permute(2, 1, 3) -- {50, 40, 3}, not contiguous
    assert.is_false(view:is_contiguous())
    assert.is_true(A.hflip(view):equal(A.hflip(view:contiguous())))
    local p = A.eval { resize = 32, crop = 32 }
    assert.matches('expected a uint8 tensor {H, W, 3}, got float32', select(2, pcall(p.apply, p, cfx.zeros(8, 8, 3))))
    assert.matches('expected a uint8 tensor {H, W, 3}, got uint8 %[8, 8, 4%]',
      select(2, pcall(A.hflip, cfx.zeros({ 8, 8, 4 }, { dtype = 'uint8' }))))
  end)
end)

describe('cfx.augment single ops', function()
  local t = picture(7, 9, 2)

  it('flips move pixels where they should', function()
    local h, v = A.hflip(t), A.vflip(t)
    assert.same(px(t, 1, 9), px(h, 1, 1))
    assert.same(px(t, 7, 3), px(v, 1, 3))
    assert.is_true(A.hflip(h):equal(t))
    assert.is_true(A.vflip(v):equal(t))
  end)

  it('crop and cutout are 1-based; outside takes the fill', function()
    local c = A.crop(t, 2, 3, 4, 2)
    assert.same({ 2, 4, 3 }, c:shape())
    assert.same(px(t, 3, 2), px(c, 1, 1))
    local o = A.crop(t, 0, 1, 3, 1, { 9, 8, 7 })
    assert.same({ 9, 8, 7 }, px(o, 1, 1))
    assert.same(px(t, 1, 1), px(o, 1, 2))
    local k = A.cutout(t, 8, 6, 5, 5, 0xFFFFFF)
    assert.same({ 255, 255, 255 }, px(k, 7, 9))
    assert.same(px(t, 5, 8), px(k, 5, 8))
    assert.same(px(t, 6, 7), px(k, 6, 7))
    assert.same({ 3, 3, 3 }, A.center_crop(t, 3):shape())
    assert.same({ 5, 3, 3 }, A.center_crop(t, 3, 5):shape())
  end)

  it('pad, affine, blur, jpeg', function()
    local p = A.pad(t, { 1, 2, 3, 4 }, { fill = { 10, 20, 30 } })
    assert.same({ 13, 13, 3 }, p:shape())
    assert.same({ 10, 20, 30 }, px(p, 1, 1))
    assert.same(px(t, 1, 1), px(p, 3, 2))
    assert.same({ 7, 9, 3 }, A.pad(t, { 1, 2, 3, 4 }, { resize_back = true }):shape())
    assert.matches('negative padding', select(2, pcall(A.pad, t, { -1, 0, 0, 0 })))
    assert.is_true(A.affine(t, {}):equal(t))
    assert.is_true(A.affine(t, { filter = 'nearest', angle = 0 }):equal(t))
    assert.same({ 7, 9, 3 }, A.affine(t, { angle = 30, translate = { 1, -2 }, shear = 10 }):shape())
    assert.matches('filter must be nearest, bilinear or bicubic', select(2, pcall(A.affine, t, { filter = 'box' })))
    assert.matches('scale must be > 0', select(2, pcall(A.affine, t, { scale = 0 })))
    assert.matches("unknown option 'rotate'", select(2, pcall(A.affine, t, { rotate = 3 })))
    assert.is_true(A.gaussian_blur(t, 0):equal(t))
    assert.matches('sigma must be in %[0, 1000%]', select(2, pcall(A.gaussian_blur, t, -2)))
    local flat = cfx.full({ 16, 16, 3 }, 77, { dtype = 'uint8' })
    assert.is_true(A.gaussian_blur(flat, 3):equal(flat))
    assert.same({ 7, 9, 3 }, A.jpeg(t, 50):shape())
    assert.matches('quality must be 1..100', select(2, pcall(A.jpeg, t, 0)))
  end)

  it('to_chw and normalize', function()
    local chw = A.to_chw(t)
    assert.same({ 3, 7, 9 }, chw:shape())
    assert.is_true(chw:is_contiguous())
    assert.equal(px(t, 2, 3)[2], chw:narrow(1, 2, 1):narrow(2, 2, 1):narrow(3, 3, 1):item())
    local batch = cfx.stack({ chw, chw }, 1)
    local n = A.normalize(batch)
    assert.same({ 2, 3, 7, 9 }, n:shape())
    assert.equal('float32', n:dtype())
    local v = chw:narrow(1, 3, 1):narrow(2, 1, 1):narrow(3, 1, 1):item()
    local want = (v / 255 - 0.406) / 0.225
    assert.is_true(math.abs(n:narrow(1, 2, 1):narrow(2, 3, 1):narrow(3, 1, 1):narrow(4, 1, 1):item() - want) < 1e-5)
    local one = A.normalize(chw, { 0.5, 0.5, 0.5 }, { 0.5, 0.5, 0.5 })
    assert.same({ 3, 7, 9 }, one:shape())
    assert.is_true(one:max():item() <= 1 + 1e-6 and one:min():item() >= -1 - 1e-6)
  end)
end)

describe('translation', function()
  it('an integer nearest translation equals the shifted crop RandAugment uses for it', function()
    local A = cfx.augment
    local t = cfx.randint(0, 256, { 30, 40, 3 }, { dtype = 'uint8' })
    for _, d in ipairs { { 0, 0 }, { 13, -7 }, { -4, 22 }, { 39, 0 }, { -50, 3 } } do
      assert.is_true(A.affine(t, { translate = d, filter = 'nearest' }) == A.crop(t, 1 - d[1], 1 - d[2], 40, 30))
    end
  end)
end)
