-- cfx: fake-image detection research framework.  `local cfx = require 'cfx'`
-- returns the whole library; see docs/lua-api.md.
local core = require 'cfx.core'
local raise = core.raise
local tensor = require 'cfx.tensor'
local ffi, C, check = core.ffi, core.C, core.check

local cfx = {}

cfx.C = C
cfx.ffi = ffi
cfx.version = ffi.string(C.cfx_version())
cfx.lib_path = core.lib_path
cfx.Tensor = tensor.Tensor
cfx.F = require 'cfx.functional'
cfx.image = require 'cfx.image'
cfx.augment = require 'cfx.augment'
cfx.data = require 'cfx.data'
cfx.synth = require 'cfx.synth'
cfx.metrics = require 'cfx.metrics'
cfx.importer = require 'cfx.importer'
cfx.safetensors = require 'cfx.safetensors'
cfx.json = require 'cfx.json'
cfx.nn = require 'cfx.nn'
cfx.models = require 'cfx.models'
cfx.optim = require 'cfx.optim'
cfx.checkpoint = require 'cfx.checkpoint'
cfx.train = require 'cfx.train'
cfx.eval = require 'cfx.eval'
cfx.experiment = require 'cfx.experiment'
cfx.study = require 'cfx.study'
cfx.fs = require 'cfx.fs'
cfx.pretrain = require 'cfx.pretrain'
cfx.results = require 'cfx.results'
cfx.functional = cfx.F

for _, name in ipairs { 'tensor', 'empty', 'zeros', 'ones', 'full', 'rand', 'randn', 'randint',
  'randperm', 'arange', 'from_buffer', 'from_blob', 'zeros_like', 'ones_like', 'full_like',
  'rand_like', 'randn_like', 'cat', 'stack', 'where', 'is_tensor' } do
  cfx[name] = tensor[name]
end

-- Functions of one tensor, also as cfx.name(t, ...), like torch.name.
for _, name in ipairs { 'exp', 'log', 'sqrt', 'abs', 'tanh', 'sigmoid', 'matmul', 'sum', 'mean',
  'max', 'min', 'argmax', 'softmax', 'log_softmax', 'relu', 'clamp', 'sort', 'topk', 'equal',
  'allclose', 'maximum', 'minimum', 'flatten', 'reshape', 'transpose', 'permute', 'squeeze',
  'unsqueeze', 'bmm', 'mm', 'erf', 'pow', 'neg' } do
  cfx[name] = function(t, ...) return t[name](t, ...) end
end

-- ---- grad mode -----------------------------------------------------------------------
-- LuaJIT has no table.pack; keep a local one.
local function pack(...) return { n = select('#', ...), ... } end

local with_grad_mode = core.with_grad_mode

-- cfx.no_grad(fn, ...): fn(...) without recording operations for autograd.
function cfx.no_grad(fn, ...) return with_grad_mode(0, fn, ...) end
-- cfx.enable_grad(fn, ...): fn(...) with autograd on (inside a no_grad region).
function cfx.enable_grad(fn, ...) return with_grad_mode(1, fn, ...) end
function cfx.is_grad_enabled() return C.cfx_grad_is_enabled() ~= 0 end
-- Set grad mode for this thread; returns the previous mode.
function cfx.set_grad_enabled(flag) return C.cfx_grad_set_enabled(flag and 1 or 0) ~= 0 end

-- ---- autocast ---------------------------------------------------------------------------
-- cfx.autocast({device='cpu', dtype='bfloat16'}, fn, ...): fn(...) in mixed precision.
function cfx.autocast(opts, fn, ...)
  local o = tensor.options(opts, { device = 'cpu', ['?dtype'] = true, enabled = true }, 'autocast')
  if not o.enabled then return fn(...) end
  local dev = core.device_code(o.device)
  local dt = core.dtype_code(o.dtype or (dev < 0 and 'bfloat16' or 'float16'))
  check(C.cfx_autocast_enter(dev, dt))
  local r = pack(pcall(fn, ...))
  check(C.cfx_autocast_exit(dev))
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end
function cfx.autocast_enter(device, dtype)
  local dev = core.device_code(device)
  check(C.cfx_autocast_enter(dev, core.dtype_code(dtype or (dev < 0 and 'bfloat16' or 'float16'))))
end
function cfx.autocast_exit(device) check(C.cfx_autocast_exit(core.device_code(device))) end
function cfx.is_autocast_enabled(device) return C.cfx_autocast_is_enabled(core.device_code(device)) ~= 0 end

-- ---- random numbers ---------------------------------------------------------------------
function cfx.manual_seed(seed)
  if type(seed) ~= 'number' or seed < 0 or seed % 1 ~= 0 then
    raise(('manual_seed: expected a non-negative integer, got %s'):format(tostring(seed)))
  end
  check(C.cfx_manual_seed(seed))
end
-- The CPU generator's state as a uint8 tensor, and back (for checkpoints).
function cfx.get_rng_state()
  local out = ffi.new('cfx_tensor*[1]')
  check(C.cfx_get_rng_state(out))
  return tensor.wrap(out[0])
end
function cfx.set_rng_state(state)
  if not tensor.is_tensor(state) then raise('set_rng_state: expected a uint8 tensor') end
  check(C.cfx_set_rng_state(state.h))
end

-- ---- runtime ---------------------------------------------------------------------------
-- cfx.threads(n): set libtorch's intra-op threads; returns the number in use.
function cfx.threads(n)
  if n ~= nil then
    if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
      raise(('threads: expected a positive integer, got %s'):format(tostring(n)))
    end
    check(C.cfx_set_num_threads(n))
  end
  return C.cfx_get_num_threads()
end
-- CPUs this process may use (its affinity mask, as Slurm sets it).
function cfx.cpu_count() return C.cfx_cpu_count() end
-- 'avx2', 'sse2' or 'c': the SIMD level of the image loops (CFX_CPU_CAPABILITY=default
-- turns AVX2 off; the pixels are the same at every level).
function cfx.cpu_capability() return ffi.string(C.cfx_cpu_capability()) end

-- cfx.memory(): {live=, peak=, soft_limit=, collections=, lua=} in bytes.
cfx.memory = core.memory
cfx.set_memory_floor = core.set_memory_floor
function cfx.reset_peak_memory() C.cfx_memory_reset_peak() end

cfx.cuda = {
  is_available = function() return C.cfx_cuda_is_available() ~= 0 end,
  device_count = function() return C.cfx_cuda_device_count() end,
}

-- The pending signal ('USR1', 'TERM') when running under the cfx program, else nil.
function cfx.signal()
  local host = package.loaded['cfx.host']
  if type(host) == 'table' and host.signal then return host.signal() end
  return nil
end
function cfx.clear_signal()
  local host = package.loaded['cfx.host']
  if type(host) == 'table' and host.clear_signal then host.clear_signal() end
end

-- Field names of a value the REPL cannot list itself (tensors).
function cfx.completion_fields(v)
  if tensor.is_tensor(v) then return tensor.fields() end
  return nil
end

-- Debian's libtorch starts with one thread: use every CPU we may run on unless the
-- user said otherwise (CFX_THREADS, or OMP_NUM_THREADS as libtorch users expect).
do
  local n = tonumber(os.getenv('CFX_THREADS') or '') or tonumber(os.getenv('OMP_NUM_THREADS') or '')
  check(C.cfx_set_num_threads(n and n >= 1 and math.floor(n) or C.cfx_cpu_count()))
end

return cfx
