"""The plan: which (station, block) tasks a run computes, decided once by the driver.

Planning reads file names and headers (never a waveform) and the store's
ledger; it writes nothing. Each station gets a fixed window grid (the store's,
when the station is already there, so a later span continues it), the span's
windows, and the blocks among them that are not complete.
"""

from __future__ import annotations

import collections
import dataclasses
import typing as T

import numpy as np
from obspy import UTCDateTime

from .blocks import BlockTask, shards, station_network
from .design import Design
from ..config import Config
from ..scattering.design import load_network
from ..errors import ConfigError, InputError, StoreError
from ..inputs.grid import Blocks, Grid, same_rate, whole_samples
from ..store.ledger import contents_differ, inputs_differ
from ..scattering.network import ScatteringNetwork
from ..inputs.prechecks import check_station
from ..inputs.epochs import Responses
from ..inputs.inventory import load_inventory
from ..inputs.sources import FileSource, SDSSource, Source, Station, matches
from ..store.encoding import shard_blocks
from ..store.writer import StationState, Store



@dataclasses.dataclass
class StationPlan:
    """What one run does for one station.

    Attributes
    ----------
    station : Station
    grid : Grid
    blocks : Blocks
        The group's blocking once the run has grown it (``blocks.n`` windows).
    n_old : int
        Windows in the store before the run.
    span : (int, int)
        Window indices ``k_lo .. k_hi`` (inclusive) of this run's span.
    todo : list of int
        Blocks to compute.
    complete : int
        Blocks of the span already complete.
    why : dict
        Number of blocks to compute per ledger state (``"pending"``, ``"inputs changed"``...).
    added : tuple of str
        Channels new to the store's group (the driver re-lays the group to add them).
    shard : int
        Blocks per shard of the group's data arrays.
    recomputed : list of int
        Blocks to compute that the ledger marks done (inputs changed, data missing): the driver
        unmarks them before any task runs.
    """

    station: Station
    grid: Grid
    blocks: Blocks
    n_old: int
    span: tuple[int, int]
    todo: list[int]
    complete: int
    why: dict = dataclasses.field(default_factory=dict)
    added: tuple = ()
    shard: int = 1
    recomputed: list = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return self.station.key

    @property
    def n_new(self) -> int:
        """Windows in the store after the run."""
        return self.blocks.n


@dataclasses.dataclass
class Plan:
    """Every station's plan for one run, the stations skipped or refused (with why), and
    what planning noticed about the input without refusing anything (``notes``)."""

    cfg: Config
    design: Design
    source: Source
    stations: list[StationPlan]
    skipped: list[tuple[str, str]]
    refused: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    inventory: T.Any = None
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def tasks(self) -> int:
        """Number of block tasks."""
        return sum(len(s.todo) for s in self.stations)

    def network(self, sp: StationPlan) -> ScatteringNetwork:
        """The network of station ``sp`` (its own ``bins`` and rate)."""
        return station_network(self.design.params(), sp.grid.bins, sp.grid.sampling_rate)

    @property
    def shard_count(self) -> int:
        """Number of shards holding blocks to compute (the most tasks a run can have)."""
        return sum(len(shards(sp.todo, sp.shard)) for sp in self.stations)

    def block_tasks(self, threads: int = 1, token: str = "", per_task: int = 1) -> T.Iterator[BlockTask]:
        """The tasks, station by station, in time order: each holds ``per_task`` shards of blocks
        to compute (a shard is written by one task only), made as they are asked for."""
        params = self.design.params()
        store = self.cfg.output["store"]
        for sp in self.stations:
            groups = shards(sp.todo, sp.shard)
            for i in range(0, len(groups), per_task):
                todo = [b for group in groups[i : i + per_task] for b in group]
                t0 = UTCDateTime(ns=sp.grid.block_read_span(sp.blocks, todo[0])[0])
                t1 = UTCDateTime(ns=sp.grid.block_read_span(sp.blocks, todo[-1])[1])
                yield BlockTask(sp.station, sp.grid, sp.blocks, todo[0], store, self.source.spec(sp.station, t0, t1),
                                params, threads, tuple(todo), token, sp.shard)

    def describe(self) -> str:
        """One line per station (span, blocks to compute, blocks complete) and per skip."""
        lines = []
        for s in self.stations:
            t0, t1 = (np.datetime64(int(s.grid.start_ns(k)), "ns") for k in s.span)
            why = ", ".join(f"{n} {'new' if state == 'pending' else state}" for state, n in sorted(s.why.items()))
            lines.append(
                f"  {s.key:16s} {len(s.station.channels)} ch @ {s.station.sampling_rate:g} Hz"
                f"{'' if s.grid.sampling_rate == s.station.sampling_rate else f' -> {s.grid.sampling_rate:g} Hz'}, "
                f"windows {s.span[0]}..{s.span[1]} ({t0} .. {t1}), "
                f"{len(s.todo)} block(s) to compute{f' ({why})' if why else ''}, {s.complete} already complete"
                + (f"; adds channel(s) {', '.join(s.added)} to the store" if s.added else "")
            )
        if self.design.preprocess.active:
            from ..inputs.preprocess import describe

            lines.append(f"  {describe(self.design.preprocess)}")
        for key, why in self.skipped:
            lines.append(f"  {key:16s} skipped: {why}")
        for key, why in self.refused:
            lines.append(f"  {key:16s} refused: {why}")
        for key, why in self.notes:
            lines.append(f"  {key:16s} note: {why}")
        return "\n".join(lines)


