#!/usr/bin/python3
"""A loader left running at exit: the finalizers of lua_close run in no particular order,
so a store or pipeline may be freed while the loader's workers still use them.  The
loader holds a reference on its store and a copy of its pipeline (core/src/loader.c);
this runs the five-line script that used to die with SIGSEGV in build_batch, as a
script and in the REPL (lines typed, then end of input), many times while another
process keeps a core busy.  Every run must exit 0.

Run:  CFX_BIN=build/cfx /usr/bin/python3 tests/app/test_lifetimes.py   (from the repo root).
Under ASan: the same with CFX_BIN pointing at a -DCFX_SANITIZE=address build.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
RUNS = int(os.environ.get('CFX_LIFETIME_RUNS', '8'))

MAKE_STORE = r"""
local cfx = require 'cfx'
local w = cfx.data.writer(arg[1])
local g = w:generator('g', 'GAN', 'manual')
local r = w:generator('COCO', 'real', 'real')
cfx.manual_seed(3)
for i = 1, 40 do
  local img = cfx.randint(0, 256, { 300, 280, 3 }, { dtype = 'uint8' })
  w:add { bytes = cfx.image.encode_jpeg(img, 90), label = i % 2, generator = i % 2 == 1 and g or r, name = 'i' .. i }
end
w:finish()
"""

# the script: no ld:close(), past the end of the first epoch
SCRIPT = """local cfx = require 'cfx'
local store = cfx.data.open(arg[1])
local ld = cfx.data.loader { store = store, batch = 30, workers = 1, seed = 1,
  augment = cfx.augment.randaugment { crop = 224 } }
for _ = 1, 10 do ld:next() end
"""


def main():
    failed = passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, 's.h5')
        mk = os.path.join(tmp, 'mk.lua')
        Path(mk).write_text(MAKE_STORE)
        subprocess.run([CFX, mk, store], check=True)
        script = os.path.join(tmp, 'exit.lua')
        Path(script).write_text(SCRIPT)
        # the REPL version: the same lines typed at the prompt, then end of input (^D)
        repl_input = SCRIPT.replace('arg[1]', repr(store)).replace('\n  ', ' ')
        burners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(1)]
        try:
            for k in range(RUNS):
                for kind in ('script', 'repl'):
                    if kind == 'script':
                        r = subprocess.run([CFX, script, store], capture_output=True, text=True, timeout=120)
                    else:
                        r = subprocess.run([CFX], input=repl_input, capture_output=True, text=True, timeout=120)
                    if r.returncode == 0 and 'error' not in r.stderr.lower():
                        passed += 1
                    else:
                        failed += 1
                        print(f'FAIL run {k} ({kind}): exit status {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
        finally:
            for b in burners:
                b.kill()
                b.wait()
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
