"""The FAQ store: the one knowledge base every consultation window shares. It owns the FAQ entries
(standard question, similar phrasings, answer, policy tags, drafting unit, source policy and article,
validity dates, status draft / published / retired) and their full edit history (who, when, which
fields changed from what to what, plus a snapshot); the synonym sets (`synonyms`), import
(`importing`) and export (`exporting`) are its mixins. Every change bumps `kb_state.version` and
stamps the changed rows with it, so other processes notice changes by polling `version()` and fetch
them with `changes_since(seq)`.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.faqs.exporting import ExportMethods
from knowledge.faqs.fields import (
    FieldError,
    check_record,
    clean_block,
    clean_by,
    clean_field,
    clean_line,
    defaults,
    finalise,
    invalid_input,
    parse_status,
    search_norm,
)
from knowledge.faqs.importing import ImportMethods
from knowledge.faqs.records import EDITABLE, FaqRecord, VersionRecord, faq_dict, to_record
from knowledge.faqs.rows import field_diff, insert_values, last_versions, next_ids, row_values
from knowledge.faqs.synonyms import SynonymMethods
from knowledge.models import Faq, FaqVersion, bump_version, current_version, utcnow
from knowledge.policies.tags import TagCatalogue
from knowledge.policies.validity import faq_validity
from knowledge.publications import faq_published

if TYPE_CHECKING:
    from knowledge.faqs.conflicts import ConflictGuard
    from knowledge.matcher import IndexEntry

# Fields whose change can change what the published index answers.
INDEXED = frozenset({"question", "similar", "tags", "status", "valid_from", "valid_to"})
NEW_ENTRY = "(新问答)"  # the id a new entry is checked under before it has one


class FaqStore(SynonymMethods, ImportMethods, ExportMethods):
    """FAQ CRUD with versions, validity, synonym sets and file import/export over one sessionmaker.
    With a `guard` (knowledge.faqs.conflicts), every change that reaches the published index is
    checked first and refused when existing phrasings of other FAQs would be answered differently;
    `confirm_conflicts=True` (admins) writes it anyway and records the conflicts in the history."""

    def __init__(self, sessions: sessionmaker[Session], *, guard: ConflictGuard | None = None) -> None:
        self._sessions = sessions
        self.guard = guard

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def _guarded(self, changes: dict[str, IndexEntry | None], confirm: bool) -> str:
        """Run the guard over `changes`: raise PhrasingConflicts, or the history note of a confirmed
        publication with conflicts ("" when there are none or no guard)."""
        if self.guard is None or not changes:
            return ""
        from knowledge.faqs.conflicts import PhrasingConflicts, confirmation_note

        conflicts = self.guard.check(self, changes)
        if not conflicts:
            return ""
        if not confirm:
            raise PhrasingConflicts(conflicts)
        return confirmation_note(conflicts)

    def _check_edit(self, faq_id: str, cleaned: dict[str, Any], confirm: bool) -> tuple[int, str]:
        """The guard's verdict on editing one entry: (the seq it was checked at, the history note)."""
        from knowledge.faqs.conflicts import entry_of

        rec = self.require(faq_id)
        old = row_values(rec)
        new = dict(old, **cleaned)
        finalise(new)
        after = entry_of(new)
        if not (INDEXED & set(field_diff(old, new))) or (after is None and entry_of(old) is None):
            return rec.seq, ""  # nothing the published index sees changes (a draft stays a draft)
        return rec.seq, self._guarded({rec.id: after}, confirm)

    def check_change(self, faq_id: str | None, **changes: Any) -> builtins.list[Any]:
        """The conflicts (PhrasingConflict) that saving these field values would cause, without
        saving: for the console to show them next to a form or a suggestion."""
        if self.guard is None:
            return []
        from knowledge.faqs.conflicts import entry_of

        base = row_values(self.require(faq_id)) if faq_id else dict(defaults(), id=NEW_ENTRY)
        new = dict(base)
        for name, value in changes.items():
            try:
                new[name] = clean_field(name, value)
            except FieldError as e:
                raise InvalidInput(e.zh, e.en) from None
        finalise(new)
        return list(self.guard.check(self, {str(new["id"]): entry_of(new)}))

    # --- reading ----------------------------------------------------------------------------------
    def get(self, faq_id: str) -> FaqRecord | None:
        with self._sessions() as s:
            row = s.get(Faq, str(faq_id))
            return to_record(row) if row is not None else None

    def require(self, faq_id: str) -> FaqRecord:
        rec = self.get(faq_id)
        if rec is None:
            raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
        return rec

    def list(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        unit: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        order: Literal["id", "recent"] = "id",
    ) -> builtins.list[FaqRecord]:
        """Entries matching every given filter: status, an exact tag, an exact drafting unit, and text
        (each whitespace-separated term must occur in the id, question, phrasings, answer, tags, unit
        or source, case-insensitively). `order="recent"` puts the latest changed first."""
        query = self._filtered(select(Faq), status=status, tag=tag, unit=unit, text=text)
        if order == "recent":
            query = query.order_by(Faq.seq.desc(), Faq.id)
        else:
            query = query.order_by(Faq.id)
        query = query.limit(max(0, int(limit))).offset(max(0, int(offset)))
        with self._sessions() as s:
            return [to_record(r) for r in s.scalars(query)]

    def count(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        unit: str | None = None,
        text: str | None = None,
    ) -> int:
        query = self._filtered(
            select(func.count()).select_from(Faq), status=status, tag=tag, unit=unit, text=text
        )
        with self._sessions() as s:
            return int(s.execute(query).scalar_one())

    def _filtered(
        self, query: Select[Any], *, status: str | None, tag: str | None, unit: str | None, text: str | None
    ) -> Select[Any]:
        conds: builtins.list[ColumnElement[bool]] = []
        if status is not None:
            try:
                conds.append(Faq.status == parse_status(status))
            except FieldError as e:
                raise InvalidInput(e.zh, e.en) from None
        if tag:
            conds.append(Faq.tags_text.contains(f"|{search_norm(clean_line(tag))}|", autoescape=True))
        if unit:
            conds.append(Faq.unit == clean_line(unit))
        if text:
            for term in search_norm(clean_line(text)).split():
                conds.append(Faq.search_text.contains(term, autoescape=True))
        return query.where(and_(*conds)) if conds else query

    def history(self, faq_id: str) -> builtins.list[VersionRecord]:
        """Every version of one entry, oldest first."""
        with self._sessions() as s:
            rows = s.scalars(
                select(FaqVersion).where(FaqVersion.faq_id == str(faq_id)).order_by(FaqVersion.version_no)
            ).all()
            if not rows and s.get(Faq, str(faq_id)) is None:
                raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
            return [
                VersionRecord(
                    v.version_no,
                    v.seq,
                    v.action,
                    v.at,
                    v.by,
                    dict(v.changes or {}),
                    v.note or "",
                    dict(v.snapshot or {}),
                )
                for v in rows
            ]

    def version(self) -> int:
        """The store's version stamp; it changes with every change to FAQs or synonyms."""
        with self._sessions() as s:
            return current_version(s)

    def changes_since(self, seq: int, limit: int = 1000) -> builtins.list[FaqRecord]:
        """Entries changed after stamp `seq` (retired ones included), oldest change first. Continue from
        the largest `seq` returned: a page never splits the rows of one change (an import stamps many
        rows with one value), so it may hold more than `limit` rows when one change is that large."""
        limit = max(1, int(limit))
        with self._sessions() as s:
            rows = s.scalars(
                select(Faq).where(Faq.seq > seq).order_by(Faq.seq, Faq.id).limit(limit + 1)
            ).all()
            if len(rows) <= limit:
                return [to_record(r) for r in rows]
            last = rows[limit].seq
            kept = [r for r in rows[:limit] if r.seq != last]
            if kept:
                return [to_record(r) for r in kept]
            whole = s.scalars(select(Faq).where(Faq.seq == last).order_by(Faq.id)).all()
            return [to_record(r) for r in whole]

    def index_entries(
        self, *, status: str | None = "published", valid_on: dt.date | None = None
    ) -> builtins.list[IndexEntry]:
        """What the matcher indexes: id, question, similar phrasings and tags of the entries with the
        given status (None: all), optionally only those valid on a date."""
        from knowledge.matcher import IndexEntry

        query = select(Faq.id, Faq.question, Faq.similar, Faq.tags, Faq.valid_from, Faq.valid_to).order_by(
            Faq.id
        )
        if status is not None:
            try:
                query = query.where(Faq.status == parse_status(status))
            except FieldError as e:
                raise InvalidInput(e.zh, e.en) from None
        out: builtins.list[IndexEntry] = []
        with self._sessions() as s:
            for fid, question, similar, tags, vf, vt in s.execute(query):
                if valid_on is not None and not faq_validity(None, vf, vt, valid_on)[0]:
                    continue
                out.append(IndexEntry(fid, question, tuple(similar or ()), tuple(tags or ())))
        return out

    # --- writing ----------------------------------------------------------------------------------
    def add(
        self,
        *,
        by: str,
        question: str,
        answer: str = "",
        similar: Iterable[str] | str = (),
        tags: Iterable[str] | str = (),
        unit: str | None = None,
        source_policy: str | None = None,
        source_article: str | None = None,
        valid_from: dt.date | str | None = None,
        valid_to: dt.date | str | None = None,
        status: str = "published",
        id: str | None = None,
        allow_empty_answer: bool = False,
        service_url: str | None = None,
        confirm_conflicts: bool = False,
    ) -> FaqRecord:
        """Create an entry (id generated as faq-000123 when not given). Conflict if the id exists;
        PhrasingConflicts if publishing it would take existing phrasings from other FAQs."""
        who = clean_by(by)
        raw: dict[str, Any] = {
            "id": id,
            "question": question,
            "answer": answer,
            "similar": list(similar) if not isinstance(similar, str) else similar,
            "tags": list(tags) if not isinstance(tags, str) else tags,
            "unit": unit,
            "source_policy": source_policy,
            "source_article": source_article,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "status": status,
            "service_url": service_url,
        }
        values = defaults()
        problems: builtins.list[tuple[str, str, str]] = []
        for name, value in raw.items():
            try:
                values[name] = clean_field(name, value)
            except FieldError as e:
                problems.append((name, e.zh, e.en))
        finalise(values)
        problems += check_record(values, allow_empty_answer=allow_empty_answer)
        if problems:
            raise invalid_input(problems)
        if values["tags"]:
            values["tags"] = TagCatalogue(self._sessions).canonical(values["tags"])
        from knowledge.faqs.conflicts import entry_of

        entry = entry_of(dict(values, id=values["id"] or NEW_ENTRY))
        note = self._guarded({entry.faq_id: entry}, confirm_conflicts) if entry is not None else ""
        for _attempt in range(3):
            try:
                with self._sessions() as s, s.begin():
                    seq = bump_version(s)
                    new_id: str
                    if values["id"] is None:
                        new_id = next_ids(s, 1)[0]
                    else:
                        new_id = values["id"]
                        if s.get(Faq, new_id) is not None:
                            raise Conflict(f"编号 {new_id} 已存在", f"FAQ id {new_id!r} already exists")
                    new_values = dict(values, id=new_id)
                    now = utcnow()
                    s.execute(insert(Faq), [insert_values(new_values, seq, who, now)])
                    s.execute(
                        insert(FaqVersion),
                        [
                            {
                                "faq_id": new_id,
                                "version_no": 1,
                                "seq": seq,
                                "action": "create",
                                "at": now,
                                "by": who,
                                "changes": field_diff({}, new_values),
                                "snapshot": faq_dict(new_values),
                                "note": note[:2000],
                            }
                        ],
                    )
                    if new_values["status"] == "published":
                        faq_published(s, new_values, 1)  # subscribers' messages in this transaction
                    row = s.get(Faq, new_id)
                    assert row is not None
                    return to_record(row)
            except IntegrityError:
                if values["id"] is not None:
                    raise Conflict(
                        f"编号 {values['id']} 已存在", f"FAQ id {values['id']!r} already exists"
                    ) from None
                # A concurrent writer took the generated id: try again with the next one.
        raise Conflict("编号分配冲突，请重试", "could not allocate an FAQ id after 3 attempts")

    def edit(
        self,
        faq_id: str,
        *,
        by: str,
        expected_seq: int | None = None,
        confirm_conflicts: bool = False,
        note: str = "",
        **changes: Any,
    ) -> FaqRecord:
        """Change fields of an entry. With `expected_seq` (the `seq` the editor saw), a concurrent change
        raises Conflict instead of being overwritten. An edit that changes nothing writes nothing."""
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes=changes,
            action="edit",
            note=note,
            confirm=confirm_conflicts,
        )

    def publish(
        self,
        faq_id: str,
        *,
        by: str,
        expected_seq: int | None = None,
        note: str = "",
        confirm_conflicts: bool = False,
    ) -> FaqRecord:
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes={"status": "published"},
            action="publish",
            note=note,
            confirm=confirm_conflicts,
        )

    def retire(
        self,
        faq_id: str,
        *,
        by: str,
        reason: str = "",
        expected_seq: int | None = None,
        confirm_conflicts: bool = False,
    ) -> FaqRecord:
        """Take an entry offline (kept, with its history; `changes_since` reports it)."""
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes={"status": "retired"},
            action="retire",
            note=reason,
            confirm=confirm_conflicts,
        )

    def restore(
        self,
        faq_id: str,
        version_no: int,
        *,
        by: str,
        expected_seq: int | None = None,
        confirm_conflicts: bool = False,
    ) -> FaqRecord:
        """Bring the content of an earlier version back (as a new version)."""
        versions = {v.version_no: v for v in self.history(faq_id)}
        old = versions.get(int(version_no))
        if old is None:
            raise NotFound(
                f"问答 {faq_id} 没有第 {version_no} 版", f"FAQ {faq_id!r} has no version {version_no}"
            )
        content = {k: v for k, v in old.snapshot.items() if k in EDITABLE}
        return self._change(
            faq_id,
            by=by,
            expected_seq=expected_seq,
            changes=content,
            action="restore",
            note=f"恢复到第 {version_no} 版",
            confirm=confirm_conflicts,
        )

    def _change(
        self,
        faq_id: str,
        *,
        by: str,
        expected_seq: int | None,
        changes: dict[str, Any],
        action: str,
        note: str = "",
        confirm: bool = False,
    ) -> FaqRecord:
        who = clean_by(by)
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise InvalidInput(f"不能修改的字段：{'、'.join(unknown)}", f"fields not editable: {unknown}")
        cleaned: dict[str, Any] = {}
        problems: builtins.list[tuple[str, str, str]] = []
        for name, value in changes.items():
            try:
                cleaned[name] = clean_field(name, value)
            except FieldError as e:
                problems.append((name, e.zh, e.en))
        if problems:
            raise invalid_input(problems)
        if cleaned.get("tags"):
            cleaned["tags"] = TagCatalogue(self._sessions).canonical(cleaned["tags"])
        checked_seq: int | None = None
        if self.guard is not None:
            # Checked before the write transaction (SQLite's is exclusive): the guard reads the store.
            checked_seq, extra = self._check_edit(faq_id, cleaned, confirm)
            note = "；".join(n for n in (note, extra) if n)
        with self._sessions() as s, s.begin():
            row = s.get(Faq, str(faq_id), with_for_update=True)
            if row is None:
                raise NotFound(f"未找到编号为 {faq_id} 的问答", f"FAQ {faq_id!r} not found")
            if checked_seq is not None and row.seq != checked_seq:
                raise Conflict(
                    f"问答 {faq_id} 已被 {row.updated_by} 修改，请刷新后重试",
                    f"FAQ {faq_id!r} changed during the conflict check",
                )
            if expected_seq is not None and row.seq != expected_seq:
                raise Conflict(
                    f"问答 {faq_id} 已被 {row.updated_by} 修改，请刷新后重试",
                    f"FAQ {faq_id!r} changed (seq {row.seq}, expected {expected_seq})",
                )
            old = row_values(row)
            old_seq = row.seq
            new = dict(old, **cleaned)
            finalise(new)
            problems = check_record(new)
            if problems:
                raise invalid_input(problems)
            diff = field_diff(old, new)
            if not diff:
                return to_record(row)
            seq = bump_version(s)
            now = utcnow()
            values = insert_values(new, seq, who, now)
            values.pop("created_at")
            result = s.execute(
                update(Faq)
                .where(Faq.id == row.id, Faq.seq == old_seq)
                .values(**{k: v for k, v in values.items() if k != "id"}),
                execution_options={"synchronize_session": False},
            )
            if getattr(result, "rowcount", 1) != 1:
                raise Conflict(
                    f"问答 {faq_id} 已被他人修改，请刷新后重试", f"FAQ {faq_id!r} changed concurrently"
                )
            version_no = last_versions(s, [row.id]).get(row.id, 0) + 1
            s.execute(
                insert(FaqVersion),
                [
                    {
                        "faq_id": row.id,
                        "version_no": version_no,
                        "seq": seq,
                        "action": action,
                        "at": now,
                        "by": who,
                        "changes": diff,
                        "snapshot": faq_dict(new),
                        "note": clean_block(note)[:2000],
                    }
                ],
            )
            if new["status"] == "published" and old["status"] != "published":
                faq_published(s, new, version_no)  # subscribers' messages in this transaction
            s.expire(row)
            fresh = s.get(Faq, str(faq_id))
            assert fresh is not None
            return to_record(fresh)
