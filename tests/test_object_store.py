"""Archives and stores on an object store: a real S3 server (SeaweedFS) on 127.0.0.1.

The same archive is kept on disk and on S3; runs with the inputs and the store on either side
give stores equal in every array to the all-disk store. What differs by design is each input
record's identity field (a file's ``mtime``, an object's ``etag``): the records' other fields,
including the ``blake2b`` and ``md5`` of the bytes read, are equal.
"""

import json
import re
import threading

import numpy as np
import obspy
import pytest
import zarr
from helpers import SMALL_LAYERS, assert_stores_bitwise_equal, plan_and_run_in_process, write_config, write_sds
from s3server import BUCKET

from scatflow.config import load_config
from scatflow.errors import StoreError
from scatflow.location import Url
from scatflow.store import lock
from scatflow.store.access import zarr_store
from scatflow.store.writer import Store
from scatflow.workflow.plan import make_plan

pytestmark = pytest.mark.s3

IDS = ("XX.AAA..HHZ", "XX.AAA..HHN", "XX.BBB..HHZ")
GROUPS = ("XX.AAA.", "XX.BBB.")
START, END = "2015-12-04T18:00:00", "2015-12-05T06:00:00"  # across midnight: two day files per channel
IDENTITY = ("mtime", "etag")


@pytest.fixture
def s3env(s3server, monkeypatch):
    """Credentials from the standard environment variables, as a user would give them."""
    for name, value in s3server.env().items():
        monkeypatch.setenv(name, value)
    return s3server


def fs_of(server):
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options())


@pytest.fixture(scope="module")
def archives(s3server, tmp_path_factory):
    """The same SDS archive on disk and on S3: ``(disk root, s3 root URL)``."""
    base = tmp_path_factory.mktemp("archive")
    root = base / "archive"
    write_sds(root, IDS, START[:10], "2015-12-06", rate=20.0)
    prefix = f"{BUCKET}/archive-{base.name}"
    fs_of(s3server).put(str(root), prefix, recursive=True)
    return root, f"s3://{prefix}"


def config(tmp_path, server, kind, root, store, name="run.toml"):
    """A run over the archive at ``root`` (a path or an s3:// URL), as SDS or one glob per station."""
    opts = {"endpoint_url": server.endpoint}
    root = str(root)
    inp = {"sds": root} if kind == "sds" else {"paths": [f"{root}/2015/XX/{sta}/*/*" for sta in ("AAA", "BBB")]}
    return load_config(write_config(
        tmp_path / name, **inp, select=["XX.*.*.HH?"], start=START, end=END, layers=SMALL_LAYERS, block_s=10800,
        store=store, input_options=opts if root.startswith("s3://") else None,
        output_options=opts if str(store).startswith("s3://") else None))


def ledger_records(store, group):
    g = zarr.open_group(zarr_store(store), mode="r", use_consolidated=False)[group]
    return [json.loads(str(c) or "[]") for c in g["block_files"][:]]


def without_identity(records):
    return [[{k: v for k, v in r.items() if k not in IDENTITY} for r in block] for block in records]


def computed(tmp_path, server, kind, root, store):
    cfg = config(tmp_path, server, kind, root, store, name=f"run-{abs(hash((str(root), str(store))))}.toml")
    _, results = plan_and_run_in_process(cfg)
    assert results and all(r.ok for r in results), [r.error for r in results]
    return cfg.output["store"]


@pytest.mark.parametrize("kind", ["sds", "paths"])
def test_inputs_and_store_on_s3_give_the_disk_store_bitwise(kind, archives, s3env, s3url, tmp_path):
    disk, url = archives
    local = computed(tmp_path, s3env, kind, disk, tmp_path / "disk.zarr")
    for root, store in [(url, f"{s3url}/both.zarr"), (disk, f"{s3url}/store-only.zarr"),
                        (url, tmp_path / "inputs-only.zarr")]:
        other = computed(tmp_path, s3env, kind, root, store)
        assert_stores_bitwise_equal(local, other, GROUPS, ignore=("block_files",))
        for group in GROUPS:
            here, there = ledger_records(local, group), ledger_records(other, group)
            assert without_identity(here) == without_identity(there), (store, group)
            ident = {k for block in there for r in block for k in r if k in IDENTITY}
            assert ident == ({"etag"} if str(root).startswith("s3://") else {"mtime"}), (store, ident)
    objects = fs_of(s3env).find(f"{s3url[5:]}/both.zarr")
    assert any(o.endswith("zarr.json") for o in objects) and len(objects) > 10


