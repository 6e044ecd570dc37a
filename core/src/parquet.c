/* parquet.c: a strict reader for flat Parquet files (see cfx/parquet.h).
 *
 * Layout of a Parquet file: "PAR1", column chunks (each a run of pages: an optional
 * dictionary page, then data pages), the footer (a Thrift compact-protocol
 * FileMetaData), its 4-byte little-endian length, "PAR1".  Each page starts with a
 * Thrift PageHeader.  The Thrift decoder here knows only the fields it needs and skips
 * every other field (of any type, nested to at most PQ_MAX_DEPTH levels), so metadata
 * added by newer writers is harmless.
 *
 * Every length read from the file is checked against what remains of the enclosing
 * buffer (footer, column chunk, page) before it is used; counts are checked against
 * the row group and the bytes they need; output is budgeted by pq->max_bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerror_r (GNU) */
#endif
#include "cfx/parquet.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define PQ_MAX_FOOTER ((int64_t)256 << 20) /* footer (FileMetaData) bytes */
#define PQ_MAX_PAGE ((int64_t)1 << 30)     /* uncompressed bytes of one page */
#define PQ_MAX_DEPTH 64                    /* nesting of Thrift structs/lists we skip */
#define PQ_MAX_TYPE_LENGTH (1 << 24)       /* FIXED_LEN_BYTE_ARRAY width */
#define PQ_MAX_DELTA_BLOCK (1 << 20)       /* DELTA_BINARY_PACKED values per block */

/* Parquet enums (parquet.thrift). */
enum { T_BOOLEAN, T_INT32, T_INT64, T_INT96, T_FLOAT, T_DOUBLE, T_BYTE_ARRAY, T_FIXED };
enum { REP_REQUIRED, REP_OPTIONAL, REP_REPEATED };
enum {
  E_PLAIN = 0,
  E_PLAIN_DICTIONARY = 2,
  E_RLE = 3,
  E_BIT_PACKED = 4,
  E_DELTA_BINARY_PACKED = 5,
  E_DELTA_LENGTH_BYTE_ARRAY = 6,
  E_DELTA_BYTE_ARRAY = 7,
  E_RLE_DICTIONARY = 8,
  E_BYTE_STREAM_SPLIT = 9
};
enum { P_DATA = 0, P_INDEX = 1, P_DICTIONARY = 2, P_DATA_V2 = 3 };

static const char *physical_name(int t) {
  static const char *const names[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                                      "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
  return t >= 0 && t <= T_FIXED ? names[t] : "UNKNOWN";
}

static const char *encoding_name(int e) {
  static const char *const names[] = {
      "PLAIN",          "GROUP_VAR_INT",       "PLAIN_DICTIONARY",        "RLE",
      "BIT_PACKED",     "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
      "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
  return e >= 0 && e <= E_BYTE_STREAM_SPLIT ? names[e] : "UNKNOWN";
}

const char *cfx_parquet_codec_name(int32_t codec) {
  static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                      "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
  return codec >= 0 && codec <= CFX_PARQUET_LZ4_RAW ? names[codec] : "UNKNOWN";
}

const char *cfx_parquet_type_name(int32_t type) {
  static const char *const names[] = {"UNKNOWN", "BOOL",   "INT32", "INT64",  "INT96",
                                      "FLOAT",   "DOUBLE", "BYTES", "STRING", "FIXED_BYTES"};
  return type >= 1 && type <= CFX_PARQUET_FIXED_BYTES ? names[type] : "UNKNOWN";
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- Thrift compact protocol ---------------------------------------------------------- */

enum {
  CT_STOP = 0,
  CT_TRUE = 1,
  CT_FALSE = 2,
  CT_BYTE = 3,
  CT_I16 = 4,
  CT_I32 = 5,
  CT_I64 = 6,
  CT_DOUBLE = 7,
  CT_BINARY = 8,
  CT_LIST = 9,
  CT_SET = 10,
  CT_MAP = 11,
  CT_STRUCT = 12,
  CT_UUID = 13
};

/* A cursor over a Thrift buffer.  The first failure is kept in msg; after it every
 * read fails fast (p is moved to end), so callers may check once per field. */
typedef struct tr {
  const uint8_t *start, *p, *end;
  int failed;
  int64_t fail_at;
  char msg[160];
} tr;

static void tr_init(tr *t, const uint8_t *p, int64_t n) {
  t->start = t->p = p;
  t->end = p + n;
  t->failed = 0;
  t->fail_at = 0;
  t->msg[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static int tr_fail(tr *t, const char *fmt, ...) {
  if (!t->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->failed = 1;
    t->fail_at = t->p - t->start;
  }
  t->p = t->end;
  return -1;
}

static int64_t tr_left(const tr *t) {
  return t->end - t->p;
}

static uint64_t tr_varint(tr *t) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (t->p >= t->end) {
      tr_fail(t, "truncated varint");
      return 0;
    }
    uint8_t b = *t->p++;
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  tr_fail(t, "varint longer than 10 bytes");
  return 0;
}

static int64_t tr_zigzag(tr *t) {
  uint64_t v = tr_varint(t);
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int32_t tr_i32(tr *t) {
  int64_t v = tr_zigzag(t);
  if (v < INT32_MIN || v > INT32_MAX) {
    tr_fail(t, "i32 value %lld out of range", (long long)v);
    return 0;
  }
  return (int32_t)v;
}

static int tr_binary(tr *t, const uint8_t **p, int64_t *n) {
  uint64_t len = tr_varint(t);
  if (t->failed) return -1;
  if (len > (uint64_t)tr_left(t))
    return tr_fail(t, "string of %llu bytes but %lld remain", (unsigned long long)len, (long long)tr_left(t));
  if (p) *p = t->p;
  if (n) *n = (int64_t)len;
  t->p += len;
  return 0;
}

/* List/set header: element type and count; every element takes at least one byte, so
 * the count is capped by the bytes that remain. */
static int tr_list(tr *t, int *elem, int64_t *n) {
  if (t->p >= t->end) return tr_fail(t, "truncated list header");
  uint8_t b = *t->p++;
  uint64_t size = b >> 4;
  if (size == 15) size = tr_varint(t);
  if (t->failed) return -1;
  *elem = b & 0x0f;
  if (*elem == CT_STOP || *elem > CT_UUID) return tr_fail(t, "list of unknown element type %d", *elem);
  if (size > (uint64_t)tr_left(t))
    return tr_fail(t, "list of %llu elements but %lld bytes remain", (unsigned long long)size,
                   (long long)tr_left(t));
  *n = (int64_t)size;
  return 0;
}

/* Next field of a struct: 1 with *id and *type set, 0 at the end of the struct, -1 on
 * failure.  *last carries the previous field id (ids are delta-coded). */
static int tr_field(tr *t, int16_t *last, int16_t *id, int *type) {
  if (t->p >= t->end) return tr_fail(t, "truncated struct");
  uint8_t b = *t->p++;
  if (b == CT_STOP) return 0;
  *type = b & 0x0f;
  int delta = b >> 4;
  int64_t v = delta ? (int64_t)*last + delta : tr_zigzag(t);
  if (t->failed) return -1;
  if (v < INT16_MIN || v > INT16_MAX) return tr_fail(t, "field id %lld out of range", (long long)v);
  if (*type == CT_STOP || *type > CT_UUID)
    return tr_fail(t, "field %lld of unknown type %d", (long long)v, *type);
  *id = (int16_t)v;
  *last = *id;
  return 1;
}

static int tr_skip(tr *t, int type, int depth);

/* Skip one element of a list, set or map (booleans there are one byte). */
static int tr_skip_elem(tr *t, int type, int depth) {
  if (type == CT_TRUE || type == CT_FALSE) {
    if (t->p >= t->end) return tr_fail(t, "truncated bool");
    t->p++;
    return 0;
  }
  return tr_skip(t, type, depth);
}

/* Skip one value of wire type `type` whatever it holds. */
static int tr_skip(tr *t, int type, int depth) {
  if (depth > PQ_MAX_DEPTH) return tr_fail(t, "thrift structures nested deeper than %d", PQ_MAX_DEPTH);
  switch (type) {
    case CT_TRUE:
    case CT_FALSE:
      return 0; /* a struct field's bool lives in its type nibble */
    case CT_BYTE:
    case CT_DOUBLE:
    case CT_UUID: {
      int64_t n = type == CT_BYTE ? 1 : type == CT_DOUBLE ? 8 : 16;
      if (tr_left(t) < n) return tr_fail(t, "truncated value");
      t->p += n;
      return 0;
    }
    case CT_I16:
    case CT_I32:
    case CT_I64:
      tr_varint(t);
      return t->failed ? -1 : 0;
    case CT_BINARY:
      return tr_binary(t, NULL, NULL);
    case CT_LIST:
    case CT_SET: {
      int elem;
      int64_t n;
      if (tr_list(t, &elem, &n)) return -1;
      for (int64_t i = 0; i < n; i++)
        if (tr_skip_elem(t, elem, depth + 1)) return -1;
      return 0;
    }
    case CT_MAP: {
      uint64_t n = tr_varint(t);
      if (t->failed) return -1;
      if (n == 0) return 0;
      if (n > (uint64_t)tr_left(t) / 2)
        return tr_fail(t, "map of %llu entries overruns", (unsigned long long)n);
      if (t->p >= t->end) return tr_fail(t, "truncated map header");
      uint8_t kv = *t->p++;
      for (uint64_t i = 0; i < n; i++)
        if (tr_skip_elem(t, kv >> 4, depth + 1) || tr_skip_elem(t, kv & 0x0f, depth + 1)) return -1;
      return 0;
    }
    case CT_STRUCT: {
      int16_t last = 0, id;
      int ty, r;
      while ((r = tr_field(t, &last, &id, &ty)) == 1)
        if (tr_skip(t, ty, depth + 1)) return -1;
      return r;
    }
    default:
      return tr_fail(t, "unknown thrift type %d", type);
  }
}

/* A known field must have the wire type the spec gives it. */
static int tr_want(tr *t, const char *strct, int16_t id, int type, int want) {
  int ok = type == want || (want == CT_TRUE && type == CT_FALSE);
  if (!ok) return tr_fail(t, "%s field %d has thrift type %d, expected %d", strct, id, type, want);
  return 0;
}

static char *dup_bytes(const uint8_t *p, int64_t n) {
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  if (n) memcpy(s, p, (size_t)n);
  s[n] = '\0';
  return s;
}

/* ---- the decoded footer ------------------------------------------------------------------- */

typedef struct pq_schema_el {
  const uint8_t *name;
  int64_t name_len;
  int has_name;
  int32_t type, type_length, repetition, num_children, converted, logical;
} pq_schema_el;

typedef struct pq_column {
  char *name;
  int32_t physical, type_length, repetition, converted, logical, type;
} pq_column;

typedef struct pq_chunk {
  int has_meta, external, encrypted;
  int32_t type, codec;
  int64_t npath;
  const uint8_t *path0;
  int64_t path0_len;
  int64_t num_values, total_uncompressed, total_compressed, data_page_offset, dict_page_offset;
  int64_t start; /* first page: the dictionary page when there is one */
} pq_chunk;

typedef struct pq_row_group {
  int64_t num_rows;
  int has_num_rows;
  int64_t ncols;
  pq_chunk *chunks;
} pq_row_group;

typedef struct pq_kv {
  char *key, *value;
  int64_t value_len;
} pq_kv;

struct cfx_parquet {
  const uint8_t *buf;
  int64_t size;
  void *map; /* munmap'd at close; NULL for cfx_parquet_open_memory */
  char *name;
  int64_t num_rows;
  int32_t ncols;
  pq_column *cols;
  int32_t nrg;
  pq_row_group *rgs;
  int32_t nkv;
  pq_kv *kv;
  char *created_by;
  int64_t max_bytes;
};

/* Decoding state of the footer: the schema as a flat list before it becomes columns. */
typedef struct footer {
  int64_t nschema;
  pq_schema_el *schema;
  int has_schema, has_num_rows, has_row_groups, has_kv, encrypted_algorithm;
  int64_t num_rows;
  int64_t nrg;
  pq_row_group *rgs;
  int64_t nkv;
  pq_kv *kv;
  char *created_by;
} footer;

static int parse_logical_type(tr *t, int32_t *kind) {
  int16_t last = 0, id;
  int ty, r;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    if (*kind == 0) *kind = id; /* a union: the one member set names the type */
    if (tr_skip(t, ty, 2)) return -1;
  }
  return r;
}

static int parse_schema_el(tr *t, pq_schema_el *e) {
  int16_t last = 0, id;
  int ty, r;
  e->type = e->repetition = e->converted = -1;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 1:
        if (tr_want(t, "SchemaElement", id, ty, CT_I32) == 0) e->type = tr_i32(t);
        break;
      case 2:
        if (tr_want(t, "SchemaElement", id, ty, CT_I32) == 0) e->type_length = tr_i32(t);
        break;
      case 3:
        if (tr_want(t, "SchemaElement", id, ty, CT_I32) == 0) e->repetition = tr_i32(t);
        break;
      case 4:
        if (tr_want(t, "SchemaElement", id, ty, CT_BINARY) == 0 && tr_binary(t, &e->name, &e->name_len) == 0)
          e->has_name = 1;
        break;
      case 5:
        if (tr_want(t, "SchemaElement", id, ty, CT_I32) == 0) e->num_children = tr_i32(t);
        break;
      case 6:
        if (tr_want(t, "SchemaElement", id, ty, CT_I32) == 0) e->converted = tr_i32(t);
        break;
      case 10:
        if (tr_want(t, "SchemaElement", id, ty, CT_STRUCT) == 0) parse_logical_type(t, &e->logical);
        break;
      default:
        tr_skip(t, ty, 2);
    }
    if (t->failed) return -1;
  }
  return r;
}

static int parse_column_meta(tr *t, pq_chunk *c) {
  int16_t last = 0, id;
  int ty, r, elem;
  int64_t n;
  int seen = 0;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 1:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I32) == 0) c->type = tr_i32(t), seen |= 1;
        break;
      case 3: /* path_in_schema: list<string> */
        if (tr_want(t, "ColumnMetaData", id, ty, CT_LIST) || tr_list(t, &elem, &n)) break;
        if (elem != CT_BINARY) {
          tr_fail(t, "path_in_schema is a list of type %d, expected strings", elem);
          break;
        }
        c->npath = n;
        for (int64_t i = 0; i < n && !t->failed; i++)
          tr_binary(t, i == 0 ? &c->path0 : NULL, i == 0 ? &c->path0_len : NULL);
        seen |= 2;
        break;
      case 4:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I32) == 0) c->codec = tr_i32(t), seen |= 4;
        break;
      case 5:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I64) == 0) c->num_values = tr_zigzag(t), seen |= 8;
        break;
      case 6:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I64) == 0) c->total_uncompressed = tr_zigzag(t);
        break;
      case 7:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I64) == 0) c->total_compressed = tr_zigzag(t), seen |= 16;
        break;
      case 9:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I64) == 0) c->data_page_offset = tr_zigzag(t), seen |= 32;
        break;
      case 11:
        if (tr_want(t, "ColumnMetaData", id, ty, CT_I64) == 0) c->dict_page_offset = tr_zigzag(t);
        break;
      default:
        tr_skip(t, ty, 4);
    }
    if (t->failed) return -1;
  }
  if (r == 0 && seen != 63)
    return tr_fail(t,
                   "ColumnMetaData lacks a required field (type, path_in_schema, codec, num_values, "
                   "total_compressed_size or data_page_offset)");
  return r;
}

