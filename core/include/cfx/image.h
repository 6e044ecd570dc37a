/* cfx/image.h: decoding, encoding and resizing images in memory.
 *
 * An image is RGB uint8, HWC, row-major, tightly packed (row stride = 3 * width):
 * a cfx_image whose data cfx allocated with malloc; release it with
 * cfx_image_release.  Encoders return malloc'd bytes; release them with cfx_free.
 *
 * Inputs are outside bytes: every length and count is checked before use, images
 * whose header claims more pixels than a cap are refused before any pixel buffer is
 * allocated, and a truncated or corrupt file is an error (CFX_EFORMAT), never a
 * partial image reported as success.  The format is sniffed from the bytes.
 *
 * Colour rules (the same as PIL's Image.convert("RGB")): grayscale is replicated to
 * three channels, palette images are expanded, 16-bit samples keep their high byte,
 * CMYK/YCCK JPEGs are converted with PIL's formula, and alpha is dropped unless
 * cfx_decode_opts.background asks for compositing over a colour.
 *
 * Every function is thread-safe and reentrant (no shared state). */
#ifndef CFX_IMAGE_H
#define CFX_IMAGE_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_image {
  uint8_t *data; /* height * width * channels bytes, malloc'd by cfx */
  int32_t width;
  int32_t height;
  int32_t channels; /* 3 */
} cfx_image;

enum {
  CFX_IMAGE_UNKNOWN = 0,
  CFX_IMAGE_JPEG = 1,
  CFX_IMAGE_PNG = 2,
  /* recognised so that the error can name them, but not decoded */
  CFX_IMAGE_GIF = 3,
  CFX_IMAGE_WEBP = 4,
  CFX_IMAGE_BMP = 5,
  CFX_IMAGE_TIFF = 6
};

/* Resampling filters, as PIL's Image.Resampling. */
enum {
  CFX_FILTER_NEAREST = 0,
  CFX_FILTER_BOX = 1,
  CFX_FILTER_BILINEAR = 2,
  CFX_FILTER_HAMMING = 3,
  CFX_FILTER_BICUBIC = 4,
  CFX_FILTER_LANCZOS = 5
};

/* JPEG chroma subsampling, as TurboJPEG's TJSAMP. */
enum {
  CFX_SUBSAMP_444 = 0,
  CFX_SUBSAMP_422 = 1,
  CFX_SUBSAMP_420 = 2,
  CFX_SUBSAMP_GRAY = 3,
  CFX_SUBSAMP_440 = 4,
  CFX_SUBSAMP_411 = 5,
  CFX_SUBSAMP_UNKNOWN = -1
};

/* Default cap on width * height of a decoded image: 16k x 16k. */
#define CFX_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)16384 * 16384)

typedef struct cfx_image_info {
  int32_t format;      /* CFX_IMAGE_* */
  int32_t width;       /* as stored, before any orientation */
  int32_t height;
  int32_t components;  /* in the file: 1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA/CMYK */
  int32_t bit_depth;   /* 8 or 16 (PNG), 8 (JPEG) */
  int32_t subsampling; /* CFX_SUBSAMP_* (JPEG), -1 otherwise */
  int32_t progressive; /* JPEG: 1 when progressive; PNG: 1 when interlaced */
  int32_t orientation; /* EXIF orientation 1..8, 0 when absent */
  int32_t quality;     /* estimated JPEG quality 1..100 from the luma table, -1 if unknown */
  int32_t has_alpha;   /* PNG with an alpha channel or tRNS */
  int32_t palette;     /* PNG palette image */
  int32_t cmyk;        /* JPEG with CMYK or YCCK colour */
} cfx_image_info;

typedef struct cfx_decode_opts {
  int64_t max_pixels;        /* refuse larger images; 0 (or more) = CFX_IMAGE_DEFAULT_MAX_PIXELS, the cap of every op */
  int32_t min_width;         /* JPEG scaled decode: the smallest DCT scale (1/8 .. 1) */
  int32_t min_height;        /*   whose output is at least this large; 0 = full size */
  int32_t apply_orientation; /* 1: rotate/flip the pixels as the EXIF orientation says */
  int32_t background;        /* -1: drop alpha (PIL's rule); else 0xRRGGBB to composite on */
} cfx_decode_opts;

