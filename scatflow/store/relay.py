"""Re-laying a station group along ``channel``: how a channel new to a station joins its group.

A fresh run lays a station's channels out in sorted order, so a group that
held ``HHN, HHZ`` must hold ``HHE, HHN, HHZ`` once ``HHE`` appears, with every
array along ``channel`` (``order_*``, ``coverage``, ``channel`` and the
inventory's coordinates) re-laid; the earlier windows hold what a fresh run
computes for a channel without data there: coverage 0 and NaN coefficients
(in every block that was written), nothing in blocks never written. This is
part of the store layer (:meth:`scatflow.store.writer.Store.add_channels` calls it;
only the driver does, before any task runs).

Nothing is lost if the driver is killed at any point. The new group is built
whole in ``STORE.relay/KEY.new``, beside the store (inside it, Zarr would list
it as a group); then two renames swap it in, the old group passing through
``STORE.relay/KEY.old``, and the work directory is deleted. :func:`recover`
(every run calls it before planning) finishes or undoes an interrupted swap:
a group found at its place is the truth (the leftovers go), and a group found
only in ``KEY.old`` (a kill between the two renames) is moved back, so the
next run re-lays it again from the untouched original.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import zarr

from ..errors import StoreError


def work_dir(store_path: str) -> str:
    """``STORE.relay``, beside the store (as ``STORE.lock`` is)."""
    return os.path.abspath(os.fspath(store_path)).rstrip(os.sep) + ".relay"


def recover(store_path: str) -> list[str]:
    """Finish or undo re-lays interrupted by a killed driver; the station keys restored.

    A ``KEY.old`` whose group is absent from the store is moved back (the
    original, untouched); any other leftover is deleted.
    """
    work = work_dir(store_path)
    if not os.path.isdir(work):
        return []
    restored = []
    for name in sorted(os.listdir(work)):
        if name.endswith(".old"):
            key = name[: -len(".old")]
            target = os.path.join(store_path, key)
            if not os.path.exists(target):
                os.rename(os.path.join(work, name), target)
                restored.append(key)
    shutil.rmtree(work)
    return restored


def relay_group(store_path: str, key: str, channels: list[str], coords: dict | None = None) -> None:
    """Re-lay group ``key`` of the store at ``store_path`` to hold ``channels`` along ``channel``.

    Parameters
    ----------
    store_path : str
        The store directory.
    key : str
        The station group, ``NET.STA.LOC``.
    channels : list of str
        The new channel axis: every channel the group holds, and the new ones, in order.
    coords : dict, optional
        Name -> one value per channel of ``channels`` for coordinates along ``channel``
        (``latitude``... from the inventory); other channel arrays keep their values and
        give new channels their fill value.

    Raises
    ------
    StoreError
        When ``channels`` lacks one of the group's channels, or an array is chunked along
        ``channel`` (a store this version did not write).
    """
    recover(store_path)
    src = os.path.join(store_path, key)
    group = zarr.open_group(store_path, path=key, mode="r", use_consolidated=False)
    stored = [str(c) for c in group["channel"][:]]
    lost = [c for c in stored if c not in channels]
    if lost:
        raise StoreError(f"internal: re-laying {key} would drop channel(s) {', '.join(lost)}")
    where = np.array([channels.index(c) for c in stored], dtype=np.int64)
    new = new_dir(store_path, key)
    along = {name: arr for name, arr in group.arrays() if "channel" in (arr.metadata.dimension_names or ())}
    for name in sorted(os.listdir(src)):
        if name in along:
            values = channels if name == "channel" else (coords or {}).get(name)
            relay_array(along[name], os.path.join(src, name), os.path.join(new, name), where, len(channels), values)
        elif os.path.isdir(os.path.join(src, name)):  # the ledger, time, f1...: bytes unchanged
            shutil.copytree(os.path.join(src, name), os.path.join(new, name))
        else:
            shutil.copy2(os.path.join(src, name), new)
    _summaries_gain(new, [c for c in channels if c not in stored])
    swap(store_path, key)


def new_dir(store_path: str, key: str) -> str:
    """``STORE.relay/KEY.new``, created empty: where a replacement of group ``key`` is built
    (by a re-lay here, by :mod:`scatflow.store.upgrade`) before :func:`swap` puts it in place."""
    new = os.path.join(work_dir(store_path), f"{key}.new")
    os.makedirs(new)
    return new


def swap(store_path: str, key: str) -> None:
    """Put the group built in :func:`new_dir` in the place of group ``key`` and delete the work
    directory. Each rename is atomic; :func:`recover` handles a kill between them (the original
    passes through ``KEY.old``)."""
    work = work_dir(store_path)
    src = os.path.join(store_path, key)
    old, new = os.path.join(work, f"{key}.old"), os.path.join(work, f"{key}.new")
    os.rename(src, old)
    os.rename(new, src)
    shutil.rmtree(work)


def _summaries_gain(group_dir: str, added: list[str]) -> None:
    """Give each recorded ``block_summary`` the channels ``added``: what a fresh run records for a
    channel without data in that block (coverage 0, NaN in every window)."""
    if not added or not os.path.isdir(os.path.join(group_dir, "block_summary")):
        return
    g = zarr.open_group(os.path.dirname(group_dir), path=os.path.basename(group_dir), mode="r+",
                        use_consolidated=False)
    cells = np.asarray(g["block_summary"][:], dtype=object)
    done = np.asarray(g["block_done"][:])
    for b, text in enumerate(cells):
        if str(text):
            summary = json.loads(str(text))
            windows = int(done[b])
            for c in added:
                summary["coverage"][c], summary["nan"][c] = 0.0, windows
            summary["nan_any"] = windows
            cells[b] = json.dumps(summary, sort_keys=True)
    written = np.flatnonzero([bool(str(t)) for t in cells])
    if len(written):
        g["block_summary"].oindex[written] = cells[written]


def relay_array(arr: zarr.Array, src: str, dest: str, where: np.ndarray, n_channels: int, values=None) -> None:
    """Write ``arr`` (at the directory ``src``) re-laid along ``channel`` as a new array at ``dest``.

    The metadata is ``arr``'s as stored (codecs, fill value, attributes, dimension names), with
    the channel axis ``n_channels`` long; old channel ``i`` goes to ``where[i]``. Chunk by chunk
    along the other axes, only the chunks ``arr`` has are written, so a block never written
    stays unwritten; in the others a new channel holds coverage 0 (``coverage``) or the fill
    value. ``values`` (one per channel) replaces a one-dimensional array's content.
    """
    dims = list(arr.metadata.dimension_names)
    axis = dims.index("channel")
    with open(os.path.join(src, "zarr.json")) as fh:
        meta = json.load(fh)
    grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
    for i, (size, chunk) in enumerate(zip(arr.shape, grid)):
        if i != axis and dims[i] != "time" and size != chunk:
            raise StoreError(f"{arr.path}: chunked along {dims[i]} ({chunk} of {size}); cannot add a channel")
    if grid[axis] != arr.shape[axis]:
        raise StoreError(f"{arr.path}: chunked along channel ({grid[axis]} of {arr.shape[axis]}); "
                         "cannot add a channel")
    meta["shape"][axis] = grid[axis] = n_channels
    for codec in meta.get("codecs", []):
        if codec.get("name") == "sharding_indexed":  # format 2: the inner chunks span the channels too
            codec["configuration"]["chunk_shape"][axis] = n_channels
    os.makedirs(dest)
    with open(os.path.join(dest, "zarr.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    out = zarr.open_array(os.path.dirname(dest), path=os.path.basename(dest), mode="r+", zarr_format=3)
    fill = 0.0 if arr.basename == "coverage" else out.fill_value
    if values is not None:
        out[:] = np.asarray(values, dtype=out.dtype if out.dtype.kind in "fiu" else object)
        return
    step = grid[0] if dims[0] == "time" else arr.shape[0]
    for k in range(0, arr.shape[0], step):
        chunk_index = (k // step,) + (0,) * (arr.ndim - 1)
        if not chunk_present(arr, chunk_index):
            continue
        part = np.asarray(arr[k : k + step])
        shape = list(part.shape)
        shape[axis] = n_channels
        laid = np.full(shape, fill, dtype=part.dtype)
        if arr.basename == "coverage":
            # Windows never written (NaN on every channel: a block not computed, within a shard
            # that holds computed ones) stay unwritten for the new channel too.
            unwritten = np.isnan(part).all(axis=axis)
            laid[unwritten] = np.nan
        index = [slice(None)] * part.ndim
        index[axis] = where
        laid[tuple(index)] = part
        out[k : k + step] = laid


def chunk_present(arr: zarr.Array, coords: tuple[int, ...]) -> bool:
    """Whether the chunk of ``arr`` at chunk coordinates ``coords`` is stored (Zarr writes none
    for a chunk equal to the fill value: absence is not "not computed")."""
    from zarr.core.sync import sync

    return bool(sync(arr.store.exists(f"{arr.path}/{arr.metadata.encode_chunk_key(coords)}")))
