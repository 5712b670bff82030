"""The inbound pipeline: every channel hands each message to `Inbox.receive` and renders what comes back.

`receive(msg)` runs the same steps for every channel:
1. **claim**: a message that carries an id (WeChat's MsgId, a menu event's key) is claimed in
   `inbound_message` under (channel, ``sender:id``), so a retry of it (WeChat resends after 5 s) gets
   the stored replies and no second query-log entry or ticket, and a stored reply only ever goes to
   the user it was made for; a signed request's (timestamp, nonce), given as ``meta["replay_key"]``,
   is stored with the claim and unique, so the same signature with another message is a replay;
2. **state**: the conversation state of (channel, user), one read;
3. **decide**: `Dialogue.decide(msg, state)`: the conversation's decision, no state storage of its own;
   what it needs done (open a ticket, rate, look up a status) comes back as an intent, carried out
   here (bot/pipeline/intents.py) before the write, its outcome rendered by the Dialogue;
4. **one write**: the query-log entry (if any), the new state and the claimed row marked done with its
   replies, in one short transaction;
5. the replies, for the channel to render.

Degraded mode is decided here and nowhere else: while the database is unreachable (bot/spool.py's
health), claims and states live in this process's memory, and the query-log entry and the dedup record
go to the local spool, written to the database when it is back. `claim_once` is the same dedup for
channels that need no stored reply (Telegram's update_id).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import (
    APOLOGY,
    AWAITING_SUPPLEMENT,
    PENDING_INTENT,
    PENDING_LOG,
    PLACEHOLDER,
    Dialogue,
    Incoming,
    Reply,
)
from bot.models import ChatSession, InboundMessage
from bot.outcomes import Outcome
from bot.pipeline.intents import Intents
from bot.spool import Spool
from handoff.tickets import TicketService
from knowledge.db import relax_commit, single_statement
from knowledge.models import utcnow
from knowledge.subscriptions import SubscriptionStore

log = logging.getLogger("policybot.inbox")

LOCAL_STATES = 10_000  # degraded mode: conversation states kept in this process's memory
NEW, RETRY, BUSY, REPLAY = "new", "retry", "busy", "replay"
_T = ChatSession.__table__
_I = InboundMessage.__table__
assert isinstance(_I, Table) and isinstance(_T, Table)


def _build_upsert(ins: Any) -> Any:
    """INSERT .. ON CONFLICT (channel, user_id) DO UPDATE: one statement, no race between two
    first messages of the same conversation on two workers (both dialects support it)."""
    stmt = ins(_T).values(
        channel=bindparam("b_channel"),
        user_id=bindparam("b_user"),
        state=bindparam("b_state"),
        updated_at=bindparam("b_at"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[_T.c.channel, _T.c.user_id],
        set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
    )


_UPSERT_STATE = {"postgresql": _build_upsert(pg_insert), "sqlite": _build_upsert(sqlite_insert)}  # built once
_FINISH = (
    update(_I)
    .where(_I.c.channel == bindparam("b_channel"), _I.c.msg_id == bindparam("b_key"))
    .values(status=bindparam("b_status"), reply=bindparam("b_reply"))
)


def dump_replies(replies: list[Reply]) -> str:
    return json.dumps([r.as_dict() for r in replies], ensure_ascii=False)


def load_replies(stored: str | None) -> list[Reply]:
    """Replies stored with a claim (a retry gets them back)."""
    if not stored:
        return []
    try:
        data = json.loads(stored)
    except ValueError:
        return [Reply("text", stored)]  # a row written before replies were stored as data
    fields = Reply.__dataclass_fields__
    return [Reply(**{k: v for k, v in d.items() if k in fields}) for d in data if isinstance(d, dict)]


@dataclass
class Received:
    """What `receive` gives back: the replies, and whether the message was new, a retry of one
    already answered (its stored replies), one still being answered (busy), or a replay (refuse)."""

    replies: list[Reply] = field(default_factory=list)
    status: str = NEW


class Inbox:
    """Claim, state, decide, one write; degraded mode. Thread-safe; one per process."""

    def __init__(
        self,
        *,
        dialogue: Dialogue,
        sessions: sessionmaker[Session],
        spool: Spool | None,
        tickets: TicketService,
        async_commit: bool = False,
    ) -> None:
        self.dialogue = dialogue
        self.tickets = tickets
        self.intents = Intents(
            tickets=tickets,
            querylog=dialogue.querylog,
            spool=spool,
            secret=dialogue.secret,
            subscriptions=SubscriptionStore(sessions),
        )
        self.sessions = sessions
        self.spool = spool
        self.async_commit = async_commit  # PostgreSQL: chat writes do not wait for the WAL flush
        # The statements of every message go through Core connections (no ORM session around them):
        # the reads in autocommit on PostgreSQL (no BEGIN/ROLLBACK round trips), the write in one
        # short transaction.
        self._engine: Engine = sessions.kw["bind"]
        self._dialect = self._engine.dialect.name
        self.reader = (
            self._engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else self._engine
        )
        # degraded mode: states of this process's conversations while the database is away
        self._local: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    # --- the pipeline -----------------------------------------------------------------------------
    def receive(self, msg: Incoming) -> Received:
        """One message in, its replies out; never raises (the apology instead)."""
        try:
            return self._receive(msg)
        except Exception:
            log.exception("inbox_failed channel=%s", msg.channel)
            return Received([Reply("text", APOLOGY)])

    def _receive(self, msg: Incoming) -> Received:
        key = dedup_key(msg)
        degraded = self._degraded()
        if key is not None and not degraded:
            try:
                status, stored = self._claim(msg.channel, key, str(msg.meta.get("replay_key") or "") or None)
            except SQLAlchemyError as exc:
                degraded = self._failed(exc)
                if not degraded:
                    raise
        if key is not None and degraded:
            status, stored = self._claim_locally(key, str(msg.meta.get("replay_key") or ""))
        if key is not None and status != NEW:
            log.info("inbound_%s channel=%s", status, msg.channel)
            return Received(load_replies(stored) if status == RETRY else [], status)
        state, degraded = self._state(msg.channel, msg.user_id, degraded)
        if msg.kind == "text" and not degraded:  # the next message of a user asked for 补正 is the 补正
            state[AWAITING_SUPPLEMENT] = self.intents.awaiting_supplement(msg.channel, msg.user_id, state)
        replies = self.dialogue.decide(msg, state)
        state.pop(AWAITING_SUPPLEMENT, None)  # a fact of this message only, never stored
        replies, _ = self._carry_out(msg.channel, msg.user_id, state, replies, degraded)
        degraded = degraded or self._degraded()
        if msg.kind == "end":
            self._end(msg.channel, msg.user_id, degraded)
            return Received(replies)
        if not degraded:
            try:
                self._write(msg.channel, msg.user_id, state, replies, key)
                return Received(replies)
            except SQLAlchemyError as exc:
                if not self._failed(exc):
                    raise
        self._spool(msg.channel, msg.user_id, state, replies, key)
        return Received(replies)

    # --- intents: what the decision needs done ------------------------------------------------------
    def _carry_out(
        self, channel: str, user_id: str, state: dict[str, Any], replies: list[Reply], degraded: bool
    ) -> tuple[list[Reply], Outcome | None]:
        """Carry out the decision's intent (if any) and put its replies where the placeholder is."""
        intent = state.pop(PENDING_INTENT, None)
        if intent is None:
            return replies, None
        result = self.intents.carry_out(
            channel, user_id, {**intent, "tickets": state.get("tickets")}, degraded=degraded
        )
        made = self.dialogue.outcome(channel, state, intent, result)
        out: list[Reply] = []
        for r in replies:
            out.extend(made if r.kind == PLACEHOLDER else [r])
        return out, result

    def _converse(self, channel: str, user_id: str, fn: Any) -> tuple[Reply, Outcome | None]:
        """A step outside a message (the widget's form and buttons): load the state, let `fn` decide
        on it, carry out, save; the first reply and the intent's outcome."""
        degraded = self._degraded()
        state, degraded = self._state(channel, user_id, degraded)
        replies, result = self._carry_out(channel, user_id, state, fn(state), degraded)
        self.save_state(channel, user_id, state)
        return replies[0], result

    def open_ticket(
        self,
        channel: str,
        user_id: str,
        *,
        question: str,
        name: str | None = None,
        phone: str | None = None,
        consent: bool = False,
        idempotency_key: str | None = None,
        category: str = "咨询",
    ) -> Reply:
        """The leave-a-message form: its reply (ticket_opened, ticket_queued, or text when refused).
        Raises PolicybotError with the Chinese text when the input cannot make a ticket."""
        reply, _ = self._converse(
            channel,
            user_id,
            lambda state: self.dialogue.ticket_intent(
                state,
                question=question,
                name=name,
                phone=phone,
                consent=consent,
                idempotency_key=idempotency_key,
                category=category,
            ),
        )
        return reply

    def rate_answer(self, channel: str, user_id: str, ref: str, rating: str) -> tuple[Reply, bool]:
        """A rating button under an answer; 没用 gets the next-best FAQs and the form in one reply."""

        def decide(state: dict[str, Any]) -> list[Reply]:
            latest = str(state.get("last_log")) == str(ref)  # an older answer: no next-best to offer
            state[PENDING_INTENT] = {"kind": "rate_answer", "log_id": ref, "rating": rating, "latest": latest}
            return [Reply(PLACEHOLDER, "")]

        reply, result = self._converse(channel, user_id, decide)
        return reply, bool(result and result.ok)

    def rate_ticket(self, channel: str, user_id: str, no: str, rating: str) -> tuple[Reply, bool]:
        """The rating buttons under a pushed staff reply (满意 / 基本满意 / 不满意)."""

        def decide(state: dict[str, Any]) -> list[Reply]:
            state[PENDING_INTENT] = {"kind": "rate_ticket", "no": no, "rating": rating}
            return [Reply(PLACEHOLDER, "")]

        reply, result = self._converse(channel, user_id, decide)
        return reply, bool(result and result.status == "rated")

    def replay_ticket(self, data: dict[str, Any]) -> Reply:
        """A ticket spooled during an outage, opened now: the reply to push to the citizen."""
        ticket = self.intents.replay_ticket(data)
        return self.dialogue.outcome(
            data["channel"], {}, {"kind": "open_ticket", **data}, Outcome("opened", ticket=ticket)
        )[0]

    def mark(self, msg: Incoming, status: str) -> None:
        """Change a claimed message's status (WeChat: 'pushed' once a late answer went out by the
        customer-service API, so that a retry after it gets nothing twice)."""
        key = dedup_key(msg)
        if key is None:
            return
        with single_statement(self.sessions) as s:
            s.execute(
                update(InboundMessage)
                .where(InboundMessage.channel == msg.channel, InboundMessage.msg_id == key)
                .values(status=status)
            )

    def claim_once(self, channel: str, key: str) -> bool:
        """Dedup only (no stored reply): True the first time `key` is seen on `channel`."""
        if self._degraded():
            return self._claim_locally(key, "")[0] == NEW
        try:
            with single_statement(self.sessions) as s:
                s.execute(insert(InboundMessage).values(channel=channel, msg_id=key[:128], status="done"))
            return True
        except IntegrityError:
            return False

    # --- claims -----------------------------------------------------------------------------------
    def _claim(self, channel: str, key: str, replay_key: str | None) -> tuple[str, str | None]:
        try:
            with single_statement(self.sessions) as s:
                s.execute(
                    insert(InboundMessage).values(
                        channel=channel, msg_id=key, status="processing", replay_key=replay_key
                    )
                )
            return NEW, None
        except IntegrityError:
            pass
        with self.reader.connect() as conn:
            row = conn.execute(
                select(_I.c.status, _I.c.reply).where(_I.c.channel == channel, _I.c.msg_id == key)
            ).first()
        if row is None:  # the conflict was on the signed (timestamp, nonce) alone: another message
            log.warning(
                "inbound_replay_refused channel=%s: a signed request came back with another message", channel
            )
            return REPLAY, None
        return (RETRY, row.reply) if row.status == "done" else (BUSY, None)

    def _claim_locally(self, key: str, replay_key: str) -> tuple[str, str | None]:
        assert self.spool is not None
        if not self.spool.dedup.claim_pair(replay_key, key):
            return REPLAY, None
        new, stored = self.spool.dedup.claim(key)
        return (NEW, None) if new else ((RETRY, stored) if stored is not None else (BUSY, None))

    # --- degraded mode ----------------------------------------------------------------------------
    def _degraded(self) -> bool:
        return self.spool is not None and not self.spool.health.should_try()

    def _failed(self, exc: SQLAlchemyError) -> bool:
        """A database error: True when degraded mode takes over (a spool exists)."""
        if self.spool is None:
            return False
        self.spool.health.failed(exc)
        return True

    def _spool(
        self, channel: str, user_id: str, state: dict[str, Any], replies: list[Reply], key: str | None
    ) -> None:
        """Degraded mode: the query-log entry and the dedup record to the spool, the state in memory
        (a multi-step exchange such as leaving a message still works in this process; it is written
        with the next message after the outage); no rating ref."""
        assert self.spool is not None
        pending = state.pop(PENDING_LOG, None)
        for r in replies:
            if r.ref == PENDING_LOG:
                r.ref = None
        if pending is not None:
            self.spool.add_query_log({**pending, "at": utcnow()})
        if key is not None:
            stored = dump_replies(replies)
            self.spool.dedup.remember(key, stored)
            self.spool.add_inbound(channel, key, stored)
        self._keep_local(channel, user_id, state)

    def _keep_local(self, channel: str, user_id: str, state: dict[str, Any]) -> None:
        self._local[(channel, user_id)] = dict(state)
        self._local.move_to_end((channel, user_id))
        while len(self._local) > LOCAL_STATES:
            self._local.popitem(last=False)

    # --- state --------------------------------------------------------------------------------------
    def load_state(self, channel: str, user_id: str) -> dict[str, Any]:
        return self._state(channel, user_id, self._degraded())[0]

    def save_state(self, channel: str, user_id: str, state: dict[str, Any]) -> None:
        """The state alone (the web form's ticket); kept in memory while the database is away."""
        if not self._degraded():
            try:
                self._write(channel, user_id, state, [], None)
                return
            except SQLAlchemyError as exc:
                if not self._failed(exc):
                    raise
        self._keep_local(channel, user_id, state)

    def _state(self, channel: str, user_id: str, degraded: bool) -> tuple[dict[str, Any], bool]:
        """The session state and whether degraded mode holds (the read may find the database away)."""
        if not degraded:
            try:
                state = self._load(channel, user_id)
                if self.spool is not None:
                    self.spool.health.ok()
                # a conversation carried on in memory during the outage is newer than the stored one
                return self._local.pop((channel, user_id), None) or state, False
            except SQLAlchemyError as exc:
                if not self._failed(exc):
                    raise
        local = self._local.get((channel, user_id))
        if local is not None:
            return dict(local), True
        return self.dialogue.fresh_state(channel, user_id), True

    def _load(self, channel: str, user_id: str) -> dict[str, Any]:
        with self.reader.connect() as conn:
            row = conn.execute(
                select(_T.c.state, _T.c.updated_at).where(_T.c.channel == channel, _T.c.user_id == user_id)
            ).first()
        if row is None or utcnow() - row.updated_at > self.dialogue.session_ttl:
            fresh = self.dialogue.fresh_state(channel, user_id)
            fresh["tickets"] = row.state.get("tickets", []) if row else []
            return fresh
        return dict(row.state)

    def _write(
        self, channel: str, user_id: str, state: dict[str, Any], replies: list[Reply], key: str | None
    ) -> None:
        """The one write of a message: query-log entry, state, and the claim marked done.

        It starts with a write and never reads first, so on SQLite it takes the write lock at once
        (no read-to-write upgrade that fails under concurrency) and holds it for three statements.
        `state` and `replies` change only after the commit: when the write fails, the pending
        query-log entry is still in `state` for the caller to spool, and no reply carries the id of a
        row that was rolled back.
        """
        pending = state.get(PENDING_LOG)
        stored = {k: v for k, v in state.items() if k != PENDING_LOG}
        log_id: int | None = None
        with self._engine.begin() as conn:
            if self.async_commit:
                relax_commit(conn)
            if pending is not None:
                log_id = self.dialogue.querylog.record(session=conn, **pending)
                stored["last_log"] = log_id
            conn.execute(
                _UPSERT_STATE[self._dialect],
                {"b_channel": channel, "b_user": user_id, "b_state": stored, "b_at": utcnow()},
            )
            if key is not None:
                final = [_with_ref(r, log_id) for r in replies]
                conn.execute(
                    _FINISH,
                    {"b_channel": channel, "b_key": key, "b_status": "done", "b_reply": dump_replies(final)},
                )
        state.pop(PENDING_LOG, None)
        if log_id is not None:
            state["last_log"] = log_id
            for r in replies:
                if r.ref == PENDING_LOG:
                    r.ref = str(log_id)

    def _end(self, channel: str, user_id: str, degraded: bool) -> None:
        """The user left (WeChat unsubscribe): the conversation state is deleted."""
        self._local.pop((channel, user_id), None)
        if degraded:
            return
        try:
            with single_statement(self.sessions) as s:
                s.execute(
                    delete(ChatSession).where(ChatSession.channel == channel, ChatSession.user_id == user_id)
                )
        except SQLAlchemyError as exc:  # an idle state expires anyway
            self._failed(exc)
            log.warning("inbox_end_failed: %s", type(exc).__name__)


def dedup_key(msg: Incoming) -> str | None:
    """The claim key of a message: always led by the sender (message ids have collided across users)."""
    if not msg.msg_id:
        return None
    return f"{msg.user_id}:{msg.msg_id}"[:128]


def _with_ref(reply: Reply, log_id: int | None) -> Reply:
    if reply.ref != PENDING_LOG:
        return reply
    return Reply(**{**reply.as_dict(), "ref": str(log_id) if log_id is not None else None})


__all__ = ["BUSY", "NEW", "REPLAY", "RETRY", "Inbox", "Received", "dedup_key", "dump_replies", "load_replies"]
