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


def tree_rss_mb(root: int) -> dict[int, float]:
    """Resident memory (MB) of process ``root`` and each of its descendants, by pid."""
    kids = _children_map()
    out, stack = {}, [root]
    while stack:
        pid = stack.pop()
        stack.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1]) / 1024
                        break
        except OSError:
            pass
    return out


class TreeRun:
    """A finished command: wall time, peak of the whole tree, per-process peaks, output."""

    def __init__(self, seconds, peak_total, peak_by_pid, root, output):
        self.seconds = seconds
        self.peak_total = peak_total
        self.peak_by_pid = peak_by_pid
        self.root = root
        self.output = output

    @property
    def peak_largest_child(self) -> float:
        """Largest per-process peak among descendants (the busiest worker), MB."""
        return max((v for k, v in self.peak_by_pid.items() if k != self.root), default=0.0)


def run_tree(cmd: list[str], interval: float = 0.1, **kwargs) -> TreeRun:
    """Run ``cmd`` while sampling the resident memory of its whole process tree."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    peak, by_pid = 0.0, {}
    while proc.poll() is None:
        sample = tree_rss_mb(proc.pid)
        peak = max(peak, sum(sample.values()))
        for pid, mb in sample.items():
            by_pid[pid] = max(by_pid.get(pid, 0.0), mb)
        time.sleep(interval)
    out = proc.stdout.read()
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{out}")
    return TreeRun(elapsed, peak, by_pid, proc.pid, out)


def environment() -> str:
    """One line naming what the figures depend on: processor, NumPy and SciPy, NumPy's SIMD level.

    NumPy selects its median (``partition``) with AVX2 or AVX-512 code from
    2.0 on; without them it runs a scalar select several times slower,
    which is then the kernel's largest stage (see docs/architecture.md).
    """
    import platform

    from scatflow.scattering.kernel import numerics, simd_targets

    cpu = platform.processor() or "unknown processor"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    used = " ".join(simd_targets()) or "baseline only"
    off = os.environ.get("NPY_DISABLE_CPU_FEATURES", "").strip()
    line = numerics()
    select = ("vectorised" if line.endswith("x86-64 AVX2") else
              "SCALAR (slow: see docs/architecture.md)" if line.endswith("x86-64 baseline") else "not classified")
    return (f"{cpu}, {os.cpu_count()} CPUs; {line} (NumPy SIMD targets in use: {used}"
            f"{'; disabled: ' + off if off else ''}); median selection {select}")
