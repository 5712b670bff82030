"""Handoff to staff: tickets (政策留言), working-day time limits, privacy masking, the staff console.

May import `knowledge`, never `bot`.
"""
