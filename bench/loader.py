#!/usr/bin/python3
"""Loader throughput: 512x512 JPEGs to 224x224 uint8 training batches, cfx's loader
(C workers reading a packed store) against torch.utils.data.DataLoader + PIL +
torchvision reading the same images from files, with 1 and 2 workers; plus import
throughput of `cfx data import`.  One run measures every row.

    /usr/bin/python3 bench/loader.py [--images 512] [--epochs 3]

The pipeline on both sides: decode, resize the shorter side to 256 (bilinear), random
crop 224, random horizontal flip, uint8 CHW, batches of 32.  libtorch runs one
intra-op thread on both sides (the model would own the rest)."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests', 'reference'))
from run_lua import lua_command, lua_env  # noqa: E402

# the timing needs the cfx program's clock: run the Lua side under build/cfx
os.environ.setdefault('CFX_LUAJIT_CMD', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'build', 'cfx'))

LUA = r"""
local cfx = require 'cfx'
local store, workers, epochs, scaled = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4] == 'scaled'
cfx.threads(1)
local s = cfx.data.open(store)
local aug = cfx.augment.compose { cfx.augment.eval { resize = 256, crop = 0 },
  cfx.augment.randaugment { crop = 224, ops = { 'hflip' }, n_max = 1 } }
local per_epoch = math.ceil(s:count() / 32)
local L = cfx.data.loader { store = s, augment = aug, batch = 32, workers = workers, seed = 1,
  max_batches = per_epoch * (epochs + 1), decode_min_size = scaled and 256 or 0 }
for _ = 1, per_epoch do L:next() end -- warm-up epoch
-- wall time: the cfx program's monotonic clock (os.clock would count CPU time)
local host = package.loaded['cfx.host']
local clock = host and host.clock or os.time
local n, start = 0, clock()
for b in L:batches() do n = n + b.images:size(1) end
local secs = clock() - start
print(('%d %.6f'):format(n, secs))
"""


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.t = T.Compose([T.Resize(256), T.RandomCrop(224), T.RandomHorizontalFlip(), T.PILToTensor()])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.t(im.convert('RGB'))


def torch_rate(paths, workers, epochs):
    torch.set_num_threads(1)
    dl = torch.utils.data.DataLoader(Files(paths), batch_size=32, shuffle=True, num_workers=workers,
                                     persistent_workers=True)
    for _ in dl:  # warm-up epoch (starts the workers)
        pass
    t0, n = time.perf_counter(), 0
    for _ in range(epochs):
        for b in dl:
            n += b.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', type=int, default=512)
    ap.add_argument('--epochs', type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        rng = np.random.default_rng(0)
        fake_dir = os.path.join(tmp, 'src', 'gen', 'fake')
        real_dir = os.path.join(tmp, 'src', 'gen', 'real')
        os.makedirs(fake_dir)
        os.makedirs(real_dir)
        paths = []
        for i in range(a.images):
            low = rng.random((16, 16, 3)) * 255
            img = Image.fromarray(low.astype(np.uint8)).resize((512, 512), Image.BICUBIC)
            arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 12, (512, 512, 3))
            p = os.path.join(fake_dir if i % 2 else real_dir, f'{i}.jpg')
            Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(p, quality=90)
            paths.append(p)
        mb = sum(os.path.getsize(p) for p in paths) / 2 ** 20
        store = os.path.join(tmp, 'store.h5')
        cfx_bin = os.environ.get('CFX_BIN', os.path.join(os.path.dirname(__file__), '..', 'build', 'cfx'))
        t0 = time.perf_counter()
        subprocess.run([cfx_bin, 'data', 'import', os.path.join(tmp, 'src'), '--out', store], check=True,
                       env=lua_env(), stdout=subprocess.DEVNULL)
        import_s = time.perf_counter() - t0
        script = os.path.join(tmp, 'bench.lua')
        with open(script, 'w') as f:
            f.write(LUA)
        rows = []
        def cfx_rate(workers, scaled):
            out = subprocess.run(lua_command(script, store, str(workers), str(a.epochs), scaled), check=True,
                                 env=lua_env(), capture_output=True, text=True).stdout.split()
            return int(out[0]) / float(out[1])
        for workers in (1, 2):
            tr = torch_rate(paths, workers, a.epochs)
            rows.append((workers, cfx_rate(workers, 'full'), cfx_rate(workers, 'scaled'), tr))
        cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
        print(f'machine: {os.cpu_count()} CPUs, {cpu}; torch {torch.__version__}')
        print(f'command: /usr/bin/python3 bench/loader.py --images {a.images} --epochs {a.epochs}')
        print(f'\nimport: {a.images} JPEGs, {mb:.1f} MB, decoded once each: {import_s:.2f} s = {mb / import_s:.1f} MB/s '
              f'({a.images / import_s:.0f} images/s)\n')
        print('| workers | DataLoader + PIL + torchvision | cfx, full decode | cfx / torch | cfx, scaled decode | cfx / torch |')
        print('|---:|---:|---:|---:|---:|---:|')
        for w, c, cs, t in rows:
            print(f'| {w} | {t:.0f} | {c:.0f} | {c / t:.2f} | {cs:.0f} | {cs / t:.2f} |')
        print('\n(images/s; "scaled decode": decode_min_size=256, the default when the pipeline starts by resizing)')
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
