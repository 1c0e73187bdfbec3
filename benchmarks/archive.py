"""Archive throughput and memory: the synthetic SDS archive on 1 and 2 local workers.

Run by hand::

    python benchmarks/archive.py [--days 7] [--workdir /tmp/scatflow-archive-bench]

Uses ``scatflow example --archive`` (3 stations: two at 50 Hz, one at 20 Hz,
three channels each) and the tutorial network in float32. Prints

* windows per second per core with 1 worker and with 2 workers (a one-day
  span of the two 50 Hz stations), and the 2-worker / 1-worker throughput ratio;
* the peak resident memory of the largest worker process for a 1-day and a
  ``--days``-day span of one station (the worker's peak must depend on the
  block size, not on the span);
* the projection of the measured per-core rate to 100 stations x 1 year of
  3-channel 50 Hz data on 1,000 cores (linear scaling assumed: no I/O limit).

Rates use the run's own compute time (``done: ... in S s``, from the first
task submitted to the last result); wall times including the cluster's start
are printed too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import median, run_tree  # noqa: E402

WINDOWS_PER_DAY = 4319  # 40 s windows, 20 s hop


def configure(work: Path, name: str, start: str, end: str, select: list[str], workers: int) -> Path:
    text = (work / "archive.toml").read_text()
    text = re.sub(r'(?m)^start = .*$', f'start = "{start}"', text)
    text = re.sub(r'(?m)^end = .*$', f'end = "{end}"', text)
    text = re.sub(r'(?m)^select = .*$', "select = " + str(select).replace("'", '"'), text)
    text = text.replace('store = "archive.zarr"', f'store = "{name}.zarr"')
    text = text.replace('kind = "local"', f'kind = "local"\nworkers = {workers}\ndashboard = false')
    path = work / f"{name}.toml"
    path.write_text(text)
    return path


def run(exe: Path, cfg: Path):
    res = run_tree([str(exe), "run", str(cfg), "--overwrite", "--quiet"])
    m = re.search(r"done: (\d+) block\(s\), (\d+) windows in ([\d.]+) s", res.output)
    if not m:
        raise RuntimeError(res.output)
    return res, int(m.group(2)), float(m.group(3))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/scatflow-archive-bench")
    args = parser.parse_args(argv)

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    exe = Path(sys.executable).parent / "scatflow"
    run_tree([str(exe), "example", str(work), "--archive", "--days", str(args.days), "--quiet"])
    day0 = "2015-12-04T00:00:00"
    # The 50 Hz stations: the projection below is for 50 Hz data (SV20 at 20 Hz is cheaper).
    fifty = ["X9.SV13.*.*", "X9.SV15.*.*"]

    rates = {1: [], 2: []}
    for rep in range(args.repeats):
        for workers in (1, 2):
            cfg = configure(work, f"w{workers}", day0, "2015-12-05T00:00:00", fifty, workers)
            res, windows, seconds = run(exe, cfg)
            rates[workers].append(windows / seconds / workers)
            print(f"  repeat {rep + 1}: {workers} worker(s): {windows} windows in {seconds:.1f} s "
                  f"(wall {res.seconds:.1f} s): {windows / seconds / workers:.1f} windows/s/core", flush=True)

    peaks = {}
    end_long = f"2015-12-{4 + args.days:02d}T00:00:00"
    for label, end in (("1 day", "2015-12-05T00:00:00"), (f"{args.days} days", end_long)):
        cfg = configure(work, f"mem{label[0]}", day0, end, ["X9.SV13.*.*"], 2)
        res, windows, seconds = run(exe, cfg)
        peaks[label] = res.peak_largest_child
        print(f"  {label}: {windows} windows in {seconds:.1f} s; largest worker peak "
              f"{res.peak_largest_child:.0f} MB; whole tree {res.peak_total:.0f} MB", flush=True)

    r1, r2 = median(rates[1]), median(rates[2])
    print(f"\nthroughput, tutorial network, float32, 2 stations x 1 day at 50 Hz (median of {args.repeats})")
    print(f"1 worker : {r1:7.1f} windows/s/core")
    print(f"2 workers: {r2:7.1f} windows/s/core   2-worker / 1-worker throughput x{2 * r2 / r1:.2f}")
    (a, pa), (b, pb) = peaks.items()
    print(f"largest worker peak RSS: {a} {pa:.0f} MB, {b} {pb:.0f} MB ({100 * (pb - pa) / pa:+.1f} %)")
    total = 100 * 365 * WINDOWS_PER_DAY
    hours = total / (1000 * r2) / 3600
    print(f"projection: 100 stations x 1 year x 3 channels at 50 Hz = {total / 1e6:.1f} M windows; "
          f"at {r2:.1f} windows/s/core on 1,000 cores: {hours:.1f} h")


if __name__ == "__main__":
    main()
