-- experiment.lua: cfx.experiment, the runner of the experiment scripts.  See
-- docs/experiments.md.
--
-- A script returns an experiment:
--   return cfx.experiment {
--     name = 'scaling_models',
--     presets = { cpu = {...config...}, paper = {...} },   -- the first listed default: cpu
--     grid = function(cfg) return { {k = 3, subset = 1}, ... } end,   -- or {k = {3, 10}, subset = {1, 2}}
--     run = function(cfg, run) ... end,                     -- one grid point
--     prepare = function(cfg) ... end,                      -- optional: once before the points
--     summarize = function(rows, cfg) ... end,              -- optional: the final table
--   }
-- and `cfx SCRIPT [preset=NAME] [key=value ...] [--list] [--task I] [--out DIR]` runs it.
-- Every preset has a device, 'auto' unless it says otherwise ('cpu', 'cuda', 'cuda:N'):
-- resolved once per invocation, before any work (cfx.batch.device: 'auto' is CUDA when
-- the build and the node have it, else the CPU); run() sees the resolved cfg.device and
-- moves its model there; the run's config and its `device` attribute record it.
local core = require 'cfx.core'
local json = require 'cfx.json'
local batch = require 'cfx.batch'
local raise = core.raise

local M = {}
local Experiment = {}
Experiment.__index = Experiment
local Run = {}
Run.__index = Run

-- ---- configuration ----------------------------------------------------------------------
local function copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = type(v) == 'table' and copy(v) or v end
  return r
end

