"""Stores from scatflow 0.2 (store format 1): refused by every command with the line that names
``scatflow upgrade``, which rewrites them as format 2 in place, values unchanged bit for bit, and
ends as an uninterrupted upgrade does however often it is interrupted and run again.

The format-1 store is ``tests/data/v02/store.zarr``, written by the 0.2 code
(``tests/data/make_store_v02.py``); every test works on a copy.
"""

import json
import os
import shutil
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import one_line_error

import scatflow
from scatflow.cli import main
from scatflow.errors import StoreError
from scatflow.inputs.grid import Blocks
from scatflow.store import relay, upgrade as upgrade_module
from scatflow.store.encoding import FORMAT, LEDGER_CHUNK, TIME_CHUNK_BLOCKS
from scatflow.store.lock import lock_path
from scatflow.store.reader import StoreReader
from scatflow.store.summary import run_log
from scatflow.store.upgrade import upgrade
from scatflow.store.writer import Store

V02 = Path(__file__).parent / "data" / "v02"
STATIONS = ("XX.AAA.", "XX.BBB.")
REFUSED = "store format 1 (scatflow 0.2); run: scatflow upgrade"


@pytest.fixture
def v02(tmp_path) -> Path:
    """A copy of the 0.2 store, its run config and (linked) input archive."""
    shutil.copytree(V02 / "store.zarr", tmp_path / "store.zarr")
    shutil.copy(V02 / "run.toml", tmp_path / "run.toml")
    (tmp_path / "archive").symlink_to(V02 / "archive")  # read only: never written by these tests
    return tmp_path / "store.zarr"


def arrays(path) -> dict:
    """Every array of a store, by its path in the tree: (zarr array, values)."""
    out = {}

    def walk(group, prefix):
        for name, arr in group.arrays():
            out[prefix + name] = (arr, arr[...])
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(zarr.open_group(str(path), mode="r", use_consolidated=False), "")
    return out


def same_values(x, y) -> bool:
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "fciu":
        return x.dtype == y.dtype and x.tobytes() == y.tobytes()  # bitwise, NaN included
    return [str(v) for v in x.ravel()] == [str(v) for v in y.ravel()]


def tree(path) -> dict:
    """Every file under ``path``: relative path -> bytes."""
    out = {}
    for dirpath, _, files in os.walk(path):
        for f in files:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, path)] = Path(full).read_bytes()
    return out


# -- the upgrade ----------------------------------------------------------------------------------
def test_upgrade_keeps_every_value_and_lays_the_store_out_in_format_2(v02):
    before = arrays(v02)
    root_before = dict(zarr.open_group(str(v02), mode="r").attrs)
    attrs_before = {k: dict(zarr.open_group(str(v02), mode="r")[k].attrs) for k in STATIONS}
    done = upgrade(v02)
    assert sorted(done.rewritten) == ["XX.AAA.", "XX.BBB.", "analysis"] and not done.found
    after = arrays(v02)
    assert set(after) == set(before) | {f"{k}/block_summary" for k in STATIONS}
    for name, (arr, values) in before.items():
        new, new_values = after[name]
        assert same_values(values, new_values), name
        assert dict(new.attrs) == dict(arr.attrs), name
        assert new.metadata.chunk_key_encoding.separator == ".", name  # flat keys everywhere
    root = zarr.open_group(str(v02), mode="r", use_consolidated=False)
    assert root.attrs["format"] == FORMAT
    assert root.attrs["scatflow"]["design"] == root_before["scatflow"]["design"]
    for key in STATIONS:
        g = root[key]
        assert dict(g.attrs) == {**attrs_before[key], "shard_blocks": 4}  # 6 h blocks: a day per shard
        chunk = attrs_before[key]["block_windows"]
        for name in ("order_1", "order_2", "coverage"):
            assert g[name].chunks[0] == chunk and g[name].shards[0] == 4 * chunk, name
        assert g["time"].chunks == (chunk * TIME_CHUNK_BLOCKS,)
        for name in ("block_done", "block_files", "block_error", "block_notes", "block_stamp", "block_summary"):
            assert g[name].chunks == (LEDGER_CHUNK,), name
        # block_summary: each done block's mean coverage and NaN windows per channel, from its data.
        blocks = Blocks(chunk, g["time"].shape[0])
        channels = [str(c) for c in g["channel"][:]]
        done_blocks = np.asarray(g["block_done"][:])
        for b, text in enumerate(g["block_summary"][:]):
            if not done_blocks[b]:
                assert str(text) == "", (key, b)
                continue
            a, e = blocks.range(b)
            cov, first = np.asarray(g["coverage"][a:e], dtype=np.float64), g["order_1"][a:e]
            nan = np.isnan(first).any(axis=2)
            assert json.loads(str(text)) == {"coverage": {c: cov[:, i].mean() for i, c in enumerate(channels)},
                                             "nan": {c: int(nan[:, i].sum()) for i, c in enumerate(channels)},
                                             "nan_any": int(nan.any(axis=1).sum())}, (key, b)
    outage = json.loads(str(root["XX.AAA."]["block_summary"][4]))  # the windows around AAA's outage
    assert outage["nan_any"] > 0 and outage["coverage"]["XX.AAA..BHZ"] < 1
    assert not os.path.exists(relay.work_dir(str(v02))) and not os.path.exists(lock_path(v02))