static int parse_column_chunk(tr *t, pq_chunk *c) {
  int16_t last = 0, id;
  int ty, r;
  c->dict_page_offset = -1;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 1:
        c->external = 1;
        tr_skip(t, ty, 3);
        break;
      case 3:
        if (tr_want(t, "ColumnChunk", id, ty, CT_STRUCT) == 0 && parse_column_meta(t, c) == 0)
          c->has_meta = 1;
        break;
      case 8:
      case 9:
        c->encrypted = 1;
        tr_skip(t, ty, 3);
        break;
      default:
        tr_skip(t, ty, 3);
    }
    if (t->failed) return -1;
  }
  return r;
}

static int parse_row_group(tr *t, pq_row_group *g) {
  int16_t last = 0, id;
  int ty, r, elem;
  int64_t n;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 1:
        if (tr_want(t, "RowGroup", id, ty, CT_LIST) || tr_list(t, &elem, &n)) break;
        if (g->chunks) {
          tr_fail(t, "RowGroup has two column lists");
          break;
        }
        if (elem != CT_STRUCT) {
          tr_fail(t, "RowGroup columns is a list of type %d, expected structs", elem);
          break;
        }
        g->chunks = calloc((size_t)(n ? n : 1), sizeof *g->chunks);
        if (!g->chunks) {
          tr_fail(t, "out of memory for %lld column chunks", (long long)n);
          break;
        }
        g->ncols = n;
        for (int64_t i = 0; i < n && !t->failed; i++) parse_column_chunk(t, &g->chunks[i]);
        break;
      case 3:
        if (tr_want(t, "RowGroup", id, ty, CT_I64) == 0) g->num_rows = tr_zigzag(t), g->has_num_rows = 1;
        break;
      default:
        tr_skip(t, ty, 2);
    }
    if (t->failed) return -1;
  }
  if (r == 0 && (!g->chunks || !g->has_num_rows)) return tr_fail(t, "RowGroup lacks columns or num_rows");
  return r;
}

static int parse_kv(tr *t, pq_kv *kv) {
  int16_t last = 0, id;
  int ty, r;
  const uint8_t *p = NULL;
  int64_t n = 0;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    if ((id == 1 || id == 2) && ty == CT_BINARY) {
      if (tr_binary(t, &p, &n)) return -1;
      char **dst = id == 1 ? &kv->key : &kv->value;
      free(*dst);
      if (!(*dst = dup_bytes(p, n)))
        return tr_fail(t, "out of memory for a %lld-byte metadata string", (long long)n);
      if (id == 2) kv->value_len = n;
    } else if (tr_skip(t, ty, 2)) {
      return -1;
    }
  }
  if (r == 0 && !kv->key) return tr_fail(t, "KeyValue without a key");
  return r;
}

static int parse_file_meta(tr *t, footer *f) {
  int16_t last = 0, id;
  int ty, r, elem;
  int64_t n;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 2: /* schema */
        if (tr_want(t, "FileMetaData", id, ty, CT_LIST) || tr_list(t, &elem, &n)) break;
        if (f->has_schema || elem != CT_STRUCT) {
          tr_fail(t, f->has_schema ? "two schemas" : "schema is not a list of structs");
          break;
        }
        f->has_schema = 1;
        f->schema = calloc((size_t)(n ? n : 1), sizeof *f->schema);
        if (!f->schema) {
          tr_fail(t, "out of memory for %lld schema elements", (long long)n);
          break;
        }
        f->nschema = n;
        for (int64_t i = 0; i < n && !t->failed; i++) parse_schema_el(t, &f->schema[i]);
        break;
      case 3:
        if (tr_want(t, "FileMetaData", id, ty, CT_I64) == 0) f->num_rows = tr_zigzag(t), f->has_num_rows = 1;
        break;
      case 4: /* row_groups */
        if (tr_want(t, "FileMetaData", id, ty, CT_LIST) || tr_list(t, &elem, &n)) break;
        if (f->has_row_groups || elem != CT_STRUCT) {
          tr_fail(t, f->has_row_groups ? "two row group lists" : "row_groups is not a list of structs");
          break;
        }
        f->has_row_groups = 1;
        f->rgs = calloc((size_t)(n ? n : 1), sizeof *f->rgs);
        if (!f->rgs) {
          tr_fail(t, "out of memory for %lld row groups", (long long)n);
          break;
        }
        f->nrg = n;
        for (int64_t i = 0; i < n && !t->failed; i++) parse_row_group(t, &f->rgs[i]);
        break;
      case 5: /* key_value_metadata */
        if (tr_want(t, "FileMetaData", id, ty, CT_LIST) || tr_list(t, &elem, &n)) break;
        if (f->has_kv || elem != CT_STRUCT) {
          tr_fail(t, f->has_kv ? "two key/value lists" : "key_value_metadata is not a list of structs");
          break;
        }
        f->has_kv = 1;
        f->kv = calloc((size_t)(n ? n : 1), sizeof *f->kv);
        if (!f->kv) {
          tr_fail(t, "out of memory for %lld metadata entries", (long long)n);
          break;
        }
        f->nkv = n;
        for (int64_t i = 0; i < n && !t->failed; i++) parse_kv(t, &f->kv[i]);
        break;
      case 6: {
        const uint8_t *p = NULL;
        if (tr_want(t, "FileMetaData", id, ty, CT_BINARY) || tr_binary(t, &p, &n)) break;
        free(f->created_by);
        if (!(f->created_by = dup_bytes(p, n))) tr_fail(t, "out of memory");
        break;
      }
      case 8:
        f->encrypted_algorithm = 1;
        tr_skip(t, ty, 1);
        break;
      default:
        tr_skip(t, ty, 1);
    }
    if (t->failed) return -1;
  }
  if (r == 0 && (!f->has_schema || !f->has_num_rows || !f->has_row_groups))
    return tr_fail(t, "FileMetaData lacks schema, num_rows or row_groups");
  return r;
}

