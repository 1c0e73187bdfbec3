"""`scatflow info` and `scatflow plot` on a small real store (2 h of the example day, 4 blocks)."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import n_blocks, n_windows, one_line_error, windows_per_block

from scatflow import plot as plotmod
from scatflow.cli import main
from scatflow.report import missing_blocks, store_report
from scatflow.store.writer import StoreError

GROUP = "X9.SV13."
CHANNELS = ["X9.SV13..HHE", "X9.SV13..HHN", "X9.SV13..HHZ"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The store: 2 h of 40 s windows, hop 20 s, in blocks of 30 min.
WINDOWS = n_windows(2 * 3600, 40.0, 20.0)  # 359
PER_BLOCK = windows_per_block(1800, 20.0)  # 90
BLOCKS = n_blocks(WINDOWS, PER_BLOCK)  # 4


# Tests using this store are slow: making it runs scatflow on a local Dask cluster.
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The example run shortened to 00:00-02:00 with 30 min blocks: 359 windows, 4 blocks of 90."""
    d = tmp_path_factory.mktemp("report")
    assert main(["example", str(d), "--quiet"]) == 0
    cfg = d / "config.toml"
    text = cfg.read_text()
    assert 'start = "2015-12-04T00:00:00"' in text and 'end = "2015-12-05T00:00:00"' in text
    text = text.replace('end = "2015-12-05T00:00:00"', 'end = "2015-12-04T02:00:00"')
    text = text.replace('dtype = "float32"', 'dtype = "float32"\nblock_s = 1800.0')
    text = text.replace('kind = "local"', 'kind = "local"\ndashboard = false')
    cfg.write_text(text)
    assert main(["run", str(cfg), "--workers", "1", "--quiet"]) == 0
    return d / "results.zarr"


@pytest.fixture
def store_copy(store, tmp_path):
    dst = tmp_path / "copy.zarr"
    shutil.copytree(store, dst)
    return dst


# -- info ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_info_names_station_channels_windows_blocks(store, capsys):
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    n = xr.open_zarr(store, group=GROUP, consolidated=False).sizes["time"]
    assert n == WINDOWS
    assert GROUP in out
    assert re.search(r"channels:\s+3 \(", out), out
    for ch in CHANNELS:
        assert ch in out
    assert re.search(rf"windows:\s+{n}\b", out), out
    assert re.search(rf"blocks:\s+{BLOCKS}/{BLOCKS} complete", out), out
    assert "2015-12-04T00:00:00Z .. 2015-12-04T02:00:00Z" in out  # first start .. last end
    assert "scatflow:   0." in out and "median" in out and "octaves=6" in out
    assert "runs:       1, last " in out
    assert "data missing" not in out and "failed:" not in out and "not done" not in out
    # Full coverage, no NaN windows in the synthetic day.
    for ch in CHANNELS:
        assert re.search(rf"{re.escape(ch)}\s+1\.0000\s+0\.00%", out), out


@pytest.mark.slow
def test_info_names_the_software_stack_and_warns_when_runs_differ(store_copy, capsys):
    """Blocks are bitwise reproducible under one software stack only: info says which, and when there were two."""
    from scatflow.workflow.worker import software_stack
    from scatflow.store.writer import Store

    st = Store(str(store_copy))
    runs = st.root_attrs()["runs"]
    stack = software_stack()
    assert runs[-1]["stacks"] == [stack]  # the local workers report the driver's own stack
    assert main(["info", str(store_copy)]) == 0
    assert f"computed:   with {stack}\n" in capsys.readouterr().out
    # A later run whose workers ran elsewhere (another NumPy, or a node without AVX2).
    other = stack.replace("numpy ", "numpy 0.") + " (another node)"
    st.update_root(runs=runs + [dict(runs[-1], stacks=[other, stack])])
    st.consolidate()
    assert main(["info", str(store_copy)]) == 0
    out = capsys.readouterr().out
    assert "computed:   with 2 software stacks: blocks from different ones may differ in their last bits" in out
    assert f"            {stack} (runs 1-2 of 2)" in out
    assert f"            {other} (run 2 of 2)" in out


def test_info_names_the_runs_of_each_stack_as_ranges():
    """Runs on one stack need not be consecutive: 1 and 3 are not "1-3"."""
    from scatflow.report import _stack_lines

    runs = [{"stacks": ["A"]}, {"stacks": ["B"]}, {"stacks": ["A"]}, {"stacks": ["A", "B"]}, {}]
    assert _stack_lines(runs)[1:] == ["            A (runs 1, 3-4 of 5)", "            B (runs 2, 4 of 5)"]
    assert _stack_lines(runs[:1]) == ["computed:   with A"] and _stack_lines([{}]) == []


