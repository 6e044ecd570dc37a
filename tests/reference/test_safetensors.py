"""cfx's safetensors reader and writer against an independent implementation of the
spec (https://github.com/huggingface/safetensors#format) written here with struct and
json: python3-safetensors is not packaged for this system.  Python writes files that
cfx must read (names, dtypes, shapes, bytes, metadata), cfx writes files that Python
must parse (layout, JSON, padding, offsets, bytes), and cfx must refuse files that the
spec forbids.  libcfx is driven through ctypes ($CFX_LIB)."""
import ctypes as C
import json
import os
import struct
import sys
import tempfile

from tally import check, summary  # noqa: E402


# The spec's dtypes: name -> (struct code for test values, size in bytes).
DTYPES = {'F64': ('d', 8), 'F32': ('f', 4), 'F16': ('e', 2), 'BF16': ('H', 2), 'I64': ('q', 8),
          'I32': ('i', 4), 'I16': ('h', 2), 'I8': ('b', 1), 'U8': ('B', 1), 'BOOL': ('?', 1),
          'U16': ('H', 2), 'U32': ('I', 4), 'U64': ('Q', 8), 'F8_E4M3': ('B', 1), 'F8_E5M2': ('B', 1)}
CFX_ORDER = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'U16', 'U32', 'U64',
             'F8_E4M3', 'F8_E5M2']  # the CFX_SAFETENSORS_* numbering of cfx/safetensors.h


