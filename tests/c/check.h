/* check.h: a minimal test harness for the C tests.  CHECK(cond) records a failure
 * with file:line and goes on; main() returns check_summary(), which prints
 * "N passed, M failed" and yields the exit status. */
#ifndef CFX_TEST_CHECK_H
#define CFX_TEST_CHECK_H
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (cond) {                                                          \
      check_passed++;                                                    \
    } else {                                                             \
      check_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                    \
  } while (0)

/* rc must be 0; on failure print cfx_last_error(). */
#define CHECK_OK(expr)                                                              \
  do {                                                                              \
    int check_rc_ = (expr);                                                         \
    if (check_rc_ == 0) {                                                           \
      check_passed++;                                                               \
    } else {                                                                        \
      check_failed++;                                                               \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, check_rc_, \
              cfx_last_error());                                                    \
    }                                                                               \
  } while (0)

#define CHECK_CONTAINS(haystack, needle) CHECK(strstr((haystack), (needle)) != NULL)

static int check_summary(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed ? 1 : 0;
}
#endif
