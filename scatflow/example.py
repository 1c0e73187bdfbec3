"""Synthetic example data: a day-long stream and a small SDS archive.

Everything here is generated, never downloaded, so that examples, tutorials
and tests run offline and give the same numbers everywhere.

The signal model is the sum of

* background noise: a microseism bump near 0.2 Hz plus a weakly pink floor
  above ~0.7 Hz (Gaussian noise through a fixed FIR filter);
* volcanic-like tremor: daily episodes that start around 09:30 UTC, grow for
  several hours and die away shortly before midnight; three harmonics of a
  slowly wandering fundamental (about 1.1-2 Hz, so lines up to ~6 Hz) plus a
  little band-limited (1-5 Hz) noise, amplitude-modulated on minute scales;
* transient events: 30-40 per UTC day at random times, Gutenberg-Richter
  magnitudes (b = 1), impulsive onset and exponential coda, band-limited to
  2-15 Hz (capped below Nyquist), with a P and an S arrival whose amplitudes
  differ by component (P strongest on Z, S on the horizontals).

The generator is a pure function of *absolute* sample index: every random
stream is seeded from ``seed`` and what it describes (a station, a trace id,
a UTC day, a fixed-size block of samples), never from the requested span.
So any span of any length gives bit-identical samples where spans overlap
(with a given NumPy build; another FFT implementation may move a rare sample
by one count): ``synthetic_day`` for 2015-12-05 equals the 2015-12-05 day
files of ``write_archive``, and a window across midnight in the archive is
exactly the continuous signal.

Amplitudes are integer counts of a low-gain recorder: quiet-night noise of
about 10-15 counts RMS, tremor peaking near 50 counts RMS, event peaks from
tens of counts to a few 10^5. Sample-to-sample differences stay small most
of the time so that STEIM2 packs them tightly (about 0.7 byte per sample).
"""

from __future__ import annotations

import functools
import math
import operator
import os
import pathlib
import typing
import zlib
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
from obspy import Stream, Trace, UTCDateTime
from obspy.clients.filesystem.sds import SDS_FMTSTR

__all__ = ["synthetic_day", "write_day", "write_archive"]

DAY_S = 86400

# Tags separate the random streams so that, e.g., the noise of block 7 never
# shares a seed with the event catalogue of day 7.
_TAG_NOISE = 1
_TAG_SCENARIO = 2
_TAG_STATION = 3
_TAG_CHANNEL = 4
_TAG_EPISODE = 5
_TAG_CATALOG = 6
_TAG_EVENT_STATION = 7
_TAG_EVENT_TRACE = 8

# Noise is made block by block on the absolute sample grid: block b covers
# samples [b * block, (b + 1) * block). One FFT per block filters that block's
# white noise plus the previous block's tail, so each block is computed
# identically whatever span asked for it. The FIR spans at least this long,
# enough to shape the 0.2 Hz microseism peak:
_KERNEL_S = 60.0

# Tremor phase is counted from here (2015-01-01) rather than from 1970 to keep
# the cycle count, and so its rounding error, small.
_T_REF = 1420070400.0

# Amplitudes in counts (RMS of each part with unit gains).
_MICROSEISM_RMS = 12.0
_FLOOR_RMS = 2.0
_TREMOR_RMS = 45.0
_TREMOR_NOISE_FRACTION = 0.35
_EVENT_RMS = 40.0
_MAG_MAX = 3.3
_F0_MAX = 1.65 + 0.25 + 0.12 + 0.05  # highest tremor fundamental, Hz (see _scenario)

# Longest event (S-P + coda) plus largest delay, in seconds; used only to know
# which earlier days' events can still reach a block.
_EVENT_LOOKBACK_S = 120.0

_INT32_MAX = np.iinfo(np.int32).max