def source_from_config(cfg: Config) -> Source:
    """The waveform source of the ``[input]`` section."""
    inp = cfg.input
    if inp["sds"] is not None:
        return SDSSource(inp["sds"], inp["select"], inp["start"], inp["end"])
    return FileSource(inp["paths"], inp["select"])


def make_plan(cfg: Config, store: Store, source: Source | None = None, fresh: bool = False,
              recheck_all: bool = False) -> Plan:
    """Decide stations, grids and the blocks to compute; writes nothing.

    Parameters
    ----------
    cfg : Config
    store : Store
    source : Source, optional
        Default: from the config.
    fresh : bool
        Ignore what the store holds (the caller will delete it: ``--overwrite``).
    recheck_all : bool
        Also hash every file each done block read and compare with the hash it recorded
        (``--recheck-all``): finds rewrites that kept their size and mtime, at the cost of
        reading every recorded file once.
    """
    design = Design.from_config(cfg)
    pre = design.preprocess
    source = source or source_from_config(cfg)
    # Resampling puts every channel on one rate: stations whose channels differ in rate are fine.
    stations = source.stations(any_rate=pre.sampling_rate is not None)
    inventory = load_inventory(pre.inventory) if pre.inventory else None
    responses = Responses(pre, inventory) if pre.response != "none" else None
    fixed_rate = _design_file_rate(cfg)
    inp = cfg.input
    span = (UTCDateTime(inp["start"]).ns if inp["start"] else None, UTCDateTime(inp["end"]).ns if inp["end"] else None)
    plans, skipped, refused = [], [], []
    states = {} if fresh else store.station_states()  # the root and each group opened once
    if isinstance(source, SDSSource):
        stations = _with_stored(stations, states, source.select)
    recheck_ns = None if recheck_all else int(round(float(inp["recheck_days"]) * 86400e9))
    for st in stations:
        if st.sampling_rate <= 0:  # state-of-health and log channels: not waveforms
            skipped.append((st.key, f"sampling rate {st.sampling_rate} Hz is not a waveform ({', '.join(st.channels)})"))
            continue
        try:
            rate = pre.sampling_rate or st.sampling_rate
            if fixed_rate is not None and not same_rate(rate, fixed_rate):
                raise InputError(f"{st.channels[0]}: sampling rate {rate} Hz does not match the "
                                 f"design's {fixed_rate} Hz")
            check_station(pre, st, inventory, *span)  # settings that cannot apply to a channel
            state = states.get(st.key)
            if state is not None and pre.sampling_rate is None:
                st = group_rate(st, state)
            sp = _station_plan(design, source, st, state, *span, responses=responses,
                               recheck_all=recheck_all, recheck_ns=recheck_ns)
        except (ConfigError, InputError, StoreError) as exc:
            # One station's problem (an off-nominal rate, channels that changed...) never stops the others.
            refused.append((st.key, str(exc)))
            continue
        if sp is None:
            skipped.append((st.key, "the span is shorter than one window"))
        else:
            plans.append(sp)
    refused += list(source.unreadable)
    if not plans:
        # Nothing to run: say why in one line, and leave no store behind whose design would
        # then refuse the corrected configuration.
        key, why = (refused + skipped)[0]
        more = len(refused) + len(skipped) - 1
        raise InputError(f"nothing to compute: {key}: {why}" + (f" (and {more} other station(s))" if more else ""))
    return Plan(cfg, design, source, plans, skipped, refused, inventory, list(source.notes))


