"""What a store holds, read for planning and reading: the root, the station groups, and whether
each group is whole.

A station group is written in steps (its arrays, its coordinates' values, and when it grows its
arrays' new lengths and the new window times), and a driver, or the object store under it, may
stop between two of them. What such a stop leaves is recognised here, so that the next run
redoes the step instead of trusting a half-written group:

- a group's creation writes ``block_done`` last (:data:`LAST_WRITTEN`): a group without it is
  a creation cut short, planned as absent (and overwritten when created again);
- growing a group writes the new window times last; a time axis whose last value is still the
  fill value (0, 1970-01-01) was grown but not filled: its length is taken as that of its
  filled part, and the next run grows it again (one read of the last time chunk per station).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import zarr

from .. import location
from ..errors import StoreError
from .access import object_store_exists, zarr_store
from .encoding import ANALYSIS_GROUP
from .ledger import Ledger, read_ledger

#: The array a group's creation writes last: its presence says the group is whole.
LAST_WRITTEN = "block_done"


def open_root(path: str | os.PathLike) -> tuple[zarr.Group, dict]:
    """The root group (read-only) and its ``scatflow`` attribute.

    Every open bypasses consolidated metadata, which may be stale or absent.

    Raises
    ------
    StoreError
        One line naming ``path`` when it is not a scatflow store.
    """
    path = location.as_location(path)
    if location.is_url(path):
        if not object_store_exists(path):
            hint = " (a Zarr v2 store?)" if location.isfile(location.join(path, ".zgroup")) else ""
            raise StoreError(f"{path}: no such store (no zarr.json under this URL){hint}")
    elif not os.path.exists(path):
        raise StoreError(f"{path}: no such store (the path does not exist)")
    elif not os.path.isdir(path):
        raise StoreError(f"{path}: not a scatflow store (a file, not a Zarr directory)")
    elif not os.path.isfile(os.path.join(path, "zarr.json")):
        hint = " (a Zarr v2 store?)" if os.path.isfile(os.path.join(path, ".zgroup")) else ""
        raise StoreError(f"{path}: not a scatflow store (no zarr.json){hint}")
    try:
        root = zarr.open_group(zarr_store(path), mode="r", use_consolidated=False, zarr_format=3)
        attrs = root.attrs.get("scatflow")
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a usable store"
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StoreError(f"{path}: not a scatflow store ({type(exc).__name__}: {why})") from exc
    if not isinstance(attrs, dict) or "design" not in attrs:
        parent = os.path.dirname(os.path.normpath(path)) if not location.is_url(path) else None
        if parent and os.path.isfile(os.path.join(parent, "zarr.json")):
            raise StoreError(f"{path}: not a scatflow store (a group inside a store? give the store directory)")
        raise StoreError(f"{path}: a Zarr store not written by scatflow (no 'scatflow' root attribute)")
    return root, attrs


def group_names(root: zarr.Group) -> list[str]:
    """Names of the root's groups (station groups), sorted; the ``analysis`` group is not one."""
    return sorted(name for name, _ in root.groups() if name != ANALYSIS_GROUP)


@dataclasses.dataclass(frozen=True)
class StationState:
    """What the store holds for one station, for planning."""

    n_time: int
    channels: list[str]
    attrs: dict
    group: zarr.Group

    def ledger(self, n: int, inputs_changed=None, recheck=None, check_data: bool = False) -> Ledger:
        """The ledger over ``n`` windows (``n >= n_time``: blocks after the end are not done)."""
        return read_ledger(self.group, n, inputs_changed, recheck, check_data)




def filled_windows(group: zarr.Group) -> int:
    """The length of ``group``'s time axis up to its last written window time (see the module's
    docstring): its length, unless growing it was cut short."""
    times = group["time"]
    n = int(times.shape[0])
    if n == 0 or int(times[n - 1]) != 0:
        return n
    filled = np.flatnonzero(times[:])
    return int(filled[-1]) + 1 if filled.size else 0


def station_states(root: zarr.Group) -> dict[str, StationState]:
    """The :class:`StationState` of every whole station group of ``root`` (by key)."""
    out = {}
    for name, g in root.groups():
        if name != ANALYSIS_GROUP and LAST_WRITTEN in set(g.array_keys()):  # else: a creation cut short
            out[name] = StationState(filled_windows(g), [str(c) for c in g["channel"][:]], dict(g.attrs), g)
    return out
