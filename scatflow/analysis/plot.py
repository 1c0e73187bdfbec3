"""Figures of ``scatflow analyze`` results (``scatflow plot STORE --analysis NAME``) and of
``scatflow analyze --explore``. Reads through :class:`scatflow.store.reader.StoreReader`; writes PNGs only."""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import StoreError
from ..plot import figure_base, import_matplotlib

#: At most this many points per rate curve; longer spans are averaged over consecutive windows.
MAX_POINTS = 3000
#: At most this many stations drawn in the rate figure (the first ones, sorted).
MAX_STATIONS = 8
DPI = 120


def _utc(value, what: str):
    if value is None:
        return None
    import pandas as pd

    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise StoreError(f"--{what}: cannot read {value!r} as a UTC time (e.g. 2015-12-04T06:00:00)") from None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return np.datetime64(t.to_datetime64(), "ns")




def explore_output(store, name: str) -> str:
    """``<store without .zarr>.<name>.explore.png`` beside the store (in the working directory
    for a store on an object store)."""
    return f"{figure_base(store)}.{name}.explore.png"


def _check_dir(out: str) -> None:
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise StoreError(f"cannot write {out}: directory {out_dir} does not exist")


def occurrence_rate(labels: np.ndarray, n_clusters: int, smooth: int) -> np.ndarray:
    """Fraction of the labelled windows in each cluster over a centred boxcar of ``smooth`` windows
    (the one-hot labels smoothed, as in the clustering tutorial).

    Windows without a label (gaps, blocks not complete) count in no fraction: a rate is over the
    labelled windows of its boxcar, and NaN at an unlabelled window, so drawn lines break there
    instead of falling to 0.

    Parameters
    ----------
    labels : numpy.ndarray of int
        Cluster per window, -1 = no label.
    n_clusters : int
    smooth : int
        Boxcar length, windows.

    Returns
    -------
    numpy.ndarray
        (window, cluster), fractions 0..1 summing to 1 per labelled window; NaN rows at unlabelled ones.
    """
    one_hot = (labels[:, None] == np.arange(n_clusters)[None, :]).astype(np.float64)
    kernel = np.ones(max(int(smooth), 1))
    counts = np.convolve((labels >= 0).astype(np.float64), kernel, mode="same")
    rate = np.column_stack([np.convolve(one_hot[:, c], kernel, mode="same") for c in range(n_clusters)])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = rate / counts[:, None]
    rate[labels < 0] = np.nan
    return rate.reshape(len(labels), n_clusters)


