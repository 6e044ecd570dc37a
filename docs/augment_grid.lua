-- augment_grid.lua: draws docs/img/augment_grid.png, what each augmentation op and
-- the RandAugment pipeline do to one image.  Run: cfx docs/augment_grid.lua [OUT.png]
-- (default: docs/img/augment_grid.png; tests/app/test_docs.py draws it elsewhere and
-- compares it with the committed image).
local cfx = require 'cfx'
local A, image = cfx.augment, cfx.image

-- A procedural 320x256 scene (no dataset needed): sky gradient, sun, hills, a
-- checkerboard wall, so that geometry, blur and compression are easy to see.
local H, W = 256, 320
local y = cfx.arange(H, { dtype = 'float32' }):view(H, 1):expand(H, W)
local x = cfx.arange(W, { dtype = 'float32' }):view(1, W):expand(H, W)
local r, g, b = y / H * -90 + 140, y / H * -60 + 180, y / H * 40 + 215
local function paint(mask, cr, cg, cb)
  r, g, b = cfx.where(mask, cr, r), cfx.where(mask, cg, g), cfx.where(mask, cb, b)
end
paint(((x - 240) ^ 2 + (y - 60) ^ 2):lt(30 ^ 2), 255, 220, 80)
paint(y:gt((x / 40):sin() * 25 + 170), 70, 140, 60)
local cells = (x / 16):floor() + (y / 16):floor()
local odd = (cells - (cells / 2):floor() * 2):eq(1)
local wall = x:gt(30):logical_and(x:lt(150)):logical_and(y:gt(70)):logical_and(y:lt(190))
paint(wall:logical_and(odd), 200, 40, 40)
paint(wall:logical_and(odd:logical_not()), 245, 245, 235)
local scene = cfx.stack({ r, g, b }, 3):round():clamp(0, 255):byte()

-- Tiles of T x T with a 4-pixel white border, in rows.
local T = 160
local function tile(img)
  local t = image.resize(img, { T, T }, { filter = 'bilinear' })
  return cfx.F.pad(t:permute(3, 1, 2):float(), { 4, 4, 4, 4 }, { value = 255 }):byte():permute(2, 3, 1)
end
local function row(list)
  local tiles = {}
  for i, img in ipairs(list) do tiles[i] = tile(img) end
  return cfx.cat(tiles, 2)
end

local seed = 7
local rows = {
  -- single ops, one per tile
  row {
    scene,
    A.jpeg(scene, 20),
    A.hflip(scene),
    A.vflip(scene),
    A.center_crop(scene, 200),
    A.affine(scene, { angle = 15 }),
    A.affine(scene, { translate = { 32, 0 } }),
  },
  row {
    A.affine(scene, { shear = { 15, 0 } }),
    A.pad(scene, { 16, 16, 16, 16 }, { fill = { 128, 128, 128 }, resize_back = true }),
    A.cutout(scene, 100, 60, 60, 60),
    A.gaussian_blur(scene, 3),
    image.resize(image.resize(scene, { 64, 51 }), { W, H }),
    A.perturb { kind = 'pad', level = 0.3 }:apply(scene, seed),
    A.perturb { kind = 'resize', level = 0.5 }:apply(scene, seed),
  },
}
-- RandAugment samples: the paper's pipeline, 7 seeds
local ra = A.randaugment { crop = 224 }
local samples = {}
for i = 1, 7 do samples[i] = ra:apply(scene, { seed = seed, index = i }) end
rows[#rows + 1] = row(samples)

local grid = cfx.cat(rows, 1)
local path = arg and arg[1]
if not path then
  local root = arg and arg[0] and arg[0]:match('^(.*)/docs/augment_grid%.lua$') or '.'
  cfx.fs.mkdirs(root .. '/docs/img')
  path = root .. '/docs/img/augment_grid.png'
end
image.save(path, grid)
print(('wrote %s (%dx%d)'):format(path, grid:size(2), grid:size(1)))
