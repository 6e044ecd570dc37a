-- train_step.lua: one training step of a cfx model at a time, for bench/train_step.py.
--
--   train_step.lua MODEL BATCH PRECISION
--
-- MODEL is a cfx.models name (vit_small_patch16_224, vit_micro_patch8_64), PRECISION
-- fp32 or bf16 (autocast on the CPU).  One step is what cfx.train.fit does per batch,
-- without the loader: forward, BCE-with-logits on the one logit (the logits cast to
-- float32), backward, gradient clipping at global norm 1.0, an AdamW step (lr 1e-4,
-- weight decay 0.05; none on 1-d parameters, pos_embed and cls_token, as
-- cfx.optim.AdamW's filter_bias_and_bn) and zero_grad.  The input batch is random,
-- made once.
--
-- The script builds the model, prints `ready`, then reads commands from stdin, one per
-- line, so that bench/train_step.py can interleave its steps with PyTorch's:
--   step   run one step; prints `ms<TAB>loss<TAB>collections<TAB>faults`: wall-clock
--          milliseconds of the step, its loss, cfx.memory().collections so far, and
--          the minor page faults of the process during the step
--   quit   (or end of input) exit
-- The thread count comes from CFX_THREADS (bench/train_step.py sets it).
local cfx = require 'cfx'
local ffi = require 'ffi'

-- Page faults from getrusage (Linux's struct rusage: two timevals, then 14 longs).
ffi.cdef [[
typedef struct {
  long utime[2]; long stime[2];
  long maxrss, ixrss, idrss, isrss, minflt, majflt, rest[8];
} cfx_bench_rusage;
int getrusage(int who, cfx_bench_rusage *usage);
]]
local BENCH_DIR = (arg and arg[0] or ''):match('^(.*)/') or '.'
local now = dofile(BENCH_DIR .. '/clock.lua')() -- wall clock (bench/clock.lua)
local ru = ffi.new('cfx_bench_rusage')
local function faults()
  ffi.C.getrusage(0, ru) -- RUSAGE_SELF
  return tonumber(ru.minflt)
end

local name, batch, precision = arg[1], tonumber(arg[2]), arg[3]
if not (name and batch and (precision == 'fp32' or precision == 'bf16')) then
  io.stderr:write('usage: train_step.lua MODEL BATCH fp32|bf16 (then "step" lines on stdin)\n')
  os.exit(2)
end

cfx.manual_seed(0)
local model = cfx.models.create(name)
model:train()
local opt = cfx.optim.AdamW { params = model, lr = 1e-4, weight_decay = 0.05 }
local size = cfx.models.default_img_size(name)
local x = cfx.randn(batch, 3, size, size)
local y = cfx.rand(batch, 1):lt(0.5):float()

local function forward_loss()
  return cfx.F.binary_cross_entropy_with_logits(model(x):float(), y)
end

local function step()
  local loss
  if precision == 'bf16' then
    loss = cfx.autocast({ device = 'cpu', dtype = 'bfloat16' }, forward_loss)
  else
    loss = forward_loss()
  end
  loss:backward()
  cfx.optim.clip_grad_norm(opt, 1.0)
  opt:step()
  opt:zero_grad()
  return loss:item()
end

io.write('ready\n')
io.flush()
for line in io.lines() do
  if line == 'quit' then break end
  if line ~= 'step' then
    io.stderr:write(('train_step.lua: unknown command %q (expected step or quit)\n'):format(line))
    os.exit(2)
  end
  local f0, t0 = faults(), now()
  local loss = step()
  local ms = (now() - t0) * 1e3
  io.write(('%.3f\t%.6f\t%d\t%d\n'):format(ms, loss, cfx.memory().collections, faults() - f0))
  io.flush()
end
