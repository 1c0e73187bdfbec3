"""Counting the requests a results store receives, and the files it is made of.

Every Zarr open of a results store goes through ``scatflow.store.access.zarr_store``;
:func:`counting` installs :class:`CountingStore` there, so each request of this
process is counted by kind. What a kind costs on an object store: ``get`` and
``set`` one GET/PUT each, ``exists`` a HEAD, ``list`` one LIST per 1000 keys at
least (counted once per call here), ``delete`` one DELETE (``delete_dir`` a LIST
and DELETEs: counted once).
"""

from __future__ import annotations

import contextlib
import os
import threading

import zarr

KINDS = ("get", "set", "delete", "exists", "list")

_lock = threading.Lock()
_counts = dict.fromkeys(KINDS, 0)


def _add(kind: str, n: int = 1) -> None:
    with _lock:
        _counts[kind] += n


def snapshot() -> dict:
    """The counts so far, by kind (a copy)."""
    with _lock:
        return dict(_counts)


def since(before: dict) -> dict:
    """Requests counted since ``before`` (a :func:`snapshot`), by kind, plus ``total``."""
    now = snapshot()
    out = {k: now[k] - before[k] for k in KINDS}
    out["total"] = sum(out.values())
    return out


class CountingStore(zarr.storage.WrapperStore):
    """A Zarr store that counts each request it passes to the wrapped store, by kind."""

    async def get(self, key, prototype, byte_range=None):
        _add("get")
        return await self._store.get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        _add("get", len(key_ranges))
        return await self._store.get_partial_values(prototype, key_ranges)

    async def _get_many(self, requests):
        # The wrapped store's own _get_many would call its get(), not ours.
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def exists(self, key):
        _add("exists")
        return await self._store.exists(key)

    async def set(self, key, value):
        _add("set")
        await self._store.set(key, value)

    async def set_if_not_exists(self, key, value):
        _add("set")
        return await self._store.set_if_not_exists(key, value)

    async def _set_many(self, values):
        for key, value in values:
            await self.set(key, value)

    async def delete(self, key):
        _add("delete")
        await self._store.delete(key)

    async def delete_dir(self, prefix):
        _add("delete")
        return await self._store.delete_dir(prefix)

    async def clear(self):
        _add("delete")
        return await self._store.clear()

    async def is_empty(self, prefix):
        _add("list")
        return await self._store.is_empty(prefix)

    def list(self):
        _add("list")
        return self._store.list()

    def list_prefix(self, prefix):
        _add("list")
        return self._store.list_prefix(prefix)

    def list_dir(self, prefix):
        _add("list")
        return self._store.list_dir(prefix)


@contextlib.contextmanager
def counting():
    """Count the requests of every results store opened in this process while inside."""
    from scatflow.store.access import set_wrapper

    set_wrapper(CountingStore)
    try:
        yield
    finally:
        set_wrapper(None)


def tree_size(path) -> tuple[int, int]:
    """Files and directories under ``path`` (the root itself not counted)."""
    files = dirs = 0
    for _, dnames, fnames in os.walk(path):
        files += len(fnames)
        dirs += len(dnames)
    return files, dirs
