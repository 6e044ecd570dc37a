-- metrics.lua: the cfx half of bench/metrics.py (arguments: dir, n, repeats).
local cfx = require 'cfx'
local dir, n, repeats = arg[1], tonumber(arg[2]), tonumber(arg[3])
local function read(name, dtype)
  local f = assert(io.open(dir .. '/' .. name, 'rb'))
  local t = cfx.from_buffer(f:read('*a'), { n }, dtype)
  f:close()
  return t
end
local s, y, g = read('s', 'float64'), read('y', 'uint8'), read('g', 'int64')
local host = package.loaded['cfx.host'] -- present under the cfx program
local clock = host and host.clock or os.clock
local function best(fn)
  local b = math.huge
  for _ = 1, repeats do
    local t0 = clock()
    fn()
    b = math.min(b, clock() - t0)
  end
  return b
end
print('ap', best(function() cfx.metrics.average_precision(s, y) end))
print('auc', best(function() cfx.metrics.roc_auc(s, y) end))
print('group', best(function() cfx.metrics.by_group(s, y, g) end))
print('ece', best(function() cfx.metrics.ece(s, y, { bins = 15 }) end))
print('eer', best(function() cfx.metrics.eer(s, y) end))
local resamples = tonumber(arg[4]) or 1000
local t0 = clock()
local r = cfx.metrics.bootstrap { scores = s, labels = y, groups = g, resamples = resamples, seed = 0 }
print('bootstrap', clock() - t0)
print('bootstrap_map', r.map)
