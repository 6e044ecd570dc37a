#!/usr/bin/python3
"""test_image.py: cfx.image and cfx.augment against PIL, torchvision, scipy and numpy.

    /usr/bin/python3 tests/reference/test_image.py [-v] [-k SUBSTRING] [--keep]

Every input is made here, by PIL or by a PNG writer in this file (numpy + zlib, for
what PIL cannot write: 2/4/16-bit samples, Adam7 interlacing, every filter type), and
every expected value comes from an independent implementation: PIL's decoders,
Image.resize, ImageOps.exif_transpose and Image.draft; torchvision's Resize,
CenterCrop and F.affine; scipy.ndimage.gaussian_filter; numpy formulas for flips,
crops, padding, alpha compositing and bit-depth expansion.

The Lua half (image_driver.lua) runs every job in one LuaJIT process; the checks run
here afterwards.  Measured agreement (max/mean differences per resize filter, per
JPEG variant, affine agreement) is printed as "measure" lines.  One deliberate
deviation from PIL is checked against numpy instead: a 16-bit GRAYSCALE PNG, where
PIL's convert("RGB") clips the 16-bit value to 255 and cfx keeps the high byte
(value >> 8), as it does for every other 16-bit PNG (PIL agrees on those).

The last line is `N passed, M failed`; the exit status is non-zero on any failure.
Set CFX_LUAJIT_CMD to run the driver with something other than plain luajit and
CFX_LIB to pick the library (see run_lua.py).
"""
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_lua  # noqa: E402

warnings.simplefilter('ignore')
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402
from scipy import ndimage  # noqa: E402

torch.set_num_threads(1)

# Known library bugs: check name -> what is wrong.  Reported on every run, not counted;
# a listed check that passes fails the run until it is taken off the list.
CENTER_CROP_ROUNDING = (
    "cfx_image_center_crop (augment.c) computes top/left as lround((H - h) / 2.0), rounding a .5 offset "
    "half away from zero, but torchvision's F.center_crop, which it claims to follow, uses Python's round() "
    "(half to even): the crop lands one pixel right/down of torchvision's whenever H - h or W - w is odd and "
    "(H - h) / 2 rounds to an even number. Where the crop is larger than the image (odd difference d), "
    "torchvision pads d // 2 before and (d + 1) // 2 after; cfx puts the larger half before. ")
EVAL_ROUNDING = (
    "the eval pipeline's centre crop has the same rounding as center_crop: after Resize(256) a 4:3 image is "
    "341x256 and (341 - 224) / 2 = 58.5 -> torchvision crops at 58, cfx at 59, so cfx.augment.eval{} differs "
    "from T.Resize(256) + T.CenterCrop(224) by a one-pixel shift on every 4:3 / 3:4 image (the ImageNet norm)")
EXPECTED_FAILURES = {}

VERBOSE = '-v' in sys.argv
KEEP = '--keep' in sys.argv
PATTERN = sys.argv[sys.argv.index('-k') + 1] if '-k' in sys.argv else None
TMP = tempfile.mkdtemp(prefix='cfx_img_')


# ---- jobs and checks ----------------------------------------------------------------------
class Job:
    def __init__(self, jid, code, files, images):
        self.id, self.code, self.files, self.images = jid, code, files, images
        self.result = None

    def out(self):
        """The job's results (a list), decoded; raises if the job failed."""
        r = self.result
        if r is None:
            raise AssertionError('job %d has no result (the driver died?)' % self.id)
        if not r['ok']:
            raise AssertionError('Lua error: %s' % r['error'])
        return [decode_out(v) for v in r['out']]

    def first(self):
        return self.out()[0]

    def error(self):
        r = self.result
        if r is None:
            raise AssertionError('job %d has no result' % self.id)
        if r['ok']:
            raise AssertionError('expected a Lua error, got success')
        return r['error']


def decode_out(v):
    if isinstance(v, dict) and 'tensor' in v:
        with open(v['tensor'], 'rb') as f:
            b = f.read()
        assert v['dtype'] == 'uint8', v['dtype']
        return np.frombuffer(b, np.uint8).reshape(v['shape'])
    if isinstance(v, dict) and 'bytes' in v:
        with open(v['bytes'], 'rb') as f:
            return f.read()
    return v


JOBS = []
CHECKS = []     # (name, fn)
MEASURES = []   # lines printed at the end
_nfile = [0]


def tmpfile(data, ext='bin'):
    _nfile[0] += 1
    path = os.path.join(TMP, 'in_%d.%s' % (_nfile[0], ext))
    with open(path, 'wb') as f:
        f.write(data)
    return path


def lua(code, files=(), images=()):
    """A Lua job: code sees file(i) (bytes of files[i]) and image(i) (images[i], an HxWx3
    uint8 numpy array, as a cfx tensor)."""
    paths = [f if isinstance(f, str) and os.path.exists(f) else tmpfile(f) for f in files]
    imgs = []
    for a in images:
        a = np.ascontiguousarray(a, dtype=np.uint8)
        assert a.ndim == 3 and a.shape[2] == 3
        imgs.append({'file': tmpfile(a.tobytes()), 'h': a.shape[0], 'w': a.shape[1]})
    j = Job(len(JOBS) + 1, code, paths, imgs)
    JOBS.append(j)
    return j


def check(name):
    def deco(fn):
        CHECKS.append((name, fn))
        return fn
    return deco


def add_check(name, fn):
    CHECKS.append((name, fn))


def measure(line):
    MEASURES.append(line)


def lua_lit(v):
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (list, tuple)):
        return '{' + ', '.join(lua_lit(x) for x in v) + '}'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, str):
        return "'" + v + "'"
    if v is None:
        return 'nil'
    raise TypeError(type(v))


def diff_stats(a, b):
    a = np.asarray(a, np.int32)
    b = np.asarray(b, np.int32)
    if a.shape != b.shape:
        raise AssertionError('shape %s, expected %s' % (list(a.shape), list(b.shape)))
    d = np.abs(a - b)
    return int(d.max()) if d.size else 0, float(d.mean()) if d.size else 0.0


def assert_equal(got, want, what=''):
    mx, mean = diff_stats(got, want)
    if mx:
        bad = np.argwhere(np.abs(np.asarray(got, np.int32) - np.asarray(want, np.int32)) > 0)
        raise AssertionError('%s differs: max %d, mean %.4f, %d values, first at %s (got %s, want %s)' % (
            what, mx, mean, len(bad), tuple(bad[0]), got[tuple(bad[0])], want[tuple(bad[0])]))


def pil_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def pil_to_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


