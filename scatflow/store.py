"""The Zarr store: the only module that opens a store for writing.

Layout (zarr format 3)::

    STORE/                       root attributes: "scatflow" (design, config, versions, runs)
      NET.STA.LOC/               one group per station (SPEC section 4)
        time, channel, f1, f2    coordinates (time: int64 ns since 1970, chunked by block)
        order_1, order_2, coverage   chunked (block windows, all channels, all frequencies)
        block_done   (block,)    windows written by the block's task, 0 = not done (the ledger)
        block_files  (block,)    JSON list of input files the block read (path, size, mtime)
        block_error  (block,)    why the block failed ("" when it did not)

Rules that keep parallel writers safe (see FACTS.md): the driver alone creates
or grows groups and writes attributes; a worker writes only its own block's
chunk-aligned time region and then its own ledger cells, data first, so a
block is never marked done without its data. Consolidated metadata is dropped
before any metadata change and rebuilt at the end of a run, so default opens
never see stale metadata.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import warnings

import numpy as np
import xarray as xr
import zarr

from .dataset import freq_dims
from .windows import computable

LEDGER_VARS = ("block_done", "block_files", "block_error")


class StoreError(ValueError):
    """A store that cannot be used as asked; the message says why."""


#: errno values that mean the output location cannot take more writes: stop the run.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}
#: A lock not refreshed for this long (seconds) is stale even if its host cannot be asked.
LOCK_STALE_S = 600
LOCK_HEARTBEAT_S = 30


def _compressor():
    return zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


def encoding(ds: xr.Dataset, chunk: int) -> dict:
    """Explicit encodings: int64 ns times, chunking by block, a compressor."""
    enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64", "chunks": (chunk,)}}
    for name, var in ds.data_vars.items():
        if "time" in var.dims:
            enc[name] = {"chunks": (chunk, *var.shape[1:]), "compressors": [_compressor()]}
    enc["block_done"] = {"chunks": (1,), "fill_value": 0}
    enc["block_files"] = {"chunks": (1,)}
    enc["block_error"] = {"chunks": (1,)}
    return enc


def _ledger(n_blocks: int) -> dict:
    # In-memory (not Dask) so the driver writes it with the metadata; all values equal the
    # fill values, so no chunk file appears until a task records its block.
    return {
        "block_done": (("block",), np.zeros(n_blocks, dtype=np.int32)),
        "block_files": (("block",), np.full(n_blocks, "", dtype=object)),
        "block_error": (("block",), np.full(n_blocks, "", dtype=object)),
    }


class Store:
    """A scatflow Zarr store at ``path`` (a directory)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    # -- root -------------------------------------------------------------------
    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, "zarr.json"))

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
        if not self.exists():
            return {}
        return dict(zarr.open_group(self.path, mode="r", use_consolidated=False).attrs).get("scatflow", {})

    def open_or_create(self, design: dict) -> None:
        """Create the root group with ``design``, or refuse if the store's design differs.

        Raises
        ------
        StoreError
            Naming each design key whose value differs.
        """
        self.check_writable()
        if self.exists():
            stored = self.root_attrs().get("design")
            if stored is None:
                raise StoreError(f"{self.path}: a Zarr store not written by scatflow")
            diffs = [
                f"{k}: store has {stored.get(k)!r}, config has {design.get(k)!r}"
                for k in sorted(set(stored) | set(design))
                if stored.get(k) != design.get(k)
            ]
            if diffs:
                raise StoreError(f"{self.path} was written with another design ({'; '.join(diffs)}); "
                                 "use another output.store or --overwrite")
            return
        root = zarr.open_group(self.path, mode="a", zarr_format=3)
        root.attrs["scatflow"] = {"design": design, "runs": []}

    def update_root(self, **items) -> None:
        """Set keys of the root ``scatflow`` attribute (driver only)."""
        root = zarr.open_group(self.path, mode="r+", use_consolidated=False)
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

    # -- the writer lock ------------------------------------------------------------
    @property
    def lock_path(self) -> str:
        return os.path.abspath(self.path).rstrip(os.sep) + ".lock"

    @contextlib.contextmanager
    def lock(self):
        """Hold the store's writer lock (a file beside the store) for the duration.

        Raises
        ------
        StoreError
            Another live run holds it (naming its host and pid). A lock whose
            process is gone (same host), or not refreshed for ``LOCK_STALE_S``
            seconds (other hosts), is taken over.
        """
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": now_iso()}
        path = self.lock_path
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_lock(path)
                if not _lock_is_stale(holder, path):
                    raise StoreError(
                        f"{self.path} is being written by another scatflow run (host {holder.get('host')}, "
                        f"pid {holder.get('pid')}, since {holder.get('started')}); if that run is dead, delete {path}"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)  # stale: take over (O_EXCL settles a race between two takers)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            break
        else:
            raise StoreError(f"{self.path}: could not take the writer lock {path}")
        stop = threading.Event()

        def heartbeat():
            while not stop.wait(LOCK_HEARTBEAT_S):
                with contextlib.suppress(OSError):
                    os.utime(path)

        beat = threading.Thread(target=heartbeat, name="scatflow-lock-heartbeat", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            if _read_lock(path).get("pid") == me["pid"]:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    # -- consolidated metadata ------------------------------------------------------
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(self.path)

    # -- groups -----------------------------------------------------------------
    def groups(self) -> list[str]:
        if not self.exists():
            return []
        root = zarr.open_group(self.path, mode="r", use_consolidated=False)
        return sorted(name for name, _ in root.groups())

    def group_state(self, key: str) -> dict | None:
        """Shape and ledger of a station group, or None if it does not exist."""
        if key not in self.groups():
            return None
        g = zarr.open_group(self.path, mode="r", use_consolidated=False)[key]
        return {
            "n_time": int(g["time"].shape[0]),
            "channels": [str(c) for c in g["channel"][:]],
            "attrs": dict(g.attrs),
            "done": np.asarray(g["block_done"][:]),
            "errors": [str(e) for e in g["block_error"][:]],
        }

    def blocks_missing_data(self, key: str, blocks, min_coverage: float = 1.0) -> list[int]:
        """Blocks among ``blocks`` whose chunk files are gone although the ledger says done.

        Every written block has a ``coverage`` chunk; an ``order_*`` chunk may be
        absent only when all its values are NaN (Zarr skips empty chunks), which
        the block's coverage tells.
        """
        base = os.path.join(self.path, key)
        orders = {}
        for name in sorted(os.listdir(base)):
            meta = os.path.join(base, name, "zarr.json")
            if name.startswith("order_") and os.path.isfile(meta):
                with open(meta) as fh:
                    orders[name] = len(json.load(fh)["shape"])
        missing, group = [], None
        for b in blocks:
            if not os.path.isfile(os.path.join(base, "coverage", "c", str(b), "0")):
                missing.append(b)
                continue
            for name, ndim in orders.items():
                if os.path.isfile(os.path.join(base, name, "c", str(b), *["0"] * (ndim - 1))):
                    continue
                if group is None:
                    group = zarr.open_group(self.path, mode="r", use_consolidated=False)[key]
                chunk = group["coverage"].chunks[0]
                cov = np.asarray(group["coverage"][b * chunk : (b + 1) * chunk])
                if computable(cov, min_coverage).any():
                    missing.append(b)
                    break
        return missing

    def create_group(self, key: str, template: xr.Dataset, chunk: int, n_blocks: int) -> None:
        """Write the group's metadata and coordinates (no data chunks)."""
        ds = template.assign(_ledger(n_blocks))
        ds.to_zarr(self.path, group=key, mode="w-", compute=False, zarr_format=3, consolidated=False,
                   encoding=encoding(ds, chunk))

    def extend_group(self, key: str, template: xr.Dataset, n_blocks_old: int, n_blocks_new: int) -> None:
        """Grow the time axis with ``template`` (the new windows only) and the ledger."""
        # Every to_zarr call replaces the group's attributes with the dataset's: carry them along.
        timed = template.drop_vars([c for c in template.coords if c != "time"])
        if timed.sizes["time"]:
            # compute=False writes no data, so placeholder chunks straddling the old end are harmless;
            # blocks are later written in chunk-aligned regions by the tasks.
            timed.to_zarr(self.path, group=key, append_dim="time", compute=False, consolidated=False,
                          safe_chunks=False)
        if n_blocks_new > n_blocks_old:
            xr.Dataset(_ledger(n_blocks_new - n_blocks_old), attrs=template.attrs).to_zarr(
                self.path, group=key, append_dim="block", compute=False, consolidated=False
            )

    # -- worker side --------------------------------------------------------------
    def write_block(self, key: str, ds: xr.Dataset, k0: int, chunk: int) -> None:
        """Write a block's windows ``k0 .. k0 + len`` (chunk-aligned) into its region."""
        if k0 % chunk:
            raise StoreError(f"internal: block region starting at window {k0} is not aligned to chunks of {chunk}")
        region = {"time": slice(k0, k0 + ds.sizes["time"])}
        ds.drop_vars(list(ds.coords)).to_zarr(self.path, group=key, region=region, consolidated=False)

    def mark_block(self, key: str, block: int, windows: int, files: list | None = None, error: str = "") -> None:
        """Record a block's outcome: files read, error (or ""), then windows done (last)."""
        g = zarr.open_group(self.path, mode="r+", use_consolidated=False)[key]
        g["block_files"][block] = json.dumps(files or [])
        g["block_error"][block] = error
        g["block_done"][block] = windows


def _read_lock(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _lock_is_stale(holder: dict, path: str) -> bool:
    try:
        age = time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return True
    if not holder:  # unreadable: a writer killed mid-write, or one writing right now
        return age > 5
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, KeyError):
            pass
        return False
    return age > LOCK_STALE_S


def versions() -> dict:
    """Versions of the libraries whose behaviour the numbers depend on."""
    import dask
    import obspy
    import scipy

    from . import __version__

    return {
        "scatflow": __version__,
        "obspy": obspy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "dask": dask.__version__,
        "xarray": xr.__version__,
        "zarr": zarr.__version__,
    }


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


__all__ = ["Store", "StoreError", "encoding", "versions", "freq_dims"]
