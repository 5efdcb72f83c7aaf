"""The one table of callback languages: which file extension each runs as.

Universal callbacks pick their language by the script's extension; job-specific callbacks
name a language (`qube`, `python`, `perl`, `mail`), and `qube` and `mail` run as `qcb`.
A site runtime registered for another extension is its own language, named by the
extension. Everything that maps a language to an extension or back reads it from here.
"""

from __future__ import annotations

from typing import Literal

#: Script extension (without the dot) -> the language of the built-in runtime for it.
SCRIPT_LANGUAGES: dict[str, str] = {"py": "python", "pl": "perl", "qcb": "qcb"}
#: The extension of the command language: its files are parsed and formatted, not run as code.
QCB_EXTENSION = "qcb"

#: The languages a job-specific callback may name.
JobCallbackLanguage = Literal["qube", "python", "perl", "mail"]

#: Language (of a script or of a job-specific callback) -> extension of the runtime for it.
RUNTIME_EXTENSIONS: dict[str, str] = {
    **{language: ext for ext, language in SCRIPT_LANGUAGES.items()},
    "qube": "qcb",
    "mail": "qcb",
}


def extension_of(path: str) -> str:
    """The extension of a file name or path, lower-cased and without the dot ('' if none)."""
    dot = path.rfind(".")
    return path[dot + 1:].lower() if dot > path.rfind("/") else ""


def language_of(name: str) -> str:
    """The language of a script file by its extension; a site runtime's is its extension."""
    ext = extension_of(name)
    return SCRIPT_LANGUAGES.get(ext, ext)


def runtime_extension(language: str) -> str:
    """The extension of the runtime that runs `language` (a site language is its extension)."""
    return RUNTIME_EXTENSIONS.get(language, language)
