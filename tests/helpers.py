"""Plain helpers shared by the test modules (fixtures live in conftest.py).

Test modules import from here, never from one another.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import xarray as xr

from scatflow.cli import main

# The scatseisnet tutorial's design (40 s windows at 50 Hz: 24 first-order, 6 second-order filters).
TUTORIAL_LAYERS = [
    {"octaves": 6, "resolution": 4, "quality": 2},
    {"octaves": 6, "resolution": 1, "quality": 2},
]
# A small design, quick to compute, that fits windows of 200 samples or more.
SMALL_LAYERS = [
    {"octaves": 4, "resolution": 2, "quality": 2},
    {"octaves": 3, "resolution": 1, "quality": 2},
]
STORE_VARIABLES = ("order_1", "order_2", "coverage", "time", "block_done")


# -- window arithmetic --------------------------------------------------------------------------
def n_windows(span_s: float, window_s: float, hop_s: float) -> int:
    """Number of windows lying entirely within a span: floor((span - window) / hop) + 1."""
    return math.floor((span_s - window_s) / hop_s + 1e-9) + 1


def n_blocks(windows: int, windows_per_block: int) -> int:
    """Number of blocks (Zarr chunks along time) holding ``windows`` windows."""
    return math.ceil(windows / windows_per_block)


def windows_per_block(block_s: float, hop_s: float) -> int:
    """Windows in a full block: a block is ``block_s`` seconds of window starts."""
    per = block_s / hop_s
    assert per == round(per), (block_s, hop_s)
    return round(per)


def block_sizes(windows: int, per_block: int) -> list[int]:
    """Windows in each block: full blocks, then the remainder."""
    return [min(per_block, windows - b * per_block) for b in range(n_blocks(windows, per_block))]


# -- configs ------------------------------------------------------------------------------------
def toml_layers(layers) -> str:
    """``layers`` as a TOML inline array of tables."""
    return "[" + ", ".join("{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in layer.items()) + " }"
                           for layer in layers) + "]"


def write_config(path: Path, *, paths=None, sds=None, select=None, start=None, end=None,
                 window_s=40.0, overlap=0.5, reduce="median", layers=SMALL_LAYERS, design=None,
                 store="out.zarr", dtype="float64", block_s=None, workers=1, cluster=None,
                 preprocess=None, recheck_days=None, input_options=None, output_options=None) -> Path:
    """Write a ``scatflow run`` config to ``path`` and return ``path``.

    The input is ``paths`` (files or globs) or an ``sds`` archive root; ``layers`` or a ``design``
    file gives the network; ``cluster`` (the ``[cluster]`` section's body) defaults to ``workers``
    local workers without a dashboard; ``preprocess`` is the ``[preprocess]`` section's body;
    ``input_options``/``output_options`` are the sections' ``storage_options`` (dicts). Keys left as
    None are not written (scatflow's defaults).
    """

    def line(key, value):
        if isinstance(value, dict):  # a TOML inline table
            body = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            return f"{key} = {{ {body} }}\n"
        return "" if value is None else f"{key} = {json.dumps(value) if isinstance(value, str | list) else value}\n"

    paths = None if paths is None else [str(p) for p in paths]
    sds = None if sds is None else str(sds)
    select = None if select is None else list(select)
    layers = None if layers is None else toml_layers(layers)
    if cluster is None:
        cluster = f"workers = {workers}\ndashboard = false"
    text = (
        "[input]\n" + line("paths", paths) + line("sds", sds) + line("select", select)
        + line("start", start) + line("end", end) + line("recheck_days", recheck_days)
        + line("storage_options", input_options)
        + "[network]\n" + line("window_s", window_s) + line("overlap", overlap) + line("reduce", reduce)
        + ("" if layers is None else f"layers = {layers}\n") + line("design", design)
        + "[output]\n" + line("store", str(store)) + line("dtype", dtype) + line("block_s", block_s)
        + line("storage_options", output_options)
        + f"[cluster]\n{cluster}\n"
        + ("" if preprocess is None else f"[preprocess]\n{preprocess}\n")
    )
    path = Path(path)
    path.write_text(text)
    return path


# -- SDS archives ------------------------------------------------------------------------------
def sds_path(root, seed_id: str, day) -> Path:
    """The SDS day file ``ROOT/YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY`` of ``seed_id`` on ``day``."""
    import obspy

    net, sta, loc, cha = seed_id.split(".")
    day = obspy.UTCDateTime(day)
    return Path(root) / f"{day.year}" / net / sta / f"{cha}.D" / f"{seed_id}.D.{day.year}.{day.julday:03d}"


def write_sds(root, seed_ids, start, end, rate=20.0, reclen=512) -> list[Path]:
    """Write an SDS archive of integer noise (seeded by each id) over ``[start, end)`` for each of
    ``seed_ids``, cut at midnight into day files of ``reclen``-byte STEIM2 records; the files."""
    import zlib

    import obspy

    start, end = obspy.UTCDateTime(start), obspy.UTCDateTime(end)
    files = []
    for seed_id in seed_ids:
        net, sta, loc, cha = seed_id.split(".")
        n = int(round((end - start) * rate))
        data = np.random.default_rng(zlib.crc32(seed_id.encode())).normal(0, 500, n).round().astype(np.int32)
        tr = obspy.Trace(data, {"network": net, "station": sta, "location": loc, "channel": cha,
                                "sampling_rate": rate, "starttime": start})
        day = obspy.UTCDateTime(start.date)
        while day < end:
            part = tr.slice(day, day + 86400 - 0.5 / rate, nearest_sample=False)
            path = sds_path(root, seed_id, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write(str(path), format="MSEED", encoding="STEIM2", reclen=reclen)
            files.append(path)
            day += 86400
    return files


def relabel(path, station: str) -> None:
    """Rewrite miniSEED file ``path`` with its records' station code set to ``station``."""
    import obspy

    st = obspy.read(str(path))
    for tr in st:
        tr.stats.station = station
    st.write(str(path), format="MSEED", encoding="STEIM2", reclen=st[0].stats.mseed.record_length)


# -- command outcomes ---------------------------------------------------------------------------
def one_line_error(capsys, argv, *needles) -> str:
    """Run ``scatflow`` with ``argv`` (or ``run CONFIG --quiet`` when given a config path) and check
    the bad-input contract: exit status 2 and exactly one line on stderr, ``scatflow: error: ...``,
    without a traceback, containing each of ``needles``. Returns that line."""
    if isinstance(argv, str | Path):
        argv = ["run", str(argv), "--quiet"]
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scatflow: error: "), err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


# -- stores -------------------------------------------------------------------------------------
def load_group(store, group) -> xr.Dataset:
    """One station group of a store, read into memory."""
    return xr.open_zarr(store, group=group, consolidated=False).load()


def assert_same_store(a, b, groups=("X9.SV13.",), names=STORE_VARIABLES):
    """Stores ``a`` and ``b`` hold identical ``names`` in each of ``groups`` (floats bitwise, NaN included)."""
    for group in groups:
        da, db = load_group(a, group), load_group(b, group)
        for name in names:
            x, y = da[name].values, db[name].values
            np.testing.assert_array_equal(x, y, err_msg=f"{group} {name}")
            if x.dtype.kind == "f":
                assert x.tobytes() == y.tobytes(), f"{group} {name}: not bitwise equal"


# Ledger arrays holding when a block was written, not what: equal in layout only.
WRITE_TIMES = ("block_stamp",)


def assert_stores_bitwise_equal(a, b, groups, ignore=()):
    """Every array of each of ``groups`` (data, coordinates, ledger) holds the same values in stores
    ``a`` and ``b`` (floats bitwise, NaN included), with the same shape, chunks, dtype and attributes,
    and the groups' attributes are equal: what eventual equality promises (:data:`WRITE_TIMES`, and
    the arrays named in ``ignore``, compared in layout only)."""
    import zarr

    def opened(x):  # a path, or a URL carrying its settings (scatflow.location.Url)
        from scatflow.store.access import zarr_store

        return zarr.open_group(zarr_store(x if isinstance(x, str) else str(x)), mode="r", use_consolidated=False)

    za, zb = opened(a), opened(b)
    for group in groups:
        assert sorted(za[group].array_keys()) == sorted(zb[group].array_keys()), group
        for name in sorted(za[group].array_keys()):
            x, y = za[group][name], zb[group][name]
            assert (x.shape, x.chunks, x.dtype) == (y.shape, y.chunks, y.dtype), (group, name)
            assert dict(x.attrs) == dict(y.attrs), (group, name)
            if name in WRITE_TIMES or name in ignore:
                continue
            x, y = x[:], y[:]
            if x.dtype.kind in "fc":
                assert x.tobytes() == y.tobytes(), (group, name)  # bitwise, NaN included
            else:
                assert (x == y).all(), (group, name)
        assert dict(za[group].attrs) == dict(zb[group].attrs), group


def compute_all(cfg):
    """Plan ``cfg``, prepare its store and run every block task in this process (no cluster);
    returns the plan and the block results."""
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import execute_here, prepare_store
    from scatflow.store.writer import Store

    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    return plan, execute_here(plan)


def block_inputs_now(plan, b: int, station: int = 0) -> list[dict]:
    """The records of the input files block ``b`` of the plan's ``station``-th station would read now
    (what planning compares with its ``block_files``), each with ``file``, where it is."""
    from obspy import UTCDateTime

    sp = plan.stations[station]
    a, e = sp.grid.block_read_span(sp.blocks, b)
    return plan.source.input_records(sp.station, UTCDateTime(ns=a), UTCDateTime(ns=e))


# -- numbers ------------------------------------------------------------------------------------
def assert_close(got, ref, rtol=1e-10, atol=1e-12, what="array"):
    """The project's comparison: |a-b| <= rtol*|b| + atol*max|b| (per array)."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert np.isfinite(got).all(), f"{what}: non-finite values"
    scale = np.abs(ref).max()
    err = np.abs(got - ref)
    bound = rtol * np.abs(ref) + atol * scale
    bad = err > bound
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} elements out of tolerance; "
        f"worst |a-b|/max|b| = {(err / scale).max():.3e}"
    )


# -- SLURM --------------------------------------------------------------------------------------
USABLE_SLURM_STATES = {"idle", "mix", "alloc"}


def slurm_up() -> bool:
    """True when ``sinfo`` answers (exit status 0 within 5 s) and lists a node in a usable state:
    idle, mix or alloc. A state with a flag (``idle*`` not responding, ``idle~`` powered off, ...)
    or any other state (down, drain, ...) does not count."""
    if not shutil.which("sinfo"):
        return False
    try:
        out = subprocess.run(["timeout", "5", "sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    except OSError:
        return False
    if out.returncode != 0:
        return False
    return not USABLE_SLURM_STATES.isdisjoint(out.stdout.split())


_CHILD_PRELUDE = """
import sys
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__
disabled = sys.argv[2].split()
assert not any(__cpu_features__.get(t) for t in disabled), "NPY_DISABLE_CPU_FEATURES had no effect"
OUT = {}
"""


def bits_differing_without_avx512(tmp_path: Path, code: str) -> list[str]:
    """Run ``code`` in two child processes, NumPy's AVX-512 code on and off; the keys whose bytes differ.

    ``code`` fills the dict ``OUT`` with arrays (the tests directory is on its
    path). Skips the calling test on a processor without AVX-512, where there
    is no second code path to compare.
    """
    import os
    import sys

    import pytest
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    avx512 = [t for t in __cpu_dispatch__ if "512" in t or t == "X86_V4"]
    if not any(__cpu_features__.get(t) for t in avx512):
        pytest.skip("this processor has no AVX-512: there is no second code path to compare")
    script = _CHILD_PRELUDE + f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + code + \
        "\nnp.savez(sys.argv[1], **OUT)\n"
    results = []
    for label, disabled in (("native", ""), ("avx2", " ".join(avx512))):
        path = tmp_path / f"{label}.npz"
        env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=disabled)
        subprocess.run([sys.executable, "-c", script, str(path), disabled], env=env, check=True)
        results.append(np.load(path))
    native, avx2 = results
    assert sorted(native.files) == sorted(avx2.files) and native.files
    return [k for k in native.files if native[k].tobytes() != avx2[k].tobytes()]


# -- archives and inventories made with ObsPy ---------------------------------------------------
def write_sds_traces(root, traces) -> Path:
    """Write ObsPy traces (each within one UTC day) into an SDS archive under ``root`` as miniSEED
    (the traces of one channel and day in one file); ``root``."""
    import obspy

    files: dict = {}
    for tr in traces:
        files.setdefault(sds_path(root, tr.id, tr.stats.starttime), obspy.Stream()).append(tr)
    for path, stream in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        stream.write(str(path), format="MSEED")
    return Path(root)


def epoch_inventory(seed_id: str, rate: float, epochs):
    """An ObsPy Inventory with one channel epoch per ``(start, end, gain)`` of ``epochs`` (``end``
    None: open), each with the example's velocity sensor (scatflow.synthetic.station_inventory)
    and its first stage's gain multiplied by ``gain``."""
    from obspy import UTCDateTime

    from scatflow.synthetic import station_inventory

    inv = station_inventory([(seed_id, rate)], start=epochs[0][0])
    station = inv[0][0]
    template = station.channels[0]
    station.channels = []
    for start, end, gain in epochs:
        chan = template.copy()
        chan.start_date = UTCDateTime(start)
        chan.end_date = None if end is None else UTCDateTime(end)
        chan.response.response_stages[0].stage_gain *= gain
        chan.response.recalculate_overall_sensitivity()
        station.channels.append(chan)
    return inv


def plan_and_run_in_process(cfg):
    """A ``scatflow run`` of ``cfg`` (a Config) without a cluster: plan, prepare the store, run
    every block task in this process (as a worker would); ``(plan, [BlockResult...])``."""
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import execute_here, prepare_store
    from scatflow.store.writer import Store

    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    store.drop_consolidated()
    prepare_store(plan, store)
    results = execute_here(plan)
    store.consolidate()
    return plan, results


def run_in_process(cfg) -> list:
    """:func:`plan_and_run_in_process` of a Config; the :class:`BlockResult` of each task."""
    return plan_and_run_in_process(cfg)[1]


def run_blocks_in_process(config: dict):
    """:func:`plan_and_run_in_process` of a parsed-config dict, every block computed or without
    data (asserted); the plan."""
    from scatflow.config import parse_config

    plan, results = plan_and_run_in_process(parse_config(config))
    assert all(r.ok or r.no_data for r in results), [r.error for r in results if r.error]
    return plan


# -- store requests -------------------------------------------------------------------------------
def store_entries(path) -> tuple[int, int]:
    """Files and directories under ``path`` (the directory itself not counted)."""
    files = dirs = 0
    for _, dnames, fnames in os.walk(path):
        files, dirs = files + len(fnames), dirs + len(dnames)
    return files, dirs


def counting_store_class():
    """A :class:`zarr.storage.WrapperStore` recording every request as ``(kind, key)`` in its
    ``log`` (a list shared by the stores it derives), for :func:`scatflow.store.access.set_wrapper`."""
    import zarr

    class CountingStore(zarr.storage.WrapperStore):
        def __init__(self, store, log: list):
            super().__init__(store)
            self.log = log

        def _with_store(self, store):
            return type(self)(store, self.log)

        async def get(self, key, prototype, byte_range=None):
            self.log.append(("get", key))
            return await self._store.get(key, prototype, byte_range)

        async def get_partial_values(self, prototype, key_ranges):
            key_ranges = list(key_ranges)
            self.log.extend(("get", k) for k, _ in key_ranges)
            return await self._store.get_partial_values(prototype, key_ranges)

        async def exists(self, key):
            self.log.append(("exists", key))
            return await self._store.exists(key)

        async def set(self, key, value):
            self.log.append(("set", key))
            return await self._store.set(key, value)

        def list(self):
            self.log.append(("list", ""))
            return self._store.list()

        def list_prefix(self, prefix):
            self.log.append(("list", prefix))
            return self._store.list_prefix(prefix)

        def list_dir(self, prefix):
            self.log.append(("list", prefix))
            return self._store.list_dir(prefix)

    return CountingStore


def counted_requests(fn):
    """``fn()``'s result and every store request it made through ``scatflow.store.access``, as
    ``(kind, key)`` pairs."""
    from scatflow.store import access

    log: list = []
    cls = counting_store_class()
    access.set_wrapper(lambda store: cls(store, log))
    try:
        return fn(), log
    finally:
        access.set_wrapper(None)
