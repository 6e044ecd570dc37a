-- json.lua: cfx.json, a small strict JSON encoder/decoder for configs, checkpoint
-- headers and --json output.  Objects encode with sorted keys (so equal tables give
-- equal text, which config hashes rely on); arrays are tables with 1..n and nothing else.
local M = {}

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r',
  ['\b'] = '\\b', ['\f'] = '\\f' }

local function is_array(v)
  local n = #v
  if n == 0 then return next(v) == nil end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  return count == n
end

-- cfx.json.encode(v [, indent]) -> string.  indent (e.g. '  ') pretty-prints; without it
-- the output is compact.  NaN and infinities become null, as JavaScript does.
function M.encode(v, indent, depth)
  depth = depth or 0
  local t = type(v)
  if t == 'table' then
    local nl, pad, pad1, colon = '', '', '', ':'
    if indent then
      nl, pad, pad1, colon = '\n', indent:rep(depth), indent:rep(depth + 1), ': '
    end
    if next(v) == nil then return '[]' end
    local parts = {}
    if is_array(v) then
      for i, x in ipairs(v) do parts[i] = pad1 .. M.encode(x, indent, depth + 1) end
      return '[' .. nl .. table.concat(parts, ',' .. nl) .. nl .. pad .. ']'
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for i, k in ipairs(keys) do
      parts[i] = pad1 .. M.encode(tostring(k)) .. colon .. M.encode(v[k], indent, depth + 1)
    end
    return '{' .. nl .. table.concat(parts, ',' .. nl) .. nl .. pad .. '}'
  elseif t == 'string' then
    return '"' .. v:gsub('[%c"\\]', function(c) return escapes[c] or ('\\u%04x'):format(c:byte()) end) .. '"'
  elseif t == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return 'null' end
    if v % 1 == 0 and math.abs(v) < 2 ^ 53 then return ('%d'):format(v) end
    return ('%.17g'):format(v)
  elseif t == 'boolean' then
    return tostring(v)
  elseif v == nil then
    return 'null'
  end
  error(('json.encode: cannot encode a %s'):format(t), 2)
end

-- ---- decoding -------------------------------------------------------------------------
local function decode_error(s, pos, what)
  local line = 1
  for _ in s:sub(1, pos - 1):gmatch('\n') do line = line + 1 end
  error(('json.decode: %s at line %d (byte %d)'):format(what, line, pos), 0)
end

local function skip(s, pos) return s:find('[^ \t\r\n]', pos) or #s + 1 end

local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local value -- forward

local function string_at(s, pos)
  local parts, i = {}, pos + 1
  while true do
    local j = s:find('["\\%c]', i)
    if not j then decode_error(s, pos, 'unterminated string') end
    parts[#parts + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then return table.concat(parts), j + 1 end
    if c ~= '\\' then decode_error(s, j, 'control character in string') end
    local e = s:sub(j + 1, j + 1)
    local simple = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }
    if simple[e] then
      parts[#parts + 1] = simple[e]
      i = j + 2
    elseif e == 'u' then
      local hex = s:match('^%x%x%x%x', j + 2)
      if not hex then decode_error(s, j, 'bad \\u escape') end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp < 0xDC00 then
        local lo = s:match('^\\u(%x%x%x%x)', i)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(s, j, 'unpaired surrogate') end
        cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
        i = i + 6
      end
      parts[#parts + 1] = utf8(cp)
    else
      decode_error(s, j, 'bad escape')
    end
  end
end

function value(s, pos, depth)
  if depth > 200 then decode_error(s, pos, 'nesting deeper than 200') end
  pos = skip(s, pos)
  local c = s:sub(pos, pos)
  if c == '{' then
    local obj = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == '}' then return obj, pos + 1 end
    while true do
      if s:sub(pos, pos) ~= '"' then decode_error(s, pos, 'expected a string key') end
      local k
      k, pos = string_at(s, pos)
      pos = skip(s, pos)
      if s:sub(pos, pos) ~= ':' then decode_error(s, pos, "expected ':'") end
      obj[k], pos = value(s, pos + 1, depth + 1)
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == '}' then return obj, pos + 1 end
      if d ~= ',' then decode_error(s, pos, "expected ',' or '}'") end
      pos = skip(s, pos + 1)
    end
  elseif c == '[' then
    local arr = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == ']' then return arr, pos + 1 end
    while true do
      arr[#arr + 1], pos = value(s, pos, depth + 1)
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == ']' then return arr, pos + 1 end
      if d ~= ',' then decode_error(s, pos, "expected ',' or ']'") end
      pos = pos + 1
    end
  elseif c == '"' then
    return string_at(s, pos)
  elseif s:find('^true', pos) then
    return true, pos + 4
  elseif s:find('^false', pos) then
    return false, pos + 5
  elseif s:find('^null', pos) then
    return M.null, pos + 4
  end
  local num = s:match('^-?%d+%.?%d*[eE]?[-+]?%d*', pos)
  if num and num ~= '' and num ~= '-' then
    local v = tonumber(num)
    if v then return v, pos + #num end
  end
  decode_error(s, pos, 'unexpected ' .. (c == '' and 'end of text' or ("'" .. c .. "'")))
end

-- JSON null decodes to this sentinel (nil cannot live in a table).
M.null = setmetatable({}, { __tostring = function() return 'null' end })

-- cfx.json.decode(text) -> value.  Strict: trailing text, bad escapes, unterminated
-- strings and the like are errors naming the line and byte.
function M.decode(s)
  if type(s) ~= 'string' then error('json.decode: expected a string, got ' .. type(s), 2) end
  local v, pos = value(s, 1, 0)
  pos = skip(s, pos)
  if pos <= #s then decode_error(s, pos, 'trailing text') end
  return v
end

return M
