"""Response removal with the frequency-domain factors of a response kept per worker process.

ObsPy's ``Trace.remove_response`` evaluates the whole response chain (evalresp)
at every frequency of the trace's FFT (about a million for a 6-hour block at
50 Hz), builds the ``pre_filt`` taper over them and inverts the spectrum with
the water level, for every block: most of a block's preprocessing time, and
most of its memory. Those factors depend only on the response's values, the
sample interval, the FFT length (a function of the run's length: every full
block of a station has the same), the output units, ``pre_filt`` and the
water level. :func:`remove_response` therefore does exactly what ObsPy's
method does, operation by operation (demean, cosine taper, ``rfft``, the taper,
the inverted response, the Nyquist term, ``irfft``), so its samples are
ObsPy's bit for bit (a test compares them), but takes the two factors from a
per-process cache keyed by the response's digest (the one the ledger records
for the block, :class:`scatflow.inputs.epochs.Responses`) and those settings.
The warnings the evaluation gave are given again on every use, so a block's
recorded notes never depend on which blocks its process computed before.
Responses ObsPy treats otherwise (polynomial responses) go to ObsPy's method.
"""

from __future__ import annotations

import collections
import threading
import warnings

import numpy as np

#: Factors kept per process (one set per distinct response and FFT length: a station's channels
#: usually share one response; a set holds about 26 MB for a 6-hour block at 50 Hz).
MAX_ENTRIES = 4

_cache: collections.OrderedDict = collections.OrderedDict()
_lock = threading.Lock()


def remove_response(tr, response, digest: str, output: str, pre_filt, water_level, taper_fraction: float) -> None:
    """``tr.remove_response(output=output, pre_filt=pre_filt, water_level=water_level, zero_mean=True,
    taper=True, taper_fraction=taper_fraction)`` with ``response``, in place, with the same bits.

    Parameters
    ----------
    tr : obspy.Trace
        Float64 samples; replaced by the corrected ones.
    response : obspy Response
    digest : str
        The digest of the response's values (empty: no reuse, ObsPy's method is called).
    output : str
        DISP, VEL or ACC.
    pre_filt : tuple of 4 float or None
        Hz.
    water_level : float or None
        dB.
    taper_fraction : float
        Of the trace's length, as ObsPy's ``taper_fraction``.
    """
    from obspy.core.inventory import PolynomialResponseStage
    from obspy.signal.invsim import cosine_taper
    from obspy.signal.util import _npts2nfft

    stages = response.response_stages
    if not digest or not stages or isinstance(stages[0], PolynomialResponseStage):
        tr.stats.response = response
        tr.remove_response(output=output, pre_filt=pre_filt, water_level=water_level, zero_mean=True,
                           taper=True, taper_fraction=taper_fraction)
        return
    data = tr.data.astype(np.float64)
    npts = len(data)
    data -= data.mean()
    data *= cosine_taper(npts, taper_fraction, sactaper=True, halfcosine=False)
    nfft = _npts2nfft(npts)
    spectrum = np.fft.rfft(data, n=nfft)
    del data
    taper, inverse = _factors(response, digest, tr.stats.delta, nfft, output, pre_filt, water_level)
    if taper is not None:
        spectrum *= taper
    spectrum *= inverse
    spectrum[-1] = abs(spectrum[-1]) + 0.0j
    tr.data = np.fft.irfft(spectrum)[0:npts]


def _factors(response, digest: str, delta: float, nfft: int, output: str, pre_filt, water_level):
    """The ``pre_filt`` taper (None without one) and the inverted response at the FFT's frequencies
    (read-only, shared), evaluated once per process for each key; the evaluation's warnings again."""
    from obspy.signal.invsim import cosine_sac_taper, invert_spectrum

    key = (digest, float(delta), int(nfft), output, tuple(pre_filt) if pre_filt else None, water_level)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inverse, freqs = response.get_evalresp_response(delta, nfft, output=output)
        taper = cosine_sac_taper(freqs, flimit=pre_filt) if pre_filt else None
        del freqs
        if water_level is None:
            inverse[0] = 0.0
            inverse[1:] = 1.0 / inverse[1:]
        else:
            invert_spectrum(inverse, water_level)
        for a in (taper, inverse):
            if a is not None:
                a.flags.writeable = False
        hit = (taper, inverse, [(w.message, w.category) for w in caught])
        with _lock:
            _cache[key] = hit
            while len(_cache) > MAX_ENTRIES:
                _cache.popitem(last=False)
    taper, inverse, said = hit
    for message, category in said:
        warnings.warn(message, category, stacklevel=3)
    return taper, inverse


def clear() -> None:
    """Forget every kept factor (tests)."""
    with _lock:
        _cache.clear()
