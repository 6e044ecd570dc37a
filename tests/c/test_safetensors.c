/* test_safetensors.c: cfx/safetensors.h: a round trip through a file, hand-written
 * headers that the spec allows (escapes, whitespace, metadata, empty tensors), and one
 * clean error per kind of bad input, with a message naming the file and the tensor. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfx/cfx.h"
#include "check.h"

/* A file image from a JSON header (not padded) and n data bytes 0, 1, 2, ... */
static uint8_t *make(const char *json, int64_t ndata, int64_t *len) {
  size_t h = strlen(json);
  uint8_t *b = malloc(8 + h + (size_t)ndata + 1);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
  memcpy(b + 8, json, h);
  for (int64_t i = 0; i < ndata; i++) b[8 + h + i] = (uint8_t)i;
  *len = 8 + (int64_t)h + ndata;
  return b;
}

/* Open json + ndata bytes under the name "bad.st": expect code and both needles in
 * the message (needle2 may be NULL). */
static void expect_bad(const char *json, int64_t ndata, int code, const char *needle, const char *needle2) {
  int64_t n;
  uint8_t *b = make(json, ndata, &n);
  cfx_safetensors *st = (cfx_safetensors *)1;
  int rc = cfx_safetensors_open_memory(b, n, "bad.st", &st);
  CHECK(rc == code);
  CHECK(st == NULL);
  if (rc != code) fprintf(stderr, "  json %s: rc %d, expected %d: %s\n", json, rc, code, cfx_last_error());
  CHECK_CONTAINS(cfx_last_error(), "bad.st");
  if (needle) CHECK_CONTAINS(cfx_last_error(), needle);
  if (needle2) CHECK_CONTAINS(cfx_last_error(), needle2);
  free(b);
}

static void test_round_trip(void) {
  char path[] = "/tmp/cfx_st_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  float a[6] = {1.5f, -2, 3, 4, 5, 6.25f};
  int64_t b[2] = {-7, INT64_MAX};
  uint8_t c[1] = {42};
  const char *names[] = {"layer.weight", "ids \"q\"\n\xc3\xa9", "empty", "scalar"};
  int32_t dtypes[] = {CFX_SAFETENSORS_F32, CFX_SAFETENSORS_I64, CFX_SAFETENSORS_BF16, CFX_SAFETENSORS_U8};
  int64_t sa[] = {2, 3}, sb[] = {2}, se[] = {0, 5};
  const int64_t *shapes[] = {sa, sb, se, NULL};
  int32_t ndims[] = {2, 1, 2, 0};
  const void *data[] = {a, b, NULL, c};
  const char *mk[] = {"format", "note"}, *mv[] = {"pt", "tab\there \\ \x01"};
  CHECK_OK(cfx_safetensors_write(path, 4, names, dtypes, shapes, ndims, data, 2, mk, mv));

  FILE *f = fopen(path, "rb");
  uint8_t len8[8];
  CHECK(f && fread(len8, 1, 8, f) == 8);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  CHECK(hlen % 8 == 0);
  if (f) fclose(f);

  cfx_safetensors *st = NULL;
  CHECK_OK(cfx_safetensors_open(path, &st));
  if (st) {
    CHECK(cfx_safetensors_count(st) == 4);
    for (int32_t i = 0; i < 4; i++) {
      CHECK(strcmp(cfx_safetensors_name(st, i), names[i]) == 0);
      CHECK(cfx_safetensors_find(st, names[i]) == i);
      CHECK(cfx_safetensors_dtype(st, i) == dtypes[i]);
      CHECK(cfx_safetensors_ndim(st, i) == ndims[i]);
      for (int32_t d = 0; d < ndims[i]; d++) CHECK(cfx_safetensors_shape(st, i)[d] == shapes[i][d]);
    }
    int64_t nb;
    const void *p = cfx_safetensors_data(st, 0, &nb);
    CHECK(nb == 24 && memcmp(p, a, 24) == 0);
    p = cfx_safetensors_data(st, 1, &nb);
    CHECK(nb == 16 && memcmp(p, b, 16) == 0);
    cfx_safetensors_data(st, 2, &nb);
    CHECK(nb == 0);
    p = cfx_safetensors_data(st, 3, &nb);
    CHECK(nb == 1 && *(const uint8_t *)p == 42);
    CHECK(cfx_safetensors_shape(st, 3) != NULL);
    CHECK(cfx_safetensors_find(st, "nope") == -1);
    CHECK(cfx_safetensors_name(st, 4) == NULL && cfx_safetensors_dtype(st, -1) == -1);
    CHECK(cfx_safetensors_data(st, 9, &nb) == NULL && nb == 0);
    CHECK(cfx_safetensors_num_metadata(st) == 2);
    CHECK(strcmp(cfx_safetensors_metadata(st, "format"), "pt") == 0);
    CHECK(strcmp(cfx_safetensors_metadata(st, "note"), mv[1]) == 0);
    CHECK(strcmp(cfx_safetensors_metadata_key(st, 1), "note") == 0);
    CHECK(cfx_safetensors_metadata(st, "missing") == NULL);
  }
  cfx_safetensors_close(st);
  cfx_safetensors_close(NULL);

  /* Writer refusals leave the target alone. */
  const char *dup[] = {"x", "x"};
  int32_t dt2[] = {CFX_SAFETENSORS_U8, CFX_SAFETENSORS_U8}, nd2[] = {0, 0};
  const int64_t *sh2[] = {NULL, NULL};
  const void *d2[] = {c, c};
  CHECK(cfx_safetensors_write(path, 2, dup, dt2, sh2, nd2, d2, 0, NULL, NULL) == CFX_EINVAL);
  CHECK_CONTAINS(cfx_last_error(), "'x'");
  int32_t baddt[] = {99};
  CHECK(cfx_safetensors_write(path, 1, dup, baddt, sh2, nd2, d2, 0, NULL, NULL) == CFX_EDTYPE);
  int64_t huge[] = {INT64_MAX / 2, 4};
  const int64_t *shh[] = {huge};
  int32_t ndh[] = {2};
  CHECK(cfx_safetensors_write(path, 1, dup, dt2, shh, ndh, d2, 0, NULL, NULL) == CFX_ERANGE);
  const char *meta[] = {"__metadata__"};
  CHECK(cfx_safetensors_write(path, 1, meta, dt2, sh2, nd2, d2, 0, NULL, NULL) == CFX_EINVAL);
  CHECK_OK(cfx_safetensors_open(path, &st));
  CHECK(cfx_safetensors_count(st) == 4);
  cfx_safetensors_close(st);
  unlink(path);

  CHECK(cfx_safetensors_open("/nonexistent/x.safetensors", &st) == CFX_EIO);
  CHECK_CONTAINS(cfx_last_error(), "/nonexistent/x.safetensors");
}

