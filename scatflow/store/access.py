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

_wrapper: T.Callable | None = None


def zarr_store(path: str | os.PathLike) -> zarr.abc.store.Store:
    """The Zarr store object of the store at ``path`` (a directory).

    Parameters
    ----------
    path : str or PathLike
        The store directory.
    """
    store = zarr.storage.LocalStore(os.fspath(path))
    return _wrapper(store) if _wrapper is not None else store


def set_wrapper(wrapper: T.Callable | None) -> None:
    """Wrap every store :func:`zarr_store` returns from now on in ``wrapper(store)`` (a
    :class:`zarr.storage.WrapperStore`, e.g. one counting requests); None removes it."""
    global _wrapper
    _wrapper = wrapper
