"""A run plans first and asks for its cluster only when there is a block to compute: a night with
nothing new starts no cluster and submits no worker job, and still records itself."""

import pytest
import zarr
from helpers import plan_and_run_in_process, write_config, write_sds

from scatflow.config import load_config
from scatflow.workflow import cluster
from scatflow.workflow.run import run

LAYERS = [{"octaves": 3, "resolution": 2, "quality": 2}]


def test_a_run_with_nothing_to_compute_never_asks_for_a_cluster(tmp_path):
    write_sds(tmp_path / "archive", ["XX.AAA..LHZ"], "2016-01-01", "2016-01-02", rate=1.0)
    cfg = load_config(write_config(tmp_path / "run.toml", sds=tmp_path / "archive", start="2016-01-01",
                                   end="2016-01-02", window_s=200.0, block_s=43200, layers=LAYERS,
                                   store=tmp_path / "out.zarr"))
    _, results = plan_and_run_in_process(cfg)
    assert results and all(r.ok for r in results)
    asked, lines = [], []

    def start_cluster():
        asked.append(True)
        raise AssertionError("a run with nothing to compute asked for a cluster")

    summary = run(cfg, start_cluster, log=lines.append)
    assert asked == [] and summary.ok and summary.done == 0 and summary.failed == []
    assert "plan: 0 block(s) to compute" in lines[0] and summary.text().startswith("done: 0 block(s)")
    (entry,) = zarr.open_group(str(tmp_path / "out.zarr"), mode="r").attrs["scatflow"]["runs"]
    assert entry["blocks_done"] == 0 and entry["workers"] == []


def test_a_job_cluster_is_not_started_until_asked_for():
    """Entering and leaving ``on_demand`` of a SLURM cluster builds nothing (no scheduler, no
    job; the fast tier's guard fails any test that creates a Dask cluster or client)."""
    logs = []
    with cluster.on_demand({"kind": "slurm", "jobs": 2, "queue": "debug", "cores": 1, "memory": "1GB"},
                           log=logs.append) as start:
        assert callable(start)
    assert logs == []


@pytest.mark.slow
def test_local_workers_keep_freed_memory_in_their_heap_unless_told_otherwise(monkeypatch):
    """Dask's 64 KiB trim threshold makes a worker that has just preprocessed a block page-fault
    through the kernel (+20 % per block, benchmarks/profile.py): local workers get
    WORKER_TRIM_BYTES, unless the user set the variable."""
    import os

    import dask
    import distributed  # noqa: F401 - its defaults must be in Dask's config before the set() below restores it

    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

    def workers_value():
        with dask.config.set({key: 65536}):  # Dask's default, restored after
            with cluster.on_demand({"kind": "local", "workers": 1, "dashboard": False}, log=lambda s: None) as start:
                handle = start()
                handle.wait_ready()
                return set(handle.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert workers_value() == {str(cluster.WORKER_TRIM_BYTES)}
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    assert workers_value() == {"1048576"}
