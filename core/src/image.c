/* image.c: decode (TurboJPEG, libpng), encode, and resize images in memory.
 * See cfx/image.h for the contract; the colour rules follow PIL's convert("RGB") and
 * the resampling follows PIL's Resample.c (same coefficients, same fixed point), so
 * that results can be checked against PIL pixel for pixel. */
#define _GNU_SOURCE /* M_PI */
#include "cfx/image.h"
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include "simd.h"

/* ---- small helpers ---------------------------------------------------------------- */



void cfx_image_release(cfx_image *img) {
  if (!img) return;
  free(img->data);
  img->data = NULL;
  img->width = img->height = 0;
}

int cfx__image_alloc(cfx_image *img, int64_t w, int64_t h) {
  img->data = NULL;
  img->width = img->height = 0;
  img->channels = 3;
  if (w <= 0 || h <= 0 || w > INT32_MAX || h > INT32_MAX || w * h > CFX_IMAGE_DEFAULT_MAX_PIXELS)
    return cfx__fail(CFX_ERANGE, "image size %lldx%lld is out of range (1 .. %lld pixels)", (long long)w, (long long)h,
                     (long long)CFX_IMAGE_DEFAULT_MAX_PIXELS);
  img->data = malloc((size_t)(w * h * 3));
  if (!img->data) return cfx__fail(CFX_ENOMEM, "out of memory for a %lldx%lld image", (long long)w, (long long)h);
  img->width = (int32_t)w;
  img->height = (int32_t)h;
  return 0;
}

static int check_image(const cfx_image *img, const char *what) {
  if (!img || !img->data) return cfx__fail(CFX_EINVAL, "%s: image is NULL or empty", what);
  if (img->channels != 3) return cfx__fail(CFX_EINVAL, "%s: expected 3 channels, got %d", what, img->channels);
  if (img->width <= 0 || img->height <= 0)
    return cfx__fail(CFX_EINVAL, "%s: bad image size %dx%d", what, img->width, img->height);
  return 0;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- sniffing --------------------------------------------------------------------- */

int cfx_image_sniff(const uint8_t *buf, int64_t n) {
  if (!buf || n < 4) return CFX_IMAGE_UNKNOWN;
  if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return CFX_IMAGE_JPEG;
  if (n >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) return CFX_IMAGE_PNG;
  if (n >= 6 && (memcmp(buf, "GIF87a", 6) == 0 || memcmp(buf, "GIF89a", 6) == 0)) return CFX_IMAGE_GIF;
  if (n >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0) return CFX_IMAGE_WEBP;
  if (n >= 2 && buf[0] == 'B' && buf[1] == 'M') return CFX_IMAGE_BMP;
  if (memcmp(buf, "II*\0", 4) == 0 || memcmp(buf, "MM\0*", 4) == 0) return CFX_IMAGE_TIFF;
  return CFX_IMAGE_UNKNOWN;
}

const char *cfx_image_format_name(int format) {
  static const char *const names[] = {"unknown", "jpeg", "png", "gif", "webp", "bmp", "tiff"};
  if (format < 0 || format > CFX_IMAGE_TIFF) return "unknown";
  return names[format];
}

/* ---- JPEG header walking: EXIF orientation, quantization, progressive ------------ */

/* Orientation (1..8) from a TIFF structure (the body of an Exif APP1 or PNG eXIf). */
static int tiff_orientation(const uint8_t *t, size_t n) {
  if (n < 8) return 0;
  int le;
  if (t[0] == 'I' && t[1] == 'I') le = 1;
  else if (t[0] == 'M' && t[1] == 'M') le = 0;
  else return 0;
#define RD16(p) (le ? (uint16_t)((p)[0] | (p)[1] << 8) : be16(p))
#define RD32(p) (le ? (uint32_t)((p)[0] | (p)[1] << 8 | (p)[2] << 16 | (uint32_t)(p)[3] << 24) : be32(p))
  if (RD16(t + 2) != 42) return 0;
  uint32_t ifd = RD32(t + 4);
  if (ifd > n - 2 || ifd < 8) return 0;
  uint16_t count = RD16(t + ifd);
  if ((size_t)count * 12 > n - ifd - 2) return 0;
  for (uint16_t i = 0; i < count; i++) {
    const uint8_t *e = t + ifd + 2 + (size_t)i * 12;
    if (RD16(e) == 0x0112 && RD16(e + 2) == 3) {
      int v = RD16(e + 8);
      return v >= 1 && v <= 8 ? v : 0;
    }
  }
  return 0;
#undef RD16
#undef RD32
}

/* libjpeg's standard luminance quantization table (natural order). */
static const uint8_t std_luma_q[64] = {
    16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
    14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
    18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
static const uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* The libjpeg quality (1..100) whose scaled standard table is nearest to q (natural order). */
static int estimate_quality(const int *q) {
  int best = -1;
  double best_err = 1e300;
  for (int quality = 1; quality <= 100; quality++) {
    int scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
    double err = 0;
    for (int i = 0; i < 64; i++) {
      long v = ((long)std_luma_q[i] * scale + 50) / 100;
      if (v < 1) v = 1;
      if (v > 255) v = 255;
      err += fabs((double)(v - q[i]));
    }
    if (err < best_err) best_err = err, best = quality;
  }
  return best;
}

/* Walk the JPEG markers up to the first scan.  Fills orientation, quality and
 * progressive; returns 0, or CFX_EFORMAT when a marker length runs past the end. */
static int jpeg_walk(const uint8_t *buf, size_t n, cfx_image_info *info) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (buf[pos] != 0xFF) return cfx__fail(CFX_EFORMAT, "corrupt JPEG: expected a marker at byte %zu", pos);
    uint8_t m = buf[pos + 1];
    if (m == 0xFF) { /* fill byte */
      pos++;
      continue;
    }
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      pos += 2;
      continue;
    }
    if (m == 0xD9 || m == 0xDA) return 0; /* end of image / start of scan: headers done */
    size_t len = be16(buf + pos + 2);
    if (len < 2 || len > n - pos - 2)
      return cfx__fail(CFX_EFORMAT, "truncated JPEG: marker 0x%02X at byte %zu claims %zu bytes, %zu remain", m, pos,
                  len, n - pos - 2);
    const uint8_t *seg = buf + pos + 4;
    size_t slen = len - 2;
    if (m == 0xE1 && slen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0 && !info->orientation) {
      info->orientation = tiff_orientation(seg + 6, slen - 6);
    } else if (m == 0xDB) { /* DQT: one or more tables */
      size_t p = 0;
      while (p < slen) {
        int prec = seg[p] >> 4, id = seg[p] & 15;
        size_t tl = prec ? 128 : 64;
        if (tl > slen - p - 1) return cfx__fail(CFX_EFORMAT, "corrupt JPEG: quantization table runs past its segment");
        if (id == 0) {
          int q[64];
          for (int i = 0; i < 64; i++)
            q[zigzag[i]] = prec ? be16(seg + p + 1 + 2 * i) : seg[p + 1 + i];
          info->quality = estimate_quality(q);
        }
        p += 1 + tl;
      }
    } else if (m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE) {
      info->progressive = 1;
    }
    pos += 2 + len;
  }
  return 0;
}

