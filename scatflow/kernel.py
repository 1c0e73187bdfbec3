"""The scattering kernel: pure NumPy/SciPy on plain arrays (no Dask, no I/O).

For each layer ``l`` with bank spectra ``S_l`` (``n_l`` wavelets):

    U_l = | ifft( fft(U_{l-1}) * S_l ) |          (modulus of the wavelet transform)
    c_l = pool_t(U_l)                             (median, max or mean over time)

with ``U_0`` the input windows. Every scalogram row of layer ``l`` feeds
``n_{l+1}`` rows of layer ``l + 1``.

Why it is fast without compiled code:

* rows are processed in small groups sized to stay in cache, with buffers
  reused per thread, so the large intermediates (24 x 6 x bins complex values
  per channel) never hit main memory as one block;
* ``scipy.fft`` transforms in place and releases the GIL, so a thread pool
  over inner batches of windows keeps every core busy;
* the median is a single in-place ``partition`` (plus a ``max`` over the lower
  half for even lengths), bitwise equal to ``np.median`` and ~3x faster;
* scatseisnet ``fftshift``-s each scalogram; a circular shift commutes with the
  next layer's circular convolution and pooling over the whole window ignores
  it, so we never shift. With a taper the pooled samples are a sub-range, and
  we pool the same samples by shifting the index set instead of the data.
"""

from __future__ import annotations

import os
import threading
import typing as T
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft

#: Bytes of complex values in one group of rows (one layer, one thread): cache-sized;
#: 2 MiB measured fastest on a 2-core machine in both precisions.
GROUP_BYTES = 2 << 20
#: Windows per inner batch handed to one thread.
INNER_BATCH = 2

_POOL_NAMES = {"median": "median", "max": "max", "mean": "mean"}
_POOL_FUNCS = {np.median: "median", np.max: "max", np.amax: "max", np.mean: "mean"}


def complex_dtype(dtype) -> np.dtype:
    """Complex dtype used to compute in real precision ``dtype`` (float32 or float64)."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return np.dtype(np.complex128)
    if dtype == np.float32:
        return np.dtype(np.complex64)
    raise ValueError(f"dtype must be float32 or float64, got {dtype}")


def resolve_reduce(reduce) -> str | T.Callable | None:
    """Normalise a pooling spec to ``"median"``, ``"max"``, ``"mean"``, a callable or None."""
    if reduce is None:
        return None
    if isinstance(reduce, str):
        try:
            return _POOL_NAMES[reduce.lower()]
        except KeyError:
            raise ValueError(f"reduce must be one of 'median', 'max', 'mean'; got {reduce!r}") from None
    try:
        named = _POOL_FUNCS.get(reduce)
    except TypeError:  # unhashable callable
        named = None
    if named is not None:
        return named
    if callable(reduce):
        return reduce
    raise ValueError(f"reduce must be a pooling function or one of 'median', 'max', 'mean'; got {reduce!r}")


def check_windows(x, bins: int, allowed_ndim: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Validate a batch of windows and return it as an ndarray (not copied if possible).

    Parameters
    ----------
    x : array_like
        Windows with ``bins`` samples along the last axis.
    bins : int
        Expected window length in samples.
    allowed_ndim : tuple of int
        Accepted numbers of dimensions.

    Raises
    ------
    ValueError
        Wrong shape or number of dimensions, empty batch, non-real dtype,
        masked samples, NaN or infinite samples.
    """
    names = {1: "(bins,)", 2: "(n, bins)", 3: "(n, channels, bins)"}
    expected = " or ".join(names[d].replace("bins", str(bins)) for d in allowed_ndim)
    if np.ma.isMaskedArray(x):
        if np.ma.getmaskarray(x).any():
            raise ValueError("windows contain masked (unrecorded) samples; fill or drop them first")
        x = np.ma.getdata(x)
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"windows must hold real numbers (integer or float), got dtype {a.dtype}")
    if a.ndim not in allowed_ndim:
        raise ValueError(f"expected windows of shape {expected}, got an array of shape {a.shape}")
    if a.shape[-1] != bins:
        raise ValueError(
            f"expected windows of {bins} samples on the last axis, shape {expected}; got shape {a.shape}"
        )
    if a.size == 0:
        raise ValueError(f"empty batch: expected shape {expected} with n >= 1, got shape {a.shape}")
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(f"windows contain NaN or infinite samples (first at index {where})")
    return a


