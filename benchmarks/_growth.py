"""Growth laws over store sizes: ``a + b x blocks + c x stations`` fitted by non-negative least squares."""

from __future__ import annotations

import numpy as np


def fit(blocks, stations, values) -> tuple[float, float, float]:
    """Coefficients ``(a, b, c)`` >= 0 of ``values ~ a + b * blocks + c * stations``.

    Non-negative, because no cost of a store falls as it grows: an unconstrained
    fit of four noisy points often gives a negative term that the extrapolation
    to millions of blocks then turns into a negative cost. Each column is scaled
    to unit norm first, so the three terms weigh alike.
    """
    from scipy.optimize import nnls

    x = np.column_stack([np.ones(len(values)), np.asarray(blocks, float), np.asarray(stations, float)])
    y = np.asarray(values, float)
    norm = np.linalg.norm(x, axis=0)
    norm[norm == 0] = 1.0
    coef, _ = nnls(x / norm, y)
    coef = coef / norm
    # Terms worth less than a millionth of the largest value at the measured sizes are rounding.
    coef[np.abs(coef * np.abs(x).max(axis=0)) < 1e-6 * max(np.abs(y).max(), 1e-300)] = 0.0
    return tuple(float(c) for c in coef)


def predict(coef, blocks: float, stations: float) -> float:
    a, b, c = coef
    return a + b * blocks + c * stations


def law(coef, unit: str = "") -> str:
    """The fitted law in words, e.g. ``0.12 + 3.4e-05 x blocks + 0.002 x stations s``."""
    a, b, c = coef
    parts = [f"{a:.3g}"]
    if b:
        parts.append(f"{b:.3g} x blocks")
    if c:
        parts.append(f"{c:.3g} x stations")
    return " + ".join(parts) + (f" {unit}" if unit else "")


def human(value: float, unit: str) -> str:
    """A large extrapolated value in readable units (seconds become minutes, hours, days)."""
    if unit == "s":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
            if value >= size:
                return f"{value / size:.3g} {name} ({value:.3g} s)"
        return f"{value:.3g} s"
    return f"{value:.3g} {unit}".strip()