static int probe_jpeg(const uint8_t *buf, int64_t n, cfx_image_info *info) {
  int rc = jpeg_walk(buf, (size_t)n, info);
  if (rc) return rc;
  tjhandle tj = tjInitDecompress();
  if (!tj) return cfx__fail(CFX_ENOMEM, "cannot create a TurboJPEG decompressor");
  int w = 0, h = 0, ss = -1, cs = -1;
  if (tjDecompressHeader3(tj, buf, (unsigned long)n, &w, &h, &ss, &cs) != 0) {
    rc = cfx__fail(CFX_EFORMAT, "bad JPEG header: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    return rc;
  }
  tjDestroy(tj);
  /* A stream that ends (or reaches EOI) before any frame header leaves them unset. */
  if (w <= 0 || h <= 0 || cs < 0)
    return cfx__fail(CFX_EFORMAT, "truncated JPEG: no frame header (SOF) before the end of the data");
  info->width = w;
  info->height = h;
  info->subsampling = ss;
  info->cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  info->components = cs == TJCS_GRAY ? 1 : info->cmyk ? 4 : 3;
  info->bit_depth = 8;
  return 0;
}

/* ---- PNG via libpng -------------------------------------------------------------- */

struct png_src {
  const uint8_t *buf;
  size_t n, pos;
  char err[256];
};

static void png_read_mem(png_structp png, png_bytep out, png_size_t len) {
  struct png_src *s = png_get_io_ptr(png);
  if (len > s->n - s->pos) png_error(png, "truncated PNG: the file ends inside its data");
  memcpy(out, s->buf + s->pos, len);
  s->pos += len;
}

static void png_on_error(png_structp png, png_const_charp msg) {
  struct png_src *s = png_get_error_ptr(png);
  if (s) snprintf(s->err, sizeof s->err, "%s", msg);
  png_longjmp(png, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

/* Decode (or only probe, when out is NULL) a PNG.  Uses setjmp internally, as
 * libpng requires; nothing longjmps out of this function. */
static int png_run(const uint8_t *buf, int64_t n, const cfx_decode_opts *opts, cfx_image_info *info,
                   cfx_image *out) {
  struct png_src src = {buf, (size_t)n, 0, ""};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!png) return cfx__fail(CFX_ENOMEM, "cannot create a PNG reader");
  png_infop pinfo = png_create_info_struct(png);
  uint8_t *volatile rgba = NULL;
  png_bytep *volatile rows = NULL;
  volatile int rc = 0;
  if (!pinfo) {
    png_destroy_read_struct(&png, NULL, NULL);
    return cfx__fail(CFX_ENOMEM, "cannot create a PNG info struct");
  }
  if (setjmp(png_jmpbuf(png))) {
    rc = cfx__fail(CFX_EFORMAT, "corrupt PNG: %s", src.err[0] ? src.err : "libpng error");
    goto done;
  }
  png_set_read_fn(png, &src, png_read_mem);
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_DEFAULT);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_read_info(png, pinfo);

  png_uint_32 w, h;
  int depth, ctype, interlace;
  png_get_IHDR(png, pinfo, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
  info->width = (int32_t)w;
  info->height = (int32_t)h;
  info->bit_depth = depth;
  info->progressive = interlace != PNG_INTERLACE_NONE;
  info->palette = ctype == PNG_COLOR_TYPE_PALETTE;
  int has_trns = png_get_valid(png, pinfo, PNG_INFO_tRNS) != 0;
  info->has_alpha = (ctype & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;
  info->components = ctype == PNG_COLOR_TYPE_GRAY ? 1
                     : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                     : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                                                          : 3;
#ifdef PNG_eXIf_SUPPORTED
  {
    png_bytep exif = NULL;
    png_uint_32 exif_len = 0;
    if (png_get_eXIf_1(png, pinfo, &exif_len, &exif) && exif) info->orientation = tiff_orientation(exif, exif_len);
  }
#endif
  if (!out) goto done;

  int64_t cap = opts && opts->max_pixels > 0 && opts->max_pixels < CFX_IMAGE_DEFAULT_MAX_PIXELS ? opts->max_pixels
                                                                                : CFX_IMAGE_DEFAULT_MAX_PIXELS;
  if ((int64_t)w * (int64_t)h > cap) {
    rc = cfx__fail(CFX_ERANGE, "PNG of %ux%u pixels exceeds the cap of %lld pixels", (unsigned)w, (unsigned)h,
              (long long)cap);
    goto done;
  }
  int composite = opts && opts->background >= 0;
  /* The colour rules of PIL's convert("RGB"): expand palettes and low bit depths,
   * keep the high byte of 16-bit samples, replicate gray, drop alpha (or keep it to
   * composite).  tRNS becomes alpha only when compositing: PIL ignores it. */
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png);
  if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  if (composite) {
    if (has_trns) png_set_tRNS_to_alpha(png);
    if (!(ctype & PNG_COLOR_MASK_ALPHA) && !has_trns) png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
  } else {
    png_set_strip_alpha(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, pinfo);
  size_t rowbytes = png_get_rowbytes(png, pinfo);
  size_t ch = composite ? 4 : 3;
  if (rowbytes != (size_t)w * ch) {
    rc = cfx__fail(CFX_EINTERNAL, "PNG transform gave %zu bytes per row, expected %zu", rowbytes, (size_t)w * ch);
    goto done;
  }
  if (composite) {
    rgba = malloc((size_t)w * h * 4);
    if (!rgba) {
      rc = cfx__fail(CFX_ENOMEM, "out of memory for a %ux%u PNG", (unsigned)w, (unsigned)h);
      goto done;
    }
  } else {
    rc = cfx__image_alloc(out, w, h);
    if (rc) goto done;
  }
  rows = malloc(sizeof(png_bytep) * h);
  if (!rows) {
    rc = cfx__fail(CFX_ENOMEM, "out of memory for PNG row pointers");
    goto done;
  }
  uint8_t *base = composite ? rgba : out->data;
  for (png_uint_32 y = 0; y < h; y++) rows[y] = base + (size_t)y * rowbytes;
  png_read_image(png, rows);
  if (composite) {
    rc = cfx__image_alloc(out, w, h);
    if (rc) goto done;
    int bg[3] = {(opts->background >> 16) & 255, (opts->background >> 8) & 255, opts->background & 255};
    for (size_t i = 0; i < (size_t)w * h; i++) {
      unsigned a = rgba[4 * i + 3];
      for (int c = 0; c < 3; c++)
        out->data[3 * i + c] = (uint8_t)((rgba[4 * i + c] * a + (unsigned)bg[c] * (255 - a) + 127) / 255);
    }
  }
done:
  if (rc && out) cfx_image_release(out);
  free(rows);
  free(rgba);
  png_destroy_read_struct(&png, &pinfo, NULL);
  return rc;
}

/* ---- probing and decoding ------------------------------------------------------------ */

static int unsupported(int fmt, int64_t n) {
  if (fmt == CFX_IMAGE_UNKNOWN)
    return cfx__fail(CFX_EFORMAT, "not an image cfx can read: %lld bytes that are neither JPEG nor PNG", (long long)n);
  return cfx__fail(CFX_EFORMAT, "%s images are not supported (only JPEG and PNG)", cfx_image_format_name(fmt));
}

int cfx_image_probe(const uint8_t *buf, int64_t n, cfx_image_info *info) {
  if (!info) return cfx__fail(CFX_EINVAL, "probe: info is NULL");
  memset(info, 0, sizeof *info);
  info->subsampling = CFX_SUBSAMP_UNKNOWN;
  info->quality = -1;
  if (!buf || n <= 0) return cfx__fail(CFX_EFORMAT, "empty input (0 bytes)");
  int fmt = cfx_image_sniff(buf, n);
  info->format = fmt;
  if (fmt == CFX_IMAGE_JPEG) return probe_jpeg(buf, n, info);
  if (fmt == CFX_IMAGE_PNG) return png_run(buf, n, NULL, info, NULL);
  return unsupported(fmt, n);
}

/* PIL's CMYK -> RGB (Convert.c cmyk2rgb): r = (255 - k) - c * (255 - k) / 255. */
static inline uint8_t muldiv255(unsigned a, unsigned b) {
  unsigned t = a * b + 128;
  return (uint8_t)(((t >> 8) + t) >> 8);
}

static int decode_jpeg(const uint8_t *buf, int64_t n, const cfx_decode_opts *opts, cfx_image *out) {
  cfx_image_info info;
  memset(&info, 0, sizeof info);
  int rc = probe_jpeg(buf, n, &info);
  if (rc) return rc;
  int64_t cap = opts && opts->max_pixels > 0 && opts->max_pixels < CFX_IMAGE_DEFAULT_MAX_PIXELS ? opts->max_pixels
                                                                                : CFX_IMAGE_DEFAULT_MAX_PIXELS;
  if ((int64_t)info.width * info.height > cap)
    return cfx__fail(CFX_ERANGE, "JPEG of %dx%d pixels exceeds the cap of %lld pixels", info.width, info.height,
                (long long)cap);
  /* Scaled decode: the smallest of 1/8, 1/4, 1/2, 1 that keeps both sides at or
   * above the caller's minimum (these scales have SIMD IDCTs in libjpeg-turbo). */
  int denom = 1;
  if (opts && (opts->min_width > 0 || opts->min_height > 0)) {
    for (int d = 8; d > 1; d /= 2) {
      int sw = (info.width + d - 1) / d, sh = (info.height + d - 1) / d;
      if (sw >= opts->min_width && sh >= opts->min_height) {
        denom = d;
        break;
      }
    }
  }
  tjscalingfactor sf = {1, denom};
  int w = TJSCALED(info.width, sf), h = TJSCALED(info.height, sf);
  tjhandle tj = tjInitDecompress();
  if (!tj) return cfx__fail(CFX_ENOMEM, "cannot create a TurboJPEG decompressor");
  if (info.cmyk) {
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    if (!cmyk) {
      tjDestroy(tj);
      return cfx__fail(CFX_ENOMEM, "out of memory for a %dx%d CMYK JPEG", w, h);
    }
    if (tjDecompress2(tj, buf, (unsigned long)n, cmyk, w, 0, h, TJPF_CMYK, 0) != 0) {
      rc = cfx__fail(CFX_EFORMAT, "corrupt JPEG: %s", tjGetErrorStr2(tj));
    } else if ((rc = cfx__image_alloc(out, w, h)) == 0) {
      /* libjpeg returns Adobe CMYK as stored (inverted); PIL reads it as "CMYK;I". */
      for (size_t i = 0; i < (size_t)w * h; i++) {
        unsigned k = cmyk[4 * i + 3]; /* stored inverted: this is 255 - K */
        for (int c = 0; c < 3; c++) {
          unsigned cc = 255u - cmyk[4 * i + c];
          int v = (int)k - muldiv255(cc, k);
          out->data[3 * i + c] = (uint8_t)(v < 0 ? 0 : v);
        }
      }
    }
    free(cmyk);
    tjDestroy(tj);
    return rc;
  }
  rc = cfx__image_alloc(out, w, h);
  if (rc) {
    tjDestroy(tj);
    return rc;
  }
  if (tjDecompress2(tj, buf, (unsigned long)n, out->data, w, 0, h, TJPF_RGB, 0) != 0) {
    /* Warnings (a truncated or corrupt stream) count as errors: the pixels would be
     * partly made up. */
    rc = cfx__fail(CFX_EFORMAT, "%s JPEG: %s",
              tjGetErrorCode(tj) == TJERR_WARNING ? "truncated or corrupt" : "corrupt", tjGetErrorStr2(tj));
    cfx_image_release(out);
  }
  tjDestroy(tj);
  return rc;
}

/* Apply an EXIF orientation (2..8) in place (new buffer). */
static int apply_orientation(cfx_image *img, int o) {
  if (o <= 1 || o > 8) return 0;
  int w = img->width, h = img->height;
  int swap = o >= 5;
  int ow = swap ? h : w, oh = swap ? w : h;
  uint8_t *dst = malloc((size_t)w * h * 3);
  if (!dst) return cfx__fail(CFX_ENOMEM, "out of memory applying the EXIF orientation");
  for (int y = 0; y < oh; y++) {
    for (int x = 0; x < ow; x++) {
      int sx, sy;
      switch (o) {
      case 2: sx = w - 1 - x, sy = y; break;              /* mirror horizontal */
      case 3: sx = w - 1 - x, sy = h - 1 - y; break;      /* rotate 180 */
      case 4: sx = x, sy = h - 1 - y; break;              /* mirror vertical */
      case 5: sx = y, sy = x; break;                      /* transpose */
      case 6: sx = y, sy = h - 1 - x; break;              /* rotate 90 CW */
      case 7: sx = w - 1 - y, sy = h - 1 - x; break;      /* transverse */
      default: sx = w - 1 - y, sy = x; break;             /* 8: rotate 270 CW */
      }
      memcpy(dst + ((size_t)y * ow + x) * 3, img->data + ((size_t)sy * w + sx) * 3, 3);
    }
  }
  free(img->data);
  img->data = dst;
  img->width = ow;
  img->height = oh;
  return 0;
}

int cfx_image_decode(const uint8_t *buf, int64_t n, const cfx_decode_opts *opts, cfx_image *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "decode: out is NULL");
  memset(out, 0, sizeof *out);
  if (!buf || n <= 0) return cfx__fail(CFX_EFORMAT, "empty input (0 bytes)");
  int fmt = cfx_image_sniff(buf, n);
  int rc;
  cfx_image_info info;
  memset(&info, 0, sizeof info);
  if (fmt == CFX_IMAGE_JPEG) {
    rc = decode_jpeg(buf, n, opts, out);
    if (!rc && opts && opts->apply_orientation) {
      jpeg_walk(buf, (size_t)n, &info);
      rc = apply_orientation(out, info.orientation);
    }
  } else if (fmt == CFX_IMAGE_PNG) {
    rc = png_run(buf, n, opts, &info, out);
    if (!rc && opts && opts->apply_orientation) rc = apply_orientation(out, info.orientation);
  } else {
    return unsupported(fmt, n);
  }
  if (rc) cfx_image_release(out);
  return rc;
}

/* ---- encoding ------------------------------------------------------------------------- */

int cfx_image_encode_jpeg(const cfx_image *img, int quality, int subsampling, uint8_t **out, int64_t *n) {
  int rc = check_image(img, "encode_jpeg");
  if (rc) return rc;
  if (!out || !n) return cfx__fail(CFX_EINVAL, "encode_jpeg: out or n is NULL");
  if (quality < 1 || quality > 100) return cfx__fail(CFX_ERANGE, "JPEG quality must be 1..100, got %d", quality);
  if (subsampling < 0 || subsampling > CFX_SUBSAMP_411)
    return cfx__fail(CFX_EINVAL, "unknown JPEG subsampling %d (expected 0..5: 444, 422, 420, gray, 440, 411)",
                subsampling);
  tjhandle tj = tjInitCompress();
  if (!tj) return cfx__fail(CFX_ENOMEM, "cannot create a TurboJPEG compressor");
  unsigned long size = tjBufSize(img->width, img->height, subsampling);
  unsigned char *dst = malloc(size);
  if (!dst) {
    tjDestroy(tj);
    return cfx__fail(CFX_ENOMEM, "out of memory for a JPEG of up to %lu bytes", size);
  }
  /* The accurate integer DCT, as PIL (libjpeg's default JDCT_ISLOW); TurboJPEG would
   * otherwise pick the fast one below quality 96. */
  if (tjCompress2(tj, img->data, img->width, 0, img->height, TJPF_RGB, &dst, &size, subsampling, quality,
                  TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT) != 0) {
    rc = cfx__fail(CFX_EINTERNAL, "JPEG encoding failed: %s", tjGetErrorStr2(tj));
    free(dst);
  } else {
    *out = dst;
    *n = (int64_t)size;
  }
  tjDestroy(tj);
  return rc;
}

struct png_sink {
  uint8_t *buf;
  size_t n, cap;
  int oom;
};

static void png_write_mem(png_structp png, png_bytep data, png_size_t len) {
  struct png_sink *s = png_get_io_ptr(png);
  if (len > s->cap - s->n) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap - s->n < len) cap *= 2;
    uint8_t *nb = realloc(s->buf, cap);
    if (!nb) {
      s->oom = 1;
      png_error(png, "out of memory");
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->n, data, len);
  s->n += len;
}
static void png_flush_mem(png_structp png) { (void)png; }

int cfx_image_encode_png(const cfx_image *img, int level, uint8_t **out, int64_t *n) {
  int rc = check_image(img, "encode_png");
  if (rc) return rc;
  if (!out || !n) return cfx__fail(CFX_EINVAL, "encode_png: out or n is NULL");
  if (level < -1 || level > 9) return cfx__fail(CFX_ERANGE, "PNG compression level must be -1..9, got %d", level);
  struct png_sink sink = {NULL, 0, 0, 0};
  char err[256] = "";
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  if (!png) return cfx__fail(CFX_ENOMEM, "cannot create a PNG writer");
  png_infop pinfo = png_create_info_struct(png);
  png_bytep *volatile rows = NULL;
  if (!pinfo || setjmp(png_jmpbuf(png))) {
    snprintf(err, sizeof err, "%s", sink.oom ? "out of memory" : "libpng error");
    free(rows);
    free(sink.buf);
    png_destroy_write_struct(&png, &pinfo);
    return cfx__fail(sink.oom ? CFX_ENOMEM : CFX_EINTERNAL, "PNG encoding failed: %s", err);
  }
  png_set_write_fn(png, &sink, png_write_mem, png_flush_mem);
  if (level >= 0) png_set_compression_level(png, level);
  png_set_IHDR(png, pinfo, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  rows = malloc(sizeof(png_bytep) * (size_t)img->height);
  if (!rows) png_error(png, "out of memory");
  for (int y = 0; y < img->height; y++) rows[y] = img->data + (size_t)y * img->width * 3;
  png_write_info(png, pinfo);
  png_write_image(png, rows);
  png_write_end(png, pinfo);
  free(rows);
  png_destroy_write_struct(&png, &pinfo);
  *out = sink.buf;
  *n = (int64_t)sink.n;
  return 0;
}

/* ---- resizing: PIL's Resample.c ----------------------------------------------------------- */

typedef struct {
  double (*fn)(double x);
  double support;
} resample_filter;

static double box_fn(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }
static double bilinear_fn(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
static double hamming_fn(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return sin(x) / x * (0.54 + 0.46 * cos(x));
}
static double bicubic_fn(double x) {
  const double a = -0.5; /* PIL's (and Keys') choice */
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
static double sinc_fn(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}
static double lanczos_fn(double x) { return -3.0 <= x && x < 3.0 ? sinc_fn(x) * sinc_fn(x / 3) : 0.0; }

static const resample_filter filters[] = {
    [CFX_FILTER_BOX] = {box_fn, 0.5},         [CFX_FILTER_BILINEAR] = {bilinear_fn, 1.0},
    [CFX_FILTER_HAMMING] = {hamming_fn, 1.0}, [CFX_FILTER_BICUBIC] = {bicubic_fn, 2.0},
    [CFX_FILTER_LANCZOS] = {lanczos_fn, 3.0},
};

enum { PRECISION_BITS = 32 - 8 - 2 };

/* Fixed-point coefficients for resampling [in0, in1) of an axis of in_size pixels to
 * out_size pixels.  bounds[2i], bounds[2i+1] = first source pixel and count. */
static int precompute_coeffs(int in_size, double in0, double in1, int out_size, const resample_filter *f,
                             int **bounds_out, int32_t **kk_out, int *ksize_out) {
  double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = f->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  if (ksize <= 0 || (size_t)out_size > SIZE_MAX / sizeof(double) / (size_t)ksize)
    return cfx__fail(CFX_ERANGE, "resize: filter too large");
  double *pre = malloc((size_t)out_size * ksize * sizeof(double));
  int *bounds = malloc((size_t)out_size * 2 * sizeof(int));
  int32_t *kk = malloc((size_t)out_size * ksize * sizeof(int32_t));
  if (!pre || !bounds || !kk) {
    free(pre), free(bounds), free(kk);
    return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = pre + (size_t)xx * ksize;
    int x;
    for (x = 0; x < xmax; x++) {
      double w = f->fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    for (; x < ksize; x++) k[x] = 0;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  for (size_t i = 0; i < (size_t)out_size * ksize; i++)
    kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                       : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
  free(pre);
  *bounds_out = bounds;
  *kk_out = kk;
  *ksize_out = ksize;
  return 0;
}

static inline uint8_t clip8(int32_t v) {
  if (v >= (255 << PRECISION_BITS)) return 255;
  if (v <= 0) return 0;
  return (uint8_t)(v >> PRECISION_BITS);
}

/* The SIMD passes below compute PIL's sums exactly.  A coefficient k (22 fractional
 * bits, |k| < 2^23) is split as k = kh * 2^11 + kl with kl in [0, 2^11): both halves fit
 * int16, so SSE2's pmaddwd (16 x 16 -> 32 bits, pairs of taps summed) gives
 * sum(p * kh) and sum(p * kl) exactly, and 2^21 + (sum(p * kh) << 11) + sum(p * kl)
 * is PIL's int32 accumulator to the bit. */
enum { SPLIT_BITS = 11 };

#ifdef __SSE2__
/* Two taps' split coefficients as pmaddwd operands: {kh_a, kh_b} and {kl_a, kl_b}. */
static inline int32_t pair_hi(int32_t a, int32_t b) {
  return (int32_t)(((uint32_t)(a >> SPLIT_BITS) & 0xFFFF) | (uint32_t)(b >> SPLIT_BITS) << 16);
}
static inline int32_t pair_lo(int32_t a, int32_t b) {
  return (int32_t)(((uint32_t)a & ((1u << SPLIT_BITS) - 1)) | ((uint32_t)b & ((1u << SPLIT_BITS) - 1)) << 16);
}
/* 2^21 + (hi << 11) + lo, >> 22, clipped to 0..255 (packs/packus saturate as clip8). */
static inline __m128i finish_sums(__m128i hi, __m128i lo) {
  __m128i v = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(hi, SPLIT_BITS), lo), _mm_set1_epi32(1 << (PRECISION_BITS - 1)));
  return _mm_srai_epi32(v, PRECISION_BITS);
}
#endif

/* The rows the horizontal pass reads: an image, optionally seen with a border of one
 * colour around it (pad, then resize back, without making the padded copy). */
typedef struct {
  const uint8_t *data;
  int w, h;                /* the image */
  int l, t, r, b;          /* border widths: the rows are (w + l + r) x (h + t + b) */
  uint8_t fill[3];
  uint8_t *line, *border;  /* (w + l + r) * 3 + 16 bytes each; border: a row of fill */
} row_src;

static int row_src_init(row_src *s, const cfx_image *img, int l, int t, int r, int b, int32_t fill) {
  memset(s, 0, sizeof *s);
  s->data = img->data, s->w = img->width, s->h = img->height, s->l = l, s->t = t, s->r = r, s->b = b;
  s->fill[0] = (uint8_t)(fill >> 16), s->fill[1] = (uint8_t)(fill >> 8), s->fill[2] = (uint8_t)fill;
  size_t n = (size_t)(s->w + l + r) * 3 + 16;
  s->line = calloc(1, n);
  s->border = calloc(1, n);
  if (!s->line || !s->border) {
    free(s->line), free(s->border);
    return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  }
  for (int x = 0; x < s->w + l + r; x++) memcpy(s->border + 3 * (size_t)x, s->fill, 3);
  memcpy(s->line, s->border, n - 16);
  return 0;
}
static void row_src_free(row_src *s) { free(s->line), free(s->border); }

/* Row y of the (bordered) image, with at least 16 readable bytes after its end. */
static const uint8_t *row_src_get(const row_src *s, int y) {
  if (y < s->t || y >= s->t + s->h) return s->border;
  size_t rowbytes = (size_t)s->w * 3;
  const uint8_t *row = s->data + (size_t)(y - s->t) * rowbytes;
  if (!s->l && !s->r && row + rowbytes + 16 <= s->data + rowbytes * (size_t)s->h) return row;
  memcpy(s->line + (size_t)s->l * 3, row, rowbytes); /* the border pixels were written once */
  return s->line;
}

/* Row y of s for the horizontal pass writing output row o (ow pixels); NULL when it is
 * another row of fill right after one, which has the same result: o is then a copy of
 * the output row above. */
static inline const uint8_t *pass_row(const row_src *s, int y, const uint8_t **prev, uint8_t *o, int ow) {
  const uint8_t *row = row_src_get(s, y);
  if (row == s->border && row == *prev) {
    memcpy(o, o - (size_t)ow * 3, (size_t)ow * 3);
    return NULL;
  }
  *prev = row;
  return row;
}

/* One output pixel of the horizontal pass in plain C: n taps k from pixel xmin of row. */
static inline void resample_px_c(const uint8_t *row, int xmin, int n, const int32_t *k, uint8_t *o) {
  int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
  for (int i = 0; i < n; i++) {
    const uint8_t *p = row + (size_t)(xmin + i) * 3;
    s0 += p[0] * k[i], s1 += p[1] * k[i], s2 += p[2] * k[i];
  }
  o[0] = clip8(s0), o[1] = clip8(s1), o[2] = clip8(s2);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CFX_RESAMPLE_AVX2 1
/* The horizontal pass in AVX2, the same integers as the SSE2 loop: two output pixels at
 * a time, one per 128-bit half.  Each half loads 16 bytes (four taps, r g b each, and a
 * byte), and two shuffles spread taps 0 1 and 2 3 into int16 pairs (r0 r1 g0 g1 b0 b1)
 * for pmaddwd against the split coefficients; taps past a pixel's count have zero
 * coefficients.  A pair whose loads would pass the row's readable end (the row plus
 * 16 bytes) is done in plain C. */
__attribute__((target("avx2"))) static int resample_h_avx2(uint8_t *dst, int ow, int oh, const row_src *s, int y0,
                                                           int ksize, const int *bounds, const int32_t *kk) {
  const int nq = (ksize + 3) / 4; /* groups of four taps */
  const int npair = ow / 2;
  /* per pixel pair and tap group: hi and lo coefficient vectors for taps 0 1 and 2 3 */
  __m256i *kv = aligned_alloc(32, sizeof(__m256i) * 4 * ((size_t)nq * npair + 1));
  if (!kv) return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  for (int q = 0; q < npair; q++)
    for (int g = 0; g < nq; g++) {
      int32_t c[2][4]; /* [half][hi01, lo01, hi23, lo23] */
      for (int half = 0; half < 2; half++) {
        int x = 2 * q + half, n = bounds[2 * x + 1];
        const int32_t *k = kk + (size_t)x * ksize;
        int32_t t[4];
        for (int i = 0; i < 4; i++) t[i] = 4 * g + i < n ? k[4 * g + i] : 0;
        c[half][0] = pair_hi(t[0], t[1]), c[half][1] = pair_lo(t[0], t[1]);
        c[half][2] = pair_hi(t[2], t[3]), c[half][3] = pair_lo(t[2], t[3]);
      }
      __m256i *v = kv + 4 * ((size_t)q * nq + g);
      for (int i = 0; i < 4; i++)
        v[i] = _mm256_setr_epi32(c[0][i], c[0][i], c[0][i], c[0][i], c[1][i], c[1][i], c[1][i], c[1][i]);
    }
  const __m256i spread01 = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                            0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m256i spread23 = _mm256_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
                                            6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const __m256i round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
  const size_t readable = (size_t)(s->w + s->l + s->r) * 3 + 16;
  const uint8_t *prev_row = NULL;
  for (int y = 0; y < oh; y++) {
    uint8_t *o = dst + (size_t)y * ow * 3;
    const uint8_t *row = pass_row(s, y + y0, &prev_row, o, ow);
    if (!row) continue;
    int x = 0;
    for (; x + 2 < ow; x += 2, o += 6) { /* + 2 < ow: each half stores 4 bytes */
      size_t a = (size_t)bounds[2 * x] * 3, b = (size_t)bounds[2 * x + 2] * 3;
      if (b + 12 * (size_t)nq + 4 > readable) break; /* a <= b: PIL's windows only move right */
      const uint8_t *pa = row + a, *pb = row + b;
      const __m256i *v = kv + 4 * ((size_t)(x / 2) * nq);
      __m256i hi = _mm256_setzero_si256(), lo = hi;
      for (int g = 0; g < nq; g++, pa += 12, pb += 12, v += 4) {
        __m256i px = _mm256_loadu2_m128i((const __m128i *)pb, (const __m128i *)pa);
        __m256i t01 = _mm256_shuffle_epi8(px, spread01), t23 = _mm256_shuffle_epi8(px, spread23);
        hi = _mm256_add_epi32(hi, _mm256_add_epi32(_mm256_madd_epi16(t01, v[0]), _mm256_madd_epi16(t23, v[2])));
        lo = _mm256_add_epi32(lo, _mm256_add_epi32(_mm256_madd_epi16(t01, v[1]), _mm256_madd_epi16(t23, v[3])));
      }
      __m256i sum = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, SPLIT_BITS), lo), round),
                                      PRECISION_BITS);
      sum = _mm256_packs_epi32(sum, sum);
      sum = _mm256_packus_epi16(sum, sum); /* r g b . of each pixel, one per half */
      uint32_t p0 = (uint32_t)_mm256_cvtsi256_si32(sum), p1 = (uint32_t)_mm256_extract_epi32(sum, 4);
      memcpy(o, &p0, 4), memcpy(o + 3, &p1, 4); /* the 4th bytes are rewritten next */
    }
    for (; x < ow; x++, o += 3) resample_px_c(row, bounds[2 * x], bounds[2 * x + 1], kk + (size_t)x * ksize, o);
  }
  free(kv);
  return 0;
}
#endif

/* Horizontal pass: rows [y0, y0 + oh) of s into dst (ow x oh). */
static int resample_h(uint8_t *dst, int ow, int oh, const row_src *s, int y0, int ksize, const int *bounds,
                      const int32_t *kk) {
#ifdef CFX_RESAMPLE_AVX2
  if (cfx__cpu_avx2()) return resample_h_avx2(dst, ow, oh, s, y0, ksize, bounds, kk);
#endif
#ifdef __SSE2__
  /* Per output pixel, pairs of taps as pmaddwd operands (an odd tap count gets a zero
   * partner); the loads read 4 bytes at each tap and at the pixel after the last tap,
   * which row_src_get keeps readable. */
  int np = (ksize + 1) / 2;
  int32_t *kp = malloc(sizeof(int32_t) * 2 * (size_t)np * ow);
  if (!kp) return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  for (int x = 0; x < ow; x++) {
    const int32_t *k = kk + (size_t)x * ksize;
    int n = bounds[2 * x + 1];
    int32_t *p = kp + (size_t)x * 2 * np;
    for (int j = 0; j < np; j++) {
      int32_t a = 2 * j < n ? k[2 * j] : 0, b = 2 * j + 1 < n ? k[2 * j + 1] : 0;
      p[2 * j] = pair_hi(a, b), p[2 * j + 1] = pair_lo(a, b);
    }
  }
  const __m128i z = _mm_setzero_si128();
  const uint8_t *prev_row = NULL;
  for (int y = 0; y < oh; y++) {
    uint8_t *o = dst + (size_t)y * ow * 3;
    const uint8_t *row = pass_row(s, y + y0, &prev_row, o, ow);
    if (!row) continue;
    for (int x = 0; x < ow; x++, o += 3) {
      const uint8_t *p = row + (size_t)bounds[2 * x] * 3;
      const int32_t *kx = kp + (size_t)x * 2 * np;
      int npx = (bounds[2 * x + 1] + 1) / 2;
      __m128i hi = z, lo = z;
      for (int j = 0; j < npx; j++, p += 6) {
        __m128i px = cfx__rgb_pair_epi16(p); /* r0 r1 g0 g1 b0 b1 . . */
        hi = _mm_add_epi32(hi, _mm_madd_epi16(px, _mm_set1_epi32(kx[2 * j])));
        lo = _mm_add_epi32(lo, _mm_madd_epi16(px, _mm_set1_epi32(kx[2 * j + 1])));
      }
      __m128i v = finish_sums(hi, lo);
      v = _mm_packs_epi32(v, v);
      uint32_t rgb = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(v, v));
      if (x + 1 < ow) memcpy(o, &rgb, 4); /* the 4th byte is rewritten by the next pixel */
      else memcpy(o, &rgb, 3);
    }
  }
  free(kp);
#else
  for (int y = 0; y < oh; y++) {
    const uint8_t *row = row_src_get(s, y + y0);
    uint8_t *o = dst + (size_t)y * ow * 3;
    for (int x = 0; x < ow; x++) resample_px_c(row, bounds[2 * x], bounds[2 * x + 1], kk + (size_t)x * ksize, o + 3 * x);
  }
#endif
  return 0;
}

