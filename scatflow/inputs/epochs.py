"""Responses by epoch: which channel epoch's response corrects each sample, and the block records.

ObsPy corrects a whole trace with the response in force at its first sample,
and at an instant where one epoch ends and the next starts it matches both and
returns the first (the old one, with a warning). Here each sample gets the
response of the epoch in force at its own time, by one rule:

- among the epochs with ``start <= t <= end``, the one that starts last
  applies (so at ``end == start`` the new epoch applies, and an epoch that
  overlaps a later one gives way to it from the later one's start);
- where no epoch is in force between two epochs, the time is bridged when both
  sides have the same response values, and is otherwise a *hole*: its samples
  count as not recorded;
- before the first epoch or after the last, there is no response: a recorded
  sample there fails the block (the inventory is behind the data).

A channel's time is thus split into *pieces* of one response each; adjacent
pieces with the same values are one piece, so an epoch boundary where nothing
changes costs nothing. :func:`scatflow.inputs.process.process` cuts the data where
the response changes and treats the cut as a data edge.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import typing as T
import warnings

import numpy as np

from ..errors import InputError
from .preprocess import OBSPY_OUTPUT

#: Earliest and latest instants (ns since 1970) standing for open epoch dates.
FAR = 2 ** 62


@dataclasses.dataclass(frozen=True)
class Piece:
    """A stretch ``[start_ns, end_ns)`` of a channel's time with one response.

    Attributes
    ----------
    start_ns, end_ns : int
        ns since 1970, end exclusive.
    response : obspy Response or None
        None in a hole between epochs or outside every epoch.
    digest : str
        The response values' digest; ``"none"`` in a hole, ``""`` outside every epoch.
    parts : tuple of (int, Response)
        Where each epoch merged into the piece starts applying, and its response.
    """

    start_ns: int
    end_ns: int
    response: T.Any
    digest: str
    parts: tuple = ()

    def response_at(self, t_ns: int):
        """The response of the epoch in force at ``t_ns`` (same values as :attr:`response`)."""
        return next((r for a, r in reversed(self.parts) if a <= t_ns), self.response)

    @property
    def outside(self) -> bool:
        """Before the first epoch or after the last one."""
        return self.digest == ""


def epochs(inv, seed_id: str) -> list:
    """``(station, channel)`` of every epoch of ``seed_id`` in ``inv``, in inventory order."""
    net, sta, loc, cha = seed_id.split(".")
    out = []
    for n in inv.networks:
        if n.code != net:
            continue
        for s in n.stations:
            if s.code != sta:
                continue
            out += [(s, c) for c in s.channels if c.code == cha and c.location_code == loc]
    return out


def bounds(obj) -> tuple[int, int]:
    """``(start, end)`` ns of an epoch, both inclusive (open dates are :data:`FAR`)."""
    return (obj.start_date.ns if obj.start_date is not None else -FAR,
            obj.end_date.ns if obj.end_date is not None else FAR)


class Responses:
    """The responses of an inventory by epoch: pieces per channel and the records of a block.

    A block's record ``{"path": "response:ID", "size": 0, "mtime": 0, "digest": D}``
    sits beside its file records in its ledger. ``D`` lists the digests of the
    response values of the pieces its read span touches (one digest when one
    response covers it, as before epochs were cut) and, when it holds several,
    the instants where they change: correcting an epoch's response, adding an
    epoch or moving a change recomputes exactly the blocks whose read spans
    touch it, while extending an epoch's end date, or splitting an epoch into
    two with the same values, changes nothing already computed.

    Parameters
    ----------
    pre : Preprocess
        Only ``pre.response`` is read (``sensitivity`` digests the overall
        sensitivity, the full responses their values at 61 frequencies).
    inv : obspy.Inventory
    """

    def __init__(self, pre, inv):
        self.pre, self.inv = pre, inv
        self._cache: dict[str, tuple[list, list]] = {}

    def _digest(self, response) -> str:
        try:
            with warnings.catch_warnings():
                # The same warnings come back, recorded in the block's notes, when the response is used.
                warnings.simplefilter("ignore")
                if self.pre.response == "sensitivity":
                    values = np.array([response.instrument_sensitivity.value])
                else:
                    freqs = np.logspace(-3, 2, 61)
                    values = response.get_evalresp_response_for_frequencies(freqs,
                                                                            output=OBSPY_OUTPUT[self.pre.response])
            return hashlib.sha1(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]
        except Exception as exc:  # noqa: BLE001 - an unusable response is an input too
            return "unusable:" + hashlib.sha1(str(exc).encode()).hexdigest()[:8]

    def _channel(self, seed_id: str) -> tuple[list, list]:
        """The channel's pieces over all time and its overlaps ``(start, end, note)`` (cached)."""
        if seed_id not in self._cache:
            rows = []
            for _, c in epochs(self.inv, seed_id):
                a, b = bounds(c)
                rows.append((a, b, c, self._digest(c.response)))
            self._cache[seed_id] = _pieces(rows)
        return self._cache[seed_id]

    def pieces(self, seed_id: str, t0_ns: int, t1_ns: int) -> list[Piece]:
        """The pieces of ``seed_id`` over ``[t0_ns, t1_ns]``, clipped to it."""
        out = []
        for p in self._channel(seed_id)[0]:
            if p.end_ns > t0_ns and p.start_ns <= t1_ns:
                out.append(dataclasses.replace(p, start_ns=max(p.start_ns, t0_ns), end_ns=min(p.end_ns, t1_ns + 1)))
        return out

    def overlaps(self, seed_id: str, t0_ns: int, t1_ns: int) -> list[str]:
        """Notes on overlapping epochs with different responses within ``[t0_ns, t1_ns]``."""
        return [note for a, b, note in self._channel(seed_id)[1] if a <= t1_ns and b > t0_ns]

    def records(self, channels: T.Iterable[str], t0_ns: int, t1_ns: int) -> list[dict]:
        """The response records of ``channels`` for a read span ``[t0_ns, t1_ns]`` (ns)."""
        if self.pre.response == "none":
            return []
        out = []
        for seed_id in channels:
            used = [p for p in self.pieces(seed_id, t0_ns, t1_ns) if not p.outside]
            if not used:
                # No response in the span (a channel installed later): no record, so a channel that
                # joins a station recomputes only the blocks its epochs reach. Samples needing one
                # fail their block anyway, and a record with an empty digest, as older stores hold,
                # still compares equal (a record that is only gone changes nothing).
                continue
            digest = ",".join(p.digest for p in used)
            if len(used) > 1:
                digest += "@" + ",".join(str(p.start_ns) for p in used[1:])
            out.append({"path": f"response:{seed_id}", "size": 0, "mtime": 0, "digest": digest})
        return out


