-- Specs of cfx.sweep's pure parts (lua/cfx/sweep.lua) and cfx.proc; the sweeps
-- themselves run as real processes in tests/app/test_sweep.py.
local sweep = require 'cfx.sweep'
local proc = require 'cfx.proc'

describe('cfx.sweep', function()
  it('parses task lists like Slurm arrays and writes them back', function()
    assert.same({ 1, 2, 3, 4, 7, 9, 10 }, sweep.parse_tasks('1-4,7,9-10', 12))
    assert.same({ 2, 3, 5 }, sweep.parse_tasks('5,3,2-3', 5))
    assert.equals('1-4,7,9-10', sweep.array_spec { 1, 2, 3, 4, 7, 9, 10 })
    assert.equals('5', sweep.array_spec { 5 })
    for text, msg in pairs { ['0'] = "'0' is not a task number", ['3-2'] = "'3%-2' is not", ['x'] = "'x' is not",
      ['1-13'] = 'task 13 but the grid has 12 points', [','] = 'no task given' } do
      local ok, err = pcall(sweep.parse_tasks, text, 12)
      assert.is_false(ok, text)
      assert.matches(msg, err)
    end
  end)

  it('quotes words for a POSIX shell', function()
    assert.equals('a/b-c.lua', proc.quote('a/b-c.lua'))
    assert.equals("'it'\\''s here'", proc.quote("it's here"))
    local ok, out = proc.run { 'sh', '-c', 'printf %s "$0"', "it's $HOME `x`" }
    assert.is_true(ok)
    assert.equals("it's $HOME `x`", out)
    local fok, fout, code = proc.run { 'sh', '-c', 'echo oops; exit 3' }
    assert.same({ false, 'oops\n', 3 }, { fok, fout, code })
  end)

  it('spawns, polls and reports exit statuses and signals', function()
    local a = proc.spawn { 'sh', '-c', 'exit 7' }
    local b = proc.spawn { 'sleep', '30' }
    local how, code
    for _ = 1, 100 do
      how, code = proc.poll(a)
      if how then break end
      proc.sleep(0.02)
    end
    assert.same({ 'exit', 7 }, { how, code })
    assert.is_nil(proc.poll(b))
    assert.is_true(proc.kill(b, proc.SIGTERM))
    for _ = 1, 100 do
      how, code = proc.poll(b)
      if how then break end
      proc.sleep(0.02)
    end
    assert.same({ 'signal', 15 }, { how, code })
    assert.equals(143, proc.status_code(how, code))
    local ok, err = pcall(proc.spawn, { 'no-such-program-cfx' })
    assert.is_false(ok)
    assert.matches('cannot start no%-such%-program%-cfx', err)
  end)
end)
