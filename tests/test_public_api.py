"""The package's public surface: everything in `__all__` exists, sorted, and nothing else leaks."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import qbcallbacks


def test_all_is_sorted_and_importable() -> None:
    names = list(qbcallbacks.__all__)
    assert names == sorted(names, key=lambda n: (n[0].islower() or n.startswith("_"), n))
    for name in names:
        assert getattr(qbcallbacks, name) is not None


def test_every_exported_error_derives_from_the_root() -> None:
    errors = [getattr(qbcallbacks, n) for n in qbcallbacks.__all__
              if isinstance(getattr(qbcallbacks, n), type)
              and issubclass(getattr(qbcallbacks, n), Exception)]
    assert len(errors) >= 8
    assert all(issubclass(e, qbcallbacks.QbCallbacksError) for e in errors)


def test_the_typing_imports_name_exactly_the_public_names() -> None:
    """`__all__` is the one list; the typing imports (which type checkers read, and which say
    where each name lives) must name the same set, no more."""
    tree = ast.parse(Path(qbcallbacks.__file__).read_text(encoding="utf-8"))
    [block] = [n for n in tree.body if isinstance(n, ast.If)
               and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"]
    homes = {alias.name: node.module for node in block.body
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert set(homes) == set(qbcallbacks.__all__) - {"__version__"}
    for name, home in homes.items():
        module = importlib.import_module(f"qbcallbacks.{home}")
        assert getattr(qbcallbacks, name) is getattr(module, name)