def test_upgraded_store_opens_with_default_xarray_arguments(v02):
    upgrade(v02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stale or absent consolidated metadata warns
        for key in STATIONS:
            new = xr.open_zarr(v02, group=key)
            old = xr.open_zarr(V02 / "store.zarr", group=key, consolidated=False)
            for name in old.variables:
                assert same_values(old[name].values, new[name].values), (key, name)


def test_run_log_keeps_the_last_20_runs_as_summaries(v02):
    root = zarr.open_group(str(v02), mode="r+", use_consolidated=False)
    meta = dict(root.attrs["scatflow"])
    last = dict(meta["runs"][-1])
    last["blocks_failed"] = last["blocks_failed"] * 5  # 15 failures
    last["workers"] = [f"node{i}:1" for i in range(12)]
    meta["runs"] = [dict(meta["runs"][0], started=f"run {i}") for i in range(24)] + [last]
    root.attrs["scatflow"] = meta
    upgrade(v02)
    runs = zarr.open_group(str(v02), mode="r").attrs["scatflow"]["runs"]
    assert [r["started"] for r in runs[:-1]] == [f"run {i}" for i in range(5, 24)]
    assert (runs[-1]["blocks_failed"], runs[-1]["blocks_no_data"], runs[-1]["workers_count"]) == (15, 1, 12)
    assert len(runs[-1]["failures"]) == 10 and runs[-1]["failures"] == last["blocks_failed"][:10]
    assert runs[-1]["workers"] == last["workers"][:10]
    assert (runs[0]["blocks_failed"], runs[0]["blocks_no_data"], runs[0]["blocks_done"]) == (0, 1, 11)
    assert len(json.dumps(runs)) < 20 * 3000  # constant-size, whatever the runs did
    assert json.dumps(run_log(runs)) == json.dumps(runs)  # summarizing again changes no byte


# The steps an upgrade takes, each made to fail in turn: ("module attribute", occurrence).
STEPS = [(upgrade_module, "_copy"), (upgrade_module, "_summaries"), (upgrade_module, "_flat_array"),
         (relay, "new_dir"), (relay.os, "rename"), (upgrade_module, "_edit_root"), (Store, "consolidate")]


class Fault(Exception):
    pass


def _inject(monkeypatch, at: int | None, seen: list):
    """Make the ``at``-th call (0-based) of any of :data:`STEPS` raise before it acts; record
    each call's step in ``seen``."""
    for owner, name in STEPS:
        original = getattr(owner, name)

        def step(*args, __original=original, __name=name, **kwargs):
            seen.append(__name)
            if len(seen) - 1 == at:
                raise Fault(__name)
            return __original(*args, **kwargs)

        monkeypatch.setattr(owner, name, step)


def _fault_points(tmp_path, monkeypatch, seen: list) -> list[int]:
    """The steps of one whole upgrade (their kinds into ``seen``); of each kind its first and
    last, and every rename."""
    shutil.copytree(V02 / "store.zarr", tmp_path / "count.zarr")
    _inject(monkeypatch, None, seen)
    upgrade(tmp_path / "count.zarr")
    monkeypatch.undo()
    points = {i for i, s in enumerate(seen) if s == "rename"}
    for kind in set(seen):
        where = [i for i, s in enumerate(seen) if s == kind]
        points |= {where[0], where[-1]}
    return sorted(points)


def _some(points: list[int], seen: list) -> list[int]:
    """For the fast tier: inside the first group's build, between its two renames, before the
    consolidation and before the format is written (the slow tier takes every point)."""
    def nth(kind, k):
        return [i for i in points if seen[i] == kind][k]

    return sorted({nth("_copy", 0), nth("rename", 1), nth("consolidate", 0), nth("_edit_root", -1)})


@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["some", "every"])
def test_an_upgrade_interrupted_at_any_step_then_run_again_ends_as_an_uninterrupted_one(tmp_path, monkeypatch,
                                                                                       every):
    reference = tmp_path / "reference.zarr"
    shutil.copytree(V02 / "store.zarr", reference)
    upgrade(reference)
    expected = tree(reference)
    seen_all: list = []
    points = _fault_points(tmp_path, monkeypatch, seen_all)
    assert len(points) >= 12, points
    if not every:
        points = _some(points, seen_all)
    for at in points:
        store = tmp_path / f"at{at}.zarr"
        shutil.copytree(V02 / "store.zarr", store)
        seen: list = []
        _inject(monkeypatch, at, seen)
        with pytest.raises(Fault):
            upgrade(store)
        monkeypatch.undo()
        interrupted_format = zarr.open_group(str(store), mode="r", use_consolidated=False).attrs.get("format")
        if interrupted_format is None:  # not finished: still refused, with the command to run
            with pytest.raises(StoreError, match="run: scatflow upgrade"):
                StoreReader(store)
        upgrade(store)
        got = tree(store)
        assert sorted(got) == sorted(expected), (at, seen[-1])
        for name in expected:  # every file, array chunks and metadata, byte for byte
            assert got[name] == expected[name], (at, seen[-1], name)
        assert not os.path.exists(relay.work_dir(str(store)))
        shutil.rmtree(store)


