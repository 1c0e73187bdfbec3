"""The TOML schema of a run configuration: every section and key once, with its type, default
and a line of help (the README's key table is this table).

Declarations only: :mod:`scatflow.config` reads a file against them, validates
the values and resolves paths.
"""

from __future__ import annotations

import dataclasses
import typing as T

#: The default of a key the file must give.
REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of :data:`SCHEMA` (``default`` is :data:`REQUIRED` for a key the file must give)."""

    type: T.Any  # a type or tuple of types accepted from TOML
    default: T.Any
    doc: str


# section -> key -> Key. The order is the README's order.
SCHEMA: dict[str, dict[str, Key]] = {
    "input": {
        "paths": Key(list, None, "globs of waveform files ObsPy can read (miniSEED...), relative to the config"),
        "sds": Key(str, None, "root of an SDS archive (YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY), a path or URL"),
        "select": Key(list, ["*.*.*.*"], "SEED id patterns NET.STA.LOC.CHA with shell wildcards"),
        "start": Key(str, None, "UTC start of the span (ISO 8601); default: first sample (paths only)"),
        "end": Key(str, None, "UTC end of the span, exclusive; default: just after the last sample (paths only)"),
        "recheck_days": Key((int, float), 10.0, "done blocks ending within this many days of a station's newest "
                            "window are checked for late or changed input files on every run"),
        "storage_options": Key(dict, None, "archive: connection settings for s3:// URLs, s3fs's names (endpoint_url, "
                               "anon, key, secret, client_kwargs); credentials never recorded"),
    },
    "network": {
        "window_s": Key((int, float), 40.0, "window duration in seconds (bins = window_s x sampling rate)"),
        "overlap": Key((int, float), 0.5, "fraction of a window shared with the next one, in [0, 1)"),
        "reduce": Key(str, "median", "pooling over each window: median | max | mean"),
        "layers": Key(list, None, "one table per layer: octaves, resolution, quality, normalize_wavelet"),
        "design": Key(str, None, "instead of layers: a JSON design or scatseisnet pickle (fixes the sampling rate)"),
        "min_coverage": Key(
            (int, float), 1.0, "fraction of recorded samples a window needs to get coefficients (else NaN)"
        ),
    },
    "output": {
        "store": Key(str, REQUIRED, "Zarr store directory (relative to the config) or URL (s3://bucket/prefix) to write"),
        "dtype": Key(str, "float32", "coefficient precision: float32 | float64"),
        "block_s": Key((int, float), 21600.0, "time block per task and Zarr chunk along time, seconds"),
        "storage_options": Key(dict, None, "store: connection settings for s3:// URLs, s3fs's names (endpoint_url, "
                               "anon, key, secret, client_kwargs); credentials never recorded"),
    },
    "cluster": {
        "kind": Key(str, "local", "local | a scheduler address tcp://host:port"),
        "workers": Key(int, None, "local: worker processes (default: one per core)"),
        "threads_per_worker": Key(int, 1, "local: threads per worker process"),
        "memory_limit": Key(str, "auto", "local: memory limit per worker, e.g. '2GB' (dask syntax)"),
        "dashboard": Key(bool, True, "local: serve the Dask dashboard on 127.0.0.1"),
        # Job schedulers (slurm | pbs | sge) through dask-jobqueue; unset keys keep the defaults
        # of dask's jobqueue.yaml (see deploy/jobqueue.yaml).
        "queue": Key(str, None, "jobs: queue / partition"),
        "account": Key(str, None, "jobs: account / project to charge"),
        "walltime": Key(str, None, "jobs: walltime per worker job, e.g. '02:00:00'"),
        "cores": Key(int, None, "jobs: cores per worker job"),
        "memory": Key(str, None, "jobs: memory per worker job, e.g. '8GB'"),
        "processes": Key(int, None, "jobs: worker processes per job (cores are shared among them)"),
        "jobs": Key(int, 1, "jobs: number of worker jobs kept running"),
        "minimum_jobs": Key(int, None, "jobs: adaptive scaling, fewest jobs"),
        "maximum_jobs": Key(int, None, "jobs: adaptive scaling, most jobs"),
        "interface": Key(str, None, "jobs: network interface the scheduler and workers use, e.g. 'ib0'"),
        "job_extra_directives": Key(list, None, "jobs: extra #SBATCH/#PBS/#$ lines, e.g. ['--qos=long']"),
        "job_script_prologue": Key(list, None, "jobs: shell lines run before the worker (module load, venv)"),
        "lifetime": Key(str, None, "jobs: retire workers after this long (below walltime), e.g. '55m'; "
                        "retired workers are replaced by new jobs"),
        "lifetime_stagger": Key(str, "1m", "jobs: random spread of worker lifetimes"),
        "local_directory": Key(str, None, "jobs: scratch directory on the compute nodes"),
        "log_directory": Key(str, None, "jobs: where job stdout/stderr go"),
        "tls": Key(bool, True, "jobs: encrypt and authenticate scheduler-worker traffic with a temporary certificate"),
    },
    # Applied to the samples before windowing, in this order; each step is off unless its key is set.
    "preprocess": {
        "inventory": Key(list, None, "StationXML globs (ObsPy read_inventory): responses and channel coordinates"),
        "response": Key(str, "none", "none | sensitivity | displacement | velocity | acceleration (ObsPy "
                        "remove_sensitivity / remove_response)"),
        "pre_filt": Key(list, None, "four corner frequencies in Hz of remove_response's pre_filt (required for "
                        "a full response)"),
        "water_level": Key((int, float), 60.0, "remove_response water_level, dB"),
        "filter": Key(dict, None, "Butterworth filter as ObsPy Trace.filter: { type = 'highpass', freq = 1.0, "
                      "corners = 4, zerophase = true }, or bandpass (freqmin, freqmax) or lowpass (freq)"),
        "sampling_rate": Key((int, float), None, "resample every channel to this rate, Hz (scipy resample_poly)"),
        "pad_s": Key((int, float), None, "margin processed each side of a block and masked at data edges, seconds "
                     "(default: twice the longest transient of the steps)"),
        "storage_options": Key(dict, None, "inventory: connection settings for s3:// URLs, s3fs's names (endpoint_url, "
                               "anon, key, secret, client_kwargs); credentials never recorded"),
    },
    # scatflow analyze: independent components and clusters of the stored coefficients.
    "analysis": {
        "name": Key(str, "ica", "results go to the group analysis/<name> of the store"),
        "stations": Key(list, ["*"], "station patterns NET.STA.LOC with shell wildcards"),
        "joint": Key(bool, True, "one model for all stations (false: one model per station)"),
        "match": Key(str, "code", "how a joint model aligns channels: code (full CHA) | component (last letter)"),
        "log_floor": Key((int, float), 1e-4, "features are log10(x + log_floor * M), M the largest value of "
                         "the same order in the fitting sample; 0 = plain log10"),
        "normalize": Key(str, "none", "none | minmax (one global min and max) | standard (per feature)"),
        "sample": Key(int, 200000, "windows drawn (seeded, spread over stations and time) to fit"),
        "components": Key(int, 4, "independent components (FastICA n_components)"),
        "seed": Key(int, 42, "FastICA random_state"),
        "clusters": Key(int, 4, "KMeans n_clusters"),
        "cluster_seed": Key(int, 4, "KMeans random_state"),
    },
}

CLUSTER_KINDS = ("local", "slurm", "pbs", "sge")

LAYER_KEYS = {"octaves": int, "resolution": int, "quality": (int, float), "normalize_wavelet": str}
