"""The Zarr store layout and its writer for station groups, ledgers and the root: with
:mod:`scatflow.store.relay` and :mod:`scatflow.store.analysis_writer`, the only code that writes
a store (``docs/store-format.md``). Array names and encodings are in :mod:`scatflow.store.encoding`.

Layout (zarr format 3)::

    STORE/                       root attributes: "scatflow" (design, config, versions, runs)
      NET.STA.LOC/               one group per station
        time, channel, f1, f2    coordinates (time: int64 ns since 1970, chunked by block)
        order_1, order_2, coverage   chunked (block windows, all channels, all frequencies)
        block_done   (block,)    windows written by the block's task, 0 = not done (the ledger)
        block_files  (block,)    JSON list of input files the block read (path, size, mtime)
        block_error  (block,)    why the block failed ("" when it did not)
        block_notes  (block,)    JSON: no data; conflicting or non-finite samples ("" when none)
        block_stamp  (block,)    int64 UTC ns of the block's last data write (0 = never, or before
                                 stamps existed): what ``scatflow analyze`` compares to relabel

Rules that keep parallel writers safe (``docs/architecture.md``): the driver
alone creates or grows groups and writes attributes; a worker writes only its
own block's chunk-aligned time region and then its own ledger cells, data
first, so a block is never marked done without its data. Consolidated
metadata is dropped before any metadata change and rebuilt at the end of a
run, so default opens never see stale metadata.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import time
import warnings

import numpy as np
import xarray as xr
import zarr

from . import relay
from .access import zarr_store
from ..errors import StoreError
from ..inputs.grid import Blocks
from .encoding import ANALYSIS_GROUP, LEDGER_VARS, encoding, ledger_vars
from .ledger import Ledger, recorded_files_changed
from .relay import chunk_present as _chunk_present
from ..inputs.windows import computable

#: errno values that mean the output location cannot take more writes: stop the run.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


# -- reading ------------------------------------------------------------------------------------
def open_root(path: str | os.PathLike) -> tuple[zarr.Group, dict]:
    """The root group (read-only) and its ``scatflow`` attribute.

    Every open bypasses consolidated metadata, which may be stale or absent.

    Raises
    ------
    StoreError
        One line naming ``path`` when it is not a scatflow store.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such store (the path does not exist)")
    if not os.path.isdir(path):
        raise StoreError(f"{path}: not a scatflow store (a file, not a Zarr directory)")
    if not os.path.isfile(os.path.join(path, "zarr.json")):
        hint = " (a Zarr v2 store?)" if os.path.isfile(os.path.join(path, ".zgroup")) else ""
        raise StoreError(f"{path}: not a scatflow store (no zarr.json){hint}")
    try:
        root = zarr.open_group(zarr_store(path), mode="r", use_consolidated=False)
        attrs = root.attrs.get("scatflow")
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a usable store"
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StoreError(f"{path}: not a scatflow store ({type(exc).__name__}: {why})") from exc
    if not isinstance(attrs, dict) or "design" not in attrs:
        parent = os.path.dirname(os.path.normpath(path))
        if parent and os.path.isfile(os.path.join(parent, "zarr.json")):
            raise StoreError(f"{path}: not a scatflow store (a group inside a store? give the store directory)")
        raise StoreError(f"{path}: a Zarr store not written by scatflow (no 'scatflow' root attribute)")
    return root, attrs


def group_names(root: zarr.Group) -> list[str]:
    """Names of the root's groups (station groups), sorted; the ``analysis`` group is not one."""
    return sorted(name for name, _ in root.groups() if name != ANALYSIS_GROUP)


def block_has_data(group: zarr.Group, b: int, min_coverage: float) -> bool:
    """Whether block ``b``'s data chunks are in ``group``.

    Every written block has a ``coverage`` chunk; an ``order_*`` chunk may be
    absent only when all its values are NaN (Zarr writes no empty chunk), which
    the block's coverage tells.
    """
    cov = group["coverage"]
    if not _chunk_present(cov, (b, 0)):
        return False
    for name in sorted(group.array_keys()):
        if name.startswith("order_") and not _chunk_present(group[name], (b,) + (0,) * (group[name].ndim - 1)):
            chunk = cov.chunks[0]
            if computable(np.asarray(cov[b * chunk : (b + 1) * chunk]), min_coverage).any():
                return False
    return True


