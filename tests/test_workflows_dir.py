"""The recipes in workflows/: the TOML configs parse and the notebook script runs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from helpers import TUTORIAL_LAYERS, n_blocks, n_windows, windows_per_block

import scatflow
from scatflow.cli import main
from scatflow.synthetic import EXAMPLE_CONFIG
from scatflow.config import load_config, parse_config
from scatflow.synthetic import write_day

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
TUTORIAL = WORKFLOWS / "tutorial.toml"
ARCHIVE = WORKFLOWS / "archive.toml"
NOTEBOOK = WORKFLOWS / "notebook.py"


def test_tutorial_recipe_parses_with_paths_relative_to_it():
    cfg = load_config(TUTORIAL).resolved()  # plain dicts and lists
    assert cfg["input"]["paths"] == [str(WORKFLOWS / "data" / "*.mseed")]
    assert cfg["output"]["store"] == str(WORKFLOWS / "results.zarr")
    assert cfg["input"]["select"] == ["*.*.*.HH?"]
    assert (cfg["input"]["start"], cfg["input"]["end"]) == ("2015-12-04T00:00:00", "2015-12-05T00:00:00")
    assert cfg["network"]["layers"] == TUTORIAL_LAYERS
    assert (cfg["network"]["window_s"], cfg["network"]["overlap"], cfg["network"]["reduce"]) == (40.0, 0.5, "median")
    assert cfg["output"]["dtype"] == "float32" and cfg["cluster"]["kind"] == "local"


def test_tutorial_recipe_matches_scatflow_example_config():
    # The recipe is the config `scatflow example` writes, with a glob for the data: keep them in step.
    import tomllib

    example = EXAMPLE_CONFIG.format(data="data/*.mseed", start="2015-12-04T00:00:00",
                                    end="2015-12-05T00:00:00", store="results.zarr")
    ref = parse_config(tomllib.loads(example), base=WORKFLOWS, source="example")
    assert load_config(TUTORIAL).resolved() == ref.resolved()


def test_tutorial_recipe_plans_on_example_data(tmp_path, capsys):
    # Copied beside a data/ folder, as its header says, it finds the station and plans the day.
    shutil.copy(TUTORIAL, tmp_path / "tutorial.toml")
    write_day(tmp_path / "data" / "X9.SV13..HH.2015.338.mseed", duration_s=600.0)
    assert main(["run", str(tmp_path / "tutorial.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    # The recipe's day of 40 s windows, hop 20 s, in the default 6 h blocks: 4 blocks.
    blocks = n_blocks(n_windows(86400, 40.0, 20.0), windows_per_block(21600, 20.0))
    assert "X9.SV13." in out and f"plan: {blocks} block(s)" in out
    assert not (tmp_path / "results.zarr").exists()


def test_archive_recipe_parses():
    cfg = load_config(ARCHIVE).resolved()  # plain dicts and lists
    assert cfg["input"]["sds"] == "/data/SDS" and cfg["input"]["paths"] is None
    assert cfg["input"]["select"] == ["X9.*.*.HH?"]
    assert (cfg["input"]["start"], cfg["input"]["end"]) == ("2015-01-01T00:00:00", "2016-01-01T00:00:00")
    assert cfg["network"]["layers"] == TUTORIAL_LAYERS
    assert cfg["network"]["min_coverage"] == 1.0
    assert cfg["output"]["block_s"] == 86400.0
    assert cfg["output"]["store"] == str(WORKFLOWS / "X9-2015.zarr")


def test_archive_recipe_commented_cluster_settings_parse(tmp_path):
    # The commented-out alternatives are valid keys: uncommenting them gives a config that loads.
    text = ARCHIVE.read_text()
    text = text.replace('kind = "local"\n', "")
    text = re.sub(r"^# (workers|kind|queue|account|cores|memory|walltime|lifetime|jobs) = ", r"\1 = ",
                  text, flags=re.M)
    (tmp_path / "archive.toml").write_text(text)
    cfg = load_config(tmp_path / "archive.toml")
    assert cfg.cluster["kind"] == "slurm" and cfg.cluster["jobs"] == 10 and cfg.cluster["workers"] == 8
    assert cfg.cluster["lifetime"] == "110m" and cfg.cluster["walltime"] == "02:00:00"


def test_notebook_script_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(NOTEBOOK), "--start", "2015-12-04T10:00:00", "--end", "2015-12-04T11:00:00",
         "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    ds = xr.open_zarr(out / "features.zarr", consolidated=False)
    assert ds.sizes["time"] == n_windows(3600, 40.0, 20.0)  # windows lying entirely within the hour: 179
    assert ds.time.values[0] == np.datetime64("2015-12-04T10:00:00", "ns")
    assert ds.time.values[-1] == np.datetime64("2015-12-04T10:59:20", "ns")
    assert list(ds.channel.values) == ["X9.SV13..HHE", "X9.SV13..HHN", "X9.SV13..HHZ"]
    assert ds.order_1.dtype == np.float32
    assert np.isfinite(ds.order_1.values).all() and np.isfinite(ds.order_2.values).all()
    assert (ds.coverage.values == 1).all()

    network = scatflow.load_network(out / "network.json")
    assert (network.bins, network.sampling_rate, len(network)) == (2000, 50.0, 2)
    np.testing.assert_array_equal(ds.f1.values, network.banks[0].centers)

    png = out / "scalogram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
