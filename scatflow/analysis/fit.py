"""Fitting a model: the sample's features, their normalisation, FastICA, then KMeans
(the scatseisnet tutorials' procedure), and ``--explore``'s explained variance
per number of components.
"""

from __future__ import annotations

import dataclasses
import typing as T

import numpy as np

from ..errors import ConfigError, InputError
from .features import FLOAT32_NOISE, feature_stats, normalization
from .layout import Layout
from .model import Model
from .sample import features_into, gather_sample, no_window_reason, order_max
from .stations import StationInput


@dataclasses.dataclass
class Fit:
    """What fitting one model produced (before it is stored)."""

    model: Model | None
    explained: float
    sample: int
    stations: list  # StationInput the model applies to
    noise_paths: int = 0


def _explained_variance(x: np.ndarray, mean, unmixing, mixing, rows: int = 8192) -> float:
    """The fraction of the sample's total feature variance that the components reconstruct:
    scikit-learn's ``explained_variance_score(x, inverse_transform(transform(x)),
    multioutput="variance_weighted")``, computed in float64 a slab at a time instead of on whole
    copies of the sample: two passes (means, then squared deviations), as exact as sklearn's.

    Weighted by each feature's variance, not a plain mean over features: with ``log_floor`` the
    order-2 paths at the precision's noise become features that are constant but for rounding,
    whose own score (``1 - var(residual) / var(feature)``, both at the rounding level) can be any
    large negative number; their plain mean gave "-580 %" on the example archive."""
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
    if den.sum() == 0:
        return 1.0 if num.sum() == 0 else 0.0  # sklearn's rule for constant features
    # sklearn's variance-weighted average of its per-feature scores: features of zero variance
    # weigh nothing, the others give sum(den - num) / sum(den) over them.
    ok = den != 0
    return float(1.0 - num[ok].sum() / den[ok].sum())


def fit_model(inputs: list[StationInput], layout: Layout, acfg, log, skipped: list,
              explore: T.Sequence[int] | None = None) -> Fit:
    """Fit the model of ``inputs`` on their sample.

    Steps: draw the sample (:func:`~scatflow.analysis.sample.gather_sample`), take ``M`` per order
    from it, compute its log features, normalise them with statistics over every window of the
    stations that gave features, fit FastICA (``analysis.components``), then KMeans on the
    sample's components.

    Parameters
    ----------
    inputs : list of StationInput
        The stations the model is for (all of them for a joint model, one otherwise).
    layout : Layout
        The feature order.
    acfg : dict
        The resolved ``[analysis]`` config.
    log : callable
        Progress lines.
    skipped : list
        Stations without a usable window in the sample are appended as ``(key, why)``.
    explore : sequence of int, optional
        Component counts: fit FastICA for each and return only the explained variances.

    Returns
    -------
    Fit
        The model (None with ``explore``), the explained variance (a fraction, 0..1; a dict
        ``{count: fraction}`` with ``explore``), the sample size in windows, the stations the
        model applies to and the number of float32 rounding-noise paths.

    Raises
    ------
    ConfigError
        More components or clusters than features or sample windows.
    InputError
        No station has a usable window.
    """
    raws, parts = gather_sample(inputs, layout, acfg)
    order = layout.order_index()
    # M per order from the sample's finite windows: the floor's scale, fixed with the model.
    log_max = np.zeros(2)
    for p in parts:
        log_max = np.maximum(log_max, order_max(p, layout.n1))
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
        got = features_into(p, offset, x[n_sample:])
        if not got:
            skipped.append((s.key, no_window_reason(s, len(p), floor)))
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
    shift, scale = normalization(acfg["normalize"], stats, layout.n_features)
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
        return Fit(None, results, n_sample, [s for s, _ in keep], int(noise_paths.sum()))
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
    return Fit(model, explained, n_sample, [s for s, _ in keep], int(noise_paths.sum()))


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
