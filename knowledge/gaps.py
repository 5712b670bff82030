"""Unanswered-question topics for the weekly gaps report: which logged questions count as unanswered
(no answer, only policy passages, handed to staff, rated 没用, or a low-score answer followed by a
rephrasing in the same session), how they group into topics (identical normalised texts deduplicated,
jieba keywords as IDF-weighted character bigrams, online centroid clustering over an inverted feature
index plus one merge pass, so 100,000 questions never meet an O(n^2) comparison; deterministic for
the same input), each topic's label, askers, channels, samples, trend over the previous weeks and
tickets, and which drafting unit (制文单位) each topic goes to (admin keyword routes in table
`gap_route`, the unit logged with the questions, a knowledge-base search supplied by the caller, the
tickets' department, else 未归属). It reads `QueryLog` rows plus ticket summaries handed in by the
caller (this package never imports handoff); the texts arrive masked and are scrubbed once more for
mobiles and ID numbers before they leave. Rendering lives in `knowledge.report`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import InvalidInput, NotFound
from knowledge.models import CHINA_TZ, GapRoute, to_db_time, utcnow
from knowledge.text import TextProcessor, is_cjk
from knowledge.usage import LogRow, QueryLogStore

# China has had no daylight saving time since 1991: a fixed offset is exact and needs no tz database.
UNASSIGNED = "未归属"
OVERVIEW = "全部单位"

# Why a question counts as unanswered, in order of precedence (a row gets the first that applies).
REASONS: dict[str, str] = {
    "handoff": "转人工留言",
    "useless": "评价没用",
    "none": "未找到答复",
    "passage": "仅提供政策原文",
    "rephrased": "低分答复后换说法再问",
}
ROUTE_SOURCES: dict[str, str] = {
    "route": "关键词路由",
    "log": "提问时匹配的单位",
    "ticket": "留言承办部门",
    "search": "检索最近的问答或政策",
    "none": "待管理员指定",
}
NOT_QUESTIONS = frozenset({"command", "status"})

# Words that say how something is asked, not what: never topic keywords.
STOPWORDS = frozenset(
    """怎么 怎样 怎么样 如何 什么 哪些 哪里 哪儿 哪个 多少 多久 几天 是否 可以 可不可以 能否 能不能 能够 需要
    需不需要 要求 请问 有没有 是不是 会不会 有关 关于 相关 问题 情况 现在 目前 一下 一个 这个 那个 这样 那样
    我们 你们 他们 自己 为什么 为啥 咋办 怎么办 还是 或者 以及 还有 而且 但是 如果 因为 所以 已经 的话 之后 以后
    之前 以前 时候 了解 咨询 知道 告诉 帮忙 麻烦 具体 哪家 哪位 谁 吗 吧 呢 啊 的 了 是 在 有 和 与 及 或 我 你
    他 她 它 要 能 会 想 去 到 给 把 被 就 都 也 还 又 可 该 这 那 个 些 么 啥 嘛 呀 哦 不 没 对 从 向 让 用 为 得 地
    着 过 下 上 吗 啊 哈 呃 嗯 问 请 您 好""".split()
)

# Generic actions and aspects (办理, 材料, 流程 ...): a question's subject says which gap it is, so
# these count for a fraction of their IDF weight in the similarity (they still appear in labels).
GENERIC_TERMS = frozenset(
    """办理 办 申请 申领 领取 领 提交 查询 查 咨询 规定 政策 标准 条件 流程 材料 手续 资料 证明 时间 地点 地址
    电话 窗口 网上 线上 线下 费用 多长 时限 进度 结果 方式 途径 渠道 部门 单位 哪儿 啥时候 什么时候""".split()
)
GENERIC_WEIGHT = 0.3

_MOBILE = re.compile(r"(?<![0-9])((?:\+?86[- ]?)?)(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])")
_ID18 = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_WEEK_RE = re.compile(r"^\s*(\d{4})\s*-?\s*[Ww]\s*(\d{1,2})\s*$")


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


# --- parameters and inputs -----------------------------------------------------------------------
@dataclass(frozen=True)
class GapParams:
    """Tuning of the analysis. `low_score`: an answer/clarify scored below this counts as unanswered
    when the same session asks something else within `rephrase_minutes`. `similarity`: cosine of
    IDF-weighted keyword sets to join a topic (`fuzzy` is the rapidfuzz ratio that also joins, for
    typos that split words differently). Topics with fewer than `min_topic_size` questions and no
    ticket are counted as scattered questions rather than listed."""

    low_score: float = 0.9
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
            (0.0 <= self.low_score <= 1.0, "低分阈值应在 0 到 1 之间", "low_score out of [0, 1]"),
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
class TicketSummary:
    """What the report needs of a ticket (政策留言). The caller masks `question` and `reply`."""

    no: str
    question: str
    department: str
    status: str
    reply: str | None
    created_at: dt.datetime  # naive UTC, or timezone-aware (converted)


@dataclass(frozen=True)
class Period:
    """The reported window: local (China) dates [start_day, end_day] and the naive-UTC instants
    [start, end) that select QueryLog rows."""

    label: str  # 2026-W47, or 20261117-20261123 for a rolling window
    start: dt.datetime
    end: dt.datetime
    start_day: dt.date
    end_day: dt.date

    @property
    def days(self) -> list[dt.date]:
        n = (self.end_day - self.start_day).days + 1
        return [self.start_day + dt.timedelta(days=i) for i in range(n)]

    def describe(self) -> str:
        return f"{self.start_day:%Y-%m-%d} 至 {self.end_day:%Y-%m-%d}"


def _local_day(at_utc_naive: dt.datetime) -> dt.date:
    return at_utc_naive.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ).date()


def _local_midnight_utc(day: dt.date) -> dt.datetime:
    return to_db_time(dt.datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))


def parse_week(week: str) -> Period:
    """An ISO week such as 2026-W47 (Monday to Sunday, China time)."""
    m = _WEEK_RE.match(week or "")
    if not m:
        raise InvalidInput(f"周的格式应为 2026-W47：{week}", f"bad ISO week {week!r}")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        monday = dt.date.fromisocalendar(year, num, 1)
    except ValueError:
        raise InvalidInput(f"{year} 年没有第 {num} 周", f"no ISO week {year}-W{num}") from None
    sunday = monday + dt.timedelta(days=6)
    return Period(
        f"{year}-W{num:02d}",
        _local_midnight_utc(monday),
        _local_midnight_utc(sunday + dt.timedelta(days=1)),
        monday,
        sunday,
    )


def last_seven_days(now: dt.datetime | None = None) -> Period:
    """The 7 days up to `now` (naive UTC or aware), labelled by their local dates."""
    end = to_db_time(now) if now is not None else utcnow()
    start = end - dt.timedelta(days=7)
    first, last = _local_day(start), _local_day(end - dt.timedelta(microseconds=1))
    return Period(f"{first:%Y%m%d}-{last:%Y%m%d}", start, end, first, last)


def resolve_period(week: str | None = None, now: dt.datetime | None = None) -> Period:
    return parse_week(week) if week else last_seven_days(now)


# --- unanswered questions --------------------------------------------------------------------------
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


def select_unanswered(rows: Iterable[LogRow], params: GapParams) -> list[Unanswered]:
    """The unanswered questions among `rows` (any order), sorted by (at, id). A low-score answer or
    clarification counts when the next question of the same session comes within the rephrase
    window and says something else (picking a clarification choice repeats the text, so it does not)."""
    questions = [r for r in rows if r.outcome not in NOT_QUESTIONS]
    questions.sort(key=lambda r: (r.at, r.id))
    window = dt.timedelta(minutes=params.rephrase_minutes)
    rephrased: set[int] = set()
    last_in_session: dict[str, LogRow] = {}
    for r in questions:
        if not r.session_id:
            continue
        prev = last_in_session.get(r.session_id)
        if (
            prev is not None
            and prev.outcome in ("answer", "clarify")
            and prev.score is not None
            and prev.score < params.low_score
            and r.at - prev.at <= window
            and r.text.strip() != prev.text.strip()
        ):
            rephrased.add(prev.id)
        last_in_session[r.session_id] = r
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


# --- topics ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    text: str  # masked
    count: int
    reasons: tuple[tuple[str, int], ...] = ()  # why these questions count as unanswered


@dataclass(frozen=True)
class TicketLink:
    no: str
    question: str
    department: str
    status: str
    reply: str | None


@dataclass(frozen=True)
class Topic:
    key: str  # T001 ... by rank in the whole analysis
    label: str
    keywords: tuple[str, ...]
    count: int
    askers: int
    channels: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    representative: str  # the most asked phrasing (masked)
    samples: tuple[Sample, ...]
    trend: tuple[int, ...]  # questions matching the topic in each previous week, oldest first
    tickets: tuple[TicketLink, ...]
    unit: str
    route: str  # a key of ROUTE_SOURCES
    days: tuple[tuple[dt.date, int], ...]


@dataclass(frozen=True)
class FaqDraft:
    topic_key: str
    topic_label: str
    question: str
    answer: str
    ticket_no: str
    unit: str


@dataclass(frozen=True)
class GapReport:
    """The report of one drafting unit (or the overview of all units when `unit` is None)."""

    period: Period
    unit: str | None
    total_questions: int  # all questions of the period (the unit's: those logged with its unit)
    unanswered: int
    reasons: tuple[tuple[str, int], ...]
    daily: tuple[tuple[dt.date, int, int], ...]  # day, questions, unanswered
    topics: tuple[Topic, ...]
    scattered: int  # unanswered questions in topics too small to list
    drafts: tuple[FaqDraft, ...]
    trend_labels: tuple[str, ...]
    units: tuple[tuple[str, int, int], ...] = ()  # overview only: unit, topics, unanswered

    @property
    def empty(self) -> bool:
        return self.unanswered == 0

    @property
    def title(self) -> str:
        return f"{self.unit or OVERVIEW} 未解答问题周报（{self.period.label}）"


@dataclass
class _Doc:
    norm: str
    members: list[int]  # indices into the unanswered list
    keywords: tuple[str, ...] = ()  # for labels
    features: tuple[str, ...] = ()  # for similarity
    vec_norm: float = 0.0
    cluster: int = -1


@dataclass
class _Cluster:
    docs: list[int] = field(default_factory=list)
    centroid: dict[str, float] = field(default_factory=dict)  # sum of count x unit doc vectors
    sumsq: float = 0.0  # squared norm of the centroid
    size: int = 0  # questions


def keywords_of(text: TextProcessor, norm: str) -> tuple[str, ...]:
    """Content words of a normalised question (jieba words minus question words and particles,
    numbers dropped); the question's CJK characters when no word is left."""
    seen: dict[str, None] = {}
    for w in text.tokens_of_normalised(norm):
        w = w.strip()
        if not w or w in STOPWORDS or w.isdigit() or (w.isascii() and len(w) < 2):
            continue
        seen.setdefault(w, None)
    if not seen:
        for ch in norm:
            if is_cjk(ch) and ch not in STOPWORDS:
                seen.setdefault(ch, None)
    return tuple(seen)


