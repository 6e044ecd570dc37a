-- cdefs.lua: the C declarations of libcfx for LuaJIT's FFI.  GENERATED from
-- core/include/cfx/*.h by tests/gen_cdefs.sh; do not edit by hand (CTest's
-- cdefs_in_sync fails when this file and the headers disagree).
local ffi = require 'ffi'
ffi.cdef [[
typedef enum cfx_errno {
 CFX_OK = 0,
 CFX_EINVAL = (-1), CFX_ENOMEM = (-2), CFX_EIO = (-3), CFX_EFORMAT = (-4), CFX_ERANGE = (-5), CFX_ESHAPE = (-6), CFX_EDTYPE = (-7), CFX_EDEVICE = (-8), CFX_ENOTFOUND = (-9), CFX_EVERSION = (-10), CFX_ETORCH = (-11), CFX_EINTERNAL = (-12),
} cfx_errno;
 const char *cfx_strerror(int code);
 const char *cfx_last_error(void);
 const char *cfx_version(void);
 int cfx_cpu_count(void);
 const char *cfx_cpu_capability(void);
 uint64_t cfx_hash64(const void *data, int64_t n, uint64_t seed);
 void cfx_free(void *p);
 int cfx_isatty(int fd);
 double cfx_clock(void);
enum { CFX_EXIT_REQUEUE = 75 };
typedef struct cfx_image {
 uint8_t *data;
 int32_t width;
 int32_t height;
 int32_t channels;
} cfx_image;
enum {
 CFX_IMAGE_UNKNOWN = 0,
 CFX_IMAGE_JPEG = 1,
 CFX_IMAGE_PNG = 2,
 CFX_IMAGE_GIF = 3,
 CFX_IMAGE_WEBP = 4,
 CFX_IMAGE_BMP = 5,
 CFX_IMAGE_TIFF = 6
};
enum {
 CFX_FILTER_NEAREST = 0,
 CFX_FILTER_BOX = 1,
 CFX_FILTER_BILINEAR = 2,
 CFX_FILTER_HAMMING = 3,
 CFX_FILTER_BICUBIC = 4,
 CFX_FILTER_LANCZOS = 5
};
enum {
 CFX_SUBSAMP_444 = 0,
 CFX_SUBSAMP_422 = 1,
 CFX_SUBSAMP_420 = 2,
 CFX_SUBSAMP_GRAY = 3,
 CFX_SUBSAMP_440 = 4,
 CFX_SUBSAMP_411 = 5,
 CFX_SUBSAMP_UNKNOWN = -1
};
typedef struct cfx_image_info {
 int32_t format;
 int32_t width;
 int32_t height;
 int32_t components;
 int32_t bit_depth;
 int32_t subsampling;
 int32_t progressive;
 int32_t orientation;
 int32_t quality;
 int32_t has_alpha;
 int32_t palette;
 int32_t cmyk;
} cfx_image_info;
typedef struct cfx_decode_opts {
 int64_t max_pixels;
 int32_t min_width;
 int32_t min_height;
 int32_t apply_orientation;
 int32_t background;
} cfx_decode_opts;
 void cfx_image_release(cfx_image *img);
 int cfx_image_sniff(const uint8_t *buf, int64_t n);
 const char *cfx_image_format_name(int format);
 int cfx_image_probe(const uint8_t *buf, int64_t n, cfx_image_info *info);
 int cfx_image_decode(const uint8_t *buf, int64_t n, const cfx_decode_opts *opts,
 cfx_image *out);
 int cfx_image_encode_jpeg(const cfx_image *img, int quality, int subsampling, uint8_t **out,
 int64_t *n);
 int cfx_image_encode_png(const cfx_image *img, int level, uint8_t **out, int64_t *n);
 int cfx_image_resize(const cfx_image *src, int32_t width, int32_t height, int filter,
 const double *box, cfx_image *out);
 int cfx_image_crop(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
 cfx_image *out);
 int cfx_image_center_crop(const cfx_image *src, int32_t w, int32_t h, cfx_image *out);
 int cfx_image_flip(const cfx_image *src, int horizontal, cfx_image *out);
 int cfx_image_affine(const cfx_image *src, double angle, double tx, double ty, double scale,
 double shear_x, double shear_y, int filter, int32_t fill, cfx_image *out);
 int cfx_image_pad(const cfx_image *src, int32_t left, int32_t top, int32_t right, int32_t bottom,
 int32_t fill, int resize_back, cfx_image *out);
 int cfx_image_cutout(const cfx_image *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t fill,
 cfx_image *out);
 int cfx_image_gaussian_blur(const cfx_image *src, double sigma, cfx_image *out);
 int cfx_image_jpeg_roundtrip(const cfx_image *src, int quality, cfx_image *out);
typedef struct cfx_rng {
 uint64_t s[4];
} cfx_rng;
 void cfx_rng_seed(cfx_rng *rng, uint64_t seed);
 uint64_t cfx_rng_next(cfx_rng *rng);
 double cfx_rng_uniform(cfx_rng *rng, double lo, double hi);
 int64_t cfx_rng_int(cfx_rng *rng, int64_t lo, int64_t hi);
 uint64_t cfx_augment_seed(uint64_t run_seed, uint64_t epoch, uint64_t index);
 int cfx_image_random_resized_crop(const cfx_image *src, cfx_rng *rng, int32_t size, double scale_min,
 double scale_max, double ratio_min, double ratio_max, int filter,
 cfx_image *out);
typedef struct cfx_augment cfx_augment;
enum {
 CFX_AUG_JPEG = 1 << 0,
 CFX_AUG_RESIZE = 1 << 1,
 CFX_AUG_CROP = 1 << 2,
 CFX_AUG_HFLIP = 1 << 3,
 CFX_AUG_VFLIP = 1 << 4,
 CFX_AUG_RESIZED_CROP = 1 << 5,
 CFX_AUG_ROTATE = 1 << 6,
 CFX_AUG_TRANSLATE = 1 << 7,
 CFX_AUG_SHEAR = 1 << 8,
 CFX_AUG_PAD = 1 << 9,
 CFX_AUG_CUTOUT = 1 << 10,
 CFX_AUG_ALL = (1 << 11) - 1
};
typedef struct cfx_randaugment_opts {
 int32_t crop;
 int32_t n_max;
 uint32_t ops;
 int32_t jpeg_min;
 int32_t jpeg_max;
 double resize_max;
 double rrc_scale_min;
 double rrc_scale_max;
 double rrc_ratio_min;
 double rrc_ratio_max;
 double flip_p;
 double rotate_max;
 double translate_max;
 double shear_max;
 double pad_max;
 double cutout_p;
 double cutout_min;
 double cutout_max;
} cfx_randaugment_opts;
 void cfx_randaugment_defaults(cfx_randaugment_opts *o);
enum {
 CFX_PERTURB_JPEG = 0,
 CFX_PERTURB_BLUR = 1,
 CFX_PERTURB_ROTATE = 2,
 CFX_PERTURB_RESIZE = 3,
 CFX_PERTURB_PAD = 4,
 CFX_PERTURB_SHEAR = 5
};
 int cfx_augment_new(cfx_augment **out);
 void cfx_augment_free(cfx_augment *a);
 int cfx_augment_clone(const cfx_augment *a, cfx_augment **out);
 int cfx_augment_add_randaugment(cfx_augment *a, const cfx_randaugment_opts *o);
 int cfx_augment_add_eval(cfx_augment *a, int32_t resize, int32_t crop, int filter);
 int cfx_augment_add_perturb(cfx_augment *a, int kind, double level);
 int cfx_augment_apply(const cfx_augment *a, const cfx_image *src, uint64_t seed, cfx_image *out);
 int32_t cfx_augment_output_size(const cfx_augment *a);
 int cfx_image_to_chw(const cfx_image *img, uint8_t *dst, int64_t cap);
 int cfx_fs_list(const char *path, char **out, int64_t *n);
 int cfx_fs_kind(const char *path);
 int cfx_fs_mkdirs(const char *path);
typedef struct cfx_h5log cfx_h5log;
enum { CFX_H5LOG_FORMAT_VERSION = 1 };
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
enum { CFX_H5LOG_ABSENT = 0, CFX_H5LOG_GROUP = 1, CFX_H5LOG_TABLE = 2, CFX_H5LOG_ARRAY = 3 };
enum { CFX_H5LOG_READONLY = 1, CFX_H5LOG_TRUNCATE = 2 };
 int cfx_h5log_open(const char *path, int flags, cfx_h5log **out);
 int cfx_h5log_close(cfx_h5log *log);
 void cfx_h5log_free(cfx_h5log *log);
 int cfx_h5log_flush(cfx_h5log *log);
 int cfx_h5log_set_flush_interval(cfx_h5log *log, double seconds);
 const char *cfx_h5log_path(const cfx_h5log *log);
 int cfx_h5log_stats(const cfx_h5log *log, int64_t *flushes, double *seconds);
 int cfx_h5log_num_runs(const cfx_h5log *log);
 const char *cfx_h5log_run_id(const cfx_h5log *log, int i);
 int cfx_h5log_add_run(cfx_h5log *log, const char *run_id, int *created);
 int cfx_h5log_remove(cfx_h5log *log, const char *run_id, const char *path);
 int cfx_h5log_kind(const cfx_h5log *log, const char *run_id, const char *path);
 int cfx_h5log_children(const cfx_h5log *log, const char *run_id, const char *path, char **out,
 int64_t *n);
 int cfx_h5log_set_attr_string(cfx_h5log *log, const char *run_id, const char *path, const char *key,
 const char *value);
 int cfx_h5log_set_attr_int(cfx_h5log *log, const char *run_id, const char *path, const char *key,
 int64_t value);
 int cfx_h5log_set_attr_float(cfx_h5log *log, const char *run_id, const char *path, const char *key,
 double value);
 int cfx_h5log_num_attrs(const cfx_h5log *log, const char *run_id, const char *path, int *n);
 int cfx_h5log_attr(const cfx_h5log *log, const char *run_id, const char *path, int i, const char **key,
 int *type, int64_t *ival, double *fval, const char **sval);
 int cfx_h5log_append(cfx_h5log *log, const char *run_id, const char *table, int ncols,
 const char *const *names, const int *types, const int64_t *ivals,
 const double *fvals, const char *const *svals);
 int cfx_h5log_write_table(cfx_h5log *log, const char *run_id, const char *table, int ncols,
 const char *const *names, const int *types, int64_t nrows,
 const void *const *columns);
 int cfx_h5log_truncate(cfx_h5log *log, const char *run_id, const char *table, const char *key, double max,
 int64_t *removed);
 int cfx_h5log_table_shape(const cfx_h5log *log, const char *run_id, const char *table, int *ncols,
 int64_t *nrows);
 int cfx_h5log_table_column(const cfx_h5log *log, const char *run_id, const char *table, int col,
 const char **name, int *type, const void **data);
 int cfx_h5log_set_array(cfx_h5log *log, const char *run_id, const char *path, int type,
 const int64_t *dims, int ndim, const void *data);
 int cfx_h5log_array(const cfx_h5log *log, const char *run_id, const char *path, int *type,
 int64_t *dims, int cap, int *ndim, const void **data);
 int cfx_h5log_copy_run(cfx_h5log *dst, const cfx_h5log *src, const char *run_id);
 int cfx_h5log_merge(cfx_h5log *dst, int n, const char *const *inputs, char **report, int64_t *len);
typedef struct cfx_store cfx_store;
typedef struct cfx_store_writer cfx_store_writer;
enum { CFX_STORE_VERSION = 2 };
enum { CFX_STORE_FLAG_UNREADABLE = 1 };
 int cfx_store_writer_open(const char *path, cfx_store_writer **out);
 int cfx_store_writer_add_generator(cfx_store_writer *w, const char *name, const char *architecture,
 const char *subset, int32_t *id);
 int cfx_store_writer_set_generator_source(cfx_store_writer *w, int32_t id, const char *source);
 int cfx_store_writer_add(cfx_store_writer *w, const uint8_t *bytes, int64_t n, int label,
 int32_t generator, int32_t group, int32_t width, int32_t height, int format, int flags,
 const char *name);
 int cfx_store_writer_set_attr(cfx_store_writer *w, const char *key, const char *value);
 int64_t cfx_store_writer_count(const cfx_store_writer *w);
 int cfx_store_writer_finish(cfx_store_writer *w);
 void cfx_store_writer_free(cfx_store_writer *w);
 int cfx_store_open(const char *path, cfx_store **out);
 cfx_store *cfx_store_retain(const cfx_store *s);
 void cfx_store_close(cfx_store *s);
 int64_t cfx_store_count(const cfx_store *s);
 int32_t cfx_store_num_generators(const cfx_store *s);
 const uint64_t *cfx_store_offsets(const cfx_store *s);
 const uint8_t *cfx_store_labels(const cfx_store *s);
 const int32_t *cfx_store_generators(const cfx_store *s);
 const int32_t *cfx_store_groups(const cfx_store *s);
 const int32_t *cfx_store_widths(const cfx_store *s);
 const int32_t *cfx_store_heights(const cfx_store *s);
 const uint8_t *cfx_store_formats(const cfx_store *s);
 const uint8_t *cfx_store_flags(const cfx_store *s);
 const char *cfx_store_name(const cfx_store *s, int64_t i);
 const char *cfx_store_generator_name(const cfx_store *s, int32_t g);
 const char *cfx_store_generator_architecture(const cfx_store *s, int32_t g);
 const char *cfx_store_generator_subset(const cfx_store *s, int32_t g);
 const char *cfx_store_generator_source(const cfx_store *s, int32_t g);
 uint64_t cfx_store_image_hash(const cfx_store *s, int64_t i, uint64_t seed);
 const char *cfx_store_attr(const cfx_store *s, const char *key);
 int cfx_store_read(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n);
 int cfx_store_read_prefix(const cfx_store *s, int64_t i, uint8_t *dst, int64_t cap, int64_t *n);
typedef struct cfx_loader cfx_loader;
typedef struct cfx_loader_opts {
 const cfx_store *store;
 const int64_t *indices;
 int64_t num_indices;
 const cfx_augment *augment;
 int32_t batch;
 int32_t workers;
 int32_t prefetch;
 int32_t shuffle;
 int32_t drop_last;
 int32_t decode_min_size;
 uint64_t seed;
 int64_t start;
 int64_t max_batches;
} cfx_loader_opts;
typedef struct cfx_loader_batch {
 uint8_t *images;
 uint8_t *labels;
 int32_t *generators;
 int64_t *indices;
 int32_t count;
 int32_t size;
 int64_t sequence;
 int64_t epoch;
} cfx_loader_batch;
typedef struct cfx_loader_stats {
 int64_t batches;
 int64_t images;
 int64_t failed;
 int64_t last_failed;
 int64_t batches_per_epoch;
} cfx_loader_stats;
 int cfx_loader_new(const cfx_loader_opts *o, cfx_loader **out);
 void cfx_loader_free(cfx_loader *l);
 int cfx_loader_next(cfx_loader *l, cfx_loader_batch *out);
 void cfx_loader_batch_release(cfx_loader_batch *b);
 int cfx_loader_stats_get(const cfx_loader *l, cfx_loader_stats *out);
 const char *cfx_loader_last_failure(const cfx_loader *l);
 int64_t cfx_loader_position(const cfx_loader *l);
 int cfx_metrics_average_precision(const double *scores, const uint8_t *labels, int64_t n, double *out);
 int cfx_metrics_roc_auc(const double *scores, const uint8_t *labels, int64_t n, double *out);
 int cfx_metrics_accuracy(const double *scores, const uint8_t *labels, int64_t n, double threshold,
 double *acc, double *acc_real, double *acc_fake);
typedef struct cfx_group_metrics {
 int64_t n_real, n_fake;
 double ap, auroc;
 double acc, acc_real, acc_fake;
} cfx_group_metrics;
 int cfx_metrics_grouped(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
 int32_t ngroups, double threshold, cfx_group_metrics *out);
 int cfx_metrics_deal_reals(const uint8_t *labels, const int64_t *keys, int64_t n, uint64_t seed,
 int32_t *groups);
 int cfx_metrics_brier(const double *probs, const uint8_t *labels, int64_t n, double *out);
 int cfx_metrics_nll_logits(const double *logits, const uint8_t *labels, int64_t n, double *out);
enum { CFX_BINS_UNIFORM = 0, CFX_BINS_QUANTILE = 1 };
 int cfx_metrics_calibration(const double *probs, const uint8_t *labels, int64_t n, int32_t nbins,
 int strategy, double *ece, double *mean_prob, double *frac_pos, int64_t *count,
 double *edges);
 int cfx_metrics_eer(const double *scores, const uint8_t *labels, int64_t n, double *eer,
 double *threshold);
 int cfx_metrics_tpr_at_fpr(const double *scores, const uint8_t *labels, int64_t n, const double *fprs,
 int64_t k, double *tpr, double *threshold, double *fpr_out);
 int cfx_metrics_fpr_at_tpr(const double *scores, const uint8_t *labels, int64_t n, const double *tprs,
 int64_t k, double *fpr, double *threshold);
 int cfx_metrics_balanced_accuracy(const double *scores, const uint8_t *labels, int64_t n,
 double threshold, double *out);
 int cfx_metrics_threshold_best_balanced(const double *scores, const uint8_t *labels, int64_t n,
 double *threshold, double *ba);
typedef struct cfx_bootstrap_opts {
 int64_t resamples;
 double level;
 uint64_t seed;
 int32_t nested;
 double threshold;
} cfx_bootstrap_opts;
typedef struct cfx_bootstrap_result {
 double map, map_lo, map_hi, map_se;
 double acc, acc_lo, acc_hi, acc_se;
 int32_t n_units;
 int64_t resamples;
} cfx_bootstrap_result;
 int cfx_metrics_bootstrap(const double *scores, const uint8_t *labels, const int32_t *groups, int64_t n,
 int32_t ngroups, const cfx_bootstrap_opts *opts, cfx_bootstrap_result *out,
 double *map_reps, double *acc_reps);
typedef struct cfx_parquet cfx_parquet;
enum {
 CFX_PARQUET_BOOL = 1,
 CFX_PARQUET_INT32 = 2,
 CFX_PARQUET_INT64 = 3,
 CFX_PARQUET_INT96 = 4,
 CFX_PARQUET_FLOAT = 5,
 CFX_PARQUET_DOUBLE = 6,
 CFX_PARQUET_BYTES = 7,
 CFX_PARQUET_STRING = 8,
 CFX_PARQUET_FIXED_BYTES = 9
};
enum {
 CFX_PARQUET_UNCOMPRESSED = 0,
 CFX_PARQUET_SNAPPY = 1,
 CFX_PARQUET_GZIP = 2,
 CFX_PARQUET_LZO = 3,
 CFX_PARQUET_BROTLI = 4,
 CFX_PARQUET_LZ4 = 5,
 CFX_PARQUET_ZSTD = 6,
 CFX_PARQUET_LZ4_RAW = 7
};
typedef struct cfx_parquet_column_info {
 const char *name;
 int32_t type;
 int32_t physical_type;
 int32_t type_length;
 int32_t optional;
 int32_t converted_type;
 int32_t logical_type;
} cfx_parquet_column_info;
typedef struct cfx_parquet_chunk_info {
 int32_t codec;
 int32_t has_dictionary;
 int64_t num_values;
 int64_t offset;
 int64_t compressed_size;
 int64_t uncompressed_size;
} cfx_parquet_chunk_info;
typedef struct cfx_parquet_column {
 int32_t type;
 int32_t width;
 int64_t length;
 int64_t null_count;
 void *values;
 int64_t *offsets;
 uint8_t *data;
 uint8_t *validity;
 int64_t capacity_[4];
} cfx_parquet_column;
 int cfx_parquet_open(const char *path, cfx_parquet **out);
 int cfx_parquet_open_memory(const uint8_t *buf, int64_t n, const char *name, cfx_parquet **out);
 void cfx_parquet_close(cfx_parquet *pq);
 int cfx_parquet_set_max_bytes(cfx_parquet *pq, int64_t max_bytes);
 int64_t cfx_parquet_num_rows(const cfx_parquet *pq);
 int32_t cfx_parquet_num_row_groups(const cfx_parquet *pq);
 int64_t cfx_parquet_row_group_num_rows(const cfx_parquet *pq, int32_t rg);
 int32_t cfx_parquet_num_columns(const cfx_parquet *pq);
 const char *cfx_parquet_column_name(const cfx_parquet *pq, int32_t col);
 int32_t cfx_parquet_column_type(const cfx_parquet *pq, int32_t col);
 int32_t cfx_parquet_column_index(const cfx_parquet *pq, const char *name);
 int cfx_parquet_column_describe(const cfx_parquet *pq, int32_t col, cfx_parquet_column_info *out);
 int cfx_parquet_chunk_describe(const cfx_parquet *pq, int32_t rg, int32_t col,
 cfx_parquet_chunk_info *out);
 const char *cfx_parquet_created_by(const cfx_parquet *pq);
 int32_t cfx_parquet_num_metadata(const cfx_parquet *pq);
 const char *cfx_parquet_metadata_key(const cfx_parquet *pq, int32_t i);
 const char *cfx_parquet_metadata_value(const cfx_parquet *pq, int32_t i, int64_t *len);
 const char *cfx_parquet_metadata_find(const cfx_parquet *pq, const char *key, int64_t *len);
 int cfx_parquet_read_column(const cfx_parquet *pq, int32_t rg, int32_t col, cfx_parquet_column *out);
 void cfx_parquet_column_release(cfx_parquet_column *col);
 const char *cfx_parquet_type_name(int32_t type);
 const char *cfx_parquet_codec_name(int32_t codec);
typedef struct cfx_safetensors cfx_safetensors;
enum {
 CFX_SAFETENSORS_F64 = 0,
 CFX_SAFETENSORS_F32 = 1,
 CFX_SAFETENSORS_F16 = 2,
 CFX_SAFETENSORS_BF16 = 3,
 CFX_SAFETENSORS_I64 = 4,
 CFX_SAFETENSORS_I32 = 5,
 CFX_SAFETENSORS_I16 = 6,
 CFX_SAFETENSORS_I8 = 7,
 CFX_SAFETENSORS_U8 = 8,
 CFX_SAFETENSORS_BOOL = 9,
 CFX_SAFETENSORS_U16 = 10,
 CFX_SAFETENSORS_U32 = 11,
 CFX_SAFETENSORS_U64 = 12,
 CFX_SAFETENSORS_F8_E4M3 = 13,
 CFX_SAFETENSORS_F8_E5M2 = 14,
 CFX_SAFETENSORS_NUM_DTYPES = 15
};
enum { CFX_SAFETENSORS_MAX_HEADER = 100000000 };
 const char *cfx_safetensors_dtype_name(int32_t dtype);
 int32_t cfx_safetensors_dtype_size(int32_t dtype);
 int cfx_safetensors_open(const char *path, cfx_safetensors **out);
 int cfx_safetensors_open_memory(const uint8_t *buf, int64_t n, const char *name,
 cfx_safetensors **out);
 void cfx_safetensors_close(cfx_safetensors *st);
 int32_t cfx_safetensors_count(const cfx_safetensors *st);
 int32_t cfx_safetensors_find(const cfx_safetensors *st, const char *name);
 const char *cfx_safetensors_name(const cfx_safetensors *st, int32_t i);
 int32_t cfx_safetensors_dtype(const cfx_safetensors *st, int32_t i);
 int32_t cfx_safetensors_ndim(const cfx_safetensors *st, int32_t i);
 const int64_t *cfx_safetensors_shape(const cfx_safetensors *st, int32_t i);
 const void *cfx_safetensors_data(const cfx_safetensors *st, int32_t i, int64_t *nbytes);
 int32_t cfx_safetensors_num_metadata(const cfx_safetensors *st);
 const char *cfx_safetensors_metadata_key(const cfx_safetensors *st, int32_t i);
 const char *cfx_safetensors_metadata_value(const cfx_safetensors *st, int32_t i);
 const char *cfx_safetensors_metadata(const cfx_safetensors *st, const char *key);
 int cfx_safetensors_write(const char *path, int32_t n, const char *const *names,
 const int32_t *dtypes, const int64_t *const *shapes, const int32_t *ndims,
 const void *const *data, int32_t nmeta, const char *const *meta_keys,
 const char *const *meta_values);
typedef struct cfx_tensor cfx_tensor;
typedef enum cfx_dtype {
 CFX_UINT8 = 0,
 CFX_INT8 = 1,
 CFX_INT16 = 2,
 CFX_INT32 = 3,
 CFX_INT64 = 4,
 CFX_FLOAT16 = 5,
 CFX_FLOAT32 = 6,
 CFX_FLOAT64 = 7,
 CFX_BOOL = 8,
 CFX_BFLOAT16 = 9,
 CFX_DTYPE_COUNT = 10
} cfx_dtype;
enum { CFX_CPU = -1 };
enum { CFX_MAX_DIMS = 16 };
enum { CFX_REDUCE_NONE = 0, CFX_REDUCE_MEAN = 1, CFX_REDUCE_SUM = 2 };
enum { CFX_PAD_CONSTANT = 0, CFX_PAD_REFLECT = 1, CFX_PAD_REPLICATE = 2, CFX_PAD_CIRCULAR = 3 };
enum { CFX_INTERP_NEAREST = 0, CFX_INTERP_BILINEAR = 1, CFX_INTERP_BICUBIC = 2, CFX_INTERP_AREA = 3 };
enum { CFX_CLAMP_MIN = 1, CFX_CLAMP_MAX = 2 };
typedef void (*cfx_release_fn)(void *ctx);
 void cfx_tensor_free(cfx_tensor *t);
 int cfx_dtype_size(int dtype);
 int cfx_tensor_empty(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_zeros(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_ones(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_full(const int64_t *dims, int ndim, double value, int dtype, int device,
 cfx_tensor **out);
 int cfx_tensor_rand(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_randn(const int64_t *dims, int ndim, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_randint(int64_t low, int64_t high, const int64_t *dims, int ndim, int dtype,
 int device, cfx_tensor **out);
 int cfx_tensor_randperm(int64_t n, int dtype, int device, cfx_tensor **out);
 int cfx_tensor_arange(double start, double end, double step, int dtype, int device,
 cfx_tensor **out);
 int cfx_tensor_from_data(const void *data, const int64_t *dims, int ndim, int dtype,
 cfx_tensor **out);
 int cfx_tensor_from_blob(void *data, const int64_t *dims, const int64_t *strides, int ndim,
 int dtype, cfx_release_fn release, void *ctx, cfx_tensor **out);
 int cfx_tensor_from_malloc(void *data, const int64_t *dims, int ndim, int dtype, cfx_tensor **out);
 int cfx_tensor_copy_to(const cfx_tensor *t, void *dst, int64_t nbytes);
 int cfx_tensor_data_ptr(const cfx_tensor *t, void **out);
 int cfx_tensor_alias(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_ndim(const cfx_tensor *t);
 int cfx_tensor_shape(const cfx_tensor *t, int64_t *dims, int cap);
 int cfx_tensor_strides(const cfx_tensor *t, int64_t *strides, int cap);
 int64_t cfx_tensor_numel(const cfx_tensor *t);
 int cfx_tensor_dtype(const cfx_tensor *t);
 int cfx_tensor_device(const cfx_tensor *t);
 int cfx_tensor_is_contiguous(const cfx_tensor *t);
 int cfx_tensor_requires_grad(const cfx_tensor *t);
 int cfx_tensor_is_leaf(const cfx_tensor *t);
 int cfx_tensor_is_same(const cfx_tensor *a, const cfx_tensor *b);
 int cfx_tensor_item(const cfx_tensor *t, double *out);
 int cfx_tensor_item_int64(const cfx_tensor *t, int64_t *out);
 int cfx_tensor_equal(const cfx_tensor *a, const cfx_tensor *b, int *out);
 int cfx_tensor_allclose(const cfx_tensor *a, const cfx_tensor *b, double rtol, double atol,
 int *out);
 int cfx_tensor_describe(const cfx_tensor *t, char *buf, int cap);
 int cfx_tensor_to(const cfx_tensor *t, int dtype, int device, int non_blocking, int copy,
 cfx_tensor **out);
 int cfx_tensor_pin_memory(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_is_pinned(const cfx_tensor *t);
 int cfx_tensor_contiguous(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_clone(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_reshape(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
 int cfx_tensor_view(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
 int cfx_tensor_permute(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
 int cfx_tensor_transpose(const cfx_tensor *t, int64_t dim0, int64_t dim1, cfx_tensor **out);
 int cfx_tensor_narrow(const cfx_tensor *t, int64_t dim, int64_t start, int64_t length,
 cfx_tensor **out);
 int cfx_tensor_slice(const cfx_tensor *t, int64_t dim, int64_t start, int64_t end,
 int64_t step, cfx_tensor **out);
 int cfx_tensor_select(const cfx_tensor *t, int64_t dim, int64_t index, cfx_tensor **out);
 int cfx_tensor_index_select(const cfx_tensor *t, int64_t dim, const cfx_tensor *index,
 cfx_tensor **out);
 int cfx_tensor_gather(const cfx_tensor *t, int64_t dim, const cfx_tensor *index,
 cfx_tensor **out);
 int cfx_tensor_masked_fill(const cfx_tensor *t, const cfx_tensor *mask, double value,
 cfx_tensor **out);
 int cfx_tensor_unsqueeze(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
 int cfx_tensor_squeeze(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_squeeze_dim(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
 int cfx_tensor_expand(const cfx_tensor *t, const int64_t *dims, int ndim, cfx_tensor **out);
 int cfx_tensor_repeat(const cfx_tensor *t, const int64_t *reps, int nreps, cfx_tensor **out);
 int cfx_tensor_flatten(const cfx_tensor *t, int64_t start_dim, int64_t end_dim,
 cfx_tensor **out);
 int cfx_tensor_cat(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out);
 int cfx_tensor_stack(cfx_tensor *const *ts, int n, int64_t dim, cfx_tensor **out);
 int cfx_tensor_chunk(const cfx_tensor *t, int64_t chunks, int64_t dim, cfx_tensor **outs,
 int cap, int *n);
 int cfx_tensor_add(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out);
 int cfx_tensor_sub(const cfx_tensor *a, const cfx_tensor *b, double alpha, cfx_tensor **out);
 int cfx_tensor_mul(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_div(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_pow(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_maximum(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_minimum(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_add_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_sub_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_mul_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_div_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_pow_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_rsub_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_rdiv_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_rpow_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_add_(cfx_tensor *t, const cfx_tensor *b, double alpha);
 int cfx_tensor_sub_(cfx_tensor *t, const cfx_tensor *b, double alpha);
 int cfx_tensor_mul_(cfx_tensor *t, const cfx_tensor *b);
 int cfx_tensor_div_(cfx_tensor *t, const cfx_tensor *b);
 int cfx_tensor_add_scalar_(cfx_tensor *t, double s);
 int cfx_tensor_mul_scalar_(cfx_tensor *t, double s);
 int cfx_tensor_div_scalar_(cfx_tensor *t, double s);
 int cfx_tensor_copy_(cfx_tensor *t, const cfx_tensor *src);
 int cfx_tensor_fill_(cfx_tensor *t, double value);
 int cfx_tensor_zero_(cfx_tensor *t);
 int cfx_tensor_clamp_(cfx_tensor *t, double lo, double hi, int which);
 int cfx_tensor_addcmul_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value);
 int cfx_tensor_addcdiv_(cfx_tensor *t, const cfx_tensor *a, const cfx_tensor *b, double value);
 int cfx_tensor_lerp_(cfx_tensor *t, const cfx_tensor *end, double weight);
 int cfx_tensor_uniform_(cfx_tensor *t, double lo, double hi);
 int cfx_tensor_normal_(cfx_tensor *t, double mean, double std);
 int cfx_tensor_eq(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_ne(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_lt(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_le(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_gt(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_ge(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_eq_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_ne_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_lt_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_le_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_gt_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_ge_scalar(const cfx_tensor *a, double s, cfx_tensor **out);
 int cfx_tensor_logical_and(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_logical_or(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_where(const cfx_tensor *cond, const cfx_tensor *a, const cfx_tensor *b,
 cfx_tensor **out);
 int cfx_tensor_clamp(const cfx_tensor *t, double lo, double hi, int which, cfx_tensor **out);
 int cfx_tensor_neg(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_exp(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_log(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_log1p(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_sqrt(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_rsqrt(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_abs(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_sign(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_floor(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_ceil(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_round(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_sin(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_cos(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_tanh(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_sigmoid(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_erf(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_reciprocal(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_square(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_relu(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_silu(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_gelu(const cfx_tensor *t, int approximate, cfx_tensor **out);
 int cfx_tensor_logical_not(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_isnan(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_isfinite(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_sum(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
 cfx_tensor **out);
 int cfx_tensor_mean(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
 cfx_tensor **out);
 int cfx_tensor_var(const cfx_tensor *t, const int64_t *dims, int ndim, int64_t correction,
 int keepdim, cfx_tensor **out);
 int cfx_tensor_std(const cfx_tensor *t, const int64_t *dims, int ndim, int64_t correction,
 int keepdim, cfx_tensor **out);
 int cfx_tensor_prod(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_norm(const cfx_tensor *t, double p, const int64_t *dims, int ndim, int keepdim,
 cfx_tensor **out);
 int cfx_tensor_logsumexp(const cfx_tensor *t, const int64_t *dims, int ndim, int keepdim,
 cfx_tensor **out);
 int cfx_tensor_cumsum(const cfx_tensor *t, int64_t dim, cfx_tensor **out);
 int cfx_tensor_max_all(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_min_all(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_argmax_all(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_argmin_all(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_max(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values,
 cfx_tensor **indices);
 int cfx_tensor_min(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **values,
 cfx_tensor **indices);
 int cfx_tensor_argmax(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out);
 int cfx_tensor_argmin(const cfx_tensor *t, int64_t dim, int keepdim, cfx_tensor **out);
 int cfx_tensor_topk(const cfx_tensor *t, int64_t k, int64_t dim, int largest, int sorted,
 cfx_tensor **values, cfx_tensor **indices);
 int cfx_tensor_sort(const cfx_tensor *t, int64_t dim, int descending, int stable,
 cfx_tensor **values, cfx_tensor **indices);
 int cfx_tensor_matmul(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_mm(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_bmm(const cfx_tensor *a, const cfx_tensor *b, cfx_tensor **out);
 int cfx_tensor_linear(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias,
 cfx_tensor **out);
 int cfx_tensor_addmm(const cfx_tensor *input, const cfx_tensor *a, const cfx_tensor *b,
 double beta, double alpha, cfx_tensor **out);
 int cfx_tensor_conv2d(const cfx_tensor *x, const cfx_tensor *w, const cfx_tensor *bias,
 const int64_t *stride, const int64_t *padding, const int64_t *dilation,
 int64_t groups, cfx_tensor **out);
 int cfx_tensor_conv_transpose2d(const cfx_tensor *x, const cfx_tensor *w,
 const cfx_tensor *bias, const int64_t *stride,
 const int64_t *padding, const int64_t *output_padding,
 int64_t groups, const int64_t *dilation, cfx_tensor **out);
 int cfx_tensor_max_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride,
 const int64_t *padding, const int64_t *dilation, int ceil_mode,
 cfx_tensor **out);
 int cfx_tensor_avg_pool2d(const cfx_tensor *x, const int64_t *kernel, const int64_t *stride,
 const int64_t *padding, int ceil_mode, int count_include_pad,
 cfx_tensor **out);
 int cfx_tensor_adaptive_avg_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out);
 int cfx_tensor_adaptive_max_pool2d(const cfx_tensor *x, const int64_t *size, cfx_tensor **out);
 int cfx_tensor_layer_norm(const cfx_tensor *x, const int64_t *normalized_shape, int n,
 const cfx_tensor *weight, const cfx_tensor *bias, double eps,
 cfx_tensor **out);
 int cfx_tensor_batch_norm(const cfx_tensor *x, const cfx_tensor *weight,
 const cfx_tensor *bias, cfx_tensor *running_mean,
 cfx_tensor *running_var, int training, double momentum,
 double eps, cfx_tensor **out);
 int cfx_tensor_group_norm(const cfx_tensor *x, int64_t groups, const cfx_tensor *weight,
 const cfx_tensor *bias, double eps, cfx_tensor **out);
 int cfx_tensor_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out);
 int cfx_tensor_log_softmax(const cfx_tensor *x, int64_t dim, cfx_tensor **out);
 int cfx_tensor_dropout(const cfx_tensor *x, double p, int training, cfx_tensor **out);
 int cfx_tensor_scaled_dot_product_attention(const cfx_tensor *q, const cfx_tensor *k,
 const cfx_tensor *v, const cfx_tensor *mask,
 double dropout_p, int is_causal, double scale,
 cfx_tensor **out);
 int cfx_tensor_binary_cross_entropy_with_logits(const cfx_tensor *x, const cfx_tensor *target,
 const cfx_tensor *weight,
 const cfx_tensor *pos_weight, int reduction,
 cfx_tensor **out);
 int cfx_tensor_cross_entropy(const cfx_tensor *x, const cfx_tensor *target, int reduction,
 cfx_tensor **out);
 int cfx_tensor_mse_loss(const cfx_tensor *x, const cfx_tensor *target, int reduction,
 cfx_tensor **out);
 int cfx_tensor_pad(const cfx_tensor *x, const int64_t *pads, int npads, int mode, double value,
 cfx_tensor **out);
 int cfx_tensor_interpolate(const cfx_tensor *x, const int64_t *size, int nsize, const double *scales,
 int mode, int align_corners, int antialias, cfx_tensor **out);
 int cfx_manual_seed(uint64_t seed);
 int cfx_get_rng_state(cfx_tensor **out);
 int cfx_set_rng_state(const cfx_tensor *state);
 int cfx_tensor_requires_grad_(cfx_tensor *t, int requires_grad);
 int cfx_tensor_backward(const cfx_tensor *t, const cfx_tensor *grad, int retain_graph,
 int create_graph);
 int cfx_tensor_grad(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_set_grad(cfx_tensor *t, const cfx_tensor *grad);
 int cfx_tensor_zero_grad(cfx_tensor *t, int set_to_none);
 int cfx_tensor_detach(const cfx_tensor *t, cfx_tensor **out);
 int cfx_tensor_detach_(cfx_tensor *t);
 int cfx_grad_set_enabled(int enabled);
 int cfx_grad_is_enabled(void);
 int cfx_autocast_enter(int device, int dtype);
 int cfx_autocast_exit(int device);
 int cfx_autocast_is_enabled(int device);
 int cfx_set_num_threads(int n);
 int cfx_get_num_threads(void);
 int cfx_cuda_is_available(void);
 int cfx_cuda_is_built(void);
 int cfx_cuda_device_count(void);
 int64_t cfx_memory_live_bytes(void);
 int64_t cfx_memory_peak_bytes(void);
 void cfx_memory_reset_peak(void);
/* Lua side only: the tensor type of lua/cfx/tensor.lua is this one-pointer box, a
   cdata value with a metatype (operators, __len, __gc), unlike a table wrapper. */
typedef struct cfx_lua_tensor { cfx_tensor *h; } cfx_lua_tensor;
]]
return ffi
