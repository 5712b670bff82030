"""knowledge.gaps.report and `policybot report`: HTML + XLSX per drafting unit and the overview, the
embedded chart, escaping and masking, the empty week, determinism, file names, the CJK font
fallback, and the CLI commands (weekly, route add/list/delete) on demo-like data."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.gaps import (
    EMPTY_TEXT,
    TicketSummary,
    cjk_font,
    generate_weekly,
    parse_week,
    render_chart,
    safe_name,
    set_route,
)
from knowledge.usage import QueryLogStore

WEEK = parse_week("2026-W47")
HR = "青浦区人力资源和社会保障局"
MED = "青浦区医疗保障局"
SHEETS = ["概览", "主题", "样例问题", "建议问答"]
VOID = {"meta", "br", "img", "link", "hr", "input"}


class _Checker(HTMLParser):
    """Fails on mismatched tags; collects the text and the image sources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Checker:
    p = _Checker()
    p.feed(html)
    p.close()
    assert p.errors == [] and p.stack == [], (p.errors, p.stack)
    return p


def _png_of(checker: _Checker) -> bytes:
    srcs = [s for s in checker.images if s.startswith("data:image/png;base64,")]
    assert len(srcs) == 1
    png = base64.b64decode(srcs[0].split(",", 1)[1], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    return png


def _fill(engine: Engine, start: dt.datetime = WEEK.start, *, pii: bool = False) -> QueryLogStore:
    rnd = random.Random(11)
    sessions = make_sessionmaker(engine)
    store = QueryLogStore(sessions)

    def at() -> dt.datetime:
        return start + dt.timedelta(seconds=rnd.randrange(6 * 86400))

    a = ["灵活就业人员社保补贴怎么申请", "请问灵活就业社保补贴如何申领？", "灵活就业人员的社保补贴在哪里申请"]
    b = ["新生儿医保怎么办理", "新生儿医保在哪里办？", "新生儿医保办理流程"]
    with sessions.begin() as s:
        for i in range(30):
            store.record(channel="web", user_ref=f"u{i}", text=a[i % 3], outcome="none", at=at(), session=s)
        for i in range(12):
            store.record(
                channel="wechat",
                user_ref=f"w{i}",
                text=b[i % 3],
                outcome="passage",
                unit=MED,
                at=at(),
                session=s,
            )
        store.record(
            channel="web",
            user_ref="x",
            text="<script>alert(1)</script>灵活就业社保补贴怎么申请",
            outcome="none",
            at=at(),
            session=s,
        )
        store.record(
            channel="web",
            user_ref="y",
            text='=HYPERLINK("http://x")新生儿医保怎么办理',
            outcome="none",
            unit=MED,
            at=at(),
            session=s,
        )
        if pii:
            store.record(
                channel="web",
                user_ref="z",
                text="我是13812345678，身份证110105199003071234，新生儿医保怎么办理",
                outcome="none",
                unit=MED,
                at=at(),
                session=s,
            )
        store.record(channel="web", user_ref="q", text="养犬登记在哪里办", outcome="none", at=at(), session=s)
        for i in range(20):
            store.record(
                channel="web",
                user_ref=f"h{i}",
                text="依申请公开多久答复",
                outcome="answer",
                score=0.98,
                unit="青浦区政务公开办公室",
                at=at(),
                session=s,
            )
    return store


def _tickets() -> list[TicketSummary]:
    return [
        TicketSummary(
            "LY20261117-0001",
            "灵活就业人员社保补贴怎么申请",
            HR,
            "已答复",
            "符合条件的灵活就业人员可在社区事务受理服务中心申请社保补贴。",
            WEEK.start + dt.timedelta(days=1),
        )
    ]


def test_weekly_writes_html_and_xlsx_per_unit(engine: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    _fill(engine)
    sessions = make_sessionmaker(engine)
    result = generate_weekly(sessions, out_dir=tmp_path, week="2026-W47", tickets=_tickets())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "2026-W47_全部单位总览.html",
            "2026-W47_全部单位总览.xlsx",
            f"2026-W47_{HR}.html",
            f"2026-W47_{HR}.xlsx",
            f"2026-W47_{MED}.html",
            f"2026-W47_{MED}.xlsx",
            "2026-W47_未归属.html",
            "2026-W47_未归属.xlsx",
        ]
    )
    a = result.analysis
    labels = [t.label for t in a.topics]
    assert len(labels) == 2 and "灵活就业" in labels[0] and "新生儿医保" in labels[1]

    # HTML: well formed, self-contained chart, topic labels, escaped markup, drafts from ticket replies.
    html = (tmp_path / f"2026-W47_{HR}.html").read_text(encoding="utf-8")
    page = _parse(html)
    _png_of(page)
    text = "".join(page.text)
    assert labels[0] in text and labels[1] not in text
    assert "社区事务受理服务中心申请社保补贴" in text and "LY20261117-0001" in text
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    overview = _parse((tmp_path / "2026-W47_全部单位总览.html").read_text(encoding="utf-8"))
    all_text = "".join(overview.text)
    assert labels[0] in all_text and labels[1] in all_text and HR in all_text and MED in all_text
    _png_of(overview)

    # XLSX: the four sheets with one row per topic, sample and draft.
    wb = load_workbook(tmp_path / "2026-W47_全部单位总览.xlsx")
    assert wb.sheetnames == SHEETS
    topics = list(wb["主题"].iter_rows(values_only=True))
    assert topics[0][:4] == ("编号", "主题", "问题数", "提问人数")
    assert [r[1] for r in topics[1:]] == labels
    assert [r[2] for r in topics[1:]] == [t.count for t in a.topics]
    assert topics[1][2] == 31 and topics[2][2] == 13
    samples = list(wb["样例问题"].iter_rows(values_only=True))[1:]
    assert len(samples) == sum(len(t.samples) for t in a.topics)
    assert all(str(s[2])[:1] not in "=+-@" for s in samples)  # no formula injection
    drafts = list(wb["建议问答"].iter_rows(values_only=True))[1:]
    assert len(drafts) == 1
    assert drafts[0][2] == a.topics[0].representative and "社保补贴" in str(drafts[0][3])
    overview_rows = {r[0]: r[1] for r in wb["概览"].iter_rows(values_only=True) if r and r[0]}
    assert overview_rows["提问总数"] == 30 + 12 + 2 + 1 + 20
    assert overview_rows["未解答问题数"] == 30 + 12 + 2 + 1
    med = load_workbook(tmp_path / f"2026-W47_{MED}.xlsx")
    assert [r[1] for r in list(med["主题"].iter_rows(values_only=True))[1:]] == [labels[1]]
    assert len(list(med["建议问答"].iter_rows(values_only=True))) == 1  # header only


