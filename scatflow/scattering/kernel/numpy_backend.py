"""The NumPy/SciPy backend of the cascade: CPU arrays, ``scipy.fft`` transforms.

Why it is fast without compiled code:

* :class:`~scatflow.scattering.kernel.cascade.Cascade` walks rows in groups of about
  :data:`GROUP_BYTES`, depth first, into buffers reused by each thread
  (:meth:`NumpyBackend.buffers`), so the large intermediates (24 x 6 x bins
  complex values per channel) never hit main memory as one block;
* ``scipy.fft`` transforms in place and releases the GIL, so threads over
  inner batches of :data:`INNER_BATCH` windows keep every core busy;
* the forward transform of a real row is an ``rfft`` plus its conjugate
  mirror, half the work of a complex FFT;
* the median is a single in-place integer ``partition`` (:func:`median_inplace`);
* with a taper, the median and the max read the pooled samples as one or two
  slices (:func:`contiguous_runs`), not as a gather.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import scipy.fft

#: Bytes of complex values in one group of rows (one layer, one thread): cache-sized;
#: 2 MiB measured fastest on a 2-core machine in both precisions.
GROUP_BYTES = 2 << 20
#: Windows per inner batch handed to one thread.
INNER_BATCH = 2
#: Buffer sets one thread keeps (one per design and precision) before it drops them all.
MAX_BUFFER_SETS = 8

_UINT_OF = {4: np.uint32, 8: np.uint64}


class NumpyBackend:
    """NumPy arrays in host memory, transformed by ``scipy.fft`` one thread per call."""

    name = "numpy"
    device = "cpu"
    group_bytes = GROUP_BYTES
    inner_batch = INNER_BATCH

    def __init__(self) -> None:
        self._local = threading.local()

    def __repr__(self) -> str:
        return "NumpyBackend()"

    def asarray(self, a: np.ndarray, dtype) -> np.ndarray:
        """Contiguous ``a`` in ``dtype``, not copied when it already is."""
        return np.ascontiguousarray(a, dtype=dtype)

    def to_host(self, a: np.ndarray) -> np.ndarray:
        """``a`` itself: it is already in host memory."""
        return a

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Uninitialised array of ``shape`` and ``dtype``."""
        return np.empty(shape, dtype=dtype)

    def buffers(self, shapes, dtype) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-thread (complex, real) work arrays of each shape, reused across batches and calls.

        Parameters
        ----------
        shapes : tuple of tuple of int
            One shape per layer, ``(rows, filters, bins)``.
        dtype : numpy.dtype
            Real precision; the complex arrays are of the matching complex dtype.
        """
        key = (shapes, np.dtype(dtype))
        sets = getattr(self._local, "sets", None)
        if sets is None:
            sets = self._local.sets = {}
        if key not in sets:
            if len(sets) > MAX_BUFFER_SETS:  # bound memory when many designs pass through one thread
                sets.clear()
            ctype = np.result_type(dtype, np.complex64)
            sets[key] = [(np.empty(s, dtype=ctype), np.empty(s, dtype=dtype)) for s in shapes]
        return sets[key]

    def forward(self, u: np.ndarray) -> np.ndarray:
        """Full DFT of real rows ``u`` (g, bins), as complex (g, bins).

        The demeaned row is transformed and its mean put back in the DC bin:
        FFT rounding error scales with the row's norm, which an envelope's mean
        dominates, while the band-pass outputs of the next layer can be orders
        of magnitude smaller than that mean.
        """
        g, bins = u.shape
        mean = u.mean(axis=-1, keepdims=True, dtype=np.float64)
        half = scipy.fft.rfft(u - mean.astype(u.dtype), axis=-1, workers=1)
        half[:, :1] += mean * bins
        # Rows are real, so the negative frequencies are the conjugate mirror.
        spec = np.empty((g, bins), dtype=half.dtype)
        nh = half.shape[-1]
        spec[:, :nh] = half
        np.conjugate(half[:, 1 : bins - nh + 1][:, ::-1], out=spec[:, nh:])
        return spec

    def multiply(self, spec: np.ndarray, bank: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Every row spectrum (g, bins) times every filter (n, bins), into ``out`` (g, n, bins)."""
        return np.multiply(spec[:, None, :], bank[None], out=out)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Inverse DFT along the last axis, in place when scipy can."""
        return scipy.fft.ifft(z, axis=-1, overwrite_x=True, workers=1)

    def modulus(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``|z|`` into ``out``."""
        return np.abs(z, out=out)

    def take(self, m: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Samples ``index`` of the last axis (a copy)."""
        return m[..., index]

    def reduce(self, m: np.ndarray, how: str, index: np.ndarray | None = None) -> np.ndarray:
        """Median, max or mean over samples ``index`` (None: all) of the last axis; may reorder ``m``.

        A taper's pooling set is one or two runs of consecutive samples (the
        flat part of the taper, circularly shifted). The median and the max
        read those runs as slices, several times faster than a gather (an
        order statistic does not depend on how its samples are laid out). The
        mean keeps the gather ``m[..., index]``: the order in which NumPy sums
        follows the layout of the array, and the gather's is the one whose
        bits the stores hold.
        """
        runs = None if index is None or how == "mean" else contiguous_runs(index)
        if index is not None and runs is None:
            m = m[..., index]
        elif runs is not None and how == "max":
            return functools.reduce(np.maximum, [m[..., a:b].max(axis=-1) for a, b in runs])
        elif runs is not None:
            m = np.concatenate([m[..., a:b] for a, b in runs], axis=-1)
        if how == "max":
            return m.max(axis=-1)
        if how == "mean":
            return m.mean(axis=-1)
        return median_inplace(m)


def contiguous_runs(index: np.ndarray, most: int = 2) -> list[tuple[int, int]] | None:
    """``index`` as at most ``most`` ranges ``(start, stop)`` of consecutive integers, else None.

    Parameters
    ----------
    index : ndarray of int, shape (k,), k >= 1
        Non-negative sample indices.
    most : int
        Largest number of runs worth returning.

    Returns
    -------
    list of (int, int) or None
        Ranges whose concatenation is ``index``, in order; None when ``index``
        has more runs than ``most``.
    """
    if index.ndim != 1 or index.size == 0 or index.min() < 0:
        return None
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    if breaks.size >= most:
        return None
    bounds = [0, *breaks.tolist(), index.size]
    return [(int(index[i]), int(index[j - 1]) + 1) for i, j in zip(bounds[:-1], bounds[1:])]


def median_inplace(a: np.ndarray) -> np.ndarray:
    """Median over the last axis of non-negative floats, bitwise equal to ``np.median``.

    Non-negative IEEE floats order like their bit patterns read as unsigned
    integers, and NumPy partitions integers with SIMD, 2-3x faster than floats.

    Parameters
    ----------
    a : ndarray of float32 or float64, shape (..., k), k >= 1
        Non-negative values (moduli), C-contiguous along the last axis.
        Reordered in place.

    Returns
    -------
    ndarray, shape (...)
        The medians, in the dtype of ``a``.
    """
    k = a.shape[-1]
    half = k // 2
    a.view(_UINT_OF[a.dtype.itemsize]).partition(half, axis=-1)
    upper = a[..., half]
    if k % 2:
        return upper.copy()
    lower = a[..., :half].max(axis=-1)
    return (lower + upper) / 2


#: The backend the kernel uses unless told otherwise.
BACKEND = NumpyBackend()
