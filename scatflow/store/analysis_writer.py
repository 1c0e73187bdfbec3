"""The writer of analysis groups (``scatflow analyze``; README "Analysis"): with
:mod:`scatflow.store.writer` and :mod:`scatflow.store.relay`, the only code
that writes a store.

Layout (zarr format 3)::

    STORE/analysis/<name>/       attributes: the resolved [analysis] config, fit records
      mean, unmixing, ...        the joint model's arrays (no time dimension)
      NET.STA.LOC/               one group per labelled station
        time, components, cluster, distance   chunked like the station group's blocks
        block_stamp  (block,)    the ledger stamp each block's labels were computed from
        model/                   the station's own model (one model per station)

The analysis writes under the store's writer lock; a station's windows are
written chunk-aligned, its stamps after its labels, the group's attributes
last, so an interrupted analysis is labelled again or refitted, never
trusted half written.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr
import zarr

from ..errors import StoreError
from .access import zarr_store
from .encoding import ANALYSIS_GROUP, compressor


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

    def write_windows(self, name: str, key: str, ds: xr.Dataset, k0: int, chunk: int) -> None:
        """Write windows ``k0 .. k0 + len(ds.time)`` of station ``key``'s analysis arrays.

        The first write (``k0 = 0``, no group yet) creates the arrays with chunks of ``chunk``
        windows (the station group's blocks); later writes grow them and write the region,
        which starts on a chunk boundary so parallel chunk writes never share a chunk.
        """
        if k0 % chunk:
            raise StoreError(f"internal: analysis region starting at window {k0} is not aligned to chunks of {chunk}")
        group = self.group(name, key)
        root = zarr.open_group(zarr_store(self.path), mode="r", use_consolidated=False)
        exists = group in root and "time" in root[group]
        if not exists:
            if k0:
                raise StoreError(f"internal: analysis group {group} is absent but window {k0} was asked")
            enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64", "chunks": (chunk,)}}
            for var_name, var in ds.data_vars.items():
                enc[var_name] = {"chunks": (chunk, *var.shape[1:]), "compressors": [compressor()]}
            ds.to_zarr(zarr_store(self.path), group=group, mode="a", zarr_format=3, consolidated=False, encoding=enc)
            return
        g = zarr.open_group(zarr_store(self.path), path=group, mode="r+", use_consolidated=False)
        end = k0 + ds.sizes["time"]
        for var_name in ("time", *ds.data_vars):
            arr = g[var_name]
            if arr.shape[0] < end:
                arr.resize((end, *arr.shape[1:]))
        timed = ds.drop_vars([v for v in ds.variables if "time" not in ds[v].dims])
        timed.to_zarr(zarr_store(self.path), group=group, region={"time": slice(k0, end)}, consolidated=False)

    def write_stamps(self, name: str, key: str, stamps: np.ndarray) -> None:
        """Record, per block of station ``key``, the ledger stamp (``block_stamp``) its labels in
        ``analysis/<name>/<key>`` were computed from: ``block_stamp`` (block,) there."""
        g = zarr.open_group(zarr_store(self.path), path=self.group(name, key), mode="r+", use_consolidated=False)
        stamps = np.asarray(stamps, dtype=np.int64)
        if "block_stamp" in g and g["block_stamp"].shape != stamps.shape:
            g["block_stamp"].resize(stamps.shape)
        if "block_stamp" not in g:
            g.create_array("block_stamp", shape=stamps.shape, chunks=(max(len(stamps), 1),), dtype=np.int64,
                           fill_value=0, dimension_names=["block"])
        g["block_stamp"][:] = stamps
