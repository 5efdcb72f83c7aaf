"""What each diagnostic code means, why it matters and how to fix it.

`errors.CODES` keeps the one-line meaning; this table holds the longer explanation that
`qbcallbacks explain` prints and `spec/codes.md` is generated from (`python -m
qbcallbacks.code_docs > spec/codes.md`), so the command and the spec cannot drift apart.
"""

from __future__ import annotations

import textwrap
from typing import NamedTuple

from .errors import CODES


class CodeDoc(NamedTuple):
    """Why a finding matters and what to do about it."""

    why: str
    fix: str


#: Code -> explanation; a test checks that every code of `CODES` has one.
CODE_DOCS: dict[str, CodeDoc] = {
    "QCB001": CodeDoc(
        "The supervisor reads callback files as UTF-8; a file it cannot read or decode adds "
        "no callbacks at all, so every callback it names silently never runs.",
        "Check the file's permissions and save it as UTF-8 (a byte order mark is accepted)."),
    "QCB005": CodeDoc(
        "Parsing cost grows with nesting, and no real trigger needs more than a few levels; "
        "a limit checked before any parser runs keeps a hostile line from stalling a check or "
        "a reload.",
        "Flatten the expression (`a && b && c` needs no parentheses), or raise the limit "
        "(spec/limits.md)."),
    "QCB006": CodeDoc(
        "An overlong line is refused before it is parsed, so that one line cannot cost the "
        "time and memory of a whole file.",
        "Split the trigger over several rules, or raise the limit (spec/limits.md)."),
    "QCB007": CodeDoc(
        "A callbacks.conf larger than the limit is not read at all, so none of its callbacks "
        "are loaded.",
        "Split the rules over several callback directories, or raise the limit "
        "(spec/limits.md)."),
    "QCB008": CodeDoc(
        "A .qcb file larger than the limit is neither checked nor run.",
        "qcb programs are a few commands; move long logic into a Python or Perl script."),
    "QCB009": CodeDoc(
        "A script larger than the limit is neither checked nor run: checking it would cost "
        "the host more time and memory than any callback is worth.",
        "Keep callback scripts small and import the rest from modules, or raise the limit "
        "(spec/limits.md)."),
    "QCB010": CodeDoc(
        "Past the per-file limit further findings are only counted, so a file of garbage "
        "cannot flood a terminal, an editor or a CI log.",
        "Fix the findings shown first; the rest usually share their cause."),
    "QCB011": CodeDoc(
        "A link that leaves the callback directory would let whoever controls its target "
        "decide what is read (and echoed) as site configuration.",
        "Copy the file into the callback directory instead of linking to it."),
    "QCB012": CodeDoc(
        "Only regular files are read: a FIFO or device would block or never end, and a "
        "directory has no text.",
        "Put a regular file in its place."),
    "QCB013": CodeDoc(
        "A directory that cannot be read or entered adds no callbacks; the supervisor would "
        "silently run none of them.",
        "Give the supervisor's user read and execute permission on the directory and its "
        "parents."),
    "QCB014": CodeDoc(
        "The input needed more memory than the host could give; it is refused rather than "
        "taking the host down.",
        "Make the file smaller or simpler, or lower the limits so it is refused earlier."),
    "QCB015": CodeDoc(
        "The operating system reported an error while reading; nothing from the file is used.",
        "Check the disk and the file system, then check again."),
    "QCB016": CodeDoc(
        "A `qb` call with that many arguments is refused before the host works on it, so one "
        "script cannot hold the host past its deadline.",
        "Pass fewer arguments (query one job at a time), or raise the limit."),
    "QCB017": CodeDoc(
        "A `qb` call argument over the size limit is refused before the host works on it.",
        "Pass a smaller value."),
    "QCB018": CodeDoc(
        "A qb.conf over the size limit is not read; no setting of it applies.",
        "qb.conf is a few hundred lines at most; check what filled it."),
    "QCB020": CodeDoc(
        "A path that does not exist is usually a typo in a hook or CI script; checking "
        "nothing and reporting success would hide every error in the real directory.",
        "Correct the path, or create the callback directory it should name."),
    "QCB021": CodeDoc(
        "Only callback directories, callbacks.conf files and callback scripts can be "
        "checked; any other file would be reported as clean without being read.",
        "Pass the callback directory, its callbacks.conf, or a script with a known extension."),
    "QCB101": CodeDoc(
        "A callbacks.conf line is `file = trigger`; without '=' the line cannot be split and "
        "the callback is not loaded.",
        "Write the line as `script.py = done-job-self`."),
    "QCB102": CodeDoc(
        "A callback with an empty trigger can never fire; the line is not loaded.",
        "Put a trigger after '=', for example `done-job-self`."),
    "QCB103": CodeDoc(
        "Events are `name-type-context`; an unknown type (often a typo such as 'jbo') makes "
        "the trigger invalid and the callback never fires.",
        "Use one of the event types listed in spec/language.md; the message suggests the "
        "nearest one."),
    "QCB104": CodeDoc(
        "An event needs a context (`self`, `parent`, a label or `*`) to say which jobs it "
        "watches; without one the trigger is ambiguous and is rejected.",
        "Add the context, for example `complete-job-self`."),
    "QCB105": CodeDoc(
        "An unbalanced parenthesis makes the trigger's grouping unknowable; the line is not "
        "loaded.",
        "Close every '(' with a ')' (or remove the stray one)."),
    "QCB106": CodeDoc(
        "An '&&' or '||' with nothing on one side is almost always an unfinished edit; the "
        "line is not loaded.",
        "Add the missing event or remove the operator."),
    "QCB107": CodeDoc(
        "The trigger does not follow the trigger grammar, so no event can match it.",
        "Compare the trigger with the grammar in spec/language.md; events are joined with "
        "&&, || and parentheses."),
    "QCB108": CodeDoc(
        "Event names are fixed words (submit, complete, failed, ...); any other name never "
        "happens, so the callback would never fire.",
        "Use one of the event names of spec/language.md."),
    "QCB109": CodeDoc(
        "The line is neither a comment, a blank line nor `file = trigger`; it is skipped.",
        "Rewrite the line as `file = trigger` or comment it out with '#'."),
    "QCB110": CodeDoc(
        "A callback file name must be a bare name inside the callback directory; paths, '..' "
        "or a leading '-' could run something outside it.",
        "Move the script into the callback directory and name it there."),
    "QCB111": CodeDoc(
        "The extension picks the language runtime; a file no runtime handles cannot be run.",
        "Use .py, .pl or .qcb (or install a runtime for the extension)."),
    "QCB112": CodeDoc(
        "The script named in callbacks.conf is not in the directory; the callback would fail "
        "every time it fires.",
        "Add the script, or fix the file name on the line."),
    "QCB113": CodeDoc(
        "A link pointing out of the callback directory lets code nobody reviews with the "
        "directory run as the supervisor's user.",
        "Copy the script into the callback directory instead of linking to it."),
    "QCB114": CodeDoc(
        "Only regular files are run; a directory, device or FIFO cannot be a callback and "
        "reading one could hang the supervisor.",
        "Replace it with a regular file."),
    "QCB130": CodeDoc(
        "`global` events carry no extra; an extra after `global` is usually meant for "
        "`globaltime` or `globalrepeat`, and the trigger as written is rejected.",
        "Drop the extra, or use `globaltime-T` / `globalrepeat-INTERVAL`."),
    "QCB131": CodeDoc(
        "A time trigger whose instant is not a usable Qube time can never be reached by the "
        "clock, so the callback never runs.",
        "Give the Qube time (seconds since 2000-01-01 05:00 UTC) as a whole number."),
    "QCB132": CodeDoc(
        "A repeat trigger needs a positive interval (and a positive count when one is given); "
        "otherwise it never fires.",
        "Write `globalrepeat-INTERVAL` or `NAME-repeat-CONTEXT-INTERVAL-COUNT` with positive "
        "numbers."),
    "QCB133": CodeDoc(
        "A subjob trigger whose extra can never name a subjob (not a number, or negative) "
        "never fires.",
        "Use the subjob's index as the extra, or `*` for any subjob."),
    "QCB150": CodeDoc(
        "A reload (reading and checking the directories, numbering the rules, building the "
        "matcher) happens off the event path within one time budget; a reload that takes "
        "longer (a pathological line, a script check that hangs, a very large rule set) is "
        "abandoned and the rules in force stay, so events keep flowing.",
        "Find what makes the directory slow to load (`qbcallbacks check` on it), or raise "
        "`reload_budget` in the dispatcher settings (`serve --reload-budget`)."),
    "QCB201": CodeDoc(
        "Callbacks run as the supervisor's user: whoever can edit a callback file can run "
        "code with the supervisor's rights.",
        "Remove group and others' write permission: chmod go-w FILE."),
    "QCB202": CodeDoc(
        "The same file and trigger on two lines fires the callback twice for one event.",
        "Delete the repeated line."),
    "QCB203": CodeDoc(
        "Job events carry no extra, so a job event with an extra never matches anything.",
        "Remove the extra, or use a work or subjob event."),
    "QCB204": CodeDoc(
        "A directory of the callback path that is missing adds no callbacks; the others still "
        "load.",
        "Create the directory or remove it from supervisor_universal_callback_path."),
    "QCB205": CodeDoc(
        "A callback directory without callbacks.conf adds no callbacks, whatever scripts it "
        "holds.",
        "Add a callbacks.conf naming the scripts and their triggers."),
    "QCB210": CodeDoc(
        "Callbacks run as the supervisor's user, often root. Anyone who can write the callback "
        "directory can replace a script by renaming another file over it, and so run code as "
        "that user. It is an error when the engine runs as root, a warning otherwise.",
        "Make the directory writable by its owner only: `chmod go-w DIR`."),
    "QCB211": CodeDoc(
        "A directory, callbacks.conf or script owned by another user can be changed by that "
        "user, who then runs code as the supervisor's user. It is an error when the engine "
        "runs as root, a warning otherwise.",
        "Give it to root or the supervisor's user: `chown root PATH`."),
    "QCB212": CodeDoc(
        "Whoever can write a parent directory can rename the callback directory away and put "
        "their own in its place. A sticky parent owned by root or the supervisor's user (like "
        "/tmp) is accepted.",
        "Remove group and other write permission from the parent: `chmod go-w PARENT`."),
    "QCB213": CodeDoc(
        "The owner of a parent directory can replace everything below it, so the callbacks "
        "are only as safe as that user's account.",
        "Keep callback directories under directories owned by root or the supervisor's user."),
    "QCB220": CodeDoc(
        "An event name one or two letters away from a built-in one (`compelte`) is almost "
        "always a typo; the trigger waits for an event the supervisor never reports, so the "
        "callback silently never runs.",
        "Use the name the warning suggests, or rename a deliberate custom event further away."),
    "QCB221": CodeDoc(
        "A context close to `self` or `parent` (`slef`, `PARNET`) is read as a job label, "
        "and only a job with that exact label would ever match it.",
        "Write `self` or `parent` as the warning suggests."),
    "QCB222": CodeDoc(
        "A label that mixes scripts with look-alike letters (a Cyrillic e in what reads as "
        "`self`) looks right on screen but matches neither the keyword nor any label a job is "
        "likely to carry; it can also hide a deliberate trap in a shared file.",
        "Retype the label in one script (usually plain ASCII)."),
    "QCB223": CodeDoc(
        "A job label cannot hold these characters, so no job can ever carry it and the "
        "trigger can never fire.",
        "Use the job's real label, made of letters, digits, `_` and `.`."),
    "QCB301": CodeDoc(
        "A qcb program may only use the commands the qcb language defines; an unknown one "
        "makes the whole program invalid.",
        "Use one of the commands of spec/language.md (the message suggests the nearest)."),
    "QCB302": CodeDoc(
        "The .qcb file does not follow the qcb grammar and cannot be run.",
        "One command per line, optionally followed by a '#' comment."),
    "QCB401": CodeDoc(
        "A Python callback that does not compile fails every time it fires.",
        "Fix the syntax at the reported line and column."),
    "QCB402": CodeDoc(
        "A Perl callback that does not compile (perl -c) fails every time it fires.",
        "Fix the syntax at the reported line (run perl -c on the script)."),
}


def explain(code: str) -> str:
    """The text `qbcallbacks explain CODE` prints; KeyError for an unknown code."""
    code = code.upper()
    meaning = CODES[code]
    doc = CODE_DOCS.get(code)
    lines = [f"{code}: {meaning}"]
    if doc is not None:
        lines += ["", textwrap.fill(f"Why it matters: {doc.why}", 88), "",
                  textwrap.fill(f"How to fix: {doc.fix}", 88)]
    return "\n".join(lines) + "\n"


def codes_markdown() -> str:
    """`spec/codes.md`: every code with its meaning, why it matters and how to fix it."""
    out = ["# Diagnostic codes", "",
           "Generated from `src/qbcallbacks/code_docs.py` by "
           "`python -m qbcallbacks.code_docs > spec/codes.md`; `qbcallbacks explain CODE` "
           "prints the same text. Codes never change meaning.", ""]
    for code in sorted(CODES):
        doc = CODE_DOCS.get(code)
        out += [f"## {code}: {CODES[code]}", ""]
        if doc is not None:
            out += [f"Why it matters: {doc.why}", "", f"How to fix: {doc.fix}", ""]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(codes_markdown(), end="")
