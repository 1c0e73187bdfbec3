"""Window and block arithmetic: the one place that answers "which samples, which windows, which block".

A station's windows start at ``origin + k * hop`` (k = 0, 1, ...), each ``bins``
samples long. Windows are grouped into blocks of ``chunk`` consecutive windows:
block ``b`` holds windows ``[b * chunk, min((b + 1) * chunk, n))`` of a store
holding ``n`` windows, and is one task and one Zarr chunk along time. Every
other module asks :class:`Grid` and :class:`Blocks` instead of writing the
arithmetic out again (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ConfigError

#: Relative difference under which two sampling rates are the same rate (and a reported
#: rate that close to a round value is that value): digitisers report 49.9999 Hz for 50 Hz.
RATE_TOLERANCE = 1e-4


def same_rate(a: float, b: float) -> bool:
    """Whether sampling rates ``a`` and ``b`` (Hz) are the same within :data:`RATE_TOLERANCE`."""
    return abs(a - b) <= RATE_TOLERANCE * abs(b)


def whole_samples(seconds: float, rate: float, what: str) -> int:
    """``seconds * rate`` as a whole number of samples.

    Parameters
    ----------
    seconds : float
        Duration, seconds.
    rate : float
        Sampling rate, Hz.
    what : str
        What the duration is (named in the error).

    Raises
    ------
    ConfigError
        Not a whole number of samples (to 1e-6 relative), or less than one.
    """
    n = seconds * rate
    if abs(n - round(n)) > 1e-6 * max(1.0, n) or round(n) < 1:
        raise ConfigError(f"{what} of {seconds} s is not a whole number of samples at {rate} Hz")
    return int(round(n))


@dataclasses.dataclass(frozen=True)
class Grid:
    """The window grid of one station.

    Attributes
    ----------
    origin_ns : int
        Start of window 0, ns since 1970-01-01 UTC.
    sampling_rate : float
        Hz.
    bins : int
        Window length, samples.
    hop : int
        Samples between window starts.
    pad_ns : int
        With preprocessing: the margin processed on each side of a block's span, ns
        (see :mod:`scatflow.inputs.preprocess`); 0 without.
    """

    origin_ns: int
    sampling_rate: float
    bins: int
    hop: int
    pad_ns: int = 0

    @property
    def window_s(self) -> float:
        """Window duration, seconds."""
        return self.bins / self.sampling_rate

    @property
    def hop_s(self) -> float:
        """Seconds between window starts."""
        return self.hop / self.sampling_rate

    @property
    def window_ns(self) -> int:
        """Window duration, integer ns (for window end times)."""
        return int(round(self.window_s * 1e9))

    def start_ns(self, k) -> np.ndarray:
        """Start times of windows ``k`` (ns since 1970), exact integers."""
        k = np.asarray(k, dtype=np.int64)
        return self.origin_ns + np.round(k * (self.hop * 1e9 / self.sampling_rate)).astype(np.int64)

    def times(self, k0: int, k1: int) -> np.ndarray:
        """``datetime64[ns]`` starts of windows ``k0 .. k1-1``."""
        return self.start_ns(np.arange(k0, k1)).astype("datetime64[ns]")

    def sample_ns(self, k: int) -> int:
        """Time of the first sample of window ``k``, ns since 1970."""
        return int(self.start_ns(k))

    def nsamp(self, k0: int, k1: int) -> int:
        """Samples spanned by windows ``k0 .. k1-1`` (from the first's start to the last's end)."""
        return (k1 - 1 - k0) * self.hop + self.bins

    def span_ns(self, k0: int, k1: int) -> tuple[int, int]:
        """First sample time and (exclusive) end time of windows ``k0 .. k1-1``, ns."""
        first = self.sample_ns(k0)
        return first, first + int(round(self.nsamp(k0, k1) * 1e9 / self.sampling_rate))

    def read_span_ns(self, k0: int, k1: int) -> tuple[int, int]:
        """Time span to read for windows ``k0 .. k1-1``, ns: their samples and half a sample
        each side (ObsPy's nearest-sample rule may pick a sample that far from the grid);
        with preprocessing, also the pad and one second more (half a sample at any input
        rate down to 0.5 Hz)."""
        first, end = self.span_ns(k0, k1)
        half = int(5e8 / self.sampling_rate) + (self.pad_ns + 10**9 if self.pad_ns else 0)
        return first - half, end + half

    def block_windows(self, blocks: "Blocks", b: int) -> tuple[int, int]:
        """Windows ``[k0, k1)`` whose samples block ``b`` reads and processes.

        Its own windows; with preprocessing its whole chunk, even while it is the
        group's partial last block, so each processed sample depends on the data
        and its time only, never on how far the store reached when it was computed.
        """
        k0, k1 = blocks.range(b)
        return (k0, k0 + blocks.chunk) if self.pad_ns else (k0, k1)

    def block_read_span(self, blocks: "Blocks", b: int) -> tuple[int, int]:
        """Time span (ns) block ``b`` reads: :meth:`read_span_ns` of :meth:`block_windows`."""
        return self.read_span_ns(*self.block_windows(blocks, b))

    def last_window_before(self, end_ns: int) -> int:
        """Index of the last window lying entirely before ``end_ns`` (may be -1)."""
        span = (end_ns - self.origin_ns) / 1e9 - self.window_s
        return int(math.floor(span / self.hop_s + 1e-9))

    def first_window_ending_after(self, start_ns: int) -> int:
        """Index of the first window that ends after ``start_ns`` (>= 0)."""
        span = (start_ns - self.origin_ns) / 1e9 - self.window_s
        return max(0, int(math.floor(span / self.hop_s + 1e-9)) + 1)

    def windows_within(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """Window indices ``(k_lo, k_hi)``, inclusive, of the windows ending after ``start_ns``
        and lying entirely before ``end_ns``; ``k_hi < k_lo`` when there are none."""
        return self.first_window_ending_after(start_ns), self.last_window_before(end_ns)


@dataclasses.dataclass(frozen=True)
class Blocks:
    """The blocks of a station group: ``chunk`` windows each, ``n`` windows in all.

    Attributes
    ----------
    chunk : int
        Windows per block (the Zarr chunk along time).
    n : int
        Windows in the group.
    """

    chunk: int
    n: int

    @property
    def count(self) -> int:
        """Number of blocks (the last may be partial)."""
        return -(-self.n // self.chunk)

    def range(self, b: int) -> tuple[int, int]:
        """Window indices ``[k0, k1)`` of block ``b``."""
        return b * self.chunk, min((b + 1) * self.chunk, self.n)

    def expected(self, b: int) -> int:
        """Windows block ``b`` holds when complete."""
        k0, k1 = self.range(b)
        return k1 - k0

    def of_windows(self, k_lo: int, k_hi: int) -> range:
        """Blocks holding windows ``k_lo .. k_hi`` (inclusive)."""
        return range(k_lo // self.chunk, k_hi // self.chunk + 1)

    def grown(self, n: int) -> "Blocks":
        """The same blocking over ``n`` windows."""
        return Blocks(self.chunk, n)

    def slices(self, blocks, max_windows: int) -> list[slice]:
        """Contiguous window ranges covering ``blocks``, each at most ``max_windows`` long
        (rounded down to whole blocks, at least one block)."""
        limit = max(self.chunk, max_windows // self.chunk * self.chunk)
        out: list[slice] = []
        for b in sorted(blocks):
            a, e = self.range(b)
            if out and out[-1].stop == a and (e - out[-1].start) <= limit:
                out[-1] = slice(out[-1].start, e)
            else:
                out.append(slice(a, e))
        return out