# ---- test pictures ------------------------------------------------------------------------------
def picture(h, w, seed=0, noise=12):
    """Smooth colour gradients, a few hard edges and some noise: something like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 5 + seed) * np.cos(y / max(h, 1) * 3)
    g = 255 * (y / max(h - 1, 1))
    b = 128 + 90 * np.sin((x + y) / 9.0)
    img = np.stack([r, g, b], -1)
    img[(x // 16 + y // 16) % 3 == 0] += 30
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def noise_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---- a PNG writer (numpy + zlib) for what PIL cannot write ---------------------------------------
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_row(samples, depth):
    """One scanline's samples (1-D int array) -> bytes at the given bit depth."""
    if depth == 16:
        return samples.astype('>u2').tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    n = len(samples)
    padded = np.zeros(-(-n // per) * per, np.int64)
    padded[:n] = samples
    padded = padded.reshape(-1, per)
    shifts = np.array([8 - depth * (k + 1) for k in range(per)])
    return (padded << shifts).sum(1).astype(np.uint8).tobytes()


def _filter_rows(rows, bpp):
    """Filter each scanline with type (row index % 5): None, Sub, Up, Average, Paeth."""
    out, prior = [], np.zeros(len(rows[0]) if rows else 0, np.int64)
    for i, row in enumerate(rows):
        raw = np.frombuffer(row, np.uint8).astype(np.int64)
        left = np.concatenate([np.zeros(bpp, np.int64), raw[:-bpp]]) if len(raw) else raw
        upleft = np.concatenate([np.zeros(bpp, np.int64), prior[:-bpp]]) if len(raw) else raw
        ft = i % 5
        if ft == 0:
            f = raw
        elif ft == 1:
            f = raw - left
        elif ft == 2:
            f = raw - prior
        elif ft == 3:
            f = raw - (left + prior) // 2
        else:
            p = left + prior - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prior), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
            f = raw - pred
        out.append(bytes([ft]) + (f & 255).astype(np.uint8).tobytes())
        prior = raw
    return b''.join(out)


def write_png(samples, color_type, depth, palette=None, trns=None, interlace=False, exif=None):
    """samples: (H, W) or (H, W, C) integers at `depth` bits; returns the PNG's bytes."""
    a = np.asarray(samples)
    h, w = a.shape[:2]
    ch = CHANNELS[color_type]
    a = a.reshape(h, w, ch)
    bpp = max(1, ch * depth // 8)

    def image_data(sub):
        return _filter_rows([_pack_row(r.reshape(-1), depth) for r in sub], bpp)

    if interlace:
        data = b''.join(image_data(a[y0::dy, x0::dx]) for x0, y0, dx, dy in ADAM7
                        if a[y0::dy, x0::dx].size)
    else:
        data = image_data(a)
    out = b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, color_type, 0, 0,
                                                                 1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b'PLTE', np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += png_chunk(b'tRNS', trns)
    if exif is not None:
        out += png_chunk(b'eXIf', exif)
    # Two IDAT chunks, to make the decoder cross a chunk boundary.
    z = zlib.compress(data, 6)
    cut = len(z) // 2
    out += png_chunk(b'IDAT', z[:cut]) + png_chunk(b'IDAT', z[cut:]) + png_chunk(b'IEND', b'')
    return out


# =================================================================================================
# 1. PNG decode: every colour type and bit depth, exactly PIL's convert("RGB")
# =================================================================================================
def png_case(name, data, truth, compare_pil=True, pil_note=None):
    """cfx must equal `truth` (numpy) and, unless told otherwise, PIL's convert("RGB")."""
    j = lua('return cfx.image.decode(file(1)), cfx.image.probe(file(1))', files=[data])

    def run():
        got, info = j.out()
        assert info['format'] == 'png', info
        assert (info['width'], info['height']) == (truth.shape[1], truth.shape[0]), info
        assert_equal(got, truth, 'cfx vs numpy truth')
        pil = pil_rgb(data)
        if compare_pil:
            assert_equal(got, pil, 'cfx vs PIL convert("RGB")')
        elif pil_note:
            pil_note(got, pil)
    add_check('png_' + name, run)


def setup_png():
    rng = np.random.default_rng(1)
    rgb = picture(37, 53, seed=1)
    # PIL-written files for the common modes.
    png_case('rgb8_pil', pil_to_bytes(Image.fromarray(rgb), 'PNG'), rgb)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (37, 53, 1), dtype=np.uint8)], 2)
    png_case('rgba8_pil_drops_alpha', pil_to_bytes(Image.fromarray(rgba, 'RGBA'), 'PNG'), rgb)
    gray = rgb[..., 1].copy()
    png_case('l8_pil', pil_to_bytes(Image.fromarray(gray, 'L'), 'PNG'), np.repeat(gray[..., None], 3, 2))
    la = np.stack([gray, rgb[..., 0]], 2)
    png_case('la8_pil', pil_to_bytes(Image.fromarray(la, 'LA'), 'PNG'), np.repeat(gray[..., None], 3, 2))
    pal_img = Image.fromarray(rgb).quantize(200)
    pal = np.array(pal_img.getpalette()[:600], np.uint8).reshape(-1, 3)
    idx = np.asarray(pal_img)
    png_case('p8_pil', pil_to_bytes(pal_img, 'PNG'), pal[idx])
    png_case('p8_pil_trns', pil_to_bytes(pal_img, 'PNG', transparency=3), pal[idx])
    bits = rng.integers(0, 2, (29, 43)).astype(bool)
    png_case('1bit_pil', pil_to_bytes(Image.fromarray(bits), 'PNG'),
             np.repeat((bits * 255).astype(np.uint8)[..., None], 3, 2))

    # Hand-written files: low bit depths, 16 bits, tRNS variants, every filter, Adam7.
    for depth, scale in ((1, 255), (2, 85), (4, 17)):
        s = rng.integers(0, 2 ** depth, (23, 31))
        truth = np.repeat((s * scale).astype(np.uint8)[..., None], 3, 2)
        png_case('gray%d' % depth, write_png(s, 0, depth), truth)
        png_case('gray%d_adam7' % depth, write_png(s, 0, depth, interlace=True), truth)
        pal = rng.integers(0, 256, (2 ** depth, 3), dtype=np.uint8)
        png_case('palette%d' % depth, write_png(s, 3, depth, palette=pal), pal[s])
    rgb16 = rng.integers(0, 65536, (19, 27, 3))
    png_case('rgb16', write_png(rgb16, 2, 16), (rgb16 >> 8).astype(np.uint8))
    png_case('rgb16_adam7', write_png(rgb16, 2, 16, interlace=True), (rgb16 >> 8).astype(np.uint8))
    rgba16 = rng.integers(0, 65536, (19, 27, 4))
    png_case('rgba16', write_png(rgba16, 6, 16), (rgba16[..., :3] >> 8).astype(np.uint8))
    la16 = rng.integers(0, 65536, (19, 27, 2))
    png_case('la16', write_png(la16, 4, 16), np.repeat((la16[..., :1] >> 8).astype(np.uint8), 3, 2))

    # The deliberate deviation: 16-bit gray.  PIL opens it as mode I;16 and its
    # convert("RGB") clips to 255; cfx keeps the high byte, like every other 16-bit PNG.
    g16 = rng.integers(0, 65536, (21, 17))
    g16[0, :4] = [0, 255, 256, 65535]

    def note_g16(got, pil):
        clipped = np.repeat(np.minimum(g16, 255).astype(np.uint8)[..., None], 3, 2)
        assert_equal(pil, clipped, 'PIL vs np.minimum(v, 255) (the documented PIL behaviour)')
        mx, mean = diff_stats(got, pil)
        measure('16-bit gray PNG (deliberate deviation): cfx = v >> 8 exactly; PIL = min(v, 255); '
                'cfx vs PIL max %d mean %.1f' % (mx, mean))
    png_case('gray16_high_byte', write_png(g16, 0, 16),
             np.repeat((g16 >> 8).astype(np.uint8)[..., None], 3, 2), compare_pil=False, pil_note=note_g16)

    rgb8 = picture(41, 35, seed=2)
    png_case('rgb8_filters', write_png(rgb8, 2, 8), rgb8)
    png_case('rgb8_adam7', write_png(rgb8, 2, 8, interlace=True), rgb8)
    for h, w in ((1, 1), (1, 9), (9, 1), (3, 5), (8, 8)):   # Adam7 with empty passes
        small = rng.integers(0, 256, (h, w, 3))
        png_case('rgb8_adam7_%dx%d' % (h, w), write_png(small, 2, 8, interlace=True), small.astype(np.uint8))
    pal = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    idx = rng.integers(0, 256, (33, 29))
    png_case('palette8_adam7', write_png(idx, 3, 8, palette=pal, interlace=True), pal[idx])
    png_case('palette8_trns_multi', write_png(idx, 3, 8, palette=pal, trns=bytes(range(0, 256, 4))), pal[idx])
    g8 = rng.integers(0, 256, (15, 22))
    png_case('gray8_trns', write_png(g8, 0, 8, trns=struct.pack('>H', int(g8[0, 0]))),
             np.repeat(g8.astype(np.uint8)[..., None], 3, 2))
    png_case('rgb8_trns', write_png(rgb8, 2, 8, trns=struct.pack('>HHH', *rgb8[0, 0].tolist())), rgb8)
    ga8 = rng.integers(0, 256, (15, 22, 2))
    png_case('la8_adam7', write_png(ga8, 4, 8, interlace=True),
             np.repeat(ga8[..., :1].astype(np.uint8), 3, 2))


