"""An incremental ``scatflow analyze`` costs what is new, not what is stored: the store requests it
makes (counted through ``scatflow.store.access``), and its counts after an interrupted run."""

import re
import shutil

import numpy as np
import obspy
import pytest
import zarr
from helpers import SMALL_LAYERS, compute_all, counted_requests, store_entries, write_config, write_sds

from scatflow.analysis.analyze import analyze
from scatflow.config import load_config, parse_config
from scatflow.store.analysis_writer import AnalysisWriter
from scatflow.store.encoding import TIME_CHUNK_BLOCKS
from scatflow.store.reader import StoreReader
from scatflow.store.writer import Store
from scatflow.synthetic.store import extend_store, write_store

pytest.importorskip("sklearn")

CHUNK = 20
#: Blocks per shard of the station group (``shard_blocks``), and so of its analysis: a new block
#: shares its shard with the last stored one (4 = 3 + 1, 16 = 15 + 1).
SHARD = 3
KEY = "X9.A."
KW = dict(layers=SMALL_LAYERS, sampling_rate=20.0, block_windows=CHUNK, nan_windows=slice(30, 45), shard_blocks=SHARD)
LABELS = ("components", "cluster", "distance")
#: Objects of the label and coefficient arrays, ``<group>/<array>/c.<index>...``: a shard of SHARD
#: blocks (``time``: a chunk of TIME_CHUNK_BLOCKS blocks).
CHUNK_KEY = re.compile(r"^(?P<group>analysis/ica/X9\.A\.|X9\.A\.)/(?P<array>order_1|order_2|coverage|time|components"
                       r"|cluster|distance)/c[./](?P<index>\d+)")


def cfg_of(store):
    return parse_config({"input": {"paths": ["unused.mseed"]}, "network": {"layers": SMALL_LAYERS},
                         "output": {"store": str(store)},
                         "analysis": {"sample": 2000, "components": 2, "clusters": 3}})


def quiet(cfg):
    return analyze(cfg, log=lambda m: None)


def chunk_requests(log):
    """``(kind, group, array, blocks)`` of every request for an object (chunk or shard) of a label
    or coefficient array; ``blocks``: the range of blocks that object holds."""
    out = []
    for kind, key in log:
        if m := CHUNK_KEY.match(key):
            per = TIME_CHUNK_BLOCKS if m["array"] == "time" else SHARD
            out.append((kind, m["group"], m["array"], range(int(m["index"]) * per, (int(m["index"]) + 1) * per)))
    return out


def grown_by_one_block(tmp_path, blocks):
    """A store of ``blocks`` blocks, analysed, then grown by one block; its config."""
    path = tmp_path / f"s{blocks}.zarr"
    write_store(path, [KEY], blocks * CHUNK, **KW)
    cfg = cfg_of(path)
    quiet(cfg)
    extend_store(path, [KEY], (blocks + 1) * CHUNK, **KW)
    return cfg


def labels_of(path):
    g = zarr.open_group(str(path), path=f"analysis/ica/{KEY}", mode="r")
    return {name: np.asarray(g[name][:]) for name in LABELS}


def test_a_new_block_costs_the_same_requests_whatever_the_store_holds(tmp_path):
    """With one new block, analyze touches no object (chunk or shard) holding only stored blocks,
    makes as many requests (the station's ledger arrays aside) on a store of 4N blocks as on one
    of N, and leaves every stored block's labels bit for bit; with nothing new, it reads no chunk
    of coefficients or labels at all.

    The new block shares its shard with a stored one: Zarr reads that shard and writes it whole
    again, carrying the stored block's encoded chunks over unchanged (one task per shard, so
    nothing else writes it meanwhile). The label ``time`` chunk holding the new block is written
    whole from the grid, never read."""
    counts = {}
    for blocks in (4, 16):
        cfg = grown_by_one_block(tmp_path, blocks)
        before = labels_of(cfg.output["store"])
        summary, log = counted_requests(lambda: quiet(cfg))
        assert summary.labelled_now == CHUNK and not summary.fitted
        touched = chunk_requests(log)
        old = [(g, a, b) for _, g, a, b in touched if blocks not in b]
        assert not old, f"{blocks} blocks: objects of stored blocks only read or written: {old[:8]}"
        # The new block: its coefficients read, its labels written (their shard read first: it
        # holds a stored block), the label time written; the station's time never read.
        analysis = "analysis/ica/" + KEY
        assert {(g, a) for _, g, a, _ in touched} == {(KEY, "order_1"), (KEY, "order_2"), (analysis, "time"),
                                                      *((analysis, a) for a in LABELS)}
        assert {(g, a) for kind, g, a, _ in touched if kind == "set"} == {(analysis, a) for a in ("time", *LABELS)}
        assert not [a for kind, g, a, _ in touched if kind == "get" and a == "time"]
        # Every stored block's labels as they were, bit for bit (the new block's shard-mate too).
        after = labels_of(cfg.output["store"])
        for name in LABELS:
            assert after[name][: blocks * CHUNK].tobytes() == before[name][: blocks * CHUNK].tobytes(), name
        ledger = [key for _, key in log if key.startswith(f"{KEY}/block_")]
        # Of the ledger, data of block_done and block_stamp only, each chunk once (the other arrays:
        # metadata, as consolidating reads it); per chunk of LEDGER_CHUNK blocks in store format 2.
        data = [k for k in ledger if not k.endswith("zarr.json")]
        assert {k.split("/")[1] for k in data} == {"block_done", "block_stamp"}
        assert len(data) == len(set(data))
        counts[blocks] = len(log) - len(ledger)
        # Nothing new: not one chunk of coefficients or labels.
        summary, log = counted_requests(lambda: quiet(cfg))
        assert summary.labelled_now == 0 and not chunk_requests(log)
        assert summary.windows == (blocks + 1) * CHUNK
    assert counts[16] == counts[4], counts


