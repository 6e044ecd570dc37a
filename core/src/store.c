/* store.c: the packed HDF5 image store (see cfx/store.h). */
#define _GNU_SOURCE
#include "cfx/store.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"
#include "internal.h"

enum { BLOCK_BYTES = 16 << 20, BLOCK_RECORDS = 1 << 16, MAX_NAME = 4096 };

/* ---- writer ------------------------------------------------------------------------- */

typedef struct {
  uint64_t len;
  int32_t generator, group, width, height;
  uint8_t label, format, flags, pad;
} record;

typedef struct {
  char *name, *arch, *subset, *source; /* source: "" until set */
} gen_row;

struct cfx_store_writer {
  char *path, *tmp_bytes, *tmp_index, *tmp_names;
  FILE *bytes, *index, *names;
  int64_t count;
  uint64_t total;
  gen_row *gens;
  int32_t ngen, capgen;
  char **attr_keys, **attr_vals;
  int nattrs;
  int spent;
};


static char *path_with(const char *path, const char *suffix) {
  size_t n = strlen(path) + strlen(suffix) + 32;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s.%ld%s", path, (long)getpid(), suffix);
  return p;
}

static void remove_spools(cfx_store_writer *w) {
  if (w->bytes) fclose(w->bytes), w->bytes = NULL;
  if (w->index) fclose(w->index), w->index = NULL;
  if (w->names) fclose(w->names), w->names = NULL;
  if (w->tmp_bytes) unlink(w->tmp_bytes);
  if (w->tmp_index) unlink(w->tmp_index);
  if (w->tmp_names) unlink(w->tmp_names);
}

void cfx_store_writer_free(cfx_store_writer *w) {
  if (!w) return;
  remove_spools(w);
  free(w->path), free(w->tmp_bytes), free(w->tmp_index), free(w->tmp_names);
  for (int32_t i = 0; i < w->ngen; i++)
    free(w->gens[i].name), free(w->gens[i].arch), free(w->gens[i].subset), free(w->gens[i].source);
  free(w->gens);
  for (int i = 0; i < w->nattrs; i++) free(w->attr_keys[i]), free(w->attr_vals[i]);
  free(w->attr_keys), free(w->attr_vals);
  free(w);
}

