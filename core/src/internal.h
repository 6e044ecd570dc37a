/* internal.h: helpers shared by the C sources of libcfx; not part of the public API. */
#ifndef CFX_INTERNAL_H
#define CFX_INTERNAL_H

#include "cfx/common.h"

/* Format a message into cfx_last_error() and return code (a negative CFX_E*). */
__attribute__((format(printf, 2, 3))) int cfx__fail(int code, const char *fmt, ...);

#endif
