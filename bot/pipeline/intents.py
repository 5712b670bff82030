"""What the inbox carries out for the Dialogue's intents: open a ticket (or spool it while the
database is away: the degraded path is decided here, for the inbox, and nowhere else), look up a
ticket's status, rate an answer, rate a staff reply, follow or drop a subscription topic. Every lookup checks that the ticket or the
query-log row belongs to the user who asks; the results are `Outcome`s the Dialogue renders.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot import subscribe_talk
from bot.conversation import UNREACHABLE, user_ref_hash
from bot.outcomes import Outcome
from bot.spool import Spool
from handoff.tickets import TicketService
from knowledge.db import MAX_ID
from knowledge.errors import InvalidInput, NotFound, PolicybotError
from knowledge.subscriptions import SubscriptionStore
from knowledge.usage import QueryLogStore

log = logging.getLogger("policybot.intents")


class Intents:
    def __init__(
        self,
        *,
        tickets: TicketService,
        querylog: QueryLogStore,
        spool: Spool | None,
        secret: bytes,
        subscriptions: SubscriptionStore | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.tickets = tickets
        self.querylog = querylog
        self.spool = spool
        self.secret = secret

    def carry_out(self, channel: str, user_id: str, intent: dict[str, Any], *, degraded: bool) -> Outcome:
        kind = intent.get("kind")
        if kind == "open_ticket":
            return self.open_ticket(channel, user_id, intent, degraded=degraded)
        if degraded:
            return Outcome("unavailable", no=intent.get("no"))
        try:
            if kind == "ticket_status":
                return self._status(channel, user_id, str(intent.get("no") or ""))
            if kind == "rate_answer":
                return self._rate_answer(channel, user_id, intent)
            if kind == "rate_ticket":
                return self.rate_ticket(channel, user_id, intent.get("no"), str(intent["rating"]), intent)
            if kind == "supplement":
                return self._supplement(
                    channel, user_id, str(intent.get("no") or ""), str(intent.get("text") or "")
                )
            if kind == "subscription" and self.subscriptions is not None:
                action, tag = str(intent.get("action") or ""), str(intent.get("tag") or "")
                return subscribe_talk.carry_out(self.subscriptions, channel, user_id, action, tag)
        except UNREACHABLE as exc:
            self._failed(exc)
            return Outcome("unavailable", no=intent.get("no"))
        raise ValueError(f"unknown intent {kind!r}")

    # --- tickets ----------------------------------------------------------------------------------
    def open_ticket(self, channel: str, user_id: str, data: dict[str, Any], *, degraded: bool) -> Outcome:
        if degraded and self.spool is not None:
            return self._queue(channel, user_id, data)
        try:
            ticket = self._open(channel, user_id, data)
        except UNREACHABLE as exc:
            if self.spool is None:
                raise
            self._failed(exc)
            return self._queue(channel, user_id, data)
        except PolicybotError as exc:
            log.warning("ticket refused: %s", exc.log_message)
            return Outcome("error", text=exc.user_message)
        log_id = data.get("log_id")
        if log_id:
            try:
                self.querylog.link_ticket(int(log_id), ticket.no)
            except SQLAlchemyError:
                log.exception("could not link query log %s to ticket", log_id)
        return Outcome("opened", ticket=ticket, no=ticket.no)

    def _open(self, channel: str, user_id: str, data: dict[str, Any]) -> Any:
        return self.tickets.open(
            question=data["question"],
            channel=channel,
            user_ref=user_id,
            transcript=data.get("transcript") or [],
            department=data.get("department"),
            contact_name=data.get("name"),
            contact_phone=data.get("phone"),
            consent=bool(data.get("consent")),
            idempotency_key=data.get("idempotency_key"),
            matched=data.get("matched") or [],
            category=data.get("category") or "咨询",
            flag_reason=data.get("flag_reason"),
        )

    def _queue(self, channel: str, user_id: str, data: dict[str, Any]) -> Outcome:
        assert self.spool is not None
        self.spool.add(
            "ticket",
            {**{k: v for k, v in data.items() if k != "kind"}, "channel": channel, "user_id": user_id},
        )
        log.warning("ticket_spooled channel=%s (database unreachable)", channel)
        return Outcome("queued")

    def replay_ticket(self, data: dict[str, Any]) -> Any:
        """Open a ticket spooled during an outage (idempotent by its key): the TicketView."""
        return self._open(data["channel"], data["user_id"], data)

    def _own(self, channel: str, user_id: str, no: str) -> Any:
        try:
            t = self.tickets.get(no.strip().upper())
        except (NotFound, InvalidInput):
            return None
        if t is None or t.channel != channel or t.user_ref != user_id:
            return None
        return t

    def _status(self, channel: str, user_id: str, no: str) -> Outcome:
        t = self._own(channel, user_id, no)
        return Outcome("found", ticket=t, no=t.no) if t is not None else Outcome("missing", no=no)

    def rate_ticket(
        self, channel: str, user_id: str, no: str | None, rating: str, state: dict[str, Any] | None = None
    ) -> Outcome:
        """The citizen's rating of a staff reply where it arrived; without a number, the latest
        replied and unrated ticket among the conversation's own (`state["tickets"]`)."""
        if no is None:
            candidates = [
                self._own(channel, user_id, n) for n in reversed((state or {}).get("tickets") or [])
            ]
            replied = [t for t in candidates if t is not None and t.reply and t.rating is None]
            if not replied:
                return Outcome("nothing")
            no = replied[0].no
        t = self._own(channel, user_id, no)
        if t is None:
            return Outcome("missing", no=no)
        if t.rating is not None:
            return Outcome("already", ticket=t, no=t.no)
        if t.status not in ("已答复", "已办结"):
            return Outcome("not_yet", ticket=t, no=t.no)
        try:
            return Outcome("rated", ticket=self.tickets.rate(t.no, rating=rating), no=t.no)
        except InvalidInput:  # rated meanwhile (the service allows one rating)
            return Outcome("already", ticket=t, no=t.no)

    def awaiting_supplement(self, channel: str, user_id: str, state: dict[str, Any]) -> str | None:
        """The user's ticket waiting for their 补正 (only users who left a ticket here are looked up)."""
        if not state.get("tickets"):
            return None
        try:
            return self.tickets.awaiting_supplement(channel, user_id)
        except UNREACHABLE as exc:  # the message is handled as usual (degraded mode takes over)
            self._failed(exc)
            return None

    def _supplement(self, channel: str, user_id: str, no: str, text: str) -> Outcome:
        """The user's message attached to their ticket as its 补正; the clock runs again."""
        try:
            t = self.tickets.supply(no, text=text, via="chat", channel=channel, user_ref=user_id)
        except PolicybotError as exc:
            log.warning("supplement refused: %s", exc.log_message)
            return Outcome("error", no=no, text=exc.user_message)
        return Outcome("supplied", ticket=t, no=t.no)

    # --- answers ----------------------------------------------------------------------------------
    def _rate_answer(self, channel: str, user_id: str, intent: dict[str, Any]) -> Outcome:
        try:
            log_id = int(intent["log_id"])
        except (KeyError, TypeError, ValueError):
            return Outcome("missing")
        if not 0 < log_id <= MAX_ID:  # no such row; larger ones overflow the driver
            return Outcome("missing")
        row = self.querylog.get(log_id)
        if row is None or row.user_ref != user_ref_hash(self.secret, channel, user_id):
            return Outcome("missing")
        return Outcome("rated", ok=self.querylog.rate(log_id, str(intent["rating"])))

    def _failed(self, exc: Exception) -> None:
        if self.spool is not None and isinstance(exc, SQLAlchemyError):
            self.spool.health.failed(exc)


__all__ = ["Intents"]
