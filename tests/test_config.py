"""Unit tests of the configuration (scatflow.config): every key, every error, immutability."""

import re
from pathlib import Path

import pytest

from scatflow.config import load_config, parse_config
from scatflow.schema import SCHEMA
from scatflow.errors import ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"
LAYER = {"octaves": 6, "resolution": 4, "quality": 2}


def minimal(**sections):
    raw = {"input": {"paths": ["data/*.mseed"]}, "network": {"layers": [dict(LAYER)]}, "output": {"store": "r.zarr"}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def error_of(raw) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, base=Path("/cfg"), source="run.toml")
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_defaults_are_the_schema_defaults():
    cfg = parse_config(minimal(), base=Path("/cfg"))
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            value = getattr(cfg, section)[key]
            if key in ("paths", "store", "layers"):
                continue  # given in `minimal`
            expected = tuple(spec.default) if isinstance(spec.default, list) else spec.default
            assert value == expected, f"{section}.{key}"
    assert cfg.hop_s == 20.0


def test_every_key_is_accepted_and_kept():
    raw = minimal(
        input={"select": ["X9.*.*.HH?"], "start": "2015-12-04T00:00:00", "end": "2015-12-05T00:00:00",
               "recheck_days": 3.5, "storage_options": {"anon": True}},
        network={"window_s": 30, "overlap": 0.25, "reduce": "max", "min_coverage": 0.5},
        output={"dtype": "float64", "block_s": 3600.0 - 3600.0 % 22.5,
                "storage_options": {"endpoint_url": "http://127.0.0.1:9000"}},
        cluster={"kind": "slurm", "workers": 3, "threads_per_worker": 2, "memory_limit": "2GB", "dashboard": False,
                 "queue": "q", "account": "a", "walltime": "01:00:00", "cores": 4, "memory": "8GB", "processes": 2,
                 "jobs": 5, "minimum_jobs": 1, "maximum_jobs": 9, "interface": "ib0",
                 "job_extra_directives": ["--qos=long"], "job_script_prologue": ["module load x"],
                 "lifetime": "55m", "lifetime_stagger": "2m", "local_directory": "/scratch",
                 "log_directory": "logs", "tls": False},
        preprocess={"inventory": ["meta/*.xml"], "response": "velocity", "pre_filt": [0.05, 0.1, 20.0, 24.0],
                    "water_level": 40.0, "filter": {"type": "highpass", "freq": 1.0, "corners": 2, "zerophase": True},
                    "sampling_rate": 40.0, "pad_s": 120.0, "storage_options": {"anon": False}},
        analysis={"name": "ica2", "stations": ["X9.*.*"], "joint": False, "match": "component", "log_floor": 0.0, "normalize": "minmax",
                  "sample": 5000, "components": 6, "seed": 1, "clusters": 5, "cluster_seed": 2},
    )
    cfg = parse_config(raw, base=Path("/cfg"))
    for section, values in raw.items():
        for key, value in values.items():
            got = getattr(cfg, section)[key]
            if key in ("paths", "store", "inventory"):
                continue
            expected = tuple(value) if isinstance(value, list) and key != "layers" else value
            if key == "layers":
                expected = tuple(dict(v, quality=float(v["quality"])) for v in value)
                got = tuple(dict(v) for v in got)
            assert got == expected, f"{section}.{key}"
    # Every key of the schema was exercised here (a new key needs a line above).
    given = {(s, k) for s, v in raw.items() for k in v}
    assert given >= {(s, k) for s, keys in SCHEMA.items() for k in keys} - {("input", "sds"), ("network", "design")}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    raw = minimal(network={"design": "net.json"})
    del raw["network"]["layers"]
    cfg = parse_config(raw, base=Path("/cfg"))
    assert cfg.input["paths"] == ("/cfg/data/*.mseed",)
    assert parse_config(minimal(preprocess={"inventory": ["meta/*.xml"]}), base=Path("/cfg")).preprocess["inventory"] \
        == ("/cfg/meta/*.xml",)
    assert cfg.output["store"] == "/cfg/r.zarr"
    assert cfg.network["design"] == "/cfg/net.json"
    raw = minimal(input={"sds": "/abs/SDS", "start": "2015-01-01", "end": "2015-01-02"})
    del raw["input"]["paths"]
    sds = parse_config(raw, base=Path("/cfg"))
    assert sds.input["sds"] == "/abs/SDS"


def test_sections_are_read_only_after_validation():
    cfg = parse_config(minimal(), base=Path("/cfg"))
    with pytest.raises(TypeError):
        cfg.output["store"] = "elsewhere.zarr"
    with pytest.raises(TypeError):
        cfg.network["layers"][0]["octaves"] = 3
    with pytest.raises(AttributeError):
        cfg.input["paths"].append("more")
    plain = cfg.resolved()
    assert isinstance(plain["network"]["layers"], list) and isinstance(plain["network"]["layers"][0], dict)
    plain["output"]["store"] = "changed"
    assert cfg.output["store"] == "/cfg/r.zarr"


