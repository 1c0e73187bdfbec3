"""Preprocessing before windowing: response removal, a Butterworth filter, one sampling rate.

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
import functools
import glob
import math
import os
import typing as T
import warnings
from fractions import Fraction

import numpy as np

from .epochs import Lattice, Responses, by_response, epochs, split
from ..errors import ConfigError, InputError
from .grid import same_rate
from .sources import nominal_rate
from .windows import Aligned, align

RESPONSES = ("none", "sensitivity", "displacement", "velocity", "acceleration")
FILTERS = {"highpass": ("freq",), "lowpass": ("freq",), "bandpass": ("freqmin", "freqmax")}
#: Largest numerator or denominator of a resampling ratio: ``resample_poly``'s filter holds
#: ``20 * max(up, down) + 1`` taps, and a ratio such as 500/499 (a 49.9 Hz channel to 50 Hz)
#: is a clock problem, not a rate to resample.
MAX_RATIO_TERM = 100
#: Relative level under which a step's transient counts as decayed (for the default pad).
TRANSIENT_TOLERANCE = 1e-6
_OUTPUT = {"displacement": "DISP", "velocity": "VEL", "acceleration": "ACC"}
_UNITS = {"displacement": "m", "velocity": "m/s", "acceleration": "m/s**2", "none": "counts"}


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """The ``[preprocess]`` settings (hashable; sent to workers).

    Attributes
    ----------
    response : str
        none, sensitivity, displacement, velocity or acceleration.
    pre_filt : tuple of 4 float or None
        Hz, ObsPy ``remove_response`` ``pre_filt``.
    water_level : float or None
        dB, ObsPy ``remove_response`` ``water_level``.
    filter : tuple of (key, value) pairs or None
        ObsPy ``Trace.filter`` type and options (``type`` among the pairs).
    sampling_rate : float or None
        Output rate, Hz (None: each station keeps its own).
    pad_s : float
        Margin processed on each side of a block span, seconds; also the
        distance from a data edge within which samples count as not recorded.
    inventory : tuple of str
        StationXML globs (absolute).
    """

    response: str = "none"
    pre_filt: tuple | None = None
    water_level: float | None = 60.0
    filter: tuple | None = None
    sampling_rate: float | None = None
    pad_s: float = 0.0
    inventory: tuple = ()

    @property
    def active(self) -> bool:
        """Whether any step changes the samples (an inventory alone only adds coordinates)."""
        return self.response != "none" or self.filter is not None or self.sampling_rate is not None

    @property
    def pad_ns(self) -> int:
        """``pad_s`` in integer ns (0 when inactive)."""
        return int(round(self.pad_s * 1e9)) if self.active else 0

    @property
    def filter_options(self) -> dict:
        """The filter as ``{"type": ..., options...}`` ({} when there is none)."""
        return dict(self.filter or ())

    @property
    def units(self) -> str | None:
        """Units of the processed samples, or None when they come from the inventory (sensitivity)."""
        return None if self.response == "sensitivity" else _UNITS[self.response]

    def record(self) -> dict:
        """The design record (the store's identity): settings, not inventory paths (responses
        are recorded per block as inputs, so a corrected inventory recomputes only what it changes)."""
        return {
            "response": self.response,
            "pre_filt": list(self.pre_filt) if self.pre_filt is not None else None,
            "water_level": self.water_level if self.response in _OUTPUT else None,
            "filter": self.filter_options or None,
            "sampling_rate": self.sampling_rate,
            "pad_s": self.pad_s,
        }

    @classmethod
    def from_section(cls, sec: T.Mapping) -> "Preprocess":
        """From a validated ``[preprocess]`` section (see :mod:`scatflow.config`)."""
        filt = sec.get("filter")
        pre = cls(
            response=sec.get("response", "none"),
            pre_filt=tuple(float(f) for f in sec["pre_filt"]) if sec.get("pre_filt") is not None else None,
            water_level=sec.get("water_level"),
            filter=tuple(sorted(dict(filt).items())) if filt else None,
            sampling_rate=sec.get("sampling_rate"),
            inventory=tuple(sec.get("inventory") or ()),
        )
        pad = sec.get("pad_s")
        return dataclasses.replace(pre, pad_s=float(pad) if pad is not None else default_pad(pre))


def check_section(sec: dict, source: str, block_s: float | None = None) -> None:
    """Validate a ``[preprocess]`` section in place (ConfigError naming the key); with ``block_s``
    (``output.block_s``, seconds), also refuse a pad longer than a block."""
    where = f"{source}: 'preprocess."
    if sec["response"] not in RESPONSES:
        raise ConfigError(f"{where}response' must be one of {', '.join(RESPONSES)}, got {sec['response']!r}")
    if sec["response"] != "none" and not sec["inventory"]:
        raise ConfigError(f"{where}response' = {sec['response']!r} needs 'preprocess.inventory' (StationXML files)")
    if sec["response"] in _OUTPUT and sec["pre_filt"] is None:
        raise ConfigError(f"{where}pre_filt' is required with response = {sec['response']!r} "
                          "(four corner frequencies in Hz, e.g. [0.05, 0.1, 20.0, 24.0])")
    if sec["pre_filt"] is not None:
        pf = sec["pre_filt"]
        if (len(pf) != 4 or not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in pf)
                or not 0 < pf[0] or not all(a < b for a, b in zip(pf[:-1], pf[1:]))):
            raise ConfigError(f"{where}pre_filt' must be four increasing positive frequencies in Hz, got {pf!r}")
    if sec["water_level"] is not None and not math.isfinite(sec["water_level"]):
        raise ConfigError(f"{where}water_level' must be a number of dB")
    if sec["filter"] is not None:
        sec["filter"] = _check_filter(dict(sec["filter"]), where)
    rate = sec["sampling_rate"]
    if rate is not None and (not math.isfinite(rate) or rate <= 0):
        raise ConfigError(f"{where}sampling_rate' must be a positive rate in Hz, got {rate}")
    if sec["pad_s"] is not None and (not math.isfinite(sec["pad_s"]) or sec["pad_s"] < 0):
        raise ConfigError(f"{where}pad_s' must be a number of seconds >= 0, got {sec['pad_s']}")
    if block_s is not None:
        from .prechecks import check_pad

        pre = Preprocess.from_section(sec)
        if pre.active:
            check_pad(pre.pad_s, block_s, sec["pad_s"] is not None, source)


def _check_filter(filt: dict, where: str) -> dict:
    kind = filt.get("type")
    if kind not in FILTERS:
        raise ConfigError(f"{where}filter' needs type = highpass, lowpass or bandpass, got {kind!r}")
    allowed = set(FILTERS[kind]) | {"type", "corners", "zerophase"}
    for key in filt:
        if key not in allowed:
            raise ConfigError(f"{where}filter': unknown key '{key}' for a {kind} (known: {', '.join(sorted(allowed))})")
    for key in FILTERS[kind]:
        value = filt.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"{where}filter.{key}' must be a positive frequency in Hz, got {value!r}")
        filt[key] = float(value)
    if kind == "bandpass" and not filt["freqmin"] < filt["freqmax"]:
        raise ConfigError(f"{where}filter': freqmin must be below freqmax")
    corners = filt.setdefault("corners", 4)
    if isinstance(corners, bool) or not isinstance(corners, int) or corners < 1:
        raise ConfigError(f"{where}filter.corners' must be an integer >= 1, got {corners!r}")
    if not isinstance(filt.setdefault("zerophase", False), bool):
        raise ConfigError(f"{where}filter.zerophase' must be true or false")
    return filt


def default_pad(pre: Preprocess) -> float:
    """The margin (seconds) a block processes on each side, from the settings alone.

    Twice the longest transient of the steps (the first half holds ObsPy's
    cosine taper of the response removal, the second lets the transient of a
    cut decay): a step's transient is where the impulse response of the
    filter, of the ``pre_filt`` window (zero-phase, two-sided) and of
    ``resample_poly``'s filter (at most 10 s for input rates of 1 Hz and up)
    stays above :data:`TRANSIENT_TOLERANCE` of its peak. Rounded up to whole
    seconds; 0 without preprocessing.
    """
    if not pre.active:
        return 0.0
    top = max([10.0] + [v for k, v in pre.filter_options.items() if k.startswith("freq")] + list(pre.pre_filt or ()))
    fs = 4.0 * top
    spans = [10.0 if pre.sampling_rate is not None else 0.0]
    if pre.filter is not None:
        spans.append(_filter_transient(pre.filter_options, fs))
    if pre.response in _OUTPUT:
        spans.append(_prefilt_transient(pre.pre_filt, fs))
    return float(math.ceil(2.0 * max(spans)))


def _extent(h: np.ndarray, centre: int, fs: float) -> float:
    """Seconds from ``centre`` to the farthest sample of ``h`` above the tolerance."""
    above = np.flatnonzero(np.abs(h) > TRANSIENT_TOLERANCE * np.abs(h).max())
    return max(abs(above[0] - centre), abs(above[-1] - centre)) / fs


def _filter_transient(opts: dict, fs: float) -> float:
    from obspy.signal import filter as obsfilter

    lowest = min(v for k, v in opts.items() if k.startswith("freq"))
    n = int(2 ** math.ceil(math.log2(fs * 400.0 / lowest)))
    x = np.zeros(n)
    x[n // 2] = 1.0
    kwargs = {k: v for k, v in opts.items() if k != "type"}
    y = getattr(obsfilter, opts["type"])(x, df=fs, **kwargs)
    return _extent(y, n // 2, fs)


def _prefilt_transient(pre_filt: tuple, fs: float) -> float:
    from obspy.signal.invsim import cosine_sac_taper

    n = int(2 ** math.ceil(math.log2(fs * 400.0 / pre_filt[0])))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    h = np.fft.fftshift(np.fft.irfft(cosine_sac_taper(freqs, flimit=pre_filt), n))
    return _extent(h, n // 2, fs)


def ratio(rate_in: float, rate_out: float, channel: str) -> tuple[int, int]:
    """``(up, down)`` with ``rate_in * up / down == rate_out``.

    Raises
    ------
    InputError
        No ratio with terms up to :data:`MAX_RATIO_TERM` gives ``rate_out``;
        names the channel and both rates.
    """
    frac = Fraction(rate_out / rate_in).limit_denominator(MAX_RATIO_TERM)
    if (frac.numerator > MAX_RATIO_TERM or not frac
            or not math.isclose(rate_in * frac.numerator / frac.denominator, rate_out, rel_tol=1e-9)):
        raise InputError(f"{channel}: cannot resample {rate_in:g} Hz to {rate_out:g} Hz with a ratio of integers "
                         f"up to {MAX_RATIO_TERM} ([preprocess] sampling_rate)")
    return frac.numerator, frac.denominator


# --- inventory ---------------------------------------------------------------------------------

def inventory_files(patterns: T.Iterable[str]) -> list[str]:
    """The StationXML files of ``patterns`` (sorted); an InputError for a glob matching nothing."""
    out = []
    for pattern in patterns:
        hits = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not hits:
            raise InputError(f"preprocess.inventory: no file matches {pattern}")
        out += hits
    return sorted(dict.fromkeys(out))


def load_inventory(patterns: T.Iterable[str]):
    """The merged ObsPy Inventory of the files (cached per process while they are unchanged)."""
    files = inventory_files(patterns)
    key = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in files)
    return _load(key)


@functools.lru_cache(maxsize=4)
def _load(key: tuple):
    from obspy import Inventory, read_inventory

    inv = Inventory(networks=[], source="scatflow")
    for path, _, _ in key:
        try:
            inv += read_inventory(path)
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad XML
            raise InputError(f"{path}: cannot read StationXML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return inv


def _in_epoch(obj, t_ns: int) -> bool:
    start = obj.start_date.ns if obj.start_date is not None else -(2 ** 62)
    end = obj.end_date.ns if obj.end_date is not None else 2 ** 62
    return start <= t_ns <= end


def coordinates(inv, seed_id: str, t_ns: int) -> dict:
    """``latitude``, ``longitude`` (degrees), ``elevation``, ``depth`` (m) of a channel at ``t_ns``
    (the epoch in force then, else its latest epoch; NaN when the inventory lacks the channel)."""
    found = epochs(inv, seed_id)
    now = [c for s, c in found if _in_epoch(c, t_ns)]
    chan = now[0] if now else (max(found, key=lambda e: e[1].start_date or 0)[1] if found else None)
    if chan is None:
        return dict.fromkeys(("latitude", "longitude", "elevation", "depth"), float("nan"))
    return {"latitude": float(chan.latitude), "longitude": float(chan.longitude),
            "elevation": float(chan.elevation), "depth": float(chan.depth)}


def units(pre: Preprocess, inv, channels: list[str], t_ns: int) -> str:
    """Units of a station's processed samples (``counts``, ``m/s``, ``m``, ``m/s**2``; with
    ``sensitivity``, the response's input units: the SI ones as these, others as the inventory
    writes them, e.g. ``Pa``)."""
    if pre.units is not None:
        return pre.units
    for seed_id in channels:
        for _, c in epochs(inv, seed_id):
            sens = getattr(c.response, "instrument_sensitivity", None)
            if sens is not None and sens.input_units:
                u = sens.input_units.upper()
                return {"M/S": "m/s", "M": "m", "M/S**2": "m/s**2", "M/S/S": "m/s**2"}.get(u, sens.input_units)
    return "unknown"


# --- processing --------------------------------------------------------------------------------

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
        response = next((p for j0, j1, p in spans if j0 <= a < j1)).response_at(t0) if spans else None
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
    """Response (``response``: the one in force over the whole run), filter and resampling of one
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
                tr.stats.response = response
                if pre.response == "sensitivity":
                    tr.remove_sensitivity()
                else:
                    # The cosine taper covers the first half of the pad at each end (the pad is twice the
                    # transient), whatever the run's length, so a cut's effect is the same in every block.
                    frac = min(1.0, pre.pad_s * raw / tr.stats.npts)
                    tr.remove_response(output=_OUTPUT[pre.response], pre_filt=pre.pre_filt,
                                       water_level=pre.water_level, zero_mean=True, taper=True,
                                       taper_fraction=frac)
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


