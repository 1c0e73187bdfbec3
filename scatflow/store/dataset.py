"""Labeled results: the dataset schema (docs/store-format.md), in memory and as a store template.

Dimensions ``time``, ``channel``, ``f1``, ``f2`` (``f3``...); variables
``order_1``, ``order_2``... (pooled coefficients) and ``coverage``. This module
knows nothing of Zarr; :mod:`scatflow.store.writer` owns the layout on disk.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .. import __version__
from ..scattering.network import ScatteringNetwork


def freq_dims(depth: int) -> list[str]:
    """``["f1", "f2", ...]`` for a network of ``depth`` layers."""
    return [f"f{i + 1}" for i in range(depth)]


def attributes(network: ScatteringNetwork, reduce: str, window_s: float, hop_s: float, extra: dict | None = None) -> dict:
    """Dataset attributes: the design (JSON) and the windowing, with units in the names."""
    attrs = {
        "network": json.dumps(network.design()),
        "reduce": reduce,
        "window_s": float(window_s),
        "hop_s": float(hop_s),
        "sampling_rate_hz": float(network.sampling_rate),
        "scatflow_version": __version__,
    }
    attrs.update(extra or {})
    return attrs


def coords(network: ScatteringNetwork, times: np.ndarray, channels: list[str]) -> dict:
    """Coordinates: window start times, SEED ids and centre frequencies (Hz)."""
    out = {
        "time": ("time", np.asarray(times, dtype="datetime64[ns]"), {"long_name": "window start (UTC)"}),
        # Object dtype: variable-length UTF-8 in Zarr v3, no unstable-spec warning.
        "channel": ("channel", np.array(channels, dtype=object), {"long_name": "SEED id NET.STA.LOC.CHA"}),
    }
    for dim, bank in zip(freq_dims(len(network)), network.banks):
        out[dim] = (dim, np.asarray(bank.centers, dtype=np.float64), {"units": "Hz", "long_name": f"{dim} centre frequency"})
    return out


def variable_dims(depth: int) -> dict[str, tuple[str, ...]]:
    """Dimensions of each data variable."""
    dims = {"coverage": ("time", "channel")}
    for i in range(depth):
        dims[f"order_{i + 1}"] = ("time", "channel", *freq_dims(i + 1))
    return dims


VAR_ATTRS = {
    "coverage": {"units": "1", "long_name": "fraction of the window's samples that were recorded"},
}


def make_dataset(
    network: ScatteringNetwork,
    times: np.ndarray,
    channels: list[str],
    orders: list,
    coverage,
    attrs: dict,
) -> xr.Dataset:
    """Assemble the labeled dataset from arrays (NumPy or Dask).

    Parameters
    ----------
    network : ScatteringNetwork
    times : array of datetime64[ns], (n,)
        Window starts, UTC.
    channels : list of str
        SEED ids.
    orders : list of arrays
        ``(n, channels, n1)``, ``(n, channels, n1, n2)``...
    coverage : array, (n, channels)
        Fraction of recorded samples (0..1).
    attrs : dict
        Dataset attributes (see :func:`attributes`).
    """
    dims = variable_dims(len(network))
    data_vars = {"coverage": (dims["coverage"], coverage, VAR_ATTRS["coverage"])}
    for i, arr in enumerate(orders):
        name = f"order_{i + 1}"
        data_vars[name] = (dims[name], arr, {"long_name": f"order-{i + 1} scattering coefficients ({attrs.get('reduce')})"})
    return xr.Dataset(data_vars, coords=coords(network, times, channels), attrs=attrs)


def template(
    network: ScatteringNetwork,
    times: np.ndarray,
    channels: list[str],
    dtype,
    chunk: int,
    attrs: dict,
    channel_coords: dict | None = None,
    units: str | None = None,
) -> xr.Dataset:
    """A lazy dataset with the store's shapes and dtypes; its data is never computed.

    Used to write metadata and coordinates before any block is computed.

    Parameters
    ----------
    channel_coords : dict, optional
        Extra coordinates along ``channel`` from the inventory: name -> values (one per
        channel), e.g. ``latitude`` and ``longitude`` (degrees), ``elevation``, ``depth`` (m).
    units : str, optional
        Units of the samples the coefficients were computed from (``counts``, ``m/s``...),
        given to ``order_*``.
    """
    import dask.array as da  # only the driver builds templates; workers skip the ~0.5 s import

    n, c = len(times), len(channels)
    sizes = [len(b) for b in network.banks]
    # One Dask chunk per array: the template is never computed (the Zarr chunks and shards come from
    # the encodings), and a chunk per block made the driver's graph grow with the span (~1 ms/block).
    orders = [da.zeros((n, c, *sizes[: i + 1]), dtype=dtype, chunks=-1) for i in range(len(sizes))]
    cov = da.zeros((n, c), dtype=np.float32, chunks=-1)
    ds = make_dataset(network, times, channels, orders, cov, attrs)
    for name, values in (channel_coords or {}).items():
        ds = ds.assign_coords({name: ("channel", np.asarray(values, dtype=np.float64), COORD_ATTRS.get(name, {}))})
    if units is not None:
        for i in range(len(sizes)):
            ds[f"order_{i + 1}"] = ds[f"order_{i + 1}"].assign_attrs(units=units)
    return ds


COORD_ATTRS = {
    "latitude": {"units": "degrees_north", "long_name": "channel latitude (WGS84)"},
    "longitude": {"units": "degrees_east", "long_name": "channel longitude (WGS84)"},
    "elevation": {"units": "m", "long_name": "station elevation above sea level"},
    "depth": {"units": "m", "long_name": "sensor depth below the surface (burial)"},
}