/* Release an image's pixels (NULL and already-released images are fine). */
CFX_API void cfx_image_release(cfx_image *img);

/* The format of buf from its first bytes: CFX_IMAGE_*. */
CFX_API int cfx_image_sniff(const uint8_t *buf, int64_t n);
/* The format's name ("jpeg", "png", ...; "unknown"). */
CFX_API const char *cfx_image_format_name(int format);
/* Header facts without decoding the pixels. */
CFX_API int cfx_image_probe(const uint8_t *buf, int64_t n, cfx_image_info *info);
/* Decode to RGB uint8 HWC.  opts may be NULL (defaults). */
CFX_API int cfx_image_decode(const uint8_t *buf, int64_t n, const cfx_decode_opts *opts,
                             cfx_image *out);

/* JPEG at quality 1..100 with subsampling CFX_SUBSAMP_444/422/420/440/411/GRAY;
 * *out is malloc'd (cfx_free), *n its length. */
CFX_API int cfx_image_encode_jpeg(const cfx_image *img, int quality, int subsampling, uint8_t **out,
                                  int64_t *n);
/* PNG, zlib level 0..9 (-1 = default). */
CFX_API int cfx_image_encode_png(const cfx_image *img, int level, uint8_t **out, int64_t *n);

/* Resize to width x height with filter, as PIL's Image.resize (antialiased on
 * downscale; the same fixed-point arithmetic).  box (x0, y0, x1, y1 in source pixels,
 * may be NULL) selects the source region, as PIL's box argument. */
CFX_API int cfx_image_resize(const cfx_image *src, int32_t width, int32_t height, int filter,
                             const double *box, cfx_image *out);

/* ---- geometric and pixel ops (implemented in core/src/augment.c) -------------------
 * Each writes a new image to *out (cfx_image_release it); the source is not modified. */
/* Crop the w x h window at (x, y); parts outside the image are filled with fill
 * (0xRRGGBB). */
CFX_API int cfx_image_crop(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
                           cfx_image *out);
CFX_API int cfx_image_center_crop(const cfx_image *src, int32_t w, int32_t h, cfx_image *out);
CFX_API int cfx_image_flip(const cfx_image *src, int horizontal, cfx_image *out);
/* Affine warp as torchvision's F.affine on a PIL image: rotate by angle degrees
 * (clockwise on screen, as torchvision), translate by (tx, ty) pixels, scale, shear by (shear_x,
 * shear_y) degrees, about the image centre.  filter: CFX_FILTER_NEAREST, _BILINEAR or
 * _BICUBIC; pixels from outside the source take fill (0xRRGGBB). */
CFX_API int cfx_image_affine(const cfx_image *src, double angle, double tx, double ty, double scale,
                             double shear_x, double shear_y, int filter, int32_t fill, cfx_image *out);
/* Pad by the given pixels with fill (0xRRGGBB); with resize_back, resize (bilinear)
 * to the original size afterwards. */
CFX_API int cfx_image_pad(const cfx_image *src, int32_t left, int32_t top, int32_t right, int32_t bottom,
                          int32_t fill, int resize_back, cfx_image *out);
/* Fill the w x h rectangle at (x, y) with fill (0xRRGGBB). */
CFX_API int cfx_image_cutout(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
                             cfx_image *out);
/* Gaussian blur with standard deviation sigma (pixels), truncated at 4 sigma, mirror
 * ("reflect") borders: scipy.ndimage.gaussian_filter on each uint8 channel (which
 * truncates after each axis). */
CFX_API int cfx_image_gaussian_blur(const cfx_image *src, double sigma, cfx_image *out);
/* Encode as JPEG at quality (4:2:0) and decode again, in memory. */
CFX_API int cfx_image_jpeg_roundtrip(const cfx_image *src, int quality, cfx_image *out);
#ifdef __cplusplus
}
#endif
#endif
