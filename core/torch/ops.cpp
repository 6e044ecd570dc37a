// ops.cpp: the operators of cfx/tensor.h (views, elementwise, reductions, linear
// algebra, neural-network ops).  Each one is a thin call into ATen inside cfx::make /
// cfx::guard, so no exception escapes and every failure names the op and its inputs.
#include "shim.h"

#include <cmath>
#include <limits>

using namespace cfx;

namespace {

// libtorch's cat/stack messages name neither shape; add them all.
template <class F>
at::Tensor with_shapes(const std::vector<at::Tensor> &v, F &&f) {
  try {
    return f();
  } catch (const c10::Error &e) {
    std::string shapes;
    for (size_t i = 0; i < v.size(); i++) shapes += (i ? ", " : "") + describe(v[i]);
    throw std::invalid_argument(shapes + ": " + e.what_without_backtrace());
  }
}

std::vector<at::Tensor> tensor_list(cfx_tensor *const *ts, int n) {
  if (n < 1) throw std::invalid_argument("need at least one tensor, got " + std::to_string(n));
  if (!ts) throw std::invalid_argument("tensor list is NULL");
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

// A pair argument (int64_t[2]); NULL means {dflt, dflt}.
std::array<int64_t, 2> pair(const int64_t *p, int64_t dflt) {
  if (!p) return {dflt, dflt};
  return {p[0], p[1]};
}

// The dims of a reduction; n == 0 means every dimension.
std::vector<int64_t> reduce_dims(const at::Tensor &x, const int64_t *d, int n) {
  if (n > 0) {
    at::IntArrayRef r = dims(d, n);
    return std::vector<int64_t>(r.begin(), r.end());
  }
  std::vector<int64_t> all(static_cast<size_t>(x.dim()));
  for (int64_t i = 0; i < x.dim(); i++) all[static_cast<size_t>(i)] = i;
  return all;
}

}  // namespace

#define CFX_UNARY(name, expr)                                                \
  int cfx_tensor_##name(const cfx_tensor *t, cfx_tensor **out) {            \
    return make(#name, out, {t}, [&] {                                       \
      const at::Tensor &x = T(t);                                            \
      return expr;                                                           \
    });                                                                      \
  }
#define CFX_BINARY(name, expr)                                                          \
  int cfx_tensor_##name(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out) {  \
    return make(#name, out, {a, b}, [&] {                                               \
      const at::Tensor &x = T(a), &y = T(b);                                            \
      return expr;                                                                      \
    });                                                                                 \
  }
#define CFX_SCALAR(name, expr)                                               \
  int cfx_tensor_##name(const cfx_tensor *a, double s, cfx_tensor **out) {  \
    return make(#name, out, {a}, [&] {                                       \
      const at::Tensor &x = T(a);                                            \
      return expr;                                                           \
    });                                                                      \
  }
#define CFX_INPLACE_SCALAR(name, expr)               \
  int cfx_tensor_##name(cfx_tensor *t, double s) {  \
    return guard(#name, {t}, [&] {                   \
      at::Tensor x = T(t);                           \
      expr;                                          \
    });                                              \
  }

