"""The commands end to end on a local Dask cluster: run, analyze, info, a later run, analyze again."""

import re

import pytest
import xarray as xr
from helpers import n_windows

from scatflow.cli import main


@pytest.mark.slow
def test_run_analyze_info_then_a_later_run_and_incremental_analyze(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["example", str(tmp_path), "--quiet"]) == 0
    cfg = tmp_path / "config.toml"
    text = cfg.read_text().replace('kind = "local"', 'kind = "local"\nworkers = 1\ndashboard = false')
    text = text.replace('dtype = "float32"', 'dtype = "float32"\nblock_s = 1800.0')  # blocks of 90 windows
    text += '\n[analysis]\nsample = 5000\ncomponents = 3\nclusters = 3\n'
    cfg.write_text(text.replace('end = "2015-12-05T00:00:00"', 'end = "2015-12-04T01:00:00"'))
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    one_hour = n_windows(3600, 40.0, 20.0)
    assert f"1 station(s), {one_hour} windows, {one_hour} with features" in out, out
    assert main(["info", str(tmp_path / "results.zarr")]) == 0
    assert re.search(r"stations:\s+1 \(X9\.SV13\.\)", capsys.readouterr().out)
    # The store grows: the later run sees one station, and analyze labels only what is new.
    cfg.write_text(cfg.read_text().replace('end = "2015-12-04T01:00:00"', 'end = "2015-12-04T02:00:00"'))
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    two_hours = n_windows(7200, 40.0, 20.0)
    assert "the stored model" in out and f"{two_hours} windows" in out
    # The old partial chunk (windows 90..178) is labelled again with its new windows.
    assert f"{two_hours - 90} labelled in this run" in out, out
    res = xr.open_zarr(tmp_path / "results.zarr", group="analysis/ica/X9.SV13.")
    assert res.sizes["time"] == two_hours and int((res.cluster < 0).sum()) == 0
