"""Front-end checks and per-call set-up of the kernel: everything that may raise.

:meth:`scatflow.ScatteringNetwork.transform` runs these before any work, so
the cascade (:mod:`scatflow.scattering.kernel.cascade`) trusts its inputs.
"""

from __future__ import annotations

import typing as T

import numpy as np

_POOL_NAMES = {"median": "median", "max": "max", "mean": "mean"}
_POOL_FUNCS = {np.median: "median", np.max: "max", np.amax: "max", np.mean: "mean"}
_SHAPES = {1: "(bins,)", 2: "(n, bins)", 3: "(n, channels, bins)"}


def complex_dtype(dtype) -> np.dtype:
    """Complex dtype used to compute in real precision ``dtype``.

    Parameters
    ----------
    dtype : {np.float32, np.float64}
        Real computing precision.

    Returns
    -------
    numpy.dtype
        complex64 or complex128.

    Raises
    ------
    ValueError
        Any other dtype.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return np.dtype(np.complex128)
    if dtype == np.float32:
        return np.dtype(np.complex64)
    raise ValueError(f"dtype must be float32 or float64, got {dtype}")


def resolve_reduce(reduce) -> str | T.Callable | None:
    """Normalise a pooling spec.

    Parameters
    ----------
    reduce : {"median", "max", "mean"}, np.median, np.max, np.mean, callable or None
        Pooling over time; names are case-insensitive.

    Returns
    -------
    "median", "max", "mean", a callable ``f(x, axis=-1)`` or None.

    Raises
    ------
    ValueError
        An unknown name or a non-callable.
    """
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


def check_windows(x, bins: int, allowed_ndim: tuple[int, ...] | None = (2, 3)) -> np.ndarray:
    """Validate a batch of windows and return it as an ndarray (not copied if possible).

    Parameters
    ----------
    x : array_like
        Windows with ``bins`` samples along the last axis.
    bins : int
        Expected window length, in samples.
    allowed_ndim : tuple of int, optional
        Accepted numbers of dimensions; None accepts any shape ``(..., bins)``.

    Returns
    -------
    ndarray
        ``x`` as an array of its own (integer or float) dtype.

    Raises
    ------
    ValueError
        Wrong shape or number of dimensions, empty batch, non-real dtype,
        masked samples, NaN or infinite samples.
    """
    if allowed_ndim is None:
        expected = f"(..., {bins})"
    else:
        expected = " or ".join(_SHAPES[d].replace("bins", str(bins)) for d in allowed_ndim)
    if np.ma.isMaskedArray(x):
        if np.ma.getmaskarray(x).any():
            raise ValueError("windows contain masked (unrecorded) samples; fill or drop them first")
        x = np.ma.getdata(x)
    a = np.asarray(x)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"windows must hold real numbers (integer or float), got dtype {a.dtype}")
    if a.ndim == 0 or (allowed_ndim is not None and a.ndim not in allowed_ndim):
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


def check_taper(bins: int, taper_alpha: float | None) -> None:
    """Refuse a taper fraction outside [0, 1] or one that leaves no sample to pool.

    Parameters
    ----------
    bins : int
        Window length, in samples.
    taper_alpha : float or None
        Tukey taper fraction (0..1); None for no taper.

    Raises
    ------
    ValueError
        The taper is out of range or equals 1 nowhere.
    """
    if taper_alpha is not None:
        pool_indices(bins, taper_alpha, 1)


def taper_window(bins: int, taper_alpha: float) -> np.ndarray:
    """Tukey window.

    Parameters
    ----------
    bins : int
        Window length, in samples.
    taper_alpha : float
        Fraction of the window inside the cosine tapers (0..1).

    Returns
    -------
    ndarray, shape (bins,), float64
    """
    alpha = float(taper_alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"taper_alpha must be in [0, 1], got {taper_alpha!r}")
    # Imported here: scipy.signal costs ~0.6 s to import, paid by every worker process,
    # and only tapered transforms need it.
    from scipy.signal.windows import tukey

    return tukey(bins, alpha=alpha)


def pool_indices(bins: int, taper_alpha: float | None, depth: int) -> list[np.ndarray | None]:
    """Per-layer sample indices to pool, sorted, in the kernel's unshifted frame.

    scatseisnet pools the ``fftshift``-ed scalogram of layer ``l`` (shifted
    ``l`` times by ``bins // 2``) where the Tukey taper equals 1; the kernel
    never shifts, so it pools the same samples at shifted indices.

    Parameters
    ----------
    bins : int
        Window length, in samples.
    taper_alpha : float or None
        Tukey taper fraction; None for no taper.
    depth : int
        Number of layers.

    Returns
    -------
    list of (ndarray of int or None)
        One entry per layer; None where every sample is pooled.
    """
    if taper_alpha is None:
        return [None] * depth
    keep = np.flatnonzero(taper_window(bins, taper_alpha) == 1)
    if keep.size == 0:
        raise ValueError(f"taper_alpha={taper_alpha} leaves no sample where the taper is 1")
    if keep.size == bins:
        return [None] * depth
    return [np.sort((keep - (layer * (bins // 2))) % bins) for layer in range(1, depth + 1)]


def reference_indices(bins: int, taper_alpha: float | None, depth: int) -> list[np.ndarray]:
    """Per-layer sample indices that gather scatseisnet's exact scalogram order.

    Sample ``j`` of the reference's layer-``l`` scalogram (``l`` fftshifts,
    then only the samples where the taper is 1) is sample
    ``(j - l * (bins // 2)) % bins`` of the kernel's unshifted one.

    Parameters
    ----------
    bins : int
        Window length, in samples.
    taper_alpha : float or None
        Tukey taper fraction; None for no taper.
    depth : int
        Number of layers.

    Returns
    -------
    list of ndarray of int
        One gather index per layer, in the reference's time order.
    """
    keep = np.arange(bins)
    if taper_alpha is not None:
        keep = np.flatnonzero(taper_window(bins, taper_alpha) == 1)
    return [(keep - (layer * (bins // 2))) % bins for layer in range(1, depth + 1)]
