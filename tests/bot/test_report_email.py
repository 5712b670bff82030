"""Weekly report e-mail: `policybot report weekly --email` refuses clearly (exit 2) without SMTP or
recipients, and with them sends each unit its report (HTML and XLSX attached) to a local SMTP stub
on 127.0.0.1; the scheduled job writes the files to POLICYBOT_REPORT_DIR and mails them once."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.app import create_app
from bot.jobs import Schedule, recent_runs
from bot.reporting import JOB_NAME, week_before
from bot.settings import get_settings
from knowledge.gaps import parse_week
from knowledge.usage import QueryLogStore
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)

MED, HR = "青浦区医疗保障局", "青浦区人力资源和社会保障局"


@dataclass
class SmtpStub:
    """A minimal SMTP server (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) in a thread."""

    port: int = 0
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    _sock: socket.socket | None = None

    def start(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(5)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert self._sock is not None
        self._sock.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn, conn.makefile("rb") as rf:
                self._session(conn, rf)

    def _session(self, conn: socket.socket, rf: object) -> None:
        def say(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        say("220 stub ESMTP")
        sender, rcpts = "", []
        while True:
            raw = rf.readline()  # type: ignore[attr-defined]
            if not raw:
                return
            cmd = raw.decode("utf-8", "replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250-stub")
                say("250 8BITMIME")
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip(" <>"), []
                say("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip(" <>"))
                say("250 OK")
            elif verb == "DATA":
                say("354 go ahead")
                lines = []
                while True:
                    line = rf.readline()  # type: ignore[attr-defined]
                    if line in (b".\r\n", b""):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                msg = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                self.messages.append((sender, rcpts, msg))  # type: ignore[arg-type]
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 OK")


@pytest.fixture
def smtp() -> Iterator[SmtpStub]:
    stub = SmtpStub()
    stub.start()
    yield stub
    stub.stop()


def _seed(url: str, week: str) -> None:
    app = create_app(make_settings(url))
    log = QueryLogStore(app.state.sessions)
    start = parse_week(week).start + dt.timedelta(hours=3)
    for i in range(4):
        log.record(
            channel="web",
            user_ref=f"m{i}",
            text="新生儿医保怎么办理",
            outcome="none",
            unit=MED,
            at=start + dt.timedelta(hours=i),
        )
        log.record(
            channel="web",
            user_ref=f"h{i}",
            text="灵活就业社保补贴怎么申请",
            outcome="none",
            unit=HR,
            at=start + dt.timedelta(hours=i),
        )
    app.state.engine.dispose()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, demo_url: str) -> Iterator[str]:  # noqa: F811
    monkeypatch.setenv("DATABASE_URL", demo_url)
    for name in ("SMTP_HOST", "REPORT_EMAILS"):
        monkeypatch.delenv(f"POLICYBOT_{name}", raising=False)
    get_settings.cache_clear()
    yield demo_url
    get_settings.cache_clear()


def test_email_without_smtp_is_a_clear_error(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    out = tmp_path / "r"
    assert main(["report", "weekly", "--week", "2026-W10", "--out", str(out), "--email"]) == 2
    assert "未配置邮件服务器" in capsys.readouterr().err and not out.exists()  # refused before any work
    monkeypatch.setenv("POLICYBOT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("POLICYBOT_SMTP_FROM", "bot@example.gov.cn")
    get_settings.cache_clear()
    assert main(["report", "weekly", "--week", "2026-W10", "--out", str(out), "--email"]) == 2
    assert "POLICYBOT_REPORT_EMAILS" in capsys.readouterr().err


def test_email_sends_each_unit_its_report(
    env: str,
    tmp_path: Path,
    smtp: SmtpStub,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.cli import main

    _seed(env, "2026-W10")
    monkeypatch.setenv("POLICYBOT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("POLICYBOT_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("POLICYBOT_SMTP_STARTTLS", "false")
    monkeypatch.setenv("POLICYBOT_SMTP_FROM", "policybot@example.gov.cn")
    monkeypatch.setenv(
        "POLICYBOT_REPORT_EMAILS",
        f'{{"{MED}": ["yb@example.gov.cn", "yb2@example.gov.cn"], "全部单位": ["duban@example.gov.cn"]}}',
    )
    get_settings.cache_clear()
    assert main(["report", "weekly", "--week", "2026-W10", "--out", str(tmp_path / "r"), "--email"]) == 0
    captured = capsys.readouterr()
    assert f"已发送：{MED} -> yb@example.gov.cn, yb2@example.gov.cn" in captured.out
    assert f"未配置收件人：{HR}" in captured.err
    by_to = {tuple(rcpts): msg for _, rcpts, msg in smtp.messages}
    assert set(by_to) == {("yb@example.gov.cn", "yb2@example.gov.cn"), ("duban@example.gov.cn",)}
    msg = by_to[("yb@example.gov.cn", "yb2@example.gov.cn")]
    assert msg["Subject"] == f"{MED} 未解答问题周报（2026-W10）" and msg["From"] == "policybot@example.gov.cn"
    body = msg.get_body(("plain",))
    assert body is not None and "未解答问题 4 个" in body.get_content()
    files = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(files) == {f"2026-W10_{MED}.html", f"2026-W10_{MED}.xlsx"}
    html = files[f"2026-W10_{MED}.html"].get_content()
    assert "新生儿医保" in html and "灵活就业" not in html
    assert files[f"2026-W10_{MED}.xlsx"].get_content()[:2] == b"PK"
    assert "全部单位" in by_to[("duban@example.gov.cn",)]["Subject"]


def test_scheduled_job_writes_and_mails_once(demo_url: str, tmp_path: Path, smtp: SmtpStub) -> None:  # noqa: F811
    slot_now = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 Beijing: reports 2026-W10
    assert week_before(Schedule.parse("MON 08:00").last_slot(slot_now).date()) == "2026-W10"
    _seed(demo_url, "2026-W10")
    out = tmp_path / "scheduled"
    settings = make_settings(
        demo_url,
        report_schedule="MON 08:00",
        report_dir=str(out),
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        smtp_from="bot@example.gov.cn",
        report_emails={HR: ["hr@example.gov.cn"]},
    )
    app = create_app(settings)
    scheduler = app.state.scheduler
    assert JOB_NAME in scheduler.jobs and not scheduler.running  # POLICYBOT_JOBS_ENABLED=false in tests
    assert scheduler.run_due(slot_now)[JOB_NAME] == "done"  # the daily retention job runs beside it
    assert scheduler.run_due(slot_now + dt.timedelta(hours=3))[JOB_NAME] is None
    assert sorted(p.name for p in out.glob("*.xlsx")) == sorted(
        [f"2026-W10_{HR}.xlsx", f"2026-W10_{MED}.xlsx", "2026-W10_全部单位总览.xlsx"]
    )
    assert [rcpts for _, rcpts, _ in smtp.messages] == [["hr@example.gov.cn"]]
    runs = recent_runs(app.state.sessions, JOB_NAME)  # listed on the console's weekly page
    assert (
        len(runs) == 1
        and runs[0].status == "done"
        and "2026-W10" in runs[0].detail
        and "已发送 1 封" in runs[0].detail
    )
    # no schedule: no job
    assert JOB_NAME not in create_app(make_settings(demo_url, report_schedule="")).state.scheduler.jobs
