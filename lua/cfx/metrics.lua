-- metrics.lua: cfx.metrics, ranking metrics of detectors (core/src/metrics.c).
-- Scores and labels are tensors or Lua lists; labels 1 = generated (positive), 0 = real.
-- An undefined metric (one class only) is nan.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

-- (double*, uint8_t*, n, keep-alive) from tensors or lists
local function inputs(scores, labels, what)
  if not tensor.is_tensor(scores) then scores = tensor.tensor(scores, { dtype = 'float64' }) end
  if not tensor.is_tensor(labels) then labels = tensor.tensor(labels, { dtype = 'uint8' }) end
  local s, l = scores:reshape(-1):to('float64'):contiguous(), labels:reshape(-1):to('uint8'):contiguous()
  if s:numel() ~= l:numel() then
    raise(('%s: %d scores but %d labels'):format(what, s:numel(), l:numel()))
  end
  return s:data_ptr(), l:data_ptr(), s:numel(), { s, l }
end

local out = ffi.new('double[1]')

-- Average precision, identical to scikit-learn's average_precision_score.
function M.average_precision(scores, labels)
  local s, l, n, keep = inputs(scores, labels, 'average_precision')
  check(C.cfx_metrics_average_precision(s, l, n, out))
  local _ = keep
  return out[0]
end

-- Area under the ROC curve (ties count half), as scikit-learn's roc_auc_score.
function M.roc_auc(scores, labels)
  local s, l, n, keep = inputs(scores, labels, 'roc_auc')
  check(C.cfx_metrics_roc_auc(s, l, n, out))
  local _ = keep
  return out[0]
end

-- cfx.metrics.accuracy(scores, labels [, threshold=0.5]) -> acc, acc_real, acc_fake.
-- A score above the threshold predicts generated; scores are probabilities (sigmoid
-- of the logit), so 0.5 is a logit of 0.
function M.accuracy(scores, labels, threshold)
  local s, l, n, keep = inputs(scores, labels, 'accuracy')
  local a = ffi.new('double[3]')
  check(C.cfx_metrics_accuracy(s, l, n, threshold or 0.5, a, a + 1, a + 2))
  local _ = keep
  return a[0], a[1], a[2]
end

local function nan_to_nil(x) if x ~= x then return nil end return x end

-- cfx.metrics.by_group(scores, labels, groups [, {threshold=0.5, names=, architectures=}])
-- -> rows, one per group that has fakes: {group=, generator=names[group],
-- architecture=architectures[group], n_real=, n_fake=, ap=, auroc=, acc=, acc_real=,
-- acc_fake=}.  groups are 1-based ids (e.g. the store's generator ids).  The paper's
-- protocol: a group's fakes against the reals of the same group if it has any, else
-- against every real in the input.  AP/AUC of a group with one class only are nil
-- (undefined), never -1.
function M.by_group(scores, labels, groups, opts)
  local o = core.options(opts, { threshold = 0.5, ['?names'] = true, ['?architectures'] = true }, 'by_group')
  local s, l, n, keep = inputs(scores, labels, 'by_group')
  if not tensor.is_tensor(groups) then groups = tensor.tensor(groups, { dtype = 'int64' }) end
  local g0 = (groups:reshape(-1) - 1):to('int32'):contiguous()
  if g0:numel() ~= n then raise(('by_group: %d scores but %d groups'):format(n, g0:numel())) end
  local ng = n > 0 and g0:max():item() + 1 or 0
  if n > 0 and g0:min():item() < 0 then raise('by_group: group ids must be >= 1') end
  local res = ffi.new('cfx_group_metrics[?]', math.max(ng, 1))
  check(C.cfx_metrics_grouped(s, l, g0:data_ptr(), n, ng, o.threshold, res))
  local _ = keep
  local rows = {}
  for i = 0, ng - 1 do
    local r = res[i]
    if r.n_fake > 0 then
      rows[#rows + 1] = { group = i + 1, generator = o.names and o.names[i + 1] or tostring(i + 1),
        architecture = o.architectures and o.architectures[i + 1] or nil,
        n_real = tonumber(r.n_real), n_fake = tonumber(r.n_fake), ap = nan_to_nil(r.ap), auroc = nan_to_nil(r.auroc),
        acc = nan_to_nil(r.acc), acc_real = nan_to_nil(r.acc_real), acc_fake = nan_to_nil(r.acc_fake) }
    end
  end
  return rows
end

-- cfx.metrics.mean_se(values) -> mean, standard error (sample sd / sqrt(n)), n.  nil
-- and NaN entries (undefined metrics) are left out; the SE of one value is nil.
function M.mean_se(values)
  local sum, n = 0, 0
  for _, v in pairs(values) do
    if v == v and type(v) == 'number' then sum, n = sum + v, n + 1 end
  end
  if n == 0 then return nil, nil, 0 end
  local mean = sum / n
  if n == 1 then return mean, nil, 1 end
  local ss = 0
  for _, v in pairs(values) do
    if v == v and type(v) == 'number' then ss = ss + (v - mean) ^ 2 end
  end
  return mean, math.sqrt(ss / (n - 1)) / math.sqrt(n), n
end

local summary_fields = { 'ap', 'acc', 'auroc', 'acc_real', 'acc_fake' }

-- cfx.metrics.summarize(rows) -> {mean_ap=, mean_acc=, mean_auroc=, mean_acc_real=,
-- mean_acc_fake=, n_groups=, n_undefined=}: unweighted means over the groups whose
-- metric is defined.
function M.summarize(rows)
  local r = { n_groups = #rows, n_undefined = 0 }
  for _, f in ipairs(summary_fields) do
    local vals = {}
    for _, row in ipairs(rows) do vals[#vals + 1] = row[f] end
    r['mean_' .. f] = M.mean_se(vals)
  end
  for _, row in ipairs(rows) do if row.ap == nil then r.n_undefined = r.n_undefined + 1 end end
  return r
end

-- cfx.metrics.by_architecture(rows) -> rows {architecture=, n_generators=, ap=, acc=, ...}:
-- the unweighted mean over each architecture's generators (Fig. 3 of the paper).
function M.by_architecture(rows)
  local groups, order = {}, {}
  for _, row in ipairs(rows) do
    local a = row.architecture or '?'
    if not groups[a] then groups[a], order[#order + 1] = {}, a end
    table.insert(groups[a], row)
  end
  table.sort(order)
  local out = {}
  for _, a in ipairs(order) do
    local s = M.summarize(groups[a])
    out[#out + 1] = { architecture = a, n_generators = #groups[a], ap = s.mean_ap, acc = s.mean_acc,
      auroc = s.mean_auroc, acc_real = s.mean_acc_real, acc_fake = s.mean_acc_fake }
  end
  return out
end

return M
