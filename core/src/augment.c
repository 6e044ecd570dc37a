/* augment.c: augmentation ops and pipelines (see cfx/augment.h). */
#define _GNU_SOURCE /* M_PI */
#include "cfx/augment.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simd.h"

static int check_src(const cfx_image *img, const char *what) {
  if (!img || !img->data || img->channels != 3 || img->width <= 0 || img->height <= 0)
    return cfx__fail(CFX_EINVAL, "%s: expected an RGB image, got %s", what, img && img->data ? "a bad image" : "NULL");
  return 0;
}

static void fill_rgb(uint8_t *p, int32_t rgb, size_t npix) {
  uint8_t c[3] = {(uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb};
  for (size_t i = 0; i < npix; i++) memcpy(p + 3 * i, c, 3);
}

/* ---- random numbers ---------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void cfx_rng_seed(cfx_rng *rng, uint64_t seed) {
  for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cfx_rng_next(cfx_rng *r) {
  uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
  return result;
}

double cfx_rng_uniform(cfx_rng *r, double lo, double hi) {
  return lo + (hi - lo) * ((double)(cfx_rng_next(r) >> 11) * 0x1.0p-53);
}

int64_t cfx_rng_int(cfx_rng *r, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  uint64_t span = (uint64_t)(hi - lo) + 1;
  /* Lemire's nearly-divisionless method would do; the modulo bias over 2^64 is
   * negligible for the spans used here (< 2^32). */
  return lo + (int64_t)(cfx_rng_next(r) % span);
}

uint64_t cfx_augment_seed(uint64_t run_seed, uint64_t epoch, uint64_t index) {
  uint64_t x = run_seed;
  uint64_t h = splitmix64(&x);
  x = h ^ epoch;
  h = splitmix64(&x);
  x = h ^ index;
  return splitmix64(&x);
}

/* ---- ops ------------------------------------------------------------------------------ */

int cfx_image_crop(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
                   cfx_image *out) {
  int rc = check_src(src, "crop");
  if (rc || (rc = cfx__image_alloc(out, w, h))) return rc;
  int inside = x >= 0 && y >= 0 && (int64_t)x + w <= src->width && (int64_t)y + h <= src->height;
  if (!inside) fill_rgb(out->data, fill, (size_t)w * h);
  for (int32_t oy = 0; oy < h; oy++) {
    int64_t sy = (int64_t)y + oy;
    if (sy < 0 || sy >= src->height) continue;
    int64_t sx0 = x < 0 ? 0 : x, sx1 = (int64_t)x + w > src->width ? src->width : (int64_t)x + w;
    if (sx1 <= sx0) continue;
    memcpy(out->data + ((size_t)oy * w + (size_t)(sx0 - x)) * 3, src->data + ((size_t)sy * src->width + sx0) * 3,
           (size_t)(sx1 - sx0) * 3);
  }
  return 0;
}

/* Python's round(): halves to the even neighbour. */
static int32_t round_half_even(double v) { return (int32_t)nearbyint(v); }

/* torchvision's center_crop offset along one axis: round((size - crop) / 2) with
 * Python's rounding (58.5 -> 58); a crop larger than the image pads (crop - size) // 2
 * before and the rest after. */
static int32_t center_offset(int32_t size, int32_t crop) {
  if (crop > size) return -((crop - size) / 2);
  return round_half_even((size - crop) / 2.0);
}

int cfx_image_center_crop(const cfx_image *src, int32_t w, int32_t h, cfx_image *out) {
  int rc = check_src(src, "center_crop");
  if (rc) return rc;
  int32_t top = center_offset(src->height, h), left = center_offset(src->width, w);
  return cfx_image_crop(src, left, top, w, h, 0, out);
}

