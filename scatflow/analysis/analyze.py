"""Independent components and clusters of a store's coefficients (``scatflow analyze``):
the entry points.

The procedure is the scatseisnet tutorials' (dimension reduction with FastICA,
then KMeans), made to scale: the model is fitted on a seeded sample of windows
spread over stations and time (:mod:`.sample`, :mod:`.fit`), then applied to
every window chunk by chunk with Dask (:mod:`.label`), and its results written
beside the coefficients in the group ``analysis/<name>`` (README, "Analysis").
Models are stored as arrays (:mod:`.model`), so a later run labels new windows
with the same model without refitting. This module checks the config against
a stored analysis, runs the steps under the store's writer lock, and parses
``--explore``.
"""

from __future__ import annotations

import time
import typing as T

from ..errors import ConfigError, InputError, StoreError
from .features import FLOAT32_NOISE
from .fit import fit_model
from .label import apply_model, chunks_to_label, count_stored, counts_missing
from .layout import joint_layout
from .model import Model
from .stations import select_stations, station_inputs
from .summary import Summary

#: Keys of the analysis config that define a model; a stored analysis with others is refused.
MODEL_KEYS = ("name", "stations", "joint", "match", "log_floor", "normalize", "sample", "components", "seed",
              "clusters", "cluster_seed")
#: Values of keys that analyses written before the key existed were made with.
KEY_DEFAULTS = {"match": "code"}


def _config_differences(stored: dict, current: dict) -> list[str]:
    stored = {**KEY_DEFAULTS, **stored}
    return [f"{k}: store has {stored.get(k)!r}, config has {current.get(k)!r}"
            for k in MODEL_KEYS if stored.get(k) != current.get(k)]


def preflight(cfg, *, refit: bool = False, explore: T.Sequence[int] | None = None) -> None:
    """The checks :func:`analyze` makes before computing anything, from metadata alone: the store,
    an analysis written with another config, the stations asked, a joint model's channels and
    frequencies. The command line makes them before it starts a cluster.

    Raises
    ------
    ConfigError, InputError, StoreError
        As :func:`analyze`.
    """
    _prepare(cfg, refit, explore)


def _prepare(cfg, refit: bool, explore):
    """:func:`preflight`'s checks; returns the reader, the resolved ``[analysis]``, the stored
    analysis's attributes (None when absent), an empty summary and the usable stations."""
    from ..config import thaw
    from ..store.reader import StoreReader

    acfg = thaw(cfg.analysis)
    name, path = acfg["name"], cfg.output["store"]
    reader = StoreReader(path)
    stored = reader.analysis_attrs(name)
    current = {k: acfg[k] for k in MODEL_KEYS}
    if stored is not None and explore is None and not refit:
        diffs = _config_differences(stored.get("config") or {}, current)
        if diffs:
            raise StoreError(f"{path}: analysis {name!r} was written with another [analysis] config "
                             f"({'; '.join(diffs)}); use --refit to replace it, or another analysis.name")
    summary = Summary(name, acfg["joint"], [])
    inputs = station_inputs(reader, select_stations(reader, acfg["stations"]), summary.skipped, acfg["match"])
    if not inputs:
        raise InputError(f"{path}: no usable station (" + "; ".join(f"{k}: {w}" for k, w in summary.skipped) + ")")
    if acfg["joint"]:
        joint_layout(inputs)  # stations that cannot share one model: refused before anything is computed
    return reader, acfg, stored, summary, inputs


def analyze(cfg, *, refit: bool = False, explore: T.Sequence[int] | None = None, log=print) -> Summary | dict:
    """Fit (or reuse) the ``[analysis]`` model of a store and label every window.

    Parameters
    ----------
    cfg : scatflow.config.Config
        A validated configuration; ``cfg.output["store"]`` is the store, ``cfg.analysis`` the analysis.
    refit : bool
        Fit again and replace the analysis ``analysis/<name>`` (its station results included).
    explore : sequence of int, optional
        Component counts: fit FastICA for each on the sample and return ``{count: explained variance}``
        (a fraction, 0..1) without writing anything.
    log : callable
        Progress lines (stderr in the command line).

    Returns
    -------
    Summary or dict
        The summary (:meth:`Summary.text`), or per model ``{count: explained variance}`` with ``explore``.

    Raises
    ------
    ConfigError, InputError, StoreError
        One line each: no station matching, stations that cannot share a joint model, too many
        components, an analysis written with another config (unless ``refit``), no usable window.
    """
    from ..store.analysis_writer import AnalysisWriter
    from ..store.lock import writer_lock
    from ..store.reader import StoreReader
    from ..store.writer import Store

    t0 = time.perf_counter()
    reader, acfg, stored, summary, inputs = _prepare(cfg, refit, explore)
    name, path = acfg["name"], cfg.output["store"]
    groups = [(None, inputs)] if acfg["joint"] else [(s.key, [s]) for s in inputs]
    fresh = refit or stored is None

    if explore is not None:
        results = {}
        for key, members in groups:
            layout = joint_layout(members) if key is None else members[0].layout()
            log(f"analyze: exploring {list(explore)} components" + (f" for {key}" if key else ""))
            results[key] = fit_model(members, layout, acfg, log, summary.skipped, explore=list(explore)).explained
        return results

    if acfg["joint"]:
        joint_layout(inputs)  # refuse before anything is written
    store = Store(path)
    writer = AnalysisWriter(path)
    with writer_lock(path, command="analyze"):
        store.drop_consolidated()
        if refit:
            writer.drop(name)
            reader = StoreReader(path)
        records = {} if fresh else dict(stored.get("models") or {})
        for key, members in groups:
            rec_key = key or ""
            if not fresh and rec_key in records:
                model = _stored_model(reader, name, key, members, acfg["log_floor"])
            else:
                members, model, records[rec_key] = _fit_and_write(writer, name, key, members, acfg, log, summary)
            for s in members:
                _label_station(writer, name, model, s, summary, log)
        # The attributes last: a crash before this leaves an analysis the next run refits.
        writer.set_attrs(name, {"config": {k: acfg[k] for k in MODEL_KEYS}, "models": records,
                                "joint": acfg["joint"]})
        store.consolidate()
    summary.count_labels(StoreReader(path))  # from the stored per-block counts: no label is read
    summary.seconds = time.perf_counter() - t0
    return summary