def label_counts_of(path):
    g = zarr.open_group(str(path), path=f"analysis/ica/{KEY}", mode="r")
    return np.asarray(g["label_counts"][:]), np.asarray(g["cluster"][:])


def summary_line(summary):
    return re.sub(r"\d+ labelled in this run in [0-9.]+ s", "", summary.text())


@pytest.mark.parametrize("killed_at", ["write_counts", "write_stamps"])
def test_an_analyze_killed_after_its_labels_counts_each_window_once_after_the_next(tmp_path, monkeypatch, killed_at):
    """Killed after writing a new block's labels (before its counts, or before its stamps), the next
    analyze labels the block again and replaces its counts: the same counts and summary as an
    analyze of the same store from scratch with the same model."""
    cfg = grown_by_one_block(tmp_path, 4)
    # A stored block written since it was labelled, too (a recompute that failed): labelled again.
    store = Store(cfg.output["store"])
    group = zarr.open_group(cfg.output["store"], path=KEY, mode="r")
    store.write_windows(KEY, CHUNK, {name: np.full((CHUNK,) + group[name].shape[1:], 0.0 if name == "coverage" else np.nan,
                                                   dtype=group[name].dtype) for name in ("order_1", "order_2", "coverage")})
    store.mark_blocks(KEY, [{"block": 1, "windows": 0, "error": "a recompute that failed"}])

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt("killed")

    real = getattr(AnalysisWriter, killed_at)
    monkeypatch.setattr(AnalysisWriter, killed_at, killed)
    with pytest.raises(KeyboardInterrupt):
        quiet(cfg)
    monkeypatch.setattr(AnalysisWriter, killed_at, real)
    after = quiet(cfg)
    assert after.labelled_now == 2 * CHUNK  # the new block and the rewritten one, once each
    counts, labels = label_counts_of(cfg.output["store"])
    # Reference: the same store labelled from scratch with the stored model.
    fresh = tmp_path / "fresh.zarr"
    shutil.copytree(cfg.output["store"], fresh)
    shutil.rmtree(fresh / "analysis" / "ica" / KEY)
    ref = quiet(cfg_of(fresh))
    assert ref.labelled_now == 5 * CHUNK and not ref.fitted
    ref_counts, ref_labels = label_counts_of(fresh)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(counts, ref_counts)
    per_block = np.stack([np.bincount(labels[b * CHUNK:(b + 1) * CHUNK] + 1, minlength=counts.shape[1])
                          for b in range(5)])
    np.testing.assert_array_equal(counts, per_block)
    assert summary_line(after) == summary_line(ref)
    assert after.cluster_sizes[-1] == CHUNK + 5 and sum(after.cluster_sizes.values()) == 5 * CHUNK


def test_an_analysis_without_label_counts_counts_its_stored_labels_once(tmp_path):
    """An analysis written before label counts existed is not labelled again: its stored labels are
    counted once, and the summary is the one it printed."""
    path = tmp_path / "s.zarr"
    write_store(path, [KEY], 5 * CHUNK, **KW)
    first = quiet(cfg_of(path))
    shutil.rmtree(path / "analysis" / "ica" / KEY / "label_counts")
    again = quiet(cfg_of(path))
    assert again.labelled_now == 0
    assert again.model_sizes == first.model_sizes and again.windows == first.windows == 5 * CHUNK
    counts, labels = label_counts_of(path)
    assert counts.sum() == 5 * CHUNK and counts[1, 0] == CHUNK - 10  # block 1: windows 30..39 have no features
    assert StoreReader(path).analysis_counts("ica", KEY) == (5 * CHUNK, first.model_sizes[None])


def test_labelled_station_days_cost_at_most_3_files_and_no_directory(tmp_path):
    """A store computed by ``scatflow run`` from an SDS archive (6 h blocks, shards of a day), then
    analysed: each labelled station-day adds at most 3 files (a shard of ``components``,
    ``cluster`` and ``distance``) and no directory to ``analysis/``, whatever the store holds."""
    ids = ["XX.AAA..BHZ", "XX.BBB..BHZ"]
    t0 = obspy.UTCDateTime("2021-03-01")
    layers = [{"octaves": 2, "resolution": 1, "quality": 1}, {"octaves": 2, "resolution": 1, "quality": 1}]
    entries = {}
    for days in (2, 6):
        root = tmp_path / str(days)
        write_sds(root / "sds", ids, t0, t0 + days * 86400, rate=1.0)
        path = write_config(root / "run.toml", sds=root / "sds", start=str(t0)[:19],
                            end=str(t0 + days * 86400)[:19], layers=layers, store=root / "out.zarr")
        path.write_text(path.read_text() + "[analysis]\ncomponents = 2\nclusters = 3\nsample = 2000\njoint = false\n")
        cfg = load_config(path)
        compute_all(cfg)
        summary = quiet(cfg)
        assert summary.windows == len(ids) * (days * 4320 - 1)  # every window labelled
        entries[days] = store_entries(root / "out.zarr" / "analysis")
    (files2, dirs2), (files6, dirs6) = entries[2], entries[6]
    assert dirs6 == dirs2, entries  # no directory per chunk, block or day
    assert files6 - files2 <= 3 * len(ids) * (6 - 2), entries
