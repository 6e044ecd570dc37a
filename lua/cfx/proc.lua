-- proc.lua: child processes for `cfx sweep --local` (posix_spawn, waitpid, kill) and
-- running a command for its output, over the C library through the FFI.  Linux/glibc.
local ffi = require 'ffi'
local C = ffi.C

ffi.cdef [[
typedef struct { int allocated, used; void *actions; int pad[16]; } cfx_spawn_actions;
int posix_spawn_file_actions_init(cfx_spawn_actions *fa);
int posix_spawn_file_actions_destroy(cfx_spawn_actions *fa);
int posix_spawn_file_actions_addopen(cfx_spawn_actions *fa, int fd, const char *path, int oflag, unsigned mode);
int posix_spawn_file_actions_adddup2(cfx_spawn_actions *fa, int fd, int newfd);
typedef struct { long long opaque[64]; } cfx_spawn_attr; /* glibc's is 336 bytes */
int posix_spawnattr_init(cfx_spawn_attr *a);
int posix_spawnattr_destroy(cfx_spawn_attr *a);
int posix_spawnattr_setflags(cfx_spawn_attr *a, short flags);
int posix_spawnattr_setpgroup(cfx_spawn_attr *a, int pgroup);
int posix_spawnp(int *pid, const char *file, const cfx_spawn_actions *fa, const cfx_spawn_attr *attr,
                 char *const argv[], char *const envp[]);
int waitpid(int pid, int *status, int options);
int kill(int pid, int sig);
int poll(void *fds, unsigned long nfds, int timeout);
char *strerror(int errnum);
int setenv(const char *name, const char *value, int overwrite);
extern char **environ;
]]

local M = {}

local O_WRONLY, O_CREAT, O_APPEND = 1, 64, 1024 -- Linux
local WNOHANG = 1
M.SIGINT, M.SIGKILL, M.SIGUSR1, M.SIGTERM = 2, 9, 10, 15

-- spawn(argv, {log = PATH, new_group = false}) -> pid.  argv[1] is looked up on PATH;
-- with log, the child's stdout and stderr are appended to that file; with new_group,
-- the child leads a process group of its own, so that a terminal's ^C reaches this
-- process only (which then tells the child what to do).  The child inherits this
-- process's environment (see setenv).
function M.spawn(argv, opts)
  opts = opts or {}
  local cargv = ffi.new('char *[?]', #argv + 1)
  local keep = {}
  for i, a in ipairs(argv) do
    keep[i] = ffi.new('char[?]', #a + 1, a)
    cargv[i - 1] = keep[i]
  end
  local fa = ffi.new('cfx_spawn_actions')
  C.posix_spawn_file_actions_init(fa)
  if opts.log then
    C.posix_spawn_file_actions_addopen(fa, 1, opts.log, O_WRONLY + O_CREAT + O_APPEND, tonumber('644', 8))
    C.posix_spawn_file_actions_adddup2(fa, 1, 2)
  end
  local attr = ffi.new('cfx_spawn_attr')
  C.posix_spawnattr_init(attr)
  if opts.new_group then
    C.posix_spawnattr_setflags(attr, 2) -- POSIX_SPAWN_SETPGROUP
    C.posix_spawnattr_setpgroup(attr, 0)
  end
  local pid = ffi.new('int[1]')
  local rc = C.posix_spawnp(pid, argv[1], fa, attr, cargv, C.environ)
  C.posix_spawn_file_actions_destroy(fa)
  C.posix_spawnattr_destroy(attr)
  if rc ~= 0 then error(('cannot start %s: %s'):format(argv[1], ffi.string(C.strerror(rc))), 0) end
  return pid[0]
end

-- Decode a waitpid status: 'exit', code | 'signal', number.
local function decode(st)
  local sig = bit.band(st, 0x7f)
  if sig == 0 then return 'exit', bit.rshift(bit.band(st, 0xff00), 8) end
  return 'signal', sig
end

-- poll(pid) -> nil while it runs; else how, code ('exit', status | 'signal', number).
function M.poll(pid)
  local st = ffi.new('int[1]')
  local r = C.waitpid(pid, st, WNOHANG)
  if r == 0 then return nil end
  if r < 0 then return 'gone', -1 end
  return decode(st[0])
end

-- The exit status a shell would report: the code, or 128 + the signal.
function M.status_code(how, code) return how == 'exit' and code or 128 + code end

function M.kill(pid, sig) return C.kill(pid, sig or M.SIGTERM) == 0 end

function M.sleep(seconds) C.poll(nil, 0, math.floor(seconds * 1000)) end

function M.setenv(name, value) C.setenv(name, tostring(value), 1) end

-- Single-quote s for a POSIX shell.
function M.quote(s)
  s = tostring(s)
  if s:match('^[%w@%%+=:,./_-]+$') then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- run(argv) -> ok, output (stdout and stderr together), exit status.  (LuaJIT's
-- pclose reports no exit status, so the shell prints it after the output.)
function M.run(argv)
  local parts = {}
  for i, a in ipairs(argv) do parts[i] = M.quote(a) end
  local f = io.popen(table.concat(parts, ' ') .. ' 2>&1; printf "\n%d" "$?"', 'r')
  if not f then return false, 'cannot run ' .. argv[1], 127 end
  local text = f:read('*a')
  f:close()
  local out, code = text:match('^(.*)\n(%d+)$')
  code = tonumber(code) or 127
  return code == 0, out or text, code
end

return M
