-- nn/module.lua: the Module base class (PyTorch's nn.Module, in Lua).
--
-- A module owns parameters (tensors that require grad), buffers (tensors saved with the
-- model but not trained, e.g. BatchNorm's running statistics) and child modules, each
-- under a name.  Assigning a module to a field registers it as a child, in assignment
-- order:  self.proj = nn.Linear(4, 8).  Parameters and buffers are registered with
-- self:register_parameter(name, t) / self:register_buffer(name, t) and then read as
-- fields (self.weight).  Names join with '.', children of containers are named 0, 1, ...
-- as in PyTorch, so state_dict keys equal timm's and torchvision's.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local raise = core.raise

local Module = { __name = 'Module' }
local M = { Module = Module }

local function is_module(v)
  local mt = type(v) == 'table' and getmetatable(v)
  return mt and rawget(mt, '__module_class') == true or false
end
M.is_module = is_module

-- Run fn with autograd off (parameter surgery must not be recorded).
local function no_grad(fn, ...) return core.with_grad_mode(0, fn, ...) end
M.no_grad = no_grad

-- Lookup order for module fields: parameters, buffers, children, then the class.
local function make_index(cls)
  return function(self, k)
    local v = rawget(self, '_members')[k]
    if v ~= nil then return v end
    if type(k) == 'number' then -- containers: seq[i] is the i-th child (1-based)
      local name = rawget(self, '_order').modules[k]
      return name and self._modules[name]
    end
    return cls[k]
  end
end

local function newindex(self, k, v)
  local kind = rawget(self, '_kind')[k]
  if is_module(v) then
    if kind and kind ~= 'module' then raise(("cannot assign a module to %s '%s'"):format(kind, k)) end
    self:add_module(k, v)
  elseif kind == 'module' then
    if v ~= nil then raise(("'%s' is a child module; assign a module or nil"):format(k)) end
    self._modules[k] = nil
    rawget(self, '_members')[k] = nil
  elseif kind == 'parameter' or kind == 'buffer' then
    if v ~= nil and not tensor.is_tensor(v) then
      raise(("'%s' is a %s; assign a tensor or nil, got %s"):format(k, kind, type(v)))
    end
    local store = kind == 'parameter' and self._parameters or self._buffers
    store[k] = v
    rawget(self, '_members')[k] = v
  else
    rawset(self, k, v)
  end
end

-- nn.class(name [, parent]) -> a module class.  Calling the class builds an instance and
-- runs cls.__init(self, ...).  Metamethods (__call, __tostring) are inherited.
function M.class(name, parent)
  parent = parent or Module
  local cls = { __name = name, super = parent, __module_class = true }
  for k, v in pairs(parent) do
    if type(k) == 'string' and k:sub(1, 2) == '__' and cls[k] == nil and k ~= '__index' then cls[k] = v end
  end
  cls.__index = make_index(cls)
  cls.__newindex = newindex
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local self = setmetatable({ _members = {}, _kind = {}, _parameters = {}, _buffers = {}, _modules = {},
        _order = { parameters = {}, buffers = {}, modules = {} }, _nonpersistent = {}, training = true }, c)
      c.__init(self, ...)
      return self
    end,
    __tostring = function() return 'class ' .. name end,
  })
end

Module.__module_class = true
Module.__index = make_index(Module)
Module.__newindex = newindex
function Module.__init() end
function Module:forward() raise(self.__name .. ': forward is not implemented') end
function Module.__call(self, ...) return self:forward(...) end

