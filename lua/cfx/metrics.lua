-- metrics.lua: cfx.metrics, ranking, calibration and operating-point metrics of detectors,
-- and bootstrap intervals of the per-generator protocol (core/src/metrics.c).
-- Scores and labels are tensors or Lua lists; labels 1 = generated (positive), 0 = real.
-- An undefined metric (one class only) is nan.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

-- (double*, uint8_t*, n, keep-alive) from tensors or lists
local function inputs(scores, labels, what)
  if not tensor.is_tensor(scores) then scores = tensor.tensor(scores, { dtype = 'float64' }) end
  if not tensor.is_tensor(labels) then labels = tensor.tensor(labels, { dtype = 'float64' }) end
  if labels:dtype() ~= 'uint8' and labels:dtype() ~= 'bool' then
    -- a 0.5 or a -1 would become 0 or 255 as uint8: refuse what is not 0 or 1 here
    local lf = labels:reshape(-1)
    if lf:numel() > 0 and lf:ne(0):logical_and(lf:ne(1)):sum():item() > 0 then
      raise(('%s: labels must be 0 (real) or 1 (generated)'):format(what))
    end
  end
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

-- ---- calibration ------------------------------------------------------------------------
-- probs: P(generated) in [0, 1] (an error otherwise); an empty input gives nan.

-- cfx.metrics.brier(probs, labels): mean squared error, scikit-learn's brier_score_loss.
function M.brier(probs, labels)
  local s, l, n, keep = inputs(probs, labels, 'brier')
  check(C.cfx_metrics_brier(s, l, n, out))
  local _ = keep
  return out[0]
end

-- cfx.metrics.nll(logits, labels): mean negative log-likelihood of the labels under
-- p = sigmoid(logit), computed stably from the logits (log_loss(y, sigmoid(x))).
function M.nll(logits, labels)
  local s, l, n, keep = inputs(logits, labels, 'nll')
  check(C.cfx_metrics_nll_logits(s, l, n, out))
  local _ = keep
  return out[0]
end

local strategies = { uniform = C.CFX_BINS_UNIFORM, quantile = C.CFX_BINS_QUANTILE }

-- cfx.metrics.calibration(probs, labels [, {bins=15, strategy='uniform'|'quantile'}]) ->
-- {ece=, strategy=, bins = {{lo=, hi=, count=, mean_prob=, frac_pos=}, ...}}: the
-- reliability diagram, one row per bin (mean_prob and frac_pos nil when it is empty),
-- binned as scikit-learn's calibration_curve (a probability on an edge goes to the lower
-- bin; 'quantile': edges at numpy's percentiles of the probabilities); ece = sum over
-- bins of count / n * |frac_pos - mean_prob|.
function M.calibration(probs, labels, opts)
  local o = core.options(opts, { bins = 15, strategy = 'uniform' }, 'calibration')
  local strat = strategies[o.strategy]
  if strat == nil then
    raise(("calibration: strategy must be 'uniform' or 'quantile', got %s"):format(tostring(o.strategy)))
  end
  if type(o.bins) ~= 'number' or o.bins < 1 or o.bins % 1 ~= 0 then
    raise(('calibration: bins must be a whole number >= 1, got %s'):format(tostring(o.bins)))
  end
  local s, l, n, keep = inputs(probs, labels, 'calibration')
  local nb = o.bins
  local mp, fp, cnt, edges = ffi.new('double[?]', nb), ffi.new('double[?]', nb), ffi.new('int64_t[?]', nb),
      ffi.new('double[?]', nb + 1)
  check(C.cfx_metrics_calibration(s, l, n, nb, strat, out, mp, fp, cnt, edges))
  local _ = keep
  local bins = {}
  for b = 0, nb - 1 do
    bins[b + 1] = { lo = edges[b], hi = edges[b + 1], count = tonumber(cnt[b]), mean_prob = nan_to_nil(mp[b]),
      frac_pos = nan_to_nil(fp[b]) }
  end
  return { ece = out[0], strategy = o.strategy, bins = bins }
end

-- cfx.metrics.ece(probs, labels [, {bins=15, strategy='uniform'}]): the expected
-- calibration error of cfx.metrics.calibration.
function M.ece(probs, labels, opts)
  return M.calibration(probs, labels, opts).ece
