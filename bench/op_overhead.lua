-- op_overhead.lua: per-call cost of tiny tensor ops from Lua, for bench/op_overhead.py.
--
--   op_overhead.lua ITERS REPEATS
--
-- Runs each op ITERS times, REPEATS times over, on one libtorch thread, and prints one
-- line per op: `name<TAB>best ns per op<TAB>median ns per op`.  The ops match the
-- Python side of op_overhead.py statement for statement.
local cfx = require 'cfx'
local ffi = require 'ffi'

local BENCH_DIR = (arg and arg[0] or ''):match('^(.*)/') or '.'
local now = dofile(BENCH_DIR .. '/clock.lua')() -- wall clock (bench/clock.lua)

local iters = tonumber(arg[1]) or 200000
local repeats = tonumber(arg[2]) or 3
assert(cfx.threads(1) == 1, 'could not set one thread')

local a, b = cfx.randn(4, 4), cfx.randn(4, 4)
local a1, b1 = cfx.randn(1), cfx.randn(1)
local acc = cfx.zeros(4, 4)

-- Each body does exactly what its Python twin does; results are kept in a local so
-- nothing is optimised away (LuaJIT cannot drop FFI calls anyway).
local ops = {
  { 'c = a + b (4x4)', function(n) local c for _ = 1, n do c = a + b end return c end },
  { 'c = a + b (1 element)', function(n) local c for _ = 1, n do c = a1 + b1 end return c end },
  { 'a:add_(b) (4x4, in place)', function(n) for _ = 1, n do acc:add_(b) end return acc end },
  { 's = t:sum() (4x4)', function(n) local s for _ = 1, n do s = a:sum() end return s end },
  { 'c = a:matmul(b) (4x4)', function(n) local c for _ = 1, n do c = a:matmul(b) end return c end },
  -- Not an op a user writes: the C ABI alone (no Lua object, no finalizer, no collector
  -- pressure), to split the cost of `a + b` between libtorch + the C shim and Lua.
  { 'C ABI only: cfx_tensor_add + cfx_tensor_free (4x4)', function(n)
    local C, out, ha, hb = cfx.C, ffi.new('cfx_tensor*[1]'), a._h, b._h
    for _ = 1, n do
      C.cfx_tensor_add(ha, hb, 1, out)
      C.cfx_tensor_free(out[0])
    end
  end },
}

for _, op in ipairs(ops) do
  op[2](math.min(iters, 20000))      -- warm up: JIT traces, allocator caches
  collectgarbage()
  local times = {}
  for r = 1, repeats do
    local t0 = now()
    op[2](iters)
    times[r] = (now() - t0) / iters * 1e9
    acc:zero_()
  end
  table.sort(times)
  io.write(('%s\t%.1f\t%.1f\n'):format(op[1], times[1], times[math.floor((repeats + 1) / 2)]))
end
