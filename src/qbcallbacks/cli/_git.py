"""The callback directories a commit touches, for the directory-level pre-commit hook.

pre-commit hands its hooks only files that exist after the commit, so a commit that deletes or
renames a script a `callbacks.conf` names would pass a hook that runs on the changed files. This
asks git itself: every staged path (deletions included; a rename is a deletion and an addition)
marks the nearest directory at or above it that has a `callbacks.conf`, or had one before the
commit; a directory the commit removes whole is not checked. With nothing staged
(`pre-commit run --all-files` in CI) every callback directory the repository tracks is checked.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import PurePosixPath

from ..config.load import CONFIG_NAME
from ._targets import SetupError


def _git(*args: str) -> list[str]:
    try:
        done = subprocess.run(["git", *args], capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"--staged: cannot run git ({exc})") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise SetupError(f"--staged: {reason[0] if reason else 'git failed'}")
    return [p for p in done.stdout.decode(errors="surrogateescape").split("\0") if p]


def staged_directories() -> list[str]:
    """The callback directories to check, relative to the working directory, in order."""
    top = "".join(_git("rev-parse", "--show-toplevel")).rstrip("\n")
    if not top:
        raise SetupError("--staged: not inside a git work tree")
    configs = _git("-C", top, "ls-files", "-z", "--", f":(glob)**/{CONFIG_NAME}")
    configs += _git("-C", top, "diff", "--cached", "--name-only", "-z", "--no-renames",
                    "--diff-filter=D", "--", f":(glob)**/{CONFIG_NAME}")
    homes = {str(PurePosixPath(c).parent) for c in configs}
    changed = _git("-C", top, "diff", "--cached", "--name-only", "-z", "--no-renames")
    if changed:
        touched = set()
        for path in changed:
            for parent in PurePosixPath(path).parents:
                if str(parent) in homes:
                    touched.add(str(parent))
                    break
        homes = touched
    here = os.getcwd()
    # A directory the commit removes whole has nothing left to check.
    return [os.path.relpath(os.path.join(top, home), here) for home in sorted(homes)
            if os.path.isdir(os.path.join(top, home))]
