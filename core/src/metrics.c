/* metrics.c: average precision, ROC AUC, accuracy, per-group metrics, calibration,
 * operating points, bootstrap intervals (see cfx/metrics.h). */
#include "cfx/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cfx/augment.h" /* cfx_rng */
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

/* ---- calibration ------------------------------------------------------------------------ */

/* Check labels and scores (no NaN; in [0, 1] when probs is set). */
static int check_inputs(const char *what, const double *s, const uint8_t *l, int64_t n, int probs) {
  if (n < 0 || (n > 0 && (!s || !l))) return cfx__fail(CFX_EINVAL, "%s: NULL scores or labels", what);
  for (int64_t i = 0; i < n; i++) {
    if (l[i] > 1) return cfx__fail(CFX_EINVAL, "%s: label %lld is %d, expected 0 or 1", what, (long long)i, l[i]);
    if (isnan(s[i])) return cfx__fail(CFX_EINVAL, "%s: score %lld is NaN", what, (long long)i);
    if (probs && (s[i] < 0 || s[i] > 1))
      return cfx__fail(CFX_EINVAL, "%s: probability %lld is %.17g, expected one in [0, 1]", what, (long long)i, s[i]);
  }
  return 0;
}

int cfx_metrics_brier(const double *probs, const uint8_t *labels, int64_t n, double *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "brier: out is NULL");
  int rc = check_inputs("brier", probs, labels, n, 1);
  if (rc) return rc;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = probs[i] - labels[i];
    sum += d * d;
  }
  *out = n ? sum / (double)n : NAN;
  return 0;
}

/* log(1 + exp(z)) without overflow or cancellation */
static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

int cfx_metrics_nll_logits(const double *logits, const uint8_t *labels, int64_t n, double *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "nll: out is NULL");
  int rc = check_inputs("nll", logits, labels, n, 0);
  if (rc) return rc;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += softplus(labels[i] ? -logits[i] : logits[i]);
  *out = n ? sum / (double)n : NAN;
  return 0;
}

/* numpy's quantile(x, q) (method 'linear') of ascending x[0..m), m >= 1, in its steps */
static double np_quantile(const double *x, int64_t m, double q) {
  double v = (double)(m - 1) * q;
  if (v >= (double)(m - 1)) return x[m - 1];
  if (v < 0) return x[0];
  double prev = floor(v), g = v - prev;
  int64_t i = (int64_t)prev;
  double a = x[i], b = x[i + 1], d = b - a;
  return g >= 0.5 ? b - d * (1 - g) : a + d * g;
}

/* ascending copy of x[0..n) (no NaN) by radix sort; NULL when out of memory */
static double *sorted_copy(const double *x, int64_t n) {
  rec *r = malloc(sizeof *r * (size_t)(n ? n : 1));
  double *o = malloc(sizeof *o * (size_t)(n ? n : 1));
  if (!r || !o) {
    free(r), free(o);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) r[i].key = score_key(x[i]), r[i].val = 0;
  if (radix_sort(r, n)) {
    free(r), free(o);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) o[i] = key_score(r[i].key);
  free(r);
  return o;
}