static void test_good_headers(void) {
  int64_t n;
  /* Whitespace, escapes (\u00e9, a surrogate pair, \/), keys in any order, empty tensor. */
  uint8_t *b = make(
      " { \"a\\u00e9\\ud83d\\ude00\\/\" : {\"data_offsets\":[0, 4], \"shape\" : [ 2 ],\"dtype\":\"F16\"},\n"
      "\"z\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[4,4]},"
      "\"__metadata__\":{\"k\":\"v\\\"\"}}   ",
      4, &n);
  cfx_safetensors *st = NULL;
  CHECK_OK(cfx_safetensors_open_memory(b, n, "good.st", &st));
  if (st) {
    CHECK(cfx_safetensors_count(st) == 2);
    CHECK(strcmp(cfx_safetensors_name(st, 0), "a\xc3\xa9\xf0\x9f\x98\x80/") == 0);
    CHECK(cfx_safetensors_dtype(st, 0) == CFX_SAFETENSORS_F16);
    int64_t nb;
    const uint8_t *p = cfx_safetensors_data(st, 0, &nb);
    CHECK(nb == 4 && p[0] == 0 && p[3] == 3);
    CHECK(strcmp(cfx_safetensors_metadata(st, "k"), "v\"") == 0);
  }
  cfx_safetensors_close(st);
  free(b);
  b = make("{}", 0, &n);
  CHECK_OK(cfx_safetensors_open_memory(b, n, "empty.st", &st));
  CHECK(cfx_safetensors_count(st) == 0 && cfx_safetensors_num_metadata(st) == 0);
  cfx_safetensors_close(st);
  free(b);
  /* Every dtype name and size. */
  const char *dn[] = {"F64", "F32",  "F16", "BF16", "I64", "I32",     "I16",    "I8",
                      "U8",  "BOOL", "U16", "U32",  "U64", "F8_E4M3", "F8_E5M2"};
  const int32_t ds[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 2, 4, 8, 1, 1};
  for (int32_t i = 0; i < CFX_SAFETENSORS_NUM_DTYPES; i++) {
    char json[128];
    snprintf(json, sizeof json, "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%d]}}", dn[i],
             3 * ds[i]);
    b = make(json, 3 * ds[i], &n);
    CHECK_OK(cfx_safetensors_open_memory(b, n, "dt.st", &st));
    CHECK(cfx_safetensors_dtype(st, 0) == i);
    CHECK(strcmp(cfx_safetensors_dtype_name(i), dn[i]) == 0 && cfx_safetensors_dtype_size(i) == ds[i]);
    cfx_safetensors_close(st);
    free(b);
  }
  CHECK(cfx_safetensors_dtype_name(15) == NULL && cfx_safetensors_dtype_size(-1) == 0);
}

