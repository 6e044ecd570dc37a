-- image_spec.lua: cfx.image from Lua: argument handling, the bad-input suite seen
-- from Lua (clean errors, never a crash), read/save and sniffing.  Pixel agreement
-- with PIL is in tests/reference/test_image.py; the byte-level bad-input suite under
-- ASan is tests/c/test_image.c.
local cfx = require 'cfx'
local bit = require 'bit'
local image = cfx.image

-- ---- helpers ---------------------------------------------------------------------------
local function picture(h, w, seed)
  cfx.manual_seed(seed or 1)
  return cfx.randint(0, 256, { h, w, 3 }, { dtype = 'uint8' })
end

-- A smooth picture (JPEG-friendly): a gradient built from arange.
local function gradient(h, w)
  local y = cfx.arange(h):float():view({ h, 1, 1 }):expand({ h, w, 3 })
  local x = cfx.arange(w):float():view({ 1, w, 1 }):expand({ h, w, 3 })
  return ((x * (200 / w) + y * (50 / h)):floor()):to('uint8'):contiguous()
end

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then c = bit.bxor(0xEDB88320, bit.rshift(c, 1)) else c = bit.rshift(c, 1) end
  end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8)) end
  return bit.bxor(c, 0xFFFFFFFF)
end
local function be32(n)
  return string.char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
    bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end

-- Flip bits of byte i (1-based).
local function flip_byte(s, i, mask)
  return s:sub(1, i - 1) .. string.char(bit.bxor(s:byte(i), mask or 0x01)) .. s:sub(i + 1)
end

local function decode_error(s, opts)
  local ok, err = pcall(image.decode, s, opts)
  assert.is_false(ok, 'decode succeeded')
  assert.is_string(err)
  return err
end

local tmpdir = os.tmpname()
os.remove(tmpdir)
os.execute('mkdir -p ' .. tmpdir)

-- ---- round trips ------------------------------------------------------------------------
describe('cfx.image encode/decode', function()
  it('PNG is lossless and decode gives a uint8 {H, W, 3} tensor', function()
    local t = picture(23, 37)
    local s = image.encode_png(t)
    assert.equal('\137PNG', s:sub(1, 4))
    local d = image.decode(s)
    assert.same({ 23, 37, 3 }, d:shape())
    assert.equal('uint8', d:dtype())
    assert.is_true(d:is_contiguous())
    assert.is_true(d:equal(t))
    assert.is_true(image.decode(image.encode_png(t, 0)):equal(t))
    assert.is_true(image.decode(image.encode_png(t, 9)):equal(t))
  end)
  it('JPEG round trip is close and probe reports what was asked', function()
    local t = gradient(48, 64)
    for _, ss in ipairs { '444', '422', '420', '440', '411', 'gray' } do
      local s = image.encode_jpeg(t, 90, { subsampling = ss })
      local info = image.probe(s)
      assert.equal('jpeg', info.format)
      assert.equal(64, info.width)
      assert.equal(48, info.height)
      assert.equal(ss, info.subsampling)
      assert.equal(90, info.quality)
      assert.equal(ss == 'gray' and 1 or 3, info.components)
      assert.is_false(info.progressive)
      local d = image.decode(s)
      assert.same({ 48, 64, 3 }, d:shape())
      if ss ~= 'gray' then
        local err = (d:float() - t:float()):abs():mean():item()
        assert.is_true(err < 3, ('%s: mean error %g'):format(ss, err))
      end
    end
  end)
  it('decodes many images without leaking or crashing (memory freed with the tensor)', function()
    local s = image.encode_jpeg(gradient(64, 64), 80)
    for _ = 1, 200 do
      local d = image.decode(s)
      assert.equal(64, d:shape()[1])
    end
    collectgarbage()
    collectgarbage()
  end)
  it('decoded pixels count in cfx.memory(), which drives the collector pressure', function()
    local s = image.encode_jpeg(gradient(256, 256), 80)
    local before = cfx.memory().live
    local d = image.decode(s)
    local grown = cfx.memory().live - before
    assert.is_true(grown >= 256 * 256 * 3, ('live bytes grew by %d'):format(grown))
    d:free()
    assert.equal(before, cfx.memory().live)
  end)
  it('scaled decode picks the smallest DCT scale that keeps min_size', function()
    local s = image.encode_jpeg(gradient(384, 512), 90)
    assert.same({ 384, 512, 3 }, image.decode(s):shape())
    assert.same({ 192, 256, 3 }, image.decode(s, { min_size = 190 }):shape())
    assert.same({ 384, 512, 3 }, image.decode(s, { min_size = 224 }):shape())
    assert.same({ 192, 256, 3 }, image.decode(s, { min_size = { 224, 150 } }):shape())
    assert.same({ 48, 64, 3 }, image.decode(s, { min_size = 1 }):shape())
    -- PNG has no scaled decode: full size
    assert.same({ 20, 30, 3 }, image.decode(image.encode_png(picture(20, 30)), { min_size = 2 }):shape())
  end)
  it('checks its arguments', function()
    local t = picture(8, 8)
    assert.matches('expected the encoded bytes as a string', select(2, pcall(image.decode, 42)))
    assert.matches("unknown option 'min'", select(2, pcall(image.decode, 'xx', { min = 3 })))
    assert.matches("subsampling must be '444'", select(2, pcall(image.encode_jpeg, t, 90, { subsampling = '421' })))
    assert.matches('quality must be 1..100, got 0', select(2, pcall(image.encode_jpeg, t, 0)))
    assert.matches('quality must be 1..100, got 101', select(2, pcall(image.encode_jpeg, t, 101)))
    assert.matches('level must be %-1..9', select(2, pcall(image.encode_png, t, 12)))
    assert.matches('expected a uint8 tensor {H, W, 3}, got float32', select(2, pcall(image.encode_png, cfx.zeros(4, 4, 3))))
    assert.matches('expected a uint8 tensor {H, W, 3}, got uint8 %[4, 4%]',
      select(2, pcall(image.encode_png, cfx.zeros({ 4, 4 }, { dtype = 'uint8' }))))
    assert.matches('expected a uint8 tensor', select(2, pcall(image.encode_png, 'not a tensor')))
  end)
  it('errors carry the caller\'s file and line', function()
    local ok, err = pcall(image.decode, '')
    assert.is_false(ok)
    assert.matches('image_spec.lua:%d+: decode: empty input', err)
  end)
end)