int cfx_image_flip(const cfx_image *src, int horizontal, cfx_image *out) {
  int rc = check_src(src, "flip");
  if (rc || (rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  int w = src->width, h = src->height;
  for (int y = 0; y < h; y++) {
    const uint8_t *row = src->data + (size_t)(horizontal ? y : h - 1 - y) * w * 3;
    uint8_t *o = out->data + (size_t)y * w * 3;
    if (!horizontal) {
      memcpy(o, row, (size_t)w * 3);
      continue;
    }
    for (int x = 0; x < w; x++) memcpy(o + 3 * x, row + 3 * (size_t)(w - 1 - x), 3);
  }
  return 0;
}

/* Keys' cubic (a = -0.5) weights for offset t in [0, 1). */
static void cubic_weights(double t, double w[4]) {
  const double a = -0.5;
  double x;
  x = 1 + t, w[0] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  x = t, w[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
  x = 1 - t, w[2] = ((a + 2) * x - (a + 3)) * x * x + 1;
  x = 2 - t, w[3] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline uint8_t round8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5); }
/* Truncation as a C cast to uint8, guarded against weights that sum to 0.99999...:
 * a constant image must stay constant. */
static inline uint8_t trunc8(double v) {
  v += 1e-7;
  return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/* Sample src at continuous point (sx, sy) (pixel centres at i + 0.5) into o[3].
 * Returns 0 when the point lies outside the image (the caller fills). */
static int sample(const cfx_image *src, double sx, double sy, int filter, uint8_t *o) {
  int w = src->width, h = src->height;
  if (sx < 0 || sy < 0 || sx >= w || sy >= h) return 0;
  const uint8_t *d = src->data;
  if (filter == CFX_FILTER_NEAREST) {
    memcpy(o, d + ((size_t)(int)sy * w + (int)sx) * 3, 3);
    return 1;
  }
  double fx = sx - 0.5, fy = sy - 0.5;
  int x0 = (int)floor(fx), y0 = (int)floor(fy);
  double tx = fx - x0, ty = fy - y0;
  if (filter == CFX_FILTER_BICUBIC) {
    double wx[4], wy[4];
    cubic_weights(tx, wx);
    cubic_weights(ty, wy);
    for (int c = 0; c < 3; c++) {
      double acc = 0;
      for (int j = 0; j < 4; j++) {
        const uint8_t *row = d + (size_t)clampi(y0 - 1 + j, 0, h - 1) * w * 3;
        double r = 0;
        for (int i = 0; i < 4; i++) r += wx[i] * row[(size_t)clampi(x0 - 1 + i, 0, w - 1) * 3 + c];
        acc += wy[j] * r;
      }
      o[c] = round8(acc);
    }
    return 1;
  }
  int xa = clampi(x0, 0, w - 1), xb = clampi(x0 + 1, 0, w - 1);
  int ya = clampi(y0, 0, h - 1), yb = clampi(y0 + 1, 0, h - 1);
  const uint8_t *p00 = d + ((size_t)ya * w + xa) * 3, *p01 = d + ((size_t)ya * w + xb) * 3;
  const uint8_t *p10 = d + ((size_t)yb * w + xa) * 3, *p11 = d + ((size_t)yb * w + xb) * 3;
  for (int c = 0; c < 3; c++) {
    double top = p00[c] + (p01[c] - p00[c]) * tx, bot = p10[c] + (p11[c] - p10[c]) * tx;
    double v = top + (bot - top) * ty; /* PIL's transform truncates (a C cast) */
    o[c] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
  }
  return 1;
}

/* Bilinear affine warp in fixed point (the common case: rotation and shear in RandAugment).
 *
 * PIL's transform (what torchvision's F.affine calls on a PIL image) samples each output
 * pixel centre (x + 0.5, y + 0.5) at  sx = a0 x' + a1 y' + a2,  sy = a3 x' + a4 y' + a5;
 * a point outside [0, w) x [0, h) takes the fill; otherwise it interpolates in double
 * between rows floor(sy - 0.5) and the next and columns floor(sx - 0.5) and the next
 * (clamped to the image), and truncates.  Here the coordinates and the inside test are
 * PIL's, in double, exactly; the interpolation is integer: the offsets rounded to 1/2^14
 * of a pixel, the four weights to 1/2^14 (each pair summing exactly to its row's weight,
 * all four to 1), the weighted sum truncated.  That is within 0.05 grey levels of PIL's
 * value before the truncation, so a pixel differs from torchvision's by at most 1 (only
 * where PIL's value lies that close to an integer), and a flat area stays exactly flat.
 * The same integer sums run in SSE2 (pmaddwd: one pixel per register) or in plain C. */
enum { WARP_BITS = 14, WARP_ONE = 1 << WARP_BITS, WARP_MASK = WARP_ONE - 1 };

/* One pixel from its four neighbours; wa = {w00, w01}, wb = {w10, w11} as int16 pairs. */
static inline void bilerp_c(const uint8_t *p00, const uint8_t *p01, const uint8_t *p10, const uint8_t *p11,
                            uint32_t wa, uint32_t wb, uint8_t *o) {
  int32_t w00 = (int32_t)(wa & 0xFFFF), w01 = (int32_t)(wa >> 16), w10 = (int32_t)(wb & 0xFFFF), w11 = (int32_t)(wb >> 16);
  for (int c = 0; c < 3; c++)
    o[c] = (uint8_t)((p00[c] * w00 + p01[c] * w01 + p10[c] * w10 + p11[c] * w11) >> WARP_BITS);
}

/* One output row's work arrays (ow entries each). */
typedef struct {
  int32_t *xs, *ys, *off;
  uint32_t *wa, *wb;
} warp_row;

/* Pass 2 (integer): the weights, and the byte offset of the top-left neighbour where
 * the 2x2 neighbourhood (and the 8 bytes from each of its two rows' first pixel) lie
 * inside the image; -1 outside, -2 on the border (clamped neighbours, in plain C).
 * Inlined into each pass-1 variant so that the compiler vectorises it for that target. */
static inline __attribute__((always_inline)) void warp_weights(const warp_row *r, int ow, int w, int h,
                                                               int32_t stride, int32_t end) {
  for (int x = 0; x < ow; x++) {
    int32_t X = r->xs[x], Y = r->ys[x], x0 = X >> WARP_BITS, y0 = Y >> WARP_BITS;
    int32_t tx = X & WARP_MASK, ty = Y & WARP_MASK, cy = WARP_ONE - ty;
    int32_t w01 = (tx * cy + WARP_ONE / 2) >> WARP_BITS, w11 = (tx * ty + WARP_ONE / 2) >> WARP_BITS;
    r->wa[x] = (uint32_t)(cy - w01) | (uint32_t)w01 << 16;
    r->wb[x] = (uint32_t)(ty - w11) | (uint32_t)w11 << 16;
    int32_t at = y0 * stride + x0 * 3;
    int fast = (x0 >= 0) & (x0 < w - 1) & (y0 >= 0) & (y0 < h - 1) & (at + stride + 8 <= end);
    r->off[x] = X == INT32_MIN ? -1 : fast ? at : -2;
  }
}

/* Pass 1 in plain C, PIL's coordinates and inside test: fixed-point x0 + tx, y0 + ty
 * with 14 fractional bits (rounded), or xs = INT32_MIN outside.  The SIMD variants do
 * the same IEEE operations (no fused multiply-add) several pixels at a time. */
static inline __attribute__((always_inline)) void warp_coords_c(const warp_row *r, int x, int ow, int w, int h,
                                                                const double m[6], double c0, double c1) {
  for (; x < ow; x++) {
    double xin = x + 0.5, sx = m[0] * xin + c0 + m[2], sy = m[3] * xin + c1 + m[5];
    int in = sx >= 0 && sy >= 0 && sx < w && sy < h;
    /* clamped (NaN too) before the conversion; inside, sx - 0.5 >= -0.5, so +1 makes
     * the truncation a floor */
    double cx = sx > -1 ? sx : -1, cy = sy > -1 ? sy : -1;
    cx = cx < w ? cx : w, cy = cy < h ? cy : h;
    r->xs[x] = in ? (int32_t)((cx + 0.5) * WARP_ONE + 0.5) - WARP_ONE : INT32_MIN;
    r->ys[x] = (int32_t)((cy + 0.5) * WARP_ONE + 0.5) - WARP_ONE;
  }
}

/* Pass 3 for pixel x (on the border or outside too); `last`: no pixel follows in the row
 * (the SSE2 store writes 4 bytes). */
static inline __attribute__((always_inline)) void warp_pixel(const cfx_image *src, const warp_row *r, int x,
                                                             const uint8_t fc[3], int last, uint8_t *o) {
  const int w = src->width, h = src->height;
  const int32_t stride = w * 3, at = r->off[x];
  if (at == -1) {
    o[0] = fc[0], o[1] = fc[1], o[2] = fc[2];
    return;
  }
#ifdef __SSE2__
  if (at >= 0) {
    const uint8_t *p = src->data + at;
    __m128i top = cfx__rgb_pair_epi16(p), bot = cfx__rgb_pair_epi16(p + stride);
    __m128i s = _mm_add_epi32(_mm_madd_epi16(top, _mm_set1_epi32((int32_t)r->wa[x])),
                              _mm_madd_epi16(bot, _mm_set1_epi32((int32_t)r->wb[x])));
    s = _mm_srli_epi32(s, WARP_BITS);
    s = _mm_packs_epi32(s, s);
    uint32_t v = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(s, s));
    if (!last) memcpy(o, &v, 4); /* the 4th byte is rewritten by the next pixel */
    else memcpy(o, &v, 3);
    return;
  }
#endif
  int32_t x0 = r->xs[x] >> WARP_BITS, y0 = r->ys[x] >> WARP_BITS;
  int xa = x0 < 0 ? 0 : x0, xb = x0 + 1 >= w ? w - 1 : x0 + 1;
  int ya = y0 < 0 ? 0 : y0, yb = y0 + 1 >= h ? h - 1 : y0 + 1;
  const uint8_t *r0 = src->data + (size_t)ya * stride, *r1 = src->data + (size_t)yb * stride;
  bilerp_c(r0 + xa * 3, r0 + xb * 3, r1 + xa * 3, r1 + xb * 3, r->wa[x], r->wb[x], o);
}

/* Output row y: SSE2 (two pixels' coordinates at a time, one pixel per register). */
static void warp_row_sse2(const cfx_image *src, const double m[6], const uint8_t fc[3], const warp_row *r, int y,
                          cfx_image *out) {
  const int w = src->width, h = src->height, ow = out->width;
  const double yin = y + 0.5, c0 = m[1] * yin, c1 = m[4] * yin;
  int x = 0;
#ifdef __SSE2__
  const __m128d m0 = _mm_set1_pd(m[0]), m2 = _mm_set1_pd(m[2]), m3 = _mm_set1_pd(m[3]), m5 = _mm_set1_pd(m[5]);
  const __m128d vc0 = _mm_set1_pd(c0), vc1 = _mm_set1_pd(c1), zero = _mm_setzero_pd(), neg1 = _mm_set1_pd(-1);
  const __m128d vw = _mm_set1_pd(w), vh = _mm_set1_pd(h), half = _mm_set1_pd(0.5), one = _mm_set1_pd(WARP_ONE);
  const __m128i outside = _mm_set1_epi32(INT32_MIN), ione = _mm_set1_epi32(WARP_ONE);
  __m128d xin = _mm_set_pd(1.5, 0.5);
  for (; x + 2 <= ow; x += 2, xin = _mm_add_pd(xin, _mm_set1_pd(2))) {
    __m128d sx = _mm_add_pd(_mm_add_pd(_mm_mul_pd(m0, xin), vc0), m2);
    __m128d sy = _mm_add_pd(_mm_add_pd(_mm_mul_pd(m3, xin), vc1), m5);
    __m128d in = _mm_and_pd(_mm_and_pd(_mm_cmpge_pd(sx, zero), _mm_cmpge_pd(sy, zero)),
                            _mm_and_pd(_mm_cmplt_pd(sx, vw), _mm_cmplt_pd(sy, vh)));
    /* maxpd returns its second operand for a NaN, as the scalar ?: in warp_coords_c */
    __m128d cx = _mm_min_pd(_mm_max_pd(sx, neg1), vw), cy = _mm_min_pd(_mm_max_pd(sy, neg1), vh);
    __m128i X = _mm_sub_epi32(_mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(_mm_add_pd(cx, half), one), half)), ione);
    __m128i Y = _mm_sub_epi32(_mm_cvttpd_epi32(_mm_add_pd(_mm_mul_pd(_mm_add_pd(cy, half), one), half)), ione);
    __m128i in32 = _mm_shuffle_epi32(_mm_castpd_si128(in), _MM_SHUFFLE(2, 0, 2, 0));
    X = _mm_or_si128(_mm_and_si128(in32, X), _mm_andnot_si128(in32, outside));
    _mm_storel_epi64((__m128i *)(r->xs + x), X);
    _mm_storel_epi64((__m128i *)(r->ys + x), Y);
  }
#endif
  warp_coords_c(r, x, ow, w, h, m, c0, c1);
  warp_weights(r, ow, w, h, w * 3, w * 3 * h);
  uint8_t *o = out->data + (size_t)y * ow * 3;
  for (x = 0; x < ow; x++, o += 3) warp_pixel(src, r, x, fc, x + 1 == ow, o);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CFX_WARP_AVX2 1
static inline long long ld64(const uint8_t *p) {
  long long v;
  memcpy(&v, p, 8);
  return v;
}
/* Output row y: AVX2, the same integers as warp_row_sse2.  Coordinates four pixels at a
 * time; pixels four at a time where all four have their whole neighbourhood inside:
 * each 2x2 neighbourhood is two 8-byte loads (r0 g0 b0 r1 g1 b1 . .), shuffled to
 * int16 pairs (r0 r1 g0 g1 b0 b1) for pmaddwd, one pixel per 128-bit half. */
__attribute__((target("avx2"))) static void warp_row_avx2(const cfx_image *src, const double m[6],
                                                          const uint8_t fc[3], const warp_row *r, int y,
                                                          cfx_image *out) {
  const int w = src->width, h = src->height, ow = out->width;
  const int32_t stride = w * 3;
  const double yin = y + 0.5, c0 = m[1] * yin, c1 = m[4] * yin;
  int x = 0;
  {
    const __m256d m0 = _mm256_set1_pd(m[0]), m2 = _mm256_set1_pd(m[2]), m3 = _mm256_set1_pd(m[3]);
    const __m256d m5 = _mm256_set1_pd(m[5]), vc0 = _mm256_set1_pd(c0), vc1 = _mm256_set1_pd(c1);
    const __m256d zero = _mm256_setzero_pd(), neg1 = _mm256_set1_pd(-1), vw = _mm256_set1_pd(w);
    const __m256d vh = _mm256_set1_pd(h), half = _mm256_set1_pd(0.5), one = _mm256_set1_pd(WARP_ONE);
    const __m128i outside = _mm_set1_epi32(INT32_MIN), ione = _mm_set1_epi32(WARP_ONE);
    __m256d xin = _mm256_set_pd(3.5, 2.5, 1.5, 0.5);
    for (; x + 4 <= ow; x += 4, xin = _mm256_add_pd(xin, _mm256_set1_pd(4))) {
      __m256d sx = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m0, xin), vc0), m2);
      __m256d sy = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(m3, xin), vc1), m5);
      __m256d in = _mm256_and_pd(_mm256_and_pd(_mm256_cmp_pd(sx, zero, _CMP_GE_OQ), _mm256_cmp_pd(sy, zero, _CMP_GE_OQ)),
                                 _mm256_and_pd(_mm256_cmp_pd(sx, vw, _CMP_LT_OQ), _mm256_cmp_pd(sy, vh, _CMP_LT_OQ)));
      __m256d cx = _mm256_min_pd(_mm256_max_pd(sx, neg1), vw), cy = _mm256_min_pd(_mm256_max_pd(sy, neg1), vh);
      __m128i X = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(_mm256_add_pd(cx, half), one), half)), ione);
      __m128i Y = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(_mm256_mul_pd(_mm256_add_pd(cy, half), one), half)), ione);
      /* the four 64-bit masks' low halves, as four int32 masks */
      __m256i in64 = _mm256_castpd_si256(in);
      __m128i in32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(in64, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
      X = _mm_blendv_epi8(outside, X, in32);
      _mm_storeu_si128((__m128i *)(r->xs + x), X);
      _mm_storeu_si128((__m128i *)(r->ys + x), Y);
    }
  }
  warp_coords_c(r, x, ow, w, h, m, c0, c1);
  warp_weights(r, ow, w, h, stride, stride * h);

  const __m256i spread_a = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                            0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m256i spread_b = _mm256_setr_epi8(8, -1, 11, -1, 9, -1, 12, -1, 10, -1, 13, -1, -1, -1, -1, -1,
                                            8, -1, 11, -1, 9, -1, 12, -1, 10, -1, 13, -1, -1, -1, -1, -1);
  const __m256i pick_a = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2), pick_b = _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3);
  const __m256i compact = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           0, 1, 2, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  uint8_t *o = out->data + (size_t)y * ow * 3;
  const uint8_t *base = src->data;
  for (x = 0; x + 4 < ow; x += 4, o += 12) { /* + 4 < ow: the last store spills 2 bytes into pixel x + 4 */
    __m128i at = _mm_loadu_si128((const __m128i *)(r->off + x));
    if (_mm_movemask_ps(_mm_castsi128_ps(at))) { /* one of the four is outside or on the border */
      for (int i = 0; i < 4; i++) warp_pixel(src, r, x + i, fc, 0, o + 3 * i);
      continue;
    }
    const uint8_t *p0 = base + r->off[x], *p1 = base + r->off[x + 1], *p2 = base + r->off[x + 2], *p3 = base + r->off[x + 3];
    __m256i top = _mm256_setr_epi64x(ld64(p0), ld64(p1), ld64(p2), ld64(p3));
    __m256i bot = _mm256_setr_epi64x(ld64(p0 + stride), ld64(p1 + stride), ld64(p2 + stride), ld64(p3 + stride));
    __m256i wa4 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r->wa + x)));
    __m256i wb4 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(r->wb + x)));
    /* a: pixels 0 | 2, b: pixels 1 | 3 */
    __m256i sa = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(top, spread_a), _mm256_permutevar8x32_epi32(wa4, pick_a)),
                                  _mm256_madd_epi16(_mm256_shuffle_epi8(bot, spread_a), _mm256_permutevar8x32_epi32(wb4, pick_a)));
    __m256i sb = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(top, spread_b), _mm256_permutevar8x32_epi32(wa4, pick_b)),
                                  _mm256_madd_epi16(_mm256_shuffle_epi8(bot, spread_b), _mm256_permutevar8x32_epi32(wb4, pick_b)));
    __m256i v = _mm256_packs_epi32(_mm256_srli_epi32(sa, WARP_BITS), _mm256_srli_epi32(sb, WARP_BITS));
    v = _mm256_shuffle_epi8(_mm256_packus_epi16(v, v), compact); /* rgb rgb of pixels 0 1 | 2 3 */
    _mm_storel_epi64((__m128i *)o, _mm256_castsi256_si128(v));
    _mm_storel_epi64((__m128i *)(o + 6), _mm256_extracti128_si256(v, 1));
  }
  for (; x < ow; x++, o += 3) warp_pixel(src, r, x, fc, x + 1 == ow, o);
}
#endif

