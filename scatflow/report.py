"""What ``scatflow info STORE`` prints, and the ledger checks the workflow reuses.

Reads only small arrays (coordinates, the per-block ledger, ``coverage``) and
``order_1`` block by block; ``order_2`` is never read. Every open bypasses
consolidated metadata (``use_consolidated=False``), which may be stale or absent.

A block is *complete* when its ledger entry ``block_done`` equals the number of
windows the block holds (block ``b`` of chunk ``W`` covers windows
``[b*W, min((b+1)*W, n))``) and its data chunk files are on disk. A block marked
done whose files were deleted by hand is reported as "incomplete (data missing)";
:func:`missing_blocks` lists those blocks so a run can recompute them.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import zarr

from .store import Store, StoreError

#: Arrays every scatflow station group holds.
REQUIRED = ("time", "channel", "coverage", "order_1", "block_done")
#: Largest number of order_1 values read at once for the NaN fraction (bounded memory).
_READ_ELEMENTS = 8_000_000
#: Blocks listed one by one before the list is cut short.
_LIST_MAX = 8


# -- opening ----------------------------------------------------------------------------------
def _open_root(path) -> tuple[zarr.Group, dict]:
    """The root group and its ``scatflow`` attribute, or StoreError naming the path."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such store (the path does not exist)")
    if not os.path.isdir(path):
        raise StoreError(f"{path}: not a scatflow store (a file, not a Zarr directory)")
    if not os.path.isfile(os.path.join(path, "zarr.json")):
        hint = " (a Zarr v2 store?)" if os.path.isfile(os.path.join(path, ".zgroup")) else ""
        raise StoreError(f"{path}: not a scatflow store (no zarr.json){hint}")
    try:
        root = zarr.open_group(path, mode="r", use_consolidated=False)
        attrs = root.attrs.get("scatflow")
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a usable store"
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StoreError(f"{path}: not a scatflow store ({type(exc).__name__}: {why})") from exc
    if not isinstance(attrs, dict) or "design" not in attrs:
        parent = os.path.dirname(os.path.normpath(path))
        if parent and os.path.isfile(os.path.join(parent, "zarr.json")):
            raise StoreError(f"{path}: not a scatflow store (a group inside a store? give the store directory)")
        raise StoreError(f"{path}: a Zarr store not written by scatflow (no 'scatflow' root attribute)")
    return root, attrs


def _station_group(root: zarr.Group, path: str, group: str) -> zarr.Group:
    names = sorted(name for name, _ in root.groups())
    if group not in names:
        raise StoreError(f"{path}: no station group {group!r}; the store has: {', '.join(names) or 'none'}")
    g = root[group]
    absent = [a for a in REQUIRED if a not in g]
    if absent:
        raise StoreError(f"{path}: group {group!r} is not a scatflow station group (missing {', '.join(absent)})")
    return g


# -- the ledger -----------------------------------------------------------------------------
def _decode_times(arr: zarr.Array) -> np.ndarray:
    raw = np.asarray(arr[:])
    units = arr.attrs.get("units", "")
    if raw.dtype.kind == "M":
        return raw.astype("datetime64[ns]")
    if units.strip() == "nanoseconds since 1970-01-01":
        return raw.astype("int64").astype("datetime64[ns]")
    from xarray.coding.times import decode_cf_datetime

    return np.asarray(decode_cf_datetime(raw, units, arr.attrs.get("calendar", "proleptic_gregorian")),
                      dtype="datetime64[ns]")


