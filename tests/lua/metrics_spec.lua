-- Specs of cfx.metrics' calibration, operating-point and bootstrap functions
-- (lua/cfx/metrics.lua, core/src/metrics.c): bad input, edge cases, determinism.  The
-- values themselves are checked against scikit-learn in tests/reference/test_calibration.py.
local cfx = require 'cfx'
local M = cfx.metrics

local function nan(x) return x ~= x end

describe('cfx.metrics calibration and operating points', function()
  local s, y = { 0.9, 0.4, 0.35, 0.8, 0.1 }, { 1, 0, 1, 0, 0 }

  it('computes small cases by hand', function()
    assert.near(0.2485, M.brier(s, y), 1e-15)
    assert.near(0.25, M.ece(s, y, { bins = 5 }), 1e-15)
    local eer, t = M.eer(s, y)
    assert.near(0.5, eer, 1e-15)
    assert.equals(0.35, t)
    assert.near(2 / 3, M.balanced_accuracy(s, y, 0.3), 1e-15)
    local thr, ba = M.threshold_best_balanced(s, y)
    assert.equals(0.8, thr)
    assert.near(0.75, ba, 1e-15)
    local tprs, thrs = M.tpr_at_fpr(s, y, { 0, 1 })
    assert.same({ 0.5, 1 }, tprs)
    assert.same({ 0.8, -math.huge }, thrs)
  end)

  it('is stable on extreme logits', function()
    assert.near(1000, M.nll({ 1000 }, { 0 }), 1e-12)
    assert.near(1000, M.nll({ -1000 }, { 1 }), 1e-12)
    assert.equals(0, M.nll({ 1000 }, { 1 }))
    assert.near(math.log(2), M.nll({ 0 }, { 1 }), 1e-15)
  end)

  it('gives nan for an empty input and for rates with one class only', function()
    assert.is_true(nan(M.brier({}, {})))
    assert.is_true(nan(M.nll({}, {})))
    assert.is_true(nan(M.ece({}, {})))
    assert.is_true(nan(M.eer({ 0.2, 0.3 }, { 1, 1 })))
    assert.is_true(nan(M.balanced_accuracy({ 0.2 }, { 0 })))
    assert.is_true(nan((M.threshold_best_balanced({ 0.2 }, { 1 }))))
    assert.is_true(nan((M.fpr_at_tpr({ 0.2, 0.4 }, { 0, 0 }, 0.5))))
    -- a threshold on reals alone is defined without fakes, its TPR is not
    local t, f, tpr = M.threshold_at_fpr({ 0.1, 0.2, 0.3, 0.4 }, { 0, 0, 0, 0 }, 0.25)
    assert.equals(0.3, t)
    assert.equals(0.25, f)
    assert.is_true(nan(tpr))
    -- one class is fine for calibration
    assert.near(0.04, M.brier({ 0.2 }, { 0 }), 1e-15)
  end)

  it('keeps empty reliability bins as nil, with edges and counts', function()
    local r = M.calibration({ 0.05, 0.95 }, { 0, 1 }, { bins = 4 })
    assert.equals(4, #r.bins)
    assert.equals(1, r.bins[1].count)
    assert.is_nil(r.bins[2].mean_prob)
    assert.equals(0.25, r.bins[1].hi)
    assert.near(0.05, r.ece, 1e-15)
  end)

  it('refuses bad input with a clear error', function()
    local cases = {
      { function() M.eer({ 0 / 0, 1 }, { 0, 1 }) end, 'score 0 is NaN' },
      { function() M.brier({ 0.5, 1.5 }, { 0, 1 }) end, 'expected one in %[0, 1%]' },
      { function() M.ece({ -0.1 }, { 0 }) end, 'expected one in %[0, 1%]' },
      { function() M.eer({ 0.1, 0.2 }, { 0, 2 }) end, 'labels must be 0' },
      { function() M.eer({ 0.1, 0.2 }, { 0, 0.5 }) end, 'labels must be 0' },
      { function() M.eer({ 0.1, 0.2 }, { 0, -1 }) end, 'labels must be 0' },
      { function() M.eer({ 0.1, 0.2 }, cfx.tensor({ 0, 7 }, { dtype = 'uint8' })) end, 'label 1 is 7' },
      { function() M.nll({ 0.1, 0.2 }, { 0 }) end, '2 scores but 1 labels' },
      { function() M.ece({ 0.1 }, { 0 }, { bins = 0 }) end, 'bins must be' },
      { function() M.ece({ 0.1 }, { 0 }, { strategy = 'kmeans' }) end, "strategy must be 'uniform' or 'quantile'" },
      { function() M.ece({ 0.1 }, { 0 }, { nbins = 3 }) end, "unknown option 'nbins'" },
      { function() M.tpr_at_fpr({ 0.1, 0.2 }, { 0, 1 }, 1.5) end, 'target 1.5' },
      { function() M.fpr_at_tpr({ 0.1, 0.2 }, { 0, 1 }, { 0.5, 0 / 0 }) end, 'a target is NaN' },
      { function() M.balanced_accuracy({ 0.1 }, { 0 }, 0 / 0) end, 'threshold is NaN' },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):lower():find(c[2]:lower()), tostring(err) .. ' lacks ' .. c[2])
    end
  end)
end)

