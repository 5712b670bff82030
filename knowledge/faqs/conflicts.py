"""The publish guard of the knowledge base: before any change reaches the published index (an FAQ
added, edited, published, retired or restored, an import, a synonym set changed), every existing
phrasing of every other FAQ that the change can affect is run through the index before and after the
change, and the change is refused (`PhrasingConflicts`) when one of them would now be answered by a
different FAQ or lose its direct answer to the changed one. `ConflictGuard` is the one home of this
rule; `FaqStore` calls it from every write path, so the console, the command line, imports and the
suggestion review all go through it. Admins may publish anyway with an explicit confirmation, which
the store writes into the FAQ's history.

Speed: the guard keeps one index of the published store (built once, then following the store's
version stamp like the answering index) and, for a change, searches only the phrasings of FAQs that
the changed entries' phrasings retrieve, so checking one edit on a 2,000-FAQ store costs a few dozen
searches rather than one per phrasing (bench/RESULTS.md).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knowledge.errors import PolicybotError
from knowledge.matcher import Decision, IndexEntry, Matcher, Thresholds, decide
from knowledge.models import china_today
from knowledge.text import TextProcessor

if TYPE_CHECKING:
    from knowledge.faqs.records import FaqRecord
    from knowledge.faqs.store import FaqStore

NEIGHBOURS = 30  # FAQs retrieved per changed phrasing whose phrasings are then checked
# A changed FAQ can change the decision on a phrasing only when it scores at least
# min(clarify, answer - margin) against it (it must be offered, or close the answer's lead);
# FAQs whose best phrasing scores this much below that bound are not checked.
NEIGHBOUR_SLACK = 0.05
SHOWN = 20  # conflicts listed in the error message
CACHE_LIMIT = 200_000  # texts whose features the guard's text processor keeps


class _CachedText(TextProcessor):
    """The guard's text processor: a check re-indexes the same phrasings many times (each held out
    in turn), so normalised texts and their features are kept until the word list changes."""

    def __init__(self, synonyms: Sequence[Sequence[str]] = ()) -> None:
        super().__init__(synonyms)
        self._norms: dict[tuple[str, int | None], str] = {}
        self._feats: dict[str, dict[str, str]] = {}
        self._cached_version = self.version

    def _fresh(self) -> None:
        if self._cached_version != self.version or len(self._feats) > CACHE_LIMIT:
            self._norms.clear()
            self._feats.clear()
            self._cached_version = self.version

    def normalise(self, s: str, max_chars: int | None = None) -> str:
        self._fresh()
        key = (s, max_chars)
        found = self._norms.get(key)
        if found is None:
            found = self._norms[key] = super().normalise(s, max_chars)
        return found

    def features(self, norm: str) -> dict[str, str]:
        self._fresh()
        found = self._feats.get(norm)
        if found is None:
            found = self._feats[norm] = super().features(norm)
        return found


@dataclass(frozen=True)
class PhrasingConflict:
    """One phrasing of FAQ `owner_id` that the change would take away from it: after the change it
    would be answered by `now_id` (kind "answer") or would no longer be answered directly because
    `now_id` comes too close (kind "ambiguous")."""

    phrasing: str
    owner_id: str
    now_id: str
    kind: str  # answer | ambiguous
    score: float

    def describe(self) -> str:
        if self.kind == "answer":
            return f"「{self.phrasing}」（属于 {self.owner_id}）将改由 {self.now_id} 答复"
        return f"「{self.phrasing}」（属于 {self.owner_id}）将不再直接答复（与 {self.now_id} 相近）"

    def as_dict(self) -> dict[str, Any]:
        return {
            "phrasing": self.phrasing,
            "owner_id": self.owner_id,
            "now_id": self.now_id,
            "kind": self.kind,
            "score": round(self.score, 4),
        }


class PhrasingConflicts(PolicybotError):
    """A change refused because existing phrasings of other FAQs would be answered differently."""

    def __init__(self, conflicts: Sequence[PhrasingConflict]) -> None:
        self.conflicts = tuple(conflicts)
        lines = [f"- {c.describe()}" for c in self.conflicts[:SHOWN]]
        more = len(self.conflicts) - len(lines)
        if more > 0:
            lines.append(f"……另有 {more} 条")
        body = "\n".join(lines)
        super().__init__(
            f"发布后以下已有问法会被错误答复，未保存：\n{body}\n请修改相似问法或标准问题后重试。",
            f"{len(self.conflicts)} phrasing conflicts: "
            + "; ".join(f"{c.owner_id}->{c.now_id}" for c in self.conflicts[:SHOWN]),
        )


def confirmation_note(conflicts: Sequence[PhrasingConflict]) -> str:
    """What the FAQ history records when an admin publishes despite conflicts."""
    shown = "；".join(c.describe() for c in conflicts[:SHOWN])
    return f"确认冲突后发布（{len(conflicts)} 条）：{shown}"


def entry_of(rec: FaqRecord | Mapping[str, Any], today: dt.date | None = None) -> IndexEntry | None:
    """The index entry of a record as the answering index would hold it, None when not answerable
    (not published, or outside its validity dates today)."""
    get = rec.get if isinstance(rec, Mapping) else (lambda name: getattr(rec, name))
    if get("status") != "published":
        return None
    day = today or china_today()
    vf, vt = get("valid_from"), get("valid_to")
    if (vf is not None and day < vf) or (vt is not None and day > vt):
        return None
    return IndexEntry(
        str(get("id")), str(get("question")), tuple(get("similar") or ()), tuple(get("tags") or ())
    )


class ConflictGuard:
    """Checks FAQ and synonym changes against the published store (see the module docstring).
    `thresholds` is the decision rule the bot answers with (a callable is read at every check, so a
    store whose thresholds are recalibrated is checked with the current ones)."""

    def __init__(self, thresholds: Thresholds | Callable[[], Thresholds] | None = None) -> None:
        self._thresholds = thresholds or Thresholds()
        self._lock = threading.Lock()
        self._text: TextProcessor = _CachedText()
        self._matcher = Matcher(self._text)
        self._seen = -1
        self._synonyms: list[list[str]] | None = None
        # held-out decisions in the published index as it is (valid until the store changes)
        self._before: dict[tuple[str, str], Decision] = {}
        self._before_t: Thresholds | None = None

    @property
    def thresholds(self) -> Thresholds:
        t = self._thresholds
        return t() if callable(t) else t

    # --- the index of the published store ----------------------------------------------------------
    def _follow(self, store: FaqStore) -> None:
        version = store.version()
        if version == self._seen:
            return
        self._before.clear()
        synonyms = store.synonyms()
        today = china_today()
        if self._seen < 0 or synonyms != self._synonyms:
            self._text = _CachedText(synonyms)
            entries = store.index_entries(valid_on=today)
            self._text.add_words(t for e in entries for t in e.tags if 2 <= len(t) <= 12)
            self._matcher = Matcher(self._text)
            self._matcher.build(entries)
            self._synonyms = synonyms
        else:
            for rec in store.changes_since(self._seen, limit=1_000_000):
                entry = entry_of(rec, today)
                if entry is None:
                    self._matcher.remove(rec.id)
                else:
                    self._text.add_words(t for t in entry.tags if 2 <= len(t) <= 12)
                    self._matcher.upsert(entry)
        self._seen = version

    # --- checks ---------------------------------------------------------------------------------------
    def check(self, store: FaqStore, changes: Mapping[str, IndexEntry | None]) -> list[PhrasingConflict]:
        """Conflicts of replacing the published entries of `changes` (FAQ id -> its new entry, None when
        it leaves the index) in the store's current published index."""
        with self._lock:
            self._follow(store)
            matcher = self._matcher
            index = {e.faq_id: e for e in matcher.entries()}
            before: dict[str, IndexEntry | None] = {fid: index.get(fid) for fid in changes}
            if all(before[fid] == new for fid, new in changes.items()):
                return []
            touched = [e for e in (*changes.values(), *before.values()) if e is not None]
            t = self.thresholds
            floor = min(t.clarify, t.answer - t.margin) - NEIGHBOUR_SLACK
            probes = _probes(matcher, index, touched, exclude=set(changes), floor=floor)
            if not probes:
                return []
            cached = self._before if t == self._before_t else {}
            missing = [p for p in probes if p not in cached]
            old = {**cached, **_held_out(matcher, index, missing, t)}
            self._before, self._before_t = old, t
            try:
                for fid, entry in changes.items():
                    if entry is None:
                        matcher.remove(fid)
                    else:
                        matcher.upsert(entry)
                new = _held_out(matcher, index, probes, t)
            finally:
                for fid, entry in before.items():
                    if entry is None:
                        matcher.remove(fid)
                    else:
                        matcher.upsert(entry)
            return _compare(probes, old, new, changed=set(changes))

    def check_synonyms(self, store: FaqStore, sets: Sequence[Sequence[str]]) -> list[PhrasingConflict]:
        """Conflicts of replacing the store's synonym sets by `sets`: the phrasings containing a term
        whose set changed are searched in the index as it is and in one built with the new sets."""
        with self._lock:
            self._follow(store)
            current = [list(s) for s in (self._synonyms or [])]
            wanted = [list(s) for s in sets]
            old_sets = {tuple(s) for s in current}
            new_sets = {tuple(s) for s in wanted}
            terms = {t for group in old_sets ^ new_sets for t in group}
            if not terms:
                return []
            entries = self._matcher.entries()
            probes = [
                (e.faq_id, p)
                for e in entries
                for p in dict.fromkeys((e.question, *e.similar))
                if any(term in p for term in terms)
            ]
            if not probes:
                return []
            t = self.thresholds
            index = {e.faq_id: e for e in entries}
            old = _held_out(self._matcher, index, probes, t)
            text = _CachedText(wanted)
            text.add_words(tag for e in entries for tag in e.tags if 2 <= len(tag) <= 12)
            other = Matcher(text)
            other.build(entries)
            new = _held_out(other, index, probes, t)
            return _compare(probes, old, new, changed=None)


