"""The stations an analysis reads: selected by pattern, each group's coefficients
(lazy) with the ledger facts the analysis needs (which blocks are complete,
their stamps), and its channels named as the model matches them.

Only metadata and the two ledger arrays ``block_done`` and ``block_stamp`` are
read here: an incremental ``analyze`` must cost what is new, so neither the
``time`` index nor any coefficient chunk is opened until a fit or a label
asks for it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import typing as T

import numpy as np

from ..errors import InputError
from ..inputs.grid import Blocks
from .layout import Layout


@dataclasses.dataclass
class StationInput:
    """One station group's coefficients, read lazily, and its ledger as the analysis needs it.

    Attributes
    ----------
    key : str
        ``NET.STA.LOC``.
    group : zarr.Group
        The station group (metadata and the arrays a label task reads).
    chunk : int
        Windows per block (the analysis labels block by block).
    min_coverage : float
    complete : numpy.ndarray of bool
        Per block: marked done with all its windows. Windows of other blocks (pending, failed,
        without data, grown since) are neither sampled nor labelled: cluster -1, NaN.
    stamps : numpy.ndarray of int64
        Per block, the ledger's ``block_stamp`` (0 when the store has none).
    match : str
        ``"code"`` or ``"component"`` (``analysis.match``).
    reader : StoreReader
        Opens :attr:`ds` when a fit needs it.
    """

    key: str
    group: T.Any  # zarr.Group
    chunk: int
    min_coverage: float
    complete: np.ndarray = None
    stamps: np.ndarray = None
    match: str = "code"
    reader: T.Any = None

    @functools.cached_property
    def ds(self):
        """The station group as a lazy xarray Dataset (opening it reads the whole ``time`` index:
        only fitting and its diagnostics ask)."""
        return self.reader.dataset(self.key)

    @functools.cached_property
    def n(self) -> int:
        return int(self.group["time"].shape[0])

    @functools.cached_property
    def channel_ids(self) -> list[str]:
        """SEED ids ``NET.STA.LOC.CHA``, in the group's order."""
        return [str(c) for c in self.group["channel"][:]]

    @property
    def codes(self) -> list[str]:
        full = [c.split(".")[-1] for c in self.channel_ids]
        return [c[-1:] for c in full] if self.match == "component" else full

    @property
    def shard(self) -> int:
        """Blocks per shard of the group's data arrays (``shard_blocks``; 1 when absent)."""
        return int(self.group.attrs.get("shard_blocks", 1))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.group["order_1"].dtype)

    @property
    def has_order_2(self) -> bool:
        return "order_2" in self.group

    def layout(self) -> Layout:
        f2 = np.asarray(self.group["f2"][:], dtype=float) if self.has_order_2 else None
        return Layout(tuple(self.codes), np.asarray(self.group["f1"][:], dtype=float), f2, self.match)

    def permutation(self, layout: Layout) -> list[int]:
        """The group's channel index of each of ``layout``'s codes."""
        return [self.codes.index(c) for c in layout.codes]

    def times_ns(self, k0: int, k1: int) -> np.ndarray:
        """Start times (int64 ns since 1970) of windows ``k0 .. k1-1``, from the group's grid
        attributes (as the run that wrote them computed them); read from ``time`` (those windows
        only) in a group written without them."""
        from ..inputs.grid import Grid

        a = self.group.attrs
        if all(k in a for k in ("grid_origin_ns", "sampling_rate_hz", "bins", "hop_samples")):
            grid = Grid(int(a["grid_origin_ns"]), float(a["sampling_rate_hz"]), int(a["bins"]), int(a["hop_samples"]))
            return grid.start_ns(np.arange(k0, k1))
        from ..store.reader import decode_times

        return decode_times(self.group["time"], slice(k0, k1)).astype(np.int64)

    def raw(self, layout: Layout, dtype=np.float64):
        """The raw coefficients in ``layout``'s feature order, a Dask array (time, feature) in ``dtype``
        (None: the store's), chunked like the store along time; NaN in blocks not complete."""
        import dask.array as da

        perm = self.permutation(layout)
        parts = [self.ds["order_1"].data[:, perm, :].reshape(self.n, -1)]
        if layout.f2 is not None:
            parts.append(self.ds["order_2"].data[:, perm, :, :].reshape(self.n, -1))
        out = da.concatenate(parts, axis=1)
        out = (out if dtype is None else out.astype(dtype)).rechunk({0: self.chunk, 1: -1})
        if self.complete is not None and not self.complete.all():
            # The ledger, not the values, says which windows hold results (a failed block of a store
            # written before failures cleared their data still holds its old numbers).
            ok = da.from_array(np.repeat(self.complete, self.chunk)[: self.n, None], chunks=(self.chunk, 1))
            out = da.where(ok, out, np.nan).astype(out.dtype)
        return out


def select_stations(reader, patterns) -> list[str]:
    """The store's station keys matching any of the fnmatch ``patterns`` (``analysis.stations``).

    Raises
    ------
    InputError
        No station matches.
    """
    stations = reader.stations
    chosen = [s for s in stations if any(fnmatch.fnmatchcase(s, p) for p in patterns)]
    if not chosen:
        raise InputError(f"{reader.path}: no station matches analysis.stations {list(patterns)}; "
                         f"the store has: {', '.join(stations) or 'none'}")
    return chosen


def station_inputs(reader, keys: list[str], skipped: list, match: str = "code") -> list[StationInput]:
    """The stations ``keys`` as :class:`StationInput`; a group that is not a scatflow station or has
    no windows is appended to ``skipped`` as ``(key, why)``.

    Raises
    ------
    InputError
        With ``match = "component"``, a station with several channels of one component.
    """
    out = []
    for key in keys:
        absent = reader.missing_arrays(key)
        if absent:
            skipped.append((key, f"not a scatflow station group (missing {', '.join(absent)})"))
            continue
        st = reader.station(key)
        if st.n == 0:
            skipped.append((key, "no windows"))
            continue
        g = st.group
        chunk = int(st.attrs.get("block_windows") or g["coverage"].chunks[0])
        blocks = Blocks(chunk, st.n)
        # The ledger rule "done with all its windows" (StationGroup.complete_blocks) from block_done
        # alone: the other ledger arrays are not needed here, and are not read.
        done = np.zeros(blocks.count, dtype=np.int64)
        got = np.asarray(g["block_done"][:], dtype=np.int64)[: blocks.count]
        done[: len(got)] = got
        complete = done == np.minimum(chunk, st.n - np.arange(blocks.count, dtype=np.int64) * chunk)
        stamps = np.zeros(blocks.count, dtype=np.int64)
        if "block_stamp" in g:
            got = np.asarray(g["block_stamp"][:], dtype=np.int64)[: blocks.count]
            stamps[: len(got)] = got
        s = StationInput(key, g, chunk, float(st.attrs.get("min_coverage", 1.0)), complete, stamps, match, reader)
        if match == "component":
            ids = s.channel_ids
            twice = [c for c in ids if s.codes.count(c.split(".")[-1][-1:]) > 1]
            if twice:
                raise InputError(f"analysis.match = 'component': station {key} has several channels of one "
                                 f"component ({', '.join(twice)}); compute one band per station ([input] select) "
                                 "or set match = 'code'")
        out.append(s)
    return out
