/* test_parquet.c: cfx/parquet.h seen from C.
 *
 * - fixtures: every tests/fixtures/parquet/X.parquet (written by arrow-rs through
 *   parquet-wasm and by DuckDB, see make_fixtures.mjs) is read row group by row group,
 *   column by column, through cfx_parquet_open and cfx_parquet_open_memory, and every
 *   value is compared with X.tsv, the values the generator handed to the writer
 *   (image bytes by length and SHA-256, computed here by a SHA-256 checked against the
 *   FIPS 180-2 vectors);
 * - synthetic files built here with a small Thrift compact writer: unknown fields of
 *   every wire type (nested structs, lists, maps, sets, uuids) that must be skipped,
 *   INT96, BIT_PACKED levels, boolean dictionaries, bit width 0, INDEX and unknown
 *   pages, SNAPPY literals, GZIP stored blocks in two members, ZSTD raw blocks (all
 *   compressed by hand: the expected bytes follow from the formats' specifications);
 * - bad input, each a clean error code and a message naming the file, column or value:
 *   zero bytes, bad magic, truncation at every cut point, footer length beyond the
 *   file, lying page sizes, huge pages, unknown codec and encoding, nested and repeated
 *   columns, dictionary bombs over the memory cap, thousands of random byte flips and
 *   random buffers (run it in an ASan/UBSan build as well). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkstemp, strdup, strtok_r */
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfx/cfx.h"
#include "cfx/parquet.h"
#include "check.h"

/* ---- small helpers ------------------------------------------------------------------ */

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  if (n) memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void put8(buf *b, unsigned v) {
  uint8_t x = (uint8_t)v;
  put(b, &x, 1);
}
static void put_le32(buf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, x, 4);
}
static void put_varint(buf *b, uint64_t v) {
  while (v >= 0x80) {
    put8(b, (unsigned)(v & 0x7f) | 0x80);
    v >>= 7;
  }
  put8(b, (unsigned)v);
}
static void put_zz(buf *b, int64_t v) {
  put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static void buf_free(buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static uint8_t *read_file(const char *path, int64_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)len + 1);
  if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
    free(p);
    p = NULL;
  }
  fclose(f);
  if (p) p[len] = 0;
  *n = len;
  return p;
}

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* ---- SHA-256 (FIPS 180-4), for the image bytes ---------------------------------------- */

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] =
        (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) sha256_block(h, p + i);
  uint8_t last[128] = {0};
  size_t rem = n - i;
  if (rem) memcpy(last, p + i, rem);
  last[rem] = 0x80;
  size_t blocks = rem + 9 > 64 ? 2 : 1;
  uint64_t bits = (uint64_t)n * 8;
  for (int k = 0; k < 8; k++) last[blocks * 64 - 1 - k] = (uint8_t)(bits >> (8 * k));
  for (size_t k = 0; k < blocks; k++) sha256_block(h, last + 64 * k);
  for (int k = 0; k < 8; k++) sprintf(out + 8 * k, "%08x", h[k]);
}