def test_upgrade_twice_and_on_the_command_line(v02, capsys):
    assert main(["upgrade", str(v02), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "upgraded to store format 2 (3 group(s) rewritten; run log: 2 of 2 run(s) kept" in out
    files = tree(v02)
    assert main(["upgrade", str(v02.parent / "run.toml")]) == 0  # the config naming the store will do
    assert "store format 2 already; nothing to do" in capsys.readouterr().out
    assert tree(v02) == files


def test_upgrade_is_refused_while_a_run_holds_the_store(v02, capsys):
    Path(lock_path(v02)).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                "started": "now", "command": "run"}))
    one_line_error(capsys, ["upgrade", str(v02)], "is being written by scatflow run")
    assert tree(v02) == tree(V02 / "store.zarr")


# -- refusing stores of another format --------------------------------------------------------------
@pytest.mark.parametrize("argv", [["info", "{store}"], ["plot", "{store}"], ["info", "{config}"],
                                  ["export", "{store}", "--analysis", "ica", "-o", "{out}"],
                                  ["analyze", "{config}", "--quiet"]])
def test_commands_refuse_a_format_1_store_naming_the_upgrade(v02, capsys, argv):
    args = [a.format(store=v02, config=v02.parent / "run.toml", out=v02.parent / "x.csv") for a in argv]
    line = one_line_error(capsys, args, REFUSED)
    assert line == f"scatflow: error: {v02}: {REFUSED} {v02}"
    assert tree(v02) == tree(V02 / "store.zarr")  # nothing written


