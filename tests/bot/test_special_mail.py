"""专题 cases end to end: the scheduled scan opens a case for a concentrating topic and e-mails its
unit once (a local SMTP stub), a replay opens and sends nothing; `policybot report topics` lists,
scans and closes; the console's weekly page shows the case and closes it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.settings import get_settings
from bot.special import JOB_NAME
from knowledge.gaps import set_route
from knowledge.models import to_db_time
from knowledge.usage import QueryLogStore
from tests.bot.conftest import demo_template, demo_url, make_settings  # noqa: F401  (fixtures)
from tests.bot.test_report_email import SmtpStub, smtp  # noqa: F401  (fixture)
from tests.handoff.console_helpers import ORIGIN, login, make_users

MED = "青浦区医疗保障局"
NOW = dt.datetime(2026, 11, 18, 7, 0, tzinfo=dt.UTC)  # Wednesday 15:00 Beijing
ASKS = ["异地就医备案怎么办理", "异地就医备案在哪里办", "异地就医备案需要什么材料", "异地就医备案网上能办吗"]


def _seed(url: str, n: int = 12) -> None:
    app = create_app(make_settings(url))
    set_route(app.state.sessions, keyword="异地就医", unit=MED, by="admin")
    log = QueryLogStore(app.state.sessions)
    start = to_db_time(NOW) - dt.timedelta(hours=28)
    for i in range(n):
        log.record(
            channel="wechat",
            user_ref=f"c{i}",
            text=ASKS[i % 4],
            outcome="none",
            at=start + dt.timedelta(minutes=37 * i),
        )
    app.state.engine.dispose()


def test_scheduled_scan_opens_and_mails_once(demo_url: str, smtp: SmtpStub) -> None:  # noqa: F811
    _seed(demo_url)
    settings = make_settings(
        demo_url,
        special_topic_schedule="EVERY 60m",
        special_topic_askers=10,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        smtp_from="bot@example.gov.cn",
        report_emails={MED: ["yb@example.gov.cn"]},
    )
    app = create_app(settings)
    scheduler = app.state.scheduler
    assert scheduler.run_due(NOW)[JOB_NAME] == "done"
    assert scheduler.run_due(NOW + dt.timedelta(hours=1))[JOB_NAME] == "done"  # the next slot: a replay
    assert [rcpts for _, rcpts, _ in smtp.messages] == [["yb@example.gov.cn"]]
    msg = smtp.messages[0][2]
    assert msg["Subject"].startswith(f"【专题】{MED}：") and "ZT20261118001" in msg["Subject"]
    body = msg.get_body(("plain",))
    assert (
        body is not None and "12 位群众提问 12 次" in body.get_content() and "办理期限" in body.get_content()
    )

    # the console's weekly page lists it; the unit's staff (here an admin) closes it
    client = TestClient(app)
    make_users(app, MED)
    login(client, "rita")  # a reader of the drafting unit: may see and close its own case
    page = client.get("/console/weekly")
    assert "ZT20261118001" in page.text and "办结</button>" in page.text
    client = TestClient(app)
    login(client, "bob")  # staff of another department: does not see it
    assert "ZT20261118001" not in client.get("/console/weekly").text
    client = TestClient(app)
    login(client, "admin")
    page = client.get("/console/weekly")
    assert "ZT20261118001" in page.text and "调查中" in page.text and MED in page.text
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post(
        "/console/weekly/special/ZT20261118001/close",
        data={"csrf": csrf},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "已办结" in client.get("/console/weekly").text


def test_cli_topics_list_scan_close(
    demo_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot import cli
    from handoff import special

    _seed(demo_url)
    monkeypatch.setenv("DATABASE_URL", demo_url)
    monkeypatch.setenv("POLICYBOT_SPECIAL_TOPIC_ASKERS", "10")
    get_settings.cache_clear()
    monkeypatch.setattr(special, "utcnow", lambda: to_db_time(NOW))
    try:
        assert cli.main(["report", "topics", "scan"]) == 0
        out = capsys.readouterr().out
        assert "新开专题 1 个" in out and MED in out
        assert cli.main(["report", "topics", "scan"]) == 0
        assert "新开专题 0 个" in capsys.readouterr().out
        assert cli.main(["report", "topics", "--json"]) == 0
        cases = json.loads(capsys.readouterr().out)
        assert [(c["unit"], c["askers"], c["status"], c["emailed"]) for c in cases] == [
            (MED, 12, "open", False)
        ]
        assert cli.main(["report", "topics", "close", cases[0]["no"], "--as", "admin"]) == 0
        assert "已办结" in capsys.readouterr().out
        assert cli.main(["report", "topics", "--status", "open"]) == 0
        assert "共 0 个专题" in capsys.readouterr().out
        assert cli.main(["report", "topics", "close", "ZT19990101001"]) != 0
    finally:
        get_settings.cache_clear()