# =================================================================================================
# 2. Alpha compositing: background=0xRRGGBB against a numpy formula
# =================================================================================================
def composite(rgb, alpha, bg):
    """round(c * a / 255 + bg * (255 - a) / 255) per channel."""
    bgc = np.array([(bg >> 16) & 255, (bg >> 8) & 255, bg & 255], np.float64)
    a = alpha.astype(np.float64)[..., None]
    return np.round((rgb.astype(np.float64) * a + bgc * (255 - a)) / 255).astype(np.uint8)


def setup_alpha():
    rng = np.random.default_rng(2)
    rgb = picture(26, 34, seed=3)
    alpha = rng.integers(0, 256, (26, 34)).astype(np.uint8)
    alpha[0, :3] = [0, 255, 128]
    cases = []
    cases.append(('rgba8', pil_to_bytes(Image.fromarray(np.dstack([rgb, alpha]), 'RGBA'), 'PNG'), rgb, alpha))
    g = rgb[..., 0]
    cases.append(('la8', pil_to_bytes(Image.fromarray(np.dstack([g, alpha]), 'LA'), 'PNG'),
                  np.repeat(g[..., None], 3, 2), alpha))
    pal = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    idx = rng.integers(0, 16, (26, 34))
    tr = rng.integers(0, 256, 10).astype(np.uint8)   # shorter than the palette: the rest are opaque
    full_tr = np.concatenate([tr, np.full(6, 255, np.uint8)])
    cases.append(('palette_trns', write_png(idx, 3, 4, palette=pal, trns=tr.tobytes()), pal[idx], full_tr[idx]))
    key = int(g[3, 3])
    cases.append(('gray_trns', write_png(g, 0, 8, trns=struct.pack('>H', key)), np.repeat(g[..., None], 3, 2),
                  np.where(g == key, 0, 255).astype(np.uint8)))
    s2 = rng.integers(0, 4, (26, 34))
    cases.append(('gray2_trns', write_png(s2, 0, 2, trns=struct.pack('>H', 2)),
                  np.repeat((s2 * 85).astype(np.uint8)[..., None], 3, 2), np.where(s2 == 2, 0, 255).astype(np.uint8)))
    key_rgb = rgb[5, 7]
    cases.append(('rgb_trns', write_png(rgb, 2, 8, trns=struct.pack('>HHH', *key_rgb.tolist())), rgb,
                  np.where((rgb == key_rgb).all(2), 0, 255).astype(np.uint8)))
    rgba16 = rng.integers(0, 65536, (26, 34, 4))
    cases.append(('rgba16', write_png(rgba16, 6, 16), (rgba16[..., :3] >> 8).astype(np.uint8),
                  (rgba16[..., 3] >> 8).astype(np.uint8)))
    cases.append(('rgb8_opaque', pil_to_bytes(Image.fromarray(rgb), 'PNG'), rgb, np.full((26, 34), 255, np.uint8)))
    for name, data, color, a in cases:
        for bg in (0x000000, 0xFFFFFF, 0x3366CC):
            j = lua('return cfx.image.decode(file(1), {background = %d}), cfx.image.decode(file(1))' % bg,
                    files=[data])

            def run(j=j, color=color, a=a, bg=bg):
                comp, plain = j.out()
                assert_equal(comp, composite(color, a, bg), 'composited vs numpy')
                assert_equal(plain, color, 'default (alpha dropped)')
            add_check('alpha_%s_bg%06x' % (name, bg), run)
    # JPEG has no alpha: background changes nothing.
    jpg = pil_to_bytes(Image.fromarray(rgb), 'JPEG', quality=90)
    j = lua('return cfx.image.decode(file(1), {background = 0xFF0000}), cfx.image.decode(file(1))', files=[jpg])
    add_check('alpha_jpeg_background_noop', lambda j=j: assert_equal(j.out()[0], j.out()[1], 'jpeg with background'))