static void footer_free(footer *f) {
  free(f->schema);
  for (int64_t i = 0; i < f->nrg; i++) free(f->rgs[i].chunks);
  free(f->rgs);
  for (int64_t i = 0; i < f->nkv; i++) free(f->kv[i].key), free(f->kv[i].value);
  free(f->kv);
  free(f->created_by);
}

/* ---- open / close ----------------------------------------------------------------------- */

void cfx_parquet_close(cfx_parquet *pq) {
  if (!pq) return;
  if (pq->map) munmap(pq->map, (size_t)pq->size);
  for (int32_t i = 0; i < pq->ncols; i++) free(pq->cols[i].name);
  free(pq->cols);
  for (int32_t i = 0; i < pq->nrg; i++) free(pq->rgs[i].chunks);
  free(pq->rgs);
  for (int32_t i = 0; i < pq->nkv; i++) free(pq->kv[i].key), free(pq->kv[i].value);
  free(pq->kv);
  free(pq->created_by);
  free(pq->name);
  free(pq);
}

static int column_type_of(const pq_column *c) {
  switch (c->physical) {
    case T_BOOLEAN:
      return CFX_PARQUET_BOOL;
    case T_INT32:
      return CFX_PARQUET_INT32;
    case T_INT64:
      return CFX_PARQUET_INT64;
    case T_INT96:
      return CFX_PARQUET_INT96;
    case T_FLOAT:
      return CFX_PARQUET_FLOAT;
    case T_DOUBLE:
      return CFX_PARQUET_DOUBLE;
    case T_FIXED:
      return CFX_PARQUET_FIXED_BYTES;
    default: /* BYTE_ARRAY: ConvertedType UTF8 0 / ENUM 4 / JSON 19, LogicalType STRING 1 / ENUM 4 / JSON 12
              */
      if (c->converted == 0 || c->converted == 4 || c->converted == 19 || c->logical == 1 ||
          c->logical == 4 || c->logical == 12)
        return CFX_PARQUET_STRING;
      return CFX_PARQUET_BYTES;
  }
}

/* Turn the decoded footer into pq's columns and row groups, checking that the schema is
 * flat and that every chunk agrees with it and lies inside the file's data area. */
static int build(cfx_parquet *pq, footer *f, int64_t footer_start) {
  const char *name = pq->name;
  if (f->nschema < 1) return cfx__fail(CFX_EFORMAT, "%s: the schema is empty (no root element)", name);
  const pq_schema_el *root = &f->schema[0];
  if (root->num_children != f->nschema - 1) {
    /* a nested group somewhere: name the first one */
    for (int64_t i = 1; i < f->nschema; i++)
      if (f->schema[i].num_children > 0)
        return cfx__fail(CFX_EFORMAT,
                         "%s: column '%.*s' is a nested group of %d fields: only flat schemas are supported",
                         name, (int)(f->schema[i].name_len > 200 ? 200 : f->schema[i].name_len),
                         (const char *)f->schema[i].name, f->schema[i].num_children);
    return cfx__fail(CFX_EFORMAT, "%s: the schema root has %d children but %lld elements follow it", name,
                     root->num_children, (long long)(f->nschema - 1));
  }
  if (f->nschema - 1 > INT32_MAX) return cfx__fail(CFX_ERANGE, "%s: too many columns", name);
  pq->ncols = (int32_t)(f->nschema - 1);
  pq->cols = calloc((size_t)(pq->ncols ? pq->ncols : 1), sizeof *pq->cols);
  if (!pq->cols) return cfx__fail(CFX_ENOMEM, "%s: out of memory for %d columns", name, pq->ncols);
  for (int32_t i = 0; i < pq->ncols; i++) {
    const pq_schema_el *e = &f->schema[i + 1];
    pq_column *c = &pq->cols[i];
    if (!e->has_name) return cfx__fail(CFX_EFORMAT, "%s: schema element %d has no name", name, i + 1);
    if (!(c->name = dup_bytes(e->name, e->name_len))) return cfx__fail(CFX_ENOMEM, "%s: out of memory", name);
    if (e->num_children > 0)
      return cfx__fail(CFX_EFORMAT,
                       "%s: column '%s' is a nested group of %d fields: only flat schemas are supported",
                       name, c->name, e->num_children);
    if (e->repetition == REP_REPEATED)
      return cfx__fail(CFX_EFORMAT, "%s: column '%s' is REPEATED (a list): only flat schemas are supported",
                       name, c->name);
    if (e->repetition != REP_REQUIRED && e->repetition != REP_OPTIONAL)
      return cfx__fail(CFX_EFORMAT,
                       "%s: column '%s' has repetition type %d, expected 0 (REQUIRED) or 1 (OPTIONAL)", name,
                       c->name, e->repetition);
    if (e->type < T_BOOLEAN || e->type > T_FIXED)
      return cfx__fail(CFX_EFORMAT, "%s: column '%s' has physical type %d, expected 0..7", name, c->name,
                       e->type);
    if (e->type == T_FIXED && (e->type_length <= 0 || e->type_length > PQ_MAX_TYPE_LENGTH))
      return cfx__fail(CFX_EFORMAT, "%s: column '%s' is FIXED_LEN_BYTE_ARRAY of length %d, expected 1..%d",
                       name, c->name, e->type_length, PQ_MAX_TYPE_LENGTH);
    c->physical = e->type;
    c->type_length = e->type == T_FIXED ? e->type_length : 0;
    c->repetition = e->repetition;
    c->converted = e->converted;
    c->logical = e->logical;
    c->type = column_type_of(c);
  }
  if (f->num_rows < 0) return cfx__fail(CFX_EFORMAT, "%s: num_rows is %lld", name, (long long)f->num_rows);
  if (f->nrg > INT32_MAX) return cfx__fail(CFX_ERANGE, "%s: too many row groups", name);
  if (f->encrypted_algorithm)
    return cfx__fail(CFX_EFORMAT, "%s: encrypted columns (plaintext footer) are not supported", name);
  /* take ownership of the row groups and metadata */
  pq->nrg = (int32_t)f->nrg;
  pq->rgs = f->rgs;
  f->rgs = NULL;
  f->nrg = 0;
  pq->nkv = (int32_t)(f->nkv > INT32_MAX ? INT32_MAX : f->nkv);
  pq->kv = f->kv;
  for (int64_t i = pq->nkv; i < f->nkv; i++) free(f->kv[i].key), free(f->kv[i].value);
  f->kv = NULL;
  f->nkv = 0;
  pq->created_by = f->created_by;
  f->created_by = NULL;

  int64_t total = 0;
  for (int32_t g = 0; g < pq->nrg; g++) {
    pq_row_group *rg = &pq->rgs[g];
    if (rg->num_rows < 0 || rg->num_rows > INT64_MAX - total)
      return cfx__fail(CFX_EFORMAT, "%s: row group %d has %lld rows", name, g, (long long)rg->num_rows);
    total += rg->num_rows;
    if (rg->ncols != pq->ncols)
      return cfx__fail(CFX_EFORMAT, "%s: row group %d has %lld column chunks, the schema %d columns", name, g,
                       (long long)rg->ncols, pq->ncols);
    for (int32_t i = 0; i < pq->ncols; i++) {
      pq_chunk *c = &rg->chunks[i];
      const pq_column *col = &pq->cols[i];
      if (c->external)
        return cfx__fail(CFX_EFORMAT, "%s: row group %d, column '%s' lives in another file: not supported",
                         name, g, col->name);
      if (c->encrypted)
        return cfx__fail(CFX_EFORMAT, "%s: row group %d, column '%s' is encrypted: not supported", name, g,
                         col->name);
      if (!c->has_meta)
        return cfx__fail(CFX_EFORMAT, "%s: row group %d, column '%s' has no ColumnMetaData", name, g,
                         col->name);
      if (c->type != col->physical)
        return cfx__fail(CFX_EFORMAT,
                         "%s: row group %d, column '%s' is stored as %s (%d) but the schema says %s", name, g,
                         col->name, physical_name(c->type), c->type, physical_name(col->physical));
      if (c->npath != 1 || c->path0_len != (int64_t)strlen(col->name) ||
          memcmp(c->path0, col->name, (size_t)c->path0_len) != 0)
        return cfx__fail(CFX_EFORMAT,
                         "%s: row group %d, chunk %d has a path_in_schema of %lld elements "
                         "starting '%.*s', expected ['%s']",
                         name, g, i, (long long)c->npath, (int)(c->path0_len > 200 ? 200 : c->path0_len),
                         c->path0 ? (const char *)c->path0 : "", col->name);
      if (c->num_values < 0 || c->total_compressed < 0)
        return cfx__fail(CFX_EFORMAT,
                         "%s: row group %d, column '%s': num_values %lld, total_compressed_size %lld", name,
                         g, col->name, (long long)c->num_values, (long long)c->total_compressed);
      c->start = c->data_page_offset;
      if (c->dict_page_offset > 0 && c->dict_page_offset < c->data_page_offset)
        c->start = c->dict_page_offset;
      if (c->start < 4 || c->start > footer_start || c->total_compressed > footer_start - c->start)
        return cfx__fail(
            CFX_EFORMAT,
            "%s: row group %d, column '%s': chunk at offset %lld of %lld bytes lies outside the data "
            "area [4, %lld)",
            name, g, col->name, (long long)c->start, (long long)c->total_compressed, (long long)footer_start);
    }
  }
  if (total != f->num_rows)
    return cfx__fail(CFX_EFORMAT, "%s: the footer says %lld rows but its row groups hold %lld", name,
                     (long long)f->num_rows, (long long)total);
  pq->num_rows = total;
  return 0;
}

static int open_buffer(const uint8_t *buf, int64_t n, const char *name, void *map, cfx_parquet **out) {
  if (n < 12)
    return cfx__fail(CFX_EFORMAT,
                     "%s: %lld bytes is too short for a Parquet file (at least 12: magic and footer)", name,
                     (long long)n);
  if (memcmp(buf, "PAR1", 4) != 0)
    return cfx__fail(CFX_EFORMAT, "%s: not a Parquet file: starts with %02x %02x %02x %02x, expected 'PAR1'",
                     name, buf[0], buf[1], buf[2], buf[3]);
  const uint8_t *tail = buf + n - 4;
  if (memcmp(tail, "PARE", 4) == 0)
    return cfx__fail(CFX_EFORMAT, "%s: encrypted footer ('PARE'): encrypted Parquet is not supported", name);
  if (memcmp(tail, "PAR1", 4) != 0)
    return cfx__fail(CFX_EFORMAT,
                     "%s: no 'PAR1' at the end of the file (ends %02x %02x %02x %02x): truncated?", name,
                     tail[0], tail[1], tail[2], tail[3]);
  int64_t flen = le32(buf + n - 8);
  if (flen == 0 || flen > n - 12)
    return cfx__fail(CFX_EFORMAT, "%s: footer length %lld does not fit the file of %lld bytes (at most %lld)",
                     name, (long long)flen, (long long)n, (long long)(n - 12));
  if (flen > PQ_MAX_FOOTER)
    return cfx__fail(CFX_ERANGE, "%s: footer of %lld bytes exceeds the cap of %lld", name, (long long)flen,
                     (long long)PQ_MAX_FOOTER);
  int64_t footer_start = n - 8 - flen;

  cfx_parquet *pq = calloc(1, sizeof *pq);
  if (!pq || !(pq->name = dup_bytes((const uint8_t *)name, (int64_t)strlen(name)))) {
    free(pq);
    return cfx__fail(CFX_ENOMEM, "%s: out of memory", name);
  }
  pq->buf = buf;
  pq->size = n;
  pq->max_bytes = CFX_PARQUET_DEFAULT_MAX_BYTES;

  footer f;
  memset(&f, 0, sizeof f);
  tr t;
  tr_init(&t, buf + footer_start, flen);
  int rc = 0;
  if (parse_file_meta(&t, &f) != 0)
    rc = cfx__fail(CFX_EFORMAT, "%s: malformed footer (FileMetaData): %s at byte %lld of %lld", name, t.msg,
                   (long long)t.fail_at, (long long)flen);
  else
    rc = build(pq, &f, footer_start);
  footer_free(&f);
  if (rc) {
    cfx_parquet_close(pq); /* map is still the caller's */
    return rc;
  }
  pq->map = map;
  *out = pq;
  return 0;
}