/* out (same size as src) = src warped by the inverse map m (PIL's a0..a5), fill fc.
 * Needs w, h <= 65535 and w * h * 3 < 2^31 (int32 coordinates and offsets). */
static int warp_bilinear(const cfx_image *src, const double m[6], const uint8_t fc[3], cfx_image *out) {
  const int ow = out->width;
  warp_row r;
  r.xs = malloc(sizeof(int32_t) * 5 * (size_t)ow);
  if (!r.xs) return cfx__fail(CFX_ENOMEM, "affine: out of memory");
  r.ys = r.xs + ow, r.off = r.ys + ow, r.wa = (uint32_t *)(r.off + ow), r.wb = r.wa + ow;
#ifdef CFX_WARP_AVX2
  if (cfx__cpu_avx2()) {
    for (int y = 0; y < out->height; y++) warp_row_avx2(src, m, fc, &r, y, out);
    free(r.xs);
    return 0;
  }
#endif
  for (int y = 0; y < out->height; y++) warp_row_sse2(src, m, fc, &r, y, out);
  free(r.xs);
  return 0;
}

int cfx_image_affine(const cfx_image *src, double angle, double tx, double ty, double scale, double shear_x,
                     double shear_y, int filter, int32_t fill, cfx_image *out) {
  int rc = check_src(src, "affine");
  if (rc) return rc;
  if (filter != CFX_FILTER_NEAREST && filter != CFX_FILTER_BILINEAR && filter != CFX_FILTER_BICUBIC)
    return cfx__fail(CFX_EINVAL, "affine: filter must be nearest, bilinear or bicubic, got %d", filter);
  if (!(scale > 0)) return cfx__fail(CFX_ERANGE, "affine: scale must be > 0, got %g", scale);
  if ((rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  /* The inverse matrix of torchvision's _get_inverse_affine_matrix (PIL path). */
  double rot = angle * M_PI / 180, sx = shear_x * M_PI / 180, sy = shear_y * M_PI / 180;
  double cx = src->width * 0.5, cy = src->height * 0.5;
  double a = cos(rot - sy) / cos(sy), b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
  double c = sin(rot - sy) / cos(sy), d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
  double m[6] = {d / scale, -b / scale, 0, -c / scale, a / scale, 0};
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx, m[5] += cy;
  uint8_t fc[3] = {(uint8_t)(fill >> 16), (uint8_t)(fill >> 8), (uint8_t)fill};
  if (filter == CFX_FILTER_BILINEAR && src->width <= 65535 && src->height <= 65535 &&
      (int64_t)src->width * src->height * 3 < INT32_MAX) {
    if ((rc = warp_bilinear(src, m, fc, out))) cfx_image_release(out);
    return rc;
  }
  for (int y = 0; y < out->height; y++) {
    for (int x = 0; x < out->width; x++) {
      double px = x + 0.5, py = y + 0.5;
      uint8_t *o = out->data + ((size_t)y * out->width + x) * 3;
      if (!sample(src, m[0] * px + m[1] * py + m[2], m[3] * px + m[4] * py + m[5], filter, o)) memcpy(o, fc, 3);
    }
  }
  return 0;
}

int cfx_image_pad(const cfx_image *src, int32_t left, int32_t top, int32_t right, int32_t bottom, int32_t fill,
                  int resize_back, cfx_image *out) {
  int rc = check_src(src, "pad");
  if (rc) return rc;
  if (left < 0 || top < 0 || right < 0 || bottom < 0)
    return cfx__fail(CFX_ERANGE, "pad: negative padding (%d, %d, %d, %d)", left, top, right, bottom);
  if (resize_back) return cfx__pad_resize(src, left, top, right, bottom, fill, CFX_FILTER_BILINEAR, out);
  return cfx_image_crop(src, -left, -top, src->width + left + right, src->height + top + bottom, fill, out);
}

int cfx_image_cutout(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
                     cfx_image *out) {
  int rc = check_src(src, "cutout");
  if (rc || (rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  memcpy(out->data, src->data, (size_t)src->width * src->height * 3);
  int x0 = clampi(x, 0, src->width), x1 = clampi(x + w, 0, src->width);
  int y0 = clampi(y, 0, src->height), y1 = clampi(y + h, 0, src->height);
  for (int yy = y0; yy < y1 && x1 > x0; yy++)
    fill_rgb(out->data + ((size_t)yy * src->width + x0) * 3, fill, (size_t)(x1 - x0));
  return 0;
}

/* scipy's "reflect" mode: d c b a | a b c d | d c b a. */
static inline int reflect(int i, int n) {
  if (n == 1) return 0;
  int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

int cfx_image_gaussian_blur(const cfx_image *src, double sigma, cfx_image *out) {
  int rc = check_src(src, "gaussian_blur");
  if (rc) return rc;
  if (!(sigma >= 0) || sigma > 1000) return cfx__fail(CFX_ERANGE, "gaussian_blur: sigma must be in [0, 1000], got %g", sigma);
  if ((rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  int w = src->width, h = src->height;
  if (sigma == 0) {
    memcpy(out->data, src->data, (size_t)w * h * 3);
    return 0;
  }
  int radius = (int)(4.0 * sigma + 0.5); /* scipy: truncate = 4.0 */
  double *k = malloc(sizeof(double) * (size_t)(2 * radius + 1));
  float *tmp = malloc(sizeof(float) * (size_t)w * h * 3);
  if (!k || !tmp) {
    free(k), free(tmp), cfx_image_release(out);
    return cfx__fail(CFX_ENOMEM, "gaussian_blur: out of memory");
  }
  double sum = 0;
  for (int i = -radius; i <= radius; i++) sum += k[i + radius] = exp(-0.5 * i * i / (sigma * sigma));
  for (int i = 0; i <= 2 * radius; i++) k[i] /= sum;
  /* scipy filters axis 0 (rows) first, then axis 1; for uint8 input it stores each
   * axis' result as uint8, truncating (the weights are positive, so no clamping is
   * needed below 0). */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double acc = 0;
        for (int i = -radius; i <= radius; i++) acc += k[i + radius] * src->data[((size_t)reflect(y + i, h) * w + x) * 3 + c];
        tmp[((size_t)y * w + x) * 3 + c] = (float)trunc8(acc);
      }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double acc = 0;
        for (int i = -radius; i <= radius; i++) acc += k[i + radius] * tmp[((size_t)y * w + reflect(x + i, w)) * 3 + c];
        out->data[((size_t)y * w + x) * 3 + c] = trunc8(acc);
      }
  free(k), free(tmp);
  return 0;
}

int cfx_image_jpeg_roundtrip(const cfx_image *src, int quality, cfx_image *out) {
  uint8_t *buf = NULL;
  int64_t n = 0;
  int rc = cfx_image_encode_jpeg(src, quality, CFX_SUBSAMP_420, &buf, &n);
  if (rc) return rc;
  rc = cfx_image_decode(buf, n, NULL, out);
  free(buf);
  return rc;
}

int cfx_image_random_resized_crop(const cfx_image *src, cfx_rng *rng, int32_t size, double scale_min,
                                  double scale_max, double ratio_min, double ratio_max, int filter,
                                  cfx_image *out) {
  int rc = check_src(src, "random_resized_crop");
  if (rc) return rc;
  if (!(scale_min > 0 && scale_min <= scale_max && ratio_min > 0 && ratio_min <= ratio_max))
    return cfx__fail(CFX_ERANGE, "random_resized_crop: bad scale (%g, %g) or ratio (%g, %g)", scale_min, scale_max,
                ratio_min, ratio_max);
  int W = src->width, H = src->height;
  double area = (double)W * H, lr0 = log(ratio_min), lr1 = log(ratio_max);
  int cw = W, ch = H, cx = 0, cy = 0, found = 0;
  for (int attempt = 0; attempt < 10 && !found; attempt++) {
    double target = area * cfx_rng_uniform(rng, scale_min, scale_max);
    double aspect = exp(cfx_rng_uniform(rng, lr0, lr1));
    int w = (int)lround(sqrt(target * aspect)), h = (int)lround(sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      cy = (int)cfx_rng_int(rng, 0, H - h), cx = (int)cfx_rng_int(rng, 0, W - w);
      cw = w, ch = h, found = 1;
    }
  }
  if (!found) { /* torchvision's fallback: the central crop of the nearest allowed ratio */
    double in_ratio = (double)W / H;
    if (in_ratio < ratio_min) cw = W, ch = (int)lround(W / ratio_min);
    else if (in_ratio > ratio_max) ch = H, cw = (int)lround(H * ratio_max);
    cx = (W - cw) / 2, cy = (H - ch) / 2;
  }
  double box[4] = {cx, cy, cx + cw, cy + ch};
  return cfx_image_resize(src, size, size, filter, box, out);
}

/* ---- pipelines ------------------------------------------------------------------------ */

enum { STAGE_RANDAUGMENT, STAGE_EVAL, STAGE_PERTURB };
enum { MAX_STAGES = 16 };

typedef struct {
  int kind;
  cfx_randaugment_opts ra;
  int32_t resize, crop;
  int filter;
  int perturb;
  double level;
} stage;

struct cfx_augment {
  stage stages[MAX_STAGES];
  int n;
};

void cfx_randaugment_defaults(cfx_randaugment_opts *o) {
  memset(o, 0, sizeof *o);
  o->crop = 224, o->n_max = 2, o->ops = CFX_AUG_ALL;
  o->jpeg_min = 75, o->jpeg_max = 100, o->resize_max = 1.228;
  o->rrc_scale_min = 0.9, o->rrc_scale_max = 1.0, o->rrc_ratio_min = 3.0 / 4, o->rrc_ratio_max = 4.0 / 3;
  o->flip_p = 0.5, o->rotate_max = 15, o->translate_max = 0.1, o->shear_max = 15, o->pad_max = 0.05;
  o->cutout_p = 0.5, o->cutout_min = 0.02, o->cutout_max = 0.06;
}

int cfx_augment_new(cfx_augment **out) {
  if (!out) return cfx__fail(CFX_EINVAL, "augment_new: out is NULL");
  *out = calloc(1, sizeof **out);
  return *out ? 0 : cfx__fail(CFX_ENOMEM, "out of memory");
}

void cfx_augment_free(cfx_augment *a) { free(a); }

int cfx_augment_clone(const cfx_augment *a, cfx_augment **out) {
  if (!a || !out) return cfx__fail(CFX_EINVAL, "augment_clone: NULL argument");
  *out = malloc(sizeof **out);
  if (!*out) return cfx__fail(CFX_ENOMEM, "out of memory");
  **out = *a; /* stages are plain values */
  return 0;
}

static stage *push(cfx_augment *a, int kind) {
  if (!a || a->n >= MAX_STAGES) return NULL;
  stage *s = &a->stages[a->n++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  return s;
}

int cfx_augment_add_randaugment(cfx_augment *a, const cfx_randaugment_opts *o) {
  if (!a || !o) return cfx__fail(CFX_EINVAL, "add_randaugment: NULL argument");
  if (o->crop < 1 || o->n_max < 0 || o->n_max > 16) return cfx__fail(CFX_ERANGE, "randaugment: crop %d or n_max %d out of range", o->crop, o->n_max);
  if (o->jpeg_min < 1 || o->jpeg_max > 100 || o->jpeg_min > o->jpeg_max)
    return cfx__fail(CFX_ERANGE, "randaugment: JPEG quality range %d..%d is not within 1..100", o->jpeg_min, o->jpeg_max);
  if (!(o->resize_max * o->crop >= o->crop + 1))
    return cfx__fail(CFX_ERANGE, "randaugment: resize_max %g gives no size above crop %d", o->resize_max, o->crop);
  if (!(o->rrc_scale_min > 0 && o->rrc_scale_min <= o->rrc_scale_max && o->rrc_scale_max <= 1 &&
        o->rrc_ratio_min > 0 && o->rrc_ratio_min <= o->rrc_ratio_max))
    return cfx__fail(CFX_ERANGE, "randaugment: bad resized-crop scale or ratio range");
  if (!(o->cutout_min >= 0 && o->cutout_min <= o->cutout_max && o->cutout_max < 1 && o->pad_max >= 0 &&
        o->translate_max >= 0 && o->translate_max < 1))
    return cfx__fail(CFX_ERANGE, "randaugment: bad cutout, padding or translation range");
  stage *s = push(a, STAGE_RANDAUGMENT);
  if (!s) return cfx__fail(CFX_ERANGE, "augment: at most %d stages", MAX_STAGES);
  s->ra = *o;
  return 0;
}

int cfx_augment_add_eval(cfx_augment *a, int32_t resize, int32_t crop, int filter) {
  if (resize < 0 || crop < 0) return cfx__fail(CFX_ERANGE, "eval: resize %d and crop %d must be >= 0", resize, crop);
  if (filter < CFX_FILTER_NEAREST || filter > CFX_FILTER_LANCZOS) return cfx__fail(CFX_EINVAL, "eval: unknown filter %d", filter);
  stage *s = push(a, STAGE_EVAL);
  if (!s) return cfx__fail(CFX_ERANGE, "augment: at most %d stages", MAX_STAGES);
  s->resize = resize, s->crop = crop, s->filter = filter;
  return 0;
}

int cfx_augment_add_perturb(cfx_augment *a, int kind, double level) {
  if (kind < CFX_PERTURB_JPEG || kind > CFX_PERTURB_SHEAR) return cfx__fail(CFX_EINVAL, "perturb: unknown kind %d", kind);
  if (kind == CFX_PERTURB_JPEG && (level < 1 || level > 100))
    return cfx__fail(CFX_ERANGE, "perturb jpeg: quality must be 1..100, got %g", level);
  if ((kind == CFX_PERTURB_RESIZE || kind == CFX_PERTURB_PAD) && !(level >= 0 && level < 1))
    return cfx__fail(CFX_ERANGE, "perturb: fraction must be in [0, 1), got %g", level);
  if (kind == CFX_PERTURB_BLUR && !(level >= 0 && level <= 100))
    return cfx__fail(CFX_ERANGE, "perturb blur: sigma must be in [0, 100], got %g", level);
  stage *s = push(a, STAGE_PERTURB);
  if (!s) return cfx__fail(CFX_ERANGE, "augment: at most %d stages", MAX_STAGES);
  s->perturb = kind, s->level = level;
  return 0;
}

int32_t cfx_augment_output_size(const cfx_augment *a) {
  if (!a) return 0;
  for (int i = a->n - 1; i >= 0; i--) {
    if (a->stages[i].kind == STAGE_RANDAUGMENT) return a->stages[i].ra.crop;
    if (a->stages[i].kind == STAGE_EVAL && a->stages[i].crop > 0) return a->stages[i].crop;
  }
  return 0;
}

/* Replace *img by the result of an op (cur is released only on success). */
#define STEP(call)                 \
  do {                             \
    cfx_image next_;               \
    int rc_ = (call);              \
    if (rc_) return rc_;           \
    cfx_image_release(img);        \
    *img = next_;                  \
  } while (0)
#define NEXT (&next_)

static int resize_shorter(cfx_image *img, int32_t side, int filter) {
  int64_t w = img->width, h = img->height, nw, nh;
  if (w <= h) nw = side, nh = (int64_t)((double)side * h / w);
  else nh = side, nw = (int64_t)((double)side * w / h);
  if (nw == w && nh == h) return 0;
  STEP(cfx_image_resize(img, (int32_t)nw, (int32_t)nh, filter, NULL, NEXT));
  return 0;
}

static int random_crop(cfx_image *img, cfx_rng *rng, int32_t size) {
  int32_t x = img->width > size ? (int32_t)cfx_rng_int(rng, 0, img->width - size) : (img->width - size) / 2;
  int32_t y = img->height > size ? (int32_t)cfx_rng_int(rng, 0, img->height - size) : (img->height - size) / 2;
  STEP(cfx_image_crop(img, x, y, size, size, 0, NEXT));
  return 0;
}

static const int rrc_filters[6] = {CFX_FILTER_NEAREST, CFX_FILTER_BOX,     CFX_FILTER_BILINEAR,
                                   CFX_FILTER_HAMMING, CFX_FILTER_BICUBIC, CFX_FILTER_LANCZOS};

static int apply_op(cfx_image *img, cfx_rng *rng, const cfx_randaugment_opts *o, int op) {
  int w = img->width, h = img->height;
  switch (op) {
  case CFX_AUG_JPEG:
    STEP(cfx_image_jpeg_roundtrip(img, (int)cfx_rng_int(rng, o->jpeg_min, o->jpeg_max), NEXT));
    break;
  case CFX_AUG_RESIZE: {
    int32_t side = (int32_t)cfx_rng_int(rng, o->crop + 1, (int64_t)(o->resize_max * o->crop));
    int filter = cfx_rng_int(rng, 0, 1) ? CFX_FILTER_BICUBIC : CFX_FILTER_BILINEAR;
    return resize_shorter(img, side, filter);
  }
  case CFX_AUG_CROP:
    if (w > o->crop || h > o->crop) return random_crop(img, rng, o->crop);
    break;
  case CFX_AUG_HFLIP:
  case CFX_AUG_VFLIP:
    if (cfx_rng_uniform(rng, 0, 1) < o->flip_p) STEP(cfx_image_flip(img, op == CFX_AUG_HFLIP, NEXT));
    break;
  case CFX_AUG_RESIZED_CROP: {
    int filter = rrc_filters[cfx_rng_int(rng, 0, 5)];
    int32_t side = w < h ? w : h;
    STEP(cfx_image_random_resized_crop(img, rng, side, o->rrc_scale_min, o->rrc_scale_max, o->rrc_ratio_min,
                                       o->rrc_ratio_max, filter, NEXT));
    break;
  }
  case CFX_AUG_ROTATE:
    STEP(cfx_image_affine(img, cfx_rng_uniform(rng, -o->rotate_max, o->rotate_max), 0, 0, 1, 0, 0,
                          CFX_FILTER_BILINEAR, 0, NEXT));
    break;
  case CFX_AUG_TRANSLATE: {
    double tx = round(cfx_rng_uniform(rng, -o->translate_max, o->translate_max) * w);
    double ty = round(cfx_rng_uniform(rng, -o->translate_max, o->translate_max) * h);
    /* An integer shift with nearest sampling is a shifted copy: the same pixels as
     * cfx_image_affine(img, 0, tx, ty, 1, 0, 0, NEAREST, 0), without per-pixel maths. */
    STEP(cfx_image_crop(img, -(int32_t)tx, -(int32_t)ty, w, h, 0, NEXT));
    break;
  }
  case CFX_AUG_SHEAR:
    STEP(cfx_image_affine(img, 0, 0, 0, 1, cfx_rng_uniform(rng, -o->shear_max, o->shear_max),
                          cfx_rng_uniform(rng, -o->shear_max, o->shear_max), CFX_FILTER_BILINEAR, 0, NEXT));
    break;
  case CFX_AUG_PAD: {
    int32_t l = (int32_t)(cfx_rng_uniform(rng, 0, o->pad_max) * w), r = (int32_t)(cfx_rng_uniform(rng, 0, o->pad_max) * w);
    int32_t t = (int32_t)(cfx_rng_uniform(rng, 0, o->pad_max) * h), b = (int32_t)(cfx_rng_uniform(rng, 0, o->pad_max) * h);
    int32_t grey = (int32_t)cfx_rng_int(rng, 0, 255);
    STEP(cfx_image_pad(img, l, t, r, b, grey << 16 | grey << 8 | grey, 1, NEXT));
    break;
  }
  case CFX_AUG_CUTOUT: {
    if (cfx_rng_uniform(rng, 0, 1) >= o->cutout_p) break;
    /* torchvision's RandomErasing: area fraction and log-uniform ratio (0.3, 3.3). */
    for (int attempt = 0; attempt < 10; attempt++) {
      double area = (double)w * h * cfx_rng_uniform(rng, o->cutout_min, o->cutout_max);
      double ratio = exp(cfx_rng_uniform(rng, log(0.3), log(3.3)));
      int ch = (int)lround(sqrt(area * ratio)), cw = (int)lround(sqrt(area / ratio));
      if (ch < h && cw < w && ch > 0 && cw > 0) {
        int32_t y = (int32_t)cfx_rng_int(rng, 0, h - ch), x = (int32_t)cfx_rng_int(rng, 0, w - cw);
        STEP(cfx_image_cutout(img, x, y, cw, ch, 0, NEXT));
        break;
      }
    }
    break;
  }
  }
  return 0;
}

static int run_randaugment(cfx_image *img, cfx_rng *rng, const cfx_randaugment_opts *o) {
  int ops[11 * 17];
  int n = 0;
  for (int bit = 0; bit < 11; bit++) {
    if (!(o->ops & (1u << bit))) continue;
    int count = (int)cfx_rng_int(rng, 0, o->n_max);
    for (int i = 0; i < count; i++) ops[n++] = 1 << bit;
  }
  for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int j = (int)cfx_rng_int(rng, 0, i), t = ops[i];
    ops[i] = ops[j], ops[j] = t;
  }
  for (int i = 0; i < n; i++) {
    int rc = apply_op(img, rng, o, ops[i]);
    if (rc) return rc;
  }
  if (img->width < o->crop || img->height < o->crop) {
    int rc = resize_shorter(img, o->crop, CFX_FILTER_BILINEAR);
    if (rc) return rc;
  }
  if (img->width != o->crop || img->height != o->crop) return random_crop(img, rng, o->crop);
  return 0;
}

static int run_perturb(cfx_image *img, cfx_rng *rng, int kind, double level) {
  double sign = cfx_rng_int(rng, 0, 1) ? 1 : -1;
  int w = img->width, h = img->height;
  switch (kind) {
  case CFX_PERTURB_JPEG:
    STEP(cfx_image_jpeg_roundtrip(img, (int)lround(level), NEXT));
    break;
  case CFX_PERTURB_BLUR:
    STEP(cfx_image_gaussian_blur(img, level, NEXT));
    break;
  case CFX_PERTURB_ROTATE:
    STEP(cfx_image_affine(img, sign * level, 0, 0, 1, 0, 0, CFX_FILTER_BILINEAR, 0, NEXT));
    break;
  case CFX_PERTURB_SHEAR:
    STEP(cfx_image_affine(img, 0, 0, 0, 1, sign * level, 0, CFX_FILTER_BILINEAR, 0, NEXT));
    break;
  case CFX_PERTURB_RESIZE: {
    double f = 1 + sign * level;
    int32_t nw = (int32_t)lround(w * f), nh = (int32_t)lround(h * f);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    STEP(cfx_image_resize(img, nw, nh, CFX_FILTER_BILINEAR, NULL, NEXT));
    STEP(cfx_image_resize(img, w, h, CFX_FILTER_BILINEAR, NULL, NEXT));
    break;
  }
  case CFX_PERTURB_PAD: {
    int wide = (int)cfx_rng_int(rng, 0, 1); /* pad the width or the height */
    int32_t total = (int32_t)lround((wide ? w : h) * level), first = (int32_t)cfx_rng_int(rng, 0, total);
    if (wide) STEP(cfx_image_pad(img, first, 0, total - first, 0, 0, 1, NEXT));
    else STEP(cfx_image_pad(img, 0, first, 0, total - first, 0, 1, NEXT));
    break;
  }
  }
  return 0;
}

int cfx_augment_apply(const cfx_augment *a, const cfx_image *src, uint64_t seed, cfx_image *out) {
  if (!a || !out) return cfx__fail(CFX_EINVAL, "augment_apply: NULL argument");
  memset(out, 0, sizeof *out);
  int rc = check_src(src, "augment_apply");
  if (rc || (rc = cfx__image_alloc(out, src->width, src->height))) return rc;
  memcpy(out->data, src->data, (size_t)src->width * src->height * 3);
  cfx_rng rng;
  cfx_rng_seed(&rng, seed);
  for (int i = 0; i < a->n && !rc; i++) {
    const stage *s = &a->stages[i];
    if (s->kind == STAGE_RANDAUGMENT) {
      rc = run_randaugment(out, &rng, &s->ra);
    } else if (s->kind == STAGE_PERTURB) {
      rc = run_perturb(out, &rng, s->perturb, s->level);
    } else {
      if (s->resize > 0) rc = resize_shorter(out, s->resize, s->filter);
      if (!rc && s->crop > 0) {
        cfx_image next;
        if (!(rc = cfx_image_center_crop(out, s->crop, s->crop, &next))) {
          cfx_image_release(out);
          *out = next;
        }
      }
    }
  }
  if (rc) cfx_image_release(out);
  return rc;
}

int cfx_image_to_chw(const cfx_image *img, uint8_t *dst, int64_t cap) {
  int rc = check_src(img, "to_chw");
  if (rc) return rc;
  size_t plane = (size_t)img->width * img->height;
  if (!dst || cap < (int64_t)(plane * 3))
    return cfx__fail(CFX_ERANGE, "to_chw: destination holds %lld bytes, image needs %zu", (long long)cap, plane * 3);
  for (size_t i = 0; i < plane; i++) {
    dst[i] = img->data[3 * i];
    dst[plane + i] = img->data[3 * i + 1];
    dst[2 * plane + i] = img->data[3 * i + 2];
  }
  return 0;
}
