"""The weekly gaps report as files: this module owns its rendering, per drafting unit, as a
self-contained HTML page (summary, a matplotlib chart of the daily volume and the top topics drawn
with an explicitly chosen CJK font and embedded as base64 PNG, the topics table, sample questions and
suggested FAQ drafts from ticket replies; Jinja2 with autoescape) and an XLSX workbook (openpyxl;
sheets 概览 / 主题 / 样例问题 / 建议问答), plus one overview of all units for supervisors, and the
writing of those files. Output is byte-for-byte deterministic for the same data (no timestamps in the
files, fixed zip entry dates). `generate_weekly` is the entry point for the CLI and for a scheduler.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import logging
import os
import re
import threading
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import PolicybotError
from knowledge.faqs import formula_safe
from knowledge.gaps.analysis import analyse_store
from knowledge.gaps.links import HTML_BLOCK, xlsx_rows
from knowledge.gaps.period import resolve_period
from knowledge.gaps.results import OVERVIEW, GapAnalysis, GapReport, NearestFaq, TicketSummary
from knowledge.gaps.routing import ROUTE_SOURCES
from knowledge.gaps.selection import REASONS, GapParams
from knowledge.matcher import Matcher
from knowledge.text import TextProcessor
from knowledge.usage import QueryLogStore

log = logging.getLogger(__name__)

# Preferred CJK families, Simplified Chinese first; the first one installed is used.
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Serif CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "AR PL UMing CN",
)
EMPTY_TEXT = "本周没有未解答的问题"
HTML_SAMPLES = 5
CHART_TOPICS = 10
_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
_mpl_lock = threading.Lock()  # pyplot state is process-global


class ReportError(PolicybotError):
    pass


# --- chart ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The CJK font family matplotlib will draw with, or None (warned once: Chinese shows as boxes)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    log.warning(
        "no CJK font installed (tried %s): chart labels will not render Chinese; "
        "install fonts-noto-cjk or fonts-wqy-microhei",
        ", ".join(CJK_FAMILIES),
    )
    return None


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def render_chart(report: GapReport) -> bytes:
    """PNG: questions per day of the period and the top topics by count."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    family = cjk_font()
    rc: Any = {"axes.unicode_minus": False}
    if family:
        rc["font.family"] = [family]
    with _mpl_lock, matplotlib.rc_context(rc):
        fig = Figure(figsize=(9, 7.5), dpi=100)
        ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1.4]})
        days = [f"{d:%m-%d}\n{'一二三四五六日'[d.weekday()]}" for d, _, _ in report.daily]
        xs = list(range(len(days)))
        if report.unit is None:
            ax1.bar(
                [x - 0.2 for x in xs],
                [t for _, t, _ in report.daily],
                width=0.4,
                color="#9ecae1",
                label="提问总数",
            )
            ax1.bar(
                [x + 0.2 for x in xs],
                [u for _, _, u in report.daily],
                width=0.4,
                color="#de2d26",
                label="未解答",
            )
            ax1.legend(loc="upper left", fontsize=9, ncols=2)
        else:
            ax1.bar(xs, [u for _, _, u in report.daily], width=0.6, color="#de2d26", label="未解答")
        peak = max([max(t, u) for _, t, u in report.daily] or [0])
        ax1.set_ylim(0, max(peak, 1) * 1.25)  # room for the legend
        ax1.set_xticks(xs, days, fontsize=9)
        ax1.set_title("每日提问量", fontsize=12)
        ax1.yaxis.get_major_locator().set_params(integer=True)
        top = list(report.topics[:CHART_TOPICS])
        if top:
            labels = [f"{t.key} {_short(t.label, 18)}" for t in reversed(top)]
            counts = [t.count for t in reversed(top)]
            ys = list(range(len(top)))
            ax2.barh(ys, counts, color="#fd8d3c")
            ax2.set_yticks(ys, labels, fontsize=9)
            for y, c in zip(ys, counts, strict=True):
                ax2.text(c, y, f" {c}", va="center", fontsize=8)
            ax2.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax2.set_axis_off()
            ax2.text(0.5, 0.5, EMPTY_TEXT, ha="center", va="center", fontsize=14, transform=ax2.transAxes)
        ax2.set_title(f"未解答问题主题（前 {CHART_TOPICS} 个）", fontsize=12)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            # Without a CJK font matplotlib warns once per missing glyph; cjk_font() warned already.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
            fig.tight_layout()
            fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# --- HTML ----------------------------------------------------------------------------------------
