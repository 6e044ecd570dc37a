#!/usr/bin/python3
"""The paper preset of experiments/scaling_models.lua at the real data's scale of
selection: a training store of 24,000 reals and 24,000 fakes over 4,000 generators (the
shapes of CommunityForensics-Small's index: half real, many generators of a few hundred
images at most), run as a user would, with only the compute-bound settings cut (2 steps
of 2 images, random weights, and the paper's 224-pixel ViT-S/16 in place of the 384 one,
a third of the compute on a CPU).

What must hold: the preset's own selection runs on that store (k=3 of 4,000 systematic
generators, budget=50,000 asks more than 3 generators hold: every fake of the 3 is taken,
one warning says so, and as many reals are drawn from the 24,000), training and the
evaluation on a held-out store finish, and the results file records the numbers the
selection gave.

Run:  /usr/bin/python3 tests/app/test_paper_preset.py   (from the repo root).
"""
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())
SCRIPT = str(ROOT / 'experiments' / 'scaling_models.lua')

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
local gens = {}
for g = 1, 4000 do gens[g] = w:generator(('sd-finetune-%04d'):format(g), 'LatDiff', 'systematic') end
for i = 1, 24000 do
  w:add { bytes = pics[i % 8 + 1], label = 0, generator = src[i % 4 + 1], name = 'real-' .. i }
  w:add { bytes = pics[(i + 3) % 8 + 1], label = 1, generator = gens[i % 4000 + 1], name = 'fake-' .. i }
end
w:attr('pairing', 'deal')
w:finish()
w = cfx.data.writer(eval)
local r = w:generator('COCO', 'real', 'real')
for g = 1, 4 do
  local id = w:generator('heldout-' .. g, g % 2 == 0 and 'GAN' or 'PixDiff', 'manual')
  for j = 1, 3 do w:add { bytes = pics[(g + j) % 8 + 1], label = 1, generator = id, name = ('e%d-%d'):format(g, j) } end
end
for j = 1, 12 do w:add { bytes = pics[j % 8 + 1], label = 0, generator = r, name = 'er' .. j } end
w:finish()
"""


class PaperPreset(unittest.TestCase):
    def test_paper_preset_on_a_store_of_24k_reals(self):
        tmp = Path(tempfile.mkdtemp(prefix='cfx_paper_'))
        try:
            mk = tmp / 'make.lua'
            mk.write_text(MAKE)
            train, ev = tmp / 'cf_train.h5', tmp / 'cf_eval.h5'
            r = subprocess.run([CFX, str(mk), str(train), str(ev)], capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = tmp / 'out'
            args = ['preset=paper', f'train_store={train}', f'eval_store={ev}', 'pretrained=', 'k_count=1',
                    'subsets=1', 'steps=2', 'batch=2', 'accumulate=1', 'workers=1', 'checkpoint_every=2',
                    'model=vit_small_patch16_224', 'img_size=224', 'eval_resize=256']
            r = subprocess.run([CFX, SCRIPT, *args, '--out', str(out)], capture_output=True, text=True, timeout=900,
                               env=dict(os.environ, CFX_THREADS='1'))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn('too many results to unpack', r.stderr)
            # 3 generators of 6 fakes each cannot give 50,000: all 18 taken, said once
            self.assertEqual(r.stderr.count('select budget=50000'), 1, r.stderr)
            self.assertIn('hold only 18 fake images', r.stderr)
            with h5py.File(out / 'scaling_models-paper.h5', 'r') as f:
                runs = list(f['runs'])
                self.assertEqual(len(runs), 1)
                run = f['runs'][runs[0]]
                self.assertEqual(run.attrs['status'], 'done')
                self.assertEqual(run.attrs['preset'], 'paper')
                self.assertEqual(int(run.attrs['train_images']), 36)  # 18 fakes + 18 balanced reals
                self.assertIn('eval', run)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


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
            r = subprocess.run([CFX, SCRIPT, *args, '--out', str(tmp / 'out')], capture_output=True, text=True,
                               timeout=600, env=dict(os.environ, CFX_THREADS='1'))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('train.h5 is of an older store format; making it again', r.stderr)
            with h5py.File(data / 'train.h5', 'r') as f:
                self.assertEqual(int(f.attrs['cfx_version']), 2)
                self.assertIn('group', f['images'])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    unittest.main()
