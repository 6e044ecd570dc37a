"""cfx.models against PyTorch: the same random weights, exported by this test as
safetensors with timm's names, must give the same logits and the same gradients.

References (all python3-torch / torchvision from Debian; timm is not packaged):
  resnet50        torchvision.models.resnet50: its parameter names are timm's.
  resnet_micro    torchvision's ResNet and Bottleneck, its layers built with its own
                  _make_layer at cfx's widths (stem 16, planes 16..128).
  convnext_small  torchvision.models.convnext_small (stochastic depth off), renamed to
  convnext_micro  timm's names by tv_convnext_name (a key it cannot name is an error, two
                  keys with one name too; strict loading then proves the set complete).
                  The micro one is torchvision's ConvNeXt class at cfx's widths.
  vit_*           ViT below: timm's VisionTransformer written out in PyTorch (class token,
                  learned position embedding, pre-norm blocks with norm1 / attn.qkv /
                  attn.proj / norm2 / mlp.fc1 / mlp.fc2, LayerNorm eps 1e-6, exact GELU,
                  final norm, head on the class token).
Every model gets a binary head (num_classes=1) and random weights (torch.manual_seed) of a
size that keeps activations O(1), with norm affines, ConvNeXt layer scales and BatchNorm
running statistics random too, so that each of them matters, and the residual streams of
the ViT and ConvNeXt small, so that LayerNorm's eps matters (see STREAM).  cfx loads the
file with cfx.models.create(name, {pretrained=path}) (strict) and runs the same input,
batch 2.  Checked:
  - eval-mode logits within 1e-4 (fp32) of PyTorch's;
  - one train-mode forward and backward of BCE-with-logits against fixed labels
    (train-mode BatchNorm): logits, loss, the gradient of every parameter, and the
    BatchNorm running statistics afterwards (see GRAD_TOL for the tolerance);
  - a checkpoint with a wrong shape, a missing key or an unexpected key is refused
    with a message naming the key;
  - ViT position embeddings resampled to another grid (vit_small_patch16_384 from a
    224 checkpoint; the micro ViT up and down) equal F.interpolate(bicubic,
    antialias=True, align_corners=False) of the grid, as timm's resample_abs_pos_embed,
    and the resampled model's logits equal PyTorch's at 384;
  - a 1000-class head in the checkpoint is dropped (and reported) when num_classes=1,
    everything else loaded bit for bit, and kept when num_classes=1000.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.resnet import Bottleneck, ResNet

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_lua  # noqa: E402
import st_torch  # noqa: E402
from torch_vit import VIT_CFG, ViT  # noqa: E402

THREADS = int(os.environ.get('CFX_THREADS', '2'))
LOGIT_TOL = 1e-4
# Gradients: |cfx - torch| <= GRAD_TOL * max|torch grad| of the same tensor.  Gradients
# are fp32 sums of many products (a conv weight's sums over batch x H x W = 25k terms at
# 224), whose rounding depends on the summation order: an order as valid as PyTorch's
# moves them by about sqrt(n) * 6e-8 = 1e-5 of their size, and GRAD_TOL leaves 10x that.
# (Today cfx calls the same libtorch kernels in the same order and every gradient is equal
# bit for bit; the output says so.)  Tensors whose largest gradient is below
# GRAD_FLOOR / GRAD_TOL of the model's largest are compared with that instead: some are
# zero in exact arithmetic (the key bias of attention: the softmax does not change when
# one number is added to every score), and what is left of them is the rounding noise of
# the larger terms that cancelled.
GRAD_TOL = 1e-4
GRAD_FLOOR = 1e-6


def resample_pos_embed(pe, new_grid, num_prefix=1):
    """timm's resample_abs_pos_embed: the grid part resampled, bicubic, antialiased."""
    prefix, grid = pe[:, :num_prefix], pe[:, num_prefix:]
    old = int(math.sqrt(grid.shape[1]))
    grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode='bicubic', antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, -1)
    return torch.cat([prefix, grid], dim=1)


