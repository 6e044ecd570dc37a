/* h5log.c: results files (see cfx/h5log.h and docs/results.md).
 *
 * The log is a tree of nodes mirroring the HDF5 file: groups, tables (1-d compound
 * datasets) and arrays (numeric datasets), each with scalar attributes.  The whole tree
 * lives in memory; flush() writes it to a new file and renames that over the old one,
 * so that no moment of a writer's life leaves a partial file at the path.  Nothing
 * here keeps an HDF5 handle open between calls. */
#define _GNU_SOURCE
#include "cfx/h5log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "internal.h"

enum { MAX_NAME = 255, MAX_DIMS = 8, MAX_DEPTH = 32 };
static const double DEFAULT_INTERVAL = 10.0, FLUSH_SHARE = 20.0;

typedef struct {
  char *key;
  int type; /* INT64, FLOAT64, STRING */
  int64_t i;
  double f;
  char *s;
} attr;

typedef struct {
  char *name;
  int type;   /* INT64, FLOAT64, STRING */
  void *data; /* int64_t[cap], double[cap] or char *[cap] */
} column;

typedef struct node node;
struct node {
  char *name;
  int kind;
  attr *attrs;
  int nattrs, capattrs;
  /* group */
  node **kids;
  int nkids, capkids;
  /* table */
  column *cols;
  int ncols;
  int64_t nrows, caprows;
  /* array */
  int type, ndim;
  int64_t dims[MAX_DIMS];
  void *data;
  /* run groups: wall-clock time of the last change not yet in the "updated" attribute */
  double touched;
};

struct cfx_h5log {
  char *path, *lock_path;
  int flags, lock_fd;
  node *root;   /* the file's root group */
  node *runs;   /* /runs */
  int dirty;
  double interval, last_flush; /* seconds; CLOCK_MONOTONIC */
  double last_cost;             /* seconds the last flush took */
  int64_t flushes;
  double flush_seconds;
  /* the table of the last append, to skip the lookups of a training loop's rows */
  node *cached, *cached_runnode;
  char cached_run[MAX_NAME + 1], cached_path[4 * MAX_NAME + 1];
};

static const char *const RUN_KEEPS[] = {"created", "updated"};

/* ---- small helpers ------------------------------------------------------------------ */

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_real(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ISO 8601 UTC with microseconds: equal-length strings, so they sort by time. */
static void iso_time(double t, char *buf, size_t cap) {
  time_t s = (time_t)floor(t);
  long us = (long)((t - (double)s) * 1e6);
  if (us > 999999) us = 999999;
  struct tm tmv;
  gmtime_r(&s, &tmv);
  char b[24];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tmv);
  snprintf(buf, cap, "%.19s.%06dZ", b, (int)us);
}

static size_t type_size(int type) {
  switch (type) {
    case CFX_H5LOG_UINT8:
    case CFX_H5LOG_INT8: return 1;
    case CFX_H5LOG_INT16: return 2;
    case CFX_H5LOG_INT32:
    case CFX_H5LOG_FLOAT32: return 4;
    case CFX_H5LOG_INT64:
    case CFX_H5LOG_FLOAT64: return 8;
    case CFX_H5LOG_STRING: return sizeof(char *);
    default: return 0;
  }
}

static const char *type_name(int type) {
  switch (type) {
    case CFX_H5LOG_UINT8: return "uint8";
    case CFX_H5LOG_INT8: return "int8";
    case CFX_H5LOG_INT16: return "int16";
    case CFX_H5LOG_INT32: return "int32";
    case CFX_H5LOG_INT64: return "int64";
    case CFX_H5LOG_FLOAT32: return "float32";
    case CFX_H5LOG_FLOAT64: return "float64";
    case CFX_H5LOG_STRING: return "string";
    default: return "unknown";
  }
}

static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > MAX_NAME) return 0;
  if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/') return 0;
  return 1;
}

static int check_run_id(const char *id) {
  if (!id) return cfx__fail(CFX_EINVAL, "results: run id is NULL");
  if (!valid_name(id, strlen(id)))
    return cfx__fail(CFX_EINVAL,
                     "results: bad run id '%s' (1..%d bytes, no '/' or control characters, not '.' or '..')", id,
                     MAX_NAME);
  return 0;
}

