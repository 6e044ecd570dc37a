-- train.lua: cfx.train.fit, the training loop of a one-logit real/fake detector.
-- See docs/training.md.
--
--   local r = cfx.train.fit{model = model, loader = loader, steps = 3000,
--     optim = cfx.optim.AdamW{params = model, lr = 2e-5, weight_decay = 1e-2},
--     schedule = cfx.optim.cosine{warmup = 0.2, total = 3000}, clip = 1.0,
--     precision = 'bf16', checkpoint = {dir = 'runs/a/ckpt', every = 500}}
--
-- Each optimizer step draws `accumulate` batches from the loader (uint8 images,
-- normalised here with ImageNet's mean and std), sums BCE-with-logits / accumulate
-- over them, clips the global gradient norm, and steps.  A checkpoint holds everything
-- needed to continue bitwise-identically on the same machine and thread count: model,
-- optimizer state, libtorch's RNG state, the loader position and the losses so far.
-- Training runs on the model's device (move the model there before building its
-- optimizer); each batch goes there through cfx.batch (pinned, non-blocking on CUDA),
-- and a checkpoint written on one device resumes on the other.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local F = require 'cfx.functional'
local augment = require 'cfx.augment'
local batch = require 'cfx.batch'
local optim = require 'cfx.optim'
local checkpoint = require 'cfx.checkpoint'
local data = require 'cfx.data'
local fs = require 'cfx.fs'
local nn_module = require 'cfx.nn.module'
local C, raise, clock = core.C, core.raise, core.clock

local M = {}

-- The exit status that a run stopped by SIGUSR1/SIGTERM (fit returned `interrupted`)
-- should end its process with: 75, EX_TEMPFAIL, "try again"; a Slurm batch script requeues
-- on it.  fit itself never exits: the cfx program and the experiment runner do.
M.EXIT_REQUEUE = core.EXIT_REQUEUE

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return ('%d:%02d:%02d'):format(s / 3600, s / 60 % 60, s % 60) end
  return ('%d:%02d'):format(s / 60, s % 60)
end

-- Progress: a bar redrawn in place on a terminal, plain lines otherwise.
local function progress_printer(mode, total, every)
  if mode == false then return function() end end
  local tty = C.cfx_isatty(2) ~= 0
  if mode ~= 'auto' and mode ~= true then raise("cfx.train.fit: progress must be true, false or 'auto'") end
  return function(r, final)
    local eta = r.images_per_s > 0 and r.seconds_per_step * (total - r.step) or 0
    local text = ('step %d/%d  loss %.4f  lr %.2e  %.1f img/s  ETA %s'):format(r.step, total, r.loss, r.lr,
      r.images_per_s, fmt_time(eta))
    if tty then
      local width = 20
      local filled = math.floor(width * r.step / total)
      io.stderr:write(('\r[%s%s] %s\27[K'):format(('='):rep(filled), (' '):rep(width - filled), text))
      if final then io.stderr:write('\n') end
    elseif final or r.step % every == 0 or r.step == 1 then
      io.stderr:write(text, '\n')
    end
    io.stderr:flush()
  end
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- Dynamic loss scaling for fp16, torch.cuda.amp.GradScaler's rule: the loss is
-- multiplied by `scale` before backward and the gradients divided by it before
-- clipping; a step whose gradients are not finite is skipped and the scale multiplied
-- by backoff_factor; after growth_interval good steps in a row it is multiplied by
-- growth_factor.  Scales are powers of two, so scaling itself is exact.
local scaler_defaults = { init_scale = 65536, growth_factor = 2, backoff_factor = 0.5, growth_interval = 2000 }
local function new_scaler(spec)
  local o = core.options(spec == true and {} or spec, scaler_defaults, 'cfx.train.fit grad_scaler')
  return { scale = o.init_scale, good = 0, o = o }
end
-- Unscale the gradients of params in place; true if they are all finite.
local function unscale(sc, params)
  local total
  for _, p in ipairs(params) do
    local g = p:grad()
    if g then
      g:mul_(1 / sc.scale)
      local s = g:sum()
      total = total and total + s or s
    end
  end
  return total == nil or finite(total:item())
end
local function scaler_update(sc, ok)
  if ok then
    sc.good = sc.good + 1
    if sc.good >= sc.o.growth_interval then sc.scale, sc.good = sc.scale * sc.o.growth_factor, 0 end
  else
    sc.scale, sc.good = sc.scale * sc.o.backoff_factor, 0
  end
end

local defaults = {
  model = false, loader = false, steps = false, optim = false, schedule = false, precision = 'fp32', clip = false,
  accumulate = 1, checkpoint = false, log = false, eval = false, config = false, progress = 'auto',
  print_every = false, loss = 'bce', grad_scaler = 'auto', before_checkpoint = false,
  mean = augment.imagenet_mean, std = augment.imagenet_std,
}

local ckpt_defaults = { dir = false, every = 0, keep = 3, resume = true, force = false }

