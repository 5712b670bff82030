"""The WeChat edge: everything a POST to /wechat goes through before it becomes a `WxMessage`.

It owns what wechatpy leaves open: the body size cap before any parsing (`read_capped`), a freshness
window on the timestamp, constant-time checks of `signature` and of `msg_signature` over the encrypted
payload (checked before decryption), the encryption mode (plain / compatible / safe, as chosen in the
WeChat admin page: in safe mode a POST without `encrypt_type=aes` and a valid `msg_signature` is
refused, because the URL signature covers only token, timestamp and nonce, not the body), XML refused
when it declares a DTD or entities, then parsing; every wechatpy/parser exception becomes a
`BadRequest` (400, or 403 for a failed signature or freshness check). The message carries the
request's signed "timestamp:nonce" as its replay key for the inbox's replay check.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import hmac
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from fastapi import Request
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import WeChatException
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage

MAX_BODY = 64 * 1024
MODES = ("plain", "compatible", "safe")
USER_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
CREATE_TIME_RE = re.compile(r"^[0-9]{1,12}$")

# Everything wechatpy, expat, base64, AES and the message fields raise on bad input.
BAD_INPUT = (
    WeChatException,
    ExpatError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    struct.error,
    binascii.Error,
    UnicodeError,
    OverflowError,
)


class BadRequest(Exception):
    """Refused input: the status to answer with (400 or 403) and a reason for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class WxMessage:
    """What the channel needs of one inbound message, extracted (and validated) at the edge."""

    kind: str  # text | voice | image | ... | event | unknown
    event: str  # subscribe | unsubscribe | click | view | ... ('' for messages)
    user: str  # FromUserName (the openid)
    account: str  # ToUserName (the Official Account)
    create_time: int
    msg_id: str | None
    text: str  # text content, voice recognition result, or the menu key of a CLICK
    raw: Any  # the wechatpy message (for TextReply)
    replay_key: str = ""  # the request's signed "timestamp:nonce"

    @property
    def dedup_key(self) -> str:
        # Always starts with the sender: MsgIds have collided across users. Events have no MsgId:
        # FromUserName + CreateTime (WeChat's advice), plus the event and key so that e.g. subscribe
        # and unsubscribe within one second stay two events.
        if self.msg_id:
            return f"{self.user}:{self.msg_id}"
        return f"{self.user}:{self.create_time}:{self.event}:{self.text}"[:128]


