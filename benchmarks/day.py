"""One station-day, miniSEED on disk to a finished Zarr store: scatflow vs the seed notebook.

Run by hand (needs the ``test`` extra for the reference)::

    python benchmarks/day.py [--repeats 3] [--workdir /tmp/scatflow-day] [--preprocess]

The data is ``scatflow example``'s synthetic day (3 channels, 50 Hz, 4319
windows of 40 s with 50 % overlap). The reference is the scatseisnet tutorial
procedure on the same file: ``obspy.read``, ``stream.slide(40, 20)``,
``tr.data[:bins]``, ``network.transform(segments, reduce_type=np.median)``
and saving the features with ``np.savez``. Each run is a fresh process (the
scatflow runs start their own local Dask cluster, which is counted), runs are
interleaved, and the script prints median wall times, the speed-up, and the
peak resident memory of each run's whole process tree (driver and workers).

``--preprocess`` adds runs of the same configs with a ``[preprocess]``
section (the example sensor's StationXML, response to velocity with
``pre_filt = [0.2, 0.5, 20, 24]``, a zero-phase 4-corner 1 Hz high-pass and
``sampling_rate = 50``: resampling is the identity here, so the kernel's work
is unchanged and the difference is the cost of preprocessing).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import environment, median, run_tree  # noqa: E402

REFERENCE = """
import sys, numpy as np, obspy, scatseisnet
stream = obspy.read(sys.argv[1])
bins = 2000
network = scatseisnet.ScatteringNetwork(
    {"octaves": 6, "resolution": 4, "quality": 2}, {"octaves": 6, "resolution": 1, "quality": 2},
    bins=bins, sampling_rate=50.0)
times, segments = [], []
for window in stream.slide(window_length=40.0, step=20.0):
    times.append(window[0].stats.starttime.datetime)
    segments.append(np.array([tr.data[:bins] for tr in window]))
# int32 counts: the tutorial filters first, which makes them float64
s1, s2 = network.transform(np.array(segments, dtype=float), reduce_type=np.median)
np.savez(sys.argv[2], times=np.array(times, dtype="datetime64[ns]"), order_1=s1, order_2=s2)
print(len(times), "windows")
"""


PREPROCESS = """
[preprocess]
inventory = ["stations.xml"]
response = "velocity"
pre_filt = [0.2, 0.5, 20.0, 24.0]
filter = { type = "highpass", freq = 1.0, corners = 4, zerophase = true }
sampling_rate = 50.0
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/scatflow-day-bench")
    parser.add_argument("--preprocess", action="store_true", help="also time runs with [preprocess] on")
    args = parser.parse_args(argv)
    print(environment(), flush=True)

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    exe = Path(sys.executable).parent / "scatflow"
    run_tree([str(exe), "example", str(work), "--quiet"])
    (data,) = sorted((work / "data").glob("*.mseed"))
    configs = {}
    for dtype in ("float64", "float32"):
        text = (work / "config.toml").read_text()
        text = text.replace('dtype = "float32"', f'dtype = "{dtype}"').replace("results.zarr", f"{dtype}.zarr")
        configs[dtype] = work / f"{dtype}.toml"
        configs[dtype].write_text(text)
    if args.preprocess:
        from scatflow.synthetic import write_inventory

        write_inventory(work / "stations.xml", {"X9.SV13.": {"sampling_rate": 50.0,
                                                              "channels": [f"X9.SV13..HH{c}" for c in "ZNE"]}})
        for dtype in ("float64", "float32"):
            text = configs[dtype].read_text().replace(f"{dtype}.zarr", f"{dtype}-pre.zarr") + PREPROCESS
            configs[f"{dtype} + preprocess"] = work / f"{dtype}-pre.toml"
            configs[f"{dtype} + preprocess"].write_text(text)

    runs = {
        "seed notebook (scatseisnet)": lambda: run_tree([sys.executable, "-c", REFERENCE, str(data), str(work / "ref.npz")]),
    }
    for dtype, cfg in configs.items():
        runs[f"scatflow {dtype}"] = lambda cfg=cfg: run_tree(
            [str(exe), "run", str(cfg), "--overwrite", "--quiet"]
        )
    times = {k: [] for k in runs}
    peaks = {k: [] for k in runs}
    for rep in range(args.repeats):
        for name, fn in runs.items():
            res = fn()
            t, peak = res.seconds, res.peak_total
            times[name].append(t)
            peaks[name].append(peak)
            print(f"  repeat {rep + 1}: {name:40s} {t:7.1f} s  peak {peak:7.0f} MB", flush=True)

    ref = median(times["seed notebook (scatseisnet)"])
    print(f"\none station-day (3 x 50 Hz, 4319 windows), median of {args.repeats} interleaved runs, fresh processes")
    for name in runs:
        t = median(times[name])
        print(f"{name:40s} {t:7.1f} s   speed-up x{ref / t:5.2f}   peak RSS (process tree) {max(peaks[name]):6.0f} MB")
    for dtype in ("float64", "float32"):
        if f"scatflow {dtype} + preprocess" in times:
            extra = median(times[f"scatflow {dtype} + preprocess"]) - median(times[f"scatflow {dtype}"])
            print(f"preprocessing costs {extra:+.1f} s per station-day in {dtype} "
                  f"(x{median(times[f'scatflow {dtype} + preprocess']) / median(times[f'scatflow {dtype}']):.2f})")


if __name__ == "__main__":
    main()
