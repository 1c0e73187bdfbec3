"""The scattering network: a cascade of Morlet banks (:mod:`scatflow.scattering.bank`) with modulus and pooling.

This module only *designs* networks and wraps the compute kernel
(:mod:`scatflow.scattering.kernel`); it does no I/O besides reading and writing design
files (:mod:`scatflow.scattering.design`).
"""

from __future__ import annotations

import json
import os
import typing as T

import numpy as np

from . import kernel
from .bank import NORMALIZATIONS, MorletBank, morlet, positive_int

__all__ = ["MorletBank", "NORMALIZATIONS", "ScatteringNetwork", "morlet"]


class ScatteringNetwork:
    """A scattering network: a cascade of Morlet banks with modulus and pooling.

    A drop-in replacement for ``scatseisnet.ScatteringNetwork`` (same
    constructor, bank attributes and outputs), computed by the vectorised,
    multi-threaded kernel of :mod:`scatflow.scattering.kernel`.

    Parameters
    ----------
    *layer_kwargs : dict
        One dict per layer with the :class:`MorletBank` keywords ``octaves``,
        ``resolution``, ``quality`` and optionally ``normalize_wavelet``.
    bins : int
        Window length in samples.
    sampling_rate : float
        Sampling rate in Hz.
    verbose : bool
        Accepted for compatibility with scatseisnet (its progress bar); unused.

    Raises
    ------
    TypeError
        An unknown keyword (a misspelt ``bins=``, say): Python names it.

    Examples
    --------
    >>> import numpy as np, scatflow
    >>> net = scatflow.ScatteringNetwork(
    ...     {"octaves": 4, "resolution": 4, "quality": 2},
    ...     {"octaves": 4, "resolution": 1, "quality": 2},
    ...     bins=256, sampling_rate=50.0)
    >>> s1, s2 = net.transform(np.random.randn(10, 3, 256), reduce_type=np.median)
    >>> s1.shape, s2.shape
    ((10, 3, 16), (10, 3, 16, 4))
    """

    def __init__(
        self, *layer_kwargs: dict, bins: int = 128, sampling_rate: float = 1.0, verbose: bool = False
    ) -> None:
        if not layer_kwargs:
            raise ValueError("a ScatteringNetwork needs at least one layer (a dict of bank keywords)")
        for i, kw in enumerate(layer_kwargs):
            if not isinstance(kw, dict):
                raise TypeError(f"layer {i}: expected a dict of bank keywords, got {type(kw).__name__}")
            unknown = set(kw) - {"octaves", "resolution", "quality", "normalize_wavelet"}
            if unknown:
                raise ValueError(f"layer {i}: unknown bank keyword(s) {sorted(unknown)}")
        self.bins = positive_int("bins", bins)
        self.sampling_rate = float(sampling_rate)
        self.banks = [MorletBank(self.bins, sampling_rate=self.sampling_rate, **kw) for kw in layer_kwargs]
        self.verbose = bool(verbose)
        # Spectra cast (and moved) once per backend and precision; every batch reuses them.
        self._spectra_cache: dict = {}

    def __len__(self) -> int:
        return len(self.banks)

    def __repr__(self) -> str:
        head = f"ScatteringNetwork(bins={self.bins}, sampling_rate={self.sampling_rate}, len={len(self)})"
        return "\n".join([head] + [f"  {b!r}" for b in self.banks])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScatteringNetwork):
            return NotImplemented
        return self.design() == other.design()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking object: equality by design only

    # -- design -----------------------------------------------------------
    def design(self) -> dict:
        """The network design as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``{"format": "scatflow-network", "version": 1, "bins": int,
            "sampling_rate": float (Hz), "layers": [bank keywords, ...]}``.
        """
        return {
            "format": "scatflow-network",
            "version": 1,
            "bins": self.bins,
            "sampling_rate": self.sampling_rate,
            "layers": [bank.design() for bank in self.banks],
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the design as human-readable JSON to ``path``.

        The wavelets are not stored: they are rebuilt exactly from the design.
        """
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.design(), fh, indent=2)
            fh.write("\n")

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Per-layer output shape of one channel: ``[(n1,), (n1, n2), ...]``."""
        sizes = [len(b) for b in self.banks]
        return [tuple(sizes[: i + 1]) for i in range(len(sizes))]

    def spectra(self, dtype=np.float64, backend: kernel.Backend | None = None) -> list:
        """Bank spectra in the complex precision matching ``dtype``, as arrays of ``backend``.

        Parameters
        ----------
        dtype : {np.float64, np.float32}
            Real computing precision.
        backend : kernel.Backend, optional
            Array library (default: NumPy).

        Returns
        -------
        list of arrays, shape (n_l, bins), complex, unit 1 (filter gains)
            Cached per (backend name, device, complex dtype).
        """
        xp = kernel.NUMPY if backend is None else backend
        ctype = kernel.complex_dtype(dtype)
        key = (xp.name, xp.device, ctype)
        if key not in self._spectra_cache:
            self._spectra_cache[key] = [xp.asarray(b.spectra, ctype) for b in self.banks]
        return self._spectra_cache[key]

    # -- compute ----------------------------------------------------------
    def transform(
        self,
        segments: np.ndarray,
        reduce_type: T.Callable | str | None = np.median,
        taper_alpha: float | None = None,
        *,
        dtype=np.float64,
        threads: int | None = None,
        backend: kernel.Backend | None = None,
    ) -> list[np.ndarray]:
        """Pooled scattering coefficients of a batch of windows.

        Parameters
        ----------
        segments : array_like, shape (n, channels, bins) or (n, bins)
            Windows of ``bins`` samples, in any unit (the coefficients are in
            the same unit). Integers are converted; the input is never modified.
        reduce_type : {np.median, np.max, np.mean, "median", "max", "mean"} or callable or None
            Pooling over time of each scalogram. Another callable is applied
            as ``f(x, axis=-1)``. ``None`` returns the unpooled scalograms
            (large: ``bins`` samples per coefficient).
        taper_alpha : float, optional
            Tukey taper fraction (0..1) applied to each window; pooling then
            covers only the samples where the taper equals 1 (as in scatseisnet).
        dtype : {np.float64, np.float32}
            Computing and output precision.
        threads : int, optional
            Threads over inner batches of windows; default: the CPUs
            available to this process. Use 1 inside Dask tasks.
        backend : kernel.Backend, optional
            Array library of the kernel (default: NumPy).

        Returns
        -------
        list of ndarray
            One array per layer, ``(n, channels, n1)``, ``(n, channels, n1, n2)``...
            (without the channel axis for 2-D input).

        Raises
        ------
        ValueError
            Bad windows, pooling, taper or dtype; raised before any work.
        """
        # Every check happens here, so the kernel can trust what it is given.
        x = kernel.check_windows(segments, self.bins, allowed_ndim=(2, 3))
        reduce = kernel.resolve_reduce(reduce_type)
        kernel.check_taper(self.bins, taper_alpha)
        spectra = self.spectra(dtype, backend)
        squeeze = x.ndim == 2
        if squeeze:
            x = x[:, None, :]
        out = kernel.scatter(x, spectra, reduce, taper_alpha, dtype=dtype, threads=threads, backend=backend)
        if squeeze:
            out = [o[:, 0] for o in out]
        return out

    def transform_segment(
        self,
        segment: np.ndarray,
        reduce_type: T.Callable | str | None = None,
        taper_alpha: float | None = None,
        *,
        dtype=np.float64,
    ) -> list[np.ndarray]:
        """Scattering coefficients (or scalograms) of one window.

        Parameters
        ----------
        segment : array_like, shape (bins,) or (channels, bins)
            One window.
        reduce_type : callable or str or None
            As in :meth:`transform`; ``None`` (the default, as in scatseisnet)
            returns the scalograms of each layer.

        Returns
        -------
        list of ndarray
            ``(n1,)``, ``(n1, n2)``... (pooled) or with a trailing time axis
            (unpooled), with a leading channel axis for 2-D input.
        """
        x = kernel.check_windows(segment, self.bins, allowed_ndim=(1, 2))
        out = self.transform(x[None], reduce_type=reduce_type, taper_alpha=taper_alpha, dtype=dtype, threads=1)
        return [o[0] for o in out]