# The default archive: (network, station, location, sampling rate in Hz,
# channels). The gap and the missing day are placed on the middle day.
_ARCHIVE_STATIONS = (
    ("X9", "SV13", "", 50.0, ("HHZ", "HHN", "HHE")),
    ("X9", "SV15", "", 50.0, ("HHZ", "HHN", "HHE")),
    ("X9", "SV20", "00", 20.0, ("BHZ", "BHN", "BHE")),
)
_GAP_ID = "X9.SV15..HHZ"
_GAP_OFFSET_S = (13 * 3600 + 20 * 60, 13 * 3600 + 25 * 60)  # into the day
_MISSING_STATION = "X9.SV20.00"


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def synthetic_day(
    start="2015-12-04T00:00:00",
    sampling_rate: float = 50.0,
    network: str = "X9",
    station: str = "SV13",
    location: str = "",
    channels=("HHZ", "HHN", "HHE"),
    duration_s: float = 86400.0,
    seed: int = 0,
) -> Stream:
    """Make a synthetic multi-component stream (by default one day, 3 channels).

    Quiet night-time noise, tremor from about 09:30 UTC that grows over
    hours and fades before midnight, and 30-40 transient events per day.
    Deterministic: the same arguments always give the same samples, and two
    calls whose spans overlap give identical samples on the overlap.

    Parameters
    ----------
    start : str or obspy.UTCDateTime
        Time of the first sample (UTC).
    sampling_rate : float
        Sampling rate in Hz (> 0).
    network, station, location : str
        SEED codes; they also select the station's random gains and noise.
    channels : sequence of str
        Channel codes, one trace each. A code ending in ``Z`` is treated as
        vertical (stronger P and tremor), any other as horizontal.
    duration_s : float
        Duration in seconds; the stream has ``round(duration_s *
        sampling_rate)`` samples per channel.
    seed : int
        Non-negative scenario seed. The same seed gives the same tremor
        episodes and event catalogue at every station.

    Returns
    -------
    obspy.Stream
        One ``int32`` trace (counts) per channel, in the order of
        ``channels``, each starting exactly at ``start``.
    """
    t0 = UTCDateTime(start)
    fs = _positive_rate(sampling_rate)
    npts = round(float(duration_s) * fs)
    if npts < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    channels = tuple(channels)
    threads = min(4, os.cpu_count() or 1)
    k0 = _sample_index(t0, fs)
    data = _render(_seed(seed), network, station, location, channels, fs, k0, npts, threads)
    traces = []
    for code, row in zip(channels, data):
        header = {
            "network": network,
            "station": station,
            "location": location,
            "channel": code,
            "sampling_rate": fs,
            "starttime": t0,
        }
        traces.append(Trace(data=row, header=header))
    return Stream(traces)


