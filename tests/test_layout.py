"""The package's shape: imports only point down the layers, modules and functions stay small,
each fact has one home (a copy that must stay is tied to it here), and the commands that only
read text never load the machinery that runs code."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import EXAMPLES, ROOT

PACKAGE = ROOT / "src" / "qbcallbacks"
#: The layers, bottom first: a module may import from its own layer or from one below.
#: `celery` is the worker side of the dispatcher's Celery executor: it runs callbacks with
#: the runtimes and speaks the dispatcher's wire protocol, so it sits just above `dispatch`.
LAYERS = ("_version", "errors", "model", "lang", "matching", "runtimes", "config", "audit",
          "stream", "dispatch", "celery", "reference", "service", "adapters", "lsp", "cli")
#: Modules at the top of the package that only re-export or start the CLI.
ENTRY_MODULES = ("__init__", "__main__")
MAX_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_DISPATCHER_LINES = 200
#: Modules still over MAX_LINES while another branch splits them; each entry is removed when
#: its split lands (a test fails when an entry is no longer needed).
OVERSIZE_ALLOWED: dict[str, str] = {}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append((".".join(parts), path))
    return found


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imported_modules(name: str, path: Path) -> set[str]:
    """Absolute names of the qbcallbacks modules `path` imports (relative imports resolved)."""
    parts = name.split(".")
    package = parts[:-1]  # the package a relative import starts from
    found: set[str] = set()
    for node in ast.walk(parsed(path)):
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
SAME_LAYER = {"code_docs": "errors", "_records": "errors"}


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


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: line_count(path) for name, path in modules()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES and n not in OVERSIZE_ALLOWED} == {}


def test_every_oversize_allowance_is_still_needed() -> None:
    sizes = {name: line_count(path) for name, path in modules()}
    assert [n for n in OVERSIZE_ALLOWED if sizes.get(n, 0) <= MAX_LINES] == []


def definitions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    return [node for node in ast.walk(parsed(path))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def span(node: ast.stmt) -> int:
    """Lines from the `def` or `class` line to the last line of the body (a command's click
    decorators are its declaration of options, not its logic)."""
    return (node.end_lineno or node.lineno) - node.lineno + 1


def test_no_function_is_over_the_size_limit() -> None:
    long = [f"{name}.{node.name}: {span(node)}" for name, path in modules()
            for node in definitions(path)
            if not isinstance(node, ast.ClassDef) and span(node) > MAX_FUNCTION_LINES]
    assert long == []


def test_the_span_is_the_definition_and_its_whole_body() -> None:
    tree = ast.parse("@a\ndef f():\n    x = 1\n\n    return x\n")
    assert span(tree.body[0]) == 4


def test_the_dispatcher_only_wires_its_parts() -> None:
    path = PACKAGE / "dispatch" / "dispatcher.py"
    [dispatcher] = [n for n in definitions(path)
                    if isinstance(n, ast.ClassDef) and n.name == "Dispatcher"]
    assert span(dispatcher) < MAX_DISPATCHER_LINES


def loaded_by(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return set(out.split())


def test_importing_the_package_loads_none_of_its_parts() -> None:
    loaded = loaded_by("import qbcallbacks")
    assert {m for m in loaded if m.startswith("qbcallbacks.")} == set()
    assert "pydantic" not in loaded and "lark" not in loaded


@pytest.fixture(scope="module")
def loaded_by_check() -> set[str]:
    """The modules a `check` of the examples loads (one fresh process for every case)."""
    return loaded_by(f"from qbcallbacks.cli import main\ncode = main(['check', {str(EXAMPLES)!r}])")


# The examples name only built-in extensions, so `check` reads no entry points: neither
# importlib.metadata nor what it loads (zipfile, email, csv).
@pytest.mark.parametrize("heavy", ["qbcallbacks.dispatch", "qbcallbacks.audit",
                                   "qbcallbacks.reference", "sqlite3", "rich", "xml", "difflib",
                                   "qbcallbacks.lang.outline", "lark", "importlib.metadata",
                                   "zipfile", "email", "csv", "shutil", "pkgutil",
                                   "qbcallbacks.runtimes.api", "qbcallbacks.runtimes.python"])
def test_check_loads_only_the_language_layer_and_the_loader(heavy: str,
                                                           loaded_by_check: set[str]) -> None:
    loaded = loaded_by_check
    assert "qbcallbacks.config.load" in loaded
    assert heavy not in loaded
    assert not any(m.startswith(heavy + ".") for m in loaded)


def test_version_loads_neither_click_nor_pydantic_nor_package_metadata() -> None:
    loaded = loaded_by("from qbcallbacks.cli import main\ncode = main(['--version'])")
    assert {"click", "pydantic", "importlib.metadata", "lark"} & loaded == set()
    assert {m for m in loaded if m.startswith("qbcallbacks.")} <= {
        "qbcallbacks.cli", "qbcallbacks._version"}


# -- Copies of facts that must stay, each tied to its original --------------------------------
# The `qb` module is loaded by path inside the workers, which import only the standard
# library, so it keeps its own copies of the model's action names and call bounds.


def test_the_qb_modules_actions_are_the_supervisors() -> None:
    from typing import get_args

    from qbcallbacks.model.supervisor import JobAction, SubjobAction, WorkAction
    from qbcallbacks.runtimes.qb.module import JOB_CALLS, SUBJOB_CALLS, WORK_CALLS

    assert set(JOB_CALLS) == set(get_args(JobAction))
    assert set(WORK_CALLS.values()) == set(get_args(WorkAction))
    # A job call given "job.subjob" acts on the subjob, except `remove`.
    subjob = {*JOB_CALLS, *SUBJOB_CALLS.values()} - {"remove"}
    assert subjob == set(get_args(SubjobAction))


def test_the_transition_tables_cover_every_action() -> None:
    from typing import get_args

    from qbcallbacks.model.supervisor import JobAction, SubjobAction, WorkAction
    from qbcallbacks.reference.transitions import TABLES

    # `remove` takes the job out of the farm rather than moving it to a state.
    assert set(TABLES["job"]) | {"remove"} == set(get_args(JobAction))
    assert set(TABLES["work"]) == set(get_args(WorkAction))
    assert set(TABLES["subjob"]) == set(get_args(SubjobAction))


def test_the_qb_modules_call_bounds_are_the_default_limits() -> None:
    from qbcallbacks.model.limits import Limits
    from qbcallbacks.runtimes.qb.module import MAX_ARG_SIZE, MAX_CALL_ARGS, MAX_MESSAGE_BYTES

    assert (Limits().max_qb_args, Limits().max_qb_arg_size) == (MAX_CALL_ARGS, MAX_ARG_SIZE)
    # The longest line a worker may send holds a call at both bounds, in plain text.
    assert MAX_MESSAGE_BYTES > MAX_CALL_ARGS * (MAX_ARG_SIZE + 3)


def test_the_declared_runtimes_are_the_script_languages() -> None:
    import tomllib

    from qbcallbacks.model.languages import SCRIPT_LANGUAGES
    from qbcallbacks.runtimes.registry import BUILTIN_RUNTIMES

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = project["project"]["entry-points"]["qbcallbacks.runtimes"]
    assert declared == BUILTIN_RUNTIMES
    assert set(declared) == set(SCRIPT_LANGUAGES)


def test_the_qcb_language_is_a_script_language() -> None:
    from qbcallbacks.model.languages import QCB_EXTENSION, SCRIPT_LANGUAGES, extension_of

    assert SCRIPT_LANGUAGES[QCB_EXTENSION] == "qcb"
    assert [extension_of(p) for p in ("a/b.QCB", "a.b/c", ".qcb", "x")] == ["qcb", "", "qcb", ""]


def test_per_runtime_defaults_and_script_checks_cover_the_script_languages() -> None:
    from qbcallbacks.dispatch.settings import DispatcherSettings
    from qbcallbacks.model.languages import SCRIPT_LANGUAGES
    from qbcallbacks.runtimes.validate import validators

    assert set(DispatcherSettings().per_runtime) == set(SCRIPT_LANGUAGES)
    assert set(validators()) >= {f".{ext}" for ext in SCRIPT_LANGUAGES}
