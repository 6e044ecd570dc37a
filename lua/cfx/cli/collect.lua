-- cfx collect DIR [--out FILE]: merge the results files under DIR (one per Slurm array
-- task, say) into one (cfx.results.collect; docs/results.md).
local args = require 'cfx.cli.args'

local spec = {
  name = 'cfx collect',
  usage = 'cfx collect DIR [--out FILE]',
  about = 'Merges every results file (*.h5 with cfx_format "results") under DIR, subfolders\n' ..
      'included, into one file, DIR/results.h5 by default, written anew.  Other .h5 files\n' ..
      '(stores) are skipped and listed.  A run found in several files is taken from the copy\n' ..
      'whose status is "done", then from the one updated last, then from the file whose path\n' ..
      'sorts last; each such choice is printed.  Copies of one run must have the same\n' ..
      'configuration (device aside): one run id with two configurations is two runs, and\n' ..
      'is refused, naming the files and the differing keys.  An existing output is replaced\n' ..
      'only when that loses no run (an earlier collect of the same files); a results file of\n' ..
      'your own there is refused.  Prints the runs merged per experiment and preset, and\n' ..
      'warns when the file mixes several.',
  options = {
    { 'out', 'string', nil, 'the merged file (default DIR/results.h5)' },
  },
}

-- Every *.h5 below dir (sorted paths), down to 32 levels.
local function find_h5(fs, dir, depth, out)
  if depth > 32 then return out end
  local dirs, files = fs.list(dir)
  for _, f in ipairs(files) do
    if f:match('%.h5$') then out[#out + 1] = dir .. '/' .. f end
  end
  for _, d in ipairs(dirs) do find_h5(fs, dir .. '/' .. d, depth + 1, out) end
  return out
end

-- The message of an error without its location (a library file's, or the command's own
-- chunk's, which is where cfx.core.raise points when no user script is on the stack).
local function strip(e) return (args.message(e):gsub('^%(cfx command%):%d+: ', '')) end

return function(argv)
  local o, dir = args.parse_dir(argv, spec)
  if not o then return dir end
  local fs, results = require 'cfx.fs', require 'cfx.results'
  local out = o.out or (dir .. '/results.h5')
  local inputs, skipped = {}, {}
  local out_abs = fs.abspath(out)
  for _, p in ipairs(find_h5(fs, dir, 0, {})) do
    if fs.abspath(p) ~= out_abs then
      local ok, is, why = pcall(results.is_results_file, p)
      if not ok then
        io.stderr:write('cfx collect: ', strip(is), '\n')
        return 1
      end
      if is then inputs[#inputs + 1] = p else skipped[#skipped + 1] = p end
    end
  end
  if #skipped > 0 then
    io.stderr:write(('cfx collect: skipped %d .h5 file%s that %s: %s\n'):format(#skipped,
      #skipped == 1 and '' or 's', #skipped == 1 and 'is not a results file' or 'are not results files',
      table.concat(skipped, ', ')))
  end
  if #inputs == 0 then
    io.stderr:write(('cfx collect: no results files under %s\n'):format(dir))
    return 1
  end
  local ok, r = pcall(results.collect, inputs, out)
  if not ok then
    local msg = strip(r):gsub('^collect: ', '')
    if msg:find('give another output path', 1, true) then msg = msg .. ' (cfx collect DIR --out FILE)' end
    io.stderr:write('cfx collect: ', msg, '\n')
    return 1
  end
  for _, line in ipairs(r.report) do print('  ' .. line) end
  for _, g in ipairs(r.groups) do
    local st = {}
    for k, v in pairs(g.status) do st[#st + 1] = ('%d %s'):format(v, k) end
    table.sort(st, function(a, b) return a:match('%d+ (.*)') < b:match('%d+ (.*)') end)
    print(('  %s, preset %s: %d run%s (%s)'):format(g.experiment ~= '' and g.experiment or '(no experiment)',
      g.preset ~= '' and g.preset or '(none)', g.runs, g.runs == 1 and '' or 's', table.concat(st, ', ')))
  end
  print(('cfx collect: %d run%s from %d file%s into %s'):format(r.runs, r.runs == 1 and '' or 's', #inputs,
    #inputs == 1 and '' or 's', out))
  if #r.groups > 1 then
    local names = {}
    for _, g in ipairs(r.groups) do names[#names + 1] = g.experiment .. '/' .. (g.preset ~= '' and g.preset or '?') end
    io.stderr:write(('cfx collect: warning: %s mixes runs of %d experiments or presets (%s); a table over all ' ..
      'its runs mixes them: select on the runs\' experiment and preset attributes when reading it\n'):format(out,
      #r.groups, table.concat(names, ', ')))
  end
  return 0
end
