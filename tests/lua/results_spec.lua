-- results_spec.lua: cfx.results: runs and attributes, appended rows (types, columns fixed
-- by the first row, resume by truncation), whole tables from rows or columns with a
-- summary, arrays from tensors, reading back after a reopen, flushing by time and by
-- status, the writer's lock, refusals that name the file, and collect's choice among
-- copies of a run.  (The layout as h5py sees it is checked in
-- tests/reference/test_results_h5py.py; killed writers in test_results_kill.py.)
local cfx = require 'cfx'

local dir = os.tmpname()
os.remove(dir)
os.execute('mkdir -p ' .. dir)
local n = 0
local function fresh()
  n = n + 1
  return ('%s/r%d.h5'):format(dir, n)
end

local function contains(s, part) return s:find(part, 1, true) ~= nil end

describe('cfx.results', function()
  teardown(function() os.execute('rm -rf ' .. dir) end)

  it('keeps runs, attributes and appended rows through a reopen', function()
    local path = fresh()
    local log = cfx.results.open(path)
    local run = log:run('k=3,s=1', { config = { k = 3, lr = 2e-5 }, experiment = 'scaling', preset = 'cpu', seed = 1 })
    for s = 1, 100 do
      run:scalars('train', { step = s, epoch = math.floor(s / 50), loss = 1 / s, lr = 0, images_per_s = 250,
        phase = s % 2 == 0 and 'even' or 'odd' })
    end
    log:run('second'):set { status = 'running', note = 'x' }
    log:scalars('second', 'val', { step = 1, x = 2 })
    log:scalars('second', 'val', { step = 2, x = 2.5 }) -- x becomes float64
    run:set { status = 'done', seconds = 12 }
    log:close()
    log:close() -- twice is fine
    assert.has_error(function() log:runs() end, path .. ': the results log is closed')

    log = cfx.results.open(path, { readonly = true })
    assert.same({ 'k=3,s=1', 'second' }, log:runs())
    assert.is_true(log:has_run('second'))
    assert.is_false(log:has_run('third'))
    local r = log:run('k=3,s=1')
    local a = r:get()
    assert.equal('done', a.status)
    assert.equal('scaling', a.experiment)
    assert.equal(1, a.seed)
    assert.equal(12, a.seconds)
    assert.matches('^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$', a.created)
    assert.is_true(a.updated >= a.created)
    assert.same({ k = 3, lr = 2e-5 }, r:config())
    local cols, names, rows = r:read('train')
    assert.same({ 'step', 'epoch', 'loss', 'lr', 'images_per_s', 'phase' }, names)
    assert.equal(100, rows)
    for s = 1, 100 do
      assert.equal(s, cols.step[s])
      assert.equal(1 / s, cols.loss[s])
      assert.equal(s % 2 == 0 and 'even' or 'odd', cols.phase[s])
    end
    assert.same({ 2, 2.5 }, log:run('second'):read('val').x)
    assert.equal('table', r:kind('train'))
    assert.is_nil(r:kind('nothing'))
    assert.is_nil(r:read('nothing'))
    assert.has_error(function() log:run('third') end, path .. ": no run 'third'")
    assert.has_error(function() r:scalars('train', { step = 101, epoch = 2, loss = 0, lr = 0, images_per_s = 1,
      phase = 'odd' }) end)
    log:close()
  end)

  it('types numbers: int64 when integral, float64 for measurement names and fractions', function()
    local path = fresh()
    local log = cfx.results.open(path)
    local run = log:run('r')
    run:scalars('train', { step = 1, loss = 1, lr = 0, k = 3, custom = 4 })
    run:scalars('train', { step = 2, loss = 0.5, lr = 1e-4, k = 3, custom = 4.5 })
    run:set { seed = 3, mean_ap = 1, ap_all = 1, rate = 0.5 }
    log:close()
    -- the dtypes as an outside reader (h5py) sees them, when python3 has h5py
    if os.execute('/usr/bin/python3 -c "import h5py" 2>/dev/null') == 0 then
      local py = dir .. '/dtypes.py'
      local f = assert(io.open(py, 'w'))
      f:write(("import h5py\nf = h5py.File(%q, 'r')\nr = f['runs/r']\n"):format(path),
        "print(r['train'].dtype.descr, *[r.attrs[k].dtype for k in ('seed', 'mean_ap', 'ap_all', 'rate')])\n")
      f:close()
      local h = io.popen('/usr/bin/python3 ' .. py)
      local out = h:read('*a')
      h:close()
      assert.equal("[('step', '<i8'), ('loss', '<f8'), ('lr', '<f8'), ('custom', '<f8'), ('k', '<i8')] " ..
        "int64 float64 float64 float64\n", out)
    end
  end)

  it('refuses rows whose columns differ from the first one, naming them', function()
    local log = cfx.results.open(fresh())
    local run = log:run('r')
    run:scalars('train', { step = 1, loss = 0.5 })
    local ok, e = pcall(run.scalars, run, 'train', { step = 2 })
    assert.is_false(ok)
    assert.is_true(contains(e, "table 'train' has the columns step, loss (fixed by its first row); this row lacks loss"), e)
    assert.is_true(contains(e, 'results_spec.lua'), e) -- the caller's line
    ok, e = pcall(run.scalars, run, 'train', { step = 2, loss = 1, extra = 3 })
    assert.is_true(contains(e, 'has no column for extra'), e)
    ok, e = pcall(run.scalars, run, 'train', { step = 2, loss = 'high' })
    assert.is_true(contains(e, "column 'loss' holds numbers, the row gives a string"), e)
    ok, e = pcall(run.scalars, run, 'train', { step = 2, loss = true })
    assert.is_true(contains(e, "column 'loss' is a boolean"), e)
    ok, e = pcall(run.set, run, { flag = true })
    assert.is_true(contains(e, "attribute 'flag' is a boolean"), e)
    ok, e = pcall(run.set, run, { updated = 'x' })
    assert.is_true(contains(e, "'updated' of a run is kept by the log"), e)
    ok, e = pcall(log.run, log, 'a/b')
    assert.is_true(contains(e, "bad run id 'a/b'"), e)
    assert.equal(1, #run:read('train').step) -- nothing was appended by the failures
    log:close()
  end)

  it('resumes without duplicates: truncate drops the rows after the checkpoint', function()
    local path = fresh()
    local log = cfx.results.open(path)
    local run = log:run('r')
    for s = 1, 30 do run:scalars('train', { step = s, loss = s / 100 }) end
    log:close() -- as if killed after step 30, with a checkpoint at step 20
    log = cfx.results.open(path)
    run = log:run('r')
    assert.equal(10, run:truncate('train', 'step', 20))
    assert.equal(0, run:truncate('absent', 'step', 20))
    for s = 21, 40 do run:scalars('train', { loss = s / 100, step = s }) end
    log:close()
    log = cfx.results.open(path, { readonly = true })
    local cols = log:run('r'):read('train')
    assert.equal(40, #cols.step)
    for s = 1, 40 do
      assert.equal(s, cols.step[s])
      assert.equal(s / 100, cols.loss[s])
    end
    log:close()
  end)

  it('writes whole tables from rows or columns, with a summary, and replaces them', function()
    local log = cfx.results.open(fresh())
    local run = log:run('r')
    local rows = {
      { generator = 'biggan', architecture = 'GAN', n_real = 100, n_fake = 40, ap = 1, acc = 0.9, acc_real = 1,
        acc_fake = 0.8, auroc = 1 },
      { generator = 'sd', architecture = 'LatDiff', n_real = 100, n_fake = 0, acc = 1, acc_real = 1, acc_fake = 0 / 0,
        auroc = 0 / 0 }, -- ap missing: NaN
    }
    run:table('eval/synth', rows, { mean_ap = 1, n_undefined = 1, reals = 'shared' })
    local cols, names = run:read('eval/synth')
    assert.same({ 'generator', 'architecture', 'n_real', 'n_fake', 'ap', 'acc', 'acc_real', 'acc_fake', 'auroc' },
      names)
    assert.same({ 'biggan', 'sd' }, cols.generator)
    assert.equal(1, cols.ap[1])
    assert.is_true(cols.ap[2] ~= cols.ap[2])
    assert.same({ mean_ap = 1, n_undefined = 1, reals = 'shared' }, run:get('eval/synth'))
    -- columns, with tensors, an explicit order and types
    run:table('eval/synth', { generator = { 'a', 'b', 'c' }, ap = cfx.tensor { 0.5, 0.25, 1 }, n = { 1, 2, 3 } },
      nil, { columns = { 'generator', 'n', 'ap' }, types = { n = 'float64' } })
    cols, names = run:read('eval/synth')
    assert.same({ 'generator', 'n', 'ap' }, names)
    assert.same({ 0.5, 0.25, 1 }, cols.ap)
    assert.same({}, run:get('eval/synth')) -- a replaced table starts without attributes
    run:table('eval/empty', {}, { note = 'nothing yet' }, { columns = { 'generator', 'ap' } })
    local _, _, nrows = run:read('eval/empty')
    assert.equal(0, nrows)
    assert.has_error(function() run:table('eval/x', {}) end)
    assert.has_error(function() run:table('eval/x', { a = { 1, 2 }, b = { 1 } }) end)
    assert.has_error(function() run:table('eval/x', { { a = 1 }, { a = 'x' } }) end)
    assert.same({ 'synth', 'empty' }, run:children('eval'))
    log:close()
  end)

  it('stores arrays from tensors with their dtypes and reads them back', function()
    local path = fresh()
    local log = cfx.results.open(path)
    local run = log:run('r')
    local score, emb = cfx.rand(1000), cfx.randn(1000, 16)
    local label = cfx.rand(1000):gt(0.5)
    local gen = cfx.randint(0, 50, { 1000 }):int()
    run:arrays('predictions/synth', { score = score, label = label, generator = gen, embeddings = emb:t():t(),
      extra = { 1, 2.5 } })
    run:arrays('predictions/other', { score = cfx.rand(3):half() })
    log:close()
    log = cfx.results.open(path, { readonly = true })
    run = log:run('r')
    assert.same({ 'score', 'label', 'generator', 'embeddings', 'extra' }, run:children('predictions/synth'))
    local p = run:read('predictions/synth')
    assert.is_true(p.score == score)
    assert.equal('uint8', p.label:dtype())
    assert.is_true(p.label == label:to('uint8'))
    assert.equal('int32', p.generator:dtype())
    assert.is_true(p.generator == gen)
    assert.is_true(p.embeddings == emb)
    assert.equal('float64', p.extra:dtype())
    assert.same({ 1, 2.5 }, p.extra:totable())
    assert.equal('float32', run:read('predictions/other/score'):dtype())
    log:close()
    -- arrays() replaces the whole group
    log = cfx.results.open(path)
    log:run('r'):arrays('predictions/synth', { score = cfx.zeros(2) })
    assert.same({ 'score' }, log:run('r'):children('predictions/synth'))
    log:close()
  end)

  it('flushes by time, on status and on close; one writer at a time', function()
    local path = fresh()
    local log = cfx.results.open(path, { flush_every = false })
    local run = log:run('r')
    local f0 = log:stats().flushes
    for s = 1, 50 do run:scalars('train', { step = s }) end
    assert.equal(f0, log:stats().flushes)
    local reader = cfx.results.open(path, { readonly = true })
    assert.same({}, reader:runs()) -- the file is as of the last flush
    reader:close()
    run:set { status = 'done' }
    assert.equal(f0 + 1, log:stats().flushes)
    reader = cfx.results.open(path, { readonly = true })
    assert.same({ 'r' }, reader:runs())
    assert.equal(50, #reader:run('r'):read('train').step)
    reader:close()
    local ok, e = pcall(cfx.results.open, path)
    assert.is_false(ok)
    assert.is_true(contains(e, 'another process'), e)
    log:close()
    log = cfx.results.open(path, { flush_every = 0 })
    local f1 = log:stats().flushes
    log:scalars('r', 'train', { step = 51 })
    assert.equal(f1 + 1, log:stats().flushes)
    log:close()
    assert.has_error(function() cfx.results.open(path, { flush_every = -3 }) end)
    assert.has_error(function() cfx.results.open(path, { flsh_every = 1 }) end)
  end)

  it('refuses files that are not results files, naming them', function()
    local path = dir .. '/not.h5'
    local f = io.open(path, 'wb')
    f:write(('garbage'):rep(100))
    f:close()
    local ok, e = pcall(cfx.results.open, path)
    assert.is_false(ok)
    assert.is_true(contains(e, path .. ': not a cfx results file (not an HDF5 file'), e)
    local w = cfx.data.writer(dir .. '/store.h5')
    w:add { bytes = 'abc', label = 0, generator = w:generator('COCO', 'real', 'real'), probe = false, format = 'png',
      width = 1, height = 1 }
    w:finish()
    ok, e = pcall(cfx.results.open, dir .. '/store.h5', { readonly = true })
    assert.is_true(contains(e, 'store.h5: not a cfx results file (root attribute cfx_format is "store"'), e)
    ok, e = pcall(cfx.results.open, dir .. '/none.h5', { readonly = true })
    assert.is_true(contains(e, 'none.h5: no such file'), e)
  end)

  it('collects runs from several files: done first, then the newest', function()
    local function file(name, runs)
      local log = cfx.results.open(dir .. '/' .. name, { truncate = true })
      for _, r in ipairs(runs) do
        local run = log:run(r[1], { status = r[2], from = name })
        run:scalars('train', { step = 1, loss = 0.5 })
      end
      log:close()
      return dir .. '/' .. name
    end
    local a = file('ta.h5', { { 'p1', 'running' }, { 'p2', 'done' } })
    local b = file('tb.h5', { { 'p1', 'done' }, { 'p3', 'interrupted' } })
    local c = file('tc.h5', { { 'p3', 'interrupted' } })
    local out = dir .. '/merged.h5'
    local r = cfx.results.collect({ a, b, c }, out)
    assert.equal(3, r.runs)
    assert.equal(2, #r.report)
    assert.is_true(contains(r.report[1], "run 'p1' is in 2 files: kept " .. b .. ' (status done'), r.report[1])
    assert.is_true(contains(r.report[2], "run 'p3' is in 2 files: kept " .. c), r.report[2])
    local log = cfx.results.open(out, { readonly = true })
    assert.same({ 'p1', 'p2', 'p3' }, log:runs())
    assert.equal('tb.h5', log:run('p1'):get().from)
    assert.equal('ta.h5', log:run('p2'):get().from)
    assert.equal('tc.h5', log:run('p3'):get().from)
    log:close()
    assert.has_error(function() cfx.results.collect({ a, out }, out) end)
    local ok, e = pcall(cfx.results.collect, { a, dir .. '/store.h5' }, out)
    assert.is_true(contains(e, 'not a cfx results file'), e)
    log = cfx.results.open(out, { readonly = true }) -- a failed collect left the old output alone
    assert.same({ 'p1', 'p2', 'p3' }, log:runs())
    log:close()
  end)

  it('open makes the directory of a new file', function()
    local path = dir .. '/made/by/open/results.h5'
    local log = cfx.results.open(path)
    log:run('r'):set { status = 'done' }
    log:close()
    assert.is_true(cfx.fs.is_dir(dir .. '/made/by/open'))
    assert.same({ 'r' }, cfx.results.open(path, { readonly = true }):runs())
    -- read-only opens make nothing
    local ok, e = pcall(cfx.results.open, dir .. '/absent/x.h5', { readonly = true })
    assert.is_false(ok)
    assert.is_true(contains(e, 'absent/x.h5: no such file'), e)
    assert.is_false(cfx.fs.exists(dir .. '/absent'))
  end)

  it('collect replaces an earlier merge but never a results file of its own runs', function()
    local function file(path, runs, preset)
      local log = cfx.results.open(path, { truncate = true })
      for _, r in ipairs(runs) do log:run(r, { status = 'done', experiment = 'scaling', preset = preset }) end
      log:close()
      return path
    end
    local a = file(dir .. '/c/ta.h5', { 'k=3', 'k=8' }, 'cpu')
    local b = file(dir .. '/c/tb.h5', { 'k=23' }, 'cpu')
    local out = dir .. '/c/results.h5'
    local r = cfx.results.collect({ a, b }, out)
    assert.equal(3, r.runs)
    assert.same({ { experiment = 'scaling', preset = 'cpu', runs = 3, status = { done = 3 } } }, r.groups)
    -- again: the old output holds copies of the inputs' runs only, so it is replaced
    r = cfx.results.collect({ a, b }, out)
    assert.equal(3, r.runs)
    -- a run continued in the merged file (newer there than in any input) is not lost
    local log = cfx.results.open(out)
    log:run('k=8'):set { status = 'done', note = 'edited by hand' }
    log:close()
    local ok, e = pcall(cfx.results.collect, { a, b }, out)
    assert.is_false(ok)
    assert.is_true(contains(e, out .. " already exists and holds 1 run that no input has (or a newer copy of): 'k=8'"), e)
    -- nor is a results file written by a user, with runs of its own
    local mine = file(dir .. '/c/mine.h5', { 'baseline' }, 'cpu')
    ok, e = pcall(cfx.results.collect, { a, b }, mine)
    assert.is_false(ok)
    assert.is_true(contains(e, "mine.h5 already exists and holds 1 run that no input has (or a newer copy of): " ..
      "'baseline'; it is not replaced: give another output path, or move it away"), e)
    assert.same({ 'baseline' }, cfx.results.open(mine, { readonly = true }):runs()) -- untouched
    -- another run of the same id is not a copy, even when the inputs' is newer
    local other = file(dir .. '/c/other.h5', { 'k=3' }, 'paper')
    local later = file(dir .. '/c/later.h5', { 'k=3' }, 'cpu')
    ok, e = pcall(cfx.results.collect, { later }, other)
    assert.is_false(ok)
    assert.is_true(contains(e, "other.h5 already exists and holds 1 run that no input has (or a newer copy of): 'k=3'"), e)
    -- unless asked
    r = cfx.results.collect({ a, b }, mine, { replace = true })
    assert.same({ 'k=3', 'k=8', 'k=23' }, cfx.results.open(mine, { readonly = true }):runs())
    assert.has_error(function() cfx.results.collect({ a }, out, { force = true }) end)
    -- runs of two presets: one group each
    local c = file(dir .. '/c/tc.h5', { 'k=3,paper' }, 'paper')
    r = cfx.results.collect({ a, c }, dir .. '/c/mixed.h5')
    assert.equal(2, #r.groups)
    assert.same({ 'cpu', 'paper' }, { r.groups[1].preset, r.groups[2].preset })
    assert.same({ 2, 1 }, { r.groups[1].runs, r.groups[2].runs })
  end)
end)
