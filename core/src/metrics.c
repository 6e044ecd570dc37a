/* metrics.c: average precision, ROC AUC, accuracy, per-group metrics (see cfx/metrics.h). */
#include "cfx/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- sorting scores: LSD radix sort on order-preserving keys -----------------------
 * A comparison sort through qsort's function pointer takes about 0.1 s per 10^6 scores;
 * this takes a few milliseconds, which matters when 10^6 .. 10^7 scores are grouped. */
typedef struct {
  uint64_t key, val;
} rec;

/* The bits of a double as an unsigned key in the same order (-0.0 as +0.0; no NaN). */
static uint64_t score_key(double x) {
  if (x == 0) x = 0;
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return (u >> 63) ? ~u : u | (1ull << 63);
}
static double key_score(uint64_t k) {
  uint64_t u = (k >> 63) ? k & ~(1ull << 63) : ~k;
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* Sort a[0..n) by key, ascending and stable, 16 bits a pass (passes where every key has
 * the same digit are skipped).  -1 when out of memory. */
static int radix_sort(rec *a, int64_t n) {
  if (n < 2) return 0;
  rec *tmp = malloc(sizeof *tmp * (size_t)n);
  int64_t *count = malloc(sizeof *count * 65536);
  if (!tmp || !count) {
    free(tmp), free(count);
    return -1;
  }
  rec *src = a, *dst = tmp;
  for (int shift = 0; shift < 64; shift += 16) {
    memset(count, 0, sizeof *count * 65536);
    for (int64_t i = 0; i < n; i++) count[(src[i].key >> shift) & 0xFFFF]++;
    if (count[(src[0].key >> shift) & 0xFFFF] == n) continue;
    int64_t sum = 0;
    for (int d = 0; d < 65536; d++) {
      int64_t c = count[d];
      count[d] = sum, sum += c;
    }
    for (int64_t i = 0; i < n; i++) dst[count[(src[i].key >> shift) & 0xFFFF]++] = src[i];
    rec *t = src;
    src = dst, dst = t;
  }
  if (src != a) memcpy(a, src, sizeof *a * (size_t)n);
  free(tmp), free(count);
  return 0;
}

typedef struct {
  double score;
  uint8_t label;
} pair;

/* Sorted copy of (score, label), checking the inputs; *pos = number of positives. */
static int sorted_pairs(const char *what, const double *s, const uint8_t *l, int64_t n, pair **out, int64_t *pos) {
  if (n < 0 || (n > 0 && (!s || !l))) return cfx__fail(CFX_EINVAL, "%s: NULL scores or labels", what);
  pair *p = malloc(sizeof *p * (size_t)(n ? n : 1));
  rec *r = malloc(sizeof *r * (size_t)(n ? n : 1));
  if (!p || !r) {
    free(p), free(r);
    return cfx__fail(CFX_ENOMEM, "%s: out of memory for %lld scores", what, (long long)n);
  }
  int64_t np = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(s[i]) || l[i] > 1) {
      free(p), free(r);
      if (l[i] > 1) return cfx__fail(CFX_EINVAL, "%s: label %lld is %d, expected 0 or 1", what, (long long)i, l[i]);
      return cfx__fail(CFX_EINVAL, "%s: score %lld is NaN", what, (long long)i);
    }
    r[i].key = ~score_key(s[i]), r[i].val = l[i]; /* descending */
    np += l[i];
  }
  if (radix_sort(r, n)) {
    free(p), free(r);
    return cfx__fail(CFX_ENOMEM, "%s: out of memory for %lld scores", what, (long long)n);
  }
  for (int64_t i = 0; i < n; i++) p[i].score = key_score(~r[i].key), p[i].label = (uint8_t)r[i].val;
  free(r);
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

int cfx_metrics_accuracy(const double *scores, const uint8_t *labels, int64_t n, double threshold, double *acc,
                         double *acc_real, double *acc_fake) {
  if (n < 0 || (n > 0 && (!scores || !labels)) || !acc || !acc_real || !acc_fake)
    return cfx__fail(CFX_EINVAL, "accuracy: NULL argument");
  int64_t nr = 0, nf = 0, okr = 0, okf = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(scores[i])) return cfx__fail(CFX_EINVAL, "accuracy: score %lld is NaN", (long long)i);
    if (labels[i] > 1)
      return cfx__fail(CFX_EINVAL, "accuracy: label %lld is %d, expected 0 or 1", (long long)i, labels[i]);
    int pred = scores[i] > threshold;
    if (labels[i]) nf++, okf += pred;
    else nr++, okr += !pred;
  }
  *acc = n ? (double)(okr + okf) / (double)n : NAN;
  *acc_real = nr ? (double)okr / (double)nr : NAN;
  *acc_fake = nf ? (double)okf / (double)nf : NAN;
  return 0;
}

