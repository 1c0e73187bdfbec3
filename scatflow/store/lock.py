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

from ..errors import StoreError
from ..location import Url, is_url, options_of

#: A lock not refreshed for this long (seconds) is stale even if its host cannot be asked.
STALE_S = 600
#: Seconds between refreshes of the lock file's mtime by its owner.
HEARTBEAT_S = 30
#: An unreadable lock younger than this (seconds) is being written right now: not stale.
UNREADABLE_GRACE_S = 5


def lock_path(store_path: str | os.PathLike) -> str:
    """The lock file of the store at ``store_path``: ``STORE.lock`` beside it (an object
    ``STORE.lock`` beside a store on an object store)."""
    if is_url(store_path):
        return Url(str(store_path).rstrip("/") + ".lock", options_of(store_path))
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
    return _stale_at(holder, age)


def _stale_at(holder: dict, age_s: float) -> bool:
    """:func:`is_stale` for this host, asking the holder's pid when it runs here."""
    alive = _pid_alive(holder.get("pid")) if holder.get("host") == socket.gethostname() else None
    return is_stale(holder, age_s, socket.gethostname(), alive)


def _stale_object(holder: dict, age_s: float) -> bool:
    """The staleness rule of a lock object (its age from its ``LastModified``): as for a file,
    except that an unreadable object is not one being written (a PUT is whole): only age tells."""
    return age_s > STALE_S if not holder else _stale_at(holder, age_s)


def _held(store_path, path: str, holder: dict, command: str) -> StoreError:
    cmd = holder.get("command", "run")  # locks written before the command was recorded: runs
    who = f"another scatflow {cmd}" if cmd == command else f"scatflow {cmd}"
    return StoreError(
        f"{os.fspath(store_path)} is being written by {who} (host {holder.get('host')}, pid {holder.get('pid')}, "
        f"since {holder.get('started')}); try again when it has finished; if that process is dead, delete {path}"
        + (f" (or wait {STALE_S} s: a lock its holder stops refreshing goes stale)" if is_url(path) else ""))


def check_free(store_path: str | os.PathLike, command: str = "run") -> None:
    """Refuse, before anything starts, a store whose writer lock a live process holds.

    Parameters
    ----------
    store_path : str or PathLike
    command : str
        The scatflow command asking (``run``, ``analyze``), for the message.

    Raises
    ------
    StoreError
        Naming the holder's command, host and pid.
    """
    path = lock_path(store_path)
    if is_url(path):
        from . import objlock

        holder = objlock.holder_if_live(path, _stale_object)
        if holder is not None:
            raise _held(store_path, path, holder, command)
        return
    if os.path.exists(path):
        holder = read_holder(path)
        if not _stale(path, holder):
            raise _held(store_path, path, holder, command)


@contextlib.contextmanager
def writer_lock(store_path: str | os.PathLike, command: str = "run"):
    """Hold the store's writer lock for the duration of the ``with`` block.

    Parameters
    ----------
    store_path : str or PathLike
    command : str
        The scatflow command holding it (``run``, ``analyze``), recorded for others' messages.

    Raises
    ------
    StoreError
        Another live process holds it (naming its command, host and pid).
    """
    path = lock_path(store_path)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": now_iso(), "command": command}
    if is_url(path):
        from . import objlock

        with objlock.hold(path, me, _stale_object, HEARTBEAT_S, lambda h: _held(store_path, path, h, command)):
            yield
        return
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(path)
            if not _stale(path, holder):
                raise _held(store_path, path, holder, command) from None
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
