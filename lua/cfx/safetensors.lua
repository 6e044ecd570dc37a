-- safetensors.lua: cfx.safetensors, weights interchange with PyTorch/timm
-- (core/src/safetensors.c: mmap'd, strictly checked reader; atomic writer).
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

-- safetensors dtype code <-> cfx dtype name (the file's other dtypes have no tensor type)
local st_to_cfx = { [0] = 'float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool' }
local cfx_to_st = {}
for code, name in pairs(st_to_cfx) do cfx_to_st[name] = code end

-- cfx.safetensors.load(path) -> {name = tensor}, {metadata key = value}.  Tensors are
-- CPU copies (the file is unmapped afterwards).
function M.load(path)
  if type(path) ~= 'string' then raise('safetensors.load: expected a path, got ' .. type(path)) end
  local box = ffi.new('cfx_safetensors*[1]')
  check(C.cfx_safetensors_open(path, box))
  local st = ffi.gc(box[0], C.cfx_safetensors_close)
  local out, meta = {}, {}
  local nbytes = ffi.new('int64_t[1]')
  for i = 0, C.cfx_safetensors_count(st) - 1 do
    local name = ffi.string(C.cfx_safetensors_name(st, i))
    local dt = st_to_cfx[C.cfx_safetensors_dtype(st, i)]
    if not dt then
      C.cfx_safetensors_close(ffi.gc(st, nil))
      raise(('safetensors.load: %s: tensor %s has dtype %s, which cfx tensors do not support'):format(path, name,
        ffi.string(C.cfx_safetensors_dtype_name(C.cfx_safetensors_dtype(st, i)))))
    end
    local nd, shp = C.cfx_safetensors_ndim(st, i), C.cfx_safetensors_shape(st, i)
    local shape = {}
    for d = 1, nd do shape[d] = tonumber(shp[d - 1]) end
    out[name] = tensor.from_buffer(C.cfx_safetensors_data(st, i, nbytes), shape, dt)
  end
  for i = 0, C.cfx_safetensors_num_metadata(st) - 1 do
    meta[ffi.string(C.cfx_safetensors_metadata_key(st, i))] = ffi.string(C.cfx_safetensors_metadata_value(st, i))
  end
  C.cfx_safetensors_close(ffi.gc(st, nil))
  return out, meta
end

-- cfx.safetensors.save(path, {name = tensor} [, {key = value}]): tensors in name order,
-- written to a temporary file, fsync'd and renamed into place.
function M.save(path, tensors, metadata)
  if type(path) ~= 'string' or type(tensors) ~= 'table' then
    raise('safetensors.save: expected (path, {name = tensor} [, metadata])')
  end
  local names = {}
  for k in pairs(tensors) do names[#names + 1] = k end
  table.sort(names)
  local n = #names
  local c_names = ffi.new('const char*[?]', math.max(n, 1))
  local dtypes = ffi.new('int32_t[?]', math.max(n, 1))
  local ndims = ffi.new('int32_t[?]', math.max(n, 1))
  local shapes = ffi.new('const int64_t*[?]', math.max(n, 1))
  local datas = ffi.new('const void*[?]', math.max(n, 1))
  local keep = {}
  for i, name in ipairs(names) do
    local t = tensors[name]
    if type(name) ~= 'string' or not tensor.is_tensor(t) then
      raise(('safetensors.save: entry %s is not a named tensor'):format(tostring(name)))
    end
    local code = cfx_to_st[t:dtype()]
    t = t:detach():cpu():contiguous()
    local shp = t:shape()
    local arr = ffi.new('int64_t[?]', math.max(#shp, 1))
    for d = 1, #shp do arr[d - 1] = shp[d] end
    keep[#keep + 1], keep[#keep + 2], keep[#keep + 3] = t, arr, name
    c_names[i - 1], dtypes[i - 1], ndims[i - 1], shapes[i - 1] = name, code, #shp, arr
    datas[i - 1] = t:numel() > 0 and t:data_ptr() or nil
  end
  local keys, vals, nmeta = {}, {}, 0
  for k, v in pairs(metadata or {}) do
    nmeta = nmeta + 1
    keys[nmeta], vals[nmeta] = tostring(k), tostring(v)
  end
  local ck = ffi.new('const char*[?]', math.max(nmeta, 1))
  local cv = ffi.new('const char*[?]', math.max(nmeta, 1))
  for i = 1, nmeta do ck[i - 1], cv[i - 1] = keys[i], vals[i] end
  check(C.cfx_safetensors_write(path, n, c_names, dtypes, shapes, ndims, datas, nmeta, ck, cv))
  local _ = keep
end

return M
