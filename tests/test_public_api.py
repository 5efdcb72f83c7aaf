"""The package's public surface: everything in `__all__` exists, sorted, and nothing else leaks."""

from __future__ import annotations

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
