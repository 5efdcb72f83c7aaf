"""Fuzz target: checks.check_events (see fuzz/README.md)."""

from __future__ import annotations

from _target import main

if __name__ == "__main__":
    main("events")
