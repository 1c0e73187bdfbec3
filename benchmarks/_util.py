"""Helpers shared by the hand-run benchmarks (timing and peak-memory probes)."""

from __future__ import annotations

import os
import statistics
import time


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    return _status_kb("VmRSS") / 1024


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``); False when not permitted."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak resident set size since the last :func:`reset_peak`, in MB."""
    return _status_kb("VmHWM") / 1024


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(fn):
    """Run ``fn()`` once; return (seconds, extra peak RSS in MB above the RSS before)."""
    reset_peak()
    base = rss_mb()
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    return elapsed, peak_mb() - base


def median(values):
    return statistics.median(values)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def tree_rss_mb(root: int) -> float:
    """Resident memory of process ``root`` and all its descendants, in MB."""
    kids = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


def run_tree(cmd: list[str], interval: float = 0.1, **kwargs) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak MB of its whole process tree, stdout+stderr)."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(interval)
    out = proc.stdout.read()
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{out}")
    return elapsed, peak, out
