/* safetensors.c: safetensors reader and writer (see cfx/safetensors.h). */
#define _GNU_SOURCE
#include "cfx/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Deepest shape accepted; far above any real tensor, it bounds the work per tensor. */
enum { MAX_NDIM = 64 };

static const char *const dtype_names[CFX_SAFETENSORS_NUM_DTYPES] = {
    "F64", "F32",  "F16", "BF16", "I64", "I32",     "I16",    "I8",
    "U8",  "BOOL", "U16", "U32",  "U64", "F8_E4M3", "F8_E5M2"};
static const int32_t dtype_sizes[CFX_SAFETENSORS_NUM_DTYPES] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 2, 4, 8, 1, 1};

const char *cfx_safetensors_dtype_name(int32_t dtype) {
  return dtype >= 0 && dtype < CFX_SAFETENSORS_NUM_DTYPES ? dtype_names[dtype] : NULL;
}

int32_t cfx_safetensors_dtype_size(int32_t dtype) {
  return dtype >= 0 && dtype < CFX_SAFETENSORS_NUM_DTYPES ? dtype_sizes[dtype] : 0;
}

/* Byte length of a tensor: product(shape) * size, or -1 on a negative dim or overflow. */
static int64_t tensor_bytes(const int64_t *shape, int32_t ndim, int32_t size) {
  int64_t n = size;
  for (int32_t d = 0; d < ndim; d++) {
    if (shape[d] < 0) return -1;
    if (shape[d] != 0 && n > INT64_MAX / shape[d]) return -1;
    n *= shape[d];
  }
  return n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static int utf8_len(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  int len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if ((size_t)len > n) return 0;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}

static int utf8_valid(const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    int l = utf8_len((const uint8_t *)s + i, n - i);
    if (!l) return 0;
    i += (size_t)l;
  }
  return 1;
}

/* ---- reader ------------------------------------------------------------------------- */

typedef struct {
  const char *name; /* in the arena */
  int32_t dtype, ndim;
  int64_t shape_at; /* index into the shape pool while parsing */
  const int64_t *shape;
  int64_t begin, end;
} tensor;

struct cfx_safetensors {
  char *file;
  void *map; /* non-NULL when the file is mapped by us */
  int64_t map_len;
  const uint8_t *data; /* data area */
  int64_t data_len;
  char *arena; /* decoded strings */
  tensor *t;
  int32_t n, cap;
  int64_t *shapes;
  int64_t nshapes, capshapes;
  const char **meta_keys, **meta_vals;
  int32_t nmeta, capmeta;
};

typedef struct {
  cfx_safetensors *st;
  const uint8_t *start, *p, *end;
  size_t arena_used;
  const char *tensor; /* the tensor being parsed, for messages */
} parser;

static int perr(parser *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *ps, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ps->tensor)
    return cfx__fail(code, "%s: tensor '%s': %s (header byte %lld)", ps->st->file, ps->tensor, msg,
                     (long long)(ps->p - ps->start));
  return cfx__fail(code, "%s: %s (header byte %lld)", ps->st->file, msg, (long long)(ps->p - ps->start));
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

/* Expect the character c after optional whitespace. */
static int expect(parser *ps, char c, const char *what) {
  skip_ws(ps);
  if (ps->p >= ps->end) return perr(ps, CFX_EFORMAT, "header ends where %s ('%c') was expected", what, c);
  if (*ps->p != (uint8_t)c)
    return perr(ps, CFX_EFORMAT, "expected %s ('%c'), found '%c'", what, c,
                *ps->p >= 0x20 && *ps->p < 0x7F ? *ps->p : '?');
  ps->p++;
  return 0;
}

static int hex4(parser *ps, uint32_t *v) {
  if (ps->end - ps->p < 4) return perr(ps, CFX_EFORMAT, "truncated \\u escape");
  uint32_t x = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = ps->p[i];
    x <<= 4;
    if (c >= '0' && c <= '9')
      x |= c - '0';
    else if (c >= 'a' && c <= 'f')
      x |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      x |= c - 'A' + 10;
    else
      return perr(ps, CFX_EFORMAT, "bad hex digit in \\u escape");
  }
  ps->p += 4;
  *v = x;
  return 0;
}