#ifdef CFX_RESAMPLE_AVX2
/* The vertical pass's SIMD loop in AVX2 (32 bytes a step; unpack and pack work within
 * each 128-bit half, so every half is the SSE2 loop's 16 bytes): columns [0, the last
 * multiple of 32) of output row o; returns where the caller's loop goes on. */
__attribute__((target("avx2"))) static size_t resample_v_row_avx2(uint8_t *o, const uint8_t *base, size_t stride,
                                                                 int ymax, const int32_t *k) {
  const __m256i z = _mm256_setzero_si256(), round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
  const int np = ymax / 2, odd = ymax & 1;
  size_t x0 = 0;
  for (; x0 + 32 <= stride; x0 += 32) {
    __m256i h0 = z, h1 = z, h2 = z, h3 = z, l0 = z, l1 = z, l2 = z, l3 = z;
    const uint8_t *r = base + x0;
    for (int j = 0; j < np + odd; j++, r += 2 * stride) {
      int32_t ka = k[2 * j], kb = 2 * j + 1 < ymax ? k[2 * j + 1] : 0;
      __m256i kh = _mm256_set1_epi32(pair_hi(ka, kb)), kl = _mm256_set1_epi32(pair_lo(ka, kb));
      __m256i a = _mm256_loadu_si256((const __m256i *)r);
      __m256i b = j < np ? _mm256_loadu_si256((const __m256i *)(r + stride)) : z;
      __m256i ab0 = _mm256_unpacklo_epi8(a, b), ab1 = _mm256_unpackhi_epi8(a, b);
      __m256i w0 = _mm256_unpacklo_epi8(ab0, z), w1 = _mm256_unpackhi_epi8(ab0, z);
      __m256i w2 = _mm256_unpacklo_epi8(ab1, z), w3 = _mm256_unpackhi_epi8(ab1, z);
      h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(w0, kh)), l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(w0, kl));
      h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(w1, kh)), l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(w1, kl));
      h2 = _mm256_add_epi32(h2, _mm256_madd_epi16(w2, kh)), l2 = _mm256_add_epi32(l2, _mm256_madd_epi16(w2, kl));
      h3 = _mm256_add_epi32(h3, _mm256_madd_epi16(w3, kh)), l3 = _mm256_add_epi32(l3, _mm256_madd_epi16(w3, kl));
    }
