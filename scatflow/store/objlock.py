"""The writer lock of a store on an object store: an object ``STORE.lock`` beside the store.

An object store has no ``O_EXCL`` and no mtime to touch, but it has conditional writes:

- taking the lock is a create-only PUT (``If-None-Match: *``): of two runs started at once,
  the server lets exactly one create it;
- the holder's heartbeat rewrites it every :data:`~scatflow.store.lock.HEARTBEAT_S` seconds
  with a PUT conditional on the version it wrote last (``If-Match: ETag``), so the object's
  ``LastModified`` says when its holder was last alive;
- a lock not rewritten for :data:`~scatflow.store.lock.STALE_S` seconds, or whose holder's
  pid is gone from this host, is stale; taking it over is a PUT conditional on the stale
  version's ETag, so of two takers one wins;
- releasing reads the lock and deletes it if it still holds this run's token.

The holder is named as for the file lock (host, pid, start, command); a pid on another host
cannot be asked, so only age makes such a lock stale. A run that cannot reach the server when
it ends leaves its lock behind: a rerun on the same host takes it over at once (its pid is
gone), one on another host after :data:`~scatflow.store.lock.STALE_S`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid

from .. import location
from ..errors import StoreError


def _precondition_failed(exc: BaseException) -> bool:
    """Whether an s3fs error is the server refusing a conditional write (HTTP 412)."""
    text = f"{exc} {exc.__cause__!r}"
    return "PreconditionFailed" in text or "pre-conditions" in text or "412" in text


def read(path) -> tuple[dict, str | None, float | None]:
    """The lock object's content, ETag and age in seconds (``({}, None, None)`` when absent)."""
    fs = location.filesystem(path)
    key = location._key(path)
    try:
        info = fs.info(key, refresh=True)
        body = fs.cat_file(key)
    except FileNotFoundError:
        return {}, None, None
    try:
        holder = json.loads(body)
    except ValueError:
        holder = {}
    modified = info.get("LastModified")
    age = time.time() - modified.timestamp() if modified is not None else None
    return holder if isinstance(holder, dict) else {}, info.get("ETag"), age


def _put(path, doc: dict, **condition) -> str:
    """PUT the lock document under ``condition`` (``mode="create"`` or ``IfMatch=ETag``); its new ETag."""
    fs = location.filesystem(path)
    key = location._key(path)
    fs.pipe_file(key, json.dumps(doc).encode(), **condition)
    return fs.info(key, refresh=True)["ETag"]


def holder_if_live(path, stale) -> dict | None:
    """The holder of a live lock at ``path``, or None when there is none or it is stale
    (``stale(holder, age_s)`` decides, as for the file lock)."""
    holder, etag, age = read(path)
    if etag is None:
        return None
    return None if stale(holder, age if age is not None else 0.0) else holder


@contextlib.contextmanager
def hold(path, me: dict, stale, heartbeat_s: float, held):
    """Hold the lock object ``path`` for the ``with`` block (see the module's docstring).

    Parameters
    ----------
    path : scatflow.location.Url
        The lock object.
    me : dict
        This run's holder record (host, pid, started, command).
    stale : callable
        ``stale(holder, age_s) -> bool``: whether a lock may be taken over (a holder on this
        host whose pid is gone, or one not refreshed for long: the file lock's rule).
    heartbeat_s : float
        Seconds between refreshes.
    held : callable
        ``held(holder) -> StoreError`` for a lock a live run holds.
    """
    me = dict(me, token=uuid.uuid4().hex)
    etag = None
    for _ in range(3):
        try:
            etag = _put(path, me, mode="create")
            break
        except OSError as exc:
            if not _precondition_failed(exc):
                raise location.unreachable(path, exc) from exc
        holder, stale_etag, age = read(path)
        if stale_etag is None:
            continue  # released in between: try to create it again
        if not stale(holder, age if age is not None else 0.0):
            raise held(holder)
        try:
            etag = _put(path, me, IfMatch=stale_etag)
            break
        except OSError as exc:
            if not _precondition_failed(exc):
                raise location.unreachable(path, exc) from exc
            # another run took it over first: look again
    if etag is None:
        raise StoreError(f"could not take the writer lock {path}")
    stop = threading.Event()
    state = {"etag": etag}

    def heartbeat():
        while not stop.wait(heartbeat_s):
            with contextlib.suppress(Exception):  # a missed beat only ages the lock
                state["etag"] = _put(path, dict(me, beat=time.time()), IfMatch=state["etag"])

    threading.Thread(target=heartbeat, name="scatflow-lock-heartbeat", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):  # an unreachable server leaves a lock that goes stale
            holder, _, _ = read(path)
            if holder.get("token") == me["token"]:
                location.filesystem(path).rm_file(location._key(path))

