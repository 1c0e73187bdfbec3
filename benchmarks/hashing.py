"""What a content hash of the input files would cost, against what a block costs anyway.

Run by hand::

    python benchmarks/hashing.py [--workdir /tmp/scatflow-hash-bench] [--repeats 5]

Writes one synthetic station-day (3 channels at 50 Hz, STEIM2, 4096-byte
records: ``scatflow example --archive``'s files) and prints, per day file: the
``os.stat`` that planning makes for every input of every done block each
night, a BLAKE2b hash of the file's bytes (page cache warm: the hash's own
CPU cost; a cold read adds the disk's time), and ObsPy's read of the file
(what a worker does anyway); then the worker's time for one hour of
tutorial-design windows on the three channels, scaled to a station-day. The
last lines put the per-night cost of hashing at planning next to stat for an
archive of 100 stations x 3 channels x 365 days.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import time
from pathlib import Path


def best(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def blake2b(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/scatflow-hash-bench")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from _util import environment

    import obspy

    from scatflow.workflow.worker import run_block
    from scatflow.config import parse_config
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import prepare_store
    from scatflow.store.writer import Store
    from scatflow.synthetic import write_archive

    print(environment())
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    info = write_archive(work / "archive", days=1)
    files = [str(work / "archive" / f) for f in info["files"] if "/SV13/" in f]
    size = sum(os.path.getsize(f) for f in files) / len(files)
    stat_s = best(lambda: [os.stat(f) for f in files], args.repeats * 20) / len(files)
    hash_s = best(lambda: [blake2b(f) for f in files], args.repeats) / len(files)
    read_s = best(lambda: [obspy.read(f, format="MSEED") for f in files], args.repeats) / len(files)
    print(f"one day file ({size / 1e6:.2f} MB, mean of {len(files)}): stat {stat_s * 1e6:.1f} us, "
          f"blake2b {hash_s * 1e3:.2f} ms ({size / hash_s / 1e6:.0f} MB/s, cache warm), "
          f"ObsPy read {read_s * 1e3:.1f} ms")

    cfg = parse_config({
        "input": {"sds": str(work / "archive"), "select": ["X9.SV13.*.*"], "start": "2015-12-04T00:00:00",
                  "end": "2015-12-04T01:00:00"},
        "network": {"window_s": 40.0, "layers": [{"octaves": 6, "resolution": 4, "quality": 2},
                                                 {"octaves": 6, "resolution": 1, "quality": 2}]},
        "output": {"store": str(work / "store.zarr"), "block_s": 3600},
    }, work)
    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    (task,) = list(plan.block_tasks())
    run_block(task)  # the network's banks are built once per worker: not part of a block's cost
    block_s = best(lambda: run_block(task), max(1, args.repeats // 2))
    windows = task.blocks.expected(task.block)
    day_s = block_s / windows * 4319
    # With the default 6-hour blocks each of a day's 4 blocks reads (and hashes) the 3 day files.
    per_day_hash = 4 * 3 * hash_s
    print(f"one block of {windows} tutorial windows x 3 channels: {block_s:.2f} s (1 thread); "
          f"a station-day (4319 windows): {day_s:.1f} s")
    print(f"hashing in the worker, 4 blocks a day each hashing the 3 day files it reads: "
          f"{per_day_hash * 1e3:.0f} ms per station-day = {100 * per_day_hash / day_s:.2f} % of its compute")
    n = 100 * 3 * 365
    print(f"planning every night over 100 stations x 3 channels x 365 days ({n} files, "
          f"{n * size / 1e9:.0f} GB): stat {n * stat_s:.1f} s; hash {n * hash_s / 60:.1f} min of CPU "
          f"(cache warm), {n * size / 500e6 / 60:.1f} min to read them at 500 MB/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
