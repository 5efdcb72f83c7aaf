"""Shared test set-up: hypothesis profiles chosen by HYPOTHESIS_PROFILE, and which tests
must share a pytest-xdist worker.

`dev` (the default) is quick for the edit-test loop, `ci` is what `.ci/run` uses, `nightly` is
for long unattended runs, `fuzz` hunts with many examples and no health checks.

The suite runs on several pytest-xdist workers (`addopts` in pyproject.toml), which take tests
one by one (`--dist loadgroup`). A module whose module-scoped fixture is costly or holds state
its tests build on is kept whole on one worker by `WHOLE`, so that fixture is made once; a
session fixture (a PostgreSQL cluster, a RabbitMQ broker) is made once per worker that needs
it. `-p no:xdist` (or `-n 0`) runs everything in one process, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from support.paths import ROOT

#: Fixtures every package's tests may use: a throw-away PostgreSQL server, an MQTT
#: broker, a stand-in Flamenco Manager, a private RabbitMQ broker.
pytest_plugins = ["support.postgres", "support.mqtt", "support.flamenco_manager",
                  "support.rabbitmq"]

# Grammar-generated text (`from_lark`) is occasionally filtered a lot by Hypothesis itself;
# that is not a failure of the code under test.
_generated = [HealthCheck.filter_too_much, HealthCheck.too_slow]
# Every profile starts from Hypothesis's own defaults, not from whatever profile Hypothesis
# chose itself (it loads a derandomized, database-less one when it detects a CI server). Each
# run draws fresh random examples; a failure is shrunk, kept in the example database under
# the repository (ignored by git) to be replayed first by the next run, and printed with a
# blob that `@reproduce_failure` replays anywhere.
_base = settings(
    settings.get_profile("default"), deadline=None, derandomize=False, print_blob=True,
    database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis" / "examples")),
)
settings.register_profile("dev", _base, max_examples=50, suppress_health_check=_generated)
settings.register_profile("ci", _base, max_examples=100, suppress_health_check=_generated)
settings.register_profile(
    "nightly", _base, max_examples=10_000, suppress_health_check=_generated
)
settings.register_profile(
    "fuzz", _base, max_examples=20_000, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


#: Module (under tests/) -> the xdist group that keeps its tests on one worker. Modules of one
#: group share something a second worker would make again or race on: the VS Code modules
#: share editors/vscode/node_modules, which the TextMate test installs when it is missing.
WHOLE = {
    "dispatch/test_celery_executor.py": "celery-workers",
    "lsp/test_server_limits.py": "lsp-limits",
    "lsp/test_server_protocol.py": "lsp-protocol",
    "lsp/test_textmate.py": "vscode",
    "lsp/test_vscode_bundle.py": "vscode",
    "cli/test_simulate.py": "simulate",
    "cli/test_check_formats.py": "check-formats",
    "test_layout.py": "layout",
    "test_packaging.py": "packaging",
}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = WHOLE.get(item.path.relative_to(_TESTS).as_posix())
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
