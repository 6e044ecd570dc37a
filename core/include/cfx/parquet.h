/* cfx/parquet.h: a strict reader for flat Parquet files.
 *
 * A cfx_parquet is one open file: the footer (schema, row groups, key/value metadata)
 * is decoded once by cfx_parquet_open, which maps the file read-only; column data is
 * decoded on demand, one column chunk (one column of one row group) at a time, into a
 * cfx_parquet_column the caller owns.  Memory therefore stays proportional to one
 * column chunk: an importer walks row group by row group, column by column, and reuses
 * one cfx_parquet_column, whose buffers are recycled from read to read.
 *
 * Supported: flat schemas (every column a top-level REQUIRED or OPTIONAL primitive);
 * every physical type; data pages v1 and v2 and dictionary pages; the encodings PLAIN,
 * PLAIN_DICTIONARY / RLE_DICTIONARY, RLE (booleans and levels), BIT_PACKED (levels),
 * DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and BYTE_STREAM_SPLIT;
 * codecs UNCOMPRESSED, SNAPPY, GZIP and ZSTD.  Refused with CFX_EFORMAT and a message
 * naming the file, column and value: nested or repeated columns (at open), other codecs
 * and encodings (when the chunk is read), encrypted files, external column chunks.
 *
 * The file is outside input: every length, count and offset is checked against what
 * remains before use, a page may not claim more than 1 GiB, and one decoded column
 * chunk may not take more than cfx_parquet_set_max_bytes (default 4 GiB), so that a
 * dictionary or run-length "bomb" is refused before it is allocated.  A corrupt file
 * is an error, never a crash or a partial column reported as success.  (A file that is
 * truncated by someone else while it is mapped can still raise SIGBUS.)
 *
 * Ownership: strings returned by the getters belong to the handle and live until
 * cfx_parquet_close.  A cfx_parquet_column's buffers are malloc'd by cfx and released
 * by cfx_parquet_column_release.
 *
 * Threads: after open, a handle is read-only: any number of threads may call the
 * getters and cfx_parquet_read_column on one handle at the same time, each with its
 * own cfx_parquet_column.  cfx_parquet_set_max_bytes and cfx_parquet_close must not
 * race with other calls on the same handle. */
#ifndef CFX_PARQUET_H
#define CFX_PARQUET_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_parquet cfx_parquet;

/* Column types as cfx sees them (the Parquet physical type, plus STRING for a
 * BYTE_ARRAY annotated UTF8/STRING, ENUM or JSON). */
enum {
  CFX_PARQUET_BOOL = 1,       /* values: uint8_t 0/1 */
  CFX_PARQUET_INT32 = 2,      /* values: int32_t (also INT(8), INT(16), DATE, ...) */
  CFX_PARQUET_INT64 = 3,      /* values: int64_t (also timestamps) */
  CFX_PARQUET_INT96 = 4,      /* values: 12 raw bytes each (legacy timestamps) */
  CFX_PARQUET_FLOAT = 5,      /* values: float */
  CFX_PARQUET_DOUBLE = 6,     /* values: double */
  CFX_PARQUET_BYTES = 7,      /* offsets + data */
  CFX_PARQUET_STRING = 8,     /* offsets + data, UTF-8 as the writer declared (not checked) */
  CFX_PARQUET_FIXED_BYTES = 9 /* values: type_length raw bytes each */
};

/* Compression codecs, numbered as Parquet's CompressionCodec. */
enum {
  CFX_PARQUET_UNCOMPRESSED = 0,
  CFX_PARQUET_SNAPPY = 1,
  CFX_PARQUET_GZIP = 2,
  CFX_PARQUET_LZO = 3,
  CFX_PARQUET_BROTLI = 4,
  CFX_PARQUET_LZ4 = 5,
  CFX_PARQUET_ZSTD = 6,
  CFX_PARQUET_LZ4_RAW = 7
};

/* Default cap on the memory one decoded column chunk may take. */
#define CFX_PARQUET_DEFAULT_MAX_BYTES ((int64_t)4 << 30)

typedef struct cfx_parquet_column_info {
  const char *name;       /* owned by the handle */
  int32_t type;           /* CFX_PARQUET_* */
  int32_t physical_type;  /* Parquet's Type: 0 BOOLEAN 1 INT32 2 INT64 3 INT96 4 FLOAT 5 DOUBLE
                             6 BYTE_ARRAY 7 FIXED_LEN_BYTE_ARRAY */
  int32_t type_length;    /* bytes per value for FIXED_LEN_BYTE_ARRAY, else 0 */
  int32_t optional;       /* 1: OPTIONAL (may hold nulls), 0: REQUIRED */
  int32_t converted_type; /* Parquet's ConvertedType (0 UTF8, 5 DECIMAL, ...), -1 when absent */
  int32_t logical_type;   /* Parquet's LogicalType member id (1 STRING, 10 INTEGER, ...), 0 when absent */
} cfx_parquet_column_info;

typedef struct cfx_parquet_chunk_info {
  int32_t codec;             /* CFX_PARQUET_UNCOMPRESSED ... (values past LZ4_RAW are possible) */
  int32_t has_dictionary;    /* 1 when the chunk starts with a dictionary page */
  int64_t num_values;        /* as the metadata says */
  int64_t offset;            /* file offset of the chunk's first page */
  int64_t compressed_size;   /* bytes of the chunk in the file */
  int64_t uncompressed_size; /* as the metadata says */
} cfx_parquet_chunk_info;

