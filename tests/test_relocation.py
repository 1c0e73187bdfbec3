"""An archive moved, remounted or copied elsewhere is the same input: nothing is recomputed.

Blocks record each input file relative to the archive's root (the SDS root, or the base of the
glob that matched it), with its size and mtime: a store computed from ``/scratch/archive`` and
run against ``/project/archive`` plans no block, and a file rewritten there recomputes exactly
the blocks that read it. Stores written before records were relative (absolute paths) match
by the path's trailing part.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import obspy
import pytest
import zarr
from helpers import (SMALL_LAYERS, assert_stores_bitwise_equal, plan_and_run_in_process, sds_path, write_config,
                     write_sds)

from scatflow.config import load_config
from scatflow.store.upgrade import upgrade
from scatflow.store.writer import Store
from scatflow.workflow.plan import make_plan

IDS = ("XX.AAA..HHZ", "XX.BBB..HHZ")
GROUPS = ("XX.AAA.", "XX.BBB.")
START, END = "2015-12-04T18:00:00", "2015-12-05T06:00:00"  # across midnight: two day files per channel
DAY2 = "2015-12-05"
V02 = Path(__file__).parent / "data" / "v02"


def config(tmp_path, kind, root, store, name="run.toml"):
    """A run over ``root``: as an SDS archive, or through one glob per station (each its own base)."""
    inp = ({"sds": root} if kind == "sds" else
           {"paths": [f"{root}/2015/XX/{sta}/*/*" for sta in ("AAA", "BBB")]})
    return load_config(write_config(tmp_path / name, **inp, select=["XX.*.*.HHZ"], start=START, end=END,
                                    window_s=40.0, layers=SMALL_LAYERS, block_s=10800, store=store))


def plan(cfg, recheck_all=False):
    return make_plan(cfg, Store(cfg.output["store"]), recheck_all=recheck_all)


def todo(p) -> dict:
    return {sp.station.key: sp.todo for sp in p.stations}


def ledger_files(store, group) -> list[list[dict]]:
    g = zarr.open_group(str(store), mode="r", use_consolidated=False)[group]
    return [json.loads(str(c) or "[]") for c in g["block_files"][:]]


def readers(store, group, rel) -> list[int]:
    """The blocks of ``group`` whose records name ``rel``."""
    return [b for b, files in enumerate(ledger_files(store, group)) if rel in {r["path"] for r in files}]


def stamps(store, group):
    return zarr.open_group(str(store), mode="r", use_consolidated=False)[group]["block_stamp"][:]


def rewrite_with_other_samples(path):
    st = obspy.read(str(path))
    for tr in st:
        tr.data = (tr.data[::-1] + 3).astype(np.int32)
    st.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)


@pytest.fixture(scope="module", params=["sds", "paths"])
def computed(request, tmp_path_factory):
    """A store computed from an archive at one path: ``(kind, archive, store)``."""
    base = tmp_path_factory.mktemp(f"computed-{request.param}")
    archive = base / "scratch" / "archive"
    write_sds(archive, IDS, START[:10], "2015-12-06", rate=20.0)
    cfg = config(base, request.param, archive, base / "out.zarr")
    _, results = plan_and_run_in_process(cfg)
    assert results and all(r.ok for r in results), [r.error for r in results]
    return request.param, archive, base / "out.zarr"


def moved(computed, tmp_path):
    """The archive copied to another path with its mtimes (``cp -a``), the original gone; a copy
    of the store and of it as computed; ``(kind, archive, store, before)``."""
    kind, archive, store = computed
    new = tmp_path / "project" / "archive"
    shutil.copytree(archive, new)  # copy2: mtimes kept, as cp -a and rsync -a keep them
    shutil.copytree(store, tmp_path / "out.zarr")
    shutil.copytree(store, tmp_path / "before.zarr")
    return kind, new, tmp_path / "out.zarr", tmp_path / "before.zarr"


def test_an_archive_moved_to_another_path_recomputes_nothing(computed, tmp_path):
    kind, archive, store, before = moved(computed, tmp_path)
    assert not str(computed[1]) in str(archive)
    cfg = config(tmp_path, kind, archive, store)
    # Every block is rechecked (the span is within input.recheck_days), and with --recheck-all too.
    assert todo(plan(cfg)) == {g: [] for g in GROUPS}
    assert todo(plan(cfg, recheck_all=True)) == {g: [] for g in GROUPS}
    _, results = plan_and_run_in_process(cfg)
    assert results == []
    assert_stores_bitwise_equal(before, store, GROUPS)
    for g in GROUPS:
        np.testing.assert_array_equal(stamps(before, g), stamps(store, g))
    # The records name files relative to the archive's root: a store computed at the new path
    # from the start holds the same ledger, byte for byte.
    fresh = config(tmp_path, kind, archive, tmp_path / "fresh.zarr", name="fresh.toml")
    plan_and_run_in_process(fresh)
    assert_stores_bitwise_equal(store, tmp_path / "fresh.zarr", GROUPS)
    rel = ledger_files(store, "XX.AAA.")[0][0]["path"]
    assert not rel.startswith("/") and (rel.startswith("2015/XX/AAA/") if kind == "sds" else rel.startswith("HHZ.D/"))

    # A copy that does not keep mtimes (plain cp) is a rewrite of every file, as a new mtime
    # always is: the rechecked blocks are computed again, to the same values.
    plain = tmp_path / "plain" / "archive"
    shutil.copytree(archive, plain, copy_function=shutil.copyfile)
    cfg = config(tmp_path, kind, plain, store, name="plain.toml")
    p = plan(cfg)
    assert todo(p) == {g: list(range(4)) for g in GROUPS}
    assert {sp.station.key: sp.why for sp in p.stations} == {g: {"inputs changed": 4} for g in GROUPS}
    plan_and_run_in_process(cfg)
    assert_stores_bitwise_equal(before, store, GROUPS, ignore=("block_files",))


def test_a_file_rewritten_after_the_move_recomputes_exactly_its_blocks(computed, tmp_path):
    kind, archive, store, _ = moved(computed, tmp_path)
    path = sds_path(archive, IDS[0], DAY2)
    rel = path.relative_to(archive if kind == "sds" else archive / "2015/XX/AAA").as_posix()
    expected = readers(store, "XX.AAA.", rel)
    assert expected and expected != list(range(4))  # block 0 reads only the first day
    rewrite_with_other_samples(path)
    cfg = config(tmp_path, kind, archive, store)
    p = plan(cfg)
    assert todo(p) == {"XX.AAA.": expected, "XX.BBB.": []}
    assert p.stations[0].why == {"inputs changed": len(expected)}
    plan_and_run_in_process(cfg)
    # Eventual equality: the store now equals a fresh run over the archive as it is.
    plan_and_run_in_process(config(tmp_path, kind, archive, tmp_path / "fresh.zarr", name="fresh.toml"))
    assert_stores_bitwise_equal(store, tmp_path / "fresh.zarr", GROUPS)


def as_written_before(store, archive):
    """Rewrite the store's file records as scatflow wrote them before records were relative:
    the file's absolute path at the time (under ``archive``)."""
    by_name = {p.name: str(p) for p in archive.rglob("XX.*") if p.is_file()}
    root = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    for g in GROUPS:
        cells = root[g]["block_files"]
        records = [json.loads(str(c) or "[]") for c in cells[:]]
        cells[:] = np.array([json.dumps([dict(r, path=by_name[os.path.basename(r["path"])]) for r in rs])
                             for rs in records], dtype=cells.dtype)


