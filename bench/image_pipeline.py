#!/usr/bin/python3
"""image_pipeline.py: images/s of cfx's image pipelines vs PIL + torchvision, one core.

    /usr/bin/python3 bench/image_pipeline.py [--jpeg FILE] [--n-eval N] [--n-train N]
                                             [--repeats R] [--cpu C] [--clock wall|cpu]

(a) Evaluation: JPEG bytes (512x512, quality 90, 4:2:0, made here unless --jpeg) ->
    decode -> shorter side 256 (bilinear) -> centre crop 224 -> uint8 HxWx3 array.
    cfx: cfx.image.decode(bytes, {min_size = 256}) (TurboJPEG's DCT-domain 1/2 scale)
    then cfx.augment.eval{}; also with a full-size decode, and the bare decodes.
    PIL + torchvision: Image.open(BytesIO) + T.Resize(256) + T.CenterCrop(224) +
    np.asarray; also with PIL's own DCT scaling (img.draft('RGB', (256, 256))) and the
    bare PIL decode.
(b) Training: JPEG bytes -> decode -> the paper's RandAugment -> 224 x 224.  cfx:
    cfx.augment.randaugment{}; PIL + torchvision: the same op types with the same
    ranges written with torchvision transforms (tv_randaugment below): for each of the
    11 op types a count drawn from 0..2, the ops shuffled, then a random 224 crop.

The Lua half runs under build/cfx (the program users run; set CFX_LUAJIT_CMD for another)
at the SIMD level cfx picks (cfx.cpu_capability(): AVX2 where the CPU has it); where
that is AVX2, the training rows run once more with CFX_CPU_CAPABILITY=default (SSE2,
the x86-64 baseline), which gives the same pixels.

One run measures every row, all on ONE core: this process and the Lua child are pinned
to CPU --cpu (default: the first this process may use) with sched_setaffinity (the same
as `taskset -c C`), torch.set_num_threads(1), cfx.threads(1) and CFX_THREADS=1.  Each
row: N images per timing (after a warm-up), best and median of R timings; images/s
from the best.  The training rows draw new augmentations for every image (cfx: sample
seeds n*r + i; Python: one random.Random stream), so their cost is an average over
the random op mix; N for them defaults to 150 to keep that average steady.  --clock cpu
times both sides in process CPU time instead of wall time (time.process_time; the Lua
side's CLOCK_PROCESS_CPUTIME_ID), for a machine shared with other jobs: time spent
descheduled then does not count, contention for caches still does.  Prints the machine, the commands and a Markdown table
(docs/performance.md, "Images").
"""
import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import machine  # noqa: E402


def make_jpeg(path):
    """A 512x512 photo-like test picture (smooth shading, edges, a textured patch, mild
    noise) saved by PIL at quality 90 with 4:2:0 chroma subsampling."""
    from PIL import Image
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float64)
    r = 120 + 80 * np.sin(x / 70.0) * np.cos(y / 55.0)
    g = 60 + 150 * (y / 511.0)
    b = 140 + 70 * np.cos((x + 2 * y) / 90.0)
    img = np.stack([r, g, b], -1)
    disc = (x - 300) ** 2 + (y - 200) ** 2 < 110 ** 2
    img[disc] = img[disc] * 0.5 + np.array([200.0, 170.0, 60.0]) * 0.5
    patch = (x > 40) & (x < 220) & (y > 300) & (y < 480)
    img[patch] += rng.normal(0, 25, (int(patch.sum()), 3)) + 20 * np.sin(x[patch] / 3.0)[:, None]
    img += rng.normal(0, 3, img.shape)
    Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(path, 'JPEG', quality=90, subsampling=2)


