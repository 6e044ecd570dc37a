/* cfx/h5log.h: results files, one HDF5 file of runs (format in docs/results.md):
 *
 *   /                      attrs cfx_format = "results", cfx_version = 1, created
 *   /runs/<run_id>         group; attrs: strings and numbers the caller sets (config as
 *                          JSON, experiment, preset, seed, status, ...) plus created and
 *                          updated, kept by the log
 *   /runs/<run_id>/<table>  a table: a 1-d compound dataset, one field per column
 *                          (int64, float64 or UTF-8 string), its attributes a summary
 *                          (e.g. train, eval/<dataset>)
 *   /runs/<run_id>/<group>/<array>  a numeric n-d array (e.g. predictions/<dataset>/score)
 *
 * A log holds the whole file in memory: opening reads it once and closes HDF5; every
 * change is made in memory, and a flush writes a complete new file under a temporary
 * name (<path>.<pid>.tmp), fsyncs it, renames it over <path> and fsyncs the directory.
 * The file at <path> is therefore always a complete results file, whatever moment a
 * writer is killed at; the changes since the last flush are what a kill loses.  A
 * writable log flushes on cfx_h5log_flush, on close, and after a change when the last
 * flush is older than the flush interval (10 s by default).  A change is made in memory
 * before that automatic flush; when the flush fails, the call returns its error (the
 * change stays, and the next flush writes it).
 *
 * One process writes a file at a time: a writable open takes an exclusive flock(2) on
 * <path>.lock (removed on close) and removes the temporary files that killed writers of
 * <path> left.  Read-only opens take no lock and see the last flushed state.
 *
 * Paths name nodes below a run, components separated by '/': "train",
 * "eval/synth", "predictions/synth/score"; NULL or "" is the run's group itself.
 * Groups on the way are created as needed.  Pointers returned by the accessors stay
 * valid until the node they belong to changes or the log is closed.  A log is used by
 * one thread at a time. */
#ifndef CFX_H5LOG_H
#define CFX_H5LOG_H

#include "cfx/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cfx_h5log cfx_h5log;

enum { CFX_H5LOG_FORMAT_VERSION = 1 };

/* Value types.  The numeric codes are cfx's tensor dtypes (cfx/tensor.h).  Table
 * columns are INT64, FLOAT64 or STRING; attributes too; arrays any numeric type. */
enum {
  CFX_H5LOG_UINT8 = 0,
  CFX_H5LOG_INT8 = 1,
  CFX_H5LOG_INT16 = 2,
  CFX_H5LOG_INT32 = 3,
  CFX_H5LOG_INT64 = 4,
  CFX_H5LOG_FLOAT32 = 6,
  CFX_H5LOG_FLOAT64 = 7,
  CFX_H5LOG_STRING = 16
};
/* Node kinds (cfx_h5log_kind). */
enum { CFX_H5LOG_ABSENT = 0, CFX_H5LOG_GROUP = 1, CFX_H5LOG_TABLE = 2, CFX_H5LOG_ARRAY = 3 };
/* Open flags: READONLY never writes (and needs the file); TRUNCATE starts empty (the
 * file is replaced at the first flush; a file that is not a results file is refused). */
enum { CFX_H5LOG_READONLY = 1, CFX_H5LOG_TRUNCATE = 2 };

/* ---- the file -------------------------------------------------------------------- */
/* Open path (flags 0: read and append, creating the file when absent).  Refuses a
 * file that is not a cfx results file of a version this cfx reads, naming what it found. */
CFX_API int cfx_h5log_open(const char *path, int flags, cfx_h5log **out);
/* Flush (if writable and changed), release the lock and free the log, even when the
 * flush fails (its error is returned).  NULL is accepted. */
CFX_API int cfx_h5log_close(cfx_h5log *log);
/* Free the log without flushing: the changes since the last flush are dropped (what
 * a merge that failed half-way wants).  NULL is accepted. */
CFX_API void cfx_h5log_free(cfx_h5log *log);
/* Write the file now if anything changed since the last flush. */
CFX_API int cfx_h5log_flush(cfx_h5log *log);
/* Flush automatically after a change when the last flush is older than seconds, or
 * than 20 times what the last flush took when that is longer (a big file is flushed
 * less often, at most 5% of the time goes to flushing); 0 flushes after every change,
 * a negative value only on cfx_h5log_flush and close. */
CFX_API int cfx_h5log_set_flush_interval(cfx_h5log *log, double seconds);
CFX_API const char *cfx_h5log_path(const cfx_h5log *log);
/* Flushes done by this log so far and the seconds they took in all. */
CFX_API int cfx_h5log_stats(const cfx_h5log *log, int64_t *flushes, double *seconds);

/* ---- runs ------------------------------------------------------------------------ */
CFX_API int cfx_h5log_num_runs(const cfx_h5log *log);
/* The id of run i (0-based, in creation order), or NULL when out of range. */
CFX_API const char *cfx_h5log_run_id(const cfx_h5log *log, int i);
/* Create run /runs/<run_id> unless it exists (*created = 1 if it was made; may be NULL).
 * An id is 1..255 bytes without '/' or control characters, and not "." or "..". */
