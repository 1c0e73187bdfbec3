"""Where data lives: a local path or an object-store URL (``s3://bucket/prefix``), one seam for both.

A URL travels through scatflow as a :class:`Url`, a ``str`` that also carries its connection
settings (``storage_options``, s3fs's names: ``endpoint_url``, ``key``, ``secret``, ``anon``,
``client_kwargs``...). Code that passes paths around, pickles them into Dask tasks or prints
them needs no change, and what it prints is the URL alone: the settings, credentials included,
are never part of the string, so they cannot reach a message, a log line, a store attribute or
a job script by accident (only :func:`public_options` is ever recorded).

The helpers below (:func:`exists`, :func:`isfile`, :func:`listdir`, :func:`read_bytes`...) use
``os`` for local paths, unchanged, and s3fs (through fsspec) for URLs. Credentials not given in
the settings come from s3fs's usual sources: the ``AWS_*`` environment variables, then
``~/.aws/credentials`` and the instance's role.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import typing as T

from .errors import ConfigError, StoreError

#: URL schemes that name an object store (served by fsspec's implementations).
SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://", "memory://")
#: Connection settings that may be recorded (a store's provenance): everything else (key,
#: secret, token, profile...) stays in memory only.
PUBLIC_OPTIONS = ("endpoint_url", "anon", "requester_pays", "use_ssl", "region_name", "default_fill_cache")


class Url(str):
    """An object-store URL that carries its connection settings (``storage_options``).

    It is the URL string for every ``str`` purpose (printing, comparing, hashing, JSON); the
    settings ride along through pickling (Dask tasks) and :func:`join`.
    """

    storage_options: dict

    def __new__(cls, url: str, storage_options: T.Mapping | None = None):
        self = super().__new__(cls, url.rstrip("/") if url.rstrip("/").count("/") > 2 else url)
        self.storage_options = dict(storage_options or {})
        return self

    def __reduce__(self):
        return (Url, (str(self), self.storage_options))


def is_url(path) -> bool:
    """Whether ``path`` names an object store (``s3://...``) rather than a local path."""
    return isinstance(path, str) and path.startswith(SCHEMES)


def as_location(path, storage_options: T.Mapping | None = None):
    """``path`` as scatflow passes it on: a :class:`Url` with ``storage_options`` for a URL
    (settings already carried are kept unless new ones are given), else ``os.fspath(path)``."""
    if is_url(path):
        if storage_options is None and isinstance(path, Url):
            return path
        return Url(str(path), storage_options)
    return os.fspath(path)


#: s3fs settings scatflow sets unless the user does: whole-object GETs without a HEAD first
#: (s3fs asks an object's size to decide on a parallel download, useless for scatflow's objects:
#: 124 instead of 187 requests to write a station-day store; ``docs/architecture.md``, "Object
#: storage: which library"); and no listings cache, so that what one part of a run lists is never
#: an older answer than what another part wrote or deleted.
S3_DEFAULTS = {"max_concurrency": 1, "use_listings_cache": False}


def options_of(path) -> dict:
    """The connection settings ``path`` carries ({} for a local path or a bare URL), with
    :data:`S3_DEFAULTS` for ``s3://`` where the user set nothing else."""
    options = dict(getattr(path, "storage_options", {}) or {})
    if str(path).startswith("s3://"):
        options = {**S3_DEFAULTS, **options}
    return options


def public_options(options: T.Mapping | None) -> dict:
    """The settings that may be written down (endpoint, anonymous access, region), never a
    credential."""
    options = dict(options or {})
    out = {k: v for k, v in options.items() if k in PUBLIC_OPTIONS}
    client = options.get("client_kwargs")
    if isinstance(client, T.Mapping):
        kept = {k: v for k, v in client.items() if k in PUBLIC_OPTIONS}
        if kept:
            out["client_kwargs"] = kept
    return out


def check_options(options, where: str) -> dict | None:
    """Validate a ``storage_options`` table of the config (ConfigError naming ``where``)."""
    if options is None:
        return None
    if not isinstance(options, T.Mapping):
        raise ConfigError(f"'{where}' must be a table of connection settings (endpoint_url, key, secret, anon...)")
    try:
        json.dumps(dict(options))
    except TypeError:
        raise ConfigError(f"'{where}' holds a value that is not text, a number, a boolean or a table") from None
    return dict(options)


def join(path, *parts: str):
    """``path`` joined with ``parts`` (``/`` for URLs, the settings kept; ``os.path.join`` else)."""
    if is_url(path):
        return Url(posixpath.join(str(path), *parts), options_of(path))
    return os.path.join(path, *parts)


def bucket(path):
    """The bucket of URL ``path`` (``s3://bucket``), as a URL with the same settings."""
    scheme, rest = str(path).split("://", 1)
    return Url(f"{scheme}://{rest.split('/', 1)[0]}", options_of(path))


def endpoint(path) -> str:
    """The server a URL goes to, for messages (the endpoint setting, or the scheme's default)."""
    options = options_of(path)
    client = options.get("client_kwargs") or {}
    return options.get("endpoint_url") or client.get("endpoint_url") or str(path).split("://")[0] + " default endpoint"


@functools.lru_cache(maxsize=32)
def _filesystem(protocol: str, options_json: str):
    import fsspec

    try:
        return fsspec.filesystem(protocol, **json.loads(options_json))
    except ImportError as exc:
        raise ConfigError(f"{protocol}:// URLs need {exc.name or 'an fsspec backend'}: "
                          f"pip install 'scatflow[s3]' (or {exc.name})") from None


def filesystem(path):
    """The fsspec filesystem of URL ``path`` (one instance per scheme and settings, per process)."""
    protocol = str(path).split("://", 1)[0]
    return _filesystem(protocol, json.dumps(options_of(path), sort_keys=True))


def _key(path) -> str:
    """A URL without its scheme, as fsspec names objects (``bucket/prefix/name``)."""
    return str(path).split("://", 1)[1]


def exists(path) -> bool:
    """Whether a file, directory or object prefix is at ``path``."""
    if is_url(path):
        return filesystem(path).exists(_key(path))
    return os.path.exists(path)


def isfile(path) -> bool:
    """Whether a file (an object) is at ``path``."""
    if is_url(path):
        return filesystem(path).isfile(_key(path))
    return os.path.isfile(path)


def isdir(path) -> bool:
    """Whether a directory (for a URL: a prefix holding objects) is at ``path``."""
    if is_url(path):
        return filesystem(path).isdir(_key(path))
    return os.path.isdir(path)


def listdir(path) -> list[str]:
    """Names directly under ``path``, sorted ([] when nothing is there); one listing request
    for a URL."""
    if is_url(path):
        try:
            entries = filesystem(path).ls(_key(path), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def info(path) -> dict:
    """fsspec's description of object ``path`` (``size``, ``ETag``...): one ``HEAD``."""
    return filesystem(path).info(_key(path), refresh=True)


def entries(path) -> list[dict]:
    """fsspec's entries directly under ``path`` (``name``, ``type``, ``size``, ``ETag``), one
    listing request ([] when nothing is there)."""
    try:
        return filesystem(path).ls(_key(path), detail=True, refresh=True)
    except FileNotFoundError:
        return []


def glob(pattern) -> list:
    """The objects a URL glob matches (``**`` recursive), as URLs carrying the settings, sorted."""
    fs = filesystem(pattern)
    scheme = str(pattern).split("://", 1)[0]
    hits = fs.glob(_key(pattern), detail=True)
    return sorted(Url(f"{scheme}://{name}", options_of(pattern)) for name, e in hits.items() if e.get("type") == "file")


def read_bytes(path) -> bytes:
    """The content of file ``path`` (one GET for a URL)."""
    if is_url(path):
        return filesystem(path).cat_file(_key(path))
    with open(path, "rb") as fh:
        return fh.read()


def write_bytes(path, data: bytes) -> None:
    """Replace file ``path`` by ``data`` (atomically: a temporary file renamed on disk; one PUT,
    atomic by nature, on an object store)."""
    if is_url(path):
        filesystem(path).pipe_file(_key(path), data)
        return
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def rmtree(path) -> None:
    """Delete ``path`` and everything under it (nothing when absent)."""
    if is_url(path):
        fs = filesystem(path)
        try:
            fs.rm(_key(path), recursive=True)
        except FileNotFoundError:
            pass
        return
    import shutil

    shutil.rmtree(path, ignore_errors=False) if os.path.isdir(path) else None


def unreachable(path, exc: BaseException) -> StoreError:
    """One line for an object store that does not answer (after the library's retries)."""
    return StoreError(f"{path}: object store at {endpoint(path)} did not answer ({type(exc).__name__}: "
                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'})")
