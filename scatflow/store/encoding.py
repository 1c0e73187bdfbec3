"""How a store's arrays are named and encoded (store format 2, ``docs/store-format.md``).

Format 2 is laid out for archives of many stations and years (measured reasons in
``docs/architecture.md``, "Archive scale"):

* every chunk key is flat (``order_2/c.12.0.0.0``): no directory per chunk;
* ``order_*`` and ``coverage`` are chunked by block and **sharded** by
  :func:`shard_blocks` blocks (a day at 6 h blocks, at most 4): one object per array and
  shard. A shard is only ever written by one task at a time (the driver gives
  each shard of a station to one task), never partially by two writers;
* ``time`` is written by the driver alone, in chunks of :data:`TIME_CHUNK_BLOCKS` blocks;
* the ledger (``block_*``, one value per block) is written by the driver alone, in
  batches, in chunks of :data:`LEDGER_CHUNK` blocks.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

#: The store format this version writes (root attribute ``format``).
FORMAT = 2
#: The ledger: one value per block.
LEDGER_VARS = ("block_done", "block_files", "block_error", "block_notes", "block_stamp", "block_summary")
#: Arrays every scatflow station group holds.
REQUIRED = ("time", "channel", "coverage", "order_1", "block_done")
#: The root group holding ``scatflow analyze`` results; never a station (station keys are NET.STA.LOC).
ANALYSIS_GROUP = "analysis"
#: Blocks per chunk of the ledger arrays (about 8.4 months of 6 h blocks: a 10-year station has 15).
LEDGER_CHUNK = 1024
#: Blocks per chunk of ``time`` (64 days of 6 h blocks).
TIME_CHUNK_BLOCKS = 256
#: Flat chunk keys: ``c.0.0`` rather than ``c/0/0`` (a directory per chunk on a filesystem).
FLAT_KEYS = {"name": "default", "configuration": {"separator": "."}}


def compressor() -> zarr.codecs.BloscCodec:
    """The compressor of every array chunked along time (station groups and analysis results)."""
    return zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


#: Most blocks in one shard: a task computes a whole shard, so this bounds a task's duration (a
#: batch worker retiring mid-task loses the task, which is then computed again elsewhere).
MAX_SHARD_BLOCKS = 4


def shard_blocks(block_s: float) -> int:
    """Blocks per shard: as many as make one day (at least one), at most :data:`MAX_SHARD_BLOCKS`
    (a day at the default 6 h blocks).

    Parameters
    ----------
    block_s : float
        Block duration, seconds.
    """
    return min(MAX_SHARD_BLOCKS, max(1, int(86400 // block_s))) if block_s > 0 else 1


def encoding(ds: xr.Dataset, chunk: int, shard: int = 1) -> dict:
    """Explicit encodings of a station group: int64 ns times, chunks of one block (``chunk``
    windows), shards of ``shard`` blocks, flat keys, a compressor, large ledger chunks."""
    enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64",
                    "chunks": (chunk * TIME_CHUNK_BLOCKS,), "chunk_key_encoding": FLAT_KEYS,
                    "compressors": [compressor()]}}
    for name, var in ds.variables.items():
        if name in enc:
            continue
        if "time" in var.dims:
            enc[name] = {"chunks": (chunk, *var.shape[1:]), "shards": (chunk * shard, *var.shape[1:]),
                         "compressors": [compressor()], "chunk_key_encoding": FLAT_KEYS}
        elif name in LEDGER_VARS:
            enc[name] = {"chunks": (LEDGER_CHUNK,), "chunk_key_encoding": FLAT_KEYS}
            if name in ("block_done", "block_stamp"):
                enc[name]["fill_value"] = 0
        else:
            enc[name] = {"chunk_key_encoding": FLAT_KEYS}
    return enc


def ledger_vars(n_blocks: int) -> dict:
    """The ledger arrays of ``n_blocks`` blocks, empty (nothing done), as xarray variables."""
    # In-memory (not Dask) so the driver writes it with the metadata; all values equal the
    # fill values, so no chunk file appears until the driver records a block.
    text = {name: (("block",), np.full(n_blocks, "", dtype=object))
            for name in ("block_files", "block_error", "block_notes", "block_summary")}
    return {"block_done": (("block",), np.zeros(n_blocks, dtype=np.int32)),
            "block_stamp": (("block",), np.zeros(n_blocks, dtype=np.int64)), **text}