#define T(name, rest) "{\"" name "\":{" rest "}}"

static void test_bad_inputs(void) {
  cfx_safetensors *st = (cfx_safetensors *)1;
  uint8_t tiny[5] = {0};
  CHECK(cfx_safetensors_open_memory(tiny, 5, "bad.st", &st) == CFX_EFORMAT && st == NULL);
  CHECK_CONTAINS(cfx_last_error(), "bad.st");
  CHECK(cfx_safetensors_open_memory(NULL, 0, "bad.st", &st) == CFX_EFORMAT);
  CHECK(cfx_safetensors_open_memory(tiny, 5, "bad.st", NULL) == CFX_EINVAL);

  /* Header length past the end, and over the 100 MB cap. */
  int64_t n;
  uint8_t *b = make("{}", 0, &n);
  b[0] = 3;
  CHECK(cfx_safetensors_open_memory(b, n, "bad.st", &st) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "past the end");
  b[0] = 0, b[5] = 1; /* 2^40 */
  CHECK(cfx_safetensors_open_memory(b, n, "bad.st", &st) == CFX_ERANGE);
  CHECK_CONTAINS(cfx_last_error(), "limit");
  free(b);
  /* Truncated: a valid file cut short anywhere is refused. */
  const char *ok = T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]");
  b = make(ok, 8, &n);
  for (int64_t cut = 0; cut < n; cut++) {
    int rc = cfx_safetensors_open_memory(b, cut, "cut.st", &st);
    CHECK(rc < 0 && st == NULL);
    CHECK_CONTAINS(cfx_last_error(), "cut.st");
  }
  CHECK_OK(cfx_safetensors_open_memory(b, n, "cut.st", &st));
  cfx_safetensors_close(st);
  free(b);

  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 4, CFX_EFORMAT, "'w'",
             "past the data");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]"), 8, CFX_EFORMAT, "'w'",
             "begin > end");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), 8, CFX_ESHAPE, "'w'",
             "12 bytes");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), 8, CFX_ERANGE, "'w'",
             "negative");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]"), 8,
             CFX_ERANGE, "'w'", "overflow");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]"), 8,
             CFX_ERANGE, "'w'", "64 bits");
  expect_bad(T("w", "\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, CFX_EDTYPE, "'w'", "Q4");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), 8, CFX_EFORMAT, "'w'",
             "integers");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2]"), 8, CFX_EFORMAT, "'w'", "data_offsets");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1"), 8, CFX_EFORMAT, "'w'",
             "\"x\"");
  expect_bad(T("w", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), 8,
             CFX_EFORMAT, "'w'", "duplicate");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]"), 9, CFX_EFORMAT, "'w'", "2");
  expect_bad(T("w", "\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]"), 8, CFX_EFORMAT, "'w'",
             "leading zero");
  expect_bad(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
      6, CFX_EFORMAT, "overlaps", "'a'");
  expect_bad(
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}",
      6, CFX_EFORMAT, "'a'", "duplicate");
  /* JSON that is not the grammar. */
  expect_bad("[]", 0, CFX_EFORMAT, "expected", NULL);
  expect_bad("{\"a\":1}", 0, CFX_EFORMAT, "'a'", NULL);
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]},}", 1, CFX_EFORMAT, "string",
             NULL);
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}} x", 1, CFX_EFORMAT, "trailing",
             NULL);
  expect_bad("{\"a\\q\":{}}", 0, CFX_EFORMAT, "escape", NULL);
  expect_bad("{\"a\\ud800\":{}}", 0, CFX_EFORMAT, "surrogate", NULL);
  expect_bad("{\"a\\u0000\":{}}", 0, CFX_EFORMAT, "u0000", NULL);
  expect_bad("{\"a\xff\":{}}", 0, CFX_EFORMAT, "UTF-8", NULL);
  expect_bad("{\"a\n\":{}}", 0, CFX_EFORMAT, "control", NULL);
  expect_bad("{\"__metadata__\":{\"k\":1}}", 0, CFX_EFORMAT, "__metadata__", "\"k\"");
  expect_bad("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, CFX_EFORMAT, "duplicate", NULL);
  expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]", 1, CFX_EFORMAT, "header ends",
             NULL);
}

int main(void) {
  test_round_trip();
  test_good_headers();
  test_bad_inputs();
  return check_summary("test_safetensors");
}
