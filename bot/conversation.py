"""Dialogue: the channel-free conversation. `Incoming -> list[Reply]`, nothing else crosses the
channel boundary.

`Dialogue.decide(msg, state)` is the decision for one message on the conversation's state: it answers
from the knowledge base (answer with source and a rating request; clarify with up to 3 numbered
suggestions; policy passages with citation; else the offer to leave a message), handles the keywords
人工/转人工/留言 (handoff), 查询 <编号> (ticket status), 有用/没用 (rating), 重新开始 (reset), the welcome
of a new conversation, and leaves the question's query-log entry (personal data masked) in the state
for the caller to write. It stores nothing itself: the inbound pipeline (bot/pipeline/inbox.py) loads
the state, calls `decide` and writes state and query log in one transaction. Handlers return replies;
channels render them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import texts
from bot.spool import Spool
from handoff.privacy import mask, normalise_phone
from handoff.tickets import TicketService
from knowledge.answer import AskResult, KnowledgeBase
from knowledge.db import MAX_ID
from knowledge.errors import NotFound, PolicybotError
from knowledge.models import utcnow
from knowledge.usage import QueryLogStore
from knowledge.welcome import WelcomePins

log = logging.getLogger("policybot.dialogue")

PENDING_LOG = "_pending_log"  # state key / reply ref placeholder until the log row is written
APOLOGY = "抱歉，系统暂时繁忙，您的问题没有处理成功，请稍后再试。"
TICKET_QUEUED = "您的留言已收到。系统正在维护，恢复后将生成留言编号并在这里通知您，请勿重复提交。"
# The database cannot be reached (as opposed to a refused statement): degraded mode takes over.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)
MAX_QUESTION = 500
HANDOFF_WORDS = {"人工", "转人工", "人工服务", "留言", "我要留言", "人工客服", "转人工客服"}
RESET_WORDS = {"重新开始", "重来", "重置"}
USEFUL_WORDS = {"有用", "有帮助", "满意"}
USELESS_WORDS = {"没用", "没有用", "无用", "不满意"}
CANCEL_WORDS = {"取消", "算了", "不留言"}
ANON_WORDS = {"匿名", "不留联系方式", "不需要回电", "匿名留言"}
STATUS_RE = re.compile(r"^(?:查询|查|进度|状态|/status)\s*[:：]?\s*([A-Za-z]{2}\d{8}-\d{3,6})\s*$", re.I)
TICKET_NO_RE = re.compile(r"^[A-Za-z]{2}\d{8}-\d{3,6}$")
CHOICE_RE = re.compile(r"^\s*([1-9])\s*[.、。]?\s*$")
CONSENT_TEXT = "您提供的姓名和手机号仅用于工作人员就本条留言与您联系，不会公开，办结后按规定期限删除。"


def user_ref_hash(secret: str | bytes, channel: str, user_id: str) -> str:
    """The pseudonymous user reference of the query log: an HMAC of channel and user id."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class Incoming:
    """One message from a citizen, as every channel translates it. `kind`: text (a question or a
    command), welcome (a new conversation: WeChat subscribe, Telegram /start, the widget opening),
    end (the user left: WeChat unsubscribe). `msg_id`: the channel's message id when it retries
    deliveries (deduplicated by the inbox); `meta["replay_key"]`: a signed request's nonce key."""

    channel: str
    user_id: str
    text: str
    msg_id: str | None = None
    received_at: dt.datetime = field(default_factory=utcnow)
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"


@dataclass
class Reply:
    kind: str  # answer | clarify | passage | handoff_offer | ticket_opened | status | text
    text: str
    suggestions: list[str] = field(default_factory=list)
    faq_id: str | None = None
    ticket_no: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    ref: str | None = None  # query-log id to rate this reply
    form: str | None = None  # "handoff": a channel with forms shows the leave-a-message form
    question: str | None = None  # question to prefill in that form
    notice: dict[str, str] | None = None  # fields for channels that send a notice instead (WeChat 订阅通知)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StateStore(Protocol):
    """Where conversation states live (the inbox: the database, or memory in degraded mode)."""

    def load_state(self, channel: str, user_id: str) -> dict[str, Any]: ...

    def save_state(self, channel: str, user_id: str, state: dict[str, Any]) -> None: ...


