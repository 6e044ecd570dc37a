-- core.lua: layer 1 of the library (see init.lua): loads libcfx and holds what every
-- Lua module of cfx shares: the C namespace, errors that point at the caller's line
-- (raise) and the one check of C return codes (check), the options checker, pack, dtype
-- and device names, the cfx program's host (clock, signals), and the collector pressure
-- that keeps Lua's GC in step with tensor memory.  It requires nothing of cfx but cdefs.
local ffi = require 'cfx.cdefs'

local M = {}

-- The one reader of package.loaded['cfx.host'], the cfx program's module (version,
-- lib_path, exe, signal, clear_signal, clock; core/app/main.c): the table, or nil outside
-- the cfx program (plain luajit, busted).
function M.host()
  local h = package.loaded['cfx.host']
  if type(h) == 'table' then return h end
  return nil
end

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
  local host = M.host()
  if host and host.lib_path then list[#list + 1] = host.lib_path end
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
-- message points at the user's line however deep in cfx it was detected (there is no
-- level argument: raise finds the level itself).
--
-- Expected errors.  What raise throws (and so check, every C error) is an expected error:
-- bad input, a missing or damaged file, a full disk, a value out of range; not a bug.
-- The error value stays a plain string (callers pcall and match it), and raise records
-- it in expected_errors (the last 64 such strings, mapped to the line to show the user:
-- the string without a position inside cfx's own code).  The cfx program's message
-- handler (core/app/main.c) looks an uncaught error up there: an expected one prints as
-- that one line with no stack traceback, anything else (a bug) with its traceback, and
-- every error with its traceback under CFX_TRACEBACK=1.  An expected error caught and
-- raised again unchanged (error(e, 0)) stays expected; a new message made from it
-- (raise('...: ' .. e), or M.expected(s)) is recorded again.
local lib_prefix = debug.getinfo(1, 'S').source:match('^(@.*/)core%.lua$') or '@lua/cfx/'
-- cfx's own code: the library, and the cfx program's chunk that runs `cfx COMMAND`
local function in_library(source)
  return source:sub(1, #lib_prefix) == lib_prefix or source == '=(cfx command)'
end
local expected_errors, expected_ring, expected_next = {}, {}, 0
M.expected_errors = expected_errors

-- expected(s [, shown]) -> s, recorded as an expected error (shown: the line the cfx
-- program prints for it, default s): for error(core.expected(msg), 0) where raise's
-- position is not wanted.
function M.expected(s, shown)
  if type(s) ~= 'string' then return s end
  expected_next = expected_next % 64 + 1
  local old = expected_ring[expected_next]
  if old ~= nil and old ~= s then expected_errors[old] = nil end
  expected_ring[expected_next] = s
  expected_errors[s] = shown or s
  return s
end

-- is_expected(e) -> whether e is an expected error raised by cfx (see above).
function M.is_expected(e) return type(e) == 'string' and expected_errors[e] ~= nil end

function M.raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, 'S')
    if info == nil then
      level = 2
      break
    end
    if info.what ~= 'C' and not in_library(info.source) then break end
    level = level + 1
  end
  if type(msg) ~= 'string' and type(msg) ~= 'number' then error(msg, level) end
  msg = tostring(msg)
  -- the position error(msg, level) would prefix (luaL_where), made here so that the
  -- string thrown is the one recorded
  local info = debug.getinfo(level, 'Sl')
  local where = info and info.currentline and info.currentline > 0 and
      (info.short_src .. ':' .. info.currentline .. ': ') or ''
  local in_lib = info and in_library(info.source)
  error(M.expected(where .. msg, in_lib and msg or nil), 0)
end
local raise = M.raise

-- check(rc [, what]): the one check of a C return code.  Nothing when rc is 0; else
-- raise cfx_last_error()'s message, prefixed with "what: " when what is given
-- (check(C.cfx_store_open(path, box), 'cfx.data.open') -> "cfx.data.open: <why>").
function M.check(rc, what)
  if rc ~= 0 then
    local msg = ffi.string(C.cfx_last_error())
    raise(what and (what .. ': ' .. msg) or msg)
  end
end

-- The exit status of a run stopped by SIGUSR1/SIGTERM after its checkpoint (75,
-- EX_TEMPFAIL; CFX_EXIT_REQUEUE of cfx/common.h): what the cfx program and the
-- experiment runner exit with, and what a Slurm batch script requeues on.
M.EXIT_REQUEUE = C.CFX_EXIT_REQUEUE

M.version = ffi.string(C.cfx_version())

-- ---- options ----------------------------------------------------------------------------
-- options(opts, defaults, fname) -> a new table: defaults, overridden by opts (nil: all
-- defaults).  The one checker of option tables, so that a typo surfaces as an error:
--   * every key of opts must be a key of defaults; an unknown key is an error naming it,
--     fname (who asks: 'cfx.data.loader') and the known keys;
--   * a key that needs a value or has no useful default gets `false` as its default (a
--     Lua table cannot hold nil): the caller tests `if o.key then` or checks the type;
--   * ['?key'] = true declares an optional key with no default: absent, o.key is nil;
--     for keys where false would be a value of its own, or where nil means "not given"
--     (a dtype, a stride).
local function options(opts, defaults, fname)
  local r = {}
  for k, v in pairs(defaults) do r[k] = v end
  if opts == nil then return r end
  if type(opts) ~= 'table' then
    raise(('%s: options must be a table, got %s'):format(fname, type(opts)))
  end
  for k, v in pairs(opts) do
    if defaults[k] == nil and not (type(k) == 'string' and defaults['?' .. k]) then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = (name:gsub('^%?', '')) end
      table.sort(known)
      raise(("%s: unknown option '%s' (known: %s)"):format(fname, tostring(k),
        table.concat(known, ', ')))
    end
    r[k] = v
  end
  return r
end
M.options = options

-- pack(...) -> {n = select('#', ...), ...}: LuaJIT has no table.pack.
local function pack(...) return { n = select('#', ...), ... } end
M.pack = pack

-- copy(t): a deep copy of a table of plain values (configurations, grid points).
function M.copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = type(v) == 'table' and M.copy(v) or v end
  return r
end

-- ---- the host: the cfx program's clock and signals ------------------------------------
-- clock() -> seconds of a monotonic wall clock (cfx_clock: the host's clock too), for
-- timing; os.clock is CPU time, os.time whole seconds.
function M.clock() return C.cfx_clock() end

-- signal() -> the pending 'USR1' or 'TERM' under the cfx program (Slurm sends them before
-- a time limit or a preemption), else nil.  It stays pending until clear_signal(), which
-- returns what it cleared.  Outside the cfx program no signal is ever pending.
function M.signal()
  local h = M.host()
  return h and h.signal and h.signal() or nil
end
function M.clear_signal()
  local h = M.host()
  return h and h.clear_signal and h.clear_signal() or nil
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
-- The floor is 32 MB, not more: until the first collection every tensor lands in pages
-- the process has never touched (page faults); and the limit leaves room for 16x the Lua
-- heap, since a full collection's cost grows with the tables a script keeps.  The
-- measurements behind both: docs/performance.md, "Training step", Memory.
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
