-- layers_spec.lua: the layer rule of lua/cfx/init.lua, checked on the sources.  Each
-- module of lua/cfx is in init.lua's list once; every `require` of a cfx module, at the
-- top of a file or inside a function, names a module of the requiring module's layer or
-- below (so nothing below init.lua requires 'cfx').  The requires are read with a small
-- Lua lexer: comments and strings that merely mention require do not count.
local ROOT = (os.getenv('CFX_ROOT') or '.') .. '/lua'

local function read(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('*a')
  f:close()
  return s
end

-- The tokens of Lua source that matter here: names, strings (their value) and single
-- punctuation characters; comments and whitespace are skipped.
local function tokens(src)
  local out, i, n = {}, 1, #src
  local function long_bracket(at) -- '[' '='* '[' at position at: level, or nil
    local eq = src:match('^%[(=*)%[', at)
    return eq and #eq
  end
  local function skip_long(at, level) -- returns the position after the closing bracket
    local close = ']' .. ('='):rep(level) .. ']'
    local s, e = src:find(close, at, true)
    assert(s, 'unfinished long bracket')
    return e + 1, s
  end
  while i <= n do
    local c = src:sub(i, i)
    if c:match('%s') then
      i = i + 1
    elseif src:sub(i, i + 1) == '--' then
      local level = long_bracket(i + 2)
      if level then
        i = skip_long(i + 2 + level + 2, level)
      else
        local e = src:find('\n', i, true)
        i = e and e + 1 or n + 1
      end
    elseif c == '"' or c == "'" then
      local j, buf = i + 1, {}
      while true do
        local d = src:sub(j, j)
        assert(d ~= '', 'unfinished string')
        if d == '\\' then
          buf[#buf + 1] = src:sub(j, j + 1)
          j = j + 2
        elseif d == c then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = { 'string', table.concat(buf) }
      i = j + 1
    elseif c == '[' and long_bracket(i) then
      local level = long_bracket(i)
      local start = i + level + 2
      local after, close = skip_long(start, level)
      out[#out + 1] = { 'string', (src:sub(start, close - 1):gsub('^\n', '')) }
      i = after
    elseif c:match('[%a_]') then
      local w = src:match('^[%w_]+', i)
      out[#out + 1] = { 'name', w }
      i = i + #w
    elseif c:match('%d') then
      local w = src:match('^[%w_.]+', i)
      i = i + #w
    else
      out[#out + 1] = { 'op', c }
      i = i + 1
    end
  end
  return out
end

-- The module names a source requires with a literal argument: require 'x', require "x",
-- require [[x]], require('x'), require ('x').field ...
local function requires(src)
  local t, r = tokens(src), {}
  for k = 1, #t do
    if t[k][1] == 'name' and t[k][2] == 'require' and not (t[k - 1] and t[k - 1][1] == 'op' and
        (t[k - 1][2] == '.' or t[k - 1][2] == ':')) then
      local a = t[k + 1]
      if a and a[1] == 'op' and a[2] == '(' then a = t[k + 2] end
      if a and a[1] == 'string' then r[#r + 1] = a[2] end
    end
  end
  return r
end

-- init.lua's list: lines "--   layer N name: cfx.a cfx.b.* ...".
local function layer_table()
  local exact, prefix, order = {}, {}, {}
  for line in read(ROOT .. '/cfx/init.lua'):gmatch('[^\n]+') do
    local n, names = line:match('^%-%-%s+layer (%d+) [%w ]+:%s+(.+)$')
    if n then
      for name in names:gmatch('%S+') do
        local p = name:match('^(.*)%.%*$')
        if p then prefix[#prefix + 1] = { p .. '.', tonumber(n) } else exact[name] = tonumber(n) end
        order[#order + 1] = name
      end
    end
  end
  return exact, prefix, order
end

local exact, prefix, listed = layer_table()

local function layer_of(mod)
  if exact[mod] then return exact[mod] end
  for _, p in ipairs(prefix) do
    if mod:sub(1, #p[1]) == p[1] then return p[2] end
  end
  return nil
end

-- Every Lua file under lua/cfx, as module names.
local function modules()
  local p = assert(io.popen('cd ' .. ROOT .. " && find cfx -name '*.lua' | sort"))
  local r = {}
  for path in p:lines() do
    local m = path:gsub('%.lua$', ''):gsub('/init$', ''):gsub('/', '.')
    r[#r + 1] = { name = m, path = ROOT .. '/' .. path }
  end
  p:close()
  return r
end

-- The requires of src (as module mod) that break the rule: {"mod -> other (layer a -> b)"}.
local function violations(mod, src)
  local bad = {}
  local own = layer_of(mod)
  if own == nil then return { mod .. ' is in no layer of init.lua' } end
  for _, r in ipairs(requires(src)) do
    if r == 'cfx' or r:match('^cfx%.') then
      local l = layer_of(r)
      if r ~= 'cfx.host' and (l == nil or l > own) then -- cfx.host: the program's table (core only)
        bad[#bad + 1] = ('%s -> %s (layer %s -> %s)'):format(mod, r, own, tostring(l))
      end
    end
  end
  return bad
end

describe('the layers of lua/cfx (init.lua)', function()
  it('lists six layers and every module of lua/cfx in exactly one', function()
    local seen = {}
    for _, name in ipairs(listed) do
      assert.is_nil(seen[name], name .. ' is listed twice')
      seen[name] = true
    end
    local layers = {}
    for _, l in pairs(exact) do layers[l] = true end
    for l = 1, 6 do assert.is_true(layers[l], 'no module in layer ' .. l) end
    local files = {}
    for _, m in ipairs(modules()) do
      files[m.name] = true
      local n = 0
      if exact[m.name] then n = n + 1 end
      for _, p in ipairs(prefix) do
        if m.name:sub(1, #p[1]) == p[1] then n = n + 1 end
      end
      assert.equal(1, n, m.name .. ' is in ' .. n .. ' layers of init.lua (must be one)')
    end
    for name in pairs(exact) do assert.is_true(files[name], name .. ' is listed but there is no such module') end
  end)

  it('every module requires only modules of its own layer or below', function()
    local bad = {}
    for _, m in ipairs(modules()) do
      for _, v in ipairs(violations(m.name, read(m.path))) do bad[#bad + 1] = v end
    end
    assert.same({}, bad)
  end)

  it("only the entry layer requires 'cfx'", function()
    for _, m in ipairs(modules()) do
      for _, r in ipairs(requires(read(m.path))) do
        if r == 'cfx' then assert.equal(6, layer_of(m.name), m.name .. " requires 'cfx'") end
      end
    end
  end)

  it('the checker finds every spelling of require and ignores comments and strings', function()
    local src = [==[
      local a = require 'cfx.train'
      local b = require("cfx.sweep")
      local function f() return require ('cfx').fs end
      local c = require [[cfx.eval]]
      -- local d = require 'cfx.experiment'
      --[[ local e = require 'cfx.cli.sweep' ]]
      local s = "require 'cfx.repl'"
      local t = obj.require('cfx.synth') -- a method of that name is not require
    ]==]
    assert.same({ 'cfx.train', 'cfx.sweep', 'cfx', 'cfx.eval' }, requires(src))
    assert.same({ 'cfx.tensor -> cfx.train (layer 2 -> 4)', 'cfx.tensor -> cfx.sweep (layer 2 -> 5)',
      'cfx.tensor -> cfx (layer 2 -> 6)', 'cfx.tensor -> cfx.eval (layer 2 -> 4)' }, violations('cfx.tensor', src))
    assert.same({}, violations('cfx.cli.sweep', src))
    assert.same({ 'cfx.data -> cfx.nosuch (layer 3 -> nil)' }, violations('cfx.data', "require 'cfx.nosuch'"))
  end)
end)
