"""The README's Python example runs as written and gives what it says."""

import re
from pathlib import Path

import numpy as np
from helpers import n_windows

import scatflow

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## In Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    network, ds = namespace["network"], namespace["ds"]
    f1, f2 = network.banks[0].centers, network.banks[1].centers
    assert (len(f1), len(f2)) == (24, 6)  # 6 octaves x 4 filters, 6 octaves x 1
    assert namespace["order_1"].shape == (10, 3, 24) and namespace["order_2"].shape == (10, 3, 24, 6)

    # The JSON design reloads to an equal network.
    assert scatflow.load_network(tmp_path / "network.json") == network

    # The synthetic hour in 40 s windows with 50 % overlap, every window complete.
    hour = n_windows(3600, 40.0, 20.0)  # 179
    assert dict(ds.sizes) == {"time": hour, "channel": 3, "f1": 24, "f2": 6}
    assert list(ds.channel.values) == ["X9.SV13..HHE", "X9.SV13..HHN", "X9.SV13..HHZ"]
    assert (ds.coverage.values == 1).all()

    # It prints HHZ's second-order coefficients' maximum over time, labeled by f1 and f2.
    peak = ds.order_2.sel(channel="X9.SV13..HHZ").max("time")
    assert out == f"{peak}\n"
    assert out.startswith("<xarray.DataArray 'order_2' (f1: 24, f2: 6)>"), out
    assert peak.dims == ("f1", "f2") and str(peak.channel.values) == "X9.SV13..HHZ"
    np.testing.assert_array_equal(peak.f1.values, f1)
    np.testing.assert_array_equal(peak.f2.values, f2)
    hhz = list(ds.channel.values).index("X9.SV13..HHZ")
    np.testing.assert_array_equal(peak.values, ds.order_2.values[:, hhz].max(axis=0))
    assert np.isfinite(peak.values).all() and (peak.values > 0).all()
