/* cfx/safetensors.h: a strict reader and a writer for safetensors files.
 *
 * Format: an 8-byte little-endian header length N, then N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}          (metadata optional)
 * then the data area; offsets are relative to the first byte after the header.
 *
 * Reader: cfx_safetensors_open maps the file read-only; cfx_safetensors_open_memory
 * borrows a caller's buffer, which must outlive the handle.  The header is parsed once
 * by a parser written for exactly this grammar (objects, strings with escapes, integer
 * arrays; anything else is refused) and checked: N <= 100 MB and <= file size - 8,
 * known dtype, shape dims >= 0, begin <= end <= data size, end - begin ==
 * product(shape) * dtype size (overflow-checked), no duplicate names, no two data
 * regions overlap.  Every error is CFX_EFORMAT (or CFX_EDTYPE, CFX_ERANGE, CFX_ESHAPE,
 * CFX_EIO) with a message naming the file and the tensor.  Tensors are numbered in
 * header order.  Data pointers point into the mapping and may be unaligned (the format
 * does not promise alignment); a file truncated by someone else while mapped can still
 * raise SIGBUS.
 *
 * Writer: cfx_safetensors_write writes the header (metadata first, then tensors in the
 * given order with data laid out back to back in that order; compact JSON padded with
 * spaces to a multiple of 8 bytes, as the reference implementation does) and the data
 * to a temporary file next to the target, fsyncs it and renames it into place.
 *
 * Ownership and threads: strings, shapes and data pointers returned by the getters
 * belong to the handle and live until cfx_safetensors_close.  After open a handle is
 * read-only: any number of threads may call its getters; close must not race them. */
#ifndef CFX_SAFETENSORS_H
#define CFX_SAFETENSORS_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_safetensors cfx_safetensors;

/* Element types; the name in the file is the suffix (F8_E4M3 is "F8_E4M3"). */
enum {
  CFX_SAFETENSORS_F64 = 0,
  CFX_SAFETENSORS_F32 = 1,
  CFX_SAFETENSORS_F16 = 2,
  CFX_SAFETENSORS_BF16 = 3,
  CFX_SAFETENSORS_I64 = 4,
  CFX_SAFETENSORS_I32 = 5,
  CFX_SAFETENSORS_I16 = 6,
  CFX_SAFETENSORS_I8 = 7,
  CFX_SAFETENSORS_U8 = 8,
  CFX_SAFETENSORS_BOOL = 9,
  CFX_SAFETENSORS_U16 = 10,
  CFX_SAFETENSORS_U32 = 11,
  CFX_SAFETENSORS_U64 = 12,
  CFX_SAFETENSORS_F8_E4M3 = 13,
  CFX_SAFETENSORS_F8_E5M2 = 14,
  CFX_SAFETENSORS_NUM_DTYPES = 15
};

/* Largest header accepted (and written): 100 MB, as the reference implementation. */
enum { CFX_SAFETENSORS_MAX_HEADER = 100000000 };

/* The dtype's name in the file ("F32"), or NULL when dtype is not a CFX_SAFETENSORS_*. */
CFX_API const char *cfx_safetensors_dtype_name(int32_t dtype);
/* Bytes per element (1 for BOOL and the F8 types), or 0 when dtype is unknown. */
CFX_API int32_t cfx_safetensors_dtype_size(int32_t dtype);

/* ---- reading -------------------------------------------------------------------- */
/* Map and parse the file at path. */
CFX_API int cfx_safetensors_open(const char *path, cfx_safetensors **out);
/* Parse n bytes at buf (borrowed, must outlive the handle); name is for messages. */
CFX_API int cfx_safetensors_open_memory(const uint8_t *buf, int64_t n, const char *name,
                                        cfx_safetensors **out);
/* Unmap and free; accepts NULL. */
CFX_API void cfx_safetensors_close(cfx_safetensors *st);
/* Number of tensors (metadata not counted). */
CFX_API int32_t cfx_safetensors_count(const cfx_safetensors *st);
/* Index of the tensor called name, or -1. */
CFX_API int32_t cfx_safetensors_find(const cfx_safetensors *st, const char *name);
/* Tensor i's name (NULL when i is out of range). */
CFX_API const char *cfx_safetensors_name(const cfx_safetensors *st, int32_t i);
/* Tensor i's CFX_SAFETENSORS_* dtype (-1 when i is out of range). */
CFX_API int32_t cfx_safetensors_dtype(const cfx_safetensors *st, int32_t i);
/* Tensor i's number of dimensions (-1 when i is out of range). */
CFX_API int32_t cfx_safetensors_ndim(const cfx_safetensors *st, int32_t i);
/* Tensor i's ndim sizes (non-NULL even for a scalar; NULL when i is out of range). */
CFX_API const int64_t *cfx_safetensors_shape(const cfx_safetensors *st, int32_t i);
/* Tensor i's bytes inside the mapping; *nbytes = their count (NULL, 0 when out of range). */
CFX_API const void *cfx_safetensors_data(const cfx_safetensors *st, int32_t i, int64_t *nbytes);
/* Number of __metadata__ entries, and entry i's key and value (NULL when out of range). */
CFX_API int32_t cfx_safetensors_num_metadata(const cfx_safetensors *st);
CFX_API const char *cfx_safetensors_metadata_key(const cfx_safetensors *st, int32_t i);
CFX_API const char *cfx_safetensors_metadata_value(const cfx_safetensors *st, int32_t i);
/* The metadata value for key, or NULL. */
CFX_API const char *cfx_safetensors_metadata(const cfx_safetensors *st, const char *key);

/* ---- writing -------------------------------------------------------------------- */
/* Write n tensors (names[i], dtypes[i], shapes[i] of ndims[i] dims, data[i] of
 * product(shape) * dtype size bytes; data[i] may be NULL when that is 0) and nmeta
 * metadata pairs to path, atomically.  Names and keys must be distinct UTF-8, names
 * not "__metadata__".  On failure the target is untouched. */
CFX_API int cfx_safetensors_write(const char *path, int32_t n, const char *const *names,
                                  const int32_t *dtypes, const int64_t *const *shapes, const int32_t *ndims,
                                  const void *const *data, int32_t nmeta, const char *const *meta_keys,
                                  const char *const *meta_values);

#ifdef __cplusplus
}
#endif
#endif
