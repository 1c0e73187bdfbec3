"""Labelling windows with a model: which blocks need it, and writing their
components, cluster, distance and per-block label counts to
``analysis/<name>/<station>``.

Chunks are the station group's blocks, and shards its shards (``shard_blocks``):
one label task per shard. A block is labelled again when its
ledger stamp differs from the one recorded when it was labelled (its block was
written since), so an analysis follows its store's updates. What to label is
found from the two stamp arrays and array shapes alone, and only those blocks
are read and written: an analysis run on a store grown by a day costs the
day, not the store (README, "Analysis").
"""

from __future__ import annotations

import numpy as np
import zarr

from ..store.access import zarr_store
from .model import Model
from .stations import StationInput


def _analysis_group(path: str, name: str, key: str) -> zarr.Group | None:
    from ..store.analysis_writer import AnalysisWriter

    return AnalysisWriter(path).station_group(name, key, mode="r")


def chunks_to_label(path: str, name: str, s: StationInput) -> list[int]:
    """Blocks of station ``s`` to label: those with windows past the labelled end, and earlier ones
    whose ledger stamp differs from the one recorded when they were labelled (their block was
    written since: computed, recomputed from new data, or failed); every block when the analysis
    recorded no stamps (written before they existed). Reads the analysis's ``block_stamp`` and
    array metadata only."""
    nchunks = -(-s.n // s.chunk)
    g = _analysis_group(path, name, s.key)
    if g is None or "cluster" not in g or "block_stamp" not in g:
        return list(range(nchunks))
    labelled = np.zeros(nchunks, dtype=np.int64)
    got = np.asarray(g["block_stamp"][:], dtype=np.int64)[:nchunks]
    labelled[: len(got)] = got
    n_labelled = min(int(g["cluster"].shape[0]), len(got) * s.chunk)
    # A block with windows past the labelled end (new, or the old partial last one) is labelled whole.
    ends = np.minimum((np.arange(nchunks, dtype=np.int64) + 1) * s.chunk, s.n)
    return np.flatnonzero((ends > n_labelled) | (labelled != s.stamps[:nchunks])).tolist()


def counts_missing(path: str, name: str, s: StationInput, todo: list[int]) -> list[int]:
    """Blocks outside ``todo`` whose label counts were never recorded (an analysis written before
    ``label_counts`` existed): their stored labels are counted once (:func:`count_stored`)."""
    g = _analysis_group(path, name, s.key)
    if g is None or "label_counts" in g or "cluster" not in g:
        return []
    skip = set(todo)
    return [b for b in range(-(-s.n // s.chunk)) if b not in skip]


def count_stored(path: str, name: str, s: StationInput, blocks: list[int], width: int) -> np.ndarray:
    """Label counts (block, ``width``) of the stored labels of ``blocks`` (column 0: -1)."""
    cluster = _analysis_group(path, name, s.key)["cluster"]
    out = np.zeros((len(blocks), width), dtype=np.int64)
    for i, b in enumerate(blocks):
        out[i] = np.bincount(np.asarray(cluster[b * s.chunk:(b + 1) * s.chunk]) + 1, minlength=width)
    return out


def _label_shard(path: str, name: str, key: str, model: Model, perm: list[int], order_2: bool,
                 blocks: list[tuple[int, int, int, bool]], chunk: int, shard: int) -> list[np.ndarray]:
    """Label blocks ``blocks`` (``(block, k0, k1, complete)``, sorted, all in one shard) of station
    ``key`` and write them, consecutive blocks in one region write (a task); returns each block's
    label counts (column 0: -1)."""
    from ..store.analysis_writer import AnalysisWriter
    from ..store.ledger import consecutive

    writer = AnalysisWriter(path)
    n_features = model.unmixing.shape[1]
    k = model.unmixing.shape[0]
    by_block = {b: (k0, k1, complete) for b, k0, k1, complete in blocks}
    g = zarr.open_group(zarr_store(path), path=key, mode="r", use_consolidated=False)
    counts = []
    for run in consecutive(by_block):
        outs = []
        for b in run:
            k0, k1, complete = by_block[b]
            if complete:
                parts = [np.asarray(g["order_1"][k0:k1])[:, perm, :].reshape(k1 - k0, -1)]
                if order_2:
                    parts.append(np.asarray(g["order_2"][k0:k1])[:, perm, :, :].reshape(k1 - k0, -1))
                raw = np.concatenate(parts, axis=1).astype(np.float64)
            else:
                # The ledger, not the values, says which windows hold results (a failed block of a store
                # written before failures cleared their data still holds its old numbers): none read.
                raw = np.full((k1 - k0, n_features), np.nan)
            # Block by block, as the model was always applied: the labels never depend on the grouping.
            out = model.apply(raw)
            outs.append(out)
            counts.append(np.bincount(out[:, k].astype(np.int64) + 1, minlength=len(model.centroids) + 1))
        writer.write_blocks(name, key, by_block[run[0]][0], chunk, shard, np.concatenate(outs, axis=0))
    return counts


def apply_model(writer, name: str, model: Model, s: StationInput, chunks: list[int]) -> tuple[int, np.ndarray]:
    """Label blocks ``chunks`` of station ``s`` with ``model`` and write them through ``writer`` (a
    :class:`~scatflow.store.analysis_writer.AnalysisWriter`), one task per shard of the station
    group (all of that shard's blocks to label; Dask: the cluster when one is connected); returns
    the windows written and each block's label counts (one row per block of ``sorted(chunks)``,
    clusters + 1 columns; column 0 counts -1). Counts and stamps are the caller's to record."""
    import dask

    width = len(model.centroids) + 1
    if not chunks:
        return 0, np.zeros((0, width), dtype=np.int64)
    shard = s.shard
    writer.prepare_windows(name, s.key, s.n, s.chunk, shard, model.unmixing.shape[0], s.times_ns, chunks)
    perm = s.permutation(model.layout)
    shared = dask.delayed(model)  # one key: the model is sent once, not with every task
    per_shard: dict[int, list] = {}
    written = 0
    for b in sorted(chunks):
        k0, k1 = b * s.chunk, min((b + 1) * s.chunk, s.n)
        per_shard.setdefault(b // shard, []).append((b, k0, k1, bool(s.complete is None or s.complete[b])))
        written += k1 - k0
    # One task per shard: Zarr loses data when two writers write parts of one shard at once.
    tasks = [dask.delayed(_label_shard, pure=False)(writer.path, name, s.key, shared, perm, s.has_order_2,
                                                    blocks, s.chunk, shard)
             for _, blocks in sorted(per_shard.items())]
    counts = [c for shard_counts in dask.compute(*tasks) for c in shard_counts]
    return written, np.stack(counts).astype(np.int64)
