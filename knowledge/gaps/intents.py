"""Same intent, by the FAQ matcher's own similarity: this module owns `IntentIndex`, which finds the
questions nearest to a question among the distinct questions of the report (a
`knowledge.matcher.Matcher` with each question as an entry) and scores a pair with the reference
matcher's `similarity` (the knowledge base's matcher, handed in by the caller, so that words are
weighed by the store's IDF: a subject every question of a topic shares still counts), and
`merge_topics`, which folds topics whose questions meet at `GapParams.same_intent` or more (by
default the score at which the matcher answers with an FAQ) into one, smaller into larger."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from knowledge.matcher import IndexEntry, Matcher
from knowledge.text import TextProcessor

MAX_BACKGROUND = 20_000  # distinct questions indexed as the background of pair scores
PROBES_PER_TOPIC = 3  # most asked phrasings of a topic searched when merging


class IntentIndex:
    """Distinct normalised questions as matcher entries (id = the normalised text); pairs scored by
    `reference.similarity` (without a reference, by this index's own, which knows only the
    questions: a subject they all share then weighs little)."""

    def __init__(self, text: TextProcessor, norms: Iterable[str], reference: Matcher | None = None) -> None:
        self.text = text
        self.matcher = Matcher(text)
        seen: dict[str, None] = {}
        for n in norms:
            if n:
                seen.setdefault(n, None)
        self.matcher.build(IndexEntry(n, n) for n in seen)
        self.reference = reference if reference is not None else self.matcher

    def score(self, a: str, b: str) -> float:
        return self.reference.similarity(a, b)

    def nearest_others(self, norm: str, k: int = 10) -> list[tuple[str, float]]:
        """Other indexed questions nearest to `norm` (candidates by this index), best first by the
        reference score."""
        cands = [h.faq_id for h in self.matcher.search_without(norm, k, norm)]
        scored = [(c, self.score(norm, c)) for c in cands]
        return sorted(scored, key=lambda cs: (-cs[1], cs[0]))


def background(norms: Sequence[str], must: Iterable[str]) -> list[str]:
    """The questions to index for pair scores: `must` plus an even sample of the rest, capped."""
    needed = list(dict.fromkeys(n for n in must if n))
    rest = [n for n in dict.fromkeys(norms) if n and n not in set(needed)]
    room = max(0, MAX_BACKGROUND - len(needed))
    step = max(1, -(-len(rest) // room)) if room else len(rest) + 1
    return needed + rest[::step][:room]


def merge_topics(
    index: IntentIndex,
    topics: Sequence[Sequence[str]],
    sizes: Sequence[int],
    threshold: float,
    compatible: Callable[[str, str], bool] | None = None,
) -> list[int]:
    """For topics given as their phrasings (normalised, most asked first) and sizes, the topic each
    one is merged into (itself when none): a topic joins the larger topic holding a question that
    the matcher scores at `threshold` or more against one of its most asked phrasings. Smaller
    topics are placed first, each onto the final home of its target; deterministic. `compatible`
    (probe, matched question) can veto a pair (the report checks that the subjects agree, since the
    matcher's character overlap cannot tell 新生儿医保怎么办理 from 医保门诊报销怎么办理)."""
    owner: dict[str, int] = {}
    for t, phrasings in enumerate(topics):
        for n in phrasings:
            owner.setdefault(n, t)
    parent = list(range(len(topics)))

    def find(t: int) -> int:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def rank(t: int) -> tuple[int, int]:  # larger first, then earlier
        return (-sizes[t], t)

    for t in sorted(range(len(topics)), key=rank, reverse=True):
        best, best_score = -1, threshold
        for probe in topics[t][:PROBES_PER_TOPIC]:
            for other, score in index.nearest_others(probe):
                o = owner.get(other)
                if o is None or o == t or score < best_score - 1e-12:
                    continue
                if compatible is not None and not compatible(probe, other):
                    continue
                if rank(o) < rank(t) and (best < 0 or score > best_score + 1e-12 or rank(o) < rank(best)):
                    best, best_score = o, score
        if best >= 0:
            parent[find(t)] = find(best)
    return [find(t) for t in range(len(topics))]
