"""Shared test set-up: hypothesis profiles chosen by HYPOTHESIS_PROFILE.

`dev` (the default) is quick for the edit-test loop, `ci` is what `.ci/run` uses, `nightly` is
for long unattended runs, `fuzz` hunts with many examples and no health checks.

The suite runs on pytest-xdist workers (`addopts` in pyproject.toml) that take whole modules
(`--dist loadfile`), so a module fixture (Celery workers, a language server) is made once; a
session fixture (a PostgreSQL cluster, a RabbitMQ broker) is made once per worker that needs
it. The example database takes saves from all workers at once (`tests/test_test_setup.py`).
`-n 0` runs everything in one process.
"""

from __future__ import annotations

import os

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

