"""The subscription commands of every chat channel: ``订阅 <标签>``, ``退订 <标签>`` (also 取消订阅),
``我的订阅`` (also 查看订阅), and Telegram's ``/subscribe <tag>`` / ``/unsubscribe <tag>`` / ``/subscriptions``
(the WeChat menu key MY_SUBSCRIPTIONS sends 我的订阅). `command` recognises them (pure, on text; the
Dialogue turns a match into the ``subscription`` intent), `carry_out` does it on the subscription
store (for the inbox's intents), `reply` renders the outcome (every sentence from `bot.texts`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot import texts
from bot.messages import Reply
from bot.outcomes import Outcome
from knowledge.errors import PolicybotError
from knowledge.subscriptions import SubscriptionStore

SUBSCRIBE, UNSUBSCRIBE, LIST = "subscribe", "unsubscribe", "list"
_COMMAND = re.compile(
    r"^(?:(?P<list>我的订阅|查看订阅|订阅列表|/subscriptions)"
    r"|(?P<un>退订|取消订阅|/unsubscribe)(?:@\w+)?(?:\s*[:：]?\s*(?P<untag>.*))?"
    r"|(?P<sub>订阅|/subscribe)(?:@\w+)?(?:\s*[:：]?\s*(?P<tag>.*))?)$",
    re.I | re.S,
)
MAX_TAG = 50


@dataclass(frozen=True)
class Command:
    action: str  # subscribe | unsubscribe | list
    tag: str = ""


def command(text: str) -> Command | None:
    """The subscription command in a message, or None. ``订阅`` alone asks for the topics; a
    question that merely contains the word (怎么订阅政策) is not a command."""
    m = _COMMAND.match((text or "").strip())
    if m is None:
        return None
    if m.group("list"):
        return Command(LIST)
    if m.group("un"):
        return Command(UNSUBSCRIBE, _tag(m.group("untag")))
    tag = _tag(m.group("tag"))
    if len(tag) > MAX_TAG or re.search(r"[？?吗呢怎如何哪]", tag):
        return None  # a question about subscribing, for the knowledge base
    return Command(SUBSCRIBE, tag)


def _tag(raw: str | None) -> str:
    return " ".join((raw or "").strip(" “”\"'《》「」").split())[: MAX_TAG + 1]


def carry_out(store: SubscriptionStore, channel: str, user_id: str, action: str, tag: str) -> Outcome:
    """Do the command; the Outcome carries the tag (`no`), the subscriber's tags and the topics."""
    items = tuple(store.topics())
    if action == LIST or (not tag and action == UNSUBSCRIBE):
        mine = store.tags_of(channel, user_id)
        return Outcome("list" if action == LIST else "usage", text="、".join(mine), no=tag, items=items)
    if not tag:
        return Outcome("usage", text="", no="", items=items)
    try:
        if action == SUBSCRIBE:
            canonical, new = store.add(channel, user_id, tag)
            return Outcome("subscribed" if new else "already", no=canonical, ok=True, items=items)
        canonical, removed = store.remove(channel, user_id, tag)
        mine = store.tags_of(channel, user_id)
        status = "unsubscribed" if removed else "not_subscribed"
        return Outcome(status, no=canonical, text="、".join(mine), items=items)
    except PolicybotError as exc:  # a topic outside the catalogue (UnknownTopic), a bad subscriber
        return Outcome("unknown", text=exc.user_message, no=tag, items=items)


def reply(intent: dict[str, object], result: Outcome) -> Reply:
    action = intent.get("action")
    topics = list(result.items)
    listed = "、".join(topics)
    example = topics[0] if topics else ""
    nothing = texts.say("subscriptions.nothing")
    status = result.status
    if status == "unavailable":
        text = texts.say("subscriptions.unavailable")
    elif status == "unknown":
        text = result.text or ""
    elif status in ("subscribed", "already"):
        text = texts.say("subscribe.done" if status == "subscribed" else "subscribe.already", tag=result.no)
    elif status == "unsubscribed":
        text = texts.say("unsubscribe.done", tag=result.no)
    elif status == "not_subscribed":
        text = texts.say("unsubscribe.not_subscribed", tag=result.no, tags=result.text or nothing)
    elif not topics:
        text = texts.say("subscribe.none_available")
    elif status == "list" and result.text:
        text = texts.say("subscriptions.list", tags=result.text)
    elif status == "list":
        text = texts.say("subscriptions.empty", topics=listed)
    elif action == UNSUBSCRIBE:
        text = texts.say(
            "unsubscribe.usage", example=(result.text or example).split("、")[0], tags=result.text or nothing
        )
    else:
        text = texts.say("subscribe.usage", example=example, topics=listed)
    return Reply("text", text)


__all__ = ["LIST", "SUBSCRIBE", "UNSUBSCRIBE", "Command", "carry_out", "command", "reply"]
