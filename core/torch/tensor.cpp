// tensor.cpp: tensor lifetime, creation, queries, conversion, autograd, random
// numbers, autocast and the runtime (threads, CUDA, memory accounting).
// Ops live in ops.cpp.  See cfx/tensor.h for the contract of each function.
#include "shim.h"

#include <ATen/autocast_mode.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Logging.h>
#include <torch/cuda.h>

#include <atomic>
#include <cstring>

namespace cfx {

const char *const dtype_names[CFX_DTYPE_COUNT] = {"uint8",   "int8",    "int16", "int32",
                                                  "int64",   "float16", "float32", "float64",
                                                  "bool",    "bfloat16"};

static const at::ScalarType scalar_types[CFX_DTYPE_COUNT] = {
    at::kByte, at::kChar, at::kShort, at::kInt, at::kLong,
    at::kHalf, at::kFloat, at::kDouble, at::kBool, at::kBFloat16};

at::ScalarType to_scalar_type(int dtype) {
  if (dtype < 0 || dtype >= CFX_DTYPE_COUNT)
    throw std::invalid_argument("unknown dtype code " + std::to_string(dtype) + " (expected 0.." +
                                std::to_string(CFX_DTYPE_COUNT - 1) + ")");
  return scalar_types[dtype];
}

int from_scalar_type(at::ScalarType st) {
  for (int i = 0; i < CFX_DTYPE_COUNT; i++)
    if (scalar_types[i] == st) return i;
  return -1;
}

at::Device to_device(int device) {
  if (device == CFX_CPU) return at::Device(at::kCPU);
  if (device < 0) throw std::invalid_argument("invalid device code " + std::to_string(device));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device));
}

int from_device(const at::Device &d) {
  if (d.is_cpu()) return CFX_CPU;
  if (d.is_cuda()) return d.has_index() ? d.index() : 0;
  return -2;
}

std::string describe(const at::Tensor &t) {
  if (!t.defined()) return "undefined";
  int dt = from_scalar_type(t.scalar_type());
  std::string s = dt >= 0 ? dtype_names[dt] : std::string(c10::toString(t.scalar_type()));
  s += "[";
  for (int64_t i = 0; i < t.dim(); i++) {
    if (i) s += ", ";
    s += std::to_string(t.size(i));
  }
  s += "]";
  if (!t.device().is_cpu()) s += " " + t.device().str();
  return s;
}

int fail(const char *op, std::initializer_list<const cfx_tensor *> inputs, int code, const char *what) {
  std::string msg = op;
  size_t n = 0;
  for (const cfx_tensor *h : inputs) {
    msg += n++ ? ", " : ": ";
    msg += h ? describe(h->t) : "NULL";
  }
  msg += ": ";
  // libtorch messages can run long; keep the first paragraph, which says why.
  std::string w = what ? what : "";
  size_t cut = w.find("\n\n");
  if (cut != std::string::npos) w.resize(cut);
  while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) w.pop_back();
  msg += w;
  // A libtorch complaint about sizes is a shape error, whatever exception type carried it.
  if (code == CFX_ETORCH &&
      (w.find("size") != std::string::npos || w.find("shape") != std::string::npos ||
       w.find("dimension") != std::string::npos))
    code = CFX_ESHAPE;
  return cfx__set_error(code, msg.c_str());
}

// ---- memory accounting ------------------------------------------------------------
// A CPU allocator that counts live bytes, so Lua's collector can be driven by real
// memory use (a Lua object sees a tensor as a few bytes).  Each block carries a
// 64-byte header holding its size in front of the data, which keeps libtorch's
// 64-byte alignment.  The DataPtr's context is the data pointer itself and
// raw_deleter() is set: oneDNN and other raw users of the allocator require both.
static std::atomic<int64_t> live_bytes{0}, peak_bytes{0};
constexpr size_t kHeader = 64;

static void counted_free(void *data) {
  if (!data) return;
  char *base = static_cast<char *>(data) - kHeader;
  size_t n;
  std::memcpy(&n, base, sizeof n);
  live_bytes.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
  c10::free_cpu(base);
}