def test_an_archive_copied_to_s3_recomputes_nothing_and_a_rewritten_object_only_its_blocks(
        archives, s3env, s3url, tmp_path):
    disk, _ = archives
    fs = fs_of(s3env)
    copy = f"{s3url[5:]}/copy"
    fs.put(str(disk), copy, recursive=True)
    store = computed(tmp_path, s3env, "sds", disk, tmp_path / "out.zarr")
    cfg = config(tmp_path, s3env, "sds", f"s3://{copy}", store, name="moved.toml")
    assert [sp.todo for sp in make_plan(cfg, Store(store)).stations] == [[], []]
    # Another day-file object written in place, other samples: its blocks only.
    name = "2015/XX/BBB/HHZ.D/XX.BBB..HHZ.D.2015.339"
    local_file = tmp_path / "rewritten"
    st = obspy.read(str(disk / name))
    for tr in st:
        tr.data = (tr.data[::-1] + 3).astype(np.int32)
    st.write(str(local_file), format="MSEED", encoding="STEIM2", reclen=512)
    fs.put(str(local_file), f"{copy}/{name}")
    readers = [b for b, files in enumerate(ledger_records(store, "XX.BBB.")) if name in {r["path"] for r in files}]
    todo = {sp.station.key: sp.todo for sp in make_plan(cfg, Store(store)).stations}
    assert readers and todo == {"XX.AAA.": [], "XX.BBB.": readers}


def test_writer_lock_on_s3_admits_one_run_and_names_the_holder(s3env, s3url):
    store = Url(f"{s3url}/locked.zarr", {"endpoint_url": s3env.endpoint})
    with lock.writer_lock(store):
        with pytest.raises(StoreError, match=r"is being written by another scatflow run \(host .*, pid \d+"):
            with lock.writer_lock(store):
                pass
        with pytest.raises(StoreError, match="another scatflow run"):
            lock.check_free(store)
    lock.check_free(store)  # released
    # Runs started at once: the server's create-only write lets exactly one in.
    entered, refused = race_for_lock(store, 4)
    assert len(entered) == 1 and len(refused) == 3


def race_for_lock(store, n: int) -> tuple[list, list]:
    """``n`` threads take the writer lock of ``store`` at once; the one that gets it holds it
    until all the others have been refused (10 s at most). The ids that entered and were refused."""
    entered, refused, barrier, others_done = [], [], threading.Barrier(n), threading.Event()

    def contender(i):
        barrier.wait()
        try:
            with lock.writer_lock(store):
                entered.append(i)
                others_done.wait(10)  # still held (and fresh) when the others look
        except StoreError:
            refused.append(i)
            if len(refused) == n - 1:
                others_done.set()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return entered, refused


def test_a_stale_lock_on_s3_is_taken_over_by_one_run(s3env, s3url, monkeypatch):
    store = Url(f"{s3url}/stale.zarr", {"endpoint_url": s3env.endpoint})
    where = lock.lock_path(store)
    fs_of(s3env).pipe_file(where[5:], json.dumps({"host": "gone-host", "pid": 1, "started": "x"}).encode())
    with pytest.raises(StoreError, match="gone-host"):
        lock.check_free(store)
    monkeypatch.setattr(lock, "STALE_S", 2)
    import time

    time.sleep(3.2)  # LastModified has whole seconds
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.3)
    entered, refused = race_for_lock(store, 3)
    assert len(entered) == 1 and len(refused) == 2
    assert not fs_of(s3env).exists(where[5:])  # released by its last holder


