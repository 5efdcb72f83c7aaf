"""`check` with the habits ruff users bring: fixes, settings files, colour, an output file,
watching, shell completion, and machine formats that keep a finding's identity across edits."""

from __future__ import annotations

import json
import os
import pty
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.cli import run_cli
from support.paths import BROKEN, ROOT

BIN = Path(sys.executable).parent
SCRIPT = BIN / "qbcallbacks"
ESCAPE = "\x1b["
PLAIN_ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """The command run in this process (`support.cli`): what it prints and returns."""
    return run_cli(*args, cwd=cwd, env=PLAIN_ENV if env is None else env)


def run_process(*args: str, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """The installed script in its own process: colour is decided from its real streams."""
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=PLAIN_ENV if env is None else env, check=False)


def codes(done: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"\[(QCB\d+)\]$", done.stdout, re.MULTILINE)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of examples/broken, its files owned and writable by the user only."""
    target = tmp_path / "site" / "callback"
    shutil.copytree(BROKEN, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def test_fix_repairs_a_typo_and_the_file_then_checks_clean(tmp_path: Path) -> None:
    directory = tmp_path / "cb"
    directory.mkdir()
    (directory / "done.py").write_text("pass\n")
    (directory / "unblock.qcb").write_text("# unblock\nunblok-self\n")
    conf = directory / "callbacks.conf"
    conf.write_bytes(b"done.py = complete-jbo-self\r\nunblock.qcb = done-job-self\r\n")
    before = run("check", str(directory), "--output-format", "concise")
    assert before.returncode == 1 and codes(before) == ["QCB103", "QCB301"]
    fixed = run("check", str(directory), "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "2 fixed" in fixed.stderr
    assert conf.read_bytes() == b"done.py = complete-job-self\r\nunblock.qcb = done-job-self\r\n"
    assert (directory / "unblock.qcb").read_text() == "# unblock\nunblock-self\n"
    again = run("check", str(directory))
    assert again.returncode == 0 and again.stdout == ""


def test_the_summary_says_what_fix_would_repair(site: Path) -> None:
    done = run("check", str(site))
    assert done.stderr.rstrip().endswith("; 2 fixable with --fix, 2 more with --unsafe-fixes")
    selected = run("check", str(site), "--select", "QCB2")
    assert selected.stderr.rstrip().endswith("; 2 more with --unsafe-fixes")
    assert "fixable" not in run("check", str(site), "--select", "QCB1", "--ignore",
                                "QCB103").stderr


def test_unsafe_fixes_only_when_asked(site: Path) -> None:
    conf = site / "callbacks.conf"
    safe = run("check", str(site), "--fix", "--output-format", "concise")
    assert "complete-job-self" in conf.read_text()
    assert {"QCB202", "QCB203"} <= set(codes(safe)) and "QCB103" not in codes(safe)
    unsafe = run("check", str(site), "--fix", "--unsafe-fixes", "--output-format", "concise")
    assert not {"QCB202", "QCB203"} & set(codes(unsafe))
    text = conf.read_text()
    assert text.count("good.py = done-job-self") == 1
    assert "oldstyle.py = failed-job-self\n" in text
    # What no fix can mend is still reported, and the exit status says so.
    assert unsafe.returncode == 1 and "QCB101" in codes(unsafe)
    assert run("check", str(site), "--unsafe-fixes").returncode == 2


def test_settings_in_pyproject_ignore_and_per_file_ignores(site: Path) -> None:
    project = site.parent
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.qbcallbacks]\nignore = ["QCB11"]\n\n'
        '[tool.qbcallbacks.per-file-ignores]\n"callback/*.qcb" = ["QCB301"]\n')
    found = codes(run("check", str(site), "--output-format", "concise"))
    assert "QCB301" not in found and not any(c.startswith("QCB11") for c in found)
    assert "QCB101" in found
    # --select on the command line replaces the file's select; its ignore still holds.
    selected = codes(run("check", str(site), "--select", "QCB1,QCB3"))
    assert set(selected) == {"QCB101", "QCB103", "QCB104", "QCB105", "QCB106"}
    isolated = codes(run("check", str(site), "--isolated"))
    assert "QCB301" in isolated and "QCB112" in isolated


def test_the_nearest_settings_file_wins(site: Path, tmp_path: Path) -> None:
    (tmp_path / "qbcallbacks.toml").write_text('ignore = ["QCB1"]\n')
    assert not any(c.startswith("QCB1") for c in codes(run("check", str(site))))
    # A pyproject.toml without the table is passed over; a nearer qbcallbacks.toml wins.
    (site.parent / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert not any(c.startswith("QCB1") for c in codes(run("check", str(site))))
    (site / "qbcallbacks.toml").write_text('select = ["QCB2"]\n')
    assert set(codes(run("check", str(site)))) == {"QCB202", "QCB203"}
    named = tmp_path / "other.toml"
    named.write_text('select = ["QCB301"]\n')
    assert codes(run("check", str(site), "--config", str(named))) == ["QCB301"]


@pytest.mark.parametrize(("text", "message"), [
    ('ignore = "QCB1"\n', "expected a list of codes"),
    ('ignore = ["XYZ9"]\n', "'XYZ9' is not a code"),
    ('exclude = ["a"]\n', "unknown setting 'exclude'"),
    ("ignore = [\n", "not valid TOML"),
])
def test_a_bad_settings_file_is_a_setup_error(site: Path, text: str, message: str) -> None:
    (site / "qbcallbacks.toml").write_text(text)
    done = run("check", str(site))
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr
    both = run("check", str(site), "--isolated", "--config", str(site / "qbcallbacks.toml"))
    assert both.returncode == 2


def test_colour_follows_no_color_and_force_color(site: Path) -> None:
    piped = run_process("check", str(site))
    assert piped.stdout and ESCAPE not in piped.stdout
    forced = run_process("check", str(site), env={**PLAIN_ENV, "FORCE_COLOR": "1"})
    assert ESCAPE in forced.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == piped.stdout
    assert ESCAPE in terminal_output(site, {})
    assert ESCAPE not in terminal_output(site, {"NO_COLOR": "1"})


def terminal_output(site: Path, extra: dict[str, str]) -> str:
    """What `check` writes to a pseudo-terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        env = {**PLAIN_ENV, "TERM": "xterm", **extra}
        os.execve(str(SCRIPT), [str(SCRIPT), "check", str(site), "-q"], env)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(pid, 0)
    os.close(fd)
    return b"".join(chunks).decode()