static void count_allocation(int64_t n) {
  int64_t now = live_bytes.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t peak = peak_bytes.load(std::memory_order_relaxed);
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

struct CountingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) const override {
    if (n == 0) return {nullptr, nullptr, &counted_free, at::Device(at::kCPU)};
    char *base = static_cast<char *>(c10::alloc_cpu(n + kHeader));
    std::memcpy(base, &n, sizeof n);
    count_allocation(static_cast<int64_t>(n));
    void *data = base + kHeader;
    return {data, data, &counted_free, at::Device(at::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &counted_free; }
};

static CountingAllocator counting_allocator;
static const bool allocator_installed = [] {
  c10::SetCPUAllocator(&counting_allocator, /*priority=*/100);
  // Every c10::Error captures a C++ backtrace when it is constructed, with glibc's
  // backtrace(), which walks the stack with libgcc's unwinder.  Called from LuaJIT,
  // the stack holds JIT-compiled frames without unwind information, and the unwinder
  // can abort the process there (seen as a SIGABRT inside c10::get_backtrace on shape
  // errors raised from hot Lua loops).  cfx reports libtorch errors without that
  // backtrace anyway, so don't take it.
  c10::SetStackTraceFetcher([] { return std::string("(C++ stack trace not captured under cfx)"); });
  return true;
}();

}  // namespace cfx

using namespace cfx;

extern "C" {

// ---- lifetime, creation -------------------------------------------------------------
void cfx_tensor_free(cfx_tensor *t) { delete t; }

int cfx_dtype_size(int dtype) {
  if (dtype < 0 || dtype >= CFX_DTYPE_COUNT) return 0;
  return static_cast<int>(c10::elementSize(scalar_types[dtype]));
}

static at::TensorOptions options(int dtype, int device) {
  return at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(device));
}

int cfx_tensor_empty(const int64_t *d, int n, int dtype, int device, cfx_tensor **out) {
  return make("empty", out, {}, [&] { return at::empty(dims(d, n), options(dtype, device)); });
}
int cfx_tensor_zeros(const int64_t *d, int n, int dtype, int device, cfx_tensor **out) {
  return make("zeros", out, {}, [&] { return at::zeros(dims(d, n), options(dtype, device)); });
}
int cfx_tensor_ones(const int64_t *d, int n, int dtype, int device, cfx_tensor **out) {
  return make("ones", out, {}, [&] { return at::ones(dims(d, n), options(dtype, device)); });
}
int cfx_tensor_full(const int64_t *d, int n, double value, int dtype, int device, cfx_tensor **out) {
  return make("full", out, {}, [&] { return at::full(dims(d, n), scalar(value), options(dtype, device)); });
}
int cfx_tensor_rand(const int64_t *d, int n, int dtype, int device, cfx_tensor **out) {
  return make("rand", out, {}, [&] { return at::rand(dims(d, n), options(dtype, device)); });
}
int cfx_tensor_randn(const int64_t *d, int n, int dtype, int device, cfx_tensor **out) {
  return make("randn", out, {}, [&] { return at::randn(dims(d, n), options(dtype, device)); });
}
int cfx_tensor_randint(int64_t low, int64_t high, const int64_t *d, int n, int dtype, int device,
                       cfx_tensor **out) {
  return make("randint", out, {}, [&] {
    if (high <= low) throw std::invalid_argument("randint: high must be > low");
    return at::randint(low, high, dims(d, n), options(dtype, device));
  });
}
int cfx_tensor_randperm(int64_t n, int dtype, int device, cfx_tensor **out) {
  return make("randperm", out, {}, [&] { return at::randperm(n, options(dtype, device)); });
}
int cfx_tensor_arange(double start, double end, double step, int dtype, int device, cfx_tensor **out) {
  return make("arange", out, {}, [&] {
    if (step == 0) throw std::invalid_argument("arange: step must be nonzero");
    return at::arange(scalar(start), scalar(end), scalar(step), options(dtype, device));
  });
}

int cfx_tensor_from_data(const void *data, const int64_t *d, int n, int dtype, cfx_tensor **out) {
  return make("from_data", out, {}, [&] {
    at::Tensor t = at::empty(dims(d, n), options(dtype, CFX_CPU));
    if (t.numel() && !data) throw std::invalid_argument("data is NULL");
    if (t.numel()) std::memcpy(t.data_ptr(), data, t.nbytes());
    return t;
  });
}

int cfx_tensor_from_blob(void *data, const int64_t *d, const int64_t *strides, int n, int dtype,
                         cfx_release_fn release, void *ctx, cfx_tensor **out) {
  return make("from_blob", out, {}, [&] {
    if (!data) throw std::invalid_argument("data is NULL");
    auto deleter = [release, ctx](void *) {
      if (release) release(ctx);
    };
    at::TensorOptions o = options(dtype, CFX_CPU);
    if (strides) return at::from_blob(data, dims(d, n), dims(strides, n), deleter, o);
    return at::from_blob(data, dims(d, n), deleter, o);
  });
}