int cfx_parquet_open_memory(const uint8_t *buf, int64_t n, const char *name, cfx_parquet **out) {
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_parquet_open_memory: out is NULL");
  *out = NULL;
  if (!name) name = "<memory>";
  if (n < 0 || (!buf && n > 0))
    return cfx__fail(CFX_EINVAL, "cfx_parquet_open_memory: %s: bad buffer (%p, %lld bytes)", name,
                     (const void *)buf, (long long)n);
  return open_buffer(buf ? buf : (const uint8_t *)"", n, name, NULL, out);
}

int cfx_parquet_open(const char *path, cfx_parquet **out) {
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_parquet_open: out is NULL");
  *out = NULL;
  if (!path) return cfx__fail(CFX_EINVAL, "cfx_parquet_open: path is NULL");
  void *map;
  int64_t n;
  int rc = cfx__map_file(path, 12, "a Parquet file (at least 12: magic and footer)", &map, &n);
  if (rc) return rc;
  rc = open_buffer(map, n, path, map, out);
  if (rc) munmap(map, (size_t)n);
  return rc;
}

int cfx_parquet_set_max_bytes(cfx_parquet *pq, int64_t max_bytes) {
  if (!pq) return cfx__fail(CFX_EINVAL, "cfx_parquet_set_max_bytes: handle is NULL");
  if (max_bytes < 0)
    return cfx__fail(CFX_EINVAL, "cfx_parquet_set_max_bytes: %lld < 0", (long long)max_bytes);
  pq->max_bytes = max_bytes ? max_bytes : CFX_PARQUET_DEFAULT_MAX_BYTES;
  return 0;
}

/* ---- getters ------------------------------------------------------------------------------ */

#define PQ_CHECK(pq, fn) \
  if (!(pq)) return cfx__fail(CFX_EINVAL, "%s: handle is NULL", fn)

int64_t cfx_parquet_num_rows(const cfx_parquet *pq) {
  PQ_CHECK(pq, "cfx_parquet_num_rows");
  return pq->num_rows;
}

int32_t cfx_parquet_num_row_groups(const cfx_parquet *pq) {
  PQ_CHECK(pq, "cfx_parquet_num_row_groups");
  return pq->nrg;
}

int64_t cfx_parquet_row_group_num_rows(const cfx_parquet *pq, int32_t rg) {
  PQ_CHECK(pq, "cfx_parquet_row_group_num_rows");
  if (rg < 0 || rg >= pq->nrg)
    return cfx__fail(CFX_EINVAL, "%s: row group %d out of range (the file has %d)", pq->name, rg, pq->nrg);
  return pq->rgs[rg].num_rows;
}

int32_t cfx_parquet_num_columns(const cfx_parquet *pq) {
  PQ_CHECK(pq, "cfx_parquet_num_columns");
  return pq->ncols;
}

const char *cfx_parquet_column_name(const cfx_parquet *pq, int32_t col) {
  if (!pq || col < 0 || col >= pq->ncols) return NULL;
  return pq->cols[col].name;
}

int32_t cfx_parquet_column_type(const cfx_parquet *pq, int32_t col) {
  PQ_CHECK(pq, "cfx_parquet_column_type");
  if (col < 0 || col >= pq->ncols)
    return cfx__fail(CFX_EINVAL, "%s: column %d out of range (the file has %d)", pq->name, col, pq->ncols);
  return pq->cols[col].type;
}

int32_t cfx_parquet_column_index(const cfx_parquet *pq, const char *name) {
  PQ_CHECK(pq, "cfx_parquet_column_index");
  if (!name) return cfx__fail(CFX_EINVAL, "%s: column name is NULL", pq->name);
  for (int32_t i = 0; i < pq->ncols; i++)
    if (strcmp(pq->cols[i].name, name) == 0) return i;
  return cfx__fail(CFX_ENOTFOUND, "%s: no column named '%s'", pq->name, name);
}

int cfx_parquet_column_describe(const cfx_parquet *pq, int32_t col, cfx_parquet_column_info *out) {
  PQ_CHECK(pq, "cfx_parquet_column_describe");
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_parquet_column_describe: out is NULL");
  if (col < 0 || col >= pq->ncols)
    return cfx__fail(CFX_EINVAL, "%s: column %d out of range (the file has %d)", pq->name, col, pq->ncols);
  const pq_column *c = &pq->cols[col];
  out->name = c->name;
  out->type = c->type;
  out->physical_type = c->physical;
  out->type_length = c->type_length;
  out->optional = c->repetition == REP_OPTIONAL;
  out->converted_type = c->converted;
  out->logical_type = c->logical;
  return 0;
}

int cfx_parquet_chunk_describe(const cfx_parquet *pq, int32_t rg, int32_t col, cfx_parquet_chunk_info *out) {
  PQ_CHECK(pq, "cfx_parquet_chunk_describe");
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_parquet_chunk_describe: out is NULL");
  if (rg < 0 || rg >= pq->nrg || col < 0 || col >= pq->ncols)
    return cfx__fail(CFX_EINVAL, "%s: row group %d / column %d out of range (%d row groups, %d columns)",
                     pq->name, rg, col, pq->nrg, pq->ncols);
  const pq_chunk *c = &pq->rgs[rg].chunks[col];
  out->codec = c->codec;
  out->has_dictionary = c->start != c->data_page_offset;
  out->num_values = c->num_values;
  out->offset = c->start;
  out->compressed_size = c->total_compressed;
  out->uncompressed_size = c->total_uncompressed;
  return 0;
}

const char *cfx_parquet_created_by(const cfx_parquet *pq) {
  return pq && pq->created_by ? pq->created_by : "";
}

int32_t cfx_parquet_num_metadata(const cfx_parquet *pq) {
  PQ_CHECK(pq, "cfx_parquet_num_metadata");
  return pq->nkv;
}

const char *cfx_parquet_metadata_key(const cfx_parquet *pq, int32_t i) {
  if (!pq || i < 0 || i >= pq->nkv) return NULL;
  return pq->kv[i].key;
}

const char *cfx_parquet_metadata_value(const cfx_parquet *pq, int32_t i, int64_t *len) {
  if (len) *len = 0;
  if (!pq || i < 0 || i >= pq->nkv || !pq->kv[i].value) return NULL;
  if (len) *len = pq->kv[i].value_len;
  return pq->kv[i].value;
}

const char *cfx_parquet_metadata_find(const cfx_parquet *pq, const char *key, int64_t *len) {
  if (len) *len = 0;
  if (!pq || !key) return NULL;
  for (int32_t i = 0; i < pq->nkv; i++)
    if (strcmp(pq->kv[i].key, key) == 0) return cfx_parquet_metadata_value(pq, i, len);
  return NULL;
}

/* ---- page headers ------------------------------------------------------------------------- */

typedef struct page_header {
  int32_t type, uncompressed, compressed;
  int has_dp, has_dict, has_dp2;
  /* DataPageHeader */
  int32_t dp_num_values, dp_encoding, dp_def_encoding;
  /* DictionaryPageHeader */
  int32_t dict_num_values, dict_encoding;
  /* DataPageHeaderV2 */
  int32_t v2_num_values, v2_num_nulls, v2_num_rows, v2_encoding, v2_def_len, v2_rep_len, v2_is_compressed;
} page_header;

static int parse_i32_struct(tr *t, const char *what, int32_t *slots[], int nslots, unsigned *seen,
                            int32_t *bool_slot, int bool_id) {
  int16_t last = 0, id;
  int ty, r;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    if (id >= 1 && id <= nslots && slots[id - 1]) {
      if (tr_want(t, what, id, ty, CT_I32) == 0) *slots[id - 1] = tr_i32(t), *seen |= 1u << id;
    } else if (bool_slot && id == bool_id) {
      if (tr_want(t, what, id, ty, CT_TRUE) == 0) *bool_slot = ty == CT_TRUE;
    } else {
      tr_skip(t, ty, 3);
    }
    if (t->failed) return -1;
  }
  return r;
}

static int parse_page_header(tr *t, page_header *h) {
  int16_t last = 0, id;
  int ty, r;
  unsigned seen = 0;
  memset(h, 0, sizeof *h);
  h->v2_is_compressed = 1;
  while ((r = tr_field(t, &last, &id, &ty)) == 1) {
    switch (id) {
      case 1:
      case 2:
      case 3:
        if (tr_want(t, "PageHeader", id, ty, CT_I32) == 0) {
          int32_t v = tr_i32(t);
          *(id == 1 ? &h->type : id == 2 ? &h->uncompressed : &h->compressed) = v;
          seen |= 1u << id;
        }
        break;
      case 5: {
        int32_t *slots[] = {&h->dp_num_values, &h->dp_encoding, &h->dp_def_encoding, NULL};
        unsigned s = 0;
        if (tr_want(t, "PageHeader", id, ty, CT_STRUCT) == 0 &&
            parse_i32_struct(t, "DataPageHeader", slots, 4, &s, NULL, 0) == 0) {
          if ((s & 0xe) != 0xe)
            tr_fail(t, "DataPageHeader lacks num_values, encoding or definition_level_encoding");
          h->has_dp = 1;
        }
        break;
      }
      case 7: {
        int32_t *slots[] = {&h->dict_num_values, &h->dict_encoding};
        unsigned s = 0;
        if (tr_want(t, "PageHeader", id, ty, CT_STRUCT) == 0 &&
            parse_i32_struct(t, "DictionaryPageHeader", slots, 2, &s, NULL, 0) == 0) {
          if ((s & 0x6) != 0x6) tr_fail(t, "DictionaryPageHeader lacks num_values or encoding");
          h->has_dict = 1;
        }
        break;
      }
      case 8: {
        int32_t *slots[] = {&h->v2_num_values, &h->v2_num_nulls, &h->v2_num_rows,
                            &h->v2_encoding,   &h->v2_def_len,   &h->v2_rep_len};
        unsigned s = 0;
        if (tr_want(t, "PageHeader", id, ty, CT_STRUCT) == 0 &&
            parse_i32_struct(t, "DataPageHeaderV2", slots, 6, &s, &h->v2_is_compressed, 7) == 0) {
          if ((s & 0x7e) != 0x7e) tr_fail(t, "DataPageHeaderV2 lacks a required field");
          h->has_dp2 = 1;
        }
        break;
      }
      default:
        tr_skip(t, ty, 2);
    }
    if (t->failed) return -1;
  }
  if (r == 0 && (seen & 0xe) != 0xe)
    return tr_fail(t, "PageHeader lacks type, uncompressed_page_size or compressed_page_size");
  return r;
}

