"""The weekly report's block on broken service links: this module owns which broken links (failed two
checks in a row, `knowledge.links`) a drafting unit's report lists (those used by its FAQs or
policies; the overview lists all), their rendering as an HTML section and the rows of the xlsx sheet
断链链接. A separate block so that the report's other sections do not depend on link checks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from knowledge.models import CHINA_TZ


@dataclass(frozen=True)
class BrokenLink:
    url: str
    problem: str
    since: dt.datetime | None  # naive UTC
    units: tuple[str, ...]
    uses: tuple[str, ...]  # "faq-000123 问题" / "《标题》"

    @property
    def since_local(self) -> str:
        if self.since is None:
            return ""
        return self.since.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ).strftime("%Y-%m-%d")


def broken_links(sessions: sessionmaker[Session]) -> tuple[BrokenLink, ...]:
    from knowledge.links import LinkStore

    return tuple(
        BrokenLink(
            r.url,
            r.problem(),
            r.broken_since,
            r.units,
            tuple(f"{u.id} {u.label}" if u.kind == "faq" else f"《{u.label}》" for u in r.uses),
        )
        for r in LinkStore(sessions).list(broken=True)
    )


def for_unit(links: Iterable[BrokenLink], unit: str | None) -> tuple[BrokenLink, ...]:
    return tuple(b for b in links if unit is None or unit in b.units)


def xlsx_rows(links: Iterable[BrokenLink]) -> list[list[object]]:
    return [[b.url, b.problem, b.since_local, "、".join(b.units), "；".join(b.uses)] for b in links]


HTML_BLOCK = """{% if r.broken_links %}<h2>断链的办事链接</h2>
<p class="muted">以下链接连续两次检查失败，答复中暂以“办理入口维护中，可拨打12345咨询”代替，请尽快更正。</p>
<table><tr><th>链接</th><th>问题</th><th>断链日期</th><th>使用处</th></tr>
{% for b in r.broken_links %}<tr><td>{{ b.url }}</td><td>{{ b.problem }}</td><td>{{ b.since_local }}</td><td>{{ b.uses|join("；") }}</td></tr>
{% endfor %}</table>
{% endif %}"""
