"""The synonym sets of the FAQ store (`FaqStore` inherits these methods): list, add, update and delete
a set of terms whose first term is the canonical one, with the rules that a set has two to 100
distinct terms and that a term belongs to one set only. Every change bumps the store version, so the
matchers of other processes pick it up.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.faqs.fields import MAX_TAG_LEN, TAG_SPLIT, clean_by, clean_line, search_norm
from knowledge.faqs.records import SynonymSetRecord
from knowledge.models import SynonymSet, bump_version, utcnow

MAX_SYNONYM_TERMS = 100


class SynonymMethods:
    """The synonym-set part of FaqStore (a mixin over its sessionmaker)."""

    _sessions: sessionmaker[Session]
    guard: Any

    def _check_synonyms(
        self, change: Callable[[builtins.list[builtins.list[str]]], None], confirm: bool
    ) -> None:
        """Refuse a synonym change that takes existing phrasings from their FAQs (the guard of
        knowledge.faqs.conflicts); `change` edits the current list of sets into the new one."""
        if self.guard is None:
            return
        from knowledge.faqs.conflicts import PhrasingConflicts

        sets = self.synonyms()
        change(sets)
        conflicts = self.guard.check_synonyms(self, sets)
        if conflicts and not confirm:
            raise PhrasingConflicts(conflicts)

    def synonym_sets(self) -> builtins.list[SynonymSetRecord]:
        with self._sessions() as s:
            return [
                SynonymSetRecord(r.id, tuple(r.terms or ()), r.seq, r.updated_at, r.updated_by)
                for r in s.scalars(select(SynonymSet).order_by(SynonymSet.id))
            ]

    def synonyms(self) -> builtins.list[builtins.list[str]]:
        """The synonym sets as term lists (first term canonical), in a stable order."""
        return [list(r.terms) for r in self.synonym_sets()]

    def add_synonyms(self, terms: Iterable[str], *, by: str, confirm_conflicts: bool = False) -> int:
        who = clean_by(by)
        clean = self._clean_terms(terms)
        self._check_synonyms(lambda sets: sets.append(clean), confirm_conflicts)
        with self._sessions() as s, s.begin():
            seq = bump_version(s)
            self._check_overlap(s, clean, None)
            row = SynonymSet(terms=clean, seq=seq, updated_at=utcnow(), updated_by=who)
            s.add(row)
            s.flush()
            return row.id

    def update_synonyms(
        self, set_id: int, terms: Iterable[str], *, by: str, confirm_conflicts: bool = False
    ) -> None:
        who = clean_by(by)
        clean = self._clean_terms(terms)
        self._check_synonyms(lambda sets: self._replace_set(sets, set_id, clean), confirm_conflicts)
        with self._sessions() as s, s.begin():
            row = s.get(SynonymSet, int(set_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到同义词组 {set_id}", f"synonym set {set_id} not found")
            if list(row.terms or []) == clean:
                return
            seq = bump_version(s)
            self._check_overlap(s, clean, row.id)
            row.terms = clean
            row.seq = seq
            row.updated_at = utcnow()
            row.updated_by = who

    def delete_synonyms(self, set_id: int, *, by: str, confirm_conflicts: bool = False) -> None:
        clean_by(by)
        self._check_synonyms(lambda sets: self._replace_set(sets, set_id, None), confirm_conflicts)
        with self._sessions() as s, s.begin():
            row = s.get(SynonymSet, int(set_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到同义词组 {set_id}", f"synonym set {set_id} not found")
            bump_version(s)
            s.delete(row)

    def _replace_set(
        self, sets: builtins.list[builtins.list[str]], set_id: int, terms: builtins.list[str] | None
    ) -> None:
        ids = [r.id for r in self.synonym_sets()]
        if int(set_id) in ids:
            i = ids.index(int(set_id))
            if terms is None:
                del sets[i]
            else:
                sets[i] = terms

    @staticmethod
    def _clean_terms(terms: Iterable[str]) -> builtins.list[str]:
        if isinstance(terms, str):
            terms = TAG_SPLIT.split(terms)
        out: builtins.list[str] = []
        seen: set[str] = set()
        for t in terms:
            c = clean_line(t)
            if len(c) > MAX_TAG_LEN:
                raise InvalidInput(
                    f"同义词过长（上限 {MAX_TAG_LEN} 字）：{c[:50]}", f"synonym longer than {MAX_TAG_LEN}"
                )
            key = search_norm(c)
            if c and key not in seen:
                seen.add(key)
                out.append(c)
        if len(out) < 2:
            raise InvalidInput(
                "同义词组至少需要两个不同的词", "a synonym set needs at least two distinct terms"
            )
        if len(out) > MAX_SYNONYM_TERMS:
            raise InvalidInput(
                f"同义词组最多 {MAX_SYNONYM_TERMS} 个词", f"more than {MAX_SYNONYM_TERMS} terms"
            )
        return out

    @staticmethod
    def _check_overlap(s: Session, terms: builtins.list[str], own_id: int | None) -> None:
        """A term may belong to one set only, or its canonical form would be ambiguous."""
        wanted = {search_norm(t): t for t in terms}
        for other in s.scalars(select(SynonymSet)):
            if other.id == own_id:
                continue
            clash = [wanted[k] for k in (search_norm(t) for t in other.terms or []) if k in wanted]
            if clash:
                raise Conflict(
                    f"“{clash[0]}”已在同义词组 {other.id}（{'、'.join(other.terms)}）中",
                    f"term {clash[0]!r} already belongs to synonym set {other.id}",
                )