/* ---- bit unpacking, RLE/bit-packed hybrid, DELTA_BINARY_PACKED ---------------------------- */

/* bw (0..64) bits at bit position pos of p, LSB first; the caller has checked that
 * pos + bw <= 8 * n. */
static uint64_t get_bits(const uint8_t *p, int64_t n, uint64_t pos, int bw) {
  if (bw == 0) return 0;
  uint64_t byte = pos >> 3;
  unsigned sh = (unsigned)(pos & 7);
  uint64_t mask = bw == 64 ? ~(uint64_t)0 : ((uint64_t)1 << bw) - 1;
  if (byte + 8 <= (uint64_t)n && sh + (unsigned)bw <= 64) {
    uint64_t w = 0;
    for (int k = 7; k >= 0; k--) w = w << 8 | p[byte + (uint64_t)k];
    return (w >> sh) & mask;
  }
  uint64_t v = 0;
  int got = 0;
  while (got < bw) {
    unsigned off = (unsigned)(pos & 7);
    int take = 8 - (int)off;
    if (take > bw - got) take = bw - got;
    v |= (uint64_t)((p[pos >> 3] >> off) & ((1u << take) - 1)) << got;
    got += take;
    pos += (uint64_t)take;
  }
  return v;
}

/* Varint at p[*pos] within n bytes; -1 when truncated or over 10 bytes. */
static int get_varint(const uint8_t *p, int64_t n, int64_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*pos >= n) return -1;
    uint8_t b = p[(*pos)++];
    if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* count values of bw (0..32) bits from the RLE/bit-packed hybrid in p[0..n) into out.
 * *used gets the bytes consumed.  Returns 0, or -1 with *why set. */
static int rle_decode(const uint8_t *p, int64_t n, int bw, uint32_t *out, int64_t count, int64_t *used,
                      const char **why) {
  int64_t i = 0, pos = 0;
  int vbytes = (bw + 7) / 8;
  while (i < count) {
    uint64_t h;
    if (get_varint(p, n, &pos, &h)) {
      *why = "RLE/bit-packed data ends early";
      return -1;
    }
    int64_t need = count - i;
    if (h & 1) { /* bit-packed: (h >> 1) groups of 8 values */
      uint64_t groups = h >> 1;
      int64_t take = groups > (uint64_t)need / 8 + 1 ? need : (int64_t)groups * 8;
      if (take > need) take = need;
      int64_t avail = n - pos;
      if (((uint64_t)take * (uint64_t)bw + 7) / 8 > (uint64_t)avail) {
        *why = "bit-packed run overruns its buffer";
        return -1;
      }
      for (int64_t k = 0; k < take; k++)
        out[i + k] = (uint32_t)get_bits(p + pos, avail, (uint64_t)k * bw, bw);
      uint64_t run_bytes = groups > (uint64_t)avail ? (uint64_t)avail : groups * (uint64_t)bw;
      pos += run_bytes > (uint64_t)avail ? avail : (int64_t)run_bytes;
      i += take;
    } else { /* RLE: one value repeated (h >> 1) times */
      uint64_t run = h >> 1;
      if (vbytes > n - pos) {
        *why = "RLE run overruns its buffer";
        return -1;
      }
      uint32_t v = 0;
      for (int k = 0; k < vbytes; k++) v |= (uint32_t)p[pos + k] << (8 * k);
      pos += vbytes;
      if (bw < 32 && (v >> bw) != 0) {
        *why = "RLE value wider than its bit width";
        return -1;
      }
      int64_t take = run > (uint64_t)need ? need : (int64_t)run;
      for (int64_t k = 0; k < take; k++) out[i + k] = v;
      i += take;
    }
  }
  if (used) *used = pos;
  return 0;
}

/* DELTA_BINARY_PACKED from p[0..n): the header's value count must be count; values go to
 * out (wrapping 64-bit arithmetic; an INT32 column keeps the low 32 bits) and *used gets
 * the bytes consumed.  Returns 0 or -1 with *why set. */
static int dbp_decode(const uint8_t *p, int64_t n, int64_t count, int64_t *out, int64_t *used,
                      const char **why) {
  int64_t pos = 0;
  uint64_t block, nmini, total, zz;
  if (get_varint(p, n, &pos, &block) || get_varint(p, n, &pos, &nmini) || get_varint(p, n, &pos, &total) ||
      get_varint(p, n, &pos, &zz)) {
    *why = "DELTA_BINARY_PACKED header ends early";
    return -1;
  }
  if (block == 0 || block % 128 || block > PQ_MAX_DELTA_BLOCK || nmini == 0 || block % nmini ||
      (block / nmini) % 32) {
    *why = "DELTA_BINARY_PACKED block size / miniblock count is invalid";
    return -1;
  }
  if (total != (uint64_t)count) {
    *why = "DELTA_BINARY_PACKED value count differs from the page's";
    return -1;
  }
  uint64_t vpm = block / nmini;
  uint64_t prev = (zz >> 1) ^ -(zz & 1);
  if (count > 0) out[0] = (int64_t)prev;
  int64_t i = 1;
  while (i < count) {
    uint64_t md;
    if (get_varint(p, n, &pos, &md)) {
      *why = "DELTA_BINARY_PACKED block header ends early";
      return -1;
    }
    uint64_t min_delta = (md >> 1) ^ -(md & 1);
    if ((uint64_t)(n - pos) < nmini) {
      *why = "DELTA_BINARY_PACKED bit widths end early";
      return -1;
    }
    const uint8_t *widths = p + pos;
    pos += (int64_t)nmini;
    for (uint64_t m = 0; m < nmini && i < count; m++) {
      int bw = widths[m];
      if (bw > 64) {
        *why = "DELTA_BINARY_PACKED miniblock bit width over 64";
        return -1;
      }
      uint64_t bytes = vpm * (uint64_t)bw / 8;
      if (bytes > (uint64_t)(n - pos)) {
        *why = "DELTA_BINARY_PACKED miniblock overruns its page";
        return -1;
      }
      int64_t take = count - i < (int64_t)vpm ? count - i : (int64_t)vpm;
      for (int64_t k = 0; k < take; k++) {
        prev += min_delta + get_bits(p + pos, (int64_t)bytes, (uint64_t)k * bw, bw);
        out[i + k] = (int64_t)prev;
      }
      pos += (int64_t)bytes;
      i += take;
    }
  }
  *used = pos;
  return 0;
}

/* ---- reading a column chunk ----------------------------------------------------------------- */

typedef struct rd {
  const cfx_parquet *pq;
  const pq_column *col;
  const pq_chunk *ch;
  int32_t rg;
  int64_t page_at; /* file offset of the current page header, for messages */
  cfx_parquet_column *out;
  int64_t n, got; /* rows wanted, rows decoded */
  int width;      /* bytes per fixed-width value; 0 for byte arrays */
  int bytes;      /* BYTE_ARRAY column */
  int optional;
  int64_t fixed_bytes; /* values + offsets + validity, for the budget */
  int64_t data_len;    /* bytes used in out->data */
  /* dictionary */
  int have_dict;
  int64_t dict_n;
  uint8_t *dict_vals; /* fixed width: dict_n * width */
  int64_t *dict_off;  /* byte arrays: dict_n + 1 */
  uint8_t *dict_data;
  /* scratch */
  uint8_t *page;
  int64_t page_cap;
  uint32_t *idx;
  int64_t idx_cap;
  int64_t *ints;
  int64_t ints_cap;
  int64_t *ints2;
  int64_t ints2_cap;
  ZSTD_DCtx *zstd;
  int code; /* the CFX_E* of the first failure: helpers return -1 after rd_fail */
} rd;

__attribute__((format(printf, 3, 4))) static int rd_fail(rd *r, int code, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->code = code;
  if (r->page_at >= 0)
    return cfx__fail(code, "%s: row group %d, column '%s', page at offset %lld: %s", r->pq->name, r->rg,
                     r->col->name, (long long)r->page_at, msg);
  return cfx__fail(code, "%s: row group %d, column '%s': %s", r->pq->name, r->rg, r->col->name, msg);
}

/* realloc p to need bytes unless *cap already covers it; on failure *fail is set and p
 * returned unchanged. */
static void *grow_to(void *p, int64_t *cap, int64_t need, int *fail) {
  if (need <= *cap) return p;
  void *q = realloc(p, (size_t)(need ? need : 1));
  if (!q) {
    *fail = 1;
    return p;
  }
  *cap = need;
  return q;
}

static int scratch_u32(rd *r, int64_t n) {
  int fail = 0;
  r->idx = grow_to(r->idx, &r->idx_cap, n * (int64_t)sizeof(uint32_t), &fail);
  if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for %lld indices", (long long)n);
  return 0;
}

static int scratch_i64(rd *r, int64_t **p, int64_t *cap, int64_t n) {
  int fail = 0;
  *p = grow_to(*p, cap, n * (int64_t)sizeof(int64_t), &fail);
  if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for %lld integers", (long long)n);
  return 0;
}

/* Room for `more` bytes in out->data, within the budget. */
static int data_reserve(rd *r, int64_t more) {
  int64_t budget = r->pq->max_bytes - r->fixed_bytes;
  if (more < 0 || more > budget - r->data_len)
    return rd_fail(r, CFX_ERANGE,
                   "decoded values exceed the cap of %lld bytes per column chunk "
                   "(cfx_parquet_set_max_bytes)",
                   (long long)r->pq->max_bytes);
  int64_t need = r->data_len + more;
  if (need <= r->out->capacity_[2]) return 0;
  int64_t cap = r->out->capacity_[2] * 2;
  if (cap < need) cap = need;
  if (cap > budget) cap = budget;
  int fail = 0;
  r->out->data = grow_to(r->out->data, &r->out->capacity_[2], cap, &fail);
  if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for %lld bytes of values", (long long)cap);
  return 0;
}

