"""Faults with real processes: killed driver, killed worker, a second run, a full disk."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import assert_same_store, load_group, n_blocks, n_windows, windows_per_block, write_config

from scatflow.cli import main
from scatflow.store.lock import lock_path, writer_lock
from scatflow.store.writer import Store

pytestmark = pytest.mark.slow  # every test runs scatflow on a local Dask cluster

START, END = "2015-12-04T00:00:00", "2015-12-04T12:00:00"
SELECT = ("X9.SV13.*.*", "X9.SV15.*.*")
GROUPS = ("X9.SV13.", "X9.SV15.")
RUN = {"select": SELECT, "start": START, "end": END, "block_s": 1200, "workers": 2}
# Blocks per station over the 12 h span: 2159 windows (40 s, hop 20 s) in blocks of 60.
BLOCKS = n_blocks(n_windows(12 * 3600, 40.0, 20.0), windows_per_block(1200, 20.0))  # 36


def scatflow_cmd(*args):
    return [sys.executable, "-c", "import sys; from scatflow.cli import main; sys.exit(main())", *args]


def children(pid):
    """All descendant pids of ``pid``."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(name))
    out, stack = [], [pid]
    while stack:
        for child in kids.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def done_blocks(store, group):
    try:
        g = zarr.open_group(store, mode="r", use_consolidated=False)[group]
        return int((np.asarray(g["block_done"][:]) > 0).sum())
    except (KeyError, FileNotFoundError, ValueError):
        return 0


def wait_for(predicate, timeout=120.0):
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.1)


@pytest.fixture(scope="module")
def reference(sds_archive, tmp_path_factory):
    """An uninterrupted run to compare with."""
    root, _ = sds_archive
    tmp = tmp_path_factory.mktemp("reference")
    cfg = write_config(tmp / "ref.toml", sds=root, store="ref.zarr", **RUN)
    assert main(["run", str(cfg), "--quiet"]) == 0
    return tmp / "ref.zarr"


def assert_done_blocks_correct(store, reference):
    """Every block marked done holds exactly the reference's data (never marked without it)."""
    for group in GROUPS:
        got, ref = load_group(store, group), load_group(reference, group)
        chunk = got.attrs["block_windows"]
        for b in np.flatnonzero(got.block_done.values > 0):
            sl = slice(b * chunk, (b + 1) * chunk)
            for name in ("order_1", "order_2", "coverage"):
                np.testing.assert_array_equal(got[name].values[sl], ref[name].values[sl], err_msg=f"{group} {b}")


def start_run(sds_archive, tmp_path, **pipes):
    """``scatflow run`` of the RUN span in its own process group: (config, store, process)."""
    cfg = write_config(tmp_path / "run.toml", sds=sds_archive[0], store="run.zarr", **RUN)
    # Ledger batches every second: with the default 10 s a fast machine finishes the run before
    # its first batch, and there is no mid-run state to stop in.
    proc = subprocess.Popen(scatflow_cmd("run", str(cfg), "--quiet"), start_new_session=True,
                            env={**os.environ, "SCATFLOW_LEDGER_FLUSH_S": "1"}, **pipes)
    return cfg, tmp_path / "run.zarr", proc


def test_driver_sigkill_then_rerun(sds_archive, reference, tmp_path):
    cfg, store, proc = start_run(sds_archive, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: done_blocks(store, "X9.SV13.") >= 8)
        proc.send_signal(signal.SIGKILL)  # the driver only: its workers are orphaned
        proc.wait()
        assert done_blocks(store, "X9.SV13.") < BLOCKS or done_blocks(store, "X9.SV15.") < BLOCKS
        assert_done_blocks_correct(store, reference)
        # The dead driver's lock is detected and taken over; the rerun completes what is missing.
        assert Path(str(store) + ".lock").exists()
        assert main(["run", str(cfg), "--quiet"]) == 0
    finally:
        with_pgid_kill(proc)
    assert not Path(str(store) + ".lock").exists()
    assert_same_store(store, reference, groups=GROUPS)


