"""The scattering cascade, written once against the :class:`Backend` interface.

Nothing here validates: :mod:`scatflow.scattering.kernel.checks` has run first. Nothing
here knows how arrays are stored or transformed: the backend does.
"""

from __future__ import annotations

import typing as T
from dataclasses import dataclass

import numpy as np

Array = T.Any  # an array of the backend (numpy.ndarray for the NumPy backend)


class Backend(T.Protocol):
    """What the cascade needs from an array library.

    A new backend (e.g. CuPy) is one module defining a class with these
    attributes and methods; see :mod:`scatflow.scattering.kernel.numpy_backend`. Every
    transform acts along the last axis; ``out`` arguments are buffers from
    :meth:`buffers` and may be returned as the result.

    Attributes
    ----------
    name, device : str
        Identify the backend and where its arrays live (for caches).
    group_bytes : int
        Bytes of complex values in one group of rows that one thread
        transforms at a time; small to stay in a CPU cache, large on a GPU.
    inner_batch : int
        Windows per task handed to one thread.
    """

    name: str
    device: str
    group_bytes: int
    inner_batch: int

    def asarray(self, a: np.ndarray, dtype) -> Array:
        """Contiguous backend array of ``a`` in ``dtype`` (no copy if already so)."""

    def to_host(self, a: Array) -> np.ndarray:
        """``a`` as a NumPy array."""

    def empty(self, shape: tuple[int, ...], dtype) -> Array:
        """Uninitialised array."""

    def buffers(self, shapes: tuple[tuple[int, ...], ...], dtype) -> list[tuple[Array, Array]]:
        """One (complex, real) pair of work arrays per shape, reusable by the calling thread."""

    def forward(self, u: Array) -> Array:
        """Full DFT ``(g, bins)`` complex of real rows ``u`` ``(g, bins)``."""

    def multiply(self, spec: Array, bank: Array, out: Array) -> Array:
        """``spec[:, None, :] * bank[None]``: ``(g, bins) x (n, bins) -> (g, n, bins)``."""

    def inverse(self, z: Array) -> Array:
        """Inverse DFT of ``z``; may overwrite ``z``."""

    def modulus(self, z: Array, out: Array) -> Array:
        """``|z|`` in the real precision of ``z``."""

    def take(self, m: Array, index: Array) -> Array:
        """``m[..., index]`` (a copy)."""

    def reduce(self, m: Array, how: str, index: Array | None = None) -> Array:
        """``"median"``, ``"max"`` or ``"mean"`` over samples ``index`` (None: all) of the last axis.

        Equals ``reduce(take(m, index), how)`` bit for bit; may reorder ``m``.
        """


@dataclass(frozen=True)
class Pooling:
    """How the cascade pools each layer's scalograms over time.

    Attributes
    ----------
    reduce : {"median", "max", "mean"}, callable or None
        As returned by :func:`scatflow.scattering.kernel.checks.resolve_reduce`.
    indices : list of (backend int array or None)
        Per layer, the samples a named pooling covers (None: all).
    ordered : list of backend int array
        Per layer, the gather into the reference's time order, for a
        callable (which may depend on the order) or no pooling.
    """

    reduce: str | T.Callable | None
    indices: list
    ordered: list

    def apply(self, xp: Backend, m: Array, level: int) -> Array:
        """Pool scalograms ``m`` ``(g, n, bins)`` of layer ``level``; may reorder ``m``."""
        if self.reduce is None or callable(self.reduce):
            shifted = xp.take(m, self.ordered[level])
            return shifted if self.reduce is None else self.reduce(shifted, axis=-1)
        return xp.reduce(m, self.reduce, self.indices[level])


class Cascade:
    """One call's layers and outputs; :meth:`run` transforms rows into them.

    Parameters
    ----------
    xp : Backend
        Array library.
    spectra : list of backend complex arrays, shape (n_l, bins)
        Each layer's wavelet spectra, in the computing precision.
    pooling : Pooling
        Pooling of every layer.
    dtype : numpy.dtype
        Real computing and output precision.
    rows : int
        Input rows (windows x channels).
    tail : tuple
        ``()`` when pooled, ``(samples,)`` for unpooled scalograms.
    """

    def __init__(self, xp: Backend, spectra: list, pooling: Pooling, dtype, rows: int, tail: tuple = ()):
        self.xp = xp
        self.spectra = spectra
        self.pooling = pooling
        self.dtype = np.dtype(dtype)
        self.sizes = [s.shape[0] for s in spectra]
        bins = spectra[0].shape[-1]
        itemsize = 2 * self.dtype.itemsize
        # Rows per group so that one group's complex block is about xp.group_bytes.
        self.group = [max(1, xp.group_bytes // (size * bins * itemsize)) for size in self.sizes]
        self.shapes = tuple((g, size, bins) for g, size in zip(self.group, self.sizes))
        self.out = []
        for size in self.sizes:
            self.out.append(xp.empty((rows, size) + tail, self.dtype))
            rows *= size

    def run(self, u: Array, r0: int) -> None:
        """Transform real rows ``u`` ``(rows, bins)``, global rows ``r0...``, through every layer."""
        bufs = self.xp.buffers(self.shapes, self.dtype)
        g = self.group[0]
        for s in range(0, u.shape[0], g):
            self._layer(bufs, 0, u[s : s + g], r0 + s)

    def _layer(self, bufs, level: int, u: Array, r0: int) -> None:
        xp = self.xp
        g = u.shape[0]
        cbuf, mbuf = bufs[level]
        prod = xp.multiply(xp.forward(u), self.spectra[level], out=cbuf[:g])
        modulus = xp.modulus(xp.inverse(prod), out=mbuf[:g])
        if level + 1 < len(self.sizes):
            # Depth first, group by group, so a group's children are still in cache.
            child = modulus.reshape(g * self.sizes[level], -1)
            step = self.group[level + 1]
            for s in range(0, child.shape[0], step):
                self._layer(bufs, level + 1, child[s : s + step], r0 * self.sizes[level] + s)
        # Pooling last: an in-place median reorders samples the next layer needed.
        self.out[level][r0 : r0 + g] = self.pooling.apply(xp, modulus, level)
