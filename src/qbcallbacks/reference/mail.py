"""Sending the mail callbacks ask for: SMTP to a configured server, or a local mbox file.

The default is an mbox file so that a farm on one machine (and `simulate`) needs no mail server;
a site points `mail_host` in qb.conf (or `SmtpTransport`) at its relay.

No text a job or a script chose can add a header, on any supported Python. Header values are
made single-line first (control characters and Unicode line separators such as U+2028 and
U+0085 become blanks). The `email` package of Python before 3.13 decodes RFC 2047 encoded
words it finds in a value and can write what they decode to, CR LF included, as raw header
lines; so a value is also checked after decoding, and encoded-word syntax in it is defused
(`=?` becomes `= ?`: our values are plain text, never pre-encoded). Finally the serialized
header block is checked line by line after folding: only the headers we set, continuation
lines, nothing else; anything unexpected refuses the mail. Long subjects are folded by the
`email` policy (78 columns).
"""

from __future__ import annotations

import mailbox
import re
import smtplib
import threading
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..config.qbconf import MailSettings
from ..errors import QbCallbacksError
from ..model.supervisor import MailMessage


class MailError(QbCallbacksError):
    """A mail could not be handed to its transport."""


@runtime_checkable
class MailTransport(Protocol):
    def send(self, message: MailMessage) -> None:
        """Deliver or queue one message; raises `MailError` when it cannot."""
        ...


#: Control characters and every character Python or a mail reader may take for a line end.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
            "content-transfer-encoding"}


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def safe_header_value(value: str) -> str:
    """`value` made single-line, with encoded words defused if they decode to anything unsafe.

    Raises `MailError` if no safe form is found (it always is; this is a second lock).
    """
    value = _UNSAFE.sub(" ", value)
    if "=?" in value and _UNSAFE.search(_decoded(value)):
        value = value.replace("=?", "= ?")
    if _UNSAFE.search(_decoded(value)):
        raise MailError("a mail header value would decode to a line break")
    return value


def _check_serialized(msg: EmailMessage) -> None:
    """The header block after folding: our headers and continuation lines, nothing else."""
    data = msg.as_bytes(policy=policy.SMTP)
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            continue
        name, colon, _ = line.partition(":")
        if not colon or name.strip().lower() not in _HEADERS or "\r" in line or "\n" in line:
            raise MailError(f"refusing a mail whose header block has the line {line[:60]!r}")
    for name in ("From", "To", "Subject"):
        if _UNSAFE.search(_decoded(str(msg[name]))):
            raise MailError(f"refusing a mail whose {name} decodes to a line break")


def build_email(message: MailMessage, *, domain: str = "localhost",
                sender: str | None = None) -> EmailMessage:
    """The RFC 5322 message for a callback's mail; `sender` (qb.conf's `mail_from`) replaces
    the message's own sender. Raises `MailError` if the mail would be unsafe."""
    sender = sender or message.sender
    for value in (message.subject, sender, *message.to):
        if "\r" in value or "\n" in value:
            raise MailError("a mail header cannot contain a line break")
    msg = EmailMessage()
    msg["From"] = safe_header_value(sender if "@" in sender else f"{sender}@{domain}")
    msg["To"] = safe_header_value(", ".join(message.to))
    msg["Subject"] = safe_header_value(message.subject)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(message.body)
    try:
        _check_serialized(msg)
    except (ValueError, TypeError) as exc:  # the email package's own refusals
        raise MailError(f"cannot build the mail: {exc}") from exc
    return msg


class MboxTransport:
    """Appends every message to one mbox file (locked, so concurrent callbacks interleave
    whole messages)."""

    def __init__(self, path: str | Path, *, domain: str = "localhost",
                 sender: str | None = None) -> None:
        self.path = Path(path)
        self.domain, self.sender = domain, sender
        self._lock = threading.Lock()

    def send(self, message: MailMessage) -> None:
        msg = build_email(message, domain=self.domain, sender=self.sender)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                box = mailbox.mbox(self.path)
                box.lock()
                try:
                    box.add(msg)
                    box.flush()
                finally:
                    box.unlock()
                    box.close()
        except (OSError, mailbox.Error) as exc:
            raise MailError(f"cannot append to {self.path}: {exc}") from exc


class SmtpTransport:
    """One SMTP connection per message: callbacks mail rarely, and a relay that restarted
    between two mails must not break the second."""

    def __init__(self, host: str, port: int = 25, *, domain: str = "localhost",
                 sender: str | None = None, timeout: float = 10.0, starttls: bool = False,
                 username: str | None = None, password: str | None = None) -> None:
        self.host, self.port, self.domain, self.sender = host, port, domain, sender
        self.timeout, self.starttls = timeout, starttls
        self.username, self.password = username, password

    def send(self, message: MailMessage) -> None:
        msg = build_email(message, domain=self.domain, sender=self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"cannot send mail through {self.host}:{self.port}: {exc}") from exc


def transport_for(settings: MailSettings | None, default_mbox: str | Path) -> MailTransport:
    """SMTP through the settings' host when there is one, else the mbox file `default_mbox`;
    the settings' domain and sender apply to both."""
    if settings is None:
        return MboxTransport(default_mbox)
    if settings.host:
        return SmtpTransport(settings.host, settings.port, domain=settings.domain,
                             sender=settings.sender)
    return MboxTransport(default_mbox, domain=settings.domain, sender=settings.sender)
