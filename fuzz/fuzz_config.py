"""Fuzz target: checks.check_config (see fuzz/README.md)."""

from __future__ import annotations

from _target import main

if __name__ == "__main__":
    main("config")
