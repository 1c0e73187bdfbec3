"""From ObsPy traces to windows: a common sample grid, strided windows, coverage.

The window grid itself is :class:`scatflow.inputs.grid.Grid`. Samples
are placed on the grid's sample lattice by ObsPy's nearest-sample rule (as
``Stream.slide`` and ``Trace.slice`` do: round half away from zero), so a
window's samples are the ones ``stream.slide`` would give. Unrecorded samples
are tracked, never invented silently: each (window, channel) gets a coverage,
and windows below ``min_coverage`` get no coefficients.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import obspy

from .grid import same_rate

def _round_away(x: float) -> int:
    # Half away from zero, as ObsPy's nearest-sample slicing.
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


@dataclasses.dataclass
class Aligned:
    """Samples of several channels on one lattice.

    Attributes
    ----------
    data : ndarray, (channels, nsamp), float64
        Samples (0 where not recorded).
    recorded : ndarray, (channels, nsamp), bool
        Which samples hold data.
    conflicting : int
        Samples where overlapping traces disagree (not recorded).
    nonfinite : int
        NaN or infinite samples (not recorded).
    other_rates : list of str
        Traces within the span at another sampling rate (not recorded), as
        ``"ID: R Hz from T"``: the station's rate changes there.
    notes : list of str
        Preprocessing notes (responses by epoch, ObsPy warnings), one line each.
    """

    data: np.ndarray
    recorded: np.ndarray
    conflicting: int = 0
    nonfinite: int = 0
    other_rates: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)


def align(stream: obspy.Stream, channels: list[str], start_ns: int, nsamp: int, sampling_rate: float) -> Aligned:
    """Place the traces of ``channels`` on one sample lattice starting at ``start_ns``.

    Masked and non-finite samples count as not recorded; where overlapping
    traces disagree, the samples count as not recorded (as ObsPy's merge makes
    a gap of them), so no reading order decides a value; identical overlaps
    stay data. Traces at another sampling rate are never resampled: within the
    span their samples count as not recorded and are listed in ``other_rates``;
    outside it they are ignored.

    Parameters
    ----------
    stream : obspy.Stream
        Traces (any number per channel: gaps, several files, several rates).
    channels : list of str
        SEED ids, in output order.
    start_ns : int
        Time of output sample 0, ns since 1970.
    nsamp : int
        Output length, samples.
    sampling_rate : float
        The station's rate, Hz.
    """
    index = {c: i for i, c in enumerate(channels)}
    out = Aligned(np.zeros((len(channels), nsamp), dtype=np.float64), np.zeros((len(channels), nsamp), dtype=bool))
    conflict = np.zeros_like(out.recorded)
    for tr in stream:
        row = index.get(tr.id)
        if row is None or tr.stats.npts == 0:
            continue
        rate = float(tr.stats.sampling_rate)
        if not same_rate(rate, sampling_rate):
            if not _outside(tr, start_ns, nsamp, sampling_rate):
                out.other_rates.append(f"{tr.id}: {rate:g} Hz from {tr.stats.starttime}")
            continue
        offset = _round_away((tr.stats.starttime.ns - start_ns) * sampling_rate / 1e9)
        a, b = max(offset, 0), min(offset + tr.stats.npts, nsamp)
        if a < b:
            out.nonfinite += _place(tr.data[a - offset : b - offset], out.data[row, a:b], out.recorded[row, a:b],
                                    conflict[row, a:b])
    out.conflicting = int(conflict.sum())
    out.recorded &= ~conflict
    out.data[conflict] = 0.0
    return out


def _outside(tr, start_ns: int, nsamp: int, rate: float) -> bool:
    """Whether trace ``tr`` has no sample within half a sample of the lattice's span."""
    half = 5e8 / rate
    return tr.stats.endtime.ns < start_ns - half or tr.stats.starttime.ns > start_ns + (nsamp - 0.5) * 1e9 / rate


def _place(values, data: np.ndarray, recorded: np.ndarray, conflict: np.ndarray) -> int:
    """Put a trace's ``values`` into views of one channel's row; returns the non-finite count."""
    if np.ma.isMaskedArray(values):
        ok = ~np.ma.getmaskarray(values)
        values = np.ma.getdata(values)
    else:
        ok = np.ones(len(values), dtype=bool)
    values = np.asarray(values, dtype=np.float64)
    bad = ok & ~np.isfinite(values)
    ok &= ~bad
    conflict |= ok & recorded & (data != values)
    fresh = ok & ~recorded
    data[fresh] = values[fresh]
    recorded |= ok
    return int(bad.sum())


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
