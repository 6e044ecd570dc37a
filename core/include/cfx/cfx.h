/* cfx.h: the whole public C API of cfx. */
#ifndef CFX_H
#define CFX_H
#include "cfx/common.h"
#include "cfx/augment.h"
#include "cfx/fsutil.h"
#include "cfx/h5log.h"
#include "cfx/image.h"
#include "cfx/loader.h"
#include "cfx/metrics.h"
#include "cfx/parquet.h"
#include "cfx/safetensors.h"
#include "cfx/store.h"
#include "cfx/tensor.h"
#endif
