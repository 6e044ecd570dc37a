#!/usr/bin/python3
"""The paper preset of every study in experiments/ runs end to end, as a user would run
it on the real data, with only the compute-bound settings cut, on two kinds of store:

- `fixtures`: stores made by `cfx data import` from the parquet test fixtures
  (tests/fixtures/parquet: Community-Forensics-shaped shards written by DuckDB and
  arrow-rs): training on five shards (190 images, 10 generators, images of 1 to 24
  pixels a side), evaluation on a sixth (24 images), a seventh as cross_dataset's extra set;
- `48k`: a training store of 24,000 reals and 24,000 fakes over 4,000 generators (the
  shape of CommunityForensics-Small's index: half real, many generators of a few images
  each; systematic latent-diffusion fine-tunes with content sources, and manual
  ones), with a held-out store of 20 images (2 of each of 6 generators of every subset, 8 reals).

Pretrained weights take the real path minus the real weights: for every model the
paper presets load, the test writes a safetensors file as timm would (the model's
state_dict with timm's parameter names and shapes, random values, and the ImageNet
checkpoints' 1000-class classifier, which loading drops), and passes it by the preset's
own key (pretrained=, pretrained_vit=, pretrained_resnet=, pretrained_convnext=,
pretrained_dir=).  Loading is strict: a name or shape that differs fails the run.

What is cut on the command line, and why:
- steps=2 batch=2 accumulate=1 workers=1 checkpoint_every=2: compute and threads;
- precision=fp32: the presets' bf16 is for GPUs; on a CPU without bf16 instructions
  libtorch emulates it, about 14x slower than fp32 here (a 2-step run of ResNet-50:
  141 s of CPU against 10 s);  bf16 training and evaluation are tested in tests/lua;
- one grid point per run, by a one-element list override or --task;
- the model, only where a study takes the base preset's ViT-S/16 at 384: the
  224-pixel ViT-S/16 that the backbones and frozen_vs_finetuned presets name (a third of
  the compute), except diversity, which runs the preset's own 384-pixel model;
  robustness runs ResNet-50 (backbones' paper preset) at img_size=64: it evaluates
  17 times per run (clean and 16 perturbation levels); 9 s of CPU instead of 67 at 224;
- one cross_dataset set of the preset's five (each is one more evaluation pass);
- on the fixture stores only, k=0 (all generators) where the preset asks for more
  generators (k=1000, 3333) than their 10: select refuses k above what a store holds.

alignment cannot run on an imported store: the parquet shards say no content source for
generated images (/generators/source is empty), and the study refuses such a store by
name; the 48k store records sources, as cfx synth's stores do.

Run:  /usr/bin/python3 tests/app/test_paper_preset.py   (from the repo root).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
FIX = ROOT / 'tests' / 'fixtures' / 'parquet'
ENV = dict(os.environ, CFX_THREADS='1')

# the 48k training store and its held-out store
MAKE = r"""
local cfx = require 'cfx'
local train, eval = arg[1], arg[2]
cfx.manual_seed(5)
local function jpeg(h, w) return cfx.image.encode_jpeg(cfx.randint(0, 256, { h, w, 3 }, { dtype = 'uint8' }), 90) end
-- a few distinct encoded images, reused: selection and loading are what is tested here
local pics = {}
for k = 1, 8 do pics[k] = jpeg(40 + k, 48) end
local w = cfx.data.writer(train)
local src = {}
for k, name in ipairs { 'COCO', 'FFHQ', 'LAION', 'LandscapesHQ' } do src[k] = w:generator(name, 'real', 'real') end
-- 3,600 systematic fine-tunes (prompts from LAION or COCO captions), 400 manual generators
local gens, manual = {}, { 'GAN', 'PixDiff', 'other' }
for g = 1, 4000 do
  gens[g] = g <= 3600 and w:generator(('sd-finetune-%04d'):format(g), 'LatDiff', 'systematic', g % 2 == 0 and 'LAION' or 'COCO')
      or w:generator(('manual-%04d'):format(g), manual[g % 3 + 1], 'manual')