@pytest.mark.parametrize("how, code, word", [("ctrl-c", 130, "interrupted"), ("sigterm", 143, "terminated")])
def test_clean_stop_keeps_blocks_records_the_run_and_says_one_line(sds_archive, reference, tmp_path, how, code, word):
    """Ctrl-C (SIGINT to the whole terminal group, workers included) or SIGTERM to the driver: it
    stops feeding tasks, keeps and marks what is done, releases the lock, leaves consolidated
    metadata, records the run as interrupted, and prints one line."""
    cfg, store, proc = start_run(sds_archive, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: done_blocks(store, "X9.SV13.") >= 4)
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        with_pgid_kill(proc)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scatflow: {word}; ") and "run again to resume" in lines[0], err
    assert not Path(str(store) + ".lock").exists()
    with open(store / "zarr.json") as fh:
        assert "consolidated_metadata" in json.load(fh)
    last = zarr.open_group(str(store), mode="r", use_consolidated=False).attrs["scatflow"]["runs"][-1]
    assert last["interrupted"] is True and f"{last['blocks_done']} block(s) completed" in lines[0]
    # The count is what the store holds once the run has stopped: blocks in flight at the signal
    # that finish after it are counted too (the store was new, so every done block is this run's).
    assert last["blocks_done"] == sum(done_blocks(store, g) for g in GROUPS), (lines[0], last)
    assert_done_blocks_correct(store, reference)
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert_same_store(store, reference, groups=GROUPS)


def with_pgid_kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # orphaned workers of the killed driver
    except ProcessLookupError:
        pass


def test_worker_sigkill_run_finishes(sds_archive, reference, tmp_path):
    cfg, store, proc = start_run(sds_archive, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: done_blocks(store, "X9.SV13.") >= 4)
        # Leaves of the process tree are the worker processes (under their nannies).
        tree = children(proc.pid)
        leaves = [p for p in tree if not children(p)]
        victims = [p for p in leaves if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
                   or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]
        assert victims, [Path(f"/proc/{p}/cmdline").read_text() for p in leaves]
        os.kill(victims[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    finally:
        with_pgid_kill(proc)
    assert "failed: 0" in out
    assert_same_store(store, reference, groups=GROUPS)


def test_second_run_refused_while_first_holds_lock(sds_archive, tmp_path, capsys):
    root, _ = sds_archive
    cfg = write_config(tmp_path / "run.toml", sds=root, select=("X9.SV13.*.*",), store="run.zarr",
                       start="2015-12-04T00:00:00", end="2015-12-04T01:00:00", block_s=3600, workers=2)
    store = Store(tmp_path / "run.zarr")
    with writer_lock(store.path):
        assert main(["run", str(cfg), "--quiet"]) == 2
        err = capsys.readouterr().err
        # It names the holder: this process, on this host.
        assert "being written by another scatflow run" in err, err
        assert f"(host {socket.gethostname()}, pid {os.getpid()}," in err, err
    # A lock left by a process that is gone is taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(lock_path(store.path)).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": "x"}))
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert not Path(lock_path(store.path)).exists()


def mount_tmpfs(path, size):
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return res.returncode == 0


def test_disk_full_mid_run(sds_archive, reference, tmp_path):
    """On a size-limited tmpfs: the run stops with one clear line; completed blocks stay readable."""
    root, _ = sds_archive
    full = tmp_path / "small"
    # Room for one station's data (a task writes a station's shard of the span whole) and its
    # ledger records, not for both stations'.
    size_kb = int(sum(f.stat().st_size for f in Path(reference).rglob("*") if f.is_file()) / 1024 * 0.65)
    if not mount_tmpfs(full, f"{size_kb}k"):
        pytest.skip("cannot mount a size-limited tmpfs here (needs root and mount)")
    try:
        # One worker: the two stations' shards are written one after the other, so the first fits.
        cfg = write_config(tmp_path / "run.toml", sds=root, store=full / "run.zarr", **dict(RUN, workers=1))
        res = subprocess.run(scatflow_cmd("run", str(cfg), "--quiet"), capture_output=True, text=True, timeout=300)
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot be written" in lines[0] and "No space left" in lines[0], res.stderr
        assert "Traceback" not in res.stderr
        store = full / "run.zarr"
        assert 0 < done_blocks(store, "X9.SV13.") + done_blocks(store, "X9.SV15.") < len(GROUPS) * BLOCKS
        assert_done_blocks_correct(store, reference)
        xr.open_zarr(store, group="X9.SV13.")  # still opens with default arguments
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
