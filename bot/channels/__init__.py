"""The Channel protocol: every channel module turns its wire format into `Incoming`, renders `Reply`
objects back, owns its HTTP routes, and can `push` a later reply (a staff answer) to the same person.
Adding a channel is one module here plus one line in `bot/app.py`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fastapi import APIRouter

from bot.conversation import Reply


@runtime_checkable
class Channel(Protocol):
    name: str

    def router(self) -> APIRouter | None:
        """The channel's HTTP routes (None for channels without any)."""
        ...

    def push(self, user_id: str, reply: Reply) -> None:
        """Deliver a later reply; raise on failure so that the notifier records and retries it."""
        ...