def _probes(
    matcher: Matcher,
    index: Mapping[str, IndexEntry],
    touched: Iterable[IndexEntry],
    *,
    exclude: set[str],
    floor: float,
) -> list[tuple[str, str]]:
    """(owner id, phrasing) of the FAQs near any phrasing of the touched entries. Scores are
    symmetric (weighted overlap and edit ratio), so the FAQs a changed phrasing retrieves are the
    ones whose phrasings it can take over."""
    near: set[str] = set()
    for e in touched:
        for p in dict.fromkeys((e.question, *e.similar)):
            for h in matcher.search(p, k=NEIGHBOURS):
                if h.score >= floor and h.faq_id not in exclude:
                    near.add(h.faq_id)
    out: list[tuple[str, str]] = []
    for fid in sorted(near):
        entry = index.get(fid)
        if entry is not None:
            out.extend((fid, p) for p in dict.fromkeys((entry.question, *entry.similar)))
    return out


def _held_out(
    matcher: Matcher, index: Mapping[str, IndexEntry], probes: Sequence[tuple[str, str]], t: Thresholds
) -> dict[tuple[str, str], Decision]:
    """The decision for each (owner, phrasing) with that phrasing held out of its own FAQ (as a
    citizen asking it in other words would meet the index; an FAQ's own text always matches
    itself). An FAQ with one phrasing keeps it, so only a duplicate can take it."""
    out: dict[tuple[str, str], Decision] = {}
    by_owner: dict[str, list[str]] = {}
    for owner, text in probes:
        by_owner.setdefault(owner, []).append(text)
    for owner, texts in by_owner.items():
        entry = index.get(owner)
        phrasings = list(dict.fromkeys((entry.question, *entry.similar))) if entry else []
        if len(phrasings) < 2 or entry is None:
            for text in texts:
                out[(owner, text)] = decide(matcher.search(text, k=5), t)
            continue
        try:
            for text in texts:
                rest = [p for p in phrasings if p != text]
                matcher.upsert(IndexEntry(owner, rest[0], tuple(rest[1:]), entry.tags))
                out[(owner, text)] = decide(matcher.search(text, k=5), t)
        finally:
            matcher.upsert(entry)
    return out


def _compare(
    probes: Sequence[tuple[str, str]],
    old: Mapping[tuple[str, str], Decision],
    new: Mapping[tuple[str, str], Decision],
    *,
    changed: set[str] | None,
) -> list[PhrasingConflict]:
    """Phrasings newly answered by another FAQ, or newly losing their own direct answer (to a changed
    FAQ when `changed` is given)."""
    out: list[PhrasingConflict] = []
    for probe in probes:
        owner, text = probe
        a, b = old[probe], new[probe]
        was = a.hits[0].faq_id if a.kind == "answer" else None
        now = b.hits[0].faq_id if b.kind == "answer" else None
        if now is not None and now != owner and now != was:
            out.append(PhrasingConflict(text, owner, now, "answer", b.hits[0].score))
            continue
        if was == owner and now != owner:
            rivals = [h for h in b.hits if h.faq_id != owner and (changed is None or h.faq_id in changed)]
            if rivals:
                out.append(PhrasingConflict(text, owner, rivals[0].faq_id, "ambiguous", rivals[0].score))
    return out
