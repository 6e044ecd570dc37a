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
--     summarize = function(rows, cfg, path) ... end,        -- optional: the final table (path: the results file)
--   }
-- and `cfx SCRIPT [preset=NAME] [key=value ...] [--list] [--task I] [--out DIR]` runs it.
-- Every preset has a device, 'auto' unless it says otherwise ('cpu', 'cuda', 'cuda:N'):
-- resolved once per invocation, before any work (cfx.batch.device: 'auto' is CUDA when
-- the build and the node have it, else the CPU); run() sees the resolved cfg.device and
-- moves its model there; the run's config and its `device` attribute record it.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local json = require 'cfx.json'
local fs = require 'cfx.fs'
local results = require 'cfx.results'
local batch = require 'cfx.batch'
local train = require 'cfx.train'
local eval = require 'cfx.eval'
local checkpoint = require 'cfx.checkpoint'
local raise = core.raise

local M = {}
local Experiment = {}
Experiment.__index = Experiment
local Run = {}
Run.__index = Run

-- ---- configuration ----------------------------------------------------------------------
local copy = core.copy

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
    if not v then raise(("%s: expected a number, got '%s'"):format(key, text)) end
    return v
  elseif t == 'boolean' then
    if text == 'true' or text == '1' or text == 'yes' then return true end
    if text == 'false' or text == '0' or text == 'no' then return false end
    raise(("%s: expected true or false, got '%s'"):format(key, text))
  elseif t == 'table' then
    local r = {}
    for item in text:gmatch('[^,]+') do
      local v = tonumber(item)
      if type(like[1]) == 'number' and not v then
        raise(("%s: expected a comma-separated list of numbers, got '%s'"):format(key, text))
      end
      r[#r + 1] = type(like[1]) == 'number' and v or item
    end
    return r
  end
  return text
end

-- settings(list, who) -> preset (or nil), overrides {key = text}: the one parser of a
-- command line's `key=value` words, for `cfx SCRIPT` and `cfx sweep SCRIPT` alike
-- (`preset=NAME` picks the preset; the values stay text until Experiment:config types
-- them).  Anything else in list is an error naming it.
function M.settings(list, who)
  local preset, overrides = nil, {}
  for _, s in ipairs(list) do
    local k, v = tostring(s):match('^([%w_]+)=(.*)$')
    if not k then raise(("%s: unrecognised argument '%s' (expected key=value; see --help)"):format(who, tostring(s))) end
    if k == 'preset' then preset = v else overrides[k] = v end
  end
  return preset, overrides
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
  if not chunk then raise(e) end
  local ok, exp = pcall(chunk)
  if not ok then raise(('%s: %s'):format(script, tostring(exp))) end
  if getmetatable(exp) ~= Experiment then
    raise(('%s: not an experiment script (it must return cfx.experiment{...}, got %s)'):format(script, type(exp)))
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
      table.concat(sorted_keys(self.presets), ', ')))
  end
  local cfg = copy(base)
  if cfg.device == nil then cfg.device = 'auto' end
  for k, v in pairs(overrides or {}) do
    if cfg[k] == nil then
      raise(("%s: unknown key '%s' for preset %s (known: %s)"):format(self.name, k, preset,
        table.concat(sorted_keys(cfg), ', ')))
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
-- twice) and the run's config hashed in.  On SIGUSR1/SIGTERM fit checkpoints and returns
-- `interrupted`; the runner then marks the run interrupted, flushes the results and
-- returns exit status 75 (core.EXIT_REQUEUE).
function Run:fit(opts)
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
  -- the device is not hashed: a checkpoint written on one device resumes on another
  if o.config == nil then o.config = results.comparable_config(self.cfg) end
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
  local r = train.fit(o)
  if r.interrupted then self.interrupted = r.interrupted end
  return r
end

-- run:evaluate(dataset, eval_result [, {predictions=true}]) -> tables: writes
-- eval/<dataset> (per generator, the summary in its attributes), the per-architecture
-- table and the predictions.
function Run:evaluate(dataset, r, opts)
  local keep_predictions = not (opts and opts.predictions == false)
  local t = eval.tables(r)
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
  -- the run's summary (the results file's run attribute, what reports read) also holds
  -- the per-architecture means: summary[dataset].architectures[arch] = {ap=, acc=, n=}
  local by_arch = {}
  for _, a in ipairs(t.architectures) do by_arch[a.architecture] = { ap = a.ap, acc = a.acc, n = a.n_generators } end
  summary.architectures = by_arch
  self.summary[dataset] = summary
  return t
end

-- run:set{key = value}: attributes of the run (numbers and strings).
function Run:set(attrs) self.log_run:set(attrs) end

