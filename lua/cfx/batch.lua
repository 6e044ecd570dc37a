-- batch.lua: cfx.batch, what cfx.train.fit and cfx.eval.run do with every loader batch,
-- in one place: images to the model's device (pinned and copied non-blocking when it is
-- CUDA), normalised, and the forward under the run's precision (autocast).  Also what a
-- device setting ('auto', 'cpu', 'cuda', 'cuda:N') means on this build and this node.
--
--   local step = cfx.batch.runner { device = 'cpu', precision = 'bf16', who = 'my_loop' }
--   for b in loader:batches() do local logits = step(b, function(x, y, b) return model(x) end) end
local core = require 'cfx.core'
local augment = require 'cfx.augment'
local tensor = require 'cfx.tensor'
local C, raise = core.C, core.raise

local M = {}

-- precision -> autocast dtype (false: none)
M.precisions = { fp32 = false, bf16 = 'bfloat16', fp16 = 'float16' }

-- The CUDA index of a device setting, -1 for 'cpu', nil for 'auto'; an error for
-- anything else (what config checking calls: it needs no GPU).
function M.parse_device(spec, who)
  if spec == 'auto' then return nil end
  if spec == 'cpu' then return -1 end
  if spec == 'cuda' then return 0 end
  local i = type(spec) == 'string' and spec:match('^cuda:(%d+)$')
  if i then return tonumber(i) end
  raise(("%s: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got %s"):format(who or 'device',
    type(spec) == 'string' and ("'" .. spec .. "'") or tostring(spec)))
end

-- cfx.batch.device(spec [, who]) -> 'cpu' or 'cuda:N': 'auto' is CUDA device 0 when
-- this libtorch build has CUDA and a GPU is visible, else the CPU.  Asking for CUDA
-- where there is none is one error naming the value and what is available.
function M.device(spec, who)
  local idx = M.parse_device(spec, who)
  local available = C.cfx_cuda_is_available() ~= 0
  if idx == nil then return available and 'cuda:0' or 'cpu' end
  if idx < 0 then return 'cpu' end
  who = who and (who .. ': ') or ''
  if not available then
    if C.cfx_cuda_is_built() == 0 then
      raise(("%sdevice='%s' but this libtorch build has no CUDA (cfx.cuda.is_available() is false): " ..
        "use device='cpu' or 'auto'"):format(who, spec))
    end
    raise(("%sdevice='%s' but no CUDA device is visible (cfx.cuda.is_available() is false, " ..
      "CUDA_VISIBLE_DEVICES=%s): use device='cpu' or 'auto', or run on a GPU node"):format(who, spec,
      os.getenv('CUDA_VISIBLE_DEVICES') or '(unset)'))
  end
  local n = C.cfx_cuda_device_count()
  if idx >= n then
    raise(("%sdevice='%s' but %d CUDA device%s visible (cuda:0 .. cuda:%d)"):format(who, spec, n,
      n == 1 and ' is' or 's are', n - 1))
  end
  return 'cuda:' .. idx
end

-- cfx.batch.precision(precision, device, who) -> the autocast dtype, or false for fp32.
-- bf16 autocasts on CPU and CUDA; fp16 on CUDA only (libtorch's CPU autocast has bf16 only).
function M.precision(precision, device, who)
  local dt = M.precisions[precision]
  if dt == nil then
    raise(("%s: precision must be 'fp32', 'bf16' or 'fp16', got %s"):format(who, tostring(precision)))
  end
  if precision == 'fp16' and device == 'cpu' then
    raise(("%s: fp16 autocast needs a CUDA device (libtorch's CPU autocast supports bf16 only): " ..
      "use precision='bf16'"):format(who))
  end
  return dt
end

-- cfx.batch.runner{device=, precision='fp32', mean=ImageNet's, std=ImageNet's, labels=true, who=}
-- -> step(b, fn) -> fn(x, y, b): x = b.images on device, as float, normalised; y =
-- b.labels as float {B, 1} on device (nil with labels=false); fn runs under autocast
-- for bf16/fp16.  On CUDA the images go through pinned memory and a non-blocking copy.
local runner_defaults = { device = 'cpu', precision = 'fp32', mean = augment.imagenet_mean,
  std = augment.imagenet_std, labels = true, who = 'cfx.batch.runner' }
function M.runner(opts)
  local o = core.options(opts, runner_defaults, 'cfx.batch.runner')
  local device = o.device
  M.parse_device(device, o.who)
  if device == 'auto' then raise(o.who .. ": runner needs a resolved device (cfx.batch.device('auto'))") end
  local autocast = M.precision(o.precision, device, o.who)
  local normalize = augment.normalizer(o.mean, o.std, device)
  local cuda = device ~= 'cpu'
  local dev_code, cast_code = core.device_code(device), autocast and core.dtype_code(autocast)
  local with_labels = o.labels
  return function(b, fn)
    local x = b.images
    if cuda then x = x:pin_memory():to { device = device, non_blocking = true } end
    x = normalize(x)
    local y
    if with_labels then
      y = b.labels:float():view(-1, 1)
      if cuda then y = y:to(device) end
    end
    if not cast_code then return fn(x, y, b) end
    return tensor.with_autocast(dev_code, cast_code, fn, x, y, b) -- cfx.autocast's region
  end
end

return M
