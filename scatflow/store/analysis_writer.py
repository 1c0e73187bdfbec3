"""The writer of analysis groups (``scatflow analyze``; README "Analysis"): with
:mod:`scatflow.store.writer` and :mod:`scatflow.store.relay`, the only code
that writes a store.

Layout (zarr format 3)::

    STORE/analysis/<name>/       attributes: the resolved [analysis] config, fit records
      mean, unmixing, ...        the joint model's arrays (no time dimension)
      NET.STA.LOC/               one group per labelled station
        time, components, cluster, distance   chunked like the station group's blocks
        label_counts (block, label)  windows per label (-1, 0, 1, ...) of each block
        block_stamp  (block,)    the ledger stamp each block's labels were computed from
        model/                   the station's own model (one model per station)

The analysis writes under the store's writer lock; a station's windows are
written chunk-aligned (by the label tasks), then the labelled blocks' counts
(rows replaced, never added to), then their stamps, the group's attributes
last, so an interrupted analysis is labelled again or refitted, never
trusted half written, and its counts are never those of labels not stored.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr
import zarr

from ..errors import StoreError
from .access import zarr_store
from .encoding import ANALYSIS_GROUP, compressor

#: Blocks per chunk of an analysis's per-block arrays (``block_stamp``, ``label_counts``): reading
#: them costs one request per 1024 blocks, and recording a new day rewrites one chunk.
BLOCK_CHUNK = 1024


class AnalysisWriter:
    """Writes the groups ``analysis/<name>`` of the scatflow store at ``path`` (a directory)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def group(self, name: str, key: str | None = None) -> str:
        """The group path ``analysis/<name>`` (or ``analysis/<name>/<key>`` for a station)."""
        return f"{ANALYSIS_GROUP}/{name}" + (f"/{key}" if key else "")

    def drop(self, name: str) -> None:
        """Delete the group ``analysis/<name>`` (``--refit``); the station groups are untouched."""
        import shutil

        path = os.path.join(self.path, ANALYSIS_GROUP, name)
        if os.path.isdir(path):
            shutil.rmtree(path)

    def write_model(self, name: str, key: str | None, model: xr.Dataset) -> None:
        """Write a fitted model's arrays (no time dimension) into ``analysis/<name>`` (joint) or
        ``analysis/<name>/<key>/model`` (one model per station: beside, not inside, the station's
        results, whose ``cluster`` variable would clash with the model's ``cluster`` dimension)."""
        group = self.group(name) if key is None else self.group(name, key) + "/model"
        model.to_zarr(zarr_store(self.path), group=group, mode="a", zarr_format=3, consolidated=False)

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

    def prepare_windows(self, name: str, key: str, n: int, chunk: int, k: int, times_ns) -> None:
        """Make station ``key``'s label arrays hold ``n`` windows, before any is labelled (driver).

        The first call creates ``time``, ``components`` (``k`` of them), ``cluster`` and
        ``distance`` in chunks of ``chunk`` windows (the station group's blocks), writing
        metadata and ``time`` only (``times_ns()``: int64 ns of all ``n`` windows, asked only
        then); later calls grow the arrays, metadata only. Label chunks are written by
        :meth:`write_block`.
        """
        import dask.array as da

        g = self.station_group(name, key)
        if g is not None and "time" in g:
            for var in ("time", "components", "cluster", "distance"):
                arr = g[var]
                if arr.shape[0] < n:
                    arr.resize((n, *arr.shape[1:]))
            return
        ds = xr.Dataset(
            {
                "components": (("time", "component"), da.zeros((n, k), chunks=(chunk, k), dtype=np.float64),
                               {"long_name": "independent components (X - mean) @ unmixing.T"}),
                "cluster": (("time",), da.zeros(n, chunks=chunk, dtype=np.int32),
                            {"long_name": "KMeans label, -1 = no features"}),
                "distance": (("time",), da.zeros(n, chunks=chunk, dtype=np.float64),
                             {"long_name": "Euclidean distance to the cluster's centroid, component units"}),
            },
            coords={"time": np.asarray(times_ns(), dtype=np.int64).astype("datetime64[ns]"), "component": np.arange(k)},
        )
        enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64", "chunks": (chunk,)}}
        for var_name, var in ds.data_vars.items():
            enc[var_name] = {"chunks": (chunk, *var.shape[1:]), "compressors": [compressor()]}
        # compute=False: metadata and the coordinates; the label chunks come from the tasks.
        ds.to_zarr(zarr_store(self.path), group=self.group(name, key), mode="a", zarr_format=3, consolidated=False,
                   encoding=enc, compute=False)

    def write_block(self, name: str, key: str, k0: int, chunk: int, times_ns: np.ndarray, out: np.ndarray) -> None:
        """Write one block's labels (worker): windows ``k0 .. k0 + len(out)`` of station ``key``.

        ``out`` is :meth:`scatflow.analysis.model.Model.apply`'s (window, component + 2) array,
        ``times_ns`` the windows' starts (int64 ns). The region is one chunk of each array, so
        parallel blocks never share a chunk.
        """
        if k0 % chunk:
            raise StoreError(f"internal: analysis region starting at window {k0} is not aligned to chunks of {chunk}")
        g = self.station_group(name, key)
        k = out.shape[1] - 2
        k1 = k0 + out.shape[0]
        g["time"][k0:k1] = np.asarray(times_ns, dtype=np.int64)
        g["components"][k0:k1] = out[:, :k]
        g["cluster"][k0:k1] = out[:, k].astype(np.int32)
        g["distance"][k0:k1] = out[:, k + 1]

    def _per_block(self, g: zarr.Group, var: str, n_blocks: int, width: int | None, dtype) -> zarr.Array:
        """Array ``var`` (block[, label]) of ``g``, created or grown to ``n_blocks`` rows."""
        shape = (n_blocks,) if width is None else (n_blocks, width)
        if var not in g:
            return g.create_array(var, shape=shape, chunks=(BLOCK_CHUNK, *shape[1:]), dtype=dtype, fill_value=0,
                                  dimension_names=["block"] if width is None else ["block", "label"])
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
