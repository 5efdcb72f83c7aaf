"""The package's shape: imports only point down the layers, modules stay small, and the
commands that only read text never load the machinery that runs code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import EXAMPLES, ROOT

PACKAGE = ROOT / "src" / "qbcallbacks"
#: The layers, bottom first: a module may import from its own layer or from one below.
#: `celery` is the worker side of the dispatcher's Celery executor: it runs callbacks with
#: the runtimes and speaks the dispatcher's wire protocol, so it sits just above `dispatch`.
LAYERS = ("errors", "model", "lang", "matching", "runtimes", "config", "audit", "stream",
          "dispatch", "celery", "reference", "service", "adapters", "lsp", "cli")
#: Modules at the top of the package that only re-export or start the CLI.
ENTRY_MODULES = ("__init__", "__main__")
MAX_LINES = 500


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append((".".join(parts), path))
    return found


def imported_modules(name: str, path: Path) -> set[str]:
    """Absolute names of the qbcallbacks modules `path` imports (relative imports resolved)."""
    parts = name.split(".")
    package = parts[:-1]  # the package a relative import starts from
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("qbcallbacks"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qbcallbacks"))
    return found


#: Top-level modules that belong to a layer named otherwise.
SAME_LAYER = {"code_docs": "errors"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return SAME_LAYER.get(top, top)


def test_every_subpackage_has_a_layer() -> None:
    tops = {layer_of(name) for name, _ in modules()}
    assert tops - set(LAYERS) - set(ENTRY_MODULES) == set()


def test_imports_point_only_down() -> None:
    upward = []
    for name, path in modules():
        here = layer_of(name)
        if here in ENTRY_MODULES:
            continue
        for target in imported_modules(name, path):
            there = layer_of(target)
            if there in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_the_runtime_workers_are_never_imported_by_the_host() -> None:
    offenders = [name for name, path in modules()
                 if ".workers." not in name
                 and any(".runtimes.workers" in t for t in imported_modules(name, path))]
    assert offenders == []


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def loaded_by(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return set(out.split())


def test_importing_the_package_loads_none_of_its_parts() -> None:
    loaded = loaded_by("import qbcallbacks")
    assert {m for m in loaded if m.startswith("qbcallbacks.")} == set()
    assert "pydantic" not in loaded and "lark" not in loaded


@pytest.mark.parametrize("heavy", ["qbcallbacks.dispatch", "qbcallbacks.audit",
                                   "qbcallbacks.reference", "sqlite3", "rich", "xml", "difflib",
                                   "importlib.metadata", "importlib.resources", "zipfile",
                                   "qbcallbacks.lang.outline"])
def test_check_loads_only_the_language_layer_and_the_loader(heavy: str) -> None:
    loaded = loaded_by("from qbcallbacks.cli import main\n"
                       f"code = main(['check', {str(EXAMPLES)!r}])")
    assert "qbcallbacks.config.load" in loaded
    assert heavy not in loaded
    assert not any(m.startswith(heavy + ".") for m in loaded)
