"""Features of a window and their statistics.

Each coefficient becomes ``log10(x + log_floor * M)`` (``M`` the largest value
of its order in the fitting sample), then is normalised (``analysis.normalize``)
with statistics over every window of the stations. A window with a NaN value
(gap, failed or pending block), or a non-positive value when ``log_floor = 0``,
gets no features: cluster -1, NaN components and distance.
"""

from __future__ import annotations

import numpy as np

#: Relative precision of float32: coefficients below ``M * FLOAT32_NOISE`` are rounding noise of
#: the transform computed in float32 (its absolute errors scale with the largest value).
FLOAT32_NOISE = float(np.finfo(np.float32).eps)


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


def normalization(kind: str, stats: dict | None, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale per feature of ``analysis.normalize`` ``kind`` (``"none"``, ``"minmax"``,
    ``"standard"``) from :func:`feature_stats`'s ``stats``: features become ``(x - shift) / scale``."""
    if kind == "none":
        return np.zeros(n_features), np.ones(n_features)
    if kind == "minmax":
        # Tutorial 4: one global min and max over every feature of every window.
        lo, hi = float(stats["min"].min()), float(stats["max"].max())
        return np.full(n_features, lo), np.full(n_features, (hi - lo) if hi > lo else 1.0)
    std = np.where(stats["std"] > 0, stats["std"], 1.0)
    return stats["mean"].copy(), std
