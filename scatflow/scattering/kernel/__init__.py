"""The scattering kernel: plain arrays in, pooled coefficients out (no Dask, no I/O).

For each layer ``l`` with bank spectra ``S_l`` (``n_l`` wavelets)::

    U_l = | ifft( fft(U_{l-1}) * S_l ) |          (modulus of the wavelet transform)
    c_l = pool_t(U_l)                             (median, max or mean over time)

with ``U_0`` the input windows. Every scalogram row of layer ``l`` feeds
``n_{l+1}`` rows of layer ``l + 1``.

scatseisnet ``fftshift``-s each scalogram; a circular shift commutes with the
next layer's circular convolution and pooling over the whole window ignores
it, so the kernel never shifts. With a taper the pooled samples are a
sub-range, and it pools the same samples by shifting the index set instead of
the data.

Layout (the seam between algorithm and array library):

* :mod:`~scatflow.scattering.kernel.checks` -- everything that can refuse an input; the
  front end (:meth:`scatflow.ScatteringNetwork.transform`) runs it first.
* :mod:`~scatflow.scattering.kernel.cascade` -- the algorithm, written once against the
  :class:`~scatflow.scattering.kernel.cascade.Backend` interface (``forward``,
  ``inverse``, ``multiply``, ``modulus``, ``take``, ``reduce`` plus array
  creation and per-thread ``buffers``).
* :mod:`~scatflow.scattering.kernel.numpy_backend` -- the NumPy/SciPy backend and its
  speed tricks (cache-sized row groups, reused buffers, real-input FFT,
  integer-view median).
* :mod:`~scatflow.scattering.kernel.threads` -- the thread pool over inner batches.

Adding a backend (e.g. CuPy) is one new module next to ``numpy_backend`` with
a class implementing ``Backend`` (a large ``group_bytes`` and
``inner_batch`` so each layer is one device call), passed as ``backend=`` to
:func:`scatter` or :meth:`~scatflow.ScatteringNetwork.transform`, plus a test
comparing it with the NumPy backend. This package imports only NumPy and SciPy.
"""

from __future__ import annotations

import typing as T

import numpy as np

from .cascade import Backend, Cascade, Pooling
from .checks import (
    check_taper,
    check_windows,
    complex_dtype,
    pool_indices,
    reference_indices,
    resolve_reduce,
    taper_window,
)
from .numpy_backend import BACKEND as NUMPY
from .threads import default_threads, run_batches

__all__ = [
    "Backend", "NUMPY", "check_taper", "check_windows", "complex_dtype", "default_threads", "numerics",
    "pool_indices", "reference_indices", "resolve_reduce", "scatter", "simd_targets", "taper_window",
]


def scatter(
    x: np.ndarray,
    spectra: T.Sequence,
    reduce: str | T.Callable | None = "median",
    taper_alpha: float | None = None,
    dtype=np.float64,
    threads: int | None = None,
    backend: Backend | None = None,
) -> list[np.ndarray]:
    """Pooled scattering coefficients of every layer for a batch of windows.

    Trusts its inputs: the front end has validated them with
    :func:`check_windows`, :func:`resolve_reduce`, :func:`check_taper` and
    :func:`complex_dtype`.

    Parameters
    ----------
    x : ndarray, shape (n, channels, bins)
        Real-valued windows (any unit). Never modified.
    spectra : sequence of backend arrays, shape (n_l, bins), complex
        Fourier transforms of each layer's wavelets, contiguous, in the
        complex precision matching ``dtype``.
    reduce : {"median", "max", "mean"}, callable or None
        Pooling over time; a callable is applied as ``f(a, axis=-1)`` to the
        scalograms in the reference's time order; None keeps the scalograms.
    taper_alpha : float, optional
        Tukey taper fraction applied before the first layer; pooling then
        covers only the samples where the taper is 1.
    dtype : {np.float64, np.float32}
        Computing and output precision.
    threads : int, optional
        Worker threads (default: CPUs available to this process).
    backend : Backend, optional
        Array library (default: the NumPy backend).

    Returns
    -------
    list of ndarray
        ``(n, channels, n1)``, ``(n, channels, n1, n2)``, ... in ``dtype`` and
        the unit of ``x`` (with a trailing time axis when ``reduce`` is None).
    """
    xp = NUMPY if backend is None else backend
    dtype = np.dtype(dtype)
    n, channels, bins = x.shape
    pooling = _pooling(xp, reduce, bins, taper_alpha, len(spectra))
    tail = () if reduce is not None else (pooling.ordered[0].shape[0],)
    cascade = Cascade(xp, list(spectra), pooling, dtype, n * channels, tail)
    taper = None if taper_alpha is None else taper_window(bins, taper_alpha)

    def work(a: int, b: int) -> None:
        u = x[a:b].reshape(-1, bins)
        if taper is not None:
            u = u * taper  # float64 product, as the reference tapers
        cascade.run(xp.asarray(u, dtype), a * channels)

    run_batches(work, n, xp.inner_batch, default_threads() if threads is None else max(1, int(threads)))
    return [
        xp.to_host(out).reshape((n, channels) + tuple(cascade.sizes[: i + 1]) + tail)
        for i, out in enumerate(cascade.out)
    ]


def _pooling(xp: Backend, reduce, bins: int, taper_alpha, depth: int) -> Pooling:
    """Pooling index sets of every layer, as backend arrays."""
    named = [None if i is None else xp.asarray(i, np.intp) for i in pool_indices(bins, taper_alpha, depth)]
    ordered = []
    if reduce is None or callable(reduce):
        ordered = [xp.asarray(i, np.intp) for i in reference_indices(bins, taper_alpha, depth)]
    return Pooling(reduce, named, ordered)


#: NumPy dispatch targets at or above AVX2 on x86: with any of them the kernel's bits are those of AVX2.
_X86_AVX2 = {"AVX2", "X86_V3", "AVX512_SKX", "X86_V4", "AVX512_ICL", "AVX512_SPR"}


def numerics() -> str:
    """What the kernel's output bits depend on besides its inputs, as one line.

    The NumPy and SciPy versions, and the class of NumPy's run-time SIMD code:
    on x86, ``x86-64 AVX2`` covers AVX2 and AVX-512 (they give the same bits;
    see :func:`scatflow.scattering.bank.morlet`), ``x86-64 baseline`` a processor or
    NumPy without AVX2 (complex products and moduli round differently). Two
    blocks computed under the same line hold the same bits for the same input.

    Returns
    -------
    str
        E.g. ``"numpy 2.4.6, scipy 1.17.1, x86-64 AVX2"``.
    """
    import platform

    import scipy

    used = simd_targets()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        simd = "x86-64 AVX2" if _X86_AVX2 & set(used) else "x86-64 baseline"
    else:
        simd = f"{machine} {used[-1] if used else 'baseline'}"
    return f"numpy {np.__version__}, scipy {scipy.__version__}, {simd}"


def simd_targets() -> list[str]:
    """NumPy's run-time SIMD targets this process uses (e.g. ``["X86_V3", "X86_V4"]``; [] for baseline only).

    Targets turned off with ``NPY_DISABLE_CPU_FEATURES`` are left out, as NumPy then skips them.
    """
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