local function sorted_keys(t)
  local r = {}
  for k in pairs(t) do r[#r + 1] = k end
  table.sort(r, function(a, b) return tostring(a) < tostring(b) end)
  return r
end

-- Parse a command-line value with the type of the preset's value.
local function parse_value(key, text, like)
  local t = type(like)
  if t == 'number' then
    local v = tonumber(text)
    if not v then raise(("%s: expected a number, got '%s'"):format(key, text), 0) end
    return v
  elseif t == 'boolean' then
    if text == 'true' or text == '1' or text == 'yes' then return true end
    if text == 'false' or text == '0' or text == 'no' then return false end
    raise(("%s: expected true or false, got '%s'"):format(key, text), 0)
  elseif t == 'table' then
    local r = {}
    for item in text:gmatch('[^,]+') do
      local v = tonumber(item)
      if type(like[1]) == 'number' and not v then
        raise(("%s: expected a comma-separated list of numbers, got '%s'"):format(key, text), 0)
      end
      r[#r + 1] = type(like[1]) == 'number' and v or item
    end
    return r
  end
  return text
end

-- The grid as a list of points (tables of config overrides).
local function expand_grid(grid, cfg)
  if type(grid) == 'function' then return grid(cfg) end
  if grid == nil then return { {} } end
  local points = { {} }
  for _, key in ipairs(sorted_keys(grid)) do
    local values = grid[key]
    if type(values) == 'string' then values = cfg[values] end -- a config key holding the list
    local next_points = {}
    for _, p in ipairs(points) do
      for _, v in ipairs(values) do
        local q = copy(p)
        q[key] = v
        next_points[#next_points + 1] = q
      end
    end
    points = next_points
  end
  return points
end

-- Run id of a grid point: its keys in order, e.g. 'k=3,subset=1' ('all' for none).
local function point_id(p)
  local parts = {}
  for _, k in ipairs(sorted_keys(p)) do parts[#parts + 1] = ('%s=%s'):format(k, tostring(p[k])) end
  return #parts > 0 and table.concat(parts, ',') or 'all'
end
M.point_id = point_id

-- Where results go: one file for a whole grid, one per task under tasks/ with --task.
function M.results_path(out, name, preset) return ('%s/%s-%s.h5'):format(out, name, preset) end
function M.task_path(out, name, preset, task) return ('%s/tasks/%s-%s-task%04d.h5'):format(out, name, preset, task) end

-- cfx.experiment.load(script) -> the experiment a script returns (what `cfx SCRIPT` runs).
function M.load(script)
  local chunk, e = loadfile(script)
  if not chunk then raise(e, 0) end
  local ok, exp = pcall(chunk)
  if not ok then raise(('%s: %s'):format(script, tostring(exp)), 0) end
  if getmetatable(exp) ~= Experiment then
    raise(('%s: not an experiment script (it must return cfx.experiment{...}, got %s)'):format(script, type(exp)), 0)
  end
  return exp
end

-- ---- the experiment object ---------------------------------------------------------------
-- cfx.experiment{name=, presets=, grid=, run=, summarize=, default_preset=, description=}
function M.new(spec)
  if type(spec) ~= 'table' then raise('cfx.experiment: expected a table') end
  local o = {}
  for k, v in pairs(spec) do o[k] = v end
  local known = { name = true, presets = true, grid = true, run = true, prepare = true, summarize = true,
    default_preset = true,
    description = true }
  for k in pairs(o) do
    if not known[k] then
      raise(("cfx.experiment: unknown field '%s' (known: %s)"):format(tostring(k), table.concat(sorted_keys(known), ', ')))
    end
  end
  if type(o.name) ~= 'string' or not o.name:match('^[%w_%-]+$') then
    raise('cfx.experiment: name must be a word (letters, digits, _ and -)')
  end
  if type(o.run) ~= 'function' then raise('cfx.experiment: run must be a function(cfg, run)') end
  if o.prepare ~= nil and type(o.prepare) ~= 'function' then raise('cfx.experiment: prepare must be a function(cfg)') end
  if type(o.presets) ~= 'table' or next(o.presets) == nil then raise('cfx.experiment: presets must name at least one configuration') end
  o.default_preset = o.default_preset or (o.presets.cpu and 'cpu') or sorted_keys(o.presets)[1]
  if not o.presets[o.default_preset] then raise('cfx.experiment: default_preset names no preset') end
  return setmetatable(o, Experiment)
end

-- The configuration of a preset with key=value overrides (strings are parsed with the
-- type of the preset's value; unknown keys are an error listing the known ones).
function Experiment:config(preset, overrides)
  preset = preset or self.default_preset
  local base = self.presets[preset]
  if not base then
    raise(("%s: unknown preset '%s' (known: %s)"):format(self.name, tostring(preset),
      table.concat(sorted_keys(self.presets), ', ')), 0)
  end
  local cfg = copy(base)
  if cfg.device == nil then cfg.device = 'auto' end
  for k, v in pairs(overrides or {}) do
    if cfg[k] == nil then
      raise(("%s: unknown key '%s' for preset %s (known: %s)"):format(self.name, k, preset,
        table.concat(sorted_keys(cfg), ', ')), 0)
    end
    cfg[k] = type(v) == 'string' and parse_value(k, v, cfg[k]) or v
  end
  -- the value only: whether this node has it is known where the run runs (execute)
  batch.parse_device(cfg.device, self.name)
  cfg.preset = preset
  return cfg
end

function Experiment:points(cfg)
  local pts = expand_grid(self.grid, cfg)
  if type(pts) ~= 'table' or #pts == 0 then raise(self.name .. ': the grid is empty') end
  return pts
end

-- ---- one run -----------------------------------------------------------------------------
local function now() return os.time() end

local function host()
  local f = io.open('/proc/sys/kernel/hostname')
  local h = f and f:read('*l')
  if f then f:close() end
  return h or '?'
end

local function nn_first_param(model)
  if type(model) ~= 'table' or type(model.parameters) ~= 'function' then return nil end
  return model:parameters()[1]
end

-- run:fit{...}: cfx.train.fit with this run's checkpoint directory, its train table
-- (rows after the checkpoint it resumes from are dropped first, so nothing is logged
-- twice), the run's config hashed in, and on_signal='return' (the runner checkpoints,
-- marks the run interrupted, flushes the results and exits 75).
function Run:fit(opts)
  local cfx = require 'cfx'
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  local user_log = o.log
  local first = true
  local p = nn_first_param(o.model)
  if p and self.device and p:device() ~= self.device then
    raise(("run:fit: the model is on %s but this run's device is %s: move it first, model:to(cfg.device), " ..
      "then build its optimizer"):format(p:device(), self.device))
  end
  o.checkpoint = o.checkpoint or { dir = self.checkpoint_dir, every = self.cfg.checkpoint_every or 0 }
  if o.config == nil then
    -- the device is not hashed: a checkpoint written on one device resumes on another
    o.config = copy(self.cfg)
    o.config.device = nil
  end
  o.on_signal = 'return'
  -- the rows up to a checkpoint must be on disk before it, or a kill would leave a gap
  -- between them and the rows the resumed run writes
  local user_before = o.before_checkpoint
  o.before_checkpoint = function(step)
    self.log:flush()
    if user_before then user_before(step) end
  end
  o.log = function(rec)
    if rec.eval == nil then
      if first then
        self.log_run:truncate('train', 'step', rec.step - 1)
        first = false
      end
      self.log_run:scalars('train', { step = rec.step, epoch = rec.epoch or 0, loss = rec.loss, lr = rec.lr,
        images_per_s = rec.images_per_s, grad_norm = rec.grad_norm or 0 })
    end
    if user_log then user_log(rec) end
  end
  local r = cfx.train.fit(o)
  if r.interrupted then self.interrupted = r.interrupted end
  return r
end

-- run:evaluate(dataset, eval_result [, {predictions=true}]) -> tables: writes
-- eval/<dataset> (per generator, the summary in its attributes), the per-architecture
-- table and the predictions.
function Run:evaluate(dataset, r, opts)
  local cfx = require 'cfx'
  local keep_predictions = not (opts and opts.predictions == false)
  local t = cfx.eval.tables(r)
  local rows = {}
  for i, g in ipairs(t.generators) do
    rows[i] = { generator = g.generator, architecture = g.architecture or '', n_real = g.n_real, n_fake = g.n_fake,
      ap = g.ap or 0 / 0, acc = g.acc or 0 / 0, acc_real = g.acc_real or 0 / 0, acc_fake = g.acc_fake or 0 / 0,
      auroc = g.auroc or 0 / 0 }
  end
  local summary = {}
  for k, v in pairs(t.summary) do summary[k] = v end
  self.log_run:table('eval/' .. dataset, rows, summary)
  local arch = {}
  for i, a in ipairs(t.architectures) do
    arch[i] = { architecture = a.architecture, n_generators = a.n_generators, ap = a.ap or 0 / 0, acc = a.acc or 0 / 0,
      auroc = a.auroc or 0 / 0 }
  end
  self.log_run:table('eval_arch/' .. dataset, arch)
  if keep_predictions then
    self.log_run:arrays('predictions/' .. dataset, { score = r.scores:float(), label = r.labels:to('uint8'),
      generator = r.generators:to('int32') })
  end
  self.summary[dataset] = t.summary
  return t
end

-- run:set{key = value}: attributes of the run (numbers and strings).
function Run:set(attrs) self.log_run:set(attrs) end

-- ---- the command line -----------------------------------------------------------------------
local usage = [[
usage: cfx %s [preset=NAME] [key=value ...] [--list] [--task I] [--out DIR] [--help]

Runs every point of the experiment's grid in order, skipping points whose results are
complete and resuming interrupted ones from their checkpoints.
  preset=NAME   a preset (%s; default %s)
  key=value     override a configuration value (typed as the preset's value)
  --list        print the configuration and the grid, run nothing
  --task I      run grid point I only (1-based; what a Slurm array task calls)
  --out DIR     results and checkpoints under DIR (default runs/%s)
]]

local function parse_args(self, argv)
  local a = { overrides = {}, preset = nil }
  local i = 1
  while i <= #argv do
    local s = argv[i]
    if s == '--list' then a.list = true
    elseif s == '--help' or s == '-h' then a.help = true
    elseif s == '--task' then
      i = i + 1
      a.task = tonumber(argv[i])
      if not a.task or a.task < 1 or a.task % 1 ~= 0 then raise(("--task needs a positive integer, got '%s'"):format(tostring(argv[i])), 0) end
    elseif s == '--out' then
      i = i + 1
      a.out = argv[i]
      if not a.out then raise('--out needs a directory', 0) end
    else
      local k, v = s:match('^([%w_]+)=(.*)$')
      if not k then raise(("%s: unrecognised argument '%s' (see --help)"):format(self.name, s), 0) end
      if k == 'preset' then a.preset = v else a.overrides[k] = v end
    end
    i = i + 1
  end
  return a
end

local function fmt(v)
  if type(v) == 'table' then return '{' .. table.concat(v, ', ') .. '}' end
  return tostring(v)
end

-- Run every grid point (only point opts.task with --task) -> rows of their summaries, the
-- exit status (0, or cfx.train.EXIT_REQUEUE when a signal interrupted a run), the results path.
function Experiment:execute(cfg, opts)
  local cfx = require 'cfx'
  opts = opts or {}
  local points = self:points(cfg)
  local out = opts.out or ('runs/' .. self.name)
  local task = opts.task
  if task and task > #points then
    raise(('%s: --task %d but the grid has %d points'):format(self.name, task, #points), 0)
  end
  local path = task and M.task_path(out, self.name, cfg.preset, task) or M.results_path(out, self.name, cfg.preset)
  local device = batch.device(cfg.device, self.name) -- before any work: no CUDA here is one clear error
  cfx.fs.mkdirs(out)
  if task then cfx.fs.mkdirs(out .. '/tasks') end
  -- shared inputs (data made on first use): before any point, and before a sweep's tasks
  if self.prepare then self.prepare(cfg) end
  local log = cfx.results.open(path)
  local rows = {}
  for i, p in ipairs(points) do
    if not task or task == i then
      local pcfg = copy(cfg)
      for k, v in pairs(p) do pcfg[k] = v end
      pcfg.device = device
      local id = point_id(p)
      local lr = log:run(id)
      local attrs = lr:get()
      if attrs.status == 'done' then
        io.stderr:write(('[%d/%d] %s: done already, skipped\n'):format(i, #points, id))
        rows[#rows + 1] = { point = p, id = id, summary = json.decode(attrs.summary or '{}'), skipped = true }
      else
        io.stderr:write(('[%d/%d] %s%s\n'):format(i, #points, id, attrs.status and (' (was ' .. attrs.status .. ', resuming)') or ''))
        -- (a finished run keeps the config it ran with, device included)
        lr:set { config = json.encode(pcfg), experiment = self.name, preset = cfg.preset, seed = pcfg.seed or 0,
          status = 'running', device = device, host = host(), start_time = now(),
          slurm_job_id = os.getenv('SLURM_JOB_ID') or '', slurm_array_task_id = os.getenv('SLURM_ARRAY_TASK_ID') or '',
          grid_index = i }
        log:flush()
        local run = setmetatable({ id = id, index = i, cfg = pcfg, point = p, device = device, log_run = lr, log = log,
          checkpoint_dir = ('%s/checkpoints/%s/%s'):format(out, cfg.preset, id:gsub('[^%w=,._-]', '_')),
          out = out, summary = {} }, Run)
        local t0 = os.time()
        local ok, err = pcall(self.run, pcfg, run)
        if not ok then
          lr:set { status = 'failed', error = tostring(err), end_time = now() }
          log:close()
          error(err, 0)
        end
        if run.interrupted or cfx.signal() then
          lr:set { status = 'interrupted', end_time = now() }
          log:close()
          io.stderr:write(('%s: interrupted by SIG%s; checkpoint written, run again to resume\n'):format(self.name,
            run.interrupted or cfx.signal()))
          return rows, cfx.train.EXIT_REQUEUE, path
        end
        lr:set { status = 'done', end_time = now(), seconds = os.time() - t0, summary = json.encode(run.summary) }
        log:flush()
        rows[#rows + 1] = { point = p, id = id, summary = run.summary }
      end
    end
  end
  log:close()
  return rows, 0, path
end

-- A usage error: the message on stderr and exit status 2, no traceback.
local function usage_error(e)
  io.stderr:write('cfx: ', (tostring(e):gsub('^[^:]*%.lua:%d+: ', '')), '\n')
  return 2
end

function Experiment:__cfx_main(argv)
  local ok, a = pcall(parse_args, self, argv)
  if not ok then return usage_error(a) end
  if a.help then
    io.stdout:write(usage:format(arg and arg[0] or self.name, table.concat(sorted_keys(self.presets), ', '),
      self.default_preset, self.name))
    return 0
  end
  local cfg
  ok, cfg = pcall(self.config, self, a.preset, a.overrides)
  if not ok then return usage_error(cfg) end
  if a.list then
    print(('%s, preset %s'):format(self.name, cfg.preset))
    for _, k in ipairs(sorted_keys(cfg)) do print(('  %-20s %s'):format(k, fmt(cfg[k]))) end
    local pts = self:points(cfg)
    print(('grid: %d points'):format(#pts))
    for i, p in ipairs(pts) do print(('  %4d  %s'):format(i, point_id(p))) end
    return 0
  end
  -- a device this node lacks is a usage error too: one line, before any work
  local e
  ok, e = pcall(batch.device, cfg.device, self.name)
  if not ok then return usage_error(e) end
  local t0 = os.time()
  local rows, code, path = self:execute(cfg, { out = a.out, task = a.task })
  if code ~= 0 then return code end
  if self.summarize and not a.task then self.summarize(rows, cfg) end
  print(('results: %s (%d s)'):format(path, os.time() - t0))
  return 0
end

setmetatable(M, { __call = function(_, spec) return M.new(spec) end })
M.Experiment, M.Run = Experiment, Run
return M
