"""`cfx data import` of parquet shards against the manifests their independent writer
(DuckDB or arrow-rs via parquet-wasm, tests/fixtures/parquet/make_fixtures.mjs) wrote:
every row with an image lands in the store with the same bytes (sha256), label,
generator (model_name for generated images, real_source for reals) and architecture,
read back with h5py.  Also: a shard without the required columns is refused naming
the column, and several shards import into one store."""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, 'tests', 'fixtures', 'parquet')
CFX = os.environ.get('CFX_BIN', os.path.join(ROOT, 'build', 'cfx'))

from tally import check, summary  # noqa: E402


def decode(v):
    if v == 'N':
        return None
    if v.startswith('x:'):
        return bytes.fromhex(v[2:])
    if v.startswith('s:'):
        _, n, sha = v.split(':')
        return ('sha', int(n), sha)
    return v


def manifest(tsv):
    cols, rows = [], []
    for line in open(tsv, encoding='utf-8'):
        parts = line.rstrip('\n').split('\t')
        if parts[0] == 'column':
            cols.append(parts[1])
        elif parts[0] == 'row':
            rows.append(dict(zip(cols, [decode(v) for v in parts[1:]])))
    return cols, rows


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def main():
    shards = [p for p in sorted(glob.glob(os.path.join(FIX, '*.parquet')))
              if 'image_data' in manifest(p[:-8] + '.tsv')[0] and 'label' in manifest(p[:-8] + '.tsv')[0]]
    check(len(shards) >= 4, f'enough Community-Forensics-shaped fixtures ({len(shards)})')
    with tempfile.TemporaryDirectory() as tmp:
        expected = []
        for shard in shards:
            _, rows = manifest(shard[:-8] + '.tsv')
            store = os.path.join(tmp, os.path.basename(shard) + '.h5')
            r = subprocess.run([CFX, 'data', 'import', shard, '--out', store], capture_output=True, text=True)
            check(r.returncode == 0, f'{os.path.basename(shard)} imports: {r.stderr.strip()}')
            if r.returncode != 0:
                continue
            with h5py.File(store, 'r') as f:
                off = f['images/offset'][:]
                raw = f['images/bytes'][:]
                names = [s(x) for x in f['images/name'][:]]
                gens = [s(x) for x in f['generators/name'][:]]
                archs = [s(x) for x in f['generators/architecture'][:]]
                by_name = {n: i for i, n in enumerate(names)}
                want = [row for row in rows if row.get('image_data') is not None and row.get('label') in ('0', '1')]
                expected.extend(want)
                check(len(names) == len(want), f'{shard}: {len(names)} images stored, {len(want)} rows with images')
                for row in want:
                    name = s(row['image_name'])
                    i = by_name.get(name)
                    if i is None:
                        check(False, f'{shard}: row {name} missing')
                        continue
                    data = raw[off[i]:off[i + 1]].tobytes()
                    img = row['image_data']
                    ok = hashlib.sha256(data).hexdigest() == img[2] and len(data) == img[1] if isinstance(img, tuple) \
                        else data == img
                    check(ok, f'{shard}: bytes of {name}')
                    label = int(row['label'])
                    check(int(f['images/label'][i]) == label, f'{shard}: label of {name}')
                    g = int(f['images/generator'][i])
                    if label == 1:
                        check(gens[g] == s(row.get('model_name') or b'unknown'), f'{shard}: generator of {name}')
                        check(archs[g] == s(row.get('architecture') or b'unknown'), f'{shard}: architecture of {name}')
                    else:
                        check(gens[g] == s(row.get('real_source') or b'real') and archs[g] == 'real',
                              f'{shard}: real source of {name}')
        # all shards into one store
        store = os.path.join(tmp, 'all.h5')
        r = subprocess.run([CFX, 'data', 'import', *shards, '--out', store], capture_output=True, text=True)
        check(r.returncode == 0, 'all shards import into one store')
        if r.returncode == 0:
            with h5py.File(store, 'r') as f:
                check(len(f['images/label']) == len(expected), 'one store holds every shard\'s images')
        # a folder of shards, as the hub's download leaves them, with the layout detected
        folder = os.path.join(tmp, 'data')
        os.makedirs(folder)
        for shard in shards:
            shutil.copy(shard, folder)
        store = os.path.join(tmp, 'folder.h5')
        r = subprocess.run([CFX, 'data', 'import', folder, '--out', store], capture_output=True, text=True)
        check(r.returncode == 0 and 'layout parquet' in r.stdout, f'a folder of shards imports: {r.stdout}{r.stderr}')
        if r.returncode == 0:
            with h5py.File(store, 'r') as f:
                check(len(f['images/label']) == len(expected), 'the folder\'s store holds every shard\'s images')
                check(f.attrs['pairing'] in (b'deal', 'deal'), 'Community Forensics stores deal their reals out')
        # a parquet file without image_data
        other = [p for p in sorted(glob.glob(os.path.join(FIX, '*.parquet'))) if p not in shards]
        if other:
            r = subprocess.run([CFX, 'data', 'import', other[0], '--out', os.path.join(tmp, 'x.h5')],
                               capture_output=True, text=True)
            check(r.returncode != 0 and 'no column' in r.stderr and os.path.basename(other[0]) in r.stderr,
                  f'a shard without the dataset\'s columns is refused by name: {r.stderr.strip()}')
            check(not os.path.exists(os.path.join(tmp, 'x.h5')), 'and no store is left behind')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
