"""What ``scatflow info STORE`` prints.

Reads the per-block ledger (states and per-block summaries), coordinates and
``coverage`` (when each channel starts and ends); no coefficient. What "complete",
"failed" and "missing data" mean is :mod:`scatflow.store.ledger`'s rule.
"""

from __future__ import annotations

import os

import numpy as np

from .store.ledger import CHANGED, COMPLETE, FAILED, MISSING, NO_DATA, PENDING, consecutive
from .inputs.preprocess import steps_text
from .store.reader import StationGroup, StoreReader, missing_blocks
from .location import is_url
from .store.relay import work_dir
from .store.summary import count

#: Blocks listed one by one before the list is cut short.
_LIST_MAX = 8


# -- formatting ---------------------------------------------------------------------------
def _iso(t) -> str:
    s = np.datetime_as_string(np.datetime64(t, "ns"), unit="ms")
    s = s[:-4] if s.endswith(".000") else s
    return s + "Z"


def _num(x) -> str:
    return f"{x:g}"


def _ranges(blocks) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in consecutive(blocks))


def _design_lines(design: dict) -> list[str]:
    layers = design.get("layers") or []
    parts = []
    for layer in layers:
        items = [f"{k}={_num(v) if isinstance(v, (int, float)) else v}" for k, v in layer.items() if v is not None]
        parts.append("(" + ", ".join(items) + ")")
    lines = [f"{len(layers)} layer(s): " + " ".join(parts)]
    bits = []
    if "window_s" in design:
        bits.append(f"window {_num(design['window_s'])} s")
    if "hop_s" in design:
        bits.append(f"hop {_num(design['hop_s'])} s")
    for key, label in (("reduce", "pooling"), ("dtype", "dtype")):
        if key in design:
            bits.append(f"{label} {design[key]}")
    if "block_s" in design:
        bits.append(f"blocks of {_num(design['block_s'])} s")
    if "min_coverage" in design:
        bits.append(f"min_coverage {_num(design['min_coverage'])}")
    if bits:
        lines.append(", ".join(bits))
    pre = design.get("preprocess")
    if pre:
        lines.append(f"preprocess: {steps_text(pre)}; pad {_num(pre['pad_s'])} s")
    return lines


def _run_line(runs: list) -> str:
    if not runs:
        return "none recorded"
    last = runs[-1]
    when = last.get("finished") or last.get("started") or "?"
    status = "" if last.get("finished") else " (not finished)"
    bits = []
    if "blocks_done" in last:
        bits.append(f"{last['blocks_done']} block(s) done")
    if last.get("blocks_no_data"):
        bits.append(f"{count(last['blocks_no_data'])} without data")
    if "blocks_failed" in last:
        bits.append(f"{count(last['blocks_failed'])} failed")
    if last.get("interrupted"):
        bits.append("interrupted")
    if "seconds" in last:
        bits.append(f"{last['seconds']:.1f} s")
    detail = f" ({', '.join(bits)})" if bits else ""
    return f"{len(runs)}, last {when}{status}{detail}"


def _input_lines(runs: list) -> list[str]:
    """The last run's refused stations and notes on its input (a station or channel without a
    readable file): problems that no block's ledger records."""
    last = runs[-1] if runs else {}
    lines = [f"refused {r.get('station', '?')}: {r.get('reason', '?')}" for r in last.get("refused") or []]
    lines += [f"note {n.get('channel', '?')}: {n.get('note', '?')}" for n in last.get("notes") or []]
    return [("input:      " if i == 0 else "            ") + line for i, line in enumerate(lines)]


def _stack_lines(runs: list) -> list[str]:
    """The software the recorded runs computed blocks with; a warning when there was more than one.

    Coefficients are bit-for-bit reproducible only under one stack (see
    :func:`scatflow.workflow.worker.software_stack`), so a store whose blocks came from
    several is no longer equal to one fresh run in its last bits.
    """
    seen: dict[str, list[int]] = {}
    for i, run in enumerate(runs, 1):
        for stack in run.get("stacks") or []:
            seen.setdefault(stack, []).append(i)
    if len(seen) <= 1:
        return [f"computed:   with {stack}" for stack in seen]
    lines = [f"computed:   with {len(seen)} software stacks: blocks from different ones may differ "
             "in their last bits"]
    for stack, ids in seen.items():
        lines.append(f"            {stack} ({'run' if len(ids) == 1 else 'runs'} {_ranges(ids)} of {len(runs)})")
    return lines


def _block_span(st: StationGroup, b: int) -> str:
    a, e = st.blocks.range(b)
    t0, t1 = st.span(a, e)
    return f"{_iso(t0)} .. {_iso(t1)}"


