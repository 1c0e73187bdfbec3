"""From ObsPy traces to windows: a common sample grid, strided windows, coverage.

The window grid itself is :class:`scatflow.grid.Grid`. Samples
are placed on the grid's sample lattice by ObsPy's nearest-sample rule (as
``Stream.slide`` and ``Trace.slice`` do: round half away from zero), so a
window's samples are the ones ``stream.slide`` would give. Unrecorded samples
are tracked, never invented silently: each (window, channel) gets a coverage,
and windows below ``min_coverage`` get no coefficients.
"""

from __future__ import annotations

import math

import numpy as np
import obspy

from .errors import InputError
from .grid import same_rate

def _round_away(x: float) -> int:
    # Half away from zero, as ObsPy's nearest-sample slicing.
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def align(
    stream: obspy.Stream,
    channels: list[str],
    start_ns: int,
    nsamp: int,
    sampling_rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Place the traces of ``channels`` on one sample lattice starting at ``start_ns``.

    Parameters
    ----------
    stream : obspy.Stream
        Traces (any number per channel: gaps, several files). Masked samples
        count as not recorded.
    channels : list of str
        SEED ids, in output order.
    start_ns : int
        Time of output sample 0, ns since 1970.
    nsamp : int
        Output length, samples.
    sampling_rate : float
        Hz; every trace must have it.

    Returns
    -------
    data : ndarray, (channels, nsamp), float64
        Samples (0 where not recorded).
    recorded : ndarray, (channels, nsamp), bool

    Raises
    ------
    InputError
        A trace with another sampling rate, or non-finite samples.
    """
    index = {c: i for i, c in enumerate(channels)}
    data = np.zeros((len(channels), nsamp), dtype=np.float64)
    recorded = np.zeros((len(channels), nsamp), dtype=bool)
    for tr in stream:
        row = index.get(tr.id)
        if row is None or tr.stats.npts == 0:
            continue
        rate = float(tr.stats.sampling_rate)
        if not same_rate(rate, sampling_rate):
            raise InputError(f"{tr.id}: sampling rate {rate} Hz differs from the station's {sampling_rate} Hz")
        offset = _round_away((tr.stats.starttime.ns - start_ns) * sampling_rate / 1e9)
        a, b = max(offset, 0), min(offset + tr.stats.npts, nsamp)
        if a >= b:
            continue
        values = tr.data[a - offset : b - offset]
        if np.ma.isMaskedArray(values):
            ok = ~np.ma.getmaskarray(values)
            values = np.ma.getdata(values)
        else:
            ok = np.ones(b - a, dtype=bool)
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            raise InputError(f"{tr.id}: {int((~finite).sum())} NaN or infinite samples near {tr.stats.starttime}")
        # Overlapping traces: the first one read wins, so reading order decides nothing silently
        # different between runs (ObsPy returns traces in file order).
        fresh = ok & ~recorded[row, a:b]
        data[row, a:b][fresh] = values[fresh]
        recorded[row, a:b] |= ok
    return data, recorded


def window_view(a: np.ndarray, bins: int, hop: int, n: int) -> np.ndarray:
    """Strided (no copy) view ``(n, channels, bins)`` of ``a`` (channels, samples)."""
    view = np.lib.stride_tricks.sliding_window_view(a, bins, axis=-1)[:, : (n - 1) * hop + 1 : hop]
    return view.transpose(1, 0, 2)


def coverage(recorded: np.ndarray, bins: int, hop: int, n: int) -> np.ndarray:
    """Fraction of recorded samples per window and channel, ``(n, channels)`` float64."""
    csum = np.zeros((recorded.shape[0], recorded.shape[1] + 1), dtype=np.int64)
    np.cumsum(recorded, axis=1, out=csum[:, 1:])
    starts = np.arange(n) * hop
    counts = csum[:, starts + bins] - csum[:, starts]
    return (counts / bins).T


def computable(cov: np.ndarray, min_coverage: float) -> np.ndarray:
    """Which (window, channel) pairs get coefficients: coverage at least ``min_coverage``
    and at least one recorded sample (a window of nothing is never computed)."""
    return (cov >= min_coverage) & (cov > 0)


def fill_unrecorded(x: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """Windows ``x`` with unrecorded samples (``rec`` False) replaced.

    A window's unrecorded samples take the mean of that window's recorded
    samples on the same channel (0 if none), so a gap adds no step or offset.
    ``x`` is not modified.

    Parameters
    ----------
    x : ndarray, (n, channels, bins)
    rec : ndarray of bool, same shape
    """
    if rec.all():
        return x
    counts = rec.sum(axis=-1, keepdims=True)
    means = np.where(rec, x, 0.0).sum(axis=-1, keepdims=True) / np.maximum(counts, 1)
    return np.where(rec, x, means)