int cfx_tensor_from_malloc(void *data, const int64_t *d, int n, int dtype, cfx_tensor **out) {
  int rc = make("from_malloc", out, {}, [&] {
    if (!data) throw std::invalid_argument("data is NULL");
    at::TensorOptions o = options(dtype, CFX_CPU);
    int64_t numel = 1;
    for (int64_t v : dims(d, n)) numel *= v;
    int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(o.dtype().toScalarType()));
    at::Tensor t = at::from_blob(data, dims(d, n), [bytes](void *p) {
      free(p);
      live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    }, o);
    count_allocation(bytes);
    return t;
  });
  if (rc) free(data);
  return rc;
}

int cfx_tensor_copy_to(const cfx_tensor *t, void *dst, int64_t nbytes) {
  return guard("copy_to", {t}, [&] {
    const at::Tensor &x = T(t);
    int64_t need = static_cast<int64_t>(x.numel() * x.element_size());
    if (nbytes != need)
      throw std::invalid_argument("destination holds " + std::to_string(nbytes) + " bytes, tensor needs " +
                                  std::to_string(need));
    if (!need) return;
    if (!dst) throw std::invalid_argument("dst is NULL");
    at::Tensor c = x.detach().to(at::kCPU).contiguous();
    std::memcpy(dst, c.data_ptr(), static_cast<size_t>(need));
  });
}

int cfx_tensor_data_ptr(const cfx_tensor *t, void **out) {
  return guard("data_ptr", {t}, [&] {
    if (!out) throw std::invalid_argument("out is NULL");
    if (!T(t).device().is_cpu()) throw std::invalid_argument("data_ptr needs a CPU tensor");
    *out = T(t).data_ptr();
  });
}

int cfx_tensor_alias(const cfx_tensor *t, cfx_tensor **out) {
  return make("alias", out, {t}, [&] { return T(t); });
}

// ---- queries --------------------------------------------------------------------------
int cfx_tensor_ndim(const cfx_tensor *t) { return t ? static_cast<int>(t->t.dim()) : 0; }
int cfx_tensor_shape(const cfx_tensor *t, int64_t *d, int cap) {
  if (!t) return 0;
  int n = static_cast<int>(t->t.dim());
  for (int i = 0; i < n && i < cap; i++) d[i] = t->t.size(i);
  return n;
}
int cfx_tensor_strides(const cfx_tensor *t, int64_t *s, int cap) {
  if (!t) return 0;
  int n = static_cast<int>(t->t.dim());
  for (int i = 0; i < n && i < cap; i++) s[i] = t->t.stride(i);
  return n;
}
int64_t cfx_tensor_numel(const cfx_tensor *t) { return t ? t->t.numel() : 0; }
int cfx_tensor_dtype(const cfx_tensor *t) { return t ? from_scalar_type(t->t.scalar_type()) : -1; }
int cfx_tensor_device(const cfx_tensor *t) { return t ? from_device(t->t.device()) : CFX_CPU; }
int cfx_tensor_is_contiguous(const cfx_tensor *t) { return t && t->t.is_contiguous(); }
int cfx_tensor_requires_grad(const cfx_tensor *t) { return t && t->t.requires_grad(); }
int cfx_tensor_is_leaf(const cfx_tensor *t) { return t && t->t.is_leaf(); }
int cfx_tensor_is_same(const cfx_tensor *a, const cfx_tensor *b) { return a && b && a->t.is_same(b->t); }

