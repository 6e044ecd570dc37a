/* cfx/fsutil.h: the few filesystem calls the Lua side needs and LuaJIT lacks
 * (listing, kind, mkdir -p).
 * Thread-safe. */
#ifndef CFX_FSUTIL_H
#define CFX_FSUTIL_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The entries of directory path (without "." and ".."), as one malloc'd block of
 * NUL-terminated records "<type><name>", type 'd' (directory, following symlinks) or
 * 'f' (anything else); *n is the block's length.  Free it with cfx_free. */
CFX_API int cfx_fs_list(const char *path, char **out, int64_t *n);
/* 1 directory, 2 other file, 0 absent. */
CFX_API int cfx_fs_kind(const char *path);
/* Create directory path and its missing parents (mode 0777 & ~umask), like mkdir -p.
 * An existing directory is success; an existing non-directory is CFX_EIO. */
CFX_API int cfx_fs_mkdirs(const char *path);

#ifdef __cplusplus
}
#endif
#endif
