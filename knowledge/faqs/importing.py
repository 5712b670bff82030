"""Import of FAQ files into the store (`FaqStore` inherits `import_file`): every row of the file is
cleaned and validated, ids and questions must be unique within the file, the rows are matched to
stored entries (by id, else by the normalised standard question) in bulk and each becomes a create,
an update (versioned, action "import"), a skip or an error. Any problem rejects the whole file with
every problem listed (`ImportFailed`) and nothing written; a dry run reports what would happen.
Otherwise all rows are written in one transaction under one version stamp.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.errors import Conflict, InvalidInput
from knowledge.faqs.fields import (
    FieldError,
    check_record,
    clean_by,
    clean_field,
    defaults,
    finalise,
    parse_date,
    question_key,
)
from knowledge.faqs.reading import ExcelSerial, RawRow, check_file, detect_format, read_rows
from knowledge.faqs.records import (
    FIELD_LABELS,
    FIELDS,
    ImportFailed,
    ImportItem,
    ImportReport,
    RowError,
    faq_dict,
)
from knowledge.faqs.rows import chunks, field_diff, insert_values, last_versions, next_ids, row_values
from knowledge.models import Faq, FaqVersion, bump_version, utcnow

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000


class _NothingToWrite(Exception):
    pass


class ImportMethods:
    """The import part of FaqStore (a mixin over its sessionmaker)."""

    _sessions: sessionmaker[Session]
    guard: Any

    _guarded: Callable[[dict[str, Any], bool], str]  # FaqStore's

    def _plan_conflicts(self, plan: _Plan) -> list[Any]:
        """What the guard says about the plan's changes to the published index (dry run)."""
        if self.guard is None:
            return []
        return list(self.guard.check(self, _plan_changes(plan)))

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        fmt: str | None = None,
        on_duplicate: Literal["update", "skip", "error"] = "update",
        dry_run: bool = False,
        by: str = "import",
        allow_empty_answer: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_rows: int = MAX_ROWS,
        expected_version: int | None = None,
        confirm_conflicts: bool = False,
    ) -> ImportReport:
        """Import FAQs from xlsx, csv or jsonl (by extension or `fmt`). Every row is validated first;
        any problem raises ImportFailed listing all of them and nothing is written. Otherwise all rows
        are written in one transaction (one version stamp). Existing entries are found by id, or by
        the normalised standard question for rows without an id; `on_duplicate` says whether to update
        them (versioned, action "import"), skip them or reject the file. Columns missing from the file
        keep their stored values on update. With `expected_version` (the store version a dry run was
        made at), a store that changed since raises Conflict and nothing is written: the write is
        then exactly what the dry run reported. Changes that would take existing phrasings from other
        FAQs (knowledge.faqs.conflicts) are listed by a dry run and refuse the import unless
        `confirm_conflicts`."""
        if on_duplicate not in ("update", "skip", "error"):
            raise InvalidInput(
                "on_duplicate 应为 update、skip 或 error", f"bad on_duplicate {on_duplicate!r}"
            )
        who = clean_by(by)
        p = Path(path)
        kind = detect_format(p, fmt)
        check_file(p, max_bytes)
        warnings: builtins.list[str] = []
        raw_rows = read_rows(p, kind, max_bytes, max_rows, warnings)
        parsed, errors = _validate_rows(raw_rows, tabular=kind in ("xlsx", "csv"))
        errors += _check_tags(self._sessions, parsed)
        report = ImportReport(fmt=kind, rows=len(parsed), dry_run=dry_run, warnings=warnings)
        if errors or dry_run:
            # Check the good rows against the store too, so that one run reports every problem.
            with self._sessions() as s:
                plan = _plan(s, parsed, on_duplicate, allow_empty_answer)
            errors = sorted(errors + plan.errors, key=lambda e: e.row or 0)
            if errors:
                raise ImportFailed(errors)
            plan.fill(report)
            report.conflicts = [c.describe() for c in self._plan_conflicts(plan)]
            return report
        note = ""
        if self.guard is not None:
            # Checked before the write transaction (SQLite's is exclusive): the guard reads the store.
            with self._sessions() as s:
                checked = _plan(s, parsed, on_duplicate, allow_empty_answer)
            if not checked.errors:
                note = self._guarded(_plan_changes(checked), confirm_conflicts)
        try:
            with self._sessions() as s, s.begin():
                seq = bump_version(s)
                if expected_version is not None and seq != expected_version + 1:
                    raise Conflict(
                        "问答库在试导入后已有改动，请重新上传文件试导入", "store changed since the dry run"
                    )
                plan = _plan(s, parsed, on_duplicate, allow_empty_answer)
                if plan.errors:
                    raise ImportFailed(plan.errors)
                plan.fill(report)
                if not plan.creates and not plan.updates:
                    raise _NothingToWrite  # roll back: the version stamp stays as it was
                plan.note = note  # written into every version of the import
                self._write_plan(s, plan, seq, who)
                plan.fill(report)
                report.version = seq
        except _NothingToWrite:
            pass
        return report

    def _write_plan(self, s: Session, plan: _Plan, seq: int, who: str) -> None:
        now = utcnow()
        missing = [c for c in plan.creates if c.values["id"] is None]
        for c, new_id in zip(missing, next_ids(s, len(missing)), strict=True):
            c.values["id"] = new_id
        # New entries start at version 1 (entries are never deleted, so no versions exist for them).
        last = last_versions(s, [u.values["id"] for u in plan.updates])
        _bulk_insert(s, Faq.__table__, [insert_values(c.values, seq, who, now) for c in plan.creates])
        if plan.updates:
            rows = []
            for u in plan.updates:
                v = insert_values(u.values, seq, who, now)
                v.pop("created_at")
                rows.append(v)
            _bulk_update_faq(s, rows)
        versions = [
            {
                "faq_id": c.values["id"],
                "version_no": last.get(c.values["id"], 0) + 1,
                "seq": seq,
                "action": "import",
                "at": now,
                "by": who,
                "changes": field_diff({}, c.values),
                "snapshot": faq_dict(c.values),
                "note": plan.note[:2000],
            }
            for c in plan.creates
        ] + [
            {
                "faq_id": u.values["id"],
                "version_no": last.get(u.values["id"], 0) + 1,
                "seq": seq,
                "action": "import",
                "at": now,
                "by": who,
                "changes": u.diff,
                "snapshot": faq_dict(u.values),
                "note": plan.note[:2000],
            }
            for u in plan.updates
        ]
        _bulk_insert(s, FaqVersion.__table__, versions)


