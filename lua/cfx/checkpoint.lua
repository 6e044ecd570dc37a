-- checkpoint.lua: cfx.checkpoint, training checkpoints.
--
-- One safetensors file per checkpoint, <dir>/step_00001200.safetensors, holding
--   model.<name>    the model's state_dict (parameters and buffers)
--   optim.<name>    the optimizer's state (e.g. optim.head.weight.exp_avg)
--   rng.torch       libtorch's CPU generator state (uint8)
--   train.losses    float64 {step}: the loss of every step so far
-- and in the safetensors metadata: format = 'cfx-checkpoint', version = '1' and
-- header = JSON {step, config_hash, loader = {seed, position}, optim = {kind, steps, lr},
-- time, ...}.  The file is written to a temporary name, fsync'd and renamed (by
-- cfx.safetensors.save), so a process killed at any moment leaves either the previous
-- checkpoint or the new one, never a torn file.  Any safetensors reader opens it.
-- Tensors are written from whatever device they are on (the file holds host bytes) and
-- load onto the CPU, or onto map_location: a checkpoint of a CUDA run resumes on a CPU
-- and the other way round.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local safetensors = require 'cfx.safetensors'
local json = require 'cfx.json'
local fs = require 'cfx.fs'
local batch = require 'cfx.batch'
local results = require 'cfx.results'
local raise = core.raise

local M = { format = 'cfx-checkpoint', version = '1' }

-- Path of the checkpoint of `step` in dir.
function M.path(dir, step) return ('%s/step_%08d.safetensors'):format(dir, step) end

-- Sorted list of {step=, path=} of the checkpoints in dir (oldest first).
function M.list(dir)
  local r = {}
  if not fs.is_dir(dir) then return r end
  local _, files = fs.list(dir)
  for _, name in ipairs(files) do
    local s = name:match('^step_(%d+)%.safetensors$')
    if s then r[#r + 1] = { step = tonumber(s), path = dir .. '/' .. name } end
  end
  table.sort(r, function(a, b) return a.step < b.step end)
  return r
end

-- Path of the newest checkpoint in dir, or nil.
function M.latest(dir)
  local l = M.list(dir)
  return l[#l] and l[#l].path
end

-- cfx.checkpoint.save(path, {model=, optimizer=, header={...}, losses={...}}): write
-- atomically.  header must hold step; rng.torch is taken here.
function M.save(path, parts)
  local tensors = {}
  if parts.model then
    for k, v in pairs(parts.model:state_dict()) do tensors['model.' .. k] = v end
  end
  local header = {}
  for k, v in pairs(parts.header or {}) do header[k] = v end
  if parts.optimizer then
    local st, meta = parts.optimizer:state_dict()
    for k, v in pairs(st) do tensors['optim.' .. k] = v end
    header.optim = meta
  end
  tensors['rng.torch'] = tensor.get_rng_state()
  if parts.losses and #parts.losses > 0 then
    tensors['train.losses'] = tensor.tensor(parts.losses, { dtype = 'float64' })
  end
  header.time = header.time or os.time()
  safetensors.save(path, tensors, { format = M.format, version = M.version, header = json.encode(header) })
  return path
end

-- cfx.checkpoint.load(path [, {map_location='cpu'|'cuda'|'cuda:N'|'auto'}]) -> {header=,
-- model={name=tensor}, optim={name=tensor}, rng=tensor, losses={...}}: the model and
-- optimizer tensors on map_location (default: the CPU, where the file is read; the RNG
-- state stays there, it is the CPU generator's).  Refuses files that are not cfx
-- checkpoints, and a map_location this build or node does not have (cfx.batch.device).
function M.load(path, opts)
  local o = core.options(opts, { map_location = 'cpu' }, 'cfx.checkpoint.load')
  local device = batch.device(o.map_location, 'cfx.checkpoint.load')
  local t, meta = safetensors.load(path)
  if meta.format ~= M.format then
    raise(('%s is not a cfx checkpoint (metadata format=%s, expected %s)'):format(path, tostring(meta.format), M.format))
  end
  if meta.version ~= M.version then
    raise(('%s: checkpoint version %s, this cfx reads version %s: resume it with the cfx that wrote it, or move ' ..
      'its directory aside to train from the start'):format(path, tostring(meta.version), M.version))
  end
  local ok, header = pcall(json.decode, meta.header or '')
  if not ok or type(header) ~= 'table' or type(header.step) ~= 'number' then
    raise(('%s: checkpoint header is not valid (%s)'):format(path, ok and 'no step' or tostring(header)))
  end
  local r = { header = header, model = {}, optim = {}, rng = t['rng.torch'], losses = {} }
  for k, v in pairs(t) do
    local m, op = k:match('^model%.(.*)$'), k:match('^optim%.(.*)$')
    if m or op then
      v = v:to(device) -- the same tensor when it is there already
      if m then r.model[m] = v else r.optim[op] = v end
    end
  end
  if t['train.losses'] then r.losses = t['train.losses']:totable() end
  return r
end

-- Remove temporary files a killed writer left in dir (step_*.safetensors.<pid>.tmp).
-- One training run owns a checkpoint directory: call this before writing into it.
function M.clean_stale(dir)
  if not fs.is_dir(dir) then return 0 end
  local _, files = fs.list(dir)
  local n = 0
  for _, name in ipairs(files) do
    if name:match('^step_%d+%.safetensors%.%d+%.tmp$') then
      os.remove(dir .. '/' .. name)
      n = n + 1
    end
  end
  return n
end

-- Remove all but the newest `keep` checkpoints in dir.
function M.prune(dir, keep)
  local l = M.list(dir)
  for i = 1, #l - keep do os.remove(l[i].path) end
end

-- A 16-hex-digit hash of a configuration table (its canonical JSON: sorted keys), the one
-- that identifies runs in results files too (cfx.results.config_hash).
M.config_hash = results.config_hash

return M
