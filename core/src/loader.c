/* loader.c: worker threads that turn store images into augmented batches (see
 * cfx/loader.h).  Each batch has a sequence number; a worker claims the next number
 * inside the prefetch window, builds the whole batch, and leaves it in the ring slot
 * seq % prefetch, where cfx_loader_next picks batches up strictly in order. */
#define _GNU_SOURCE
#include "cfx/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  int64_t seq;
  int ready;
  int rc;
  char err[256];
  cfx_loader_batch b;
} slot;

typedef struct {
  int64_t epoch; /* -1: empty */
  int64_t *order;
} epoch_order;

struct cfx_loader {
  cfx_loader_opts o;
  int64_t *view;
  int64_t n, bpe; /* images in the view, batches per epoch */
  int32_t size;
  pthread_t *threads;
  int nthreads;
  pthread_mutex_t mu;
  pthread_cond_t work, ready;
  slot *ring;
  int64_t next_claim, consumed, end; /* end: INT64_MAX when endless */
  int stop;
  epoch_order orders[2]; /* the last two epochs' orders (workers straddle a boundary) */
  /* stats */
  int64_t delivered_batches, delivered_images, failed, last_failed;
  char last_failure[512];
};

static uint64_t order_seed(uint64_t seed, int64_t epoch) { return cfx_augment_seed(seed, (uint64_t)epoch, UINT64_MAX); }

/* Copy positions [from, from + count) of epoch e's order into dst.  Called with mu held. */
static int epoch_slice(cfx_loader *l, int64_t epoch, int64_t from, int64_t count, int64_t *dst) {
  epoch_order *eo = NULL;
  for (int i = 0; i < 2; i++)
    if (l->orders[i].epoch == epoch) eo = &l->orders[i];
  if (!eo) {
    /* replace the older of the two cached epochs */
    eo = l->orders[0].epoch < l->orders[1].epoch ? &l->orders[0] : &l->orders[1];
    if (!eo->order && !(eo->order = malloc(sizeof(int64_t) * (size_t)l->n)))
      return cfx__fail(CFX_ENOMEM, "loader: out of memory for the epoch order");
    memcpy(eo->order, l->view, sizeof(int64_t) * (size_t)l->n);
    if (l->o.shuffle) {
      cfx_rng rng;
      cfx_rng_seed(&rng, order_seed(l->o.seed, epoch));
      for (int64_t i = l->n - 1; i > 0; i--) {
        int64_t j = cfx_rng_int(&rng, 0, i), t = eo->order[i];
        eo->order[i] = eo->order[j], eo->order[j] = t;
      }
    }
    eo->epoch = epoch;
  }
  memcpy(dst, eo->order + from, sizeof(int64_t) * (size_t)count);
  return 0;
}

static void note_failure(cfx_loader *l, int64_t index) {
  pthread_mutex_lock(&l->mu);
  l->failed++;
  l->last_failed = index;
  snprintf(l->last_failure, sizeof l->last_failure, "image '%s' (store row %lld): %s",
           cfx_store_name(l->o.store, index), (long long)index, cfx_last_error());
  pthread_mutex_unlock(&l->mu);
}

/* Build batch seq into b (mu not held), reading through the worker's buffer *rbuf of *rcap
 * bytes (grown as needed).  Per-image failures leave the image out. */
