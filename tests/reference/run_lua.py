#!/usr/bin/python3
"""run_lua.py: run a Lua script against the cfx of this checkout.

    /usr/bin/python3 tests/reference/run_lua.py SCRIPT.lua [ARGS...]

Used by the reference tests and the benchmarks, and usable from CTest.  How Lua is
started is the only thing that depends on the environment:

  CFX_LUAJIT_CMD   the command that runs a Lua script, split like a shell would split
                   it; the script path and its arguments are appended.  For the cfx
                   program: CFX_LUAJIT_CMD=build/cfx.  Default: plain luajit with
                   package.path pointing at <root>/lua.
  CFX_LIB          the libcfx.so to load; default <root>/build/libcfx.so.  Passed on
                   to the command in every case.
"""
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lua_env():
    """The environment for a Lua child: CFX_LIB set unless the caller set it."""
    env = dict(os.environ)
    if not env.get('CFX_LIB'):
        env['CFX_LIB'] = os.path.join(ROOT, 'build', 'libcfx.so')
    return env


def lua_command(script, *args):
    """argv that runs `script args...` with cfx loadable."""
    cmd = os.environ.get('CFX_LUAJIT_CMD')
    if cmd:
        return shlex.split(cmd) + [script] + list(args)
    lua = os.path.join(ROOT, 'lua')
    setup = "package.path='%s/?.lua;%s/?/init.lua;'..package.path" % (lua, lua)
    return ['luajit', '-e', setup, script] + list(args)


def describe_command(script, *args):
    """The command as one shell line, for reports."""
    lib = lua_env()['CFX_LIB']
    return 'CFX_LIB=%s %s' % (shlex.quote(lib), ' '.join(shlex.quote(a) for a in lua_command(script, *args)))


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    return subprocess.call(lua_command(argv[1], *argv[2:]), env=lua_env())


if __name__ == '__main__':
    sys.exit(main(sys.argv))
