"""Tables owned by the knowledge package: FAQs with versions, synonym sets, the store version stamp,
policy documents with their passages, and the query log.

`kb_state.version` is a counter bumped by every change to FAQs, synonyms or policies; each changed
row records the counter value in its `seq`. A process compares the stamp to what its index was built
from, and `seq > since` gives the changes to sync.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from knowledge.db import Base

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")  # Beijing time: no DST since 1991


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def china_today() -> dt.date:
    """Today's date in Beijing: the day FAQ validity dates and other calendar rules are judged on."""
    return dt.datetime.now(CHINA_TZ).date()


def to_db_time(at: dt.datetime) -> dt.datetime:
    """Naive UTC, as stored: an aware value is converted, a naive one is taken as UTC already."""
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


class KbState(Base):
    __tablename__ = "kb_state"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Faq(Base):
    __tablename__ = "faq"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    similar: Mapped[list[str]] = mapped_column(JSON, default=list)  # 相似问法
    answer: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)  # 政策标签
    unit: Mapped[str | None] = mapped_column(String(200))  # 制文单位 (drafting unit)
    source_policy: Mapped[str | None] = mapped_column(String(200))  # 文号 or policy id
    source_article: Mapped[str | None] = mapped_column(String(100))  # e.g. 二(二)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="published", index=True)
    service_url: Mapped[str | None] = mapped_column(String(500))  # 办事链接 (一网通办 item)
    seq: Mapped[int] = mapped_column(Integer, default=0, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="system")
    # Maintained by knowledge.faqs: the normalised standard question (duplicate detection on import),
    # lowercased searchable text, and tags as "|a|b|" (JSON columns cannot be searched portably).
    question_key: Mapped[str] = mapped_column(String(500), default="", index=True)
    search_text: Mapped[str] = mapped_column(Text, default="")
    tags_text: Mapped[str] = mapped_column(Text, default="")


class FaqVersion(Base):
    __tablename__ = "faq_version"
    __table_args__ = (UniqueConstraint("faq_id", "version_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(String(64), index=True)
    version_no: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # create / edit / retire / import / restore
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(100))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> [old, new]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")  # e.g. the reason given for retiring


class SynonymSet(Base):
    __tablename__ = "synonym_set"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    terms: Mapped[list[str]] = mapped_column(JSON)  # first term is the canonical one
    seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="system")


class Policy(Base):
    __tablename__ = "policy"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    doc_no: Mapped[str | None] = mapped_column(String(100), index=True)  # 文号
    issuer: Mapped[str | None] = mapped_column(String(200))  # 发文机关 / drafting unit
    issued_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="有效")  # 有效 / 已修订 / 失效 / 废止
    source_file: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(500))
    service_url: Mapped[str | None] = mapped_column(String(500))  # 办事链接 of the matter it governs
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)  # canonical catalogue tags
    tags_text: Mapped[str] = mapped_column(Text, default="")  # "|a|b|", searchable
    expires_on: Mapped[dt.date | None] = mapped_column(Date)  # 有效期至
    replaced_by: Mapped[str | None] = mapped_column(String(64))  # id of the policy that replaced it
    text: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="system")
    passages: Mapped[list[Passage]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", order_by="Passage.ordinal"
    )


class Passage(Base):
    __tablename__ = "policy_passage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))  # citable article path, e.g. 二(二) or 二.4
    heading: Mapped[str] = mapped_column(Text, default="")  # enclosing headings, for context
    text: Mapped[str] = mapped_column(Text)
    policy: Mapped[Policy] = relationship(back_populates="passages")


class QueryLog(Base):
    __tablename__ = "query_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_ref: Mapped[str] = mapped_column(String(80))  # pseudonymous (hashed) user reference
    session_id: Mapped[str | None] = mapped_column(String(80), index=True)
    text: Mapped[str] = mapped_column(Text)  # masked by the caller
    outcome: Mapped[str] = mapped_column(String(20), index=True)  # answer/clarify/passage/none/handoff/...
    score: Mapped[float | None] = mapped_column(Float)
    faq_id: Mapped[str | None] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(200))
    rating: Mapped[str | None] = mapped_column(String(10))  # useful / useless
    ticket_no: Mapped[str | None] = mapped_column(String(40))


