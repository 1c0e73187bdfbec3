"""Banks of complex Morlet wavelets: the filters of each layer of a scattering network.

The wavelet definition follows the scatseisnet papers (Seydoux et al., 2020;
Steinmann et al., 2022) so that the numbers agree with ``scatseisnet`` 0.4.1:
a bank of ``octaves * resolution`` complex Morlet wavelets with centre
frequencies spaced geometrically from just under the Nyquist frequency down
``octaves`` octaves, each with a Gaussian envelope whose width is
``quality / center`` seconds. :mod:`scatflow.scattering.network` stacks them into a network.
"""

from __future__ import annotations

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
        self.bins = positive_int("bins", bins)
        self.octaves = positive_int("octaves", octaves)
        self.resolution = positive_int("resolution", resolution)
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
        The same bits on every x86 processor NumPy supports (no
        processor-specific transcendental function is used).
    """
    t = np.asarray(times, dtype=float)[None, :]
    f = np.asarray(centers, dtype=float)[:, None]
    w = np.asarray(widths, dtype=float)[:, None]
    # The envelope's exp goes through NumPy's complex exp, which calls the C
    # library's exp on every machine. NumPy's real exp has an AVX-512 version
    # whose last bits differ from its AVX2 and scalar ones (in about 5 % of
    # values), so the bank, and so every coefficient, would depend on the
    # processor that built it: a store computed across mixed nodes would
    # differ from one computed on a single node.
    envelope = np.exp((-((t / w) ** 2)).astype(np.complex128)).real
    return envelope * np.exp(2j * np.pi * f * t)


def positive_int(name: str, value) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
