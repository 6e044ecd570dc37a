/* test_h5log.c: results files.  A round trip of runs, attributes, appended and whole
 * tables and arrays through a close and a reopen; int64 columns that become float64;
 * truncation for resume; the flush interval; the writer's lock and the removal of
 * stale temporary files; refusals of files that are not results files (missing,
 * empty, garbage, a store, a truncated results file, a directory); merging with the
 * "done, then newest" rule. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfx/cfx.h"
#include "check.h"

static char dir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) {
    if (n) fwrite(data, 1, n, f);
    fclose(f);
  }
}

/* The string attribute key of a node, or NULL. */
static const char *sattr(const cfx_h5log *log, const char *run, const char *path, const char *key) {
  int n = 0;
  if (cfx_h5log_num_attrs(log, run, path, &n)) return NULL;
  for (int i = 0; i < n; i++) {
    const char *k = NULL, *s = NULL;
    int type = -1;
    if (cfx_h5log_attr(log, run, path, i, &k, &type, NULL, NULL, &s)) return NULL;
    if (!strcmp(k, key)) return type == CFX_H5LOG_STRING ? s : NULL;
  }
  return NULL;
}

/* A numeric attribute as a double (type in *type), NAN when absent. */
static double nattr(const cfx_h5log *log, const char *run, const char *path, const char *key, int *type) {
  int n = 0;
  *type = -1;
  if (cfx_h5log_num_attrs(log, run, path, &n)) return NAN;
  for (int i = 0; i < n; i++) {
    const char *k = NULL;
    int64_t iv = 0;
    double fv = 0;
    if (cfx_h5log_attr(log, run, path, i, &k, type, &iv, &fv, NULL)) return NAN;
    if (!strcmp(k, key)) return *type == CFX_H5LOG_INT64 ? (double)iv : fv;
  }
  return NAN;
}

static int append_train(cfx_h5log *log, const char *run, int64_t step, double loss, double lr) {
  const char *names[4] = {"step", "loss", "lr", "phase"};
  int types[4] = {CFX_H5LOG_INT64, CFX_H5LOG_FLOAT64, CFX_H5LOG_FLOAT64, CFX_H5LOG_STRING};
  int64_t iv[4] = {step, 0, 0, 0};
  double fv[4] = {0, loss, lr, 0};
  const char *sv[4] = {NULL, NULL, NULL, step % 2 ? "odd" : "even"};
  return cfx_h5log_append(log, run, "train", 4, names, types, iv, fv, sv);
}