/* A JSON string, decoded to UTF-8 into the arena.  The decoded form plus its NUL is
 * never longer than the quoted source, so the arena (header length + 1) always fits. */
static int parse_string(parser *ps, const char **out) {
  int rc = expect(ps, '"', "a string");
  if (rc) return rc;
  char *dst = ps->st->arena + ps->arena_used, *o = dst;
  for (;;) {
    if (ps->p >= ps->end) return perr(ps, CFX_EFORMAT, "unterminated string");
    uint8_t c = *ps->p;
    if (c == '"') {
      ps->p++;
      break;
    }
    if (c < 0x20) return perr(ps, CFX_EFORMAT, "control character 0x%02x in a string", c);
    if (c != '\\') {
      int l = utf8_len(ps->p, (size_t)(ps->end - ps->p));
      if (!l) return perr(ps, CFX_EFORMAT, "invalid UTF-8 in a string");
      memcpy(o, ps->p, (size_t)l);
      o += l, ps->p += l;
      continue;
    }
    ps->p++;
    if (ps->p >= ps->end) return perr(ps, CFX_EFORMAT, "unterminated string");
    c = *ps->p++;
    switch (c) {
      case '"':
        *o++ = '"';
        break;
      case '\\':
        *o++ = '\\';
        break;
      case '/':
        *o++ = '/';
        break;
      case 'b':
        *o++ = '\b';
        break;
      case 'f':
        *o++ = '\f';
        break;
      case 'n':
        *o++ = '\n';
        break;
      case 'r':
        *o++ = '\r';
        break;
      case 't':
        *o++ = '\t';
        break;
      case 'u': {
        uint32_t cp;
        if ((rc = hex4(ps, &cp))) return rc;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return perr(ps, CFX_EFORMAT, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return perr(ps, CFX_EFORMAT, "high surrogate \\u%04x without its low half", cp);
          ps->p += 2;
          if ((rc = hex4(ps, &lo))) return rc;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return perr(ps, CFX_EFORMAT, "high surrogate \\u%04x without its low half", cp);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) return perr(ps, CFX_EFORMAT, "\\u0000 in a string is not supported");
        if (cp < 0x80) {
          *o++ = (char)cp;
        } else if (cp < 0x800) {
          *o++ = (char)(0xC0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          *o++ = (char)(0xE0 | (cp >> 12)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)),
          *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
          *o++ = (char)(0xF0 | (cp >> 18)), *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
          *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        return perr(ps, CFX_EFORMAT, "bad escape '\\%c' in a string", c >= 0x20 && c < 0x7F ? c : '?');
    }
  }
  *o++ = '\0';
  ps->arena_used += (size_t)(o - dst);
  *out = dst;
  return 0;
}

/* A JSON integer (no fraction, no exponent, no leading zeros) that fits int64_t. */
static int parse_int(parser *ps, const char *what, int64_t *v) {
  skip_ws(ps);
  int neg = 0;
  if (ps->p < ps->end && *ps->p == '-') neg = 1, ps->p++;
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
    return perr(ps, CFX_EFORMAT, "%s: expected an integer", what);
  if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
    return perr(ps, CFX_EFORMAT, "%s: integer with a leading zero", what);
  uint64_t x = 0;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
    uint64_t d = (uint64_t)(*ps->p - '0');
    if (x > ((uint64_t)INT64_MAX - d) / 10)
      return perr(ps, CFX_ERANGE, "%s: integer does not fit in 64 bits", what);
    x = x * 10 + d;
    ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
    return perr(ps, CFX_EFORMAT, "%s: only integers are allowed", what);
  if (neg) return perr(ps, CFX_ERANGE, "%s: negative value -%llu", what, (unsigned long long)x);
  *v = (int64_t)x;
  return 0;
}

/* An array of integers appended to the shape pool; *count = its length. */
static int parse_int_array(parser *ps, const char *what, int64_t *count) {
  cfx_safetensors *st = ps->st;
  int rc = expect(ps, '[', what);
  if (rc) return rc;
  *count = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == ']') {
    ps->p++;
    return 0;
  }
  for (;;) {
    int64_t v = 0;
    if ((rc = parse_int(ps, what, &v))) return rc;
    if (*count >= MAX_NDIM) return perr(ps, CFX_ERANGE, "%s: more than %d entries", what, MAX_NDIM);
    if (st->nshapes == st->capshapes) {
      int64_t cap = st->capshapes ? 2 * st->capshapes : 64;
      int64_t *p = realloc(st->shapes, (size_t)cap * sizeof *p);
      if (!p) return cfx__fail(CFX_ENOMEM, "%s: out of memory", st->file);
      st->shapes = p, st->capshapes = cap;
    }
    st->shapes[st->nshapes++] = v;
    ++*count;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
      ps->p++;
      return 0;
    }
    if ((rc = expect(ps, ',', "',' or ']' in an array"))) return rc;
  }
}

