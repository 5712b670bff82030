"""An in-process channel for tests and the `policybot chat` style of driving the whole conversation
end to end without any wire format (after errbot's test backend): `chat.say("...")` returns the
rendered text of the replies; pushed replies are collected in `chat.pushed`."""

from __future__ import annotations

from fastapi import APIRouter

from bot.conversation import Dialogue, Incoming, Reply


class MemoryChannel:
    name = "memory"

    def __init__(self, dialogue: Dialogue, user_id: str = "tester") -> None:
        self.dialogue = dialogue
        self.user_id = user_id
        self.replies: list[Reply] = []
        self.pushed: list[tuple[str, Reply]] = []

    def router(self) -> APIRouter | None:
        return None

    def ask(self, text: str) -> list[Reply]:
        self.replies = self.dialogue.handle(Incoming(self.name, self.user_id, text))
        return self.replies

    def say(self, text: str) -> str:
        return "\n".join(r.text for r in self.ask(text))

    def push(self, user_id: str, reply: Reply) -> None:
        self.pushed.append((user_id, reply))
