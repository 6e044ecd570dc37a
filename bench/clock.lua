-- clock.lua: the clock of the benchmarks' Lua halves (dofile'd from bench/*.lua).
--
--   local now = dofile(BENCH_DIR .. '/clock.lua')()        -- wall clock, seconds
--   local now = dofile(BENCH_DIR .. '/clock.lua')('cpu')   -- this process's CPU time
--
-- cdefs.lua mirrors cfx's headers only and has no clock; os.clock is the CPU time of
-- all threads and too coarse, so this declares clock_gettime under a name that cannot
-- clash (CLOCK_MONOTONIC, or CLOCK_PROCESS_CPUTIME_ID for 'cpu').
local ffi = require 'ffi'
pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } cfx_bench_timespec;
int clock_gettime(int clk, cfx_bench_timespec *ts);
]])
return function(kind)
  local ts = ffi.new('cfx_bench_timespec')
  local id = kind == 'cpu' and 2 or 1
  return function()
    ffi.C.clock_gettime(id, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
end
