"""What a publication sends (政策订阅推送 and "your question now has an answer"), as outbox rows
written in the publication's own transaction (`install` registers `Publisher` on a sessionmaker
through `knowledge.subscriptions.on_publications`).

For each published policy or FAQ:
- ``answer_published`` (FAQ only, when it came from a weekly-report topic or a ticket, i.e. it
  carries the weekly report's or a ticket's tag): one row for each citizen who asked it in the last
  30 days: the ticket's own citizen and the query-log entries linked to the ticket, and entries whose
  text is one of the FAQ's phrasings (a topic draft's phrasings are the topic's questions). The query
  log holds only HMAC(secret, channel:user) references: they are matched against the conversations
  active since then. Keyed ``answer:{faq}:{subscriber}``: never twice per citizen and FAQ.
- ``sub_policy`` / ``sub_faq``: one row per subscriber of any of its tags (a subscriber of two of
  them gets one), keyed ``sub:{kind}:{id}:{version}:{subscriber}``, skipped for a citizen who got
  the answer notice for the same FAQ.

Every such row gets its `next_at` from `PushRules`: outside the quiet hours (Beijing time, held to
their end) and within the daily cap per subscriber (further rows wait for the next day). The drain
loop needs nothing special: it only takes rows whose `next_at` has come. Ticket replies do not pass
through here and are never held. After a privacy erasure nothing is found: the subscriptions, the
query-log entries and the conversation are gone and the ticket's citizen reference is erased.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import user_ref_hash
from bot.models import ChatSession, Delivery
from bot.notifier import ANSWER_PUBLISHED, SUB_FAQ, SUB_POLICY, SUBSCRIPTION_KINDS
from bot.pipeline.outbox import Outbox
from bot.settings import Settings
from handoff.models import Ticket
from handoff.retention import ERASED_REF
from handoff.tickets.promotion import PROMOTED_TAG
from handoff.weekly import REPORT_TAG
from knowledge.models import CHINA_TZ, QueryLog
from knowledge.publications import Publication, on_publications
from knowledge.subscriptions import Subscriber, SubscriptionStore

log = logging.getLogger("policybot.subscriptions")

ASKED_WITHIN = dt.timedelta(days=30)
CHAT_CHANNELS = ("web", "wechat", "telegram")
_TICKET_TAG = re.compile(r"^留言([A-Za-z]{2}\d{8}-\d{3,6})$")
_NOT_TEXT = re.compile(r"[\W_]+")


def parse_quiet_hours(value: str | None) -> tuple[int, int] | None:
    """``22-8`` -> (22, 8); empty (or equal ends) -> None (no quiet hours)."""
    value = (value or "").strip()
    if not value:
        return None
    start, _, end = value.partition("-")
    a, b = int(start), int(end)
    return None if a == b else (a, b)


@dataclass(frozen=True)
class PushRules:
    """When a subscription row may go out: `daily_cap` per subscriber and Beijing day, and no push
    in the `quiet` hours (start, end) Beijing time."""

    daily_cap: int = 5
    quiet: tuple[int, int] | None = (22, 8)

    def _quiet_end(self, local: dt.datetime) -> dt.datetime | None:
        if self.quiet is None:
            return None
        start, end = self.quiet
        h = local.hour
        inside = (h >= start or h < end) if start > end else (start <= h < end)
        if not inside:
            return None
        target = local.replace(hour=end, minute=0, second=0, microsecond=0)
        return target if target > local else target + dt.timedelta(days=1)

    def next_at(self, s: Session, channel: str, user_id: str, now: dt.datetime) -> dt.datetime:
        """The first allowed moment from `now` (naive UTC, as the outbox stores it)."""
        local = now.replace(tzinfo=dt.UTC).astimezone(CHINA_TZ)
        for _ in range(400):
            held = self._quiet_end(local)
            if held is not None:
                local = held
            day = local.replace(hour=0, minute=0, second=0, microsecond=0)
            if _scheduled_on(s, channel, user_id, day) < self.daily_cap:
                break
            local = day + dt.timedelta(days=1)
        return local.astimezone(dt.UTC).replace(tzinfo=None)


def _utc(local: dt.datetime) -> dt.datetime:
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def _scheduled_on(s: Session, channel: str, user_id: str, day: dt.datetime) -> int:
    """Subscription rows of a subscriber due on one Beijing day (`day` its local midnight)."""
    return int(
        s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.kind.in_(SUBSCRIPTION_KINDS),
                Delivery.channel == channel,
                Delivery.user_id == user_id,
                Delivery.next_at >= _utc(day),
                Delivery.next_at < _utc(day + dt.timedelta(days=1)),
            )
        )
        or 0
    )


def _who(channel: str, user_id: str) -> str:
    """A short, fixed-length name of a subscriber for delivery keys (an address can be long)."""
    return hashlib.sha256(f"{channel}:{user_id}".encode()).hexdigest()[:20]


def _flat(text: str) -> str:
    return _NOT_TEXT.sub("", text or "").casefold()


class Publisher:
    """The publication handler: outbox rows for subscribers and askers, in the caller's transaction."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        rules: PushRules,
        secret: str,
        base_url: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.rules = rules
        self.secret = secret  # of the query log's pseudonymous user references
        self.base_url = (base_url or "").rstrip("/")

    def __call__(self, s: Session, publications: list[Publication]) -> None:
        for pub in publications:
            told = self._answer_notices(s, pub) if pub.kind == "faq" else set()
            self._subscription_pushes(s, pub, told)

    # --- the rows ---------------------------------------------------------------------------------
    def _data(self, pub: Publication, tags: Iterable[str]) -> dict[str, object]:
        return {
            "item": pub.kind,
            "id": pub.id,
            "title": pub.title,
            "doc_no": pub.doc_no,
            "summary": pub.summary,
            "tags": list(tags),
            "url": f"{self.base_url}{pub.path}",
        }

    def _enqueue(self, s: Session, kind: str, who: Subscriber, data: dict[str, object], key: str) -> None:
        now = self.outbox.clock()
        self.outbox.enqueue(
            s,
            kind=kind,
            channel=who.channel,
            user_id=who.user_id,
            data=data,
            key=key,
            next_at=self.rules.next_at(s, who.channel, who.user_id, now),
        )

    def _subscription_pushes(self, s: Session, pub: Publication, told: set[tuple[str, str]]) -> None:
        kind = SUB_POLICY if pub.kind == "policy" else SUB_FAQ
        subscribers = SubscriptionStore.subscribers_in(s, pub.tags)
        for who in subscribers:
            if (who.channel, who.user_id) in told:
                continue  # the answer notice of this FAQ already reaches them: one message
            data = self._data(pub, who.tags)
            key = f"sub:{pub.kind}:{pub.id}:{pub.version}:{_who(who.channel, who.user_id)}"
            self._enqueue(s, kind, who, data, key)
        if subscribers:
            log.info("subscription_push kind=%s id=%s subscribers=%d", pub.kind, pub.id, len(subscribers))

    def _answer_notices(self, s: Session, pub: Publication) -> set[tuple[str, str]]:
        origins = set(pub.origin_tags)
        tickets = [m.group(1) for t in origins if (m := _TICKET_TAG.match(t))]
        if REPORT_TAG not in origins and PROMOTED_TAG not in origins and not tickets:
            return set()  # not an answer to something citizens asked
        askers = self.askers(s, pub, tickets)
        data = self._data(pub, [])
        data.update(answer=pub.answer, citation=pub.citation)
        for channel, user_id in sorted(askers):
            key = f"answer:{pub.id}:{_who(channel, user_id)}"
            self._enqueue(s, ANSWER_PUBLISHED, Subscriber(channel, user_id), data, key)
        if askers:
            log.info("answer_published faq=%s citizens=%d", pub.id, len(askers))
        return askers

    # --- who asked --------------------------------------------------------------------------------
    def askers(self, s: Session, pub: Publication, tickets: list[str]) -> set[tuple[str, str]]:
        """The (channel, user id) of each citizen who asked this FAQ's question in the last 30 days."""
        since = self.outbox.clock() - ASKED_WITHIN
        found: set[tuple[str, str]] = set()
        refs: set[tuple[str, str]] = set()
        if tickets:
            for channel, user_ref in s.execute(
                select(Ticket.channel, Ticket.user_ref).where(
                    Ticket.no.in_(tickets), Ticket.created_at >= since
                )
            ):
                if channel in CHAT_CHANNELS and user_ref and user_ref != ERASED_REF:
                    found.add((channel, user_ref))
            refs |= {
                (c, r)
                for c, r in s.execute(
                    select(QueryLog.channel, QueryLog.user_ref).where(
                        QueryLog.ticket_no.in_(tickets), QueryLog.at >= since
                    )
                )
            }
        phrasings = {_flat(p) for p in pub.phrasings if _flat(p)}
        if phrasings:
            for channel, user_ref, text in s.execute(
                select(QueryLog.channel, QueryLog.user_ref, QueryLog.text).where(QueryLog.at >= since)
            ):
                if _flat(text) in phrasings:
                    refs.add((channel, user_ref))
        if refs:
            found |= self._users_of(s, refs, since)
        return found

    def _users_of(self, s: Session, refs: set[tuple[str, str]], since: dt.datetime) -> set[tuple[str, str]]:
        """The channel users behind pseudonymous query-log references, among the conversations
        active since `since` (whoever asked then has written since)."""
        secret = self.secret
        out: set[tuple[str, str]] = set()
        for channel, user_id in s.execute(
            select(ChatSession.channel, ChatSession.user_id).where(
                ChatSession.channel.in_({c for c, _ in refs}), ChatSession.updated_at >= since
            )
        ):
            if (channel, user_ref_hash(secret, channel, user_id)) in refs:
                out.add((channel, user_id))
        return out


def rules_from(settings: Settings) -> PushRules:
    return PushRules(daily_cap=settings.push_daily_cap, quiet=parse_quiet_hours(settings.push_quiet_hours))


def install(settings: Settings, sessions: sessionmaker[Session], outbox: Outbox, secret: str) -> Publisher:
    """Let every publication through `sessions` queue its messages on `outbox`."""
    publisher = Publisher(
        outbox, rules=rules_from(settings), secret=secret, base_url=settings.public_base_url
    )
    on_publications(sessions, publisher)
    return publisher


__all__ = ["ASKED_WITHIN", "PushRules", "Publisher", "install", "parse_quiet_hours", "rules_from"]
