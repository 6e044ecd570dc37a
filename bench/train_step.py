#!/usr/bin/python3
"""train_step.py: ms per training step of timm's ViT, cfx from Lua vs eager torch.

    /usr/bin/python3 bench/train_step.py [--models M,...] [--batches B,...]
        [--precisions fp32,bf16] [--steps N] [--steps-large N] [--steps-micro N]
        [--warmup W] [--threads T]

One step, on both sides: forward of a random batch (made once per side, no loader),
BCE-with-logits on the one logit (the logits cast to float32 first, as
cfx.train.fit does), backward, gradient clipping at global norm 1.0, an AdamW step
(lr 1e-4, weight decay 0.05 with a no-decay group of the 1-d parameters, pos_embed and
cls_token, as timm's optimizer factory) and zero_grad (set to None).  bf16 is autocast
on the CPU around the forward and the loss (cfx.autocast{device='cpu',
dtype='bfloat16'} / torch.autocast('cpu', dtype=torch.bfloat16)); parameters, gradients
and optimizer state stay float32.

cfx: bench/train_step.lua in a child process (started as tests/reference/run_lua.py
does; CFX_LUAJIT_CMD=build/cfx to run it under the cfx program) with CFX_THREADS=T; the
model is cfx.models.create(name), optimizer cfx.optim.AdamW, clipping
cfx.optim.clip_grad_norm.  torch: this process, torch.set_num_threads(T), timm's
VisionTransformer written out below (patch-embed conv, class token, position
embedding, pre-norm blocks with qkv Linear and attention as q * scale @ k^T, softmax,
@ v, proj; Mlp with exact GELU; LayerNorm eps 1e-6; the head on the class token;
dropouts at 0 left out, as they are identities on both sides),
torch.optim.AdamW (its default single-tensor path in torch 1.13) and
torch.nn.utils.clip_grad_norm_.

Both sides of a configuration are alive at once but never run at the same time: the
Lua child builds its model and waits for one `step` request at a time on stdin, and the
steps alternate, cfx then torch, then torch then cfx, so that a change in the machine's
load (it may be shared) falls on both.  W warm-up steps per side (default 2), then N
timed steps per side (default 5; --steps-large, default 3, for vit_small_patch16_224 at
batch >= 32; --steps-micro, default 21, for vit_micro_patch8_64, whose steps take tens
of milliseconds); the table gives the median wall-clock ms/step of each side and the ratio
cfx / torch of the medians.  A line per configuration also gives every timed step, the
last loss, cfx's full collections and the minor page faults per step of each side, and
the 1-minute load average before and after.

libgomp, OpenBLAS and glibc malloc read their settings from the environment, which both
sides inherit from this process (the header prints the OMP_*, GOMP_*, OPENBLAS_* and
MALLOC_* variables that are set).  Debian's libtorch runs its fp32 matrix products on
OpenBLAS's own pthread pool besides libgomp's: with T = 2 on two cores, four threads
spin for the two cores, which can double an fp32 step and makes it vary from step to
step on both sides; OMP_WAIT_POLICY=PASSIVE (or GOMP_SPINCOUNT=10000) before the command
measures both sides without that.  Python keeps glibc malloc's defaults, under which
torch page-faults far more than the cfx program (which sets M_MMAP_THRESHOLD and
M_TRIM_THRESHOLD); MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456
gives torch the same settings.  See docs/performance.md, "Training step".

Prints the machine, the commands and a Markdown table (docs/performance.md, "Training
step").
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'reference'))
import run_lua  # noqa: E402
from benchlib import machine  # noqa: E402

# the models this bench knows (tests/reference/torch_vit.py has their timm configurations)
BENCH_MODELS = ('vit_small_patch16_224', 'vit_micro_patch8_64')


class TorchStep:
    """The torch side of one configuration: the model, optimizer and random batch, made
    once; step() runs one training step and returns (wall-clock ms, loss)."""

    def __init__(self, name, batch, precision):
        import torch
        self.torch = torch
        torch.manual_seed(0)
        from torch_vit import VIT_CFG, ViT, timm_init  # tests/reference: timm's ViT in PyTorch
        cfg = VIT_CFG[name]
        self.model = timm_init(ViT(**cfg))
        self.model.train()
        decay, no_decay = [], []
        for pname, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 or pname in ('pos_embed', 'cls_token') else decay).append(p)
        self.opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.05},
                                      {'params': no_decay, 'weight_decay': 0.0}], lr=1e-4)
        size = cfg['img_size']
        self.x = torch.randn(batch, 3, size, size)
        self.y = (torch.rand(batch, 1) < 0.5).float()
        self.bf16 = precision == 'bf16'

    def step(self):
        torch, F = self.torch, self.torch.nn.functional
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        if self.bf16:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                loss = F.binary_cross_entropy_with_logits(self.model(self.x).float(), self.y)
        else:
            loss = F.binary_cross_entropy_with_logits(self.model(self.x).float(), self.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        value = loss.item()
        ms = (time.perf_counter() - t0) * 1e3
        return ms, value, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


class LuaStep:
    """The cfx side of one configuration: bench/train_step.lua in a child process that
    runs one step per request."""

    def __init__(self, name, batch, precision, threads):
        script = os.path.join(ROOT, 'bench', 'train_step.lua')
        env = run_lua.lua_env()
        env['CFX_THREADS'] = str(threads)
        self.args = (name, str(batch), precision)
        self.proc = subprocess.Popen(run_lua.lua_command(script, *self.args), env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.collections = 0
        line = self.proc.stdout.readline()
        if line.strip() != 'ready':
            self.fail(line)

    def fail(self, line):
        self.proc.kill()
        err = self.proc.stderr.read()
        raise RuntimeError('the Lua side failed on %s (said %r):\n%s' % (' '.join(self.args), line, err))

    def step(self):
        self.proc.stdin.write('step\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        try:
            ms, loss, collections, faults = line.split('\t')
        except ValueError:
            self.fail(line)
        self.collections = int(collections)
        return float(ms), float(loss), int(faults)

    def close(self):
        self.proc.stdin.write('quit\n')
        self.proc.stdin.close()
        self.proc.wait()


def loadavg():
    try:
        with open('/proc/loadavg') as f:
            return f.read().split()[0]
    except OSError:
        return '?'


def measure(name, batch, precision, warmup, steps, threads):
    """Both sides of one configuration, their steps interleaved.  Returns a dict: cfx and
    torch (ms of each timed step), cfx_faults and torch_faults (minor page faults of each
    timed step), cfx_loss and torch_loss (of the last step), collections (cfx's full
    collections during the timed steps), load (the 1-minute load average before, after)."""
    load0 = loadavg()
    lua = LuaStep(name, batch, precision, threads)
    tor = TorchStep(name, batch, precision)
    r = {'cfx': [], 'torch': [], 'cfx_faults': [], 'torch_faults': []}
    try:
        for _ in range(warmup):
            lua.step()
            tor.step()
        gc0 = lua.collections
        for i in range(steps):
            # alternate which side goes first, so that neither always follows the other
            for side in (('cfx', 'torch') if i % 2 == 0 else ('torch', 'cfx')):
                ms, loss, faults = (lua if side == 'cfx' else tor).step()
                r[side].append(ms)
                r[side + '_faults'].append(faults)
                r[side + '_loss'] = loss
        r['collections'] = lua.collections - gc0
    finally:
        lua.close()
    r['load'] = (load0, loadavg())
    return r


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='vit_micro_patch8_64,vit_small_patch16_224')
    ap.add_argument('--batches', default='8,32')
    ap.add_argument('--precisions', default='fp32,bf16')
    ap.add_argument('--steps', type=int, default=5,
                    help='timed steps per side for vit_small_patch16_224 at batch < 32')
    ap.add_argument('--steps-large', type=int, default=3,
                    help='timed steps for vit_small_patch16_224 at batch >= 32')
    ap.add_argument('--steps-micro', type=int, default=21, help='timed steps for vit_micro_patch8_64')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(',') if m]
    for m in models:
        if m not in BENCH_MODELS:
            ap.error('unknown model %s (known: %s)' % (m, ', '.join(BENCH_MODELS)))
    batches = [int(b) for b in args.batches.split(',') if b]
    precisions = [p for p in args.precisions.split(',') if p]
    for p in precisions:
        if p not in ('fp32', 'bf16'):
            ap.error('precision must be fp32 or bf16, got %s' % p)

    import torch
    torch.set_num_threads(args.threads)
    script = os.path.join(ROOT, 'bench', 'train_step.lua')
    print('machine: ' + machine())
    print('command: /usr/bin/python3 bench/train_step.py ' + ' '.join(argv))
    print('lua side: CFX_THREADS=%d %s' % (args.threads, run_lua.describe_command(script, 'MODEL', 'BATCH',
                                                                                  'PRECISION')))
    print('python side: in this process, torch %s, torch.set_num_threads(%d) -> %d thread(s)'
          % (torch.__version__, args.threads, torch.get_num_threads()))
    tuned = ['%s=%s' % (k, v) for k, v in sorted(os.environ.items())
             if k.startswith(('OMP_', 'GOMP_', 'KMP_', 'OPENBLAS_', 'MKL_', 'MALLOC_', 'DNNL_', 'ONEDNN_'))]
    print('environment (both sides): '
          + (' '.join(tuned) if tuned else 'no OMP_/GOMP_/OPENBLAS_/MALLOC_ variables set'))
    print('%d warm-up steps per side, then %d timed steps per side (%d for vit_small_patch16_224 at batch >= 32, '
          '%d for vit_micro_patch8_64), the two sides alternating step by step; median ms/step'
          % (args.warmup, args.steps, args.steps_large, args.steps_micro))
    sys.stdout.flush()

    rows = []
    for name in models:
        for batch in batches:
            for precision in precisions:
                steps = args.steps
                if name == 'vit_micro_patch8_64':
                    steps = args.steps_micro
                elif batch >= 32:
                    steps = args.steps_large
                r = measure(name, batch, precision, args.warmup, steps, args.threads)
                print('  %s batch %d %s: cfx %s ms (loss %.4f, %d collections, %d faults/step)  '
                      'torch %s ms (loss %.4f, %d faults/step)  load %s -> %s'
                      % (name, batch, precision, ' '.join('%.0f' % t for t in r['cfx']), r['cfx_loss'],
                         r['collections'], statistics.median(r['cfx_faults']),
                         ' '.join('%.0f' % t for t in r['torch']), r['torch_loss'],
                         statistics.median(r['torch_faults']), r['load'][0], r['load'][1]))
                sys.stdout.flush()
                rows.append((name, batch, precision, statistics.median(r['cfx']), statistics.median(r['torch'])))
    print()
    print('| model | batch | precision | cfx ms/step | torch ms/step | cfx / torch |')
    print('|---|---:|---|---:|---:|---:|')
    for name, batch, precision, lm, tm in rows:
        print('| %s | %d | %s | %.0f | %.0f | %.2f |' % (name, batch, precision, lm, tm, lm / tm))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