@pytest.mark.slow
def test_deleted_chunks_found_by_the_full_check_not_by_info(store_copy, capsys):
    assert missing_blocks(store_copy, GROUP) == []
    group_dir = store_copy / GROUP
    # Store format 2: flat keys, one shard (a day of blocks) per array: the 4 blocks share it.
    assert sorted(os.listdir(group_dir / "coverage")) == ["c.0.0", "zarr.json"]
    os.remove(group_dir / "coverage" / "c.0.0")
    assert missing_blocks(store_copy, GROUP) == list(range(BLOCKS))
    # info reads the ledger only (no chunk listed or read, whatever the store's size).
    assert main(["info", str(store_copy)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"blocks:\s+{BLOCKS}/{BLOCKS} complete", out), out
    assert "data missing" not in out


@pytest.mark.slow
def test_failed_pending_and_nan_windows(store_copy, capsys):
    import zarr

    from scatflow.store.writer import Store

    Store(store_copy).mark_blocks(GROUP, [{"block": 2, "windows": 0, "error": "X9.SV13.: no data between A and B"}])
    g = zarr.open_group(store_copy, mode="r+", use_consolidated=False)[GROUP]
    g["block_done"][3] = 50  # block 3 only partly written (89 expected, the last block's size): not done
    # 9 windows of HHZ with a NaN coefficient in block 0, as its ledger summary records them.
    summary = json.loads(str(g["block_summary"][0]))
    summary["nan"][f"{GROUP}.HHZ"], summary["nan_any"] = 9, 9
    g["block_summary"][0] = json.dumps(summary, sort_keys=True)
    assert main(["info", str(store_copy)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"blocks:\s+{BLOCKS - 2}/{BLOCKS} complete", out), out
    assert re.search(r"failed:\s+1 block\(s\)", out), out
    assert "block 2 (2015-12-04T01:00:00Z .. 2015-12-04T01:30:20Z): X9.SV13.: no data between A and B" in out
    assert re.search(r"not done:\s+block\(s\) 3", out), out
    # NaN fraction over the complete blocks 0 and 1: 9 of 180 windows, 5.00%.
    complete = 2 * PER_BLOCK
    assert re.search(rf"X9\.SV13\.\.HHZ\s+1\.0000\s+{9 / complete:.2%}", out), out
    assert f"9/{complete} ({9 / complete:.2%})" in out
    assert missing_blocks(store_copy, GROUP) == []


@pytest.mark.slow
def test_missing_blocks_unknown_group(store):
    with pytest.raises(StoreError, match="X9.NOPE."):
        missing_blocks(store, "X9.NOPE.")


@pytest.mark.parametrize("kind", ["missing", "file", "empty_dir", "plain_zarr"])
def test_info_not_a_store(tmp_path, capsys, kind):
    path = tmp_path / "thing"
    if kind == "file":
        path.write_text("not a store\n")
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "plain_zarr":
        import zarr

        zarr.open_group(path, mode="w", zarr_format=3).attrs["other"] = 1
    one_line_error(capsys, ["info", str(path)], str(path))
    with pytest.raises(StoreError):
        store_report(path)


# -- plot ---------------------------------------------------------------------------------------
def read_png(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return mpimg.imread(path)


@pytest.mark.slow
def test_plot_default_output(store, capsys):
    assert main(["plot", str(store)]) == 0
    png = store.parent / f"results.{GROUP}.png"
    assert f"wrote {png}" in capsys.readouterr().out
    img = read_png(png)
    w, h = plotmod.FIGSIZE
    assert img.shape[:2] == (round(h * plotmod.DPI), round(w * plotmod.DPI))
    assert img[..., :3].var() > 1e-3  # not blank


@pytest.mark.slow
def test_plot_options(store, tmp_path):
    out = tmp_path / "sub.png"
    path = plotmod.plot_store(store, output=out, station=GROUP, channel="X9.SV13..HHZ", f1=2.0,
                              start="2015-12-04T00:30:00", end="2015-12-04T01:00:00Z")
    assert Path(path) == out
    assert read_png(out)[..., :3].var() > 1e-3


@pytest.mark.slow
def test_plot_unknown_channel(store, tmp_path, capsys):
    # Names it and lists the available ones.
    one_line_error(capsys, ["plot", str(store), "--channel", "HHZ", "-o", str(tmp_path / "x.png")], "'HHZ'",
                   "X9.SV13..HHZ")
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(ValueError, match="X9.SV99."):
        plotmod.plot_store(store, station="X9.SV99.")


@pytest.mark.slow
def test_plot_empty_time_range(store, tmp_path, capsys):
    one_line_error(capsys, ["plot", str(store), "--start", "2016-01-01", "-o", str(tmp_path / "x.png")], "no windows")