int cfx_metrics_calibration(const double *probs, const uint8_t *labels, int64_t n, int32_t nbins, int strategy,
                            double *ece, double *mean_prob, double *frac_pos, int64_t *count, double *edges) {
  if (!ece) return cfx__fail(CFX_EINVAL, "calibration: ece is NULL");
  if (nbins < 1) return cfx__fail(CFX_EINVAL, "calibration: %d bins, expected at least 1", nbins);
  if (strategy != CFX_BINS_UNIFORM && strategy != CFX_BINS_QUANTILE)
    return cfx__fail(CFX_EINVAL, "calibration: strategy %d, expected uniform (0) or quantile (1)", strategy);
  int rc = check_inputs("calibration", probs, labels, n, 1);
  if (rc) return rc;
  double *e = malloc(sizeof *e * ((size_t)nbins + 1));
  double *sum = calloc((size_t)nbins, sizeof *sum), *pos = calloc((size_t)nbins, sizeof *pos);
  int64_t *cnt = calloc((size_t)nbins, sizeof *cnt);
  double *sorted = NULL;
  if (!e || !sum || !pos || !cnt || (strategy == CFX_BINS_QUANTILE && n > 0 && !(sorted = sorted_copy(probs, n)))) {
    free(e), free(sum), free(pos), free(cnt), free(sorted);
    return cfx__fail(CFX_ENOMEM, "calibration: out of memory for %lld scores", (long long)n);
  }
  double step = 1.0 / (double)nbins; /* numpy's linspace(0, 1, nbins + 1) */
  for (int32_t k = 0; k <= nbins; k++) e[k] = k == nbins ? 1.0 : (double)k * step;
  if (strategy == CFX_BINS_QUANTILE) {
    for (int32_t k = 0; k <= nbins; k++) e[k] = n > 0 ? np_quantile(sorted, n, e[k] * 100 / 100) : NAN;
  }
  for (int64_t i = 0; i < n; i++) {
    /* searchsorted(e[1..nbins-1], p, 'left'): the inner edges below p */
    int64_t b = lower_bound(e + 1, nbins - 1, probs[i]);
    sum[b] += probs[i], pos[b] += labels[i], cnt[b]++;
  }
  double acc = 0;
  for (int32_t b = 0; b < nbins; b++) {
    double mp = cnt[b] ? sum[b] / (double)cnt[b] : NAN, fp = cnt[b] ? pos[b] / (double)cnt[b] : NAN;
    if (cnt[b]) acc += (double)cnt[b] / (double)n * fabs(fp - mp);
    if (mean_prob) mean_prob[b] = mp;
    if (frac_pos) frac_pos[b] = fp;
    if (count) count[b] = cnt[b];
  }
  if (edges) memcpy(edges, e, sizeof *e * ((size_t)nbins + 1));
  *ece = n ? acc : NAN;
  free(e), free(sum), free(pos), free(cnt), free(sorted);
  return 0;
}

/* ---- operating points ------------------------------------------------------------------ */

/* The ROC cuts: k = 0..ncut-1, tp[k], fp[k] the fakes and reals flagged by threshold
 * thr[k] (score > thr[k]); thr[0] = the highest score (none flagged), thr[ncut-1] = -inf
 * (all flagged). */
typedef struct {
  int64_t ncut, npos, nneg;
  int64_t *tp, *fp;
  double *thr;
} roc_cuts;

static void roc_free(roc_cuts *r) { free(r->tp), free(r->fp), free(r->thr); }

static int roc_make(const char *what, const double *s, const uint8_t *l, int64_t n, roc_cuts *r) {
  memset(r, 0, sizeof *r);
  pair *p;
  int64_t npos;
  int rc = sorted_pairs(what, s, l, n, &p, &npos);
  if (rc) return rc;
  r->tp = malloc(sizeof *r->tp * (size_t)(n + 1));
  r->fp = malloc(sizeof *r->fp * (size_t)(n + 1));
  r->thr = malloc(sizeof *r->thr * (size_t)(n + 1));
  if (!r->tp || !r->fp || !r->thr) {
    free(p), roc_free(r);
    return cfx__fail(CFX_ENOMEM, "%s: out of memory for %lld scores", what, (long long)n);
  }
  r->npos = npos, r->nneg = n - npos;
  int64_t k = 0, tp = 0, fp = 0;
  for (int64_t i = 0; i < n;) {
    r->tp[k] = tp, r->fp[k] = fp, r->thr[k] = p[i].score, k++;
    int64_t j = i;
    while (j < n && p[j].score == p[i].score) tp += p[j].label, fp += !p[j].label, j++;
    i = j;
  }
  r->tp[k] = tp, r->fp[k] = fp, r->thr[k] = -INFINITY, k++;
  r->ncut = k;
  free(p);
  return 0;
}

