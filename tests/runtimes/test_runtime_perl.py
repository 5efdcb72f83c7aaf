"""Perl callbacks in warm workers: `qb::` mirrors Python, and nothing a script does escapes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.perl import PerlRuntime, qb_module_source
from qbcallbacks.runtimes.qb.module import HOST_CALLS
from support.paths import EXAMPLES

needs_perl = pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=40)


@pytest.fixture
def runtime(sup: MemorySupervisor, tmp_path: Path):
    rt = PerlRuntime(sup, workdir=tmp_path, pool_size=1)
    yield rt
    rt.close()


def invoke(rt: PerlRuntime, code: str, job: int, *, timeout: float = 10.0,
           event: Event | None = None) -> RunResult:
    event = event or Event(name="done", type="job", job=job)
    return rt.run(Invocation(callback="inline.pl", code=code, job_id=job, event=event,
                             timeout=timeout))


def test_generated_module_mirrors_every_python_call() -> None:
    source = qb_module_source()
    for name in HOST_CALLS:
        assert f"sub {name} " in source
    for name in ("jobid", "workid", "subid", "event"):
        assert f"sub {name} " in source


@needs_perl
def test_example_checkwork_runs_unchanged(runtime: PerlRuntime, sup: MemorySupervisor,
                                          tmp_path: Path) -> None:
    job = sup.submit("shot_020", work=["1", "2"])
    for frame in ("1", "2"):
        event = Event(name="complete", type="work", job=job.id, extra=frame)
        result = runtime.run(Invocation(callback="checkWork.pl", path=EXAMPLES / "checkWork.pl",
                                        job_id=job.id, event=event, timeout=10,
                                        log_path=tmp_path / "logs" / f"{job.id}.cb"))
        assert result.status == "ok", result
    assert (tmp_path / "checkWork.log").read_text().splitlines() == [
        f"job {job.id} (shot_020) frame 1 finished", f"job {job.id} (shot_020) frame 2 finished"]
    assert (tmp_path / "logs" / f"{job.id}.cb").read_text().count("checkWork.pl on") == 2


@needs_perl
def test_success_and_qb_calls(runtime: PerlRuntime, sup: MemorySupervisor) -> None:
    render = sup.submit("render", label="render", work=["7"])
    comp = sup.submit("comp", label="comp", pgrp=render.id, work={"7": "blocked"}, subjobs=1)
    code = r"""
        use qb;
        my @group = qb::jobinfo("-pgrp", $render);
        print join(",", sort map { $_->{label} } @group), "\n";
        print "$qb::jobid ", qb::jobid(), " ", qb::workid(), " ", qb::subid(), "\n";
        print qb::workunblock("$qb::jobid:" . qb::workid()), qb::unblock($qb::jobid), "\n";
        print qb::kill("$qb::jobid.0"), "\n";
        qb::mail('ops@example.com', 'frame done', "body\n");
        printf("%s\n", "printf works");
        warn "a warning\n";
    """.replace("$render", str(render.id))
    event = Event(name="complete", type="work", job=render.id, extra="7")
    result = invoke(runtime, code, comp.id, event=event)
    assert result.status == "ok", result
    assert result.output.splitlines() == [
        "comp,render", f"{comp.id} {comp.id} 7 -1", "10", "1", "printf works", "a warning"]
    assert sup.work_status(comp.id, "7") == "pending"
    assert sup.subjob_status(comp.id, 0) == "killed"
    assert sup.mails[0].subject == "frame done"


@needs_perl
def test_bad_qb_call_dies_in_the_script(runtime: PerlRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(runtime, 'eval { qb::jobinfo("-frob") }; print "caught: $@"; '
                             'qb::workunblock("nocolon");', job.id)
    assert result.status == "error"
    assert result.output.startswith("caught: jobinfo: unknown option '-frob'")
    assert "expected 'jobid:workname'" in (result.error or "")


@needs_perl
@pytest.mark.parametrize(("code", "status", "exit_code", "words"), [
    ('print "before\\n"; die "boom\\n";', "error", 255, "boom"),
    ('print "before\\n"; exit 3;', "error", 3, "exit(3)"),
    ('print "before\\n"; exit;', "ok", 0, None),
    ('print "before\\n"; exit(0);', "ok", 0, None),
    ('print "before\\n"; my $x = ;', "error", 255, "syntax error"),
])
def test_die_exit_and_syntax_errors_end_only_the_callback(runtime: PerlRuntime,
                                                          sup: MemorySupervisor, code: str,
                                                          status: str, exit_code: int,
                                                          words: str | None) -> None:
    job = sup.submit("j")
    result = invoke(runtime, code + ' print "not reached\\n";', job.id)
    assert (result.status, result.exit_code) == (status, exit_code)
    assert "not reached" not in result.output
    if words:
        assert words in (result.error or "")
    again = invoke(runtime, 'print "alive $qb::jobid\\n";', job.id)
    assert again.status == "ok" and again.output == f"alive {job.id}\n"


@needs_perl
def test_scripts_do_not_leak_into_each_other(runtime: PerlRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    code = 'use strict; use warnings; our $count; $count++; sub helper { 1 } print "$count\\n";'
    assert invoke(runtime, code, job.id).output == "1\n"
    second = invoke(runtime, code, job.id)
    assert second.output == "1\n"  # a fresh package each run: no state, no "redefined" warning


@needs_perl
def test_hang_is_a_timeout_and_the_worker_is_replaced(runtime: PerlRuntime,
                                                      sup: MemorySupervisor) -> None:
    # How soon after the deadline the run ends is measured by bench/latency.py.
    job = sup.submit("j")
    result = invoke(runtime, '$| = 1; print "spinning\\n"; 1 while 1;', job.id, timeout=2.0)
    assert result.status == "timeout"
    assert result.output == "spinning\n"
    assert invoke(runtime, 'print qb::jobid(), "\\n";', job.id).output == f"{job.id}\n"


@needs_perl
@pytest.mark.parametrize(("code", "exit_code", "words"), [
    ('print "bye\\n"; kill "SEGV", $$; sleep 5;', -11, "SIGSEGV"),
    ('print "bye\\n"; POSIX::_exit(9);', 9, "exited with code 9"),
])
def test_crash_is_reported_and_the_next_callback_runs(runtime: PerlRuntime,
                                                      sup: MemorySupervisor, code: str,
                                                      exit_code: int, words: str) -> None:
    job = sup.submit("j")
    result = invoke(runtime, code, job.id)
    assert result.status == "crashed" and result.exit_code == exit_code
    assert words in (result.error or "")
    assert result.output == "bye\n"
    assert invoke(runtime, 'print "fine\\n";', job.id).output == "fine\n"


@needs_perl
def test_flood_is_capped_and_counted(sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j")
    with PerlRuntime(sup, workdir=tmp_path, output_cap=1000, pool_size=1) as rt:
        result = invoke(rt, 'print "x" x 99, "\\n" for 1..20000; print STDERR "tail\\n";',
                        job.id)
        assert result.status == "ok"
        assert len(result.output) == 1000
        assert result.output_dropped == 20000 * 100 + 5 - 1000
        assert invoke(rt, 'print "small\\n";', job.id).output == "small\n"


@needs_perl
def test_validate_accepts_use_qb_and_reports_syntax_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.pl"
    good.write_text("use strict;\nuse qb;\nqb::unblock($qb::jobid);\n")
    bad = tmp_path / "bad.pl"
    bad.write_text("use strict;\nif ($x) {\n  print 1;\n")
    rt = PerlRuntime()
    assert rt.validate(good) == []
    [diag] = rt.validate(bad)
    assert diag.code == "QCB402" and diag.line == 2 and diag.file == str(bad)
    assert "never closed" in diag.message


def test_without_perl_runs_report_an_error(sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    rt = PerlRuntime(sup, perl="/nonexistent/perl")
    result = invoke(rt, 'print "hi\\n";', job.id)
    assert result.status == "error" and "perl" in (result.error or "")
    assert rt.validate(Path("/nonexistent.pl")) == []
    rt.close()


@needs_perl
def test_a_script_replaced_by_a_fifo_or_removed_is_an_error_not_a_wait(
        runtime: PerlRuntime, sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j")
    script = tmp_path / "cb.pl"
    script.write_text('print "ran\\n";\n')

    def run_script() -> RunResult:
        # Generous deadline: only a run that waits on the FIFO would reach it.
        return runtime.run(Invocation(callback="cb.pl", path=script, job_id=job.id,
                                      event=Event(name="done", type="job", job=job.id),
                                      timeout=60))

    assert (run_script().status, run_script().output) == ("ok", "ran\n")
    script.unlink()
    os.mkfifo(script)
    fifo = run_script()
    assert fifo.status == "error", fifo
    assert "cannot read the script" in (fifo.error or "")
    assert "not a regular file" in (fifo.error or "")
    script.unlink()
    gone = run_script()
    assert gone.status == "error" and "No such file" in (gone.error or ""), gone


@needs_perl
@pytest.mark.parametrize("code", [
    'die "boom";',
    'my @j = qb::jobinfo("-id", $qb::jobid); die "boom";',
    'warn "careful"; die "boom";',
])
def test_a_die_names_the_script_line_and_no_worker_handle(runtime: PerlRuntime,
                                                          sup: MemorySupervisor,
                                                          code: str) -> None:
    """Perl adds the last-read handle to a message; the worker's own pipe is not the site's."""
    job = sup.submit("j")
    for _ in range(2):    # the second run follows reads the worker made for the first
        result = invoke(runtime, code, job.id)
        assert result.status == "error"
        assert "boom at inline.pl line 1" in (result.error or "")
        assert "<" not in (result.error or "") and "<" not in result.output


@needs_perl
def test_a_die_after_the_script_reads_a_file_names_that_file(runtime: PerlRuntime,
                                                              sup: MemorySupervisor,
                                                              tmp_path: Path) -> None:
    """A script's own reads still give Perl's usual `<$fh> line N` suffix."""
    data = tmp_path / "data.txt"
    data.write_text("one\ntwo\n")
    job = sup.submit("j")
    result = invoke(runtime, f'open(my $fh, "<", "{data}") or die; my $l = <$fh>; $l = <$fh>; '
                             'die "boom";', job.id)
    assert "<$fh> line 2" in (result.error or "")
