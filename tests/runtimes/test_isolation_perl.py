"""Warm Perl workers start every callback from a clean slate, or are replaced.

Each case runs a callback that leaves something behind, then an innocent one for another job
in the same one-worker pool, and checks what the second one sees.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.perl import PerlRuntime

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=40)


@pytest.fixture
def rt(sup: MemorySupervisor, tmp_path: Path):
    runtime = PerlRuntime(sup, workdir=tmp_path, pool_size=1)
    yield runtime
    runtime.close()


def invoke(rt: PerlRuntime, code: str, job: int, *, timeout: float = 5.0) -> RunResult:
    return rt.run(Invocation(callback="inline.pl", code=code, job_id=job,
                             event=Event(name="submit", type="job", job=job), timeout=timeout))


LEAKS = {
    # the slurp idiom without `local`: the next callback's reads (and its qb calls) must work
    "input record separator": (
        "undef $/;",
        'open(my $w, ">", "two.txt"); print $w "one\\ntwo\\n"; close($w);\n'
        'open(my $r, "<", "two.txt"); my $l = <$r>; print $l;\n'
        "my @j = qb::jobinfo('-id', qb::jobid()); print scalar(@j), \"\\n\";",
        "one\n1\n"),
    "output separators": (
        '$, = "-"; $\\ = "!"; $" = ":";',
        'my @a = (1, 2); print "a", "b"; print "@a\\n";',
        "ab1 2\n"),
    "environment": (
        '$ENV{PERL5OPT} = "-Mevil"; delete $ENV{PATH};',
        'print exists $ENV{PERL5OPT} ? "planted" : "clean", " ", '
        'exists $ENV{PATH} ? "path" : "nopath", "\\n";',
        "clean path\n"),
    "qb::jobid replaced": (
        "no warnings; *qb::jobid = sub { 777 }; $qb::jobid = 777;",
        'print qb::jobid(), " $qb::jobid\\n";',
        "{job} {job}\n"),
    "qb::jobid emptied in place": (
        "no warnings; undef &qb::jobid; undef &QbWorker::call;",
        'print qb::jobid(), " ", qb::unblock(qb::jobid()) ? "done" : "refused", "\\n";',
        "{job} done\n"),
    "qb::unblock redefined": (
        "no warnings; *qb::unblock = sub { 0 }; *QbWorker::call = sub { 0 };",
        "print qb::unblock(qb::jobid()) ? \"done\\n\" : \"refused\\n\";",
        "done\n"),
    "signal handler and alarm": (
        '$SIG{ALRM} = sub { print "hijacked\\n" }; $SIG{TERM} = "IGNORE"; alarm 1;',
        'select(undef, undef, undef, 1.5);\n'
        'print +($SIG{TERM} // "DEFAULT") eq "DEFAULT" ? "default" : "set", "\\n";',
        "default\n"),
    "descriptor 1 reopened": (
        'use POSIX (); POSIX::close(1); open(our $F, ">", "captured.txt"); $main::F = $F;',
        'print "seen\\n"; syswrite(STDOUT, "raw\\n");',
        "seen\nraw\n"),
    "umask and @INC": (
        'umask 0; unshift @INC, "/tmp/evil";',
        'printf "%04o %s\\n", umask, (grep { $_ eq "/tmp/evil" } @INC) ? "evil" : "clean";',
        "0022 clean\n"),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_the_next_callback_sees_a_clean_world(rt: PerlRuntime, sup: MemorySupervisor,
                                              leak: str, tmp_path: Path) -> None:
    first = sup.submit("first")
    second = sup.submit("second")
    sup.job_action("block", second.id)
    dirty, probe, expected = LEAKS[leak]
    assert invoke(rt, dirty, first.id).status == "ok"
    result = invoke(rt, probe, second.id)
    assert (result.status, result.output) == ("ok", expected.format(job=second.id)), result
    captured = tmp_path / "captured.txt"
    assert not captured.exists() or captured.read_bytes() == b""


def _pid(rt: PerlRuntime, job: int) -> int:
    return int(invoke(rt, 'print "$$\\n";', job).output)


def test_a_descriptor_left_open_costs_the_worker(rt: PerlRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    before = _pid(rt, job.id)
    assert invoke(rt, 'use POSIX (); POSIX::open("/dev/null", 0);', job.id).status == "ok"
    assert _pid(rt, job.id) != before


def test_a_handle_kept_in_a_global_is_closed_with_it(rt: PerlRuntime,
                                                     sup: MemorySupervisor) -> None:
    """Deleting the run's globals drops the handle: the descriptor is free again."""
    job = sup.submit("j")
    before = _pid(rt, job.id)
    assert invoke(rt, 'open(our $KEEP, "<", "/dev/null"); $main::KEEP = $KEEP;',
                  job.id).status == "ok"
    assert _pid(rt, job.id) == before


