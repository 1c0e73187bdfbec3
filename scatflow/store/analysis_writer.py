"""The writer of analysis groups (``scatflow analyze``; README "Analysis"): with
:mod:`scatflow.store.writer` and :mod:`scatflow.store.relay`, the only code
that writes a store.

Layout (zarr format 3, store format 2: flat chunk keys everywhere)::

    STORE/analysis/<name>/       attributes: the resolved [analysis] config, fit records
      mean, unmixing, ...        the joint model's arrays (no time dimension)
      NET.STA.LOC/               one group per labelled station
        components, cluster, distance   chunked by block, sharded like the station group
                                 (its ``shard_blocks``): one object per array and shard
        time                     chunks of TIME_CHUNK_BLOCKS blocks, written by the driver
        label_counts (block, label)  windows per label (-1, 0, 1, ...) of each block
        block_stamp  (block,)    the ledger stamp each block's labels were computed from
        model/                   the station's own model (one model per station)

The analysis writes under the store's writer lock; a station's labels are
written by one task per shard (never two writers on one shard: Zarr loses
data on concurrent partial shard writes), then the labelled blocks' counts
(rows replaced, never added to), then their stamps, the group's attributes
last, so an interrupted analysis is labelled again or refitted, never
trusted half written, and its counts are never those of labels not stored.

A task writing blocks into a shard that already holds labelled blocks makes
Zarr read that shard and write it again whole: the other blocks' encoded
chunks are carried over byte for byte (never decoded), so an incremental
analysis costs at most the shards its new blocks fall in (a day at 6 h blocks).
"""

from __future__ import annotations

import os

from .. import location

import numpy as np
import xarray as xr
import zarr

from ..errors import StoreError
from .access import zarr_store
from .encoding import ANALYSIS_GROUP, FLAT_KEYS, TIME_CHUNK_BLOCKS, compressor

#: Blocks per chunk of an analysis's per-block arrays (``block_stamp``, ``label_counts``): reading
#: them costs one request per 1024 blocks, and recording a new day rewrites one chunk.
BLOCK_CHUNK = 1024


def label_encoding(name: str, dims: tuple, shape: tuple, chunk: int, shard: int) -> dict:
    """The Zarr settings (``chunks``, ``shards``, ``compressors``, ``chunk_key_encoding``) of array
    ``name`` of an analysis station group: what :meth:`AnalysisWriter.prepare_windows` and
    :meth:`AnalysisWriter.write_counts` create, and what ``scatflow upgrade`` rewrites a format-1
    analysis with (so an upgraded store and a fresh one match).

    Parameters
    ----------
    name : str
        The array's name.
    dims : tuple of str
        Its dimension names.
    shape : tuple of int
        Its shape.
    chunk : int
        Windows per block (the station group's ``block_windows``).
    shard : int
        Blocks per shard (the station group's ``shard_blocks``).
    """
    if dims[:1] == ("time",):
        if name == "time":
            return {"chunks": (chunk * TIME_CHUNK_BLOCKS,), "compressors": [compressor()],
                    "chunk_key_encoding": FLAT_KEYS}
        return {"chunks": (chunk, *shape[1:]), "shards": (chunk * shard, *shape[1:]),
                "compressors": [compressor()], "chunk_key_encoding": FLAT_KEYS}
    if dims[:1] == ("block",):
        return {"chunks": (BLOCK_CHUNK, *shape[1:]), "chunk_key_encoding": FLAT_KEYS}
    return {"chunk_key_encoding": FLAT_KEYS}


