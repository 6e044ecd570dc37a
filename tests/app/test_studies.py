#!/usr/bin/python3
"""A smoke grid of every study script on cfx.study: each runs its cpu preset end to end on
tiny synthetic data (a few steps, one subset), as a user would, through the cfx program,
and its results file holds what its report and notebook read.

Run:  /usr/bin/python3 tests/app/test_studies.py   (from the repo root).
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[2]
CFX = str((ROOT / os.environ.get('CFX_BIN', 'build/cfx')).resolve())


class Studies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Path(tempfile.mkdtemp(prefix='cfx_studies_'))
        d = cls.dir / 'data'
        cls.tiny = [f'train_store={d}/train.h5', f'eval_store={d}/eval.h5', 'synth_train_generators=8',
                    'synth_eval_generators=4', 'synth_per_generator=16', 'k=4', 'budget=32', 'steps=4', 'batch=8',
                    'workers=1', 'subset_ids=1', 'checkpoint_every=4']

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_study(self, name, *extra, tag=None):
        t0 = time.time()
        out = self.dir / 'out' / (tag or name)  # one directory each: checkpoints are OUT/checkpoints/<preset>/<run id>
        r = subprocess.run([CFX, str(ROOT / 'experiments' / f'{name}.lua'), *self.tiny, *extra, '--out',
                            str(out)], capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, CFX_THREADS='1'))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        print(f'{name}: {time.time() - t0:.1f} s')
        f = h5py.File(out / f'{name}-cpu.h5', 'r')
        self.addCleanup(f.close)
        runs = [f['runs'][k] for k in f['runs']]
        self.assertTrue(runs and all(r.attrs['status'] == 'done' for r in runs))
        return r.stdout, runs

    def test_list_prints_every_grid(self):
        for name in ('backbones', 'robustness', 'iterations', 'frozen_vs_finetuned', 'num_images', 'diversity',
                     'attribution', 'cross_dataset', 'alignment'):
            r = subprocess.run([CFX, str(ROOT / 'experiments' / f'{name}.lua'), '--list'], capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('grid:', r.stdout)

    def test_backbones(self):
        out, runs = self.run_study('backbones')
        self.assertEqual(sorted(r.attrs['config'] and __import__('json').loads(r.attrs['config'])['model'] for r in runs),
                         ['convnext_micro', 'resnet_micro', 'vit_micro_patch8_64'])
        for name in ('convnext_micro', 'resnet_micro', 'vit_micro_patch8_64'):
            self.assertIn(name, out)

    def test_robustness(self):
        out, runs = self.run_study('robustness')
        self.assertEqual(len(runs), 2)  # with and without augmentation
        for r in runs:
            for ds in ('synth', 'jpeg@50', 'blur@2', 'rotate@15', 'resize@0.5', 'pad@0.1', 'shear@15'):
                self.assertIn(ds, r['eval'])
        self.assertIn('jpeg@50', out)

    def test_iterations(self):
        _, runs = self.run_study('iterations', 'eval_every=2')
        curve = runs[0]['curve/synth'][:]
        self.assertEqual(list(curve['step']), [2, 4])

    def test_frozen_vs_finetuned(self):
        out, runs = self.run_study('frozen_vs_finetuned', 'pretrain_steps=2', 'pretrain_pool=16',
                                   f'pretrained_dir={self.dir}/pretrained')
        self.assertEqual(len(runs), 4)
        self.assertTrue((self.dir / 'pretrained' / 'vit_micro_patch8_64.safetensors').exists())
        self.assertIn('frozen', out)

    def test_num_images(self):
        out, runs = self.run_study('num_images', 'budgets=16,32', 'many_k=4', 'few_k=2')
        self.assertEqual(len(runs), 4)  # 2 budgets x many/few
        for r in runs:
            cfg = __import__('json').loads(r.attrs['config'])
            self.assertEqual(int(r.attrs['train_images']), 2 * cfg['budget'])  # the budget filled, reals balanced

    def test_diversity(self):
        store = self.dir / 'data' / 'commercial.h5'
        out, runs = self.run_study('diversity', f'commercial_store={store}', 'commercial_generators=2')
        self.assertEqual(len(runs), 3)
        self.assertIn('systematic,manual', out)
        with h5py.File(store, 'r') as f:  # the evaluation: commercial generators only, made once
            archs = {a.decode() for a in f['generators/architecture'][()]} - {'real'}
        self.assertEqual(archs, {'Commercial'})
        for r in runs:
            self.assertEqual({a.decode() for a in r['eval/synth']['architecture']}, {'Commercial'})
        # the paper preset's way: the eval store's generators of eval_subsets
        out, runs = self.run_study('diversity', 'commercial_store=', 'eval_subsets=', tag='diversity_eval_store')
        self.assertEqual(len(runs), 3)

    def test_attribution(self):
        import json
        out, runs = self.run_study('attribution', 'k=0', 'max_embeddings=40')
        self.assertEqual(len(runs), 1)
        r = runs[0]
        table = r['attribution/synth']
        rows = table[()]
        types = [t.decode() for t in rows['type']]
        self.assertIn('real', types)
        true_types = json.loads(r['confusion/synth'].attrs['true_types'])
        predicted = json.loads(r['confusion/synth'].attrs['predicted_types'])
        self.assertEqual(types, true_types)
        self.assertNotIn('Commercial', predicted)  # held out of training and of the kNN's reference
        self.assertEqual(sorted(json.loads(table.attrs['known_types'])), sorted(predicted))
        for t, known, acc in zip(types, rows['known'], rows['acc']):
            self.assertEqual(bool(known), t in predicted)
            self.assertTrue(0 <= acc <= 1 if known else acc != acc)
        self.assertTrue(0 <= table.attrs['accuracy_known'] <= 1)
        self.assertEqual(table.attrs['k'], 5)
        counts = r['confusion/synth/counts'][()]
        self.assertEqual(counts.shape, (len(true_types), len(predicted)))
        self.assertEqual(int(counts.sum()), int(table.attrs['n_query']))
        self.assertEqual(list(counts.sum(axis=1)), list(rows['n_query']))
        emb = r['embeddings/synth']
        n = len(emb['type'])
        self.assertEqual(n, min(40, int(table.attrs['n_query'])))
        self.assertEqual(emb['embeddings'].shape, (n, table.attrs['embedding_dim']))
        for key in ('label', 'generator', 'predicted', 'known', 'index'):
            self.assertEqual(len(emb[key]), n)
        self.assertEqual(json.loads(emb.attrs['types']), true_types)
        self.assertTrue(set(emb['type'][()]) <= set(range(1, len(true_types) + 1)))
        names = json.loads(emb.attrs['generator_names'])
        self.assertTrue(all(1 <= g <= len(names) for g in emb['generator'][()]))
        self.assertIn('synth', r['eval'])  # the detector's own tables
        self.assertIn('true \\ pred', out)
        self.assertIn('accuracy on known types', out)

    def test_cross_dataset(self):
        d = self.dir / 'data'
        out, runs = self.run_study('cross_dataset', f'eval_sets=gan_others={d}/gan_others.h5,'
                                   f'commercial_jpeg={d}/commercial_jpeg.h5', 'cross_generators=2',
                                   'cross_per_generator=8')
        self.assertTrue((d / 'commercial_jpeg.h5').exists())
        for r in runs:
            for ds in ('synth', 'gan_others', 'commercial_jpeg'):
                table = r['eval'][ds]
                self.assertGreater(len(table), 0)  # per generator
                self.assertIn('mean_ap', table.attrs)
                self.assertTrue(table.attrs['eval_store'].endswith('.h5'))
                self.assertIn(ds, r['predictions'])
            archs = {a.decode() for a in r['eval/commercial_jpeg'][()]['architecture']}
            self.assertEqual(archs, {'Commercial'})
            self.assertIn('commercial_jpeg', __import__('json').loads(r.attrs['summary']))
        for word in ('mAP', 'mAcc', 'gan_others', 'commercial_jpeg'):
            self.assertIn(word, out)

    def test_alignment(self):
        # stores of our own whose generators carry content sources (w:generator's 4th argument)
        d = self.dir / 'alignment'
        d.mkdir(exist_ok=True)
        script = d / 'write.lua'
        script.write_text(f"""
