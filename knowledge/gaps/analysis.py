"""The analysis of one period for the weekly gaps report: this module owns `analyse` (over `QueryLog`
rows plus ticket summaries handed in by the caller: the unanswered questions of the period, their
topics, each topic's askers, channels, samples, trend over the previous weeks, tickets, suggested FAQ
drafts from ticket replies and drafting unit), `analyse_store` (the same over the query log and the
keyword routes) and `scrub`, the last masking of mobiles and ID numbers before any text leaves
(the texts arrive masked; this is defence in depth).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from knowledge.gaps.period import Period, local_day
from knowledge.gaps.results import FaqDraft, GapAnalysis, NearestFaq, Sample, TicketLink, TicketSummary, Topic
from knowledge.gaps.routing import UNASSIGNED, Route, list_routes, majority, route_for
from knowledge.gaps.selection import NOT_QUESTIONS, REASONS, GapParams, Unanswered, select_unanswered
from knowledge.gaps.topics import TopicIndex, readable_label, topic_label
from knowledge.matcher import Matcher
from knowledge.models import to_db_time
from knowledge.text import TextProcessor
from knowledge.usage import LogRow, QueryLogStore

_MOBILE = re.compile(r"(?<![0-9])((?:\+?86[- ]?)?)(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])")
_ID18 = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_FULLWIDTH_DIGITS = {0xFF10 + i: 0x30 + i for i in range(10)} | {0xFF38: 0x58, 0xFF58: 0x78}


def scrub(text: str) -> str:
    """Defence in depth before anything is rendered: mask 11-digit mobiles and 18-digit ID numbers
    that slipped past the caller's masking (full-width digits too). Idempotent."""
    if not text:
        return text
    # Full-width digits map one to one onto ASCII, so spans found in `t` are spans of `text`.
    t = text.translate(_FULLWIDTH_DIGITS)
    spans: list[tuple[int, int, str]] = []
    for m in _ID18.finditer(t):
        spans.append((m.start(), m.end(), f"{m.group(1)}********{m.group(3)[-4:]}"))
    for m in _MOBILE.finditer(t):
        if not any(s < m.end() and m.start() < e for s, e, _ in spans):
            spans.append((m.start(), m.end(), f"{m.group(2)}****{m.group(4)}"))
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for s, e, rep in sorted(spans):
        out.append(text[pos:s])
        out.append(rep)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def analyse(
    rows: Iterable[LogRow],
    period: Period,
    *,
    tickets: Iterable[TicketSummary] = (),
    routes: Sequence[Route] = (),
    text: TextProcessor | None = None,
    locate_unit: Callable[[str], str | None] | None = None,
    locate_faq: Callable[[str], NearestFaq | None] | None = None,
    matcher: Matcher | None = None,
    params: GapParams | None = None,
) -> GapAnalysis:
    """Analyse the rows of the period and of the `trend_weeks` weeks before it (rows outside the
    range are ignored, so callers may hand in more).

    A topic's drafting unit is, in order: an admin keyword route contained in at least half of its
    questions; the unit most often logged with its questions (nearest FAQ/policy at ask time);
    `locate_unit(representative question)` (a search of the knowledge base now; asked only for
    listed topics); the department most of its tickets went to; else 未归属 for an admin to assign.
    `locate_faq(representative question)` names the existing FAQ that comes closest (listed topics).
    `matcher` (the knowledge base's) scores whether two questions are one intent (rephrasings,
    topic merges: `knowledge.gaps.intents`)."""
    p = params or GapParams()
    tp = text or TextProcessor()
    trend_start = period.start - dt.timedelta(weeks=p.trend_weeks)
    lookahead = period.end + dt.timedelta(minutes=p.rephrase_minutes)
    window_rows = [r for r in rows if trend_start <= r.at < lookahead]
    unanswered = select_unanswered(window_rows, p, tp, matcher)
    week = [u for u in unanswered if period.start <= u.at < period.end]
    earlier = [u for u in unanswered if u.at < period.start]
    total, daily_total, unit_totals = _totals(window_rows, period)

    index = TopicIndex(tp, p)
    index.build([u.text for u in week])
    index.merge_same_intent(matcher)
    in_topic = [False] * len(week)
    for d in index.docs:
        for m in d.members:
            in_topic[m] = True
    cluster_tickets = _link_tickets(index, week, tickets, trend_start, period.end)
    trend = _trend(index, earlier, period, p)

    route_pairs = sorted(
        ((tp.normalise(r.keyword), r.unit) for r in routes if tp.normalise(r.keyword)), key=lambda kv: kv[0]
    )
    locate = _Locators(locate_unit, locate_faq)
    topics, scattered, draft_list = _topics(index, week, cluster_tickets, trend, route_pairs, locate, p)
    # Questions whose text normalised to nothing (emoji, punctuation) count as scattered.
    for i, u in enumerate(week):
        if not in_topic[i]:
            scattered.append(
                (u.unit.strip() if u.unit and u.unit.strip() else UNASSIGNED, local_day(u.at), u.reason)
            )
    trend_labels = tuple(
        f"{(period.start_day - dt.timedelta(weeks=p.trend_weeks - i)):%m-%d}起" for i in range(p.trend_weeks)
    )
    return GapAnalysis(
        period,
        total,
        tuple(sorted(daily_total.items())),
        tuple(sorted(unit_totals.items())),
        tuple(topics),
        tuple(sorted(scattered)),
        tuple(draft_list),
        trend_labels,
    )


