/* test_store.c: the packed store: a round trip of thousands of images (bytes,
 * labels, generators, names identical), concurrent pread from two threads, atomic
 * finish (nothing at the path before finish, nothing left behind after abandoning a
 * writer), and refusals: missing file, not HDF5, a different cfx_format, a newer
 * cfx_version, a truncated file; generators' content sources (written, read, optional
 * in the file, two different ones for a generator refused). */
#define _GNU_SOURCE
#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfx/cfx.h"
#include "check.h"

enum { N = 3000 };

static char dir[256];
static uint8_t *payload[N];
static int64_t plen[N];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Deterministic pseudo-random payloads of varied sizes (0 included). */
static void make_payloads(void) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < N; i++) {
    plen[i] = i == 17 ? 0 : (int64_t)(x % 5000);
    payload[i] = malloc(plen[i] ? (size_t)plen[i] : 1);
    for (int64_t j = 0; j < plen[i]; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      payload[i][j] = (uint8_t)x;
    }
    x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
}

static void write_store(const char *path) {
  cfx_store_writer *w = NULL;
  CHECK_OK(cfx_store_writer_open(path, &w));
  int32_t real = -1, g[5];
  CHECK_OK(cfx_store_writer_add_generator(w, "COCO", "real", "real", &real));
  char name[64];
  for (int k = 0; k < 5; k++) {
    snprintf(name, sizeof name, "gen%d", k);
    CHECK_OK(cfx_store_writer_add_generator(w, name, k % 2 ? "GAN" : "LatDiff", "systematic", &g[k]));
  }
  int32_t again = -1;
  CHECK_OK(cfx_store_writer_add_generator(w, "gen3", "GAN", "systematic", &again));
  CHECK(again == g[3]);
  CHECK(cfx_store_writer_add_generator(w, "gen3", "LatDiff", "systematic", &again) == CFX_EINVAL);
  CHECK(cfx_store_writer_add(w, payload[0], plen[0], 2, real, -1, 1, 1, 1, 0, "x") == CFX_EINVAL);
  CHECK(cfx_store_writer_add(w, payload[0], plen[0], 0, 99, -1, 1, 1, 1, 0, "x") == CFX_ERANGE);
  CHECK(cfx_store_writer_add(w, payload[0], plen[0], 0, real, 6, 1, 1, 1, 0, "x") == CFX_ERANGE);
  CHECK_CONTAINS(cfx_last_error(), "evaluation group 6");
  CHECK(cfx_store_writer_add(w, payload[0], plen[0], 0, real, -2, 1, 1, 1, 0, "x") == CFX_ERANGE);
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "image-%05d.png", i);
    int label = i % 3 != 0;
    /* reals: every 2nd in gen(i % 5)'s group, the others in none; a fake's group given as
     * -1 or another row is its own generator all the same */
    int32_t group = label ? (i % 4 ? -1 : g[0]) : (i % 2 ? g[i % 5] : -1);
    CHECK_OK(cfx_store_writer_add(w, payload[i], plen[i], label, label ? g[i % 5] : real, group, 100 + i, 200 + i % 7,
                                  i % 2 ? CFX_IMAGE_JPEG : CFX_IMAGE_PNG, i == 5 ? CFX_STORE_FLAG_UNREADABLE : 0,
                                  i == 9 ? NULL : name));
  }
  CHECK_OK(cfx_store_writer_set_attr(w, "source", "test_store"));
  CHECK(cfx_store_writer_set_attr(w, "cfx_version", "7") == CFX_EINVAL);
  CHECK(cfx_store_writer_count(w) == N);
  CHECK(!file_exists(path)); /* nothing at the path before finish */
  CHECK_OK(cfx_store_writer_finish(w));
  CHECK(cfx_store_writer_finish(w) == CFX_EINVAL);
  cfx_store_writer_free(w);
}

struct reader_arg {
  const cfx_store *s;
  int start, step, bad;
};

