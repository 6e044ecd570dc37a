-- repl.lua: the logic of the cfx REPL (the C side, core/app/repl.c, only reads lines).
--
--   local repl = require 'cfx.repl'
--   local s = repl.new{tty = true}     -- one session: pending input, output functions
--   s:start()                          -- banner (on a terminal), require 'cfx' as global
--   local more = s:feed(line)          -- true: the chunk is incomplete, prompt ">> "
--   s:complete(line_before_cursor, word) -> {full words}, or inside a string literal
--                                          the literal's text (complete a file name)
--   s:reset()                          -- drop a pending incomplete chunk (^C)
--   s:finish()                         -- end of input: report an incomplete chunk
--   repl.format(value [, opts]) -> string   -- the pretty printer, reusable
--
-- A chunk that reads as an expression list is evaluated and its values printed
-- (`=expr` forces that reading); otherwise it runs as a statement.  A trailing `;`
-- suppresses printing.  A chunk whose compile error is "... near '<eof>'" is
-- incomplete and continues on the next line.  Each command is its own chunk: `local`
-- variables do not survive to the next command, globals do.
local M = {}

local CHUNKNAME = '=stdin'

-- The clock of the per-command timing: the cfx program's (monotonic, wall time).  The
-- REPL reads the host itself rather than through cfx.core, which would load libcfx: it
-- must run as plain LuaJIT when the library cannot be loaded.  Outside the cfx program
-- (a test under plain luajit) it is cfx.core's, the same clock.
local function host_clock()
  local host = package.loaded['cfx.host']
  if type(host) == 'table' and type(host.clock) == 'function' then return host.clock end
  return function() return require('cfx.core').clock() end
end

-- ---- pretty printing ------------------------------------------------------------------

local DEFAULTS = {
  depth = 3,         -- nested tables deeper than this print as {...}
  items = 100,       -- entries shown per table
  budget = 1000,     -- entries shown in all
  width = 80,        -- a table that fits on one line within this width stays on one
  string = 4096,     -- top-level strings longer than this are cut
  nested_string = 200,
}

local IDENT = '^[%a_][%w_]*$'
local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not
  or repeat return then true until while]]):gmatch('%a+') do KEYWORDS[w] = true end

local function is_ident(k)
  return type(k) == 'string' and k:match(IDENT) ~= nil and not KEYWORDS[k]
end

local ESCAPES = { ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r', ['\\'] = '\\\\', ['"'] = '\\"',
  ['\a'] = '\\a', ['\b'] = '\\b', ['\f'] = '\\f', ['\v'] = '\\v' }

-- A Lua string literal for s (UTF-8 bytes are kept as they are); cut after `max` bytes.
local function quote(s, max)
  local cut = ''
  if #s > max then
    cut = string.format('...(%d bytes)', #s)
    s = s:sub(1, max)
  end
  s = s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format('\\%03d', c:byte())
  end)
  return '"' .. s .. '"' .. cut
end

local function is_interrupt(msg)
  return type(msg) == 'string' and msg:find('interrupted!$') ~= nil
end

-- tostring that never raises (a broken __tostring), except for ^C.
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == 'string' then return s end
  if is_interrupt(s) then error(s, 0) end
  return string.format('<%s: __tostring failed: %s>', type(v), tostring(s))
end

local function has_tostring(v)
  local mt = debug.getmetatable(v)
  return type(mt) == 'table' and rawget(mt, '__tostring') ~= nil
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 4) < (TYPE_ORDER[tb] or 4) or
    ((TYPE_ORDER[ta] or 4) == (TYPE_ORDER[tb] or 4) and ta < tb) end
  if ta == 'number' or ta == 'string' then return a < b end
  if ta == 'boolean' then return b and not a end
  return safe_tostring(a) < safe_tostring(b)
end

local function function_string(f)
  local s = tostring(f)
  local info = debug.getinfo(f, 'S')
  if info and info.what ~= 'C' and info.short_src then
    s = s .. ' (' .. info.short_src .. ':' .. tostring(info.linedefined) .. ')'
  end
  return s
