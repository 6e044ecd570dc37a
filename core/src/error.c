/* Per-thread last-error message, the error-code table, and small runtime queries. */
#define _GNU_SOURCE
#include "cfx/common.h"
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <string.h>

#define CFX__ERRMSG_CAP 2048
static _Thread_local char last_error[CFX__ERRMSG_CAP];

const char *cfx_strerror(int code) {
  switch (code) {
  case CFX_OK:
    return "success";
#define CFX__ERRNO_CASE(name, val, msg) \
  case CFX_##name:                      \
    return msg;
    CFX_ERRNO_MAP(CFX__ERRNO_CASE)
#undef CFX__ERRNO_CASE
  }
  return "unknown error";
}

const char *cfx_last_error(void) { return last_error; }

int cfx__set_error(int code, const char *msg) {
  size_t n = msg ? strlen(msg) : 0;
  if (n >= CFX__ERRMSG_CAP) n = CFX__ERRMSG_CAP - 1;
  if (n) memcpy(last_error, msg, n);
  last_error[n] = '\0';
  return code;
}

int cfx__fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, CFX__ERRMSG_CAP, fmt, ap);
  va_end(ap);
  return code;
}

const char *cfx__io_hint(int err) {
  if (err == ENOSPC || err == EDQUOT || err == EFBIG)
    return "; free some space there and run again (the file is written aside and renamed into place when "
           "complete: what was there before is untouched)";
  return "";
}

const char *cfx_version(void) { return CFX_VERSION_STRING; }

double cfx_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cfx_cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int cfx__cpu_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  static int has = -1; /* a benign race: every thread stores the same value */
  if (has < 0) {
    __builtin_cpu_init();
    has = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  const char *cap = getenv("CFX_CPU_CAPABILITY");
  if (cap && (!strcmp(cap, "default") || !strcmp(cap, "sse2"))) return 0;
  return has;
#else
  return 0;
#endif
}

const char *cfx_cpu_capability(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  return cfx__cpu_avx2() ? "avx2" : "sse2";
#else
  return "c";
#endif
}

uint64_t cfx_hash64(const void *data, int64_t n, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ull ^ seed;
  for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  h ^= h >> 30, h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27, h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

void cfx_free(void *p) { free(p); }

int cfx_isatty(int fd) { return isatty(fd) == 1; }