# ---- the PIL + torchvision side -----------------------------------------------------------------
def tv_pipelines():
    import torch
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
    from PIL import Image
    torch.set_num_threads(1)
    IM = T.InterpolationMode
    resize256, crop224 = T.Resize(256, IM.BILINEAR), T.CenterCrop(224)
    hflip, vflip = T.RandomHorizontalFlip(0.5), T.RandomVerticalFlip(0.5)
    rotate = T.RandomRotation(15, interpolation=IM.BILINEAR)
    translate = T.RandomAffine(0, translate=(0.1, 0.1), interpolation=IM.NEAREST)
    shear = T.RandomAffine(0, shear=(-15, 15, -15, 15), interpolation=IM.BILINEAR)
    erase = T.RandomErasing(p=0.5, scale=(0.02, 0.06), ratio=(0.3, 3.3), value=0)
    rrc_modes = [IM.NEAREST, IM.BOX, IM.BILINEAR, IM.HAMMING, IM.BICUBIC, IM.LANCZOS]
    rnd = random.Random(0)

    def jpeg(img):
        b = io.BytesIO()
        img.save(b, 'JPEG', quality=rnd.randint(75, 100))
        return Image.open(b).convert('RGB')

    def resize(img):
        side = rnd.randint(225, int(1.228 * 224))
        return T.Resize(side, rnd.choice([IM.BILINEAR, IM.BICUBIC]))(img)

    def crop(img):
        w, h = img.size
        return T.RandomCrop(224, pad_if_needed=True)(img) if w > 224 or h > 224 else img

    def resized_crop(img):
        side = min(img.size)
        return T.RandomResizedCrop(side, scale=(0.9, 1.0), ratio=(3 / 4, 4 / 3),
                                   interpolation=rnd.choice(rrc_modes))(img)

    def pad(img):
        w, h = img.size
        l, r = int(rnd.uniform(0, 0.05) * w), int(rnd.uniform(0, 0.05) * w)
        t, b = int(rnd.uniform(0, 0.05) * h), int(rnd.uniform(0, 0.05) * h)
        g = rnd.randint(0, 255)
        return T.Pad((l, t, r, b), fill=(g, g, g))(img).resize((w, h), Image.BILINEAR)

    def cutout(img):
        return TF.to_pil_image(erase(TF.pil_to_tensor(img)))

    ops = [jpeg, resize, crop, hflip, vflip, resized_crop, rotate, translate, shear, pad, cutout]

    def tv_randaugment(img):
        chosen = [op for op in ops for _ in range(rnd.randint(0, 2))]
        rnd.shuffle(chosen)
        for op in chosen:
            img = op(img)
        if min(img.size) < 224:
            img = T.Resize(224, IM.BILINEAR)(img)
        return T.RandomCrop(224)(img)

    def eval_(data):
        return np.asarray(crop224(resize256(Image.open(io.BytesIO(data)))))

    def eval_draft(data):
        img = Image.open(io.BytesIO(data))
        img.draft('RGB', (256, 256))
        return np.asarray(crop224(resize256(img)))

    def decode(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))

    def train(data):
        return np.asarray(tv_randaugment(Image.open(io.BytesIO(data)).convert('RGB')))

    return eval_, eval_draft, decode, train, tv_randaugment, Image