def _with_stored(stations: list[Station], states: dict, select) -> list[Station]:
    """``stations`` and the store's stations the span's SDS directories lack (a station that
    stopped before the span's years: only those years are listed), at their group's rate: as a
    run over the whole span would, their groups grow with blocks without data."""
    found = {st.key for st in stations}
    extra = [Station(key, sorted(c for c in state.channels if matches(c, select)),
                     float(state.attrs["sampling_rate_hz"]))
             for key, state in states.items()
             if key not in found and any(matches(c, select) for c in state.channels)]
    return sorted(stations + extra, key=lambda st: st.key) if extra else stations


def _design_file_rate(cfg: Config) -> float | None:
    """The sampling rate fixed by ``network.design`` (None with ``network.layers``)."""
    if cfg.network["design"] is None:
        return None
    fixed = load_network(cfg.network["design"])
    window = fixed.bins / fixed.sampling_rate
    if abs(window - cfg.network["window_s"]) > 1e-9:
        raise ConfigError(
            f"network.window_s ({cfg.network['window_s']} s) differs from the design file's "
            f"{fixed.bins} bins at {fixed.sampling_rate} Hz ({window} s)"
        )
    return fixed.sampling_rate


def station_grid(design: Design, st: Station, origin_ns: int) -> Grid:
    """The window grid of station ``st`` starting at ``origin_ns``; a ConfigError when the
    window or hop is not a whole number of samples, or a layer reaches too low."""
    rate = design.preprocess.sampling_rate or st.sampling_rate
    check_octaves(list(design.layers), design.window_s, rate, st.key)
    bins = whole_samples(design.window_s, rate, f"{st.key}: network.window_s")
    hop = whole_samples(design.hop_s, rate, f"{st.key}: the hop (window_s x (1 - overlap))")
    return Grid(origin_ns=origin_ns, sampling_rate=rate, bins=bins, hop=hop, pad_ns=design.preprocess.pad_ns)


def _station_plan(design: Design, source: Source, st: Station, state: StationState | None,
                  start: int | None, end: int | None, responses: Responses | None = None,
                  recheck_all: bool = False, recheck_ns: int | None = None) -> StationPlan | None:
    added: tuple = ()
    if state is not None:
        origin = int(state.attrs["grid_origin_ns"])
        added = tuple(c for c in st.channels if c not in state.channels)
        st = store_channels(st, state.channels, source.select)
    else:
        origin = start if start is not None else st.first_ns
    grid = station_grid(design, st, origin)
    span_start = start if start is not None else st.first_ns
    span_end = end if end is not None else st.last_ns + int(round(1e9 / st.sampling_rate))
    if span_start < origin:
        raise ConfigError(
            f"input.start ({UTCDateTime(ns=span_start)}) is before the store's grid origin for {st.key} "
            f"({UTCDateTime(ns=origin)}); extend forward in time or use another store"
        )
    k_lo, k_hi = grid.windows_within(span_start, span_end)
    if k_hi < k_lo:
        return None
    n_old = 0 if state is None else state.n_time
    blocks = Blocks(int(round(design.block_s / design.hop_s)), max(n_old, k_hi + 1))
    in_span = blocks.of_windows(k_lo, k_hi)
    shard = int(state.attrs.get("shard_blocks", 1)) if state is not None else shard_blocks(design.block_s)
    if state is None:
        return StationPlan(st, grid, blocks, n_old, (k_lo, k_hi), list(in_span), 0, {"pending": len(in_span)},
                           shard=shard)

    def inputs_changed(b: int, recorded: list) -> bool:
        # Late data: a file grew or was rewritten, or a new one now covers the block's span;
        # with a response step, also a corrected response of a channel in that span.
        a, e = grid.block_read_span(blocks, b)
        current = source.input_records(st, UTCDateTime(ns=a), UTCDateTime(ns=e))
        if responses is not None:
            current += responses.records(st.channels, a, e)
        return inputs_differ(recorded, current) or (recheck_all and bool(contents_differ(recorded, current)))

    # Late data is looked for in the blocks ending within recheck_ns of the station's newest window
    # (all blocks with --recheck-all): the others cost one ledger value each, nothing on disk.
    first = 0
    if recheck_ns is not None:
        newest = int(grid.start_ns(blocks.n - 1)) + grid.window_ns
        first = grid.first_window_ending_after(newest - recheck_ns) // blocks.chunk
    ledger = state.ledger(blocks.n, inputs_changed, recheck=lambda b: b >= first, check_data=recheck_all)
    todo = ledger.todo(in_span)
    why = collections.Counter(ledger.state(b) for b in todo)
    # Complete blocks computed again are unmarked first (their stamps change before their data does);
    # a partial or failed block is not complete anyway, so it needs no ledger write before its task.
    recomputed = [b for b in todo if ledger.complete_mask[b]]
    return StationPlan(st, grid, blocks, n_old, (k_lo, k_hi), todo, len(in_span) - len(todo), dict(why), added,
                       shard, recomputed)