#define CFX_FINISH(h, l) \
  _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(h, SPLIT_BITS), l), round), PRECISION_BITS)
    __m256i v01 = _mm256_packs_epi32(CFX_FINISH(h0, l0), CFX_FINISH(h1, l1));
    __m256i v23 = _mm256_packs_epi32(CFX_FINISH(h2, l2), CFX_FINISH(h3, l3));
#undef CFX_FINISH
    _mm256_storeu_si256((__m256i *)(o + x0), _mm256_packus_epi16(v01, v23));
  }
  return x0;
}
#endif

/* Vertical pass: src (w x any) into dst (w x oh).  Rows are accumulated tap by tap
 * over contiguous memory, with PIL's arithmetic per element: 16 bytes and two taps per
 * step in SSE2, the remainder (and other targets) in plain C. */
static int resample_v(uint8_t *dst, int w, int oh, const uint8_t *src, int ksize, const int *bounds,
                      const int32_t *kk) {
  size_t stride = (size_t)w * 3;
  int32_t *acc = malloc(sizeof(int32_t) * stride);
#ifdef __SSE2__
  __m128i *kp = malloc(sizeof(__m128i) * 2 * (size_t)((ksize + 1) / 2));
#else
  void *kp = malloc(1);
#endif
  if (!acc || !kp) {
    free(acc), free(kp);
    return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  }
#ifdef CFX_RESAMPLE_AVX2
  const int avx2 = cfx__cpu_avx2();
#endif
  for (int y = 0; y < oh; y++) {
    int ymin = bounds[2 * y], ymax = bounds[2 * y + 1];
    const int32_t *k = kk + (size_t)y * ksize;
    const uint8_t *base = src + (size_t)ymin * stride;
    uint8_t *o = dst + (size_t)y * stride;
    size_t x0 = 0;
#ifdef CFX_RESAMPLE_AVX2
    if (avx2) x0 = resample_v_row_avx2(o, base, stride, ymax, k);
#endif
#ifdef __SSE2__
    int np = ymax / 2, odd = ymax & 1;
    for (int j = 0; j < np + odd; j++) {
      int32_t a = k[2 * j], b = 2 * j + 1 < ymax ? k[2 * j + 1] : 0;
      kp[2 * j] = _mm_set1_epi32(pair_hi(a, b)), kp[2 * j + 1] = _mm_set1_epi32(pair_lo(a, b));
    }
    const __m128i z = _mm_setzero_si128();
    for (; x0 + 16 <= stride; x0 += 16) {
      __m128i h0 = z, h1 = z, h2 = z, h3 = z, l0 = z, l1 = z, l2 = z, l3 = z;
      const uint8_t *r = base + x0;
      for (int j = 0; j < np + odd; j++, r += 2 * stride) {
        __m128i a = _mm_loadu_si128((const __m128i *)r);
        __m128i b = j < np ? _mm_loadu_si128((const __m128i *)(r + stride)) : z;
        __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b); /* row pairs, bytes */
        __m128i w0 = _mm_unpacklo_epi8(ab0, z), w1 = _mm_unpackhi_epi8(ab0, z);
        __m128i w2 = _mm_unpacklo_epi8(ab1, z), w3 = _mm_unpackhi_epi8(ab1, z);
        __m128i kh = kp[2 * j], kl = kp[2 * j + 1];
        h0 = _mm_add_epi32(h0, _mm_madd_epi16(w0, kh)), l0 = _mm_add_epi32(l0, _mm_madd_epi16(w0, kl));
        h1 = _mm_add_epi32(h1, _mm_madd_epi16(w1, kh)), l1 = _mm_add_epi32(l1, _mm_madd_epi16(w1, kl));
        h2 = _mm_add_epi32(h2, _mm_madd_epi16(w2, kh)), l2 = _mm_add_epi32(l2, _mm_madd_epi16(w2, kl));
        h3 = _mm_add_epi32(h3, _mm_madd_epi16(w3, kh)), l3 = _mm_add_epi32(l3, _mm_madd_epi16(w3, kl));
      }
      __m128i v01 = _mm_packs_epi32(finish_sums(h0, l0), finish_sums(h1, l1));
      __m128i v23 = _mm_packs_epi32(finish_sums(h2, l2), finish_sums(h3, l3));
      _mm_storeu_si128((__m128i *)(o + x0), _mm_packus_epi16(v01, v23));
    }
#endif
    if (x0 == stride) continue;
    for (size_t x = x0; x < stride; x++) acc[x] = 1 << (PRECISION_BITS - 1);
    for (int i = 0; i < ymax; i++) {
      const uint8_t *row = base + (size_t)i * stride;
      int32_t ki = k[i];
      for (size_t x = x0; x < stride; x++) acc[x] += row[x] * ki;
    }
    for (size_t x = x0; x < stride; x++) o[x] = clip8(acc[x]);
  }
  free(acc), free(kp);
  return 0;
}

