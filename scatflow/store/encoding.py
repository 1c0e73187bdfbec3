"""How a store's arrays are named and encoded: the ledger's arrays, the arrays every
station group holds, the analysis group's name, and the encodings (int64 ns
times, chunks of one block, a Blosc zstd compressor) the writers give them
(``docs/store-format.md``)."""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

#: The ledger: one value per block.
LEDGER_VARS = ("block_done", "block_files", "block_error", "block_notes", "block_stamp")
#: Arrays every scatflow station group holds.
REQUIRED = ("time", "channel", "coverage", "order_1", "block_done")
#: The root group holding ``scatflow analyze`` results; never a station (station keys are NET.STA.LOC).
ANALYSIS_GROUP = "analysis"


def compressor() -> zarr.codecs.BloscCodec:
    """The compressor of every array chunked along time (station groups and analysis results)."""
    return zarr.codecs.BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")


def encoding(ds: xr.Dataset, chunk: int) -> dict:
    """Explicit encodings: int64 ns times, chunking by block, a compressor."""
    enc = {"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64", "chunks": (chunk,)}}
    for name, var in ds.data_vars.items():
        if "time" in var.dims:
            enc[name] = {"chunks": (chunk, *var.shape[1:]), "compressors": [compressor()]}
    enc["block_done"] = {"chunks": (1,), "fill_value": 0}
    enc["block_files"] = {"chunks": (1,)}
    enc["block_error"] = {"chunks": (1,)}
    enc["block_notes"] = {"chunks": (1,)}
    enc["block_stamp"] = {"chunks": (1,), "fill_value": 0}
    return enc


def ledger_vars(n_blocks: int) -> dict:
    """The ledger arrays of ``n_blocks`` blocks, empty (nothing done), as xarray variables."""
    # In-memory (not Dask) so the driver writes it with the metadata; all values equal the
    # fill values, so no chunk file appears until a task records its block.
    return {
        "block_done": (("block",), np.zeros(n_blocks, dtype=np.int32)),
        "block_files": (("block",), np.full(n_blocks, "", dtype=object)),
        "block_error": (("block",), np.full(n_blocks, "", dtype=object)),
        "block_notes": (("block",), np.full(n_blocks, "", dtype=object)),
        "block_stamp": (("block",), np.zeros(n_blocks, dtype=np.int64)),
    }