-- What decides whether a checkpoint belongs to this run.
local function run_config(o, model, opt, sched)
  local params = {}
  for name, p in model:named_parameters() do params[#params + 1] = name .. ':' .. table.concat(p:shape(), 'x') end
  return {
    user = o.config or false, model = model.model_name or model.__name, params = table.concat(params, ','),
    steps = o.steps, accumulate = o.accumulate, grad_scaler = o.grad_scaler, loss = type(o.loss) == 'string' and o.loss or 'custom', clip = o.clip or 0, precision = o.precision,
    optim = { kind = opt.kind, lr = opt.base_lr, hyper = opt.hyper },
    schedule = sched and { kind = sched.kind, total = sched.total, warmup = sched.warmup, min_factor = sched.min_factor } or 'none',
    batch = o.loader.opts and o.loader.opts.batch, seed = o.loader.seed,
  }
end

-- cfx.train.fit{model=, loader=, steps=, optim=, schedule=, precision='fp32'|'bf16'|'fp16',
--   clip=, accumulate=1, checkpoint={dir=, every=, keep=3, resume=true, force=false},
--   log=function(record), eval={every=, fn=function(model, step) -> table},
--   config=table (hashed into the checkpoint), progress='auto', print_every=,
--   loss='bce'|function(logits, batch) -> loss,
--   grad_scaler='auto'|true|false|{init_scale=65536, growth_factor=2, backoff_factor=0.5,
--   growth_interval=2000} ('auto': on for fp16), before_checkpoint=function(step) (called
--   just before each checkpoint is written, e.g. to flush a log), mean=, std=}
-- -> {step=, losses={...}, checkpoint=path, resumed_from=step, interrupted=signal}
-- On SIGUSR1/SIGTERM (the cfx program's flag, core.signal) fit finishes the step, writes a
-- checkpoint (with checkpoint.dir) and returns with interrupted = 'USR1' or 'TERM'; it never
-- exits the process.  The signal stays pending, so that the caller sees it too: the cfx
-- program exits with status 75 (EXIT_REQUEUE) after a script that ends with it pending,
-- and the experiment runner marks the run interrupted and returns 75.
function M.fit(opts)
  local o = core.options(opts, defaults, 'cfx.train.fit')
  local model, loader = o.model, o.loader
  if not nn_module.is_module(model) then raise('cfx.train.fit: model must be a cfx.nn module') end
  if type(loader) ~= 'table' or type(loader.next) ~= 'function' then
    raise('cfx.train.fit: loader must be a cfx.data.loader (or an object with :next())')
  end
  if type(o.steps) ~= 'number' or o.steps < 1 or o.steps % 1 ~= 0 then
    raise('cfx.train.fit: steps must be a positive whole number, got ' .. tostring(o.steps))
  end
  if type(o.accumulate) ~= 'number' or o.accumulate < 1 or o.accumulate % 1 ~= 0 then
    raise('cfx.train.fit: accumulate must be a positive whole number, got ' .. tostring(o.accumulate))
  end
  if o.clip and (type(o.clip) ~= 'number' or o.clip <= 0) then raise('cfx.train.fit: clip must be a positive number') end
  local opt = o.optim or optim.AdamW { params = model, lr = 1e-4 }
  local sched = o.schedule
  if sched and type(sched) ~= 'function' and not (type(sched) == 'table' and getmetatable(sched) and getmetatable(sched).__call) then
    raise('cfx.train.fit: schedule must be a cfx.optim schedule or a function(step) -> factor')
  end
  -- the model's device is the run's: batches go there (cfx.batch: pinned, non-blocking on CUDA)
  local device = model:parameters()[1]:device()
  local step_batch = batch.runner { device = device, precision = o.precision, mean = o.mean, std = o.std,
    who = 'cfx.train.fit' }

  local scaler
  if o.grad_scaler == 'auto' then
    scaler = o.precision == 'fp16' and new_scaler(true) or nil
  elseif o.grad_scaler then
    scaler = new_scaler(o.grad_scaler)
  end

  local ck = o.checkpoint and core.options(o.checkpoint, ckpt_defaults, 'cfx.train.fit checkpoint')
  if ck and type(ck.dir) ~= 'string' then raise('cfx.train.fit: checkpoint needs dir = a directory path') end
  local cfg_hash = checkpoint.config_hash(run_config(o, model, opt, sched))

  -- ---- resume --------------------------------------------------------------------------
  local step, losses, resumed_from, last_ckpt = 0, {}, nil, nil
  if ck then checkpoint.clean_stale(ck.dir) end
  if ck and ck.resume then
    local path = checkpoint.latest(ck.dir)
    if path then
      local c = checkpoint.load(path, { map_location = device })
      if c.header.config_hash ~= cfg_hash and not ck.force then
        raise(('cfx.train.fit: checkpoint %s was written by a run with another configuration (hash %s, this run %s); ' ..
          'use another checkpoint dir, or checkpoint.force=true to resume anyway'):format(path,
          tostring(c.header.config_hash), cfg_hash))
      end
      model:load_state_dict(c.model, { source = path })
      opt:load_state_dict(c.optim, c.header.optim)
      if c.rng then tensor.set_rng_state(c.rng) end
      step, losses, resumed_from, last_ckpt = c.header.step, c.losses, c.header.step, path
      if scaler and c.header.scaler then scaler.scale, scaler.good = c.header.scaler.scale, c.header.scaler.good end
      local pos = c.header.loader and c.header.loader.position
      if pos then
        if not (loader.opts and loader.close) then
          raise('cfx.train.fit: resuming needs a cfx.data.loader (to restart it at the saved position)')
        end
        local lo = {}
        for k, v in pairs(loader.opts) do lo[k] = v end
        lo.start = pos
        loader:close()
        loader = data.loader(lo)
      end
      io.stderr:write(('resumed from %s (step %d)\n'):format(path, step))
    end
  end

  local function save()
    if not ck then return nil end
    if o.before_checkpoint then o.before_checkpoint(step) end
    fs.mkdirs(ck.dir)
    local path = checkpoint.path(ck.dir, step)
    checkpoint.save(path, { model = model, optimizer = opt, losses = losses, header = {
      step = step, config_hash = cfg_hash, loader = loader.state and loader:state() or nil,
      steps = o.steps, model = model.model_name, scaler = scaler and { scale = scaler.scale, good = scaler.good },
    } })
    last_ckpt = path
    if ck.keep and ck.keep > 0 then checkpoint.prune(ck.dir, ck.keep) end
    return path
  end

  local printer = progress_printer(o.progress, o.steps, o.print_every or math.max(1, math.floor(o.steps / 20)))

  if o.loss ~= 'bce' and type(o.loss) ~= 'function' then
    raise("cfx.train.fit: loss must be 'bce' or a function(logits, batch) -> loss")
  end
  local function forward_loss(x, y, b)
    local logits = model(x)
    if o.loss ~= 'bce' then return o.loss(logits, b) end
    if logits:dim() ~= 2 or logits:size(2) ~= 1 then
      raise(('cfx.train.fit: the model must return one logit per image {B, 1}, got {%s}'):format(
        table.concat(logits:shape(), ', ')))
    end
    return F.binary_cross_entropy_with_logits(logits:float(), y)
  end

  model:train()
  local smoothed, t_start, images_done = nil, clock(), 0
  local interrupted
  while step < o.steps do
    local t0 = clock()
    local s = step + 1
    local factor = sched and sched(s) or 1
    opt:set_lr(opt.base_lr * factor)
    local loss_sum, n_images, epoch = 0, 0, nil
    for _ = 1, o.accumulate do
      local b = loader:next()
      if not b then raise(('cfx.train.fit: the loader ran out of batches at step %d of %d'):format(s, o.steps)) end
      local loss = step_batch(b, forward_loss)
      if o.accumulate > 1 then loss = loss / o.accumulate end
      if scaler then (loss * scaler.scale):backward() else loss:backward() end
      loss_sum = loss_sum + loss:item()
      n_images = n_images + b.images:size(1)
      epoch = b.epoch
    end
    local gnorm, skipped
    if scaler and finite(loss_sum) then
      skipped = not unscale(scaler, opt:parameters())
      scaler_update(scaler, not skipped)
    end
    if finite(loss_sum) and o.clip and not skipped then gnorm = optim.clip_grad_norm(opt, o.clip) end
    if not finite(loss_sum) or (gnorm and not finite(gnorm)) then
      opt:zero_grad()
      raise(('cfx.train.fit: %s is %s at step %d; training stopped. %s'):format(
        finite(loss_sum) and 'the gradient norm' or 'the loss', tostring(finite(loss_sum) and gnorm or loss_sum), s,
        last_ckpt and ('The last good checkpoint is ' .. last_ckpt .. '.') or 'No checkpoint was written.'))
    end
    if not skipped then opt:step() end
    opt:zero_grad()
    step = s
    losses[step] = loss_sum
    images_done = images_done + n_images
    local dt = clock() - t0
    smoothed = smoothed and (0.9 * smoothed + 0.1 * dt) or dt
    local rec = { step = step, loss = loss_sum, lr = opt.lr, grad_norm = gnorm, skipped = skipped,
      loss_scale = scaler and scaler.scale, images_per_s = n_images / math.max(dt, 1e-9),
      seconds_per_step = smoothed, epoch = epoch, time = clock() - t_start }
    printer(rec, step == o.steps)
    if o.log then o.log(rec) end
    if o.eval and o.eval.every and step % o.eval.every == 0 then
      model:eval()
      local r = tensor.no_grad(o.eval.fn, model, step)
      model:train()
      if o.log and r ~= nil then o.log({ step = step, eval = r }) end
    end
    if ck and ((ck.every > 0 and step % ck.every == 0) or step == o.steps) then save() end
    local sig = core.signal()
    if sig and step < o.steps then
      interrupted = sig
      if ck then save() end
      io.stderr:write(('\ncfx.train.fit: SIG%s at step %d: %s\n'):format(sig, step,
        last_ckpt and ('checkpoint written to ' .. last_ckpt) or 'no checkpoint dir, nothing saved'))
      break
    end
  end
  return { step = step, losses = losses, checkpoint = last_ckpt, resumed_from = resumed_from,
    interrupted = interrupted, images = images_done, seconds = clock() - t_start, loader = loader }
end

return M
