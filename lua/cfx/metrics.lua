-- metrics.lua: cfx.metrics, ranking metrics of detectors (core/src/metrics.c).
-- Scores and labels are tensors or Lua lists; labels 1 = generated (positive), 0 = real.
-- An undefined metric (one class only) is nan.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, raise = core.ffi, core.C, core.raise

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
  if C.cfx_metrics_average_precision(s, l, n, out) ~= 0 then raise(ffi.string(C.cfx_last_error())) end
  local _ = keep
  return out[0]
end

-- Area under the ROC curve (ties count half), as scikit-learn's roc_auc_score.
function M.roc_auc(scores, labels)
  local s, l, n, keep = inputs(scores, labels, 'roc_auc')
  if C.cfx_metrics_roc_auc(s, l, n, out) ~= 0 then raise(ffi.string(C.cfx_last_error())) end
  local _ = keep
  return out[0]
end

return M