@dataclass
class _Parsed:
    line: int
    values: dict[str, Any]  # cleaned values of the present fields
    labels: dict[str, str]


@dataclass
class _Create:
    line: int
    values: dict[str, Any]


@dataclass
class _Update:
    line: int
    values: dict[str, Any]
    diff: dict[str, list[Any]]


@dataclass
class _Plan:
    creates: list[_Create] = field(default_factory=list)
    updates: list[_Update] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    note: str = ""  # history note of every version (a confirmed conflict)

    def fill(self, report: ImportReport) -> None:
        report.created = len(self.creates)
        report.updated = len(self.updates)
        report.unchanged = len(self.unchanged)
        report.skipped = len(self.skipped)
        report.created_ids = [c.values["id"] for c in self.creates if c.values["id"] is not None]
        report.updated_ids = [u.values["id"] for u in self.updates]
        report.skipped_ids = list(self.skipped)
        items = [
            ImportItem(
                c.line,
                "create",
                c.values["id"],
                c.values["question"],
                c.values["unit"],
                None,
                field_diff({}, c.values),
            )
            for c in self.creates
        ] + [
            ImportItem(
                u.line,
                "update",
                u.values["id"],
                u.values["question"],
                u.values["unit"],
                u.diff["unit"][0] if "unit" in u.diff else u.values["unit"],
                u.diff,
            )
            for u in self.updates
        ]
        report.items = sorted(items, key=lambda i: i.line)


