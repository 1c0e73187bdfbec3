"""Reading network designs: scatflow JSON, and scatseisnet pickles without scatseisnet.

Pickles execute code when loaded with :mod:`pickle`; here they go through a
restricted unpickler that resolves only the handful of globals a scatseisnet
``ScatteringNetwork`` pickle needs (its two classes, NumPy array and dtype
reconstruction) and refuses everything else, so a design file from a
colleague cannot run code on your machine.
"""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np

from .bank import MorletBank, morlet
from .network import ScatteringNetwork


def load_network(path: str | os.PathLike) -> ScatteringNetwork:
    """Load a network design from a scatflow JSON file or a scatseisnet pickle.

    Parameters
    ----------
    path : str or path-like
        A JSON design written by :meth:`ScatteringNetwork.save`, or the
        ``scattering_network.pickle`` of the scatseisnet tutorials (read
        without scatseisnet, without executing pickled code).

    Returns
    -------
    ScatteringNetwork

    Raises
    ------
    ValueError
        The file is neither, names something other than a scatseisnet
        network, or its stored wavelets disagree with its design.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw.lstrip()[:1] == b"{":
        try:
            design = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a valid JSON network design ({exc})") from None
        return network_from_design(design, source=path)
    return _network_from_pickle(raw, path)


def network_from_design(design: dict, source: str = "design") -> ScatteringNetwork:
    """Build a :class:`ScatteringNetwork` from the dict of :meth:`ScatteringNetwork.design`."""
    if not isinstance(design, dict):
        raise ValueError(f"{source}: a network design must be a JSON object")
    fmt = design.get("format")
    if fmt != "scatflow-network":
        raise ValueError(f"{source}: not a scatflow network design (format={fmt!r})")
    if design.get("version") != 1:
        raise ValueError(f"{source}: unsupported design version {design.get('version')!r}")
    unknown = set(design) - {"format", "version", "bins", "sampling_rate", "layers"}
    if unknown:
        raise ValueError(f"{source}: unknown key(s) in network design: {sorted(unknown)}")
    layers = design.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{source}: 'layers' must be a non-empty list of bank designs")
    try:
        return ScatteringNetwork(*layers, bins=design["bins"], sampling_rate=design["sampling_rate"])
    except KeyError as exc:
        raise ValueError(f"{source}: missing key {exc.args[0]!r} in network design") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


# -- scatseisnet pickles ----------------------------------------------------------------------


class _PickledNetwork:
    """Inert stand-in for ``scatseisnet.network.ScatteringNetwork``: holds attributes only."""


class _PickledBank:
    """Inert stand-in for ``scatseisnet.wavelet.ComplexMorletBank``: holds attributes only."""


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, limited to the stand-ins (protocols 0 and 1).
    if cls not in (_PickledNetwork, _PickledBank) or base is not object or state is not None:
        raise pickle.UnpicklingError("unexpected object reconstruction")
    return object.__new__(cls)


def _encode(text, encoding="latin1"):
    # _codecs.encode, which protocols 0-2 use to rebuild bytes; only text to bytes.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected use of _codecs.encode")
    return text.encode(encoding)


def _numpy_globals() -> dict:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _encode,
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
        ("scatseisnet.network", "ScatteringNetwork"): _PickledNetwork,
        ("scatseisnet.wavelet", "ComplexMorletBank"): _PickledBank,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    allowed = None

    def find_class(self, module, name):
        if self.allowed is None:
            type(self).allowed = _numpy_globals()
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': only scatseisnet networks and NumPy arrays are allowed"
            ) from None


def _network_from_pickle(raw: bytes, path: str) -> ScatteringNetwork:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except Exception as exc:  # truncated or garbage input raises many types
        raise ValueError(f"{path}: not a JSON design nor a readable scatseisnet pickle ({exc})") from None
    if not isinstance(obj, _PickledNetwork):
        raise ValueError(f"{path}: the pickle does not hold a scatseisnet ScatteringNetwork")
    try:
        bins = int(obj.bins)
        rate = float(obj.sampling_rate)
        banks = list(obj.banks)
        layers = []
        for i, bank in enumerate(banks):
            if not isinstance(bank, _PickledBank):
                raise ValueError(f"bank {i} is not a ComplexMorletBank")
            layers.append(
                {
                    "octaves": int(bank.octaves),
                    "resolution": int(bank.resolution),
                    "quality": float(bank.quality),
                    "normalize_wavelet": _normalization(bank, bins, rate),
                }
            )
    except AttributeError as exc:
        raise ValueError(f"{path}: scatseisnet network pickle lacks an attribute ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    net = ScatteringNetwork(*layers, bins=bins, sampling_rate=rate)
    for i, (ours, theirs) in enumerate(zip(net.banks, banks)):
        stored = getattr(theirs, "spectra", None)
        if stored is not None and not _close(ours.spectra, np.asarray(stored)):
            raise ValueError(f"{path}: bank {i}'s stored spectra do not match its design; file altered?")
    return net


def _normalization(bank: _PickledBank, bins: int, rate: float) -> str | None:
    """Recover ``normalize_wavelet`` (not stored by scatseisnet) from ``norm_factor``."""
    factor = getattr(bank, "norm_factor", None)
    if factor is None:
        return None
    probe = MorletBank(bins, int(bank.octaves), int(bank.resolution), float(bank.quality), None, rate)
    raw = morlet(probe.times, probe.centers, probe.widths)
    factor = np.asarray(factor, dtype=float).reshape(-1)
    for name, norm in (("L1", np.abs(raw).sum(axis=1)), ("L2", np.sqrt((np.abs(raw) ** 2).sum(axis=1)))):
        if factor.shape == norm.shape and np.allclose(factor, norm, rtol=1e-9, atol=0):
            return name
    raise ValueError("bank norm_factor matches neither L1 nor L2 normalisation")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = np.abs(b).max()
    return bool(np.all(np.abs(a - b) <= 1e-9 * np.abs(b) + 1e-12 * scale))
