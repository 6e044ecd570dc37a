/* test_tensor.c: the libtorch C ABI seen from C: creation, copies, the no-copy
 * blob with its release callback, errors (codes and messages, never a crash),
 * autograd, grad mode, autocast nesting, random state and the live-bytes counter.
 * Numerical agreement with PyTorch op by op is in tests/reference/. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "cfx/cfx.h"
#include "check.h"

static int released;
static void on_release(void *ctx) { released += ctx == (void *)&released; }

static double item(const cfx_tensor *t) {
  double v = NAN;
  if (cfx_tensor_item(t, &v) != 0) fprintf(stderr, "item: %s\n", cfx_last_error());
  return v;
}

static void test_create_and_copy(void) {
  int64_t shape[2] = {2, 3};
  float src[6] = {1, 2, 3, 4, 5, 6}, dst[6] = {0};
  cfx_tensor *t = NULL;
  CHECK_OK(cfx_tensor_from_data(src, shape, 2, CFX_FLOAT32, &t));
  CHECK(cfx_tensor_ndim(t) == 2 && cfx_tensor_numel(t) == 6 && cfx_tensor_dtype(t) == CFX_FLOAT32);
  CHECK(cfx_tensor_device(t) == CFX_CPU);
  int64_t got[4] = {0}, strides[4] = {0};
  CHECK(cfx_tensor_shape(t, got, 4) == 2 && got[0] == 2 && got[1] == 3);
  CHECK(cfx_tensor_strides(t, strides, 4) == 2 && strides[0] == 3 && strides[1] == 1);
  src[0] = 100; /* from_data copies */
  CHECK_OK(cfx_tensor_copy_to(t, dst, sizeof dst));
  CHECK(dst[0] == 1 && dst[5] == 6);
  CHECK(cfx_tensor_copy_to(t, dst, 8) == CFX_EINVAL); /* wrong size is refused */
  CHECK_CONTAINS(cfx_last_error(), "24");

  /* A transposed view copies out in its logical (row-major) order. */
  cfx_tensor *tt = NULL;
  CHECK_OK(cfx_tensor_transpose(t, 0, 1, &tt));
  CHECK(!cfx_tensor_is_contiguous(tt));
  CHECK_OK(cfx_tensor_copy_to(tt, dst, sizeof dst));
  CHECK(dst[0] == 1 && dst[1] == 4 && dst[2] == 2);

  cfx_tensor *s = NULL;
  CHECK_OK(cfx_tensor_sum(t, NULL, 0, 0, &s));
  CHECK(item(s) == 21.0);
  cfx_tensor_free(s);
  cfx_tensor_free(tt);
  cfx_tensor_free(t);
  cfx_tensor_free(NULL); /* accepted, like free(NULL) */
}

static void test_blob(void) {
  double buf[4] = {1, 2, 3, 4};
  int64_t n = 4;
  cfx_tensor *t = NULL, *v = NULL;
  released = 0;
  CHECK_OK(cfx_tensor_from_blob(buf, &n, NULL, 1, CFX_FLOAT64, on_release, &released, &t));
  CHECK_OK(cfx_tensor_mul_scalar_(t, 2)); /* writes through to the caller's memory */
  CHECK(buf[3] == 8);
  CHECK_OK(cfx_tensor_narrow(t, 0, 1, 2, &v)); /* a view keeps the storage alive */
  cfx_tensor_free(t);
  CHECK(released == 0);
  cfx_tensor_free(v);
  CHECK(released == 1);
}

static void test_errors(void) {
  int64_t a_shape[2] = {2, 3}, b_shape[2] = {2, 4};
  cfx_tensor *a = NULL, *b = NULL, *c = (cfx_tensor *)0x1;
  CHECK_OK(cfx_tensor_ones(a_shape, 2, CFX_FLOAT32, CFX_CPU, &a));
  CHECK_OK(cfx_tensor_ones(b_shape, 2, CFX_FLOAT32, CFX_CPU, &b));
  int rc = cfx_tensor_add(a, b, 1, &c);
  CHECK(rc == CFX_ESHAPE);
  CHECK(c == (cfx_tensor *)0x1); /* out untouched on failure */
  CHECK_CONTAINS(cfx_last_error(), "add");
  CHECK_CONTAINS(cfx_last_error(), "float32[2, 3]");
  CHECK_CONTAINS(cfx_last_error(), "float32[2, 4]");
  CHECK(strcmp(cfx_strerror(CFX_ESHAPE), "shape mismatch") == 0);
  CHECK(strcmp(cfx_strerror(12345), "unknown error") == 0);

  CHECK(cfx_tensor_matmul(a, a, &c) == CFX_ESHAPE);
  CHECK(cfx_tensor_exp(NULL, &c) == CFX_EINVAL); /* NULL handles are errors, not crashes */
  CHECK(cfx_tensor_exp(a, NULL) == CFX_EINVAL);
  CHECK(cfx_tensor_zeros(a_shape, 2, 99, CFX_CPU, &c) == CFX_EINVAL);
  CHECK_CONTAINS(cfx_last_error(), "dtype");
  CHECK(cfx_tensor_zeros(a_shape, -1, CFX_FLOAT32, CFX_CPU, &c) == CFX_EINVAL);
  CHECK(cfx_tensor_select(a, 0, 7, &c) < 0);
  double v;
  CHECK(cfx_tensor_item(a, &v) == CFX_EINVAL);
  CHECK_CONTAINS(cfx_last_error(), "6 elements");
  cfx_tensor_free(a);
  cfx_tensor_free(b);
}

