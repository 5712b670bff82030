"""A fake 12345 hotline system: an ASGI app (served on 127.0.0.1 by tests.fakes.server) that records
every webhook POST as it arrived (headers and raw body) and answers with the status the test sets
(500 while it is "down")."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHotline:
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Any:
        api = FastAPI()

        @api.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
                status = self.status
            return Response('{"ok": true}' if status < 300 else '{"error": "down"}', status)

        return api

    def count(self) -> int:
        with self.lock:
            return len(self.received)
