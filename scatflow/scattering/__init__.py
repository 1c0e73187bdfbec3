"""The scattering network: what turns a window of samples into pooled coefficients.

Owns the complex Morlet filter banks (``bank``), the scatseisnet-compatible
:class:`~scatflow.scattering.network.ScatteringNetwork` front end (``network``),
network design files, JSON and safe scatseisnet pickles (``design``), and the
kernel on plain arrays (``kernel/``). It imports NumPy and SciPy and nothing
else of scatflow but :mod:`scatflow.errors`; the kernel imports nothing of
scatflow at all. Everything else may import it.
"""
