"""cfxresults: read cfx results files (docs/results.md) into pandas, for the notebooks.

Every notebook in this folder imports it:

    import cfxresults as cr
    RESULTS = cr.setting('CFX_RESULTS', 'runs/scaling_models/scaling_models-cpu.h5')
    runs = cr.runs(RESULTS)               # one row per run: id, experiment, preset, status, config keys, summaries
    summ = cr.summaries(RESULTS)          # one row per (run, dataset): config keys + mean_ap, mean_acc, ...
    gens = cr.evals(RESULTS)              # one row per (run, dataset, generator): eval/<dataset>
    arch = cr.eval_arch(RESULTS)          # one row per (run, dataset, architecture): eval_arch/<dataset>
    curves = cr.train(RESULTS)            # one row per (run, step): the train tables
    along = cr.curves(RESULTS)            # one row per (run, dataset, step): curve/<dataset> (iterations)
    pred = cr.predictions(RESULTS, run_id, dataset)     # score, label, generator (+ generator_name)
    cr.mean_se(summ, ['k'], ['mean_ap', 'mean_acc'])    # mean +- standard error over the other keys

A results file is read with h5py alone (read-only, no lock: cfx replaces the file
atomically, so a reader sees a complete file even while a sweep writes it). Optional
parts that a run lacks (a run still training has no eval table yet, a failed one may have
no train table) are skipped with one line on stderr saying what was left out, never an
exception; a path that is not a results file is one clear error.

Relative paths are taken from the repository root (the folder above notebooks/), so a
notebook finds `runs/...` and `docs/figures` wherever Jupyter started its kernel.
"""
import json
import math
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

# Run attributes that are bookkeeping, not results: listed after the config in runs().
_RUN_ATTRS = ('experiment', 'preset', 'status', 'device', 'seconds', 'seed', 'host', 'grid_index', 'created',
              'updated', 'start_time', 'end_time', 'slurm_job_id', 'slurm_array_task_id')

_said = set()


def note(msg):
    """One line on stderr, once per distinct message and read (a notebook shows it under the cell)."""
    if msg not in _said:
        _said.add(msg)
        print(f'cfxresults: {msg}', file=sys.stderr)


# ---- settings ---------------------------------------------------------------------------------
def resolve(path):
    """A path as given when absolute, else relative to the repository root."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else ROOT / p


def setting(env, default):
    """The environment variable `env` when set (CI points notebooks elsewhere), else `default`;
    resolved as a path (see resolve)."""
    value = os.environ.get(env)
    return resolve(value if value else default)


def figure_path(figdir, name):
    """FIGDIR/name, the folder made when missing."""
    d = resolve(figdir)
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def contents(fig):
    """What a matplotlib figure draws, per axes (in the figure's order): its title, and how many
    labelled lines, bars, filled bands (fill_between), scatters and images it holds. Lines whose
    label starts with '_' (matplotlib's unlabelled ones, error-bar caps) are not counted."""
    from matplotlib.collections import PathCollection, PolyCollection
    from matplotlib.container import BarContainer
    out = []
    for ax in fig.axes:
        out.append({
            'title': ax.get_title(),
            'lines': sum(1 for ln in ax.get_lines() if not str(ln.get_label()).startswith('_')),
            'bars': sum(len(c) for c in ax.containers if isinstance(c, BarContainer)),
            'bands': sum(1 for c in ax.collections if isinstance(c, PolyCollection)),
            'scatters': sum(1 for c in ax.collections if isinstance(c, PathCollection)),
            'images': len(ax.images),
        })
    return out


def save(fig, figdir, name, dpi=150):
    """Save a matplotlib figure as FIGDIR/name (PNG) and say where, then what it draws: one line
    'figure NAME: [{"title": ..., "lines": n, "bars": n, ...}, ...]' (contents(), as JSON), which
    tests/app/test_notebooks.py reads back."""
    path = figure_path(figdir, name)
    fig.savefig(path, dpi=dpi, bbox_inches='tight')
    print(f'saved {path}')
    print(f'figure {name}: {json.dumps(contents(fig))}')
    return path


# ---- opening ----------------------------------------------------------------------------------
def _decode(v):
    if isinstance(v, bytes):
        return v.decode('utf-8', 'replace')
    if isinstance(v, np.generic):
        return v.item()
    return v


def _open(path):
    _said.clear()            # each read says its own notes (once each)
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f'{path}: no such results file (run the experiment that writes it first; '
                                'see notebooks/index.ipynb)')
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise ValueError(f'{path}: not a readable HDF5 file ({e}); a file cut short or still being copied?') from None
    fmt = _decode(f.attrs.get('cfx_format', ''))
    if fmt != 'results':
        f.close()
        raise ValueError(f'{path}: not a cfx results file (root attribute cfx_format is {fmt!r}, expected "results")')
    return f


def _runs(f):
    """(run id, group) of every run, in the file's order (creation order for cfx files)."""
    if 'runs' not in f:
        note(f'{f.filename}: no /runs group (an empty results file)')
        return []
    out = []
    for rid in f['runs']:
        try:
            g = f['runs'][rid]
        except (KeyError, OSError) as e:
            note(f'{f.filename}: run {rid!r} cannot be read ({e}); left out')
            continue
        if isinstance(g, h5py.Group):
            out.append((rid, g))
    return out


def _json_attr(g, name):
    v = g.attrs.get(name)
    if v is None:
        return {}
    try:
        return json.loads(_decode(v))
    except (TypeError, ValueError):
        note(f'{g.name}: attribute {name!r} is not JSON; left out')
        return {}


def _flat(d, prefix=''):
    """A nested config flattened: {'a': {'b': 1}} -> {'a.b': 1}; lists become tuples (hashable)."""
    out = {}
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict):
            out.update(_flat(v, key + '.'))
        elif isinstance(v, list):
            out[key] = tuple(v)
        else:
            out[key] = v
    return out


