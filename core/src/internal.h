/* internal.h: helpers shared by the sources of libcfx (core/src, and core/torch through
 * shim.h); not part of the public API, and not exported from the library. */
#ifndef CFX_INTERNAL_H
#define CFX_INTERNAL_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Record msg as cfx_last_error() for this thread and return code (a negative CFX_E*). */
int cfx__set_error(int code, const char *msg);

/* Format a message into cfx_last_error() and return code (a negative CFX_E*). */
__attribute__((format(printf, 2, 3))) int cfx__fail(int code, const char *fmt, ...);

/* What to do after a write failed with errno err: for a full disk or quota
 * ("; free some space there and run again ..."), else "".  For the end of a message. */
const char *cfx__io_hint(int err);

/* Map the regular file path read-only: *map and *n (>= min_size, else CFX_EFORMAT saying
 * "PATH: N bytes is too short for TOO_SHORT").  Release with munmap(*map, *n). */
int cfx__map_file(const char *path, int64_t min_size, const char *too_short, void **map, int64_t *n);

/* fsync a file (dir 0) or a directory (dir 1) by path; 0 or -1 with errno. */
int cfx__fsync_path(const char *path, int dir);

/* Whether the SIMD loops may use AVX2: the CPU has it and CFX_CPU_CAPABILITY (read on
 * every call, named after ATen's ATEN_CPU_CAPABILITY) is not "default" or "sse2".  Every
 * AVX2 loop computes the same integers as its SSE2 and C twins, so the choice changes
 * speed only; the tests run both (cfx_cpu_capability() names the level). */
int cfx__cpu_avx2(void);

struct cfx_image;
/* The one allocator of RGB images (image.c): w x h x 3 bytes, refused (CFX_ERANGE) unless
 * 1 <= w*h <= CFX_IMAGE_DEFAULT_MAX_PIXELS, the cap of every decode and image op. */
int cfx__image_alloc(struct cfx_image *img, int64_t w, int64_t h);
/* Pad src by a border of one colour (0xRRGGBB) and resample the padded picture back to
 * src's size with a PIL filter (not nearest), without making the padded copy: the same
 * pixels as cfx_image_pad then cfx_image_resize (image.c). */
int cfx__pad_resize(const struct cfx_image *src, int32_t left, int32_t top, int32_t right, int32_t bottom,
                    int32_t fill, int filter, struct cfx_image *out);

#ifdef __cplusplus
}
#endif

#endif
