-- image_driver.lua: the Lua half of tests/reference/test_image.py.
--
-- Usage: image_driver.lua MANIFEST RESULTS [FIRST]
--
-- MANIFEST is a Lua file written by test_image.py that returns
--   { dir = '/tmp/..', jobs = { { id = N, code = [[..]], files = { 'path', .. },
--                                 images = { { file=, h=, w= }, .. } }, .. } }
-- Each job's code is a Lua chunk run under pcall in an environment holding cfx, ffi,
-- file(i) (the bytes of files[i], a string), image(i) (images[i]: raw RGB bytes as a
-- uint8 tensor {h, w, 3}) and the globals.  What it returns goes to RESULTS, one JSON
-- object per line and job, flushed as it goes:
--   {"id":N, "ok":true, "out":[..]}   or   {"id":N, "ok":false, "error":"message"}
-- A tensor is written to DIR/r_N_K.bin and encoded as {"tensor":"path", "shape":[..],
-- "dtype":..}; a string as {"bytes":"path"}; numbers, booleans and tables as JSON.
-- Jobs before position FIRST (default 1) are skipped: test_image.py restarts the
-- driver after the job that killed it, if one does.
local cfx = require 'cfx'
local ffi = require 'ffi'

local manifest_path, results_path, first = arg[1], arg[2], tonumber(arg[3] or '1')
if not manifest_path or not results_path then
  io.stderr:write('usage: image_driver.lua MANIFEST RESULTS\n')
  os.exit(2)
end
local manifest = dofile(manifest_path)

local function read_file(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('*a')
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, 'wb'))
  f:write(s)
  f:close()
end

local function tensor_bytes(t)
  t = t:contiguous()
  local n = t:numel() * t:element_size()
  if n == 0 then return '' end
  local buf = ffi.new('uint8_t[?]', n)
  t:copy_to(buf, n)
  return ffi.string(buf, n)
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return ('\\u%04x'):format(c:byte())
  end) .. '"'
end

local encode
local nout = 0
local function encode_value(v, id)
  local tv = type(v)
  if tv == 'nil' then return 'null' end
  if tv == 'boolean' then return tostring(v) end
  if tv == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return json_string(tostring(v)) end
    return ('%.17g'):format(v)
  end
  if tv == 'string' then
    nout = nout + 1
    local path = ('%s/r_%d_%d.bin'):format(manifest.dir, id, nout)
    write_file(path, v)
    return '{"bytes":' .. json_string(path) .. '}'
  end
  if cfx.is_tensor(v) then
    nout = nout + 1
    local path = ('%s/r_%d_%d.bin'):format(manifest.dir, id, nout)
    write_file(path, tensor_bytes(v))
    return ('{"tensor":%s,"shape":[%s],"dtype":"%s"}'):format(json_string(path), table.concat(v:shape(), ','),
      v:dtype())
  end
  if tv == 'table' then return encode(v, id) end
  if tv == 'cdata' then return ('%.17g'):format(tonumber(v)) end -- a uint64 seed, say
  return json_string(tostring(v))
end

-- Tables: an array when keys are 1..n, else an object with string keys (strings are
-- JSON strings here, not files: only top-level results and array items are outputs).
function encode(t, id)
  local n = #t
  local is_array = true
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k > n or k % 1 ~= 0 then is_array = false end
  end
  local parts = {}
  if is_array then
    for i = 1, n do parts[i] = encode_value(t[i], id) end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    local s = type(v) == 'string' and json_string(v) or encode_value(v, id)
    parts[#parts + 1] = json_string(k) .. ':' .. s
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local results = assert(io.open(results_path, 'a'))
for pos, job in ipairs(manifest.jobs) do
  if pos < first then goto continue end
  local env = setmetatable({
    cfx = cfx, ffi = ffi,
    file = function(i) return read_file(job.files[i]) end,
    image = function(i)
      local im = job.images[i]
      return cfx.from_buffer(read_file(im.file), { im.h, im.w, 3 }, 'uint8')
    end,
  }, { __index = _G })
  local fn, lerr = loadstring(job.code, '=job' .. job.id)
  local line
  if not fn then
    line = ('{"id":%d,"ok":false,"error":%s}'):format(job.id, json_string('syntax: ' .. lerr))
  else
    setfenv(fn, env)
    local res = { pcall(fn) }
    if res[1] then
      local outs = {}
      for i = 2, table.maxn(res) do outs[#outs + 1] = encode_value(res[i], job.id) end
      line = ('{"id":%d,"ok":true,"out":[%s]}'):format(job.id, table.concat(outs, ','))
    else
      line = ('{"id":%d,"ok":false,"error":%s}'):format(job.id, json_string(tostring(res[2])))
    end
  end
  results:write(line, '\n')
  results:flush()
  ::continue::
end
results:close()
