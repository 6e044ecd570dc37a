-- cfx data import | info | audit: get images into packed stores and look at them.
local args = require 'cfx.cli.args'

local usage = [[
usage: cfx data COMMAND ...

  cfx data info STORE [--json]             counts per class, generator, architecture, subset, source
  cfx data audit STORE [STORE...] [--json] [--threshold T]
                                           shortcuts a detector could learn (size, format,
                                           JPEG quality, subsampling, mode, bits per pixel);
                                           duplicates between the stores
  cfx data import SRC... --out STORE.h5 [--layout L] [--on-error skip|flag]
                                           parquet shards or a folder layout into a store
Run `cfx data COMMAND --help` for the options of one command.]]

local function open_or_fail(path, prog)
  local ok, s = pcall(require('cfx.data').open, path)
  if not ok then
    io.stderr:write(prog, ': ', tostring(s):gsub('^[^:]*:%d+: ', ''), '\n')
    return nil
  end
  return s
end

local function info(argv)
  local o, pos = args.parse(argv, { name = 'cfx data info', usage = 'cfx data info STORE [--json]',
    options = { { 'json', 'flag', false, 'print JSON' }, { 'top', 'int', 20, 'generators listed' } } })
  if not o then return pos end
  if #pos ~= 1 then
    io.stderr:write('cfx data info: expected one STORE path\n')
    return 2
  end
  local s = open_or_fail(pos[1], 'cfx data info')
  if not s then return 1 end
  local r = s:info()
  r.attrs = { source = s:attr('source'), created = s:attr('created'), cfx_library_version = s:attr('cfx_library_version') }
  if o.json then
    print(args.json(r))
    return 0
  end
  print(('%s: %d images (%d real, %d fake), %d generators, %.1f MB'):format(r.path, r.images, r.real, r.fake,
    r.num_generators, r.bytes / 2 ^ 20))
  local function block(title, t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = t[a].real + t[a].fake, t[b].real + t[b].fake
      return ta > tb or (ta == tb and a < b)
    end)
    print(('\n%-32s %8s %8s'):format(title, 'real', 'fake'))
    for j, k in ipairs(keys) do
      if j > o.top then
        print(('... and %d more'):format(#keys - o.top))
        break
      end
      print(('%-32s %8d %8d'):format(k, t[k].real, t[k].fake))
    end
  end
  block('architecture', r.architectures)
  block('subset', r.subsets)
  if next(r.sources) then block('source (of the fakes)', r.sources) end
  block('generator', r.generators)
  return 0
end

local function audit(argv)
  local o, pos = args.parse(argv, { name = 'cfx data audit', usage = 'cfx data audit STORE [STORE...] [options]',
    about = 'Scores how well each header feature alone separates real from generated images\n' ..
        '(ROC AUC of a one-feature classifier, folded to >= 0.5) and flags those above the threshold.',
    options = { { 'json', 'flag', false, 'print JSON' },
      { 'threshold', 'number', 0.65, 'flag a feature whose score reaches this' },
      { 'no-duplicates', 'flag', false, 'skip the search for identical images between stores' } } })
  if not o then return pos end
  if #pos < 1 then
    io.stderr:write('cfx data audit: expected at least one STORE path\n')
    return 2
  end
  local audit_mod = require 'cfx.audit'
  local stores, reports = {}, {}
  for i, p in ipairs(pos) do
    stores[i] = open_or_fail(p, 'cfx data audit')
    if not stores[i] then return 1 end
    reports[i] = audit_mod.store(stores[i], { threshold = o.threshold })
  end
  local dups = (#stores > 1 and not o.no_duplicates) and audit_mod.duplicates(stores) or {}
  if o.json then
    print(args.json({ stores = reports, duplicates = dups }))
  else
    for i, r in ipairs(reports) do
      if i > 1 then print() end
      print(audit_mod.format(r))
    end
    if #stores > 1 and not o.no_duplicates then
      print(('\n%d identical image(s) found in more than one store%s'):format(#dups, #dups > 0 and ':' or '.'))
      for j, d in ipairs(dups) do
        if j > 10 then
          print(('  ... and %d more (--json lists them all)'):format(#dups - 10))
          break
        end
        print(('  %s #%d (%s) = %s #%d (%s)'):format(d.a.store, d.a.index, d.a.name, d.b.store, d.b.index, d.b.name))
      end
    end
  end
  return 0
end

local commands = { info = info, audit = audit }

return function(argv)
  local cmd = argv[1]
  if cmd == nil or cmd == '--help' or cmd == '-h' or cmd == 'help' then
    print(usage)
    return cmd == nil and 2 or 0
  end
  if cmd == 'import' then return require('cfx.cli.import')({ unpack(argv, 2) }) end
  local f = commands[cmd]
  if not f then
    io.stderr:write(("cfx data: unknown command '%s' (import, info, audit)\n"):format(cmd))
    return 2
  end
  return f({ unpack(argv, 2) })
end
