"""Language server latency, against `check` on the same text in the same run.

A real client (pygls) starts `qbcallbacks lsp` over stdio and opens a 1,000-line
callbacks.conf in a directory holding its scripts. Measured, warm (after a few rounds):

* diagnostics: from sending a one-character change (incremental) until the diagnostics for
  that version arrive, debounce set to 0 so the figure is the server's own work; median;
* completion: round trip of completion requests at name, type, context and file positions; p99.

Baselines on the same text in the same run: `load_directory` (the whole of `check` but
printing) in this process, median, and the `qbcallbacks check` command itself (a new process
per run, as an editor plugin without a server would run it), median of 5.

    .venv/bin/python bench/lsp.py [--lines N] [--rounds N]

Targets: diagnostics under 50 ms (median), completion p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as t
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from qbcallbacks.config.load import load_directory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

#: (lines, rounds) per bench/run mode.
SIZES = {"smoke": (1000, 8), "quick": (1000, 20), "full": (1000, 60)}

NAMES = ["complete", "done", "failed", "killed", "running", "submit", "render_ok"]
TYPES = ["job", "work", "subjob"]
CONTEXTS = ["self", "parent", "comp", "lighting", "19294"]


def make_text(lines: int) -> str:
    out = ["# site callbacks"]
    for i in range(lines - 1):
        name, typ = NAMES[i % len(NAMES)], TYPES[(i // 7) % len(TYPES)]
        ctx = CONTEXTS[(i // 3) % len(CONTEXTS)]
        extra = "" if typ == "job" else f"-{i}"
        trigger = f"{name}-{typ}-{ctx}{extra}"
        if i % 5 == 0:
            trigger += f" && done-job-{CONTEXTS[i % len(CONTEXTS)]}"
        out.append(f"cb{i % 40}.{'py' if i % 2 else 'qcb'} = {trigger}")
    return "\n".join(out) + "\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(root: Path, text: str, rounds: int) -> tuple[list[float], list[float]]:
    client = LanguageClient("bench", "1")
    arrived: dict[int, float] = {}
    waiting: dict[int, asyncio.Future[None]] = {}

    @client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def diagnostics(params: t.PublishDiagnosticsParams) -> None:
        if params.version is not None and params.version in waiting:
            arrived[params.version] = time.perf_counter()
            waiting.pop(params.version).set_result(None)

    await client.start_io(sys.executable, "-m", "qbcallbacks", "lsp")
    await client.initialize_async(t.InitializeParams(
        capabilities=t.ClientCapabilities(), initialization_options={"debounce": 0}))
    client.initialized(t.InitializedParams())
    uri = from_fs_path(str(root / "callbacks.conf")) or ""
    loop = asyncio.get_running_loop()
    waiting[1] = loop.create_future()
    client.text_document_did_open(t.DidOpenTextDocumentParams(text_document=t.TextDocumentItem(
        uri=uri, language_id="qbcallbacks", version=1, text=text)))
    await waiting[1] if 1 in waiting else None
    diag_times: list[float] = []
    line = 500
    for version in range(2, rounds + 2):
        # Toggle one character of a context: `self` <-> `selg` (a near-miss warning).
        old, new = ("f", "g") if version % 2 == 0 else ("g", "f")
        current = text.splitlines()[line]
        col = current.rfind("sel") + 3 if "sel" in current else len(current)
        fut = waiting[version] = loop.create_future()
        sent = time.perf_counter()
        client.text_document_did_change(t.DidChangeTextDocumentParams(
            text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[t.TextDocumentContentChangePartial(
                range=t.Range(start=t.Position(line=line, character=col),
                              end=t.Position(line=line, character=col + 1)),
                text=new)]))
        await fut
        del old
        if version > 4:
            diag_times.append(arrived[version] - sent)
    completion_times: list[float] = []
    positions = [(10, 8), (10, 14), (11, 20), (12, 0), (900, 17)]
    for n in range(rounds * 4):
        ln, ch = positions[n % len(positions)]
        sent = time.perf_counter()
        await client.text_document_completion_async(t.CompletionParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            position=t.Position(line=ln, character=ch)))
        if n >= len(positions):
            completion_times.append(time.perf_counter() - sent)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return diag_times, completion_times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=None, help="(1000)")
    parser.add_argument("--rounds", type=int, default=None, help="(60)")
    add_rows_option(parser)
    args = parser.parse_args()
    lines, rounds = SIZES[args.rows or "full"]
    args.lines, args.rounds = args.lines or lines, args.rounds or rounds
    with report_to_stderr(args.rows is not None):
        rows = measure_all(args)
    if args.rows:
        emit(rows)


def measure_all(args: argparse.Namespace) -> list[dict[str, object]]:
    """Print the report; rows: diagnostics against check in process, completion p99."""
    text = make_text(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(40):
            script = root / f"cb{i}.{'py' if i % 2 else 'qcb'}"
            script.write_text("print('ok')\n" if i % 2 else "mail-status\n")
            script.chmod(0o644)
        (root / "callbacks.conf").write_text(text)
        (root / "callbacks.conf").chmod(0o644)
        check_times = []
        for n in range(max(3, args.rounds // 3)):
            start = time.perf_counter()
            load = load_directory(str(root))
            if n:
                check_times.append(time.perf_counter() - start)
        command = shutil.which("qbcallbacks") or str(Path(sys.executable).parent / "qbcallbacks")
        spawn_times = []
        for _ in range(max(1, min(5, args.rounds // 12))):
            start = time.perf_counter()
            subprocess.run([command, "check", str(root)], capture_output=True, check=False)
            spawn_times.append(time.perf_counter() - start)
        diag, comp = asyncio.run(measure(root, text, args.rounds))
    check = statistics.median(check_times)
    d_med = statistics.median(diag)
    print(f"{args.lines}-line callbacks.conf, {len(load.rules)} rules, "
          f"{len(load.diagnostics)} diagnostic(s)")
    spawn = statistics.median(spawn_times)
    print(f"qbcallbacks check (new process), median:    {spawn * 1e3:8.2f} ms")
    print(f"check (load_directory, in process), median: {check * 1e3:8.2f} ms")
    print(f"lsp diagnostics after a 1-char change, median: {d_med * 1e3:8.2f} ms "
          f"(p99 {percentile(diag, 0.99) * 1e3:.2f} ms; {d_med / check:.2f}x check in process, "
          f"{spawn / d_med:.1f}x faster than the command)")
    print(f"lsp completion round trip, median {statistics.median(comp) * 1e3:.2f} ms, "
          f"p99: {percentile(comp, 0.99) * 1e3:8.2f} ms")
    c99 = percentile(comp, 0.99)
    return [row(f"lsp diagnostics after a 1-char change, {args.lines:,} lines (median)",
                f"{d_med * 1e3:.0f} ms", f"{check * 1e3:.0f} ms check in process",
                d_med / check, "<= 50 ms", d_med <= 0.05),
            row("lsp completion round trip (p99)", f"{c99 * 1e3:.1f} ms", "", None,
                "<= 20 ms", c99 <= 0.02)]


if __name__ == "__main__":
    main()