class Dialogue:
    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        tickets: TicketService,
        querylog: QueryLogStore,
        secret: str,
        welcome_text: str,
        session_ttl: dt.timedelta = dt.timedelta(minutes=30),
        form_channels: frozenset[str] = frozenset({"web"}),
        limit_days: int = 5,
        spool: Spool | None = None,
    ) -> None:
        self.kb = kb
        self.tickets = tickets
        self.querylog = querylog
        self.secret = secret.encode()
        self.welcome_text = welcome_text
        self.session_ttl = session_ttl
        self.form_channels = form_channels
        self.limit_days = limit_days
        self.spool = spool  # a ticket left while the database is away is spooled (bot/spool.py)
        self.states: StateStore | None = None  # set by the inbox (bot/pipeline/inbox.py)
        self._top: tuple[float, list[str]] = (0.0, [])

    # --- entry points ---------------------------------------------------------------------------
    def decide(self, msg: Incoming, state: dict[str, Any]) -> list[Reply]:
        """The replies to one message; `state` is changed in place (the caller stores it, and writes
        the query-log entry left under PENDING_LOG). Never raises: a domain error becomes its Chinese
        text, anything else the apology."""
        try:
            if msg.kind == "end":
                state.clear()
                return []
            replies = self._welcome(msg, state) if msg.kind == "welcome" else self._dispatch(msg, state)
        except PolicybotError as exc:
            log.warning("dialogue domain error: %s", exc.log_message)
            replies = [Reply("text", exc.user_message)]
        except UNREACHABLE:
            raise  # the inbox turns to degraded mode
        except Exception:
            log.exception("dialogue failed on channel %s", msg.channel)
            return [Reply("text", APOLOGY)]
        if msg.kind == "text":
            self._remember(state, "user", msg.text)
        for r in replies:
            self._remember(state, "bot", r.text)
        return replies

    def fresh_state(self, channel: str, user_id: str) -> dict[str, Any]:
        """The state of a new conversation."""
        return {"sid": self._user_ref(channel, user_id) + f"-{int(time.time())}", "tickets": []}

    def _welcome(self, msg: Incoming, state: dict[str, Any]) -> list[Reply]:
        tops = self.top_questions()
        text = self.welcome_text
        if tops and msg.channel not in self.form_channels:
            text += "\n大家都在问：\n" + "\n".join(f"{i}. {q}" for i, q in enumerate(tops, 1))
            state["choices"] = [["q", q] for q in tops]
        return [Reply("text", text, suggestions=tops)]

    def top_questions(self, n: int = 5) -> list[str]:
        """The welcome suggestions: the FAQs staff pinned (knowledge.welcome), else the most answered
        FAQs; always an FAQ's standard question, never a citizen's text. Cached a minute."""
        at, cached = self._top
        if time.monotonic() - at < 60:
            return cached[:n]
        out: list[str] = []
        try:
            pinned = WelcomePins(self.kb.sessions).get()
            ids = pinned or [faq_id for faq_id, _ in self.querylog.top_faqs(n)]
            for faq_id in ids:
                rec = self.kb.record(faq_id)  # published and indexed: retired pins are skipped
                if rec is not None and rec.question not in out:
                    out.append(rec.question)
        except SQLAlchemyError as exc:  # database unreachable: the last list, or none
            log.warning("top questions unavailable: %s", type(exc).__name__)
            return cached[:n]
        self._top = (time.monotonic(), out)
        return out[:n]

    # --- tickets ----------------------------------------------------------------------------------
    def open_ticket(
        self,
        *,
        channel: str,
        user_id: str,
        question: str,
        name: str | None = None,
        phone: str | None = None,
        consent: bool = False,
        idempotency_key: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> Reply:
        """Open a 政策留言 from the conversation; raises PolicybotError with a Chinese text if refused.

        While the database is unreachable the request is spooled (bot/spool.py) under an idempotency
        key, the citizen is told it was received, and `replay_ticket` opens it when the database is
        back (the ticket number is then pushed to the citizen's channel)."""
        question = (question or "").strip()
        if not question:
            raise PolicybotError("请填写您要咨询的问题。", "empty ticket question")
        if len(question) > MAX_QUESTION:
            raise PolicybotError(f"问题请控制在{MAX_QUESTION}字以内。", "ticket question too long")
        name = (name or "").strip() or None
        phone = (phone or "").strip() or None
        if (name or phone) and not consent:
            raise PolicybotError(
                "留下联系方式前，请先阅读并勾选同意个人信息使用说明。", "contact without consent"
            )
        if phone and normalise_phone(phone) is None:
            raise PolicybotError("请填写正确的11位手机号码。", "bad phone")
        own = state is None  # from the web form; from a text conversation, handle() saves the state
        if self.spool is not None and not self.spool.health.should_try():  # known to be away
            return self._queue_ticket(
                channel, user_id, question, name, phone, consent, idempotency_key, state
            )
        try:
            if state is None:
                state = self._states().load_state(channel, user_id)
            ticket = self.tickets.open(
                question=question,
                channel=channel,
                user_ref=user_id,
                transcript=state.get("history", []),
                department=state.get("last_unit"),
                contact_name=name,
                contact_phone=phone,
                consent=consent,
                idempotency_key=idempotency_key,
                matched=state.get("last_hits", []),
            )
        except UNREACHABLE as exc:
            if self.spool is None:
                raise
            self.spool.health.failed(exc)
            return self._queue_ticket(
                channel, user_id, question, name, phone, consent, idempotency_key, state
            )
        log_id = state.get("last_log")
        if log_id:
            try:
                self.querylog.link_ticket(int(log_id), ticket.no)
            except Exception:
                log.exception("could not link query log %s to ticket", log_id)
        state["pending"] = None
        state.setdefault("tickets", [])
        if ticket.no not in state["tickets"]:
            state["tickets"].append(ticket.no)
        if own:
            self._states().save_state(channel, user_id, state)
        return self._opened_reply(ticket)

    def _opened_reply(self, ticket: Any) -> Reply:
        text = (
            f"留言已提交，编号 {ticket.no}。我们将在 {ticket.due_date:%Y年%m月%d日} 前答复"
            f"（{ticket.department}）。答复后会在这里通知您，也可发送“查询 {ticket.no}”查看进度。"
        )
        if getattr(ticket, "verify_code", None):
            text += f"\n查询验证码：{ticket.verify_code}（可在政策留言板凭编号和验证码查询）"
        return Reply("ticket_opened", text, ticket_no=ticket.no)

    def _queue_ticket(
        self,
        channel: str,
        user_id: str,
        question: str,
        name: str | None,
        phone: str | None,
        consent: bool,
        idempotency_key: str | None,
        state: dict[str, Any] | None,
    ) -> Reply:
        assert self.spool is not None
        self.spool.add(
            "ticket",
            {
                "channel": channel,
                "user_id": user_id,
                "question": question,
                "name": name,
                "phone": phone,
                "consent": consent,
                "idempotency_key": idempotency_key or f"spool-{uuid.uuid4().hex}",
                "department": (state or {}).get("last_unit"),
                "transcript": (state or {}).get("history", []),
                "matched": (state or {}).get("last_hits", []),
            },
        )
        if state is not None:
            state["pending"] = None
        log.warning("ticket_spooled channel=%s (database unreachable)", channel)
        return Reply("ticket_queued", TICKET_QUEUED)

    def replay_ticket(self, data: dict[str, Any]) -> Reply:
        """Open a ticket spooled during an outage (idempotent by its key); the reply to push."""
        ticket = self.tickets.open(
            question=data["question"],
            channel=data["channel"],
            user_ref=data["user_id"],
            transcript=data.get("transcript") or [],
            department=data.get("department"),
            contact_name=data.get("name"),
            contact_phone=data.get("phone"),
            consent=bool(data.get("consent")),
            idempotency_key=data["idempotency_key"],
            matched=data.get("matched") or [],
        )
        return self._opened_reply(ticket)

    def ticket_status(self, channel: str, user_id: str, no: str) -> Reply:
        no = no.strip().upper()
        try:
            t = self.tickets.get(no)
        except NotFound:
            t = None
        if t is None or t.channel != channel or t.user_ref != user_id:
            return Reply(
                "status", f"没有找到编号为 {no} 的本人留言，请核对编号；也可在政策留言板凭编号和验证码查询。"
            )
        text = f"留言 {t.no}：{t.status}。办理期限 {t.due_date:%Y年%m月%d日}。"
        if t.reply:
            text += f"\n答复（{t.department}）：{t.reply}"
        return Reply("status", text, ticket_no=t.no)

    def rate(self, channel: str, user_id: str, ref: str, rating: str) -> bool:
        try:
            log_id = int(ref)
        except (TypeError, ValueError):
            return False
        if not 0 < log_id <= MAX_ID:  # no such row; larger ones overflow the driver
            return False
        row = self.querylog.get(log_id)
        if row is None or row.user_ref != self._user_ref(channel, user_id):
            return False
        return self.querylog.rate(log_id, rating)

    # --- dispatch ---------------------------------------------------------------------------------
    def _dispatch(self, msg: Incoming, state: dict[str, Any]) -> list[Reply]:
        text = _clean(msg.text)
        if not text:
            return [Reply("text", "请输入您要咨询的问题，例如：依申请公开多久答复？")]
        if len(text) > MAX_QUESTION:
            text = text[:MAX_QUESTION]
        compact = re.sub(r"\s+", "", text)
        if compact in RESET_WORDS:
            tickets = state.get("tickets", [])
            state.clear()
            state.update(self.fresh_state(msg.channel, msg.user_id), tickets=tickets)
            return self._welcome(msg, state)
        m = STATUS_RE.match(text)
        if m or TICKET_NO_RE.match(compact):
            return [self.ticket_status(msg.channel, msg.user_id, m.group(1) if m else compact)]
        if state.get("pending"):
            handled = self._pending(msg, state, text, compact)
            if handled is not None:
                return handled
        if compact in HANDOFF_WORDS:
            return [self._handoff_offer(msg, state, explicit=True)]
        if compact in USEFUL_WORDS | USELESS_WORDS and state.get("last_log"):
            rating = "useful" if compact in USEFUL_WORDS else "useless"
            ok = self.querylog.rate(int(state["last_log"]), rating)
            if rating == "useless":
                return [
                    Reply("text", "感谢反馈，我们会改进这条答复。" if ok else "您已评价过这条答复。"),
                    self._handoff_offer(msg, state, explicit=False),
                ]
            return [Reply("text", "感谢您的评价！" if ok else "您已评价过这条答复。")]
        choice = CHOICE_RE.match(text)
        if choice and state.get("choices"):
            idx = int(choice.group(1)) - 1
            choices = state["choices"]
            if 0 <= idx < len(choices):
                kind, value = choices[idx]
                if kind == "faq":
                    return self._answer_choice(msg, state, value)
                text = value  # a welcome suggestion: ask it
        return self._ask(msg, state, text)

    def _ask(self, msg: Incoming, state: dict[str, Any], text: str) -> list[Reply]:
        result = self.kb.ask(text)
        masked = mask(text)
        state[PENDING_LOG] = dict(
            channel=msg.channel,
            user_ref=self._user_ref(msg.channel, msg.user_id),
            session_id=state.get("sid"),
            text=masked,
            outcome=result.decision,
            score=result.score,
            faq_id=result.faq_id,
            unit=result.unit,
        )
        log_id = PENDING_LOG
        state["last_query"] = masked
        state["last_unit"] = result.unit
        state["last_hits"] = [h.as_dict() for h in result.hits[:3]]
        state["choices"] = []
        return self._render(msg, state, result, log_id)

    def _render(
        self, msg: Incoming, state: dict[str, Any], result: AskResult, log_id: int | str
    ) -> list[Reply]:
        sources = [s.as_dict() for s in result.sources]
        if result.decision == "answer":
            text = result.answer or ""
            if result.sources:
                text += "\n来源：" + "；".join(s.citation() for s in result.sources)
            if result.service_url:  # 办事链接, or the maintenance notice while it is broken
                text += "\n" + texts.service_link_line(result.service_url, result.link_broken)
            if msg.channel not in self.form_channels:
                text += "\n这条答复对您有帮助吗？请回复“有用”或“没用”。"
            return [Reply("answer", text, faq_id=result.faq_id, sources=sources, ref=str(log_id))]
        if result.decision == "clarify":
            questions = [h.question for h in result.hits[:3]]
            state["choices"] = [["faq", h.faq_id] for h in result.hits[:3]]
            lines = "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))
            return [
                Reply(
                    "clarify", f"您想咨询的是下面哪个问题？请回复序号或点击：\n{lines}", suggestions=questions
                )
            ]
        replies: list[Reply] = []
        if result.decision == "passage":
            parts = [f"{p.citation()}：{_excerpt(p.text)}" for p in result.passages[:2]]
            head = "知识库中暂无这个问题的标准答复，以下政策原文可能与您的问题有关："
            if result.superseded:  # the FAQ's source was repealed or revised: the replacement's article
                head = texts.superseded_notice(result.superseded)
            replies.append(
                Reply(
                    "passage",
                    head + "\n" + "\n".join(parts),
                    sources=sources,
                    ref=str(log_id),
                )
            )
        replies.append(self._handoff_offer(msg, state, explicit=False))
        return replies

    def _answer_choice(self, msg: Incoming, state: dict[str, Any], faq_id: str) -> list[Reply]:
        result = self.kb.answer_for(faq_id)
        if result is None:
            return [Reply("text", "该问题已更新，请重新输入您的问题。")]
        state[PENDING_LOG] = dict(
            channel=msg.channel,
            user_ref=self._user_ref(msg.channel, msg.user_id),
            session_id=state.get("sid"),
            text=state.get("last_query") or result.query,
            outcome="answer",
            score=None,
            faq_id=faq_id,
            unit=result.unit,
        )
        log_id = PENDING_LOG
        state["choices"] = []
        return self._render(msg, state, result, log_id)

    def _handoff_offer(self, msg: Incoming, state: dict[str, Any], *, explicit: bool) -> Reply:
        question = state.get("last_query") if state.get("last_query") else None
        lead = "好的，您可以给工作人员留言。" if explicit else "如需工作人员解答，您可以留言。"
        lead += f"我们将在{self.limit_days}个工作日内答复。"
        if msg.channel in self.form_channels:
            return Reply(
                "handoff_offer",
                lead + "请填写留言表单。",
                suggestions=[] if explicit else ["我要留言"],
                form="handoff",
                question=question,
            )
        if not explicit:
            return Reply("handoff_offer", lead + "请回复“留言”。", suggestions=["留言"])
        if question:
            state["pending"] = "contact"
            state["ticket_question"] = question
            return Reply(
                "handoff_offer",
                lead + f"\n留言内容：{question}\n" + self._contact_prompt(),
                question=question,
            )
        state["pending"] = "question"
        return Reply("handoff_offer", lead + "请用一句话描述您要咨询的问题（回复“取消”放弃）。")

    def _contact_prompt(self) -> str:
        return (
            "如需工作人员联系您，请回复“同意 姓名 手机号”（" + CONSENT_TEXT + "）；"
            "无需联系请回复“匿名”；回复“取消”放弃留言。"
        )

    def _pending(self, msg: Incoming, state: dict[str, Any], text: str, compact: str) -> list[Reply] | None:
        pending = state.get("pending")
        if compact in CANCEL_WORDS:
            state["pending"] = None
            return [Reply("text", "已取消留言。您可以继续提问。")]
        if pending == "question":
            state["ticket_question"] = text
            state["pending"] = "contact"
            return [Reply("text", "收到。" + self._contact_prompt())]
        if pending == "contact":
            question = state.get("ticket_question") or state.get("last_query") or ""
            if compact in ANON_WORDS:
                return [
                    self.open_ticket(channel=msg.channel, user_id=msg.user_id, question=question, state=state)
                ]
            if compact.startswith("同意"):
                rest = text.strip()[2:].strip()
                phone_m = re.search(r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}", rest)
                if not phone_m:
                    return [Reply("text", "没有识别到手机号，请按“同意 姓名 手机号”回复，或回复“匿名”。")]
                name = (rest[: phone_m.start()] + rest[phone_m.end() :]).strip(" ，,：:") or None
                return [
                    self.open_ticket(
                        channel=msg.channel,
                        user_id=msg.user_id,
                        question=question,
                        name=name,
                        phone=phone_m.group(0),
                        consent=True,
                        state=state,
                    )
                ]
            return None  # anything else: treat as a new question, keep the pending offer
        return None

    # --- state ------------------------------------------------------------------------------------
    def _states(self) -> StateStore:
        if self.states is None:
            raise RuntimeError("the dialogue has no state store (build it with bot.pipeline.inbox.Inbox)")
        return self.states

    def _user_ref(self, channel: str, user_id: str) -> str:
        return user_ref_hash(self.secret, channel, user_id)

    @staticmethod
    def _remember(state: dict[str, Any], role: str, text: str) -> None:
        history = state.setdefault("history", [])
        if role == "user":  # bot replies come from the knowledge base and the already masked question
            text = mask(text)
        history.append({"role": role, "text": text[:1000], "at": utcnow().isoformat(timespec="seconds")})
        del history[:-20]


def _clean(text: str) -> str:
    text = "".join(ch for ch in (text or "") if ch in "\n\t" or ch.isprintable())
    return text.strip()


def _excerpt(text: str, n: int = 160) -> str:
    text = re.sub(r"\s+", "", text)
    return text if len(text) <= n else text[:n] + "……"
