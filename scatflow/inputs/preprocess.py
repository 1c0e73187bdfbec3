"""The ``[preprocess]`` settings: what a block does to its samples before windowing.

Owns :class:`Preprocess` (the validated settings, hashable, sent to workers),
the validation of the ``[preprocess]`` section (:func:`check_section`), the
default pad (twice the longest transient of the steps, :func:`default_pad`),
the resampling ratio of a channel (:func:`ratio`) and the steps in words
(:func:`steps_text`, :func:`describe`). The processing itself is
:mod:`scatflow.inputs.process`; StationXML loading, channel coordinates and
units are :mod:`scatflow.inputs.inventory`.
"""

from __future__ import annotations

import dataclasses
import math
import typing as T
from fractions import Fraction

import numpy as np

from ..errors import ConfigError, InputError

RESPONSES = ("none", "sensitivity", "displacement", "velocity", "acceleration")
FILTERS = {"highpass": ("freq",), "lowpass": ("freq",), "bandpass": ("freqmin", "freqmax")}
#: Largest numerator or denominator of a resampling ratio: ``resample_poly``'s filter holds
#: ``20 * max(up, down) + 1`` taps, and a ratio such as 500/499 (a 49.9 Hz channel to 50 Hz)
#: is a clock problem, not a rate to resample.
MAX_RATIO_TERM = 100
#: Relative level under which a step's transient counts as decayed (for the default pad).
TRANSIENT_TOLERANCE = 1e-6
#: ObsPy ``remove_response`` output of each full-response setting.
OBSPY_OUTPUT = {"displacement": "DISP", "velocity": "VEL", "acceleration": "ACC"}
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
            "water_level": self.water_level if self.response in OBSPY_OUTPUT else None,
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
    if sec["response"] in OBSPY_OUTPUT and sec["pre_filt"] is None:
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
    if pre.response in OBSPY_OUTPUT:
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
