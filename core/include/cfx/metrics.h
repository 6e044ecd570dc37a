/* cfx/metrics.h: ranking, calibration and operating-point metrics of binary detectors,
 * and bootstrap intervals of the per-generator protocol.
 *
 * Average precision is scikit-learn's average_precision_score: scores sorted in
 * decreasing order, tied scores form one threshold, and AP = sum_k (R_k - R_{k-1}) P_k
 * over the thresholds.  ROC AUC is the area under the ROC curve with tied scores
 * joined by a straight segment (the Mann-Whitney statistic with average ranks).
 * Both run in O(n log n).  When the labels hold only one class the metric is
 * undefined: *out is NaN and the call succeeds.  Labels are 0 (real) or 1 (generated,
 * the positive class).  Thread-safe. */
#ifndef CFX_METRICS_H
#define CFX_METRICS_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

CFX_API int cfx_metrics_average_precision(const double *scores, const uint8_t *labels, int64_t n, double *out);
CFX_API int cfx_metrics_roc_auc(const double *scores, const uint8_t *labels, int64_t n, double *out);

/* Accuracy at a threshold: a score above `threshold` predicts generated (1).  Writes
 * the overall accuracy and the accuracies on the reals and on the fakes alone (NaN
 * where there is none). */
CFX_API int cfx_metrics_accuracy(const double *scores, const uint8_t *labels, int64_t n, double threshold,
                                 double *acc, double *acc_real, double *acc_fake);

/* Metrics of one evaluation group (a generator). */
typedef struct cfx_group_metrics {
  int64_t n_real, n_fake; /* the reals it was scored against, its fakes */
  double ap, auroc;       /* NaN when n_real or n_fake is 0 (undefined) */
  double acc, acc_real, acc_fake;
} cfx_group_metrics;

/* Per-group metrics under the paper's protocol: group g's positives are its fakes,
 * its negatives the reals of group g when it has any (folder layouts keep each
 * generator's reals with it), otherwise every real of the input (a shared pool).
 * groups[i] is in [0, ngroups); out has ngroups entries.  AP and AUC equal
 * scikit-learn's on (g's fakes, g's negatives), computed in O(n log n) overall by
 * binary search in the sorted negatives. */
CFX_API int cfx_metrics_grouped(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
                                int32_t ngroups, double threshold, cfx_group_metrics *out);

/* Deal the reals that have no group (groups[i] < 0, labels[i] == 0) out to the groups
 * that hold fakes, in place: the reals in the order of cfx_hash64 of the int64 pair
 * (keys[i], seed) (keys: the images' store indices), the fakes' distinct groups in
 * increasing order, the p-th real to the (p mod m)-th group.  Every such group gets an
 * equal share (within one) of those reals, disjoint, fixed by the seed and not by the
 * order of the input.  With no fakes the groups stay as they are.  O(n log n). */
CFX_API int cfx_metrics_deal_reals(const uint8_t *labels, const int64_t *keys, int64_t n, uint64_t seed,
                                   int32_t *groups);

/* ---- calibration: probabilities p = P(generated) in [0, 1] ----------------------------
 * An empty input gives NaN (the metric of nothing), not an error; every other bad
 * input (NULL, NaN, a probability outside [0, 1], a label not 0/1) is CFX_EINVAL. */

/* Brier score: mean (p_i - y_i)^2, as scikit-learn's brier_score_loss. */
CFX_API int cfx_metrics_brier(const double *probs, const uint8_t *labels, int64_t n, double *out);

/* Negative log-likelihood of the labels under logits x (p = sigmoid(x)), the mean of
 * softplus(x) for a real and softplus(-x) for a fake, softplus(z) = max(z, 0) +
 * log1p(exp(-|z|)): finite for every finite logit (x = +-1000 included), equal to
 * scikit-learn's log_loss(y, sigmoid(x)) where that is accurate.  Logits may be +-inf. */
CFX_API int cfx_metrics_nll_logits(const double *logits, const uint8_t *labels, int64_t n, double *out);

/* Binning of cfx_metrics_calibration, as scikit-learn's calibration_curve strategies. */
enum { CFX_BINS_UNIFORM = 0, CFX_BINS_QUANTILE = 1 };

/* Reliability-diagram data and the expected calibration error with nbins bins (>= 1).
 * Edges: uniform, e_k = k * (1.0 / nbins) (numpy's linspace(0, 1, nbins + 1)); quantile,
 * e_k = numpy's percentile(p, e_k * 100) of the uniform e_k (linear interpolation, the
 * same floating-point steps).  p falls in bin b = the number of inner edges
 * e_1..e_{nbins-1} strictly below p (numpy's searchsorted, side='left'), so a p on an
 * edge goes to the lower bin.  Per bin: count[b], mean_prob[b] (mean p) and
 * frac_pos[b] (fraction of fakes), NaN for an empty bin: calibration_curve's prob_pred
 * and prob_true are the non-empty bins'.  *ece = sum_b count[b] / n * |frac_pos[b] -
 * mean_prob[b]|.  Any of mean_prob, frac_pos, count, edges (nbins + 1 entries) may be
 * NULL.  The quantile edges need a sort: O(n) radix sort. */
CFX_API int cfx_metrics_calibration(const double *probs, const uint8_t *labels, int64_t n, int32_t nbins,
                                    int strategy, double *ece, double *mean_prob, double *frac_pos, int64_t *count,
                                    double *edges);

