"""The writer lock: one ``scatflow run`` at a time per store.

A file ``STORE.lock`` beside the store, created with ``O_EXCL``, holds the
owner's host, pid and start time; a heartbeat thread refreshes its mtime. A
lock whose process is gone (same host), or not refreshed for
:data:`STALE_S` seconds (another host, which cannot be asked), is stale and
taken over; ``O_EXCL`` settles a race between two takers.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

from .errors import StoreError

#: A lock not refreshed for this long (seconds) is stale even if its host cannot be asked.
STALE_S = 600
#: Seconds between refreshes of the lock file's mtime by its owner.
HEARTBEAT_S = 30
#: An unreadable lock younger than this (seconds) is being written right now: not stale.
UNREADABLE_GRACE_S = 5


def lock_path(store_path: str | os.PathLike) -> str:
    """The lock file of the store at ``store_path``: ``STORE.lock`` beside it."""
    return os.path.abspath(os.fspath(store_path)).rstrip(os.sep) + ".lock"


def now_iso() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def is_stale(holder: dict, age_s: float, host: str, alive: bool | None) -> bool:
    """Whether a lock may be taken over.

    Parameters
    ----------
    holder : dict
        The lock file's content (``host``, ``pid``); empty when unreadable.
    age_s : float
        Seconds since the lock file was last refreshed.
    host : str
        This machine's host name.
    alive : bool or None
        Whether the holder's pid runs on this host (None: cannot be told).
    """
    if not holder:  # a writer killed mid-write, or one writing right now
        return age_s > UNREADABLE_GRACE_S
    if holder.get("host") == host:
        return alive is False
    return age_s > STALE_S


def _pid_alive(pid) -> bool | None:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return None  # exists but not ours, or not a pid
    return True


def read_holder(path: str) -> dict:
    """The content of lock file ``path`` ({} when absent or unreadable)."""
    try:
        with open(path) as fh:
            holder = json.load(fh)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _stale(path: str, holder: dict) -> bool:
    try:
        age = time.time() - os.path.getmtime(path)
    except FileNotFoundError:
        return True
    alive = _pid_alive(holder.get("pid")) if holder.get("host") == socket.gethostname() else None
    return is_stale(holder, age, socket.gethostname(), alive)


@contextlib.contextmanager
def writer_lock(store_path: str | os.PathLike):
    """Hold the store's writer lock for the duration of the ``with`` block.

    Raises
    ------
    StoreError
        Another live run holds it (naming its host and pid).
    """
    path = lock_path(store_path)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": now_iso()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(path)
            if not _stale(path, holder):
                raise StoreError(
                    f"{os.fspath(store_path)} is being written by another scatflow run (host {holder.get('host')}, "
                    f"pid {holder.get('pid')}, since {holder.get('started')}); if that run is dead, delete {path}"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    else:
        raise StoreError(f"{os.fspath(store_path)}: could not take the writer lock {path}")
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(path)

    threading.Thread(target=heartbeat, name="scatflow-lock-heartbeat", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        if read_holder(path).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