local cfx = require 'cfx'
cfx.manual_seed(0)
for _, s in ipairs {{ {{ 'train', {{ 'LAION', 'COCO', 'LAION', 'FFHQ', 'LAION', 'LandscapesHQ' }} }},
    {{ 'eval', {{ 'LAION', 'COCO', 'LAION', 'FFHQ' }} }} }} do
  local w = cfx.data.writer('{d}/' .. s[1] .. '.h5')
  w:attr('pairing', 'deal')
  local png = function() return cfx.image.encode_png(cfx.randint(0, 256, {{ 64, 64, 3 }}, {{ dtype = 'uint8' }})) end
  for _, src in ipairs {{ 'LAION', 'COCO', 'FFHQ', 'LandscapesHQ' }} do
    local id = w:generator(src, 'real', 'real')
    for j = 1, s[1] == 'train' and 32 or 12 do w:add {{ bytes = png(), label = 0, generator = id, name = src .. j }} end
  end
  for g, src in ipairs(s[2]) do
    local id = w:generator(s[1] .. '-sd-' .. g, 'LatDiff', 'systematic', src)
    for j = 1, 8 do w:add {{ bytes = png(), label = 1, generator = id, name = g .. '-' .. j }} end
  end
  local id = w:generator(s[1] .. '-gan', 'GAN', 'manual')  -- no source: never trained on
  for j = 1, 8 do w:add {{ bytes = png(), label = 1, generator = id, name = 'gan-' .. j }} end
  w:finish()
end
""")
        r = subprocess.run([CFX, str(script)], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        out, runs = self.run_study('alignment', f'train_store={d}/train.h5', f'eval_store={d}/eval.h5', 'k=0',
                                   'synth_train_generators=0')  # not synthetic stores: never remade
        self.assertEqual(len(runs), 2)  # R = LAION, others
        for run in runs:
            for ds in ('synth', 'synth@F=LAION', 'synth@F=others'):
                self.assertIn('mean_ap', run['eval'][ds].attrs)
            self.assertEqual(int(run.attrs['train_images']), 64)  # budget 32 over the sourced fakes, reals balanced
            gens = {g.decode() for g in run['eval/synth@F=LAION'][()]['generator']}
            self.assertEqual(gens, {'eval-sd-1', 'eval-sd-3'})
        for word in ('F=LAION', 'F=others', 'LAION', 'others'):
            self.assertIn(word, out)


if __name__ == '__main__':
    unittest.main()
