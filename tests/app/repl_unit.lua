-- repl_unit.lua: unit tests of lua/cfx/repl.lua (evaluation, printing, completion),
-- without a terminal.  Run by tests/app/test_repl.py as `cfx tests/app/repl_unit.lua`;
-- also runs under plain LuaJIT: LUA_PATH='lua/?.lua;;' luajit tests/app/repl_unit.lua
local repl = require 'cfx.repl'
local ffi = require 'ffi'

local failures, count = 0, 0
local function test(name, fn)
  count = count + 1
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    failures = failures + 1
    io.stderr:write('FAIL ', name, '\n', tostring(err), '\n')
  end
end

local function eq(got, want, what)
  if got ~= want then
    error(string.format('%s: expected %q, got %q', what or 'value', tostring(want), tostring(got)), 2)
  end
end

local function has(hay, needle, what)
  if type(hay) ~= 'string' or not hay:find(needle, 1, true) then
    error(string.format('%s: expected to find %q in %q', what or 'text', needle, tostring(hay)), 2)
  end
end

-- A session whose output is captured; its code runs in a fresh environment.
local function session(opts)
  local out, err = {}, {}
  local env = setmetatable({}, { __index = _G })
  local o = { write = function(s) out[#out + 1] = s end,
              ewrite = function(s) err[#err + 1] = s end, env = env }
  for k, v in pairs(opts or {}) do o[k] = v end
  local s = repl.new(o)
  local function take()
    local a, b = table.concat(out), table.concat(err)
    for i = #out, 1, -1 do out[i] = nil end
    for i = #err, 1, -1 do err[i] = nil end
    return a, b
  end
  return s, take, env
end

-- ---- format ----------------------------------------------------------------------------

local f = repl.format

test('scalars', function()
  eq(f(nil), 'nil'); eq(f(true), 'true'); eq(f(42), '42'); eq(f(-1.5), '-1.5')
  eq(f(2 ^ 53), '9007199254740992')
  eq(f(0.1 + 0.2), '0.30000000000000004') -- %.14g would hide the error: 0.3
  eq(f(1 / 0), 'inf'); eq(f(-1 / 0), '-inf')
end)

test('strings are quoted and escaped', function()
  eq(f('abc'), '"abc"')
  eq(f('a\nb"c\\'), '"a\\nb\\"c\\\\"')
  eq(f('\0\1'), '"\\000\\001"')
  eq(f('héllo'), '"héllo"') -- UTF-8 kept
  -- the quoted form reads back as the same string
  local s = 'x\ty\r\n"\\\0\127z'
  eq(loadstring('return ' .. f(s))(), s, 'round trip')
end)

test('long strings are cut', function()
  local s = f(string.rep('x', 5000))
  has(s, '...(5000 bytes)')
  assert(#s < 4200, 'cut at 4096 bytes')
  eq(f(string.rep('y', 300), { string = 10 }), '"yyyyyyyyyy"...(300 bytes)')
end)

test('tables: array part, then sorted keys', function()
  eq(f({}), '{}')
  eq(f({ 3, 1, 2 }), '{3, 1, 2}')
  eq(f({ b = 2, a = 1, [10] = 'z', 5 }), '{5, [10] = "z", a = 1, b = 2}')
  eq(f({ ['not ident'] = 1, ['end'] = 2 }), '{["end"] = 2, ["not ident"] = 1}')
  eq(f({ a = { x = { 1 } } }), '{a = {x = {1}}}')
end)

test('tables: nested beyond depth, cycles, size limits', function()
  eq(f({ a = { b = { c = { d = { e = 1 } } } } }), '{a = {b = {c = {d = {...}}}}}')
  local t = {}; t.self = t
  has(f(t), '{self = <cycle: table: ')
  local shared = { 1 }
  eq(f({ shared, shared }), '{{1}, {1}}', 'a table seen twice is not a cycle')
  local big = {}
  for i = 1, 250 do big[i] = i end
  local s = f(big)
  has(s, '...(150 more)')
  assert(not s:find('101'), 'only 100 items shown')
  local lines = 0
  for _ in s:gmatch('\n') do lines = lines + 1 end
  assert(lines < 12, 'a long array fills lines, one item per line would be 100+: ' .. lines)
  for line in s:gmatch('[^\n]+') do assert(#line <= 80, 'line within 80 columns') end
end)

test('tables: wide tables go on several lines', function()
  local t = {}
  for i = 1, 10 do t['key' .. i] = string.rep('v', 10) end
  local s = f(t)
  has(s, '{\n  key1 = "vvvvvvvvvv",\n  key10 = "vvvvvvvvvv",\n')
  assert(s:sub(-2) == '\n}')
end)

test('__tostring and cdata', function()
  local obj = setmetatable({}, { __tostring = function() return 'OBJ\nsecond line' end })
  eq(f(obj), 'OBJ\nsecond line', 'top level: all of it')
  eq(f({ obj }), '{OBJ ...}', 'nested: the first line')
  eq(f(ffi.new('int64_t', 5)), '5LL')
  local Box = ffi.metatype(ffi.typeof('struct { double v; }'),
    { __tostring = function(b) return 'Box(' .. b.v .. ')' end })
  eq(f(Box(2.5)), 'Box(2.5)')
  has(f(setmetatable({}, { __tostring = function() error('broken') end })), '__tostring failed')
end)

test('functions show where they were defined', function()
  local s = f(function() end)
  has(s, 'function: '); has(s, 'repl_unit.lua:')
  has(f(print), 'function: builtin#')
end)

test('format rejects unknown options', function()
  local ok, err = pcall(f, 1, { depht = 2 })
  assert(not ok); has(err, "unknown option 'depht'")
end)

-- ---- feed: evaluation ---------------------------------------------------------------------

test('expressions print, statements do not, ; silences', function()
  local s, take, env = session()
  eq(s:feed('1 + 1'), false); eq(take(), '2\n')
  s:feed('x = 5'); eq(take(), '', 'an assignment prints nothing')
  eq(env.x, 5)
  s:feed('=x'); eq(take(), '5\n')
  s:feed('x * 2;'); eq(take(), '', 'trailing ; suppresses printing')
  s:feed('1, nil, "a"'); eq(take(), '1\tnil\t"a"\n', 'several values, tab separated')
  s:feed('=nil'); eq(take(), 'nil\n')
  s:feed('(function() end)()'); eq(take(), '', 'no values, no line')
  s:feed('   '); eq(take(), '')
  s:feed('local y = 1'); eq(take(), ''); eq(env.y, nil, 'locals stay in their chunk')
end)

test('incomplete chunks continue', function()
  local s, take, env = session()
  eq(s:feed('function f(a)'), true)
  eq(s:feed('  return a * 2'), true)
  eq(s:feed('end'), false)
  eq(take(), '')
  s:feed('f(21)'); eq(take(), '42\n')
  eq(s:feed('t = {1,'), true); eq(s:feed('2}'), false); eq(env.t[2], 2)
  eq(s:feed('1 +'), true); eq(s:feed('2'), false); eq(take(), '3\n')
  eq(s:feed('s = [['), true); eq(s:feed('two]]'), false); eq(env.s, 'two') -- Lua drops the newline after [[
  eq(s:feed('for i = 1, 2 do'), true); s:reset()
  eq(s:feed('=7'), false, 'reset dropped the pending chunk'); eq(take(), '7\n')
end)

test('syntax and runtime errors are reported, the session goes on', function()
  local s, take = session()
  s:feed('x = = 1')
  local out, err = take()
  eq(out, ''); has(err, "stdin:1: unexpected symbol near '='")
  s:feed('error("boom")')
  out, err = take()
  has(err, 'stdin:1: boom'); has(err, 'stack traceback:'); has(err, 'in main chunk')
  assert(not err:find('repl.lua', 1, true), 'the REPL frames are cut: ' .. err)
  s:feed('local function g() error("deep") end g()')
  out, err = take()
  has(err, 'stdin:1: deep'); has(err, "in function 'g'")
  s:feed('error({code = 2})'); out, err = take(); has(err, '{code = 2}')
  s:feed('=1'); eq(take(), '1\n', 'still alive')
end)

test('finish reports an incomplete chunk', function()
  local s, take = session()
  s:feed('if true then')
  s:finish()
  local _, err = take()
  has(err, "'end' expected")
end)

test('slow commands print their time', function()
  local now = 0
  local s, take, env = session{ clock = function() return now end }
  env.advance = function(dt) now = now + dt end
  s:feed('advance(0.5)'); eq(take(), '', 'fast: no timing line')
  s:feed('advance(2.314)'); eq(take(), '(took 2.31 s)\n')
  s:feed('advance(125)'); eq(take(), '(took 2 min 05 s)\n')
  s:feed('advance(3) error("late")')
  local out, err = take()
  eq(out, '(took 3.00 s)\n'); has(err, 'late')
end)

test('new rejects unknown options', function()
  local ok, err = pcall(repl.new, { tyy = true })
  assert(not ok); has(err, "unknown option 'tyy'")
end)

-- ---- completion -------------------------------------------------------------------------

local function list(t) return table.concat(t, ' ') end

test('globals and keywords', function()
  local s, _, env = session()
  env.my_global = 1
  eq(list(s:complete('my_g', 'my_g')), 'my_global')
  eq(list(s:complete('x = fun', 'fun')), 'function')
  eq(list(s:complete('string.fo', 'string.fo')), 'string.format')
  eq(list(s:complete('print(string.fo', 'string.fo')), 'string.format')
  eq(list(s:complete('nosuch.x', 'nosuch.x')), '')
end)

test('fields through __index tables, methods after :', function()
  local s, _, env = session()
  local base = { fizz = function() end, count = 3 }
  local mid = setmetatable({ foo = function() end }, { __index = base })
  env.obj = setmetatable({ bar = 1, ['end'] = 2 }, { __index = mid })
  eq(list(s:complete('obj.', 'obj.')), 'obj.bar obj.count obj.fizz obj.foo')
  eq(list(s:complete('obj:', 'obj:')), 'obj:fizz obj:foo', 'methods only')
  eq(list(s:complete('obj.f', 'obj.f')), 'obj.fizz obj.foo')
  env.deep = { a = { b = { cval = 1 } } }
  eq(list(s:complete('deep.a.b.c', 'deep.a.b.c')), 'deep.a.b.cval')
  eq(list(s:complete('x:', 'x:')), '')
  env.str = 'abc'
  eq(list(s:complete('str:up', 'str:up')), 'str:upper', 'string methods')
  -- an __index function is never called by completion
  local called = false
  env.lazy = setmetatable({}, { __index = function() called = true end })
  s:complete('lazy.x.', 'lazy.x.'); eq(called, false)
end)

test('cdata fields come from cfx.completion_fields', function()
  local s, _, env = session()
  env.v = ffi.new('int[1]')
  local saved = package.loaded['cfx']
  package.loaded['cfx'] = { completion_fields = function(x)
    if type(x) == 'cdata' then return { 'shape', 'sum', 'softmax' } end
  end }
  local ok, err = pcall(function()
    eq(list(s:complete('v:s', 'v:s')), 'v:shape v:softmax v:sum')
    eq(list(s:complete('v.sh', 'v.sh')), 'v.shape')
  end)
  package.loaded['cfx'] = saved
  assert(ok, err)
end)

test('inside a string: file names; inside a comment: nothing', function()
  local s = session()
  eq(s:complete('io.open("/tmp/ab', 'ab'), '/tmp/ab')
  eq(s:complete("dofile('x\\'y", 'y'), "x\\'y")
  eq(list(s:complete('x = 1 -- string.fo', 'string.fo')), '')
  eq(type(s:complete('s = "a" .. string.fo', 'string.fo')), 'table', 'closed string')
end)

io.write(string.format('%d tests, %d failed\n', count, failures))
os.exit(failures == 0 and 0 or 1)
