"""Write ``tests/data/v02/``: a small store written by scatflow 0.2 (store format 1), its input.

Made with the code of commit 0e4c783 (the last 0.2 main), not the code of this checkout::

    git worktree add /tmp/v02 0e4c783
    PYTHONPATH=/tmp/v02 python tests/data/make_store_v02.py

The tests never run this script; they read what it wrote:

* ``archive/``: an SDS archive of two stations (``XX.AAA.``, ``XX.BBB.``; ``BHN``, ``BHZ`` at
  0.2 Hz) over 2.5 days, with an outage at AAA (2015-12-05 05:30 .. 12:30: one block without
  data, NaN windows around it) and BBB's last day file cut mid-record (its blocks fail);
* ``run.toml``: the run config (no ``[preprocess]``; 6 h blocks; an ``[analysis]`` section);
* ``store.zarr``: two runs of 0.2 (to 2015-12-05 12:00, then to the end) and ``scatflow analyze``;
* ``info.txt``: what 0.2's ``scatflow info`` printed for it (the store path written ``STORE``).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import obspy

HERE = Path(__file__).resolve().parent / "v02"
START, MIDDLE, END = "2015-12-04T00:00:00", "2015-12-05T12:00:00", "2015-12-06T12:00:00"
RATE = 0.2
IDS = ("XX.AAA..BHN", "XX.AAA..BHZ", "XX.BBB..BHN", "XX.BBB..BHZ")
OUTAGE = ("2015-12-05T05:30:00", "2015-12-05T12:30:00")  # station AAA: block 5 has no data
DAMAGED = ("XX.BBB..BHZ", "2015-12-06")  # cut mid-record: the blocks reading it fail

CONFIG = """[input]
sds = "archive"
start = "{start}"
end = "{end}"

[network]
window_s = 1200.0
overlap = 0.5
reduce = "median"
layers = [{{ octaves = 2, resolution = 1, quality = 1 }}, {{ octaves = 2, resolution = 1, quality = 1 }}]

[output]
store = "store.zarr"
dtype = "float32"
block_s = 21600

[cluster]
workers = 1
threads_per_worker = 1
dashboard = false

[analysis]
components = 2
clusters = 2
sample = 1000
"""


def sds_path(root: Path, seed_id: str, day) -> Path:
    net, sta, loc, cha = seed_id.split(".")
    day = obspy.UTCDateTime(day)
    return root / f"{day.year}" / net / sta / f"{cha}.D" / f"{seed_id}.D.{day.year}.{day.julday:03d}"


def write_archive(root: Path) -> None:
    """Small-integer noise (compresses well with STEIM2), one file per channel and day."""
    start, end = obspy.UTCDateTime(START), obspy.UTCDateTime(END)
    for seed_id in IDS:
        net, sta, loc, cha = seed_id.split(".")
        n = int(round((end - start) * RATE))
        rng = np.random.default_rng(zlib.crc32(seed_id.encode()))
        data = (rng.normal(0, 2, n) + 3 * np.sin(np.arange(n) / 40.0)).round().astype(np.int32)
        tr = obspy.Trace(data, {"network": net, "station": sta, "location": loc, "channel": cha,
                                "sampling_rate": RATE, "starttime": start})
        st = obspy.Stream([tr])
        if sta == "AAA":
            st = st.copy()
            st.cutout(obspy.UTCDateTime(OUTAGE[0]), obspy.UTCDateTime(OUTAGE[1]))
        day = obspy.UTCDateTime(start.date)
        while day < end:
            part = st.slice(day, day + 86400 - 0.5 / RATE, nearest_sample=False)
            path = sds_path(root, seed_id, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
            day += 86400
    cut = sds_path(root, *DAMAGED)
    cut.write_bytes(cut.read_bytes()[:-100])


def cli(*argv: str) -> str:
    from scatflow.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    print(out.getvalue(), file=sys.stderr)
    if code not in (0, 1):  # 1: blocks failed (the damaged file), as intended
        raise SystemExit(f"scatflow {' '.join(argv)} exited {code}")
    return out.getvalue()


def main() -> None:
    import scatflow

    if scatflow.__version__.split(".")[:2] != ["0", "2"]:
        raise SystemExit(f"run with the 0.2 code on PYTHONPATH (this is scatflow {scatflow.__version__})")
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    write_archive(HERE / "archive")
    config = HERE / "run.toml"
    config.write_text(CONFIG.format(start=START, end=MIDDLE))
    cli("run", str(config), "--quiet")
    config.write_text(CONFIG.format(start=START, end=END))
    cli("run", str(config), "--quiet")
    cli("analyze", str(config), "--quiet")
    store = HERE / "store.zarr"
    (HERE / "info.txt").write_text(cli("info", str(store)).replace(str(store), "STORE"))


if __name__ == "__main__":
    main()