def test_a_clean_run_keeps_its_worker(rt: PerlRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    assert len({_pid(rt, job.id) for _ in range(3)}) == 1


def test_qb_arguments_are_bounded_with_a_clear_error(rt: PerlRuntime,
                                                     sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(rt, "my @a = ('-pgrp', 1) x 700000; eval { qb::jobinfo(@a) }; print $@;",
                    job.id)
    assert result.status == "ok"
    assert result.output.startswith("qb::jobinfo: 1400000 arguments, over the limit of 256 "
                                    "[QCB016]")
    result = invoke(rt, "eval { qb::mail('a@example.com', 's', 'x' x 70000) }; print $@;",
                    job.id)
    assert result.output.startswith("qb::mail: argument 3 has size 70000, over the limit of "
                                    "65536 [QCB017]")


GLOBALS = {
    # one script sets a global; every later script must start without it
    "a $main:: variable": (
        'print defined $main::seen ? "seen\\n" : "fresh\\n"; $main::seen = 1;'),
    "an our variable in the script's package": (
        'our $count; $count++; print $count == 1 ? "fresh\\n" : "seen\\n";'),
    "an our variable in package main": (
        'package main; our $count; print defined $count ? "seen\\n" : "fresh\\n"; $count = 1;'),
    "a global planted in a preloaded module": (
        'print defined $POSIX::planted ? "seen\\n" : "fresh\\n"; $POSIX::planted = 1;'),
    "a package the script declares": (
        'print defined &Helper::shout ? "seen\\n" : "fresh\\n";\n'
        'eval "package Helper; sub shout { 1 } 1" or die $@;'),  # declared after the probe
}


@pytest.mark.parametrize("case", sorted(GLOBALS))
def test_no_global_reaches_a_later_script(rt: PerlRuntime, sup: MemorySupervisor,
                                          case: str) -> None:
    job = sup.submit("j")
    outputs = [invoke(rt, GLOBALS[case], job.id) for _ in range(10)]
    assert [(r.status, r.output) for r in outputs] == [("ok", "fresh\n")] * 10, outputs
    assert len({_pid(rt, job.id) for _ in range(2)}) == 1  # and the worker was kept


def test_a_loaded_modules_globals_start_afresh(rt: PerlRuntime, sup: MemorySupervisor,
                                               tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "Counter.pm").write_text("package Counter;\nour $n = 0;\nsub bump { ++$n }\n1;\n")
    job = sup.submit("j")
    script = (f'use lib "{lib}"; use Counter;\n'
              'print Counter::bump(), " ", (exists $INC{"Counter.pm"} ? "loaded" : "?"), "\\n";')
    before = _pid(rt, job.id)
    outputs = [invoke(rt, script, job.id) for _ in range(5)]
    assert [(r.status, r.output) for r in outputs] == [("ok", "1 loaded\n")] * 5, outputs
    probe = invoke(rt, 'print exists $INC{"Counter.pm"} ? "kept\\n" : "gone\\n";', job.id)
    assert probe.output == "gone\n"
    assert _pid(rt, job.id) == before  # a pure-Perl module is unloaded, not the worker


def test_a_compiled_module_costs_the_worker(rt: PerlRuntime, sup: MemorySupervisor) -> None:
    """An XS module cannot be unloaded: the worker is replaced, and the module loads again."""
    job = sup.submit("j")
    script = "use Time::HiRes (); print Time::HiRes::time() > 0 ? \"ok\\n\" : \"no\\n\";"
    before = _pid(rt, job.id)
    assert invoke(rt, script, job.id).output == "ok\n"
    after = _pid(rt, job.id)
    assert after != before
    assert invoke(rt, script, job.id).output == "ok\n"


def test_end_blocks_run_at_the_end_of_their_own_run(rt: PerlRuntime,
                                                    sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    first = invoke(rt, 'END { print "end one\\n" } END { print "end two\\n" } print "body\\n";',
                   job.id)
    assert (first.status, first.output) == ("ok", "body\nend two\nend one\n")
    second = invoke(rt, 'print "second\\n";', job.id)
    assert (second.status, second.output) == ("ok", "second\n")
    failing = invoke(rt, 'END { die "in END\\n" } print "body\\n";', job.id)
    assert (failing.status, failing.output) == ("error", "body\n")
    assert failing.error is not None and "in END" in failing.error
    exiting = invoke(rt, 'END { exit 3 } 1;', job.id)
    assert (exiting.status, exiting.exit_code) == ("error", 3)
    assert invoke(rt, 'print "clean\\n";', job.id).output == "clean\n"


def test_a_package_deleted_and_made_again_costs_the_worker(rt: PerlRuntime,
                                                           sup: MemorySupervisor) -> None:
    """Its new globals are not the package the worker sealed: the next run gets a fresh one."""
    job = sup.submit("j")
    before = _pid(rt, job.id)
    dirty = 'no warnings; delete $main::{"Carp::"}; $Carp::planted = 1;'
    assert invoke(rt, dirty, job.id).status == "ok"
    probe = invoke(rt, 'print defined $Carp::planted ? "seen" : "fresh", " ", '
                       'defined &Carp::croak ? "carp" : "nocarp", "\\n";', job.id)
    assert (probe.status, probe.output) == ("ok", "fresh carp\n"), probe
    assert _pid(rt, job.id) != before
