"""No job name or script text can add a mail header, on the running Python, on both transports.

Python before 3.13 decodes an RFC 2047 encoded word found in a header value and may write a
CR LF it decodes to as a raw header line: the attack below made a real `Bcc:` header there.
"""

from __future__ import annotations

import email
import mailbox
from email import policy
from pathlib import Path

import pytest

from qbcallbacks.model.supervisor import MailMessage, single_line
from qbcallbacks.reference.mail import MailError, MboxTransport, SmtpTransport, build_email
from support.ports import free_port

ATTACKS = [
    "=?utf-8?q?x=0D=0ABcc:_evil@example.com?=",
    "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUuY29t?=",  # the same, base64
    "job =?utf-8?q?a=0ABcc:_evil@example.com?= done",
    "name\u2028Bcc: evil@example.com",
    "name\x85Bcc: evil@example.com",
]


def mail(subject: str) -> MailMessage:
    return MailMessage(to=("artist@example.com",), subject=single_line(subject), body="hi\n",
                       sender="qube")


def assert_no_injected_header(raw: bytes) -> None:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    for line in raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n"):
        assert not line.lower().startswith(b"bcc"), raw


@pytest.mark.parametrize("subject", ATTACKS)
def test_the_attack_never_adds_a_header_to_the_mbox(tmp_path: Path, subject: str) -> None:
    path = tmp_path / "mail.mbox"
    MboxTransport(path).send(mail(subject))
    box = mailbox.mbox(path)
    try:
        [only] = list(box)
        raw = only.as_bytes()
    finally:
        box.close()
    assert_no_injected_header(raw)


def test_the_attack_never_adds_a_header_over_smtp() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    received: list[tuple[list[str], bytes]] = []

    class Handler(Sink):
        async def handle_DATA(self, server, session, envelope):
            received.append((list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        transport = SmtpTransport("127.0.0.1", port, timeout=5)
        for subject in ATTACKS:
            transport.send(mail(subject))
    finally:
        controller.stop()
    assert len(received) == len(ATTACKS)
    for rcpts, content in received:
        assert rcpts == ["artist@example.com"]
        assert_no_injected_header(content)


def test_line_separators_are_replaced_not_a_traceback() -> None:
    for sep in ("\u2028", "\u2029", "\x85"):
        msg = build_email(mail(f"a{sep}b"))
        assert str(msg["Subject"]) == "a b"
    with pytest.raises(ValueError, match="one line"):
        MailMessage(to=("a@example.com",), subject="a\u2028b", body="")


def test_long_subjects_are_folded_and_decode_back() -> None:
    subject = "Job 1234 (" + "very long name " * 20 + ") is complete \u00e9"
    raw = build_email(mail(subject)).as_bytes(policy=policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert email.message_from_bytes(raw, policy=policy.default)["Subject"] == subject


def test_a_message_built_unchecked_is_refused() -> None:
    bad = MailMessage.model_construct(to=("a@example.com",), subject="ok",
                                      body="", sender="qube\rBcc: x@y.z")
    with pytest.raises(MailError):
        build_email(bad)
