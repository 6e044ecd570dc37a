-- image_pipeline.lua: the cfx half of bench/image_pipeline.py.
--
--   image_pipeline.lua JPEG_FILE N_EVAL N_TRAIN REPEATS [OUT_DIR]
--
-- Decodes and preprocesses the JPEG at JPEG_FILE over and over on one libtorch thread
-- (cfx.threads(1); the image code itself is single-threaded C) and prints one line
-- per row: `key<TAB>best seconds per image<TAB>median seconds per image`, the best and
-- median of REPEATS timings of N images each (N_EVAL for the evaluation rows, N_TRAIN
-- for the training rows).  With OUT_DIR, also writes one output of each pipeline there
-- as raw bytes (key.raw, HxWx3) so that the Python side can compare pixels.  The first
-- line is `capability<TAB>avx2|sse2|c` (cfx.cpu_capability()).  CFX_BENCH_ROWS=key,key
-- runs only those rows.
local cfx = require 'cfx'
local ffi = require 'ffi'

local BENCH_DIR = (arg and arg[0] or ''):match('^(.*)/') or '.'
-- CFX_BENCH_CLOCK=cpu: this process's CPU time, for a machine shared with other jobs;
-- otherwise wall time (bench/clock.lua).
local now = dofile(BENCH_DIR .. '/clock.lua')(os.getenv('CFX_BENCH_CLOCK'))

local path, n_eval, n_train, repeats, out_dir = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]), arg[5]
assert(path and n_eval and n_train and repeats, 'usage: image_pipeline.lua JPEG_FILE N_EVAL N_TRAIN REPEATS [OUT_DIR]')
assert(cfx.threads(1) == 1, 'could not set one thread')
local f = assert(io.open(path, 'rb'))
local bytes = f:read('*a')
f:close()

local image, augment = cfx.image, cfx.augment
local eval = augment.eval { resize = 256, crop = 224, filter = 'bilinear' }
local train = augment.randaugment {}
local decoded = image.decode(bytes)

-- Decoded pixels are malloc'd by the decoder and not counted in cfx.memory() (so not
-- in the collector's pressure either): every intermediate is freed as soon as it has
-- been used, as a data loader would do, and the output after it has been timed.
local function then_free(d, fn, ...)
  local out = fn(d, ...)
  d:free()
  return out
end

-- Each row: key, images per timing, fn(i) -> the output image of sample i.
local rows = {
  -- (a) evaluation: bytes -> 224 x 224
  { 'eval_scaled', n_eval, function() return then_free(image.decode(bytes, { min_size = 256 }), eval, 0) end },
  { 'eval_full', n_eval, function() return then_free(image.decode(bytes), eval, 0) end },
  { 'decode_full', n_eval, function() return image.decode(bytes) end },
  { 'decode_scaled', n_eval, function() return image.decode(bytes, { min_size = 256 }) end },
  -- (b) training: bytes -> RandAugment -> 224 x 224, a new sample seed each image
  { 'train', n_train, function(i) return then_free(image.decode(bytes), train, augment.seed(1, 0, i)) end },
  { 'train_augment_only', n_train, function(i) return train(decoded, augment.seed(1, 0, i)) end },
}

io.write(('capability\t%s\n'):format(cfx.cpu_capability()))
local only = os.getenv('CFX_BENCH_ROWS')
for _, row in ipairs(rows) do
  local key, n, fn = row[1], row[2], row[3]
  if only and not (',' .. only .. ','):find(',' .. key .. ',', 1, true) then goto next_row end
  local out
  for i = 1, math.max(3, math.floor(n / 10)) do -- warm up: JIT, allocator, caches
    if out then out:free() end
    out = fn(i)
  end
  if out_dir then
    local o = assert(io.open(('%s/%s.raw'):format(out_dir, key), 'wb'))
    local t = out:contiguous()
    local sz = t:numel()
    local buf = ffi.new('uint8_t[?]', sz)
    t:copy_to(buf, sz)
    o:write(ffi.string(buf, sz))
    o:close()
    io.write(('shape\t%s\t%s\n'):format(key, table.concat(t:shape(), 'x')))
  end
  out:free()
  collectgarbage()
  local times = {}
  for r = 1, repeats do
    local t0 = now()
    for i = 1, n do
      out = fn(n * r + i) -- new sample seeds every timing, as the Python side draws anew
      out:free()
    end
    times[r] = (now() - t0) / n
    collectgarbage()
  end
  table.sort(times)
  io.write(('%s\t%.9f\t%.9f\n'):format(key, times[1], times[math.floor((repeats + 1) / 2)]))
  ::next_row::
end