def _plan_changes(plan: _Plan) -> dict[str, Any]:
    """The plan's changes to the published index: FAQ id -> its new entry (None: leaves it)."""
    from knowledge.faqs.conflicts import entry_of

    changes: dict[str, Any] = {}
    for c in plan.creates:
        key = c.values["id"] or f"(第{c.line}行)"
        changes[key] = entry_of(dict(c.values, id=key))
    for u in plan.updates:
        if {"question", "similar", "tags", "status", "valid_from", "valid_to"} & set(u.diff):
            changes[u.values["id"]] = entry_of(u.values)
    return changes


def _validate_rows(raw: list[RawRow], *, tabular: bool) -> tuple[list[_Parsed], list[RowError]]:
    """Clean every field of every row, then check ids and questions are unique within the file."""
    parsed: list[_Parsed] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    seen_questions: dict[str, int] = {}
    for r in raw:
        values: dict[str, Any] = {}
        bad = False
        for name, v in r.values.items():
            try:
                if isinstance(v, ExcelSerial):
                    values[name] = parse_date(v.value, excel_serial=True)
                else:
                    values[name] = clean_field(name, v, excel_serial=False)
            except FieldError as e:
                errors.append(RowError(r.line, r.labels.get(name, FIELD_LABELS[name]), e.zh, e.en))
                bad = True
        if "question" in values and not values["question"]:
            errors.append(RowError(r.line, r.labels.get("question"), "标准问题不能为空", "question is empty"))
            bad = True
        fid = values.get("id")
        if fid is not None:
            if fid in seen_ids:
                errors.append(
                    RowError(
                        r.line,
                        r.labels.get("id"),
                        f"编号 {fid} 与第{seen_ids[fid]}行重复",
                        f"duplicate id {fid!r} (also row {seen_ids[fid]})",
                    )
                )
                bad = True
            else:
                seen_ids[fid] = r.line
        elif values.get("question"):
            key = question_key(values["question"])
            if key in seen_questions:
                errors.append(
                    RowError(
                        r.line,
                        r.labels.get("question"),
                        f"标准问题与第{seen_questions[key]}行重复",
                        f"same question as row {seen_questions[key]}",
                    )
                )
                bad = True
            else:
                seen_questions[key] = r.line
        vf, vt = values.get("valid_from"), values.get("valid_to")
        if vf is not None and vt is not None and vt < vf:
            errors.append(
                RowError(
                    r.line,
                    r.labels.get("valid_to"),
                    f"失效日期 {vt} 早于生效日期 {vf}",
                    f"valid_to {vt} is before valid_from {vf}",
                )
            )
            bad = True
        if not bad:
            parsed.append(_Parsed(r.line, values, r.labels))
    return parsed, errors


def _check_tags(sessions: sessionmaker[Session], parsed: list[_Parsed]) -> list[RowError]:
    """Once a tag catalogue exists, every row's tags must be in it (stored as the canonical tag);
    the rows with a tag outside it are taken out of `parsed` and reported with their row number."""
    from knowledge.policies.tags import TagCatalogue, UnknownTags

    catalogue = TagCatalogue(sessions)
    table = catalogue.lookup()
    if not table:
        return []
    errors: list[RowError] = []
    kept: list[_Parsed] = []
    for p in parsed:
        if "tags" in p.values:
            try:
                p.values["tags"] = catalogue.canonical(p.values["tags"], lookup=table)
            except UnknownTags as exc:
                errors.append(
                    RowError(
                        p.line, p.labels.get("tags", FIELD_LABELS["tags"]), exc.user_message, str(exc.tags)
                    )
                )
                continue
        kept.append(p)
    parsed[:] = kept
    return errors