static void test_sha256(void) {
  char hex[65];
  sha256_hex((const uint8_t *)"abc", 3, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256_hex((const uint8_t *)m, strlen(m), hex);
  CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
  sha256_hex((const uint8_t *)"", 0, hex);
  CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

/* ---- fixtures and their manifests ------------------------------------------------------- */

static char fixture_dir[4096];

static void find_fixtures(void) {
  const char *root = getenv("CFX_ROOT");
  if (root && *root) {
    snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/fixtures/parquet", root);
  } else { /* tests/c/test_parquet.c -> tests/fixtures/parquet */
    const char *f = __FILE__, *slash = strrchr(f, '/');
    if (slash)
      snprintf(fixture_dir, sizeof fixture_dir, "%.*s/../fixtures/parquet", (int)(slash - f), f);
    else
      snprintf(fixture_dir, sizeof fixture_dir, "../fixtures/parquet");
  }
}

#define MAX_COLS 32
typedef struct manifest {
  char *text;
  const char *file;
  const char *writer;
  int64_t num_rows;
  int nrg;
  int64_t rg_rows[256];
  int ncols;
  const char *col_name[MAX_COLS];
  const char *col_type[MAX_COLS];
  int col_optional[MAX_COLS];
  int64_t nrows;
  char **cells; /* nrows * ncols */
} manifest;

static int split_tabs(char *line, char **out, int max) {
  int n = 0;
  for (char *p = line;;) {
    if (n < max) out[n] = p;
    n++;
    char *t = strchr(p, '\t');
    if (!t) break;
    *t = 0;
    p = t + 1;
  }
  return n;
}

static int load_manifest(const char *path, manifest *m) {
  memset(m, 0, sizeof *m);
  int64_t n;
  m->text = (char *)read_file(path, &n);
  if (!m->text) return -1;
  int64_t lines = 1;
  for (int64_t i = 0; i < n; i++) lines += m->text[i] == '\n';
  m->cells = calloc((size_t)lines * MAX_COLS, sizeof(char *));
  char *save = NULL;
  for (char *line = strtok_r(m->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') continue;
    char *f[MAX_COLS + 2];
    int nf = split_tabs(line, f, MAX_COLS + 2);
    if (strcmp(f[0], "file") == 0 && nf > 1)
      m->file = f[1];
    else if (strcmp(f[0], "writer") == 0 && nf > 1)
      m->writer = f[1];
    else if (strcmp(f[0], "num_rows") == 0 && nf > 1)
      m->num_rows = atoll(f[1]);
    else if (strcmp(f[0], "row_groups") == 0) {
      for (int i = 1; i < nf && i <= MAX_COLS + 1 && m->nrg < 256; i++) m->rg_rows[m->nrg++] = atoll(f[i]);
    } else if (strcmp(f[0], "column") == 0 && nf == 4 && m->ncols < MAX_COLS) {
      m->col_name[m->ncols] = f[1];
      m->col_type[m->ncols] = f[2];
      m->col_optional[m->ncols] = atoi(f[3]);
      m->ncols++;
    } else if (strcmp(f[0], "row") == 0) {
      if (nf - 1 != m->ncols) return -2;
      for (int j = 0; j < m->ncols; j++) m->cells[m->nrows * MAX_COLS + j] = f[j + 1];
      m->nrows++;
    }
  }
  return m->file ? 0 : -3;
}

static void free_manifest(manifest *m) {
  free(m->text);
  free(m->cells);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Does value i of col equal the manifest cell?  On mismatch, describe it in why. */
static int value_matches(const cfx_parquet_column *col, int64_t i, const char *cell, char *why, size_t whyn) {
  int null = col->validity && !col->validity[i];
  if (strcmp(cell, "N") == 0) {
    if (!null) snprintf(why, whyn, "expected null, got a value");
    return null;
  }
  if (null) {
    snprintf(why, whyn, "expected %.60s, got null", cell);
    return 0;
  }
  const uint8_t *v = col->values ? (const uint8_t *)col->values + i * col->width : NULL;
  switch (col->type) {
    case CFX_PARQUET_BOOL:
      if (v[0] != (uint8_t)atoi(cell)) return snprintf(why, whyn, "bool %d, expected %s", v[0], cell), 0;
      return 1;
    case CFX_PARQUET_INT32: {
      int32_t x;
      memcpy(&x, v, 4);
      if (x != (int32_t)strtoll(cell, NULL, 10))
        return snprintf(why, whyn, "int32 %d, expected %s", x, cell), 0;
      return 1;
    }
    case CFX_PARQUET_INT64: {
      int64_t x;
      memcpy(&x, v, 8);
      if (x != strtoll(cell, NULL, 10))
        return snprintf(why, whyn, "int64 %lld, expected %s", (long long)x, cell), 0;
      return 1;
    }
    case CFX_PARQUET_FLOAT: {
      uint32_t x;
      memcpy(&x, v, 4);
      if (strncmp(cell, "f:", 2) || x != (uint32_t)strtoul(cell + 2, NULL, 16))
        return snprintf(why, whyn, "float bits %08x, expected %s", x, cell), 0;
      return 1;
    }
    case CFX_PARQUET_DOUBLE: {
      uint64_t x;
      memcpy(&x, v, 8);
      if (strncmp(cell, "d:", 2) || x != (uint64_t)strtoull(cell + 2, NULL, 16))
        return snprintf(why, whyn, "double bits %016llx, expected %s", (unsigned long long)x, cell), 0;
      return 1;
    }
    default:
      break;
  }
  const uint8_t *p;
  int64_t len;
  if (col->type == CFX_PARQUET_BYTES || col->type == CFX_PARQUET_STRING) {
    p = col->data + col->offsets[i];
    len = col->offsets[i + 1] - col->offsets[i];
  } else {
    p = v;
    len = col->width;
  }
  if (strncmp(cell, "s:", 2) == 0) {
    char *end;
    long long want_len = strtoll(cell + 2, &end, 10);
    char hex[65];
    sha256_hex(p, (size_t)len, hex);
    if (want_len != len || *end != ':' || strcmp(end + 1, hex) != 0)
      return snprintf(why, whyn, "%lld bytes with sha256 %.16s..., expected %.40s...", (long long)len, hex,
                      cell),
             0;
    return 1;
  }
  if (strncmp(cell, "x:", 2) != 0) return snprintf(why, whyn, "bad manifest cell %.40s", cell), 0;
  const char *h = cell + 2;
  if ((int64_t)strlen(h) != 2 * len)
    return snprintf(why, whyn, "%lld bytes, expected %zu", (long long)len, strlen(h) / 2), 0;
  for (int64_t k = 0; k < len; k++)
    if (p[k] != (hexval(h[2 * k]) << 4 | hexval(h[2 * k + 1])))
      return snprintf(why, whyn, "byte %lld differs (expected %.40s)", (long long)k, cell), 0;
  return 1;
}

static const int EXPECTED_TYPE_COUNT = 9;
static int type_from_name(const char *s) {
  for (int t = 1; t <= EXPECTED_TYPE_COUNT; t++)
    if (strcmp(cfx_parquet_type_name(t), s) == 0) return t;
  return 0;
}

/* Everything about one open fixture against its manifest. */
static void check_against_manifest(cfx_parquet *pq, const manifest *m, const char *label) {
  CHECK(cfx_parquet_num_rows(pq) == m->num_rows);
  CHECK(m->nrows == m->num_rows);
  CHECK(cfx_parquet_num_row_groups(pq) == m->nrg);
  int64_t sum = 0;
  for (int g = 0; g < m->nrg; g++) {
    CHECK(cfx_parquet_row_group_num_rows(pq, g) == m->rg_rows[g]);
    sum += m->rg_rows[g];
  }
  CHECK(sum == m->num_rows);
  CHECK(cfx_parquet_num_columns(pq) == m->ncols);
  if (cfx_parquet_num_columns(pq) != m->ncols) return;
  /* writer identity: arrow-rs says "parquet-rs", DuckDB "DuckDB" */
  if (strstr(m->writer, "parquet-wasm")) {
    CHECK_CONTAINS(cfx_parquet_created_by(pq), "parquet-rs");
    CHECK(cfx_parquet_metadata_find(pq, "ARROW:schema", NULL) != NULL); /* arrow-rs stores its schema */
  } else {
    CHECK_CONTAINS(cfx_parquet_created_by(pq), "DuckDB");
  }
  cfx_parquet_column cols[MAX_COLS];
  memset(cols, 0, sizeof cols);
  for (int j = 0; j < m->ncols; j++) {
    cfx_parquet_column_info info;
    CHECK_OK(cfx_parquet_column_describe(pq, j, &info));
    CHECK(strcmp(info.name, m->col_name[j]) == 0);
    CHECK(strcmp(cfx_parquet_column_name(pq, j), m->col_name[j]) == 0);
    CHECK(info.type == type_from_name(m->col_type[j]));
    CHECK(cfx_parquet_column_type(pq, j) == info.type);
    CHECK(info.optional == m->col_optional[j]);
    CHECK(cfx_parquet_column_index(pq, m->col_name[j]) == j);
  }
  /* stream: row group by row group, one reused cfx_parquet_column per column */
  int64_t row0 = 0;
  for (int g = 0; g < m->nrg; g++) {
    for (int j = 0; j < m->ncols; j++) {
      cfx_parquet_column *c = &cols[j];
      int rc = cfx_parquet_read_column(pq, g, j, c);
      if (rc) {
        check_failed++;
        fprintf(stderr, "%s: row group %d column %s: rc %d: %s\n", label, g, m->col_name[j], rc,
                cfx_last_error());
        continue;
      }
      int ok = c->length == m->rg_rows[g] && c->type == type_from_name(m->col_type[j]) &&
               (c->validity != NULL) == (m->col_optional[j] != 0);
      int64_t nulls = 0, bad = 0;
      char why[256] = "", first[512] = "";
      for (int64_t i = 0; ok && i < c->length; i++) {
        const char *cell = m->cells[(row0 + i) * MAX_COLS + j];
        nulls += strcmp(cell, "N") == 0;
        if (!value_matches(c, i, cell, why, sizeof why) && bad++ == 0)
          snprintf(first, sizeof first, "row %lld: %s", (long long)(row0 + i), why);
      }
      ok = ok && bad == 0 && nulls == c->null_count;
      if (ok && (c->type == CFX_PARQUET_BYTES || c->type == CFX_PARQUET_STRING))
        ok = c->offsets[0] == 0 && c->values == NULL && c->data != NULL;
      if (ok) {
        check_passed++;
      } else {
        check_failed++;
        fprintf(stderr, "%s: row group %d column %s: %lld mismatches (length %lld, nulls %lld vs %lld): %s\n",
                label, g, m->col_name[j], (long long)bad, (long long)c->length, (long long)c->null_count,
                (long long)nulls, first);
      }
    }
    row0 += m->rg_rows[g];
  }
  for (int j = 0; j < m->ncols; j++) cfx_parquet_column_release(&cols[j]);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int test_fixtures(void) {
  DIR *d = opendir(fixture_dir);
  CHECK(d != NULL);
  if (!d) {
    fprintf(stderr, "no fixture directory %s (set CFX_ROOT)\n", fixture_dir);
    return 0;
  }
  char *names[256];
  int nn = 0;
  struct dirent *e;
  while ((e = readdir(d)) && nn < 256) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".tsv") == 0) names[nn++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)nn, sizeof *names, cmp_str);
  CHECK(nn >= 10);
  int seen_rs = 0, seen_duck = 0;
  for (int k = 0; k < nn; k++) {
    char path[8192], ppath[8192];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, names[k]);
    manifest m;
    int lrc = load_manifest(path, &m);
    CHECK(lrc == 0);
    if (lrc) {
      fprintf(stderr, "cannot load manifest %s (%d)\n", path, lrc);
      free_manifest(&m);
      continue;
    }
    seen_rs += strstr(m.writer, "parquet-wasm") != NULL;
    seen_duck += strstr(m.writer, "DuckDB") != NULL;
    snprintf(ppath, sizeof ppath, "%s/%s", fixture_dir, m.file);
    cfx_parquet *pq = NULL;
    CHECK_OK(cfx_parquet_open(ppath, &pq));
    if (pq) check_against_manifest(pq, &m, m.file);
    cfx_parquet_close(pq);
    int64_t n;
    uint8_t *bytes = read_file(ppath, &n);
    CHECK(bytes != NULL);
    pq = NULL;
    CHECK_OK(cfx_parquet_open_memory(bytes, n, m.file, &pq));
    if (pq) check_against_manifest(pq, &m, m.file);
    cfx_parquet_close(pq);
    free(bytes);
    printf("  %-28s %6lld rows %3d row groups  ok\n", m.file, (long long)m.num_rows, m.nrg);
    free_manifest(&m);
    free(names[k]);
  }
  CHECK(seen_rs >= 5);
  CHECK(seen_duck >= 2);
  return nn;
}

/* ---- a Thrift compact writer and synthetic files ------------------------------------------------ */

enum {
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

typedef struct tw {
  buf *b;
  int16_t last[256];
  int d;
} tw;

static void tw_field(tw *w, int id, int type) {
  int delta = id - w->last[w->d];
  if (delta > 0 && delta <= 15) {
    put8(w->b, (unsigned)(delta << 4 | type));
  } else {
    put8(w->b, (unsigned)type);
    put_zz(w->b, id);
  }
  w->last[w->d] = (int16_t)id;
}
static void tw_i32(tw *w, int id, int64_t v) {
  tw_field(w, id, CT_I32), put_zz(w->b, v);
}
static void tw_i64(tw *w, int id, int64_t v) {
  tw_field(w, id, CT_I64), put_zz(w->b, v);
}
static void tw_str(tw *w, int id, const char *s) {
  tw_field(w, id, CT_BINARY);
  put_varint(w->b, strlen(s));
  put(w->b, s, strlen(s));
}
static void tw_bool(tw *w, int id, int v) {
  tw_field(w, id, v ? CT_TRUE : CT_FALSE);
}
static void tw_begin(tw *w, int id) {
  tw_field(w, id, CT_STRUCT), w->last[++w->d] = 0;
}
static void tw_elem(tw *w) {
  w->last[++w->d] = 0;
} /* a struct element of a list */
static void tw_end(tw *w) {
  put8(w->b, 0), w->d--;
}
static void tw_list(tw *w, int id, int type, int et, int n) {
  tw_field(w, id, type);
  if (n < 15) {
    put8(w->b, (unsigned)(n << 4 | et));
  } else {
    put8(w->b, (unsigned)(0xf0 | et));
    put_varint(w->b, (uint64_t)n);
  }
}

/* A field a future writer might add: every wire type, nested, with long-form ids. */
static void tw_junk(tw *w, int id) {
  tw_begin(w, id);
  tw_list(w, 1, CT_LIST, CT_MAP, 2);
  put_varint(w->b, 2); /* map<string, list<i32>> of 2 entries */
  put8(w->b, CT_BINARY << 4 | CT_LIST);
  for (int k = 0; k < 2; k++) {
    put_varint(w->b, 3), put(w->b, "key", 3);
    put8(w->b, 3 << 4 | CT_I32);
    for (int j = 0; j < 3; j++) put_zz(w->b, -j * 1000);
  }
  put_varint(w->b, 0); /* an empty map */
  tw_bool(w, 2, 1);
  tw_field(w, 3, CT_DOUBLE), put(w->b, "\0\0\0\0\0\0\xf0\x3f", 8);
  tw_field(w, 4, CT_UUID), put(w->b, "0123456789abcdef", 16);
  tw_list(w, 5, CT_SET, CT_TRUE, 3), put8(w->b, 1), put8(w->b, 2), put8(w->b, 1);
  tw_begin(w, 6);
  tw_str(w, 1, "x");
  tw_field(w, 2, CT_I16), put_zz(w->b, -3);
  tw_field(w, 3, CT_BYTE), put8(w->b, 7);
  tw_list(w, 4, CT_LIST, CT_STRUCT, 16); /* long list header */
  for (int k = 0; k < 16; k++) tw_elem(w), tw_i64(w, 1, k), tw_end(w);
  tw_end(w);
  tw_i64(w, 300, 123456789);               /* long-form field id */
  tw_field(w, 2, CT_I32), put_zz(w->b, 5); /* ids may go down */
  tw_end(w);
}

/* One schema element (type -1: a group). */
typedef struct sel {
  const char *name;
  int type, rep, conv, type_length, num_children;
} sel;

/* One column chunk: its pages and what its ColumnMetaData says. */
typedef struct schunk {
  int type, codec;
  const char *path;
  buf pages;
  int64_t num_values;
  int has_dict;         /* the chunk starts with a dictionary page */
  int64_t offset_delta; /* added to data_page_offset (lies) */
} schunk;

static int junk_everywhere;

static void write_page_header(buf *b, int type, int64_t un, int64_t comp, int sub_id, const int64_t *sub,
                              int nsub, int v2_uncompressed) {
  tw w = {b, {0}, 0};
  tw_i32(&w, 1, type);
  tw_i32(&w, 2, un);
  tw_i32(&w, 3, comp);
  if (junk_everywhere) tw_i32(&w, 4, 12345); /* crc: ignored */
  if (sub_id) {
    tw_begin(&w, sub_id);
    for (int k = 0; k < nsub; k++) tw_i32(&w, k + 1, sub[k]);
    if (v2_uncompressed) tw_bool(&w, 7, 0);
    if (junk_everywhere) tw_junk(&w, 40);
    tw_end(&w);
  }
  if (junk_everywhere) tw_junk(&w, 50);
  put8(b, 0);
}

/* Codecs by hand.  SNAPPY: one literal; GZIP: stored deflate blocks in two members;
 * ZSTD: one raw block. */
static uint32_t crc32_le(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}
static void gzip_member(buf *out, const uint8_t *p, size_t n) {
  put(out, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  put8(out, 1); /* BFINAL, stored */
  put8(out, n & 0xff), put8(out, n >> 8), put8(out, ~n & 0xff), put8(out, (~n >> 8) & 0xff);
  put(out, p, n);
  put_le32(out, crc32_le(p, n));
  put_le32(out, (uint32_t)n);
}
static void compress_by_hand(int codec, const buf *in, buf *out) {
  size_t n = in->n;
  switch (codec) {
    case CFX_PARQUET_SNAPPY:
      put_varint(out, n);
      if (n == 0) break;
      if (n <= 60) {
        put8(out, (unsigned)((n - 1) << 2));
      } else {
        put8(out, 61 << 2); /* length - 1 in the next two bytes */
        put8(out, (n - 1) & 0xff), put8(out, (n - 1) >> 8);
      }
      put(out, in->p, n);
      break;
    case CFX_PARQUET_GZIP: /* two members, split in the middle */
      gzip_member(out, in->p, n / 2);
      gzip_member(out, in->p + n / 2, n - n / 2);
      break;
    case CFX_PARQUET_ZSTD:
      put(out, "\x28\xb5\x2f\xfd", 4);
      if (n < 256) {
        put8(out, 0x20); /* single segment, 1-byte content size */
        put8(out, (unsigned)n);
      } else {
        put8(out, 0x60); /* single segment, 2-byte content size (minus 256) */
        put8(out, (n - 256) & 0xff), put8(out, ((n - 256) >> 8) & 0xff);
      }
      {
        uint32_t bh = 1 | (uint32_t)n << 3; /* last block, raw */
        put8(out, bh & 0xff), put8(out, (bh >> 8) & 0xff), put8(out, (bh >> 16) & 0xff);
      }
      put(out, in->p, n);
      break;
    default:
      put(out, in->p, n);
  }
}

static void page_v1(schunk *c, int64_t nv, int enc, int def_enc, const buf *body) {
  buf z = {0};
  compress_by_hand(c->codec, body, &z);
  int64_t sub[4] = {nv, enc, def_enc, 3};
  write_page_header(&c->pages, 0, (int64_t)body->n, (int64_t)z.n, 5, sub, 4, 0);
  put(&c->pages, z.p, z.n);
  buf_free(&z);
}

static void page_dict(schunk *c, int64_t dn, const buf *body) {
  buf z = {0};
  compress_by_hand(c->codec, body, &z);
  int64_t sub[2] = {dn, 0};
  write_page_header(&c->pages, 2, (int64_t)body->n, (int64_t)z.n, 7, sub, 2, 0);
  put(&c->pages, z.p, z.n);
  buf_free(&z);
  c->has_dict = 1;
}

static void page_v2(schunk *c, int64_t nv, int64_t nulls, int enc, const buf *levels, const buf *values,
                    int compress) {
  buf z = {0};
  if (compress)
    compress_by_hand(c->codec, values, &z);
  else
    put(&z, values->p, values->n);
  int64_t sub[6] = {nv, nulls, nv, enc, (int64_t)levels->n, 0};
  write_page_header(&c->pages, 3, (int64_t)(levels->n + values->n), (int64_t)(levels->n + z.n), 8, sub, 6,
                    !compress);
  put(&c->pages, levels->p, levels->n);
  put(&c->pages, z.p, z.n);
  buf_free(&z);
}

static void page_other(schunk *c, int type, const char *body) {
  int64_t n = (int64_t)strlen(body);
  write_page_header(&c->pages, type, n, n, 0, NULL, 0, 0);
  put(&c->pages, body, (size_t)n);
}

typedef struct sfile_opts {
  int64_t footer_rows_delta; /* FileMetaData.num_rows lies by this much */
  int64_t rows;              /* the row group's num_rows */
} sfile_opts;

static void make_file(buf *out, const sel *schema, int nschema, schunk *chunks, int nchunks, sfile_opts o) {
  out->n = 0;
  put(out, "PAR1", 4);
  int64_t offsets[MAX_COLS];
  for (int i = 0; i < nchunks; i++) {
    offsets[i] = (int64_t)out->n;
    put(out, chunks[i].pages.p, chunks[i].pages.n);
  }
  size_t fstart = out->n;
  tw w = {out, {0}, 0};
  tw_i32(&w, 1, 2);
  if (junk_everywhere) tw_junk(&w, 1000); /* unknown fields may come in any order */
  tw_list(&w, 2, CT_LIST, CT_STRUCT, nschema);
  for (int i = 0; i < nschema; i++) {
    const sel *s = &schema[i];
    tw_elem(&w);
    if (s->type >= 0) tw_i32(&w, 1, s->type);
    if (s->type_length) tw_i32(&w, 2, s->type_length);
    if (i > 0) tw_i32(&w, 3, s->rep);
    tw_str(&w, 4, s->name);
    if (s->num_children) tw_i32(&w, 5, s->num_children);
    if (s->conv >= 0) tw_i32(&w, 6, s->conv);
    if (s->conv == 0) { /* LogicalType STRING too, as recent writers do */
      tw_begin(&w, 10);
      tw_begin(&w, 1);
      tw_end(&w);
      tw_end(&w);
    }
    if (junk_everywhere) tw_junk(&w, 77);
    tw_end(&w);
  }
  tw_i64(&w, 3, o.rows + o.footer_rows_delta);
  tw_list(&w, 4, CT_LIST, CT_STRUCT, 1);
  tw_elem(&w);
  tw_list(&w, 1, CT_LIST, CT_STRUCT, nchunks);
  for (int i = 0; i < nchunks; i++) {
    schunk *c = &chunks[i];
    tw_elem(&w);
    tw_i64(&w, 2, offsets[i]);
    tw_begin(&w, 3);
    tw_i32(&w, 1, c->type);
    tw_list(&w, 2, CT_LIST, CT_I32, 2), put_zz(out, 0), put_zz(out, 3);
    tw_list(&w, 3, CT_LIST, CT_BINARY, 1);
    put_varint(out, strlen(c->path)), put(out, c->path, strlen(c->path));
    tw_i32(&w, 4, c->codec);
    tw_i64(&w, 5, c->num_values);
    tw_i64(&w, 6, (int64_t)c->pages.n);
    tw_i64(&w, 7, (int64_t)c->pages.n);
    if (junk_everywhere) tw_junk(&w, 8); /* key_value_metadata slot, any content */
    int64_t data_off = offsets[i] + c->offset_delta;
    if (c->has_dict) {
      tw_i64(&w, 9, data_off + 1); /* somewhere after the dictionary page */
      tw_i64(&w, 11, offsets[i]);
    } else {
      tw_i64(&w, 9, data_off);
    }
    if (junk_everywhere) tw_junk(&w, 99);
    tw_end(&w);
    tw_end(&w);
  }
  tw_i64(&w, 2, 1000);
  tw_i64(&w, 3, o.rows);
  tw_end(&w);
  tw_list(&w, 5, CT_LIST, CT_STRUCT, 2);
  tw_elem(&w), tw_str(&w, 1, "note"), tw_str(&w, 2, "made by test_parquet.c"), tw_end(&w);
  tw_elem(&w), tw_str(&w, 1, "novalue"), tw_end(&w);
  tw_str(&w, 6, "test_parquet.c synthetic writer");
  put8(out, 0);
  put_le32(out, (uint32_t)(out->n - fstart));
  put(out, "PAR1", 4);
}

static int open_buf(const buf *b, cfx_parquet **pq) {
  return cfx_parquet_open_memory(b->p, (int64_t)b->n, "synthetic.parquet", pq);
}

/* RLE run of `count` copies of v (bit width bw) */
static void rle_run(buf *b, uint64_t count, uint32_t v, int bw) {
  put_varint(b, count << 1);
  for (int k = 0; k < (bw + 7) / 8; k++) put8(b, (v >> (8 * k)) & 0xff);
}
/* bit-packed run of 8*groups values (bw bits each, LSB first) */
static void bitpacked_run(buf *b, const uint32_t *v, int groups, int bw) {
  put_varint(b, (uint64_t)groups << 1 | 1);
  uint64_t acc = 0;
  int nacc = 0;
  for (int i = 0; i < groups * 8; i++) {
    acc |= (uint64_t)v[i] << nacc;
    nacc += bw;
    while (nacc >= 8) put8(b, acc & 0xff), acc >>= 8, nacc -= 8;
  }
  if (nacc) put8(b, acc & 0xff);
}

enum { PT_BOOLEAN, PT_INT32, PT_INT64, PT_INT96, PT_FLOAT, PT_DOUBLE, PT_BYTE_ARRAY, PT_FIXED };

/* Synthetic files that must read back exactly. */
static void test_synthetic_good(void) {
  for (int junk = 0; junk <= 1; junk++) {
    junk_everywhere = junk;
    for (int codec = 0; codec <= 6; codec++) {
      if (codec != CFX_PARQUET_UNCOMPRESSED && codec != CFX_PARQUET_SNAPPY && codec != CFX_PARQUET_GZIP &&
          codec != CFX_PARQUET_ZSTD)
        continue;
      /* columns: a INT32 required PLAIN; b INT64 optional with BIT_PACKED levels;
       * c INT96 required; d BOOLEAN optional with a dictionary (bit widths 1 and 0);
       * e BYTE_ARRAY/UTF8 optional: dictionary page, RLE_DICTIONARY v1, INDEX page,
       *   an unknown page type, an all-null v2 page with no values, a PLAIN v2 page */
      const int64_t N = 300;
      sel schema[] = {{"schema", -1, 0, -1, 0, 5},    {"a", PT_INT32, 0, -1, 0, 0},
                      {"b", PT_INT64, 1, -1, 0, 0},   {"c", PT_INT96, 0, -1, 0, 0},
                      {"d", PT_BOOLEAN, 1, -1, 0, 0}, {"e", PT_BYTE_ARRAY, 1, 0, 0, 0}};
      schunk ch[5];
      memset(ch, 0, sizeof ch);
      const char *names[] = {"a", "b", "c", "d", "e"};
      const int types[] = {PT_INT32, PT_INT64, PT_INT96, PT_BOOLEAN, PT_BYTE_ARRAY};
      for (int i = 0; i < 5; i++)
        ch[i].type = types[i], ch[i].codec = codec, ch[i].path = names[i], ch[i].num_values = N;
      buf body = {0};
      /* a: two pages of PLAIN int32 */
      for (int pg = 0; pg < 2; pg++) {
        body.n = 0;
        for (int64_t i = pg * 150; i < (pg + 1) * 150; i++)
          put_le32(&body, (uint32_t)(int32_t)(i * 7919 - 1000000));
        page_v1(&ch[0], 150, 0, 3, &body);
      }
      /* b: valid when i % 3 != 0; BIT_PACKED levels (MSB first), then PLAIN int64 */
      body.n = 0;
      for (int64_t byte = 0; byte < (N + 7) / 8; byte++) {
        unsigned v = 0;
        for (int k = 0; k < 8; k++) {
          int64_t i = byte * 8 + k;
          if (i < N && i % 3 != 0) v |= 0x80u >> k;
        }
        put8(&body, v);
      }
      for (int64_t i = 0; i < N; i++)
        if (i % 3) {
          int64_t x = (int64_t)(i * 0x123456789LL) ^ INT64_MIN;
          put(&body, &x, 8);
        }
      page_v1(&ch[1], N, 0, 4, &body);
      /* c: INT96 = 12 bytes, byte k of value i = i + k */
      body.n = 0;
      for (int64_t i = 0; i < N; i++)
        for (int k = 0; k < 12; k++) put8(&body, (unsigned)(i + k));
      page_v1(&ch[2], N, 0, 3, &body);
      /* d: dictionary {true, false}; page 1: 100 values, nulls at i % 5 == 4, indices
       * by bit-packing (bw 1); page 2: 200 values, no nulls, bit width 0 (all true) */
      body.n = 0;
      put8(&body, 0x01); /* PLAIN booleans: true, false */
      page_dict(&ch[3], 2, &body);
      {
        buf lv = {0}, all = {0};
        uint32_t lev[104] = {0}, idx[104] = {0};
        int nidx = 0;
        for (int i = 0; i < 100; i++) {
          lev[i] = i % 5 != 4;
          if (lev[i]) idx[nidx++] = (uint32_t)((i / 2) % 2); /* index 0 true, 1 false */
        }
        bitpacked_run(&lv, lev, 13, 1); /* 104 levels, 4 of padding */
        put_le32(&all, (uint32_t)lv.n);
        put(&all, lv.p, lv.n);
        put8(&all, 1); /* bit width */
        bitpacked_run(&all, idx, (nidx + 7) / 8, 1);
        page_v1(&ch[3], 100, 8, 3, &all);
        lv.n = all.n = 0;
        rle_run(&lv, 200, 1, 1);
        put_le32(&all, (uint32_t)lv.n);
        put(&all, lv.p, lv.n);
        put8(&all, 0); /* bit width 0: every index is 0 */
        rle_run(&all, 200, 0, 0);
        page_v1(&ch[3], 200, 2, 3, &all); /* PLAIN_DICTIONARY, the old name */
        buf_free(&lv), buf_free(&all);
      }
      /* e: dictionary of 3 strings; 100 values RLE_DICTIONARY (nulls at i % 4 == 0);
       * an INDEX page; an unknown page type 9; 100 nulls as v2 with no values
       * (is_compressed = false); 100 PLAIN values as v2 (compressed) */
      const char *dict[] = {"", "real", "東京"};
      body.n = 0;
      for (int k = 0; k < 3; k++)
        put_le32(&body, (uint32_t)strlen(dict[k])), put(&body, dict[k], strlen(dict[k]));
      page_dict(&ch[4], 3, &body);
      {
        buf lv = {0}, all = {0}, vals = {0};
        uint32_t lev[104] = {0}, idx[80];
        int nidx = 0;
        for (int i = 0; i < 100; i++) {
          lev[i] = i % 4 != 0;
          if (lev[i]) idx[nidx++] = (uint32_t)(i % 3);
        }
        bitpacked_run(&lv, lev, 13, 1);
        put_le32(&all, (uint32_t)lv.n);
        put(&all, lv.p, lv.n);
        put8(&all, 2);
        uint32_t packed[80] = {0};
        memcpy(packed, idx, sizeof(uint32_t) * (size_t)nidx);
        bitpacked_run(&all, packed, 9, 2);      /* 72 of the 75 */
        bitpacked_run(&all, packed + 72, 1, 2); /* the last 3, and 5 of padding */
        page_v1(&ch[4], 100, 8, 3, &all);
        page_other(&ch[4], 1, "index page body");
        page_other(&ch[4], 9, "a page type from the future");
        lv.n = vals.n = 0;
        rle_run(&lv, 100, 0, 1);
        page_v2(&ch[4], 100, 100, 0, &lv, &vals, 0);
        lv.n = vals.n = 0;
        rle_run(&lv, 100, 1, 1);
        for (int i = 0; i < 100; i++) {
          char s[32];
          int l = snprintf(s, sizeof s, "v%d", i * i);
          put_le32(&vals, (uint32_t)l), put(&vals, s, (size_t)l);
        }
        page_v2(&ch[4], 100, 0, 0, &lv, &vals, 1);
        buf_free(&lv), buf_free(&all), buf_free(&vals);
      }
      buf file = {0};
      make_file(&file, schema, 6, ch, 5, (sfile_opts){0, N});
      cfx_parquet *pq = NULL;
      CHECK_OK(open_buf(&file, &pq));
      if (!pq) {
        fprintf(stderr, "synthetic file (codec %d, junk %d) does not open\n", codec, junk);
      } else {
        CHECK(cfx_parquet_num_rows(pq) == N);
        CHECK(cfx_parquet_num_columns(pq) == 5);
        CHECK(cfx_parquet_column_type(pq, 2) == CFX_PARQUET_INT96);
        CHECK(cfx_parquet_column_type(pq, 4) == CFX_PARQUET_STRING);
        CHECK(strcmp(cfx_parquet_created_by(pq), "test_parquet.c synthetic writer") == 0);
        CHECK(cfx_parquet_num_metadata(pq) == 2);
        int64_t len = -1;
        CHECK(strcmp(cfx_parquet_metadata_find(pq, "note", &len), "made by test_parquet.c") == 0 &&
              len == 22);
        CHECK(cfx_parquet_metadata_find(pq, "novalue", &len) == NULL && len == 0);
        CHECK(strcmp(cfx_parquet_metadata_key(pq, 1), "novalue") == 0);
        cfx_parquet_chunk_info ci;
        CHECK_OK(cfx_parquet_chunk_describe(pq, 0, 4, &ci));
        CHECK(ci.codec == codec && ci.has_dictionary == 1 && ci.num_values == N);
        cfx_parquet_column col = {0};
        CHECK_OK(cfx_parquet_read_column(pq, 0, 0, &col));
        int ok = col.length == N && col.width == 4 && !col.validity && col.null_count == 0;
        for (int64_t i = 0; ok && i < N; i++)
          ok = ((int32_t *)col.values)[i] == (int32_t)(i * 7919 - 1000000);
        CHECK(ok);
        CHECK_OK(cfx_parquet_read_column(pq, 0, 1, &col));
        ok = col.length == N && col.width == 8 && col.validity && col.null_count == N / 3;
        for (int64_t i = 0; ok && i < N; i++)
          ok = i % 3 ? col.validity[i] == 1 &&
                           ((int64_t *)col.values)[i] == ((int64_t)(i * 0x123456789LL) ^ INT64_MIN)
                     : col.validity[i] == 0 && ((int64_t *)col.values)[i] == 0;
        CHECK(ok);
        CHECK_OK(cfx_parquet_read_column(pq, 0, 2, &col));
        ok = col.type == CFX_PARQUET_INT96 && col.width == 12;
        for (int64_t i = 0; ok && i < N; i++)
          for (int k = 0; k < 12; k++) ok = ok && ((uint8_t *)col.values)[i * 12 + k] == (uint8_t)(i + k);
        CHECK(ok);
        CHECK_OK(cfx_parquet_read_column(pq, 0, 3, &col));
        ok = col.type == CFX_PARQUET_BOOL && col.width == 1 && col.null_count == 20;
        for (int64_t i = 0; ok && i < N; i++) {
          int valid = i >= 100 || i % 5 != 4;
          int want = i >= 100 ? 1 : valid ? (i / 2) % 2 == 0 : 0;
          ok = col.validity[i] == valid && ((uint8_t *)col.values)[i] == want;
        }
        CHECK(ok);
        CHECK_OK(cfx_parquet_read_column(pq, 0, 4, &col)); /* strings after booleans: buffers reused */
        ok = col.type == CFX_PARQUET_STRING && col.width == 0 && !col.values && col.null_count == 25 + 100;
        for (int64_t i = 0; ok && i < N; i++) {
          const char *want = NULL;
          char s[32];
          if (i < 100 && i % 4) want = dict[i % 3];
          if (i >= 200) snprintf(s, sizeof s, "v%d", (int)((i - 200) * (i - 200))), want = s;
          int64_t l = col.offsets[i + 1] - col.offsets[i];
          ok = want ? col.validity[i] && l == (int64_t)strlen(want) &&
                          memcmp(col.data + col.offsets[i], want, (size_t)l) == 0
                    : !col.validity[i] && l == 0;
          if (!ok) fprintf(stderr, "synthetic e[%lld] mismatch (codec %d)\n", (long long)i, codec);
        }
        CHECK(ok);
        cfx_parquet_column_release(&col);
        CHECK(col.values == NULL && col.data == NULL && col.length == 0);
        cfx_parquet_column_release(&col);
        cfx_parquet_column_release(NULL);
      }
      cfx_parquet_close(pq);
      buf_free(&file);
      buf_free(&body);
      for (int i = 0; i < 5; i++) buf_free(&ch[i].pages);
    }
  }
  junk_everywhere = 0;
}

/* ---- bad input -------------------------------------------------------------------------------- */

/* A one-column INT64 file whose only page is made by `page`; the read must fail with
 * code and a message containing `needle` (and the column name). */
typedef void (*page_fn)(schunk *c);
static void expect_read_error(const char *what, int type, int codec, int rep, int64_t rows, page_fn page,
                              int code, const char *needle) {
  sel schema[] = {{"schema", -1, 0, -1, 0, 1}, {"label", type, rep, -1, 0, 0}};
  schunk c;
  memset(&c, 0, sizeof c);
  c.type = type, c.codec = codec, c.path = "label", c.num_values = rows;
  page(&c);
  buf file = {0};
  make_file(&file, schema, 2, &c, 1, (sfile_opts){0, rows});
  cfx_parquet *pq = NULL;
  int rc = open_buf(&file, &pq);
  CHECK(rc == 0);
  if (pq) {
    cfx_parquet_column col = {0};
    rc = cfx_parquet_read_column(pq, 0, 0, &col);
    int ok = rc == code && strstr(cfx_last_error(), needle) && strstr(cfx_last_error(), "'label'") &&
             strstr(cfx_last_error(), "synthetic.parquet");
    CHECK(ok);
    if (!ok) fprintf(stderr, "  %s: rc %d (want %d), message: %s\n", what, rc, code, cfx_last_error());
    CHECK(col.values == NULL && col.length == 0); /* released on failure */
    cfx_parquet_column_release(&col);
  }
  cfx_parquet_close(pq);
  buf_free(&file);
  buf_free(&c.pages);
}

static void plain10(buf *b) {
  for (int64_t i = 0; i < 10; i++) put(b, &i, 8);
}
static void pg_unknown_encoding(schunk *c) {
  buf b = {0};
  plain10(&b);
  page_v1(c, 10, 42, 3, &b);
  buf_free(&b);
}
static void pg_delta_on_double(schunk *c) {
  buf b = {0};
  plain10(&b);
  page_v1(c, 10, 5, 3, &b);
  buf_free(&b);
}
static void pg_plain(schunk *c) {
  buf b = {0};
  plain10(&b);
  page_v1(c, 10, 0, 3, &b);
  buf_free(&b);
}
static void pg_lying_compressed(schunk *c) { /* header claims 1000 stored bytes, 80 follow */
  buf b = {0};
  plain10(&b);
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, 80, 1000, 5, sub, 4, 0);
  put(&c->pages, b.p, b.n);
  buf_free(&b);
}
static void pg_lying_uncompressed(schunk *c) { /* UNCOMPRESSED page of 80 bytes claims 96 */
  buf b = {0};
  plain10(&b);
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, 96, 80, 5, sub, 4, 0);
  put(&c->pages, b.p, b.n);
  buf_free(&b);
}
static void pg_huge(schunk *c) { /* a page claiming 2 GiB - 1 uncompressed */
  buf b = {0};
  plain10(&b);
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, INT32_MAX, 80, 5, sub, 4, 0);
  put(&c->pages, b.p, b.n);
  buf_free(&b);
}
static void pg_snappy_lies(schunk *c) { /* snappy stream of 80 bytes, header says 81 */
  buf b = {0}, z = {0};
  plain10(&b);
  compress_by_hand(CFX_PARQUET_SNAPPY, &b, &z);
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, 81, (int64_t)z.n, 5, sub, 4, 0);
  put(&c->pages, z.p, z.n);
  buf_free(&b), buf_free(&z);
}
static void pg_gzip_short(schunk *c) { /* gzip data holding 80 bytes, header says 800 */
  buf b = {0}, z = {0};
  plain10(&b);
  compress_by_hand(CFX_PARQUET_GZIP, &b, &z);
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, 800, (int64_t)z.n, 5, sub, 4, 0);
  put(&c->pages, z.p, z.n);
  buf_free(&b), buf_free(&z);
}
static void pg_gzip_corrupt(schunk *c) {
  buf b = {0}, z = {0};
  plain10(&b);
  compress_by_hand(CFX_PARQUET_GZIP, &b, &z);
  z.p[12] ^= 0xff; /* the stored block's LEN */
  int64_t sub[4] = {10, 0, 3, 3};
  write_page_header(&c->pages, 0, 80, (int64_t)z.n, 5, sub, 4, 0);
  put(&c->pages, z.p, z.n);
  buf_free(&b), buf_free(&z);
}
static void pg_too_many_values(schunk *c) {
  buf b = {0};
  plain10(&b);
  page_v1(c, 11, 0, 3, &b);
  buf_free(&b);
}
static void pg_short_values(schunk *c) { /* 10 values but 79 bytes */
  buf b = {0};
  plain10(&b);
  b.n--;
  page_v1(c, 10, 0, 3, &b);
  buf_free(&b);
}
static void pg_dict_missing(schunk *c) {
  buf b = {0};
  put8(&b, 1);
  rle_run(&b, 10, 0, 1);
  page_v1(c, 10, 8, 3, &b);
  buf_free(&b);
}
static void pg_dict_index_range(schunk *c) {
  buf d = {0}, b = {0};
  plain10(&d);
  page_dict(c, 10, &d);
  put8(&b, 4);
  rle_run(&b, 10, 12, 4); /* index 12 of 10 */
  page_v1(c, 10, 8, 3, &b);
  buf_free(&d), buf_free(&b);
}
static void pg_dict_bomb(schunk *c) { /* one 4 KiB string, repeated 20000 times */
  buf d = {0}, b = {0};
  put_le32(&d, 4096);
  for (int i = 0; i < 4096; i++) put8(&d, 'x');
  page_dict(c, 1, &d);
  put8(&b, 1);
  rle_run(&b, 20000, 0, 1);
  page_v1(c, 20000, 8, 3, &b);
  buf_free(&d), buf_free(&b);
}
static void pg_bad_level(schunk *c) { /* definition level 2 in a column whose maximum is 1 */
  buf b = {0}, lv = {0};
  rle_run(&lv, 10, 2, 2);
  put_le32(&b, (uint32_t)lv.n);
  put(&b, lv.p, lv.n);
  page_v1(c, 10, 0, 3, &b);
  buf_free(&b), buf_free(&lv);
}
static void pg_levels_overrun(schunk *c) { /* level length prefix beyond the page */
  buf b = {0};
  put_le32(&b, 1000);
  put8(&b, 20);
  page_v1(c, 10, 0, 3, &b);
  buf_free(&b);
}
static void pg_nulls_lie(schunk *c) { /* v2 page says 3 nulls, levels say 0 */
  buf lv = {0}, v = {0};
  rle_run(&lv, 10, 1, 1);
  plain10(&v);
  page_v2(c, 10, 3, 0, &lv, &v, 0);
  buf_free(&lv), buf_free(&v);
}
static void pg_v2_levels_overrun(schunk *c) {
  int64_t sub[6] = {10, 0, 10, 0, 5000, 0};
  write_page_header(&c->pages, 3, 90, 90, 8, sub, 6, 0);
  for (int i = 0; i < 90; i++) put8(&c->pages, 0);
}
static void pg_bad_header(schunk *c) {
  put(&c->pages, "\x15\x00\x15\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 14);
}
static void pg_truncated_header(schunk *c) {
  put(&c->pages, "\x15\x00\x15\xa0", 4);
}
static void pg_delta_bad_block(schunk *c) { /* DELTA_BINARY_PACKED with block size 100 */
  buf b = {0};
  put_varint(&b, 100), put_varint(&b, 4), put_varint(&b, 10), put_zz(&b, 0);
  for (int i = 0; i < 64; i++) put8(&b, 0);
  page_v1(c, 10, 5, 3, &b);
  buf_free(&b);
}
static void pg_delta_wide(schunk *c) { /* a miniblock bit width of 65 */
  buf b = {0};
  put_varint(&b, 128), put_varint(&b, 4), put_varint(&b, 10), put_zz(&b, 0), put_zz(&b, 1);
  put8(&b, 65), put8(&b, 0), put8(&b, 0), put8(&b, 0);
  for (int i = 0; i < 1200; i++) put8(&b, 0);
  page_v1(c, 10, 5, 3, &b);
  buf_free(&b);
}
static void pg_delta_values(schunk *c) { /* a correct DELTA_BINARY_PACKED page: 5, 3, 8, 8, ... */
  buf b = {0};
  put_varint(&b, 128), put_varint(&b, 4), put_varint(&b, 10), put_zz(&b, 5);
  put_zz(&b, -2); /* min delta */
  put8(&b, 3), put8(&b, 0), put8(&b, 0), put8(&b, 0);
  /* deltas - min: 0, 7, 2, 2, 2, 2, 2, 2, 2 (+ padding to 32 values of 3 bits = 12 bytes) */
  uint32_t d[32] = {0, 7, 2, 2, 2, 2, 2, 2, 2};
  uint64_t acc = 0;
  int nacc = 0;
  for (int i = 0; i < 32; i++) {
    acc |= (uint64_t)d[i] << nacc;
    nacc += 3;
    while (nacc >= 8) put8(&b, acc & 0xff), acc >>= 8, nacc -= 8;
  }
  page_v1(c, 10, 5, 3, &b);
  buf_free(&b);
}

static void test_synthetic_bad(void) {
  expect_read_error("unknown encoding", PT_INT64, 0, 0, 10, pg_unknown_encoding, CFX_EFORMAT,
                    "unsupported encoding UNKNOWN (42)");
  expect_read_error("DELTA on DOUBLE", PT_DOUBLE, 0, 0, 10, pg_delta_on_double, CFX_EFORMAT,
                    "unsupported encoding DELTA_BINARY_PACKED (5) for a DOUBLE column");
  expect_read_error("BROTLI", PT_INT64, CFX_PARQUET_BROTLI, 0, 10, pg_plain, CFX_EFORMAT,
                    "unsupported compression codec BROTLI (4)");
  expect_read_error("LZ4_RAW", PT_INT64, CFX_PARQUET_LZ4_RAW, 0, 10, pg_plain, CFX_EFORMAT,
                    "codec LZ4_RAW (7)");
  expect_read_error("codec 99", PT_INT64, 99, 0, 10, pg_plain, CFX_EFORMAT, "codec UNKNOWN (99)");
  expect_read_error("lying compressed size", PT_INT64, 0, 0, 10, pg_lying_compressed, CFX_EFORMAT,
                    "claims 1000 stored bytes");
  expect_read_error("lying uncompressed size", PT_INT64, 0, 0, 10, pg_lying_uncompressed, CFX_EFORMAT,
                    "claims 96 uncompressed");
  expect_read_error("huge page", PT_INT64, CFX_PARQUET_ZSTD, 0, 10, pg_huge, CFX_ERANGE,
                    "2147483647 is out of range");
  expect_read_error("snappy lies", PT_INT64, CFX_PARQUET_SNAPPY, 0, 10, pg_snappy_lies, CFX_EFORMAT,
                    "SNAPPY data holds 80 bytes");
  expect_read_error("gzip short", PT_INT64, CFX_PARQUET_GZIP, 0, 10, pg_gzip_short, CFX_EFORMAT, "GZIP");
  expect_read_error("gzip corrupt", PT_INT64, CFX_PARQUET_GZIP, 0, 10, pg_gzip_corrupt, CFX_EFORMAT, "GZIP");
  expect_read_error("too many values", PT_INT64, 0, 0, 10, pg_too_many_values, CFX_EFORMAT,
                    "page holds 11 values");
  expect_read_error("short values", PT_INT64, 0, 0, 10, pg_short_values, CFX_EFORMAT,
                    "need 80 bytes, the page has 79");
  expect_read_error("pages end early", PT_INT64, 0, 0, 20, pg_plain, CFX_EFORMAT,
                    "end after 10 of 20 values");
  expect_read_error("no dictionary", PT_INT64, 0, 0, 10, pg_dict_missing, CFX_EFORMAT,
                    "without a dictionary page");
  expect_read_error("dictionary index", PT_INT64, 0, 0, 10, pg_dict_index_range, CFX_EFORMAT,
                    "dictionary index 12 out of range");
  expect_read_error("bad level", PT_INT64, 0, 1, 10, pg_bad_level, CFX_EFORMAT,
                    "RLE value wider than its bit width");
  expect_read_error("levels overrun", PT_INT64, 0, 1, 10, pg_levels_overrun, CFX_EFORMAT,
                    "definition levels claim 1000 bytes");
  expect_read_error("nulls lie", PT_INT64, 0, 1, 10, pg_nulls_lie, CFX_EFORMAT, "page header says 3 nulls");
  expect_read_error("v2 levels overrun", PT_INT64, 0, 1, 10, pg_v2_levels_overrun, CFX_EFORMAT,
                    "level lengths 0 + 5000");
  expect_read_error("bad header", PT_INT64, 0, 0, 10, pg_bad_header, CFX_EFORMAT, "malformed page header");
  expect_read_error("truncated header", PT_INT64, 0, 0, 10, pg_truncated_header, CFX_EFORMAT,
                    "malformed page header");
  expect_read_error("delta block", PT_INT64, 0, 0, 10, pg_delta_bad_block, CFX_EFORMAT, "block size");
  expect_read_error("delta width", PT_INT64, 0, 0, 10, pg_delta_wide, CFX_EFORMAT, "bit width over 64");

  /* a correct DELTA_BINARY_PACKED page, and the dictionary bomb under a small cap */
  {
    sel schema[] = {{"schema", -1, 0, -1, 0, 1}, {"label", PT_INT32, 0, -1, 0, 0}};
    schunk c;
    memset(&c, 0, sizeof c);
    c.type = PT_INT32, c.path = "label", c.num_values = 10;
    pg_delta_values(&c);
    buf file = {0};
    make_file(&file, schema, 2, &c, 1, (sfile_opts){0, 10});
    cfx_parquet *pq = NULL;
    CHECK_OK(open_buf(&file, &pq));
    cfx_parquet_column col = {0};
    if (pq) CHECK_OK(cfx_parquet_read_column(pq, 0, 0, &col));
    int32_t want[10] = {5, 3, 8, 8, 8, 8, 8, 8, 8, 8};
    CHECK(col.length == 10 && col.values && memcmp(col.values, want, sizeof want) == 0);
    cfx_parquet_column_release(&col);
    cfx_parquet_close(pq);
    buf_free(&file), buf_free(&c.pages);

    schema[1].type = PT_BYTE_ARRAY;
    memset(&c, 0, sizeof c);
    c.type = PT_BYTE_ARRAY, c.path = "label", c.num_values = 20000;
    pg_dict_bomb(&c);
    make_file(&file, schema, 2, &c, 1, (sfile_opts){0, 20000});
    pq = NULL;
    CHECK_OK(open_buf(&file, &pq));
    if (pq) {
      CHECK_OK(cfx_parquet_set_max_bytes(pq, 16 << 20));
      int rc = cfx_parquet_read_column(pq, 0, 0, &col);
      CHECK(rc == CFX_ERANGE);
      CHECK_CONTAINS(cfx_last_error(), "exceed the cap of 16777216 bytes");
      CHECK(cfx_parquet_set_max_bytes(pq, -1) == CFX_EINVAL);
      CHECK_OK(cfx_parquet_set_max_bytes(pq, 0)); /* default: 4 GiB, the 82 MB fit */
      CHECK_OK(cfx_parquet_read_column(pq, 0, 0, &col));
      CHECK(col.length == 20000 && col.offsets[20000] == (int64_t)20000 * 4096);
      cfx_parquet_column_release(&col);
    }
    cfx_parquet_close(pq);
    buf_free(&file), buf_free(&c.pages);
  }

  /* open-time refusals: nested group, repeated column, type mismatch, chunk outside the
   * file, row count lie, unknown physical type, deep nesting, huge list */
  struct {
    const char *what;
    sel schema[4];
    int nschema;
    int chunk_type;
    int64_t offset_delta, rows_delta;
    const char *needle;
  } cases[] = {
      {"nested",
       {{"schema", -1, 0, -1, 0, 1}, {"grp", -1, 1, -1, 0, 1}, {"label", PT_INT64, 1, -1, 0, 0}},
       3,
       PT_INT64,
       0,
       0,
       "column 'grp' is a nested group of 1 fields"},
      {"repeated",
       {{"schema", -1, 0, -1, 0, 1}, {"label", PT_INT64, 2, -1, 0, 0}},
       2,
       PT_INT64,
       0,
       0,
       "column 'label' is REPEATED"},
      {"type mismatch",
       {{"schema", -1, 0, -1, 0, 1}, {"label", PT_INT64, 0, -1, 0, 0}},
       2,
       PT_DOUBLE,
       0,
       0,
       "stored as DOUBLE (5) but the schema says INT64"},
      {"chunk outside",
       {{"schema", -1, 0, -1, 0, 1}, {"label", PT_INT64, 0, -1, 0, 0}},
       2,
       PT_INT64,
       1 << 20,
       0,
       "lies outside the data area"},
      {"rows lie",
       {{"schema", -1, 0, -1, 0, 1}, {"label", PT_INT64, 0, -1, 0, 0}},
       2,
       PT_INT64,
       0,
       5,
       "the footer says 15 rows but its row groups hold 10"},
      {"physical type 8",
       {{"schema", -1, 0, -1, 0, 1}, {"label", 8, 0, -1, 0, 0}},
       2,
       8,
       0,
       0,
       "column 'label' has physical type 8"},
      {"fixed of 0",
       {{"schema", -1, 0, -1, 0, 1}, {"label", PT_FIXED, 0, -1, 0, 0}},
       2,
       PT_FIXED,
       0,
       0,
       "FIXED_LEN_BYTE_ARRAY of length 0"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    schunk c;
    memset(&c, 0, sizeof c);
    c.type = cases[k].chunk_type, c.path = "label", c.num_values = 10, c.offset_delta = cases[k].offset_delta;
    pg_plain(&c);
    buf file = {0};
    make_file(&file, cases[k].schema, cases[k].nschema, &c, 1, (sfile_opts){cases[k].rows_delta, 10});
    cfx_parquet *pq = (cfx_parquet *)&file; /* must be reset to NULL */
    int rc = open_buf(&file, &pq);
    int ok = rc == CFX_EFORMAT && pq == NULL && strstr(cfx_last_error(), cases[k].needle) &&
             strstr(cfx_last_error(), "synthetic.parquet");
    CHECK(ok);
    if (!ok) fprintf(stderr, "  %s: rc %d, message: %s\n", cases[k].what, rc, cfx_last_error());
    buf_free(&file), buf_free(&c.pages);
  }

  /* footers made by hand: deep nesting, a list longer than the footer, no schema */
  {
    const char *needles[] = {"nested deeper than 64", "list of 1000000 elements", "lacks schema"};
    for (int k = 0; k < 3; k++) {
      buf file = {0}, meta = {0};
      put(&file, "PAR1", 4);
      tw w = {&meta, {0}, 0};
      tw_i32(&w, 1, 1);
      if (k == 0) {
        for (int d = 0; d < 100; d++) tw_begin(&w, 20);
        for (int d = 0; d < 100; d++) tw_end(&w);
      } else if (k == 1) {
        tw_list(&w, 2, CT_LIST, CT_STRUCT, 1000000);
      }
      put8(&meta, 0);
      put(&file, meta.p, meta.n);
      put_le32(&file, (uint32_t)meta.n);
      put(&file, "PAR1", 4);
      cfx_parquet *pq = NULL;
      int rc = open_buf(&file, &pq);
      CHECK(rc == CFX_EFORMAT && pq == NULL);
      CHECK_CONTAINS(cfx_last_error(), needles[k]);
      CHECK_CONTAINS(cfx_last_error(), "malformed footer");
      buf_free(&file), buf_free(&meta);
    }
  }
}

/* Damaged copies of a real fixture. */
static void test_damaged_fixture(void) {
  char path[8192];
  snprintf(path, sizeof path, "%s/rs_v1_snappy_dict.parquet", fixture_dir);
  int64_t n;
  uint8_t *good = read_file(path, &n);
  CHECK(good != NULL && n > 1000);
  if (!good) return;
  uint8_t *b = malloc((size_t)n);
  cfx_parquet *pq;

  /* bad magic at either end, PARE */
  memcpy(b, good, (size_t)n);
  b[0] = 'Q';
  CHECK(cfx_parquet_open_memory(b, n, "x.parquet", &pq) == CFX_EFORMAT && pq == NULL);
  CHECK_CONTAINS(cfx_last_error(), "x.parquet: not a Parquet file: starts with 51 41 52 31");
  memcpy(b, good, (size_t)n);
  b[n - 1] = '2';
  CHECK(cfx_parquet_open_memory(b, n, "x.parquet", &pq) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "no 'PAR1' at the end");
  memcpy(b, good, (size_t)n);
  b[n - 1] = 'E';
  CHECK(cfx_parquet_open_memory(b, n, "x.parquet", &pq) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "encrypted");
  /* footer length beyond the file, and zero */
  memcpy(b, good, (size_t)n);
  uint32_t big = (uint32_t)n;
  memcpy(b + n - 8, &big, 4);
  CHECK(cfx_parquet_open_memory(b, n, "x.parquet", &pq) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "does not fit the file");
  memset(b + n - 8, 0, 4);
  CHECK(cfx_parquet_open_memory(b, n, "x.parquet", &pq) == CFX_EFORMAT);
  /* footer length pointing inside the footer: whatever it parses, a clean result */
  for (uint32_t delta = 1; delta < 64; delta++) {
    memcpy(b, good, (size_t)n);
    uint32_t fl;
    memcpy(&fl, good + n - 8, 4);
    fl -= delta;
    memcpy(b + n - 8, &fl, 4);
    pq = NULL;
    int rc = cfx_parquet_open_memory(b, n, "x.parquet", &pq);
    CHECK(rc <= 0 && (rc == 0) == (pq != NULL));
    cfx_parquet_close(pq);
  }
  /* truncated anywhere: never opens (the tail magic is gone) */
  int bad = 0;
  for (int64_t cut = 0; cut < n; cut += cut < 64 ? 1 : 7) {
    pq = NULL;
    int rc = cfx_parquet_open_memory(good, cut, "cut.parquet", &pq);
    if (rc != CFX_EFORMAT || pq || !strstr(cfx_last_error(), "cut.parquet")) bad++;
    cfx_parquet_close(pq);
  }
  CHECK(bad == 0);
  /* every footer byte flipped, then everything read */
  uint32_t flen;
  memcpy(&flen, good + n - 8, 4);
  int64_t fstart = n - 8 - (int64_t)flen, opened = 0, failed_reads = 0;
  bad = 0;
  for (int64_t i = fstart; i < n - 8; i++) {
    for (int v = 0; v < 3; v++) {
      memcpy(b, good, (size_t)n);
      b[i] = v == 0 ? (uint8_t)~good[i] : v == 1 ? 0 : (uint8_t)(good[i] + 1);
      pq = NULL;
      int rc = cfx_parquet_open_memory(b, n, "flip.parquet", &pq);
      if (rc > 0 || (rc == 0) != (pq != NULL) || (rc < 0 && !*cfx_last_error())) bad++;
      if (!pq) continue;
      opened++;
      cfx_parquet_column col = {0};
      for (int32_t g = 0; g < cfx_parquet_num_row_groups(pq); g++)
        for (int32_t j = 0; j < cfx_parquet_num_columns(pq); j++) {
          int r2 = cfx_parquet_read_column(pq, g, j, &col);
          if (r2 > 0 || (r2 < 0 && !*cfx_last_error())) bad++;
          failed_reads += r2 < 0;
        }
      cfx_parquet_column_release(&col);
      cfx_parquet_close(pq);
    }
  }
  CHECK(bad == 0);
  printf("  footer flips: %lld bytes x 3, %lld opened, %lld failed reads\n", (long long)(n - 8 - fstart),
         (long long)opened, (long long)failed_reads);
  free(b);
  free(good);
}

/* Random mutations of every fixture, and random buffers: clean results only. */
static void test_random_damage(void) {
  DIR *d = opendir(fixture_dir);
  if (!d) return;
  struct dirent *e;
  int64_t runs = 0, opened = 0, ok_reads = 0, bad = 0;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 9 || strcmp(e->d_name + l - 8, ".parquet") != 0) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, e->d_name);
    int64_t n;
    uint8_t *good = read_file(path, &n);
    if (!good) continue;
    uint8_t *b = malloc((size_t)n);
    for (int it = 0; it < 150; it++) {
      memcpy(b, good, (size_t)n);
      int flips = 1 + (int)(rng() % 4);
      for (int k = 0; k < flips; k++) {
        int64_t at = it % 2 ? (int64_t)(rng() % (uint32_t)n)
                            : n - 1 - (int64_t)(rng() % (uint32_t)(n < 4000 ? n : 4000));
        b[at] = rng() % 3 ? (uint8_t)rng() : (uint8_t)(b[at] ^ (1u << (rng() % 8)));
      }
      memcpy(b + n - 4, "PAR1", 4);
      cfx_parquet *pq = NULL;
      int rc = cfx_parquet_open_memory(b, n, e->d_name, &pq);
      runs++;
      if (rc > 0 || (rc == 0) != (pq != NULL)) bad++;
      if (!pq) continue;
      opened++;
      cfx_parquet_set_max_bytes(pq, 256 << 20);
      cfx_parquet_column col = {0};
      for (int32_t g = 0; g < cfx_parquet_num_row_groups(pq); g++)
        for (int32_t j = 0; j < cfx_parquet_num_columns(pq); j++) {
          int r2 = cfx_parquet_read_column(pq, g, j, &col);
          if (r2 > 0 || (r2 < 0 && !*cfx_last_error())) bad++;
          ok_reads += r2 == 0;
        }
      cfx_parquet_column_release(&col);
      cfx_parquet_close(pq);
    }
    free(b);
    free(good);
  }
  closedir(d);
  CHECK(bad == 0);
  CHECK(runs > 1000);
  printf("  random damage: %lld files, %lld opened, %lld chunk reads succeeded\n", (long long)runs,
         (long long)opened, (long long)ok_reads);
  /* random buffers, some dressed with the magic and a plausible footer length */
  bad = 0;
  for (int it = 0; it < 3000; it++) {
    int64_t n = rng() % 600;
    uint8_t *b = malloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)rng();
    if (it % 2 && n >= 12) {
      memcpy(b, "PAR1", 4);
      memcpy(b + n - 4, "PAR1", 4);
      uint32_t fl = rng() % (uint32_t)(n - 11);
      memcpy(b + n - 8, &fl, 4);
    }
    cfx_parquet *pq = NULL;
    int rc = cfx_parquet_open_memory(b, n, "random", &pq);
    if (rc > 0 || (rc == 0) != (pq != NULL) || (rc < 0 && !strstr(cfx_last_error(), "random"))) bad++;
    cfx_parquet_close(pq);
    free(b);
  }
  CHECK(bad == 0);
}

