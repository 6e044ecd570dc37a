-- results.lua: cfx.results, results files (core/src/h5log.c; layout and guarantees in
-- docs/results.md).
--
--   local log = cfx.results.open('runs/x/results.h5')          -- create or append
--   local run = log:run('k=3,s=1', { config = cfg, experiment = 'scaling', seed = 1 })
--   run:scalars('train', { step = 1, loss = 0.69, lr = 2e-5 })  -- one row per call
--   run:truncate('train', 'step', 500)                          -- resuming from step 500
--   run:table('eval/synth', rows, { mean_ap = 0.91 })           -- a whole table + summary
--   run:arrays('predictions/synth', { score = s, label = l, generator = g })
--   run:set { status = 'done' }                                 -- attributes; status flushes
--   log:close()
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local json = require 'cfx.json'
local fs = require 'cfx.fs'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

local T_INT64, T_FLOAT64, T_STRING = C.CFX_H5LOG_INT64, C.CFX_H5LOG_FLOAT64, C.CFX_H5LOG_STRING
local ABSENT, GROUP, TABLE, ARRAY = C.CFX_H5LOG_ABSENT, C.CFX_H5LOG_GROUP, C.CFX_H5LOG_TABLE, C.CFX_H5LOG_ARRAY

-- ---- how Lua values are typed ---------------------------------------------------------------
-- A Lua number is stored as int64 when it is integral, else float64; a table column that
-- receives a fraction later becomes float64.  Names that hold measurements are float64
-- even when a value happens to be integral (an AP of exactly 1, a learning rate of 0):
-- these names, names starting with one of the prefixes and names ending with one of the
-- suffixes.  Add to cfx.results.float_names, or pass types = {name = 'float64'}.
M.float_names = { loss = true, lr = true, ap = true, acc = true, acc_real = true, acc_fake = true,
  auroc = true, images_per_s = true, grad_norm = true, score = true, seconds = true }
M.float_prefixes = { 'mean_', 'se_', 'std_', 'ap_', 'acc_', 'auroc_', 'loss_' }
M.float_suffixes = { '_ap', '_acc', '_auroc', '_loss', '_lr' }

