"""The Channel protocol: every channel module turns its wire format into `Incoming`, renders `Reply`
objects back, owns its HTTP routes, and can `push` a later reply (a staff answer) to the same person.
A channel with a long-running client of its own (Telegram's PTB application) also has `lifespan()`,
entered by the app's lifespan through `channel_lifespans`. Adding a channel is one module here plus
one line in `bot/app.py`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
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


@contextlib.asynccontextmanager
async def channel_lifespans(channels: Iterable[Channel]) -> AsyncIterator[None]:
    """Enter every channel's optional `lifespan()` (in order) and leave them in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        for channel in channels:
            lifespan = getattr(channel, "lifespan", None)
            if lifespan is not None:
                await stack.enter_async_context(lifespan())
        yield
