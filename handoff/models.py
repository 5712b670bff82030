"""Tables owned by the handoff package: tickets, their events, holidays (working-day calendar)."""

from __future__ import annotations