# =================================================================================================
# 3. JPEG decode vs PIL (same libjpeg-turbo: differences are IDCT/upsampling differences, if any)
# =================================================================================================
def setup_jpeg_decode():
    rgb = picture(157, 203, seed=4)
    im = Image.fromarray(rgb)
    variants = [
        ('baseline_444', pil_to_bytes(im, 'JPEG', quality=90, subsampling=0)),
        ('baseline_422', pil_to_bytes(im, 'JPEG', quality=90, subsampling=1)),
        ('baseline_420', pil_to_bytes(im, 'JPEG', quality=90, subsampling=2)),
        ('grayscale', pil_to_bytes(im.convert('L'), 'JPEG', quality=90)),
        ('progressive_420', pil_to_bytes(im, 'JPEG', quality=90, subsampling=2, progressive=True)),
        ('progressive_444', pil_to_bytes(im, 'JPEG', quality=75, subsampling=0, progressive=True)),
        ('cmyk', pil_to_bytes(im.convert('CMYK'), 'JPEG', quality=90)),
        ('optimized_q30', pil_to_bytes(im, 'JPEG', quality=30, optimize=True)),
        ('restart_markers', None),
    ]
    # Restart intervals: PIL has no option; take the 4:2:0 file and let libjpeg write
    # them?  Not available from PIL 9.4 either, so cfx's own 440/411 encodes stand in
    # for the layouts PIL cannot write.
    variants = [v for v in variants if v[1] is not None]
    for name, data in variants:
        j = lua('return cfx.image.decode(file(1)), cfx.image.probe(file(1))', files=[data])

        def run(j=j, name=name, data=data):
            got, info = j.out()
            pil = pil_rgb(data)
            mx, mean = diff_stats(got, pil)
            measure('JPEG decode %-16s cfx vs PIL convert("RGB"): max %d, mean %.4f' % (name, mx, mean))
            assert info['format'] == 'jpeg' and info['width'] == 203 and info['height'] == 157, info
            assert info['progressive'] == name.startswith('progressive'), info
            assert info['cmyk'] == (name == 'cmyk'), info
            assert info['components'] == {'grayscale': 1, 'cmyk': 4}.get(name, 3), info
            want_ss = {'baseline_444': '444', 'baseline_422': '422', 'baseline_420': '420',
                       'grayscale': 'gray', 'progressive_420': '420', 'progressive_444': '444',
                       'optimized_q30': '420'}.get(name)
            if want_ss:
                assert info['subsampling'] == want_ss, info
            assert mean <= 0.5 and mx <= 8, 'too far from PIL: max %d mean %.3f' % (mx, mean)
        add_check('jpeg_decode_' + name, run)

        def exact(j=j, data=data):
            assert_equal(j.first(), pil_rgb(data), 'cfx vs PIL')
        add_check('jpeg_decode_exact_' + name, exact)

    # Layouts PIL cannot write (4:4:0, 4:1:1): encoded by cfx, decoded by both.
    for ss in ('440', '411'):
        j = lua("local s = cfx.image.encode_jpeg(image(1), 90, {subsampling = '%s'}) "
                "return s, cfx.image.decode(s), cfx.image.probe(s)" % ss, images=[rgb])

        def run(j=j, ss=ss):
            data, got, info = j.out()
            assert info['subsampling'] == ss, info
            mx, mean = diff_stats(got, pil_rgb(data))
            measure('JPEG decode %-16s cfx vs PIL convert("RGB"): max %d, mean %.4f' % ('cfx_' + ss, mx, mean))
            assert_equal(got, pil_rgb(data), 'cfx vs PIL')
        add_check('jpeg_decode_exact_cfx_' + ss, run)


# =================================================================================================
# 4. EXIF orientation (JPEG APP1 and PNG eXIf) vs PIL.ImageOps.exif_transpose
# =================================================================================================
def setup_exif():
    rgb = picture(30, 44, seed=5)
    im = Image.fromarray(rgb)
    for fmt in ('JPEG', 'PNG'):
        for o in range(1, 9):
            exif = Image.Exif()
            exif[0x0112] = o
            kw = {'quality': 95} if fmt == 'JPEG' else {}
            data = pil_to_bytes(im, fmt, exif=exif.tobytes(), **kw)
            j = lua('return cfx.image.probe(file(1)), cfx.image.decode(file(1), {orientation = true}), '
                    'cfx.image.decode(file(1))', files=[data])

            def run(j=j, data=data, o=o, fmt=fmt):
                info, turned, plain = j.out()
                assert info['orientation'] == o, 'probe says %r' % info['orientation']
                assert (info['width'], info['height']) == (44, 30), info   # as stored
                src = Image.open(io.BytesIO(data))
                assert src.getexif().get(0x0112) == o   # PIL reads back what we wrote
                want = np.asarray(ImageOps.exif_transpose(src).convert('RGB'))
                assert_equal(turned, want, 'decode{orientation=true} vs exif_transpose')
                assert_equal(plain, pil_rgb(data), 'decode() (orientation not applied) vs PIL')
            add_check('exif_%s_orientation_%d' % (fmt.lower(), o), run)
    # No EXIF: orientation 0 and orientation=true is a no-op.
    data = pil_to_bytes(im, 'JPEG', quality=95)
    j = lua('return cfx.image.probe(file(1)).orientation, cfx.image.decode(file(1), {orientation = true})',
            files=[data])

    def run(j=j):
        o, img = j.out()
        assert o == 0, o
        assert_equal(img, pil_rgb(data), 'no exif')
    add_check('exif_absent', run)


# =================================================================================================
# 5. Scaled decode vs PIL's Image.draft (the same DCT scaling)
# =================================================================================================
def setup_scaled():
    for (h, w), min_size, want in (((512, 512), 224, (256, 256)), ((512, 512), 100, (128, 128)),
                                   ((512, 512), 60, (64, 64)), ((512, 512), 300, (512, 512)),
                                   ((375, 500), 100, (188, 250)), ((333, 517), 150, (167, 259))):
        for ss in (2, 0):
            rgb = picture(h, w, seed=6)
            data = pil_to_bytes(Image.fromarray(rgb), 'JPEG', quality=90, subsampling=ss)
            j = lua('return cfx.image.decode(file(1), {min_size = %d})' % min_size, files=[data])
            name = 'scaled_%dx%d_min%d_%s' % (w, h, min_size, {2: '420', 0: '444'}[ss])

            def run(j=j, data=data, min_size=min_size, want=want, name=name):
                got = j.first()
                assert got.shape[:2] == want, 'got %s, want %s' % (got.shape[:2], want)
                pil = Image.open(io.BytesIO(data))
                pil.draft('RGB', (min_size, min_size))
                ref = np.asarray(pil.convert('RGB'))
                assert ref.shape == got.shape, 'PIL draft gave %s' % (ref.shape,)
                mx, mean = diff_stats(got, ref)
                measure('scaled decode %-28s cfx vs PIL draft: max %d, mean %.4f' % (name[7:], mx, mean))
                assert_equal(got, ref, 'cfx scaled decode vs PIL draft')
            add_check(name, run)