def features_of(keywords: Sequence[str]) -> tuple[str, ...]:
    """Similarity features of a question's keywords: the character bigrams of each word (so
    新生儿医保 and 新生儿 / 医保 still meet when jieba splits them differently), the word itself when
    it is a single character or not Chinese."""
    seen: dict[str, None] = {}
    for k in keywords:
        if len(k) == 1 or not is_cjk(k[0]):
            seen.setdefault(k, None)
            continue
        for i in range(len(k) - 1):
            seen.setdefault(k[i : i + 2], None)
    return tuple(seen)


class TopicIndex:
    """Online centroid clustering of distinct normalised questions, then one merge pass.

    Questions are taken most asked first (ties by text). Each joins the topic whose centroid (the
    count-weighted sum of its questions' unit TF-IDF vectors) is most similar by cosine when that
    clears the threshold, else starts a topic; candidates come from an inverted index of centroid
    features, read rarest feature first with a cap per posting list, so the cost per question is
    bounded whatever the volume. A centroid is dominated by the words every phrasing shares, so a
    second pass merges topics whose centroids are similar (phrasings that split early, e.g. 新生儿医保
    怎么办理 / 新生儿参加医保要什么材料), smaller into larger. `assign` places other texts (previous
    weeks, tickets) on the final topics the same way. Deterministic for the same input."""

    def __init__(self, text: TextProcessor, params: GapParams) -> None:
        self.text = text
        self.params = params
        self.docs: list[_Doc] = []
        self.clusters: list[_Cluster] = []
        self._idf: dict[str, float] = {}  # of features
        self._kw_idf: dict[str, float] = {}  # of keywords (label ranking)
        self._unknown_idf = 1.0
        self._postings: dict[str, list[int]] = defaultdict(list)
        self._norm_cache: dict[str, str] = {}

    def normalise(self, raw: str) -> str:
        norm = self._norm_cache.get(raw)
        if norm is None:
            norm = self.text.normalise(raw, max_chars=1000)
            self._norm_cache[raw] = norm
        return norm

    def _weight(self, f: str) -> float:
        return self._idf.get(f, self._unknown_idf)

    def keyword_weight(self, kw: str) -> float:
        return self._kw_idf.get(kw, self._unknown_idf)

    def _vec_norm(self, feats: Sequence[str]) -> float:
        return math.sqrt(sum(self._weight(k) ** 2 for k in feats))

    def build(self, texts: Sequence[str]) -> None:
        """Cluster `texts` (raw, masked); doc and cluster ids are deterministic for the same input."""
        by_norm: dict[str, list[int]] = {}
        for i, raw in enumerate(texts):
            by_norm.setdefault(self.normalise(raw), []).append(i)
        by_norm.pop("", None)  # nothing left after normalisation (emoji, punctuation): not a topic
        order = sorted(by_norm, key=lambda n: (-len(by_norm[n]), n))
        self.docs = [_Doc(n, by_norm[n]) for n in order]
        df: Counter[str] = Counter()
        kw_df: Counter[str] = Counter()
        for d in self.docs:
            d.keywords = keywords_of(self.text, d.norm)
            d.features = features_of(d.keywords)
            kw_df.update(d.keywords)
            df.update(d.features)
        n = max(len(self.docs), 1)
        self._idf = {
            k: math.log(1.0 + n / c) * (GENERIC_WEIGHT if k in GENERIC_TERMS else 1.0) for k, c in df.items()
        }
        self._kw_idf = {k: math.log(1.0 + n / c) for k, c in kw_df.items()}
        self._unknown_idf = math.log(1.0 + n)
        self.clusters = []
        self._postings = defaultdict(list)
        for i, d in enumerate(self.docs):
            d.vec_norm = self._vec_norm(d.features)
            best = self._best_cluster(d.norm, d.features, d.vec_norm)
            if best is None:
                best = len(self.clusters)
                self.clusters.append(_Cluster())
            self._add(best, i)
        self._merge()

    def _add(self, cid: int, doc_id: int) -> None:
        c, d = self.clusters[cid], self.docs[doc_id]
        d.cluster = cid
        c.docs.append(doc_id)
        c.size += len(d.members)
        if not d.vec_norm:
            return
        scale = len(d.members) / d.vec_norm
        for f in d.features:
            old = c.centroid.get(f, 0.0)
            new = old + scale * self._weight(f)
            c.centroid[f] = new
            c.sumsq += new * new - old * old
            if old == 0.0:
                self._postings[f].append(cid)

    def _candidates(self, feats: Sequence[str], weight: Callable[[str], float]) -> list[int]:
        """Clusters sharing the query's rarest features, by partial dot product (best first)."""
        p = self.params
        query = sorted(feats, key=lambda f: (-self._weight(f), f))[: p.query_keywords]
        dots: dict[int, float] = {}
        for f in query:
            w = weight(f)
            for k in self._postings.get(f, ())[: p.posting_cap]:
                dots[k] = dots.get(k, 0.0) + w * self.clusters[k].centroid.get(f, 0.0)
        return [k for k, _ in sorted(dots.items(), key=lambda kv: (-kv[1], kv[0]))[:16]]

    def _best_cluster(self, norm: str, feats: Sequence[str], vnorm: float) -> int | None:
        if not feats or vnorm == 0.0:
            return None
        p = self.params
        best_k, best_s = -1, 0.0
        for k in self._candidates(feats, self._weight):
            c = self.clusters[k]
            dot = sum(self._weight(f) * c.centroid.get(f, 0.0) for f in feats)
            cos = dot / (vnorm * math.sqrt(c.sumsq)) if c.sumsq > 0 else 0.0
            leader = self.docs[c.docs[0]]
            if cos < p.similarity and fuzz.ratio(norm, leader.norm) >= p.fuzzy:
                cos = p.similarity  # a typo away from the topic's leading phrasing
            elif self._doc_cos(feats, vnorm, leader) < p.anchor:
                continue  # near the centroid but far from what the topic is about
            if cos > best_s + 1e-12:
                best_k, best_s = k, cos
        return best_k if best_k >= 0 and best_s >= p.similarity else None

    def _doc_cos(self, feats: Sequence[str], vnorm: float, other: _Doc) -> float:
        if not vnorm or not other.vec_norm:
            return 0.0
        shared = set(feats).intersection(other.features)
        return sum(self._weight(f) ** 2 for f in shared) / (vnorm * other.vec_norm)

    def _merge(self) -> None:
        """Fold each topic into the most similar larger topic when their centroids clear the
        threshold (one pass, larger topics first), then renumber the topics."""
        p = self.params
        old = self.clusters
        order = sorted(range(len(old)), key=lambda k: (-old[k].size, old[k].docs[0]))
        self.clusters = []
        self._postings = defaultdict(list)
        for k in order:
            c = old[k]
            norm_c = math.sqrt(c.sumsq)
            target = -1
            if norm_c > 0:
                lead = self.docs[c.docs[0]]
                feats = list(c.centroid)
                best_s = 0.0
                for t in self._candidates(feats, c.centroid.__getitem__):
                    tc = self.clusters[t]
                    small, large = (
                        (c.centroid, tc.centroid)
                        if len(c.centroid) <= len(tc.centroid)
                        else (tc.centroid, c.centroid)
                    )
                    dot = sum(v * large.get(f, 0.0) for f, v in small.items())
                    cos = dot / (norm_c * math.sqrt(tc.sumsq)) if tc.sumsq > 0 else 0.0
                    if self._doc_cos(lead.features, lead.vec_norm, self.docs[tc.docs[0]]) < p.anchor:
                        continue
                    if cos > best_s + 1e-12:
                        target, best_s = t, cos
                if best_s < p.similarity:
                    target = -1
            if target < 0:
                target = len(self.clusters)
                self.clusters.append(_Cluster())
            for doc_id in c.docs:
                self._add(target, doc_id)

    def assign(self, raw: str) -> int | None:
        """The topic a text from outside the clustered set (earlier weeks, tickets) belongs to."""
        norm = self.normalise(raw)
        if not norm:
            return None
        feats = features_of(keywords_of(self.text, norm))
        return self._best_cluster(norm, feats, self._vec_norm(feats))