static int check_target(const char *what, double t) {
  if (isnan(t)) return cfx__fail(CFX_EINVAL, "%s: a target is NaN", what);
  if (!(t >= 0 && t <= 1)) return cfx__fail(CFX_EINVAL, "%s: target %.17g, expected one in [0, 1]", what, t);
  return 0;
}

int cfx_metrics_eer(const double *scores, const uint8_t *labels, int64_t n, double *eer, double *threshold) {
  if (!eer) return cfx__fail(CFX_EINVAL, "eer: out is NULL");
  roc_cuts r;
  int rc = roc_make("eer", scores, labels, n, &r);
  if (rc) return rc;
  *eer = NAN;
  if (threshold) *threshold = NAN;
  if (r.npos > 0 && r.nneg > 0) {
    double P = (double)r.npos, N = (double)r.nneg;
    double f0 = 0, d0 = -1;
    for (int64_t k = 1; k < r.ncut; k++) {
      double f1 = (double)r.fp[k] / N, d1 = f1 - (1 - (double)r.tp[k] / P);
      if (d1 >= 0) {
        *eer = d1 == 0 ? f1 : f0 + d0 / (d0 - d1) * (f1 - f0);
        if (threshold) *threshold = r.thr[k];
        break;
      }
      f0 = f1, d0 = d1;
    }
  }
  roc_free(&r);
  return 0;
}

int cfx_metrics_tpr_at_fpr(const double *scores, const uint8_t *labels, int64_t n, const double *fprs, int64_t k,
                           double *tpr, double *threshold, double *fpr_out) {
  if (k < 0 || (k > 0 && !fprs)) return cfx__fail(CFX_EINVAL, "tpr_at_fpr: NULL targets");
  for (int64_t q = 0; q < k; q++)
    if (check_target("tpr_at_fpr", fprs[q])) return CFX_EINVAL;
  roc_cuts r;
  int rc = roc_make("tpr_at_fpr", scores, labels, n, &r);
  if (rc) return rc;
  double P = (double)r.npos, N = (double)r.nneg;
  for (int64_t q = 0; q < k; q++) {
    double t = NAN, tr = NAN, fr = NAN;
    if (r.nneg > 0) {
      /* the last cut with fp / N <= target (fp grows with the cut) */
      int64_t lo = 0, hi = r.ncut - 1;
      while (lo < hi) {
        int64_t mid = hi - (hi - lo) / 2;
        if ((double)r.fp[mid] / N <= fprs[q]) lo = mid;
        else hi = mid - 1;
      }
      t = r.thr[lo], fr = (double)r.fp[lo] / N;
      if (r.npos > 0) tr = (double)r.tp[lo] / P;
    }
    if (tpr) tpr[q] = tr;
    if (threshold) threshold[q] = t;
    if (fpr_out) fpr_out[q] = fr;
  }
  roc_free(&r);
  return 0;
}

int cfx_metrics_fpr_at_tpr(const double *scores, const uint8_t *labels, int64_t n, const double *tprs, int64_t k,
                           double *fpr, double *threshold) {
  if (k < 0 || (k > 0 && !tprs)) return cfx__fail(CFX_EINVAL, "fpr_at_tpr: NULL targets");
  for (int64_t q = 0; q < k; q++)
    if (check_target("fpr_at_tpr", tprs[q])) return CFX_EINVAL;
  roc_cuts r;
  int rc = roc_make("fpr_at_tpr", scores, labels, n, &r);
  if (rc) return rc;
  double P = (double)r.npos, N = (double)r.nneg;
  for (int64_t q = 0; q < k; q++) {
    double f = NAN, t = NAN;
    if (r.npos > 0 && r.nneg > 0) {
      /* the first cut with tp / P >= target */
      int64_t lo = 0, hi = r.ncut - 1;
      while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((double)r.tp[mid] / P >= tprs[q]) hi = mid;
        else lo = mid + 1;
      }
      f = (double)r.fp[lo] / N, t = r.thr[lo];
    }
    if (fpr) fpr[q] = f;
    if (threshold) threshold[q] = t;
  }
  roc_free(&r);
  return 0;
}

