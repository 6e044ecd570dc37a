-- optim_driver.lua: the Lua half of tests/reference/test_optim.py.
--
-- Usage: optim_driver.lua JOBS.json RESULTS.jsonl
--
-- JOBS.json is a list of jobs written by test_optim.py; each writes the safetensors file
-- job.out and one JSON line {id=, ok=, error=} to RESULTS.
--   kind 'schedule': factors[s] = cfx.optim.cosine(job.schedule)(s) for s = 1..total.
--   kind 'run': an optimisation run.
--     params: a safetensors file.  With model= (a cfx.models name) it is the model's
--             checkpoint and the optimizer gets the module (named parameters, timm's
--             no-decay filter); else it holds p1..pn, given to the optimizer as a list,
--             or as groups when job.groups = {{indices=, weight_decay=}, ...}.
--     grads:  with a model, a file of inputs x<s>, y<s> (loss = BCE-with-logits);
--             else a file of gradients g<s>.<i> set on the parameters before step s.
--     opt, hyper: cfx.optim[opt]{params=..., hyper...};  clip: clip_grad_norm before
--     each step;  schedule (+ lr): opt:set_lr(lr * cosine(schedule)(s)) before step s.
--     steps: the last step;  save_at: after that step, write the parameters and the
--     optimizer state (state_dict through cfx.safetensors, meta as JSON metadata) to
--     job.save and stop;  resume: start from such a file, with a fresh optimizer.
--   Output: 'param.<name>' (the parameters at the end), 'norms' (what clip_grad_norm
--   returned), 'lrs' (the learning rate of each step), 'losses'.
local cfx = require 'cfx'
local F, optim = cfx.F, cfx.optim

local jobs_path, results_path = arg[1], arg[2]
if not jobs_path or not results_path then
  io.stderr:write('usage: optim_driver.lua JOBS.json RESULTS.jsonl\n')
  os.exit(2)
end
local f = assert(io.open(jobs_path, 'rb'))
local jobs = cfx.json.decode(f:read('*a'))
f:close()

local function f64(list)
  if #list == 0 then return cfx.zeros(0, { dtype = 'float64' }) end
  return cfx.tensor(list, { dtype = 'float64' })
end

local function run(job)
  if job.kind == 'schedule' then
    local s = optim.cosine(job.schedule)
    local r = {}
    for i = 1, job.schedule.total do r[i] = s(i) end
    cfx.safetensors.save(job.out, { factors = f64(r) })
    return
  end
  -- parameters, named
  local model, list, names = nil, {}, {}
  local init = cfx.safetensors.load(job.params)
  if job.model then
    model = cfx.models.create(job.model, { pretrained = job.params })
    model:train()
    for name, p in model:named_parameters() do list[#list + 1], names[#names + 1] = p, name end
  else
    for i = 1, job.n do list[i], names[i] = init['p' .. i]:requires_grad_(), 'p' .. i end
  end
  local first = 1
  local saved, saved_meta
  if job.resume then
    local meta
    saved, meta = cfx.safetensors.load(job.resume)
    first = tonumber(meta.step) + 1
    saved_meta = cfx.json.decode(meta.optim)
    cfx.no_grad(function()
      for i, p in ipairs(list) do p:copy_(saved['param.' .. names[i]]) end
    end)
  end
  -- the optimizer
  local what = model or list
  if job.groups then
    what = {}
    for gi, g in ipairs(job.groups) do
      local ps = {}
      for k, i in ipairs(g.indices) do ps[k] = list[i] end
      what[gi] = { params = ps, weight_decay = g.weight_decay }
    end
  end
  local o = { params = what }
  for k, v in pairs(job.hyper) do o[k] = v end
  local opt = optim[job.opt](o)
  if saved then
    local st = {}
    for k, v in pairs(saved) do
      local key = k:match('^optim%.(.*)$')
      if key then st[key] = v end
    end
    opt:load_state_dict(st, saved_meta)
  end
  local sched = job.schedule and optim.cosine(job.schedule)
  local data = cfx.safetensors.load(job.grads)
  local norms, lrs, losses = {}, {}, {}
  for s = first, job.steps do
    if sched then opt:set_lr(job.lr * sched(s)) end
    lrs[#lrs + 1] = opt.lr
    if model then
      local loss = F.binary_cross_entropy_with_logits(model(data['x' .. s]), data['y' .. s])
      loss:backward()
      losses[#losses + 1] = loss:item()
    else
      for i, p in ipairs(list) do p:set_grad(data[('g%d.%d'):format(s, i)]:clone()) end
    end
    if job.clip then norms[#norms + 1] = optim.clip_grad_norm(model or list, job.clip) end
    opt:step()
    opt:zero_grad()
    if job.save_at == s then
      local st, meta = opt:state_dict()
      local t = {}
      for k, v in pairs(st) do t['optim.' .. k] = v end
      for i, p in ipairs(list) do t['param.' .. names[i]] = p end
      cfx.safetensors.save(job.save, t, { step = s, optim = cfx.json.encode(meta) })
      break
    end
  end
  local out = { norms = f64(norms), lrs = f64(lrs), losses = f64(losses) }
  for i, p in ipairs(list) do out['param.' .. names[i]] = p:detach() end
  cfx.safetensors.save(job.out, out)
end

local results = assert(io.open(results_path, 'w'))
for _, job in ipairs(jobs) do
  local ok, err = pcall(run, job)
  results:write(cfx.json.encode({ id = job.id, ok = ok, error = not ok and tostring(err) or nil }), '\n')
  results:flush()
end
results:close()