_TEMPLATE = (
    """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.title }}</title>
<link rel="icon" href="{{ icon }}">
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.5;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.92em} th,td{border:1px solid #ccc;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3} td.n{text-align:right;white-space:nowrap} .muted{color:#595959} .empty{font-size:1.3em;padding:1em;background:#f0f7ee;border:1px solid #b7d7a8}
ul{margin:.2em 0;padding-left:1.2em} img{max-width:100%}
.scroll{overflow-x:auto;max-width:100%}
@media (max-width:700px){
body{margin:1em auto;padding:0 .75em}
.scroll table{width:auto;min-width:100%}
.scroll td,.scroll th{min-width:5em}
.scroll td.n{min-width:3em}
.scroll td.wide{min-width:15em}
.scroll tr>:first-child{position:sticky;left:0;background:#fff;box-shadow:inset -1px 0 0 #ccc}
.scroll tr>th:first-child{background:#f3f3f3}
}
</style>
</head>
<body>
<h1>{{ r.title }}</h1>
<p>统计周期：{{ r.period.describe() }}（{{ r.period.label }}，北京时间）　单位：{{ r.unit or overview }}</p>
<h2>概览</h2>
{% if r.empty %}<p class="empty">{{ empty_text }}</p>{% endif %}
<div class="scroll" tabindex="0" role="region" aria-label="概览"><table>
<tr><th>{{ "提问总数" if r.unit is none else "提问时匹配到本单位的提问数" }}</th><td class="n">{{ r.total_questions }}</td></tr>
<tr><th>未解答问题数</th><td class="n">{{ r.unanswered }}</td></tr>
{% for k, n in r.reasons %}<tr><th>　其中{{ reasons[k] }}</th><td class="n">{{ n }}</td></tr>
{% endfor %}<tr><th>列出的主题数</th><td class="n">{{ r.topics|length }}</td></tr>
<tr><th>零散问题数（未成主题）</th><td class="n">{{ r.scattered }}</td></tr>
<tr><th>建议新增问答</th><td class="n">{{ r.drafts|length }}</td></tr>
</table></div>
{% if r.units %}
<h2>各单位</h2>
<div class="scroll" tabindex="0" role="region" aria-label="各单位"><table><tr><th>承办单位</th><th>主题数</th><th>未解答问题数</th></tr>
{% for u, t, n in r.units %}<tr><td>{{ u }}</td><td class="n">{{ t }}</td><td class="n">{{ n }}</td></tr>
{% endfor %}</table></div>
{% endif %}
<h2>图表</h2>
<img alt="每日提问量与主要主题" src="data:image/png;base64,{{ chart }}">
<h2>主题</h2>
{% if r.topics %}
<div class="scroll" tabindex="0" role="region" aria-label="主题"><table>
<tr><th>编号</th><th>主题</th><th>问题数</th><th>提问人数</th><th>渠道</th><th>原因</th><th>前{{ r.trend_labels|length }}周（{{ r.trend_labels|join("、") }}）</th>{% if r.unit is none %}<th>承办单位</th>{% endif %}<th>代表性问题与样例</th><th>最接近的现有问答</th><th>相关留言</th></tr>
{% for t in r.topics %}<tr>
<td>{{ t.key }}</td><td>{{ t.label }}</td><td class="n">{{ t.count }}</td><td class="n">{{ t.askers }}</td>
<td>{% for c, n in t.channels %}{{ c }} {{ n }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td>{% for k, n in t.reasons %}{{ reasons[k] }} {{ n }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td class="n">{{ t.trend|join(" → ") }}</td>
{% if r.unit is none %}<td>{{ t.unit }}<br><span class="muted">{{ routes[t.route] }}</span></td>{% endif %}
<td class="wide"><strong>{{ t.representative }}</strong><ul>{% for s in t.samples[1:samples] %}<li>{{ s.text }}{% if s.count > 1 %} <span class="muted">×{{ s.count }}</span>{% endif %}</li>{% endfor %}</ul></td>
<td>{% if t.nearest %}{{ t.nearest.question }}<br><span class="muted">{{ t.nearest.faq_id }}，相似度 {{ "%.2f"|format(t.nearest.score) }}</span>{% else %}<span class="muted">无</span>{% endif %}</td>
<td>{% for k in t.tickets %}{{ k.no }}（{{ k.status }}）{% if not loop.last %}<br>{% endif %}{% else %}<span class="muted">无</span>{% endfor %}</td>
</tr>
{% endfor %}</table></div>
{% else %}<p class="muted">{{ empty_text if r.empty else "没有达到主题规模的问题，详见零散问题数。" }}</p>{% endif %}
<h2>建议新增问答（来自留言答复）</h2>
{% if r.drafts %}
<div class="scroll" tabindex="0" role="region" aria-label="建议新增问答"><table><tr><th>主题</th><th>建议问题</th><th>建议答复</th><th>来源留言</th></tr>
{% for d in r.drafts %}<tr><td>{{ d.topic_key }} {{ d.topic_label }}</td><td class="wide">{{ d.question }}</td><td class="wide">{{ d.answer }}</td><td>{{ d.ticket_no }}</td></tr>
{% endfor %}</table></div>
{% else %}<p class="muted">本周期没有可整理为问答的留言答复。</p>{% endif %}
"""
    + HTML_BLOCK
    + """
<p class="muted">说明：未解答问题包括未找到答复、仅提供政策原文、转人工留言、评价“没用”以及答复后同一会话换说法再问且落到别的问答的问题（直接答复且没有上述情况的问题算已解答）；同一意图的不同问法合为一个主题；问题文本已脱敏。</p>
</body>
</html>
"""
)


