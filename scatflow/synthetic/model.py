"""The signal model of the synthetic example data (see :mod:`scatflow.synthetic.example`).

Background noise, volcanic-like tremor and transient events, each a pure
function of the absolute sample index: every random stream is seeded from the
scenario seed and what it describes (a station, a trace id, a UTC day, a
fixed-size block of samples), never from the requested span, so any span
gives bit-identical samples where spans overlap. :func:`render` is the entry
point; :mod:`scatflow.synthetic.example` writes what it renders to files.
"""

from __future__ import annotations

import functools
import math
import typing
import zlib
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
from obspy import UTCDateTime

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


def sample_index(t: UTCDateTime, fs: float) -> int:
    # Exact rational arithmetic: start.timestamp * fs in float64 could round
    # a start that lies on the grid to the neighbouring sample.
    return round(Fraction(t.ns) * Fraction(fs) / 10**9)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


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


def render(seed, network, station, location, channels, fs, k0, npts, threads=1) -> np.ndarray:
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


def _tremor_harmonics(seed, t: np.ndarray):
    """The tremor's envelope and its three harmonics' ``(cos, sin)`` at times ``t`` (s)."""
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
    return env, ((c1, s1), (c2, s2), (c3, s3))


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
        env, harmonics = _tremor_harmonics(seed, np.arange(kb, kb + size, dtype=np.int64) / fs)
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
