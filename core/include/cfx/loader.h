/* cfx/loader.h: the threaded data loader.  Worker threads read images from a store
 * (pread, no HDF5), decode them, run an augmentation pipeline and assemble batches
 * of uint8 NCHW images with their labels, generator rows and store indices; a
 * bounded prefetch window keeps at most `prefetch` batches ahead of the consumer.
 *
 * Determinism: batch k of epoch e holds positions [k*B, (k+1)*B) of that epoch's
 * order (the view's indices shuffled with a generator seeded by (seed, e)), and each
 * sample is augmented with cfx_augment_seed(seed, e, store index).  A batch is built
 * by one worker, so content and order are the same for any number of workers, and a
 * loader started at sequence number s (= e * batches_per_epoch + k) continues exactly
 * where one that consumed s batches stopped.
 *
 * An image that fails to read or decode is left out of its batch (the batch is
 * shorter), counted, and its index and reason are kept (cfx_loader_stats): never fatal.
 *
 * cfx_loader_next is called from one thread.  The loader holds a reference on the store
 * (cfx_store_retain) and a copy of the pipeline until cfx_loader_free has stopped its
 * workers: the caller may close and free its own in any order. */
#ifndef CFX_LOADER_H
#define CFX_LOADER_H

#include "cfx/augment.h"
#include "cfx/common.h"
#include "cfx/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_loader cfx_loader;

typedef struct cfx_loader_opts {
  const cfx_store *store;
  const int64_t *indices;    /* the view: 0-based store indices (copied); NULL = every image */
  int64_t num_indices;
  const cfx_augment *augment; /* must end in a fixed size (cfx_augment_output_size > 0) */
  int32_t batch;             /* images per batch */
  int32_t workers;           /* threads (>= 1) */
  int32_t prefetch;          /* batches in flight; 0 = 2 * workers */
  int32_t shuffle;           /* 1: a new order each epoch; 0: the view's order */
  int32_t drop_last;         /* 1: no short last batch per epoch */
  int32_t decode_min_size;   /* > 0: scaled JPEG decode keeping both sides >= this */
  uint64_t seed;
  int64_t start;             /* sequence number of the first batch (resume) */
  int64_t max_batches;       /* stop after this many sequence numbers; 0 = endless epochs */
} cfx_loader_opts;

/* One batch; every pointer is malloc'd and owned by the caller (cfx_free each, or
 * cfx_loader_batch_release).  images: count x 3 x size x size bytes. */
typedef struct cfx_loader_batch {
  uint8_t *images;
  uint8_t *labels;
  int32_t *generators;
  int64_t *indices;
  int32_t count;     /* images in the batch (short if some failed to decode) */
  int32_t size;      /* side of every image */
  int64_t sequence;  /* its sequence number */
  int64_t epoch;
} cfx_loader_batch;

typedef struct cfx_loader_stats {
  int64_t batches;       /* delivered by cfx_loader_next */
  int64_t images;        /* delivered */
  int64_t failed;        /* left out because they could not be read or decoded */
  int64_t last_failed;   /* store index of the last failure, -1 if none */
  int64_t batches_per_epoch;
} cfx_loader_stats;

CFX_API int cfx_loader_new(const cfx_loader_opts *o, cfx_loader **out);
/* Stops the workers and frees everything not yet delivered. */
CFX_API void cfx_loader_free(cfx_loader *l);
/* The next batch in sequence order; blocks until it is ready.  CFX_ENOTFOUND (no
 * message) after max_batches. */
CFX_API int cfx_loader_next(cfx_loader *l, cfx_loader_batch *out);
CFX_API void cfx_loader_batch_release(cfx_loader_batch *b);
CFX_API int cfx_loader_stats_get(const cfx_loader *l, cfx_loader_stats *out);
/* The reason the last-failed image could not be used ("" if none): a copy taken under
 * the workers' lock, valid in the calling thread until its next call. */
CFX_API const char *cfx_loader_last_failure(const cfx_loader *l);
/* Sequence number of the next batch cfx_loader_next will return (its state). */
CFX_API int64_t cfx_loader_position(const cfx_loader *l);

#ifdef __cplusplus
}
#endif
#endif