int cfx_tensor_item(const cfx_tensor *t, double *out) {
  return guard("item", {t}, [&] {
    if (!out) throw std::invalid_argument("out is NULL");
    if (T(t).numel() != 1)
      throw std::invalid_argument("item() needs a one-element tensor, got " + std::to_string(T(t).numel()) +
                                  " elements");
    *out = T(t).item<double>();
  });
}
int cfx_tensor_item_int64(const cfx_tensor *t, int64_t *out) {
  return guard("item", {t}, [&] {
    if (!out) throw std::invalid_argument("out is NULL");
    if (T(t).numel() != 1)
      throw std::invalid_argument("item() needs a one-element tensor, got " + std::to_string(T(t).numel()) +
                                  " elements");
    *out = T(t).item<int64_t>();
  });
}
int cfx_tensor_equal(const cfx_tensor *a, const cfx_tensor *b, int *out) {
  return guard("equal", {a, b}, [&] {
    if (!out) throw std::invalid_argument("out is NULL");
    *out = T(a).sizes() == T(b).sizes() && at::equal(T(a), T(b));
  });
}
int cfx_tensor_allclose(const cfx_tensor *a, const cfx_tensor *b, double rtol, double atol, int *out) {
  return guard("allclose", {a, b}, [&] {
    if (!out) throw std::invalid_argument("out is NULL");
    *out = at::allclose(T(a), T(b), rtol, atol);
  });
}
int cfx_tensor_describe(const cfx_tensor *t, char *buf, int cap) {
  if (!buf || cap <= 0) return cfx__set_error(CFX_EINVAL, "describe: buffer is NULL or empty");
  std::string s = t ? describe(t->t) : "NULL";
  std::snprintf(buf, static_cast<size_t>(cap), "%s", s.c_str());
  return 0;
}

// ---- conversion -------------------------------------------------------------------------
int cfx_tensor_to(const cfx_tensor *t, int dtype, int device, int non_blocking, int copy, cfx_tensor **out) {
  return make("to", out, {t}, [&] {
    at::ScalarType st = dtype < 0 ? T(t).scalar_type() : to_scalar_type(dtype);
    return T(t).to(to_device(device), st, non_blocking != 0, copy != 0);
  });
}
// Pinned (page-locked) host memory comes from the CUDA host allocator; without a
// visible CUDA device (Debian's libtorch is CPU-only) there is none, and nothing needs
// it, so the tensor itself is returned instead of failing.
int cfx_tensor_pin_memory(const cfx_tensor *t, cfx_tensor **out) {
  return make("pin_memory", out, {t}, [&]() -> at::Tensor {
    if (!torch::cuda::is_available()) return T(t);
    return T(t).pin_memory();
  });
}
int cfx_tensor_is_pinned(const cfx_tensor *t) {
  if (!t || !torch::cuda::is_available()) return 0;
  try {
    return t->t.is_pinned();
  } catch (...) {
    return 0;
  }
}
int cfx_tensor_contiguous(const cfx_tensor *t, cfx_tensor **out) {
  return make("contiguous", out, {t}, [&] { return T(t).contiguous(); });
}
int cfx_tensor_clone(const cfx_tensor *t, cfx_tensor **out) {
  return make("clone", out, {t}, [&] { return T(t).clone(); });
}

// ---- random numbers ------------------------------------------------------------------------
int cfx_manual_seed(uint64_t seed) {
  return guard("manual_seed", {}, [&] { torch::manual_seed(seed); });
}
int cfx_get_rng_state(cfx_tensor **out) {
  return make("get_rng_state", out, {}, [&] {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
  });
}
int cfx_set_rng_state(const cfx_tensor *state) {
  return guard("set_rng_state", {state}, [&] {
    const at::Tensor &s = T(state);
    if (s.scalar_type() != at::kByte || s.dim() != 1 || !s.device().is_cpu())
      throw std::invalid_argument("rng state must be a 1-d uint8 CPU tensor from get_rng_state");
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s);
  });
}

