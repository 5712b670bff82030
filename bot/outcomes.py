"""The replies to what the inbound pipeline carried out for the Dialogue: a ticket opened (the one
ticket card), queued during an outage, refused; a status looked up; an answer rated (没用: the
next-best FAQs and the form in the same bubble); a staff reply rated (不满意 reopens); a subscription command (bot/subscribe_talk.py renders it). Pure: the
result comes in as an `Outcome`, the sentences from `bot.texts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import texts
from bot.messages import Reply

NEXT_BEST_FLOOR = 0.25  # a next-best FAQ offered after 没用 must have scored at least this


@dataclass(frozen=True)
class Outcome:
    """status: opened | queued | error | found | missing | rated | already | not_yet | nothing |
    unavailable | supplied (补正 attached); `ticket`: the TicketView concerned; `ok`: an answer rating was stored."""

    status: str
    ticket: Any = None
    no: str | None = None
    text: str | None = None
    ok: bool = False
    items: tuple[str, ...] = ()  # subscriptions: the topics that can be followed


def render(
    intent: dict[str, Any], result: Outcome, state: dict[str, Any], *, forms: bool, limit_days: int
) -> list[Reply]:
    kind = intent.get("kind")
    if kind == "open_ticket":
        return [_opened(intent, result, state)]
    if kind == "ticket_status":
        return [_status(result, str(intent.get("no") or ""))]
    if kind == "rate_answer":
        return [_rated_answer(intent, result, state, forms=forms, limit_days=limit_days)]
    if kind == "rate_ticket":
        return [_rated_ticket(result)]
    if kind == "supplement":
        return [_supplied(result)]
    if kind == "subscription":
        from bot import subscribe_talk

        return [subscribe_talk.reply(intent, result)]
    raise ValueError(f"unknown intent {kind!r}")


def _opened(intent: dict[str, Any], result: Outcome, state: dict[str, Any]) -> Reply:
    flagged = intent.get("flag_reason") == "敏感词"
    if result.status == "queued":
        return Reply("ticket_queued", texts.say("sensitive.queued" if flagged else "ticket.queued"))
    if result.status != "opened":
        return Reply("text", result.text or texts.say("apology"))
    t = result.ticket
    tickets = state.setdefault("tickets", [])
    if t.no not in tickets:
        tickets.append(t.no)
    del tickets[:-20]
    if flagged:
        return Reply("ticket_opened", texts.say("sensitive.flagged", no=t.no), ticket_no=t.no)
    return Reply("ticket_opened", texts.ticket_card(t), ticket_no=t.no)


def ticket_status_text(t: Any) -> str:
    text = texts.say("status.line", no=t.no, status=t.status, due=texts.date_text(t.due_date))
    if t.reply:
        text += "\n" + texts.say("status.reply", department=t.department, reply=t.reply)
    if getattr(t, "merged_into", None):  # a duplicate: the kept ticket's answer reaches them too
        text += "\n" + texts.say("status.merged", kept=t.merged_into)
    return text


def _status(result: Outcome, no: str) -> Reply:
    if result.status == "unavailable":
        return Reply("status", texts.say("status.unavailable"))
    if result.status != "found":
        return Reply("status", texts.say("status.not_found", no=no))
    t = result.ticket
    rate = t.no if t.status in ("已答复", "已办结") and t.rating is None else None
    return Reply("status", ticket_status_text(t), ticket_no=t.no, rate_ticket=rate)


def next_best(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The last question's other near FAQs (not the one just rated), best first, up to 3."""
    last = state.get("last_faq")
    return [
        h
        for h in state.get("last_hits", [])
        if h.get("faq_id") != last and float(h.get("score") or 0) >= NEXT_BEST_FLOOR and h.get("question")
    ][:3]


def _rated_answer(
    intent: dict[str, Any], result: Outcome, state: dict[str, Any], *, forms: bool, limit_days: int
) -> Reply:
    if intent.get("rating") != "useless":
        if result.status == "unavailable":
            return Reply("text", texts.say("ticket_rating.unavailable"))
        return Reply("text", texts.say("rating.thanks" if result.ok else "rating.already"))
    if result.status == "unavailable":
        return Reply("text", texts.say("ticket_rating.unavailable"))
    if not result.ok and result.status != "rated":
        return Reply("text", texts.say("rating.cannot"))
    lines = [texts.say("rating.useless" if result.ok else "rating.already")]
    hits = next_best(state) if intent.get("latest", True) else []
    questions = [str(h["question"]) for h in hits]
    if hits:  # numbered on text channels; the widget shows them as buttons under the text
        lines.append(texts.say("rating.next_best_web" if forms else "rating.next_best"))
        if not forms:
            lines.extend(f"{i}. {q}" for i, q in enumerate(questions, 1))
        state["choices"] = [["faq", h["faq_id"]] for h in hits]
    lines.append(texts.say("rating.handoff_web" if forms else "rating.handoff_text", days=limit_days))
    return Reply(
        "handoff_offer",
        "\n".join(lines),
        suggestions=questions,
        form="handoff" if forms else None,
        question=state.get("last_query"),
        category="咨询",
    )


def _rated_ticket(result: Outcome) -> Reply:
    no = result.ticket.no if result.ticket is not None else (result.no or "")
    if result.status == "rated":
        if result.ticket.rating == "不满意":
            return Reply("status", texts.say("ticket_rating.reopened", no=no), ticket_no=no)
        return Reply("status", texts.say("ticket_rating.thanks"), ticket_no=no)
    key = {
        "already": "ticket_rating.already",
        "not_yet": "ticket_rating.not_yet",
        "unavailable": "ticket_rating.unavailable",
        "missing": "status.not_found",
    }.get(result.status, "ticket_rating.nothing")
    return Reply("status", texts.say(key, no=no) if "{no}" in texts.TEXTS[key] else texts.say(key))


def _supplied(result: Outcome) -> Reply:
    """The citizen's 补正 was attached to their ticket (or could not be)."""
    if result.status != "supplied":
        return Reply("text", result.text or texts.say("supplement.failed"))
    t = result.ticket
    return Reply(
        "status", texts.say("supplement.received", no=t.no, due=texts.date_text(t.due_date)), ticket_no=t.no
    )


__all__ = ["NEXT_BEST_FLOOR", "Outcome", "next_best", "render", "ticket_status_text"]