/* One decoded column chunk.  Zero-initialise it before the first read ({0} in C,
 * ffi.new in LuaJIT); later reads reuse its buffers (keep one per column when walking
 * row groups: a read frees the buffers its type does not use).  Value i is null when
 * validity is non-NULL and validity[i] == 0; a null's slot in values is zero-filled
 * and its byte range is empty. */
typedef struct cfx_parquet_column {
  int32_t type;   /* CFX_PARQUET_* */
  int32_t width;  /* bytes per value in values: 1 BOOL, 4, 8, 12 INT96, type_length; 0 for BYTES/STRING */
  int64_t length; /* number of values = rows of the row group */
  int64_t null_count;
  void *values;         /* fixed-width types: length * width bytes; NULL for BYTES/STRING */
  int64_t *offsets;     /* BYTES/STRING: length + 1 offsets, value i = data[offsets[i] .. offsets[i+1]) */
  uint8_t *data;        /* BYTES/STRING: offsets[length] bytes, not NUL-terminated */
  uint8_t *validity;    /* OPTIONAL columns: length bytes, 1 = present, 0 = null; NULL when REQUIRED */
  int64_t capacity_[4]; /* private: allocated sizes of values, offsets, data, validity */
} cfx_parquet_column;

/* Open and map path read-only, decode and check its footer. */
CFX_API int cfx_parquet_open(const char *path, cfx_parquet **out);
/* The same over n bytes in memory, which must stay valid and unchanged until close;
 * name (may be NULL: "<memory>") is used in error messages. */
CFX_API int cfx_parquet_open_memory(const uint8_t *buf, int64_t n, const char *name, cfx_parquet **out);
/* Unmap and free (NULL is fine). */
CFX_API void cfx_parquet_close(cfx_parquet *pq);
/* Cap the bytes one decoded column chunk (values, offsets, data, validity) may take;
 * 0 restores CFX_PARQUET_DEFAULT_MAX_BYTES. */
CFX_API int cfx_parquet_set_max_bytes(cfx_parquet *pq, int64_t max_bytes);

/* Rows in the file (or a negative CFX_E* for a NULL handle). */
CFX_API int64_t cfx_parquet_num_rows(const cfx_parquet *pq);
/* Row groups in the file (or a negative CFX_E*). */
CFX_API int32_t cfx_parquet_num_row_groups(const cfx_parquet *pq);
/* Rows in row group rg (or CFX_EINVAL when rg is out of range). */
CFX_API int64_t cfx_parquet_row_group_num_rows(const cfx_parquet *pq, int32_t rg);
/* Columns in the file (or a negative CFX_E*). */
CFX_API int32_t cfx_parquet_num_columns(const cfx_parquet *pq);
/* Name of column col (NULL when out of range). */
CFX_API const char *cfx_parquet_column_name(const cfx_parquet *pq, int32_t col);
/* CFX_PARQUET_* type of column col (or CFX_EINVAL). */
CFX_API int32_t cfx_parquet_column_type(const cfx_parquet *pq, int32_t col);
/* Index of the first column named name (or CFX_ENOTFOUND). */
CFX_API int32_t cfx_parquet_column_index(const cfx_parquet *pq, const char *name);
/* Schema facts about column col. */
CFX_API int cfx_parquet_column_describe(const cfx_parquet *pq, int32_t col, cfx_parquet_column_info *out);
/* Storage facts about the chunk of column col in row group rg. */
CFX_API int cfx_parquet_chunk_describe(const cfx_parquet *pq, int32_t rg, int32_t col,
                                       cfx_parquet_chunk_info *out);

/* The writer's created_by string ("" when absent). */
CFX_API const char *cfx_parquet_created_by(const cfx_parquet *pq);
/* Entries of the file's key/value metadata (or a negative CFX_E*). */
CFX_API int32_t cfx_parquet_num_metadata(const cfx_parquet *pq);
/* Key of entry i (NULL when out of range). */
CFX_API const char *cfx_parquet_metadata_key(const cfx_parquet *pq, int32_t i);
/* Value of entry i, NUL-terminated, its byte length in *len (len may be NULL); NULL
 * when out of range or when the entry has no value. */
CFX_API const char *cfx_parquet_metadata_value(const cfx_parquet *pq, int32_t i, int64_t *len);
/* Value of the first entry whose key is key, as cfx_parquet_metadata_value. */
CFX_API const char *cfx_parquet_metadata_find(const cfx_parquet *pq, const char *key, int64_t *len);

/* Decode the chunk of column col in row group rg into out (see cfx_parquet_column).
 * On failure out is released and the message names file, row group, column, page. */
CFX_API int cfx_parquet_read_column(const cfx_parquet *pq, int32_t rg, int32_t col, cfx_parquet_column *out);
/* Free a column's buffers and zero it (NULL and released columns are fine). */
CFX_API void cfx_parquet_column_release(cfx_parquet_column *col);

/* "BOOL", "INT32", ..., "STRING" ("UNKNOWN" for other values). */
CFX_API const char *cfx_parquet_type_name(int32_t type);
/* "UNCOMPRESSED", "SNAPPY", ... ("UNKNOWN" for other values). */
CFX_API const char *cfx_parquet_codec_name(int32_t codec);

#ifdef __cplusplus
}
#endif
#endif
