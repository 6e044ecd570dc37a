-- data.lua: cfx.data, packed image stores (core/src/store.c): writing, opening,
-- reading images, describing the contents.  Image indices and generator ids are
-- 1-based here (rows of the file's 0-based arrays).  See docs/data.md.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local image = require 'cfx.image'
local ffi, C, raise = core.ffi, core.C, core.raise

local M = {}

local function err(prefix) raise((prefix or '') .. ffi.string(C.cfx_last_error())) end

M.formats = image.formats
local format_codes = {}
for code, name in pairs(image.formats) do format_codes[name] = code end

-- ---- writing ---------------------------------------------------------------------------
local Writer = {}
Writer.__index = Writer

-- cfx.data.writer(path) -> w.  w:generator(name, architecture, subset) -> id;
-- w:add{bytes=, label=0|1, generator=id, width=, height=, format='jpeg'|'png'|..., name=,
-- flags=}; w:attr(key, value); w:finish().  Nothing appears at path before finish().
function M.writer(path)
  if type(path) ~= 'string' then raise('cfx.data.writer: expected a path') end
  local box = ffi.new('cfx_store_writer*[1]')
  if C.cfx_store_writer_open(path, box) ~= 0 then err('cfx.data.writer: ') end
  return setmetatable({ handle = ffi.gc(box[0], C.cfx_store_writer_free), path = path }, Writer)
end

local idbuf = ffi.new('int32_t[1]')
function Writer:generator(name, architecture, subset)
  if C.cfx_store_writer_add_generator(self.handle, name, architecture or '', subset or '', idbuf) ~= 0 then err() end
  return idbuf[0] + 1
end

local add_defaults = { bytes = false, label = false, generator = false, width = 0, height = 0, format = false,
  flags = 0, name = false, probe = true }

-- w:add{bytes=, label=, generator=, [width=, height=, format=,] name=, flags=}.  Without
-- width/height/format they are probed from the bytes (probe=false to skip).
function Writer:add(o)
  o = tensor.options(o, add_defaults, 'add')
  if type(o.bytes) ~= 'string' then raise('add: bytes must be the encoded image as a string') end
  if o.label ~= 0 and o.label ~= 1 then raise(('add: label must be 0 (real) or 1 (generated), got %s'):format(tostring(o.label))) end
  if type(o.generator) ~= 'number' then raise('add: generator must be an id from w:generator()') end
  local w, h, fmt = o.width, o.height, o.format and format_codes[o.format] or nil
  if o.format and not fmt then raise(('add: unknown format %s'):format(tostring(o.format))) end
  if o.probe and (not fmt or w == 0 or h == 0) then
    local ok, info = pcall(image.probe, o.bytes)
    if ok then
      w, h, fmt = info.width, info.height, format_codes[info.format]
    else
      fmt = fmt or C.cfx_image_sniff(ffi.cast('const uint8_t *', o.bytes), #o.bytes)
    end
  end
  if C.cfx_store_writer_add(self.handle, ffi.cast('const uint8_t *', o.bytes), #o.bytes, o.label,
      o.generator - 1, w, h, fmt or 0, o.flags, o.name or nil) ~= 0 then
    err()
  end
end

function Writer:attr(key, value)
  if C.cfx_store_writer_set_attr(self.handle, key, tostring(value)) ~= 0 then err() end
end
function Writer:count() return tonumber(C.cfx_store_writer_count(self.handle)) end

-- Write the store and rename it into place.
function Writer:finish()
  local rc = C.cfx_store_writer_finish(self.handle)
  local msg = rc ~= 0 and ffi.string(C.cfx_last_error()) or nil
  C.cfx_store_writer_free(ffi.gc(self.handle, nil))
  self.handle = nil
  if msg then raise('finish: ' .. msg) end
  return self.path
end

-- ---- reading ---------------------------------------------------------------------------
local Store = {}
Store.__index = Store
M.Store = Store

-- cfx.data.open(path) -> store.
function M.open(path)
  if type(path) ~= 'string' then raise('cfx.data.open: expected a path, got ' .. type(path)) end
  local box = ffi.new('cfx_store*[1]')
  if C.cfx_store_open(path, box) ~= 0 then err('cfx.data.open: ') end
  local h = ffi.gc(box[0], C.cfx_store_close)
  local s = setmetatable({ handle = h, path = path, n = tonumber(C.cfx_store_count(h)),
    num_generators = C.cfx_store_num_generators(h) }, Store)
  s.labels_ptr, s.gens_ptr = C.cfx_store_labels(h), C.cfx_store_generators(h)
  s.offsets_ptr = C.cfx_store_offsets(h)
  return s
end

function Store:count() return self.n end

local function check_index(self, i)
  if type(i) ~= 'number' or i % 1 ~= 0 or i < 1 or i > self.n then
    raise(('%s: image index %s out of range 1..%d'):format(self.path, tostring(i), self.n))
  end
end

local nbuf = ffi.new('int64_t[1]')
-- s:bytes(i) -> the encoded image i as a string
function Store:bytes(i)
  check_index(self, i)
  local len = tonumber(self.offsets_ptr[i] - self.offsets_ptr[i - 1])
  local buf = ffi.new('uint8_t[?]', math.max(len, 1))
  if C.cfx_store_read(self.handle, i - 1, buf, len, nbuf) ~= 0 then err() end
  return ffi.string(buf, len)
end

-- s:image(i [, decode opts]) -> uint8 {H, W, 3}
function Store:image(i, opts)
  local ok, t = pcall(image.decode, self:bytes(i), opts)
  if not ok then raise(('%s: image %d (%s): %s'):format(self.path, i, self:name(i), tostring(t))) end
  return t
end

function Store:label(i) check_index(self, i) return self.labels_ptr[i - 1] end
function Store:generator_id(i) check_index(self, i) return self.gens_ptr[i - 1] + 1 end
function Store:name(i) check_index(self, i) return ffi.string(C.cfx_store_name(self.handle, i - 1)) end
function Store:size_of(i) check_index(self, i) return tonumber(self.offsets_ptr[i] - self.offsets_ptr[i - 1]) end
-- {width=, height=, format=, flags=, label=, generator=, name=} of image i
function Store:meta(i)
  check_index(self, i)
  local h = self.handle
  return { width = C.cfx_store_widths(h)[i - 1], height = C.cfx_store_heights(h)[i - 1],
    format = image.formats[C.cfx_store_formats(h)[i - 1]], flags = C.cfx_store_flags(h)[i - 1],
    label = self.labels_ptr[i - 1], generator = self.gens_ptr[i - 1] + 1, name = self:name(i) }
end

-- s:generator(g) -> {id=, name=, architecture=, subset=}
function Store:generator(g)
  if type(g) ~= 'number' or g < 1 or g > self.num_generators then
    raise(('%s: generator id %s out of range 1..%d'):format(self.path, tostring(g), self.num_generators))
  end
  local h = self.handle
  return { id = g, name = ffi.string(C.cfx_store_generator_name(h, g - 1)),
    architecture = ffi.string(C.cfx_store_generator_architecture(h, g - 1)),
    subset = ffi.string(C.cfx_store_generator_subset(h, g - 1)) }
end
function Store:generators()
  local r = {}
  for g = 1, self.num_generators do r[g] = self:generator(g) end
  return r
end

function Store:attr(key)
  local v = C.cfx_store_attr(self.handle, key)
  return v ~= nil and ffi.string(v) or nil
end

-- Index columns as tensors (copies): labels uint8 {n}, generator ids int64 {n} (1-based).
function Store:labels()
  return tensor.from_buffer(self.labels_ptr, { self.n }, 'uint8')
end
function Store:generator_ids()
  return tensor.from_buffer(self.gens_ptr, { self.n }, 'int32'):long() + 1
end

-- Counts per class, generator, architecture and subset.
function Store:info()
  local by_gen, by_arch, by_subset = {}, {}, {}
  local real, fake, bytes = 0, 0, tonumber(self.offsets_ptr[self.n])
  local gens = self:generators()
  for i = 0, self.n - 1 do
    local g = gens[self.gens_ptr[i] + 1]
    local lab = self.labels_ptr[i]
    if lab == 1 then fake = fake + 1 else real = real + 1 end
    local e = by_gen[g.name] or { real = 0, fake = 0, architecture = g.architecture, subset = g.subset }
    by_gen[g.name] = e
    local key = lab == 1 and 'fake' or 'real'
    e[key] = e[key] + 1
    local a = by_arch[g.architecture] or { real = 0, fake = 0 }
    by_arch[g.architecture] = a
    a[key] = a[key] + 1
    local s = by_subset[g.subset] or { real = 0, fake = 0 }
    by_subset[g.subset] = s
    s[key] = s[key] + 1
  end
  return { path = self.path, images = self.n, real = real, fake = fake, bytes = bytes,
    generators = by_gen, architectures = by_arch, subsets = by_subset, num_generators = self.num_generators }
end

function Store:__tostring()
  return ('cfx.data store %s: %d images, %d generators'):format(self.path, self.n, self.num_generators)
end

function Store:close()
  if self.handle ~= nil then
    C.cfx_store_close(ffi.gc(self.handle, nil))
    self.handle = nil
  end
end

return M