# The service's favicon (bot/static/favicon.svg), inline: the report is a file that travels by e-mail.
_ICON = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" '
    'fill="#1f5fbf"/><path d="M8 9h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-9l-5 4v-4H8a2 2 0 0 1-2-2v-9a2 2 0 '
    '0 1 2-2z" fill="#fff"/><path d="M11 14h10M11 18h6" stroke="#1f5fbf" stroke-width="2" '
    'stroke-linecap="round"/></svg>'
)


@functools.lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(autoescape=True, trim_blocks=False, keep_trailing_newline=True)


def render_html(report: GapReport, chart_png: bytes | None = None) -> str:
    png = chart_png if chart_png is not None else render_chart(report)
    return (
        _env()
        .from_string(_TEMPLATE)
        .render(
            r=report,
            chart=base64.b64encode(png).decode("ascii"),
            reasons=REASONS,
            routes=ROUTE_SOURCES,
            overview=OVERVIEW,
            empty_text=EMPTY_TEXT,
            samples=HTML_SAMPLES,
            icon=_ICON,
        )
    )


# --- XLSX ----------------------------------------------------------------------------------------
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _cell(v: object) -> object:
    """Text safe for a cell: no control characters, and no leading = + - @ (formula injection)."""
    if isinstance(v, str):
        return formula_safe(_ILLEGAL_XLSX.sub("", v))
    return v