CFX_API int cfx_h5log_add_run(cfx_h5log *log, const char *run_id, int *created);
/* Remove the node at path of a run (NULL or "": the whole run). */
CFX_API int cfx_h5log_remove(cfx_h5log *log, const char *run_id, const char *path);

/* ---- nodes and attributes ----------------------------------------------------------- */
/* CFX_H5LOG_ABSENT/GROUP/TABLE/ARRAY for the node at path of a run (ABSENT also when the
 * run is absent). */
CFX_API int cfx_h5log_kind(const cfx_h5log *log, const char *run_id, const char *path);
/* The names of a group's children, NUL-terminated one after the other, in creation
 * order, as one malloc'd block of *n bytes (cfx_free it). */
CFX_API int cfx_h5log_children(const cfx_h5log *log, const char *run_id, const char *path, char **out,
                               int64_t *n);
/* Set an attribute of a node (a scalar string, int64 or float64), replacing any of that
 * key.  "created" and "updated" of a run are kept by the log and cannot be set. */
CFX_API int cfx_h5log_set_attr_string(cfx_h5log *log, const char *run_id, const char *path, const char *key,
                                      const char *value);
CFX_API int cfx_h5log_set_attr_int(cfx_h5log *log, const char *run_id, const char *path, const char *key,
                                   int64_t value);
CFX_API int cfx_h5log_set_attr_float(cfx_h5log *log, const char *run_id, const char *path, const char *key,
                                     double value);
CFX_API int cfx_h5log_num_attrs(const cfx_h5log *log, const char *run_id, const char *path, int *n);
/* Attribute i of a node: its key, type (INT64, FLOAT64 or STRING) and value in the
 * matching out-argument (the others are left alone; any may be NULL). */
CFX_API int cfx_h5log_attr(const cfx_h5log *log, const char *run_id, const char *path, int i, const char **key,
                           int *type, int64_t *ival, double *fval, const char **sval);

/* ---- tables ---------------------------------------------------------------------- */
/* Append one row: ncols values named names[i] of types[i], taken from ivals[i] (INT64),
 * fvals[i] (FLOAT64) or svals[i] (STRING); the arrays not needed may be NULL.  The
 * first row creates the table and fixes its columns; later rows give the same names
 * (any order).  An INT64 column that receives a non-integral number becomes FLOAT64
 * (earlier values converted); an integer into a FLOAT64 column is stored as a double.
 * On error the table is unchanged. */
CFX_API int cfx_h5log_append(cfx_h5log *log, const char *run_id, const char *table, int ncols,
                             const char *const *names, const int *types, const int64_t *ivals,
                             const double *fvals, const char *const *svals);
/* Write a whole table of nrows rows, replacing the node at that path (and its
 * attributes): columns[i] points to nrows int64_t, double or const char * values. */
CFX_API int cfx_h5log_write_table(cfx_h5log *log, const char *run_id, const char *table, int ncols,
                                  const char *const *names, const int *types, int64_t nrows,
                                  const void *const *columns);
/* Keep the rows whose numeric column key is <= max, in order (*removed = the number
 * dropped; may be NULL): what a run resumed from a checkpoint at step max calls before
 * it appends the later steps again. */
CFX_API int cfx_h5log_truncate(cfx_h5log *log, const char *run_id, const char *table, const char *key, double max,
                               int64_t *removed);
CFX_API int cfx_h5log_table_shape(const cfx_h5log *log, const char *run_id, const char *table, int *ncols,
                                  int64_t *nrows);
/* Column col of a table: its name, type and values (int64_t *, double * or
 * const char *const *, nrows of them). */
CFX_API int cfx_h5log_table_column(const cfx_h5log *log, const char *run_id, const char *table, int col,
                                   const char **name, int *type, const void **data);

/* ---- arrays ---------------------------------------------------------------------- */
/* Store a copy of an ndim-dimensional (0..8) row-major numeric array at path,
 * replacing any node there. */
CFX_API int cfx_h5log_set_array(cfx_h5log *log, const char *run_id, const char *path, int type,
                                const int64_t *dims, int ndim, const void *data);
/* The array at path: its type, up to cap dims, ndim and elements. */
CFX_API int cfx_h5log_array(const cfx_h5log *log, const char *run_id, const char *path, int *type,
                            int64_t *dims, int cap, int *ndim, const void **data);

/* ---- merging --------------------------------------------------------------------- */
/* Copy run run_id of src into dst, replacing a run of that id there. */
CFX_API int cfx_h5log_copy_run(cfx_h5log *dst, const cfx_h5log *src, const char *run_id);
/* Copy every run of the n results files into dst.  A run id found more than once (in
 * the inputs, or in dst already) is taken from the copy whose status attribute is
 * "done", then from the one updated last, then from the later input; each such choice
 * is described by a line of *report (malloc'd, *len bytes, NUL-terminated; cfx_free it;
 * both may be NULL).  On error dst may hold some of the runs. */
CFX_API int cfx_h5log_merge(cfx_h5log *dst, int n, const char *const *inputs, char **report, int64_t *len);

#ifdef __cplusplus
}
#endif
#endif
