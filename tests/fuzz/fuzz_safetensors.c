/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (cfx/safetensors.h)
 * on outside bytes.  Build and run like the other targets (tests/fuzz/README.md):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
 *     -Icore/include -Icore/src -DCFX_BUILDING '-DCFX_VERSION_STRING="fuzz"' \
 *     tests/fuzz/fuzz_safetensors.c core/src/safetensors.c core/src/error.c -o /tmp/fuzz_safetensors
 *   /tmp/fuzz_safetensors -max_total_time=60
 *
 * Each input is opened with cfx_safetensors_open_memory; when it opens, every getter
 * is called and every byte of every tensor is read.  Crashes, sanitizer reports and
 * leaks are findings; so are broken promises of the API, which abort:
 *   - a failure returns a negative CFX_E* code, sets a message and leaves no handle;
 *   - an opened file's tensors have known dtypes, dims >= 0, byte lengths equal to
 *     product(shape) * dtype size, data inside the input, distinct names that find()
 *     maps back, and pairwise disjoint non-empty data regions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfx/safetensors.h"

#define PROMISE(cond)                                                                          \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "fuzz_safetensors: broken promise: %s (%s)\n", #cond, cfx_last_error()); \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfx_safetensors *st = (cfx_safetensors *)1;
  int rc = cfx_safetensors_open_memory(data, (int64_t)size, "fuzz", &st);
  if (rc != 0) {
    PROMISE(rc < 0 && st == NULL && cfx_last_error()[0] != '\0');
    return 0;
  }
  int32_t n = cfx_safetensors_count(st);
  PROMISE(n >= 0);
  const uint8_t *lo[256];
  int64_t len[256];
  for (int32_t i = 0; i < n; i++) {
    const char *name = cfx_safetensors_name(st, i);
    PROMISE(name != NULL && cfx_safetensors_find(st, name) == i);
    int32_t dt = cfx_safetensors_dtype(st, i), nd = cfx_safetensors_ndim(st, i);
    PROMISE(cfx_safetensors_dtype_size(dt) > 0 && nd >= 0);
    const int64_t *shape = cfx_safetensors_shape(st, i);
    PROMISE(shape != NULL);
    __int128 want = cfx_safetensors_dtype_size(dt);
    for (int32_t d = 0; d < nd; d++) {
      PROMISE(shape[d] >= 0);
      want *= shape[d];
      if (want > INT64_MAX) want = INT64_MAX; /* cannot match a real length below */
    }
    int64_t nb = -1;
    const uint8_t *p = cfx_safetensors_data(st, i, &nb);
    PROMISE(nb >= 0 && (__int128)nb == want && p >= data && p + nb <= data + size);
    uint64_t s = 0;
    for (int64_t k = 0; k < nb; k++) s += p[k];
    sink += s;
    if (i < 256) {
      lo[i] = p, len[i] = nb;
      for (int32_t j = 0; j < i; j++) {
        PROMISE(strcmp(cfx_safetensors_name(st, j), name) != 0);
        if (len[i] && len[j]) PROMISE(lo[i] + len[i] <= lo[j] || lo[j] + len[j] <= lo[i]);
      }
    }
  }
  PROMISE(cfx_safetensors_name(st, n) == NULL && cfx_safetensors_dtype(st, -1) == -1);
  for (int32_t i = 0; i < cfx_safetensors_num_metadata(st); i++) {
    const char *k = cfx_safetensors_metadata_key(st, i), *v = cfx_safetensors_metadata_value(st, i);
    PROMISE(k && v && cfx_safetensors_metadata(st, k) == v);
    sink += strlen(k) + strlen(v);
  }
  cfx_safetensors_close(st);
  return 0;
}
