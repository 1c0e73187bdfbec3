"""The stations an analysis reads: selected by pattern, each group's coefficients
(lazy) with the ledger facts the analysis needs (which blocks are complete,
their stamps), and its channels named as the model matches them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import typing as T

import numpy as np

from ..errors import InputError
from .layout import Layout


@dataclasses.dataclass
class StationInput:
    """One station group's coefficients, read lazily, and its ledger as the analysis needs it.

    Attributes
    ----------
    key : str
        ``NET.STA.LOC``.
    ds : xarray.Dataset
        The station group, lazy.
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
    """

    key: str
    ds: T.Any  # xr.Dataset, lazy
    chunk: int
    min_coverage: float
    complete: np.ndarray = None
    stamps: np.ndarray = None
    match: str = "code"

    @property
    def n(self) -> int:
        return int(self.ds.sizes["time"])

    @property
    def codes(self) -> list[str]:
        full = [str(c).split(".")[-1] for c in self.ds["channel"].values]
        return [c[-1:] for c in full] if self.match == "component" else full

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.ds["order_1"].dtype)

    def layout(self) -> Layout:
        f2 = np.asarray(self.ds["f2"].values, dtype=float) if "order_2" in self.ds else None
        return Layout(tuple(self.codes), np.asarray(self.ds["f1"].values, dtype=float), f2, self.match)

    def raw(self, layout: Layout, dtype=np.float64):
        """The raw coefficients in ``layout``'s feature order, a Dask array (time, feature) in ``dtype``
        (None: the store's), chunked like the store along time; NaN in blocks not complete."""
        import dask.array as da

        perm = [self.codes.index(c) for c in layout.codes]
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
        ds = reader.dataset(key)
        if st.n == 0:
            skipped.append((key, "no windows"))
            continue
        chunk = st.blocks.chunk
        blocks = st.blocks.count
        complete = st.complete_blocks()
        g = st.group
        stamps = np.zeros(blocks, dtype=np.int64)
        if "block_stamp" in g:
            got = np.asarray(g["block_stamp"][:], dtype=np.int64)[:blocks]
            stamps[: len(got)] = got
        s = StationInput(key, ds, chunk, float(st.attrs.get("min_coverage", 1.0)), complete, stamps, match)
        if match == "component":
            ids = [str(c) for c in ds["channel"].values]
            twice = [c for c in ids if s.codes.count(c.split(".")[-1][-1:]) > 1]
            if twice:
                raise InputError(f"analysis.match = 'component': station {key} has several channels of one "
                                 f"component ({', '.join(twice)}); compute one band per station ([input] select) "
                                 "or set match = 'code'")
        out.append(s)
    return out
