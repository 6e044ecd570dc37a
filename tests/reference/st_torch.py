"""st_torch.py: torch tensors to and from safetensors files, through the independent
struct + json implementation of the format in test_safetensors.py (python3-safetensors
is not packaged here).  Used by test_models.py and test_optim.py to hand weights and
inputs to cfx and to read back what cfx wrote."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_safetensors import py_read, py_write  # noqa: E402

TO_ST = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.int64: 'I64',
         torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}
assert sys.byteorder == 'little', 'safetensors is little-endian; so must the host be here'
FROM_ST = {'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'I64': np.int64,
           'I32': np.int32, 'U8': np.uint8, 'BOOL': np.bool_}


def save(path, tensors, metadata=None):
    """tensors: {name: torch tensor}; written in name order."""
    entries = []
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        entries.append((name, TO_ST[t.dtype], list(t.shape), t.numpy().tobytes()))
    with open(path, 'wb') as f:
        f.write(py_write(entries, metadata))


def load(path):
    """-> {name: torch tensor}, {metadata key: value}."""
    with open(path, 'rb') as f:
        raw = f.read()
    _, _, header, blobs = py_read(raw)
    out = {}
    for name, (dtype, shape, data) in blobs.items():
        out[name] = torch.from_numpy(np.frombuffer(data, dtype=FROM_ST[dtype]).copy()).reshape(shape)
    return out, header.get('__metadata__', {})
