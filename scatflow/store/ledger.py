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
import os
import typing as T

import numpy as np

from ..inputs.grid import Blocks
from ..inputs.wavefile import file_digest

COMPLETE, MISSING, CHANGED, NO_DATA, FAILED, PENDING = (
    "complete", "missing data", "inputs changed", "no data", "failed", "pending")


def _records(text) -> list:
    """A ``block_files`` cell: JSON list of ``{path, size, mtime}`` ([] when empty)."""
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


def file_key(records: T.Iterable[dict]) -> set:
    """What identifies a set of input records: (path, size, mtime, digest) of each (the digest
    of a channel's response, for ``response:`` records; None for files). A file's content hash
    (``blake2b``) is not part of it: planning compares what ``os.stat`` says, so records written
    before the hash was recorded, and the ones planning makes from ``stat``, compare alike."""
    return {(r["path"], r["size"], r["mtime"], r.get("digest")) for r in records}


def inputs_differ(recorded: T.Iterable[dict], current: T.Iterable[dict]) -> bool:
    """Whether a block's inputs now differ from those it was computed from: a file it read grew or
    was rewritten, or a new file falls in its span. A file that is merely gone does not count:
    pruning raw data never throws away results computed from it."""
    return bool(file_key(current) - file_key(recorded))


def contents_differ(recorded: T.Iterable[dict]) -> list[str]:
    """Recorded input files whose bytes now differ from those the block read, whatever their size
    and mtime say (a same-size rewrite with its mtime restored: ``cp -p``, ``rsync -t``).

    Reads every file again: a deliberate check, too costly for every night's planning (see
    ``docs/architecture.md``). Records without ``blake2b`` (stores written before it was recorded,
    response records) and files that are gone are not checked.

    Returns
    -------
    list of str
        Paths, in the order recorded.
    """
    changed = []
    for r in recorded:
        if r.get("blake2b") and os.path.isfile(r["path"]) and file_digest(r["path"]) != r["blake2b"]:
            changed.append(r["path"])
    return changed


def recorded_files_changed(b: int, records: list) -> bool:
    """Whether any recorded input file of a block now has another size or mtime.

    Without the input's description only the files a block read can be checked;
    the planner also sees new files (:func:`scatflow.workflow.plan.make_plan`).
    """
    for r in records:
        try:
            st = os.stat(r["path"])
        except OSError:
            continue  # gone: see inputs_differ
        if st.st_size != r["size"] or st.st_mtime != r["mtime"]:
            return True
    return False


@dataclasses.dataclass(frozen=True)
class Ledger:
    """The recorded state of one station group's blocks.

    Attributes
    ----------
    blocks : Blocks
        The group's blocking, over the windows the group holds (or will hold
        once a planned growth is written: then the grown blocks are not done).
    done : ndarray of int64, (blocks.count,)
        Windows written per block (0 = not done).
    errors : tuple of str, (blocks.count,)
        Failure reasons ("" when none).
    has_data : callable(int) -> bool
        Whether block ``b``'s data is in the store; asked only for blocks marked
        done, at most once each.
    files : tuple of list
        Input file records (path, size, mtime) per block.
    notes : tuple of dict
        ``no_data``, ``conflicting``, ``nonfinite`` per block (absent when none).
    inputs_changed : callable(int, list) -> bool
        Whether block ``b``'s inputs differ from its recorded ``files``; asked only
        for complete blocks, at most once each.
    """

    blocks: Blocks
    done: np.ndarray
    errors: tuple
    has_data: T.Callable[[int], bool]
    files: tuple = ()
    notes: tuple = ()
    inputs_changed: T.Callable[[int, list], bool] = lambda b, files: False

    @classmethod
    def from_arrays(cls, blocks: Blocks, done, errors, has_data=lambda b: True, files=(), notes=(),
                    inputs_changed=lambda b, files: False) -> "Ledger":
        """A ledger from stored arrays, which may be shorter than ``blocks.count`` (an
        extension in progress: absent entries are "not done") or longer (ignored)."""
        n = blocks.count

        def cells(values, parse, empty):
            parsed = tuple(parse(v) for v in list(values)[:n])
            return parsed + (empty,) * (n - len(parsed))

        full = np.zeros(n, dtype=np.int64)
        done = np.asarray(done, dtype=np.int64)[:n]
        full[: len(done)] = done
        files = cells(files, _records, [])
        changed = functools.lru_cache(maxsize=None)(lambda b: inputs_changed(b, files[b]))
        return cls(blocks, full, cells(errors, str, ""), functools.lru_cache(maxsize=None)(has_data), files,
                   cells(notes, _notes, {}), lambda b, _files: changed(b))

    def state(self, b: int) -> str:
        """One of the states above (``"complete"``, ``"missing data"``, ...) for block ``b``."""
        done = int(self.done[b])
        if done > 0 and not self.has_data(b):
            return MISSING
        if done > 0 and done == self.blocks.expected(b):
            return CHANGED if self.inputs_changed(b, self.files[b]) else COMPLETE
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
        candidates = range(self.blocks.count) if blocks is None else sorted(blocks)
        return [b for b in candidates if self.state(b) == state]

    def todo(self, blocks: T.Iterable[int]) -> list[int]:
        """Blocks among ``blocks`` that a run must compute (all but the complete), ascending."""
        return [b for b in sorted(blocks) if not self.is_complete(b)]