def _plan(s: Session, parsed: list[_Parsed], on_duplicate: str, allow_empty_answer: bool) -> _Plan:
    """Match rows to stored entries (bulk queries) and decide create / update / skip per row."""
    plan = _Plan()
    ids = [p.values["id"] for p in parsed if p.values.get("id") is not None]
    keys = list({question_key(p.values["question"]) for p in parsed if p.values.get("id") is None})
    # Plain rows, not entities: no identity-map overhead for large files.
    columns = select(*(getattr(Faq, name) for name in FIELDS), Faq.question_key)
    by_id: dict[str, Any] = {}
    for chunk in chunks(ids, 2000):
        by_id.update({r.id: r for r in s.execute(columns.where(Faq.id.in_(chunk)))})
    by_key: dict[str, list[Any]] = {}
    for chunk in chunks(keys, 2000):
        for r in s.execute(columns.where(Faq.question_key.in_(chunk)).order_by(Faq.id)):
            by_key.setdefault(r.question_key, []).append(r)
    claimed: dict[str, int] = {}
    for p in parsed:
        target: Any
        column = p.labels.get("id") if p.values.get("id") is not None else p.labels.get("question")
        if p.values.get("id") is not None:
            target = by_id.get(p.values["id"])
        else:
            matches = by_key.get(question_key(p.values["question"]), [])
            if len(matches) > 1:
                plan.errors.append(
                    RowError(
                        p.line,
                        column,
                        f"标准问题与多条已有问答相同（{'、'.join(m.id for m in matches[:5])}），请填写编号",
                        f"question matches several entries {[m.id for m in matches[:5]]}; give an id",
                    )
                )
                continue
            target = matches[0] if matches else None
        if target is None:
            values = defaults()
            values.update(p.values)
            finalise(values)
            problems = check_record(values, allow_empty_answer=allow_empty_answer)
            if problems:
                plan.errors.extend(
                    RowError(p.line, p.labels.get(f, FIELD_LABELS[f]), zh, en) for f, zh, en in problems
                )
                continue
            plan.creates.append(_Create(p.line, values))
            continue
        if target.id in claimed:
            plan.errors.append(
                RowError(
                    p.line,
                    column,
                    f"与第{claimed[target.id]}行指向同一条问答 {target.id}",
                    f"same stored entry {target.id!r} as row {claimed[target.id]}",
                )
            )
            continue
        claimed[target.id] = p.line
        if on_duplicate == "skip":
            plan.skipped.append(target.id)
            continue
        if on_duplicate == "error":
            plan.errors.append(
                RowError(p.line, column, f"问答已存在（编号 {target.id}）", f"entry exists: {target.id}")
            )
            continue
        old = row_values(target)
        new = dict(old)
        new.update({k: v for k, v in p.values.items() if k != "id"})
        finalise(new)
        problems = check_record(new, allow_empty_answer=allow_empty_answer)
        if problems:
            plan.errors.extend(
                RowError(p.line, p.labels.get(f, FIELD_LABELS[f]), zh, en) for f, zh, en in problems
            )
            continue
        diff = field_diff(old, new)
        if diff:
            plan.updates.append(_Update(p.line, new, diff))
        else:
            plan.unchanged.append(target.id)
    return plan


def _bulk_insert(s: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows with the driver's executemany (Core, no ORM bookkeeping): the fastest path
    measured on both backends (psycopg pipelines the statements)."""
    if rows:
        s.connection().execute(table.insert(), list(rows))


def _bulk_update_faq(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE faq rows by id with one executemany (every dict has the same keys, including "id")."""
    if not rows:
        return
    table = cast(Table, Faq.__table__)
    names = [k for k in rows[0] if k != "id"]
    stmt = (
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(f"_{name}") for name in names})
    )
    s.connection().execute(stmt, [{f"_{k}": v for k, v in row.items()} for row in rows])