# --- routing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    keyword: str
    unit: str
    updated_by: str
    updated_at: dt.datetime


def _clean_keyword(keyword: str) -> str:
    k = re.sub(r"\s+", " ", keyword or "").strip()
    if not k:
        raise InvalidInput("关键词不能为空", "empty route keyword")
    if len(k) > 100:
        raise InvalidInput("关键词不能超过 100 个字", "route keyword longer than 100")
    return k


def _clean_unit(unit: str) -> str:
    u = re.sub(r"\s+", " ", unit or "").strip()
    if not u:
        raise InvalidInput("单位名称不能为空", "empty route unit")
    if len(u) > 200:
        raise InvalidInput("单位名称不能超过 200 个字", "route unit longer than 200")
    return u


def list_routes(sessions: sessionmaker[Session]) -> list[Route]:
    with sessions() as s:
        rows = s.execute(select(GapRoute).order_by(GapRoute.keyword)).scalars().all()
        return [Route(r.keyword, r.unit, r.updated_by, r.updated_at) for r in rows]


def set_route(sessions: sessionmaker[Session], *, keyword: str, unit: str, by: str) -> Route:
    """Create or replace the route of a keyword."""
    k, u = _clean_keyword(keyword), _clean_unit(unit)
    who = (by or "system").strip()[:100] or "system"
    now = utcnow()
    with sessions.begin() as s:
        row = s.get(GapRoute, k, with_for_update=True)
        if row is None:
            s.add(GapRoute(keyword=k, unit=u, updated_by=who, updated_at=now))
        else:
            row.unit, row.updated_by, row.updated_at = u, who, now
    return Route(k, u, who, now)


