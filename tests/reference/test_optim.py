"""cfx.optim against torch.optim (python3-torch 1.13, the single-tensor implementations:
foreach=False) and against the schedule's formula written out here.

  - AdamW with weight decay and clip_grad_norm(1.0) before every step, equal to
    torch.optim.AdamW + torch.nn.utils.clip_grad_norm_ bit for bit (optim.lua follows
    torch's operations one for one and both run libtorch's kernels, so nothing less is
    expected; a difference is reported in ulps): filter_bias_and_bn off (a list of tensors: every one decays), explicit
    parameter groups, float64 parameters, and filter_bias_and_bn on with a module (the
    micro ViT trained on BCE-with-logits; torch gets two groups built the same way:
    tensors of at most 1 dimension and timm's no_weight_decay names pos_embed and
    cls_token without decay);
  - SGD with momentum, dampening, Nesterov and weight decay, equal to torch.optim.SGD;
  - cfx.optim.cosine equal at every step to the formula of its documentation
    (optim.lua), which is itself checked against the description "linear warm-up, then
    half a cosine": linear rise to the base rate at the end of warm-up, 1/2 of the way
    down halfway through the rest, min_factor at the end, monotone; and a whole run
    with it equal to torch.optim.lr_scheduler.LambdaLR with the same lambda (learning
    rates and final weights);
  - optimizer state saved with state_dict through cfx.safetensors, loaded by a fresh
    optimizer in a fresh process, the run continued: equal to the uninterrupted run
    (AdamW on a list and on a module, SGD with momentum).
Gradients for the list cases are random tensors from this test, scaled so that the
global norm is above 1 at some steps (clipping acts) and below at others."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_lua  # noqa: E402
import st_torch  # noqa: E402
from test_models import VIT_CFG, ViT, randomize  # noqa: E402

THREADS = int(os.environ.get('CFX_THREADS', '2'))
SHAPES = [(8, 5), (5,), (3, 4, 2, 2), (1,), (), (7,)]
NORMS = [3.0, 0.5, 1.7, 0.2, 12.0, 0.9, 2.5, 1.1, 0.05, 4.0]   # global gradient norm per step


# ---- the schedule, from optim.lua's documentation --------------------------------------------
def warmup_steps(w, total):
    """warmup: a fraction of total below 1 (rounded to the nearest step), or a step count."""
    return int(math.floor(w * total + 0.5)) if 0 < w < 1 else int(w)


def cosine_factor(s, total, warmup=0, min_factor=0.0):
    """s <= W: s / W;  s > W: min + (1 - min) (1 + cos(pi (s - W) / (total - W))) / 2."""
    W = warmup_steps(warmup, total)
    if s <= W:
        return s / W
    progress = min(1.0, (s - W) / max(1, total - W))
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES = [dict(total=100, warmup=0.2), dict(total=37, warmup=5, min_factor=0.1), dict(total=10, warmup=0),
             dict(total=3000, warmup=0.2, min_factor=0.01), dict(total=7, warmup=7), dict(total=50, warmup=1)]


# ---- comparison --------------------------------------------------------------------------------
def ulp_distance(a, b):
    """Max distance in units in the last place between two float tensors of one dtype:
    the bit patterns as sign-magnitude integers, made monotone (negatives below zero)."""
    if a.numel() == 0:
        return 0
    itype, mask = {torch.float32: (np.int32, 0x7fffffff), torch.float64: (np.int64, 0x7fffffffffffffff)}[a.dtype]

    def ordered(t):
        i = t.contiguous().numpy().view(itype).astype(object)
        return np.where(i < 0, -(i & mask), i)
    return int(np.abs(ordered(a) - ordered(b)).max())


class Suite:
    def __init__(self, tmp):
        self.tmp, self.jobs, self.passed, self.failed = tmp, [], 0, 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def job(self, phase=1, **kw):
        j = dict(id=len(self.jobs) + 1, phase=phase, out=self.path('out%d.safetensors' % (len(self.jobs) + 1)),
                 **{k: v for k, v in kw.items() if v is not None})   # absent, not JSON null
        self.jobs.append(j)
        return j

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL', what)

    def same(self, label, got, want):
        """got, want: {name: tensor}, bit for bit (the ulp distance is reported otherwise)."""
        if set(got) != set(want):
            self.check(False, '%s: parameters %s, expected %s' % (label, sorted(got), sorted(want)))
            return None
        worst_ulp, worst_rel, bitwise = 0, 0.0, True
        for k in want:
            g, w = got[k], want[k]
            if g.dtype != w.dtype or g.shape != w.shape:
                self.check(False, '%s: %s is %s %s, expected %s %s' % (label, k, g.dtype, list(g.shape), w.dtype,
                                                                      list(w.shape)))
                return None
            if torch.equal(g, w):
                continue
            bitwise = False
            worst_ulp = max(worst_ulp, ulp_distance(g, w))
            worst_rel = max(worst_rel, float((g.double() - w.double()).abs().max() / w.double().abs().max()))
        self.check(bitwise, '%s: not bitwise equal: max %d ulp (relative %.3g)' % (label, worst_ulp, worst_rel))
        return 'bitwise equal' if bitwise else 'max %d ulp (relative %.2g)' % (worst_ulp, worst_rel)


# ---- torch runs ---------------------------------------------------------------------------------
def torch_run(opt_name, hyper, params, grad_fn, steps, clip=None, schedule=None, lr=None, groups=None):
    """params: list of tensors (requires_grad); grad_fn(s) sets .grad (or computes a loss
    and backward, returning it).  -> norms, lrs, losses."""
    kw = dict(hyper)
    if 'betas' in kw:
        kw['betas'] = tuple(kw['betas'])
    kw.pop('filter_bias_and_bn', None)
    what = params if groups is None else groups
    opt = getattr(torch.optim, opt_name)(what, foreach=False, **kw)
    sched = None
    if schedule is not None:
        for g in opt.param_groups:
            g['lr'] = lr
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: cosine_factor(e + 1, **schedule))
    norms, lrs, losses = [], [], []
    for s in range(1, steps + 1):
        lrs.append(opt.param_groups[0]['lr'])
        loss = grad_fn(s)
        if loss is not None:
            losses.append(float(loss))
        if clip:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
        opt.step()
        opt.zero_grad()
        if sched:
            sched.step()
    return norms, lrs, losses


def make_list(rng, dtype=torch.float32):
    return [torch.from_numpy(np.asarray(rng.standard_normal(s))).to(dtype) for s in SHAPES]


def make_grads(rng, steps, dtype=torch.float32):
    """g[s][i], the global norm of step s being NORMS[s-1]."""
    out = {}
    for s in range(1, steps + 1):
        gs = [torch.from_numpy(np.asarray(rng.standard_normal(sh) * rng.uniform(0.1, 3))).to(dtype) for sh in SHAPES]
        n = math.sqrt(sum(float((g.double() ** 2).sum()) for g in gs))
        out[s] = [g * (NORMS[(s - 1) % len(NORMS)] / n) for g in gs]
    return out


def main():
    torch.set_num_threads(THREADS)
    t_start = time.time()
    tmp = tempfile.mkdtemp(prefix='cfx_optim_')
    try:
        return run(Suite(tmp), t_start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(S, t_start):
    rng = np.random.default_rng(0)
    cases = []   # (label, job, torch reference: () -> ({name: tensor}, norms, lrs, losses))

    # -- lists of tensors with given gradients ----------------------------------------------------
    def list_case(label, opt, hyper, steps, clip=None, dtype=torch.float32, groups=None, schedule=None, lr=None,
                  split=None):
        p0, grads = make_list(rng, dtype), make_grads(rng, steps, dtype)
        pfile, gfile = S.path(label + '.params.safetensors'), S.path(label + '.grads.safetensors')
        st_torch.save(pfile, {'p%d' % (i + 1): p for i, p in enumerate(p0)})
        st_torch.save(gfile, {'g%d.%d' % (s, i + 1): g for s, gs in grads.items() for i, g in enumerate(gs)})
        common = dict(kind='run', opt=opt, hyper=hyper, params=pfile, n=len(p0), grads=gfile, steps=steps,
                      clip=clip, schedule=schedule, lr=lr,
                      groups=[dict(indices=[i + 1 for i in g['idx']], weight_decay=g['weight_decay'])
                              for g in groups] if groups else None)
        jobs = [S.job(**common)]
        if split:
            save = S.path(label + '.state.safetensors')
            jobs.append(S.job(save_at=split, save=save, **common))
            jobs.append(S.job(phase=2, resume=save, **common))

        def ref():
            ps = [p.clone().requires_grad_() for p in p0]

            def grad_fn(s):
                for p, g in zip(ps, grads[s]):
                    p.grad = g.clone()
            tg = None if groups is None else [dict(params=[ps[i] for i in g['idx']], weight_decay=g['weight_decay'])
                                              for g in groups]
            norms, lrs, losses = torch_run(opt, hyper, ps, grad_fn, steps, clip, schedule, lr, tg)
            return {'p%d' % (i + 1): p.detach() for i, p in enumerate(ps)}, norms, lrs, losses
        cases.append((label, jobs, ref))

    adamw = dict(lr=3e-3, betas=[0.8, 0.95], eps=1e-6, weight_decay=0.05, filter_bias_and_bn=False)
    list_case('AdamW list, filter off, clip 1.0', 'AdamW', adamw, 10, clip=1.0)
    list_case('AdamW list, defaults, clip 1.0', 'AdamW', dict(lr=1e-3), 6, clip=1.0)
    list_case('AdamW list float64, clip 0.5', 'AdamW', dict(lr=1e-2, weight_decay=0.1, filter_bias_and_bn=False), 6,
              clip=0.5, dtype=torch.float64)
    list_case('AdamW groups (1-d without decay), clip 1.0', 'AdamW', dict(lr=2e-3, weight_decay=0.1), 6, clip=1.0,
              groups=[dict(idx=[0, 2], weight_decay=0.1), dict(idx=[1, 3, 4, 5], weight_decay=0.0)])
    list_case('AdamW + cosine vs LambdaLR', 'AdamW', dict(lr=1.0, weight_decay=0.02, filter_bias_and_bn=False), 30,
              clip=1.0, schedule=dict(total=30, warmup=0.2, min_factor=0.05), lr=1e-2)
    list_case('AdamW + cosine, state round trip', 'AdamW', dict(lr=1.0, weight_decay=0.02, filter_bias_and_bn=False),
              8, clip=1.0, schedule=dict(total=8, warmup=2), lr=5e-3, split=4)
    for label, hyper in [('SGD momentum 0.9, wd 1e-4', dict(lr=0.05, momentum=0.9, weight_decay=1e-4)),
                         ('SGD nesterov, wd 5e-4', dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
                         ('SGD momentum 0.5, dampening 0.1', dict(lr=0.1, momentum=0.5, dampening=0.1)),
                         ('SGD plain, wd 1e-2', dict(lr=0.1, weight_decay=1e-2))]:
        list_case(label, 'SGD', hyper, 6, clip=1.0)
    list_case('SGD nesterov, state round trip', 'SGD', dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
              8, clip=1.0, split=3)

    # -- a module: the micro ViT, filter_bias_and_bn on --------------------------------------------
    torch.manual_seed(0)
    vit = ViT(**VIT_CFG['vit_micro_patch8_64'])
    randomize(vit)
    sd0 = {k: v.detach().clone() for k, v in vit.state_dict().items()}
    ckpt = S.path('vit.safetensors')
    st_torch.save(ckpt, sd0)
    steps = 6
    data = {}
    for s in range(1, steps + 1):
        data['x%d' % s] = torch.randn(2, 3, 64, 64)
        data['y%d' % s] = torch.tensor([[1.0], [0.0]])
    dfile = S.path('vit.data.safetensors')
    st_torch.save(dfile, data)
    hyper = dict(lr=1.0, weight_decay=0.05, betas=[0.9, 0.999], filter_bias_and_bn=True)
    common = dict(kind='run', opt='AdamW', hyper=hyper, model='vit_micro_patch8_64', params=ckpt, grads=dfile,
                  steps=steps, clip=1.0, schedule=dict(total=steps, warmup=2), lr=1e-3)
    save = S.path('vit.state.safetensors')
    vit_jobs = [S.job(**common), S.job(save_at=3, save=save, **common), S.job(phase=2, resume=save, **common)]

    def vit_ref():
        m = ViT(**VIT_CFG['vit_micro_patch8_64'])
        m.load_state_dict(sd0)
        m.train()
        no_wd = {'pos_embed', 'cls_token'}     # timm's VisionTransformer.no_weight_decay()
        decay = [p for n, p in m.named_parameters() if p.ndim > 1 and n not in no_wd]
        skip = [p for n, p in m.named_parameters() if p.ndim <= 1 or n in no_wd]
        groups = [dict(params=decay, weight_decay=0.05), dict(params=skip, weight_decay=0.0)]
        ps = list(m.parameters())

        def grad_fn(s):
            loss = F.binary_cross_entropy_with_logits(m(data['x%d' % s]), data['y%d' % s])
            loss.backward()
            return loss
        norms, lrs, losses = torch_run('AdamW', hyper, ps, grad_fn, steps, 1.0, common['schedule'], 1e-3, groups)
        return {k: v.detach() for k, v in m.named_parameters()}, norms, lrs, losses
    cases.append(('AdamW module (micro ViT), filter on, clip 1.0', vit_jobs, vit_ref))

    # -- schedules ------------------------------------------------------------------------------
    sched_jobs = [(sc, S.job(kind='schedule', schedule=sc)) for sc in SCHEDULES]

    # -- cfx, in two processes (the second resumes from files the first wrote) --------------------
    t0 = time.time()
    results = {}
    driver = os.path.join(HERE, 'optim_driver.lua')
    for phase in (1, 2):
        jobs_path, results_path = S.path('jobs%d.json' % phase), S.path('results%d.jsonl' % phase)
        with open(jobs_path, 'w') as f:
            json.dump([j for j in S.jobs if j['phase'] == phase], f)
        proc = subprocess.run(run_lua.lua_command(driver, jobs_path, results_path), env=run_lua.lua_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if os.path.exists(results_path):
            for line in open(results_path):
                r = json.loads(line)
                results[r['id']] = r
        if proc.returncode != 0:
            print(proc.stdout.decode(errors='replace')[-3000:])
            print('FAIL the driver (phase %d) exited with %d' % (phase, proc.returncode))
            return 1
    t_cfx = time.time() - t0

    def outputs(job):
        r = results.get(job['id'])
        if r is None or not r['ok']:
            S.check(False, 'job %d: %s' % (job['id'], r and r['error']))
            return None
        return st_torch.load(job['out'])[0]

    # -- compare -----------------------------------------------------------------------------------
    t1 = time.time()
    for label, jobs, ref in cases:
        want, norms, lrs, losses = ref()
        clip = jobs[0]['clip']
        got = outputs(jobs[0])
        if got is None:
            continue
        params = {k[len('param.'):]: v for k, v in got.items() if k.startswith('param.')}
        how = S.same(label, params, want)
        gn = got['norms'].tolist()
        S.check(gn == norms, '%s: clip_grad_norm returned %s, torch %s' % (label, gn, norms))
        S.check(got['lrs'].tolist() == lrs, '%s: learning rates %s, torch (LambdaLR) %s'
                % (label, got['lrs'].tolist(), lrs))
        if losses:
            S.check(got['losses'].tolist() == losses, '%s: losses %s, torch %s' % (label, got['losses'].tolist(),
                                                                                  losses))
        clipped = sum(1 for n in norms if n > clip)
        line = '%-46s %2d steps (%2d clipped): %s' % (label, len(lrs), clipped, how)
        if len(jobs) == 3:
            resumed = outputs(jobs[2])
            saved = outputs(jobs[1])
            if resumed is not None and saved is not None:
                rp = {k[len('param.'):]: v for k, v in resumed.items() if k.startswith('param.')}
                same = set(rp) == set(params) and all(torch.equal(rp[k], params[k]) for k in params)
                S.check(same, '%s: the resumed run differs from the uninterrupted one' % label)
                S.check(saved['lrs'].tolist() + resumed['lrs'].tolist() == got['lrs'].tolist(),
                        '%s: learning rates of the resumed run differ' % label)
                S.check(saved['norms'].tolist() + resumed['norms'].tolist() == gn,
                        '%s: gradient norms of the resumed run differ' % label)
                line += '; saved after step %d, resumed in a new process: %s' % (
                    len(saved['lrs']), 'identical' if same else 'DIFFERENT')
        print(line)

    worst = 0.0
    for sc, job in sched_jobs:
        got = outputs(job)
        if got is None:
            continue
        f = got['factors'].tolist()
        total = sc['total']
        want = [cosine_factor(s, **sc) for s in range(1, total + 1)]
        d = max(abs(a - b) for a, b in zip(f, want)) if len(f) == len(want) else float('inf')
        worst = max(worst, d)
        S.check(d == 0.0, 'cosine %s: max |factor - formula| %.3g' % (sc, d))
        # The formula against its description: linear warm-up then half a cosine.
        W, lo = warmup_steps(sc.get('warmup', 0), total), sc.get('min_factor', 0.0)
        if W > 0:
            S.check(all(abs(want[s - 1] - s / W) < 1e-15 for s in range(1, W + 1)) and want[W - 1] == 1.0,
                    'cosine %s: warm-up is not linear up to 1 at step %d' % (sc, W))
        S.check(all(want[s] <= want[s - 1] for s in range(max(W, 1), total)), 'cosine %s: not decreasing' % sc)
        S.check(W == total or abs(want[-1] - lo) < 1e-15, 'cosine %s: ends at %r, not %r' % (sc, want[-1], lo))
        if (total - W) % 2 == 0 and total > W:
            mid = W + (total - W) // 2
            S.check(abs(want[mid - 1] - (1 + lo) / 2) < 1e-15, 'cosine %s: %r halfway, not %r'
                    % (sc, want[mid - 1], (1 + lo) / 2))
    print('cosine schedule: %d configurations, %d steps in all: max |cfx - formula| %.1g'
          % (len(sched_jobs), sum(sc['total'] for sc in SCHEDULES), worst))
    t_torch = time.time() - t1
    print('cfx driver %.1f s (%d jobs, 2 processes), torch references %.1f s, total %.1f s; torch %s'
          % (t_cfx, len(S.jobs), t_torch, time.time() - t_start, torch.__version__))
    print('%d passed, %d failed' % (S.passed, S.failed))
    return 1 if S.failed else 0


if __name__ == '__main__':
    sys.exit(main())
