"""Subscriptions (政策订阅): who follows which catalogue tag.

`SubscriptionStore` owns the `subscription` rows: a subscriber is a (channel, user id) pair, a
citizen on web / wechat / telegram or a relay partner (association, park) by e-mail (channel
``email``, the address as id). A tag is resolved through the tag catalogue (synonyms accepted:
就业 = 就业创业); once a catalogue exists only its tags can be followed.
What is published is named by `knowledge.publications`; bot.subscriptions sends the messages.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import transaction
from knowledge.errors import InvalidInput
from knowledge.models import Subscription, utcnow
from knowledge.policies.tags import TagCatalogue, _key

CHANNELS = ("web", "wechat", "telegram", "email")


@dataclass(frozen=True)
class Subscriber:
    channel: str
    user_id: str
    label: str = ""
    tags: tuple[str, ...] = ()  # of the tags asked about, the ones this subscriber follows


@dataclass(frozen=True)
class SubscriptionRow:
    channel: str
    user_id: str
    tag: str
    label: str
    created_at: str

    def as_dict(self) -> dict[str, str]:
        return {
            "channel": self.channel,
            "user_id": self.user_id,
            "tag": self.tag,
            "label": self.label,
            "created_at": self.created_at,
        }


class UnknownTopic(InvalidInput):
    """A tag outside the catalogue; `topics` are the ones that can be followed."""

    def __init__(self, tag: str, topics: builtins.list[str]) -> None:
        listed = "、".join(topics) if topics else "（暂无）"
        super().__init__(
            f"没有“{tag}”这个订阅主题。可订阅的主题：{listed}", f"unknown subscription topic {tag!r}"
        )
        self.tag = tag
        self.topics = topics


class SubscriptionStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- topics ------------------------------------------------------------------------------------
    def topics(self) -> builtins.list[str]:
        """The catalogue's tags, in catalogue order: what can be followed."""
        return [t.name for t in TagCatalogue(self.sessions).list()]

    def resolve(self, tag: str) -> str:
        """The canonical catalogue tag of `tag` (a synonym accepted); UnknownTopic otherwise. Without a
        catalogue nothing can be followed (there are no topics to offer)."""
        wanted = " ".join((tag or "").split())
        lookup = TagCatalogue(self.sessions).lookup()
        canonical = lookup.get(_key(wanted)) if wanted else None
        if canonical is None:
            raise UnknownTopic(wanted, self.topics())
        return canonical

    # --- writing -----------------------------------------------------------------------------------
    def add(self, channel: str, user_id: str, tag: str, *, label: str = "") -> tuple[str, bool]:
        """Follow a tag: (canonical tag, whether it is new)."""
        _check(channel, user_id)
        canonical = self.resolve(tag)
        with transaction(self.sessions) as s:
            ins = (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(Subscription)
            result = s.execute(
                ins.values(
                    channel=channel,
                    user_id=user_id[:128],
                    tag=canonical,
                    label=label.strip()[:100],
                    created_at=utcnow(),
                ).on_conflict_do_nothing(index_elements=["channel", "user_id", "tag"])
            )
            return canonical, bool(getattr(result, "rowcount", 1))

    def remove(self, channel: str, user_id: str, tag: str) -> tuple[str, bool]:
        """Stop following a tag: (canonical tag, whether a subscription was removed)."""
        canonical = self.resolve(tag)
        with transaction(self.sessions) as s:
            n = _rowcount(
                s.execute(
                    delete(Subscription).where(
                        Subscription.channel == channel,
                        Subscription.user_id == user_id,
                        Subscription.tag == canonical,
                    )
                )
            )
        return canonical, n > 0

    def replace(self, channel: str, user_id: str, tags: Iterable[str]) -> builtins.list[str]:
        """Set a subscriber's tags to exactly `tags` (the widget's checkboxes)."""
        _check(channel, user_id)
        wanted = list(dict.fromkeys(self.resolve(t) for t in tags))
        with transaction(self.sessions) as s:
            s.execute(
                delete(Subscription).where(
                    Subscription.channel == channel,
                    Subscription.user_id == user_id,
                    Subscription.tag.not_in(wanted),
                )
            )
            have = set(self.tags_in(s, channel, user_id))
            now = utcnow()
            for tag in wanted:
                if tag not in have:
                    s.add(Subscription(channel=channel, user_id=user_id, tag=tag, label="", created_at=now))
        return wanted

    @staticmethod
    def erase(s: Session, channel: str, user_id: str) -> int:
        """Remove every subscription of a subscriber in the caller's transaction (privacy erase)."""
        return _rowcount(
            s.execute(
                delete(Subscription).where(Subscription.channel == channel, Subscription.user_id == user_id)
            )
        )

    def remove_subscriber(self, channel: str, user_id: str) -> int:
        with transaction(self.sessions) as s:
            return self.erase(s, channel, user_id)

    # --- reading -----------------------------------------------------------------------------------
    @staticmethod
    def tags_in(s: Session, channel: str, user_id: str) -> builtins.list[str]:
        return list(
            s.scalars(
                select(Subscription.tag)
                .where(Subscription.channel == channel, Subscription.user_id == user_id)
                .order_by(Subscription.id)
            )
        )

    def tags_of(self, channel: str, user_id: str) -> builtins.list[str]:
        with self.sessions() as s:
            return self.tags_in(s, channel, user_id)

    @staticmethod
    def subscribers_in(s: Session, tags: Iterable[str]) -> builtins.list[Subscriber]:
        """Each subscriber of any of `tags` once, in subscription order, with the ones of `tags` they
        follow (in the caller's session, one statement)."""
        wanted = list(tags)
        if not wanted:
            return []
        rows = s.execute(
            select(Subscription.channel, Subscription.user_id, Subscription.label, Subscription.tag)
            .where(Subscription.tag.in_(wanted))
            .order_by(Subscription.id)
        ).all()
        seen: dict[tuple[str, str], tuple[str, list[str]]] = {}
        for channel, user_id, label, tag in rows:
            seen.setdefault((channel, user_id), (label or "", []))[1].append(tag)
        return [
            Subscriber(c, u, label, tuple(t for t in wanted if t in theirs))
            for (c, u), (label, theirs) in seen.items()
        ]

    def list(self, *, channel: str | None = None) -> builtins.list[SubscriptionRow]:
        with self.sessions() as s:
            q = select(Subscription).order_by(Subscription.channel, Subscription.user_id, Subscription.id)
            if channel:
                q = q.where(Subscription.channel == channel)
            return [
                SubscriptionRow(
                    r.channel, r.user_id, r.tag, r.label or "", r.created_at.isoformat(timespec="seconds")
                )
                for r in s.scalars(q)
            ]

    def counts(self) -> builtins.list[tuple[str, int]]:
        """Subscribers per tag, most followed first (the console dashboard)."""
        with self.sessions() as s:
            rows = s.execute(
                select(Subscription.tag, func.count())
                .group_by(Subscription.tag)
                .order_by(func.count().desc(), Subscription.tag)
            ).all()
        return [(str(t), int(n)) for t, n in rows]

    @staticmethod
    def count_in(s: Session, channel: str, user_id: str) -> int:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Subscription)
                .where(Subscription.channel == channel, Subscription.user_id == user_id)
            )
            or 0
        )


def _check(channel: str, user_id: str) -> None:
    if channel not in CHANNELS:
        raise InvalidInput(f"不支持的订阅渠道：{channel}", f"subscription channel {channel!r}")
    if not (user_id or "").strip() or len(user_id) > 128:
        raise InvalidInput("订阅用户标识无效", f"bad subscriber id {user_id[:40]!r}")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "CHANNELS",
    "Subscriber",
    "SubscriptionRow",
    "SubscriptionStore",
    "UnknownTopic",
]
