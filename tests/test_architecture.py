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


@pytest.mark.parametrize("path", sorted((PACKAGE / "scattering" / "kernel").glob("*.py")), ids=lambda p: p.name)
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


def test_only_the_store_package_writes_zarr():
    writers = {p.relative_to(PACKAGE).parts[0] for p in PACKAGE.rglob("*.py") if zarr_writes(p)}
    assert writers == {"store"}, [w for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "store"
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


# -- the import rules between subpackages (docs/architecture.md, "Layout") ------------------------
SUBPACKAGES = ("scattering", "inputs", "workflow", "store", "analysis", "synthetic")
#: What each subpackage may import of scatflow (besides itself); the top-level modules ``errors``,
#: ``location`` (paths and URLs) and ``config`` are the shared vocabulary, everything else at the top
#: (cli, report, plot) is a user.
MAY_IMPORT = {
    "scattering": {"errors"},
    "inputs": {"errors", "location", "scattering"},
    "store": {"errors", "location", "scattering", "inputs"},
    "workflow": {"errors", "location", "config", "scattering", "inputs", "store"},
    "analysis": {"errors", "location", "config", "scattering", "inputs", "store", "plot"},
    "synthetic": {"errors", "location", "scattering", "inputs", "store"},
}


def scatflow_imports(path: Path, source: str | None = None) -> set[str]:
    """The scatflow modules the module at ``path`` imports (its text, or ``source`` as if it stood
    there), as dotted names under scatflow ("store.writer", "errors"), relative imports resolved."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    package = list(rel[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = base + (node.module.split(".") if node.module else [])
            if node.module:
                found.add(".".join(target))
            else:
                found |= {".".join(target + [a.name]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "scatflow":
            rest = node.module.split(".")[1:]
            found |= {".".join(rest)} if rest else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {".".join(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "scatflow"}
    return found


def owner(dotted: str) -> str:
    """The subpackage or top-level module a dotted name under scatflow belongs to."""
    return dotted.split(".")[0]


def forbidden_imports(paths, source: str | None = None) -> list[str]:
    bad = []
    for path in paths:
        me = path.relative_to(PACKAGE).parts[0]
        if me not in SUBPACKAGES:
            continue
        for target in scatflow_imports(path, source):
            top = owner(target)
            if not ((PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file()):
                continue  # an attribute of the package itself (__version__)
            if top != me and top not in MAY_IMPORT[me]:
                bad.append(f"{path.relative_to(PACKAGE)} imports scatflow.{target}")
    return bad


def test_subpackages_import_only_what_their_rules_allow():
    assert not forbidden_imports(sorted(PACKAGE.rglob("*.py")))


def test_the_kernel_imports_nothing_of_scatflow():
    kernel = sorted((PACKAGE / "scattering" / "kernel").glob("*.py"))
    assert kernel
    outside = [f"{p.name}: {t}" for p in kernel for t in scatflow_imports(p) if not t.startswith("scattering.kernel")]
    assert not outside, outside


def test_nothing_imports_the_command_line():
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "cli" in {owner(t) for t in scatflow_imports(p)}]
    assert not users, users


@pytest.mark.parametrize("source, rule", [
    ("from ..workflow.run import run\n", "store"),
    ("from ...analysis.analyze import analyze\n", "store"),
    ("from ..workflow import plan\n", "analysis"),
    ("from ..store.writer import Store\n", "inputs"),
    ("from scatflow.store import reader\n", "inputs"),
    ("import scatflow.cli\n", "workflow"),
])
def test_the_rule_test_catches_a_forbidden_import(source, rule):
    """The rules above fail when a forbidden import is added: a subpackage's module with one more
    line, read as if it stood in its place."""
    module = sorted((PACKAGE / rule).glob("*.py"))[-1]
    probe = module.read_text() + "\n" + source
    assert not forbidden_imports([module])
    assert forbidden_imports([module], probe) or "cli" in {owner(t) for t in scatflow_imports(module, probe)}


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_the_public_api_imports():
    import scatflow
    from scatflow import ScatteringNetwork, load_network, open_results, transform_stream  # noqa: F401
    from scatflow.synthetic import synthetic_day, write_day  # noqa: F401

    assert callable(scatflow.open_results) and scatflow.ScatteringNetwork is ScatteringNetwork


def test_long_functions_carry_a_docstring():
    """A function over about 60 lines says what it does before a reader has to work it out."""
    undocumented = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                if not ast.get_docstring(node):
                    undocumented.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert not undocumented, undocumented