class Edge:
    """The checks of one channel's configuration (Token, EncodingAESKey, mode, freshness window)."""

    def __init__(
        self,
        token: str,
        crypto: WeChatCrypto | None,
        mode: str,
        max_age: int,
        clock: Callable[[], float],
    ) -> None:
        self.token = token
        self.crypto = crypto
        self.mode = mode
        self.max_age = max_age
        self.clock = clock

    def _signature(self, *parts: str) -> str:
        return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()

    def check_fresh(self, timestamp: str) -> None:
        if not isinstance(timestamp, str) or not CREATE_TIME_RE.match(timestamp):
            raise BadRequest(403, "bad timestamp")
        if abs(self.clock() - int(timestamp)) > self.max_age:
            raise BadRequest(403, "stale timestamp (replay?)")

    def check_signature(self, signature: str, timestamp: str, nonce: str) -> None:
        expected = self._signature(self.token, timestamp, nonce)
        if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
            raise BadRequest(403, "bad signature")

    @staticmethod
    def _parse_xml(data: bytes | str) -> dict[str, Any]:
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > MAX_BODY:
            raise BadRequest(400, "body too large")
        head = raw[:4096].upper()
        if b"<!DOCTYPE" in head or b"<!ENTITY" in raw.upper():
            raise BadRequest(400, "DTD or entity declaration")
        try:
            doc = xmltodict.parse(raw, disable_entities=True)
        except BAD_INPUT:
            raise BadRequest(400, "malformed XML") from None
        root = doc.get("xml") if isinstance(doc, dict) else None
        if not isinstance(root, dict):
            raise BadRequest(400, "no <xml> root element")
        return root

    def verify_and_parse(self, body: bytes, params: dict[str, str]) -> tuple[WxMessage, bool]:
        """All the edge checks, in order; returns the message (with its replay key) and whether the
        reply is encrypted."""
        if len(body) > MAX_BODY:
            raise BadRequest(400, "body too large")
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        self.check_fresh(timestamp)
        if not NONCE_RE.match(nonce):
            raise BadRequest(403, "bad nonce")
        self.check_signature(params.get("signature", ""), timestamp, nonce)
        encrypted = params.get("encrypt_type", "raw").lower() == "aes"
        if self.mode == "safe" and not encrypted:
            raise BadRequest(403, "safe mode: unencrypted message refused")
        if self.mode == "plain" and encrypted:
            raise BadRequest(400, "encrypted message but plain mode (no EncodingAESKey configured)")
        outer = self._parse_xml(body)
        if encrypted:
            if self.crypto is None:
                raise BadRequest(400, "encrypted message but no EncodingAESKey configured")
            encrypt = outer.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt:
                raise BadRequest(400, "no Encrypt element")
            expected = self._signature(self.token, timestamp, nonce, encrypt)
            if not hmac.compare_digest(expected.encode(), params.get("msg_signature", "").encode()):
                raise BadRequest(403, "bad msg_signature")
            try:
                plain = self.crypto.decrypt_message(
                    {"Encrypt": encrypt}, params["msg_signature"], timestamp, nonce
                )
            except BAD_INPUT:
                raise BadRequest(400, "cannot decrypt") from None
            fields = self._parse_xml(plain)
        elif self.crypto is not None and "Encrypt" in outer and "MsgType" not in outer:
            raise BadRequest(400, "encrypted body without encrypt_type")
        else:
            fields = outer
        try:
            msg = self._message(fields)
        except BadRequest:
            raise
        except BAD_INPUT:
            raise BadRequest(400, "bad message fields") from None
        return dataclasses.replace(msg, replay_key=f"{int(timestamp)}:{nonce}"), encrypted

    @staticmethod
    def _message(m: dict[str, Any]) -> WxMessage:
        """Mirror of wechatpy.parser.parse_message on an already (safely) parsed dict."""
        msg_type = m["MsgType"]
        if not isinstance(msg_type, str):
            raise TypeError("MsgType")
        msg_type = msg_type.lower()
        event = ""
        if msg_type == "event":
            ev = m.get("Event")
            if not isinstance(ev, str):
                raise TypeError("Event")
            event = ev.lower()
            key = m.get("EventKey")
            if event == "subscribe" and isinstance(key, str) and key.startswith("qrscene_"):
                event = "subscribe_scan"
            cls = EVENT_TYPES.get(event, UnknownMessage)
        else:
            cls = MESSAGE_TYPES.get(msg_type, UnknownMessage)
        raw = cls(m)
        user, account = m.get("FromUserName"), m.get("ToUserName")
        if not isinstance(user, str) or not USER_RE.match(user):
            raise BadRequest(400, "bad FromUserName")
        if not isinstance(account, str) or not account or len(account) > 64:
            raise BadRequest(400, "bad ToUserName")
        created = m["CreateTime"]
        if not isinstance(created, str) or not CREATE_TIME_RE.match(created.strip()):
            raise BadRequest(400, "bad CreateTime")
        create_time = int(created)
        msg_id = m.get("MsgId")
        if msg_id is not None:
            if not isinstance(msg_id, str) or not msg_id.isdigit() or len(msg_id) > 32:
                raise BadRequest(400, "bad MsgId")
        text = ""
        if msg_type == "text":
            content = m.get("Content")
            text = content if isinstance(content, str) else ""
        elif msg_type == "voice":
            rec = m.get("Recognition")
            text = rec if isinstance(rec, str) else ""
        elif msg_type == "event":
            key = m.get("EventKey")
            text = key if isinstance(key, str) else ""
        return WxMessage(msg_type, event, user, account, create_time, msg_id, text.strip(), raw)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` (never buffers more than that)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