@dataclasses.dataclass(frozen=True)
class Lattice:
    """The raw sample lattice of one read: sample ``j`` is at ``origin_ns + (i_a + j) / raw``."""

    origin_ns: int
    i_a: int
    raw: float

    def time(self, j: int) -> int:
        """ns since 1970 of sample ``j``."""
        return self.origin_ns + int(round((self.i_a + j) * 1e9 / self.raw))

    def first_at(self, t_ns: int, n: int) -> int:
        """The first sample ``j`` in ``[0, n]`` with ``time(j) >= t_ns`` (``n`` when none)."""
        j = min(max(math.ceil((t_ns - self.origin_ns) * self.raw / 1e9 - self.i_a), 0), n)
        while j > 0 and self.time(j - 1) >= t_ns:
            j -= 1
        while j < n and self.time(j) < t_ns:
            j += 1
        return j


def by_response(rec: np.ndarray, lattice: Lattice, seed_id: str, responses: Responses,
                 notes: list) -> list[tuple[int, int, Piece]]:
    """``(j0, j1, piece)`` of each response piece over the raw samples ``[0, len(rec))``, in order.

    Samples in a hole between epochs are set not recorded in ``rec`` (and noted); a recorded
    sample outside every epoch is an InputError naming the channel and its time.
    """
    from obspy import UTCDateTime

    n = len(rec)
    spans = []
    for p in responses.pieces(seed_id, lattice.time(0), lattice.time(n - 1)):
        j0, j1 = lattice.first_at(p.start_ns, n), lattice.first_at(p.end_ns, n)
        if j1 <= j0:
            continue
        hit = np.flatnonzero(rec[j0:j1])
        if hit.size and p.outside:
            raise InputError(f"{seed_id}: no usable response in preprocess.inventory at "
                             f"{UTCDateTime(ns=lattice.time(j0 + hit[0]))} (no channel epoch in force then)")
        if hit.size and p.response is None:
            rec[j0:j1] = False
            notes.append(f"{seed_id}: {hit.size} sample(s) from {UTCDateTime(ns=lattice.time(j0 + hit[0]))} to "
                         f"{UTCDateTime(ns=lattice.time(j0 + hit[-1]))} not recorded: no channel epoch in force "
                         "between two epochs with different responses")
        spans.append((j0, j1, p))
    notes += [f"{seed_id}: {note}" for note in responses.overlaps(seed_id, lattice.time(0), lattice.time(n - 1))]
    return spans


