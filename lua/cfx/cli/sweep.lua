-- cfx sweep SCRIPT [key=value ...] --local [-j N] | --slurm [...] [-- SBATCH_ARGS]:
-- an experiment's grid as tasks (cfx.sweep; docs/experiments.md, "Sweeps").
local args = require 'cfx.cli.args'

local spec = {
  name = 'cfx sweep',
  usage = 'cfx sweep SCRIPT [preset=NAME] [key=value ...] (--local [-j N] | --slurm [options] [-- SBATCH_ARGS...])',
  about = 'Runs every point of an experiment\'s grid as its own task, `cfx SCRIPT [key=value ...]\n' ..
      '--task I --out DIR`, which writes DIR/tasks/NAME-PRESET-taskIIII.h5 and resumes from its\n' ..
      'checkpoints when run again.\n' ..
      '  --local   runs the tasks here, N at a time (-j N), each with cpus/N libtorch threads,\n' ..
      '            logs in DIR/logs/; then merges the task files into DIR/NAME-PRESET.h5 and\n' ..
      '            prints the experiment\'s summary.  USR1, TERM or ^C stop it: running tasks\n' ..
      '            write their checkpoints first; the same command resumes.\n' ..
      '  --slurm   writes DIR/sweep-PRESET.sbatch, a job array with one task per grid point\n' ..
      '            (--requeue, --signal=B:USR1@GRACE: a task near its time limit checkpoints,\n' ..
      '            requeues itself and resumes), and submits it with sbatch.  Arguments\n' ..
      '            after -- go to the script as #SBATCH lines (--partition=..., --time=...).\n' ..
      'Follow with `cfx status DIR`; merge with `cfx collect DIR` (or run the same --local\n' ..
      'sweep, which skips finished tasks).  A task\'s results count only for the configuration\n' ..
      'they were made with: when DIR holds runs of these points made with another one\n' ..
      '(device aside), nothing starts and the differing keys are named; use another --out,\n' ..
      'or --force to replace those runs.',
  options = {
    { 'local', 'flag', false, 'run the tasks on this machine' },
    { 'jobs', 'int', 1, 'with --local: tasks at a time (also -j N)' },
    { 'slurm', 'flag', false, 'submit a Slurm job array' },
    { 'dry_run', 'flag', false, 'with --slurm: write the batch script and print it, submit nothing' },
    { 'grace', 'int', 120, 'with --slurm: seconds before the time limit when a task is told to checkpoint' },
    { 'max_running', 'int', nil, 'with --slurm: at most M tasks at once (--array=...%M)' },
    { 'tasks', 'string', nil, 'only these grid points, e.g. 1-4,9 (default: all)' },
    { 'out', 'string', nil, 'results, checkpoints and logs (default runs/NAME, as the script)' },
    { 'force', 'flag', false, 'replace runs of these points made with another configuration (else refused)' },
  },
}

local strip = args.message

return function(argv)
  -- -j N / -jN as --jobs N; everything after -- is for sbatch
  local mine, sbatch = {}, {}
  local i, rest = 1, false
  while i <= #argv do
    local a = argv[i]
    if rest then sbatch[#sbatch + 1] = a
    elseif a == '--' then rest = true
    elseif a == '-j' then mine[#mine + 1] = '--jobs'
    elseif a:match('^%-j%d+$') then mine[#mine + 1], mine[#mine + 2] = '--jobs', a:sub(3)
    else mine[#mine + 1] = a end
    i = i + 1
  end
  local o, pos = args.parse(mine, spec)
  if not o then return pos end
  local function usage_error(msg)
    io.stderr:write('cfx sweep: ', msg, '\n')
    return 2
  end
  if #pos < 1 then return usage_error('expected an experiment SCRIPT (see --help)') end
  if o['local'] == o.slurm then return usage_error('give one of --local and --slurm') end
  if #sbatch > 0 and not o.slurm then return usage_error('arguments after -- are for sbatch: they need --slurm') end
  if o.jobs < 1 then return usage_error(('-j must be at least 1, got %d'):format(o.jobs)) end
  if o.max_running and o.max_running < 1 then return usage_error('--max-running must be at least 1') end
  for _, a in ipairs(sbatch) do -- sbatch takes unambiguous prefixes: --out is --output
    local long, short = a:match('^%-%-([^=]+)'), a:match('^%-(%a)')
    for _, own in ipairs { 'array', 'output', 'signal' } do
      if (long and #long >= 2 and own:sub(1, #long) == long) or (short and ({ a = 'array', o = 'output' })[short] == own) then
        return usage_error(('%s after -- would set sbatch\'s --%s, which cfx sweep sets (options of cfx sweep go before --)')
          :format(a, own))
      end
    end
  end
  local script, kv = pos[1], {}
  for k = 2, #pos do kv[#kv + 1] = pos[k] end

  local sweep = require 'cfx.sweep'
  local ok, plan = pcall(sweep.plan, { script = script, args = kv, out = o.out, tasks = o.tasks, force = o.force })
  if not ok then return usage_error(strip(plan)) end
  local n = #plan.tasks

  if o.slurm then
    local sok, path, id = pcall(sweep.submit, plan, { grace = o.grace, max_running = o.max_running, sbatch = sbatch,
      dry_run = o.dry_run })
    if not sok then
      io.stderr:write('cfx sweep: ', strip(path), '\n')
      return 1
    end
    if o.dry_run then
      io.stdout:write(io.open(path, 'rb'):read('*a'))
      print(('cfx sweep: wrote %s (%d task%s); submit it with: sbatch %s'):format(path, n, n == 1 and '' or 's', path))
    else
      print(('cfx sweep: submitted job %s: %s, preset %s, %d task%s (array %s)'):format(id, plan.name, plan.preset, n,
        n == 1 and '' or 's', sweep.array_spec(plan.tasks)))
      print(('  batch script %s\n  logs %s/logs/%s-%s_*.log\n  follow: cfx status %s'):format(path, plan.out,
        plan.preset, id, plan.out))
    end
    return 0
  end

  io.stderr:write(('cfx sweep: %s, preset %s: %d task%s, %d at a time, out %s\n'):format(plan.name, plan.preset, n,
    n == 1 and '' or 's', math.min(o.jobs, n), plan.out))
  local t0 = os.time()
  local rok, r = pcall(sweep.run_local, plan, o.jobs)
  if not rok then
    io.stderr:write('cfx sweep: ', strip(r), '\n')
    return 1
  end
  if r.interrupted then
    io.stderr:write('cfx sweep: stopped; run the same command to resume\n')
    return sweep.EXIT_REQUEUE
  end
  if #r.failed > 0 then
    local tasks = {}
    for _, f in ipairs(r.failed) do tasks[#tasks + 1] = f.task end
    table.sort(tasks)
    io.stderr:write(('cfx sweep: %d of %d tasks failed (%s); rerun them with --tasks %s after a fix\n'):format(
      #tasks, n, table.concat(tasks, ', '), sweep.array_spec(tasks)))
    return 1
  end
  local mok, path, rows = pcall(sweep.merge, plan)
  if not mok then
    io.stderr:write('cfx sweep: merging the task files: ', strip(path), '\n')
    return 1
  end
  if plan.experiment.summarize and #rows == #plan.points then plan.experiment.summarize(rows, plan.cfg, path) end
  print(('results: %s (%d task%s, %d s)'):format(path, n, n == 1 and '' or 's', os.time() - t0))
  return 0
end