int cfx_store_writer_open(const char *path, cfx_store_writer **out) {
  if (!path || !out) return cfx__fail(CFX_EINVAL, "store_writer_open: path or out is NULL");
  *out = NULL;
  cfx_store_writer *w = calloc(1, sizeof *w);
  if (!w) return cfx__fail(CFX_ENOMEM, "out of memory");
  w->path = strdup(path);
  w->tmp_bytes = path_with(path, ".bytes.tmp");
  w->tmp_index = path_with(path, ".index.tmp");
  w->tmp_names = path_with(path, ".names.tmp");
  if (!w->path || !w->tmp_bytes || !w->tmp_index || !w->tmp_names) {
    cfx_store_writer_free(w);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  w->bytes = fopen(w->tmp_bytes, "w+b");
  w->index = fopen(w->tmp_index, "w+b");
  w->names = fopen(w->tmp_names, "w+b");
  if (!w->bytes || !w->index || !w->names) {
    int e = errno;
    cfx_store_writer_free(w);
    return cfx__fail(CFX_EIO, "%s: cannot create temporary files next to it: %s", path, strerror(e));
  }
  *out = w;
  return 0;
}

int cfx_store_writer_add_generator(cfx_store_writer *w, const char *name, const char *arch, const char *subset,
                                   int32_t *id) {
  if (!w || !name || !id) return cfx__fail(CFX_EINVAL, "add_generator: NULL argument");
  if (w->spent) return cfx__fail(CFX_EINVAL, "add_generator: the writer is finished");
  arch = arch ? arch : "";
  subset = subset ? subset : "";
  for (int32_t i = 0; i < w->ngen; i++) {
    if (strcmp(w->gens[i].name, name) != 0) continue;
    if (strcmp(w->gens[i].arch, arch) != 0 || strcmp(w->gens[i].subset, subset) != 0)
      return cfx__fail(CFX_EINVAL, "generator '%s' added twice with different fields: (%s, %s) then (%s, %s)", name,
                       w->gens[i].arch, w->gens[i].subset, arch, subset);
    *id = i;
    return 0;
  }
  if (w->ngen == w->capgen) {
    int32_t cap = w->capgen ? w->capgen * 2 : 64;
    gen_row *g = realloc(w->gens, sizeof *g * (size_t)cap);
    if (!g) return cfx__fail(CFX_ENOMEM, "out of memory");
    w->gens = g, w->capgen = cap;
  }
  gen_row *g = &w->gens[w->ngen];
  g->name = strdup(name), g->arch = strdup(arch), g->subset = strdup(subset), g->source = strdup("");
  if (!g->name || !g->arch || !g->subset || !g->source) {
    free(g->name), free(g->arch), free(g->subset), free(g->source);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  *id = w->ngen++;
  return 0;
}

int cfx_store_writer_set_generator_source(cfx_store_writer *w, int32_t id, const char *source) {
  if (!w) return cfx__fail(CFX_EINVAL, "set_generator_source: writer is NULL");
  if (w->spent) return cfx__fail(CFX_EINVAL, "set_generator_source: the writer is finished");
  if (id < 0 || id >= w->ngen)
    return cfx__fail(CFX_ERANGE, "set_generator_source: generator row %d does not exist (%d registered)", id, w->ngen);
  if (!source || !*source) return 0; /* unknown says nothing */
  gen_row *g = &w->gens[id];
  if (*g->source) {
    if (strcmp(g->source, source) == 0) return 0;
    return cfx__fail(CFX_EINVAL, "generator '%s' given two content sources: '%s' then '%s'", g->name, g->source,
                     source);
  }
  char *s = strdup(source);
  if (!s) return cfx__fail(CFX_ENOMEM, "out of memory");
  free(g->source);
  g->source = s;
  return 0;
}

int cfx_store_writer_add(cfx_store_writer *w, const uint8_t *bytes, int64_t n, int label, int32_t generator,
                         int32_t group, int32_t width, int32_t height, int format, int flags, const char *name) {
  if (!w || (n > 0 && !bytes)) return cfx__fail(CFX_EINVAL, "store add: NULL argument");
  if (w->spent) return cfx__fail(CFX_EINVAL, "store add: the writer is finished");
  if (n < 0) return cfx__fail(CFX_EINVAL, "store add: negative length %lld", (long long)n);
  if (label != 0 && label != 1) return cfx__fail(CFX_EINVAL, "store add: label must be 0 (real) or 1 (generated), got %d", label);
  if (generator < 0 || generator >= w->ngen)
    return cfx__fail(CFX_ERANGE, "store add: generator row %d does not exist (%d registered)", generator, w->ngen);
  if (group < -1 || group >= w->ngen)
    return cfx__fail(CFX_ERANGE, "store add: evaluation group %d is neither -1 (none) nor a generator row (%d registered)",
                     group, w->ngen);
  if (format < 0 || format > 255 || flags < 0 || flags > 255)
    return cfx__fail(CFX_ERANGE, "store add: format %d or flags %d out of 0..255", format, flags);
  size_t nl = name ? strlen(name) : 0;
  if (nl > MAX_NAME) return cfx__fail(CFX_ERANGE, "store add: name of %zu bytes (at most %d)", nl, MAX_NAME);
  if (label == 1) group = generator; /* a fake is scored in its own generator's group */
  record r = {(uint64_t)n, generator, group, width, height, (uint8_t)label, (uint8_t)format, (uint8_t)flags, 0};
  uint32_t l32 = (uint32_t)nl;
  if ((n > 0 && fwrite(bytes, 1, (size_t)n, w->bytes) != (size_t)n) || fwrite(&r, sizeof r, 1, w->index) != 1 ||
      fwrite(&l32, sizeof l32, 1, w->names) != 1 || (nl && fwrite(name, 1, nl, w->names) != nl))
    return cfx__fail(CFX_EIO, "%s: writing the temporary files failed: %s%s", w->path, strerror(errno),
                     cfx__io_hint(errno));
  w->count++;
  w->total += (uint64_t)n;
  return 0;
}

int cfx_store_writer_set_attr(cfx_store_writer *w, const char *key, const char *value) {
  if (!w || !key || !value) return cfx__fail(CFX_EINVAL, "set_attr: NULL argument");
  if (!strcmp(key, "cfx_format") || !strcmp(key, "cfx_version"))
    return cfx__fail(CFX_EINVAL, "set_attr: '%s' is set by the writer", key);
  for (int i = 0; i < w->nattrs; i++)
    if (!strcmp(w->attr_keys[i], key)) {
      char *v = strdup(value);
      if (!v) return cfx__fail(CFX_ENOMEM, "out of memory");
      free(w->attr_vals[i]);
      w->attr_vals[i] = v;
      return 0;
    }
  char **k = realloc(w->attr_keys, sizeof *k * (size_t)(w->nattrs + 1));
  if (!k) return cfx__fail(CFX_ENOMEM, "out of memory");
  w->attr_keys = k;
  char **v = realloc(w->attr_vals, sizeof *v * (size_t)(w->nattrs + 1));
  if (!v) return cfx__fail(CFX_ENOMEM, "out of memory");
  w->attr_vals = v;
  k[w->nattrs] = strdup(key), v[w->nattrs] = strdup(value);
  if (!k[w->nattrs] || !v[w->nattrs]) {
    free(k[w->nattrs]), free(v[w->nattrs]);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  w->nattrs++;
  return 0;
}

int64_t cfx_store_writer_count(const cfx_store_writer *w) { return w ? w->count : 0; }

static int write_int_attr(hid_t loc, const char *key, int32_t value) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, key, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT32, &value) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return ok ? 0 : -1;
}

/* A 1-d dataset of n elements of file type ft; contiguous with early allocation. */
static hid_t create_1d(hid_t loc, const char *name, hid_t ft, uint64_t n) {
  hsize_t dims[1] = {n};
  hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_layout(dcpl, H5D_CONTIGUOUS);
  H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  hid_t d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl), H5Sclose(sp);
  return d;
}