def split(runs: list[tuple[int, int]], cuts: list[int]) -> list[tuple[int, int]]:
    """``runs`` cut at each index of ``cuts`` falling inside one (where the response changes)."""
    out = []
    for a, b in runs:
        for c in cuts:
            if a < c < b:
                out.append((a, c))
                a = c
        out.append((a, b))
    return out


def _pieces(rows: list) -> tuple[list[Piece], list]:
    """Pieces over all time from epochs ``(start, end inclusive, channel, digest)``, by the rule above."""
    if not rows:
        return [Piece(-FAR, FAR, None, "")], []
    edges = sorted({-FAR, FAR} | {a for a, _, _, _ in rows} | {min(b + 1, FAR) for _, b, _, _ in rows})
    raw, overlaps = [], []
    for x, y in zip(edges[:-1], edges[1:]):
        now = [r for r in rows if r[0] <= x <= r[1]]
        if now:
            # The latest start applies; among epochs starting together, the last listed (a later entry corrects).
            pick = max(enumerate(now), key=lambda e: (e[1][0], e[0]))[1]
            if y - x > 1 and len({r[3] for r in now}) > 1:
                overlaps.append((x, y, f"epochs overlap from {_iso(x)} to {_iso(y - 1)} with "
                                       f"different responses; the one starting {_iso(pick[0])} applies"))
            raw.append(Piece(x, y, pick[2].response, pick[3], ((x, pick[2].response),)))
        else:
            raw.append(Piece(x, y, None, "" if x < min(r[0] for r in rows) or x > max(r[1] for r in rows)
                             else "none"))
    # Bridge holes between two epochs with the same values, then merge equal neighbours.
    for i, p in enumerate(raw):
        if p.digest == "none" and 0 < i < len(raw) - 1 and raw[i - 1].digest == raw[i + 1].digest:
            raw[i] = dataclasses.replace(p, response=raw[i - 1].response, digest=raw[i - 1].digest, parts=())
    merged = [raw[0]]
    for p in raw[1:]:
        if p.digest == merged[-1].digest:
            merged[-1] = dataclasses.replace(merged[-1], end_ns=p.end_ns, parts=merged[-1].parts + p.parts)
        else:
            merged.append(p)
    return merged, overlaps


def _iso(t_ns: int) -> str:
    from obspy import UTCDateTime

    return str(UTCDateTime(ns=t_ns))