def test_absolute_records_of_an_older_store_match_the_archive_at_another_path(computed, tmp_path):
    kind, archive, store, _ = moved(computed, tmp_path)
    as_written_before(store, computed[1])
    assert all(r["path"].startswith(str(computed[1])) for r in ledger_files(store, "XX.AAA.")[1])
    cfg = config(tmp_path, kind, archive, store)
    assert todo(plan(cfg)) == {g: [] for g in GROUPS}
    assert todo(plan(cfg, recheck_all=True)) == {g: [] for g in GROUPS}  # hashes compared too
    # The absolute records are compared, not ignored: a rewritten file recomputes its blocks.
    path = sds_path(archive, IDS[1], START[:10])
    expected = [b for b, files in enumerate(ledger_files(store, "XX.BBB."))
                if any(r["path"].endswith(path.name) for r in files)]
    assert expected and expected != list(range(4))
    rewrite_with_other_samples(path)
    assert todo(plan(cfg)) == {"XX.AAA.": [], "XX.BBB.": expected}


def test_a_0_2_store_upgraded_recomputes_nothing_against_its_archive_at_another_path(tmp_path):
    """The 0.2 store (tests/data/v02) recorded its archive's absolute paths where it was made."""
    shutil.copytree(V02 / "store.zarr", tmp_path / "store.zarr")
    archive = tmp_path / "elsewhere" / "archive"
    shutil.copytree(V02 / "archive", archive)
    upgrade(tmp_path / "store.zarr")
    groups = ("XX.AAA.", "XX.BBB.")
    recorded = {r["path"]: r for g in groups for files in ledger_files(tmp_path / "store.zarr", g) for r in files}
    assert recorded and all(p.startswith("/") and not p.startswith(str(archive)) for p in recorded)
    # The archive's files as 0.2 read them: their bytes (the recorded hashes say so) and mtimes.
    for p, r in recorded.items():
        f = archive / p.split("/archive/", 1)[1]
        os.utime(f, (r["mtime"], r["mtime"]))
        assert f.stat().st_size == r["size"]
    text = (V02 / "run.toml").read_text().replace('sds = "archive"', f'sds = "{archive}"')
    cfg = load_config(write_text(tmp_path / "run.toml", text))
    # Only what 0.2 left undone is computed (AAA's outage, BBB's blocks failed on its damaged
    # file): every complete block stays, its inputs unchanged, by size and mtime and by hash.
    p = plan(cfg, recheck_all=True)
    assert todo(p) == {"XX.AAA.": [5], "XX.BBB.": [7, 8, 9]}
    assert {sp.station.key: (sp.complete, sp.why) for sp in p.stations} == {
        "XX.AAA.": (9, {"no data": 1}), "XX.BBB.": (7, {"failed": 3})}
    # One file touched: exactly the complete blocks that read it are computed again.
    day = "2015/XX/BBB/BHZ.D/XX.BBB..BHZ.D.2015.339"
    readers = [b for b, files in enumerate(ledger_files(tmp_path / "store.zarr", "XX.BBB.")[:7])
               if any(r["path"].endswith("/" + day) for r in files)]
    assert readers
    os.utime(archive / day)
    p = plan(cfg)
    assert todo(p) == {"XX.AAA.": [5], "XX.BBB.": sorted(readers + [7, 8, 9])}
    assert p.stations[1].why == {"inputs changed": len(readers), "failed": 3}


def write_text(path, text):
    path.write_text(text)
    return path