/* Write count elements at [start, start + count) of a 1-d dataset. */
static int write_range(hid_t d, hid_t mt, uint64_t start, uint64_t count, const void *buf) {
  if (count == 0) return 0;
  hsize_t s[1] = {start}, c[1] = {count};
  hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, c, NULL);
  int ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, s, NULL, c, NULL) >= 0 && H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, buf) >= 0;
  H5Sclose(ms), H5Sclose(fs);
  return ok ? 0 : -1;
}

static int write_strings(hid_t loc, const char *name, char **strs, uint64_t n) {
  hid_t t = cfx__h5_string_type();
  hid_t d = create_1d(loc, name, t, n);
  int rc = d < 0 || write_range(d, t, 0, n, strs) < 0 ? -1 : 0;
  if (d >= 0) H5Dclose(d);
  H5Tclose(t);
  return rc;
}

/* The HDF5 part of finish: everything into the file tmp. */
static int write_hdf5(cfx_store_writer *w, const char *tmp) {
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return cfx__h5_fail(CFX_EIO, "cannot create the HDF5 file", tmp);
  int rc = 0;
  hid_t gi = -1, gg = -1, d_bytes = -1, d[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
  uint8_t *buf = NULL;
  char **names = NULL;
  char time_s[64];
  time_t now = time(NULL);
  struct tm tmv;
  strftime(time_s, sizeof time_s, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
  if (cfx__h5_write_string_attr(f, "cfx_format", "store") ||
      write_int_attr(f, "cfx_version", CFX_STORE_VERSION) || cfx__h5_write_string_attr(f, "created", time_s) ||
      cfx__h5_write_string_attr(f, "cfx_library_version", cfx_version())) {
    rc = cfx__h5_fail(CFX_EIO, "cannot write attributes", tmp);
    goto done;
  }
  for (int i = 0; i < w->nattrs; i++)
    if (cfx__h5_write_string_attr(f, w->attr_keys[i], w->attr_vals[i])) {
      rc = cfx__h5_fail(CFX_EIO, "cannot write an attribute", tmp);
      goto done;
    }
  gi = H5Gcreate2(f, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gg = H5Gcreate2(f, "generators", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (gi < 0 || gg < 0) {
    rc = cfx__h5_fail(CFX_EIO, "cannot create groups", tmp);
    goto done;
  }
  /* /images/bytes, copied from the spool in blocks: constant memory */
  buf = malloc(BLOCK_BYTES);
  if (!buf) {
    rc = cfx__fail(CFX_ENOMEM, "out of memory");
    goto done;
  }
  d_bytes = create_1d(gi, "bytes", H5T_STD_U8LE, w->total);
  if (d_bytes < 0) {
    rc = cfx__h5_fail(CFX_EIO, "cannot create /images/bytes", tmp);
    goto done;
  }
  rewind(w->bytes);
  for (uint64_t pos = 0; pos < w->total;) {
    size_t want = w->total - pos < BLOCK_BYTES ? (size_t)(w->total - pos) : BLOCK_BYTES;
    if (fread(buf, 1, want, w->bytes) != want) {
      rc = cfx__fail(CFX_EIO, "%s: reading the spooled bytes back failed", w->path);
      goto done;
    }
    if (write_range(d_bytes, H5T_NATIVE_UINT8, pos, want, buf)) {
      rc = cfx__h5_fail(CFX_EIO, "cannot write /images/bytes", tmp);
      goto done;
    }
    pos += want;
  }
  /* index datasets, from the record spool in blocks */
  static const char *const names_ix[8] = {"offset", "label", "generator", "width", "height", "format", "flags", "group"};
  const hid_t ftypes[8] = {H5T_STD_U64LE, H5T_STD_U8LE, H5T_STD_I32LE, H5T_STD_I32LE,
                           H5T_STD_I32LE, H5T_STD_U8LE, H5T_STD_U8LE, H5T_STD_I32LE};
  for (int k = 0; k < 8; k++) {
    d[k] = create_1d(gi, names_ix[k], ftypes[k], k == 0 ? (uint64_t)w->count + 1 : (uint64_t)w->count);
    if (d[k] < 0) {
      rc = cfx__h5_fail(CFX_EIO, "cannot create an index dataset", tmp);
      goto done;
    }
  }
  {
    record *recs = (record *)buf; /* BLOCK_RECORDS records fit in BLOCK_BYTES */
    uint64_t *off = malloc(sizeof *off * (BLOCK_RECORDS + 1));
    uint8_t *u8 = malloc(BLOCK_RECORDS);
    int32_t *i32 = malloc(sizeof *i32 * BLOCK_RECORDS);
    if (!off || !u8 || !i32) {
      free(off), free(u8), free(i32);
      rc = cfx__fail(CFX_ENOMEM, "out of memory");
      goto done;
    }
    rewind(w->index);
    uint64_t acc = 0;
    off[0] = 0;
    if (write_range(d[0], H5T_NATIVE_UINT64, 0, 1, off)) rc = -1;
    for (uint64_t start = 0; start < (uint64_t)w->count && !rc;) {
      size_t m = (uint64_t)w->count - start < BLOCK_RECORDS ? (size_t)((uint64_t)w->count - start) : BLOCK_RECORDS;
      if (fread(recs, sizeof *recs, m, w->index) != m) {
        rc = cfx__fail(CFX_EIO, "%s: reading the spooled index back failed", w->path);
        break;
      }
      for (size_t j = 0; j < m; j++) acc += recs[j].len, off[j] = acc;
      int bad = write_range(d[0], H5T_NATIVE_UINT64, start + 1, m, off);
#define COLUMN(k, arr, field, mt)                                  \
  for (size_t j = 0; j < m; j++) arr[j] = recs[j].field;          \
  bad = bad || write_range(d[k], mt, start, m, arr);
      COLUMN(1, u8, label, H5T_NATIVE_UINT8)
      COLUMN(2, i32, generator, H5T_NATIVE_INT32)
      COLUMN(3, i32, width, H5T_NATIVE_INT32)
      COLUMN(4, i32, height, H5T_NATIVE_INT32)
      COLUMN(5, u8, format, H5T_NATIVE_UINT8)
      COLUMN(6, u8, flags, H5T_NATIVE_UINT8)
      COLUMN(7, i32, group, H5T_NATIVE_INT32)
#undef COLUMN
      if (bad) rc = cfx__h5_fail(CFX_EIO, "cannot write the index", tmp);
      start += m;
    }
    free(off), free(u8), free(i32);
    if (rc) goto done;
  }
  /* /images/name, from the names spool in blocks */
  {
    hid_t t = cfx__h5_string_type();
    hid_t dn = create_1d(gi, "name", t, (uint64_t)w->count);
    names = calloc(BLOCK_RECORDS, sizeof *names);
    char *blob = malloc((size_t)BLOCK_RECORDS * 64);
    size_t blob_cap = (size_t)BLOCK_RECORDS * 64;
    if (dn < 0 || !names || !blob) {
      rc = dn < 0 ? cfx__h5_fail(CFX_EIO, "cannot create /images/name", tmp) : cfx__fail(CFX_ENOMEM, "out of memory");
    }
    rewind(w->names);
    for (uint64_t start = 0; start < (uint64_t)w->count && !rc;) {
      size_t m = (uint64_t)w->count - start < BLOCK_RECORDS ? (size_t)((uint64_t)w->count - start) : BLOCK_RECORDS;
      size_t used = 0;
      size_t *pos = (size_t *)buf; /* positions into blob; buf is free again */
      for (size_t j = 0; j < m && !rc; j++) {
        uint32_t l;
        if (fread(&l, sizeof l, 1, w->names) != 1 || l > MAX_NAME) {
          rc = cfx__fail(CFX_EIO, "%s: reading the spooled names back failed", w->path);
          break;
        }
        if (used + l + 1 > blob_cap) {
          size_t cap = blob_cap * 2 + l + 1;
          char *nb = realloc(blob, cap);
          if (!nb) {
            rc = cfx__fail(CFX_ENOMEM, "out of memory");
            break;
          }
          blob = nb, blob_cap = cap;
        }
        if (l && fread(blob + used, 1, l, w->names) != l) {
          rc = cfx__fail(CFX_EIO, "%s: reading the spooled names back failed", w->path);
          break;
        }
        blob[used + l] = '\0';
        pos[j] = used;
        used += l + 1;
      }
      if (rc) break;
      for (size_t j = 0; j < m; j++) names[j] = blob + pos[j];
      if (write_range(dn, t, start, m, names)) rc = cfx__h5_fail(CFX_EIO, "cannot write /images/name", tmp);
      start += m;
    }
    free(blob);
    if (dn >= 0) H5Dclose(dn);
    H5Tclose(t);
    if (rc) goto done;
  }
  /* /generators/{name, architecture, subset, source} */
  {
    uint64_t g = (uint64_t)w->ngen;
    char **col = calloc(g ? g : 1, sizeof *col);
    if (!col) {
      rc = cfx__fail(CFX_ENOMEM, "out of memory");
      goto done;
    }
    int bad = 0;
    for (uint64_t i = 0; i < g; i++) col[i] = w->gens[i].name;
    bad = bad || write_strings(gg, "name", col, g);
    for (uint64_t i = 0; i < g; i++) col[i] = w->gens[i].arch;
    bad = bad || write_strings(gg, "architecture", col, g);
    for (uint64_t i = 0; i < g; i++) col[i] = w->gens[i].subset;
    bad = bad || write_strings(gg, "subset", col, g);
    for (uint64_t i = 0; i < g; i++) col[i] = w->gens[i].source;
    bad = bad || write_strings(gg, "source", col, g);
    free(col);
    if (bad) rc = cfx__h5_fail(CFX_EIO, "cannot write /generators", tmp);
  }
done:
  free(buf);
  free(names);
  for (int k = 0; k < 8; k++)
    if (d[k] >= 0) H5Dclose(d[k]);
  if (d_bytes >= 0) H5Dclose(d_bytes);
  if (gi >= 0) H5Gclose(gi);
  if (gg >= 0) H5Gclose(gg);
  if (H5Fclose(f) < 0 && !rc) rc = cfx__h5_fail(CFX_EIO, "cannot close the HDF5 file", tmp);
  return rc;
}

int cfx_store_writer_finish(cfx_store_writer *w) {
  if (!w) return cfx__fail(CFX_EINVAL, "store finish: writer is NULL");
  if (w->spent) return cfx__fail(CFX_EINVAL, "store finish: the writer is already finished");
  cfx__h5_quiet();
  w->spent = 1;
  if (fflush(w->bytes) || fflush(w->index) || fflush(w->names)) {
    int e = errno;
    remove_spools(w);
    return cfx__fail(CFX_EIO, "%s: flushing the temporary files failed: %s%s", w->path, strerror(e), cfx__io_hint(e));
  }
  char *tmp = path_with(w->path, ".h5.tmp");
  if (!tmp) {
    remove_spools(w);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  int rc = write_hdf5(w, tmp);
  int err = rc ? errno : 0;
  remove_spools(w);
  if (!rc && cfx__fsync_path(tmp, 0) != 0) {
    err = errno;
    rc = cfx__fail(CFX_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
  }
  if (!rc && rename(tmp, w->path) != 0) {
    err = errno;
    rc = cfx__fail(CFX_EIO, "cannot rename %s to %s: %s", tmp, w->path, strerror(errno));
  }
  if (rc) {
    unlink(tmp);
    if (rc != CFX_ENOMEM) rc = cfx__h5_write_fail(w->path, "store", err, "the store there before is untouched");
  } else {
    char *dir = strdup(w->path);
    if (dir) cfx__fsync_path(dirname(dir), 1);
    free(dir);
  }
  free(tmp);
  return rc;
}

/* ---- reader ------------------------------------------------------------------------- */

struct cfx_store {
  int refs; /* cfx_store_retain / cfx_store_close, atomically */
  char *path;
  int fd;
  uint64_t base;  /* file offset of /images/bytes */
  int64_t n;
  int32_t ngen;
  uint64_t *offset;
  uint8_t *label, *format, *flags;
  int32_t *generator, *group, *width, *height;
  char **names, **gen_name, **gen_arch, **gen_subset, **gen_source; /* each points into a blob */
  char *blobs[5];
  char **attr_keys, **attr_vals;
  int nattrs;
};

cfx_store *cfx_store_retain(const cfx_store *s) {
  cfx_store *m = (cfx_store *)s; /* the count is not part of the store's value */
  if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
  return m;
}

void cfx_store_close(cfx_store *s) {
  if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
  if (s->fd >= 0) close(s->fd);
  free(s->path);
  free(s->offset), free(s->label), free(s->format), free(s->flags);
  free(s->generator), free(s->group), free(s->width), free(s->height);
  free(s->names), free(s->gen_name), free(s->gen_arch), free(s->gen_subset), free(s->gen_source);
  for (int i = 0; i < 5; i++) free(s->blobs[i]);
  for (int i = 0; i < s->nattrs; i++) free(s->attr_keys[i]), free(s->attr_vals[i]);
  free(s->attr_keys), free(s->attr_vals);
  free(s);
}

/* Read a whole 1-d dataset of `expect` elements into a new buffer. */
static int read_1d(hid_t f, const char *path, const char *name, hid_t mt, size_t elem, uint64_t expect, void **out) {
  *out = NULL;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return cfx__h5_fail(CFX_EFORMAT, "missing dataset", path);
  hid_t sp = H5Dget_space(d);
  hsize_t dims[1] = {0};
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  if (nd != 1 || dims[0] != expect) {
    H5Dclose(d);
    return cfx__fail(CFX_EFORMAT, "%s: %s has %llu elements, expected %llu", path, name, (unsigned long long)dims[0],
                     (unsigned long long)expect);
  }
  void *buf = malloc(expect ? expect * elem : 1);
  int rc = 0;
  if (!buf) rc = cfx__fail(CFX_ENOMEM, "out of memory reading %s", name);
  else if (expect && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = cfx__h5_fail(CFX_EFORMAT, name, path);
  H5Dclose(d);
  if (rc) free(buf);
  else *out = buf;
  return rc;
}

/* Read a string dataset of `expect` entries into *strs (pointers into a new *blob). */
static int read_strings(hid_t f, const char *path, const char *name, uint64_t expect, char ***strs, char **blob) {
  *strs = NULL, *blob = NULL;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return cfx__h5_fail(CFX_EFORMAT, "missing dataset", path);
  hid_t sp = H5Dget_space(d);
  hsize_t dims[1] = {0};
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (nd != 1 || dims[0] != expect) {
    H5Sclose(sp), H5Dclose(d);
    return cfx__fail(CFX_EFORMAT, "%s: %s has %llu entries, expected %llu", path, name, (unsigned long long)dims[0],
                     (unsigned long long)expect);
  }
  hid_t t = cfx__h5_string_type();
  char **raw = calloc(expect ? expect : 1, sizeof *raw);
  char **ptrs = calloc(expect ? expect : 1, sizeof *ptrs);
  int rc = 0;
  if (!raw || !ptrs) rc = cfx__fail(CFX_ENOMEM, "out of memory reading %s", name);
  else if (expect && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)
    rc = cfx__h5_fail(CFX_EFORMAT, name, path);
  if (!rc) {
    size_t total = 1;
    for (uint64_t i = 0; i < expect; i++) total += (raw[i] ? strlen(raw[i]) : 0) + 1;
    char *b = malloc(total);
    if (!b) rc = cfx__fail(CFX_ENOMEM, "out of memory reading %s", name);
    size_t used = 0;
    for (uint64_t i = 0; i < expect && !rc; i++) {
      size_t l = raw[i] ? strlen(raw[i]) : 0;
      memcpy(b + used, raw[i] ? raw[i] : "", l + 1);
      ptrs[i] = b + used;
      used += l + 1;
    }
    if (!rc) *blob = b, *strs = ptrs;
    if (expect) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, raw);
  }
  free(raw);
  if (rc) free(ptrs);
  H5Tclose(t), H5Sclose(sp), H5Dclose(d);
  return rc;
}

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  cfx_store *s = data;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return 0;
  char *v = cfx__h5_read_string_attr(a);
  H5Aclose(a);
  if (!v) return 0;
  char **k = realloc(s->attr_keys, sizeof *k * (size_t)(s->nattrs + 1));
  char **vv = k ? realloc(s->attr_vals, sizeof *vv * (size_t)(s->nattrs + 1)) : NULL;
  if (k) s->attr_keys = k;
  if (vv) s->attr_vals = vv;
  if (!k || !vv || !(k[s->nattrs] = strdup(name))) {
    free(v);
    return -1;
  }
  vv[s->nattrs++] = v;
  return 0;
}

/* The length of the 1-d dataset `name` (0 if it is not 1-d). */
static int dataset_len(hid_t f, const char *path, const char *name, uint64_t *len) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return cfx__h5_fail(CFX_EFORMAT, name, path);
  hid_t sp = H5Dget_space(d);
  hsize_t dims[1] = {0};
  if (H5Sget_simple_extent_ndims(sp) == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp), H5Dclose(d);
  *len = dims[0];
  return 0;
}

int cfx_store_open(const char *path, cfx_store **out) {
  if (!path || !out) return cfx__fail(CFX_EINVAL, "store_open: path or out is NULL");
  *out = NULL;
  cfx__h5_quiet();
  struct stat st;
  if (stat(path, &st) != 0)
    return cfx__fail(CFX_ENOTFOUND, "%s: %s%s", path, strerror(errno),
                     errno == ENOENT ? " (check the path, or make the store: cfx synth, cfx data import)" : "");
  if (H5Fis_hdf5(path) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return cfx__fail(CFX_EFORMAT, "%s: not an HDF5 file, so not a cfx store (make one with cfx synth or cfx data import)",
                     path);
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return cfx__h5_open_fail(path, "store",
                             "copy it again, or make it again (cfx data import, cfx synth) if it was cut short "
                             "while being written");
  cfx_store *s = calloc(1, sizeof *s);
  int rc = 0;
  if (!s || !(s->path = strdup(path))) {
    H5Fclose(f);
    free(s);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  s->fd = -1;
  s->refs = 1;
  if ((rc = cfx__h5_check_header(f, path, "store", "store", CFX_STORE_VERSION,
                                 "; version 2 added /images/group (each real's evaluation group): re-import the data "
                                 "with this cfx (cfx data import / cfx synth)")))
    goto done;
  /* the number of images and of generators */
  {
    uint64_t n_images, n_gens;
    if ((rc = dataset_len(f, path, "images/label", &n_images)) || (rc = dataset_len(f, path, "generators/name", &n_gens)))
      goto done;
    if (n_gens > INT32_MAX || n_images > INT64_MAX / 2) {
      rc = cfx__fail(CFX_EFORMAT, "%s: %llu images, %llu generators", path, (unsigned long long)n_images,
                     (unsigned long long)n_gens);
      goto done;
    }
    s->n = (int64_t)n_images;
    s->ngen = (int32_t)n_gens;
  }
  uint64_t n = (uint64_t)s->n;
  if ((rc = read_1d(f, path, "images/offset", H5T_NATIVE_UINT64, 8, n + 1, (void **)&s->offset)) ||
      (rc = read_1d(f, path, "images/label", H5T_NATIVE_UINT8, 1, n, (void **)&s->label)) ||
      (rc = read_1d(f, path, "images/generator", H5T_NATIVE_INT32, 4, n, (void **)&s->generator)) ||
      (rc = read_1d(f, path, "images/group", H5T_NATIVE_INT32, 4, n, (void **)&s->group)) ||
      (rc = read_1d(f, path, "images/width", H5T_NATIVE_INT32, 4, n, (void **)&s->width)) ||
      (rc = read_1d(f, path, "images/height", H5T_NATIVE_INT32, 4, n, (void **)&s->height)) ||
      (rc = read_1d(f, path, "images/format", H5T_NATIVE_UINT8, 1, n, (void **)&s->format)) ||
      (rc = read_1d(f, path, "images/flags", H5T_NATIVE_UINT8, 1, n, (void **)&s->flags)) ||
      (rc = read_strings(f, path, "images/name", n, &s->names, &s->blobs[0])) ||
      (rc = read_strings(f, path, "generators/name", (uint64_t)s->ngen, &s->gen_name, &s->blobs[1])) ||
      (rc = read_strings(f, path, "generators/architecture", (uint64_t)s->ngen, &s->gen_arch, &s->blobs[2])) ||
      (rc = read_strings(f, path, "generators/subset", (uint64_t)s->ngen, &s->gen_subset, &s->blobs[3])))
    goto done;
  /* /generators/source is optional (stores written before it: every source unknown) */
  if (H5Lexists(f, "generators/source", H5P_DEFAULT) > 0) {
    if ((rc = read_strings(f, path, "generators/source", (uint64_t)s->ngen, &s->gen_source, &s->blobs[4]))) goto done;
  } else {
    H5Eclear2(H5E_DEFAULT);
  }
  /* the index must be consistent before anything trusts it */
  for (int64_t i = 0; i < s->n; i++) {
    if (s->offset[i + 1] < s->offset[i]) {
      rc = cfx__fail(CFX_EFORMAT, "%s: /images/offset decreases at entry %lld", path, (long long)i + 1);
      goto done;
    }
    if (s->generator[i] < 0 || s->generator[i] >= s->ngen || s->label[i] > 1) {
      rc = cfx__fail(CFX_EFORMAT, "%s: image %lld has generator %d (of %d) and label %d", path, (long long)i,
                     s->generator[i], s->ngen, s->label[i]);
      goto done;
    }
    if (s->group[i] < -1 || s->group[i] >= s->ngen) {
      rc = cfx__fail(CFX_EFORMAT, "%s: image %lld has evaluation group %d (expected -1 or a generator row below %d)",
                     path, (long long)i, s->group[i], s->ngen);
      goto done;
    }
  }
  if (s->offset[0] != 0) {
    rc = cfx__fail(CFX_EFORMAT, "%s: /images/offset starts at %llu, expected 0", path, (unsigned long long)s->offset[0]);
    goto done;
  }
  /* where the bytes are in the file */
  {
    hid_t d = H5Dopen2(f, "images/bytes", H5P_DEFAULT);
    if (d < 0) {
      rc = cfx__h5_fail(CFX_EFORMAT, "missing /images/bytes", path);
      goto done;
    }
    hid_t dcpl = H5Dget_create_plist(d), sp = H5Dget_space(d);
    hsize_t dims[1] = {0};
    if (H5Sget_simple_extent_ndims(sp) == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    int contiguous = H5Pget_layout(dcpl) == H5D_CONTIGUOUS;
    int filtered = H5Pget_nfilters(dcpl) > 0;
    haddr_t off = H5Dget_offset(d);
    H5Sclose(sp), H5Pclose(dcpl), H5Dclose(d);
    uint64_t total = s->offset[s->n];
    if (!contiguous || filtered)
      rc = cfx__fail(CFX_EFORMAT, "%s: /images/bytes must be CONTIGUOUS and unfiltered to be read without HDF5", path);
    else if (dims[0] != total)
      rc = cfx__fail(CFX_EFORMAT, "%s: /images/bytes holds %llu bytes, the offsets say %llu", path,
                     (unsigned long long)dims[0], (unsigned long long)total);
    else if (total > 0 && off == HADDR_UNDEF)
      rc = cfx__fail(CFX_EFORMAT, "%s: /images/bytes has no storage allocated", path);
    else if (total > 0 && (off > (uint64_t)st.st_size || total > (uint64_t)st.st_size - off))
      rc = cfx__fail(CFX_EFORMAT, "%s: /images/bytes runs past the end of the file (truncated?)", path);
    if (rc) goto done;
    s->base = total > 0 ? (uint64_t)off : 0;
  }
  H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_attr, s);
  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) rc = cfx__fail(CFX_EIO, "%s: %s", path, strerror(errno));
done:
  H5Eclear2(H5E_DEFAULT);
  H5Fclose(f);
  if (rc) cfx_store_close(s);
  else *out = s;
  return rc;
}

int64_t cfx_store_count(const cfx_store *s) { return s ? s->n : 0; }
int32_t cfx_store_num_generators(const cfx_store *s) { return s ? s->ngen : 0; }
const uint64_t *cfx_store_offsets(const cfx_store *s) { return s ? s->offset : NULL; }
const uint8_t *cfx_store_labels(const cfx_store *s) { return s ? s->label : NULL; }
const int32_t *cfx_store_generators(const cfx_store *s) { return s ? s->generator : NULL; }
const int32_t *cfx_store_groups(const cfx_store *s) { return s ? s->group : NULL; }
const int32_t *cfx_store_widths(const cfx_store *s) { return s ? s->width : NULL; }
const int32_t *cfx_store_heights(const cfx_store *s) { return s ? s->height : NULL; }
const uint8_t *cfx_store_formats(const cfx_store *s) { return s ? s->format : NULL; }
const uint8_t *cfx_store_flags(const cfx_store *s) { return s ? s->flags : NULL; }

const char *cfx_store_name(const cfx_store *s, int64_t i) {
  return s && i >= 0 && i < s->n ? s->names[i] : "";
}
uint64_t cfx_store_image_hash(const cfx_store *s, int64_t i, uint64_t seed) {
  char key[MAX_NAME + 32];
  const char *name = cfx_store_name(s, i);
  size_t nl = strlen(name);
  if (nl > MAX_NAME) nl = MAX_NAME; /* the writer refuses longer names */
  memcpy(key, name, nl);
  int m = snprintf(key + nl, sizeof key - nl, "#%lld", (long long)i);
  return cfx_hash64(key, (int64_t)nl + m, seed);
}

const char *cfx_store_generator_name(const cfx_store *s, int32_t g) {
  return s && g >= 0 && g < s->ngen ? s->gen_name[g] : "";
}
const char *cfx_store_generator_architecture(const cfx_store *s, int32_t g) {
  return s && g >= 0 && g < s->ngen ? s->gen_arch[g] : "";
}
const char *cfx_store_generator_subset(const cfx_store *s, int32_t g) {
  return s && g >= 0 && g < s->ngen ? s->gen_subset[g] : "";
}
const char *cfx_store_generator_source(const cfx_store *s, int32_t g) {
  return s && s->gen_source && g >= 0 && g < s->ngen ? s->gen_source[g] : "";
}
const char *cfx_store_attr(const cfx_store *s, const char *key) {
  if (!s || !key) return NULL;
  for (int i = 0; i < s->nattrs; i++)
    if (!strcmp(s->attr_keys[i], key)) return s->attr_vals[i];
  return NULL;
}

/* pread len bytes of image i into dst. */
static int read_bytes(const cfx_store *s, int64_t i, uint8_t *dst, uint64_t len) {
  uint64_t pos = s->base + s->offset[i], done = 0;
  while (done < len) {
    ssize_t r = pread(s->fd, dst + done, (size_t)(len - done), (off_t)(pos + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return cfx__fail(CFX_EIO, "%s: reading image %lld failed: %s", s->path, (long long)i,
                       r < 0 ? strerror(errno) : "unexpected end of file");
    done += (uint64_t)r;
  }
  return 0;
}

static int check_read(const cfx_store *s, int64_t i, int64_t *n) {
  if (!s || !n) return cfx__fail(CFX_EINVAL, "store_read: NULL argument");
  if (i < 0 || i >= s->n)
    return cfx__fail(CFX_ERANGE, "%s: image index %lld out of range (the store holds %lld)", s->path, (long long)i,
                     (long long)s->n);
  return 0;
}

int cfx_store_read(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n) {
  int rc = check_read(s, i, n);
  if (rc) return rc;
  uint64_t len = s->offset[i + 1] - s->offset[i];
  *n = (int64_t)len;
  if ((uint64_t)cap < len || (len && !dst))
    return cfx__fail(CFX_ERANGE, "store_read: buffer of %lld bytes, image %lld needs %llu", (long long)cap,
                     (long long)i, (unsigned long long)len);
  return read_bytes(s, i, dst, len);
}

int cfx_store_read_prefix(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n) {
  int rc = check_read(s, i, n);
  if (rc) return rc;
  uint64_t len = s->offset[i + 1] - s->offset[i];
  if (cap < 0 || (cap > 0 && !dst)) return cfx__fail(CFX_EINVAL, "store_read_prefix: bad buffer");
  if ((uint64_t)cap < len) len = (uint64_t)cap;
  *n = (int64_t)len;
  return read_bytes(s, i, dst, len);
}
