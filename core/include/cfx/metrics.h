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

#ifdef __cplusplus
}
#endif
#endif
