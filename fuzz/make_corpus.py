"""Build the checked-in seed corpora (fuzz/corpus/<target>/) from spec/vectors and examples.

Run again after the vectors change: `python fuzz/make_corpus.py`. Each seed is named by the
hash of its bytes, so running twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"
EXAMPLES = ROOT / "examples"
CORPUS = Path(__file__).resolve().parent / "corpus"

QBCONF_SEEDS = (
    "# qb.conf\nsupervisor_universal_callback_path = /a/callback,$QBDIR/site\n",
    "mail_host = smtp.example.com\nmail_port = 2525\nmail_domain = \"example.com\"\n",
    "\ufeffmail_port = x\nno equals here\n  # comment\nmail_from = 'render'\n",
)


def _cases(name: str) -> list[dict[str, object]]:
    data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return list(data["cases"])


def seeds() -> dict[str, list[bytes]]:
    """Every target's seeds, as bytes."""
    out: dict[str, list[bytes]] = {name: [] for name in
                                   ("trigger", "config", "qcb", "events", "qbconf")}
    triggers = [str(c["input"]) for c in _cases("language-triggers.json")]
    configs = [str(c["input"]) for c in _cases("language-config.json")]
    for path in sorted(EXAMPLES.glob("*/callbacks.conf")):
        configs.append(path.read_text(encoding="utf-8"))
    for vector in sorted(VECTORS.glob("events-*.json")):
        for case in _cases(vector.name):
            for directory in case["directories"]:  # type: ignore[attr-defined]
                configs.append(directory["callbacks.conf"])
            lines = [e if isinstance(e, str) else json.dumps(e)
                     for e in case["events"]]  # type: ignore[attr-defined]
            out["events"].append(("\n".join(lines) + "\n").encode())
    for text in configs:
        for line in text.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                triggers.append(line.split("=", 1)[1].split(" #")[0].strip())
    qcbs = [str(c["input"]) for c in _cases("language-qcb.json")]
    qcbs += [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*/*.qcb"))]
    out["trigger"] = [t.encode() for t in triggers]
    out["config"] = [t.encode() for t in configs]
    out["qcb"] = [t.encode() for t in qcbs]
    out["qbconf"] = [t.encode() for t in QBCONF_SEEDS]
    out["differential"] = out["trigger"]
    return out


def main() -> None:
    for target, items in seeds().items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for data in dict.fromkeys(items):
            (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        print(f"{target}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