int cfx_metrics_balanced_accuracy(const double *scores, const uint8_t *labels, int64_t n, double threshold,
                                  double *out) {
  if (!out) return cfx__fail(CFX_EINVAL, "balanced_accuracy: out is NULL");
  if (isnan(threshold)) return cfx__fail(CFX_EINVAL, "balanced_accuracy: the threshold is NaN");
  int rc = check_inputs("balanced_accuracy", scores, labels, n, 0);
  if (rc) return rc;
  int64_t P = 0, N = 0, tp = 0, tn = 0;
  for (int64_t i = 0; i < n; i++) {
    int pred = scores[i] > threshold;
    if (labels[i]) P++, tp += pred;
    else N++, tn += !pred;
  }
  *out = P && N ? ((double)tn / (double)N + (double)tp / (double)P) / 2 : NAN;
  return 0;
}

int cfx_metrics_threshold_best_balanced(const double *scores, const uint8_t *labels, int64_t n, double *threshold,
                                        double *ba) {
  if (!threshold || !ba) return cfx__fail(CFX_EINVAL, "threshold_best_balanced: NULL output");
  roc_cuts r;
  int rc = roc_make("threshold_best_balanced", scores, labels, n, &r);
  if (rc) return rc;
  *threshold = *ba = NAN;
  if (r.npos > 0 && r.nneg > 0) {
    double P = (double)r.npos, N = (double)r.nneg, best = -1;
    /* the cuts at the distinct scores, highest threshold first: a tie goes to the later */
    for (int64_t k = 0; k + 1 < r.ncut; k++) {
      double v = ((double)(r.nneg - r.fp[k]) / N + (double)r.tp[k] / P) / 2;
      if (v >= best) best = v, *threshold = r.thr[k];
    }
    *ba = best;
  }
  roc_free(&r);
  return 0;
}

/* ---- bootstrap ---------------------------------------------------------------------------- */

/* cfx_rng_next's xoshiro256** step, inlined (the call through the library's PLT took
 * half the time of a draw); the same numbers, from the same state. */
static inline uint64_t rng_next(cfx_rng *r) {
  uint64_t *s = r->s, x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = (s[3] << 45) | (s[3] >> 19);
  return result;
}

/* an index below m: the high half of the 128-bit product (Lemire's multiply-shift) */
static inline int64_t below(cfx_rng *rng, int64_t m) {
  return (int64_t)(((unsigned __int128)rng_next(rng) * (uint64_t)m) >> 64);
}

/* A unit (a group with fakes).  Slots: every image's place in its segment, input order
 * within it (segment g: group g's fakes; ngroups + g: its reals; 2 ngroups: every real,
 * the pool); run[slot]: the index of its score among the distinct scores of its
 * segment (fakes descending, reals ascending). */
typedef struct {
  int64_t f0, nf;   /* its fakes: slots f0 .. f0+nf */
  int64_t fr0, nfr; /* its fake runs: lo[fr0 .. fr0+nfr) */
  int64_t r0, nr;   /* its reals (own, or the pool's): slots */
  int64_t nrr;      /* their runs */
  int64_t fa, rb;   /* fake runs above the threshold, real runs at or below it */
  int pooled;
} bunit;

/* c[0..nruns) = how often each run occurs among slots s0 .. s0+len (all of them, or len
 * draws with replacement when rng is set) */
