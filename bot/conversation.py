"""Dialogue: the channel-free conversation. `Incoming -> list[Reply]`, nothing else crosses the
channel boundary.

`Dialogue.decide(msg, state)` is the decision for one message on the conversation's state, without
SQL, spool or channel names (only whether the channel shows forms): small talk (bot/talk.py) before
anything is looked up; requests for a person (the form at once, category preset); the knowledge
base's answer with one citation, clarify with up to 3 numbered suggestions, policy passages only when
they cover the question's key terms; short follow-ups asked in the topic of the last answer; an
honest "not my field" for what does not look like policy; the leave-a-message flow in words;
ratings (没用 offers the next-best FAQs and the form in the same bubble; a staff reply is rated with
1/2/3 or 评价 <编号> <1-3>); the subscription commands 订阅 / 退订 / 我的订阅 (bot/subscribe_talk.py);
sensitive words (no automatic answer, a flagged ticket). What needs the database comes back as an
*intent* (state key PENDING_INTENT) with a placeholder reply: the inbound pipeline
(bot/pipeline/inbox.py) carries it out (open a ticket, rate, look up a status, attach a 补正,
subscribe) and asks `outcome` for the replies. The query-log entry is left under PENDING_LOG for the same one write.
Every sentence comes from `bot.texts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import outcomes, subscribe_talk, talk, texts
from bot.messages import Incoming, Reply
from bot.outcomes import Outcome
from handoff.privacy import mask, normalise_phone
from knowledge.answer import AskResult, KnowledgeBase
from knowledge.errors import PolicybotError
from knowledge.models import utcnow
from knowledge.smalltalk import SmallTalkEntry, merged
from knowledge.usage import QueryLogStore

log = logging.getLogger("policybot.dialogue")

PENDING_LOG = "_pending_log"  # state key / reply ref placeholder until the log row is written
PENDING_INTENT = "_intent"  # state key of what the inbox carries out (ticket, rating, status)
AWAITING_SUPPLEMENT = "_supplement_for"  # set by the inbox for one message: the ticket awaiting 补正
PLACEHOLDER = "pending"  # the kind of the reply the intent's outcome replaces
APOLOGY = texts.TEXTS["apology"]
TICKET_QUEUED = texts.TEXTS["ticket.queued"]
# The database cannot be reached (as opposed to a refused statement): degraded mode takes over.
UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)
MAX_QUESTION = 500
RESET_WORDS = {"重新开始", "重来", "重置"}
USEFUL_WORDS = {"有用", "有帮助", "满意"}
USELESS_WORDS = {"没用", "没有用", "无用", "不满意", "没帮助", "没有帮助"}
CANCEL_WORDS = {"取消", "算了", "不留言"}
ANON_WORDS = {"匿名", "不留联系方式", "不需要回电", "匿名留言"}
TICKET_RATINGS = {
    "1": "满意",
    "2": "基本满意",
    "3": "不满意",
    "满意": "满意",
    "基本满意": "基本满意",
    "不满意": "不满意",
}
STATUS_RE = re.compile(r"^(?:查询|查|进度|状态|/status)\s*[:：]?\s*([A-Za-z]{2}\d{8}-\d{3,6})\s*$", re.I)
RATE_TICKET_RE = re.compile(r"^评价\s*([A-Za-z]{2}\d{8}-\d{3,6})?\s*(满意|基本满意|不满意|[123])\s*$", re.I)
TICKET_NO_RE = re.compile(r"^[A-Za-z]{2}\d{8}-\d{3,6}$")
CHOICE_RE = re.compile(r"^\s*([1-9])\s*[.、。]?\s*$")
CONSENT_TEXT = texts.TEXTS["handoff.consent"]
OWN_ANSWER = 0.75  # a short follow-up that scores this alone is a new topic, not a follow-up


def user_ref_hash(secret: str | bytes, channel: str, user_id: str) -> str:
    """The pseudonymous user reference of the query log: an HMAC of channel and user id."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:24]


