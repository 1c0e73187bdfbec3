"""StationXML for preprocessing: the inventory files, and what a channel's epochs say.

Owns the inventory globs and their loading (:func:`load_inventory`, cached per
process while the files are unchanged; an unreadable file or an empty glob is
one InputError line), a channel's coordinates at a time (:func:`coordinates`)
and the units of a station's processed samples (:func:`units`). The epochs of
a channel and the responses by epoch are :mod:`scatflow.inputs.epochs`.
"""

from __future__ import annotations

import functools
import glob
import io
import os
import typing as T

from .. import location
from ..errors import InputError
from .epochs import epochs
from .preprocess import Preprocess


def inventory_files(patterns: T.Iterable[str]) -> list[str]:
    """The StationXML files of ``patterns`` (sorted); an InputError for a glob matching nothing."""
    out = []
    for pattern in patterns:
        if location.is_url(pattern):
            hits = location.glob(pattern)
        else:
            hits = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not hits:
            raise InputError(f"preprocess.inventory: no file matches {pattern}")
        out += hits
    return sorted(dict.fromkeys(out))


def load_inventory(patterns: T.Iterable[str]):
    """The merged ObsPy Inventory of the files (cached per process while they are unchanged)."""
    files = inventory_files(patterns)
    key = tuple(_identity(p) for p in files)
    return _load(key)


def _identity(path) -> tuple:
    """(path, mtime or ETag, size): a file's identity for the cache (one ``stat`` or ``HEAD``)."""
    if location.is_url(path):
        info = location.info(path)
        return path, info.get("ETag"), info["size"]
    st = os.stat(path)
    return path, st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _load(key: tuple):
    from obspy import Inventory, read_inventory

    inv = Inventory(networks=[], source="scatflow")
    for path, _, _ in key:
        try:
            inv += read_inventory(io.BytesIO(location.read_bytes(path)) if location.is_url(path) else path)
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad XML
            raise InputError(f"{path}: cannot read StationXML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return inv


def _in_epoch(obj, t_ns: int) -> bool:
    start = obj.start_date.ns if obj.start_date is not None else -(2 ** 62)
    end = obj.end_date.ns if obj.end_date is not None else 2 ** 62
    return start <= t_ns <= end


def coordinates(inv, seed_id: str, t_ns: int) -> dict:
    """``latitude``, ``longitude`` (degrees), ``elevation``, ``depth`` (m) of a channel at ``t_ns``
    (the epoch in force then, else its latest epoch; NaN when the inventory lacks the channel)."""
    found = epochs(inv, seed_id)
    now = [c for s, c in found if _in_epoch(c, t_ns)]
    chan = now[0] if now else (max(found, key=lambda e: e[1].start_date or 0)[1] if found else None)
    if chan is None:
        return dict.fromkeys(("latitude", "longitude", "elevation", "depth"), float("nan"))
    return {"latitude": float(chan.latitude), "longitude": float(chan.longitude),
            "elevation": float(chan.elevation), "depth": float(chan.depth)}


def units(pre: Preprocess, inv, channels: list[str], t_ns: int) -> str:
    """Units of a station's processed samples (``counts``, ``m/s``, ``m``, ``m/s**2``; with
    ``sensitivity``, the response's input units: the SI ones as these, others as the inventory
    writes them, e.g. ``Pa``)."""
    if pre.units is not None:
        return pre.units
    for seed_id in channels:
        for _, c in epochs(inv, seed_id):
            sens = getattr(c.response, "instrument_sensitivity", None)
            if sens is not None and sens.input_units:
                u = sens.input_units.upper()
                return {"M/S": "m/s", "M": "m", "M/S**2": "m/s**2", "M/S/S": "m/s**2"}.get(u, sens.input_units)
    return "unknown"
