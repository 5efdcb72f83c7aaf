"""Fuzz target: checks.check_qbconf (see fuzz/README.md)."""

from __future__ import annotations

from _target import main

if __name__ == "__main__":
    main("qbconf")