# ---- ResNets -----------------------------------------------------------------------------------
def resnet_micro():
    """cfx's resnet_micro (stem 16, planes 16, 32, 64, 128, one Bottleneck per stage) from
    torchvision's own ResNet, Bottleneck and _make_layer: torchvision hard-codes the stem
    width 64 and planes 64..512, so the stem and the layers are rebuilt at these widths."""
    m = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=1)
    m.inplanes = 16
    m.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(16)
    m.layer1 = m._make_layer(Bottleneck, 16, 1)
    m.layer2 = m._make_layer(Bottleneck, 32, 1, stride=2)
    m.layer3 = m._make_layer(Bottleneck, 64, 1, stride=2)
    m.layer4 = m._make_layer(Bottleneck, 128, 1, stride=2)
    m.fc = nn.Linear(128 * Bottleneck.expansion, 1)
    return m


def convnext_micro():
    cfg = [CNBlockConfig(24, 48, 1), CNBlockConfig(48, 96, 1), CNBlockConfig(96, 192, 2), CNBlockConfig(192, None, 1)]
    return ConvNeXt(cfg, stochastic_depth_prob=0.0, num_classes=1)


# torchvision ConvNeXt -> timm: stem features.0.{0,1}; stage i's blocks are features.2i+1
# (block.{0,2,3,5} = conv_dw, norm, mlp.fc1, mlp.fc2; layer_scale = gamma), its downsample
# features.2i (i >= 1); classifier.{0,2} = head.norm, head.fc.
CN_BLOCK = {'0': 'conv_dw', '2': 'norm', '3': 'mlp.fc1', '5': 'mlp.fc2'}