end

-- ---- operating points ------------------------------------------------------------------------
-- A threshold t means "score > t predicts generated" (as accuracy); ROC points are the
-- cuts between distinct scores (roc_curve with drop_intermediate=False); rates with one
-- class only are nan.

-- cfx.metrics.eer(scores, labels) -> eer, threshold: where FPR = 1 - TPR on the ROC
-- curve joined linearly between its points; threshold: that of the first point with
-- FPR >= FNR.
function M.eer(scores, labels)
  local s, l, n, keep = inputs(scores, labels, 'eer')
  local t = ffi.new('double[1]')
  check(C.cfx_metrics_eer(s, l, n, out, t))
  local _ = keep
  return out[0], t[0]
end

-- targets: a number or a list -> (double[k], k, whether a list)
local function targets(x, what)
  local list = type(x) == 'table'
  local t = list and x or { x }
  local a = ffi.new('double[?]', math.max(#t, 1))
  for i, v in ipairs(t) do
    if type(v) ~= 'number' then raise(('%s: targets must be numbers, got %s'):format(what, type(v))) end
    a[i - 1] = v
  end
  return a, #t, list
end

local function unpack_rates(list, k, ...)
  local arrays = { ... }
  if not list then
    local r = {}
    for i, a in ipairs(arrays) do r[i] = a[0] end
    return unpack(r, 1, #arrays)
  end
  local r = {}
  for i, a in ipairs(arrays) do
    r[i] = {}
    for q = 0, k - 1 do r[i][q + 1] = a[q] end
  end
  return unpack(r, 1, #arrays)
end

-- cfx.metrics.tpr_at_fpr(scores, labels, fpr) -> tpr, threshold, fpr reached; fpr a list
-- (e.g. {0.01, 0.05}) -> three lists.  The lowest threshold whose FPR (reals above it)
-- is <= the target, and the TPR there: the best TPR of an operating point with FPR <=
-- the target, no interpolation.
function M.tpr_at_fpr(scores, labels, fprs)
  local a, k, list = targets(fprs, 'tpr_at_fpr')
  local s, l, n, keep = inputs(scores, labels, 'tpr_at_fpr')
  local m = math.max(k, 1)
  local tpr, thr, fr = ffi.new('double[?]', m), ffi.new('double[?]', m), ffi.new('double[?]', m)
  check(C.cfx_metrics_tpr_at_fpr(s, l, n, a, k, tpr, thr, fr))
  local _ = keep
  return unpack_rates(list, k, tpr, thr, fr)
end

-- cfx.metrics.fpr_at_tpr(scores, labels, tpr) -> fpr, threshold (or two lists): the
-- smallest FPR of an operating point with TPR >= the target, and its threshold.
function M.fpr_at_tpr(scores, labels, tprs)
  local a, k, list = targets(tprs, 'fpr_at_tpr')
  local s, l, n, keep = inputs(scores, labels, 'fpr_at_tpr')
  local m = math.max(k, 1)
  local fpr, thr = ffi.new('double[?]', m), ffi.new('double[?]', m)
  check(C.cfx_metrics_fpr_at_tpr(s, l, n, a, k, fpr, thr))
  local _ = keep
  return unpack_rates(list, k, fpr, thr)
end

-- cfx.metrics.threshold_at_fpr(scores, labels, target) -> threshold, fpr, tpr: the
-- threshold reaching FPR <= target on the reals of these scores (e.g. validation
-- generators'), the lowest such; the fakes only give the TPR there (nan without).
function M.threshold_at_fpr(scores, labels, target)
  if type(target) ~= 'number' then raise('threshold_at_fpr: the target FPR must be a number') end
  local tpr, thr, fpr = M.tpr_at_fpr(scores, labels, target)
  return thr, fpr, tpr
end

-- cfx.metrics.balanced_accuracy(scores, labels [, threshold=0.5]): (TPR + TNR) / 2,
-- scikit-learn's balanced_accuracy_score(y, s > threshold); nan with one class only.
function M.balanced_accuracy(scores, labels, threshold)
  local s, l, n, keep = inputs(scores, labels, 'balanced_accuracy')
  check(C.cfx_metrics_balanced_accuracy(s, l, n, threshold or 0.5, out))
  local _ = keep
  return out[0]
end

-- cfx.metrics.threshold_best_balanced(scores, labels) -> threshold, balanced accuracy:
-- the distinct score u whose rule "score > u" has the best balanced accuracy on these
-- scores (the lowest on a tie); nan, nan with one class only.
function M.threshold_best_balanced(scores, labels)
  local s, l, n, keep = inputs(scores, labels, 'threshold_best_balanced')
  local t = ffi.new('double[1]')
  check(C.cfx_metrics_threshold_best_balanced(s, l, n, t, out))
  local _ = keep
  return t[0], out[0]
end

-- ---- bootstrap -------------------------------------------------------------------------------
-- cfx.metrics.bootstrap{scores=, labels=, groups=, resamples=1000, level=0.95, seed=0,
-- nested=true, threshold=0.5, replicates=false} -> {map=, map_lo=, map_hi=, map_se=,
-- acc=, acc_lo=, acc_hi=, acc_se=, n_generators=, resamples=, level=, seed=, nested=,
-- [map_replicates=, acc_replicates= (float64 tensors, with replicates=true)]}.
-- Percentile intervals of mAP and mean accuracy under the paper's protocol (groups as
-- for by_group: 1-based ids, a group's fakes against its own reals, or every real when
-- it has none): each resample draws the generators (groups with fakes) with
-- replacement, and, nested, each drawn generator's fakes and own reals with
-- replacement (the shared reals once per resample).  map, acc: the data's own means (as
-- summarize); se: the replicates' standard deviation.  Seeded, in C (cfx/metrics.h
-- gives the exact draws).  nan where undefined (no reals: map; no fakes: everything).
function M.bootstrap(opts)
  local o = core.options(opts, { scores = false, labels = false, groups = false, resamples = 1000, level = 0.95,
    seed = 0, nested = true, threshold = 0.5, replicates = false }, 'bootstrap')
  if not (o.scores and o.labels and o.groups) then raise('bootstrap: scores, labels and groups are required') end
  if type(o.resamples) ~= 'number' or o.resamples < 1 or o.resamples % 1 ~= 0 then
    raise(('bootstrap: resamples must be a whole number >= 1, got %s'):format(tostring(o.resamples)))
  end
  if type(o.seed) ~= 'number' or o.seed < 0 or o.seed % 1 ~= 0 then
    raise(('bootstrap: seed must be a whole number >= 0, got %s'):format(tostring(o.seed)))
  end
  local s, l, n, keep = inputs(o.scores, o.labels, 'bootstrap')
  local groups = o.groups
  if not tensor.is_tensor(groups) then groups = tensor.tensor(groups, { dtype = 'int64' }) end
  local g0 = (groups:reshape(-1):long() - 1):to('int32'):contiguous()
  if g0:numel() ~= n then raise(('bootstrap: %d scores but %d groups'):format(n, g0:numel())) end
  if n > 0 and g0:min():item() < 0 then raise('bootstrap: group ids must be >= 1') end
  local ng = n > 0 and g0:max():item() + 1 or 0
  local R = o.resamples
  local bo = ffi.new('cfx_bootstrap_opts', { resamples = R, level = o.level, seed = o.seed,
    nested = o.nested and 1 or 0, threshold = o.threshold })
  local res = ffi.new('cfx_bootstrap_result')
  local mrep, arep
  if o.replicates then
    mrep, arep = tensor.empty(R, { dtype = 'float64' }), tensor.empty(R, { dtype = 'float64' })
  end
  check(C.cfx_metrics_bootstrap(s, l, g0:data_ptr(), n, ng, bo, res, mrep and mrep:data_ptr() or nil,
    arep and arep:data_ptr() or nil))
  local _ = keep
  return { map = res.map, map_lo = res.map_lo, map_hi = res.map_hi, map_se = res.map_se, acc = res.acc,
    acc_lo = res.acc_lo, acc_hi = res.acc_hi, acc_se = res.acc_se, n_generators = tonumber(res.n_units),
    resamples = R, level = o.level, seed = o.seed, nested = o.nested and true or false,
    map_replicates = mrep, acc_replicates = arep }
end

return M