def _cli(args, env, timeout=600):
    import os
    import subprocess
    import sys

    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "scatflow.cli", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_server_killed_mid_run_then_rerun_gives_the_fresh_store(tmp_path):
    """SIGKILL the S3 server while blocks are in flight: the run ends with one line and a non-zero
    exit; with the server back on the same data, a rerun completes the store, equal in every array
    to a fresh run on disk."""
    import time

    from s3server import SeaweedServer

    server = SeaweedServer(str(tmp_path / "weed"))
    server.start()
    try:
        root = tmp_path / "archive"
        write_sds(root, IDS, "2015-12-04", "2015-12-05", rate=50.0)
        url = f"s3://{BUCKET}/killed.zarr"

        def cfg(store, name):
            return write_config(tmp_path / name, sds=root, select=["XX.*.*.HH?"], start="2015-12-04",
                                end="2015-12-05", layers=SMALL_LAYERS, block_s=1800, store=store, workers=2,
                                output_options={"endpoint_url": server.endpoint} if str(store).startswith("s3")
                                else None)

        s3cfg = cfg(url, "s3.toml")
        env = dict(server.env(), SCATFLOW_LEDGER_FLUSH_S="1")
        import os
        import subprocess
        import sys

        proc = subprocess.Popen([sys.executable, "-m", "scatflow.cli", "run", str(s3cfg), "--quiet"],
                                env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fs = fs_of(server)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any("/order_1/c" in o for o in fs.find(f"{BUCKET}/killed.zarr", refresh=True)):
                break  # a block's data is written: others are in flight
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before the server could be killed"
        server.kill()
        out, err = proc.communicate(timeout=600)
        assert proc.returncode != 0
        lines = [line for line in err.splitlines() if line.startswith("scatflow: error")]
        assert len(lines) == 1 and "object store did not answer" in lines[0] and server.endpoint in lines[0], err
        server.start()
        again = _cli(["--debug", "run", str(s3cfg), "--quiet"], env)
        assert again.returncode == 0, again.stderr
        fresh = _cli(["run", str(cfg(tmp_path / "fresh.zarr", "disk.toml")), "--quiet"], {})
        assert fresh.returncode == 0, fresh.stderr
        stored = Url(url, {"endpoint_url": server.endpoint, **_creds(server)})
        assert_stores_bitwise_equal(tmp_path / "fresh.zarr", stored, GROUPS)
    finally:
        server.stop()


def _creds(server):
    return {"key": server.env()["AWS_ACCESS_KEY_ID"], "secret": server.env()["AWS_SECRET_ACCESS_KEY"]}


@pytest.mark.slow
def test_a_secret_key_is_never_written_or_printed(archives, s3server, s3url, tmp_path):
    """The secret, in the config and in the environment: not in any object of the store, any line
    of run, --dry-run (job script included), info or an error, nor any file the run leaves."""
    from s3server import SECRET_KEY

    _, root = archives
    opts = {"endpoint_url": s3server.endpoint, **_creds(s3server)}
    store = f"{s3url}/secret.zarr"
    cfg = write_config(tmp_path / "run.toml", sds=root, select=["XX.*.*.HH?"], start=START, end=END,
                       layers=SMALL_LAYERS, block_s=10800, store=store, workers=1, input_options=opts,
                       output_options=opts)
    env = s3server.env()
    said = []
    for args in (["run", str(cfg)], ["run", str(cfg), "--dry-run"], ["run", str(cfg), "--dry-run", "--cluster", "slurm"],
                 ["info", str(cfg)]):
        r = _cli(args, env)
        assert r.returncode == 0, (args, r.stderr)
        said.append(r.stdout + r.stderr)
    assert "XX.AAA." in said[3] and "#SBATCH" in said[2]
    wrong = write_config(tmp_path / "wrong.toml", sds=root, select=["XX.*.*.HH?"], start=START, end=END,
                         layers=SMALL_LAYERS, store=f"{s3url}/other.zarr", input_options=opts,
                         output_options=dict(opts, secret=SECRET_KEY[::-1]))
    r = _cli(["run", str(wrong)], {})
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    said.append(r.stdout + r.stderr)
    for text in said:
        assert SECRET_KEY not in text and SECRET_KEY[::-1] not in text
    fs = fs_of(s3server)
    objects = fs.find(store[5:])
    assert len(objects) > 10
    for key in objects:
        assert SECRET_KEY.encode() not in fs.cat_file(key), key
    attrs = json.loads(fs.cat_file(f"{store[5:]}/zarr.json"))["attributes"]["scatflow"]
    assert attrs["config"]["output"]["storage_options"] == {"endpoint_url": s3server.endpoint}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("run.toml", "wrong.toml"):
            assert SECRET_KEY.encode() not in path.read_bytes(), path


def test_a_nightly_run_on_s3_costs_requests_for_the_new_day_not_the_archive(s3env, s3url, tmp_path):
    """Archives of 2, 4 and 8 station-days on S3, store on S3; one new day arrives: the nightly
    run's requests (counted by the server) are the same at every size, and the store then equals a
    fresh run over the whole archive."""
    from helpers import sds_path

    fs = fs_of(s3env)
    seed_id, counts = "XX.CCC..HHZ", {}
    opts = {"endpoint_url": s3env.endpoint}
    for days in (2, 4, 8):
        root = tmp_path / f"archive{days}"
        start = obspy.UTCDateTime("2016-01-01")
        files = write_sds(root, [seed_id], start, start + 86400 * (days + 1), rate=10.0)
        url = f"{s3url}/archive{days}"
        for path in files[:-1]:
            fs.put_file(str(path), f"{url[5:]}/{path.relative_to(root)}")

        def cfg(end, store, name, sds=url):
            return load_config(write_config(
                tmp_path / name, sds=sds, select=[seed_id], start=str(start)[:19], end=str(end)[:19],
                layers=SMALL_LAYERS, block_s=21600, store=store, recheck_days=1,
                input_options=opts if str(sds).startswith("s3") else None,
                output_options=opts if str(store).startswith("s3") else None))

        store = f"{url}-out.zarr"
        _, results = plan_and_run_in_process(cfg(start + 86400 * days, store, f"n{days}.toml"))
        assert len(results) == 4 * days and all(r.ok for r in results)
        last = files[-1]
        assert last == sds_path(root, seed_id, start + 86400 * days)
        fs.put_file(str(last), f"{url[5:]}/{last.relative_to(root)}")
        nightly = cfg(start + 86400 * (days + 1), store, f"n{days}b.toml")
        before = s3env.requests()
        _, results = plan_and_run_in_process(nightly)
        after = s3env.requests()
        # The new day's blocks, and the last block before it (its window reaches past midnight).
        assert sorted(r.block for r in results) == list(range(4 * days - 1, 4 * days + 4))
        assert all(r.ok for r in results)
        counts[days] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    totals = [c["total"] for c in counts.values()]
    assert max(totals) <= min(totals) * 1.1, counts  # flat, not 4x from 2 to 8 days
    fresh = tmp_path / "fresh.zarr"
    _, results = plan_and_run_in_process(cfg(start + 86400 * 9, fresh, "fresh.toml", sds=root))
    assert all(r.ok for r in results)
    assert_stores_bitwise_equal(fresh, Url(store, dict(opts, **_creds(s3env))), ("XX.CCC.",), ignore=("block_files",))
    print("nightly requests by archive size (station-days):", counts)


def test_analyze_export_info_plot_and_open_results_on_an_s3_store(s3env, s3url, tmp_path, capsys, monkeypatch):
    """The same synthetic store on disk and on S3: ``analyze`` writes the same analysis to both,
    and ``info``, ``plot``, ``export`` and ``open_results`` give the same answers."""
    import contextlib

    pytest.importorskip("sklearn")
    from helpers import load_group

    import scatflow
    from scatflow.cli import main
    from scatflow.synthetic.store import write_store
    from scatflow.workflow import cluster as clustermod

    monkeypatch.setattr(clustermod, "connect", lambda cfg, log=print: contextlib.nullcontext())
    opts = {"endpoint_url": s3env.endpoint}
    url = Url(f"{s3url}/synthetic.zarr", opts)
    said = {}
    for name, store in (("disk", tmp_path / "synthetic.zarr"), ("s3", url)):
        write_store(store, ["X9.A."], 360, layers=SMALL_LAYERS, sampling_rate=20.0, block_windows=90)
        cfg = tmp_path / f"{name}.toml"
        table = "" if name == "disk" else f'storage_options = {{ endpoint_url = "{s3env.endpoint}" }}\n'
        cfg.write_text('[input]\npaths = ["unused.mseed"]\n[network]\n'
                       'layers = [{ octaves = 4, resolution = 2, quality = 2 }, { octaves = 3, resolution = 1, quality = 2 }]\n'
                       f'[output]\nstore = "{store}"\n{table}[analysis]\nsample = 300\ncomponents = 2\nclusters = 2\n')
        capsys.readouterr()
        assert main(["analyze", str(cfg), "--quiet"]) == 0
        assert main(["info", str(cfg)]) == 0
        assert main(["plot", str(cfg), "-o", str(tmp_path / f"{name}.png")]) == 0
        assert main(["export", str(cfg), "--analysis", "ica", "-o", str(tmp_path / f"{name}.csv")]) == 0
        out = capsys.readouterr().out.replace(str(store), "STORE").replace(str(tmp_path / name), "OUT")
        said[name] = re.sub(r"\d+\.\d+ s\b|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "T", out)  # times differ
    assert said["disk"] == said["s3"] and "X9.A." in said["s3"]
    assert (tmp_path / "disk.csv").read_bytes() == (tmp_path / "s3.csv").read_bytes()
    assert (tmp_path / "s3.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "s3.png").read_bytes() == (tmp_path / "disk.png").read_bytes()
    remote = Url(url, dict(opts, **_creds(s3env)))
    assert_stores_bitwise_equal(tmp_path / "synthetic.zarr", remote, ("X9.A.", "analysis/ica/X9.A."))
    model = [zarr.open_group(zarr_store(s), mode="r", use_consolidated=False)["analysis/ica"]
             for s in (str(tmp_path / "synthetic.zarr"), remote)]
    names = sorted(model[0].array_keys())
    assert names and names == sorted(model[1].array_keys())
    for name in names:  # the model (the group's attributes differ by the time it was fitted)
        assert model[0][name][:].tobytes() == model[1][name][:].tobytes(), name
    # A bare URL: the endpoint and credentials from the environment, as botocore reads them.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3env.endpoint)
    assert main(["info", str(url)]) == 0 and main(["info", str(cfg)]) == 0
    by_url, by_config = capsys.readouterr().out.split("store:      ")[1:]
    assert by_url == by_config and "X9.A." in by_url
    tree = scatflow.open_results(str(url), storage_options=opts)
    local = load_group(tmp_path / "synthetic.zarr", "X9.A.")
    assert tree["X9.A."].to_dataset()["order_1"].values.tobytes() == local["order_1"].values.tobytes()


def test_what_an_object_store_cannot_do_atomically_is_refused_in_one_line(s3env, s3url):
    """Re-laying a station for new channels swaps directories by rename, and ``upgrade`` rewrites
    groups in place: both are refused on an object store, naming what to do instead."""
    from scatflow.store.upgrade import upgrade

    store = Url(f"{s3url}/relay.zarr", {"endpoint_url": s3env.endpoint})
    with pytest.raises(StoreError, match=r"XX\.AAA\. gains channels .*not supported on an object store"):
        Store(store).add_channels("XX.AAA.", ["XX.AAA..HHN", "XX.AAA..HHZ"])
    with pytest.raises(StoreError, match="upgrade works on a local store"):
        upgrade(store)
    assert Store(store).recover() == []


def test_preprocessing_with_archive_inventory_and_store_on_s3_gives_the_disk_store_bitwise(
        archives, s3env, s3url, tmp_path):
    """Response removal, filter: the StationXML read from S3 (``[preprocess] inventory`` URL glob) gives
    the same store as from disk, the response records included."""
    from scatflow.synthetic import write_inventory

    disk, url = archives
    xml = tmp_path / "meta" / "stations.xml"
    xml.parent.mkdir()
    write_inventory(xml, {"XX.AAA.": {"sampling_rate": 20.0, "channels": ["XX.AAA..HHN", "XX.AAA..HHZ"]},
                          "XX.BBB.": {"sampling_rate": 20.0, "channels": ["XX.BBB..HHZ"]}}, start="2015-01-01")
    fs_of(s3env).put_file(str(xml), f"{s3url[5:]}/meta/stations.xml")
    stores = []
    for where, root, inventory, store in ((("disk"), disk, str(xml), tmp_path / "pre.zarr"),
                                          ("s3", url, f"{s3url}/meta/*.xml", f"{s3url}/pre.zarr")):
        table = "" if where == "disk" else f'storage_options = {{ endpoint_url = "{s3env.endpoint}" }}\n'
        body = (f'inventory = ["{inventory}"]\nresponse = "velocity"\npre_filt = [0.2, 0.5, 8.0, 9.5]\n'
                'filter = { type = "highpass", freq = 1.0, corners = 4, zerophase = true }\n' + table)
        opts = {"endpoint_url": s3env.endpoint} if where == "s3" else None
        cfg = load_config(write_config(tmp_path / f"{where}.toml", sds=root, select=["XX.*.*.HH?"], start=START,
                                       end=END, layers=SMALL_LAYERS, block_s=10800, store=store, preprocess=body,
                                       input_options=opts, output_options=opts))
        _, results = plan_and_run_in_process(cfg)
        assert results and all(r.ok for r in results), [r.error for r in results]
        stores.append(cfg.output["store"])
    assert_stores_bitwise_equal(stores[0], stores[1], GROUPS, ignore=("block_files",))
    for group in GROUPS:
        here, there = ledger_records(stores[0], group), ledger_records(stores[1], group)
        assert without_identity(here) == without_identity(there)
        assert any(r["path"].startswith("response:") for block in there for r in block)


def test_nightly_runs_on_an_s3_archive_end_equal_to_one_fresh_run(s3env, s3url, tmp_path):
    """The live archive on S3, store on S3: a day delivered half, then rewritten whole; an outage at
    one station whose day comes late; each night a run. Once the objects stop changing, one more
    run leaves the store equal to one fresh run over the final archive."""
    from helpers import sds_path

    fs = fs_of(s3env)
    ids = ["XX.AAA..HHZ", "XX.BBB..HHZ"]
    start = obspy.UTCDateTime("2016-03-01")
    final = tmp_path / "final"
    write_sds(final, ids, start, start + 3 * 86400, rate=10.0)
    live = f"{s3url}/live"
    opts = {"endpoint_url": s3env.endpoint}

    def deliver(seed_id, day, until=None):
        src = sds_path(final, seed_id, start + day * 86400)
        key = f"{live[5:]}/{src.relative_to(final)}"
        if until is None:
            fs.put_file(str(src), key)
        else:
            part = tmp_path / "part"
            obspy.read(str(src), endtime=start + day * 86400 + until).write(str(part), format="MSEED",
                                                                            encoding="STEIM2", reclen=512)
            fs.put_file(str(part), key)

    def night(days, store, name, sds=live):
        cfg = load_config(write_config(
            tmp_path / name, sds=sds, select=["XX.*.*.HHZ"], start=str(start)[:19],
            end=str(start + days * 86400)[:19], layers=SMALL_LAYERS, block_s=21600, store=store,
            input_options=opts if str(sds).startswith("s3") else None, output_options=opts))
        _, results = plan_and_run_in_process(cfg)
        assert all(r.ok or r.no_data for r in results), [r.error for r in results]  # an outage is no error
        return results

    store = f"{s3url}/nightly.zarr"
    deliver(ids[0], 0), deliver(ids[1], 0), deliver(ids[0], 1, until=13 * 3600)  # day 1 half there
    night(2, store, "n0.toml")
    deliver(ids[0], 1), deliver(ids[0], 2)  # day 1 rewritten whole; BBB's day 1 missing (an outage)
    done = night(3, store, "n1.toml")
    assert {(r.station, r.block) for r in done} >= {("XX.AAA.", b) for b in range(4, 8)}  # the rewrite
    assert {r.block for r in done if r.station == "XX.BBB." and r.no_data} >= {4, 5, 6, 7}  # the outage
    deliver(ids[1], 2)
    night(3, store, "n2.toml")
    deliver(ids[1], 1)  # BBB's day 1 comes late
    late = night(3, store, "n3.toml")
    assert {r.block for r in late if r.station == "XX.BBB." and not r.no_data} >= {4, 5, 6, 7}
    again = night(3, store, "n4.toml")  # nothing changed since: nothing to do
    assert again == []
    fresh = f"{s3url}/fresh.zarr"
    night(3, fresh, "fresh.toml")
    remote = {"endpoint_url": s3env.endpoint, **_creds(s3env)}
    assert_stores_bitwise_equal(Url(fresh, remote), Url(store, remote), ("XX.AAA.", "XX.BBB."))


def test_a_store_in_a_bucket_that_does_not_exist_is_refused_naming_it(s3env):
    store = Store(Url("s3://no-such-bucket-5f3a/out.zarr", {"endpoint_url": s3env.endpoint}))
    with pytest.raises(StoreError, match=rf"no bucket s3://no-such-bucket-5f3a at {s3env.endpoint}"):
        store.check_writable()