def test_run_refuses_a_format_1_store_before_planning(v02, capsys):
    one_line_error(capsys, ["run", str(v02.parent / "run.toml"), "--dry-run"], f"{v02}: {REFUSED} {v02}")


def test_python_api_refuses_a_format_1_store(v02):
    for open_ in (scatflow.open_results, lambda p: scatflow.open_results(p, combine=True), StoreReader):
        with pytest.raises(StoreError, match=f"store format 1 \\(scatflow 0.2\\); run: scatflow upgrade {v02}"):
            open_(v02)


def test_a_store_of_a_newer_format_is_refused(v02, capsys):
    upgrade(v02)
    upgrade_module._edit_root(str(v02), lambda attrs: attrs.update(format=FORMAT + 1))
    one_line_error(capsys, ["info", str(v02)], f"store format {FORMAT + 1}, written by a newer scatflow")
    one_line_error(capsys, ["upgrade", str(v02)], "written by a newer scatflow")
    with pytest.raises(StoreError, match="written by a newer scatflow"):
        scatflow.open_results(v02)


# -- the upgraded store reads as the 0.2 code read the original ------------------------------------
def test_info_of_the_upgraded_store_is_what_0_2_printed(v02, capsys):
    upgrade(v02)
    assert main(["info", str(v02)]) == 0
    assert capsys.readouterr().out.replace(str(v02), "STORE") == (V02 / "info.txt").read_text()


def test_open_results_of_the_upgraded_store_holds_the_0_2_values(v02):
    upgrade(v02)
    tree_ = scatflow.open_results(v02)
    for key in STATIONS:
        old = xr.open_zarr(V02 / "store.zarr", group=key, consolidated=False)
        for name in ("order_1", "order_2", "coverage", "time", "channel", "f1", "f2", "block_done", "block_files"):
            assert same_values(old[name].values, tree_[key][name].values), (key, name)
    old = xr.open_zarr(V02 / "store.zarr", group="analysis/ica/XX.AAA.", consolidated=False)
    new = StoreReader(v02).analysis("ica", "XX.AAA.")
    for name in old.variables:
        assert same_values(old[name].values, new[name].values), name


def test_an_upgraded_analysis_is_laid_out_as_a_fresh_analyze_lays_it_out(v02):
    """The upgraded analysis tree, once analysed again (which records its label counts), has every
    array with the chunks, shards, codecs, chunk keys, dtype, fill value and attributes of the
    same analysis written from scratch on the upgraded store; labels sharded like the stations."""
    from scatflow.analysis.analyze import analyze
    from scatflow.config import load_config

    upgrade(v02)
    fresh = v02.parent / "fresh"
    fresh.mkdir()
    shutil.copytree(v02, fresh / "store.zarr")
    shutil.copy(v02.parent / "run.toml", fresh / "run.toml")
    shutil.rmtree(fresh / "store.zarr" / "analysis")
    again = analyze(load_config(v02.parent / "run.toml"), log=lambda m: None)
    assert again.labelled_now == 0 and not again.fitted  # nothing relabelled: the upgrade kept it all
    analyze(load_config(fresh / "run.toml"), log=lambda m: None)

    def layout(path):
        out = {}
        for name, (arr, _) in arrays(path).items():
            if name.startswith("analysis/"):
                meta = arr.metadata.to_dict()
                out[name] = {k: meta[k] for k in ("shape", "data_type", "chunk_grid", "chunk_key_encoding",
                                                  "fill_value", "codecs", "attributes", "dimension_names")}
        return out

    upgraded, expected = layout(v02), layout(fresh / "store.zarr")
    assert sorted(upgraded) == sorted(expected)
    for name in expected:
        assert upgraded[name] == expected[name], name
    g = zarr.open_group(str(v02), path="analysis/ica/XX.AAA.", mode="r")
    chunk = g["cluster"].chunks[0]
    assert g["cluster"].shards == (4 * chunk,) and g["components"].shards[0] == 4 * chunk  # a day per shard
    assert g["time"].chunks == (chunk * TIME_CHUNK_BLOCKS,) and g["time"].shards is None