static int data_append(rd *r, const uint8_t *p, int64_t n) {
  if (data_reserve(r, n)) return -1;
  if (n) memcpy(r->out->data + r->data_len, p, (size_t)n);
  r->data_len += n;
  return 0;
}

/* Decompress a page body into r->page (or point into the file for UNCOMPRESSED). */
static int decompress(rd *r, const uint8_t *src, int64_t n, int64_t un, const uint8_t **dst) {
  int codec = r->ch->codec;
  if (un < 0 || un > PQ_MAX_PAGE || un > r->pq->max_bytes)
    return rd_fail(r, CFX_ERANGE, "uncompressed page size %lld is out of range (0 .. %lld)", (long long)un,
                   (long long)(PQ_MAX_PAGE < r->pq->max_bytes ? PQ_MAX_PAGE : r->pq->max_bytes));
  if (codec == CFX_PARQUET_UNCOMPRESSED) {
    if (n != un)
      return rd_fail(r, CFX_EFORMAT, "UNCOMPRESSED page of %lld bytes claims %lld uncompressed bytes",
                     (long long)n, (long long)un);
    *dst = src;
    return 0;
  }
  if (codec != CFX_PARQUET_SNAPPY && codec != CFX_PARQUET_GZIP && codec != CFX_PARQUET_ZSTD)
    return rd_fail(r, CFX_EFORMAT,
                   "unsupported compression codec %s (%d); supported: UNCOMPRESSED, SNAPPY, GZIP, ZSTD",
                   cfx_parquet_codec_name(codec), codec);
  if (un == 0) { /* e.g. the empty values section of an all-null v2 page */
    *dst = src;
    return 0;
  }
  /* cheap checks of the codec's own size claims before allocating */
  if (codec == CFX_PARQUET_SNAPPY) {
    size_t len;
    if (snappy_uncompressed_length((const char *)src, (size_t)n, &len) != SNAPPY_OK)
      return rd_fail(r, CFX_EFORMAT, "corrupt SNAPPY data (no valid length header)");
    if ((int64_t)len != un)
      return rd_fail(r, CFX_EFORMAT, "SNAPPY data holds %zu bytes, the page header says %lld", len,
                     (long long)un);
  } else if (codec == CFX_PARQUET_ZSTD) {
    unsigned long long fcs = ZSTD_getFrameContentSize(src, (size_t)n);
    if (fcs == ZSTD_CONTENTSIZE_ERROR) return rd_fail(r, CFX_EFORMAT, "corrupt ZSTD data (not a zstd frame)");
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > (unsigned long long)un)
      return rd_fail(r, CFX_EFORMAT, "ZSTD frame holds %llu bytes, the page header says %lld", fcs,
                     (long long)un);
  } else if (un / 1032 > n + 64) { /* deflate cannot do better than about 1032:1 */
    return rd_fail(r, CFX_EFORMAT, "GZIP page of %lld bytes cannot hold %lld bytes", (long long)n,
                   (long long)un);
  }
  int fail = 0;
  r->page = grow_to(r->page, &r->page_cap, un, &fail);
  if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for a page of %lld bytes", (long long)un);
  if (codec == CFX_PARQUET_SNAPPY) {
    size_t len = (size_t)un;
    if (snappy_uncompress((const char *)src, (size_t)n, (char *)r->page, &len) != SNAPPY_OK ||
        (int64_t)len != un)
      return rd_fail(r, CFX_EFORMAT, "corrupt SNAPPY data");
  } else if (codec == CFX_PARQUET_ZSTD) {
    if (!r->zstd && !(r->zstd = ZSTD_createDCtx()))
      return rd_fail(r, CFX_ENOMEM, "out of memory for a ZSTD context");
    size_t got = ZSTD_decompressDCtx(r->zstd, r->page, (size_t)un, src, (size_t)n);
    if (ZSTD_isError(got)) return rd_fail(r, CFX_EFORMAT, "corrupt ZSTD data: %s", ZSTD_getErrorName(got));
    if ((int64_t)got != un)
      return rd_fail(r, CFX_EFORMAT, "ZSTD data holds %zu bytes, the page header says %lld", got,
                     (long long)un);
  } else {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 32 + 15) != Z_OK) return rd_fail(r, CFX_ENOMEM, "cannot start zlib");
    zs.next_in = (Bytef *)(uintptr_t)src; /* page sizes are int32: they fit uInt */
    zs.avail_in = (uInt)n;
    zs.next_out = r->page;
    zs.avail_out = (uInt)un;
    int ret;
    for (;;) {
      ret = inflate(&zs, Z_FINISH);
      /* concatenated gzip members: go on while both input and room remain */
      if (ret == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0 && inflateReset(&zs) == Z_OK) continue;
      break; /* Z_STREAM_END, or Z_BUF_ERROR (out of room or of input), or corrupt */
    }
    int64_t got = zs.next_out - r->page;
    const char *zmsg = zs.msg;
    inflateEnd(&zs);
    if (ret != Z_STREAM_END)
      return rd_fail(r, CFX_EFORMAT, "corrupt or truncated GZIP data%s%s (%lld of %lld bytes)",
                     zmsg ? ": " : "", zmsg ? zmsg : "", (long long)got, (long long)un);
    if (got != un)
      return rd_fail(r, CFX_EFORMAT, "GZIP data holds %lld bytes, the page header says %lld", (long long)got,
                     (long long)un);
  }
  *dst = r->page;
  return 0;
}

/* PLAIN byte arrays: k values from p[0..n) appended to out->data with offsets. */
static int plain_bytes(rd *r, const uint8_t *p, int64_t n, int64_t k) {
  int64_t pos = 0;
  int64_t *off = r->out->offsets + r->got + 1;
  for (int64_t i = 0; i < k; i++) {
    if (n - pos < 4)
      return rd_fail(r, CFX_EFORMAT, "PLAIN value %lld of %lld: length prefix past the page end",
                     (long long)i, (long long)k);
    int64_t len = le32(p + pos);
    pos += 4;
    if (len > n - pos)
      return rd_fail(r, CFX_EFORMAT, "PLAIN value %lld claims %lld bytes but %lld remain in the page",
                     (long long)i, (long long)len, (long long)(n - pos));
    if (data_append(r, p + pos, len)) return -1;
    pos += len;
    off[i] = r->data_len;
  }
  return 0;
}

/* Gather k dictionary entries by index (indices already checked). */
static int gather(rd *r, const uint32_t *ix, int64_t k) {
  if (r->bytes) {
    int64_t *off = r->out->offsets + r->got + 1;
    for (int64_t i = 0; i < k; i++) {
      int64_t a = r->dict_off[ix[i]], b = r->dict_off[ix[i] + 1];
      if (data_append(r, r->dict_data + a, b - a)) return -1;
      off[i] = r->data_len;
    }
  } else {
    uint8_t *v = (uint8_t *)r->out->values + r->got * r->width;
    for (int64_t i = 0; i < k; i++)
      memcpy(v + i * r->width, r->dict_vals + (int64_t)ix[i] * r->width, (size_t)r->width);
  }
  return 0;
}

/* DELTA_LENGTH_BYTE_ARRAY: k lengths, then the bytes. */
static int delta_length(rd *r, const uint8_t *p, int64_t n, int64_t k) {
  const char *why;
  int64_t used;
  if (scratch_i64(r, &r->ints, &r->ints_cap, k)) return -1;
  if (dbp_decode(p, n, k, r->ints, &used, &why))
    return rd_fail(r, CFX_EFORMAT, "DELTA_LENGTH_BYTE_ARRAY lengths: %s", why);
  int64_t pos = used;
  int64_t *off = r->out->offsets + r->got + 1;
  for (int64_t i = 0; i < k; i++) {
    int64_t len = r->ints[i];
    if (len < 0 || len > n - pos)
      return rd_fail(r, CFX_EFORMAT, "DELTA_LENGTH_BYTE_ARRAY value %lld claims %lld bytes but %lld remain",
                     (long long)i, (long long)len, (long long)(n - pos));
    if (data_append(r, p + pos, len)) return -1;
    pos += len;
    off[i] = r->data_len;
  }
  return 0;
}

/* DELTA_BYTE_ARRAY: k prefix lengths, then the suffixes as DELTA_LENGTH_BYTE_ARRAY;
 * value i = the first prefix[i] bytes of value i-1, then suffix i. */
static int delta_byte_array(rd *r, const uint8_t *p, int64_t n, int64_t k) {
  const char *why;
  int64_t used, used2;
  if (scratch_i64(r, &r->ints, &r->ints_cap, k) || scratch_i64(r, &r->ints2, &r->ints2_cap, k)) return -1;
  if (dbp_decode(p, n, k, r->ints, &used, &why))
    return rd_fail(r, CFX_EFORMAT, "DELTA_BYTE_ARRAY prefix lengths: %s", why);
  if (dbp_decode(p + used, n - used, k, r->ints2, &used2, &why))
    return rd_fail(r, CFX_EFORMAT, "DELTA_BYTE_ARRAY suffix lengths: %s", why);
  int64_t pos = used + used2;
  int64_t prev_len = 0;
  int64_t *off = r->bytes ? r->out->offsets + r->got + 1 : NULL;
  uint8_t *fixed = r->bytes ? NULL : (uint8_t *)r->out->values + r->got * r->width;
  for (int64_t i = 0; i < k; i++) {
    int64_t pre = r->ints[i], suf = r->ints2[i];
    if (pre < 0 || pre > prev_len)
      return rd_fail(r, CFX_EFORMAT,
                     "DELTA_BYTE_ARRAY value %lld: prefix of %lld bytes but the previous value has %lld",
                     (long long)i, (long long)pre, (long long)prev_len);
    if (suf < 0 || suf > n - pos)
      return rd_fail(r, CFX_EFORMAT, "DELTA_BYTE_ARRAY value %lld: suffix of %lld bytes but %lld remain",
                     (long long)i, (long long)suf, (long long)(n - pos));
    if (fixed) {
      if (pre + suf != r->width)
        return rd_fail(r, CFX_EFORMAT, "DELTA_BYTE_ARRAY value %lld has %lld bytes, the column's width is %d",
                       (long long)i, (long long)(pre + suf), r->width);
      uint8_t *v = fixed + i * r->width;
      if (pre) memcpy(v, v - r->width, (size_t)pre);
      memcpy(v + pre, p + pos, (size_t)suf);
    } else {
      int64_t prev_start = r->data_len - prev_len;
      if (data_reserve(r, pre + suf)) return -1;
      if (pre) memcpy(r->out->data + r->data_len, r->out->data + prev_start, (size_t)pre);
      if (suf) memcpy(r->out->data + r->data_len + pre, p + pos, (size_t)suf);
      r->data_len += pre + suf;
      off[i] = r->data_len;
    }
    pos += suf;
    prev_len = pre + suf;
  }
  return 0;
}