@dataclass(frozen=True)
class _Locators:
    """Knowledge-base lookups handed in by the caller: a topic's unit and its nearest FAQ."""

    unit: Callable[[str], str | None] | None
    faq: Callable[[str], NearestFaq | None] | None


def _totals(window_rows: Sequence[LogRow], period: Period) -> tuple[int, Counter[dt.date], Counter[str]]:
    """All questions of the period: their number, per local day and per logged unit."""
    total = 0
    daily_total: Counter[dt.date] = Counter()
    unit_totals: Counter[str] = Counter()
    for r in window_rows:
        if period.start <= r.at < period.end and r.outcome not in NOT_QUESTIONS:
            total += 1
            daily_total[local_day(r.at)] += 1
            if r.unit:
                unit_totals[r.unit.strip()] += 1
    return total, daily_total, unit_totals


def _link_tickets(
    index: TopicIndex,
    week: Sequence[Unanswered],
    tickets: Iterable[TicketSummary],
    trend_start: dt.datetime,
    end: dt.datetime,
) -> dict[int, list[TicketSummary]]:
    """Tickets per topic: linked through the query log first, else matched by their question."""
    ticket_list = sorted(tickets, key=lambda t: (to_db_time(t.created_at), t.no))
    cluster_tickets: dict[int, list[TicketSummary]] = defaultdict(list)
    cluster_of_log_ticket: dict[str, int] = {}
    for d in index.docs:
        for m in d.members:
            if week[m].ticket_no:
                cluster_of_log_ticket.setdefault(week[m].ticket_no or "", d.cluster)
    for t in ticket_list:
        cid = cluster_of_log_ticket.get(t.no)
        if cid is None and trend_start <= to_db_time(t.created_at) < end:
            cid = index.assign(t.question)
        if cid is not None:
            cluster_tickets[cid].append(t)
    return cluster_tickets


def _trend(
    index: TopicIndex, earlier: Sequence[Unanswered], period: Period, p: GapParams
) -> dict[int, list[int]]:
    """Earlier weeks' unanswered questions that fall into this week's topics, per topic and week."""
    trend: dict[int, list[int]] = defaultdict(lambda: [0] * p.trend_weeks)
    assigned: dict[str, int | None] = {}
    for u in earlier:
        wk = p.trend_weeks - 1 - int((period.start - u.at) / dt.timedelta(weeks=1))
        if not 0 <= wk < p.trend_weeks:
            continue
        if u.text not in assigned:
            assigned[u.text] = index.assign(u.text)
        cid = assigned[u.text]
        if cid is not None:
            trend[cid][wk] += 1
    return trend


def _topics(
    index: TopicIndex,
    week: Sequence[Unanswered],
    cluster_tickets: dict[int, list[TicketSummary]],
    trend: dict[int, list[int]],
    route_pairs: Sequence[tuple[str, str]],
    locate: _Locators,
    p: GapParams,
) -> tuple[list[Topic], list[tuple[str, dt.date, str]], list[FaqDraft]]:
    """The listed topics (largest first, at most `max_topics`), the (unit, local day, reason) of the
    questions in topics too small to list, and the FAQ drafts of the listed topics."""
    topics: list[Topic] = []
    scattered: list[tuple[str, dt.date, str]] = []
    draft_list: list[FaqDraft] = []
    # Rank clusters by size, then by their leading phrasing (deterministic).
    order = sorted(
        range(len(index.clusters)),
        key=lambda c: (-index.clusters[c].size, index.docs[index.clusters[c].docs[0]].norm),
    )
    listed = 0
    for cid in order:
        c = index.clusters[cid]
        members = [m for i in c.docs for m in index.docs[i].members]
        count = len(members)
        norms = [(index.docs[i].norm, len(index.docs[i].members)) for i in c.docs]
        tks = cluster_tickets.get(cid, [])
        unit = route_for(norms, count, route_pairs)
        route = "route" if unit else ""
        if unit is None:
            unit = majority(week[m].unit for m in members)
            route = "log" if unit else ""
        show = listed < p.max_topics and (count >= p.min_topic_size or bool(tks))
        if not show:
            final = unit or UNASSIGNED
            for m in members:
                scattered.append((final, local_day(week[m].at), week[m].reason))
            continue
        listed += 1
        topic, draft = _topic(index, week, cid, members, f"T{listed:03d}", unit, route, tks, trend, locate, p)
        topics.append(topic)
        if draft is not None:
            draft_list.append(draft)
    return topics, scattered, draft_list


