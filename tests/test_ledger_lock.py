"""Unit tests of the ledger rule (scatflow.store.ledger, on arrays and on a real Zarr store) and the
writer lock's staleness (scatflow.store.lock). No cluster."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from scatflow.store import dataset
from scatflow.errors import StoreError
from scatflow.inputs.grid import Blocks
from scatflow.store.ledger import COMPLETE, FAILED, MISSING, PENDING, Ledger
from scatflow.store.lock import STALE_S, UNREADABLE_GRACE_S, is_stale, lock_path, read_holder, writer_lock
from scatflow.scattering.network import ScatteringNetwork
from scatflow.store.reader import StoreReader, missing_blocks
from scatflow.store.writer import Store, read_ledger

BLOCKS = Blocks(chunk=10, n=45)  # four full blocks and a partial one of 5 windows


def ledger(done, errors=(), has_data=lambda b: True):
    return Ledger.from_arrays(BLOCKS, done, errors, has_data)


def test_complete_needs_every_window_of_the_block():
    led = ledger([10, 9, 10, 0, 5])
    assert [led.state(b) for b in range(5)] == [COMPLETE, PENDING, COMPLETE, PENDING, COMPLETE]
    assert led.where(COMPLETE) == [0, 2, 4]
    assert led.todo(range(5)) == [1, 3]


def test_failed_is_not_done_with_a_reason():
    led = ledger([0, 0, 10, 0, 0], ["no data", "", "", "", "boom"])
    assert led.where(FAILED) == [0, 4]
    assert led.where(PENDING) == [1, 3]


def test_marked_done_without_data_is_missing_and_recomputed():
    led = ledger([10, 10, 3, 0, 5], has_data=lambda b: b not in (1, 2))
    assert led.where(MISSING) == [1, 2]  # a partly written block whose data is gone too
    assert led.todo(range(5)) == [1, 2, 3]


def test_data_presence_is_asked_once_per_done_block_only():
    asked = []

    def has_data(b):
        asked.append(b)
        return True

    led = ledger([10, 0, 10, 0, 0], has_data=has_data)
    for _ in range(3):
        led.where(COMPLETE)
    assert sorted(asked) == [0, 2]


def test_a_ledger_shorter_than_the_blocks_is_not_done_beyond_it():
    # The planner's view of a store about to grow from 25 to 45 windows.
    led = Ledger.from_arrays(BLOCKS, [10, 10, 5], ["", "", ""])
    assert led.done.tolist() == [10, 10, 5, 0, 0]
    assert [led.errors[b] for b in range(5)] == [""] * 5
    # Block 2 held 5 windows before the growth: now it holds 10, so it is computed again.
    assert led.todo(range(5)) == [2, 3, 4]


# -- the same rule on a real store ------------------------------------------------------------
LAYERS = [{"octaves": 2, "resolution": 1, "quality": 1}]
CHANNELS = ["X9.TEST..HHZ", "X9.TEST..HHN"]


@pytest.fixture
def small_store(tmp_path):
    """A store with one station group of 45 windows in blocks of 10, all blocks written and marked."""
    net = ScatteringNetwork(*LAYERS, bins=64, sampling_rate=20.0)
    times = np.arange(BLOCKS.n).astype("datetime64[s]").astype("datetime64[ns]")
    attrs = {"block_windows": BLOCKS.chunk, "min_coverage": 1.0}
    store = Store(tmp_path / "s.zarr")
    store.open_or_create({"layers": LAYERS})
    store.create_group("X9.TEST.", dataset.template(net, times, CHANNELS, "float32", BLOCKS.chunk, attrs), BLOCKS)
    rng = np.random.default_rng(0)
    data = tmp_path / "day.mseed"
    data.write_bytes(b"x" * 512)
    record = {"path": str(data), "size": 512, "mtime": data.stat().st_mtime}
    for b in range(BLOCKS.count):
        k0, k1 = BLOCKS.range(b)
        orders = [rng.random((k1 - k0, 2, 2)).astype("float32")]
        store.write_windows("X9.TEST.", k0, {"order_1": orders[0], "coverage": np.ones((k1 - k0, 2), "float32")})
        store.mark_blocks("X9.TEST.", [{"block": b, "windows": k1 - k0, "files": [record]}])
    return store


def test_store_ledger_complete_then_missing_after_a_chunk_is_deleted(small_store):
    g = zarr.open_group(small_store.path, mode="r", use_consolidated=False)["X9.TEST."]
    assert read_ledger(g).where(COMPLETE) == list(range(BLOCKS.count))
    # Delete block 3's data through the store API (as a user's rm would).
    arr = zarr.open_group(small_store.path, mode="r+", use_consolidated=False)["X9.TEST."]["coverage"]
    os.remove(os.path.join(small_store.path, "X9.TEST.", "coverage", arr.metadata.encode_chunk_key((3, 0))))
    # The ledger alone (info, a nightly plan) does not look; a full check (--recheck-all) does.
    assert read_ledger(g).where(MISSING) == []
    assert read_ledger(g, recheck=lambda b: True, check_data=True).where(MISSING) == [3]
    assert missing_blocks(small_store.path, "X9.TEST.") == [3]
    # The planner's view over a group growing to 55 windows: the partial block 4 (5 windows)
    # now holds 10 and is computed again with its new windows; the new block 5 is not done.
    grown = read_ledger(g, n=55, recheck=lambda b: True, check_data=True)
    assert grown.todo(range(grown.blocks.count)) == [3, 4, 5]


def test_store_ledger_failed_block(small_store):
    small_store.mark_blocks("X9.TEST.", [{"block": 1, "windows": 0, "error": "X9.TEST.: no data between A and B"}])
    st = StoreReader(small_store.path).station("X9.TEST.")
    assert st.ledger.where(FAILED) == [1]
    assert st.ledger.errors[1] == "X9.TEST.: no data between A and B"
    assert json.loads(str(st.group["block_files"][0]))[0]["size"] == 512


def test_reader_names_the_missing_group(small_store):
    with pytest.raises(StoreError, match=r"no station group 'X9.NOPE.'; the store has: X9.TEST\.$"):
        StoreReader(small_store.path).station("X9.NOPE.")


def test_design_differences_are_named(small_store):
    assert small_store.design_differences({"layers": LAYERS}) == []
    diffs = small_store.design_differences({"layers": LAYERS, "reduce": "max"})
    assert diffs == ["reduce: store has None, config has 'max'"]
    with pytest.raises(StoreError, match="written with another design .reduce: store has None"):
        small_store.open_or_create({"layers": LAYERS, "reduce": "max"})


# -- the writer lock --------------------------------------------------------------------------
HOST = socket.gethostname()


@pytest.mark.parametrize(
    "holder, age, alive, stale",
    [
        ({}, UNREADABLE_GRACE_S / 2, None, False),  # being written right now
        ({}, UNREADABLE_GRACE_S * 2, None, True),  # its writer died mid-write
        ({"host": HOST, "pid": 1}, STALE_S * 10, True, False),  # alive here, however old
        ({"host": HOST, "pid": 1}, 0.0, False, True),  # dead here, however fresh
        ({"host": HOST, "pid": 1}, 0.0, None, False),  # cannot tell: keep it
        ({"host": "elsewhere", "pid": 1}, STALE_S / 2, None, False),  # another host, refreshed
        ({"host": "elsewhere", "pid": 1}, STALE_S * 2, None, True),  # another host, silent too long
    ],
)
def test_lock_staleness_rule(holder, age, alive, stale):
    assert is_stale(holder, age, HOST, alive) is stale


def test_lock_refuses_a_live_holder_and_names_it(tmp_path):
    store = tmp_path / "s.zarr"
    with writer_lock(store):
        holder = read_holder(lock_path(store))
        assert holder["pid"] == os.getpid() and holder["host"] == HOST
        with pytest.raises(StoreError) as err:
            with writer_lock(store):
                pass
        assert f"host {HOST}, pid {os.getpid()}" in str(err.value)
        assert lock_path(store) in str(err.value)
    assert not os.path.exists(lock_path(store))  # released


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = tmp_path / "s.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open(lock_path(store), "w") as fh:
        json.dump({"host": HOST, "pid": dead.pid, "started": "x"}, fh)
    with writer_lock(store):
        assert read_holder(lock_path(store))["pid"] == os.getpid()


def test_lock_of_another_host_taken_over_only_when_silent(tmp_path):
    store = tmp_path / "s.zarr"
    with open(lock_path(store), "w") as fh:
        json.dump({"host": "elsewhere", "pid": 1, "started": "x"}, fh)
    with pytest.raises(StoreError, match="host elsewhere, pid 1"):
        with writer_lock(store):
            pass
    old = time.time() - STALE_S - 1
    os.utime(lock_path(store), (old, old))
    with writer_lock(store):
        assert read_holder(lock_path(store))["host"] == HOST


def test_consecutive_blocks_group_into_runs():
    from scatflow.store.ledger import consecutive

    assert consecutive([5, 0, 2, 1, 7, 8]) == [[0, 1, 2], [5], [7, 8]]
    assert consecutive([]) == []


@pytest.mark.parametrize("cut", ["block_done", "f1-values"])
def test_a_station_group_whose_creation_was_cut_short_is_created_again(tmp_path, cut):
    """A driver (or the object store under it) stopped while it created a station group leaves a
    group without ``block_done`` (written last) or without a coordinate's values: the next run
    plans the station as new, creates it whole, and ends equal to a fresh run."""
    import shutil

    from helpers import SMALL_LAYERS, assert_stores_bitwise_equal, plan_and_run_in_process, write_config, write_sds

    from scatflow.config import load_config
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import prepare_store

    root = tmp_path / "archive"
    write_sds(root, ["XX.AAA..HHZ", "XX.BBB..HHZ"], "2015-12-04", "2015-12-05", rate=10.0)

    def cfg(store, name):
        return load_config(write_config(tmp_path / name, sds=root, select=["*.*.*.HHZ"], start="2015-12-04",
                                        end="2015-12-04T12:00:00", layers=SMALL_LAYERS, block_s=10800,
                                        store=store))

    cut_cfg = cfg(tmp_path / "cut.zarr", "cut.toml")
    store = Store(cut_cfg.output["store"])
    plan = make_plan(cut_cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    key = plan.stations[0].station.key
    group = tmp_path / "cut.zarr" / key
    if cut == "block_done":
        shutil.rmtree(group / "block_done")  # stopped before the last array
    else:
        shutil.rmtree(group / "block_done")
        for chunk in (group / "f1").glob("c*"):  # stopped while the coordinates' values were written
            chunk.unlink() if chunk.is_file() else shutil.rmtree(chunk)
    assert key not in store.station_states()
    _, results = plan_and_run_in_process(cut_cfg)
    assert results and all(r.ok for r in results)
    fresh = cfg(tmp_path / "fresh.zarr", "fresh.toml")
    plan_and_run_in_process(fresh)
    assert_stores_bitwise_equal(tmp_path / "fresh.zarr", tmp_path / "cut.zarr", [s.station.key for s in plan.stations])


def test_a_station_group_whose_growth_was_cut_short_is_grown_again(tmp_path):
    """A driver stopped after it lengthened a group's arrays but before it wrote the new window
    times: the next run takes the group at its filled length, grows it again and ends equal to a
    fresh run (a time axis ending in 1970 never reaches a reader)."""
    from helpers import SMALL_LAYERS, assert_stores_bitwise_equal, plan_and_run_in_process, write_config, write_sds

    from scatflow.config import load_config
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import prepare_store

    root = tmp_path / "archive"
    write_sds(root, ["XX.AAA..HHZ"], "2015-12-04", "2015-12-05", rate=10.0)

    def cfg(store, end, name):
        return load_config(write_config(tmp_path / name, sds=root, select=["*.*.*.HHZ"], start="2015-12-04",
                                        end=end, layers=SMALL_LAYERS, block_s=10800, store=store))

    plan_and_run_in_process(cfg(tmp_path / "cut.zarr", "2015-12-04T06:00:00", "day.toml"))
    longer = cfg(tmp_path / "cut.zarr", "2015-12-04T12:00:00", "longer.toml")
    store = Store(longer.output["store"])
    old_n = store.station_states()["XX.AAA."].n_time
    prepare_store(make_plan(longer, store), store)
    times = zarr.open_group(str(tmp_path / "cut.zarr"), mode="r+", use_consolidated=False)["XX.AAA."]["time"]
    assert times.shape[0] > old_n
    times[old_n:] = 0  # the new times never written
    assert store.station_states()["XX.AAA."].n_time == old_n
    _, results = plan_and_run_in_process(longer)
    assert results and all(r.ok for r in results)
    plan_and_run_in_process(cfg(tmp_path / "fresh.zarr", "2015-12-04T12:00:00", "fresh.toml"))
    assert_stores_bitwise_equal(tmp_path / "fresh.zarr", tmp_path / "cut.zarr", ["XX.AAA."])
