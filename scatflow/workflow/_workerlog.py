"""Worker preload: keep distributed's shutdown races and Ctrl-C out of the user's terminal, and
import what a block needs while the driver plans.

A Ctrl-C in the terminal reaches every process of the foreground group, local
workers included, which would each print a KeyboardInterrupt traceback; the
driver alone handles it (stops feeding tasks, records the run, closes the
cluster), so workers ignore SIGINT.

When a local cluster closes, a worker stops its periodic callbacks and then closes
its connection pool; a heartbeat already in flight then fails and ``distributed``
logs it at ERROR with a full traceback (dask/distributed#7105). The run itself is
over and nothing is lost, but the CLI promises one line on stderr per error.
This filter drops ``distributed.*`` records below CRITICAL emitted by a worker that
is already closing; everything a running worker logs still reaches stderr.

A worker's first block would otherwise begin with about a second of imports
(ObsPy, SciPy, Zarr, xarray: ``scatflow.workflow.worker``), after the driver has
planned; a background thread makes them while the driver plans and prepares the
store (Python's import lock makes a task that arrives early wait for them).
Preprocessing's own modules are left to the first block that needs them:
importing them too added about 80 MB to every worker, preprocessing or not, and
made the runs slower (benchmarks/profile.py).
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading

CLOSING = ("closing", "closed")


class ClosingNoise(logging.Filter):
    """Drop ``distributed`` log records below CRITICAL once ``worker`` is closing."""

    def __init__(self, worker):
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("distributed") or record.levelno >= logging.CRITICAL:
            return True
        return self.worker.status.name not in CLOSING


def dask_setup(worker) -> None:
    """Called by ``distributed`` in each worker process (``preload``)."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the process's main thread: leave it
        pass
    noise = ClosingNoise(worker)
    for handler in logging.getLogger("distributed").handlers + logging.getLogger().handlers:
        if not any(isinstance(f, ClosingNoise) for f in handler.filters):
            handler.addFilter(noise)
    threading.Thread(target=importlib.import_module, args=("scatflow.workflow.worker",), daemon=True,
                     name="scatflow-imports").start()
