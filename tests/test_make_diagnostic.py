"""`make_diagnostic` stores exactly-typed values unchecked; the result must be the record the
checking constructor builds, and anything else must still be checked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks._records import to_dict
from qbcallbacks.errors import Diagnostic, RecordError, make_diagnostic

texts = st.text(max_size=12)
numbers = st.integers(min_value=-3, max_value=10**6)


@given(code=texts, message=texts, file=texts, line=numbers, column=numbers,
       end_column=st.none() | numbers, severity=st.sampled_from(["error", "warning"]),
       source_line=st.none() | texts)
def test_built_diagnostics_equal_validated_ones(code: str, message: str, file: str, line: int,
                                                column: int, end_column: int | None,
                                                severity: str, source_line: str | None) -> None:
    built = make_diagnostic(code, message, file=file, line=line, column=column,
                            end_column=end_column, severity=severity,  # type: ignore[arg-type]
                            source_line=source_line)
    validated = Diagnostic(file=file, line=line, column=column, end_line=line,
                           end_column=built.end_column, severity=severity,  # type: ignore[arg-type]
                           code=code, message=message, source_line=source_line)
    assert built == validated and hash(built) == hash(validated)
    assert repr(built) == repr(validated) and to_dict(built) == to_dict(validated)
    assert built.render() == validated.render() and built.to_json() == validated.to_json()
    assert built.moved(file="x", column_offset=2) == validated.moved(file="x", column_offset=2)


def test_other_values_are_still_checked() -> None:
    with pytest.raises(RecordError, match="severity must be one of error, warning"):
        make_diagnostic("QCB001", "m", severity="info")  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Diagnostic\.line must be int, not str"):
        make_diagnostic("QCB001", "m", line="three")  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Diagnostic\.line must be int, not bool"):
        make_diagnostic("QCB001", "m", line=True)
    with pytest.raises(ValueError, match="source_line must be str or None"):
        make_diagnostic("QCB001", "m", source_line=b"x")  # type: ignore[arg-type]


def test_diagnostics_read_back_from_json_are_checked() -> None:
    """The script checks cache their findings as JSON in a directory a user could write to:
    what is read back is checked field by field."""
    found = make_diagnostic("QCB401", "bad", file="a.py", line=3, column=2, source_line="x(")
    assert Diagnostic.from_json(to_dict(found)) == found
    without_line = Diagnostic.from_json(found.to_json())
    assert without_line.source_line is None and without_line.to_json() == found.to_json()
    for bad, words in (([], "a JSON object"), ({**found.to_json(), "x": 1}, "no field 'x'"),
                       ({"file": "a.py"}, "incomplete"),
                       ({**found.to_json(), "line": "3"}, "line must be int")):
        with pytest.raises(RecordError, match=words):
            Diagnostic.from_json(bad)