/* k non-null values of a data page, dense, at row r->got onwards. */
static int decode_values(rd *r, int enc, const uint8_t *p, int64_t n, int64_t k) {
  int phys = r->col->physical;
  const char *why;
  uint8_t *vals = r->bytes ? NULL : (uint8_t *)r->out->values + r->got * r->width;
  switch (enc) {
    case E_PLAIN:
      if (r->bytes) return plain_bytes(r, p, n, k);
      if (phys == T_BOOLEAN) {
        if ((k + 7) / 8 > n)
          return rd_fail(r, CFX_EFORMAT, "PLAIN booleans: %lld values need %lld bytes, the page has %lld",
                         (long long)k, (long long)((k + 7) / 8), (long long)n);
        for (int64_t i = 0; i < k; i++) vals[i] = (p[i >> 3] >> (i & 7)) & 1;
        return 0;
      }
      if (k * r->width > n)
        return rd_fail(r, CFX_EFORMAT, "PLAIN: %lld values of %d bytes need %lld bytes, the page has %lld",
                       (long long)k, r->width, (long long)(k * r->width), (long long)n);
      if (k) memcpy(vals, p, (size_t)(k * r->width));
      return 0;
    case E_PLAIN_DICTIONARY:
    case E_RLE_DICTIONARY: {
      if (k == 0) return 0; /* all null: some writers leave the dictionary out */
      if (!r->have_dict)
        return rd_fail(r, CFX_EFORMAT, "%s page without a dictionary page before it", encoding_name(enc));
      if (n < 1) return rd_fail(r, CFX_EFORMAT, "dictionary indices: empty page");
      int bw = p[0];
      if (bw > 32) return rd_fail(r, CFX_EFORMAT, "dictionary index bit width %d, expected 0..32", bw);
      if (scratch_u32(r, k)) return -1;
      if (rle_decode(p + 1, n - 1, bw, r->idx, k, NULL, &why))
        return rd_fail(r, CFX_EFORMAT, "dictionary indices: %s", why);
      for (int64_t i = 0; i < k; i++)
        if ((int64_t)r->idx[i] >= r->dict_n)
          return rd_fail(r, CFX_EFORMAT, "dictionary index %u out of range (the dictionary has %lld values)",
                         r->idx[i], (long long)r->dict_n);
      return gather(r, r->idx, k);
    }
    case E_RLE:
      if (phys != T_BOOLEAN) break;
      if (n < 4) return rd_fail(r, CFX_EFORMAT, "RLE booleans: no length prefix");
      if (le32(p) > (uint64_t)(n - 4))
        return rd_fail(r, CFX_EFORMAT, "RLE booleans: length %u exceeds the %lld bytes left", le32(p),
                       (long long)(n - 4));
      if (scratch_u32(r, k)) return -1;
      if (rle_decode(p + 4, le32(p), 1, r->idx, k, NULL, &why))
        return rd_fail(r, CFX_EFORMAT, "RLE booleans: %s", why);
      for (int64_t i = 0; i < k; i++) vals[i] = (uint8_t)r->idx[i];
      return 0;
    case E_DELTA_BINARY_PACKED: {
      if (phys != T_INT32 && phys != T_INT64) break;
      int64_t used;
      if (phys == T_INT64) {
        if (dbp_decode(p, n, k, (int64_t *)(void *)vals, &used, &why))
          return rd_fail(r, CFX_EFORMAT, "%s", why);
        return 0;
      }
      if (scratch_i64(r, &r->ints, &r->ints_cap, k)) return -1;
      if (dbp_decode(p, n, k, r->ints, &used, &why)) return rd_fail(r, CFX_EFORMAT, "%s", why);
      for (int64_t i = 0; i < k; i++) {
        int32_t v = (int32_t)(uint32_t)(uint64_t)r->ints[i];
        memcpy(vals + i * 4, &v, 4);
      }
      return 0;
    }
    case E_DELTA_LENGTH_BYTE_ARRAY:
      if (!r->bytes) break;
      return delta_length(r, p, n, k);
    case E_DELTA_BYTE_ARRAY:
      if (!r->bytes && phys != T_FIXED) break;
      return delta_byte_array(r, p, n, k);
    case E_BYTE_STREAM_SPLIT: {
      if (r->bytes || phys == T_BOOLEAN || phys == T_INT96) break;
      int w = r->width;
      if (k * w != n)
        return rd_fail(r, CFX_EFORMAT,
                       "BYTE_STREAM_SPLIT: %lld values of %d bytes need %lld bytes, the page has %lld",
                       (long long)k, w, (long long)(k * w), (long long)n);
      for (int64_t i = 0; i < k; i++)
        for (int b = 0; b < w; b++) vals[i * w + b] = p[(int64_t)b * k + i];
      return 0;
    }
    default:
      break;
  }
  return rd_fail(r, CFX_EFORMAT, "unsupported encoding %s (%d) for a %s column", encoding_name(enc), enc,
                 physical_name(phys));
}

/* Move k dense values of the page starting at row r->got to their rows among nv, as the
 * validity bytes say (back to front, in place); nulls get zeros / empty ranges. */
static void scatter(rd *r, int64_t nv, int64_t k) {
  if (k == nv) return;
  const uint8_t *valid = r->out->validity + r->got;
  int64_t j = k - 1;
  if (r->bytes) {
    int64_t *off = r->out->offsets + r->got + 1; /* off[-1] is the end of the previous page */
    for (int64_t i = nv - 1; i >= 0; i--) {
      if (valid[i]) {
        off[i] = off[j];
        j--;
      } else {
        off[i] = j >= 0 ? off[j] : off[-1];
      }
    }
  } else {
    int w = r->width;
    uint8_t *v = (uint8_t *)r->out->values + r->got * w;
    for (int64_t i = nv - 1; i >= 0; i--) {
      if (valid[i]) {
        if (i != j) memmove(v + i * w, v + j * w, (size_t)w);
        j--;
      } else {
        memset(v + i * w, 0, (size_t)w);
      }
    }
  }
}

/* Definition levels (max level 1) of nv values into validity; returns the non-nulls. */
static int levels_to_validity(rd *r, int64_t nv, int64_t *nonnull) {
  uint8_t *valid = r->out->validity + r->got;
  int64_t c = 0;
  for (int64_t i = 0; i < nv; i++) {
    if (r->idx[i] > 1)
      return rd_fail(r, CFX_EFORMAT, "definition level %u at value %lld, the maximum is 1", r->idx[i],
                     (long long)i);
    valid[i] = (uint8_t)r->idx[i];
    c += r->idx[i];
  }
  *nonnull = c;
  return 0;
}

static int check_page_values(rd *r, int64_t nv) {
  if (nv < 0 || nv > r->n - r->got)
    return rd_fail(r, CFX_EFORMAT, "page holds %lld values but %lld of the row group's %lld rows remain",
                   (long long)nv, (long long)(r->n - r->got), (long long)r->n);
  return 0;
}

static int dictionary_page(rd *r, const page_header *h, const uint8_t *raw) {
  if (!h->has_dict) return rd_fail(r, CFX_EFORMAT, "DICTIONARY_PAGE without a DictionaryPageHeader");
  if (r->have_dict) return rd_fail(r, CFX_EFORMAT, "a second dictionary page");
  if (r->got > 0) return rd_fail(r, CFX_EFORMAT, "a dictionary page after data pages");
  if (h->dict_encoding != E_PLAIN && h->dict_encoding != E_PLAIN_DICTIONARY)
    return rd_fail(r, CFX_EFORMAT, "unsupported dictionary encoding %s (%d)", encoding_name(h->dict_encoding),
                   h->dict_encoding);
  const uint8_t *p;
  int64_t n = h->uncompressed;
  if (decompress(r, raw, h->compressed, n, &p)) return -1;
  int64_t dn = h->dict_num_values;
  if (dn < 0) return rd_fail(r, CFX_EFORMAT, "dictionary of %lld values", (long long)dn);
  if (r->bytes) {
    if (dn > n / 4) /* every entry has a 4-byte length */
      return rd_fail(r, CFX_EFORMAT, "dictionary claims %lld values in %lld bytes", (long long)dn,
                     (long long)n);
    r->dict_off = malloc((size_t)(dn + 1) * sizeof(int64_t));
    r->dict_data = malloc((size_t)(n ? n : 1));
    if (!r->dict_off || !r->dict_data)
      return rd_fail(r, CFX_ENOMEM, "out of memory for a dictionary of %lld values", (long long)dn);
    int64_t pos = 0, len_out = 0;
    r->dict_off[0] = 0;
    for (int64_t i = 0; i < dn; i++) {
      if (n - pos < 4)
        return rd_fail(r, CFX_EFORMAT, "dictionary entry %lld: length prefix past the page end",
                       (long long)i);
      int64_t len = le32(p + pos);
      pos += 4;
      if (len > n - pos)
        return rd_fail(r, CFX_EFORMAT, "dictionary entry %lld claims %lld bytes but %lld remain",
                       (long long)i, (long long)len, (long long)(n - pos));
      memcpy(r->dict_data + len_out, p + pos, (size_t)len);
      pos += len;
      len_out += len;
      r->dict_off[i + 1] = len_out;
    }
  } else if (r->col->physical == T_BOOLEAN) {
    if ((dn + 7) / 8 > n)
      return rd_fail(r, CFX_EFORMAT, "dictionary claims %lld booleans in %lld bytes", (long long)dn,
                     (long long)n);
    if (!(r->dict_vals = malloc((size_t)(dn ? dn : 1))))
      return rd_fail(r, CFX_ENOMEM, "out of memory for a dictionary");
    for (int64_t i = 0; i < dn; i++) r->dict_vals[i] = (p[i >> 3] >> (i & 7)) & 1;
  } else {
    if (dn > n / r->width)
      return rd_fail(r, CFX_EFORMAT, "dictionary claims %lld values of %d bytes in %lld bytes", (long long)dn,
                     r->width, (long long)n);
    if (!(r->dict_vals = malloc((size_t)(dn * r->width + 1))))
      return rd_fail(r, CFX_ENOMEM, "out of memory for a dictionary");
    if (dn) memcpy(r->dict_vals, p, (size_t)(dn * r->width));
  }
  r->dict_n = dn;
  r->have_dict = 1;
  return 0;
}

