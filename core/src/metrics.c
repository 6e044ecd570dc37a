/* metrics.c: average precision and ROC AUC (see cfx/metrics.h). */
#include "cfx/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"

typedef struct {
  double score;
  uint8_t label;
} pair;

static int by_score_desc(const void *a, const void *b) {
  double x = ((const pair *)a)->score, y = ((const pair *)b)->score;
  return (x < y) - (x > y);
}

/* Sorted copy of (score, label), checking the inputs; *pos = number of positives. */
static int sorted_pairs(const char *what, const double *s, const uint8_t *l, int64_t n, pair **out, int64_t *pos) {
  if (n < 0 || (n > 0 && (!s || !l))) return cfx__fail(CFX_EINVAL, "%s: NULL scores or labels", what);
  pair *p = malloc(sizeof *p * (size_t)(n ? n : 1));
  if (!p) return cfx__fail(CFX_ENOMEM, "%s: out of memory for %lld scores", what, (long long)n);
  int64_t np = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(s[i])) {
      free(p);
      return cfx__fail(CFX_EINVAL, "%s: score %lld is NaN", what, (long long)i);
    }
    if (l[i] > 1) {
      free(p);
      return cfx__fail(CFX_EINVAL, "%s: label %lld is %d, expected 0 or 1", what, (long long)i, l[i]);
    }
    p[i].score = s[i], p[i].label = l[i];
    np += l[i];
  }
  qsort(p, (size_t)n, sizeof *p, by_score_desc);
  *out = p, *pos = np;
  return 0;
}

int cfx_metrics_average_precision(const double *scores, const uint8_t *labels, int64_t n, double *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "average_precision: out is NULL");
  pair *p;
  int64_t npos;
  int rc = sorted_pairs("average_precision", scores, labels, n, &p, &npos);
  if (rc) return rc;
  if (npos == 0 || npos == n) {
    free(p);
    *out = NAN;
    return 0;
  }
  double ap = 0, prev_recall = 0;
  int64_t tp = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && p[j].score == p[i].score) tp += p[j++].label;
    double recall = (double)tp / npos, precision = (double)tp / j;
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
    i = j;
  }
  free(p);
  *out = ap;
  return 0;
}

int cfx_metrics_roc_auc(const double *scores, const uint8_t *labels, int64_t n, double *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "roc_auc: out is NULL");
  pair *p;
  int64_t npos;
  int rc = sorted_pairs("roc_auc", scores, labels, n, &p, &npos);
  if (rc) return rc;
  int64_t nneg = n - npos;
  if (npos == 0 || nneg == 0) {
    free(p);
    *out = NAN;
    return 0;
  }
  /* walking thresholds downwards, tp positives score above the current group: each
   * negative in it is correctly ranked below those, and tied with the group's own
   * positives (half a pair each) */
  double area = 0;
  int64_t tp = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i, gp = 0, gn = 0;
    while (j < n && p[j].score == p[i].score) {
      if (p[j].label) gp++;
      else gn++;
      j++;
    }
    area += (double)gn * ((double)tp + 0.5 * (double)gp);
    tp += gp;
    i = j;
  }
  free(p);
  *out = area / ((double)npos * (double)nneg);
  return 0;
}