end
for i = 1, 24000 do  -- 6 fakes per generator
  w:add { bytes = pics[i % 8 + 1], label = 0, generator = src[i % 4 + 1], name = 'real-' .. i }
  w:add { bytes = pics[(i + 3) % 8 + 1], label = 1, generator = gens[i % 4000 + 1], name = 'fake-' .. i }
end
w:attr('pairing', 'deal')
w:finish()
w = cfx.data.writer(eval)
local reals = { w:generator('COCO', 'real', 'real'), w:generator('LAION', 'real', 'real') }
local held = { { 'GAN', 'manual' }, { 'PixDiff', 'manual' }, { 'LatDiff', 'systematic', 'LAION' },
  { 'LatDiff', 'systematic', 'COCO' }, { 'Commercial', 'commercial' }, { 'other', 'manual' } }
for g, h in ipairs(held) do
  local id = w:generator('heldout-' .. g, h[1], h[2], h[3])
  for j = 1, 2 do w:add { bytes = pics[(g + j) % 8 + 1], label = 1, generator = id, name = ('e%d-%d'):format(g, j) } end
end
for j = 1, 8 do w:add { bytes = pics[j % 8 + 1], label = 0, generator = reals[j % 2 + 1], name = 'er' .. j } end
w:finish()
"""

# Weights as timm writes them (timm.create_model(name, pretrained=True).state_dict(),
# saved with safetensors.torch.save_file; docs/models.md): cfx's backbones carry timm's
# parameter and buffer names and shapes, so the state_dict of one made with timm's
# ImageNet head (num_classes=1000: head.* for ViT, head.fc.* for ConvNeXt, fc.* for
# ResNet) has the names, shapes and dtypes of the real file; the values are random.
WEIGHTS = r"""
local cfx = require 'cfx'
for i = 2, #arg do
  cfx.manual_seed(i)
  local m = cfx.models.create(arg[i], { num_classes = 1000 })
  cfx.safetensors.save(('%s/%s.safetensors'):format(arg[1], arg[i]), m:state_dict(), { format = 'pt' })
