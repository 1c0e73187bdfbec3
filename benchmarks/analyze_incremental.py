"""What an incremental ``scatflow analyze`` costs per block already stored (run by hand).

Two synthetic one-station stores (``scatflow.synthetic.store``, small network, 20 windows per
block) of ``--blocks`` and 4x as many blocks are analysed, grown by one block, and analysed again
in this process (threaded scheduler). The second analyze's CPU time and store requests (counted
through ``scatflow.store.access``) are compared between the sizes: their difference divided by the
difference in blocks is the cost per stored block, which should be about zero. With ``--ledger-chunk``
the station's ``block_done`` and ``block_stamp`` are re-chunked by that many blocks first (as store
format 2 lays them out), so their reads stop counting per block.

    python benchmarks/analyze_incremental.py --blocks 200
    python benchmarks/analyze_incremental.py --blocks 200 --ledger-chunk 1024
"""

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CHUNK, KEY = 20, "X9.A."
LAYERS = [{"octaves": 4, "resolution": 2, "quality": 2}, {"octaves": 3, "resolution": 1, "quality": 2}]
KW = dict(layers=LAYERS, sampling_rate=20.0, block_windows=CHUNK)
OLD_CHUNK = re.compile(r"^(analysis/ica/)?X9\.A\./(order_\d|coverage|time|components|cluster|distance)/c[./](\d+)")


def rechunk_ledger(path, blocks: int) -> None:
    import numpy as np
    import zarr

    g = zarr.open_group(str(path), path=KEY, mode="r+")
    for name in ("block_done", "block_stamp"):
        arr = g[name]
        values, dtype, fill = np.asarray(arr[:]), arr.dtype, arr.fill_value
        del g[name]
        g.create_array(name, shape=values.shape, chunks=(blocks,), dtype=dtype, fill_value=fill,
                       dimension_names=["block"])[:] = values


def one(root: Path, blocks: int, ledger_chunk: int) -> dict:
    from helpers import counted_requests

    from scatflow.analysis.analyze import analyze
    from scatflow.config import parse_config
    from scatflow.synthetic.store import extend_store, write_store

    path = root / f"s{blocks}.zarr"
    write_store(path, [KEY], blocks * CHUNK, **KW)
    cfg = parse_config({"input": {"paths": ["unused.mseed"]}, "network": {"layers": LAYERS},
                        "output": {"store": str(path)}, "analysis": {"sample": 2000, "components": 2, "clusters": 3}})
    analyze(cfg, log=lambda m: None)
    extend_store(path, [KEY], (blocks + 1) * CHUNK, **KW)
    if ledger_chunk:
        rechunk_ledger(path, ledger_chunk)
    t0 = time.process_time()
    summary, log = counted_requests(lambda: analyze(cfg, log=lambda m: None))
    cpu = time.process_time() - t0
    assert summary.labelled_now == CHUNK, summary.labelled_now
    old = sum(1 for _, k in log if (m := OLD_CHUNK.match(k)) and int(m.group(3)) < blocks)
    t0 = time.process_time()
    _, idle = counted_requests(lambda: analyze(cfg, log=lambda m: None))
    return {"cpu_s": cpu, "requests": len(log), "gets": sum(1 for kind, _ in log if kind == "get"),
            "old_chunk_requests": old, "idle_cpu_s": time.process_time() - t0, "idle_requests": len(idle),
            "idle_chunk_requests": sum(1 for _, k in idle if OLD_CHUNK.match(k))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=200, help="blocks of the smaller store (the other has 4x)")
    p.add_argument("--ledger-chunk", type=int, default=0, help="re-chunk block_done/block_stamp by this many blocks")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, big = (one(Path(tmp), n, a.ledger_chunk) for n in (a.blocks, 4 * a.blocks))
    d = 3 * a.blocks
    for name, r in (("N", small), ("4N", big)):
        print(f"{name:>2} = {a.blocks if name == 'N' else 4 * a.blocks} blocks: one new block: {1e3 * r['cpu_s']:.0f} ms CPU, "
              f"{r['requests']} requests ({r['gets']} GETs), {r['old_chunk_requests']} of stored label/coefficient "
              f"chunks; nothing new: {1e3 * r['idle_cpu_s']:.0f} ms CPU, {r['idle_requests']} requests, "
              f"{r['idle_chunk_requests']} of label/coefficient chunks")
    print(f"per stored block: {1e3 * (big['cpu_s'] - small['cpu_s']) / d:.4f} ms CPU, "
          f"{(big['requests'] - small['requests']) / d:.3f} requests, {(big['gets'] - small['gets']) / d:.3f} GETs")


if __name__ == "__main__":
    main()
