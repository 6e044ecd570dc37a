-- fs.lua: cfx.fs, the few filesystem calls LuaJIT lacks (core/src/fsutil.c).
local core = require 'cfx.core'
local ffi, C, raise, check = core.ffi, core.C, core.raise, core.check

local M = {}

-- cfx.fs.list(dir) -> sorted subdirectory names, sorted other names.
function M.list(path)
  local blob, n = ffi.new('char*[1]'), ffi.new('int64_t[1]')
  check(C.cfx_fs_list(path, blob, n))
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
  check(C.cfx_fs_mkdirs(path))
  return path
end

ffi.cdef [[
char *getcwd(char *buf, size_t size);
char *realpath(const char *path, char *resolved);
int getpid(void);
]]

-- cfx.fs.abspath(path): path made absolute (symbolic links resolved when it exists;
-- otherwise joined to the working directory).
function M.abspath(path)
  if type(path) ~= 'string' or path == '' then raise('fs.abspath: expected a path, got ' .. tostring(path)) end
  local buf = ffi.new('char[4096]')
  if ffi.C.realpath(path, buf) ~= nil then return ffi.string(buf) end
  if path:sub(1, 1) == '/' then return path end
  if ffi.C.getcwd(buf, 4096) == nil then raise('fs.abspath: cannot read the working directory') end
  return (ffi.string(buf) .. '/' .. path:gsub('^%./', ''))
end

-- cfx.fs.write_atomic(path, text): write a temporary file beside path, then rename it
-- over path, so that a reader sees the old or the new contents, never a part.
function M.write_atomic(path, text)
  local tmp = ('%s.tmp%d'):format(path, ffi.C.getpid())
  local f, e = io.open(tmp, 'wb')
  if not f then raise(('cannot write %s: %s'):format(path, e)) end
  local ok, werr = f:write(text)
  f:close()
  if not ok then
    os.remove(tmp)
    raise(('cannot write %s: %s'):format(path, werr))
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    raise(('cannot write %s: %s'):format(path, rerr))
  end
  return path
end

return M