def test_output_is_deterministic(sqlite_engine: Engine, tmp_path: Path) -> None:
    _fill(sqlite_engine)
    sessions = make_sessionmaker(sqlite_engine)
    generate_weekly(sessions, out_dir=tmp_path / "a", week="2026-W47", tickets=_tickets())
    generate_weekly(sessions, out_dir=tmp_path / "b", week="2026-W47", tickets=_tickets())
    files_a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files_a == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_empty_week_says_so(sqlite_engine: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    result = generate_weekly(make_sessionmaker(sqlite_engine), out_dir=tmp_path, week="2026-W47")
    assert [f.unit for f in result.files] == [None]
    page = _parse((tmp_path / "2026-W47_全部单位总览.html").read_text(encoding="utf-8"))
    assert EMPTY_TEXT in "".join(page.text)
    _png_of(page)
    wb = load_workbook(tmp_path / "2026-W47_全部单位总览.xlsx")
    assert wb.sheetnames == SHEETS
    assert any(EMPTY_TEXT in str(c) for row in wb["概览"].iter_rows(values_only=True) for c in row)
    assert list(wb["主题"].iter_rows(values_only=True))[1:] == []


def test_personal_data_never_appears(sqlite_engine: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    _fill(sqlite_engine, pii=True)
    tickets = [
        TicketSummary(
            "LY20261117-0009",
            "新生儿医保怎么办理，电话13912345678",
            MED,
            "已答复",
            "请致电13912345678以外的热线12345咨询",
            WEEK.start + dt.timedelta(days=2),
        )
    ]
    generate_weekly(make_sessionmaker(sqlite_engine), out_dir=tmp_path, week="2026-W47", tickets=tickets)
    for path in tmp_path.iterdir():
        if path.suffix == ".html":
            blob = path.read_text(encoding="utf-8")
        else:
            wb = load_workbook(path)
            blob = "\n".join(str(c) for ws in wb for row in ws.iter_rows(values_only=True) for c in row)
        for secret in ("13812345678", "110105199003071234", "13912345678"):
            assert secret not in blob, (path.name, secret)
    assert "138****5678" in (tmp_path / f"2026-W47_{MED}.html").read_text(encoding="utf-8")


def test_one_unit_only_and_keyword_route(sqlite_engine: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    _fill(sqlite_engine)
    sessions = make_sessionmaker(sqlite_engine)
    set_route(sessions, keyword="灵活就业", unit=HR, by="admin")
    result = generate_weekly(sessions, out_dir=tmp_path, week="2026-W47", unit=HR)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"2026-W47_{HR}.html", f"2026-W47_{HR}.xlsx"]
    assert result.files[0].topics == 1
    # A unit with nothing this week still gets a clear report.
    generate_weekly(sessions, out_dir=tmp_path, week="2026-W47", unit="青浦区民政局")
    page = _parse((tmp_path / "2026-W47_青浦区民政局.html").read_text(encoding="utf-8"))
    assert EMPTY_TEXT in "".join(page.text)


def test_safe_name() -> None:
    assert safe_name(HR) == HR
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name('a:b*c?"d<e>f|g\\h') == "a_b_c_d_e_f_g_h"
    assert safe_name("  ") == "未命名单位"
    assert safe_name("Ａ局 二处") == "A局_二处"
    assert len(safe_name("长" * 300)) == 80


def test_chart_without_cjk_font_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, sqlite_engine: Engine
) -> None:
    from matplotlib import font_manager

    from knowledge.gaps import analyse_store

    store = _fill(sqlite_engine)
    report = analyse_store(store, WEEK).report(None)
    cjk_font.cache_clear()
    monkeypatch.setattr(
        font_manager.fontManager,
        "ttflist",
        [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name and "WenQuanYi" not in f.name],
    )
    try:
        with caplog.at_level(logging.WARNING, logger="knowledge.gaps.report"):
            assert render_chart(report).startswith(b"\x89PNG")
            assert render_chart(report).startswith(b"\x89PNG")
        warnings = [r for r in caplog.records if "no CJK font" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        monkeypatch.undo()
        cjk_font.cache_clear()
    assert cjk_font() is not None  # this machine has Noto Sans CJK / WenQuanYi (see .ci/run)


# --- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def cli_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    from bot.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url  # type: ignore[misc]
    get_settings.cache_clear()


def test_cli_route_commands(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["report", "route", "add", "新生儿", MED, "--by", "admin"]) == 0
    assert main(["report", "route", "add", "公积金", "住房公积金管理中心"]) == 0
    capsys.readouterr()
    assert main(["report", "route", "list"]) == 0
    out = capsys.readouterr().out
    assert f"新生儿\t{MED}\tadmin" in out and "共 2 条" in out
    assert main(["report", "route", "delete", "公积金"]) == 0
    assert main(["report", "route", "delete", "公积金"]) == 2
    assert "没有关键词" in capsys.readouterr().err
    assert main(["report", "route", "add", "只有关键词"]) == 2
    assert main(["report", "weekly", "--week", "2026-W99"]) == 2


def test_cli_weekly_on_demo_like_data(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Questions of the last few days, FAQs with drafting units, a ticket with a reply."""
    from bot.cli import main
    from bot.database import upgrade
    from bot.services import build_ticket_service
    from bot.settings import get_settings
    from knowledge.db import make_engine
    from knowledge.faqs import FaqStore

    engine = make_engine(cli_db)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    faqs = FaqStore(sessions)
    faqs.add(
        by="t",
        question="灵活就业人员如何参加社会保险",
        answer="可在社区事务受理服务中心办理参保登记。",
        unit=HR,
    )
    faqs.add(
        by="t", question="政府信息公开申请多久答复", answer="20个工作日内答复。", unit="青浦区政务公开办公室"
    )
    tickets = build_ticket_service(get_settings(), sessions)
    ticket = tickets.open(question="灵活就业人员社保补贴怎么申请", channel="web", user_ref="u1")
    tickets.reply(ticket.no, staff="staff1", text="请携带身份证到社区事务受理服务中心申请，电话13812345678。")
    store = QueryLogStore(sessions)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rnd = random.Random(4)
    texts = ["灵活就业人员社保补贴怎么申请", "灵活就业社保补贴如何申领", "灵活就业人员的社保补贴在哪里申请"]
    for i in range(15):
        log_id = store.record(
            channel="web",
            user_ref=f"u{i}",
            text=texts[i % 3],
            outcome="none",
            at=now - dt.timedelta(hours=rnd.randrange(1, 100)),
        )
        if i == 0:
            store.link_ticket(log_id, ticket.no)
    for i in range(4):
        store.record(
            channel="wechat",
            user_ref=f"m{i}",
            text="新生儿医保怎么办理",
            outcome="none",
            unit=MED,
            at=now - dt.timedelta(hours=i + 1),
        )
    engine.dispose()

    out_dir = tmp_path / "reports"
    assert main(["report", "weekly", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "列出主题 2 个" in printed and "建议问答 1 条" in printed
    htmls = sorted(p.name for p in out_dir.glob("*.html"))
    xlsxs = sorted(p.name for p in out_dir.glob("*.xlsx"))
    assert len(htmls) == len(xlsxs) == 3
    label_re = re.compile(r"^\d{8}-\d{8}_")
    assert all(label_re.match(n) for n in htmls)
    hr_html = next(out_dir.glob(f"*_{HR}.html"))
    page = _parse(hr_html.read_text(encoding="utf-8"))
    _png_of(page)
    text = "".join(page.text)
    assert "灵活就业" in text and ticket.no in text and "13812345678" not in text
    wb = load_workbook(next(out_dir.glob(f"*_{HR}.xlsx")))
    assert wb.sheetnames == SHEETS
    rows = list(wb["主题"].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][2] == 15
    header = rows[0]
    assert rows[1][header.index("归属依据")] in ("留言承办部门", "检索最近的问答或政策")
    drafts = list(wb["建议问答"].iter_rows(values_only=True))
    assert len(drafts) == 2 and "社区事务受理服务中心" in str(drafts[1][3])