def _label_station(writer, name: str, model: Model, s, summary: Summary, log) -> None:
    """Label the blocks of station ``s`` written since they were labelled, then record their
    counts, then their stamps: a crash before the stamps leaves old ones, so those blocks are
    labelled again and their counts replaced (never added to)."""
    chunks = chunks_to_label(writer.path, name, s)
    log(f"analyze: labelling {s.key}: {len(chunks)} chunk(s) of {s.chunk} windows")
    n_blocks = len(s.stamps)
    old = counts_missing(writer.path, name, s, chunks)
    if old:  # an analysis written before label_counts existed: its stored labels are counted once
        writer.write_counts(name, s.key, old, count_stored(writer.path, name, s, old, len(model.centroids) + 1),
                            n_blocks)
    written, counts = apply_model(writer, name, model, s, chunks)
    summary.labelled_now += written
    writer.write_counts(name, s.key, sorted(chunks), counts, n_blocks)
    writer.write_stamps(name, s.key, sorted(chunks), s.stamps)
    summary.stations.append(s.key)


def _stored_model(reader, name: str, key: str | None, members: list, log_floor: float) -> Model:
    """The model stored for ``key`` (None: the joint one), refused when ``members``' features are
    laid out otherwise (InputError)."""
    model = Model.from_dataset(reader.analysis_model(name, key), log_floor)
    # A station's channels can grow (a new channel joins its group): a stored model never
    # meets features laid out otherwise than those it was fitted on.
    want = joint_layout(members) if key is None else members[0].layout()
    if want.codes != model.layout.codes or want.n_features != model.layout.n_features:
        whose = "the stations'" if key is None else f"station {key}'s"
        raise InputError(f"analysis {name!r}: {whose} channels or frequencies differ from the "
                         f"stored model's ({', '.join(model.layout.codes)} now "
                         f"{', '.join(want.codes)}); use --refit")
    return model


def _fit_and_write(writer, name: str, key: str | None, members: list, acfg, log, summary: Summary):
    """Fit the model of ``members`` (``key`` None: the joint one), write it and note the fit in
    ``summary``; returns the stations it applies to, the model and its fit record."""
    layout = joint_layout(members) if key is None else members[0].layout()
    log("analyze: drawing the sample" + (f" of {key}" if key else "") + " ...")
    fit = fit_model(members, layout, acfg, log, summary.skipped)
    model = fit.model
    if fit.noise_paths:
        msg = (f"warning: log_floor = 0 on a float32 store: {fit.noise_paths} of "
               f"{layout.n_features} paths have values below float32 noise "
               f"({FLOAT32_NOISE:.1e} x the largest value); their log10 is noise "
               "(a log_floor of 1e-4 keeps them out)")
        summary.warnings.append(msg)
        log(msg)
    writer.write_model(name, key, model.dataset())
    record = {"sample": fit.sample, "explained_variance": fit.explained,
              "fitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    summary.fitted = True
    summary.sample += fit.sample
    summary.explained[key] = fit.explained
    return fit.stations, model, record


def parse_explore(text: str) -> list[int]:
    """``"2:10"`` -> ``[2, ..., 10]`` (inclusive); ``"3,5,8"`` -> ``[3, 5, 8]``.

    Raises
    ------
    ConfigError
        Not a range or list of positive integers, or a decreasing range.
    """
    try:
        if ":" in text:
            a, b = (int(v) for v in text.split(":"))
            counts = list(range(a, b + 1))
        else:
            counts = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--explore: expected a range like 2:10 or a list like 3,5,8, got {text!r}") from None
    if ":" in text and not counts:
        a, b = text.split(":")
        raise ConfigError(f"--explore: the range {text} must be increasing (first count <= last, e.g. {b}:{a})")
    if not counts or min(counts) < 1:
        raise ConfigError(f"--explore: component counts must be positive integers, got {text!r}")
    return counts

