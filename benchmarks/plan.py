"""Planning time for a year of 100 stations: the plan is made from file names and headers.

Run by hand::

    python benchmarks/plan.py [--stations 100] [--days 365] [--workdir /tmp/scatflow-plan-bench]

Builds an SDS tree of ``stations`` x ``days`` x 3 channels day files (each a
copy of one small miniSEED record: planning reads one header per channel and
only the names of the other files), then times ``scatflow run --dry-run``'s
planning (``make_plan``) against a fresh store and prints the number of tasks.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import obspy


def build(root: Path, stations: int, days: int) -> int:
    root.mkdir(parents=True, exist_ok=True)
    template = root / "template.mseed"
    start = obspy.UTCDateTime("2015-01-01")
    count = 0
    for s in range(stations):
        sta = f"S{s:03d}"
        for cha in ("HHZ", "HHN", "HHE"):
            # One real record per channel (the header planning reads), copied for every day.
            tr = obspy.Trace(np.zeros(100, dtype=np.int32), header={
                "network": "XX", "station": sta, "channel": cha, "sampling_rate": 50.0, "starttime": start})
            tr.write(str(template), format="MSEED", reclen=512)
            for d in range(days):
                day = start + d * 86400
                folder = root / f"{day.year}" / "XX" / sta / f"{cha}.D"
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(template, folder / f"XX.{sta}..{cha}.D.{day.year}.{day.julday:03d}")
                count += 1
    template.unlink()
    return count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workdir", default="/tmp/scatflow-plan-bench")
    args = parser.parse_args(argv)

    from scatflow.config import parse_config
    from scatflow.store.writer import Store
    from scatflow.workflow.plan import make_plan

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    files = build(work / "sds", args.stations, args.days)
    print(f"built {files} day files in {time.perf_counter() - t0:.1f} s", flush=True)
    end = obspy.UTCDateTime("2015-01-01") + args.days * 86400
    cfg = parse_config(
        {
            "input": {"sds": str(work / "sds"), "start": "2015-01-01T00:00:00", "end": str(end)[:19]},
            "network": {"layers": [{"octaves": 6, "resolution": 4, "quality": 2},
                                   {"octaves": 6, "resolution": 1, "quality": 2}]},
            "output": {"store": str(work / "plan.zarr")},
        },
        base=work,
    )
    t0 = time.perf_counter()
    plan = make_plan(cfg, Store(cfg.output["store"]))
    elapsed = time.perf_counter() - t0
    print(f"planned {len(plan.stations)} stations x {args.days} days: {plan.tasks} tasks "
          f"(one per station and 6 h block) in {elapsed:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
