"""The weekly gaps report: which logged questions count as unanswered (`selection`), the reported
window (`period`), how they group into labelled topics (`topics`), which drafting unit each topic goes
to (`routing`), the analysis of a period (`analysis`, with its inputs and results in `results`) and
the report files (`report`: HTML, chart and XLSX per unit and the overview). It reads `QueryLog` rows
plus ticket summaries handed in by the caller and never imports handoff. The names below are the
package's public API.
"""

from knowledge.gaps.analysis import analyse, analyse_store, scrub
from knowledge.gaps.period import Period, last_seven_days, parse_week, resolve_period
from knowledge.gaps.report import (
    CHART_TOPICS,
    CJK_FAMILIES,
    EMPTY_TEXT,
    HTML_SAMPLES,
    ReportError,
    WeeklyResult,
    WrittenReport,
    cjk_font,
    generate_weekly,
    render_chart,
    render_html,
    render_xlsx,
    safe_name,
    write_report,
    write_reports,
)
from knowledge.gaps.results import (
    OVERVIEW,
    FaqDraft,
    GapAnalysis,
    GapReport,
    NearestFaq,
    Sample,
    TicketLink,
    TicketSummary,
    Topic,
)
from knowledge.gaps.routing import ROUTE_SOURCES, UNASSIGNED, Route, delete_route, list_routes, set_route
from knowledge.gaps.selection import (
    NOT_QUESTIONS,
    REASONS,
    GapParams,
    Unanswered,
    select_unanswered,
    unanswered_reason,
)
from knowledge.gaps.topics import (
    GENERIC_TERMS,
    GENERIC_WEIGHT,
    STOPWORDS,
    TopicIndex,
    features_of,
    keywords_of,
)

__all__ = [
    "CHART_TOPICS",
    "CJK_FAMILIES",
    "EMPTY_TEXT",
    "GENERIC_TERMS",
    "GENERIC_WEIGHT",
    "HTML_SAMPLES",
    "NOT_QUESTIONS",
    "OVERVIEW",
    "REASONS",
    "ROUTE_SOURCES",
    "STOPWORDS",
    "UNASSIGNED",
    "FaqDraft",
    "GapAnalysis",
    "GapParams",
    "GapReport",
    "NearestFaq",
    "Period",
    "ReportError",
    "Route",
    "Sample",
    "TicketLink",
    "TicketSummary",
    "Topic",
    "TopicIndex",
    "Unanswered",
    "WeeklyResult",
    "WrittenReport",
    "analyse",
    "analyse_store",
    "cjk_font",
    "delete_route",
    "features_of",
    "generate_weekly",
    "keywords_of",
    "last_seven_days",
    "list_routes",
    "parse_week",
    "render_chart",
    "render_html",
    "render_xlsx",
    "resolve_period",
    "safe_name",
    "scrub",
    "select_unanswered",
    "set_route",
    "unanswered_reason",
    "write_report",
    "write_reports",
]
