-- args.lua: the option parser of cfx's subcommands.  A spec lists options with a
-- type and a default; `--name value`, `--name=value` and `--flag` are accepted
-- (dashes and underscores alike), unknown options are an error that lists the known
-- ones, and `--help` prints the usage.
local M = {}

-- spec = {usage = 'cfx synth [options]', about = '...', options = {
--   {'out', 'string', 'data/synth', 'where the stores go'}, {'json', 'flag', false, '...'}, ...}}
-- Returns opts (keys with underscores), positional list; or nil, exit code after --help/errors.
function M.parse(argv, spec)
  local opts, pos, by_name = {}, {}, {}
  for _, o in ipairs(spec.options) do
    local key = o[1]:gsub('-', '_')
    by_name[key] = o
    opts[key] = o[3]
  end
  local function usage(out)
    out:write(spec.usage, '\n')
    if spec.about then out:write('\n', spec.about, '\n') end
    out:write('\noptions:\n')
    for _, o in ipairs(spec.options) do
      local kind = type(o[2]) == 'table' and table.concat(o[2], '|') or o[2]:upper()
      local flag = '--' .. o[1]:gsub('_', '-') .. (o[2] == 'flag' and '' or (' ' .. kind))
      out:write(('  %-28s %s%s\n'):format(flag, o[4] or '',
        (o[3] ~= nil and o[3] ~= false and o[2] ~= 'flag') and (' (default ' .. tostring(o[3]) .. ')') or ''))
    end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == '--help' or a == '-h' then
      usage(io.stdout)
      return nil, 0
    elseif a:sub(1, 2) == '--' and #a > 2 then
      local name, value = a:sub(3):match('^([^=]+)=(.*)$')
      name = (name or a:sub(3)):gsub('-', '_')
      local o = by_name[name]
      if not o then
        local known = {}
        for _, s in ipairs(spec.options) do known[#known + 1] = '--' .. s[1]:gsub('_', '-') end
        io.stderr:write(('%s: unknown option --%s (known: %s)\n'):format(spec.name, name:gsub('_', '-'),
          table.concat(known, ', ')))
        return nil, 2
      end
      if o[2] == 'flag' then
        if value then
          io.stderr:write(('%s: --%s takes no value\n'):format(spec.name, o[1]))
          return nil, 2
        end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
        end
        if value == nil then
          io.stderr:write(('%s: --%s needs a value\n'):format(spec.name, o[1]))
          return nil, 2
        end
        if o[2] == 'number' or o[2] == 'int' then
          local v = tonumber(value)
          if not v or (o[2] == 'int' and v % 1 ~= 0) then
            io.stderr:write(('%s: --%s expects %s, got %q\n'):format(spec.name, o[1],
              o[2] == 'int' and 'an integer' or 'a number', value))
            return nil, 2
          end
          value = v
        elseif o[2] == 'list' then
          local l = {}
          for part in value:gmatch('[^,]+') do l[#l + 1] = part end
          value = l
        elseif type(o[2]) == 'table' then -- a choice
          local ok = false
          for _, c in ipairs(o[2]) do ok = ok or c == value end
          if not ok then
            io.stderr:write(('%s: --%s must be one of %s, got %q\n'):format(spec.name, o[1],
              table.concat(o[2], ', '), value))
            return nil, 2
          end
        end
        opts[name] = value
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- Parse the argv of a command that takes one existing directory: opts, dir; or nil,
-- exit status (2 for usage, 1 for a missing directory) after saying why.
function M.parse_dir(argv, spec)
  local o, pos = M.parse(argv, spec)
  if not o then return nil, pos end
  if #pos ~= 1 then
    io.stderr:write(spec.name, ': expected one DIR (see --help)\n')
    return nil, 2
  end
  local dir = pos[1]:gsub('/+$', '')
  if dir == '' then dir = '/' end
  if not require('cfx.fs').is_dir(dir) then
    io.stderr:write(('%s: %s is not a directory\n'):format(spec.name, dir))
    return nil, 1
  end
  return o, dir
end

-- An error for the user: without the Lua source position that error() prefixes.
function M.message(e) return (tostring(e):gsub('^[^:]*%.lua:%d+: ', '')) end

-- JSON for --json output: pretty-printed, keys sorted.
function M.json(v) return require('cfx.json').encode(v, '  ') end

return M