def _about(rid, g):
    """The columns that describe a run: run id, experiment, preset, status, then its config."""
    row = {'run': rid}
    for k in ('experiment', 'preset', 'status'):
        row[k] = _decode(g.attrs.get(k, ''))
    for k, v in _flat(_json_attr(g, 'config')).items():
        row.setdefault(k, v)
    return row


def _table(ds):
    """A results table (1-d compound dataset) as a DataFrame, strings decoded."""
    df = pd.DataFrame(ds[()])
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(_decode)
    return df


def _children(g, path):
    try:
        node = g[path]
    except KeyError:
        return None
    return node if isinstance(node, h5py.Group) else None


def _select(rows, status):
    if status is None:
        return rows
    wanted = {status} if isinstance(status, str) else set(status)
    kept, left = [], {}
    for rid, g in rows:
        s = _decode(g.attrs.get('status', '')) or '(no status)'
        if s in wanted:
            kept.append((rid, g))
        else:
            left.setdefault(s, []).append(rid)
    if left:
        note(f'{sum(map(len, left.values()))} run(s) left out, not {"/".join(sorted(wanted))}: ' +
             '; '.join(f'{s}: {", ".join(ids[:5])}{" ..." if len(ids) > 5 else ""}' for s, ids in sorted(left.items())))
    return kept


# ---- what a file holds ------------------------------------------------------------------------
def datasets(path):
    """The evaluation datasets that some run of the file has an eval table of ('synth', 'cf_eval', ...)."""
    names = []
    with _open(path) as f:
        for _, g in _runs(f):
            ev = _children(g, 'eval')
            for name in (ev or []):
                if isinstance(ev[name], h5py.Dataset) and name not in names:
                    names.append(name)
    return names


def runs(path, status=None):
    """One row per run: run, experiment, preset, status, the config's keys (flattened), the other
    scalar attributes (device, seconds, final_loss, ...), and each dataset's summary as columns
    '<dataset>/<key>' (e.g. 'synth/mean_ap'). status: keep only runs of that status (or list)."""
    rows = []
    with _open(path) as f:
        for rid, g in _select(_runs(f), status):
            row = _about(rid, g)
            for k in g.attrs:
                if k not in ('config', 'summary') and k not in row:
                    row[k] = _decode(g.attrs[k])
            for ds, s in _summary_of(g).items():
                for k, v in s.items():
                    row[f'{ds}/{k}'] = v
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        note(f'{resolve(path)}: no runs' + (f' of status {status!r}' if status else ''))
    return df


