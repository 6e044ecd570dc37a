-- Specs of cfx.json (lua/cfx/json.lua), against RFC 8259 examples.
local json = require('cfx').json

describe('cfx.json', function()
  it('decodes the RFC 8259 value types', function()
    local v = json.decode(' {"a": [1, -2.5e3, 0.125], "s": "x\\"y\\\\z\\n\\u00e9\\ud83d\\ude00", "t": true, "f": false, "n": null} ')
    assert.same({ 1, -2500, 0.125 }, v.a)
    assert.equals('x"y\\z\n\195\169\240\159\152\128', v.s)
    assert.is_true(v.t)
    assert.is_false(v.f)
    assert.equals(json.null, v.n)
  end)

  it('round-trips and sorts object keys', function()
    local t = { b = { 1, 2, { c = 'x' } }, a = 0.1, d = {} }
    assert.equals('{"a":0.10000000000000001,"b":[1,2,{"c":"x"}],"d":[]}', json.encode(t))
    assert.same(t, json.decode(json.encode(t)))
  end)

  it('rejects malformed text with the position', function()
    for _, bad in ipairs { '{"a":1,}', '[1 2]', '"abc', '{"a" 1}', 'tru', '[1]x', '"\\q"' } do
      local ok, err = pcall(json.decode, bad)
      assert.is_false(ok, bad)
      assert.matches('json.decode: .* at line 1 %(byte %d+%)', err)
    end
  end)
end)