def _samples(
    index: TopicIndex, docs: Sequence[int], week: Sequence[Unanswered]
) -> tuple[list[int], tuple[Sample, ...]]:
    """One sample per distinct normalised phrasing, most asked first, shown in its most common
    written form; the first is the topic's representative question. Also the docs in that order."""
    doc_order = sorted(docs, key=lambda i: (-len(index.docs[i].members), index.docs[i].norm))
    sample_list: list[Sample] = []
    for i in doc_order:
        doc_members = index.docs[i].members
        forms = Counter(scrub(week[m].text.strip()) for m in doc_members)
        form = sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        why = Counter(week[m].reason for m in doc_members)
        sample_list.append(Sample(form, len(doc_members), tuple((k, why[k]) for k in REASONS if why.get(k))))
    return doc_order, tuple(sample_list)


def _topic(
    index: TopicIndex,
    week: Sequence[Unanswered],
    cid: int,
    members: Sequence[int],
    key: str,
    unit: str | None,
    route: str,
    tks: Sequence[TicketSummary],
    trend: dict[int, list[int]],
    locate: _Locators,
    p: GapParams,
) -> tuple[Topic, FaqDraft | None]:
    """A listed topic (its unit completed by search, tickets or 未归属) and its FAQ draft, if any."""
    c = index.clusters[cid]
    count = len(members)
    doc_order, samples = _samples(index, c.docs, week)
    representative = samples[0].text
    if unit is None and locate.unit is not None:
        unit = (locate.unit(representative) or "").strip() or None
        route = "search" if unit else ""
    if unit is None and tks:
        unit = majority(t.department for t in tks)
        route = "ticket" if unit else ""
    if unit is None:
        unit, route = UNASSIGNED, "none"
    kw_counts: Counter[str] = Counter()
    for i in c.docs:
        for k in index.docs[i].keywords:
            kw_counts[k] += len(index.docs[i].members)
    _, key_terms = topic_label(kw_counts, index.keyword_weight, index.docs[doc_order[0]].norm, count)
    label = readable_label([smp.text for smp in samples])
    links = tuple(
        TicketLink(t.no, scrub(t.question), t.department, t.status, scrub(t.reply) if t.reply else None)
        for t in tks
    )
    draft: FaqDraft | None = None
    replied = [t for t in tks if t.reply and t.reply.strip()]
    if replied:
        best = sorted(replied, key=lambda t: (to_db_time(t.created_at), t.no))[-1]
        draft = FaqDraft(key, label, representative, scrub((best.reply or "").strip()), best.no, unit)
    day_counts = Counter(local_day(week[m].at) for m in members)
    topic = Topic(
        key=key,
        label=label,
        keywords=key_terms,
        count=count,
        askers=len({week[m].user_ref for m in members}),
        channels=tuple(
            sorted(Counter(week[m].channel for m in members).items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        reasons=tuple(
            (k, n) for k, n in ((k, sum(1 for m in members if week[m].reason == k)) for k in REASONS) if n
        ),
        representative=representative,
        samples=samples[: p.max_samples],
        trend=tuple(trend[cid]) if cid in trend else (0,) * p.trend_weeks,
        tickets=links,
        unit=unit,
        route=route,
        days=tuple(sorted(day_counts.items())),
        nearest=locate.faq(representative) if locate.faq is not None else None,
    )
    return topic, draft


def analyse_store(
    querylog: QueryLogStore,
    period: Period,
    *,
    sessions: sessionmaker[Session] | None = None,
    tickets: Iterable[TicketSummary] = (),
    text: TextProcessor | None = None,
    locate_unit: Callable[[str], str | None] | None = None,
    locate_faq: Callable[[str], NearestFaq | None] | None = None,
    matcher: Matcher | None = None,
    params: GapParams | None = None,
) -> GapAnalysis:
    """`analyse` over the query log (and the keyword routes when `sessions` is given)."""
    p = params or GapParams()
    start = period.start - dt.timedelta(weeks=p.trend_weeks)
    end = period.end + dt.timedelta(minutes=p.rephrase_minutes)
    routes = list_routes(sessions) if sessions is not None else []
    result = analyse(
        querylog.rows(start, end),
        period,
        tickets=tickets,
        routes=routes,
        text=text,
        locate_unit=locate_unit,
        locate_faq=locate_faq,
        matcher=matcher,
        params=p,
    )
    if sessions is None:
        return result
    from dataclasses import replace

    from knowledge.gaps.links import broken_links

    return replace(result, broken_links=broken_links(sessions))