static int data_page_v1(rd *r, const page_header *h, const uint8_t *raw) {
  if (!h->has_dp) return rd_fail(r, CFX_EFORMAT, "DATA_PAGE without a DataPageHeader");
  int64_t nv = h->dp_num_values;
  if (check_page_values(r, nv)) return -1;
  const uint8_t *p;
  int64_t n = h->uncompressed;
  if (decompress(r, raw, h->compressed, n, &p)) return -1;
  int64_t nonnull = nv, pos = 0;
  if (r->optional) {
    const char *why;
    if (scratch_u32(r, nv)) return -1;
    if (h->dp_def_encoding == E_RLE) {
      if (n < 4) return rd_fail(r, CFX_EFORMAT, "definition levels: no length prefix");
      int64_t len = le32(p);
      if (len > n - 4)
        return rd_fail(r, CFX_EFORMAT,
                       "definition levels claim %lld bytes but the page has %lld after the prefix",
                       (long long)len, (long long)(n - 4));
      if (rle_decode(p + 4, len, 1, r->idx, nv, NULL, &why))
        return rd_fail(r, CFX_EFORMAT, "definition levels: %s", why);
      pos = 4 + len;
    } else if (h->dp_def_encoding == E_BIT_PACKED) { /* deprecated: MSB first, no length */
      int64_t len = (nv + 7) / 8;
      if (len > n)
        return rd_fail(r, CFX_EFORMAT, "BIT_PACKED definition levels need %lld bytes, the page has %lld",
                       (long long)len, (long long)n);
      for (int64_t i = 0; i < nv; i++) r->idx[i] = (p[i >> 3] >> (7 - (i & 7))) & 1;
      pos = len;
    } else {
      return rd_fail(r, CFX_EFORMAT, "unsupported definition level encoding %s (%d)",
                     encoding_name(h->dp_def_encoding), h->dp_def_encoding);
    }
    if (levels_to_validity(r, nv, &nonnull)) return -1;
  }
  if (decode_values(r, h->dp_encoding, p + pos, n - pos, nonnull)) return -1;
  if (r->optional) scatter(r, nv, nonnull);
  r->got += nv;
  return 0;
}

static int data_page_v2(rd *r, const page_header *h, const uint8_t *raw) {
  if (!h->has_dp2) return rd_fail(r, CFX_EFORMAT, "DATA_PAGE_V2 without a DataPageHeaderV2");
  int64_t nv = h->v2_num_values;
  if (check_page_values(r, nv)) return -1;
  if (h->v2_num_rows != nv)
    return rd_fail(r, CFX_EFORMAT, "page has %lld values in %d rows: a flat column has one value per row",
                   (long long)nv, h->v2_num_rows);
  if (h->v2_num_nulls < 0 || h->v2_num_nulls > nv)
    return rd_fail(r, CFX_EFORMAT, "page claims %d nulls among %lld values", h->v2_num_nulls, (long long)nv);
  int64_t rl = h->v2_rep_len, dl = h->v2_def_len;
  if (rl < 0 || dl < 0 || rl + dl > h->compressed || rl + dl > h->uncompressed)
    return rd_fail(r, CFX_EFORMAT,
                   "level lengths %lld + %lld exceed the page (%d bytes stored, %d uncompressed)",
                   (long long)rl, (long long)dl, h->compressed, h->uncompressed);
  if (rl != 0)
    return rd_fail(r, CFX_EFORMAT, "%lld bytes of repetition levels in a flat column", (long long)rl);
  int64_t nonnull = nv;
  if (r->optional) {
    const char *why;
    if (scratch_u32(r, nv)) return -1;
    if (rle_decode(raw, dl, 1, r->idx, nv, NULL, &why))
      return rd_fail(r, CFX_EFORMAT, "definition levels: %s", why);
    if (levels_to_validity(r, nv, &nonnull)) return -1;
  } else if (dl != 0) {
    return rd_fail(r, CFX_EFORMAT, "%lld bytes of definition levels in a REQUIRED column", (long long)dl);
  }
  if (nv - nonnull != h->v2_num_nulls)
    return rd_fail(r, CFX_EFORMAT, "page header says %d nulls, its definition levels %lld", h->v2_num_nulls,
                   (long long)(nv - nonnull));
  const uint8_t *src = raw + rl + dl, *p;
  int64_t sn = h->compressed - rl - dl, un = h->uncompressed - rl - dl;
  if (h->v2_is_compressed) {
    if (decompress(r, src, sn, un, &p)) return -1;
  } else {
    if (sn != un)
      return rd_fail(r, CFX_EFORMAT, "uncompressed values of %lld bytes claim %lld", (long long)sn,
                     (long long)un);
    p = src;
  }
  if (decode_values(r, h->v2_encoding, p, un, nonnull)) return -1;
  if (r->optional) scatter(r, nv, nonnull);
  r->got += nv;
  return 0;
}

void cfx_parquet_column_release(cfx_parquet_column *col) {
  if (!col) return;
  free(col->values);
  free(col->offsets);
  free(col->data);
  free(col->validity);
  memset(col, 0, sizeof *col);
}

/* Size the output for n values within the budget, reusing what out already has. */
static int prepare_output(rd *r) {
  cfx_parquet_column *out = r->out;
  int64_t n = r->n, per = r->width + (r->bytes ? 8 : 0) + (r->optional ? 1 : 0);
  if (n > (r->pq->max_bytes - 8) / (per ? per : 1))
    return rd_fail(r, CFX_ERANGE,
                   "%lld values need more than the cap of %lld bytes per column chunk "
                   "(cfx_parquet_set_max_bytes)",
                   (long long)n, (long long)r->pq->max_bytes);
  r->fixed_bytes = n * per + 8;
  int fail = 0;
  /* at least one byte each, so that an empty chunk still has non-NULL buffers */
  if (!r->bytes) out->values = grow_to(out->values, &out->capacity_[0], n ? n * r->width : 1, &fail);
  if (r->bytes) out->offsets = grow_to(out->offsets, &out->capacity_[1], (n + 1) * 8, &fail);
  if (r->optional) out->validity = grow_to(out->validity, &out->capacity_[3], n ? n : 1, &fail);
  if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for %lld values", (long long)n);
  if (r->bytes) {
    /* PLAIN data is about as large as the chunk's uncompressed size: start there */
    int64_t guess = r->ch->total_uncompressed;
    if (guess > r->pq->max_bytes - r->fixed_bytes) guess = r->pq->max_bytes - r->fixed_bytes;
    if (guess > 0) out->data = grow_to(out->data, &out->capacity_[2], guess, &fail);
    if (fail) return rd_fail(r, CFX_ENOMEM, "out of memory for %lld bytes of values", (long long)guess);
    out->offsets[0] = 0;
  }
  return 0;
}

int cfx_parquet_read_column(const cfx_parquet *pq, int32_t rg, int32_t col, cfx_parquet_column *out) {
  if (!pq) return cfx__fail(CFX_EINVAL, "cfx_parquet_read_column: handle is NULL");
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_parquet_read_column: out is NULL");
  if (rg < 0 || rg >= pq->nrg || col < 0 || col >= pq->ncols) {
    cfx_parquet_column_release(out);
    return cfx__fail(CFX_EINVAL, "%s: row group %d / column %d out of range (%d row groups, %d columns)",
                     pq->name, rg, col, pq->nrg, pq->ncols);
  }
  rd r;
  memset(&r, 0, sizeof r);
  r.pq = pq;
  r.col = &pq->cols[col];
  r.ch = &pq->rgs[rg].chunks[col];
  r.rg = rg;
  r.page_at = -1;
  r.out = out;
  r.n = pq->rgs[rg].num_rows;
  r.bytes = r.col->physical == T_BYTE_ARRAY;
  r.optional = r.col->repetition == REP_OPTIONAL;
  switch (r.col->physical) {
    case T_BOOLEAN:
      r.width = 1;
      break;
    case T_INT32:
    case T_FLOAT:
      r.width = 4;
      break;
    case T_INT64:
    case T_DOUBLE:
      r.width = 8;
      break;
    case T_INT96:
      r.width = 12;
      break;
    case T_FIXED:
      r.width = r.col->type_length;
      break;
    default:
      r.width = 0;
  }
  int rc = 0;
  if (r.ch->num_values != r.n)
    rc = rd_fail(&r, CFX_EFORMAT, "the chunk holds %lld values but the row group has %lld rows",
                 (long long)r.ch->num_values, (long long)r.n);
  if (!rc) rc = prepare_output(&r);
  int64_t pos = r.ch->start, end = r.ch->start + r.ch->total_compressed;
  while (!rc && r.got < r.n) {
    r.page_at = pos;
    if (pos >= end) {
      rc = rd_fail(&r, CFX_EFORMAT, "the chunk's pages end after %lld of %lld values", (long long)r.got,
                   (long long)r.n);
      break;
    }
    tr t;
    tr_init(&t, pq->buf + pos, end - pos);
    page_header h;
    if (parse_page_header(&t, &h) != 0) {
      rc = rd_fail(&r, CFX_EFORMAT, "malformed page header: %s at byte %lld", t.msg, (long long)t.fail_at);
      break;
    }
    int64_t hlen = t.p - t.start;
    if (h.compressed < 0 || h.compressed > end - pos - hlen) {
      rc = rd_fail(&r, CFX_EFORMAT, "page claims %d stored bytes but %lld remain in the column chunk",
                   h.compressed, (long long)(end - pos - hlen));
      break;
    }
    if (h.uncompressed < 0) {
      rc = rd_fail(&r, CFX_EFORMAT, "page claims %d uncompressed bytes", h.uncompressed);
      break;
    }
    const uint8_t *raw = pq->buf + pos + hlen;
    switch (h.type) {
      case P_DICTIONARY:
        rc = dictionary_page(&r, &h, raw);
        break;
      case P_DATA:
        rc = data_page_v1(&r, &h, raw);
        break;
      case P_DATA_V2:
        rc = data_page_v2(&r, &h, raw);
        break;
      default:
        break; /* INDEX_PAGE and pages of newer writers: skipped by their size */
    }
    pos += hlen + h.compressed;
  }
  free(r.page);
  free(r.idx);
  free(r.ints);
  free(r.ints2);
  free(r.dict_vals);
  free(r.dict_off);
  free(r.dict_data);
  ZSTD_freeDCtx(r.zstd);
  if (rc) {
    cfx_parquet_column_release(out);
    return r.code ? r.code : CFX_EINTERNAL;
  }
  out->type = r.col->type;
  out->width = r.bytes ? 0 : r.width;
  out->length = r.n;
  out->null_count = 0;
  if (r.optional)
    for (int64_t i = 0; i < r.n; i++) out->null_count += !out->validity[i];
  if (!r.bytes) {
    free(out->offsets), out->offsets = NULL, out->capacity_[1] = 0;
    free(out->data), out->data = NULL, out->capacity_[2] = 0;
  } else {
    free(out->values), out->values = NULL, out->capacity_[0] = 0;
    int fail = 0;
    if (!out->data) out->data = grow_to(out->data, &out->capacity_[2], 1, &fail);
    if (fail) {
      cfx_parquet_column_release(out);
      return cfx__fail(CFX_ENOMEM, "%s: out of memory", pq->name);
    }
  }
  if (!r.optional) free(out->validity), out->validity = NULL, out->capacity_[3] = 0;
  return 0;
}