def plot_analysis(store, name: str, output=None, station=None, start=None, end=None) -> list[str]:
    """Write two PNGs of analysis ``name``: cluster occurrence rates against time per station with
    the centroid heatmap, and each component's unmixing weights mapped back to (channel, f1) and
    (channel, f1, f2).

    Parameters
    ----------
    store : str or PathLike
        The scatflow store.
    name : str
        The analysis.
    output : str, optional
        Path of the first PNG (default ``<store>.<name>.png`` beside the store); the weights go to
        the same path with ``.weights.png``.
    station : str, optional
        Draw this station only (default: the first stations); its own model when fitted per station.
    start, end : str, optional
        UTC times bounding the windows shown.

    Returns
    -------
    list of str
        The PNG paths.
    """
    from ..store.reader import StoreReader

    reader = StoreReader(store)
    attrs = reader.analysis_attrs(name)
    if attrs is None:
        reader.analysis(name)  # raises, naming the analyses there are
    stations = reader.analysis_stations(name)
    if station is not None:
        if station not in stations:
            raise StoreError(f"analysis {name!r} has no station {station!r}; it has: {', '.join(stations) or 'none'}")
        stations = [station]
    if not stations:
        raise StoreError(f"{reader.path}: analysis {name!r} has no labelled station")
    joint = bool(attrs.get("joint", True))
    model = reader.analysis_model(name, None if joint else stations[0])
    out = os.fspath(output) if output else f"{figure_base(reader.path)}.{name}.png"
    _check_dir(out)
    weights_out = (out[:-4] if out.endswith(".png") else out) + ".weights.png"
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    Figure, Canvas = import_matplotlib()
    from matplotlib import dates as mdates

    shown = stations[:MAX_STATIONS]
    centroids = np.asarray(model["centroids"].values)
    k = len(centroids)
    fig = Figure(figsize=(11, 2.0 * len(shown) + 3.5), dpi=DPI, layout="constrained")
    Canvas(fig)
    axes = fig.subplots(len(shown) + 1, 1, gridspec_kw={"height_ratios": [2] * len(shown) + [3]})
    for ax, key in zip(axes[:-1], shown):
        res = reader.analysis(name, key)
        t = res["time"].values
        keep = np.ones(len(t), dtype=bool)
        if t0 is not None:
            keep &= t >= t0
        if t1 is not None:
            keep &= t < t1
        labels = np.asarray(res["cluster"].values)[keep]
        t = t[keep]
        if not len(t):
            raise StoreError(f"analysis {name!r}, {key}: no window in the time range asked")
        smooth = max(20, len(t) // 200)
        rate = occurrence_rate(labels, k, smooth)
        step = max(1, len(t) // MAX_POINTS)
        m = len(t) // step * step or len(t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups (long gaps) stay NaN
            tt, rr = t[:m:step], np.nanmean(rate[:m].reshape(-1, min(step, m), k), axis=1) if m >= step else rate
        for c in range(k):
            ax.plot(tt, rr[:, c], lw=1.0, color=f"C{c}", label=f"cluster {c}")
        ax.set_ylim(0, 1)
        ax.set_ylabel("occurrence rate")
        locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
        ax.set_xlim(t[0], t[-1])
        ax.set_xlabel("time (UTC)", fontsize=8)
        ax.set_title(f"{key}: fraction of labelled windows in each cluster (boxcar of {smooth} windows); "
                     f"{int((labels < 0).sum())} without label (gaps in the lines)", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=min(k, 8))
    ax = axes[-1]
    vmax = float(np.abs(centroids).max()) or 1.0
    im = ax.imshow(centroids.T, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", origin="lower")
    ax.set_xlabel("cluster")
    ax.set_ylabel("component")
    ax.set_xticks(range(k))
    ax.set_yticks(range(centroids.shape[1]))
    ax.set_title("cluster centroids in component space" + ("" if joint else f" ({stations[0]})"), fontsize=9)
    fig.colorbar(im, ax=ax, label="centroid coordinate")
    fig.savefig(out, format="png")

    _weights_figure(model, Figure, Canvas, name).savefig(weights_out, format="png")
    return [out, weights_out]


def _weights_figure(model, Figure, Canvas, name: str):
    unmix = np.asarray(model["unmixing"].values)
    order = np.asarray(model["feature_order"].values)
    chan = np.array([str(c) for c in model["feature_channel"].values])
    f1 = np.asarray(model["feature_f1"].values, dtype=float)
    f2 = np.asarray(model["feature_f2"].values, dtype=float)
    codes = list(dict.fromkeys(chan))
    f1u = f1[order == 1][: (order == 1).sum() // len(codes)]
    has2 = (order == 2).any()
    f2u = f2[order == 2][: (order == 2).sum() // (len(codes) * len(f1u))] if has2 else np.zeros(0)
    k = unmix.shape[0]
    fig = Figure(figsize=(11, 1.9 * k + 0.8), dpi=DPI, layout="constrained")
    Canvas(fig)
    axes = np.atleast_2d(fig.subplots(k, 2 if has2 else 1, squeeze=False))
    for i in range(k):
        w = unmix[i]
        vmax = float(np.abs(w).max()) or 1.0
        w1 = w[order == 1].reshape(len(codes), len(f1u))
        ax = axes[i, 0]
        im = ax.imshow(w1, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_yticks(range(len(codes)), codes)
        ticks = np.linspace(0, len(f1u) - 1, min(6, len(f1u))).astype(int)
        ax.set_xticks(ticks, [f"{f1u[j]:.2g}" for j in ticks])
        ax.set_title(f"component {i}: first order (channel, f1 Hz)", fontsize=8)
        if has2:
            # (channel, f1, f2) as rows f1, and for each channel a block of f2 columns.
            w2 = w[order == 2].reshape(len(codes), len(f1u), len(f2u))
            img = np.concatenate([np.column_stack([w2[c], np.full(len(f1u), np.nan)]) for c in range(len(codes))],
                                 axis=1)[:, :-1]
            ax = axes[i, 1]
            im = ax.imshow(img, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
            ax.set_yticks(ticks, [f"{f1u[j]:.2g}" for j in ticks])
            ax.set_ylabel("f1 (Hz)", fontsize=8)
            step = len(f2u) + 1
            ax.set_xticks([c * step + (len(f2u) - 1) / 2 for c in range(len(codes))],
                          [f"{c}: f2 {f2u[0]:.2g}..{f2u[-1]:.2g} Hz" for c in codes], fontsize=7)
            ax.set_title(f"component {i}: second order (channel, f1, f2)", fontsize=8)
        fig.colorbar(im, ax=list(axes[i]), label="weight", shrink=0.9)
    fig.suptitle(f"analysis {name!r}: unmixing weights of each component (its row of 'unmixing')", fontsize=10)
    return fig


def plot_explore(results: dict, output) -> str:
    """Write the explained variance of the reconstruction against the number of components.

    Parameters
    ----------
    results : dict
        Per model (None for a joint one, else the station) ``{components: explained variance (0..1)}``.
    output : str or PathLike
        PNG path.

    Returns
    -------
    str
        The PNG path.
    """
    out = os.fspath(output)
    _check_dir(out)
    Figure, Canvas = import_matplotlib()
    fig = Figure(figsize=(6, 4), dpi=DPI, layout="constrained")
    Canvas(fig)
    ax = fig.subplots()
    for key, scores in results.items():
        counts = sorted(scores)
        ax.plot(counts, [100 * scores[c] for c in counts], marker="o", label=key or "joint model")
    ax.set_xticks(sorted({c for scores in results.values() for c in scores}))  # counts are whole numbers
    ax.set_xlabel("number of ICA components")
    ax.set_ylabel("explained variance of the reconstruction (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out, format="png")
    return out


__all__ = ["plot_analysis", "plot_explore", "explore_output", "occurrence_rate"]
