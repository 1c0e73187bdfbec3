"""The ledger rule: when is a block complete, failed, missing its data, or still to do.

Each station group keeps, per block, the number of windows its task wrote
(``block_done``, 0 = not done), why it failed (``block_error``) and the input
files it read (``block_files``); :mod:`scatflow.store` reads and writes those
arrays. This module is the one definition of what they mean, asked by the
planner (what to compute), ``scatflow info`` and ``scatflow plot`` alike:

* **complete**: ``block_done`` equals the windows the block holds *and* its data
  is in the store;
* **missing data**: marked done, but its data chunks are gone (deleted by hand):
  it is computed again;
* **failed**: not done, with a reason recorded (retried by the next run);
* **pending**: anything else (never run, in flight, or grown since it ran).

A task writes its data before its ``block_done`` cell, so a block is never
complete without its data (see ``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import typing as T

import numpy as np

from .grid import Blocks

COMPLETE, MISSING, FAILED, PENDING = "complete", "missing data", "failed", "pending"


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
    """

    blocks: Blocks
    done: np.ndarray
    errors: tuple
    has_data: T.Callable[[int], bool]

    @classmethod
    def from_arrays(cls, blocks: Blocks, done, errors, has_data=lambda b: True) -> "Ledger":
        """A ledger from stored arrays, which may be shorter than ``blocks.count`` (an
        extension in progress: absent entries are "not done") or longer (ignored)."""
        n = blocks.count
        full = np.zeros(n, dtype=np.int64)
        done = np.asarray(done, dtype=np.int64)[:n]
        full[: len(done)] = done
        errs = (tuple(str(e) for e in errors) + ("",) * n)[:n]
        return cls(blocks, full, errs, functools.lru_cache(maxsize=None)(has_data))

    def state(self, b: int) -> str:
        """``"complete"``, ``"missing data"``, ``"failed"`` or ``"pending"`` for block ``b``."""
        done = int(self.done[b])
        if done > 0 and not self.has_data(b):
            return MISSING
        if done > 0 and done == self.blocks.expected(b):
            return COMPLETE
        if done == 0 and self.errors[b]:
            return FAILED
        return PENDING

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
