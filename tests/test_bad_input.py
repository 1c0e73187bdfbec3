"""The bad-input catalogue: each case has a defined outcome (a one-line error, a recorded
skip or failure with its reason, or correct numbers) — never a traceback, never a wrong number."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import obspy
import pytest
from helpers import SMALL_LAYERS, load_group, n_blocks, n_windows, one_line_error, windows_per_block, write_config

import scatflow
from scatflow.workflow import cluster
from scatflow.cli import main

MSEED_DATA = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, message",
    [
        ("not.mseed", "not a readable waveform file"),
        ("not2.mseed", "not a readable waveform file"),
        ("not4.mseed", "not a readable waveform file"),
        ("brokenlastrecord.mseed", "Not a SEED record"),
        ("corrupt_one_extra_byte_at_end.mseed", "not enough to constitute a full SEED record"),
        ("various_noise_records.mseed", "truncated or damaged miniSEED"),
        ("infinite-loop.mseed", "not a readable waveform file"),
    ],
)
def test_damaged_obspy_files_are_one_line_errors(tmp_path, capsys, name, message):
    copy = tmp_path / name
    shutil.copy(MSEED_DATA / name, copy)
    one_line_error(capsys, write_config(tmp_path / "run.toml", paths=[copy], window_s=2.0), name, message)
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.slow
def test_obspy_file_with_gaps_gives_nan_windows(tmp_path):
    copy = tmp_path / "gaps.mseed"
    shutil.copy(MSEED_DATA / "gaps.mseed", copy)
    assert main(["run", str(write_config(tmp_path / "run.toml", paths=[copy], window_s=2.0)), "--quiet"]) == 0
    ds = load_group(tmp_path / "out.zarr", "BW.BGLD.")
    cov = ds.coverage.values[:, 0]
    assert (cov < 1).any() and (cov == 1).any()
    assert np.isnan(ds.order_1.values[cov < 1]).all() and np.isfinite(ds.order_1.values[cov == 1]).all()


@pytest.mark.slow
def test_log_channel_is_skipped_with_reason(tmp_path, capsys):
    copy = tmp_path / "rt130.mseed"
    shutil.copy(MSEED_DATA / "rt130_sr0_cropped.mseed", copy)
    # Alone, it leaves nothing to compute: one line, and no store to block a corrected config.
    alone = write_config(tmp_path / "alone.toml", paths=[copy], window_s=2.0, store="alone.zarr")
    one_line_error(capsys, alone, "nothing to compute: GR.FUR.: sampling rate 0.0 Hz is not a waveform")
    assert not (tmp_path / "alone.zarr").exists()
    # Beside a waveform station, it is skipped with its reason and the other one runs.
    wave = write(obspy.Stream([noise_trace()]), tmp_path / "wave.mseed")
    both = write_config(tmp_path / "run.toml", paths=[copy, wave], window_s=10.0)
    assert main(["run", str(both), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "skipped GR.FUR.: sampling rate 0.0 Hz is not a waveform" in out and "done: 1 block(s)" in out


def write(stream, path, **kw):
    stream.write(str(path), format="MSEED", **kw)
    return path


def noise_trace(rate=20.0, seconds=200, dtype=np.int32, seed=0, **header):
    data = np.random.default_rng(seed).normal(0, 300, int(round(rate * seconds))).round().astype(dtype)
    h = {"network": "XX", "station": "AAA", "location": "", "channel": "HHZ", "sampling_rate": rate,
         "starttime": obspy.UTCDateTime("2020-01-01")}
    h.update(header)
    return obspy.Trace(data, header=h)


def run_store(tmp_path, name, traces, **kw):
    d = tmp_path / name
    d.mkdir()
    path = write(obspy.Stream(traces), d / "x.mseed", **kw)
    cfg = write_config(d / "run.toml", paths=[path], window_s=10.0)
    code = main(["run", str(cfg), "--quiet"])
    return code, (load_group(d / "out.zarr", "XX.AAA.") if code != 2 else None)


@pytest.mark.slow
def test_stream_variants_give_the_same_numbers(tmp_path):
    """int32 vs float32 samples, duplicated traces, and a rate of 49.9999 Hz (taken as nominal)."""
    base = noise_trace()
    _, ref = run_store(tmp_path, "ref", [base])
    _, as_float = run_store(tmp_path, "f32", [noise_trace(dtype=np.float32)], encoding="FLOAT32")
    _, dup = run_store(tmp_path, "dup", [base, base.copy()])
    off = noise_trace(rate=19.99999)
    _, nominal = run_store(tmp_path, "off", [off])
    for other in (as_float, dup, nominal):
        np.testing.assert_array_equal(other.order_2.values, ref.order_2.values)
    assert nominal.attrs["sampling_rate_hz"] == 20.0


@pytest.mark.slow
def test_conflicting_overlap_is_a_gap_and_identical_overlap_is_data(tmp_path, capsys):
    """Overlapping traces that disagree: those samples count as not recorded, whatever the reading
    order (as ObsPy's merge makes a gap of them); an identical overlap stays data."""
    a = noise_trace(seconds=120)
    b = noise_trace(seconds=120, seed=1, starttime=obspy.UTCDateTime("2020-01-01T00:01:30"))
    _, got = run_store(tmp_path, "ovl", [a, b])
    _, swapped = run_store(tmp_path, "swapped", [b, a])
    gapped = a.copy()  # a, then b from its 00:02:00 on, with the 30 s of disagreement masked out
    gapped.data = np.ma.masked_array(np.concatenate([a.data, b.data[600:]]), mask=False)
    gapped.data.mask[1800:2400] = True
    want = scatflow.transform_stream(obspy.Stream([gapped]), layers=SMALL_LAYERS, window_s=10.0,
                                     dtype=np.float64, min_coverage=1.0).compute()
    for ds in (got, swapped):
        np.testing.assert_array_equal(ds.coverage.values, want.coverage.values.astype(np.float32))
        np.testing.assert_array_equal(ds.order_2.values, want.order_2.values.astype(ds.order_2.dtype))
    assert (got.coverage.values < 1).any() and json.loads(str(got.block_notes.values[0])) == {"conflicting": 600}
    main(["info", str(tmp_path / "ovl" / "out.zarr")])
    assert ("not recorded: samples where overlapping traces disagree (counted as gaps) in block(s) 0, up to 600 "
            "in one block") in capsys.readouterr().out
    _, dup = run_store(tmp_path, "dup", [a, a.copy()])
    _, once = run_store(tmp_path, "once", [a])
    np.testing.assert_array_equal(dup.order_2.values, once.order_2.values)
    assert (dup.coverage.values == 1).all()


@pytest.mark.slow
def test_nan_samples_count_as_not_recorded(tmp_path, capsys):
    """Ten NaN samples are a gap of ten samples, counted and shown, not a failed block."""
    tr = noise_trace(dtype=np.float32)
    tr.data[1000:1010] = np.nan
    code, ds = run_store(tmp_path, "nan", [tr], encoding="FLOAT32")
    assert code == 0
    masked = tr.copy()
    masked.data = np.ma.masked_invalid(tr.data)
    want = scatflow.transform_stream(obspy.Stream([masked]), layers=SMALL_LAYERS, window_s=10.0,
                                     dtype=np.float64).compute()
    np.testing.assert_array_equal(ds.coverage.values, want.coverage.values.astype(np.float32))
    assert ds.block_done.values[0] == ds.sizes["time"] and json.loads(str(ds.block_notes.values[0])) == {"nonfinite": 10}
    assert np.isnan(ds.order_1.values[ds.coverage.values[:, 0] < 1]).all()
    main(["info", str(tmp_path / "nan" / "out.zarr")])
    assert "not recorded: NaN or infinite samples (counted as gaps) in block(s) 0, up to 10 in one block" in (
        capsys.readouterr().out)


def test_in_memory_api_takes_a_near_nominal_rate_as_nominal():
    """transform_stream treats 19.99999 Hz as 20 Hz, as the file and SDS inputs do."""
    clean = noise_trace(rate=20.0, seconds=200)
    off = clean.copy()
    off.stats.sampling_rate = 19.99999
    want = scatflow.transform_stream(obspy.Stream([clean]), layers=SMALL_LAYERS, window_s=10.0).compute()
    got = scatflow.transform_stream(obspy.Stream([off]), layers=SMALL_LAYERS, window_s=10.0).compute()
    assert got.attrs["sampling_rate_hz"] == 20.0 and got.sizes["time"] == want.sizes["time"] > 0
    np.testing.assert_array_equal(got.order_2.values, want.order_2.values)
    np.testing.assert_array_equal(got.time.values, want.time.values)


def test_masked_stream_in_memory_api():
    tr = noise_trace(rate=20.0, seconds=200)
    tr.data = np.ma.masked_array(tr.data, mask=np.zeros(tr.stats.npts, bool))
    tr.data.mask[1000:1100] = True
    ds = scatflow.transform_stream(obspy.Stream([tr]), layers=SMALL_LAYERS, window_s=10.0).compute()
    cov = ds.coverage.values[:, 0]
    assert cov.min() < 1 and np.isnan(ds.order_1.values[cov < 1]).all()
    assert np.isfinite(ds.order_1.values[cov == 1]).all()


@pytest.mark.slow
def test_archive_missing_channel_day_and_single_sample_day(sds_archive, tmp_path, capsys):
    root, _ = sds_archive
    copy = tmp_path / "archive"
    shutil.copytree(root, copy)
    (copy / "2015/X9/SV13/HHN.D/X9.SV13..HHN.D.2015.339").unlink()  # one channel missing on day 2
    for cha in ("HHZ", "HHN", "HHE"):  # SV15: a day with a single sample
        p = copy / f"2015/X9/SV15/{cha}.D/X9.SV15..{cha}.D.2015.339"
        tr = obspy.read(str(p))[0]
        tr.data = tr.data[:1]
        tr.write(str(p), format="MSEED")
    cfg = write_config(tmp_path / "c.toml", sds=copy, select=("X9.SV13.*.*", "X9.SV15.*.*"), store="c.zarr",
                       start="2015-12-05T00:00:00", end="2015-12-05T02:00:00", block_s=3600, workers=2)
    # SV15 has one sample that day: no window can be computed, so both its blocks have no data (an
    # outage, retried by the next run, not a failure); SV13 is done.
    blocks = n_blocks(n_windows(2 * 3600, 40.0, 20.0), windows_per_block(3600, 20.0))  # 2 hour blocks
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"no data: {blocks}; failed: 0" in out and "no data X9.SV15.: blocks 0-1" in out
    sv13 = load_group(tmp_path / "c.zarr", "X9.SV13.")
    hhn = list(sv13.channel.values).index("X9.SV13..HHN")
    assert (sv13.coverage.values[:, hhn] == 0).all() and np.isnan(sv13.order_1.values[:, hhn]).all()
    others = [i for i in range(3) if i != hhn]
    assert np.isfinite(sv13.order_1.values[:, others]).all()
    sv15 = load_group(tmp_path / "c.zarr", "X9.SV15.")
    assert np.isnan(sv15.order_1.values).all()  # a single sample never makes a window
    assert list(sv15.block_done.values) == [0] * blocks and all(json.loads(str(n)) == {"no_data": True}
                                                              for n in sv15.block_notes.values)
    assert (sv15.coverage.values[n_windows(3600, 40.0, 20.0):] == 0).all()  # no sample at all in block 1


@pytest.mark.slow  # the run starts its local cluster before planning finds the error
def test_more_octaves_than_the_window_resolves(tmp_path, capsys):
    path = write(obspy.Stream([noise_trace()]), tmp_path / "x.mseed")
    cfg = write_config(tmp_path / "run.toml", paths=[path], window_s=10.0,
                       layers=[{"octaves": 9, "resolution": 2, "quality": 2}])
    one_line_error(capsys, cfg, "network.layers[0]", "octaves = 9", "use at most 5 octaves")


@pytest.mark.slow
def test_deleted_block_data_detected_and_recomputed(sds_archive, tmp_path, capsys):
    root, _ = sds_archive
    cfg = write_config(tmp_path / "d.toml", sds=root, select=("X9.SV13.*.*",), store="d.zarr",
                       start="2015-12-04T00:00:00", end="2015-12-04T03:00:00", block_s=3600, workers=2)
    assert main(["run", str(cfg), "--quiet"]) == 0
    store = tmp_path / "d.zarr"
    before = load_group(store, "X9.SV13.")
    # One shard (a day of blocks) holds the 3 blocks' coverage: deleting it loses all three.
    os.remove(store / "X9.SV13." / "coverage" / "c.0.0")
    from scatflow.report import missing_blocks

    assert missing_blocks(str(store), "X9.SV13.") == [0, 1, 2]
    capsys.readouterr()
    # A plain run trusts the ledger (it lists and reads no chunk); the full check finds the loss.
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert "done: 0 block(s)" in capsys.readouterr().out
    assert main(["run", str(cfg), "--quiet", "--recheck-all"]) == 0
    assert "done: 3 block(s)" in capsys.readouterr().out
    after = load_group(store, "X9.SV13.")
    np.testing.assert_array_equal(after.coverage.values, before.coverage.values)
    np.testing.assert_array_equal(after.order_2.values, before.order_2.values)


@pytest.mark.slow
def test_local_cluster_listens_on_loopback_only():
    with cluster.connect({"kind": "local", "workers": 1, "dashboard": True}, log=lambda m: None) as handle:
        client = handle.client
        info = client.scheduler_info()
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
        assert client.dashboard_link.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_no_dashboard_takes_no_fixed_port():
    with cluster.connect({"kind": "local", "workers": 1, "dashboard": False}, log=lambda m: None) as handle:
        handle.wait_ready()
        http = handle.cluster.scheduler.http_server
        ports = [sock.getsockname() for sock in http._sockets.values()]
        assert ports and all(host == "127.0.0.1" and port != 8787 for host, port, *_ in ports), ports


WORKER_LOGS = """
import asyncio, logging
from scatflow.workflow import cluster

async def arm(dask_worker):
    log = logging.getLogger("distributed.worker")
    log.error("marker: logged while running")

    async def late():
        while dask_worker.status.name not in ("closing", "closed"):
            await asyncio.sleep(0.005)
        # What distributed's own in-flight heartbeat logs when the pool closes under it.
        log.error("marker: logged while closing")

    asyncio.ensure_future(late())

with cluster.connect({"kind": "local", "workers": 1, "dashboard": False}, log=lambda m: None) as handle:
    handle.wait_ready()
    handle.client.run(arm)
"""


@pytest.mark.slow
def test_local_workers_keep_errors_but_not_shutdown_races(tmp_path):
    """A worker's errors reach stderr while it runs; once it is closing they are teardown races."""
    res = subprocess.run([sys.executable, "-c", WORKER_LOGS], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "marker: logged while running" in res.stderr
    assert "marker: logged while closing" not in res.stderr, res.stderr


@pytest.mark.slow  # builds a SLURMCluster (its scheduler starts) to render the job script
def test_job_schedulers_use_tls_by_default():
    pytest.importorskip("dask_jobqueue")
    base = {"kind": "slurm", "queue": "debug", "cores": 1, "memory": "1GB", "processes": 1, "jobs": 1,
            "interface": "lo", "lifetime_stagger": "1m"}
    assert "--protocol tls://" in cluster.job_script({**base, "tls": True})
    assert "tls://" not in cluster.job_script({**base, "tls": False})


@pytest.mark.slow  # builds a SLURMCluster (its scheduler starts) to render the job script
def test_job_clusters_work_without_cores_or_memory(monkeypatch):
    """Neither the config nor jobqueue.yaml gives cores or memory: one core and 2 GB per worker job
    (dask-jobqueue alone stops with a multi-line message)."""
    pytest.importorskip("dask_jobqueue")
    import dask

    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        script = cluster.job_script({"kind": "slurm", "jobs": 1, "interface": "lo", "lifetime_stagger": "1m",
                                     "tls": False})
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=2G" in script


@pytest.mark.slow  # builds a SLURMCluster (its scheduler starts) to render the job script
def test_job_workers_get_the_trim_threshold_after_the_users_prologue():
    """Batch workers get the local workers' trim threshold (a worker that preprocessed a block
    page-faults through the kernel at Dask's 64 KiB), after the user's prologue, which may set it."""
    pytest.importorskip("dask_jobqueue")
    script = cluster.job_script({"kind": "slurm", "queue": "debug", "cores": 1, "memory": "1GB", "processes": 1,
                                 "jobs": 1, "interface": "lo", "lifetime_stagger": "1m", "tls": False,
                                 "job_script_prologue": ["source /opt/venv/bin/activate"]})
    mine = f"export MALLOC_TRIM_THRESHOLD_=${{MALLOC_TRIM_THRESHOLD_:-{cluster.WORKER_TRIM_BYTES}}}"
    assert script.index("source /opt/venv/bin/activate") < script.index(mine) < script.index("distributed.cli")


def test_config_values_are_never_evaluated(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = write(obspy.Stream([noise_trace()]), tmp_path / "x.mseed")
    cfg = write_config(tmp_path / "run.toml", paths=[path], window_s=10.0)
    cfg.write_text(cfg.read_text().replace("window_s = 10.0", f"window_s = \"__import__('os').system('touch {marker}')\""))
    one_line_error(capsys, cfg, "network.window_s", "must be")
    assert not marker.exists()
