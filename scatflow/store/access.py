"""The one place where scatflow turns a store location into a Zarr store object.

Every Zarr or xarray open of a results store goes through :func:`zarr_store`, so
that what a store sees (requests, their count) is decided here: the nightly
benchmark (``benchmarks/nightly.py``) counts requests by installing a wrapper
with :func:`set_wrapper`.
"""

from __future__ import annotations

import os
import typing as T

import zarr

from .. import location
from ..location import is_url, options_of

_wrapper: T.Callable | None = None


def zarr_store(path: str | os.PathLike) -> zarr.abc.store.Store:
    """The Zarr store object of the store at ``path``: a directory, or an object-store URL
    (``s3://bucket/prefix``, through zarr's ``FsspecStore`` and s3fs: ``docs/architecture.md``,
    "Object storage: which library").

    Parameters
    ----------
    path : str or PathLike or scatflow.location.Url
        The store directory or URL (a :class:`~scatflow.location.Url` carries its connection
        settings).
    """
    if is_url(path):
        store = zarr.storage.FsspecStore.from_url(str(path), storage_options=options_of(path))
    else:
        store = zarr.storage.LocalStore(os.fspath(path))
    return _wrapper(store) if _wrapper is not None else store


def object_store_exists(url) -> bool:
    """Whether a Zarr store (its root ``zarr.json``) is at object-store URL ``url``.

    Raises
    ------
    StoreError
        One line naming the endpoint when the server does not answer (after s3fs's retries).
    """
    try:
        return location.isfile(location.join(url, "zarr.json"))
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, HTTP 5xx after retries
        raise location.unreachable(url, exc) from exc


def set_wrapper(wrapper: T.Callable | None) -> None:
    """Wrap every store :func:`zarr_store` returns from now on in ``wrapper(store)`` (a
    :class:`zarr.storage.WrapperStore`, e.g. one counting requests); None removes it."""
    global _wrapper
    _wrapper = wrapper