def delete_route(sessions: sessionmaker[Session], *, keyword: str) -> None:
    k = _clean_keyword(keyword)
    with sessions.begin() as s:
        row = s.get(GapRoute, k)
        if row is None:
            raise NotFound(f"没有关键词“{k}”的路由", f"no gap route for {k!r}")
        s.delete(row)


# --- the analysis ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapAnalysis:
    """All topics of a period; `report(unit)` cuts the view of one drafting unit."""

    period: Period
    total_questions: int
    daily_total: tuple[tuple[dt.date, int], ...]
    unit_totals: tuple[tuple[str, int], ...]  # questions logged with each unit
    topics: tuple[Topic, ...]  # listed topics, by count
    scattered: tuple[tuple[str, dt.date, str], ...]  # (unit, local day, reason) of unlisted questions
    drafts: tuple[FaqDraft, ...]
    trend_labels: tuple[str, ...]

    @property
    def units(self) -> list[str]:
        names = {t.unit for t in self.topics} | {u for u, _, _ in self.scattered}
        return sorted(names, key=lambda u: (u == UNASSIGNED, u))

    def report(self, unit: str | None = None) -> GapReport:
        topics = tuple(t for t in self.topics if unit is None or t.unit == unit)
        scattered = [s for s in self.scattered if unit is None or s[0] == unit]
        days = self.period.days
        per_day: Counter[dt.date] = Counter()
        reasons: Counter[str] = Counter()
        for t in topics:
            per_day.update(dict(t.days))
            reasons.update(dict(t.reasons))
        for _, day, reason in scattered:
            per_day[day] += 1
            reasons[reason] += 1
        totals = dict(self.daily_total)
        if unit is None:
            total = self.total_questions
            daily = tuple((d, totals.get(d, 0), per_day.get(d, 0)) for d in days)
            units: dict[str, list[int]] = {}
            for t in topics:
                units.setdefault(t.unit, [0, 0])
                units[t.unit][0] += 1
                units[t.unit][1] += t.count
            for u, _, _ in scattered:
                units.setdefault(u, [0, 0])[1] += 1
            unit_rows = tuple(
                sorted(
                    ((u, v[0], v[1]) for u, v in units.items()),
                    key=lambda r: (r[0] == UNASSIGNED, -r[2], r[0]),
                )
            )
        else:
            total = dict(self.unit_totals).get(unit, 0)
            daily = tuple((d, 0, per_day.get(d, 0)) for d in days)
            unit_rows = ()
        unanswered = sum(t.count for t in topics) + len(scattered)
        drafts = tuple(d for d in self.drafts if unit is None or d.unit == unit)
        return GapReport(
            self.period,
            unit,
            total,
            unanswered,
            tuple((k, reasons[k]) for k in REASONS if reasons.get(k)),
            daily,
            topics,
            len(scattered),
            drafts,
            self.trend_labels,
            unit_rows,
        )