static int check_path(const char *path) {
  if (!path || !*path) return 0;
  size_t n = strlen(path);
  if (n > 4 * MAX_NAME) return cfx__fail(CFX_EINVAL, "results: path of %zu bytes is too long", n);
  const char *p = path;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (!valid_name(p, l))
      return cfx__fail(CFX_EINVAL,
                       "results: bad path '%s' (components of 1..%d bytes separated by '/', no control "
                       "characters, not '.' or '..')",
                       path, MAX_NAME);
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* ---- nodes ---------------------------------------------------------------------------- */

static void attr_clear(attr *a) {
  free(a->key), free(a->s);
  memset(a, 0, sizeof *a);
}

static void table_clear(node *n) {
  for (int c = 0; c < n->ncols; c++) {
    if (n->cols[c].type == CFX_H5LOG_STRING && n->cols[c].data) {
      char **s = n->cols[c].data;
      for (int64_t r = 0; r < n->nrows; r++) free(s[r]);
    }
    free(n->cols[c].data), free(n->cols[c].name);
  }
  free(n->cols);
  n->cols = NULL, n->ncols = 0, n->nrows = n->caprows = 0;
}

static void node_free(node *n) {
  if (!n) return;
  free(n->name);
  for (int i = 0; i < n->nattrs; i++) attr_clear(&n->attrs[i]);
  free(n->attrs);
  for (int i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  free(n->kids);
  table_clear(n);
  free(n->data);
  free(n);
}

static node *node_new(const char *name, size_t len, int kind) {
  node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->name = strndup(name, len);
  if (!n->name) {
    free(n);
    return NULL;
  }
  n->kind = kind;
  return n;
}

static node *child(const node *g, const char *name, size_t len) {
  for (int i = 0; i < g->nkids; i++)
    if (strlen(g->kids[i]->name) == len && memcmp(g->kids[i]->name, name, len) == 0) return g->kids[i];
  return NULL;
}

static int child_index(const node *g, const node *k) {
  for (int i = 0; i < g->nkids; i++)
    if (g->kids[i] == k) return i;
  return -1;
}

static int add_child(node *g, node *k) {
  if (g->nkids == g->capkids) {
    int cap = g->capkids ? g->capkids * 2 : 8;
    node **nk = realloc(g->kids, sizeof *nk * (size_t)cap);
    if (!nk) return cfx__fail(CFX_ENOMEM, "out of memory");
    g->kids = nk, g->capkids = cap;
  }
  g->kids[g->nkids++] = k;
  return 0;
}

static void remove_child(node *g, int i) {
  node_free(g->kids[i]);
  memmove(g->kids + i, g->kids + i + 1, sizeof *g->kids * (size_t)(g->nkids - i - 1));
  g->nkids--;
}

static attr *find_attr(const node *n, const char *key) {
  for (int i = 0; i < n->nattrs; i++)
    if (!strcmp(n->attrs[i].key, key)) return &n->attrs[i];
  return NULL;
}

/* The attribute key of n, made if absent (its old value released). */
static attr *put_attr(node *n, const char *key) {
  attr *a = find_attr(n, key);
  if (a) {
    free(a->s), a->s = NULL;
    return a;
  }
  if (n->nattrs == n->capattrs) {
    int cap = n->capattrs ? n->capattrs * 2 : 8;
    attr *na = realloc(n->attrs, sizeof *na * (size_t)cap);
    if (!na) return NULL;
    n->attrs = na, n->capattrs = cap;
  }
  a = &n->attrs[n->nattrs];
  memset(a, 0, sizeof *a);
  if (!(a->key = strdup(key))) return NULL;
  n->nattrs++;
  return a;
}

static int set_string_attr(node *n, const char *key, const char *value) {
  char *v = strdup(value);
  attr *a = v ? put_attr(n, key) : NULL;
  if (!a) {
    free(v);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  a->type = CFX_H5LOG_STRING, a->s = v;
  return 0;
}

/* Write a run's pending "updated" time into its attribute. */
static void settle_run(node *run) {
  if (!run || run->touched <= 0) return;
  char buf[48];
  iso_time(run->touched, buf, sizeof buf);
  if (set_string_attr(run, "updated", buf) == 0) run->touched = 0;
}

static node *node_clone(const node *s) {
  node *n = node_new(s->name, strlen(s->name), s->kind);
  if (!n) return NULL;
  n->touched = s->touched;
  for (int i = 0; i < s->nattrs; i++) {
    attr *a = put_attr(n, s->attrs[i].key);
    if (!a) goto fail;
    a->type = s->attrs[i].type, a->i = s->attrs[i].i, a->f = s->attrs[i].f;
    if (s->attrs[i].s && !(a->s = strdup(s->attrs[i].s))) goto fail;
  }
  for (int i = 0; i < s->nkids; i++) {
    node *k = node_clone(s->kids[i]);
    if (!k || add_child(n, k)) {
      node_free(k);
      goto fail;
    }
  }
  if (s->kind == CFX_H5LOG_TABLE) {
    n->cols = calloc((size_t)(s->ncols ? s->ncols : 1), sizeof *n->cols);
    if (!n->cols) goto fail;
    n->ncols = s->ncols;
    n->caprows = s->nrows ? s->nrows : 1;
    for (int c = 0; c < s->ncols; c++) {
      column *d = &n->cols[c];
      const column *sc = &s->cols[c];
      d->type = sc->type;
      d->name = strdup(sc->name);
      d->data = calloc((size_t)n->caprows, 8);
      if (!d->name || !d->data) goto fail;
      if (sc->type == CFX_H5LOG_STRING) {
        char **ss = sc->data, **ds = d->data;
        for (int64_t r = 0; r < s->nrows; r++)
          if (!(ds[r] = strdup(ss[r]))) goto fail_rows;
      } else {
        memcpy(d->data, sc->data, (size_t)s->nrows * 8);
      }
    }
    n->nrows = s->nrows;
  } else if (s->kind == CFX_H5LOG_ARRAY) {
    n->type = s->type, n->ndim = s->ndim;
    memcpy(n->dims, s->dims, sizeof n->dims);
    size_t bytes = type_size(s->type);
    for (int d = 0; d < s->ndim; d++) bytes *= (size_t)s->dims[d];
    n->data = malloc(bytes ? bytes : 1);
    if (!n->data) goto fail;
    memcpy(n->data, s->data, bytes);
  }
  return n;
fail_rows:
  n->nrows = s->nrows; /* string columns are calloc'd: free() of the NULL rest is fine */
fail:
  node_free(n);
  return NULL;
}

/* ---- lookups ------------------------------------------------------------------------ */

static node *find_run(const cfx_h5log *log, const char *id) {
  return log->runs ? child(log->runs, id, strlen(id)) : NULL;
}

/* The node at path below run (the run itself for an empty path), or NULL. */
static node *walk(node *run, const char *path) {
  node *n = run;
  if (!path) return n;
  const char *p = path;
  while (n && *p) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (n->kind != CFX_H5LOG_GROUP) return NULL;
    n = child(n, p, l);
    p = e ? e + 1 : p + l;
  }
  return n;
}

/* The node at path of a run; CFX_ENOTFOUND naming what is missing. */
static int lookup(const cfx_h5log *log, const char *run_id, const char *path, node **out, node **run_out) {
  int rc = check_run_id(run_id);
  if (rc || (rc = check_path(path))) return rc;
  node *run = find_run(log, run_id);
  if (!run) return cfx__fail(CFX_ENOTFOUND, "%s: no run '%s'", log->path, run_id);
  node *n = walk(run, path);
  if (!n) return cfx__fail(CFX_ENOTFOUND, "%s: run '%s' has no '%s'", log->path, run_id, path);
  *out = n;
  if (run_out) *run_out = run;
  return 0;
}

static int writable(const cfx_h5log *log) {
  if (log->flags & CFX_H5LOG_READONLY) return cfx__fail(CFX_EINVAL, "%s: the log is open read-only", log->path);
  return 0;
}

/* The parent group of path's last component (groups on the way are made), with that
 * component in *leaf / *leaf_len. */
static int parent_of(cfx_h5log *log, node *run, const char *path, node **parent, const char **leaf,
                     size_t *leaf_len) {
  node *n = run;
  const char *p = path;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (!e) {
      *parent = n, *leaf = p, *leaf_len = l;
      return 0;
    }
    node *k = child(n, p, l);
    if (!k) {
      k = node_new(p, l, CFX_H5LOG_GROUP);
      if (!k || add_child(n, k)) {
        node_free(k);
        return cfx__fail(CFX_ENOMEM, "out of memory");
      }
    } else if (k->kind != CFX_H5LOG_GROUP) {
      return cfx__fail(CFX_EINVAL, "%s: '%.*s' of '%s' is a %s, not a group", log->path, (int)(e - path), path, path,
                       k->kind == CFX_H5LOG_TABLE ? "table" : "array");
    }
    n = k;
    p = e + 1;
  }
}

/* ---- changes and flushing ------------------------------------------------------------- */

/* Record a change to run (may be NULL) and flush if the interval has passed. */
static int changed(cfx_h5log *log, node *run) {
  log->dirty = 1;
  if (run) run->touched = now_real();
  if (log->interval < 0) return 0;
  /* a big file is flushed less often: at most 1/FLUSH_SHARE of the time goes to flushing */
  double wait = log->interval > 0 && log->last_cost * FLUSH_SHARE > log->interval ? log->last_cost * FLUSH_SHARE
                                                                                  : log->interval;
  if (now_mono() - log->last_flush >= wait) return cfx_h5log_flush(log);
  return 0;
}

static void forget_cache(cfx_h5log *log) { log->cached = NULL; }

/* ---- writing HDF5 ------------------------------------------------------------------- */

static hid_t file_type(int type) {
  switch (type) {
    case CFX_H5LOG_UINT8: return H5T_STD_U8LE;
    case CFX_H5LOG_INT8: return H5T_STD_I8LE;
    case CFX_H5LOG_INT16: return H5T_STD_I16LE;
    case CFX_H5LOG_INT32: return H5T_STD_I32LE;
    case CFX_H5LOG_INT64: return H5T_STD_I64LE;
    case CFX_H5LOG_FLOAT32: return H5T_IEEE_F32LE;
    case CFX_H5LOG_FLOAT64: return H5T_IEEE_F64LE;
    default: return -1;
  }
}

static hid_t mem_type(int type) {
  switch (type) {
    case CFX_H5LOG_UINT8: return H5T_NATIVE_UINT8;
    case CFX_H5LOG_INT8: return H5T_NATIVE_INT8;
    case CFX_H5LOG_INT16: return H5T_NATIVE_INT16;
    case CFX_H5LOG_INT32: return H5T_NATIVE_INT32;
    case CFX_H5LOG_INT64: return H5T_NATIVE_INT64;
    case CFX_H5LOG_FLOAT32: return H5T_NATIVE_FLOAT;
    case CFX_H5LOG_FLOAT64: return H5T_NATIVE_DOUBLE;
    default: return -1;
  }
}

/* Object creation properties that keep the order attributes (and links) were made in. */
static hid_t ordered_plist(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  unsigned fl = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
  H5Pset_attr_creation_order(p, fl);
  if (cls == H5P_GROUP_CREATE || cls == H5P_FILE_CREATE) H5Pset_link_creation_order(p, fl);
  return p;
}

static int write_attrs(hid_t loc, const node *n) {
  for (int i = 0; i < n->nattrs; i++) {
    const attr *a = &n->attrs[i];
    if (a->type == CFX_H5LOG_STRING) {
      if (cfx__h5_write_string_attr(loc, a->key, a->s)) return -1;
      continue;
    }
    hid_t sp = H5Screate(H5S_SCALAR);
    int isint = a->type == CFX_H5LOG_INT64;
    hid_t at = H5Acreate2(loc, a->key, isint ? H5T_STD_I64LE : H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = at >= 0 && H5Awrite(at, isint ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, isint ? (void *)&a->i
                                                                                         : (void *)&a->f) >= 0;
    if (at >= 0) H5Aclose(at);
    H5Sclose(sp);
    if (!ok) return -1;
  }
  return 0;
}

/* A compound type with one 8-byte member per column: memory (native) or file layout. */
static hid_t table_type(const node *n, int file) {
  hid_t t = H5Tcreate(H5T_COMPOUND, (size_t)(n->ncols ? n->ncols : 1) * 8);
  hid_t st = cfx__h5_string_type();
  for (int c = 0; c < n->ncols && t >= 0; c++) {
    int ty = n->cols[c].type;
    hid_t mt = ty == CFX_H5LOG_STRING ? st : file ? file_type(ty) : mem_type(ty);
    if (H5Tinsert(t, n->cols[c].name, (size_t)c * 8, mt) < 0) H5Tclose(t), t = -1;
  }
  H5Tclose(st);
  return t;
}

static int write_node(hid_t loc, const node *n, const char *path);

static int write_table(hid_t loc, const node *n, const char *path) {
  if (n->ncols == 0) return cfx__fail(CFX_EINTERNAL, "%s: table %s has no columns", path, n->name);
  /* returns -1 for an HDF5 failure (reported by write_file), else 0 or a CFX_E* code */
  hid_t ft = table_type(n, 1), mt = table_type(n, 0);
  hsize_t dims[1] = {(hsize_t)n->nrows};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t dcpl = ordered_plist(H5P_DATASET_CREATE);
  H5Pset_layout(dcpl, H5D_CONTIGUOUS);
  hid_t d = ft >= 0 && mt >= 0 ? H5Dcreate2(loc, n->name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
  int rc = d < 0 ? -1 : 0;
  if (!rc && n->nrows > 0) {
    size_t rowb = (size_t)n->ncols * 8;
    char *buf = malloc(rowb * (size_t)n->nrows);
    if (!buf) {
      rc = cfx__fail(CFX_ENOMEM, "out of memory writing %s", path);
    } else {
      for (int c = 0; c < n->ncols; c++) {
        const char *src = n->cols[c].data;
        for (int64_t r = 0; r < n->nrows; r++) memcpy(buf + (size_t)r * rowb + (size_t)c * 8, src + r * 8, 8);
      }
      if (H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
      free(buf);
    }
  }
  if (!rc && write_attrs(d, n)) rc = -1;
  if (d >= 0) H5Dclose(d);
  H5Pclose(dcpl), H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (mt >= 0) H5Tclose(mt);
  return rc;
}

static int write_array(hid_t loc, const node *n) {
  hsize_t dims[MAX_DIMS];
  for (int d = 0; d < n->ndim; d++) dims[d] = (hsize_t)n->dims[d];
  hid_t sp = n->ndim ? H5Screate_simple(n->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t dcpl = ordered_plist(H5P_DATASET_CREATE);
  H5Pset_layout(dcpl, H5D_CONTIGUOUS);
  hid_t d = H5Dcreate2(loc, n->name, file_type(n->type), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  int64_t count = 1;
  for (int i = 0; i < n->ndim; i++) count *= n->dims[i];
  int rc = d < 0 ? -1 : 0;
  if (!rc && count > 0 && H5Dwrite(d, mem_type(n->type), H5S_ALL, H5S_ALL, H5P_DEFAULT, n->data) < 0) rc = -1;
  if (!rc && write_attrs(d, n)) rc = -1;
  if (d >= 0) H5Dclose(d);
  H5Pclose(dcpl), H5Sclose(sp);
  return rc;
}

static int write_group_body(hid_t g, const node *n, const char *path) {
  if (write_attrs(g, n)) return -1;
  for (int i = 0; i < n->nkids; i++) {
    int rc = write_node(g, n->kids[i], path);
    if (rc) return rc;
  }
  return 0;
}

static int write_node(hid_t loc, const node *n, const char *path) {
  if (n->kind == CFX_H5LOG_TABLE) return write_table(loc, n, path);
  if (n->kind == CFX_H5LOG_ARRAY) return write_array(loc, n);
  hid_t gcpl = ordered_plist(H5P_GROUP_CREATE);
  hid_t g = H5Gcreate2(loc, n->name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  if (g < 0) return -1;
  int rc = write_group_body(g, n, path);
  H5Gclose(g);
  return rc;
}

static int write_file(cfx_h5log *log, const char *tmp) {
  hid_t fcpl = ordered_plist(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* the 1.8 object format: attributes over 64 KiB (a long config) go to dense storage */
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
  H5Pclose(fcpl), H5Pclose(fapl);
  if (f < 0) return cfx__h5_fail(CFX_EIO, "cannot create the HDF5 file", tmp);
  int rc = 0;
  int64_t version = CFX_H5LOG_FORMAT_VERSION;
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = -1;
  if (cfx__h5_write_string_attr(f, "cfx_format", "results") ||
      (a = H5Acreate2(f, "cfx_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
      H5Awrite(a, H5T_NATIVE_INT64, &version) < 0 ||
      cfx__h5_write_string_attr(f, "cfx_library_version", cfx_version()))
    rc = -1;
  if (!rc) rc = write_group_body(f, log->root, tmp);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  if (rc == -1) rc = cfx__h5_fail(CFX_EIO, "cannot write the results", tmp);
  if (H5Fclose(f) < 0 && !rc) rc = cfx__h5_fail(CFX_EIO, "cannot close the HDF5 file", tmp);
  return rc;
}

static char *tmp_name(const char *path) {
  size_t n = strlen(path) + 32;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s.%ld.tmp", path, (long)getpid());
  return p;
}

static void fsync_dir_of(const char *path) {
  char *d = strdup(path);
  if (d) cfx__fsync_path(dirname(d), 1);
  free(d);
}

int cfx_h5log_flush(cfx_h5log *log) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_flush: log is NULL");
  if (log->flags & CFX_H5LOG_READONLY || !log->dirty) return 0;
  cfx__h5_quiet();
  double t0 = now_mono();
  for (int i = 0; log->runs && i < log->runs->nkids; i++) settle_run(log->runs->kids[i]);
  char *tmp = tmp_name(log->path);
  if (!tmp) return cfx__fail(CFX_ENOMEM, "out of memory");
  int rc = write_file(log, tmp);
  int err = rc ? errno : 0;
  if (!rc && cfx__fsync_path(tmp, 0) != 0) {
    err = errno;
    rc = cfx__fail(CFX_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
  }
  if (!rc && rename(tmp, log->path) != 0) {
    err = errno;
    rc = cfx__fail(CFX_EIO, "cannot rename %s to %s: %s", tmp, log->path, strerror(errno));
  }
  if (rc) unlink(tmp);
  if (rc) rc = cfx__h5_write_fail(log->path, "results file", err, "the file keeps what it held after its last write");
  else fsync_dir_of(log->path);
  free(tmp);
  double t1 = now_mono();
  log->last_flush = t1;
  if (!rc) {
    log->dirty = 0;
    log->flushes++;
    log->flush_seconds += t1 - t0;
    log->last_cost = t1 - t0;
  }
  return rc;
}

/* ---- reading HDF5 --------------------------------------------------------------------- */

typedef struct {
  const char *file;
  char where[1024]; /* the HDF5 path being read, for messages */
  int rc;
} load_ctx;

static int load_fail(load_ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int load_fail(load_ctx *c, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  H5Eclear2(H5E_DEFAULT);
  c->rc = cfx__fail(code, "%s: %s: %s", c->file, c->where[0] ? c->where : "/", msg);
  return c->rc;
}

/* Attributes in creation order when the object tracks it, else by name. */
static H5_index_t attr_index(hid_t obj) {
  hid_t p = H5Iget_type(obj) == H5I_DATASET ? H5Dget_create_plist(obj) : H5Gget_create_plist(obj);
  unsigned fl = 0;
  if (p >= 0) H5Pget_attr_creation_order(p, &fl), H5Pclose(p);
  return (fl & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

typedef struct {
  load_ctx *c;
  node *n;
  int root;
} attr_walk;

static herr_t load_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  attr_walk *w = data;
  load_ctx *c = w->c;
  if (w->root && (!strcmp(name, "cfx_format") || !strcmp(name, "cfx_version") ||
                       !strcmp(name, "cfx_library_version")))
    return 0; /* the root's own, checked and rewritten by the log */
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return load_fail(c, CFX_EFORMAT, "cannot open attribute '%s'", name), -1;
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  H5T_class_t cls = H5Tget_class(t);
  int scalar = H5Sget_simple_extent_type(sp) == H5S_SCALAR ||
               (H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_npoints(sp) == 1);
  int rc = 0;
  attr tmp = {0};
  if (!scalar || (cls != H5T_STRING && cls != H5T_INTEGER && cls != H5T_FLOAT)) {
    rc = load_fail(c, CFX_EFORMAT,
                   "attribute '%s' is not a scalar string or number (results files hold those only)", name);
  } else if (cls == H5T_STRING) {
    tmp.s = cfx__h5_read_string_attr(a);
    tmp.type = CFX_H5LOG_STRING;
    if (!tmp.s) rc = load_fail(c, CFX_EFORMAT, "cannot read string attribute '%s'", name);
  } else if (cls == H5T_INTEGER) {
    tmp.type = CFX_H5LOG_INT64;
    if (H5Aread(a, H5T_NATIVE_INT64, &tmp.i) < 0) rc = load_fail(c, CFX_EFORMAT, "cannot read attribute '%s'", name);
  } else {
    tmp.type = CFX_H5LOG_FLOAT64;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &tmp.f) < 0) rc = load_fail(c, CFX_EFORMAT, "cannot read attribute '%s'", name);
  }
  H5Sclose(sp), H5Tclose(t), H5Aclose(a);
  if (rc) {
    free(tmp.s);
    return -1;
  }
  attr *dst = put_attr(w->n, name);
  if (!dst) {
    free(tmp.s);
    return load_fail(c, CFX_ENOMEM, "out of memory"), -1;
  }
  tmp.key = dst->key;
  *dst = tmp;
  return 0;
}

static int load_attrs(load_ctx *c, hid_t obj, node *n, int root) {
  attr_walk w = {c, n, root};
  hsize_t idx = 0;
  if (H5Aiterate2(obj, attr_index(obj), H5_ITER_INC, &idx, load_attr, &w) < 0) {
    if (!c->rc) load_fail(c, CFX_EFORMAT, "cannot list the attributes");
    return c->rc;
  }
  return 0;
}

static int load_table(load_ctx *c, hid_t d, hid_t t, node *n) {
  hid_t sp = H5Dget_space(d);
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t dims[1] = {0};
  if (nd == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  if (nd != 1) return load_fail(c, CFX_EFORMAT, "a table must be 1-d, this one has %d dimensions", nd);
  int nm = H5Tget_nmembers(t);
  if (nm <= 0 || nm > 4096) return load_fail(c, CFX_EFORMAT, "a table of %d columns", nm);
  if (dims[0] > (hsize_t)(INT64_MAX / 8 / nm)) return load_fail(c, CFX_EFORMAT, "a table of %llu rows", (unsigned long long)dims[0]);
  n->kind = CFX_H5LOG_TABLE;
  n->cols = calloc((size_t)nm, sizeof *n->cols);
  if (!n->cols) return load_fail(c, CFX_ENOMEM, "out of memory");
  n->ncols = nm;
  for (int m = 0; m < nm; m++) {
    char *mn = H5Tget_member_name(t, (unsigned)m);
    hid_t mt = H5Tget_member_type(t, (unsigned)m);
    H5T_class_t cls = H5Tget_member_class(t, (unsigned)m);
    int ok = mn != NULL;
    if (ok) n->cols[m].name = strdup(mn);
    if (mn) H5free_memory(mn);
    if (!ok || !n->cols[m].name) {
      if (mt >= 0) H5Tclose(mt);
      return load_fail(c, CFX_ENOMEM, "cannot read column names");
    }
    if (cls == H5T_INTEGER) n->cols[m].type = CFX_H5LOG_INT64;
    else if (cls == H5T_FLOAT) n->cols[m].type = CFX_H5LOG_FLOAT64;
    else if (cls == H5T_STRING && H5Tis_variable_str(mt) > 0) n->cols[m].type = CFX_H5LOG_STRING;
    else {
      H5Tclose(mt);
      return load_fail(c, CFX_EFORMAT,
                       "column '%s' is neither a number nor a variable-length string (results tables hold those)",
                       n->cols[m].name);
    }
    H5Tclose(mt);
  }
  for (int a = 0; a < nm; a++)
    for (int b = a + 1; b < nm; b++)
      if (!strcmp(n->cols[a].name, n->cols[b].name)) return load_fail(c, CFX_EFORMAT, "two columns named '%s'", n->cols[a].name);
  int64_t rows = (int64_t)dims[0];
  n->caprows = rows ? rows : 1;
  for (int m = 0; m < nm; m++)
    if (!(n->cols[m].data = calloc((size_t)n->caprows, 8))) return load_fail(c, CFX_ENOMEM, "out of memory");
  if (rows == 0) return 0;
  hid_t mt = table_type(n, 0);
  size_t rowb = (size_t)nm * 8;
  char *buf = malloc(rowb * (size_t)rows);
  if (!buf || mt < 0) {
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    return load_fail(c, CFX_ENOMEM, "out of memory");
  }
  int rc = 0;
  memset(buf, 0, rowb * (size_t)rows);
  if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    rc = load_fail(c, CFX_EFORMAT, "cannot read the table");
  } else {
    for (int m = 0; m < nm && !rc; m++) {
      char *dst = n->cols[m].data;
      for (int64_t r = 0; r < rows; r++) {
        const char *src = buf + (size_t)r * rowb + (size_t)m * 8;
        if (n->cols[m].type == CFX_H5LOG_STRING) {
          const char *s;
          memcpy(&s, src, sizeof s);
          if (!(((char **)dst)[r] = strdup(s ? s : ""))) {
            rc = load_fail(c, CFX_ENOMEM, "out of memory");
            break;
          }
        } else {
          memcpy(dst + r * 8, src, 8);
        }
      }
    }
    n->nrows = rows; /* string rows not reached stay NULL: free(NULL) */
    hid_t fsp = H5Dget_space(d);
    H5Dvlen_reclaim(mt, fsp, H5P_DEFAULT, buf);
    H5Sclose(fsp);
  }
  free(buf);
  H5Tclose(mt);
  return rc;
}

static int load_array(load_ctx *c, hid_t d, hid_t t, node *n) {
  H5T_class_t cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  int type = -1;
  if (cls == H5T_INTEGER) {
    int sign = H5Tget_sign(t) == H5T_SGN_2;
    if (size == 1) type = sign ? CFX_H5LOG_INT8 : CFX_H5LOG_UINT8;
    else if (sign && size == 2) type = CFX_H5LOG_INT16;
    else if (sign && size == 4) type = CFX_H5LOG_INT32;
    else if (sign && size == 8) type = CFX_H5LOG_INT64;
  } else if (cls == H5T_FLOAT) {
    if (size == 4) type = CFX_H5LOG_FLOAT32;
    else if (size == 8) type = CFX_H5LOG_FLOAT64;
  }
  if (type < 0)
    return load_fail(c, CFX_EFORMAT,
                     "a dataset of %s class and %zu-byte elements (results arrays are uint8, int8/16/32/64, "
                     "float32/64, tables compound)",
                     cls == H5T_STRING ? "string" : cls == H5T_ENUM ? "enum" : cls == H5T_INTEGER ? "integer"
                     : cls == H5T_FLOAT ? "float" : "another",
                     size);
  hid_t sp = H5Dget_space(d);
  int nd = H5Sget_simple_extent_ndims(sp);
  hsize_t dims[MAX_DIMS];
  if (nd < 0 || nd > MAX_DIMS) {
    H5Sclose(sp);
    return load_fail(c, CFX_EFORMAT, "an array of %d dimensions (at most %d)", nd, MAX_DIMS);
  }
  H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  uint64_t count = 1;
  for (int i = 0; i < nd; i++) {
    if (dims[i] && count > ((uint64_t)1 << 40) / dims[i]) return load_fail(c, CFX_EFORMAT, "an array too large to load");
    count *= dims[i];
  }
  n->kind = CFX_H5LOG_ARRAY, n->type = type, n->ndim = nd;
  for (int i = 0; i < nd; i++) n->dims[i] = (int64_t)dims[i];
  n->data = malloc(count ? count * type_size(type) : 1);
  if (!n->data) return load_fail(c, CFX_ENOMEM, "out of memory");
  if (count && H5Dread(d, mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, n->data) < 0)
    return load_fail(c, CFX_EFORMAT, "cannot read the array");
  return 0;
}

typedef struct {
  load_ctx *c;
  node *g;
  int depth;
} link_walk;

static int load_group(load_ctx *c, hid_t g, node *n, int depth);

static herr_t load_link(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
  link_walk *w = data;
  load_ctx *c = w->c;
  size_t wl = strlen(c->where);
  snprintf(c->where + wl, sizeof c->where - wl, "/%s", name);
  int rc = 0;
  if (info->type != H5L_TYPE_HARD) {
    rc = load_fail(c, CFX_EFORMAT, "a soft or external link (results files hold groups and datasets only)");
  } else if (!valid_name(name, strlen(name))) {
    rc = load_fail(c, CFX_EFORMAT, "a name with control characters");
  } else {
    node *k = node_new(name, strlen(name), CFX_H5LOG_GROUP);
    if (!k || add_child(w->g, k)) {
      node_free(k);
      rc = load_fail(c, CFX_ENOMEM, "out of memory");
    } else {
      hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
      H5I_type_t it = o >= 0 ? H5Iget_type(o) : H5I_BADID;
      if (o < 0) {
        rc = load_fail(c, CFX_EFORMAT, "cannot open the object");
      } else if (it == H5I_GROUP) {
        rc = load_group(c, o, k, w->depth + 1);
      } else if (it == H5I_DATASET) {
        hid_t t = H5Dget_type(o);
        rc = H5Tget_class(t) == H5T_COMPOUND ? load_table(c, o, t, k) : load_array(c, o, t, k);
        H5Tclose(t);
        if (!rc) rc = load_attrs(c, o, k, 0);
      } else {
        rc = load_fail(c, CFX_EFORMAT, "a named datatype (results files hold groups and datasets only)");
      }
      if (o >= 0) H5Oclose(o);
    }
  }
  c->where[wl] = '\0';
  return rc ? -1 : 0;
}

static int load_group(load_ctx *c, hid_t g, node *n, int depth) {
  if (depth > MAX_DEPTH) return load_fail(c, CFX_EFORMAT, "groups nested more than %d deep", MAX_DEPTH);
  if (load_attrs(c, g, n, depth == 0)) return c->rc;
  hid_t p = H5Gget_create_plist(g);
  unsigned fl = 0;
  if (p >= 0) H5Pget_link_creation_order(p, &fl), H5Pclose(p);
  link_walk w = {c, n, depth};
  hsize_t idx = 0;
  H5_index_t ix = (fl & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  if (H5Literate(g, ix, H5_ITER_INC, &idx, load_link, &w) < 0) {
    if (!c->rc) load_fail(c, CFX_EFORMAT, "cannot list the group");
    return c->rc;
  }
  return 0;
}

/* Read the file at path into log->root. */
static int load_file(cfx_h5log *log, const char *path) {
  if (H5Fis_hdf5(path) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    return cfx__fail(CFX_EFORMAT,
                     "%s: not a cfx results file (not an HDF5 file: %lld bytes without an HDF5 signature); move it "
                     "aside, or give another path (--out DIR)",
                     path, size);
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return cfx__h5_open_fail(path, "results file",
                             "cfx writes a results file whole and renames it into place, so it was cut short or altered "
                             "afterwards: restore it from a copy, or move it aside and run again");
  int rc = cfx__h5_check_header(f, path, "results", "results file", CFX_H5LOG_FORMAT_VERSION, "");
  if (!rc) {
    load_ctx c = {path, "", 0};
    rc = load_group(&c, f, log->root, 0);
  }
  H5Eclear2(H5E_DEFAULT);
  if (H5Fclose(f) < 0 && !rc) rc = cfx__h5_fail(CFX_EIO, "cannot close", path);
  if (rc) return rc;
  node *runs = child(log->root, "runs", 4);
  if (runs && runs->kind != CFX_H5LOG_GROUP)
    return cfx__fail(CFX_EFORMAT, "%s: /runs is a dataset, expected the group of runs", path);
  for (int i = 0; runs && i < runs->nkids; i++)
    if (runs->kids[i]->kind != CFX_H5LOG_GROUP)
      return cfx__fail(CFX_EFORMAT, "%s: /runs/%s is a dataset, expected a run's group", path, runs->kids[i]->name);
  return 0;
}

/* ---- opening and closing ------------------------------------------------------------- */

/* Take the writer's lock <path>.lock (flock, so a killed writer's lock goes with it). */
static int take_lock(cfx_h5log *log) {
  for (int tries = 0; tries < 16; tries++) {
    int fd = open(log->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return cfx__fail(CFX_EIO, "%s: cannot create %s: %s", log->path, log->lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      if (e == EWOULDBLOCK) {
        char buf[32] = "";
        ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
        buf[r > 0 ? r : 0] = '\0';
        close(fd);
        long pid = strtol(buf, NULL, 10);
        return cfx__fail(CFX_EIO, "%s: another process (pid %ld) has it open for writing (lock %s)", log->path, pid,
                         log->lock_path);
      }
      close(fd);
      if (e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS) return 0; /* a filesystem without locks */
      return cfx__fail(CFX_EIO, "%s: cannot lock %s: %s", log->path, log->lock_path, strerror(e));
    }
    /* The holder before us may have removed the file between our open and flock. */
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(log->lock_path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      char buf[32];
      int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
      if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* the pid is only for messages */
      }
      log->lock_fd = fd;
      return 0;
    }
    close(fd);
  }
  return cfx__fail(CFX_EIO, "%s: cannot take the lock %s", log->path, log->lock_path);
}

static void release_lock(cfx_h5log *log) {
  if (log->lock_fd < 0) return;
  unlink(log->lock_path);
  close(log->lock_fd);
  log->lock_fd = -1;
}

/* Remove <path>.<digits>.tmp files: flushes of writers killed mid-way (we hold the lock,
 * so no live writer of this path is flushing). */
static void remove_stale(const cfx_h5log *log) {
  char *d = strdup(log->path), *b = strdup(log->path);
  if (!d || !b) {
    free(d), free(b);
    return;
  }
  const char *dir = dirname(d), *base = basename(b);
  size_t bl = strlen(base);
  DIR *dp = opendir(dir);
  struct dirent *e;
  while (dp && (e = readdir(dp))) {
    const char *nm = e->d_name;
    size_t l = strlen(nm);
    if (l <= bl + 5 || strncmp(nm, base, bl) != 0 || nm[bl] != '.' || strcmp(nm + l - 4, ".tmp") != 0) continue;
    size_t i = bl + 1;
    while (i < l - 4 && nm[i] >= '0' && nm[i] <= '9') i++;
    if (i != l - 4 || i == bl + 1) continue;
    size_t pl = strlen(dir) + l + 2;
    char *p = malloc(pl);
    if (p) {
      snprintf(p, pl, "%s/%s", dir, nm);
      unlink(p);
      free(p);
    }
  }
  if (dp) closedir(dp);
  free(d), free(b);
}

static int ensure_runs(cfx_h5log *log) {
  log->runs = child(log->root, "runs", 4);
  if (log->runs) return 0;
  node *r = node_new("runs", 4, CFX_H5LOG_GROUP);
  if (!r || add_child(log->root, r)) {
    node_free(r);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  log->runs = r;
  return 0;
}

static void log_free(cfx_h5log *log) {
  release_lock(log);
  node_free(log->root);
  free(log->path), free(log->lock_path);
  free(log);
}

int cfx_h5log_open(const char *path, int flags, cfx_h5log **out) {
  if (!path || !out) return cfx__fail(CFX_EINVAL, "h5log_open: path or out is NULL");
  *out = NULL;
  if ((flags & ~(CFX_H5LOG_READONLY | CFX_H5LOG_TRUNCATE)) ||
      (flags & CFX_H5LOG_READONLY && flags & CFX_H5LOG_TRUNCATE))
    return cfx__fail(CFX_EINVAL, "h5log_open: bad flags %d", flags);
  cfx__h5_quiet();
  cfx_h5log *log = calloc(1, sizeof *log);
  if (!log) return cfx__fail(CFX_ENOMEM, "out of memory");
  log->lock_fd = -1;
  log->flags = flags;
  log->interval = DEFAULT_INTERVAL;
  size_t pl = strlen(path);
  log->path = strdup(path);
  log->lock_path = malloc(pl + 6);
  log->root = node_new("/", 1, CFX_H5LOG_GROUP);
  if (!log->path || !log->lock_path || !log->root) {
    log_free(log);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  snprintf(log->lock_path, pl + 6, "%s.lock", path);
  struct stat st;
  int exists = stat(path, &st) == 0;
  int rc = 0;
  if (!exists && errno != ENOENT) rc = cfx__fail(CFX_EIO, "%s: %s", path, strerror(errno));
  else if (!exists && flags & CFX_H5LOG_READONLY) rc = cfx__fail(CFX_ENOTFOUND, "%s: no such file", path);
  else if (exists && S_ISDIR(st.st_mode)) rc = cfx__fail(CFX_EINVAL, "%s: is a directory, expected a results file", path);
  if (!rc && !(flags & CFX_H5LOG_READONLY)) rc = take_lock(log);
  if (!rc && exists) {
    rc = load_file(log, path);
    if (!rc && flags & CFX_H5LOG_TRUNCATE) {
      node_free(log->root);
      log->root = node_new("/", 1, CFX_H5LOG_GROUP);
      if (!log->root) rc = cfx__fail(CFX_ENOMEM, "out of memory");
    }
  }
  if (!rc && !find_attr(log->root, "created")) {
    char buf[48];
    iso_time(now_real(), buf, sizeof buf);
    rc = set_string_attr(log->root, "created", buf);
  }
  if (!rc) rc = ensure_runs(log);
  if (rc) {
    log_free(log);
    return rc;
  }
  log->last_flush = now_mono();
  if (!(flags & CFX_H5LOG_READONLY)) {
    remove_stale(log);
    log->dirty = !exists || (flags & CFX_H5LOG_TRUNCATE);
    if (!exists && (rc = cfx_h5log_flush(log))) { /* the file exists from the start */
      log_free(log);
      return rc;
    }
  }
  *out = log;
  return 0;
}

int cfx_h5log_close(cfx_h5log *log) {
  if (!log) return 0;
  int rc = cfx_h5log_flush(log);
  char msg[1024];
  if (rc) snprintf(msg, sizeof msg, "%s", cfx_last_error());
  log_free(log);
  if (rc) cfx__fail(rc, "%s", msg);
  return rc;
}

void cfx_h5log_free(cfx_h5log *log) {
  if (log) log_free(log);
}

int cfx_h5log_set_flush_interval(cfx_h5log *log, double seconds) {
  if (!log || seconds != seconds) return cfx__fail(CFX_EINVAL, "h5log_set_flush_interval: bad argument");
  log->interval = seconds;
  return 0;
}

const char *cfx_h5log_path(const cfx_h5log *log) { return log ? log->path : NULL; }

int cfx_h5log_stats(const cfx_h5log *log, int64_t *flushes, double *seconds) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_stats: log is NULL");
  if (flushes) *flushes = log->flushes;
  if (seconds) *seconds = log->flush_seconds;
  return 0;
}

/* ---- runs ------------------------------------------------------------------------------ */

int cfx_h5log_num_runs(const cfx_h5log *log) { return log && log->runs ? log->runs->nkids : 0; }

const char *cfx_h5log_run_id(const cfx_h5log *log, int i) {
  if (!log || !log->runs || i < 0 || i >= log->runs->nkids) return NULL;
  return log->runs->kids[i]->name;
}

int cfx_h5log_add_run(cfx_h5log *log, const char *run_id, int *created) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_add_run: log is NULL");
  int rc = writable(log);
  if (rc || (rc = check_run_id(run_id))) return rc;
  if (created) *created = 0;
  if (find_run(log, run_id)) return 0;
  node *r = node_new(run_id, strlen(run_id), CFX_H5LOG_GROUP);
  char buf[48];
  double t = now_real();
  iso_time(t, buf, sizeof buf);
  if (!r || set_string_attr(r, "created", buf) || add_child(log->runs, r)) {
    node_free(r);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  if (created) *created = 1;
  return changed(log, r);
}

int cfx_h5log_remove(cfx_h5log *log, const char *run_id, const char *path) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_remove: log is NULL");
  int rc = writable(log);
  node *n, *run;
  if (rc || (rc = lookup(log, run_id, path, &n, &run))) return rc;
  forget_cache(log);
  if (n == run) {
    remove_child(log->runs, child_index(log->runs, run));
    return changed(log, NULL);
  }
  /* the parent: walk the path without its last component */
  const char *slash = strrchr(path, '/');
  node *parent = run;
  if (slash) {
    char *pp = strndup(path, (size_t)(slash - path));
    if (!pp) return cfx__fail(CFX_ENOMEM, "out of memory");
    parent = walk(run, pp);
    free(pp);
  }
  remove_child(parent, child_index(parent, n));
  return changed(log, run);
}

/* ---- nodes and attributes ----------------------------------------------------------------- */

int cfx_h5log_kind(const cfx_h5log *log, const char *run_id, const char *path) {
  if (!log || !run_id || check_run_id(run_id) || check_path(path)) return CFX_H5LOG_ABSENT;
  node *run = find_run(log, run_id);
  node *n = run ? walk(run, path) : NULL;
  return n ? n->kind : CFX_H5LOG_ABSENT;
}

int cfx_h5log_children(const cfx_h5log *log, const char *run_id, const char *path, char **out, int64_t *n) {
  if (!log || !out || !n) return cfx__fail(CFX_EINVAL, "h5log_children: NULL argument");
  *out = NULL, *n = 0;
  node *g;
  int rc = lookup(log, run_id, path, &g, NULL);
  if (rc) return rc;
  if (g->kind != CFX_H5LOG_GROUP)
    return cfx__fail(CFX_EINVAL, "%s: '%s' of run '%s' is not a group", log->path, path ? path : "", run_id);
  size_t total = 1;
  for (int i = 0; i < g->nkids; i++) total += strlen(g->kids[i]->name) + 1;
  char *b = malloc(total);
  if (!b) return cfx__fail(CFX_ENOMEM, "out of memory");
  size_t used = 0;
  for (int i = 0; i < g->nkids; i++) {
    size_t l = strlen(g->kids[i]->name) + 1;
    memcpy(b + used, g->kids[i]->name, l);
    used += l;
  }
  b[used] = '\0';
  *out = b, *n = (int64_t)used;
  return 0;
}

static int attr_target(cfx_h5log *log, const char *run_id, const char *path, const char *key, node **n,
                       node **run) {
  if (!log || !key) return cfx__fail(CFX_EINVAL, "h5log set_attr: NULL argument");
  int rc = writable(log);
  if (rc || (rc = lookup(log, run_id, path, n, run))) return rc;
  if (!valid_name(key, strlen(key)))
    return cfx__fail(CFX_EINVAL, "results: bad attribute name '%s' (1..%d bytes, no '/' or control characters)", key,
                     MAX_NAME);
  if (*n == *run)
    for (size_t i = 0; i < sizeof RUN_KEEPS / sizeof *RUN_KEEPS; i++)
      if (!strcmp(key, RUN_KEEPS[i]))
        return cfx__fail(CFX_EINVAL, "results: the attribute '%s' of a run is kept by the log", key);
  return 0;
}

int cfx_h5log_set_attr_string(cfx_h5log *log, const char *run_id, const char *path, const char *key,
                              const char *value) {
  node *n, *run;
  int rc = attr_target(log, run_id, path, key, &n, &run);
  if (rc) return rc;
  if (!value) return cfx__fail(CFX_EINVAL, "h5log set_attr: value is NULL");
  if ((rc = set_string_attr(n, key, value))) return rc;
  return changed(log, run);
}

int cfx_h5log_set_attr_int(cfx_h5log *log, const char *run_id, const char *path, const char *key, int64_t value) {
  node *n, *run;
  int rc = attr_target(log, run_id, path, key, &n, &run);
  if (rc) return rc;
  attr *a = put_attr(n, key);
  if (!a) return cfx__fail(CFX_ENOMEM, "out of memory");
  a->type = CFX_H5LOG_INT64, a->i = value;
  return changed(log, run);
}

int cfx_h5log_set_attr_float(cfx_h5log *log, const char *run_id, const char *path, const char *key, double value) {
  node *n, *run;
  int rc = attr_target(log, run_id, path, key, &n, &run);
  if (rc) return rc;
  attr *a = put_attr(n, key);
  if (!a) return cfx__fail(CFX_ENOMEM, "out of memory");
  a->type = CFX_H5LOG_FLOAT64, a->f = value;
  return changed(log, run);
}

int cfx_h5log_num_attrs(const cfx_h5log *log, const char *run_id, const char *path, int *count) {
  if (!log || !count) return cfx__fail(CFX_EINVAL, "h5log_num_attrs: NULL argument");
  node *n, *run;
  int rc = lookup(log, run_id, path, &n, &run);
  if (rc) return rc;
  if (n == run) settle_run(run); /* logically const: the pending "updated" becomes visible */
  *count = n->nattrs;
  return 0;
}

int cfx_h5log_attr(const cfx_h5log *log, const char *run_id, const char *path, int i, const char **key, int *type,
                   int64_t *ival, double *fval, const char **sval) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_attr: log is NULL");
  node *n, *run;
  int rc = lookup(log, run_id, path, &n, &run);
  if (rc) return rc;
  if (n == run) settle_run(run);
  if (i < 0 || i >= n->nattrs)
    return cfx__fail(CFX_ERANGE, "h5log_attr: index %d out of range (%d attributes)", i, n->nattrs);
  const attr *a = &n->attrs[i];
  if (key) *key = a->key;
  if (type) *type = a->type;
  if (a->type == CFX_H5LOG_INT64 && ival) *ival = a->i;
  if (a->type == CFX_H5LOG_FLOAT64 && fval) *fval = a->f;
  if (a->type == CFX_H5LOG_STRING && sval) *sval = a->s;
  return 0;
}

/* ---- tables ----------------------------------------------------------------------------- */

static int grow_rows(node *t, int64_t need) {
  if (need <= t->caprows) return 0;
  int64_t cap = t->caprows ? t->caprows : 16;
  while (cap < need) cap *= 2;
  for (int c = 0; c < t->ncols; c++) {
    void *d = realloc(t->cols[c].data, (size_t)cap * 8);
    if (!d) return cfx__fail(CFX_ENOMEM, "out of memory");
    t->cols[c].data = d;
  }
  t->caprows = cap;
  return 0;
}

static int check_columns(const cfx_h5log *log, const char *table, int ncols, const char *const *names,
                         const int *types) {
  if (ncols <= 0 || ncols > 4096 || !names || !types)
    return cfx__fail(CFX_EINVAL, "%s: table '%s': %d columns given (1..4096, with names and types)", log->path,
                     table, ncols);
  for (int i = 0; i < ncols; i++) {
    if (!names[i] || !valid_name(names[i], strlen(names[i])))
      return cfx__fail(CFX_EINVAL, "%s: table '%s': bad column name '%s'", log->path, table,
                       names[i] ? names[i] : "(null)");
    if (types[i] != CFX_H5LOG_INT64 && types[i] != CFX_H5LOG_FLOAT64 && types[i] != CFX_H5LOG_STRING)
      return cfx__fail(CFX_EDTYPE, "%s: table '%s': column '%s' has type %s (int64, float64 or string)", log->path,
                       table, names[i], type_name(types[i]));
    for (int j = 0; j < i; j++)
      if (!strcmp(names[i], names[j]))
        return cfx__fail(CFX_EINVAL, "%s: table '%s': column '%s' given twice", log->path, table, names[i]);
  }
  return 0;
}

/* A new empty table node with these columns. */
static node *new_table(const char *name, size_t len, int ncols, const char *const *names, const int *types) {
  node *t = node_new(name, len, CFX_H5LOG_TABLE);
  if (!t) return NULL;
  t->cols = calloc((size_t)ncols, sizeof *t->cols);
  if (!t->cols) {
    node_free(t);
    return NULL;
  }
  t->ncols = ncols;
  for (int c = 0; c < ncols; c++) {
    t->cols[c].type = types[c];
    if (!(t->cols[c].name = strdup(names[c]))) {
      node_free(t);
      return NULL;
    }
  }
  if (grow_rows(t, 16)) {
    node_free(t);
    return NULL;
  }
  return t;
}

/* Put node k at path of run, replacing whatever is there. */
static int place(cfx_h5log *log, node *run, const char *path, node *k) {
  node *parent = NULL;
  const char *leaf = NULL;
  size_t ll = 0;
  int rc = parent_of(log, run, path, &parent, &leaf, &ll);
  if (rc) return rc;
  node *old = child(parent, leaf, ll);
  if (old) {
    int i = child_index(parent, old);
    node_free(old);
    parent->kids[i] = k;
    return 0;
  }
  return add_child(parent, k);
}

static int is_integral(double v) { return v == floor(v) && fabs(v) < 9007199254740992.0; }

int cfx_h5log_append(cfx_h5log *log, const char *run_id, const char *table, int ncols, const char *const *names,
                     const int *types, const int64_t *ivals, const double *fvals, const char *const *svals) {
  if (!log || !table || !*table) return cfx__fail(CFX_EINVAL, "h5log_append: NULL log or empty table name");
  node *t = NULL, *run = NULL;
  /* the fast path: the same table as last time */
  if (log->cached && !strcmp(run_id ? run_id : "", log->cached_run) && !strcmp(table, log->cached_path)) {
    t = log->cached;
    run = log->cached_runnode;
  } else {
    int rc = writable(log);
    if (rc || (rc = check_run_id(run_id)) || (rc = check_path(table))) return rc;
    run = find_run(log, run_id);
    if (!run) return cfx__fail(CFX_ENOTFOUND, "%s: no run '%s'", log->path, run_id);
    t = walk(run, table);
    if (t && t->kind != CFX_H5LOG_TABLE)
      return cfx__fail(CFX_EINVAL, "%s: '%s' of run '%s' is a %s, not a table", log->path, table, run_id,
                       t->kind == CFX_H5LOG_GROUP ? "group" : "array");
  }
  int rc = check_columns(log, table, ncols, names, types);
  if (rc) return rc;
  for (int i = 0; i < ncols; i++) {
    if ((types[i] == CFX_H5LOG_INT64 && !ivals) || (types[i] == CFX_H5LOG_FLOAT64 && !fvals) ||
        (types[i] == CFX_H5LOG_STRING && (!svals || !svals[i])))
      return cfx__fail(CFX_EINVAL, "%s: table '%s': no value for column '%s'", log->path, table, names[i]);
  }
  if (!t) {
    const char *leaf = strrchr(table, '/');
    leaf = leaf ? leaf + 1 : table;
    t = new_table(leaf, strlen(leaf), ncols, names, types);
    if (!t) return cfx__fail(CFX_ENOMEM, "out of memory");
    if ((rc = place(log, run, table, t))) {
      node_free(t);
      return rc;
    }
  }
  /* map the given columns onto the table's (in order when they come in order) */
  int map_small[64], *map = ncols <= 64 ? map_small : malloc(sizeof *map * (size_t)ncols);
  if (!map) return cfx__fail(CFX_ENOMEM, "out of memory");
  if (ncols != t->ncols) {
    rc = cfx__fail(CFX_EINVAL, "%s: table '%s' of run '%s' has %d columns, the row gives %d (the first row fixes them)",
                   log->path, table, run_id, t->ncols, ncols);
  }
  for (int i = 0; i < ncols && !rc; i++) {
    int c = i < t->ncols && !strcmp(names[i], t->cols[i].name) ? i : -1;
    for (int j = 0; c < 0 && j < t->ncols; j++)
      if (!strcmp(names[i], t->cols[j].name)) c = j;
    if (c < 0) {
      rc = cfx__fail(CFX_EINVAL, "%s: table '%s' of run '%s' has no column '%s' (the first row fixes the columns)",
                     log->path, table, run_id, names[i]);
      break;
    }
    int ct = t->cols[c].type, vt = types[i];
    if ((ct == CFX_H5LOG_STRING) != (vt == CFX_H5LOG_STRING))
      rc = cfx__fail(CFX_EDTYPE, "%s: table '%s' of run '%s': column '%s' holds %s, the row gives a %s", log->path,
                     table, run_id, names[i], ct == CFX_H5LOG_STRING ? "strings" : "numbers",
                     vt == CFX_H5LOG_STRING ? "string" : "number");
    map[i] = c;
  }
  /* distinct names in equal number: every column is given once */
  if (!rc) rc = grow_rows(t, t->nrows + 1);
  if (rc) {
    if (map != map_small) free(map);
    return rc;
  }
  char *sdup_small[64], **sdup = ncols <= 64 ? sdup_small : calloc((size_t)ncols, sizeof *sdup);
  if (!sdup) {
    if (map != map_small) free(map);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  for (int i = 0; i < ncols; i++) {
    sdup[i] = NULL;
    if (types[i] == CFX_H5LOG_STRING && !(sdup[i] = strdup(svals[i]))) rc = cfx__fail(CFX_ENOMEM, "out of memory");
  }
  if (rc) {
    for (int i = 0; i < ncols; i++) free(sdup[i]);
  } else {
    int64_t r = t->nrows;
    for (int i = 0; i < ncols; i++) {
      column *col = &t->cols[map[i]];
      if (col->type == CFX_H5LOG_STRING) {
        ((char **)col->data)[r] = sdup[i];
        continue;
      }
      double fv = types[i] == CFX_H5LOG_FLOAT64 ? fvals[i] : (double)ivals[i];
      if (col->type == CFX_H5LOG_INT64 && types[i] == CFX_H5LOG_FLOAT64 && !is_integral(fv)) {
        /* the column becomes float64: convert the rows so far in place */
        int64_t *iv = col->data;
        double *dv = col->data;
        for (int64_t k = 0; k < r; k++) dv[k] = (double)iv[k];
        col->type = CFX_H5LOG_FLOAT64;
      }
      if (col->type == CFX_H5LOG_INT64)
        ((int64_t *)col->data)[r] = types[i] == CFX_H5LOG_INT64 ? ivals[i] : (int64_t)fv;
      else
        ((double *)col->data)[r] = fv;
    }
    t->nrows = r + 1;
  }
  if (sdup != sdup_small) free(sdup);
  if (map != map_small) free(map);
  if (rc) return rc;
  if (log->cached != t) {
    log->cached = t, log->cached_runnode = run;
    snprintf(log->cached_run, sizeof log->cached_run, "%s", run_id);
    snprintf(log->cached_path, sizeof log->cached_path, "%s", table);
  }
  return changed(log, run);
}

int cfx_h5log_write_table(cfx_h5log *log, const char *run_id, const char *table, int ncols,
                          const char *const *names, const int *types, int64_t nrows, const void *const *columns) {
  if (!log || !table || !*table) return cfx__fail(CFX_EINVAL, "h5log_write_table: NULL log or empty table name");
  int rc = writable(log);
  if (rc || (rc = check_run_id(run_id)) || (rc = check_path(table))) return rc;
  node *run = find_run(log, run_id);
  if (!run) return cfx__fail(CFX_ENOTFOUND, "%s: no run '%s'", log->path, run_id);
  if ((rc = check_columns(log, table, ncols, names, types))) return rc;
  if (nrows < 0 || (nrows > 0 && !columns))
    return cfx__fail(CFX_EINVAL, "%s: table '%s': %lld rows without data", log->path, table, (long long)nrows);
  for (int c = 0; c < ncols; c++)
    if (nrows > 0 && !columns[c])
      return cfx__fail(CFX_EINVAL, "%s: table '%s': no data for column '%s'", log->path, table, names[c]);
  const char *leaf = strrchr(table, '/');
  leaf = leaf ? leaf + 1 : table;
  node *t = new_table(leaf, strlen(leaf), ncols, names, types);
  if (!t || grow_rows(t, nrows)) {
    node_free(t);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  for (int c = 0; c < ncols && !rc; c++) {
    if (nrows == 0) break;
    if (types[c] == CFX_H5LOG_STRING) {
      const char *const *src = columns[c];
      char **dst = t->cols[c].data;
      for (int64_t r = 0; r < nrows; r++) dst[r] = NULL;
      t->nrows = nrows; /* so that node_free releases what was copied */
      for (int64_t r = 0; r < nrows && !rc; r++)
        if (!(dst[r] = strdup(src[r] ? src[r] : ""))) rc = cfx__fail(CFX_ENOMEM, "out of memory");
    } else if (nrows > 0) {
      memcpy(t->cols[c].data, columns[c], (size_t)nrows * 8);
    }
  }
  t->nrows = nrows;
  forget_cache(log);
  if (rc || (rc = place(log, run, table, t))) {
    node_free(t);
    return rc;
  }
  return changed(log, run);
}

static int find_table(const cfx_h5log *log, const char *run_id, const char *table, node **t, node **run) {
  int rc = lookup(log, run_id, table, t, run);
  if (rc) return rc;
  if ((*t)->kind != CFX_H5LOG_TABLE)
    return cfx__fail(CFX_EINVAL, "%s: '%s' of run '%s' is a %s, not a table", log->path, table ? table : "", run_id,
                     (*t)->kind == CFX_H5LOG_GROUP ? "group" : "array");
  return 0;
}

int cfx_h5log_truncate(cfx_h5log *log, const char *run_id, const char *table, const char *key, double max,
                       int64_t *removed) {
  if (!log || !key) return cfx__fail(CFX_EINVAL, "h5log_truncate: NULL argument");
  if (removed) *removed = 0;
  int rc = writable(log);
  node *t, *run;
  if (rc || (rc = find_table(log, run_id, table, &t, &run))) return rc;
  int k = -1;
  for (int c = 0; c < t->ncols; c++)
    if (!strcmp(t->cols[c].name, key)) k = c;
  if (k < 0) return cfx__fail(CFX_EINVAL, "%s: table '%s' of run '%s' has no column '%s'", log->path, table, run_id, key);
  if (t->cols[k].type == CFX_H5LOG_STRING)
    return cfx__fail(CFX_EDTYPE, "%s: table '%s': truncating needs a numeric key column, '%s' holds strings", log->path,
                     table, key);
  int64_t w = 0;
  for (int64_t r = 0; r < t->nrows; r++) {
    double v = t->cols[k].type == CFX_H5LOG_INT64 ? (double)((int64_t *)t->cols[k].data)[r]
                                                   : ((double *)t->cols[k].data)[r];
    int keep = v <= max;
    for (int c = 0; c < t->ncols; c++) {
      char *d = t->cols[c].data;
      if (keep) {
        if (w != r) memcpy(d + w * 8, d + r * 8, 8);
      } else if (t->cols[c].type == CFX_H5LOG_STRING) {
        free(((char **)d)[r]);
      }
    }
    w += keep;
  }
  int64_t gone = t->nrows - w;
  t->nrows = w;
  if (removed) *removed = gone;
  return gone ? changed(log, run) : 0;
}

int cfx_h5log_table_shape(const cfx_h5log *log, const char *run_id, const char *table, int *ncols, int64_t *nrows) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_table_shape: log is NULL");
  node *t, *run;
  int rc = find_table(log, run_id, table, &t, &run);
  if (rc) return rc;
  if (ncols) *ncols = t->ncols;
  if (nrows) *nrows = t->nrows;
  return 0;
}

int cfx_h5log_table_column(const cfx_h5log *log, const char *run_id, const char *table, int col, const char **name,
                           int *type, const void **data) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_table_column: log is NULL");
  node *t, *run;
  int rc = find_table(log, run_id, table, &t, &run);
  if (rc) return rc;
  if (col < 0 || col >= t->ncols)
    return cfx__fail(CFX_ERANGE, "%s: table '%s' has %d columns, asked for column %d", log->path, table, t->ncols, col);
  if (name) *name = t->cols[col].name;
  if (type) *type = t->cols[col].type;
  if (data) *data = t->cols[col].data;
  return 0;
}

/* ---- arrays ------------------------------------------------------------------------------ */

int cfx_h5log_set_array(cfx_h5log *log, const char *run_id, const char *path, int type, const int64_t *dims, int ndim,
                        const void *data) {
  if (!log || !path || !*path) return cfx__fail(CFX_EINVAL, "h5log_set_array: NULL log or empty path");
  int rc = writable(log);
  if (rc || (rc = check_run_id(run_id)) || (rc = check_path(path))) return rc;
  node *run = find_run(log, run_id);
  if (!run) return cfx__fail(CFX_ENOTFOUND, "%s: no run '%s'", log->path, run_id);
  if (type == CFX_H5LOG_STRING || file_type(type) < 0)
    return cfx__fail(CFX_EDTYPE, "%s: array '%s': type %s (uint8, int8, int16, int32, int64, float32 or float64)",
                     log->path, path, type_name(type));
  if (ndim < 0 || ndim > MAX_DIMS || (ndim > 0 && !dims))
    return cfx__fail(CFX_EINVAL, "%s: array '%s': %d dimensions (0..%d)", log->path, path, ndim, MAX_DIMS);
  uint64_t count = 1;
  for (int d = 0; d < ndim; d++) {
    if (dims[d] < 0 || (dims[d] > 0 && count > ((uint64_t)1 << 40) / (uint64_t)dims[d]))
      return cfx__fail(CFX_ERANGE, "%s: array '%s': bad dimension %lld", log->path, path, (long long)dims[d]);
    count *= (uint64_t)dims[d];
  }
  if (count && !data) return cfx__fail(CFX_EINVAL, "%s: array '%s': data is NULL", log->path, path);
  const char *leaf = strrchr(path, '/');
  leaf = leaf ? leaf + 1 : path;
  node *a = node_new(leaf, strlen(leaf), CFX_H5LOG_ARRAY);
  size_t bytes = (size_t)count * type_size(type);
  if (a) a->data = malloc(bytes ? bytes : 1);
  if (!a || !a->data) {
    node_free(a);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  a->type = type, a->ndim = ndim;
  for (int d = 0; d < ndim; d++) a->dims[d] = dims[d];
  if (bytes) memcpy(a->data, data, bytes);
  forget_cache(log);
  if ((rc = place(log, run, path, a))) {
    node_free(a);
    return rc;
  }
  return changed(log, run);
}

int cfx_h5log_array(const cfx_h5log *log, const char *run_id, const char *path, int *type, int64_t *dims, int cap,
                    int *ndim, const void **data) {
  if (!log) return cfx__fail(CFX_EINVAL, "h5log_array: log is NULL");
  node *a, *run;
  int rc = lookup(log, run_id, path, &a, &run);
  if (rc) return rc;
  if (a->kind != CFX_H5LOG_ARRAY)
    return cfx__fail(CFX_EINVAL, "%s: '%s' of run '%s' is a %s, not an array", log->path, path ? path : "", run_id,
                     a->kind == CFX_H5LOG_GROUP ? "group" : "table");
  if (type) *type = a->type;
  if (ndim) *ndim = a->ndim;
  for (int d = 0; dims && d < a->ndim && d < cap; d++) dims[d] = a->dims[d];
  if (data) *data = a->data;
  return 0;
}

/* ---- merging ------------------------------------------------------------------------------ */

int cfx_h5log_copy_run(cfx_h5log *dst, const cfx_h5log *src, const char *run_id) {
  if (!dst || !src) return cfx__fail(CFX_EINVAL, "h5log_copy_run: NULL log");
  int rc = writable(dst);
  if (rc || (rc = check_run_id(run_id))) return rc;
  node *s = find_run(src, run_id);
  if (!s) return cfx__fail(CFX_ENOTFOUND, "%s: no run '%s'", src->path, run_id);
  settle_run(s);
  node *c = node_clone(s);
  if (!c) return cfx__fail(CFX_ENOMEM, "out of memory");
  c->touched = 0; /* a copy keeps the time its source was updated */
  forget_cache(dst);
  node *old = find_run(dst, run_id);
  if (old) {
    int i = child_index(dst->runs, old);
    node_free(old);
    dst->runs->kids[i] = c;
  } else if ((rc = add_child(dst->runs, c))) {
    node_free(c);
    return rc;
  }
  return changed(dst, NULL);
}

static const char *attr_string(const node *n, const char *key) {
  const attr *a = find_attr(n, key);
  return a && a->type == CFX_H5LOG_STRING ? a->s : "";
}

static int is_done(const node *run) { return !strcmp(attr_string(run, "status"), "done"); }

/* 1 when candidate a beats b: status done first, then updated later; ties go to b (the
 * later input) being replaced only when strictly better. */
static int better(const node *a, const node *b) {
  int da = is_done(a), db = is_done(b);
  if (da != db) return da > db;
  return strcmp(attr_string(a, "updated"), attr_string(b, "updated")) >= 0;
}

typedef struct {
  char *buf;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->failed = 1;
      return;
    }
    if (b->buf && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
      b->failed = 1;
      return;
    }
    b->buf = nb, b->cap = cap;
  }
}

static void describe(sbuf *b, const char *file, const node *run) {
  const char *st = attr_string(run, "status"), *up = attr_string(run, "updated");
  sb_printf(b, "%s (status %s, updated %s)", file, st[0] ? st : "unset", up[0] ? up : "unknown");
}

int cfx_h5log_merge(cfx_h5log *dst, int n, const char *const *inputs, char **report, int64_t *len) {
  if (report) *report = NULL;
  if (len) *len = 0;
  if (!dst || n < 0 || (n > 0 && !inputs)) return cfx__fail(CFX_EINVAL, "h5log_merge: bad arguments");
  int rc = writable(dst);
  if (rc) return rc;
  cfx_h5log **in = calloc((size_t)(n ? n : 1), sizeof *in);
  if (!in) return cfx__fail(CFX_ENOMEM, "out of memory");
  for (int i = 0; i < n && !rc; i++) {
    if (!inputs[i]) rc = cfx__fail(CFX_EINVAL, "h5log_merge: input %d is NULL", i);
    else rc = cfx_h5log_open(inputs[i], CFX_H5LOG_READONLY, &in[i]);
  }
  for (int i = 0; i < dst->runs->nkids; i++) settle_run(dst->runs->kids[i]);
  sbuf b = {0};
  /* for each run id, in order of first appearance: the winner among dst and the inputs */
  for (int i = 0; i < n && !rc; i++) {
    for (int r = 0; r < in[i]->runs->nkids && !rc; r++) {
      node *cand = in[i]->runs->kids[r];
      const char *id = cand->name;
      int seen = 0;
      for (int j = 0; j < i && !seen; j++) seen = find_run(in[j], id) != NULL;
      if (seen) continue;
      int best = i, count = 1; /* best = n stands for dst */
      node *bn = cand;
      node *dn = find_run(dst, id);
      if (dn) {
        count++;
        if (better(dn, bn) && !better(bn, dn)) best = n, bn = dn;
      }
      for (int j = i + 1; j < n; j++) {
        node *o = find_run(in[j], id);
        if (!o) continue;
        count++;
        if (better(o, bn)) best = j, bn = o;
      }
      if (count > 1) {
        /* why the kept copy won over the strongest of the others; identical copies (same
         * status and update time: a file merged before) are not worth a line */
        const char *why = NULL;
        int bdone = is_done(bn);
        for (int j = -1; j < n; j++) {
          node *o = j < 0 ? dn : (j >= i ? find_run(in[j], id) : NULL);
          if (!o || o == bn) continue;
          int cmp = strcmp(attr_string(bn, "updated"), attr_string(o, "updated"));
          if (bdone != is_done(o)) {
            if (!why) why = "the copy marked done";
          } else if (cmp != 0 || strcmp(attr_string(bn, "status"), attr_string(o, "status")) != 0) {
            why = cmp > 0 ? "the newest copy" : "the copy from the later file";
          }
        }
        if (why) {
          sb_printf(&b, "run '%s' is in %d files: kept ", id, count);
          describe(&b, best == n ? dst->path : inputs[best], bn);
          sb_printf(&b, ", %s; left out ", why);
          int first = 1;
          if (dn && best != n) describe(&b, dst->path, dn), first = 0;
          for (int j = i; j < n; j++) {
            node *o = find_run(in[j], id);
            if (!o || j == best) continue;
            if (!first) sb_printf(&b, ", ");
            describe(&b, inputs[j], o);
            first = 0;
          }
          sb_printf(&b, "\n");
        }
      }
      if (best != n) rc = cfx_h5log_copy_run(dst, in[best], id);
    }
  }
  for (int i = 0; i < n; i++) cfx_h5log_close(in[i]);
  free(in);
  if (!rc && b.failed) rc = cfx__fail(CFX_ENOMEM, "out of memory");
  if (rc || !report) {
    free(b.buf);
    return rc;
  }
  if (!b.buf) b.buf = calloc(1, 1);
  if (!b.buf) return cfx__fail(CFX_ENOMEM, "out of memory");
  *report = b.buf;
  if (len) *len = (int64_t)b.len;
  return 0;
}
