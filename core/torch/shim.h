// shim.h: private helpers shared by the libtorch shim (tensor.cpp, ops.cpp).
//
// Every exported function runs its body through cfx::guard(), which catches every
// exception (c10::Error, std::exception, anything) and turns it into a CFX_E* code and
// a cfx_last_error() message naming the op and the shapes/dtypes of its inputs.
#pragma once

#include <torch/torch.h>

#include <cstdio>
#include <initializer_list>
#include <memory>
#include <string>

#include "cfx/tensor.h"
#include "../src/internal.h" /* cfx__set_error, shared with core/src, not exported */

struct cfx_tensor {
  at::Tensor t;
};

namespace cfx {

extern const char *const dtype_names[CFX_DTYPE_COUNT];

at::ScalarType to_scalar_type(int dtype);  // throws std::invalid_argument
int from_scalar_type(at::ScalarType st);   // -1 for a type cfx does not expose
at::Device to_device(int device);          // throws std::invalid_argument
int from_device(const at::Device &d);
std::string describe(const at::Tensor &t);  // "float32[2, 3]" (+ " cuda:0" off CPU)

// An integral double becomes an integer Scalar so that integer tensors stay integer.
inline at::Scalar scalar(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -9.0e15 && v < 9.0e15)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

inline at::IntArrayRef dims(const int64_t *d, int n) {
  if (n < 0 || n > CFX_MAX_DIMS) throw std::invalid_argument("number of dimensions out of range");
  if (n > 0 && !d) throw std::invalid_argument("dims is NULL");
  return at::IntArrayRef(d, static_cast<size_t>(n));
}

// A required input: throws on NULL.
inline const at::Tensor &T(const cfx_tensor *h) {
  if (!h) throw std::invalid_argument("tensor argument is NULL");
  return h->t;
}
// An optional input: NULL means "none".
inline c10::optional<at::Tensor> opt(const cfx_tensor *h) {
  if (!h) return c10::nullopt;
  return h->t;
}

inline cfx_tensor *wrap(at::Tensor t) { return new cfx_tensor{std::move(t)}; }

int fail(const char *op, std::initializer_list<const cfx_tensor *> inputs, int code, const char *what);

// Run f(); on exception, record "op: reason (inputs: ...)" and return an error code.
template <class F>
int guard(const char *op, std::initializer_list<const cfx_tensor *> inputs, F &&f) noexcept {
  try {
    f();
    return 0;
  } catch (const c10::IndexError &e) {
    return fail(op, inputs, CFX_ERANGE, e.what_without_backtrace());
  } catch (const c10::TypeError &e) {
    return fail(op, inputs, CFX_EDTYPE, e.what_without_backtrace());
  } catch (const c10::Error &e) {
    return fail(op, inputs, CFX_ETORCH, e.what_without_backtrace());
  } catch (const std::invalid_argument &e) {
    return fail(op, inputs, CFX_EINVAL, e.what());
  } catch (const std::out_of_range &e) {
    return fail(op, inputs, CFX_ERANGE, e.what());
  } catch (const std::bad_alloc &) {
    return fail(op, inputs, CFX_ENOMEM, "out of memory");
  } catch (const std::exception &e) {
    return fail(op, inputs, CFX_ETORCH, e.what());
  } catch (...) {
    return fail(op, inputs, CFX_EINTERNAL, "unknown exception");
  }
}

// An op that yields one new tensor: *out is set only on success.
template <class F>
int make(const char *op, cfx_tensor **out, std::initializer_list<const cfx_tensor *> inputs, F &&f) noexcept {
  if (!out) return fail(op, inputs, CFX_EINVAL, "out is NULL");
  return guard(op, inputs, [&] {
    at::Tensor r = f();
    *out = wrap(std::move(r));
  });
}

// An op that yields two tensors (values, indices).
template <class F>
int make2(const char *op, cfx_tensor **a, cfx_tensor **b, std::initializer_list<const cfx_tensor *> inputs,
          F &&f) noexcept {
  if (!a || !b) return fail(op, inputs, CFX_EINVAL, "out is NULL");
  return guard(op, inputs, [&] {
    std::tuple<at::Tensor, at::Tensor> r = f();
    std::unique_ptr<cfx_tensor> x(wrap(std::get<0>(r))), y(wrap(std::get<1>(r)));
    *a = x.release();
    *b = y.release();
  });
}

}  // namespace cfx