static int parse_tensor(parser *ps, const char *name) {
  cfx_safetensors *st = ps->st;
  if (st->n == st->cap) {
    int32_t cap = st->cap ? 2 * st->cap : 16;
    tensor *t = realloc(st->t, (size_t)cap * sizeof *t);
    if (!t) return cfx__fail(CFX_ENOMEM, "%s: out of memory", st->file);
    st->t = t, st->cap = cap;
  }
  tensor *t = &st->t[st->n];
  memset(t, 0, sizeof *t);
  t->name = name;
  ps->tensor = name;
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  int rc = expect(ps, '{', "a tensor object");
  if (rc) return rc;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') return perr(ps, CFX_EFORMAT, "empty tensor object");
  for (;;) {
    const char *key;
    if ((rc = parse_string(ps, &key))) return rc;
    if ((rc = expect(ps, ':', "':' after a key"))) return rc;
    if (!strcmp(key, "dtype")) {
      if (have_dtype++) return perr(ps, CFX_EFORMAT, "duplicate key \"dtype\"");
      const char *d;
      if ((rc = parse_string(ps, &d))) return rc;
      t->dtype = -1;
      for (int32_t i = 0; i < CFX_SAFETENSORS_NUM_DTYPES; i++)
        if (!strcmp(d, dtype_names[i])) t->dtype = i;
      if (t->dtype < 0) return perr(ps, CFX_EDTYPE, "unknown dtype \"%.40s\"", d);
    } else if (!strcmp(key, "shape")) {
      if (have_shape++) return perr(ps, CFX_EFORMAT, "duplicate key \"shape\"");
      int64_t nd;
      t->shape_at = st->nshapes;
      if ((rc = parse_int_array(ps, "shape", &nd))) return rc;
      t->ndim = (int32_t)nd;
    } else if (!strcmp(key, "data_offsets")) {
      if (have_offsets++) return perr(ps, CFX_EFORMAT, "duplicate key \"data_offsets\"");
      int64_t at = st->nshapes, cnt;
      if ((rc = parse_int_array(ps, "data_offsets", &cnt))) return rc;
      if (cnt != 2) return perr(ps, CFX_EFORMAT, "data_offsets has %lld entries, expected 2", (long long)cnt);
      t->begin = st->shapes[at], t->end = st->shapes[at + 1];
      st->nshapes = at; /* offsets do not stay in the pool */
    } else {
      return perr(ps, CFX_EFORMAT, "unknown key \"%.40s\" (expected dtype, shape, data_offsets)", key);
    }
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      break;
    }
    if ((rc = expect(ps, ',', "',' or '}' in a tensor object"))) return rc;
  }
  if (!have_dtype || !have_shape || !have_offsets)
    return perr(ps, CFX_EFORMAT, "missing key \"%s\"",
                !have_dtype   ? "dtype"
                : !have_shape ? "shape"
                              : "data_offsets");
  st->n++;
  ps->tensor = NULL;
  return 0;
}

