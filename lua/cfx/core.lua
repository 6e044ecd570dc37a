-- core.lua: loads libcfx and holds what every Lua module of cfx shares: the C
-- namespace, error checking that points at the caller's line, dtype and device
-- names, and the collector pressure that keeps Lua's GC in step with tensor memory.
local ffi = require 'cfx.cdefs'

local M = {}

-- ---- finding libcfx -------------------------------------------------------------------
-- In order: $CFX_LIB; the path the cfx program was built with (cfx.host); the build
-- tree next to this file (<root>/lua/cfx/core.lua -> <root>/build/libcfx.so); the
-- system's library search path.
local function exists(path)
  local f = io.open(path, 'rb')
  if f then f:close() end
  return f ~= nil
end

local function candidates()
  local list = {}
  local env = os.getenv('CFX_LIB')
  if env and env ~= '' then list[#list + 1] = env end
  local host = package.loaded['cfx.host']
  if type(host) == 'table' and host.lib_path then list[#list + 1] = host.lib_path end
  local here = debug.getinfo(1, 'S').source:match('^@(.*)/lua/cfx/core%.lua$')
  if here then list[#list + 1] = here .. '/build/libcfx.so' end
  return list
end

local function load_library()
  local tried = {}
  for _, path in ipairs(candidates()) do
    if exists(path) then return ffi.load(path), path end
    tried[#tried + 1] = path
  end
  local ok, lib = pcall(ffi.load, 'cfx')
  if ok then return lib, 'libcfx.so' end
  error('cfx: cannot find libcfx.so (tried ' .. table.concat(tried, ', ') ..
    ' and the system library path); build it with `make build` or set CFX_LIB', 0)
end

M.C, M.lib_path = load_library()
M.ffi = ffi
local C = M.C

-- ---- errors ---------------------------------------------------------------------------
function M.last_error()
  return ffi.string(C.cfx_last_error())
end

-- raise(msg): error() located at the first caller outside the library, so that a
-- message points at the user's line however deep in cfx it was detected.
local lib_prefix = debug.getinfo(1, 'S').source:match('^(@.*/)core%.lua$') or '@lua/cfx/'
function M.raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, 'S')
    if info == nil then
      level = 2
      break
    end
    if info.what ~= 'C' and info.source:sub(1, #lib_prefix) ~= lib_prefix then break end
    level = level + 1
  end
  error(msg, level)
end
local raise = M.raise

-- check(rc): raise the C error message when rc is not 0.
function M.check(rc)
  if rc ~= 0 then raise(ffi.string(C.cfx_last_error())) end
end

-- ---- dtypes and devices -------------------------------------------------------------
M.dtype_names = { [0] = 'uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32',
  'float64', 'bool', 'bfloat16' }
M.dtype_codes = {}
for code = 0, 9 do M.dtype_codes[M.dtype_names[code]] = code end
for alias, name in pairs { float = 'float32', double = 'float64', half = 'float16', long = 'int64',
  int = 'int32', short = 'int16', byte = 'uint8', char = 'int8', bf16 = 'bfloat16',
  fp16 = 'float16', fp32 = 'float32', fp64 = 'float64' } do
  M.dtype_codes[alias] = M.dtype_codes[name]
end
M.float_dtypes = { float16 = true, float32 = true, float64 = true, bfloat16 = true }

-- dtype code from a name.
function M.dtype_code(name)
  local code = M.dtype_codes[name]
  if code == nil then
    raise(("unknown dtype %s (expected one of uint8, int8, int16, int32, int64, float16, " ..
      "bfloat16, float32, float64, bool)"):format(tostring(name)))
  end
  return code
end

function M.device_code(dev)
  if dev == nil or dev == 'cpu' then return -1 end
  if dev == 'cuda' then return 0 end
  if type(dev) == 'string' then
    local i = dev:match('^cuda:(%d+)$')
    if i then return tonumber(i) end
  end
  raise(("unknown device %s (expected 'cpu', 'cuda' or 'cuda:N')"):format(tostring(dev)))
end

function M.device_name(code)
  if code < 0 then return 'cpu' end
  return 'cuda:' .. code
end

-- ---- collector pressure -----------------------------------------------------------------
-- Lua sees a tensor as a few bytes, so on its own it would let gigabytes of dead
-- tensors pile up.  As Torch7 did: once libtorch's live CPU bytes pass a soft limit,
-- run a full collection, then set the limit to 1.4x what survived (never below the
-- floor).  Called after every tensor allocation; the common path is one C call.
--
-- The floor is 32 MB, not more: until the first collection every tensor lands in
-- memory the process has never touched, and each 4 KB page of it costs a page fault.
-- With a 256 MB floor a training step of vit_micro_patch8_64 at batch 8 (30 ms, one
-- thread, 2-vCPU VM) took 6,400 faults and about 15 ms of system time in each of the
-- first 11 steps; with 32 MB, in the first 2 (docs/performance.md, "Training step").
-- A full collection costs 0.15 ms with cfx's own 0.7 MB of Lua heap, but about 1 ms
-- per MB of tables and strings a script keeps (27 ms at 27 MB), so the limit also
-- leaves room for 16x the Lua heap in tensors: such a script does not collect after
-- every few small tensors.
local floor_bytes = 32 * 2 ^ 20
local soft_limit = floor_bytes
local collections = 0

local function next_limit(live)
  return math.max(floor_bytes, live * 1.4, live + 16 * 1024 * collectgarbage('count'))
end

function M.pressure()
  if C.cfx_memory_live_bytes() > soft_limit then
    collectgarbage('collect')
    collections = collections + 1
    soft_limit = next_limit(tonumber(C.cfx_memory_live_bytes()))
  end
end

function M.memory()
  return {
    live = tonumber(C.cfx_memory_live_bytes()),
    peak = tonumber(C.cfx_memory_peak_bytes()),
    soft_limit = soft_limit,
    collections = collections,
    lua = collectgarbage('count') * 1024,
  }
end

-- Set the floor of the soft limit (bytes); returns the previous one.
function M.set_memory_floor(bytes)
  local prev = floor_bytes
  floor_bytes = bytes
  soft_limit = next_limit(tonumber(C.cfx_memory_live_bytes()))
  return prev
end

-- LuaJIT has no table.pack.
local function pack(...) return { n = select('#', ...), ... } end

-- Run fn(...) with grad mode set to `enabled` (0 or 1), restoring the previous mode
-- even on error; returns fn's results.  cfx.no_grad, cfx.enable_grad and the nn/optim
-- parameter updates go through it.
function M.with_grad_mode(enabled, fn, ...)
  if type(fn) ~= 'function' then
    M.raise(('expected a function, got %s'):format(type(fn)))
  end
  local prev = C.cfx_grad_set_enabled(enabled)
  local r = pack(pcall(fn, ...))
  C.cfx_grad_set_enabled(prev)
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

return M
