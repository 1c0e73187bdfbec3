"""Reading a finished (or growing) store: the one reading API of ``info``, ``plot`` and users.

Every open bypasses consolidated metadata (``use_consolidated=False``), which
may be stale or absent while a run is writing. Nothing here writes.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import xarray as xr
import zarr

from ..errors import StoreError
from ..inputs.grid import Blocks
from .access import zarr_store
from .encoding import ANALYSIS_GROUP, REQUIRED
from .ledger import Ledger
from .writer import group_names, open_root, read_ledger
from .upgrade import check_format


def decode_times(arr: zarr.Array, sel: slice = slice(None)) -> np.ndarray:
    """Window start times of a ``time`` array (windows ``sel``) as ``datetime64[ns]``, whatever its encoding."""
    raw = np.asarray(arr[sel])
    units = arr.attrs.get("units", "")
    if raw.dtype.kind == "M":
        return raw.astype("datetime64[ns]")
    if units.strip() == "nanoseconds since 1970-01-01":
        return raw.astype("int64").astype("datetime64[ns]")
    from xarray.coding.times import decode_cf_datetime

    return np.asarray(decode_cf_datetime(raw, units, arr.attrs.get("calendar", "proleptic_gregorian")),
                      dtype="datetime64[ns]")


class StationGroup:
    """One station group of a store, read lazily.

    Attributes
    ----------
    name : str
        ``NET.STA.LOC``.
    group : zarr.Group
    attrs : dict
        The group's attributes (design, windowing, grid origin).
    """

    def __init__(self, name: str, group: zarr.Group):
        self.name, self.group, self.attrs = name, group, dict(group.attrs)

    @property
    def n(self) -> int:
        """Windows in the group."""
        return int(self.group["time"].shape[0])

    @functools.cached_property
    def channels(self) -> list[str]:
        """SEED ids ``NET.STA.LOC.CHA``."""
        return [str(c) for c in self.group["channel"][:]]

    @functools.cached_property
    def times(self) -> np.ndarray:
        """Window starts, ``datetime64[ns]``."""
        return decode_times(self.group["time"])

    @functools.cached_property
    def ledger(self) -> Ledger:
        """The group's ledger (:mod:`scatflow.store.ledger`)."""
        return read_ledger(self.group)

    @property
    def blocks(self) -> Blocks:
        return self.ledger.blocks

    def complete_blocks(self) -> np.ndarray:
        """Per block, whether the ledger says it holds results: marked done with all its windows.

        Blocks pending, failed, without data, or grown since they ran do not (their coefficients are
        shown and analysed as NaN); a block whose inputs changed since still holds the results of
        the inputs it read, until the next run replaces them.
        """
        return self.ledger.complete_mask.copy()

    def complete_windows(self) -> np.ndarray:
        """Per window, whether its block holds results (:meth:`complete_blocks`)."""
        return np.repeat(self.complete_blocks(), self.blocks.chunk)[: self.n]

    @property
    def window(self) -> np.timedelta64:
        """Window duration (0 when the group does not say)."""
        return np.timedelta64(int(round((self.attrs.get("window_s") or 0) * 1e9)), "ns")

    def span(self, k0: int, k1: int) -> tuple[np.datetime64, np.datetime64]:
        """Start of window ``k0`` and end of window ``k1 - 1``."""
        return self.times[k0], self.times[k1 - 1] + self.window

    def recorded(self) -> dict[str, tuple[int, int] | None]:
        """Per channel, the first and last window (indices) with coverage > 0 (None: never).

        When each channel starts and ends in the group: a channel added to a station, or one
        that stopped, holds coverage 0 (or nothing, in blocks never written) outside its span.
        Found from the ledger (a block's summary says whether a channel has data in it; blocks
        without data are the ledger's "no data" ones), reading ``coverage`` only of the blocks at
        each end, so the cost does not grow with the years stored.
        """
        led, cov_arr = self.ledger, self.group["coverage"]
        candidates = [b for b in range(led.blocks.count) if led.summary[b] or led.note(b, "no_data")]
        cache: dict[int, np.ndarray] = {}

        def coverage(b: int) -> np.ndarray:
            if b not in cache:
                k0, k1 = led.blocks.range(b)
                cache[b] = np.asarray(cov_arr[k0:k1]) > 0  # NaN (never written) is not data
            return cache[b]

        def find(order, i: int, ch: str):
            for b in order:
                summary = led.summary[b]
                if summary and not summary.get("coverage", {}).get(ch, 0.0) > 0:
                    continue
                seen = coverage(b)[:, i]
                if seen.any():
                    k0 = led.blocks.range(b)[0]
                    return k0 + (int(seen.argmax()) if order is candidates else len(seen) - 1 - int(seen[::-1].argmax()))
            return None

        out = {}
        for i, ch in enumerate(self.channels):
            first = find(candidates, i, ch)
            out[ch] = None if first is None else (first, find(candidates[::-1], i, ch))
        return out

    def frequencies(self) -> dict[str, np.ndarray]:
        """Centre frequencies (Hz) per frequency dimension ``f1``, ``f2``..."""
        dims = sorted(k for k in self.group.array_keys() if k.startswith("f") and k[1:].isdigit())
        return {dim: np.asarray(self.group[dim][:], dtype=float) for dim in dims}