def _route_for(norms: Sequence[tuple[str, int]], total: int, routes: Sequence[tuple[str, str]]) -> str | None:
    """The unit of the route keyword contained in most of the topic's questions (at least half)."""
    best: tuple[int, int, str, str] | None = None
    for kw, unit in routes:
        hits = sum(n for norm, n in norms if kw in norm)
        if hits * 2 >= total and hits > 0:
            cand = (hits, len(kw), kw, unit)
            if (
                best is None
                or (cand[0], cand[1]) > (best[0], best[1])
                or ((cand[0], cand[1]) == (best[0], best[1]) and cand[2] < best[2])
            ):
                best = cand
    return best[3] if best else None


def _majority(values: Iterable[str | None]) -> str | None:
    c = Counter(v.strip() for v in values if v and v.strip())
    if not c:
        return None
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _label(
    keywords: Counter[str], idf: Callable[[str], float], representative: str, count: int
) -> tuple[str, tuple[str, ...]]:
    """Up to four key terms shared by at least half of the topic's questions, shown in the order
    they appear in the leading phrasing; adjacent terms are written together (灵活就业)."""
    ranked = sorted(keywords.items(), key=lambda kv: (-kv[1], -(len(kv[0]) > 1), -idf(kv[0]), kv[0]))
    chosen = [k for k, n in ranked if n * 2 >= count][:4] or [k for k, _ in ranked[:1]]
    if not chosen:
        return representative[:30], ()
    pos = {k: representative.find(k) for k in chosen}
    inside = sorted((k for k in chosen if pos[k] >= 0), key=lambda k: (pos[k], k))
    outside = sorted(k for k in chosen if pos[k] < 0)
    parts: list[str] = []
    end = -1
    for k in inside:
        if parts and pos[k] == end:
            parts[-1] += k
        elif parts and pos[k] < end:  # overlapping terms: keep the text once
            tail = representative[end : pos[k] + len(k)]
            parts[-1] += tail
        else:
            parts.append(k)
        end = max(end, pos[k] + len(k))
    parts.extend(outside)
    return "、".join(parts), tuple(chosen)


