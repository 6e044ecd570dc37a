-- ops_driver.lua: the Lua half of tests/reference/test_ops.py.
--
-- Usage: ops_driver.lua MANIFEST RESULTS [FIRST]
--
-- MANIFEST is a Lua file written by test_ops.py that returns
--   { dir = '/tmp/..', cases = { { name=, code=, inputs = { {name=, file=, dtype=, shape=, rg=}, .. },
--                                  grad = {file=, dtype=, shape=} or nil }, .. } }
-- For each case (from index FIRST, default 1) the driver loads the inputs (raw
-- little-endian bytes) with cfx.from_buffer, marks the ones with rg=true as requiring
-- grad, runs `code` (a Lua expression, or else a chunk; its environment holds the
-- inputs, cfx, F and ffi)
-- under pcall, and, when the case has a gradient, calls out:backward(g) on the first
-- result and collects every input's grad.  Results go to RESULTS, one JSON object per
-- line and per case, flushed as it goes so that test_ops.py can tell which case killed
-- the process if one does:
--   {"i":N, "name":.., "ok":true, "outputs":[..], "grads":{"x":..}}   or
--   {"i":N, "name":.., "ok":false, "error":"message"}
-- A tensor is written to DIR/out_N_K.bin and encoded as
--   {"tensor":"path", "dtype":.., "shape":[..], "requires_grad":bool}; numbers, booleans,
-- strings, nil and (nested) tables of these are encoded as JSON values.
local cfx = require 'cfx'
local ffi = require 'ffi'
local F = cfx.F

local manifest_path, results_path, first = arg[1], arg[2], tonumber(arg[3] or '1')
if not manifest_path or not results_path then
  io.stderr:write('usage: ops_driver.lua MANIFEST RESULTS [FIRST]\n')
  os.exit(2)
end
local manifest = dofile(manifest_path)

-- ---- raw tensor I/O ------------------------------------------------------------------
local function read_file(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('*a')
  f:close()
  return s
end

local function load_tensor(spec)
  local bytes = read_file(spec.file)
  if #bytes == 0 then return cfx.empty(spec.shape, { dtype = spec.dtype }) end
  return cfx.from_buffer(bytes, spec.shape, spec.dtype)
end

local nfile = 0
local function save_tensor(t, tag)
  nfile = nfile + 1
  local path = ('%s/out_%s_%d.bin'):format(manifest.dir, tag, nfile)
  local n = t:numel() * t:element_size()
  local f = assert(io.open(path, 'wb'))
  if n > 0 then
    local buf = ffi.new('uint8_t[?]', n)
    t:copy_to(buf, n)
    f:write(ffi.string(buf, n))
  end
  f:close()
  return path
end

-- ---- JSON ------------------------------------------------------------------------------
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return ('\\u%04x'):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local encode
function encode(v, tag)
  local ty = type(v)
  if v == nil then return 'null' end
  if ty == 'boolean' then return tostring(v) end
  if ty == 'number' then
    if v ~= v then return '"nan"' end
    if v == math.huge then return '"inf"' end
    if v == -math.huge then return '"-inf"' end
    return ('%.17g'):format(v)
  end
  if ty == 'string' then return json_string(v) end
  if cfx.is_tensor(v) then
    local path = save_tensor(v, tag)
    return ('{"tensor":%s,"dtype":%s,"shape":[%s],"requires_grad":%s}'):format(json_string(path),
      json_string(v:dtype()), table.concat(v:shape(), ','), tostring(v:requires_grad()))
  end
  if ty == 'table' then
    local parts = {}
    if is_array(v) then
      for i = 1, #v do parts[i] = encode(v[i], tag) end
      return '[' .. table.concat(parts, ',') .. ']'
    end
    for k, x in pairs(v) do parts[#parts + 1] = json_string(tostring(k)) .. ':' .. encode(x, tag) end
    return '{' .. table.concat(parts, ',') .. '}'
  end
  return json_string('<' .. ty .. '>')
end

-- ---- cases --------------------------------------------------------------------------------
local results = assert(io.open(results_path, 'a'))

local function pack(...) return { n = select('#', ...), ... } end

-- Tell test_ops.py that this run got going (manifest read, cfx loaded).
results:write(('{"start":%d}\n'):format(first))
results:flush()

local function run_case(i, case)
  local env = setmetatable({ cfx = cfx, F = F, ffi = ffi }, { __index = _G })
  local inputs = {}
  for _, spec in ipairs(case.inputs) do
    local t = load_tensor(spec)
    if spec.rg then t:requires_grad_(true) end
    env[spec.name] = t
    inputs[#inputs + 1] = { spec.name, t }
  end
  -- An expression is wrapped so that its call is not a tail call (a tail call would
  -- hide the chunk's line from error messages); anything else is a chunk.
  env.__id = function(...) return ... end
  local fn = loadstring('return __id(' .. case.code .. '\n)', '@' .. case.name) or
    assert(loadstring(case.code, '@' .. case.name))
  setfenv(fn, env)
  local r = pack(pcall(fn))
  local n = r.n
  if not r[1] then
    return ('{"i":%d,"name":%s,"ok":false,"error":%s}'):format(i, json_string(case.name),
      json_string(tostring(r[2])))
  end
  local outs = {}
  for k = 2, math.max(n, 1) do outs[#outs + 1] = encode(r[k], i) end
  local grads = 'null'
  if case.grad then
    local y = r[2]
    local ok, err = pcall(function()
      if not cfx.is_tensor(y) then error('first result is not a tensor: ' .. type(y)) end
      y:backward(load_tensor(case.grad))
    end)
    if not ok then
      return ('{"i":%d,"name":%s,"ok":false,"error":%s}'):format(i, json_string(case.name),
        json_string('backward: ' .. tostring(err)))
    end
    local parts = {}
    for _, p in ipairs(inputs) do
      if p[2]:requires_grad() then
        parts[#parts + 1] = json_string(p[1]) .. ':' .. encode(p[2]:grad(), i)
      end
    end
    grads = '{' .. table.concat(parts, ',') .. '}'
  end
  return ('{"i":%d,"name":%s,"ok":true,"outputs":[%s],"grads":%s}'):format(i, json_string(case.name),
    table.concat(outs, ','), grads)
end

for i = first, #manifest.cases do
  local case = manifest.cases[i]
  local ok, line = pcall(run_case, i, case)
  if not ok then
    line = ('{"i":%d,"name":%s,"ok":false,"error":%s}'):format(i, json_string(case.name),
      json_string('driver: ' .. tostring(line)))
  end
  results:write(line, '\n')
  results:flush()
  -- Each case is independent: reset the modes a failing case may have left behind.
  cfx.set_grad_enabled(true)
end
results:close()
