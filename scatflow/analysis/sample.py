"""The fitting sample: a seeded draw of windows spread over stations and time,
read in the store's dtype, and its features gathered into one array.

A model is fitted on this sample, not on every window, so fitting scales with
``analysis.sample``, not with the store; the draw depends only on the windows
per station and ``analysis.seed``.
"""

from __future__ import annotations

import numpy as np

from .features import log_features
from .layout import Layout
from .stations import StationInput


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


def gather_sample(inputs: list[StationInput], layout: Layout, acfg) -> tuple[list, list]:
    """The lazy float64 coefficients of each station and its drawn windows, in the store's dtype
    (a float32 store's sample takes half the driver's memory until its features are computed)."""
    import dask

    counts = [s.n for s in inputs]
    idx = sample_indices(counts, acfg["sample"], acfg["seed"])
    raws = [s.raw(layout) for s in inputs]
    native = [s.raw(layout, dtype=None) for s in inputs]
    parts = dask.compute(*[r[i] if len(i) else r[:0] for r, i in zip(native, idx)])
    return raws, list(parts)


def order_max(p: np.ndarray, n1: int) -> tuple[float, float]:
    """Largest value of each order over the windows of ``p`` whose values are all finite (no copy)."""
    rows = np.isfinite(p).all(axis=1)[:, None]
    return tuple(float(np.max(v, where=rows, initial=-np.inf)) if v.shape[1] else -np.inf
                 for v in (p[:, :n1], p[:, n1:]))


def features_into(p: np.ndarray, offset: np.ndarray, out: np.ndarray, rows: int = 8192) -> int:
    """Write the log features of ``p``'s valid windows into the first rows of ``out``,
    a slab of ``rows`` windows at a time; returns how many windows had features."""
    n = 0
    for a in range(0, len(p), rows):
        x, valid = log_features(p[a:a + rows], offset)
        k = int(valid.sum())
        out[n:n + k] = x[valid]
        n += k
    return n


def no_window_reason(s: StationInput, drawn: int, floor: float) -> str:
    """Why station ``s`` gave no window with features among the ``drawn`` (one phrase for the summary)."""
    from ..inputs.windows import computable

    cov = np.asarray(s.ds["coverage"].values)
    full = computable(np.nan_to_num(cov, nan=0.0), s.min_coverage).all(axis=1).sum()
    if not full:
        return f"no usable window (none of its {s.n} windows has coefficients on every channel)"
    why = "values <= 0 with log_floor = 0" if floor == 0 else "NaN values"
    return f"no usable window among the {drawn} drawn ({why})"