def test_load_config_reads_toml_and_applies_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[input]\npaths = ["d/*.mseed"]\n[network]\nlayers = [{octaves = 6, resolution = 4, quality = 2}]\n'
                    '[output]\nstore = "out.zarr"\n[cluster]\nworkers = 1\n')
    cfg = load_config(path, {"cluster": {"workers": 4, "kind": None}})
    assert cfg.cluster["workers"] == 4 and cfg.cluster["kind"] == "local"
    assert cfg.output["store"] == str(tmp_path / "out.zarr")


@pytest.mark.parametrize(
    "contents, message",
    [
        (None, r"run\.toml: config file not found$"),
        ("[input\n", r"run\.toml: invalid TOML"),
    ],
)
def test_unreadable_config_files(tmp_path, contents, message):
    path = tmp_path / "run.toml"
    if contents is not None:
        path.write_text(contents)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


ERRORS = [
    ({"inputs": {}}, r"unknown section \[inputs\]"),
    ({"input": {"pahts": ["x"]}}, r"unknown key 'input.pahts' \(did you mean 'paths'\?\)"),
    ({"network": {"window_s": "40"}}, r"'network.window_s' must be an integer or a number, got str '40'"),
    ({"network": {"window_s": True}}, r"'network.window_s' must be an integer or a number, got a boolean"),
    ({"output": {"store": None}}, r"missing required key 'output.store'"),
    ({"input": {"sds": "/SDS"}}, r"give exactly one of 'input.paths' or 'input.sds'"),
    ({"input": {"paths": []}}, r"'input.paths' must be a non-empty list of path globs"),
    ({"input": {"paths": None, "sds": "/SDS", "end": "2015-01-02"}}, r"'input.start' is required with 'input.sds'"),
    ({"input": {"select": ["HHZ"]}}, r"'input.select' must list SEED id patterns NET.STA.LOC.CHA"),
    ({"input": {"start": "yesterday"}}, r"'input.start' is not a UTC time: 'yesterday'"),
    ({"input": {"start": "2015-01-02", "end": "2015-01-01"}}, r"'input.end' must be after 'input.start'"),
    ({"network": {"window_s": -1.0}}, r"'network.window_s' must be a positive number of seconds, got -1.0"),
    ({"network": {"overlap": 1.0}}, r"'network.overlap' must be in \[0, 1\), got 1.0"),
    ({"network": {"reduce": "sum"}}, r"'network.reduce' must be median, max or mean, got 'sum'"),
    ({"network": {"min_coverage": 1.5}}, r"'network.min_coverage' must be in \[0, 1\], got 1.5"),
    ({"network": {"design": "net.json"}}, r"give exactly one of 'network.layers' or 'network.design'"),
    ({"network": {"layers": []}}, r"'network.layers' must hold at least one layer"),
    ({"network": {"layers": [3]}}, r"'network.layers\[0\]' must be a table"),
    ({"network": {"layers": [dict(LAYER, qualty=2)]}}, r"'network.layers\[0\]': unknown key 'qualty' \(did you mean 'quality'\?\)"),
    ({"network": {"layers": [{"octaves": 6, "quality": 2}]}}, r"'network.layers\[0\]': missing 'resolution'"),
    ({"network": {"layers": [dict(LAYER, octaves=0)]}}, r"octaves and resolution must be >= 1 and quality > 0"),
    ({"network": {"layers": [dict(LAYER, normalize_wavelet="L3")]}}, r"normalize_wavelet must be 'L1' or 'L2', got 'L3'"),
    ({"output": {"dtype": "float16"}}, r"'output.dtype' must be float32 or float64, got 'float16'"),
    ({"output": {"block_s": 3610.0}}, r"'output.block_s' \(3610.0 s\) must be a positive multiple of the hop \(20.0 s\)"),
    ({"cluster": {"kind": "kubernetes"}}, r"'cluster.kind' must be one of local, slurm, pbs, sge or a scheduler address"),
    ({"cluster": {"job_extra_directives": ["--qos", 3]}}, r"'cluster.job_extra_directives' must be a list of strings"),
    ({"cluster": {"workers": 0}}, r"'cluster.workers' must be at least 1, got 0"),
    ({"cluster": []}, r"\[cluster\] must be a table"),
]


@pytest.mark.parametrize("change, message", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_each_mistake_gets_one_line_naming_the_key(change, message):
    raw = minimal()
    for section, values in change.items():
        if not isinstance(values, dict):
            raw[section] = values
            continue
        raw.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                raw[section].pop(key, None)
            else:
                raw.setdefault(section, {})[key] = value
    msg = error_of(raw)
    assert msg.startswith("run.toml: ")
    assert re.search(message, msg), msg


def test_readme_documents_every_key():
    text = README.read_text()
    for section, keys in SCHEMA.items():
        for key in keys:
            assert f"`{section}.{key}`" in text or re.search(rf"`{section}\.\w+`, `{section}\.{key}`", text), (
                f"{section}.{key} is not in the README's key table")