# =================================================================================================
# 6. Resize vs PIL's Image.resize, every filter, with and without box
# =================================================================================================
FILTERS = {'nearest': Image.NEAREST, 'box': Image.BOX, 'bilinear': Image.BILINEAR,
           'hamming': Image.HAMMING, 'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS}
RESIZE_STATS = {}
ENCODE_VS_PIL = []
BLUR_VS_SCIPY_U8 = []


def setup_resize():
    srcs = {'noise': noise_image(61, 97, seed=7), 'picture': picture(61, 97, seed=8)}
    cases = [((50, 30), None), ((211, 143), None), ((97, 30), None), ((13, 61), None), ((1, 1), None),
             ((400, 7), None), ((33, 33), None), ((40, 27), (3.5, 2.25, 80.75, 55.5)),
             ((150, 90), (3.5, 2.25, 80.75, 55.5)), ((25, 20), (10, 5, 60, 45)),
             ((97, 61), (0.5, 0.5, 96.5, 60.5)), ((7, 300), (90.0, 0.0, 97.0, 61.0))]
    tiny = {'1x1': noise_image(1, 1, seed=9), '40x1': noise_image(40, 1, seed=10)}
    for fname in FILTERS:
        jobs = []
        for sname, src in srcs.items():
            for size, box in cases:
                jobs.append((sname, src, size, box))
        for sname, src in tiny.items():
            jobs.append((sname, src, (5, 3), None))
            jobs.append((sname, src, (3, 9), None))
        for sname, src, size, box in jobs:
            opts = "{filter = '%s'%s}" % (fname, ', box = %s' % lua_lit(list(box)) if box else '')
            j = lua('return cfx.image.resize(image(1), %s, %s)' % (lua_lit(list(size)), opts), images=[src])
            name = 'resize_%s_%s_%dx%d%s' % (fname, sname, size[0], size[1], '_box' if box else '')

            def run(j=j, src=src, size=size, box=box, fname=fname):
                got = j.first()
                ref = np.asarray(Image.fromarray(src).resize(size, FILTERS[fname], box=box))
                mx, mean = diff_stats(got, ref)
                st = RESIZE_STATS.setdefault(fname, [0, 0.0, 0, 0])
                st[0] = max(st[0], mx)
                st[1] = max(st[1], mean)
                st[2] += 1
                st[3] += mx == 0
                assert mean < 1.0, 'mean error %.3f >= 1 grey level (max %d)' % (mean, mx)
                assert mx == 0, 'PIL-exact expected: max %d, mean %.4f' % (mx, mean)
            add_check(name, run)


# =================================================================================================
# 7. JPEG encode: round trip, vs PIL's own encoder, probe's quality estimate
# =================================================================================================
def setup_jpeg_encode():
    rgb = picture(120, 160, seed=11)
    im = Image.fromarray(rgb)
    for q in (10, 50, 75, 90, 95, 100):
        for ss, pil_ss in (('444', 0), ('422', 1), ('420', 2)):
            j = lua("local s = cfx.image.encode_jpeg(image(1), %d, {subsampling = '%s'}) "
                    "return s, cfx.image.probe(s)" % (q, ss), images=[rgb])
            theirs = pil_to_bytes(im, 'JPEG', quality=q, subsampling=pil_ss)
            jp = lua('return cfx.image.probe(file(1))', files=[theirs])

            def run(j=j, jp=jp, q=q, ss=ss, theirs=theirs):
                data, info = j.out()
                assert info['quality'] == q, 'probe of our file: quality %r, want %d' % (info['quality'], q)
                assert info['subsampling'] == ss, info
                assert jp.first()['quality'] == q, 'probe of PIL file: quality %r' % jp.first()['quality']
                mine = pil_rgb(data)           # decoded by PIL
                ref = pil_rgb(theirs)
                _, e_mine = diff_stats(mine, rgb)
                _, e_ref = diff_stats(ref, rgb)
                mx, mean = diff_stats(mine, ref)
                ENCODE_VS_PIL.append((q, ss, mx, mean))
                measure('JPEG encode q%-3d %s: |cfx - orig| %.3f, |PIL - orig| %.3f, cfx vs PIL encode max %d '
                        'mean %.4f, sizes %d / %d bytes' % (q, ss, e_mine, e_ref, mx, mean, len(data), len(theirs)))
                # close to the original: as close as PIL's own encode, within 2 %
                assert e_mine <= e_ref * 1.02 + 0.05, 'cfx encode further from the original than PIL'
                # close to PIL's encode: within a few grey levels on average
                assert mean <= 3.0, 'cfx and PIL encodes decode differently: mean %.3f' % mean
            add_check('jpeg_encode_q%d_%s' % (q, ss), run)
    def same_dct():
        assert len(ENCODE_VS_PIL) == 18, 'run with every jpeg_encode_q* check'
        off = ['q%d/%s: max %d mean %.3f' % e for e in ENCODE_VS_PIL if e[2] != 0]
        assert not off, 'cfx encodes differ from PIL at ' + ', '.join(off)
    add_check('jpeg_encode_same_dct_as_pil', same_dct)

    # gray: one channel, close to PIL's own luma
    j = lua("return cfx.image.encode_jpeg(image(1), 90, {subsampling = 'gray'})", images=[rgb])

    def gray(j=j):
        pil = Image.open(io.BytesIO(j.first()))
        assert pil.mode == 'L', pil.mode
        luma = np.asarray(im.convert('L'))   # the same fixed-point BT.601 luma as libjpeg's
        ref = np.asarray(Image.open(io.BytesIO(pil_to_bytes(im.convert('L'), 'JPEG', quality=90))))
        mx, mean = diff_stats(np.asarray(pil), ref)
        _, e_cfx = diff_stats(np.asarray(pil), luma)
        _, e_pil = diff_stats(ref, luma)
        measure('JPEG encode q90 gray: vs PIL encode of convert("L") max %d mean %.3f; |cfx - luma| %.3f, '
                '|PIL - luma| %.3f' % (mx, mean, e_cfx, e_pil))
        assert mean <= 3.0 and e_cfx <= e_pil * 1.02 + 0.05
    add_check('jpeg_encode_gray', gray)
    # PNG encode: lossless, PIL reads it back exactly
    j = lua('return cfx.image.encode_png(image(1))', images=[rgb])
    add_check('png_encode_pil_reads', lambda j=j: assert_equal(pil_rgb(j.first()), rgb, 'PNG via PIL'))


# =================================================================================================
# 8. Augment ops vs numpy, torchvision, scipy, PIL
# =================================================================================================
def setup_ops():
    src = picture(75, 101, seed=12)
    pim = Image.fromarray(src)
    j = lua('return cfx.augment.hflip(image(1)), cfx.augment.vflip(image(1))', images=[src])

    def flips(j=j):
        h, v = j.out()
        assert_equal(h, src[:, ::-1], 'hflip vs numpy')
        assert_equal(v, src[::-1], 'vflip vs numpy')
    add_check('op_flips', flips)

    # cutout(t, x, y, w, h, fill): x, y 1-based; clipped at the borders
    for x, y, w, h, fill in ((11, 7, 20, 9, 0), (90, 60, 30, 30, 0x102030), (1, 1, 1, 1, 0xFFFFFF)):
        j = lua('return cfx.augment.cutout(image(1), %d, %d, %d, %d, %d)' % (x, y, w, h, fill), images=[src])

        def cut(j=j, x=x, y=y, w=w, h=h, fill=fill):
            want = src.copy()
            want[y - 1:y - 1 + h, x - 1:x - 1 + w] = [(fill >> 16) & 255, (fill >> 8) & 255, fill & 255]
            assert_equal(j.first(), want, 'cutout vs numpy')
        add_check('op_cutout_%d_%d_%dx%d' % (x, y, w, h), cut)

    # crop(t, x, y, w, h, fill): partly outside -> fill
    for x, y, w, h in ((5, 3, 40, 30), (-9, -4, 30, 20), (90, 70, 20, 10), (1, 1, 101, 75)):
        j = lua('return cfx.augment.crop(image(1), %d, %d, %d, %d, {1, 2, 3})' % (x, y, w, h), images=[src])

        def crop(j=j, x=x, y=y, w=w, h=h):
            big = np.empty((75 + 200, 101 + 200, 3), np.uint8)
            big[:] = [1, 2, 3]
            big[100:175, 100:201] = src
            want = big[100 + y - 1:100 + y - 1 + h, 100 + x - 1:100 + x - 1 + w]
            assert_equal(j.first(), want, 'crop vs numpy')
        add_check('op_crop_%d_%d_%dx%d' % (x, y, w, h), crop)

    # center_crop vs torchvision's F.center_crop on the PIL image
    for name, (w, h) in (('even', (61, 45)), ('odd', (64, 50)), ('larger', (111, 79)), ('larger_odd', (224, 90)),
                         ('same', (101, 75)), ('mixed', (64, 75))):
        j = lua('return cfx.augment.center_crop(image(1), %d, %d)' % (w, h), images=[src])

        def cc(j=j, w=w, h=h):
            want = np.asarray(TF.center_crop(pim, [h, w]))
            assert_equal(j.first(), want, 'center_crop vs torchvision')
        add_check('center_crop_' + name, cc)

    # pad vs np.pad; resize_back vs PIL bilinear of the padded image
    # (also: only rows or only columns of border, and a border thicker than the
    # filter, so that whole rows of fill reach the horizontal pass)
    for pad in ((3, 0, 5, 7), (0, 0, 0, 0), (10, 10, 10, 10), (0, 4, 0, 6), (5, 0, 2, 0), (40, 30, 3, 50)):
        j = lua('return cfx.augment.pad(image(1), %s, {fill = 0x808080}), '
                'cfx.augment.pad(image(1), %s, {fill = 0x808080, resize_back = true})' % (lua_lit(pad), lua_lit(pad)),
                images=[src])

        def padc(j=j, pad=pad):
            got, back = j.out()
            l, t, r, b = pad
            want = np.pad(src, ((t, b), (l, r), (0, 0)), constant_values=128)
            assert_equal(got, want, 'pad vs np.pad')
            ref_back = np.asarray(Image.fromarray(want).resize((101, 75), Image.BILINEAR))
            assert_equal(back, ref_back, 'pad resize_back vs PIL bilinear')
        add_check('op_pad_%d_%d_%d_%d' % pad, padc)

    # gaussian_blur vs scipy.ndimage.gaussian_filter, per channel, mode reflect, truncate 4
    tiny = picture(5, 7, seed=13)
    for name, img, sigma in (('0.5', src, 0.5), ('1', src, 1.0), ('2.5', src, 2.5), ('tiny_sigma3', tiny, 3.0),
                             ('noise_1.5', noise_image(40, 33, seed=14), 1.5)):
        j = lua('return cfx.augment.gaussian_blur(image(1), %r)' % sigma, images=[img])

        def blur(j=j, img=img, sigma=sigma, name=name):
            got = j.first()
            # scipy on uint8 data filters axis 0 then axis 1, each pass written to a uint8
            # array by a C cast, i.e. truncated (checked below); on float64 data nothing
            # is rounded until we round the result.
            as_u8 = np.stack([ndimage.gaussian_filter(img[..., c], sigma, mode='reflect', truncate=4.0)
                              for c in range(3)], 2)
            as_f = np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), sigma, mode='reflect',
                                                     truncate=4.0) for c in range(3)], 2)
            as_f = np.clip(np.round(as_f), 0, 255)
            mx_u8, mean_u8 = diff_stats(got, as_u8)
            mx_f, mean_f = diff_stats(got, as_f)
            measure('gaussian_blur sigma %-12s vs scipy uint8 in/out: max %d mean %.4f; vs scipy float64 '
                    'then rounded: max %d mean %.4f' % (name, mx_u8, mean_u8, mx_f, mean_f))
            BLUR_VS_SCIPY_U8.append((name, mx_u8, mean_u8))
            # scipy's uint8 path really is "truncate after each axis":
            t1 = np.stack([np.trunc(ndimage.gaussian_filter1d(img[..., c].astype(np.float64), sigma, axis=0,
                                                              mode='reflect', truncate=4.0)) for c in range(3)], 2)
            t2 = np.stack([np.trunc(ndimage.gaussian_filter1d(t1[..., c], sigma, axis=1, mode='reflect',
                                                              truncate=4.0)) for c in range(3)], 2)
            assert np.array_equal(t2.astype(np.uint8), as_u8), 'scipy uint8 is not truncate-per-axis here'
            # cfx follows scipy's uint8 path (truncate per axis): equal up to the last
            # bit of the weights; two truncations keep it within 2 of the float result
            assert mx_u8 <= 1, 'blur differs from scipy on uint8 by more than 1 grey level'
            assert mx_f <= 2, 'blur differs from scipy (float64, rounded) by more than 2 grey levels'
        add_check('op_blur_' + name, blur)

    def blur_u8():
        off = ['sigma %s: max %d mean %.3f' % b for b in BLUR_VS_SCIPY_U8 if b[1] > 1]
        assert len(BLUR_VS_SCIPY_U8) == 5 and not off, 'vs scipy on uint8: ' + ', '.join(off)
    add_check('op_blur_within_1_of_scipy_uint8', blur_u8)

    # affine vs torchvision F.affine on the PIL image with NEAREST (and BILINEAR, reported)
    aff = picture(64, 80, seed=15)
    paff = Image.fromarray(aff)
    params = [(30.0, (0, 0), 1.0, (0.0, 0.0)), (-12.5, (5, -3), 1.0, (0.0, 0.0)), (0.0, (7, 4), 1.0, (0.0, 0.0)),
              (0.0, (0, 0), 1.0, (15.0, 0.0)), (0.0, (0, 0), 1.0, (-10.0, 8.0)), (45.0, (-6, 2), 1.0, (5.0, -5.0)),
              (90.0, (0, 0), 1.0, (0.0, 0.0)), (10.0, (0, 0), 0.8, (0.0, 0.0))]
    for interp in ('nearest', 'bilinear'):
        for angle, tr, scale, shear in params:
            j = lua("return cfx.augment.affine(image(1), {angle = %r, translate = %s, scale = %r, shear = %s, "
                    "filter = '%s', fill = 0x0A141E})" % (angle, lua_lit(list(tr)), scale, lua_lit(list(shear)), interp),
                    images=[aff])
            name = 'affine_%s_a%g_t%d,%d_s%g_sh%g,%g' % (interp, angle, tr[0], tr[1], scale, shear[0], shear[1])

            def run(j=j, angle=angle, tr=tr, scale=scale, shear=shear, interp=interp, name=name):
                got = j.first()
                mode = T.InterpolationMode.NEAREST if interp == 'nearest' else T.InterpolationMode.BILINEAR
                want = np.asarray(TF.affine(paff, angle=angle, translate=list(tr), scale=scale, shear=list(shear),
                                            interpolation=mode, fill=[10, 20, 30]))
                differ = np.any(got != want, axis=2)
                frac = differ.mean()
                mx, mean = diff_stats(got, want)
                measure('%-44s vs torchvision: %.3f%% pixels differ (max %d, mean %.3f)' % (
                    name, 100 * frac, mx, mean))
                if interp == 'nearest':
                    assert frac <= 0.01, '%.2f%% of pixels differ' % (100 * frac)
                else:
                    # cfx interpolates in fixed point (augment.c, warp_bilinear) where PIL
                    # uses double, then both truncate: within 0.05 grey levels before the
                    # truncation, so at most 1 apart.  Measured on these 8 cases: max 1;
                    # 0 % to 0.14 % of pixels differ (mean below 0.001), except the exact
                    # 90-degree turn: 23 % (mean 0.13), where PIL's cos(90 deg) = 6e-17
                    # moves its samples about 1e-14 off the pixel centres and its
                    # truncation turns p - 1e-14 into p - 1 (cfx lands on p).
                    assert mx <= 1, 'bilinear differs by %d grey levels' % mx
                    assert mean <= 0.2, 'bilinear mean difference %.3f' % mean
            add_check(name, run)

    # direction: a mark right of centre; +90 degrees must move it down (clockwise on
    # screen, with y down, as augment.h and torchvision say).
    mark = np.zeros((41, 41, 3), np.uint8)
    mark[19:22, 33:36] = 255      # a 3x3 mark right of the centre (20, 20)
    j = lua("return cfx.augment.affine(image(1), {angle = 90, filter = 'nearest'})", images=[mark])

    def direction(j=j):
        ys, xs = np.nonzero(j.first()[..., 0])
        assert len(ys), 'mark lost'
        cy, cx = ys.mean(), xs.mean()
        where = 'up' if cy < 18 else 'down' if cy > 22 else 'sideways'
        assert where == 'down', 'after +90 degrees the mark is at (x %.1f, y %.1f): it moved %s' % (cx, cy, where)
    add_check('affine_direction_as_documented', direction)

    # JPEG round-trip op vs PIL save/load at the same quality (4:2:0)
    for q in (30, 75, 95):
        j = lua('return cfx.augment.jpeg(image(1), %d)' % q, images=[src])

        def jrt(j=j, q=q):
            ref = pil_rgb(pil_to_bytes(pim, 'JPEG', quality=q, subsampling=2))
            mx, mean = diff_stats(j.first(), ref)
            measure('augment.jpeg q%-3d vs PIL save/load: max %d mean %.4f' % (q, mx, mean))
            _, e_cfx = diff_stats(j.first(), src)
            _, e_pil = diff_stats(ref, src)
            assert mean <= 3.0 and e_cfx <= e_pil * 1.02 + 0.05, 'mean %.3f; vs source %.3f (PIL %.3f)' % (
                mean, e_cfx, e_pil)
        add_check('op_jpeg_q%d' % q, jrt)


