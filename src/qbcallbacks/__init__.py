"""qbcallbacks: universal callbacks for a render-farm supervisor.

The public API: parse the three languages, load callback directories, and the data models
they produce. Everything here is re-exported from private modules; import from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .engine.audit import AuditStore, FiringRecord
from .engine.clock import Clock, ManualClock, SystemClock
from .engine.dispatcher import BackPressureError, Dispatcher, DispatcherClosed, DispatcherConfig
from .engine.documents import (
    BlankLine,
    CommandLine,
    CommentLine,
    ConfigDocument,
    QcbProgram,
    RuleLine,
)
from .engine.events import Event, Job, JobCallback
from .engine.host import MailMessage, Supervisor
from .engine.loader import (
    CallbackSet,
    DirectoryLoad,
    expand_callback_path,
    load_callback_path,
    load_directory,
)
from .engine.mail import MailTransport, MboxTransport, SmtpTransport
from .engine.matcher import Firing, Matcher
from .engine.memory_host import MemorySupervisor
from .engine.rules import Rule
from .engine.sqlite_host import SqliteSupervisor
from .engine.triggers import AllOf, AnyOf, EventPattern, Trigger
from .errors import (
    ConfigError,
    Diagnostic,
    QbCallbacksError,
    QcbError,
    SourceError,
    TriggerError,
)
from .grammar import ParsedConfig, ParsedQcb, parse_config, parse_qcb, parse_trigger
from .runtimes.base import (
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
