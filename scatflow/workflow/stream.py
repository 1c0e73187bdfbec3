"""In memory, for notebooks: one station's ObsPy stream to a lazy, labeled dataset.

The same window grid (:class:`~scatflow.inputs.grid.Grid`), alignment and block
computation (:func:`~scatflow.workflow.blocks.compute_windows`) as the workflow, so the
numbers equal a store's bit for bit; only the chunks are Dask tasks instead of
store blocks.
"""

from __future__ import annotations

import numpy as np
import obspy
from obspy import UTCDateTime

from ..store import dataset
from ..inputs import windows
from .blocks import BlockParams, compute_windows
from ..errors import InputError
from ..inputs.grid import Grid, same_rate, whole_samples
from ..scattering.network import ScatteringNetwork
from ..inputs.sources import nominal_rate


def _station_rate(stream: obspy.Stream) -> tuple[list[str], float]:
    """Channels (sorted SEED ids) and the nominal common rate (Hz) of a one-station stream."""
    if not len(stream):
        raise InputError("transform_stream: empty stream")
    keys = {tr.id.rsplit(".", 1)[0] for tr in stream}
    if len(keys) != 1:
        raise InputError(f"transform_stream: expected one station, got {sorted(keys)}")
    channels = sorted({tr.id for tr in stream})
    rates = {tr.id: float(tr.stats.sampling_rate) for tr in stream}
    # As the file and SDS inputs do: 49.9999 Hz reported is 50 Hz nominal.
    rate = nominal_rate(rates[channels[0]])
    if not all(same_rate(r, rate) for r in rates.values()):
        raise InputError(f"transform_stream: channels have different sampling rates {rates}")
    return channels, rate


def transform_stream(
    stream: obspy.Stream,
    network: ScatteringNetwork | None = None,
    *,
    layers: list[dict] | None = None,
    window_s: float = 40.0,
    overlap: float = 0.5,
    reduce: str = "median",
    dtype=np.float64,
    start: UTCDateTime | str | None = None,
    end: UTCDateTime | str | None = None,
    min_coverage: float = 1.0,
    chunk: int = 360,
):
    """Scattering coefficients of one station's stream as a lazy, labeled dataset.

    The stream is aligned on the window grid once; each chunk of ``chunk``
    windows is one Dask task computing its windows from that copy. ``.compute()``
    or ``.to_zarr()`` runs them on the current Dask scheduler.

    Parameters
    ----------
    stream : obspy.Stream
        Traces of one station (NET.STA.LOC), one sampling rate.
    network : ScatteringNetwork, optional
        A design; or give ``layers`` (bank keywords per layer) and ``window_s``.
    window_s : float
        Window duration, seconds (ignored when ``network`` is given).
    overlap : float
        Fraction of a window shared with the next, in [0, 1).
    reduce : {"median", "max", "mean"}
    dtype : {np.float64, np.float32}
    start, end : UTCDateTime or str, optional
        Span ``[start, end)``; default: first sample to just after the last one.
    min_coverage : float
        Windows (per channel) with a smaller fraction of recorded samples get NaN.
    chunk : int
        Windows per Dask chunk.

    Returns
    -------
    xarray.Dataset
        Dimensions ``time``, ``channel``, ``f1``, ``f2``...; Dask-backed.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"transform_stream: overlap must be in [0, 1), got {overlap!r}")
    channels, rate = _station_rate(stream)
    if network is None:
        if layers is None:
            raise ValueError("give a network or layers")
        network = ScatteringNetwork(*layers, bins=whole_samples(window_s, rate, "window_s"), sampling_rate=rate)
    elif not same_rate(network.sampling_rate, rate):
        raise InputError(f"{channels[0]}: sampling rate {rate} Hz does not match the network's {network.sampling_rate} Hz")
    window_s = network.bins / rate
    hop = whole_samples(window_s * (1 - overlap), rate, "the hop (window_s x (1 - overlap))")
    first = min(tr.stats.starttime for tr in stream).ns
    last = max(tr.stats.endtime for tr in stream).ns + int(round(1e9 / rate))
    grid = Grid(UTCDateTime(start).ns if start is not None else first, rate, network.bins, hop)
    n = grid.last_window_before(UTCDateTime(end).ns if end is not None else last) + 1
    if n < 1:
        raise InputError("transform_stream: the span is shorter than one window")
    aligned = windows.align(stream, channels, grid.origin_ns, grid.nsamp(0, n), rate)
    data, recorded = aligned.data, aligned.recorded
    cov = windows.coverage(recorded, grid.bins, grid.hop, n)
    params = BlockParams.make([b.design() for b in network.banks], reduce, dtype, min_coverage)
    orders = _lazy_orders(network, params, grid, data, recorded, cov, chunk)
    attrs = dataset.attributes(network, reduce, window_s, hop / rate, {"min_coverage": min_coverage})
    return dataset.make_dataset(network, grid.times(0, n), channels, orders, cov.astype(np.float32), attrs)


def _lazy_orders(network, params, grid, data, recorded, cov, chunk) -> list:
    """One Dask array per order, each chunk of windows one task of :func:`compute_windows`."""
    import dask
    import dask.array as da

    n, c = cov.shape
    dtype = np.dtype(params.dtype)
    parts: list[list] = [[] for _ in network.shapes]
    for k0 in range(0, n, chunk):
        k1 = min(k0 + chunk, n)
        a, b = k0 * grid.hop, k0 * grid.hop + grid.nsamp(k0, k1)
        task = dask.delayed(compute_windows, pure=False)(
            network, params, grid, data[:, a:b], recorded[:, a:b], cov[k0:k1], 1)
        for i, shape in enumerate(network.shapes):
            parts[i].append(da.from_delayed(task[i], shape=(k1 - k0, c, *shape), dtype=dtype))
    return [da.concatenate(p, axis=0) for p in parts]
