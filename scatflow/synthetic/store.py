"""Stores of structured synthetic coefficients, written directly (no waveforms, no transform).

For tests and benchmarks of ``scatflow analyze`` at sizes the transform would
take hours to produce: each window belongs to one of a few hidden regimes
that switch over time, and its coefficients are a regime's spectral shape
times log-normal noise, so the analysis has structure to find. The groups are
complete scatflow station groups (coordinates, attributes, ledger), written
through :class:`scatflow.store.writer.Store`.
"""

from __future__ import annotations

import numpy as np
from obspy import UTCDateTime

from ..store import dataset
from ..inputs.grid import Blocks
from ..scattering.network import ScatteringNetwork
from ..store.summary import block_summary
from ..store.writer import Store


def regimes(n: int, k: int, seed: int, k0: int = 0, dwell: int = 200) -> np.ndarray:
    """Hidden regime of windows ``k0 .. k0 + n``: runs of about ``dwell`` windows, a function of
    the window index only (so any split into blocks gives the same labels)."""
    idx = np.arange(k0, k0 + n)
    run = idx // dwell
    # A hash of the run index, not a random stream: block b's labels do not depend on block b - 1.
    h = (run * 2654435761 + seed * 97) % 4294967296
    return (h % k).astype(np.int64)


def coefficients(network: ScatteringNetwork, channels: int, n: int, k0: int, *, k: int = 4, seed: int = 0,
                 noise: float = 0.15, dtype=np.float32) -> list[np.ndarray]:
    """Synthetic ``order_1`` (n, channel, f1) and ``order_2`` (n, channel, f1, f2) of windows
    ``k0 .. k0 + n``: regime shapes (smooth bumps in log frequency) times log-normal noise.
    Values are positive, in arbitrary units, spanning about 4 decades."""
    f1 = network.banks[0].centers
    f2 = network.banks[1].centers
    shape_rng = np.random.default_rng(seed)
    centres = shape_rng.uniform(np.log(f1.min()), np.log(f1.max()), size=(k, channels))
    gains = shape_rng.uniform(-1.0, 1.0, size=(k, channels))
    lab = regimes(n, k, seed, k0)
    lf1, lf2 = np.log(f1), np.log(f2)
    shape1 = np.exp(-0.5 * ((lf1[None, None, :] - centres[:, :, None]) / 0.8) ** 2) * 3 + gains[:, :, None] - 3
    # Second order: decays with f2, faster for regimes with a high centre (a modulation spectrum).
    shape2 = shape1[:, :, :, None] - 1.0 - (lf2.max() - lf2)[None, None, None, :] * 0.3 * (1 + centres[:, :, None, None] / 5)
    rng = np.random.default_rng([seed, k0])
    o1 = 10 ** (shape1[lab] + noise * rng.standard_normal((n, channels, len(f1))))
    o2 = 10 ** (shape2[lab] + noise * rng.standard_normal((n, channels, len(f1), len(f2))))
    return [o1.astype(dtype), o2.astype(dtype)]


def write_store(path, stations: list[str], n_windows: int, *, layers: list[dict], sampling_rate: float = 50.0,
                window_s: float = 40.0, hop_s: float = 20.0, block_windows: int = 1080, channels=("HHE", "HHN", "HHZ"),
                start: str = "2015-01-01", dtype: str = "float32", k: int = 4, seed: int = 0,
                nan_windows: slice | None = None, shard_blocks: int | None = None) -> Store:
    """Write a store of ``stations`` (keys ``NET.STA.LOC``) with ``n_windows`` windows each.

    Parameters
    ----------
    path : str or PathLike
        Store directory (created).
    stations : list of str
        Station keys.
    n_windows : int
        Windows per station.
    layers : list of dict
        Bank keywords per layer (two layers).
    sampling_rate : float
        Hz; with ``window_s`` fixes the network's frequencies.
    window_s, hop_s : float
        Window duration and hop, seconds.
    block_windows : int
        Windows per block (Zarr chunk along time).
    channels : sequence of str
        Channel codes.
    start : str
        UTC start of window 0.
    dtype : str
        float32 or float64.
    k : int
        Number of hidden regimes.
    seed : int
        Seed of the shapes and noise (one per station: ``seed + station index``).
    nan_windows : slice, optional
        Windows given NaN coefficients (a gap) at every station.
    shard_blocks : int, optional
        Blocks per shard of the data arrays (the group attribute ``shard_blocks``, as ``scatflow
        run`` writes it); None: no attribute, a block per shard.

    Returns
    -------
    Store
    """
    net, design, origin = _design(layers, sampling_rate, window_s, hop_s, block_windows, dtype, start)
    store = Store(path)
    store.open_or_create(design)
    blocks = Blocks(block_windows, n_windows)
    for s, key in enumerate(stations):
        attrs = _attrs(net, window_s, hop_s, origin, block_windows, sampling_rate, shard_blocks)
        times = _times(origin, 0, n_windows, hop_s)
        store.create_group(key, dataset.template(net, times, [f"{key}.{c}" for c in channels], np.dtype(dtype),
                                                 block_windows, attrs), blocks)
        _write_blocks(store, key, net, attrs, blocks, range(blocks.count), channels, hop_s, origin, dtype, k,
                      seed + s, nan_windows)
    store.consolidate()
    return store


