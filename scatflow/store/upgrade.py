"""Store formats: which a store is, refusing those this version cannot use, and ``scatflow
upgrade STORE``, which rewrites a store of format 1 (scatflow 0.2) as format 2 in place.

The root attribute ``format`` says a store's format; a scatflow store without it was written
by scatflow 0.2 (format 1). :func:`check_format` is the one check every reading command passes
(:class:`scatflow.store.reader.StoreReader`) and ``scatflow run`` makes before anything starts.

The upgrade rewrites one group at a time (every array with the format-2 encodings of
:mod:`scatflow.store.encoding`, values unchanged, bit for bit) and is safe to interrupt and run
again: each new group is built whole beside the store and swapped in with two renames, as a
channel re-lay is (:mod:`scatflow.store.relay`, whose :func:`~scatflow.store.relay.recover`
finishes or undoes an interrupted swap); a group already rewritten (a station group with the
``shard_blocks`` attribute, an analysis tree with flat chunk keys) is skipped. The root's run log
is cut to format 2's summaries, the metadata consolidated, and the root attribute ``format``
written last: until then every command refuses the store and points here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types

import numpy as np
import zarr

from . import relay
from .access import zarr_store
from .encoding import ANALYSIS_GROUP, FLAT_KEYS, FORMAT, LEDGER_VARS, encoding, shard_blocks
from .summary import RUNS_KEPT, block_summary, run_log
from ..errors import StoreError

#: Keys of :func:`scatflow.store.encoding.encoding` that are Zarr array settings (the others are
#: xarray's: units, dtype).
_ZARR_KEYS = ("chunks", "shards", "compressors", "fill_value", "chunk_key_encoding")
#: Ledger arrays a format-1 group may lack (stores of early versions): created empty.
_EMPTY = {"block_done": (np.int32, 0), "block_stamp": (np.int64, 0)}


def store_format(attrs) -> int:
    """The format of a scatflow store with root attributes ``attrs`` (1 when ``format`` is absent)."""
    return attrs.get("format", 1)


def check_format(path, attrs) -> None:
    """Refuse a store whose format this version does not read or write.

    Parameters
    ----------
    path : str or PathLike
        The store, for the message.
    attrs : mapping
        The root group's attributes (``format``, ``scatflow``).

    Raises
    ------
    StoreError
        One line: format 1, with the command that upgrades it; a newer format.
    """
    path = os.fspath(path)
    fmt = store_format(attrs)
    if fmt == FORMAT:
        return
    if fmt == 1:
        raise StoreError(f"{path}: store format 1 (scatflow 0.2); run: scatflow upgrade {path}")
    from .. import __version__

    raise StoreError(f"{path}: store format {fmt!r}, written by a newer scatflow (scatflow {__version__} reads "
                     f"format {FORMAT}); install a newer scatflow to read it")


@dataclasses.dataclass
class Upgraded:
    """What :func:`upgrade` did: the groups rewritten now, those found already rewritten (an
    earlier, interrupted upgrade), runs kept of those logged, and whether the store was current."""

    path: str
    rewritten: list
    found: list
    runs: tuple = (0, 0)
    current: bool = False

    def text(self) -> str:
        """One line for the command line."""
        if self.current:
            return f"{self.path}: store format {FORMAT} already; nothing to do"
        line = f"{self.path}: upgraded to store format {FORMAT} ({len(self.rewritten)} group(s) rewritten"
        if self.found:
            line += f", {len(self.found)} already by an earlier upgrade"
        return line + f"; run log: {self.runs[0]} of {self.runs[1]} run(s) kept, as summaries)"


def upgrade(path, log=lambda msg: None) -> Upgraded:
    """Rewrite the store at ``path`` in store format 2, in place (``scatflow upgrade STORE``).

    Takes the store's writer lock. Safe to interrupt at any point and run again; the store then
    ends as an uninterrupted upgrade leaves it.

    Parameters
    ----------
    path : str or PathLike
        The store directory.
    log : callable(str)
        Told each group as it is rewritten.

    Raises
    ------
    StoreError
        Not a scatflow store; a store of a newer format; the writer lock is held.
    """
    from ..location import is_url

    if is_url(path):
        raise StoreError(f"{path}: scatflow upgrade works on a local store: copy it to disk, upgrade, copy it back")
    from .lock import writer_lock
    from .writer import Store, group_names, open_root

    path = os.fspath(path)
    root, meta = open_root(path)
    if store_format(root.attrs) != 1:
        check_format(path, root.attrs)
        return Upgraded(path, [], [], current=True)
    with writer_lock(path, "upgrade"):
        relay.recover(path)
        store = Store(path)
        store.drop_consolidated()
        root = zarr.open_group(zarr_store(path), mode="r", use_consolidated=False)
        shard = shard_blocks(float(meta["design"]["block_s"]))
        done = Upgraded(path, [], [])
        for key in group_names(root) + ([ANALYSIS_GROUP] if ANALYSIS_GROUP in root else []):
            group = root[key]
            if _rewritten(group):
                done.found.append(key)
                continue
            log(f"rewriting {key}")
            build = _build_analysis if key == ANALYSIS_GROUP else _build_station
            build(group, relay.new_dir(path, key), shard)
            relay.swap(path, key)
            done.rewritten.append(key)
        _write_runs(path)
        store.consolidate()
        _write_format(path)
        done.runs = (min(len(meta.get("runs") or []), RUNS_KEPT), len(meta.get("runs") or []))
    return done


def _rewritten(group: zarr.Group) -> bool:
    """Whether a group is in format 2 already (an interrupted upgrade swapped it in)."""
    if "shard_blocks" in group.attrs:
        return True
    arrays = list(_walk_arrays(group))
    return bool(arrays) and group.basename == ANALYSIS_GROUP and all(_flat(a) for _, a in arrays)


def _walk_arrays(group: zarr.Group, prefix: str = ""):
    for name, arr in sorted(group.arrays()):
        yield prefix + name, arr
    for name, sub in sorted(group.groups()):
        yield from _walk_arrays(sub, f"{prefix}{name}/")


def _flat(arr: zarr.Array) -> bool:
    return getattr(arr.metadata.chunk_key_encoding, "separator", "/") == "."


# -- station groups -----------------------------------------------------------------------------
def _build_station(group: zarr.Group, new: str, shard: int) -> None:
    """Write station group ``group`` into the empty directory ``new`` in format 2: every array
    with :func:`~scatflow.store.encoding.encoding`'s settings, the ledger completed with
    ``block_summary`` (and any ledger array an early version did not write), ``shard_blocks``."""
    arrays = dict(group.arrays())
    chunk = int(group.attrs.get("block_windows") or arrays["coverage"].chunks[0])
    n_blocks = int(arrays["block_done"].shape[0])
    dims = {name: (tuple(a.metadata.dimension_names or ()), a.shape) for name, a in arrays.items()}
    for name in LEDGER_VARS:
        dims.setdefault(name, (("block",), (n_blocks,)))
    shim = types.SimpleNamespace(variables={n: types.SimpleNamespace(dims=d, shape=s) for n, (d, s) in dims.items()})
    enc = encoding(shim, chunk, shard)
    out = zarr.open_group(new, mode="w-", zarr_format=3, attributes={**dict(group.attrs), "shard_blocks": shard})
    for name in sorted(dims):
        spec = {k: v for k, v in enc[name].items() if k in _ZARR_KEYS}
        if name in arrays:
            src = arrays[name]
            dest = out.create_array(name, shape=src.shape, dtype=src.metadata.data_type,
                                    attributes=dict(src.attrs), dimension_names=dims[name][0],
                                    **{"fill_value": src.fill_value, **spec})
            _copy(src, dest, (spec.get("shards") or spec.get("chunks") or src.shape)[0])
        elif name == "block_summary":
            dest = out.create_array(name, shape=(n_blocks,), dtype=str, fill_value="", dimension_names=["block"],
                                    **spec)
            dest[:] = _summaries(group, chunk)
        else:
            kind, fill = _EMPTY.get(name, (str, ""))
            out.create_array(name, shape=(n_blocks,), dtype=kind, dimension_names=["block"],
                             **{"fill_value": fill, **spec})


def _summaries(group: zarr.Group, chunk: int) -> np.ndarray:
    """``block_summary`` of every block of a format-1 group: the summary of each done block, ""."""
    from ..inputs.grid import Blocks

    blocks = Blocks(chunk, int(group["time"].shape[0]))
    done = np.asarray(group["block_done"][:])
    channels = [str(c) for c in group["channel"][:]]
    out = np.full(len(done), "", dtype=object)
    for b in np.flatnonzero(done > 0):
        if b < blocks.count:
            a, e = blocks.range(int(b))
            out[b] = block_summary(channels, group["coverage"][a:e], group["order_1"][a:e])
    return out


def _copy(src: zarr.Array, dest: zarr.Array, step: int) -> None:
    """Copy every value of ``src`` into ``dest`` (same shape), ``step`` rows at a time (a shard:
    each shard is written whole, once)."""
    if src.ndim == 0 or src.shape[0] == 0:
        dest[...] = src[...]
        return
    for k in range(0, src.shape[0], max(int(step), 1)):
        dest[k : k + step] = src[k : k + step]


# -- the analysis tree --------------------------------------------------------------------------
def _build_analysis(group: zarr.Group, new: str, shard: int) -> None:
    """Write the tree ``analysis`` into the empty directory ``new`` as ``scatflow analyze`` now
    writes it: groups and attributes as they are; a station's label arrays (``time``,
    ``components``, ``cluster``, ``distance``, ``block_stamp``, ``label_counts``) with
    :func:`~scatflow.store.analysis_writer.label_encoding` (chunks of a block sharded by
    ``shard`` blocks, ``time`` in chunks of 256 blocks, flat keys); the models' arrays with their
    chunks and codecs and flat keys (as ``to_zarr`` writes them); every value bit for bit."""
    _write_group_meta(group, new)
    for name, src in _walk_arrays(group):
        where = os.path.join(new, *name.split("/"))
        for parent in _parents(name):
            if not os.path.isfile(os.path.join(new, *parent.split("/"), "zarr.json")):
                _write_group_meta(group[parent], os.path.join(new, *parent.split("/")))
        dims = tuple(src.metadata.dimension_names or ())
        if dims[:1] in (("time",), ("block",)):
            _label_array(src, where, dims, shard)
        else:
            _flat_array(src, where)


def _label_array(src: zarr.Array, where: str, dims: tuple, shard: int) -> None:
    """``src``, an array of an analysis station group along ``time`` or ``block``, rewritten at
    directory ``where`` with the settings a fresh analysis creates it with."""
    from .analysis_writer import label_encoding

    # format 1 chunked every array along time by one block (the station group's block_windows)
    chunk = int(src.chunks[0]) if dims[0] == "time" else 1
    spec = label_encoding(os.path.basename(where), dims, src.shape, chunk, shard)
    parent = zarr.open_group(os.path.dirname(where), mode="r+", zarr_format=3)
    dest = parent.create_array(os.path.basename(where), shape=src.shape, dtype=src.metadata.data_type,
                               fill_value=src.fill_value, attributes=dict(src.attrs), dimension_names=dims, **spec)
    _copy(src, dest, (spec.get("shards") or spec["chunks"])[0])


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _write_group_meta(group: zarr.Group, where: str) -> None:
    os.makedirs(where, exist_ok=True)
    zarr.open_group(where, mode="w", zarr_format=3, attributes=dict(group.attrs))


def _flat_array(src: zarr.Array, where: str) -> None:
    """``src`` rewritten at directory ``where``: its metadata with flat chunk keys, its values."""
    meta = src.metadata.to_dict()
    meta["chunk_key_encoding"] = FLAT_KEYS
    os.makedirs(where)
    with open(os.path.join(where, "zarr.json"), "w") as fh:
        json.dump(meta, fh, indent=2, default=_json_default)
    dest = zarr.open_array(os.path.dirname(where), path=os.path.basename(where), mode="r+", zarr_format=3)
    _copy(src, dest, src.chunks[0] if src.ndim else 1)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


# -- the root -----------------------------------------------------------------------------------
def _edit_root(path: str, edit) -> None:
    """Apply ``edit`` to the root's attributes (a dict) in its ``zarr.json``, replaced atomically:
    a kill leaves the old root or the new one, and the consolidated metadata stays."""
    meta = os.path.join(path, "zarr.json")
    with open(meta) as fh:
        doc = json.load(fh)
    edit(doc.setdefault("attributes", {}))
    tmp = meta + ".upgrade"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.replace(tmp, meta)


def _write_runs(path: str) -> None:
    """The root run log as format 2 keeps it: the last runs, as summaries (idempotent)."""

    def edit(attrs):
        attrs["scatflow"] = {**attrs["scatflow"], "runs": run_log(attrs["scatflow"].get("runs") or [])}

    _edit_root(path, edit)


def _write_format(path: str) -> None:
    """The root attribute ``format``: the last write of an upgrade."""
    _edit_root(path, lambda attrs: attrs.update(format=FORMAT))
