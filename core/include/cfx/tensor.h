/* cfx/tensor.h: tensors, operators and autograd; a C ABI over libtorch.
 *
 * A cfx_tensor is an opaque, owning handle to one libtorch tensor.  Every function
 * that yields a tensor allocates a new handle in *out; the caller owns it and
 * releases it with cfx_tensor_free (which accepts NULL).  Views share storage with
 * their base, as in PyTorch.  Inputs are never consumed.
 *
 * Conventions: dimensions and indices are 0-based here (the Lua layer is 1-based);
 * negative dimensions count from the end.  Shapes are (const int64_t *dims, int ndim).
 * Scalars are doubles; an integral double is passed to libtorch as an integer so that
 * integer tensors stay integer.  A device is an int: CFX_CPU (-1) or a CUDA index >= 0.
 * Nullable tensor arguments are marked "may be NULL".
 *
 * Errors: 0 or a negative CFX_E* code; the message (op name, input shapes and dtypes,
 * libtorch's reason) is in cfx_last_error().  No libtorch exception ever crosses.
 *
 * Threads: handles may be used from any thread but one handle must not be mutated
 * (in-place ops, requires_grad_, backward) from two threads at once.  Grad mode and
 * autocast state are per thread, as in libtorch. */
#ifndef CFX_TENSOR_H
#define CFX_TENSOR_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_tensor cfx_tensor;

typedef enum cfx_dtype {
  CFX_UINT8 = 0,
  CFX_INT8 = 1,
  CFX_INT16 = 2,
  CFX_INT32 = 3,
  CFX_INT64 = 4,
  CFX_FLOAT16 = 5,
  CFX_FLOAT32 = 6,
  CFX_FLOAT64 = 7,
  CFX_BOOL = 8,
  CFX_BFLOAT16 = 9,
  CFX_DTYPE_COUNT = 10
} cfx_dtype;

enum { CFX_CPU = -1 };
enum { CFX_MAX_DIMS = 16 };

/* Reductions used by losses. */
enum { CFX_REDUCE_NONE = 0, CFX_REDUCE_MEAN = 1, CFX_REDUCE_SUM = 2 };
/* Padding modes for cfx_tensor_pad. */
enum { CFX_PAD_CONSTANT = 0, CFX_PAD_REFLECT = 1, CFX_PAD_REPLICATE = 2, CFX_PAD_CIRCULAR = 3 };
/* Interpolation modes for cfx_tensor_interpolate. */
enum { CFX_INTERP_NEAREST = 0, CFX_INTERP_BILINEAR = 1, CFX_INTERP_BICUBIC = 2, CFX_INTERP_AREA = 3 };
/* Which bounds cfx_tensor_clamp applies (bit set). */
enum { CFX_CLAMP_MIN = 1, CFX_CLAMP_MAX = 2 };

typedef void (*cfx_release_fn)(void *ctx);

