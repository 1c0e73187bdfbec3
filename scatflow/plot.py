"""``scatflow plot``: a PNG of one channel's first- and second-order coefficients against time.

Needs matplotlib (``pip install scatflow[plot]``), imported only when a figure is
drawn. The figure is drawn on an Agg canvas without pyplot, so it neither needs
a display nor changes the backend of an interactive session.

Memory stays bounded: the channel (and, for order 2, the one f1) is selected
lazily before anything is read, and spans longer than ``MAX_COLUMNS`` windows are
averaged over consecutive windows (still lazily) before loading.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import StoreError
from .location import is_url

#: At most this many time columns are drawn; longer spans are averaged over consecutive windows.
MAX_COLUMNS = 3000
FIGSIZE = (11.0, 7.5)  # inches
DPI = 120


def import_matplotlib():
    """``(Figure, FigureCanvasAgg)`` of matplotlib, or an ImportError saying how to install it."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("scatflow plot needs matplotlib: pip install scatflow[plot]") from exc
    return Figure, FigureCanvasAgg


def figure_base(store) -> str:
    """Where a store's figures go by default, without extension: the store's path without
    ``.zarr`` (its last name, in the working directory, for a store on an object store)."""
    base = os.path.normpath(os.fspath(store) if not is_url(store) else str(store).rstrip("/").rsplit("/", 1)[-1])
    return base[: -len(".zarr")] if base.endswith(".zarr") else base


def default_output(store, station: str) -> str:
    """``<store without .zarr>.<station>.png`` beside the store (:func:`figure_base`)."""
    return f"{figure_base(store)}.{station}.png"


def _utc(value: str | None, what: str):
    if value is None:
        return None
    import pandas as pd

    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"--{what}: cannot read {value!r} as a UTC time (e.g. 2015-12-04T06:00:00)") from exc
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return np.datetime64(t.to_datetime64(), "ns")


def _coarsen(da, k: int):
    """Mean over ``k`` consecutive windows (lazy; NaN-only bins stay NaN)."""
    if k <= 1:
        return da
    n = da.sizes["time"]
    return da.assign_coords(time=np.arange(n)).coarsen(time=k, boundary="pad").mean()


def _edges_log(f: np.ndarray) -> np.ndarray:
    """Cell edges for ascending, log-spaced centres ``f``: geometric midpoints."""
    if f.size == 1:
        return np.array([f[0] / 1.2, f[0] * 1.2])
    mid = np.sqrt(f[1:] * f[:-1])
    return np.concatenate([[f[0] ** 2 / mid[0]], mid, [f[-1] ** 2 / mid[-1]]])


def _norm(values: np.ndarray):
    from matplotlib.colors import LogNorm

    v = values[np.isfinite(values) & (values > 0)]
    if v.size == 0:
        return LogNorm(vmin=1.0, vmax=10.0), False
    lo, hi = np.percentile(v, [1.0, 99.9])
    if not hi > lo:
        lo, hi = v.min(), v.max()
    if not hi > lo:
        lo, hi = lo / 2, lo * 2
    return LogNorm(vmin=lo, vmax=hi), True


def _panel(fig, ax, x_edges, f, values, norm_ok, norm, cmap, label: str, ylabel: str, title: str):
    """pcolormesh of ``values`` (time, freq) with frequencies ascending on a log axis."""
    from matplotlib import ticker

    order = np.argsort(f)
    f = f[order]
    z = np.ma.masked_invalid(values[:, order].T)
    z = np.ma.masked_less_equal(z, 0)
    mesh = ax.pcolormesh(x_edges, _edges_log(f), z, norm=norm, cmap=cmap, shading="flat", rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(_edges_log(f)[0], _edges_log(f)[-1])
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11, loc="left")
    cbar = fig.colorbar(mesh, ax=ax, pad=0.015, fraction=0.04)
    cbar.set_label(label)
    if not norm_ok:
        ax.text(0.5, 0.5, "no positive coefficients in this range (all zero or NaN)", transform=ax.transAxes,
                ha="center", va="center", color="0.3")
    return mesh