class _Ledger:
    """One station group's blocks: expected windows, ledger entries and on-disk state."""

    def __init__(self, store_path: str, group: str, g: zarr.Group):
        self.store_path, self.group, self.g = store_path, group, g
        self.n = int(g["time"].shape[0])
        cov = g["coverage"]
        self.W = int(g.attrs.get("block_windows") or cov.chunks[0])
        self.n_blocks = -(-self.n // self.W) if self.n else 0
        done = np.asarray(g["block_done"][:]).astype(np.int64)
        errors = [str(e) for e in g["block_error"][:]] if "block_error" in g else [""] * len(done)
        # The ledger may lag the time axis (an extension in progress): absent entries are "not done".
        self.done = np.zeros(self.n_blocks, dtype=np.int64)
        self.done[: min(len(done), self.n_blocks)] = done[: self.n_blocks]
        self.errors = (errors + [""] * self.n_blocks)[: self.n_blocks]
        starts = np.arange(self.n_blocks) * self.W
        self.expected = np.minimum(starts + self.W, self.n) - starts
        self.missing = self._missing()
        missing = set(self.missing)
        self.complete = [b for b in range(self.n_blocks)
                         if self.done[b] == self.expected[b] and self.done[b] > 0 and b not in missing]
        self.failed = [b for b in range(self.n_blocks) if self.errors[b] and self.done[b] == 0]
        settled = set(self.complete) | missing | set(self.failed)
        self.pending = [b for b in range(self.n_blocks) if b not in settled]

    def _missing(self) -> list[int]:
        """Blocks marked done whose chunk files are gone (see :meth:`Store.blocks_missing_data`)."""
        min_coverage = float(self.g.attrs.get("min_coverage", 1.0))
        done = [int(b) for b in np.flatnonzero(self.done > 0)]
        return Store(self.store_path).blocks_missing_data(self.group, done, min_coverage)

    def window_slices(self, blocks) -> list[slice]:
        """Contiguous window ranges covering ``blocks``, each at most ``_READ_ELEMENTS`` of order_1."""
        per_window = int(np.prod(self.g["order_1"].shape[1:])) or 1
        max_windows = max(self.W, (_READ_ELEMENTS // per_window) // self.W * self.W)
        out = []
        for b in sorted(blocks):
            a, e = b * self.W, b * self.W + int(self.expected[b])
            if out and out[-1].stop == a and (e - out[-1].start) <= max_windows:
                out[-1] = slice(out[-1].start, e)
            else:
                out.append(slice(a, e))
        return out


def missing_blocks(path, group: str) -> list[int]:
    """Blocks of station ``group`` marked done in the ledger whose data chunk files are missing.

    Parameters
    ----------
    path : str or PathLike
        The store directory.
    group : str
        Station group ``NET.STA.LOC``.

    Returns
    -------
    list of int
        Block indices, ascending; recompute them (reset their ``block_done`` to 0 first).

    Raises
    ------
    StoreError
        If ``path`` is not a scatflow store or has no such station group.
    """
    path = os.fspath(path)
    root, _ = _open_root(path)
    g = _station_group(root, path, group)
    return list(_Ledger(path, group, g).missing)


# -- formatting ---------------------------------------------------------------------------
def _iso(t) -> str:
    s = np.datetime_as_string(np.datetime64(t, "ns"), unit="ms")
    s = s[:-4] if s.endswith(".000") else s
    return s + "Z"


def _num(x) -> str:
    return f"{x:g}"


def _ranges(blocks) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    blocks = sorted(blocks)
    parts = []
    for _, grp in itertools.groupby(enumerate(blocks), key=lambda p: p[1] - p[0]):
        run = [b for _, b in grp]
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(parts)


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
    if "blocks_failed" in last:
        bits.append(f"{len(last['blocks_failed'])} failed")
    if "seconds" in last:
        bits.append(f"{last['seconds']:.1f} s")
    detail = f" ({', '.join(bits)})" if bits else ""
    return f"{len(runs)}, last {when}{status}{detail}"


def _block_span(led: _Ledger, times: np.ndarray, window_s: float | None, b: int) -> str:
    a = b * led.W
    e = a + int(led.expected[b]) - 1
    end = times[e] + np.timedelta64(int(round((window_s or 0) * 1e9)), "ns")
    return f"{_iso(times[a])} .. {_iso(end)}"


def _group_lines(path: str, name: str, g: zarr.Group) -> list[str]:
    absent = [a for a in REQUIRED if a not in g]
    if absent:
        return [name, f"  not a scatflow station group (missing {', '.join(absent)})"]
    attrs = dict(g.attrs)
    led = _Ledger(path, name, g)
    channels = [str(c) for c in g["channel"][:]]
    times = _decode_times(g["time"])
    window_s, hop_s = attrs.get("window_s"), attrs.get("hop_s")
    rate = attrs.get("sampling_rate_hz")
    lines = [name]
    lines.append(f"  channels:   {len(channels)} ({', '.join(channels)})")
    timing = []
    if rate is not None:
        timing.append(f"{_num(rate)} Hz")
    if window_s is not None:
        timing.append(f"window {_num(window_s)} s")
    if hop_s is not None:
        timing.append(f"hop {_num(hop_s)} s")
    if attrs.get("reduce"):
        timing.append(f"pooling {attrs['reduce']}")
    lines.append(f"  sampling:   {', '.join(timing) or 'unknown'}")
    freqs = []
    for dim in sorted(k for k in g.array_keys() if k.startswith("f") and k[1:].isdigit()):
        f = np.asarray(g[dim][:], dtype=float)
        if f.size:
            freqs.append(f"{dim} {f.size} bands {f.min():.3g}-{f.max():.3g} Hz")
    if freqs:
        lines.append(f"  frequency:  {'; '.join(freqs)}")
    if led.n == 0:
        lines.append("  span:       no windows")
        return lines
    end = times[-1] + np.timedelta64(int(round((window_s or 0) * 1e9)), "ns")
    lines.append(f"  span:       {_iso(times[0])} .. {_iso(end)}")
    lines.append(f"  windows:    {led.n}")
    lines.append(f"  blocks:     {len(led.complete)}/{led.n_blocks} complete ({led.W} windows per block)")
    if led.failed:
        lines.append(f"  failed:     {len(led.failed)} block(s)")
        for b in led.failed[:_LIST_MAX]:
            reason = led.errors[b].strip().splitlines()[0] if led.errors[b].strip() else "?"
            lines.append(f"    block {b} ({_block_span(led, times, window_s, b)}): {reason}")
        if len(led.failed) > _LIST_MAX:
            lines.append(f"    ... and {len(led.failed) - _LIST_MAX} more: blocks {_ranges(led.failed[_LIST_MAX:])}")
    if led.missing:
        lines.append(f"  incomplete (data missing): block(s) {_ranges(led.missing)} marked done but their "
                     "chunk files are missing on disk")
    if led.pending:
        lines.append(f"  not done:   block(s) {_ranges(led.pending)}")

    # Coverage and NaN fraction per channel, over the windows of complete blocks.
    if led.complete:
        cov_arr, o1 = g["coverage"], g["order_1"]
        n_ch = len(channels)
        cov_sum = np.zeros(n_ch)
        nan_count = np.zeros(n_ch, dtype=np.int64)
        nan_any = 0
        total = 0
        for sl in led.window_slices(led.complete):
            cov = np.asarray(cov_arr[sl], dtype=np.float64)
            cov_sum += np.nansum(cov, axis=0)
            o = np.asarray(o1[sl])
            bad = np.isnan(o.reshape(o.shape[0], o.shape[1], -1)).any(axis=2)  # (windows, channels)
            nan_count += bad.sum(axis=0)
            nan_any += int(bad.any(axis=1).sum())
            total += o.shape[0]
        width = max(len(c) for c in channels)
        lines.append(f"  {'channel':<{width}}  {'mean coverage':>13}  {'NaN windows':>11}   (over complete blocks)")
        for i, ch in enumerate(channels):
            lines.append(f"  {ch:<{width}}  {cov_sum[i] / total:>13.4f}  {100 * nan_count[i] / total:>10.2f}%")
        share = 100 * nan_any / total
        lines.append(f"  windows with NaN coefficients on any channel: {nan_any}/{total} ({share:.2f}%)")
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
    path = os.fspath(path)
    root, meta = _open_root(path)
    versions = meta.get("versions") or {}
    version = versions.get("scatflow", "?")
    others = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "scatflow")
    lines = [f"store:      {os.path.abspath(path)}",
             f"scatflow:   {version}" + (f" ({others})" if others else "")]
    design = meta.get("design") or {}
    for i, line in enumerate(_design_lines(design)):
        lines.append(("design:     " if i == 0 else "            ") + line)
    lines.append(f"runs:       {_run_line(meta.get('runs') or [])}")
    groups = sorted(name for name, _ in root.groups())
    lines.append(f"stations:   {len(groups)}" + (f" ({', '.join(groups)})" if groups else ""))
    for name in groups:
        lines.append("")
        lines.extend(_group_lines(path, name, root[name]))
    return "\n".join(lines)


__all__ = ["store_report", "missing_blocks"]
