"""qbcallbacks: universal callbacks for a render-farm supervisor.

The public API: parse the three languages, load callback directories, match events, run
callbacks through the dispatcher, and the data models all of them share. Names are
re-exported from the modules that own them and loaded on first use, so that `import
qbcallbacks` (and `qbcallbacks check`) pays only for the parts it touches: the dispatcher,
the audit trail, SQLite and the runtimes load when one of their names is first read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit.store import AuditError, AuditStore, FiringRecord
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
    from .model.supervisor import (
        HostError,
        JobAction,
        MailMessage,
        SubjobAction,
        Supervisor,
        WorkAction,
        parse_jobinfo_args,
    )
    from .model.triggers import AllOf, AnyOf, EventPattern, Trigger
    from .reference.mail import MailError, MailTransport, MboxTransport, SmtpTransport
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

#: Public name -> the module (relative to this package) that defines it.
_HOMES: dict[str, str] = {
    "AuditError": "audit.store",
    "AuditStore": "audit.store",
    "FiringRecord": "audit.store",
    "CallbackSet": "config.load",
    "DirectoryLoad": "config.load",
    "expand_callback_path": "config.load",
    "load_callback_path": "config.load",
    "load_directory": "config.load",
    "BackPressureError": "dispatch.dispatcher",
    "Dispatcher": "dispatch.dispatcher",
    "DispatcherClosed": "dispatch.dispatcher",
    "DispatcherSettings": "dispatch.dispatcher",
    "DispatcherUnavailable": "dispatch.dispatcher",
    "ConfigError": "errors",
    "Diagnostic": "errors",
    "QbCallbacksError": "errors",
    "QcbError": "errors",
    "SourceError": "errors",
    "TriggerError": "errors",
    "ParsedConfig": "lang",
    "ParsedQcb": "lang",
    "parse_config": "lang",
    "parse_qcb": "lang",
    "parse_trigger": "lang",
    "Clock": "matching.clock",
    "ManualClock": "matching.clock",
    "SystemClock": "matching.clock",
    "Firing": "matching.matcher",
    "Matcher": "matching.matcher",
    "BlankLine": "model.documents",
    "CommandLine": "model.documents",
    "CommentLine": "model.documents",
    "ConfigDocument": "model.documents",
    "QcbProgram": "model.documents",
    "RuleLine": "model.documents",
    "Event": "model.events",
    "Job": "model.events",
    "JobCallback": "model.events",
    "Rule": "model.rules",
    "HostError": "model.supervisor",
    "JobAction": "model.supervisor",
    "MailMessage": "model.supervisor",
    "SubjobAction": "model.supervisor",
    "Supervisor": "model.supervisor",
    "WorkAction": "model.supervisor",
    "parse_jobinfo_args": "model.supervisor",
    "AllOf": "model.triggers",
    "AnyOf": "model.triggers",
    "EventPattern": "model.triggers",
    "Trigger": "model.triggers",
    "MailError": "reference.mail",
    "MailTransport": "reference.mail",
    "MboxTransport": "reference.mail",
    "SmtpTransport": "reference.mail",
    "MemorySupervisor": "reference.memory",
    "SqliteSupervisor": "reference.sqlite",
    "Invocation": "runtimes.api",
    "NoSupervisor": "runtimes.api",
    "RunResult": "runtimes.api",
    "Runtime": "runtimes.api",
    "RuntimeNotFound": "runtimes.api",
    "RuntimeSettings": "runtimes.api",
}


def __getattr__(name: str) -> Any:
    """Import the module that owns `name` on first use and cache the name here."""
    if name == "__version__":
        return _version()
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qbcallbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def _version() -> str:
    # Package metadata is slow to read; only a caller that asks for the version pays.
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("qbcallbacks")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        found = "0+unknown"
    globals()["__version__"] = found
    return found


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES) | {"__version__"})


__all__ = [
    "AllOf",
    "AnyOf",
    "AuditError",
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
    "DispatcherSettings",
    "DispatcherUnavailable",
    "Event",
    "EventPattern",
    "Firing",
    "FiringRecord",
    "HostError",
    "Invocation",
    "Job",
    "JobAction",
    "JobCallback",
    "MailError",
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
    "SubjobAction",
    "Supervisor",
    "SystemClock",
    "Trigger",
    "TriggerError",
    "WorkAction",
    "__version__",
    "expand_callback_path",
    "load_callback_path",
    "load_directory",
    "parse_config",
    "parse_jobinfo_args",
    "parse_qcb",
    "parse_trigger",
]