class Dialogue:
    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        querylog: QueryLogStore,
        secret: str,
        welcome_text: str,
        session_ttl: dt.timedelta = dt.timedelta(minutes=30),
        form_channels: frozenset[str] = frozenset({"web"}),
        limit_days: int = 5,
        screen: Callable[[str], list[str]] | None = None,
        smalltalk: Callable[[], Mapping[str, SmallTalkEntry]] | None = None,
    ) -> None:
        self.kb = kb
        self.querylog = querylog  # read by top_questions only; the inbox writes the log
        self.secret = secret.encode()
        self.welcome_text = welcome_text
        self.session_ttl = session_ttl
        self.form_channels = form_channels
        self.limit_days = limit_days
        self.screen = screen  # sensitive words found in a text (knowledge.sensitive)
        self.smalltalk = smalltalk  # administrators' small-talk edits (knowledge.smalltalk)
        self._top: tuple[float, list[str]] = (float("-inf"), [])

    # --- entry points ---------------------------------------------------------------------------
    def decide(self, msg: Incoming, state: dict[str, Any]) -> list[Reply]:
        """The replies to one message; `state` is changed in place (the caller stores it, writes the
        query-log entry left under PENDING_LOG and carries out the intent under PENDING_INTENT).
        Never raises: a domain error becomes its Chinese text, anything else the apology."""
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
            if r.kind != PLACEHOLDER:
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
            pinned = self.kb.welcome_pins()
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

    # --- dispatch ---------------------------------------------------------------------------------
    def _dispatch(self, msg: Incoming, state: dict[str, Any]) -> list[Reply]:
        text = _clean(msg.text)
        if not text:
            return [Reply("text", texts.say("empty"))]
        if len(text) > MAX_QUESTION:
            text = text[:MAX_QUESTION]
        compact = re.sub(r"\s+", "", text)
        if self.screen is not None and self.screen(text):
            return self._flag(msg, state, text)
        if compact in RESET_WORDS:
            tickets = state.get("tickets", [])
            state.clear()
            state.update(self.fresh_state(msg.channel, msg.user_id), tickets=tickets)
            return self._welcome(msg, state)
        m = STATUS_RE.match(text)
        if m or TICKET_NO_RE.match(compact):
            return self._intent(state, "ticket_status", no=(m.group(1) if m else compact).upper())
        rated = RATE_TICKET_RE.match(compact)
        if rated:
            no = rated.group(1).upper() if rated.group(1) else None
            return self._intent(state, "rate_ticket", no=no, rating=TICKET_RATINGS[rated.group(2)])
        wanted = subscribe_talk.command(text)
        if wanted is not None:  # 订阅 / 退订 / 我的订阅 (carried out by the inbox)
            return self._intent(state, "subscription", action=wanted.action, tag=wanted.tag)
        if state.get(AWAITING_SUPPLEMENT):  # a ticket of this user awaits 补正: this message is it
            return self._intent(state, "supplement", no=state[AWAITING_SUPPLEMENT], text=text)
        if state.get("pending"):
            handled = self._pending(msg, state, text, compact)
            if handled is not None:
                return handled
        person = talk.person_request(text)
        if person is not None:
            return [self._handoff_offer(msg, state, explicit=True, category=person[0], question=person[1])]
        if compact in USEFUL_WORDS | USELESS_WORDS and state.get("last_log"):
            rating = "useful" if compact in USEFUL_WORDS else "useless"
            return self._intent(state, "rate_answer", log_id=int(state["last_log"]), rating=rating)
        choice = CHOICE_RE.match(text)
        if choice and state.get("choices"):
            idx = int(choice.group(1)) - 1
            choices = state["choices"]
            if 0 <= idx < len(choices):
                kind, value = choices[idx]
                if kind == "faq":
                    return self._answer_choice(msg, state, value)
                text = value  # a welcome suggestion: ask it
        elif choice and compact in TICKET_RATINGS and state.get("tickets"):
            # "回复 1/2/3" after a staff reply: the latest replied ticket of this user
            return self._intent(state, "rate_ticket", no=None, rating=TICKET_RATINGS[compact])
        table = texts.smalltalk_defaults()
        if self.smalltalk is not None:
            table = merged(table, self.smalltalk())
        intent = talk.smalltalk(text, table)
        if intent is not None:
            return [self._smalltalk(msg, state, intent, table[intent].reply)]
        return self._ask(msg, state, text)

    def _intent(self, state: dict[str, Any], kind: str, **data: Any) -> list[Reply]:
        state[PENDING_INTENT] = {"kind": kind, **data}
        return [Reply(PLACEHOLDER, "")]

    def _smalltalk(self, msg: Incoming, state: dict[str, Any], intent: str, text: str) -> Reply:
        if intent not in ("greeting", "presence", "who"):
            return Reply("text", text)
        tops = self.top_questions(3)
        if tops and msg.channel not in self.form_channels:
            text += "\n" + texts.say("smalltalk.greeting_tops") + "\n"
            text += "\n".join(f"{i}. {q}" for i, q in enumerate(tops, 1))
            state["choices"] = [["q", q] for q in tops]
        return Reply("text", text, suggestions=tops)

    def _log_entry(self, msg: Incoming, state: dict[str, Any], text: str, outcome: str, **kw: Any) -> None:
        state[PENDING_LOG] = dict(
            channel=msg.channel,
            user_ref=self._user_ref(msg.channel, msg.user_id),
            session_id=state.get("sid"),
            text=text,
            outcome=outcome,
            score=kw.get("score"),
            faq_id=kw.get("faq_id"),
            unit=kw.get("unit"),
        )

    def _ask(self, msg: Incoming, state: dict[str, Any], text: str) -> list[Reply]:
        result, topic = self._lookup(state, text)
        masked = mask(text)
        decision = result.decision
        if decision != "passage":
            passages: tuple[Any, ...] = ()
        elif result.superseded:  # the replacement's article of a repealed FAQ source: always shown
            passages = tuple(result.passages)
        else:
            passages = self._covering(result)
        if decision == "passage" and not passages:
            decision = "none"
        in_scope = (
            decision != "none" or topic is not None or result.unit is not None or talk.looks_like_policy(text)
        )
        outcome = decision if in_scope else "out_of_scope"
        self._log_entry(
            msg, state, masked, outcome, score=result.score, faq_id=result.faq_id, unit=result.unit
        )
        state["last_query"] = masked
        state["last_unit"] = result.unit
        state["last_hits"] = [h.as_dict() for h in result.hits[:5]]
        state["choices"] = []
        if not in_scope:
            state.pop("topic", None)
            return [self._outside(msg, state)]
        if topic is not None and decision == "none":  # a follow-up the topic does not cover
            state["last_query"] = mask(result.query)
            lead = texts.say("followup.uncovered", topic=topic)
            return [self._handoff_offer(msg, state, explicit=False, lead=lead)]
        if decision != "answer" and topic is None:  # a new question without an answer ends the topic
            state.pop("topic", None)
        return self._render(msg, state, result, decision, passages, topic)

    def _lookup(self, state: dict[str, Any], text: str) -> tuple[AskResult, str | None]:
        """The knowledge base's result, in the last answer's topic when the text is a short follow-up
        that does not stand on its own; the topic's label when it was used. A follow-up that only
        finds the topic's own answer again is not covered: decision "none" in that topic."""
        alone = self.kb.ask(text)
        topic = state.get("topic")
        if not topic or not talk.is_followup(text, self.kb.text.tokens):
            return alone, None
        if alone.decision == "answer" and alone.score >= OWN_ANSWER and alone.faq_id != topic.get("faq_id"):
            return alone, None
        label = str(topic["label"])
        in_topic = self.kb.ask(f"{topic['terms']} {text}")
        if in_topic.decision in ("answer", "clarify") and in_topic.faq_id != topic.get("faq_id"):
            return in_topic, label
        near = tuple(
            h
            for h in in_topic.hits
            if h.faq_id != topic.get("faq_id") and h.score >= self.kb.thresholds.clarify
        )[:3]
        if in_topic.faq_id == topic.get("faq_id") and near:  # only the topic's own answer again: the others
            return AskResult("clarify", in_topic.query, hits=near, unit=in_topic.unit), label
        if alone.decision == "answer":
            return alone, None
        return AskResult("none", f"{label}：{text}", hits=in_topic.hits, unit=in_topic.unit), label

    def _covering(self, result: AskResult) -> tuple[Any, ...]:
        """The passages that cover the question's key terms (never for a greeting-sized text)."""
        whole = talk.compact(result.query)
        if len(whole) < 3:
            return ()
        terms = talk.key_terms(self.kb.text.tokens(result.query)) or [whole]
        return tuple(p for p in result.passages if talk.passage_covers(terms, self.kb.text.normalise(p.text)))

    def _outside(self, msg: Incoming, state: dict[str, Any]) -> Reply:
        tops = self.top_questions(3)
        text = texts.say("scope.outside")
        if tops and msg.channel not in self.form_channels:
            text += (
                "\n"
                + texts.say("scope.examples")
                + "\n"
                + "\n".join(f"{i}. {q}" for i, q in enumerate(tops, 1))
            )
            state["choices"] = [["q", q] for q in tops]
        return Reply("text", text, suggestions=tops)

    def _render(
        self,
        msg: Incoming,
        state: dict[str, Any],
        result: AskResult,
        decision: str,
        passages: tuple[Any, ...] = (),
        topic: str | None = None,
    ) -> list[Reply]:
        if decision == "answer":
            return [self._answer_reply(msg, state, result, topic)]
        if decision == "clarify":
            questions = [h.question for h in result.hits[:3]]
            state["choices"] = [["faq", h.faq_id] for h in result.hits[:3]]
            lead = (texts.say("answer.followup", topic=topic) + "\n") if topic else ""
            if msg.channel in self.form_channels:  # the widget shows the questions as buttons
                return [Reply("clarify", lead + texts.say("clarify.lead_web"), suggestions=questions)]
            lines = "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))
            return [Reply("clarify", f"{lead}{texts.say('clarify.lead')}\n{lines}", suggestions=questions)]
        replies: list[Reply] = []
        if decision == "passage":
            parts = [f"{p.citation()}：{_excerpt(p.text)}" for p in passages[:2]]
            cited = dict(zip(map(id, result.passages), result.sources, strict=False))  # knowledge's citations
            sources = [
                cited[id(p)].as_dict()
                if id(p) in cited
                else {
                    "title": p.title,
                    "doc_no": p.doc_no,
                    "article": p.label,
                    "status": p.status,
                    "url": p.url,
                    "policy_id": p.policy_id,
                }
                for p in passages[:2]
            ]
            head = texts.say("passage.lead")
            if result.superseded:  # the FAQ's source was repealed or revised: the replacement's article
                head = texts.superseded_notice(result.superseded)
            replies.append(
                Reply(
                    "passage",
                    head + "\n" + "\n".join(parts),
                    sources=sources,
                    ref=PENDING_LOG,
                )
            )
        replies.append(self._handoff_offer(msg, state, explicit=False))
        return replies

    def _answer_reply(
        self, msg: Incoming, state: dict[str, Any], result: AskResult, topic: str | None
    ) -> Reply:
        """The FAQ text, then one source line unless the text already names its source."""
        text = result.answer or ""
        if topic:
            text = texts.say("answer.followup", topic=topic) + text
        if result.sources and not _names_source(text, result.sources[0].title):
            text += "\n" + texts.say("answer.source", citation=result.sources[0].citation())
        if result.service_url:  # 办事链接, or the maintenance notice while it is broken
            text += "\n" + texts.service_link_line(result.service_url, result.link_broken)
        if msg.channel not in self.form_channels:
            text += "\n" + texts.say("answer.rate_prompt")
        state["last_faq"] = result.faq_id
        rec = self.kb.record(result.faq_id or "")
        if rec is not None:
            tags = [t for t in rec.tags if t][:2]
            state["topic"] = {
                "faq_id": rec.id,
                "terms": " ".join(tags) or rec.question,
                "label": tags[0] if tags else rec.question,
            }
        sources = [s.as_dict() for s in result.sources[:1]]
        return Reply("answer", text, faq_id=result.faq_id, sources=sources, ref=PENDING_LOG)

    def _answer_choice(self, msg: Incoming, state: dict[str, Any], faq_id: str) -> list[Reply]:
        result = self.kb.answer_for(faq_id)
        if result is None:
            return [Reply("text", texts.say("choice.stale"))]
        text = state.get("last_query") or result.query
        self._log_entry(msg, state, text, "answer", faq_id=faq_id, unit=result.unit)
        state["choices"] = []
        return [self._answer_reply(msg, state, result, None)]

    # --- leaving a message ----------------------------------------------------------------------
    def _handoff_offer(
        self,
        msg: Incoming,
        state: dict[str, Any],
        *,
        explicit: bool,
        category: str = "咨询",
        question: str | None = None,
        lead: str = "",
    ) -> Reply:
        if question is None and category == "咨询":  # 投诉/建议/举报 are about something new: ask for it
            question = state.get("last_query") or None
        days = self.limit_days
        if lead:
            lead += texts.say("handoff.lead_offer", days=days)
        elif explicit and category != "咨询":
            lead = texts.say("handoff.lead_category", category=category, days=days)
        else:
            lead = texts.say("handoff.lead_explicit" if explicit else "handoff.lead_offer", days=days)
        if msg.channel in self.form_channels:
            return Reply(
                "handoff_offer",
                lead + texts.say("handoff.fill_form"),
                suggestions=[] if explicit else ["我要留言"],
                form="handoff",
                question=question,
                category=category,
            )
        if not explicit:
            return Reply("handoff_offer", lead + texts.say("handoff.reply_word"), suggestions=["留言"])
        state["ticket_category"] = category
        if question:
            state["pending"] = "contact"
            state["ticket_question"] = question
            return Reply(
                "handoff_offer",
                lead
                + "\n"
                + texts.say("handoff.question_is", question=question)
                + "\n"
                + self._contact_prompt(),
                question=question,
                category=category,
            )
        state["pending"] = "question"
        ask = texts.say("handoff.ask_question" if category == "咨询" else "handoff.ask_category")
        return Reply("handoff_offer", lead + ask, category=category)

    def _contact_prompt(self) -> str:
        return texts.say("handoff.contact_prompt", consent=CONSENT_TEXT)

    def _pending(self, msg: Incoming, state: dict[str, Any], text: str, compact: str) -> list[Reply] | None:
        pending = state.get("pending")
        if compact in CANCEL_WORDS:
            state["pending"] = None
            return [Reply("text", texts.say("handoff.cancelled"))]
        if pending == "question":
            state["ticket_question"] = text
            state["pending"] = "contact"
            category = state.get("ticket_category") or "咨询"
            choice = texts.say("handoff.category_choice", category=category)
            return [Reply("text", texts.say("handoff.received") + choice + self._contact_prompt())]
        if pending != "contact":
            return None
        question = state.get("ticket_question") or state.get("last_query") or ""
        category = state.get("ticket_category") or "咨询"
        if compact in talk.CATEGORIES:  # the category choice of text channels (the widget has a select)
            state["ticket_category"] = compact
            return [
                Reply("text", texts.say("handoff.category_set", category=compact) + self._contact_prompt())
            ]
        if compact in ANON_WORDS:
            return self.ticket_intent(state, question=question, category=category)
        if compact.startswith("同意"):
            rest = text.strip()[2:].strip()
            phone_m = re.search(r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}", rest)
            if not phone_m:
                return [Reply("text", texts.say("handoff.no_phone"))]
            name = (rest[: phone_m.start()] + rest[phone_m.end() :]).strip(" ，,：:") or None
            return self.ticket_intent(
                state, question=question, name=name, phone=phone_m.group(0), consent=True, category=category
            )
        return None  # anything else: treat as a new question, keep the pending offer

    def ticket_intent(
        self,
        state: dict[str, Any],
        *,
        question: str,
        name: str | None = None,
        phone: str | None = None,
        consent: bool = False,
        idempotency_key: str | None = None,
        category: str = "咨询",
        flag_reason: str | None = None,
    ) -> list[Reply]:
        """The intent to open a 政策留言 (the inbox opens it); raises PolicybotError if the input
        cannot make one (so that nothing unopenable is kept for later during an outage)."""
        question = (question or "").strip()
        if not question:
            raise PolicybotError(texts.say("ticket.empty"), "empty ticket question")
        if len(question) > MAX_QUESTION:
            raise PolicybotError(texts.say("ticket.too_long", n=MAX_QUESTION), "ticket question too long")
        name = (name or "").strip() or None
        phone = (phone or "").strip() or None
        if (name or phone) and not consent:
            raise PolicybotError(texts.say("ticket.need_consent"), "contact without consent")
        if phone and normalise_phone(phone) is None:
            raise PolicybotError(texts.say("ticket.bad_phone"), "bad phone")
        state["pending"] = None
        return self._intent(
            state,
            "open_ticket",
            question=question,
            name=name,
            phone=phone,
            consent=consent,
            idempotency_key=idempotency_key or f"dlg-{uuid.uuid4().hex}",
            category=category,
            flag_reason=flag_reason,
            department=state.get("last_unit"),
            transcript=list(state.get("history", [])),
            matched=list(state.get("last_hits", []))[:3],
            log_id=state.get("last_log"),
        )

    def _flag(self, msg: Incoming, state: dict[str, Any], text: str) -> list[Reply]:
        """A message with a sensitive word: no automatic answer, a flagged ticket for a supervisor."""
        state["last_query"] = mask(text)
        state["last_unit"] = None
        state["last_hits"] = []
        state["choices"] = []
        state.pop("topic", None)
        return self.ticket_intent(state, question=text, flag_reason="敏感词")

    # --- outcomes of intents (the inbox carried them out) ---------------------------------------
    def outcome(
        self, channel: str, state: dict[str, Any], intent: dict[str, Any], result: Outcome
    ) -> list[Reply]:
        """The replies to an intent the inbox carried out (bot/outcomes.py renders them)."""
        replies = outcomes.render(
            intent, result, state, forms=channel in self.form_channels, limit_days=self.limit_days
        )
        for r in replies:
            self._remember(state, "bot", r.text)
        return replies

    # --- state ------------------------------------------------------------------------------------
    def _user_ref(self, channel: str, user_id: str) -> str:
        return user_ref_hash(self.secret, channel, user_id)

    @staticmethod
    def _remember(state: dict[str, Any], role: str, text: str) -> None:
        history = state.setdefault("history", [])
        if role == "user":  # bot replies come from the knowledge base and the already masked question
            text = mask(text)
        history.append({"role": role, "text": text[:1000], "at": utcnow().isoformat(timespec="seconds")})
        del history[:-20]


def _names_source(text: str, title: str) -> bool:
    return bool(title) and (f"《{title}》" in text or title in text)


def _clean(text: str) -> str:
    text = "".join(ch for ch in (text or "") if ch in "\n\t" or ch.isprintable())
    return text.strip()


def _excerpt(text: str, n: int = 160) -> str:
    text = re.sub(r"\s+", "", text)
    return text if len(text) <= n else text[:n] + "……"


__all__ = [
    "APOLOGY",
    "PENDING_INTENT",
    "PENDING_LOG",
    "PLACEHOLDER",
    "TICKET_QUEUED",
    "UNREACHABLE",
    "Dialogue",
    "Incoming",
    "Outcome",
    "Reply",
    "user_ref_hash",
]