def test_output_file_gets_the_findings(site: Path, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "check.json"
    done = run("check", str(site), "--output-format", "json", "-o", str(target),
               env={**PLAIN_ENV, "FORCE_COLOR": "1"})
    assert done.returncode == 1 and done.stdout == ""
    assert len(json.loads(target.read_text())) == 11


def test_watch_checks_again_after_a_change(tmp_path: Path) -> None:
    directory = tmp_path / "cb"
    directory.mkdir()
    (directory / "a.py").write_text("pass\n")
    conf = directory / "callbacks.conf"
    conf.write_text("a.py = done-job-self\n")
    with subprocess.Popen([str(SCRIPT), "check", str(directory), "--watch"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=PLAIN_ENV) as proc:
        watch_twice(proc, conf)


def watch_twice(proc: subprocess.Popen[bytes], conf: Path) -> None:
    try:
        first = read_until(proc, "watching for file changes")
        assert "0 error(s)" in first
        # The watcher may start a moment after it says so: write until a second run shows.
        second = read_until(proc, "1 error(s)",
                            nudge=lambda: conf.write_text("a.py = done-jbo-self\n"))
        assert "files changed" in second
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def read_until(proc: subprocess.Popen[bytes], marker: str, deadline: float = 60.0,
               nudge: Callable[[], object] | None = None) -> str:
    """Standard error of `proc` up to `marker` (the test fails if it does not come); `nudge`
    is called whenever half a second passes without output."""
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen = b""
    end = time.monotonic() + deadline
    while marker.encode() not in seen:
        left = end - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        if nudge is not None:
            nudge()
        if selector.select(timeout=min(left, 0.5) if nudge else left):
            chunk = os.read(proc.stderr.fileno(), 65536)
            assert chunk, f"the watcher ended: {seen!r}"
            seen += chunk
    selector.close()
    return seen.decode()


def test_bash_completion_completes_commands_and_choices() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = ('source <(qbcallbacks completion bash)\n'
              'COMP_WORDS=(qbcallbacks ch); COMP_CWORD=1; COMPREPLY=()\n'
              '_qbcallbacks_completion qbcallbacks; echo "${COMPREPLY[*]}"\n'
              'COMP_WORDS=(qbcallbacks check --output-format sa); COMP_CWORD=3; COMPREPLY=()\n'
              '_qbcallbacks_completion qbcallbacks; echo "${COMPREPLY[*]}"\n')
    done = subprocess.run([bash, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**PLAIN_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
                          check=True)
    assert done.stdout.splitlines() == ["check", "sarif"]
    for shell in ("zsh", "fish"):
        assert "_QBCALLBACKS_COMPLETE" in run("completion", shell).stdout
    assert run("completion", "tcsh").returncode == 2


def test_top_level_help_names_every_command() -> None:
    from qbcallbacks.cli import COMMANDS

    done = run("--help")
    listed = done.stdout.split("Commands:", 1)[1]
    head = done.stdout.split("Options:", 1)[0]
    for name in COMMANDS:
        assert re.search(rf"^  {name}\s", listed, re.MULTILINE), name
        assert re.search(rf"\b{name}\b", head), name


def test_sarif_rules_link_their_help_and_results_carry_fingerprints(site: Path) -> None:
    log = json.loads(run("check", "callback", "--output-format", "sarif",
                         cwd=site.parent).stdout)
    headings = {re.sub(r"[^a-z0-9 _-]", "", line[3:].lower()).replace(" ", "-")
                for line in (ROOT / "spec" / "codes.md").read_text().splitlines()
                if line.startswith("## ")}
    (the_run,) = log["runs"]
    for rule in the_run["tool"]["driver"]["rules"]:
        uri, _, fragment = rule["helpUri"].partition("#")
        assert re.match(r"^https://", uri) and fragment in headings, rule["helpUri"]
    marks = [r["partialFingerprints"]["qbcallbacksFinding/v1"] for r in the_run["results"]]
    assert len(set(marks)) == len(marks) == 11


def test_gitlab_fingerprints_survive_moved_lines_and_paths_are_relative(site: Path) -> None:
    project = site.parent
    before = json.loads(run("check", str(site), "--output-format", "gitlab",
                            env={**PLAIN_ENV, "CI_PROJECT_DIR": str(project)}).stdout)
    assert {issue["location"]["path"] for issue in before} == {
        "callback/callbacks.conf", "callback/commands.qcb"}
    conf = site / "callbacks.conf"
    conf.write_text("\n\n" + conf.read_text())
    after = json.loads(run("check", str(site), "--output-format", "gitlab",
                           cwd=project).stdout)
    assert [i["fingerprint"] for i in after] == [i["fingerprint"] for i in before]
    assert [i["location"]["lines"]["begin"] for i in after] != [
        i["location"]["lines"]["begin"] for i in before]
    assert len({i["fingerprint"] for i in after}) == len(after)


def test_concise_output_escapes_control_characters(tmp_path: Path) -> None:
    directory = tmp_path / "cb\x1b[31m"  # a name that would turn the terminal red
    directory.mkdir()
    (directory / "callbacks.conf").write_text("a.py = done-jbo-self\n")
    done = run("check", str(directory), "--output-format", "concise")
    assert done.returncode == 1 and "\\x1b" in done.stdout and "\x1b" not in done.stdout