static void *reader(void *p) {
  struct reader_arg *a = p;
  uint8_t *buf = malloc(8192);
  for (int i = a->start; i >= 0 && i < N; i += a->step) {
    int64_t n = 0;
    if (cfx_store_read(a->s, i, buf, 8192, &n) != 0 || n != plen[i] || memcmp(buf, payload[i], (size_t)n) != 0)
      a->bad++;
  }
  free(buf);
  return NULL;
}

static void test_round_trip(void) {
  char path[512];
  path_in(path, sizeof path, "round.h5");
  write_store(path);
  cfx_store *s = NULL;
  CHECK_OK(cfx_store_open(path, &s));
  if (!s) return;
  CHECK(cfx_store_count(s) == N);
  CHECK(cfx_store_num_generators(s) == 6);
  CHECK(strcmp(cfx_store_generator_name(s, 4), "gen3") == 0);
  CHECK(strcmp(cfx_store_generator_architecture(s, 4), "GAN") == 0);
  CHECK(strcmp(cfx_store_generator_subset(s, 0), "real") == 0);
  CHECK(strcmp(cfx_store_generator_name(s, 6), "") == 0);
  CHECK(strcmp(cfx_store_attr(s, "source"), "test_store") == 0);
  CHECK(strcmp(cfx_store_attr(s, "cfx_format"), "store") == 0);
  CHECK(cfx_store_attr(s, "nope") == NULL);
  int same = 1;
  const uint8_t *labels = cfx_store_labels(s), *fmts = cfx_store_formats(s), *flags = cfx_store_flags(s);
  const int32_t *gens = cfx_store_generators(s), *ws = cfx_store_widths(s), *hs = cfx_store_heights(s);
  const int32_t *groups = cfx_store_groups(s);
  for (int i = 0; i < N; i++) {
    int label = i % 3 != 0;
    char name[64];
    snprintf(name, sizeof name, "image-%05d.png", i);
    same &= labels[i] == label && gens[i] == (label ? 1 + i % 5 : 0) && ws[i] == 100 + i && hs[i] == 200 + i % 7;
    same &= groups[i] == (label ? 1 + i % 5 : (i % 2 ? 1 + i % 5 : -1));
    same &= fmts[i] == (i % 2 ? CFX_IMAGE_JPEG : CFX_IMAGE_PNG) && flags[i] == (i == 5);
    same &= strcmp(cfx_store_name(s, i), i == 9 ? "" : name) == 0;
  }
  CHECK(same);
  /* every image's bytes, read by two threads at once in different orders */
  struct reader_arg a = {s, 0, 1, 0}, b = {s, N - 1, -1, 0};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, reader, &a);
  pthread_create(&tb, NULL, reader, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(a.bad == 0 && b.bad == 0);
  uint8_t small[4];
  int64_t n = 0;
  CHECK(cfx_store_read(s, 1, small, sizeof small, &n) == CFX_ERANGE && n == plen[1]);
  CHECK(cfx_store_read(s, N, small, sizeof small, &n) == CFX_ERANGE);
  CHECK(cfx_store_read(s, -1, small, sizeof small, &n) == CFX_ERANGE);
  CHECK_OK(cfx_store_read(s, 17, NULL, 0, &n)); /* an empty entry */
  CHECK(n == 0);
  cfx_store_close(s);
  cfx_store_close(NULL);

  /* a truncated copy is refused at open, not at read time */
  char cut[512], cmd[1200];
  path_in(cut, sizeof cut, "cut.h5");
  snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'", (long long)4096 * 50, path, cut);
  CHECK(system(cmd) == 0);
  s = NULL;
  CHECK(cfx_store_open(cut, &s) < 0 && s == NULL);
}

static void test_abandoned_writer(void) {
  char path[512];
  path_in(path, sizeof path, "abandoned.h5");
  cfx_store_writer *w = NULL;
  int32_t g;
  CHECK_OK(cfx_store_writer_open(path, &w));
  CHECK_OK(cfx_store_writer_add_generator(w, "g", "GAN", "manual", &g));
  CHECK_OK(cfx_store_writer_add(w, payload[1], plen[1], 1, g, g, 1, 1, 0, 0, "a"));
  cfx_store_writer_free(w);
  CHECK(!file_exists(path));
  char cmd[600];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep abandoned)\"", dir);
  CHECK(system(cmd) == 0); /* no temporary files left */
}

