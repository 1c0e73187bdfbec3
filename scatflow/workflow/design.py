"""What must be identical between the runs that write one store: its design (the store's identity)."""

from __future__ import annotations

import dataclasses

from .blocks import BlockParams
from ..config import Config
from ..scattering.design import load_network
from ..inputs.preprocess import Preprocess


@dataclasses.dataclass(frozen=True)
class Design:
    """What must be identical between the runs that write one store (its identity).

    Attributes
    ----------
    layers : tuple of dict
        Canonical bank keywords per layer (``quality = 2`` and ``2.0`` are one design).
    window_s, hop_s, block_s : float
        Window, hop and block durations, seconds.
    reduce : str
        Pooling: median, max or mean.
    dtype : str
        float32 or float64.
    min_coverage : float
        Fraction of recorded samples a window needs.
    preprocess : Preprocess
        The ``[preprocess]`` steps (part of the identity only when they change samples).
    """

    layers: tuple
    window_s: float
    hop_s: float
    reduce: str
    dtype: str
    block_s: float
    min_coverage: float
    preprocess: Preprocess = Preprocess()

    @classmethod
    def from_config(cls, cfg: Config) -> "Design":
        """The design of a validated configuration (layers from ``network.design`` if given)."""
        net = cfg.network
        if net["layers"] is None:
            layers = load_network(net["design"]).design()["layers"]
        else:
            layers = [
                {"octaves": int(l["octaves"]), "resolution": int(l["resolution"]), "quality": float(l["quality"]),
                 "normalize_wavelet": l.get("normalize_wavelet")}
                for l in net["layers"]
            ]
        return cls(tuple(layers), net["window_s"], cfg.hop_s, net["reduce"], cfg.output["dtype"],
                   cfg.output["block_s"], net["min_coverage"], Preprocess.from_section(cfg.preprocess))

    def record(self) -> dict:
        """The JSON record kept in the store's root attributes and compared key by key."""
        record = {
            "layers": [dict(layer) for layer in self.layers],
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "reduce": self.reduce,
            "dtype": self.dtype,
            "block_s": self.block_s,
            "min_coverage": self.min_coverage,
        }
        if self.preprocess.active:
            # Absent without preprocessing, so stores written before it existed keep their identity.
            record["preprocess"] = self.preprocess.record()
        return record

    def params(self) -> BlockParams:
        """What a worker needs to compute a block of this design."""
        return BlockParams.make(list(self.layers), self.reduce, self.dtype, self.min_coverage, self.preprocess)


__all__ = ["Design"]
