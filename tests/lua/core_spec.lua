-- core_spec.lua: what lua/cfx/core.lua gives every module: the options checker and its
-- conventions, the one check of C return codes, pack, the host's clock and signals
-- (outside the cfx program: a wall clock, no signal), the requeue status.
local core = require 'cfx.core'
local ffi = require 'ffi'

describe('cfx.core', function()
  it('options: defaults, false for "no default", [?key] optional, unknown keys named', function()
    local defaults = { batch = 32, store = false, ['?dtype'] = true }
    local o = core.options(nil, defaults, 'f')
    assert.equal(32, o.batch)
    assert.is_false(o.store)
    assert.is_nil(o.dtype)
    o = core.options({ store = 's', dtype = 'float16', batch = 8 }, defaults, 'f')
    assert.same({ 8, 's', 'float16' }, { o.batch, o.store, o.dtype })
    assert.is_nil(defaults.dtype) -- the defaults are not changed
    local ok, e = pcall(core.options, { bacth = 3 }, defaults, 'cfx.data.loader')
    assert.is_false(ok)
    assert.matches("cfx.data.loader: unknown option 'bacth' %(known: batch, dtype, store%)", e)
    ok, e = pcall(core.options, 3, defaults, 'f')
    assert.matches('f: options must be a table, got number', e)
  end)

  it('check: nothing on 0, else the C message after "what: "', function()
    core.check(0)
    local box = ffi.new('cfx_store*[1]')
    local ok, e = pcall(function() core.check(core.C.cfx_store_open('/no/such/store.h5', box), 'cfx.data.open') end)
    assert.is_false(ok)
    assert.matches('cfx%.data%.open: .*/no/such/store%.h5', e)
    ok, e = pcall(function() core.check(core.C.cfx_store_open('/no/such/store.h5', box)) end)
    assert.matches('/no/such/store%.h5', e)
    assert.is_nil(e:find('cfx.data.open', 1, true))
  end)

  it('pack keeps the count, nils included', function()
    local t = core.pack(1, nil, 3, nil)
    assert.equal(4, t.n)
    assert.same({ 1, nil, 3 }, { t[1], t[2], t[3] })
  end)

  it('clock is a monotonic wall clock; no signal outside the cfx program', function()
    local t0, c0 = core.clock(), os.clock()
    os.execute('sleep 0.2') -- this process waits: wall time passes, hardly any CPU time
    local dt, dc = core.clock() - t0, os.clock() - c0
    assert.is_true(dt >= 0.19 and dt < 10, tostring(dt))
    assert.is_true(dc < dt / 2, ('cpu %g wall %g'):format(dc, dt))
    if core.host() == nil then
      assert.is_nil(core.signal())
      assert.is_nil(core.clear_signal())
    end
    assert.equal(75, core.EXIT_REQUEUE)
  end)
end)
