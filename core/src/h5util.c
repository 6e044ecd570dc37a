/* h5util.c: HDF5 helpers shared by the store and the results log (see h5util.h). */
#define _GNU_SOURCE
#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "internal.h"

void cfx__h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0) snprintf((char *)data, 256, "%s (in %s)", e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
  return 0;
}

int cfx__h5_fail(int code, const char *what, const char *path) {
  char detail[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk, detail);
  H5Eclear2(H5E_DEFAULT);
  return cfx__fail(code, "%s: %s%s%s", path, what, detail[0] ? ": " : "", detail);
}

/* The end-of-file address an HDF5 superblock at offset 0 records (versions 0 to 3, 8-byte
 * offsets, base address 0), or -1. */
static long long h5_recorded_size(const char *path) {
  unsigned char b[64];
  FILE *fp = fopen(path, "rb");
  if (!fp) return -1;
  size_t n = fread(b, 1, sizeof b, fp);
  fclose(fp);
  if (n < 16 || memcmp(b, "\x89HDF\r\n\x1a\n", 8) != 0) return -1;
  int so, base_at;
  if (b[8] == 0 || b[8] == 1) so = b[13], base_at = b[8] == 0 ? 24 : 28;
  else if (b[8] == 2 || b[8] == 3) so = b[9], base_at = 12;
  else return -1;
  int eof_at = base_at + 2 * so;
  if (so != 8 || (size_t)eof_at + 8 > n) return -1;
  unsigned long long base = 0, eof = 0;
  for (int i = 7; i >= 0; i--) base = (base << 8) | b[base_at + i], eof = (eof << 8) | b[eof_at + i];
  return base == 0 && eof < (1ull << 62) ? (long long)eof : -1;
}

int cfx__h5_open_fail(const char *path, const char *noun, const char *remedy) {
  char detail[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk, detail);
  H5Eclear2(H5E_DEFAULT);
  struct stat st;
  long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1, recorded = h5_recorded_size(path);
  if (size >= 0 && recorded > size)
    return cfx__fail(CFX_EFORMAT, "%s: the %s is truncated: %lld bytes, of the %lld bytes its HDF5 header records; %s",
                     path, noun, size, recorded, remedy);
  return cfx__fail(CFX_EFORMAT, "%s: cannot open the %s: the HDF5 file is damaged (%lld bytes; HDF5 says: %s); %s",
                   path, noun, size, detail[0] ? detail : "?", remedy);
}

int cfx__h5_write_fail(const char *path, const char *noun, int err, const char *kept) {
  char detail[512], *d = strdup(path);
  snprintf(detail, sizeof detail, "%s", cfx_last_error());
  struct statvfs v;
  if (err != ENOSPC && err != EDQUOT && d && statvfs(dirname(d), &v) == 0 && v.f_bavail == 0) err = ENOSPC;
  free(d);
  int full = err == ENOSPC || err == EDQUOT || err == EFBIG;
  int known = full || err == EROFS || err == EACCES || err == EPERM || err == EIO || err == ENOENT;
  struct stat st;
  return cfx__fail(CFX_EIO, "%s: cannot write the %s: %s (%s); %s: %s, and run again", path, noun,
                   known ? strerror(err) : "HDF5 failed", detail, stat(path, &st) == 0 ? kept : "nothing was written",
                   full ? "free some space there (or write elsewhere)" : "check that its directory is writable");
}

hid_t cfx__h5_string_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

char *cfx__h5_read_string_attr(hid_t a) {
  hid_t t = H5Aget_type(a);
  char *out = NULL;
  if (H5Tget_class(t) == H5T_STRING) {
    if (H5Tis_variable_str(t) > 0) {
      hid_t mt = cfx__h5_string_type();
      char *v = NULL;
      if (H5Aread(a, mt, &v) >= 0 && v) {
        out = strdup(v);
        hid_t sp = H5Aget_space(a);
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &v);
        H5Sclose(sp);
      }
      H5Tclose(mt);
    } else {
      size_t n = H5Tget_size(t);
      if (n < (1u << 20) && (out = calloc(1, n + 1)) && H5Aread(a, t, out) < 0) free(out), out = NULL;
    }
  }
  H5Tclose(t);
  return out;
}

int cfx__h5_write_string_attr(hid_t loc, const char *key, const char *value) {
  hid_t t = cfx__h5_string_type(), sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, key, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, t, &value) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp), H5Tclose(t);
  return ok ? 0 : -1;
}

int cfx__h5_check_header(hid_t f, const char *path, const char *format, const char *noun, int version,
                         const char *hint) {
  hid_t a = H5Aexists(f, "cfx_format") > 0 ? H5Aopen(f, "cfx_format", H5P_DEFAULT) : -1;
  char *fmt = a >= 0 ? cfx__h5_read_string_attr(a) : NULL;
  if (a >= 0) H5Aclose(a);
  int rc = 0;
  if (!fmt || strcmp(fmt, format) != 0)
    rc = cfx__fail(CFX_EFORMAT, "%s: not a cfx %s (root attribute cfx_format is %s%s%s, expected \"%s\")", path,
                   noun, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", format);
  free(fmt);
  if (rc) return rc;
  int64_t v = -1;
  a = H5Aexists(f, "cfx_version") > 0 ? H5Aopen(f, "cfx_version", H5P_DEFAULT) : -1;
  if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &v) < 0) v = -1;
  if (a >= 0) H5Aclose(a);
  H5Eclear2(H5E_DEFAULT);
  if (v != version)
    return cfx__fail(CFX_EVERSION, "%s: %s format version %lld, but this cfx (%s) reads version %d only%s", path,
                     format, (long long)v, cfx_version(), version, hint);
  return 0;
}
