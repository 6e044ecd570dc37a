-- optim.lua: cfx.optim, optimizers (AdamW, SGD), learning-rate schedules (cosine with
-- linear warm-up, constant) and gradient clipping by global norm.  The update rules
-- are torch.optim's, operation for operation, so one step equals PyTorch's to the last
-- bit on the same inputs (tests/reference/test_train.py checks it).
--
--   local opt = cfx.optim.AdamW{params = model, lr = 2e-5, weight_decay = 1e-2}
--   local sched = cfx.optim.cosine{warmup = 0.2, total = 3000}
--   ... loss:backward(); cfx.optim.clip_grad_norm(model, 1.0)
--   opt:set_lr(2e-5 * sched(step)); opt:step(); opt:zero_grad()
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local nn_module = require 'cfx.nn.module'
local raise = core.raise

local M = {}
local options, is_tensor = core.options, tensor.is_tensor

local no_grad = nn_module.no_grad

-- Parameter groups from what the user gave: a module (named, trainable parameters;
-- with filter_bias_and_bn, 1-d tensors and the model's no_weight_decay() names get no
-- weight decay, as timm's optimizer factory), a list of tensors, or a list of groups
-- {params=..., weight_decay=, lr_scale=}.
local function param_groups(params, weight_decay, filter, fname)
  local groups = {}
  local function add_list(list, wd, scale, prefix)
    local g = { params = {}, names = {}, weight_decay = wd, lr_scale = scale or 1 }
    for i, p in ipairs(list) do
      if not is_tensor(p) then raise(('%s: params[%d] is not a tensor'):format(fname, i)) end
      g.params[i], g.names[i] = p, prefix .. i
    end
    groups[#groups + 1] = g
  end
  if nn_module.is_module(params) then
    local nd = params.no_weight_decay and params:no_weight_decay() or {}
    local decay = { params = {}, names = {}, weight_decay = weight_decay, lr_scale = 1 }
    local skip = { params = {}, names = {}, weight_decay = 0, lr_scale = 1 }
    for name, p in params:named_parameters() do
      if p:requires_grad() then
        local g = (filter and (p:dim() <= 1 or nd[name])) and skip or decay
        g.params[#g.params + 1], g.names[#g.names + 1] = p, name
      end
    end
    if #decay.params > 0 then groups[#groups + 1] = decay end
    if #skip.params > 0 then groups[#groups + 1] = skip end
  elseif type(params) == 'table' and is_tensor(params[1]) then
    add_list(params, weight_decay, 1, 'param')
  elseif type(params) == 'table' and type(params[1]) == 'table' then
    for gi, g in ipairs(params) do
      local o = options(g, { params = true, ['?weight_decay'] = true, lr_scale = 1 }, fname .. ' group')
      if type(o.params) ~= 'table' then raise(('%s: group %d needs params = {tensors}'):format(fname, gi)) end
      add_list(o.params, o.weight_decay or weight_decay, o.lr_scale, ('group%d.'):format(gi))
    end
  else
    raise(('%s: params must be a module, a list of tensors or a list of groups, got %s'):format(fname, type(params)))
  end
  local n = 0
  for _, g in ipairs(groups) do n = n + #g.params end
  if n == 0 then raise(fname .. ': no trainable parameters (are they all frozen?)') end
  return groups
end
M.param_groups = param_groups

local Optimizer = {}
Optimizer.__index = Optimizer

local function new_optimizer(kind, groups, lr, hyper)
  return setmetatable({ kind = kind, groups = groups, lr = lr, base_lr = lr, hyper = hyper, state = {}, steps = 0 },
    Optimizer)
end

-- The learning rate of every group (times its lr_scale).
function Optimizer:set_lr(lr)
  if type(lr) ~= 'number' or lr < 0 or lr ~= lr then raise('set_lr: expected a non-negative number, got ' .. tostring(lr)) end
  self.lr = lr
end

-- Every parameter's gradient cleared (set to none, as PyTorch 2's default).
function Optimizer:zero_grad()
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do p:zero_grad(true) end
  end
end

-- All parameter tensors the optimizer updates.
function Optimizer:parameters()
  local r = {}
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do r[#r + 1] = p end
  end
  return r
end

-- One update of every parameter that has a gradient.
function Optimizer:step()
  no_grad(function()
    for _, g in ipairs(self.groups) do
      local lr = self.lr * g.lr_scale
      for i, p in ipairs(g.params) do
        local grad = p:grad()
        if grad then
          local name = g.names[i]
          local st = self.state[name]
          if not st then
            st = self:init_state(p)
            self.state[name] = st
          end
          self:update(p, grad, st, lr, g.weight_decay)
        end
      end
    end
  end)
  self.steps = self.steps + 1
end

-- state_dict() -> {name = tensor}, {steps=, kind=}: every state tensor under
-- '<parameter name>.<slot>' (e.g. 'blocks.0.attn.qkv.weight.exp_avg'), ready for
-- cfx.safetensors.save; per-parameter step counts are float64 scalars ('.step').
function Optimizer:state_dict()
  local t = {}
  for name, st in pairs(self.state) do
    for slot, v in pairs(st) do
      t[name .. '.' .. slot] = is_tensor(v) and v or tensor.tensor(v, { dtype = 'float64' })
    end
  end
  return t, { kind = self.kind, steps = self.steps, lr = self.lr }
end

-- load_state_dict(tensors, meta): the inverse of state_dict; checks that every state
-- belongs to a parameter this optimizer updates and has its shape.
function Optimizer:load_state_dict(t, meta)
  if type(t) ~= 'table' then raise('optimizer load_state_dict: expected {name = tensor}') end
  if meta and meta.kind and meta.kind ~= self.kind then
    raise(('optimizer load_state_dict: state is for %s, this optimizer is %s'):format(meta.kind, self.kind))
  end
  local by_name = {}
  for _, g in ipairs(self.groups) do
    for i, p in ipairs(g.params) do by_name[g.names[i]] = p end
  end
  local state = {}
  for key, v in pairs(t) do
    local name, slot = key:match('^(.*)%.([%w_]+)$')
    local p = name and by_name[name]
    if not p then raise(('optimizer load_state_dict: state %s belongs to no parameter of this optimizer'):format(key)) end
    state[name] = state[name] or {}
    if slot == 'step' then
      state[name].step = v:item()
    else
      if table.concat(v:shape(), ',') ~= table.concat(p:shape(), ',') then
        raise(('optimizer load_state_dict: %s has shape {%s}, the parameter {%s}'):format(key,
          table.concat(v:shape(), ', '), table.concat(p:shape(), ', ')))
      end
      state[name][slot] = v:to(p:dtype()):clone()
    end
  end
  self.state = state
  if meta then
    self.steps = tonumber(meta.steps) or self.steps
    self.lr = tonumber(meta.lr) or self.lr
  end
end

-- ---- AdamW --------------------------------------------------------------------------------
-- cfx.optim.AdamW{params=, lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=1e-2,
-- filter_bias_and_bn=true}.  Decoupled weight decay (Loshchilov & Hutter), as
-- torch.optim.AdamW; filter_bias_and_bn applies when params is a module.
function M.AdamW(opts)
  local o = options(opts, { params = true, lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2,
    filter_bias_and_bn = true }, 'cfx.optim.AdamW')
  if o.params == true then raise('cfx.optim.AdamW: give params = model (or a list of tensors)') end
  local opt = new_optimizer('AdamW', param_groups(o.params, o.weight_decay, o.filter_bias_and_bn, 'cfx.optim.AdamW'),
    o.lr, { beta1 = o.betas[1], beta2 = o.betas[2], eps = o.eps })
  function opt.init_state(_, p) return { step = 0, exp_avg = tensor.zeros_like(p), exp_avg_sq = tensor.zeros_like(p) } end
  function opt.update(self, p, grad, st, lr, wd)
    local h = self.hyper
    local b1, b2 = h.beta1, h.beta2
    st.step = st.step + 1
    if wd ~= 0 then p:mul_(1 - lr * wd) end
    st.exp_avg:mul_(b1):add_(grad, 1 - b1)
    st.exp_avg_sq:mul_(b2):addcmul_(grad, grad, 1 - b2)
    local bc1 = 1 - b1 ^ st.step
    local bc2 = 1 - b2 ^ st.step
    local denom = (st.exp_avg_sq:sqrt() / math.sqrt(bc2)):add_(h.eps)
    p:addcdiv_(st.exp_avg, denom, -lr / bc1)
  end
  return opt
end

-- ---- SGD --------------------------------------------------------------------------------
-- cfx.optim.SGD{params=, lr=, momentum=0, dampening=0, weight_decay=0, nesterov=false}
function M.SGD(opts)
  local o = options(opts, { params = true, lr = true, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
    filter_bias_and_bn = false }, 'cfx.optim.SGD')
  if type(o.lr) ~= 'number' then raise('cfx.optim.SGD: give lr = a number') end
  if o.nesterov and (o.momentum <= 0 or o.dampening ~= 0) then
    raise('cfx.optim.SGD: nesterov needs momentum > 0 and dampening = 0')
  end
  local opt = new_optimizer('SGD', param_groups(o.params, o.weight_decay, o.filter_bias_and_bn, 'cfx.optim.SGD'), o.lr,
    { momentum = o.momentum, dampening = o.dampening, nesterov = o.nesterov })
  function opt.init_state() return {} end
  function opt.update(self, p, grad, st, lr, wd)
    local h = self.hyper
    local d = grad
    if wd ~= 0 then d = d:add(p, wd) end
    if h.momentum ~= 0 then
      if not st.momentum_buffer then
        st.momentum_buffer = d:clone():detach()
      else
        st.momentum_buffer:mul_(h.momentum):add_(d, 1 - h.dampening)
      end
      d = h.nesterov and d:add(st.momentum_buffer, h.momentum) or st.momentum_buffer
    end
    p:add_(d, -lr)
  end
  return opt
end

-- ---- gradient clipping ----------------------------------------------------------------------
-- cfx.optim.clip_grad_norm(params, max_norm) -> total norm (a number), as
-- torch.nn.utils.clip_grad_norm_: the 2-norm of all gradients together; when above
-- max_norm every gradient is scaled by max_norm / (norm + 1e-6).  params: a module, an
-- optimizer or a list of tensors.
function M.clip_grad_norm(params, max_norm)
  if type(max_norm) ~= 'number' or max_norm <= 0 then
    raise('clip_grad_norm: max_norm must be a positive number, got ' .. tostring(max_norm))
  end
  local list
  if nn_module.is_module(params) then list = params:parameters()
  elseif getmetatable(params) == Optimizer then list = params:parameters()
  else list = params end
  local grads = {}
  for _, p in ipairs(list) do
    local g = p:grad()
    if g then grads[#grads + 1] = g end
  end
  if #grads == 0 then return 0 end
  local total
  no_grad(function()
    local norms = {}
    for i, g in ipairs(grads) do norms[i] = g:norm(2) end
    total = tensor.stack(norms):norm(2)
    local coef = (max_norm / (total + 1e-6)):clamp(nil, 1.0)
    for _, g in ipairs(grads) do g:mul_(coef) end
  end)
  return total:item()
end

-- ---- schedules ------------------------------------------------------------------------------
-- A schedule maps the optimizer step s = 1, 2, ..., total to a factor of the base
-- learning rate:  lr(s) = base_lr * schedule(s).
local Schedule = {}
Schedule.__index = Schedule
Schedule.__call = function(self, s) return self:factor(s) end

local function warmup_steps(w, total, fname)
  if type(w) ~= 'number' or w < 0 then raise(('%s: warmup must be a fraction in [0, 1) or a step count'):format(fname)) end
  if w > 0 and w < 1 then return math.floor(w * total + 0.5) end
  if w % 1 ~= 0 then raise(('%s: warmup %s is neither a fraction below 1 nor a whole number of steps'):format(fname, w)) end
  return w
end

-- cfx.optim.cosine{total=, warmup=0, min_factor=0}: linear warm-up from base/W to base
-- over the first W steps (warmup: a fraction of total below 1, or a step count), then
-- half a cosine from base down to base * min_factor at step total:
--   s <= W:  s / W
--   s >  W:  min_factor + (1 - min_factor) * (1 + cos(pi * (s - W) / (total - W))) / 2
function M.cosine(opts)
  local o = options(opts, { total = true, warmup = 0, min_factor = 0 }, 'cfx.optim.cosine')
  if type(o.total) ~= 'number' or o.total < 1 or o.total % 1 ~= 0 then
    raise('cfx.optim.cosine: total must be a positive whole number of steps, got ' .. tostring(o.total))
  end
  local w = warmup_steps(o.warmup, o.total, 'cfx.optim.cosine')
  if w > o.total then raise(('cfx.optim.cosine: warmup (%d steps) is longer than total (%d)'):format(w, o.total)) end
  local s = setmetatable({ kind = 'cosine', total = o.total, warmup = w, min_factor = o.min_factor }, Schedule)
  function s.factor(self, step)
    if step <= self.warmup then return step / self.warmup end
    local progress = math.min(1, (step - self.warmup) / math.max(1, self.total - self.warmup))
    return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
  end
  return s
end

-- cfx.optim.constant{warmup=0, total=}: linear warm-up, then the base rate.
function M.constant(opts)
  local o = options(opts, { warmup = 0, ['?total'] = true }, 'cfx.optim.constant')
  local w = o.warmup
  if w > 0 and w < 1 then
    if not o.total then raise('cfx.optim.constant: a fractional warmup needs total=') end
    w = warmup_steps(w, o.total, 'cfx.optim.constant')
  end
  local s = setmetatable({ kind = 'constant', warmup = w, total = o.total }, Schedule)
  function s.factor(self, step) return step <= self.warmup and step / self.warmup or 1 end
  return s
end

M.Optimizer = Optimizer
return M