// ---- autograd ----------------------------------------------------------------------------
int cfx_tensor_requires_grad_(cfx_tensor *t, int flag) {
  return guard("requires_grad_", {t}, [&] { T(t).requires_grad_(flag != 0); });
}
int cfx_tensor_backward(const cfx_tensor *t, const cfx_tensor *grad, int retain_graph, int create_graph) {
  return guard("backward", {t, grad}, [&] {
    const at::Tensor &x = T(t);
    if (!x.requires_grad())
      throw std::invalid_argument("backward: tensor does not require grad and has no grad_fn");
    if (!grad && x.numel() != 1)
      throw std::invalid_argument("backward: a gradient is needed for a tensor of " + std::to_string(x.numel()) +
                                  " elements (only a scalar may omit it)");
    at::Tensor g = grad ? grad->t : at::Tensor();
    x.backward(g, retain_graph ? c10::optional<bool>(true) : c10::nullopt, create_graph != 0);
  });
}
int cfx_tensor_grad(const cfx_tensor *t, cfx_tensor **out) {
  if (!out) return cfx__set_error(CFX_EINVAL, "grad: out is NULL");
  *out = nullptr;
  return guard("grad", {t}, [&] {
    const at::Tensor &g = T(t).grad();
    if (g.defined()) *out = wrap(g);
  });
}
int cfx_tensor_set_grad(cfx_tensor *t, const cfx_tensor *grad) {
  return guard("set_grad", {t, grad}, [&] { T(t).mutable_grad() = grad ? grad->t : at::Tensor(); });
}
int cfx_tensor_zero_grad(cfx_tensor *t, int set_to_none) {
  return guard("zero_grad", {t}, [&] {
    at::Tensor &g = T(t).mutable_grad();
    if (!g.defined()) return;
    if (set_to_none) {
      g = at::Tensor();
    } else {
      if (g.grad_fn()) g = g.detach();
      else g.requires_grad_(false);
      g.zero_();
    }
  });
}
int cfx_tensor_detach(const cfx_tensor *t, cfx_tensor **out) {
  return make("detach", out, {t}, [&] { return T(t).detach(); });
}
int cfx_tensor_detach_(cfx_tensor *t) {
  return guard("detach_", {t}, [&] { T(t).detach_(); });
}
int cfx_grad_set_enabled(int enabled) {
  int prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled != 0);
  return prev;
}
int cfx_grad_is_enabled(void) { return at::GradMode::is_enabled(); }

// ---- autocast ----------------------------------------------------------------------------
// libtorch keeps autocast state per thread; we keep a per-thread stack of what each
// enter replaced, so nested regions restore exactly.
struct AutocastSaved {
  bool cpu;
  bool enabled;
  at::ScalarType dtype;
};
static thread_local std::vector<AutocastSaved> autocast_stack;

int cfx_autocast_enter(int device, int dtype) {
  return guard("autocast_enter", {}, [&] {
    at::ScalarType st = to_scalar_type(dtype);
    bool cpu = device == CFX_CPU;
    if (cpu && st != at::kBFloat16)
      throw std::invalid_argument("autocast on CPU supports bfloat16 only, got " +
                                  std::string(dtype_names[dtype]));
    if (!cpu && st != at::kHalf && st != at::kBFloat16)
      throw std::invalid_argument("autocast on CUDA supports float16 or bfloat16, got " +
                                  std::string(dtype_names[dtype]));
    if (!cpu && !torch::cuda::is_available()) throw std::invalid_argument("autocast: CUDA is not available");
    if (autocast_stack.size() >= 64) throw std::out_of_range("autocast regions nested too deeply (64)");
    if (cpu) {
      autocast_stack.push_back({true, at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()});
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(st);
    } else {
      autocast_stack.push_back({false, at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()});
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(st);
    }
    at::autocast::increment_nesting();
  });
}

int cfx_autocast_exit(int device) {
  return guard("autocast_exit", {}, [&] {
    bool cpu = device == CFX_CPU;
    if (autocast_stack.empty() || autocast_stack.back().cpu != cpu)
      throw std::invalid_argument("autocast_exit without a matching autocast_enter for this device");
    AutocastSaved s = autocast_stack.back();
    autocast_stack.pop_back();
    if (cpu) {
      at::autocast::set_cpu_enabled(s.enabled);
      at::autocast::set_autocast_cpu_dtype(s.dtype);
    } else {
      at::autocast::set_enabled(s.enabled);
      at::autocast::set_autocast_gpu_dtype(s.dtype);
    }
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  });
}

int cfx_autocast_is_enabled(int device) {
  return device == CFX_CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}

// ---- runtime ----------------------------------------------------------------------------
int cfx_set_num_threads(int n) {
  if (n < 1) return cfx__set_error(CFX_EINVAL, "set_num_threads: need n >= 1");
  return guard("set_num_threads", {}, [&] { at::set_num_threads(n); });
}
int cfx_get_num_threads(void) { return at::get_num_threads(); }
int cfx_cuda_is_available(void) {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return 0;
  }
}
int cfx_cuda_is_built(void) {
  try {
    return at::Context::hasCUDART();
  } catch (...) {
    return 0;
  }
}
int cfx_cuda_device_count(void) {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}
int64_t cfx_memory_live_bytes(void) {
  (void)allocator_installed;
  return live_bytes.load(std::memory_order_relaxed);
}
int64_t cfx_memory_peak_bytes(void) { return peak_bytes.load(std::memory_order_relaxed); }
void cfx_memory_reset_peak(void) { peak_bytes.store(live_bytes.load()); }

}  // extern "C"