def _summary_of(g):
    """{dataset: {key: value}}: the run's summary attribute, completed by its eval tables' attributes."""
    # nested parts (the per-architecture means: architectures.LatDiff.ap, ...) flattened
    out = {k: _flat(v) for k, v in _json_attr(g, 'summary').items() if isinstance(v, dict)}
    ev = _children(g, 'eval')
    for name in (ev or []):
        if isinstance(ev[name], h5py.Dataset):
            s = out.setdefault(name, {})
            for k, v in ev[name].attrs.items():
                s.setdefault(k, _decode(v))
    return out


def summaries(path, dataset=None, status='done'):
    """One row per (run, dataset): the run's columns (as runs()) plus 'dataset' and the summary
    keys (mean_ap, mean_acc, mean_auroc, ap_all, ..., nested ones flattened:
    architectures.LatDiff.ap); a summary key that is also a config key is 'summary.<key>'
    (the protocol's reals rule beside a study's config key reals). Runs without a summary yet
    are left out (said once). dataset: one name or None for all; status: 'done' by default,
    None for all."""
    rows = []
    with _open(path) as f:
        for rid, g in _select(_runs(f), status):
            s = _summary_of(g)
            if not s:
                note(f'run {rid!r} ({_decode(g.attrs.get("status", "?"))}) has no evaluation summary yet; left out')
                continue
            for ds, vals in s.items():
                if dataset is None or ds == dataset:
                    rows.append(_join(_about(rid, g), ds, vals))
    return pd.DataFrame(rows)


def _join(about, dataset, summary):
    """A run's columns, its dataset, then the summary's keys; a summary key that is also a
    config key (the protocol's 'reals' next to a study's config key reals, a table's
    eval_store next to the run's) becomes 'summary.<key>', so the run's value stays."""
    row = {**about, 'dataset': dataset}
    for k, v in summary.items():
        row['summary.' + k if k in row else k] = v
    return row


def _tables(path, group, dataset, status, what):
    frames = []
    with _open(path) as f:
        for rid, g in _select(_runs(f), status):
            node = _children(g, group)
            names = [n for n in (node or []) if isinstance(node[n], h5py.Dataset) and (dataset is None or n == dataset)]
            if not names:
                note(f'run {rid!r} ({_decode(g.attrs.get("status", "?"))}) has no {group}/'
                     f'{dataset or "<dataset>"} table ({what}); left out')
                continue
            for n in names:
                try:
                    t = _table(node[n])
                except (OSError, ValueError, TypeError) as e:
                    note(f'run {rid!r}: {group}/{n} cannot be read ({e}); left out')
                    continue
                about = {**_about(rid, g), 'dataset': n}
                # the run's columns join the table's own (a table column wins a clash)
                for k, v in about.items():
                    if k not in t.columns:
                        t[k] = [v] * len(t) if isinstance(v, tuple) else v
                frames.append(t)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    lead = [c for c in ('run', 'experiment', 'preset', 'status', 'dataset') if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]


def evals(path, dataset=None, status='done'):
    """One row per (run, dataset, generator): generator, architecture, n_real, n_fake, ap, acc,
    acc_real, acc_fake, auroc, with the run's columns (run, experiment, preset, status, dataset,
    config keys)."""
    return _tables(path, 'eval', dataset, status, 'per-generator results')


