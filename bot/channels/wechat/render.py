"""Rendering replies as WeChat text: numbered suggestions, http(s) links as <a> (every other angle
bracket made full-width), linked sources, and splitting at about 2,000 UTF-8 bytes per message.
"""

from __future__ import annotations

import html
import re

from bot import texts
from bot.conversation import Reply

REPLY_BYTES = 2000  # WeChat text messages are limited to about 2048 bytes
URL_RE = re.compile(r"\bhttps?://[^\s<>\"'，。；）)＜＞]+")
TAG_CHARS = str.maketrans({"<": "＜", ">": "＞"})


def render_text(reply: Reply) -> str:
    """A Reply as WeChat text: suggestions as numbered lines (unless the text has them), http(s)
    links as <a>, linked sources. WeChat renders <a> tags in text messages, so any angle bracket of
    the answer itself (an FAQ may hold HTML) becomes a full-width one: the only tags are our links,
    and they only ever point to http(s)."""
    text = reply.text.strip()
    if reply.suggestions and f"1. {reply.suggestions[0]}" not in text:
        text += "\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(reply.suggestions, 1))
    text = text.translate(TAG_CHARS)
    text = URL_RE.sub(lambda m: f'<a href="{html.escape(m.group(0))}">{m.group(0)}</a>', text)
    links = []
    for src in reply.sources:
        url = str(src.get("url") or "")
        if URL_RE.fullmatch(url) and url not in text:
            title = str(src.get("title") or "政策原文").translate(TAG_CHARS)
            label = "查看原文" if f"《{title}》" in text else f"《{title}》"  # one citation: no second title
            links.append(f'<a href="{html.escape(url)}">{label}</a>')
    if links:
        text += "\n原文链接：" + " ".join(links)
    if reply.rate_ticket:  # a staff reply: rated with "回复 1/2/3" (the Dialogue knows the ticket)
        text += "\n" + texts.say("ticket_rating.prompt")
    return text


def render_replies(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(r) for r in replies if r.text.strip())


def split_bytes(text: str, limit: int = REPLY_BYTES) -> list[str]:
    """Split at line ends (else anywhere) into pieces of at most `limit` UTF-8 bytes."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:  # one very long line
            cut = len(line)
            while len(line[:cut].encode()) > limit:
                cut = cut * 3 // 4
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        if len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()] or [""]


def _cdata_safe(text: str) -> str:
    return text.replace("]]>", "]] >")
