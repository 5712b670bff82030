"""The weekly report's broken-links block: a drafting unit's report lists the broken service links of
its FAQs (HTML section and xlsx sheet 断链链接), the overview lists all, another unit's report none."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.faqs import FaqStore
from knowledge.gaps import analyse_store, render_html, render_xlsx, resolve_period
from knowledge.models import LinkStatus, utcnow
from knowledge.usage import QueryLogStore


def test_broken_links_block_per_unit(engine: Engine, tmp_path: Path) -> None:
    sessions = make_sessionmaker(engine)
    faqs = FaqStore(sessions)
    url = "https://zwfw.example.gov.cn/item/404"
    faqs.add(
        by="t", id="f-1", question="社保卡怎么补办", answer="网上办理。", unit="区人社局", service_url=url
    )
    faqs.add(
        by="t",
        id="f-2",
        question="医保怎么转移",
        answer="网上办理。",
        unit="区医保局",
        service_url="https://ok.example/",
    )
    with sessions() as s, s.begin():
        s.add(
            LinkStatus(
                url=url,
                host="zwfw.example.gov.cn",
                fails=2,
                broken=True,
                last_code=404,
                broken_since=utcnow(),
            )
        )
    analysis = analyse_store(QueryLogStore(sessions), resolve_period("2026-W47", None), sessions=sessions)
    own = analysis.report("区人社局")
    assert [b.url for b in own.broken_links] == [url]
    html = render_html(own, chart_png=b"")
    assert "断链的办事链接" in html and url in html and "HTTP 404" in html and "f-1 社保卡怎么补办" in html
    assert analysis.report("区医保局").broken_links == ()
    assert "断链的办事链接" not in render_html(analysis.report("区医保局"), chart_png=b"")
    assert [b.url for b in analysis.report(None).broken_links] == [url]
    path = tmp_path / "r.xlsx"
    path.write_bytes(render_xlsx(own))
    wb = openpyxl.load_workbook(path)
    assert wb["断链链接"]["A2"].value == url and wb["断链链接"]["D2"].value == "区人社局"
