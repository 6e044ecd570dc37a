-- cfx data import: parquet shards or a folder layout into a packed store.
local args = require 'cfx.cli.args'
local fs = require 'cfx.fs'

local spec = {
  name = 'cfx data import',
  usage = 'cfx data import SRC... --out STORE.h5 [options]',
  about = 'SRC is a folder in one of the evaluation-set layouts (generic <gen>/<real|fake>/,\n' ..
      'CNNDetection/UFD <gen>/[<class>/]0_real|1_fake/, GenImage <gen>/{train,val}/{ai,nature}/,\n' ..
      'Synthbuster <gen>/ with --reals for RAISE), or Community Forensics parquet shards\n' ..
      '(files ending in .parquet, or a folder of them).  Unreadable images are reported.',
  options = {
    { 'out', 'string', nil, 'the store to write (required)' },
    { 'layout', { 'auto', 'generic', 'cnndetection', 'genimage', 'synthbuster', 'parquet' }, 'auto',
      'how SRC is organised' },
    { 'on-error', { 'skip', 'flag' }, 'skip', 'unreadable images: leave out, or store them flagged' },
    { 'split', { 'train', 'val' }, 'val', 'GenImage: which split to import' },
    { 'reals', 'string', nil, 'Synthbuster: the folder of real images (RAISE-1k)' },
    { 'pairing', { 'deal', 'pool' }, nil, 'reals with no generator of their own: dealt out, one share per\n' ..
      'generator, or pooled, all of them against every generator (default: pool for\n' ..
      'Synthbuster, deal otherwise; folder layouts pair each generator with its own reals)' },
    { 'pairs', 'list', nil, 'Synthbuster: SUB=GEN,...: the reals under --reals/SUB are GEN\'s own' },
    { 'quiet', 'flag', false, 'do not list unreadable files' },
  },
}

return function(argv)
  local o, pos = args.parse(argv, spec)
  if not o then return pos end
  if not o.out or #pos == 0 then
    io.stderr:write('cfx data import: give SRC and --out STORE.h5 (cfx data import --help)\n')
    return 2
  end
  local importer = require 'cfx.importer'
  local problems = 0
  local function report(path, reason)
    problems = problems + 1
    if not o.quiet then io.stderr:write(('unreadable: %s: %s\n'):format(path, reason)) end
  end
  -- parquet: .parquet files, or (layout auto) a folder of them with no sub-folders
  local function parquet_dir(p)
    if o.layout ~= 'auto' or not fs.is_dir(p) then return false end
    local dirs, files = importer.list(p)
    if #dirs > 0 then return false end
    for _, f in ipairs(files) do if f:match('%.parquet$') then return true end end
    return false
  end
  local is_parquet = o.layout == 'parquet' or pos[1]:match('%.parquet$') or parquet_dir(pos[1])
  local pairs_map
  for _, p in ipairs(o.pairs or {}) do
    local sub, gen = p:match('^([^=]+)=(.+)$')
    if not sub then
      io.stderr:write(('cfx data import: --pairs expects SUB=GENERATOR, got %q\n'):format(p))
      return 2
    end
    pairs_map = pairs_map or {}
    pairs_map[sub] = gen
  end
  local ok, r = pcall(function()
    if is_parquet then
      return importer.parquet(pos, { out = o.out, on_error = o.on_error, report = report })
    end
    if #pos ~= 1 then error('import: one folder at a time (got ' .. #pos .. ')', 0) end
    return importer.folders(pos[1], { out = o.out, layout = o.layout, on_error = o.on_error, split = o.split,
      reals = o.reals or false, pairing = o.pairing or false, pairs = pairs_map or false, report = report })
  end)
  if not ok then
    io.stderr:write('cfx data import: ', (tostring(r):gsub('^[^:]*:%d+: ', ''):gsub('^import: ', '')), '\n')
    return 1
  end
  print(('cfx data import: wrote %s: %d images (layout %s, reals without a group: %s); %d unreadable %s'):format(
    r.path, r.images, r.layout, r.pairing or 'deal', r.skipped + r.flagged, r.flagged > 0 and 'stored flagged' or 'skipped'))
  return 0
end