-- ---- the command line -----------------------------------------------------------------------
local usage = [[
usage: cfx %s [preset=NAME] [key=value ...] [--list] [--task I] [--out DIR] [--force] [--help]

Runs every point of the experiment's grid in order, skipping points whose results are
complete and resuming interrupted ones from their checkpoints.  A point's results count
only for the configuration they were made with: when DIR holds a finished run of a point
(or one with checkpoints) made with another configuration (device aside), nothing runs
and the differing keys are named; use another --out DIR, or --force.
  preset=NAME   a preset (%s; default %s)
  key=value     override a configuration value (typed as the preset's value)
  --list        print the configuration and the grid, run nothing
  --task I      run grid point I only (1-based; what a Slurm array task calls)
  --out DIR     results and checkpoints under DIR (default runs/%s)
  --force       replace runs made with another configuration (their results and
                checkpoints are deleted) instead of refusing
]]

local function parse_args(self, argv)
  local a, words = {}, {}
  local i = 1
  while i <= #argv do
    local s = argv[i]
    if s == '--list' then a.list = true
    elseif s == '--help' or s == '-h' then a.help = true
    elseif s == '--task' then
      i = i + 1
      a.task = tonumber(argv[i])
      if not a.task or a.task < 1 or a.task % 1 ~= 0 then raise(("--task needs a positive integer, got '%s'"):format(tostring(argv[i]))) end
    elseif s == '--out' then
      i = i + 1
      a.out = argv[i]
      if not a.out then raise('--out needs a directory') end
    elseif s == '--force' then a.force = true
    else
      words[#words + 1] = s
    end
    i = i + 1
  end
  a.preset, a.overrides = M.settings(words, self.name)
  return a
end

local function fmt(v)
  if type(v) == 'table' then return '{' .. table.concat(v, ', ') .. '}' end
  return tostring(v)
end

-- The configuration of grid point p: the preset's (cfg) with the point's keys.
local function point_config(cfg, p)
  local pcfg = copy(cfg)
  for k, v in pairs(p) do pcfg[k] = v end
  return pcfg
end

local function checkpoint_dir(out, preset, id)
  return ('%s/checkpoints/%s/%s'):format(out, preset, (id:gsub('[^%w=,._-]', '_')))
end

-- The results file a run of cfg goes to: the grid's, or with task the task's own.
function Experiment:output_path(cfg, out, task)
  out = out or ('runs/' .. self.name)
  return task and M.task_path(out, self.name, cfg.preset, task) or M.results_path(out, self.name, cfg.preset)
end

-- Experiment:conflicts(cfg, path, out [, task]) -> the runs in the results file at path,
-- of the points this invocation runs (every point, or only grid point task), that were
-- made with another configuration than cfg gives the point (device aside, as in the
-- checkpoints) and that hold results of it: done, or with checkpoints in OUT to resume
-- from.  {{id=, index=, status=, diff=results.config_diff(old, new)}}, {} when none.
-- Such a run's results belong to its own configuration, not to this point's.  (A run of
-- another configuration with nothing to resume, failed or stopped early, simply runs
-- again with this one.)
function Experiment:conflicts(cfg, path, out, task)
  if not fs.exists(path) then return {} end
  out = out or ('runs/' .. self.name)
  local log = results.open(path, { readonly = true })
  local r = {}
  for i, p in ipairs(self:points(cfg)) do
    local id = point_id(p)
    if (not task or task == i) and log:has_run(id) then
      local run = log:run(id)
      local ok, old = pcall(run.config, run)
      if ok and type(old) == 'table' then
        local diff = results.config_diff(old, point_config(cfg, p))
        local status = run:get().status or '?'
        if #diff > 0 and (status == 'done' or checkpoint.latest(checkpoint_dir(out, cfg.preset, id))) then
          r[#r + 1] = { id = id, index = i, status = status, diff = diff }
        end
      end
    end
  end
  log:close()
  return r
end

-- Experiment:all_conflicts(cfg, out [, task]) -> {{path=, conflicts=...}, ...}: the
-- conflicts (above) in every results file a run of these points meets: its own, and for
-- a task the grid's results file too, whose runs share their checkpoint directories
-- (OUT/checkpoints/PRESET/ID) with the tasks'.  {} when there are none.
function Experiment:all_conflicts(cfg, out, task)
  local paths = { self:output_path(cfg, out, task) }
  if task then paths[2] = self:output_path(cfg, out) end
  local r = {}
  for _, path in ipairs(paths) do
    local c = self:conflicts(cfg, path, out, task)
    if #c > 0 then r[#r + 1] = { path = path, conflicts = c } end
  end
  return r
end

-- The refusal of a changed configuration: the file, the first run and its differing keys.
function M.conflict_message(name, path, conflicts)
  local c, n = conflicts[1], #conflicts
  return ("%s: %s already holds %s made with another configuration (%s%s: %s); results count only for the " ..
    "configuration they were made with: use another --out DIR for this configuration, or --force to replace %s " ..
    "(%s results and checkpoints are deleted)"):format(name, path, n == 1 and 'a run of this point' or
    (n .. ' runs of these points'), c.id, n > 1 and (' and ' .. (n - 1) .. ' more') or '',
    results.describe_diff(c.diff, 'there', 'now'), n == 1 and 'it' or 'them', n == 1 and 'its' or 'their')
end

-- Run every grid point (only point opts.task with --task) -> rows of their summaries, the
-- exit status (0, or core.EXIT_REQUEUE, 75, when a signal interrupted a run), the results
-- path.  opts: {out=, task=, force=}.  Before any work: the device is resolved, the results
-- file is checked for runs of these points made with another configuration (an error
-- naming them, unless force: then they and their checkpoints are deleted), and libtorch's
-- threads are set once for the invocation when the preset has `workers` (CFX_THREADS,
-- else the CPUs less the loader's workers; tensor.default_threads).
function Experiment:execute(cfg, opts)
  opts = opts or {}
  local points = self:points(cfg)
  local out = opts.out or ('runs/' .. self.name)
  local task = opts.task
  if task and task > #points then
    raise(('%s: --task %d but the grid has %d points'):format(self.name, task, #points))
  end
  local path = self:output_path(cfg, out, task)
  local device = batch.device(cfg.device, self.name) -- before any work: no CUDA here is one clear error
  local conflicts = self:all_conflicts(cfg, out, task)
  if #conflicts > 0 and not opts.force then
    raise(M.conflict_message(self.name, conflicts[1].path, conflicts[1].conflicts))
  end
  if type(cfg.workers) == 'number' then tensor.threads(tensor.default_threads(cfg.workers)) end
  fs.mkdirs(out)
  if task then fs.mkdirs(out .. '/tasks') end
  -- shared inputs (data made on first use): before any point, and before a sweep's tasks
  if self.prepare then self.prepare(cfg) end
  local log = results.open(path)
  for _, f in ipairs(conflicts) do -- --force: the old configuration's run goes, with its checkpoints
    local flog = f.path == path and log or results.open(f.path)
    for _, c in ipairs(f.conflicts) do
      io.stderr:write(('%s: replacing run %s of %s (%s, made with another configuration: %s)\n'):format(self.name,
        c.id, f.path, c.status, results.describe_diff(c.diff, 'there', 'now')))
      flog:remove(c.id)
      local dir = checkpoint_dir(out, cfg.preset, c.id)
      for _, ck in ipairs(checkpoint.list(dir)) do os.remove(ck.path) end
      checkpoint.clean_stale(dir)
    end
    if flog ~= log then flog:close() end
  end
  log:flush()
  local rows = {}
  for i, p in ipairs(points) do
    if not task or task == i then
      local pcfg = point_config(cfg, p)
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
          checkpoint_dir = checkpoint_dir(out, cfg.preset, id), out = out, summary = {} }, Run)
        local t0 = os.time()
        local ok, err = pcall(self.run, pcfg, run)
        if not ok then
          lr:set { status = 'failed', error = tostring(err), end_time = now() }
          -- a full disk may refuse this write too: the run's own error is the one to report
          -- (the file then keeps what it held after its last write)
          pcall(log.close, log)
          error(err, 0)
        end
        local sig = run.interrupted or core.signal()
        if sig then
          lr:set { status = 'interrupted', end_time = now() }
          log:close()
          io.stderr:write(('%s: interrupted by SIG%s; checkpoint written, run again to resume\n'):format(self.name, sig))
          return rows, core.EXIT_REQUEUE, path
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
  -- so is a results directory holding these points' runs of another configuration
  if not a.force then
    local cok, conflicts = pcall(self.all_conflicts, self, cfg, a.out, a.task)
    if not cok then return usage_error(conflicts) end
    if #conflicts > 0 then
      return usage_error(M.conflict_message(self.name, conflicts[1].path, conflicts[1].conflicts))
    end
  end
  local t0 = os.time()
  local rows, code, path = self:execute(cfg, { out = a.out, task = a.task, force = a.force })
  if code ~= 0 then return code end
  if self.summarize and not a.task then self.summarize(rows, cfg, path) end
  print(('results: %s (%d s)'):format(path, os.time() - t0))
  return 0
end

setmetatable(M, { __call = function(_, spec) return M.new(spec) end })
M.Experiment, M.Run = Experiment, Run
return M
