"""How unanswered questions group into topics: this module owns the keywords of a question (jieba
words minus question words and particles), its similarity features (IDF-weighted character bigrams),
`TopicIndex` (identical normalised texts deduplicated, online centroid clustering over an inverted
feature index plus one merge pass, so 100,000 questions never meet an O(n^2) comparison;
deterministic for the same input; then topics of one intent merged by the matcher's similarity,
`knowledge.gaps.intents`), the key terms of a topic and its label (a readable question of the topic).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from knowledge.gaps.intents import IntentIndex, merge_topics
from knowledge.gaps.selection import GapParams
from knowledge.matcher import Matcher
from knowledge.text import TextProcessor, is_cjk

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

    def merge_same_intent(self, reference: Matcher | None = None) -> None:
        """Fold topics the matcher scores as one intent (`GapParams.same_intent`) into the larger
        when their subjects (keywords without generic terms) score so too; the larger topic keeps
        its leading phrasing, topic order stays by first appearance."""
        if len(self.clusters) < 2:
            return
        index = IntentIndex(self.text, (d.norm for d in self.docs), reference)
        phrasings = [
            [self.docs[i].norm for i in sorted(c.docs, key=lambda i: (-len(self.docs[i].members), i))]
            for c in self.clusters
        ]
        doc_of = {d.norm: d for d in self.docs}

        def same_subject(a: str, b: str) -> bool:
            # the subjects (keywords without generic actions and aspects) must be alike as well
            sa, sb = (" ".join(k for k in doc_of[x].keywords if k not in GENERIC_TERMS) for x in (a, b))
            return not sa or not sb or index.score(sa, sb) >= self.params.same_intent

        sizes = [c.size for c in self.clusters]
        homes = merge_topics(index, phrasings, sizes, self.params.same_intent, same_subject)
        if all(h == k for k, h in enumerate(homes)):
            return
        old = self.clusters
        self.clusters = []
        self._postings = defaultdict(list)
        new_of: dict[int, int] = {}
        for k in range(len(old)):
            home = homes[k]
            if home not in new_of:
                new_of[home] = len(self.clusters)
                self.clusters.append(_Cluster())
        for k in sorted(range(len(old)), key=lambda k: (k != homes[k], k)):  # homes' docs first
            for doc_id in old[k].docs:
                self._add(new_of[homes[k]], doc_id)

    def assign(self, raw: str) -> int | None:
        """The topic a text from outside the clustered set (earlier weeks, tickets) belongs to."""
        norm = self.normalise(raw)
        if not norm:
            return None
        feats = features_of(keywords_of(self.text, norm))
        return self._best_cluster(norm, feats, self._vec_norm(feats))


def topic_label(
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


_COURTESY = (
    "您好，请问",
    "你好，请问",
    "我想问一下",
    "我想问下",
    "想咨询一下",
    "麻烦问一下",
    "麻烦问下",
    "请教一下",
    "咨询一下",
    "问一下",
    "请问",
    "您好",
    "你好",
)
_TRAILING = "？?。.!！，,~、 　"
LABEL_CHARS = 30


def readable_label(forms: Sequence[str]) -> str:
    """A topic's label: its most asked question as written (masked), without greetings, courtesy
    phrases and trailing punctuation, cut at a readable length. Never a list of fragments."""
    for form in forms:
        t = form.strip()
        changed = True
        while changed:
            changed = False
            for c in _COURTESY:
                if t.startswith(c) and len(t) > len(c) + 1:
                    t = t[len(c) :].lstrip("，,。 　:：")
                    changed = True
        for tail in ("，谢谢", ",谢谢", "谢谢"):
            if t.endswith(tail) and len(t) > len(tail) + 1:
                t = t[: -len(tail)]
        t = t.rstrip(_TRAILING)
        if t.endswith("呢") and len(t) > 2:
            t = t[:-1]
        if t:
            return t if len(t) <= LABEL_CHARS else t[: LABEL_CHARS - 1] + "…"
    return ""
