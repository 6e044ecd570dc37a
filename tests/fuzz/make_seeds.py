#!/usr/bin/python3
"""make_seeds.py: write a small seed corpus for fuzz_image into DIR.

    /usr/bin/python3 tests/fuzz/make_seeds.py DIR

Small JPEGs (baseline 4:4:4/4:2:2/4:2:0, grayscale, progressive, CMYK, EXIF
orientation, optimized Huffman tables) written by PIL, and PNGs of every colour type
and bit depth (palette, tRNS, 1/2/4/16-bit, Adam7, eXIf) written by PIL or by the PNG
writer of tests/reference/test_image.py.
"""
import io
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'reference'))
from test_image import picture, write_png  # noqa: E402


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = picture(12, 17, seed=1, noise=4)
    im = Image.fromarray(rgb)
    seeds = {}

    def save(name, img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        seeds[name] = b.getvalue()

    for ss in (0, 1, 2):
        save('baseline_%d.jpg' % ss, im, 'JPEG', quality=80, subsampling=ss)
    save('gray.jpg', im.convert('L'), 'JPEG', quality=80)
    save('progressive.jpg', im, 'JPEG', quality=80, progressive=True)
    save('cmyk.jpg', im.convert('CMYK'), 'JPEG', quality=80)
    save('optimized.jpg', im, 'JPEG', quality=40, optimize=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    save('exif6.jpg', im, 'JPEG', quality=80, exif=exif.tobytes())
    save('exif6.png', im, 'PNG', exif=exif.tobytes())
    save('rgb.png', im, 'PNG')
    save('rgba.png', Image.fromarray(np.dstack([rgb, rgb[..., :1]]), 'RGBA'), 'PNG')
    save('l.png', im.convert('L'), 'PNG')
    save('la.png', im.convert('LA'), 'PNG')
    save('p.png', im.quantize(16), 'PNG')
    save('p_trns.png', im.quantize(16), 'PNG', transparency=2)
    save('1bit.png', im.convert('1'), 'PNG')
    for depth in (1, 2, 4):
        s = rng.integers(0, 2 ** depth, (9, 13))
        seeds['gray%d_adam7.png' % depth] = write_png(s, 0, depth, interlace=True)
        seeds['pal%d.png' % depth] = write_png(s, 3, depth, palette=rng.integers(0, 256, (2 ** depth, 3)),
                                               trns=bytes([0, 128]))
    seeds['rgb16.png'] = write_png(rng.integers(0, 65536, (7, 9, 3)), 2, 16)
    seeds['gray16_trns.png'] = write_png(rng.integers(0, 65536, (7, 9)), 0, 16, trns=struct.pack('>H', 5))
    seeds['rgba16_adam7.png'] = write_png(rng.integers(0, 65536, (7, 9, 4)), 6, 16, interlace=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds, %d bytes in %s' % (len(seeds), sum(map(len, seeds.values())), out))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1])
