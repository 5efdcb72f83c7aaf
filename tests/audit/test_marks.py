from __future__ import annotations

from qbcallbacks.audit.marks import RunMarks


def test_marks_are_read_back_after_a_kill_and_emptied_once_shipped(tmp_path):
    marks = RunMarks(tmp_path / "runs.marks")
    marks.append((7, 1, 1.5))
    marks.append((8, 2, 2.25))
    assert marks.unshipped() == [(7, 1, 1.5), (8, 2, 2.25)]
    marks.close()  # killed: nothing shipped
    with open(tmp_path / "runs.marks", "ab") as fh:
        fh.write(b"9\t1\t3.")  # a line torn by the kill
    again = RunMarks(tmp_path / "runs.marks")
    assert again.left_over() == [(7, 1, 1.5), (8, 2, 2.25)]
    again.shipped(0)  # the left-overs are in the trail now: the file is emptied
    assert again.left_over() == []
    again.append((9, 1, 4.0))
    again.append((10, 1, 5.0))
    assert again.left_over() == [(9, 1, 4.0), (10, 1, 5.0)]  # never glued to a torn line
    again.shipped(1)  # only the first is in the trail: the file keeps everything
    assert again.unshipped() == [(10, 1, 5.0)] and len(again.left_over()) == 2
    again.shipped(1)
    assert again.left_over() == [] and (tmp_path / "runs.marks").stat().st_size == 0
    again.close()
