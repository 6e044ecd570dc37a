-- Specs of cfx.models (lua/cfx/models/*.lua).  Parameter counts are the published
-- figures of timm/torchvision for 1000 classes, or the closed-form count of the
-- architecture; nothing is copied from cfx output.
local cfx = require 'cfx'

local tmp = os.tmpname()
teardown(function() os.remove(tmp) end)

-- closed-form parameter count of timm's ViT (class token, learned positions, qkv bias)
local function vit_params(img, patch, d, depth, classes)
  local n = (img / patch) ^ 2
  local block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
  return 3 * patch * patch * d + d + d + (n + 1) * d + depth * block + 2 * d + (d * classes + classes)
end

describe('cfx.models', function()
  it('ViT-S/16, ResNet-50 and ConvNeXt-S have the published parameter counts', function()
    -- timm: vit_small_patch16_224 22.05M (22,050,664); torchvision: resnet50 25,557,032,
    -- convnext_small 50,223,688
    assert.equals(22050664, cfx.models.create('vit_small_patch16_224', { num_classes = 1000 }):num_parameters())
    assert.equals(vit_params(224, 16, 384, 12, 1000), 22050664)
    assert.equals(25557032, cfx.models.create('resnet50', { num_classes = 1000 }):num_parameters())
    assert.equals(50223688, cfx.models.create('convnext_small', { num_classes = 1000 }):num_parameters())
  end)

  it('the CPU ViT has the closed-form count and one logit by default', function()
    local m = cfx.models.create('vit_micro_patch8_64')
    assert.equals(vit_params(64, 8, 96, 4, 1), m:num_parameters())
    m:eval()
    assert.same({ 3, 1 }, m(cfx.randn(3, 3, 64, 64)):shape())
    assert.same({ 3, 96 }, m:forward_head(m:forward_features(cfx.randn(3, 3, 64, 64)), true):shape())
  end)

  it('every CPU model runs forward and backward', function()
    for _, name in ipairs { 'vit_micro_patch8_64', 'convnext_micro', 'resnet_micro' } do
      local m = cfx.models.create(name)
      local y = m(cfx.randn(2, 3, 64, 64))
      y:sum():backward()
      for pname, p in m:named_parameters() do
        assert.is_not_nil(p:grad(), name .. ': no gradient for ' .. pname)
      end
    end
  end)

  it('unknown names and options are errors that list what is known', function()
    local ok, err = pcall(cfx.models.create, 'vit_smal_patch16_224')
    assert.is_false(ok)
    assert.matches('vit_small_patch16_224', err)
    ok, err = pcall(cfx.models.create, 'resnet_micro', { widht = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'widht'", err)
  end)

  it('a wrong image size is an error naming the expected size', function()
    local m = cfx.models.create('vit_micro_patch8_64')
    local ok, err = pcall(m, cfx.randn(1, 3, 32, 32))
    assert.is_false(ok)
    assert.matches('expected images {B, C, 64, 64}', err)
  end)

  it('pretrained weights round-trip through safetensors', function()
    local a = cfx.models.create('resnet_micro'):eval()
    cfx.no_grad(function() for _, b in ipairs(a:buffers()) do if b:is_floating_point() then b:uniform_(0.5, 1.5) end end end)
    cfx.safetensors.save(tmp, a:state_dict())
    local b = cfx.models.create('resnet_micro', { pretrained = tmp }):eval()
    local x = cfx.randn(2, 3, 64, 64)
    assert.is_true(cfx.equal(a(x), b(x)))
  end)

  it('a checkpoint classifier of another size is dropped; other mismatches are errors', function()
    local a = cfx.models.create('vit_micro_patch8_64', { num_classes = 10 })
    cfx.safetensors.save(tmp, a:state_dict())
    local b = cfx.models.create('vit_micro_patch8_64', { pretrained = tmp })
    assert.same({ 'head.weight', 'head.bias' }, b.pretrained_report.dropped)
    assert.is_true(cfx.equal(a.blocks[1].attn.qkv.weight, b.blocks[1].attn.qkv.weight))
    local ok, err = pcall(cfx.models.create, 'vit_micro_patch8_64', { pretrained = tmp, embed_dim = 48, num_heads = 3 })
    assert.is_false(ok)
    assert.matches('shape mismatch', err)
    assert.matches(tmp, err, 1, true)
  end)

  it('ViT position embeddings are resampled for another image size', function()
    local a = cfx.models.create('vit_micro_patch8_64')
    cfx.safetensors.save(tmp, a:state_dict())
    local b = cfx.models.create('vit_micro_patch8_64', { pretrained = tmp, img_size = 96 })
    assert.same({ 1, 1 + 12 * 12, 96 }, b.pos_embed:shape())
    -- the class-token position is kept as is
    assert.is_true(cfx.equal(a.pos_embed:narrow(2, 1, 1), b.pos_embed:narrow(2, 1, 1)))
    -- a constant grid stays constant under bicubic resampling (weights sum to one)
    local c = cfx.models.create('vit_micro_patch8_64')
    cfx.no_grad(function() c.pos_embed:fill_(0.25) end)
    cfx.safetensors.save(tmp, c:state_dict())
    local d = cfx.models.create('vit_micro_patch8_64', { pretrained = tmp, img_size = 128 })
    assert.is_true((d.pos_embed - 0.25):abs():max():item() < 1e-6)
  end)

  it('freezing the backbone leaves only the head trainable', function()
    local m = cfx.models.create('vit_micro_patch8_64')
    m:freeze()
    m:unfreeze('^head%.')
    assert.equals(96 + 1, m:num_parameters { trainable = true })
  end)

  it('get_classifier and reset_classifier name the classifier as timm does (head, head.fc, fc)', function()
    -- the classifier's input width: ViT's embed_dim 96, ConvNeXt's last stage 192,
    -- resnet_micro's 128 x 4 (bottleneck expansion)
    for _, c in ipairs { { 'vit_micro_patch8_64', 'head.weight', 96 }, { 'convnext_micro', 'head.fc.weight', 192 },
      { 'resnet_micro', 'fc.weight', 512 } } do
      local name, key, width = c[1], c[2], c[3]
      local m = cfx.models.create(name)
      local head = m:get_classifier()
      assert.equals('Linear', head.__name, name)
      assert.same({ 1, width }, head.weight:shape(), name)
      cfx.no_grad(function() head.weight:fill_(7) end) -- the module at that name, not a copy
      assert.equals(7, m:state_dict()[key]:min():item(), name)
      -- the linear probe, the same lines for every backbone
      m:freeze()
      assert.equals(2, m:get_classifier():unfreeze(), name)
      assert.equals(width + 1, m:num_parameters { trainable = true }, name)
      for pname, p in m:named_parameters() do
        assert.equals(pname == key or pname == key:gsub('weight$', 'bias'), p:requires_grad(), name .. ' ' .. pname)
      end
      -- a fresh classifier of 5 outputs, then none (the pooled features)
      m:reset_classifier(5)
      assert.same({ 5, width }, m:get_classifier().weight:shape(), name)
      m:eval()
      assert.same({ 2, 5 }, m(cfx.randn(2, 3, 64, 64)):shape(), name)
      m:reset_classifier(0)
      assert.equals('Identity', m:get_classifier().__name, name)
      assert.same({ 2, width }, m(cfx.randn(2, 3, 64, 64)):shape(), name)
      assert.has_error(function() m:get_classifier():unfreeze() end, 'unfreeze: Identity has no parameters')
    end
    assert.has_error(function() cfx.nn.Linear(2, 3):get_classifier() end,
      'Linear: get_classifier: this module has no classifier')
  end)
end)
