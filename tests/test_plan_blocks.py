"""Planning and block tasks in one process, on real miniSEED files and a real Zarr store, without a
cluster: what is planned, what a block writes, what the ledger then says, and that the in-memory
API computes the same numbers."""

import os

import numpy as np
import obspy
import pytest
import xarray as xr
import zarr
from helpers import SMALL_LAYERS, n_blocks, n_windows, one_line_error, windows_per_block

import scatflow
from scatflow.workflow.blocks import BlockResult
from scatflow.cli import main
from scatflow.config import parse_config
from scatflow.workflow.plan import make_plan
from scatflow.workflow.run import execute_here, prepare_store
from scatflow.store.writer import Store
from scatflow.synthetic import write_day

LAYERS = SMALL_LAYERS
RATE, WINDOW_S, HOP_S, BLOCK_S = 20.0, 40.0, 20.0, 1800.0
START = obspy.UTCDateTime("2015-12-04T00:00:00")
GROUP = "X9.SV13."


def windows_in(span_s: float) -> int:
    return n_windows(span_s, WINDOW_S, HOP_S)


CHUNK = windows_per_block(BLOCK_S, HOP_S)


@pytest.fixture(scope="module")
def day_file(tmp_path_factory):
    """Three hours of the synthetic three-component station at 20 Hz, in one miniSEED file."""
    path = tmp_path_factory.mktemp("data") / "X9.SV13..HH.mseed"
    write_day(path, start=str(START), sampling_rate=RATE, duration_s=3 * 3600 + 1 / RATE)
    return path


def config(day_file, store, hours=2, dtype="float64"):
    return parse_config({
        "input": {"paths": [str(day_file)], "start": str(START)[:19], "end": str(START + hours * 3600)[:19]},
        "network": {"window_s": WINDOW_S, "overlap": 1 - HOP_S / WINDOW_S, "layers": LAYERS},
        "output": {"store": str(store), "dtype": dtype, "block_s": BLOCK_S},
    })