end
"""
MODELS = ('vit_small_patch16_384', 'vit_small_patch16_224', 'convnext_small', 'resnet50')

# shards of the fixtures shaped like Community Forensics (image_data and label columns)
TRAIN_SHARDS = ('duck_v1_snappy', 'duck_v2_zstd', 'rs_v1_gzip_plain', 'rs_v1_snappy_dict', 'rs_v2_zstd_dict',
                'rs_empty')
EVAL_SHARD, CROSS_SHARD = 'rs_v2_plain_delta', 'rs_v2_snappy_mixed'

CUT = ['steps=2', 'batch=2', 'accumulate=1', 'workers=1', 'checkpoint_every=2', 'precision=fp32']


class PaperPresets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t0, c0 = time.time(), os.times()
        cls.tmp = tmp = Path(tempfile.mkdtemp(prefix='cfx_paper_'))
        cls.w = tmp / 'weights'
        cls.w.mkdir()

        def cfx(*args, timeout=300):
            r = subprocess.run([CFX, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=ENV)
            if r.returncode != 0:
                raise RuntimeError(f'cfx {" ".join(map(str, args))}: {r.stdout}{r.stderr}')
            return r

        (tmp / 'weights.lua').write_text(WEIGHTS)
        cfx(tmp / 'weights.lua', cls.w, *MODELS)
        (tmp / 'make.lua').write_text(MAKE)
        cls.stores = {'48k': (tmp / 'cf_train.h5', tmp / 'cf_eval.h5')}
        cfx(tmp / 'make.lua', *cls.stores['48k'])
        cls.stores['fixtures'] = (tmp / 'fx_train.h5', tmp / 'fx_eval.h5')
        cfx('data', 'import', *[FIX / f'{s}.parquet' for s in TRAIN_SHARDS], '--out', cls.stores['fixtures'][0])
        cfx('data', 'import', FIX / f'{EVAL_SHARD}.parquet', '--out', cls.stores['fixtures'][1])
        cls.cross = tmp / 'fx_public.h5'
        cfx('data', 'import', FIX / f'{CROSS_SHARD}.parquet', '--out', cls.cross)
        c1 = os.times()
        cls.times = {'setup (weights, stores)': (time.time() - t0, c1.children_user + c1.children_system -
                                                 c0.children_user - c0.children_system)}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        print('\n  wall    cpu', file=sys.stderr)
        for name, (wall, cpu) in sorted(cls.times.items(), key=lambda x: -x[1][1]):
            print(f'{wall:6.1f} {cpu:6.1f} s  {name}', file=sys.stderr)
        print(f'{sum(t[0] for t in cls.times.values()):6.1f} {sum(t[1] for t in cls.times.values()):6.1f} s  in all',
              file=sys.stderr)

    def weights(self, model):
        return self.w / f'{model}.safetensors'

    def vit224(self):  # the base preset's model swapped for the 224-pixel ViT-S/16, with its weights
        return ['model=vit_small_patch16_224', 'img_size=224', 'eval_resize=256',
                f'pretrained={self.weights("vit_small_patch16_224")}']

    def run_paper(self, study, store, *args, task=None, ok=True):
        """cfx experiments/<study>.lua preset=paper on `store` with the cuts; returns the
        process and the runs of its results file (each checked done, with an eval table)."""
        t0, c0 = time.time(), os.times()
        train, ev = self.stores[store]
        out = self.tmp / 'out' / f'{study}-{store}'
        cmd = [CFX, str(ROOT / 'experiments' / f'{study}.lua'), 'preset=paper', f'train_store={train}',
               f'eval_store={ev}', *CUT, *map(str, args), '--out', str(out)]
        if task:
            cmd += ['--task', str(task)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
        c1 = os.times()
        self.times[f'{study} on {store}'] = (time.time() - t0, c1.children_user + c1.children_system -
                                             c0.children_user - c0.children_system)
        if not ok:
            return r, []
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path = out / 'tasks' / f'{study}-paper-task{task:04d}.h5' if task else out / f'{study}-paper.h5'
        f = h5py.File(path, 'r')
        self.addCleanup(f.close)
        runs = [f['runs'][k] for k in f['runs']]
        self.assertEqual(len(runs), 1, list(f['runs']))
        for run in runs:
            self.assertEqual(run.attrs['status'], 'done', dict(run.attrs))
            self.assertEqual(run.attrs['preset'], 'paper')
            cfg = json.loads(run.attrs['config'])
            table = run['eval'][cfg['dataset']]
            self.assertGreater(int(table.attrs['n_images']), 0)
            self.assertTrue(math.isfinite(float(table.attrs['mean_ap'])), dict(table.attrs))
            self.assertGreater(len(table), 0)
            self.assertGreater(int(run.attrs['train_images']), 0)
        return r, runs

    def config(self, run):
        return json.loads(run.attrs['config'])

    # ---- scaling_models ------------------------------------------------------------------
    def test_scaling_models_48k(self):
        # the preset's own selection at scale: k=3 of 3,600 systematic generators, and
        # budget=50,000 asks more than 3 generators hold: every fake of the 3 is taken, one
        # warning says so, and as many reals are drawn from the 24,000
        r, runs = self.run_paper('scaling_models', '48k', 'k_count=1', 'subsets=1', *self.vit224())
        self.assertNotIn('too many results to unpack', r.stderr)
        self.assertEqual(r.stderr.count('select budget=50000'), 1, r.stderr)
        self.assertIn('hold only 18 fake images', r.stderr)
        self.assertEqual(int(runs[0].attrs['train_images']), 36)  # 18 fakes + 18 balanced reals
        self.assertEqual(self.config(runs[0])['k'], 3)

    def test_scaling_models_fixtures(self):
        # the 384-pixel weights the preset names, into the 224-pixel model: position
        # embeddings resampled from 24x24 to 14x14 patches on loading
        self.run_paper('scaling_models', 'fixtures', 'k_count=1', 'subsets=1', 'model=vit_small_patch16_224',
                       'img_size=224', 'eval_resize=256', f'pretrained={self.weights("vit_small_patch16_384")}')

    # ---- backbones: one backbone each, from its family's key ---------------------------------
    def backbone_keys(self):
        return [f'pretrained_vit={self.weights("vit_small_patch16_224")}',
                f'pretrained_convnext={self.weights("convnext_small")}',
                f'pretrained_resnet={self.weights("resnet50")}']

    def test_backbones_48k(self):
        _, runs = self.run_paper('backbones', '48k', 'backbones=convnext_small', 'subset_ids=1', *self.backbone_keys())
        self.assertEqual(self.config(runs[0])['model'], 'convnext_small')

    def test_backbones_fixtures(self):
        _, runs = self.run_paper('backbones', 'fixtures', 'k=0', 'backbones=resnet50', 'subset_ids=1',
                                 *self.backbone_keys())
        self.assertEqual(self.config(runs[0])['model'], 'resnet50')

    # ---- diversity: the preset's own ViT-S/16 at 384 and its weights ------------------------
    def test_diversity_48k(self):
        _, runs = self.run_paper('diversity', '48k', f'pretrained={self.weights("vit_small_patch16_384")}', task=3)
        self.assertEqual(self.config(runs[0])['train_subsets'], 'systematic,manual')
        self.assertEqual(int(runs[0]['eval/cf_eval'].attrs['n_images']), 10)  # 2 commercial fakes, 8 reals

    def test_diversity_fixtures(self):
        _, runs = self.run_paper('diversity', 'fixtures', f'pretrained={self.weights("vit_small_patch16_384")}',
                                 task=3)
        self.assertEqual(self.config(runs[0])['model'], 'vit_small_patch16_384')

    # ---- frozen_vs_finetuned: <pretrained_dir>/<model>.safetensors ---------------------------
    def test_frozen_vs_finetuned_48k(self):
        _, runs = self.run_paper('frozen_vs_finetuned', '48k', 'backbones=vit_small_patch16_224', 'modes=finetune',
                                 'subset_ids=1', f'pretrained_dir={self.w}')
        self.assertEqual(self.config(runs[0])['mode'], 'finetune')

    def test_frozen_vs_finetuned_fixtures(self):
        _, runs = self.run_paper('frozen_vs_finetuned', 'fixtures', 'k=0', 'backbones=vit_small_patch16_224',
                                 'modes=frozen', 'subset_ids=1', f'pretrained_dir={self.w}')
        self.assertEqual(self.config(runs[0])['mode'], 'frozen')

    # ---- iterations: the curve along training ---------------------------------------------
    def check_curve(self, run):
        curve = run['curve/cf_eval'][:]
        self.assertEqual(list(curve['step']), [2])

    def test_iterations_48k(self):
        _, runs = self.run_paper('iterations', '48k', *self.vit224(), 'subset_ids=1', 'eval_every=2')
        self.check_curve(runs[0])

    def test_iterations_fixtures(self):
        _, runs = self.run_paper('iterations', 'fixtures', 'k=0', *self.vit224(), 'subset_ids=1', 'eval_every=2')
        self.check_curve(runs[0])

    # ---- num_images: many random generators on the 48k store, the few largest on the fixtures
    def test_num_images_48k(self):
        r, runs = self.run_paper('num_images', '48k', *self.vit224(), 'budgets=10000', 'sources=many',
                                 'subset_ids=1')
        self.assertIn('hold only 6000 fake images', r.stderr)  # 1,000 generators of 6
        self.assertEqual(int(runs[0].attrs['train_images']), 12000)

    def test_num_images_fixtures(self):
        _, runs = self.run_paper('num_images', 'fixtures', *self.vit224(), 'budgets=10000', 'sources=few',
                                 'subset_ids=1')
        self.assertEqual(self.config(runs[0])['source'], 'few')

    # ---- robustness: 17 evaluations per run ------------------------------------------------
    def robustness(self, store, *extra):
        _, runs = self.run_paper('robustness', store, *extra, 'model=resnet50', 'img_size=64', 'eval_resize=73',
                                 f'pretrained={self.weights("resnet50")}', 'augmentations=paper', 'subset_ids=1')
        names = set(runs[0]['eval'])
        self.assertEqual(len(names), 17, names)
        for ds in ('cf_eval', 'jpeg@50', 'blur@2', 'rotate@15', 'resize@0.25', 'pad@0.1', 'shear@15'):
            self.assertIn(ds, names)

    def test_robustness_48k(self):
        self.robustness('48k')

    def test_robustness_fixtures(self):
        self.robustness('fixtures', 'k=0')

    # ---- cross_dataset: the study's eval store and one more set ------------------------------
    def test_cross_dataset_48k(self):
        _, runs = self.run_paper('cross_dataset', '48k', *self.vit224(), 'subset_ids=1',
                                 f'eval_sets=cf_public={self.cross}')
        self.assertIn('cf_public', runs[0]['eval'])

    def test_cross_dataset_fixtures(self):
        _, runs = self.run_paper('cross_dataset', 'fixtures', *self.vit224(), 'subset_ids=1',
                                 f'eval_sets=cf_public={self.cross}')
        self.assertIn('cf_public', runs[0]['eval'])

    # ---- attribution: kNN on the detector's embeddings --------------------------------------
    def check_attribution(self, run):
        self.assertIn('attribution', run)
        self.assertIn('cf_eval', run['attribution'])
        self.assertIn('confusion', run)

    def test_attribution_48k(self):
        _, runs = self.run_paper('attribution', '48k', *self.vit224())
        self.check_attribution(runs[0])

    def test_attribution_fixtures(self):
        _, runs = self.run_paper('attribution', 'fixtures', *self.vit224())
        self.check_attribution(runs[0])

    # ---- alignment: needs the fakes' content sources -------------------------------------
    def test_alignment_48k(self):
        _, runs = self.run_paper('alignment', '48k', *self.vit224(), 'real_sets=LAION', 'subset_ids=1')
        for ds in ('cf_eval', 'cf_eval@F=LAION', 'cf_eval@F=others'):
            self.assertIn(ds, runs[0]['eval'])

    def test_alignment_refuses_a_store_without_sources(self):
        # an imported Community Forensics store: the shards give no content source for the
        # generated images, so there is no F to score by; refused before any training
        r, _ = self.run_paper('alignment', 'fixtures', *self.vit224(), 'real_sets=LAION', 'subset_ids=1', ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('holds no fakes of generators whose content source is LAION', r.stderr)
        self.assertIn('/generators/source', r.stderr)


class CpuPreset(unittest.TestCase):
    def test_cpu_preset_remakes_synthetic_data_of_an_older_format(self):
        tmp = Path(tempfile.mkdtemp(prefix='cfx_old_'))
        try:
            data = tmp / 'data'
            data.mkdir()
            for name in ('train.h5', 'eval.h5'):  # what an earlier cfx left: a version-1 store
                with h5py.File(data / name, 'w') as f:
                    f.attrs['cfx_format'] = 'store'
                    f.attrs['cfx_version'] = 1
            args = [f'train_store={data}/train.h5', f'eval_store={data}/eval.h5', 'synth_train_generators=4',
                    'synth_eval_generators=2', 'synth_per_generator=8', 'k_min=2', 'k_max=2', 'k_count=1',
                    'subsets=1', 'budget=16', 'steps=2', 'batch=8', 'workers=1']
            r = subprocess.run([CFX, str(ROOT / 'experiments' / 'scaling_models.lua'), *args, '--out', str(tmp / 'out')],
                               capture_output=True, text=True, timeout=600, env=ENV)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('train.h5 is of an older store format; making it again', r.stderr)
            with h5py.File(data / 'train.h5', 'r') as f:
                self.assertEqual(int(f.attrs['cfx_version']), 2)
                self.assertIn('group', f['images'])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    unittest.main()
