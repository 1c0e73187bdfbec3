"""Run configuration: a TOML file parsed (never evaluated) and validated up front.

Every key is declared once in :data:`scatflow.schema.SCHEMA` with its type, default and a
one-line description (the README's key table is this table). Unknown or
mistyped keys are rejected by name, relative paths are resolved against the
config file's folder.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing as T
from pathlib import Path

from obspy import UTCDateTime

from .errors import ConfigError
from .location import as_location, check_options, is_url, public_options
from .schema import CLUSTER_KINDS, LAYER_KEYS, REQUIRED, SCHEMA, Key


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated run configuration (see :data:`scatflow.schema.SCHEMA` for the keys).

    Sections are read-only mappings (lists inside them are tuples): a
    validated configuration cannot be changed by the code that uses it.
    """

    path: Path | None
    input: T.Mapping
    network: T.Mapping
    output: T.Mapping
    cluster: T.Mapping
    preprocess: T.Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    analysis: T.Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def store(self):
        """``output.store``: a local path (str) or a :class:`~scatflow.location.Url`."""
        return self.output["store"]

    @property
    def hop_s(self) -> float:
        """Seconds between window starts."""
        return hop_seconds(self.network)

    def resolved(self) -> dict:
        """The configuration as a plain dict (for provenance): connection settings keep only what
        may be written down (endpoint, anonymous access, region), never a credential."""
        out = {name: thaw(getattr(self, name)) for name in SCHEMA}
        for section in out.values():
            if section.get("storage_options") is not None:
                section["storage_options"] = public_options(section["storage_options"])
        return out