def write_day(path, **kwargs) -> pathlib.Path:
    """Write :func:`synthetic_day` to one miniSEED file (STEIM2, 4096-byte records).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; missing parent directories are created, an existing file
        is overwritten.
    **kwargs
        Passed to :func:`synthetic_day`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mseed(synthetic_day(**kwargs), path)
    return path


def write_archive(root, start="2015-12-04", days: int = 3, seed: int = 0) -> dict:
    """Write a small synthetic SDS archive (SeisComP layout) under ``root``.

    Three stations, each one continuous signal over the whole span, cut into
    day files exactly at midnight, so data read across midnight is seamless:

    * ``X9.SV13.`` and ``X9.SV15.``: 50 Hz, ``HHZ``, ``HHN``, ``HHE``;
    * ``X9.SV20.00``: 20 Hz, ``BHZ``, ``BHN``, ``BHE``.

    All stations see the same tremor episodes and event catalogue (with
    station-dependent gains and delays). Files are
    ``ROOT/YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY`` (one per
    channel-day, STEIM2, 4096-byte records), readable with
    :class:`obspy.clients.filesystem.sds.Client`. On the middle day (index
    ``days // 2``) two defects are planted: ``X9.SV15..HHZ`` lacks the
    samples from 13:20:00 (inclusive) to 13:25:00 (exclusive), so its file
    holds two traces, and all ``X9.SV20.00`` files of that day are absent.
    A 50 Hz channel-day takes about 3 MB and a 20 Hz one about 1.4 MB: three
    days (24 files) are about 60 MB, written in about 5 s on two cores.

    Parameters
    ----------
    root : str or os.PathLike
        Archive root; created if needed. Existing files are overwritten.
    start : str or obspy.UTCDateTime
        First day (UTC); must be a midnight.
    days : int
        Number of consecutive days (>= 1).
    seed : int
        Scenario seed, as in :func:`synthetic_day`.

    Returns
    -------
    dict
        ``root`` (str), ``start`` and ``end`` (ISO 8601 UTC, end exclusive),
        ``days`` (ISO dates), ``seed``, ``stations`` (``"NET.STA.LOC"`` ->
        ``{"sampling_rate": Hz, "channels": [full SEED ids]}``), ``gap``
        (``id``, ``start`` = first missing sample, ``end`` = first sample
        after the gap), ``missing`` (``station`` as ``"NET.STA.LOC"``,
        ``day`` as an ISO date) and ``files`` (paths relative to ``root``).
    """
    root = pathlib.Path(root)
    t0 = UTCDateTime(start)
    if t0.ns % (DAY_S * 10**9):
        raise ValueError(f"start must be a midnight (UTC), got {t0.isoformat()}")
    days = operator.index(days)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    seed = _seed(seed)

    defect_day = t0 + (days // 2) * DAY_S
    gap_start = defect_day + _GAP_OFFSET_S[0]
    gap_end = defect_day + _GAP_OFFSET_S[1]
    day_starts = [t0 + i * DAY_S for i in range(days)]

    stations = {
        f"{net}.{sta}.{loc}": {"sampling_rate": fs, "channels": [f"{net}.{sta}.{loc}.{c}" for c in channels]}
        for net, sta, loc, fs, channels in _ARCHIVE_STATIONS
    }
    tasks = [
        (spec, day)
        for spec in _ARCHIVE_STATIONS
        for day in day_starts
        if not (".".join(spec[:3]) == _MISSING_STATION and day == defect_day)
    ]

    def render(task):
        (net, sta, loc, fs, channels), day = task
        # _render is a pure function of the absolute sample index, so one
        # render per day is bit-identical to slicing one render of the whole
        # span (the tests check this across midnight), and keeps memory to a
        # day per task.
        k0 = _sample_index(day, fs)
        return k0, _render(seed, net, sta, loc, channels, fs, k0, _sample_index(day + DAY_S, fs) - k0)

    files = []
    for net, sta, loc, fs, channels in _ARCHIVE_STATIONS:
        if f"{net}.{sta}.{loc}" == _MISSING_STATION:
            # A file left by an earlier run with other ``days`` would fill the hole.
            for code in channels:
                (root / _sds_path(defect_day, net, sta, loc, code)).unlink(missing_ok=True)
    # Rendering is NumPy-bound and releases the GIL; writing stays in this
    # thread because libmseed's packing is not known to be thread-safe.
    with ThreadPoolExecutor(max_workers=max(1, min(len(tasks), os.cpu_count() or 1, 8))) as pool:
        for ((net, sta, loc, fs, channels), day), (k0, data) in zip(tasks, pool.map(render, tasks)):
            for code, row in zip(channels, data):
                pieces = [(0, row.size)]
                if f"{net}.{sta}.{loc}.{code}" == _GAP_ID and day == defect_day:
                    g0, g1 = _sample_index(gap_start, fs) - k0, _sample_index(gap_end, fs) - k0
                    pieces = [(0, g0), (g1, row.size)]
                header = {"network": net, "station": sta, "location": loc, "channel": code}
                header["sampling_rate"] = fs
                stream = Stream(
                    [
                        Trace(data=row[i:j], header=dict(header, starttime=_index_time(k0 + i, fs)))
                        for i, j in pieces
                    ]
                )
                rel = _sds_path(day, net, sta, loc, code)
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_mseed(stream, path)
                files.append(rel)

    return {
        "root": str(root),
        "start": t0.isoformat(),
        "end": (t0 + days * DAY_S).isoformat(),
        "days": [d.date.isoformat() for d in day_starts],
        "seed": seed,
        "stations": stations,
        "gap": {"id": _GAP_ID, "start": gap_start.isoformat(), "end": gap_end.isoformat()},
        "missing": {"station": _MISSING_STATION, "day": defect_day.date.isoformat()},
        "files": sorted(files),
    }


# --------------------------------------------------------------------------
# Helpers: seeds, time grid, I/O
# --------------------------------------------------------------------------


def _seed(seed) -> int:
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed


def _positive_rate(sampling_rate) -> float:
    fs = float(sampling_rate)
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"sampling_rate must be a positive number of Hz, got {sampling_rate!r}")
    return fs


def _zigzag(n: int) -> int:
    # SeedSequence only takes non-negative entropy; dates before 1970 give
    # negative day and block numbers.
    n = int(n)
    return 2 * n if n >= 0 else -2 * n - 1


def _key(text: str) -> int:
    # crc32, not hash(): hash() of a str changes between processes.
    return zlib.crc32(text.encode("utf-8"))


def _rng(*entropy) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(e) for e in entropy]))


def _sample_index(t: UTCDateTime, fs: float) -> int:
    # Exact rational arithmetic: start.timestamp * fs in float64 could round
    # a start that lies on the grid to the neighbouring sample.
    return round(Fraction(t.ns) * Fraction(fs) / 10**9)


def _index_time(k: int, fs: float) -> UTCDateTime:
    return UTCDateTime(ns=round(Fraction(k) / Fraction(fs) * 10**9))


def _sds_path(day: UTCDateTime, net: str, sta: str, loc: str, cha: str) -> str:
    return SDS_FMTSTR.format(
        year=day.year, doy=day.julday, network=net, station=sta, location=loc, channel=cha, sds_type="D"
    )


def _write_mseed(stream: Stream, path: pathlib.Path) -> None:
    stream.write(os.fspath(path), format="MSEED", encoding="STEIM2", reclen=4096)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --------------------------------------------------------------------------
# Signal model
# --------------------------------------------------------------------------


class _Filters(typing.NamedTuple):
    kernel: int  # FIR length, samples
    fft: int  # FFT length per block, samples
    block: int  # output samples per block: fft - kernel + 1
    background: np.ndarray  # rfft (length fft) of the background FIR, counts
    tremor: np.ndarray  # rfft of the tremor-noise FIR (unit RMS)


@functools.lru_cache(maxsize=8)
def _filters(fs: float) -> _Filters:
    """Block sizes and FIR spectra of the background and tremor noise at ``fs`` Hz.

    Each FIR is scaled so that unit white noise comes out with the target
    RMS in counts (background) or RMS 1 (tremor noise).
    """
    kernel = max(256, 1 << math.ceil(math.log2(_KERNEL_S * fs)))
    fft = max(1 << 16, 16 * kernel)
    f = np.fft.rfftfreq(kernel, 1.0 / fs)
    nyquist = fs / 2.0
    with np.errstate(divide="ignore"):
        logf = np.where(f > 0, np.log(np.maximum(f, 1e-12)), -np.inf)
    # No energy in the last ~15 % below Nyquist, like a real anti-alias filter.
    antialias = 1.0 - _smoothstep((f - 0.8 * nyquist) / (0.15 * nyquist))

    def fir(response, rms):
        h = np.fft.irfft(response, kernel)
        h = np.roll(h, kernel // 2) * np.hanning(kernel)
        norm = np.sqrt(np.sum(h * h))
        # A band entirely above Nyquist (very low sampling rates) is silent.
        return h * (rms / norm) if norm > 0 else h

    microseism = np.exp(-0.5 * ((logf - np.log(0.2)) / 0.3) ** 2)
    fc = 0.7
    highpass = (f / fc) ** 4 / (1.0 + (f / fc) ** 4)
    floor = np.where(f > 0, highpass * np.maximum(f, 1e-12) ** -0.25, 0.0) * antialias
    tremor = np.exp(-0.5 * ((logf - np.log(2.5)) / 0.4) ** 2) * antialias

    background = fir(microseism, _MICROSEISM_RMS) + fir(floor, _FLOOR_RMS)
    spectra = (np.fft.rfft(background, fft), np.fft.rfft(fir(tremor, 1.0), fft))
    for s in spectra:
        s.setflags(write=False)
    return _Filters(kernel, fft, fft - kernel + 1, *spectra)


@functools.lru_cache(maxsize=64)
def _scenario(seed: int) -> dict:
    """Station-independent tremor source: wandering fundamental and modulation."""
    rng = _rng(seed, _TAG_SCENARIO)
    return {
        "f_base": 1.55 + rng.uniform(-0.1, 0.1),
        # (amplitude Hz, period s, phase rad): the fundamental wanders by up
        # to ~0.4 Hz over hours, faster by little.
        "wander": [
            (0.25, rng.uniform(5, 8) * 3600, rng.uniform(0, 2 * np.pi)),
            (0.12, rng.uniform(1.5, 2.5) * 3600, rng.uniform(0, 2 * np.pi)),
            (0.05, rng.uniform(20, 40) * 60, rng.uniform(0, 2 * np.pi)),
        ],
        # (relative depth, period s, phase rad): pulsations of the amplitude.
        "modulation": [
            (0.25, rng.uniform(15, 35) * 60, rng.uniform(0, 2 * np.pi)),
            (0.12, rng.uniform(2, 5) * 60, rng.uniform(0, 2 * np.pi)),
        ],
    }


@functools.lru_cache(maxsize=64)
def _station_params(seed: int, nsl: str) -> dict:
    rng = _rng(seed, _TAG_STATION, _key(nsl))
    return {"noise_gain": rng.uniform(0.8, 1.25), "tremor_gain": rng.uniform(0.7, 1.3)}


@functools.lru_cache(maxsize=256)
def _channel_params(seed: int, trace_id: str) -> dict:
    rng = _rng(seed, _TAG_CHANNEL, _key(trace_id))
    vertical = trace_id.endswith("Z")
    weights = np.array([1.0, 0.6, 0.35]) * rng.uniform(0.8, 1.2, 3)
    weights /= np.sqrt(np.sum(weights**2) / 2.0)  # harmonic part has RMS 1
    phases = rng.uniform(0, 2 * np.pi, 3)
    return {
        "vertical": vertical,
        "noise_gain": rng.uniform(0.9, 1.1),
        "tremor_gain": rng.uniform(0.85, 1.15) if vertical else rng.uniform(0.5, 0.9),
        # cos(x + p) = cos x cos p - sin x sin p: per harmonic, the weights of
        # the shared cos and sin arrays.
        "cos": weights * np.cos(phases),
        "sin": -weights * np.sin(phases),
    }


def _episode(seed: int, day: int):
    """Tremor envelope (dimensionless, peak ~1) of the episode starting on ``day``."""
    rng = _rng(seed, _TAG_EPISODE, _zigzag(day))
    t_day = day * DAY_S
    onset = t_day + 9.5 * 3600 + rng.uniform(-900, 900)
    rise = rng.uniform(4, 7) * 3600
    peak = rng.uniform(0.75, 1.25)
    # Fade out before midnight so the next night is quiet (a residual of a
    # few per cent at most is left at 00:00).
    off = t_day + rng.uniform(22.0, 23.0) * 3600
    tau = rng.uniform(900, 1500)

    def envelope(t):
        on = _smoothstep((t - onset) / 300.0) * (0.12 + 0.88 * _smoothstep((t - onset) / rise))
        at_off = (0.12 + 0.88 * _smoothstep((off - onset) / rise))
        decay = at_off * np.exp(-np.maximum(t - off, 0.0) / tau)
        return peak * np.where(t < off, on, decay)

    return envelope


def _tremor_envelope(seed: int, grid: np.ndarray) -> np.ndarray:
    """Envelope at absolute times ``grid`` (s); an episode lasts at most into the next day."""
    scenario = _scenario(seed)
    day_of = np.floor(grid / DAY_S)
    env = np.zeros_like(grid)
    for day in range(int(day_of[0]) - 1, int(day_of[-1]) + 1):
        inside = (day_of == day) | (day_of == day + 1)
        if inside.any():
            env += np.where(inside, _episode(seed, day)(grid), 0.0)
    modulation = np.ones_like(grid)
    for depth, period, phase in scenario["modulation"]:
        modulation += depth * np.sin(2 * np.pi * grid / period + phase)
    return env * modulation


def _tremor_cycles(seed: int, t: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Phase of the fundamental, in cycles, at absolute times ``t`` (s).

    ``grid`` (s) must bracket ``t``; the slow wander term is evaluated there
    and interpolated (its periods are >= 20 min, so the error is ~1e-5 cycle).
    """
    scenario = _scenario(seed)
    # Integral of f0(t) = f_base + sum(a cos(2 pi t / P + p)), done analytically
    # so no cumulative sum ties a sample to the start of the span.
    rel = grid - _T_REF
    wander = np.zeros_like(grid)
    for amp, period, phase in scenario["wander"]:
        wander += amp * period / (2 * np.pi) * np.sin(2 * np.pi * rel / period + phase)
    cycles = np.interp(t, grid, wander)
    cycles += scenario["f_base"] * (t - _T_REF)
    return cycles


@functools.lru_cache(maxsize=64)
def _catalog(seed: int, day: int) -> dict:
    """Events of one UTC day: origin times (s since 1970) and source parameters."""
    rng = _rng(seed, _TAG_CATALOG, _zigzag(day))
    n = int(rng.integers(30, 41))
    cat = {
        "time": day * DAY_S + np.sort(rng.uniform(0, DAY_S, n)),
        # Gutenberg-Richter with b = 1 above magnitude 0, truncated.
        "mag": np.minimum(rng.exponential(1 / np.log(10), n), _MAG_MAX),
        "f_lo": rng.uniform(2, 4, n),
        "f_hi": rng.uniform(8, 15, n),
        "tau_p": rng.uniform(0.3, 1.0, n),
        "coda_jitter": rng.uniform(0, 2.0, n),
    }
    cat["tau_c"] = 2.0 + 2.5 * cat["mag"] + cat["coda_jitter"]
    for v in cat.values():
        v.setflags(write=False)
    return cat


def _event_wave(seed, day, i, cat, nsl, trace_id, vertical, fs):
    """Onset sample index and waveform (counts) of event ``i`` of ``day`` on one trace."""
    srng = _rng(seed, _TAG_EVENT_STATION, _zigzag(day), i, _key(nsl))
    delay = srng.uniform(0.3, 2.5)
    sp = srng.uniform(0.8, 3.5)
    amp = _EVENT_RMS * 10 ** cat["mag"][i] * srng.uniform(0.4, 1.6)
    onset = round((cat["time"][i] + delay) * fs)
    tau_c = cat["tau_c"][i]
    m = int(math.ceil((sp + 7 * tau_c) * fs))

    def wave():
        rng = _rng(seed, _TAG_EVENT_TRACE, _zigzag(day), i, _key(trace_id))
        if vertical:
            p_amp, s_amp = rng.uniform(0.7, 1.0), rng.uniform(0.25, 0.5)
        else:
            p_amp, s_amp = rng.uniform(0.15, 0.45), rng.uniform(0.6, 1.2)
        f = np.fft.rfftfreq(m, 1.0 / fs)
        f_lo = cat["f_lo"][i]
        f_hi = min(cat["f_hi"][i], 0.45 * fs / 1.3)
        band = _smoothstep((f - 0.6 * f_lo) / (0.4 * f_lo)) * (1.0 - _smoothstep((f - f_hi) / (0.3 * f_hi)))
        w = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * band, m)
        rms = w.std()
        if not rms > 0:  # band above Nyquist (very low sampling rates)
            return np.zeros(m)
        w /= rms
        tt = np.arange(m) / fs
        ts = np.maximum(tt - sp, 0.0)
        env = p_amp * (1 - np.exp(-tt / 0.02)) * np.exp(-tt / cat["tau_p"][i])
        env += s_amp * np.where(tt >= sp, (1 - np.exp(-ts / 0.04)) * np.exp(-ts / tau_c), 0.0)
        return amp * w * env

    return onset, m, wave


