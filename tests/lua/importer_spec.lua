-- importer_spec.lua: folder layouts made by the test are detected and imported with
-- the right labels and generators; unreadable files are reported, skipped or flagged;
-- an ambiguous tree gets a message naming what was seen.
local cfx = require 'cfx'
local importer = require 'cfx.importer'

local root = os.tmpname()
os.remove(root)

local function put(dir, n, broken)
  os.execute(('mkdir -p %q'):format(dir))
  for i = 1, n do
    cfx.image.save(('%s/%d.png'):format(dir, i), cfx.randint(0, 256, { 12, 16, 3 }, { dtype = 'uint8' }))
  end
  if broken then
    local f = io.open(dir .. '/broken.jpg', 'wb')
    f:write('\255\216\255 not really a jpeg')
    f:close()
  end
  local f = io.open(dir .. '/notes.txt', 'w') -- not an image extension: ignored
  f:write('x')
  f:close()
end

put(root .. '/generic/progan/real', 2)
put(root .. '/generic/progan/fake', 3, true)
put(root .. '/generic/sd14/real', 2)
put(root .. '/generic/sd14/fake', 2)
put(root .. '/cnn/progan/car/0_real', 2)
put(root .. '/cnn/progan/car/1_fake', 2)
put(root .. '/cnn/progan/cat/0_real', 1)
put(root .. '/cnn/progan/cat/1_fake', 1)
put(root .. '/cnn/ldm_200/0_real', 2)
put(root .. '/cnn/ldm_200/1_fake', 3)
put(root .. '/genimage/Midjourney/val/ai', 2)
put(root .. '/genimage/Midjourney/val/nature', 3)
put(root .. '/genimage/Midjourney/train/ai', 5)
put(root .. '/synthbuster/dalle3', 2)
put(root .. '/synthbuster/firefly', 3)
put(root .. '/raise', 4)
put(root .. '/mixed/a/real', 1)
put(root .. '/mixed/b/1_fake', 1)

describe('cfx.importer', function()
  it('detects each layout', function()
    assert.equal('generic', importer.detect(root .. '/generic'))
    assert.equal('cnndetection', importer.detect(root .. '/cnn'))
    assert.equal('genimage', importer.detect(root .. '/genimage'))
    assert.equal('synthbuster', importer.detect(root .. '/synthbuster'))
  end)

  it('explains an ambiguous tree', function()
    local ok, e = pcall(importer.detect, root .. '/mixed')
    assert.is_false(ok)
    assert.matches('cannot tell the layout', e)
    assert.matches('cnndetection %(1 folders, e%.g%. b%)', e)
    assert.matches('generic %(1 folders, e%.g%. a%)', e)
  end)

  it('imports the generic layout, reporting and skipping the broken file', function()
    local reported = {}
    local r = importer.folders(root .. '/generic', { out = root .. '/g.h5',
      report = function(p, why) reported[#reported + 1] = p .. ': ' .. why end })
    assert.equal(9, r.images)
    assert.equal(1, r.skipped)
    assert.equal(1, #reported)
    assert.matches('progan/fake/broken%.jpg: .*JPEG', reported[1])
    local s = cfx.data.open(r.path)
    local info = s:info()
    assert.same({ 4, 5 }, { info.real, info.fake })
    assert.equal(3, info.generators.progan.fake)
    assert.equal('GAN', info.generators.progan.architecture)
    assert.equal(2, info.generators['sd14/real'].real)
  end)

  it('stores unreadable files flagged when asked', function()
    local r = importer.folders(root .. '/generic', { out = root .. '/gf.h5', on_error = 'flag',
      report = function() end })
    assert.equal(10, r.images)
    assert.equal(1, r.flagged)
    local s = cfx.data.open(r.path)
    local flagged = 0
    for i = 1, s:count() do if s:meta(i).flags == 1 then flagged = flagged + 1 end end
    assert.equal(1, flagged)
  end)

  it('imports CNNDetection with categories, GenImage by split and Synthbuster with reals', function()
    local c = cfx.data.open(importer.folders(root .. '/cnn', { out = root .. '/c.h5' }).path):info()
    assert.same({ 5, 6 }, { c.real, c.fake })
    assert.equal('LatDiff', c.generators.ldm_200.architecture)
    local g = cfx.data.open(importer.folders(root .. '/genimage', { out = root .. '/gi.h5' }).path):info()
    assert.same({ 3, 2 }, { g.real, g.fake })
    g = cfx.data.open(importer.folders(root .. '/genimage', { out = root .. '/gt.h5', split = 'train' }).path):info()
    assert.same({ 0, 5 }, { g.real, g.fake })
    local sb = cfx.data.open(importer.folders(root .. '/synthbuster', { out = root .. '/sb.h5',
      reals = root .. '/raise' }).path):info()
    assert.same({ 4, 5 }, { sb.real, sb.fake })
    assert.equal('Commercial', sb.generators.firefly.architecture)
  end)
end)