/* PIL's nearest neighbour: an affine map sampled at pixel centres, accumulated in
 * double exactly as ImagingScaleAffine does. */
static int resize_nearest(const cfx_image *src, const double box[4], cfx_image *out) {
  int ow = out->width, oh = out->height;
  double a0 = (box[2] - box[0]) / ow, a4 = (box[3] - box[1]) / oh;
  int *xin = malloc(sizeof(int) * (size_t)ow);
  if (!xin) return cfx__fail(CFX_ENOMEM, "resize: out of memory");
  double xo = box[0] + a0 * 0.5;
  for (int x = 0; x < ow; x++, xo += a0) {
    int v = xo < 0.0 ? -1 : (int)xo;
    xin[x] = v < 0 ? 0 : v >= src->width ? src->width - 1 : v;
  }
  double yo = box[1] + a4 * 0.5;
  for (int y = 0; y < oh; y++, yo += a4) {
    int sy = yo < 0.0 ? 0 : (int)yo;
    if (sy >= src->height) sy = src->height - 1;
    const uint8_t *row = src->data + (size_t)sy * src->width * 3;
    uint8_t *o = out->data + (size_t)y * ow * 3;
    for (int x = 0; x < ow; x++) memcpy(o + 3 * x, row + (size_t)xin[x] * 3, 3);
  }
  free(xin);
  return 0;
}