extern "C" {

// ---- views and indexing ----------------------------------------------------------
int cfx_tensor_reshape(const cfx_tensor *t, const int64_t *d, int n, cfx_tensor **out) {
  return make("reshape", out, {t}, [&] { return T(t).reshape(dims(d, n)); });
}
int cfx_tensor_view(const cfx_tensor *t, const int64_t *d, int n, cfx_tensor **out) {
  return make("view", out, {t}, [&] { return T(t).view(dims(d, n)); });
}
int cfx_tensor_permute(const cfx_tensor *t, const int64_t *d, int n, cfx_tensor **out) {
  return make("permute", out, {t}, [&] { return T(t).permute(dims(d, n)); });
}
int cfx_tensor_transpose(const cfx_tensor *t, int64_t d0, int64_t d1, cfx_tensor **out) {
  return make("transpose", out, {t}, [&] { return T(t).transpose(d0, d1); });
}
int cfx_tensor_narrow(const cfx_tensor *t, int64_t dim, int64_t start, int64_t length, cfx_tensor **out) {
  return make("narrow", out, {t}, [&] { return T(t).narrow(dim, start, length); });
}
int cfx_tensor_slice(const cfx_tensor *t, int64_t dim, int64_t start, int64_t end, int64_t step,
                     cfx_tensor **out) {
  return make("slice", out, {t}, [&] {
    if (step < 1) throw std::invalid_argument("slice: step must be >= 1");
    return T(t).slice(dim, start, end, step);
  });
}
int cfx_tensor_select(const cfx_tensor *t, int64_t dim, int64_t index, cfx_tensor **out) {
  return make("select", out, {t}, [&] { return T(t).select(dim, index); });
}
int cfx_tensor_index_select(const cfx_tensor *t, int64_t dim, const cfx_tensor *index, cfx_tensor **out) {
  return make("index_select", out, {t, index}, [&] { return T(t).index_select(dim, T(index)); });
}
int cfx_tensor_gather(const cfx_tensor *t, int64_t dim, const cfx_tensor *index, cfx_tensor **out) {
  return make("gather", out, {t, index}, [&] { return T(t).gather(dim, T(index)); });
}
int cfx_tensor_masked_fill(const cfx_tensor *t, const cfx_tensor *mask, double value, cfx_tensor **out) {
  return make("masked_fill", out, {t, mask}, [&] { return T(t).masked_fill(T(mask), scalar(value)); });
}
int cfx_tensor_unsqueeze(const cfx_tensor *t, int64_t dim, cfx_tensor **out) {
  return make("unsqueeze", out, {t}, [&] { return T(t).unsqueeze(dim); });
}
CFX_UNARY(squeeze, x.squeeze())
int cfx_tensor_squeeze_dim(const cfx_tensor *t, int64_t dim, cfx_tensor **out) {
  return make("squeeze", out, {t}, [&] { return T(t).squeeze(dim); });
}
int cfx_tensor_expand(const cfx_tensor *t, const int64_t *d, int n, cfx_tensor **out) {
  return make("expand", out, {t}, [&] { return T(t).expand(dims(d, n)); });
}
int cfx_tensor_repeat(const cfx_tensor *t, const int64_t *reps, int n, cfx_tensor **out) {
  return make("repeat", out, {t}, [&] { return T(t).repeat(dims(reps, n)); });
}
int cfx_tensor_flatten(const cfx_tensor *t, int64_t start_dim, int64_t end_dim, cfx_tensor **out) {
  return make("flatten", out, {t}, [&] { return T(t).flatten(start_dim, end_dim); });
}
int cfx_tensor_cat(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out) {
  return make("cat", out, {}, [&] {
    std::vector<at::Tensor> v = tensor_list(ts, n);
    return with_shapes(v, [&] { return at::cat(v, dim); });
  });
}
int cfx_tensor_stack(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out) {
  return make("stack", out, {}, [&] {
    std::vector<at::Tensor> v = tensor_list(ts, n);
    return with_shapes(v, [&] { return at::stack(v, dim); });
  });
}
int cfx_tensor_chunk(const cfx_tensor *t, int64_t chunks, int64_t dim, cfx_tensor **outs, int cap, int *n) {
  return guard("chunk", {t}, [&] {
    if (!outs || !n) throw std::invalid_argument("outs or n is NULL");
    std::vector<at::Tensor> parts = T(t).chunk(chunks, dim);
    if (static_cast<int64_t>(parts.size()) > cap)
      throw std::out_of_range("chunk: " + std::to_string(parts.size()) + " pieces but room for " +
                              std::to_string(cap));
    for (size_t i = 0; i < parts.size(); i++) outs[i] = wrap(parts[i]);
    *n = static_cast<int>(parts.size());
  });
}

// ---- elementwise --------------------------------------------------------------------
int cfx_tensor_add(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out) {
  return make("add", out, {a, b}, [&] { return at::add(T(a), T(b), scalar(alpha)); });
}
int cfx_tensor_sub(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out) {
  return make("sub", out, {a, b}, [&] { return at::sub(T(a), T(b), scalar(alpha)); });
}
CFX_BINARY(mul, at::mul(x, y))
CFX_BINARY(div, at::div(x, y))
CFX_BINARY(pow, at::pow(x, y))
CFX_BINARY(maximum, at::maximum(x, y))
CFX_BINARY(minimum, at::minimum(x, y))
CFX_SCALAR(add_scalar, at::add(x, scalar(s)))
CFX_SCALAR(sub_scalar, at::sub(x, scalar(s)))
CFX_SCALAR(mul_scalar, at::mul(x, scalar(s)))
CFX_SCALAR(div_scalar, at::div(x, scalar(s)))
CFX_SCALAR(pow_scalar, at::pow(x, scalar(s)))
CFX_SCALAR(rsub_scalar, at::rsub(x, scalar(s)))
CFX_SCALAR(rdiv_scalar, at::mul(at::reciprocal(x), scalar(s)))
CFX_SCALAR(rpow_scalar, at::pow(scalar(s), x))

int cfx_tensor_add_(cfx_tensor *t, const cfx_tensor *b, double alpha) {
  return guard("add_", {t, b}, [&] { T(t).add_(T(b), scalar(alpha)); });
}
int cfx_tensor_sub_(cfx_tensor *t, const cfx_tensor *b, double alpha) {
  return guard("sub_", {t, b}, [&] { T(t).sub_(T(b), scalar(alpha)); });
}
int cfx_tensor_mul_(cfx_tensor *t, const cfx_tensor *b) {
  return guard("mul_", {t, b}, [&] { T(t).mul_(T(b)); });
}
int cfx_tensor_div_(cfx_tensor *t, const cfx_tensor *b) {
  return guard("div_", {t, b}, [&] { T(t).div_(T(b)); });
}
int cfx_tensor_copy_(cfx_tensor *t, const cfx_tensor *src) {
  return guard("copy_", {t, src}, [&] { T(t).copy_(T(src)); });
}
CFX_INPLACE_SCALAR(add_scalar_, x.add_(scalar(s)))
CFX_INPLACE_SCALAR(mul_scalar_, x.mul_(scalar(s)))
CFX_INPLACE_SCALAR(div_scalar_, x.div_(scalar(s)))
CFX_INPLACE_SCALAR(fill_, x.fill_(scalar(s)))
int cfx_tensor_zero_(cfx_tensor *t) {
  return guard("zero_", {t}, [&] { T(t).zero_(); });
}
int cfx_tensor_clamp_(cfx_tensor *t, double lo, double hi, int which) {
  return guard("clamp_", {t}, [&] {
    c10::optional<at::Scalar> mn, mx;
    if (which & CFX_CLAMP_MIN) mn = scalar(lo);
    if (which & CFX_CLAMP_MAX) mx = scalar(hi);
    T(t).clamp_(mn, mx);
  });
}
int cfx_tensor_addcmul_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value) {
  return guard("addcmul_", {t, a, b}, [&] { T(t).addcmul_(T(a), T(b), scalar(value)); });
}
int cfx_tensor_addcdiv_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value) {
  return guard("addcdiv_", {t, a, b}, [&] { T(t).addcdiv_(T(a), T(b), scalar(value)); });
}
int cfx_tensor_lerp_(cfx_tensor *t, const cfx_tensor *end, double weight) {
  return guard("lerp_", {t, end}, [&] { T(t).lerp_(T(end), scalar(weight)); });
}
int cfx_tensor_uniform_(cfx_tensor *t, double lo, double hi) {
  return guard("uniform_", {t}, [&] { T(t).uniform_(lo, hi); });
}
int cfx_tensor_normal_(cfx_tensor *t, double mean, double std) {
  return guard("normal_", {t}, [&] { T(t).normal_(mean, std); });
}

