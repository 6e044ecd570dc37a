-- models_driver.lua: the Lua half of tests/reference/test_models.py.
--
-- Usage: models_driver.lua JOBS.json RESULTS.jsonl
--
-- JOBS.json is a list of jobs written by test_models.py:
--   { id=, model= (a cfx.models name), opts= (for cfx.models.create, pretrained= included),
--     input= (a safetensors file with 'x' and, for training, 'y'), mode= 'eval'|'train'|nil,
--     out= (the safetensors file to write), state= (also write the model's state_dict) }
-- A job creates the model (strict loading of the checkpoint), then
--   mode 'eval':  writes logits = model(x) under no_grad, in eval mode;
--   mode 'train': in train mode, logits = model(x), loss = BCE-with-logits(logits, y),
--                 loss:backward(); writes logits, loss, 'grad.<name>' for every parameter
--                 and 'buffer.<name>' for every buffer (BatchNorm statistics after the step);
--   state:        writes 'state.<name>' for every state_dict entry.
-- One JSON line per job goes to RESULTS: {id=, ok=, error=, names= (state_dict names in
-- order), report= (load_pretrained's {dropped=, missing=, unexpected=})}.  A failing job (e.g. a checkpoint
-- that must be refused) is reported with ok=false and its message, and the next one runs.
local cfx = require 'cfx'
local F = cfx.F

local jobs_path, results_path = arg[1], arg[2]
if not jobs_path or not results_path then
  io.stderr:write('usage: models_driver.lua JOBS.json RESULTS.jsonl\n')
  os.exit(2)
end
local f = assert(io.open(jobs_path, 'rb'))
local jobs = cfx.json.decode(f:read('*a'))
f:close()

local function run(job)
  local model = cfx.models.create(job.model, job.opts)
  local res = { names = model:state_dict_names(), report = model.pretrained_report }
  local out = {}
  if job.mode then
    local inp = cfx.safetensors.load(job.input)
    if job.mode == 'eval' then
      model:eval()
      out.logits = cfx.no_grad(function() return model(inp.x) end)
    elseif job.mode == 'train' then
      model:train()
      local logits = model(inp.x)
      local loss = F.binary_cross_entropy_with_logits(logits, inp.y)
      loss:backward()
      out.logits, out.loss = logits:detach(), loss:detach()
      for name, p in model:named_parameters() do
        local g = p:grad()
        if g == nil then error('no gradient for ' .. name) end
        out['grad.' .. name] = g
      end
      for name, b in model:named_buffers() do out['buffer.' .. name] = b end
    else
      error('unknown mode ' .. tostring(job.mode))
    end
  end
  if job.state then
    for name, t in pairs(model:state_dict()) do out['state.' .. name] = t end
  end
  if job.out then cfx.safetensors.save(job.out, out) end
  return res
end

local results = assert(io.open(results_path, 'w'))
for _, job in ipairs(jobs) do
  local ok, res = pcall(run, job)
  local line = { id = job.id, ok = ok }
  if ok then
    line.names, line.report = res.names, res.report
  else
    line.error = tostring(res)
  end
  results:write(cfx.json.encode(line), '\n')
  results:flush()
  collectgarbage()
end
results:close()