def _header_lines(st: StationGroup) -> list[str]:
    """Channels, sampling and frequencies of a station group."""
    attrs = st.attrs
    lines = [st.name, f"  channels:   {len(st.channels)} ({', '.join(st.channels)})"]
    timing = []
    if attrs.get("sampling_rate_hz") is not None:
        timing.append(f"{_num(attrs['sampling_rate_hz'])} Hz")
    if attrs.get("window_s") is not None:
        timing.append(f"window {_num(attrs['window_s'])} s")
    if attrs.get("hop_s") is not None:
        timing.append(f"hop {_num(attrs['hop_s'])} s")
    if attrs.get("reduce"):
        timing.append(f"pooling {attrs['reduce']}")
    lines.append(f"  sampling:   {', '.join(timing) or 'unknown'}")
    freqs = [f"{dim} {f.size} bands {f.min():.3g}-{f.max():.3g} Hz" for dim, f in st.frequencies().items() if f.size]
    if freqs:
        lines.append(f"  frequency:  {'; '.join(freqs)}")
    return lines


def _ledger_lines(st: StationGroup) -> list[str]:
    """Span, windows and the blocks' states of a station group with windows."""
    led = st.ledger
    states = {s: led.where(s) for s in (COMPLETE, FAILED, MISSING, CHANGED, NO_DATA, PENDING)}
    complete, failed, missing, pending = (states[s] for s in (COMPLETE, FAILED, MISSING, PENDING))
    lines = [f"  span:       {_iso(st.times[0])} .. {_iso(st.span(0, st.n)[1])}",
             f"  windows:    {st.n}",
             f"  blocks:     {len(complete)}/{led.blocks.count} complete ({led.blocks.chunk} windows per block)"]
    if failed:
        lines.append(f"  failed:     {len(failed)} block(s)")
        for b in failed[:_LIST_MAX]:
            reason = led.errors[b].strip().splitlines()[0] if led.errors[b].strip() else "?"
            lines.append(f"    block {b} ({_block_span(st, b)}): {reason}")
        if len(failed) > _LIST_MAX:
            lines.append(f"    ... and {len(failed) - _LIST_MAX} more: blocks {_ranges(failed[_LIST_MAX:])}")
    if missing:
        lines.append(f"  incomplete (data missing): block(s) {_ranges(missing)} marked done but their "
                     "chunk files are missing on disk")
    if states[CHANGED]:
        lines.append(f"  inputs changed: block(s) {_ranges(states[CHANGED])} (an input file grew or was "
                     "rewritten since they were computed: the next run recomputes them)")
    if states[NO_DATA]:
        spans = "; ".join(f"{_ranges(g)} ({_iso(st.span(*st.blocks.range(g[0]))[0])} .. "
                          f"{_iso(st.span(*st.blocks.range(g[-1]))[1])})" for g in consecutive(states[NO_DATA]))
        lines.append(f"  no data:    block(s) {spans} (an outage: retried by later runs)")
    if pending:
        lines.append(f"  not done:   block(s) {_ranges(pending)}")
    for key, what in (("conflicting", "samples where overlapping traces disagree"),
                      ("nonfinite", "NaN or infinite samples")):
        counts = {b: led.note(b, key) for b in range(led.blocks.count) if led.note(b, key)}
        if counts:
            # Per block, over its read span: a window straddling two blocks counts in both, so no sum.
            lines.append(f"  not recorded: {what} (counted as gaps) in block(s) {_ranges(counts)}, "
                         f"up to {max(counts.values())} in one block")
    noted = {b: led.note(b, "preprocess", []) for b in range(led.blocks.count) if led.note(b, "preprocess", [])}
    if noted:
        lines.append(f"  preprocessing notes: block(s) {_ranges(noted)} (first: {noted[min(noted)][0]})")
    changes = {b: led.note(b, "other_rates", []) for b in range(led.blocks.count) if led.note(b, "other_rates", [])}
    if changes:
        first = changes[min(changes)][0]
        lines.append(f"  rate change: block(s) {_ranges(changes)} hold samples at another rate, not used "
                     f"(first: {first})")
    return lines


def _recorded_lines(st: StationGroup) -> list[str]:
    """When each channel starts and ends: its first window with data to the end of its last."""
    width = max(len(c) for c in st.channels)
    lines = []
    for i, (ch, span) in enumerate(st.recorded().items()):
        when = "no data" if span is None else f"{_iso(st.span(span[0], span[0] + 1)[0])} .. " \
            f"{_iso(st.span(span[1], span[1] + 1)[1])}"
        lines.append(f"  {'recorded:' if i == 0 else '':<10}  {ch:<{width}} {when}")
    return lines