CFX_BINARY(eq, at::eq(x, y))
CFX_BINARY(ne, at::ne(x, y))
CFX_BINARY(lt, at::lt(x, y))
CFX_BINARY(le, at::le(x, y))
CFX_BINARY(gt, at::gt(x, y))
CFX_BINARY(ge, at::ge(x, y))
CFX_SCALAR(eq_scalar, at::eq(x, scalar(s)))
CFX_SCALAR(ne_scalar, at::ne(x, scalar(s)))
CFX_SCALAR(lt_scalar, at::lt(x, scalar(s)))
CFX_SCALAR(le_scalar, at::le(x, scalar(s)))
CFX_SCALAR(gt_scalar, at::gt(x, scalar(s)))
CFX_SCALAR(ge_scalar, at::ge(x, scalar(s)))
CFX_BINARY(logical_and, at::logical_and(x, y))
CFX_BINARY(logical_or, at::logical_or(x, y))
int cfx_tensor_where(const cfx_tensor *cond, const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out) {
  return make("where", out, {cond, a, b}, [&] { return at::where(T(cond), T(a), T(b)); });
}
int cfx_tensor_clamp(const cfx_tensor *t, double lo, double hi, int which, cfx_tensor **out) {
  return make("clamp", out, {t}, [&] {
    c10::optional<at::Scalar> mn, mx;
    if (which & CFX_CLAMP_MIN) mn = scalar(lo);
    if (which & CFX_CLAMP_MAX) mx = scalar(hi);
    if (!mn && !mx) throw std::invalid_argument("clamp: give a min, a max or both");
    return at::clamp(T(t), mn, mx);
  });
}

