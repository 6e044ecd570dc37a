-- image.lua: cfx.image, reading, decoding, encoding, resizing and saving images.
-- An image is a uint8 tensor {H, W, 3} (RGB, HWC), as decoded; see cfx/image.h for
-- the colour rules (PIL's convert("RGB")) and docs/augmentations.md for examples.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

local out = ffi.new('cfx_tensor*[1]')
local dims = ffi.new('int64_t[3]')
local bytes_out = ffi.new('uint8_t*[1]')
local len_out = ffi.new('int64_t[1]')

M.filters = { nearest = 0, box = 1, bilinear = 2, hamming = 3, bicubic = 4, lanczos = 5 }
M.subsampling = { ['444'] = 0, ['422'] = 1, ['420'] = 2, gray = 3, ['440'] = 4, ['411'] = 5 }
local subsampling_names = {}
for k, v in pairs(M.subsampling) do subsampling_names[v] = k end
M.formats = { [0] = 'unknown', 'jpeg', 'png', 'gif', 'webp', 'bmp', 'tiff' }

-- A decoded cfx_image becomes a tensor over the same memory (no copy), counted in
-- cfx.memory() so that the collector sees it; freed when the tensor's storage dies.
local function image_to_tensor(img)
  dims[0], dims[1], dims[2] = img.height, img.width, 3
  local data = img.data
  img.data = nil -- the tensor owns it now (freed by from_malloc even on failure)
  check(C.cfx_tensor_from_malloc(data, dims, 3, C.CFX_UINT8, out))
  return tensor.wrap(out[0])
end
M.image_to_tensor = image_to_tensor

-- A cfx_image view of a uint8 {H, W, 3} CPU tensor (contiguous copy if needed).  The
-- returned tensor must stay referenced while the view is used.
local function tensor_to_image(t, what)
  if not tensor.is_tensor(t) then
    raise(('%s: expected a uint8 tensor {H, W, 3}, got %s'):format(what, type(t)))
  end
  local shp = t:shape()
  if t:dtype() ~= 'uint8' or #shp ~= 3 or shp[3] ~= 3 then
    raise(('%s: expected a uint8 tensor {H, W, 3}, got %s [%s]'):format(what, t:dtype(),
      table.concat(shp, ', ')))
  end
  if t:device() ~= 'cpu' then t = t:cpu() end
  if not t:is_contiguous() then t = t:contiguous() end
  local img = ffi.new('cfx_image')
  img.data = t:data_ptr()
  img.height, img.width, img.channels = shp[1], shp[2], 3
  return img, t
end
M.tensor_to_image = tensor_to_image

local function as_bytes(s, what)
  if type(s) ~= 'string' then raise(('%s: expected the encoded bytes as a string, got %s'):format(what, type(s))) end
  return ffi.cast('const uint8_t *', s), #s
end

-- cfx.image.probe(bytes) -> {format=, width=, height=, components=, bit_depth=,
--   subsampling=, progressive=, orientation=, quality=, has_alpha=, palette=, cmyk=}
function M.probe(s)
  local p, n = as_bytes(s, 'probe')
  local info = ffi.new('cfx_image_info')
  check(C.cfx_image_probe(p, n, info), 'probe')
  return {
    format = M.formats[info.format], width = info.width, height = info.height,
    components = info.components, bit_depth = info.bit_depth,
    subsampling = subsampling_names[info.subsampling], progressive = info.progressive ~= 0,
    orientation = info.orientation, quality = info.quality >= 0 and info.quality or nil,
    has_alpha = info.has_alpha ~= 0, palette = info.palette ~= 0, cmyk = info.cmyk ~= 0,
  }
end

local decode_defaults = { max_pixels = 0, min_size = false, orientation = false, background = false }

local function decode_opts(opts, fname)
  local o = core.options(opts, decode_defaults, fname)
  local d = ffi.new('cfx_decode_opts')
  d.max_pixels = o.max_pixels
  if o.min_size then
    local ms = type(o.min_size) == 'number' and { o.min_size, o.min_size } or o.min_size
    d.min_width, d.min_height = ms[1], ms[2]
  end
  d.apply_orientation = o.orientation and 1 or 0
  d.background = o.background and o.background or -1
  return d
end

-- cfx.image.decode(bytes [, {max_pixels=, min_size=n|{w, h}, orientation=false, background=0xRRGGBB}])
-- min_size: decode a JPEG at the smallest DCT scale (1/8, 1/4, 1/2) that keeps the
-- image at least that large (for a caller that resizes anyway).  orientation=true
-- applies the EXIF orientation.  background composites alpha instead of dropping it.
function M.decode(s, opts)
  local p, n = as_bytes(s, 'decode')
  local img = ffi.new('cfx_image')
  check(C.cfx_image_decode(p, n, decode_opts(opts, 'decode'), img), 'decode')
  return image_to_tensor(img)
end

local function read_file(path, what)
  if type(path) ~= 'string' then raise(('%s: expected a path, got %s'):format(what, type(path))) end
  local f, msg = io.open(path, 'rb')
  if not f then raise(('%s: cannot open %s'):format(what, msg)) end
  local s = f:read('*a')
  f:close()
  return s
end

-- cfx.image.read(path [, opts]) -> uint8 tensor {H, W, 3}; opts as decode.
function M.read(path, opts)
  local s = read_file(path, 'cfx.image.read')
  local p, n = ffi.cast('const uint8_t *', s), #s
  local img = ffi.new('cfx_image')
  check(C.cfx_image_decode(p, n, decode_opts(opts, 'cfx.image.read'), img), 'cfx.image.read: ' .. path)
  return image_to_tensor(img)
end

local function take_bytes()
  local s = ffi.string(bytes_out[0], len_out[0])
  C.cfx_free(bytes_out[0])
  return s
end

-- cfx.image.encode_jpeg(t [, quality=75 [, {subsampling='420'}]]) -> string
function M.encode_jpeg(t, quality, opts)
  local o = core.options(opts, { subsampling = '420' }, 'encode_jpeg')
  local ss = M.subsampling[tostring(o.subsampling)]
  if not ss then
    raise(("encode_jpeg: subsampling must be '444', '422', '420', '440', '411' or 'gray', got %s")
      :format(tostring(o.subsampling)))
  end
  local img, keep = tensor_to_image(t, 'encode_jpeg')
  check(C.cfx_image_encode_jpeg(img, quality or 75, ss, bytes_out, len_out), 'encode_jpeg')
  local _ = keep
  return take_bytes()
end

-- cfx.image.encode_png(t [, level=-1]) -> string
function M.encode_png(t, level)
  local img, keep = tensor_to_image(t, 'encode_png')
  check(C.cfx_image_encode_png(img, level or -1, bytes_out, len_out), 'encode_png')
  local _ = keep
  return take_bytes()
end

-- cfx.image.save(path, t [, {quality=95, subsampling=}]): PNG or JPEG by extension.
function M.save(path, t, opts)
  local ext = type(path) == 'string' and path:lower():match('%.(%w+)$')
  local s
  if ext == 'png' then
    core.options(opts, {}, 'cfx.image.save')
    s = M.encode_png(t)
  elseif ext == 'jpg' or ext == 'jpeg' then
    local o = core.options(opts, { quality = 95, subsampling = '420' }, 'cfx.image.save')
    s = M.encode_jpeg(t, o.quality, { subsampling = o.subsampling })
  else
    raise(('cfx.image.save: %s: expected a .png, .jpg or .jpeg file name'):format(tostring(path)))
  end
  local tmp = path .. '.tmp'
  local f, msg = io.open(tmp, 'wb')
  if not f then raise('cfx.image.save: cannot write ' .. msg) end
  f:write(s)
  f:close()
  local ok, rmsg = os.rename(tmp, path)
  if not ok then raise('cfx.image.save: cannot rename into place: ' .. tostring(rmsg)) end
end

local function filter_code(name)
  local code = M.filters[name or 'bicubic']
  if not code then
    raise(('resize: unknown filter %s (expected nearest, box, bilinear, hamming, bicubic or lanczos)')
      :format(tostring(name)))
  end
  return code
end

-- cfx.image.resize(t, {width, height} [, {filter='bicubic', box={x0, y0, x1, y1}}])
-- As PIL's Image.resize (the same result, pixel for pixel); PIL's default filter.
function M.resize(t, size, opts)
  local o = core.options(opts, { filter = 'bicubic', ['?box'] = true }, 'resize')
  if type(size) ~= 'table' or type(size[1]) ~= 'number' or type(size[2]) ~= 'number' then
    raise('resize: size must be {width, height}')
  end
  local img, keep = tensor_to_image(t, 'resize')
  local box
  if o.box then box = ffi.new('double[4]', o.box) end
  local res = ffi.new('cfx_image')
  check(C.cfx_image_resize(img, size[1], size[2], filter_code(o.filter), box, res), 'resize')
  local _ = keep
  return image_to_tensor(res)
end

-- cfx.image.resize_shorter(t, n [, opts]): the shorter side becomes n, the aspect
-- ratio is kept (torchvision's Resize(n)).
function M.resize_shorter(t, n, opts)
  local shp = t:shape()
  local h, w = shp[1], shp[2]
  local nw, nh
  if w <= h then nw, nh = n, math.floor(n * h / w) else nw, nh = math.floor(n * w / h), n end
  return M.resize(t, { nw, nh }, opts)
end

return M