def analyse(
    rows: Iterable[LogRow],
    period: Period,
    *,
    tickets: Iterable[TicketSummary] = (),
    routes: Sequence[Route] = (),
    text: TextProcessor | None = None,
    locate_unit: Callable[[str], str | None] | None = None,
    params: GapParams | None = None,
) -> GapAnalysis:
    """Analyse the rows of the period and of the `trend_weeks` weeks before it (rows outside the
    range are ignored, so callers may hand in more).

    A topic's drafting unit is, in order: an admin keyword route contained in at least half of its
    questions; the unit most often logged with its questions (nearest FAQ/policy at ask time);
    `locate_unit(representative question)` (a search of the knowledge base now; asked only for
    listed topics); the department most of its tickets went to; else 未归属 for an admin to assign."""
    p = params or GapParams()
    tp = text or TextProcessor()
    trend_start = period.start - dt.timedelta(weeks=p.trend_weeks)
    lookahead = period.end + dt.timedelta(minutes=p.rephrase_minutes)
    window_rows = [r for r in rows if trend_start <= r.at < lookahead]
    unanswered = select_unanswered(window_rows, p)
    week = [u for u in unanswered if period.start <= u.at < period.end]
    earlier = [u for u in unanswered if u.at < period.start]

    total = 0
    daily_total: Counter[dt.date] = Counter()
    unit_totals: Counter[str] = Counter()
    for r in window_rows:
        if period.start <= r.at < period.end and r.outcome not in NOT_QUESTIONS:
            total += 1
            daily_total[_local_day(r.at)] += 1
            if r.unit:
                unit_totals[r.unit.strip()] += 1

    index = TopicIndex(tp, p)
    index.build([u.text for u in week])
    in_topic = [False] * len(week)

    # Tickets: linked through the query log first, else matched by their question.
    ticket_list = sorted(tickets, key=lambda t: (to_db_time(t.created_at), t.no))
    cluster_tickets: dict[int, list[TicketSummary]] = defaultdict(list)
    cluster_of_log_ticket: dict[str, int] = {}
    for d in index.docs:
        for m in d.members:
            in_topic[m] = True
            if week[m].ticket_no:
                cluster_of_log_ticket.setdefault(week[m].ticket_no or "", d.cluster)
    for t in ticket_list:
        cid = cluster_of_log_ticket.get(t.no)
        if cid is None and trend_start <= to_db_time(t.created_at) < period.end:
            cid = index.assign(t.question)
        if cid is not None:
            cluster_tickets[cid].append(t)

    # Trend: earlier weeks' unanswered questions that fall into this week's topics.
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

    route_pairs = sorted(
        ((tp.normalise(r.keyword), r.unit) for r in routes if tp.normalise(r.keyword)), key=lambda kv: kv[0]
    )
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
        unit = _route_for(norms, count, route_pairs)
        route = "route" if unit else ""
        if unit is None:
            unit = _majority(week[m].unit for m in members)
            route = "log" if unit else ""
        show = listed < p.max_topics and (count >= p.min_topic_size or bool(tks))
        if not show:
            final = unit or UNASSIGNED
            for m in members:
                scattered.append((final, _local_day(week[m].at), week[m].reason))
            continue
        listed += 1
        # One sample per distinct normalised phrasing, most asked first, shown in its most common
        # written form; the first is the topic's representative question.
        doc_order = sorted(c.docs, key=lambda i: (-len(index.docs[i].members), index.docs[i].norm))
        sample_list: list[Sample] = []
        for i in doc_order:
            doc_members = index.docs[i].members
            forms = Counter(scrub(week[m].text.strip()) for m in doc_members)
            form = sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            why = Counter(week[m].reason for m in doc_members)
            sample_list.append(
                Sample(form, len(doc_members), tuple((k, why[k]) for k in REASONS if why.get(k)))
            )
        samples = tuple(sample_list)
        representative = samples[0].text
        if unit is None and locate_unit is not None:
            unit = (locate_unit(representative) or "").strip() or None
            route = "search" if unit else ""
        if unit is None and tks:
            unit = _majority(t.department for t in tks)
            route = "ticket" if unit else ""
        if unit is None:
            unit, route = UNASSIGNED, "none"
        kw_counts: Counter[str] = Counter()
        for i in c.docs:
            for k in index.docs[i].keywords:
                kw_counts[k] += len(index.docs[i].members)
        label, key_terms = _label(kw_counts, index.keyword_weight, index.docs[doc_order[0]].norm, count)
        key = f"T{listed:03d}"
        links = tuple(
            TicketLink(t.no, scrub(t.question), t.department, t.status, scrub(t.reply) if t.reply else None)
            for t in tks
        )
        replied = [t for t in tks if t.reply and t.reply.strip()]
        if replied:
            best = sorted(replied, key=lambda t: (to_db_time(t.created_at), t.no))[-1]
            draft_list.append(
                FaqDraft(key, label, representative, scrub((best.reply or "").strip()), best.no, unit)
            )
        day_counts = Counter(_local_day(week[m].at) for m in members)
        topics.append(
            Topic(
                key=key,
                label=label,
                keywords=key_terms,
                count=count,
                askers=len({week[m].user_ref for m in members}),
                channels=tuple(
                    sorted(Counter(week[m].channel for m in members).items(), key=lambda kv: (-kv[1], kv[0]))
                ),
                reasons=tuple(
                    (k, n)
                    for k, n in ((k, sum(1 for m in members if week[m].reason == k)) for k in REASONS)
                    if n
                ),
                representative=representative,
                samples=samples[: p.max_samples],
                trend=tuple(trend[cid]) if cid in trend else (0,) * p.trend_weeks,
                tickets=links,
                unit=unit,
                route=route,
                days=tuple(sorted(day_counts.items())),
            )
        )
    # Questions whose text normalised to nothing (emoji, punctuation) count as scattered.
    for i, u in enumerate(week):
        if not in_topic[i]:
            scattered.append(
                (u.unit.strip() if u.unit and u.unit.strip() else UNASSIGNED, _local_day(u.at), u.reason)
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


def analyse_store(
    querylog: QueryLogStore,
    period: Period,
    *,
    sessions: sessionmaker[Session] | None = None,
    tickets: Iterable[TicketSummary] = (),
    text: TextProcessor | None = None,
    locate_unit: Callable[[str], str | None] | None = None,
    params: GapParams | None = None,
) -> GapAnalysis:
    """`analyse` over the query log (and the keyword routes when `sessions` is given)."""
    p = params or GapParams()
    start = period.start - dt.timedelta(weeks=p.trend_weeks)
    end = period.end + dt.timedelta(minutes=p.rephrase_minutes)
    routes = list_routes(sessions) if sessions is not None else []
    return analyse(
        querylog.rows(start, end),
        period,
        tickets=tickets,
        routes=routes,
        text=text,
        locate_unit=locate_unit,
        params=p,
    )
