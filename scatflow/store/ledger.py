"""The ledger rule: when is a block complete, failed, missing its data, or still to do.

Each station group keeps, per block, the number of windows its task wrote
(``block_done``, 0 = not done), why it failed (``block_error``) and the input
files it read (``block_files``); :mod:`scatflow.store.writer` reads and writes those
arrays. This module is the one definition of what they mean, asked by the
planner (what to compute), ``scatflow info`` and ``scatflow plot`` alike:

* **complete**: ``block_done`` equals the windows the block holds, its data is
  in the store and its input files are those it read;
* **missing data**: marked done, but its data chunks are gone (deleted by hand):
  it is computed again;
* **inputs changed**: done, but an input file grew or was rewritten, or a new
  one covers its span (late data): it is computed again, whole (a file that is
  merely gone changes nothing: pruning raw data never throws results away);
* **no data**: not done because the archive had no usable data for any of its
  windows (an outage, not an error; ``block_notes`` says so): retried later;
* **failed**: not done, with a reason recorded (retried by the next run);
* **pending**: anything else (never run, in flight, or grown since it ran).

A task writes its data before its ``block_done`` cell, so a block is never
complete without its data (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing as T

import numpy as np

import zarr

from ..inputs.grid import Blocks
from ..inputs.records import as_current
from ..inputs.wavefile import file_digest

COMPLETE, MISSING, CHANGED, NO_DATA, FAILED, PENDING = (
    "complete", "missing data", "inputs changed", "no data", "failed", "pending")


def _records(text) -> list:
    """A ``block_files`` cell: JSON list of ``{path, size, mtime, blake2b}`` ([] when empty)."""
    text = str(text)
    return json.loads(text) if text else []


def _notes(text) -> dict:
    """A ``block_notes`` cell: JSON object ({} when empty)."""
    text = str(text)
    return json.loads(text) if text else {}


def consecutive(blocks: T.Iterable[int]) -> list[list[int]]:
    """Blocks grouped into runs of consecutive numbers: ``[0, 1, 2, 5]`` -> ``[[0, 1, 2], [5]]``."""
    runs: list[list[int]] = []
    for b in sorted(blocks):
        if runs and runs[-1][-1] == b - 1:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def same_content(recorded: dict, current: dict) -> bool:
    """Whether a recorded input and a current one (same relative path and size) name the same
    bytes, by what can be known without reading them: the same mtime (POSIX files), the same
    ETag (objects), or an object whose ETag is the MD5 of its bytes (a single-part upload) equal
    to the ``md5`` a worker recorded when it read the file (an archive copied from disk to an
    object store). Response records compare by their ``digest``."""
    if recorded.get("digest") != current.get("digest"):
        return False
    if current.get("mtime") is not None and current.get("mtime") == recorded.get("mtime"):
        return True
    etag = current.get("etag")
    if etag is not None:
        if etag == recorded.get("etag"):
            return True
        md5 = etag_md5(etag)
        return md5 is not None and md5 == recorded.get("md5")
    return False


def etag_md5(etag: str) -> str | None:
    """The MD5 (hex) an ETag states, or None (multipart uploads' ETags, ``HASH-PARTS``, do not)."""
    etag = str(etag).strip('"')
    return etag.lower() if len(etag) == 32 and all(ch in "0123456789abcdefABCDEF" for ch in etag) else None


def _matching(recorded: list[dict], current: list[dict]) -> dict[int, list[dict]]:
    """For each current record (by index), the recorded ones naming its bytes."""
    by: dict[tuple, list[dict]] = {}
    for r in as_current(recorded, current):
        by.setdefault((r["path"], r["size"]), []).append(r)
    return {i: [r for r in by.get((c["path"], c["size"]), []) if same_content(r, c)] for i, c in enumerate(current)}


def inputs_differ(recorded: T.Iterable[dict], current: T.Iterable[dict]) -> bool:
    """Whether a block's inputs now differ from those it was computed from: a file it read grew or
    was rewritten, or a new file falls in its span. A file that is merely gone does not count:
    pruning raw data never throws away results computed from it. Paths compare relative to the
    archive's root (absolute ones of older stores by their trailing part: :func:`as_current`),
    so an archive moved or mounted elsewhere is the same input; contents compare as
    :func:`same_content` says. A file's content hash (``blake2b``) is not compared: planning
    compares what a ``stat`` (or an object's ``HEAD``) says."""
    current = list(current)
    return not all(_matching(list(recorded), current).values())


def contents_differ(recorded: T.Iterable[dict], current: T.Iterable[dict]) -> list[str]:
    """Recorded input files whose bytes now differ from those the block read, whatever their size
    and mtime say (a same-size rewrite with its mtime restored: ``cp -p``, ``rsync -t``).

    Reads every file again: a deliberate check, too costly for every night's planning (see
    ``docs/architecture.md``). Records without ``blake2b`` (stores written before it was recorded,
    response records) are not checked, nor files that are gone or whose size or mtime changed
    (:func:`inputs_differ` counts those already).

    Parameters
    ----------
    recorded : iterable of dict
        A block's records, as stored.
    current : iterable of dict
        The records of the files its read span touches now, each with ``file``, where it is
        (:meth:`scatflow.inputs.sources.Source.input_records`).

    Returns
    -------
    list of str
        Where the changed files are now, in the order recorded.
    """
    current = [c for c in current if "file" in c]
    recorded = as_current(list(recorded), current)
    changed = []
    for r in recorded:
        # Two globs' files may share a relative path, size and mtime: the record is unchanged
        # when either holds its bytes.
        paths = [c["file"] for c in current
                 if (c["path"], c["size"]) == (r["path"], r["size"]) and same_content(r, c)]
        if r.get("blake2b") and paths and all(file_digest(p) != r["blake2b"] for p in paths):
            changed.append(paths[0])
    return changed


class _Cells:
    """One text array of the ledger, read a chunk at a time when a cell is first asked for
    (planning a nightly run reads only the chunks of the blocks it considers)."""

    def __init__(self, values, parse, empty, n: int, chunk: int = 0):
        self.values, self.parse, self.empty, self.n = values, parse, empty, n
        self.length = 0 if values is None else (values.shape[0] if hasattr(values, "shape") else len(values))
        self.chunk = chunk or max(self.length, 1)
        self.cache: dict[int, list] = {}
        self.parsed: dict[int, T.Any] = {}

    def __getitem__(self, b: int):
        if self.values is None or b >= min(self.n, self.length):
            return self.empty
        c = b // self.chunk
        if c not in self.cache:
            lo = c * self.chunk
            self.cache[c] = list(self.values[lo : min(lo + self.chunk, self.length)])
        text = self.cache[c][b - c * self.chunk]
        if not str(text):
            return self.empty
        if b not in self.parsed:
            self.parsed[b] = self.parse(text)
        return self.parsed[b]

    def __len__(self) -> int:
        return self.n


@dataclasses.dataclass(frozen=True)
class Ledger:
    """The recorded state of one station group's blocks.

    States come from the ledger arrays alone; the inputs (and the data) of a complete block
    are checked only for the blocks in ``recheck`` (planning: the recent blocks, or all with
    ``--recheck-all``), so a plan costs what it considers, not what the store holds.

    Attributes
    ----------
    blocks : Blocks
        The group's blocking, over the windows the group holds (or will hold
        once a planned growth is written: then the grown blocks are not done).
    done : ndarray of int64, (blocks.count,)
        Windows written per block (0 = not done).
    errors : sequence of str, (blocks.count,)
        Failure reasons ("" when none), read lazily.
    has_data : callable(int) -> bool
        Whether block ``b``'s data is in the store; asked only for complete blocks in ``recheck``.
    files : sequence of list
        Input file records per block, read lazily.
    notes : sequence of dict
        ``no_data``, ``conflicting``, ``nonfinite``... per block (absent when none).
    inputs_changed : callable(int, list) -> bool
        Whether block ``b``'s inputs differ from its recorded ``files``; asked only for complete
        blocks in ``recheck``, at most once each.
    recheck : callable(int) -> bool
        Which complete blocks have their inputs (and, with ``check_data``, data) checked.
    check_data : bool
        Whether ``has_data`` is asked at all (a full check: ``--recheck-all``).
    summary : sequence of dict
        Per block: mean coverage and NaN windows per channel (``block_summary``), read lazily.
    """

    blocks: Blocks
    done: np.ndarray
    errors: T.Any
    has_data: T.Callable[[int], bool]
    files: T.Any = ()
    notes: T.Any = ()
    inputs_changed: T.Callable[[int, list], bool] = lambda b, files: False
    recheck: T.Callable[[int], bool] = lambda b: True
    summary: T.Any = ()
    check_data: bool = True

    @classmethod
    def from_arrays(cls, blocks: Blocks, done, errors, has_data=lambda b: True, files=(), notes=(),
                    inputs_changed=lambda b, files: False, recheck=lambda b: True, summary=(),
                    chunk: int = 0, check_data: bool = True) -> "Ledger":
        """A ledger from stored arrays (NumPy or Zarr), which may be shorter than
        ``blocks.count`` (an extension in progress: absent entries are "not done") or longer
        (ignored). Text arrays are read ``chunk`` cells at a time, when first needed."""
        n = blocks.count
        full = np.zeros(n, dtype=np.int64)
        done = np.asarray(done[:] if hasattr(done, "shape") else done, dtype=np.int64)[:n]
        full[: len(done)] = done
        files = _Cells(files, _records, [], n, chunk)
        changed = functools.lru_cache(maxsize=None)(lambda b: inputs_changed(b, files[b]))
        return cls(blocks, full, _Cells(errors, str, "", n, chunk), functools.lru_cache(maxsize=None)(has_data),
                   files, _Cells(notes, _notes, {}, n, chunk), lambda b, _files: changed(b), recheck,
                   _Cells(summary, _notes, {}, n, chunk), check_data)

    @functools.cached_property
    def complete_mask(self) -> np.ndarray:
        """Per block, whether the ledger marks it done with all its windows (before any recheck)."""
        b = self.blocks
        expected = np.full(b.count, b.chunk, dtype=np.int64)
        if b.count:
            expected[-1] = b.n - (b.count - 1) * b.chunk
        return (self.done > 0) & (self.done == expected)

    def state(self, b: int) -> str:
        """One of the states above (``"complete"``, ``"missing data"``, ...) for block ``b``."""
        if self.complete_mask[b]:
            if self.recheck(b):
                if self.check_data and not self.has_data(b):
                    return MISSING
                if self.inputs_changed(b, self.files[b]):
                    return CHANGED
            return COMPLETE
        done = int(self.done[b])
        if done > 0 and self.check_data and not self.has_data(b):
            return MISSING
        if done == 0 and self.notes[b].get("no_data"):
            return NO_DATA
        if done == 0 and self.errors[b]:
            return FAILED
        return PENDING

    def note(self, b: int, key: str, default=0):
        """Block ``b``'s note ``key`` (``conflicting``, ``nonfinite``, ``no_data``)."""
        return self.notes[b].get(key, default)

    def is_complete(self, b: int) -> bool:
        """Whether block ``b`` needs no computing."""
        return self.state(b) == COMPLETE

    def where(self, state: str, blocks: T.Iterable[int] | None = None) -> list[int]:
        """Blocks (all, or among ``blocks``) in ``state``, ascending."""
        candidates = np.arange(self.blocks.count) if blocks is None else np.unique(np.fromiter(blocks, np.int64))
        complete = self.complete_mask[candidates] if len(candidates) else np.zeros(0, bool)
        checked = [int(b) for b in candidates[complete] if self.recheck(int(b))]
        if state == COMPLETE:
            unchecked = set(int(b) for b in candidates[complete]) - set(checked)
            return sorted(unchecked | {b for b in checked if self.state(b) == COMPLETE})
        return sorted([int(b) for b in candidates[~complete] if self.state(int(b)) == state]
                      + [b for b in checked if self.state(b) == state])

    def todo(self, blocks: T.Iterable[int]) -> list[int]:
        """Blocks among ``blocks`` that a run must compute (all but the complete), ascending."""
        candidates = np.unique(np.fromiter(blocks, np.int64))
        if not len(candidates):
            return []
        complete = self.complete_mask[candidates]
        out = [int(b) for b in candidates[~complete]]
        out += [int(b) for b in candidates[complete] if self.recheck(int(b)) and not self.is_complete(int(b))]
        return sorted(out)


def block_has_data(group: zarr.Group, b: int, chunk: int) -> bool:
    """Whether block ``b``'s data is in ``group``: a written block's ``coverage`` is a number
    (0 where nothing was recorded), never the fill value NaN. Read only by ``--recheck-all``."""
    return bool(np.isfinite(np.asarray(group["coverage"][b * chunk : (b + 1) * chunk])).any())


def read_ledger(group: zarr.Group, n: int | None = None, inputs_changed=None, recheck=None,
                check_data: bool = False) -> Ledger:
    """The ledger of a station group, over its ``n`` windows (default: its time length).

    ``n`` larger than the stored length gives the ledger after a planned growth.
    ``inputs_changed(b, files)`` tells whether block ``b``'s recorded input files
    ``files`` differ from what is on disk now (default: never: records name files relative
    to the archive's root, which only the input's description knows; the planner passes
    its own); it is asked only for the complete blocks ``recheck(b)`` selects (default:
    none, so the states are the ledger's alone), and the data (coverage) is read only with
    ``check_data``.
    """
    n = int(group["time"].shape[0]) if n is None else n
    chunk = int(group.attrs.get("block_windows") or group["coverage"].chunks[0])
    arrays = dict(group.arrays())
    text = {name: arrays.get(name) for name in ("block_error", "block_files", "block_notes", "block_summary")}
    ledger_chunk = int(arrays["block_done"].chunks[0])
    return Ledger.from_arrays(Blocks(chunk, n), arrays["block_done"], text["block_error"],
                              lambda b: block_has_data(group, b, chunk),
                              files=text["block_files"], notes=text["block_notes"],
                              inputs_changed=inputs_changed or (lambda b, files: False),
                              recheck=recheck or (lambda b: False), summary=text["block_summary"],
                              chunk=ledger_chunk, check_data=check_data)