def plot_store(store, output=None, station=None, channel=None, f1=None, start=None, end=None) -> str:
    """Write a PNG: first-order scalogram and second-order coefficients of one channel.

    Parameters
    ----------
    store : str or PathLike
        The scatflow Zarr store.
    output : str, optional
        PNG path; default ``<store without .zarr>.<station>.png`` beside the store.
    station : str, optional
        Station group ``NET.STA.LOC``; default the first.
    channel : str, optional
        Full SEED id ``NET.STA.LOC.CHA``; default the group's first channel.
    f1 : float, optional
        First-order frequency (Hz) for the second-order panel; the nearest band is used.
        Default: a band in the middle of the first-order bank.
    start, end : str, optional
        UTC times bounding the window starts shown.

    Returns
    -------
    str
        The PNG path.

    Raises
    ------
    StoreError (a ValueError)
        Not a scatflow store, unknown station or channel (naming it and listing those
        available), unreadable or empty time range.
    ImportError
        matplotlib is not installed.
    """
    from .store.reader import StoreReader

    reader = StoreReader(store)
    station, ds = _station(reader, station)
    channel = _channel(ds, channel, reader.path, station)
    out = os.fspath(output) if output is not None else default_output(reader.path, station)
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise StoreError(f"cannot write {out}: directory {out_dir} does not exist")
    sel = _time_range(ds.sel(channel=channel), start, end, f"{reader.path} group {station!r}")
    f1_all = np.asarray(ds["f1"].values, dtype=float)
    if f1 is None:
        f1_sel = float(np.sort(f1_all)[len(f1_all) // 2])
    else:
        lo, hi = f1_all.min(), f1_all.max()
        # Half a band's worth of slack at either end; beyond it the nearest band is not what was asked.
        if not lo / 2**0.5 <= f1 <= hi * 2**0.5:
            raise StoreError(f"--f1 {f1:g} Hz is outside the first-order bank of {reader.path} group "
                             f"{station!r} ({lo:.3g} to {hi:.3g} Hz)")
        f1_sel = float(f1_all[np.argmin(np.abs(np.log(f1_all) - np.log(f1)))])
    fig = _figure(sel, station, channel, f1_sel)
    fig.savefig(out, format="png")
    return out


def _station(reader, station: str | None):
    """The station group to draw (default the first) and its lazy dataset."""
    groups = reader.stations
    if not groups:
        raise StoreError(f"{reader.path}: the store has no station groups yet")
    if station is None:
        station = groups[0]
    elif station not in groups:
        raise StoreError(f"unknown station {station!r} in {reader.path}; available: {', '.join(groups)}")
    ds = reader.dataset(station, ledger=True)  # blocks not complete (failed, pending): NaN, as analyze sees them
    if "order_1" not in ds or "order_2" not in ds:
        raise StoreError(f"{reader.path}: group {station!r} has no order_1/order_2 coefficients")
    return station, ds


def _channel(ds, channel: str | None, path: str, station: str) -> str:
    channels = [str(c) for c in ds["channel"].values]
    if channel is None:
        return channels[0]
    if channel not in channels:
        raise StoreError(f"unknown channel {channel!r} in {path} group {station!r}; available: {', '.join(channels)}")
    return channel


def _time_range(sel, start: str | None, end: str | None, where: str):
    """``sel`` restricted to window starts in ``[start, end]``; a StoreError when none is."""
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    times_all = sel["time"].values
    if t0 is not None or t1 is not None:
        sel = sel.sel(time=slice(t0, t1))
    if sel.sizes["time"] == 0:
        span = (f"{np.datetime_as_string(times_all[0], 's')}Z .. {np.datetime_as_string(times_all[-1], 's')}Z"
                if times_all.size else "no windows")
        raise StoreError(f"no windows between {start or 'the start'} and {end or 'the end'} in {where} "
                         f"(window starts span {span})")
    return sel


def _columns(sel, f1_sel: float):
    """Time-column edges (matplotlib date numbers) and the values of both panels.

    Column j covers windows ``j*k .. j*k+k-1`` (``k`` = 1 unless the span has more
    than ``MAX_COLUMNS`` windows), drawn centred on their centres, hop-wide per window.
    """
    from matplotlib import dates as mdates

    n = sel.sizes["time"]
    window_s = float(sel.attrs.get("window_s") or 0.0)
    hop_s = float(sel.attrs.get("hop_s") or 0.0)
    times = sel["time"].values
    if not hop_s:
        hop_s = float(np.median(np.diff(times)) / np.timedelta64(1, "s")) if n > 1 else window_s or 1.0
    k = -(-n // MAX_COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v1 = np.asarray(_coarsen(sel["order_1"], k).values, dtype=np.float64)  # (columns, f1)
        v2 = np.asarray(_coarsen(sel["order_2"].sel(f1=f1_sel), k).values, dtype=np.float64)  # (columns, f2)
    hop = np.timedelta64(int(round(hop_s * 1e9)), "ns")
    left = times[::k] + np.timedelta64(int(round(window_s * 1e9 / 2)), "ns") - hop / 2
    edges = np.append(left, left[-1] + k * hop)
    return mdates.date2num(edges.astype("datetime64[us]")), v1, v2, k, hop_s


def _figure(sel, station: str, channel: str, f1_sel: float):
    """The two-panel figure of one channel (``sel``: its windows in the time range)."""
    Figure, FigureCanvasAgg = import_matplotlib()
    from matplotlib import dates as mdates

    x_edges, v1, v2, k, hop_s = _columns(sel, f1_sel)
    window_s = float(sel.attrs.get("window_s") or 0.0)
    reduce = sel.attrs.get("reduce", "pooled")
    units = sel["order_1"].attrs.get("units", "counts")  # set by preprocessing; raw samples are counts
    cmap = _cmap()
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    avg = f", mean of {k} windows per column" if k > 1 else ""
    norm1, ok1 = _norm(v1)
    _panel(fig, ax1, x_edges, np.asarray(sel["f1"].values, dtype=float), v1, ok1, norm1, cmap,
           f"{reduce} |U1| ({units})", "frequency f1 (Hz)", f"{channel}: first-order scattering coefficients{avg}")
    ax1.axhline(f1_sel, color="w", lw=0.8, ls="--", alpha=0.8)
    norm2, ok2 = _norm(v2)
    _panel(fig, ax2, x_edges, np.asarray(sel["f2"].values, dtype=float), v2, ok2, norm2, cmap,
           f"{reduce} |U2| ({units})", "frequency f2 (Hz)",
           f"{channel}: second-order scattering coefficients at f1 = {f1_sel:.3g} Hz{avg}")
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=True))
    ax2.set_xlim(x_edges[0], x_edges[-1])
    ax2.set_xlabel("Time (UTC)")
    times = sel["time"].values
    span = (f"{np.datetime_as_string(times[0], 'm')} .. "
            f"{np.datetime_as_string(times[-1] + np.timedelta64(int(round(window_s * 1e9)), 'ns'), 'm')} UTC")
    fig.suptitle(f"Station {station}   {span}   ({window_s:g} s windows, {hop_s:g} s hop, {reduce} pooling)",
                 fontsize=12)
    return fig


def _cmap():
    from matplotlib import colormaps

    # NaN (and non-positive) cells are left blank.
    return colormaps["viridis"].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))


__all__ = ["plot_store", "default_output"]
