-- fs.lua: cfx.fs, the few filesystem calls LuaJIT lacks (core/src/fsutil.c).
local core = require 'cfx.core'
local ffi, C, raise = core.ffi, core.C, core.raise

local M = {}

-- cfx.fs.list(dir) -> sorted subdirectory names, sorted other names.
function M.list(path)
  local blob, n = ffi.new('char*[1]'), ffi.new('int64_t[1]')
  if C.cfx_fs_list(path, blob, n) ~= 0 then raise(ffi.string(C.cfx_last_error())) end
  local s = ffi.string(blob[0], n[0])
  C.cfx_free(blob[0])
  local dirs, files = {}, {}
  for kind, name in s:gmatch('(.)([^%z]*)%z') do
    if kind == 'd' then dirs[#dirs + 1] = name else files[#files + 1] = name end
  end
  table.sort(dirs)
  table.sort(files)
  return dirs, files
end

-- 'dir', 'file' or nil (absent).
function M.kind(path)
  local k = C.cfx_fs_kind(path)
  return k == 1 and 'dir' or k == 2 and 'file' or nil
end
function M.is_dir(path) return C.cfx_fs_kind(path) == 1 end
function M.exists(path) return C.cfx_fs_kind(path) ~= 0 end

-- cfx.fs.mkdirs(path): mkdir -p.
function M.mkdirs(path)
  if type(path) ~= 'string' then raise('fs.mkdirs: expected a path, got ' .. type(path)) end
  if C.cfx_fs_mkdirs(path) ~= 0 then raise(ffi.string(C.cfx_last_error())) end
  return path
end

return M
