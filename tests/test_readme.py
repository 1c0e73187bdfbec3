"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## In Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["order_1"].shape == (10, 3, 24) and namespace["order_2"].shape == (10, 3, 24, 6)
    assert namespace["ds"].sizes["time"] == 179
    assert (tmp_path / "network.json").is_file()
    assert "f2" in capsys.readouterr().out
