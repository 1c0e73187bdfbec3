"""A nightly run costs what is new, not what is done: planning requests and files at two store
sizes, late data inside and outside the recheck window, and a driver killed before it recorded
blocks whose data its workers had written. Real SDS archives (ObsPy), real stores, no cluster."""

import obspy
import pytest
from helpers import (assert_stores_bitwise_equal, compute_all, counted_requests, sds_path, store_entries, write_config,
                     write_sds)

from scatflow.config import load_config
from scatflow.store.writer import Store
from scatflow.workflow.worker import run_block
from scatflow.workflow.plan import make_plan
from scatflow.workflow.run import execute_here, prepare_store

T0 = obspy.UTCDateTime("2021-03-01")
IDS = ["XX.AAA..BHZ", "XX.BBB..BHZ"]
#: A network that costs next to nothing at 1 Hz, so stores of many station-days build in seconds.
LAYERS = [{"octaves": 2, "resolution": 1, "quality": 1}, {"octaves": 2, "resolution": 1, "quality": 1}]


def config(tmp_path, days, store="out.zarr", name="run.toml", recheck_days=None):
    return load_config(write_config(tmp_path / name, sds=tmp_path / "sds", start=str(T0)[:19],
                                    end=str(T0 + days * 86400)[:19], layers=LAYERS, store=tmp_path / store,
                                    recheck_days=recheck_days))


def archive(tmp_path, days):
    return write_sds(tmp_path / "sds", IDS, T0, T0 + days * 86400, rate=1.0)


def night(tmp_path, days):
    """A store of ``days`` days of two stations, then the plan of the night one more day arrives:
    ``(plan, store requests of planning, (files, dirs) before, (files, dirs) after the night)``."""
    archive(tmp_path, days + 1)
    compute_all(config(tmp_path, days))
    before = store_entries(tmp_path / "out.zarr")
    cfg = config(tmp_path, days + 1)
    plan, log = counted_requests(lambda: make_plan(cfg, Store(cfg.output["store"])))
    compute_all(cfg)
    return plan, log, before, store_entries(tmp_path / "out.zarr")


def test_planning_a_night_makes_the_same_requests_whatever_the_store_holds(tmp_path):
    """16 and 64 station-days done, one more day arrives: planning makes the same store requests
    at both sizes and plans exactly the new day's blocks; a station-day costs at most 6 files and
    no directory."""
    requests = {}
    for days in (8, 32):
        plan, log, (files, dirs), (files2, dirs2) = night(tmp_path / str(days), days)
        # The new day's 4 blocks, and the day before's last one, which grows by the window straddling
        # midnight (a day of 20 s hops holds 4319 whole windows, not 4320).
        assert [sp.todo for sp in plan.stations] == [list(range(4 * days - 1, 4 * days + 4))] * len(IDS)
        # No data chunk is read: states come from the ledger (one chunk of 1024 blocks per array).
        assert not [key for _, key in log if key.split("/")[1:2] in (["order_1"], ["order_2"], ["coverage"])
                    and not key.endswith("zarr.json")], log
        assert dirs2 == dirs and files2 - files <= 6 * len(IDS), (days, files, files2)
        requests[days] = sorted(log)
    assert requests[8] == requests[32]


def rewrite(tmp_path, seed_id, day, shift):
    """Replace one day file of ``seed_id`` with other samples (late or corrected data)."""
    path = sds_path(tmp_path / "sds", seed_id, day)
    st = obspy.read(str(path))
    for tr in st:
        tr.data = tr.data + shift
    st.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
    return path


def fresh(tmp_path, days):
    cfg = config(tmp_path, days, store="fresh.zarr", name="fresh.toml")
    compute_all(cfg)
    return cfg.output["store"]