def freeze(value):
    """A read-only copy: mappings become ``MappingProxyType``, lists tuples (recursively)."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value):
    """The plain dicts and lists of a :func:`freeze`-d value (for JSON and other libraries)."""
    if isinstance(value, T.Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Read and validate a TOML run configuration.

    Parameters
    ----------
    path : str or Path
        The TOML file.
    overrides : dict, optional
        ``{section: {key: value}}`` applied over the file (command-line options).

    Raises
    ------
    ConfigError
        Unreadable file, TOML syntax error, unknown section or key, wrong type
        or out-of-range value; the message names the file and key.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    return parse_config(raw, base=path.parent, source=str(path))


def parse_config(raw: dict, base: Path | None = None, source: str = "config") -> Config:
    """Validate a config dict (as TOML gives it); see :func:`load_config`."""
    unknown = set(raw) - set(SCHEMA)
    if unknown:
        raise ConfigError(f"{source}: unknown section [{sorted(unknown)[0]}] (known: {', '.join(SCHEMA)})")
    sections = {}
    for name, keys in SCHEMA.items():
        given = raw.get(name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        extra = set(given) - set(keys)
        if extra:
            key = sorted(extra)[0]
            hint = _close_match(key, keys)
            raise ConfigError(f"{source}: unknown key '{name}.{key}'" + (f" (did you mean '{hint}'?)" if hint else ""))
        values = {}
        for key, spec in keys.items():
            if key in given:
                values[key] = _typed(given[key], spec, f"{source}: '{name}.{key}'")
            elif spec.default is REQUIRED:
                raise ConfigError(f"{source}: missing required key '{name}.{key}'")
            else:
                values[key] = spec.default
        sections[name] = values
    _check(sections, base, source, block_given="block_s" in raw.get("output", {}))
    return Config(path=None if base is None else Path(source), **{k: freeze(v) for k, v in sections.items()})


def _typed(value, spec: Key, where: str):
    types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    # TOML booleans are ints in Python; never accept one for a number.
    if isinstance(value, bool) and bool not in types:
        raise ConfigError(f"{where} must be {_type_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(f"{where} must be {_type_names(types)}, got {type(value).__name__} {value!r}")
    if float in types and isinstance(value, int):
        value = float(value)
    return value


def _type_names(types) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true or false",
             dict: "a table"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def hop_seconds(network: T.Mapping) -> float:
    """Seconds between window starts of a ``[network]`` section: ``window_s * (1 - overlap)``."""
    return network["window_s"] * (1.0 - network["overlap"])


def _check(sections: dict, base: Path | None, source: str, block_given: bool = True) -> None:
    """Validate the sections and resolve their paths, in place, before they are frozen
    (``block_given``: the file sets ``output.block_s`` itself, so a bad block is its fault)."""

    def resolve(p: str) -> str:
        if is_url(p):
            return p
        q = Path(p).expanduser()
        return str(q if q.is_absolute() or base is None else (base / q))

    for name in ("input", "output", "preprocess"):
        sections[name]["storage_options"] = check_options(sections[name]["storage_options"],
                                                          f"{source}: '{name}.storage_options'")
    _check_input(sections["input"], resolve, source)
    _check_network(sections["network"], resolve, source)
    _check_output(sections["output"], sections["network"], resolve, source, block_given)
    _check_cluster(sections["cluster"], source)
    _check_preprocess(sections["preprocess"], resolve, source, sections["output"]["block_s"])
    _check_analysis(sections["analysis"], source)
    _attach_options(sections)


def _attach_options(sections: dict) -> None:
    """Turn each URL of a section into a :class:`~scatflow.location.Url` carrying the section's
    ``storage_options``, so that they travel with it (and only with it) to every reader."""
    def located(name: str, value):
        options = sections[name]["storage_options"]
        if isinstance(value, list):
            return [located(name, v) for v in value]
        return as_location(value, options) if is_url(value) else value

    inp, out, pre = sections["input"], sections["output"], sections["preprocess"]
    for key in ("paths", "sds"):
        if inp[key] is not None:
            inp[key] = located("input", inp[key])
    out["store"] = located("output", out["store"])
    if pre["inventory"] is not None:
        pre["inventory"] = located("preprocess", pre["inventory"])


def _check_input(inp: dict, resolve, source: str) -> None:
    if (inp["paths"] is None) == (inp["sds"] is None):
        raise ConfigError(f"{source}: give exactly one of 'input.paths' or 'input.sds'")
    if inp["paths"] is not None:
        if not inp["paths"] or not all(isinstance(p, str) for p in inp["paths"]):
            raise ConfigError(f"{source}: 'input.paths' must be a non-empty list of path globs")
        inp["paths"] = [resolve(p) for p in inp["paths"]]
    else:
        inp["sds"] = resolve(inp["sds"])
        for key in ("start", "end"):
            if inp[key] is None:
                raise ConfigError(f"{source}: 'input.{key}' is required with 'input.sds'")
    if not inp["select"] or not all(isinstance(p, str) and p.count(".") == 3 for p in inp["select"]):
        raise ConfigError(f"{source}: 'input.select' must list SEED id patterns NET.STA.LOC.CHA, e.g. '*.*.*.HH?'")
    for key in ("start", "end"):
        if inp[key] is not None:
            try:
                UTCDateTime(inp[key])
            except Exception:
                raise ConfigError(f"{source}: 'input.{key}' is not a UTC time: {inp[key]!r}") from None
    if inp["start"] is not None and inp["end"] is not None and UTCDateTime(inp["end"]) <= UTCDateTime(inp["start"]):
        raise ConfigError(f"{source}: 'input.end' must be after 'input.start'")
    if not (math.isfinite(inp["recheck_days"]) and inp["recheck_days"] >= 0):
        raise ConfigError(f"{source}: 'input.recheck_days' must be a number of days >= 0, got {inp['recheck_days']!r}")


def _check_network(net: dict, resolve, source: str) -> None:
    window = net["window_s"]
    if not math.isfinite(window) or window <= 0:
        raise ConfigError(f"{source}: 'network.window_s' must be a positive number of seconds, got {window}")
    if not 0.0 <= net["overlap"] < 1.0:
        raise ConfigError(f"{source}: 'network.overlap' must be in [0, 1), got {net['overlap']}")
    if net["reduce"] not in ("median", "max", "mean"):
        raise ConfigError(f"{source}: 'network.reduce' must be median, max or mean, got {net['reduce']!r}")
    if not 0.0 <= net["min_coverage"] <= 1.0:
        raise ConfigError(f"{source}: 'network.min_coverage' must be in [0, 1], got {net['min_coverage']}")
    if (net["layers"] is None) == (net["design"] is None):
        raise ConfigError(f"{source}: give exactly one of 'network.layers' or 'network.design'")
    if net["layers"] is not None:
        net["layers"] = [_check_layer(i, layer, source) for i, layer in enumerate(net["layers"])]
        if not net["layers"]:
            raise ConfigError(f"{source}: 'network.layers' must hold at least one layer")
    else:
        net["design"] = resolve(net["design"])


def _check_output(out: dict, net: dict, resolve, source: str, block_given: bool = True) -> None:
    if out["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"{source}: 'output.dtype' must be float32 or float64, got {out['dtype']!r}")
    out["store"] = resolve(out["store"])
    hop = hop_seconds(net)
    blocks = out["block_s"] / hop
    if out["block_s"] <= 0 or abs(blocks - round(blocks)) > 1e-9 or round(blocks) < 1:
        if not block_given and out["block_s"] > 0:
            # The user chose the window, not the block: name what they wrote.
            raise ConfigError(
                f"{source}: 'network.window_s' ({net['window_s']:g} s) with 'network.overlap' ({net['overlap']:g}) "
                f"gives a hop of {hop:g} s, which does not divide the default 'output.block_s' "
                f"({out['block_s']:g} s); choose a window whose hop divides it (e.g. {_nearby_windows(net, out['block_s'])}) "
                f"or set 'output.block_s' to a multiple of the hop")
        raise ConfigError(
            f"{source}: 'output.block_s' ({out['block_s']} s) must be a positive multiple of the hop ({hop} s)"
        )


def _nearby_windows(net: dict, block_s: float) -> str:
    """Two window durations (s) near ``network.window_s`` whose hop divides ``block_s`` (whole
    hundredths of a second, so they are whole samples at the usual rates)."""
    keep = 1.0 - net["overlap"]
    found = []
    for step in range(1, 100000):
        for w in (net["window_s"] - step / 100, net["window_s"] + step / 100):
            w = round(w, 2)
            per = block_s / (w * keep) if w > 0 else 0
            if w > 0 and abs(per - round(per)) < 1e-9 and w not in found:
                found.append(w)
        if len(found) >= 2:
            break
    return " or ".join(f"{w:g} s" for w in sorted(found[:2]))


def _check_cluster(clu: dict, source: str) -> None:
    kind = clu["kind"]
    if kind not in CLUSTER_KINDS and not kind.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ConfigError(
            f"{source}: 'cluster.kind' must be one of {', '.join(CLUSTER_KINDS)} or a scheduler address "
            f"tcp://host:port, got {kind!r}"
        )
    for key in ("job_extra_directives", "job_script_prologue"):
        if clu[key] is not None and not all(isinstance(v, str) for v in clu[key]):
            raise ConfigError(f"{source}: 'cluster.{key}' must be a list of strings")
    for key in ("workers", "threads_per_worker", "cores", "processes", "jobs", "minimum_jobs", "maximum_jobs"):
        if clu[key] is not None and clu[key] < 1:
            raise ConfigError(f"{source}: 'cluster.{key}' must be at least 1, got {clu[key]}")


def _check_preprocess(pre: dict, resolve, source: str, block_s: float) -> None:
    from .inputs.preprocess import check_section

    if pre["inventory"] is not None:
        if not pre["inventory"] or not all(isinstance(p, str) for p in pre["inventory"]):
            raise ConfigError(f"{source}: 'preprocess.inventory' must be a non-empty list of StationXML globs")
        pre["inventory"] = [resolve(p) for p in pre["inventory"]]
    check_section(pre, source, block_s)


def _check_analysis(ana: dict, source: str) -> None:
    name = ana["name"]
    # The name is a Zarr group name under analysis/: no path separators, nothing hidden.
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ConfigError(f"{source}: 'analysis.name' must be letters, digits, '_' or '-', got {name!r}")
    if not ana["stations"] or not all(isinstance(p, str) and p for p in ana["stations"]):
        raise ConfigError(f"{source}: 'analysis.stations' must list station patterns on NET.STA.LOC, "
                          "e.g. ['*'] or ['X9.SV*.*']")
    if not math.isfinite(ana["log_floor"]) or ana["log_floor"] < 0:
        raise ConfigError(f"{source}: 'analysis.log_floor' must be a number >= 0, got {ana['log_floor']}")
    if ana["match"] not in ("code", "component"):
        raise ConfigError(f"{source}: 'analysis.match' must be code or component, got {ana['match']!r}")
    if ana["normalize"] not in ("none", "minmax", "standard"):
        raise ConfigError(f"{source}: 'analysis.normalize' must be none, minmax or standard, got {ana['normalize']!r}")
    for key in ("sample", "components", "clusters"):
        if ana[key] < 1:
            raise ConfigError(f"{source}: 'analysis.{key}' must be at least 1, got {ana[key]}")
    if ana["sample"] < 2:
        raise ConfigError(f"{source}: 'analysis.sample' must be at least 2, got {ana['sample']}")
    for key in ("seed", "cluster_seed"):
        if ana[key] < 0:
            raise ConfigError(f"{source}: 'analysis.{key}' must be >= 0, got {ana[key]}")


def _check_layer(i: int, layer, source: str) -> dict:
    where = f"{source}: 'network.layers[{i}]'"
    if not isinstance(layer, dict):
        raise ConfigError(f"{where} must be a table like {{ octaves = 6, resolution = 4, quality = 2 }}")
    for key in layer:
        if key not in LAYER_KEYS:
            hint = _close_match(key, LAYER_KEYS)
            raise ConfigError(f"{where}: unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else ""))
    for key in ("octaves", "resolution", "quality"):
        if key not in layer:
            raise ConfigError(f"{where}: missing '{key}'")
    out = {}
    for key, value in layer.items():
        out[key] = _typed(value, Key(LAYER_KEYS[key], None, ""), f"{where}.{key}")
    if out["octaves"] < 1 or out["resolution"] < 1 or out["quality"] <= 0:
        raise ConfigError(f"{where}: octaves and resolution must be >= 1 and quality > 0")
    if out.get("normalize_wavelet") not in (None, "L1", "L2"):
        raise ConfigError(f"{where}.normalize_wavelet must be 'L1' or 'L2', got {out['normalize_wavelet']!r}")
    return out


def _close_match(key: str, known) -> str | None:
    import difflib

    hits = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return hits[0] if hits else None