def time_rows(rows, repeats, clock=time.perf_counter):
    out = {}
    for key, n, fn in rows:
        for _ in range(max(3, n // 10)):
            fn()
        times = []
        for _ in range(repeats):
            t0 = clock()
            for _ in range(n):
                fn()
            times.append((clock() - t0) / n)
        times.sort()
        out[key] = (times[0], statistics.median(times))
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jpeg', help='a JPEG to use instead of the generated 512x512 one')
    ap.add_argument('--n-eval', type=int, default=200)
    ap.add_argument('--n-train', type=int, default=150)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--cpu', type=int, default=min(os.sched_getaffinity(0)))
    ap.add_argument('--clock', choices=('wall', 'cpu'), default='wall')
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {args.cpu})
    tmp = tempfile.mkdtemp(prefix='cfx_bench_img_')
    path = args.jpeg or os.path.join(tmp, 'bench512.jpg')
    if not args.jpeg:
        make_jpeg(path)
    with open(path, 'rb') as f:
        data = f.read()
    eval_, eval_draft, decode, train, tv_randaugment, Image = tv_pipelines()
    src = Image.open(io.BytesIO(data))
    print('machine: ' + machine())
    print('command: /usr/bin/python3 bench/image_pipeline.py --n-eval %d --n-train %d --repeats %d --cpu %d%s%s' % (
        args.n_eval, args.n_train, args.repeats, args.cpu, ' --jpeg ' + args.jpeg if args.jpeg else '',
        ' --clock cpu' if args.clock == 'cpu' else ''))
    print('input: %s, %dx%d %s JPEG, %d bytes' % ('--jpeg file' if args.jpeg else 'generated', src.size[0],
                                                src.size[1], src.mode, len(data)))
    script = os.path.join(ROOT, 'bench', 'image_pipeline.lua')
    largs = [path, str(args.n_eval), str(args.n_train), str(args.repeats), tmp]
    # The Lua half runs under the cfx program, as users run it (its allocator settings
    # keep the pixel buffers in the heap), unless CFX_LUAJIT_CMD says otherwise.
    cfx_bin = os.path.join(ROOT, 'build', 'cfx')
    if not os.environ.get('CFX_LUAJIT_CMD') and os.path.exists(cfx_bin):
        os.environ['CFX_LUAJIT_CMD'] = cfx_bin
    env = run_lua.lua_env()
    env['CFX_THREADS'] = '1'
    if args.clock == 'cpu':
        env['CFX_BENCH_CLOCK'] = 'cpu'
    print('lua side: CFX_THREADS=1%s taskset -c %d %s' % (' CFX_BENCH_CLOCK=cpu' if args.clock == 'cpu' else '', args.cpu,
                                                          run_lua.describe_command(script, *largs)))
    print('python side: this process, pinned to CPU %d, torch.set_num_threads(1)' % args.cpu)

    def lua_side(extra_env):
        proc = subprocess.run(run_lua.lua_command(script, *largs), env=dict(env, **extra_env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, {args.cpu}))
        if proc.returncode != 0:
            raise SystemExit('the Lua side failed (exit %d):\n%s' % (proc.returncode, proc.stderr))
        rows, shapes = {}, {}
        for line in proc.stdout.splitlines():
            parts = line.split('\t')
            if parts[0] == 'shape':
                shapes[parts[1]] = [int(v) for v in parts[2].split('x')]
            elif parts[0] == 'capability':
                rows['capability'] = parts[1]
            else:
                rows[parts[0]] = (float(parts[1]), float(parts[2]))
        return rows, shapes

    cfx, shapes = lua_side({})
    cap = cfx['capability']
    # The training rows again with AVX2 off: what a CPU without it gets (same pixels).
    sse2 = lua_side({'CFX_CPU_CAPABILITY': 'default', 'CFX_BENCH_ROWS': 'train,train_augment_only'})[0] \
        if cap == 'avx2' else None
    print('cfx SIMD level: %s (cfx.cpu_capability())%s' % (
        cap, '; the "SSE2 only" rows ran with CFX_CPU_CAPABILITY=default' if sse2 else ''))

    decoded = src.convert('RGB')
    pil = time_rows([('eval', args.n_eval, lambda: eval_(data)),
                     ('eval_draft', args.n_eval, lambda: eval_draft(data)),
                     ('decode', args.n_eval, lambda: decode(data)),
                     ('train', args.n_train, lambda: train(data)),
                     ('train_augment_only', args.n_train, lambda: np.asarray(tv_randaugment(decoded)))],
                    args.repeats, time.process_time if args.clock == 'cpu' else time.perf_counter)

    def out(key):
        return np.fromfile(os.path.join(tmp, key + '.raw'), np.uint8).reshape(shapes[key])

    ref = eval_(data)
    d_full = np.abs(out('eval_full').astype(int) - ref).mean()
    d_scaled = np.abs(out('eval_scaled').astype(int) - ref).mean()
    print('pixels: cfx eval (full decode) vs PIL+torchvision: mean |diff| %.4f (%s); cfx eval (scaled decode) vs '
          'PIL+torchvision: mean |diff| %.2f' % (d_full, 'identical' if d_full == 0 else 'differs', d_scaled))
    print('%d images per timing (eval rows), %d (training rows); best (median) of %d timings; one core; %s time' % (
        args.n_eval, args.n_train, args.repeats, 'process CPU' if args.clock == 'cpu' else 'wall'))
    print()

    def ips(t):
        return 1.0 / t[0], 1.0 / t[1]

    base_eval, base_train = pil['eval'][0], pil['train'][0]
    base_decode, base_aug = pil['decode'][0], pil['train_augment_only'][0]
    # each row against the PIL + torchvision row of its group
    table = [
        ('(a) eval', 'cfx: `decode{min_size=256}` + `eval{}` (scaled decode)', cfx['eval_scaled'], base_eval),
        ('(a) eval', 'cfx: `decode()` full size + `eval{}`', cfx['eval_full'], base_eval),
        ('(a) eval', 'PIL + torchvision: open + Resize(256) + CenterCrop(224) + asarray', pil['eval'], base_eval),
        ('(a) eval', 'PIL + torchvision with `img.draft("RGB", (256, 256))`', pil['eval_draft'], base_eval),
        ('(a) decode only', 'cfx: `decode()` full size (bare TurboJPEG, 512x512)', cfx['decode_full'], base_decode),
        ('(a) decode only', 'cfx: `decode{min_size=256}` (256x256)', cfx['decode_scaled'], base_decode),
        ('(a) decode only', 'PIL: open + convert("RGB") + asarray (512x512)', pil['decode'], base_decode),
        ('(b) train', 'cfx: `decode()` + `randaugment{}`', cfx['train'], base_train),
        ('(b) train', 'cfx, SSE2 only: `decode()` + `randaugment{}`', sse2 and sse2['train'], base_train),
        ('(b) train', 'PIL + torchvision: open + the same ops (tv_randaugment)', pil['train'], base_train),
        ('(b) augment only', 'cfx: `randaugment{}` on a decoded image', cfx['train_augment_only'], base_aug),
        ('(b) augment only', 'cfx, SSE2 only: `randaugment{}` on a decoded image', sse2 and sse2['train_augment_only'],
         base_aug),
        ('(b) augment only', 'torchvision: tv_randaugment on a decoded image', pil['train_augment_only'], base_aug),
    ]
    table = [row for row in table if row[2]]  # no SSE2-only rows where AVX2 was not in use
    print('| pipeline | implementation | images/s best (median) | ms/image | speed vs the PIL/torchvision row |')
    print('|---|---|---:|---:|---:|')
    for group, name, t, base in table:
        best, med = ips(t)
        print('| %s | %s | %.0f (%.0f) | %.2f | %.2fx |' % (group, name, best, med, t[0] * 1e3, base / t[0]))
    print()
    e = cfx['eval_scaled'][0]
    print('targets: eval pipeline >= 3x PIL+torchvision per core: %.2fx (%s); eval pipeline faster than the bare '
          'full-size decode: %.2fx (%s); training pipeline >= 3x PIL+torchvision per core: %.2fx (%s)%s' % (
              base_eval / e, 'met' if base_eval / e >= 3 else 'NOT met', cfx['decode_full'][0] / e,
              'met' if cfx['decode_full'][0] / e > 1 else 'NOT met', base_train / cfx['train'][0],
              'met' if base_train / cfx['train'][0] >= 3 else 'NOT met',
              ', SSE2 only %.2fx' % (base_train / sse2['train'][0]) if sse2 else ''))
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