# =================================================================================================
# 9. Pipelines: eval geometry vs torchvision, RandAugment determinism, perturbations
# =================================================================================================
def setup_pipelines():
    tv = T.Compose([T.Resize(256), T.CenterCrop(224)])
    for w, h in ((500, 375), (375, 500), (300, 300), (257, 1000), (224, 224), (200, 150), (333, 257), (640, 480)):
        img = picture(h, w, seed=w + h)
        j = lua('return cfx.augment.eval{}(image(1))', images=[img])

        def run(j=j, img=img):
            want = np.asarray(tv(Image.fromarray(img)))
            got = j.first()
            assert got.shape == (224, 224, 3), got.shape
            # where is cfx's crop in torchvision's resized image?
            resized = np.asarray(T.Resize(256)(Image.fromarray(img)))
            offs = [(dy, dx) for dy in range(resized.shape[0] - 223) for dx in range(resized.shape[1] - 223)
                    if np.array_equal(resized[dy:dy + 224, dx:dx + 224], got)] if resized.shape[0] >= 224 else []
            tv_off = (int(round((resized.shape[0] - 224) / 2.0)), int(round((resized.shape[1] - 224) / 2.0)))
            if not np.array_equal(got, want):
                raise AssertionError('differs from torchvision Resize(256)+CenterCrop(224): torchvision crops at '
                                     '(top, left) %s of %dx%d, cfx output found at %s' % (
                                         tv_off, resized.shape[1], resized.shape[0], offs[:3]))
        add_check('eval_geometry_%dx%d' % (w, h), run)

    # RandAugment: shape, determinism per (seed, epoch, index), variety
    img = picture(300, 280, seed=20)
    j = lua('''
      local p = cfx.augment.randaugment{}
      local a = p:apply(image(1), {seed = 5, epoch = 1, index = 7})
      local b = p:apply(image(1), {seed = 5, epoch = 1, index = 7})
      local outs = {}
      for i = 1, 6 do outs[i] = p:apply(image(1), {seed = 5, epoch = 1, index = i}) end
      return a, b, outs[1], outs[2], outs[3], outs[4], outs[5], outs[6], p:output_size()
    ''', images=[img])

    def ra(j=j):
        out = j.out()
        a, b, others, size = out[0], out[1], out[2:8], out[8]
        assert size == 224 and a.shape == (224, 224, 3), (size, a.shape)
        assert_equal(a, b, 'same seed twice')
        for i, o in enumerate(others):
            assert o.shape == (224, 224, 3)
        distinct = {o.tobytes() for o in others + [a]}
        assert len(distinct) == 7, 'only %d distinct outputs of 7 seeds' % len(distinct)
    add_check('randaugment_deterministic', ra)

    # perturbations: blur = gaussian_blur, jpeg = PIL round trip, resize = one of the
    # two PIL bilinear down-up / up-down round trips
    src = picture(90, 120, seed=21)
    j = lua('''
      local t = image(1)
      return cfx.augment.perturb{kind = 'blur', level = 1.5}(t, 3), cfx.augment.gaussian_blur(t, 1.5),
             cfx.augment.perturb{kind = 'jpeg', level = 40}(t, 3),
             cfx.augment.perturb{kind = 'resize', level = 0.25}(t, 3),
             cfx.augment.perturb{kind = 'resize', level = 0.25}(t, 4),
             cfx.augment.compose{cfx.augment.perturb{kind = 'jpeg', level = 40}, cfx.augment.eval{resize = 102, crop = 80}}(t, 3)
    ''', images=[src])

    def perturb(j=j):
        blur, blur_op, jpg, r3, r4, composed = j.out()
        assert_equal(blur, blur_op, 'perturb blur vs gaussian_blur')
        pim = Image.fromarray(src)
        _, mean = diff_stats(jpg, pil_rgb(pil_to_bytes(pim, 'JPEG', quality=40, subsampling=2)))
        assert mean <= 3.0, 'perturb jpeg vs PIL: mean %.3f' % mean
        # and it is the augment.jpeg op at that quality (a fresh encode of the same pixels)
        # scaled sizes rounded half up (90 * 1.25 = 112.5 -> 113)
        cands = [np.asarray(pim.resize((math.floor(120 * f + 0.5), math.floor(90 * f + 0.5)), Image.BILINEAR)
                            .resize((120, 90), Image.BILINEAR)) for f in (0.75, 1.25)]
        for r in (r3, r4):
            assert any(np.array_equal(r, c) for c in cands), 'perturb resize matches neither PIL round trip'
        want = np.asarray(T.CenterCrop(80)(T.Resize(102)(Image.fromarray(jpg))))  # 136x102: even margins
        assert_equal(composed, want, 'compose(jpeg, eval) vs PIL + torchvision')
    add_check('perturb_kinds', perturb)


