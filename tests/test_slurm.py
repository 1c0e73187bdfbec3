"""Workers as SLURM jobs through dask-jobqueue, on a real single-node SLURM.

CI starts one with deploy/slurm/start-single-node.sh and sets
SCATFLOW_REQUIRE_SLURM=1, so there these tests fail rather than skip when
SLURM is not up. Elsewhere they skip with the reason.
"""

import os
import shutil
import subprocess
import time

import pytest
import xarray as xr
import zarr
from helpers import TUTORIAL_LAYERS, assert_same_store, n_windows, slurm_up, write_config

from scatflow.cli import main

pytest.importorskip("dask_jobqueue")

pytestmark = pytest.mark.slow  # SLURM jobs and local Dask clusters


#: Seconds to wait for the node to become usable: after a test it stays "comp" (completing)
#: while the previous test's worker jobs are cancelled; CI once found it so at the next setup.
SLURM_SETTLE_S = 90


def settling() -> bool:
    """Whether a SLURM controller answers but lists no usable node yet (e.g. ``comp``)."""
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["timeout", "5", "sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return out.returncode == 0 and not slurm_up()


@pytest.fixture(autouse=True)
def need_slurm():
    deadline = time.monotonic() + SLURM_SETTLE_S
    while settling() and time.monotonic() < deadline:
        time.sleep(1)
    if not slurm_up():
        if os.environ.get("SCATFLOW_REQUIRE_SLURM"):
            pytest.fail("SLURM is required here (SCATFLOW_REQUIRE_SLURM) but sinfo shows no usable node")
        pytest.skip("no SLURM controller answering (start one: bash deploy/slurm/start-single-node.sh)")


def slurm_section(jobs=2, extra=""):
    return (f'kind = "slurm"\nqueue = "debug"\ncores = 1\nmemory = "1GB"\nprocesses = 1\njobs = {jobs}\n'
            f'walltime = "00:10:00"\ninterface = "lo"\n{extra}')


def workers_of_last_run(store):
    attrs = zarr.open_group(store, mode="r", use_consolidated=False).attrs["scatflow"]
    return attrs["runs"][-1]["workers"]


def test_slurm_jobs_equal_local(sds_archive, tmp_path, monkeypatch, capsys):
    root, _ = sds_archive
    monkeypatch.chdir(tmp_path)  # the temporary TLS certificate files go to the working directory
    run = {"sds": root, "select": ("X9.SV13.*.*",), "start": "2015-12-04T22:00:00", "end": "2015-12-05T01:00:00",
           "block_s": 1800}
    local = write_config(tmp_path / "local.toml", store="local.zarr", workers=2, **run)
    slurm = write_config(tmp_path / "slurm.toml", store="slurm.zarr", cluster=slurm_section(), **run)
    assert main(["run", str(slurm), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH -p debug" in out and "--protocol tls://" in out  # TLS by default
    assert main(["run", str(local), "--quiet"]) == 0
    assert main(["run", str(slurm), "--quiet"]) == 0
    workers = workers_of_last_run(tmp_path / "slurm.zarr")
    assert workers and all(":job=" in w for w in workers), workers  # the tasks saw SLURM_JOB_ID
    assert all(":job=" not in w for w in workers_of_last_run(tmp_path / "local.zarr"))
    assert_same_store(tmp_path / "local.zarr", tmp_path / "slurm.zarr")
    assert not list(tmp_path.glob(".scatflow-tls-*"))  # temporary certificates removed


def test_worker_lifetime_shorter_than_run(sds_archive, tmp_path, monkeypatch):
    """Workers retire after 10 s (a task, one shard of 4 blocks of 15 min, takes a few seconds) and
    are replaced by new jobs; no block lost or duplicated."""
    root, _ = sds_archive
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT", "2s")
    import dask

    run = {"sds": root, "select": ("X9.SV13.*.*",), "start": "2015-12-04T08:00:00", "end": "2015-12-04T20:00:00",
           "layers": TUTORIAL_LAYERS, "block_s": 900}
    local = write_config(tmp_path / "local.toml", store="local.zarr", workers=2, **run)
    slurm = write_config(tmp_path / "slurm.toml", store="slurm.zarr", **run,
                         cluster=slurm_section(extra='lifetime = "10s"\nlifetime_stagger = "2s"\n'))
    assert main(["run", str(local), "--quiet"]) == 0
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "2s"}):
        assert main(["run", str(slurm), "--quiet"]) == 0
    jobs = {w.split(":job=")[1] for w in workers_of_last_run(tmp_path / "slurm.zarr")}
    assert len(jobs) > 2, f"workers were not replaced: jobs {jobs}"
    assert_same_store(tmp_path / "local.zarr", tmp_path / "slurm.zarr")
    ds = xr.open_zarr(tmp_path / "slurm.zarr", group="X9.SV13.", consolidated=False)
    # Every window of the 12 h span written once.
    assert ds.block_done.values.sum() == ds.sizes["time"] == n_windows(12 * 3600, 40.0, 20.0)


def last_job_id() -> int:
    """The id SLURM gives a new job now (a held probe job, cancelled at once): ids are sequential,
    so two probes one apart prove no job was submitted between them, finished or not."""
    out = subprocess.run(["sbatch", "--parsable", "--hold", "-J", "scatflow-probe", "--wrap", "true"],
                         capture_output=True, text=True, check=True, timeout=30)
    job = int(out.stdout.strip().split(";")[0])
    subprocess.run(["scancel", str(job)], check=True, timeout=30)
    return job


def test_a_run_with_nothing_to_compute_submits_no_job(sds_archive, tmp_path, monkeypatch, capsys):
    """The run plans before it starts the cluster: the second run of a span already done submits
    no worker job, and still records itself and prints its summary."""
    root, _ = sds_archive
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "slurm.toml", store="slurm.zarr", cluster=slurm_section(jobs=1), sds=root,
                       select=("X9.SV13.*.*",), start="2015-12-04T22:00:00", end="2015-12-04T23:00:00",
                       block_s=1800)
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert all(":job=" in w for w in workers_of_last_run(tmp_path / "slurm.zarr"))  # the first run had jobs
    capsys.readouterr()
    before = last_job_id()
    assert main(["run", str(cfg), "--quiet"]) == 0
    after = last_job_id()
    out = capsys.readouterr().out
    assert after == before + 1, f"the run with nothing to compute submitted {after - before - 1} job(s)"
    assert "done: 0 block(s)" in out and "slurm.zarr" in out
    runs = zarr.open_group(tmp_path / "slurm.zarr", mode="r", use_consolidated=False).attrs["scatflow"]["runs"]
    assert len(runs) == 2 and runs[-1]["blocks_done"] == 0 and runs[-1]["workers"] == []
    assert not list(tmp_path.glob(".scatflow-tls-*"))
