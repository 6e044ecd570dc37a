-- attribution.lua: Appendix A (Fig. 9) of the paper.  One detector is trained (the
-- study's default pipeline, without the generator types held out as "unknown"); its
-- penultimate features (embeddings) of the eval store's images then classify the
-- generator TYPE of an image (its architecture family: GAN, LatDiff, PixDiff,
-- Commercial, other, or real) by k-nearest neighbours (k = 5, cosine).  The kNN's
-- reference set is a labelled split of the eval images of the "known" types (those
-- present in training); the queries are the other eval images.  Known types are
-- classified (Fig. 9a: GANs, latent diffusion and reals should be easy); images of the
-- unknown types (`unknown_types`, held out of training and of the reference set) get a
-- known type, and which one is the finding (Fig. 9b: commercial models look like
-- latent diffusion).
--
--   cfx experiments/attribution.lua               # cpu preset
--   cfx experiments/attribution.lua preset=paper
--
-- Results (per run, besides the detector's eval/<dataset> tables):
--   attribution/<dataset>   table, one row per type: type, known, n_reference, n_query,
--                           n_correct, acc (NaN for unknown types), top (most common
--                           prediction), top_fraction; attributes: the summary
--   confusion/<dataset>     counts int64 [true type, predicted type]; attributes
--                           true_types, predicted_types (JSON lists, in row/column order)
--   attribution_generators/<dataset>  table, one row per generator of the queries
--   embeddings/<dataset>    a sample (<= max_embeddings) of the queries: embeddings
--                           [n, d], label, generator (store id, 1-based), type and
--                           predicted (1-based positions in the `types` attribute),
--                           known, index (store index); attributes types, generator_names
local cfx = require 'cfx'
local core = require 'cfx.core'

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

-- the type of an image: 'real', or its generator's architecture family
local function type_name(label, arch)
  if label == 0 then return 'real' end
  if arch == nil or arch == '' or arch == 'real' then return 'other' end
  return arch
end

-- a fixed order of the types: the paper's, then any other name sorted
local order = { GAN = 1, LatDiff = 2, PixDiff = 3, Commercial = 4, other = 5, real = 6 }
local function sort_types(list)
  table.sort(list, function(a, b)
    local ra, rb = order[a] or 100, order[b] or 100
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return list
end

local function rng_of(seed)
  local rng = core.ffi.new('cfx_rng')
  core.C.cfx_rng_seed(rng, seed)
  return rng, function() return core.C.cfx_rng_uniform(rng, 0, 1) end,
      function(lo, hi) return tonumber(core.C.cfx_rng_int(rng, lo, hi)) end
end

local function shuffle(list, ri)
  for i = #list, 2, -1 do
    local j = ri(1, i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

-- The types the detector trained on: its view's generators' families, and 'real'.
local function trained_types(cfg, study)
  local train = cfx.data.open(cfg.train_store)
  local view = study.train_view(cfg, train, study)
  local arch = {}
  for _, g in ipairs(train:generators()) do arch[g.name] = g.architecture end
  local types = {}
  for _, name in ipairs(view:generator_names()) do types[type_name(1, arch[name])] = true end
  if view:counts().real > 0 then types.real = true end
  train:close()
  return types
end

-- Which images are reference: by generator within each known fake type (reference and
-- queries then share no generator, as in the paper, where none of the classified
-- generators is in the reference), a type with a single generator and the reals by image.
local function reference_split(cfg, labels, gens, types, known, gen_names)
  local _, u, ri = rng_of(cfg.seed * 7 + 13)
  local frac = cfg.reference_fraction
  local ref = {}
  if cfg.reference_by ~= 'generator' and cfg.reference_by ~= 'image' then
    error(("reference_by must be 'generator' or 'image', got '%s'"):format(cfg.reference_by), 0)
  end
  local by_type = {} -- known fake type -> its generator ids, sorted by name
  if cfg.reference_by == 'generator' then
    local seen = {}
    for i = 1, #labels do
      local t, g = types[i], gens[i]
      if known[t] and labels[i] == 1 and not seen[g] then
        seen[g] = true
        by_type[t] = by_type[t] or {}
        table.insert(by_type[t], g)
      end
    end
  end
  local ref_gen, by_image = {}, {}
  for t, list in pairs(by_type) do
    if #list < 2 then
      by_image[t] = true
    else
      table.sort(list, function(a, b) return gen_names[a] < gen_names[b] end)
      shuffle(list, ri)
      local m = math.min(#list - 1, math.max(1, math.floor(frac * #list + 0.5)))
      for j = 1, m do ref_gen[list[j]] = true end
    end
  end
  for i = 1, #labels do
    local t = types[i]
    local draw = u() -- one draw per image whatever its role, so the split is stable
    if known[t] then
      if cfg.reference_by == 'image' or labels[i] == 0 or by_image[t] then
        ref[i] = draw < frac
      else
        ref[i] = ref_gen[gens[i]] == true
      end
    else
      ref[i] = false
    end
  end
  return ref
end

-- The attribution of one evaluation (with embeddings): writes the tables above, returns
-- the summary numbers.
local function attribute(cfg, run, store, ev, known)
  local ds = cfg.dataset
  local labels, gens = ev.labels:totable(), ev.generators:totable()
  local index = ev.indices:totable()
  local info, gen_names = store:generators(), {}
  for i, g in ipairs(info) do gen_names[i] = g.name end
  local types = {}
  for i = 1, #labels do types[i] = type_name(labels[i], info[gens[i]] and info[gens[i]].architecture) end
  local ref = reference_split(cfg, labels, gens, types, known, gen_names)
  -- the type names: known ones (those the reference holds) are the predictable columns
  local present, ref_types = {}, {}
  for i = 1, #labels do
    present[types[i]] = true
    if ref[i] then ref_types[types[i]] = true end
  end
  local predicted_types, true_types = {}, {}
  for t in pairs(ref_types) do predicted_types[#predicted_types + 1] = t end
  sort_types(predicted_types)
  if #predicted_types == 0 then error(('%s: no reference images of a known type'):format(cfg.eval_store), 0) end
  local known_rows, unknown_rows = {}, {}
  for t in pairs(present) do
    if ref_types[t] then known_rows[#known_rows + 1] = t else unknown_rows[#unknown_rows + 1] = t end
  end
  sort_types(known_rows)
  sort_types(unknown_rows)
  for _, t in ipairs(known_rows) do true_types[#true_types + 1] = t end
  for _, t in ipairs(unknown_rows) do true_types[#true_types + 1] = t end
  local col, row = {}, {}
  for j, t in ipairs(predicted_types) do col[t] = j end
  for j, t in ipairs(true_types) do row[t] = j end
  -- the kNN over the reference
  local ref_pos, query_pos, ref_label, query_label = {}, {}, {}, {}
  for i = 1, #labels do
    if ref[i] then
      ref_pos[#ref_pos + 1], ref_label[#ref_label + 1] = i, col[types[i]]
    else
      query_pos[#query_pos + 1], query_label[#query_label + 1] = i, row[types[i]]
    end
  end
  if #query_pos == 0 then error(('%s: no query images left after the reference split'):format(cfg.eval_store), 0) end
  local emb = ev.embeddings
  local function rows_of(pos) return emb:index_select(1, cfx.tensor(pos, { dtype = 'int64' })) end
  local query_emb = rows_of(query_pos)
  local _, pred = cfx.eval.knn_attribution { k = cfg.knn_k,
    train = { embeddings = rows_of(ref_pos), generators = cfx.tensor(ref_label, { dtype = 'int64' }) },
    test = { embeddings = query_emb, generators = cfx.tensor(query_label, { dtype = 'int64' }) } }
  pred = pred:totable() -- column numbers (positions in predicted_types)
  -- the confusion matrix, per type and per generator
  local T, K = #true_types, #predicted_types
  local counts = {}
  for r = 1, T do
    counts[r] = {}
    for c = 1, K do counts[r][c] = 0 end
  end
  local n_ref = {}
  for _, i in ipairs(ref_pos) do n_ref[types[i]] = (n_ref[types[i]] or 0) + 1 end
  local per_gen, gen_order = {}, {}
  local right, n_known = 0, 0
  for q, i in ipairs(query_pos) do
    local r, c = query_label[q], pred[q]
    counts[r][c] = counts[r][c] + 1
    local p = predicted_types[c]
    if ref_types[types[i]] then
      n_known = n_known + 1
      if p == types[i] then right = right + 1 end
    end
    if labels[i] == 1 then
      local g = gens[i]
      if not per_gen[g] then
        per_gen[g], gen_order[#gen_order + 1] = { n = 0, right = 0, votes = {} }, g
      end
      local e = per_gen[g]
      e.n, e.votes[p] = e.n + 1, (e.votes[p] or 0) + 1
      if p == types[i] then e.right = e.right + 1 end
    end
  end
  local function top_of(votes)
    local best, bn = '', 0
    for _, t in ipairs(predicted_types) do
      if (votes[t] or 0) > bn then best, bn = t, votes[t] end
    end
    return best, bn
  end
  local type_rows, accs = {}, {}
  for r, t in ipairs(true_types) do
    local n, votes = 0, {}
    for c = 1, K do
      n = n + counts[r][c]
      votes[predicted_types[c]] = counts[r][c]
    end
    local is_known = ref_types[t] == true
    local correct = is_known and counts[r][col[t]] or 0
    local acc = (is_known and n > 0) and correct / n or 0 / 0
    if is_known and n > 0 then accs[#accs + 1] = acc end
    local top, tn = top_of(votes)
    type_rows[r] = { type = t, known = is_known and 1 or 0, n_reference = n_ref[t] or 0, n_query = n,
      n_correct = correct, acc = acc, top = top, top_fraction = n > 0 and tn / n or 0 / 0 }
  end
  local mean_acc = cfx.metrics.mean_se(accs)
  local unknown_list = {}
  for _, t in ipairs(unknown_rows) do unknown_list[#unknown_list + 1] = t end
  local summary = { k = cfg.knn_k, metric = 'cosine', reference_by = cfg.reference_by,
    reference_fraction = cfg.reference_fraction, n_reference = #ref_pos, n_query = #query_pos,
    n_query_known = n_known, accuracy_known = n_known > 0 and right / n_known or 0 / 0,
    mean_acc_known = mean_acc or 0 / 0, known_types = predicted_types, unknown_types = unknown_list,
    held_out_types = cfg.unknown_types, types = true_types, embedding_dim = emb:size(2) }
  local lr = run.log_run
  lr:table('attribution/' .. ds, type_rows, summary, { columns = { 'type', 'known', 'n_reference', 'n_query',
    'n_correct', 'acc', 'top', 'top_fraction' }, types = { top_fraction = 'float64' } })
  local flat = {}
  for r = 1, T do for c = 1, K do flat[#flat + 1] = counts[r][c] end end
  lr:arrays('confusion/' .. ds, { counts = cfx.tensor(flat, { dtype = 'int64' }):reshape(T, K) })
  lr:set('confusion/' .. ds, { true_types = true_types, predicted_types = predicted_types })
  table.sort(gen_order, function(a, b) return gen_names[a] < gen_names[b] end)
  local grows = {}
  for _, g in ipairs(gen_order) do
    local e = per_gen[g]
    local top, tn = top_of(e.votes)
    local t = type_name(1, info[g].architecture)
    grows[#grows + 1] = { generator = gen_names[g], type = t, known = ref_types[t] and 1 or 0, n_query = e.n,
      acc = ref_types[t] and e.right / e.n or 0 / 0, top = top, top_fraction = tn / e.n }
  end
  lr:table('attribution_generators/' .. ds, grows, nil, { columns = { 'generator', 'type', 'known', 'n_query',
    'acc', 'top', 'top_fraction' }, types = { top_fraction = 'float64' } })
  -- a bounded, seeded sample of the queries for the 2-D map
  local pick = {}
  for q = 1, #query_pos do pick[q] = q end
  if #pick > cfg.max_embeddings then
    local _, _, ri = rng_of(cfg.seed * 7 + 29)
    shuffle(pick, ri)
    for q = #pick, cfg.max_embeddings + 1, -1 do pick[q] = nil end
    table.sort(pick)
  end
  local s_label, s_gen, s_type, s_pred, s_known, s_index = {}, {}, {}, {}, {}, {}
  for j, q in ipairs(pick) do
    local i = query_pos[q]
    s_label[j], s_gen[j], s_index[j] = labels[i], gens[i], index[i]
    s_type[j], s_pred[j] = query_label[q], row[predicted_types[pred[q]]]
    s_known[j] = ref_types[types[i]] and 1 or 0
  end
  lr:arrays('embeddings/' .. ds, {
    embeddings = query_emb:index_select(1, cfx.tensor(pick, { dtype = 'int64' })):float(),
    label = cfx.tensor(s_label, { dtype = 'uint8' }), generator = cfx.tensor(s_gen, { dtype = 'int32' }),
    type = cfx.tensor(s_type, { dtype = 'int32' }), predicted = cfx.tensor(s_pred, { dtype = 'int32' }),
    known = cfx.tensor(s_known, { dtype = 'uint8' }), index = cfx.tensor(s_index, { dtype = 'int64' }) })
  lr:set('embeddings/' .. ds, { types = true_types, generator_names = gen_names, n_queries = #query_pos })
  io.stderr:write(('    kNN (k=%d) type attribution: %.3f on %d queries of known types (%d reference images)\n'):format(
    cfg.knn_k, summary.accuracy_known, n_known, #ref_pos))
  return summary
end

-- the printed report: per-type accuracy and the row-normalised confusion matrix
local function print_run(id, ds, rows, summary, counts, true_types, predicted_types)
  print(('\n%s: kNN (k=%s, cosine) generator-type attribution on %s: accuracy on known types %.3f ' ..
    '(mean over types %.3f; %d queries, %d reference images)'):format(id, tostring(summary.k), ds,
    summary.accuracy_known or 0 / 0, summary.mean_acc_known or 0 / 0, summary.n_query or 0, summary.n_reference or 0))
  print(('%-12s %-8s %9s %8s %8s  %s'):format('type', 'known', 'reference', 'queries', 'acc', 'most often'))
  for i = 1, rows.n do
    print(('%-12s %-8s %9d %8d %8s  %s (%.2f)'):format(rows.type[i], rows.known[i] == 1 and 'known' or 'unknown',
      rows.n_reference[i], rows.n_query[i], rows.known[i] == 1 and ('%.3f'):format(rows.acc[i]) or '-',
      rows.top[i], rows.top_fraction[i]))
  end
  local head = { ('%-12s'):format('true \\ pred') }
  for _, t in ipairs(predicted_types) do head[#head + 1] = ('%10s'):format(t) end
  print(table.concat(head, ' '))
  for r, t in ipairs(true_types) do
    local n, cells = 0, { ('%-12s'):format(t) }
    for c = 1, #predicted_types do n = n + counts[r][c] end
    for c = 1, #predicted_types do cells[#cells + 1] = ('%10.2f'):format(n > 0 and counts[r][c] / n or 0 / 0) end
    print(table.concat(cells, ' ') .. ('   (%d)'):format(n))
  end
end

return cfx.study {
  name = 'attribution',
  paper = 'App. A, Fig. 9',
  description = 'kNN generator-type attribution on a detector\'s embeddings, known and unknown types',
  presets = {
    cpu = { subset_ids = { 1 }, unknown_types = { 'Commercial' }, knn_k = 5, reference_by = 'generator',
      reference_fraction = 0.5, max_embeddings = 2000 },
    paper = { subset_ids = { 1 }, unknown_types = { 'Commercial', 'other' }, knn_k = 5, reference_by = 'generator',
      reference_fraction = 0.5, max_embeddings = 2000 },
  },
  vary = { subset = 'subset_ids' },
  -- the held-out types are not trained on
  train_view = function(cfg, store, study)
    local unknown, keep, seen = set_of(cfg.unknown_types), {}, {}
    for _, g in ipairs(store:generators()) do
      local a = g.architecture
      if a ~= 'real' and not unknown[a] and not seen[a] then seen[a], keep[#keep + 1] = true, a end
    end
    if #cfg.unknown_types == 0 then return cfx.study.train_view(cfg, store) end
    return cfx.study.train_view(cfg, store:select { architectures = keep, reals = 'all' })
  end,
  -- the detector's tables on the eval store, then the attribution from the same pass's embeddings
  evaluate = function(cfg, run, model, study)
    local known = trained_types(cfg, study)
    for _, t in ipairs(cfg.unknown_types) do known[t] = nil end
    local store = cfx.data.open(cfg.eval_store)
    local ev = cfx.eval.run { model = model, store = store, preprocess = study.preprocess(cfg, false), batch = 128,
      workers = cfg.workers, precision = cfg.precision, embeddings = true }
    local t = run:evaluate(cfg.dataset, ev)
    local s = attribute(cfg, run, store, ev, known)
    -- in the run's summary too (what the report falls back on without the results file)
    local rs = run.summary[cfg.dataset]
    for _, k in ipairs { 'accuracy_known', 'mean_acc_known' } do rs['attribution_' .. k] = s[k] end
    store:close()
    return t
  end,
  summarize = function(rows, cfg, path)
    print(('\nattribution (%s preset, App. A / Fig. 9): generator types of %s by kNN on the detector\'s embeddings')
      :format(cfg.preset, cfg.eval_store))
    local log = path and cfx.results.open(path, { readonly = true })
    for _, r in ipairs(rows) do
      local s = r.summary[cfg.dataset] or {}
      local run = log and log:has_run(r.id) and log:run(r.id)
      local trows, tn
      if run and run:kind('attribution/' .. cfg.dataset) == 'table' then
        local cols, _, n = run:read('attribution/' .. cfg.dataset)
        trows, tn = cols, n
        trows.n = tn
      end
      if trows then
        local a = run:get('confusion/' .. cfg.dataset)
        local c = run:read('confusion/' .. cfg.dataset).counts:totable()
        local summary = run:get('attribution/' .. cfg.dataset)
        print_run(r.id, cfg.dataset, trows, summary, c, cfx.json.decode(a.true_types),
          cfx.json.decode(a.predicted_types))
      else
        print(('%s: accuracy on known types %.3f (mean over types %.3f)'):format(r.id,
          s.attribution_accuracy_known or 0 / 0, s.attribution_mean_acc_known or 0 / 0))
      end
      print(('detector: mean AP %.3f, mean acc %.3f'):format(s.mean_ap or 0 / 0, s.mean_acc or 0 / 0))
    end
    if log then log:close() end
  end,
}
