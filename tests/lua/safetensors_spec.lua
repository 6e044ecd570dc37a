-- safetensors_spec.lua: cfx.safetensors.save/load round trips every tensor dtype,
-- metadata and odd shapes; errors name the file.  (The byte format itself is checked
-- against an independent implementation in tests/reference/test_safetensors.py.)
local cfx = require 'cfx'

local dir = os.tmpname()
os.remove(dir)
os.execute('mkdir -p ' .. dir)

describe('cfx.safetensors', function()
  it('round-trips every dtype, shape and metadata', function()
    local t = {
      ['blocks.0.attn.qkv.weight'] = cfx.randn(6, 4),
      ['x64'] = cfx.randn(3):double(),
      ['half'] = cfx.randn(2, 2):half(),
      ['bf'] = cfx.randn(5):bfloat16(),
      ['i64'] = cfx.arange(7),
      ['i32'] = cfx.arange(4):int(),
      ['i16'] = cfx.arange(4):short(),
      ['i8'] = (cfx.arange(4) - 2):char(),
      ['u8'] = cfx.arange(250, 256):byte(),
      ['mask'] = cfx.tensor { true, false, true },
      ['scalar'] = cfx.tensor(3.5),
      ['empty'] = cfx.zeros(0, 3),
      ['strided'] = cfx.randn(4, 5):t(),
    }
    cfx.safetensors.save(dir .. '/w.safetensors', t, { format = 'pt', step = 12 })
    local back, meta = cfx.safetensors.load(dir .. '/w.safetensors')
    for name, v in pairs(t) do
      assert.is_not_nil(back[name], name)
      assert.equal(v:dtype(), back[name]:dtype(), name)
      assert.is_true(v:contiguous() == back[name], name)
    end
    assert.same({ format = 'pt', step = '12' }, meta)
  end)
  it('names the file when it cannot read it', function()
    local f = io.open(dir .. '/bad.safetensors', 'wb')
    f:write('\255\255\255\255\255\255\255\127{}')
    f:close()
    local ok, e = pcall(cfx.safetensors.load, dir .. '/bad.safetensors')
    assert.is_false(ok)
    assert.matches('bad%.safetensors', e)
    ok, e = pcall(cfx.safetensors.load, dir .. '/missing.safetensors')
    assert.matches('missing%.safetensors', e)
  end)
end)