def eval_arch(path, dataset=None, status='done', fallback=True):
    """One row per (run, dataset, architecture): architecture, n_generators, ap, acc, auroc and the
    run's columns. A run without eval_arch tables (older files) has them computed from its
    per-generator table (the unweighted mean over each architecture's generators, as cfx does)
    when fallback is true."""
    df = _tables(path, 'eval_arch', dataset, status, 'per-architecture results')
    have = set(df['run']) if not df.empty else set()
    if not fallback:
        return df
    gens = evals(path, dataset, status)
    if gens.empty:
        return df
    missing = gens[~gens['run'].isin(have)]
    if missing.empty:
        return df
    note(f'{missing["run"].nunique()} run(s) without eval_arch tables: per-architecture results computed '
         'from their per-generator tables')
    keys = [c for c in missing.columns if c not in ('generator', 'architecture', 'n_real', 'n_fake', 'ap', 'acc',
                                                    'acc_real', 'acc_fake', 'auroc')]
    hashable = [k for k in keys if not missing[k].map(lambda v: isinstance(v, (list, dict))).any()]
    metrics = [m for m in ('ap', 'acc', 'auroc') if m in missing.columns]
    made = (missing.groupby(['run', 'dataset', 'architecture'], sort=False)
            .agg(n_generators=('generator', 'size'), **{m: (m, 'mean') for m in metrics}).reset_index())
    about = missing.drop_duplicates(['run', 'dataset'])[hashable]
    made = made.merge(about, on=['run', 'dataset'], how='left')
    return pd.concat([df, made], ignore_index=True) if not df.empty else made


def tables(path, group, dataset=None, status='done'):
    """One row per row of every run's table <group>/<dataset> (any table a study writes beside
    eval: 'attribution', 'attribution_generators', 'curve', ...), with the run's columns."""
    return _tables(path, group, dataset, status, f'{group} tables')


def table_attrs(path, group, dataset=None, status='done'):
    """One row per (run, dataset) of the attributes of every run's table <group>/<dataset> (a
    table's attributes are its summary), JSON lists decoded, with the run's columns (as in
    summaries(), an attribute named as a config key is 'summary.<key>')."""
    rows = []
    with _open(path) as f:
        for rid, g in _select(_runs(f), status):
            node = _children(g, group)
            for n in (node or []):
                if isinstance(node[n], h5py.Dataset) and (dataset is None or n == dataset):
                    rows.append(_join(_about(rid, g), n,
                                      {k: _maybe_json(_decode(v)) for k, v in node[n].attrs.items()}))
    return pd.DataFrame(rows)


def _maybe_json(v):
    """A JSON list or object kept as text in an attribute, decoded; anything else as it is."""
    if isinstance(v, str) and v[:1] in '[{':
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def arrays(path, run, name):
    """The arrays of one run's group `name` (an array group such as 'confusion/synth' or
    'embeddings/synth') as ({array name: numpy array}, {attribute: value, JSON decoded}), or
    None when the run has no such group (said once)."""
    with _open(path) as f:
        g = f['runs'].get(run)
        if g is None:
            raise KeyError(f'{resolve(path)}: no run {run!r}')
        node = _children(g, name)
        if node is None:
            note(f'run {run!r} has no {name} arrays')
            return None
        data = {k: node[k][()] for k in node if isinstance(node[k], h5py.Dataset)}
        attrs = {k: _maybe_json(_decode(v)) for k, v in node.attrs.items()}
    return data, attrs


def curves(path, dataset=None, status='done'):
    """One row per (run, dataset, evaluation step): the curve/<dataset> tables that a study
    evaluating along training writes (experiments/iterations.lua: step, mean_ap, mean_acc), with
    the run's columns."""
    return _tables(path, 'curve', dataset, status, 'evaluations along training')


def perturbation(dataset, clean=None):
    """(kind, level) of a perturbed evaluation's dataset name 'KIND@LEVEL' ('jpeg@50' ->
    ('jpeg', 50.0)); ('clean', None) for the name `clean` (the study's own dataset); None for
    any other name."""
    name = str(dataset)
    if clean is not None and name == clean:
        return ('clean', None)
    kind, at, level = name.rpartition('@')
    if not at or not kind:
        return None
    try:
        return (kind, float(level))
    except ValueError:
        return None


# Perturbations whose level is the stronger the lower it is (JPEG quality); every other kind
# is the stronger the higher its level.
DESCENDING_LEVELS = ('jpeg',)