static void test_autograd(void) {
  int64_t n = 3;
  float xs[3] = {1, 2, 3}, g[3];
  cfx_tensor *x = NULL, *y = NULL, *s = NULL, *grad = NULL;
  CHECK_OK(cfx_tensor_from_data(xs, &n, 1, CFX_FLOAT32, &x));
  CHECK_OK(cfx_tensor_requires_grad_(x, 1));
  CHECK_OK(cfx_tensor_mul(x, x, &y));
  CHECK_OK(cfx_tensor_sum(y, NULL, 0, 0, &s));
  CHECK(cfx_tensor_backward(y, NULL, 0, 0) == CFX_EINVAL); /* non-scalar needs a gradient */
  CHECK_OK(cfx_tensor_backward(s, NULL, 0, 0));
  CHECK_OK(cfx_tensor_grad(x, &grad));
  CHECK(grad != NULL);
  CHECK_OK(cfx_tensor_copy_to(grad, g, sizeof g));
  CHECK(g[0] == 2 && g[1] == 4 && g[2] == 6);
  cfx_tensor_free(grad);
  CHECK_OK(cfx_tensor_zero_grad(x, 1));
  CHECK_OK(cfx_tensor_grad(x, &grad));
  CHECK(grad == NULL);

  /* grad mode is a per-thread flag that returns the previous value */
  CHECK(cfx_grad_is_enabled() == 1);
  CHECK(cfx_grad_set_enabled(0) == 1);
  cfx_tensor *z = NULL;
  CHECK_OK(cfx_tensor_mul(x, x, &z));
  CHECK(!cfx_tensor_requires_grad(z));
  CHECK(cfx_grad_set_enabled(1) == 0);
  cfx_tensor_free(z);
  cfx_tensor_free(s);
  cfx_tensor_free(y);
  cfx_tensor_free(x);
}

static void test_autocast(void) {
  int64_t shape[2] = {4, 4};
  cfx_tensor *a = NULL, *m = NULL;
  CHECK_OK(cfx_tensor_randn(shape, 2, CFX_FLOAT32, CFX_CPU, &a));
  CHECK(cfx_autocast_enter(CFX_CPU, CFX_FLOAT16) == CFX_EINVAL); /* CPU autocast is bf16 only */
  CHECK(cfx_autocast_exit(CFX_CPU) == CFX_EINVAL);                /* nothing to exit */
  CHECK_OK(cfx_autocast_enter(CFX_CPU, CFX_BFLOAT16));
  CHECK_OK(cfx_autocast_enter(CFX_CPU, CFX_BFLOAT16));
  CHECK_OK(cfx_autocast_exit(CFX_CPU));
  CHECK(cfx_autocast_is_enabled(CFX_CPU)); /* still inside the outer region */
  CHECK_OK(cfx_tensor_matmul(a, a, &m));
  CHECK(cfx_tensor_dtype(m) == CFX_BFLOAT16);
  CHECK_OK(cfx_autocast_exit(CFX_CPU));
  CHECK(!cfx_autocast_is_enabled(CFX_CPU));
  cfx_tensor_free(m);
  CHECK_OK(cfx_tensor_matmul(a, a, &m));
  CHECK(cfx_tensor_dtype(m) == CFX_FLOAT32);
  cfx_tensor_free(m);
  cfx_tensor_free(a);
}

static void test_rng(void) {
  int64_t n = 5;
  cfx_tensor *state = NULL, *a = NULL, *b = NULL;
  int eq = 0;
  CHECK_OK(cfx_manual_seed(42));
  CHECK_OK(cfx_get_rng_state(&state));
  CHECK_OK(cfx_tensor_randn(&n, 1, CFX_FLOAT32, CFX_CPU, &a));
  CHECK_OK(cfx_set_rng_state(state));
  CHECK_OK(cfx_tensor_randn(&n, 1, CFX_FLOAT32, CFX_CPU, &b));
  CHECK_OK(cfx_tensor_equal(a, b, &eq));
  CHECK(eq == 1);
  CHECK(cfx_set_rng_state(a) == CFX_EINVAL); /* not a state tensor */
  cfx_tensor_free(state);
  cfx_tensor_free(a);
  cfx_tensor_free(b);
}

static void test_memory_counter(void) {
  int64_t n = 1 << 20; /* 4 MiB of float32 */
  int64_t before = cfx_memory_live_bytes();
  cfx_tensor *t = NULL;
  CHECK_OK(cfx_tensor_empty(&n, 1, CFX_FLOAT32, CFX_CPU, &t));
  CHECK(cfx_memory_live_bytes() - before == 4 << 20);
  CHECK(cfx_memory_peak_bytes() >= cfx_memory_live_bytes());
  cfx_tensor_free(t);
  CHECK(cfx_memory_live_bytes() == before);
}

static void test_runtime(void) {
  CHECK_OK(cfx_set_num_threads(2));
  CHECK(cfx_get_num_threads() == 2);
  CHECK(cfx_set_num_threads(0) == CFX_EINVAL);
  CHECK(cfx_cpu_count() >= 1);
  CHECK(cfx_cuda_device_count() >= 0);
  CHECK(strlen(cfx_version()) >= 5);
  {
    /* a monotonic wall clock: it advances across a 20 ms sleep by about that much (CPU
     * time would not: the sleep uses none) */
    struct timespec ms20 = {0, 20 * 1000 * 1000};
    double t0 = cfx_clock();
    nanosleep(&ms20, NULL);
    double dt = cfx_clock() - t0;
    CHECK(dt >= 0.019 && dt < 5.0);
  }
  CHECK(cfx_dtype_size(CFX_BFLOAT16) == 2 && cfx_dtype_size(CFX_INT64) == 8 && cfx_dtype_size(42) == 0);
}

int main(void) {
  test_create_and_copy();
  test_blob();
  test_errors();
  test_autograd();
  test_autocast();
  test_rng();
  test_memory_counter();
  test_runtime();
  return check_summary("test_tensor");
}