def bump_version(session: Session) -> int:
    """Increment the store's version stamp inside the caller's transaction and return it.

    The UPDATE comes first so that it takes the row lock (PostgreSQL) or the write lock (SQLite)
    before the value is read: concurrent writers always get distinct values.
    """
    updated = session.execute(
        update(KbState).where(KbState.key == "version").values(value=KbState.value + 1)
    ).rowcount  # type: ignore[attr-defined]
    if not updated:
        session.add(KbState(key="version", value=1))
        session.flush()
        return 1
    return int(session.execute(select(KbState.value).where(KbState.key == "version")).scalar_one())


def current_version(session: Session) -> int:
    value = session.execute(select(KbState.value).where(KbState.key == "version")).scalar_one_or_none()
    return int(value or 0)


class GapRoute(Base):
    """Admin-editable routing of unanswered-question topics: a topic whose questions mostly contain
    `keyword` (normalised text) goes to `unit` in the weekly gaps report (knowledge.gaps)."""

    __tablename__ = "gap_route"
    keyword: Mapped[str] = mapped_column(String(100), primary_key=True)
    unit: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(100), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PolicyRelation(Base):
    """A published relation between two policies: `other_id` is the 解读 / 配套 / 依据 / 修订 of
    `policy_id` (knowledge.policies.library)."""

    __tablename__ = "policy_relation"
    __table_args__ = (UniqueConstraint("policy_id", "kind", "other_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    other_id: Mapped[str] = mapped_column(ForeignKey("policy.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")


class CatalogueTag(Base):
    """One tag of the tag catalogue (标签目录) with its accepted synonyms (knowledge.policies.tags)."""

    __tablename__ = "tag_catalogue"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str | None] = mapped_column(String(50))  # 分类
    description: Mapped[str] = mapped_column(Text, default="")
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="system")


class FaqReview(Base):
    """An FAQ on its drafting unit's review list: its source policy was repealed, revised or expires
    soon (knowledge.policies.review). Open while `resolved_at` is empty."""

    __tablename__ = "faq_review"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(200), index=True)
    policy_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(12))  # 废止 / 失效 / 已修订 / 即将到期
    detail: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class LinkStatus(Base):
    """The health of one service link (FAQ 办事链接, policy links) as the link checker last saw it
    (knowledge.links): broken after two failed checks in a row, cleared by a good one."""

    __tablename__ = "link_status"
    url: Mapped[str] = mapped_column(String(500), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    fails: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed checks
    broken: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    final_url: Mapped[str | None] = mapped_column(String(500))
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ok_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    broken_since: Mapped[dt.datetime | None] = mapped_column(DateTime)


class PhrasingSuggestion(Base):
    """A candidate similar phrasing learned from use (knowledge.suggestions): a citizen's wording that
    reached `faq_id` (a clarify choice, a 有用 rating of a narrow answer, a ticket answered with the
    FAQ), masked, deduplicated by its normalised `key`, counted per source, and queued for review."""

    __tablename__ = "phrasing_suggestion"
    __table_args__ = (UniqueConstraint("faq_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(String(500))
    key: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer, default=0)
    sources: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # source -> times seen
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class SuggestionRef(Base):
    """What a suggestion was counted from (a query-log entry, a ticket), so nothing counts twice."""

    __tablename__ = "suggestion_ref"
    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(Integer, index=True)


class WelcomePin(Base):
    """The FAQs staff chose for the welcome message (大家都在问), in order."""

    __tablename__ = "welcome_pin"
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    faq_id: Mapped[str] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(100), default="system")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SensitiveWord(Base):
    """Admin-managed sensitive words (knowledge.sensitive): a citizen message containing one gets no
    automatic answer, and the words are masked where tickets are shown publicly."""

    __tablename__ = "sensitive_word"
    word: Mapped[str] = mapped_column(String(50), primary_key=True)  # normalised (knowledge.sensitive)
    added_by: Mapped[str] = mapped_column(String(100), default="system")
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Subscription(Base):
    """One subscriber's subscription to one catalogue tag (政策订阅, knowledge.subscriptions): a citizen
    on a chat channel (`channel` web / wechat / telegram, `user_id` the channel's id) or a relay
    partner by e-mail (`channel` email, `user_id` the address, `label` the partner's name)."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("channel", "user_id", "tag"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    tag: Mapped[str] = mapped_column(String(50), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
