-- data.lua: cfx.data, packed image stores (core/src/store.c): writing, opening,
-- reading images, describing the contents.  Image indices and generator ids are
-- 1-based here (rows of the file's 0-based arrays).  See docs/data.md.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local image = require 'cfx.image'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

M.formats = image.formats
local format_codes = {}
for code, name in pairs(image.formats) do format_codes[name] = code end

-- ---- writing ---------------------------------------------------------------------------
local Writer = {}
Writer.__index = Writer

-- cfx.data.writer(path) -> w.  w:generator(name, architecture, subset [, source]) -> id;
-- w:add{bytes=, label=0|1, generator=id, group=id, width=, height=, format='jpeg'|'png'|...,
-- name=, flags=}; w:attr(key, value); w:finish().  Nothing appears at path before finish().
-- group: a real's evaluation group, the generator id whose fakes it is scored against
-- (default none: such reals are dealt out or pooled at evaluation, as the store's
-- `pairing` attribute says); a fake's group is always its own generator.
-- source: the real dataset the generator's content or prompts came from ('LAION', 'COCO',
-- ...; nil or '' unknown); a name registered again returns its id when the fields agree
-- (an unknown source agrees with any), else an error naming both.
function M.writer(path)
  if type(path) ~= 'string' then raise('cfx.data.writer: expected a path') end
  local box = ffi.new('cfx_store_writer*[1]')
  check(C.cfx_store_writer_open(path, box), 'cfx.data.writer')
  return setmetatable({ handle = ffi.gc(box[0], C.cfx_store_writer_free), path = path }, Writer)
end

local idbuf = ffi.new('int32_t[1]')
function Writer:generator(name, architecture, subset, source)
  if source ~= nil and type(source) ~= 'string' then
    raise(('generator: source must be a string or nil, got %s'):format(type(source)))
  end
  check(C.cfx_store_writer_add_generator(self.handle, name, architecture or '', subset or '', idbuf))
  local id = idbuf[0]
  if source and source ~= '' then check(C.cfx_store_writer_set_generator_source(self.handle, id, source)) end
  return id + 1
end

local add_defaults = { bytes = false, label = false, generator = false, group = false, width = 0, height = 0,
  format = false, flags = 0, name = false, probe = true }

-- w:add{bytes=, label=, generator=, [group=, width=, height=, format=,] name=, flags=}.  Without
-- width/height/format they are probed from the bytes (probe=false to skip).
function Writer:add(o)
  o = core.options(o, add_defaults, 'add')
  if type(o.bytes) ~= 'string' then raise('add: bytes must be the encoded image as a string') end
  if o.label ~= 0 and o.label ~= 1 then raise(('add: label must be 0 (real) or 1 (generated), got %s'):format(tostring(o.label))) end
  if type(o.generator) ~= 'number' then raise('add: generator must be an id from w:generator()') end
  if o.group and type(o.group) ~= 'number' then raise('add: group must be a generator id from w:generator() or false') end
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
  check(C.cfx_store_writer_add(self.handle, ffi.cast('const uint8_t *', o.bytes), #o.bytes, o.label,
    o.generator - 1, o.group and o.group - 1 or -1, w, h, fmt or 0, o.flags, o.name or nil))
end

function Writer:attr(key, value)
  check(C.cfx_store_writer_set_attr(self.handle, key, tostring(value)))
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
  check(C.cfx_store_open(path, box), 'cfx.data.open')
  local h = ffi.gc(box[0], C.cfx_store_close)
  local s = setmetatable({ handle = h, path = path, n = tonumber(C.cfx_store_count(h)),
    num_generators = C.cfx_store_num_generators(h) }, Store)
  s.labels_ptr, s.gens_ptr, s.groups_ptr = C.cfx_store_labels(h), C.cfx_store_generators(h), C.cfx_store_groups(h)
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
  check(C.cfx_store_read(self.handle, i - 1, buf, len, nbuf))
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
-- evaluation group of image i: a generator id, or nil (a real paired with none in particular)
function Store:group(i)
  check_index(self, i)
  local g = self.groups_ptr[i - 1]
  return g >= 0 and g + 1 or nil