def extend_store(path, stations: list[str], n_windows: int, *, layers: list[dict], sampling_rate: float = 50.0,
                 window_s: float = 40.0, hop_s: float = 20.0, block_windows: int = 1080,
                 channels=("HHE", "HHN", "HHZ"), start: str = "2015-01-01", dtype: str = "float32", k: int = 4,
                 seed: int = 0, nan_windows: slice | None = None, shard_blocks: int | None = None) -> Store:
    """Grow a store :func:`write_store` wrote (same arguments) to ``n_windows`` windows per station,
    as a later run would: the time axis and ledger grow, and the old partial last block and the new
    blocks are written (ending bitwise equal to :func:`write_store` of ``n_windows``)."""
    net, design, origin = _design(layers, sampling_rate, window_s, hop_s, block_windows, dtype, start)
    store = Store(path)
    store.open_or_create(design)
    store.drop_consolidated()
    for s, key in enumerate(stations):
        n_old = store.station_state(key).n_time
        old, new = Blocks(block_windows, n_old), Blocks(block_windows, n_windows)
        attrs = _attrs(net, window_s, hop_s, origin, block_windows, sampling_rate, shard_blocks)
        times = _times(origin, n_old, n_windows, hop_s)
        store.extend_group(key, dataset.template(net, times, [f"{key}.{c}" for c in channels], np.dtype(dtype),
                                                 block_windows, attrs), old, new)
        _write_blocks(store, key, net, attrs, new, range(n_old // block_windows, new.count), channels, hop_s,
                      origin, dtype, k, seed + s, nan_windows)
    store.consolidate()
    return store


def _design(layers, sampling_rate, window_s, hop_s, block_windows, dtype, start):
    net = ScatteringNetwork(*layers, bins=int(window_s * sampling_rate), sampling_rate=sampling_rate)
    design = {"layers": layers, "window_s": window_s, "hop_s": hop_s, "reduce": "median", "dtype": dtype,
              "block_s": block_windows * hop_s, "min_coverage": 1.0}
    return net, design, UTCDateTime(start)


def _attrs(net, window_s, hop_s, origin, block_windows, sampling_rate, shard_blocks=None) -> dict:
    shard = {} if shard_blocks is None else {"shard_blocks": int(shard_blocks)}
    return dataset.attributes(net, "median", window_s, hop_s, {
        "grid_origin_ns": int(origin.ns), "grid_origin": str(origin), "block_windows": block_windows,
        "min_coverage": 1.0, "bins": int(window_s * sampling_rate), "hop_samples": int(hop_s * sampling_rate),
        "synthetic": "scatflow.synthetic.store", **shard})


def _times(origin, k0: int, k1: int, hop_s: float) -> np.ndarray:
    return (np.int64(origin.ns) + np.arange(k0, k1, dtype=np.int64) * int(hop_s * 1e9)).astype("datetime64[ns]")


def _write_blocks(store, key, net, attrs, blocks, which, channels, hop_s, origin, dtype, k, seed, nan_windows):
    ids = [f"{key}.{c}" for c in channels]
    marks = []
    for b in which:
        k0, k1 = blocks.range(b)
        orders = coefficients(net, len(channels), k1 - k0, k0, k=k, seed=seed, dtype=dtype)
        cov = np.ones((k1 - k0, len(channels)), dtype=np.float32)
        if nan_windows is not None:
            lo, hi = max(nan_windows.start, k0), min(nan_windows.stop, k1)
            if lo < hi:
                for o in orders:
                    o[lo - k0:hi - k0] = np.nan
                cov[lo - k0:hi - k0] = 0.0
        store.write_windows(key, k0, {**{f"order_{i + 1}": o for i, o in enumerate(orders)}, "coverage": cov})
        marks.append({"block": b, "windows": k1 - k0, "summary": block_summary(ids, cov, orders[0])})
    store.mark_blocks(key, marks)


__all__ = ["write_store", "extend_store", "coefficients", "regimes"]
