"""Sending the mail callbacks ask for: SMTP to a configured server, or a local mbox file.

The default is an mbox file so that a farm on one machine (and `simulate`) needs no mail server;
a site points `mail_host` in qb.conf (or `SmtpTransport`) at its relay. Headers are set through
`email.message.EmailMessage`, which refuses a line break in a header value, so a job name with a
newline cannot add headers.
"""

from __future__ import annotations

import mailbox
import smtplib
import threading
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


def build_email(message: MailMessage, *, domain: str = "localhost",
                sender: str | None = None) -> EmailMessage:
    """The RFC 5322 message for a callback's mail; `sender` (qb.conf's `mail_from`) replaces
    the message's own sender."""
    sender = sender or message.sender
    for value in (message.subject, sender, *message.to):
        if "\r" in value or "\n" in value:
            raise MailError("a mail header cannot contain a line break")
    msg = EmailMessage()
    msg["From"] = sender if "@" in sender else f"{sender}@{domain}"
    msg["To"] = ", ".join(message.to)
    msg["Subject"] = message.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(message.body)
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