def py_write(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes); the spec's layout, header padded with
    spaces to a multiple of 8 as the reference implementation does."""
    header, off, blobs = {}, 0, []
    if metadata is not None:
        header['__metadata__'] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + b''.join(blobs)


def py_read(raw):
    (n,) = struct.unpack_from('<Q', raw, 0)
    hb = raw[8:8 + n]
    header = json.loads(hb.decode())
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        out[name] = (info['dtype'], info['shape'], data[b:e])
    return n, hb, header, out


def load_lib():
    lib = C.CDLL(os.environ.get('CFX_LIB', 'build/libcfx.so'))
    P, I32, I64, S = C.c_void_p, C.c_int32, C.c_int64, C.c_char_p
    for name, res, args in [
            ('cfx_safetensors_open', C.c_int, [S, C.POINTER(P)]),
            ('cfx_safetensors_open_memory', C.c_int, [S, I64, S, C.POINTER(P)]),
            ('cfx_safetensors_close', None, [P]),
            ('cfx_safetensors_count', I32, [P]),
            ('cfx_safetensors_find', I32, [P, S]),
            ('cfx_safetensors_name', S, [P, I32]),
            ('cfx_safetensors_dtype', I32, [P, I32]),
            ('cfx_safetensors_ndim', I32, [P, I32]),
            ('cfx_safetensors_shape', C.POINTER(I64), [P, I32]),
            ('cfx_safetensors_data', P, [P, I32, C.POINTER(I64)]),
            ('cfx_safetensors_num_metadata', I32, [P]),
            ('cfx_safetensors_metadata_key', S, [P, I32]),
            ('cfx_safetensors_metadata_value', S, [P, I32]),
            ('cfx_safetensors_write', C.c_int, [S, I32, P, P, P, P, P, I32, P, P]),
            ('cfx_last_error', S, [])]:
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


def cfx_read(lib, path):
    """Everything cfx reports about the file, or (rc, message) on failure."""
    h = C.c_void_p()
    rc = lib.cfx_safetensors_open(path.encode(), C.byref(h))
    if rc != 0:
        return rc, lib.cfx_last_error().decode(errors='replace')
    tensors = []
    for i in range(lib.cfx_safetensors_count(h)):
        nd = lib.cfx_safetensors_ndim(h, i)
        shp = lib.cfx_safetensors_shape(h, i)
        nb = C.c_int64()
        p = lib.cfx_safetensors_data(h, i, C.byref(nb))
        tensors.append((lib.cfx_safetensors_name(h, i).decode(), CFX_ORDER[lib.cfx_safetensors_dtype(h, i)],
                        [shp[d] for d in range(nd)], C.string_at(p, nb.value) if nb.value else b''))
        check(lib.cfx_safetensors_find(h, tensors[-1][0].encode()) == i, 'find %r' % tensors[-1][0])
    meta = {lib.cfx_safetensors_metadata_key(h, i).decode(): lib.cfx_safetensors_metadata_value(h, i).decode()
            for i in range(lib.cfx_safetensors_num_metadata(h))}
    lib.cfx_safetensors_close(h)
    return 0, tensors, meta


def cfx_write(lib, path, tensors, metadata):
    n = len(tensors)
    names = (C.c_char_p * n)(*[t[0].encode() for t in tensors])
    dtypes = (C.c_int32 * n)(*[CFX_ORDER.index(t[1]) for t in tensors])
    shape_arrs = [(C.c_int64 * max(1, len(t[2])))(*t[2]) for t in tensors]
    shapes = (C.c_void_p * n)(*[C.cast(a, C.c_void_p) for a in shape_arrs])
    ndims = (C.c_int32 * n)(*[len(t[2]) for t in tensors])
    bufs = [C.create_string_buffer(t[3], max(1, len(t[3]))) for t in tensors]
    data = (C.c_void_p * n)(*[C.cast(b, C.c_void_p) for b in bufs])
    keys = (C.c_char_p * len(metadata))(*[k.encode() for k in metadata])
    vals = (C.c_char_p * len(metadata))(*[v.encode() for v in metadata.values()])
    return lib.cfx_safetensors_write(path.encode(), n, names, dtypes, shapes, ndims, data, len(metadata),
                                     keys, vals)


def sample_tensors():
    out = []
    for k, dt in enumerate(CFX_ORDER):
        code, size = DTYPES[dt]
        shape = [[3], [2, 2], [1, 2, 3], []][k % 4]
        count = 1
        for d in shape:
            count *= d
        if code in 'dfe':
            vals = [(-1) ** i * (i + 0.5) for i in range(count)]
        elif code == '?':
            vals = [i % 2 == 0 for i in range(count)]
        elif code in 'bhiq':
            vals = [(-1) ** i * (i * 37 % 100) for i in range(count)]
        else:
            vals = [(i * 53) % 200 for i in range(count)]
        out.append(('t%d.%s' % (k, dt.lower()), dt, shape, struct.pack('<%d%s' % (count, code), *vals)))
    out.append(('empty', 'F32', [0, 4], b''))
    out.append(('naïve "quoted"\n\\ ☃ 😀', 'U8', [2], b'\x07\x09'))
    return out


def main():
    lib = load_lib()
    meta = {'format': 'pt', 'note': 'ünïcode\t"q" \\ \x01'}
    tensors = sample_tensors()
    with tempfile.TemporaryDirectory() as tmp:
        # Python writes, cfx reads.
        p = os.path.join(tmp, 'py.safetensors')
        with open(p, 'wb') as f:
            f.write(py_write(tensors, meta))
        r = cfx_read(lib, p)
        check(r[0] == 0, 'cfx opens the Python file: %r' % (r,))
        if r[0] == 0:
            check(r[1] == [(n, d, s, b) for n, d, s, b in tensors], 'cfx sees the tensors Python wrote')
            check(r[2] == meta, 'cfx sees the metadata: %r' % (r[2],))

        # A header the reference does not write (pretty-printed, keys reordered) is still JSON.
        hdr = {name: {'shape': s, 'data_offsets': [0, 0], 'dtype': d} for name, d, s, _ in tensors[-2:-1]}
        hb = json.dumps(hdr, indent=2).encode()
        with open(p, 'wb') as f:
            f.write(struct.pack('<Q', len(hb)) + hb)
        r = cfx_read(lib, p)
        check(r[0] == 0 and r[1] == [('empty', 'F32', [0, 4], b'')], 'pretty-printed header: %r' % (r,))

        # cfx writes, Python parses.
        q = os.path.join(tmp, 'cfx.safetensors')
        rc = cfx_write(lib, q, tensors, meta)
        check(rc == 0, 'cfx_safetensors_write: %d %s' % (rc, lib.cfx_last_error()))
        with open(q, 'rb') as f:
            raw = f.read()
        n, hb, header, got = py_read(raw)
        check(n % 8 == 0 and hb == hb.rstrip(b' ') + b' ' * (len(hb) - len(hb.rstrip(b' '))), 'padding')
        check(list(header) == ['__metadata__'] + [t[0] for t in tensors], 'key order: %r' % list(header))
        check(header['__metadata__'] == meta, 'metadata in the cfx file')
        check(got == {name: (d, s, b) for name, d, s, b in tensors}, 'tensors in the cfx file')
        check(raw == py_write(tensors, meta), 'cfx file is byte-identical to the reference layout')
        check(not any(x.endswith('.tmp') for x in os.listdir(tmp)), 'no temporary file left')
        vals = struct.unpack('<3d', got['t0.f64'][2])
        check(vals == (0.5, -1.5, 2.5), 'F64 values %r' % (vals,))

        # Files the spec forbids.
        good = [('a', 'U8', [4], b'abcd'), ('b', 'F32', [1], b'wxyz')]

        def variant(mutate, data=b'abcdwxyz'):
            hdr = {'a': {'dtype': 'U8', 'shape': [4], 'data_offsets': [0, 4]},
                   'b': {'dtype': 'F32', 'shape': [1], 'data_offsets': [4, 8]}}
            mutate(hdr)
            h = json.dumps(hdr).encode()
            return struct.pack('<Q', len(h)) + h + data

        cases = {
            'offsets outside': (variant(lambda h: h['b'].update(data_offsets=[4, 12])), 'b'),
            'begin > end': (variant(lambda h: h['b'].update(data_offsets=[8, 4])), 'b'),
            'shape mismatch': (variant(lambda h: h['a'].update(shape=[5])), 'a'),
            'overlap': (variant(lambda h: h['b'].update(data_offsets=[2, 6])), 'overlaps'),
            'unknown dtype': (variant(lambda h: h['a'].update(dtype='C64')), 'C64'),
            'negative dim': (variant(lambda h: h['a'].update(shape=[-4])), 'a'),
            'float dim': (variant(lambda h: h['a'].update(shape=[4.0])), 'a'),
            'huge dims': (variant(lambda h: h['a'].update(shape=[2 ** 62, 2 ** 62])), 'a'),
            'missing key': (variant(lambda h: h['a'].pop('shape')), 'a'),
            'truncated': (py_write(good)[:-1], 'past the data'),
            'length lies': (struct.pack('<Q', 10 ** 6) + b'{}', 'past the end'),
            'length too big': (struct.pack('<Q', 2 ** 63) + b'{}', 'limit'),
            'not an object': (struct.pack('<Q', 2) + b'[]', 'expected'),
        }
        for what, (raw, needle) in cases.items():
            p = os.path.join(tmp, 'bad.safetensors')
            with open(p, 'wb') as f:
                f.write(raw)
            r = cfx_read(lib, p)
            check(r[0] < 0 and needle in r[1] and 'bad.safetensors' in r[1], '%s refused: %r' % (what, r))
        # Duplicate names need a hand-written header (json.dumps cannot make one).
        h = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'
        with open(p, 'wb') as f:
            f.write(struct.pack('<Q', len(h)) + h + b'xy')
        r = cfx_read(lib, p)
        check(r[0] < 0 and 'duplicate' in r[1] and "'a'" in r[1], 'duplicate names refused: %r' % (r,))

        try:
            import numpy as np
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            # Values of the file cfx wrote, decoded by torch, against the values Python packed.
            tdt = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'I64': torch.int64,
                   'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8,
                   'BOOL': torch.bool}
            for name, dt, shape, data in tensors:
                if dt not in tdt or not data:
                    continue
                t = torch.frombuffer(bytearray(got[name][2]), dtype=tdt[dt]).reshape(shape)
                want = np.array(struct.unpack('<%d%s' % (len(data) // DTYPES[dt][1], DTYPES[dt][0]), data))
                check(np.array_equal(t.to(torch.float64).numpy().ravel(), want.astype(np.float64)),
                      'torch reads %s of the cfx file' % name)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