/* PIL's two-pass resampling of box b of the (bordered) rows of s into out, allocated. */
static int resample(const row_src *s, int filter, const double b[4], cfx_image *out) {
  const resample_filter *f = &filters[filter];
  int sw = s->w + s->l + s->r, sh = s->h + s->t + s->b, width = out->width, height = out->height, rc;
  int need_h = width != sw || b[0] != 0 || b[2] != width;
  int need_v = height != sh || b[1] != 0 || b[3] != height;
  int *bh = NULL, *bv = NULL, kh = 0, kv = 0;
  int32_t *kkh = NULL, *kkv = NULL;
  uint8_t *tmp = NULL;
  if ((rc = precompute_coeffs(sw, b[0], b[2], width, f, &bh, &kkh, &kh)) ||
      (rc = precompute_coeffs(sh, b[1], b[3], height, f, &bv, &kkv, &kv)))
    goto done;
  int yfirst = bv[0], ylast = bv[height * 2 - 2] + bv[height * 2 - 1];
  if (!need_v) { /* the rows are used as they are (or only resampled horizontally) */
    for (int y = 0; y < height; y++) {
      if (need_h) {
        if ((rc = resample_h(out->data, width, height, s, 0, kh, bh, kkh))) goto done;
        break;
      }
      memcpy(out->data + (size_t)y * width * 3, row_src_get(s, y), (size_t)width * 3);
    }
    goto done;
  }
  for (int i = 0; i < height; i++) bv[i * 2] -= yfirst;
  int th = ylast - yfirst;
  tmp = malloc((size_t)(need_h ? width : sw) * th * 3);
  if (!tmp) {
    rc = cfx__fail(CFX_ENOMEM, "resize: out of memory");
    goto done;
  }
  if (need_h) {
    if ((rc = resample_h(tmp, width, th, s, yfirst, kh, bh, kkh))) goto done;
  } else {
    for (int y = 0; y < th; y++) memcpy(tmp + (size_t)y * sw * 3, row_src_get(s, y + yfirst), (size_t)sw * 3);
  }
  rc = resample_v(out->data, width, height, tmp, kv, bv, kkv);
done:
  free(tmp), free(bh), free(bv), free(kkh), free(kkv);
  return rc;
}

