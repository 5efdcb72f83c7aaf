"""Time and peak memory of `check` (loading a callback directory) on hostile inputs, against
`configparser` reading an ordinary INI file of the same size in the same run.

    python bench/hostile.py [--scale 1.0]

Each hostile directory is loaded twice: once for the time (no tracing), once under tracemalloc
for the peak. The baseline is configparser on a file of `key = value` lines as large as the
hostile file (at least 64 KiB, so that tiny inputs are not compared with nothing). The goal:
every input answers within 2x the baseline's time and within 100 MB.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from qbcallbacks.config.load import load_directory
from qbcallbacks.model.limits import Limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

MB = 1 << 20
NL = b"\n"
#: Limits raised so far that the line, depth and diagnostics checks (not the size check) are
#: what stops each input: the worst case a site could configure.
RAISED = Limits(max_config_bytes=64 * MB, max_qcb_bytes=64 * MB)


def timed(work: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def peak(work: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def ini_baseline(size: int, folder: Path) -> tuple[float, float]:
    """Time and peak of configparser reading an ordinary file of `size` bytes."""
    path = folder / "baseline.ini"
    line = "render_node_{:08d} = /farm/share/project/shot_{:08d}/frames\n"
    count = max(size, 64 * 1024) // len(line.format(0, 0)) + 1
    path.write_text("[farm]\n" + "".join(line.format(i, i) for i in range(count)))

    def read() -> None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(path.read_text(encoding="utf-8"))

    return timed(read), peak(read)


def make_inputs(root: Path, scale: float) -> list[tuple[str, Path, Limits]]:
    """Hostile callback directories: (description, directory, limits to load it with)."""
    def conf_dir(name: str, content: bytes | None = None) -> Path:
        d = root / name
        d.mkdir()
        (d / "a.py").write_text("pass\n")
        if content is not None:
            (d / "callbacks.conf").write_bytes(content)
        return d

    n = int(1_000_000 * scale)
    parens = b"a.py = " + b"(" * n + b"a-job-self" + b")" * n + b"\n"
    out: list[tuple[str, Path, Limits]] = [
        (f"{n:,} nested parentheses (size limit)", conf_dir("parens", parens), Limits()),
        (f"{n:,} nested parentheses (limits raised)", conf_dir("parens2", parens), RAISED),
        ("depth 2,000 within the line length",
         conf_dir("deep", b"a.py = " + b"(" * 2000 + b"a-job-self" + b")" * 2000 + b"\n"),
         Limits()),
    ]
    blank = b"\n" * int(5 * MB * scale)
    out += [(f"{len(blank) // MB} MB of blank lines (size limit)", conf_dir("blank", blank),
             Limits()),
            (f"{len(blank) // MB} MB of blank lines (limits raised)", conf_dir("blank2", blank),
             RAISED)]
    bad = int(200_000 * scale)
    out.append((f"{bad:,} bad config lines (limits raised)",
                conf_dir("bad", b"a.py = done-jib-self\n" * bad), RAISED))
    qcb = conf_dir("badqcb", b"x.qcb = done-job-self\n")
    (qcb / "x.qcb").write_bytes(b"unblok-self\n" * bad)
    out.append((f"{bad:,} bad qcb lines (size limit)", qcb, Limits()))
    good = int(1_000_000 * scale)
    good_text = b"".join(b"a.py = done-job-x%d\n" % i for i in range(good))
    out.append((f"{good:,} good lines (size limit)", conf_dir("good", good_text), Limits()))
    fits = good_text[:Limits().max_config_bytes]
    fits = fits[:fits.rfind(b"\n") + 1]
    out.append((f"{fits.count(NL):,} good lines (1 MiB, the default limit)",
                conf_dir("good1", fits), Limits()))
    fewer = good_text[:good_text.index(b"x%d\n" % (good // 5)) + 1]
    fewer = fewer[:fewer.rfind(b"\n") + 1]
    out.append((f"{fewer.count(NL):,} good lines (limits raised)",
                conf_dir("good2", fewer), RAISED))
    script = conf_dir("script", b"big.py = done-job-self\n")
    with open(script / "big.py", "wb") as f:
        f.truncate(54 * MB)
    out.append(("54 MB Python script", script, Limits()))
    fifo = conf_dir("fifo")
    os.mkfifo(fifo / "callbacks.conf")
    out.append(("callbacks.conf is a FIFO", fifo, Limits()))
    zero = conf_dir("zero")
    (zero / "callbacks.conf").symlink_to("/dev/zero")
    out.append(("callbacks.conf links to /dev/zero", zero, Limits()))
    return out


def input_size(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        info = path.lstat()
        if path.is_file() and not path.is_symlink():
            total += info.st_blocks * 512 if info.st_size > 16 * MB else info.st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=None, help="input size factor (1.0)")
    add_rows_option(parser)
    args = parser.parse_args()
    scale = args.scale or SCALES[args.rows or "full"]
    with report_to_stderr(args.rows is not None):
        worst = measure(scale)
    if args.rows:
        (t_name, t_ratio), (m_name, m_mb) = worst
        emit([row(f"check on hostile input (scale {scale:g}), slowest against configparser",
                  t_name, "configparser, an INI file as large", t_ratio, "<= 2x", t_ratio <= 2),
              row(f"check on hostile input (scale {scale:g}), largest peak", m_name,
                  f"{m_mb:.0f} MB", None, "<= 100 MB", m_mb <= 100)])


#: Input size factor per bench/run mode.
SCALES = {"smoke": 0.002, "quick": 0.05, "full": 1.0}


def measure(scale: float) -> tuple[tuple[str, float], tuple[str, float]]:
    """Print the table; the input with the worst time ratio, and the one with the largest
    peak memory (in MB)."""
    worst_time, worst_peak = ("", 0.0), ("", 0.0)
    with tempfile.TemporaryDirectory(prefix="qcb-hostile-") as tmp:
        root = Path(tmp)
        print(f"{'input':<44} {'codes':<16} {'check s':>8} {'ini s':>7} {'ratio':>6} "
              f"{'check MB':>8} {'ini MB':>7}")
        for name, directory, limits in make_inputs(root, scale):
            load = load_directory(str(directory), limits=limits)
            codes = ",".join(sorted({d.code for d in load.diagnostics})) or "-"
            seconds = timed(lambda d=directory, lim=limits: load_directory(str(d), limits=lim))
            mb = peak(lambda d=directory, lim=limits: load_directory(str(d), limits=lim))
            base_s, base_mb = ini_baseline(input_size(directory), root)
            print(f"{name:<44} {codes[:16]:<16} {seconds:8.3f} {base_s:7.3f} "
                  f"{seconds / base_s:6.2f} {mb:8.1f} {base_mb:7.1f}")
            worst_time = max(worst_time, (name, seconds / base_s), key=lambda w: w[1])
            worst_peak = max(worst_peak, (name, mb), key=lambda w: w[1])
    return worst_time, worst_peak


if __name__ == "__main__":
    main()