/* A minimal HDF5 file with the given root attributes, made with HDF5 directly. */
static void make_fake(const char *path, const char *format, int version) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  if (format) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(format));
    hid_t a = H5Acreate2(f, "cfx_format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, format);
    H5Aclose(a), H5Tclose(t);
  }
  if (version >= 0) {
    hid_t a = H5Acreate2(f, "cfx_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &version);
    H5Aclose(a);
  }
  H5Sclose(sp), H5Fclose(f);
}

static void test_refusals(void) {
  char path[512];
  cfx_store *s = NULL;
  path_in(path, sizeof path, "missing.h5");
  CHECK(cfx_store_open(path, &s) == CFX_ENOTFOUND);
  CHECK_CONTAINS(cfx_last_error(), "missing.h5");
  path_in(path, sizeof path, "text.h5");
  FILE *f = fopen(path, "w");
  fputs("not hdf5 at all", f);
  fclose(f);
  CHECK(cfx_store_open(path, &s) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "not an HDF5 file");
  path_in(path, sizeof path, "results.h5");
  make_fake(path, "results", 1);
  CHECK(cfx_store_open(path, &s) == CFX_EFORMAT);
  CHECK_CONTAINS(cfx_last_error(), "not a cfx store");
  CHECK_CONTAINS(cfx_last_error(), "\"results\"");
  path_in(path, sizeof path, "future.h5");
  make_fake(path, "store", 3);
  CHECK(cfx_store_open(path, &s) == CFX_EVERSION);
  CHECK_CONTAINS(cfx_last_error(), "store format version 3, but this cfx");
  CHECK_CONTAINS(cfx_last_error(), "re-import the data with this cfx");
  path_in(path, sizeof path, "old.h5"); /* a store of version 1 (no /images/group) */
  make_fake(path, "store", 1);
  CHECK(cfx_store_open(path, &s) == CFX_EVERSION);
  CHECK_CONTAINS(cfx_last_error(), "store format version 1, but this cfx");
  CHECK_CONTAINS(cfx_last_error(), "reads version 2 only");
  CHECK_CONTAINS(cfx_last_error(), "/images/group");
  path_in(path, sizeof path, "noversion.h5");
  make_fake(path, "store", -1);
  CHECK(cfx_store_open(path, &s) == CFX_EVERSION);
  path_in(path, sizeof path, "empty-store.h5");
  make_fake(path, "store", 2); /* the right header but no datasets */
  CHECK(cfx_store_open(path, &s) == CFX_EFORMAT);
  CHECK(s == NULL);
}

/* A store whose /images/group names a row that does not exist (a damaged or hand-made
 * file) is refused at open with the image and the value, edited here with HDF5 itself. */
static void test_bad_group(void) {
  char path[512];
  path_in(path, sizeof path, "badgroup.h5");
  write_store(path);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "images/group", H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t at[1] = {3}, one[1] = {1};
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, at, NULL, one, NULL);
  hid_t ms = H5Screate_simple(1, one, NULL);
  int32_t bad = 99;
  CHECK(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &bad) >= 0);
  H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
  cfx_store *s = NULL;
  CHECK(cfx_store_open(path, &s) == CFX_EFORMAT && s == NULL);
  CHECK_CONTAINS(cfx_last_error(), "image 3 has evaluation group 99");
  CHECK_CONTAINS(cfx_last_error(), "badgroup.h5");
}

/* /generators/source: set once per generator (an unknown source never conflicts), read
 * back; a second, different source is refused naming both; a store without the dataset
 * (written before it existed: deleted here with HDF5) reads with every source "". */