def read_ledger(group: zarr.Group, n: int | None = None, inputs_changed=None) -> Ledger:
    """The ledger of a station group, over its ``n`` windows (default: its time length).

    ``n`` larger than the stored length gives the ledger after a planned growth.
    ``inputs_changed(b, files)`` tells whether block ``b``'s recorded input files
    ``files`` differ from what is on disk now (default: recorded files changed or gone).
    """
    n = int(group["time"].shape[0]) if n is None else n
    chunk = int(group.attrs.get("block_windows") or group["coverage"].chunks[0])
    text = {name: (group[name][:] if name in group else ()) for name in ("block_error", "block_files", "block_notes")}
    min_coverage = float(group.attrs.get("min_coverage", 1.0))
    return Ledger.from_arrays(Blocks(chunk, n), group["block_done"][:], text["block_error"],
                              lambda b: block_has_data(group, b, min_coverage),
                              files=text["block_files"], notes=text["block_notes"],
                              inputs_changed=inputs_changed or recorded_files_changed)


@dataclasses.dataclass(frozen=True)
class StationState:
    """What the store holds for one station, for planning."""

    n_time: int
    channels: list[str]
    attrs: dict
    group: zarr.Group

    def ledger(self, n: int, inputs_changed=None) -> Ledger:
        """The ledger over ``n`` windows (``n >= n_time``: blocks after the end are not done)."""
        return read_ledger(self.group, n, inputs_changed)


