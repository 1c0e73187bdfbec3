"""Network design: banks of complex Morlet wavelets and the scattering network.

This module only *designs* filters and wraps the compute kernel
(:mod:`scatflow.kernel`); it does no I/O besides reading and writing design
files (:mod:`scatflow.design`).

The wavelet definition follows the scatseisnet papers (Seydoux et al., 2020;
Steinmann et al., 2022) so that the numbers agree with ``scatseisnet`` 0.4.1:
a bank of ``octaves * resolution`` complex Morlet wavelets with centre
frequencies spaced geometrically from just under the Nyquist frequency down
``octaves`` octaves, each with a Gaussian envelope whose width is
``quality / center`` seconds.
"""

from __future__ import annotations

import json
import os
import typing as T

import numpy as np
import scipy.fft

from . import kernel

NORMALIZATIONS = (None, "L1", "L2")


class MorletBank:
    """A bank of complex Morlet wavelets for windows of ``bins`` samples.

    Parameters
    ----------
    bins : int
        Window length, in samples.
    octaves : int
        Number of octaves covered below the Nyquist frequency.
    resolution : int
        Number of wavelets per octave.
    quality : float
        Quality factor: the Gaussian envelope width of each wavelet is
        ``quality / center`` seconds.
    normalize_wavelet : {None, "L1", "L2"}
        Normalise each wavelet (in the time domain) by its L1 or L2 norm.
    sampling_rate : float
        Sampling rate of the data, in Hz.

    Attributes
    ----------
    centers : ndarray, shape (len,)
        Centre frequencies in Hz, from high to low.
    widths : ndarray
        Envelope widths in seconds.
    ratios, scales : ndarray
        Octave position (``log2(center / nyquist)``, <= 0) and ``2 ** ratios``.
    times : ndarray, shape (bins,)
        Wavelet time axis in seconds, centred on zero.
    frequencies : ndarray, shape (bins,)
        ``linspace(0, sampling_rate, bins)`` in Hz (as scatseisnet defines it).
    wavelets, spectra : ndarray, shape (len, bins), complex
        The wavelets in time and their discrete Fourier transforms.
    """

    def __init__(
        self,
        bins: int,
        octaves: int = 8,
        resolution: int = 1,
        quality: float = 4.0,
        normalize_wavelet: str | None = None,
        sampling_rate: float = 1.0,
    ) -> None:
        self.bins = _positive_int("bins", bins)
        self.octaves = _positive_int("octaves", octaves)
        self.resolution = _positive_int("resolution", resolution)
        quality = float(quality)
        if not np.isfinite(quality) or quality <= 0:
            raise ValueError(f"quality must be a positive number, got {quality!r}")
        self.quality = quality
        sampling_rate = float(sampling_rate)
        if not np.isfinite(sampling_rate) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive number of Hz, got {sampling_rate!r}")
        self.sampling_rate = sampling_rate
        if normalize_wavelet not in NORMALIZATIONS:
            raise ValueError(
                f"normalize_wavelet must be one of None, 'L1', 'L2'; got {normalize_wavelet!r}"
            )
        self.normalize_wavelet = normalize_wavelet

        self.wavelets = morlet(self.times, self.centers, self.widths)
        if normalize_wavelet == "L1":
            self.norm_factor = np.abs(self.wavelets).sum(axis=1, keepdims=True)
        elif normalize_wavelet == "L2":
            self.norm_factor = np.sqrt((np.abs(self.wavelets) ** 2).sum(axis=1, keepdims=True))
        if normalize_wavelet is not None:
            self.wavelets = self.wavelets / self.norm_factor
        self.spectra = scipy.fft.fft(self.wavelets, axis=-1)
        self.size = len(self)

    def __len__(self) -> int:
        return self.octaves * self.resolution

    def __repr__(self) -> str:
        return (
            f"MorletBank(bins={self.bins}, octaves={self.octaves}, "
            f"resolution={self.resolution}, quality={self.quality}, "
            f"normalize_wavelet={self.normalize_wavelet!r}, "
            f"sampling_rate={self.sampling_rate}, len={len(self)})"
        )

    @property
    def nyquist(self) -> float:
        """Nyquist frequency in Hz."""
        return self.sampling_rate / 2

    @property
    def shape(self) -> tuple[int, int]:
        """``(number of wavelets, bins)``."""
        return len(self), self.bins

    @property
    def ratios(self) -> np.ndarray:
        """Octave positions ``log2(center / nyquist)``, from -1/resolution to -octaves."""
        return -np.linspace(self.octaves, 0.0, len(self), endpoint=False)[::-1]

    @property
    def scales(self) -> np.ndarray:
        """``2 ** ratios``: centre frequencies as fractions of the Nyquist frequency."""
        return 2**self.ratios

    @property
    def centers(self) -> np.ndarray:
        """Centre frequencies in Hz, from high to low."""
        return self.scales * self.nyquist

    @property
    def widths(self) -> np.ndarray:
        """Gaussian envelope widths in seconds (``quality / centers``)."""
        return self.quality / self.centers

    @property
    def times(self) -> np.ndarray:
        """Time axis of the wavelets in seconds, symmetric around zero."""
        return np.linspace(-0.5, 0.5, num=self.bins) * (self.bins / self.sampling_rate)

    @property
    def frequencies(self) -> np.ndarray:
        """``linspace(0, sampling_rate, bins)`` in Hz."""
        return np.linspace(0, self.sampling_rate, self.bins)

    def transform(self, segment: np.ndarray, *, dtype=np.float64, threads: int | None = None) -> np.ndarray:
        """Scalograms of a segment, as scatseisnet's ``ComplexMorletBank.transform``.

        Computed by the scattering kernel (one layer, no pooling).

        Parameters
        ----------
        segment : array_like, shape (..., bins)
            Real samples, in any unit; e.g. ``(channels, bins)``.
        dtype : {np.float64, np.float32}
            Computing and output precision.
        threads : int, optional
            Threads over the rows (default: the CPUs available to this process).

        Returns
        -------
        ndarray, shape (..., len(self), bins)
            ``|ifft(fft(segment) * spectra)|`` in the unit of ``segment``,
            ``fftshift``-ed along time (time zero in the middle).
        """
        x = kernel.check_windows(segment, self.bins, allowed_ndim=None)
        spectra = [kernel.NUMPY.asarray(self.spectra, kernel.complex_dtype(dtype))]
        (scalogram,) = kernel.scatter(x.reshape(-1, 1, self.bins), spectra, None, dtype=dtype, threads=threads)
        return scalogram.reshape(x.shape[:-1] + (len(self), self.bins))

    def design(self) -> dict:
        """The bank's keyword arguments (JSON-serialisable)."""
        return {
            "octaves": self.octaves,
            "resolution": self.resolution,
            "quality": self.quality,
            "normalize_wavelet": self.normalize_wavelet,
        }


def morlet(times: np.ndarray, centers: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Complex Morlet wavelets ``exp(-(t/w)^2) exp(2i pi f t)``.

    Parameters
    ----------
    times : ndarray, shape (bins,)
        Time in seconds.
    centers : ndarray, shape (n,)
        Centre frequencies in Hz.
    widths : ndarray, shape (n,)
        Gaussian envelope widths in seconds.

    Returns
    -------
    ndarray, shape (n, bins), complex128
    """
    t = np.asarray(times, dtype=float)[None, :]
    f = np.asarray(centers, dtype=float)[:, None]
    w = np.asarray(widths, dtype=float)[:, None]
    return np.exp(-((t / w) ** 2)) * np.exp(2j * np.pi * f * t)


class ScatteringNetwork:
    """A scattering network: a cascade of Morlet banks with modulus and pooling.

    A drop-in replacement for ``scatseisnet.ScatteringNetwork`` (same
    constructor, bank attributes and outputs), computed by the vectorised,
    multi-threaded kernel of :mod:`scatflow.kernel`.

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
        self.bins = _positive_int("bins", bins)
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


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
