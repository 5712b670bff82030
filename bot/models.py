"""Tables owned by the bot package: conversation sessions, inbound message dedup, shared tokens."""

from __future__ import annotations
