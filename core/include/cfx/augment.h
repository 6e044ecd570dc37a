/* cfx/augment.h: random augmentation of RGB uint8 HWC images (cfx_image), and the
 * pipelines built from the image ops of cfx/image.h: the paper's RandAugment variant,
 * evaluation preprocessing, and the robustness perturbations of its Fig. 7.
 *
 * Ops take a source image and write a new one to *out (the caller releases it with
 * cfx_image_release); the source is never modified.  Randomness comes only from a
 * cfx_rng the caller seeds, and a pipeline seeds one per sample from
 * cfx_augment_seed(run_seed, epoch, index): the same sample gets the same
 * augmentation whatever the thread count or order of processing.
 *
 * A cfx_augment pipeline is immutable once built: cfx_augment_apply may be called
 * from many threads at once.  Building and freeing it are not thread-safe. */
#ifndef CFX_AUGMENT_H
#define CFX_AUGMENT_H

#include "cfx/common.h"
#include "cfx/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A small deterministic generator (xoshiro256**, seeded through splitmix64). */
typedef struct cfx_rng {
  uint64_t s[4];
} cfx_rng;

CFX_API void cfx_rng_seed(cfx_rng *rng, uint64_t seed);
CFX_API uint64_t cfx_rng_next(cfx_rng *rng);
/* Uniform on [lo, hi). */
CFX_API double cfx_rng_uniform(cfx_rng *rng, double lo, double hi);
/* Uniform integer on [lo, hi] (inclusive). */
CFX_API int64_t cfx_rng_int(cfx_rng *rng, int64_t lo, int64_t hi);
/* The seed of one sample: a hash of the run's seed, the epoch and the sample index. */
CFX_API uint64_t cfx_augment_seed(uint64_t run_seed, uint64_t epoch, uint64_t index);

/* ---- random ops (the deterministic image ops are in cfx/image.h) ------------------ */
/* torchvision's RandomResizedCrop: a random window of scale x the area and aspect
 * ratio in [ratio_min, ratio_max] (log-uniform), resized to size x size with filter. */
CFX_API int cfx_image_random_resized_crop(const cfx_image *src, cfx_rng *rng, int32_t size, double scale_min,
                                          double scale_max, double ratio_min, double ratio_max, int filter,
                                          cfx_image *out);

/* ---- pipelines ---------------------------------------------------------------------- */
typedef struct cfx_augment cfx_augment;

/* The op types of RandAugment, as bits of cfx_randaugment_opts.ops. */
enum {
  CFX_AUG_JPEG = 1 << 0,
  CFX_AUG_RESIZE = 1 << 1,
  CFX_AUG_CROP = 1 << 2,
  CFX_AUG_HFLIP = 1 << 3,
  CFX_AUG_VFLIP = 1 << 4,
  CFX_AUG_RESIZED_CROP = 1 << 5,
  CFX_AUG_ROTATE = 1 << 6,
  CFX_AUG_TRANSLATE = 1 << 7,
  CFX_AUG_SHEAR = 1 << 8,
  CFX_AUG_PAD = 1 << 9,
  CFX_AUG_CUTOUT = 1 << 10,
  CFX_AUG_ALL = (1 << 11) - 1
};

/* The paper's modified RandAugment: for every enabled op type an independent count
 * drawn from 0..n_max, all drawn ops applied in a random order, then a random crop
 * to crop x crop (after resizing the shorter side up to crop if needed).
 * cfx_randaugment_defaults fills the paper's ranges. */
typedef struct cfx_randaugment_opts {
  int32_t crop;           /* output side: 224 */
  int32_t n_max;          /* per-op-type count is drawn from 0..n_max: 2 */
  uint32_t ops;           /* enabled op types (CFX_AUG_*): all */
  int32_t jpeg_min;       /* JPEG quality range: 75 */
  int32_t jpeg_max;       /*   .. 100 */
  double resize_max;      /* shorter side to crop+1 .. resize_max * crop: 1.228 */
  double rrc_scale_min;   /* random resized crop area fraction: 0.9 */
  double rrc_scale_max;   /*   .. 1.0 */
  double rrc_ratio_min;   /* aspect ratio: 3/4 */
  double rrc_ratio_max;   /*   .. 4/3 */
  double flip_p;          /* each flip op flips with this probability: 0.5 */
  double rotate_max;      /* degrees: 15 */
  double translate_max;   /* fraction of the side: 0.1 */
  double shear_max;       /* degrees: 15 */
  double pad_max;         /* fraction of the side: 0.05 */
  double cutout_p;        /* 0.5 */
  double cutout_min;      /* area fraction: 0.02 */
  double cutout_max;      /*   .. 0.06 */
} cfx_randaugment_opts;

CFX_API void cfx_randaugment_defaults(cfx_randaugment_opts *o);

/* Robustness perturbations (Fig. 7). */
enum {
  CFX_PERTURB_JPEG = 0,     /* level: quality */
  CFX_PERTURB_BLUR = 1,     /* level: Gaussian sigma */
  CFX_PERTURB_ROTATE = 2,   /* level: degrees, sign drawn at random */
  CFX_PERTURB_RESIZE = 3,   /* level: fraction f; scale by 1-f or 1+f, then back */
  CFX_PERTURB_PAD = 4,      /* level: fraction of the width or the height, then back */
  CFX_PERTURB_SHEAR = 5     /* level: degrees, sign drawn at random */
};

CFX_API int cfx_augment_new(cfx_augment **out);
CFX_API void cfx_augment_free(cfx_augment *a);
/* An independent copy of a pipeline (what a loader keeps, so that freeing the original
 * while workers run is safe). */
CFX_API int cfx_augment_clone(const cfx_augment *a, cfx_augment **out);
CFX_API int cfx_augment_add_randaugment(cfx_augment *a, const cfx_randaugment_opts *o);
/* Evaluation preprocessing: resize the shorter side to `resize` (0: no resize) with
 * filter, then a centre crop of crop x crop (0: no crop). */
CFX_API int cfx_augment_add_eval(cfx_augment *a, int32_t resize, int32_t crop, int filter);
CFX_API int cfx_augment_add_perturb(cfx_augment *a, int kind, double level);
/* Run the stages in order on src with the sample's seed. */
CFX_API int cfx_augment_apply(const cfx_augment *a, const cfx_image *src, uint64_t seed, cfx_image *out);
/* The fixed output side of the pipeline (its last crop), or 0 if it has none. */
CFX_API int32_t cfx_augment_output_size(const cfx_augment *a);

/* HWC image -> CHW bytes at dst (3 * height * width bytes). */
CFX_API int cfx_image_to_chw(const cfx_image *img, uint8_t *dst, int64_t cap);

#ifdef __cplusplus
}
#endif
#endif