static void test_round_trip(void) {
  char path[512];
  path_in(path, sizeof path, "rt.h5");
  cfx_h5log *log = NULL;
  CHECK_OK(cfx_h5log_open(path, 0, &log));
  CHECK(file_exists(path)); /* a new log is on disk from the start */
  int created = -1;
  CHECK_OK(cfx_h5log_add_run(log, "k=3,s=1", &created));
  CHECK(created == 1);
  CHECK_OK(cfx_h5log_add_run(log, "k=3,s=1", &created));
  CHECK(created == 0);
  CHECK_OK(cfx_h5log_add_run(log, "second", NULL));
  CHECK_OK(cfx_h5log_set_attr_string(log, "k=3,s=1", NULL, "config", "{\"k\":3,\"lr\":2e-05}"));
  CHECK_OK(cfx_h5log_set_attr_string(log, "k=3,s=1", "", "status", "running"));
  CHECK_OK(cfx_h5log_set_attr_int(log, "k=3,s=1", NULL, "seed", 7));
  CHECK_OK(cfx_h5log_set_attr_float(log, "k=3,s=1", NULL, "lr", 2e-5));
  CHECK_OK(cfx_h5log_set_attr_string(log, "k=3,s=1", NULL, "status", "done")); /* replaces */
  CHECK(cfx_h5log_set_attr_string(log, "k=3,s=1", NULL, "updated", "x") == CFX_EINVAL);
  CHECK(cfx_h5log_set_attr_string(log, "nope", NULL, "a", "x") == CFX_ENOTFOUND);
  CHECK(cfx_h5log_add_run(log, "a/b", NULL) == CFX_EINVAL);
  CHECK(cfx_h5log_add_run(log, "..", NULL) == CFX_EINVAL);
  CHECK(cfx_h5log_add_run(log, "", NULL) == CFX_EINVAL);

  for (int64_t s = 1; s <= 1000; s++) CHECK_OK(append_train(log, "k=3,s=1", s, 1.0 / (double)s, 1e-3 * (double)s));
  /* the same columns in another order are fine; missing, extra and mistyped ones not */
  {
    const char *names[4] = {"phase", "lr", "loss", "step"};
    int types[4] = {CFX_H5LOG_STRING, CFX_H5LOG_FLOAT64, CFX_H5LOG_FLOAT64, CFX_H5LOG_INT64};
    int64_t iv[4] = {0, 0, 0, 1001};
    double fv[4] = {0, 1.001, 1.0 / 1001, 0};
    const char *sv[4] = {"odd", NULL, NULL, NULL};
    CHECK_OK(cfx_h5log_append(log, "k=3,s=1", "train", 4, names, types, iv, fv, sv));
    CHECK(cfx_h5log_append(log, "k=3,s=1", "train", 3, names, types, iv, fv, sv) == CFX_EINVAL);
    const char *other[4] = {"phase", "lr", "loss", "epoch"};
    CHECK(cfx_h5log_append(log, "k=3,s=1", "train", 4, other, types, iv, fv, sv) == CFX_EINVAL);
    CHECK_CONTAINS(cfx_last_error(), "no column 'epoch'");
    int bad[4] = {CFX_H5LOG_FLOAT64, CFX_H5LOG_FLOAT64, CFX_H5LOG_FLOAT64, CFX_H5LOG_INT64};
    CHECK(cfx_h5log_append(log, "k=3,s=1", "train", 4, names, bad, iv, fv, sv) == CFX_EDTYPE);
    const char *twice[4] = {"phase", "lr", "lr", "step"};
    CHECK(cfx_h5log_append(log, "k=3,s=1", "train", 4, twice, types, iv, fv, sv) == CFX_EINVAL);
  }
  /* an int64 column that receives a fraction becomes float64 */
  {
    const char *names[2] = {"step", "x"};
    int types[2] = {CFX_H5LOG_INT64, CFX_H5LOG_INT64};
    int64_t iv[2] = {1, 5};
    CHECK_OK(cfx_h5log_append(log, "second", "val", 2, names, types, iv, NULL, NULL));
    int ft[2] = {CFX_H5LOG_INT64, CFX_H5LOG_FLOAT64};
    double fv[2] = {0, 2.0}; /* integral: stays int64 */
    iv[0] = 2;
    CHECK_OK(cfx_h5log_append(log, "second", "val", 2, names, ft, iv, fv, NULL));
    fv[1] = 0.25;
    iv[0] = 3;
    CHECK_OK(cfx_h5log_append(log, "second", "val", 2, names, ft, iv, fv, NULL));
    iv[0] = 4, iv[1] = 9;
    CHECK_OK(cfx_h5log_append(log, "second", "val", 2, names, types, iv, NULL, NULL));
  }
  /* an eval table written whole, with a summary as its attributes */
  {
    const char *gens[3] = {"biggan", "sd-1.5", "d\xc3\xa9j\xc3\xa0"};
    const char *arch[3] = {"GAN", "LatDiff", "other"};
    int64_t nreal[3] = {100, 100, 50}, nfake[3] = {40, 60, 0};
    double ap[3] = {0.91, 0.75, NAN};
    const char *names[5] = {"generator", "architecture", "n_real", "n_fake", "ap"};
    int types[5] = {CFX_H5LOG_STRING, CFX_H5LOG_STRING, CFX_H5LOG_INT64, CFX_H5LOG_INT64, CFX_H5LOG_FLOAT64};
    const void *cols[5] = {gens, arch, nreal, nfake, ap};
    CHECK_OK(cfx_h5log_write_table(log, "k=3,s=1", "eval/synth", 5, names, types, 3, cols));
    CHECK_OK(cfx_h5log_set_attr_float(log, "k=3,s=1", "eval/synth", "mean_ap", 0.83));
    CHECK_OK(cfx_h5log_write_table(log, "k=3,s=1", "eval/empty", 5, names, types, 0, NULL));
  }
  /* prediction arrays, an embedding matrix and a scalar */
  enum { NP = 5000, D = 7 };
  float *score = malloc(sizeof *score * NP), *emb = malloc(sizeof *emb * NP * D);
  uint8_t *label = malloc(NP);
  int32_t *gen = malloc(sizeof *gen * NP);
  for (int i = 0; i < NP; i++) {
    score[i] = (float)i / NP - 0.5f, label[i] = (uint8_t)(i % 2), gen[i] = i % 13;
    for (int d = 0; d < D; d++) emb[i * D + d] = (float)(i * D + d);
  }
  int64_t n1[1] = {NP}, n2[2] = {NP, D};
  CHECK_OK(cfx_h5log_set_array(log, "k=3,s=1", "predictions/synth/score", CFX_H5LOG_FLOAT32, n1, 1, score));
  CHECK_OK(cfx_h5log_set_array(log, "k=3,s=1", "predictions/synth/label", CFX_H5LOG_UINT8, n1, 1, label));
  CHECK_OK(cfx_h5log_set_array(log, "k=3,s=1", "predictions/synth/generator", CFX_H5LOG_INT32, n1, 1, gen));
  CHECK_OK(cfx_h5log_set_array(log, "k=3,s=1", "predictions/synth/embeddings", CFX_H5LOG_FLOAT32, n2, 2, emb));
  double pi = 3.25;
  CHECK_OK(cfx_h5log_set_array(log, "second", "scalar", CFX_H5LOG_FLOAT64, NULL, 0, &pi));
  CHECK(cfx_h5log_set_array(log, "second", "s", CFX_H5LOG_STRING, n1, 1, score) == CFX_EDTYPE);
  /* a table cannot hold children, an array cannot be appended to */
  CHECK(cfx_h5log_set_array(log, "k=3,s=1", "train/x", CFX_H5LOG_FLOAT32, n1, 1, score) == CFX_EINVAL);
  CHECK(append_train(log, "second", 1, 0, 0) == 0);
  CHECK(cfx_h5log_kind(log, "second", "scalar") == CFX_H5LOG_ARRAY);
  {
    const char *names[1] = {"step"};
    int types[1] = {CFX_H5LOG_INT64};
    int64_t iv[1] = {1};
    CHECK(cfx_h5log_append(log, "second", "scalar", 1, names, types, iv, NULL, NULL) == CFX_EINVAL);
  }
  CHECK_OK(cfx_h5log_remove(log, "second", "train"));
  CHECK(cfx_h5log_kind(log, "second", "train") == CFX_H5LOG_ABSENT);
  CHECK_OK(cfx_h5log_close(log));

  /* everything back, in a read-only log */
  CHECK_OK(cfx_h5log_open(path, CFX_H5LOG_READONLY, &log));
  if (!log) return;
  CHECK(cfx_h5log_num_runs(log) == 2);
  CHECK(cfx_h5log_run_id(log, 0) && !strcmp(cfx_h5log_run_id(log, 0), "k=3,s=1"));
  CHECK(cfx_h5log_run_id(log, 1) && !strcmp(cfx_h5log_run_id(log, 1), "second"));
  CHECK(cfx_h5log_run_id(log, 2) == NULL);
  const char *s = sattr(log, "k=3,s=1", NULL, "status");
  CHECK(s && !strcmp(s, "done"));
  s = sattr(log, "k=3,s=1", NULL, "config");
  CHECK(s && !strcmp(s, "{\"k\":3,\"lr\":2e-05}"));
  int type;
  CHECK(nattr(log, "k=3,s=1", NULL, "seed", &type) == 7 && type == CFX_H5LOG_INT64);
  CHECK(nattr(log, "k=3,s=1", NULL, "lr", &type) == 2e-5 && type == CFX_H5LOG_FLOAT64);
  const char *cr = sattr(log, "k=3,s=1", NULL, "created"), *up = sattr(log, "k=3,s=1", NULL, "updated");
  CHECK(cr && up && strlen(cr) == 27 && strlen(up) == 27 && strcmp(cr, up) <= 0);
  CHECK(nattr(log, "k=3,s=1", "eval/synth", "mean_ap", &type) == 0.83);
  CHECK(cfx_h5log_kind(log, "k=3,s=1", "eval") == CFX_H5LOG_GROUP);
  CHECK(cfx_h5log_kind(log, "k=3,s=1", "eval/synth") == CFX_H5LOG_TABLE);
  CHECK(cfx_h5log_kind(log, "k=3,s=1", "predictions/synth/score") == CFX_H5LOG_ARRAY);
  CHECK(cfx_h5log_kind(log, "nope", NULL) == CFX_H5LOG_ABSENT);
  char *kids = NULL;
  int64_t nk = 0;
  CHECK_OK(cfx_h5log_children(log, "k=3,s=1", "predictions/synth", &kids, &nk));
  CHECK(kids && nk == (int64_t)strlen("score label generator embeddings ") &&
        !memcmp(kids, "score\0label\0generator\0embeddings\0", (size_t)nk));
  cfx_free(kids);
  CHECK_OK(cfx_h5log_children(log, "k=3,s=1", NULL, &kids, &nk));
  CHECK(kids && !memcmp(kids, "train\0eval\0predictions\0", (size_t)nk));
  cfx_free(kids);

  int ncols = 0;
  int64_t nrows = 0;
  CHECK_OK(cfx_h5log_table_shape(log, "k=3,s=1", "train", &ncols, &nrows));
  CHECK(ncols == 4 && nrows == 1001);
  const char *name;
  const void *data;
  CHECK_OK(cfx_h5log_table_column(log, "k=3,s=1", "train", 0, &name, &type, &data));
  CHECK(!strcmp(name, "step") && type == CFX_H5LOG_INT64);
  int ok = 1;
  for (int64_t r = 0; r < nrows; r++) ok &= ((const int64_t *)data)[r] == r + 1;
  CHECK(ok);
  CHECK_OK(cfx_h5log_table_column(log, "k=3,s=1", "train", 1, &name, &type, &data));
  ok = !strcmp(name, "loss") && type == CFX_H5LOG_FLOAT64;
  for (int64_t r = 0; r < nrows; r++) ok &= ((const double *)data)[r] == 1.0 / (double)(r + 1);
  CHECK(ok);
  CHECK_OK(cfx_h5log_table_column(log, "k=3,s=1", "train", 3, &name, &type, &data));
  ok = !strcmp(name, "phase") && type == CFX_H5LOG_STRING;
  for (int64_t r = 0; r < nrows; r++) ok &= !strcmp(((const char *const *)data)[r], (r + 1) % 2 ? "odd" : "even");
  CHECK(ok);
  CHECK(cfx_h5log_table_column(log, "k=3,s=1", "train", 4, &name, &type, &data) == CFX_ERANGE);

  CHECK_OK(cfx_h5log_table_shape(log, "second", "val", &ncols, &nrows));
  CHECK(ncols == 2 && nrows == 4);
  CHECK_OK(cfx_h5log_table_column(log, "second", "val", 1, &name, &type, &data));
  CHECK(type == CFX_H5LOG_FLOAT64);
  if (type == CFX_H5LOG_FLOAT64) {
    const double *x = data;
    CHECK(x[0] == 5 && x[1] == 2 && x[2] == 0.25 && x[3] == 9);
  }
  CHECK_OK(cfx_h5log_table_column(log, "second", "val", 0, &name, &type, &data));
  CHECK(type == CFX_H5LOG_INT64 && ((const int64_t *)data)[3] == 4);

  CHECK_OK(cfx_h5log_table_shape(log, "k=3,s=1", "eval/synth", &ncols, &nrows));
  CHECK(ncols == 5 && nrows == 3);
  CHECK_OK(cfx_h5log_table_column(log, "k=3,s=1", "eval/synth", 0, &name, &type, &data));
  CHECK(type == CFX_H5LOG_STRING && !strcmp(((const char *const *)data)[2], "d\xc3\xa9j\xc3\xa0"));
  CHECK_OK(cfx_h5log_table_column(log, "k=3,s=1", "eval/synth", 4, &name, &type, &data));
  CHECK(((const double *)data)[0] == 0.91 && isnan(((const double *)data)[2]));
  CHECK_OK(cfx_h5log_table_shape(log, "k=3,s=1", "eval/empty", &ncols, &nrows));
  CHECK(ncols == 5 && nrows == 0);

  int64_t dims[8];
  int nd = -1;
  CHECK_OK(cfx_h5log_array(log, "k=3,s=1", "predictions/synth/embeddings", &type, dims, 8, &nd, &data));
  CHECK(type == CFX_H5LOG_FLOAT32 && nd == 2 && dims[0] == NP && dims[1] == D &&
        !memcmp(data, emb, sizeof *emb * NP * D));
  CHECK_OK(cfx_h5log_array(log, "k=3,s=1", "predictions/synth/label", &type, dims, 8, &nd, &data));
  CHECK(type == CFX_H5LOG_UINT8 && nd == 1 && dims[0] == NP && !memcmp(data, label, NP));
  CHECK_OK(cfx_h5log_array(log, "k=3,s=1", "predictions/synth/generator", &type, dims, 8, &nd, &data));
  CHECK(type == CFX_H5LOG_INT32 && !memcmp(data, gen, sizeof *gen * NP));
  CHECK_OK(cfx_h5log_array(log, "second", "scalar", &type, dims, 8, &nd, &data));
  CHECK(type == CFX_H5LOG_FLOAT64 && nd == 0 && *(const double *)data == 3.25);
  /* read-only means read-only */
  CHECK(cfx_h5log_add_run(log, "x", NULL) == CFX_EINVAL);
  CHECK(append_train(log, "k=3,s=1", 1002, 0, 0) == CFX_EINVAL);
  CHECK_OK(cfx_h5log_close(log));
  free(score), free(emb), free(label), free(gen);
}

