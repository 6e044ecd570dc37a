"""The packed store as an outside reader sees it: cfx writes a store from images that
this test makes (PIL), then h5py checks the layout of DESIGN.md / docs/data.md: plain
names and types, /images/bytes CONTIGUOUS and unfiltered (so that workers can pread
it), offsets, labels, generators, sizes, formats and names, and the bytes of every
image, which PIL must decode to the pixels it encoded."""
import io
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from run_lua import lua_command, lua_env  # noqa: E402

from tally import check, summary  # noqa: E402


def main():
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        images, rows = [], []
        gens = [('COCO', 'real', 'real'), ('sd-x', 'LatDiff', 'systematic'), ('biggan', 'GAN', 'manual')]
        for i in range(60):
            h, w = int(rng.integers(8, 40)), int(rng.integers(8, 40))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            buf = io.BytesIO()
            fmt = 'PNG' if i % 2 else 'JPEG'
            Image.fromarray(pixels).save(buf, fmt, quality=95)
            data = buf.getvalue()
            path = os.path.join(tmp, f'{i}.bin')
            with open(path, 'wb') as f:
                f.write(data)
            g = i % 3
            images.append((data, pixels, fmt, w, h))
            rows.append(f'{{path={path!r}, label={0 if g == 0 else 1}, gen={g + 1}, name="im{i}"}}')
        store = os.path.join(tmp, 'store.h5')
        script = os.path.join(tmp, 'write.lua')
        gen_lines = '\n'.join(f'ids[{k + 1}] = w:generator({n!r}, {a!r}, {s!r})' for k, (n, a, s) in enumerate(gens))
        with open(script, 'w') as f:
            f.write(f"""
local cfx = require 'cfx'
local w = cfx.data.writer({store!r})
local ids = {{}}
{gen_lines}
for _, r in ipairs({{ {', '.join(rows)} }}) do
  local fh = assert(io.open(r.path, 'rb'))
  local bytes = fh:read('*a')
  fh:close()
  w:add{{bytes = bytes, label = r.label, generator = ids[r.gen], name = r.name}}
end
w:attr('source', 'test_store_h5py')
w:finish()
""")
        subprocess.run(lua_command(script), check=True, env=lua_env())

        with h5py.File(store, 'r') as f:
            check(f.attrs['cfx_format'] in ('store', b'store'), 'cfx_format attribute')
            check(int(f.attrs['cfx_version']) == 2, 'cfx_version attribute (store format 2, store.h)')
            check(f.attrs['source'] in ('test_store_h5py', b'test_store_h5py'), 'provenance attribute')
            b = f['images/bytes']
            check(b.dtype == np.uint8 and b.chunks is None and b.compression is None, 'bytes contiguous, uint8')
            check(b.id.get_offset() is not None, 'bytes have a file offset')
            off = f['images/offset'][:]
            check(off.dtype == np.uint64 and len(off) == 61 and off[0] == 0, 'offset uint64 [n+1]')
            raw = b[:]
            for i, (data, pixels, fmt, w, h) in enumerate(images):
                got = raw[off[i]:off[i + 1]].tobytes()
                check(got == data, f'bytes of image {i}')
                dec = np.asarray(Image.open(io.BytesIO(got)).convert('RGB'))
                if fmt == 'PNG':
                    check(np.array_equal(dec, pixels), f'PNG {i} decodes to its pixels')
                check(int(f['images/width'][i]) == w and int(f['images/height'][i]) == h, f'size of image {i}')
                check(int(f['images/format'][i]) == (2 if fmt == 'PNG' else 1), f'format of image {i}')
                g = i % 3
                check(int(f['images/generator'][i]) == g, f'generator of image {i}')
                check(int(f['images/label'][i]) == (0 if g == 0 else 1), f'label of image {i}')
                name = f['images/name'][i]
                check((name.decode() if isinstance(name, bytes) else name) == f'im{i}', f'name of image {i}')
            names = [x.decode() if isinstance(x, bytes) else x for x in f['generators/name'][:]]
            archs = [x.decode() if isinstance(x, bytes) else x for x in f['generators/architecture'][:]]
            check(names == [g[0] for g in gens] and archs == [g[1] for g in gens], 'generators table')
            # the offset h5py reports is where the bytes really are in the file
            with open(store, 'rb') as fh:
                fh.seek(b.id.get_offset() + int(off[5]))
                check(fh.read(int(off[6] - off[5])) == images[5][0], 'bytes at H5Dget_offset + offset')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
