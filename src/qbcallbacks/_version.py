"""The package's version: the one place it is written (pyproject.toml reads it from here).

A plain constant, so that `qbcallbacks --version` and `qbcallbacks.__version__` need no package
metadata (reading it imports `importlib.metadata` and scans the installed distributions).
"""

__version__ = "0.1.0"
