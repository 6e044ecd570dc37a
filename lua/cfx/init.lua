-- cfx: fake-image detection research framework.  `local cfx = require 'cfx'`
-- returns the whole library; see docs/lua-api.md and docs/architecture.md.
--
-- The library is in layers.  A module requires only modules of its own layer or below,
-- and nothing below this file requires 'cfx': a module needs the modules it names, not
-- the whole library.  tests/lua/layers_spec.lua reads this list (every module of lua/cfx
-- is in it once) and checks every require of every module against it:
--   layer 1 core:     cfx.cdefs cfx.core
--   layer 2 basics:   cfx.tensor cfx.functional cfx.image cfx.augment cfx.metrics cfx.safetensors cfx.json cfx.fs cfx.proc
--   layer 3 objects:  cfx.nn cfx.nn.* cfx.models cfx.models.* cfx.optim cfx.data cfx.results
--   layer 4 runs:     cfx.batch cfx.train cfx.eval cfx.checkpoint
--   layer 5 studies:  cfx.experiment cfx.study cfx.sweep cfx.synth cfx.importer cfx.audit cfx.pretrain
--   layer 6 entry:    cfx cfx.cli.* cfx.repl
-- (core: the FFI, errors, options, the host's clock and signals; basics: tensors, the
-- ops on them, images, files and processes; objects: modules, models, optimizers, stores
-- and loaders, results files; runs: one training or evaluation run; studies: grids of
-- runs and the data they need; entry: this file, the subcommands, the REPL.)
-- The library never exits the process and changes no global state (libtorch's threads,
-- signals) that its caller did not ask for: libtorch's thread count is set once, here at
-- load (tensor.default_threads), and the experiment runner may set it once per run.
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local ffi, C, check = core.ffi, core.C, core.check

local cfx = {}

cfx.C = C
cfx.ffi = ffi
cfx.version = core.version
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
cfx.batch = require 'cfx.batch'
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

-- ---- grad mode, autocast, random numbers, threads (tensor.lua) -------------------------
for _, name in ipairs { 'no_grad', 'enable_grad', 'is_grad_enabled', 'set_grad_enabled', 'autocast',
  'autocast_enter', 'autocast_exit', 'is_autocast_enabled', 'manual_seed', 'get_rng_state', 'set_rng_state',
  'threads' } do
  cfx[name] = tensor[name]
end

-- ---- runtime ---------------------------------------------------------------------------
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
  -- whether this libtorch build has CUDA at all (a GPU may still be missing)
  is_built = function() return C.cfx_cuda_is_built() ~= 0 end,
  device_count = function() return C.cfx_cuda_device_count() end,
}

-- The pending signal ('USR1', 'TERM') when running under the cfx program, else nil; it
-- stays pending until cfx.clear_signal(), which returns what it cleared.
cfx.signal = core.signal
cfx.clear_signal = core.clear_signal
-- Seconds of a monotonic wall clock, for timing (os.clock is CPU time).
cfx.clock = core.clock

-- Field names of a value the REPL cannot list itself (tensors).
function cfx.completion_fields(v)
  if tensor.is_tensor(v) then return tensor.fields() end
  return nil
end

-- Debian's libtorch starts with one thread: use every CPU we may run on unless the
-- user said otherwise (CFX_THREADS, or OMP_NUM_THREADS as libtorch users expect).
check(C.cfx_set_num_threads(tensor.default_threads(0)))

return cfx