def _coverage_lines(st: StationGroup, complete: list[int]) -> list[str]:
    """Mean coverage and NaN fraction per channel, over the windows of complete blocks, from the
    ledger's per-block summaries (no coefficient is read). A channel a block's summary lacks (it
    joined the station later) counts as coverage 0 and NaN in every window of that block."""
    led = st.ledger
    n_ch = len(st.channels)
    cov_sum = np.zeros(n_ch)
    nan_count = np.zeros(n_ch, dtype=np.int64)
    nan_any = total = 0
    for b in complete:
        windows = led.blocks.expected(b)
        summary = led.summary[b]
        cov, nan = summary.get("coverage", {}), summary.get("nan", {})
        for i, ch in enumerate(st.channels):
            cov_sum[i] += float(cov.get(ch, 0.0)) * windows
            nan_count[i] += int(nan.get(ch, windows))
        nan_any += int(summary.get("nan_any", windows))
        total += windows
    width = max(len(c) for c in st.channels)
    lines = [f"  {'channel':<{width}}  {'mean coverage':>13}  {'NaN windows':>11}   (over complete blocks)"]
    for i, ch in enumerate(st.channels):
        lines.append(f"  {ch:<{width}}  {cov_sum[i] / total:>13.4f}  {100 * nan_count[i] / total:>10.2f}%")
    lines.append(f"  windows with NaN coefficients on any channel: {nan_any}/{total} ({100 * nan_any / total:.2f}%)")
    return lines


def _group_lines(reader: StoreReader, name: str) -> list[str]:
    absent = reader.missing_arrays(name)
    if absent:
        return [name, f"  not a scatflow station group (missing {', '.join(absent)})"]
    st = reader.station(name)
    lines = _header_lines(st)
    if st.n == 0:
        return lines + ["  span:       no windows"]
    lines += _ledger_lines(st)
    lines += _recorded_lines(st)
    complete = st.ledger.where(COMPLETE)
    if complete:
        lines += _coverage_lines(st, complete)
    return lines


def store_report(path) -> str:
    """The text of ``scatflow info STORE``.

    Parameters
    ----------
    path : str or PathLike
        The store directory.

    Returns
    -------
    str
        Store path, scatflow version, design and runs, then for each station group:
        channels, sampling, frequencies, span (first window start .. last window end),
        windows, blocks complete/total, failed blocks with reasons, blocks marked done whose
        data is missing, and per channel the mean coverage and the fraction of windows with
        NaN coefficients (over complete blocks).

    Raises
    ------
    StoreError
        One line, if ``path`` is not a scatflow store.
    """
    reader = StoreReader(path)
    meta = reader.meta
    versions = meta.get("versions") or {}
    others = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "scatflow")
    lines = [f"store:      {reader.path if is_url(reader.path) else os.path.abspath(reader.path)}",
             f"scatflow:   {versions.get('scatflow', '?')}" + (f" ({others})" if others else "")]
    for i, line in enumerate(_design_lines(meta.get("design") or {})):
        lines.append(("design:     " if i == 0 else "            ") + line)
    lines.append(f"runs:       {_run_line(meta.get('runs') or [])}")
    lines.extend(_input_lines(meta.get("runs") or []))
    lines.extend(_stack_lines(meta.get("runs") or []))
    groups = reader.stations
    lines.append(f"stations:   {len(groups)}" + (f" ({', '.join(groups)})" if groups else ""))
    if not is_url(reader.path) and os.path.isdir(work_dir(reader.path)):
        lines.append(f"            {work_dir(reader.path)}: a run is adding a channel to a station, or was stopped "
                     "while it did; the next run finishes it (until then a station may be missing here)")
    for name in reader.analysis_names():
        lines.append(("analyses:   " if name == reader.analysis_names()[0] else "            ")
                     + _analysis_line(reader, name))
    for name in groups:
        lines.append("")
        lines.extend(_group_lines(reader, name))
    return "\n".join(lines)


def _analysis_line(reader: StoreReader, name: str) -> str:
    """``NAME: joint model, C components, K clusters, fitted T on N windows (EV %); stations ...``."""
    attrs = reader.analysis_attrs(name) or {}
    cfg = attrs.get("config") or {}
    models = attrs.get("models") or {}
    fits = ", ".join(f"{key + ' ' if key else ''}fitted {m.get('fitted', '?')} on {m.get('sample', '?')} windows "
                     f"(explained variance {100 * float(m.get('explained_variance', float('nan'))):.1f} %)"
                     for key, m in sorted(models.items()))
    stations = reader.analysis_stations(name)
    return (f"{name}: {'joint model' if cfg.get('joint', True) else 'one model per station'}, "
            f"{cfg.get('components', '?')} components, {cfg.get('clusters', '?')} clusters; {fits}; "
            f"stations {', '.join(stations) or 'none'}")


__all__ = ["store_report", "missing_blocks"]