static void test_truncate_and_flushing(void) {
  char path[512], tmp1[600], tmp2[600], lock[600];
  path_in(path, sizeof path, "resume.h5");
  snprintf(tmp1, sizeof tmp1, "%s.4242.tmp", path);
  snprintf(tmp2, sizeof tmp2, "%s.x42.tmp", path);
  snprintf(lock, sizeof lock, "%s.lock", path);
  cfx_h5log *log = NULL;
  CHECK_OK(cfx_h5log_open(path, 0, &log));
  CHECK(file_exists(lock));
  /* one writer at a time, also within one process */
  cfx_h5log *second = NULL;
  CHECK(cfx_h5log_open(path, 0, &second) == CFX_EIO && second == NULL);
  CHECK_CONTAINS(cfx_last_error(), "another process");
  CHECK_OK(cfx_h5log_add_run(log, "r", NULL));
  int64_t flushes = -1, before;
  CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
  before = flushes;
  for (int64_t s = 1; s <= 10; s++) CHECK_OK(append_train(log, "r", s, (double)s, 0));
  CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
  CHECK(flushes == before); /* within the default 10 s: no flush yet */
  CHECK_OK(cfx_h5log_set_flush_interval(log, 0));
  CHECK_OK(append_train(log, "r", 11, 11, 0));
  CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
  CHECK(flushes == before + 1); /* interval 0: every change */
  CHECK_OK(cfx_h5log_set_flush_interval(log, -1));
  CHECK_OK(append_train(log, "r", 12, 12, 0));
  CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
  CHECK(flushes == before + 1);
  CHECK_OK(cfx_h5log_flush(log));
  CHECK_OK(cfx_h5log_flush(log)); /* nothing changed: no write */
  CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
  CHECK(flushes == before + 2);
  /* a flush that takes long paces the automatic ones: at most 1/20 of the time */
  {
    enum { BIG = 1 << 21 };
    float *big = calloc(BIG, sizeof *big);
    int64_t dims[1] = {BIG};
    double s0 = 0, s1 = 0;
    CHECK_OK(cfx_h5log_set_array(log, "r", "big", CFX_H5LOG_FLOAT32, dims, 1, big));
    CHECK_OK(cfx_h5log_stats(log, NULL, &s0));
    CHECK_OK(cfx_h5log_flush(log));
    CHECK_OK(cfx_h5log_stats(log, &flushes, &s1));
    int64_t f0 = flushes;
    CHECK_OK(cfx_h5log_set_flush_interval(log, 0.001));
    usleep(5000);
    CHECK_OK(append_train(log, "r", 13, 13, 0));
    CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
    CHECK(flushes == f0 || (s1 - s0) * 20 < 0.005); /* 5 ms > 1 ms, but < 20 x the last flush */
    CHECK_OK(cfx_h5log_set_flush_interval(log, 0));
    CHECK_OK(cfx_h5log_remove(log, "r", "big"));
    CHECK_OK(cfx_h5log_stats(log, &flushes, NULL));
    CHECK(flushes == f0 + 1); /* 0 still means every change */
    CHECK_OK(cfx_h5log_truncate(log, "r", "train", "step", 12, NULL));
    free(big);
  }
  CHECK_OK(cfx_h5log_close(log));
  CHECK(!file_exists(lock));

  /* a writer killed at step 12 resumes from its checkpoint at step 8 */
  write_bytes(tmp1, "partial", 7);
  write_bytes(tmp2, "not ours", 8);
  cfx_h5log *reader = NULL;
  CHECK_OK(cfx_h5log_open(path, CFX_H5LOG_READONLY, &reader));
  CHECK(file_exists(tmp1)); /* readers leave temporary files alone */
  CHECK_OK(cfx_h5log_close(reader));
  CHECK_OK(cfx_h5log_open(path, 0, &log));
  CHECK(!file_exists(tmp1) && file_exists(tmp2));
  int64_t removed = -1;
  CHECK_OK(cfx_h5log_truncate(log, "r", "train", "step", 8, &removed));
  CHECK(removed == 4);
  CHECK(cfx_h5log_truncate(log, "r", "train", "phase", 8, &removed) == CFX_EDTYPE);
  CHECK(cfx_h5log_truncate(log, "r", "train", "nope", 8, &removed) == CFX_EINVAL);
  CHECK(cfx_h5log_truncate(log, "r", "nope", "step", 8, &removed) == CFX_ENOTFOUND);
  for (int64_t s = 9; s <= 15; s++) CHECK_OK(append_train(log, "r", s, (double)s, 0));
  CHECK_OK(cfx_h5log_close(log));
  CHECK_OK(cfx_h5log_open(path, CFX_H5LOG_READONLY, &log));
  int ncols;
  int64_t nrows = 0;
  CHECK_OK(cfx_h5log_table_shape(log, "r", "train", &ncols, &nrows));
  CHECK(nrows == 15);
  const void *data = NULL;
  const char *name;
  int type;
  CHECK_OK(cfx_h5log_table_column(log, "r", "train", 0, &name, &type, &data));
  int ok = data != NULL;
  for (int64_t r = 0; ok && r < nrows; r++) ok &= ((const int64_t *)data)[r] == r + 1;
  CHECK(ok);
  CHECK_OK(cfx_h5log_table_column(log, "r", "train", 3, &name, &type, &data));
  ok = data != NULL;
  for (int64_t r = 0; ok && r < nrows; r++) ok &= !strcmp(((const char *const *)data)[r], (r + 1) % 2 ? "odd" : "even");
  CHECK(ok);
  cfx_h5log_close(log);
  unlink(tmp2);
}

