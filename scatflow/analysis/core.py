"""Independent components and clusters of a store's coefficients (``scatflow analyze``).

The procedure is the scatseisnet tutorials' (dimension reduction with FastICA,
then KMeans), made to scale: the model is fitted on a seeded sample of windows
spread over stations and time, then applied to every window chunk by chunk
with Dask, and its results written beside the coefficients in the group
``analysis/<name>`` (README, "Analysis"). Models are stored as arrays,
so a later run labels new windows with the same model without refitting.

Features of a window, in the tutorial's order: all ``order_1`` values in
(channel, f1) order, then all ``order_2`` values in (channel, f1, f2) order,
each ``log10(x + log_floor * M)`` (``M`` the largest value of that order in the
fitting sample), then normalised. A window with a NaN value (gap, failed or
pending block), or a non-positive value when ``log_floor = 0``, gets no
features: cluster -1, NaN components and distance.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
import typing as T

import numpy as np

from ..errors import ConfigError, InputError, StoreError
from ..store.ledger import consecutive

#: Relative precision of float32: coefficients below ``M * FLOAT32_NOISE`` are rounding noise of
#: the transform computed in float32 (its absolute errors scale with the largest value).
FLOAT32_NOISE = float(np.finfo(np.float32).eps)
#: Keys of the analysis config that define a model; a stored analysis with others is refused.
MODEL_KEYS = ("name", "stations", "joint", "match", "log_floor", "normalize", "sample", "components", "seed",
              "clusters", "cluster_seed")
#: Values of keys that analyses written before the key existed were made with.
KEY_DEFAULTS = {"match": "code"}


# -- features -------------------------------------------------------------------------------
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


@dataclasses.dataclass
class StationInput:
    """One station group's coefficients, read lazily, and its ledger as the analysis needs it.

    Attributes
    ----------
    key : str
        ``NET.STA.LOC``.
    ds : xarray.Dataset
        The station group, lazy.
    chunk : int
        Windows per block (the analysis labels block by block).
    min_coverage : float
    complete : numpy.ndarray of bool
        Per block: marked done with all its windows. Windows of other blocks (pending, failed,
        without data, grown since) are neither sampled nor labelled: cluster -1, NaN.
    stamps : numpy.ndarray of int64
        Per block, the ledger's ``block_stamp`` (0 when the store has none).
    match : str
        ``"code"`` or ``"component"`` (``analysis.match``).
    """

    key: str
    ds: T.Any  # xr.Dataset, lazy
    chunk: int
    min_coverage: float
    complete: np.ndarray = None
    stamps: np.ndarray = None
    match: str = "code"

    @property
    def n(self) -> int:
        return int(self.ds.sizes["time"])

    @property
    def codes(self) -> list[str]:
        full = [str(c).split(".")[-1] for c in self.ds["channel"].values]
        return [c[-1:] for c in full] if self.match == "component" else full

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.ds["order_1"].dtype)

    def layout(self) -> Layout:
        f2 = np.asarray(self.ds["f2"].values, dtype=float) if "order_2" in self.ds else None
        return Layout(tuple(self.codes), np.asarray(self.ds["f1"].values, dtype=float), f2, self.match)

    def raw(self, layout: Layout, dtype=np.float64):
        """The raw coefficients in ``layout``'s feature order, a Dask array (time, feature) in ``dtype``
        (None: the store's), chunked like the store along time; NaN in blocks not complete."""
        import dask.array as da

        perm = [self.codes.index(c) for c in layout.codes]
        parts = [self.ds["order_1"].data[:, perm, :].reshape(self.n, -1)]
        if layout.f2 is not None:
            parts.append(self.ds["order_2"].data[:, perm, :, :].reshape(self.n, -1))
        out = da.concatenate(parts, axis=1)
        out = (out if dtype is None else out.astype(dtype)).rechunk({0: self.chunk, 1: -1})
        if self.complete is not None and not self.complete.all():
            # The ledger, not the values, says which windows hold results (a failed block of a store
            # written before failures cleared their data still holds its old numbers).
            ok = da.from_array(np.repeat(self.complete, self.chunk)[: self.n, None], chunks=(self.chunk, 1))
            out = da.where(ok, out, np.nan).astype(out.dtype)
        return out


def log_features(raw: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log10(raw + offset)`` and which windows have features.

    Parameters
    ----------
    raw : numpy.ndarray
        Coefficients (window, feature), any unit.
    offset : numpy.ndarray
        ``log_floor * M`` per feature, same unit as ``raw`` (0 for plain ``log10``).

    Returns
    -------
    features : numpy.ndarray
        (window, feature), float64; rows of windows without features are 0 (never ``-inf``).
    valid : numpy.ndarray of bool
        Windows whose values are all finite and ``raw + offset > 0``.
    """
    raw = np.asarray(raw, dtype=np.float64)
    y = raw + offset
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(y).all(axis=1) & (y > 0).all(axis=1)
    return np.log10(np.where(valid[:, None], y, 1.0)), valid


# -- the model --------------------------------------------------------------------------------
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


def _apply_chunk(raw: np.ndarray, model: Model) -> np.ndarray:
    return model.apply(raw)


# -- sampling and statistics -----------------------------------------------------------------
def sample_indices(counts: list[int], size: int, seed: int) -> list[np.ndarray]:
    """Windows drawn to fit a model: an equal share per station (what a station lacks goes to
    the others), stratified over each station's time axis (one window drawn in each of ``share``
    equal spans); every window when there are ``size`` or fewer.

    Parameters
    ----------
    counts : list of int
        Windows per station.
    size : int
        Windows to draw in all.
    seed : int
        Seed of the draw.

    Returns
    -------
    list of numpy.ndarray
        Sorted window indices per station.
    """
    if sum(counts) <= size:
        return [np.arange(n) for n in counts]
    shares = [0] * len(counts)
    left, open_ = size, [i for i, n in enumerate(counts) if n]
    while left and open_:  # water-filling: equal shares, capped by each station's windows
        each = max(left // len(open_), 1)
        for i in list(open_):
            add = min(each, counts[i] - shares[i], left)
            shares[i] += add
            left -= add
            if shares[i] == counts[i]:
                open_.remove(i)
            if not left:
                break
    rng = np.random.default_rng(seed)
    out = []
    for n, q in zip(counts, shares):
        if q >= n:
            out.append(np.arange(n))
        elif q == 0:
            out.append(np.zeros(0, dtype=np.int64))
        else:
            # Integer strata (each of at least one window), one window drawn in each: distinct, spread.
            edges = (np.arange(q + 1, dtype=np.int64) * n) // q
            out.append(edges[:-1] + np.floor(rng.random(q) * np.diff(edges)).astype(np.int64))
    return out


def _chunk_stats(raw: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(5, feature): count, mean, sum of squared deviations, min, max of one chunk's valid windows."""
    x, valid = log_features(raw, offset)
    x = x[valid]
    f = raw.shape[1]
    out = np.zeros((5, f))
    out[3], out[4] = np.inf, -np.inf
    if len(x):
        out[0] = len(x)
        out[1] = x.mean(axis=0)
        out[2] = ((x - out[1]) ** 2).sum(axis=0)
        out[3], out[4] = x.min(axis=0), x.max(axis=0)
    return out[None]


def feature_stats(raws: list, offset: np.ndarray) -> dict:
    """Exact per-feature count, mean, std, min and max of the log features of every valid window.

    Chunks are combined with Chan's pairwise update, so the variance is as exact as a two-pass
    computation, in one pass over the store.
    """
    import dask
    import dask.array as da

    parts = [da.map_blocks(_chunk_stats, r, offset, chunks=((1,) * r.numblocks[0], (5,), (r.shape[1],)),
                           new_axis=1, dtype=np.float64) for r in raws]
    blocks = [b for p in dask.compute(*parts) for b in p]
    n = np.zeros(raws[0].shape[1])
    mean = np.zeros_like(n)
    m2 = np.zeros_like(n)
    lo, hi = np.full_like(n, np.inf), np.full_like(n, -np.inf)
    for b in blocks:
        nb = b[0]
        if not nb[0]:
            continue
        tot = n + nb
        delta = b[1] - mean
        mean = mean + delta * nb / tot
        m2 = m2 + b[2] + delta ** 2 * n * nb / tot
        n = tot
        lo, hi = np.minimum(lo, b[3]), np.maximum(hi, b[4])
    std = np.sqrt(m2 / np.maximum(n, 1))
    return {"count": int(n[0]), "mean": mean, "std": std, "min": lo, "max": hi}


# -- the run ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Summary:
    """The outcome of ``scatflow analyze``."""

    name: str
    joint: bool
    stations: list[str]
    windows: int = 0
    labelled_now: int = 0
    with_features: int = 0
    sample: int = 0
    fitted: bool = False
    explained: dict = dataclasses.field(default_factory=dict)
    #: Per model (None for the joint one, else the station), windows per cluster (-1: no label).
    model_sizes: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def cluster_sizes(self) -> dict:
        """Windows per cluster of the joint model; with one model per station only ``{-1: windows
        without label}`` (cluster numbers of different models are unrelated: see ``model_sizes``)."""
        if self.joint:
            return dict(self.model_sizes.get(None, {}))
        return {-1: sum(m.get(-1, 0) for m in self.model_sizes.values())}

    def text(self) -> str:
        """The one-paragraph summary printed at the end."""
        ev = ", ".join(f"{k or 'joint'} {100 * v:.1f} %" for k, v in self.explained.items())

        def sizes(counts):
            return ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()) if c >= 0) or "none"

        if self.joint:
            clusters = f"cluster sizes: {sizes(self.model_sizes.get(None, {}))}"
        else:
            clusters = "cluster sizes per station model: " + "; ".join(
                f"{k} ({sizes(v)})" for k, v in self.model_sizes.items())
        none = self.cluster_sizes.get(-1, 0)
        model = ("fitted now on a sample of " + f"{self.sample} windows") if self.fitted else "the stored model"
        text = (f"analysis {self.name!r} ({'joint model' if self.joint else 'one model per station'}, {model}): "
                f"{len(self.stations)} station(s), {self.windows} windows, {self.with_features} with features "
                f"({none} without: gaps, blocks not complete, or values <= 0 with log_floor = 0), "
                f"{self.labelled_now} labelled in this run "
                f"in {self.seconds:.1f} s; ICA explained variance of the sample: {ev or 'n/a (stored model)'}; "
                f"{clusters}.")
        lines = [text]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped]
        return "\n".join(lines)