# =================================================================================================
# 10. Errors seen from Lua (clean messages; the C suite covers the byte-level cases)
# =================================================================================================
def setup_errors():
    gif = b'GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,' \
          b'\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;'
    webp = pil_to_bytes(Image.fromarray(picture(8, 8)), 'WEBP') if 'WEBP' in Image.SAVE else b'RIFF\0\0\0\0WEBPVP8 '
    bmp = pil_to_bytes(Image.fromarray(picture(8, 8)), 'BMP')
    for name, data in (('gif', gif), ('webp', webp), ('bmp', bmp)):
        j = lua('return cfx.image.decode(file(1))', files=[data])

        def run(j=j, name=name):
            e = j.error()
            assert name in e and 'not supported' in e, e
        add_check('error_format_' + name, run)
    j = lua('return cfx.image.decode("")')
    def empty(j=j):
        e = j.error()
        assert 'empty' in e, e
    add_check('error_empty', empty)


# ---- running -------------------------------------------------------------------------------------
def write_manifest(jobs):
    path = os.path.join(TMP, 'manifest.lua')
    with open(path, 'w') as f:
        f.write('return { dir = %s, jobs = {\n' % lua_lit(TMP))
        for j in jobs:
            f.write('{ id = %d, code = %s, files = %s, images = {%s} },\n' % (
                j.id, long_str(j.code), lua_lit(j.files),
                ', '.join('{ file = %s, h = %d, w = %d }' % (lua_lit(i['file']), i['h'], i['w']) for i in j.images)))
        f.write('} }\n')
    return path