typedef struct {
  double score;
  int32_t group;
} gscore;

/* r[0..n) (key: score key, val: group) sorted by score, then stably by group into out:
 * ascending scores within each group; all (if given) gets every score ascending. */
static int by_group_then_score(rec *r, int64_t n, int32_t ngroups, gscore *out, double *all) {
  if (radix_sort(r, n)) return -1;
  int64_t *start = calloc((size_t)ngroups + 1, sizeof *start);
  if (!start) return -1;
  for (int64_t i = 0; i < n; i++) start[r[i].val + 1]++;
  for (int32_t g = 0; g < ngroups; g++) start[g + 1] += start[g];
  for (int64_t i = 0; i < n; i++) {
    double v = key_score(r[i].key);
    if (all) all[i] = v;
    gscore *o = &out[start[r[i].val]++];
    o->score = v, o->group = (int32_t)r[i].val;
  }
  free(start);
  return 0;
}

/* first index in sorted r[0..m) with r[i] >= v (lower) or > v (upper) */
static int64_t lower_bound(const double *r, int64_t m, double v) {
  int64_t lo = 0, hi = m;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
static int64_t upper_bound(const double *r, int64_t m, double v) {
  int64_t lo = 0, hi = m;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Metrics of fakes f[0..nf) (ascending) against reals r[0..m) (ascending). */
static void group_metrics(const gscore *f, int64_t nf, const double *r, int64_t m, double thr, cfx_group_metrics *o) {
  o->n_fake = nf, o->n_real = m;
  o->ap = o->auroc = NAN;
  int64_t okf = 0;
  for (int64_t i = 0; i < nf; i++) okf += f[i].score > thr;
  int64_t okr = upper_bound(r, m, thr); /* reals <= thr */
  o->acc_fake = nf ? (double)okf / (double)nf : NAN;
  o->acc_real = m ? (double)okr / (double)m : NAN;
  o->acc = nf + m ? (double)(okf + okr) / (double)(nf + m) : NAN;
  if (nf == 0 || m == 0) return;
  /* AP: thresholds at the distinct fake scores, descending; reals-only thresholds add
   * no recall.  AUC: each fake counts the reals below it plus half the tied ones. */
  double ap = 0, area = 0;
  int64_t tp = 0;
  for (int64_t i = nf - 1; i >= 0;) {
    int64_t j = i;
    while (j >= 0 && f[j].score == f[i].score) j--;
    int64_t cnt = i - j;
    double s = f[i].score;
    tp += cnt;
    int64_t lo = lower_bound(r, m, s), hi = upper_bound(r, m, s);
    int64_t fp = m - lo; /* reals >= s */
    ap += ((double)cnt / (double)nf) * ((double)tp / (double)(tp + fp));
    area += (double)cnt * ((double)lo + 0.5 * (double)(hi - lo));
    i = j;
  }
  o->ap = ap;
  o->auroc = area / ((double)nf * (double)m);
}

int cfx_metrics_grouped(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
                        int32_t ngroups, double threshold, cfx_group_metrics *out) {
  if (n < 0 || ngroups < 0 || (n > 0 && (!scores || !labels || !groups)) || (ngroups > 0 && !out))
    return cfx__fail(CFX_EINVAL, "grouped metrics: NULL argument");
  int64_t nr = 0, nfk = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(scores[i])) return cfx__fail(CFX_EINVAL, "grouped metrics: score %lld is NaN", (long long)i);
    if (labels[i] > 1)
      return cfx__fail(CFX_EINVAL, "grouped metrics: label %lld is %d, expected 0 or 1", (long long)i, labels[i]);
    if (groups[i] < 0 || groups[i] >= ngroups)
      return cfx__fail(CFX_EINVAL, "grouped metrics: group %lld is %d, expected 0..%d", (long long)i, groups[i],
                       ngroups - 1);
    if (labels[i]) nfk++;
    else nr++;
  }
  gscore *fk = malloc(sizeof *fk * (size_t)(nfk ? nfk : 1));
  gscore *rl = malloc(sizeof *rl * (size_t)(nr ? nr : 1));
  double *all = malloc(sizeof *all * (size_t)(nr ? nr : 1));
  double *own = malloc(sizeof *own * (size_t)(nr ? nr : 1));
  rec *rf = malloc(sizeof *rf * (size_t)(nfk ? nfk : 1)), *rr = malloc(sizeof *rr * (size_t)(nr ? nr : 1));
  int oom = !fk || !rl || !all || !own || !rf || !rr;
  if (!oom) {
    int64_t a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
      rec *t = labels[i] ? &rf[a++] : &rr[b++];
      t->key = score_key(scores[i]), t->val = (uint64_t)groups[i];
    }
    oom = by_group_then_score(rf, nfk, ngroups, fk, NULL) || by_group_then_score(rr, nr, ngroups, rl, all);
  }
  free(rf), free(rr);
  if (oom) {
    free(fk), free(rl), free(all), free(own);
    return cfx__fail(CFX_ENOMEM, "grouped metrics: out of memory for %lld scores", (long long)n);
  }
  for (int64_t i = 0; i < nr; i++) own[i] = rl[i].score;
  int64_t fi = 0, ri = 0;
  for (int32_t g = 0; g < ngroups; g++) {
    int64_t f0 = fi, r0 = ri;
    while (fi < nfk && fk[fi].group == g) fi++;
    while (ri < nr && rl[ri].group == g) ri++;
    if (ri > r0) group_metrics(fk + f0, fi - f0, own + r0, ri - r0, threshold, &out[g]);
    else if (fi > f0) group_metrics(fk + f0, fi - f0, all, nr, threshold, &out[g]);
    else group_metrics(fk + f0, 0, own + r0, 0, threshold, &out[g]);
  }
  free(fk), free(rl), free(all), free(own);
  return 0;
}

