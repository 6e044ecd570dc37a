-- cfx.nn: modules (PyTorch's torch.nn).  See docs/models.md.
--   local nn = cfx.nn                 -- or require 'cfx.nn'
--   local mlp = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, 1))
--   print(mlp)                      -- tree with parameter counts
--   local y = mlp(cfx.randn(8, 4))
local module = require 'cfx.nn.module'
local layers = require 'cfx.nn.layers'

local nn = {
  Module = module.Module,
  class = module.class,
  is_module = module.is_module,
  init = require 'cfx.nn.initializers',
  no_grad = module.no_grad,
}
for name, cls in pairs(layers) do nn[name] = cls end

return nn