def test_plan_of_a_new_store(day_file, tmp_path):
    cfg = config(day_file, tmp_path / "s.zarr")
    plan = make_plan(cfg, Store(cfg.output["store"]))
    assert plan.skipped == []
    (sp,) = plan.stations
    n = windows_in(2 * 3600)
    assert (sp.key, sp.span, sp.n_old, sp.n_new) == (GROUP, (0, n - 1), 0, n)
    assert sp.todo == list(range(n_blocks(n, CHUNK))) and sp.complete == 0
    assert (sp.grid.bins, sp.grid.hop) == (WINDOW_S * RATE, HOP_S * RATE)
    tasks = list(plan.block_tasks())
    # One task per shard (a day of blocks): a shard is only ever written by one task.
    assert [b for t in tasks for b in t.todo_blocks] == sp.todo
    assert all(len({b // sp.shard for b in t.todo_blocks}) == 1 for t in tasks)
    # A task carries its own file's extents only, and the read span of its windows.
    assert {e["path"] for e in tasks[0].source["extents"]} == {os.path.abspath(day_file)}
    assert not os.path.exists(cfg.output["store"])  # planning writes nothing


def run_blocks(plan, blocks):
    for sp in plan.stations:
        sp.todo = [b for b in sp.todo if b in blocks]
    results = execute_here(plan)
    assert all(isinstance(r, BlockResult) and r.ok for r in results), [r.error for r in results]
    return results


@pytest.fixture
def half_done(day_file, tmp_path):
    """A store with blocks 0 and 2 of the two-hour span computed in this process."""
    cfg = config(day_file, tmp_path / "s.zarr")
    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    results = run_blocks(plan, {0, 2})
    assert [r.computed for r in results] == [CHUNK, CHUNK]
    return cfg, store


def test_resume_plans_only_what_is_not_complete(half_done):
    cfg, store = half_done
    (sp,) = make_plan(cfg, store).stations
    assert sp.todo == [1, 3] and sp.complete == 2


def test_a_block_whose_data_was_deleted_is_planned_again_by_a_full_check(half_done):
    cfg, store = half_done
    cov = zarr.open_group(store.path, mode="r", use_consolidated=False)[GROUP]["coverage"]
    (sp,) = make_plan(cfg, store).stations
    shard = cov.shards[0] // cov.chunks[0]
    assert shard > 2  # blocks 0 and 2 share one shard: deleting it deletes both
    os.remove(os.path.join(store.path, GROUP, "coverage", cov.metadata.encode_chunk_key((0, 0))))
    # A nightly plan trusts the ledger (no look at chunks); the full check finds the loss.
    (sp,) = make_plan(cfg, store).stations
    assert sp.todo == [1, 3]
    (sp,) = make_plan(cfg, store, recheck_all=True).stations
    assert sp.todo == [0, 1, 2, 3] and sp.why == {"pending": 2, "missing data": 2}


def test_a_later_span_grows_the_group_and_redoes_the_partial_block(half_done, day_file):
    cfg, store = half_done
    later = config(day_file, store.path, hours=3)
    (sp,) = make_plan(later, store).stations
    n2, n3 = windows_in(2 * 3600), windows_in(3 * 3600)
    assert (sp.n_old, sp.n_new) == (n2, n3)
    # The last two-hour block held fewer windows than a block: it is computed again with the new ones.
    assert n2 % CHUNK and sp.todo == [1] + list(range(n2 // CHUNK, n_blocks(n3, CHUNK)))


def test_blocks_equal_the_in_memory_api_bitwise(half_done, day_file):
    cfg, store = half_done
    stored = xr.open_zarr(store.path, group=GROUP, consolidated=False).load()
    net = scatflow.ScatteringNetwork(*LAYERS, bins=int(WINDOW_S * RATE), sampling_rate=RATE)
    # Dask chunks of 40 windows, not the store's blocks of 90: the numbers must not depend on it.
    mem = scatflow.transform_stream(obspy.read(str(day_file)), net, overlap=1 - HOP_S / WINDOW_S, start=START,
                                    end=START + 2 * 3600, dtype=np.float64, chunk=40).compute()
    assert mem.sizes["time"] == stored.sizes["time"] == windows_in(2 * 3600)
    np.testing.assert_array_equal(stored["time"].values, mem["time"].values)
    for b in (0, 2):  # the blocks computed
        part = slice(b * CHUNK, (b + 1) * CHUNK)
        for name in ("order_1", "order_2"):
            assert stored[name][part].values.tobytes() == mem[name][part].values.tobytes(), (b, name)
        np.testing.assert_array_equal(stored["coverage"][part].values, mem["coverage"][part].values)
    assert np.isnan(stored["order_1"][CHUNK : 2 * CHUNK].values).all()  # block 1 not computed: NaN


def test_dry_run_prints_the_plan_without_a_cluster(day_file, tmp_path, capsys):
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(f"""
[input]
paths = ["{day_file}"]
start = "{str(START)[:19]}"
end = "{str(START + 7200)[:19]}"
[network]
window_s = {WINDOW_S}
layers = [{{ octaves = 4, resolution = 2, quality = 2 }}]
[output]
store = "s.zarr"
block_s = {BLOCK_S}
""")
    assert main(["run", str(cfg_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    blocks = n_blocks(windows_in(7200), CHUNK)
    assert f"plan: {blocks} block(s) to compute" in out
    assert f"windows 0..{windows_in(7200) - 1}" in out
    assert not (tmp_path / "s.zarr").exists()


def test_cluster_and_scheduler_together_are_refused(tmp_path, capsys):
    line = one_line_error(capsys, ["run", str(tmp_path / "none.toml"), "--cluster", "local",
                                   "--scheduler", "tcp://127.0.0.1:1"])
    assert line == "scatflow: error: give --cluster (local) or --scheduler (tcp://127.0.0.1:1), not both"
