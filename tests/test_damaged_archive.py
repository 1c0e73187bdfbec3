"""An SDS archive with odd files: a damaged, empty or mislabelled day file fails only the blocks
that read it (or refuses only its station), never the network, and never makes a station vanish."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from helpers import SMALL_LAYERS, assert_same_store, block_inputs_now, load_group, relabel, sds_path, write_config, write_sds

from scatflow.cli import main
from scatflow.config import load_config
from scatflow.store.ledger import contents_differ
from scatflow.workflow.plan import make_plan
from scatflow.workflow.run import execute_here, prepare_store
from scatflow.store.writer import Store

DAY1, DAY2 = "2015-12-04", "2015-12-05"
START, END = "2015-12-04T22:00:00", "2015-12-05T03:00:00"  # 5 one-hour blocks
COMPONENTS = ("HHE", "HHN", "HHZ")
# The blocks whose windows hold samples of each day (block 1's last window ends at 00:00:05); block 2
# opens DAY1's files too (ObsPy's SDS file border) but reads no record of them.
READS_DAY1, READS_DAY2 = [0, 1], [1, 2, 3, 4]
RUN = {"window_s": 10.0, "layers": SMALL_LAYERS, "block_s": 3600, "start": START, "end": END}


def ids(sta):
    return [f"XX.{sta}..{c}" for c in COMPONENTS]


def write_damaged(root):
    """AAA is whole; BBB's first HHZ file is cut mid-record; CCC's HHN is one zero-byte file;
    DDD's first files hold records of station EEE; FFF's second-day files hold records of GGG."""
    write_sds(root, [i for sta in ("AAA", "BBB", "CCC", "DDD", "FFF") for i in ids(sta)], START, END)
    truncated = sds_path(root, "XX.BBB..HHZ", DAY1)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    empty = sds_path(root, "XX.CCC..HHN", DAY1)
    empty.write_bytes(b"")
    sds_path(root, "XX.CCC..HHN", DAY2).unlink()
    for seed_id in ids("DDD"):
        relabel(sds_path(root, seed_id, DAY1), "EEE")
    for seed_id in ids("FFF"):
        relabel(sds_path(root, seed_id, DAY2), "GGG")
    return {"truncated": str(truncated), "empty": str(empty),
            "first": str(sds_path(root, "XX.DDD..HHE", DAY1)), "later": str(sds_path(root, "XX.FFF..HHE", DAY2))}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged") / "archive"
    return root, write_damaged(root)


def plan_of(tmp_path, root, **kw):
    cfg = load_config(write_config(tmp_path / "run.toml", sds=root, store=tmp_path / "out.zarr", **RUN, **kw))
    return cfg, make_plan(cfg, Store(cfg.output["store"]))


def compute(cfg, plan):
    store = Store(cfg.output["store"])
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    return {(r.station, r.block): r for r in execute_here(plan)}


@pytest.mark.parametrize("sta", ["BBB", "CCC", "DDD"])
def test_planning_keeps_a_station_whatever_its_first_files(damaged, tmp_path, sta):
    root, files = damaged
    _, plan = plan_of(tmp_path, root, select=[f"XX.{sta}.*.*"])
    ((sp,),) = [plan.stations]
    assert sp.key == f"XX.{sta}." and sp.station.channels == ids(sta) and sp.station.sampling_rate == 20.0
    assert sp.todo == [0, 1, 2, 3, 4] and not plan.refused
    if sta == "CCC":
        # The empty-only channel stays in its station (the store's channels stay put) and is noted.
        ((channel, note),) = plan.notes
        assert channel == "XX.CCC..HHN" and f"{files['empty']}: empty file" in note and "20 Hz" in note
        assert "XX.CCC..HHN" in plan.describe() and files["empty"] in plan.describe()
    else:
        assert plan.notes == []


def test_a_station_with_no_readable_file_is_refused_naming_them(damaged, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(damaged[0], root)
    for seed_id in ids("HHH"):  # every file empty, damaged or of another station
        sds_path(root, seed_id, DAY1).parent.mkdir(parents=True)
    sds_path(root, "XX.HHH..HHE", DAY1).write_bytes(b"")
    sds_path(root, "XX.HHH..HHN", DAY1).write_bytes(b"garbage" * 100)
    shutil.copy(sds_path(root, "XX.AAA..HHZ", DAY1), sds_path(root, "XX.HHH..HHZ", DAY1))
    _, plan = plan_of(tmp_path, root)
    assert "XX.HHH." not in [sp.key for sp in plan.stations] and len(plan.stations) == 5
    ((key, why),) = plan.refused
    assert key == "XX.HHH." and "no channel has a readable file" in why
    assert f"{sds_path(root, 'XX.HHH..HHE', DAY1)}: empty file" in why
    assert f"{sds_path(root, 'XX.HHH..HHN', DAY1)}: not a readable waveform file" in why
    assert f"{sds_path(root, 'XX.HHH..HHZ', DAY1)}: holds records of XX.AAA..HHZ, not of its SDS path" in why


def test_odd_files_fail_only_the_blocks_that_read_them(damaged, tmp_path):
    root, files = damaged
    cfg, plan = plan_of(tmp_path, root, select=["XX.BBB.*.*", "XX.CCC.*.*", "XX.DDD.*.*", "XX.FFF.*.*"])
    results = compute(cfg, plan)

    def failed(sta):
        return {b: r.error for (s, b), r in results.items() if s == f"XX.{sta}." and r.error}

    # A truncated first file fails the blocks reading it, naming it; later blocks are computed.
    assert sorted(failed("BBB")) == READS_DAY1
    assert all(e.startswith(f"{files['truncated']}: truncated or damaged miniSEED") for e in failed("BBB").values())
    # A first file of another station: its blocks fail, naming the file and both ids; never an outage.
    assert sorted(failed("DDD")) == READS_DAY1
    assert failed("DDD")[0].startswith(f"{files['first']}: holds records of XX.EEE..HHE, not of its SDS path "
                                       "XX.DDD..HHE")
    # A later file of another station: reported as such, not as "no data".
    assert sorted(failed("FFF")) == READS_DAY2
    assert failed("FFF")[4].startswith(f"{files['later']}: holds records of XX.GGG..HHE, not of its SDS path")
    assert not any(r.no_data for r in results.values())
    assert not failed("CCC")
    for sta, done in (("BBB", [2, 3, 4]), ("DDD", [2, 3, 4]), ("FFF", [0]), ("CCC", [0, 1, 2, 3, 4])):
        assert [b for (s, b), r in results.items() if s == f"XX.{sta}." and r.ok] == done
    store = tmp_path / "out.zarr"
    ccc = load_group(store, "XX.CCC.")
    hhn = list(ccc.channel.values).index("XX.CCC..HHN")
    assert (ccc.coverage.values[:, hhn] == 0).all() and np.isnan(ccc.order_1.values[:, hhn]).all()
    assert np.isfinite(np.delete(ccc.order_1.values, hhn, axis=1)).all()
    ddd = load_group(store, "XX.DDD.")
    assert list(ddd.block_error.values[:2]) == [failed("DDD")[b] for b in READS_DAY1]
    assert (ddd.block_done.values[:2] == 0).all() and (ddd.block_done.values[2:] > 0).all()


def test_a_fixed_mislabelled_file_is_computed_by_the_next_run(damaged, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(damaged[0], root)
    cfg, plan = plan_of(tmp_path, root, select=["XX.FFF.*.*"])
    assert sorted(b for (_, b), r in compute(cfg, plan).items() if r.error) == READS_DAY2
    for seed_id in ids("FFF"):
        relabel(sds_path(root, seed_id, DAY2), "FFF")
    cfg, plan = plan_of(tmp_path, root, select=["XX.FFF.*.*"])
    assert plan.stations[0].todo == READS_DAY2
    assert all(r.ok for r in compute(cfg, plan).values())


@pytest.mark.slow
def test_damaged_archive_end_to_end(damaged, tmp_path, capsys):
    root, files = damaged
    clean = tmp_path / "clean"
    write_sds(clean, ids("AAA"), START, END)  # the same archive without the damaged stations
    cfg = write_config(tmp_path / "d.toml", sds=root, store=tmp_path / "d.zarr", workers=2, **RUN)
    ref = write_config(tmp_path / "c.toml", sds=clean, store=tmp_path / "c.zarr", workers=2, **RUN)
    assert main(["run", str(cfg), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert main(["run", str(ref), "--quiet"]) == 0
    capsys.readouterr()
    assert_same_store(tmp_path / "d.zarr", tmp_path / "c.zarr", groups=("XX.AAA.",))
    # Each problem named in the summary, with its file; nothing reported as an outage.
    assert "no data: 0; failed: 8" in out
    assert f"failed XX.BBB. block 0: {files['truncated']}: truncated or damaged miniSEED" in out
    assert f"note XX.CCC..HHN: no readable file of its own ({files['empty']}: empty file)" in out
    assert f"failed XX.DDD. block 0: {files['first']}: holds records of XX.EEE..HHE" in out
    assert f"failed XX.FFF. block 4: {files['later']}: holds records of XX.GGG..HHE" in out
    groups = zarr.open_group(str(tmp_path / "d.zarr"), mode="r", use_consolidated=False)
    assert sorted(k for k, _ in groups.groups()) == ["XX.AAA.", "XX.BBB.", "XX.CCC.", "XX.DDD.", "XX.FFF."]
    # info: the failed blocks with their files, and the last run's notes.
    assert main(["info", str(tmp_path / "d.zarr")]) == 0
    info = capsys.readouterr().out
    assert f"block 0 (2015-12-04T22:00:00Z .. 2015-12-04T23:00:05Z): {files['first']}: holds records of" in info
    assert f"XX.CCC..HHN: no readable file of its own ({files['empty']}: empty file)" in info
    run = groups.attrs["scatflow"]["runs"][-1]
    assert [n["channel"] for n in run["notes"]] == ["XX.CCC..HHN"] and files["empty"] in run["notes"][0]["note"]


def test_a_same_size_rewrite_with_its_mtime_restored_is_seen_by_the_content_hash(damaged, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(damaged[0], root)
    cfg, plan = plan_of(tmp_path, root, select=["XX.AAA.*.*"])
    assert all(r.ok for r in compute(cfg, plan).values())
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r+", use_consolidated=False)["XX.AAA."]
    records = json.loads(str(group["block_files"][0]))
    assert records and all(r["blake2b"] == hashlib.blake2b((root / r["path"]).read_bytes(), digest_size=16).hexdigest()
                           for r in records)
    current = block_inputs_now(plan, 0)
    # Swap two records of a day file (same size, other bytes) and restore its mtime, as `cp -p` would.
    path = sds_path(root, "XX.AAA..HHZ", DAY1)
    st, data = path.stat(), path.read_bytes()
    path.write_bytes(data[512:1024] + data[:512] + data[1024:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Nightly planning compares size and mtime only (the hash would read every file of every done
    # block each night); the deliberate check sees the rewrite.
    assert plan_of(tmp_path, root, select=["XX.AAA.*.*"])[1].stations[0].todo == []
    assert contents_differ(records, current) == [str(path)]
    # `scatflow run --recheck-all` compares the hashes: exactly the blocks that read the file.
    readers = [b for b, cell in enumerate(group["block_files"][:])
               if path.relative_to(root).as_posix() in {r["path"] for r in json.loads(str(cell) or "[]")}]
    cfg, plan = plan_of(tmp_path, root, select=["XX.AAA.*.*"])
    recheck = make_plan(cfg, Store(cfg.output["store"]), recheck_all=True)
    assert readers and recheck.stations[0].todo == readers and recheck.stations[0].why == {"inputs changed": len(readers)}
    assert all(r.ok for r in compute(cfg, recheck).values())
    assert make_plan(cfg, Store(cfg.output["store"]), recheck_all=True).stations[0].todo == []
    records = json.loads(str(group["block_files"][0]))
    # Records written before the hash existed count as unchanged, by planning and by the check.
    old = [{k: v for k, v in r.items() if k != "blake2b"} for r in records]
    group["block_files"][0] = json.dumps(old)
    assert plan_of(tmp_path, root, select=["XX.AAA.*.*"])[1].stations[0].todo == []
    assert contents_differ(old, current) == []