CFX_UNARY(neg, at::neg(x))
CFX_UNARY(exp, at::exp(x))
CFX_UNARY(log, at::log(x))
CFX_UNARY(log1p, at::log1p(x))
CFX_UNARY(sqrt, at::sqrt(x))
CFX_UNARY(rsqrt, at::rsqrt(x))
CFX_UNARY(abs, at::abs(x))
CFX_UNARY(sign, at::sign(x))
CFX_UNARY(floor, at::floor(x))
CFX_UNARY(ceil, at::ceil(x))
CFX_UNARY(round, at::round(x))
CFX_UNARY(sin, at::sin(x))
CFX_UNARY(cos, at::cos(x))
CFX_UNARY(tanh, at::tanh(x))
CFX_UNARY(sigmoid, at::sigmoid(x))
CFX_UNARY(erf, at::erf(x))
CFX_UNARY(reciprocal, at::reciprocal(x))
CFX_UNARY(square, at::square(x))
CFX_UNARY(relu, at::relu(x))
CFX_UNARY(silu, at::silu(x))
CFX_UNARY(logical_not, at::logical_not(x))
CFX_UNARY(isnan, at::isnan(x))
CFX_UNARY(isfinite, at::isfinite(x))
int cfx_tensor_gelu(const cfx_tensor *t, int approximate, cfx_tensor **out) {
  return make("gelu", out, {t}, [&] { return at::gelu(T(t), approximate ? "tanh" : "none"); });
}

// ---- reductions -----------------------------------------------------------------------
int cfx_tensor_sum(const cfx_tensor *t, const int64_t *d, int n, int keepdim, cfx_tensor **out) {
  return make("sum", out, {t}, [&] {
    if (n == 0 && !keepdim) return T(t).sum();
    return T(t).sum(reduce_dims(T(t), d, n), keepdim != 0);
  });
}
int cfx_tensor_mean(const cfx_tensor *t, const int64_t *d, int n, int keepdim, cfx_tensor **out) {
  return make("mean", out, {t}, [&] {
    if (n == 0 && !keepdim) return T(t).mean();
    return T(t).mean(reduce_dims(T(t), d, n), keepdim != 0);
  });
}
int cfx_tensor_var(const cfx_tensor *t, const int64_t *d, int n, int64_t correction, int keepdim,
                   cfx_tensor **out) {
  return make("var", out, {t}, [&] {
    return at::var(T(t), at::OptionalIntArrayRef(reduce_dims(T(t), d, n)), c10::optional<int64_t>(correction),
                   keepdim != 0);
  });
}
int cfx_tensor_std(const cfx_tensor *t, const int64_t *d, int n, int64_t correction, int keepdim,
                   cfx_tensor **out) {
  return make("std", out, {t}, [&] {
    return at::std(T(t), at::OptionalIntArrayRef(reduce_dims(T(t), d, n)), c10::optional<int64_t>(correction),
                   keepdim != 0);
  });
}
CFX_UNARY(prod, x.prod())
int cfx_tensor_norm(const cfx_tensor *t, double p, const int64_t *d, int n, int keepdim, cfx_tensor **out) {
  return make("norm", out, {t}, [&] { return at::norm(T(t), scalar(p), reduce_dims(T(t), d, n), keepdim != 0); });
}
int cfx_tensor_logsumexp(const cfx_tensor *t, const int64_t *d, int n, int keepdim, cfx_tensor **out) {
  return make("logsumexp", out, {t}, [&] { return at::logsumexp(T(t), reduce_dims(T(t), d, n), keepdim != 0); });
}
int cfx_tensor_cumsum(const cfx_tensor *t, int64_t dim, cfx_tensor **out) {
  return make("cumsum", out, {t}, [&] { return at::cumsum(T(t), dim); });
}
CFX_UNARY(max_all, x.max())
CFX_UNARY(min_all, x.min())
CFX_UNARY(argmax_all, x.argmax())
CFX_UNARY(argmin_all, x.argmin())
int cfx_tensor_max(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values, cfx_tensor **indices) {
  return make2("max", values, indices, {t}, [&] { return at::max(T(t), dim, keepdim != 0); });
}
int cfx_tensor_min(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values, cfx_tensor **indices) {
  return make2("min", values, indices, {t}, [&] { return at::min(T(t), dim, keepdim != 0); });
}
int cfx_tensor_argmax(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out) {
  return make("argmax", out, {t}, [&] { return at::argmax(T(t), dim, keepdim != 0); });
}
int cfx_tensor_argmin(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out) {
  return make("argmin", out, {t}, [&] { return at::argmin(T(t), dim, keepdim != 0); });
}
int cfx_tensor_topk(const cfx_tensor *t, int64_t k, int64_t dim, int largest, int sorted, cfx_tensor **values,
                    cfx_tensor **indices) {
  return make2("topk", values, indices, {t}, [&] { return at::topk(T(t), k, dim, largest != 0, sorted != 0); });
}
int cfx_tensor_sort(const cfx_tensor *t, int64_t dim, int descending, int stable, cfx_tensor **values,
                    cfx_tensor **indices) {
  return make2("sort", values, indices, {t}, [&] { return at::sort(T(t), stable != 0, dim, descending != 0); });
}

