/* cfx/common.h: what every cfx object shares.
 *
 * Error convention (after libuv): a function that can fail returns int, 0 on success
 * or a negative CFX_E* code.  The human-readable detail of the last failure on the
 * calling thread is in cfx_last_error(); it stays valid until the next failing cfx
 * call on the same thread.  The library never aborts, exits, longjmps or prints.
 * Everything here is thread-safe. */
#ifndef CFX_COMMON_H
#define CFX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CFX_BUILDING)
#define CFX_API __attribute__((visibility("default")))
#else
#define CFX_API
#endif

/* X-macro list of error codes: name, value, description. */
#define CFX_ERRNO_MAP(X)                                                    \
  X(EINVAL, -1, "invalid argument")                                         \
  X(ENOMEM, -2, "out of memory")                                            \
  X(EIO, -3, "input/output error")                                          \
  X(EFORMAT, -4, "malformed or unsupported data")                           \
  X(ERANGE, -5, "value out of range")                                       \
  X(ESHAPE, -6, "shape mismatch")                                           \
  X(EDTYPE, -7, "unsupported dtype")                                        \
  X(EDEVICE, -8, "device unavailable or mismatched")                        \
  X(ENOTFOUND, -9, "not found")                                             \
  X(EVERSION, -10, "unsupported version")                                   \
  X(ETORCH, -11, "libtorch error")                                          \
  X(EINTERNAL, -12, "internal error")

typedef enum cfx_errno {
  CFX_OK = 0,
#define CFX__ERRNO_ENUM(name, val, msg) CFX_##name = (val),
  CFX_ERRNO_MAP(CFX__ERRNO_ENUM)
#undef CFX__ERRNO_ENUM
} cfx_errno;

/* Short description of an error code ("shape mismatch"); never NULL. */
CFX_API const char *cfx_strerror(int code);
/* Detail of the last failure on this thread ("" if none). */
CFX_API const char *cfx_last_error(void);
/* Library version, "MAJOR.MINOR.PATCH". */
CFX_API const char *cfx_version(void);

/* CPUs this process may run on (its affinity mask, as Slurm sets it), at least 1. */
CFX_API int cfx_cpu_count(void);

/* The SIMD level the image and augmentation loops use now: "avx2" or "sse2" (x86-64
 * without AVX2, or CFX_CPU_CAPABILITY=default|sse2 in the environment, read on every
 * image operation), "c" elsewhere.  Every level gives the same pixels. */
CFX_API const char *cfx_cpu_capability(void);

/* A 64-bit hash of n bytes (FNV-1a, then a splitmix64 finaliser) mixed with seed: the
 * seeded, platform-independent hash behind train/val splits. */
CFX_API uint64_t cfx_hash64(const void *data, int64_t n, uint64_t seed);

/* Free memory that cfx returned (encoded bytes, batches, reports). */
CFX_API void cfx_free(void *p);

/* 1 when file descriptor fd is a terminal (progress bars go quiet otherwise). */
CFX_API int cfx_isatty(int fd);

/* Seconds of a monotonic wall clock (CLOCK_MONOTONIC), for timing: the same clock as the
 * cfx program's cfx.host.clock(); Lua's os.clock is CPU time. */
CFX_API double cfx_clock(void);

/* The exit status of a run that a SIGUSR1 or SIGTERM stopped after writing its checkpoint
 * (sysexits' EX_TEMPFAIL, "try again"): the cfx program and the experiment runner exit
 * with it, and a Slurm batch script requeues the task on it.  Defined here once for the
 * program (core/app), the Lua library and the batch scripts it writes. */
enum { CFX_EXIT_REQUEUE = 75 };

#ifdef __cplusplus
}
#endif
#endif
