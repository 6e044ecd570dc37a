-- cfx pretrain: the CPU preset's stand-in for ImageNet pretraining (lua/cfx/pretrain.lua).
local args = require 'cfx.cli.args'

local spec = {
  name = 'cfx pretrain',
  usage = 'cfx pretrain [options]',
  about = 'Trains a backbone to classify the content source of synthetic real images (a pool\n' ..
      'made with a seed disjoint from the experiment data) and saves it as safetensors:\n' ..
      'the stand-in for ImageNet weights in frozen-vs-fine-tuned experiments.',
  options = {
    { 'model', 'string', 'vit_micro_patch8_64', 'backbone (cfx.models name)' },
    { 'out', 'string', nil, 'the .safetensors file to write (required)' },
    { 'per-source', 'int', 1000, 'real images per content source in the pool' },
    { 'size', 'int', 64, 'image side' },
    { 'steps', 'int', 400, 'optimizer steps' },
    { 'batch', 'int', 64, 'batch size' },
    { 'lr', 'number', 1e-3, 'AdamW learning rate (cosine, 10% warm-up)' },
    { 'seed', 'int', 1000, 'seed of the pool and the run' },
    { 'workers', 'int', 2, 'loader threads' },
  },
}

return function(argv)
  local o, code = args.parse(argv, spec)
  if not o then return code end
  if not o.out then
    io.stderr:write('cfx pretrain: --out FILE.safetensors is required\n')
    return 2
  end
  local pretrain, core = require 'cfx.pretrain', require 'cfx.core'
  local t0 = os.time()
  local path, r = pretrain.run { model = o.model, out = o.out, per_source = o.per_source, size = o.size,
    steps = o.steps, batch = o.batch, lr = o.lr, seed = o.seed, workers = o.workers }
  if not path then -- USR1/TERM stopped the training: nothing written; a requeue starts it again
    io.stderr:write(('cfx pretrain: stopped by SIG%s at step %d of %d; nothing written\n'):format(r.interrupted,
      #r.losses, o.steps))
    return core.EXIT_REQUEUE
  end
  print(('cfx pretrain: wrote %s in %d s (content accuracy on the pool %.1f%%, final loss %.3f)'):format(path,
    os.time() - t0, 100 * r.accuracy, r.losses[#r.losses]))
  return 0
end
