"""qbcallbacks: universal callbacks for a render-farm supervisor.

The public API: parse the three languages, load callback directories, and the data models
they produce. Everything here is re-exported from private modules; import from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .audit.store import AuditStore, FiringRecord
from .config.load import (
    CallbackSet,
    DirectoryLoad,
    expand_callback_path,
    load_callback_path,
    load_directory,
)
from .dispatch.dispatcher import (
    BackPressureError,
    Dispatcher,
    DispatcherClosed,
    DispatcherConfig,
    DispatcherSettings,
    DispatcherUnavailable,
)
from .errors import (
    ConfigError,
    Diagnostic,
    QbCallbacksError,
    QcbError,
    SourceError,
    TriggerError,
)
from .lang import ParsedConfig, ParsedQcb, parse_config, parse_qcb, parse_trigger
from .matching.clock import Clock, ManualClock, SystemClock
from .matching.matcher import Firing, Matcher
from .model.documents import (
    BlankLine,
    CommandLine,
    CommentLine,
    ConfigDocument,
    QcbProgram,
    RuleLine,
)
from .model.events import Event, Job, JobCallback
from .model.rules import Rule
from .model.supervisor import MailMessage, Supervisor
from .model.triggers import AllOf, AnyOf, EventPattern, Trigger
from .reference.mail import MailTransport, MboxTransport, SmtpTransport
from .reference.memory import MemorySupervisor
from .reference.sqlite import SqliteSupervisor
from .runtimes.api import (
    Invocation,
    NoSupervisor,
    RunResult,
    Runtime,
    RuntimeNotFound,
    RuntimeSettings,
)

try:
    __version__ = version("qbcallbacks")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

__all__ = [
    "AllOf",
    "AnyOf",
    "AuditStore",
    "BackPressureError",
    "BlankLine",
    "CallbackSet",
    "Clock",
    "CommandLine",
    "CommentLine",
    "ConfigDocument",
    "ConfigError",
    "Diagnostic",
    "DirectoryLoad",
    "Dispatcher",
    "DispatcherClosed",
    "DispatcherConfig",
    "DispatcherSettings",
    "DispatcherUnavailable",
    "Event",
    "EventPattern",
    "Firing",
    "FiringRecord",
    "Invocation",
    "Job",
    "JobCallback",
    "MailMessage",
    "MailTransport",
    "ManualClock",
    "Matcher",
    "MboxTransport",
    "MemorySupervisor",
    "NoSupervisor",
    "ParsedConfig",
    "ParsedQcb",
    "QbCallbacksError",
    "QcbError",
    "QcbProgram",
    "Rule",
    "RuleLine",
    "RunResult",
    "Runtime",
    "RuntimeNotFound",
    "RuntimeSettings",
    "SmtpTransport",
    "SourceError",
    "SqliteSupervisor",
    "Supervisor",
    "SystemClock",
    "Trigger",
    "TriggerError",
    "__version__",
    "expand_callback_path",
    "load_callback_path",
    "load_directory",
    "parse_config",
    "parse_qcb",
    "parse_trigger",
]