end

local render

local function first_line(s)
  local line = s:match('^[^\n]*')
  if #line < #s then return line .. ' ...' end
  return s
end

local function render_table(t, o, depth, indent, seen)
  if seen[t] then return '<cycle: ' .. safe_tostring(t) .. '>' end
  if depth > o.depth then return next(t) == nil and '{}' or '{...}' end
  seen[t] = true
  local items, multiline, total = {}, false, 0
  local npos -- items[1..npos] are positional (the array part)
  local function add(s)
    items[#items + 1] = s
    if s:find('\n', 1, true) then multiline = true end
  end
  local n = #t
  local shown = math.min(n, o.items)
  for i = 1, shown do
    if o.left <= 0 then break end
    o.left = o.left - 1
    add(render(rawget(t, i), o, depth + 1, indent + 2, seen))
  end
  npos = #items
  local keys = {}
  for k in next, t do
    if not (type(k) == 'number' and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  total = n + #keys
  if #keys <= 10000 then table.sort(keys, key_less) end
  for _, k in ipairs(keys) do
    if #items >= o.items or o.left <= 0 then break end
    o.left = o.left - 1
    local ks = is_ident(k) and k or '[' .. render(k, o, depth + 1, indent + 2, seen) .. ']'
    add(ks .. ' = ' .. render(rawget(t, k), o, depth + 1, indent + 2, seen))
  end
  seen[t] = nil
  if #items < total then items[#items + 1] = string.format('...(%d more)', total - #items) end
  if #items == 0 then return '{}' end
  local one = '{' .. table.concat(items, ', ') .. '}'
  if not multiline and indent + #one <= o.width then return one end
  -- Several lines: positional items fill lines (a long array stays compact), keyed
  -- entries and anything multi-line get a line each.
  local pad = string.rep(' ', indent + 2)
  local room = math.max(o.width - indent - 2, 20)
  local lines, cur = {}, nil
  for i, item in ipairs(items) do
    local packable = i <= npos and not item:find('\n', 1, true) and #item < room / 2
    if packable and cur and #cur + 2 + #item + 1 <= room then
      cur = cur .. ', ' .. item
    else
      if cur then lines[#lines + 1] = cur end
      cur = item
      if not packable then lines[#lines + 1] = cur; cur = nil end
    end
  end
  if cur then lines[#lines + 1] = cur end
  return '{\n' .. pad .. table.concat(lines, ',\n' .. pad) .. '\n' .. string.rep(' ', indent) .. '}'
end

-- Numbers as Lua writes them (%.14g), unless that loses the value: then with the
-- fewest digits that give it back (0.1 + 0.2 shows as 0.30000000000000004), and
-- integers exactly (2^53 as 9007199254740992).
local function number_string(x)
  if x ~= x or x == math.huge or x == -math.huge then return tostring(x) end
  if x == 0 then return 1 / x < 0 and '-0' or '0' end
  if x == math.floor(x) and math.abs(x) < 2 ^ 63 then return string.format('%d', x) end
  for digits = 14, 16 do
    local s = string.format('%.' .. digits .. 'g', x)
    if tonumber(s) == x then return s end
  end
  return string.format('%.17g', x)
end

function render(v, o, depth, indent, seen)
  local tv = type(v)
  if tv == 'string' then
    return quote(v, depth == 0 and o.string or o.nested_string)
  elseif tv == 'number' then
    return number_string(v)
  elseif tv == 'function' then
    return function_string(v)
  elseif tv == 'table' and not has_tostring(v) then
    return render_table(v, o, depth, indent, seen)
  end
  -- booleans, nil, cdata (a metatype's __tostring: tensor summaries), userdata,
  -- threads, tables with __tostring; nested, only their first line
  local s = safe_tostring(v)
  if depth > 0 then s = first_line(s) end
  return s
end

-- The printed form of a value: strings quoted, tables readable (sorted keys, nested,
-- limited), everything with a __tostring through tostring.
function M.format(v, opts)
  local o = {}
  for k, d in pairs(DEFAULTS) do o[k] = d end
  for k, x in pairs(opts or {}) do
    if DEFAULTS[k] == nil then error("cfx.repl.format: unknown option '" .. tostring(k) .. "'", 2) end
    o[k] = x
  end
  o.left = o.budget
  return render(v, o, 0, 0, {})
end

-- ---- errors --------------------------------------------------------------------------

-- cfx's own Lua directory: frames there, above the user's, are left out of tracebacks
-- (the message already names the user's line).
local lib_dir = (debug.getinfo(1, 'S').source:match('^@(.*/)[^/]*$') or '\0')
local function is_lib_frame(line)
  return line:find(lib_dir, 1, true) ~= nil or line:find("^%s*%[C%]: in function 'error'") ~= nil
end

-- xpcall handler: the message (non-string error objects through the printer) and a
-- traceback cut where the REPL's own frames begin.
local function traceback(e)
  local msg = e
  if type(e) ~= 'string' then
    local ok, s = pcall(M.format, e)
    msg = ok and s or ('(error object is a ' .. type(e) .. ' value)')
  end
  local tb = debug.traceback(msg, 2)
  local out, user_seen = {}, false
  for line in (tb .. '\n'):gmatch('(.-)\n') do
    if line:find("^%s*%[C%]: in function 'xpcall'") then break end
    local frame = line:find('^%s') ~= nil
    if frame and not user_seen and is_lib_frame(line) then
      -- skip cfx's frames above the first user frame
    else
      if frame then user_seen = true end
      out[#out + 1] = line
    end
  end
  if out[#out] == 'stack traceback:' then out[#out] = nil end
  return table.concat(out, '\n')
end

local function pack(...) return { n = select('#', ...), ... } end

local function is_incomplete(err)
  return err:sub(-7) == "'<eof>'"
end

-- Compile a chunk: fn, 'expr' | fn, 'silent' | fn, 'stmt' | nil, 'incomplete' | nil, err.
-- An expression list E compiles as `return (...)(E)`: fn(pack) returns pack(E).  The
-- plain `return E` would make a call in E a tail call, and LuaJIT then drops the
-- chunk's frame: `error('x')` would lose its "stdin:1:" and the traceback its line.
local function compile(src)
  local body = src:match('^%s*=(.*)$')
  local is_eq = body ~= nil
  body = body or src
  local list, semis = body:gsub(';%s*$', '')
  local fn = loadstring('return (...)(' .. list .. '\n)', CHUNKNAME)
  if fn then return fn, semis > 0 and 'silent' or 'expr' end
  -- Not an expression: a statement, or incomplete when either reading of it ran
  -- into the end of the input ("x = 1 +", "for i = 1, 3 do", "{1,", "f(a,").
  local _, experr = loadstring('return ' .. body, CHUNKNAME)
  if is_eq then
    return nil, is_incomplete(experr) and 'incomplete' or experr
  end
  local err
  fn, err = loadstring(src, CHUNKNAME)
  if fn then return fn, 'stmt' end
  if is_incomplete(err) or is_incomplete(experr) then return nil, 'incomplete' end
  return nil, err
end

local function duration(s)
  if s < 60 then return string.format('%.2f s', s) end
  local m = math.floor(s / 60)
  if m < 60 then return string.format('%d min %02d s', m, math.floor(s - 60 * m)) end
  return string.format('%d h %02d min', math.floor(m / 60), m % 60)
end

-- ---- completion ----------------------------------------------------------------------

local function index_chain(t, k, visited)
  -- rawget along the __index chain while it is made of tables; never calls code.
  local v = rawget(t, k)
  if v ~= nil then return v end
  local mt = debug.getmetatable(t)
  local idx = type(mt) == 'table' and rawget(mt, '__index') or nil
  if type(idx) == 'table' and not visited[idx] then
    visited[idx] = true
    return index_chain(idx, k, visited)
  end
  return nil
end

-- v[k] without running user code (except a cdata's own __index: FFI field access).
local function safe_index(v, k)
  local tv = type(v)
  if tv == 'table' then return index_chain(v, k, {}) end
  if tv == 'string' then return string[k] end
  if tv == 'cdata' then
    local ok, r = pcall(function() return v[k] end)
    if ok then return r end
    return nil
  end
  if tv == 'userdata' then
    local mt = debug.getmetatable(v)
    local idx = type(mt) == 'table' and rawget(mt, '__index') or nil
    if type(idx) == 'table' then return index_chain(idx, k, {}) end
  end
  return nil
end

local function table_fields(t, names, visited)
  if visited[t] then return end
  visited[t] = true
  for k in next, t do
    if is_ident(k) then names[k] = true end
  end
  local mt = debug.getmetatable(t)
  local idx = type(mt) == 'table' and rawget(mt, '__index') or nil
  if type(idx) == 'table' then table_fields(idx, names, visited) end
end

-- Names of the fields of v, as a set.
local function fields(v)
  local names, tv = {}, type(v)
  if tv == 'table' then
    table_fields(v, names, {})
  elseif tv == 'string' then
    table_fields(string, names, {})
  elseif tv == 'cdata' or tv == 'userdata' then
    -- Lua cannot list a metatype's methods: the library can (cfx.completion_fields).
    local cfx = package.loaded['cfx']
    if type(cfx) == 'table' and type(rawget(cfx, 'completion_fields')) == 'function' then
      local ok, list = pcall(cfx.completion_fields, v)
      if ok and type(list) == 'table' then
        for _, k in ipairs(list) do
          if is_ident(k) then names[k] = true end
        end
      end
    end
    if tv == 'userdata' then
      local mt = debug.getmetatable(v)
      local idx = type(mt) == 'table' and rawget(mt, '__index') or nil
      if type(idx) == 'table' then table_fields(idx, names, {}) end
    end
  end
  return names
end

-- The text of the string literal ('...' or "...") that `line` ends inside, false if
-- it ends in code, nil if it ends in a comment.
local function open_string(line)
  local i, q, start = 1, nil, nil
  while i <= #line do
    local c = line:sub(i, i)
    if q then
      if c == '\\' then i = i + 1 elseif c == q then q = nil end
    elseif c == '"' or c == "'" then
      q, start = c, i + 1
    elseif line:sub(i, i + 1) == '--' then
      return nil
    end
    i = i + 1
  end
  return q ~= nil and line:sub(start)
end

-- ---- the session ---------------------------------------------------------------------

local Session = {}
Session.__index = Session

local NEW_OPTIONS = { tty = true, write = true, ewrite = true, clock = true, env = true,
  slow = true }

-- repl.new{tty=false, write=stdout writer, ewrite=stderr writer, clock=monotonic
--          seconds, env=_G, slow=1.0 (print the time of commands slower than this)}
function M.new(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not NEW_OPTIONS[k] then error("cfx.repl.new: unknown option '" .. tostring(k) .. "'", 2) end
  end
  return setmetatable({
    tty = opts.tty == true,
    write = opts.write or function(s) io.stdout:write(s) end,
    -- stdout first, so that output and errors keep their order in a pipe
    ewrite = opts.ewrite or function(s) io.stdout:flush() io.stderr:write(s) end,
    clock = opts.clock or host_clock(),
    env = opts.env or _G,
    slow = opts.slow or 1.0,
    pending = {},
  }, Session)
end

function M.banner()
  local host = package.loaded['cfx.host']
  local version = type(host) == 'table' and host.version or '?'
  return string.format('cfx %s (%s)  Ctrl-D exits, Ctrl-C interrupts, TAB completes',
    version, jit and jit.version or _VERSION)
end

-- Print the banner on a terminal and make the library the global `cfx`.
function Session:start()
  if self.tty then self.write(M.banner() .. '\n') end
  if rawget(self.env, 'cfx') ~= nil then return end
  local ok, lib = pcall(require, 'cfx')
  if ok and type(lib) == 'table' then
    rawset(self.env, 'cfx', lib)
  elseif not ok then
    local msg = tostring(lib):match('^[^\n]*'):gsub(':$', '')
    self.ewrite("cfx: warning: require 'cfx' failed (" .. msg .. '); the REPL runs plain LuaJIT\n')
  end
end

function Session:reset()
  self.pending = {}
end

-- Print values separated by tabs, one line.
function Session:print_values(r, i, j)
  local parts = {}
  for k = i, j do parts[#parts + 1] = M.format(r[k]) end
  self.write(table.concat(parts, '\t') .. '\n')
end

function Session:run(fn, mode)
  if self.env ~= _G then setfenv(fn, self.env) end
  local t0 = self.clock()
  local ok, r
  if mode == 'stmt' then
    ok, r = xpcall(fn, traceback)
  else
    ok, r = xpcall(fn, traceback, pack)
  end
  local dt = self.clock() - t0
  if not ok then
    -- after the terminal's "^C" echo, start on a line of its own
    if self.tty and tostring(r):match('^[^\n]*interrupted!') then r = '\n' .. tostring(r) end
    self.ewrite(tostring(r) .. '\n')
  elseif mode == 'expr' and r.n > 0 then
    self:print_values(r, 1, r.n)
  end
  if dt >= self.slow then self.write('(took ' .. duration(dt) .. ')\n') end
  return ok
end

-- Add a line; run the chunk when it is complete.  Returns true if more input is
-- needed (the chunk is incomplete).
function Session:feed(line)
  local pending = self.pending
  if #pending == 0 and not line:find('%S') then return false end
  pending[#pending + 1] = line
  local fn, what = compile(table.concat(pending, '\n'))
  if fn == nil and what == 'incomplete' then return true end
  self.pending = {}
  if fn == nil then
    self.ewrite(what .. '\n')
  else
    self:run(fn, what)
  end
  return false
end

-- End of input: an incomplete chunk is an error.
function Session:finish()
  if #self.pending > 0 then
    local _, err = loadstring(table.concat(self.pending, '\n'), CHUNKNAME)
    self.pending = {}
    if err then self.ewrite(err .. '\n') end
  end
  return false
end

-- Completion of the word before the cursor: globals and keywords; fields of a.b.c;
-- methods of a:b (through __index tables, and cfx.completion_fields for cdata).
-- Returns the sorted full words; inside a string literal, returns the literal's text
-- so far instead (a string), which the caller completes as a file name.
function Session:complete(line, word)
  local s = open_string(line)
  if s == nil then return {} end
  if s then return s end
  local out, seen = {}, {}
  local function offer(full)
    if not seen[full] then seen[full] = true; out[#out + 1] = full end
  end
  local path, sep, partial = word:match('^([%a_][%w_%.]*)([%.:])([%w_]*)$')
  if path then
    if path:find('%.%.') or path:find('%.$') then return {} end
    local v = self.env
    for name in path:gmatch('[^%.]+') do
      v = safe_index(v, name)
      if v == nil then return {} end
    end
    for name in pairs(fields(v)) do
      if name:sub(1, #partial) == partial then
        if sep == '.' or type(v) == 'cdata' or type(safe_index(v, name)) == 'function' then
          offer(path .. sep .. name)
        end
      end
    end
  elseif word == '' or word:match(IDENT) then
    for name in pairs(fields(self.env)) do
      if name:sub(1, #word) == word then offer(name) end
    end
    for kw in pairs(KEYWORDS) do
      if kw:sub(1, #word) == word then offer(kw) end
    end
  end
  table.sort(out)
  return out
end

return M
