/* cfx/metrics.h: ranking metrics of binary detectors.
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

#ifdef __cplusplus
}
#endif
#endif