def _overview_rows(report: GapReport) -> list[list[object]]:
    """The rows of the 概览 sheet: the summary, the daily volume and (overview only) the units."""
    overview: list[list[object]] = [
        ["单位", report.unit or OVERVIEW],
        ["统计周期", f"{report.period.describe()}（{report.period.label}）"],
        ["提问总数" if report.unit is None else "提问时匹配到本单位的提问数", report.total_questions],
        ["未解答问题数", report.unanswered],
    ]
    overview += [[f"其中{REASONS[k]}", n] for k, n in report.reasons]
    overview += [
        ["列出的主题数", len(report.topics)],
        ["零散问题数", report.scattered],
        ["建议新增问答", len(report.drafts)],
    ]
    if report.empty:
        overview.append(["说明", EMPTY_TEXT])
    overview.append([])
    overview.append(["日期", "提问总数" if report.unit is None else "", "未解答"])
    overview += [[f"{d:%Y-%m-%d}", t if report.unit is None else "", u] for d, t, u in report.daily]
    if report.units:
        overview.append([])
        overview.append(["承办单位", "主题数", "未解答问题数"])
        overview += [list(u) for u in report.units]
    return overview


def render_xlsx(report: GapReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    # Stamped with the period's last day, not the time of writing: equal data, equal bytes.
    stamp = dt.datetime.combine(report.period.end_day, dt.time())
    wb.properties.creator = "policybot"
    wb.properties.created = stamp
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    def sheet(
        title: str, header: Sequence[str], rows: Iterable[Sequence[object]], widths: Sequence[int]
    ) -> None:
        ws = wb.create_sheet(title)
        ws.append(list(header))
        for c in ws[1]:
            c.font = bold
        for row in rows:
            ws.append([_cell(v) for v in row])
        for i, w in enumerate(widths):
            ws.column_dimensions[chr(ord("A") + i)].width = w
        for row_cells in ws.iter_rows(min_row=2):
            for c in row_cells:
                c.alignment = wrap
        ws.freeze_panes = "A2"

    if wb.active is not None:
        wb.remove(wb.active)
    overview = _overview_rows(report)
    sheet("概览", ["项目", "数值", ""], overview, (28, 40, 12))
    sheet(
        "主题",
        [
            "编号",
            "主题",
            "问题数",
            "提问人数",
            "渠道",
            "原因",
            *[f"趋势 {lbl}" for lbl in report.trend_labels],
            "承办单位",
            "归属依据",
            "代表性问题",
            "最接近的现有问答",
            "相关留言",
        ],
        (
            [
                t.key,
                t.label,
                t.count,
                t.askers,
                "、".join(f"{c} {n}" for c, n in t.channels),
                "、".join(f"{REASONS[k]} {n}" for k, n in t.reasons),
                *t.trend,
                t.unit,
                ROUTE_SOURCES[t.route],
                t.representative,
                f"{t.nearest.question}（{t.nearest.faq_id}，{t.nearest.score:.2f}）" if t.nearest else "",
                "、".join(k.no for k in t.tickets),
            ]
            for t in report.topics
        ),
        (8, 28, 8, 8, 16, 24, *[10] * len(report.trend_labels), 24, 16, 40, 32, 20),
    )
    sheet(
        "样例问题",
        ["主题编号", "主题", "问题（已脱敏）", "次数", "原因"],
        (
            [t.key, t.label, s.text, s.count, "、".join(f"{REASONS[k]} {n}" for k, n in s.reasons)]
            for t in report.topics
            for s in t.samples
        ),
        (10, 28, 60, 8, 30),
    )
    sheet(
        "建议问答",
        ["主题编号", "主题", "建议问题", "建议答复", "来源留言", "承办单位"],
        ([d.topic_key, d.topic_label, d.question, d.answer, d.ticket_no, d.unit] for d in report.drafts),
        (10, 24, 40, 60, 20, 24),
    )
    if report.broken_links:
        sheet(
            "断链链接",
            ["链接", "问题", "断链日期", "承办单位", "使用处"],
            xlsx_rows(report.broken_links),
            (50, 16, 12, 24, 50),
        )
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue(), f"{stamp:%Y-%m-%dT%H:%M:%SZ}")


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _fixed_zip(data: bytes, modified: str) -> bytes:
    """The same archive with fixed entry dates and a fixed 'modified' property (openpyxl writes the
    time of saving), so equal workbooks are equal bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(lambda m: m.group(1) + modified.encode() + m.group(2), body)
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, body)
    return out.getvalue()


# --- files ---------------------------------------------------------------------------------------
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def safe_name(s: str, limit: int = 80) -> str:
    """A file-name part from a unit name: NFKC, no path separators or characters Windows refuses,
    spaces to underscores, no leading dots, at most `limit` characters."""
    s = unicodedata.normalize("NFKC", s or "")
    s = _UNSAFE.sub("_", s)
    s = re.sub(r"\s+", "_", s).strip("._ ")
    return s[:limit].rstrip("._ ") or "未命名单位"


@dataclass(frozen=True)
class WrittenReport:
    unit: str | None  # None: the overview
    html: Path
    xlsx: Path
    topics: int
    unanswered: int


@dataclass(frozen=True)
class WeeklyResult:
    analysis: GapAnalysis
    files: tuple[WrittenReport, ...]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(report: GapReport, out_dir: Path, stem: str) -> WrittenReport:
    html = render_html(report)
    xlsx = render_xlsx(report)
    html_path, xlsx_path = out_dir / f"{stem}.html", out_dir / f"{stem}.xlsx"
    _write_atomic(html_path, html.encode("utf-8"))
    _write_atomic(xlsx_path, xlsx)
    return WrittenReport(report.unit, html_path, xlsx_path, len(report.topics), report.unanswered)


def write_reports(
    analysis: GapAnalysis, out_dir: str | os.PathLike[str], *, unit: str | None = None
) -> list[WrittenReport]:
    """One report per drafting unit plus the overview, or only `unit`'s report when given."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"无法创建输出目录：{out}", f"cannot create {out}: {exc}") from exc
    label = safe_name(analysis.period.label)
    written: list[WrittenReport] = []
    used: set[str] = set()

    def stem_for(name: str) -> str:
        base = f"{label}_{safe_name(name)}"
        stem, i = base, 2
        while stem.lower() in used:
            stem, i = f"{base}_{i}", i + 1
        used.add(stem.lower())
        return stem

    try:
        if unit is not None:
            written.append(write_report(analysis.report(unit), out, stem_for(unit)))
            return written
        written.append(write_report(analysis.report(None), out, stem_for(f"{OVERVIEW}总览")))
        for u in analysis.units:
            written.append(write_report(analysis.report(u), out, stem_for(u)))
    except OSError as exc:
        raise ReportError(
            f"写入报告失败：{exc.strerror or exc}", f"writing report to {out} failed: {exc}"
        ) from exc
    return written


