/* fsutil.c: directory listing, mkdir -p, and file mapping helpers (see cfx/fsutil.h). */
#define _GNU_SOURCE
#include "cfx/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int cfx_fs_kind(const char *path) {
  struct stat st;
  if (!path || stat(path, &st) != 0) return 0;
  return S_ISDIR(st.st_mode) ? 1 : 2;
}

int cfx_fs_mkdirs(const char *path) {
  if (!path || !*path) return cfx__fail(CFX_EINVAL, "fs_mkdirs: empty path");
  size_t len = strlen(path);
  char *buf = malloc(len + 1);
  if (!buf) return cfx__fail(CFX_ENOMEM, "fs_mkdirs: out of memory");
  memcpy(buf, path, len + 1);
  int rc = 0;
  char ebuf[128];
  /* make each prefix ending before a '/', then the whole path */
  for (size_t i = 1; i <= len && rc == 0; i++) {
    if (i < len && buf[i] != '/') continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      rc = cfx__fail(CFX_EIO, "cannot create directory '%s': %s", buf, strerror_r(errno, ebuf, sizeof ebuf));
    buf[i] = saved;
  }
  if (rc == 0 && cfx_fs_kind(path) != 1) rc = cfx__fail(CFX_EIO, "'%s' exists and is not a directory", path);
  free(buf);
  return rc;
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

int cfx__map_file(const char *path, int64_t min_size, const char *too_short, void **map, int64_t *n) {
  char ebuf[128];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cfx__fail(CFX_EIO, "cannot open '%s': %s", path, strerror_r(errno, ebuf, sizeof ebuf));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return cfx__fail(CFX_EIO, "cannot stat '%s': %s", path, strerror_r(e, ebuf, sizeof ebuf));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return cfx__fail(CFX_EIO, "'%s' is not a regular file", path);
  }
  int64_t size = (int64_t)st.st_size;
  if (size < min_size) {
    close(fd);
    return cfx__fail(CFX_EFORMAT, "%s: %lld bytes is too short for %s", path, (long long)size, too_short);
  }
  void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED) return cfx__fail(CFX_EIO, "cannot map '%s': %s", path, strerror_r(e, ebuf, sizeof ebuf));
  *map = m, *n = size;
  return 0;
}

int cfx__fsync_path(const char *path, int dir) {
  int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}