def tv_convnext_name(key):
    m = re.fullmatch(r'features\.0\.([01])\.(weight|bias)', key)
    if m:
        return 'stem.%s.%s' % (m[1], m[2])
    m = re.fullmatch(r'features\.(\d+)\.(\d+)\.(.+)', key)
    if m:
        f, j, rest = int(m[1]), m[2], m[3]
        if f % 2 == 1:
            if rest == 'layer_scale':
                return 'stages.%d.blocks.%s.gamma' % ((f - 1) // 2, j)
            b = re.fullmatch(r'block\.([0235])\.(weight|bias)', rest)
            if b:
                return 'stages.%d.blocks.%s.%s.%s' % ((f - 1) // 2, j, CN_BLOCK[b[1]], b[2])
        elif f > 0 and j in ('0', '1') and rest in ('weight', 'bias'):
            return 'stages.%d.downsample.%s.%s' % (f // 2, j, rest)
    m = re.fullmatch(r'classifier\.([02])\.(weight|bias)', key)
    if m:
        return {'0': 'head.norm', '2': 'head.fc'}[m[1]] + '.' + m[2]
    raise KeyError('no timm name for the torchvision ConvNeXt key %s' % key)


def tv_convnext_to_timm(sd):
    out = {}
    for k, v in sd.items():
        name = tv_convnext_name(k)
        if name in out:
            raise KeyError('two torchvision keys map to %s' % name)
        out[name] = (v.reshape(-1) if name.endswith('.gamma') else v).clone()   # layer_scale {C,1,1} -> gamma {C}
    return out


# ---- random weights ------------------------------------------------------------------------------
# Residual streams scaled down to about STREAM, so that the LayerNorms that read them
# (ViT: norm1, norm2, the final norm; ConvNeXt: the block norms, downsample norms and the
# head norm) see variances near their eps: an eps of 1e-5 instead of timm's 1e-6 then
# moves the logits by far more than LOGIT_TOL (with O(1) streams it moved them by 1.5e-5).
STREAM = 0.01
SMALL = {'vit': [r'patch_embed\..*', r'pos_embed', r'cls_token', r'blocks\.\d+\.(attn\.proj|mlp\.fc2)\..*'],
         'convnext': [r'features\.0\.0\..*', r'features\.[2468]\.1\..*', r'features\.\d+\.\d+\.layer_scale',
                      r'features\.\d+\.\d+\.block\.0\.bias']}


def randomize(model, gain=1.0, small=()):
    """Weights drawn so that activations stay O(1) and every parameter matters; those
    whose name matches a pattern in small are then scaled by STREAM."""
    hits = {pat: 0 for pat in small}
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit('.', 1)[-1]
            if leaf in ('cls_token', 'pos_embed'):
                p.normal_(0, 0.5)
            elif leaf in ('layer_scale', 'gamma'):
                p.uniform_(0.2, 1.0)
            elif p.dim() >= 2:
                p.normal_(0, gain / math.sqrt(p[0].numel()))
            elif leaf == 'weight':
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.1)
            for pat in small:
                if re.fullmatch(pat, name):
                    p.mul_(STREAM)
                    hits[pat] += 1
    assert all(hits.values()), 'patterns that match no parameter: %s' % [k for k, v in hits.items() if not v]


def randomize_bn_stats(model, x):
    """Running statistics of a batch unlike the test's, then perturbed, so that eval mode
    (running statistics) and train mode (batch statistics) differ and both matter."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(0.2 * torch.randn_like(m.running_mean) * m.running_var.sqrt())
            m.running_var.mul_(torch.exp(0.3 * torch.randn_like(m.running_var)))
            m.num_batches_tracked.fill_(7)


# ---- the run -------------------------------------------------------------------------------------
class Suite:
    def __init__(self, tmp):
        self.tmp, self.jobs = tmp, []
        self.passed = self.failed = 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def job(self, model, opts=None, **kw):
        j = dict(id=len(self.jobs) + 1, model=model, opts=opts or {}, **kw)
        self.jobs.append(j)
        return j

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL', what)

    def note(self, line):
        print(line)


def maxdiff(a, b):
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def main():
    torch.set_num_threads(THREADS)
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix='cfx_models_')
    S = Suite(tmp)
    try:
        return run(S, t_start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_models():
    """name -> (torch model, image size, to_timm: torch state_dict -> timm-named copies)"""
    torch.manual_seed(0)
    ident = (lambda sd: {k: v.clone() for k, v in sd.items()})
    out = {}
    for name in ('vit_small_patch16_224', 'vit_micro_patch8_64'):
        m = ViT(**VIT_CFG[name])
        randomize(m, small=SMALL['vit'])
        out[name] = (m, VIT_CFG[name]['img_size'], ident)
    for name, ctor, size in (('resnet50', lambda: torchvision.models.resnet50(weights=None, num_classes=1), 224),
                             ('resnet_micro', resnet_micro, 64)):
        m = ctor()
        randomize(m, gain=math.sqrt(2))
        randomize_bn_stats(m, torch.randn(4, 3, size, size) * 1.5 + 0.3)
        out[name] = (m, size, ident)
    for name, ctor, size in (('convnext_small', lambda: torchvision.models.convnext_small(
            weights=None, num_classes=1, stochastic_depth_prob=0.0), 224), ('convnext_micro', convnext_micro, 64)):
        m = ctor()
        randomize(m, small=SMALL['convnext'])
        out[name] = (m, size, tv_convnext_to_timm)
    return out


def run(S, t_start):
    models = make_models()
    torch.manual_seed(1)
    y = torch.tensor([[1.0], [0.0]])
    prepared = {}
    for name, (m, size, to_timm) in models.items():
        sd = to_timm(m.state_dict())
        ckpt = S.path(name + '.safetensors')
        st_torch.save(ckpt, sd)
        x = torch.randn(2, 3, size, size)
        inp = S.path(name + '.input.safetensors')
        st_torch.save(inp, {'x': x, 'y': y})
        ev = S.job(name, {'pretrained': ckpt}, input=inp, mode='eval', out=S.path(name + '.eval.safetensors'))
        tr = S.job(name, {'pretrained': ckpt}, input=inp, mode='train', out=S.path(name + '.train.safetensors'))
        prepared[name] = dict(sd=sd, x=x, ckpt=ckpt, eval=ev, train=tr)

    # -- heads: a 1000-class classifier in the checkpoint ----------------------------------
    torch.manual_seed(2)
    heads = {}
    for name, key in (('vit_micro_patch8_64', 'head'), ('resnet_micro', 'fc'), ('convnext_micro', 'head.fc'),
                      ('vit_small_patch16_224', 'head')):
        sd = dict(prepared[name]['sd'])
        d = sd[key + '.weight'].shape[1]
        sd[key + '.weight'], sd[key + '.bias'] = torch.randn(1000, d) * 0.05, torch.randn(1000) * 0.05
        ckpt = S.path(name + '.in1k.safetensors')
        st_torch.save(ckpt, sd)
        heads[name] = dict(sd=sd, key=key, ckpt=ckpt,
                           one=S.job(name, {'pretrained': ckpt}, state=True, out=S.path(name + '.head1.safetensors'))
                           if name != 'vit_small_patch16_224' else None,
                           many=S.job(name, {'pretrained': ckpt, 'num_classes': 1000}, state=True,
                                      out=S.path(name + '.head1000.safetensors'))
                           if name == 'resnet_micro' else None)

    # -- position embeddings resampled -----------------------------------------------------
    x384 = torch.randn(1, 3, 384, 384)
    st_torch.save(S.path('x384.safetensors'), {'x': x384})
    micro = prepared['vit_micro_patch8_64']['ckpt']
    resample = {
        'vit_small_patch16_384': S.job('vit_small_patch16_384', {'pretrained': heads['vit_small_patch16_224']['ckpt']},
                                       state=True, input=S.path('x384.safetensors'), mode='eval',
                                       out=S.path('vit384.safetensors')),
        'micro@96': S.job('vit_micro_patch8_64', {'pretrained': micro, 'img_size': 96}, state=True,
                          out=S.path('micro96.safetensors')),
        'micro@32': S.job('vit_micro_patch8_64', {'pretrained': micro, 'img_size': 32}, state=True,
                          out=S.path('micro32.safetensors')),
    }

    # -- bad checkpoints -------------------------------------------------------------------
    bad = []
    base = prepared['vit_micro_patch8_64']['sd']

    def bad_ckpt(model, sd, key, what, label):
        p = S.path('bad%d.safetensors' % len(bad))
        st_torch.save(p, sd)
        bad.append((S.job(model, {'pretrained': p}), key, what, label))
    sd = dict(base)
    sd['blocks.1.mlp.fc1.weight'] = sd['blocks.1.mlp.fc1.weight'][:-1]
    bad_ckpt('vit_micro_patch8_64', sd, 'blocks.1.mlp.fc1.weight', ['383, 96', '384, 96'], 'wrong shape')
    sd = dict(base)
    del sd['blocks.2.norm1.bias']
    bad_ckpt('vit_micro_patch8_64', sd, 'blocks.2.norm1.bias', ['missing'], 'missing key')
    sd = dict(base)
    sd['blocks.4.norm1.weight'] = torch.ones(96)
    bad_ckpt('vit_micro_patch8_64', sd, 'blocks.4.norm1.weight', ['unexpected'], 'unexpected key')
    sd = dict(prepared['resnet_micro']['sd'])
    del sd['layer2.0.bn1.running_var']
    bad_ckpt('resnet_micro', sd, 'layer2.0.bn1.running_var', ['missing'], 'missing buffer')
    sd = dict(prepared['convnext_micro']['sd'])
    sd['stages.2.blocks.1.gamma'] = sd['stages.2.blocks.1.gamma'].reshape(-1, 1, 1)
    bad_ckpt('convnext_micro', sd, 'stages.2.blocks.1.gamma', ['96, 1, 1'], 'gamma {C,1,1} not mapped')

    # -- cfx -------------------------------------------------------------------------------
    jobs_path, results_path = S.path('jobs.json'), S.path('results.jsonl')
    with open(jobs_path, 'w') as f:
        json.dump(S.jobs, f)
    t0 = time.time()
    driver = os.path.join(HERE, 'models_driver.lua')
    proc = subprocess.run(run_lua.lua_command(driver, jobs_path, results_path), env=run_lua.lua_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    t_cfx = time.time() - t0
    results = {}
    if os.path.exists(results_path):
        for line in open(results_path):
            r = json.loads(line)
            results[r['id']] = r
    if proc.returncode != 0 or len(results) != len(S.jobs):
        print(proc.stdout.decode(errors='replace')[-3000:])
        print('FAIL the driver exited with %d after %d of %d jobs' % (proc.returncode, len(results), len(S.jobs)))
        return 1

    def result(job, want_ok=True):
        r = results[job['id']]
        if want_ok and not r['ok']:
            S.check(False, '%s %s: cfx raised: %s' % (job['model'], job.get('mode') or 'load', r['error']))
            return None
        return r

    def outputs(job):
        return st_torch.load(job['out'])[0]

    # -- logits and gradients --------------------------------------------------------------
    t_torch = time.time()
    for name, (m, size, to_timm) in models.items():
        p = prepared[name]
        r = result(p['eval'])
        if r:
            S.check(sorted(r['names']) == sorted(p['sd']), '%s: cfx state_dict names differ from the checkpoint: '
                    'cfx only %s, checkpoint only %s' % (name, sorted(set(r['names']) - set(p['sd']))[:5],
                                                         sorted(set(p['sd']) - set(r['names']))[:5]))
            m.eval()
            with torch.no_grad():
                ref = m(p['x'])
            got = outputs(p['eval'])['logits']
            d = maxdiff(got, ref) if got.shape == ref.shape else float('inf')
            S.check(d <= LOGIT_TOL, '%s eval logits: max abs diff %.3g > %g' % (name, d, LOGIT_TOL))
            S.note('%-22s eval  logits max |diff| %.2e  (|logits| up to %.2f)' % (name, d, float(ref.abs().max())))
        r = result(p['train'])
        if not r:
            continue
        m.train()
        m.zero_grad()
        logits = m(p['x'])
        loss = F.binary_cross_entropy_with_logits(logits, y)
        loss.backward()
        got = outputs(p['train'])
        dl = maxdiff(got['logits'], logits.detach())
        S.check(dl <= LOGIT_TOL, '%s train logits: max abs diff %.3g' % (name, dl))
        dloss = abs(float(got['loss']) - float(loss))
        S.check(dloss <= LOGIT_TOL, '%s loss: %r vs %r' % (name, float(got['loss']), float(loss)))
        grads = to_timm({k: q.grad for k, q in m.named_parameters()})
        gmax = max(float(g.abs().max()) for g in grads.values())
        worst, worst_name, n, nbit = 0.0, None, 0, 0
        worst_floor = (0.0, None)
        for k, g in grads.items():
            c = got.get('grad.' + k)
            if c is None or c.shape != g.shape:
                S.check(False, '%s: gradient of %s missing or of shape %s, expected %s'
                        % (name, k, None if c is None else list(c.shape), list(g.shape)))
                continue
            n += 1
            nbit += torch.equal(c, g)
            err = maxdiff(c, g)
            scale = float(g.abs().max())
            if scale >= GRAD_FLOOR / GRAD_TOL * gmax:
                rel = err / scale
                if rel > worst:
                    worst, worst_name = rel, k
                S.check(rel <= GRAD_TOL, '%s grad %s: max |diff| %.3g = %.3g x max|grad| (%.3g)'
                        % (name, k, err, rel, scale))
            else:
                rel = err / gmax
                if rel > worst_floor[0]:
                    worst_floor = (rel, k)
                S.check(rel <= GRAD_FLOOR, '%s grad %s (near zero, max %.3g): max |diff| %.3g = %.3g x the '
                        'largest gradient' % (name, k, scale, err, rel))
        S.check(n == len(grads), '%s: %d of %d gradients compared' % (name, n, len(grads)))
        nb = 0
        for k, b in m.named_buffers():
            c = got.get('buffer.' + k)
            if c is None:
                S.check(False, '%s: buffer %s not written' % (name, k))
                continue
            nb += 1
            if b.dtype == torch.int64:
                S.check(torch.equal(c, b), '%s: %s = %s, expected %s' % (name, k, c.tolist(), b.tolist()))
            else:
                e = maxdiff(c, b) / max(1.0, float(b.abs().max()))
                S.check(e <= 1e-5, '%s: buffer %s after the train step differs by %.3g' % (name, k, e))
        S.note('%-22s train logits %.1e, loss %.1e; %d gradients (%d bitwise equal), worst %.1e x max|grad|%s%s%s'
               % (name, dl, dloss, n, nbit, worst, ' (%s)' % worst_name if worst_name else '',
                  '; near-zero %s: %.1e x largest' % (worst_floor[1], worst_floor[0]) if worst_floor[1] else '',
                  '; %d BatchNorm buffers after the step' % nb if nb else ''))
    t_torch = time.time() - t_torch

    # -- heads -----------------------------------------------------------------------------
    for name, h in heads.items():
        for job, keep in ((h['one'], False), (h['many'], True)):
            if job is None:
                continue
            r = result(job)
            if not r:
                continue
            st = {k[len('state.'):]: v for k, v in outputs(job).items()}
            hk = (h['key'] + '.weight', h['key'] + '.bias')
            if keep:
                S.check(r['report']['dropped'] == [], '%s num_classes=1000: dropped %s'
                        % (name, r['report']['dropped']))
                same = all(torch.equal(st[k], h['sd'][k]) for k in h['sd'])
            else:
                S.check(sorted(r['report']['dropped']) == sorted(hk), '%s: dropped %s, expected %s'
                        % (name, r['report']['dropped'], list(hk)))
                S.check(list(st[hk[0]].shape) == [1, h['sd'][hk[0]].shape[1]] and list(st[hk[1]].shape) == [1],
                        '%s: head shape %s' % (name, list(st[hk[0]].shape)))
                same = all(torch.equal(st[k], h['sd'][k]) for k in h['sd'] if k not in hk)
            S.check(same and set(st) == set(h['sd']), '%s: the loaded state differs from the checkpoint' % name)
        if h['one'] or h['many']:
            S.note('%-22s 1000-class checkpoint: head dropped for num_classes=1%s' %
                   (name, ', kept for num_classes=1000' if h['many'] else ''))

    # -- position embeddings -----------------------------------------------------------------
    job = resample['vit_small_patch16_384']
    r = result(job)
    if r:
        h = heads['vit_small_patch16_224']
        out = outputs(job)
        st = {k[len('state.'):]: v for k, v in out.items() if k.startswith('state.')}
        want = resample_pos_embed(h['sd']['pos_embed'], 24)
        d = maxdiff(st['pos_embed'], want)
        S.check(st['pos_embed'].shape == want.shape and d <= 1e-6,
                'vit 224 -> 384: pos_embed %s, max |diff| %.3g' % (list(st['pos_embed'].shape), d))
        S.check(sorted(r['report']['dropped']) == ['head.bias', 'head.weight'], 'vit 384: dropped %s'
                % r['report']['dropped'])
        S.check(all(torch.equal(st[k], v) for k, v in h['sd'].items() if k not in ('pos_embed', 'head.weight',
                                                                                   'head.bias')),
                'vit 384: weights other than pos_embed and the head changed')
        m = ViT(**VIT_CFG['vit_small_patch16_384'])
        m.load_state_dict(st)
        m.eval()
        with torch.no_grad():
            ref = m(x384)
        dl = maxdiff(out['logits'], ref)
        S.check(dl <= LOGIT_TOL, 'vit 384 logits: max |diff| %.3g' % dl)
        S.note('%-22s from a 224 checkpoint: pos_embed 197 -> 577 tokens max |diff| %.1e vs F.interpolate '
               '(bicubic, antialias); logits at 384 %.1e' % ('vit_small_patch16_384', d, dl))
    for label, grid in (('micro@96', 12), ('micro@32', 4)):
        r = result(resample[label])
        if r:
            st = {k[len('state.'):]: v for k, v in outputs(resample[label]).items()}
            want = resample_pos_embed(prepared['vit_micro_patch8_64']['sd']['pos_embed'], grid)
            d = maxdiff(st['pos_embed'], want) if st['pos_embed'].shape == want.shape else float('inf')
            S.check(d <= 1e-6, 'vit_micro %s: pos_embed max |diff| %.3g' % (label, d))
            S.note('%-22s pos_embed 8x8 -> %dx%d grid: max |diff| %.1e' % ('vit_micro_patch8_64', grid, grid, d))

    # -- refused checkpoints -----------------------------------------------------------------
    for job, key, words, label in bad:
        r = results[job['id']]
        if r['ok']:
            S.check(False, '%s (%s): the checkpoint was accepted' % (job['model'], label))
            continue
        msg = r['error']
        S.check(key in msg and all(w in msg for w in words), '%s (%s): message lacks %s or %s: %s'
                % (job['model'], label, key, words, msg))
        S.note('refused (%s): %s' % (label, msg[:300]))

    print('cfx driver %.1f s (%d jobs), torch references %.1f s, total %.1f s; torch %s, %d threads'
          % (t_cfx, len(S.jobs), t_torch, time.time() - t_start, torch.__version__, THREADS))
    print('%d passed, %d failed' % (S.passed, S.failed))
    return 1 if S.failed else 0


if __name__ == '__main__':
    sys.exit(main())
