-- train_driver.lua: a small training run for tests/app/test_train.py.
--   cfx train_driver.lua STORE CKPT_DIR OUT_PREFIX STEPS LR [EVERY [clear]]
-- Trains vit_micro_patch8_64 (with stochastic depth and dropout, so the libtorch RNG
-- matters) and writes OUT_PREFIX.safetensors (final weights) and OUT_PREFIX.losses
-- (one %a hex float per step, exact).  A plain script: after fit returns (also when a
-- SIGUSR1 stopped it) it goes on and prints a line; with `clear` it clears the signal,
-- so that the cfx program exits 0 rather than 75.
local cfx = require 'cfx'
local store_path, ckdir, out, steps, lr, every, clear = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]),
  tonumber(arg[6] or 5), arg[7] == 'clear'
cfx.manual_seed(7)
local model = cfx.models.create('vit_micro_patch8_64', { drop_path_rate = 0.2, drop_rate = 0.1 })
local loader = cfx.data.loader { store = cfx.data.open(store_path), batch = 8, workers = 1, seed = 11,
  augment = cfx.augment.randaugment { crop = 64 } }
local r = cfx.train.fit { model = model, loader = loader, steps = steps, accumulate = 2, clip = 1.0,
  optim = cfx.optim.AdamW { params = model, lr = lr, weight_decay = 0.05 },
  schedule = cfx.optim.cosine { warmup = 0.2, total = steps }, config = { driver = 'train_driver' },
  checkpoint = { dir = ckdir, every = every, keep = 2 }, progress = false }
cfx.safetensors.save(out .. '.safetensors', model:state_dict())
local f = assert(io.open(out .. '.losses', 'w'))
for i = 1, #r.losses do f:write(('%a\n'):format(r.losses[i])) end
f:close()
print(('done step=%d resumed_from=%s interrupted=%s'):format(r.step, tostring(r.resumed_from),
  tostring(r.interrupted)))
if clear then print('cleared ' .. tostring(cfx.clear_signal())) end
