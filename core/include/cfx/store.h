/* cfx/store.h: the packed image store, one HDF5 file holding encoded images back to
 * back plus their index (format in docs/data.md and DESIGN.md):
 *
 *   /images/bytes uint8[total] (CONTIGUOUS), /images/offset uint64[n+1],
 *   /images/label uint8[n], /images/generator int32[n], /images/group int32[n],
 *   /images/width, /images/height
 *   int32[n], /images/format uint8[n], /images/flags uint8[n], /images/name string[n],
 *   /generators/name, /generators/architecture, /generators/subset string[g],
 *   optionally /generators/source string[g];
 *   root attributes cfx_format = "store", cfx_version = 2, and provenance strings.
 *
 * /images/group is an image's evaluation group: for a real, the generator row whose
 * fakes it is scored against (the folder layouts pair each generator with the reals of
 * its folder); -1 for a real paired with no generator in particular (cfx synth,
 * Community Forensics, Synthbuster's shared RAISE reals), which the evaluation deals out
 * or pools as the root attribute `pairing` ("deal" | "pool") says.  A fake's group is
 * its own generator.
 *
 * /generators/source is the real dataset a generator's content or prompts came from
 * (LAION, COCO, ...; "" unknown), for studies of real/fake alignment.  It is optional
 * and additive, so the format version stays 2: a store without it reads with every
 * source "", and a cfx that predates it reads stores that have it (it opens datasets by
 * name and ignores the others).  The writer always writes it.
 *
 * Writer: streams any number of images in constant memory (bytes and index records are
 * spooled to temporary files next to the target), and cfx_store_writer_finish writes
 * the HDF5 file under a temporary name, fsyncs it and renames it into place: a reader
 * never sees a half-written store.  One writer is used by one thread at a time.
 *
 * Reader: cfx_store_open reads the whole index once, notes the file offset of
 * /images/bytes and closes HDF5; cfx_store_read then serves an image's bytes with
 * pread(2).  Reading is lock-free and thread-safe (Debian's HDF5 serialises every call
 * behind one global lock, so workers never call HDF5).  Pointers returned by the
 * index accessors stay valid until the last cfx_store_close (see cfx_store_retain). */
#ifndef CFX_STORE_H
#define CFX_STORE_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_store cfx_store;
typedef struct cfx_store_writer cfx_store_writer;

enum { CFX_STORE_VERSION = 2 };
/* Bits of /images/flags. */
enum { CFX_STORE_FLAG_UNREADABLE = 1 };

/* ---- writing -------------------------------------------------------------------- */
CFX_API int cfx_store_writer_open(const char *path, cfx_store_writer **out);
/* Register a generator (or a real source); *id is its row.  Adding a name again
 * returns the existing row if architecture and subset agree, else CFX_EINVAL. */
CFX_API int cfx_store_writer_add_generator(cfx_store_writer *w, const char *name, const char *architecture,
                                           const char *subset, int32_t *id);
/* Set the content source of generator row id (the real dataset its prompts or content
 * came from).  NULL or "" says nothing (unknown): it never conflicts and never clears
 * a source set before; a second, different source for the same row is CFX_EINVAL,
 * naming the generator and both sources. */
CFX_API int cfx_store_writer_set_generator_source(cfx_store_writer *w, int32_t id, const char *source);
/* Append one image: its encoded bytes, label (0 real, 1 generated), generator row,
 * evaluation group (a generator row, or -1), size, CFX_IMAGE_* format, CFX_STORE_FLAG_*
 * flags and a name (may be NULL). */
CFX_API int cfx_store_writer_add(cfx_store_writer *w, const uint8_t *bytes, int64_t n, int label,
                                 int32_t generator, int32_t group, int32_t width, int32_t height, int format, int flags,
                                 const char *name);
/* A root attribute (provenance: source, command, ...); cfx_format and cfx_version are
 * set by the writer. */
CFX_API int cfx_store_writer_set_attr(cfx_store_writer *w, const char *key, const char *value);
CFX_API int64_t cfx_store_writer_count(const cfx_store_writer *w);
/* Write the HDF5 file and rename it into place.  The writer is spent afterwards
 * (free it); on failure the target is untouched. */
CFX_API int cfx_store_writer_finish(cfx_store_writer *w);
/* Free the writer; an unfinished store is abandoned and its temporary files removed. */
CFX_API void cfx_store_writer_free(cfx_store_writer *w);

/* ---- reading -------------------------------------------------------------------- */
CFX_API int cfx_store_open(const char *path, cfx_store **out);
/* Take one more reference: the store stays open until every holder has called
 * cfx_store_close (a loader holds one while its workers run).  Returns s.  Thread-safe. */
CFX_API cfx_store *cfx_store_retain(const cfx_store *s);
/* Drop a reference; the last one frees the store. */
CFX_API void cfx_store_close(cfx_store *s);
CFX_API int64_t cfx_store_count(const cfx_store *s);
CFX_API int32_t cfx_store_num_generators(const cfx_store *s);
/* Index arrays of cfx_store_count entries (offsets: count + 1). */
CFX_API const uint64_t *cfx_store_offsets(const cfx_store *s);
CFX_API const uint8_t *cfx_store_labels(const cfx_store *s);
CFX_API const int32_t *cfx_store_generators(const cfx_store *s);
CFX_API const int32_t *cfx_store_groups(const cfx_store *s);
CFX_API const int32_t *cfx_store_widths(const cfx_store *s);
CFX_API const int32_t *cfx_store_heights(const cfx_store *s);
CFX_API const uint8_t *cfx_store_formats(const cfx_store *s);
CFX_API const uint8_t *cfx_store_flags(const cfx_store *s);
/* Name of image i, and fields of generator row g ("" when out of range). */
CFX_API const char *cfx_store_name(const cfx_store *s, int64_t i);
CFX_API const char *cfx_store_generator_name(const cfx_store *s, int32_t g);
CFX_API const char *cfx_store_generator_architecture(const cfx_store *s, int32_t g);
CFX_API const char *cfx_store_generator_subset(const cfx_store *s, int32_t g);
/* Generator row g's content source ("" when unknown, out of range, or the store has no
 * /generators/source). */
CFX_API const char *cfx_store_generator_source(const cfx_store *s, int32_t g);
/* cfx_hash64 of "<name of image i>#<i>" (i 0-based) with seed: the key of the seeded
 * split by image, one call per image instead of a string built in Lua. */
CFX_API uint64_t cfx_store_image_hash(const cfx_store *s, int64_t i, uint64_t seed);
/* A root attribute's value, or NULL. */
CFX_API const char *cfx_store_attr(const cfx_store *s, const char *key);
/* Copy image i's encoded bytes to dst (cap bytes); *n = its length.  Thread-safe. */
CFX_API int cfx_store_read(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n);

/* Copy the first min(cap, length) bytes of image i (headers, for probing); *n = the
 * number copied.  Thread-safe. */
CFX_API int cfx_store_read_prefix(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif
