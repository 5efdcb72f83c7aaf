"""The three languages of qbcallbacks: grammars (`*.lark`, shipped in the package) and parsers.

The `.lark` files are the formal definition; the functions here run them and turn their trees
and errors into models and diagnostics.
"""

from __future__ import annotations

from ._lark import (
    GRAMMAR_FILES,
    config_lark,
    grammar_text,
    lark_with_grammar,
    qcb_lark,
    trigger_lark,
)
from .config import ParsedConfig, RuleSite, parse_config
from .qcb import ParsedQcb, parse_qcb
from .trigger import parse_trigger, parse_trigger_with_warnings

__all__ = [
    "GRAMMAR_FILES",
    "ParsedConfig",
    "ParsedQcb",
    "RuleSite",
    "config_lark",
    "grammar_text",
    "lark_with_grammar",
    "parse_config",
    "parse_qcb",
    "parse_trigger",
    "parse_trigger_with_warnings",
    "qcb_lark",
    "trigger_lark",
]
