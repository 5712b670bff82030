"""The policy store: this module owns the `policy` and `policy_passage` rows. `PolicyStore` imports a
policy text or file (.txt / .md, at most 5 MB; metadata given by the caller wins over what the parser
found in the header; a re-import of identical content changes nothing), lists and finds policies (by
id, 文号 in any bracket style, or title), sets their status, answers whether a policy and an FAQ that
rests on it is still current (the rule is in `knowledge.policies.validity`) and searches the passages
of current policies through its `knowledge.policies.index.PassageIndex`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import Conflict, InvalidInput, NotFound
from knowledge.models import Passage, Policy, bump_version, utcnow
from knowledge.policies import validity
from knowledge.policies.index import PassageIndex
from knowledge.policies.library import LibraryMethods
from knowledge.policies.parsing import (
    DEFAULT_MAX_PASSAGE_CHARS,
    ParsedPassage,
    decode_policy_bytes,
    normalise_doc_no,
    parse_cn_date,
    parse_policy_text,
    squash_cjk_spaces,
)
from knowledge.policies.records import PassageHit, PassageRecord, PolicyRecord, to_record
from knowledge.policies.tags import TagCatalogue
from knowledge.policies.validity import check_status
from knowledge.publications import policy_published

if TYPE_CHECKING:
    from knowledge.text import TextProcessor

log = logging.getLogger(__name__)

ALLOWED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown"})
MAX_FILE_BYTES = 5 * 1024 * 1024


class PolicyStore(LibraryMethods):
    """Policy documents and passages in the database, plus a lazily built passage search index.

    The index follows the store: at most every `refresh_seconds` the version stamp is read; when it
    moved and the policies changed (max seq, count), the index is rebuilt on the next search.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        refresh_seconds: float = 2.0,
        text: TextProcessor | None = None,
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
        clock: Callable[[], float] = time.monotonic,
        review_due: Callable[[dt.date], dt.date] | None = None,
    ) -> None:
        self.sessions = sessions
        self.review_due = review_due  # due dates of the FAQ review list (knowledge.policies.review)
        self.max_passage_chars = max_passage_chars
        self._passages = PassageIndex(sessions, refresh_seconds=refresh_seconds, text=text, clock=clock)

    @property
    def refresh_seconds(self) -> float:
        return self._passages.refresh_seconds

    @refresh_seconds.setter
    def refresh_seconds(self, value: float) -> None:
        self._passages.refresh_seconds = value

    # --- import ---------------------------------------------------------------------------------
    def import_text(
        self,
        text: str,
        *,
        id: str | None = None,
        title: str | None = None,
        doc_no: str | None = None,
        issuer: str | None = None,
        issued_on: dt.date | str | None = None,
        status: str = "有效",
        source_file: str | None = None,
        url: str | None = None,
        replace: bool = True,
        by: str = "system",
        tags: Iterable[str] | None = None,
        expires_on: dt.date | str | None = None,
        service_url: str | None = None,
    ) -> PolicyRecord:
        """Import (or with `replace`, re-import) one policy. Explicit metadata wins over the header;
        tags (checked against the tag catalogue), expiry date and service link not given keep their
        stored values on a re-import."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("政策文件内容为空，无法导入。", "policy text is empty")
        text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
        check_status(status)
        parsed = parse_policy_text(text, max_chars=self.max_passage_chars)
        meta = parsed.meta
        final_title = squash_cjk_spaces(title) if title and title.strip() else meta.title
        if not final_title:
            raise InvalidInput(
                "无法从文件中识别标题，请在导入时填写文件标题。",
                "policy title not given and not found in header",
            )
        final_title = final_title.strip("《》 ")
        final_doc_no = normalise_doc_no(doc_no) if doc_no and doc_no.strip() else meta.doc_no
        final_issuer = issuer.strip() if issuer and issuer.strip() else meta.issuer
        final_date = _as_date(issued_on) if issued_on else meta.issued_on
        if not parsed.passages:
            raise InvalidInput("文件中没有可引用的正文内容。", "policy text has no passages")
        policy_id = (id or "").strip() or _derive_id(final_title, final_doc_no)
        _check_fields(policy_id, final_title, final_doc_no, final_issuer, source_file, url)
        final_tags = None if tags is None else TagCatalogue(self.sessions).canonical(tags)
        final_expiry = _as_date(expires_on) if expires_on else None
        final_service = _clean_url(service_url) if service_url else None

        with transaction(self.sessions) as s:
            existing = s.get(Policy, policy_id)
            if existing is not None and not replace:
                raise Conflict(f"文件“{policy_id}”已存在。", f"policy {policy_id} exists and replace=False")
            _check_doc_no_free(s, final_doc_no, policy_id)
            if existing is not None:
                final_tags = list(existing.tags or []) if final_tags is None else final_tags
                final_expiry = existing.expires_on if expires_on is None else final_expiry
                final_service = existing.service_url if service_url is None else final_service
            extras = (final_tags, final_expiry, final_service)
            if (
                existing is not None
                and (list(existing.tags or []), existing.expires_on, existing.service_url) == extras
                and _same(
                    existing,
                    parsed.passages,
                    text,
                    final_title,
                    final_doc_no,
                    final_issuer,
                    final_date,
                    status,
                    source_file,
                    url,
                )
            ):
                return to_record(existing, len(parsed.passages))  # re-import of identical content: no change
            seq = bump_version(s)
            if existing is None:
                policy = Policy(id=policy_id)
                s.add(policy)
            else:
                policy = existing
                policy.passages.clear()
                s.flush()
            policy.title, policy.doc_no, policy.issuer = final_title, final_doc_no, final_issuer
            policy.issued_on, policy.status = final_date, status
            if status == "有效":
                policy.replaced_by = None  # in force again: nothing replaces it
            policy.source_file, policy.url, policy.text = source_file, url, text
            _set_tags(policy, final_tags)
            policy.expires_on, policy.service_url = final_expiry, final_service
            policy.seq, policy.imported_at, policy.updated_by = seq, utcnow(), by
            for i, p in enumerate(parsed.passages):
                policy.passages.append(Passage(ordinal=i, label=p.label, heading=p.heading, text=p.text))
            s.flush()
            if existing is None and status == "有效":  # first import: its subscribers are told
                policy_published(s, policy, parsed.passages[0].text)
            record = to_record(policy, len(parsed.passages))
        log.info("policy imported id=%s passages=%d by=%s seq=%d", policy_id, record.passage_count, by, seq)
        return record

    def import_file(self, path: str | Path, **meta: Any) -> PolicyRecord:
        """Import a .txt / .md file (UTF-8, UTF-8 with BOM or GB18030)."""
        p = Path(path)
        if p.suffix.lower() not in ALLOWED_SUFFIXES:
            raise InvalidInput(
                f"不支持的文件类型“{p.suffix or '无扩展名'}”，请上传 .txt 或 .md 文本文件。",
                f"policy file {p.name!r} has unsupported suffix",
            )
        try:
            size = p.stat().st_size
            if size > MAX_FILE_BYTES:
                raise InvalidInput(
                    f"文件过大（{size // 1024} KB），单个政策文件不能超过 {MAX_FILE_BYTES // 1024 // 1024} MB。",
                    f"policy file {p.name!r} too large: {size} bytes",
                )
            data = p.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"找不到文件“{p.name}”。", f"policy file {p} not found") from exc
        except IsADirectoryError as exc:
            raise InvalidInput(f"“{p.name}”是目录，不是文件。", f"policy path {p} is a directory") from exc
        text = decode_policy_bytes(data, f"文件“{p.name}”")
        meta.setdefault("source_file", p.name)
        return self.import_text(text, **meta)

    # --- reading --------------------------------------------------------------------------------
    def get(self, policy_id: str) -> PolicyRecord | None:
        with self.sessions() as s:
            p = s.get(Policy, policy_id)
            return None if p is None else to_record(p, self._count(s, p.id))

    def find(self, id_or_doc_no: str | None) -> PolicyRecord | None:
        """By id, then by 文号 (bracket style does not matter), then by exact title (《》 optional)."""
        key = (id_or_doc_no or "").strip()
        if not key:
            return None
        with self.sessions() as s:
            p = s.get(Policy, key) if len(key) <= 64 else None
            if p is None:
                p = s.execute(
                    select(Policy).where(Policy.doc_no == normalise_doc_no(key)).limit(1)
                ).scalar_one_or_none()
            if p is None:
                p = s.execute(
                    select(Policy).where(Policy.title == squash_cjk_spaces(key.strip("《》 "))).limit(1)
                ).scalar_one_or_none()
            return None if p is None else to_record(p, self._count(s, p.id))

    def cached(self, id_or_doc_no: str | None) -> PolicyRecord | None:
        """Like `find`, from the in-memory copy that follows the store (at most `refresh_seconds`
        old): the answering hot path uses it instead of querying the database per hit."""
        key = (id_or_doc_no or "").strip()
        if not key:
            return None
        records = self._passages.current().records
        return (
            records.get(key)
            or records.get(normalise_doc_no(key))
            or records.get(squash_cjk_spaces(key.strip("《》 ")))
        )

    def list(self) -> list[PolicyRecord]:
        with self.sessions() as s:
            counts: dict[str, int] = {
                str(pid): int(n)
                for pid, n in s.execute(select(Passage.policy_id, func.count()).group_by(Passage.policy_id))
            }
            rows = s.execute(select(Policy).order_by(Policy.issued_on.desc(), Policy.id)).scalars().all()
            return [to_record(p, int(counts.get(p.id, 0))) for p in rows]

    def passages(self, policy_id: str) -> builtins.list[PassageRecord]:
        with self.sessions() as s:
            if s.get(Policy, policy_id) is None:
                raise NotFound(f"找不到文件“{policy_id}”。", f"policy {policy_id} not found")
            rows = (
                s.execute(select(Passage).where(Passage.policy_id == policy_id).order_by(Passage.ordinal))
                .scalars()
                .all()
            )
            return [PassageRecord(r.id, r.policy_id, r.ordinal, r.label, r.heading, r.text) for r in rows]

    @staticmethod
    def _count(s: Session, policy_id: str) -> int:
        return int(s.execute(select(func.count()).where(Passage.policy_id == policy_id)).scalar_one())

    # --- status ---------------------------------------------------------------------------------
    def is_current(self, id_or_doc_no: str) -> bool | None:
        """None for an unknown policy, False for 失效/废止, True for 有效/已修订."""
        rec = self.find(id_or_doc_no)
        return None if rec is None else rec.is_current

    def faq_validity(
        self,
        source_policy: str | None,
        valid_from: dt.date | dt.datetime | None,
        valid_to: dt.date | dt.datetime | None,
        today: dt.date,
    ) -> tuple[bool, str | None]:
        """Whether an FAQ may be given as a current answer, with the Chinese reason when not: the
        rule of `knowledge.policies.validity.faq_validity`, with the source policy's status read from
        the in-memory copy (an unknown source policy counts as none)."""
        rec = self.cached(source_policy) if source_policy else None
        return validity.faq_validity(None if rec is None else rec.status, valid_from, valid_to, today)

    # --- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int = 3, *, include_inactive: bool = False) -> builtins.list[PassageHit]:
        """Best passages for a question; passages of 失效/废止 policies only with include_inactive."""
        return self._passages.search(query, k, include_inactive=include_inactive)

    def best_passage(self, policy_id: str, query: str, *, article: str | None = None) -> PassageHit | None:
        """The passage of one policy that best answers a question (see PassageIndex.best_in)."""
        return self._passages.best_in(policy_id, query, article=article)

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the passage index now if the policies changed; True when it was rebuilt."""
        return self._passages.refresh(force=force)


