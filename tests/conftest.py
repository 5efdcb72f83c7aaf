"""Shared test set-up: hypothesis profiles chosen by HYPOTHESIS_PROFILE.

`dev` (the default) is quick for the edit-test loop, `ci` is what `.ci/run` uses, `nightly` is
for long unattended runs, `fuzz` hunts with many examples and no health checks.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Fixtures every package's tests may use: a throw-away PostgreSQL server, an MQTT
#: broker, a stand-in Flamenco Manager, a private RabbitMQ broker.
pytest_plugins = ["support.postgres", "support.mqtt", "support.flamenco_manager",
                  "support.rabbitmq"]

# Grammar-generated text (`from_lark`) is occasionally filtered a lot by Hypothesis itself;
# that is not a failure of the code under test.
_generated = [HealthCheck.filter_too_much, HealthCheck.too_slow]
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_generated)
settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "nightly", max_examples=10_000, deadline=None, suppress_health_check=_generated,
    print_blob=True,
)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