end
-- 'deal' | 'pool': how the evaluation pairs reals that have no group (see docs/data.md)
function Store:pairing() return self:attr('pairing') or 'deal' end
function Store:name(i) check_index(self, i) return ffi.string(C.cfx_store_name(self.handle, i - 1)) end
function Store:size_of(i) check_index(self, i) return tonumber(self.offsets_ptr[i] - self.offsets_ptr[i - 1]) end
-- {width=, height=, format=, flags=, label=, generator=, name=} of image i
function Store:meta(i)
  check_index(self, i)
  local h = self.handle
  return { width = C.cfx_store_widths(h)[i - 1], height = C.cfx_store_heights(h)[i - 1],
    format = image.formats[C.cfx_store_formats(h)[i - 1]], flags = C.cfx_store_flags(h)[i - 1],
    label = self.labels_ptr[i - 1], generator = self.gens_ptr[i - 1] + 1, group = self:group(i), name = self:name(i) }
end

-- s:generator(g) -> {id=, name=, architecture=, subset=, source=} (source '' when unknown)
function Store:generator(g)
  if type(g) ~= 'number' or g < 1 or g > self.num_generators then
    raise(('%s: generator id %s out of range 1..%d'):format(self.path, tostring(g), self.num_generators))
  end
  local h = self.handle
  return { id = g, name = ffi.string(C.cfx_store_generator_name(h, g - 1)),
    architecture = ffi.string(C.cfx_store_generator_architecture(h, g - 1)),
    subset = ffi.string(C.cfx_store_generator_subset(h, g - 1)),
    source = ffi.string(C.cfx_store_generator_source(h, g - 1)) }
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
-- evaluation groups int64 {n}: generator ids (1-based), 0 where a real has none
function Store:group_ids()
  return tensor.from_buffer(self.groups_ptr, { self.n }, 'int32'):long() + 1
end