describe('cfx.image.resize', function()
  it('keeps the size for every filter and checks arguments', function()
    local t = picture(7, 9)
    for name in pairs(image.filters) do
      assert.is_true(image.resize(t, { 9, 7 }, { filter = name }):equal(t), name)
    end
    assert.same({ 30, 20, 3 }, image.resize(t, { 20, 30 }):shape())
    assert.same({ 4, 4, 3 }, image.resize(t, { 4, 4 }, { box = { 1, 1, 5, 5 } }):shape())
    assert.matches('size must be {width, height}', select(2, pcall(image.resize, t, 4)))
    assert.matches('unknown filter cubic', select(2, pcall(image.resize, t, { 4, 4 }, { filter = 'cubic' })))
    assert.matches('is not inside the 9x7 image', select(2, pcall(image.resize, t, { 4, 4 }, { box = { 0, 0, 10, 7 } })))
    assert.matches('must be positive', select(2, pcall(image.resize, t, { 0, 4 })))
  end)
  it('resize_shorter keeps the aspect ratio (torchvision Resize(n))', function()
    assert.same({ 256, 341, 3 }, image.resize_shorter(picture(375, 500), 256):shape())
    assert.same({ 341, 256, 3 }, image.resize_shorter(picture(500, 375), 256):shape())
    assert.same({ 64, 64, 3 }, image.resize_shorter(picture(30, 30), 64):shape())
  end)
end)

-- ---- read / save ------------------------------------------------------------------------
describe('cfx.image.read and save', function()
  teardown(function() os.remove(tmpdir) end)
  it('a JPEG named .png is read by its bytes (sniffing), not its name', function()
    local t = gradient(32, 40)
    local s = image.encode_jpeg(t, 95)
    local path = tmpdir .. '/really_a_jpeg.png'
    local f = assert(io.open(path, 'wb'))
    f:write(s)
    f:close()
    local d = image.read(path)
    assert.is_true(d:equal(image.decode(s)))
    assert.equal('jpeg', image.probe(s).format)
    os.remove(path)
  end)
  it('saves PNG and JPEG by extension and reads them back', function()
    local t = picture(16, 24)
    image.save(tmpdir .. '/a.png', t)
    assert.is_true(image.read(tmpdir .. '/a.png'):equal(t))
    image.save(tmpdir .. '/a.jpg', gradient(16, 24), { quality = 90 })
    assert.same({ 16, 24, 3 }, image.read(tmpdir .. '/a.jpg'):shape())
    assert.equal(90, image.probe(io.open(tmpdir .. '/a.jpg', 'rb'):read('*a')).quality)
    assert.matches('expected a .png, .jpg or .jpeg file name', select(2, pcall(image.save, tmpdir .. '/a.gif', t)))
    assert.matches("unknown option 'quality'", select(2, pcall(image.save, tmpdir .. '/b.png', t, { quality = 3 })))
    os.remove(tmpdir .. '/a.png')
    os.remove(tmpdir .. '/a.jpg')
  end)
  it('read names the file in its errors', function()
    local ok, err = pcall(image.read, tmpdir .. '/missing.png')
    assert.is_false(ok)
    assert.matches('cannot open', err)
    local path = tmpdir .. '/garbage.jpg'
    local f = assert(io.open(path, 'wb'))
    f:write('this is not an image at all')
    f:close()
    ok, err = pcall(image.read, path)
    assert.is_false(ok)
    assert.matches('garbage.jpg', err, 1, true)
    assert.matches('neither JPEG nor PNG', err)
    os.remove(path)
  end)
end)

