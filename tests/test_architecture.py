"""The layout rules of docs/architecture.md, checked on the source: a rule nobody checks drifts."""

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "scatflow"
STDLIB = set(sys.stdlib_module_names)


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a module (relative imports as '.name')."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "kernel").glob("*.py")), ids=lambda p: p.name)
def test_the_kernel_imports_only_numpy_scipy_and_itself(path):
    outside = {m for m in imported_modules(path)
               if m not in STDLIB and m not in ("numpy", "scipy", "__future__") and not m.startswith(".")}
    assert not outside, f"{path.name} imports {sorted(outside)}"
    # Relative imports stay inside the kernel package (one dot), never reach the workflow.
    assert not any(m.startswith("..") for m in imported_modules(path)), path.name


# zarr's module-level writers; a scatflow Store's methods of the same names are the allowed path.
ZARR_WRITERS = {"zarr.consolidate_metadata", "zarr.create_array", "zarr.create_group", "zarr.save", "zarr.create"}


def zarr_writes(path: Path) -> list[str]:
    """Calls that write a Zarr store (``to_zarr``, opens in a writing mode, attribute assignments)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.endswith(".to_zarr") or name in ZARR_WRITERS:
                found.append(f"{path.name}:{node.lineno} {name}")
            for kw in node.keywords:
                if kw.arg == "mode" and isinstance(kw.value, ast.Constant) and kw.value.value in ("r+", "a", "w", "w-"):
                    found.append(f"{path.name}:{node.lineno} mode={kw.value.value}")
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and ast.unparse(target.value).endswith("attrs"):
                    found.append(f"{path.name}:{node.lineno} attrs[...] =")
    return found


# The store layer: store.py, and relay.py, which re-lays a group along `channel` for Store.add_channels.
STORE_LAYER = {"store.py", "relay.py"}


def test_only_the_store_module_writes_zarr():
    writers = {p.name for p in PACKAGE.rglob("*.py") if zarr_writes(p)}
    assert writers <= STORE_LAYER, [w for p in PACKAGE.rglob("*.py") if p.name not in STORE_LAYER
                                    for w in zarr_writes(p)]


def test_no_private_imports_across_modules():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                offenders += [f"{path.name}: {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.endswith("__")]
    assert not offenders, offenders


def test_code_cites_no_file_outside_the_repository():
    cited = [p.name for p in PACKAGE.rglob("*.py") if re.search(r"\bSPEC\b|FACTS\.md|\.\./shared", p.read_text())]
    assert not cited, cited
