from __future__ import annotations

import mailbox

import pytest

from qbcallbacks.model.supervisor import MailMessage
from qbcallbacks.reference.mail import MailError, MboxTransport, SmtpTransport, build_email
from support.ports import free_port


def message(subject: str = "job 5 done") -> MailMessage:
    return MailMessage(to=("artist@example.com",), subject=subject, body="status: complete\n",
                       sender="qube")


def test_mbox_appends_whole_messages(tmp_path):
    path = tmp_path / "out" / "mail.mbox"
    transport = MboxTransport(path, domain="farm.example")
    transport.send(message("one"))
    transport.send(message("two"))
    box = mailbox.mbox(path)
    try:
        subjects = [m["Subject"] for m in box]
        senders = {m["From"] for m in box}
    finally:
        box.close()
    assert subjects == ["one", "two"]
    assert senders == {"qube@farm.example"}


def test_header_injection_is_refused():
    # The model refuses it already; the transport checks again for a message built unchecked.
    bad = MailMessage.model_construct(to=("a@example.com",), subject="done\nBcc: victim@x.org",
                                      body="", sender="qube")
    with pytest.raises(MailError):
        build_email(bad)


def test_smtp_to_a_real_server_on_loopback():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    received: list[tuple[str, list[str], bytes]] = []

    class Handler(Sink):
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        SmtpTransport("127.0.0.1", port, domain="farm.example", timeout=5).send(message())
    finally:
        controller.stop()
    assert len(received) == 1
    sender, rcpts, content = received[0]
    assert sender == "qube@farm.example"
    assert rcpts == ["artist@example.com"]
    assert b"Subject: job 5 done" in content
    assert b"status: complete" in content


def test_smtp_failure_is_a_mail_error():
    with pytest.raises(MailError):
        SmtpTransport("127.0.0.1", free_port(), timeout=2).send(message())