static int parse_metadata(parser *ps) {
  cfx_safetensors *st = ps->st;
  int rc = expect(ps, '{', "the __metadata__ object");
  if (rc) return rc;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '}') {
    ps->p++;
    return 0;
  }
  for (;;) {
    const char *k, *v;
    if ((rc = parse_string(ps, &k))) return rc;
    if ((rc = expect(ps, ':', "':' after a key"))) return rc;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p != '"')
      return perr(ps, CFX_EFORMAT, "__metadata__ value of \"%.40s\" is not a string", k);
    if ((rc = parse_string(ps, &v))) return rc;
    for (int32_t i = 0; i < st->nmeta; i++)
      if (!strcmp(st->meta_keys[i], k))
        return perr(ps, CFX_EFORMAT, "duplicate __metadata__ key \"%.40s\"", k);
    if (st->nmeta == st->capmeta) {
      int32_t cap = st->capmeta ? 2 * st->capmeta : 8;
      const char **a = realloc(st->meta_keys, (size_t)cap * sizeof *a);
      if (!a) return cfx__fail(CFX_ENOMEM, "%s: out of memory", st->file);
      st->meta_keys = a;
      a = realloc(st->meta_vals, (size_t)cap * sizeof *a);
      if (!a) return cfx__fail(CFX_ENOMEM, "%s: out of memory", st->file);
      st->meta_vals = a, st->capmeta = cap;
    }
    st->meta_keys[st->nmeta] = k, st->meta_vals[st->nmeta] = v, st->nmeta++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      return 0;
    }
    if ((rc = expect(ps, ',', "',' or '}' in __metadata__"))) return rc;
  }
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(const tensor *const *)a)->name, (*(const tensor *const *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
  const tensor *x = *(const tensor *const *)a, *y = *(const tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Checks that need the whole header: per-tensor sizes and bounds, duplicates, overlap. */
static int validate(cfx_safetensors *st) {
  for (int32_t i = 0; i < st->n; i++) {
    tensor *t = &st->t[i];
    t->shape = st->shapes ? st->shapes + t->shape_at : NULL;
    if (t->begin > t->end)
      return cfx__fail(CFX_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] has begin > end", st->file,
                       t->name, (long long)t->begin, (long long)t->end);
    if (t->end > st->data_len)
      return cfx__fail(CFX_EFORMAT,
                       "%s: tensor '%s': data_offsets [%lld, %lld] end past the data area (%lld bytes)",
                       st->file, t->name, (long long)t->begin, (long long)t->end, (long long)st->data_len);
    int64_t want = tensor_bytes(t->shape, t->ndim, dtype_sizes[t->dtype]);
    if (want < 0)
      return cfx__fail(CFX_ERANGE, "%s: tensor '%s': shape product times %d bytes overflows", st->file,
                       t->name, dtype_sizes[t->dtype]);
    if (want != t->end - t->begin)
      return cfx__fail(
          CFX_ESHAPE, "%s: tensor '%s': shape and dtype %s need %lld bytes, data_offsets give %lld", st->file,
          t->name, dtype_names[t->dtype], (long long)want, (long long)(t->end - t->begin));
  }
  if (st->n < 2) return 0;
  const tensor **order = malloc((size_t)st->n * sizeof *order);
  if (!order) return cfx__fail(CFX_ENOMEM, "%s: out of memory", st->file);
  for (int32_t i = 0; i < st->n; i++) order[i] = &st->t[i];
  qsort(order, (size_t)st->n, sizeof *order, cmp_name);
  int rc = 0;
  for (int32_t i = 1; i < st->n && !rc; i++)
    if (!strcmp(order[i - 1]->name, order[i]->name))
      rc = cfx__fail(CFX_EFORMAT, "%s: tensor '%s': duplicate name", st->file, order[i]->name);
  if (!rc) {
    qsort(order, (size_t)st->n, sizeof *order, cmp_begin);
    const tensor *prev = NULL; /* the non-empty region that ends last so far */
    for (int32_t i = 0; i < st->n && !rc; i++) {
      const tensor *t = order[i];
      if (t->begin == t->end) continue;
      if (prev && t->begin < prev->end)
        rc = cfx__fail(CFX_EFORMAT, "%s: tensor '%s': data [%lld, %lld) overlaps tensor '%s' [%lld, %lld)",
                       st->file, t->name, (long long)t->begin, (long long)t->end, prev->name,
                       (long long)prev->begin, (long long)prev->end);
      if (!prev || t->end > prev->end) prev = t;
    }
  }
  free(order);
  return rc;
}

static int parse_header(cfx_safetensors *st, const uint8_t *h, int64_t n) {
  parser ps = {st, h, h, h + n, 0, NULL};
  st->arena = malloc((size_t)n + 1);
  if (!st->arena)
    return cfx__fail(CFX_ENOMEM, "%s: out of memory for a %lld-byte header", st->file, (long long)n);
  int rc = expect(&ps, '{', "the header object");
  if (rc) return rc;
  skip_ws(&ps);
  int have_meta = 0;
  if (ps.p < ps.end && *ps.p == '}') {
    ps.p++;
  } else {
    for (;;) {
      const char *key;
      if ((rc = parse_string(&ps, &key))) return rc;
      if ((rc = expect(&ps, ':', "':' after a tensor name"))) return rc;
      if (!strcmp(key, "__metadata__")) {
        if (have_meta++) return perr(&ps, CFX_EFORMAT, "duplicate __metadata__");
        if ((rc = parse_metadata(&ps))) return rc;
      } else if ((rc = parse_tensor(&ps, key))) {
        return rc;
      }
      skip_ws(&ps);
      if (ps.p < ps.end && *ps.p == '}') {
        ps.p++;
        break;
      }
      if ((rc = expect(&ps, ',', "',' or '}' after a tensor"))) return rc;
    }
  }
  skip_ws(&ps);
  if (ps.p != ps.end) return perr(&ps, CFX_EFORMAT, "trailing bytes after the header object");
  return validate(st);
}

static int open_buffer(const uint8_t *buf, int64_t n, const char *name, void *map, cfx_safetensors **out) {
  cfx_safetensors *st = calloc(1, sizeof *st);
  if (!st) return cfx__fail(CFX_ENOMEM, "out of memory");
  st->file = strdup(name);
  if (!st->file) {
    free(st);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  int rc = 0;
  if (n < 8) {
    rc = cfx__fail(CFX_EFORMAT, "%s: not a safetensors file (%lld bytes; a safetensors file has at least 8)", name,
                   (long long)n);
  } else {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > CFX_SAFETENSORS_MAX_HEADER)
      rc = cfx__fail(CFX_ERANGE, "%s: not a safetensors file (its first 8 bytes, a safetensors header's length, say %llu bytes, over "
                     "the %d-byte limit)", name,
                     (unsigned long long)hlen, (int)CFX_SAFETENSORS_MAX_HEADER);
    else if ((int64_t)hlen > n - 8)
      rc = cfx__fail(CFX_EFORMAT,
                     "%s: truncated, or not a safetensors file (its header length, %llu bytes, is past the end of the "
                     "file: %lld bytes after the length)", name,
                     (unsigned long long)hlen, (long long)(n - 8));
    else {
      st->data = buf + 8 + hlen;
      st->data_len = n - 8 - (int64_t)hlen;
      rc = parse_header(st, buf + 8, (int64_t)hlen);
    }
  }
  if (rc) {
    cfx_safetensors_close(st);
    return rc;
  }
  st->map = map, st->map_len = map ? n : 0;
  *out = st;
  return 0;
}

int cfx_safetensors_open_memory(const uint8_t *buf, int64_t n, const char *name, cfx_safetensors **out) {
  if (!out) return cfx__fail(CFX_EINVAL, "cfx_safetensors_open_memory: out is NULL");
  *out = NULL;
  if (!buf && n != 0) return cfx__fail(CFX_EINVAL, "cfx_safetensors_open_memory: buf is NULL");
  if (n < 0) return cfx__fail(CFX_EINVAL, "cfx_safetensors_open_memory: n = %lld < 0", (long long)n);
  return open_buffer(buf, n, name ? name : "<memory>", NULL, out);
}

int cfx_safetensors_open(const char *path, cfx_safetensors **out) {
  if (!path || !out) return cfx__fail(CFX_EINVAL, "cfx_safetensors_open: path or out is NULL");
  *out = NULL;
  void *map;
  int64_t n;
  int rc = cfx__map_file(path, 8, "a safetensors file (at least 8)", &map, &n);
  if (rc) return rc;
  rc = open_buffer(map, n, path, map, out);
  if (rc) munmap(map, (size_t)n);
  return rc;
}

void cfx_safetensors_close(cfx_safetensors *st) {
  if (!st) return;
  if (st->map) munmap(st->map, (size_t)st->map_len);
  free(st->file), free(st->arena), free(st->t), free(st->shapes);
  free(st->meta_keys), free(st->meta_vals);
  free(st);
}

int32_t cfx_safetensors_count(const cfx_safetensors *st) {
  return st ? st->n : 0;
}

int32_t cfx_safetensors_find(const cfx_safetensors *st, const char *name) {
  if (!st || !name) return -1;
  for (int32_t i = 0; i < st->n; i++)
    if (!strcmp(st->t[i].name, name)) return i;
  return -1;
}

#define TENSOR_OR(st, i, dflt) \
  if (!(st) || (i) < 0 || (i) >= (st)->n) return dflt

const char *cfx_safetensors_name(const cfx_safetensors *st, int32_t i) {
  TENSOR_OR(st, i, NULL);
  return st->t[i].name;
}

int32_t cfx_safetensors_dtype(const cfx_safetensors *st, int32_t i) {
  TENSOR_OR(st, i, -1);
  return st->t[i].dtype;
}

int32_t cfx_safetensors_ndim(const cfx_safetensors *st, int32_t i) {
  TENSOR_OR(st, i, -1);
  return st->t[i].ndim;
}

const int64_t *cfx_safetensors_shape(const cfx_safetensors *st, int32_t i) {
  static const int64_t none[1] = {0};
  TENSOR_OR(st, i, NULL);
  return st->t[i].ndim ? st->t[i].shape : none;
}

const void *cfx_safetensors_data(const cfx_safetensors *st, int32_t i, int64_t *nbytes) {
  if (nbytes) *nbytes = 0;
  TENSOR_OR(st, i, NULL);
  if (nbytes) *nbytes = st->t[i].end - st->t[i].begin;
  return st->data + st->t[i].begin;
}

int32_t cfx_safetensors_num_metadata(const cfx_safetensors *st) {
  return st ? st->nmeta : 0;
}

const char *cfx_safetensors_metadata_key(const cfx_safetensors *st, int32_t i) {
  return st && i >= 0 && i < st->nmeta ? st->meta_keys[i] : NULL;
}

const char *cfx_safetensors_metadata_value(const cfx_safetensors *st, int32_t i) {
  return st && i >= 0 && i < st->nmeta ? st->meta_vals[i] : NULL;
}

const char *cfx_safetensors_metadata(const cfx_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (int32_t i = 0; i < st->nmeta; i++)
    if (!strcmp(st->meta_keys[i], key)) return st->meta_vals[i];
  return NULL;
}

/* ---- writer ------------------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void puts_(sbuf *b, const char *s) {
  put(b, s, strlen(s));
}

/* A JSON string as serde_json (and Python's json with ensure_ascii=False) writes it. */
static void put_json_string(sbuf *b, const char *s) {
  put(b, "\"", 1);
  for (const uint8_t *c = (const uint8_t *)s; *c; c++) {
    char esc[8];
    switch (*c) {
      case '"':
        put(b, "\\\"", 2);
        break;
      case '\\':
        put(b, "\\\\", 2);
        break;
      case '\b':
        put(b, "\\b", 2);
        break;
      case '\f':
        put(b, "\\f", 2);
        break;
      case '\n':
        put(b, "\\n", 2);
        break;
      case '\r':
        put(b, "\\r", 2);
        break;
      case '\t':
        put(b, "\\t", 2);
        break;
      default:
        if (*c < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04x", *c);
          put(b, esc, 6);
        } else {
          put(b, (const char *)c, 1);
        }
    }
  }
  put(b, "\"", 1);
}

static void put_i64(sbuf *b, int64_t v) {
  char s[24];
  int k = snprintf(s, sizeof s, "%lld", (long long)v);
  put(b, s, (size_t)k);
}

static int write_all(int fd, const void *p, int64_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = write(fd, b, n > (1 << 30) ? (1 << 30) : (size_t)n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    b += k, n -= k;
  }
  return 0;
}

static int check_args(const char *path, int32_t n, const char *const *names, const int32_t *dtypes,
                      const int64_t *const *shapes, const int32_t *ndims, const void *const *data,
                      int32_t nmeta, const char *const *meta_keys, const char *const *meta_values,
                      int64_t *nbytes) {
  for (int32_t i = 0; i < n; i++) {
    const char *nm = names[i];
    if (!nm) return cfx__fail(CFX_EINVAL, "%s: tensor %d: name is NULL", path, (int)i);
    if (!utf8_valid(nm)) return cfx__fail(CFX_EINVAL, "%s: tensor '%s': name is not valid UTF-8", path, nm);
    if (!strcmp(nm, "__metadata__"))
      return cfx__fail(CFX_EINVAL, "%s: tensor name '__metadata__' is reserved", path);
    for (int32_t j = 0; j < i; j++)
      if (!strcmp(names[j], nm)) return cfx__fail(CFX_EINVAL, "%s: tensor '%s': duplicate name", path, nm);
    if (!cfx_safetensors_dtype_name(dtypes[i]))
      return cfx__fail(CFX_EDTYPE, "%s: tensor '%s': unknown dtype %d", path, nm, (int)dtypes[i]);
    if (ndims[i] < 0 || ndims[i] > MAX_NDIM)
      return cfx__fail(CFX_EINVAL, "%s: tensor '%s': ndim %d not in [0, %d]", path, nm, (int)ndims[i],
                       MAX_NDIM);
    if (ndims[i] > 0 && !shapes[i]) return cfx__fail(CFX_EINVAL, "%s: tensor '%s': shape is NULL", path, nm);
    nbytes[i] = tensor_bytes(shapes[i], ndims[i], dtype_sizes[dtypes[i]]);
    if (nbytes[i] < 0)
      return cfx__fail(CFX_ERANGE, "%s: tensor '%s': negative dim or byte size overflow", path, nm);
    if (nbytes[i] > 0 && !data[i]) return cfx__fail(CFX_EINVAL, "%s: tensor '%s': data is NULL", path, nm);
  }
  for (int32_t i = 0; i < nmeta; i++) {
    if (!meta_keys[i] || !meta_values[i])
      return cfx__fail(CFX_EINVAL, "%s: metadata entry %d: key or value is NULL", path, (int)i);
    if (!utf8_valid(meta_keys[i]) || !utf8_valid(meta_values[i]))
      return cfx__fail(CFX_EINVAL, "%s: metadata '%s': not valid UTF-8", path, meta_keys[i]);
    for (int32_t j = 0; j < i; j++)
      if (!strcmp(meta_keys[j], meta_keys[i]))
        return cfx__fail(CFX_EINVAL, "%s: metadata '%s': duplicate key", path, meta_keys[i]);
  }
  return 0;
}

int cfx_safetensors_write(const char *path, int32_t n, const char *const *names, const int32_t *dtypes,
                          const int64_t *const *shapes, const int32_t *ndims, const void *const *data,
                          int32_t nmeta, const char *const *meta_keys, const char *const *meta_values) {
  if (!path) return cfx__fail(CFX_EINVAL, "cfx_safetensors_write: path is NULL");
  if (n < 0 || nmeta < 0) return cfx__fail(CFX_EINVAL, "%s: negative tensor or metadata count", path);
  if (n > 0 && (!names || !dtypes || !shapes || !ndims || !data))
    return cfx__fail(CFX_EINVAL, "%s: names, dtypes, shapes, ndims or data is NULL", path);
  if (nmeta > 0 && (!meta_keys || !meta_values))
    return cfx__fail(CFX_EINVAL, "%s: meta_keys or meta_values is NULL", path);
  int64_t *nbytes = malloc(((size_t)n + 1) * sizeof *nbytes);
  if (!nbytes) return cfx__fail(CFX_ENOMEM, "out of memory");
  int rc = check_args(path, n, names, dtypes, shapes, ndims, data, nmeta, meta_keys, meta_values, nbytes);
  if (rc) {
    free(nbytes);
    return rc;
  }
  sbuf b = {0};
  put(&b, "{", 1);
  if (nmeta > 0) {
    puts_(&b, "\"__metadata__\":{");
    for (int32_t i = 0; i < nmeta; i++) {
      if (i) put(&b, ",", 1);
      put_json_string(&b, meta_keys[i]);
      put(&b, ":", 1);
      put_json_string(&b, meta_values[i]);
    }
    put(&b, "}", 1);
  }
  int64_t off = 0;
  for (int32_t i = 0; i < n && !rc; i++) {
    if (i || nmeta > 0) put(&b, ",", 1);
    put_json_string(&b, names[i]);
    puts_(&b, ":{\"dtype\":");
    put_json_string(&b, dtype_names[dtypes[i]]);
    puts_(&b, ",\"shape\":[");
    for (int32_t d = 0; d < ndims[i]; d++) {
      if (d) put(&b, ",", 1);
      put_i64(&b, shapes[i][d]);
    }
    puts_(&b, "],\"data_offsets\":[");
    put_i64(&b, off);
    put(&b, ",", 1);
    if (nbytes[i] > INT64_MAX - off)
      rc = cfx__fail(CFX_ERANGE, "%s: total data size overflows", path);
    else
      off += nbytes[i];
    put_i64(&b, off);
    puts_(&b, "]}");
  }
  put(&b, "}", 1);
  while (b.n % 8) put(&b, " ", 1);
  if (!rc && b.oom) rc = cfx__fail(CFX_ENOMEM, "%s: out of memory for the header", path);
  if (!rc && b.n > CFX_SAFETENSORS_MAX_HEADER)
    rc = cfx__fail(CFX_ERANGE, "%s: header of %zu bytes is over the %d-byte limit", path, b.n,
                   (int)CFX_SAFETENSORS_MAX_HEADER);
  char *tmp = NULL;
  if (!rc) {
    size_t tn = strlen(path) + 48;
    tmp = malloc(tn);
    if (!tmp)
      rc = cfx__fail(CFX_ENOMEM, "out of memory");
    else
      snprintf(tmp, tn, "%s.%ld.tmp", path, (long)getpid());
  }
  int fd = -1;
  if (!rc) {
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) rc = cfx__fail(CFX_EIO, "%s: cannot create %s: %s%s", path, tmp, strerror(errno), cfx__io_hint(errno));
  }
  if (!rc) {
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)b.n >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, b.p, (int64_t)b.n);
    for (int32_t i = 0; i < n && !bad; i++) bad = write_all(fd, data[i], nbytes[i]);
    if (!bad) bad = fsync(fd);
    if (bad) rc = cfx__fail(CFX_EIO, "%s: writing %s failed: %s%s", path, tmp, strerror(errno), cfx__io_hint(errno));
    if (close(fd) != 0 && !rc)
      rc = cfx__fail(CFX_EIO, "%s: closing %s failed: %s%s", path, tmp, strerror(errno), cfx__io_hint(errno));
    if (!rc && rename(tmp, path) != 0)
      rc = cfx__fail(CFX_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) {
      unlink(tmp);
    } else {
      char *dir = strdup(path);
      if (dir) cfx__fsync_path(dirname(dir), 1);
      free(dir);
    }
  }
  free(tmp), free(b.p), free(nbytes);
  return rc;
}
