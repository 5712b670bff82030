"""An in-process channel for tests and the `policybot chat` style of driving the whole conversation
end to end without any wire format (after errbot's test backend), through the same inbound pipeline
as every channel: `chat.say("...")` returns the rendered text of the replies; pushed replies (the
outbox) are collected in `chat.pushed`."""

from __future__ import annotations

from fastapi import APIRouter

from bot.conversation import Incoming, Reply
from bot.pipeline.inbox import Inbox


class MemoryChannel:
    name = "memory"

    def __init__(self, inbox: Inbox, user_id: str = "tester") -> None:
        self.inbox = inbox
        self.user_id = user_id
        self.replies: list[Reply] = []
        self.pushed: list[tuple[str, Reply]] = []

    def router(self) -> APIRouter | None:
        return None

    def ask(self, text: str) -> list[Reply]:
        self.replies = self.inbox.receive(Incoming(self.name, self.user_id, text)).replies
        return self.replies

    def say(self, text: str) -> str:
        return "\n".join(r.text for r in self.ask(text))

    def push(self, user_id: str, reply: Reply) -> None:
        self.pushed.append((user_id, reply))