int cfx_metrics_deal_reals(const uint8_t *labels, const int64_t *keys, int64_t n, uint64_t seed, int32_t *groups) {
  if (n < 0 || (n > 0 && (!labels || !keys || !groups))) return cfx__fail(CFX_EINVAL, "deal reals: NULL argument");
  int32_t top = -1;
  int64_t nfree = 0;
  for (int64_t i = 0; i < n; i++) {
    if (labels[i] > 1)
      return cfx__fail(CFX_EINVAL, "deal reals: label %lld is %d, expected 0 or 1", (long long)i, labels[i]);
    if (labels[i] == 1) {
      if (groups[i] < 0) return cfx__fail(CFX_EINVAL, "deal reals: fake %lld has no group", (long long)i);
      if (groups[i] > top) top = groups[i];
    } else if (groups[i] < 0) {
      nfree++;
    }
  }
  if (top < 0 || nfree == 0) return 0;
  uint8_t *has = calloc((size_t)top + 1, 1);
  int32_t *ids = malloc(sizeof *ids * ((size_t)top + 1));
  rec *d = malloc(sizeof *d * (size_t)nfree); /* key: the hash, val: where the real is */
  if (!has || !ids || !d) {
    free(has), free(ids), free(d);
    return cfx__fail(CFX_ENOMEM, "deal reals: out of memory for %lld images", (long long)n);
  }
  for (int64_t i = 0; i < n; i++)
    if (labels[i] == 1) has[groups[i]] = 1;
  int32_t m = 0;
  for (int32_t g = 0; g <= top; g++)
    if (has[g]) ids[m++] = g;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    if (labels[i] == 0 && groups[i] < 0) {
      int64_t key[2] = {keys[i], (int64_t)seed};
      d[k].key = cfx_hash64(key, sizeof key, 0);
      d[k++].val = (uint64_t)i;
    }
  }
  int rc = radix_sort(d, nfree) ? cfx__fail(CFX_ENOMEM, "deal reals: out of memory for %lld reals", (long long)nfree) : 0;
  for (int64_t p = 0; !rc && p < nfree; p++) groups[d[p].val] = ids[p % m];
  free(has), free(ids), free(d);
  return rc;
}
