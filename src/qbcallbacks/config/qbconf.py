"""Reading the settings we need from a Qube `qb.conf`.

`qb.conf` is `key = value` lines with `#` comments; unknown keys are ignored (the file configures
the whole product). We read `supervisor_universal_callback_path`, the mail settings,
`supervisor_job_callback_code` (whether job-specific Python and Perl callbacks may run) and
where callbacks run (`supervisor_callback_executor`, `supervisor_callback_broker`). The
mail settings are plain data (`MailSettings`): the transport that uses them is built by the
reference supervisor's side (`reference.mail.transport_for`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .._records import check_type, record
from ..errors import QbCallbacksError, SourceError
from ..lang.source import read_source_bytes
from ..model.limits import Limits
from ..runtimes.policy import GLOBALS_KEY, JOB_CODE_KEY
from .load import expand_callback_path

CALLBACK_PATH_KEY = "supervisor_universal_callback_path"
#: Where callbacks run (`local` or `celery`), and the Celery executor's broker URL.
EXECUTOR_KEY = "supervisor_callback_executor"
BROKER_KEY = "supervisor_callback_broker"
EXECUTORS = ("local", "celery")


class QbConfError(QbCallbacksError):
    """A qb.conf cannot be read."""


@record
class MailSettings:
    """Where callback mail goes: SMTP through `host` when there is one, else a local mbox."""

    host: str | None = None
    port: int = 25
    #: The domain of bare sender names and of message ids.
    domain: str = "localhost"
    #: The sender of every message (`mail_from`).
    sender: str = "qube"

    def __post_init__(self) -> None:
        check_type("MailSettings", "host", self.host, str, type(None))
        check_type("MailSettings", "port", self.port, int)
        check_type("MailSettings", "domain", self.domain, str)
        check_type("MailSettings", "sender", self.sender, str)


@record
class QbConf:
    """The settings of one qb.conf, as text, last occurrence of a key winning."""

    path: str
    values: dict[str, str]

    def __post_init__(self) -> None:
        check_type("QbConf", "path", self.path, str)
        check_type("QbConf", "values", self.values, dict)

    def callback_path(self, env: Mapping[str, str] | None = None) -> list[str]:
        """The callback directories, `$QBDIR/callback` when the key is absent or empty."""
        spec = self.values.get(CALLBACK_PATH_KEY, "").strip()
        return expand_callback_path([spec] if spec else None, env)

    @property
    def allow_job_code(self) -> bool:
        """Whether job-specific Python and Perl callbacks may run (`runtimes.policy`)."""
        return self.values.get(JOB_CODE_KEY, "").strip().lower() in ("1", "true", "yes", "on")

    @property
    def allow_global_callbacks(self) -> bool:
        """Whether global callbacks may be submitted (`dispatch.globals`)."""
        return self.values.get(GLOBALS_KEY, "").strip().lower() in ("1", "true", "yes", "on")

    @property
    def callback_executor(self) -> str | None:
        """`local` or `celery` when the key is given; another value is a `QbConfError`."""
        value = self.values.get(EXECUTOR_KEY, "").strip().lower()
        if value and value not in EXECUTORS:
            raise QbConfError(f"{self.path}: {EXECUTOR_KEY} is {value!r}; "
                              f"expected one of {', '.join(EXECUTORS)}")
        return value or None

    @property
    def callback_broker(self) -> str | None:
        """The Celery executor's broker URL, if given."""
        return self.values.get(BROKER_KEY, "").strip() or None

    @property
    def mail_host(self) -> str | None:
        return self.values.get("mail_host") or None

    @property
    def mail_port(self) -> int:
        try:
            return int(self.values.get("mail_port", "25"))
        except ValueError:
            return 25

    @property
    def mail_domain(self) -> str:
        return self.values.get("mail_domain") or "localhost"

    @property
    def mail_from(self) -> str:
        return self.values.get("mail_from") or "qube"

    def mail(self) -> MailSettings:
        """The mail settings of this qb.conf."""
        return MailSettings(host=self.mail_host, port=self.mail_port, domain=self.mail_domain,
                            sender=self.mail_from)


def parse_qbconf(text: str, path: str = "qb.conf") -> QbConf:
    """Parse qb.conf text; a line without `=` is skipped (the product tolerates it too)."""
    values: dict[str, str] = {}
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip().lower()] = value
    return QbConf(path=path, values=values)


def read_qbconf(path: str | Path, limits: Limits | None = None) -> QbConf:
    """Read qb.conf: a regular file within its size limit (undecodable bytes are replaced)."""
    try:
        data = read_source_bytes(path, kind="qbconf", limits=limits)
    except SourceError as exc:
        raise QbConfError("\n".join(d.render() for d in exc.diagnostics)) from exc
    return parse_qbconf(data.decode("utf-8", errors="replace"), str(path))