class AnalysisWriter:
    """Writes the groups ``analysis/<name>`` of the scatflow store at ``path`` (a directory)."""

    def __init__(self, path: str | os.PathLike):
        self.path = location.as_location(path)

    def group(self, name: str, key: str | None = None) -> str:
        """The group path ``analysis/<name>`` (or ``analysis/<name>/<key>`` for a station)."""
        return f"{ANALYSIS_GROUP}/{name}" + (f"/{key}" if key else "")

    def drop(self, name: str) -> None:
        """Delete the group ``analysis/<name>`` (``--refit``); the station groups are untouched."""
        path = location.join(self.path, ANALYSIS_GROUP, name)
        if location.isdir(path):
            location.rmtree(path)

    def write_model(self, name: str, key: str | None, model: xr.Dataset) -> None:
        """Write a fitted model's arrays (no time dimension) into ``analysis/<name>`` (joint) or
        ``analysis/<name>/<key>/model`` (one model per station: beside, not inside, the station's
        results, whose ``cluster`` variable would clash with the model's ``cluster`` dimension)."""
        group = self.group(name) if key is None else self.group(name, key) + "/model"
        enc = {var: {"chunk_key_encoding": FLAT_KEYS} for var in model.variables}
        model.to_zarr(zarr_store(self.path), group=group, mode="a", zarr_format=3, consolidated=False, encoding=enc)

    def set_attrs(self, name: str, attrs: dict) -> None:
        """Replace the attributes of ``analysis/<name>`` (the resolved config and fit records)."""
        # Written after the model arrays: every to_zarr call replaces the group's attributes.
        g = zarr.open_group(zarr_store(self.path), path=self.group(name), mode="r+", use_consolidated=False)
        g.attrs.clear()
        g.attrs.update(attrs)

    def station_group(self, name: str, key: str, mode: str = "r+") -> zarr.Group | None:
        """The Zarr group ``analysis/<name>/<key>`` (None when absent)."""
        try:
            return zarr.open_group(zarr_store(self.path), path=self.group(name, key), mode=mode,
                                   use_consolidated=False)
        except FileNotFoundError:
            return None

    def prepare_windows(self, name: str, key: str, n: int, chunk: int, shard: int, k: int, times_ns,
                        blocks: list[int]) -> None:
        """Make station ``key``'s label arrays hold ``n`` windows and write the ``time`` of the
        blocks about to be labelled (driver), before any label task runs.

        The first call creates ``time``, ``components`` (``k`` of them), ``cluster`` and
        ``distance`` (:func:`label_encoding`: chunks of ``chunk`` windows, shards of ``shard``
        blocks), writing metadata and all ``n`` times; later calls grow the arrays and write, whole,
        each ``time`` chunk holding one of ``blocks`` (the new windows; the chunk's other windows get
        their same values again), so a task never writes ``time`` (its chunks span many shards). ``times_ns(k0, k1)``: int64 ns of
        windows ``k0 .. k1 - 1``. Label chunks are written by :meth:`write_blocks`.
        """
        import dask.array as da

        g = self.station_group(name, key)
        if g is not None and "time" in g:
            for var in ("time", "components", "cluster", "distance"):
                arr = g[var]
                if arr.shape[0] < n:
                    arr.resize((n, *arr.shape[1:]))
            # Each time chunk holding a block to label is written whole (to the array's end), from
            # the grid: Zarr then reads nothing to merge, and the blocks' old times are rewritten with
            # the same values. Written even where a killed run already did: a run killed between the
            # resize and this write leaves those blocks unstamped, so the next one labels them.
            rows = chunk * TIME_CHUNK_BLOCKS
            for c in sorted({b // TIME_CHUNK_BLOCKS for b in blocks}):
                k0, k1 = c * rows, min((c + 1) * rows, n)
                if k0 < k1:
                    g["time"][k0:k1] = np.asarray(times_ns(k0, k1), dtype=np.int64)
            return
        rows = chunk * shard
        ds = xr.Dataset(
            {
                "components": (("time", "component"), da.zeros((n, k), chunks=(rows, k), dtype=np.float64),
                               {"long_name": "independent components (X - mean) @ unmixing.T"}),
                "cluster": (("time",), da.zeros(n, chunks=rows, dtype=np.int32),
                            {"long_name": "KMeans label, -1 = no features"}),
                "distance": (("time",), da.zeros(n, chunks=rows, dtype=np.float64),
                             {"long_name": "Euclidean distance to the cluster's centroid, component units"}),
            },
            coords={"time": np.asarray(times_ns(0, n), dtype=np.int64).astype("datetime64[ns]"),
                    "component": np.arange(k)},
        )
        enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64",
                        **label_encoding("time", ("time",), (n,), chunk, shard)},
               "component": label_encoding("component", ("component",), (k,), chunk, shard)}
        for var_name, var in ds.data_vars.items():
            enc[var_name] = label_encoding(var_name, var.dims, var.shape, chunk, shard)
        # compute=False: metadata and the coordinates; the label chunks come from the tasks.
        ds.to_zarr(zarr_store(self.path), group=self.group(name, key), mode="a", zarr_format=3, consolidated=False,
                   encoding=enc, compute=False)

    def write_blocks(self, name: str, key: str, k0: int, chunk: int, shard: int, out: np.ndarray) -> None:
        """Write consecutive blocks' labels (worker): windows ``k0 .. k0 + len(out)`` of station
        ``key``, all within one shard of ``shard`` blocks of ``chunk`` windows.

        ``out`` is :meth:`scatflow.analysis.model.Model.apply`'s (window, component + 2) array,
        the blocks' rows in order. One region write per array: a shard's blocks to label are given
        to one task, so no two writers ever share a shard.
        """
        k1 = k0 + out.shape[0]
        rows = chunk * shard
        if k0 % chunk or k1 <= k0 or k0 // rows != (k1 - 1) // rows:
            raise StoreError(f"internal: analysis region {k0}..{k1} is not block-aligned within one shard "
                             f"of {rows} windows")
        g = self.station_group(name, key)
        k = out.shape[1] - 2
        g["components"][k0:k1] = out[:, :k]
        g["cluster"][k0:k1] = out[:, k].astype(np.int32)
        g["distance"][k0:k1] = out[:, k + 1]

    def _per_block(self, g: zarr.Group, var: str, n_blocks: int, width: int | None, dtype) -> zarr.Array:
        """Array ``var`` (block[, label]) of ``g``, created or grown to ``n_blocks`` rows."""
        shape = (n_blocks,) if width is None else (n_blocks, width)
        if var not in g:
            dims = ("block",) if width is None else ("block", "label")
            # chunk and shard sizes do not matter to per-block arrays (no time dimension)
            return g.create_array(var, shape=shape, dtype=dtype, fill_value=0, dimension_names=list(dims),
                                  **label_encoding(var, dims, shape, 1, 1))
        arr = g[var]
        if arr.shape[0] < n_blocks:
            arr.resize((n_blocks, *arr.shape[1:]))
        return arr

    def write_counts(self, name: str, key: str, blocks: list[int], counts: np.ndarray, n_blocks: int) -> None:
        """Record the windows per label of blocks ``blocks`` of station ``key`` (driver, after their labels):
        ``label_counts`` (block, label), column ``j`` counting label ``j - 1`` (column 0: -1, no features).

        A block's row is replaced, never added to: a block labelled again after an interrupted
        analysis is counted once.
        """
        from .ledger import consecutive

        if not blocks:
            return
        g = self.station_group(name, key)
        counts = np.asarray(counts, dtype=np.int64).reshape(len(blocks), -1)
        arr = self._per_block(g, "label_counts", n_blocks, counts.shape[1], np.int64)
        if "long_name" not in arr.attrs:
            arr.attrs["long_name"] = "windows per label in each block; column j counts label j - 1 (-1: no features)"
        row = {b: i for i, b in enumerate(blocks)}
        for run in consecutive(blocks):
            arr[run[0]:run[-1] + 1] = counts[[row[b] for b in run]]

    def write_stamps(self, name: str, key: str, blocks: list[int], stamps: np.ndarray) -> None:
        """Record, for blocks ``blocks`` of station ``key``, the ledger stamp (``block_stamp``) their
        labels and counts in ``analysis/<name>/<key>`` were computed from (driver, after both);
        ``stamps`` holds every block's (its length is the station's block count)."""
        from .ledger import consecutive

        if not blocks:
            return
        g = self.station_group(name, key)
        stamps = np.asarray(stamps, dtype=np.int64)
        arr = self._per_block(g, "block_stamp", len(stamps), None, np.int64)
        for run in consecutive(blocks):
            arr[run[0]:run[-1] + 1] = stamps[run[0]:run[-1] + 1]