def _same(
    p: Policy,
    passages: Sequence[ParsedPassage],
    text: str,
    title: str,
    doc_no: str | None,
    issuer: str | None,
    issued_on: dt.date | None,
    status: str,
    source_file: str | None,
    url: str | None,
) -> bool:
    if (p.text, p.title, p.doc_no, p.issuer, p.issued_on, p.status, p.source_file, p.url) != (
        text,
        title,
        doc_no,
        issuer,
        issued_on,
        status,
        source_file,
        url,
    ):
        return False
    return [(x.label, x.heading, x.text) for x in p.passages] == [
        (x.label, x.heading, x.text) for x in passages
    ]


def _clean_url(value: str) -> str:
    from knowledge.faqs.fields import FieldError, clean_url

    try:
        return clean_url(value) or ""
    except FieldError as exc:
        raise InvalidInput(exc.zh, exc.en) from None


def _check_len(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{name}过长（最多{limit}个字符）。", f"policy {name} longer than {limit}")


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    parsed = parse_cn_date(s)
    if parsed is not None:
        return parsed
    try:
        return dt.date.fromisoformat(s.replace("/", "-").replace(".", "-"))
    except ValueError as exc:
        raise InvalidInput(
            f"成文日期“{s}”无法识别，请写成 2023-03-31 或 2023年3月31日。", f"bad issued_on {s!r}"
        ) from exc


def _derive_id(title: str, doc_no: str | None) -> str:
    digest = hashlib.sha1(f"{doc_no or ''}|{title}".encode()).hexdigest()[:12]
    return f"policy-{digest}"


def _check_doc_no_free(s: Session, doc_no: str | None, policy_id: str) -> None:
    """A 文号 belongs to one document: refuse it when another policy holds it."""
    if not doc_no:
        return
    other = s.execute(
        select(Policy.id).where(Policy.doc_no == doc_no, Policy.id != policy_id)
    ).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            f"文号{doc_no}已被文件“{other}”使用。", f"doc_no {doc_no} already used by policy {other}"
        )


def _set_tags(policy: Policy, tags: list[str] | None) -> None:
    """The tag list and its searchable text form (|a|b|)."""
    policy.tags = list(tags or [])
    policy.tags_text = "".join(f"|{t}" for t in policy.tags) + "|" if policy.tags else ""


def _check_fields(
    policy_id: str,
    title: str,
    doc_no: str | None,
    issuer: str | None,
    source_file: str | None,
    url: str | None,
) -> None:
    """The id's characters and every text field's length, before anything is written."""
    if len(policy_id) > 64 or not re.fullmatch(r"[\w\-.〔〕()（）]+", policy_id):
        raise InvalidInput(
            "文件编号只能包含字母、数字、汉字、短横线和点，且不超过64个字符。",
            f"bad policy id {policy_id!r}",
        )
    _check_len("标题", title, 2000)
    _check_len("文号", doc_no, 100)
    _check_len("发文机关", issuer, 200)
    _check_len("来源文件", source_file, 300)
    _check_len("链接", url, 500)
