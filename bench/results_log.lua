-- results_log.lua: the cost of cfx.results, for bench/results_log.py.
--
--   results_log.lua DIR STEPS REPEATS RUNS ROWS PREDS
--
-- Prints `name<TAB>best<TAB>median` lines (microseconds unless the name says otherwise):
--   append_us        run:scalars of one 6-scalar row (step, epoch, loss, lr,
--                    images_per_s, grad_norm), flush_every = 10 s: STEPS rows per timing
--   append_flush_us  the same row with flush_every = 0: a durable file after every step
--   big_flush_ms     log:flush() of a file of RUNS runs x ROWS train rows + an eval
--                    table of 20 rows + PREDS predictions (score, label, generator) each
--   big_open_ms      cfx.results.open of that file (read-only: it loads everything)
--   big_file_mb      its size (best = median)
local cfx = require 'cfx'

local BENCH_DIR = (arg and arg[0] or ''):match('^(.*)/') or '.'
local now = dofile(BENCH_DIR .. '/clock.lua')() -- wall clock (bench/clock.lua)

local dir, steps, repeats = arg[1], tonumber(arg[2]) or 200000, tonumber(arg[3]) or 5
local nruns, nrows, npreds = tonumber(arg[4]) or 50, tonumber(arg[5]) or 3000, tonumber(arg[6]) or 10000

local function stats(times)
  table.sort(times)
  return times[1], times[math.floor((#times + 1) / 2)]
end

local function out(name, best, med) io.stdout:write(('%s\t%.4f\t%.4f\n'):format(name, best, med)) end

local function row(s)
  return { step = s, epoch = math.floor(s / 1000), loss = 1 / s, lr = 2e-5 * s / steps, images_per_s = 812.5,
    grad_norm = 0.25 + 1 / s }
end

local function time_appends(flush_every, n)
  local times = {}
  for rep = 1, repeats do
    local path = ('%s/append_%s_%d.h5'):format(dir, tostring(flush_every), rep)
    os.remove(path)
    local log = cfx.results.open(path, { flush_every = flush_every })
    local run = log:run('r', { config = { steps = n }, status = 'running' })
    run:scalars('train', row(1)) -- the first row makes the table
    collectgarbage()
    local t0 = now()
    for s = 2, n + 1 do run:scalars('train', row(s)) end
    times[rep] = (now() - t0) / n * 1e6
    log:close()
    os.remove(path)
  end
  return stats(times)
end

out('append_us', time_appends(10, steps))
out('append_flush_us', time_appends(0, math.max(200, math.floor(steps / 500))))

-- the big file
local path = dir .. '/big.h5'
os.remove(path)
local log = cfx.results.open(path, { flush_every = false })
local score = cfx.rand(npreds)
local label = cfx.rand(npreds):gt(0.5):to('uint8')
local gen = cfx.randint(0, 50, { npreds }):int()
for r = 1, nruns do
  local run = log:run(('k=%d,subset=%d'):format(r, r % 10), { config = { k = r, lr = 2e-5, steps = nrows },
    experiment = 'bench', preset = 'cpu', seed = r, status = 'done' })
  for s = 1, nrows do run:scalars('train', row(s)) end
  local rows = {}
  for g = 1, 20 do
    rows[g] = { generator = 'gen' .. g, architecture = 'GAN', n_real = 500, n_fake = 500, ap = 0.9, acc = 0.8,
      acc_real = 0.9, acc_fake = 0.7, auroc = 0.93 }
  end
  run:table('eval/synth', rows, { mean_ap = 0.9, mean_acc = 0.8 })
  run:arrays('predictions/synth', { score = score, label = label, generator = gen })
end
log:flush()
local times = {}
for rep = 1, repeats do
  log:run('k=1,subset=1'):set { touched = rep } -- one change, then a whole flush
  local t0 = now()
  log:flush()
  times[rep] = (now() - t0) * 1e3
end
out('big_flush_ms', stats(times))
log:close()
times = {}
for rep = 1, repeats do
  local t0 = now()
  local l = cfx.results.open(path, { readonly = true })
  times[rep] = (now() - t0) * 1e3
  l:close()
end
out('big_open_ms', stats(times))
local f = io.open(path, 'rb')
local size = f:seek('end') / 2 ^ 20
f:close()
out('big_file_mb', size, size)
os.remove(path)
