"""`make_diagnostic` stores exactly-typed values without validation; the result must be the
model validation builds, and anything else must still be validated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from qbcallbacks.errors import Diagnostic, make_diagnostic

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
    assert repr(built) == repr(validated) and built.model_dump() == validated.model_dump()
    assert built.model_fields_set == validated.model_fields_set
    assert built.render() == validated.render() and built.to_json() == validated.to_json()
    assert built.moved(file="x", column_offset=2) == validated.moved(file="x", column_offset=2)


def test_other_values_are_still_validated() -> None:
    with pytest.raises(ValidationError):
        make_diagnostic("QCB001", "m", severity="info")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        make_diagnostic("QCB001", "m", line="three")  # type: ignore[arg-type]
    coerced = make_diagnostic("QCB001", "m", line=True)  # what validation made of it before
    assert coerced == Diagnostic(file="<string>", line=True, column=1, end_line=True,
                                 end_column=2, severity="error", code="QCB001", message="m")