def _select(reader, patterns) -> list[str]:
    stations = reader.stations
    chosen = [s for s in stations if any(fnmatch.fnmatchcase(s, p) for p in patterns)]
    if not chosen:
        raise InputError(f"{reader.path}: no station matches analysis.stations {list(patterns)}; "
                         f"the store has: {', '.join(stations) or 'none'}")
    return chosen


def _inputs(reader, keys: list[str], skipped: list, match: str = "code") -> list[StationInput]:
    out = []
    for key in keys:
        absent = reader.missing_arrays(key)
        if absent:
            skipped.append((key, f"not a scatflow station group (missing {', '.join(absent)})"))
            continue
        st = reader.station(key)
        ds = reader.dataset(key)
        if st.n == 0:
            skipped.append((key, "no windows"))
            continue
        chunk = st.blocks.chunk
        blocks = st.blocks.count
        complete = st.complete_blocks()
        g = st.group
        stamps = np.zeros(blocks, dtype=np.int64)
        if "block_stamp" in g:
            got = np.asarray(g["block_stamp"][:], dtype=np.int64)[:blocks]
            stamps[: len(got)] = got
        s = StationInput(key, ds, chunk, float(st.attrs.get("min_coverage", 1.0)), complete, stamps, match)
        if match == "component":
            ids = [str(c) for c in ds["channel"].values]
            twice = [c for c in ids if s.codes.count(c.split(".")[-1][-1:]) > 1]
            if twice:
                raise InputError(f"analysis.match = 'component': station {key} has several channels of one "
                                 f"component ({', '.join(twice)}); compute one band per station ([input] select) "
                                 "or set match = 'code'")
        out.append(s)
    return out


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