def pool_indices(bins: int, taper_alpha: float | None, depth: int) -> list[np.ndarray | None]:
    """Per-layer sample indices to pool, in the kernel's unshifted frame.

    scatseisnet pools the ``fftshift``-ed scalogram of layer ``l`` (shifted
    ``l`` times by ``bins // 2``) where the Tukey taper equals 1. Returns None
    per layer when every sample is pooled.
    """
    if taper_alpha is None:
        return [None] * depth
    keep = np.flatnonzero(taper_window(bins, taper_alpha) == 1)
    if keep.size == 0:
        raise ValueError(f"taper_alpha={taper_alpha} leaves no sample where the taper is 1")
    if keep.size == bins:
        return [None] * depth
    return [np.sort((keep - (layer * (bins // 2))) % bins) for layer in range(1, depth + 1)]


def taper_window(bins: int, taper_alpha: float) -> np.ndarray:
    """Tukey window of ``bins`` samples with taper fraction ``taper_alpha`` (0..1)."""
    alpha = float(taper_alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"taper_alpha must be in [0, 1], got {taper_alpha!r}")
    # Imported here: scipy.signal costs ~0.6 s to import, paid by every worker process,
    # and only tapered transforms need it.
    from scipy.signal.windows import tukey

    return tukey(bins, alpha=alpha)


def scatter(
    x: np.ndarray,
    spectra: T.Sequence[np.ndarray],
    reduce="median",
    taper_alpha: float | None = None,
    dtype=np.float64,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Pooled scattering coefficients of every layer for a batch of windows.

    Parameters
    ----------
    x : ndarray, shape (n, channels, bins)
        Real-valued windows (already validated, see :func:`check_windows`).
        Never modified.
    spectra : sequence of ndarray, shape (n_l, bins), complex
        Fourier transforms of each layer's wavelets, in the complex precision
        matching ``dtype``.
    reduce : {"median", "max", "mean"}, callable or None
        Pooling over time (see :func:`resolve_reduce`); None keeps the
        scalograms (scatseisnet's shifted time order, taper samples only).
    taper_alpha : float, optional
        Tukey taper applied before the first layer; pooling then covers only
        the samples where the taper is 1.
    dtype : {np.float64, np.float32}
        Computing and output precision.
    threads : int, optional
        Worker threads (default: CPUs available to this process).

    Returns
    -------
    list of ndarray
        ``(n, channels, n1)``, ``(n, channels, n1, n2)``, ... in ``dtype``
        (with a trailing time axis when ``reduce`` is None).
    """
    dtype = np.dtype(dtype)
    ctype = complex_dtype(dtype)
    n, channels, bins = x.shape
    spectra = [np.asarray(s, dtype=ctype) for s in spectra]
    for i, s in enumerate(spectra):
        if s.ndim != 2 or s.shape[1] != bins:
            raise ValueError(f"layer {i}: spectra must have shape (n_filters, {bins}), got {s.shape}")
    sizes = [s.shape[0] for s in spectra]
    reduce = resolve_reduce(reduce)
    indices = pool_indices(bins, taper_alpha, len(spectra))
    taper = None if taper_alpha is None else taper_window(bins, taper_alpha)

    tail = ()
    if reduce is None:
        tail = (bins if indices[0] is None else indices[0].size,)
    flat_out = []
    rows = n * channels
    for size in sizes:
        flat_out.append(np.empty((rows, size) + tail, dtype=dtype))
        rows *= size

    plan = _Plan(spectra, sizes, bins, dtype, ctype, reduce, indices, flat_out, taper, channels)
    batches = [(a, min(a + INNER_BATCH, n)) for a in range(0, n, INNER_BATCH)]
    threads = default_threads() if threads is None else max(1, int(threads))
    threads = min(threads, len(batches))
    if threads == 1:
        for a, b in batches:
            plan.run_batch(x, a, b)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for _ in pool.map(lambda ab: plan.run_batch(x, *ab), batches):
                pass

    out = []
    lead = (n, channels)
    for layer, arr in enumerate(flat_out):
        out.append(arr.reshape(lead + tuple(sizes[: layer + 1]) + tail))
    return out


def default_threads() -> int:
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_local = threading.local()


class _Plan:
    """Everything one call of :func:`scatter` shares between its threads."""

    def __init__(self, spectra, sizes, bins, dtype, ctype, reduce, indices, flat_out, taper, channels):
        self.spectra = spectra
        self.sizes = sizes
        self.bins = bins
        self.dtype = dtype
        self.ctype = ctype
        self.reduce = reduce
        self.indices = indices
        self.out = flat_out
        self.taper = taper
        self.channels = channels
        self.depth = len(spectra)
        # Rows per group so that one group's complex block is about GROUP_BYTES.
        self.group = [max(1, GROUP_BYTES // (size * bins * ctype.itemsize)) for size in sizes]

    def workspace(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-thread (complex, modulus) buffers per layer, reused across batches and calls."""
        key = (self.bins, self.ctype, tuple(self.sizes), tuple(self.group))
        ws = getattr(_local, "workspaces", None)
        if ws is None:
            ws = _local.workspaces = {}
        if key not in ws:
            if len(ws) > 8:  # bound memory when many designs pass through one thread
                ws.clear()
            ws[key] = [
                (
                    np.empty((g, size, self.bins), dtype=self.ctype),
                    np.empty((g, size, self.bins), dtype=self.dtype),
                )
                for g, size in zip(self.group, self.sizes)
            ]
        return ws[key]

    def run_batch(self, x: np.ndarray, a: int, b: int) -> None:
        """Compute windows ``a:b`` into the shared output arrays."""
        ws = self.workspace()
        u = x[a:b].reshape(-1, self.bins)
        if self.taper is not None:
            u = u * self.taper  # float64 product, as the reference tapers
        u = np.asarray(u, dtype=self.dtype)
        r0 = a * self.channels
        g = self.group[0]
        for s in range(0, u.shape[0], g):
            self.layer(ws, 0, u[s : s + g], r0 + s)

    def layer(self, ws, level: int, u: np.ndarray, r0: int) -> None:
        """Transform rows ``u`` (global row offset ``r0``) through layer ``level`` and deeper."""
        g = u.shape[0]
        size = self.sizes[level]
        cbuf, mbuf = ws[level]
        # Transform the demeaned row and put the mean back in the DC bin: FFT rounding error
        # scales with the row's norm, which an envelope's mean dominates, while the band-pass
        # outputs of the next layer can be orders of magnitude smaller than that mean.
        mean = u.mean(axis=-1, keepdims=True, dtype=np.float64)
        half = scipy.fft.rfft(u - mean.astype(u.dtype), axis=-1, workers=1)
        half[:, :1] += mean * self.bins
        # Rows are real, so the negative frequencies are the conjugate mirror.
        spec = np.empty((g, self.bins), dtype=self.ctype)
        nh = half.shape[-1]
        spec[:, :nh] = half
        np.conjugate(half[:, 1 : self.bins - nh + 1][:, ::-1], out=spec[:, nh:])
        prod = cbuf[:g]
        np.multiply(spec[:, None, :], self.spectra[level][None], out=prod)
        prod = scipy.fft.ifft(prod, axis=-1, overwrite_x=True, workers=1)
        modulus = mbuf[:g]
        np.abs(prod, out=modulus)
        if level + 1 < self.depth:
            child = modulus.reshape(g * size, self.bins)
            step = self.group[level + 1]
            for s in range(0, g * size, step):
                self.layer(ws, level + 1, child[s : s + step], r0 * size + s)
        # Pooling last: the in-place partition reorders samples the next layer needed.
        self.out[level][r0 : r0 + g] = self.pool(modulus, level)

    def pool(self, m: np.ndarray, level: int) -> np.ndarray:
        """Pool scalograms ``m`` (g, n_l, bins) over time; may reorder ``m`` in place."""
        idx = self.indices[level]
        reduce = self.reduce
        if reduce is None or callable(reduce):
            # The reference's exact sample order: shift back, then keep the taper samples.
            shifted = np.roll(m, ((level + 1) * (self.bins // 2)) % self.bins, axis=-1)
            if self.taper is not None:
                shifted = shifted[..., self.taper == 1]
            if reduce is None:
                return shifted
            return reduce(shifted, axis=-1)
        sel = m if idx is None else m[..., idx]
        if reduce == "max":
            return sel.max(axis=-1)
        if reduce == "mean":
            return sel.mean(axis=-1)
        return _median_inplace(sel)


_UINT_OF = {4: np.uint32, 8: np.uint64}


def _median_inplace(a: np.ndarray) -> np.ndarray:
    """Median along the last axis of non-negative values (moduli), bitwise equal to
    ``np.median``; reorders ``a``.

    Non-negative IEEE floats order like their bit patterns read as unsigned integers,
    and NumPy partitions integers with SIMD, 2-3x faster than floats.
    """
    k = a.shape[-1]
    half = k // 2
    a.view(_UINT_OF[a.dtype.itemsize]).partition(half, axis=-1)
    upper = a[..., half]
    if k % 2:
        return upper.copy()
    lower = a[..., :half].max(axis=-1)
    return (lower + upper) / 2
