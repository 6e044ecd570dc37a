-- importer.lua: cfx.importer, images from folder layouts (and parquet shards) into
-- packed stores.  Every file is decoded once to check it; an unreadable image is
-- reported (file and reason) and skipped, or stored with the UNREADABLE flag
-- (on_error='flag'), never dropped silently.  See docs/data.md for the layouts.
local core = require 'cfx.core'
local image = require 'cfx.image'
local data = require 'cfx.data'
local fs = require 'cfx.fs'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

-- ---- files -----------------------------------------------------------------------------
M.list = fs.list
local is_dir = fs.is_dir

local image_ext = { jpg = true, jpeg = true, png = true, jfif = true, webp = true, bmp = true, gif = true,
  tif = true, tiff = true }
local function images_in(dir, recursive)
  local out = {}
  if not is_dir(dir) then return out end -- a class folder may be absent (GenImage train/nature)
  local function walk(d)
    local dirs, files = M.list(d)
    for _, f in ipairs(files) do
      local ext = f:match('%.([%w]+)$')
      if ext and image_ext[ext:lower()] then out[#out + 1] = d .. '/' .. f end
    end
    if recursive then for _, sub in ipairs(dirs) do walk(d .. '/' .. sub) end end
  end
  walk(dir)
  return out
end

-- ---- architectures of well-known evaluation generators ----------------------------------------
-- (names as the evaluation sets spell their folders, lower-cased; unknown names: 'unknown')
M.known_architectures = {
  progan = 'GAN', stylegan = 'GAN', stylegan2 = 'GAN', stylegan3 = 'GAN', biggan = 'GAN', cyclegan = 'GAN',
  stargan = 'GAN', gaugan = 'GAN', deepfake = 'other', crn = 'other', imle = 'other', san = 'other',
  seeingdark = 'other', whichfaceisreal = 'GAN', gigagan = 'GAN',
  dalle = 'other', ['dall-e'] = 'other', dalle2 = 'PixDiff', ['dall-e2'] = 'PixDiff', dalle3 = 'Commercial',
  ['dall-e3'] = 'Commercial', glide = 'PixDiff', glide_100_10 = 'PixDiff', glide_100_27 = 'PixDiff',
  glide_50_27 = 'PixDiff', guided = 'PixDiff', adm = 'PixDiff', ldm = 'LatDiff', ldm_100 = 'LatDiff',
  ldm_200 = 'LatDiff', ldm_200_cfg = 'LatDiff', midjourney = 'Commercial', firefly = 'Commercial',
  wukong = 'LatDiff', vqdm = 'other', stable_diffusion = 'LatDiff', ['stable-diffusion-1-3'] = 'LatDiff',
  ['stable-diffusion-1-4'] = 'LatDiff', ['stable-diffusion-2'] = 'LatDiff', ['stable-diffusion-xl'] = 'LatDiff',
  sdv4 = 'LatDiff', sdv5 = 'LatDiff', sd14 = 'LatDiff', sd15 = 'LatDiff',
}
local function arch_of(name)
  local n = name:lower()
  if M.known_architectures[n] then return M.known_architectures[n] end
  for prefix, a in pairs { ['stable_diffusion'] = 'LatDiff', ['stable-diffusion'] = 'LatDiff',
    midjourney = 'Commercial', glide = 'PixDiff', ldm = 'LatDiff', adm = 'PixDiff' } do
    if n:sub(1, #prefix) == prefix then return a end
  end
  return 'unknown'
end

-- ---- layouts ----------------------------------------------------------------------------------
-- Each returns a list of {path=, label=, generator=, architecture=, subset=, group=} entries
-- and the pairing of reals without a group ('deal' or 'pool').  group: the generator
-- whose fakes a real is scored against (the folder layouts: the generator whose folder
-- holds it), nil when the layout pairs it with none in particular.
M.layouts = {}

local function fake(p, gen) return { path = p, label = 1, generator = gen, architecture = arch_of(gen), subset = 'eval' } end
local function real(p, source, group)
  return { path = p, label = 0, generator = source, architecture = 'real', subset = 'real', group = group }
end

-- <root>/<generator>/<real|fake>/<image>: the official code's layout
function M.layouts.generic(root)
  local entries = {}
  for _, g in ipairs((M.list(root))) do
    for _, class in ipairs { 'real', 'fake' } do
      local d = root .. '/' .. g .. '/' .. class
      if is_dir(d) then
        for _, p in ipairs(images_in(d, true)) do
          entries[#entries + 1] = class == 'fake' and fake(p, g) or real(p, g .. '/real', g)
        end
      end
    end
  end
  return entries
end

-- CNNDetection / UFD: <root>/<generator>/[<category>/]0_real|1_fake/<image>
function M.layouts.cnndetection(root)
  local entries = {}
  local function add(gen, d)
    for _, p in ipairs(images_in(d .. '/1_fake', true)) do
      entries[#entries + 1] = fake(p, gen)
    end
    for _, p in ipairs(images_in(d .. '/0_real', true)) do
      entries[#entries + 1] = real(p, gen .. '/real', gen)
    end
  end
  for _, g in ipairs((M.list(root))) do
    local gd = root .. '/' .. g
    if is_dir(gd .. '/0_real') or is_dir(gd .. '/1_fake') then
      add(g, gd)
    else
      for _, cat in ipairs((M.list(gd))) do
        if is_dir(gd .. '/' .. cat .. '/0_real') or is_dir(gd .. '/' .. cat .. '/1_fake') then add(g, gd .. '/' .. cat) end
      end
    end
  end
  return entries
end

-- GenImage: <root>/<Generator>/{train,val}/{ai,nature}/<image>
function M.layouts.genimage(root, o)
  local entries = {}
  for _, g in ipairs((M.list(root))) do
    local d = root .. '/' .. g .. '/' .. o.split
    if is_dir(d) then
      for _, p in ipairs(images_in(d .. '/ai', true)) do
        entries[#entries + 1] = fake(p, g)
      end
      for _, p in ipairs(images_in(d .. '/nature', true)) do
        entries[#entries + 1] = real(p, g .. '/nature', g)
      end
    end
  end
  return entries
end

-- Synthbuster: <root>/<generator>/<image> (all generated); reals (RAISE-1k) from o.reals.
-- Every generator re-made the same RAISE images, so by default each is scored against
-- all of them (pairing 'pool'); o.pairs = {[subfolder of o.reals] = generator} pairs
-- the reals of a subfolder with one generator instead.
function M.layouts.synthbuster(root, o)
  local entries, gens = {}, {}
  for _, g in ipairs((M.list(root))) do
    gens[g] = true
    for _, p in ipairs(images_in(root .. '/' .. g, false)) do
      entries[#entries + 1] = fake(p, g)
    end
  end
  if o.reals then
    local reals_root = o.reals:gsub('/+$', '')
    for _, p in ipairs(images_in(reals_root, true)) do
      local sub = p:sub(#reals_root + 2):match('^([^/]+)/')
      entries[#entries + 1] = real(p, 'RAISE', o.pairs and sub and o.pairs[sub] or nil)
    end
  end
  for sub, g in pairs(o.pairs or {}) do
    if not gens[g] then
      raise(('import: pairs: %s=%s names no generator folder of %s'):format(sub, tostring(g), root))
    end
    if not o.reals or not is_dir(o.reals .. '/' .. sub) then
      raise(('import: pairs: %s=%s, but %s/%s is not a folder'):format(sub, g, tostring(o.reals), sub))
    end
  end
  return entries, 'pool'
end

-- Which layout a folder tree has, from the names two levels down; an error that says
-- what was seen when it is not clear.
function M.detect(root)
  if not is_dir(root) then raise(('import: %s is not a directory'):format(root)) end
  local gens, files = M.list(root)
  if #gens == 0 then
    raise(('import: %s holds no sub-folders (%d files); expected one folder per generator'):format(root, #files))
  end
  local votes, seen = {}, {}
  for _, g in ipairs(gens) do
    local sub, subfiles = M.list(root .. '/' .. g)
    local set = {}
    for _, s in ipairs(sub) do set[s] = true end
    local kind
    if set.real or set.fake then kind = 'generic'
    elseif set['0_real'] or set['1_fake'] then kind = 'cnndetection'
    elseif (set.train or set.val) and (is_dir(root .. '/' .. g .. '/' .. (set.val and 'val' or 'train') .. '/ai') or
          is_dir(root .. '/' .. g .. '/' .. (set.val and 'val' or 'train') .. '/nature')) then
      kind = 'genimage'
    elseif #sub > 0 then
      -- CNNDetection with categories: <gen>/<category>/0_real
      local d = root .. '/' .. g .. '/' .. sub[1]
      if is_dir(d .. '/0_real') or is_dir(d .. '/1_fake') then kind = 'cnndetection' end
    elseif #subfiles > 0 then
      kind = 'synthbuster'
    end
    kind = kind or 'unknown'
    votes[kind] = (votes[kind] or 0) + 1
    seen[kind] = seen[kind] or g
  end
  local kinds = {}
  for k in pairs(votes) do kinds[#kinds + 1] = k end
  table.sort(kinds)
  if #kinds == 1 and kinds[1] ~= 'unknown' then return kinds[1] end
  local parts = {}
  for _, k in ipairs(kinds) do parts[#parts + 1] = ('%s (%d folders, e.g. %s)'):format(k, votes[k], seen[k]) end
  raise(('import: cannot tell the layout of %s: %s. Give --layout generic|cnndetection|genimage|synthbuster ' ..
    '(see docs/data.md)'):format(root, table.concat(parts, '; ')))
end

-- ---- progress -------------------------------------------------------------------------------
function M.progress(total, what)
  if C.cfx_isatty(2) == 0 then return function() end end
  local last, wall0 = -1, os.time()
  return function(done, bytes, final)
    local now = os.time()
    if not final and now == last then return end
    last = now
    local secs = math.max(now - wall0, 1e-9)
    local rate = done / secs
    local eta = rate > 0 and (total - done) / rate or 0
    io.stderr:write(('\r%s: %d/%d %s, %.1f MB/s, ETA %ds   '):format(what, done, total, 'images',
      bytes / 2 ^ 20 / secs, math.floor(eta)))
    if final then io.stderr:write('\n') end
  end
end

-- ---- the import -----------------------------------------------------------------------------
-- A store writer that decodes each image once before adding it: an unreadable one is
-- reported (o.report(where, reason)) and skipped, or stored with the UNREADABLE flag
-- (o.on_error = 'flag').  finish(summary) adds the counts and writes the store.
local function checked_writer(path, o)
  if o.on_error ~= 'skip' and o.on_error ~= 'flag' then raise("import: on_error must be 'skip' or 'flag'") end
  local c = { w = data.writer(path), skipped = 0, flagged = 0, bytes = 0 }
  function c.add(bytes, label, gid, name, where, group)
    local ok, why = false, 'cannot open the file'
    if bytes then ok, why = pcall(image.decode, bytes) end
    if ok then
      c.w:add { bytes = bytes, label = label, generator = gid, group = group, name = name }
      c.bytes = c.bytes + #bytes
      return
    end
    why = tostring(why):gsub('^[^:]*:%d+: ', '')
    if o.report then o.report(where, why) end
    if o.on_error == 'flag' and bytes then
      c.w:add { bytes = bytes, label = label, generator = gid, group = group, name = name, probe = false,
        flags = C.CFX_STORE_FLAG_UNREADABLE }
      c.flagged = c.flagged + 1
    else
      c.skipped = c.skipped + 1
    end
  end
  function c.finish(summary)
    c.w:attr('unreadable_skipped', c.skipped)
    c.w:attr('unreadable_flagged', c.flagged)
    summary.images, summary.skipped, summary.flagged, summary.path = c.w:count(), c.skipped, c.flagged, path
    c.w:finish()
    return summary
  end
  return c
end

local defaults = { out = false, layout = 'auto', on_error = 'skip', split = 'val', reals = false, source = false,
  report = false, pairing = false, pairs = false }

-- cfx.importer.folders{root, out=, layout='auto', on_error='skip'|'flag', split='val'
-- (GenImage), reals= (Synthbuster's RAISE folder), pairs={[reals subfolder]=generator},
-- pairing='deal'|'pool' (reals without a group; the layout's default otherwise),
-- report=function(path, reason)} -> {images=, skipped=, flagged=, path=, layout=, pairing=}
function M.folders(root, opts)
  local o = core.options(opts, defaults, 'import')
  if not o.out then raise('import: give out= (the store to write)') end
  local layout = o.layout == 'auto' and M.detect(root) or o.layout
  local fn = M.layouts[layout]
  if not fn then raise(('import: unknown layout %s (generic, cnndetection, genimage, synthbuster)'):format(layout)) end
  if o.pairing and o.pairing ~= 'deal' and o.pairing ~= 'pool' then
    raise(("import: pairing must be 'deal' or 'pool', got %s"):format(tostring(o.pairing)))
  end
  if o.pairs and layout ~= 'synthbuster' then
    raise(('import: pairs= applies to layouts whose reals sit in folders of their own (synthbuster), not %s'):format(layout))
  end
  local entries, layout_pairing = fn(root, o)
  if #entries == 0 then raise(('import: no images found in %s as layout %s'):format(root, layout)) end
  local pairing = o.pairing or layout_pairing or 'deal'
  local c = checked_writer(o.out, o)
  c.w:attr('source', o.source or root)
  c.w:attr('layout', layout)
  c.w:attr('pairing', pairing)
  local ids = {}
  local function id_of(name, architecture, subset)
    if not ids[name] then ids[name] = c.w:generator(name, architecture, subset) end
    return ids[name]
  end
  local progress = M.progress(#entries, 'import')
  for i, e in ipairs(entries) do
    local gid = id_of(e.generator, e.architecture, e.subset)
    -- a real's group is its generator's row (registered now if it has no fakes yet)
    local group = e.group and id_of(e.group, arch_of(e.group), 'eval') or false
    local f = io.open(e.path, 'rb')
    local s = f and f:read('*a')
    if f then f:close() end
    c.add(s, e.label, gid, e.path:sub(#root + 2), e.path, group)
    progress(i, c.bytes, i == #entries)
  end
  return c.finish { layout = layout, pairing = pairing }
end

-- ---- parquet shards (Community Forensics) -----------------------------------------------
-- Columns of the dataset card; image_data and label are required, the rest optional.
local PQ_COLUMNS = { 'image_name', 'format', 'image_data', 'model_name', 'real_source', 'subset', 'split', 'label',
  'architecture' }

-- Read one column chunk as a Lua-side accessor: get(i) -> string|number|boolean|nil (0-based row).
local function column_reader(pq, rg, col, path)
  local c = ffi.new('cfx_parquet_column')
  check(C.cfx_parquet_read_column(pq, rg, col, c), 'import: ' .. path)
  local t = c.type
  local get
  if t == C.CFX_PARQUET_BYTES or t == C.CFX_PARQUET_STRING then
    get = function(i) return ffi.string(c.data + c.offsets[i], c.offsets[i + 1] - c.offsets[i]) end
  elseif t == C.CFX_PARQUET_BOOL then
    local v = ffi.cast('uint8_t*', c.values)
    get = function(i) return v[i] ~= 0 end
  elseif t == C.CFX_PARQUET_INT32 then
    local v = ffi.cast('int32_t*', c.values)
    get = function(i) return v[i] end
  elseif t == C.CFX_PARQUET_INT64 then
    local v = ffi.cast('int64_t*', c.values)
    get = function(i) return tonumber(v[i]) end
  elseif t == C.CFX_PARQUET_DOUBLE then
    local v = ffi.cast('double*', c.values)
    get = function(i) return v[i] end
  elseif t == C.CFX_PARQUET_FLOAT then
    local v = ffi.cast('float*', c.values)
    get = function(i) return v[i] end
  else
    get = function() return nil end
  end
  local valid = c.validity
  local function value(i)
    if valid ~= nil and valid[i] == 0 then return nil end
    return get(i)
  end
  return value, function() C.cfx_parquet_column_release(c) end
end

-- cfx.importer.parquet({paths...}, {out=, on_error='skip'|'flag', report=fn}) -> summary.
-- A path may be a folder: its *.parquet files, sorted.  Generated images belong to
-- their model_name (architecture and subset from those columns); real images to their
-- real_source (architecture 'real').
function M.parquet(paths, opts)
  local o = core.options(opts, defaults, 'import')
  if not o.out then raise('import: give out= (the store to write)') end
  local files = {}
  for _, p in ipairs(paths) do
    if is_dir(p) then
      local _, fs = M.list(p)
      for _, f in ipairs(fs) do if f:match('%.parquet$') then files[#files + 1] = p .. '/' .. f end end
    else
      files[#files + 1] = p
    end
  end
  if #files == 0 then raise('import: no .parquet files given') end
  -- count rows first for the progress line (footers only)
  local total = 0
  for _, f in ipairs(files) do
    local box = ffi.new('cfx_parquet*[1]')
    check(C.cfx_parquet_open(f, box), 'import')
    total = total + tonumber(C.cfx_parquet_num_rows(box[0]))
    C.cfx_parquet_close(box[0])
  end
  local c = checked_writer(o.out, o)
  local w = c.w
  w:attr('source', o.source or table.concat(files, ' '))
  w:attr('layout', 'parquet')
  -- the card pairs the generated images with the reals as a whole, not one generator
  -- with particular reals: each generator's fakes are scored against a share dealt out
  w:attr('pairing', 'deal')
  local ids, done = {}, 0
  local progress = M.progress(total, 'import')
  for _, path in ipairs(files) do
    local box = ffi.new('cfx_parquet*[1]')
    check(C.cfx_parquet_open(path, box), 'import')
    local pq = ffi.gc(box[0], C.cfx_parquet_close)
    local col = {}
    for _, name in ipairs(PQ_COLUMNS) do
      local c = C.cfx_parquet_column_index(pq, name)
      if c >= 0 then col[name] = c end
    end
    for _, need in ipairs { 'image_data', 'label' } do
      if not col[need] then
        raise(('import: %s has no column %q (expected the Community Forensics columns: %s)'):format(path, need,
          table.concat(PQ_COLUMNS, ', ')))
      end
    end
    for rg = 0, C.cfx_parquet_num_row_groups(pq) - 1 do
      local n = tonumber(C.cfx_parquet_row_group_num_rows(pq, rg))
      local get, release = {}, {}
      for name, c in pairs(col) do get[name], release[#release + 1] = column_reader(pq, rg, c, path) end
      local function field(name, i) return get[name] and get[name](i) or nil end
      for i = 0, n - 1 do
        local label = field('label', i)
        if type(label) == 'boolean' then label = label and 1 or 0 end
        local img = field('image_data', i)
        local name = field('image_name', i) or ('%s#%d.%d'):format(path:match('[^/]+$'), rg, i)
        local row = ('%s row %d'):format(path, done)
        if (label ~= 0 and label ~= 1) or type(img) ~= 'string' then
          if o.report then o.report(row, ('label %s and image_data %s: expected 0/1 and bytes'):format(
              tostring(label), type(img))) end
          c.skipped = c.skipped + 1
        else
          local gname, arch, subset
          if label == 1 then
            gname = field('model_name', i) or 'unknown'
            arch, subset = field('architecture', i) or 'unknown', field('subset', i) or ''
          else
            gname = field('real_source', i) or 'real'
            arch, subset = 'real', 'real'
          end
          local key = gname .. '\0' .. arch .. '\0' .. subset
          if not ids[key] then
            local ok, id = pcall(w.generator, w, gname, arch, subset)
            if not ok then -- the same name with other fields: keep them apart
              gname = ('%s [%s/%s]'):format(gname, arch, subset)
              id = w:generator(gname, arch, subset)
            end
            ids[key] = id
          end
          c.add(img, label, ids[key], name, row .. ' (' .. name .. ')')
        end
        done = done + 1
        progress(done, c.bytes, done == total)
      end
      for _, r in ipairs(release) do r() end
    end
  end
  return c.finish { layout = 'parquet', rows = total, pairing = 'deal' }
end

return M