static void test_bad_files(void) {
  char path[512], store[512];
  cfx_h5log *log = NULL;
  path_in(path, sizeof path, "missing.h5");
  CHECK(cfx_h5log_open(path, CFX_H5LOG_READONLY, &log) == CFX_ENOTFOUND && log == NULL);
  path_in(path, sizeof path, "empty.h5");
  write_bytes(path, "", 0);
  CHECK(cfx_h5log_open(path, 0, &log) == CFX_EFORMAT && log == NULL);
  CHECK_CONTAINS(cfx_last_error(), "empty.h5: not a cfx results file (not an HDF5 file");
  path_in(path, sizeof path, "garbage.h5");
  char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 131 + 7);
  write_bytes(path, junk, sizeof junk);
  CHECK(cfx_h5log_open(path, CFX_H5LOG_READONLY, &log) == CFX_EFORMAT && log == NULL);
  CHECK(cfx_h5log_open(path, CFX_H5LOG_TRUNCATE, &log) == CFX_EFORMAT && log == NULL); /* never clobbered */
  /* a store is an HDF5 file of another cfx_format */
  path_in(store, sizeof store, "store.h5");
  cfx_store_writer *w = NULL;
  int32_t g;
  CHECK_OK(cfx_store_writer_open(store, &w));
  CHECK_OK(cfx_store_writer_add_generator(w, "COCO", "real", "real", &g));
  CHECK_OK(cfx_store_writer_add(w, (const uint8_t *)"abc", 3, 0, g, -1, 1, 1, 0, 0, "x"));
  CHECK_OK(cfx_store_writer_finish(w));
  cfx_store_writer_free(w);
  CHECK(cfx_h5log_open(store, 0, &log) == CFX_EFORMAT && log == NULL);
  CHECK_CONTAINS(cfx_last_error(), "store.h5: not a cfx results file (root attribute cfx_format is \"store\"");
  CHECK(cfx_h5log_open(store, CFX_H5LOG_TRUNCATE, &log) == CFX_EFORMAT && log == NULL);
  CHECK(file_exists(store));
  path_in(path, sizeof path, "store.h5.lock");
  CHECK(!file_exists(path)); /* a refused open leaves no lock file behind */
  /* a results file cut short at every 1/8 of its length */
  path_in(path, sizeof path, "rt.h5");
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (f) {
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    char cut[512];
    path_in(cut, sizeof cut, "cut.h5");
    for (int k = 1; k < 8; k++) {
      write_bytes(cut, buf, (size_t)(n * k / 8));
      int rc = cfx_h5log_open(cut, CFX_H5LOG_READONLY, &log);
      CHECK(rc == CFX_EFORMAT && log == NULL);
      if (rc == 0) cfx_h5log_close(log), log = NULL;
      else CHECK_CONTAINS(cfx_last_error(), "cut.h5");
    }
    free(buf);
  }
  CHECK(cfx_h5log_open(dir, 0, &log) == CFX_EINVAL && log == NULL);
  CHECK_CONTAINS(cfx_last_error(), "is a directory");
  CHECK(cfx_h5log_open(NULL, 0, &log) == CFX_EINVAL);
  CHECK(cfx_h5log_close(NULL) == 0);
}

