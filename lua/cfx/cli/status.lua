-- cfx status DIR [--json]: where the sweeps recorded in DIR (DIR/sweep-PRESET.json, made
-- by cfx sweep) stand, task by task: from each task's results file and, for Slurm
-- sweeps, from squeue (cfx.sweep.status).
local args = require 'cfx.cli.args'

local spec = {
  name = 'cfx status',
  usage = 'cfx status DIR [--json] [--all]',
  about = 'Prints, for each sweep recorded in DIR, how many tasks are done, running, pending,\n' ..
      'interrupted, failed or not started, and the tasks that are not done (all of them\n' ..
      'with --all).  A task\'s state comes from its results file (DIR/tasks/...) and, while\n' ..
      'Slurm still holds it, from squeue.  Exit status 0 when every task is done, 3 otherwise.',
  options = {
    { 'json', 'flag', false, 'print the status as JSON' },
    { 'all', 'flag', false, 'list every task, done ones too' },
  },
}

local order = { 'done', 'running', 'pending', 'interrupted', 'failed', 'not started' }

return function(argv)
  local o, dir = args.parse_dir(argv, spec)
  if not o then return dir end
  local ok, sweeps = pcall(require('cfx.sweep').status, dir)
  if not ok then
    io.stderr:write('cfx status: ', args.message(sweeps), '\n')
    return 1
  end
  if #sweeps == 0 then
    io.stderr:write(('cfx status: no sweep recorded in %s (no sweep-*.json; see cfx sweep --help)\n'):format(dir))
    return 1
  end
  local all_done = true
  if o.json then
    local out = {}
    for _, s in ipairs(sweeps) do
      out[#out + 1] = { experiment = s.record.experiment, preset = s.record.preset, mode = s.record.mode,
        slurm_jobs = s.record.slurm_jobs, counts = s.counts, tasks = s.tasks, slurm_error = s.slurm_error }
      all_done = all_done and (s.counts.done or 0) == #s.tasks
    end
    print(args.json(out))
    return all_done and 0 or 3
  end
  for _, s in ipairs(sweeps) do
    local r = s.record
    local jobs = {}
    for _, j in ipairs(r.slurm_jobs or {}) do jobs[#jobs + 1] = j.id end
    print(('%s: %s, preset %s, %d task%s%s'):format(s.path, r.experiment, r.preset, #s.tasks, #s.tasks == 1 and '' or 's',
      #jobs > 0 and (', Slurm job' .. (#jobs > 1 and 's ' or ' ') .. table.concat(jobs, ', ')) or ' (local)'))
    local parts, seen = {}, {}
    for _, k in ipairs(order) do
      if s.counts[k] then parts[#parts + 1], seen[k] = ('%s %d'):format(k, s.counts[k]), true end
    end
    for k, v in pairs(s.counts) do
      if not seen[k] then parts[#parts + 1] = ('%s %d'):format(k, v) end
    end
    print('  ' .. table.concat(parts, ', '))
    if s.slurm_error then print('  (squeue did not answer: ' .. s.slurm_error .. ')') end
    for _, t in ipairs(s.tasks) do
      if o.all or t.state ~= 'done' then
        print(('  %5d  %-12s %-36s%s%s%s'):format(t.task, t.state, t.id, t.slurm and ('  slurm: ' .. t.slurm) or '',
          t.seconds and ('  ' .. t.seconds .. ' s') or '', t.error and ('  error: ' .. t.error:gsub('\n.*', '')) or ''))
      end
    end
    all_done = all_done and (s.counts.done or 0) == #s.tasks
  end
  return all_done and 0 or 3
end