def listed_order(df, column, listing=None):
    """The distinct values of df[column] in the order the preset lists them (config column
    `listing`, a list such as 'backbones' or 'train_sets'), then any others sorted."""
    present = list(dict.fromkeys(v for v in df[column].dropna()))
    order = []
    if listing and listing in df.columns:
        for v in df[listing].dropna():
            for x in (v if isinstance(v, tuple) else (v,)):
                if x in present and x not in order:
                    order.append(x)
    try:
        rest = sorted(set(present) - set(order))
    except TypeError:
        rest = [v for v in present if v not in order]
    return order + rest


def band(ax, x, y, se, label=None, color=None, marker='o-'):
    """A line with a +- SE band around it (NaN SE: no band); returns the line."""
    se = np.nan_to_num(np.asarray(se, dtype=float))
    y = np.asarray(y, dtype=float)
    line, = ax.plot(np.asarray(x), y, marker, label=label, color=color)
    ax.fill_between(np.asarray(x), y - se, y + se, alpha=0.25, color=line.get_color(), lw=0)
    return line


def train(path, status=None):
    """One row per (run, step) of every run's train table (step, epoch, loss, lr, images_per_s,
    grad_norm, ...) with the run's columns; runs without one are left out (said once)."""
    frames = []
    with _open(path) as f:
        for rid, g in _select(_runs(f), status):
            ds = g.get('train')
            if not isinstance(ds, h5py.Dataset) or ds.dtype.names is None:
                note(f'run {rid!r} ({_decode(g.attrs.get("status", "?"))}) has no train table; left out')
                continue
            t = _table(ds)
            for k, v in _about(rid, g).items():
                if k not in t.columns:
                    t[k] = [v] * len(t) if isinstance(v, tuple) else v
            frames.append(t)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    lead = [c for c in ('run', 'experiment', 'preset', 'status') if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]]


def generator_names(store_path):
    """The /generators/name and /generators/architecture of a packed store, or None when the store
    is not at hand (predictions hold the store's generator row numbers)."""
    p = resolve(store_path)
    if not p.exists():
        return None
    try:
        with h5py.File(p, 'r') as f:
            names = [_decode(v) for v in f['generators/name'][()]]
            arch = ([_decode(v) for v in f['generators/architecture'][()]]
                    if 'generators/architecture' in f else [''] * len(names))
    except (OSError, KeyError) as e:
        note(f'{p}: generator names cannot be read ({e})')
        return None
    return pd.DataFrame({'generator_name': names, 'generator_architecture': arch})


def predictions(path, run, dataset=None, embeddings=False):
    """The raw predictions of one run on one dataset (default: its first) as a DataFrame: score,
    label (1 = generated), generator (the eval store's generator id, 1-based as in cfx's Lua:
    row generator - 1 of /generators), and generator_name /
    generator_architecture when the run's eval store is at hand. embeddings=True also returns
    the [n, d] embeddings array (None when not kept): (df, emb). None when the run has none."""
    with _open(path) as f:
        g = f['runs'].get(run)
        if g is None:
            raise KeyError(f'{resolve(path)}: no run {run!r}')
        node = _children(g, 'predictions')
        names = list(node or [])
        if dataset is None and names:
            dataset = names[0]
        if dataset not in names:
            note(f'run {run!r} has no predictions/{dataset or "<dataset>"}; nothing to show')
            return (None, None) if embeddings else None
        p = node[dataset]
        cols = {k: p[k][()] for k in ('score', 'label', 'generator') if k in p and p[k].ndim == 1}
        emb = p['embeddings'][()] if embeddings and 'embeddings' in p else None
        cfg = _json_attr(g, 'config')
    df = pd.DataFrame(cols)
    store = cfg.get('eval_store')
    gen = generator_names(store) if store and 'generator' in df.columns else None
    if gen is not None:
        idx = df['generator'].to_numpy().astype(np.int64) - 1     # 1-based rows (cfx's Lua convention)
        ok = (idx >= 0) & (idx < len(gen))
        idx = np.where(ok, idx, 0)
        df['generator_name'] = np.where(ok, gen['generator_name'].to_numpy()[idx], '')
        df['generator_architecture'] = np.where(ok, gen['generator_architecture'].to_numpy()[idx], '')
    return (df, emb) if embeddings else df