describe('cfx.metrics.bootstrap', function()
  local n = 2000
  cfx.manual_seed(3)
  local s = cfx.rand(n, { dtype = 'float64' })
  local y = cfx.rand(n, { dtype = 'float64' }):lt(s):to('uint8')
  local g = cfx.randint(1, 21, { n }):long()

  it('is seeded, brackets the data, and agrees with summarize', function()
    local a = M.bootstrap { scores = s, labels = y, groups = g, resamples = 200, seed = 5 }
    local b = M.bootstrap { scores = s, labels = y, groups = g, resamples = 200, seed = 5 }
    local c = M.bootstrap { scores = s, labels = y, groups = g, resamples = 200, seed = 6 }
    assert.same(a, b)
    assert.are_not.equal(a.map_lo, c.map_lo)
    local sm = M.summarize(M.by_group(s, y, g))
    assert.near(sm.mean_ap, a.map, 1e-12)
    assert.near(sm.mean_acc, a.acc, 1e-12)
    assert.equals(20, a.n_generators)
    assert.is_true(a.map_lo < a.map and a.map < a.map_hi and a.map_se > 0)
    assert.is_true(a.acc_lo < a.acc and a.acc < a.acc_hi and a.acc_se > 0)
  end)

  it('gives nan without reals, and everything nan without fakes', function()
    local r = M.bootstrap { scores = { 0.1, 0.7 }, labels = { 1, 1 }, groups = { 1, 2 }, resamples = 10 }
    assert.is_true(nan(r.map) and nan(r.map_lo))
    assert.equals(1, r.acc_hi)
    r = M.bootstrap { scores = { 0.1, 0.7 }, labels = { 0, 0 }, groups = { 1, 2 }, resamples = 10 }
    assert.equals(0, r.n_generators)
    assert.is_true(nan(r.acc) and nan(r.acc_lo) and nan(r.map))
    r = M.bootstrap { scores = {}, labels = {}, groups = {}, resamples = 10 }
    assert.equals(0, r.n_generators)
  end)

  it('refuses bad options with a clear error', function()
    local base = { scores = { 0.1, 0.7 }, labels = { 0, 1 }, groups = { 1, 1 } }
    local function with(k, v)
      local o = {}
      for key, val in pairs(base) do o[key] = val end
      o[k] = v
      return o
    end
    local cases = {
      { with('resamples', 0), 'resamples must be' },
      { with('level', 1), 'level 1' },
      { with('seed', -1), 'seed must be' },
      { with('groups', { 1 }), '2 scores but 1 groups' },
      { with('groups', { 0, 1 }), 'group ids must be >= 1' },
      { with('scores', { 0.1, 0 / 0 }), 'score 1 is NaN' },
      { with('frobnicate', 1), "unknown option 'frobnicate'" },
      { { scores = { 0.1 }, labels = { 0 } }, 'scores, labels and groups are required' },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(M.bootstrap, c[1])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[2], 1, true), tostring(err) .. ' lacks ' .. c[2])
    end
  end)
end)
