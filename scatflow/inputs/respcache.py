"""Instrument responses evaluated once per worker process, not once per block.

ObsPy's ``Trace.remove_response`` evaluates the whole response chain (evalresp)
at every frequency of the trace's FFT: about a million frequencies for a 6-hour
block at 50 Hz, most of a block's preprocessing time. The result depends only
on the response's values, the sample interval, the FFT length (a function of
the trace's length, so every full block of a station has the same) and the
output units, so it is kept per process, keyed by the response's digest (the
one the ledger records for the block: :class:`scatflow.inputs.epochs.Responses`)
and those three, and handed back as a copy (ObsPy inverts it in place). The
numbers are those of a fresh evaluation, bit for bit, and the warnings the
evaluation gave are given again on every use, so a block's recorded notes never
depend on which blocks its process computed before.
"""

from __future__ import annotations

import collections
import threading
import warnings

from obspy.core.inventory.response import Response

#: Evaluations kept per process (one per distinct response and FFT length: a station's channels
#: usually share one response; each holds about 24 MB for a 6-hour block at 50 Hz).
MAX_ENTRIES = 4

_cache: collections.OrderedDict = collections.OrderedDict()
_lock = threading.Lock()


class _Reused(Response):
    """A response whose :meth:`get_evalresp_response` is served from the process's cache."""

    _digest: str = ""

    def get_evalresp_response(self, t_samp, nfft, output="VEL", start_stage=None, end_stage=None,
                              hide_sensitivity_mismatch_warning=False):
        key = (self._digest, float(t_samp), int(nfft), output, start_stage, end_stage,
               hide_sensitivity_mismatch_warning)
        with _lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
        if hit is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                values, freqs = super().get_evalresp_response(t_samp, nfft, output, start_stage, end_stage,
                                                              hide_sensitivity_mismatch_warning)
            hit = (values, freqs, [(w.message, w.category) for w in caught])
            with _lock:
                _cache[key] = hit
                while len(_cache) > MAX_ENTRIES:
                    _cache.popitem(last=False)
        values, freqs, said = hit
        for message, category in said:
            warnings.warn(message, category, stacklevel=2)
        return values.copy(), freqs.copy()


def reused(response: Response, digest: str) -> Response:
    """``response`` (same values, same stages) with its frequency response evaluated once per process
    for each (``digest``, sample interval, FFT length, output); ``response`` itself is unchanged.

    Parameters
    ----------
    response : obspy Response
    digest : str
        The digest of its values (:class:`scatflow.inputs.epochs.Responses`); empty: no reuse.
    """
    if not digest or type(response) is not Response:
        return response
    twin = _Reused.__new__(_Reused)
    twin.__dict__.update(response.__dict__)  # the same stage objects, not copies
    twin._digest = digest
    return twin


def clear() -> None:
    """Forget every kept evaluation (tests)."""
    with _lock:
        _cache.clear()