# ---- statistics -------------------------------------------------------------------------------
def sem(values):
    """Standard error of the mean (sample sd / sqrt(n)) of the non-NaN values; NaN for fewer than 2,
    as cfx.metrics.mean_se."""
    v = np.asarray([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))],
                   dtype=float)
    if len(v) < 2:
        return float('nan')
    return float(v.std(ddof=1) / math.sqrt(len(v)))


def mean_se(df, by, values=('mean_ap', 'mean_acc'), check=('experiment', 'preset', 'dataset')):
    """Mean +- standard error of `values` grouped by the keys `by`, over every other key (the
    random subsets, seeds): the paper's error bars. Returns one row per group with the columns
    by..., then for each value v: v, v_se, and n (the number of non-NaN values of the first).
    A column of `check` with several values inside one group (a collected file mixing presets
    or datasets) is said once: put it in `by` to keep them apart."""
    by = [by] if isinstance(by, str) else list(by)
    values = [values] if isinstance(values, str) else list(values)
    if df is None or df.empty:
        return pd.DataFrame(columns=[*by, *(x for v in values for x in (v, v + '_se')), 'n'])
    absent = [b for b in by if b not in df.columns]
    if absent:
        raise KeyError(f'mean_se: no column {", ".join(map(repr, absent))} to group by (columns: {", ".join(df.columns)})')
    values = [v for v in values if v in df.columns]
    for c in check:
        if c in df.columns and c not in by and df.groupby(by)[c].nunique().max() > 1:
            note(f'mean_se: groups by {by} mix several values of {c!r} '
                 f'({", ".join(map(str, sorted(df[c].unique())))}); add {c!r} to the keys to keep them apart')
    rows = []
    for key, grp in df.groupby(by[0] if len(by) == 1 else by, sort=True):
        key = (key,) if len(by) == 1 else key
        row = dict(zip(by, key))
        for v in values:
            x = pd.to_numeric(grp[v], errors='coerce')
            row[v] = float(x.mean()) if x.notna().any() else float('nan')
            row[v + '_se'] = sem(x.tolist())
        row['n'] = int(pd.to_numeric(grp[values[0]], errors='coerce').notna().sum()) if values else len(grp)
        rows.append(row)
    return pd.DataFrame(rows)


def varied(df, exclude=('run', 'status', 'seconds', 'created', 'updated', 'start_time', 'end_time', 'grid_index')):
    """The config columns whose value differs between the rows (what a sweep varied)."""
    out = []
    for c in df.columns:
        if c in exclude:
            continue
        try:
            if df[c].nunique(dropna=False) > 1:
                out.append(c)
        except TypeError:
            continue
    return out


# ---- naming and ordering ------------------------------------------------------------------------
ARCHITECTURES = ('LatDiff', 'PixDiff', 'GAN', 'other', 'Commercial')


def architecture_order(names):
    """The dataset's architecture families in the paper's order, then any others sorted."""
    names = [n for n in names if isinstance(n, str)]
    return [a for a in ARCHITECTURES if a in names] + sorted(set(names) - set(ARCHITECTURES))


def stem(df, path):
    """The figures' base name: '<experiment>-<preset>' when the rows hold one of each, else the
    results file's name without .h5."""
    if df is not None and not df.empty and {'experiment', 'preset'} <= set(df.columns):
        e, p = df['experiment'].unique(), df['preset'].unique()
        if len(e) == 1 and len(p) == 1 and e[0] and p[0]:
            return f'{e[0]}-{p[0]}'
    return Path(str(path)).stem


def overview(runs_df):
    """Runs per experiment, preset and status (a DataFrame), for a first look at a file."""
    cols = [c for c in ('experiment', 'preset', 'status') if c in runs_df.columns]
    if runs_df.empty or not cols:
        return pd.DataFrame(columns=[*cols, 'runs'])
    return runs_df.groupby(cols).size().rename('runs').reset_index()