// ---- linear algebra ---------------------------------------------------------------------
CFX_BINARY(matmul, at::matmul(x, y))
CFX_BINARY(mm, at::mm(x, y))
CFX_BINARY(bmm, at::bmm(x, y))
int cfx_tensor_linear(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias, cfx_tensor **out) {
  return make("linear", out, {x, w, bias}, [&] { return at::linear(T(x), T(w), opt(bias)); });
}
int cfx_tensor_addmm(const cfx_tensor *input, const cfx_tensor *a, const cfx_tensor *b, double beta, double alpha,
                     cfx_tensor **out) {
  return make("addmm", out, {input, a, b}, [&] { return at::addmm(T(input), T(a), T(b), scalar(beta), scalar(alpha)); });
}

// ---- neural-network ops ------------------------------------------------------------------
int cfx_tensor_conv2d(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias, const int64_t *stride,
                      const int64_t *padding, const int64_t *dilation, int64_t groups, cfx_tensor **out) {
  return make("conv2d", out, {x, w, bias}, [&] {
    return at::conv2d(T(x), T(w), opt(bias), pair(stride, 1), pair(padding, 0), pair(dilation, 1), groups);
  });
}
int cfx_tensor_conv_transpose2d(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias,
                                const int64_t *stride, const int64_t *padding, const int64_t *output_padding,
                                int64_t groups, const int64_t *dilation, cfx_tensor **out) {
  return make("conv_transpose2d", out, {x, w, bias}, [&] {
    return at::conv_transpose2d(T(x), T(w), opt(bias), pair(stride, 1), pair(padding, 0), pair(output_padding, 0),
                                groups, pair(dilation, 1));
  });
}
int cfx_tensor_max_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                          const int64_t *dilation, int ceil_mode, cfx_tensor **out) {
  return make("max_pool2d", out, {x}, [&] {
    if (!kernel) throw std::invalid_argument("max_pool2d: kernel is NULL");
    auto k = pair(kernel, 1);
    return at::max_pool2d(T(x), k, stride ? pair(stride, 1) : k, pair(padding, 0), pair(dilation, 1), ceil_mode != 0);
  });
}
int cfx_tensor_avg_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                          int ceil_mode, int count_include_pad, cfx_tensor **out) {
  return make("avg_pool2d", out, {x}, [&] {
    if (!kernel) throw std::invalid_argument("avg_pool2d: kernel is NULL");
    auto k = pair(kernel, 1);
    return at::avg_pool2d(T(x), k, stride ? pair(stride, 1) : k, pair(padding, 0), ceil_mode != 0,
                          count_include_pad != 0);
  });
}
int cfx_tensor_adaptive_avg_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out) {
  return make("adaptive_avg_pool2d", out, {x}, [&] {
    if (!size) throw std::invalid_argument("adaptive_avg_pool2d: size is NULL");
    return at::adaptive_avg_pool2d(T(x), pair(size, 1));
  });
}
int cfx_tensor_adaptive_max_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out) {
  return make("adaptive_max_pool2d", out, {x}, [&] {
    if (!size) throw std::invalid_argument("adaptive_max_pool2d: size is NULL");
    return std::get<0>(at::adaptive_max_pool2d(T(x), pair(size, 1)));
  });
}
int cfx_tensor_layer_norm(const cfx_tensor *x, const int64_t *shape, int n, const cfx_tensor *weight,
                          const cfx_tensor *bias, double eps, cfx_tensor **out) {
  return make("layer_norm", out, {x, weight, bias}, [&] {
    return at::layer_norm(T(x), dims(shape, n), opt(weight), opt(bias), eps);
  });
}
int cfx_tensor_batch_norm(const cfx_tensor *x, const cfx_tensor *weight, const cfx_tensor *bias,
                          cfx_tensor *running_mean, cfx_tensor *running_var, int training, double momentum,
                          double eps, cfx_tensor **out) {
  return make("batch_norm", out, {x, weight, bias}, [&] {
    if (!training && (!running_mean || !running_var))
      throw std::invalid_argument("batch_norm: evaluation mode needs running_mean and running_var");
    return at::batch_norm(T(x), opt(weight), opt(bias), opt(running_mean), opt(running_var), training != 0, momentum,
                          eps, /*cudnn_enabled=*/true);
  });
}
int cfx_tensor_group_norm(const cfx_tensor *x, int64_t groups, const cfx_tensor *weight, const cfx_tensor *bias,
                          double eps, cfx_tensor **out) {
  return make("group_norm", out, {x, weight, bias}, [&] {
    return at::group_norm(T(x), groups, opt(weight), opt(bias), eps, /*cudnn_enabled=*/true);
  });
}
int cfx_tensor_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out) {
  return make("softmax", out, {x}, [&] { return at::softmax(T(x), dim); });
}
int cfx_tensor_log_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out) {
  return make("log_softmax", out, {x}, [&] { return at::log_softmax(T(x), dim); });
}
int cfx_tensor_dropout(const cfx_tensor *x, double p, int training, cfx_tensor **out) {
  return make("dropout", out, {x}, [&] {
    if (p < 0 || p > 1) throw std::invalid_argument("dropout: p must be in [0, 1], got " + std::to_string(p));
    return at::dropout(T(x), p, training != 0);
  });
}