static int build_batch(cfx_loader *l, int64_t seq, cfx_loader_batch *b, uint8_t **rbuf, int64_t *rcap) {
  int64_t epoch = seq / l->bpe, k = seq % l->bpe, from = k * l->o.batch;
  int64_t count = l->n - from < l->o.batch ? l->n - from : l->o.batch;
  size_t plane = (size_t)l->size * l->size * 3;
  memset(b, 0, sizeof *b);
  b->sequence = seq, b->epoch = epoch, b->size = l->size;
  b->indices = malloc(sizeof(int64_t) * (size_t)count);
  b->images = malloc(plane * (size_t)count);
  b->labels = malloc((size_t)count);
  b->generators = malloc(sizeof(int32_t) * (size_t)count);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)count);
  if (!b->indices || !b->images || !b->labels || !b->generators || !idx) {
    free(idx);
    cfx_loader_batch_release(b);
    return cfx__fail(CFX_ENOMEM, "loader: out of memory for a batch of %lld", (long long)count);
  }
  pthread_mutex_lock(&l->mu);
  int rc = epoch_slice(l, epoch, from, count, idx);
  pthread_mutex_unlock(&l->mu);
  if (rc) {
    free(idx);
    cfx_loader_batch_release(b);
    return rc;
  }
  const uint64_t *off = cfx_store_offsets(l->o.store);
  const uint8_t *labels = cfx_store_labels(l->o.store);
  const int32_t *gens = cfx_store_generators(l->o.store);
  cfx_decode_opts dopt = {0, l->o.decode_min_size, l->o.decode_min_size, 0, -1};
  int32_t out = 0;
  for (int64_t j = 0; j < count; j++) {
    int64_t i = idx[j];
    int64_t len = (int64_t)(off[i + 1] - off[i]), got = 0;
    if (len > *rcap) {
      uint8_t *nb = realloc(*rbuf, (size_t)len);
      if (!nb) {
        cfx__fail(CFX_ENOMEM, "out of memory for %lld bytes", (long long)len);
        note_failure(l, i);
        continue;
      }
      *rbuf = nb, *rcap = len;
    }
    cfx_image img = {0}, aug = {0};
    if (cfx_store_read(l->o.store, i, *rbuf, *rcap, &got) != 0 || cfx_image_decode(*rbuf, got, &dopt, &img) != 0 ||
        cfx_augment_apply(l->o.augment, &img, cfx_augment_seed(l->o.seed, (uint64_t)epoch, (uint64_t)i), &aug) != 0 ||
        aug.width != l->size || aug.height != l->size) {
      if (aug.data && (aug.width != l->size || aug.height != l->size))
        cfx__fail(CFX_EINTERNAL, "the pipeline made a %dx%d image, expected %dx%d", aug.width, aug.height, l->size,
                  l->size);
      note_failure(l, i);
      cfx_image_release(&img);
      cfx_image_release(&aug);
      continue;
    }
    cfx_image_to_chw(&aug, b->images + plane * (size_t)out, (int64_t)plane);
    b->labels[out] = labels[i];
    b->generators[out] = gens[i];
    b->indices[out] = i;
    out++;
    cfx_image_release(&img);
    cfx_image_release(&aug);
  }
  free(idx);
  b->count = out;
  return 0;
}

static void *worker(void *arg) {
  cfx_loader *l = arg;
  uint8_t *rbuf = NULL;
  int64_t rcap = 0;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && (l->next_claim >= l->consumed + l->o.prefetch || l->next_claim >= l->end))
      pthread_cond_wait(&l->work, &l->mu);
    if (l->stop) break;
    int64_t seq = l->next_claim++;
    pthread_mutex_unlock(&l->mu);
    cfx_loader_batch b;
    int rc = build_batch(l, seq, &b, &rbuf, &rcap);
    pthread_mutex_lock(&l->mu);
    slot *s = &l->ring[seq % l->o.prefetch];
    s->seq = seq, s->rc = rc, s->b = b, s->ready = 1;
    if (rc) snprintf(s->err, sizeof s->err, "%s", cfx_last_error());
    pthread_cond_broadcast(&l->ready);
  }
  pthread_mutex_unlock(&l->mu);
  free(rbuf);
  return NULL;
}

void cfx_loader_batch_release(cfx_loader_batch *b) {
  if (!b) return;
  free(b->images), free(b->labels), free(b->generators), free(b->indices);
  b->images = b->labels = NULL, b->generators = NULL, b->indices = NULL;
  b->count = 0;
}

void cfx_loader_free(cfx_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
  if (l->ring)
    for (int i = 0; i < l->o.prefetch; i++)
      if (l->ring[i].ready) cfx_loader_batch_release(&l->ring[i].b);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->work);
  pthread_cond_destroy(&l->ready);
  free(l->orders[0].order), free(l->orders[1].order);
  free(l->ring), free(l->threads), free(l->view);
  /* the workers have stopped: the loader's reference and copy can go */
  cfx_store_close((cfx_store *)l->o.store);
  cfx_augment_free((cfx_augment *)l->o.augment);
  free(l);
}

