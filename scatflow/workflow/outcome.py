"""A run's outcome, folded as its tasks return: what ``scatflow run`` prints and records."""

from __future__ import annotations

import dataclasses

from .blocks import BlockResult
from ..store.ledger import consecutive
from ..store.lock import now_iso
from ..store.summary import LIST_KEPT


@dataclasses.dataclass
class Summary:
    """The outcome of a run's tasks, folded as results come back (memory grows with failures and
    outages, not with blocks done)."""

    done: int
    failed: list[BlockResult]
    skipped: list[tuple[str, str]]
    seconds: float
    no_data: list[BlockResult] = dataclasses.field(default_factory=list)
    refused: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    windows: int = 0
    workers: set = dataclasses.field(default_factory=set)
    stacks: set = dataclasses.field(default_factory=set)

    def add(self, r: BlockResult) -> None:
        """Fold one block's result in (its ledger cells are dropped: the driver has recorded them)."""
        if r.error:
            self.failed.append(BlockResult(r.station, r.block, r.windows, r.span, error=r.error))
        elif r.no_data:
            self.no_data.append(BlockResult(r.station, r.block, r.windows, r.span, no_data=r.no_data))
        else:
            self.done += 1
            self.windows += r.windows
            self.workers.add(r.worker)
            self.stacks.add(r.stack)

    @property
    def ok(self) -> bool:
        """No block failed and no station was refused (blocks without data are outages, not errors)."""
        return not self.failed and not self.refused

    def text(self) -> str:
        """What ``scatflow run`` prints at the end."""
        lines = [
            f"done: {self.done} block(s), {self.windows} windows in {self.seconds:.1f} s; "
            f"no data: {len(self.no_data)}; failed: {len(self.failed)}; skipped: {len(self.skipped)}"
            + (f"; refused: {len(self.refused)}" if self.refused else "")
        ]
        lines += [f"  skipped {key}: {why}" for key, why in self.skipped]
        lines += [f"  refused {key}: {why}" for key, why in self.refused]
        lines += [f"  note {key}: {why}" for key, why in self.notes]
        lines += [f"  no data {key}: {spans}" for key, spans in _outages(self.no_data)]
        lines += [f"  failed {r.station} block {r.block}: {r.error}"
                  for r in sorted(self.failed, key=lambda r: (r.station, r.block))]
        return "\n".join(lines)

    def record(self, started: str) -> dict:
        """The entry of this run in the store's run log: counts, and at most ``LIST_KEPT`` of each
        list (the ledger has every block's outcome; the log stays small)."""
        failed = sorted(self.failed, key=lambda r: (r.station, r.block))
        workers = sorted(w for w in self.workers if w)
        return {
            "started": started,
            "finished": now_iso(),
            "blocks_done": self.done,
            "blocks_failed": len(failed),
            "blocks_no_data": len(self.no_data),
            "stacks": sorted(s for s in self.stacks if s),
            "seconds": round(self.seconds, 3),
            "failures": [{"station": r.station, "block": r.block, "error": r.error} for r in failed[:LIST_KEPT]],
            "workers_count": len(workers),
            "workers": workers[:LIST_KEPT],
            "skipped": [{"station": k, "reason": w} for k, w in self.skipped[:LIST_KEPT]],
            "refused": [{"station": k, "reason": w} for k, w in self.refused[:LIST_KEPT]],
            "notes": [{"channel": k, "note": w} for k, w in self.notes[:LIST_KEPT]],
        }


def _outages(results: list[BlockResult]) -> list[tuple[str, str]]:
    """Per station, the blocks without data as ranges ``"blocks 4-6 (T0 .. T1)"``, sorted."""
    by_station: dict[str, dict[int, BlockResult]] = {}
    for r in results:
        by_station.setdefault(r.station, {})[r.block] = r
    out = []
    for key, blocks in sorted(by_station.items()):
        parts = [f"block{'s' if len(g) > 1 else ''} {g[0]}{f'-{g[-1]}' if len(g) > 1 else ''} "
                 f"({blocks[g[0]].span[0]} .. {blocks[g[-1]].span[1]})" for g in consecutive(blocks)]
        out.append((key, ", ".join(parts)))
    return out


__all__ = ["Summary"]
