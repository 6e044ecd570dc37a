#!/usr/bin/env bash
# Print lua/cfx/cdefs.lua as generated from the public headers (core/include/cfx/*.h):
# the preprocessor expands the X-macros, fake <stddef.h>/<stdint.h> keep system
# declarations out (LuaJIT's FFI knows int64_t and friends already).
#   tests/gen_cdefs.sh > lua/cfx/cdefs.lua      regenerate after changing a header
#   tests/gen_cdefs.sh | diff - lua/cfx/cdefs.lua   what CTest's cdefs_in_sync checks
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
: >"$fake/stddef.h"
: >"$fake/stdint.h"
cat <<'HEAD'
-- cdefs.lua: the C declarations of libcfx for LuaJIT's FFI.  GENERATED from
-- core/include/cfx/*.h by tests/gen_cdefs.sh; do not edit by hand (CTest's
-- cdefs_in_sync fails when this file and the headers disagree).
local ffi = require 'ffi'
ffi.cdef [[
HEAD
${CC:-cc} -E -P -nostdinc -I"$fake" -I"$root/core/include" -DCFX_API= -x c "$root/core/include/cfx/cfx.h" |
  sed -e '/^[[:space:]]*$/d' -e 's/[[:space:]]\+/ /g'
cat <<'TAIL'
/* Lua side only: the tensor type of lua/cfx/tensor.lua is this one-pointer box, a
   cdata value with a metatype (operators, __len, __gc), unlike a table wrapper. */
typedef struct cfx_lua_tensor { cfx_tensor *h; } cfx_lua_tensor;
]]
return ffi
TAIL
