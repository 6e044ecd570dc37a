/* simd.h: SSE2 helpers shared by the resampling (image.c) and the affine warp
 * (augment.c); internal. */
#ifndef CFX_SIMD_H
#define CFX_SIMD_H

#ifdef __SSE2__
#include <emmintrin.h>
#include <stdint.h>
#include <string.h>

/* The RGB pixels at p and p + 3 as int16 pairs for pmaddwd: r0 r1 g0 g1 b0 b1 0 0
 * (reads the 7 bytes p[0..6]). */
static inline __m128i cfx__rgb_pair_epi16(const uint8_t *p) {
  int32_t a, b;
  memcpy(&a, p, 4);
  memcpy(&b, p + 3, 4);
  return _mm_unpacklo_epi8(_mm_unpacklo_epi8(_mm_cvtsi32_si128(a), _mm_cvtsi32_si128(b)), _mm_setzero_si128());
}
#endif

#endif
