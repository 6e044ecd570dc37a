-- eval.lua: cfx.eval, running a detector over a store and scoring it with the paper's
-- protocol (per generator, then unweighted means; per architecture).
--
--   local r = cfx.eval.run { model = model, store = cfx.data.open('data/synth/eval.h5'),
--     preprocess = cfx.augment.eval { resize = false, crop = 64 } }
--   local t = cfx.eval.tables(r)     -- t.generators, t.architectures, t.summary
local core = require 'cfx.core'
local tensor = require 'cfx.tensor'
local augment = require 'cfx.augment'
local metrics = require 'cfx.metrics'
local data = require 'cfx.data'
local nn_module = require 'cfx.nn.module'
local batch = require 'cfx.batch'
local raise = core.raise

local M = {}

local defaults = { model = false, store = false, view = false, preprocess = false, perturb = false, batch = 64,
  workers = 2, precision = 'fp32', embeddings = false, threshold = 0.5, mean = augment.imagenet_mean,
  std = augment.imagenet_std }

-- The eval preprocessing for a model's input size, as the official code: shorter side
-- to 256 then centre crop 224 (440 -> 384 for the 384 model; the same 8/7 ratio
-- otherwise).
function M.default_preprocess(img_size)
  local resize = img_size == 384 and 440 or math.floor(img_size * 256 / 224 + 0.5)
  return augment.eval { resize = resize, crop = img_size }
end