/* Files on disk that are not Parquet, and argument checking. */
static void test_files_and_arguments(void) {
  char tmpl[] = "/tmp/cfx_pq_XXXXXX";
  int fd = mkstemp(tmpl);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  cfx_parquet *pq = (cfx_parquet *)tmpl;
  CHECK(cfx_parquet_open(tmpl, &pq) == CFX_EFORMAT && pq == NULL); /* zero bytes */
  CHECK_CONTAINS(cfx_last_error(), tmpl);
  CHECK_CONTAINS(cfx_last_error(), "0 bytes is too short");
  FILE *f = fopen(tmpl, "wb");
  if (f) fwrite("PAR1 hello PAR1", 1, 15, f), fclose(f);
  CHECK(cfx_parquet_open(tmpl, &pq) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "footer length");
  unlink(tmpl);
  CHECK(cfx_parquet_open("/nonexistent/HFCF_small_0.parquet", &pq) == CFX_EIO);
  CHECK_CONTAINS(cfx_last_error(), "cannot open '/nonexistent/HFCF_small_0.parquet'");
  CHECK(cfx_parquet_open("/tmp", &pq) == CFX_EIO);
  CHECK_CONTAINS(cfx_last_error(), "not a regular file");
  CHECK(cfx_parquet_open(NULL, &pq) == CFX_EINVAL);
  CHECK(cfx_parquet_open("x", NULL) == CFX_EINVAL);
  CHECK(cfx_parquet_open_memory(NULL, 10, NULL, &pq) == CFX_EINVAL);
  CHECK(cfx_parquet_open_memory(NULL, 0, NULL, &pq) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "<memory>: 0 bytes");
  cfx_parquet_close(NULL);
  CHECK(cfx_parquet_num_rows(NULL) == CFX_EINVAL);
  CHECK(cfx_parquet_num_columns(NULL) == CFX_EINVAL);
  CHECK(cfx_parquet_column_name(NULL, 0) == NULL);
  CHECK(strcmp(cfx_parquet_created_by(NULL), "") == 0);
  CHECK(strcmp(cfx_parquet_type_name(CFX_PARQUET_STRING), "STRING") == 0);
  CHECK(strcmp(cfx_parquet_type_name(99), "UNKNOWN") == 0);
  CHECK(strcmp(cfx_parquet_codec_name(CFX_PARQUET_ZSTD), "ZSTD") == 0);

  char path[8192];
  snprintf(path, sizeof path, "%s/rs_v1_gzip_plain.parquet", fixture_dir);
  pq = NULL;
  CHECK_OK(cfx_parquet_open(path, &pq));
  if (!pq) return;
  cfx_parquet_column col = {0};
  CHECK(cfx_parquet_read_column(pq, 1, 0, &col) == CFX_EINVAL);
  CHECK_CONTAINS(cfx_last_error(), "row group 1 / column 0 out of range (1 row groups, 13 columns)");
  CHECK(cfx_parquet_read_column(pq, 0, 13, &col) == CFX_EINVAL);
  CHECK(cfx_parquet_read_column(pq, 0, -1, &col) == CFX_EINVAL);
  CHECK(cfx_parquet_read_column(pq, 0, 0, NULL) == CFX_EINVAL);
  CHECK(cfx_parquet_row_group_num_rows(pq, 1) == CFX_EINVAL);
  CHECK(cfx_parquet_column_type(pq, 13) == CFX_EINVAL);
  CHECK(cfx_parquet_column_name(pq, 13) == NULL);
  CHECK(cfx_parquet_column_index(pq, "no_such_column") == CFX_ENOTFOUND);
  CHECK_CONTAINS(cfx_last_error(), "no column named 'no_such_column'");
  CHECK(cfx_parquet_metadata_key(pq, 1000) == NULL);
  /* the memory cap on a real chunk: image_data of 30 rows is several KB */
  int32_t img = cfx_parquet_column_index(pq, "image_data");
  CHECK(img == 4);
  CHECK_OK(cfx_parquet_set_max_bytes(pq, 1024));
  CHECK(cfx_parquet_read_column(pq, 0, img, &col) == CFX_ERANGE);
  CHECK_CONTAINS(cfx_last_error(), "column 'image_data'");
  CHECK_OK(cfx_parquet_set_max_bytes(pq, 0));
  CHECK_OK(cfx_parquet_read_column(pq, 0, img, &col));
  CHECK(col.length == 30 && col.validity == NULL); /* image_data is REQUIRED there */
  cfx_parquet_column_release(&col);
  cfx_parquet_close(pq);
}

int main(void) {
  find_fixtures();
  test_sha256();
  int n = test_fixtures();
  printf("fixtures: %d files from %s\n", n, fixture_dir);
  test_synthetic_good();
  test_synthetic_bad();
  test_damaged_fixture();
  test_random_damage();
  test_files_and_arguments();
  return check_summary("test_parquet");
}
