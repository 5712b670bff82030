"""Which logged questions count as unanswered: this module owns the tuning of the analysis
(`GapParams`), the reasons a question counts (no answer, only policy passages, handed to staff, rated
没用, or an answer followed in the same session by a rephrasing that lands elsewhere; `REASONS`, in
order of precedence) and `select_unanswered`, which picks them out of `QueryLog` rows. A question
answered directly and followed by none of these negative signals is answered, whatever its score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.errors import InvalidInput
from knowledge.gaps.intents import IntentIndex, background
from knowledge.matcher import Matcher
from knowledge.text import TextProcessor
from knowledge.usage import LogRow

# Why a question counts as unanswered, in order of precedence (a row gets the first that applies).
REASONS: dict[str, str] = {
    "handoff": "转人工留言",
    "useless": "评价没用",
    "none": "未找到答复",
    "passage": "仅提供政策原文",
    "rephrased": "答复后换说法再问且去向不同",
}
NOT_QUESTIONS = frozenset({"command", "status", "out_of_scope"})


@dataclass(frozen=True)
class GapParams:
    """Tuning of the analysis. `same_intent`: the matcher score at which two questions are one intent
    (default: the matcher's default answer threshold): an answer or clarify counts as unanswered when
    the same session asks the same intent again, differently worded, within `rephrase_minutes` and
    that question is not answered with the same FAQ; topics whose questions meet at this score are
    merged. `similarity`: cosine of
    IDF-weighted keyword sets to join a topic (`fuzzy` is the rapidfuzz ratio that also joins, for
    typos that split words differently). Topics with fewer than `min_topic_size` questions and no
    ticket are counted as scattered questions rather than listed."""

    same_intent: float = 0.5
    rephrase_minutes: float = 5.0
    similarity: float = 0.45
    anchor: float = 0.3  # minimum cosine with the topic's leading phrasing (stops centroid drift)
    fuzzy: float = 88.0
    min_topic_size: int = 2
    max_topics: int = 200
    max_samples: int = 20
    trend_weeks: int = 4
    posting_cap: int = 200  # postings read per feature when looking for candidate topics
    query_keywords: int = 8  # rarest features of a question used to look for candidates

    def __post_init__(self) -> None:
        checks = (
            (0.0 < self.same_intent <= 1.0, "同一问题的相似度应在 0 到 1 之间", "same_intent out of (0, 1]"),
            (
                0.0 <= self.rephrase_minutes <= 24 * 60,
                "追问间隔应在 0 到 1440 分钟之间",
                "rephrase_minutes out of range",
            ),
            (
                0.0 < self.similarity <= 1.0 and 0.0 <= self.anchor <= 1.0,
                "相似度阈值应在 0 到 1 之间",
                "similarity out of (0, 1] or anchor out of [0, 1]",
            ),
            (0.0 < self.fuzzy <= 100.0, "字面相似度阈值应在 0 到 100 之间", "fuzzy out of (0, 100]"),
            (self.min_topic_size >= 1, "主题最少问题数应至少为 1", "min_topic_size < 1"),
            (
                self.max_topics >= 1 and self.max_samples >= 1,
                "主题数和样例数应至少为 1",
                "max_topics/max_samples < 1",
            ),
            (0 <= self.trend_weeks <= 26, "趋势周数应在 0 到 26 之间", "trend_weeks out of range"),
            (
                self.posting_cap >= 1 and self.query_keywords >= 1,
                "聚类参数应为正数",
                "clustering parameters must be positive",
            ),
        )
        for ok, zh, en in checks:
            if not ok:
                raise InvalidInput(zh, en)


@dataclass(frozen=True)
class Unanswered:
    """One question that did not get a good answer, with its outcome and why it counts."""

    log_id: int
    at: dt.datetime
    channel: str
    user_ref: str
    text: str
    outcome: str
    reason: str  # a key of REASONS
    score: float | None
    unit: str | None
    ticket_no: str | None


def unanswered_reason(row: LogRow, *, rephrased: bool) -> str | None:
    if row.outcome in NOT_QUESTIONS:
        return None
    if row.ticket_no or row.outcome == "handoff":
        return "handoff"
    if row.rating == "useless":
        return "useless"
    if row.outcome == "none":
        return "none"
    if row.outcome == "passage":
        return "passage"
    if rephrased:
        return "rephrased"
    return None


def select_unanswered(
    rows: Iterable[LogRow],
    params: GapParams,
    text: TextProcessor | None = None,
    matcher: Matcher | None = None,
) -> list[Unanswered]:
    """The unanswered questions among `rows` (any order), sorted by (at, id). An answer or clarify
    counts when the next question of the same session comes within the rephrase window, is worded
    differently (picking a clarify choice repeats the text), is the same intent by the matcher's
    score (`same_intent`; `matcher` is the knowledge base's, see `knowledge.gaps.intents`), and lands
    elsewhere (not answered with the same FAQ)."""
    questions = [r for r in rows if r.outcome not in NOT_QUESTIONS]
    questions.sort(key=lambda r: (r.at, r.id))
    rephrased = _rephrased(questions, params, text or TextProcessor(), matcher)
    out: list[Unanswered] = []
    for r in questions:
        reason = unanswered_reason(r, rephrased=r.id in rephrased)
        if reason is not None:
            out.append(
                Unanswered(
                    r.id, r.at, r.channel, r.user_ref, r.text, r.outcome, reason, r.score, r.unit, r.ticket_no
                )
            )
    return out


def _rephrased(
    questions: list[LogRow], params: GapParams, tp: TextProcessor, matcher: Matcher | None
) -> set[int]:
    """Ids of answers / clarifies followed by a rephrasing that lands elsewhere (see above)."""
    window = dt.timedelta(minutes=params.rephrase_minutes)
    norm_cache: dict[str, str] = {}

    def norm(raw: str) -> str:
        n = norm_cache.get(raw)
        if n is None:
            n = norm_cache[raw] = tp.normalise(raw, max_chars=1000)
        return n

    pairs: list[tuple[LogRow, LogRow]] = []
    last_in_session: dict[str, LogRow] = {}
    for r in questions:
        if not r.session_id:
            continue
        prev = last_in_session.get(r.session_id)
        if (
            prev is not None
            and prev.outcome in ("answer", "clarify")
            and r.at - prev.at <= window
            and norm(r.text) != norm(prev.text)
            and not (r.outcome == "answer" and not r.ticket_no and prev.faq_id and r.faq_id == prev.faq_id)
        ):
            pairs.append((prev, r))
        last_in_session[r.session_id] = r
    if not pairs:
        return set()
    if matcher is None:  # no knowledge base at hand: the window's questions as the background
        raw_texts = list(dict.fromkeys(r.text for r in questions))
        sample = background(raw_texts, [p.text for p, _ in pairs])
        matcher = IntentIndex(tp, (norm(t) for t in sample)).matcher
    return {prev.id for prev, nxt in pairs if matcher.similarity(nxt.text, prev.text) >= params.same_intent}