def steps_text(record: dict) -> str:
    """The steps of a design's ``preprocess`` record (:meth:`Preprocess.record`) in words, e.g.
    ``response velocity (pre_filt [0.2, 0.5, 8, 9.5] Hz, water level 60 dB); highpass corners 4,
    freq 1, zerophase True; resampled to 50 Hz`` (for ``--dry-run`` and ``scatflow info``)."""
    def num(v):
        return f"{v:g}" if isinstance(v, float) else str(v)

    steps = []
    if record.get("response", "none") != "none":
        steps.append(f"response {record['response']}" + (
            f" (pre_filt [{', '.join(num(f) for f in record['pre_filt'])}] Hz, water level "
            f"{num(record['water_level'])} dB)" if record.get("pre_filt") else ""))
    if record.get("filter"):
        f = record["filter"]
        steps.append(f"{f['type']} " + ", ".join(f"{k} {num(v)}" for k, v in sorted(f.items()) if k != "type"))
    if record.get("sampling_rate"):
        steps.append(f"resampled to {num(record['sampling_rate'])} Hz")
    return "; ".join(steps)


def describe(pre: Preprocess) -> str:
    """One line for ``--dry-run``: the steps and the pad."""
    return (f"preprocess: {steps_text(pre.record())}; pad {pre.pad_s:g} s each side of a block "
            f"(samples within {pre.pad_s:g} s of a data edge count as not recorded)")