/* A file with runs (id, status) whose "updated" times follow the order given. */
static void make_file(const char *name, int n, const char *const *ids, const char *const *status, int64_t tag) {
  char path[512];
  path_in(path, sizeof path, name);
  cfx_h5log *log = NULL;
  CHECK_OK(cfx_h5log_open(path, CFX_H5LOG_TRUNCATE, &log));
  if (!log) return;
  for (int i = 0; i < n; i++) {
    CHECK_OK(cfx_h5log_add_run(log, ids[i], NULL));
    CHECK_OK(cfx_h5log_set_attr_string(log, ids[i], NULL, "status", status[i]));
    CHECK_OK(cfx_h5log_set_attr_int(log, ids[i], NULL, "tag", tag));
    const char *names[1] = {"step"};
    int types[1] = {CFX_H5LOG_INT64};
    CHECK_OK(cfx_h5log_append(log, ids[i], "train", 1, names, types, &tag, NULL, NULL));
    usleep(2000); /* distinct "updated" times */
  }
  CHECK_OK(cfx_h5log_close(log));
}

static void test_merge(void) {
  const char *ia[2] = {"r1", "r2"}, *sa[2] = {"running", "done"};
  const char *ib[2] = {"r1", "r3"}, *sb[2] = {"done", "running"};
  const char *ic[2] = {"r3", "r4"}, *sc[2] = {"failed", "running"};
  const char *ia2[1] = {"r2"}, *sa2[1] = {"done"};
  make_file("a.h5", 2, ia, sa, 1);
  make_file("b.h5", 2, ib, sb, 2);
  make_file("c.h5", 2, ic, sc, 3); /* r3 here is newer than in b.h5 */
  make_file("a2.h5", 1, ia2, sa2, 4); /* r2 done again, later */
  char a[512], b[512], c[512], a2[512], out[512];
  path_in(a, sizeof a, "a.h5"), path_in(b, sizeof b, "b.h5"), path_in(c, sizeof c, "c.h5");
  path_in(a2, sizeof a2, "a2.h5"), path_in(out, sizeof out, "merged.h5");
  const char *inputs[4] = {a, b, c, a2};
  cfx_h5log *dst = NULL;
  CHECK_OK(cfx_h5log_open(out, CFX_H5LOG_TRUNCATE, &dst));
  char *report = NULL;
  int64_t len = -1;
  CHECK_OK(cfx_h5log_merge(dst, 4, inputs, &report, &len));
  CHECK(report && len == (int64_t)strlen(report));
  if (report) {
    CHECK_CONTAINS(report, "run 'r1' is in 2 files: kept ");
    CHECK_CONTAINS(report, "b.h5 (status done");
    CHECK_CONTAINS(report, "run 'r3' is in 2 files");
    CHECK_CONTAINS(report, "run 'r2' is in 2 files");
    CHECK(strstr(report, "r4") == NULL);
  }
  cfx_free(report);
  CHECK_OK(cfx_h5log_close(dst));
  CHECK_OK(cfx_h5log_open(out, CFX_H5LOG_READONLY, &dst));
  if (!dst) return;
  CHECK(cfx_h5log_num_runs(dst) == 4);
  const char *want[4] = {"r1", "r2", "r3", "r4"};
  int64_t tags[4] = {2, 4, 3, 3};
  for (int i = 0; i < 4; i++) {
    CHECK(!strcmp(cfx_h5log_run_id(dst, i), want[i]));
    int type;
    CHECK(nattr(dst, want[i], NULL, "tag", &type) == (double)tags[i]);
    const void *data = NULL;
    const char *name;
    CHECK_OK(cfx_h5log_table_column(dst, want[i], "train", 0, &name, &type, &data));
    CHECK(data && ((const int64_t *)data)[0] == tags[i]);
  }
  const char *st = sattr(dst, "r1", NULL, "status");
  CHECK(st && !strcmp(st, "done"));
  /* copy_run replaces a run of the same id */
  cfx_h5log *src = NULL, *w = NULL;
  CHECK_OK(cfx_h5log_open(a, CFX_H5LOG_READONLY, &src));
  path_in(out, sizeof out, "copy.h5");
  CHECK_OK(cfx_h5log_open(out, 0, &w));
  CHECK_OK(cfx_h5log_copy_run(w, dst, "r1"));
  CHECK_OK(cfx_h5log_copy_run(w, src, "r1"));
  CHECK(cfx_h5log_copy_run(w, src, "r4") == CFX_ENOTFOUND);
  CHECK(cfx_h5log_num_runs(w) == 1);
  int type;
  CHECK(nattr(w, "r1", NULL, "tag", &type) == 1);
  CHECK(!strcmp(sattr(w, "r1", NULL, "updated"), sattr(src, "r1", NULL, "updated"))); /* kept */
  CHECK(cfx_h5log_merge(w, 1, (const char *const[]){"/nonexistent/x.h5"}, NULL, NULL) == CFX_ENOTFOUND);
  cfx_h5log_close(w), cfx_h5log_close(src), cfx_h5log_close(dst);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/cfx_h5log_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) return 1;
  test_round_trip();
  test_truncate_and_flushing();
  test_bad_files();
  test_merge();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_summary("test_h5log");
}