def generate_weekly(
    sessions: sessionmaker[Session],
    *,
    out_dir: str | os.PathLike[str],
    week: str | None = None,
    now: dt.datetime | None = None,
    unit: str | None = None,
    tickets: Iterable[TicketSummary] = (),
    text: TextProcessor | None = None,
    locate_unit: Callable[[str], str | None] | None = None,
    locate_faq: Callable[[str], NearestFaq | None] | None = None,
    matcher: Matcher | None = None,
    params: GapParams | None = None,
) -> WeeklyResult:
    """Analyse the ISO `week` (e.g. 2026-W47; default: the 7 days up to `now`) and write the HTML and
    XLSX reports to `out_dir`. For a scheduler: call with the previous week's label."""
    period = resolve_period(week, now)
    analysis = analyse_store(
        QueryLogStore(sessions),
        period,
        sessions=sessions,
        tickets=tickets,
        text=text,
        locate_unit=locate_unit,
        locate_faq=locate_faq,
        matcher=matcher,
        params=params,
    )
    files = write_reports(analysis, out_dir, unit=unit.strip() if unit else None)
    log.info(
        "gaps report %s: %d topics, %d files in %s",
        period.label,
        len(analysis.topics),
        2 * len(files),
        out_dir,
    )
    return WeeklyResult(analysis, tuple(files))
