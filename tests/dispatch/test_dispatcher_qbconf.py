from __future__ import annotations

import click
import pytest

from qbcallbacks.cli._session import callback_dirs
from qbcallbacks.config.qbconf import MailSettings, parse_qbconf, read_qbconf
from qbcallbacks.dispatch.dispatcher import Dispatcher
from qbcallbacks.reference.mail import MboxTransport, SmtpTransport, transport_for
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir

QBCONF = """\ufeff# qb.conf
supervisor_universal_callback_path = $QBDIR/callback, {extra}
# a comment
mail_host = smtp.example.com
mail_port = 2525
mail_domain = "farm.example"
not a setting
"""


def test_parse_qbconf_reads_the_callback_path_and_mail(tmp_path):
    conf = parse_qbconf(QBCONF.format(extra="/site/cb"))
    assert conf.callback_path({"QBDIR": "/opt/qube"}) == ["/opt/qube/callback", "/site/cb"]
    assert (conf.mail_host, conf.mail_port, conf.mail_domain) == ("smtp.example.com", 2525,
                                                                  "farm.example")
    assert conf.mail() == MailSettings(host="smtp.example.com", port=2525,
                                       domain="farm.example", sender="qube")
    smtp = transport_for(conf.mail(), tmp_path / "m")
    assert isinstance(smtp, SmtpTransport) and (smtp.port, smtp.domain) == (2525, "farm.example")
    empty = parse_qbconf("")
    assert empty.callback_path({"QBDIR": "/q"}) == ["/q/callback"]
    assert isinstance(transport_for(empty.mail(), tmp_path / "m"), MboxTransport)
    assert parse_qbconf("mail_port = x").mail_port == 25


def test_dispatcher_from_qbconf(tmp_path):
    qbdir = tmp_path / "qube"
    write_dir(qbdir / "callback", {"a.qcb": "complete-job-self"})
    site = write_dir(tmp_path / "site", {"b.qcb": "complete-job-self"})
    path = tmp_path / "qb.conf"
    path.write_text(QBCONF.format(extra=site))
    rt = RecordingRuntime()
    d = Dispatcher.from_qbconf(path, MemorySupervisor(), runtimes=runtimes(rt),
                               audit=tmp_path / "audit.db", env={"QBDIR": str(qbdir)})
    with d:
        assert [r.file for r in d.rules] == ["a.qcb", "b.qcb"]
    assert read_qbconf(path).values["mail_port"] == "2525"


def test_cli_callback_dirs_prefer_paths_then_qbconf(tmp_path, monkeypatch):
    path = tmp_path / "qb.conf"
    path.write_text("supervisor_universal_callback_path = /a,/b\n")
    with pytest.raises(click.UsageError, match="not both"):
        callback_dirs(["/x"], str(path))
    assert callback_dirs(["/x"], None) == ["/x"]
    assert callback_dirs([], str(path)) == ["/a", "/b"]
    monkeypatch.setenv("QB_CONF", str(path))
    assert callback_dirs([], None) == ["/a", "/b"]
    monkeypatch.delenv("QB_CONF")
    monkeypatch.setenv("QBDIR", str(tmp_path))
    assert callback_dirs([], None) == [str(tmp_path / "callback")]
