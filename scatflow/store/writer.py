"""The Zarr store layout and its writer for station groups, ledgers and the root: with
:mod:`scatflow.store.relay` and :mod:`scatflow.store.analysis_writer`, the only code that writes
a store (``docs/store-format.md``). Array names and encodings are in :mod:`scatflow.store.encoding`.

Layout (zarr format 3, store format 2: root attribute ``format``)::

    STORE/                       root attributes: "format", "scatflow" (design, config, versions,
                                 the last runs' summaries)
      NET.STA.LOC/               one group per station
        time, channel, f1, f2    coordinates (time: int64 ns since 1970)
        order_1, order_2, coverage   chunked by block, sharded by day (flat chunk keys)
        block_done   (block,)    windows written by the block's task, 0 = not done (the ledger)
        block_files  (block,)    JSON list of input files the block read (path, size, mtime)
        block_error  (block,)    why the block failed ("" when it did not)
        block_notes  (block,)    JSON: no data; conflicting or non-finite samples ("" when none)
        block_stamp  (block,)    int64 UTC ns of the block's last ledger record (0 = never)
        block_summary (block,)   JSON: mean coverage and NaN windows per channel

Rules that keep parallel writers safe (``docs/architecture.md``): the driver
alone creates or grows groups, writes attributes and writes the ledger, in
batches, after the tasks whose blocks it records have returned (their data is
written), so a block is never marked done without its data; a worker writes
only the shard of its task. Consolidated metadata is dropped before any
metadata change and rebuilt at the end of a run, so default opens never see
stale metadata.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import time
import warnings

import numpy as np
import xarray as xr
import zarr

from .. import location
from . import relay
from .access import object_store_exists, zarr_store
from ..errors import StoreError
from ..inputs.grid import Blocks
from .encoding import FORMAT, encoding, ledger_vars
from .ledger import read_ledger
from .stations import LAST_WRITTEN, StationState, group_names, open_root, station_states
from .summary import versions
from .upgrade import check_format

#: errno values that mean the output location cannot take more writes: stop the run.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


# -- writing ------------------------------------------------------------------------------------
class Store:
    """A scatflow Zarr store at ``path`` (a directory or an object-store URL); all writes go
    through it."""

    def __init__(self, path: str | os.PathLike):
        self.path = location.as_location(path)

    def exists(self) -> bool:
        """Whether a Zarr store (root ``zarr.json``) is at the path."""
        if location.is_url(self.path):
            return object_store_exists(self.path)
        return os.path.isfile(os.path.join(self.path, "zarr.json"))

    def _root(self, mode: str = "r") -> zarr.Group:
        return zarr.open_group(zarr_store(self.path), mode=mode, use_consolidated=False, zarr_format=3)

    def check_writable(self) -> None:
        """Raise StoreError unless the store can be created or written here."""
        if location.is_url(self.path):
            if not self.exists() and location.listdir(self.path):
                raise StoreError(f"output.store: {self.path} holds objects but no Zarr store")
            bucket = location.bucket(self.path)
            if not location.exists(bucket):
                raise StoreError(f"output.store: {self.path}: no bucket {bucket} at {location.endpoint(self.path)}")
            return  # whether the credentials may write is known at the first write
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
        attrs = dict(self._root().attrs)
        check_format(self.path, attrs)  # a format-1 store: refused with the upgrade command
        return attrs.get("scatflow", {})

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
            root = zarr.open_group(zarr_store(self.path), mode="a", zarr_format=3)
            root.attrs.update({"scatflow": {"design": design, "runs": []}, "format": FORMAT})

    def update_root(self, **items) -> None:
        """Set keys of the root ``scatflow`` attribute (driver only)."""
        root = self._root("r+")
        attrs = dict(root.attrs.get("scatflow", {}))
        attrs.update(items)
        root.attrs["scatflow"] = attrs

    def wipe(self) -> None:
        """Delete the whole store (``--overwrite``)."""
        import shutil

        if location.is_url(self.path):
            if not self.exists() and location.listdir(self.path):
                raise StoreError(f"output.store: refusing to delete {self.path}: not a Zarr store")
            location.rmtree(self.path)
            return
        if os.path.isdir(self.path):
            if not self.exists() and os.listdir(self.path):
                raise StoreError(f"output.store: refusing to delete {self.path}: not a Zarr store")
            shutil.rmtree(self.path)
        shutil.rmtree(relay.work_dir(self.path), ignore_errors=True)

    def drop_consolidated(self) -> None:
        """Remove consolidated metadata before changing metadata (stale is worse than none)."""
        meta = location.join(self.path, "zarr.json")
        if not location.isfile(meta):
            return
        doc = json.loads(location.read_bytes(meta))
        if doc.pop("consolidated_metadata", None) is None:
            return
        location.write_bytes(meta, json.dumps(doc, indent=2).encode())

    def consolidate(self) -> None:
        """Consolidate the metadata (end of a run), so default opens are fast and current."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(zarr_store(self.path))

    # -- station groups -----------------------------------------------------------------
    def station_states(self) -> dict[str, StationState]:
        """Shape, channels, attributes and ledger access of every whole station group: the root
        is opened and listed once, each group once (planning asks for all of them;
        :func:`~scatflow.store.stations.station_states`)."""
        return station_states(self._root()) if self.exists() else {}

    def station_state(self, key: str) -> StationState | None:
        """:meth:`station_states` of one station (None if absent)."""
        return self.station_states().get(key)

    def create_group(self, key: str, template: xr.Dataset, blocks: Blocks) -> None:
        """Write the group's metadata and coordinates (no data chunks); ``template.attrs`` gives
        ``shard_blocks``."""
        ds = template.assign(ledger_vars(blocks.count))
        enc = encoding(ds, blocks.chunk, int(template.attrs.get("shard_blocks", 1)))
        # Planned as new, yet objects are there: a create cut short, overwritten ("w"; "w-" otherwise,
        # so that a group planned as new never replaces one that is whole).
        mode = "w" if location.listdir(location.join(self.path, key)) else "w-"
        # safe_chunks=False: the template's Dask chunks are blocks, finer than the shards; compute=False
        # writes none of them (tasks later write whole shards, one task per shard). ``block_done`` is
        # written last, once everything else is: a group without it is a create cut short (a driver
        # or an object store stopped mid-way), which planning treats as absent.
        rest = ds.drop_vars(LAST_WRITTEN)
        rest.to_zarr(zarr_store(self.path), group=key, mode=mode, compute=False, zarr_format=3, consolidated=False,
                     encoding={k: v for k, v in enc.items() if k in rest.variables}, safe_chunks=False)
        ds[[LAST_WRITTEN]].to_zarr(zarr_store(self.path), group=key, mode="a", zarr_format=3, consolidated=False,
                                   encoding={LAST_WRITTEN: enc[LAST_WRITTEN]})

    def extend_group(self, key: str, template: xr.Dataset, old: Blocks, new: Blocks) -> None:
        """Grow the time axis from ``old.n`` to ``new.n`` windows with ``template`` (the new
        windows only), and the ledger to ``new.count`` blocks (driver).

        Metadata and the new window times only: no data chunk, and nothing already stored is
        read (an xarray append would open the group's whole ``time`` index), so growing a
        station costs the same after ten years as after one day.
        """
        from xarray.backends.zarr import encode_zarr_attr_value

        g = self._root("r+")[key]
        for _, arr in g.arrays():
            dims = tuple(arr.metadata.dimension_names or ())
            if dims[:1] == ("time",) and arr.shape[0] < new.n:
                arr.resize((new.n, *arr.shape[1:]))
            elif dims[:1] == ("block",) and arr.shape[0] < new.count:
                arr.resize((new.count, *arr.shape[1:]))
        # As a fresh run's template write leaves them (an xarray write replaces a group's attributes).
        g.attrs.put({k: encode_zarr_attr_value(v) for k, v in template.attrs.items()})
        # The times last: until they are written the group reads as not grown
        # (:func:`~scatflow.store.stations.filled_windows`), and the next run grows it again.
        if template.sizes["time"]:
            g["time"][old.n : new.n] = np.asarray(template["time"].values, dtype="datetime64[ns]").astype(np.int64)

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
        if location.is_url(self.path):
            # A re-lay swaps whole group directories by rename, which an object store cannot
            # do atomically: refused rather than risk a half-swapped group.
            raise StoreError(f"{self.path}: station {key} gains channels ({', '.join(channels)}); "
                             "re-laying a station for new channels is not supported on an object store: run "
                             "with a local store, or select only the station's present channels (input.select)")
        relay.relay_group(self.path, key, list(channels), coords)

    def recover(self) -> list[str]:
        """Finish or undo a channel re-lay a killed driver left (driver, under the writer lock,
        before planning); the station keys whose group was restored."""
        if location.is_url(self.path):
            return []  # no re-lay runs on an object store (add_channels)
        return relay.recover(self.path)

    # -- block data (workers) -----------------------------------------------------------
    def write_windows(self, key: str, k0: int, arrays: dict, token: str = "") -> None:
        """Write windows ``k0 .. k0 + len`` of the arrays ``arrays`` (name -> values along time,
        chunk-aligned) into group ``key`` (worker). The Zarr arrays are opened once per worker
        process, group and ``token`` (the run: no metadata changes during a run), so a block
        costs its data writes only."""
        names = tuple(sorted(arrays))
        opened = _arrays(self.path, key, token, names)
        end = k0 + max(len(v) for v in arrays.values())
        if any(opened[name].shape[0] < end for name in names):
            _arrays.cache_clear()  # grown since cached (a later run in this process): open again
            opened = _arrays(self.path, key, token, names)
        for name, values in arrays.items():
            arr = opened[name]
            if arr.shape[0] < k0 + len(values):  # Zarr would drop the windows past the end silently
                raise StoreError(f"internal: {key}/{name} holds {arr.shape[0]} windows, not {k0 + len(values)}")
            arr[k0 : k0 + len(values)] = values

    # -- the ledger (driver) ------------------------------------------------------------
    def unmark_blocks(self, key: str, blocks: list[int]) -> None:
        """Before blocks marked done are computed again: mark them not done and change their
        stamps, so an analysis labelled against the old stamps labels them again, whatever is
        interrupted after (driver)."""
        if not blocks:
            return
        g = self._root("r+")[key]
        idx = np.asarray(sorted(blocks), dtype=np.int64)
        g["block_done"].oindex[idx] = np.zeros(len(idx), dtype=np.int32)
        _bump(g["block_stamp"], idx)

    def mark_blocks(self, key: str, marks: list[dict]) -> None:
        """Record the outcome of blocks whose tasks have returned (their data is written), in one
        batch per ledger array: files read, error, notes and summary first, the stamp, then the
        windows done last (driver). Each mark: ``block``, ``windows`` (0 = not done), ``files``,
        ``error``, ``notes``, ``summary``."""
        if not marks:
            return
        marks = sorted(marks, key=lambda m: m["block"])
        g = self._root("r+")[key]
        idx = np.asarray([m["block"] for m in marks], dtype=np.int64)
        for name, field in (("block_files", "files"), ("block_error", "error"), ("block_notes", "notes"),
                            ("block_summary", "summary")):
            cells = [m.get(field) or "" for m in marks]
            cells = [c if isinstance(c, str) else json.dumps(c, sort_keys=True) for c in cells]
            g[name].oindex[idx] = np.asarray(cells, dtype=object)
        _bump(g["block_stamp"], idx)
        g["block_done"].oindex[idx] = np.asarray([m["windows"] for m in marks], dtype=np.int32)


_last_stamp = 0


def _bump(stamps: zarr.Array, idx: np.ndarray) -> None:
    """Set the stamps of blocks ``idx`` to now (UTC ns), strictly increasing in this process, so
    above any earlier record (the old values are not read: one request less per batch)."""
    global _last_stamp
    _last_stamp = max(time.time_ns(), _last_stamp + 1)
    stamps.oindex[idx] = np.full(len(idx), _last_stamp, dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _arrays(path: str, key: str, token: str, names: tuple) -> dict:
    """The arrays ``names`` of group ``key`` (cached per worker process and run ``token``)."""
    g = zarr.open_group(zarr_store(path), path=key, mode="r+", use_consolidated=False, zarr_format=3)
    return {name: g[name] for name in names}


__all__ = ["Store", "StoreError", "StationState", "open_root", "group_names", "read_ledger", "versions"]