-- Counts per class, generator, architecture, subset and (fakes by their generator's) source.
function Store:info()
  local by_gen, by_arch, by_subset, by_source = {}, {}, {}, {}
  local real, fake, bytes = 0, 0, tonumber(self.offsets_ptr[self.n])
  local gens = self:generators()
  for i = 0, self.n - 1 do
    local g = gens[self.gens_ptr[i] + 1]
    local lab = self.labels_ptr[i]
    if lab == 1 then fake = fake + 1 else real = real + 1 end
    local e = by_gen[g.name] or { real = 0, fake = 0, architecture = g.architecture, subset = g.subset, source = g.source }
    by_gen[g.name] = e
    local key = lab == 1 and 'fake' or 'real'
    e[key] = e[key] + 1
    local a = by_arch[g.architecture] or { real = 0, fake = 0 }
    by_arch[g.architecture] = a
    a[key] = a[key] + 1
    local s = by_subset[g.subset] or { real = 0, fake = 0 }
    by_subset[g.subset] = s
    s[key] = s[key] + 1
    if lab == 1 and g.source ~= '' then
      local o = by_source[g.source] or { real = 0, fake = 0 }
      by_source[g.source] = o
      o.fake = o.fake + 1
    end
  end
  return { path = self.path, images = self.n, real = real, fake = fake, bytes = bytes,
    generators = by_gen, architectures = by_arch, subsets = by_subset, sources = by_source,
    num_generators = self.num_generators }
end

function Store:__tostring()
  return ('cfx.data store %s: %d images, %d generators'):format(self.path, self.n, self.num_generators)
end

-- ---- views: selections of a store ---------------------------------------------------------
-- A view is an int64 array of 0-based store indices, ascending.  Every pass below walks
-- FFI arrays (no Lua table per image): selecting from 10^7 images takes seconds.
local View = {}
View.__index = View
M.View = View

local function new_view(store, idx, n)
  return setmetatable({ store = store, n = n, idx = idx }, View)
end

-- The store indices i (0-based) with mask[i] ~= 0, ascending, as a view.
local function view_of_mask(store, mask)
  local count = 0
  for i = 0, store.n - 1 do if mask[i] ~= 0 then count = count + 1 end end
  local idx, j = ffi.new('int64_t[?]', math.max(count, 1)), 0
  for i = 0, store.n - 1 do
    if mask[i] ~= 0 then idx[j], j = i, j + 1 end
  end
  return new_view(store, idx, count)
end

-- The whole store as a view.
function Store:all()
  local idx = ffi.new('int64_t[?]', math.max(self.n, 1))
  for i = 0, self.n - 1 do idx[i] = i end
  return new_view(self, idx, self.n)
end

-- A seeded generator for selection (cfx's xoshiro in C: the same draws everywhere).
local function rng_for(seed, salt)
  local r = ffi.new('cfx_rng')
  C.cfx_rng_seed(r, C.cfx_augment_seed(seed, salt, 0))
  return r
end
-- Fisher-Yates over a Lua list, or over arr[first .. first + n - 1] of an FFI array.
local function shuffle(list, r)
  for i = #list, 2, -1 do
    local j = tonumber(C.cfx_rng_int(r, 1, i))
    list[i], list[j] = list[j], list[i]
  end
  return list
end
local function shuffle_array(arr, first, n, r)
  for i = n, 2, -1 do
    local j = tonumber(C.cfx_rng_int(r, 1, i))
    arr[first + i - 1], arr[first + j - 1] = arr[first + j - 1], arr[first + i - 1]
  end
end
-- Mark in mask `take` of the n indices at arr[first..]: all of them, or (take < n) the
-- first `take` after a seeded shuffle.
local function mark_sample(mask, arr, first, n, take, r)
  if take < n then shuffle_array(arr, first, n, r) end
  for j = first, first + math.min(take, n) - 1 do mask[arr[j]] = 1 end
end
local function set_of(list)
  if list == nil then return nil end
  if type(list) ~= 'table' then list = { list } end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Quotas that add up to `budget` over generators holding avail[1..m] images: an even
-- share each, what a small generator cannot give taken from those with more, the
-- last few images (budget not divisible) one each to generators in a seeded order.
-- Returns the quotas and how many the budget asked beyond what all of them hold.
local function fill_budget(avail, budget, r)
  local quota, active, left = {}, {}, budget
  for g = 1, #avail do
    quota[g] = 0
    if avail[g] > 0 then active[#active + 1] = g end
  end
  while left > 0 and #active > 0 do
    local share = math.floor(left / #active)
    if share == 0 then
      shuffle(active, r)
      for j = 1, left do quota[active[j]] = quota[active[j]] + 1 end
      left = 0
      break
    end
    local still = {}
    for _, g in ipairs(active) do
      local t = math.min(share, avail[g] - quota[g])
      quota[g], left = quota[g] + t, left - t
      if quota[g] < avail[g] then still[#still + 1] = g end
    end
    active = still
  end
  return quota, left
end

-- How select{} says that a budget could not be filled; tests and callers may replace it.
M.warn = function(msg) io.stderr:write('cfx: warning: ', msg, '\n') end

local select_defaults = {
  ['?generators'] = true, ['?k'] = true, ['?architectures'] = true, ['?subsets'] = true, ['?sources'] = true,
  ['?per_generator'] = true, ['?budget'] = true, reals = 'all', ['?real_sources'] = true,
  ['?split'] = true, val_fraction = 0.1, split_by = 'generator', seed = 0, ['?labels'] = true,
}

-- view:select{...} -> a new view (indices only), options applied in this order:
--   generators={names}   keep these generators (fakes), architectures={...}, subsets={...},
--                        sources={...} (the generator's content source, w:generator's 4th
--                        argument; '' names the unknown); the filters combine (and)
--   k=N                  then N generators drawn at random with `seed` (sorted by name,
--                        shuffled; the first N: subsets for larger N contain smaller ones)
--   per_generator=N      at most N images of each kept generator (seeded sample)
--   budget=N             exactly N fake images over the kept generators: an even share
--                        each, the share a generator lacks taken from those with more;
--                        when all of them hold fewer than N, all are taken and
--                        cfx.data.warn says so (view.shortfall = the images missing)
--   reals='all'|'balanced'|'none', real_sources={names}: reals kept; 'balanced' samples
--                        as many reals as there are fakes
--   split='train'|'val', val_fraction=0.1, split_by='generator'|'image': a seeded hash
--                        split; by generator keeps train and val generators disjoint
--                        (reals are split by image)
--   labels=0|1           keep one class only
function View:select(opts)
  local o = core.options(opts, select_defaults, 'select')
  local st, seed = self.store, o.seed
  local gens = st:generators()
  local want_gen, want_arch, want_sub = set_of(o.generators), set_of(o.architectures), set_of(o.subsets)
  local want_src = set_of(o.sources)
  local want_real = set_of(o.real_sources)
  if o.split and o.split ~= 'train' and o.split ~= 'val' then raise("select: split must be 'train' or 'val'") end
  if o.split_by ~= 'generator' and o.split_by ~= 'image' then raise("select: split_by must be 'generator' or 'image'") end
  if o.reals ~= 'all' and o.reals ~= 'balanced' and o.reals ~= 'none' then
    raise("select: reals must be 'all', 'balanced' or 'none'")
  end
  if o.budget ~= nil and (type(o.budget) ~= 'number' or o.budget < 0 or o.budget % 1 ~= 0) then
    raise(('select: budget must be a whole number of images >= 0, got %s'):format(tostring(o.budget)))
  end
  local val_cut, want_val = o.val_fraction * 1000000, o.split == 'val'
  local function key_in_split(key)
    local h = C.cfx_hash64(key, #key, seed)
    return (tonumber(h % 1000000) < val_cut) == want_val
  end
  -- per generator row (0-based): may its fakes / its reals be kept?
  local ng = st.num_generators
  local fake_ok, real_ok = ffi.new('uint8_t[?]', ng + 1), ffi.new('uint8_t[?]', ng + 1)
  for g = 0, ng - 1 do
    local G = gens[g + 1]
    fake_ok[g] = ((not want_gen or want_gen[G.name]) and (not want_arch or want_arch[G.architecture]) and
        (not want_sub or want_sub[G.subset]) and (not want_src or want_src[G.source]) and
        (not o.split or o.split_by ~= 'generator' or key_in_split(G.name))) and 1 or 0
    real_ok[g] = (not want_real or want_real[G.name]) and 1 or 0
  end
  -- one pass over the view: fakes counted per generator, reals kept in a list
  local labels, gp, idx, n, handle = st.labels_ptr, st.gens_ptr, self.idx, self.n, st.handle
  local split_images = o.split ~= nil
  local fake_by_image = split_images and o.split_by == 'image'
  local count = ffi.new('int64_t[?]', ng + 1)
  local fakes, reals = ffi.new('int64_t[?]', math.max(n, 1)), ffi.new('int64_t[?]', math.max(n, 1))
  local nf, nr = 0, 0
  for j = 0, n - 1 do
    local i = idx[j]
    local g = gp[i]
    local ok = true
    if labels[i] == 1 then
      if fake_ok[g] ~= 0 then
        if fake_by_image then ok = (tonumber(C.cfx_store_image_hash(handle, i, seed) % 1000000) < val_cut) == want_val end
        if ok then fakes[nf], nf, count[g] = i, nf + 1, count[g] + 1 end
      end
    elseif real_ok[g] ~= 0 then
      if split_images then ok = (tonumber(C.cfx_store_image_hash(handle, i, seed) % 1000000) < val_cut) == want_val end
      if ok then reals[nr], nr = i, nr + 1 end
    end
  end
  -- the fakes bucketed by generator (counting sort, view order kept within a bucket)
  local start = ffi.new('int64_t[?]', ng + 1)
  for g = 1, ng do start[g] = start[g - 1] + count[g - 1] end
  local bucket, fill = ffi.new('int64_t[?]', math.max(nf, 1)), ffi.new('int64_t[?]', ng + 1)
  ffi.copy(fill, start, ffi.sizeof('int64_t') * (ng + 1))
  for j = 0, nf - 1 do
    local g = gp[fakes[j]]
    bucket[fill[g]], fill[g] = fakes[j], fill[g] + 1
  end
  -- the generators kept: sorted by name, then k of them drawn
  local names, row_of = {}, {}
  for g = 0, ng - 1 do
    if count[g] > 0 then
      local name = gens[g + 1].name
      names[#names + 1], row_of[name] = name, g
    end
  end
  table.sort(names)
  if o.k then
    if o.k > #names then
      raise(('select: k=%d but only %d generators are available'):format(o.k, #names))
    end
    shuffle(names, rng_for(seed, 1))
    for j = #names, o.k + 1, -1 do names[j] = nil end
    table.sort(names)
  end
  -- how many images of each
  local avail = {}
  for gi, name in ipairs(names) do
    avail[gi] = tonumber(count[row_of[name]])
    if o.per_generator then avail[gi] = math.min(avail[gi], o.per_generator) end
  end
  local quota, short = avail, 0
  if o.budget then quota, short = fill_budget(avail, o.budget, rng_for(seed, 3)) end
  local mask = ffi.new('uint8_t[?]', math.max(st.n, 1))
  local nfake = 0
  if o.labels ~= 0 then
    for gi, name in ipairs(names) do
      local g = row_of[name]
      mark_sample(mask, bucket, tonumber(start[g]), tonumber(count[g]), quota[gi], rng_for(seed, 100 + gi))
      nfake = nfake + quota[gi]
    end
  end
  if o.labels ~= 1 and o.reals ~= 'none' then
    local take = (o.reals == 'balanced' and nr > nfake) and nfake or nr
    mark_sample(mask, reals, 0, nr, take, rng_for(seed, 2))
  end
  local v = view_of_mask(st, mask)
  if short > 0 and o.labels ~= 0 then
    v.shortfall = short
    M.warn(('%s: select budget=%d, but the %d kept generators hold only %d fake images%s: taking all of them')
      :format(st.path, o.budget, #names, o.budget - short, o.per_generator and
        (' at per_generator=%d'):format(o.per_generator) or ''))
  end
  return v
end

function Store:select(opts) return self:all():select(opts) end

function View:count() return self.n end
-- store index (1-based) of the view's j-th image
function View:index(j) return tonumber(self.idx[j - 1]) + 1 end
function View:indices()
  local r = {}
  for j = 0, self.n - 1 do r[j + 1] = tonumber(self.idx[j]) + 1 end
  return r
end
-- {images=, real=, fake=, generators= number of generators with fakes}
function View:counts()
  local real, fake, gens = 0, 0, {}
  for j = 0, self.n - 1 do
    local i = self.idx[j]
    if self.store.labels_ptr[i] == 1 then
      fake = fake + 1
      gens[self.store.gens_ptr[i]] = true
    else
      real = real + 1
    end
  end
  local ng = 0
  for _ in pairs(gens) do ng = ng + 1 end
  return { images = self.n, real = real, fake = fake, generators = ng }
end
-- names of the generators whose fakes are in the view, sorted
function View:generator_names()
  local seen, r = {}, {}
  for j = 0, self.n - 1 do
    local i = self.idx[j]
    if self.store.labels_ptr[i] == 1 and not seen[self.store.gens_ptr[i]] then
      seen[self.store.gens_ptr[i]] = true
      r[#r + 1] = self.store:generator(self.store.gens_ptr[i] + 1).name
    end
  end
  table.sort(r)
  return r
end
function View:__tostring()
  local c = self:counts()
  return ('cfx.data view of %s: %d images (%d real, %d fake from %d generators)'):format(self.store.path,
    c.images, c.real, c.fake, c.generators)
end

-- A closed store: closing again does nothing; anything else, a method or the index
-- pointers a view reads, raises a clear error instead of reading freed memory.
local Closed = {
  __tostring = function(t) return ('cfx.data store %s (closed)'):format(rawget(t, 'path')) end,
  __index = function(t, k)
    if k == 'close' then return function() end end
    raise(('%s: the store is closed (store:close() was called); open it again to use it (reading %s)'):format(
      rawget(t, 'path'), tostring(k)))
  end,
}

function Store:close()
  if self.handle ~= nil then
    C.cfx_store_close(ffi.gc(self.handle, nil))
  end
  for _, k in ipairs { 'handle', 'labels_ptr', 'gens_ptr', 'groups_ptr' } do self[k] = nil end
  setmetatable(self, Closed)
end

-- ---- the loader ---------------------------------------------------------------------------
local Loader = {}
Loader.__index = Loader
M.Loader = Loader

local loader_defaults = {
  store = false, view = false, augment = false, batch = 32, workers = 2, prefetch = 0, shuffle = true,
  drop_last = false, decode_min_size = 'auto', seed = 0, start = 0, max_batches = 0,
}

-- cfx.data.loader{store= | view=, augment=pipeline, batch=32, workers=2, seed=0, shuffle=true,
--   drop_last=false, prefetch=2*workers, decode_min_size='auto', start=0, max_batches=0}.
-- decode_min_size='auto': when the pipeline begins by resizing the shorter side to R
-- (eval), JPEGs are decoded at the smallest DCT scale that keeps both sides >= R, which
-- is much cheaper; otherwise (training pipelines) at full size, so that the pixels the
-- detector learns from are the file's own.  A number forces it, 0 turns it off.  start
-- resumes at a sequence number (loader:state()).  The loader leaves libtorch's thread
-- count alone (its workers are threads of their own): cfx.threads(n) or CFX_THREADS
-- decide it, and the experiment runner sets cpus - workers once per run.
function M.loader(opts)
  local o = core.options(opts, loader_defaults, 'cfx.data.loader')
  local view = o.view or (o.store and o.store:all())
  if not view then raise('cfx.data.loader: give store= or view=') end
  if getmetatable(view) ~= View then raise('cfx.data.loader: view must come from store:select{} or store:all()') end
  if type(o.augment) ~= 'table' or not o.augment.handle then
    raise('cfx.data.loader: augment must be a cfx.augment pipeline (e.g. cfx.augment.eval{})')
  end
  local c = ffi.new('cfx_loader_opts')
  c.store, c.indices, c.num_indices, c.augment = view.store.handle, view.idx, view.n, o.augment.handle
  c.batch, c.workers, c.prefetch = o.batch, o.workers, o.prefetch
  c.shuffle, c.drop_last = o.shuffle and 1 or 0, o.drop_last and 1 or 0
  local min_size = o.decode_min_size
  if min_size == 'auto' then
    local first = o.augment.stages[1]
    min_size = (first and first.opts and first.name:match('^eval') and first.opts.resize) or 0
    if min_size == false then min_size = 0 end
  end
  c.decode_min_size, c.seed, c.start, c.max_batches = min_size, o.seed, o.start, o.max_batches
  local box = ffi.new('cfx_loader*[1]')
  check(C.cfx_loader_new(c, box), 'cfx.data.loader')
  -- keep the store, view and pipeline alive as long as the loader
  return setmetatable({ handle = ffi.gc(box[0], C.cfx_loader_free), view = view, augment = o.augment,
    seed = o.seed, opts = o }, Loader)
end

local batch_box = ffi.new('cfx_loader_batch')
local dims = ffi.new('int64_t[4]')
local out = ffi.new('cfx_tensor*[1]')
local function owned(ptr, shape, dtype)
  for i, d in ipairs(shape) do dims[i - 1] = d end
  check(C.cfx_tensor_from_malloc(ptr, dims, #shape, dtype, out))
  return tensor.wrap(out[0])
end

-- loader:next() -> {images=uint8 {B, 3, S, S}, labels=uint8 {B}, generators=int64 {B}
-- (1-based ids), indices=int64 {B} (1-based store indices), epoch=, sequence=}, or nil
-- after max_batches.  The tensors own their memory (no copy was made).
function Loader:next()
  local rc = C.cfx_loader_next(self.handle, batch_box)
  if rc == C.CFX_ENOTFOUND then return nil end
  check(rc, 'loader')
  local b = batch_box
  local n, s = b.count, b.size
  if n == 0 then
    C.cfx_loader_batch_release(b)
    return { images = tensor.empty(0, 3, s, s, { dtype = 'uint8' }), labels = tensor.empty(0, { dtype = 'uint8' }),
      generators = tensor.empty(0, { dtype = 'int64' }), indices = tensor.empty(0, { dtype = 'int64' }),
      epoch = tonumber(b.epoch), sequence = tonumber(b.sequence) }
  end
  local r = {
    images = owned(b.images, { n, 3, s, s }, C.CFX_UINT8),
    labels = owned(b.labels, { n }, C.CFX_UINT8),
    generators = owned(b.generators, { n }, C.CFX_INT32):long() + 1,
    indices = owned(b.indices, { n }, C.CFX_INT64) + 1,
    epoch = tonumber(b.epoch), sequence = tonumber(b.sequence),
  }
  return r
end

-- for batch in loader:batches() do ... end
function Loader:batches()
  return function() return self:next() end
end

-- {seed=, position=}: pass position as start= to a new loader to continue exactly here.
function Loader:state()
  return { seed = self.seed, position = tonumber(C.cfx_loader_position(self.handle)) }
end

-- {batches=, images=, failed=, last_failed= (1-based store index or nil), last_failure=, batches_per_epoch=}
function Loader:stats()
  local s = ffi.new('cfx_loader_stats')
  C.cfx_loader_stats_get(self.handle, s)
  return { batches = tonumber(s.batches), images = tonumber(s.images), failed = tonumber(s.failed),
    last_failed = s.last_failed >= 0 and tonumber(s.last_failed) + 1 or nil,
    last_failure = ffi.string(C.cfx_loader_last_failure(self.handle)),
    batches_per_epoch = tonumber(s.batches_per_epoch) }
end

function Loader:close()
  if self.handle ~= nil then
    C.cfx_loader_free(ffi.gc(self.handle, nil))
    self.handle = nil
  end
end

return M
