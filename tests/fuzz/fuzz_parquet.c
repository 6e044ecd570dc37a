/* fuzz_parquet.c: libFuzzer target for the Parquet reader (cfx/parquet.h) on outside
 * bytes.  Build and run: see tests/fuzz/README.md.
 *
 * Each input is opened with cfx_parquet_open_memory; when it opens, every getter is
 * called and every column chunk of every row group is decoded into one reused
 * cfx_parquet_column under a 64 MiB cap (so that dictionary and run-length "bombs"
 * are refused instead of exhausting memory), and every byte of the result is read.
 * Crashes, sanitizer reports and leaks are findings; so are broken promises of the
 * API, which abort:
 *   - a failure returns a negative CFX_E* code, sets a message and leaves no handle or
 *     column behind;
 *   - a decoded chunk has one value per row of its row group, the column's type,
 *     a validity array exactly when the column is OPTIONAL with 0/1 bytes that agree
 *     with null_count, non-NULL buffers for its kind (values, or offsets and data)
 *     even when empty, and for byte arrays offsets that start at 0 and never decrease. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfx/parquet.h"

#define PROMISE(cond)                                                                      \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "fuzz_parquet: broken promise: %s (%s)\n", #cond, cfx_last_error()); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

static volatile uint64_t sink;

static void touch(const void *p, int64_t n) {
  const uint8_t *b = p;
  uint64_t s = 0;
  for (int64_t i = 0; i < n; i++) s += b[i];
  sink += s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfx_parquet *pq = (cfx_parquet *)1;
  int rc = cfx_parquet_open_memory(data, (int64_t)size, "fuzz", &pq);
  if (rc != 0) {
    PROMISE(rc < 0 && pq == NULL && cfx_last_error()[0] != '\0');
    return 0;
  }
  PROMISE(pq != NULL);
  PROMISE(cfx_parquet_set_max_bytes(pq, (int64_t)64 << 20) == 0);
  int32_t ncols = cfx_parquet_num_columns(pq), nrg = cfx_parquet_num_row_groups(pq);
  PROMISE(ncols >= 0 && nrg >= 0 && cfx_parquet_num_rows(pq) >= 0);
  touch(cfx_parquet_created_by(pq), (int64_t)strlen(cfx_parquet_created_by(pq)));
  for (int32_t i = 0; i < cfx_parquet_num_metadata(pq); i++) {
    int64_t len = 0;
    const char *k = cfx_parquet_metadata_key(pq, i), *v = cfx_parquet_metadata_value(pq, i, &len);
    PROMISE(k != NULL);
    touch(k, (int64_t)strlen(k));
    if (v) touch(v, len + 1);
  }
  cfx_parquet_column_info info[64];
  for (int32_t j = 0; j < ncols && j < 64; j++) {
    PROMISE(cfx_parquet_column_describe(pq, j, &info[j]) == 0);
    PROMISE(info[j].type >= CFX_PARQUET_BOOL && info[j].type <= CFX_PARQUET_FIXED_BYTES);
    PROMISE(cfx_parquet_column_index(pq, info[j].name) <= j);
  }
  cfx_parquet_column col;
  memset(&col, 0, sizeof col);
  for (int32_t g = 0; g < nrg; g++) {
    int64_t rows = cfx_parquet_row_group_num_rows(pq, g);
    PROMISE(rows >= 0);
    for (int32_t j = 0; j < ncols && j < 64; j++) {
      cfx_parquet_chunk_info ci;
      PROMISE(cfx_parquet_chunk_describe(pq, g, j, &ci) == 0);
      rc = cfx_parquet_read_column(pq, g, j, &col);
      if (rc != 0) {
        PROMISE(rc < 0 && cfx_last_error()[0] != '\0');
        PROMISE(col.values == NULL && col.offsets == NULL && col.data == NULL && col.validity == NULL);
        continue;
      }
      PROMISE(col.length == rows && col.type == info[j].type);
      PROMISE((col.validity != NULL) == (info[j].optional != 0));
      int64_t nulls = 0;
      for (int64_t i = 0; col.validity && i < col.length; i++) {
        PROMISE(col.validity[i] <= 1);
        nulls += !col.validity[i];
      }
      PROMISE(nulls == col.null_count);
      if (col.type == CFX_PARQUET_BYTES || col.type == CFX_PARQUET_STRING) {
        PROMISE(col.offsets != NULL && col.offsets[0] == 0 && col.data != NULL && col.values == NULL);
        for (int64_t i = 0; i < col.length; i++) PROMISE(col.offsets[i + 1] >= col.offsets[i]);
        touch(col.data, col.offsets[col.length]);
      } else {
        PROMISE(col.width > 0 && col.values != NULL && col.offsets == NULL && col.data == NULL);
        touch(col.values, col.length * col.width);
      }
    }
  }
  cfx_parquet_column_release(&col);
  cfx_parquet_close(pq);
  return 0;
}