// libtorch 1.13 has no fused scaled_dot_product_attention; this is the reference
// formulation from PyTorch 2.x's documentation, built from primitives.
int cfx_tensor_scaled_dot_product_attention(const cfx_tensor *q, const cfx_tensor *k, const cfx_tensor *v,
                                            const cfx_tensor *mask, double dropout_p, int is_causal, double scale,
                                            cfx_tensor **out) {
  return make("scaled_dot_product_attention", out, {q, k, v, mask}, [&] {
    const at::Tensor &Q = T(q), &K = T(k), &V = T(v);
    if (Q.dim() < 2 || K.dim() < 2 || V.dim() < 2)
      throw std::invalid_argument("query, key and value need at least 2 dimensions");
    double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(Q.size(-1)));
    at::Tensor attn = at::matmul(Q, K.transpose(-2, -1)) * s;
    const double ninf = -std::numeric_limits<double>::infinity();
    if (is_causal) {
      at::Tensor keep = at::ones({Q.size(-2), K.size(-2)}, Q.options().dtype(at::kBool)).tril();
      attn = attn.masked_fill(keep.logical_not(), ninf);
    }
    if (mask) {
      const at::Tensor &M = mask->t;
      attn = M.scalar_type() == at::kBool ? attn.masked_fill(M.logical_not(), ninf) : attn + M;
    }
    attn = at::softmax(attn, -1);
    if (dropout_p > 0) attn = at::dropout(attn, dropout_p, true);
    return at::matmul(attn, V);
  });
}

