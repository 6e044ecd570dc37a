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
--   batch=64, workers=2, precision='fp32'|'bf16', embeddings=false, threshold=0.5}
-- -> {scores=float32 {n} (sigmoid), logits=, labels=uint8 {n}, generators=int64 {n}
--     (1-based store ids), indices=int64 {n} (1-based), embeddings=float32 {n, d}?,
--     failed=n unreadable images (skipped, named in the loader's stats), view=, store=}
-- The model runs in eval mode under no_grad; its training mode is restored after.
function M.run(opts)
  local o = tensor.options(opts, defaults, 'cfx.eval.run')
  local cfx = require 'cfx'
  local model = o.model
  if not cfx.nn.is_module(model) then raise('cfx.eval.run: model must be a cfx.nn module') end
  local view = o.view or (o.store and o.store:all())
  if not view then raise('cfx.eval.run: give store= or view=') end
  local pre = o.preprocess
  if not pre then
    local size = model.cfg and model.cfg.img_size or 224
    pre = M.default_preprocess(size)
  end
  if o.perturb then pre = augment.compose { augment.perturb(o.perturb), pre } end
  if o.precision ~= 'fp32' and o.precision ~= 'bf16' then
    raise(("cfx.eval.run: precision must be 'fp32' or 'bf16', got %s"):format(tostring(o.precision)))
  end
  local loader = cfx.data.loader { view = view, batch = o.batch, workers = o.workers, shuffle = false, augment = pre,
    max_batches = math.ceil(view.n / o.batch), threads = false }
  local device = model:parameters()[1]:device()
  local normalize = augment.normalizer(o.mean, o.std, device)
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
  local ok, err = pcall(cfx.no_grad, function()
    for b in loader:batches() do
      local x = b.images
      if device ~= 'cpu' then x = x:to(device) end
      x = normalize(x)
      local y, e
      if o.precision == 'bf16' then
        y, e = cfx.autocast({ device = device, dtype = 'bfloat16' }, forward, x)
      else
        y, e = forward(x)
      end
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

-- Group ids for the protocol when reals are kept apart from the generators (cfx synth
-- and Community Forensics keep reals under their real sources): each real is dealt to
-- one generator that has fakes, in an order fixed by a hash of its store index and
-- `seed`, so every generator gets a disjoint, equally large share of the reals: its
-- evaluation group, as in the folder layouts where each generator has its own reals.
local function dealt_groups(r, seed)
  local labels, gens, idx = r.labels:totable(), r.generators:totable(), r.indices:totable()
  local has_fakes, fake_ids = {}, {}
  for i, l in ipairs(labels) do
    if l == 1 and not has_fakes[gens[i]] then has_fakes[gens[i]] = true; fake_ids[#fake_ids + 1] = gens[i] end
  end
  table.sort(fake_ids)
  if #fake_ids == 0 then return r.generators end
  local C, ffi = core.C, core.ffi
  local key = ffi.new('int64_t[2]')
  local reals = {}
  for i, l in ipairs(labels) do
    if l == 0 then
      key[0], key[1] = idx[i], seed
      reals[#reals + 1] = { i, C.cfx_hash64(key, 16, 0) }
    end
  end
  table.sort(reals, function(a, b) return a[2] < b[2] end)
  local out = {}
  for i = 1, #gens do out[i] = gens[i] end
  for p, e in ipairs(reals) do out[e[1]] = fake_ids[(p - 1) % #fake_ids + 1] end
  return tensor.tensor(out, { dtype = 'int64' })
end

-- cfx.eval.tables(result [, {threshold=, reals='auto'|'own'|'deal'|'pool', seed=0}]) ->
-- {generators = rows (generator, architecture, n_real, n_fake, ap, acc, acc_real,
-- acc_fake, auroc), architectures = rows, summary = {mean_ap, mean_acc, mean_auroc,
-- mean_acc_real, mean_acc_fake, n_groups, n_undefined, ap_all (every image pooled),
-- acc_all, n_images}}.
-- reals: which reals a generator's fakes are scored against.  'own': the reals stored
-- under the same generator (folder layouts); 'deal': every real dealt to exactly one
-- generator (see dealt_groups); 'pool': all reals for every generator (AP then
-- depends on the ratio of fakes to reals); 'auto': 'own' when some generator has
-- reals of its own, else 'deal'.
function M.tables(r, opts)
  local o = tensor.options(opts, { ['?threshold'] = true, reals = 'auto', seed = 0 }, 'cfx.eval.tables')
  local thr = o.threshold or r.threshold or 0.5
  local gens = r.store:generators()
  local names, archs = {}, {}
  for i, g in ipairs(gens) do names[i], archs[i] = g.name, g.architecture end
  local mode = o.reals
  if mode == 'auto' then
    mode = 'deal'
    local own_real = r.labels:eq(0):to('int64') * r.generators
    local fake_gen = r.labels:eq(1):to('int64') * r.generators
    local reals_of, fakes_of = {}, {}
    for _, g in ipairs(own_real:totable()) do reals_of[g] = true end
    for _, g in ipairs(fake_gen:totable()) do fakes_of[g] = true end
    for g in pairs(fakes_of) do if g > 0 and reals_of[g] then mode = 'own' end end
  end
  local groups
  if mode == 'own' or mode == 'pool' then groups = r.generators
  elseif mode == 'deal' then groups = dealt_groups(r, o.seed)
  else raise(("cfx.eval.tables: reals must be 'auto', 'own', 'deal' or 'pool', got %s"):format(tostring(o.reals))) end
  local rows = metrics.by_group(r.scores, r.labels, groups, { threshold = thr, names = names, architectures = archs })
  local summary = metrics.summarize(rows)
  summary.ap_all = metrics.average_precision(r.scores, r.labels)
  summary.acc_all = metrics.accuracy(r.scores, r.labels, thr)
  summary.n_images = r.scores:numel()
  summary.reals = mode
  return { generators = rows, architectures = metrics.by_architecture(rows), summary = summary }
end

-- cfx.eval.knn_attribution{train = {embeddings=, generators=}, test = {...}, k=5} ->
-- accuracy, predictions: each test embedding gets the majority generator of its k
-- nearest training embeddings by cosine similarity (a tie in votes goes to the generator
-- that reached the winning count first, walking from the nearest neighbour).
function M.knn_attribution(opts)
  local o = tensor.options(opts, { train = true, test = true, k = 5, batch = 4096 }, 'knn_attribution')
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
