"""The packages' imports follow the data flow: core <- hls <- testbench / surrogate <- CLI and demo.

qfx (train, export) -> ONNX -> hls (convert, RTL) -> testbench (prove); surrogate reads the same graphs.
No module imports a layer above its own, and nothing is imported under a generic top-level name.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# installed package -> folder in the repo
FOLDERS = {"qfx.hls": "hls", "qfx.boards": "boards", "qfx.testbench": "testbench", "qfx.surrogate": "surrogate"}
CORE = ("qfx.fixed", "qfx.exact", "qfx.quant", "qfx.nn", "qfx.export", "qfx.data", "qfx.train", "qfx.models")
TOP = ("qfx.cli", "qfx.demo")
# what each layer may import from qfx (its own layer included)
ALLOWED = {
    "core": {"core"},
    "boards": {"boards"},
    "hls": {"core", "boards", "hls"},
    "testbench": {"core", "boards", "hls", "testbench"},
    "surrogate": {"core", "boards", "hls", "surrogate"},
    "top": {"core", "boards", "hls", "testbench", "surrogate", "top"},
}


def layer(module: str) -> str:
    if module == "qfx":
        return "core"  # the package's __init__ re-exports the fixed-point core
    for prefix, name in (*((p, "core") for p in CORE), *((p, "top") for p in TOP)):
        if module == prefix or module.startswith(prefix + "."):
            return name
    for package, folder in FOLDERS.items():
        if module == package or module.startswith(package + "."):
            return folder
    raise AssertionError(f"module {module} belongs to no layer: add it to tests/test_layering.py")


@cache
def modules() -> dict[str, Path]:
    """Every source module of the installed qfx packages, by its dotted name."""
    out = {}
    for package, folder in {"qfx": "qfx", **FOLDERS}.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join((package, *parts))] = path
    return out


def imports(path: Path) -> list[str]:
    """Modules a file imports: `from X import Y` counts as X.Y where that is a module, else as X."""
    known = modules()
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
    return names


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    own = layer(module)
    for name in imports(modules()[module]):
        if name.split(".")[0] == "qfx":
            assert layer(name) in ALLOWED[own], f"{module} ({own}) imports {name} ({layer(name)})"


@pytest.mark.parametrize("module", sorted(modules()))
def test_nothing_is_imported_under_a_generic_top_level_name(module: str) -> None:
    generic = {"hls", "boards", "surrogate", "testbench"}
    assert not [n for n in imports(modules()[module]) if n.split(".")[0] in generic]


def test_the_stage_folders_install_under_the_qfx_namespace() -> None:
    import importlib.util

    for package, folder in FOLDERS.items():
        spec = importlib.util.find_spec(package)
        assert spec is not None and Path(spec.origin).parent == ROOT / folder