int cfx_image_resize(const cfx_image *src, int32_t width, int32_t height, int filter, const double *box,
                     cfx_image *out) {
  int rc = check_image(src, "resize");
  if (rc) return rc;
  if (!out) return cfx__fail(CFX_EINVAL, "resize: out is NULL");
  memset(out, 0, sizeof *out);
  if (width <= 0 || height <= 0)
    return cfx__fail(CFX_ERANGE, "resize: target size %dx%d must be positive", width, height);
  if ((int64_t)width * height > CFX_IMAGE_DEFAULT_MAX_PIXELS)
    return cfx__fail(CFX_ERANGE, "resize: target %dx%d exceeds the pixel cap", width, height);
  if (filter < CFX_FILTER_NEAREST || filter > CFX_FILTER_LANCZOS)
    return cfx__fail(CFX_EINVAL, "resize: unknown filter %d (expected 0..5: nearest, box, bilinear, hamming, "
                            "bicubic, lanczos)", filter);
  double b[4] = {0, 0, src->width, src->height};
  if (box) {
    memcpy(b, box, sizeof b);
    if (!(b[0] >= 0 && b[1] >= 0 && b[2] <= src->width && b[3] <= src->height && b[2] > b[0] && b[3] > b[1]))
      return cfx__fail(CFX_ERANGE, "resize: box (%g, %g, %g, %g) is not inside the %dx%d image", b[0], b[1], b[2],
                  b[3], src->width, src->height);
  }
  if ((rc = cfx__image_alloc(out, width, height))) return rc;
  if (filter == CFX_FILTER_NEAREST) {
    if ((rc = resize_nearest(src, b, out))) cfx_image_release(out);
    return rc;
  }
  row_src rs;
  if ((rc = row_src_init(&rs, src, 0, 0, 0, 0, 0))) {
    cfx_image_release(out);
    return rc;
  }
  rc = resample(&rs, filter, b, out);
  row_src_free(&rs);
  if (rc) cfx_image_release(out);
  return rc;
}

int cfx__pad_resize(const cfx_image *src, int32_t left, int32_t top, int32_t right, int32_t bottom, int32_t fill,
                    int filter, cfx_image *out) {
  int rc = check_image(src, "pad");
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  if (filter <= CFX_FILTER_NEAREST || filter > CFX_FILTER_LANCZOS)
    return cfx__fail(CFX_EINVAL, "pad: filter %d is not a resampling filter", filter);
  int64_t pw = (int64_t)src->width + left + right, ph = (int64_t)src->height + top + bottom;
  if (left < 0 || top < 0 || right < 0 || bottom < 0 || pw * ph > CFX_IMAGE_DEFAULT_MAX_PIXELS)
    return cfx__fail(CFX_ERANGE, "pad: padding (%d, %d, %d, %d) is negative or too large", left, top, right, bottom);
  row_src rs;
  if ((rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  if ((rc = row_src_init(&rs, src, left, top, right, bottom, fill))) {
    cfx_image_release(out);
    return rc;
  }
  double b[4] = {0, 0, (double)pw, (double)ph};
  rc = resample(&rs, filter, b, out);
  row_src_free(&rs);
  if (rc) cfx_image_release(out);
  return rc;
}
