"""Build hook: the wheel carries the conformance vectors of spec/vectors.

spec/vectors stays the one copy in the tree (tests and other implementations read it there);
building copies it into the package as `qbcallbacks/spec_vectors/`, so an installed
qbcallbacks can hand the vectors to tool authors (`qbcallbacks grammar --vectors`).
Everything else about the build is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

VECTORS = Path(__file__).resolve().parent / "spec" / "vectors"


class BuildPyWithVectors(build_py):
    """`build_py`, then the vector files copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not VECTORS.is_dir():
            return  # an editable install reads spec/vectors from the tree
        target = Path(self.build_lib) / "qbcallbacks" / "spec_vectors"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(VECTORS.glob("*.json")):
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithVectors})