/* ---- lifetime, creation ------------------------------------------------------ */
CFX_API void cfx_tensor_free(cfx_tensor *t);
/* Size in bytes of one element of dtype, or 0 for an unknown dtype. */
CFX_API int cfx_dtype_size(int dtype);
CFX_API int cfx_tensor_empty(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
CFX_API int cfx_tensor_zeros(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
CFX_API int cfx_tensor_ones(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
CFX_API int cfx_tensor_full(const int64_t *dims, int ndim, double value, int dtype, int device,
                            cfx_tensor **out);
/* Uniform on [0, 1). */
CFX_API int cfx_tensor_rand(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
/* Standard normal. */
CFX_API int cfx_tensor_randn(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
/* Integers uniform on [low, high). */
CFX_API int cfx_tensor_randint(int64_t low, int64_t high, const int64_t *dims, int ndim, int dtype,
                               int device, cfx_tensor **out);
/* A random permutation of 0..n-1. */
CFX_API int cfx_tensor_randperm(int64_t n, int dtype, int device, cfx_tensor **out);
/* start, start+step, ... up to but excluding end. */
CFX_API int cfx_tensor_arange(double start, double end, double step, int dtype, int device,
                              cfx_tensor **out);
/* A new CPU tensor holding a copy of ndim-dimensional row-major data of dtype. */
CFX_API int cfx_tensor_from_data(const void *data, const int64_t *dims, int ndim, int dtype,
                                 cfx_tensor **out);
/* A CPU tensor over the caller's memory, without copy.  strides may be NULL (row-major).
 * release(ctx) is called once the storage is no longer used (release may be NULL). */
CFX_API int cfx_tensor_from_blob(void *data, const int64_t *dims, const int64_t *strides, int ndim,
                                 int dtype, cfx_release_fn release, void *ctx, cfx_tensor **out);
/* A CPU tensor that takes ownership of malloc'd row-major memory (no copy): it is
 * counted in cfx_memory_live_bytes and freed with free() when the storage dies.  On
 * failure the memory is freed too. */
CFX_API int cfx_tensor_from_malloc(void *data, const int64_t *dims, int ndim, int dtype, cfx_tensor **out);
/* Copy the elements, row-major, in the tensor's dtype, to dst (CPU memory of nbytes;
 * nbytes must equal numel * dtype size).  Works for any device and layout. */
CFX_API int cfx_tensor_copy_to(const cfx_tensor *t, void *dst, int64_t nbytes);
/* Pointer to the first element of a CPU tensor (any layout: use the strides). */
CFX_API int cfx_tensor_data_ptr(const cfx_tensor *t, void **out);
/* A second handle to the same tensor (not a copy: shares data, grad and autograd state). */
CFX_API int cfx_tensor_alias(const cfx_tensor *t, cfx_tensor **out);

/* ---- queries (never fail on a valid handle) ---------------------------------- */
CFX_API int cfx_tensor_ndim(const cfx_tensor *t);
/* Writes up to cap sizes to dims; returns ndim. */
CFX_API int cfx_tensor_shape(const cfx_tensor *t, int64_t *dims, int cap);
/* Writes up to cap strides (in elements) to strides; returns ndim. */
CFX_API int cfx_tensor_strides(const cfx_tensor *t, int64_t *strides, int cap);
CFX_API int64_t cfx_tensor_numel(const cfx_tensor *t);
CFX_API int cfx_tensor_dtype(const cfx_tensor *t);
CFX_API int cfx_tensor_device(const cfx_tensor *t);
CFX_API int cfx_tensor_is_contiguous(const cfx_tensor *t);
CFX_API int cfx_tensor_requires_grad(const cfx_tensor *t);
CFX_API int cfx_tensor_is_leaf(const cfx_tensor *t);
/* 1 when a and b are handles to the same tensor. */
CFX_API int cfx_tensor_is_same(const cfx_tensor *a, const cfx_tensor *b);
/* The value of a one-element tensor. */
CFX_API int cfx_tensor_item(const cfx_tensor *t, double *out);
CFX_API int cfx_tensor_item_int64(const cfx_tensor *t, int64_t *out);
/* *out = 1 when same shape and equal values (torch.equal). */
CFX_API int cfx_tensor_equal(const cfx_tensor *a, const cfx_tensor *b, int *out);
CFX_API int cfx_tensor_allclose(const cfx_tensor *a, const cfx_tensor *b, double rtol, double atol,
                                int *out);
/* A short description: "float32[2, 3] cpu". Writes at most cap bytes, NUL-terminated. */
CFX_API int cfx_tensor_describe(const cfx_tensor *t, char *buf, int cap);

/* ---- conversion --------------------------------------------------------------- */
/* dtype -1 keeps the dtype; copy forces a copy even when nothing changes. */
CFX_API int cfx_tensor_to(const cfx_tensor *t, int dtype, int device, int non_blocking, int copy,
                          cfx_tensor **out);
/* A copy of a CPU tensor in pinned (page-locked) memory, from which a copy to CUDA
 * with non_blocking runs asynchronously.  Without a visible CUDA device it is a
 * no-op: *out is a new handle to t itself (cfx_tensor_is_same(t, *out) is 1). */
CFX_API int cfx_tensor_pin_memory(const cfx_tensor *t, cfx_tensor **out);
/* 1 when t's memory is pinned (always 0 without a visible CUDA device). */
CFX_API int cfx_tensor_is_pinned(const cfx_tensor *t);
CFX_API int cfx_tensor_contiguous(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_clone(const cfx_tensor *t, cfx_tensor **out);

/* ---- views and indexing ------------------------------------------------------- */
CFX_API int cfx_tensor_reshape(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
CFX_API int cfx_tensor_view(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
CFX_API int cfx_tensor_permute(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
CFX_API int cfx_tensor_transpose(const cfx_tensor *t, int64_t dim0, int64_t dim1, cfx_tensor **out);
CFX_API int cfx_tensor_narrow(const cfx_tensor *t, int64_t dim, int64_t start, int64_t length,
                              cfx_tensor **out);
CFX_API int cfx_tensor_slice(const cfx_tensor *t, int64_t dim, int64_t start, int64_t end,
                             int64_t step, cfx_tensor **out);
CFX_API int cfx_tensor_select(const cfx_tensor *t, int64_t dim, int64_t index, cfx_tensor **out);
CFX_API int cfx_tensor_index_select(const cfx_tensor *t, int64_t dim, const cfx_tensor *index,
                                    cfx_tensor **out);
CFX_API int cfx_tensor_gather(const cfx_tensor *t, int64_t dim, const cfx_tensor *index,
                              cfx_tensor **out);
CFX_API int cfx_tensor_masked_fill(const cfx_tensor *t, const cfx_tensor *mask, double value,
                                   cfx_tensor **out);
CFX_API int cfx_tensor_unsqueeze(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
/* Removes all size-1 dimensions. */
CFX_API int cfx_tensor_squeeze(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_squeeze_dim(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
CFX_API int cfx_tensor_expand(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
CFX_API int cfx_tensor_repeat(const cfx_tensor *t, const int64_t *reps, int nreps, cfx_tensor **out);
CFX_API int cfx_tensor_flatten(const cfx_tensor *t, int64_t start_dim, int64_t end_dim,
                               cfx_tensor **out);
CFX_API int cfx_tensor_cat(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out);
CFX_API int cfx_tensor_stack(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out);
/* Splits into at most `chunks` pieces along dim; writes up to cap handles, *n = count. */
CFX_API int cfx_tensor_chunk(const cfx_tensor *t, int64_t chunks, int64_t dim, cfx_tensor **outs,
                             int cap, int *n);

/* ---- elementwise, broadcasting ----------------------------------------------- */
/* a + alpha * b */
CFX_API int cfx_tensor_add(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out);
/* a - alpha * b */
CFX_API int cfx_tensor_sub(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out);
CFX_API int cfx_tensor_mul(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_div(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_pow(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_maximum(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_minimum(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_add_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_sub_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_mul_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_div_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_pow_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
/* s - a, s / a, s ^ a */
CFX_API int cfx_tensor_rsub_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_rdiv_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_rpow_scalar(const cfx_tensor *a, double s, cfx_tensor **out);

/* In place: the result is written into t. */
CFX_API int cfx_tensor_add_(cfx_tensor *t, const cfx_tensor *b, double alpha);
CFX_API int cfx_tensor_sub_(cfx_tensor *t, const cfx_tensor *b, double alpha);
CFX_API int cfx_tensor_mul_(cfx_tensor *t, const cfx_tensor *b);
CFX_API int cfx_tensor_div_(cfx_tensor *t, const cfx_tensor *b);
CFX_API int cfx_tensor_add_scalar_(cfx_tensor *t, double s);
CFX_API int cfx_tensor_mul_scalar_(cfx_tensor *t, double s);
CFX_API int cfx_tensor_div_scalar_(cfx_tensor *t, double s);
CFX_API int cfx_tensor_copy_(cfx_tensor *t, const cfx_tensor *src);
CFX_API int cfx_tensor_fill_(cfx_tensor *t, double value);
CFX_API int cfx_tensor_zero_(cfx_tensor *t);
CFX_API int cfx_tensor_clamp_(cfx_tensor *t, double lo, double hi, int which);
/* t += value * a * b;  t += value * a / b;  t += weight * (end - t) */
CFX_API int cfx_tensor_addcmul_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value);
CFX_API int cfx_tensor_addcdiv_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value);
CFX_API int cfx_tensor_lerp_(cfx_tensor *t, const cfx_tensor *end, double weight);
CFX_API int cfx_tensor_uniform_(cfx_tensor *t, double lo, double hi);
CFX_API int cfx_tensor_normal_(cfx_tensor *t, double mean, double std);

/* Comparisons yield bool tensors. */
CFX_API int cfx_tensor_eq(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_ne(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_lt(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_le(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_gt(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_ge(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_eq_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_ne_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_lt_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_le_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_gt_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_ge_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
CFX_API int cfx_tensor_logical_and(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_logical_or(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_where(const cfx_tensor *cond, const cfx_tensor *a, const cfx_tensor *b,
                             cfx_tensor **out);
/* which: CFX_CLAMP_MIN and/or CFX_CLAMP_MAX. */
CFX_API int cfx_tensor_clamp(const cfx_tensor *t, double lo, double hi, int which, cfx_tensor **out);

/* Unary. */
CFX_API int cfx_tensor_neg(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_exp(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_log(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_log1p(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_sqrt(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_rsqrt(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_abs(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_sign(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_floor(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_ceil(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_round(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_sin(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_cos(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_tanh(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_sigmoid(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_erf(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_reciprocal(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_square(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_relu(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_silu(const cfx_tensor *t, cfx_tensor **out);
/* approximate: 0 exact (erf), 1 tanh approximation. */
CFX_API int cfx_tensor_gelu(const cfx_tensor *t, int approximate, cfx_tensor **out);
CFX_API int cfx_tensor_logical_not(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_isnan(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_isfinite(const cfx_tensor *t, cfx_tensor **out);

/* ---- reductions: ndim == 0 (dims may be NULL) reduces over every dimension ---- */
CFX_API int cfx_tensor_sum(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
                           cfx_tensor **out);
CFX_API int cfx_tensor_mean(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
                            cfx_tensor **out);
/* correction 1 = unbiased (PyTorch's default), 0 = population. */
CFX_API int cfx_tensor_var(const cfx_tensor *t, const int64_t *dims, int ndim, int64_t correction,
                           int keepdim, cfx_tensor **out);
CFX_API int cfx_tensor_std(const cfx_tensor *t, const int64_t *dims, int ndim, int64_t correction,
                           int keepdim, cfx_tensor **out);
CFX_API int cfx_tensor_prod(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_norm(const cfx_tensor *t, double p, const int64_t *dims, int ndim, int keepdim,
                            cfx_tensor **out);
CFX_API int cfx_tensor_logsumexp(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
                                 cfx_tensor **out);
CFX_API int cfx_tensor_cumsum(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
/* Over all elements. */
CFX_API int cfx_tensor_max_all(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_min_all(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_argmax_all(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_argmin_all(const cfx_tensor *t, cfx_tensor **out);
/* Along one dimension: values and int64 indices. */
CFX_API int cfx_tensor_max(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values,
                           cfx_tensor **indices);
CFX_API int cfx_tensor_min(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values,
                           cfx_tensor **indices);
CFX_API int cfx_tensor_argmax(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out);
CFX_API int cfx_tensor_argmin(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out);
CFX_API int cfx_tensor_topk(const cfx_tensor *t, int64_t k, int64_t dim, int largest, int sorted,
                            cfx_tensor **values, cfx_tensor **indices);
CFX_API int cfx_tensor_sort(const cfx_tensor *t, int64_t dim, int descending, int stable,
                            cfx_tensor **values, cfx_tensor **indices);

/* ---- linear algebra ------------------------------------------------------------ */
CFX_API int cfx_tensor_matmul(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_mm(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
CFX_API int cfx_tensor_bmm(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
/* x @ w^T + b; bias may be NULL. */
CFX_API int cfx_tensor_linear(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias,
                              cfx_tensor **out);
/* beta * input + alpha * (a @ b) */
CFX_API int cfx_tensor_addmm(const cfx_tensor *input, const cfx_tensor *a, const cfx_tensor *b,
                             double beta, double alpha, cfx_tensor **out);

/* ---- neural-network ops (NCHW); pair arguments are int64_t[2] ------------------ */
/* bias may be NULL. */
CFX_API int cfx_tensor_conv2d(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias,
                              const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                              int64_t groups, cfx_tensor **out);
CFX_API int cfx_tensor_conv_transpose2d(const cfx_tensor *x, const cfx_tensor *w,
                                        const cfx_tensor *bias, const int64_t *stride,
                                        const int64_t *padding, const int64_t *output_padding,
                                        int64_t groups, const int64_t *dilation, cfx_tensor **out);
CFX_API int cfx_tensor_max_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride,
                                  const int64_t *padding, const int64_t *dilation, int ceil_mode,
                                  cfx_tensor **out);
CFX_API int cfx_tensor_avg_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride,
                                  const int64_t *padding, int ceil_mode, int count_include_pad,
                                  cfx_tensor **out);
CFX_API int cfx_tensor_adaptive_avg_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out);
CFX_API int cfx_tensor_adaptive_max_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out);
/* weight, bias may be NULL. */
CFX_API int cfx_tensor_layer_norm(const cfx_tensor *x, const int64_t *normalized_shape, int n,
                                  const cfx_tensor *weight, const cfx_tensor *bias, double eps,
                                  cfx_tensor **out);
/* weight, bias, running_mean, running_var may be NULL; running stats are updated in
 * place when training. */
CFX_API int cfx_tensor_batch_norm(const cfx_tensor *x, const cfx_tensor *weight,
                                  const cfx_tensor *bias, cfx_tensor *running_mean,
                                  cfx_tensor *running_var, int training, double momentum,
                                  double eps, cfx_tensor **out);
CFX_API int cfx_tensor_group_norm(const cfx_tensor *x, int64_t groups, const cfx_tensor *weight,
                                  const cfx_tensor *bias, double eps, cfx_tensor **out);
CFX_API int cfx_tensor_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out);
CFX_API int cfx_tensor_log_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out);
CFX_API int cfx_tensor_dropout(const cfx_tensor *x, double p, int training, cfx_tensor **out);
/* softmax(q k^T * scale + mask) v over the last two dims.  mask may be NULL (bool:
 * true = keep; float: added).  scale <= 0 means 1/sqrt(head_dim). */
CFX_API int cfx_tensor_scaled_dot_product_attention(const cfx_tensor *q, const cfx_tensor *k,
                                                    const cfx_tensor *v, const cfx_tensor *mask,
                                                    double dropout_p, int is_causal, double scale,
                                                    cfx_tensor **out);
/* weight, pos_weight may be NULL; reduction is CFX_REDUCE_*. */
CFX_API int cfx_tensor_binary_cross_entropy_with_logits(const cfx_tensor *x, const cfx_tensor *target,
                                                        const cfx_tensor *weight,
                                                        const cfx_tensor *pos_weight, int reduction,
                                                        cfx_tensor **out);
/* target: int64 class indices. */
CFX_API int cfx_tensor_cross_entropy(const cfx_tensor *x, const cfx_tensor *target, int reduction,
                                     cfx_tensor **out);
CFX_API int cfx_tensor_mse_loss(const cfx_tensor *x, const cfx_tensor *target, int reduction,
                                cfx_tensor **out);
/* pads as torch.nn.functional.pad: (last_lo, last_hi, prev_lo, prev_hi, ...). */
CFX_API int cfx_tensor_pad(const cfx_tensor *x, const int64_t *pads, int npads, int mode, double value,
                           cfx_tensor **out);
/* Resize the spatial dims (1 or 2 of them) to size[nsize]; mode is CFX_INTERP_*.
 * scales (nsize doubles, may be NULL): the scale factors that gave size, which set
 * the sampling grid as in torch's interpolate(scale_factor=...). */
CFX_API int cfx_tensor_interpolate(const cfx_tensor *x, const int64_t *size, int nsize, const double *scales,
                                   int mode, int align_corners, int antialias, cfx_tensor **out);

/* ---- random numbers --------------------------------------------------------------- */
/* libtorch's generators, named as torch.manual_seed / get_rng_state / set_rng_state (not
 * the xoshiro cfx_rng of augment.h, which the image pipelines seed per sample). */
/* Seeds the CPU generator and every CUDA generator. */
CFX_API int cfx_manual_seed(uint64_t seed);
/* The CPU generator's full state as a uint8 tensor (for checkpoints), and back. */
CFX_API int cfx_get_rng_state(cfx_tensor **out);
CFX_API int cfx_set_rng_state(const cfx_tensor *state);

/* ---- autograd ------------------------------------------------------------------- */
CFX_API int cfx_tensor_requires_grad_(cfx_tensor *t, int requires_grad);
/* grad may be NULL for a one-element t. */
CFX_API int cfx_tensor_backward(const cfx_tensor *t, const cfx_tensor *grad, int retain_graph,
                                int create_graph);
/* *out = NULL when t has no gradient. */
CFX_API int cfx_tensor_grad(const cfx_tensor *t, cfx_tensor **out);
/* grad may be NULL (clears it). */
CFX_API int cfx_tensor_set_grad(cfx_tensor *t, const cfx_tensor *grad);
/* set_to_none 1 drops the gradient; 0 fills it with zeros. */
CFX_API int cfx_tensor_zero_grad(cfx_tensor *t, int set_to_none);
CFX_API int cfx_tensor_detach(const cfx_tensor *t, cfx_tensor **out);
CFX_API int cfx_tensor_detach_(cfx_tensor *t);
/* Sets grad mode on this thread; returns the previous mode (0/1). */
CFX_API int cfx_grad_set_enabled(int enabled);
CFX_API int cfx_grad_is_enabled(void);

/* ---- autocast (mixed precision) ---------------------------------------------------- */
/* Enter an autocast region on this thread for device (CFX_CPU or a CUDA index) with
 * dtype (CFX_BFLOAT16 on CPU; CFX_FLOAT16 or CFX_BFLOAT16 on CUDA). Regions nest;
 * each exit restores the state before the matching enter. */
CFX_API int cfx_autocast_enter(int device, int dtype);
CFX_API int cfx_autocast_exit(int device);
CFX_API int cfx_autocast_is_enabled(int device);

/* ---- runtime --------------------------------------------------------------------- */
/* Intra-op threads for libtorch (n >= 1). */
CFX_API int cfx_set_num_threads(int n);
CFX_API int cfx_get_num_threads(void);
/* 1 when a CUDA device can be used (a CUDA build of libtorch and a visible GPU). */
CFX_API int cfx_cuda_is_available(void);
/* 1 when this libtorch build has CUDA at all (whether or not a GPU is visible). */
CFX_API int cfx_cuda_is_built(void);
CFX_API int cfx_cuda_device_count(void);
/* Bytes of CPU tensor storage currently allocated by libtorch in this process, and the
 * peak since start or the last reset.  Counted by cfx's CPU allocator. */
CFX_API int64_t cfx_memory_live_bytes(void);
CFX_API int64_t cfx_memory_peak_bytes(void);
CFX_API void cfx_memory_reset_peak(void);

#ifdef __cplusplus
}
#endif
#endif
