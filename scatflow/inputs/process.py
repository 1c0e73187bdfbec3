"""Preprocessing of a block's samples before windowing: response removal, a Butterworth filter,
one sampling rate (the settings are :class:`scatflow.inputs.preprocess.Preprocess`).

The rule that keeps results independent of how a span is split into blocks and
runs: a block always processes the samples of its *whole* block span (all
``chunk`` windows, even while the block is the store's partial last one) plus
a margin ``pad`` on each side, and nothing else. Block spans are fixed by the
store's grid (origin, hop, windows per block), so every processed sample is a
function of the data and of time alone, never of where a run starts or ends.

Within that span each contiguous run of recorded samples is processed on its
own, as ObsPy processes each trace of a stream: response (ObsPy
``remove_response`` or ``remove_sensitivity``), filter (ObsPy ``Trace.filter``),
resampling (``scipy.signal.resample_poly``). A run's edge inside the span is a
real edge of the data (a gap, the archive's first or last sample): output
samples within ``pad`` of it count as not recorded, so ``min_coverage``
governs the windows near gaps. Runs are cut at times where the input and
output sample lattices coincide (both anchored at the grid origin), so their
resampled samples land on the station's output lattice.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from ..errors import InputError
from .epochs import Lattice, Responses, by_response, split
from .grid import same_rate
from .preprocess import OBSPY_OUTPUT, Preprocess, ratio
from .deconvolve import remove_response
from .sources import nominal_rate
from .windows import Aligned, align


def process(stream, channels: list[str], origin_ns: int, start_ns: int, nsamp: int, rate: float,
            pre: Preprocess, inv=None, responses: Responses | None = None) -> Aligned:
    """Processed samples of ``channels`` on the output lattice ``start_ns + i / rate``.

    Parameters
    ----------
    stream : obspy.Stream
        Raw traces covering at least ``[start - pad, end + pad]`` where present.
    channels : list of str
        SEED ids in output order.
    origin_ns : int
        The grid origin (ns since 1970): the input and output lattices are anchored there.
    start_ns : int
        First output sample (on the output lattice), ns since 1970.
    nsamp : int
        Output samples.
    rate : float
        Output rate, Hz (``pre.sampling_rate`` or the station's rate).
    pre : Preprocess
    inv : obspy.Inventory, optional
        Needed for a response step.
    responses : Responses, optional
        The inventory's responses by epoch (default: made from ``inv``; pass one to reuse its cache).

    Returns
    -------
    Aligned
        Samples and the recorded mask (False within ``pad`` of a data edge or of an instant where
        the response changes); ``notes`` holds what the block should record (holes between
        epochs, overlapping epochs, ObsPy's warnings).

    Raises
    ------
    InputError
        A recorded sample outside every epoch of its channel, a response ObsPy cannot use, or a
        setting that cannot apply at a channel's rate (:func:`scatflow.inputs.prechecks.rate_problem`).
    """
    out = Aligned(np.zeros((len(channels), nsamp)), np.zeros((len(channels), nsamp), dtype=bool))
    target = _Target(origin_ns, start_ns, nsamp, rate)
    if pre.response != "none" and responses is None:
        responses = Responses(pre, inv)
    for row, seed_id in enumerate(channels):
        traces = [tr for tr in stream if tr.id == seed_id and tr.stats.npts]
        channel = _Channel(seed_id, out, row, np.zeros(nsamp, dtype=bool))
        for raw in sorted({_nominal(tr.stats.sampling_rate, rate) for tr in traces}):
            group = [tr for tr in traces if _nominal(tr.stats.sampling_rate, rate) == raw]
            if pre.sampling_rate is None and not same_rate(raw, rate):
                out.other_rates += [f"{seed_id}: {raw:g} Hz from {tr.stats.starttime}" for tr in group[:1]]
                continue
            up, down = (1, 1) if same_rate(raw, rate) else ratio(raw, rate, seed_id)
            _process_rate(group, raw, up, down, target, channel, pre, responses)
    out.notes = list(dict.fromkeys(out.notes))
    return out


@dataclasses.dataclass(frozen=True)
class _Target:
    """The output lattice of one :func:`process` call: ``start_ns + i / rate``, ``i < nsamp``."""

    origin_ns: int
    start_ns: int
    nsamp: int
    rate: float

    @property
    def o0(self) -> int:
        """The index of ``start_ns`` on the lattice anchored at ``origin_ns``."""
        return _index(self.start_ns - self.origin_ns, self.rate)


@dataclasses.dataclass(frozen=True)
class _Channel:
    """Where one channel's samples go: row ``row`` of ``out``; ``filled`` marks samples a rate has set."""

    seed_id: str
    out: Aligned
    row: int
    filled: np.ndarray


def _nominal(r: float, rate: float) -> float:
    return rate if same_rate(r, rate) else nominal_rate(r)


def _index(delta_ns: int, rate: float) -> int:
    """The lattice index of a time ``delta_ns`` after the origin (exact on the lattice)."""
    return int(round(delta_ns * rate / 1e9))


def _process_rate(group: list, raw: float, up: int, down: int, target: _Target, channel: _Channel,
                  pre: Preprocess, responses: Responses | None) -> None:
    """Process a channel's traces at input rate ``raw`` (resampled by ``up / down``) into ``channel``."""
    import obspy

    from .prechecks import rate_problem

    origin_ns, start_ns, nsamp, rate, o0 = (target.origin_ns, target.start_ns, target.nsamp, target.rate,
                                            target.o0)
    seed_id, out, row, filled = channel.seed_id, channel.out, channel.row, channel.filled
    problem = rate_problem(pre, raw)
    if problem:  # a rate the plan did not see (the planner refuses the rates it knows)
        raise InputError(f"{seed_id}: {problem}")
    pad = pre.pad_ns
    i_a = math.ceil((start_ns - pad - origin_ns) * raw / 1e9 - 1e-6)
    i_b = math.floor((start_ns + nsamp * 1e9 / rate + pad - origin_ns) * raw / 1e9 + 1e-6)
    t_a = origin_ns + int(round(i_a * 1e9 / raw))
    al = align(obspy.Stream(group), [seed_id], t_a, i_b - i_a, raw)
    out.conflicting += al.conflicting
    out.nonfinite += al.nonfinite
    pad_out = math.ceil(pre.pad_s * rate - 1e-9)
    rec = al.recorded[0]
    lattice = Lattice(origin_ns, i_a, raw)
    spans = by_response(rec, lattice, seed_id, responses, out.notes) if responses is not None else []
    for a, b in split(_runs(rec), [j0 for j0, _, _ in spans[1:]]):
        s = -(-(i_a + a) // down) * down  # the first sample on both lattices
        x = al.data[0, s - i_a:b]
        if len(x) < 2 * down:
            continue
        t0 = origin_ns + int(round(s * 1e9 / raw))
        piece = next((p for j0, j1, p in spans if j0 <= a < j1)) if spans else None
        response = (piece.response_at(t0), piece.digest) if piece and piece.response is not None else None
        y = _chain(x, seed_id, raw, t0, up, down, pre, response, out.notes)
        n0 = s * up // down - o0
        lo = n0 + (pad_out if a > 0 else 0)
        end = math.ceil((i_a + b) * up / down) - o0  # exclusive output index of the run's end
        hi = end - (pad_out if b < len(rec) else 0)
        j0, j1 = max(n0, 0), min(n0 + len(y), nsamp)
        if j0 >= j1:
            continue
        seg = slice(j0, j1)
        clash = filled[seg].copy()
        out.data[row, seg] = np.where(clash, out.data[row, seg], y[j0 - n0:j1 - n0])
        keep = np.zeros(j1 - j0, dtype=bool)
        keep[max(lo, j0) - j0:max(min(hi, j1), j0) - j0] = True
        # Two rates covering one output sample: neither decides it (as conflicting overlaps).
        out.conflicting += int((clash & out.recorded[row, seg]).sum())
        out.recorded[row, seg] = np.where(clash, False, keep)
        filled[seg] = True


def _runs(rec: np.ndarray) -> list[tuple[int, int]]:
    """``[a, b)`` of each run of True in ``rec``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rec.view(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def _chain(x: np.ndarray, seed_id: str, raw: float, t0_ns: int, up: int, down: int, pre: Preprocess, response,
           notes: list) -> np.ndarray:
    """Response (``response``: the one in force over the whole run and its digest), filter and resampling of one
    contiguous run starting at ``t0_ns``; ObsPy's warnings join ``notes`` instead of the console."""
    from obspy import Trace, UTCDateTime
    from scipy.signal import resample_poly

    net, sta, loc, cha = seed_id.split(".")
    tr = Trace(np.array(x, dtype=np.float64), header={"network": net, "station": sta, "location": loc,
                                                      "channel": cha, "sampling_rate": raw,
                                                      "starttime": UTCDateTime(ns=t0_ns)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if pre.response != "none":
            try:
                if response is None:
                    raise ValueError("no response")
                if pre.response == "sensitivity":
                    tr.stats.response = response[0]
                    tr.remove_sensitivity()
                else:
                    # The cosine taper covers the first half of the pad at each end (the pad is twice the
                    # transient), whatever the run's length, so a cut's effect is the same in every block.
                    frac = min(1.0, pre.pad_s * raw / tr.stats.npts)
                    # ObsPy's remove_response, bit for bit, with the response's factors kept per process.
                    remove_response(tr, *response, OBSPY_OUTPUT[pre.response], pre.pre_filt, pre.water_level, frac)
            except Exception as exc:  # noqa: BLE001 - ObsPy raises bare Exceptions for unusable responses
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InputError(f"{seed_id}: no usable response in preprocess.inventory at "
                                 f"{UTCDateTime(ns=t0_ns)} ({msg})") from None
        if pre.filter is not None:
            opts = pre.filter_options
            tr.filter(opts.pop("type"), **opts)
    notes += [f"{seed_id}: {w.message}" for w in caught]
    data = tr.data.astype(np.float64, copy=False)
    if (up, down) != (1, 1):
        data = resample_poly(data, up, down)
    return data