def test_late_data_outside_the_window_waits_for_the_full_check(tmp_path):
    """``recheck_days = 2``: a rewritten file 5 days back is not looked at by the night's plan; one
    within 2 days is; ``--recheck-all`` finds the old one, and the store ends equal to a fresh run."""
    archive(tmp_path, 6)
    cfg = config(tmp_path, 6, recheck_days=2)
    compute_all(cfg)
    rewrite(tmp_path, IDS[0], T0 + 1 * 86400, 7)  # day 1: blocks 4-7 read it (and 3, 8 at midnight)
    rewrite(tmp_path, IDS[1], T0 + 5 * 86400, 7)  # day 5: within 2 days of the newest window
    (a, b) = make_plan(cfg, Store(cfg.output["store"])).stations
    assert a.todo == [] and b.todo == [19, 20, 21, 22, 23]
    assert b.why == {"inputs changed": 5}
    compute_all(cfg)
    (a, b) = make_plan(cfg, Store(cfg.output["store"]), recheck_all=True).stations
    assert a.todo == [3, 4, 5, 6, 7, 8] and b.todo == [] and a.why == {"inputs changed": 6}
    plan = make_plan(cfg, Store(cfg.output["store"]), recheck_all=True)
    prepare_store(plan, Store(cfg.output["store"]))
    execute_here(plan)
    assert_stores_bitwise_equal(cfg.output["store"], fresh(tmp_path, 6), [k.rsplit(".", 1)[0] for k in IDS])


def test_a_driver_killed_before_recording_blocks_loses_nothing(tmp_path):
    """Workers wrote their blocks' data, then the driver died before its batch ledger write: those
    blocks are not done, the next run computes them again, and the store equals a fresh run."""
    archive(tmp_path, 2)
    cfg = config(tmp_path, 2)
    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    tasks = list(plan.block_tasks(token="killed"))
    for task in tasks[:2]:
        assert all(r.ok for r in run_block(task))  # data written; the driver never records them
    (sp, _) = make_plan(cfg, store).stations
    assert sp.todo == plan.stations[0].todo and sp.complete == 0
    compute_all(cfg)
    assert_stores_bitwise_equal(cfg.output["store"], fresh(tmp_path, 2), [k.rsplit(".", 1)[0] for k in IDS])


def test_a_station_that_stopped_before_a_later_span_still_grows_as_in_one_run(tmp_path):
    """Planning lists only the SDS year directories of the span: a station whose files all lie in
    earlier years is still planned from the store (blocks without data), so runs over moving spans
    end as one run over their union."""
    t0 = obspy.UTCDateTime("2020-12-30")
    write_sds(tmp_path / "sds", IDS[:1], t0, t0 + 5 * 86400, rate=1.0)
    write_sds(tmp_path / "sds", IDS[1:], t0, t0 + 86400, rate=1.0)  # BBB stops on 2020-12-31

    def cfg(a, b, store="out.zarr", name="run.toml"):
        return load_config(write_config(tmp_path / name, sds=tmp_path / "sds", start=str(t0 + a * 86400)[:19],
                                        end=str(t0 + b * 86400)[:19], layers=LAYERS, store=tmp_path / store))

    compute_all(cfg(0, 2))
    plan, _ = compute_all(cfg(3, 5))  # 2021-01-02 .. 2021-01-04: no 2020 directory listed
    assert [sp.key for sp in plan.stations] == ["XX.AAA.", "XX.BBB."]
    compute_all(cfg(2, 3))  # the day between, last
    compute_all(cfg(0, 5, store="fresh.zarr", name="fresh.toml"))
    assert_stores_bitwise_equal(tmp_path / "out.zarr", tmp_path / "fresh.zarr", ["XX.AAA.", "XX.BBB."])


def test_tasks_of_several_shards_write_the_same_store(tmp_path):
    """A backfill gives each task several shards (fewer tasks for the driver); the store does not
    depend on it, bitwise."""
    archive(tmp_path, 5)
    stores = []
    for per_task in (1, 3):
        cfg = config(tmp_path, 5, store=f"s{per_task}.zarr", name=f"s{per_task}.toml")
        store = Store(cfg.output["store"])
        plan = make_plan(cfg, store)
        store.open_or_create(plan.design.record())
        prepare_store(plan, store)
        tasks = list(plan.block_tasks(per_task=per_task))
        assert len(tasks) == len(IDS) * (2 if per_task == 3 else 5)
        assert all(r.ok for r in execute_here(plan, per_task=per_task))
        stores.append(cfg.output["store"])
    assert_stores_bitwise_equal(*stores, [k.rsplit(".", 1)[0] for k in IDS])
