"""Hypothesis strategies for the language models (built as data, then rendered to text)."""

from __future__ import annotations

from hypothesis import strategies as st

from qbcallbacks.model.documents import (
    QCB_COMMANDS,
    BlankLine,
    CommandLine,
    CommentLine,
    ConfigDocument,
    QcbProgram,
    RuleLine,
)
from qbcallbacks.model.triggers import (
    BUILTIN_NAMES,
    EVENT_TYPES,
    GLOBAL_TYPES,
    AllOf,
    AnyOf,
    EventPattern,
)


def _case(word: str) -> st.SearchStrategy[str]:
    """The same keyword in lower, upper or title case (keywords are case-insensitive)."""
    return st.sampled_from([word, word.upper(), word.title()])


names = st.one_of(
    st.sampled_from(sorted(BUILTIN_NAMES)).flatmap(_case),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
        lambda n: n.lower() not in ("globaltime", "globalrepeat")
    ),
)
contexts = st.one_of(
    st.sampled_from(["self", "parent"]).flatmap(_case),
    st.integers(min_value=0, max_value=10**6).map(str),
    st.from_regex(r"[A-Za-z0-9_.:@+]{1,8}", fullmatch=True),
    st.from_regex(r"[^\s\x00-\x1f\x7f()&|#*=-]{1,6}", fullmatch=True),
)
extras = st.one_of(
    st.just("*"),
    st.integers(min_value=0, max_value=999).map(str),
    st.from_regex(r"[A-Za-z0-9_.#-]{1,8}", fullmatch=True),
    st.from_regex(r"[^\s\x00-\x1f\x7f()&|*]{1,6}", fullmatch=True),
)


@st.composite
def event_patterns(draw: st.DrawFn) -> EventPattern:
    if draw(st.integers(0, 9)) == 0:
        typ = draw(st.sampled_from(sorted(GLOBAL_TYPES)))
        extra = None if typ == "global" else draw(extras)
        return EventPattern(name=None, type=typ, context=None, extra=extra)  # type: ignore[arg-type]
    typ = draw(st.sampled_from(EVENT_TYPES).flatmap(_case))
    extra = None if typ.lower() == "job" else draw(st.none() | extras)
    return EventPattern(name=draw(names), type=typ, context=draw(contexts), extra=extra)  # type: ignore[arg-type]


def triggers(max_leaves: int = 8) -> st.SearchStrategy[EventPattern | AllOf | AnyOf]:
    return st.recursive(
        event_patterns(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=4).map(lambda ops: AllOf(operands=tuple(ops))),
            st.lists(inner, min_size=2, max_size=4).map(lambda ops: AnyOf(operands=tuple(ops))),
        ),
        max_leaves=max_leaves,
    )


file_names = st.from_regex(
    r"[A-Za-z0-9_]([A-Za-z0-9_ +-]{0,10}[A-Za-z0-9_])?\.(py|pl|qcb|PY)", fullmatch=True
)
comments = st.from_regex(r"#[^\r\n]{0,20}", fullmatch=True).map(lambda c: c.rstrip(" \t"))

config_lines = st.one_of(
    st.builds(BlankLine),
    st.builds(CommentLine, text=comments),
    st.builds(RuleLine, file=file_names, trigger=triggers(), comment=st.none() | comments),
)
config_documents = st.lists(config_lines, max_size=12).map(
    lambda lines: ConfigDocument(lines=tuple(lines))
)
qcb_lines = st.one_of(
    st.builds(BlankLine),
    st.builds(CommentLine, text=comments),
    st.builds(CommandLine, command=st.sampled_from(QCB_COMMANDS).flatmap(_case),
              comment=st.none() | comments),
)
qcb_programs = st.lists(qcb_lines, max_size=12).map(lambda lines: QcbProgram(lines=tuple(lines)))