def _render(seed, network, station, location, channels, fs, k0, npts, threads=1) -> np.ndarray:
    """Samples ``k0 .. k0 + npts - 1`` of the absolute grid ``k / fs`` (s since 1970).

    Returns an ``int32`` array of shape ``(len(channels), npts)`` in counts.
    Works block by block on the absolute grid so any span gives the same
    samples (see the module docstring); that also makes it safe to split the
    span between ``threads`` threads (NumPy releases the GIL).
    """
    out = np.empty((len(channels), npts), dtype=np.int32)
    if npts == 0 or not channels:
        return out
    size = _filters(fs).block
    first, last = k0 // size, (k0 + npts - 1) // size
    threads = max(1, min(threads, last - first + 1))
    if threads == 1:
        _render_into(out, seed, network, station, location, channels, fs, k0)
        return out
    # Cut on block boundaries so that no block is computed twice.
    n_blocks = last - first + 1
    cuts = [k0] + [(first + n_blocks * i // threads) * size for i in range(1, threads)] + [k0 + npts]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = [
            pool.submit(_render_into, out[:, a - k0 : b - k0],
                        seed, network, station, location, channels, fs, a)
            for a, b in zip(cuts[:-1], cuts[1:])
        ]
        for job in jobs:
            job.result()
    return out


def _render_into(out, seed, network, station, location, channels, fs, k0) -> None:
    """Fill ``out`` (int32, shape ``(len(channels), npts)``) from sample ``k0`` on."""
    npts = out.shape[1]
    nsl = f"{network}.{station}.{location}"
    ids = [f"{nsl}.{c}" for c in channels]
    spar = _station_params(seed, nsl)
    cpar = [_channel_params(seed, i) for i in ids]
    noise_keys = [_key(i) for i in ids]
    filt = _filters(fs)
    size, kernel = filt.block, filt.kernel
    # Harmonics that could reach Nyquist (low sampling rates) would alias.
    keep = np.array([h * _F0_MAX < 0.4 * fs for h in (1, 2, 3)])
    waves: dict = {}

    def white(c, block):
        return _rng(seed, _TAG_NOISE, noise_keys[c], round(fs * 1000), _zigzag(block)).standard_normal(size)

    first, last = k0 // size, (k0 + npts - 1) // size
    previous = [white(c, first - 1) for c in range(len(channels))]
    for block in range(first, last + 1):
        kb = block * size
        t = np.arange(kb, kb + size, dtype=np.int64) / fs
        # The envelope varies over minutes: evaluate it each second and interpolate.
        grid = np.arange(math.floor(t[0]) - 1, math.ceil(t[-1]) + 2, dtype=np.float64)
        env = np.interp(t, grid, _tremor_envelope(seed, grid))
        angle = np.mod(_tremor_cycles(seed, t, grid), 1.0)
        angle *= 2 * np.pi
        # Higher harmonics by the angle-addition formulas: far cheaper than
        # four more trigonometric calls per block.
        c1, s1 = np.cos(angle), np.sin(angle)
        c2, s2 = 2 * c1 * c1 - 1, 2 * s1 * c1
        c3, s3 = c1 * c2 - s1 * s2, s1 * c2 + c1 * s2
        harmonics = ((c1, s1), (c2, s2), (c3, s3))
        events = _events_near(seed, (kb - _EVENT_LOOKBACK_S * fs) / fs, (kb + size) / fs)

        lo, hi = max(k0, kb), min(k0 + npts, kb + size)
        for c, par in enumerate(cpar):
            current = white(c, block)
            spectrum = np.fft.rfft(np.concatenate([previous[c][size - kernel + 1 :], current]))
            previous[c] = current
            background = np.fft.irfft(spectrum * filt.background, filt.fft)[kernel - 1 :]
            tremor = _TREMOR_NOISE_FRACTION * np.fft.irfft(spectrum * filt.tremor, filt.fft)[kernel - 1 :]
            for (cos, sin), a, b, k in zip(harmonics, par["cos"], par["sin"], keep):
                if k:
                    tremor += a * cos
                    tremor += b * sin
            gain = _TREMOR_RMS / math.sqrt(1 + _TREMOR_NOISE_FRACTION**2)
            gain *= spar["tremor_gain"] * par["tremor_gain"]
            tremor *= env
            tremor *= gain
            x = background
            x *= spar["noise_gain"] * par["noise_gain"]
            x += tremor
            for day, i, cat in events:
                onset, m, make = _event_wave(seed, day, i, cat, nsl, ids[c], par["vertical"], fs)
                a, b = max(onset, kb), min(onset + m, kb + size)
                if a < b:
                    key = (day, i, c)
                    if key not in waves:
                        waves[key] = make()
                    x[a - kb : b - kb] += waves[key][a - onset : b - onset]
            x = np.rint(x[lo - kb : hi - kb])
            if not (-_INT32_MAX <= x.min() and x.max() <= _INT32_MAX):  # never by design; NaN fails too
                raise OverflowError(f"synthetic signal of {ids[c]} exceeds int32")
            out[c, lo - k0 : hi - k0] = x


def _events_near(seed, t_start, t_end):
    """(day, index, catalogue) of events with origin time in [t_start, t_end) (s)."""
    found = []
    for day in range(math.floor(t_start / DAY_S), math.floor(t_end / DAY_S) + 1):
        cat = _catalog(seed, day)
        lo, hi = np.searchsorted(cat["time"], [t_start, t_end])
        found.extend((day, int(i), cat) for i in range(lo, hi))
    return found