static void run_counts(cfx_rng *rng, const int32_t *run, int64_t s0, int64_t len, int64_t *c, int64_t nruns) {
  memset(c, 0, sizeof *c * (size_t)nruns);
  if (rng) {
    cfx_rng st = *rng; /* a local copy stays in registers */
    const int32_t *rs = run + s0;
    for (int64_t t = 0; t < len; t++) c[rs[below(&st, len)]]++;
    *rng = st;
  } else
    for (int64_t t = 0; t < len; t++) c[run[s0 + t]]++;
}

/* sfx[r] = reals in runs >= r, r = 0..nruns */
static void suffix(const int64_t *c, int64_t nruns, int64_t *sfx) {
  sfx[nruns] = 0;
  for (int64_t r = nruns - 1; r >= 0; r--) sfx[r] = sfx[r + 1] + c[r];
}

/* AP and accuracy of a unit from its fake-run counts cf (descending scores) and its
 * reals' suffix counts sfx: group_metrics' sums, weighted. */
static void unit_eval(const bunit *u, const int64_t *lo, const int64_t *cf, const int64_t *sfx, double *ap,
                      double *acc) {
  int64_t tp = 0, okf = 0, nr = sfx[0];
  double a = 0;
  for (int64_t k = 0; k < u->nfr; k++) {
    int64_t c = cf[k];
    if (!c) continue;
    tp += c;
    if (k < u->fa) okf += c;
    a += (double)c * (double)tp / (double)(tp + sfx[lo[u->fr0 + k]]);
  }
  *ap = nr ? a / (double)u->nf : NAN;
  *acc = (double)(okf + (nr - sfx[u->rb])) / (double)(u->nf + nr);
}

static void interval(const double *reps, int64_t R, double level, double *lo, double *hi, double *se) {
  *lo = *hi = *se = NAN;
  for (int64_t i = 0; i < R; i++)
    if (isnan(reps[i])) return;
  double *s = sorted_copy(reps, R);
  if (!s) return;
  *lo = np_quantile(s, R, (1 - level) / 2), *hi = np_quantile(s, R, (1 + level) / 2);
  free(s);
  if (R > 1) {
    double m = 0, ss = 0;
    for (int64_t i = 0; i < R; i++) m += reps[i];
    m /= (double)R;
    for (int64_t i = 0; i < R; i++) ss += (reps[i] - m) * (reps[i] - m);
    *se = sqrt(ss / (double)(R - 1));
  }
}