static void test_sources(void) {
  char path[512];
  path_in(path, sizeof path, "sources.h5");
  cfx_store_writer *w = NULL;
  CHECK_OK(cfx_store_writer_open(path, &w));
  int32_t laion = -1, a = -1, b = -1, c = -1, again = -1;
  CHECK_OK(cfx_store_writer_add_generator(w, "LAION", "real", "real", &laion));
  CHECK_OK(cfx_store_writer_add_generator(w, "sd-a", "LatDiff", "systematic", &a));
  CHECK_OK(cfx_store_writer_set_generator_source(w, a, "LAION"));
  CHECK_OK(cfx_store_writer_add_generator(w, "sd-b", "LatDiff", "systematic", &b));
  CHECK_OK(cfx_store_writer_set_generator_source(w, b, ""));   /* unknown: nothing set */
  CHECK_OK(cfx_store_writer_set_generator_source(w, b, "COCO"));
  CHECK_OK(cfx_store_writer_add_generator(w, "gan", "GAN", "manual", &c)); /* never given one */
  CHECK_OK(cfx_store_writer_add_generator(w, "sd-a", "LatDiff", "systematic", &again));
  CHECK(again == a);
  CHECK_OK(cfx_store_writer_set_generator_source(w, a, "LAION"));  /* the same again */
  CHECK_OK(cfx_store_writer_set_generator_source(w, a, NULL));     /* unknown: keeps LAION */
  CHECK(cfx_store_writer_set_generator_source(w, a, "COCO") == CFX_EINVAL);
  CHECK_CONTAINS(cfx_last_error(), "'sd-a'");
  CHECK_CONTAINS(cfx_last_error(), "'LAION' then 'COCO'");
  CHECK(cfx_store_writer_set_generator_source(w, 9, "COCO") == CFX_ERANGE);
  for (int i = 0; i < 8; i++)
    CHECK_OK(cfx_store_writer_add(w, payload[i], plen[i], i % 4 != 0, i % 4, -1, 1, 1, CFX_IMAGE_PNG, 0, NULL));
  CHECK_OK(cfx_store_writer_finish(w));
  CHECK(cfx_store_writer_set_generator_source(w, a, "COCO") == CFX_EINVAL); /* spent */
  cfx_store_writer_free(w);
  cfx_store *s = NULL;
  CHECK_OK(cfx_store_open(path, &s));
  if (!s) return;
  CHECK(strcmp(cfx_store_generator_source(s, laion), "") == 0);
  CHECK(strcmp(cfx_store_generator_source(s, a), "LAION") == 0);
  CHECK(strcmp(cfx_store_generator_source(s, b), "COCO") == 0);
  CHECK(strcmp(cfx_store_generator_source(s, c), "") == 0);
  CHECK(strcmp(cfx_store_generator_source(s, 4), "") == 0);
  CHECK(strcmp(cfx_store_generator_source(NULL, 0), "") == 0);
  cfx_store_close(s);
  /* the same store without /generators/source, as an older cfx wrote it */
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0 && H5Ldelete(f, "generators/source", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  s = NULL;
  CHECK_OK(cfx_store_open(path, &s));
  if (!s) return;
  CHECK(cfx_store_num_generators(s) == 4 && cfx_store_count(s) == 8);
  CHECK(strcmp(cfx_store_generator_name(s, a), "sd-a") == 0);
  for (int32_t g = 0; g < 4; g++) CHECK(strcmp(cfx_store_generator_source(s, g), "") == 0);
  cfx_store_close(s);
}

static void test_empty_store(void) {
  char path[512];
  path_in(path, sizeof path, "empty.h5");
  cfx_store_writer *w = NULL;
  CHECK_OK(cfx_store_writer_open(path, &w));
  CHECK_OK(cfx_store_writer_finish(w));
  cfx_store_writer_free(w);
  cfx_store *s = NULL;
  CHECK_OK(cfx_store_open(path, &s));
  CHECK(cfx_store_count(s) == 0 && cfx_store_num_generators(s) == 0);
  cfx_store_close(s);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/cfx-test-store-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  make_payloads();
  test_round_trip();
  test_abandoned_writer();
  test_refusals();
  test_bad_group();
  test_sources();
  test_empty_store();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  for (int i = 0; i < N; i++) free(payload[i]);
  return check_summary("test_store");
}