int cfx_tensor_binary_cross_entropy_with_logits(const cfx_tensor *x, const cfx_tensor *target,
                                                const cfx_tensor *weight, const cfx_tensor *pos_weight,
                                                int reduction, cfx_tensor **out) {
  return make("binary_cross_entropy_with_logits", out, {x, target}, [&] {
    if (reduction < 0 || reduction > 2) throw std::invalid_argument("reduction must be 0 (none), 1 (mean) or 2 (sum)");
    return at::binary_cross_entropy_with_logits(T(x), T(target), opt(weight), opt(pos_weight), reduction);
  });
}
int cfx_tensor_cross_entropy(const cfx_tensor *x, const cfx_tensor *target, int reduction, cfx_tensor **out) {
  return make("cross_entropy", out, {x, target}, [&] {
    if (reduction < 0 || reduction > 2) throw std::invalid_argument("reduction must be 0 (none), 1 (mean) or 2 (sum)");
    return at::cross_entropy_loss(T(x), T(target), c10::nullopt, reduction);
  });
}
int cfx_tensor_mse_loss(const cfx_tensor *x, const cfx_tensor *target, int reduction, cfx_tensor **out) {
  return make("mse_loss", out, {x, target}, [&] {
    if (reduction < 0 || reduction > 2) throw std::invalid_argument("reduction must be 0 (none), 1 (mean) or 2 (sum)");
    return at::mse_loss(T(x), T(target), reduction);
  });
}

int cfx_tensor_pad(const cfx_tensor *x, const int64_t *pads, int npads, int mode, double value, cfx_tensor **out) {
  return make("pad", out, {x}, [&] {
    namespace F = torch::nn::functional;
    std::vector<int64_t> p(dims(pads, npads).begin(), dims(pads, npads).end());
    if (p.empty() || p.size() % 2) throw std::invalid_argument("pad: need an even, nonzero number of pad sizes");
    F::PadFuncOptions o(p);
    switch (mode) {
    case CFX_PAD_CONSTANT: o.mode(torch::kConstant).value(value); break;
    case CFX_PAD_REFLECT: o.mode(torch::kReflect); break;
    case CFX_PAD_REPLICATE: o.mode(torch::kReplicate); break;
    case CFX_PAD_CIRCULAR: o.mode(torch::kCircular); break;
    default: throw std::invalid_argument("pad: unknown mode " + std::to_string(mode));
    }
    return F::pad(T(x), o);
  });
}

int cfx_tensor_interpolate(const cfx_tensor *x, const int64_t *size, int nsize, const double *scales, int mode,
                           int align_corners, int antialias, cfx_tensor **out) {
  return make("interpolate", out, {x}, [&] {
    const at::Tensor &X = T(x);
    at::IntArrayRef sz = dims(size, nsize);
    if (nsize != 1 && nsize != 2) throw std::invalid_argument("interpolate: size must have 1 or 2 entries");
    if (X.dim() != nsize + 2)
      throw std::invalid_argument("interpolate: a " + std::to_string(nsize) + "-entry size needs a " +
                                  std::to_string(nsize + 2) + "-d input (N, C, spatial...)");
    bool ac = align_corners != 0;
    // With scale factors the kernels sample on the scaled grid, as torch's
    // interpolate(scale_factor=...) does; otherwise on the size ratio.
    c10::optional<double> s0, s1;
    if (scales) s0 = scales[0], s1 = scales[nsize - 1];
    if (antialias && (mode == CFX_INTERP_NEAREST || mode == CFX_INTERP_AREA))
      throw std::invalid_argument("interpolate: antialias applies to bilinear and bicubic only");
    switch (mode) {
    case CFX_INTERP_NEAREST:
      return nsize == 1 ? at::upsample_nearest1d(X, sz, s0) : at::upsample_nearest2d(X, sz, s0, s1);
    case CFX_INTERP_BILINEAR:
      if (nsize == 1) return at::upsample_linear1d(X, sz, ac, s0);
      return antialias ? at::_upsample_bilinear2d_aa(X, sz, ac, s0, s1) : at::upsample_bilinear2d(X, sz, ac, s0, s1);
    case CFX_INTERP_BICUBIC:
      if (nsize != 2) throw std::invalid_argument("interpolate: bicubic needs a 2-entry size");
      return antialias ? at::_upsample_bicubic2d_aa(X, sz, ac, s0, s1) : at::upsample_bicubic2d(X, sz, ac, s0, s1);
    case CFX_INTERP_AREA:
      return nsize == 1 ? at::adaptive_avg_pool1d(X, sz) : at::adaptive_avg_pool2d(X, sz);
    default:
      throw std::invalid_argument("interpolate: unknown mode " + std::to_string(mode));
    }
  });
}

}  // extern "C"
