"""The nightly benchmark's request counter (benchmarks/_requests.py) counts what a store is asked."""

import importlib.util
from pathlib import Path

import numpy as np
import zarr

from scatflow.store.access import zarr_store


def _requests_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_requests.py"
    spec = importlib.util.spec_from_file_location("bench_requests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_chunk_written_or_read_is_one_request_and_nothing_is_counted_once_uninstalled(tmp_path):
    req = _requests_module()
    path = tmp_path / "s.zarr"
    with req.counting():
        arr = zarr.open_group(zarr_store(path), mode="w").create_array("x", shape=(40,), chunks=(10,), dtype="i4")
        before = req.snapshot()
        arr[:] = np.arange(40)
        assert req.since(before)["set"] == 4  # four chunks, one PUT each
        arr = zarr.open_group(zarr_store(path), mode="r")["x"]
        before = req.snapshot()
        assert arr[:].tolist() == list(range(40))
        whole = req.since(before)
        before = req.snapshot()
        arr[:10]
        one = req.since(before)
        assert whole["get"] - one["get"] == 3 and whole["set"] == whole["delete"] == 0
        before = req.snapshot()
        assert sorted(zarr.open_group(zarr_store(path), mode="r").array_keys()) == ["x"]
        opened = req.since(before)
        assert opened["get"] >= 1 and opened["total"] == sum(opened[k] for k in req.KINDS)
    before = req.snapshot()
    zarr.open_group(zarr_store(path), mode="r")["x"][:]
    assert req.since(before)["total"] == 0