def group_rate(st: Station, state: StationState) -> Station:
    """Station ``st`` at the sampling rate its store group was laid out at.

    A source's rate comes from one header (an SDS archive's at the span's start): after an
    upgrade it differs from the group's, and windows of another rate must never be written
    under the group's frequencies. At the group's rate the blocks holding the new rate fail,
    naming the change, as a fresh run over the whole archive has them.
    """
    rate = float(state.attrs.get("sampling_rate_hz", st.sampling_rate))
    return st if same_rate(rate, st.sampling_rate) else dataclasses.replace(st, sampling_rate=rate)


def store_channels(st: Station, stored: list[str], select: list[str]) -> Station:
    """Station ``st`` with the channels of its store group joined: a store's channels only grow.

    A channel the input lacks now (it stopped, its files were pruned, this run's files do
    not hold it) keeps its place and its earlier data; new blocks give it coverage 0, as a
    fresh run over an archive still holding its old files would. A channel new to the
    input joins (the driver re-lays the group). A store channel that ``input.select`` now
    excludes is refused: computing it as absent would write coverage 0 where data exists,
    and no fresh run with this select would hold it.

    Raises
    ------
    ConfigError
        Naming the store's channels that ``input.select`` excludes.
    """
    excluded = [c for c in stored if c not in st.channels and not matches(c, select)]
    if excluded:
        raise ConfigError(
            f"{st.key}: the store holds channel(s) {', '.join(excluded)}, which input.select excludes "
            f"({', '.join(select)}); a store keeps every channel it has: select them again, or use another "
            "output.store")
    return dataclasses.replace(st, channels=sorted(set(stored) | set(st.channels)))


def check_octaves(layers: list[dict], window_s: float, rate: float, where: str) -> None:
    """Refuse layers reaching frequencies whose wavelet envelope is wider than the window.

    The lowest centre of a bank is ``nyquist * 2**-octaves`` Hz; its Gaussian
    envelope is ``quality / center`` seconds wide, and a window shorter than
    that cannot resolve it (the wavelet wraps around the window).
    """
    nyquist = rate / 2
    for i, layer in enumerate(layers):
        lowest = nyquist * 2.0 ** -layer["octaves"]
        width = layer["quality"] / lowest
        if width > window_s:
            most = int(np.floor(np.log2(window_s * nyquist / layer["quality"])))
            if most < 1:
                raise ConfigError(
                    f"network.layers[{i}]: a {window_s:g} s window at {where} ({rate:g} Hz) is too short for "
                    f"even one octave at quality {layer['quality']:g}: use windows of at least "
                    f"{2 * layer['quality'] / nyquist:.3g} s (or a lower quality)")
            raise ConfigError(
                f"network.layers[{i}]: octaves = {layer['octaves']} reaches {lowest:.3g} Hz at {where} "
                f"({rate:g} Hz), whose wavelet is {width:.3g} s wide, more than the {window_s:g} s window; "
                f"use at most {most} octaves (or longer windows, or a lower quality)"
            )