class StoreReader:
    """A scatflow store opened for reading.

    Parameters
    ----------
    path : str or PathLike
        The store directory.

    Raises
    ------
    StoreError
        One line, if ``path`` is not a scatflow store.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.root, self.meta = open_root(self.path)
        check_format(self.path, self.root.attrs)

    @property
    def stations(self) -> list[str]:
        """Station group names, sorted."""
        return group_names(self.root)

    def missing_arrays(self, name: str) -> list[str]:
        """Arrays a scatflow station group needs that group ``name`` lacks."""
        g = self.root[name]
        return [a for a in REQUIRED if a not in g]

    def station(self, name: str) -> StationGroup:
        """Station group ``name``.

        Raises
        ------
        StoreError
            No such group (listing those there are), or not a scatflow station group.
        """
        names = self.stations
        if name not in names:
            raise StoreError(f"{self.path}: no station group {name!r}; the store has: {', '.join(names) or 'none'}")
        absent = self.missing_arrays(name)
        if absent:
            raise StoreError(f"{self.path}: group {name!r} is not a scatflow station group "
                             f"(missing {', '.join(absent)})")
        return StationGroup(name, self.root[name])

    def dataset(self, name: str, ledger: bool = False) -> xr.Dataset:
        """Station group ``name`` as a lazy xarray Dataset.

        With ``ledger``, the coefficients (``order_*``) of windows whose block holds no results
        (:meth:`StationGroup.complete_blocks`: pending, failed, without data) are NaN, whatever a
        store written by an older scatflow left there.
        """
        group = self.station(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ds = xr.open_zarr(zarr_store(self.path), group=name, consolidated=False)
        if ledger:
            ok = group.complete_windows()
            if not ok.all():
                mask = xr.DataArray(ok, dims="time")
                ds = ds.assign({v: ds[v].where(mask) for v in ds.data_vars if v.startswith("order_")})
        return ds

    # -- analysis results (scatflow analyze) -------------------------------------------------
    def analysis_names(self) -> list[str]:
        """Names of the analyses in the store (groups ``analysis/<name>``), sorted."""
        if ANALYSIS_GROUP not in self.root:
            return []
        return sorted(name for name, _ in self.root[ANALYSIS_GROUP].groups())

    def analysis_attrs(self, name: str) -> dict | None:
        """Attributes of ``analysis/<name>`` (resolved config, fit records); None when absent."""
        if name not in self.analysis_names():
            return None
        return dict(self.root[f"{ANALYSIS_GROUP}/{name}"].attrs)

    def analysis_stations(self, name: str) -> list[str]:
        """Stations with results in ``analysis/<name>``, sorted."""
        if name not in self.analysis_names():
            return []
        g = self.root[f"{ANALYSIS_GROUP}/{name}"]
        return sorted(k for k, sub in g.groups() if "time" in sub)

    def analysis(self, name: str, station: str | None = None) -> xr.Dataset:
        """Group ``analysis/<name>`` (the joint model) or ``analysis/<name>/<station>`` (a
        station's components, clusters and distances, and its model when fitted per station),
        as a lazy Dataset.

        Raises
        ------
        StoreError
            No such analysis or station, listing those there are.
        """
        names = self.analysis_names()
        if name not in names:
            raise StoreError(f"{self.path}: no analysis {name!r}; the store has: {', '.join(names) or 'none'}")
        group = f"{ANALYSIS_GROUP}/{name}"
        if station is not None:
            stations = self.analysis_stations(name)
            if station not in stations:
                raise StoreError(f"{self.path}: analysis {name!r} has no station {station!r}; "
                                 f"it has: {', '.join(stations) or 'none'}")
            group += f"/{station}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return xr.open_zarr(zarr_store(self.path), group=group, consolidated=False)

    def analysis_counts(self, name: str, station: str) -> tuple[int, dict[int, int]]:
        """Windows of station ``station`` in analysis ``name`` and its windows per label (-1: no
        features; labels without windows left out), from the per-block ``label_counts``: read
        without reading a label.

        Raises
        ------
        StoreError
            No such analysis or station, or an analysis written before counts were recorded
            (``scatflow analyze`` records them).
        """
        g = self.analysis_group(name, station)
        if "label_counts" not in g:
            raise StoreError(f"{self.path}: analysis {name!r} of {station!r} has no label counts "
                             "(written by an older scatflow); run scatflow analyze to record them")
        windows = int(g["cluster"].shape[0])
        arr = g["label_counts"]
        totals = np.asarray(arr[: -(-windows // g["cluster"].chunks[0])], dtype=np.int64).sum(axis=0)
        return windows, {j - 1: int(c) for j, c in enumerate(totals.tolist()) if c}

    def analysis_group(self, name: str, station: str) -> zarr.Group:
        """The Zarr group ``analysis/<name>/<station>`` (StoreError naming those there are, if absent)."""
        group = f"{ANALYSIS_GROUP}/{name}/{station}"
        try:
            return zarr.open_group(zarr_store(self.path), path=group, mode="r", use_consolidated=False, zarr_format=3)
        except FileNotFoundError:
            self.analysis(name, station)  # raises, naming the analyses or stations there are
            raise

    def analysis_model(self, name: str, station: str | None = None) -> xr.Dataset:
        """The model arrays of analysis ``name``: the joint model (``analysis/<name>``), or station
        ``station``'s own model (``analysis/<name>/<station>/model``) when fitted per station."""
        self.analysis(name)
        group = f"{ANALYSIS_GROUP}/{name}" + (f"/{station}/model" if station is not None else "")
        if group not in self.root or "unmixing" not in self.root[group]:
            raise StoreError(f"{self.path}: analysis {name!r} has no model"
                             + (f" for station {station!r}" if station else " of its own (one per station?)"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return xr.open_zarr(zarr_store(self.path), group=group, consolidated=False)


def missing_blocks(path: str | os.PathLike, group: str) -> list[int]:
    """Blocks of station ``group`` marked done in the ledger whose data chunks are missing.

    Parameters
    ----------
    path : str or PathLike
        The store directory.
    group : str
        Station group ``NET.STA.LOC``.

    Returns
    -------
    list of int
        Block indices, ascending; the next run computes them again.

    Raises
    ------
    StoreError
        If ``path`` is not a scatflow store or has no such station group.
    """
    from .ledger import MISSING

    # A full check (as --recheck-all): reads each done block's coverage, so not for nightly use.
    st = StoreReader(path).station(group)
    return read_ledger(st.group, recheck=lambda b: True, inputs_changed=lambda b, files: False,
                       check_data=True).where(MISSING)


def combine_stations(path: str | os.PathLike) -> xr.Dataset:
    """All station groups as one lazy Dataset with a ``station`` dimension.

    Channels are matched by their component (the last letter of the code:
    ``Z``, ``N``, ``E``, ``1``...), so a 20 Hz ``BHZ`` resampled to 50 Hz
    lines up with the others' ``HHZ``; the full SEED ids stay as the
    ``seed_id`` coordinate (station, channel). Times are joined (NaN where a station has no window),
    so stations on one grid (same origin and hop) line up window by window.

    Raises
    ------
    StoreError
        A station with two channels of one component (``HHZ`` and ``LHZ``), or stations whose frequency axes differ (naming them and the axis): they
        were computed at different sampling rates; resample them to one rate
        with ``[preprocess] sampling_rate`` to combine them.
    """
    reader = StoreReader(path)
    names = reader.stations
    if not names:
        raise StoreError(f"{reader.path}: no station group to combine")
    parts = [reader.dataset(n) for n in names]
    ref = parts[0]
    dims = [d for d in ref.dims if d.startswith("f") and d[1:].isdigit()]
    for name, ds in zip(names[1:], parts[1:]):
        for dim in dims:
            a, b = ref[dim].values, ds[dim].values if dim in ds.dims else np.array([])
            if a.shape != b.shape or not np.array_equal(a, b):
                raise StoreError(
                    f"{reader.path}: stations {names[0]} and {name} have different {dim} axes ({len(a)} centres "
                    f"from {a.max():.4g} Hz vs {len(b)} from {b.max() if len(b) else float('nan'):.4g} Hz): "
                    "resample every station to one rate with [preprocess] sampling_rate to combine them")
    keep = []
    for ds in parts:
        ds = ds.drop_dims([d for d in ds.dims if d not in ("time", "channel", *dims)])
        ids = [str(c) for c in ds["channel"].values]
        comps = [c[-1] for c in ids]
        if len(set(comps)) < len(comps):
            raise StoreError(f"{reader.path}: station {ds.attrs.get('station', ids[0].rsplit('.', 1)[0])} has several "
                             f"channels of one component ({', '.join(ids)}): select one band per station to combine")
        ds = ds.assign_coords(seed_id=("channel", np.array(ids, dtype=object)))
        keep.append(ds.assign_coords(channel=np.array(comps, dtype=object)))
    import pandas as pd

    return xr.concat(keep, dim=pd.Index(names, name="station"), join="outer", coords="different",
                     compat="equals", combine_attrs="drop_conflicts")