-- cfx.eval.run{model=, store= | view=, preprocess=pipeline, perturb={kind=, level=},
--   batch=64, workers=2, precision='fp32'|'bf16'|'fp16' (fp16: CUDA only, as in training),
--   embeddings=false, threshold=0.5}
-- -> {scores=float32 {n} (sigmoid), logits=, labels=uint8 {n}, generators=int64 {n}
--     (1-based store ids), indices=int64 {n} (1-based), embeddings=float32 {n, d}?,
--     failed=n unreadable images (skipped, named in the loader's stats), view=, store=}
-- The model runs in eval mode under no_grad, on its device (batches go there as in
-- cfx.train.fit, through cfx.batch); its training mode is restored after.
function M.run(opts)
  local o = core.options(opts, defaults, 'cfx.eval.run')
  local model = o.model
  if not nn_module.is_module(model) then raise('cfx.eval.run: model must be a cfx.nn module') end
  local view = o.view or (o.store and o.store:all())
  if not view then raise('cfx.eval.run: give store= or view=') end
  local pre = o.preprocess
  if not pre then
    local size = model.cfg and model.cfg.img_size or 224
    pre = M.default_preprocess(size)
  end
  if o.perturb then pre = augment.compose { augment.perturb(o.perturb), pre } end
  local device = model:parameters()[1]:device()
  local step_batch = batch.runner { device = device, precision = o.precision, mean = o.mean,
    std = o.std, labels = false, who = 'cfx.eval.run' }
  local loader = data.loader { view = view, batch = o.batch, workers = o.workers, shuffle = false, augment = pre,
    max_batches = math.ceil(view.n / o.batch) }
  local was_training = model.training
  model:eval()
  local logits, labels, gens, idx, embs = {}, {}, {}, {}, {}
  local function forward(x)
    if o.embeddings then
      local feats = model:forward_features(x)
      return model:forward_head(feats), model:forward_head(feats, true)
    end
    return model(x)
  end
  local ok, err = pcall(tensor.no_grad, function()
    for b in loader:batches() do
      local y, e = step_batch(b, forward)
      logits[#logits + 1] = y:float():reshape(-1):cpu()
      labels[#labels + 1], gens[#gens + 1], idx[#idx + 1] = b.labels, b.generators, b.indices
      if e then embs[#embs + 1] = e:float():cpu() end
    end
  end)
  model:train(was_training)
  local stats = loader:stats()
  loader:close()
  if not ok then error(err, 0) end
  local lg = #logits > 0 and tensor.cat(logits) or tensor.empty(0)
  return {
    logits = lg, scores = lg:sigmoid(), labels = #labels > 0 and tensor.cat(labels) or tensor.empty(0, { dtype = 'uint8' }),
    generators = #gens > 0 and tensor.cat(gens) or tensor.empty(0, { dtype = 'int64' }),
    indices = #idx > 0 and tensor.cat(idx) or tensor.empty(0, { dtype = 'int64' }),
    embeddings = #embs > 0 and tensor.cat(embs) or nil, failed = stats.failed, view = view, store = view.store,
    threshold = o.threshold,
  }
end

-- The evaluation group (0-based int32) of every scored image under `mode`: a fake's is
-- its generator; a real's is the group the store gives it ('auto', 'own'), or none.
-- Reals with none are dealt out (cfx_metrics_deal_reals: every generator with fakes an
-- equal, disjoint share, fixed by a hash of the store index and `seed`) or pooled (a
-- group without fakes: every generator is then scored against all of them).
local function protocol_groups(r, mode, seed)
  local C, ffi = core.C, core.ffi
  local n = r.labels:numel()
  local labels = r.labels:reshape(-1):to('uint8'):contiguous()
  local gens = (r.generators:reshape(-1) - 1):to('int32'):contiguous()
  local keys = r.indices:reshape(-1):to('int64'):contiguous()
  local lp, gp, kp = ffi.cast('const uint8_t *', labels:data_ptr()), ffi.cast('const int32_t *', gens:data_ptr()),
      ffi.cast('const int64_t *', keys:data_ptr())
  local store_groups = r.store.groups_ptr
  local groups = tensor.empty(n, { dtype = 'int32' })
  local out = ffi.cast('int32_t *', groups:data_ptr())
  local pooled, grouped, ungrouped = r.store.num_generators, 0, 0
  for i = 0, n - 1 do
    if lp[i] == 1 then
      out[i] = gp[i]
    else
      local g = (mode == 'auto' or mode == 'own') and store_groups[kp[i] - 1] or -1
      if g < 0 then ungrouped = ungrouped + 1 else grouped = grouped + 1 end
      out[i] = g
    end
  end
  if mode == 'own' and ungrouped > 0 then
    raise(("cfx.eval.tables: reals='own', but %d reals of %s have no evaluation group (its pairing is %s): " ..
      "use reals='auto'"):format(ungrouped, r.store.path, r.store:pairing()))
  end
  local rest = mode == 'auto' and r.store:pairing() or mode -- what becomes of the ungrouped reals
  if rest ~= 'deal' and rest ~= 'pool' and rest ~= 'own' then
    raise(("cfx.eval.tables: %s has pairing '%s' (expected 'deal' or 'pool'): re-import it, or give reals='deal' or 'pool'")
      :format(r.store.path, tostring(rest)))
  end
  if rest == 'deal' then
    core.check(C.cfx_metrics_deal_reals(lp, kp, n, seed, out))
  end
  for i = 0, n - 1 do if out[i] < 0 then out[i] = pooled end end
  -- how the reals were paired: 'own', 'deal', 'pool', or 'own+deal' / 'own+pool'
  local how = ungrouped == 0 and (grouped > 0 and 'own' or rest) or (grouped == 0 and rest or 'own+' .. rest)
  return groups:long() + 1, how
end

-- cfx.eval.tables(result [, {threshold=, reals='auto'|'own'|'deal'|'pool', seed=0}]) ->
-- {generators = rows (generator, architecture, n_real, n_fake, ap, acc, acc_real,
-- acc_fake, auroc), architectures = rows, summary = {mean_ap, mean_acc, mean_auroc,
-- mean_acc_real, mean_acc_fake, n_groups, n_undefined, ap_all (every image pooled),
-- acc_all, n_images, reals = how the reals were paired: 'own', 'deal', 'pool', 'own+deal'...}}.
-- reals: which reals a generator's fakes are scored against.  'auto': the store's
-- evaluation groups (docs/data.md: the folder layouts pair each generator with the reals
-- of its folder), and the reals it pairs with no generator dealt out or pooled as its
-- `pairing` attribute says; 'own': the store's groups only (an error when some real has
-- none); 'deal': every real dealt to exactly one generator with fakes, whatever the
-- store's groups; 'pool': all reals for every generator (AP then depends on the ratio
-- of fakes to reals).
function M.tables(r, opts)
  local o = core.options(opts, { ['?threshold'] = true, reals = 'auto', seed = 0 }, 'cfx.eval.tables')
  local thr = o.threshold or r.threshold or 0.5
  local mode = o.reals
  if mode ~= 'auto' and mode ~= 'own' and mode ~= 'deal' and mode ~= 'pool' then
    raise(("cfx.eval.tables: reals must be 'auto', 'own', 'deal' or 'pool', got %s"):format(tostring(mode)))
  end
  local gens = r.store:generators()
  local names, archs = {}, {}
  for i, g in ipairs(gens) do names[i], archs[i] = g.name, g.architecture end
  local groups, how = protocol_groups(r, mode, o.seed)
  local rows = metrics.by_group(r.scores, r.labels, groups, { threshold = thr, names = names, architectures = archs })
  local summary = metrics.summarize(rows)
  summary.ap_all = metrics.average_precision(r.scores, r.labels)
  summary.acc_all = metrics.accuracy(r.scores, r.labels, thr)
  summary.n_images = r.scores:numel()
  summary.reals = how
  return { generators = rows, architectures = metrics.by_architecture(rows), summary = summary }
end

-- cfx.eval.knn_attribution{train = {embeddings=, generators=}, test = {...}, k=5} ->
-- accuracy, predictions: each test embedding gets the majority generator of its k
-- nearest training embeddings by cosine similarity (a tie in votes goes to the generator
-- that reached the winning count first, walking from the nearest neighbour).
function M.knn_attribution(opts)
  local o = core.options(opts, { train = true, test = true, k = 5, batch = 4096 }, 'knn_attribution')
  local function unit(e) return e / e:norm(2, { 2 }, true):clamp(1e-12, nil) end
  local tr, te = unit(o.train.embeddings:float()), unit(o.test.embeddings:float())
  local tg = o.train.generators:reshape(-1):long()
  local k = math.min(o.k, tr:size(1))
  local preds = {}
  local tg_list = tg:totable()
  for start = 1, te:size(1), o.batch do
    local n = math.min(o.batch, te:size(1) - start + 1)
    local sim = te:narrow(1, start, n):matmul(tr:t())
    local _, idx = sim:topk(k, 2)
    for _, row in ipairs(idx:totable()) do
      local votes, best, best_n = {}, nil, 0
      for _, j in ipairs(row) do
        local g = tg_list[j]
        votes[g] = (votes[g] or 0) + 1
        -- strictly more votes wins: a tie keeps the generator that got there first
        if votes[g] > best_n then best, best_n = g, votes[g] end
      end
      preds[#preds + 1] = best
    end
  end
  local truth = o.test.generators:reshape(-1):totable()
  local right = 0
  for i, p in ipairs(preds) do if p == truth[i] then right = right + 1 end end
  return right / math.max(#preds, 1), tensor.tensor(preds, { dtype = 'int64' })
end

return M
