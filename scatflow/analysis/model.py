"""A fitted analysis model and its stored form.

The model is the features' normalisation, the FastICA unmixing and the KMeans
centroids, stored as plain arrays (no pickles) in ``analysis/<name>``, so a
later run labels new windows with the same model without refitting.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .features import log_features
from .layout import Layout


@dataclasses.dataclass
class Model:
    """A fitted analysis model: features, normalisation, FastICA unmixing and KMeans centroids.

    Attributes
    ----------
    layout : Layout
    log_floor : float
        Fraction of ``log_max`` added before the logarithm.
    log_max : numpy.ndarray
        ``M`` per order (order,): largest coefficient of that order in the fitting sample.
    shift, scale : numpy.ndarray
        Normalisation per feature: ``(log10(...) - shift) / scale``.
    mean : numpy.ndarray
        (feature,) FastICA's mean of the normalised features.
    unmixing : numpy.ndarray
        (component, feature) FastICA ``components_``.
    mixing : numpy.ndarray
        (feature, component) FastICA ``mixing_``.
    centroids : numpy.ndarray
        (cluster, component) KMeans ``cluster_centers_``.
    """

    layout: Layout
    log_floor: float
    log_max: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    mean: np.ndarray
    unmixing: np.ndarray
    mixing: np.ndarray
    centroids: np.ndarray

    def offset(self) -> np.ndarray:
        """``log_floor * M`` per feature."""
        return self.log_floor * self.log_max[self.layout.order_index()]

    def features(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised features of raw coefficients and which windows have them (see :func:`log_features`)."""
        x, valid = log_features(raw, self.offset())
        return (x - self.shift) / self.scale, valid

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Components, cluster and distance of windows.

        Parameters
        ----------
        raw : numpy.ndarray
            Coefficients (window, feature) in the model's feature order.

        Returns
        -------
        numpy.ndarray
            (window, component + 2), float64: the components ``(X - mean) @ unmixing.T``, the
            label of the nearest centroid (-1 without features) and the Euclidean distance to it
            (in component units; NaN without features).
        """
        x, valid = self.features(raw)
        comps = (x - self.mean) @ self.unmixing.T
        d2 = ((comps[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=-1)
        label = np.argmin(d2, axis=1).astype(np.float64)
        dist = np.sqrt(d2[np.arange(len(d2)), label.astype(np.intp)])
        comps[~valid] = np.nan
        label[~valid] = -1
        dist[~valid] = np.nan
        return np.column_stack([comps, label, dist])

    def dataset(self):
        """The model as an xarray Dataset (arrays only, no pickles)."""
        import xarray as xr

        k, f = self.unmixing.shape
        coords = {name: ("feature", v) for name, v in self.layout.coords().items()}
        what = ("channel code CHA (analysis.match = code)" if self.layout.match == "code" else
                "channel component, the last letter of CHA (analysis.match = component)")
        coords["feature_channel"] = ("feature", coords["feature_channel"][1],
                                     {"long_name": what, "match": self.layout.match})
        coords.update(component=np.arange(k), cluster=np.arange(len(self.centroids)), order=[1, 2])
        return xr.Dataset(
            {
                "mean": (("feature",), self.mean, {"long_name": "FastICA mean of the normalised features"}),
                "unmixing": (("component", "feature"), self.unmixing, {"long_name": "FastICA components_"}),
                "mixing": (("feature", "component"), self.mixing, {"long_name": "FastICA mixing_"}),
                "centroids": (("cluster", "component"), self.centroids, {"long_name": "KMeans cluster_centers_"}),
                "norm_shift": (("feature",), self.shift, {"long_name": "normalisation: subtracted from log10"}),
                "norm_scale": (("feature",), self.scale, {"long_name": "normalisation: divisor after the shift"}),
                "log_max": (("order",), self.log_max,
                            {"long_name": "largest coefficient per order in the fitting sample (M)"}),
            },
            coords=coords,
        )

    @classmethod
    def from_dataset(cls, ds, log_floor: float) -> "Model":
        """A model read back from :meth:`dataset`'s arrays."""
        order = np.asarray(ds["feature_order"].values)
        n1 = int((order == 1).sum())
        chan = np.array([str(c) for c in ds["feature_channel"].values])
        f1all = np.asarray(ds["feature_f1"].values, dtype=float)
        codes = tuple(dict.fromkeys(chan[:n1]))
        match = str(ds["feature_channel"].attrs.get("match", "code"))
        f1 = f1all[: n1 // len(codes)]
        f2 = None
        if (order == 2).any():
            f2all = np.asarray(ds["feature_f2"].values, dtype=float)[n1:]
            f2 = f2all[: int((order == 2).sum()) // n1]
        v = {name: np.asarray(ds[name].values, dtype=np.float64) for name in
             ("log_max", "norm_shift", "norm_scale", "mean", "unmixing", "mixing", "centroids")}
        return cls(Layout(codes, f1, f2, match), float(log_floor), v["log_max"], v["norm_shift"], v["norm_scale"],
                   v["mean"], v["unmixing"], v["mixing"], v["centroids"])
