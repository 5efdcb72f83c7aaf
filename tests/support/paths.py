"""Where the repository's own files are, wherever a test module sits in the tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "callback"
BROKEN = ROOT / "examples" / "broken"
ORIGINAL = ROOT / "examples" / "original"
VECTORS = ROOT / "spec" / "vectors"