def _normalization(kind: str, stats: dict | None, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "none":
        return np.zeros(n_features), np.ones(n_features)
    if kind == "minmax":
        # Tutorial 4: one global min and max over every feature of every window.
        lo, hi = float(stats["min"].min()), float(stats["max"].max())
        return np.full(n_features, lo), np.full(n_features, (hi - lo) if hi > lo else 1.0)
    std = np.where(stats["std"] > 0, stats["std"], 1.0)
    return stats["mean"].copy(), std


@dataclasses.dataclass
class _Fit:
    """What fitting one model produced (before it is stored)."""

    model: Model | None
    explained: float
    sample: int
    stations: list  # StationInput the model applies to
    noise_paths: int = 0


def _gather_sample(inputs, layout, acfg):
    """The lazy float64 coefficients of each station and its drawn windows, in the store's dtype
    (a float32 store's sample takes half the driver's memory until its features are computed)."""
    import dask

    counts = [s.n for s in inputs]
    idx = sample_indices(counts, acfg["sample"], acfg["seed"])
    raws = [s.raw(layout) for s in inputs]
    native = [s.raw(layout, dtype=None) for s in inputs]
    parts = dask.compute(*[r[i] if len(i) else r[:0] for r, i in zip(native, idx)])
    return raws, list(parts)


def _order_max(p: np.ndarray, n1: int) -> tuple[float, float]:
    """Largest value of each order over the windows of ``p`` whose values are all finite (no copy)."""
    rows = np.isfinite(p).all(axis=1)[:, None]
    return tuple(float(np.max(v, where=rows, initial=-np.inf)) if v.shape[1] else -np.inf
                 for v in (p[:, :n1], p[:, n1:]))


def _features_into(p: np.ndarray, offset: np.ndarray, out: np.ndarray, rows: int = 8192) -> int:
    """Write the log features of ``p``'s valid windows into the first rows of ``out``,
    a slab of ``rows`` windows at a time; returns how many windows had features."""
    n = 0
    for a in range(0, len(p), rows):
        x, valid = log_features(p[a:a + rows], offset)
        k = int(valid.sum())
        out[n:n + k] = x[valid]
        n += k
    return n


def _explained_variance(x: np.ndarray, mean, unmixing, mixing, rows: int = 8192) -> float:
    """scikit-learn's ``explained_variance_score(x, inverse_transform(transform(x)))`` (uniform average
    over features, its rules for constant features), computed in float64 a slab at a time instead of
    on whole copies of the sample: two passes (means, then squared deviations), as exact as sklearn's."""
    def slabs():
        for a in range(0, len(x), rows):
            xs = x[a:a + rows].astype(np.float64)
            yield xs, xs - ((xs - mean) @ unmixing.T @ mixing.T + mean)

    n = len(x)
    mx, mr = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for xs, r in slabs():
        mx += xs.sum(0)
        mr += r.sum(0)
    mx /= n
    mr /= n
    den, num = np.zeros_like(mx), np.zeros_like(mx)
    for xs, r in slabs():
        den += ((xs - mx) ** 2).sum(0)
        num += ((r - mr) ** 2).sum(0)
    score = np.ones_like(mx)
    ok = (den != 0) & (num != 0)
    score[ok] = 1.0 - num[ok] / den[ok]
    score[(num != 0) & (den == 0)] = 0.0
    return float(score.mean())


def fit_model(inputs: list[StationInput], layout: Layout, acfg, log, skipped: list,
              explore: T.Sequence[int] | None = None) -> _Fit:
    """Fit the model of ``inputs`` on their sample (see the module docstring for the steps)."""
    raws, parts = _gather_sample(inputs, layout, acfg)
    order = layout.order_index()
    # M per order from the sample's finite windows: the floor's scale, fixed with the model.
    log_max = np.zeros(2)
    for p in parts:
        log_max = np.maximum(log_max, _order_max(p, layout.n1))
    floor = float(acfg["log_floor"])
    offset = floor * log_max[order]
    # The sample's features go into one float64 array filled station by station, each station's raw
    # sample (in the store's dtype) released as soon as it is used: the driver then holds the features
    # and scikit-learn's one copy of them, 2 x 0.8 GB for 200000 x 504, and nothing else that size.
    # Not float32: the whitening's covariance in float32 loses the paths near rounding noise (on the
    # example archive the clusters moved, adjusted Rand 0.86 against float64).
    x = np.empty((sum(len(p) for p in parts), layout.n_features), dtype=np.float64)
    keep, n_sample = [], 0
    noise_paths = np.zeros(layout.n_features, dtype=bool)
    for s, r in zip(inputs, raws):
        p = parts.pop(0)
        if floor == 0 and s.dtype == np.float32:
            rows = np.isfinite(p).all(axis=1)
            noise_paths |= (p < log_max[order] * FLOAT32_NOISE).any(axis=0, where=rows[:, None])
        got = _features_into(p, offset, x[n_sample:])
        if not got:
            skipped.append((s.key, _no_window_reason(s, len(p), floor)))
            continue
        keep.append((s, r))
        n_sample += got
        del p
    if not keep:
        raise InputError("no station has a usable window (" + "; ".join(f"{k}: {why}" for k, why in skipped) + ")")
    x = x[:n_sample]
    stats = None
    if acfg["normalize"] != "none":
        log(f"analyze: normalisation ({acfg['normalize']}) over every window of {len(keep)} station(s)")
        stats = feature_stats([r for _, r in keep], offset)
    shift, scale = _normalization(acfg["normalize"], stats, layout.n_features)
    x -= shift
    x /= scale
    k = acfg["components"]
    if k > layout.n_features:
        raise ConfigError(f"'analysis.components' ({k}) is larger than the number of features "
                          f"({layout.n_features})")
    if k > n_sample:
        raise ConfigError(f"'analysis.components' ({k}) is larger than the sample ({n_sample} windows with features)")
    if explore is not None:
        for c in explore:
            if c > min(layout.n_features, n_sample):
                raise ConfigError(f"--explore: {c} components is more than the features ({layout.n_features}) "
                                  f"or the sample ({n_sample})")
        results = {}
        for c in explore:
            ica = _ica(c, acfg, x, log)
            results[c] = _explained_variance(x, ica.mean_, ica.components_, ica.mixing_)
            log(f"analyze: {c} components: explained variance {100 * results[c]:.2f} %")
        return _Fit(None, results, n_sample, [s for s, _ in keep], int(noise_paths.sum()))
    if acfg["clusters"] > n_sample:
        raise ConfigError(f"'analysis.clusters' ({acfg['clusters']}) is larger than the sample "
                          f"({n_sample} windows with features)")
    from sklearn.cluster import KMeans

    log(f"analyze: FastICA({k}) on {n_sample} windows x {layout.n_features} features")
    ica = _ica(k, acfg, x, log)
    mean = np.asarray(ica.mean_, dtype=np.float64)
    unmixing = np.asarray(ica.components_, dtype=np.float64)
    mixing = np.asarray(ica.mixing_, dtype=np.float64)
    comps = np.concatenate([(x[a:a + 8192] - mean) @ unmixing.T for a in range(0, len(x), 8192)])
    explained = _explained_variance(x, mean, unmixing, mixing)
    log(f"analyze: KMeans({acfg['clusters']}) on the sample's components")
    km = KMeans(n_clusters=acfg["clusters"], n_init="auto", random_state=acfg["cluster_seed"]).fit(comps)
    model = Model(layout, floor, log_max, shift, scale, mean, unmixing, mixing,
                  np.asarray(km.cluster_centers_, dtype=np.float64))
    return _Fit(model, explained, n_sample, [s for s, _ in keep], int(noise_paths.sum()))


def _ica(k: int, acfg, x: np.ndarray, log=print):
    """The tutorials' FastICA (``whiten="unit-variance"``) fitted on ``x``, whitened from the
    (feature x feature) covariance (``whiten_solver="eigh"``) instead of an SVD of the whole sample,
    whose (sample x feature) factor would double the driver's memory. Only the top ``k``
    eigenvectors are used, which the covariance gives as accurately, so scikit-learn's warning
    about small eigenvalues (rounding-noise paths have them) is not shown."""
    import warnings

    from sklearn.decomposition import FastICA

    from sklearn.exceptions import ConvergenceWarning

    ica = FastICA(n_components=k, whiten="unit-variance", whiten_solver="eigh", random_state=acfg["seed"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("ignore", message="There are some small singular values")
        warnings.simplefilter("always", ConvergenceWarning)
        ica.fit(x)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        # One line in the run's log instead of a Python warning with a file path.
        log(f"analyze: FastICA({k}) did not converge in {ica.max_iter} iterations (scikit-learn); "
            "the components may be less independent")
    return ica


def _no_window_reason(s: StationInput, drawn: int, floor: float) -> str:
    from ..inputs.windows import computable

    cov = np.asarray(s.ds["coverage"].values)
    full = computable(np.nan_to_num(cov, nan=0.0), s.min_coverage).all(axis=1).sum()
    if not full:
        return f"no usable window (none of its {s.n} windows has coefficients on every channel)"
    why = "values <= 0 with log_floor = 0" if floor == 0 else "NaN values"
    return f"no usable window among the {drawn} drawn ({why})"


def _todo_chunks(reader, name: str, s: StationInput) -> list[int]:
    """Chunks (blocks) of station ``s`` to label: those at or after the analysed end, and earlier ones
    whose ledger stamp differs from the one recorded when they were labelled (their block was
    written since: computed, recomputed from new data, or failed); every chunk when the analysis
    recorded no stamps (written before they existed)."""
    nchunks = -(-s.n // s.chunk)
    if s.key not in reader.analysis_stations(name):
        return list(range(nchunks))
    res = reader.analysis(name, s.key)
    if "block_stamp" not in res:
        return list(range(nchunks))
    labelled = np.asarray(res["block_stamp"].values, dtype=np.int64)
    n_labelled = min(int(res.sizes["time"]), len(labelled) * s.chunk)
    # A chunk with windows past the labelled end (new, or the old partial last one) is labelled whole.
    return [c for c in range(nchunks) if min((c + 1) * s.chunk, s.n) > n_labelled or labelled[c] != s.stamps[c]]


def apply_model(store, name: str, model: Model, s: StationInput, chunks: list[int]) -> int:
    """Label chunks ``chunks`` of station ``s`` with ``model`` and write them; returns windows written."""
    import dask.array as da
    import xarray as xr

    k = model.unmixing.shape[0]
    raw = s.raw(model.layout)
    out = da.map_blocks(_apply_chunk, raw, model, chunks=(raw.chunks[0], (k + 2,)), dtype=np.float64)
    times = s.ds["time"]
    written = 0
    for c0, c1 in ((g[0], g[-1] + 1) for g in consecutive(chunks)):
        a, b = c0 * s.chunk, min(c1 * s.chunk, s.n)
        part = out[a:b]
        ds = xr.Dataset(
            {
                "components": (("time", "component"), part[:, :k],
                               {"long_name": "independent components (X - mean) @ unmixing.T"}),
                "cluster": (("time",), part[:, k].astype(np.int32),
                            {"long_name": "KMeans label, -1 = no features"}),
                "distance": (("time",), part[:, k + 1],
                             {"long_name": "Euclidean distance to the cluster's centroid, component units"}),
            },
            coords={"time": times.isel(time=slice(a, b)).values, "component": np.arange(k)},
        )
        store.write_analysis_windows(name, s.key, ds, a, s.chunk)
        written += b - a
    return written


def _config_differences(stored: dict, current: dict) -> list[str]:
    stored = {**KEY_DEFAULTS, **stored}
    return [f"{k}: store has {stored.get(k)!r}, config has {current.get(k)!r}"
            for k in MODEL_KEYS if stored.get(k) != current.get(k)]


def preflight(cfg, *, refit: bool = False, explore: T.Sequence[int] | None = None) -> None:
    """The checks :func:`analyze` makes before computing anything, from metadata alone: the store,
    an analysis written with another config, the stations asked, a joint model's channels and
    frequencies. The command line makes them before it starts a cluster.

    Raises
    ------
    ConfigError, InputError, StoreError
        As :func:`analyze`.
    """
    _prepare(cfg, refit, explore)


def _prepare(cfg, refit: bool, explore):
    from ..config import thaw
    from ..store.reader import StoreReader

    acfg = thaw(cfg.analysis)
    name, path = acfg["name"], cfg.output["store"]
    reader = StoreReader(path)
    stored = reader.analysis_attrs(name)
    current = {k: acfg[k] for k in MODEL_KEYS}
    if stored is not None and explore is None and not refit:
        diffs = _config_differences(stored.get("config") or {}, current)
        if diffs:
            raise StoreError(f"{path}: analysis {name!r} was written with another [analysis] config "
                             f"({'; '.join(diffs)}); use --refit to replace it, or another analysis.name")
    summary = Summary(name, acfg["joint"], [])
    inputs = _inputs(reader, _select(reader, acfg["stations"]), summary.skipped, acfg["match"])
    if not inputs:
        raise InputError(f"{path}: no usable station (" + "; ".join(f"{k}: {w}" for k, w in summary.skipped) + ")")
    if acfg["joint"]:
        joint_layout(inputs)  # stations that cannot share one model: refused before anything is computed
    return reader, acfg, stored, summary, inputs


def analyze(cfg, *, refit: bool = False, explore: T.Sequence[int] | None = None, log=print) -> Summary | dict:
    """Fit (or reuse) the ``[analysis]`` model of a store and label every window.

    Parameters
    ----------
    cfg : scatflow.config.Config
        A validated configuration; ``cfg.output["store"]`` is the store, ``cfg.analysis`` the analysis.
    refit : bool
        Fit again and replace the analysis ``analysis/<name>`` (its station results included).
    explore : sequence of int, optional
        Component counts: fit FastICA for each on the sample and return ``{count: explained variance}``
        (a fraction, 0..1) without writing anything.
    log : callable
        Progress lines (stderr in the command line).

    Returns
    -------
    Summary or dict
        The summary (:meth:`Summary.text`), or per model ``{count: explained variance}`` with ``explore``.

    Raises
    ------
    ConfigError, InputError, StoreError
        One line each: no station matching, stations that cannot share a joint model, too many
        components, an analysis written with another config (unless ``refit``), no usable window.
    """
    from ..store.lock import writer_lock
    from ..store.reader import StoreReader
    from ..store.writer import Store

    t0 = time.perf_counter()
    reader, acfg, stored, summary, inputs = _prepare(cfg, refit, explore)
    name, path = acfg["name"], cfg.output["store"]
    groups = [(None, inputs)] if acfg["joint"] else [(s.key, [s]) for s in inputs]
    fresh = refit or stored is None

    if explore is not None:
        results = {}
        for key, members in groups:
            layout = joint_layout(members) if key is None else members[0].layout()
            log(f"analyze: exploring {list(explore)} components" + (f" for {key}" if key else ""))
            results[key] = fit_model(members, layout, acfg, log, summary.skipped, explore=list(explore)).explained
        return results

    if acfg["joint"]:
        layout = joint_layout(inputs)  # refuse before anything is written
    store = Store(path)
    with writer_lock(path, command="analyze"):
        store.drop_consolidated()
        if refit:
            store.drop_analysis(name)
            reader = StoreReader(path)
        records = {} if fresh else dict(stored.get("models") or {})
        for key, members in groups:
            rec_key = key or ""
            if not fresh and rec_key in records:
                model = Model.from_dataset(reader.analysis_model(name, key), acfg["log_floor"])
                # A station's channels can grow (a new channel joins its group): a stored model never
                # meets features laid out otherwise than those it was fitted on.
                want = joint_layout(members) if key is None else members[0].layout()
                if want.codes != model.layout.codes or want.n_features != model.layout.n_features:
                    whose = "the stations'" if key is None else f"station {key}'s"
                    raise InputError(f"analysis {name!r}: {whose} channels or frequencies differ from the "
                                     f"stored model's ({', '.join(model.layout.codes)} now "
                                     f"{', '.join(want.codes)}); use --refit")
            else:
                layout = joint_layout(members) if key is None else members[0].layout()
                log("analyze: drawing the sample" + (f" of {key}" if key else "") + " ...")
                fit = fit_model(members, layout, acfg, log, summary.skipped)
                members = fit.stations
                model = fit.model
                if fit.noise_paths:
                    msg = (f"warning: log_floor = 0 on a float32 store: {fit.noise_paths} of "
                           f"{layout.n_features} paths have values below float32 noise "
                           f"({FLOAT32_NOISE:.1e} x the largest value); their log10 is noise "
                           "(a log_floor of 1e-4 keeps them out)")
                    summary.warnings.append(msg)
                    log(msg)
                store.write_analysis_model(name, key, model.dataset())
                records[rec_key] = {"sample": fit.sample, "explained_variance": fit.explained,
                                    "fitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                summary.fitted = True
                summary.sample += fit.sample
                summary.explained[key] = fit.explained
            for s in members:
                chunks = _todo_chunks(reader, name, s)
                log(f"analyze: labelling {s.key}: {len(chunks)} chunk(s) of {s.chunk} windows")
                summary.labelled_now += apply_model(store, name, model, s, chunks)
                # After the labels: a crash in between leaves old stamps, so those chunks are labelled again.
                store.write_analysis_stamps(name, s.key, s.stamps)
                summary.stations.append(s.key)
        # The attributes last: a crash before this leaves an analysis the next run refits.
        store.set_analysis_attrs(name, {"config": {k: acfg[k] for k in MODEL_KEYS}, "models": records,
                                        "joint": acfg["joint"]})
        store.consolidate()
    reader = StoreReader(path)
    for key in summary.stations:
        labels = np.asarray(reader.analysis(name, key)["cluster"].values)
        summary.windows += len(labels)
        sizes = summary.model_sizes.setdefault(None if acfg["joint"] else key, {})
        vals, counts = np.unique(labels, return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            sizes[v] = sizes.get(v, 0) + c
    summary.with_features = summary.windows - summary.cluster_sizes.get(-1, 0)
    summary.seconds = time.perf_counter() - t0
    return summary


def parse_explore(text: str) -> list[int]:
    """``"2:10"`` -> ``[2, ..., 10]`` (inclusive); ``"3,5,8"`` -> ``[3, 5, 8]``.

    Raises
    ------
    ConfigError
        Not a range or list of positive integers, or a decreasing range.
    """
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":"))
            counts = list(range(a, b + 1))
        else:
            counts = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--explore: expected a range like 2:10 or a list like 3,5,8, got {text!r}") from None
    if ":" in text and not counts:
        a, b = text.split(":")
        raise ConfigError(f"--explore: the range {text} must be increasing (first count <= last, e.g. {b}:{a})")
    if not counts or min(counts) < 1:
        raise ConfigError(f"--explore: component counts must be positive integers, got {text!r}")
    return counts


__all__ = ["analyze", "Model", "Layout", "Summary", "log_features", "sample_indices", "feature_stats",
           "joint_layout", "parse_explore", "MODEL_KEYS"]
