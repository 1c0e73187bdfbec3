"""Input-file records: how a block names each file it read, so that moving the archive changes nothing.

A record is ``{"path", "size", "mtime"}`` for a file, ``{"path", "size", "etag"}`` for an object
(plus ``blake2b`` and ``md5`` once a worker has read it),
its ``path`` relative to the archive's root: the SDS root for ``input.sds``, the base of the
glob that matched the file for ``input.paths``. Planning compares the records of a done block
with the records of the files its read span touches now, both relative to the *current*
configuration's root, so an archive mounted at another path (login and compute nodes), moved
(``/scratch`` to ``/project``) or copied with its mtimes kept (``cp -a``, ``rsync -a``)
matches what its blocks recorded; a rewritten file (another size or mtime) does not.

Records written before paths were relative hold absolute paths. Such a record matches the
current file whose relative path is its longest trailing part, component by component (an SDS
day file's relative path ``YEAR/NET/STA/CHA.TYPE/NAME`` is always a suffix of its absolute
path; a glob's file is under its base): those stores keep working at the old path and at a
new one, with nothing recomputed.
"""

from __future__ import annotations

import os
import posixpath
import re

from .. import location

_MAGIC = re.compile(r"[*?[]")  # what makes a path component a glob (as :mod:`glob` decides)


def glob_base(pattern: str) -> str:
    """The base directory of a file glob: its longest leading directory without glob
    characters (``/data/arch/**/*.mseed`` -> ``/data/arch``; a plain file's directory),
    absolute (for a URL: its leading prefix, ``s3://bucket/arch/**/*.mseed`` ->
    ``s3://bucket/arch``)."""
    if location.is_url(pattern):
        scheme, rest = str(pattern).split("://", 1)
        return f"{scheme}://" + "/".join(_leading(rest.split("/")))
    return os.sep.join(_leading(os.path.abspath(pattern).split(os.sep))) or os.sep


def _leading(parts: list[str]) -> list[str]:
    """The directory components of a glob's ``parts`` before the first with glob characters."""
    lead = []
    for part in parts[:-1]:
        if _MAGIC.search(part):
            break
        lead.append(part)
    return lead


def relative_to(path: str, base: str) -> str:
    """``path`` relative to directory ``base``, with ``/`` separators (what a record holds)."""
    if location.is_url(base):
        return posixpath.relpath(str(path).split("://", 1)[1], str(base).split("://", 1)[1])
    return os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")


def file_record(path: str, rel: str) -> dict:
    """The record of file ``path`` (``os.stat`` now) under its relative name ``rel``.

    Parameters
    ----------
    path : str
        Where the file is now.
    rel : str
        Its path relative to the archive's root (:func:`relative_to`).

    Returns
    -------
    dict
        ``{"path": rel, "size": bytes, "mtime": seconds since 1970}``; for an object,
        ``{"path": rel, "size": bytes, "etag": ETag}`` (one ``HEAD``).
    """
    if location.is_url(path):
        return object_record(location.info(path), rel)
    st = os.stat(path)
    return {"path": rel, "size": st.st_size, "mtime": st.st_mtime}


def is_absolute(record: dict) -> bool:
    """Whether a record names its file by absolute path (written before paths were relative)."""
    return record["path"].startswith("/")


def as_current(recorded: list[dict], current: list[dict]) -> list[dict]:
    """``recorded`` with each absolute path replaced by the relative path of the file of
    ``current`` it names: the current relative path that is its longest trailing part, whole
    components only (an absolute path naming no current file is kept: that file is gone).

    Parameters
    ----------
    recorded : list of dict
        A block's records, as stored.
    current : list of dict
        The records of the files its read span touches now (relative paths).
    """
    if not any(is_absolute(r) for r in recorded):
        return recorded
    names = {c["path"] for c in current}
    out = []
    for r in recorded:
        if is_absolute(r):
            parts = r["path"].strip("/").split("/")
            rel = next((s for s in ("/".join(parts[i:]) for i in range(len(parts))) if s in names), None)
            if rel is not None:
                r = dict(r, path=rel)
        out.append(r)
    return out


def object_record(info: dict, rel: str) -> dict:
    """The record of an object from its listing or ``HEAD`` entry (fsspec's ``info``): its
    identity is the ETag, which changes whenever the object is written."""
    return {"path": rel, "size": int(info["size"]), "etag": str(info.get("ETag", "")).strip('"')}