def long_str(s):
    level = 0
    while (']' + '=' * level + ']') in s + ']':
        level += 1
    return '[' + '=' * level + '[' + s + ']' + '=' * level + ']'


def run_driver():
    manifest = write_manifest(JOBS)
    results = os.path.join(TMP, 'results.jsonl')
    driver = os.path.join(HERE, 'image_driver.lua')
    got, first = {}, 1
    while first <= len(JOBS):
        cmd = run_lua.lua_command(driver, manifest, results, str(first))
        if VERBOSE:
            print('$ ' + run_lua.describe_command(driver, manifest, results, str(first)))
        proc = subprocess.run(cmd, env=run_lua.lua_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if os.path.exists(results):
            with open(results) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        got[r['id']] = r
        done = max([i for i in got], default=0)
        if done >= len(JOBS):
            break
        tail = (proc.stderr + proc.stdout).decode(errors='replace')[-600:]
        dead = done + 1
        print('the driver died on job %d (exit %d): %s' % (dead, proc.returncode, tail))
        got[dead] = {'id': dead, 'ok': False, 'error': 'the driver died here (exit %d)' % proc.returncode}
        first = dead + 1
    for j in JOBS:
        j.result = got.get(j.id)


def main():
    t0 = time.time()
    for setup in (setup_png, setup_alpha, setup_jpeg_decode, setup_exif, setup_scaled, setup_resize,
                  setup_jpeg_encode, setup_ops, setup_pipelines, setup_errors):
        setup()
    names = [n for n, _ in CHECKS]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, 'duplicate check names: %s' % sorted(dup)
    t1 = time.time()
    run_driver()
    t2 = time.time()
    passed = failed = xfailed = 0
    for name, fn in CHECKS:
        if PATTERN and PATTERN not in name:
            continue
        try:
            fn()
            why = None
        except AssertionError as e:
            why = str(e) or 'assertion failed'
        except Exception as e:   # a bug in a check is a failure too
            why = '%s: %s' % (type(e).__name__, e)
        if name in EXPECTED_FAILURES:
            if why is None:
                failed += 1
                print('XPASS %s: listed in EXPECTED_FAILURES (%s) but passes; remove it from the list' % (
                    name, EXPECTED_FAILURES[name][:100]))
            else:
                xfailed += 1
                print('xfail %s: %s' % (name, why.split('\n')[0][:300]))
        elif why is None:
            passed += 1
            if VERBOSE:
                print('ok   %s' % name)
        else:
            failed += 1
            print('FAIL %s: %s' % (name, why))
    stale = set(EXPECTED_FAILURES) - set(names)
    for n in sorted(stale):
        print('note: EXPECTED_FAILURES names %s, which is not a check' % n)
    seen = set()
    for line in MEASURES:
        if line not in seen:
            print('measure ' + line)
            seen.add(line)
    for fname in FILTERS:
        if fname in RESIZE_STATS:
            mx, mean, n, exact = RESIZE_STATS[fname]
            print('measure resize %-8s vs PIL Image.resize: %d cases, %d exact; max error %d, worst mean %.4f' % (
                fname, n, exact, mx, mean))
    print('%d jobs, %d checks; %d expected failures (known bugs, see EXPECTED_FAILURES in test_image.py); '
          'setup %.1fs, driver %.1fs, total %.1fs' % (len(JOBS), len(CHECKS), xfailed, t1 - t0, t2 - t1,
                                                      time.time() - t0))
    if not KEEP:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print('kept ' + TMP)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