/* ---- operating points -------------------------------------------------------------------
 * The ROC curve's points are the cuts of the scores sorted in decreasing order between
 * distinct values (tied scores are never split), as scikit-learn's roc_curve with
 * drop_intermediate=False, plus (0, 0).  A threshold t here means "score > t predicts
 * generated" (cfx_metrics_accuracy's rule): the cut that flags every score >= u is
 * t = the next distinct score below u, and t = -inf flags everything.  With one class
 * only, rates are undefined: NaN outputs, success.  A target outside [0, 1] or NaN is
 * CFX_EINVAL. */

/* Equal error rate: where FPR = FNR (= 1 - TPR) on the ROC curve joined linearly
 * between consecutive points (what brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x))
 * finds on roc_curve's points).  On the first point k with FPR_k - FNR_k >= 0, from the
 * point before it: d = FPR - FNR, eer = FPR_{k-1} + d_{k-1} / (d_{k-1} - d_k) *
 * (FPR_k - FPR_{k-1}) (= FPR_k when d_k = 0).  *threshold: point k's (may be NULL). */
CFX_API int cfx_metrics_eer(const double *scores, const uint8_t *labels, int64_t n, double *eer,
                            double *threshold);

/* For each target FPR f in fprs[0..k): the lowest threshold whose FPR (the fraction of
 * reals above it) is <= f, and the TPR there, which is the largest TPR of any ROC
 * point with FPR <= f (no interpolation: an operating point a threshold reaches).  The
 * threshold is a real's score (or -inf when f >= 1) and depends on the reals alone;
 * tpr is NaN without fakes, threshold and fpr_out NaN without reals.  Any of tpr,
 * threshold, fpr_out may be NULL. */
CFX_API int cfx_metrics_tpr_at_fpr(const double *scores, const uint8_t *labels, int64_t n, const double *fprs,
                                   int64_t k, double *tpr, double *threshold, double *fpr_out);

/* For each target TPR t in tprs[0..k): the smallest FPR of any ROC point with TPR >= t,
 * and that point's threshold (the highest threshold reaching t). */
CFX_API int cfx_metrics_fpr_at_tpr(const double *scores, const uint8_t *labels, int64_t n, const double *tprs,
                                   int64_t k, double *fpr, double *threshold);

/* Balanced accuracy (TPR + TNR) / 2 at a threshold (score > threshold predicts
 * generated), as balanced_accuracy_score(y, s > threshold); NaN with one class only. */
CFX_API int cfx_metrics_balanced_accuracy(const double *scores, const uint8_t *labels, int64_t n,
                                          double threshold, double *out);

/* The threshold of the best balanced accuracy on these scores: among the distinct
 * scores u as thresholds (score > u predicts generated), the one of the highest
 * (TPR + TNR) / 2, the lowest such u on a tie; *ba is that accuracy.  NaN with one
 * class only. */
CFX_API int cfx_metrics_threshold_best_balanced(const double *scores, const uint8_t *labels, int64_t n,
                                                double *threshold, double *ba);

/* ---- bootstrap confidence intervals of the per-generator protocol ----------------------
 * The units are the groups with fakes, in increasing group id (groups and the pairing
 * of reals exactly as cfx_metrics_grouped: a group's fakes against its own reals, or
 * against every real of the input when it has none).  A statistic is the mean over
 * units of the per-unit AP (units whose AP is defined) and of the per-unit accuracy at
 * `threshold` (mAP and mean accuracy of cfx.metrics.summarize).  Each resample draws as
 * many units as there are, with replacement, and (nested) for each drawn unit as many
 * of its fakes and of its own reals as it has, with replacement; the reals of units
 * scored against every real come from one resample of all the reals per resample,
 * shared, as the pool is shared in the data.  Random numbers: one cfx_rng seeded with
 * `seed`; an index below m is (cfx_rng_next * m) >> 64 (the high half of the 128-bit
 * product); per resample, in this order: (nested, and some unit uses the pool) one
 * index per real of the input, then per drawn unit: the unit, (nested) an index per
 * fake of it, then an index per own real of it, the fakes and reals of a unit indexed
 * in input order.  Intervals are percentile intervals: numpy's quantile (linear) of the
 * replicates at (1 - level) / 2 and (1 + level) / 2; se is their standard deviation
 * (ddof 1).  O(resamples * n) time with no sort per resample. */
typedef struct cfx_bootstrap_opts {
  int64_t resamples; /* >= 1 */
  double level;      /* in (0, 1) */
  uint64_t seed;
  int32_t nested;    /* 0: resample units only, their metrics fixed */
  double threshold;  /* of the accuracy */
} cfx_bootstrap_opts;

typedef struct cfx_bootstrap_result {
  double map, map_lo, map_hi, map_se; /* point estimate (the data's), interval, SE; NaN without reals */
  double acc, acc_lo, acc_hi, acc_se;
  int32_t n_units;                    /* groups with fakes */
  int64_t resamples;
} cfx_bootstrap_result;

/* map_reps, acc_reps (resamples entries each, may be NULL): the replicates. */
CFX_API int cfx_metrics_bootstrap(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
                                  int32_t ngroups, const cfx_bootstrap_opts *opts, cfx_bootstrap_result *out,
                                  double *map_reps, double *acc_reps);

#ifdef __cplusplus
}
#endif
#endif