-- ---- bad input -----------------------------------------------------------------------------
describe('cfx.image bad input', function()
  local jpg = image.encode_jpeg(gradient(40, 48), 85)
  local png = image.encode_png(picture(12, 20))

  it('empty and random bytes', function()
    assert.matches('empty input', decode_error(''))
    assert.matches('empty input', select(2, pcall(image.probe, '')))
    math.randomseed(7)
    for trial = 1, 200 do
      local n = math.random(1, 600)
      local b = {}
      for i = 1, n do b[i] = string.char(math.random(0, 255)) end
      local s = table.concat(b)
      if trial % 3 == 1 then s = '\255\216\255' .. s end
      if trial % 3 == 2 then s = '\137PNG\r\n\26\n' .. s end
      local ok, res = pcall(image.decode, s)
      if ok then
        error('random bytes decoded to an image ' .. table.concat(res:shape(), 'x'))
      end
      assert.matches('decode: ', res)
    end
  end)

  it('truncated JPEG and PNG at every cut point', function()
    for _, file in ipairs { jpg, png } do
      local boundary = {}
      if file == jpg then -- cuts at segment boundaries before the SOF: known bug, below
        local pos = 3
        while file:byte(pos) == 0xFF and file:byte(pos + 1) ~= 0xC0 do
          for k = 0, 3 do boundary[pos - 1 + k] = true end
          pos = pos + 2 + file:byte(pos + 2) * 256 + file:byte(pos + 3)
        end
        for k = 0, 3 do boundary[pos - 1 + k] = true end
      end
      local last = file == png and #file - 12 or #file -- PNG: all pixels precede IEND
      for cut = 0, last - 1 do
        local ok, err = pcall(image.decode, file:sub(1, cut))
        assert.is_false(ok, ('cut at %d of %d decoded'):format(cut, #file))
        if not boundary[cut] and cut > 3 then
          assert.matches(file == jpg and 'JPEG' or 'PNG', err)
        end
      end
    end
  end)

  it('a JPEG without a frame (SOI, EOI) is a format error', function()
    local s = '\255\216\255\217'
    assert.matches('JPEG', decode_error(s))
    assert.is_false(pcall(image.probe, s))
    assert.is_false(pcall(image.probe, jpg:sub(1, 20))) -- SOI + APP0, nothing more
  end)

  it('bad CRCs in IHDR and IDAT', function()
    assert.matches('PNG', decode_error(flip_byte(png, 30)))      -- IHDR's CRC (bytes 30..33)
    local idat = png:find('IDAT', 1, true)
    local len = png:byte(idat - 4) * 2 ^ 24 + png:byte(idat - 3) * 2 ^ 16 + png:byte(idat - 2) * 256 + png:byte(idat - 1)
    assert.matches('PNG', decode_error(flip_byte(png, idat + 4 + len, 0x80))) -- IDAT's CRC
  end)

  it('headers claiming 100000 x 100000 pixels are refused before allocating', function()
    -- PNG: rewrite IHDR's width and height and fix its CRC
    local ihdr = png:sub(13, 16) .. be32(100000) .. be32(100000) .. png:sub(25, 29)
    local huge = png:sub(1, 12) .. ihdr .. be32(crc32(ihdr)) .. png:sub(34)
    local info = image.probe(huge)
    assert.equal(100000, info.width)
    assert.equal(100000, info.height)
    local err = decode_error(huge)
    assert.matches('100000x100000', err)
    assert.matches('exceeds the cap', err)
    -- JPEG: a SOF holds 16-bit sizes; 65500 x 65500 (libjpeg's maximum) is over the cap
    local sof = jpg:find('\255\192', 3, true)
    local big = jpg:sub(1, sof + 4) .. '\255\220\255\220' .. jpg:sub(sof + 9)
    assert.equal(65500, image.probe(big).width)
    assert.matches('65500x65500 pixels exceeds the cap', decode_error(big))
    assert.matches('65500x65500', decode_error(big, { min_size = 16 }))
    -- and 65535 is refused by libjpeg itself, cleanly
    local bigger = jpg:sub(1, sof + 4) .. '\255\255\255\255' .. jpg:sub(sof + 9)
    assert.matches('65500', decode_error(bigger))
    -- a caller's cap
    assert.matches('exceeds the cap of 100 pixels', decode_error(png, { max_pixels = 100 }))
    assert.same({ 12, 20, 3 }, image.decode(png, { max_pixels = 240 }):shape())
  end)

  it('GIF, WEBP, BMP and TIFF are named and refused', function()
    for _, c in ipairs {
      { 'GIF89a\1\0\1\0\128\0\0', 'gif' }, { 'RIFF\36\0\0\0WEBPVP8 ', 'webp' },
      { 'BM6\0\0\0\0\0\0\0006\0\0\0', 'bmp' }, { 'II*\0\8\0\0\0', 'tiff' },
    } do
      local err = decode_error(c[1])
      assert.matches(c[2] .. ' images are not supported', err)
      assert.matches(c[2] .. ' images are not supported', select(2, pcall(image.probe, c[1])))
    end
  end)
end)
