-- results_kill_writer.lua PATH STATE_DIR RUNS STEPS: the writer that
-- test_results_kill.py kills.  It behaves like the experiment runner: for each run not
-- done yet it resumes from its checkpoint (STATE_DIR/<run>.ckpt, written atomically;
-- the results log is flushed before each checkpoint so that the rows up to it are on
-- disk), drops the rows logged after the checkpoint (run:truncate), logs one row per
-- step (about 1 ms of busy work each), flushes every 20 ms, and at the end of a run
-- writes an eval table and prediction arrays and sets status 'done'.
--
-- On start it also checks, as cfx sees it, every run in the file: the train rows are
-- steps 1..m once each with the values this script logs, and a run marked done is
-- complete.  Prints 'opened N', 'checked N', 'done RUN' and 'finished' (flushed).
local cfx = require 'cfx'
local path, state, nruns, nsteps = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local CHECKPOINT_EVERY, NPRED = 25, 2000

local function say(s)
  io.stdout:write(s, '\n')
  io.stdout:flush()
end

local function loss(r, s) return 1 / (s + r) end
local function lr(s) return s * 1e-4 end

local function read_ckpt(id)
  local f = io.open(('%s/%s.ckpt'):format(state, id))
  if not f then return 0 end
  local k = tonumber(f:read('*l'))
  f:close()
  return k
end

local function write_ckpt(id, step)
  local p = ('%s/%s.ckpt'):format(state, id)
  local f = assert(io.open(p .. '.tmp', 'w'))
  f:write(step, '\n')
  f:close()
  assert(os.rename(p .. '.tmp', p))
end

local function bad(msg)
  say('BAD ' .. msg)
  os.exit(3)
end

local log = cfx.results.open(path, { flush_every = 0.02 })
say('opened ' .. #log:runs())

-- what cfx reads back after the previous writer was killed
for _, id in ipairs(log:runs()) do
  local run = log:run(id)
  local r = tonumber(id:match('^run(%d+)$'))
  local cols = run:read('train')
  local m = cols and #cols.step or 0
  for s = 1, m do
    if cols.step[s] ~= s then bad(('%s: row %d has step %s'):format(id, s, tostring(cols.step[s]))) end
    if cols.loss[s] ~= loss(r, s) or cols.lr[s] ~= lr(s) or cols.phase[s] ~= (s <= 20 and 'warmup' or 'main') then
      bad(('%s: row %d has other values'):format(id, s))
    end
  end
  if run:get().status == 'done' then
    if m ~= nsteps then bad(('%s is done with %d rows'):format(id, m)) end
    if run:kind('eval/synth') ~= 'table' or run:kind('predictions/synth/score') ~= 'array' then
      bad(id .. ' is done without its eval table or predictions')
    end
  end
end
say('checked ' .. #log:runs())

for r = 1, nruns do
  local id = ('run%03d'):format(r)
  local run = log:run(id)
  if run:get().status ~= 'done' then
    local k = read_ckpt(id)
    run:set { config = { run = r, steps = nsteps }, experiment = 'kill_test', seed = r, status = 'running',
      resumed_from = k }
    run:truncate('train', 'step', k)
    for s = k + 1, nsteps do
      local t0 = os.clock()
      while os.clock() - t0 < 0.001 do end -- the "training step"
      run:scalars('train', { step = s, epoch = math.floor(s / 100), loss = loss(r, s), lr = lr(s),
        images_per_s = 100 + r, phase = s <= 20 and 'warmup' or 'main' })
      if s % CHECKPOINT_EVERY == 0 then
        log:flush()
        write_ckpt(id, s)
      end
    end
    local rows = {}
    for g = 1, 3 do
      rows[g] = { generator = 'g' .. g, architecture = g == 1 and 'GAN' or 'LatDiff', n_real = 100, n_fake = 10 * g,
        ap = r / 100 + g / 1000, acc = 0.5, acc_real = 1, acc_fake = 0, auroc = 0.75 }
    end
    run:table('eval/synth', rows, { mean_ap = r / 100 + 0.002 })
    local score, label, gen = {}, {}, {}
    for i = 0, NPRED - 1 do
      score[i + 1], label[i + 1], gen[i + 1] = (i % 97) / 97, i % 2, i % 5
    end
    run:arrays('predictions/synth', { score = cfx.tensor(score, { dtype = 'float32' }),
      label = cfx.tensor(label, { dtype = 'uint8' }), generator = cfx.tensor(gen, { dtype = 'int32' }) })
    run:set { status = 'done' } -- flushes
    say('done ' .. id)
  end
end
log:close()
say('finished')