int cfx_loader_new(const cfx_loader_opts *o, cfx_loader **out) {
  if (!o || !out || !o->store || !o->augment) return cfx__fail(CFX_EINVAL, "loader: store, augment and out are required");
  *out = NULL;
  int64_t total = cfx_store_count(o->store);
  int64_t n = o->indices ? o->num_indices : total;
  int32_t size = cfx_augment_output_size(o->augment);
  if (size <= 0) return cfx__fail(CFX_EINVAL, "loader: the pipeline must end in a fixed size (a crop)");
  if (o->batch < 1 || o->batch > (1 << 20)) return cfx__fail(CFX_ERANGE, "loader: batch %d out of range", o->batch);
  if (o->workers < 1 || o->workers > 256) return cfx__fail(CFX_ERANGE, "loader: workers %d out of range 1..256", o->workers);
  if (o->prefetch < 0 || o->start < 0 || o->max_batches < 0 || o->decode_min_size < 0)
    return cfx__fail(CFX_ERANGE, "loader: negative prefetch, start, max_batches or decode_min_size");
  if (n <= 0) return cfx__fail(CFX_EINVAL, "loader: the view is empty");
  int64_t bpe = o->drop_last ? n / o->batch : (n + o->batch - 1) / o->batch;
  if (bpe == 0)
    return cfx__fail(CFX_EINVAL, "loader: %lld images make no full batch of %d (drop_last)", (long long)n, o->batch);
  cfx_loader *l = calloc(1, sizeof *l);
  if (!l) return cfx__fail(CFX_ENOMEM, "out of memory");
  l->o = *o;
  if (l->o.prefetch == 0) l->o.prefetch = 2 * o->workers;
  l->n = n, l->bpe = bpe, l->size = size;
  l->orders[0].epoch = l->orders[1].epoch = -1;
  l->last_failed = -1;
  l->next_claim = l->consumed = o->start;
  l->end = o->max_batches ? o->start + o->max_batches : INT64_MAX;
  l->view = malloc(sizeof(int64_t) * (size_t)n);
  l->ring = calloc((size_t)l->o.prefetch, sizeof(slot));
  l->threads = calloc((size_t)o->workers, sizeof(pthread_t));
  if (!l->view || !l->ring || !l->threads) {
    free(l->view), free(l->ring), free(l->threads), free(l);
    return cfx__fail(CFX_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t v = o->indices ? o->indices[i] : i;
    if (v < 0 || v >= total) {
      free(l->view), free(l->ring), free(l->threads), free(l);
      return cfx__fail(CFX_ERANGE, "loader: view entry %lld is store index %lld, the store holds %lld", (long long)i,
                       (long long)v, (long long)total);
    }
    l->view[i] = v;
  }
  l->o.indices = l->view;
  /* a reference on the store and a copy of the pipeline, so that the caller may free
   * theirs in any order (finalizers at exit) while workers still run */
  cfx_augment *aug = NULL;
  if (cfx_augment_clone(o->augment, &aug) != 0) {
    free(l->view), free(l->ring), free(l->threads), free(l);
    return CFX_ENOMEM;
  }
  l->o.augment = aug;
  l->o.store = cfx_store_retain(o->store);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->work, NULL);
  pthread_cond_init(&l->ready, NULL);
  for (int i = 0; i < o->workers; i++) {
    if (pthread_create(&l->threads[i], NULL, worker, l) != 0) {
      cfx_loader_free(l);
      return cfx__fail(CFX_ENOMEM, "loader: cannot start worker thread %d", i);
    }
    l->nthreads++;
  }
  *out = l;
  return 0;
}

int cfx_loader_next(cfx_loader *l, cfx_loader_batch *out) {
  if (!l || !out) return cfx__fail(CFX_EINVAL, "loader_next: NULL argument");
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&l->mu);
  if (l->consumed >= l->end) {
    pthread_mutex_unlock(&l->mu);
    return CFX_ENOTFOUND;
  }
  slot *s = &l->ring[l->consumed % l->o.prefetch];
  while (!(s->ready && s->seq == l->consumed)) pthread_cond_wait(&l->ready, &l->mu);
  int rc = s->rc;
  if (rc) cfx__fail(rc, "%s", s->err);
  else *out = s->b;
  s->ready = 0;
  l->consumed++;
  if (!rc) l->delivered_batches++, l->delivered_images += out->count;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  return rc;
}

int cfx_loader_stats_get(const cfx_loader *l, cfx_loader_stats *out) {
  if (!l || !out) return cfx__fail(CFX_EINVAL, "loader_stats: NULL argument");
  cfx_loader *m = (cfx_loader *)l;
  pthread_mutex_lock(&m->mu);
  out->batches = l->delivered_batches;
  out->images = l->delivered_images;
  out->failed = l->failed;
  out->last_failed = l->last_failed;
  out->batches_per_epoch = l->bpe;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

const char *cfx_loader_last_failure(const cfx_loader *l) {
  static __thread char copy[sizeof l->last_failure]; /* workers write the original under mu */
  if (!l) return "";
  cfx_loader *m = (cfx_loader *)l;
  pthread_mutex_lock(&m->mu);
  memcpy(copy, l->last_failure, sizeof copy);
  pthread_mutex_unlock(&m->mu);
  return copy;
}

int64_t cfx_loader_position(const cfx_loader *l) {
  if (!l) return 0;
  cfx_loader *m = (cfx_loader *)l;
  pthread_mutex_lock(&m->mu);
  int64_t p = l->consumed;
  pthread_mutex_unlock(&m->mu);
  return p;
}