local function is_float_name(name)
  if M.float_names[name] then return true end
  for _, p in ipairs(M.float_prefixes) do if name:sub(1, #p) == p then return true end end
  for _, s in ipairs(M.float_suffixes) do if #name > #s and name:sub(-#s) == s then return true end end
  return false
end

local function integral(v) return v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 end

-- Column order: the names of the standard tables first, then the rest sorted.
local preferred = { 'step', 'epoch', 'generator', 'architecture', 'n_generators', 'n_real', 'n_fake', 'ap', 'acc',
  'acc_real', 'acc_fake', 'auroc', 'loss', 'lr', 'images_per_s', 'score', 'label', 'embeddings' }
local rank = {}
for i, k in ipairs(preferred) do rank[k] = i end
local function order_keys(keys)
  table.sort(keys, function(a, b)
    local ra, rb = rank[a] or math.huge, rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return keys
end

local type_codes = { int64 = T_INT64, float64 = T_FLOAT64, string = T_STRING }

-- ---- the log ----------------------------------------------------------------------------------
local Log = {}
Log.__index = Log
M.Log = Log
local Run = {}
Run.__index = Run
M.Run = Run

local open_defaults = { flush_every = 10, readonly = false, truncate = false }

-- cfx.results.open(path [, {flush_every = 10, readonly = false, truncate = false}]) -> log.
-- Creates the file (and its directory) when absent, else continues it.  flush_every: seconds between the
-- automatic flushes that follow a change (0: after every change; false: never, only
-- log:flush() and log:close()).  truncate: start empty (the file is replaced at the
-- first flush).  One process writes a file at a time.
function M.open(path, opts)
  if type(path) ~= 'string' then raise('cfx.results.open: expected a path, got ' .. type(path)) end
  local o = core.options(opts, open_defaults, 'cfx.results.open')
  local flags = (o.readonly and C.CFX_H5LOG_READONLY or 0) + (o.truncate and C.CFX_H5LOG_TRUNCATE or 0)
  if not o.readonly then
    local dir = path:match('^(.*[^/])/+[^/]+$')
    if dir and not fs.is_dir(dir) then
      local ok, e = pcall(fs.mkdirs, dir)
      if not ok then raise(('cfx.results.open: %s: cannot make its directory: %s'):format(path, e)) end
    end
  end
  local box = ffi.new('cfx_h5log*[1]')
  check(C.cfx_h5log_open(path, flags, box), 'cfx.results.open')
  local self = setmetatable({ handle = ffi.gc(box[0], C.cfx_h5log_close), path = path, readonly = o.readonly,
    appenders = {} }, Log)
  if o.flush_every ~= 10 then
    local s = o.flush_every == false and -1 or o.flush_every
    if type(s) ~= 'number' or s < 0 and s ~= -1 then
      raise(('cfx.results.open: flush_every must be seconds >= 0 or false, got %s'):format(tostring(o.flush_every)))
    end
    C.cfx_h5log_set_flush_interval(self.handle, s)
  end
  return self
end

local function H(log)
  local h = log.handle
  if h == nil then raise(('%s: the results log is closed'):format(log.path)) end
  return h
end

-- Write the file now (when anything changed).
function Log:flush()
  check(C.cfx_h5log_flush(H(self)), 'flush')
end

-- Flush and release the file; closing twice is allowed.
function Log:close()
  local h = self.handle
  if h == nil then return end
  self.handle = nil
  ffi.gc(h, nil)
  check(C.cfx_h5log_close(h), 'close')
end

-- {flushes = n, seconds = total time spent flushing}
function Log:stats()
  local n, s = ffi.new('int64_t[1]'), ffi.new('double[1]')
  C.cfx_h5log_stats(H(self), n, s)
  return { flushes = tonumber(n[0]), seconds = s[0] }
end

-- The ids of the runs, in the order they were created.
function Log:runs()
  local h, ids = H(self), {}
  for i = 0, C.cfx_h5log_num_runs(h) - 1 do ids[#ids + 1] = ffi.string(C.cfx_h5log_run_id(h, i)) end
  return ids
end

function Log:has_run(id) return C.cfx_h5log_kind(H(self), id, nil) == GROUP end

-- log:run(id [, attrs]) -> run: the run of that id, created when absent (in a writable
-- log), with attrs set (see run:set).
function Log:run(id, attrs)
  if type(id) ~= 'string' then raise(('run: expected a run id (string), got %s'):format(type(id))) end
  local h = H(self)
  if self.readonly then
    if C.cfx_h5log_kind(h, id, nil) ~= GROUP then raise(('%s: no run \'%s\''):format(self.path, id)) end
  else
    check(C.cfx_h5log_add_run(h, id, nil))
  end
  local run = setmetatable({ log = self, id = id }, Run)
  if attrs ~= nil then run:set(attrs) end
  return run
end

function Log:remove(id, path)
  check(C.cfx_h5log_remove(H(self), id, path))
  self.appenders = {}
end

-- Log-level forms of the run methods.
function Log:scalars(id, name, row) return self:run(id):scalars(name, row) end
function Log:table(id, name, data, summary, opts) return self:run(id):table(name, data, summary, opts) end
function Log:arrays(id, name, arrays) return self:run(id):arrays(name, arrays) end
function Log:set(id, attrs) return self:run(id):set(attrs) end

function Log:__tostring()
  if self.handle == nil then return ('cfx.results log %s (closed)'):format(self.path) end
  return ('cfx.results log %s: %d runs%s'):format(self.path, C.cfx_h5log_num_runs(self.handle),
    self.readonly and ' (read-only)' or '')
end

-- ---- attributes ----------------------------------------------------------------------------------
local function set_attrs(run, path, attrs)
  if type(attrs) ~= 'table' then raise(('set: expected a table of attributes, got %s'):format(type(attrs))) end
  local h = H(run.log)
  local keys = {}
  for k in pairs(attrs) do
    if type(k) ~= 'string' then raise(('set: attribute names are strings, got %s'):format(tostring(k))) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = attrs[k]
    local rc
    if type(v) == 'table' then v = json.encode(v) end
    if type(v) == 'string' then
      rc = C.cfx_h5log_set_attr_string(h, run.id, path, k, v)
    elseif type(v) == 'number' then
      if integral(v) and not is_float_name(k) then
        rc = C.cfx_h5log_set_attr_int(h, run.id, path, k, v)
      else
        rc = C.cfx_h5log_set_attr_float(h, run.id, path, k, v)
      end
    else
      raise(("set: attribute '%s' is a %s; attributes are strings, numbers or tables (stored as JSON)"):format(k,
        type(v)))
    end
    check(rc)
  end
end

-- run:set(attrs) sets attributes of the run; run:set(path, attrs) those of the node at
-- path (e.g. a table's summary).  Strings and numbers are stored as they are, tables as
-- JSON strings.  Setting the run's status flushes the file, so that e.g. 'done' is on
-- disk when set returns.
function Run:set(a, b)
  if type(a) == 'string' then
    set_attrs(self, a, b)
  else
    set_attrs(self, nil, a)
    if a.status ~= nil then self.log:flush() end
  end
  return self
end

local vtype, vi, vf, vs = ffi.new('int[1]'), ffi.new('int64_t[1]'), ffi.new('double[1]'), ffi.new('const char*[1]')
local kbuf = ffi.new('const char*[1]')

-- run:get([path]) -> the attributes of the run (or of the node at path) as a table.
function Run:get(path)
  local h = H(self.log)
  local n = ffi.new('int[1]')
  check(C.cfx_h5log_num_attrs(h, self.id, path, n))
  local r = {}
  for i = 0, n[0] - 1 do
    check(C.cfx_h5log_attr(h, self.id, path, i, kbuf, vtype, vi, vf, vs))
    local k = ffi.string(kbuf[0])
    if vtype[0] == T_STRING then r[k] = ffi.string(vs[0])
    elseif vtype[0] == T_INT64 then r[k] = tonumber(vi[0])
    else r[k] = vf[0] end
  end
  return r
end

-- The run's config attribute decoded from JSON (nil when absent).
function Run:config()
  local c = self:get().config
  if c == nil then return nil end
  return json.decode(c)
end

-- 'group', 'table', 'array' or nil for the node at path (the run itself for nil).
local kind_names = { [GROUP] = 'group', [TABLE] = 'table', [ARRAY] = 'array' }
function Run:kind(path) return kind_names[C.cfx_h5log_kind(H(self.log), self.id, path)] end

-- The names below the group at path (nil: the run), in creation order.
function Run:children(path)
  local blob, n = ffi.new('char*[1]'), ffi.new('int64_t[1]')
  check(C.cfx_h5log_children(H(self.log), self.id, path, blob, n))
  local s = ffi.string(blob[0], n[0])
  C.cfx_free(blob[0])
  local r = {}
  for name in s:gmatch('([^%z]+)%z') do r[#r + 1] = name end
  return r
end

function Run:remove(path)
  self.log:remove(self.id, path)
end

-- ---- tables -----------------------------------------------------------------------------------------
-- The state that makes appending a row cheap: column names (kept alive here) and the
-- FFI arrays of one row, built once per table.
local function appender(run, name, row)
  local key = run.id .. '\0' .. name
  local a = run.log.appenders[key]
  if a then return a end
  local h = H(run.log)
  local cols = {}
  local nc, nr = ffi.new('int[1]'), ffi.new('int64_t[1]')
  if C.cfx_h5log_kind(h, run.id, name) == TABLE then
    -- a table that exists (a resumed run): its columns, in its order
    check(C.cfx_h5log_table_shape(h, run.id, name, nc, nr))
    local cname = ffi.new('const char*[1]')
    for c = 0, nc[0] - 1 do
      check(C.cfx_h5log_table_column(h, run.id, name, c, cname, vtype, nil))
      cols[#cols + 1] = ffi.string(cname[0])
    end
  else
    for k in pairs(row) do
      if type(k) ~= 'string' then raise(("scalars: column names are strings, got %s"):format(tostring(k))) end
      cols[#cols + 1] = k
    end
    order_keys(cols)
  end
  local n = #cols
  a = { cols = cols, n = n, names = ffi.new('const char*[?]', n), types = ffi.new('int[?]', n),
    ivals = ffi.new('int64_t[?]', n), fvals = ffi.new('double[?]', n), svals = ffi.new('const char*[?]', n),
    float = {} }
  for i, c in ipairs(cols) do
    a.names[i - 1] = c
    a.float[i] = is_float_name(c)
  end
  run.log.appenders[key] = a
  return a
end

local function row_error(run, name, a, row)
  local missing, extra, known = {}, {}, {}
  for _, c in ipairs(a.cols) do
    known[c] = true
    if row[c] == nil then missing[#missing + 1] = c end
  end
  for k in pairs(row) do if not known[k] then extra[#extra + 1] = tostring(k) end end
  table.sort(extra)
  raise(("scalars: run '%s', table '%s' has the columns %s (fixed by its first row); this row %s%s%s"):format(
    run.id, name, table.concat(a.cols, ', '),
    #missing > 0 and ('lacks ' .. table.concat(missing, ', ')) or '',
    (#missing > 0 and #extra > 0) and ' and ' or '',
    #extra > 0 and ('has no column for ' .. table.concat(extra, ', ')) or ''))
end

-- run:scalars(name, row): append one row ({column = number or string}) to the table
-- name (e.g. 'train').  The first row makes the table and fixes its columns (standard
-- names first, then sorted); every later row gives the same ones.
function Run:scalars(name, row)
  if type(name) ~= 'string' then raise(('scalars: expected a table name, got %s'):format(type(name))) end
  if type(row) ~= 'table' then raise(('scalars: expected a row {column = value}, got %s'):format(type(row))) end
  local a = appender(self, name, row)
  local names, types, ivals, fvals, svals, float = a.cols, a.types, a.ivals, a.fvals, a.svals, a.float
  local count = 0
  for _ in pairs(row) do count = count + 1 end
  if count ~= a.n then row_error(self, name, a, row) end
  for i = 1, a.n do
    local v = row[names[i]]
    local tv = type(v)
    if tv == 'number' then
      if not float[i] and integral(v) then
        types[i - 1], ivals[i - 1] = T_INT64, v
      else
        types[i - 1], fvals[i - 1] = T_FLOAT64, v
      end
    elseif tv == 'string' then
      types[i - 1], svals[i - 1] = T_STRING, v
    elseif v == nil then
      row_error(self, name, a, row)
    else
      raise(("scalars: column '%s' is a %s; table values are numbers or strings"):format(names[i], tv))
    end
  end
  check(C.cfx_h5log_append(H(self.log), self.id, name, a.n, a.names, types, ivals, fvals, svals))
end

-- run:truncate(name, key, max) -> rows removed: keep the rows whose column key is <= max.
-- A run resumed from a checkpoint at step K calls run:truncate('train', 'step', K)
-- before logging steps K+1.. again, so that no step appears twice.
function Run:truncate(name, key, max)
  if type(max) ~= 'number' then raise(('truncate: max must be a number, got %s'):format(type(max))) end
  local h = H(self.log)
  if C.cfx_h5log_kind(h, self.id, name) == ABSENT then return 0 end
  local removed = ffi.new('int64_t[1]')
  check(C.cfx_h5log_truncate(h, self.id, name, key, max, removed))
  return tonumber(removed[0])
end

local table_defaults = { columns = false, types = false }

-- The columns of data: an array of rows {column = value}, or a table of columns
-- {column = list or 1-d tensor}.  Returns names (ordered), values (name -> list), n.
local function as_columns(data, opts)
  local values, names, n = {}, {}, nil
  if data[1] ~= nil then
    local seen = {}
    for i, row in ipairs(data) do
      if type(row) ~= 'table' then raise(('table: row %d is a %s, expected {column = value}'):format(i, type(row))) end
      for k in pairs(row) do
        if type(k) ~= 'string' then raise(('table: row %d has a column named %s; names are strings'):format(i, tostring(k))) end
        if not seen[k] then seen[k], names[#names + 1], values[k] = true, k, {} end
      end
    end
    n = #data
    for i, row in ipairs(data) do
      for _, k in ipairs(names) do values[k][i] = row[k] end
    end
  else
    for k, col in pairs(data) do
      if type(k) ~= 'string' then raise(('table: column names are strings, got %s'):format(tostring(k))) end
      if tensor.is_tensor(col) then
        if #col:shape() ~= 1 then raise(("table: column '%s' is a tensor of %d dimensions, expected 1"):format(k, #col:shape())) end
        col = col:totable()
      elseif type(col) ~= 'table' then
        raise(("table: column '%s' is a %s, expected a list or a 1-d tensor"):format(k, type(col)))
      end
      local m = #col
      if n and m ~= n then raise(("table: column '%s' has %d values, others %d"):format(k, m, n)) end
      n, names[#names + 1], values[k] = m, k, col
    end
  end
  if opts.columns then
    local given = {}
    for _, k in ipairs(names) do given[k] = true end
    for _, k in ipairs(opts.columns) do
      if not given[k] then values[k] = {} end
    end
    for _, k in ipairs(names) do
      local listed = false
      for _, c in ipairs(opts.columns) do listed = listed or c == k end
      if not listed then raise(("table: column '%s' is not in columns"):format(k)) end
    end
    names = { unpack(opts.columns) }
  else
    order_keys(names)
  end
  return names, values, n or 0
end

-- run:table(name, data [, summary [, {columns=, types=}]]): write the whole table name
-- (e.g. 'eval/synth'), replacing it.  data is an array of rows {column = value} or a
-- table of columns {column = list or 1-d tensor}; a value missing from a row is NaN
-- (numbers) or '' (strings).  summary: attributes of the table (mean_ap, ...).
-- columns = {...} gives the order (and the columns of an empty table); types =
-- {column = 'int64'|'float64'|'string'} overrides the typing of numbers.
function Run:table(name, data, summary, opts)
  if type(name) ~= 'string' then raise(('table: expected a table name, got %s'):format(type(name))) end
  if type(data) ~= 'table' then raise(('table: expected rows or columns, got %s'):format(type(data))) end
  local o = core.options(opts, table_defaults, 'table')
  local names, values, n = as_columns(data, o)
  if #names == 0 then raise(("table '%s': no columns (pass columns = {...} to write an empty table)"):format(name)) end
  local nc = #names
  local cnames, ctypes = ffi.new('const char*[?]', nc), ffi.new('int[?]', nc)
  local cdata, keep = ffi.new('const void*[?]', nc), {}
  for c, k in ipairs(names) do
    local vals = values[k]
    local want = o.types and o.types[k]
    if want and not type_codes[want] then
      raise(("table: types.%s is '%s', expected 'int64', 'float64' or 'string'"):format(k, tostring(want)))
    end
    local is_str, is_num, all_int = false, false, true
    for i = 1, n do
      local v = vals[i]
      if type(v) == 'string' then is_str = true
      elseif type(v) == 'number' then
        is_num = true
        if not integral(v) then all_int = false end
      elseif v == nil then all_int = false
      else raise(("table: column '%s', row %d is a %s; values are numbers or strings"):format(k, i, type(v))) end
    end
    if is_str and is_num then raise(("table: column '%s' mixes numbers and strings"):format(k)) end
    local t = want and type_codes[want] or is_str and T_STRING or
        ((all_int and is_num and not is_float_name(k)) and T_INT64 or T_FLOAT64)
    if t == T_STRING then
      if is_num then raise(("table: column '%s' holds numbers, types says string"):format(k)) end
      local arr = ffi.new('const char*[?]', math.max(n, 1))
      for i = 1, n do arr[i - 1] = vals[i] or '' end
      keep[#keep + 1] = arr
      cdata[c - 1] = arr
    else
      if is_str then raise(("table: column '%s' holds strings, types says %s"):format(k, want)) end
      local arr = ffi.new(t == T_INT64 and 'int64_t[?]' or 'double[?]', math.max(n, 1))
      for i = 1, n do
        local v = vals[i]
        if t == T_INT64 then
          if v == nil or not integral(v) then
            raise(("table: column '%s' is int64 but row %d holds %s"):format(k, i, tostring(v)))
          end
          arr[i - 1] = v
        else
          arr[i - 1] = v == nil and 0 / 0 or v
        end
      end
      keep[#keep + 1] = arr
      cdata[c - 1] = arr
    end
    cnames[c - 1], ctypes[c - 1] = k, t
  end
  self.log.appenders[self.id .. '\0' .. name] = nil
  check(C.cfx_h5log_write_table(H(self.log), self.id, name, nc, cnames, ctypes, n, cdata))
  if summary ~= nil then set_attrs(self, name, summary) end
  return self
end

-- ---- arrays ---------------------------------------------------------------------------------------------
local array_rank = { score = 1, label = 2, generator = 3, embeddings = 4 }
local array_dtypes = { uint8 = 'uint8', int8 = 'int8', int16 = 'int16', int32 = 'int32', int64 = 'int64',
  float32 = 'float32', float64 = 'float64', bool = 'uint8', float16 = 'float32', bfloat16 = 'float32' }

-- run:arrays(name, {key = tensor or list, ...}): the group name (e.g.
-- 'predictions/synth') holding one array per key, replacing what was there.  Tensors
-- keep their dtype (bool becomes uint8, float16/bfloat16 float32); lists are float64.
function Run:arrays(name, arrays)
  if type(name) ~= 'string' then raise(('arrays: expected a group name, got %s'):format(type(name))) end
  if type(arrays) ~= 'table' then raise(('arrays: expected {name = tensor}, got %s'):format(type(arrays))) end
  local keys = {}
  for k in pairs(arrays) do
    if type(k) ~= 'string' then raise(('arrays: names are strings, got %s'):format(tostring(k))) end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    local ra, rb = array_rank[a] or math.huge, array_rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  -- convert everything before changing the file
  local conv = {}
  for i, k in ipairs(keys) do
    local t = arrays[k]
    if type(t) == 'table' then t = tensor.tensor(t, { dtype = 'float64' })
    elseif not tensor.is_tensor(t) then
      raise(("arrays: '%s' is a %s, expected a tensor or a list of numbers"):format(k, type(t)))
    end
    local dt = array_dtypes[t:dtype()]
    if not dt then raise(("arrays: '%s' has dtype %s"):format(k, t:dtype())) end
    t = t:to { dtype = dt, device = 'cpu' }:contiguous()
    conv[i] = t
  end
  local h = H(self.log)
  if C.cfx_h5log_kind(h, self.id, name) ~= ABSENT then
    check(C.cfx_h5log_remove(h, self.id, name))
  end
  for i, k in ipairs(keys) do
    local t = conv[i]
    local shp = t:shape()
    local dims = ffi.new('int64_t[?]', math.max(#shp, 1))
    for d = 1, #shp do dims[d - 1] = shp[d] end
    local ptr = t:numel() > 0 and t:data_ptr() or nil
    check(C.cfx_h5log_set_array(h, self.id, name .. '/' .. k, core.dtype_code(t:dtype()), dims, #shp, ptr))
  end
  return self
end

-- ---- reading ----------------------------------------------------------------------------------------------
local function read_table(run, h, name)
  local nc, nr = ffi.new('int[1]'), ffi.new('int64_t[1]')
  check(C.cfx_h5log_table_shape(h, run.id, name, nc, nr))
  local n = tonumber(nr[0])
  local cols, names = {}, {}
  local cname, data = ffi.new('const char*[1]'), ffi.new('const void*[1]')
  for c = 0, nc[0] - 1 do
    check(C.cfx_h5log_table_column(h, run.id, name, c, cname, vtype, data))
    local k = ffi.string(cname[0])
    local col = {}
    if vtype[0] == T_INT64 then
      local p = ffi.cast('const int64_t*', data[0])
      for i = 1, n do col[i] = tonumber(p[i - 1]) end
    elseif vtype[0] == T_FLOAT64 then
      local p = ffi.cast('const double*', data[0])
      for i = 1, n do col[i] = p[i - 1] end
    else
      local p = ffi.cast('const char *const*', data[0])
      for i = 1, n do col[i] = ffi.string(p[i - 1]) end
    end
    cols[k], names[#names + 1] = col, k
  end
  return cols, names, n
end

local function read_array(run, h, path)
  local dt, nd, data = ffi.new('int[1]'), ffi.new('int[1]'), ffi.new('const void*[1]')
  local dims = ffi.new('int64_t[8]')
  check(C.cfx_h5log_array(h, run.id, path, dt, dims, 8, nd, data))
  local shp = {}
  for d = 1, nd[0] do shp[d] = tonumber(dims[d - 1]) end
  return tensor.from_buffer(data[0], shp, core.dtype_names[dt[0]])
end

-- run:read(name): a table as {column = list} (plus the column names in order and the
-- number of rows), an array as a tensor, a group as {child = what read gives}; nil when
-- there is nothing at name.
function Run:read(name)
  local h = H(self.log)
  local k = C.cfx_h5log_kind(h, self.id, name)
  if k == TABLE then return read_table(self, h, name)
  elseif k == ARRAY then return read_array(self, h, name)
  elseif k == GROUP then
    local r = {}
    for _, c in ipairs(self:children(name)) do r[c] = self:read(name and (name .. '/' .. c) or c) end
    return r
  end
  return nil
end

function Run:__tostring() return ('cfx.results run %s of %s'):format(self.id, self.log.path) end

-- cfx.results.is_results_file(path) -> true, or false and the reason when path is not a
-- results file (not HDF5, or another cfx_format); a results file that cannot be read
-- (damaged, another format version) is an error.
function M.is_results_file(path)
  local box = ffi.new('cfx_h5log*[1]')
  local rc = C.cfx_h5log_open(path, C.CFX_H5LOG_READONLY, box)
  if rc == 0 then
    C.cfx_h5log_free(box[0])
    return true
  end
  local msg = ffi.string(C.cfx_last_error())
  if rc == C.CFX_EFORMAT and msg:find(': not a cfx results file', 1, true) then return false, msg end
  raise(msg)
end

-- ---- configurations -------------------------------------------------------------------------------------
-- A run is its id and its whole configuration (the run's `config` attribute, JSON), its
-- device aside: a run resumed on another device is the same run (checkpoints leave the
-- device out of their configuration hash too).  Two copies of one id whose configurations
-- differ are two different runs: the experiment runner does not report one for the other,
-- and collect does not merge them.

-- comparable_config(cfg) -> a copy of cfg without its device: what identifies a run.
function M.comparable_config(cfg)
  local r = {}
  for k, v in pairs(cfg) do
    if k ~= 'device' then r[k] = v end
  end
  return r
end

-- config_hash(cfg) -> 16 hex digits: cfg's canonical JSON (sorted keys) hashed; what a
-- checkpoint records (cfx.checkpoint.config_hash is this function).
function M.config_hash(cfg)
  local s = json.encode(cfg)
  local h = C.cfx_hash64(s, #s, 0)
  return bit.tohex(tonumber(h / 0x100000000ULL), 8) .. bit.tohex(tonumber(h % 0x100000000ULL), 8)
end

-- config_diff(a, b) -> the keys whose values differ between two configurations (as their
-- JSON, as stored), device aside, sorted: {{key=, a=value or nil, b=value or nil}, ...};
-- {} for the same run.
function M.config_diff(a, b)
  local keys, seen = {}, {}
  for _, t in ipairs { a, b } do
    for k in pairs(t) do
      if k ~= 'device' and not seen[k] then seen[k], keys[#keys + 1] = true, k end
    end
  end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  local r = {}
  for _, k in ipairs(keys) do
    local va = a[k] ~= nil and json.encode(a[k]) or nil
    local vb = b[k] ~= nil and json.encode(b[k]) or nil
    if va ~= vb then r[#r + 1] = { key = k, a = a[k], b = b[k] } end
  end
  return r
end

-- A value of a configuration for a message: numbers as short as they round-trip (0.2,
-- not JSON's 0.20000000000000001), strings quoted, tables as JSON.
local function show(v)
  if v == nil then return '(absent)' end
  if type(v) == 'number' then
    for digits = 15, 17 do
      local s = ('%.' .. digits .. 'g'):format(v)
      if tonumber(s) == v then return s end
    end
  end
  return json.encode(v)
end

-- describe_diff(diff, where_a, where_b [, max=4]) -> "steps 240 in A, 100 in B; seed ...".
function M.describe_diff(diff, wa, wb, max)
  max = max or 4
  local parts = {}
  for i, d in ipairs(diff) do
    if i > max then
      parts[#parts + 1] = ('%d more key%s'):format(#diff - max, #diff - max == 1 and '' or 's')
      break
    end
    parts[#parts + 1] = ('%s %s %s, %s %s'):format(tostring(d.key), show(d.a), wa, show(d.b), wb)
  end
  return table.concat(parts, '; ')
end

-- The first run id that two inputs hold with different configurations: nil, or id, the
-- two paths and the diff.  Runs without a config attribute are not compared.
local function config_conflict(inputs)
  local seen = {}
  for _, p in ipairs(inputs) do
    local log = M.open(p, { readonly = true })
    for _, id in ipairs(log:runs()) do
      local ok, cfg = pcall(function() return log:run(id):config() end)
      if ok and type(cfg) == 'table' then
        local prev = seen[id]
        if not prev then
          seen[id] = { path = p, cfg = cfg }
        else
          local d = M.config_diff(prev.cfg, cfg)
          if #d > 0 then
            log:close()
            return id, prev.path, p, d
          end
        end
      end
    end
    log:close()
  end
  return nil
end

-- ---- merging ----------------------------------------------------------------------------------------------
-- The runs of the results file at out that a merge of inputs would lose: runs of which
-- no input holds a copy (the same id and creation time: another run of the same id is
-- not a copy), or whose copy at out was updated after every input's (a file written or
-- continued by hand).  A file left by an earlier merge of the same inputs loses
-- nothing.  {} when out is absent or not a results file (which open refuses).
local function runs_lost(inputs, out)
  if not fs.exists(out) or not M.is_results_file(out) then return {} end
  local newest = {} -- id .. '\0' .. created -> the latest updated among the inputs' copies
  for _, p in ipairs(inputs) do
    local log = M.open(p, { readonly = true })
    for _, id in ipairs(log:runs()) do
      local a = log:run(id):get()
      local key, u = id .. '\0' .. tostring(a.created), a.updated or ''
      if not newest[key] or u > newest[key] then newest[key] = u end
    end
    log:close()
  end
  local lost = {}
  local log = M.open(out, { readonly = true })
  for _, id in ipairs(log:runs()) do
    local a = log:run(id):get()
    local key, u = id .. '\0' .. tostring(a.created), a.updated or ''
    if not newest[key] or u > newest[key] then lost[#lost + 1] = id end
  end
  log:close()
  return lost
end

-- What a log holds, by experiment and preset (the runs' attributes): a sorted list of
-- {experiment=, preset=, runs=n, status={done=n, ...}}; '' where a run has none.
local function groups_of(log)
  local by, list = {}, {}
  for _, id in ipairs(log:runs()) do
    local a = log:run(id):get()
    local e, p = tostring(a.experiment or ''), tostring(a.preset or '')
    local key = e .. '\0' .. p
    local g = by[key]
    if not g then
      g = { experiment = e, preset = p, runs = 0, status = {} }
      by[key], list[#list + 1] = g, g
    end
    local st = tostring(a.status or 'no status')
    g.runs, g.status[st] = g.runs + 1, (g.status[st] or 0) + 1
  end
  table.sort(list, function(x, y)
    if x.experiment ~= y.experiment then return x.experiment < y.experiment end
    return x.preset < y.preset
  end)
  return list
end

local collect_defaults = { replace = false }

-- cfx.results.collect(inputs, out [, {replace = false}]) -> {runs = n, report = {lines},
-- groups = {{experiment=, preset=, runs=, status={status = n}}}}: every run of the
-- results files in the list inputs, into the new file out.  A run id in several inputs
-- is taken from the copy whose status is 'done', then from the one updated last, then
-- from the later input; report says which, for each.  Copies of one id must hold the same
-- configuration (device aside): two configurations under one id are an error naming the
-- id, the files and the differing keys, and nothing is written.  An existing results file at out
-- is replaced only when that loses no run (an earlier merge of these inputs, say);
-- otherwise it is an error naming the runs, unless replace = true.  groups: what the
-- merged file holds, per experiment and preset (several presets in one file are
-- usually a mistake: their tables do not mix).
function M.collect(inputs, out, opts)
  if type(inputs) ~= 'table' then raise('collect: expected a list of input paths') end
  if type(out) ~= 'string' then raise('collect: expected an output path') end
  local o = core.options(opts, collect_defaults, 'collect')
  local n = #inputs
  local arr = ffi.new('const char*[?]', math.max(n, 1))
  for i, p in ipairs(inputs) do
    if type(p) ~= 'string' then raise(('collect: input %d is a %s, expected a path'):format(i, type(p))) end
    if p == out then raise(('collect: %s is both an input and the output'):format(out)) end
    arr[i - 1] = p
  end
  local id, pa, pb, diff = config_conflict(inputs)
  if id then
    raise(("collect: run '%s' is in %s and in %s with different configurations (%s): two runs under one id, " ..
      "not copies of one; collect them into separate files, or remove one"):format(id, pa, pb,
      M.describe_diff(diff, 'in the first', 'in the second')))
  end
  if not o.replace then
    local lost = runs_lost(inputs, out)
    if #lost > 0 then
      local shown = {}
      for i = 1, math.min(#lost, 5) do shown[i] = "'" .. lost[i] .. "'" end
      raise(('collect: %s already exists and holds %d run%s that no input has (or a newer copy of): %s%s; ' ..
        'it is not replaced: give another output path, or move it away'):format(out, #lost,
        #lost == 1 and '' or 's', table.concat(shown, ', '), #lost > 5 and ', ...' or ''))
    end
  end
  local log = M.open(out, { truncate = true, flush_every = false })
  local rep, len = ffi.new('char*[1]'), ffi.new('int64_t[1]')
  local rc = C.cfx_h5log_merge(log.handle, n, arr, rep, len)
  if rc ~= 0 then
    local msg = ffi.string(C.cfx_last_error())
    C.cfx_h5log_free(ffi.gc(log.handle, nil)) -- nothing half-merged lands at out
    log.handle = nil
    raise('collect: ' .. msg)
  end
  local text = ffi.string(rep[0], len[0])
  C.cfx_free(rep[0])
  local report = {}
  for line in text:gmatch('[^\n]+') do report[#report + 1] = line end
  local runs = C.cfx_h5log_num_runs(log.handle)
  local groups = groups_of(log)
  log:close()
  return { runs = runs, report = report, groups = groups }
end

return M
