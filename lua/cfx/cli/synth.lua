-- cfx synth: make the synthetic Community-Forensics-shaped dataset (lua/cfx/synth.lua).
local args = require 'cfx.cli.args'

local spec = {
  name = 'cfx synth',
  usage = 'cfx synth [options]',
  about = 'Writes OUT/train.h5 and OUT/eval.h5: procedural reals and fakes from random-weight\n' ..
      'generators of the dataset\'s architecture families, with no generator in both stores.',
  options = {
    { 'out', 'string', 'data/synth', 'directory for train.h5 and eval.h5' },
    { 'train-generators', 'int', 200, 'generators in the train store' },
    { 'eval-generators', 'int', 50, 'generators in the eval store (disjoint from train)' },
    { 'per-generator', 'int', 40, 'fake images per generator (as many reals in all)' },
    { 'size', 'int', 64, 'image side (some images are 1.25x)' },
    { 'seed', 'int', 0, 'everything is deterministic from it' },
    { 'confound', { 'size', 'format' }, nil, 'make reals differ: size (2x) or format (JPEG vs PNG)' },
    { 'jpeg-fraction', 'number', 0.4, 'share of JPEG images in both classes' },
  },
}

return function(argv)
  local o, code = args.parse(argv, spec)
  if not o then return code end
  local synth = require 'cfx.synth'
  local t0 = os.time()
  local train, eval = synth.generate { out = o.out, train_generators = o.train_generators,
    eval_generators = o.eval_generators, per_generator = o.per_generator, size = o.size, seed = o.seed,
    confound = o.confound or false, jpeg_fraction = o.jpeg_fraction }
  print(('cfx synth: wrote %s and %s in %d s'):format(train, eval, os.time() - t0))
  return 0
end
