"""Preprocessing settings checked before anything runs: per channel, and against the block length.

A setting that cannot apply to a channel would otherwise fail every block of
it with a bare SciPy sentence (a lowpass or highpass corner above the Nyquist
frequency), be changed silently by ObsPy (a bandpass whose top corner is above
Nyquist becomes a highpass), or give wrong science without a word (a
``pre_filt`` above Nyquist, a ground-motion response on a pressure channel).
The planner refuses such a station with one line naming the channel, the key
and the limit; a configuration-wide problem (a pad longer than a block) is a
ConfigError when the configuration is read.

The steps run in this order at the channel's raw rate: response (with
``pre_filt``), filter, then resampling; so the filter corners and
``pre_filt`` are checked against the raw rate's Nyquist frequency, and a
passband lying wholly above the output rate's Nyquist frequency (nothing left
after resampling) is refused too.
"""

from __future__ import annotations

import typing as T

from .epochs import bounds, epochs
from ..errors import ConfigError

#: Input units from which ObsPy's ``remove_response`` gives displacement, velocity or acceleration
#: (the length units its evalresp maps to DIS, VEL, ACC; strain and other units are not ground motion).
GROUND_MOTION = frozenset(f"{m}{t}" for m in ("M", "NM", "CM", "MM") for t in (
    "", "/S", "/SEC", "/S**2", "/(S**2)", "/SEC**2", "/(SEC**2)")) | {"M/S/S"}
#: ObsPy's bandpass turns into a highpass when its top corner is within this fraction of Nyquist.
_BANDPASS_TOLERANCE = 1e-6


def check_pad(pad_s: float, block_s: float, explicit: bool, source: str) -> None:
    """Refuse a pad longer than a block.

    Blocks within ``pad`` of the archive's first or last sample (and of every
    gap) would hold no window beyond the pad and be reported as outages while
    their data exist.

    Parameters
    ----------
    pad_s : float
        The pad, seconds (set, or the default from the steps).
    block_s : float
        ``output.block_s``, seconds.
    explicit : bool
        Whether ``preprocess.pad_s`` was set (else the message says it is the default).
    source : str
        The configuration file, for the message.
    """
    if pad_s > block_s:
        what = "" if explicit else " (the default, twice the slowest step's transient)"
        raise ConfigError(f"{source}: 'preprocess.pad_s' = {pad_s:g} s{what} is longer than 'output.block_s' = "
                          f"{block_s:g} s: blocks within the pad of the data's edges would be reported as outages; "
                          f"use blocks of at least {pad_s:g} s" + ("" if explicit else
                                                                   " (or raise the lowest filter corner)"))


def rate_problem(pre, raw: float) -> str | None:
    """Why the filter or ``pre_filt`` of ``pre`` cannot apply to data at ``raw`` Hz, or None.

    Parameters
    ----------
    pre : Preprocess
    raw : float
        The channel's sampling rate, Hz (the steps run at it, before resampling).

    Returns
    -------
    str or None
        One sentence naming the key and the limit (the caller prefixes the channel).
    """
    nyq = raw / 2.0
    out = pre.sampling_rate / 2.0 if pre.sampling_rate is not None and pre.sampling_rate < raw else None
    at = f"the Nyquist frequency of its {raw:g} Hz data ({nyq:g} Hz)"
    opts = pre.filter_options
    kind = opts.get("type")
    if kind in ("highpass", "lowpass") and opts["freq"] >= nyq:
        return f"'preprocess.filter.freq' = {opts['freq']:g} Hz ({kind}) is not below {at}"
    if kind == "bandpass":
        if opts["freqmax"] >= nyq * (1 - _BANDPASS_TOLERANCE):
            return (f"'preprocess.filter.freqmax' = {opts['freqmax']:g} Hz (bandpass) is not below {at} "
                    "(ObsPy would make it a highpass)")
    low = opts.get("freq") if kind == "highpass" else opts.get("freqmin")
    if out is not None and low is not None and low >= out:
        return (f"'preprocess.filter.{'freq' if kind == 'highpass' else 'freqmin'}' = {low:g} Hz ({kind}) leaves "
                f"nothing below the Nyquist frequency of the output ({out:g} Hz at preprocess.sampling_rate = "
                f"{pre.sampling_rate:g})")
    if pre.response not in ("none", "sensitivity") and pre.pre_filt is not None:
        if pre.pre_filt[3] > nyq:
            return f"'preprocess.pre_filt' ends at {pre.pre_filt[3]:g} Hz, above {at}"
        if out is not None and pre.pre_filt[0] >= out:
            return (f"'preprocess.pre_filt' starts at {pre.pre_filt[0]:g} Hz and leaves nothing below the Nyquist "
                    f"frequency of the output ({out:g} Hz at preprocess.sampling_rate = {pre.sampling_rate:g})")
    return None


def units_problem(kind: str, response) -> str | None:
    """Why ``response = kind`` cannot apply to a channel epoch's ``response``, or None.

    Displacement, velocity and acceleration need an input unit of ground
    motion (:data:`GROUND_MOTION`, e.g. ``M/S``); ``none`` and ``sensitivity``
    take any unit.
    """
    if kind in ("none", "sensitivity") or response is None:
        return None
    stages = getattr(response, "response_stages", None) or []
    unit = stages[0].input_units if stages and stages[0].input_units else getattr(
        getattr(response, "instrument_sensitivity", None), "input_units", None)
    if unit is None or str(unit).upper() in GROUND_MOTION:
        return None
    return (f"'preprocess.response' = {kind!r} needs an input unit of ground motion (M, M/S or M/S**2), "
            f"the inventory gives {unit}")


def check_station(pre, station, inv, t0_ns: int | None, t1_ns: int | None) -> None:
    """Refuse a station whose channels cannot take the ``[preprocess]`` settings.

    Parameters
    ----------
    pre : Preprocess
    station : scatflow.inputs.sources.Station
        Its ``sampling_rate`` is its channels' rate (their highest when they differ).
    inv : obspy.Inventory or None
        The channel epochs overlapping the span add their sample rates and input units.
    t0_ns, t1_ns : int or None
        The span, ns since 1970 (None: unbounded).

    Raises
    ------
    ConfigError
        ``CHANNEL: KEY ... LIMIT`` for the first problem found.
    """
    lo, hi = (t0_ns if t0_ns is not None else -2 ** 62), (t1_ns if t1_ns is not None else 2 ** 62)
    for seed_id in station.channels:
        found = [c for _, c in (epochs(inv, seed_id) if inv is not None else [])
                 if bounds(c)[0] <= hi and bounds(c)[1] >= lo]
        rates = {station.sampling_rate} | {float(c.sample_rate) for c in found if c.sample_rate}
        for raw in sorted(rates):
            problem = rate_problem(pre, raw)
            if problem:
                raise ConfigError(f"{seed_id}: {problem}")
        for c in found:
            problem = units_problem(pre.response, c.response)
            if problem:
                raise ConfigError(f"{seed_id}: {problem}")


__all__: T.List[str] = ["check_pad", "check_station", "rate_problem", "units_problem", "GROUND_MOTION"]
