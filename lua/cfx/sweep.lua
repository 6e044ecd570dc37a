-- sweep.lua: an experiment's grid as tasks, one process per grid point: run here N at a
-- time (`cfx sweep SCRIPT --local -j N`) or as a Slurm job array (`--slurm`), followed
-- with `cfx status DIR` and merged with `cfx collect`.  Every task is
-- `cfx SCRIPT [key=value ...] --task I --out DIR`, which writes its own results file
-- DIR/tasks/NAME-PRESET-taskIIII.h5 and resumes from its checkpoints when run again; the
-- sweep adds a record, DIR/sweep-PRESET.json, and logs under DIR/logs/.  docs/experiments.md.
local core = require 'cfx.core'
local json = require 'cfx.json'
local fs = require 'cfx.fs'
local results = require 'cfx.results'
local experiment = require 'cfx.experiment'
local proc = require 'cfx.proc'
local clock = core.clock

local M = {}

M.EXIT_REQUEUE = core.EXIT_REQUEUE -- 75: a task stopped by USR1/TERM after writing its checkpoint

-- "1-4,7,9-10" -> sorted unique task numbers within 1..n (an error names what is wrong).
function M.parse_tasks(text, n)
  local set, list = {}, {}
  for part in tostring(text):gmatch('[^,]+') do
    local a, b = part:match('^%s*(%d+)%s*%-%s*(%d+)%s*$')
    if not a then
      a = part:match('^%s*(%d+)%s*$')
      b = a
    end
    a, b = tonumber(a), tonumber(b)
    if not a or a < 1 or b < a then
      error(("--tasks: '%s' is not a task number or a range like 3-7"):format(part), 0)
    end
    if b > n then error(('--tasks: task %d but the grid has %d points'):format(b, n), 0) end
    for i = a, b do
      if not set[i] then set[i], list[#list + 1] = true, i end
    end
  end
  if #list == 0 then error('--tasks: no task given', 0) end
  table.sort(list)
  return list
end

-- The same list as Slurm's --array text ("1-4,7").
function M.array_spec(tasks)
  local parts, i = {}, 1
  while i <= #tasks do
    local j = i
    while j < #tasks and tasks[j + 1] == tasks[j] + 1 do j = j + 1 end
    parts[#parts + 1] = i == j and tostring(tasks[i]) or ('%d-%d'):format(tasks[i], tasks[j])
    i = j + 1
  end
  return table.concat(parts, ',')
end

-- plan{script=, args={'key=value', ...}, out=, tasks='1-3'|nil, force=false} -> the
-- sweep: the experiment, its configuration and points (a bad key or preset fails here,
-- before any task starts), the task list and the command of task I.  Also before any task
-- starts: a task file (or the grid's results file, which the merge reads) holding a run
-- of these points made with another configuration is an error naming the keys, as for
-- `cfx SCRIPT`; with force the tasks replace such runs (they get --force).
function M.plan(o)
  local script = fs.abspath(o.script)
  local exp = experiment.load(script)
  local preset, overrides = experiment.settings(o.args or {}, exp.name)
  local cfg = exp:config(preset, overrides)
  local points = exp:points(cfg)
  local out = fs.abspath(o.out or ('runs/' .. exp.name))
  local tasks = o.tasks and M.parse_tasks(o.tasks, #points) or M.parse_tasks('1-' .. #points, #points)
  if not o.force then
    for _, i in ipairs(tasks) do
      local c = exp:all_conflicts(cfg, out, i) -- the task's file and the grid's
      if #c > 0 then error(experiment.conflict_message(exp.name, c[1].path, c[1].conflicts), 0) end
    end
  end
  local host = core.host()
  local exe = host and host.exe ~= '' and host.exe or 'cfx'
  local ids = {}
  for i, p in ipairs(points) do ids[i] = experiment.point_id(p) end
  return {
    experiment = exp, name = exp.name, preset = cfg.preset, cfg = cfg, points = points, point_ids = ids,
    script = script, args = o.args or {}, out = out, tasks = tasks, exe = exe, cwd = fs.abspath('.'),
    record = ('%s/sweep-%s.json'):format(out, cfg.preset), force = o.force or false,
    -- argv of task i
    command = function(i)
      local argv = { exe, script }
      for _, a in ipairs(o.args or {}) do argv[#argv + 1] = a end
      for _, a in ipairs { '--task', tostring(i), '--out', out } do argv[#argv + 1] = a end
      if o.force then argv[#argv + 1] = '--force' end
      return argv
    end,
  }
end

-- With force: the runs of the plan's tasks that the grid's own results file holds with
-- another configuration go before any task starts (the tasks replace theirs, --force), so
-- that the merge meets one configuration per run.
local function drop_replaced(plan)
  if not plan.force then return end
  local exp, path = plan.experiment, plan.experiment:output_path(plan.cfg, plan.out)
  local gone = {}
  for _, i in ipairs(plan.tasks) do
    for _, c in ipairs(exp:conflicts(plan.cfg, path, plan.out, i)) do gone[#gone + 1] = c.id end
  end
  if #gone == 0 then return end
  local log = results.open(path)
  for _, id in ipairs(gone) do log:remove(id) end
  log:close()
end

-- The sweep record (DIR/sweep-PRESET.json): what was run, how, and the Slurm job ids.
local function read_record(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local text = f:read('*a')
  f:close()
  local ok, r = pcall(json.decode, text)
  if not ok or type(r) ~= 'table' then error(('%s: not a sweep record (%s)'):format(path, tostring(r)), 0) end
  return r
end
M.read_record = read_record

local function write_record(plan, mode, extra)
  local r = read_record(plan.record) or {}
  r.experiment, r.preset, r.script, r.args, r.out = plan.name, plan.preset, plan.script, plan.args, plan.out
  r.n_tasks, r.points, r.mode, r.updated = #plan.points, plan.point_ids, mode, os.time()
  for k, v in pairs(extra or {}) do r[k] = v end
  fs.mkdirs(plan.out)
  fs.write_atomic(plan.record, json.encode(r, '  ') .. '\n')
  return r
end

-- The last lines of a file (for a failed task's log).
local function tail(path, n)
  local f = io.open(path, 'rb')
  if not f then return {} end
  local lines = {}
  for line in f:lines() do
    lines[#lines + 1] = line
    if #lines > n then table.remove(lines, 1) end
  end
  f:close()
  return lines
end

-- ---- --local ------------------------------------------------------------------------------

-- Run the plan's tasks here, `jobs` at a time, each with max(1, cpus / jobs) libtorch
-- threads (CFX_THREADS, unless set).  USR1/TERM (or ^C) stop the sweep: running tasks
-- (each in a process group of its own, out of the terminal's ^C) get USR1, write their
-- checkpoints and exit; a later sweep resumes them.
-- Returns {done=, failed={{task=, status=, log=}}, interrupted=bool}.
function M.run_local(plan, jobs, say)
  say = say or function(s) io.stderr:write(s, '\n') end
  jobs = math.max(1, math.min(jobs or 1, #plan.tasks))
  fs.mkdirs(plan.out .. '/logs')
  write_record(plan, 'local', { local_jobs = jobs, local_tasks = M.array_spec(plan.tasks) })
  -- the experiment's shared inputs once, here, rather than by every task at the same time
  if plan.experiment.prepare then plan.experiment.prepare(plan.cfg) end
  drop_replaced(plan)
  if not os.getenv('CFX_THREADS') then proc.setenv('CFX_THREADS', math.max(1, math.floor(core.C.cfx_cpu_count() / jobs))) end
  local queue, running, result = {}, {}, { done = 0, failed = {}, interrupted = false }
  for i = #plan.tasks, 1, -1 do queue[#queue + 1] = plan.tasks[i] end
  local n, started = #plan.tasks, 0
  local function log_of(i) return ('%s/logs/%s-task%04d.log'):format(plan.out, plan.preset, i) end
  local function reap()
    for pid, t in pairs(running) do
      local how, code = proc.poll(pid)
      if how then
        running[pid] = nil
        local status = proc.status_code(how, code)
        local secs = clock() - t.t0
        if status == 0 then
          result.done = result.done + 1
          say(('[%d/%d] task %d (%s) done in %.1f s'):format(result.done + #result.failed, n, t.task,
            plan.point_ids[t.task], secs))
        elseif status == M.EXIT_REQUEUE and result.interrupted then
          say(('task %d (%s) stopped with its checkpoint written'):format(t.task, plan.point_ids[t.task]))
        else
          result.failed[#result.failed + 1] = { task = t.task, status = status, log = t.log }
          say(('[%d/%d] task %d (%s) FAILED with exit status %d after %.1f s; log %s:'):format(
            result.done + #result.failed, n, t.task, plan.point_ids[t.task], status, secs, t.log))
          for _, line in ipairs(tail(t.log, 8)) do say('    ' .. line) end
        end
      end
    end
  end
  local ok, err = pcall(function()
    while #queue > 0 or next(running) do
      while #queue > 0 and started - result.done - #result.failed < jobs and not result.interrupted do
        local i = table.remove(queue)
        local log = log_of(i)
        local f = io.open(log, 'ab')
        if f then
          f:write(('---- %s: %s\n'):format(os.date('!%Y-%m-%dT%H:%M:%SZ'), table.concat(plan.command(i), ' ')))
          f:close()
        end
        local pid = proc.spawn(plan.command(i), { log = log, new_group = true })
        running[pid] = { task = i, t0 = clock(), log = log }
        started = started + 1
      end
      proc.sleep(0.1)
      reap()
      if core.signal() and not result.interrupted then error('signal', 0) end
    end
  end)
  if not ok then -- a signal or ^C: stop the running tasks cleanly, start no more
    result.interrupted = true
    local n_running = 0
    for _ in pairs(running) do n_running = n_running + 1 end
    say(('cfx sweep: %s; asking %d running task%s to write a checkpoint and stop'):format(
      err == 'signal' and ('SIG' .. tostring(core.signal())) or 'interrupted', n_running, n_running == 1 and '' or 's'))
    for pid in pairs(running) do proc.kill(pid, proc.SIGUSR1) end
    while next(running) do
      local cok = pcall(function()
        proc.sleep(0.1)
        reap()
      end)
      if not cok then -- a second ^C: stop waiting, kill them
        for pid in pairs(running) do proc.kill(pid, proc.SIGKILL) end
      end
    end
    if err ~= 'signal' and not tostring(err):match('interrupted') then error(err, 0) end
  end
  return result
end

-- Merge the task files (and the grid's own results file, when a plain run made one)
-- into DIR/NAME-PRESET.h5; returns its path and the rows a summarize function takes.
function M.merge(plan)
  local inputs = {}
  local main = experiment.results_path(plan.out, plan.name, plan.preset)
  if fs.exists(main) then inputs[#inputs + 1] = main end
  for i = 1, #plan.points do
    local p = experiment.task_path(plan.out, plan.name, plan.preset, i)
    if fs.exists(p) then inputs[#inputs + 1] = p end
  end
  if #inputs == 0 then return nil, {} end
  local tmp = main .. '.merge.h5'
  results.collect(inputs, tmp)
  local ok, e = os.rename(tmp, main)
  if not ok then error(('cannot write %s: %s'):format(main, e), 0) end
  local rows = {}
  local log = results.open(main, { readonly = true })
  for i, p in ipairs(plan.points) do
    local id = plan.point_ids[i]
    if log:has_run(id) then
      local a = log:run(id):get()
      if a.status == 'done' then rows[#rows + 1] = { point = p, id = id, summary = json.decode(a.summary or '{}') } end
    end
  end
  log:close()
  return main, rows
end

-- ---- --slurm ------------------------------------------------------------------------------

-- The batch script of a job array over plan.tasks.  o: {grace = seconds before the time
-- limit when Slurm sends USR1 (120), max_running = M (array throttle), sbatch = {extra
-- #SBATCH arguments}}.  A task that a signal stopped (exit 75: checkpoint written)
-- requeues itself and resumes when it starts again.
function M.batch_script(plan, o)
  o = o or {}
  local q = proc.quote
  local array = M.array_spec(plan.tasks) .. (o.max_running and ('%%%d'):format(o.max_running) or '')
  local lines = {
    '#!/bin/bash',
    ('# cfx sweep of %s, preset %s: %d task%s (written %s by cfx %s)'):format(plan.name, plan.preset, #plan.tasks,
      #plan.tasks == 1 and '' or 's', os.date('!%Y-%m-%dT%H:%M:%SZ'), core.version),
    ('#SBATCH --job-name=%s'):format(q(('cfx-%s-%s'):format(plan.name, plan.preset))),
    ('#SBATCH --array=%s'):format(array),
    ('#SBATCH --output=%s'):format(q(('%s/logs/%s-%%A_%%a.log'):format(plan.out, plan.preset))),
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    ('#SBATCH --signal=B:USR1@%d'):format(o.grace or 120),
  }
  for _, a in ipairs(o.sbatch or {}) do lines[#lines + 1] = '#SBATCH ' .. a end
  local argv = plan.command('"$SLURM_ARRAY_TASK_ID"')
  local cmd = {}
  for i, a in ipairs(argv) do cmd[i] = a == '"$SLURM_ARRAY_TASK_ID"' and a or q(a) end
  local body = {
    '',
    'set -u',
    'echo "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) task $SLURM_ARRAY_TASK_ID on $(hostname), job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}, restart ${SLURM_RESTART_COUNT:-0}"',
    -- USR1 (the time limit is near) or TERM (preemption): the task checkpoints and exits 75
    'child=',
    'forward() { [ -n "$child" ] && kill -USR1 "$child" 2>/dev/null; }',
    'trap forward USR1 TERM',
    ('cd %s'):format(q(plan.cwd)), -- where the sweep was started: the script's relative paths
    table.concat(cmd, ' ') .. ' &',
    'child=$!',
    '# a trapped signal ends `wait` early: wait until the task itself has exited',
    'while true; do',
    '  wait "$child"; status=$?',
    '  kill -0 "$child" 2>/dev/null || break',
    'done',
    ('if [ "$status" -eq %d ]; then'):format(M.EXIT_REQUEUE),
    '  echo "task $SLURM_ARRAY_TASK_ID: checkpoint written, requeueing"',
    '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    'fi',
    'exit "$status"',
  }
  for _, l in ipairs(body) do lines[#lines + 1] = l end
  return table.concat(lines, '\n') .. '\n'
end

-- Write the batch script and (unless dry_run) submit it with sbatch --parsable.
-- Returns the script path and the job id (nil on a dry run).
function M.submit(plan, o)
  fs.mkdirs(plan.out .. '/logs')
  local path = ('%s/sweep-%s.sbatch'):format(plan.out, plan.preset)
  fs.write_atomic(path, M.batch_script(plan, o))
  if o.dry_run then return path, nil end
  if plan.experiment.prepare then plan.experiment.prepare(plan.cfg) end -- as run_local does
  drop_replaced(plan)
  local ok, out, code = proc.run { 'sbatch', '--parsable', path }
  if not ok then error(('sbatch %s failed (exit %s): %s'):format(path, tostring(code), out:gsub('%s+$', '')), 0) end
  local id = out:match('^%s*(%d+)')
  if not id then error(('sbatch %s: no job id in its output: %s'):format(path, out), 0) end
  local r = read_record(plan.record) or {}
  local jobs = r.slurm_jobs or {}
  jobs[#jobs + 1] = { id = id, tasks = M.array_spec(plan.tasks), submitted = os.time() }
  write_record(plan, 'slurm', { slurm_jobs = jobs })
  return path, id
end

-- ---- status ---------------------------------------------------------------------------

-- Slurm's view of the record's jobs: task number -> {state=, reason=, job=} for
-- tasks still pending or running (squeue -r); nil, why when squeue cannot answer.
local function squeue_states(record)
  local states = {}
  for _, j in ipairs(record.slurm_jobs or {}) do
    local ok, out = proc.run { 'squeue', '-h', '-r', '-j', j.id, '-o', '%i|%T|%r' }
    if not ok and not out:match('Invalid job id') then return nil, (out:gsub('%s+$', '')) end -- (a purged job: none left)
    for line in out:gmatch('[^\n]+') do
      local job, task, state, reason = line:match('^(%d+)_(%d+)|([^|]*)|(.*)$')
      if job then states[tonumber(task)] = { state = state, reason = reason, job = job } end
    end
  end
  return states
end

-- status(dir) -> a list of sweeps, each {record=, path=, tasks = {{task=, id=, state=,
-- slurm=, seconds=, error=}}, counts = {state = n}, slurm_error=}.  A task's state comes
-- from its results file (done, running, interrupted, failed; 'not started' without
-- one) and, where Slurm still holds it, from squeue (pending, running, ...).
function M.status(dir)
  local _, files = fs.list(dir)
  local sweeps = {}
  for _, f in ipairs(files) do
    local preset = f:match('^sweep%-(.+)%.json$')
    if preset then
      local path = dir .. '/' .. f
      local r = read_record(path)
      local sq, why
      if r.slurm_jobs and #r.slurm_jobs > 0 then sq, why = squeue_states(r) end
      local s = { record = r, path = path, tasks = {}, counts = {}, slurm_error = why }
      for i = 1, r.n_tasks or 0 do
        local t = { task = i, id = r.points and r.points[i] or '?', state = 'not started' }
        local tp = experiment.task_path(dir, r.experiment, r.preset, i)
        if fs.exists(tp) then
          local ok, log = pcall(results.open, tp, { readonly = true })
          if ok then
            local a = log:has_run(t.id) and log:run(t.id):get() or {}
            log:close()
            t.state = a.status or 'not started'
            t.seconds, t.error, t.host = a.seconds, a.error, a.host
          else
            t.state, t.error = 'unreadable', tostring(log)
          end
        end
        local q = sq and sq[i]
        if q then
          t.slurm = q.state .. ((q.reason ~= '' and q.reason ~= 'None') and (' (' .. q.reason .. ')') or '')
          if t.state ~= 'done' then t.state = q.state:lower() end
        end
        s.counts[t.state] = (s.counts[t.state] or 0) + 1
        s.tasks[i] = t
      end
      sweeps[#sweeps + 1] = s
    end
  end
  return sweeps
end

return M
