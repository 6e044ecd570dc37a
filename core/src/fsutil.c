/* fsutil.c: directory listing for the importers (see cfx/fsutil.h). */
#define _GNU_SOURCE
#include "cfx/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

int cfx_fs_kind(const char *path) {
  struct stat st;
  if (!path || stat(path, &st) != 0) return 0;
  return S_ISDIR(st.st_mode) ? 1 : 2;
}

int cfx_fs_list(const char *path, char **out, int64_t *n) {
  if (!path || !out || !n) return cfx__fail(CFX_EINVAL, "fs_list: NULL argument");
  *out = NULL, *n = 0;
  DIR *d = opendir(path);
  if (!d) return cfx__fail(errno == ENOENT ? CFX_ENOTFOUND : CFX_EIO, "%s: %s", path, strerror(errno));
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  struct dirent *e;
  int rc = 0;
  while (buf && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    size_t len = strlen(e->d_name);
    char kind = 'f';
    if (e->d_type == DT_DIR) {
      kind = 'd';
    } else if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
      size_t pl = strlen(path) + len + 2;
      char *full = malloc(pl);
      if (full) {
        snprintf(full, pl, "%s/%s", path, e->d_name);
        if (cfx_fs_kind(full) == 1) kind = 'd';
        free(full);
      }
    }
    if (used + len + 2 > cap) {
      while (used + len + 2 > cap) cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    buf[used] = kind;
    memcpy(buf + used + 1, e->d_name, len + 1);
    used += len + 2;
  }
  closedir(d);
  if (!buf) return cfx__fail(CFX_ENOMEM, "%s: out of memory listing the directory", path);
  *out = buf, *n = (int64_t)used;
  return rc;
}