local function register(self, kind, name, v)
  if type(name) ~= 'string' or name == '' or name:find('.', 1, true) then
    raise(('%s name must be a non-empty string without dots, got %s'):format(kind, tostring(name)))
  end
  local have = rawget(self, '_kind')[name]
  if have and have ~= kind then raise(("'%s' is already a %s"):format(name, have)) end
  if not have then
    if rawget(self, name) ~= nil or Module[name] ~= nil then
      raise(("'%s' would hide a field or method of the module"):format(name))
    end
    rawget(self, '_kind')[name] = kind
    local order = self._order[kind == 'module' and 'modules' or kind .. 's']
    order[#order + 1] = name
  end
  rawget(self, '_members')[name] = v
end

-- Register t (a tensor, or nil for an absent optional parameter such as a bias) as a
-- parameter: it is made to require grad.
function Module:register_parameter(name, t)
  if t ~= nil and not tensor.is_tensor(t) then
    raise(('register_parameter: %s must be a tensor or nil, got %s'):format(name, type(t)))
  end
  if t ~= nil and not t:requires_grad() then t:requires_grad_(true) end
  register(self, 'parameter', name, t)
  self._parameters[name] = t
  return t
end

-- A buffer is saved in state_dict (unless persistent=false) but not trained.
function Module:register_buffer(name, t, persistent)
  if t ~= nil and not tensor.is_tensor(t) then
    raise(('register_buffer: %s must be a tensor or nil, got %s'):format(name, type(t)))
  end
  register(self, 'buffer', name, t)
  self._buffers[name] = t
  self._nonpersistent[name] = persistent == false or nil
  return t
end

function Module:add_module(name, m)
  if m ~= nil and not is_module(m) then raise(('add_module: %s is not a module'):format(tostring(name))) end
  register(self, 'module', tostring(name), m)
  self._modules[tostring(name)] = m
  return m
end

-- ---- traversal ----------------------------------------------------------------------
local function join(prefix, name) return prefix == '' and name or prefix .. '.' .. name end

local function iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

-- List of {name, module} for this module and every descendant (depth first, self first).
function Module:named_modules_list(prefix, out)
  out, prefix = out or {}, prefix or ''
  out[#out + 1] = { prefix, self }
  for _, name in ipairs(self._order.modules) do
    local m = self._modules[name]
    if m then m:named_modules_list(join(prefix, name), out) end
  end
  return out
end
-- for name, m in model:named_modules() do ... end
function Module:named_modules() return iter(self:named_modules_list()) end
function Module:modules()
  local r = {}
  for i, e in ipairs(self:named_modules_list()) do r[i] = e[2] end
  return r
end
-- for name, m in model:named_children() do ... end (direct children only)
function Module:named_children()
  local list = {}
  for _, name in ipairs(self._order.modules) do
    if self._modules[name] then list[#list + 1] = { name, self._modules[name] } end
  end
  return iter(list)
end
function Module:children()
  local r = {}
  for _, m in self:named_children() do r[#r + 1] = m end
  return r
end

local function collect(self, kind, persistent_only)
  local out = {}
  for _, e in ipairs(self:named_modules_list()) do
    local prefix, m = e[1], e[2]
    local store = kind == 'parameters' and m._parameters or m._buffers
    for _, name in ipairs(m._order[kind]) do
      local t = store[name]
      if t and not (persistent_only and m._nonpersistent[name]) then out[#out + 1] = { join(prefix, name), t, m, name } end
    end
  end
  return out
end
M.collect = collect

-- for name, p in model:named_parameters() do ... end, in registration order.
function Module:named_parameters() return iter(collect(self, 'parameters')) end
function Module:named_buffers() return iter(collect(self, 'buffers')) end
-- List of parameter tensors (only those that require grad with trainable=true).
function Module:parameters(trainable)
  local r = {}
  for _, e in ipairs(collect(self, 'parameters')) do
    if not trainable or e[2]:requires_grad() then r[#r + 1] = e[2] end
  end
  return r
end
function Module:buffers()
  local r = {}
  for _, e in ipairs(collect(self, 'buffers')) do r[#r + 1] = e[2] end
  return r
end

-- Number of parameter elements (only trainable ones with {trainable=true}).
function Module:num_parameters(opts)
  local trainable = type(opts) == 'table' and opts.trainable
  local n = 0
  for _, p in ipairs(self:parameters(trainable)) do n = n + p:numel() end
  return n
end

-- fn(module) on every module, children first (as PyTorch's apply); returns self.
function Module:apply(fn)
  for _, m in ipairs(self:children()) do m:apply(fn) end
  fn(self)
  return self
end

function Module:train(mode)
  mode = mode ~= false
  for _, m in ipairs(self:modules()) do rawset(m, 'training', mode) end
  return self
end
function Module:eval() return self:train(false) end

-- Clear every parameter's gradient (set_to_none=true by default, as PyTorch 2).
function Module:zero_grad(set_to_none)
  for _, p in ipairs(self:parameters()) do p:zero_grad(set_to_none) end
end

-- ---- freezing -------------------------------------------------------------------------
local function set_trainable(self, pattern, flag, fname)
  if pattern ~= nil and type(pattern) ~= 'string' then
    raise(('%s: pattern must be a Lua pattern string, got %s'):format(fname, type(pattern)))
  end
  local n = 0
  for _, e in ipairs(collect(self, 'parameters')) do
    if pattern == nil or e[1]:find(pattern) then
      e[2]:requires_grad_(flag)
      n = n + 1
    end
  end
  if n == 0 and pattern == nil then raise(('%s: %s has no parameters'):format(fname, self.__name)) end
  if n == 0 then
    raise(("%s: no parameter name matches '%s' (names look like %s)"):format(fname, tostring(pattern),
      (collect(self, 'parameters')[1] or { 'nothing' })[1]))
  end
  return n
end
-- model:freeze([pattern]): stop training the parameters whose name matches the Lua
-- pattern (all without one); returns how many.  A pattern that matches nothing is an
-- error, so a typo does not silently train everything.
function Module:freeze(pattern) return set_trainable(self, pattern, false, 'freeze') end
function Module:unfreeze(pattern) return set_trainable(self, pattern, true, 'unfreeze') end

-- model:get_classifier() -> the classifier module; model:reset_classifier(num_classes):
-- a fresh classifier (timm's names).  The backbones of cfx.models define them (ViT and
-- ConvNeXt: head / head.fc, ResNet: fc), so that a linear probe reads the same for every
-- one: model:freeze(); model:get_classifier():unfreeze().
function Module:get_classifier() raise(self.__name .. ': get_classifier: this module has no classifier') end
function Module:reset_classifier() raise(self.__name .. ': reset_classifier: this module has no classifier') end

-- ---- state ------------------------------------------------------------------------------
-- {name = tensor} of parameters and persistent buffers (the tensors themselves, not copies).
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(collect(self, 'parameters')) do sd[e[1]] = e[2] end
  for _, e in ipairs(collect(self, 'buffers', true)) do sd[e[1]] = e[2] end
  return sd
end

-- Ordered list of state_dict names.
function Module:state_dict_names()
  local r = {}
  for _, e in ipairs(collect(self, 'parameters')) do r[#r + 1] = e[1] end
  for _, e in ipairs(collect(self, 'buffers', true)) do r[#r + 1] = e[1] end
  return r
end

local function shape_str(t) return '{' .. table.concat(t:shape(), ', ') .. '}' end

-- 'a, b, c, ... (n more)': at most `limit` (8) names of a list, for error messages.
local function listing(names, limit)
  limit = limit or 8
  local r = {}
  for i = 1, math.min(#names, limit) do r[i] = names[i] end
  local s = table.concat(r, ', ')
  if #names > limit then s = s .. (', ... (%d more)'):format(#names - limit) end
  return s
end
M.listing = listing

-- model:load_state_dict(sd [, {strict=true}]) -> {missing={..}, unexpected={..}}.
-- Values are copied into the existing tensors (converting dtype), so optimizers keep
-- their references.  Everything is checked before anything is copied: a shape mismatch
-- is always an error, and with strict=true so are missing and unexpected keys; the
-- error names them.
function Module:load_state_dict(sd, opts)
  local o = core.options(opts, { strict = true, ['?source'] = true }, 'load_state_dict')
  if type(sd) ~= 'table' then raise('load_state_dict: expected a {name = tensor} table, got ' .. type(sd)) end
  local own = {}
  for _, e in ipairs(collect(self, 'parameters')) do own[#own + 1] = e end
  for _, e in ipairs(collect(self, 'buffers', true)) do own[#own + 1] = e end
  local missing, unexpected, mismatched, known = {}, {}, {}, {}
  for _, e in ipairs(own) do
    local name, t = e[1], e[2]
    known[name] = true
    local v = sd[name]
    if v == nil then
      missing[#missing + 1] = name
    elseif not tensor.is_tensor(v) then
      mismatched[#mismatched + 1] = ('%s (not a tensor: %s)'):format(name, type(v))
    elseif v:numel() ~= t:numel() or shape_str(v) ~= shape_str(t) then
      mismatched[#mismatched + 1] = ('%s (checkpoint %s, model %s)'):format(name, shape_str(v), shape_str(t))
    end
  end
  for k in pairs(sd) do
    if not known[k] then unexpected[#unexpected + 1] = tostring(k) end
  end
  table.sort(unexpected)
  local problems = {}
  if #mismatched > 0 then problems[#problems + 1] = 'shape mismatch: ' .. listing(mismatched) end
  if o.strict and #missing > 0 then problems[#problems + 1] = 'missing keys: ' .. listing(missing) end
  if o.strict and #unexpected > 0 then problems[#problems + 1] = 'unexpected keys: ' .. listing(unexpected) end
  if #problems > 0 then
    raise(('load_state_dict%s: %s'):format(o.source and (' (' .. o.source .. ')') or '',
      table.concat(problems, '; ')))
  end
  no_grad(function()
    for _, e in ipairs(own) do
      local v = sd[e[1]]
      if v ~= nil then e[2]:copy_(v) end
    end
  end)
  return { missing = missing, unexpected = unexpected }
end

-- model:to(dtype | device | {dtype=, device=}): convert parameters and buffers in place
-- (floating-point ones only for a dtype, as PyTorch).  Returns self.  Optimizers built
-- before a conversion still point at the old tensors: build them after.
function Module:to(a)
  local dtype, device
  if type(a) == 'table' and not tensor.is_tensor(a) then
    local o = core.options(a, { ['?dtype'] = true, ['?device'] = true }, 'Module:to')
    dtype, device = o.dtype, o.device
  elseif type(a) == 'string' and core.dtype_codes[a] then
    dtype = a
  else
    device = a
  end
  if dtype and not tensor.empty(0, { dtype = dtype }):is_floating_point() then
    raise(('Module:to: dtype must be a floating-point type, got %s'):format(tostring(dtype)))
  end
  local function conv(t)
    local opts = { device = device }
    if dtype and t:is_floating_point() then opts.dtype = dtype end
    return t:to(opts)
  end
  no_grad(function()
    for _, kind in ipairs { 'parameters', 'buffers' } do
      for _, e in ipairs(collect(self, kind)) do
        local old, m, name = e[2], e[3], e[4]
        local new = conv(old)
        if not new:is_same(old) then
          if kind == 'parameters' then
            new = new:detach():requires_grad_(old:requires_grad())
            m._parameters[name] = new
          else
            m._buffers[name] = new
          end
          rawget(m, '_members')[name] = new
        end
      end
    end
  end)
  return self
end
function Module:float() return self:to('float32') end
function Module:bfloat16() return self:to('bfloat16') end
function Module:half() return self:to('float16') end

-- ---- printing ----------------------------------------------------------------------------
-- Subclasses describe their configuration here (e.g. 'in=384, out=1').
function Module:extra_repr() return '' end

local function human(n)
  if n >= 1e9 then return ('%.2fB'):format(n / 1e9) end
  if n >= 1e6 then return ('%.2fM'):format(n / 1e6) end
  if n >= 1e3 then return ('%.1fK'):format(n / 1e3) end
  return tostring(n)
end
M.human = human

local function repr(m, indent)
  local head = m.__name .. '(' .. m:extra_repr() .. ')'
  local kids = {}
  for name, child in m:named_children() do kids[#kids + 1] = { name, repr(child, indent .. '  ') } end
  local own = 0
  for _, name in ipairs(m._order.parameters) do
    local p = m._parameters[name]
    if p then own = own + p:numel() end
  end
  if #kids == 0 then
    return own > 0 and (head .. '  ' .. human(own)) or head
  end
  local lines = { head .. '  ' .. human(m:num_parameters()) }
  local i = 1
  while i <= #kids do
    -- collapse runs of identical children: (0-11): 12 x Block(...)
    local j = i
    while j < #kids and kids[j + 1][2] == kids[i][2] and kids[j + 1][1]:match('^%d+$') and kids[i][1]:match('^%d+$') do
      j = j + 1
    end
    if j > i then
      lines[#lines + 1] = ('%s(%s-%s): %d x %s'):format(indent .. '  ', kids[i][1], kids[j][1], j - i + 1, kids[i][2])
    else
      lines[#lines + 1] = ('%s(%s): %s'):format(indent .. '  ', kids[i][1], kids[i][2])
    end
    i = j + 1
  end
  return table.concat(lines, '\n')
end

-- A tree of modules with their configuration and parameter counts.
function Module.__tostring(self) return repr(self, '') end

return M
