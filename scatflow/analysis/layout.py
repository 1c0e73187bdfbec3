"""The feature layout of a model: which channels and frequencies, in which order.

Features of a window, in the tutorial's order: all ``order_1`` values in
(channel, f1) order, then all ``order_2`` values in (channel, f1, f2) order.
Channels are matched across stations by their code ``CHA``
(``analysis.match = "code"``) or by their component, the code's last letter
(``"component"``); a joint model needs every station to have the same
channels and frequencies (:func:`joint_layout`).
"""

from __future__ import annotations

import dataclasses
import typing as T

import numpy as np

from ..errors import InputError

if T.TYPE_CHECKING:
    from .stations import StationInput


@dataclasses.dataclass(frozen=True)
class Layout:
    """The feature order of a model: channel codes and frequencies (Hz).

    Attributes
    ----------
    codes : tuple of str
        Channel codes ``CHA`` (``match = "code"``) or components, the code's last letter
        (``match = "component"``), in feature order.
    f1 : numpy.ndarray
        First-order centre frequencies, Hz.
    f2 : numpy.ndarray or None
        Second-order centre frequencies, Hz (None when the store has no ``order_2``).
    match : str
        What ``codes`` are: ``"code"`` or ``"component"``.
    """

    codes: tuple
    f1: np.ndarray
    f2: np.ndarray | None
    match: str = "code"

    @property
    def n1(self) -> int:
        """Number of first-order features."""
        return len(self.codes) * len(self.f1)

    @property
    def n_features(self) -> int:
        """Number of features."""
        return self.n1 + (0 if self.f2 is None else self.n1 * len(self.f2))

    def order_index(self) -> np.ndarray:
        """Per feature, 0 for ``order_1`` and 1 for ``order_2``."""
        return (np.arange(self.n_features) >= self.n1).astype(np.intp)

    def coords(self) -> dict:
        """Feature coordinates ``feature_order``, ``feature_channel``, ``feature_f1``, ``feature_f2`` (Hz;
        NaN for first-order features)."""
        c, f1 = np.meshgrid(np.arange(len(self.codes)), self.f1, indexing="ij")
        order = [np.ones(self.n1, dtype=np.int8)]
        chan = [np.asarray(self.codes, dtype=object)[c.ravel()]]
        ff1, ff2 = [f1.ravel()], [np.full(self.n1, np.nan)]
        if self.f2 is not None:
            c2, g1, g2 = np.meshgrid(np.arange(len(self.codes)), self.f1, self.f2, indexing="ij")
            order.append(np.full(c2.size, 2, dtype=np.int8))
            chan.append(np.asarray(self.codes, dtype=object)[c2.ravel()])
            ff1.append(g1.ravel())
            ff2.append(g2.ravel())
        return {"feature_order": np.concatenate(order), "feature_channel": np.concatenate(chan).astype(object),
                "feature_f1": np.concatenate(ff1), "feature_f2": np.concatenate(ff2)}


def joint_layout(inputs: list[StationInput]) -> Layout:
    """The layout of a joint model: channel codes in first-seen order, frequencies all stations share.

    Raises
    ------
    InputError
        A station lacks a channel code, or stations differ in frequencies (naming them and the axes).
    """
    codes = list(dict.fromkeys(c for s in inputs for c in s.codes))
    for s in inputs:
        lacking = [c for c in codes if c not in s.codes]
        if lacking:
            if s.match == "component":
                raise InputError(f"analysis.joint: station {s.key} lacks component(s) {', '.join(lacking)} that "
                                 "other stations have; select stations with the same components or set joint = false")
            raise InputError(f"analysis.joint: station {s.key} lacks channel(s) {', '.join(lacking)} that other "
                             f"stations have; set analysis.match = 'component' to align channels by their last "
                             "letter (Z, N, E) across band codes, select stations with the same channels, "
                             "or set joint = false")
    ref = inputs[0].layout()
    for s in inputs[1:]:
        lay = s.layout()
        diff = []
        for axis in ("f1", "f2"):
            a, b = getattr(ref, axis), getattr(lay, axis)
            if (a is None) != (b is None) or (a is not None and (a.shape != b.shape or not np.allclose(a, b, rtol=1e-9))):
                diff.append(axis)
        if diff:
            raise InputError(f"analysis.joint: stations {inputs[0].key} and {s.key} have different frequencies "
                             f"({', '.join(diff)}); a joint model needs the same network at every station "
                             "(set joint = false)")
    return Layout(tuple(codes), ref.f1, ref.f2, ref.match)
