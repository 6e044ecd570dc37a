-- audit.lua: cfx.audit, the shortcuts a detector could learn instead of generation
-- traces.  For each image it reads only the header (size, format, JPEG quality from the
-- quantization tables, chroma subsampling, colour mode) and the file size; for each of
-- these features it scores how well the feature alone separates the classes (ROC AUC
-- of a one-feature classifier, folded to >= 0.5) and flags it above a threshold.  With
-- several stores it also looks for duplicate images (same bytes) between them.
local core = require 'cfx.core'
local image = require 'cfx.image'
local metrics = require 'cfx.metrics'
local ffi, C = core.ffi, core.C

local M = {}

M.features = {
  { name = 'size', about = 'longer side in pixels' },
  { name = 'pixels', about = 'width x height' },
  { name = 'aspect', about = 'width / height' },
  { name = 'format', about = 'PNG vs JPEG' },
  { name = 'jpeg_quality', about = 'estimated from the luma quantization table (JPEG only)' },
  { name = 'subsampling', about = 'chroma subsampling: 444, 422, 420, 440, 411, gray (JPEG only)' },
  { name = 'mode', about = 'colour components in the file: gray, colour, CMYK/RGBA' },
  { name = 'bits_per_pixel', about = 'file size x 8 / pixels' },
}

local subsampling_codes = { ['444'] = 0, ['422'] = 1, ['420'] = 2, gray = 3, ['440'] = 4, ['411'] = 5 }
local PREFIX = 65536

-- Per-image feature values of a store (nil where a feature does not apply).
local function collect(store)
  local n = store:count()
  local cols = {}
  for _, f in ipairs(M.features) do cols[f.name] = {} end
  local labels = {}
  local buf = ffi.new('uint8_t[?]', PREFIX)
  local got = ffi.new('int64_t[1]')
  local unreadable = 0
  for i = 1, n do
    labels[i] = store:label(i)
    core.check(C.cfx_store_read_prefix(store.handle, i - 1, buf, PREFIX, got))
    local ok, info = pcall(image.probe, ffi.string(buf, got[0]))
    local bytes = store:size_of(i)
    if ok then
      local w, h = info.width, info.height
      cols.size[i] = math.max(w, h)
      cols.pixels[i] = w * h
      cols.aspect[i] = w / h
      cols.format[i] = info.format == 'png' and 1 or 0
      cols.mode[i] = info.components
      cols.bits_per_pixel[i] = bytes * 8 / (w * h)
      if info.format == 'jpeg' then
        cols.jpeg_quality[i] = info.quality
        cols.subsampling[i] = subsampling_codes[info.subsampling or ''] or -1
      end
    else
      unreadable = unreadable + 1
    end
  end
  return cols, labels, unreadable
end

-- The names a reader sees for the coded features' values.
local value_names = {
  format = { [0] = 'JPEG', [1] = 'PNG' },
  mode = { [1] = 'gray', [3] = 'colour', [4] = 'CMYK/RGBA' },
  subsampling = { [-1] = 'other' },
}
for name, code in pairs(subsampling_codes) do value_names.subsampling[code] = name end

-- The distribution of a feature within one class: the most common values.
local function summary(values, labels, class, fname)
  local counts, total = {}, 0
  local names = value_names[fname]
  for i, v in pairs(values) do
    if labels[i] == class then
      local key = fname == 'aspect' and ('%.2f'):format(v) or fname == 'bits_per_pixel' and
          ('%.1f'):format(v) or names and names[v] or tostring(v)
      counts[key] = (counts[key] or 0) + 1
      total = total + 1
    end
  end
  local list = {}
  for k, c in pairs(counts) do list[#list + 1] = { value = k, fraction = c / total } end
  table.sort(list, function(a, b) return a.fraction > b.fraction or (a.fraction == b.fraction and a.value < b.value) end)
  local top = {}
  for j = 1, math.min(4, #list) do top[j] = list[j] end
  return { n = total, distinct = #list, top = top }
end

-- cfx.audit.store(store [, {threshold=0.65}]) -> {features = {name = {score=, auc=,
-- flagged=, n=, real=summary, fake=summary}}, unreadable=, flagged={names}}
function M.store(store, opts)
  local o = core.options(opts, { threshold = 0.65 }, 'audit')
  local cols, labels, unreadable = collect(store)
  local report = { path = store.path, images = store:count(), unreadable = unreadable, features = {}, flagged = {},
    threshold = o.threshold }
  for _, f in ipairs(M.features) do
    local s, l = {}, {}
    for i, v in pairs(cols[f.name]) do
      s[#s + 1] = v
      l[#l + 1] = labels[i]
    end
    local auc = #s > 0 and metrics.roc_auc(s, l) or 0 / 0
    local score = auc == auc and math.max(auc, 1 - auc) or nil
    local entry = { about = f.about, n = #s, auc = auc == auc and auc or nil, score = score,
      flagged = score ~= nil and score >= o.threshold,
      real = summary(cols[f.name], labels, 0, f.name), fake = summary(cols[f.name], labels, 1, f.name) }
    report.features[f.name] = entry
    if entry.flagged then report.flagged[#report.flagged + 1] = f.name end
  end
  return report
end

-- Duplicates between stores: images whose bytes are identical.  -> list of
-- {a = {store=, index=, name=}, b = {...}}
function M.duplicates(stores, limit)
  limit = limit or 1000
  local seen, dups = {}, {}
  for si, st in ipairs(stores) do
    for i = 1, st:count() do
      local bytes = st:bytes(i)
      local key = tostring(C.cfx_hash64(bytes, #bytes, 0)) .. ':' .. #bytes
      local prev = seen[key]
      if prev and prev.store ~= si then
        if #dups < limit then
          dups[#dups + 1] = { a = { store = stores[prev.store].path, index = prev.index, name = stores[prev.store]:name(prev.index) },
            b = { store = st.path, index = i, name = st:name(i) } }
        end
      elseif not prev then
        seen[key] = { store = si, index = i }
      end
    end
  end
  return dups
end

-- The report as text.
function M.format(report)
  local lines = { ('%s: %d images%s'):format(report.path, report.images,
    report.unreadable > 0 and (', %d unreadable'):format(report.unreadable) or '') }
  lines[#lines + 1] = ('%-15s %7s %6s  %-34s %-34s'):format('feature', 'score', 'flag', 'real (most common)',
    'fake (most common)')
  local function top(sm)
    local parts = {}
    for j, t in ipairs(sm.top) do
      if j > 3 then break end
      parts[#parts + 1] = ('%s %.0f%%'):format(t.value, t.fraction * 100)
    end
    return table.concat(parts, ', ')
  end
  for _, f in ipairs(M.features) do
    local e = report.features[f.name]
    lines[#lines + 1] = ('%-15s %7s %6s  %-34s %-34s'):format(f.name, e.score and ('%.3f'):format(e.score) or 'n/a',
      e.flagged and 'FLAG' or '', top(e.real), top(e.fake))
  end
  if #report.flagged > 0 then
    lines[#lines + 1] = ('\n%d shortcut(s) above %.2f: %s. A detector can separate the classes by %s alone;'):format(
      #report.flagged, report.threshold, table.concat(report.flagged, ', '),
      #report.flagged == 1 and 'this feature' or 'any of these')
    lines[#lines + 1] = 'balance them (select, resize, re-encode) before trusting a score.'
  else
    lines[#lines + 1] = ('\nno feature separates the classes above %.2f.'):format(report.threshold)
  end
  return table.concat(lines, '\n')
end

return M
