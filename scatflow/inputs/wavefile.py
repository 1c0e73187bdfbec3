"""Reading one waveform file with every failure turned into one line naming it.

ObsPy only warns about some damaged miniSEED (a truncated record is dropped
with a warning, or silently): here every libmseed warning is an error, and a
file that is not a whole number of records is refused, never read short.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings

import obspy

from .. import location
from ..errors import InputError


def mislabelled(stream: obspy.Stream, seed_id: str) -> str:
    """Why a file at ``seed_id``'s SDS path that holds ``stream`` is not used.

    Parameters
    ----------
    stream : obspy.Stream
        What the file holds (headers suffice).
    seed_id : str
        ``NET.STA.LOC.CHA`` of the file's path.

    Returns
    -------
    str
        ``"holds records of OTHER, not of its SDS path SEED_ID (...)"`` (``"also holds..."``
        when some records are the path's).
    """
    others = sorted({tr.id for tr in stream} - {seed_id})
    if not others:
        return "holds no record"
    also = "also " if any(tr.id == seed_id for tr in stream) else ""
    return (f"{also}holds records of {', '.join(others)}, not of its SDS path {seed_id} (not used: "
            "move the file or correct its records' headers)")


def bad_files(bad: list[tuple[str, str]], most: int = 3) -> str:
    """``FILE: reason; ...`` for up to ``most`` of the (file, reason) pairs ``bad``, then how many more."""
    if not bad:
        return "no file"
    text = "; ".join(f"{path}: {why}" for path, why in bad[:most])
    return text + (f"; and {len(bad) - most} more" if len(bad) > most else "")


def _mseed_warning():
    from obspy.io.mseed import InternalMSEEDWarning

    return InternalMSEEDWarning


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def read_checked(path: str, **kwargs) -> obspy.Stream:
    """``obspy.read(path, **kwargs)`` with every failure turned into one line naming the file.

    Raises
    ------
    InputError
        ``PATH: empty file``, ``PATH: not a readable waveform file (...)`` (a libmseed warning
        included) or ``PATH: truncated or damaged miniSEED (...)``.
    """
    source = path
    if location.is_url(path):
        try:
            data = location.read_bytes(path)  # one GET; ObsPy reads from memory
        except FileNotFoundError:
            raise InputError(f"{path}: no such object") from None
        if not kwargs.get("headonly"):  # a worker's data read: its record's hashes follow
            _remember_digests(path, data)
        if not data:
            raise InputError(f"{path}: empty file")
        source = io.BytesIO(data)
    elif os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=_mseed_warning())
        try:
            stream = obspy.read(source, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad files
            raise InputError(f"{path}: not a readable waveform file ({_short(exc)})") from None
    check_records(path, stream)
    return stream


def check_records(path: str, stream: obspy.Stream) -> None:
    """Refuse a miniSEED file whose size is not its records' total: a truncated last record
    is dropped by ObsPy without an error, which would silently shorten the data."""
    meta = [tr.stats.get("mseed") for tr in stream]
    if not meta or any(m is None for m in meta):
        return
    lengths = {m.get("record_length") for m in meta}
    size = meta[0].get("filesize")
    if len(lengths) != 1 or size is None or None in lengths:
        return
    (reclen,) = lengths
    # Reading a time window reports only the records of that window; the size must still be whole records.
    if size % reclen:
        raise InputError(
            f"{path}: truncated or damaged miniSEED ({size} bytes is not a whole number of {reclen}-byte records)"
        )


#: The hashes of the objects read last (URL -> (blake2b, md5)), so that recording what a worker
#: read costs no second GET; a few entries only.
_DIGESTS: dict[str, tuple[str, str]] = {}


def _remember_digests(path, data: bytes) -> None:
    while len(_DIGESTS) >= 64:
        _DIGESTS.pop(next(iter(_DIGESTS)))
    _DIGESTS[str(path)] = _hashes(data)


def _hashes(data: bytes) -> tuple[str, str]:
    return hashlib.blake2b(data, digest_size=16).hexdigest(), hashlib.md5(data).hexdigest()


def file_digest(path: str, md5: bool = False):
    """BLAKE2b (128-bit, hex) of a file's bytes: what a worker records, as ``blake2b``, for each
    file a block read. Planning never compares it (see :func:`inputs_differ`); it reads the whole
    file, about 1 GB/s of CPU. With ``md5``: ``(blake2b, md5)``, both hex (an object store's
    ETag of a single-part upload is its MD5). An object just read by :func:`read_checked` is
    not read again."""
    if location.is_url(path):
        pair = _DIGESTS.pop(str(path), None)
        if pair is None:
            pair = _hashes(location.read_bytes(path))
        return pair if md5 else pair[0]
    h = hashlib.blake2b(digest_size=16)
    m = hashlib.md5() if md5 else None
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            if m is not None:
                m.update(chunk)
    return (h.hexdigest(), m.hexdigest()) if md5 else h.hexdigest()