# -- writing ------------------------------------------------------------------------------------
class Store:
    """A scatflow Zarr store at ``path`` (a directory); all writes go through it."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def exists(self) -> bool:
        """Whether a Zarr store (root ``zarr.json``) is at the path."""
        return os.path.isfile(os.path.join(self.path, "zarr.json"))

    def _root(self, mode: str = "r") -> zarr.Group:
        return zarr.open_group(zarr_store(self.path), mode=mode, use_consolidated=False)

    def check_writable(self) -> None:
        """Raise StoreError unless the store can be created or written here."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise StoreError(f"output.store: {self.path} exists and is not a directory")
        if os.path.isdir(self.path) and not self.exists() and os.listdir(self.path):
            raise StoreError(f"output.store: {self.path} is a non-empty directory that is not a Zarr store")
        parent = self.path if os.path.isdir(self.path) else os.path.dirname(os.path.abspath(self.path))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise StoreError(f"output.store: cannot create {self.path}: {parent} is a file")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"output.store: cannot write under {parent}")

    def root_attrs(self) -> dict:
        """The root ``scatflow`` attribute ({} when there is no store)."""
        if not self.exists():
            return {}
        return dict(self._root().attrs).get("scatflow", {})

    def design_differences(self, design: dict) -> list[str]:
        """``key: store has X, config has Y`` for each design key that differs ([] for a new store)."""
        if not self.exists():
            return []
        stored = self.root_attrs().get("design")
        if stored is None:
            raise StoreError(f"{self.path}: a Zarr store not written by scatflow")
        return [f"{k}: store has {stored.get(k)!r}, config has {design.get(k)!r}"
                for k in sorted(set(stored) | set(design)) if stored.get(k) != design.get(k)]

    def check_design(self, design: dict) -> None:
        """Refuse a store written with another design.

        Raises
        ------
        StoreError
            Naming each design key whose value differs.
        """
        diffs = self.design_differences(design)
        if diffs:
            raise StoreError(f"{self.path} was written with another design ({'; '.join(diffs)}); "
                             "use another output.store or --overwrite")

    def open_or_create(self, design: dict) -> None:
        """Create the root group with ``design``, or refuse if the store's design differs (StoreError)."""
        self.check_writable()
        self.check_design(design)
        if not self.exists():
            zarr.open_group(zarr_store(self.path), mode="a", zarr_format=3).attrs["scatflow"] = {"design": design, "runs": []}

    def update_root(self, **items) -> None:
        """Set keys of the root ``scatflow`` attribute (driver only)."""
        root = self._root("r+")
        attrs = dict(root.attrs.get("scatflow", {}))
        attrs.update(items)
        root.attrs["scatflow"] = attrs

    def wipe(self) -> None:
        """Delete the whole store (``--overwrite``)."""
        import shutil

        if os.path.isdir(self.path):
            if not self.exists() and os.listdir(self.path):
                raise StoreError(f"output.store: refusing to delete {self.path}: not a Zarr store")
            shutil.rmtree(self.path)
        shutil.rmtree(relay.work_dir(self.path), ignore_errors=True)

    def drop_consolidated(self) -> None:
        """Remove consolidated metadata before changing metadata (stale is worse than none)."""
        meta = os.path.join(self.path, "zarr.json")
        if not os.path.isfile(meta):
            return
        with open(meta) as fh:
            doc = json.load(fh)
        if doc.pop("consolidated_metadata", None) is None:
            return
        tmp = meta + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, meta)

    def consolidate(self) -> None:
        """Consolidate the metadata (end of a run), so default opens are fast and current."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(zarr_store(self.path))

    # -- station groups -----------------------------------------------------------------
    def station_state(self, key: str) -> StationState | None:
        """Shape, channels, attributes and ledger access of a station group (None if absent)."""
        if not self.exists():
            return None
        root = self._root()
        if key not in group_names(root):
            return None
        g = root[key]
        return StationState(int(g["time"].shape[0]), [str(c) for c in g["channel"][:]], dict(g.attrs), g)

    def create_group(self, key: str, template: xr.Dataset, blocks: Blocks) -> None:
        """Write the group's metadata and coordinates (no data chunks)."""
        ds = template.assign(ledger_vars(blocks.count))
        ds.to_zarr(zarr_store(self.path), group=key, mode="w-", compute=False, zarr_format=3, consolidated=False,
                   encoding=encoding(ds, blocks.chunk))

    def extend_group(self, key: str, template: xr.Dataset, old: Blocks, new: Blocks) -> None:
        """Grow the time axis from ``old.n`` to ``new.n`` windows with ``template`` (the new
        windows only), and the ledger to ``new.count`` blocks."""
        # Every to_zarr call replaces the group's attributes with the dataset's: carry them along.
        timed = template.drop_vars([c for c in template.coords if c != "time"])
        if timed.sizes["time"]:
            # compute=False writes no data, so placeholder chunks straddling the old end are harmless;
            # blocks are later written in chunk-aligned regions by the tasks.
            timed.to_zarr(zarr_store(self.path), group=key, append_dim="time", compute=False, consolidated=False,
                          safe_chunks=False)
        if new.count > old.count:
            xr.Dataset(ledger_vars(new.count - old.count), attrs=template.attrs).to_zarr(
                zarr_store(self.path), group=key, append_dim="block", compute=False, consolidated=False
            )

    def add_channel_coords(self, key: str, coords: dict, attrs: dict) -> None:
        """Give an existing group the channel coordinates it lacks (driver).

        A group created without an inventory has no ``latitude``... arrays; they are
        added as xarray coordinates (listed in the ``coordinates`` attribute of each
        variable along ``channel``, as a template write lists them), so later
        extensions keep them.

        Parameters
        ----------
        key : str
            Station group.
        coords : dict
            Name -> one float per channel.
        attrs : dict
            Name -> attributes (units, long_name).
        """
        g = self._root("r+")[key]
        missing = [name for name in coords if name not in g]
        if not missing:
            return
        for name in missing:
            arr = g.create_array(name, shape=(len(coords[name]),), chunks=(len(coords[name]),), dtype="float64",
                                 fill_value=np.nan, dimension_names=["channel"])
            arr[:] = np.asarray(coords[name], dtype=np.float64)
            arr.attrs.update(attrs.get(name, {}))
        for name, arr in g.arrays():
            dims = arr.metadata.dimension_names or ()
            if "channel" in dims and "time" in dims:
                listed = set(str(arr.attrs.get("coordinates", "")).split()) | set(missing)
                arr.attrs["coordinates"] = " ".join(sorted(listed))

    def add_channels(self, key: str, channels: list[str], coords: dict | None = None) -> None:
        """Re-lay group ``key`` along ``channel`` to hold ``channels``, a superset of its own in
        the order a fresh run lays them (driver, before any task; :mod:`scatflow.store.relay`).

        Parameters
        ----------
        key : str
            Station group.
        channels : list of str
            SEED ids, sorted: the group's and the new ones.
        coords : dict, optional
            Name -> one float per channel of the inventory's coordinates (``latitude``...).
        """
        relay.relay_group(self.path, key, list(channels), coords)

    def recover(self) -> list[str]:
        """Finish or undo a channel re-lay a killed driver left (driver, under the writer lock,
        before planning); the station keys whose group was restored."""
        return relay.recover(self.path)

    def add_missing_ledger(self, key: str, n_blocks: int) -> None:
        """Give a group written before an array joined the ledger that array, empty (driver)."""
        g = self._root("r+")[key]
        for name in LEDGER_VARS:
            if name not in g:
                # Absent stamps read as 0: blocks written before stamps count as unchanged until rewritten.
                kind = (np.int64, 0) if name == "block_stamp" else (str, "")
                g.create_array(name, shape=(n_blocks,), chunks=(1,), dtype=kind[0], fill_value=kind[1],
                               dimension_names=["block"])

    def write_block(self, key: str, ds: xr.Dataset, k0: int, chunk: int) -> None:
        """Write a block's windows ``k0 .. k0 + len`` (chunk-aligned) into its region (worker)."""
        if k0 % chunk:
            raise StoreError(f"internal: block region starting at window {k0} is not aligned to chunks of {chunk}")
        region = {"time": slice(k0, k0 + ds.sizes["time"])}
        self._stamp(key, k0 // chunk)
        ds.drop_vars(list(ds.coords)).to_zarr(zarr_store(self.path), group=key, region=region, consolidated=False)

    def _stamp(self, key: str, block: int) -> None:
        # Before the data: whatever is interrupted after, the stamp has changed whenever the data may have,
        # so an analysis labelled against the old stamp labels the block again (README "Analysis").
        g = self._root("r+")[key]
        if "block_stamp" in g:
            g["block_stamp"][block] = max(time.time_ns(), int(g["block_stamp"][block]) + 1)

    def clear_block(self, key: str, block: int, k0: int, k1: int) -> None:
        """Unmark block ``block`` (windows ``k0 .. k1``) and replace its coefficients by NaN and its
        coverage by 0, so a block whose recompute failed keeps no earlier numbers (worker)."""
        g = self._root("r+")[key]
        g["block_done"][block] = 0  # first: never marked done over the NaN written next
        self._stamp(key, block)
        for name, arr in g.arrays():
            dims = arr.metadata.dimension_names or ()
            if dims[:1] == ("time",) and (name.startswith("order_") or name == "coverage"):
                arr[k0:k1] = 0.0 if name == "coverage" else np.nan

    def mark_block(self, key: str, block: int, windows: int, files: list | None = None, error: str = "",
                   notes: dict | None = None) -> None:
        """Record a block's outcome: files read, error (or ""), notes, then windows done (last) (worker)."""
        g = self._root("r+")[key]
        g["block_files"][block] = json.dumps(files or [])
        g["block_error"][block] = error
        if "block_notes" in g:
            g["block_notes"][block] = json.dumps(notes, sort_keys=True) if notes else ""
        g["block_done"][block] = windows



def versions() -> dict:
    """Versions of the libraries whose behaviour the numbers depend on."""
    import dask
    import obspy
    import scipy

    from .. import __version__

    return {
        "scatflow": __version__,
        "obspy": obspy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "dask": dask.__version__,
        "xarray": xr.__version__,
        "zarr": zarr.__version__,
    }


__all__ = ["Store", "StoreError", "StationState", "open_root", "group_names", "read_ledger", "versions"]