int cfx_metrics_bootstrap(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
                          int32_t ngroups, const cfx_bootstrap_opts *opts, cfx_bootstrap_result *out,
                          double *map_reps, double *acc_reps) {
  if (n < 0 || ngroups < 0 || (n > 0 && (!scores || !labels || !groups)) || !opts || !out)
    return cfx__fail(CFX_EINVAL, "bootstrap: NULL argument");
  if (opts->resamples < 1)
    return cfx__fail(CFX_EINVAL, "bootstrap: %lld resamples, expected at least 1", (long long)opts->resamples);
  if (!(opts->level > 0 && opts->level < 1))
    return cfx__fail(CFX_EINVAL, "bootstrap: level %.17g, expected one in (0, 1)", opts->level);
  if (isnan(opts->threshold)) return cfx__fail(CFX_EINVAL, "bootstrap: the threshold is NaN");
  int rc = check_inputs("bootstrap", scores, labels, n, 0);
  if (rc) return rc;
  for (int64_t i = 0; i < n; i++)
    if (groups[i] < 0 || groups[i] >= ngroups)
      return cfx__fail(CFX_EINVAL, "bootstrap: group %lld is %d, expected 0..%d", (long long)i, groups[i],
                       ngroups - 1);
  const double thr = opts->threshold;
  const int64_t R = opts->resamples;
  const int32_t nseg = 2 * ngroups + 1, pool = 2 * ngroups;
  int64_t nreal = 0;
  for (int64_t i = 0; i < n; i++) nreal += !labels[i];
  const int64_t m = n + nreal;
  size_t mm = (size_t)(m ? m : 1);
  int64_t *segoff = calloc((size_t)nseg + 1, sizeof *segoff), *runoff = calloc((size_t)nseg + 1, sizeof *runoff);
  int64_t *fill = malloc(sizeof *fill * (size_t)nseg), *order = malloc(sizeof *order * mm);
  int32_t *seg = malloc(sizeof *seg * mm), *run = malloc(sizeof *run * mm);
  double *slotscore = malloc(sizeof *slotscore * mm), *runscore = malloc(sizeof *runscore * mm);
  int64_t *lo = malloc(sizeof *lo * mm);
  rec *r = malloc(sizeof *r * mm);
  bunit *units = malloc(sizeof *units * (size_t)(ngroups ? ngroups : 1));
  int64_t *cf = NULL, *cr = NULL, *sfx = NULL, *psfx = NULL;
  double *mrep = NULL, *arep = NULL, *uap = NULL, *uacc = NULL;
  if (!segoff || !runoff || !fill || !order || !seg || !run || !slotscore || !runscore || !lo || !r || !units) goto nomem;

  /* slots, input order within each segment */
  for (int64_t i = 0; i < n; i++) segoff[(labels[i] ? groups[i] : ngroups + groups[i]) + 1]++;
  segoff[pool + 1] = nreal;
  for (int32_t s = 0; s < nseg; s++) segoff[s + 1] += segoff[s];
  memcpy(fill, segoff, sizeof *fill * (size_t)nseg);
  for (int64_t i = 0; i < n; i++) {
    int32_t s = labels[i] ? groups[i] : ngroups + groups[i];
    int64_t a = fill[s]++;
    seg[a] = s, slotscore[a] = scores[i];
    r[a].key = labels[i] ? ~score_key(scores[i]) : score_key(scores[i]), r[a].val = (uint64_t)a;
    if (!labels[i]) {
      int64_t b = fill[pool]++;
      seg[b] = pool, slotscore[b] = scores[i], r[b].key = score_key(scores[i]), r[b].val = (uint64_t)b;
    }
  }
  /* sorted by key, then stably by segment: order[segoff[s] ..] is segment s in key order */
  if (radix_sort(r, m)) goto nomem;
  memcpy(fill, segoff, sizeof *fill * (size_t)nseg);
  for (int64_t i = 0; i < m; i++) order[fill[seg[r[i].val]]++] = (int64_t)r[i].val;
  free(r), r = NULL;
  int64_t nrun = 0;
  for (int32_t s = 0; s < nseg; s++) {
    runoff[s] = nrun;
    for (int64_t i = segoff[s]; i < segoff[s + 1]; i++) {
      double v = slotscore[order[i]];
      if (i == segoff[s] || v != runscore[nrun - 1]) runscore[nrun++] = v;
      run[order[i]] = (int32_t)(nrun - 1 - runoff[s]);
    }
  }
  runoff[nseg] = nrun;

  /* units */
  int32_t U = 0;
  int64_t max_fr = 1, max_rr = runoff[pool + 1] - runoff[pool] + 1;
  int any_pool = 0;
  for (int32_t g = 0; g < ngroups; g++) {
    if (segoff[g + 1] == segoff[g]) continue;
    bunit *u = &units[U++];
    int32_t rs = segoff[ngroups + g + 1] > segoff[ngroups + g] ? ngroups + g : pool;
    u->f0 = segoff[g], u->nf = segoff[g + 1] - segoff[g];
    u->fr0 = runoff[g], u->nfr = runoff[g + 1] - runoff[g];
    u->r0 = segoff[rs], u->nr = segoff[rs + 1] - segoff[rs];
    u->nrr = runoff[rs + 1] - runoff[rs];
    u->pooled = rs == pool, any_pool |= u->pooled;
    const double *rsc = runscore + runoff[rs];
    u->fa = 0;
    for (int64_t k = 0; k < u->nfr; k++) {
      double v = runscore[u->fr0 + k];
      lo[u->fr0 + k] = lower_bound(rsc, u->nrr, v); /* real runs below v */
      if (v > thr) u->fa = k + 1;
    }
    u->rb = upper_bound(rsc, u->nrr, thr);
    if (u->nfr > max_fr) max_fr = u->nfr;
    if (u->nrr + 1 > max_rr) max_rr = u->nrr + 1;
  }
  cf = malloc(sizeof *cf * (size_t)max_fr), cr = malloc(sizeof *cr * (size_t)max_rr);
  sfx = malloc(sizeof *sfx * (size_t)max_rr), psfx = malloc(sizeof *psfx * (size_t)max_rr);
  mrep = map_reps ? map_reps : malloc(sizeof *mrep * (size_t)R);
  arep = acc_reps ? acc_reps : malloc(sizeof *arep * (size_t)R);
  uap = malloc(sizeof *uap * (size_t)(U ? U : 1)), uacc = malloc(sizeof *uacc * (size_t)(U ? U : 1));
  if (!cf || !cr || !sfx || !psfx || !mrep || !arep || !uap || !uacc) goto nomem;

  /* the data's own metrics (every image once) */
  const int64_t pr0 = segoff[pool], pnrr = runoff[pool + 1] - runoff[pool];
  const int32_t *prun = run;
  run_counts(NULL, prun, pr0, nreal, cr, pnrr);
  suffix(cr, pnrr, psfx);
  double map = 0, macc = 0;
  for (int32_t k = 0; k < U; k++) {
    const bunit *u = &units[k];
    run_counts(NULL, run, u->f0, u->nf, cf, u->nfr);
    const int64_t *sf = psfx;
    if (!u->pooled) run_counts(NULL, run, u->r0, u->nr, cr, u->nrr), suffix(cr, u->nrr, sfx), sf = sfx;
    unit_eval(u, lo, cf, sf, &uap[k], &uacc[k]);
    map += uap[k], macc += uacc[k];
  }
  out->map = U && nreal ? map / U : NAN;
  out->acc = U ? macc / U : NAN;

  /* the resamples */
  cfx_rng rng;
  cfx_rng_seed(&rng, opts->seed);
  for (int64_t b = 0; b < R; b++) {
    if (U == 0) {
      mrep[b] = arep[b] = NAN;
      continue;
    }
    if (opts->nested && any_pool && nreal > 0) run_counts(&rng, prun, pr0, nreal, cr, pnrr), suffix(cr, pnrr, psfx);
    double sa = 0, sc = 0;
    for (int32_t i = 0; i < U; i++) {
      int64_t k = below(&rng, U);
      double ap, acc;
      if (!opts->nested) {
        ap = uap[k], acc = uacc[k];
      } else {
        const bunit *u = &units[k];
        run_counts(&rng, run, u->f0, u->nf, cf, u->nfr);
        const int64_t *sf = psfx;
        if (!u->pooled) run_counts(&rng, run, u->r0, u->nr, cr, u->nrr), suffix(cr, u->nrr, sfx), sf = sfx;
        unit_eval(u, lo, cf, sf, &ap, &acc);
      }
      sa += ap, sc += acc;
    }
    mrep[b] = nreal ? sa / U : NAN;
    arep[b] = sc / U;
  }
  interval(mrep, R, opts->level, &out->map_lo, &out->map_hi, &out->map_se);
  interval(arep, R, opts->level, &out->acc_lo, &out->acc_hi, &out->acc_se);
  out->n_units = U, out->resamples = R;
  goto done;
nomem:
  rc = cfx__fail(CFX_ENOMEM, "bootstrap: out of memory for %lld scores", (long long)n);
done:
  free(segoff), free(runoff), free(fill), free(order), free(seg), free(run), free(slotscore), free(runscore);
  free(lo), free(r), free(units), free(cf), free(cr), free(sfx), free(psfx), free(uap), free(uacc);
  if (mrep != map_reps) free(mrep);
  if (arep != acc_reps) free(arep);
  return rc;
}
