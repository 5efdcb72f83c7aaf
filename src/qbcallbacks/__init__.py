"""qbcallbacks: universal callbacks for a render-farm supervisor.

The public API: parse the three languages, load callback directories, match events, run
callbacks through the dispatcher, and the data models all of them share. Names are
re-exported from the modules that own them and loaded on first use, so that `import
qbcallbacks` (and `qbcallbacks check`) pays only for the parts it touches: the dispatcher,
the audit trail, SQLite and the runtimes load when one of their names is first read.
"""

from __future__ import annotations

#: `typing` is not imported at run time: it costs about as much as starting Python, and
#: `qbcallbacks --version` should not pay it. Type checkers take this constant as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import typing  # a plain import: the `from` imports below are the public names' homes

    from .audit.backends import open_audit
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
    from .dispatch.remote.executor import CeleryExecutor
    from .errors import (
        ConfigError,
        Diagnostic,
        GlobalCallbackError,
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
    from .model.globals import GlobalCallback
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

#: Public name -> the module (relative to this package) that defines it, read on first use
#: from the typing imports above, so the names are written once more only in `__all__`.
_homes: dict[str, str] = {}


def _home_of(name: str) -> str | None:
    if not _homes:
        _homes.update(_typing_imports())
    return _homes.get(name) if name in __all__ else None


def _typing_imports() -> dict[str, str]:
    """Name -> home module of every `from .home import name` under `if TYPE_CHECKING:`."""
    import ast

    source = __loader__.get_source(__name__)  # type: ignore[name-defined]
    found: dict[str, str] = {}
    for node in ast.parse(source or "").body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom) and imp.level == 1 and imp.module:
                    found.update((alias.name, imp.module) for alias in imp.names)
    return found


def __getattr__(name: str) -> typing.Any:
    """Import the module that owns `name` on first use and cache the name here."""
    if name == "__version__":
        return _read_version()
    home = _home_of(name)
    if home is None:
        raise AttributeError(f"module 'qbcallbacks' has no attribute {name!r}")
    import importlib  # not at import: `qbcallbacks --version` should not pay for it

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def _read_version() -> str:
    from ._version import __version__

    globals()["__version__"] = __version__
    return __version__


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AllOf",
    "AnyOf",
    "AuditError",
    "AuditStore",
    "BackPressureError",
    "BlankLine",
    "CallbackSet",
    "CeleryExecutor",
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
    "GlobalCallback",
    "GlobalCallbackError",
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
    "open_audit",
    "parse_config",
    "parse_jobinfo_args",
    "parse_qcb",
    "parse_trigger",
]
